#!/usr/bin/env bash
# prune-dormant with storage=retain, killed (SIGKILL, RUNBOOK_CRASH_AT) at every journal write, every
# write of a user's record, and at each HTTP response of the first deletion (one at a time, so the
# order is known: check the user, check the claim, read the volume, PATCH it to Retain, DELETE the
# user, look at the claim and the volume after), then resumed. Every point must be reached (the kill
# is required, not hoped for). After the resume: every dormant user deleted exactly once, every one of
# their volumes kept (Retain, labelled, data there), a record of each, the active user untouched.
# Real JupyterHub 3.0 with the KubeSpawner stand-in, on the fake Kubernetes API server.
. "$(dirname "$0")/lib/tap.sh"
. "$TOP/tests/lib/fake-k8s.sh"
. "$TOP/tests/lib/hub.sh"
. "$TOP/tests/lib/z2jh.sh"
unset RUNBOOK_PATH JUPYTERHUB_API_TOKEN
export XDG_STATE_HOME="$SCRATCH/state"
NS=jhub
DORMANT=(k1 k2 k3)
z2jh_start "$NS"

# Every user back as planned, each with a new claim (and volume) of their own.
reset_world() {
  local u
  for u in "${DORMANT[@]}" live; do hub_api_status DELETE "/users/$u" >/dev/null; done
  hub_seed "$SCRATCH/hub" --user 'k1,k2,k3,live' --activity k1=-200d --activity k2=-200d --activity k3=-200d \
    --activity live=-1d --claims 'k1,k2,k3,live' >/dev/null 2>&1
  LOG_FROM=$(wc -l < "$HUB_LOG")
}
deletes_204() {
  tail -n +"$((LOG_FROM + 1))" "$HUB_LOG" | grep -cE "\] 204 DELETE /hub/api/users/$1 \(ops@"
}

# check_run DIR: what must hold after the run (and its resume), whatever point it was killed at.
check_run() {
  "$PY" - "$1/plan.json" "$K8S_DIR" "$CONTROL_TOKEN" "$K8S_SERVER" "$K8S_CA" "$(ls "$1"/j/*.journal)" <<'EOF'
import hashlib, json, os, ssl, sys, urllib.request
plan, k8s_dir, token, server, ca, journal = sys.argv[1:7]
ctx = ssl.create_default_context(cafile=ca)
req = urllib.request.Request(server + "/_fake/state?resource=persistentvolumes", headers={"Authorization": "Bearer " + token})
pvs = {p["metadata"]["name"]: p for p in json.load(urllib.request.urlopen(req, context=ctx))["objects"].get("persistentvolumes", [])}
ends = {}
for line in open(journal):
    e = json.loads(line)
    if e.get("type") == "end":
        ends[e["id"]] = e
problems = []
for a in json.load(open(plan))["actions"]:
    for c in a["args"]["storage"]["claims"]:
        pv = pvs.get(c["volume"])
        if not pv:
            problems.append("%s: volume %s is gone" % (a["target"], c["volume"])); continue
        meta, spec = pv["metadata"], pv["spec"]
        if spec.get("persistentVolumeReclaimPolicy") != "Retain" or (meta.get("labels") or {}).get("runbook/retained-by") != "prune-dormant":
            problems.append("%s: volume %s not kept as it should be: %s" % (a["target"], c["volume"], spec.get("persistentVolumeReclaimPolicy")))
        if (meta.get("annotations") or {}).get("runbook/previous-reclaim-policy") != "Delete":
            problems.append("%s: volume %s forgot its previous policy" % (a["target"], c["volume"]))
        if not os.path.exists(os.path.join(k8s_dir, "volumes", c["volume"], "hubtest-marker.txt")):
            problems.append("%s: the data of %s is gone" % (a["target"], c["volume"]))
    e = ends.get(a["id"], {})
    b = (e.get("data") or {}).get("backup")
    if e.get("outcome") != "done" or not b:
        problems.append("%s: ended %s without a record" % (a["target"], e.get("outcome"))); continue
    path = os.path.join(journal[:-len(".journal")] + ".backup", b["file"])
    if not os.path.exists(path) or hashlib.sha256(open(path, "rb").read()).hexdigest() != b["sha256"]:
        problems.append("%s: its record does not match the journal" % a["target"])
print("; ".join(problems) or "fine")
EOF
}

kill_resume() {
  local point=$1 dir="$SCRATCH/kill-${1//:/-}" rc u failures=0 marker
  reset_world
  mkdir -p "$dir"
  "$RUNBOOK" plan prune-dormant -p "token_file=$JUPYTERHUB_TOKEN_FILE" -p concurrency=1 "${KC[@]}" -o "$dir/plan.json" -q \
    >/dev/null 2>"$dir/plan.err" || { ok 1 "$point: plan"; sed 's/^/#   /' "$dir/plan.err"; return; }
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
    [ "$(deletes_204 "$u")" -eq 1 ] || { failures=1; diag "$point: $u deleted $(deletes_204 "$u") times"; }
  done
  hub_api GET /users/live >/dev/null || { failures=1; diag "$point: the active user was deleted"; }
  local state; state=$(check_run "$dir")
  [ "$state" = fine ] || { failures=1; diag "$point: $state"; }
  ok "$failures" "killed at $point (rc 137), resumed: each user deleted once, every volume kept with its data, a record of each"
}

# Journal writes: the plan, start and end of each of the 3 actions, the finish.
for n in $(seq 1 8); do kill_resume "journal:$n"; done
# Each user's record is written once, in one piece.
for n in 1 2 3; do kill_resume "backup-write:$n"; done
# The first deletion's responses (and the connection check before it), then the second user's check.
for n in $(seq 1 9); do kill_resume "http-response:$n"; done

done_testing
