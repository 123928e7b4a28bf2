#!/usr/bin/env bash
# Hardening (issue 16, items 1-3): numeric parameters are bounded (an overflowing `days` once made
# active users look dormant), a plan's parameters are held to their types and bounds again at apply
# (a number read back from JSON as a float), the target is derived from the parameters that will be
# used (an edited plan with a recomputed checksum cannot redirect the run), the confirmation shows
# where runbook connects and where credentials come from, and one apply or resume at a time holds a
# target (two at once repeated every deletion).
. "$(dirname "$0")/lib/tap.sh"
. "$TOP/tests/lib/testservers.sh"
export RUNBOOK_PATH="$TOP/tests/runbooks"
export XDG_STATE_HOME="$SCRATCH/state"
unset JUPYTERHUB_API_URL JUPYTERHUB_API_TOKEN

# reseal PLAN OLD NEW: replace text in a plan file and recompute its checksum, as an attacker who can
# write the file would (the checksum has no key: it catches damage, not intent).
reseal() {
  "$PY" - "$@" <<'EOF'
import hashlib, re, sys
path, old, new = sys.argv[1:4]
text = open(path).read()
assert old in text, old
text = text.replace(old, new)
pattern = r'("checksum": "sha256:)[0-9a-f]{64}"'
zeroed = re.sub(pattern, lambda m: m.group(1) + "0" * 64 + '"', text)
digest = hashlib.sha256(zeroed.encode()).hexdigest()
open(path, "w").write(re.sub(pattern, lambda m: m.group(1) + digest + '"', text))
EOF
}

# --- 1. bounds: declared per parameter, a default for every number, one message naming it
run_rb plan prune-dormant -p hub=http://127.0.0.1:9 -p days=200000000000000
is "$RC" 2 "days=200000000000000: exit 2 (it overflowed days * 86400 and deleted active users)"
like "$ERR" "parameter 'days' must be between 1 and 36500, got 200000000000000" "  names the parameter and its bounds"
run_rb plan prune-dormant -p hub=http://127.0.0.1:9 -p days=9223372036854775807
is "$RC" 2 "days=2^63-1: exit 2"
run_rb plan prune-dormant -p hub=http://127.0.0.1:9 -p grace_days=-1
like "$ERR" "parameter 'grace_days' must be between 0 and 36500" "grace_days=-1: refused with its bounds"
run_rb plan prune-dormant -p hub=http://127.0.0.1:9 -p max_rate=1e400
like "$RC:$ERR" "^2:.*parameter 'max_rate' must be a finite number" "max_rate=1e400 (infinity): refused"
kv_start "tmp-a=1,tmp-b=2,keep=3"
run_rb plan kv-prune -p max_actions=3000000000
like "$RC:$ERR" "^2:.*parameter 'max_actions' must be between -2147483648 and 2147483647" \
  "a number parameter declared without bounds still has the default ones"
run_rb show prune-dormant
like "$OUT" "days +integer +90 .*\[1\.\.36500\]" "show gives each bounded parameter's range"
run_rb show prune-dormant --output json
like "$OUT" '"max":36500,"min":1,"name":"days"' "  and show --output json"

# --- 1. the plan's values are checked again at apply, with the same types and bounds
run_rb plan kv-prune -o "$SCRATCH/p.json"
cp "$SCRATCH/p.json" "$SCRATCH/float.json"
reseal "$SCRATCH/float.json" '"max_actions": 0' '"max_actions": 9.2233720368547758e18'
run_rb apply "$SCRATCH/float.json" --yes
like "$RC:$ERR" "^2:.*the plan: parameter 'max_actions' must be a whole number within range" \
  "a planned integer that is no longer one (2^63 as a float) is refused at apply"
cp "$SCRATCH/p.json" "$SCRATCH/range.json"
reseal "$SCRATCH/range.json" '"concurrency": 1' '"concurrency": 5000000000'
run_rb apply "$SCRATCH/range.json" --yes
like "$RC:$ERR" "^2:.*parameter 'concurrency' must be between" "a planned value out of bounds is refused at apply"
is "$(kv_count '^DELETE')" 0 "  and nothing was deleted"

# --- 2. the target comes from the parameters that will be used
url_a=$KV_URL dir_a=$KV_DIR
kv_start "tmp-a=1,tmp-b=2"
url_b=$KV_URL dir_b=$KV_DIR
KV_URL=$url_a KV_DIR=$dir_a
cp "$SCRATCH/p.json" "$SCRATCH/redirect.json"
reseal "$SCRATCH/redirect.json" "\"url\": \"$url_a\"" "\"url\": \"$url_b\""
run_rb apply "$SCRATCH/redirect.json" --yes
is "$RC" 2 "a plan whose parameters were edited to another server (checksum recomputed): exit 2"
like "$ERR" "the plan says its target is ${url_a#http://}, but its parameters name ${url_b#http://}: the plan was edited" \
  "  names both targets"
deletes_in() { local n; n=$(grep -c '^DELETE' "$1" 2>/dev/null); echo "${n:-0}"; }
is "$(deletes_in "$dir_b/requests.log"):$(deletes_in "$dir_a/requests.log")" "0:0" "  nothing was sent to either server"
# Edited consistently (url and target), the plan is a plan for the other server: the confirmation says
# so, naming the URL runbook will contact, before anyone types anything.
cp "$SCRATCH/redirect.json" "$SCRATCH/both.json"
reseal "$SCRATCH/both.json" "\"target\": \"${url_a#http://}\"" "\"target\": \"${url_b#http://}\""
prompt=$("$PY" "$TOP/tests/lib/pty_run.py" "no" "$RUNBOOK" apply "$SCRATCH/both.json" 2>&1)
like "$(printf '%s' "$prompt" | grep -A3 'Connecting with:')" "url: $url_b" "the confirmation shows the URL that will be contacted"
like "$prompt" "Type .*${url_b#http://}.* to go on" "  and asks for that target's name"

# --- 3. one apply or resume at a time per target
kv_start "tmp-a=slow,tmp-b=slow,tmp-c=slow"
run_rb plan kv-prune -o "$SCRATCH/slow.json"
"$RUNBOOK" apply "$SCRATCH/slow.json" --yes --journal-dir "$SCRATCH/j" >"$SCRATCH/first.out" 2>&1 &
first=$!
for _ in $(seq 100); do [ -n "$(ls "$SCRATCH"/j/*.journal 2>/dev/null)" ] && break; sleep 0.05; done
run_rb apply "$SCRATCH/slow.json" --yes --journal-dir "$SCRATCH/j"
is "$RC" 1 "a second apply of the same plan while the first runs: exit 1"
like "$ERR" "another kv-prune on 127\.0\.0\.1:[0-9]+ is running \(pid $first, since 20[0-9-]+T" "  names the holder: pid and since when"
wait "$first"; is "$?" 0 "  the first apply finishes"
for k in tmp-a tmp-b tmp-c; do is "$(kv_count "^DELETE /keys/$k ")" 1 "  $k deleted once"; done
# Two resumes of one journal: the first killed after its first action began.
kv_start "tmp-a=slow,tmp-b=slow,tmp-c=slow"
run_rb plan kv-prune -o "$SCRATCH/slow2.json"
{ (RUNBOOK_CRASH_AT=journal:2 exec "$RUNBOOK" apply "$SCRATCH/slow2.json" --yes --journal-dir "$SCRATCH/j2" >/dev/null 2>&1); } 2>/dev/null
journal=$(ls "$SCRATCH"/j2/*.journal)
"$RUNBOOK" resume "$journal" --yes >"$SCRATCH/r1.out" 2>&1 &
r1=$!
for _ in $(seq 100); do grep -q '"type":"resume"' "$journal" && break; sleep 0.05; done
run_rb resume "$journal" --yes
is "$RC" 1 "a second resume of the same journal while the first runs: exit 1"
like "$ERR" "another kv-prune .* is running \(pid $r1" "  names the first resume"
wait "$r1"; is "$?" 0 "  the first resume finishes"
is "$(grep -c '"type":"start"' "$journal")" 4 "  the journal has one start per action (and the killed run's one)"
for k in tmp-a tmp-b tmp-c; do is "$(kv_count "^DELETE /keys/$k ")" 1 "  $k deleted once"; done

done_testing
