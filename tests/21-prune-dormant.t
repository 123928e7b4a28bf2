#!/usr/bin/env bash
# prune-dormant against a real JupyterHub 3.0 with 480 users (three pages): the expected set is
# deleted and nothing else; admins, running and pending servers, new accounts, the `days` boundary,
# odd names, policy, drift between plan and apply, a 500 on one delete, and bad connections.
# Its hub's spawner (hubtest.spawner.SlowSpawner, for a pending spawn) is one runbook does not know,
# so plans pass storage=unchecked, as a site with its own local spawner would; storage is tests/25's.
. "$(dirname "$0")/lib/tap.sh"
. "$TOP/tests/lib/hub.sh"
. "$TOP/tests/lib/testservers.sh"
command -v jupyterhub >/dev/null || skip_all "jupyterhub is not installed"
export XDG_STATE_HOME="$SCRATCH/state"
H="$SCRATCH/hub"
hub_start "$H" --spawner-delay-users pend.old >/dev/null 2>&1 || { ok 1 "hub starts"; done_testing; exit 1; }
hub_seed "$H" --generate old:300:-100d --generate new:150 --generate stale:5::-30d --generate recent:10:-3d \
  --user 'ana.maria@example.edu,user+tag,josé,boss,edge.keep,edge.go,staffer,vip,runner,named,pend.old' \
  --activity 'ana.maria@example.edu=-200d' --activity 'user+tag=-200d' --activity 'josé=-200d' \
  --activity boss=-300d --activity edge.keep=-2159h --activity edge.go=-2161h \
  --activity staffer=-200d --activity vip=-200d --admin boss --group staff=staffer \
  --running runner --named-server named/lab2 --pending pend.old >/dev/null 2>&1
ok $? "hub seeded"
total=$(hub_count "$H")
is "$total" 476 "the hub has 476 users (more than two pages of 200)"
export JUPYTERHUB_API_TOKEN=$(cat "$JUPYTERHUB_TOKEN_FILE")
ops_mutations() { grep -cE '(DELETE|POST|PATCH|PUT) /hub/api/.*\(ops@' "$HUB_LOG"; }
# 311 of the 476 users are dormant (65%): more than the default share cap (max_percent=50, tests/29)
# allows, so the plans here say that this many is meant.
run_rb plan prune-dormant -p storage=unchecked
is "$RC" 2 "311 of 476 users: refused by the share cap without -p max_percent"
CAP=(-p max_percent=70)

# --- dry run: nothing sent that changes anything ---
run_rb run prune-dormant --dry-run -p storage=unchecked "${CAP[@]}"
is "$RC" 0 "dry run exits 0"
like "$OUT" "hub.delete_user \(311\)" "dry run plans 311 deletions"
is "$(ops_mutations)" 0 "dry run: the hub's log shows no DELETE or POST by the runbook's token"
is "$(hub_count "$H")" "$total" "dry run: the user count is unchanged"

# --- the plan: exactly the dormant users, everyone else with a reason ---
run_rb plan prune-dormant -p storage=unchecked "${CAP[@]}" --output json
is "$RC" 0 "plan --output json exits 0"
printf '%s' "$OUT" > "$SCRATCH/plan-all.json"
judge() {  # judge NAME -> "delete: REASON" or "skip: REASON"
  "$PY" - "$SCRATCH/plan-all.json" "$1" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
for a in d["actions"]:
    if a["target"] == sys.argv[2]: print("delete: " + a["reason"]); sys.exit()
for s in d["skipped"]:
    if s["target"] == sys.argv[2]: print("skip: " + s["reason"]); sys.exit()
print("absent")
PYEOF
}
expected=$( (for i in $(seq -w 0 299); do echo "old0$i"; done; for i in 0 1 2 3 4; do echo "stale000$i"; done
            printf '%s\n' 'ana.maria@example.edu' 'user+tag' 'josé' edge.go staffer vip) | sort)
got=$("$PY" -c 'import json,sys; print("\n".join(sorted(a["target"] for a in json.load(open(sys.argv[1]))["actions"])))' "$SCRATCH/plan-all.json")
is "$got" "$expected" "the planned deletions are exactly the dormant users"
is "$("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d["actions"]) + len(d["skipped"]))' "$SCRATCH/plan-all.json")" "$total" "every user is either planned or skipped"
like "$(judge old0000)" "^delete: no activity for 100 days" "old0000: deleted, no activity for 100 days"
like "$(judge stale0000)" "^delete: never active; created 30 days ago" "stale0000: never active, created 30 days ago"
like "$(judge new0000)" "^skip: new account, created .* \(grace period 7 days\)" "new0000: kept within the grace period"
like "$(judge recent0000)" "^skip: active 3 days ago" "recent0000: active 3 days ago"
is "$(judge boss)" "skip: admin" "boss: admin, kept"
is "$(judge runner)" "skip: server running" "runner: server running, kept"
like "$(judge named)" "^skip: named server 'lab2' (running|pending)" "named: named server, kept"
like "$(judge pend.old)" "^skip: server pending \(spawn\)" "pend.old: pending spawn, kept"
like "$(judge edge.keep)" "^skip: active 89 days ago" "edge.keep (89 days 23 hours): kept"
like "$(judge edge.go)" "^delete: no activity for 90 days" "edge.go (90 days 1 hour): deleted"
like "$(judge 'ana.maria@example.edu')" "^delete:" "ana.maria@example.edu: planned"
like "$(judge 'josé')" "^delete:" "josé: planned"

# --- policy: a site protects a group and a user, and caps the run ---
cat > "$SCRATCH/policy.lua" <<'LUA'
days = 90
protected_users = { "vip" }
exclude = function(user)
  for _, group in ipairs(user.groups or {}) do
    if group == "staff" then return "member of staff" end
  end
end
LUA
run_rb plan prune-dormant -p storage=unchecked "${CAP[@]}" --policy "$SCRATCH/policy.lua" --output json
printf '%s' "$OUT" > "$SCRATCH/plan-all.json"
is "$(judge staffer)" "skip: excluded by policy: member of staff" "policy exclude() keeps a group's member, with its reason"
is "$(judge vip)" "skip: protected by policy (protected_users)" "policy protected_users keeps a user"
run_rb plan prune-dormant -p storage=unchecked "${CAP[@]}" --policy "$SCRATCH/policy.lua" -p max_actions=5 --output json
printf '%s' "$OUT" > "$SCRATCH/plan-cap.json"
is "$("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d["actions"]), sum(1 for s in d["skipped"] if "cap" in s["reason"]))' "$SCRATCH/plan-cap.json")" \
   "5 304" "max_actions caps the plan; the rest are skipped with the cap as reason"

# --- apply through a proxy that makes one delete fail; drift between plan and apply ---
fault_start "${JUPYTERHUB_API_URL%/hub/api}"
run_rb plan prune-dormant -p storage=unchecked "${CAP[@]}" -p hub="$FAULT_URL" --policy "$SCRATCH/policy.lua" -o "$SCRATCH/plan.json"
is "$RC" 0 "plan through the proxy exits 0"
hub_api POST "/users/old0007/activity" "{\"last_activity\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"}" >/dev/null
hub_seed "$H" --running old0008 >/dev/null 2>&1
fault_rules '[{"method": "DELETE", "path": "/hub/api/users/old0009$", "status": 500, "body": "{\"status\": 500, \"message\": \"database is locked\"}"}]'
run_rb apply "$SCRATCH/plan.json" --yes
is "$RC" 1 "apply with one failed delete: exit 1"
like "$OUT" "FAILED +hub.delete_user old0009: hub .*: DELETE /users/old0009: HTTP 500: database is locked" "the hub's message for the failed delete"
like "$OUT" "skipped +hub.delete_user old0007: active since the plan" "a user active since the plan is skipped"
like "$OUT" "skipped +hub.delete_user old0008: server (running|pending .*) now" "a user whose server started since the plan is skipped"
like "$OUT" ": 306 done, 2 skipped, 1 failed" "the other deletions went on"
like "$OUT" "Users on the hub: 476 before the plan, 170 now" "the report gives the user count before and after"
left=$(hub_users "$H" | sort)
for name in old0007 old0008 old0009 boss runner named pend.old edge.keep staffer vip new0000 recent0000; do
  ok $(printf '%s\n' "$left" | grep -qxF -- "$name"; echo $?) "  $name is still there"
done
for name in old0000 old0299 stale0004 'ana.maria@example.edu' 'user+tag' 'josé' edge.go; do
  ok $(printf '%s\n' "$left" | grep -qxF -- "$name"; [ $? -ne 0 ]; echo $?) "  $name is gone"
done
is "$(grep -cE 'DELETE /hub/api/users/old0000 ' "$FAULT_DIR/requests.log")" 1 "each user is deleted with one request"
fault_rules '[]'
run_rb apply "$SCRATCH/plan.json" --yes
is "$RC" 2 "applying the same plan again: refused as stale (its journal shows it ran)"
like "$ERR" "this plan was applied already \(journal .*\.journal\)" "  naming the journal"
run_rb apply "$SCRATCH/plan.json" --yes --force
is "$RC" 4 "  with --force: exit 4 (the drifted users are skipped again)"
like "$OUT" ": 1 done, 306 already done, 2 skipped, 0 failed" "  the failed delete goes through; users already deleted are counted apart"
ok $(hub_users "$H" | grep -qxF old0009; [ $? -ne 0 ]; echo $?) "  old0009 is gone"

# --- -vv shows every request, never the token ---
run_rb -vv plan prune-dormant -p storage=unchecked "${CAP[@]}"
like "$ERR" "GET http://127\.0\.0\.1:[0-9]+/hub/api/users\?limit=200&offset=0 -> 200" "-vv logs each request"

# --- bad connections: clear messages, non-zero exits, nothing changed ---
before=$(hub_count "$H")
JUPYTERHUB_API_TOKEN=not-a-valid-token run_rb plan prune-dormant
is "$RC" 1 "wrong token: exit 1"; like "$ERR" "HTTP 40[13].*(does not accept the token|not valid for this hub)" "  says the token is the problem"
unlike "$ERR$OUT" "not-a-valid-token" "  the token is not printed"
run_rb plan prune-dormant -p hub="http://127.0.0.1:$(free_port)"
is "$RC" 1 "hub down: exit 1"; like "$ERR" "is the hub running" "  says the hub may be down"
kv_start ""
run_rb plan prune-dormant -p hub="$KV_URL"
is "$RC" 1 "a URL that is not a hub: exit 1"; like "$ERR" "not a JupyterHub API" "  says so"
run_rb plan prune-dormant -p hub=ftp://example.org
is "$RC" 2 "a malformed hub URL: exit 2"
JUPYTERHUB_API_TOKEN= run_rb plan prune-dormant
is "$RC" 2 "no token: exit 2"; like "$ERR" "set JUPYTERHUB_API_TOKEN or give a token file" "  says where a token comes from"
run_rb plan prune-dormant -p token=abc
is "$RC" 2 "a token on the command line is refused"
is "$(hub_count "$H")" "$before" "nothing changed"

done_testing
