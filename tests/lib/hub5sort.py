#!/usr/bin/python3
"""A stand-in for the part of JupyterHub 5's REST API that 3.0 (the hub Debian ships, which the other
tests run) lacks: GET /hub/api/users?sort=last_activity. It follows JupyterHub 5's users.py:
sort is id (default), name or last_activity, a leading '-' for descending, anything else 400; in
ascending order users who were never active come first, then the longest idle; offset/limit
pagination with the pagination Accept header, total counted before the page is cut.

Usage: hub5sort.py --dir DIR --users USERS.json --token TOKEN [--version 5.2.1] [--ignore-sort]
USERS.json: [{"name":, "admin":, "created":, "last_activity":, "servers": {}}...], in id order.
Writes DIR/port when ready; logs "METHOD PATH?QUERY STATUS" lines to DIR/requests.log.
  --ignore-sort        answer in id order whatever sort says (as a hub older than 5.0 does)
  DIR/events.json      {"OFFSET": {"create": N, "touch": [names]}}: before answering the page at
                       OFFSET (once), create N never-active users (they sort first) or mark users
                       active now, as people using the hub during a listing would.
"""
import argparse
import json
import os
import sys
import threading
import urllib.parse
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
USERS = []          # user models, in id order
FIRED = set()       # offsets whose events ran
ARGS = None


def now_iso():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def run_events(offset):
    try:
        with open(os.path.join(ARGS.dir, "events.json")) as f:
            events = json.load(f)
    except (OSError, ValueError):
        return
    event = events.get(str(offset))
    if not event or offset in FIRED:
        return
    FIRED.add(offset)
    for i in range(event.get("create", 0)):
        USERS.append({"name": f"newcomer{len(USERS)}-{i}", "admin": False, "created": now_iso(),
                      "last_activity": None, "servers": {}, "kind": "user"})
    for name in event.get("touch", []):
        for u in USERS:
            if u["name"] == name:
                u["last_activity"] = now_iso()


def ordered(sort):
    desc = sort.startswith("-")
    key = sort[1:] if desc else sort
    if key not in ("id", "name", "last_activity"):
        return None
    if ARGS.ignore_sort or key == "id":
        users = list(USERS)
        return users[::-1] if desc else users
    if key == "name":
        return sorted(USERS, key=lambda u: u["name"], reverse=desc)
    active = [u for u in USERS if u["last_activity"]]
    never = [u for u in USERS if not u["last_activity"]]
    active.sort(key=lambda u: u["last_activity"], reverse=desc)
    # ascending: the never active first (is_not(None) sorts False first); descending: last
    return never + active if not desc else active + never


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
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path in ("/hub/api", "/hub/api/"):
            return self.answer(200, {"version": ARGS.version})
        if not self.authorized():
            return
        if url.path == "/hub/api/user":
            # SelfAPIHandler: the token's own model; a service's, with its scopes (JupyterHub 2.0+).
            return self.answer(200, {"kind": "service", "name": "ops", "admin": False, "roles": ["ops"],
                                     "scopes": ["admin:users", "admin:servers", "list:users", "read:users", "read:hub"]})
        if url.path == "/hub/api/info":
            # JupyterHub's InfoAPIHandler (scope read:hub): version, python, and the spawner's and
            # authenticator's class and version. This stand-in's users have no per-user storage.
            return self.answer(200, {"version": ARGS.version, "python": sys.version.split()[0], "sys_executable": sys.executable,
                                     "spawner": {"class": "jupyterhub.spawner.LocalProcessSpawner", "version": ARGS.version},
                                     "authenticator": {"class": "jupyterhub.auth.PAMAuthenticator", "version": ARGS.version}})
        if url.path == "/hub/api/users":
            offset, limit = int(query.get("offset", 0)), min(int(query.get("limit", 200)), 200)
            with LOCK:
                run_events(offset)
                users = ordered(query.get("sort", "id"))
                if users is None:
                    return self.answer(400, {"status": 400, "message": "sort must be 'id', 'name', or 'last_activity', not '%s'" % query["sort"]})
                page = users[offset:offset + limit]
                total = len(users)
            if "jupyterhub-pagination" not in self.headers.get("Accept", ""):
                return self.answer(200, page)
            nxt = None
            if offset + limit < total:
                nxt = {"offset": offset + limit, "limit": limit,
                       "url": f"http://{self.headers.get('Host')}/hub/api/users?offset={offset + limit}&limit={limit}"}
            return self.answer(200, {"items": page, "_pagination": {"offset": offset, "limit": limit, "total": total, "next": nxt}})
        if url.path.startswith("/hub/api/users/"):
            name = urllib.parse.unquote(url.path[len("/hub/api/users/"):])
            with LOCK:
                found = [u for u in USERS if u["name"] == name]
            return self.answer(200, found[0]) if found else self.answer(404, {"status": 404, "message": "Not Found"})
        self.answer(404, {"status": 404, "message": "Not Found"})

    def do_DELETE(self):
        url = urllib.parse.urlsplit(self.path)
        if not self.authorized():
            return
        if url.path.startswith("/hub/api/users/"):
            name = urllib.parse.unquote(url.path[len("/hub/api/users/"):])
            with LOCK:
                before = len(USERS)
                USERS[:] = [u for u in USERS if u["name"] != name]
                gone = len(USERS) < before
            return self.answer(204) if gone else self.answer(404, {"status": 404, "message": "Not Found"})
        self.answer(404, {"status": 404, "message": "Not Found"})


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--users", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--version", default="5.2.1")
    parser.add_argument("--ignore-sort", action="store_true")
    ARGS = parser.parse_args()
    with open(ARGS.users) as f:
        USERS.extend(json.load(f))
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(os.path.join(ARGS.dir, "port.tmp"), "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(os.path.join(ARGS.dir, "port.tmp"), os.path.join(ARGS.dir, "port"))
    server.serve_forever()


if __name__ == "__main__":
    main()
