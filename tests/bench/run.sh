#!/usr/bin/env bash
# `make bench`: measurements too long for the test suite, printed as a table and saved as JSON.
#   BENCH_USERS (default 10000): users on the bench hub for the planning measurement, half dormant.
#   BENCH_DELETES (default 1000), BENCH_RTTS (default "0 20 50"), BENCH_FIXED (default "1 3 5 8"),
#   BENCH_REPEAT (default 1), BENCH_ONLY (regular expression on the runs' labels): see prune_bench.py.
# Measures: `plan` over every user (wall time, peak RSS, client CPU per user); start-up time of
# `runbook version` and `runbook list`; then prune throughput against the hub's own ceiling, with two
# canaries measuring what the hub's users feel, through the proxy and straight at the hub (prune_bench.py).
# The date and the machine go into the JSON with the numbers.
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
PY=/usr/bin/python3
RUNBOOK="$TOP/runbook"
N=${BENCH_USERS:-10000}
OUT_JSON=${BENCH_JSON:-$TOP/build/bench.json}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/runbook-bench.XXXXXX")
HUB="$WORK/hub"
cleanup() { "$PY" "$TOP/tests/lib/hub.py" stop --dir "$HUB" >/dev/null 2>&1; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "bench: starting a JupyterHub 3.0 with $N users (half dormant)..." >&2
"$PY" "$TOP/tests/lib/hub.py" start --dir "$HUB" >"$WORK/start.log" 2>&1 || { tail "$WORK/start.log"; exit 1; }
half=$((N / 2))
"$PY" "$TOP/tests/lib/hub.py" seed --dir "$HUB" --via-db \
  --generate "dormant:$half:-200d" --generate "active:$((N - half)):-1d" >"$WORK/seed.log" 2>&1 || { tail "$WORK/seed.log"; exit 1; }
set -a; . "$HUB/env"; set +a
JUPYTERHUB_API_TOKEN=$(cat "$JUPYTERHUB_TOKEN_FILE"); export JUPYTERHUB_API_TOKEN

# The hub builds a wrapper per user on its first full listing after a start: warm it up once, so the
# measurement is of the client, not of the hub's cache.
"$RUNBOOK" plan prune-dormant -q --output json >/dev/null 2>&1

measure() {  # measure NAME CMD...: wall seconds, max RSS KiB, user+sys CPU seconds -> globals
  local log="$WORK/$1.time"; shift
  /usr/bin/time -f '%e %M %U %S' -o "$log" "$@" >/dev/null 2>"$WORK/err" || { echo "bench: $* failed:" >&2; tail -n 5 "$WORK/err" >&2; }
  read -r WALL RSS USER SYS < "$log"
  CPU=$(echo "$USER + $SYS" | bc -l 2>/dev/null || "$PY" -c "print($USER + $SYS)")
}
measure plan "$RUNBOOK" plan prune-dormant -q -o "$WORK/plan.json"
plan_wall=$WALL plan_rss=$RSS plan_cpu=$CPU
actions=$("$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["actions"]))' "$WORK/plan.json")
startup() {  # median of 21 runs, in milliseconds
  "$PY" - "$@" <<'PYEOF'
import subprocess, sys, time
runs = []
for _ in range(21):
    t = time.perf_counter(); subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); runs.append(time.perf_counter() - t)
print("%.1f" % (sorted(runs)[10] * 1000))
PYEOF
}
version_ms=$(startup "$RUNBOOK" version)
list_ms=$(startup "$RUNBOOK" list)

"$PY" "$TOP/tests/lib/hub.py" stop --dir "$HUB" >/dev/null 2>&1  # one hub at a time: the numbers are the hub's
mkdir -p "$WORK/prune"
"$PY" "$TOP/tests/bench/prune_bench.py" "$WORK/prune" "$WORK/prune.json" || exit 1

machine="$(uname -srm), $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
"$PY" - "$OUT_JSON" "$WORK/prune.json" "$(date -u +%Y-%m-%dT%H:%MZ)" "$machine" <<PYEOF
import json, sys
r = {"date": sys.argv[3], "machine": sys.argv[4], "users": $N, "planned_deletions": $actions,
     "plan": {"wall_s": $plan_wall, "peak_rss_mib": round($plan_rss / 1024, 1), "cpu_s": $plan_cpu,
              "cpu_us_per_user": round($plan_cpu / $N * 1e6, 1)},
     "startup_ms": {"version": $version_ms, "list": $list_ms}}
r["prune"] = json.load(open(sys.argv[2]))
json.dump(r, open(sys.argv[1], "w"), indent=2)
print(f"{r['date']}, {r['machine']}")
print(f"{'measurement':<44} {'value':>12}")
print(f"{'users on the hub':<44} {r['users']:>12}")
print(f"{'plan: wall time (s)':<44} {r['plan']['wall_s']:>12}")
print(f"{'plan: peak RSS (MiB, target < 30)':<44} {r['plan']['peak_rss_mib']:>12}")
print(f"{'plan: client CPU (s)':<44} {r['plan']['cpu_s']:>12.2f}")
print(f"{'plan: client CPU per user (us)':<44} {r['plan']['cpu_us_per_user']:>12}")
print(f"{'runbook version start (ms, target < 10)':<44} {r['startup_ms']['version']:>12}")
print(f"{'runbook list start (ms, target < 10)':<44} {r['startup_ms']['list']:>12}")
p = r["prune"]
print()
print(f"hub ceiling, back-to-back DELETEs on loopback: {p['ceiling_1_client']}/s (1 client), "
      f"{p['ceiling_4_clients']}/s (4 clients)")
# One row a configuration; with BENCH_REPEAT, each column lists the repeats' values.
rows = {}
for run in p["runs"]:
    rows.setdefault(run["label"], []).append(run)
def col(runs, f):
    return ", ".join("-" if f(x) is None else str(f(x)) for x in runs)
def ratio(v):
    return None if v is None else f"{v}x"
def flight(x):
    if x["fixed_concurrency"]:
        return x["fixed_concurrency"]
    return f"{x['in_flight_last']}/{x['in_flight_max']}" if x["in_flight_max"] else None
head = ["prune of %d users" % p["deletions_per_run"], "deleted/s", "/ceiling", "in flight",
        "canary p95 idle ms", "during/idle", "direct: idle ms", "during/idle"]
table = [head]
for label, runs in rows.items():
    table.append([label, col(runs, lambda x: x["per_second"]), col(runs, lambda x: x["ratio_to_ceiling"]),
                  col(runs, flight),
                  col(runs, lambda x: x["canary_proxy"]["idle"]["p95"]),
                  col(runs, lambda x: ratio(x["canary_proxy"]["p95_ratio"])),
                  col(runs, lambda x: x["canary_direct"]["idle"]["p95"]),
                  col(runs, lambda x: ratio(x["canary_direct"]["p95_ratio"]))])
widths = [max(len(row[i]) for row in table) for i in range(len(head))]
for row in table:
    print("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)))
print("(in flight: last/max of the default's pacer; canaries: GET of an active user every 100 ms, through the")
print(" run's proxy as the hub's users reach it, and straight at the hub; p95 during the apply over p95 idle)")
print(f"saved to {sys.argv[1]}")
PYEOF
