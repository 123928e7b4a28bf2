#!/bin/bash
# The fake Kubernetes API server's storage (tests/fake-k8s): PersistentVolumeClaims, PersistentVolumes and
# StorageClasses over HTTP, the PV controller's binding, provisioning and reclaiming, the protection
# finalizers, data that follows the volume (a pod sees the files of the volume its claim is bound to),
# then Debian's python3-kubernetes (tests/fake-k8s/storage_checks.py) and kubectl when the machine has one.
. "$(dirname "$0")/lib/tap.sh"
. "$(dirname "$0")/lib/fake-k8s.sh"

"$PY" -c 'import kubernetes' 2>/dev/null || skip_all "Debian's python3-kubernetes is not installed"
for tool in openssl curl bwrap; do
  command -v "$tool" >/dev/null || skip_all "$tool is not installed"
done

"$PY" "$TOP/tests/fake-k8s/make-seed.py" "$SCRATCH/seed" >/dev/null
fake_k8s_start "$SCRATCH/k8s" "$SCRATCH/seed/seed.json" --pod-start-seconds 0.2 --pod-stop-seconds 0.2
ok $? "fake starts with the standard seed" || { done_testing; exit 1; }
D=$FAKE_K8S_DIR

# call METHOD PATH [BODY [CONTENT-TYPE]]: sets CODE (HTTP status) and BODY (the answer).
call() {
  local out
  out=$(curl -sS --cacert "$K8S_CA" -H "Authorization: Bearer $K8S_TOKEN" -X "$1" \
    -H "Content-Type: ${4:-application/json}" ${3:+--data "$3"} -w '\n%{http_code}' "$K8S_SERVER$2")
  CODE=${out##*$'\n'}
  BODY=${out%$'\n'*}
}
# jpy EXPR: evaluates a Python expression over the JSON document on stdin (d); g("a", "b") walks keys safely.
jpy() {
  "$PY" -c '
import json, sys
d = json.load(sys.stdin)
def g(*keys):
    node = d
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return "" if node is None else node
v = eval(sys.argv[1])
print(json.dumps(v) if isinstance(v, (dict, list)) else v)' "$1"
}
field() { call GET "$1"; if [ "$CODE" = 200 ]; then jpy "$2" <<<"$BODY"; else echo "$CODE"; fi; }
claim_phase() { field "/api/v1/namespaces/$1/persistentvolumeclaims/$2" 'g("status", "phase")'; }
pv_phase() { field "/api/v1/persistentvolumes/$1" 'g("status", "phase")'; }
# eventually TENTHS WANT COMMAND...: re-runs COMMAND until it prints WANT (or TENTHS/10 s pass); prints the last.
eventually() {
  local n=$1 want=$2 got; shift 2
  while :; do
    got=$("$@")
    { [ "$got" = "$want" ] || [ "$n" -le 0 ]; } && break
    sleep 0.1; n=$((n - 1))
  done
  printf '%s' "$got"
}
claim_json() {  # claim_json NAME [VOLUME-NAME [CLASS [STORAGE]]]: what KubeSpawner posts (+ volumeName)
  "$PY" -c '
import json, sys
args = sys.argv[1:]
name, volume, cls, size = args + ["", "", "-", "1Gi"][len(args):]
spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
if volume: spec["volumeName"] = volume
if cls != "-": spec["storageClassName"] = cls
print(json.dumps({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                  "metadata": {"name": name, "labels": {"component": "singleuser-storage",
                                                        "hub.jupyter.org/username": name},
                               "annotations": {"hub.jupyter.org/username": name}}, "spec": spec}))' "$@"
}
pod_json() {  # pod_json NAME CLAIM MOUNT-PATH
  printf '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"%s","labels":{"component":"singleuser-server"}},
    "spec":{"containers":[{"name":"notebook","image":"jupyter/base-notebook:2024","volumeMounts":[{"name":"home","mountPath":"%s"}]}],
            "volumes":[{"name":"home","persistentVolumeClaim":{"claimName":"%s"}}]}}' "$1" "$3" "$2"
}
# pod_exec NS POD COMMAND...: runs it in the pod over the exec WebSocket; prints stdout and stderr.
pod_exec() {
  "$PY" - "$D" "$@" <<EOF
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, "$TOP/tests/fake-k8s")
from fakek8s.client import Fake, RawExec
conn = RawExec(Fake(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:])
channels, _, _ = conn.collect()
conn.close()
sys.stdout.write((channels.get(1, b"") + channels.get(2, b"")).decode("utf-8", "replace"))
EOF
}
pod_phase() { field "/api/v1/namespaces/$1/pods/$2" 'g("status", "phase")'; }
gone() { [ "$(field "$1" '"present"')" = 404 ] && echo gone || echo present; }
CLAIMS_A=/api/v1/namespaces/hub-a/persistentvolumeclaims
CLAIMS_B=/api/v1/namespaces/hub-b/persistentvolumeclaims
PVS=/api/v1/persistentvolumes
CLASSES=/apis/storage.k8s.io/v1/storageclasses

# ---------------------------------------------------------------- discovery and classes
call GET /api/v1
is "$(jpy '[(r["namespaced"], r.get("shortNames"), r["kind"]) for r in d["resources"] if r["name"] in ("persistentvolumeclaims", "persistentvolumes")]' <<<"$BODY")" \
  '[[true, ["pvc"], "PersistentVolumeClaim"], [false, ["pv"], "PersistentVolume"]]' "discovery: /api/v1 serves pvc (namespaced) and pv (cluster-scoped)"
like "$(jpy '[r["name"] for r in d["resources"]]' <<<"$BODY")" '"persistentvolumeclaims/status".*"persistentvolumes/status"' \
  "discovery: both have a /status subresource"
call GET /apis/storage.k8s.io/v1
is "$(jpy '[(r["name"], r["namespaced"], r.get("shortNames")) for r in d["resources"]]' <<<"$BODY")" '[["storageclasses", false, ["sc"]]]' \
  "discovery: storage.k8s.io/v1 serves storageclasses (sc, cluster-scoped)"
is "$(field "$CLASSES/standard" '(g("reclaimPolicy"), g("volumeBindingMode"), g("metadata", "annotations", "storageclass.kubernetes.io/is-default-class"))')" \
  "('Delete', 'Immediate', 'true')" "seed: StorageClass standard is the default, Delete, Immediate"
call POST "$CLASSES" '{"apiVersion":"storage.k8s.io/v1","kind":"StorageClass","metadata":{"name":"wffc"},"provisioner":"example.com/local","volumeBindingMode":"WaitForFirstConsumer"}'
is "$CODE $(jpy '(g("reclaimPolicy"), g("volumeBindingMode"))' <<<"$BODY")" "201 ('Delete', 'WaitForFirstConsumer')" \
  "StorageClass create: reclaimPolicy defaults to Delete"
call POST "$CLASSES" '{"metadata":{"name":"bad"}}'
is "$CODE $(jpy 'g("message")' <<<"$BODY")" '422 StorageClass.storage.k8s.io "bad" is invalid: provisioner: Required value' \
  "StorageClass without provisioner: 422 with the real message"
call PATCH "$CLASSES/wffc" '{"provisioner":"other.example.com/x"}' application/merge-patch+json
is "$CODE $(jpy 'g("message")' <<<"$BODY")" '422 StorageClass.storage.k8s.io "wffc" is invalid: provisioner: Forbidden: updates to provisioner are forbidden.' \
  "StorageClass provisioner is immutable"

# ---------------------------------------------------------------- dynamic provisioning (KubeSpawner's path)
call POST "$CLAIMS_A" "$(claim_json claim-alice)"
is "$CODE $(jpy '(g("status", "phase"), g("spec", "storageClassName"), g("metadata", "finalizers"))' <<<"$BODY")" \
  "201 ('Pending', 'standard', ['kubernetes.io/pvc-protection'])" \
  "POST claim: 201, Pending, default class filled in by admission, pvc-protection finalizer"
UID_A=$(jpy 'g("metadata", "uid")' <<<"$BODY")
is "$(eventually 50 Bound claim_phase hub-a claim-alice)" Bound "the claim becomes Bound"
PV_A=pvc-$UID_A
is "$(field "$CLAIMS_A/claim-alice" '(g("spec", "volumeName"), g("metadata", "annotations", "pv.kubernetes.io/bind-completed"), g("metadata", "annotations", "pv.kubernetes.io/bound-by-controller"), g("status"))')" \
  "('$PV_A', 'yes', 'yes', {'phase': 'Bound', 'accessModes': ['ReadWriteOnce'], 'capacity': {'storage': '1Gi'}})" \
  "claim: volumeName pvc-<uid>, bind-completed, bound-by-controller, status with accessModes and capacity"
is "$(field "$PVS/$PV_A" '(g("status", "phase"), g("spec", "capacity"), g("spec", "accessModes"), g("spec", "storageClassName"), g("spec", "persistentVolumeReclaimPolicy"), g("metadata", "annotations", "pv.kubernetes.io/provisioned-by"), g("metadata", "finalizers"))')" \
  "('Bound', {'storage': '1Gi'}, ['ReadWriteOnce'], 'standard', 'Delete', 'k8s.io/minikube-hostpath', ['kubernetes.io/pv-protection'])" \
  "provisioned PV: Bound, the request as capacity, class, Delete from the class, provisioned-by, pv-protection"
is "$(field "$PVS/$PV_A" '{k: v for k, v in g("spec", "claimRef").items() if k != "resourceVersion"}')" \
  "{\"kind\": \"PersistentVolumeClaim\", \"namespace\": \"hub-a\", \"name\": \"claim-alice\", \"uid\": \"$UID_A\", \"apiVersion\": \"v1\"}" \
  "provisioned PV: claimRef names the claim with its uid"
check "provisioned PV: its directory DIR/volumes/pvc-<uid> exists" test -d "$D/volumes/$PV_A"

call POST "$CLAIMS_A?dryRun=All" "$(claim_json dry-claim)"
is "$CODE $(gone "$CLAIMS_A/dry-claim")" "201 gone" "dryRun=All create: answered 201, nothing stored"
call POST "$CLAIMS_A" '{"metadata":{"name":"bad"},"spec":{}}'
is "$CODE $(jpy 'g("message")' <<<"$BODY")" \
  '422 PersistentVolumeClaim "bad" is invalid: [spec.accessModes: Required value: at least 1 access mode is required, spec.resources[storage]: Required value]' \
  "claim without accessModes and storage request: 422 with the real message"
call PATCH "$CLAIMS_A/claim-alice" '{"spec":{"accessModes":["ReadWriteMany"]}}' application/merge-patch+json
is "$CODE" 422 "claim spec change: 422"
like "$(jpy 'g("message")' <<<"$BODY")" '^PersistentVolumeClaim "claim-alice" is invalid: spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims' \
  "claim spec change: the real message"
call PATCH "$CLAIMS_A/claim-alice" '[{"op":"replace","path":"/spec/resources/requests/storage","value":"2Gi"}]' application/json-patch+json
is "$CODE $(jpy 'g("reason")' <<<"$BODY")" "403 Forbidden" "growing a claim whose class does not allow expansion: 403 (resize admission)"
call PATCH "$CLAIMS_A/claim-alice" '{"status":{"phase":"Lost"},"metadata":{"labels":{"extra":"yes"}}}' application/strategic-merge-patch+json
is "$CODE $(jpy '(g("status", "phase"), g("metadata", "labels", "extra"))' <<<"$BODY")" "200 ('Bound', 'yes')" \
  "status in a PATCH of the claim is ignored (status is a subresource), labels are not"

# ---------------------------------------------------------------- a pod uses it; pvc-protection; Delete policy
call POST /api/v1/namespaces/hub-a/pods "$(pod_json jupyter-alice claim-alice /home/jovyan)"
is "$(eventually 50 Running pod_phase hub-a jupyter-alice)" Running "a pod mounting the bound claim runs"
pod_exec hub-a jupyter-alice sh -c 'echo alice-notes > /home/jovyan/notes.txt' >/dev/null
is "$(cat "$D/volumes/$PV_A/notes.txt" 2>&1)" alice-notes "exec: a file written in the pod is in DIR/volumes/<PV name>"
call DELETE "$CLAIMS_A/claim-alice"
is "$CODE $(jpy 'bool(g("metadata", "deletionTimestamp"))' <<<"$BODY")" "200 True" "DELETE claim in use: 200, the claim with a deletionTimestamp"
sleep 1
is "$(field "$CLAIMS_A/claim-alice" '(g("status", "phase"), bool(g("metadata", "deletionTimestamp")), g("metadata", "finalizers"))') $(pv_phase "$PV_A")" \
  "('Bound', True, ['kubernetes.io/pvc-protection']) Bound" "pvc-protection: a second later the claim is still there (Terminating), its PV Bound"
call DELETE /api/v1/namespaces/hub-a/pods/jupyter-alice
is "$(eventually 50 gone gone "$CLAIMS_A/claim-alice")" gone "once the pod is gone, so is the claim"
is "$(eventually 50 gone gone "$PVS/$PV_A")" gone "reclaimPolicy Delete: the PV is deleted"
check "reclaimPolicy Delete: the PV's directory is removed" test ! -e "$D/volumes/$PV_A"

# ---------------------------------------------------------------- Retain: Released, claimRef cleared, rebound, same data
call POST "$CLAIMS_A" "$(claim_json claim-bob)"
UID_B=$(jpy 'g("metadata", "uid")' <<<"$BODY"); PV_B=pvc-$UID_B
is "$(eventually 50 Bound claim_phase hub-a claim-bob)" Bound "claim-bob is Bound"
like "$(fake_k8s_control POST files '{"volume":"claim-bob","namespace":"hub-a","path":"work/result.txt","content":"bob-result"}')" \
  "volumes/$PV_B/work/result.txt" "control POST files: a claim name resolves to its bound PV's directory"
call PATCH "$PVS/$PV_B" '{"spec":{"persistentVolumeReclaimPolicy":"Retain"}}' application/strategic-merge-patch+json
is "$CODE $(jpy 'g("spec", "persistentVolumeReclaimPolicy")' <<<"$BODY")" "200 Retain" "PATCH PV reclaim policy to Retain"
call DELETE "$CLAIMS_A/claim-bob"
is "$(eventually 50 gone gone "$CLAIMS_A/claim-bob")" gone "an unused claim is deleted at once"
is "$(eventually 50 Released pv_phase "$PV_B")" Released "reclaimPolicy Retain: the PV is Released"
is "$(field "$PVS/$PV_B" '(g("spec", "claimRef", "name"), g("spec", "claimRef", "uid"))')" "('claim-bob', '$UID_B')" \
  "Released PV keeps its claimRef with the old claim's uid"
is "$(cat "$D/volumes/$PV_B/work/result.txt" 2>&1)" bob-result "Released PV keeps its data"
call POST "$CLAIMS_A" "$(claim_json claim-bob "$PV_B" standard)"
sleep 0.5
is "$(claim_phase hub-a claim-bob) $(pv_phase "$PV_B")" "Pending Released" \
  "a new claim naming the Released PV stays Pending while claimRef holds the old uid"
call DELETE "$CLAIMS_A/claim-bob"
is "$(eventually 50 gone gone "$CLAIMS_A/claim-bob")" gone "that pending claim is deleted"
call PATCH "$PVS/$PV_B" '{"spec":{"claimRef":null}}' application/merge-patch+json
is "$CODE" 200 "merge patch clears claimRef"
is "$(eventually 50 Available pv_phase "$PV_B")" Available "a Released PV whose claimRef is cleared becomes Available"
call POST "$CLAIMS_A" "$(claim_json claim-bob "$PV_B" standard)"
UID_B2=$(jpy 'g("metadata", "uid")' <<<"$BODY")
is "$(eventually 50 Bound claim_phase hub-a claim-bob)" Bound "a claim with spec.volumeName binds to the Available PV"
is "$(field "$PVS/$PV_B" '(g("status", "phase"), g("spec", "claimRef", "uid"))')" "('Bound', '$UID_B2')" \
  "the PV is Bound, its claimRef filled in with the new claim's uid"
call POST /api/v1/namespaces/hub-a/pods "$(pod_json jupyter-bob claim-bob /home/jovyan)"
is "$(eventually 50 Running pod_phase hub-a jupyter-bob)" Running "a pod mounting the re-created claim runs"
is "$(pod_exec hub-a jupyter-bob cat /home/jovyan/work/result.txt)" bob-result "exec: the pod sees the files kept on the volume"
is "$(fake_k8s_control GET "volume-files?volume=claim-bob&namespace=hub-a" | jpy '(d["volume"], d["files"])')" \
  "('$PV_B', ['work/result.txt'])" "control GET volume-files resolves the claim and lists its files"

# ---------------------------------------------------------------- static volumes; a PV bound elsewhere is not taken
call POST "$PVS" '{"apiVersion":"v1","kind":"PersistentVolume","metadata":{"name":"static-1"},"spec":{"capacity":{"storage":"2Gi"},"accessModes":["ReadWriteOnce","ReadWriteMany"],"storageClassName":"manual","hostPath":{"path":"/srv/static-1"}}}'
is "$CODE $(jpy '(g("status", "phase"), g("spec", "persistentVolumeReclaimPolicy"), g("metadata", "finalizers"))' <<<"$BODY")" \
  "201 ('Pending', 'Retain', ['kubernetes.io/pv-protection'])" "POST PV: 201, Pending, Retain by default, pv-protection"
is "$(eventually 50 Available pv_phase static-1)" Available "a new PV without claimRef becomes Available"
call POST "$CLAIMS_B" "$(claim_json big-claim static-1 manual 5Gi)"
sleep 0.3
is "$(claim_phase hub-b big-claim) $(pv_phase static-1)" "Pending Available" "a claim larger than the PV it names stays Pending"
call POST "$CLAIMS_B" "$(claim_json static-a static-1 manual)"
is "$(eventually 50 Bound claim_phase hub-b static-a)" Bound "a claim naming the static PV (class, size, modes fit) binds"
is "$(field "$PVS/static-1" '(g("spec", "claimRef", "name"), g("spec", "claimRef", "uid") == "'"$(field "$CLAIMS_B/static-a" 'g("metadata", "uid")')"'", g("metadata", "annotations", "pv.kubernetes.io/bound-by-controller"))')" \
  "('static-a', True, 'yes')" "the static PV's claimRef gets the claim's uid"
call POST "$CLAIMS_B" "$(claim_json static-b static-1 manual)"
sleep 0.5
is "$(claim_phase hub-b static-b) $(field "$PVS/static-1" 'g("spec", "claimRef", "name")')" "Pending static-a" \
  "a PV bound to another claim is never taken: the claim stays Pending"
call DELETE "$CLAIMS_B/static-b"; call DELETE "$CLAIMS_B/big-claim"; call DELETE "$CLAIMS_B/static-a"
is "$(eventually 50 Released pv_phase static-1)" Released "static PV (Retain) is Released when its claim goes"
call PATCH "$PVS/static-1" '[{"op":"remove","path":"/spec/claimRef"}]' application/json-patch+json
is "$(eventually 50 Available pv_phase static-1)" Available "JSON patch removing claimRef: Available again"

# ---------------------------------------------------------------- pv-protection
call POST "$CLAIMS_B" "$(claim_json claim-carol)"
PV_C=pvc-$(jpy 'g("metadata", "uid")' <<<"$BODY")
is "$(eventually 50 Bound claim_phase hub-b claim-carol)" Bound "claim-carol is Bound"
call DELETE "$PVS/$PV_C"
is "$CODE $(jpy 'bool(g("metadata", "deletionTimestamp"))' <<<"$BODY")" "200 True" "DELETE a Bound PV: 200 with a deletionTimestamp"
sleep 0.5
is "$(pv_phase "$PV_C") $(claim_phase hub-b claim-carol)" "Bound Bound" "pv-protection: the PV stays (Terminating) while its claim exists"
call DELETE "$CLAIMS_B/claim-carol"
is "$(eventually 50 gone gone "$PVS/$PV_C")" gone "once the claim is gone, so is the PV"

# ---------------------------------------------------------------- binding modes; pods wait for their claims
call POST "$CLAIMS_B" "$(claim_json wait-1 "" wffc)"
sleep 0.5
is "$(claim_phase hub-b wait-1) $(field "$CLAIMS_B/wait-1" 'g("spec", "volumeName")')" "Pending " "WaitForFirstConsumer: no volume before a pod uses the claim"
call POST /api/v1/namespaces/hub-b/pods "$(pod_json wait-pod wait-1 /data)"
is "$(eventually 50 Bound claim_phase hub-b wait-1)" Bound "WaitForFirstConsumer: a pod using the claim gets it provisioned and Bound"
is "$(field "$CLAIMS_B/wait-1" 'g("metadata", "annotations", "volume.kubernetes.io/selected-node")') $(eventually 50 Running pod_phase hub-b wait-pod)" \
  "fake-node-1 Running" "the scheduler annotated the claim with its node; the pod runs"
call POST "$CLAIMS_B" "$(claim_json no-class "" "")"
call POST /api/v1/namespaces/hub-b/pods "$(pod_json stuck-pod no-class /data)"
sleep 0.5
is "$(claim_phase hub-b no-class) $(pod_phase hub-b stuck-pod)" "Pending Pending" 'storageClassName "": no provisioning; a pod using the claim stays Pending'
like "$(field /api/v1/namespaces/hub-b/pods/stuck-pod 'g("status", "conditions")')" \
  '"type": "PodScheduled", "status": "False".*"reason": "Unschedulable", "message": "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims' \
  "the pod is Unschedulable: pod has unbound immediate PersistentVolumeClaims"

# ---------------------------------------------------------------- seeds with claim objects; claims that are no objects
SEED='{"namespaces":["seeded"],"objects":[{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"data","namespace":"seeded"},"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}}}],
       "pods":[{"namespace":"seeded","name":"reader","volumes":[{"mountPath":"/data","volume":"data"}],"files":[{"volume":"data","namespace":"seeded","path":"hello.txt","content":"seeded-hello"}]}]}'
fake_k8s_control POST seed "$SEED" >/dev/null
ok $? "control POST seed with a claim object and a pod using it"
PV_S=$(field /api/v1/namespaces/seeded/persistentvolumeclaims/data 'g("spec", "volumeName")')
is "$(cat "$D/volumes/$PV_S/hello.txt" 2>&1)" seeded-hello "seed files for a claim object land in its bound PV's directory"
is "$(eventually 50 Running pod_phase seeded reader)" Running "the seeded pod runs"
is "$(pod_exec seeded reader cat /data/hello.txt)" seeded-hello "and sees the seeded file"
fake_k8s_control POST seed "$SEED" >/dev/null
ok $? "loading the same seed twice keeps the bound claim (merged, not replaced)"
hub=$(field "/api/v1/namespaces/hub-a/pods?labelSelector=component%3Dhub" 'd["items"][0]["metadata"]["name"]')
is "$(pod_exec hub-a "$hub" sh -c 'test -s /srv/jupyterhub/jupyterhub.sqlite && echo yes') $(gone "$CLAIMS_A/hub-db-hub-a")" "yes gone" \
  "a claim that is no object keeps mapping to DIR/volumes/<claim name> (the seeded hub's database)"

# ---------------------------------------------------------------- lists, watch, tables
call GET "$CLAIMS_B?labelSelector=component%3Dsingleuser-storage&limit=1"
is "$(jpy '(len(d["items"]), bool(g("metadata", "continue")), g("metadata", "remainingItemCount"))' <<<"$BODY")" "(1, True, 1)" \
  "LIST claims by label with limit: one item, a continue token"
call GET "/api/v1/persistentvolumeclaims?fieldSelector=metadata.name%3Dwait-1"
is "$(jpy '[i["metadata"]["namespace"] for i in d["items"]]' <<<"$BODY")" '["hub-b"]' "LIST claims across namespaces by field selector"
call GET "$PVS?fieldSelector=status.phase%3DBound"
is "$CODE" 400 "PV field selector status.phase is not supported (400), as on the real server"
like "$(curl -sS -N --max-time 3 --cacert "$K8S_CA" -H "Authorization: Bearer $K8S_TOKEN" "$K8S_SERVER$PVS?watch=1&timeoutSeconds=1")" \
  '"type":"ADDED","object":\{"apiVersion":"v1","kind":"PersistentVolume"' "WATCH persistentvolumes"
call GET "$CLAIMS_A/claim-bob"
out=$(curl -sS --cacert "$K8S_CA" -H "Authorization: Bearer $K8S_TOKEN" -H 'Accept: application/json;as=Table;v=v1;g=meta.k8s.io' "$K8S_SERVER$CLAIMS_A")
is "$(jpy '([c["name"] for c in d["columnDefinitions"]], d["rows"][0]["cells"][:6])' <<<"$out")" \
  "(['Name', 'Status', 'Volume', 'Capacity', 'Access Modes', 'StorageClass', 'VolumeAttributesClass', 'Age'], ['claim-bob', 'Bound', '$PV_B', '1Gi', 'RWO', 'standard'])" \
  "server-side Table for claims has kubectl's columns"

# ---------------------------------------------------------------- real clients
while IFS=$'\t' read -r verdict description detail; do
  case $verdict in
    ok) ok 0 "$description" ;;
    "not ok") ok 1 "$description"; diag "$detail" ;;
    *) diag "$verdict $description $detail" ;;
  esac
done < <(timeout 60 "$PY" "$TOP/tests/fake-k8s/storage_checks.py" "$D" 2>&1)

if command -v kubectl >/dev/null && kubectl version --client >/dev/null 2>&1; then
  export KUBECONFIG=$KUBECONFIG_FILE
  out=$(kubectl get pvc,pv,sc -A 2>&1)
  like "$out" "hub-a +persistentvolumeclaim/claim-bob +Bound +$PV_B +1Gi +RWO +standard" "kubectl get pvc,pv,sc: the claim row"
  like "$out" "persistentvolume/$PV_B +1Gi +RWO +Retain +Bound +hub-a/claim-bob +standard" "kubectl get pvc,pv,sc: the volume row"
  like "$out" "storageclass.storage.k8s.io/standard \(default\) +k8s.io/minikube-hostpath +Delete +Immediate +false" \
    "kubectl get pvc,pv,sc: the class row, marked (default)"
  kubectl create -n hub-b --validate=false -f - >/dev/null 2>&1 <<<"$(claim_json kubectl-claim)"
  is "$(eventually 50 Bound claim_phase hub-b kubectl-claim)" Bound "kubectl create: the claim binds"
  PV_K=$(field "$CLAIMS_B/kubectl-claim" 'g("spec", "volumeName")')
  like "$(kubectl patch pv "$PV_K" -p '{"spec":{"persistentVolumeReclaimPolicy":"Retain"}}' 2>&1)" "persistentvolume/$PV_K patched" \
    "kubectl patch pv: reclaim policy Retain"
  kubectl delete pvc kubectl-claim -n hub-b --wait --timeout=20s >/dev/null 2>&1
  is "$? $(gone "$CLAIMS_B/kubectl-claim") $(eventually 50 Released pv_phase "$PV_K")" "0 gone Released" \
    "kubectl delete pvc --wait returns once the claim is gone; the Retain PV is Released"
else
  diag "kubectl not found: kubectl checks skipped"
fi

# ---------------------------------------------------------------- shutdown
check "the fake logged no controller error" sh -c "! grep -q 'controller error\|Traceback' '$D/server.log'"
kill -TERM "$FAKE_K8S_PID"; wait "$FAKE_K8S_PID"
is "$?" 0 "SIGTERM: the fake exits with status 0"
check "no process of the fake is left" sh -c "! kill -0 $FAKE_K8S_PID 2>/dev/null"

done_testing
