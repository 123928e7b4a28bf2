"""The HTTP side: routing, authentication, the REST verbs, watch, exec upgrade, and the control API."""

import copy
import json
import os
import socket
import ssl
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from . import access, errors, patching, podexec, resources, seed, tables
from . import websocket as ws
from .auth import allowed
from .selectors import parse_field_selector, parse_label_selector

PODS = resources.BY_KEY[("", "pods")]
NAMESPACES = resources.BY_KEY[("", "namespaces")]
TRUE = ("true", "1", "True")
MUTATING = ("POST", "PUT", "PATCH", "DELETE")
PATCH_TYPES = [patching.JSON_PATCH, patching.MERGE_PATCH, patching.APPLY_PATCH, patching.STRATEGIC_MERGE_PATCH]


class App:
    """Everything a request handler needs, shared by all handler threads."""

    def __init__(self, directory, store, controllers, fs, auth, faults, tokens, log):
        self.directory = directory
        self.store = store
        self.controllers = controllers
        self.fs = fs
        self.auth = auth
        self.faults = faults
        self.tokens = tokens                # name -> token, as in DIR/credentials.json
        self.control_token = tokens["control"]
        self.log = log
        self.processes = set()
        self.log_lock = threading.Lock()
        self.requests_log = open(os.path.join(directory, "requests.log"), "a", buffering=1)
        self.sandbox_ok = podexec.bwrap_works()
        self.stopping = threading.Event()
        self.server_address = ""
        if not self.sandbox_ok:
            log("bubblewrap does not work here: exec will answer InternalError")

    def log_request(self, entry):
        line = json.dumps(entry, separators=(",", ":"), sort_keys=True)
        with self.log_lock:
            self.requests_log.write(line + "\n")
            self.requests_log.flush()


class Server(ThreadingHTTPServer):
    """HTTPS with the TLS handshake done in the connection's own thread (a stalled client cannot block accept)."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address, app, ssl_context):
        self.app = app
        self.ssl_context = ssl_context
        super().__init__(address, Handler)

    def finish_request(self, request, client_address):
        try:
            request.settimeout(30)
            tls = self.ssl_context.wrap_socket(request, server_side=True)
            tls.settimeout(None)
        except (ssl.SSLError, OSError) as e:
            self.app.log("TLS handshake with %s failed: %s" % (client_address, e))
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass


def flag(query, name):
    return (query.get(name) or [""])[0] in TRUE


def first(query, name, default=None):
    values = query.get(name)
    return values[0] if values else default


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    # ---------------------------------------------------------------- plumbing

    def log_message(self, fmt, *args):  # the request log replaces http.server's stderr chatter
        pass

    def version_string(self):
        return ""

    def send_response(self, code, message=None):
        self.log_request_status = code
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    @property
    def app(self):
        return self.server.app

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def parse_json(self, body):
        if not body:
            raise errors.bad_request("the body of the request is empty")
        try:
            return json.loads(body)
        except ValueError as e:
            raise errors.bad_request("error decoding the request body as JSON: %s" % e)

    def respond(self, code, payload, content_type="application/json", headers=None):
        """Log, then answer. Logging first means a test that reads requests.log right after its
        request returns always finds the line."""
        if isinstance(payload, (dict, list)):
            body = (json.dumps(payload, separators=(",", ":")) + "\n").encode()
        else:
            body = payload if isinstance(payload, bytes) else str(payload).encode()
        self.entry["status"] = code
        self.flush_log()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", self.audit_id)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def respond_error(self, error):
        if error.plain is not None:
            headers = dict(error.headers, **{"X-Content-Type-Options": "nosniff",
                                             "X-Kubernetes-Pf-Flowschema-Uid": "fake-flowschema",
                                             "X-Kubernetes-Pf-Prioritylevel-Uid": "fake-prioritylevel"})
            self.respond(error.code, error.plain, "text/plain; charset=utf-8", headers)
        else:
            self.entry["reason"] = error.reason
            self.respond(error.code, error.status(), headers=error.headers)

    def flush_log(self):
        """Write this request's line to requests.log once (control API calls go to server.log only)."""
        if not self.logged and not self.is_control:
            self.app.log_request(self.entry)
        self.logged = True

    # ---------------------------------------------------------------- dispatch

    def dispatch(self):
        self.audit_id = str(uuid.uuid4())
        url = urlsplit(self.path)
        path, query = unquote(url.path), parse_qs(url.query, keep_blank_values=True)
        self.entry = {"time": time.time(), "method": self.command, "path": path,
                      "query": {k: v if len(v) > 1 else v[0] for k, v in query.items()}, "user": None}
        self.logged = False
        self.is_control = path.startswith("/_fake/")
        try:
            if self.is_control:
                self.control(path, query)
                return
            body = self.read_body()
            user = self.app.auth.authenticate(self.headers.get("Authorization"), self.connection.getpeercert())
            if user is None:
                raise errors.unauthorized()
            self.entry["user"] = user.name
            self.apply_fault(path, url.query)
            self.route(path, query, user, body)
        except errors.ApiError as e:
            self.respond_error(e)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except Exception as e:  # a fake bug: answer 500 and keep serving
            self.app.log("error handling %s %s: %s" % (self.command, self.path, traceback.format_exc()))
            try:
                self.respond_error(errors.internal(repr(e)))
            except OSError:
                self.close_connection = True

    def apply_fault(self, path, raw_query):
        target = path + ("?" + raw_query if raw_query else "")
        fault = self.app.faults.take(self.command, target)
        if fault is None:
            return
        self.entry["fault"] = {k: v for k, v in fault.items() if k != "count"}
        if fault.get("delay"):
            time.sleep(float(fault["delay"]))
        if fault.get("action") == "close":
            self.flush_log()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            raise BrokenPipeError("fault: connection dropped")
        status = fault.get("status")
        if status is None:
            return
        status = int(status)
        if status == 429:
            error = errors.too_many_requests()
            if fault.get("retryAfter") is not None:
                error.headers["Retry-After"] = str(fault["retryAfter"])
            raise error
        reasons = {500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout", 409: "Conflict",
                   410: "Expired", 403: "Forbidden", 401: "Unauthorized", 404: "NotFound"}
        message = fault.get("message") or {500: "Internal error occurred: injected fault",
                                           503: "the server is currently unable to handle the request",
                                           504: "the server was unable to return a response in the time allotted"
                                           }.get(status, "injected fault")
        raise errors.ApiError(status, fault.get("reason") or reasons.get(status, "Unknown"), message,
                              headers={"Retry-After": str(fault["retryAfter"])} if "retryAfter" in fault else None)

    def route(self, path, query, user, body):
        parts = [p for p in path.split("/") if p]
        if path in ("/version", "/version/"):
            return self.respond(200, resources.SERVER_VERSION)
        if path in ("/healthz", "/livez", "/readyz"):
            return self.respond(200, "ok", "text/plain; charset=utf-8")
        if parts == ["api"]:
            return self.respond(200, resources.api_versions(self.app.server_address))
        if parts == ["apis"]:
            return self.respond(200, resources.api_group_list())
        if len(parts) >= 2 and parts[:2] == ["apis", access.GROUP]:
            return access.handle(self, parts[2:], user, body)
        if len(parts) >= 2 and parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        elif len(parts) >= 2 and parts[0] == "apis":
            versions = resources.group_versions().get(parts[1])
            if versions is None:
                raise errors.not_found_path()
            if len(parts) == 2:
                return self.respond(200, dict(resources.api_group(parts[1], versions),
                                              kind="APIGroup", apiVersion="v1"))
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise errors.not_found_path()
        if not rest:
            listing = resources.api_resource_list(group, version)
            if listing is None:
                raise errors.not_found_path()
            return self.respond(200, listing)
        self.resource_request(group, version, rest, query, user, body)

    @staticmethod
    def split_resource_path(rest):
        """(namespace, plural, name, subresource) from the part after /api/v1 or /apis/G/V."""
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        else:
            namespace = None
        if len(rest) > 3:
            raise errors.not_found_path()
        return namespace, rest[0], rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None

    def resource_request(self, group, version, rest, query, user, body):
        namespace, plural, name, sub = self.split_resource_path(rest)
        rt = resources.lookup(group, version, plural)
        if rt is None or (namespace is not None and not rt.namespaced):
            raise errors.not_found_path()
        if rt.namespaced and namespace is None and name is not None:
            raise errors.not_found_path()
        if sub is not None and sub not in rt.subresources:
            raise errors.not_found_path()
        method = self.command if self.command != "HEAD" else "GET"
        if sub == "exec":
            return self.exec_request(user, namespace, name, query)
        verb = {"GET": "list" if name is None else "get", "POST": "create", "PUT": "update", "PATCH": "patch",
                "DELETE": "deletecollection" if name is None else "delete"}[method]
        if method == "GET" and flag(query, "watch"):
            verb = "watch"
        self.entry["verb"] = verb
        if not allowed(user, verb):
            raise errors.rbac_forbidden(rt, name, user.name, verb, namespace, sub or "")
        dry_run = self.dry_run(query, method, body)
        self.entry["dryRun"] = dry_run
        self.entry["mutating"] = method in MUTATING and not dry_run
        ns = namespace or ""
        if sub == "log":
            return self.pod_log(ns, name, query)
        if sub == "scale":
            return self.scale(rt, ns, name, method, body, dry_run)
        if sub == "finalize":
            return self.finalize(rt, name, method, body, dry_run)
        if name is None:
            return self.collection(rt, namespace, method, query, body, dry_run)
        if method == "GET":
            return self.respond(200, self.maybe_table(rt, [self.app.store.get(rt, ns, name)], None, query))
        if method == "PUT":
            obj = self.parse_json(body)
            return self.respond(200, self.app.store.update(rt, ns, name, obj, dry_run, subresource=sub))
        if method == "PATCH":
            return self.patch(rt, ns, name, body, dry_run, sub)
        if method == "DELETE" and sub is None:
            options = self.delete_options(query, body)
            code, result = self.app.store.delete(rt, ns, name, options, dry_run or "All" in (options.get("dryRun") or []))
            return self.respond(code, result)
        raise errors.method_not_allowed()

    def dry_run(self, query, method, body):
        values = query.get("dryRun", [])
        for value in values:
            if value != "All":
                kind = {"POST": "CreateOptions", "PUT": "UpdateOptions", "PATCH": "PatchOptions",
                        "DELETE": "DeleteOptions"}.get(method, "Options")
                raise errors.ApiError(422, "Invalid", '%s.meta.k8s.io "" is invalid: dryRun: Unsupported value: '
                                      '"%s": supported values: "All"' % (kind, value))
        if method == "DELETE" and body:
            try:
                if "All" in (json.loads(body).get("dryRun") or []):
                    return True
            except (ValueError, AttributeError):
                pass
        return "All" in values

    def delete_options(self, query, body):
        """DeleteOptions from the JSON body, else from query parameters (never both, as the real handler)."""
        if body:
            options = self.parse_json(body)
            if not isinstance(options, dict):
                raise errors.bad_request("decoded object cannot be converted to DeleteOptions")
            return options
        options = {}
        if first(query, "gracePeriodSeconds") is not None:
            try:
                options["gracePeriodSeconds"] = int(first(query, "gracePeriodSeconds"))
            except ValueError:
                raise errors.bad_request('strconv.ParseInt: parsing "%s": invalid syntax'
                                         % first(query, "gracePeriodSeconds"))
        if first(query, "propagationPolicy"):
            options["propagationPolicy"] = first(query, "propagationPolicy")
        if first(query, "orphanDependents") is not None:
            options["orphanDependents"] = first(query, "orphanDependents") in TRUE
        return options

    # ---------------------------------------------------------------- verbs

    def collection(self, rt, namespace, method, query, body, dry_run):
        store = self.app.store
        if method == "POST":
            if rt.namespaced and namespace is None:
                raise errors.method_not_allowed()
            return self.respond(201, store.create(rt, namespace or "", self.parse_json(body), dry_run))
        if method not in ("GET", "DELETE"):
            raise errors.method_not_allowed()
        labels = parse_label_selector(first(query, "labelSelector"))
        fields = parse_field_selector(first(query, "fieldSelector"), rt)
        if method == "GET" and flag(query, "watch"):
            return self.watch(rt, namespace, labels, fields, query)
        if first(query, "continue") and first(query, "resourceVersion") not in (None, "", "0"):
            raise errors.bad_request("specifying resource version is not allowed when using continue")
        try:
            limit = max(0, int(first(query, "limit") or 0))
        except ValueError:
            raise errors.bad_request("invalid limit: %r" % first(query, "limit"))
        if method == "DELETE":
            items, meta = store.list(rt, namespace, labels, fields)
            options = self.delete_options({}, body) if body else {}
            for item in items:
                store.delete(rt, item["metadata"].get("namespace", ""), item["metadata"]["name"], options, dry_run)
            return self.respond(200, self.list_object(rt, items, meta))
        items, meta = store.list(rt, namespace, labels, fields, limit, first(query, "continue"))
        return self.respond(200, self.maybe_table(rt, items, meta, query))

    @staticmethod
    def list_object(rt, items, meta):
        if not rt.custom:  # typed lists carry no per-item kind/apiVersion; unstructured (CR) lists do
            for item in items:
                item.pop("kind", None)
                item.pop("apiVersion", None)
        return {"kind": rt.kind + "List", "apiVersion": rt.api_version, "metadata": meta, "items": items}

    def maybe_table(self, rt, items, meta, query):
        """Server-side printing (kubectl get asks for it in Accept); otherwise the object or the list."""
        if tables.wants_table(self.headers.get("Accept", "")):
            return tables.table(rt, items, meta, first(query, "includeObject", "Metadata"))
        if meta is None:
            return items[0]
        return self.list_object(rt, items, meta)

    def patch(self, rt, namespace, name, body, dry_run, subresource):
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        accepted = [t for t in PATCH_TYPES if not (rt.custom and t == patching.STRATEGIC_MERGE_PATCH)]
        if content_type not in accepted:
            raise errors.unsupported_media_type(content_type, accepted)
        if content_type == patching.APPLY_PATCH:
            raise errors.unsupported_media_type(content_type, [t for t in accepted if t != patching.APPLY_PATCH])
        patch = self.parse_json(body)
        self.entry["patchType"] = content_type
        return self.respond(200, self.app.store.patch(rt, namespace, name, content_type, patch, dry_run, subresource))

    def pod_log(self, namespace, name, query):
        pod = self.app.store.get(PODS, namespace, name)
        names = [c["name"] for c in pod["spec"].get("containers", [])]
        container = first(query, "container") or (names[0] if len(names) == 1 else None)
        if container is None:
            raise errors.bad_request("a container name must be specified for pod %s, choose one of: [%s]"
                                     % (name, " ".join(names)))
        if container not in names:
            raise errors.bad_request("container %s is not valid for pod %s" % (container, name))
        return self.respond(200, "", "text/plain")

    def scale(self, rt, namespace, name, method, body, dry_run):
        store = self.app.store
        obj = store.get(rt, namespace, name)

        def as_scale(o):
            selector = ",".join("%s=%s" % kv for kv in o["spec"].get("selector", {}).get("matchLabels", {}).items())
            meta = {k: o["metadata"][k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")}
            return {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": meta,
                    "spec": {"replicas": o["spec"].get("replicas", 1)},
                    "status": {"replicas": o.get("status", {}).get("replicas", 0), "selector": selector}}

        if method == "GET":
            return self.respond(200, as_scale(obj))
        if method == "PUT":
            wanted = self.parse_json(body)
        elif method == "PATCH":
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            try:
                wanted = patching.apply_patch(content_type, as_scale(obj), self.parse_json(body))
            except ValueError:
                raise errors.unsupported_media_type(content_type, PATCH_TYPES)
        else:
            raise errors.method_not_allowed()
        rv = wanted.get("metadata", {}).get("resourceVersion")
        if rv and rv != obj["metadata"]["resourceVersion"]:
            raise errors.stale_conflict(rt, name)
        obj["spec"]["replicas"] = int(wanted.get("spec", {}).get("replicas", 0))
        obj["metadata"].pop("resourceVersion", None)
        return self.respond(200, as_scale(store.update(rt, namespace, name, obj, dry_run)))

    def finalize(self, rt, name, method, body, dry_run):
        if method != "PUT":
            raise errors.method_not_allowed()
        wanted = self.parse_json(body)
        store = self.app.store
        with store.lock:
            obj = store.get(rt, "", name)
            obj["spec"]["finalizers"] = list((wanted.get("spec") or {}).get("finalizers") or [])
            if dry_run:
                return self.respond(200, obj)
            if obj["metadata"].get("deletionTimestamp") and not obj["spec"]["finalizers"]:
                self.app.controllers.hung_namespaces.discard(name)
                self.app.controllers.first_seen[("ns", obj["metadata"]["uid"])] = -1e9  # finish now
            store.set_object(rt, obj)
            return self.respond(200, store.get(rt, "", name))

    # ---------------------------------------------------------------- watch

    def watch(self, rt, namespace, labels, fields, query):
        from .selectors import fields_match, labels_match
        store = self.app.store
        timeout = float(first(query, "timeoutSeconds") or 1800)
        deadline = time.monotonic() + timeout
        rv = first(query, "resourceVersion")
        bookmarks = flag(query, "allowWatchBookmarks")

        def matches(obj):
            ns = obj["metadata"].get("namespace", "")
            return ((namespace is None or ns == namespace) and labels_match(labels, obj["metadata"].get("labels"))
                    and fields_match(fields, obj))

        with store.lock:
            pending = []
            if rv in (None, "", "0"):
                pending = [("ADDED", copy.deepcopy(o)) for o in store.all(rt) if matches(o)]
                last = store.revision
            else:
                last = int(rv)
                oldest = store.events[0][0] if store.events else store.revision
                if last < oldest - 1 and last < store.revision:
                    status = errors.ApiError(410, "Expired", "too old resource version: %d (%d)" % (last, oldest - 1))
                    pending = [("ERROR", status.status())]
                    deadline = 0
        self.entry["status"] = 200
        self.flush_log()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", self.audit_id)
        self.end_headers()
        last_bookmark = time.monotonic()
        try:
            while True:
                for event_type, obj in pending:
                    self.write_chunk({"type": event_type, "object": obj})
                if time.monotonic() >= deadline or self.app.stopping.is_set():
                    break
                with store.changed:
                    if store.revision <= last:
                        store.changed.wait(min(1.0, max(0.01, deadline - time.monotonic())))
                    fresh = store.events_since(last)
                    revision = store.revision
                    # Revisions without events (expired continue tokens) must not make this loop spin.
                    last = fresh[-1][0] if fresh else max(last, revision)
                pending = [(t, copy.deepcopy(o)) for _, key, t, o in fresh if key == rt.key and matches(o)]
                if bookmarks and not pending and time.monotonic() - last_bookmark > 5:
                    last_bookmark = time.monotonic()
                    pending = [("BOOKMARK", {"kind": rt.kind, "apiVersion": rt.api_version,
                                             "metadata": {"resourceVersion": str(revision)}})]
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True

    def write_chunk(self, event):
        data = (json.dumps(event, separators=(",", ":")) + "\n").encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    # ---------------------------------------------------------------- exec

    def exec_request(self, user, namespace, name, query):
        self.entry["verb"] = "create"
        command = query.get("command", [])
        container_name = first(query, "container")
        self.entry["exec"] = {"command": command, "container": container_name}
        if self.command not in ("GET", "POST"):
            raise errors.method_not_allowed()
        if not allowed(user, "create"):
            raise errors.rbac_forbidden(PODS, name, user.name, "create", namespace, "exec")
        pod = self.app.store.get(PODS, namespace, name)
        names = [c["name"] for c in pod["spec"].get("containers", [])]
        if container_name is None:
            if len(names) != 1:
                raise errors.bad_request("a container name must be specified for pod %s, choose one of: [%s]"
                                         % (name, " ".join(names)))
            container_name = names[0]
            self.entry["exec"]["container"] = container_name
        if container_name not in names:
            raise errors.bad_request("container %s is not valid for pod %s" % (container_name, name))
        want = {k: flag(query, k) for k in ("stdin", "stdout", "stderr")}
        tty = flag(query, "tty")
        if tty:
            want["stderr"] = False  # "tty and stderr is not supported, bypassing stderr"
        if not any(want.values()):
            raise errors.bad_request("you must specify at least 1 of stdin, stdout, stderr")
        if not command:
            raise errors.bad_request("you must specify at least 1 command")
        phase = pod.get("status", {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            raise errors.bad_request("cannot exec into a container in a completed pod; current phase is %s" % phase)
        running = any(cs["name"] == container_name and "running" in cs.get("state", {})
                      for cs in pod.get("status", {}).get("containerStatuses", []))
        if phase != "Running" or not running:
            raise errors.bad_request('container not found ("%s")' % container_name)
        if self.headers.get("Upgrade", "").lower() != "websocket":
            raise errors.bad_request("Upgrade request required")
        if self.headers.get("Sec-WebSocket-Version") != "13" or not self.headers.get("Sec-WebSocket-Key"):
            raise errors.ApiError(400, "BadRequest", "websocket: unsupported version or missing key",
                                  headers={"Sec-WebSocket-Version": "13"})
        offered = [p.strip() for p in ",".join(self.headers.get_all("Sec-WebSocket-Protocol") or []).split(",")
                   if p.strip()]
        protocol = podexec.choose_protocol(offered)
        if protocol is None:
            raise errors.bad_request("requested protocol(s) are not supported: %s; supports %s"
                                     % (offered, podexec.PROTOCOLS))
        self.entry["exec"].update(protocol=protocol, stdin=want["stdin"], tty=tty)
        self.run_exec(pod, container_name, command, want, tty, protocol)

    def run_exec(self, pod, container_name, command, want, tty, protocol):
        store, fs = self.app.store, self.app.fs
        container = next(c for c in pod["spec"]["containers"] if c["name"] == container_name)
        namespace = pod["metadata"]["namespace"]

        def lookup(plural, obj_name):
            with store.lock:
                obj = store.peek(resources.BY_KEY[("", plural)], namespace, obj_name)
                return copy.deepcopy(obj)

        mounts = fs.mounts(pod, container, lookup)
        tmp = fs.tmp_dir(pod["metadata"]["uid"])
        env = podexec.container_env(pod, container, lookup)
        cwd = container.get("workingDir") or "/"
        argv = podexec.sandbox_command(command, mounts, tmp, pod["metadata"]["name"], cwd)
        executable = podexec.find_executable(command[0], env["PATH"], mounts, tmp, cwd)
        cut_after = self.app.faults.take_exec(command)
        if cut_after is not None:
            self.entry["exec"]["cutAfterBytes"] = cut_after
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", ws.accept_key(self.headers["Sec-WebSocket-Key"]))
        if protocol:
            self.send_header("Sec-WebSocket-Protocol", protocol)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        sock = ws.WebSocket(self.rfile, self.connection)
        session = podexec.ExecSession(sock, protocol, command, argv, env, want, tty, cut_after,
                                      self.app.processes, self.app.log, on_exit=self.log_exec_exit)
        self.entry["status"] = 101
        if not self.app.sandbox_ok or executable is None:
            self.entry["exec"]["exitCode"] = None
            self.flush_log()
            try:
                session.send(podexec.STDOUT if want["stdout"] else podexec.ERROR, b"")
                session.send_status(podexec.start_failure_status(command[0]))
                sock.close()
            except OSError:
                pass
            return
        code = session.run()
        self.entry["exec"].setdefault("exitCode", code)
        self.flush_log()  # when the stream was cut, finish() never ran

    def log_exec_exit(self, code):
        """Log the exec with its exit code before the client can see the end of the stream."""
        self.entry["exec"]["exitCode"] = code
        self.flush_log()

    # ---------------------------------------------------------------- control API

    def control(self, path, query):
        app = self.app
        if self.headers.get("Authorization") != "Bearer " + app.control_token:
            raise errors.unauthorized()
        body = self.read_body()
        parts = [p for p in path.split("/") if p][1:]
        method = self.command
        app.log("control %s %s %s" % (method, path, body[:200].decode("utf-8", "replace")))
        try:
            data = json.loads(body) if body else {}
            result = self.control_action(method, parts, query, data)
        except (ValueError, KeyError, TypeError, seed.SeedError) as e:
            raise errors.bad_request("control: %s" % e)
        self.respond(200, result if result is not None else {"ok": True})

    def control_action(self, method, parts, query, data):
        app, store, ctl = self.app, self.app.store, self.app.controllers
        route = (method, "/".join(parts))
        if route == ("GET", "state"):
            kinds = query.get("resource") or [rt.plural for rt in resources.RESOURCE_TYPES]
            with store.lock:
                return {"revision": store.revision,
                        "objects": {rt.plural: [copy.deepcopy(o) for o in store.all(rt, first(query, "namespace"))]
                                    for rt in resources.RESOURCE_TYPES if rt.plural in kinds}}
        if route == ("POST", "seed"):
            return {"loaded": seed.load(store, ctl, app.fs, data, app.directory)}
        if route == ("POST", "objects"):
            objects = data if isinstance(data, list) else [data]
            return {"objects": [seed.upsert(store, obj) for obj in objects]}
        if route == ("POST", "files"):
            files = data if isinstance(data, list) else [data]
            ctl.settle_volumes()  # a claim created just now is bound before its name is resolved
            return {"files": [seed.write_volume_file(app.fs, f, app.directory) for f in files]}
        if route == ("GET", "volume-files"):
            return self.control_volume_files(first(query, "volume"), first(query, "namespace"))
        if route == ("GET", "faults"):
            return app.faults.describe()
        if route == ("POST", "faults"):
            return {"fault": app.faults.add(data)}
        if route == ("POST", "exec-faults"):
            return {"fault": app.faults.add_exec(data)}
        if route == ("DELETE", "faults"):
            app.faults.clear()
            return None
        if route == ("POST", "continue-tokens/expire"):
            store.expire_continue_tokens()
            return {"expiredBefore": store.continue_floor}
        if route == ("POST", "tokens/revoke"):
            token = data.get("token") or app.tokens.get(data.get("name", ""))
            return {"revoked": bool(token) and app.auth.revoke(token)}
        if route == ("POST", "tokens/rotate-file"):
            return {"token": app.auth.rotate_token_file(), "file": app.auth.token_file}
        if route == ("POST", "pods/state"):
            return self.control_pod_state(data)
        if method == "POST" and len(parts) == 3 and parts[0] == "namespaces" and parts[2] == "hang":
            if data.get("hang", True):
                ctl.hung_namespaces.add(parts[1])
            else:
                ctl.hung_namespaces.discard(parts[1])
            return {"hung": sorted(ctl.hung_namespaces)}
        if route == ("POST", "settings"):
            return self.control_settings(data)
        raise ValueError("no control endpoint %s /_fake/%s" % route)

    def control_pod_state(self, data):
        store, ctl = self.app.store, self.app.controllers
        state = {k: v for k, v in data.items() if k not in ("namespace", "name", "labelSelector", "clear")}
        with store.lock:
            if data.get("labelSelector") is not None:
                requirements = parse_label_selector(data["labelSelector"])
                ctl.pod_rules = [r for r in ctl.pod_rules
                                 if not (r[0] == data["namespace"] and r[1] == requirements)]
                if not data.get("clear"):
                    ctl.pod_rules.append((data["namespace"], requirements, state))
                return {"rules": len(ctl.pod_rules)}
            pod = store.get(PODS, data["namespace"], data["name"])
            if data.get("clear"):
                ctl.pod_overrides.pop(pod["metadata"]["uid"], None)
            else:
                ctl.pod_overrides[pod["metadata"]["uid"]] = state
            return {"pod": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]}

    def control_volume_files(self, name, namespace):
        """The files of a volume (a PersistentVolume, or a claim resolved as pods see it), relative paths."""
        if not name:
            raise ValueError("volume-files needs ?volume=NAME")
        self.app.controllers.settle_volumes()
        resolved = self.app.fs.volume_for_name(name, namespace)
        path = os.path.join(self.app.directory, "volumes", resolved)
        files = []
        for root, _, names in os.walk(path):
            files.extend(os.path.relpath(os.path.join(root, n), path) for n in names)
        return {"volume": resolved, "path": path, "exists": os.path.isdir(path), "files": sorted(files)}

    def control_settings(self, data):
        settings, store = self.app.controllers.settings, self.app.store
        names = {"podStartSeconds": "pod_start_seconds", "podStopSeconds": "pod_stop_seconds",
                 "namespaceTerminationSeconds": "namespace_termination_seconds"}
        for key, attr in names.items():
            if key in data:
                setattr(settings, attr, float(data[key]))
        if "legacyNamespaceConflict" in data:
            store.legacy_namespace_conflict = bool(data["legacyNamespaceConflict"])
        return {"podStartSeconds": settings.pod_start_seconds, "podStopSeconds": settings.pod_stop_seconds,
                "namespaceTerminationSeconds": settings.namespace_termination_seconds,
                "legacyNamespaceConflict": store.legacy_namespace_conflict}
