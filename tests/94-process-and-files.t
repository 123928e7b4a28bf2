#!/usr/bin/env bash
# Issue 16, items 8-11 and the journal half of 2: what the process does when its reader or terminal
# goes away (SIGPIPE, SIGHUP), how it creates and repairs files (no symbolic link followed, no
# directory others can write to, a torn journal cut in place on a full disk), core dumps and ptrace
# (off), and journals that contradict themselves (refused by resume).
. "$(dirname "$0")/lib/tap.sh"
. "$TOP/tests/lib/testservers.sh"
export RUNBOOK_PATH="$TOP/tests/runbooks"
export XDG_STATE_HOME="$SCRATCH/state"

# journal_story JOURNAL: "stops=N unended=M" (a stop line count; started actions without an end line)
journal_story() {
  "$PY" - "$1" <<'PYEOF'
import json, sys
started, ended, stops = set(), set(), 0
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["type"] == "start": started.add(e["id"])
    if e["type"] == "end": ended.add(e["id"])
    if e["type"] == "stop": stops += 1
print("stops=%d unended=%d" % (stops, len(started - ended)))
PYEOF
}
journal_in() { ls "$1"/*.journal 2>/dev/null | head -n 1; }
keys() { local p=$1 n=$2 v=$3 i out=""; for i in $(seq -w 1 "$n"); do out="$out${out:+,}$p$i=$v"; done; printf '%s' "$out"; }

# Keys whose DELETE takes 0.3 s ("wait"): an apply of 20 of them lasts ~6 s, one at a time.
kv_start "$(keys pa 20 wait),$(keys hu 20 wait),$(keys ed 6 1),keep=1"
SLOW="-p concurrency=1 -p adaptive=false"

# --- 8. SIGPIPE: `apply --yes | head` stops after the action in flight, journals it, says so ---
run_rb plan kv-prune -p prefix=pa $SLOW -o "$SCRATCH/pipe.json"
is "$RC" 0 "plan of 20 slow deletions"
"$RUNBOOK" apply "$SCRATCH/pipe.json" --yes --journal-dir "$SCRATCH/pj" 2>"$SCRATCH/pipe.err" | head -n 3 >/dev/null
rc=${PIPESTATUS[0]}
is "$rc" 1 "apply | head -n 3: exit 1 (not killed by SIGPIPE: 141)"
pj=$(journal_in "$SCRATCH/pj")
is "$(journal_story "$pj" 2>&1)" "stops=1 unended=0" "  the journal has a stop line and every start has its end"
like "$(grep '"type":"stop"' "$pj" 2>/dev/null)" 'interrupted by SIGPIPE' "  the stop line gives the reason"
like "$(cat "$SCRATCH/pipe.err")" "stopped: interrupted by SIGPIPE.*runbook resume" "  stderr says why it stopped and how to go on"
left=$(kv_keys | tr ' ' '\n' | grep -c '^pa')
ok $([ "$left" -ge 15 ]; echo $?) "  it stopped soon after the output closed ($left of 20 keys left)"
run_rb resume "$pj" --yes
is "$RC" 0 "  resume finishes the rest"
is "$(kv_keys | tr ' ' '\n' | grep -c '^pa')" 0 "  every key is gone"
is "$(grep -c '^DELETE /keys/pa[0-9]* 204' "$KV_DIR/requests.log")" 20 "  each deleted once"

# --- 8. SIGHUP: the same, with a message; 11. core dumps off in the running apply ---
run_rb plan kv-prune -p prefix=hu $SLOW -o "$SCRATCH/hup.json"
ulimit -S -c unlimited 2>/dev/null  # so that an apply that keeps the default would show it
"$RUNBOOK" apply "$SCRATCH/hup.json" --yes --journal-dir "$SCRATCH/hj" >"$SCRATCH/hup.out" 2>"$SCRATCH/hup.err" &
pid=$!
for i in $(seq 200); do hj=$(journal_in "$SCRATCH/hj"); [ -n "$hj" ] && grep -q '"type":"start"' "$hj" && break; sleep 0.05; done
limits=$(cat /proc/$pid/limits 2>/dev/null)
like "$limits" "Max core file size +0 +0 " "11. the running apply may write no core file (/proc/PID/limits)"
kill -HUP $pid; wait $pid; rc=$?
is "$rc" 1 "SIGHUP: exit 1 after the action in flight (not killed: 129)"
is "$(journal_story "$hj" 2>&1)" "stops=1 unended=0" "  the journal has a stop line and every start has its end"
like "$(grep '"type":"stop"' "$hj" 2>/dev/null)" 'interrupted by SIGHUP' "  the stop line gives the reason"
like "$(cat "$SCRATCH/hup.err")" "stopped: interrupted by SIGHUP.*runbook resume" "  stderr says why it stopped and how to go on"

# 11. dumpable 0: the kernel then gives /proc/PID to root, not to the process's user. Seen from a
# user other than root (as root, the check runs runbook as nobody).
AS_USER=(); ME=$(id -u)
if [ "$ME" -eq 0 ]; then AS_USER=(setpriv --reuid=65534 --regid=65534 --clear-groups --); ME=65534; fi
PUB=$(mktemp -d /tmp/runbook-94.XXXXXX); on_exit "rm -rf '$PUB'"; chmod 755 "$PUB"
sleeper="$PUB/sleep.lua"
printf 'require("runbook.util").sleep(3)\n' > "$sleeper"; chmod 644 "$sleeper"
if "${AS_USER[@]}" test -x "$RUNBOOK" -a -r "$sleeper"; then
  # owner_once_running PID [WANT]: the owner of /proc/PID/status once PID runs runbook (and, given WANT,
  # once it is WANT, for up to 2 s)
  owner_once_running() {
    local i o
    local name; name=$(basename "$RUNBOOK" | cut -c1-15)
    for i in $(seq 100); do [ "$(cat /proc/$1/comm 2>/dev/null)" = "$name" ] && break; sleep 0.05; done
    for i in $(seq 40); do
      o=$(stat -c %u /proc/$1/status 2>&1)
      [ -z "${2:-}" ] || [ "$o" = "$2" ] && break
      sleep 0.05
    done
    echo "$o"
  }
  "${AS_USER[@]}" "$RUNBOOK" exec "$sleeper" &  # setpriv execs: $! is runbook
  spid=$!
  is "$(owner_once_running $spid 0)" 0 "11. runbook is not dumpable: its /proc entries belong to root (no ptrace attach)"
  wait $spid
  RUNBOOK_ALLOW_CORE=1 "${AS_USER[@]}" "$RUNBOOK" exec "$sleeper" &
  spid=$!
  sleep 0.5
  is "$(owner_once_running $spid)" "$ME" "  RUNBOOK_ALLOW_CORE=1 leaves it dumpable"
  if [ "$(ulimit -c)" != 0 ]; then
    unlike "$(cat /proc/$spid/limits)" "Max core file size +0 +0 " "  and its core file size limit as it was"
  fi
  wait $spid
else
  ok 0 "11. dumpable # SKIP nobody cannot run $RUNBOOK"
fi

# --- 2. journals that contradict themselves are refused by resume (exit 2, naming the line) ---
deletes() { grep -c '^DELETE' "$KV_DIR/requests.log"; }
before=$(deletes)
sed '1s/"target":"hu20"/"target":"keep"/' "$hj" > "$SCRATCH/hj/edited.journal"; chmod 600 "$SCRATCH/hj/edited.journal"
run_rb resume "$SCRATCH/hj/edited.journal" --yes
is "$RC" 2 "2. a journal whose plan was edited: exit 2"
like "$ERR" "edited.journal is damaged at line 1 .*edited" "  the message names the line and says it was edited"
n=$(($(wc -l < "$hj") + 1))
cp "$hj" "$SCRATCH/hj/orphan.journal"; echo '{"type":"end","id":20,"outcome":"done"}' >> "$SCRATCH/hj/orphan.journal"
run_rb resume "$SCRATCH/hj/orphan.journal" --yes
is "$RC" 2 "2. an end line for an action that never started: exit 2"
like "$ERR" "damaged at line $n \(the end of action 20, which never started\)" "  the message names the line"
cp "$hj" "$SCRATCH/hj/outside.journal"; echo '{"type":"start","id":21}' >> "$SCRATCH/hj/outside.journal"
run_rb resume "$SCRATCH/hj/outside.journal" --yes
is "$RC" 2 "2. an action that is not in the plan: exit 2"
like "$ERR" "damaged at line $n \(action 21 is not in the journal's plan\)" "  the message names the line"
is "$(deletes)" "$before" "  none of them deleted anything"
is "$(kv_get keep | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["value"])')" 1 "  the key the edit pointed at is still there"
run_rb resume "$hj" --yes
is "$RC" 0 "the journal itself resumes"
cp "$hj" "$SCRATCH/hj/after-finish.journal"; echo '{"type":"start","id":1}' >> "$SCRATCH/hj/after-finish.journal"
n=$(wc -l < "$SCRATCH/hj/after-finish.journal")
run_rb resume "$SCRATCH/hj/after-finish.journal" --yes
is "$RC" 2 "2. a line after the finish without a resume: exit 2"
like "$ERR" "damaged at line $n \(a start line after the run's finish line\)" "  the message names the line"

# --- 9. no symbolic link followed: a link planted at the repair's temporary name, or at the journal ---
run_rb plan kv-prune -p prefix=ed -o "$SCRATCH/ed.json"
run_rb apply "$SCRATCH/ed.json" --yes --journal-dir "$SCRATCH/ej"
ej=$(journal_in "$SCRATCH/ej")
# A journal killed after action 1, torn in the middle of its next line.
"$PY" - "$ej" <<'PYEOF'
import json, sys
lines = open(sys.argv[1]).read().splitlines(True)
keep = [l for l in lines if json.loads(l)["type"] == "plan" or json.loads(l).get("id") == 1]
open(sys.argv[1], "w").write("".join(keep) + '{"type":"start","id":2,"ki')
PYEOF
printf 'precious\n' > "$SCRATCH/victim"; chmod 644 "$SCRATCH/victim"
# The repair used to write JOURNAL.tmp.PID: plant a link at that name for every PID that comes next.
"$PY" - "$ej" "$SCRATCH/victim" <<'PYEOF'
import os, sys
last = int(open("/proc/sys/kernel/ns_last_pid").read())  # links made in this one process: no PID used up
for pid in range(last + 1, last + 400):
    os.symlink(sys.argv[2], "%s.tmp.%d" % (sys.argv[1], pid))
PYEOF
cp "$ej" "$SCRATCH/torn-copy.journal"
ln -s "$ej" "$SCRATCH/ej/link.journal"
run_rb resume "$SCRATCH/ej/link.journal" --yes
is "$RC" 2 "9. resume of a symbolic link to a journal: exit 2"
like "$ERR" "is a symbolic link" "  says so"
cmp -s "$ej" "$SCRATCH/torn-copy.journal"; ok $? "  the journal it points to is untouched"
ok $([ -L "$SCRATCH/ej/link.journal" ]; echo $?) "  and the link is not replaced"
rm -f "$SCRATCH/ej/link.journal"
run_rb resume "$ej" --yes
is "$RC" 0 "resume of the torn journal, links planted at JOURNAL.tmp.PID: exit 0"
is "$(cat "$SCRATCH/victim"):$(stat -c %a "$SCRATCH/victim")" "precious:644" "  the link's target is neither overwritten nor chmodded"
ok $([ -f "$ej" ] && [ ! -L "$ej" ]; echo $?) "  the journal is still a regular file"
ok $("$PY" -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$ej" >/dev/null 2>&1; echo $?) "  made of whole JSON lines"
rm -f "$ej".tmp.*

# --- 9. directories others can write to are refused for journals and backups ---
mkdir -p "$SCRATCH/shared"; chmod 775 "$SCRATCH/shared"
kv_put ed01 1
run_rb plan kv-prune -p prefix=ed -o "$SCRATCH/gw.json"
before=$(deletes)
run_rb apply "$SCRATCH/gw.json" --yes --journal-dir "$SCRATCH/shared"
is "$RC" 1 "9. a group-writable journal directory: exit 1"
like "$ERR" "shared is writable by its group \(mode 0775\)" "  the message names the directory and its mode"
is "$(deletes)" "$before" "  and nothing was done"
mkdir -p "$SCRATCH/gwj"; cp "$SCRATCH/torn-copy.journal" "$SCRATCH/gwj/run.journal"; chmod 777 "$SCRATCH/gwj"
run_rb resume "$SCRATCH/gwj/run.journal" --yes
is "$RC" 1 "  resume of a journal in a world-writable directory: exit 1"
like "$ERR" "gwj is writable by others" "  says so"
mkdir -p "$SCRATCH/gwb"; chmod 777 "$SCRATCH/gwb"
cat > "$SCRATCH/backup-probe.lua" <<'LUAEOF'
local ok, err = require("runbook.backup").write(arg[1] .. "/backup.json", "{}")
print(tostring(ok), err)
LUAEOF
run_rb exec "$SCRATCH/backup-probe.lua" "$SCRATCH/gwb"
like "$OUT$ERR" "nil.*refusing the backup directory: .*gwb is writable by others" "  a backup in a world-writable directory: refused"

# --- 10. a torn journal is repaired on a full disk (in place, no copy) ---
if [ "$(id -u)" -ne 0 ]; then
  ok 0 "10. repair on a full disk # SKIP mounting a small tmpfs needs root"
else
  M="$SCRATCH/full"; mkdir -p "$M"
  if mount -t tmpfs -o size=256k,mode=0700 tmpfs "$M" 2>/dev/null; then
    on_exit "umount '$M'"
    # A journal whose valid part (a plan of 100 actions and their lines, ~30 KiB) is far larger than
    # the free space, killed before its finish line and torn in the middle of writing it.
    for i in $(seq -w 1 100); do kv_put "big$i" 1; done
    run_rb plan kv-prune -p prefix=big -o "$SCRATCH/big.json"
    run_rb apply "$SCRATCH/big.json" --yes --journal-dir "$M"
    bj=$(journal_in "$M")
    grep -v '"type":"finish"' "$bj" > "$SCRATCH/big.journal"
    cat "$SCRATCH/big.journal" > "$bj"
    # a torn tail of 16 KiB
    { printf '{"type":"finish","done":'; head -c 16384 /dev/zero | tr '\0' 1; } >> "$bj"
    # Full but for 8 KiB (the apply's lock file may need a page): less than half the journal.
    head -c 8192 /dev/zero > "$M/spare"
    dd if=/dev/zero of="$M/fill" bs=4k 2>/dev/null
    is "$(df --output=avail -k "$M" | tail -n 1 | tr -d ' ')" 0 "10. the filesystem is full"
    rm -f "$M/spare"
    ok $([ "$(df --output=avail -k "$M" | tail -n 1)" -le 8 ] && [ "$(stat -c %s "$SCRATCH/big.journal")" -gt 16384 ]; echo $?) \
      "  but for 8 KiB, less than the journal's valid part"
    run_rb resume "$bj" --yes
    is "$RC" 0 "  resume of a torn journal on it: exit 0"
    like "$ERR" "now records the run as finished" "  it repaired the journal and wrote its ending"
    ok $("$PY" -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$bj" >/dev/null 2>&1; echo $?) \
      "  the journal is whole JSON lines"
    is "$(head -c "$(stat -c %s "$SCRATCH/big.journal")" "$bj" | cmp - "$SCRATCH/big.journal" && echo same)" same \
      "  its valid part unchanged"
    like "$(tail -n 1 "$bj")" '"type":"finish"' "  and it records the finished run"
  else
    ok 1 "mount -t tmpfs (as root)"
  fi
fi

done_testing
