#!/usr/bin/env bash
# prune-dormant and users' storage, on a hub that destroys it the way zero-to-jupyterhub does: a real
# JupyterHub 3.0 whose spawner (tests/lib/kubespawner-standin) deletes a deleted user's claim in
# delete_forever() as KubeSpawner does, on the fake Kubernetes API server (tests/fake-k8s), where claims
# are provisioned volumes with reclaim policy Delete (the default class) and a volume's data is the
# directory K8S_DIR/volumes/PV. Then restore-users brings the users and their data back.
. "$(dirname "$0")/lib/tap.sh"
. "$TOP/tests/lib/fake-k8s.sh"
. "$TOP/tests/lib/hub.sh"
. "$TOP/tests/lib/z2jh.sh"
unset RUNBOOK_PATH JUPYTERHUB_API_TOKEN
export XDG_STATE_HOME="$SCRATCH/state"
NS=jhub
# The ops token gets `groups` too: restore-users puts users back in their groups.
z2jh_start "$NS" --ops-scopes admin:users,admin:servers,list:users,read:users,users:activity,read:hub,groups
HUBP=(-p "token_file=$JUPYTERHUB_TOKEN_FILE" -p grace_days=0)

# storage_state: one line per volume: NAME PHASE POLICY CLAIM(ns/name or -) RETAINED-BY USERNAME-ANNOTATION
storage_state() {
  fake_k8s_control GET "state?resource=persistentvolumes" | "$PY" -c '
import json, sys
for pv in sorted(json.load(sys.stdin)["objects"].get("persistentvolumes", []), key=lambda p: p["metadata"]["name"]):
    m, s = pv["metadata"], pv.get("spec", {})
    ref = s.get("claimRef") or {}
    print(m["name"], pv.get("status", {}).get("phase", "?"), s.get("persistentVolumeReclaimPolicy", "?"),
          (ref.get("namespace", "") + "/" + ref.get("name", "")) if ref else "-",
          (m.get("labels") or {}).get("runbook/retained-by", "-"),
          json.dumps((m.get("annotations") or {}).get("runbook/username", "-")))'
}
# volume_of CLAIM: the volume a claim is bound to now ("" when there is no such claim)
volume_of() {
  fake_k8s_control GET "state?resource=persistentvolumeclaims&namespace=$NS" | "$PY" -c '
import json, sys
for c in json.load(sys.stdin)["objects"].get("persistentvolumeclaims", []):
    if c["metadata"]["name"] == sys.argv[1]: print(c.get("spec", {}).get("volumeName", ""))' "$1"
}
claim() { "$PY" "$TOP/tests/lib/hub.py" claim-name --dir "$SCRATCH/hub" "$@"; }
mutations() { fake_k8s_requests 'r.get("mutating")' | wc -l; }
hub_deletes() { grep -cE "\] [0-9]{3} DELETE /hub/api/users/.* \(ops@" "$HUB_LOG"; }

# --- the world: dormant users with claims (names that need escaping, a named server's claim), one
# without, an active user and a dormant admin with claims that must not be touched.
DORMANT_WITH=(alice josé "mary ann" "a#b" bob)
hub_seed "$SCRATCH/hub" --user 'alice,josé,mary ann,a#b,bob,carl,live1,root' \
  --activity 'alice=-200d' --activity 'josé=-200d' --activity 'mary ann=-200d' --activity 'a#b=-200d' \
  --activity 'bob=-200d' --activity 'carl=-200d' --activity 'live1=-1d' --activity 'root=-300d' --admin root \
  --group staff=alice,live1 --claims 'alice,josé,mary ann,a#b,bob,live1,root' --claim-servers bob:work \
  --claim-size alice=20Gi >/dev/null 2>&1
ok $? "seeded 8 users and 8 claims"
before=$(storage_state)
is "$(printf '%s\n' "$before" | grep -c ' Bound Delete ')" 8 "every claim is Bound to a provisioned volume with reclaim Delete"

# --- without Kubernetes access the plan stops and names the choices
run_rb plan prune-dormant "${HUBP[@]}"
is "$RC" 2 "KubeSpawner hub, no Kubernetes access: exit 2"
like "$ERR" "kubespawner\.spawner\.KubeSpawner" "  names the spawner the hub reports"
like "$ERR" "storage=unchecked" "  names storage=unchecked"
like "$ERR" "storage=keep-user" "  and keep-user"
like "$ERR" "\-n NAMESPACE" "  and how to give access"
unlike "$ERR" "traceback|\.lua:[0-9]+" "  one message, no traceback"

# --- the plan lists each candidate's claims and the total
run_rb plan prune-dormant "${HUBP[@]}" "${KC[@]}" -o "$SCRATCH/plan.json"
is "$RC" 0 "plan with Kubernetes access"
like "$OUT$ERR" "spawner +kubespawner\.spawner\.KubeSpawner 7" "  records the spawner and its version"
like "$OUT$ERR" "storage of candidates +6 home directories, 70 GiB: kept" "  total: 6 home directories, 70 GiB, kept"
like "$OUT$ERR" "alice .*claim-alice \(20 GiB, volume pvc-[0-9a-f-]+, reclaim Delete\): kept \(volume set to Retain first\)" \
  "  alice's claim, its size, its volume and what will happen to it"
like "$OUT$ERR" "claim-bob--work .* of server 'work'" "  bob's named server's claim too"
like "$OUT$ERR" "Consequence: .*6 home directories \(70 GiB\) are kept" "  the consequence is said"
"$PY" - "$SCRATCH/plan.json" <<'EOF' > "$SCRATCH/plan.check"
import json, sys
doc = json.load(open(sys.argv[1]))
acts = {a["target"]: a for a in doc["actions"]}
print("targets", " ".join(sorted(acts)))
print("claims", " ".join(sorted(c["name"] for a in acts.values() for c in (a["args"].get("storage") or {}).get("claims", []))))
print("carl", json.dumps(acts.get("carl", {}).get("args", {}).get("storage")))
print("mode", " ".join(sorted({(a["args"].get("storage") or {}).get("mode", "-") for a in acts.values()})))
print("skipped", " ".join(sorted(s["target"] for s in doc["skipped"])))
EOF
is "$(grep ^targets "$SCRATCH/plan.check")" "targets a#b alice bob carl josé mary ann" "  candidates: the dormant users, with or without storage"
is "$(grep ^claims "$SCRATCH/plan.check")" \
  "claims $(claim 'a#b') $(claim alice) $(claim bob) $(claim bob work) $(claim josé) $(claim 'mary ann')" \
  "  their claims, matched by the exact name in the annotation"
is "$(grep ^carl "$SCRATCH/plan.check")" "carl null" "  carl has no storage"
is "$(grep ^skipped "$SCRATCH/plan.check")" "skipped live1 root" "  the active user and the admin are left alone"

# --- a dry run changes nothing, in the hub or in the cluster
m0=$(mutations); d0=$(hub_deletes)
run_rb run prune-dormant "${HUBP[@]}" "${KC[@]}" --dry-run
is "$RC:$(mutations):$(hub_deletes)" "0:$m0:$d0" "dry run: exit 0, no mutating request to the cluster, no DELETE to the hub"
is "$(storage_state)" "$before" "  every volume as it was"

# --- apply with storage=retain: the candidates' volumes survive their claims, the others are untouched
declare -A VOL
for u in "${DORMANT_WITH[@]}" live1 root; do VOL[$u]=$(volume_of "$(claim "$u")"); done
VOL[bob-work]=$(volume_of "$(claim bob work)")
run_rb apply "$SCRATCH/plan.json" --yes --journal-dir "$SCRATCH/j"
is "$RC" 0 "apply (storage=retain): exit 0"
like "$OUT$ERR" "Home directories kept: 6 volumes" "  the report counts the kept volumes"
journal=$(ls "$SCRATCH"/j/prune-dormant-*.journal)
after=$(storage_state)
for u in "${DORMANT_WITH[@]}"; do
  v=${VOL[$u]}
  line=$(printf '%s\n' "$after" | awk -v v="$v" '$1 == v')
  like "$line" "^$v Released Retain $NS/$(claim "$u" | sed 's/[#]/\\#/g') prune-dormant \"" "$u: volume $v kept: Released, Retain, labelled"
  like "$line" "$(printf '%s' "$u" | "$PY" -c 'import json,sys,re; print(re.escape(json.dumps(sys.stdin.read())))')\$" "  annotated with the exact user name"
  is "$(volume_of "$(claim "$u")")" "" "  the hub deleted the claim"
  [ -f "$K8S_DIR/volumes/$v/hubtest-marker.txt" ]; ok $? "  the data is still there"
done
like "$(printf '%s\n' "$after" | awk -v v="${VOL[bob-work]}" '$1 == v')" "Bound Retain .*prune-dormant" \
  "bob's named server's claim: its volume set to Retain too (the hub leaves that claim)"
for u in live1 root; do
  is "$(printf '%s\n' "$after" | awk -v v="${VOL[$u]}" '$1 == v {print $2, $3, $5}')" "Bound Delete -" "$u: volume untouched"
done
# The volume was set to Retain before the hub deleted the claim.
order=$(fake_k8s_requests 'r["method"] in ("PATCH", "DELETE") and ("persistentvolumes/" in r["path"] or "persistentvolumeclaims/" in r["path"])' |
  "$PY" -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    print(r["method"], r["path"].rsplit("/", 1)[-1])')
for u in alice "mary ann"; do
  pv_line=$(printf '%s\n' "$order" | grep -n "^PATCH ${VOL[$u]}$" | cut -d: -f1 | head -n 1)
  claim_line=$(printf '%s\n' "$order" | grep -n "^DELETE $("$PY" -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$(claim "$u")")$" | cut -d: -f1 | head -n 1)
  [ -n "$pv_line" ] && [ -n "$claim_line" ] && [ "$pv_line" -lt "$claim_line" ]
  ok $? "$u: the volume was set to Retain before the hub deleted the claim"
done
backup_dir=${journal%.journal}.backup
is "$(ls "$backup_dir/users" | wc -l)" 6 "a record of each deleted user beside the journal"
is "$(stat -c %a "$backup_dir/users/user-alice.json")" 600 "  mode 0600"
"$PY" - "$backup_dir/users/user-alice.json" "$journal" <<'EOF' > "$SCRATCH/record.check"
import hashlib, json, sys
rec = json.load(open(sys.argv[1]))
u = rec["user"]
print("user", u["name"], u["admin"], ",".join(u["groups"]), bool(u["last_activity"]), bool(u["created"]))
st = rec["storage"]
print("storage", st["mode"], " ".join(c["claim"]["metadata"]["name"] + ":" + c["volume"]["metadata"]["name"] for c in st["claims"]))
ends = [json.loads(l) for l in open(sys.argv[2]) if '"end"' in l]
sums = {e["data"]["backup"]["file"]: e["data"]["backup"]["sha256"] for e in ends if e.get("data", {}).get("backup")}
print("sha", sums.get("users/user-alice.json") == hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())
EOF
is "$(grep ^user "$SCRATCH/record.check")" "user alice False staff True True" "  alice's record: admin flag, groups, activity, creation"
is "$(grep ^storage "$SCRATCH/record.check")" "storage retain $(claim alice):${VOL[alice]}" "  and her claim's and volume's manifests"
is "$(grep ^sha "$SCRATCH/record.check")" "sha True" "  the journal holds its SHA-256"

# --- restore-users: the users come back, their claims bound to the same volumes
run_rb plan restore-users -p from="$journal" -p "token_file=$JUPYTERHUB_TOKEN_FILE" "${KC[@]}" -o "$SCRATCH/restore.json"
is "$RC" 0 "restore-users plan"
like "$OUT$ERR" "tokens cannot be restored" "  says tokens cannot be restored"
like "$OUT$ERR" "hub.create_user \(6\)" "  six users to create"
like "$OUT$ERR" "k8s.reattach_volume \(5\)" "  five volumes to attach again"
like "$OUT$ERR" "already attached to claim $NS/$(claim bob work)" "  bob's named claim is still attached: left alone"
m0=$(mutations)
run_rb apply "$SCRATCH/restore.json" --yes --journal-dir "$SCRATCH/j"
is "$RC" 0 "restore-users apply: exit 0"
users=$(hub_users "$SCRATCH/hub")
for u in "${DORMANT_WITH[@]}" carl; do
  printf '%s\n' "$users" | grep -qxF "$u"; ok $? "$u is back on the hub"
done
for u in "${DORMANT_WITH[@]}"; do
  is "$(volume_of "$(claim "$u")")" "${VOL[$u]}" "$u's claim is Bound to the same volume"
  [ -f "$K8S_DIR/volumes/${VOL[$u]}/hubtest-marker.txt" ]; ok $? "  with the same data"
  is "$(storage_state | awk -v v="${VOL[$u]}" '$1 == v {print $2, $3, $5}')" "Bound Delete -" "  its reclaim policy put back, runbook's label gone"
done
alice=$(hub_api GET /users/alice)
like "$alice" '"staff"' "alice is in group staff again"
like "$alice" '"last_activity": "20[0-9-]+T' "  with her last activity"

# --- storage=delete: the plan and the confirmation say it; the hub deletes the data
hub_api POST /users/alice/activity "{\"last_activity\": \"$(date -u -d '-200 days' +%Y-%m-%dT%H:%M:%SZ)\"}" >/dev/null
run_rb plan prune-dormant "${HUBP[@]}" "${KC[@]}" -p storage=delete -o "$SCRATCH/delete.json"
like "$OUT$ERR" "claim-alice \(20 GiB, .*\): DELETED with the user" "storage=delete: the plan says alice's claim is deleted"
like "$OUT$ERR" "Consequence: .*home directories \([0-9.]+ GiB\) are DELETED with their users and cannot be restored" "  and the consequence"
prompt=$("$PY" "$TOP/tests/lib/pty_run.py" "no" "$RUNBOOK" apply "$SCRATCH/delete.json" --journal-dir "$SCRATCH/j" 2>&1)
like "$prompt" "This also: .*DELETED with their users" "  the confirmation says so too"
run_rb apply "$SCRATCH/delete.json" --yes --journal-dir "$SCRATCH/j"
is "$RC" 0 "  apply: exit 0"
printf '%s\n' "$(storage_state)" | grep -q "^${VOL[alice]} "; ok $((! $?)) "  alice's volume is gone"
[ ! -e "$K8S_DIR/volumes/${VOL[alice]}" ]; ok $? "  and its data"

# --- storage=keep-user: users who have storage are left alone
hub_seed "$SCRATCH/hub" --user 'dora,eve,ops' --activity 'dora=-200d' --activity 'eve=-200d' --activity 'ops=-200d' \
  --claims dora >/dev/null 2>&1
run_rb plan prune-dormant "${HUBP[@]}" "${KC[@]}" -p storage=keep-user --output json
"$PY" -c '
import json, sys
doc = json.loads(sys.stdin.read())
print(" ".join(sorted(a["target"] for a in doc["actions"])))
print([s["reason"] for s in doc["skipped"] if s["target"] == "ops"][0])
print([s["reason"] for s in doc["skipped"] if s["target"] == "dora"][0])' <<<"$OUT" > "$SCRATCH/keep.check"
like "$(head -n 1 "$SCRATCH/keep.check")" "eve" "storage=keep-user: eve (no storage) is planned"
unlike "$(head -n 1 "$SCRATCH/keep.check")" "dora" "  dora (a claim) is not"
like "$(sed -n 2p "$SCRATCH/keep.check")" "^the token's own identity \(service ops\): the hub refuses to delete it$" \
  "a dormant user named like the token's service is never planned"
like "$(tail -n 1 "$SCRATCH/keep.check")" "^has storage \($(claim dora) .*storage=keep-user$" "  she is left alone with the reason"

# --- a token without read:hub: the spawner is unknown, so storage must be looked for all the same
hub_start "$SCRATCH/hub2" --kubespawner "$K8S_DIR" --kube-namespace "$NS" \
  --ops-scopes admin:users,admin:servers,list:users,read:users >/dev/null 2>&1 || ok 1 "a second hub starts"
hub_seed "$SCRATCH/hub2" --user fred --activity fred=-200d --claims fred >/dev/null 2>&1
HUB2=(-p "hub=$JUPYTERHUB_API_URL" -p "token_file=$JUPYTERHUB_TOKEN_FILE")
run_rb plan prune-dormant "${HUB2[@]}"
is "$RC" 2 "token without read:hub, no Kubernetes access: exit 2"
like "$ERR" "cannot tell which spawner.*read:hub" "  says why: the spawner is unknown without read:hub"
run_rb plan prune-dormant "${HUB2[@]}" "${KC[@]}"
is "$RC" 0 "  with Kubernetes access: the plan"
like "$OUT$ERR" "spawner +unknown: the token lacks the read:hub scope" "  records the spawner as unknown"
like "$OUT$ERR" "fred .*claim-fred .*: kept \(volume set to Retain first\)" "  and still finds fred's claim"
run_rb plan prune-dormant "${HUB2[@]}" -p storage=unchecked
is "$RC" 0 "storage=unchecked: no Kubernetes access needed"
like "$OUT$ERR" "storage +not checked: storage=unchecked" "  and the plan says storage was not checked"
hub_stop "$SCRATCH/hub2"

# --- a local spawner keeps nothing: no Kubernetes access needed, and the plan says so
hub_start "$SCRATCH/hub3" >/dev/null 2>&1 || ok 1 "a hub with a local spawner starts"
hub_seed "$SCRATCH/hub3" --user gina --activity gina=-200d >/dev/null 2>&1
run_rb plan prune-dormant -p "hub=$JUPYTERHUB_API_URL" -p "token_file=$JUPYTERHUB_TOKEN_FILE"
is "$RC" 0 "local spawner, no Kubernetes access: the plan"
like "$OUT$ERR" "storage +none: jupyterhub\.spawner\.SimpleLocalProcessSpawner keeps no per-user storage" "  says there is no storage to lose"

done_testing
