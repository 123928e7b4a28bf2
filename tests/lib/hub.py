#!/usr/bin/python3
"""Start, seed and stop a REAL JupyterHub 3.0 for tests, bench and the demo.

Run with Debian's /usr/bin/python3 (a pyenv python does not see Debian's jupyterhub).

  hub.py start   --dir D [--db-url URL] [--spawner-delay-users a,b]
                 [--spawner-slow-stop-users c,d] [--timeout 60] [--ops-scopes a,b,c]
                 [--kubespawner K8S_DIR [--kube-namespace hub] [--no-delete-pvc]
                  [--pvc-name-template T] [--storage-class C] [--storage-capacity 10Gi]
                  [--kube-token-file F] [--kubespawner-version 7.1.0|6.2.0]]
  hub.py stop    --dir D
  hub.py restart --dir D [--ops-scopes a,b,c]
  hub.py seed    --dir D (--spec SPEC.json | compact options, see `hub.py seed -h`)
  hub.py backdate-created --dir D NAME=WHEN ...
  hub.py claim-name --dir D USER [SERVER]      # the stand-in's claim name (--kubespawner)
  hub.py users   --dir D          # every user name, one a line (all pages)
  hub.py count   --dir D          # number of users
  hub.py api     --dir D METHOD PATH [JSON]   # one API call, prints the body
  hub.py http    METHOD URL [--token-file F] [--accept A] [--data JSON]  # curl stand-in

WHEN is ISO 8601 ("2024-01-31T12:00:00Z") or relative to now: "-30d", "-12h", "-90m".

Spawner (what GET /hub/api/info reports): jupyterhub.spawner.SimpleLocalProcessSpawner,
stock; hubtest.spawner.SlowSpawner when --spawner-delay-users/--spawner-slow-stop-users
are given; with --kubespawner K8S_DIR, kubespawner.spawner.KubeSpawner (version 7.1.0),
the stand-in in tests/lib/kubespawner-standin: the same local servers (SlowSpawner), plus
KubeSpawner's PersistentVolumeClaims on the fake-k8s running in K8S_DIR (tests/fake-k8s):
created at a server's start, named claim-<escaped user>[--<escaped server>] and DELETED by
delete_forever() when the hub deletes the user (or a named server), unless
--no-delete-pvc, or a named server's template lacks its server name. It talks to
K8S_SERVER with the CA K8S_CA and the token file K8S_DIR/tokens/token-file (user
`token-file-user` in the fake's requests.log); the namespace (--kube-namespace, default
hub) is created through the fake's control API if missing. `seed --claims A,B
--claim-servers USER:SERVER --claim-size A=20Gi` makes the claims a first start would
(through the control API, not logged in requests.log) with a marker file
hubtest-marker.txt in each volume.

Scopes of the `ops` token (the runbook's): OPS_SCOPES below (admin:users, admin:servers,
list:users, read:users, users:activity, read:hub) or --ops-scopes; `harness` has
all of those plus admin:groups.

Files in D: jupyterhub_config.py, token (0600, the `ops` service token; the
runbook's), harness-token (0600, used by seed/users/count: adds admin:groups), env
(shell-sourceable: JUPYTERHUB_API_URL, JUPYTERHUB_TOKEN_FILE, HUB_PID, HUB_URL, ...),
hub.log (hub + proxy + single-user output, including request lines such as
"204 DELETE /hub/api/users/x (ops@127.0.0.1) 5.00ms"), state.json (ports, db url),
jupyterhub.sqlite (unless --db-url), home/USER (single-user server homes).
state.json also holds the options that restart/seed reuse (ops_scopes, kubespawner).
"""
import argparse
import datetime as dt
import http.client
import json
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
JUPYTERHUB = "/usr/bin/jupyterhub"
PAGINATION = "application/jupyterhub-pagination+json"
# Every process of one test hub (hub, proxy, single-user servers) carries this
# variable, set to the hub's directory: `stop` finds them all by it, although the
# hub starts the proxy and each server in a session of its own.
MARKER = "HUBTEST_DIR"
# `ops` (the runbook's token): the field notes' scopes, plus read:hub (GET /hub/api/info:
# which spawner). restore-users also needs `groups` (add a user to an existing group): tests
# of it start the hub with --ops-scopes.
# `hub.py start --ops-scopes a,b` replaces the list; the harness token always has all of
# these, the custom ones and admin:groups.
OPS_SCOPES = ["admin:users", "admin:servers", "list:users", "read:users", "users:activity",
              "read:hub"]
HARNESS_EXTRA_SCOPES = ["admin:groups"]
STANDIN = os.path.join(HERE, "kubespawner-standin")


def harness_scopes(ops_scopes):
    out = []
    for scope in OPS_SCOPES + list(ops_scopes) + HARNESS_EXTRA_SCOPES:
        if scope not in out:
            out.append(scope)
    return out


def die(msg):
    print("hub.py: " + msg, file=sys.stderr)
    sys.exit(1)


# ---------------------------------------------------------------- time values

def parse_when(text):
    """ISO 8601 or "-Nd"/"-Nh"/"-Nm"/"-Ns" (ago) -> aware UTC datetime."""
    m = re.fullmatch(r"-(\d+(?:\.\d+)?)([dhms])", text)
    if m:
        unit = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}[m.group(2)]
        return dt.datetime.now(dt.timezone.utc) - dt.timedelta(**{unit: float(m.group(1))})
    when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.astimezone(dt.timezone.utc)


def iso_z(when):
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---------------------------------------------------------------- state files

class HubDir:
    """The files of one test hub in its directory."""

    def __init__(self, path):
        self.path = os.path.realpath(path)

    def file(self, name):
        return os.path.join(self.path, name)

    def load_state(self):
        try:
            with open(self.file("state.json")) as f:
                return json.load(f)
        except FileNotFoundError:
            die(f"no hub state in {self.path} (run `hub.py start --dir {self.path}` first)")

    def save_state(self, state):
        write_private(self.file("state.json"), json.dumps(state, indent=1) + "\n")

    def token(self, name="token"):
        with open(self.file(name)) as f:
            return f.read().strip()

    def client(self, token="harness-token"):
        """A client with the harness's own token (seeding needs admin:groups,
        which the `ops` token deliberately lacks); token="token" for `ops`."""
        state = self.load_state()
        return HubClient(state["hub_port"], self.token(token))


def write_private(path, text):
    """Write a file only its owner can read (tokens, a db url with a password)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- the REST API

class ApiError(Exception):
    def __init__(self, status, method, path, body):
        super().__init__(f"{method} {path}: HTTP {status}: {body[:300]}")
        self.status = status


class HubClient:
    """JSON over the hub's REST API on one kept-alive connection (fast bulk seeding)."""

    def __init__(self, port, token, host="127.0.0.1"):
        self.host, self.port, self.token = host, port, token
        self.conn = None

    def request(self, method, path, body=None, accept="application/json", timeout=60):
        """-> (status, parsed JSON or None). `path` is relative to /hub/api."""
        url = "/hub/api" + path
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": "token " + self.token, "Accept": accept}
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):  # the hub may close an idle keep-alive connection
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
            try:
                self.conn.request(method, url, body=data, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
                break
            except (ConnectionError, http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        text = raw.decode("utf-8", "replace")
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = text
        return resp.status, parsed

    def call(self, method, path, body=None, ok=(200, 201, 202, 204), **kw):
        status, parsed = self.request(method, path, body, **kw)
        if status not in ok:
            raise ApiError(status, method, path, json.dumps(parsed))
        return parsed

    def list_users(self, query=""):
        """Every user model, following `_pagination.next` (without the pagination
        Accept header the hub silently stops at 200 users)."""
        users, offset = [], 0
        while True:
            sep = "&" if query else ""
            page = self.call("GET", f"/users?{query}{sep}offset={offset}&limit=200", accept=PAGINATION)
            users.extend(page["items"])
            nxt = page["_pagination"]["next"]
            if not nxt:
                return users
            offset = nxt["offset"]

    def count_users(self):
        page = self.call("GET", "/users?limit=1", accept=PAGINATION)
        return page["_pagination"]["total"]

    def user(self, name):
        return self.call("GET", "/users/" + quote_name(name))


def quote_name(name):
    """A user name as one URL path segment: '@' and '+' stay, 'é' -> '%C3%A9', '/' -> '%2F'."""
    return urllib.parse.quote(name, safe="@+")


# ---------------------------------------------------------------- start / stop

CONFIG_TEMPLATE = '''\
# Written by tests/lib/hub.py: a throwaway JupyterHub on loopback ports.
import os
c = get_config()  # noqa
c.JupyterHub.bind_url = "http://127.0.0.1:{public_port}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.JupyterHub.db_url = {db_url!r}
c.JupyterHub.cookie_secret_file = {cookie_file!r}
c.JupyterHub.pid_file = {pid_file!r}
c.JupyterHub.authenticator_class = "dummy"
# A throwaway sqlite db need not survive a power cut: without fsync per commit
# the hub creates users ~10x faster (it commits several times per user).
if c.JupyterHub.db_url.startswith("sqlite"):
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "connect")
    def _no_fsync(dbapi_conn, _record):
        if type(dbapi_conn).__module__ == "sqlite3":
            dbapi_conn.execute("PRAGMA synchronous = OFF")
c.JupyterHub.allow_named_servers = True
# Answer 202 after 1 s for a slow spawn instead of holding the request 10 s.
# slow_stop_timeout stays at its default (10 s): it decides whether DELETE of a
# user with a running server answers 204 or 400 "in the process of stopping".
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 1}}
# Tokens are read from 0600 files so they never sit in this config.
# `ops` has exactly the scopes the runbook is documented to need; `harness`
# (seeding only) also manages groups, and its requests show as harness@ in hub.log.
def _read(path):
    with open(path) as f:
        return f.read().strip()
c.JupyterHub.services = [
    {{"name": "ops", "api_token": _read({token_file!r})}},
    {{"name": "harness", "api_token": _read({harness_token_file!r})}},
]
c.JupyterHub.load_roles = [
    {{"name": "ops", "scopes": {scopes!r}, "services": ["ops"]}},
    {{"name": "harness", "scopes": {harness_scopes!r}, "services": ["harness"]}},
]
# Real single-user servers (jupyterhub-singleuser, Debian python3-notebook), run as
# this user with homes under the hub dir. The stock SimpleLocalProcessSpawner, unless
# some users must stay pending or stop slowly (hubtest.spawner.SlowSpawner) or the
# hub stands for a zero-to-jupyterhub one (kubespawner-standin: SlowSpawner + claims).
c.JupyterHub.spawner_class = {spawner_class!r}
c.SlowSpawner.delay_users = {delay_users!r}
c.SlowSpawner.slow_stop_users = {slow_stop_users!r}
c.SimpleLocalProcessSpawner.home_dir_template = {home_template!r}
c.Spawner.cmd = ["/usr/bin/jupyterhub-singleuser"]
c.Spawner.environment = {{{marker!r}: {hub_dir!r}}}
c.Spawner.args = {spawner_args!r}
'''


KUBE_CONFIG_TEMPLATE = '''
# KubeSpawner stand-in (tests/lib/kubespawner-standin): claims on the fake cluster {k8s_dir!r}.
c.KubeSpawner.api_url = {api_url!r}
c.KubeSpawner.ca_file = {ca_file!r}
c.KubeSpawner.token_file = {token_file!r}
c.KubeSpawner.namespace = {namespace!r}
c.KubeSpawner.delete_pvc = {delete_pvc!r}
'''


def spawner_class(state):
    if state.get("kubespawner"):
        return "kubespawner.spawner.KubeSpawner"
    if state.get("delay_users") or state.get("slow_stop_users"):
        return "hubtest.spawner.SlowSpawner"
    return "jupyterhub.spawner.SimpleLocalProcessSpawner"


def kube_config(ks):
    cfg = KUBE_CONFIG_TEMPLATE.format(**ks)
    for key in ("pvc_name_template", "storage_class", "storage_capacity"):
        if ks.get(key) is not None:
            cfg += f"c.KubeSpawner.{key} = {ks[key]!r}\n"
    return cfg


def write_config(hd, state):
    ops_scopes = state.get("ops_scopes") or OPS_SCOPES
    cfg = CONFIG_TEMPLATE.format(
        public_port=state["public_port"],
        hub_port=state["hub_port"],
        proxy_api_port=state["proxy_api_port"],
        db_url=state["db_url"],
        cookie_file=hd.file("jupyterhub_cookie_secret"),
        pid_file=hd.file("jupyterhub.pid"),
        token_file=hd.file("token"),
        harness_token_file=hd.file("harness-token"),
        scopes=ops_scopes,
        harness_scopes=harness_scopes(ops_scopes),
        spawner_class=spawner_class(state),
        delay_users=state["delay_users"],
        slow_stop_users=state.get("slow_stop_users", []),
        home_template=hd.file("home") + "/{username}",
        marker=MARKER,
        hub_dir=hd.path,
        # As root, jupyterhub-singleuser exits with status 1 unless told --allow-root.
        spawner_args=["--allow-root"] if os.geteuid() == 0 else [],
    )
    if state.get("kubespawner"):
        cfg += kube_config(state["kubespawner"])
    write_private(hd.file("jupyterhub_config.py"), cfg)  # it holds the db url (a password)


def hub_env(hd, state):
    env = dict(os.environ)
    env[MARKER] = hd.path
    # The proxy needs Debian's node modules when `node` on PATH is not Debian's
    # ("Cannot find module 'commander'").
    env["NODE_PATH"] = "/usr/share/nodejs"
    path = [HERE] + ([STANDIN] if state.get("kubespawner") else [])
    env["PYTHONPATH"] = ":".join(path + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.pop("KUBESPAWNER_STANDIN_VERSION", None)
    if state.get("kubespawner", {}).get("version"):
        env["KUBESPAWNER_STANDIN_VERSION"] = state["kubespawner"]["version"]
    env["PATH"] = "/usr/bin:/bin:" + env.get("PATH", "")
    # A caller's token variables must not leak into the hub or its servers.
    for var in ("JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN", "CONFIGPROXY_AUTH_TOKEN"):
        env.pop(var, None)
    return env


class StartError(Exception):
    pass


def launch(hd, state, timeout):
    """Start jupyterhub in its own session (so a test's ^C does not hit it), wait
    until the API answers, write D/env. On failure: nothing left running, StartError."""
    write_config(hd, state)
    log_offset = os.path.getsize(hd.file("hub.log")) if os.path.exists(hd.file("hub.log")) else 0
    with open(hd.file("hub.log"), "ab") as log:
        log.write(f"=== hub.py: starting jupyterhub at {iso_z(dt.datetime.now(dt.timezone.utc))} ===\n".encode())
        log.flush()
        proc = subprocess.Popen(
            [JUPYTERHUB, "-f", hd.file("jupyterhub_config.py")],
            cwd=hd.path, env=hub_env(hd, state), stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    state["pid"] = proc.pid
    hd.save_state(state)
    write_env(hd, state)
    t0 = time.monotonic()
    try:
        wait_ready(hd, state, proc, timeout)
    except RuntimeError as e:
        stop_all(hd, state)
        with open(hd.file("hub.log"), "rb") as f:
            f.seek(log_offset)
            raise StartError(f"{e}\n--- {hd.file('hub.log')} ---\n" + f.read().decode("utf-8", "replace")[-6000:])
    print(f"hub.py: hub pid {proc.pid} ready in {time.monotonic() - t0:.1f}s at {public_url(state)}",
          file=sys.stderr)


def launch_or_die(hd, state, timeout):
    try:
        launch(hd, state, timeout)
    except StartError as e:
        die(str(e))


def wait_ready(hd, state, proc, timeout):
    """Ready = the hub answers an authenticated API call directly AND through the proxy."""
    deadline = time.monotonic() + timeout
    # Probe with the harness token so that every `ops@` line in hub.log is the runbook's.
    direct = HubClient(state["hub_port"], hd.token("harness-token"))
    proxied = HubClient(state["public_port"], hd.token("harness-token"))
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyterhub exited with status {proc.returncode} while starting")
        try:
            if direct.request("GET", "/users?limit=1", timeout=5)[0] == 200 and \
                    proxied.request("GET", "/users?limit=1", timeout=5)[0] == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"hub API not ready after {timeout}s")
        time.sleep(0.25)


def public_url(state):
    return f"http://127.0.0.1:{state['public_port']}"


def write_env(hd, state):
    values = {
        "JUPYTERHUB_API_URL": f"http://127.0.0.1:{state['hub_port']}/hub/api",
        "JUPYTERHUB_TOKEN_FILE": hd.file("token"),
        "HUB_PID": str(state["pid"]),
        "HUB_URL": public_url(state),
        "HUB_DIR": hd.path,
        "HUB_LOG": hd.file("hub.log"),
    }
    with open(hd.file("env"), "w") as f:
        for k, v in values.items():
            f.write(f"{k}={shlex.quote(v)}\n")


def marked_pids(hd):
    """PIDs of every process whose environment has HUBTEST_DIR=<this dir>."""
    needle = f"{MARKER}={hd.path}".encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    pids.append(int(entry))
        except OSError:  # gone, or not ours
            pass
    return pids


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def signal_all(pids, sig):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def wait_gone(pids, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pids = [p for p in pids if alive(p)]
        if not pids:
            return []
        time.sleep(0.1)
    return [p for p in pids if alive(p)]


def stop_all(hd, state):
    """SIGTERM the hub first (it stops its servers and proxy itself), then
    TERM and KILL whatever carries the marker: nothing of this hub survives."""
    hub_pid = state.get("pid")
    # Only a marked pid is our hub: a stale state.json must not kill a stranger.
    if hub_pid in marked_pids(hd):
        signal_all([hub_pid], signal.SIGTERM)
        wait_gone([hub_pid], 15)
    left = marked_pids(hd)
    if left:
        signal_all(left, signal.SIGTERM)
        left = wait_gone(left, 5)
    if left:
        signal_all(left, signal.SIGKILL)
        left = wait_gone(left, 5)
    if left:
        die(f"processes still alive after SIGKILL: {left}")
    for name in ("jupyterhub.pid", "jupyterhub-proxy.pid"):
        try:
            os.unlink(hd.file(name))
        except FileNotFoundError:
            pass


def cmd_start(args):
    hd = HubDir(args.dir)
    os.makedirs(hd.path, exist_ok=True)
    if os.path.exists(hd.file("state.json")) and marked_pids(hd):
        die(f"a hub is already running in {hd.path}")
    write_private(hd.file("token"), secrets.token_hex(32) + "\n")
    write_private(hd.file("harness-token"), secrets.token_hex(32) + "\n")
    state = {
        "db_url": args.db_url or "sqlite:///" + hd.file("jupyterhub.sqlite"),
        "delay_users": [u for u in (args.spawner_delay_users or "").split(",") if u],
        "slow_stop_users": [u for u in (args.spawner_slow_stop_users or "").split(",") if u],
        "timeout": args.timeout,
    }
    if args.ops_scopes is not None:
        state["ops_scopes"] = [x for x in args.ops_scopes.split(",") if x]
    if args.kubespawner:
        state["kubespawner"] = kubespawner_state(args)
        FakeK8s(state["kubespawner"]["k8s_dir"]).ensure_namespace(state["kubespawner"]["namespace"])
    elif any(v is not None for v in (args.pvc_name_template, args.storage_class, args.storage_capacity,
                                     args.kube_token_file, args.kubespawner_version)) or args.no_delete_pvc:
        die("--no-delete-pvc, --pvc-name-template, --storage-class, --storage-capacity, --kube-token-file "
            "and --kubespawner-version need --kubespawner K8S_DIR")
    for attempt in (1, 2, 3):
        # free_port() only says a port was free a moment ago: another test may
        # take it before the hub binds. Then try again with new ports.
        state.update(public_port=free_port(), hub_port=free_port(), proxy_api_port=free_port())
        try:
            return launch(hd, state, args.timeout)
        except StartError as e:
            if attempt == 3 or not re.search(r"EADDRINUSE|Address already in use", str(e)):
                die(str(e))


# ---------------------------------------------------------------- the fake cluster (KubeSpawner stand-in)

def read_env_file(path):
    """KEY=VALUE lines (shell-quoted or not) -> dict."""
    values = {}
    with open(path) as f:
        for line in f:
            key, sep, value = line.strip().partition("=")
            if sep and key and not key.startswith("#"):
                values[key] = " ".join(shlex.split(value)) if value else ""
    return values


def kubespawner_state(args):
    """What the stand-in's config needs, from the fake's DIR/env and the options."""
    k8s_dir = os.path.realpath(args.kubespawner)
    try:
        env = read_env_file(os.path.join(k8s_dir, "env"))
    except OSError as e:
        die(f"--kubespawner {args.kubespawner}: not a running fake-k8s directory ({e})")
    # tokens/token-file: the `token-file-user`, a cluster admin; a file, re-read at each
    # request (as a pod's service-account token), so the fake may rotate it. The fake's
    # requests.log shows the hub's own calls as user "token-file-user".
    token_file = os.path.realpath(args.kube_token_file or os.path.join(k8s_dir, "tokens", "token-file"))
    return {
        "k8s_dir": k8s_dir,
        "api_url": env["K8S_SERVER"],
        "ca_file": env.get("K8S_CA") or os.path.join(k8s_dir, "pki", "ca.crt"),
        "token_file": token_file,
        "namespace": args.kube_namespace,
        "delete_pvc": not args.no_delete_pvc,
        "pvc_name_template": args.pvc_name_template,
        "storage_class": args.storage_class,
        "storage_capacity": args.storage_capacity,
        "version": args.kubespawner_version,
    }


class FakeK8s:
    """The fake cluster's control API (tests/fake-k8s/README.md): its calls are not in
    requests.log, so what the hub and the runbook do stays apart from the seeding."""

    def __init__(self, k8s_dir):
        env = read_env_file(os.path.join(k8s_dir, "env"))
        url = urllib.parse.urlsplit(env["K8S_SERVER"])
        self.host, self.port = url.hostname, url.port
        self.token = env["CONTROL_TOKEN"]
        import ssl
        self.ssl = ssl.create_default_context(cafile=env.get("K8S_CA") or os.path.join(k8s_dir, "pki", "ca.crt"))

    def control(self, method, path, body=None):
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.ssl, timeout=30)
        try:
            headers = {"Authorization": "Bearer " + self.token, "Accept": "application/json"}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            conn.request(method, "/_fake/" + path, body=data, headers=headers)
            resp = conn.getresponse()
            text = resp.read().decode("utf-8", "replace")
        finally:
            conn.close()
        if resp.status >= 300:
            raise RuntimeError(f"fake-k8s control {method} {path}: HTTP {resp.status}: {text[:500]}")
        return json.loads(text) if text else None

    def objects(self, resource, namespace=None):
        query = {"resource": resource}
        if namespace:
            query["namespace"] = namespace
        state = self.control("GET", "state?" + urllib.parse.urlencode(query))
        return state.get("objects", {}).get(resource, [])

    def ensure_namespace(self, name):
        if not any(o["metadata"]["name"] == name for o in self.objects("namespaces")):
            self.control("POST", "objects", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


def standin_naming():
    """The stand-in's own naming code (so seeded claims and the hub's agree)."""
    if STANDIN not in sys.path:
        sys.path[:0] = [STANDIN, HERE]
    from kubespawner import spawner
    return spawner


def claim_name(ks, user, server="", userid=None):
    ksp = standin_naming()
    template = ks.get("pvc_name_template") or ksp.default_pvc_name_template(ks.get("version"))
    return ksp.expand_template(template, user, server, userid, ks["namespace"])


MARKER_FILE = "hubtest-marker.txt"


def seed_claims(hd, wanted, sizes):
    """Claims as the stand-in makes them at a server's first start, without starting it
    (created through the fake's control API, skipped if one exists), and in each volume
    MARKER_FILE = "claim NAME user USER server SERVER", so a test can see the data survive."""
    state = hd.load_state()
    ks = state.get("kubespawner")
    if not ks:
        die("--claims/--claim-servers need a hub started with --kubespawner K8S_DIR")
    ksp = standin_naming()
    fake = FakeK8s(ks["k8s_dir"])
    existing = {o["metadata"]["name"] for o in fake.objects("persistentvolumeclaims", ks["namespace"])}
    template = ks.get("pvc_name_template") or ksp.default_pvc_name_template(ks.get("version"))
    made, files = [], []
    for user, server in wanted:
        userid = None
        if "{userid}" in template:
            userid = db_user_id(state["db_url"], user)
            if userid is None:
                die(f"template {template!r} needs the id of {user!r}, who is not a hub user")
        name = claim_name(ks, user, server, userid)
        size = sizes.get(f"{user}:{server}" if server else user) or ks.get("storage_capacity") or "10Gi"
        if name not in existing:
            pvc = ksp.pvc_manifest(name, user, server, size, ks.get("storage_class"), version=ks.get("version"))
            pvc["metadata"]["namespace"] = ks["namespace"]
            fake.control("POST", "objects", pvc)
            existing.add(name)
            made.append(name)
        files.append({"volume": name, "namespace": ks["namespace"], "path": MARKER_FILE,
                      "content": f"claim {name} user {user} server {server}\n"})
    # A claim's data lives in its bound volume: give the fake's volume controller a moment
    # to bind (a claim of a WaitForFirstConsumer class stays unbound until a pod uses it;
    # then the fake keeps the file under the claim's name).
    can_bind = made and (fake.objects("storageclasses") or fake.objects("persistentvolumes"))
    deadline = time.monotonic() + 5
    while can_bind and time.monotonic() < deadline:
        claims = {o["metadata"]["name"]: o for o in fake.objects("persistentvolumeclaims", ks["namespace"])}
        if all(claims.get(n, {}).get("spec", {}).get("volumeName") for n in made):
            break
        time.sleep(0.1)
    fake.control("POST", "files", files)
    return made


def db_user_id(db_url, name):
    conn, p = db_connect(db_url)
    try:
        cur = conn.cursor()
        cur.execute(f"SELECT id FROM users WHERE name = {p}", (name,))
        row = cur.fetchone()
        return row[0] if row else None
    finally:
        conn.close()


def cmd_claim_name(args):
    """The claim name the stand-in uses for USER's (named) server on this hub."""
    hd = HubDir(args.dir)
    state = hd.load_state()
    if not state.get("kubespawner"):
        die("this hub was not started with --kubespawner")
    userid = db_user_id(state["db_url"], args.user) if "{userid}" in (
        state["kubespawner"].get("pvc_name_template") or "") else None
    print(claim_name(state["kubespawner"], args.user, args.server or "", userid))


def cmd_stop(args):
    hd = HubDir(args.dir)
    if not os.path.exists(hd.file("state.json")):
        return  # never started: nothing to stop (lets cleanup run unconditionally)
    stop_all(hd, hd.load_state())


def cmd_restart(args):
    hd = HubDir(args.dir)
    state = hd.load_state()
    if args.ops_scopes is not None:  # the same token, other scopes (from now on, seeding's restarts too)
        state["ops_scopes"] = [x for x in args.ops_scopes.split(",") if x]
    stop_all(hd, state)
    launch_or_die(hd, state, state.get("timeout", 60))


# ---------------------------------------------------------------- the hub's database

def db_connect(db_url):
    """-> (DB-API connection, placeholder) for the hub's own database."""
    if db_url.startswith("sqlite:///"):
        import sqlite3
        return sqlite3.connect(db_url[len("sqlite:///"):]), "?"
    if db_url.startswith(("postgresql://", "postgres://", "postgresql+psycopg2://")):
        import psycopg2
        return psycopg2.connect(db_url.replace("postgresql+psycopg2://", "postgresql://")), "%s"
    die(f"cannot write to database {db_url.split(':')[0]}")


def db_time(conn, when):
    """JupyterHub 3.0 stores naive UTC; SQLAlchemy writes sqlite DATETIME as this text."""
    if when is None:
        return None
    naive = when.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return naive.strftime("%Y-%m-%d %H:%M:%S.%f") if type(conn).__module__ == "sqlite3" else naive


def update_db(db_url, sql, rows):
    """Run one UPDATE per (when, name) row; -> names that matched nothing."""
    conn, p = db_connect(db_url)
    missing = []
    try:
        cur = conn.cursor()
        for when, name in rows:
            cur.execute(sql.format(p=p), (db_time(conn, when), name))
            if cur.rowcount != 1:
                missing.append(name)
        conn.commit()
    finally:
        conn.close()
    return missing


def insert_users_db(db_url, rows):
    """Insert users exactly as the API leaves them (a users row, the default
    `user` role, an empty default spawner row) -- for 10,000 users the API takes
    ~100 s, this ~1 s. rows: (name, created, last_activity or None)."""
    conn, p = db_connect(db_url)
    try:
        cur = conn.cursor()
        cur.executemany(
            f"INSERT INTO users (name, admin, created, last_activity, cookie_id) VALUES ({p}, {p}, {p}, {p}, {p})",
            [(name, False, db_time(conn, created), db_time(conn, last), uuid.uuid4().hex)
             for name, created, last in rows])
        # Roles and spawners for every user that lacks them: only the new ones.
        cur.execute("""INSERT INTO user_role_map (user_id, role_id)
            SELECT u.id, r.id FROM users u, roles r WHERE r.name = 'user'
            AND NOT EXISTS (SELECT 1 FROM user_role_map m WHERE m.user_id = u.id)""")
        cur.execute("""INSERT INTO spawners (user_id, name)
            SELECT u.id, '' FROM users u
            WHERE NOT EXISTS (SELECT 1 FROM spawners s WHERE s.user_id = u.id AND s.name = '')""")
        conn.commit()
    finally:
        conn.close()


def cmd_backdate_created(args):
    """The API cannot set `created`: stop the hub, UPDATE users.created, start
    it again on the same ports with the same tokens."""
    created = {}
    for pair in args.pairs:
        name, sep, when = pair.rpartition("=")
        if not sep or not name:
            die(f"expected NAME=WHEN, got {pair!r}")
        parse_when(when)  # fail before stopping the hub
        created[name] = when
    write_db_offline(HubDir(args.dir), [], created)


# ---------------------------------------------------------------- seeding

def spec_from_args(args):
    """The compact CLI form, turned into the same dict a --spec file holds."""
    spec = {}
    if args.spec:
        with open(args.spec) as f:
            spec = json.load(f)
    spec.setdefault("users", [])
    spec["users"] += [u for arg in args.user for u in arg.split(",") if u]
    for g in args.generate:  # PREFIX:COUNT[:ACTIVITY[:CREATED]], empty = leave as is
        prefix, count, activity, created = (g.split(":", 3) + ["", ""])[:4]
        gen = {"prefix": prefix, "count": int(count), "via": "db" if args.via_db else "api"}
        gen.update({k: v for k, v in (("last_activity", activity), ("created", created)) if v})
        spec.setdefault("generate", []).append(gen)
    for key, pairs in (("last_activity", args.activity), ("created", args.created)):
        for pair in pairs:
            name, _, when = pair.rpartition("=")
            spec.setdefault(key, {})[name] = when
    for key, values in (("admins", args.admin), ("running", args.running), ("pending", args.pending)):
        spec.setdefault(key, []).extend(v for arg in values for v in arg.split(",") if v)
    for g in args.group:  # NAME=a,b
        name, _, members = g.partition("=")
        spec.setdefault("groups", {})[name] = [m for m in members.split(",") if m]
    for n in args.named_server:  # USER/SERVER
        user, _, server = n.partition("/")
        spec.setdefault("named_servers", {}).setdefault(user, []).append(server)
    spec.setdefault("claims", []).extend(v for arg in args.claims for v in arg.split(",") if v)
    for arg in args.claim_servers:  # USER:SERVER[,USER:SERVER]
        for pair in (v for v in arg.split(",") if v):
            user, sep, server = pair.rpartition(":")
            if not sep or not user or not server:
                die(f"--claim-servers wants USER:SERVER, got {pair!r}")
            spec.setdefault("claim_servers", {}).setdefault(user, []).append(server)
    for pair in args.claim_size:  # USER=SIZE or USER:SERVER=SIZE
        key, sep, size = pair.rpartition("=")
        if not sep or not key:
            die(f"--claim-size wants USER[:SERVER]=SIZE, got {pair!r}")
        spec.setdefault("claim_sizes", {})[key] = size
    return spec


class Plan:
    """A spec expanded to names: who is created through the API, who is
    inserted in the database, and the times to give them."""

    def __init__(self, spec):
        self.api_names = list(spec.get("users", []))
        self.db_names = []
        self.activity = dict(spec.get("last_activity", {}))
        self.created = dict(spec.get("created", {}))
        for gen in spec.get("generate", []):
            names = generated_names(gen)
            (self.db_names if gen.get("via") == "db" else self.api_names).extend(names)
            for key, times in (("last_activity", self.activity), ("created", self.created)):
                if gen.get(key):
                    for name in names:
                        times.setdefault(name, gen[key])

    def db_rows(self):
        """(name, created, last_activity) of the users inserted in the database."""
        now = dt.datetime.now(dt.timezone.utc)
        return [(n, parse_when(self.created[n]) if n in self.created else now,
                 parse_when(self.activity[n]) if n in self.activity else None) for n in self.db_names]

    def api_activity(self):
        """{name: WHEN} to POST to /activity: users made through the API."""
        in_db = set(self.db_names)
        return {n: w for n, w in self.activity.items() if n not in in_db}

    def api_created(self):
        """{name: WHEN} to UPDATE: `created` of users that exist already."""
        in_db = set(self.db_names)
        return {n: w for n, w in self.created.items() if n not in in_db}


def generated_names(gen):
    """Zero-padded, so that sorting by name is sorting by number."""
    start, count = gen.get("start", 0), gen["count"]
    width = max(4, len(str(start + count - 1)))
    return [f"{gen['prefix']}{i:0{width}d}" for i in range(start, start + count)]


def create_users(client, names, chunk=500):
    """Bulk POST /users in chunks (~5 ms a user: the hub commits several times
    per user). -> names the hub says it created."""
    made = []
    for i in range(0, len(names), chunk):
        status, body = client.request("POST", "/users", {"usernames": names[i:i + chunk]})
        if status == 409:  # every one of them exists already
            continue
        if status != 201:
            raise ApiError(status, "POST", "/users", json.dumps(body))
        made += [u["name"] for u in body]
    return made


def check_created(client, names, made):
    """The hub lowercases names in a bulk create; a name it did not make as asked
    and that did not exist before is an error, not a surprise later."""
    made = set(made)
    odd = [n for n in names if n not in made and client.request("GET", "/users/" + quote_name(n))[0] != 200]
    if odd:
        die("the hub renamed or refused: " + ", ".join(odd) + " (made: " + ", ".join(sorted(made - set(names))) + ")")


def set_activity(client, activity):
    """last_activity only moves forward (an older value is ignored with 200), and
    new users have none, so this must run right after creation."""
    for name, when in activity.items():
        client.call("POST", f"/users/{quote_name(name)}/activity",
                    {"last_activity": iso_z(parse_when(when))})


def write_db_offline(hd, rows, created):
    """One stop/start of the hub for what the API cannot do: insert users
    (rows), set `created` ({name: WHEN}). The hub caches users in memory, so
    its database is written only while it is stopped."""
    state = hd.load_state()
    stop_all(hd, state)
    if rows:
        insert_users_db(state["db_url"], rows)
    missing = update_db(state["db_url"], "UPDATE users SET created = {p} WHERE name = {p}",
                        [(parse_when(w), n) for n, w in created.items()])
    launch_or_die(hd, state, state.get("timeout", 60))
    if missing:
        die("cannot backdate unknown user(s): " + ", ".join(missing))


def make_admins(client, names):
    for name in names:
        client.call("PATCH", "/users/" + quote_name(name), {"admin": True})


def make_groups(client, groups):
    """POST /groups/{name} with its members (needs admin:groups: the harness token); a group that
    exists already (409) gets the members added (POST /groups/{name}/users), so seeding twice works."""
    for name, members in groups.items():
        path = "/groups/" + urllib.parse.quote(name, safe="")
        status, _ = client.request("POST", path, {"users": members})
        if status == 409:
            client.call("POST", path + "/users", {"users": members})
        elif status not in (200, 201):
            raise ApiError(status, "POST", path, "")


def server_path(user, server=""):
    return f"/users/{quote_name(user)}/server" + (f"s/{urllib.parse.quote(server, safe='')}" if server else "")


def start_servers(hd, client, names, named, timeout=60):
    """Start REAL single-user servers and wait until each is ready in `servers`."""
    wanted = [(n, "") for n in names] + [(u, s) for u, ss in named.items() for s in ss]
    for user, server in wanted:
        client.call("POST", server_path(user, server))
    deadline = time.monotonic() + timeout
    for user, server in wanted:
        while True:
            model = client.user(user).get("servers", {}).get(server)
            if model and model.get("ready"):
                break
            # A failed spawn vanishes from `servers` (the POST already said 202).
            if model is None or time.monotonic() > deadline:
                why = "failed" if model is None else f"not ready after {timeout}s"
                raise RuntimeError(f"server {user!r}/{server!r} {why}; {hd.file('hub.log')} ends:\n"
                                   + log_tail(hd, 15))
            time.sleep(0.2)


def log_tail(hd, lines):
    with open(hd.file("hub.log"), "rb") as f:
        f.seek(max(0, os.path.getsize(hd.file("hub.log")) - 20000))
        return b"".join(f.read().splitlines(True)[-lines:]).decode("utf-8", "replace")


def start_pending(client, names, delay_users):
    """Spawns that stay pending: the hub must have been started with
    --spawner-delay-users naming these users."""
    for name in names:
        if name not in delay_users:
            die(f"{name!r} must be in --spawner-delay-users at `hub.py start` to stay pending")
        client.call("POST", server_path(name), ok=(201, 202))
    for name in names:
        model = client.user(name)
        if model.get("pending") != "spawn":
            raise RuntimeError(f"{name!r} is not pending spawn: {model}")


def seed(hd, spec):
    """Apply a spec in the only order that works: create, activity (it only
    moves forward), database writes (a restart, which would end any server),
    admins and groups, and only then real and pending servers."""
    plan = Plan(spec)
    timings = {}

    def step(label, fn, *a):
        t0 = time.monotonic()
        result = fn(*a)
        timings[label] = round(time.monotonic() - t0, 2)
        return result

    client = hd.client()
    made = step("create", create_users, client, plan.api_names)
    check_created(client, plan.api_names, made)
    step("activity", set_activity, client, plan.api_activity())
    rows, created = plan.db_rows(), plan.api_created()
    if rows or created:
        step("db", write_db_offline, hd, rows, created)
        client = hd.client()
    step("admins", make_admins, client, spec.get("admins", []))
    step("groups", make_groups, client, spec.get("groups", {}))
    claims = [(u, "") for u in spec.get("claims", [])] + \
        [(u, srv) for u, srvs in spec.get("claim_servers", {}).items() for srv in srvs]
    if claims:
        step("claims", seed_claims, hd, claims, spec.get("claim_sizes", {}))
    step("running", start_servers, hd, client, spec.get("running", []), spec.get("named_servers", {}))
    step("pending", start_pending, client, spec.get("pending", []), hd.load_state()["delay_users"])
    print(f"hub.py: seeded {len(made)} users through the API, {len(rows)} in the database: " +
          " ".join(f"{k}={v}s" for k, v in timings.items()), file=sys.stderr)


def cmd_seed(args):
    seed(HubDir(args.dir), spec_from_args(args))


def cmd_users(args):
    for user in HubDir(args.dir).client().list_users():
        print(user["name"])


def cmd_count(args):
    print(HubDir(args.dir).client().count_users())


def cmd_api(args):
    """One call with the `ops` token; prints the JSON body, exits 0 on 2xx."""
    hd = HubDir(args.dir)
    body = json.loads(args.json) if args.json else None
    status, parsed = hd.client("token").request(args.method.upper(), args.path, body)
    print(json.dumps(parsed, indent=1) if parsed is not None else "")
    print(f"HTTP {status}", file=sys.stderr)
    sys.exit(0 if 200 <= status < 300 else 1)


def cmd_http(args):
    """One request to any URL; prints the body, a newline and the status (like
    curl -w '\\n%{http_code}'), so hub.sh works where curl is not installed."""
    url = urllib.parse.urlsplit(args.url)
    headers = {"Accept": args.accept}
    if args.token_file:
        with open(args.token_file) as f:
            headers["Authorization"] = "token " + f.read().strip()
    body = None
    if args.data is not None:
        body = args.data.encode()
        headers["Content-Type"] = "application/json"
    conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=60)
    try:
        conn.request(args.method, url.path + ("?" + url.query if url.query else ""), body=body, headers=headers)
        resp = conn.getresponse()
        text = resp.read().decode("utf-8", "replace")
    except OSError as e:
        die(f"{args.method} {args.url}: {e}")
    sys.stdout.write(f"{text}\n{resp.status}")


SEED_HELP = """\
SPEC.json keys (all optional; the options below add to them):
  "users": ["alice", "ana.maria@example.edu"],
  "generate": [{"prefix": "u", "count": 1000, "start": 0, "last_activity": "-100d",
                "created": "-200d", "via": "api"}],   ("db": inserted in the database)
  "last_activity": {"alice": "2020-01-01T00:00:00Z", "bob": "-3d"},
  "created": {"alice": "-30d"},            (restarts the hub: see backdate-created)
  "admins": ["alice"],
  "groups": {"staff": ["alice", "bob"]},
  "running": ["carol"],                    (real jupyterhub-singleuser, waits until ready)
  "named_servers": {"carol": ["lab2"]},
  "pending": ["dave"],                     (needs start --spawner-delay-users dave)
  "claims": ["alice", "josé"],             (needs start --kubespawner: PVCs named and labelled
  "claim_servers": {"bob": ["work"]},       as the stand-in does at a first start, each with
  "claim_sizes": {"alice": "20Gi", "bob:work": "5Gi"}   hubtest-marker.txt in its volume)
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def command(name, fn, **kw):
        p = sub.add_parser(name, **kw)
        p.add_argument("--dir", required=True, help="the hub's directory")
        p.set_defaults(fn=fn)
        return p

    p = command("start", cmd_start)
    p.add_argument("--db-url", help="e.g. postgresql://hub:pw@127.0.0.1:5432/jupyterhub (default: sqlite in DIR)")
    p.add_argument("--spawner-delay-users", help="comma list: their spawns stay pending")
    p.add_argument("--spawner-slow-stop-users", help="comma list: their servers take 5 s to stop")
    p.add_argument("--timeout", type=float, default=60, help="seconds to wait for the API (default 60)")
    p.add_argument("--ops-scopes", metavar="A,B,C",
                   help="the `ops` token's scopes, replacing the default list (e.g. without read:hub)")
    p.add_argument("--kubespawner", metavar="K8S_DIR",
                   help="spawner: the KubeSpawner stand-in, its claims on the fake-k8s running in K8S_DIR")
    p.add_argument("--kube-namespace", default="hub", metavar="NS",
                   help="namespace of the claims (default hub; created if missing)")
    p.add_argument("--kube-token-file", metavar="F",
                   help="the stand-in's bearer token file (default K8S_DIR/tokens/token-file: token-file-user)")
    p.add_argument("--no-delete-pvc", action="store_true", help="c.KubeSpawner.delete_pvc = False")
    p.add_argument("--pvc-name-template", metavar="T",
                   help="c.KubeSpawner.pvc_name_template (default claim-{user_server} / 6.x claim-{username}--{servername})")
    p.add_argument("--storage-class", metavar="C", help="claims' storageClassName (default none: the default class)")
    p.add_argument("--storage-capacity", metavar="Q", help="claims' requested storage (default 10Gi)")
    p.add_argument("--kubespawner-version", metavar="V",
                   help="KubeSpawner release to imitate and report: 7.1.0 (default) or 6.x, e.g. 6.2.0")
    command("stop", cmd_stop)
    p = command("restart", cmd_restart)
    p.add_argument("--ops-scopes", metavar="A,B,C", help="give the ops token these scopes instead")
    p = command("seed", cmd_seed, epilog=SEED_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--spec", help="JSON file (keys below)")
    p.add_argument("--user", action="append", default=[], metavar="A,B", help="plain users")
    p.add_argument("--generate", action="append", default=[], metavar="PREFIX:COUNT[:ACTIVITY[:CREATED]]",
                   help="PREFIX0000.. with last_activity/created WHEN (empty: null/now)")
    p.add_argument("--via-db", action="store_true",
                   help="insert --generate users in the database (fast; one hub restart) instead of the API")
    p.add_argument("--activity", action="append", default=[], metavar="NAME=WHEN")
    p.add_argument("--created", action="append", default=[], metavar="NAME=WHEN")
    p.add_argument("--admin", action="append", default=[], metavar="A,B")
    p.add_argument("--group", action="append", default=[], metavar="GROUP=A,B")
    p.add_argument("--running", action="append", default=[], metavar="A,B")
    p.add_argument("--named-server", action="append", default=[], metavar="USER/SERVER")
    p.add_argument("--pending", action="append", default=[], metavar="A,B")
    p.add_argument("--claims", action="append", default=[], metavar="A,B",
                   help="claims of these users' default servers, as the KubeSpawner stand-in names them")
    p.add_argument("--claim-servers", action="append", default=[], metavar="USER:SERVER,...",
                   help="claims of named servers")
    p.add_argument("--claim-size", action="append", default=[], metavar="USER[:SERVER]=SIZE",
                   help="requested storage of one seeded claim (default: the hub's, 10Gi)")
    p = command("backdate-created", cmd_backdate_created)
    p.add_argument("pairs", nargs="+", metavar="NAME=WHEN")
    p = command("claim-name", cmd_claim_name)
    p.add_argument("user")
    p.add_argument("server", nargs="?", default="")
    command("users", cmd_users)
    command("count", cmd_count)
    p = command("api", cmd_api)
    p.add_argument("method")
    p.add_argument("path", help="relative to /hub/api, e.g. /users/alice")
    p.add_argument("json", nargs="?")
    p = sub.add_parser("http", help="one request to any URL: body, newline, status")
    p.add_argument("method")
    p.add_argument("url")
    p.add_argument("--token-file", help="send `Authorization: token` read from this file")
    p.add_argument("--accept", default="application/json")
    p.add_argument("--data", help="a JSON body")
    p.set_defaults(fn=cmd_http)
    args = ap.parse_args()
    try:
        args.fn(args)
    except (ApiError, RuntimeError, OSError) as e:
        die(str(e))


if __name__ == "__main__":
    main()
