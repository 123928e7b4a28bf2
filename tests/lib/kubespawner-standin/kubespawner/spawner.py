"""KubeSpawner stand-in: real local servers, KubeSpawner's user storage on a (fake) cluster.

Why: on zero-to-jupyterhub, `DELETE /hub/api/users/NAME` makes the hub call each of the
user's spawners' `delete_forever()` (JupyterHub 1.4.1+), and KubeSpawner's deletes the
user's PersistentVolumeClaim (`delete_pvc` defaults to True since 0.17). Tests of the
runbook need a hub that destroys storage exactly like that, against tests/fake-k8s.

What it follows: the storage code of jupyterhub/kubespawner's kubespawner/spawner.py,
release 7.1.0 (default) or 6.2.0 (KUBESPAWNER_STANDIN_VERSION=6.2.0, which also sets
`kubespawner.__version__`), read in the upstream source and re-written here (no code copied):

- Names: `pvc_name_template`, default `claim-{user_server}` (7.x) or
  `claim-{username}--{servername}` (6.x): both give `claim-<user>` for the default server
  and `claim-<user>--<server>` for a named one. Fields: {username} {servername}
  {user_server} {userid} {unescaped_username} {unescaped_servername} {hubnamespace}
  {escaped_username} {escaped_servername} {escaped_user_server}. Escaping is the `escape`
  slug scheme (KubeSpawner 6's only one; 7's `slug_scheme = "escape"`): escapism with safe
  characters a-z and 0-9 and escape character '-', each other character becoming '-' and
  the upper-case hex of each of its UTF-8 bytes, then the whole lower-cased:
  josé -> jos-c3-a9, "mary ann" -> mary-20ann, a#b -> a-23b, Bob -> -42ob, a-b -> a-2db.
  Trailing '-' are stripped from the rendered name unless the template itself ends in '-'.
- start(): with `storage_pvc_ensure` (True here, as z2jh sets it for dynamic storage), POST
  the claim before starting the server; 409 AlreadyExists is fine; 403 is fine if a GET
  finds the claim (a quota refusal of an existing claim). 7.x remembers the claim name in
  the spawner's state (`remember_pvc_name`) and then does not POST again; so does this.
- The claim: labels `hub.jupyter.org/username=<escaped name>`, `component=singleuser-storage`,
  `app=jupyterhub`, `heritage=jupyterhub`, and from 7.0 `app.kubernetes.io/component=
  singleuser-server`, `app.kubernetes.io/name=jupyterhub`, `app.kubernetes.io/managed-by=
  kubespawner`; annotations `hub.jupyter.org/username=<exact name>`,
  `hub.jupyter.org/servername=<exact server name>` (named servers only), and from 7.0
  `hub.jupyter.org/kubespawner-version`, `hub.jupyter.org/jupyterhub-version`.
  (`hub.jupyter.org/servername` is a label of the pod only, never of the claim.)
  spec: accessModes `storage_access_modes` ([ReadWriteOnce]), resources.requests.storage
  `storage_capacity`, and if `storage_class` is not None both `spec.storageClassName` and the
  annotation `volume.beta.kubernetes.io/storage-class` (None: the cluster's default class).
- delete_forever() (called by the hub when a user, or a named server with remove, is deleted):
  if not delete_pvc: log, keep the claim. If a named server and the template lacks
  '{servername}' (6.x) / '{user_server}' (7.x): the claim is the default server's, keep it.
  (So 7.x with a 6.x-style template never deletes a named server's claim: upstream does that too.)
  Else DELETE the claim, retried until `k8s_api_request_retry_timeout`; 404 is fine. The hub
  awaits this before it answers the DELETE, and logs (does not report) a final failure.

- The user's pod: start() POSTs it after the claim and before the server starts (KubeSpawner
  creates the pod, then waits for it), named by `pod_name_template` (default `jupyter-{user_server}`,
  6.x `jupyter-{username}--{servername}`), labels `component=singleuser-server`,
  `hub.jupyter.org/username=<escaped>`, `hub.jupyter.org/servername=<escaped>` (named servers),
  `app=jupyterhub`, `heritage=jupyterhub`, `hub.jupyter.org/network-access-hub=true`, annotations
  `hub.jupyter.org/username=<exact>` (and `servername`); a 409 (a pod left from before) is
  replaced: DELETE, wait until gone, POST again, as KubeSpawner does. stop() DELETEs the pod (404
  fine) and waits until it is gone before the hub is told the server stopped.

Not like the real one: the pod is only a record on the fake cluster (the server itself is a local
process, hubtest.spawner.SlowSpawner, so --spawner-delay-users / --spawner-slow-stop-users still
work), nothing in it runs and poll() does not look at it; no `safe` slug scheme
(7.x's default: it keeps valid names and hashes others, e.g. josé -> jos---<8 hex>); the
username label is the escaped name (7.x puts its safe slug there: equal for names that are
valid labels such as alice, a hash suffix otherwise): match claims by the annotation. The
storage_capacity default is z2jh's 10Gi (KubeSpawner's own is None). No storage_selector,
storage_extra_labels/annotations, legacy-name lookup, user namespaces. HTTP through the
stdlib (urllib, ssl) in a thread, with `api_url`, `ca_file` and `token_file` (re-read at each
request, as a rotating service-account token) instead of kubernetes_asyncio's in-cluster
config; transient failures (connection errors, timeouts, 429, 5xx) are retried, where
upstream retries only its own request timeouts.
"""
import asyncio
import functools
import json
import os
import ssl
import string
import time
import urllib.error
import urllib.parse
import urllib.request

import jupyterhub
from hubtest.spawner import SlowSpawner
from traitlets import Bool, Integer, List, Unicode, default

from . import __version__

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
_SAFE = frozenset(string.ascii_lowercase + string.digits)


# ---------------------------------------------------------------- names (also used by hub.py seed)

def escape_slug(name):
    """KubeSpawner's `escape` slug scheme (escapism, safe a-z0-9, escape char '-'), lower-cased."""
    out = []
    for ch in name:
        if ch in _SAFE:
            out.append(ch)
        else:
            out.extend("-%X" % byte for byte in ch.encode("utf-8"))
    return "".join(out).lower()


def is_v6(version=None):
    v = version or __version__
    return v.split(".")[0].isdigit() and int(v.split(".")[0]) < 7


def default_pvc_name_template(version=None):
    return "claim-{username}--{servername}" if is_v6(version) else "claim-{user_server}"


def expand_template(template, username, servername="", userid=None, namespace="default"):
    """A KubeSpawner template rendered for one user's server (`escape` scheme).
    userid is needed only by templates that use {userid}."""
    servername = servername or ""
    esc_user, esc_server = escape_slug(username), escape_slug(servername)
    fields = dict(
        unescaped_username=username,
        unescaped_servername=servername,
        hubnamespace="user" if namespace == "default" else namespace,
        username=esc_user,
        servername=esc_server,
        user_server=f"{esc_user}--{esc_server}" if servername else esc_user,
        escaped_username=esc_user,
        escaped_servername=esc_server,
        escaped_user_server=f"{esc_user}--{esc_server}",
    )
    if userid is not None:
        fields["userid"] = userid
    try:
        rendered = template.format(**fields)
    except KeyError as e:
        raise ValueError(f"pvc template {template!r}: field {e} unknown or unavailable") from None
    # The trailing '--' of an empty server name goes, unless the template ends in '-' itself.
    return rendered if template.endswith("-") else rendered.rstrip("-")


def default_pod_name_template(version=None):
    return "jupyter-{username}--{servername}" if is_v6(version) else "jupyter-{user_server}"


def pod_manifest(name, username, servername="", image="quay.io/jupyterhub/k8s-singleuser-sample:standin"):
    """The pod KubeSpawner creates for a user's server (its labels and annotations; a minimal spec)."""
    labels = {"component": "singleuser-server", "app": "jupyterhub", "heritage": "jupyterhub",
              "hub.jupyter.org/network-access-hub": "true", "hub.jupyter.org/username": escape_slug(username)}
    annotations = {"hub.jupyter.org/username": username}
    if servername:
        labels["hub.jupyter.org/servername"] = escape_slug(servername)
        annotations["hub.jupyter.org/servername"] = servername
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels, "annotations": annotations},
            "spec": {"containers": [{"name": "notebook", "image": image}], "restartPolicy": "OnFailure"}}


def pvc_manifest(name, username, servername="", capacity="10Gi", storage_class=None,
                 access_modes=("ReadWriteOnce",), version=None):
    """The PersistentVolumeClaim KubeSpawner creates for a user's server."""
    version = version or __version__
    labels = {"hub.jupyter.org/username": escape_slug(username)}
    if is_v6(version):
        labels.update({"app": "jupyterhub", "heritage": "jupyterhub"})
    else:
        labels.update({"app.kubernetes.io/name": "jupyterhub", "app.kubernetes.io/managed-by": "kubespawner",
                       "app": "jupyterhub", "heritage": "jupyterhub",
                       "app.kubernetes.io/component": "singleuser-server"})
    labels["component"] = "singleuser-storage"
    annotations = {"hub.jupyter.org/username": username}
    if servername:
        annotations["hub.jupyter.org/servername"] = servername
    if not is_v6(version):
        annotations["hub.jupyter.org/kubespawner-version"] = version
        annotations["hub.jupyter.org/jupyterhub-version"] = jupyterhub.__version__
    spec = {"accessModes": list(access_modes), "resources": {"requests": {"storage": capacity}}}
    if storage_class is not None:
        annotations["volume.beta.kubernetes.io/storage-class"] = storage_class
        spec["storageClassName"] = storage_class
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "labels": labels, "annotations": annotations}, "spec": spec}


# ---------------------------------------------------------------- a minimal Kubernetes client

class K8sError(Exception):
    def __init__(self, method, path, status, body):
        self.status, self.body = status, body
        reason = body.get("reason") if isinstance(body, dict) else None
        message = body.get("message") if isinstance(body, dict) else str(body)[:200]
        super().__init__(f"{method} {path}: {status or 'no answer'} {reason or ''}: {message}")

    @property
    def transient(self):
        return self.status is None or self.status == 429 or self.status >= 500


class K8sClient:
    """Blocking JSON requests (run them in an executor). The token is read at each request."""

    def __init__(self, api_url, ca_file, token_file, timeout):
        self.api_url, self.ca_file, self.token_file, self.timeout = api_url.rstrip("/"), ca_file, token_file, timeout
        self._ssl = None

    def _context(self):
        if self._ssl is None:
            self._ssl = ssl.create_default_context(cafile=self.ca_file or None)
        return self._ssl

    def request(self, method, path, body=None):
        """-> (status, parsed body); raises K8sError for >= 400 or no answer."""
        headers = {"Accept": "application/json", "User-Agent": f"kubespawner-standin/{__version__}"}
        https = self.api_url.startswith("https:")
        if https and self.token_file:  # credentials only over TLS, as client-go does
            with open(self.token_file) as f:
                headers["Authorization"] = "Bearer " + f.read().strip()
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.api_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout,
                                        context=self._context() if https else None) as resp:
                return resp.status, _parse(resp.read())
        except urllib.error.HTTPError as e:
            raise K8sError(method, path, e.code, _parse(e.read())) from None
        except (urllib.error.URLError, OSError) as e:  # refused, reset, timed out, TLS
            raise K8sError(method, path, None, {"message": str(getattr(e, "reason", e))}) from None


def _parse(raw):
    text = raw.decode("utf-8", "replace")
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text


def _read(path, fallback):
    try:
        with open(path) as f:
            return f.read().strip() or fallback
    except OSError:
        return fallback


# ---------------------------------------------------------------- the spawner

class KubeSpawner(SlowSpawner):
    """Local servers (hubtest.spawner.SlowSpawner) + KubeSpawner's PVC lifecycle."""

    api_url = Unicode(config=True, help="Kubernetes API server URL (default: in-cluster KUBERNETES_SERVICE_*).")
    ca_file = Unicode(SA_DIR + "/ca.crt", config=True, help="CA bundle that signed the API server's certificate.")
    token_file = Unicode(SA_DIR + "/token", config=True, help="Bearer token file, re-read at each request.")
    namespace = Unicode(config=True, help="Namespace of the claims (default: the service account's, else default).")
    delete_pvc = Bool(True, config=True, help="Delete the claim in delete_forever() (KubeSpawner >= 0.17: True).")
    pvc_name_template = Unicode(config=True, help="Claim name template (see the module header).")
    storage_pvc_ensure = Bool(True, config=True, help="Create the claim at start (z2jh: dynamic storage).")
    storage_capacity = Unicode("10Gi", allow_none=True, config=True, help="resources.requests.storage.")
    storage_class = Unicode(None, allow_none=True, config=True, help="storageClassName (None: the default class).")
    storage_access_modes = List(Unicode(), ["ReadWriteOnce"], config=True)
    remember_pvc_name = Bool(True, config=True, help="7.x: keep the claim name in the spawner's state.")
    pod_name_template = Unicode(config=True, help="Pod name template (see the module header).")
    create_pods = Bool(True, config=True, help="Create and delete the user's pod on the cluster.")
    k8s_api_request_timeout = Integer(3, config=True, help="Seconds for one API request.")
    k8s_api_request_retry_timeout = Integer(30, config=True, help="Seconds to keep retrying transient failures.")

    @default("api_url")
    def _default_api_url(self):
        host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        return f"https://{host}:{port}" if host else "https://kubernetes.default.svc"

    @default("namespace")
    def _default_namespace(self):
        return _read(SA_DIR + "/namespace", "default")

    @default("pvc_name_template")
    def _default_pvc_name_template(self):
        return default_pvc_name_template()

    @default("pod_name_template")
    def _default_pod_name_template(self):
        return default_pod_name_template()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # As upstream: computed once from the template (a later load_state may replace it),
        # and remembered in the state only once the claim is known to exist.
        self._pvc_exists = False
        self.pvc_name = self._expand_user_properties(self.pvc_name_template) if self.user else None
        self.pod_name = self._expand_user_properties(self.pod_name_template) if self.user else None

    def _expand_user_properties(self, template):
        return expand_template(template, self.user.name, self.name or "", getattr(self.user, "id", None),
                               self.namespace)

    # -- state: 7.x persists the claim name so that a template change does not detach it

    def get_state(self):
        state = super().get_state()
        if not is_v6():
            state["kubespawner_version"] = __version__
            if self._pvc_exists:
                state["pvc_name"] = self.pvc_name
        return state

    def load_state(self, state):
        super().load_state(state)
        if not is_v6() and "pvc_name" in state and self.remember_pvc_name:
            self.pvc_name = state["pvc_name"]
            self._pvc_exists = True

    # -- the API, off the hub's event loop

    def _client(self):
        return K8sClient(self.api_url, self.ca_file, self.token_file, self.k8s_api_request_timeout)

    async def _api(self, method, path, body=None):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(self._client().request, method, path, body))

    async def _retrying(self, what, fn):
        """Run `fn` until it returns, retrying transient failures with exponential backoff."""
        deadline = time.monotonic() + self.k8s_api_request_retry_timeout
        wait = 0.2
        while True:
            try:
                return await fn()
            except K8sError as e:
                if not e.transient or time.monotonic() + wait > deadline:
                    self.log.error("%s: giving up: %s", what, e)
                    raise
                self.log.warning("%s: %s; retrying in %.1fs", what, e, wait)
            await asyncio.sleep(wait)
            wait = min(wait * 2, 5)

    def _pvc_path(self, name=None):
        ns = urllib.parse.quote(self.namespace, safe="")
        path = f"/api/v1/namespaces/{ns}/persistentvolumeclaims"
        return path + "/" + urllib.parse.quote(name, safe="") if name else path

    def get_pvc_manifest(self):
        return pvc_manifest(self.pvc_name, self.user.name, self.name or "", self.storage_capacity,
                            self.storage_class, self.storage_access_modes)

    async def _create_pvc(self):
        async def attempt():
            self.log.info("Attempting to create pvc %s for %s", self.pvc_name, self._log_name)
            try:
                await self._api("POST", self._pvc_path(), self.get_pvc_manifest())
            except K8sError as e:
                if e.status == 409:
                    self.log.info("PVC %s already exists, so did not create new pvc.", self.pvc_name)
                elif e.status == 403:
                    # Quota is checked before existence: an existing claim is still fine.
                    try:
                        await self._api("GET", self._pvc_path(self.pvc_name))
                    except K8sError:
                        raise e from None
                    self.log.info("PVC %s already exists, possibly have reached quota though.", self.pvc_name)
                else:
                    raise
        await self._retrying(f"Could not create PVC {self.pvc_name}", attempt)

    def _pod_path(self, name=None):
        ns = urllib.parse.quote(self.namespace, safe="")
        path = f"/api/v1/namespaces/{ns}/pods"
        return path + "/" + urllib.parse.quote(name, safe="") if name else path

    async def _delete_pod(self):
        """DELETE the pod (404 fine) and wait until it is gone, as KubeSpawner's stop() does."""
        async def attempt():
            self.log.info("Deleting pod %s", self.pod_name)
            try:
                await self._api("DELETE", self._pod_path(self.pod_name))
            except K8sError as e:
                if e.status != 404:
                    raise
        await self._retrying(f"Could not delete pod {self.pod_name}", attempt)

        async def gone():
            try:
                await self._api("GET", self._pod_path(self.pod_name))
            except K8sError as e:
                if e.status == 404:
                    return
                raise
            raise K8sError("GET", self._pod_path(self.pod_name), 503, {"message": "pod still terminating"})
        await self._retrying(f"Pod {self.pod_name} did not go", gone)

    async def _create_pod(self):
        manifest = pod_manifest(self.pod_name, self.user.name, self.name or "")

        async def attempt():
            self.log.info("Attempting to create pod %s for %s", self.pod_name, self._log_name)
            try:
                await self._api("POST", self._pod_path(), manifest)
            except K8sError as e:
                if e.status != 409:
                    raise
                self.log.warning("Found existing pod %s, attempting to kill", self.pod_name)
                await self._delete_pod()
                await self._api("POST", self._pod_path(), manifest)
        await self._retrying(f"Could not create pod {self.pod_name}", attempt)

    async def start(self):
        if self.storage_pvc_ensure and not self._pvc_exists:
            await self._create_pvc()
            self._pvc_exists = True
        if self.create_pods:
            await self._create_pod()
        return await super().start()

    async def stop(self, now=False):
        if self.create_pods:
            await self._delete_pod()
        return await super().stop(now=now)

    async def delete_forever(self):
        """The hub calls this for the default server when the user is deleted, and for a
        named server when it is deleted (not merely stopped)."""
        if not self.delete_pvc:
            self.log.info("Not deleting pvc for %s: %s", self._log_name, self.pvc_name)
            return
        marker = "{servername}" if is_v6() else "{user_server}"
        if self.name and marker not in self.pvc_name_template:
            # The named server uses the default server's claim: not ours to delete.
            self.log.info("Not deleting shared pvc for named server %s: %s", self._log_name, self.pvc_name)
            return

        async def attempt():
            self.log.info("Deleting pvc %s", self.pvc_name)
            try:
                await self._api("DELETE", self._pvc_path(self.pvc_name))
            except K8sError as e:
                if e.status != 404:
                    raise
                self.log.warning("No pvc %s to delete. Assuming already deleted.", self.pvc_name)
        await self._retrying(f"Could not delete pvc {self.pvc_name}", attempt)
