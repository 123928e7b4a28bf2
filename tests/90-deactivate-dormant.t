#!/usr/bin/env bash
# deactivate-dormant, mode api, against the fake GitLab API (tests/fake-gitlab): 300 active humans in three
# keyset pages; the expected set is deactivated and nobody else (bots, internal users, admins, blocked
# and deactivated users, new accounts in their grace period, the 90-day and 7-day boundaries, recent
# sign-ins, site policy); caps per run and per day; drift between plan and apply; GitLab's 403 as a
# skip; 429 with Retry-After; a kill at any point and resume; a dry run sends nothing that changes.
. "$(dirname "$0")/lib/tap.sh"
. "$TOP/tests/lib/fake-gitlab.sh"
. "$TOP/tests/lib/testservers.sh"
export XDG_STATE_HOME="$SCRATCH/state"
ADMIN_TOKEN=glpat-admin-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
TEST_SECRETS+=("$ADMIN_TOKEN")   # done_testing checks that no output, plan or journal holds it
midnight() { date -u -d "$1 days ago" +%FT00:00:00Z; }

# --- the world: GitLab with every kind of user ---
cat > "$SCRATCH/state.json" <<EOF
{"tokens": {"$ADMIN_TOKEN": "root", "glpat-user-token": "plain.user"},
 "users": [
  {"username": "root", "is_admin": true, "last_activity_on": "-1d"},
  {"username": "plain.user", "last_activity_on": "-1d"},
  {"username": "old.admin", "is_admin": true, "last_activity_on": "-300d"},
  {"username": "blocked.old", "state": "blocked", "last_activity_on": "-300d"},
  {"username": "banned.old", "state": "banned", "last_activity_on": "-300d"},
  {"username": "deactivated.old", "state": "deactivated", "last_activity_on": "-300d"},
  {"username": "ghost", "user_type": "ghost", "last_activity_on": null},
  {"username": "support-bot", "user_type": "support_bot", "last_activity_on": null},
  {"username": "alert-bot", "user_type": "alert_bot", "last_activity_on": null},
  {"username": "project_42_bot", "user_type": "project_bot", "last_activity_on": "-200d"},
  {"username": "service_account_ci", "user_type": "service_account", "last_activity_on": "-200d"},
  {"username": "edge.go", "last_activity_on": "-90d"},
  {"username": "edge.keep", "last_activity_on": "-89d"},
  {"username": "never.go", "last_activity_on": null, "created_at": "$(midnight 7)"},
  {"username": "never.keep", "last_activity_on": null, "created_at": "$(date -u -d '7 days ago' +%F)T00:00:01Z"},
  {"username": "signed.in", "last_activity_on": "-200d", "current_sign_in_at": "-2d"},
  {"username": "staffer", "last_activity_on": "-200d"},
  {"username": "vip", "last_activity_on": "-200d"}
 ],
 "generate": [
  {"prefix": "old", "count": 230, "last_activity_on": "-100d"},
  {"prefix": "stale", "count": 5, "last_activity_on": null, "created_at": "-30d"},
  {"prefix": "new", "count": 12, "last_activity_on": null, "created_at": "-2d"},
  {"prefix": "recent", "count": 43, "last_activity_on": "-3d"}
 ]}
EOF
gitlab_start "$SCRATCH/gl" "$SCRATCH/state.json" || { ok 1 "fake GitLab starts"; done_testing; exit 1; }
export GITLAB_URL GITLAB_TOKEN=$ADMIN_TOKEN
posts() { gitlab_requests 'r["method"] == "POST"' | wc -l | tr -d ' '; }
state_of() { gitlab_state "$1" state; }

# --- show: the policy explained ---
run_rb show deactivate-dormant
is "$RC" 0 "show exits 0"
for phrase in "90" "minimum of 90" "grace_days" "bots" "internal users" "admins" "max_per_day" "100,000" \
              "keyset" "403" "reactivated" "delete-dormant-db" "protected_users" "exclude"; do
  like "$OUT" "$phrase" "  it explains: $phrase"
done
for gone in "database_url" "batch_size" "backup_dir" "deployment" "statement_timeout" "mode" "DELETE" "api:"; do
  unlike "$OUT" "$gone" "  and nothing of the database procedure, now delete-dormant-db: no $gone"
done

# --- the database mode is a runbook of its own now: asking for it here says which ---
run_rb plan deactivate-dormant -p mode=database -p database_url=postgresql://hub@127.0.0.1/jupyterhub
is "$RC" 2 "-p mode=database: a usage error (exit 2)"
like "$ERR" "deactivate-dormant no longer takes mode=database: that mode is now the runbook delete-dormant-db" \
  "  naming the runbook that does it"
is "$(printf '%s\n' "$ERR" | wc -l | tr -d ' ')" 1 "  in one line, no traceback"
run_rb plan deactivate-dormant -p mode=api --output json
is "$RC" 0 "-p mode=api, what the runbook does, is still taken"
unlike "$OUT" '"mode"' "  and is no parameter of the plan"

# --- dry run: nothing that changes anything is sent ---
run_rb run deactivate-dormant --dry-run
is "$RC" 0 "dry run exits 0"
like "$OUT" "gitlab.deactivate_user \(239\)" "dry run plans 239 deactivations"
is "$(printf '%s\n' "$OUT" | tail -n 1)" "Plan: 239 users deactivated (each reactivated at their next sign-in) (239 actions)" \
   "  the plan's last line states its effect in users"
is "$(posts)" 0 "dry run: no POST reached GitLab"
unlike "$OUT$ERR" "$ADMIN_TOKEN" "the token appears nowhere"

# --- -vv shows every request, never the token ---
run_rb -vv plan deactivate-dormant
like "$ERR" "GET http://127\.0\.0\.1:[0-9]+/api/v4/users\?active=true&exclude_internal=true&humans=true&order_by=id&pagination=keyset&per_page=100&sort=asc&without_project_bots=true -> 200" \
     "-vv logs each request"

# --- the plan: exactly the dormant users; keyset pages followed through the Link header ---
: > "$GITLAB_DIR/requests.log"
run_rb plan deactivate-dormant --output json
is "$RC" 0 "plan --output json exits 0"
printf '%s' "$OUT" > "$SCRATCH/plan-all.json"
judge() {  # judge NAME -> "go: REASON" | "keep: REASON" | "absent"
  "$PY" - "$SCRATCH/${2:-plan-all.json}" "$1" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
for a in d["actions"]:
    if a["target"] == sys.argv[2]: print("go: " + a["reason"]); sys.exit()
for s in d["skipped"]:
    if s["target"] == sys.argv[2]: print("keep: " + s["reason"]); sys.exit()
print("absent")
PYEOF
}
count() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$SCRATCH/$1" "$2"; }
expected=$( (for i in $(seq -w 0 229); do echo "old0$i"; done; for i in 0 1 2 3 4; do echo "stale000$i"; done
            printf '%s\n' edge.go never.go staffer vip) | sort)
got=$(count plan-all.json '"\n".join(sorted(a["target"] for a in d["actions"]))')
is "$got" "$expected" "the planned deactivations are exactly the dormant users"
lists=$(gitlab_requests 'r["path"] == "/users"')
is "$(printf '%s\n' "$lists" | wc -l | tr -d ' ')" 4 "the list took 4 requests: 3 pages of 100 and the empty page after"
like "$(printf '%s\n' "$lists" | head -1)" '"active": "true".*"exclude_internal": "true".*"humans": "true".*"order_by": "id".*"pagination": "keyset".*"per_page": "100".*"sort": "asc"' \
     "  keyset pagination by id, active humans only"
is "$(printf '%s\n' "$lists" | grep -c '"cursor"')" 3 "  the next pages came from the Link header's cursor"
like "$(judge old0000)" "^go: no activity for 100 days \(last activity on $(date -u -d '100 days ago' +%F)\)" "old0000: 100 days idle"
like "$(judge edge.go)" "^go: no activity for 90 days" "edge.go: exactly 90 days (GitLab: last_activity_on <= 90 days ago) goes"
like "$(judge edge.keep)" "^keep: active 89 days ago" "edge.keep: 89 days is kept"
like "$(judge never.go)" "^go: never active; created 7 days ago" "never.go: never active, created at midnight 7 days ago, goes"
like "$(judge never.keep)" "^keep: new account, created 7 days ago \(grace period 7 days\)" "never.keep: a second after that midnight is within the grace period"
like "$(judge new0000)" "^keep: new account, created 2 days ago" "new0000: a new account is kept"
like "$(judge stale0000)" "^go: never active; created 30 days ago" "stale0000: never active, 30 days old"
like "$(judge recent0000)" "^keep: active 3 days ago" "recent0000: active 3 days ago"
like "$(judge signed.in)" "^keep: signed in 2 days ago" "signed.in: a recent sign-in counts as activity (as GitLab's check does)"
is "$(judge old.admin)" "keep: admin" "old.admin: admins are kept"
for name in blocked.old banned.old deactivated.old ghost support-bot alert-bot project_42_bot service_account_ci; do
  is "$(judge $name)" "absent" "$name: filtered out by GitLab (not an active human), never planned"
done
is "$(count plan-all.json 'len(d["actions"]) + len(d["skipped"])')" 300 "every listed user (the 300 active humans) is planned or kept"

# --- an old GitLab that ignores the filters: every user is judged here too ---
gitlab_control POST settings '{"ignore_user_filters": true}' >/dev/null
run_rb plan deactivate-dormant --output json
printf '%s' "$OUT" > "$SCRATCH/plan-old.json"
for pair in "blocked.old:keep: state blocked" "banned.old:keep: state banned" "deactivated.old:keep: state deactivated" \
            "support-bot:keep: bot user" "project_42_bot:keep: bot user" "service_account_ci:keep: bot user"; do
  is "$(judge "${pair%%:*}" plan-old.json)" "${pair#*:}" "unfiltered: ${pair%%:*} is kept (${pair#*: })"
done
like "$(judge ghost plan-old.json)" "^go:" "unfiltered: ghost looks like a human here (GitLab does not show user types)..."
printf '%s\n' 'exclude = function(user) return user.username ~= "ghost" end' > "$SCRATCH/only-ghost.lua"
run_rb plan deactivate-dormant --policy "$SCRATCH/only-ghost.lua" -o "$SCRATCH/plan-ghost.json"
gitlab_control POST settings '{"ignore_user_filters": false}' >/dev/null

# --- policy: a site protects a user and a group of people ---
cat > "$SCRATCH/policy.lua" <<'LUA'
protected_users = { "vip" }
exclude = function(user)
  if user.username == "staffer" then return "on the staff list" end
end
LUA
run_rb plan deactivate-dormant --policy "$SCRATCH/policy.lua" --output json
printf '%s' "$OUT" > "$SCRATCH/plan-policy.json"
is "$(judge vip plan-policy.json)" "keep: protected by policy (protected_users)" "policy protected_users keeps vip"
is "$(judge staffer plan-policy.json)" "keep: excluded by policy: on the staff list" "policy exclude() keeps staffer, with its reason"
run_rb plan deactivate-dormant -p days=30
is "$RC" 2 "days=30: exit 2 (below GitLab's minimum)"; like "$ERR" "below GitLab's minimum of 90.*allow_short_period" "  says how to go lower on purpose"
run_rb plan deactivate-dormant -p days=30 -p allow_short_period=true --output json
is "$RC" 0 "days=30 with allow_short_period=true plans"
printf '%s' "$OUT" > "$SCRATCH/plan-30.json"
like "$(judge edge.keep plan-30.json)" "^go:" "  and then edge.keep (89 days) is dormant"

# --- caps: per run, then per day (the journals of this target count) ---
J="$SCRATCH/j-caps"
run_rb plan deactivate-dormant --journal-dir "$J" -p max_actions=5 --output json
printf '%s' "$OUT" > "$SCRATCH/plan-cap.json"
is "$(count plan-cap.json 'len(d["actions"]), sum(1 for s in d["skipped"] if "max_actions 5" in s["reason"])')" "(5, 234)" \
   "max_actions=5: 5 planned, the 234 others skipped for the run's cap"
is "$(count plan-cap.json 'd["effect"]')" "['5 users deactivated (each reactivated at their next sign-in)']" \
   "  the JSON effect counts the 5 users"
run_rb run deactivate-dormant --journal-dir "$J" -p max_actions=5 --yes
is "$RC" 0 "a capped run deactivates 5"; is "$(posts)" 5 "  5 POSTs"
like "$OUT" "Today \(UTC\): 5 of max_per_day 100000" "  the report counts the day"
run_rb plan deactivate-dormant --journal-dir "$J" -p max_per_day=8 --output json
printf '%s' "$OUT" > "$SCRATCH/plan-day.json"
is "$(count plan-day.json 'len(d["actions"])')" 3 "max_per_day=8 after 5 today: 3 planned"
like "$(count plan-day.json '[s["reason"] for s in d["skipped"] if "today" in s["reason"]][0]')" \
     "over today's cap \(max_per_day 8, 5 done earlier today\)" "  the rest wait for tomorrow, saying why"
like "$(count plan-day.json 'd["facts"]["done_today"]')" "^5 of max_per_day 8" "  the plan shows today's count"
# Two plans for the same room: the second leaves out the first one's users, as if made elsewhere.
run_rb plan deactivate-dormant --journal-dir "$J" -p max_per_day=8 -o "$SCRATCH/day-a.json"
"$PY" -c 'import json,sys; print("exclude = function(u) return ({%s})[u.username] end" % ", ".join("[%r] = true" % a["target"] for a in json.load(open(sys.argv[1]))["actions"]))' \
  "$SCRATCH/day-a.json" > "$SCRATCH/not-day-a.lua"
run_rb plan deactivate-dormant --journal-dir "$J" -p max_per_day=8 --policy "$SCRATCH/not-day-a.lua" -o "$SCRATCH/day-b.json"
is "$(count day-b.json 'len(d["actions"])')" 3 "  a second plan for the same room, of three other users"
run_rb apply "$SCRATCH/day-a.json" --journal-dir "$J" --yes
is "$RC" 0 "the first of two plans made for the same room applies"; is "$(posts)" 8 "  8 deactivations today"
like "$OUT$ERR" "Today \(UTC\): 8 of max_per_day 8\." "  the report counts the day against max_per_day"
run_rb apply "$SCRATCH/day-b.json" --journal-dir "$J" --yes
is "$RC" 4 "the second plan, applied after it, stops at the day's cap: exit 4"
like "$OUT" "skipped +gitlab.deactivate_user .*: over today's cap \(max_per_day 8, 8 done today\)" "  each action skipped for today's cap"
is "$(posts)" 8 "  no more POSTs"
run_rb plan deactivate-dormant --journal-dir "$SCRATCH/j-elsewhere" -p max_per_day=8 --output json
is "$("$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["actions"]))' <<<"$OUT")" 8 \
   "journals elsewhere do not count (the day is counted from --journal-dir)"

# --- drift between plan and apply, GitLab's refusals, a failure, a 429 ---
J="$SCRATCH/j-drift"
run_rb plan deactivate-dormant --journal-dir "$J" -o "$SCRATCH/plan.json"
is "$RC" 0 "plan for the apply exits 0"
gitlab_control POST users "[{\"username\": \"old0010\", \"last_activity_on\": \"$(date -u +%F)\"},
  {\"username\": \"old0011\", \"is_admin\": true}, {\"username\": \"old0012\", \"state\": \"blocked\"},
  {\"username\": \"old0013\", \"state\": \"deactivated\"}, {\"username\": \"old0014\", \"current_sign_in_at\": \"-1h\"}]" >/dev/null
gitlab_control DELETE "users/$(gitlab_state old0015 id)" >/dev/null
id16=$(gitlab_state old0016 id); id17=$(gitlab_state old0017 id); id18=$(gitlab_state old0018 id)
gitlab_control POST faults "[{\"method\": \"POST\", \"path\": \"^/users/$id16/deactivate\", \"status\": 403, \"count\": 1,
  \"message\": \"403 Forbidden - The user you are trying to deactivate has been active in the past 90 days and cannot be deactivated\"},
  {\"method\": \"POST\", \"path\": \"^/users/$id17/deactivate\", \"status\": 500, \"count\": 1, \"message\": \"500 Internal Server Error\"},
  {\"method\": \"POST\", \"path\": \"^/users/$id18/deactivate\", \"status\": 429, \"count\": 2, \"retry_after\": 1},
  {\"method\": \"GET\", \"path\": \"^/users/$id18\$\", \"status\": 429, \"count\": 1, \"retry_after\": 1}]" >/dev/null
before=$(posts)
run_rb apply "$SCRATCH/plan.json" --journal-dir "$J" --yes
is "$RC" 1 "apply with one failed deactivation: exit 1"
like "$OUT" "skipped +gitlab.deactivate_user old0010: active since the plan" "old0010, active since the plan: skipped"
like "$OUT" "skipped +gitlab.deactivate_user old0011: admin now" "old0011, an admin now: skipped"
like "$OUT" "skipped +gitlab.deactivate_user old0012: state blocked now" "old0012, blocked since: skipped"
like "$OUT" "skipped +gitlab.deactivate_user old0014: signed in (59|60) minutes ago" "old0014, signed in an hour ago: skipped"
like "$OUT" "skipped +gitlab.deactivate_user old0015: no longer exists" "old0015, deleted since: skipped"
like "$OUT" "skipped +gitlab.deactivate_user old0016: GitLab refused: The user you are trying to deactivate has been active in the past 90 days" \
     "old0016: GitLab's 403 is a skip with GitLab's reason, not a failure"
like "$OUT" "FAILED +gitlab.deactivate_user old0017: gitlab 127\.0\.0\.1:[0-9]+: POST /users/$id17/deactivate: HTTP 500: 500 Internal Server Error" \
     "old0017: a 500 fails that action, with GitLab's message"
is "$(state_of old0013)" deactivated "old0013 (deactivated meanwhile) stays deactivated"
unlike "$(gitlab_requests 'r["method"] == "POST"' | grep "/users/$(gitlab_state old0013 id)/")" "." "  and is not POSTed again"
is "$(gitlab_requests "r['path'] == '/users/$id18/deactivate'" | "$PY" -c 'import sys,json; print(" ".join(str(json.loads(l)["status"]) for l in sys.stdin))')" \
   "429 429 201" "old0018: 429 twice (Retry-After: 1), then deactivated"
is "$(state_of old0018)" deactivated "  old0018 is deactivated"
like "$OUT" ": $(($(count plan.json 'len(d["actions"])') - 7)) done, 6 skipped, 1 failed" "the others went on"
is "$(state_of old0012)" blocked "  old0012 is still blocked"
for name in old0010 old0011 old0014 old0016 old0017 edge.keep never.keep new0000 recent0000 old.admin root; do
  is "$(state_of "$name")" active "  $name is still active"
done
for name in old0000 old0229 stale0004 edge.go never.go staffer vip; do
  is "$(state_of "$name")" deactivated "  $name is deactivated"
done
is "$("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(1 for e in d["audit_events"] if e["action"] == "deactivate"))' "$GITLAB_DIR/state.json")" \
   "$(gitlab_requests 'r["method"] == "POST" and r["status"] == 201' | wc -l | tr -d ' ')" "GitLab wrote an audit event for each deactivation"
run_rb apply "$SCRATCH/plan.json" --journal-dir "$J" --yes -v
is "$RC" 2 "applying the plan again: refused as stale (its journal shows it was applied)"
run_rb apply "$SCRATCH/plan.json" --journal-dir "$J" --yes -v --force
is "$RC" 4 "  with --force: exit 4 (the drifted users are skipped again)"
like "$OUT" "done +gitlab.deactivate_user old0017" "  the failed deactivation goes through"
is "$(state_of old0017)" deactivated "  old0017 is deactivated"
like "$OUT" "done +gitlab.deactivate_user old0020: already deactivated" "  users deactivated earlier count as done, without a POST"

# --- plans saved when this runbook had two modes carry "mode": "database" is refused, "api" is taken ---
with_mode() {  # with_mode PLAN MODE OUT: the plan as the earlier version saved it, its checksum made again
  "$PY" - "$@" <<'PYEOF'
import hashlib, re, sys
path, mode, out = sys.argv[1:4]
text = open(path).read()
assert '"params": {\n' in text
text = text.replace('"params": {\n', '"params": {\n    "mode": "%s",\n' % mode, 1)
pattern = r'("checksum": "sha256:)[0-9a-f]{64}"'
zeroed = re.sub(pattern, lambda m: m.group(1) + "0" * 64 + '"', text)
digest = hashlib.sha256(zeroed.encode()).hexdigest()
open(out, "w").write(re.sub(pattern, lambda m: m.group(1) + digest + '"', text))
PYEOF
}
posts_before_ghost=$(posts)
with_mode "$SCRATCH/plan-ghost.json" database "$SCRATCH/plan-ghost-db.json"
run_rb apply "$SCRATCH/plan-ghost-db.json" --journal-dir "$SCRATCH/j-ghost-db" --yes
is "$RC" 2 "a saved plan with mode=database: refused (exit 2)"
like "$ERR" "the plan: parameter mode=database: that mode is now the runbook delete-dormant-db" "  naming the runbook to use"
is "$(posts)" "$posts_before_ghost" "  and nothing was sent"
with_mode "$SCRATCH/plan-ghost.json" api "$SCRATCH/plan-ghost-api.json"

# --- internal users GitLab refuses (an old GitLab listed the ghost as a human) ---
run_rb apply "$SCRATCH/plan-ghost-api.json" --journal-dir "$SCRATCH/j-ghost" --yes
is "$RC" 4 "a saved plan with mode=api (as the earlier version wrote it) applies"
like "$OUT" "skipped +gitlab.deactivate_user ghost: GitLab refused: An internal user cannot be deactivated by the API" \
     "...and GitLab's 403 for the internal ghost is a skip with its reason"
is "$(state_of ghost)" active "  the ghost stays as it was"

# --- rate limiting: GitLab's throttle (429 + Retry-After) slows the run down, nothing fails ---
gitlab_control POST users '[{"username": "old0010", "last_activity_on": "-100d"}, {"username": "old0011", "is_admin": false},
  {"username": "old0012", "state": "active"}, {"username": "old0014", "current_sign_in_at": null}, {"username": "old0016"}]' >/dev/null
gitlab_control POST settings '{"throttle_authenticated_api_requests_per_period": 6, "throttle_authenticated_api_period_in_seconds": 1}' >/dev/null
start=$(date +%s)
run_rb run deactivate-dormant --journal-dir "$SCRATCH/j-throttle" -p max_actions=4 --yes
is "$RC" 0 "under a throttle of 6 requests a second, a run of 4 deactivations succeeds"
ok $([ "$(gitlab_requests 'r["status"] == 429' | wc -l)" -gt 0 ]; echo $?) "  GitLab answered 429 on the way"
like "$OUT" ": 4 done, 0 skipped, 0 failed" "  every action done"
gitlab_control POST settings '{"throttle_authenticated_api_requests_per_period": 0}' >/dev/null

# --- killed at any point, resumed: every user deactivated exactly once ---
kill_resume() {  # kill_resume POINT
  local point=$1 dir="$SCRATCH/kill-${1//:/-}" rc users
  gitlab_control POST users '[{"username": "old0100", "state": "active"}, {"username": "old0101", "state": "active"},
    {"username": "old0102", "state": "active"}, {"username": "old0103", "state": "active"}]' >/dev/null
  run_rb plan deactivate-dormant --policy "$SCRATCH/only-kill.lua" -p concurrency=1 -o "$dir.json"
  : > "$GITLAB_DIR/requests.log"
  { (RUNBOOK_CRASH_AT=$point exec "$RUNBOOK" apply "$dir.json" --yes --journal-dir "$dir" >/dev/null 2>&1); } 2>/dev/null; rc=$?
  [ "$rc" -eq 137 ] && { "$RUNBOOK" resume "$dir"/*.journal --yes >/dev/null 2>&1; rc=$?; }
  users=$(for u in old0100 old0101 old0102 old0103; do state_of $u; done | sort -u)
  posts_each=$(gitlab_requests 'r["method"] == "POST"' | "$PY" -c 'import sys,json,collections; c=collections.Counter(json.loads(l)["path"] for l in sys.stdin); print(max(c.values()) if c else 0)')
  ok $([ "$rc" -eq 0 ] && [ "$users" = deactivated ] && [ "$posts_each" -le 1 ]; echo $?) \
     "killed at $point: resumed, 4 users deactivated, none POSTed twice (exit $rc, most POSTs for one user $posts_each)"
}
cat > "$SCRATCH/only-kill.lua" <<'LUA'
exclude = function(user)
  if not ({ old0100 = 1, old0101 = 1, old0102 = 1, old0103 = 1 })[user.username] then return "not in this test" end
end
LUA
# journal writes: plan, then start and end of 4 actions, then finish; http responses: /version and
# /user at setup, then a GET and a POST for each user
for point in journal:1 journal:6 journal:10 http-response:3 http-response:4 http-response:10; do
  kill_resume "$point"
done

# --- bad input and bad connections: clear messages, the right exit status, nothing changed ---
before=$(posts)
GITLAB_TOKEN=glpat-not-a-token run_rb plan deactivate-dormant
is "$RC" 1 "a wrong token: exit 1"; like "$ERR" "HTTP 401.*does not accept the token" "  says the token is the problem"
GITLAB_TOKEN=glpat-user-token run_rb plan deactivate-dormant
is "$RC" 1 "a token of a user who is not an administrator: exit 1"; like "$ERR" "plain.user, who is not an administrator" "  says so"
GITLAB_TOKEN= run_rb plan deactivate-dormant
is "$RC" 2 "no token: exit 2"; like "$ERR" "set GITLAB_TOKEN or give a token file" "  says where a token comes from"
printf '%s\n' "$ADMIN_TOKEN" > "$SCRATCH/token"; chmod 600 "$SCRATCH/token"
GITLAB_TOKEN= run_rb plan deactivate-dormant -p token_file="$SCRATCH/token"
is "$RC" 0 "the token from a file (token_file)"
run_rb plan deactivate-dormant -p token=abc
is "$RC" 2 "a token on the command line is refused (no such parameter)"
GITLAB_URL= run_rb plan deactivate-dormant
is "$RC" 2 "no GitLab URL: exit 2"; like "$ERR" "needs GitLab's URL" "  says so"
run_rb plan deactivate-dormant -p gitlab="http://127.0.0.1:$(free_port)"
is "$RC" 1 "GitLab down: exit 1"; like "$ERR" "is GitLab running" "  says GitLab may be down"
kv_start ""
run_rb plan deactivate-dormant -p gitlab="$KV_URL"
is "$RC" 1 "a URL that is not GitLab: exit 1"; like "$ERR" "is this GitLab\?" "  says so"
run_rb plan deactivate-dormant -p mode=ldap
is "$RC" 2 "an unknown mode: exit 2"
like "$ERR" "deactivate-dormant no longer takes mode=ldap: it works through GitLab's API only .*the runbook delete-dormant-db" \
  "  says what it does, and which runbook does the other"
run_rb plan deactivate-dormant -p per_page=500
is "$RC" 2 "per_page above GitLab's 100: exit 2"
is "$(posts)" "$before" "nothing was deactivated by any of these"
unlike "$(cat "$SCRATCH"/plan*.json "$SCRATCH"/day-*.json "$SCRATCH"/kill-*.json "$SCRATCH"/j-*/*.journal "$SCRATCH"/kill-*/*.journal 2>/dev/null)" "$ADMIN_TOKEN" "the token is in no plan file and no journal"

# --- TLS: verified against the CA given, refused without it ---
make_ca "$SCRATCH/ca"
gitlab_start "$SCRATCH/gl-tls" "$SCRATCH/state.json" --tls-cert "$SCRATCH/ca/server.pem" --tls-key "$SCRATCH/ca/server.key"
run_rb plan deactivate-dormant -p gitlab="$GITLAB_URL" -p ca_file="$SCRATCH/ca/ca.pem"
is "$RC" 0 "over TLS with the right CA: the plan works"
run_rb plan deactivate-dormant -p gitlab="$GITLAB_URL"
is "$RC" 1 "over TLS without the CA: exit 1"; like "$ERR" "TLS verification failed" "  says why"

done_testing
