# Start/stop the fake Kubernetes API server from bash tests. Source it after tap.sh:
#   . "$(dirname "$0")/lib/tap.sh"; . "$(dirname "$0")/lib/fake-k8s.sh"
#   fake_k8s_start "$SCRATCH/k8s" seed.json      # waits for ready, sources DIR/env, stops it on exit
#   kubectl --kubeconfig "$KUBECONFIG_FILE" get pods -A
#   fake_k8s_control POST faults '{"method":"GET","path":"/pods","status":429,"count":1}'
# See tests/fake-k8s/README.md for the seed format and the control API.

FAKE_K8S_SERVER="$TOP/tests/fake-k8s/server.py"

# fake_k8s_start DIR [SEED [SERVER-OPTION...]]: start in the background, wait for DIR/ready (20 s),
# export the variables of DIR/env (K8S_PORT, K8S_SERVER, KUBECONFIG_FILE, CONTROL_TOKEN, ...).
fake_k8s_start() {
  local dir=$1 seed=${2:-}
  shift; [ $# -gt 0 ] && shift
  mkdir -p "$dir"
  local args=(--dir "$dir" --die-with-parent)
  [ -n "$seed" ] && args+=(--seed "$seed")
  "$PY" "$FAKE_K8S_SERVER" "${args[@]}" "$@" >>"$dir/stdout.log" 2>&1 &
  local pid=$! waited=0
  on_exit "fake_k8s_stop '$dir' $pid"
  while [ ! -e "$dir/ready" ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "# fake-k8s exited before it was ready:" >&2
      sed 's/^/#   /' "$dir/stdout.log" "$dir/server.log" >&2 2>/dev/null
      return 1
    fi
    if [ "$waited" -ge 200 ]; then
      echo "# fake-k8s was not ready after 20 s" >&2
      return 1
    fi
    sleep 0.1; waited=$((waited + 1))
  done
  set -a; . "$dir/env"; set +a
  FAKE_K8S_DIR=$dir
  FAKE_K8S_PID=$pid
}

# fake_k8s_stop DIR PID: SIGTERM, then SIGKILL after 5 s. Only that process, by its id.
fake_k8s_stop() {
  local pid=$2 n=0
  kill -TERM "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  return 0
}

# fake_k8s_control METHOD PATH [JSON]: call the control API (PATH relative to /_fake/), print the answer.
# Fails (non-zero) on an HTTP error.
fake_k8s_control() {
  local method=$1 path=${2#/}
  path=${path#_fake/}
  curl -sS --fail-with-body --cacert "$K8S_CA" -X "$method" \
    -H "Authorization: Bearer $CONTROL_TOKEN" -H 'Content-Type: application/json' \
    ${3:+--data "$3"} "$K8S_SERVER/_fake/$path"
}

# fake_k8s_requests [JQ-LIKE PYTHON EXPRESSION]: print requests.log entries (one JSON per line);
# with an argument, only those for which the Python expression over `r` is true, e.g.
#   fake_k8s_requests 'r.get("mutating")'
fake_k8s_requests() {
  "$PY" - "$FAKE_K8S_DIR/requests.log" "${1:-True}" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if eval(sys.argv[2], {}, {"r": r}):
        print(json.dumps(r, sort_keys=True))
EOF
}
