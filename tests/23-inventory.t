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
like "$OUT" "days +150 +\(inventory\)" "values from the inventory say so"
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
