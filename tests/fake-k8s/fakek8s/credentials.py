"""Certificates (with the openssl CLI), tokens, a kubeconfig and an in-cluster service account mount."""

import base64
import json
import os
import re
import subprocess

from .auth import Auth, User

CLIENT_SUBJECT = "/O=system:masters/CN=admin-user"


def _openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True)


def _ec_key(name, cwd):
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", name, cwd=cwd)


def _sign(csr, out, extfile, cwd):
    _openssl("x509", "-req", "-in", csr, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "3650", "-sha256", "-out", out, "-extfile", extfile, "-extensions", "ext", cwd=cwd)


def make_pki(pki):
    """CA, server certificate for 127.0.0.1/localhost, admin client certificate; reused when present."""
    wanted = ["ca.crt", "ca.key", "server.crt", "server.key", "admin.crt", "admin.key"]
    if all(os.path.exists(os.path.join(pki, f)) for f in wanted):
        return
    os.makedirs(pki, exist_ok=True)
    _ec_key("ca.key", pki)
    _openssl("req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=fake-k8s-ca", "-days", "3650", "-sha256",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-addext", "subjectKeyIdentifier=hash", "-out", "ca.crt", cwd=pki)
    with open(os.path.join(pki, "server.ext"), "w") as f:
        f.write("[ext]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,"
                "DNS:kubernetes.default,DNS:kubernetes.default.svc\n"
                "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
    with open(os.path.join(pki, "client.ext"), "w") as f:
        f.write("[ext]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=clientAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
    _ec_key("server.key", pki)
    _openssl("req", "-new", "-key", "server.key", "-subj", "/CN=kube-apiserver", "-out", "server.csr", cwd=pki)
    _sign("server.csr", "server.crt", "server.ext", pki)
    _ec_key("admin.key", pki)
    _openssl("req", "-new", "-key", "admin.key", "-subj", CLIENT_SUBJECT, "-out", "admin.csr", cwd=pki)
    _sign("admin.csr", "admin.crt", "client.ext", pki)
    for f in ("server.csr", "admin.csr", "server.ext", "client.ext", "ca.srl"):
        if os.path.exists(os.path.join(pki, f)):
            os.remove(os.path.join(pki, f))


def load_tokens(path):
    """Tokens persist in DIR so that restarting the fake on the same DIR keeps clients' credentials valid."""
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    names = ("admin", "readonly", "expired", "token_file", "service_account", "control")
    tokens = {name: Auth.new_token() for name in names}
    with open(path, "w") as f:
        json.dump(tokens, f, indent=1)
    os.chmod(path, 0o600)
    return tokens


def setup_auth(directory, tokens, sa_namespace):
    """The Auth object and who each token is. The `expired` token is deliberately not accepted."""
    auth = Auth(os.path.join(directory, "tokens", "token-file"))
    os.makedirs(os.path.join(directory, "tokens"), exist_ok=True)
    auth.add(tokens["admin"], User("admin-token-user", ["system:masters", "system:authenticated"]))
    auth.add(tokens["readonly"], User("readonly-user", ["system:authenticated"], read_only=True))
    auth.add(tokens["service_account"], User("system:serviceaccount:%s:runbook" % sa_namespace,
                                             ["system:serviceaccounts", "system:masters"]))
    auth.set_token_file_token(tokens["token_file"], User("token-file-user", ["system:masters"]))
    return auth


# ------------------------------------------------------------------ YAML output

_PLAIN = re.compile(r"^[A-Za-z0-9/_][A-Za-z0-9_./:+=@-]*$")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "~", "y", "n"}


def _scalar(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _RESERVED and not re.match(r"^[-+]?[0-9.]+$", text):
        return text
    return json.dumps(text)  # a JSON string is a valid YAML double-quoted scalar


def to_yaml(value, indent=0):
    """Block-style YAML for dicts/lists/scalars, like kubectl writes kubeconfigs."""
    pad = "  " * indent
    lines = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append("%s%s:" % (pad, key))
                lines.append(to_yaml(item, indent + (0 if isinstance(item, list) else 1)))
            elif isinstance(item, (dict, list)):
                lines.append("%s%s: %s" % (pad, key, "{}" if isinstance(item, dict) else "[]"))
            else:
                lines.append("%s%s: %s" % (pad, key, _scalar(item)))
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and item:
                inner = to_yaml(item, indent + 1).split("\n")
                lines.append("%s- %s" % (pad, inner[0].lstrip()))
                lines.extend(inner[1:])
            else:
                lines.append("%s- %s" % (pad, _scalar(item)))
    return "\n".join(lines)


def _b64file(path):
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode()


def kubeconfig(directory, server, tokens):
    """Several contexts on one server, exercising every way a kubeconfig can carry credentials.

    Paths are relative to the kubeconfig's directory, on purpose: clients must resolve them there.
    """
    pki = os.path.join(directory, "pki")
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "current-context": "token",
        "clusters": [
            {"name": "fake", "cluster": {"server": server, "certificate-authority": "pki/ca.crt"}},
            {"name": "fake-ca-data", "cluster": {"server": server,
                                                 "certificate-authority-data": _b64file(os.path.join(pki, "ca.crt"))}},
        ],
        "users": [
            {"name": "admin-token", "user": {"token": tokens["admin"]}},
            {"name": "admin-cert-files", "user": {"client-certificate": "pki/admin.crt",
                                                  "client-key": "pki/admin.key"}},
            {"name": "admin-cert-data", "user": {
                "client-certificate-data": _b64file(os.path.join(pki, "admin.crt")),
                "client-key-data": _b64file(os.path.join(pki, "admin.key"))}},
            {"name": "token-file-user", "user": {"tokenFile": "tokens/token-file"}},
            {"name": "readonly", "user": {"token": tokens["readonly"]}},
            {"name": "expired", "user": {"token": tokens["expired"]}},
        ],
        "contexts": [
            {"name": "token", "context": {"cluster": "fake", "user": "admin-token"}},
            {"name": "cert-files", "context": {"cluster": "fake", "user": "admin-cert-files",
                                               "namespace": "nublado"}},
            {"name": "cert-data", "context": {"cluster": "fake-ca-data", "user": "admin-cert-data",
                                              "namespace": "default"}},
            {"name": "token-file", "context": {"cluster": "fake", "user": "token-file-user"}},
            {"name": "readonly", "context": {"cluster": "fake", "user": "readonly", "namespace": "nublado"}},
            {"name": "expired", "context": {"cluster": "fake", "user": "expired"}},
        ],
    }


def write_file(path, text, mode=0o644):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def write_client_files(directory, port, tokens, sa_namespace, control_token):
    server = "https://127.0.0.1:%d" % port
    config = kubeconfig(directory, server, tokens)
    write_file(os.path.join(directory, "kubeconfig"), to_yaml(config) + "\n", 0o600)
    sa = os.path.join(directory, "serviceaccount")
    os.makedirs(sa, exist_ok=True)
    write_file(os.path.join(sa, "token"), tokens["service_account"])
    write_file(os.path.join(sa, "namespace"), sa_namespace)
    with open(os.path.join(directory, "pki", "ca.crt")) as f:
        write_file(os.path.join(sa, "ca.crt"), f.read())
    env = {
        "K8S_PORT": port,
        "K8S_SERVER": server,
        "K8S_DIR": directory,
        "KUBECONFIG_FILE": os.path.join(directory, "kubeconfig"),
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": port,
        "K8S_CA": os.path.join(directory, "pki", "ca.crt"),
        "K8S_TOKEN": tokens["admin"],
        "K8S_READONLY_TOKEN": tokens["readonly"],
        "K8S_EXPIRED_TOKEN": tokens["expired"],
        "K8S_SA_DIR": sa,
        "CONTROL_TOKEN": control_token,
        "PID": os.getpid(),
    }
    write_file(os.path.join(directory, "env"), "".join("%s=%s\n" % kv for kv in env.items()))
