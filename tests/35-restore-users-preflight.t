#!/usr/bin/env bash
# restore-users checks at plan time that apply may do what it plans, as prune-dormant does: the hub
# token's scopes (GET /hub/api/user, a real JupyterHub 3.0) for creating each user (admin:users), putting
# them back in their groups (groups, group by group) and setting their last activity (users:activity),
# and the Kubernetes permissions for attaching the kept volumes again (SelfSubjectAccessReview on the fake
# API server: create persistentvolumeclaims, patch persistentvolumes). A token or a context that lacks one
# is refused with exit 2 and one message, and nothing is changed; a sufficient one plans.
. "$(dirname "$0")/lib/tap.sh"
. "$TOP/tests/lib/fake-k8s.sh"
. "$TOP/tests/lib/hub.sh"
. "$TOP/tests/lib/z2jh.sh"
unset RUNBOOK_PATH JUPYTERHUB_API_TOKEN
export XDG_STATE_HOME="$SCRATCH/state"
NS=jhub
# The token prunes (delete:users) but may not create users, nor manage groups, nor set activity.
PRUNE_SCOPES=delete:users,list:users,read:users,read:servers,read:hub
z2jh_start "$NS" --ops-scopes "$PRUNE_SCOPES"
hub_seed "$SCRATCH/hub" --user 'r1,r2,r3,live' --activity r1=-200d --activity r2=-200d --activity r3=-200d \
  --activity live=-1d --admin r1 --group crew=r1,r2 --claims r1,r2,live >/dev/null 2>&1
ok $? "seeded: r1 (admin), r2 in group crew with claims, r3 without, live active"
run_rb run prune-dormant -p "token_file=$JUPYTERHUB_TOKEN_FILE" -p grace_days=0 -p include_admins=true "${KC[@]}" --yes \
  --journal-dir "$SCRATCH/pj"
is "$RC" 0 "prune-dormant deletes r1, r2, r3 with a token that may not create users"
journal=$(ls "$SCRATCH"/pj/prune-dormant-*.journal)
R=(-p from="$journal" -p "token_file=$JUPYTERHUB_TOKEN_FILE")
LOG_FROM=$(wc -l < "$HUB_LOG")
# The runbook's writes to the hub since the prune (the harness's own requests show as harness@).
hub_writes() { tail -n +"$((LOG_FROM + 1))" "$HUB_LOG" | grep -cE '\] [0-9]{3} (POST|PATCH|PUT|DELETE) /hub/api/.*\(ops@'; }
mutating() { fake_k8s_requests 'r.get("mutating")' | wc -l; }
# The lines of the refusal that name what the token lacks.
lacking() { printf '%s\n' "$ERR" | sed -n '/it lacks$/,/^The token/p' | grep '^  '; }
absent() { ! hub_users "$SCRATCH/hub" | grep -qxE 'r1|r2|r3'; }

# --- the same token: refused, naming each scope, for how many users, who the token is, what to grant
m0=$(mutating)
run_rb plan restore-users "${R[@]}" "${KC[@]}" -o "$SCRATCH/r.json"
is "$RC" 2 "a token without admin:users: restore-users plan refused, exit 2"
like "$ERR" "^runbook: the hub token cannot do what apply would do: it lacks$" "  one message"
is "$(lacking)" "  admin:users, for 3 of the 3 users to re-create (r1, r2, r3)
  groups (or admin:groups), for 2 of the 2 users to put back in their groups (r1, r2)
  users:activity (or users or admin:users), for 3 of the 3 users whose last activity is restored (r1, r2, r3)" \
  "  names each missing scope (and what holds it), for how many of the users, which"
like "$ERR" "The token belongs to service 'ops'; its scopes: .*delete:users" "  who the token belongs to, and its scopes"
like "$ERR" 'c\.JupyterHub\.load_roles = \[\{"name": "restore-users", "scopes": \["admin:users", "groups"\], "services": \["ops"\]\}\]' \
  "  the role to grant"
like "$ERR" "Nothing was changed\.$" "  and that nothing was changed"
unlike "$ERR" "traceback|\.lua:[0-9]+" "  one message, no traceback"
[ ! -e "$SCRATCH/r.json" ]; ok $? "  no plan file"
run_rb run restore-users "${R[@]}" "${KC[@]}" --yes --journal-dir "$SCRATCH/j"
is "$RC" 2 "run --yes with that token: exit 2 before anything"
is "$(hub_writes)" 0 "  the hub's log has no write by the runbook"
absent; ok $? "  r1, r2, r3 are still gone"
is "$(mutating)" "$m0" "  and no mutating request reached the cluster"

# --- may create users and read groups, but not add members: only groups is named
hub_restart "$SCRATCH/hub" --ops-scopes "$PRUNE_SCOPES,admin:users,read:groups" >/dev/null 2>&1 || ok 1 "hub restarts"
run_rb plan restore-users "${R[@]}" "${KC[@]}"
is "$RC" 2 "admin:users without groups: refused"
is "$(lacking)" "  groups (or admin:groups), for 2 of the 2 users to put back in their groups (r1, r2)" "  names only groups"
# groups on group crew only: the one group the users are put back in
hub_restart "$SCRATCH/hub" --ops-scopes "$PRUNE_SCOPES,admin:users,groups!group=crew" >/dev/null 2>&1 || ok 1 "hub restarts"
run_rb plan restore-users "${R[@]}" "${KC[@]}"
is "$RC" 0 "groups!group=crew, the users' only group: the plan goes through"
like "$OUT" "hub permissions +checked: the token may create the users" "  and says the scopes were checked"

# --- Kubernetes: the readonly context may not create the claims nor patch the volumes
hub_restart "$SCRATCH/hub" --ops-scopes "$PRUNE_SCOPES,admin:users,groups" >/dev/null 2>&1 || ok 1 "hub restarts"
m0=$(mutating)
run_rb plan restore-users "${R[@]}" "${KC[@]}" --context readonly -o "$SCRATCH/r.json"
is "$RC" 2 "readonly context, volumes to attach: refused at plan time"
like "$ERR" "Kubernetes user 'readonly' \(context readonly\) may not do what apply would do to attach" "  names the context"
like "$ERR" "create persistentvolumeclaims in namespace $NS: to create each claim again under its old name, for 2 of the 2 volumes" \
  "  names create on persistentvolumeclaims, for the 2 volumes"
like "$ERR" "patch persistentvolumes \(cluster-wide\): to free each volume" "  and patch on persistentvolumes"
like "$ERR" "-p reattach=false" "  and the way to restore only the users"
unlike "$ERR" "get persistentvolume" "  not the reads it may do"
like "$(fake_k8s_requests 'r["path"].endswith("/selfsubjectaccessreviews")')" '"user": ?"readonly-user"' \
  "  asked as readonly-user, on the fake API server"
[ ! -e "$SCRATCH/r.json" ]; ok $? "  no plan file"
run_rb plan restore-users "${R[@]}" "${KC[@]}" --context readonly -p reattach=false --output json
is "$RC" 0 "readonly context with reattach=false: the plan goes through"
is "$("$PY" -c 'import json,sys; print(" ".join(sorted(a["kind"] + ":" + a["target"] for a in json.load(sys.stdin)["actions"])))' <<<"$OUT")" \
  "hub.create_user:r1 hub.create_user:r2 hub.create_user:r3" "  only the users"
run_rb plan restore-users "${R[@]}" "${KC[@]}" -o "$SCRATCH/r.json"
is "$RC" 0 "admin context and a sufficient token: the plan"
like "$OUT" "storage permissions +checked \(SelfSubjectAccessReview\): get persistentvolumes \(cluster-wide\), patch persistentvolumes \(cluster-wide\), get persistentvolumeclaims in namespace $NS, create persistentvolumeclaims in namespace $NS" \
  "  and says what was checked"
like "$(printf '%s\n' "$OUT" | tail -n 1)" "^Plan: 3 users re-created; 2 home directories re-attached \(5 actions\)$" "  3 users, 2 volumes"
is "$(mutating):$(hub_writes)" "$m0:0" "planning changed nothing, on the cluster or the hub"
run_rb apply "$SCRATCH/r.json" --yes --journal-dir "$SCRATCH/j"
is "$RC" 0 "apply: exit 0"
like "$(hub_api GET /users/r1)" '"admin": true' "r1 is back, an admin"
like "$(hub_api GET /users/r2)" '"crew"' "r2 is back in group crew"

done_testing
