#!/usr/bin/env bash
# reset-sqlite against the fake Kubernetes API server with two Zero-to-JupyterHub hubs (hub-a, hub-b)
# holding real SQLite files: a dry run changes nothing; apply backs up byte-identical copies, removes
# the files (and a -journal sidecar) and brings up new hub pods; a wrong namespace, no hub pod, two hub
# pods, an exec cut mid-stream, an expired token and an unreachable server all stop with a clear
# message and remove nothing; mode=restore puts a backup back.
. "$(dirname "$0")/lib/tap.sh"
. "$(dirname "$0")/lib/fake-k8s.sh"
for tool in openssl bwrap; do command -v "$tool" >/dev/null || skip_all "$tool is not installed"; done

"$PY" "$TOP/tests/fake-k8s/make-seed.py" "$SCRATCH/seed" >/dev/null
fake_k8s_start "$SCRATCH/k8s" "$SCRATCH/seed/seed.json" --pod-start-seconds 0.3 --pod-stop-seconds 0.3
ok $? "the fake API server starts with hubs in hub-a and hub-b" || { done_testing; exit 1; }
D=$FAKE_K8S_DIR
export HOME="$SCRATCH/home" XDG_STATE_HOME="$SCRATCH/state" KUBECONFIG=$KUBECONFIG_FILE
unset KUBERNETES_SERVICE_HOST KUBERNETES_SERVICE_PORT
mkdir -p "$HOME"
BACKUPS=$SCRATCH/backups
DB_A=$D/volumes/hub-db-hub-a/jupyterhub.sqlite
DB_B=$D/volumes/hub-db-hub-b/jupyterhub.sqlite
ORIGINAL=$SCRATCH/seed/jupyterhub.sqlite
sql() {  # sql FILE STATEMENT: runs it with Python's sqlite3 (no sqlite3 command needed), prints column 1
  "$PY" -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1]); rows = db.execute(sys.argv[2]).fetchall(); db.commit()
print("\n".join(str(r[0]) for r in rows))' "$1" "$2"
}
# hub-b has a different database (one more user) and a rollback journal beside it.
cp "$ORIGINAL" "$SCRATCH/db-b.sqlite"
sql "$SCRATCH/db-b.sqlite" "INSERT INTO users (name, admin, created) VALUES ('dave', 0, '2024-02-02 00:00:00')"
cp "$SCRATCH/db-b.sqlite" "$DB_B"
printf 'journal bytes' > "$DB_B-journal"
sum() { sha256sum < "$1" | cut -d' ' -f1; }
hub_pods() { fake_k8s_requests False >/dev/null; curl -sS --cacert "$K8S_CA" -H "Authorization: Bearer $K8S_TOKEN" \
  "$K8S_SERVER/api/v1/namespaces/$1/pods?labelSelector=component%3Dhub" |
  "$PY" -c 'import json,sys; print(" ".join(sorted(p["metadata"]["name"] for p in json.load(sys.stdin)["items"])))'; }
mutating_requests() { fake_k8s_requests 'r.get("mutating")' | wc -l; }
mutating_execs() { fake_k8s_requests 'r.get("exec") and r["exec"]["command"][0] not in ("stat", "cat", "sha256sum")' | wc -l; }
nothing_removed() {  # nothing_removed WHAT: both databases are still in place, unchanged
  [ "$(sum "$DB_A")" = "$(sum "$ORIGINAL")" ] && [ "$(sum "$DB_B")" = "$(sum "$SCRATCH/db-b.sqlite")" ]
  ok $? "$1: both databases are untouched"
}

# ---------------------------------------------------------------- the dry run
pods_before_a=$(hub_pods hub-a) pods_before_b=$(hub_pods hub-b)
run_rb run reset-sqlite -p namespaces=hub-a,hub-b -p backup_dir="$BACKUPS" --dry-run
is "$RC" 0 "dry run exits 0"
like "$OUT" "Plan: reset-sqlite on hub-a,hub-b" "the plan names the namespaces (what the operator confirms)"
like "$OUT" "cluster +context token, server $K8S_SERVER" "it names the context and the server"
like "$OUT" "hub pod in hub-a +hub-[a-z0-9]+-[a-z0-9]+ \(Running, Ready\), deployment hub" "it shows the hub pod found in hub-a"
like "$OUT" "database in hub-a +/srv/jupyterhub/jupyterhub.sqlite, [0-9.]+ KiB" "and the database's size"
like "$OUT" "database in hub-b +/srv/jupyterhub/jupyterhub.sqlite, [0-9.]+ KiB \(with -journal 13 bytes\)" "and hub-b's journal"
like "$OUT" "k8s.backup \(2\)" "two backups planned"
like "$OUT" "k8s.exec \(2\)" "two removals planned"
like "$OUT" "deployments/hub-a/hub +rollout restart, then wait until the new hub pod is Ready" "two restarts planned"
like "$ERR" "Dry run: nothing was changed" "it says nothing changed"
is "$(mutating_requests)" 0 "dry run: the fake's request log has no mutating request"
is "$(mutating_execs)" 0 "dry run: no exec of anything but stat"
like "$(fake_k8s_requests 'r.get("exec")' | sed -n 1p)" '"command": \["stat"' "  (the plan reads file sizes with stat)"
nothing_removed "dry run"
is "$(hub_pods hub-a) $(hub_pods hub-b)" "$pods_before_a $pods_before_b" "dry run: the hub pods are the same"
ok $([ ! -e "$BACKUPS" ]; echo $?) "dry run: no backup directory created"

# ---------------------------------------------------------------- stops with a clear reason
run_rb plan reset-sqlite -n nope
is "$RC" 1 "a namespace that does not exist: exit 1"
like "$ERR" "namespace nope does not exist in context token" "  says so, with the context"
run_rb plan reset-sqlite -n nublado-alice
is "$RC" 1 "a namespace without a hub pod: exit 1"
like "$ERR" "no hub pod in namespace nublado-alice: no pod matches component=hub" "  says so"
run_rb plan reset-sqlite
is "$RC" 2 "no namespace named: exit 2 (the context's namespace is never assumed)"
like "$ERR" "name the hub namespaces" "  says how to name them"
run_rb plan reset-sqlite -n hub-a -p container=notebook
is "$RC" 1 "a wrong container: exit 1"; like "$ERR" "has no container 'notebook' \(it has: hub\)" "  names the containers"
fake_k8s_control POST objects '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"hub-extra","namespace":"hub-a","labels":{"component":"hub"}},"spec":{"containers":[{"name":"hub","image":"x"}]}}' >/dev/null
run_rb plan reset-sqlite -n hub-a
is "$RC" 1 "two hub pods: exit 1"
like "$ERR" "2 pods match component=hub in namespace hub-a: .*hub-extra .*expected exactly one hub" "  names both"
curl -sS -o /dev/null --cacert "$K8S_CA" -H "Authorization: Bearer $K8S_TOKEN" -X DELETE \
  "$K8S_SERVER/api/v1/namespaces/hub-a/pods/hub-extra?gracePeriodSeconds=0"
run_rb plan reset-sqlite -n hub-a --context expired
is "$RC" 1 "an expired token: exit 1"
like "$ERR" "HTTP 401.*did not accept a bearer token \(context \"expired\"\)" "  says the credentials were refused"
unlike "$ERR$OUT" "$K8S_EXPIRED_TOKEN" "  without printing the token"
cat > "$SCRATCH/down.yaml" <<EOF
apiVersion: v1
kind: Config
current-context: down
clusters: [{name: down, cluster: {server: "https://127.0.0.1:$(free_port)", certificate-authority: $K8S_CA}}]
users: [{name: u, user: {token: abc}}]
contexts: [{name: down, context: {cluster: down, user: u}}]
EOF
run_rb plan reset-sqlite -n hub-a --kubeconfig "$SCRATCH/down.yaml"
is "$RC" 1 "an unreachable server: exit 1"
like "$ERR" "is the API server reachable at https://127.0.0.1:[0-9]+\?" "  says so"
run_rb plan reset-sqlite -n hub-a --kubeconfig "$SCRATCH/nope.yaml"
is "$RC" 2 "a missing kubeconfig: exit 2"
nothing_removed "after the refused plans"

# ---------------------------------------------------------------- exec cut mid-stream: nothing removed
fake_k8s_control POST exec-faults '{"command":"^cat -- /srv/jupyterhub/jupyterhub.sqlite$","cutAfterBytes":4096,"count":1}' >/dev/null
run_rb run reset-sqlite -n hub-a -p backup_dir="$BACKUPS" --yes
is "$RC" 1 "the backup's stream is cut mid-way: exit 1"
like "$OUT" "FAILED +k8s.backup .*cut after 4096 bytes" "  the backup failed with the reason"
like "$OUT" "1 failed, 2 not run" "  and nothing after it ran"
like "$ERR" "runbook resume" "  with how to resume"
nothing_removed "after the cut backup"
is "$(find "$BACKUPS" -type f 2>/dev/null | wc -l)" 0 "  and no partial backup is left"

# ---------------------------------------------------------------- apply
run_rb plan reset-sqlite -p namespaces=hub-a,hub-b -p backup_dir="$BACKUPS" -o "$SCRATCH/plan.json"
is "$RC" 0 "plan saved"
run_rb apply "$SCRATCH/plan.json" --yes
is "$RC" 0 "apply exits 0"
like "$OUT" "done +k8s.backup pods/hub-a/.*verified: jupyterhub.sqlite" "hub-a backed up and verified"
like "$OUT" "done +k8s.exec pods/hub-a/.*removed /srv/jupyterhub/jupyterhub.sqlite" "hub-a's database removed"
like "$OUT" "done +k8s.restart deployments/hub-a/hub: new hub pod hub-[a-z0-9-]+ is Ready" "hub-a's new pod is Ready"
like "$OUT" "6 done, 0 skipped, 0 failed" "all six actions done"
backup_a=$(find "$BACKUPS/token/hub-a" -name jupyterhub.sqlite)
backup_b=$(find "$BACKUPS/token/hub-b" -name jupyterhub.sqlite)
is "$(sum "$backup_a")" "$(sum "$ORIGINAL")" "hub-a's backup is byte-identical"
is "$(sum "$backup_b")" "$(sum "$SCRATCH/db-b.sqlite")" "hub-b's backup is byte-identical"
is "$(cat "$backup_b-journal")" "journal bytes" "hub-b's journal was backed up too"
is "$(sql "$backup_b" 'SELECT count(*) FROM users')" 4 "the backup is a working SQLite database"
is "$(stat -c %a "$backup_a")" 600 "backups are mode 0600"
ok $([ ! -e "$DB_A" ] && [ ! -e "$DB_B" ] && [ ! -e "$DB_B-journal" ]; echo $?) "both databases (and the journal) are gone"
after_a=$(hub_pods hub-a) after_b=$(hub_pods hub-b)
ok $([ -n "$after_a" ] && [ "$after_a" != "$pods_before_a" ] && [ "$after_b" != "$pods_before_b" ]; echo $?) \
  "new hub pods run in both namespaces ($after_a, $after_b)"
like "$(fake_k8s_requests 'r.get("exec") and r["exec"]["command"][0] == "sh"' | sed -n 1p)" \
  '"command": \["sh", "-c", .*"/srv/jupyterhub/jupyterhub.sqlite", "[0-9a-f]{64}"\]' \
  "the removal is one shell step given the backup's checksum"
is "$(fake_k8s_requests 'r.get("verb") == "patch"' | wc -l)" 2 "two rollout restarts"

run_rb run reset-sqlite -p namespaces=hub-a,hub-b -p backup_dir="$BACKUPS" --dry-run
is "$RC" 0 "planning again after the reset exits 0"
like "$OUT" "no database at /srv/jupyterhub/jupyterhub.sqlite \(already reset\?\)" "  and finds nothing left to reset"

# ---------------------------------------------------------------- restore
run_rb run reset-sqlite -n hub-a -p mode=restore -p restore_from="$backup_a" -p backup_dir="$BACKUPS" --yes
is "$RC" 0 "mode=restore exits 0"
like "$OUT" "done +k8s.exec pods/hub-a/.*restored" "  the file went back"
is "$(sum "$DB_A")" "$(sum "$ORIGINAL")" "  byte-identical to the original"
run_rb plan reset-sqlite -p namespaces=hub-a,hub-b -p mode=restore -p restore_from="$backup_a"
is "$RC" 2 "mode=restore with two namespaces: exit 2"
cp "$backup_a" "$SCRATCH/jupyterhub.sqlite.partial-0a1b2c3d"
run_rb plan reset-sqlite -n hub-a -p mode=restore -p restore_from="$SCRATCH/jupyterhub.sqlite.partial-0a1b2c3d"
is "$RC" 2 "mode=restore from a .partial-HEX file (a copy killed mid-stream): exit 2"
like "$ERR" "is an incomplete copy left by an interrupted backup, not a backup" "  it is never taken for a backup"

# ---------------------------------------------------------------- the database changes after its backup
# The removal's exec is refused once (a 500 from the API server): the apply stops after the backup.
# The hub then writes to its database; resuming must not remove it, since the backup is now stale.
cp "$ORIGINAL" "$DB_B"
fake_k8s_control POST faults '{"method":"GET","path":"/pods/hub-[^/]+/exec\\?command=sh&","status":500,"count":1,"message":"exec refused for the test"}' >/dev/null
run_rb run reset-sqlite -n hub-b -p backup_dir="$SCRATCH/backups2" --yes
is "$RC" 1 "the removal's exec fails: exit 1"
like "$OUT" "done +k8s.backup" "  after the backup was made"
like "$OUT" "FAILED +k8s.exec .*exec refused for the test \(InternalError, HTTP 500\)" "  with the API's message"
journal=$(printf '%s\n' "$ERR" | sed -n 's/.*run: runbook resume \(.*\)$/\1/p')
sql "$DB_B" "INSERT INTO users (name, admin, created) VALUES ('erin', 0, '2024-03-03 00:00:00')"
changed=$(sum "$DB_B")
run_rb resume "$journal" --yes
is "$RC" 1 "resume after the database changed: exit 1"
like "$OUT" "FAILED +k8s.exec .*changed since its backup .*nothing removed" "  the removal refuses: the backup is stale"
is "$(sum "$DB_B")" "$changed" "  the changed database is still there, untouched"

# The removal happens but the stream is cut before its answer: resume finds the file gone and goes on.
cp "$ORIGINAL" "$DB_A"
fake_k8s_control POST exec-faults '{"command":"^sh -c","cutAfterBytes":1,"count":1}' >/dev/null
run_rb run reset-sqlite -n hub-a -p backup_dir="$SCRATCH/backups3" --yes
is "$RC" 1 "the removal's stream is cut after the rm: exit 1 (outcome unknown)"
journal=$(printf '%s\n' "$ERR" | sed -n 's/.*run: runbook resume \(.*\)$/\1/p')
run_rb resume "$journal" --yes
is "$RC" 0 "resume: exit 0"
like "$OUT" "done +k8s.exec .*already removed" "  the removal is recognised as done"
like "$OUT" "done +k8s.restart deployments/hub-a/hub: new hub pod" "  and the hub restarts"
is "$(sum "$(find "$SCRATCH/backups3" -name jupyterhub.sqlite)")" "$(sum "$ORIGINAL")" "  the backup of that run is intact"

done_testing
