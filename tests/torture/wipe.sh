# Kill-and-resume for wipe-hub-db: a real PostgreSQL, a real JupyterHub on it, the fake Kubernetes
# API server with the Nublado layout. Source after tap.sh, hub.sh, pg.sh and fake-k8s.sh.
#   wipe_world_start DIR       start everything (the test restarts the real hub when the hub
#                              deployment is rolled out, as the cluster would restart its pod)
#   wipe_kill_resume POINT:N   reset the world, plan, apply killed at the crash point, resume, check

. "$TOP/tests/lib/killresume.sh"
wipe_world_start() {
  local dir=$1
  pg_start "$dir/pg" >/dev/null 2>&1 || return 1
  WIPE_HUB="$dir/hub"
  hub_start "$WIPE_HUB" --db-url "$PG_HUB_URL" >/dev/null 2>&1 || return 1
  "$PY" "$TOP/tests/fake-k8s/make-seed.py" "$dir/seed" >/dev/null
  "$PY" - "$dir/seed/seed.json" "postgresql://hub@127.0.0.1:$PG_PORT/jupyterhub" "$PG_HUB_PASSWORD" <<'PYEOF'
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
PYEOF
  WIPE_SEED="$dir/seed/seed.json"
  fake_k8s_start "$dir/k8s" "$WIPE_SEED" || return 1
  export KUBECONFIG="$KUBECONFIG_FILE"
  ( seen=0
    while sleep 0.3; do
      n=$(fake_k8s_requests 'r["method"] == "PATCH" and r["path"].endswith("/deployments/hub")' 2>/dev/null | wc -l)
      if [ "$n" -gt "$seen" ]; then seen=$n; hub_restart "$WIPE_HUB" >/dev/null 2>&1; fi
    done ) &
  on_exit "kill $!"
}

wipe_psql() { "$PG_BIN/psql" "host=$PG_SOCKET_DIR port=$PG_PORT user=postgres dbname=jupyterhub" -X -q -A -t -c "$1"; }
wipe_k8s_get() {  # wipe_k8s_get PATH -> item names, or the object's name
  "$PY" - "$1" <<'PYEOF'
import json, os, ssl, sys, urllib.request
req = urllib.request.Request(os.environ["K8S_SERVER"] + sys.argv[1], headers={"Authorization": "Bearer " + os.environ["K8S_TOKEN"]})
try:
    doc = json.load(urllib.request.urlopen(req, context=ssl.create_default_context(cafile=os.environ["K8S_CA"])))
except Exception as e:
    print("error", e); sys.exit()
print(" ".join(sorted(i["metadata"]["name"] for i in doc["items"])) if "items" in doc else doc["metadata"]["name"])
PYEOF
}

# The cluster as seeded (lab namespaces and the ingress back), the hub's schema present with 12 users.
wipe_world_reset() {
  local i
  fake_k8s_control POST seed "$(cat "$WIPE_SEED")" >/dev/null
  for i in $(seq 100); do
    [ "$(wipe_psql "SELECT to_regclass('public.users') IS NOT NULL")" = t ] && break
    sleep 0.2
  done
  hub_seed "$WIPE_HUB" --generate "w$RANDOM.":12:-10d >/dev/null 2>&1
  WIPE_USERS=$(wipe_psql "SELECT count(*) FROM users")
}

# The ids of the plan's actions wipe-hub-db repeats on resume (its repeat_on_resume): deleting the
# ingress (neither a namespace nor a pod) and scaling to 0.
wipe_repeating() {
  "$PY" - "$1" <<'PYEOF'
import json, sys
ids = [a["id"] for a in json.load(open(sys.argv[1]))["actions"]
       if (a["kind"] == "k8s.delete" and not (a.get("args") or {}).get("namespace") and not (a.get("args") or {}).get("pod"))
       or (a["kind"] == "k8s.scale" and (a.get("args") or {}).get("replicas") == 0)]
print(",".join(map(str, ids)))
PYEOF
}

wipe_kill_resume() {
  local point=$1 dir="$SCRATCH/wipe-${1//:/-}" rc journal failures=0 manifest problems
  wipe_world_reset
  mkdir -p "$dir"
  "$RUNBOOK" plan wipe-hub-db -p backup_dir="$dir/backups" -o "$dir/plan.json" -q >/dev/null 2>"$dir/plan.err" \
    || { ok 1 "$point: plan"; sed 's/^/#   /' "$dir/plan.err"; return; }
  { (RUNBOOK_CRASH_AT=$point exec "$RUNBOOK" apply "$dir/plan.json" --yes --journal-dir "$dir/j" >"$dir/apply.out" 2>&1); } 2>/dev/null; rc=$?
  journal=$(ls "$dir"/j/*.journal 2>/dev/null)
  if ! kr_killed "$rc" "$dir/apply.out" "$point"; then
    ok 1 "wipe-hub-db killed at $point (not killed there: exit $rc)"; tail -n 4 "$dir/apply.out" | sed 's/^/#   /'; return
  fi
  cp "$journal" "$dir/at-kill.journal"
  "$RUNBOOK" resume "$journal" --yes >"$dir/resume.out" 2>&1; rc=$?
  [ "$rc" -eq 0 ] || { failures=1; diag "$point: resume exit $rc"; tail -n 4 "$dir"/*.out | sed 's/^/#   /'; }
  # No action finished before the kill starts again, except those that converge on a state on_stop may
  # have undone (repeat_on_resume: cutting access, the ingress's deletion and the scale to 0).
  problems=$(kr_exactly_once "$dir/at-kill.journal" "$journal" --point "$point" --repeats "$(wipe_repeating "$dir/plan.json")")
  [ $? -eq 0 ] || { failures=1; printf '%s\n' "$problems" | sed "s/^/#   $point: /"; }
  local ns; ns=$(wipe_k8s_get /api/v1/namespaces)
  case " $ns " in *" nublado-"*) failures=1; diag "$point: a lab namespace survived: $ns";; esac
  case " $ns " in *" nubladox-test "*) ;; *) failures=1; diag "$point: the decoy nubladox-test is gone";; esac
  [ "$(wipe_k8s_get /apis/gafaelfawr.lsst.io/v1alpha1/namespaces/nublado/gafaelfawringresses)" = proxy ] \
    || { failures=1; diag "$point: the ingress is not back"; }
  manifest=$(ls "$dir"/backups/*/database/manifest.json 2>/dev/null)
  [ -n "$manifest" ] && [ "$("$PY" -c 'import json,sys; print({t["name"]: t["rows"] for t in json.load(open(sys.argv[1]))["tables"]}["users"])' "$manifest")" = "$WIPE_USERS" ] \
    || { failures=1; diag "$point: no backup holding the $WIPE_USERS users"; }
  [ "$(grep -c '"kind":"pg.drop_owned"' "$journal" 2>/dev/null)" -ge 1 ] || { failures=1; diag "$point: no DROP OWNED in the journal"; }
  [ "$(wipe_psql "SELECT count(*) FROM users" 2>/dev/null)" = 0 ] || { failures=1; diag "$point: the hub's schema is not back empty"; }
  ok "$failures" "wipe-hub-db killed at $point ($(printf '%s\n' "$problems" | tail -n 1)), resumed: nothing finished repeated, labs gone, decoys kept, verified backup, schema back, access back"
}
