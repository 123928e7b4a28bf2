#!/usr/bin/env bash
# One command for every hub of a site: an inventory names two real JupyterHubs with their own
# tokens, parameters and policy; plan saves a plan per hub; run prunes each with its own report.
. "$(dirname "$0")/lib/tap.sh"
. "$TOP/tests/lib/hub.sh"
command -v jupyterhub >/dev/null || skip_all "jupyterhub is not installed"
export XDG_STATE_HOME="$SCRATCH/state"
unset JUPYTERHUB_API_URL JUPYTERHUB_API_TOKEN
hub_start "$SCRATCH/science" >/dev/null 2>&1 || { ok 1 "first hub starts"; done_testing; exit 1; }
hub_seed "$SCRATCH/science" --generate s.old:5:-200d --generate s.mid:3:-100d --user s.staff --activity s.staff=-200d \
  --group staff=s.staff >/dev/null 2>&1
SCIENCE_URL=$JUPYTERHUB_API_URL SCIENCE_TOKEN=$JUPYTERHUB_TOKEN_FILE
hub_start "$SCRATCH/teaching" >/dev/null 2>&1 || { ok 1 "second hub starts"; done_testing; exit 1; }
hub_seed "$SCRATCH/teaching" --generate t.old:4:-200d --generate t.mid:3:-100d >/dev/null 2>&1
TEACHING_URL=$JUPYTERHUB_API_URL TEACHING_TOKEN=$JUPYTERHUB_TOKEN_FILE
TEST_SECRETS+=("$(cat "$SCIENCE_TOKEN")" "$(cat "$TEACHING_TOKEN")")
unset JUPYTERHUB_API_URL JUPYTERHUB_TOKEN_FILE

mkdir -p "$SCRATCH/site"
cat > "$SCRATCH/site/staff.lua" <<'LUA'
exclude = function(user)
  for _, g in ipairs(user.groups or {}) do if g == "staff" then return "staff" end end
end
LUA
cat > "$SCRATCH/site/inventory.lua" <<LUA
defaults = { days = 150 }
targets = {
  { name = "science", hub = "$SCIENCE_URL", token_file = "$SCIENCE_TOKEN", policy = "staff.lua" },
  { name = "teaching", hub = "$TEACHING_URL", token_file = "$TEACHING_TOKEN", days = 90 },
}
LUA

run_rb plan prune-dormant --inventory "$SCRATCH/site/inventory.lua" -o "$SCRATCH/plans"
is "$RC" 0 "plan --inventory exits 0"
like "$OUT" "=== science ===" "each target has its own section"
like "$OUT" "science +5 +ok" "the summary: science plans 5 deletions (days 150, staff excluded by its policy)"
like "$OUT" "teaching +7 +ok" "the summary: teaching plans 7 (its own days = 90)"
like "$OUT" "days +150 +\(inventory defaults\)" "values from the inventory's defaults say so"
like "$OUT" "days +90 +\(inventory target\)" "  and a target's own values"
is "$(ls "$SCRATCH/plans")" "science.json
teaching.json" "a plan file per target"
is "$(stat -c %a "$SCRATCH/plans/science.json")" 600 "  mode 0600"
run_rb apply "$SCRATCH/plans/teaching.json" --yes
is "$RC" 0 "a target's plan applies on its own"
is "$(hub_count "$SCRATCH/teaching")" 0 "  teaching pruned"
is "$(hub_count "$SCRATCH/science")" 9 "  science untouched"

run_rb run prune-dormant --inventory "$SCRATCH/site/inventory.lua" --yes
is "$RC" 0 "run --inventory --yes exits 0"
like "$OUT" "science +5 +ok" "science: 5 deleted"
like "$OUT" "teaching +0 +ok" "teaching: nothing left to do"
is "$(hub_users "$SCRATCH/science" | sort | tr '\n' ' ')" "s.mid0000 s.mid0001 s.mid0002 s.staff " "science keeps its recent users and staff"

# Precedence: a hub's own policy file outranks the site's defaults (a defaults = { days = 120 } must not
# widen what a hub with days = 180 deletes); the command line outranks everything. Tokens and policy
# are relative paths beside the inventory, and runbook runs from another directory.
hub_seed "$SCRATCH/science" --generate s.p:2:-140d >/dev/null 2>&1
unset JUPYTERHUB_API_URL JUPYTERHUB_TOKEN_FILE
mkdir -p "$SCRATCH/site2/tokens" "$SCRATCH/elsewhere/tokens"
cp "$SCIENCE_TOKEN" "$SCRATCH/site2/tokens/science.token"
cp "$TEACHING_TOKEN" "$SCRATCH/site2/tokens/teaching.token"
echo "not a token" > "$SCRATCH/elsewhere/tokens/science.token" # what a cwd-relative reading would find
chmod 600 "$SCRATCH"/site2/tokens/* "$SCRATCH/elsewhere/tokens/science.token"
echo 'days = 180' > "$SCRATCH/site2/science-policy.lua"
cat > "$SCRATCH/site2/inventory.lua" <<LUA
defaults = { days = 120 }
targets = {
  { name = "science", hub = "$SCIENCE_URL", token_file = "tokens/science.token", policy = "science-policy.lua" },
  { name = "teaching", hub = "$TEACHING_URL", token_file = "tokens/teaching.token" },
}
LUA
cd "$SCRATCH/elsewhere" || exit 1
run_rb plan prune-dormant --inventory ../site2/inventory.lua -o plans2
cd "$TOP" || exit 1
is "$RC" 0 "plan --inventory from another directory, relative token files and policy: exit 0"
like "$OUT" "days +180 +\(policy\)" "the target's policy days = 180 wins over the inventory's defaults days = 120"
like "$OUT" "science +1 +ok" "  science plans 1 deletion (s.staff, 200 days), not the two idle for 140 days"
like "$OUT" "days +120 +\(inventory defaults\)" "  a target without a policy gets the defaults"
like "$OUT" "token_file +$SCRATCH/site2/tokens/science.token +\(inventory target\)" \
  "  a relative token_file is beside the inventory, not in the working directory"
like "$OUT" "policy $SCRATCH/site2/science-policy.lua" "  and so is a relative policy"
is "$("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["params"]["days"], d["param_sources"]["days"])' \
  "$SCRATCH/elsewhere/plans2/science.json")" "180 policy" "  the plan file records the value and its source"
run_rb plan prune-dormant --inventory "$SCRATCH/site2/inventory.lua" -p days=200
is "$RC" 0 "-p days=200 with the inventory: exit 0"
like "$OUT" "days +200 +\(command line\)" "  the command line wins over the target's policy"
unlike "$OUT" "days +(180|120) " "  for every target"
echo 'days = 30' > "$SCRATCH/site2/wide.lua"
run_rb plan prune-dormant --inventory "$SCRATCH/site2/inventory.lua" --policy "$SCRATCH/site2/wide.lua"
is "$RC" 2 "--policy and a target's own policy file: exit 2, nothing planned"
like "$ERR" "target science .*own policy file .*science-policy.lua.*--policy" "  names the target and both files"
unlike "$OUT" "=== science ===" "  before any target is planned"
echo 'defaults = { policy = "x.lua" } targets = { { name = "a" } }' > "$SCRATCH/defpolicy.lua"
run_rb plan prune-dormant --inventory "$SCRATCH/defpolicy.lua"
is "$RC" 2 "defaults naming something that is not a parameter: exit 2"; like "$ERR" "defaults sets 'policy'" "  named"

# one target's trouble does not stop the others; the worst status wins
sed -i "s#$TEACHING_URL#http://127.0.0.1:$(free_port)/hub/api#" "$SCRATCH/site/inventory.lua"
run_rb plan prune-dormant --inventory "$SCRATCH/site/inventory.lua"
is "$RC" 1 "a target that is down: exit 1"
like "$OUT" "science +0 +ok" "  the other target is still planned"
like "$ERR" "teaching: hub 127\.0\.0\.1:[0-9]+: .*is the hub running" "  the failing target is named"
echo 'targets = { { name = "x", dayz = 3 } }' > "$SCRATCH/bad.lua"
run_rb plan prune-dormant --inventory "$SCRATCH/bad.lua"
is "$RC" 2 "an inventory with an unknown parameter: exit 2"; like "$ERR" "target x sets 'dayz'" "  named"
echo 'targets = {}' > "$SCRATCH/empty.lua"
run_rb plan prune-dormant --inventory "$SCRATCH/empty.lua"
is "$RC" 2 "an inventory without targets: exit 2"
echo 'targets = { { name = "a" } } io.open("/x")' > "$SCRATCH/io.lua"
run_rb plan prune-dormant --inventory "$SCRATCH/io.lua"
is "$RC" 2 "an inventory cannot use io: exit 2"
done_testing
