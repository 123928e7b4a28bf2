#!/usr/bin/env bash
# Kill at any point, resume exactly once. The process kills itself with SIGKILL at a crash point
# (RUNBOOK_CRASH_AT, src/crashpoint.h): after a journal write, or when a response has arrived but
# before it was recorded. Then `runbook resume` must finish the job with every action done once.
# Here: every journal write of the engine's test runbook, and a representative set of points of
# prune-dormant against a real JupyterHub; `make torture` runs every point of every runbook.
. "$(dirname "$0")/lib/tap.sh"
. "$TOP/tests/lib/testservers.sh"
. "$TOP/tests/lib/killresume.sh"
. "$TOP/tests/lib/hub.sh"
. "$TOP/tests/torture/prune.sh"
. "$TOP/tests/lib/pg.sh"
. "$TOP/tests/lib/fake-k8s.sh"
. "$TOP/tests/torture/wipe.sh"
. "$TOP/tests/torture/reset.sh"
export RUNBOOK_PATH="$TOP/tests/runbooks" XDG_STATE_HOME="$SCRATCH/state"

# --- the engine: every journal write (1 plan line + 2 per action + finish = 10 for 4 actions) ---
# Each point must be reached (exit 137 and its marker). Then, from the journal copied at the kill and
# every DELETE the server saw (any status: the runbook counts 404 as done, so a repeated deletion
# answers 404 and would hide from a count of 204s): no finished action started or requested again.
kv_kill_resume() {
  local n=$1 dir="$SCRATCH/kv-$1" rc journal problems failures=0
  for k in k1 k2 k3 k4; do kv_put "tmp-$k" 1; done
  : > "$KV_DIR/requests.log"
  mkdir -p "$dir"
  run_rb plan kv-prune -o "$dir/plan.json"
  { (RUNBOOK_CRASH_AT=journal:$n exec "$RUNBOOK" apply "$dir/plan.json" --yes --journal-dir "$dir/j" >"$dir/apply.out" 2>&1); } 2>/dev/null; rc=$?
  journal=$(ls "$dir"/j/*.journal 2>/dev/null)
  if ! kr_killed "$rc" "$dir/apply.out" "journal:$n"; then
    ok 1 "kv-prune killed after journal write $n (not killed there: exit $rc)"; sed 's/^/#   /' "$dir/apply.out"; return
  fi
  cp "$journal" "$dir/at-kill.journal"
  "$RUNBOOK" resume "$journal" --yes >"$dir/resume.out" 2>&1; rc=$?
  [ "$rc" -eq 0 ] || { failures=1; diag "resume exit $rc"; tail -n 5 "$dir/resume.out" | sed 's/^/#   /'; }
  [ -z "$(kv_keys)" ] || { failures=1; diag "keys left: $(kv_keys)"; }
  sed -nE 's#^DELETE /keys/([^ ]+) ([0-9]+)$#\1 \2#p' "$KV_DIR/requests.log" > "$dir/deletes"
  problems=$(kr_exactly_once "$dir/at-kill.journal" "$journal" --point "journal:$n" --kind kv.delete --requests "$dir/deletes")
  [ $? -eq 0 ] || { failures=1; printf '%s\n' "$problems" | sed 's/^/#   /'; }
  ok "$failures" "kv-prune killed after journal write $n ($(printf '%s\n' "$problems" | tail -n 1)), resumed: each key deleted once, nothing finished repeated"
}
kv_start ""
for n in $(seq 1 10); do kv_kill_resume "$n"; done

# --- prune-dormant on a real hub ---
command -v jupyterhub >/dev/null || { diag "jupyterhub is not installed"; done_testing; exit; }
prune_world_start "$SCRATCH/hub" || { ok 1 "hub starts"; done_testing; exit 1; }
# journal writes: 1 (plan) + 2 x 12 actions + 1 (finish) = 26; http responses: 24 (a GET and a DELETE each)
for point in journal:1 journal:2 journal:9 journal:25 journal:26 http-response:1 http-response:12 http-response:24; do
  prune_kill_resume "$point"
done

# --- wipe-hub-db: right after access is cut, in the middle of a COPY backup, between the drop and its
# end line, and before access is restored (journal: 1 plan + 2 x 9 actions + finish) ---
wipe_world_start "$SCRATCH/wipe" || { ok 1 "the wipe-hub-db world starts"; done_testing; exit 1; }
for point in journal:5 backup-write:2 journal:13 journal:18; do
  wipe_kill_resume "$point"
done

# --- reset-sqlite over hub-a and hub-b (journal: 1 plan + 2 x 6 actions + finish; tests/torture/reset.t
# runs every point): after hub-a's removal started, in the middle of the exec stream copying hub-a's
# database out (a partial file left behind), when the rollout's PATCH was answered but not recorded,
# and after hub-b's removal ended, before its restart ---
reset_world_start "$SCRATCH/reset" || { ok 1 "the reset-sqlite world starts"; done_testing; exit 1; }
for point in journal:4 backup-write:150 http-response:5 journal:11; do
  reset_kill_resume "$point"
done
done_testing
