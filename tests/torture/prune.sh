# Kill-and-resume for prune-dormant against a real JupyterHub. Source after tap.sh and hub.sh.
#   prune_world_start DIR        a hub with 12 dormant users (to delete) and 6 active ones (to keep)
#   prune_kill_resume POINT:N    reset the users, plan, apply killed at the crash point, resume, check
PRUNE_DORMANT=$(printf 'dead%02d ' $(seq 1 12))
PRUNE_ACTIVE=$(printf 'live%02d ' $(seq 1 6))

prune_world_start() {
  PRUNE_HUB=$1
  hub_start "$PRUNE_HUB" >/dev/null 2>&1 || return 1
  export JUPYTERHUB_API_TOKEN=$(cat "$JUPYTERHUB_TOKEN_FILE")
}

# Every user back as planned: dormant ones idle for 200 days, active ones for 1.
prune_world_reset() {
  local u json
  for u in $PRUNE_DORMANT $PRUNE_ACTIVE; do hub_api_status DELETE "/users/$u" >/dev/null; done
  json=$(printf '"%s",' $PRUNE_DORMANT $PRUNE_ACTIVE)
  hub_api POST /users "{\"usernames\": [${json%,}]}" >/dev/null
  for u in $PRUNE_DORMANT; do
    hub_api POST "/users/$u/activity" "{\"last_activity\": \"$(date -u -d '-200 days' +%Y-%m-%dT%H:%M:%SZ)\"}" >/dev/null
  done
  for u in $PRUNE_ACTIVE; do
    hub_api POST "/users/$u/activity" "{\"last_activity\": \"$(date -u -d '-1 days' +%Y-%m-%dT%H:%M:%SZ)\"}" >/dev/null
  done
  PRUNE_LOG_FROM=$(wc -l < "$HUB_LOG")
}

# The hub's answers to our DELETEs of one user since the reset: one status a line. The hub logs
#   [I 2026-11-23 09:03:19.660 JupyterHub log:186] 204 DELETE /hub/api/users/old0001 (ops@127.0.0.1) 50.01ms
prune_deletes() {
  tail -n +"$((PRUNE_LOG_FROM + 1))" "$HUB_LOG" | grep -E "\] [0-9]{3} DELETE /hub/api/users/$1 \(ops@" \
    | sed -E 's/.*\] ([0-9]{3}) DELETE.*/\1/'
}

prune_kill_resume() {
  local point=$1 dir="$SCRATCH/torture-${1//:/-}" rc journal u failures=0
  prune_world_reset
  mkdir -p "$dir"
  "$RUNBOOK" plan prune-dormant -p concurrency=3 -o "$dir/plan.json" -q >/dev/null 2>&1 || { ok 1 "$point: plan"; return; }
  { (RUNBOOK_CRASH_AT=$point exec "$RUNBOOK" apply "$dir/plan.json" --yes --journal-dir "$dir/j" >"$dir/apply.out" 2>&1); } 2>/dev/null; rc=$?
  journal=$(ls "$dir"/j/*.journal 2>/dev/null)
  if [ "$rc" -eq 137 ]; then
    "$RUNBOOK" resume "$journal" --yes >"$dir/resume.out" 2>&1; rc=$?
  fi
  [ "$rc" -eq 0 ] || { failures=1; diag "$point: exit $rc"; tail -n 5 "$dir"/*.out | sed 's/^/#   /'; }
  local left; left=$(hub_users "$PRUNE_HUB" | tr '\n' ' ')
  for u in $PRUNE_DORMANT; do
    case " $left " in *" $u "*) failures=1; diag "$point: $u survived";; esac
    [ "$(prune_deletes "$u" | grep -c 204)" -eq 1 ] || { failures=1; diag "$point: $u was not deleted exactly once: $(prune_deletes "$u" | tr '\n' ' ')"; }
  done
  for u in $PRUNE_ACTIVE; do
    case " $left " in *" $u "*) ;; *) failures=1; diag "$point: active $u was deleted";; esac
  done
  ok "$failures" "killed at $point, resumed: every dormant user deleted exactly once, every active user kept"
}
