# Kill-and-resume for prune-dormant against a real JupyterHub. Source after tap.sh and hub.sh.
#   prune_world_start DIR        a hub with 12 dormant users (to delete) and 6 active ones (to keep)
#   prune_kill_resume POINT:N    reset the users, plan, apply killed at the crash point, resume, check
. "$TOP/tests/lib/killresume.sh"
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

# Every mutating request of the runbook (the ops token) to a user since the reset, as the hub logged
# it, whatever its answer: "NAME STATUS" a line. The hub logs each request when it has answered:
#   [I 2026-11-23 09:03:19.660 JupyterHub log:186] 204 DELETE /hub/api/users/old0001 (ops@127.0.0.1) 50.01ms
prune_mutations() {
  tail -n +"$((PRUNE_LOG_FROM + 1))" "$HUB_LOG" \
    | sed -nE 's#.*\] ([0-9]{3}) (DELETE|POST|PATCH|PUT) /hub/api/users/([^ /?]+)[^ ]* \(ops@.*#\3 \1#p'
}

# The crash point must be reached (exit 137 and its marker): an apply that finishes instead fails.
# Exactly once is judged by tests/lib/exactly_once.py from the journal copied at the kill and the
# hub's log: a user whose deletion was recorded before the kill gets no second start line and no
# second request (a second DELETE would answer 404, which the runbook takes for done: a count of 204s
# alone cannot see it); one in flight at the kill may be asked once more, and deleted once.
prune_kill_resume() {
  local point=$1 dir="$SCRATCH/torture-${1//:/-}" rc journal u failures=0 problems
  prune_world_reset
  mkdir -p "$dir"
  "$RUNBOOK" plan prune-dormant -p concurrency=3 -o "$dir/plan.json" -q >/dev/null 2>&1 || { ok 1 "$point: plan"; return; }
  { (RUNBOOK_CRASH_AT=$point exec "$RUNBOOK" apply "$dir/plan.json" --yes --journal-dir "$dir/j" >"$dir/apply.out" 2>&1); } 2>/dev/null; rc=$?
  journal=$(ls "$dir"/j/*.journal 2>/dev/null)
  if ! kr_killed "$rc" "$dir/apply.out" "$point"; then
    ok 1 "prune-dormant killed at $point (not killed there: exit $rc)"; tail -n 5 "$dir/apply.out" | sed 's/^/#   /'; return
  fi
  cp "$journal" "$dir/at-kill.journal"
  "$RUNBOOK" resume "$journal" --yes >"$dir/resume.out" 2>&1; rc=$?
  [ "$rc" -eq 0 ] || { failures=1; diag "$point: resume exit $rc"; tail -n 5 "$dir/resume.out" | sed 's/^/#   /'; }
  local left; left=$(hub_users "$PRUNE_HUB" | tr '\n' ' ')
  for u in $PRUNE_DORMANT; do
    case " $left " in *" $u "*) failures=1; diag "$point: $u survived";; esac
  done
  for u in $PRUNE_ACTIVE; do
    case " $left " in *" $u "*) ;; *) failures=1; diag "$point: active $u was deleted";; esac
  done
  prune_mutations > "$dir/mutations"
  grep -E "^live" "$dir/mutations" | sed "s/^/#   $point: a request for an active user: /"
  grep -qE "^live" "$dir/mutations" && failures=1
  problems=$(kr_exactly_once "$dir/at-kill.journal" "$journal" --point "$point" --kind hub.delete_user --requests "$dir/mutations")
  [ $? -eq 0 ] || { failures=1; printf '%s\n' "$problems" | sed "s/^/#   $point: /"; }
  ok "$failures" "killed at $point ($(printf '%s\n' "$problems" | tail -n 1)), resumed: every dormant user deleted once, nothing finished repeated, every active user kept"
}
