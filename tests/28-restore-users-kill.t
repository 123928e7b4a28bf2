#!/usr/bin/env bash
# restore-users killed (SIGKILL, RUNBOOK_CRASH_AT) at every journal write, and at the responses of the
# first user's creation, then resumed. Each iteration first prunes three users with storage=retain.
# The kill is required. After the resume: every user created exactly once and back in their group,
# each claim Bound to the volume it had before the prune, with its data, the volume's reclaim policy
# back to Delete and runbook's marks gone.
# Real JupyterHub 3.0 with the KubeSpawner stand-in, on the fake Kubernetes API server.
. "$(dirname "$0")/lib/tap.sh"
. "$TOP/tests/lib/fake-k8s.sh"
. "$TOP/tests/lib/hub.sh"
. "$TOP/tests/lib/z2jh.sh"
unset RUNBOOK_PATH JUPYTERHUB_API_TOKEN
export XDG_STATE_HOME="$SCRATCH/state"
NS=jhub
DORMANT=(k1 k2 k3)
# The ops token gets `groups` too: restore-users puts users back in their groups.
z2jh_start "$NS" --ops-scopes admin:users,admin:servers,list:users,read:users,users:activity,read:hub,groups

# Every user back as planned, each with a new claim (and volume) of their own.
reset_world() {
  local u
  for u in "${DORMANT[@]}" live; do hub_api_status DELETE "/users/$u" >/dev/null; done
  hub_seed "$SCRATCH/hub" --user 'k1,k2,k3,live' --activity k1=-200d --activity k2=-200d --activity k3=-200d \
    --activity live=-1d --claims 'k1,k2,k3,live' --group crew=k1,k2,k3 >/dev/null 2>&1
}
creates() {
  tail -n +"$((LOG_FROM + 1))" "$HUB_LOG" | grep -cE "\] 201 POST /hub/api/users/$1 \(ops@"
}

check_restore() {
  "$PY" - "$1/prune.json" "$K8S_DIR" "$CONTROL_TOKEN" "$K8S_SERVER" "$K8S_CA" "$NS" <<'EOF'
import json, os, ssl, sys, urllib.request
plan, k8s_dir, token, server, ca, ns = sys.argv[1:7]
ctx = ssl.create_default_context(cafile=ca)
def state(q):
    req = urllib.request.Request(server + "/_fake/state?" + q, headers={"Authorization": "Bearer " + token})
    return json.load(urllib.request.urlopen(req, context=ctx))["objects"]
pvs = {p["metadata"]["name"]: p for p in state("resource=persistentvolumes").get("persistentvolumes", [])}
claims = {c["metadata"]["name"]: c for c in state("resource=persistentvolumeclaims&namespace=" + ns).get("persistentvolumeclaims", [])}
problems = []
for a in json.load(open(plan))["actions"]:
    for c in a["args"]["storage"]["claims"]:
        now = claims.get(c["name"])
        if not now or now.get("spec", {}).get("volumeName") != c["volume"] or now.get("status", {}).get("phase") != "Bound":
            problems.append("%s: claim %s not Bound to %s" % (a["target"], c["name"], c["volume"])); continue
        pv = pvs.get(c["volume"], {})
        labels, ann = pv.get("metadata", {}).get("labels") or {}, pv.get("metadata", {}).get("annotations") or {}
        if pv.get("spec", {}).get("persistentVolumeReclaimPolicy") != "Delete" or "runbook/retained-by" in labels \
                or any(k.startswith("runbook/") for k in ann):
            problems.append("%s: volume %s not put back as it was" % (a["target"], c["volume"]))
        if not os.path.exists(os.path.join(k8s_dir, "volumes", c["volume"], "hubtest-marker.txt")):
            problems.append("%s: the data of %s is gone" % (a["target"], c["volume"]))
print("; ".join(problems) or "fine")
EOF
}

kill_resume() {
  local point=$1 dir="$SCRATCH/kill-${1//:/-}" rc u failures=0 marker prune_journal
  reset_world
  mkdir -p "$dir"
  "$RUNBOOK" run prune-dormant -p "token_file=$JUPYTERHUB_TOKEN_FILE" "${KC[@]}" --yes --journal-dir "$dir/pj" \
    >"$dir/prune.out" 2>&1 || { ok 1 "$point: the prune before"; tail -n 5 "$dir/prune.out" | sed 's/^/#   /'; return; }
  prune_journal=$(ls "$dir"/pj/*.journal)
  head -n 1 "$prune_journal" | "$PY" -c 'import json,sys; json.dump(json.load(sys.stdin)["plan"], open(sys.argv[1], "w"))' "$dir/prune.json"
  LOG_FROM=$(wc -l < "$HUB_LOG")
  "$RUNBOOK" plan restore-users -p from="$prune_journal" -p "token_file=$JUPYTERHUB_TOKEN_FILE" "${KC[@]}" -o "$dir/plan.json" -q \
    >/dev/null 2>"$dir/plan.err" || { ok 1 "$point: restore plan"; sed 's/^/#   /' "$dir/plan.err"; return; }
  { (RUNBOOK_CRASH_AT=$point exec "$RUNBOOK" apply "$dir/plan.json" --yes --journal-dir "$dir/j" >"$dir/apply.out" 2>&1); } 2>/dev/null
  rc=$?
  marker=$(grep -c "crash point ${point%%:*} reached" "$dir/apply.out")
  if [ "$rc" -ne 137 ] || [ "$marker" -ne 1 ]; then
    failures=1; diag "$point: the apply was not killed there (exit $rc)"
  else
    "$RUNBOOK" resume "$(ls "$dir"/j/*.journal)" --yes >"$dir/resume.out" 2>&1; rc=$?
    [ "$rc" -eq 0 ] || { failures=1; diag "$point: resume exit $rc"; tail -n 5 "$dir/resume.out" | sed 's/^/#   /'; }
  fi
  for u in "${DORMANT[@]}"; do
    [ "$(creates "$u")" -eq 1 ] || { failures=1; diag "$point: $u created $(creates "$u") times"; }
    hub_api GET "/users/$u" | grep -q '"crew"' || { failures=1; diag "$point: $u is not back in group crew: $(hub_api GET "/users/$u" 2>&1 | head -c 300)"; }
  done
  local state; state=$(check_restore "$dir" 2>&1 | tail -n 3)
  [ "$state" = fine ] || { failures=1; diag "$point: $state"; }
  ok "$failures" "killed at $point (rc 137), resumed: each user created once and in their group, each volume attached again as it was"
}

# Journal writes: the plan, start and end of 3 creations and 3 attachments, the finish.
for n in $(seq 1 14); do kill_resume "journal:$n"; done
# The first creation's responses (check, create, group, activity) and the next user's check.
for n in 2 3 4 5 6; do kill_resume "http-response:$n"; done

done_testing
