#!/usr/bin/python3
"""A fake Kubernetes API server for tests: real protocol, real TLS, real exec.

    /usr/bin/python3 tests/fake-k8s/server.py --dir DIR [--seed SEED.json] [--port 0]

Writes into DIR: pki/ (CA, server and client certificates), kubeconfig, serviceaccount/,
tokens/, env, requests.log, server.log, volumes/, pods/, and finally ready. See README.md.
Python 3 standard library only; needs the openssl and bwrap commands.
"""

import argparse
import ctypes
import json
import os
import signal
import ssl
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fakek8s import credentials, podexec, resources, seed, storage  # noqa: E402
from fakek8s.controllers import Controllers, Settings  # noqa: E402
from fakek8s.faults import Faults  # noqa: E402
from fakek8s.httpapi import App, Server  # noqa: E402
from fakek8s.store import Store  # noqa: E402

PR_SET_PDEATHSIG = 1


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", required=True, help="state directory (created if missing)")
    p.add_argument("--seed", help="seed JSON file (see README.md)")
    p.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: the kernel picks one)")
    p.add_argument("--namespace-termination-seconds", type=float, default=1.0)
    p.add_argument("--pod-start-seconds", type=float, default=0.5)
    p.add_argument("--pod-stop-seconds", type=float, default=0.5)
    p.add_argument("--sa-namespace", default="default", help="namespace of the in-cluster service account mount")
    p.add_argument("--legacy-namespace-conflict", action="store_true",
                   help="answer a repeat DELETE of a Terminating namespace with 409 (Kubernetes < 1.17)")
    p.add_argument("--die-with-parent", action="store_true", help="get SIGTERM when the parent process dies")
    return p.parse_args(argv)


class Log:
    def __init__(self, path):
        self.file = open(path, "a", buffering=1)
        self.lock = threading.Lock()

    def __call__(self, message):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ("%.3fZ" % (time.time() % 1))[1:]
        with self.lock:
            self.file.write("%s %s\n" % (stamp, message))


def tls_context(pki):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(os.path.join(pki, "server.crt"), os.path.join(pki, "server.key"))
    context.load_verify_locations(os.path.join(pki, "ca.crt"))
    context.verify_mode = ssl.CERT_OPTIONAL  # client certificates are one way to log in, not required
    context.set_alpn_protocols(["http/1.1"])
    return context


def create_builtin_namespaces(store):
    ns = resources.BY_KEY[("", "namespaces")]
    for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
        store.create(ns, "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


def main(argv=None):
    args = parse_args(argv if argv is not None else sys.argv[1:])
    if args.die_with_parent:
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    directory = os.path.abspath(args.dir)
    os.makedirs(directory, exist_ok=True)
    for stale in ("ready", "env"):
        if os.path.exists(os.path.join(directory, stale)):
            os.remove(os.path.join(directory, stale))
    log = Log(os.path.join(directory, "server.log"))
    log("starting fake-k8s pid %d in %s" % (os.getpid(), directory))

    credentials.make_pki(os.path.join(directory, "pki"))
    tokens = credentials.load_tokens(os.path.join(directory, "credentials.json"))
    auth = credentials.setup_auth(directory, tokens, args.sa_namespace)

    store = Store(legacy_namespace_conflict=args.legacy_namespace_conflict)
    settings = Settings(args.pod_start_seconds, args.pod_stop_seconds, args.namespace_termination_seconds)
    fs = podexec.PodFilesystem(directory, lambda namespace, claim: storage.volume_for_claim(store, namespace, claim),
                               lambda name, namespace=None: storage.volume_for_name(store, name, namespace))
    controllers = Controllers(store, settings, log, fs)
    store.listeners.append(lambda event, rt, obj: fs.forget_pod(obj["metadata"]["uid"])
                           if event == "DELETED" and rt.plural == "pods" else None)
    store.listeners.append(lambda event, rt, obj: fs.remove_volume(obj["metadata"]["name"])
                           if event == "DELETED" and rt is storage.VOLUMES
                           and obj["spec"].get("persistentVolumeReclaimPolicy") == "Delete" else None)
    app = App(directory, store, controllers, fs, auth, Faults(), tokens, log)
    create_builtin_namespaces(store)
    if args.seed:
        with open(args.seed) as f:
            document = json.load(f)
        try:
            loaded = seed.load(store, controllers, fs, document, os.path.dirname(os.path.abspath(args.seed)))
        except (seed.SeedError, KeyError, OSError) as e:
            log("seed failed: %s" % e)
            print("fake-k8s: seed failed: %s" % e, file=sys.stderr)
            return 2
        log("seed loaded: %s" % loaded)

    server = Server(("127.0.0.1", args.port), app, tls_context(os.path.join(directory, "pki")))
    port = server.server_address[1]
    app.server_address = "127.0.0.1:%d" % port
    credentials.write_client_files(directory, port, tokens, args.sa_namespace, tokens["control"])

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    controllers.start()
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    serving.start()
    credentials.write_file(os.path.join(directory, "ready"), "%d\n" % port)
    log("ready on https://127.0.0.1:%d" % port)

    while not stop.wait(0.5):
        pass
    log("SIGTERM: shutting down")
    app.stopping.set()
    server.shutdown()
    server.server_close()
    controllers.stop()
    podexec.kill_all(app.processes)
    os.remove(os.path.join(directory, "ready"))
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
