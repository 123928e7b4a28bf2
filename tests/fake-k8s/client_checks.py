#!/usr/bin/python3
"""Checks of the fake with real clients: Debian's python3-kubernetes and a raw WebSocket client.

    /usr/bin/python3 tests/fake-k8s/client_checks.py DIR

DIR is a running fake started with make-seed.py's seed. Prints one line per check:
"ok<TAB>description" or "not ok<TAB>description<TAB>detail"; tests/30-fake-k8s.t turns
them into TAP. A check that raises is reported as failed and the others still run.
"""

import hashlib
import http.client
import json
import os
import sys
import time
import traceback

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kubernetes  # noqa: E402
from kubernetes import client, config  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402
from kubernetes.stream import stream  # noqa: E402

from fakek8s.client import Fake, RawExec  # noqa: E402

FAKE = Fake(sys.argv[1])
KUBECONFIG = FAKE.env["KUBECONFIG_FILE"]


def report(ok, description, detail=""):
    line = ("ok" if ok else "not ok") + "\t" + description
    if not ok:
        line += "\t" + str(detail).replace("\t", " ").replace("\n", " | ")[:2000]
    print(line, flush=True)


def check(description):
    """Decorator: run the check now; it returns (ok, detail) or raises."""
    def run(fn):
        try:
            result = fn()
            ok, detail = result if isinstance(result, tuple) else (bool(result), "")
        except Exception as e:
            ok, detail = False, "%r %s" % (e, traceback.format_exc().splitlines()[-3:])
        report(ok, description, detail)
        return fn
    return run


def api(context="token"):
    return config.new_client_from_config(config_file=KUBECONFIG, context=context)


def wait_for(predicate, timeout=15, interval=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def api_error(fn):
    try:
        fn()
    except ApiException as e:
        return e
    return None


core = client.CoreV1Api(api())
apps = client.AppsV1Api(api())
custom = client.CustomObjectsApi(api())


def hub_pod(namespace):
    pods = core.list_namespaced_pod(namespace, label_selector="component=hub,app=jupyterhub").items
    running = [p for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp]
    return running[0] if running else None


# ---------------------------------------------------------------- discovery, lists, selectors

@check("python3-kubernetes: /version and discovery answer")
def _():
    version = client.VersionApi(api()).get_code()
    groups = [g.name for g in client.ApisApi(api()).get_api_versions().groups]
    resources = [r["name"] for r in client.CustomObjectsApi(api()).api_client.call_api(
        "/apis/gafaelfawr.lsst.io/v1alpha1", "GET", response_type="object", auth_settings=["BearerToken"],
        _return_http_data_only=True)["resources"]]
    return (version.git_version.startswith("v1.") and "apps" in groups and "gafaelfawr.lsst.io" in groups
            and "gafaelfawringresses" in resources, (version.git_version, groups, resources))


@check("hub pods of both hubs and Nublado found by label selector across namespaces")
def _():
    pods = wait_for(lambda: [p for p in core.list_pod_for_all_namespaces(
        label_selector="component=hub,app=jupyterhub").items if p.status.phase == "Running"])
    namespaces = sorted(p.metadata.namespace for p in pods)
    return namespaces == ["hub-a", "hub-b", "nublado"], namespaces


@check("set-based selectors: in, notin, !=, exists, !key")
def _():
    def names(selector):
        return sorted(p.metadata.namespace for p in core.list_pod_for_all_namespaces(label_selector=selector).items)
    got = {
        "in": names("component in (hub, singleuser-server),app=jupyterhub"),
        "notin": names("component notin (hub)"),
        "!=": names("component!=singleuser-server,app==jupyterhub"),
        "exists": names("hub.jupyter.org/username"),
        "!key": names("!hub.jupyter.org/username"),
    }
    want = {"in": ["hub-a", "hub-b", "nublado", "nublado-alice", "nublado-bob"],
            "notin": ["nublado-alice", "nublado-bob"], "!=": ["hub-a", "hub-b", "nublado"],
            "exists": ["nublado-alice", "nublado-bob"], "!key": ["hub-a", "hub-b", "nublado"]}
    return got == want, got


@check("field selectors metadata.name, metadata.namespace and status.phase; unknown field is a 400")
def _():
    name = hub_pod("hub-a").metadata.name
    by_name = core.list_pod_for_all_namespaces(field_selector="metadata.name=" + name).items
    by_ns = core.list_pod_for_all_namespaces(field_selector="metadata.namespace=hub-b").items
    running = core.list_namespaced_pod("hub-a", field_selector="status.phase=Running").items
    bad = api_error(lambda: core.list_namespaced_pod("hub-a", field_selector="spec.bogus=1"))
    return ([p.metadata.name for p in by_name] == [name] and {p.metadata.namespace for p in by_ns} == {"hub-b"}
            and len(running) == 1 and bad is not None and bad.status == 400
            and "field label not supported" in bad.body, (len(by_name), len(by_ns), len(running), bad))


@check("pagination: limit + continue walks every item once; remainingItemCount counts down")
def _():
    for i in range(7):
        core.create_namespaced_config_map("hub-a", {"metadata": {"name": "page-%d" % i, "labels": {"page": "yes"}}})
    seen, token, remaining = [], None, []
    while True:
        page = core.list_namespaced_config_map("hub-a", label_selector="page=yes", limit=3, _continue=token)
        seen += [c.metadata.name for c in page.items]
        remaining.append(page.metadata.remaining_item_count)
        token = page.metadata._continue
        if not token:
            break
    return seen == ["page-%d" % i for i in range(7)] and remaining == [4, 1, None], (seen, remaining)


@check("an expired continue token is 410 Expired")
def _():
    page = core.list_namespaced_config_map("hub-a", label_selector="page=yes", limit=2)
    FAKE.control("POST", "continue-tokens/expire")
    error = api_error(lambda: core.list_namespaced_config_map("hub-a", label_selector="page=yes", limit=2,
                                                              _continue=page.metadata._continue))
    body = json.loads(error.body) if error else {}
    return error is not None and error.status == 410 and body.get("reason") == "Expired", (error, body)


@check("watch from a list's resourceVersion sees ADDED, MODIFIED, DELETED in order")
def _():
    import threading
    from kubernetes import watch
    rv = core.list_namespaced_config_map("nublado").metadata.resource_version

    def churn():
        time.sleep(0.3)
        core.create_namespaced_config_map("nublado", {"metadata": {"name": "watched"}})
        core.patch_namespaced_config_map("watched", "nublado", {"data": {"k": "v"}})
        core.delete_namespaced_config_map("watched", "nublado")
    threading.Thread(target=churn).start()
    seen = []
    for event in watch.Watch().stream(core.list_namespaced_config_map, "nublado", resource_version=rv,
                                      timeout_seconds=3):
        if event["object"].metadata.name == "watched":
            seen.append(event["type"])
        if len(seen) == 3:
            break
    return seen == ["ADDED", "MODIFIED", "DELETED"], seen


# ---------------------------------------------------------------- deployments

@check("rollout restart (strategic merge patch) bumps generation and brings a new Ready pod")
def _():
    before = apps.read_namespaced_deployment("hub", "hub-a")
    old_pod = hub_pod("hub-a").metadata.name
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    patched = apps.patch_namespaced_deployment("hub", "hub-a", {"spec": {"template": {"metadata": {
        "annotations": {"kubectl.kubernetes.io/restartedAt": now}}}}})

    def rolled_out():
        d = apps.read_namespaced_deployment("hub", "hub-a")
        s = d.status
        done = (s.observed_generation >= d.metadata.generation and s.updated_replicas == d.spec.replicas
                and s.replicas == d.spec.replicas and s.available_replicas == d.spec.replicas)
        pods = core.list_namespaced_pod("hub-a", label_selector="component=hub").items
        return done and len(pods) == 1 and pods[0].metadata.name != old_pod and d
    d = wait_for(rolled_out)
    new = hub_pod("hub-a")
    progressing = {c.type: c.reason for c in d.status.conditions} if d else {}
    ready = new and any(c.type == "Ready" and c.status == "True" for c in new.status.conditions)
    return (bool(d) and bool(ready) and patched.metadata.generation == before.metadata.generation + 1
            and progressing.get("Progressing") == "NewReplicaSetAvailable"
            and new.metadata.annotations.get("kubectl.kubernetes.io/restartedAt") == now,
            (before.metadata.generation, patched.metadata.generation, progressing, old_pod))


@check("deleting a deployment's pod makes the controller create a replacement")
def _():
    old = hub_pod("hub-b").metadata.name
    deleted = core.delete_namespaced_pod(old, "hub-b")
    replacement = wait_for(lambda: (hub_pod("hub-b") or None) and hub_pod("hub-b").metadata.name != old
                           and hub_pod("hub-b"))
    gone = wait_for(lambda: old not in [p.metadata.name for p in core.list_namespaced_pod("hub-b").items])
    return (deleted.metadata.deletion_timestamp is not None and bool(replacement) and gone,
            (deleted.metadata.deletion_timestamp, replacement and replacement.metadata.name))


@check("scale to 0 removes the pods, scale to 1 brings one back")
def _():
    apps.patch_namespaced_deployment_scale("hub", "hub-b", {"spec": {"replicas": 0}})
    empty = wait_for(lambda: not core.list_namespaced_pod("hub-b", label_selector="component=hub").items)
    apps.patch_namespaced_deployment("hub", "hub-b", {"spec": {"replicas": 1}})
    back = wait_for(lambda: hub_pod("hub-b"))
    return empty and bool(back), (empty, back)


@check("PUT with a stale resourceVersion is 409 Conflict")
def _():
    d = apps.read_namespaced_deployment("hub", "hub-b")
    apps.patch_namespaced_deployment("hub", "hub-b", {"metadata": {"labels": {"touched": "yes"}}})
    error = api_error(lambda: apps.replace_namespaced_deployment("hub", "hub-b", d))
    return error is not None and error.status == 409 and json.loads(error.body)["reason"] == "Conflict", error


@check("JSON patch (with test) and merge patch on a ConfigMap; failed test is 422")
def _():
    core.patch_namespaced_config_map("page-0", "hub-a", [
        {"op": "test", "path": "/metadata/name", "value": "page-0"},
        {"op": "add", "path": "/data", "value": {"a": "1"}}])
    api_client = api()
    api_client.call_api("/api/v1/namespaces/hub-a/configmaps/page-0", "PATCH", body={"data": {"b": "2", "a": None}},
                        header_params={"Content-Type": "application/merge-patch+json"}, auth_settings=["BearerToken"])
    cm = core.read_namespaced_config_map("page-0", "hub-a")
    error = api_error(lambda: core.patch_namespaced_config_map("page-0", "hub-a", [
        {"op": "test", "path": "/data/b", "value": "nope"}]))
    return cm.data == {"b": "2"} and error is not None and error.status == 422, (cm.data, error)


# ---------------------------------------------------------------- exec

@check("exec via kubernetes.stream: stdout of cat of a file on the hub's volume")
def _():
    pod = hub_pod("nublado").metadata.name
    with open(os.path.join(FAKE.dir, "volumes", "hub-db-nublado", "motd.txt"), "w") as f:
        f.write("hello from /srv/jupyterhub\n")
    out = stream(core.connect_get_namespaced_pod_exec, pod, "nublado", container="hub",
                 command=["cat", "/srv/jupyterhub/motd.txt"], stdout=True, stderr=True, stdin=False, tty=False)
    return out == "hello from /srv/jupyterhub\n", repr(out)


@check("exec: a non-zero exit code reaches the client through the status channel")
def _():
    pod = hub_pod("nublado").metadata.name
    ws = stream(core.connect_get_namespaced_pod_exec, pod, "nublado", container="hub",
                command=["sh", "-c", "echo to-stderr >&2; exit 3"], stdout=True, stderr=True, stdin=False,
                tty=False, _preload_content=False)
    ws.run_forever(timeout=20)
    return ws.returncode == 3 and "to-stderr" in ws.read_stderr(), (ws.returncode,)


@check("exec: the hub's SQLite file is a real database inside the pod")
def _():
    pod = hub_pod("nublado").metadata.name
    out = stream(core.connect_get_namespaced_pod_exec, pod, "nublado", container="hub",
                 command=["/usr/bin/python3", "-c", "import sqlite3; print(sqlite3.connect("
                          "'/srv/jupyterhub/jupyterhub.sqlite').execute('select count(*) from users').fetchone()[0])"],
                 stdout=True, stderr=True, stdin=False, tty=False)
    return out.strip() == "3", repr(out)


@check("exec into a missing pod is a 404 before the upgrade")
def _():
    error = api_error(lambda: stream(core.connect_get_namespaced_pod_exec, "no-such-pod", "nublado",
                                     command=["true"], stdout=True, stderr=True, stdin=False, tty=False))
    return error is not None and "404" in str(error), error


# ---------------------------------------------------------------- custom resources

@check("GafaelfawrIngress: create, get, operator makes its Ingress, delete removes both")
def _():
    body = {"apiVersion": "gafaelfawr.lsst.io/v1alpha1", "kind": "GafaelfawrIngress",
            "metadata": {"name": "extra", "namespace": "nublado"},
            "config": {"baseUrl": "https://data.example.com", "scopes": {"all": ["read:tap"]}},
            "template": {"metadata": {"name": "extra-ingress"}, "spec": {"rules": [{"host": "data.example.com"}]}}}
    created = custom.create_namespaced_custom_object("gafaelfawr.lsst.io", "v1alpha1", "nublado",
                                                     "gafaelfawringresses", body)
    got = custom.get_namespaced_custom_object("gafaelfawr.lsst.io", "v1alpha1", "nublado", "gafaelfawringresses",
                                              "extra")
    net = client.NetworkingV1Api(api())
    ingress = wait_for(lambda: [i for i in net.list_namespaced_ingress("nublado").items
                                if i.metadata.name == "extra-ingress"])
    deleted = custom.delete_namespaced_custom_object("gafaelfawr.lsst.io", "v1alpha1", "nublado",
                                                     "gafaelfawringresses", "extra")
    gone = wait_for(lambda: not [i for i in net.list_namespaced_ingress("nublado").items
                                 if i.metadata.name == "extra-ingress"])
    missing = api_error(lambda: custom.get_namespaced_custom_object(
        "gafaelfawr.lsst.io", "v1alpha1", "nublado", "gafaelfawringresses", "extra"))
    return (created["metadata"]["uid"] == got["metadata"]["uid"] and bool(ingress)
            and deleted.get("kind") == "GafaelfawrIngress" and gone and missing.status == 404,
            (bool(ingress), deleted.get("kind"), gone, missing))


@check("custom resource: python3-kubernetes patches with merge patch; strategic merge patch is 415")
def _():
    patched = custom.patch_namespaced_custom_object("gafaelfawr.lsst.io", "v1alpha1", "nublado",
                                                    "gafaelfawringresses", "proxy", {"config": {"loginRedirect": False}})
    status, _, body = FAKE.request("PATCH", "/apis/gafaelfawr.lsst.io/v1alpha1/namespaces/nublado/"
                                   "gafaelfawringresses/proxy", {"config": {"x": 1}},
                                   content_type="application/strategic-merge-patch+json")
    return (patched["config"]["loginRedirect"] is False and status == 415
            and body.get("reason") == "UnsupportedMediaType", (status, body))


# ---------------------------------------------------------------- namespaces

@check("namespace delete: Terminating with deletionTimestamp, repeat delete 200 (>= 1.17), then 404")
def _():
    def delete(name):
        # The generated client declares V1Status for this call; the server answers the Namespace.
        return json.loads(core.delete_namespace(name, _preload_content=False).data)
    first = delete("nublado-alice")
    terminating = core.read_namespace("nublado-alice")
    again = delete("nublado-alice")
    gone = wait_for(lambda: api_error(lambda: core.read_namespace("nublado-alice")))
    return (first["status"]["phase"] == "Terminating" and first["metadata"].get("deletionTimestamp")
            and terminating.status.phase == "Terminating" and again["status"]["phase"] == "Terminating"
            and gone is not None and gone.status == 404, (first["status"], gone))


@check("creating in a Terminating namespace is 403; legacy mode answers a repeat delete with 409")
def _():
    FAKE.control("POST", "settings", {"legacyNamespaceConflict": True, "namespaceTerminationSeconds": 2})
    core.delete_namespace("nublado-bob")
    forbidden = api_error(lambda: core.create_namespaced_config_map("nublado-bob", {"metadata": {"name": "x"}}))
    conflict = api_error(lambda: core.delete_namespace("nublado-bob"))
    FAKE.control("POST", "settings", {"legacyNamespaceConflict": False, "namespaceTerminationSeconds": 1})
    body = json.loads(conflict.body) if conflict else {}
    return (forbidden is not None and forbidden.status == 403 and conflict is not None and conflict.status == 409
            and "The system is ensuring all content is removed from this namespace." in body.get("message", ""),
            (forbidden, body))


# ---------------------------------------------------------------- authentication

@check("expired token context: 401 Unauthorized Status")
def _():
    error = api_error(lambda: client.CoreV1Api(api("expired")).list_namespace())
    body = json.loads(error.body) if error else {}
    return error is not None and error.status == 401 and body.get("reason") == "Unauthorized", (error, body)


@check("readonly token context: reads work, delete is 403 Forbidden")
def _():
    ro = client.CoreV1Api(api("readonly"))
    pods = ro.list_namespaced_pod("nublado").items
    error = api_error(lambda: ro.delete_namespaced_secret("nublado-secret", "nublado"))
    body = json.loads(error.body) if error else {}
    return (len(pods) >= 1 and error is not None and error.status == 403 and body.get("reason") == "Forbidden"
            and 'cannot delete resource "secrets"' in body.get("message", ""), body)


@check("client certificate contexts (files with relative paths, and inline data) work")
def _():
    files = client.CoreV1Api(api("cert-files")).read_namespaced_secret("nublado-secret", "nublado")
    data = client.CoreV1Api(api("cert-data")).list_namespace().items
    return files.data["hub.db.password"] == "aHViLWRiLXBhc3N3b3Jk" and len(data) >= 5, len(data)


@check("tokenFile context works; after rotation the old token is refused and the new file works")
def _():
    old = client.CoreV1Api(api("token-file"))
    old.list_namespace()
    FAKE.control("POST", "tokens/rotate-file")
    refused = api_error(lambda: old.list_namespace())
    fresh = client.CoreV1Api(api("token-file")).list_namespace()
    return refused is not None and refused.status == 401 and len(fresh.items) > 0, refused


@check("in-cluster service account files and KUBERNETES_SERVICE_* work with the in-cluster loader")
def _():
    from kubernetes.config.incluster_config import InClusterConfigLoader
    os.environ["KUBERNETES_SERVICE_HOST"] = FAKE.env["KUBERNETES_SERVICE_HOST"]
    os.environ["KUBERNETES_SERVICE_PORT"] = FAKE.env["KUBERNETES_SERVICE_PORT"]
    sa = FAKE.env["K8S_SA_DIR"]
    configuration = client.Configuration()
    InClusterConfigLoader(os.path.join(sa, "token"), os.path.join(sa, "ca.crt"))._load_config()
    loader = InClusterConfigLoader(os.path.join(sa, "token"), os.path.join(sa, "ca.crt"))
    loader.load_and_set(configuration)
    items = client.CoreV1Api(client.ApiClient(configuration)).list_namespace().items
    return len(items) >= 5, len(items)


# ---------------------------------------------------------------- dry run, faults, request log

@check("dryRun=All on create, patch and delete changes nothing and is logged as dryRun")
def _():
    created = core.create_namespaced_config_map("hub-a", {"metadata": {"name": "dry"}}, dry_run="All")
    missing = api_error(lambda: core.read_namespaced_config_map("dry", "hub-a"))
    gen = apps.read_namespaced_deployment("hub", "hub-a").metadata.generation
    apps.patch_namespaced_deployment("hub", "hub-a", {"spec": {"replicas": 5}}, dry_run="All")
    apps.delete_namespaced_deployment("hub", "hub-a", dry_run="All")
    core.delete_namespace("hub-a", dry_run="All")
    d = apps.read_namespaced_deployment("hub", "hub-a")
    ns = core.read_namespace("hub-a")
    dry = [r for r in FAKE.requests_log() if r.get("dryRun")]
    return (created.metadata.name == "dry" and missing.status == 404 and d.spec.replicas == 1
            and d.metadata.generation == gen and ns.status.phase == "Active" and len(dry) == 4
            and not any(r.get("mutating") for r in dry), (len(dry), d.spec.replicas, ns.status.phase))


@check("a 429 fault: APF's plain-text body and Retry-After; python3-kubernetes (urllib3) retries it")
def _():
    rule = {"method": "GET", "path": "^/api/v1/namespaces/hub-b/pods", "status": 429, "count": 1}
    FAKE.control("POST", "faults", rule)
    status, headers, body = FAKE.request("GET", "/api/v1/namespaces/hub-b/pods")
    FAKE.control("POST", "faults", rule)
    started = time.time()
    pods = core.list_namespaced_pod("hub-b")  # urllib3 honours Retry-After on 429 by itself
    waited = time.time() - started
    hits = [r["status"] for r in FAKE.requests_log() if r["path"] == "/api/v1/namespaces/hub-b/pods"][-2:]
    return (status == 429 and headers.get("Retry-After") == "1" and headers.get("Content-Type", "").startswith(
        "text/plain") and body == "Too many requests, please try again later.\n" and pods is not None
        and hits == [429, 200] and waited >= 0.9, (status, headers, body, hits, waited))


@check("requests.log records method, path, parsed query, user, status, and exec command and container")
def _():
    log = FAKE.requests_log()
    execs = [r for r in log if "exec" in r]
    return (all({"time", "method", "path", "query", "user", "status"} <= set(r) for r in log if r["status"] != 401)
            and any(r["exec"]["command"] == ["cat", "/srv/jupyterhub/motd.txt"] and r["exec"]["container"] == "hub"
                    for r in execs)
            and not any(r["path"].startswith("/_fake") for r in log), execs[:1])


@check("faults: a delay slows one request down; action=close drops the connection without an answer")
def _():
    FAKE.control("POST", "faults", {"method": "GET", "path": "^/api/v1/namespaces/hub-b$", "delay": 0.5})
    started = time.time()
    status, _, _ = FAKE.request("GET", "/api/v1/namespaces/hub-b")
    slow = time.time() - started
    FAKE.control("POST", "faults", {"method": "GET", "path": "^/api/v1/namespaces/hub-b$", "action": "close"})
    try:
        FAKE.request("GET", "/api/v1/namespaces/hub-b")
        dropped = False
    except (OSError, http.client.HTTPException):
        dropped = True
    return status == 200 and slow >= 0.5 and dropped, (status, slow, dropped)


@check("control: a revoked token (the service account's) gets 401 from then on")
def _():
    with open(os.path.join(FAKE.env["K8S_SA_DIR"], "token")) as f:
        token = f.read()
    status_before = FAKE.request("GET", "/api", token=token)[0]
    revoked = FAKE.control("POST", "tokens/revoke", {"token": token})
    status_after = FAKE.request("GET", "/api", token=token)[0]
    return status_before == 200 and revoked["revoked"] and status_after == 401, (status_before, status_after)


@check("control: a CrashLoopBackOff rule stalls a rollout: Available False, new pod not Ready")
def _():
    FAKE.control("POST", "pods/state", {"namespace": "hub-b", "labelSelector": "component=hub",
                                        "reason": "CrashLoopBackOff", "restartCount": 4})
    crashing = wait_for(lambda: [p for p in core.list_namespaced_pod("hub-b", label_selector="component=hub").items
                                 if p.status.container_statuses and p.status.container_statuses[0].state.waiting
                                 and p.status.container_statuses[0].state.waiting.reason == "CrashLoopBackOff"])
    d = wait_for(lambda: [c for c in apps.read_namespaced_deployment("hub", "hub-b").status.conditions
                          if c.type == "Available" and c.status == "False"])
    FAKE.control("POST", "pods/state", {"namespace": "hub-b", "labelSelector": "component=hub", "clear": True})
    healed = wait_for(lambda: [c for c in apps.read_namespaced_deployment("hub", "hub-b").status.conditions
                               if c.type == "Available" and c.status == "True"])
    pod = crashing[0] if crashing else None
    return (bool(crashing) and pod.status.phase == "Running" and pod.status.container_statuses[0].restart_count == 4
            and not pod.status.container_statuses[0].ready and bool(d) and bool(healed), (crashing, d))


@check("control: a hung namespace stays Terminating until released")
def _():
    FAKE.control("POST", "namespaces/nubladox-test/hang", {"hang": True})
    core.delete_namespace("nubladox-test", _preload_content=False)
    time.sleep(1.5)  # longer than the termination delay
    still = core.read_namespace("nubladox-test")
    FAKE.control("POST", "namespaces/nubladox-test/hang", {"hang": False})
    gone = wait_for(lambda: api_error(lambda: core.read_namespace("nubladox-test")))
    return still.status.phase == "Terminating" and gone is not None and gone.status == 404, (still.status, gone)


# ---------------------------------------------------------------- raw WebSocket

def raw_exec(command, **kwargs):
    return RawExec(FAKE, "nublado", hub_pod("nublado").metadata.name, command, container="hub", **kwargs)


@check("raw: Sec-WebSocket-Accept is right; v5 preferred, v4 when only v4 is offered")
def _():
    v5 = raw_exec(["true"], protocols=("v4.channel.k8s.io", "v5.channel.k8s.io"))
    v4 = raw_exec(["true"], protocols=("v4.channel.k8s.io",))
    ok = (v5.status == 101 and v5.headers.get("sec-websocket-accept") == v5.expected_accept()
          and v5.headers.get("sec-websocket-protocol") == "v5.channel.k8s.io"
          and v4.headers.get("sec-websocket-protocol") == "v4.channel.k8s.io")
    channels, code, _ = v4.collect()
    v5.close()
    v4.close()
    return ok and json.loads(channels[3]) == {"metadata": {}, "status": "Success"} and code == 1000, (
        v5.headers, v4.headers, channels)


@check("raw: exit status on channel 3 has the kubelet's exact shape")
def _():
    conn = raw_exec(["sh", "-c", "exit 3"])
    channels, code, _ = conn.collect()
    conn.close()
    want = {"metadata": {}, "status": "Failure",
            "message": "command terminated with non-zero exit code: error executing command [sh -c exit 3], "
                       "exit code 3", "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}}
    return json.loads(channels.get(3, b"{}")) == want and code == 1000, channels


@check("raw: a 5 MB binary file arrives byte-identical through cat")
def _():
    blob = os.urandom(5 * 1024 * 1024)
    with open(os.path.join(FAKE.dir, "volumes", "hub-db-nublado", "blob.bin"), "wb") as f:
        f.write(blob)
    conn = raw_exec(["cat", "/srv/jupyterhub/blob.bin"])
    channels, code, _ = conn.collect()
    conn.close()
    got = channels.get(1, b"")
    return hashlib.sha256(got).hexdigest() == hashlib.sha256(blob).hexdigest() and code == 1000, (len(got), code)


@check("raw: 5 MB through stdin in fragmented messages, answered ping, v5 close of stdin")
def _():
    blob = os.urandom(5 * 1024 * 1024)
    conn = raw_exec(["sha256sum"], stdin=True)
    for offset in range(0, len(blob), 1 << 20):
        piece = blob[offset:offset + (1 << 20)]
        conn.send_frame(0x2, b"\x00" + piece[:1000], fin=False)  # a message in three fragments
        conn.send_frame(0x9, b"ping!")                             # a control frame between fragments
        conn.send_frame(0x0, piece[1000:500000], fin=False)
        conn.send_frame(0x0, piece[500000:], fin=True)
    conn.send_frame(0x2, bytes([255, 0]))                          # v5: close stdin
    pong, channels, code = False, {}, None
    while True:
        fin, opcode, payload = conn.recv_frame()
        if opcode == 0xA:
            pong = pong or payload == b"ping!"
        elif opcode == 0x8:
            code = int.from_bytes(payload[:2], "big")
            break
        elif payload:
            channels[payload[0]] = channels.get(payload[0], b"") + payload[1:]
    conn.close()
    digest = channels.get(1, b"").split()[0].decode() if channels.get(1) else ""
    return digest == hashlib.sha256(blob).hexdigest() and pong and code == 1000, (digest, pong, code)


@check("raw: an unmasked client frame is rejected with close 1002")
def _():
    conn = raw_exec(["sleep", "2"], stdin=True)
    conn.send_frame(0x2, b"\x00hello", masked=False)
    code = None
    while True:
        fin, opcode, payload = conn.recv_frame()
        if opcode == 0x8:
            code = int.from_bytes(payload[:2], "big")
            break
    conn.close()
    return code == 1002, code


@check("raw: an exec stdout-cut fault delivers exactly K bytes, then an abrupt close (no close frame)")
def _():
    FAKE.control("POST", "exec-faults", {"command": "^cat /srv/jupyterhub/blob.bin$", "cutAfterBytes": 100000})
    conn = raw_exec(["cat", "/srv/jupyterhub/blob.bin"])
    channels, code, abrupt = conn.collect()
    conn.close()
    return len(channels.get(1, b"")) == 100000 and code is None and abrupt, (len(channels.get(1, b"")), code)


@check("raw: exec with a readonly token is 403 before the upgrade; missing container is 400")
def _():
    ro = raw_exec(["true"], token=FAKE.env["K8S_READONLY_TOKEN"])
    missing = RawExec(FAKE, "nublado", hub_pod("nublado").metadata.name, ["true"], container="nope")
    ro.close()
    missing.close()
    return ro.status == 403 and missing.status == 400 and b"is not valid for pod" in missing.body, (
        ro.status, missing.status, missing.body)


print("# python3-kubernetes %s" % kubernetes.__version__, flush=True)
