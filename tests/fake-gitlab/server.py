#!/usr/bin/python3
"""A fake GitLab REST API (v4) for tests: the user administration a dormant-users runbook uses, following
GitLab's documented behaviour (see README.md beside this file for what and where from).

Usage: server.py --dir DIR [--state STATE.json] [--port 0] [--tls-cert CERT --tls-key KEY] [--die-with-parent]

Listens on 127.0.0.1 only. Writes DIR/port when ready, DIR/control-token (for /_fake/), DIR/requests.log
(one JSON line per API request) and DIR/state.json (the users as they are now, rewritten after every
change). Python 3 standard library only.
"""
import argparse
import base64
import datetime
import email.utils
import json
import os
import re
import secrets
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
ARGS = None
STATE = None          # {"settings": {...}, "tokens": {...}, "users": [...], "audit_events": [...]}
FAULTS = []           # injected answers: {"method", "path", "status", "count", "retry_after", "body"}
WINDOWS = {}          # rate limit: token -> [window start, requests in it]
CONTROL_TOKEN = None

# GitLab's user types (app/models/concerns/has_user_type.rb). Internal users are the ghost and the
# bots GitLab runs itself; project bots and service accounts are bots but not internal.
BOT_TYPES = {"alert_bot", "project_bot", "support_bot", "visual_review_bot", "migration_bot", "security_bot",
             "automation_bot", "security_policy_bot", "admin_bot", "suggested_reviewers_bot", "service_account",
             "llm_bot", "duo_code_review_bot", "import_user", "placeholder"}
INTERNAL_TYPES = {"ghost", "alert_bot", "support_bot", "visual_review_bot", "migration_bot", "security_bot",
                  "automation_bot", "security_policy_bot", "admin_bot", "suggested_reviewers_bot", "llm_bot",
                  "duo_code_review_bot"}
BLOCKED_STATES = {"blocked", "ldap_blocked", "blocked_pending_approval", "banned"}
MAX_PER_PAGE = 100
MAX_OFFSET = 50000  # GitLab 17.0: offset pagination of users stops here; keyset goes on


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


RELATIVE = re.compile(r"^-(\d+)([dhms])$")


def resolve_time(value, as_date):
    """'-90d' (relative to now), an ISO date or time, or null -> the stored form."""
    if value is None:
        return None
    m = RELATIVE.match(str(value))
    if m:
        n, unit = int(m.group(1)), m.group(2)
        t = now() - datetime.timedelta(**{{"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}[unit]: n})
        return t.date().isoformat() if as_date else iso(t)
    return str(value)


def parse_time(value):
    if value is None:
        return None
    if re.match(r"^\d{4}-\d{2}-\d{2}$", value):
        return datetime.datetime.fromisoformat(value).replace(tzinfo=datetime.timezone.utc)
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


def normalize(user):
    u = dict(user)
    u.setdefault("name", u["username"].replace(".", " ").title())
    u.setdefault("state", "active")
    u.setdefault("user_type", "human")
    u.setdefault("is_admin", False)
    u["last_activity_on"] = resolve_time(u.get("last_activity_on"), True)
    u["created_at"] = resolve_time(u.get("created_at", "-400d"), False)
    u["current_sign_in_at"] = resolve_time(u.get("current_sign_in_at"), False)
    return u


def load_state(path):
    doc = json.load(open(path)) if path else {}
    users = []
    next_id = 1
    for spec in doc.get("users", []):
        u = dict(spec)
        u.setdefault("id", next_id)
        users.append(u)
        next_id = max(next_id, u["id"]) + 1
    for gen in doc.get("generate", []):
        for i in range(gen["count"]):
            u = {k: v for k, v in gen.items() if k not in ("prefix", "count")}
            u["username"] = "%s%04d" % (gen["prefix"], i)
            u["id"] = next_id
            users.append(u)
            next_id += 1
    users = [normalize(u) for u in users]
    users.sort(key=lambda u: u["id"])
    settings = {"deactivate_dormant_users_period": 90, "ignore_user_filters": False,
                "throttle_authenticated_api_requests_per_period": 0, "throttle_authenticated_api_period_in_seconds": 60,
                "version": "17.5.1-ee"}
    settings.update(doc.get("settings", {}))
    tokens = doc.get("tokens", {})
    return {"settings": settings, "tokens": tokens, "users": users, "audit_events": []}


def save_state():
    tmp = os.path.join(ARGS.dir, "state.json.tmp")
    with open(tmp, "w") as f:
        json.dump(STATE, f, indent=1, sort_keys=True)
    os.replace(tmp, os.path.join(ARGS.dir, "state.json"))


def find_user(key):
    for u in STATE["users"]:
        if u["id"] == key or u["username"] == key:
            return u
    return None


# ---- what GitLab computes about a user ----

def is_bot(u):
    return u["user_type"] in BOT_TYPES


def is_internal(u):
    return u["user_type"] in INTERNAL_TYPES


def last_active_at(u):
    """User#last_active_at: the later of last_activity_on (midnight, the instance's zone: UTC here)
    and current_sign_in_at."""
    times = [t for t in (parse_time(u["last_activity_on"]), parse_time(u["current_sign_in_at"])) if t]
    return max(times) if times else None


def can_be_deactivated(u):
    """User#can_be_deactivated?: active? && no_recent_activity? && !internal?, where no_recent_activity?
    is last_active_at.to_i <= period.days.ago.to_i (nil.to_i is 0: never active is no recent activity)."""
    period = STATE["settings"]["deactivate_dormant_users_period"]
    last = last_active_at(u)
    recent = last is not None and last.timestamp() > (now() - datetime.timedelta(days=period)).timestamp()
    return u["state"] == "active" and not recent and not is_internal(u)


# ---- entities (lib/api/entities): what each token sees ----

def basic(u):
    return {"id": u["id"], "username": u["username"], "name": u["name"], "state": u["state"], "locked": False,
            "avatar_url": None, "web_url": "http://gitlab.example/%s" % u["username"]}


def with_admin(u):
    e = basic(u)
    e.update({"created_at": u["created_at"], "bio": "", "bot": is_bot(u), "is_admin": u["is_admin"],
              "last_activity_on": u["last_activity_on"], "current_sign_in_at": u["current_sign_in_at"],
              "last_sign_in_at": u["current_sign_in_at"], "email": "%s@example.org" % u["username"],
              "external": False, "private_profile": False, "identities": [], "note": None,
              "namespace_id": u["id"], "created_by": None})
    return e


def public(u):
    e = basic(u)
    e.update({"created_at": u["created_at"], "bio": "", "bot": is_bot(u)})
    return e


# ---- the API ----

class ApiError(Exception):
    def __init__(self, status, message, headers=None, text=None):
        super().__init__(message)
        self.status, self.message, self.headers, self.text = status, message, headers or {}, text


def truthy(q, name):
    return q.get(name, ["false"])[-1].lower() in ("true", "1", "yes")


def filtered_users(q):
    users = STATE["users"]
    if STATE["settings"]["ignore_user_filters"]:  # an old GitLab that knows none of these filters
        return list(users)
    if truthy(q, "active"):
        users = [u for u in users if u["state"] == "active"]
    if truthy(q, "blocked"):
        users = [u for u in users if u["state"] in BLOCKED_STATES]
    if truthy(q, "humans"):
        users = [u for u in users if u["user_type"] == "human"]
    if truthy(q, "exclude_humans"):
        users = [u for u in users if u["user_type"] != "human"]
    if truthy(q, "exclude_internal"):
        users = [u for u in users if not is_internal(u)]
    if truthy(q, "without_project_bots"):
        users = [u for u in users if u["user_type"] != "project_bot"]
    if truthy(q, "admins"):
        users = [u for u in users if u["is_admin"]]
    if "username" in q:
        users = [u for u in users if u["username"].lower() == q["username"][-1].lower()]
    return users


def encode_cursor(user_id):
    raw = json.dumps({"id": str(user_id), "_kd": "n"}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text):
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return int(json.loads(raw)["id"])
    except (ValueError, KeyError, TypeError):
        raise ApiError(400, "400 Bad request - cursor is invalid")


def page_link(base, q, **changes):
    params = {k: v[-1] for k, v in q.items()}
    params.update({k: str(v) for k, v in changes.items()})
    return "<%s?%s>" % (base, urllib.parse.urlencode(sorted(params.items())))


def list_users(handler, q, admin):
    base = "http://127.0.0.1:%d/api/v4/users" % handler.server.server_address[1]
    if ARGS.tls_cert:
        base = base.replace("http:", "https:")
    per_page = max(1, min(int(q.get("per_page", ["20"])[-1] or 20), MAX_PER_PAGE))
    order_by, sort = q.get("order_by", ["id"])[-1], q.get("sort", ["desc"])[-1]
    if sort not in ("asc", "desc"):
        raise ApiError(400, "400 Bad request - sort does not have a valid value")
    if order_by not in ("id", "name", "username", "created_at", "updated_at"):
        raise ApiError(400, "400 Bad request - order_by does not have a valid value")
    users = filtered_users(q)
    entity = with_admin if admin else basic
    headers = {}
    if q.get("pagination", [""])[-1] == "keyset":
        if order_by != "id":  # GitLab supports more orders; this fake does not
            raise ApiError(405, "405 Method Not Allowed - keyset pagination of this fake supports order_by=id only")
        users = sorted(users, key=lambda u: u["id"], reverse=(sort == "desc"))
        if "cursor" in q:
            after = decode_cursor(q["cursor"][-1])
            users = [u for u in users if (u["id"] > after if sort == "asc" else u["id"] < after)]
        page = users[:per_page]
        if len(page) == per_page:  # a full page always links on; the page after the last is empty
            q2 = {k: v for k, v in q.items() if k != "cursor"}
            headers["Link"] = page_link(base, q2, cursor=encode_cursor(page[-1]["id"])) + '; rel="next"'
        return [entity(u) for u in page], headers
    page_no = max(1, int(q.get("page", ["1"])[-1] or 1))
    if page_no * per_page > MAX_OFFSET:
        raise ApiError(405, "405 Method Not Allowed - Offset pagination has a maximum allowed offset of %d for "
                       "requests that return objects of type User. Remaining records can be retrieved using "
                       "keyset pagination." % MAX_OFFSET)
    key = {"id": lambda u: u["id"], "name": lambda u: u["name"], "username": lambda u: u["username"],
           "created_at": lambda u: u["created_at"], "updated_at": lambda u: u["id"]}[order_by]
    users = sorted(users, key=key, reverse=(sort == "desc"))
    total = len(users)
    pages = max(1, (total + per_page - 1) // per_page)
    page = users[(page_no - 1) * per_page: page_no * per_page]
    links = []
    if page_no > 1:
        links.append(page_link(base, q, page=page_no - 1) + '; rel="prev"')
    if page_no < pages:
        links.append(page_link(base, q, page=page_no + 1) + '; rel="next"')
    links.append(page_link(base, q, page=1) + '; rel="first"')
    links.append(page_link(base, q, page=pages) + '; rel="last"')
    headers.update({"Link": ", ".join(links), "X-Page": str(page_no), "X-Per-Page": str(per_page),
                    "X-Total": str(total), "X-Total-Pages": str(pages),
                    "X-Next-Page": str(page_no + 1) if page_no < pages else "",
                    "X-Prev-Page": str(page_no - 1) if page_no > 1 else ""})
    return [entity(u) for u in page], headers


def deactivate(user, actor):
    """POST /users/:id/deactivate (lib/api/users.rb with Users::DeactivateService)."""
    if user["state"] == "deactivated":
        return True
    if user["state"] in BLOCKED_STATES:
        raise ApiError(403, "403 Forbidden - A blocked user cannot be deactivated by the API")
    if is_internal(user):
        raise ApiError(403, "403 Forbidden - An internal user cannot be deactivated by the API")
    if not can_be_deactivated(user):
        raise ApiError(403, "403 Forbidden - The user you are trying to deactivate has been active in the past "
                       "%d days and cannot be deactivated" % STATE["settings"]["deactivate_dormant_users_period"])
    user["state"] = "deactivated"
    # Later GitLab writes an audit event for each deactivation (the service's log_event).
    STATE["audit_events"].append({"entity_id": user["id"], "entity_type": "User", "action": "deactivate",
                                  "author": actor["username"], "created_at": iso(now())})
    save_state()
    return True


def throttle(token):
    """Rack::Attack's authenticated API throttle: a fixed window per token; past the limit, 429 with
    Retry-After and the RateLimit-* headers, body 'Retry later'."""
    limit = STATE["settings"]["throttle_authenticated_api_requests_per_period"]
    if not limit:
        return
    period = STATE["settings"]["throttle_authenticated_api_period_in_seconds"]
    t = time.time()
    start, count = WINDOWS.get(token, (t - t % period, 0))
    if t >= start + period:
        start, count = t - t % period, 0
    count += 1
    WINDOWS[token] = (start, count)
    if count > limit:
        reset = int(start + period)
        raise ApiError(429, None, text="Retry later\n", headers={
            "RateLimit-Name": "throttle_authenticated_api", "RateLimit-Limit": str(limit),
            "RateLimit-Observed": str(count), "RateLimit-Remaining": "0", "RateLimit-Reset": str(reset),
            "RateLimit-ResetTime": email.utils.formatdate(reset, usegmt=True),
            "Retry-After": str(max(1, reset - int(t)))})


def injected_fault(method, path_query):
    for fault in FAULTS:
        if fault.get("method", method) not in (method, "*") or not re.search(fault.get("path", ""), path_query):
            continue
        if fault.get("count") is not None:
            if fault["count"] <= 0:
                continue
            fault["count"] -= 1
        status = fault["status"]
        if status == 429:
            return ApiError(429, None, text="Retry later\n",
                            headers={"Retry-After": str(fault.get("retry_after", 1)), "RateLimit-Remaining": "0"})
        return ApiError(status, fault.get("message", "%d injected by the test" % status))
    return None


def authenticate(handler, q):
    token = handler.headers.get("PRIVATE-TOKEN") or q.get("private_token", [None])[-1]
    auth = handler.headers.get("Authorization", "")
    if not token and auth.lower().startswith("bearer "):
        token = auth[7:].strip()
    owner = STATE["tokens"].get(token) if token else None
    user = find_user(owner) if owner is not None else None
    if not user:
        raise ApiError(401, "401 Unauthorized")
    return token, user


def api(handler, method, path, q):
    token, actor = authenticate(handler, q)
    throttle(token)
    admin = actor["is_admin"]
    if method == "GET" and path == "/version":
        return 200, {"version": STATE["settings"]["version"], "revision": "fake"}, {}
    if method == "GET" and path == "/user":
        return 200, with_admin(actor) if admin else public(actor), {}
    if method == "GET" and path == "/users":
        body, headers = list_users(handler, q, admin)
        return 200, body, headers
    m = re.match(r"^/users/(\d+)(/deactivate|/activate)?$", path)
    if m:
        user = find_user(int(m.group(1)))
        if method == "GET" and not m.group(2):
            if not user:
                raise ApiError(404, "404 User Not Found")
            return 200, with_admin(user) if admin else public(user), {}
        if method == "POST" and m.group(2):
            if not admin:
                raise ApiError(403, "403 Forbidden")
            if not user:
                raise ApiError(404, "404 User Not Found")
            if m.group(2) == "/deactivate":
                return 201, deactivate(user, actor), {}
            if user["state"] in BLOCKED_STATES:
                raise ApiError(403, "403 Forbidden - A blocked user must be unblocked to be activated")
            user["state"] = "active"
            save_state()
            return 201, True, {}
    raise ApiError(404, "404 Not Found")


def control(method, path, body):
    """The test's side door: /_fake/state, /_fake/users (change or add users), /_fake/settings, /_fake/faults."""
    if method == "GET" and path == "state":
        return 200, STATE
    if method == "POST" and path == "users":
        for change in body if isinstance(body, list) else [body]:
            user = find_user(change.get("id", change.get("username")))
            if user is None:
                change.setdefault("id", max([u["id"] for u in STATE["users"]] + [0]) + 1)
                STATE["users"].append(normalize(change))
                STATE["users"].sort(key=lambda u: u["id"])
            else:
                merged = dict(user)
                merged.update(change)
                user.update(normalize(merged))
        save_state()
        return 200, {"users": len(STATE["users"])}
    if method == "DELETE" and path.startswith("users/"):
        STATE["users"] = [u for u in STATE["users"] if str(u["id"]) != path[6:]]
        save_state()
        return 200, {}
    if method == "POST" and path == "settings":
        STATE["settings"].update(body)
        return 200, STATE["settings"]
    if method == "POST" and path == "faults":
        FAULTS.extend(body if isinstance(body, list) else [body])
        return 200, FAULTS
    if method == "DELETE" and path == "faults":
        FAULTS.clear()
        return 200, []
    return 404, {"message": "no such control call"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One write per answer (flushed after each request): headers and body in separate small writes
    # meet the client's delayed ACK and cost 40 ms a request.
    wbufsize = 64 * 1024

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args):
        pass

    def reply(self, status, body=None, headers=None, text=None):
        data = (text if text is not None else json.dumps(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if text is not None else "application/json")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def record(self, path, q, status, user):
        entry = {"time": iso(now()), "method": self.command, "path": path,
                 "query": {k: v[-1] for k, v in q.items() if k != "private_token"}, "status": status, "user": user}
        with open(os.path.join(ARGS.dir, "requests.log"), "a") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        with LOCK:
            if url.path.startswith("/_fake/"):
                if self.headers.get("Authorization") != "Bearer " + CONTROL_TOKEN:
                    return self.reply(401, {"message": "control token needed"})
                status, body = control(self.command, url.path[len("/_fake/"):], json.loads(raw or b"null"))
                return self.reply(status, body)
            if not url.path.startswith("/api/v4/"):
                self.record(url.path, q, 404, None)
                return self.reply(404, {"message": "404 Not Found"})
            path = url.path[len("/api/v4"):]
            user = None
            try:
                fault = injected_fault(self.command, path + ("?" + url.query if url.query else ""))
                if fault:
                    raise fault
                status, body, headers = api(self, self.command, path, q)
                user = self.token_user()
            except ApiError as e:
                user = self.token_user()
                self.record(path, q, e.status, user)
                if e.text is not None:
                    return self.reply(e.status, headers=e.headers, text=e.text)
                return self.reply(e.status, {"message": e.message}, e.headers)
            self.record(path, q, status, user)
            return self.reply(status, body, headers)

    def token_user(self):
        token = self.headers.get("PRIVATE-TOKEN")
        owner = STATE["tokens"].get(token) if token else None
        u = find_user(owner) if owner is not None else None
        return u["username"] if u else None

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any


def watch_parent(parent):
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(0)


def main():
    global ARGS, STATE, CONTROL_TOKEN
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", required=True)
    p.add_argument("--state")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--die-with-parent", action="store_true")
    ARGS = p.parse_args()
    os.makedirs(ARGS.dir, exist_ok=True)
    STATE = load_state(ARGS.state)
    save_state()
    CONTROL_TOKEN = secrets.token_hex(16)
    with open(os.path.join(ARGS.dir, "control-token"), "w") as f:
        f.write(CONTROL_TOKEN)
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    server.daemon_threads = True
    if ARGS.tls_cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(ARGS.tls_cert, ARGS.tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    if ARGS.die_with_parent:
        threading.Thread(target=watch_parent, args=(os.getppid(),), daemon=True).start()
    with open(os.path.join(ARGS.dir, "port.tmp"), "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(os.path.join(ARGS.dir, "port.tmp"), os.path.join(ARGS.dir, "port"))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
