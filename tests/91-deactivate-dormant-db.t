#!/usr/bin/env bash
# delete-dormant-db (once deactivate-dormant -p mode=database): a real PostgreSQL 15 holding the schema a real JupyterHub 3.0
# created (--db-url), users seeded through the hub and 20,000 more inserted in SQL, and the hub's
# deployment in the fake Kubernetes API at 0 replicas. The plan refuses while the hub may run;
# the dormancy query, its EXPLAIN and the index suggestion; batches, each one transaction with a
# verified COPY backup of every row that goes; caps; a kill at any point and resume; the connection
# reset or cut mid-apply (a TCP fault proxy) and resume; the hub starts on the database afterwards;
# a batch restored from its backup.
. "$(dirname "$0")/lib/tap.sh"
. "$TOP/tests/lib/hub.sh"
. "$TOP/tests/lib/pg.sh"
. "$TOP/tests/lib/fake-k8s.sh"
. "$TOP/tests/lib/tcpfault.sh"
command -v jupyterhub >/dev/null || skip_all "jupyterhub is not installed"
export XDG_STATE_HOME="$SCRATCH/state"

pg_start "$SCRATCH/pg" >/dev/null 2>&1 || { ok 1 "PostgreSQL starts"; done_testing; exit 1; }
H="$SCRATCH/hub"
hub_start "$H" --db-url "$PG_HUB_URL" >/dev/null 2>&1 || { ok 1 "hub starts on PostgreSQL"; done_testing; exit 1; }
hub_seed "$H" --generate old:30:-100d --generate new:5 --generate stale:3::-30d --generate recent:4:-3d \
  --user boss,staffer,vip,runner,edge.go,edge.keep --admin boss --group staff=staffer \
  --activity boss=-300d --activity staffer=-200d --activity vip=-200d --activity runner=-200d \
  --activity edge.go=-2161h --activity edge.keep=-2159h >/dev/null 2>&1
ok $? "a real JupyterHub 3.0 made its schema on PostgreSQL and has its users"
hub_stop "$H"
psql_hubdb() { "$PG_BIN/psql" "host=$PG_SOCKET_DIR port=$PG_PORT user=postgres dbname=jupyterhub" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }
sql() { psql_hubdb "$1" | tr -d ' ' ; }
# A server the hub recorded for runner when it went down, a token of old0000's, and 20,000 users
# active yesterday (dormant users are sparse, as in a real hub that needs this runbook).
psql_hubdb "INSERT INTO servers (proto, ip, port, base_url, cookie_name) VALUES ('http', '10.0.0.7', 8888, '/user/runner/', 'c');
  UPDATE spawners SET server_id = currval('servers_id_seq') WHERE user_id = (SELECT id FROM users WHERE name = 'runner');
  INSERT INTO api_tokens (user_id, hashed, prefix, created, note, scopes)
    SELECT id, 'hash-of-old0000', 'abcd', now(), 'a token', '[]' FROM users WHERE name = 'old0000';
  INSERT INTO users (name, admin, created, last_activity, cookie_id)
    SELECT 'bulk' || g, false, now() - interval '400 days', now() - interval '1 day', md5(g::text) FROM generate_series(1, 20000) g;
  ANALYZE" >/dev/null
users_before=$(sql "SELECT count(*) FROM users")
is "$users_before" 20048 "the database has 20,048 users"
table_sum() { sql "SELECT md5(string_agg(u::text, ',' ORDER BY id)) FROM users u"; }

# The cluster: the hub's deployment in namespace jhub, scaled to 0.
cat > "$SCRATCH/seed.json" <<'EOF'
{"namespaces": ["jhub"],
 "deployments": [{"namespace": "jhub", "name": "hub", "labels": {"component": "hub", "app": "jupyterhub"},
                  "container": "hub", "image": "jupyterhub/k8s-hub:3.0.0", "replicas": 0}]}
EOF
fake_k8s_start "$SCRATCH/k8s" "$SCRATCH/seed.json" || { ok 1 "fake API server starts"; done_testing; exit 1; }
export KUBECONFIG="$KUBECONFIG_FILE"
scale() {  # scale N: the hub deployment's replicas, as kubectl scale does (PATCH of the scale subresource)
  curl -sS --cacert "$K8S_CA" -H "Authorization: Bearer $K8S_TOKEN" -X PATCH -H 'Content-Type: application/merge-patch+json' \
    --data "{\"spec\": {\"replicas\": $1}}" "$K8S_SERVER/apis/apps/v1/namespaces/jhub/deployments/hub/scale" >/dev/null
}
hub_pods() { curl -sS --cacert "$K8S_CA" -H "Authorization: Bearer $K8S_TOKEN" "$K8S_SERVER/api/v1/namespaces/jhub/pods?labelSelector=component%3Dhub" \
  | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))'; }
export PGPASSWORD=$PG_HUB_PASSWORD    # libpq reads it; the URL carries no password
DB="postgresql://hub@127.0.0.1:$PG_PORT/jupyterhub"
B="$SCRATCH/backups"
dbrun() { local cmd=$1; shift; run_rb "$cmd" -n jhub -p database_url="$DB" -p backup_dir="$B" "$@"; }

# --- show: the procedure explained, and only its own parameters ---
run_rb show delete-dormant-db
is "$RC" 0 "show exits 0"
for phrase in "DELETED" "replicas 0" "UNION" "batch_size" "backup_dir" "minimum of 90" "max_per_day" "deactivate-dormant"; do
  like "$OUT" "$phrase" "  it explains: $phrase"
done
for gone in "token_file" "per_page" "concurrency" "insecure" "mode" "database:"; do
  unlike "$OUT" "$gone" "  and nothing of GitLab's API procedure: no $gone"
done

# --- the hub must be stopped: replicas 0 and no pods, or nothing happens ---
scale 1
for i in $(seq 50); do [ "$(hub_pods)" = 1 ] && break; sleep 0.1; done
dbrun plan delete-dormant-db
is "$RC" 1 "the hub deployment at 1 replica: the plan refuses (exit 1)"
like "$ERR" "refusing to change the hub's database while the hub may be running: deployment jhub/hub has spec.replicas 1; stop the hub first: kubectl -n jhub scale deployment hub --replicas=0" \
     "  saying how to stop it"
fake_k8s_control POST settings '{"podStopSeconds": 3}' >/dev/null
scale 0
dbrun plan delete-dormant-db
is "$RC" 1 "scaled to 0 with its pod still terminating: the plan refuses"
like "$ERR" "scaled to 0 but 1 pod still exists \(hub-[a-z0-9-]+\); wait until it is gone" "  naming the pod"
for i in $(seq 100); do [ "$(hub_pods)" = 0 ] && break; sleep 0.1; done
dbrun plan delete-dormant-db -p deployment=jupyterhub
is "$RC" 1 "no such deployment: the plan refuses"; like "$ERR" "there is no deployment jhub/jupyterhub" "  says so"
run_rb plan delete-dormant-db -n jhub -p database_url="$PG_HUB_URL"
is "$RC" 2 "a password in database_url: exit 2 (parameters are saved in plans)"; like "$ERR" "PGPASSWORD or ~/.pgpass" "  says where it goes"

# --- dry run: the plan, and nothing written ---
sum_before=$(table_sum)
dbrun run delete-dormant-db --dry-run
is "$RC" 0 "dry run exits 0"
like "$OUT" "hub +jhub/hub: spec.replicas 0, no pods" "the plan says the hub is stopped"
like "$OUT" "dormant users +37" "37 dormant users that are not admins"
like "$OUT" "pg.delete_users \(1\)" "one batch of 200"
like "$OUT" "batch 1: users\.id [0-9]+\.\.[0-9]+ +deletes 36 dormant users \(" "  its reason says how many users it deletes"
is "$(printf '%s\n' "$OUT" | tail -n 1)" "Plan: 36 users deleted, their rows backed up first (1 action)" \
   "  the plan's last line counts users, not the one action"
like "$OUT" "backed up with each batch +users, api_tokens \(by user_id\), oauth_codes \(by user_id\), spawners \(by user_id\), user_group_map \(by user_id\), user_role_map \(by user_id\)" \
     "the backup covers users and every table whose rows go with them"
like "$OUT" "UNION" "the plan shows the query, the UNION of the two conditions"
like "$OUT" "EXPLAIN of the first batch:" "  and its EXPLAIN"
like "$OUT" "dormancy index +none: no index on users covers last_activity" "no index serves it yet"
like "$OUT" "CREATE INDEX CONCURRENTLY ix_users_dormancy ON users \(id, last_activity, created\) WHERE admin IS NOT TRUE;" \
     "  so the plan suggests the partial index"
is "$(table_sum)" "$sum_before" "dry run: the users table is unchanged"
ok $([ ! -e "$B" ]; echo $?) "dry run: no backup directory"

# --- the plan in detail ---
cat > "$SCRATCH/policy.lua" <<'LUA'
protected_users = { "vip" }
exclude = function(user)
  for _, group in ipairs(user.groups) do
    if group == "staff" then return "member of staff" end
  end
end
LUA
dbrun plan delete-dormant-db --policy "$SCRATCH/policy.lua" -p batch_size=10 --output json
is "$RC" 0 "plan --output json exits 0"
printf '%s' "$OUT" > "$SCRATCH/plan-all.json"
py() { "$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$SCRATCH/$1"; }
expected=$( (for i in $(seq -w 0 29); do echo "old00$i"; done; printf '%s\n' stale0000 stale0001 stale0002 edge.go) | sort | tr '\n' ' ')
is "$(py plan-all.json '" ".join(sorted(n for a in d["actions"] for n in a["args"]["names"])) + " "')" "$expected" \
   "the batches hold exactly the dormant users (100 days idle, never active for 30 days, 90 days and an hour)"
is "$(py plan-all.json '[len(a["args"]["ids"]) for a in d["actions"]]')" "[10, 10, 10, 4]" "batches of batch_size=10"
is "$(py plan-all.json 'd["effect"]')" "['34 users deleted, their rows backed up first']" "  the JSON effect counts the 34 users"
like "$(py plan-all.json 'd["actions"][3]["reason"]')" "^deletes 4 dormant users \(" "  each batch's reason says how many"
skips=$(py plan-all.json '"; ".join(s["target"] + ": " + s["reason"] for s in sorted(d["skipped"], key=lambda s: s["target"]))')
is "$skips" "boss: admin; runner: server running (spawners.server_id is set); staffer: excluded by policy: member of staff; vip: protected by policy (protected_users)" \
   "kept: the admin, the user with a server, the policy's"
like "$(py plan-all.json 'd["facts"]["dormant_after"]')" "^90 days" "the plan states the cutoffs"

# --- apply: each batch one transaction, backed up first ---
dbrun plan delete-dormant-db --policy "$SCRATCH/policy.lua" -p batch_size=10 -o "$SCRATCH/plan.json"
psql_hubdb "UPDATE users SET last_activity = now() WHERE name = 'old0005'" >/dev/null   # active since the plan
run_rb apply "$SCRATCH/plan.json" --yes --journal-dir "$SCRATCH/j-apply"
is "$RC" 0 "apply exits 0"
like "$OUT" "done +pg.delete_users batch 1: users.id [0-9]+\.\.[0-9]+: deleted 9 users \(1 kept: no longer dormant, or gone\); backup in $B/jhub-[0-9TZ]+/batch-0001" \
     "batch 1: old0005, active since the plan, is kept by the re-check in the transaction"
like "$OUT" ": 4 done, 0 skipped, 0 failed" "4 batches done"
like "$OUT" "Deleted 33 dormant users" "the report counts the users"
is "$(sql "SELECT count(*) FROM users")" $((users_before - 33)) "33 users are gone"
for name in old0000 old0029 stale0002 edge.go; do
  is "$(sql "SELECT count(*) FROM users WHERE name = '$name'")" 0 "  $name is gone"
done
for name in old0005 boss runner staffer vip edge.keep new0000 recent0000 bulk1; do
  is "$(sql "SELECT count(*) FROM users WHERE name = '$name'")" 1 "  $name is still there"
done
is "$(sql "SELECT count(*) FROM api_tokens WHERE note = 'a token'")" 0 "old0000's token went with it (ON DELETE CASCADE)"
is "$(sql "SELECT count(*) FROM spawners WHERE user_id NOT IN (SELECT id FROM users)")" 0 "no spawner is left without its user"
run1=$(ls -d "$B"/jhub-*/batch-0001)
verified=$("$PY" - "$run1" <<'PYEOF'
import hashlib, json, os, sys
d = sys.argv[1]
m = json.load(open(os.path.join(d, "manifest.json")))
bad = [t["file"] for t in m["tables"] if hashlib.sha256(open(os.path.join(d, t["file"]), "rb").read()).hexdigest() != t["sha256"]]
rows = {t["name"]: t["rows"] for t in m["tables"]}
print(len(m["ids"]), rows["users"], rows["spawners"], rows["api_tokens"], "bad:" + ",".join(bad))
PYEOF
)
is "$verified" "9 9 9 1 bad:" "batch 1's backup: 9 users, their 9 spawners and 1 token, every file matching its SHA-256"
ls "$B"/jhub-*/ | grep -q partial; ok $([ $? -ne 0 ]; echo $?) "no partial backup directory is left"

# --- the hub starts on the database afterwards, and sees the users that are left ---
hub_restart "$H" >/dev/null 2>&1
is "$(hub_count "$H")" $((users_before - 33)) "the real hub starts on the database and lists the users left"
hub_stop "$H"

# --- a batch restored from its backup: COPY FROM each file, users first ---
restore() {  # restore DIR
  local t
  for t in users $("$PY" -c 'import json,sys; print(" ".join(t["name"] for t in json.load(open(sys.argv[1]))["tables"] if t["name"] != "users"))' "$1/manifest.json"); do
    "$PG_BIN/psql" "host=$PG_SOCKET_DIR port=$PG_PORT user=postgres dbname=jupyterhub" -X -q -v ON_ERROR_STOP=1 \
      -c "\\copy $t FROM '$1/$t.copy'" || return 1
  done
}
restore "$run1"; ok $? "batch 1 restored with psql \\copy, users first"
is "$(sql "SELECT count(*) FROM users WHERE name = 'old0000'")" 1 "  old0000 is back"
is "$(sql "SELECT count(*) FROM api_tokens WHERE note = 'a token'")" 1 "  with its token"

# --- the index: created as suggested, the plan sees EXPLAIN use it (on 20,000 more users, 2% of them
# dormant: enough for a batch's LIMIT to end the index scan early, as on a large hub) ---
psql_hubdb "INSERT INTO users (name, admin, created, last_activity, cookie_id)
  SELECT 'many' || g, false, now() - interval '400 days', CASE WHEN g % 50 = 0 THEN now() - interval '100 days'
    WHEN g % 50 = 1 THEN NULL ELSE now() - interval '1 day' END, md5('many' || g) FROM generate_series(1, 20000) g" >/dev/null
psql_hubdb "CREATE INDEX CONCURRENTLY ix_users_dormancy ON users (id, last_activity, created) WHERE admin IS NOT TRUE" >/dev/null
psql_hubdb "VACUUM ANALYZE users" >/dev/null
dbrun plan delete-dormant-db
like "$OUT" "dormancy index +ix_users_dormancy \(EXPLAIN uses it\)" "with the suggested index, EXPLAIN uses it"
like "$OUT" "Index Only Scan using ix_users_dormancy on users" "  an index-only scan for each branch of the UNION"
unlike "$OUT" "CREATE INDEX" "  and nothing is suggested any more"
psql_hubdb "DELETE FROM users WHERE name LIKE 'many%'" >/dev/null

# --- caps: per run (users, not batches), per day (today's journals) ---
J="$SCRATCH/j-caps"
dbrun plan delete-dormant-db --journal-dir "$J" -p batch_size=4 -p max_actions=6 --output json
printf '%s' "$OUT" > "$SCRATCH/plan-cap.json"
is "$(py plan-cap.json '[len(a["args"]["ids"]) for a in d["actions"]]')" "[4, 2]" "max_actions=6 with batches of 4: 4 + 2 users"
like "$(py plan-cap.json '" ".join(d["notes"])')" "6 more dormant users were not reached: the caps came first \(over this run's cap \(max_actions 6\)\)" "  the rest wait, with the count"
dbrun run delete-dormant-db --journal-dir "$J" -p batch_size=4 -p max_actions=6 --yes
is "$RC" 0 "the capped run deletes 6"
dbrun plan delete-dormant-db --journal-dir "$J" -p max_per_day=8 --output json
printf '%s' "$OUT" > "$SCRATCH/plan-day.json"
is "$(py plan-day.json '[len(a["args"]["ids"]) for a in d["actions"]]')" "[2]" "max_per_day=8 after 6 today: 2 more"
like "$(py plan-day.json 'd["facts"]["done_today"]')" "^6 of max_per_day 8" "  today's count comes from the journals"

# --- the hub started between plan and apply: the batch refuses, nothing deleted ---
dbrun plan delete-dormant-db --journal-dir "$SCRATCH/j-hub" -o "$SCRATCH/plan-hub.json"
scale 1
for i in $(seq 50); do [ "$(hub_pods)" = 1 ] && break; sleep 0.1; done
before=$(sql "SELECT count(*) FROM users")
run_rb apply "$SCRATCH/plan-hub.json" --yes --journal-dir "$SCRATCH/j-hub"
is "$RC" 1 "the hub was started since the plan: apply stops (exit 1)"
like "$OUT" "FAILED +pg.delete_users batch 1: .*the hub is not stopped any more: deployment jhub/hub has spec.replicas 1" "  the batch says why"
is "$(sql "SELECT count(*) FROM users")" "$before" "  nothing was deleted"
fake_k8s_control POST settings '{"podStopSeconds": 0.2}' >/dev/null
scale 0
for i in $(seq 100); do [ "$(hub_pods)" = 0 ] && break; sleep 0.1; done

# --- killed at any point (a journal write, a backup write), resumed: each batch exactly once ---
psql_hubdb "INSERT INTO users (name, admin, created, last_activity, cookie_id)
  SELECT 'gone' || g, false, now() - interval '400 days', now() - interval '200 days', md5('gone' || g) FROM generate_series(1, 12) g" >/dev/null
printf '%s\n' 'exclude = function(user) if not user.name:match("^gone") then return "not in this test" end end' > "$SCRATCH/only-gone.lua"
gone_plan() {  # gone_plan DIR [ARGS...]: 12 dormant users gone1..12 again, planned in batches of 5 (DIR.json) from $DB
  local dir=$1; shift
  psql_hubdb "DELETE FROM users WHERE name LIKE 'gone%'; INSERT INTO users (name, admin, created, last_activity, cookie_id)
    SELECT 'gone' || g, false, now() - interval '400 days', now() - interval '200 days', md5('gone' || g) FROM generate_series(1, 12) g" >/dev/null
  dbrun plan delete-dormant-db --policy "$SCRATCH/only-gone.lua" -p batch_size=5 -p backup_dir="$dir-b" -o "$dir.json" "$@"
}
gone_check() {  # gone_check DIR RC WHAT: the 12 are gone, each in exactly one published backup
  local dir=$1 rc=$2 left backed
  left=$(sql "SELECT count(*) FROM users WHERE name LIKE 'gone%'")
  backed=$("$PY" -c 'import json,glob,sys; print(sum(len(json.load(open(f))["ids"]) for f in glob.glob(sys.argv[1] + "/*/batch-[0-9][0-9][0-9][0-9]/manifest.json")))' "$dir-b")
  ok $([ "$rc" -eq 0 ] && [ "$left" -eq 0 ] && [ "$backed" -eq 12 ]; echo $?) \
     "$3: resumed; the 12 users deleted, each in exactly one published backup (exit $rc, $left left, $backed backed up)" ||
    { diag "$(tail -n 20 "$dir.out" 2>/dev/null)"; diag "$(ls -lR "$dir-b" 2>&1 | tail -n 30)"; }
}
kill_resume() {  # kill_resume POINT: 12 dormant users in batches of 5, killed at POINT, resumed
  local point=$1 dir="$SCRATCH/kill-${1//:/-}" rc
  gone_plan "$dir"
  { (RUNBOOK_CRASH_AT=$point exec "$RUNBOOK" apply "$dir.json" --yes --journal-dir "$dir" >/dev/null 2>&1); } 2>/dev/null; rc=$?
  [ "$rc" -eq 137 ] && { "$RUNBOOK" resume "$dir"/*.journal --yes >"$dir.out" 2>&1; rc=$?; }
  gone_check "$dir" "$rc" "killed at $point"
}
# journal writes: the plan, then start and end of 3 batches, then finish; backup writes: per batch
# the COPY of users (these users have no other rows) and the manifest (a kill there rolls back)
for point in journal:1 journal:3 journal:5 backup-write:1 backup-write:4 backup-write:6; do
  kill_resume "$point"
done

# --- the connection to PostgreSQL reset or cut mid-apply (tests/lib/tcpfault.py in front of it):
# the batch under way rolls back, the run stops with the batch's failure naming the database, and resume
# (through the proxy, without faults) finishes: each user deleted once, in one published backup ---
PGX="$SCRATCH/pgproxy"
tcpfault "$PGX" "$PG_PORT"; PGX_PORT=$TCPFAULT_PORT
ok $([ -n "$PGX_PORT" ]; echo $?) "the fault proxy in front of PostgreSQL listens on $PGX_PORT"
interrupted=0
for f in reset_after_bytes:1500 reset_after_bytes:3000 reset_after_bytes:4500 truncate_after_bytes:6000; do
  kind=${f%%:*} bytes=${f##*:} dir="$SCRATCH/fault-${f//:/-}"
  nofault "$PGX"
  DB="postgresql://hub@127.0.0.1:$PGX_PORT/jupyterhub" gone_plan "$dir"
  fault "$PGX" "{\"$kind\": $bytes}"
  run_rb apply "$dir.json" --yes --journal-dir "$dir"; rc=$RC
  nofault "$PGX"
  if [ "$rc" -ne 0 ]; then
    interrupted=$((interrupted + 1))
    ok $([ "$rc" -eq 1 ] && printf "%s\n" "$OUT" "$ERR" | grep -q "FAILED .*: pg hub@127.0.0.1:$PGX_PORT/jupyterhub: server closed the connection" && ! printf "%s\n" "$OUT" "$ERR" | grep -qi "traceback"; echo $?) \
       "$kind $bytes: the apply stops (exit $rc), the failed batch naming the database and what it did, no traceback" ||
      diag "$(printf "%s\n" "$OUT" "$ERR" | tail -n 5)"
    "$RUNBOOK" resume "$dir"/*.journal --yes >"$dir.out" 2>&1; rc=$?
  fi
  gone_check "$dir" "$rc" "$kind $bytes"
done
ok $([ "$interrupted" -ge 3 ]; echo $?) "the faults interrupted $interrupted of the 4 applies (at least 3)"

# The server stops answering in the middle of the apply: statement_timeout (2 s, plus 5 s) ends it.
dir="$SCRATCH/fault-stall"
nofault "$PGX"
DB="postgresql://hub@127.0.0.1:$PGX_PORT/jupyterhub" gone_plan "$dir" -p statement_timeout=2
fault "$PGX" '{"stall_after_bytes": 3000, "connections": 1}'
started=$SECONDS
run_rb apply "$dir.json" --yes --journal-dir "$dir"; rc=$RC took=$((SECONDS - started))
nofault "$PGX"
ok $([ "$rc" -eq 1 ] && [ "$took" -lt 30 ]; echo $?) "a stalled server: the apply stops (exit $rc) in $took s, not hanging"
like "$OUT" "FAILED .*no answer from the server within 7 s \(statement_timeout 2 s, plus 5 s\)" "  the batch names the bound it hit"
"$RUNBOOK" resume "$dir"/*.journal --yes >"$dir.out" 2>&1; rc=$?
gone_check "$dir" "$rc" "stalled"

# --- a batch's backup tells what an earlier attempt did: committed, or rolled back ---
dir="$SCRATCH/kill-backup-write-6"
run_rb apply "$dir.json" --yes --journal-dir "$SCRATCH/j-again"
is "$RC" 0 "the same plan applied again: exit 0"
is "$(printf '%s\n' "$OUT" | grep -c 'done .*: deleted earlier (5 users; backup in')" 2 "  batches whose users are gone are done, from their backups"
restore "$(ls -d "$dir-b"/*/batch-0001)"; ok $? "batch 1 restored (as if its transaction had not committed)"
run_rb apply "$dir.json" --yes --journal-dir "$SCRATCH/j-again2"
like "$OUT" "done +pg.delete_users batch 1: .*: deleted 5 users; backup in" "  applied again: batch 1 is done anew"
ls -d "$dir-b"/*/batch-0001.rolled-back-* >/dev/null 2>&1; ok $? "  the earlier backup is kept aside as rolled back"
is "$(sql "SELECT count(*) FROM users WHERE name LIKE 'gone%'")" 0 "  the users are gone"

done_testing
