#!/usr/bin/env bash
# Every --output json document validates against its schema in doc/schema (Debian's python3-jsonschema):
# version, list, show, plan (printed and saved), apply/resume/run results in each outcome (done,
# skipped, failed, stopped), with nothing but JSON on stdout and exit_status equal to the exit status.
# The man page names every field the schemas require.
. "$(dirname "$0")/lib/tap.sh"
. "$TOP/tests/lib/testservers.sh"
export RUNBOOK_PATH="$TOP/tests/runbooks"
export XDG_STATE_HOME="$SCRATCH/state"
J="$SCRATCH/journals"
SCHEMAS="$TOP/doc/schema"

"$PY" -c 'import jsonschema' 2>/dev/null || skip_all "python3-jsonschema is not installed (make deps)"

# validate.py SCHEMA...: stdin must hold exactly one JSON document per SCHEMA, in order, and nothing
# else; each must be valid. Prints "#"-prefixed reasons and exits 1 otherwise.
VALIDATE='
import json, sys, jsonschema
text = sys.stdin.read()
docs, pos, dec = [], 0, json.JSONDecoder()
while True:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    if pos == len(text):
        break
    try:
        doc, pos = dec.raw_decode(text, pos)
    except ValueError as e:
        print("# not JSON at offset %d: %s: %r" % (pos, e, text[pos:pos + 80])); sys.exit(1)
    docs.append(doc)
names = sys.argv[2:]
if len(docs) != len(names):
    print("# %d JSON documents on stdout, expected %d" % (len(docs), len(names))); sys.exit(1)
failed = False
for doc, name in zip(docs, names):
    schema = json.load(open("%s/%s.json" % (sys.argv[1], name)))
    for err in jsonschema.Draft202012Validator(schema).iter_errors(doc):
        print("# %s.json: at /%s: %s" % (name, "/".join(map(str, err.absolute_path)), err.message[:300]))
        failed = True
sys.exit(1 if failed else 0)
'
# valid DESCRIPTION SCHEMA...: validates $OUT (from run_rb) against the schemas, in order.
valid() {
  local desc=$1; shift
  local why
  why=$(printf '%s' "$OUT" | "$PY" -c "$VALIDATE" "$SCHEMAS" "$@"); ok $? "$desc"
  [ -n "$why" ] && printf '%s\n' "$why"
  return 0
}
# field EXPR: a Python expression over `d` (the last JSON document of $OUT), printed.
field() {
  printf '%s' "$OUT" | "$PY" -c '
import json, sys
text, dec, pos, d = sys.stdin.read(), json.JSONDecoder(), 0, None
while pos < len(text):
    if text[pos].isspace(): pos += 1; continue
    d, pos = dec.raw_decode(text, pos)
print(eval(sys.argv[1]))' "$1"
}

# --- the schemas themselves are valid JSON Schema (2020-12) ---
for s in "$SCHEMAS"/*.json; do
  "$PY" -c 'import json,sys,jsonschema; jsonschema.Draft202012Validator.check_schema(json.load(open(sys.argv[1])))' "$s"
  ok $? "$(basename "$s") is a valid JSON Schema"
done

kv_start "tmp-a=1,tmp-b=2,keep=3"

# --- version, list, show ---
run_rb version --output json
is "$RC" 0 "version --output json exits 0"; valid "  matches version.json" version
run_rb --version --output json
valid "--version --output json matches version.json" version
run_rb list --output json
is "$RC" 0 "list --output json exits 0"; valid "  matches list.json" list
is "$(field '" ".join(sorted(e["name"] for e in d if e["source"] == "built-in"))')" \
   "$(env -u RUNBOOK_PATH "$RUNBOOK" list 2>/dev/null </dev/null | awk '{print $1}' | sort | tr '\n' ' ' | sed 's/ $//')" \
   "  lists the same built-in runbooks as the text output"
like "$(field '[e["summary"] for e in d if e["name"] == "kv-broken-syntax"][0]')" "^cannot be loaded: " \
   "  a broken runbook is listed, its summary saying why"
for name in kv-prune $(RUNBOOK_PATH= "$RUNBOOK" list 2>/dev/null </dev/null | awk '{print $1}'); do
  run_rb show "$name" --output json
  is "$RC" 0 "show $name --output json exits 0"; valid "  matches show.json" show
done
run_rb show kv-prune --output json
is "$(field '[(p["name"], p["type"], p.get("default"), p["required"]) for p in d["params"]][:2]')" \
   "[('url', 'string', None, True), ('prefix', 'string', 'tmp-', False)]" "  params in declaration order, with type, default and required"
is "$(field 'd["policy"]')" "{'exclude': 'function', 'protected': 'list'}" "  policy keys with their kinds"

# --- plan: printed and saved are the same document, both valid ---
run_rb plan kv-prune --output json
is "$RC" 0 "plan --output json exits 0"; valid "  matches plan.json" plan
is "$(field 'len(d["actions"]), len(d["skipped"]), d["param_sources"]["url"]')" "(2, 1, 'environment KV_URL')" \
   "  actions, skipped and where each parameter came from"
run_rb plan kv-prune -o "$SCRATCH/plan.json"
OUT=$(cat "$SCRATCH/plan.json")
valid "a plan file (-o) matches plan.json" plan
cat > "$SCRATCH/policy.lua" <<'LUA'
protected = { "tmp-b" }
LUA
run_rb plan kv-prune --policy "$SCRATCH/policy.lua" --output json
valid "a plan made with --policy matches plan.json" plan
like "$(field 'd["policy"]["sha256"]')" "^[0-9a-f]{64}$" "  and records the policy's SHA-256"
run_rb plan kv-prune -p prefix=none- --output json
valid "a plan with no actions matches plan.json" plan
run_rb plan kv-prune --context somewhere -n hub-a --output json
valid "a plan made with Kubernetes options matches plan.json" plan
is "$(field 'd["options"]')" "{'context': 'somewhere', 'namespace': 'hub-a'}" "  and records them"

# --- inventories: a plan document per target, each valid ---
cat > "$SCRATCH/inventory.lua" <<'LUA'
defaults = { max_actions = 5 }
targets = { { name = "tmp", prefix = "tmp-" }, { name = "keep", prefix = "keep" } }
LUA
run_rb plan kv-prune --inventory "$SCRATCH/inventory.lua" --output json
is "$RC" 0 "plan --inventory --output json exits 0"; valid "  a plan document per target" plan plan
is "$(field 'd["params"]["prefix"], d["param_sources"]["prefix"], d["param_sources"]["max_actions"]')" \
   "('keep', 'inventory target', 'inventory defaults')" "  values from the inventory, so named: the target's own, the defaults"
run_rb run kv-prune --inventory "$SCRATCH/inventory.lua" --dry-run --output json
is "$RC" 0 "run --inventory --dry-run exits 0"; valid "  a plan document per target" plan plan

# --- results ---
kv_put tmp-b changed   # drift: the re-check skips tmp-b
run_rb apply "$SCRATCH/plan.json" --yes --output json --journal-dir "$J"
is "$RC" 4 "apply with a skipped action: exit 4"; valid "  result matches result.json" result
is "$(field 'd["exit_status"], [a["target"] for a in d["done"]], [(a["target"], a["message"]) for a in d["skipped"]]')" \
   "(4, ['tmp-a'], [('tmp-b', 'changed since the plan (version 2, planned 1)')])" "  exit_status, done and skipped with the reason"
like "$(field 'd["journal"]')" "^$J/kv-prune-.*\.journal$" "  names the journal"

kv_put tmp-f fail; kv_put tmp-g 1
run_rb run kv-prune --yes --output json --journal-dir "$J" -p prefix=tmp-
is "$RC" 1 "run with a failing action: exit 1"
valid "  stdout is the plan, then the result" plan result
is "$(field 'd["exit_status"], [(a["target"], a["message"]) for a in d["failed"]]')" \
   "(1, [('tmp-f', 'HTTP 500: cannot delete this key')])" "  the failure with the server's message"

run_rb run kv-prune --dry-run --output json -p prefix=tmp-
is "$RC" 0 "run --dry-run exits 0"; valid "  stdout is the plan only" plan

kv_put tmp-h 1
run_rb run kv-prune --yes --output json --journal-dir "$J" -p prefix=tmp-h
is "$RC" 0 "run with everything done: exit 0"; valid "  plan, then result" plan result
is "$(field 'd["exit_status"], len(d["done"]), "stopped" in d')" "(0, 1, False)" "  exit_status 0, one done, not stopped"

# A stopped apply: SIGINT while the first of two slow deletions (2 s each) is under way.
for k in s1 s2; do kv_put "tmp-$k" slow; done
run_rb plan kv-prune -p prefix=tmp-s -o "$SCRATCH/slow.json"
"$RUNBOOK" apply "$SCRATCH/slow.json" --yes --output json --journal-dir "$SCRATCH/sj" >"$SCRATCH/slow.out" 2>/dev/null </dev/null &
pid=$!
# (up to 30 s for the first start line: a loaded machine is slow, and a signal before it finds no handler)
for i in $(seq 600); do grep -qs '"type":"start"' "$SCRATCH"/sj/*.journal && break; sleep 0.05; done
kill -INT $pid; wait $pid; rc=$?
OUT=$(cat "$SCRATCH/slow.out")
is "$rc" 1 "an interrupted apply: exit 1"; valid "  result matches result.json" result
is "$(field 'd["stopped"], len(d["done"]), [a["target"] for a in d["not_run"]], d["exit_status"]')" \
   "('interrupted by SIGINT', 1, ['tmp-s2'], 1)" "  says why it stopped and what did not run"
run_rb resume "$(ls "$SCRATCH"/sj/*.journal)" --yes --output json
is "$RC" 0 "resume exits 0"; valid "  result matches result.json" result
is "$(field '[a["target"] for a in d["done"]]')" "['tmp-s2']" "  lists what this resume did"

# A command that fails prints one error document (error.json): the message as well as the status.
run_rb apply "$SCRATCH/plan.json" --output json --journal-dir "$SCRATCH/j-confirm"
is "$RC" 3 "apply refused at the confirmation: exit 3"; valid "  one error document on stdout" error
is "$(field 'd["command"], d["error"]["exit_status"], d["error"]["message"][:40]')" \
   "('apply', 3, 'not applying: confirmation needs a termi')" "  naming the command, the status and the cause"
run_rb plan no-such-runbook --output json
is "$RC" 2 "unknown runbook: exit 2"; valid "  one error document on stdout" error
like "$(field 'd["error"]["message"]')" "unknown runbook 'no-such-runbook'" "  with the message of stderr"
run_rb plan kv-prune --output json --detailed-exitcode -p url=http://127.0.0.1:1
is "$RC" 1 "plan --detailed-exitcode failing: exit 1 (2 means changes pending)"; valid "  one error document" error
is "$(field 'd["error"]["exit_status"]')" 1 "  the document gives the failure's own status"

# --- a document missing a required field is rejected (the validator really validates) ---
OUT='{"runbook": "x", "target": "y", "done": [], "skipped": [], "failed": [], "not_run": [], "exit_status": 0}'
why=$(printf '%s' "$OUT" | "$PY" -c "$VALIDATE" "$SCHEMAS" result); rc=$?
ok $([ $rc -ne 0 ]; echo $?) "a result without 'journal' fails validation"
like "$why" "'journal' is a required property" "  naming the field"

# --- the man page documents every field the schemas require ---
missing=$("$PY" - "$SCHEMAS" "$TOP/doc/runbook.1" <<'PYEOF'
import glob, json, re, sys
man = open(sys.argv[2]).read().replace("\\-", "-").replace("\\(dq", '"')
def required(node):
    if isinstance(node, dict):
        yield from node.get("required", [])
        for v in node.values():
            yield from required(v)
    elif isinstance(node, list):
        for v in node:
            yield from required(v)
for path in sorted(glob.glob(sys.argv[1] + "/*.json")):
    for name in sorted(set(required(json.load(open(path))))):
        if not re.search(r"\b%s\b" % re.escape(name), man):
            print("%s: %s" % (path.rsplit("/", 1)[1], name))
PYEOF
); rc=$?
is "$rc:$missing" "0:" "doc/runbook.1 names every required field of every schema"

done_testing
