#!/usr/bin/python3
"""Throughput with manners: how fast runbook prunes a real JupyterHub 3.0, and what the hub's users
feel meanwhile. Called by tests/bench/run.sh (make bench); prints progress and writes JSON.

  1. the hub's ceiling: back-to-back DELETEs from a tight client loop on loopback (1 and 4 clients)
  2. runbook apply of a prune plan through a proxy adding 0, 20 and 50 ms round trip (the hub's public
     URL as its users reach it): the default (adaptive) next to fixed concurrency 1, 3, 5 and 8
  3. two canaries, each a GET of one active user every 100 ms, before (idle) and during each prune:
     one through the same proxy (what a user feels) and one straight at the hub: p50/p95
Environment: BENCH_DELETES (default 1000 deletions per run), BENCH_RTTS (default "0 20 50", ms),
BENCH_FIXED (default "1 3 5 8": fixed concurrencies run next to the default), BENCH_REPEAT (default
1: the whole set again, for the spread), BENCH_ONLY (a regular expression: only the runs whose label
it matches, e.g. "default" or "^20 ms", when tuning the pacer), BENCH_IDLE_SECONDS (default 10).
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
IDLE_SECONDS = float(os.environ.get("BENCH_IDLE_SECONDS", "10"))  # the canaries' idle baseline: 100 samples,
# so that its p95 is not one unlucky sample


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
    """GET of one active user every 100 ms, on its own keep-alive connection to host:port."""

    def __init__(self, hub, user, host, port, offset=0.0):
        super().__init__(daemon=True)
        self.hub, self.user, self.host, self.port, self.offset = hub, user, host, port, offset
        self.samples, self.stop = [], threading.Event()

    def run(self):
        self.stop.wait(self.offset)  # two canaries do not arrive together
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        while not self.stop.is_set():
            t = time.perf_counter()
            try:
                conn.request("GET", "/hub/api/users/" + self.user, headers={"Authorization": "token " + self.hub.token})
                conn.getresponse().read()
                self.samples.append((t, time.perf_counter() - t))
            except (OSError, http.client.HTTPException):
                # the hub restarts between runs (seeding): a new connection, no sample
                conn.close()
                conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                self.stop.wait(0.5)
                continue
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
    """A TCP proxy adding rtt_ms round trip in front of the hub: the hub's public URL for a run."""
    d = os.path.join(workdir, f"delay-{rtt_ms}")
    os.makedirs(d, exist_ok=True)
    proc = subprocess.Popen([PY, os.path.join(TOP, "tests", "lib", "tcpfault.py"), "--dir", d,
                             "--upstream", f"{hub.api.hostname}:{hub.api.port}", "--delay-ms", str(rtt_ms / 2)])
    for _ in range(100):
        if os.path.exists(os.path.join(d, "port")):
            break
        time.sleep(0.05)
    port = int(open(os.path.join(d, "port")).read().strip())
    return proc, port


def pacing_lines(stderr):
    """(in flight, rate or None) of each `pacing:` line of apply -v."""
    out = []
    for line in stderr.splitlines():
        m = re.match(r"pacing: (\d+) in flight(?:, ([\d.]+)/s)?", line)
        if m:
            out.append((int(m.group(1)), float(m.group(2)) if m.group(2) else None))
    return out


def canary_summary(canary, start, end):
    idle = percentiles(canary.window(start - IDLE_SECONDS, start))
    during = percentiles(canary.window(start, end))
    ratio = round(during["p95"] / idle["p95"], 2) if idle["p95"] and during["p95"] else None
    return {"idle": idle, "during": during, "p95_ratio": ratio}


def prune_run(hub, prefix, count, proxy_port, extra, workdir, label):
    hub.seed_dormant(prefix, count)
    env = hub.runbook_env(f"http://127.0.0.1:{proxy_port}/hub/api")
    plan = os.path.join(workdir, f"plan-{prefix}json")
    # Most of the bench hub's users are dormant on purpose: the blast-radius cap (max_percent) is lifted.
    done = subprocess.run([RUNBOOK, "plan", "prune-dormant", "-q", "-o", plan, "-p", "max_percent=100", *extra],
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        sys.exit(f"bench: the plan for {label} failed (exit {done.returncode}): {done.stderr.strip()}")
    planned = len(json.load(open(plan))["actions"])
    user = "bench.active0000"
    through_proxy = Canary(hub, user, "127.0.0.1", proxy_port)
    direct = Canary(hub, user, hub.api.hostname, hub.api.port, offset=0.05)
    through_proxy.start()
    direct.start()
    time.sleep(IDLE_SECONDS)
    start = time.perf_counter()
    done = subprocess.run([RUNBOOK, "apply", plan, "--yes", "-v", "--journal-dir", os.path.join(workdir, "journals")],
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    end = time.perf_counter()
    with open(os.path.join(workdir, f"apply-{prefix}log"), "w") as f:
        f.write(done.stderr)  # -v: the pacer's every change, for tuning
    for c in (through_proxy, direct):
        c.stop.set()
    for c in (through_proxy, direct):
        c.join()
    pacing = pacing_lines(done.stderr)
    rates = [r for _, r in pacing if r]
    result = {"label": label, "deleted": planned, "seconds": round(end - start, 2),
              "per_second": round(planned / (end - start), 1), "exit": done.returncode,
              "canary_proxy": canary_summary(through_proxy, start, end),
              "canary_direct": canary_summary(direct, start, end),
              "in_flight_max": max(n for n, _ in pacing) if pacing else None,
              "in_flight_last": pacing[-1][0] if pacing else None,
              "rate_last": rates[-1] if rates else None}
    log(f"{label}: {result['per_second']}/s, canary p95 through the proxy "
        f"{result['canary_proxy']['idle']['p95']} -> {result['canary_proxy']['during']['p95']} ms, "
        f"direct {result['canary_direct']['idle']['p95']} -> {result['canary_direct']['during']['p95']} ms")
    return result


def configurations(rtts, fixed):
    """(label, rtt ms, extra arguments) of every run, in order."""
    for rtt in rtts:
        yield f"{rtt} ms, default", rtt, []
        for n in fixed:
            yield f"{rtt} ms, concurrency {n}", rtt, ["-p", "adaptive=false", "-p", f"concurrency={n}"]


def main():
    workdir, out_json = sys.argv[1], sys.argv[2]
    count = int(os.environ.get("BENCH_DELETES", "1000"))
    rtts = [int(x) for x in os.environ.get("BENCH_RTTS", "0 20 50").split()]
    fixed = [int(x) for x in os.environ.get("BENCH_FIXED", "1 3 5 8").split()]
    repeat = int(os.environ.get("BENCH_REPEAT", "1"))
    only = os.environ.get("BENCH_ONLY", "")
    chosen = [c for c in configurations(rtts, fixed) if re.search(only, c[0])]
    if not chosen:
        sys.exit(f"bench: BENCH_ONLY={only!r} matches none of the runs")
    hub = Hub(os.path.join(workdir, "hub"))
    log("starting a JupyterHub 3.0 for the prune benchmark")
    hub.run("start")
    hub.run("seed", "--via-db", "--generate", "bench.active:200:-1d")
    results = {"deletions_per_run": count, "rtts_ms": rtts, "repeat": repeat, "only": only or None}
    results["ceiling_1_client"] = round(ceiling(hub, "c1.", count, 1), 1)
    results["ceiling_4_clients"] = round(ceiling(hub, "c4.", count, 4), 1)
    best = max(results["ceiling_1_client"], results["ceiling_4_clients"])
    log(f"hub ceiling: {results['ceiling_1_client']}/s (1 client), {results['ceiling_4_clients']}/s (4 clients)")
    proxies = {}
    runs = []
    try:
        for rtt in sorted({c[1] for c in chosen}):
            proxies[rtt] = start_delay_proxy(hub, rtt, workdir)
        for n in range(repeat):
            for label, rtt, extra in chosen:
                prefix = "r%d." % len(runs)
                r = prune_run(hub, prefix, count, proxies[rtt][1], extra, workdir, label)
                r.update({"rtt_ms": rtt, "repeat": n, "ratio_to_ceiling": round(r["per_second"] / best, 2),
                          "fixed_concurrency": next((int(a.split("=")[1]) for a in extra
                                                     if a.startswith("concurrency=")), None)})
                runs.append(r)
        results["runs"] = runs
    finally:
        for proc, _ in proxies.values():
            proc.terminate()
            proc.wait()
        hub.run("stop")
    json.dump(results, open(out_json, "w"), indent=2)


if __name__ == "__main__":
    main()
