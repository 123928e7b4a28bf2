#!/usr/bin/python3
"""A small key-value HTTP server the engine tests act on, with a request log.

Usage: kvserver.py --dir DIR [--keys k=v,...]
Writes DIR/port when ready and logs every request as "METHOD PATH STATUS" to DIR/requests.log.
  GET    /keys            -> {"keys": {name: {"value": v, "version": n}}}
  GET    /keys/NAME       -> {"value": v, "version": n} | 404
  PUT    /keys/NAME {"value": v} -> 200 (version bumps)
  DELETE /keys/NAME       -> 204 | 404
  GET    /stats           -> {"peak": most DELETEs ever in progress at once, "apart": DELETEs of "group:N" keys
                               that found no group, "held": DELETEs of "hold" keys waiting}; /stats?reset=1
                               zeroes peak and apart
  POST   /release         -> 204: DELETEs of "hold" keys go on, now and from then on
A key whose value is "fail" answers 500 to DELETE, "forbidden" 403 naming a scope (as JupyterHub does); "slow" waits 2 s before deleting; "wait" waits
0.3 s; "serial" deletes one at a time, 50 ms each (a server that queues: a single-threaded hub); "group:N" waits
until N such DELETEs are in progress together (at most 5 s, else it counts in "apart" and goes on alone): a count
of concurrency that no load on the machine can change; "hold" waits until POST /release.
A request is logged before its answer is sent: a client that has its answer finds its request in the log.
"""
import argparse
import json
import os
import signal
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.RLock()
SERIAL = threading.Lock()  # the queue in front of "serial" keys
KEYS = {}
DELETES = {"now": 0, "peak": 0, "apart": 0, "held": 0}
GROUPS = {}  # N -> threading.Barrier(N) for "group:N" keys
RELEASED = threading.Event()  # set by POST /release: "hold" keys no longer wait
GROUP_WAIT = 5  # seconds: requests sent together arrive within milliseconds, even on a loaded machine
LOG = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, doc=None):
        body = b"" if doc is None else json.dumps(doc).encode()
        with LOCK:
            LOG.write(f"{self.command} {self.path} {status}\n")
            LOG.flush()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def key(self):
        path = urllib.parse.urlparse(self.path).path
        if path.startswith("/keys/"):
            return urllib.parse.unquote(path[len("/keys/"):])
        return None

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n) or b"{}")

    def do_GET(self):
        name = self.key()
        url = urllib.parse.urlparse(self.path)
        if url.path == "/stats":
            with LOCK:
                stats = {k: DELETES[k] for k in ("peak", "apart", "held")}
                if "reset=1" in url.query:
                    DELETES["peak"] = DELETES["apart"] = 0
            return self.reply(200, stats)
        with LOCK:
            if url.path == "/keys":
                return self.reply(200, {"keys": KEYS})
            if name in KEYS:
                return self.reply(200, KEYS[name])
        self.reply(404, {"message": "no such key"})

    def do_PUT(self):
        name, doc = self.key(), self.body()
        with LOCK:
            old = KEYS.get(name, {"version": 0})
            KEYS[name] = {"value": doc.get("value"), "version": old["version"] + 1}
            entry = KEYS[name]
        self.reply(200, entry)

    def do_POST(self):
        if urllib.parse.urlparse(self.path).path != "/release":
            return self.reply(404, {"message": "no such path"})
        RELEASED.set()
        self.reply(204)

    def do_DELETE(self):
        with LOCK:
            DELETES["now"] += 1
            DELETES["peak"] = max(DELETES["peak"], DELETES["now"])
        try:
            self.delete()
        finally:
            with LOCK:
                DELETES["now"] -= 1

    def delete(self):
        name = self.key()
        with LOCK:
            entry = KEYS.get(name)
        if entry is None:
            return self.reply(404, {"message": "no such key"})
        if entry["value"] == "fail":
            return self.reply(500, {"message": "cannot delete this key"})
        if entry["value"] == "forbidden":
            return self.reply(403, {"message": "Action is not authorized with current scopes; requires any of [delete:keys]"})
        if entry["value"] == "slow":
            time.sleep(2)
        elif entry["value"] == "wait":
            time.sleep(0.3)
        elif entry["value"] == "serial":
            with SERIAL:
                time.sleep(0.05)
        elif entry["value"].startswith("group:"):
            self.meet(int(entry["value"][len("group:"):]))
        elif entry["value"] == "hold":
            with LOCK:
                DELETES["held"] += 1
            RELEASED.wait()
            with LOCK:
                DELETES["held"] -= 1
        with LOCK:
            KEYS.pop(name, None)
        self.reply(204)


    @staticmethod
    def meet(n):
        with LOCK:
            barrier = GROUPS.setdefault(n, threading.Barrier(n))
        try:
            barrier.wait(GROUP_WAIT)
        except threading.BrokenBarrierError:
            with LOCK:
                DELETES["apart"] += 1
                if barrier.broken:
                    barrier.reset()


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients killed mid-request (the resume tests do that on purpose) are not errors here


def main():
    global LOG
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--keys", default="")
    args = ap.parse_args()
    for item in filter(None, args.keys.split(",")):
        k, _, v = item.partition("=")
        KEYS[k] = {"value": v, "version": 1}
    LOG = open(os.path.join(args.dir, "requests.log"), "a")
    server = Server(("127.0.0.1", 0), Handler)
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    with open(os.path.join(args.dir, "port.tmp"), "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(os.path.join(args.dir, "port.tmp"), os.path.join(args.dir, "port"))
    server.serve_forever()


if __name__ == "__main__":
    main()
