# TAP helpers for bash tests. Source it: . "$(dirname "$0")/lib/tap.sh"
# Each test file prints a plan at the end (done_testing) so a test that dies early is a failure under prove.
_tap_n=0
_tap_failed=0
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RUNBOOK=${RUNBOOK:-$TOP/runbook}
PY=/usr/bin/python3   # Debian's python: it sees Debian's python3-* modules, a pyenv python does not

ok() {  # ok CONDITION-EXIT-STATUS DESCRIPTION ; use: ok $? "desc" or check "desc" cmd...
  local status=$1; shift
  _tap_n=$((_tap_n + 1))
  if [ "$status" -eq 0 ]; then echo "ok $_tap_n - $*"; else echo "not ok $_tap_n - $*"; _tap_failed=$((_tap_failed + 1)); fi
  return "$status"
}
check() {  # check DESCRIPTION COMMAND...: passes when the command exits 0
  local desc=$1; shift
  "$@" >/dev/null 2>&1; ok $? "$desc"
}
is() {  # is GOT EXPECTED DESCRIPTION
  local got=$1 want=$2; shift 2
  if [ "$got" == "$want" ]; then ok 0 "$*"; else ok 1 "$*"; echo "#   got:      '$got'"; echo "#   expected: '$want'"; fi
}
# _matches TEXT ERE: grep's line-by-line match (^ and $ anchor lines); a pattern that spans lines is
# matched against the whole text instead, since grep would take each of its lines as a pattern of its own
# and pass when any one of them matched.
_matches() {
  case $2 in
    *$'\n'*) [[ $1 =~ $2 ]] ;;
    *) printf '%s' "$1" | grep -Eq -- "$2" ;;
  esac
}
like() {  # like TEXT EXTENDED-REGEX DESCRIPTION
  local text=$1 re=$2; shift 2
  if _matches "$text" "$re"; then ok 0 "$*"; else ok 1 "$*"; echo "#   text did not match /$re/:"; printf '%s\n' "$text" | head -n 20 | sed 's/^/#     /'; fi
}
unlike() {  # unlike TEXT EXTENDED-REGEX DESCRIPTION
  local text=$1 re=$2; shift 2
  if _matches "$text" "$re"; then ok 1 "$*"; echo "#   text matched /$re/:"; printf '%s\n' "$text" | head -n 20 | sed 's/^/#     /'; else ok 0 "$*"; fi
}
skip_all() { echo "1..0 # SKIP $*"; exit 0; }
diag() { printf '%s\n' "$*" | sed 's/^/# /'; }
# Every test ends by checking that no secret it knows of reached what runbook wrote: its stdout and
# stderr (run_rb keeps them), plans, journals, backup manifests and *.out files under SCRATCH.
_tap_secrets() {
  local v
  for v in "${JUPYTERHUB_API_TOKEN:-}" "${PG_HUB_PASSWORD:-}" "${K8S_TOKEN:-}" "${K8S_READONLY_TOKEN:-}" \
           "${CONTROL_TOKEN:-}" "${TEST_SECRETS[@]}"; do
    [ ${#v} -ge 8 ] && printf '%s\n' "$v"
  done
  [ -n "${JUPYTERHUB_TOKEN_FILE:-}" ] && [ -r "$JUPYTERHUB_TOKEN_FILE" ] && head -c 200 "$JUPYTERHUB_TOKEN_FILE" && echo
}
_tap_written_by_runbook() {
  [ -f "$SCRATCH/runbook-output.log" ] && echo "$SCRATCH/runbook-output.log"
  find "$SCRATCH" -type f \( -name '*.journal' -o -name '*.out' -o -name 'manifest.json' -o -name '*.json' \) \
    ! -path '*/k8s/*' ! -path '*/hub/*' ! -path '*/pg/*' 2>/dev/null \
    | while read -r f; do
        case "$f" in *.json) grep -q '"format": "runbook-plan/1"\|"database":' "$f" 2>/dev/null && echo "$f";; *) echo "$f";; esac
      done
}
no_secrets_leaked() {
  local secrets files leaked=""
  secrets=$(_tap_secrets | sort -u | grep -v '^$')
  [ -z "$secrets" ] && return 0
  files=$(_tap_written_by_runbook)
  [ -z "$files" ] && return 0
  leaked=$(printf '%s\n' "$files" | xargs grep -l -F -f <(printf '%s\n' "$secrets") 2>/dev/null)
  ok $([ -z "$leaked" ]; echo $?) "no secret in any output, plan, journal or manifest of this test"
  [ -n "$leaked" ] && printf '#   in: %s\n' $leaked
}
TEST_SECRETS=()
done_testing() { no_secrets_leaked; echo "1..$_tap_n"; [ "$_tap_failed" -eq 0 ]; }

# run_rb VAR ARGS...: runs ./runbook, stores stdout in $OUT, stderr in $ERR, exit status in $RC
run_rb() {
  local o e
  o=$(mktemp); e=$(mktemp)
  "$RUNBOOK" "$@" >"$o" 2>"$e" </dev/null; RC=$?
  OUT=$(cat "$o"); ERR=$(cat "$e")
  cat "$o" "$e" >> "$SCRATCH/runbook-output.log"; rm -f "$o" "$e"
}

# A scratch directory removed when the test exits, however it exits.
# Tests register their own cleanup with on_exit "command".
_tap_cleanups=()
on_exit() { _tap_cleanups+=("$*"); }
_tap_run_cleanups() { local i; for ((i=${#_tap_cleanups[@]}-1; i>=0; i--)); do eval "${_tap_cleanups[$i]}" >/dev/null 2>&1; done; }
# After the cleanups, no process the test started may be left (tests/lib/leftovers.py, by SCRATCH in
# its environment, command line or working directory: after RUNBOOK_LEFTOVERS_GRACE seconds (15) those
# still there are named and stopped, and the test fails). Here, not only after the suite: a leftover
# that holds the test's stdout would keep prove waiting for the end of the test's output.
_tap_no_leftovers() { "$PY" "$TOP/tests/lib/leftovers.py" --grace "${RUNBOOK_LEFTOVERS_GRACE:-15}" "$SCRATCH" || exit 1; }
trap '_tap_run_cleanups; _tap_no_leftovers' EXIT
trap 'exit 130' INT TERM
# Its name and RUNBOOK_TEST_FILE (inherited by every process the test starts) name the test, so that
# tests/lib/leftovers.py can say which test left a process behind.
export RUNBOOK_TEST_FILE=${0#"$TOP"/}
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/runbook-test.$(basename "$0" .t | tr -c 'A-Za-z0-9_\n-' _).XXXXXX")
export RUNBOOK_TEST_SCRATCH=$SCRATCH  # every process the test starts carries it: see _tap_no_leftovers
on_exit "rm -rf '$SCRATCH'"

# free_port: a free loopback TCP port (the kernel picks it)
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
