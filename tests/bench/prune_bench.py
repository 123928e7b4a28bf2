#!/usr/bin/python3
"""Throughput with manners: how fast runbook prunes a real JupyterHub 3.0, and what the hub's users
feel meanwhile. Called by tests/bench/run.sh (make bench); prints a table and writes JSON.

  1. the hub's ceiling: back-to-back DELETEs from a tight client loop on loopback (1 and 4 clients)
  2. runbook apply of a prune plan: deletions/s at 0 ms and 20 ms added round trip, concurrency 1
     and adaptive (the default); and 8 in flight without the pacer at 20 ms
  3. a canary: GET of one active user every 100 ms, before (idle) and during each prune: p50/p95
Environment: BENCH_DELETES (default 1000 deletions per run), BENCH_RTT_MS (default 20),
BENCH_ONLY (a regular expression: only the runs whose label it matches, e.g. "adaptive" or "^20 ms",
when tuning the pacer).
"""
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PY = "/usr/bin/python3"
RUNBOOK = os.environ.get("RUNBOOK", os.path.join(TOP, "runbook"))
HUB_PY = os.path.join(TOP, "tests", "lib", "hub.py")
IDLE_SECONDS = 10  # the canary's idle baseline: 100 samples, so that its p95 is not one unlucky sample


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


class Hub:
    def __init__(self, directory):
        self.dir = directory

    def run(self, *args):
        subprocess.run([PY, HUB_PY, *args, "--dir", self.dir], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.env = dict(line.strip().split("=", 1) for line in open(os.path.join(self.dir, "env")) if "=" in line)
        self.token = open(self.env["JUPYTERHUB_TOKEN_FILE"]).read().strip()
        self.api = urllib.parse.urlparse(self.env["JUPYTERHUB_API_URL"])

    def seed_dormant(self, prefix, count):
        """count users idle for 200 days, written straight to the database (one hub restart)."""
        self.run("seed", "--via-db", "--generate", f"{prefix}:{count}:-200d")
        self.warm()

    def warm(self):
        # The first full listing after a start builds the hub's user cache: do it outside the clock.
        subprocess.run([RUNBOOK, "plan", "prune-dormant", "-q", "--output", "json"], env=self.runbook_env(),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def runbook_env(self, url=None):
        env = dict(os.environ)
        env["JUPYTERHUB_API_URL"] = url or self.env["JUPYTERHUB_API_URL"]
        env["JUPYTERHUB_API_TOKEN"] = self.token
        return env

    def connection(self):
        return http.client.HTTPConnection(self.api.hostname, self.api.port, timeout=60)

    def names(self, prefix):
        conn, names, offset = self.connection(), [], 0
        while True:
            conn.request("GET", f"/hub/api/users?offset={offset}&limit=200&name_filter={prefix}",
                         headers={"Authorization": "token " + self.token,
                                  "Accept": "application/jupyterhub-pagination+json"})
            doc = json.loads(conn.getresponse().read())
            names += [u["name"] for u in doc["items"] if u["name"].startswith(prefix)]
            if not doc["_pagination"]["next"]:
                return names
            offset = doc["_pagination"]["next"]["offset"]


def ceiling(hub, prefix, count, clients):
    """Deletions a second with `clients` tight loops, each on one keep-alive connection."""
    hub.seed_dormant(prefix, count)
    names = hub.names(prefix)
    chunks = [names[i::clients] for i in range(clients)]

    def worker(chunk):
        conn = hub.connection()
        for name in chunk:
            conn.request("DELETE", "/hub/api/users/" + urllib.parse.quote(name, safe=""),
                         headers={"Authorization": "token " + hub.token})
            conn.getresponse().read()

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(names) / (time.perf_counter() - start)


class Canary(threading.Thread):
    """GET of one active user every 100 ms, on its own connection, straight to the hub."""

    def __init__(self, hub, user):
        super().__init__(daemon=True)
        self.hub, self.user, self.samples, self.stop = hub, user, [], threading.Event()

    def run(self):
        conn = self.hub.connection()
        while not self.stop.is_set():
            t = time.perf_counter()
            conn.request("GET", "/hub/api/users/" + self.user, headers={"Authorization": "token " + self.hub.token})
            conn.getresponse().read()
            self.samples.append((t, time.perf_counter() - t))
            self.stop.wait(max(0, 0.1 - (time.perf_counter() - t)))

    def window(self, start, end):
        return [lat * 1000 for t, lat in self.samples if start <= t <= end]


def percentiles(ms):
    if not ms:
        return {"p50": None, "p95": None, "n": 0}
    ordered = sorted(ms)
    return {"p50": round(statistics.median(ordered), 1),
            "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1), "n": len(ordered)}


def start_delay_proxy(hub, rtt_ms, workdir):
    d = os.path.join(workdir, f"delay-{rtt_ms}")
    os.makedirs(d, exist_ok=True)
    proc = subprocess.Popen([PY, os.path.join(TOP, "tests", "lib", "tcpfault.py"), "--dir", d,
                             "--upstream", f"{hub.api.hostname}:{hub.api.port}", "--delay-ms", str(rtt_ms / 2)])
    for _ in range(100):
        if os.path.exists(os.path.join(d, "port")):
            break
        time.sleep(0.05)
    port = open(os.path.join(d, "port")).read().strip()
    return proc, f"http://127.0.0.1:{port}/hub/api"


def prune_run(hub, prefix, count, url, extra, workdir, label):
    hub.seed_dormant(prefix, count)
    env = hub.runbook_env(url)
    plan = os.path.join(workdir, f"plan-{prefix}.json")
    subprocess.run([RUNBOOK, "plan", "prune-dormant", "-q", "-o", plan, *extra], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    planned = len(json.load(open(plan))["actions"])
    canary = Canary(hub, "bench.active0000")
    canary.start()
    time.sleep(IDLE_SECONDS)
    start = time.perf_counter()
    done = subprocess.run([RUNBOOK, "apply", plan, "--yes", "-v", "--journal-dir", os.path.join(workdir, "journals")],
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    end = time.perf_counter()
    with open(os.path.join(workdir, f"apply-{prefix}log"), "w") as f:
        f.write(done.stderr)  # -v: the pacer's every change, for tuning
    canary.stop.set()
    canary.join()
    peaks = [int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("pacing: ")]
    result = {"label": label, "deleted": planned, "seconds": round(end - start, 2),
              "per_second": round(planned / (end - start), 1), "exit": done.returncode,
              "canary_idle": percentiles(canary.window(start - IDLE_SECONDS, start)),
              "canary_during": percentiles(canary.window(start, end)),
              "in_flight_max": max(peaks) if peaks else None, "in_flight_last": peaks[-1] if peaks else None,
              "fixed_concurrency": next((int(a.split("=")[1]) for a in extra if a.startswith("concurrency=")), None)
              if "adaptive=false" in extra else None}
    log(f"{label}: {result['per_second']}/s, canary p95 {result['canary_idle']['p95']} -> {result['canary_during']['p95']} ms")
    return result


def main():
    workdir, out_json = sys.argv[1], sys.argv[2]
    count = int(os.environ.get("BENCH_DELETES", "1000"))
    rtt = int(os.environ.get("BENCH_RTT_MS", "20"))
    hub = Hub(os.path.join(workdir, "hub"))
    log("starting a JupyterHub 3.0 for the prune benchmark")
    hub.run("start")
    hub.run("seed", "--via-db", "--generate", "bench.active:200:-1d")
    results = {"deletions_per_run": count, "rtt_ms": rtt}
    results["ceiling_1_client"] = round(ceiling(hub, "c1.", count, 1), 1)
    results["ceiling_4_clients"] = round(ceiling(hub, "c4.", count, 4), 1)
    best = max(results["ceiling_1_client"], results["ceiling_4_clients"])
    log(f"hub ceiling: {results['ceiling_1_client']}/s (1 client), {results['ceiling_4_clients']}/s (4 clients)")
    proxy, slow_url = start_delay_proxy(hub, rtt, workdir)
    try:
        runs = []
        for label, url, extra in (
                ("0 ms, concurrency 1", None, ["-p", "concurrency=1", "-p", "adaptive=false"]),
                ("0 ms, adaptive", None, []),
                (f"{rtt} ms, concurrency 1", slow_url, ["-p", "concurrency=1", "-p", "adaptive=false"]),
                (f"{rtt} ms, adaptive", slow_url, []),
                # the speed a site gets by turning the pacer off: what the default gives up for the canary
                (f"{rtt} ms, concurrency 8", slow_url, ["-p", "concurrency=8", "-p", "adaptive=false"])):
            if not re.search(os.environ.get("BENCH_ONLY", ""), label):
                continue
            prefix = "r%d." % len(runs)
            r = prune_run(hub, prefix, count, url, extra, workdir, label)
            r["ratio_to_ceiling"] = round(r["per_second"] / best, 2)
            idle, during = r["canary_idle"]["p95"], r["canary_during"]["p95"]
            r["canary_p95_ratio"] = round(during / idle, 2) if idle and during else None
            runs.append(r)
        results["runs"] = runs
    finally:
        proxy.terminate()
        hub.run("stop")
    json.dump(results, open(out_json, "w"), indent=2)


if __name__ == "__main__":
    main()
