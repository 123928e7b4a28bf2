#!/usr/bin/env bash
# The command line as an operator meets it (issue 17): help per command, did-you-mean, -o json, exec
# options after the script, exit codes for automation (--skipped-ok, plan --detailed-exitcode), a
# saved plan applied once (stale), show PLAN.json, resume by journal name, and runbook history.
. "$(dirname "$0")/lib/tap.sh"
. "$TOP/tests/lib/testservers.sh"
export RUNBOOK_PATH="$TOP/tests/runbooks"
export XDG_STATE_HOME="$SCRATCH/state"
J="$SCRATCH/journals"
kv_start "tmp-a=1,tmp-b=2,keep=3"

# --- help: the command's own options first, then the global ones, then examples ---
run_rb apply --help
is "$RC" 0 "apply --help exits 0"
own=$(printf '%s\n' "$OUT" | grep -n -- '--skipped-ok' | head -1 | cut -d: -f1)
global=$(printf '%s\n' "$OUT" | grep -n '^Global options:' | cut -d: -f1)
verbose=$(printf '%s\n' "$OUT" | grep -n -- '-v, --verbose' | cut -d: -f1)
examples=$(printf '%s\n' "$OUT" | grep -n '^Examples:' | cut -d: -f1)
ok $([ -n "$own" ] && [ "$own" -lt "$global" ] && [ "$global" -lt "$verbose" ] && [ "$verbose" -lt "$examples" ]; echo $?) \
  "  its own options, then 'Global options:', then 'Examples:'"
like "$OUT" "runbook apply plan.json --yes --skipped-ok" "  the examples show real use"
unlike "$OUT" "--inventory" "  options of other commands are not listed"
run_rb help history
like "$OUT" "usage: runbook history \[NAME\]" "history has its help"

# --- did you mean ---
run_rb plna kv-prune
is "$RC" 2 "a misspelt command: exit 2"; like "$ERR" "unknown command 'plna' \(did you mean 'plan'\?\)" "  suggests the command"
run_rb plan kv-prnue
is "$RC" 2 "a misspelt runbook: exit 2"; like "$ERR" "unknown runbook 'kv-prnue' \(did you mean 'kv-prune'\?\)" "  suggests the runbook"
run_rb plan kv-prune -p prefx=tmp-
is "$RC" 2 "a misspelt parameter: exit 2"; like "$ERR" "unknown parameter 'prefx' for kv-prune \(did you mean 'prefix'\?\)" "  suggests the key"
run_rb plan kv-prune -p colour=blue
unlike "$ERR" "did you mean" "  nothing is suggested for a word that is not close"

# --- -o json is the kubectl habit: refused, no file named json ---
(cd "$SCRATCH" && "$RUNBOOK" plan kv-prune -o json >/dev/null 2>"$SCRATCH/o.err"); rc=$?
is "$rc" 2 "-o json: exit 2"; like "$(cat "$SCRATCH/o.err")" "use --output json .*-o ./json" "  says what was meant"
ok $([ ! -e "$SCRATCH/json" ]; echo $?) "  no file named json"
(cd "$SCRATCH" && "$RUNBOOK" plan kv-prune -o ./json >/dev/null 2>&1); rc=$?
is "$rc:$([ -s "$SCRATCH/json" ] && echo saved)" "0:saved" "-o ./json saves a plan under that name"

# --- exec: runbook's options after the script are refused, after -- they are the script's ---
echo 'print(table.concat(arg, " ")) return 0' > "$SCRATCH/args.lua"
run_rb exec "$SCRATCH/args.lua" --write
is "$RC" 2 "exec FILE --write: exit 2"; like "$ERR" "option --write comes after the script: put it before" "  says where it goes"
run_rb exec "$SCRATCH/args.lua" one -- --write -n x
is "$RC" 0 "exec FILE ARGS -- OPTIONS: exit 0"; like "$ERR" "one --write -n x" "  the script gets them"
run_rb exec "$SCRATCH/args.lua" --my-own-flag
is "$RC" 0 "an option runbook does not know is the script's"; like "$ERR" "--my-own-flag" "  passed on"

# --- plan --detailed-exitcode ---
run_rb plan kv-prune --detailed-exitcode
is "$RC" 2 "plan --detailed-exitcode with actions pending: exit 2"
run_rb plan kv-prune -p prefix=nothing- --detailed-exitcode
is "$RC" 0 "  with nothing to do: exit 0"
run_rb plan kv-prune -p prefx=1 --detailed-exitcode
is "$RC" 1 "  bad usage: exit 1 (never 2)"

# --- a saved plan is applied once ---
run_rb plan kv-prune -o "$SCRATCH/once.json"
run_rb apply "$SCRATCH/once.json" --yes --journal-dir "$J"
is "$RC" 0 "a plan applied"
run_rb apply "$SCRATCH/once.json" --yes --journal-dir "$J"
is "$RC" 2 "applied again: exit 2"
like "$ERR" "this plan was applied already \(journal $J/kv-prune-.*\.journal\): a saved plan is applied once; make a new plan" \
  "  names the journal and what to do"
is "$(kv_count '^DELETE')" 2 "  nothing sent"
run_rb apply "$SCRATCH/once.json" --yes --force --journal-dir "$J"
is "$RC" 0 "--force applies it again"; like "$ERR" "applying it again because of --force" "  with a warning"
like "$OUT" "kv-prune on 127.0.0.1:[0-9]+: 2 done" "  and carries it out"

# begun and stopped: point at resume
kv_put tmp-x slow; kv_put tmp-y slow
run_rb plan kv-prune -p prefix=tmp- -o "$SCRATCH/begun.json"
"$RUNBOOK" apply "$SCRATCH/begun.json" --yes --journal-dir "$SCRATCH/jb" >/dev/null 2>&1 &
pid=$!
for i in $(seq 600); do grep -qs '"type":"start"' "$SCRATCH"/jb/*.journal && break; sleep 0.05; done
kill -INT $pid; wait $pid
bj=$(ls "$SCRATCH"/jb/*.journal)
run_rb apply "$SCRATCH/begun.json" --yes --journal-dir "$SCRATCH/jb"
is "$RC" 2 "a plan whose apply was interrupted: exit 2"
like "$ERR" "was begun already and did not finish .*finish it with: runbook resume $bj" "  points at resume"

# --- resume by the journal's name, found in the journal directory ---
name=$(basename "$bj" .journal)
(cd "$SCRATCH" && "$RUNBOOK" resume "$name" --yes --journal-dir "$SCRATCH/jb" >"$SCRATCH/r.out" 2>&1); rc=$?
is "$rc" 0 "resume NAME (no directory, no .journal) finds the journal in the journal directory"
like "$(cat "$SCRATCH/r.out")" "Resuming kv-prune" "  and finishes it"

# --- --skipped-ok ---
kv_put tmp-k 1
run_rb plan kv-prune -p prefix=tmp-k -o "$SCRATCH/skip.json"
kv_put tmp-k 2
run_rb apply "$SCRATCH/skip.json" --yes --journal-dir "$SCRATCH/js1"
is "$RC" 4 "an action skipped because its key changed: exit 4"
kv_put tmp-l 1
run_rb plan kv-prune -p prefix=tmp-l -o "$SCRATCH/skip2.json"
kv_put tmp-l 2
run_rb apply "$SCRATCH/skip2.json" --yes --skipped-ok --journal-dir "$SCRATCH/js2"
is "$RC" 0 "  with --skipped-ok: exit 0"; like "$OUT" "1 skipped" "  the skip is still reported"
kv_put tmp-m fail
run_rb run kv-prune -p prefix=tmp-m --yes --skipped-ok --journal-dir "$SCRATCH/js3"
is "$RC" 1 "  a failure is still exit 1"

# --- show PLAN.json ---
run_rb plan kv-prune -p prefix=keep -o "$SCRATCH/show.json"
run_rb show "$SCRATCH/show.json"
is "$RC" 0 "show PLAN.json exits 0"
like "$OUT" "Plan: kv-prune on 127.0.0.1:" "  renders the plan as apply shows it"
like "$OUT" "kv.delete \(1\)" "  with its actions"
run_rb show "$SCRATCH/show.json" --output json
is "$OUT" "$(cat "$SCRATCH/show.json")" "  --output json prints the file itself"
sed 's/"prefix": "keep"/"prefix": "kee"/' "$SCRATCH/show.json" > "$SCRATCH/edited.json"
run_rb show "$SCRATCH/edited.json"
is "$RC" 2 "  an edited plan: exit 2"; like "$ERR" "checksum does not match" "  refused as apply would"

# --- history ---
run_rb history --journal-dir "$J"
is "$RC" 0 "history exits 0"
is "$(printf '%s\n' "$OUT" | grep -c 'kv-prune ')" 2 "  one line per run (2 applies of once.json)"
like "$OUT" "finished" "  with its state"
run_rb history tmp-a --journal-dir "$J"
like "$OUT" "kv.delete tmp-a +done" "history NAME: what was done to it"
is "$(printf '%s\n' "$OUT" | grep 'kv.delete tmp-a' | awk '{print $NF}' | sort -u | wc -l)" 2 "  in both runs, each with its journal"
like "$OUT" "2 actions;" "  and how many"
run_rb history tmp-a --journal-dir "$J" --output json
is "$(printf '%s' "$OUT" | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(len(d), d[0]["outcome"], d[0]["reason"], d[0]["journal"].endswith(".journal"))')" \
   "2 done has the prefix tmp- True" "  --output json: each action with its outcome, reason and journal"
if "$PY" -c 'import jsonschema' 2>/dev/null; then
  check_schema() { "$PY" -c 'import json,sys,jsonschema; jsonschema.validate(json.loads(sys.stdin.read()), json.load(open(sys.argv[1]))); print("valid")' "$1"; }
  is "$(printf '%s' "$OUT" | check_schema "$TOP/doc/schema/history-target.json" 2>&1 | tail -1)" valid "  matches doc/schema/history-target.json"
  run_rb history --journal-dir "$J" --output json
  is "$(printf '%s' "$OUT" | check_schema "$TOP/doc/schema/history.json" 2>&1 | tail -1)" valid "history --output json matches doc/schema/history.json"
  is "$(printf '%s' "$OUT" | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(len(d), d[0]["state"], d[0]["done"])')" "2 finished 2" "  two finished runs of 2"
fi
run_rb history nobody --journal-dir "$J"
like "$OUT" "Nothing in the journals touched nobody" "  a name never touched says so"
run_rb history --journal-dir "$SCRATCH/jb"
like "$OUT" "finished" "  a resumed run reads as finished"

done_testing
