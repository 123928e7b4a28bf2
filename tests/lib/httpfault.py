#!/usr/bin/python3
"""An HTTP reverse proxy for tests: forwards every request to an upstream server, except those a rule
answers itself (a 500 on one chosen DELETE, a 429 with Retry-After, ...).

Usage: httpfault.py --dir DIR --upstream http://127.0.0.1:PORT [--tls-cert CERT --tls-key KEY]
(with --tls-cert it serves HTTPS, to test certificate verification)
Writes DIR/port when ready. Rules are read from DIR/rules.json at every request, so a test can change
them while it runs: [{"method": "DELETE", "path": "regex", "status": 500, "body": "{...}",
"headers": {"Retry-After": "1"}, "count": 1}]  (count: how many requests it answers; omitted: all).
Every request is logged to DIR/requests.log as "METHOD PATH STATUS".
"""
import argparse
import http.client
import json
import os
import re
import ssl
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
ARGS = None
USED = {}
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


def matching_rule(method, path):
    try:
        with open(os.path.join(ARGS.dir, "rules.json")) as f:
            rules = json.load(f)
    except (OSError, ValueError):
        return None
    with LOCK:
        for i, rule in enumerate(rules):
            if rule.get("method", method) != method or not re.search(rule.get("path", ""), path):
                continue
            key = (i, json.dumps(rule, sort_keys=True))  # a new rule file starts new counts
            if "count" in rule and USED.get(key, 0) >= rule["count"]:
                continue
            USED[key] = USED.get(key, 0) + 1
            return rule
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def log(self, status):
        with LOCK, open(os.path.join(ARGS.dir, "requests.log"), "a") as f:
            f.write(f"{self.command} {self.path} {status}\n")

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        rule = matching_rule(self.command, self.path)
        if rule:
            data = rule.get("body", '{"status": %d, "message": "injected by the test proxy"}' % rule["status"]).encode()
            self.send_response(rule["status"])
            for k, v in rule.get("headers", {}).items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.log(rule["status"])
            return
        up = urllib.parse.urlparse(ARGS.upstream)
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP and k.lower() != "host"}
        headers["Host"] = f"{up.hostname}:{up.port}"
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        conn.close()
        self.log(resp.status)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ARGS = ap.parse_args()
    server = Server(("127.0.0.1", 0), Handler)
    if ARGS.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(ARGS.tls_cert, ARGS.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    tmp = os.path.join(ARGS.dir, "port.tmp")
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, os.path.join(ARGS.dir, "port"))
    server.serve_forever()


if __name__ == "__main__":
    main()
