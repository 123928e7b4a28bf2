#!/usr/bin/env bash
# Network faults between runbook and its servers: tests/lib/tcpfault.py (latency, resets, stalls,
# truncation; TCP-level, so TLS passes through unchanged) in front of a real PostgreSQL 15 and of the
# fake Kubernetes API server, plus the fake's own 5xx/429/delay faults. For wipe-hub-db and
# reset-sqlite: which faults are retried transparently (the apply succeeds, the end state is right),
# which stop the run with one message naming the server (exit 1, a journal saying where, and
# `runbook resume` then finishes with nothing lost or done twice), and that every stall ends by a
# timeout. No outcome may show a traceback. Short timeouts: RUNBOOK_K8S_TIMEOUT (per API request),
# PGCONNECT_TIMEOUT (libpq's), wipe-hub-db's -p statement_timeout.
. "$(dirname "$0")/lib/tap.sh"
. "$TOP/tests/lib/pg.sh"
. "$TOP/tests/lib/fake-k8s.sh"
. "$TOP/tests/lib/tcpfault.sh"
for tool in openssl bwrap; do command -v "$tool" >/dev/null || skip_all "$tool is not installed"; done

export HOME="$SCRATCH/home" XDG_STATE_HOME="$SCRATCH/state"
export RUNBOOK_K8S_TIMEOUT=3 PGCONNECT_TIMEOUT=2
unset KUBERNETES_SERVICE_HOST KUBERNETES_SERVICE_PORT PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE
mkdir -p "$HOME"
STARTED=$SECONDS

pg_start "$SCRATCH/pg" >/dev/null 2>&1 || { ok 1 "PostgreSQL starts"; done_testing; exit 1; }

PGX=$SCRATCH/pgproxy K8X=$SCRATCH/k8sproxy
tcpfault "$PGX" "$PG_PORT"; PGX_PORT=$TCPFAULT_PORT
ok $([ -n "$PGX_PORT" ]; echo $?) "the fault proxy in front of PostgreSQL listens on $PGX_PORT"

# The hub's schema, as JupyterHub 3.0 names it (14 tables, 9 sequences), owned by the role hub; what the
# restarted hub would create again. 3000 users make the users table's COPY ~250 KB, so a stall can
# land in the middle of it.
SCHEMA_SQL="
CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);
INSERT INTO alembic_version VALUES ('0eee8c825d24');
CREATE TABLE users (id serial PRIMARY KEY, name text UNIQUE, admin boolean, created timestamp);
CREATE TABLE api_tokens (id serial PRIMARY KEY, note text); CREATE TABLE groups (id serial PRIMARY KEY, name text);
CREATE TABLE oauth_clients (id serial PRIMARY KEY, identifier text); CREATE TABLE oauth_codes (id serial PRIMARY KEY, code text);
CREATE TABLE roles (id serial PRIMARY KEY, name text); CREATE TABLE servers (id serial PRIMARY KEY, url text);
CREATE TABLE services (id serial PRIMARY KEY, name text); CREATE TABLE spawners (id serial PRIMARY KEY, name text);
CREATE TABLE group_role_map (group_id int, role_id int); CREATE TABLE service_role_map (service_id int, role_id int);
CREATE TABLE user_group_map (user_id int, group_id int); CREATE TABLE user_role_map (user_id int, role_id int);"
USERS_SQL="INSERT INTO users (name, admin, created)
  SELECT 'user' || i || '-' || repeat('x', 60), i % 50 = 0, now() - i * interval '1 hour' FROM generate_series(1, 3000) i;"
db_reset() { pg_psql_hub "DROP OWNED BY hub; $SCHEMA_SQL $USERS_SQL" >/dev/null; }
db_tables() { pg_psql_hub "SELECT count(*) FROM pg_tables WHERE tableowner = 'hub'"; }
db_users() { pg_psql_hub "SELECT count(*) FROM users" 2>/dev/null || echo none; }
db_reset
is "$(db_tables) $(db_users)" "14 3000" "the hub's database: 14 tables, 3000 users"

# The cluster: the standard seed, the hub's database URL pointing at the PostgreSQL proxy.
"$PY" "$TOP/tests/fake-k8s/make-seed.py" "$SCRATCH/seed" >/dev/null
"$PY" - "$SCRATCH/seed" "postgresql://hub@127.0.0.1:$PGX_PORT/jupyterhub" "$PG_HUB_PASSWORD" <<'PYEOF'
import base64, json, sys
d, url, password = sys.argv[1:]
seed = json.load(open(d + "/seed.json"))
for obj in seed["objects"]:
    if obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == "hub-config":
        obj["data"] = {"jupyterhub.hub.db.url": url}
    if obj["kind"] == "Secret" and obj["metadata"]["name"] == "nublado-secret":
        obj["data"] = {"hub.db.password": base64.b64encode(password.encode()).decode()}
json.dump(seed, open(d + "/seed.json", "w"))
# What a wipe removes, to put back before the next one: the lab namespaces, their pods, the ingress.
labs = {"namespaces": ["nublado-alice", "nublado-bob"], "pods": seed["pods"],
        "objects": [o for o in seed["objects"] if o["kind"] == "GafaelfawrIngress"]}
json.dump(labs, open(d + "/labs.json", "w"))
PYEOF
fake_k8s_start "$SCRATCH/k8s" "$SCRATCH/seed/seed.json" --pod-start-seconds 0.3 --pod-stop-seconds 0.3 \
  --namespace-termination-seconds 0.5 || { ok 1 "fake API server starts"; done_testing; exit 1; }
D=$FAKE_K8S_DIR
tcpfault "$K8X" "$K8S_PORT"; K8X_PORT=$TCPFAULT_PORT
# The same kubeconfig, its server the proxy (the certificate names 127.0.0.1: TLS is unchanged).
sed "s#$K8S_SERVER#https://127.0.0.1:$K8X_PORT#" "$KUBECONFIG_FILE" >"$D/kubeconfig-proxy"
export KUBECONFIG=$D/kubeconfig-proxy
PROXIED=https://127.0.0.1:$K8X_PORT
ok $(grep -q "127.0.0.1:$K8X_PORT" "$KUBECONFIG" && ! grep -q "$K8S_SERVER" "$KUBECONFIG"; echo $?) \
  "the kubeconfig reaches the API server through the proxy ($K8X_PORT) only"

kget() {  # kget PATH: names in a list, or the object's name; "absent" on 404 (straight to the fake)
  curl -sS --cacert "$K8S_CA" -H "Authorization: Bearer $K8S_TOKEN" "$K8S_SERVER$1" | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
if d.get("kind") == "Status": print("absent")
elif "items" in d: print(" ".join(sorted(i["metadata"]["name"] for i in d["items"])))
else: print(d["metadata"]["name"])'
}
labs() { kget /api/v1/namespaces | tr ' ' '\n' | grep '^nublado-' | tr '\n' ' ' | sed 's/ $//'; }
ingress() { kget /apis/gafaelfawr.lsst.io/v1alpha1/namespaces/nublado/gafaelfawringresses/proxy; }
faulted() { fake_k8s_requests "r.get('fault') is not None and $1" | wc -l | tr -d ' '; }
world_reset() {  # a hub before a wipe: labs and ingress back, schema and users in the database
  db_reset
  fake_k8s_control POST seed "$(cat "$SCRATCH/seed/labs.json")" >/dev/null
  fake_k8s_control DELETE faults >/dev/null
  nofault "$PGX"; nofault "$K8X"
}

# The cluster's part: a rollout of the nublado hub is a new hub, which creates its schema again.
watch_rollouts() {
  local seen=0 n
  while sleep 0.3; do
    n=$(fake_k8s_requests 'r["method"] == "PATCH" and r["path"].endswith("/namespaces/nublado/deployments/hub")' 2>/dev/null | wc -l)
    if [ "$n" -gt "$seen" ]; then
      seen=$n
      [ "$(pg_psql_hub "SELECT to_regclass('public.users') IS NULL" 2>/dev/null)" = t ] && pg_psql_hub "$SCHEMA_SQL" >/dev/null 2>&1
    fi
  done
}
watch_rollouts &
on_exit "kill $!"

# Every outcome: one message, never a traceback (a Lua file:line is a bug's signature).
no_traceback() {
  unlike "$OUT$ERR" 'stack traceback|[A-Za-z_/-]+\.lua:[0-9]+:' "  $1: no traceback"
}
WIPE=(-p backup_dir="$SCRATCH/backups" -p statement_timeout=2 -p namespace_timeout=20 -p rollout_timeout=30 -p schema_timeout=30)
stopped_at() {  # stopped_at JOURNAL KIND: the journal records KIND's failure, then the stop
  "$PY" - "$1" "$2" <<'PYEOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
kinds = {e["id"]: e["kind"] for e in lines if e.get("type") == "start"}
failed = [kinds.get(e["id"]) for e in lines if e.get("type") == "end" and e.get("outcome") == "failed"]
sys.exit(0 if failed == [sys.argv[2]] and lines[-1]["type"] in ("stop", "on_stop") else 1)
PYEOF
}
journal_of() { printf '%s\n' "$ERR" | sed -n 's/.*runbook resume \([^ ]*\.journal\).*/\1/p' | head -n 1; }
drop_starts() { grep -c '"type":"start".*"kind":"pg.drop_owned"\|"kind":"pg.drop_owned".*"type":"start"' "$1"; }
backup_verifies() {  # backup_verifies DIR USERS: manifest, SHA-256 of every file, the users' rows
  "$PY" - "$1" "$2" <<'PYEOF'
import hashlib, json, os, sys
d, users = sys.argv[1], int(sys.argv[2])
m = json.load(open(os.path.join(d, "manifest.json")))
bad = [t["name"] for t in m["tables"] if hashlib.sha256(open(os.path.join(d, t["file"]), "rb").read()).hexdigest() != t["sha256"]]
rows = {t["name"]: t["rows"] for t in m["tables"]}
sys.exit(0 if not bad and len(m["tables"]) == 14 and rows["users"] == users and len(m["sequences"]) == 9 else 1)
PYEOF
}
wipe_done() {  # wipe_done WHAT BACKUP_DIR: the end state of a finished wipe
  is "$(labs)" "" "  $1: the lab namespaces are gone"
  is "$(ingress)" proxy "  $1: access is back (the ingress exists)"
  is "$(db_tables) $(db_users)" "14 0" "  $1: the database holds the hub's new, empty schema"
  backup_verifies "$2" 3000; ok $? "  $1: the backup verifies (14 tables, 3000 users, SHA-256 of each file)"
}

# ============================================================ wipe-hub-db: retried transparently
# Latency on both doors; the first two TLS connections to the API server stall in the handshake (each
# ends by the 3 s request timeout, then a new connection); a GET that takes longer than the request
# timeout (retried); a 503 burst on a lab namespace's DELETE; a 429 with Retry-After; a 500 with
# Retry-After (the API server's "come back later").
fault "$PGX" '{"delay_ms": 5}'
fault "$K8X" '{"delay_ms": 5, "stall_after_bytes": 0, "connections": 2}'
fake_k8s_control POST faults '{"method":"DELETE","path":"/namespaces/nublado-alice$","status":503,"count":2}' >/dev/null
fake_k8s_control POST faults '{"method":"GET","path":"/gafaelfawringresses/proxy$","status":429,"retryAfter":1,"count":1}' >/dev/null
fake_k8s_control POST faults '{"method":"GET","path":"/namespaces/nublado/deployments/hub$","status":500,"retryAfter":1,"count":1}' >/dev/null
fake_k8s_control POST faults '{"method":"GET","path":"/namespaces/nublado-bob$","delay":4,"count":1}' >/dev/null
t0=$SECONDS
run_rb run wipe-hub-db "${WIPE[@]}" --yes -v
is "$RC" 0 "wipe-hub-db through latency, stalled handshakes, a slow GET, 503s, 429 and 500 with Retry-After: exit 0"
[ "$RC" = 0 ] || diag "$OUT" "$ERR"
no_traceback "transparent retries"
is "$(faulted 'r["method"] == "DELETE" and r["status"] == 503')" 2 "  the 503 burst reached the client (and was retried)"
is "$(faulted 'r["status"] == 429') $(faulted 'r["status"] == 500')" "1 1" "  so did the 429 and the 500"
is "$(faulted '"delay" in r["fault"]')" 1 "  and the slow GET"
like "$ERR" "timeout.*retrying|retrying in" "  -v says what it retried"
is "$(fake_k8s_requests 'r["method"] == "DELETE" and r["path"].endswith("/namespaces/nublado-alice")' | wc -l | tr -d ' ')" 3 \
   "  the namespace DELETE: two 503s, then one that worked"
wipe_done "retried" "$(ls -d "$SCRATCH"/backups/nublado-*/database | tail -n 1)"
diag "the wipe through retried faults took $((SECONDS - t0)) s"

# ============================================================ wipe-hub-db: PostgreSQL faults
world_reset
run_rb plan wipe-hub-db "${WIPE[@]}" -o "$SCRATCH/wipe2.json"
is "$RC" 0 "a new plan (labs and users back)"
mutations_before=$(fake_k8s_requests 'r.get("mutating")' | wc -l)

# A reset and a truncation while planning: a clear failure naming the database, nothing touched.
fault "$PGX" '{"reset_after_bytes": 1500}'
run_rb plan wipe-hub-db "${WIPE[@]}"
is "$RC" 1 "PostgreSQL resets the connection mid-answer while planning: exit 1"
like "$ERR" "pg hub@127\.0\.0\.1:$PGX_PORT/jupyterhub: server closed the connection unexpectedly|cannot connect to PostgreSQL postgresql://hub:\*\*\*@127\.0\.0\.1:$PGX_PORT/jupyterhub" \
     "  the message names the database server"
no_traceback "reset"
fault "$PGX" '{"truncate_after_bytes": 1500}'
run_rb plan wipe-hub-db "${WIPE[@]}"
is "$RC" 1 "PostgreSQL's answer truncated (FIN) while planning: exit 1"
like "$ERR" "127\.0\.0\.1:$PGX_PORT/jupyterhub" "  naming the database server"
no_traceback "truncation"

# The connection stalls before PostgreSQL's first byte: libpq's connect_timeout (PGCONNECT_TIMEOUT=2).
fault "$PGX" '{"stall_after_bytes": 0}'
t0=$SECONDS
run_rb apply "$SCRATCH/wipe2.json" --yes
took=$((SECONDS - t0))
is "$RC" 1 "PostgreSQL stalls while connecting: apply exits 1"
like "$ERR" "cannot connect to PostgreSQL postgresql://hub:\*\*\*@127\.0\.0\.1:$PGX_PORT/jupyterhub.*timeout expired" "  a connect timeout, naming the server"
ok $([ "$took" -le 8 ]; echo $?) "  ended by PGCONNECT_TIMEOUT (${took}s)"
no_traceback "connect stall"
is "$(fake_k8s_requests 'r.get("mutating")' | wc -l)" "$mutations_before" "  before anything was changed in the cluster"

# The COPY of the users table stalls half-way: the statement's bound (statement_timeout 2 s + 5 s)
# ends it; the run stops before the drop and access comes back; resume makes a new backup and finishes.
fault "$PGX" '{"stall_after_bytes": 60000}'
t0=$SECONDS
run_rb apply "$SCRATCH/wipe2.json" --yes --journal-dir "$SCRATCH/j2"
took=$((SECONDS - t0))
is "$RC" 1 "PostgreSQL stalls in the middle of the backup's COPY: exit 1"
like "$OUT" "FAILED +pg\.backup .*no answer from the server within 7 s \(statement_timeout 2 s, plus 5 s\)" "  the backup fails with the timeout, naming the server"
like "$OUT" "FAILED +pg\.backup postgresql://hub@127\.0\.0\.1:$PGX_PORT/jupyterhub" "  (the target is the database)"
ok $([ "$took" -le 20 ]; echo $?) "  the stall ended by the statement's bound (${took}s)"
like "$ERR" "access restored: the ingress is back" "  access is restored: the database was never touched"
no_traceback "COPY stall"
journal=$(ls "$SCRATCH"/j2/*.journal)
stopped_at "$journal" pg.backup; ok $? "  the journal says where it stopped (pg.backup failed, then the stop)"
like "$ERR" "runbook resume $journal" "  the message says how to finish"
is "$(ingress)" proxy "  the ingress exists"
is "$(db_tables) $(db_users)" "14 3000" "  the database is intact"
is "$(find "$SCRATCH/backups" -path '*nublado-*/database/manifest.json' | wc -l)" 1 "  no backup was published by the failed attempt (only the first wipe's)"
nofault "$PGX"
run_rb resume "$journal" --yes
is "$RC" 0 "resume after the stall is gone: exit 0"
no_traceback "resume after the COPY stall"
is "$(drop_starts "$journal")" 1 "  DROP OWNED ran once"
dir2=$(sed -n 's/.*"backup_directory":"\([^"]*\)".*/\1/p' "$SCRATCH/wipe2.json" | head -n 1)
[ -n "$dir2" ] || dir2=$("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print([a["args"]["dir"] for a in d["actions"] if a["kind"] == "pg.backup"][0])' "$SCRATCH/wipe2.json")
dir2=${dir2%/database}/database
wipe_done "after resume" "$dir2"

# ============================================================ wipe-hub-db: the connection dies in DROP OWNED
# Another session holds a lock DROP OWNED needs; while the wipe waits for it, the server terminates
# the wipe's backend (an administrator's pg_terminate_backend, a failover). The drop rolls back with
# its connection; on_stop checks the schema on a new connection, finds it and restores access;
# resume then drops for real.
world_reset
nofault "$PGX"
run_rb plan wipe-hub-db "${WIPE[@]}" -p statement_timeout=60 -o "$SCRATCH/wipe4.json"
is "$RC" 0 "a new plan"
PGPASSWORD=$PG_HUB_PASSWORD "$PG_BIN/psql" "host=127.0.0.1 port=$PG_PORT user=hub dbname=jupyterhub application_name=lock-holder" \
  -X -q -c "BEGIN" -c "LOCK TABLE users IN ACCESS SHARE MODE" -c "SELECT pg_sleep(60)" >/dev/null 2>&1 &
locker=$!
on_exit "kill $locker"
"$RUNBOOK" apply "$SCRATCH/wipe4.json" --yes --journal-dir "$SCRATCH/j4" >"$SCRATCH/wipe4.out" 2>"$SCRATCH/wipe4.err" &
wiper=$!
on_exit "kill $wiper"
backend=
for _ in $(seq 600); do
  backend=$(pg_psql_hub "SELECT pid FROM pg_stat_activity WHERE application_name = 'runbook wipe-hub-db'
                         AND query LIKE 'DROP OWNED%' AND wait_event_type = 'Lock'" 2>/dev/null)
  [ -n "$backend" ] && break
  sleep 0.1
done
ok $([ -n "$backend" ]; echo $?) "DROP OWNED waits for a lock another session holds"
is "$(pg_psql_hub "SELECT pg_terminate_backend(${backend:-0})")" t "  the server terminates the wipe's backend"
# The lock goes with its backend (killing psql alone would leave the server sleeping with it).
pg_psql_hub "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'lock-holder'" >/dev/null
wait "$locker" 2>/dev/null
wait "$wiper"; RC=$? OUT=$(cat "$SCRATCH/wipe4.out") ERR=$(cat "$SCRATCH/wipe4.err")
is "$RC" 1 "the apply stops: exit 1"
like "$OUT" "FAILED +pg\.drop_owned .*: pg hub@127\.0\.0\.1:$PGX_PORT/jupyterhub: .*(terminat|closed the connection)" \
     "  the drop's failure names the database and what happened"
like "$ERR" "access restored: the ingress is back" "  access is restored: a new connection found the schema"
no_traceback "backend terminated"
is "$(ingress)" proxy "  the ingress exists"
is "$(db_tables) $(db_users)" "14 3000" "  the database is intact (the drop rolled back)"
journal=$(ls "$SCRATCH"/j4/*.journal)
run_rb resume "$journal" --yes
is "$RC" 0 "resume: exit 0"
no_traceback "resume after the terminated backend"
dir4=$("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print([a["args"]["dir"] for a in d["actions"] if a["kind"] == "pg.backup"][0])' "$SCRATCH/wipe4.json")
wipe_done "after resume" "${dir4%/database}/database"

# ============================================================ wipe-hub-db: the API server stalls
# The POST that recreates the ingress takes longer than the request timeout: a POST is not repeated
# blindly (it may have been done), so the run stops; on_stop finds the schema back and restores access;
# resume finds the ingress there: one ingress, created once by each attempt that could.
world_reset
ingress_writes() {  # creations minus deletions of the ingress so far
  echo $(( $(fake_k8s_requests 'r["method"] == "POST" and r["path"].endswith("/gafaelfawringresses") and r["status"] == 201' | wc -l)
         - $(fake_k8s_requests 'r["method"] == "DELETE" and r["path"].endswith("/gafaelfawringresses/proxy") and r["status"] == 200' | wc -l) ))
}
writes_before=$(ingress_writes)
fake_k8s_control POST faults '{"method":"POST","path":"/gafaelfawringresses$","delay":5,"count":1}' >/dev/null
t0=$SECONDS
run_rb run wipe-hub-db "${WIPE[@]}" --yes --journal-dir "$SCRATCH/j3"
is "$RC" 1 "the API server does not answer the ingress's POST in time: exit 1"
like "$OUT" "FAILED +k8s\.create gafaelfawringresses/nublado/proxy: .*the API server at $PROXIED did not answer in time" \
     "  the message names the API server and the timeout"
no_traceback "POST timeout"
journal=$(ls "$SCRATCH"/j3/*.journal)
stopped_at "$journal" k8s.create; ok $? "  the journal says where it stopped (k8s.create failed)"
sleep 2.5 # the delayed POST reaches the store meanwhile (409 if on_stop created it first)
run_rb resume "$journal" --yes
is "$RC" 0 "resume: exit 0"
no_traceback "resume after the POST timeout"
like "$OUT" "done +k8s\.create gafaelfawringresses/nublado/proxy" "  the ingress: done"
is "$(ingress)" proxy "  the ingress exists"
# resume cuts access again before going on, then restores it: each creation follows a deletion.
is "$(ingress_writes)" "$writes_before" "  each creation of the ingress followed its deletion (none failed as a duplicate)"
diag "ingress requests: $(fake_k8s_requests '"gafaelfawringresses" in r["path"] and r["method"] != "GET"' | "$PY" -c 'import json,sys; print(" ".join(json.loads(l)["method"] + ":" + str(json.loads(l)["status"]) for l in sys.stdin))' | tail -c 300)"
is "$(drop_starts "$journal")" 1 "  DROP OWNED ran once"
diag "wipe with a stalled POST and its resume took $((SECONDS - t0)) s"

# ============================================================ reset-sqlite
DB_A=$D/volumes/hub-db-hub-a/jupyterhub.sqlite
sum() { sha256sum <"$1" | cut -d' ' -f1; }
# A 3 MiB database, so a stall can land in the middle of its copy (the API calls of a whole run,
# on their own connection, stay far below 1 MB).
"$PY" -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1]); db.execute("CREATE TABLE IF NOT EXISTS blobs (b BLOB)")
db.execute("INSERT INTO blobs VALUES (randomblob(3 * 1024 * 1024))"); db.commit()' "$DB_A"
cp "$DB_A" "$SCRATCH/db-a.sqlite"
hub_pod_a() { kget "/api/v1/namespaces/hub-a/pods?labelSelector=component%3Dhub"; }
RS=(-n hub-a -p backup_dir="$SCRATCH/rs-backups" -p timeout=30)

# Retried: the first connection reset mid-response, latency, a 503 burst on the pod list, a 429 on
# the deployment, an exec refused with 503 and Retry-After.
pod_before=$(hub_pod_a)
faults_before=$(faulted True)
fault "$K8X" '{"delay_ms": 5, "reset_after_bytes": 4000, "connections": 1}'
fake_k8s_control POST faults '{"method":"GET","path":"/namespaces/hub-a/pods\\?","status":503,"count":2}' >/dev/null
fake_k8s_control POST faults '{"method":"GET","path":"/namespaces/hub-a/deployments/hub$","status":429,"retryAfter":1,"count":1}' >/dev/null
fake_k8s_control POST faults '{"method":"GET","path":"/pods/hub-[^/]+/exec\\?command=cat&","status":503,"retryAfter":1,"count":1}' >/dev/null
run_rb run reset-sqlite "${RS[@]}" --yes
is "$RC" 0 "reset-sqlite through a reset connection, 503s, a 429 and a refused exec: exit 0"
[ "$RC" = 0 ] || diag "$OUT" "$ERR"
no_traceback "reset-sqlite retries"
is "$(($(faulted True) - faults_before))" 4 "  every injected API fault was met (and retried)"
backup=$(find "$SCRATCH/rs-backups" -name jupyterhub.sqlite | head -n 1)
is "$(sum "$backup")" "$(sum "$SCRATCH/db-a.sqlite")" "  the backup is byte-identical"
ok $([ ! -e "$DB_A" ]; echo $?) "  the database was removed"
ok $([ "$(hub_pod_a)" != "$pod_before" ]; echo $?) "  a new hub pod runs"

# The exec stream of the copy stalls after 1 MB (no FIN, no RST): the quiet stream is pinged and,
# with no answer within the request timeout, given up; nothing is removed; resume finishes.
cp "$SCRATCH/db-a.sqlite" "$DB_A"
fault "$K8X" '{"stall_after_bytes": 1000000}'
t0=$SECONDS
run_rb run reset-sqlite "${RS[@]}" -p backup_dir="$SCRATCH/rs-backups2" --yes
took=$((SECONDS - t0))
is "$RC" 1 "the backup's exec stream stalls mid-copy: exit 1"
like "$OUT" "FAILED +k8s\.backup .*cut after [0-9]+ bytes of output \(nothing from the server, not even an answer to a ping, for [0-9]+s\)" \
     "  the copy fails: nothing from the server, not even a pong"
ok $([ "$took" -le 25 ]; echo $?) "  ended by the ping's timeout, not the exec's hour (${took}s)"
no_traceback "exec stall"
journal=$(journal_of)
stopped_at "$journal" k8s.backup; ok $? "  the journal says where it stopped (k8s.backup failed)"
is "$(sum "$DB_A")" "$(sum "$SCRATCH/db-a.sqlite")" "  the database is untouched"
is "$(find "$SCRATCH/rs-backups2" -type f | wc -l)" 0 "  and no partial copy is left"
nofault "$K8X"
run_rb resume "$journal" --yes
is "$RC" 0 "resume without the stall: exit 0"
no_traceback "resume after the exec stall"
backup=$(find "$SCRATCH/rs-backups2" -name jupyterhub.sqlite | head -n 1)
is "$(sum "$backup")" "$(sum "$SCRATCH/db-a.sqlite")" "  the backup matches the database"
ok $([ ! -e "$DB_A" ]; echo $?) "  which is removed"

# The rollout's PATCH gets a 500 without Retry-After: a PATCH is not repeated blindly; the run stops
# after the removal; resume restarts the hub once.
cp "$SCRATCH/db-a.sqlite" "$DB_A"
fake_k8s_control POST faults '{"method":"PATCH","path":"/namespaces/hub-a/deployments/hub$","status":500,"count":1,"message":"etcdserver: request timed out"}' >/dev/null
run_rb run reset-sqlite "${RS[@]}" -p backup_dir="$SCRATCH/rs-backups3" --yes
is "$RC" 1 "the restart's PATCH fails with a 500: exit 1"
like "$OUT" "FAILED +k8s\.restart deployments/hub-a/hub: .*etcdserver: request timed out \(InternalError, HTTP 500\)" "  with the API server's message"
no_traceback "PATCH 500"
journal=$(journal_of)
patches=$(fake_k8s_requests 'r["method"] == "PATCH" and r["path"].endswith("/hub-a/deployments/hub")' | wc -l)
run_rb resume "$journal" --yes
is "$RC" 0 "resume: exit 0"
like "$OUT" "done +k8s\.restart deployments/hub-a/hub: new hub pod" "  the hub restarts"
is "$(fake_k8s_requests 'r["method"] == "PATCH" and r["path"].endswith("/hub-a/deployments/hub")' | wc -l)" $((patches + 1)) "  with one more PATCH"
is "$(sum "$(find "$SCRATCH/rs-backups3" -name jupyterhub.sqlite)")" "$(sum "$SCRATCH/db-a.sqlite")" "  the backup matches"

# ============================================================ timeouts of the modules themselves
# A stalled TLS handshake on every connection: the per-request timeout, then the retries, then one message.
fault "$K8X" '{"stall_after_bytes": 0}'
t0=$SECONDS
run_rb plan reset-sqlite -n hub-a
took=$((SECONDS - t0))
is "$RC" 1 "the API server stalls every connection: plan exits 1"
like "$ERR" "the API server at $PROXIED did not answer in time" "  the message names the server"
ok $([ "$took" -le 40 ]; echo $?) "  after five attempts of 3 s and their backoff (${took}s)"
no_traceback "handshake stall"
nofault "$K8X"

# The whole exec's timeout: a command that keeps talking is ended by exec{timeout=}.
cat >"$SCRATCH/chatty.lua" <<'EOF'
local k8s = require "runbook.k8s"
local client = assert(k8s.connect(options))
local pods = assert(client:list("pods", { namespace = "hub-a", label_selector = "component=hub" }))
local r, err = client:exec(pods[1].metadata.name, { "sh", "-c", "for i in $(seq 100); do echo tick; sleep 0.2; done" },
                           { namespace = "hub-a", container = "hub", timeout = 2 })
print(r and "finished" or err)
EOF
t0=$SECONDS
run_rb exec --write "$SCRATCH/chatty.lua"
took=$((SECONDS - t0))
like "$OUT$ERR" "cut after [0-9]+ bytes of output \(timed out\)" "a talkative exec is ended by its whole-exec timeout"
ok $([ "$took" -le 8 ]; echo $?) "  in about 2 s (${took}s)"
no_traceback "exec timeout"

diag "the whole file took $((SECONDS - STARTED)) s"
done_testing
