# Start and drive the fake GitLab API from bash tests. Source it after tap.sh:
#   . "$(dirname "$0")/lib/tap.sh"; . "$(dirname "$0")/lib/fake-gitlab.sh"
#   gitlab_start "$SCRATCH/gl" state.json       # waits for DIR/port, stops it at exit; exports GITLAB_URL, GITLAB_DIR
#   gitlab_control POST users '[{"username": "old0001", "last_activity_on": "-1d"}]'
#   gitlab_requests 'r["method"] == "POST"'       # requests.log lines for which the Python expression is true
# See tests/fake-gitlab/README.md for the state format and the control calls.

# gitlab_start DIR STATE [SERVER-OPTION...]
gitlab_start() {
  local dir=$1 state=$2
  shift 2
  mkdir -p "$dir"
  "$PY" "$TOP/tests/fake-gitlab/server.py" --dir "$dir" --state "$state" --die-with-parent "$@" >>"$dir/stdout.log" 2>&1 &
  local pid=$! i
  on_exit "kill $pid"
  for i in $(seq 200); do
    [ -f "$dir/port" ] && break
    kill -0 "$pid" 2>/dev/null || { sed 's/^/# /' "$dir/stdout.log" >&2; return 1; }
    sleep 0.05
  done
  [ -f "$dir/port" ] || return 1
  GITLAB_DIR=$dir
  GITLAB_URL="http://127.0.0.1:$(cat "$dir/port")"
  case "$*" in *--tls-cert*) GITLAB_URL="https://127.0.0.1:$(cat "$dir/port")";; esac
  export GITLAB_URL GITLAB_DIR
}

# gitlab_control METHOD PATH [JSON]: a control call (PATH relative to /_fake/); prints the answer.
gitlab_control() {
  curl -sS --fail-with-body -k -X "$1" -H "Authorization: Bearer $(cat "$GITLAB_DIR/control-token")" \
    -H 'Content-Type: application/json' ${3:+--data "$3"} "$GITLAB_URL/_fake/$2"
}

# gitlab_requests [PYTHON EXPRESSION over r]: the matching requests.log lines, one JSON object a line.
gitlab_requests() {
  [ -f "$GITLAB_DIR/requests.log" ] || return 0
  "$PY" - "$GITLAB_DIR/requests.log" "${1:-True}" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if eval(sys.argv[2], {}, {"r": r}):
        print(json.dumps(r, sort_keys=True))
EOF
}

# gitlab_state USERNAME FIELD: a field of a user as the fake holds it now (state, last_activity_on, ...).
gitlab_state() {
  "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(next((str(u[sys.argv[3]]) for u in d["users"] if u["username"] == sys.argv[2]), "absent"))' \
    "$GITLAB_DIR/state.json" "$1" "$2"
}
