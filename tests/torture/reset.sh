# Kill-and-resume for reset-sqlite: the fake Kubernetes API server with the standard seed's two
# Zero-to-JupyterHub hubs (hub-a, hub-b), each holding a jupyterhub.sqlite of a few MB (so the exec
# stream that copies it out arrives in many pieces; hub-b also has a -journal beside it).
# Source after tap.sh and fake-k8s.sh.
#   reset_world_start DIR        start the fake (pods start and stop in 0.3 s)
#   reset_kill_resume POINT:N    new databases, plan, apply killed at the crash point, resume, check
. "$TOP/tests/lib/killresume.sh"
RESET_NAMESPACES="hub-a hub-b"
RESET_DB=/srv/jupyterhub/jupyterhub.sqlite

reset_world_start() {
  local dir=$1
  "$PY" "$TOP/tests/fake-k8s/make-seed.py" "$dir/seed" >/dev/null || return 1
  fake_k8s_start "$dir/k8s" "$dir/seed/seed.json" --pod-start-seconds 0.3 --pod-stop-seconds 0.3 || return 1
  RESET_K8S=$FAKE_K8S_DIR
  export KUBECONFIG=$KUBECONFIG_FILE
  unset KUBERNETES_SERVICE_HOST KUBERNETES_SERVICE_PORT
}

# reset_hub_pods NS -> "NAME UID READY" per hub pod not being deleted (one line each).
reset_hub_pods() {
  curl -sS --cacert "$K8S_CA" -H "Authorization: Bearer $K8S_TOKEN" \
    "$K8S_SERVER/api/v1/namespaces/$1/pods?labelSelector=component%3Dhub" | "$PY" -c '
import json, sys
for p in json.load(sys.stdin)["items"]:
    if p["metadata"].get("deletionTimestamp"): continue
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in p.get("status", {}).get("conditions", []))
    print(p["metadata"]["name"], p["metadata"]["uid"], "ready" if ready else "not-ready")'
}

# One Ready hub pod per namespace (the previous run's rollout over), and new databases in their
# volumes: a real SQLite file of ~3 MB of random rows, different in each namespace and each run.
reset_world_reset() {
  local dir=$1 ns i pods
  for ns in $RESET_NAMESPACES; do
    for i in $(seq 100); do
      pods=$(reset_hub_pods "$ns")
      [ "$(printf '%s\n' "$pods" | grep -c .)" -eq 1 ] && [ "$(printf '%s\n' "$pods" | grep -c ' ready$')" -eq 1 ] && break
      sleep 0.1
    done
    printf '%s\n' "$pods" > "$dir/pod-before-$ns"
    rm -f "$RESET_K8S/volumes/hub-db-$ns/jupyterhub.sqlite"*
    "$PY" - "$RESET_K8S/volumes/hub-db-$ns/jupyterhub.sqlite" <<'PYEOF'
import os, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.executescript("""CREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR(255) UNIQUE, admin BOOLEAN, created DATETIME);
                    CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB);""")
db.executemany("INSERT INTO users (name, admin, created) VALUES (?, 0, '2024-01-01')", [("u%03d" % i,) for i in range(50)])
db.executemany("INSERT INTO blobs (data) VALUES (?)", [(os.urandom(3000),) for _ in range(1000)])
db.commit()
PYEOF
    cp "$RESET_K8S/volumes/hub-db-$ns/jupyterhub.sqlite" "$dir/original-$ns.sqlite"
  done
  printf 'journal bytes %s' "$RANDOM" > "$RESET_K8S/volumes/hub-db-hub-b/jupyterhub.sqlite-journal"
  cp "$RESET_K8S/volumes/hub-db-hub-b/jupyterhub.sqlite-journal" "$dir/original-hub-b.sqlite-journal"
  RESET_LOG_FROM=$(wc -l < "$RESET_K8S/requests.log")
}

# The fake's requests since the reset matching a Python expression over r (one JSON line each).
reset_requests() {
  tail -n +"$((RESET_LOG_FROM + 1))" "$RESET_K8S/requests.log" | "$PY" -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    if eval(sys.argv[1], {}, {"r": r}): print(json.dumps(r, sort_keys=True))' "$1"
}

# Every planned action ended done exactly once, or skipped with a reason and never done; nothing
# ended failed. Prints what is wrong (nothing when all is well).
reset_journal_check() {
  "$PY" - "$1" <<'PYEOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
plan = lines[0]["plan"]
ends = {}
for e in lines[1:]:
    if e["type"] == "end":
        ends.setdefault(e["id"], []).append(e)
for a in plan["actions"]:
    got = ends.get(a["id"], [])
    done = [e for e in got if e["outcome"] == "done"]
    skipped = [e for e in got if e["outcome"] == "skipped"]
    others = [e for e in got if e["outcome"] not in ("done", "skipped")]
    what = "%s %s %s" % (a["id"], a["kind"], a["target"])
    if others:
        print("%s ended %s: %s" % (what, others[0]["outcome"], others[0].get("message")))
    elif len(done) == 1 and not skipped:
        pass
    elif not done and skipped and all(e.get("message") for e in skipped):
        print("note: %s skipped: %s" % (what, skipped[-1]["message"]))
    else:
        print("%s ended done %d times, skipped %d times" % (what, len(done), len(skipped)))
PYEOF
}

# reset_kill_resume POINT: POINT must be reached (exit 137 and its marker), else the test fails. Every
# point of tests/torture/reset.t is reached (checked: all 46), so none is allowed to be missed.
reset_kill_resume() {
  local point=$1 dir="$SCRATCH/reset-${1//:/-}" rc=0 journal failures=0 ns sum backup problems f
  mkdir -p "$dir"
  reset_world_reset "$dir"
  "$RUNBOOK" plan reset-sqlite -p namespaces=hub-a,hub-b -p backup_dir="$dir/backups" -p timeout=60 \
    -o "$dir/plan.json" -q >/dev/null 2>"$dir/plan.err" \
    || { ok 1 "$point: plan"; sed 's/^/#   /' "$dir/plan.err"; return; }
  { (RUNBOOK_CRASH_AT=$point exec "$RUNBOOK" apply "$dir/plan.json" --yes --journal-dir "$dir/j" >"$dir/apply.out" 2>&1); } 2>/dev/null; rc=$?
  journal=$(ls "$dir"/j/*.journal 2>/dev/null)
  if kr_killed "$rc" "$dir/apply.out" "$point"; then
    cp "$journal" "$dir/at-kill.journal"
    "$RUNBOOK" resume "$journal" --yes >"$dir/resume.out" 2>&1; rc=$?
  else
    ok 1 "reset-sqlite killed at $point (not killed there: exit $rc)"; tail -n 5 "$dir/apply.out" | sed 's/^/#   /'; return
  fi
  [ "$rc" -eq 0 ] || { failures=1; diag "$point: exit $rc"; }
  [ -n "$journal" ] || { failures=1; diag "$point: no journal"; }
  problems=$(reset_journal_check "$journal" 2>&1)
  if printf '%s\n' "$problems" | grep -qv '^note: \|^$'; then failures=1; diag "$point: journal: $problems"; fi
  # Nothing finished before the kill started again (the journal at the kill against the one after).
  problems=$(kr_exactly_once "$dir/at-kill.journal" "$journal" --point "$point")
  [ $? -eq 0 ] || { failures=1; printf '%s\n' "$problems" | sed "s/^/#   $point: /"; }
  for ns in $RESET_NAMESPACES; do
    sum=$(sha256sum < "$dir/original-$ns.sqlite" | cut -d' ' -f1)
    # The backup under its final name matches the original, and so does its sidecar.
    backup=$(find "$dir/backups" -path "*/$ns/*" -name jupyterhub.sqlite 2>/dev/null)
    [ "$(printf '%s\n' "$backup" | grep -c .)" -eq 1 ] && [ "$(sha256sum < "$backup" | cut -d' ' -f1)" = "$sum" ] \
      || { failures=1; diag "$point: $ns: no single backup matching the original: '$backup'"; }
    if [ "$ns" = hub-b ]; then
      cmp -s "$backup-journal" "$dir/original-hub-b.sqlite-journal" || { failures=1; diag "$point: hub-b: the -journal was not backed up"; }
    fi
    # The removal ran only with the checksum of the file under the backup's final name (run_remove
    # reads it from there), which is the original's; no other command removed anything.
    reset_requests "r.get(\"exec\") and r[\"path\"].startswith(\"/api/v1/namespaces/$ns/\") and r[\"exec\"][\"command\"][0] not in (\"stat\", \"cat\", \"sha256sum\")" > "$dir/removals-$ns"
    [ -s "$dir/removals-$ns" ] && "$PY" -c '
import json, sys
for line in open(sys.argv[1]):
    c = json.loads(line)["exec"]["command"]
    if c[0] != "sh" or c[-2:] != [sys.argv[2], sys.argv[3]]: sys.exit("unexpected: %s" % c[-2:])' \
      "$dir/removals-$ns" "$RESET_DB" "$sum" \
      || { failures=1; diag "$point: $ns: a removal without the backup's checksum, or none: $(cut -c1-300 "$dir/removals-$ns")"; }
    [ ! -e "$RESET_K8S/volumes/hub-db-$ns/jupyterhub.sqlite" ] && [ ! -e "$RESET_K8S/volumes/hub-db-$ns/jupyterhub.sqlite-journal" ] \
      || { failures=1; diag "$point: $ns: the database is still there"; }
    # Restarted once (a rollout: one PATCH of the deployment, also when killed right after it was
    # answered) and Ready: one hub pod, not the planned one.
    local patches; patches=$(reset_requests "r[\"method\"] == \"PATCH\" and r[\"path\"] == \"/apis/apps/v1/namespaces/$ns/deployments/hub\"" | wc -l)
    [ "$patches" -eq 1 ] || { failures=1; diag "$point: $ns: $patches rollout restarts (PATCHes), not 1"; }
    local after; after=$(reset_hub_pods "$ns")
    [ "$(printf '%s\n' "$after" | grep -c ' ready$')" -eq 1 ] && [ "${after%% *}" != "$(cut -d' ' -f1 "$dir/pod-before-$ns")" ] \
      || { failures=1; diag "$point: $ns: hub pods now: $after (before: $(cat "$dir/pod-before-$ns"))"; }
  done
  # No partial file presented as a backup: every file under a backup's final name is whole (checked
  # above); a leftover partial file keeps its .partial-XXXX name and is named in the resume's output.
  for f in $(find "$dir/backups" -type f -name '*.partial-*' 2>/dev/null); do
    grep -qF "$(basename "$f")" "$dir/resume.out" 2>/dev/null \
      || { failures=1; diag "$point: leftover $f is not mentioned in the resume's output"; }
  done
  if [ "$failures" -ne 0 ]; then
    for f in "$dir/apply.out" "$dir/resume.out"; do
      [ -e "$f" ] && { diag "--- $(basename "$f"):"; tail -n 12 "$f" | sed 's/^/#   /'; }
    done
  fi
  ok "$failures" "reset-sqlite killed at $point ($(printf '%s\n' "$problems" | tail -n 1)), resumed: each action done once, databases removed after verified backups, hubs restarted once and Ready"
}
