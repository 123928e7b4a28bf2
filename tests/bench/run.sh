#!/usr/bin/env bash
# `make bench`: measurements too long for the test suite, printed as a table and saved as JSON.
#   BENCH_USERS (default 10000): users on the bench hub for the planning measurement, half dormant.
#   BENCH_DELETES (default 1000), BENCH_RTT_MS (default 20): see tests/bench/prune_bench.py.
# Measures: `plan` over every user (wall time, peak RSS, client CPU per user); start-up time of
# `runbook version` and `runbook list`; then prune throughput against the hub's own ceiling, with a
# canary measuring what the hub's users feel (prune_bench.py).
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

"$PY" - "$OUT_JSON" "$WORK/prune.json" <<PYEOF
import json, sys
r = {"users": $N, "planned_deletions": $actions,
     "plan": {"wall_s": $plan_wall, "peak_rss_mib": round($plan_rss / 1024, 1), "cpu_s": $plan_cpu,
              "cpu_us_per_user": round($plan_cpu / $N * 1e6, 1)},
     "startup_ms": {"version": $version_ms, "list": $list_ms}}
r["prune"] = json.load(open(sys.argv[2]))
json.dump(r, open(sys.argv[1], "w"), indent=2)
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
print(f"hub ceiling, back-to-back DELETEs: {p['ceiling_1_client']}/s (1 client), {p['ceiling_4_clients']}/s (4 clients)")
print(f"{'prune of ' + str(p['deletions_per_run']) + ' users':<26} {'deleted/s':>10} {'/ceiling':>9} {'in flight':>10} {'canary p50':>11} {'p95 idle':>9} {'p95 during':>11} {'p95 ratio':>10}")
for run in p["runs"]:
    flight = f"{run['in_flight_last']}/{run['in_flight_max']}" if run["in_flight_max"] else str(run.get("fixed_concurrency"))
    print(f"{run['label']:<26} {run['per_second']:>10} {run['ratio_to_ceiling']:>9} {flight:>10} "
          f"{str(run['canary_during']['p50']):>11} {str(run['canary_idle']['p95']):>9} {str(run['canary_during']['p95']):>11} {str(run['canary_p95_ratio']):>10}")
print("(in flight: last/max of the adaptive pacer; canary: GET of an active user every 100 ms, in ms)")
print(f"saved to {sys.argv[1]}")
PYEOF
