#!/usr/bin/env bash
# wipe-hub-db end to end: a real PostgreSQL 15, a real JupyterHub 3.0 on it with users, and the fake
# Kubernetes API server holding the Nublado layout (hub deployment, GafaelfawrIngress proxy, lab
# namespaces, decoys). The test plays the cluster's part of restarting the real hub when the fake
# reports the rollout, as Kubernetes would restart the hub's pod.
. "$(dirname "$0")/lib/tap.sh"
. "$TOP/tests/lib/hub.sh"
. "$TOP/tests/lib/pg.sh"
. "$TOP/tests/lib/fake-k8s.sh"
command -v jupyterhub >/dev/null || skip_all "jupyterhub is not installed"
export XDG_STATE_HOME="$SCRATCH/state"

pg_start "$SCRATCH/pg" >/dev/null 2>&1 || { ok 1 "PostgreSQL starts"; done_testing; exit 1; }
H="$SCRATCH/hub"
hub_start "$H" --db-url "$PG_HUB_URL" >/dev/null 2>&1 || { ok 1 "hub starts on PostgreSQL"; done_testing; exit 1; }
hub_seed "$H" --generate u:25:-10d --user 'ana.maria@example.edu,josé' >/dev/null 2>&1
users_before=$(hub_count "$H")
is "$users_before" 27 "the hub on PostgreSQL has 27 users"

# The cluster: the fake's standard Nublado seed, its ConfigMap and Secret pointing at the real database.
"$PY" "$TOP/tests/fake-k8s/make-seed.py" "$SCRATCH/seed" >/dev/null
"$PY" - "$SCRATCH/seed/seed.json" "postgresql://hub@127.0.0.1:$PG_PORT/jupyterhub" "$PG_HUB_PASSWORD" <<'PYEOF'
import base64, json, sys
path, url, password = sys.argv[1:]
seed = json.load(open(path))
for obj in seed["objects"]:
    if obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == "hub-config":
        obj["data"] = {"jupyterhub.hub.db.url": url}
    if obj["kind"] == "Secret" and obj["metadata"]["name"] == "nublado-secret":
        obj["data"] = {"hub.db.password": base64.b64encode(password.encode()).decode()}
json.dump(seed, open(path, "w"))
PYEOF
fake_k8s_start "$SCRATCH/k8s" "$SCRATCH/seed/seed.json" || { ok 1 "fake API server starts"; done_testing; exit 1; }
export KUBECONFIG="$KUBECONFIG_FILE"
k8s_names() { "$PY" - "$@" <<'PYEOF'
import json, subprocess, sys, os, ssl, urllib.request
req = urllib.request.Request(os.environ["K8S_SERVER"] + sys.argv[1],
    headers={"Authorization": "Bearer " + os.environ["K8S_TOKEN"]})
ctx = ssl.create_default_context(cafile=os.environ["K8S_CA"])
try:
    doc = json.load(urllib.request.urlopen(req, context=ctx))
except Exception as e:
    print("error", e); sys.exit()
print(" ".join(sorted(i["metadata"]["name"] for i in doc.get("items", []))) if "items" in doc else doc["metadata"]["name"])
PYEOF
}
mutations() { fake_k8s_requests 'r.get("mutating")' | wc -l | tr -d ' '; }
psql_hubdb() { "$PG_BIN/psql" "host=$PG_SOCKET_DIR port=$PG_PORT user=postgres dbname=jupyterhub" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }
db_tables() { psql_hubdb "SELECT count(*) FROM pg_tables WHERE tableowner = 'hub'" | tr -d ' '; }

# The test's part of the cluster: when the hub deployment is rolled out, restart the real hub.
watch_rollouts() {
  local seen=0 n
  while sleep 0.3; do
    n=$(fake_k8s_requests 'r["method"] == "PATCH" and r["path"].endswith("/deployments/hub")' 2>/dev/null | wc -l)
    if [ "$n" -gt "$seen" ]; then seen=$n; hub_restart "$H" >/dev/null 2>&1; fi
  done
}
watch_rollouts &
watcher=$!; on_exit "kill $watcher"

is "$(k8s_names /api/v1/namespaces)" "default hub-a hub-b kube-node-lease kube-public kube-system nublado nublado-alice nublado-bob nubladox-test other-nublado-carol" \
   "the cluster has the hub namespace, two labs, two decoys and two other hubs"

# --- the plan: read-only, and it says everything ---
before=$(mutations); tables_before=$(db_tables)
run_rb run wipe-hub-db --dry-run -p backup_dir="$SCRATCH/backups"
is "$RC" 0 "dry run exits 0"
like "$OUT" "gafaelfawringresses/nublado/proxy +saved so access can be restored" "the plan saves the ingress"
like "$OUT" "namespaces/nublado-alice +a user lab namespace" "the plan deletes nublado-alice"
like "$OUT" "namespaces/nublado-bob" "  and nublado-bob"
like "$OUT" "namespaces/nubladox-test +does not start with nublado-" "the decoy nubladox-test is left, with the reason"
like "$OUT" "namespaces/other-nublado-carol +does not start with nublado-" "the decoy other-nublado-carol is left"
like "$OUT" "namespaces/nublado +the hub's own namespace" "the hub's namespace is left"
like "$OUT" "postgresql://hub@127\.0\.0\.1:[0-9]+/jupyterhub +COPY of 14 tables \(and 9 sequences" "the plan backs up the 14 hub tables"
like "$OUT" "database +postgresql://hub@127\.0\.0\.1:[0-9]+/jupyterhub" "the plan names the database, without a password"
like "$OUT" "Plan: access cut \(GafaelfawrIngress proxy deleted, recreated at the end\); 2 lab namespaces deleted; 14 tables dropped \([0-9,]+ rows\); hub restarted \(9 actions\)" \
   "the effect line says what is destroyed"
like "$OUT" "Users are locked out from the first action to the last: at most about 42 minutes \(the timeouts of its waits: ingress 120s, lab namespaces 2 x 600s" \
   "  and how long users are locked out at most"
run_rb plan wipe-hub-db -p backup_dir="$SCRATCH/backups" --output json
is "$("$PY" -c 'import json,sys; d=json.load(sys.stdin); drop=[a for a in d["actions"] if a["kind"] == "pg.drop_owned"][0]; print(sorted(drop["args"]["tables"]) == sorted("alembic_version api_tokens group_role_map groups oauth_clients oauth_codes roles servers service_role_map services spawners user_group_map user_role_map users".split()), all(t in drop["reason"] for t in drop["args"]["tables"]), [s["target"] for s in d["skipped"] if s["target"].startswith("table ")], d["params"]["layout"])' <<<"$OUT")" \
   "True True [] nublado" "the drop names the 14 tables it destroys; none is listed as left alone; layout nublado detected"
like "$OUT" '"DROP OWNED BY current_user destroys the hub.s 14 tables' "  a consequence says the tables are destroyed"
unlike "$OUT$ERR" "$PG_HUB_PASSWORD" "the password appears nowhere"
is "$(mutations)" "$before" "dry run: no mutating request reached the cluster"
is "$(db_tables)" "$tables_before" "dry run: the database still has its tables"
is "$(hub_count "$H")" "$users_before" "dry run: the hub still has its users"

run_rb -vv plan wipe-hub-db -p backup_dir="$SCRATCH/backups"
like "$ERR" "pg: connecting to postgresql://hub:\*\*\*@" "-vv shows the database URL with its password hidden"

# --- a role that owns something else: the plan refuses, nothing is touched ---
psql_hubdb "CREATE TABLE public.site_notes (note text); ALTER TABLE public.site_notes OWNER TO hub;" >/dev/null
run_rb plan wipe-hub-db -p backup_dir="$SCRATCH/backups"
is "$RC" 1 "a role that owns a table that is not JupyterHub's: the plan refuses (exit 1)"
like "$ERR" "owns 1 object that is not JupyterHub's: table site_notes.*nothing was touched" "  naming the object"
is "$(mutations)" "$before" "  nothing was sent to the cluster"
psql_hubdb "DROP TABLE public.site_notes" >/dev/null

# --- bad parameters ---
run_rb plan wipe-hub-db -p lab_prefix=nublado
is "$RC" 2 "a lab prefix without the dash: exit 2"; like "$ERR" "must end with '-'" "  says why"
run_rb plan wipe-hub-db -p namespace=nublado-hub
is "$RC" 2 "a prefix that would match the hub's namespace: exit 2"; like "$ERR" "would match the hub's own namespace" "  says why"

# --- the database goes away between plan and apply: stop before anything irreversible, access back ---
run_rb plan wipe-hub-db -p backup_dir="$SCRATCH/backups" -o "$SCRATCH/plan1.json"
is "$RC" 0 "plan exits 0"
pg_ctl_stop() { runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$PG_DIR/data" -m fast stop >/dev/null 2>&1 || \
                /usr/lib/postgresql/15/bin/pg_ctl -D "$PG_DIR/data" -m fast stop >/dev/null 2>&1; }
pg_restart() {
  _pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 30 \
    -o "-k '$PG_DIR' -p $PG_PORT -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off" start >/dev/null
}
pg_stop "$PG_DIR"
run_rb apply "$SCRATCH/plan1.json" --yes
is "$RC" 1 "the database went away since the plan: exit 1"
like "$ERR" "cannot connect to PostgreSQL postgresql://hub:\*\*\*@127\.0\.0\.1:[0-9]+/jupyterhub.*Connection refused" "  saying the database cannot be reached"
unlike "$ERR" "stack traceback" "  a database that is down is not a bug: no traceback"
is "$(mutations)" "$before" "  before anything was changed in the cluster"
unlike "$OUT$ERR" "$PG_HUB_PASSWORD" "  without showing the password"
pg_restart
is "$(db_tables)" "$tables_before" "the database is untouched"

# --- a lab namespace that does not go away: the run stops, access comes back (the database is intact) ---
run_rb plan wipe-hub-db -p backup_dir="$SCRATCH/backups" -p namespace_timeout=3 -o "$SCRATCH/plan.json"
is "$RC" 0 "plan (namespace_timeout 3 s) exits 0"
fake_k8s_control POST namespaces/nublado-bob/hang '{"hang": true}' >/dev/null
run_rb apply "$SCRATCH/plan.json" --yes --journal-dir "$SCRATCH/j"
is "$RC" 1 "a lab namespace stuck terminating: exit 1"
like "$OUT" "FAILED +k8s.delete namespaces/nublado-bob: timed out after 3s" "  the stuck namespace is named"
like "$ERR" "access restored: the ingress is back" "  on_stop restored access: the database was never touched"
is "$(k8s_names /apis/gafaelfawr.lsst.io/v1alpha1/namespaces/nublado/gafaelfawringresses)" "proxy" "  the ingress exists again"
is "$(db_tables)" "$tables_before" "  the database still has its tables"
journal=$(ls "$SCRATCH"/j/*.journal)
like "$(cat "$journal")" '"type":"on_stop"' "  the journal records it"
like "$ERR" "runbook resume $journal" "  and the message says how to finish"

# --- resume: cuts access again first; killed after the namespaces are gone; resumed again ---
fake_k8s_control POST namespaces/nublado-bob/hang '{"hang": false}' >/dev/null
"$RUNBOOK" resume "$journal" --yes >"$SCRATCH/resume1.out" 2>&1 &
pid=$!
for i in $(seq 200); do
  "$PY" - "$journal" <<'PYEOF' && break
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
plan = lines[0]["plan"]
ns = {a["id"] for a in plan["actions"] if a["target"].startswith("namespaces/")}
resumed = False; done = set()
for e in lines[1:]:
    if e["type"] == "resume": resumed = True
    if resumed and e["type"] == "end" and e["outcome"] == "done": done.add(e["id"])
sys.exit(0 if ns <= done else 1)
PYEOF
  sleep 0.1
done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null  # (it may have finished on its own)
like "$(cat "$journal")" '"type":"resume"' "the first resume was under way"
is "$(k8s_names /api/v1/namespaces | tr ' ' '\n' | grep -c '^nublado-')" 0 "  and had deleted both lab namespaces when it was killed"
run_rb resume "$journal" --yes
is "$RC" 0 "the second resume finishes the job: exit 0"
like "$ERR" "Resuming wipe-hub-db on nublado" "  it says what it resumes"

# --- the result ---
is "$(k8s_names /api/v1/namespaces)" "default hub-a hub-b kube-node-lease kube-public kube-system nublado nubladox-test other-nublado-carol" \
   "lab namespaces gone; the hub's namespace, the decoys and other hubs remain"
is "$(k8s_names /apis/gafaelfawr.lsst.io/v1alpha1/namespaces/nublado/gafaelfawringresses)" "proxy" "the ingress is back"
dir=$(ls -d "$SCRATCH"/backups/nublado-*/database)
ok $([ -f "$dir/manifest.json" ]; echo $?) "the database backup has a manifest ($dir)"
is "$("$PY" -c 'import json,sys; m=json.load(open(sys.argv[1])); print({t["name"]: t["rows"] for t in m["tables"]}["users"], len(m["tables"]), len(m["sequences"]))' "$dir/manifest.json")" \
   "27 14 9" "the backup holds the 27 users' rows, 14 tables and 9 sequences"
grep -q "josé" "$dir/users.copy"; ok $? "the users' rows are in users.copy"
ok $("$PY" -c '
import hashlib, json, os, sys
d = sys.argv[1]; m = json.load(open(os.path.join(d, "manifest.json")))
sys.exit(any(hashlib.sha256(open(os.path.join(d, t["file"]), "rb").read()).hexdigest() != t["sha256"] for t in m["tables"]))' "$dir"; echo $?) \
   "every backup file matches its SHA-256"
is "$(stat -c %a "$dir/users.copy")" 600 "backup files are mode 0600"
for i in $(seq 50); do [ "$(hub_count "$H" 2>/dev/null)" = 0 ] && break; sleep 0.2; done
is "$(hub_count "$H")" 0 "the restarted hub has recreated its schema, with no users"
is "$(db_tables)" 14 "the hub's 14 tables exist again"
is "$(grep -c '"kind":"pg.drop_owned".*"type":"start"\|"type":"start".*"kind":"pg.drop_owned"' "$journal")" 1 "DROP OWNED ran once"
unlike "$(cat "$journal" "$SCRATCH"/*.out 2>/dev/null)" "$PG_HUB_PASSWORD" "the password is in no journal or output"

# --- sessions holding locks on the hub's tables (a running hub leaves its reads in an open transaction) ---
# hold_lock NAME ROLE SQL: a psql session (as ROLE) that runs SQL in a transaction and then stays idle in
# it until release_lock NAME closes its stdin (a FIFO the test holds open). NAME_backend is its backend's pid.
hold_lock() {
  local name=$1 role=$2 sql=$3 fd i conninfo="host=$PG_SOCKET_DIR port=$PG_PORT user=postgres dbname=jupyterhub"
  [ "$role" = hub ] && conninfo="host=127.0.0.1 port=$PG_PORT user=hub dbname=jupyterhub"
  mkfifo "$SCRATCH/$name.fifo"
  PGPASSWORD=$PG_HUB_PASSWORD "$PG_BIN/psql" "$conninfo" -X -q -A -t <"$SCRATCH/$name.fifo" >"$SCRATCH/$name.out" 2>&1 &
  on_exit "kill $! 2>/dev/null"
  exec {fd}>"$SCRATCH/$name.fifo"; eval "${name}_fd=$fd"
  echo "BEGIN; SELECT pg_backend_pid(); $sql" >&"$fd"
  for i in $(seq 100); do [ -s "$SCRATCH/$name.out" ] && break; sleep 0.1; done
  eval "${name}_backend=$(head -n 1 "$SCRATCH/$name.out")"
}
release_lock() { local fd_var="${1}_fd"; eval "exec ${!fd_var}>&-"; }
session_state() { psql_hubdb "SELECT coalesce(state, '?') FROM pg_stat_activity WHERE pid = $1"; }

hub_seed "$H" --generate v:3:-10d >/dev/null 2>&1
hold_lock hubread hub "SELECT count(*) FROM users;"
is "$(session_state "$hubread_backend")" "idle in transaction" "a session of the hub's role is idle in a transaction after reading users"
run_rb plan wipe-hub-db -p backup_dir="$SCRATCH/backups-idle" -p statement_timeout=30 -o "$SCRATCH/plan-idle.json"
like "$OUT" "sessions of the role left idle in a transaction .* are ended just before the drop" "the plan says the role's idle sessions will be ended"
started=$SECONDS
run_rb apply "$SCRATCH/plan-idle.json" --yes
is "$RC" 0 "the wipe does not wait for that idle transaction: exit 0"
ok $([ $((SECONDS - started)) -lt 30 ]; echo $?) "  well before the 30 s statement timeout ($((SECONDS - started)) s)"
like "$OUT" "pg.drop_owned .*dropped [0-9]+ objects \(after ending [0-9]+ sessions? of the role idle in a transaction\)" \
   "  it says it ended the role's idle sessions"
is "$(session_state "$hubread_backend")" "" "  that session is gone"
release_lock hubread

for i in $(seq 50); do [ "$(db_tables)" = 14 ] && break; sleep 0.2; done
hold_lock other postgres "LOCK TABLE public.users IN ACCESS SHARE MODE;"
run_rb plan wipe-hub-db -p backup_dir="$SCRATCH/backups-other" -p statement_timeout=6 -o "$SCRATCH/plan-other.json"
tables_before=$(db_tables)
run_rb apply "$SCRATCH/plan-other.json" --yes --journal-dir "$SCRATCH/j-other"
is "$RC" 1 "another role's transaction holding a lock on users: exit 1 after the statement timeout"
like "$OUT" "FAILED +pg.drop_owned .*DROP OWNED waited 6s for locks on the hub's tables and gave up; nothing was dropped. Holding them: (pid [^)]*\), )*pid $other_backend \(role postgres, application psql(, idle in transaction)?\)" \
   "  naming the session that holds it (pid, role, application; its state when the role may see it)"
is "$(db_tables)" "$tables_before" "  the tables are all there"
is "$(session_state "$other_backend")" "idle in transaction" "  that session of another role was not ended"
release_lock other
run_rb resume "$(ls "$SCRATCH"/j-other/*.journal)" --yes
is "$RC" 0 "once it is gone, resume finishes the wipe: exit 0"

done_testing
