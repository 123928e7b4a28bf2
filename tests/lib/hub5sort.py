#!/usr/bin/python3
"""A stand-in for the part of JupyterHub 5's REST API that 3.0 (the hub Debian ships, which the other
tests run) lacks: GET /hub/api/users?sort=last_activity, as JupyterHub 5.x and 6.0 answer it on
PostgreSQL (--db postgres, the default) or on SQLite (--db sqlite).

What it follows
- JupyterHub 5's jupyterhub/apihandlers/users.py (UserListAPIHandler.get; 6.0 is the same): sort is
  id (default), name or last_activity, a leading '-' for descending; anything else is
  400 {"status": 400, "message": "sort must be 'id', 'name', or 'last_activity', not 'SORT'"} (SORT as
  sent, '-' included). Ascending is ORDER BY `last_activity IS NOT NULL, last_activity` (never-active
  users first, then the longest idle); descending `last_activity IS NULL, last_activity DESC`. Then
  OFFSET/LIMIT (limit capped at 200), `total` counted by a separate query, `next` while
  offset + limit < total, its url keeping the request's other parameters (base.py paginated_model).
- That ORDER BY has NO unique tiebreaker. SQL leaves the order of tied rows undefined, and each page
  is a separate query, so nothing makes the pages agree on where a tied user is:
    --db postgres  every tie group (never-active users: last_activity NULL; users sharing one
                   timestamp) comes back in a fresh arbitrary order on every request (a shuffle per
                   request; --seed N makes the sequence reproducible). A user created during a listing
                   lands anywhere among its ties. This is what PostgreSQL is allowed to do, and what a
                   client must survive.
    --db sqlite    ties come back in id order (new users at the end of their tie block).
  sort=name has no ties (names are unique); sort=id (the default) is stable in both.
- What a real hub did (issue 15): JupyterHub 5.5.1 on PostgreSQL, 800 never-active users and 10 given
  an old activity: the sorted listing, all pages, returned 800 items of which 789 distinct (users
  repeated, others never listed); id order was a partition in every run. On SQLite ties came in id
  order. 4.1.6 ignores sort (200, id order): --ignore-sort. A real spawn sets last_activity to now, so
  a pending user never sorts among the dormant; 'touch' below does the same.
  PostgreSQL 15 here, same query shape on 800 NULLs + 10 timestamps: 810 items, 808 distinct. It picks
  a bounded (top-N) heap sort whose bound is OFFSET + LIMIT, so the ties' order changes with the page.
  Real servers scramble ties less than this stand-in; the stand-in is the worst case they allow.
- The rest, as JupyterHub answers it: GET /hub/api (version), GET /hub/api/info (spawner
  jupyterhub.spawner.LocalProcessSpawner), GET /hub/api/user (the token's own model: service "ops"),
  GET/DELETE /hub/api/users/NAME (DELETE: 404 unknown; 400 {"status":400,"message":"Cannot delete
  yourself!"} for a user named like the token's service; else 204).

Usage: hub5sort.py --dir DIR --users USERS.json --token TOKEN [--version 5.2.1] [--db postgres|sqlite]
                   [--seed N] [--ignore-sort]
       hub5sort.py --self-check
USERS.json: [{"name":, "admin":, "created":, "last_activity":, "servers": {}}...], in id order.
Writes DIR/port when ready; logs "METHOD PATH?QUERY STATUS" lines to DIR/requests.log.
  --ignore-sort        answer in id order whatever sort says, 200 (JupyterHub 4.1.x)
  DIR/events.json      {"OFFSET": {"create": N, "touch": [names], "delete": [names]}}: before answering
                       the first GET /hub/api/users at OFFSET (once), create N never-active users
                       (named newcomerID), set users' last_activity to now, or delete users, as people
                       using the hub during a listing would. A key "SORT:OFFSET" ("id:400",
                       "last_activity:200"; no sort is id) fires only on a listing with that sort.
  DIR/users.out.json   written after every change: the users now, in id order (for a test's oracle).
  --self-check         runs the stand-in on 800 never-active + 10 old users and checks the above:
                       postgres sorted pages repeat and miss users, id order is a partition, sqlite
                       sorted pages are a partition, 400 on a bad sort, 4.1 ignores sort, the ops user.
"""
import argparse
import json
import os
import random
import sys
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERVICE = "ops"     # the token's service (GET /hub/api/user)
LOCK = threading.Lock()
USERS = []          # user models, in id order; "_id" is the database id (not in the model)
FIRED = set()       # offsets whose events ran
NEXT_ID = [1]
RNG = random.Random()
ARGS = None


def now_iso():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def model(u):
    return {k: v for k, v in u.items() if not k.startswith("_")}


def add_user(u):
    u = dict(u)
    u["_id"] = NEXT_ID[0]
    NEXT_ID[0] += 1
    USERS.append(u)


def save_users():
    out = os.path.join(ARGS.dir, "users.out.json")
    with open(out + ".tmp", "w") as f:
        json.dump([model(u) for u in USERS], f)
    os.replace(out + ".tmp", out)


def run_events(offset, sort):
    try:
        with open(os.path.join(ARGS.dir, "events.json")) as f:
            events = json.load(f)
    except (OSError, ValueError):
        return
    # An event fires once, at the first request for a page other than the first that starts at its
    # offset, or past it, or one before it: a client may ask for overlapping pages (offset 199 rather
    # than 200 for the second page of 200).
    for key in sorted(events, key=lambda k: int(k.rsplit(":", 1)[-1])):
        at = key.rsplit(":", 1)
        when = int(at[-1])
        if len(at) == 2 and at[0] != sort:
            continue
        if when <= offset + 1 and (when == 0 or offset > 0) and key not in FIRED:
            FIRED.add(key)
            run_event(events[key])


def run_event(event):
    for _ in range(event.get("create", 0)):
        add_user({"name": f"newcomer{NEXT_ID[0]}", "admin": False, "created": now_iso(),
                  "last_activity": None, "servers": {}, "kind": "user", "groups": []})
    for name in event.get("touch", []):
        for u in USERS:
            if u["name"] == name:
                u["last_activity"] = now_iso()
    gone = set(event.get("delete", []))
    USERS[:] = [u for u in USERS if u["name"] not in gone]
    save_users()


def timestamp(value):
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def ordered(sort):
    """The users in the order of one query with ORDER BY for `sort`; None for an unknown sort."""
    if ARGS.ignore_sort:  # 4.1.x: no sort parameter at all, whatever it says
        return list(USERS)
    desc = sort.startswith("-")
    key = sort[1:] if desc else sort
    if key not in ("id", "name", "last_activity"):
        return None
    if key == "id":
        users = list(USERS)
        return users[::-1] if desc else users
    if key == "name":
        return sorted(USERS, key=lambda u: u["name"], reverse=desc)
    # (last_activity IS NOT NULL, last_activity) ascending; (last_activity IS NULL, last_activity DESC)
    # descending. Ties: a fresh arbitrary order per query (postgres) or id order (sqlite).
    if ARGS.db == "postgres":
        tie = {u["_id"]: RNG.random() for u in USERS}
    else:
        tie = {u["_id"]: u["_id"] for u in USERS}
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)

    def sort_key(u):
        t = timestamp(u["last_activity"])
        seconds = (t - epoch).total_seconds() if t else 0.0
        if desc:
            return (t is None, -seconds, tie[u["_id"]])
        return (t is not None, seconds, tie[u["_id"]])
    return sorted(USERS, key=sort_key)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, doc=None):
        body = b"" if doc is None else json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with open(os.path.join(ARGS.dir, "requests.log"), "a") as log:
            log.write(f"{self.command} {self.path} {status}\n")

    def authorized(self):
        if self.headers.get("Authorization") != "token " + ARGS.token:
            self.answer(403, {"status": 403, "message": "Action is not authorized with current scopes; requires any of [list:users]"})
            return False
        return True

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        if url.path in ("/hub/api", "/hub/api/"):
            return self.answer(200, {"version": ARGS.version})
        if not self.authorized():
            return
        if url.path == "/hub/api/user":
            # SelfAPIHandler: the token's own model; a service's, with its scopes (JupyterHub 2.0+).
            return self.answer(200, {"kind": "service", "name": SERVICE, "admin": False, "roles": [SERVICE],
                                     "scopes": ["admin:users", "admin:servers", "list:users", "read:users", "read:hub"]})
        if url.path == "/hub/api/info":
            # JupyterHub's InfoAPIHandler (scope read:hub): version, python, and the spawner's and
            # authenticator's class and version. This stand-in's users have no per-user storage.
            return self.answer(200, {"version": ARGS.version, "python": sys.version.split()[0], "sys_executable": sys.executable,
                                     "spawner": {"class": "jupyterhub.spawner.LocalProcessSpawner", "version": ARGS.version},
                                     "authenticator": {"class": "jupyterhub.auth.PAMAuthenticator", "version": ARGS.version}})
        if url.path == "/hub/api/users":
            paginated = "jupyterhub-pagination" in self.headers.get("Accept", "")
            try:  # base.py get_api_pagination
                offset = abs(int(query.get("offset", 0)))
                limit = max(1, min(abs(int(query.get("limit", 200))), 200))
            except ValueError:
                return self.answer(400, {"status": 400, "message": "Invalid argument type, offset and limit must be integers"})
            with LOCK:
                run_events(offset, query.get("sort") or "id")
                users = ordered(query.get("sort", "id"))
                if users is None:
                    return self.answer(400, {"status": 400, "message": "sort must be 'id', 'name', or 'last_activity', not '%s'" % query["sort"]})
                page = [model(u) for u in users[offset:offset + limit]]
                total = len(users)
            if not paginated:
                return self.answer(200, page)
            nxt = None
            if offset + limit < total:
                q = dict(query, offset=str(offset + limit), limit=str(limit))
                nxt = {"offset": offset + limit, "limit": limit,
                       "url": f"http://{self.headers.get('Host')}/hub/api/users?{urllib.parse.urlencode(q)}"}
            return self.answer(200, {"items": page, "_pagination": {"offset": offset, "limit": limit, "total": total, "next": nxt}})
        if url.path.startswith("/hub/api/users/"):
            name = urllib.parse.unquote(url.path[len("/hub/api/users/"):])
            with LOCK:
                found = [model(u) for u in USERS if u["name"] == name]
            return self.answer(200, found[0]) if found else self.answer(404, {"status": 404, "message": "Not Found"})
        self.answer(404, {"status": 404, "message": "Not Found"})

    def do_DELETE(self):
        url = urllib.parse.urlsplit(self.path)
        if not self.authorized():
            return
        if url.path.startswith("/hub/api/users/"):
            name = urllib.parse.unquote(url.path[len("/hub/api/users/"):])
            with LOCK:
                found = any(u["name"] == name for u in USERS)
                if found and name != SERVICE:
                    USERS[:] = [u for u in USERS if u["name"] != name]
                    save_users()
            if not found:
                return self.answer(404, {"status": 404, "message": "Not Found"})
            if name == SERVICE:  # UserAPIHandler.delete: user.name == self.current_user.name
                return self.answer(400, {"status": 400, "message": "Cannot delete yourself!"})
            return self.answer(204)
        self.answer(404, {"status": 404, "message": "Not Found"})


def serve(args, users):
    global ARGS
    ARGS = args
    if args.seed is not None:
        RNG.seed(args.seed)
    USERS.clear()
    FIRED.clear()
    NEXT_ID[0] = 1
    for u in users:
        add_user(u)
    save_users()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(os.path.join(args.dir, "port.tmp"), "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(os.path.join(args.dir, "port.tmp"), os.path.join(args.dir, "port"))
    return server


def parser():
    p = argparse.ArgumentParser()
    p.add_argument("--dir")
    p.add_argument("--users")
    p.add_argument("--token")
    p.add_argument("--version", default="5.2.1")
    p.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    p.add_argument("--seed", type=int)
    p.add_argument("--ignore-sort", action="store_true")
    p.add_argument("--self-check", action="store_true")
    return p


def self_check():
    """800 never-active + 10 old users, every page read: what a client of each kind of hub sees."""
    now = datetime.now(timezone.utc)
    iso = lambda d: (now - timedelta(days=d)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    users = [{"name": f"never{i:03}", "admin": False, "created": iso(300), "last_activity": None,
              "servers": {}, "kind": "user", "groups": []} for i in range(800)]
    users += [{"name": f"old{i}", "admin": False, "created": iso(400), "last_activity": iso(200 + i),
               "servers": {}, "kind": "user", "groups": []} for i in range(10)]
    users.append({"name": SERVICE, "admin": False, "created": iso(400), "last_activity": iso(5),
                  "servers": {}, "kind": "user", "groups": []})
    failures = []

    def check(cond, what):
        print(("ok - " if cond else "not ok - ") + what)
        if not cond:
            failures.append(what)

    def run(extra):
        tmp = tempfile.mkdtemp(prefix="hub5sort-check.")
        args = parser().parse_args(["--dir", tmp, "--users", "-", "--token", "t"] + extra)
        server = serve(args, users)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}/hub/api"

        def call(path, method="GET"):
            req = urllib.request.Request(base + path, method=method, headers={
                "Authorization": "token t", "Accept": "application/jupyterhub-pagination+json"})
            try:
                with urllib.request.urlopen(req) as r:
                    body = r.read()
                    return r.status, json.loads(body) if body else None
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read() or b"null")

        def listing(sort=None):
            names, offset = [], 0
            while offset is not None:
                status, doc = call(f"/users?offset={offset}&limit=200" + (f"&sort={sort}" if sort else ""))
                assert status == 200, (status, doc)
                names += [u["name"] for u in doc["items"]]
                nxt = doc["_pagination"]["next"]
                offset = nxt["offset"] if nxt else None
            return names
        return server, call, listing

    server, call, listing = run(["--db", "postgres", "--seed", "1"])
    everyone = sorted(u["name"] for u in users)
    names = listing("last_activity")
    missing = set(everyone) - set(names)
    check(len(names) == len(users), f"postgres, sorted: {len(names)} items listed, as many as users")
    check(len(set(names)) < len(names), f"postgres, sorted: {len(set(names))} distinct: users repeated")
    check(len(missing) > 0, f"postgres, sorted: {len(missing)} users never listed")
    check(all(n.startswith("never") for n in names[:800]) and names[800:810] == [f"old{i}" for i in range(9, -1, -1)],
          "postgres, sorted: never-active first, then the longest idle, the ops user last")
    check(sorted(listing()) == everyone, "postgres, id order: a partition of the users")
    check(listing() == listing(), "postgres, id order: the same on every listing")
    check(sorted(listing("name")) == everyone, "postgres, sort=name: a partition (names are unique)")
    status, doc = call("/users?sort=bogus")
    check(status == 400 and doc == {"status": 400, "message": "sort must be 'id', 'name', or 'last_activity', not 'bogus'"},
          f"a bad sort: 400 with JupyterHub 5's message: {status} {doc}")
    status, doc = call("/users?sort=-last_activity&limit=1")
    check(status == 200 and doc["items"][0]["name"] == SERVICE, "sort=-last_activity: the most recent first")
    status, doc = call(f"/users/{SERVICE}", "DELETE")
    check((status, doc) == (400, {"status": 400, "message": "Cannot delete yourself!"}),
          f"DELETE the token's own name: 400 Cannot delete yourself!: {status} {doc}")
    status, _ = call("/users/never000", "DELETE")
    status2, _ = call("/users/never000", "DELETE")
    check((status, status2) == (204, 404), f"DELETE a user: 204, then 404: {status} {status2}")
    server.shutdown()

    server, call, listing = run(["--db", "sqlite"])
    names = listing("last_activity")
    check(sorted(names) == everyone, "sqlite, sorted: a partition of the users")
    check(names[:800] == [f"never{i:03}" for i in range(800)], "sqlite, sorted: ties in id order")
    with open(os.path.join(ARGS.dir, "events.json"), "w") as f:
        json.dump({"last_activity:200": {"touch": ["never000"]}, "400": {"create": 1},
                   "id:200": {"delete": ["never001"]}}, f)
    names = listing("last_activity")
    check("never200" not in names and names[-1] == "never000" and names.index(f"newcomer{len(users) + 1}") == 799,
          "sqlite, events: a user touched after page 1 moves last and the next page's first user is never listed; "
          "a newcomer lands at the end of the never-active block")
    names = listing()
    check("never001" in names and "never200" not in names and len(set(names)) == len(names) == len(USERS),
          "id order, events: a user of page 1 deleted after it (id:200): the next page's first user is never listed")
    server.shutdown()

    server, call, listing = run(["--version", "4.1.6", "--ignore-sort"])
    status, doc = call("/users?sort=bogus")
    check(status == 200, f"4.1.6 (--ignore-sort): a bad sort is ignored: {status}")
    check(listing("last_activity") == [u["name"] for u in users], "4.1.6: sort=last_activity answers in id order")
    server.shutdown()
    print(f"{len(failures)} failed")
    return 1 if failures else 0


def main():
    args = parser().parse_args()
    if args.self_check:
        sys.exit(self_check())
    if not (args.dir and args.users and args.token):
        parser().error("--dir, --users and --token are required")
    with open(args.users) as f:
        users = json.load(f)
    serve(args, users).serve_forever()


if __name__ == "__main__":
    main()
