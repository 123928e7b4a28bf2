# The TCP fault proxy (tests/lib/tcpfault.py) in front of any server. Source after tap.sh.
#   tcpfault DIR UPSTREAM_PORT   start a proxy keeping its state in DIR; sets TCPFAULT_PORT (stopped at exit).
#                                Call it in the test's own shell, not in $(...): a subshell's on_exit is lost,
#                                and the proxy would outlive the suite.
#   fault DIR JSON               the faults for its next connections (atomic; see tcpfault.py)
#   nofault DIR                  no faults from the next connection on
tcpfault() {
  mkdir -p "$1"
  "$PY" "$TOP/tests/lib/tcpfault.py" --dir "$1" --upstream "127.0.0.1:$2" >>"$1/log" 2>&1 &
  on_exit "kill $!"
  local n=0
  while [ ! -e "$1/port" ] && [ $n -lt 100 ]; do sleep 0.05; n=$((n + 1)); done
  TCPFAULT_PORT=$(cat "$1/port")
}
fault() { printf '%s\n' "$2" >"$1/faults.json.tmp" && mv "$1/faults.json.tmp" "$1/faults.json"; }
nofault() { rm -f "$1/faults.json"; }
