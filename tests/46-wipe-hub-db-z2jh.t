#!/usr/bin/env bash
# wipe-hub-db on a zero-to-jupyterhub release: a real PostgreSQL 15, a real JupyterHub 3.0 on it, and
# the fake Kubernetes API server holding make-seed.py's z2jh layout (namespace jhub: Deployments hub,
# proxy with 2 replicas, autohttps with 1, user pods jupyter-*, ConfigMap hub with the chart's
# values.yaml, Secret hub; decoys: jupyter-decoy without the user server label, an image puller, a
# user server of the same name in jhub-staging, Nublado's labs) beside the standard Nublado layout.
# The test plays the cluster's part of restarting the real hub when the fake reports its rollout.
# KILL_POINTS=N runs only the first N of the 24 kill-and-resume points (all by default; ~8 s each).
. "$(dirname "$0")/lib/tap.sh"
. "$TOP/tests/lib/hub.sh"
. "$TOP/tests/lib/pg.sh"
. "$TOP/tests/lib/fake-k8s.sh"
command -v jupyterhub >/dev/null || skip_all "jupyterhub is not installed"
export XDG_STATE_HOME="$SCRATCH/state"
# libpq's own password sources stay out of the way unless a test sets one.
unset PGPASSWORD PGSERVICE PGSERVICEFILE
export PGPASSFILE="$SCRATCH/no-pgpass"

pg_start "$SCRATCH/pg" >/dev/null 2>&1 || { ok 1 "PostgreSQL starts"; done_testing; exit 1; }
H="$SCRATCH/hub"
psql_hubdb() { "$PG_BIN/psql" "host=$PG_SOCKET_DIR port=$PG_PORT user=postgres dbname=jupyterhub" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }
hub_start "$H" --db-url "$PG_HUB_URL" >/dev/null 2>&1 || { ok 1 "hub starts on PostgreSQL"; done_testing; exit 1; }
hub_seed "$H" --generate u:20:-10d --user 'ana.maria@example.edu,josé' >/dev/null 2>&1
# JupyterHub 3.0 keeps its session idle in a transaction after a read (its startup's, a listing's),
# holding locks that DROP OWNED must wait for until its next commit (up to 5 minutes): before each
# apply the hub's last act here is a write (hub_seed), and the users are counted with psql.
users_before=$(psql_hubdb "SELECT count(*) FROM users")
is "$users_before" 22 "the hub on PostgreSQL has 22 users"

# The cluster: z2jh's values point at the real database the way the chart writes them (SQLAlchemy's
# postgresql+psycopg2://, no password: that is in Secret hub); Nublado's ConfigMap and Secret too.
"$PY" "$TOP/tests/fake-k8s/make-seed.py" --layout z2jh --db-url "postgresql+psycopg2://hub@127.0.0.1:$PG_PORT/jupyterhub" \
  --db-password "$PG_HUB_PASSWORD" "$SCRATCH/seed" >/dev/null
SEED="$SCRATCH/seed/seed.json" JHUB_SEED="$SCRATCH/seed/jhub.json"
"$PY" - "$SEED" "postgresql://hub@127.0.0.1:$PG_PORT/jupyterhub" "$PG_HUB_PASSWORD" <<'PYEOF'
import base64, json, os, sys
path, url, password = sys.argv[1:]
seed = json.load(open(path))
for obj in seed["objects"]:
    if obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == "hub-config":
        obj["data"] = {"jupyterhub.hub.db.url": url}
    if obj["kind"] == "Secret" and obj["metadata"]["name"] == "nublado-secret":
        obj["data"] = {"hub.db.password": base64.b64encode(password.encode()).decode()}
# Reloaded later through the control API, whose relative paths are the fake's, not the seed's.
base = os.path.dirname(os.path.abspath(path))
for f in seed.get("files", []) + [f for d in seed.get("deployments", []) for f in d.get("files", [])]:
    if "copy" in f and not f["copy"].startswith("/"):
        f["copy"] = os.path.join(base, f["copy"])
json.dump(seed, open(path, "w"))
# What a wipe of jhub changes, to put back between runs (reloading only that is quicker).
jhub = {"namespaces": [n for n in seed["namespaces"] if n == "jhub" or isinstance(n, dict) and n["name"] == "jhub"]}
for key in ("deployments", "pods", "objects"):
    jhub[key] = [o for o in seed[key] if o.get("namespace", o.get("metadata", {}).get("namespace")) == "jhub"]
json.dump(jhub, open(os.path.join(base, "jhub.json"), "w"))
PYEOF
fake_k8s_start "$SCRATCH/k8s" "$SEED" --pod-start-seconds 0.3 --pod-stop-seconds 0.3 \
  || { ok 1 "fake API server starts"; done_testing; exit 1; }
export KUBECONFIG="$KUBECONFIG_FILE"
Z=(-p namespace=jhub)

k8s_get() {  # k8s_get PATH [PYTHON EXPRESSION over doc]: item names, the object's name, or the expression
  "$PY" - "$@" <<'PYEOF'
import json, os, ssl, sys, urllib.request
req = urllib.request.Request(os.environ["K8S_SERVER"] + sys.argv[1], headers={"Authorization": "Bearer " + os.environ["K8S_TOKEN"]})
try:
    doc = json.load(urllib.request.urlopen(req, context=ssl.create_default_context(cafile=os.environ["K8S_CA"])))
except Exception as e:
    print("error", e); sys.exit()
if len(sys.argv) > 2:
    print(eval(sys.argv[2], {}, {"doc": doc}))
else:
    print(" ".join(sorted(i["metadata"]["name"] for i in doc["items"])) if "items" in doc else doc["metadata"]["name"])
PYEOF
}
replicas() { k8s_get "/apis/apps/v1/namespaces/jhub/deployments/$1" 'doc["spec"]["replicas"]'; }
jhub_pods() {  # the pods of jhub that are not the proxies' (those come and go with the scaling)
  k8s_get /api/v1/namespaces/jhub/pods | tr ' ' '\n' | grep -v -e '^proxy-' -e '^autohttps-' | sed 's/^hub-.*/hub-POD/;s/^user-scheduler-.*/user-scheduler-POD/' | tr '\n' ' '
}
mutations() { fake_k8s_requests 'r.get("mutating")' | wc -l | tr -d ' '; }
db_tables() { psql_hubdb "SELECT count(*) FROM pg_tables WHERE tableowner = 'hub'" | tr -d ' '; }
db_rows() {  # the rows of the hub's tables, as the plan counts them
  psql_hubdb "SELECT string_agg(format('SELECT count(*) FROM public.%I', tablename), ' UNION ALL ') FROM pg_tables WHERE tableowner = 'hub'" |
    { read -r q; psql_hubdb "SELECT sum(n) FROM ($q) AS t(n)"; } | tr -d ' '
}
thousands() { "$PY" -c 'import sys; print(format(int(sys.argv[1]), ","))' "$1"; }

# The test's part of the cluster: when jhub's hub deployment is rolled out, restart the real hub.
watch_rollouts() {
  local seen=0 n
  while sleep 0.3; do
    n=$(fake_k8s_requests 'r["method"] == "PATCH" and r["path"].endswith("/namespaces/jhub/deployments/hub")' 2>/dev/null | wc -l)
    if [ "$n" -gt "$seen" ]; then seen=$n; hub_restart "$H" >/dev/null 2>&1; fi
  done
}
watch_rollouts &
watcher=$!; on_exit "kill $watcher"

# The world before a wipe: the seed again (user pods, proxies at 2 and 1), the schema back with users.
world_reset() {  # world_reset [SEED]
  local i
  fake_k8s_control POST settings '{"podStopSeconds": 0.3}' >/dev/null
  fake_k8s_control POST seed "$(cat "${1:-$JHUB_SEED}")" >/dev/null
  for i in $(seq 100); do
    [ "$(psql_hubdb "SELECT to_regclass('public.users') IS NOT NULL")" = t ] && break
    sleep 0.2
  done
  hub_seed "$H" --generate "r$RANDOM.":5:-10d >/dev/null 2>&1
  # Settled: the seed's proxy pods only (those of an earlier template gone), all Ready.
  for i in $(seq 100); do
    [ "$(k8s_get '/api/v1/namespaces/jhub/pods?labelSelector=component+in+(proxy,autohttps)' \
         'sum(1 for p in doc["items"] if not p["metadata"].get("deletionTimestamp") and p["status"].get("phase") == "Running")'):$(
         k8s_get '/api/v1/namespaces/jhub/pods?labelSelector=component+in+(proxy,autohttps)' 'len(doc["items"])')" = 3:3 ] && break
    sleep 0.2
  done
}

is "$(jhub_pods)" "continuous-image-puller-7xq2p hub-POD jupyter-alice jupyter-bob jupyter-decoy jupyter-jos-c3-a9 user-scheduler-POD " \
   "jhub has the hub, three user servers, a look-alike and an image puller"
is "$(replicas proxy) $(replicas autohttps)" "2 1" "the proxy has 2 replicas, autohttps 1"

# --- layouts: detected where the namespace shows one, recorded in the plan; otherwise exit 2 ---
run_rb plan wipe-hub-db "${Z[@]}" --output json -o "$SCRATCH/z.json"
is "$RC" 0 "plan on jhub exits 0"
is "$("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); p=d["params"]; print(p["layout"], p["access"], p["config_map"], p["url_key"], p["password_secret"])' "$SCRATCH/z.json")" \
   "z2jh proxy hub values.yaml hub" "  z2jh detected, recorded in the plan with the chart's ConfigMap, key and Secret"
like "$(cat "$SCRATCH/z.json")" '"layout": "z2jh \(zero-to-jupyterhub; detected: Deployment proxy, no GafaelfawrIngress\)"' \
   "  the plan says how it was detected"
run_rb plan wipe-hub-db --output json
is "$("$PY" -c 'import json,sys; print(json.load(sys.stdin)["params"]["layout"])' <<<"$OUT")" nublado "the Nublado namespace is detected as nublado"
run_rb plan wipe-hub-db -p namespace=hub-a
is "$RC" 2 "a namespace with neither layout's signs (hub-a): exit 2"
like "$ERR" "cannot tell the layout of namespace hub-a: it has neither the GafaelfawrIngress proxy of Nublado nor the Deployment proxy" "  saying what it looked for"
like "$ERR" "Choose: -p layout=nublado .* or -p layout=z2jh" "  and naming the choice"
fake_k8s_control POST objects '{"apiVersion": "gafaelfawr.lsst.io/v1alpha1", "kind": "GafaelfawrIngress",
  "metadata": {"name": "proxy", "namespace": "jhub-staging"}, "config": {"baseUrl": "https://x.example.com"},
  "template": {"metadata": {"name": "proxy"}, "spec": {"rules": []}}}' >/dev/null
run_rb plan wipe-hub-db -p namespace=jhub-staging
is "$RC" 2 "a GafaelfawrIngress beside user server pods in the hub's namespace: exit 2"
like "$ERR" "it has the GafaelfawrIngress proxy \(Nublado\) and also 1 pod labelled component=singleuser-server" "  naming both signs"
run_rb plan wipe-hub-db -p namespace=hub-a -p layout=z2jh
is "$RC" 1 "-p layout=z2jh is taken as given (hub-a then has no way to cut access: exit 1)"
like "$ERR" "no way to cut user access in hub-a: neither a Deployment proxy nor the ingress ingresses/hub-a/jupyterhub" "  and says so"
run_rb plan wipe-hub-db "${Z[@]}" -p layout=swarm
is "$RC" 2 "an unknown layout: exit 2"; like "$ERR" "parameter 'layout' must be nublado or z2jh" "  naming both"

# --- the plan: read-only, and it says what will be destroyed ---
before=$(mutations); tables_before=$(db_tables); rows_before=$(db_rows)
run_rb run wipe-hub-db "${Z[@]}" --dry-run -p backup_dir="$SCRATCH/backups"
is "$RC" 0 "dry run exits 0"
like "$OUT" "deployments/jhub/proxy +cut user access: scale to 0 \(from 2, restored at the end\)" "the plan scales the proxy to 0, recording 2"
like "$OUT" "deployments/jhub/autohttps +cut user access: scale to 0 \(from 1" "  and autohttps, recording 1"
for u in alice bob jos-c3-a9; do like "$OUT" "pods/jhub/jupyter-$u +a user server \($u\)" "it deletes the user server jupyter-$u"; done
like "$OUT" "pods/jhub/jupyter-decoy +not labelled component=singleuser-server" "the look-alike jupyter-decoy is left alone, with the reason"
unlike "$OUT" "continuous-image-puller|jhub-staging|pods/jhub/hub-|nublado-alice" "no other pod or namespace is in the plan"
like "$OUT" "pods/jhub component=singleuser-server +the 3 user servers stopped \(at most 300s\)" "it waits for the user servers"
like "$OUT" "deployments/jhub/proxy,autohttps +restore user access: proxy to 2, autohttps to 1" "it restores the proxies to 2 and 1"
like "$OUT" "database +postgresql://hub@127\.0\.0\.1:$PG_PORT/jupyterhub" "the chart's postgresql+psycopg2:// URL is read as postgresql://"
like "$OUT" "database password +Secret jhub/hub key hub.db.password" "the password comes from Secret hub (libpq had none)"
rows_text=$(thousands "$rows_before")
like "$OUT" "Plan: access cut \(proxy scaled 0 <- 2, autohttps 0 <- 1\); 3 user servers stopped; 14 tables dropped \($rows_text rows\); hub restarted \(11 actions\)" \
   "the effect line: access cut with the replicas, 3 user servers, 14 tables and their $rows_text rows counted now, the restart"
like "$OUT" "Consequence: DROP OWNED BY current_user destroys the hub's 14 tables \($rows_text rows\) and 9 sequences.*Rows per table: alembic_version 1, .*users $users_before" \
   "a consequence names the tables and their rows"
like "$OUT" "jupyterhub +DROP OWNED BY current_user destroys 14 tables \($rows_text rows\): alembic_version, api_tokens, .*users \(the role owns nothing else\)" \
   "the drop's reason lists the tables"
like "$OUT" "Users are locked out from the first action to the last: at most about 33 minutes \(the timeouts of its waits: proxies 2 x 2 x 120s, user servers 300s, hub rollout 600s, schema 600s\)" \
   "how long access may be cut, at most"
unlike "$(sed -n '/^Left alone/,$p' <<<"$OUT")" "table " "the tables are not listed as left alone"
unlike "$OUT$ERR" "$PG_HUB_PASSWORD" "the password appears nowhere"
is "$(mutations)" "$before" "dry run: no mutating request reached the cluster"
is "$(db_tables) $(db_rows)" "$tables_before $rows_before" "dry run: the database is untouched"
is "$(replicas proxy) $(replicas autohttps)" "2 1" "dry run: the proxies are as they were"
run_rb plan wipe-hub-db "${Z[@]}" --output json
is "$("$PY" -c 'import json,sys; d=json.load(sys.stdin); print(d["effect"][0], "|", [s["target"] for s in d["skipped"]])' <<<"$OUT")" \
   "access cut (proxy scaled 0 <- 2, autohttps 0 <- 1) | ['pods/jhub/jupyter-decoy']" "JSON: the effect, and only the look-alike left alone"

# --- the prompt shows the effect and how long users are locked out ---
run_rb plan wipe-hub-db "${Z[@]}" -p backup_dir="$SCRATCH/backups" -o "$SCRATCH/prompt.json"
prompt=$("$PY" "$TOP/tests/lib/pty_run.py" "no" "$RUNBOOK" apply "$SCRATCH/prompt.json" --no-color --journal-dir "$SCRATCH/jp" 2>&1); rc=$?
is "$rc" 3 "answering no at the prompt: exit 3"
like "$(tail -n 8 <<<"$prompt")" "Effect: access cut \(proxy scaled 0 <- 2, autohttps 0 <- 1\); 3 user servers stopped; 14 tables dropped" \
   "  the effect is shown right above the prompt"
like "$prompt" "This also: Users are locked out .* at most about 33 minutes" "  with how long access may be cut"
is "$(mutations)" "$before" "  nothing was changed"

# --- password sources: libpq's own first, the Secret only when libpq has none; both named when missing ---
absent_gets() { fake_k8s_requests 'r["path"].endswith("/secrets/absent")' | wc -l | tr -d ' '; }
url=(-p database_url="postgresql://hub@127.0.0.1:$PG_PORT/jupyterhub")
PGPASSWORD=$PG_HUB_PASSWORD run_rb plan wipe-hub-db "${Z[@]}" "${url[@]}" -p password_secret=absent
is "$RC" 0 "PGPASSWORD with -p database_url and no Secret: the plan works (exit 0)"
like "$OUT" "database password +PGPASSWORD" "  the password came from PGPASSWORD"
is "$(absent_gets)" 0 "  the Secret was not even looked up"
printf '127.0.0.1:%s:jupyterhub:hub:%s\n' "$PG_PORT" "$PG_HUB_PASSWORD" > "$SCRATCH/pgpass"; chmod 600 "$SCRATCH/pgpass"
PGPASSFILE=$SCRATCH/pgpass run_rb plan wipe-hub-db "${Z[@]}" -p password_secret=absent
is "$RC" 0 "a password file (PGPASSFILE) and no Secret: exit 0"
like "$OUT" "database password +the password file $SCRATCH/pgpass" "  the password came from it"
is "$(absent_gets)" 0 "  the Secret was not looked up"
run_rb plan wipe-hub-db "${Z[@]}" -p password_secret=absent
is "$RC" 2 "no libpq password and no Secret: exit 2"
like "$ERR" "no database password: libpq has none for postgresql://hub@127\.0\.0\.1:$PG_PORT/jupyterhub .* and Secret jhub/absent does not exist" \
   "  the missing Secret is named as missing"
unlike "$ERR" "has no key" "  not as a missing key"
run_rb plan wipe-hub-db "${Z[@]}" -p password_key=hub.db.pass
is "$RC" 2 "a Secret without the key: exit 2"; like "$ERR" "Secret jhub/hub has no key hub.db.pass" "  the missing key is named"
PGPASSWORD=wrong-password run_rb plan wipe-hub-db "${Z[@]}"
is "$RC" 1 "a wrong PGPASSWORD: exit 1, the Secret does not paper over it"
like "$ERR" "password authentication failed" "  libpq's message"
printf '127.0.0.1:%s:otherdb:hub:x\n' "$PG_PORT" > "$SCRATCH/pgpass-other"; chmod 600 "$SCRATCH/pgpass-other"
PGPASSFILE=$SCRATCH/pgpass-other run_rb plan wipe-hub-db "${Z[@]}"
is "$RC" 0 "a password file with no entry for this database: the Secret is used (exit 0)"
like "$OUT" "database password +Secret jhub/hub key hub.db.password" "  and named"
is "$(mutations)" "$before" "no check above changed anything"

# --- apply: access cut while the database is dropped, user servers stopped, decoys kept, replicas back ---
run_rb plan wipe-hub-db "${Z[@]}" -p backup_dir="$SCRATCH/backups" -o "$SCRATCH/plan.json"
is "$RC" 0 "plan exits 0"
log_lines=$(wc -l < "$FAKE_K8S_DIR/requests.log")
run_rb apply "$SCRATCH/plan.json" --yes --journal-dir "$SCRATCH/j"
is "$RC" 0 "apply exits 0"
[ "$RC" = 0 ] || diag "$OUT" "$ERR"
journal=$(ls "$SCRATCH"/j/*.journal)
is "$(jhub_pods)" "continuous-image-puller-7xq2p hub-POD jupyter-decoy user-scheduler-POD " \
   "the user servers are gone; the hub, the look-alike and the image puller remain"
is "$(k8s_get /api/v1/namespaces/jhub-staging/pods) $(k8s_get /api/v1/namespaces/nublado-alice/pods)" "jupyter-alice nb-alice" \
   "user servers of other namespaces remain"
is "$(replicas proxy) $(replicas autohttps)" "2 1" "the proxy is back at 2 replicas, autohttps at 1"
is "$(k8s_get /apis/apps/v1/namespaces/jhub/deployments/proxy 'doc["status"].get("availableReplicas")')" 2 "  and both proxy replicas are available"
# The order: the fake's log has the proxies scaled (down), the user pods deleted, the hub restarted,
# the proxies scaled (up); the journal has both cuts finished (their pods gone) before the drop began,
# and the drop finished before the restart and the restore began.
k8s_order=$(tail -n +"$((log_lines + 1))" "$FAKE_K8S_DIR/requests.log" | "$PY" -c '
import json, sys
seq = []
for line in sys.stdin:
    r = json.loads(line)
    if "/namespaces/jhub/" not in r["path"] or r["method"] not in ("PATCH", "DELETE"): continue
    what = r["method"] + " " + r["path"].rsplit("/", 2)[1] + "/" + r["path"].rsplit("/", 1)[1]
    what = "DELETE user-pods" if what.startswith("DELETE pods/") else what
    if not seq or seq[-1] != what: seq.append(what)
print(" ".join(seq))')
is "$k8s_order" "PATCH deployments/proxy PATCH deployments/autohttps DELETE user-pods PATCH deployments/hub PATCH deployments/proxy PATCH deployments/autohttps" \
   "the fake's log: proxy and autohttps scaled, user pods deleted, hub restarted, proxy and autohttps scaled"
journal_order=$("$PY" - "$journal" <<'PYEOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
actions = {a["id"]: a for a in lines[0]["plan"]["actions"]}
seq = []
for e in lines[1:]:
    if e["type"] == "finish": seq.append("finish")
    a = actions.get(e.get("id"))
    if not a or a["kind"] == "k8s.delete": continue
    what = a["kind"] + ("-down" if a["args"].get("replicas") == 0 else "-up" if a["kind"] == "k8s.scale" else "")
    seq.append(what + ":" + e["type"])
print(" ".join(seq))
PYEOF
)
is "$journal_order" "k8s.scale-down:start k8s.scale-down:end k8s.scale-down:start k8s.scale-down:end k8s.wait_gone:start k8s.wait_gone:end pg.backup:start pg.backup:end pg.drop_owned:start pg.drop_owned:end k8s.restart:start k8s.restart:end pg.wait_schema:start pg.wait_schema:end k8s.scale-up:start k8s.scale-up:end finish" \
   "the journal: both cuts ended before the drop began; the restore began after the drop, the restart and the schema"
like "$(sed -n '/k8s.scale deployments\/jhub\/proxy: /p' <<<"$OUT")" "at 0 \(was 2\)" "the proxy's cut waited for its pods to stop"
dir=$(ls -d "$SCRATCH"/backups/jhub-*/database)
is "$("$PY" -c 'import json,sys; m=json.load(open(sys.argv[1])); print({t["name"]: t["rows"] for t in m["tables"]}["users"], len(m["tables"]), sum(t["rows"] for t in m["tables"]))' "$dir/manifest.json")" \
   "$users_before 14 $rows_before" "the backup holds the $users_before users, 14 tables, the $rows_before rows the plan counted"
for i in $(seq 50); do [ "$(hub_count "$H" 2>/dev/null)" = 0 ] && break; sleep 0.2; done
is "$(hub_count "$H")" 0 "the restarted hub has recreated its schema, with no users"
is "$(db_tables)" 14 "the hub's 14 tables exist again"
unlike "$(cat "$journal")$OUT$ERR" "$PG_HUB_PASSWORD" "the password is in no journal or output"

# --- Ctrl-C while waiting for the user servers: the run stops, the proxies come back ---
# User pods take their 30 s grace period to stop; the proxies' pods none.
"$PY" - "$JHUB_SEED" "$SCRATCH/seed/slow-users.json" <<'PYEOF'
import json, sys
seed = json.load(open(sys.argv[1]))
for d in seed["deployments"]:
    if d["namespace"] == "jhub" and d["name"] in ("proxy", "autohttps"):
        d["terminationGracePeriodSeconds"] = 0
json.dump(seed, open(sys.argv[2], "w"))
PYEOF
world_reset "$SCRATCH/seed/slow-users.json"
fake_k8s_control POST settings '{"podStopSeconds": 60}' >/dev/null
run_rb plan wipe-hub-db "${Z[@]}" -p backup_dir="$SCRATCH/backups" -o "$SCRATCH/plan-int.json"
tables_before=$(db_tables); rows_before=$(db_rows)
"$RUNBOOK" apply "$SCRATCH/plan-int.json" --yes --journal-dir "$SCRATCH/jint" >"$SCRATCH/int.out" 2>"$SCRATCH/int.err" &
pid=$!
# The plan line at the journal's head names every action: wait for the wait's own start line, which is
# written after both proxies' cuts ended (the order is checked above).
for i in $(seq 600); do cat "$SCRATCH"/jint/*.journal 2>/dev/null | grep '"type":"start"' | grep -q '"kind":"k8s.wait_gone"' && break; sleep 0.1; done
is "$(replicas proxy) $(replicas autohttps)" "0 0" "while it waits for the user servers, both proxies are at 0"
kill -INT $pid; wait $pid; rc=$?
is "$rc" 1 "SIGINT during the wait: exit 1"
like "$(cat "$SCRATCH/int.out")" "FAILED +k8s.wait_gone .*interrupted while waiting for the user servers" "  the wait was interrupted"
like "$(cat "$SCRATCH/int.err")" "access restored: proxy back to 2, autohttps back to 1 \(the database is consistent\)" "  on_stop restored access"
is "$(replicas proxy) $(replicas autohttps)" "2 1" "  to exactly the recorded replicas"
is "$(db_tables) $(db_rows)" "$tables_before $rows_before" "  the database is untouched"
# Resume cuts access again, then finishes.
fake_k8s_control POST settings '{"podStopSeconds": 0.3}' >/dev/null
int_log=$(wc -l < "$FAKE_K8S_DIR/requests.log")
run_rb resume "$(ls "$SCRATCH"/jint/*.journal)" --yes
is "$RC" 0 "resume after the Ctrl-C: exit 0"
is "$(tail -n +"$((int_log + 1))" "$FAKE_K8S_DIR/requests.log" | grep -c '"method": *"PATCH".*/namespaces/jhub/deployments/proxy"')" 2 \
   "  it scaled the proxy down again, then back"
is "$(replicas proxy) $(replicas autohttps)" "2 1" "  the proxies end at 2 and 1"
for i in $(seq 50); do [ "$(hub_count "$H" 2>/dev/null)" = 0 ] && break; sleep 0.2; done
is "$(hub_count "$H")" 0 "  the database was wiped and recreated"

# --- killed at every journal write (1 plan + 2 x 11 actions + finish), then resumed ---
kill_resume() {
  local point=$1 d="$SCRATCH/kill-${1//:/-}" rc failures=0 manifest users
  world_reset
  users=$(psql_hubdb "SELECT count(*) FROM users")
  mkdir -p "$d"
  "$RUNBOOK" plan wipe-hub-db "${Z[@]}" -p backup_dir="$d/backups" -o "$d/plan.json" -q >/dev/null 2>"$d/plan.err" \
    || { ok 1 "$point: plan"; sed 's/^/#   /' "$d/plan.err"; return; }
  { (RUNBOOK_CRASH_AT=$point exec "$RUNBOOK" apply "$d/plan.json" --yes --journal-dir "$d/j" >"$d/apply.out" 2>&1); } 2>/dev/null; rc=$?
  if [ "$rc" -ne 137 ] || ! grep -q "crash point ${point%%:*} reached" "$d/apply.out"; then
    failures=1; diag "$point: the apply was not killed there (exit $rc)"
  else
    "$RUNBOOK" resume "$(ls "$d"/j/*.journal)" --yes >"$d/resume.out" 2>&1; rc=$?
    [ "$rc" -eq 0 ] || { failures=1; diag "$point: resume exit $rc"; tail -n 5 "$d/resume.out" | sed 's/^/#   /'; }
  fi
  [ "$(jhub_pods)" = "continuous-image-puller-7xq2p hub-POD jupyter-decoy user-scheduler-POD " ] \
    || { failures=1; diag "$point: jhub's pods: $(jhub_pods)"; }
  [ "$(replicas proxy) $(replicas autohttps)" = "2 1" ] || { failures=1; diag "$point: proxies at $(replicas proxy) $(replicas autohttps)"; }
  manifest=$(ls "$d"/backups/*/database/manifest.json 2>/dev/null)
  [ -n "$manifest" ] && [ "$("$PY" -c 'import json,sys; print({t["name"]: t["rows"] for t in json.load(open(sys.argv[1]))["tables"]}["users"])' "$manifest")" = "$users" ] \
    || { failures=1; diag "$point: no backup holding the $users users"; }
  [ "$(psql_hubdb "SELECT count(*) FROM users" 2>/dev/null)" = 0 ] || { failures=1; diag "$point: the schema is not back empty"; }
  ok "$failures" "killed after journal write ${point#journal:}, resumed: user servers gone, decoys kept, backup, schema back, proxies at 2 and 1"
}
for n in $(seq 1 ${KILL_POINTS:-24}); do kill_resume "journal:$n"; done

done_testing
