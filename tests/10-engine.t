#!/usr/bin/env bash
# The engine end to end with a test runbook against a local HTTP server: list, show, plan, apply,
# run, resume, every exit status of the contract, and every kind of bad input.
. "$(dirname "$0")/lib/tap.sh"
. "$TOP/tests/lib/testservers.sh"
export RUNBOOK_PATH="$TOP/tests/runbooks"
export XDG_STATE_HOME="$SCRATCH/state"
J="$SCRATCH/journals"

kv_start "tmp-a=1,tmp-b=2,keep=3,tmp-c=4"

# --- list, show, version, help ---
run_rb list
is "$RC" 0 "list exits 0"
like "$OUT" "kv-prune +Delete the keys" "list shows a site runbook with its summary"
like "$OUT" "kv-broken-syntax +cannot be loaded: .*kv-broken-syntax.lua:3:" "list names a broken runbook's file and line"
run_rb show kv-prune
is "$RC" 0 "show exits 0"
like "$OUT" "max_actions +integer +0" "show lists parameters with type and default"
like "$OUT" "exclude \(function\)" "show lists the policy keys"
run_rb show kv-prune --output json
like "$OUT" '"params":\[' "show --output json is JSON"
run_rb version
like "$OUT" "^runbook [0-9]+\.[0-9]+" "version names runbook"
like "$OUT" "libcurl +7" "version names libcurl"
run_rb --help
is "$RC" 0 "--help exits 0"
like "$OUT" "resume +finish an interrupted apply" "--help lists the commands"
run_rb plan --help
like "$OUT" "usage: runbook plan NAME" "COMMAND --help gives its usage"

# --- bad usage: exit 2 with a message naming the problem ---
run_rb frobnicate
is "$RC" 2 "unknown command: exit 2"; like "$ERR" "unknown command 'frobnicate'" "  names the command"
run_rb plan no-such-runbook
is "$RC" 2 "unknown runbook: exit 2"; like "$ERR" "unknown runbook 'no-such-runbook'" "  names the runbook"
run_rb plan kv-prune -p colour=blue
is "$RC" 2 "unknown -p key: exit 2"; like "$ERR" "unknown parameter 'colour' for kv-prune; it takes: url, prefix" "  names the key and lists the known ones"
run_rb plan kv-prune -p max_actions=many
is "$RC" 2 "wrong type: exit 2"; like "$ERR" "parameter 'max_actions' must be a whole number, got 'many'" "  names the parameter and the value"
run_rb plan kv-prune -p dry_flag=perhaps
is "$RC" 2 "bad boolean: exit 2"
run_rb plan kv-prune -p prefix=
is "$RC" 2 "a value the runbook's check refuses: exit 2"; like "$ERR" "parameter 'prefix' must not be empty" "  with the runbook's reason"
run_rb plan kv-prune --frobnicate
is "$RC" 2 "unknown option: exit 2"
run_rb list --yes
is "$RC" 2 "an option that does not apply: exit 2"; like "$ERR" "option --yes does not apply to .runbook list." "  says so"
run_rb plan kv-broken-syntax
is "$RC" 2 "runbook with a syntax error: exit 2"; like "$ERR" "kv-broken-syntax.lua:3: unexpected symbol" "  file:line and the message"
KV_URL= run_rb plan kv-prune
is "$RC" 2 "missing required parameter: exit 2"; like "$ERR" "parameter 'url' is required: pass -p url=... or set KV_URL" "  says how to give it"

# --- plan: read-only, saved 0600 with a checksum ---
before=$(kv_count "^(DELETE|PUT|POST)")
run_rb plan kv-prune -o "$SCRATCH/plan.json"
is "$RC" 0 "plan exits 0"
like "$OUT" "tmp-a +has the prefix tmp-" "plan lists each action with its reason"
like "$OUT" "outside the prefix \(1\)" "plan groups what it leaves alone by reason"
is "$(stat -c %a "$SCRATCH/plan.json")" 600 "plan file is mode 0600"
like "$(cat "$SCRATCH/plan.json")" '"checksum": "sha256:[0-9a-f]{64}"' "plan file carries a checksum"
like "$(cat "$SCRATCH/plan.json")" '"runbook_sha256": "[0-9a-f]{64}"' "plan file carries the runbook's hash"
is "$(kv_count "^(DELETE|PUT|POST)")" "$before" "plan sent no mutating request"
run_rb plan kv-prune --output json
is "$RC" 0 "plan --output json exits 0"
is "$(printf '%s' "$OUT" | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(d["runbook"], len(d["actions"]), len(d["skipped"]), d["actions"][0]["kind"])')" \
   "kv-prune 3 1 kv.delete" "plan JSON has runbook, actions and skipped"

# --- a runbook that tries to change things while planning is refused; the server sees nothing ---
before=$(kv_count "^(DELETE|PUT|POST)")
run_rb plan kv-sneaky
is "$RC" 1 "mutation during planning: exit 1"
like "$ERR" "tried to change something while planning" "  the message says what happened"
is "$(kv_count "^(DELETE|PUT|POST)")" "$before" "  the server saw no mutating request"
is "$(kv_keys)" "keep tmp-a tmp-b tmp-c" "  nothing changed"

# --- a runbook that fails at run time: its traceback ---
run_rb plan kv-crash
is "$RC" 1 "runbook error while planning: exit 1"
like "$ERR" "kv-crash.lua:5: attempt to index a nil value" "  names file and line"
like "$ERR" "stack traceback:" "  with a traceback"
run_rb plan kv-crash -p how=message
is "$RC" 1 "a message raised without a position (the outside world, from an iterator): exit 1"
like "$ERR" "runbook kv-crash failed while planning: kv 127.0.0.1: GET /keys: HTTP 503: try again later" "  the message"
unlike "$ERR" "stack traceback" "  and no traceback: it is not a bug"

# --- the sandbox ---
for how in io execute host loadfile debug global; do
  run_rb plan kv-escape -p how=$how
  is "$RC" 1 "sandbox: '$how' is refused"
done
like "$ERR" "assigns the global 'undeclared_global'" "strict globals name the global"

# --- apply: confirmation ---
run_rb apply "$SCRATCH/plan.json" --journal-dir "$J"
is "$RC" 3 "apply without a terminal and without --yes: exit 3"
like "$ERR" "confirmation needs a terminal" "  says why"
is "$(kv_keys)" "keep tmp-a tmp-b tmp-c" "  nothing changed"
host=${KV_URL#http://}
out=$("$PY" "$TOP/tests/lib/pty_run.py" "wrong-name" "$RUNBOOK" apply "$SCRATCH/plan.json" --journal-dir "$J" 2>&1); rc=$?
is "$rc" 3 "typing the wrong name at the terminal: exit 3"
like "$out" "Type .*$host.* to go on" "  the prompt names the target"
is "$(kv_keys)" "keep tmp-a tmp-b tmp-c" "  nothing changed"

# --- plan files that must be refused (exit 2) ---
head -c 300 "$SCRATCH/plan.json" > "$SCRATCH/truncated.json"
run_rb apply "$SCRATCH/truncated.json" --yes --journal-dir "$J"
is "$RC" 2 "truncated plan: exit 2"; like "$ERR" "truncated" "  says it is truncated"
sed 's/"tmp-b"/"keep"/' "$SCRATCH/plan.json" > "$SCRATCH/edited.json"
run_rb apply "$SCRATCH/edited.json" --yes --journal-dir "$J"
is "$RC" 2 "edited plan: exit 2"; like "$ERR" "edited or damaged" "  says it was edited"
echo '{"hello": "world"}' > "$SCRATCH/notaplan.json"
run_rb apply "$SCRATCH/notaplan.json" --yes --journal-dir "$J"
is "$RC" 2 "a JSON file that is not a plan: exit 2"
run_rb apply "$SCRATCH/plan.json" --yes --journal-dir "$J" -p url=http://127.0.0.1:1
is "$RC" 2 "plan for another target: exit 2"; like "$ERR" "the plan is for url=" "  says which target the plan is for"
mkdir -p "$SCRATCH/site"; cp "$TOP/tests/runbooks/kv-prune.lua" "$SCRATCH/site/kv-stale.lua"
run_rb plan "$SCRATCH/site/kv-stale.lua" -o "$SCRATCH/stale.json"
echo "-- edited after the plan" >> "$SCRATCH/site/kv-stale.lua"
run_rb apply "$SCRATCH/stale.json" --yes --journal-dir "$J"
is "$RC" 2 "runbook changed since the plan: exit 2"; like "$ERR" "changed since this plan was made" "  says so"
"$PY" - "$SCRATCH/plan.json" "$SCRATCH/old.json" <<'PYEOF'
import json, sys, hashlib, re
text = open(sys.argv[1]).read()
doc = json.loads(text)
# an old plan, re-signed the way runbook signs, to test only the age check
text = text.replace('"created_unix": %d' % doc["created_unix"], '"created_unix": %d' % (doc["created_unix"] - 3 * 86400))
zero = re.sub(r'\n  "checksum": "sha256:[0-9a-f]+"', '\n  "checksum": "sha256:' + "0" * 64 + '"', text)
text = zero.replace("0" * 64, hashlib.sha256(zero.encode()).hexdigest(), 1)
open(sys.argv[2], "w").write(text)
PYEOF
run_rb apply "$SCRATCH/old.json" --yes --journal-dir "$J"
is "$RC" 2 "plan older than --max-age: exit 2"; like "$ERR" "3 days old" "  says how old"
is "$(kv_keys)" "keep tmp-a tmp-b tmp-c" "no refused plan changed anything"

# --- run --dry-run ---
before=$(kv_count "^(DELETE|PUT|POST)")
run_rb run kv-prune --dry-run
is "$RC" 0 "run --dry-run exits 0"; like "$ERR" "Dry run: nothing was changed" "  says nothing changed"
is "$(kv_count "^(DELETE|PUT|POST)")" "$before" "  no mutating request"

# --- drift: a key changes between plan and apply -> skipped, exit 4 ---
kv_put tmp-b changed
run_rb apply "$SCRATCH/plan.json" --yes --journal-dir "$J"
is "$RC" 4 "apply with a changed key: exit 4"
like "$OUT" "tmp-b: changed since the plan \(version 2, planned 1\)" "  reports the skipped key with its reason"
is "$(kv_keys)" "keep tmp-b" "  deleted the others, kept the changed one"
journal=$(ls -t "$J"/kv-prune-*.journal | head -n 1)
is "$(stat -c %a "$journal")" 600 "journal is mode 0600"
is "$(grep -c '"type":"start"' "$journal")" 3 "journal has a start line per action"
like "$(cat "$journal")" '"outcome":"skipped"' "journal records the skip"

# --- exit 0: everything done; a failing action does not stop the others (on_failure=continue) ---
kv_put tmp-d 1; kv_put tmp-e fail; kv_put tmp-f 1
run_rb run kv-prune --yes --journal-dir "$J"
is "$RC" 1 "a failed action: exit 1"
like "$OUT" "FAILED +kv.delete tmp-e: HTTP 500: cannot delete this key" "  the server's message is shown"
is "$(kv_keys)" "keep tmp-e" "  the other deletions went on"
kv_put tmp-g 1
run_rb run kv-prune --yes --journal-dir "$J" -p prefix=tmp-g
is "$RC" 0 "all actions done: exit 0"
run_rb run kv-prune --yes --journal-dir "$J" -p prefix=nothing-
is "$RC" 0 "nothing to do: exit 0"

# --- policy files ---
cat > "$SCRATCH/policy.lua" <<'LUA'
prefix = "p-"
protected = { "p-keep" }
exclude = function(name, entry) return entry.value == "precious" end
LUA
kv_put p-1 x; kv_put p-keep x; kv_put p-2 precious
run_rb plan kv-prune --policy "$SCRATCH/policy.lua" --output json
is "$RC" 0 "plan with a policy exits 0"
is "$(printf '%s' "$OUT" | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print([a["target"] for a in d["actions"]], sorted((s["target"],s["reason"]) for s in d["skipped"] if s["target"].startswith("p-")), d["param_sources"]["prefix"])')" \
   "['p-1'] [('p-2', 'excluded by policy'), ('p-keep', 'protected by policy')] policy" "policy sets a parameter, protects and excludes"
run_rb plan kv-prune --policy "$SCRATCH/policy.lua" -p prefix=tmp- --output json
like "$OUT" '"prefix": "tmp-"' "the command line wins over the policy"
echo 'local f = io.open("/etc/passwd")' > "$SCRATCH/io.lua"
run_rb plan kv-prune --policy "$SCRATCH/io.lua"
is "$RC" 2 "policy using io: exit 2"; like "$ERR" "cannot use 'io'" "  says io is not available"
echo 'os.execute("touch /tmp/pwned")' > "$SCRATCH/os.lua"
run_rb plan kv-prune --policy "$SCRATCH/os.lua"
is "$RC" 2 "policy using os.execute: exit 2"; like "$ERR" "os.execute is not available to policy files" "  says so"
echo 'dayz = 3' > "$SCRATCH/typo.lua"
run_rb plan kv-prune --policy "$SCRATCH/typo.lua"
is "$RC" 2 "policy setting an unknown key: exit 2"; like "$ERR" "sets 'dayz', which runbook kv-prune does not read; it reads: " "  names the key and what is read"
echo 'max_actions = "lots"' > "$SCRATCH/type.lua"
run_rb plan kv-prune --policy "$SCRATCH/type.lua"
is "$RC" 2 "policy with a wrong type: exit 2"
echo 'while true do end' > "$SCRATCH/loop.lua"
run_rb plan kv-prune --policy "$SCRATCH/loop.lua"
is "$RC" 2 "policy that loops forever while loading: exit 2"; like "$ERR" "instruction budget" "  stopped by the instruction budget"
echo 'exclude = function() while true do end end' > "$SCRATCH/loopfn.lua"
run_rb plan kv-prune --policy "$SCRATCH/loopfn.lua"
is "$RC" 2 "policy function that loops forever: exit 2"; like "$ERR" "policy function 'exclude'.*instruction budget" "  names the function"
echo 'prefix = ' > "$SCRATCH/syntax.lua"
run_rb plan kv-prune --policy "$SCRATCH/syntax.lua"
is "$RC" 2 "policy with a syntax error: exit 2"; like "$ERR" "syntax.lua:[0-9]+:" "  file:line"
run_rb plan kv-prune --policy "$SCRATCH/policy.lua" -o "$SCRATCH/ppolicy.json"
echo 'protected = {}' >> "$SCRATCH/policy.lua"
run_rb apply "$SCRATCH/ppolicy.json" --yes --journal-dir "$J"
is "$RC" 2 "policy changed since the plan: exit 2"; like "$ERR" "changed since the plan was made" "  says so"

# --- concurrency: several deletions in flight give the same result ---
for k in c1 c2 c3 c4 c5 c6 c7 c8; do kv_put "tmp-$k" 1; done
run_rb run kv-prune --yes --journal-dir "$J" -p concurrency=4 -p prefix=tmp-c
is "$RC" 0 "concurrent apply exits 0"
is "$(kv_keys | tr ' ' '\n' | grep -c '^tmp-c')" 0 "  deleted every key"
is "$(kv_count "^DELETE /keys/tmp-c[0-9] ")" 8 "  each exactly once"

# The deletions really overlap, counted by the server rather than timed (a loaded machine cannot
# change a count): each of the 8 waits there until 4 are in progress together ("group:4", up to 5 s);
# a deletion that found no group of 4 counts in "apart". One at a time, all 8 would be apart.
kv_stat() { curl -s "$KV_URL/stats${2:+?$2}" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
kv_peak() { kv_stat peak reset=1; }
for k in w1 w2 w3 w4 w5 w6 w7 w8; do kv_put "tmp-$k" group:4; done
kv_peak >/dev/null
run_rb run kv-prune --yes --journal-dir "$J" -p concurrency=4 -p adaptive=false -p prefix=tmp-w
is "$RC" 0 "4 in flight, fixed: exits 0"
is "$(kv_stat apart)" 0 "  each of the 8 deletions was one of 4 in progress together"
is "$(kv_peak)" 4 "  and never more than 4"
# Adaptive against a server that serves one deletion at a time, 50 ms each: more in flight only
# queue there (in front of the server's other users), so the pacer stays near 1-2 of the 8 allowed.
# Counted by the server (peak), not timed. Load on the machine adds latency to every request alike,
# which reads as less queueing: 2 at most normally, 3 seen with 6 busy loops on 2 cores, so the bound
# is half the 8 allowed; a pacer blind to latency goes to 8, one that never decreases never shows 1.
for i in $(seq 1 24); do kv_put "tmp-q$i" serial; done
kv_peak >/dev/null
run_rb run kv-prune --yes --journal-dir "$J" -p concurrency=8 -p prefix=tmp-q -v
is "$RC" 0 "adaptive, concurrency 8, a server that queues: exits 0"
is "$(kv_keys | tr ' ' '\n' | grep -c '^tmp-q')" 0 "  deleted every key"
peak=$(kv_peak)
ok $([ "$peak" -le 4 ]; echo $?) "  at most 4 deletions at once (saw $peak), not 8"
like "$ERR" "pacing: 1 in flight" "  and -v shows it backing off"

# --- resume after SIGKILL: every action exactly once ---
# Killed while tmp-r2's deletion is held at the server (it waits there until released): tmp-r1 is
# deleted, tmp-r2..r4 remain, whatever the load on the machine. Released after the kill, the server
# finishes tmp-r2's deletion as a real one would; resume finds it gone and deletes the other two.
kv_put tmp-r1 1; kv_put tmp-r2 hold; kv_put tmp-r3 1; kv_put tmp-r4 1
run_rb plan kv-prune -p prefix=tmp-r -o "$SCRATCH/resume.json"
"$RUNBOOK" apply "$SCRATCH/resume.json" --yes --journal-dir "$SCRATCH/rj" >/dev/null 2>&1 &
pid=$!
for i in $(seq 600); do [ "$(kv_stat held)" -ge 1 ] || ! kill -0 $pid 2>/dev/null && break; sleep 0.1; done
kill -9 $pid; wait $pid 2>/dev/null
rj=$(ls "$SCRATCH"/rj/*.journal)
cp "$rj" "$SCRATCH/rj-at-kill.journal"
is "$(kv_keys | tr ' ' '\n' | grep '^tmp-r' | tr '\n' ' ')" "tmp-r2 tmp-r3 tmp-r4 " "killed mid-apply, tmp-r2 in progress: the rest remain"
curl -s -X POST "$KV_URL/release" >/dev/null
for i in $(seq 100); do [ "$(kv_stat held)" -eq 0 ] && break; sleep 0.1; done
run_rb resume "$rj" --yes
is "$RC" 0 "resume exits 0"
like "$ERR" "Resuming kv-prune" "  says what it resumes"
is "$(kv_keys | tr ' ' '\n' | grep -c '^tmp-r')" 0 "  every key is gone"
# Exactly once, counted from every DELETE the server saw, whatever it answered: the runbook takes 404
# for done, so a resume that deleted tmp-r1 again would get 404 and still pass a count of 204s.
# tmp-r1 was finished before the kill: its one DELETE, and one start line. tmp-r2 was in flight: the
# resume checks it again and may DELETE it once more (404), never twice; tmp-r3, r4: one DELETE each.
for k in r1 r3 r4; do
  is "$(kv_count "^DELETE /keys/tmp-$k ")" 1 "  tmp-$k: one DELETE in all (any status)"
done
is "$(kv_count "^DELETE /keys/tmp-r2 204")" 1 "  tmp-r2, in flight at the kill: deleted once"
ok $([ "$(kv_count "^DELETE /keys/tmp-r2 ")" -le 2 ]; echo $?) "  and asked at most once more by the resume ($(kv_count "^DELETE /keys/tmp-r2 ") DELETEs)"
journal_starts() { "$PY" -c 'import json,sys; print(sum(1 for l in open(sys.argv[1]) if json.loads(l).get("type") == "start" and json.loads(l).get("id") == int(sys.argv[2])))' "$@"; }
is "$(journal_starts "$rj" 1)" 1 "  the journal: tmp-r1, finished before the kill, not started again"
grep -E '^DELETE /keys/tmp-r' "$KV_DIR/requests.log" | sed -E 's#^DELETE /keys/([^ ]+) ([0-9]+)$#\1 \2#' > "$SCRATCH/rj-deletes"
problems=$("$PY" "$TOP/tests/lib/exactly_once.py" "$SCRATCH/rj-at-kill.journal" "$rj" --kind kv.delete --requests "$SCRATCH/rj-deletes")
ok $? "  the journal and the server agree: 1 finished, 1 in flight at the kill, nothing finished repeated"
[ -z "${problems%at the kill:*}" ] || diag "$problems"
run_rb resume "$rj" --yes
is "$RC" 0 "resuming a finished journal: exit 0"; like "$ERR" "Nothing left to do" "  nothing left to do"
# Killed after its last action but before writing its ending: resume writes the ending, once.
grep -v '"type":"finish"' "$rj" > "$SCRATCH/unfinished.journal"; chmod 600 "$SCRATCH/unfinished.journal"
run_rb resume "$SCRATCH/unfinished.journal" --yes
is "$RC" 0 "resuming a journal without its ending: exit 0"
like "$ERR" "journal now records the run as finished" "  says it wrote the ending"
is "$(tail -n 1 "$SCRATCH/unfinished.journal" | "$PY" -c 'import json,sys; e=json.load(sys.stdin); print(e["type"], e["done"])')" "finish 4" "  the journal ends with a finish line counting the 4 done"
run_rb resume "$SCRATCH/unfinished.journal" --yes
is "$(grep -c '"type":"finish"' "$SCRATCH/unfinished.journal")" 1 "  a second resume adds nothing"

# --- a torn last journal line (power loss) is ignored; damage elsewhere refuses ---
for k in t1 t2; do kv_put "tmp-$k" 1; done
run_rb plan kv-prune -p prefix=tmp-t -o "$SCRATCH/torn.json"
mkdir -p "$SCRATCH/tj"
"$PY" - "$SCRATCH/torn.json" "$SCRATCH/tj/torn.journal" <<'PYEOF'
import json, sys
doc = json.load(open(sys.argv[1])); doc.pop("checksum")
with open(sys.argv[2], "w") as f:
    f.write(json.dumps({"type": "plan", "format": "runbook-journal/1", "plan": doc, "pid": 1}) + "\n")
    f.write(json.dumps({"type": "start", "id": 1}) + "\n")
    f.write('{"type":"end","id":1,"outco')
PYEOF
chmod 600 "$SCRATCH/tj/torn.journal"
run_rb resume "$SCRATCH/tj/torn.journal" --yes
is "$RC" 0 "resume of a torn journal exits 0"; like "$ERR" "torn" "  warns about the torn line"
is "$(kv_keys | tr ' ' '\n' | grep -c '^tmp-t')" 0 "  finished the job"
ok $("$PY" -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$SCRATCH/tj/torn.journal"; echo $?) "  the journal is valid JSON lines again"
printf 'garbage\n{"type":"finish"}\n' > "$SCRATCH/tj/bad.journal"
run_rb resume "$SCRATCH/tj/bad.journal" --yes
is "$RC" 2 "a journal damaged at its first line: exit 2"

# --- SIGINT stops after the current action, journal says so, resume finishes ---
for k in s1 s2 s3; do kv_put "tmp-$k" slow; done
run_rb plan kv-prune -p prefix=tmp-s -o "$SCRATCH/sig.json"
"$RUNBOOK" apply "$SCRATCH/sig.json" --yes --journal-dir "$SCRATCH/sj" >"$SCRATCH/sig.out" 2>&1 &
pid=$!
for i in $(seq 600); do [ -n "$(ls "$SCRATCH"/sj/*.journal 2>/dev/null)" ] && grep -q '"type":"start"' "$SCRATCH"/sj/*.journal && break; sleep 0.05; done
kill -INT $pid; wait $pid; rc=$?
is "$rc" 1 "SIGINT: exit 1 after the current action"
sj=$(ls "$SCRATCH"/sj/*.journal)
like "$(cat "$sj")" '"reason":"interrupted by SIGINT"' "  the journal says it was interrupted"
is "$(kv_count "^DELETE /keys/tmp-s[0-9] 204")" 1 "  the action under way finished, no other started"
like "$(cat "$SCRATCH/sig.out")" "runbook resume" "  the message says how to go on"
like "$(cat "$SCRATCH/sig.out")" "stopped: interrupted by SIGINT. Nothing failed" "  worded as an interruption"
unlike "$(cat "$SCRATCH/sig.out")" "after fixing the cause" "  not as a failure to fix"
run_rb resume "$sj" --yes
is "$RC" 0 "  resume finishes the rest"
for k in s1 s2 s3; do is "$(kv_count "^DELETE /keys/tmp-$k ")" 1 "  tmp-$k: one DELETE in all (any status)"; done

# --- on_stop puts things back when a run stops; resume repeats converging actions first ---
kv_put gate open; kv_put job-1 x; kv_put job-2 fail; kv_put job-3 x
run_rb run kv-gated --yes --journal-dir "$SCRATCH/gj"
is "$RC" 1 "a run that stops at a failed action: exit 1"
like "$ERR" "the gate is open again" "  on_stop ran and said what it did"
is "$(kv_get gate | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["value"])')" open "  the gate is open after the stop"
is "$(kv_keys | tr ' ' '\n' | grep -c '^job-')" 2 "  job-1 deleted, job-2 failed, job-3 not run"
gj=$(ls "$SCRATCH"/gj/*.journal)
like "$(cat "$gj")" '"type":"on_stop"' "  the journal records on_stop"
kv_put job-2 x
run_rb resume "$gj" --yes
is "$RC" 0 "resume after fixing the cause: exit 0"
is "$(kv_keys | tr ' ' '\n' | grep -c '^job-')" 0 "  the remaining keys are deleted"
is "$(kv_count '^DELETE /keys/job-1 ') $(kv_count '^DELETE /keys/job-2 ') $(kv_count '^DELETE /keys/job-3 ')" "1 2 1" \
  "  DELETEs: job-1 once (done before the stop), job-2 twice (failed, then after the fix), job-3 once"
is "$(grep -E '^PUT /keys/gate ' "$KV_DIR/requests.log" | wc -l | tr -d ' ')" 5 "  gate: opened by the test, closed, reopened by on_stop, closed again by resume, opened at the end"
is "$(kv_get gate | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["value"])')" open "  the gate ends open"

# --- secret parameters never reach a plan; apply reads them again ---
mkdir -p "$SCRATCH/secret-site"
cat > "$SCRATCH/secret-site/kv-secret.lua" <<'LUA'
return {
  summary = "has a secret parameter",
  params = { { name = "url", type = "string", env = "KV_URL", required = true },
             { name = "api_key", type = "string", env = "KV_API_KEY", secret = true, required = true } },
  plan = function(ctx) ctx:add{ kind = "kv.show", target = "key", reason = "shows the key's length" } end,
  actions = { ["kv.show"] = { run = function(ctx) return true, "key of " .. #ctx.params.api_key .. " characters" end } },
}
LUA
TEST_SECRETS+=("s3cret-api-key-value")
KV_API_KEY=s3cret-api-key-value run_rb plan "$SCRATCH/secret-site/kv-secret.lua" -o "$SCRATCH/secret-plan.json"
is "$RC" 0 "plan with a secret parameter from the environment"
unlike "$(cat "$SCRATCH/secret-plan.json")" "s3cret" "  the secret is not in the plan file"
KV_API_KEY=s3cret-api-key-value run_rb apply "$SCRATCH/secret-plan.json" --yes --journal-dir "$SCRATCH/sj2"
like "$OUT" "key of 20 characters" "  apply reads it again from the environment"
run_rb plan "$SCRATCH/secret-site/kv-secret.lua" -p api_key=xyz
is "$RC" 2 "  a secret parameter on the command line is refused"

# --- exec ---
cat > "$SCRATCH/script.lua" <<'LUA'
local http = require "runbook.http"
local resp, err = http.request{ method = arg[1], url = os.getenv("KV_URL") .. "/keys/exec-key", json = { value = "v" } }
print(resp and resp.status or err)
LUA
run_rb exec "$SCRATCH/script.lua" PUT
is "$RC" 1 "exec is read-only by default: a PUT fails"; like "$ERR" "refused: HTTP PUT .* read-only mode" "  the message says how to allow it"
run_rb exec --write "$SCRATCH/script.lua" PUT
is "$RC" 0 "exec --write allows it"; like "$ERR" "200" "  the script ran"
echo 'return 7' > "$SCRATCH/seven.lua"
run_rb exec "$SCRATCH/seven.lua"
is "$RC" 7 "exec returns the script's exit status"

done_testing
