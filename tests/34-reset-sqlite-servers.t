#!/usr/bin/env bash
# reset-sqlite and the users' servers, and its backups' manifests, on the fake Kubernetes API server
# (hubs in hub-a and hub-b with real SQLite files) and a real JupyterHub 3.0 whose KubeSpawner
# stand-in makes each server's pod in hub-a:
# - user server pods (component=singleuser-server) in the hub namespaces are deleted, and gone, before
#   the database is removed and the hub restarts; decoys stay (other labels, other namespaces, the hub
#   and the proxy); user_servers=keep leaves them running and the plan says so;
# - with -p hub, running servers are stopped through the hub's API (its spawner deletes their pods:
#   the runbook deletes none of them) and only a pod the hub does not know is deleted directly;
#   a hub whose servers have no pod in the namespace is refused;
# - each backup has a manifest.json (target, files' SHA-256, hub version, the run); mode=restore refuses
#   another target's backup (unless allow_foreign_backup=true) and a file that does not match its manifest,
#   and warns about a backup without one;
# - killed between stopping the servers and the restart, then resumed: every server stopped once, the
#   database removed after a verified backup, the hub restarted.
. "$(dirname "$0")/lib/tap.sh"
. "$TOP/tests/lib/fake-k8s.sh"
. "$TOP/tests/lib/hub.sh"
for tool in openssl bwrap; do command -v "$tool" >/dev/null || skip_all "$tool is not installed"; done
unset RUNBOOK_PATH JUPYTERHUB_API_TOKEN JUPYTERHUB_API_URL KUBERNETES_SERVICE_HOST KUBERNETES_SERVICE_PORT

"$PY" "$TOP/tests/fake-k8s/make-seed.py" "$SCRATCH/seed" >/dev/null
fake_k8s_start "$SCRATCH/k8s" "$SCRATCH/seed/seed.json" --pod-start-seconds 0.2 --pod-stop-seconds 0.3
ok $? "the fake API server starts with hubs in hub-a and hub-b" || { done_testing; exit 1; }
D=$FAKE_K8S_DIR
export HOME="$SCRATCH/home" XDG_STATE_HOME="$SCRATCH/state" KUBECONFIG=$KUBECONFIG_FILE
mkdir -p "$HOME"
DB_A=$D/volumes/hub-db-hub-a/jupyterhub.sqlite
DB_B=$D/volumes/hub-db-hub-b/jupyterhub.sqlite
ORIGINAL=$SCRATCH/seed/jupyterhub.sqlite
sum() { sha256sum < "$1" | cut -d' ' -f1; }
jget() { "$PY" -c 'import json, sys; d = json.loads(sys.argv[1]); print(json.dumps(eval(sys.argv[2])) if not isinstance(eval(sys.argv[2]), str) else eval(sys.argv[2]))' "$1" "$2"; }
# pods NS [SELECTOR]: the names of the pods there, sorted, on one line (not in requests.log: control API)
pods() {
  fake_k8s_control GET "state?resource=pods&namespace=$1" |
    "$PY" -c 'import json, sys
sel = sys.argv[1]
items = json.load(sys.stdin)["objects"].get("pods", [])
def match(p):
    if not sel: return True
    k, v = sel.split("=")
    return (p["metadata"].get("labels") or {}).get(k) == v
print(" ".join(sorted(p["metadata"]["name"] for p in items if match(p) and not p["metadata"].get("deletionTimestamp"))))' "${2:-}"
}
# user_pod NS NAME USER: a bare pod as KubeSpawner makes them (labels and annotation), through the control API
user_pod() {
  fake_k8s_control POST objects "{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {\"name\": \"$2\", \"namespace\": \"$1\",
    \"labels\": {\"component\": \"singleuser-server\", \"app\": \"jupyterhub\", \"hub.jupyter.org/username\": \"$3\"},
    \"annotations\": {\"hub.jupyter.org/username\": \"$3\"}},
    \"spec\": {\"containers\": [{\"name\": \"notebook\", \"image\": \"jupyter/base-notebook\"}]}}" >/dev/null
}
decoy_pod() {  # decoy_pod NS NAME LABELS-JSON
  fake_k8s_control POST objects "{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {\"name\": \"$2\", \"namespace\": \"$1\",
    \"labels\": $3}, \"spec\": {\"containers\": [{\"name\": \"c\", \"image\": \"busybox\"}]}}" >/dev/null
}
# The position (line number) in requests.log of the first entry matching a Python expression on r.
first_at() {
  "$PY" - "$D/requests.log" "$1" <<'EOF'
import json, sys
for n, line in enumerate(open(sys.argv[1]), 1):
    r = json.loads(line)
    if eval(sys.argv[2]):
        print(n); break
else:
    print(0)
EOF
}
last_at() {
  "$PY" - "$D/requests.log" "$1" <<'EOF'
import json, sys
at = 0
for n, line in enumerate(open(sys.argv[1]), 1):
    r = json.loads(line)
    if eval(sys.argv[2]):
        at = n
print(at)
EOF
}
pod_deletes() {  # pod_deletes USER: "NS/NAME" of the pods USER's requests DELETEd (a 200), sorted
  fake_k8s_requests "r['method'] == 'DELETE' and '/pods/' in r['path'] and r['user'] == '$1' and r['status'] == 200" |
    "$PY" -c 'import json, sys; print(" ".join(sorted("/".join(json.loads(l)["path"].split("/")[4:7:2]) for l in sys.stdin)))'
}

# Decoys: the proxy (a Deployment's pod, like z2jh's), a pod with no labels, a user server pod in another
# namespace (nublado-alice's lab, from the seed), a pod in hub-a labelled like a user's storage.
fake_k8s_control POST seed '{"deployments": [{"namespace": "hub-a", "name": "proxy", "labels": {"component": "proxy", "app": "jupyterhub"},
  "container": "chp", "image": "jupyterhub/configurable-http-proxy"}]}' >/dev/null
decoy_pod hub-a image-puller '{}'
decoy_pod hub-a not-a-server '{"component": "singleuser-storage", "hub.jupyter.org/username": "u1"}'
decoy_pod hub-b proxy-bare '{"component": "proxy"}'
user_pod hub-a jupyter-u1 u1
user_pod hub-a jupyter-u2 u2
user_pod hub-b jupyter-u3 u3
sleep 0.5
DECOYS="$(pods hub-a component=hub) $(pods hub-a component=proxy) image-puller not-a-server $(pods nublado-alice) proxy-bare"
decoys_alive() {
  local now; now="$(pods hub-a component=hub) $(pods hub-a component=proxy) $(pods hub-a | grep -o image-puller) \
$(pods hub-a | grep -o not-a-server) $(pods nublado-alice) $(pods hub-b | grep -o proxy-bare)"
  [ "$(echo $now | wc -w)" -eq "$(echo $DECOYS | wc -w)" ]
}
ok $(decoys_alive; echo $?) "decoys in place: $DECOYS"

# ---------------------------------------------------------------- without the hub: the pods are deleted
: >"$D/requests.log"
run_rb run reset-sqlite -p namespaces=hub-a,hub-b -p backup_dir="$SCRATCH/b1" --dry-run
is "$RC" 0 "dry run: exit 0"
like "$OUT" "user servers in hub-a +2 pods: jupyter-u1 \(Running, Ready\), jupyter-u2 \(Running, Ready\)" "the plan lists hub-a's user server pods"
like "$OUT" "user servers in hub-b +1 pod: jupyter-u3" "and hub-b's"
like "$OUT" "pods/hub-a/jupyter-u1 +u1's server: delete the pod, then wait until it is gone" "a deletion per pod"
like "$OUT" "Plan: 2 hub databases removed \(backed up first\); 3 user servers stopped; 2 hubs restarted" \
  "the effect line counts databases, servers and hubs"
like "$OUT" "Consequence: 3 user servers stopped: whatever their users have only in running kernels is lost" "the consequence is named"
unlike "$OUT" "image-puller|not-a-server|proxy-|nublado-alice" "no decoy is in the plan"
is "$(fake_k8s_requests 'r.get("mutating")' | wc -l)" 0 "dry run: no mutating request"
is "$(pods hub-a component=singleuser-server)" "jupyter-u1 jupyter-u2" "dry run: the pods are still there"

: >"$D/requests.log"
run_rb run reset-sqlite -p namespaces=hub-a,hub-b -p backup_dir="$SCRATCH/b1" --yes
is "$RC" 0 "apply: exit 0"
like "$OUT" "done +k8s.delete pods/hub-a/jupyter-u1: deleted; gone" "jupyter-u1 deleted"
like "$OUT" "11 done, 0 skipped, 0 failed" "all 11 actions done (per namespace: backup, deletions, backup, removal, restart)"
is "$(pods hub-a component=singleuser-server)$(pods hub-b component=singleuser-server)" "" "no user server pod is left in hub-a or hub-b"
ok $(decoys_alive; echo $?) "every decoy is still there"
is "$(pods nublado-alice component=singleuser-server)" "$(pods nublado-alice)" "  (nublado-alice's lab, a user server pod in another namespace, too)"
for ns in hub-a hub-b; do
  deleted=$(last_at "r['method'] == 'DELETE' and r['path'].startswith('/api/v1/namespaces/$ns/pods/jupyter-')")
  gone=$(last_at "r['method'] == 'GET' and r['path'].startswith('/api/v1/namespaces/$ns/pods/jupyter-') and r['status'] == 404")
  removed=$(first_at "r.get('exec') and r['exec']['command'][0] == 'sh' and '/namespaces/$ns/' in r['path']")
  restarted=$(first_at "r['method'] == 'PATCH' and r['path'] == '/apis/apps/v1/namespaces/$ns/deployments/hub'")
  ok $([ "$deleted" -gt 0 ] && [ "$deleted" -lt "$gone" ] && [ "$gone" -lt "$removed" ] && [ "$removed" -lt "$restarted" ]; echo $?) \
    "$ns: pods deleted (line $deleted), seen gone ($gone), then the database removed ($removed), then the restart ($restarted)"
done
ok $([ ! -e "$DB_A" ] && [ ! -e "$DB_B" ]; echo $?) "both databases are removed"

# Two backups where servers were stopped: before (the way back) and after (what was removed).
first_dir=$(find "$SCRATCH/b1/token/hub-a" -mindepth 1 -maxdepth 1 -type d ! -name '*-servers-stopped')
second_dir=$(find "$SCRATCH/b1/token/hub-a" -mindepth 1 -maxdepth 1 -type d -name '*-servers-stopped')
ok $([ -n "$first_dir" ] && [ "$second_dir" = "$first_dir-servers-stopped" ]; echo $?) "hub-a: TIME/ and TIME-servers-stopped/"
is "$(sum "$first_dir/jupyterhub.sqlite")" "$(sum "$ORIGINAL")" "  the first backup is the original database"
is "$(sum "$second_dir/jupyterhub.sqlite")" "$(sum "$ORIGINAL")" "  so is the second (nothing wrote to it meanwhile)"
M=$(cat "$first_dir/manifest.json")
is "$(jget "$M" '[d["format"], d["runbook"], d["cluster"], d["namespace"], d["deployment"], d["container"], d["database"]]')" \
  "[\"runbook-sqlite-backup/1\", \"reset-sqlite\", {\"context\": \"token\", \"server\": \"$K8S_SERVER\"}, \"hub-a\", \"hub\", \"hub\", \"/srv/jupyterhub/jupyterhub.sqlite\"]" \
  "the manifest names the format, the cluster (context, server), namespace, deployment, container, database"
is "$(jget "$M" '[(f["name"], f["path"], f["size"], f["sha256"]) for f in d["files"]]')" \
  "[[\"jupyterhub.sqlite\", \"/srv/jupyterhub/jupyterhub.sqlite\", $(stat -c %s "$ORIGINAL"), \"$(sum "$ORIGINAL")\"]]" \
  "  each file's name, path in the pod, size and SHA-256"
like "$(jget "$M" 'd["pod"] + " " + d["pod_uid"] + " " + d["created"] + " " + d["stage"]')" \
  "^hub-[a-z0-9-]+ [0-9a-f-]{36} 20[0-9-]{8}T[0-9:]{8}Z the database before the users' servers were stopped$" \
  "  the pod (name, uid), when, and what the copy holds"
like "$(jget "$M" 'd["hub_image"] + " " + d["hub_image_tag"]')" "^[^ ]+:[^ ]+ [^ ]+$" "  the hub's image and its tag"
journal=$(jget "$M" 'd["run"]["journal"]')
ok $([ -f "$journal" ] && grep -q '"reset-sqlite"' "$journal"; echo $?) "  and the run: its journal ($journal)"
is "$(jget "$(cat "$second_dir/manifest.json")" 'd["stage"]')" "the database removed, after the users' servers were stopped" \
  "the second backup's manifest says what it holds"
is "$(stat -c %a "$first_dir/manifest.json")" 600 "manifests are mode 0600"
is "$(find "$SCRATCH/b1" -name '*.partial*' | wc -l)" 0 "no temporary manifest is left"

# ---------------------------------------------------------------- user_servers=keep
cp "$ORIGINAL" "$DB_A"
user_pod hub-a jupyter-u1 u1
sleep 0.5
: >"$D/requests.log"
run_rb run reset-sqlite -n hub-a -p user_servers=keep -p backup_dir="$SCRATCH/b2" --yes
is "$RC" 0 "user_servers=keep: exit 0"
like "$OUT" "user_servers +keep +\(command line\)" "  the plan records the parameter"
like "$OUT" "Note: user_servers=keep: 1 user server pod in hub-a keep running \(jupyter-u1 \(Running, Ready\)\)\. The restarted hub has no record of them" \
  "  and says which servers keep running, and what that means"
like "$OUT" "Plan: 1 hub database removed \(backed up first\); 1 user server left running \(user_servers=keep\); 1 hub restarted \(3 actions\)" \
  "  the effect line says so"
like "$OUT" "3 done, 0 skipped, 0 failed" "  backup, removal, restart"
is "$(pods hub-a component=singleuser-server)" "jupyter-u1" "  the user server pod is still there"
is "$(pod_deletes admin-token-user)" "" "  no pod was deleted"
is "$(find "$SCRATCH/b2" -name manifest.json | wc -l)" 1 "  one backup (nothing stopped, no second one)"
ok $([ ! -e "$DB_A" ]; echo $?) "  the database is removed"

# ---------------------------------------------------------------- with the hub: stopped through its API
hub_start "$SCRATCH/hub" --kubespawner "$D" --kube-namespace hub-a >/dev/null 2>&1 ||
  { ok 1 "a hub with the KubeSpawner stand-in starts"; done_testing; exit 1; }
hub_seed "$SCRATCH/hub" --user alice,bob,carol,dave --running alice,bob --named-server carol/lab >/dev/null 2>&1
is "$(pods hub-a component=singleuser-server)" "jupyter-alice jupyter-bob jupyter-carol--lab jupyter-u1" \
  "the hub's spawner made its servers' pods in hub-a (u1's is not the hub's)"
HUBP=(-p "hub=$JUPYTERHUB_API_URL" -p "token_file=$JUPYTERHUB_TOKEN_FILE")
cp "$ORIGINAL" "$DB_A"; cp "$ORIGINAL" "$DB_B"

run_rb plan reset-sqlite -p namespaces=hub-a,hub-b "${HUBP[@]}"
is "$RC" 2 "-p hub with two namespaces: exit 2"
like "$ERR" "-p hub names one hub: give exactly one namespace with it" "  one hub, one namespace"
run_rb plan reset-sqlite -n hub-b "${HUBP[@]}"
is "$RC" 2 "-p hub with a namespace that has none of its servers' pods: exit 2"
like "$ERR" "the hub at $JUPYTERHUB_API_URL runs 3 servers \(alice's server, bob's server, carol's server 'lab'\) and namespace hub-b has a pod for none of them: is -p hub the hub of hub-b\?" \
  "  the wrong hub is named as such"
unlike "$ERR$OUT" "$(cat "$JUPYTERHUB_TOKEN_FILE")" "  without the token"

LOG_FROM=$(wc -l < "$HUB_LOG")
: >"$D/requests.log"
run_rb plan reset-sqlite -n hub-a "${HUBP[@]}" -p backup_dir="$SCRATCH/b3" -o "$SCRATCH/hub-plan.json"
is "$RC" 0 "plan with the hub: exit 0"
like "$OUT" "hub API +$JUPYTERHUB_API_URL \(JupyterHub 3\.0\.0\)" "  it names the hub and its version"
like "$OUT" "users/alice/server +stop alice's server through the hub \(its spawner deletes jupyter-alice\)" "  alice's server is stopped through the hub"
like "$OUT" "users/carol/servers/lab +stop carol's server 'lab' through the hub \(its spawner deletes jupyter-carol--lab\)" "  so is carol's named server"
like "$OUT" "pods/hub-a/jupyter-u1 +u1's server \(not a server the hub can stop\): delete the pod" "  u1's pod, unknown to the hub, is deleted directly"
like "$OUT" "Plan: 1 hub database removed \(backed up first\); 4 user servers stopped \(3 through the hub\); 1 hub restarted \(8 actions\)" \
  "  the effect line"
is "$(fake_k8s_requests 'r.get("mutating")' | wc -l)" 0 "  no mutating request"
run_rb apply "$SCRATCH/hub-plan.json" --yes
is "$RC" 0 "apply with the hub: exit 0"
like "$OUT" "done +hub.stop_server users/alice/server: stopped by the hub; jupyter-alice gone" "  alice's server stopped by the hub, its pod gone"
like "$OUT" "done +k8s.delete pods/hub-a/jupyter-u1: deleted; gone" "  u1's pod deleted"
for u in alice/server bob/server carol/servers/lab; do
  is "$(tail -n +"$((LOG_FROM + 1))" "$HUB_LOG" | grep -cE "\] 20[24] DELETE /hub/api/users/$u \(ops@")" 1 "  the hub got DELETE /users/$u once"
done
is "$(pod_deletes token-file-user)" "hub-a/jupyter-alice hub-a/jupyter-bob hub-a/jupyter-carol--lab" "  the spawner deleted its servers' pods"
is "$(pod_deletes admin-token-user)" "hub-a/jupyter-u1" "  the runbook deleted only the pod the hub does not know"
is "$(pods hub-a component=singleuser-server)" "" "  no user server pod is left"
ok $(decoys_alive; echo $?) "  every decoy is still there"
is "$(hub_api GET /users/alice | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["servers"])')" "{}" "  the hub says alice's server is stopped"
stopped=$(last_at "r['method'] == 'DELETE' and '/pods/jupyter-' in r['path']")
removed=$(first_at "r.get('exec') and r['exec']['command'][0] == 'sh'")
restarted=$(first_at "r['method'] == 'PATCH'")
ok $([ "$stopped" -gt 0 ] && [ "$stopped" -lt "$removed" ] && [ "$removed" -lt "$restarted" ]; echo $?) \
  "  every pod went (line $stopped) before the removal ($removed) and the restart ($restarted)"
M=$(cat "$(find "$SCRATCH/b3" -path '*-servers-stopped/manifest.json')")
is "$(jget "$M" '[d["hub_version"], d["hub_url"]]')" "[\"3.0.0\", \"$JUPYTERHUB_API_URL\"]" "the manifest has the hub's version, from its API"

# ---------------------------------------------------------------- restore: the manifest is checked
backup_b=$(find "$SCRATCH/b1/token/hub-b" -path '*Z/jupyterhub.sqlite')
run_rb plan reset-sqlite -n hub-a -p mode=restore -p restore_from="$backup_b"
is "$RC" 2 "restoring hub-b's backup into hub-a: exit 2"
like "$ERR" "is a backup of namespace hub-b in context token \(server $K8S_SERVER\), not of namespace hub-a in context token \(server $K8S_SERVER\).*-p allow_foreign_backup=true" \
  "  the message names both targets and the override"
run_rb run reset-sqlite -n hub-a -p mode=restore -p restore_from="$backup_b" -p allow_foreign_backup=true \
  -p backup_dir="$SCRATCH/b4" --yes
is "$RC" 0 "with allow_foreign_backup=true: exit 0"
like "$OUT" "allow_foreign_backup +true +\(command line\)" "  the plan records the override"
like "$OUT" "Note: allow_foreign_backup=true overrides the check that the backup is this hub's: the database of namespace hub-b .* goes into namespace hub-a" \
  "  and says what it overrode"
like "$OUT" "backup made from +namespace hub-b in context token" "  and where the backup comes from"
like "$OUT" "Plan: 1 hub database restored \(there was none\); 1 hub restarted" "  the effect line"
is "$(sum "$DB_A")" "$(sum "$backup_b")" "  hub-a has hub-b's database"
backup_a=$(find "$SCRATCH/b1/token/hub-a" -path '*Z/jupyterhub.sqlite')
run_rb run reset-sqlite -n hub-a -p mode=restore -p restore_from="$backup_a" -p backup_dir="$SCRATCH/b5" --dry-run
is "$RC" 0 "restoring hub-a's own backup: exit 0"
like "$OUT" "Plan: 1 hub database replaced \(backed up first\); 1 hub restarted" "  1 hub database replaced"
unlike "$OUT" "allow_foreign_backup=true overrides" "  nothing overridden"
mkdir -p "$SCRATCH/tampered"; cp "$(dirname "$backup_a")"/* "$SCRATCH/tampered/"
printf 'x' >> "$SCRATCH/tampered/jupyterhub.sqlite"
run_rb plan reset-sqlite -n hub-a -p mode=restore -p restore_from="$SCRATCH/tampered/jupyterhub.sqlite"
is "$RC" 2 "a backup whose SHA-256 is not its manifest's: exit 2"
like "$ERR" "tampered/jupyterhub.sqlite does not match its manifest .*manifest.json \(sha256 [0-9a-f]{16}, the manifest says $(sum "$backup_a" | cut -c1-16)\)" \
  "  says so, with both checksums"
run_rb plan reset-sqlite -n hub-a -p mode=restore -p restore_from="$SCRATCH/tampered/jupyterhub.sqlite" -p allow_foreign_backup=true
is "$RC" 2 "  allow_foreign_backup does not override that"
mkdir -p "$SCRATCH/old"; cp "$backup_a" "$SCRATCH/old/"
run_rb plan reset-sqlite -n hub-a -p mode=restore -p restore_from="$SCRATCH/old/jupyterhub.sqlite"
is "$RC" 0 "a backup without a manifest (an older runbook's): exit 0"
like "$OUT" "Note: .*old/jupyterhub.sqlite has no manifest.json beside it .*cannot check that it is a backup of this hub" "  with a warning"

# ---------------------------------------------------------------- killed between the stops and the restart
# Actions: backup, stop alice, stop bob, delete ghost's pod, backup again, removal, restart. Journal writes:
# 1 (plan) + 2 per action + 1: 4 = alice's stop begun (no DELETE sent yet), 9 = every server stopped, before
# the second backup, 13 = the database removed, before the restart.
journal_check() {  # every planned action ended done exactly once, nothing failed
  "$PY" - "$1" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ends = {}
for e in lines[1:]:
    if e["type"] == "end": ends.setdefault(e["id"], []).append(e["outcome"])
bad = ["%s %s: %s" % (a["id"], a["target"], ends.get(a["id"])) for a in lines[0]["plan"]["actions"] if ends.get(a["id"]) != ["done"]]
print("; ".join(bad) or "fine")
EOF
}
kill_resume() {
  local point=$1 dir="$SCRATCH/kill-${1//:/-}" rc failures=0 u n
  mkdir -p "$dir"
  cp "$ORIGINAL" "$DB_A"
  hub_seed "$SCRATCH/hub" --running alice,bob >/dev/null 2>&1
  user_pod hub-a jupyter-ghost ghost
  sleep 0.5
  LOG_FROM=$(wc -l < "$HUB_LOG")
  : >"$D/requests.log"
  "$RUNBOOK" plan reset-sqlite -n hub-a "${HUBP[@]}" -p backup_dir="$dir/backups" -p timeout=60 -o "$dir/plan.json" -q \
    >/dev/null 2>"$dir/plan.err" || { ok 1 "$point: plan"; sed 's/^/#   /' "$dir/plan.err"; return; }
  { (RUNBOOK_CRASH_AT=$point exec "$RUNBOOK" apply "$dir/plan.json" --yes --journal-dir "$dir/j" >"$dir/apply.out" 2>&1); } 2>/dev/null
  rc=$?
  if [ "$rc" -ne 137 ] || ! grep -q "crash point ${point%%:*} reached" "$dir/apply.out"; then
    failures=1; diag "$point: the apply was not killed there (exit $rc)"
  else
    if [ "$point" = http-response:4 ]; then
      n=$(tail -n +"$((LOG_FROM + 1))" "$HUB_LOG" | grep -cE "\] 20[24] DELETE /hub/api/users/alice/server \(ops@")
      ended=$("$PY" -c 'import json, sys; print(any(e.get("type") == "end" and e.get("id") == 2 for e in map(json.loads, open(sys.argv[1]))))' "$(ls "$dir"/j/*.journal)")
      [ "$n" -eq 1 ] && [ "$ended" = False ] ||
        { failures=1; diag "$point: not killed between the hub's answer to alice's stop and its journal line ($n DELETEs)"; }
    fi
    "$RUNBOOK" resume "$(ls "$dir"/j/*.journal)" --yes >"$dir/resume.out" 2>&1; rc=$?
    [ "$rc" -eq 0 ] || { failures=1; diag "$point: resume exit $rc"; tail -n 8 "$dir/resume.out" | sed 's/^/#   /'; }
  fi
  local state; state=$(journal_check "$(ls "$dir"/j/*.journal)")
  [ "$state" = fine ] || { failures=1; diag "$point: journal: $state"; }
  for u in alice bob; do
    n=$(tail -n +"$((LOG_FROM + 1))" "$HUB_LOG" | grep -cE "\] 20[24] DELETE /hub/api/users/$u/server \(ops@")
    [ "$n" -eq 1 ] || { failures=1; diag "$point: $u's server stopped $n times"; }
  done
  [ "$(pod_deletes admin-token-user)" = "hub-a/jupyter-ghost" ] || { failures=1; diag "$point: the runbook deleted: $(pod_deletes admin-token-user)"; }
  [ -z "$(pods hub-a component=singleuser-server)" ] || { failures=1; diag "$point: pods left: $(pods hub-a component=singleuser-server)"; }
  [ ! -e "$DB_A" ] || { failures=1; diag "$point: the database is still there"; }
  local last; last=$(find "$dir/backups" -path '*-servers-stopped/jupyterhub.sqlite')
  [ -n "$last" ] && [ "$(sum "$last")" = "$(sum "$ORIGINAL")" ] && [ "$(find "$dir/backups" -name manifest.json | wc -l)" -eq 2 ] ||
    { failures=1; diag "$point: backups: $(find "$dir/backups" -type f)"; }
  n=$(fake_k8s_requests "r['method'] == 'PATCH' and r['path'] == '/apis/apps/v1/namespaces/hub-a/deployments/hub'" | wc -l)
  [ "$n" -eq 1 ] || { failures=1; diag "$point: $n rollout restarts"; }
  decoys_alive || { failures=1; diag "$point: a decoy is gone"; }
  ok "$failures" "killed at $point, resumed: alice's and bob's servers stopped once by the hub, ghost's pod deleted, the database removed after its verified backups, the hub restarted once"
}
# http-response:4: the hub's answer to alice's stop (after the hub pod's GET, the hub's version, alice's model),
# before the journal records it: the resumed run must not stop her server again.
for point in journal:4 http-response:4 journal:9 journal:13; do kill_resume "$point"; done

done_testing
