#!/usr/bin/env bash
# prune-dormant helps decide: what-if counts by threshold (checked against separate plans with those
# days), left-alone groups by activity range and reason, the share cap (max_percent) and its override
# recorded in the plan, the note for a low threshold, the hub-scope pre-flight (a read-only token is
# refused at plan time, nothing deleted; a scope filtered to a group is checked user by user), the
# Kubernetes pre-flight (SelfSubjectAccessReview on the fake API server, readonly context refused for
# storage=retain), and the effect lines of prune-dormant and restore-users.
. "$(dirname "$0")/lib/tap.sh"
. "$TOP/tests/lib/fake-k8s.sh"
. "$TOP/tests/lib/hub.sh"
. "$TOP/tests/lib/z2jh.sh"
command -v jupyterhub >/dev/null || skip_all "jupyterhub is not installed"
unset RUNBOOK_PATH JUPYTERHUB_API_TOKEN JUPYTERHUB_API_URL
export XDG_STATE_HOME="$SCRATCH/state"
py() { "$PY" -c "import json,sys; d=json.loads(sys.stdin.read()); print($1)"; }

# --- a hub with known activity ages, far from every threshold's edge:
#   20 active 3 days ago, 6 45 days ago, 7 100 days ago, 8 200 days ago, 9 400 days ago,
#   3 never active created 30 days ago (past the 7-day grace), 2 never active created now,
#   an admin and a member of group staff idle 500 days, a user with a running server: 58 users.
M="$SCRATCH/main"
hub_start "$M" >/dev/null 2>&1 || { ok 1 "hub starts"; done_testing; exit 1; }
hub_seed "$M" --generate a3d:20:-3d --generate a45d:6:-45d --generate a100d:7:-100d --generate a200d:8:-200d \
  --generate a400d:9:-400d --generate stale:3::-30d --generate new:2 --user boss,staffer,runner \
  --activity boss=-500d --activity staffer=-500d --admin boss --group staff=staffer --running runner >/dev/null 2>&1
ok $? "hub seeded"
is "$(hub_count "$M")" 58 "58 users"
MAIN=(-p "hub=$JUPYTERHUB_API_URL" -p "token_file=$JUPYTERHUB_TOKEN_FILE")
cat > "$SCRATCH/policy.lua" <<'LUA'
exclude = function(user)
  for _, group in ipairs(user.groups or {}) do
    if group == "staff" then return "member of staff" end
  end
end
LUA
POLICY=(--policy "$SCRATCH/policy.lua")

# --- what-if: one plan counts every threshold, in JSON and in text
# with the policy (staffer excluded): 30 days: 6+7+8+9+3 = 33, 90: 27, 180: 20, 365: 12
run_rb plan prune-dormant "${MAIN[@]}" "${POLICY[@]}" --output json
is "$RC" 0 "plan (days=90, policy) exits 0"
printf '%s' "$OUT" > "$SCRATCH/p90.json"
is "$(py '[r["days"] for r in d["facts"]["what_if"]]' <<<"$OUT")" "[30, 90, 180, 365]" "JSON: what_if has rows for 30, 90, 180, 365"
is "$(py '[r["would_delete"] for r in d["facts"]["what_if"]]' <<<"$OUT")" "[33, 27, 20, 12]" "JSON: each row has its threshold's count"
is "$(py 'd["facts"]["what_if_never_active"]' <<<"$OUT")" 3 "JSON: 3 never active past the grace period, in every count"
is "$(py 'len(d["actions"])' <<<"$OUT")" 27 "  and the plan itself deletes the 90-day count"
left=$(py 'd["facts"]["what_if_left_alone"]' <<<"$OUT")
for g in "admin 1" "server running 1" "excluded by policy 1" "created within the grace period 2"; do
  like "$left" "(^|, )$g(,|$)" "  left alone at every threshold: $g"
done
like "$(py 'd["facts"]["what_if_counted"]' <<<"$OUT")" "site policy is honoured at every threshold" \
  "  says the site policy is honoured in every count"
run_rb plan prune-dormant "${MAIN[@]}" "${POLICY[@]}"
like "$OUT" $'\n  what if:\n    DAYS +WOULD DELETE\n    30 +33\n    90 +27\n    180 +20\n    365 +12\n' "text: a what-if table under Found:"
# the table is only as good as its agreement with real plans: plan each threshold and compare
for i in 0 1 2 3; do
  days=$(py "d['facts']['what_if'][$i]['days']" < "$SCRATCH/p90.json")
  want=$(py "d['facts']['what_if'][$i]['would_delete']" < "$SCRATCH/p90.json")
  run_rb plan prune-dormant "${MAIN[@]}" "${POLICY[@]}" -p days="$days" -p max_percent=100 --output json
  is "$RC:$(py 'len(d["actions"])' <<<"$OUT")" "0:$want" "a plan with days=$days deletes $want users, as the what-if said"
done
# a chosen days outside the list is counted too, in its place
run_rb plan prune-dormant "${MAIN[@]}" "${POLICY[@]}" -p days=150 --output json
is "$(py '[r["days"] for r in d["facts"]["what_if"]], [r["would_delete"] for r in d["facts"]["what_if"]], len(d["actions"])' <<<"$OUT")" \
  "[30, 90, 150, 180, 365] [33, 27, 20, 20, 12] 20" "days=150 joins the table, with the plan's own count"
# without the policy, staffer (idle 500 days) counts at every threshold
run_rb plan prune-dormant "${MAIN[@]}" --output json
is "$(py '[r["would_delete"] for r in d["facts"]["what_if"]]' <<<"$OUT")" "[34, 28, 21, 13]" "without the policy, every count has staffer too"

# --- groups in the Left alone listing: by activity range relative to days, and by reason
run_rb plan prune-dormant "${MAIN[@]}" "${POLICY[@]}"
like "$OUT" $'\n  active within 7 days \\(20\\)' "left alone: active within 7 days (20)"
like "$OUT" $'\n  active 30 to 90 days ago \\(6\\)' "left alone: active 30 to 90 days ago (6), apart from them"
like "$OUT" $'\n  created within the grace period \\(2\\)' "left alone: created within the grace period (2)"
like "$OUT" $'\n  admin \\(1\\)' "left alone: admin (1)"
like "$OUT" $'\n  server running \\(1\\)' "left alone: server running (1)"
like "$OUT" $'\n  excluded by policy \\(1\\)' "left alone: excluded by policy (1)"
like "$OUT" "a45d0000 +active 45 days ago" "  each user keeps their own reason"
run_rb plan prune-dormant "${MAIN[@]}" "${POLICY[@]}" -p days=365 --output json
is "$(py 'sorted({s.get("group", "") for s in d["skipped"] if s["target"].startswith("a")})' <<<"$OUT")" \
  "['active 180 to 365 days ago', 'active 30 to 90 days ago', 'active 90 to 180 days ago', 'active within 7 days']" \
  "days=365: ranges up to 365 days, in the skipped items' group field"

# --- the share cap: days=30 would take 34 of 58 users (59%) > max_percent=50
before=$(hub_count "$M")
run_rb plan prune-dormant "${MAIN[@]}" -p days=30 -o "$SCRATCH/p30.json"
is "$RC" 2 "days=30 (34 of 58 users): refused, exit 2"
like "$ERR" "days=30 would delete 34 of the hub's 58 users \(59%\), more than max_percent=50 allows \(29 users\)" \
  "  the message names the numbers and the parameter"
like "$ERR" "30 days: 34, 90 days: 28, 180 days: 21, 365 days: 13" "  and what each threshold would delete"
like "$ERR" "\-p max_percent=59" "  and the override that would pass"
unlike "$ERR" "traceback|\.lua:[0-9]+" "  one message, no traceback"
[ ! -e "$SCRATCH/p30.json" ]; ok $? "  no plan file written"
run_rb run prune-dormant "${MAIN[@]}" -p days=30 --yes
is "$RC:$(hub_count "$M")" "2:$before" "  run --yes is refused the same way, nobody deleted"
run_rb plan prune-dormant "${MAIN[@]}" -p days=30 -p max_percent=59 -o "$SCRATCH/p30.json"
is "$RC" 0 "-p max_percent=59: the plan goes through"
is "$(py 'd["params"]["max_percent"], d["param_sources"].get("max_percent"), len(d["actions"])' < "$SCRATCH/p30.json")" \
  "59 command line 34" "  the saved plan records max_percent=59 and where it came from"
like "$(py 'd["facts"]["share_of_hub"]' < "$SCRATCH/p30.json")" "^34 of 58 users \(59%\); limit: max_percent=59" \
  "  and the share it deletes"
run_rb plan prune-dormant "${MAIN[@]}" -p days=30 -p max_actions=5
is "$RC" 2 "max_actions=5 does not lift the cap: it spreads a selection over runs, the selection is what is judged"

# --- a low threshold is said
run_rb plan prune-dormant "${MAIN[@]}" -p days=20 -p max_percent=100
is "$RC" 0 "days=20 with max_percent=100: the plan"
like "$OUT" "Note: days=20 is unusually low" "  with a note that days=20 is unusually low"
run_rb plan prune-dormant "${MAIN[@]}" "${POLICY[@]}" -p days=30 -p max_percent=100
unlike "$OUT" "unusually low" "days=30: no such note"

# --- the effect line
run_rb plan prune-dormant "${MAIN[@]}" "${POLICY[@]}"
like "$(printf '%s\n' "$OUT" | tail -n 1)" "^Plan: 27 users deleted \(27 actions\)$" "the plan's last line: 27 users deleted"
run_rb plan prune-dormant "${MAIN[@]}" "${POLICY[@]}" -p storage=unchecked --output json
is "$(py 'd["effect"]' <<<"$OUT")" "['27 users deleted', 'storage not checked']" "storage=unchecked: the effect says storage was not checked"

# --- hub scopes: a read-only token is refused at plan time, and run --yes deletes nobody
R="$SCRATCH/readonly"
hub_start "$R" --ops-scopes list:users,read:users,read:servers,read:hub >/dev/null 2>&1 || ok 1 "read-only hub starts"
hub_seed "$R" --generate old:5:-200d --user 'students.a,students.b' --activity 'students.a=-200d' \
  --activity 'students.b=-200d' --group 'students=students.a,students.b' >/dev/null 2>&1
RO=(-p "hub=$JUPYTERHUB_API_URL" -p "token_file=$JUPYTERHUB_TOKEN_FILE")
run_rb plan prune-dormant "${RO[@]}" -o "$SCRATCH/ro.json"
is "$RC" 2 "a token without delete:users: the plan is refused, exit 2"
like "$ERR" "lacks"$'\n'"  delete:users \(or admin:users\), for 7 of the 7 users to delete" "  names the missing scope and how many users need it"
like "$ERR" "The token belongs to service 'ops'; its scopes: .*list:users" "  names the token and the scopes it has"
like "$ERR" 'c\.JupyterHub\.load_roles = \[\{"name": "prune-dormant", "scopes": \["admin:users", .*"services": \["ops"\]\}\]' \
  "  and how to grant them: the service's role in jupyterhub_config.py"
[ ! -e "$SCRATCH/ro.json" ]; ok $? "  no plan file"
run_rb run prune-dormant "${RO[@]}" --yes
is "$RC" 2 "run --yes with that token: exit 2 before anything"
is "$(grep -cE '\] [0-9]{3} DELETE /hub/api/' "$HUB_LOG")" 0 "  the hub's log has no DELETE at all"
is "$(hub_count "$R")" 7 "  all 7 users still there"
hub_stop "$R"
# delete:users on group students only: the other five are named
hub_start "$SCRATCH/group" --ops-scopes 'list:users,read:users,read:servers,read:hub,delete:users!group=students' >/dev/null 2>&1 ||
  ok 1 "hub with a filtered scope starts"
hub_seed "$SCRATCH/group" --generate old:5:-200d --user 'students.a,students.b' --activity 'students.a=-200d' \
  --activity 'students.b=-200d' --group 'students=students.a,students.b' >/dev/null 2>&1
GR=(-p "hub=$JUPYTERHUB_API_URL" -p "token_file=$JUPYTERHUB_TOKEN_FILE")
run_rb plan prune-dormant "${GR[@]}"
is "$RC" 2 "delete:users!group=students: refused for the users outside the group"
like "$ERR" "delete:users \(or admin:users\), for 5 of the 7 users to delete \(old0000, old0001, old0002, old0003, old0004\)" \
  "  names the 5 users outside the group"
run_rb plan prune-dormant "${GR[@]}" --policy <(printf 'exclude = function(u) return u.name:sub(1, 3) == "old" end\n')
is "$RC" 0 "  the same token, planning only the group's users: the plan goes through"
like "$OUT" "hub permissions +checked" "  and says the permissions were checked"
is "$(grep -cE '\] [0-9]{3} DELETE /hub/api/' "$HUB_LOG")" 0 "  nothing deleted by planning"
hub_stop "$SCRATCH/group"

# --- Kubernetes: the storage calls apply makes are asked with SelfSubjectAccessReview at plan time
NS=jhub
z2jh_start "$NS" --ops-scopes admin:users,admin:servers,list:users,read:users,users:activity,read:hub,groups
hub_seed "$SCRATCH/hub" --user 'k1,k2,live' --activity k1=-200d --activity k2=-200d --activity live=-1d \
  --claims k1,k2,live >/dev/null 2>&1
Z=(-p "token_file=$JUPYTERHUB_TOKEN_FILE" --kubeconfig "$KUBECONFIG_FILE" -n "$NS")
mutating() { fake_k8s_requests 'r.get("mutating")' | wc -l; }
m0=$(mutating)
run_rb plan prune-dormant "${Z[@]}" --context readonly
is "$RC" 2 "readonly context, storage=retain: refused at plan time"
like "$ERR" "Kubernetes user 'readonly' \(context readonly\) may not do what apply would do" "  names the context"
like "$ERR" "patch persistentvolumes \(cluster-wide\): to set each volume to reclaim policy Retain" "  and the missing permission, and why"
like "$ERR" "deploy/rbac\.yaml" "  and where the rules are"
like "$(fake_k8s_requests 'r["path"].endswith("/selfsubjectaccessreviews")')" '"user": ?"readonly-user"' \
  "  asked as readonly-user, on the fake API server"
run_rb plan prune-dormant "${Z[@]}" --context readonly -p storage=delete
is "$RC" 0 "readonly context, storage=delete (only reads): the plan goes through"
run_rb plan prune-dormant "${Z[@]}" -o "$SCRATCH/z.json"
is "$RC" 0 "admin context: the plan goes through"
like "$OUT" "storage permissions +checked \(SelfSubjectAccessReview\): get persistentvolumeclaims in namespace $NS, get persistentvolumes \(cluster-wide\), patch persistentvolumes \(cluster-wide\)" \
  "  and says what was checked"
like "$(printf '%s\n' "$OUT" | tail -n 1)" "^Plan: 2 users deleted; 2 home directories kept \(volumes set to Retain\) \(2 actions\)$" \
  "  effect: 2 users deleted; 2 home directories kept"
is "$(mutating)" "$m0" "planning sent no mutating request to the cluster (the access reviews are questions)"
run_rb plan prune-dormant "${Z[@]}" -p storage=delete --output json
is "$(py 'd["effect"]' <<<"$OUT")" "['2 users deleted', '2 home directories deleted with their users']" \
  "storage=delete: the effect says the home directories go with their users"
run_rb apply "$SCRATCH/z.json" --yes --journal-dir "$SCRATCH/j"
is "$RC" 0 "apply (storage=retain)"
journal=$(ls "$SCRATCH"/j/prune-dormant-*.journal)
run_rb plan restore-users -p from="$journal" -p "token_file=$JUPYTERHUB_TOKEN_FILE" --kubeconfig "$KUBECONFIG_FILE" -n "$NS"
is "$RC" 0 "restore-users plan"
like "$(printf '%s\n' "$OUT" | tail -n 1)" "^Plan: 2 users re-created; 2 home directories re-attached \(4 actions\)$" \
  "  effect: 2 users re-created; 2 home directories re-attached"

done_testing
