#!/bin/bash
# The KubeSpawner stand-in (tests/lib/kubespawner-standin) in a REAL JupyterHub 3.0 against the
# fake Kubernetes API (tests/fake-k8s): the hub reports kubespawner.spawner.KubeSpawner, seeded
# and spawned claims are named, labelled and annotated as KubeSpawner does, and DELETE of a user
# (or of a named server) through the hub API deletes the claim exactly when KubeSpawner's
# delete_forever() would (field notes: "KubeSpawner and users' storage"). Also hub.py's stock
# spawner and --ops-scopes.
. "$(dirname "$0")/lib/tap.sh"
. "$(dirname "$0")/lib/hub.sh"
. "$(dirname "$0")/lib/fake-k8s.sh"

[ -x /usr/bin/jupyterhub ] || skip_all "jupyterhub not installed (apt-get install jupyterhub)"
for tool in openssl curl bwrap; do
  command -v "$tool" >/dev/null || skip_all "$tool is not installed"
done

# jget JSON EXPR: a value from JSON, `d` being the document; strings raw, others as JSON.
jget() {
  "$PY" -c 'import json, sys
d = json.loads(sys.argv[1]); v = eval(sys.argv[2])
print(v if isinstance(v, str) else json.dumps(v, sort_keys=True, ensure_ascii=False))' "$1" "$2"
}
# claims NS: {name: claim} of the namespace's PersistentVolumeClaims (control API: not in requests.log)
claims() {
  fake_k8s_control GET "state?resource=persistentvolumeclaims&namespace=$1" |
    "$PY" -c 'import json, sys
print(json.dumps({o["metadata"]["name"]: o for o in json.load(sys.stdin)["objects"].get("persistentvolumeclaims", [])}))'
}
claim_names() { jget "$(claims "$1")" '" ".join(sorted(d))'; }
# pvc_requests: requests.log lines that would change claims (a faulted one is not marked mutating)
pvc_requests() {
  fake_k8s_requests "'persistentvolumeclaims' in r['path'] and r['method'] != 'GET'" |
    "$PY" -c 'import json, sys
for line in sys.stdin:
    r = json.loads(line)
    print(r["method"], r["path"].replace("/api/v1/namespaces/", ""), r["status"], r["user"])'
}
# wait_until SECONDS CMD...: poll every 0.1 s
wait_until() {
  local n=$(( $1 * 10 )); shift
  until "$@"; do n=$((n - 1)); [ $n -le 0 ] && return 1; sleep 0.1; done
}
no_claim() { ! jget "$(claims "$1")" "'$2' in d" | grep -qx true; }
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

T0=$(date +%s%N)
# ---------------------------------------------------------------- the fake cluster
fake_k8s_start "$SCRATCH/k8s"
ok $? "fake-k8s starts" || { done_testing; exit 1; }
if ! grep -q persistentvolumeclaims "$TOP"/tests/fake-k8s/fakek8s/*.py; then
  skip_all "tests/fake-k8s does not serve PersistentVolumeClaims yet"
fi
# A default class that provisions at once and deletes the volume with its claim, as a cloud's
# usual default (gp2/standard-rwo) does: a deleted claim takes the user's data with it.
fake_k8s_control POST objects '{"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
  "metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
  "provisioner": "fake.k8s.io/hostpath", "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"}' >/dev/null
ok $? "a default StorageClass (Immediate, Delete)"

# ---------------------------------------------------------------- hub A: KubeSpawner 7.1 defaults
HA=$SCRATCH/hub/a
hub_start "$HA" --kubespawner "$FAKE_K8S_DIR" --spawner-delay-users pend
ok $? "hub starts with --kubespawner" || { done_testing; exit 1; }
info=$(hub_api GET /info)
ok $? "the ops token may read /hub/api/info (read:hub)"
is "$(jget "$info" 'd["spawner"]')" '{"class": "kubespawner.spawner.KubeSpawner", "version": "7.1.0"}' \
  "/info names the spawner kubespawner.spawner.KubeSpawner 7.1.0"
like "$(cat "$HA/jupyterhub_config.py")" "c\.KubeSpawner\.token_file = '$FAKE_K8S_DIR/tokens/token-file'" \
  "the stand-in authenticates with the fake's token file (token-file-user)"
is "$(fake_k8s_control GET 'state?resource=namespaces' | "$PY" -c 'import json, sys
print(any(o["metadata"]["name"] == "hub" for o in json.load(sys.stdin)["objects"]["namespaces"]))')" True \
  "namespace hub exists (hub.py created it)"

USERS=(alice 'josé' 'mary ann' 'a#b' bob carol dave)
t0=$(date +%s%N)
hub_seed "$HA" --user "$(IFS=,; echo "${USERS[*]}")" \
  --claims "alice,josé,mary ann,a#b,dave" --claim-servers bob:work --claim-size alice=20Gi
ok $? "seed 7 users and 6 claims ($(ms_since "$t0") ms)"
is "$(claim_names hub)" "claim-a-23b claim-alice claim-bob--work claim-dave claim-jos-c3-a9 claim-mary-20ann" \
  "claims named claim-<escaped user>[--<escaped server>] (escapism: josé -> jos-c3-a9, 'mary ann' -> mary-20ann)"
for pair in "alice:" "josé:" "mary ann:" "a#b:" "bob:work"; do
  is "$(hub_claim_name "$HA" "${pair%%:*}" "${pair#*:}")" \
     "$(jget "$(claims hub)" "[n for n, c in d.items() if c['metadata']['annotations']['hub.jupyter.org/username'] == '${pair%%:*}' and c['metadata']['annotations'].get('hub.jupyter.org/servername', '') == '${pair#*:}'][0]")" \
     "hub.py claim-name agrees for '${pair}'"
done
C=$(claims hub)
is "$(jget "$C" 'd["claim-jos-c3-a9"]["metadata"]["labels"]')" \
  '{"app": "jupyterhub", "app.kubernetes.io/component": "singleuser-server", "app.kubernetes.io/managed-by": "kubespawner", "app.kubernetes.io/name": "jupyterhub", "component": "singleuser-storage", "heritage": "jupyterhub", "hub.jupyter.org/username": "jos-c3-a9"}' \
  "labels of josé's claim: KubeSpawner 7's, username escaped"
is "$(jget "$C" '{k: v for k, v in d["claim-jos-c3-a9"]["metadata"]["annotations"].items() if k.startswith("hub.jupyter.org/")}')" \
  '{"hub.jupyter.org/jupyterhub-version": "3.0.0", "hub.jupyter.org/kubespawner-version": "7.1.0", "hub.jupyter.org/username": "josé"}' \
  "annotations of josé's claim: the exact name, no servername for the default server"
is "$(jget "$C" '[d["claim-mary-20ann"]["metadata"]["annotations"]["hub.jupyter.org/username"], d["claim-a-23b"]["metadata"]["annotations"]["hub.jupyter.org/username"], d["claim-a-23b"]["metadata"]["labels"]["hub.jupyter.org/username"]]')" \
  '["mary ann", "a#b", "a-23b"]' "'mary ann' and 'a#b': exact names in the annotation, escaped in the label"
is "$(jget "$C" '[d["claim-bob--work"]["metadata"]["annotations"].get("hub.jupyter.org/servername"), d["claim-bob--work"]["metadata"]["labels"].get("hub.jupyter.org/servername")]')" \
  '["work", null]' "a named server's claim: servername annotation (KubeSpawner puts no servername label on claims)"
is "$(jget "$C" '[d["claim-alice"]["spec"]["accessModes"], d["claim-alice"]["spec"]["resources"]["requests"]["storage"], d["claim-dave"]["spec"]["resources"]["requests"]["storage"]]')" \
  '[["ReadWriteOnce"], "20Gi", "10Gi"]' "spec: ReadWriteOnce, 20Gi for alice (--claim-size), 10Gi by default"
is "$(jget "$C" '[d["claim-alice"]["spec"].get("storageClassName"), "volume.beta.kubernetes.io/storage-class" in d["claim-alice"]["metadata"]["annotations"]]')" \
  '["standard", false]' "no class asked: the cluster's default class given by admission"
is "$(jget "$C" 'sorted({c.get("status", {}).get("phase") for c in d.values()})')" '["Bound"]' "every seeded claim is Bound"
vol_alice=$(jget "$C" 'd["claim-alice"]["spec"]["volumeName"]')
is "$(cat "$FAKE_K8S_DIR/volumes/$vol_alice/hubtest-marker.txt" 2>&1)" "claim claim-alice user alice server " \
  "the marker file is in alice's bound volume (DIR/volumes/<PV>)"
vol_bob=$(jget "$C" 'd["claim-bob--work"]["spec"]["volumeName"]')
is "$(cat "$FAKE_K8S_DIR/volumes/$vol_bob/hubtest-marker.txt" 2>&1)" "claim claim-bob--work user bob server work" \
  "...and in bob's named server's"
is "$(pvc_requests)" "" "seeding left no mutating request in requests.log (control API only)"

# ---------------------------------------------------------------- DELETE a user: its claim goes
: >"$FAKE_K8S_DIR/requests.log"
t0=$(date +%s%N)
is "$(hub_api_status DELETE /users/alice)" 204 "DELETE /users/alice: 204 ($(ms_since "$t0") ms)"
# The hub answers only after delete_forever(): the DELETE is in the log already.
is "$(pvc_requests)" "DELETE hub/persistentvolumeclaims/claim-alice 200 token-file-user" \
  "the stand-in DELETEd alice's claim, with the hub's token, before the hub answered"
is "$(claim_names hub)" "claim-a-23b claim-bob--work claim-dave claim-jos-c3-a9 claim-mary-20ann" \
  "only alice's claim is gone"
wait_until 5 test ! -e "$FAKE_K8S_DIR/volumes/$vol_alice"
ok $? "reclaimPolicy Delete: alice's volume and its data are gone"
like "$(grep 'Deleting pvc claim-alice' "$HUB_LOG")" 'Deleting pvc claim-alice' "hub.log: Deleting pvc claim-alice"

# Transient API failures are retried (here 2 x 503), and the hub still answers 204.
: >"$FAKE_K8S_DIR/requests.log"
fake_k8s_control POST faults '{"method": "DELETE", "path": "persistentvolumeclaims/claim-jos", "status": 503, "count": 2}' >/dev/null
is "$(hub_api_status DELETE "/users/$(hub_quote 'josé')")" 204 "DELETE /users/jos%C3%A9 with two 503s from the cluster: 204"
is "$(pvc_requests | awk '{print $1, $3}' | tr '\n' ' ')" "DELETE 503 DELETE 503 DELETE 200 " "the stand-in retried until the DELETE went through"
no_claim hub claim-jos-c3-a9
ok $? "josé's claim is gone"

# A user without a claim (the default server never started): 404 from the cluster is fine.
: >"$FAKE_K8S_DIR/requests.log"
is "$(hub_api_status DELETE /users/carol)" 204 "DELETE /users/carol (no claim): 204"
is "$(pvc_requests)" "DELETE hub/persistentvolumeclaims/claim-carol 404 token-file-user" "...the stand-in tried, got 404, went on"

# ---------------------------------------------------------------- starting servers creates claims
: >"$FAKE_K8S_DIR/requests.log"
hub_seed "$HA" --user erin,pend --running erin --named-server dave/lab --pending pend
ok $? "start erin's server, dave's named server 'lab', and pend's spawn that stays pending"
is "$(pvc_requests)" "POST hub/persistentvolumeclaims 201 token-file-user
POST hub/persistentvolumeclaims 201 token-file-user
POST hub/persistentvolumeclaims 201 token-file-user" "each start POSTed a claim"
C=$(claims hub)
is "$(jget "$C" '[n for n in ("claim-erin", "claim-dave--lab", "claim-pend") if n in d]')" '["claim-erin", "claim-dave--lab", "claim-pend"]' \
  "claim-erin, claim-dave--lab exist, and claim-pend already (KubeSpawner creates it before the pod)"
is "$(jget "$C" '[d["claim-dave--lab"]["metadata"]["annotations"]["hub.jupyter.org/servername"], d["claim-dave--lab"]["metadata"]["labels"]["component"], d["claim-erin"]["spec"]["resources"]["requests"]["storage"]]')" \
  '["lab", "singleuser-storage", "10Gi"]' "spawned claims look like seeded ones"
: >"$FAKE_K8S_DIR/requests.log"
hub_api_status POST /users/bob/servers/work >/dev/null
wait_until 30 sh -c "'$PY' '$HUB_PY' api --dir '$HA' GET /users/bob 2>/dev/null | grep -q '\"ready\": true'"
ok $? "bob's named server 'work' starts"
is "$(pvc_requests)" "POST hub/persistentvolumeclaims 409 token-file-user" "its seeded claim existed: 409, as KubeSpawner accepts"

# Named server deleted (stopped first, then remove): its own claim goes, dave's default claim stays.
: >"$FAKE_K8S_DIR/requests.log"
is "$(hub_api_status DELETE /users/dave/servers/lab)" 204 "stop dave's 'lab'"
is "$(hub_api_status DELETE /users/dave/servers/lab '{"remove": true}')" 204 "remove dave's 'lab'"
is "$(pvc_requests)" "DELETE hub/persistentvolumeclaims/claim-dave--lab 200 token-file-user" \
  "removing a named server deletes its claim (template has {user_server})"
! no_claim hub claim-dave
ok $? "claim-dave stays"

# A running default server: the hub stops it, deletes the user, then the claim.
: >"$FAKE_K8S_DIR/requests.log"
is "$(hub_api_status DELETE /users/erin)" 204 "DELETE /users/erin while her server runs: 204 (the hub stops it)"
is "$(pvc_requests)" "DELETE hub/persistentvolumeclaims/claim-erin 200 token-file-user" "erin's claim deleted"
is "$(claim_names hub)" "claim-a-23b claim-bob--work claim-dave claim-mary-20ann claim-pend" "claims left on hub A"
hub_stop "$HA"

# ---------------------------------------------------------------- hub B: --no-delete-pvc
HB=$SCRATCH/hub/b
hub_start "$HB" --kubespawner "$FAKE_K8S_DIR" --kube-namespace hub-b --no-delete-pvc
ok $? "hub B starts with --no-delete-pvc, namespace hub-b" || { done_testing; exit 1; }
hub_seed "$HB" --user alice,bob --claims alice --claim-servers bob:work
: >"$FAKE_K8S_DIR/requests.log"
is "$(hub_api_status DELETE /users/alice)" 204 "DELETE /users/alice: 204"
is "$(pvc_requests)" "" "no request to delete the claim"
is "$(claim_names hub-b)" "claim-alice claim-bob--work" "alice's claim stays (delete_pvc = False)"
like "$(grep 'Not deleting pvc for alice' "$HUB_LOG")" 'Not deleting pvc for alice: claim-alice' "hub.log says why"
vol=$(jget "$(claims hub-b)" 'd["claim-alice"]["spec"]["volumeName"]')
is "$(cat "$FAKE_K8S_DIR/volumes/$vol/hubtest-marker.txt" 2>&1)" "claim claim-alice user alice server " "...with its data"
is "$(claim_names hub)" "claim-a-23b claim-bob--work claim-dave claim-mary-20ann claim-pend" "hub A's namespace untouched"
hub_stop "$HB"

# ---------------------------------------------------------------- hub C: 6.x, a template without {servername}
HC=$SCRATCH/hub/c
hub_start "$HC" --kubespawner "$FAKE_K8S_DIR" --kube-namespace hub-c --kubespawner-version 6.2.0 \
  --pvc-name-template 'home-{username}' --storage-capacity 2Gi --storage-class standard
ok $? "hub C starts: KubeSpawner 6.2.0, template home-{username}, class standard" || { done_testing; exit 1; }
is "$(jget "$(hub_api GET /info)" 'd["spawner"]')" '{"class": "kubespawner.spawner.KubeSpawner", "version": "6.2.0"}' \
  "/info reports 6.2.0"
hub_seed "$HC" --user frank --claims frank --named-server frank/extra
ok $? "frank has a claim and a running named server 'extra'"
C=$(claims hub-c)
is "$(jget "$C" 'sorted(d)')" '["home-frank"]' "the named server shares home-frank (no {servername} in the template)"
is "$(jget "$C" '[d["home-frank"]["metadata"]["labels"], d["home-frank"]["spec"]["resources"]["requests"]["storage"]]')" \
  '[{"app": "jupyterhub", "component": "singleuser-storage", "heritage": "jupyterhub", "hub.jupyter.org/username": "frank"}, "2Gi"]' \
  "6.x labels (no app.kubernetes.io/*), --storage-capacity"
is "$(jget "$C" '[d["home-frank"]["spec"]["storageClassName"], d["home-frank"]["metadata"]["annotations"]["volume.beta.kubernetes.io/storage-class"]]')" \
  '["standard", "standard"]' "--storage-class: storageClassName and the beta annotation, as KubeSpawner sets both"
: >"$FAKE_K8S_DIR/requests.log"
is "$(hub_api_status DELETE /users/frank/servers/extra)" 204 "stop frank's 'extra'"
is "$(hub_api_status DELETE /users/frank/servers/extra '{"remove": true}')" 204 "remove frank's 'extra'"
is "$(pvc_requests)" "" "the shared claim is not deleted with the named server"
like "$(grep 'Not deleting shared pvc' "$HUB_LOG")" 'Not deleting shared pvc for named server frank:extra: home-frank' "hub.log says why"
is "$(hub_api_status DELETE /users/frank)" 204 "DELETE /users/frank"
is "$(pvc_requests)" "DELETE hub-c/persistentvolumeclaims/home-frank 200 token-file-user" "...deletes home-frank"
hub_stop "$HC"

# ---------------------------------------------------------------- hub D: the stock spawner, --ops-scopes
HD=$SCRATCH/hub/d
hub_start "$HD" --ops-scopes admin:users,list:users,read:users
ok $? "hub D starts without --kubespawner, ops scopes without read:hub" || { done_testing; exit 1; }
is "$(hub_api_status GET /info)" 403 "GET /info with the ops token: 403 (no read:hub)"
info=$(JUPYTERHUB_TOKEN_FILE=$HD/harness-token hub_api GET /info)
is "$(jget "$info" 'd["spawner"]')" '{"class": "jupyterhub.spawner.SimpleLocalProcessSpawner", "version": "3.0.0"}' \
  "a hub without --kubespawner or spawner options reports the stock SimpleLocalProcessSpawner"
hub_seed "$HD" --user gina --running gina
ok $? "a real server starts under the stock spawner"
check "its home is under the hub dir (home_dir_template still applies)" test -d "$HD/home/gina"
hub_stop "$HD"

diag "26-kubespawner-standin took $(ms_since "$T0") ms"
done_testing
