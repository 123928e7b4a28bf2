#!/usr/bin/env bash
# The planning guard through every module that can change something: a runbook (tests/runbooks/
# guard-attempt.lua) tries one change per plan through runbook.hub, k8s, pg and gitlab
# against real servers (JupyterHub 3.0, the fake Kubernetes API, PostgreSQL 15, the fake GitLab), catches
# the refusal and carries on. Each time: the refusal names what was refused, the plan (and `run --dry-run`)
# exits 1 with the engine's message, and the server's own log and state show that nothing reached it.
# The reads a plan needs (a SelfSubjectAccessReview, an exec declared read-only, a SELECT) still work.
# A plan may create new local files (backups, copies) but never overwrite one. `runbook exec` without
# --write refuses the same way; and each log is shown to record the change when it is allowed
# (`exec --write`), so that its silence above means something.
. "$(dirname "$0")/lib/tap.sh"
. "$TOP/tests/lib/hub.sh"
. "$TOP/tests/lib/pg.sh"
. "$TOP/tests/lib/fake-k8s.sh"
. "$TOP/tests/lib/fake-gitlab.sh"
for tool in openssl bwrap curl jupyterhub; do command -v "$tool" >/dev/null || skip_all "$tool is not installed"; done
[ -x "$PG_BIN/initdb" ] || skip_all "PostgreSQL 15 not installed"

export RUNBOOK_PATH="$TOP/tests/runbooks"
export HOME="$SCRATCH/home" XDG_STATE_HOME="$SCRATCH/state"
mkdir -p "$HOME"
unset KUBECONFIG KUBERNETES_SERVICE_HOST KUBERNETES_SERVICE_PORT

# ---------------------------------------------------------------- the servers
pg_start "$SCRATCH/pg" || { ok 1 "PostgreSQL starts"; done_testing; exit 1; }
export GUARD_PG="host=127.0.0.1 port=$PG_PORT user=hub dbname=jupyterhub" PGPASSWORD=$PG_HUB_PASSWORD
pg_psql_hub "CREATE TABLE guarded (id serial PRIMARY KEY, name text NOT NULL);
  INSERT INTO guarded (name) VALUES ('alpha'), ('beta'), ('gamma');
  CREATE FUNCTION write_row() RETURNS int LANGUAGE sql AS \$\$ INSERT INTO guarded (name) VALUES ('f') RETURNING id \$\$;" \
  >/dev/null
ok $? "PostgreSQL: table guarded (3 rows), its sequence and a function that writes"

"$PY" "$TOP/tests/fake-k8s/make-seed.py" "$SCRATCH/seed" >/dev/null
fake_k8s_start "$SCRATCH/k8s" "$SCRATCH/seed/seed.json" --pod-start-seconds 0.2
ok $? "the fake Kubernetes API server starts" || { done_testing; exit 1; }
K=(--kubeconfig "$KUBECONFIG_FILE")
fake_k8s_control POST objects '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "guard-cm", "namespace": "hub-a"},
  "data": {"a": "1"}}' >/dev/null
fake_k8s_control POST files '{"volume": "hub-db-hub-a", "path": "guard-readme", "content": "read me\n"}' >/dev/null
printf 'local file\n' > "$SCRATCH/local-file"; export GUARD_FILE="$SCRATCH/local-file"

hub_start "$SCRATCH/hub" || { ok 1 "JupyterHub starts"; done_testing; exit 1; }
hub_seed "$SCRATCH/hub" --user guard,other --group staff=other --running guard
ok $? "JupyterHub with users guard (server running) and other, group staff"

cat > "$SCRATCH/gitlab.json" <<'EOF'
{"tokens": {"glpat-guard-admin-token": "root"},
 "users": [{"id": 1, "username": "root", "is_admin": true, "last_activity_on": "-1d"},
           {"id": 2, "username": "guard", "last_activity_on": "-400d"},
           {"id": 3, "username": "control", "last_activity_on": "-400d"}]}
EOF
gitlab_start "$SCRATCH/gl" "$SCRATCH/gitlab.json" || { ok 1 "fake GitLab starts"; done_testing; exit 1; }
export GITLAB_TOKEN=glpat-guard-admin-token
TEST_SECRETS+=("$GITLAB_TOKEN")

export GUARD_DIR="$SCRATCH/backups"
mkdir -p "$GUARD_DIR/finished" && chmod 700 "$GUARD_DIR" "$GUARD_DIR/finished"
printf '{}\n' > "$GUARD_DIR/finished/file.json"

# ---------------------------------------------------------------- what each server saw
# Changes the runbook's credentials asked for, from each server's own log.
hub_changes() { grep -cE '(POST|PUT|PATCH|DELETE) /hub/api/.*\(ops@' "$HUB_LOG"; }
# Every request but reads and the one question a plan may POST; and every exec but the reads of copy_from
# and of the read-only attempt (`cat`, `sha256sum`).
k8s_changes() {
  fake_k8s_requests '((r["method"] not in ("GET", "HEAD") and not r["path"].endswith("/selfsubjectaccessreviews"))
    or ("exec" in r and r["exec"]["command"][0] not in ("cat", "sha256sum")))' | wc -l
}
k8s_reviews() { fake_k8s_requests 'r["path"].endswith("/selfsubjectaccessreviews")' | wc -l; }
k8s_state() {
  fake_k8s_control GET "state?resource=configmaps&namespace=hub-a" | "$PY" -c 'import json,sys
d = json.load(sys.stdin)["objects"]["configmaps"]
print(" ".join(sorted("%s:%s:%s" % (o["metadata"]["name"], o["metadata"]["resourceVersion"], json.dumps(o.get("data"), sort_keys=True)) for o in d)))'
}
pg_state() {
  "$PG_BIN/psql" "$PG_SUPER_CONNINFO dbname=jupyterhub" -X -A -t -q -c "SELECT
    (SELECT string_agg(id || '=' || name, ',' ORDER BY id) FROM guarded),
    (SELECT last_value || '/' || is_called FROM guarded_id_seq),
    (SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public')"
}
gitlab_changes() { gitlab_requests 'r["method"] != "GET"' | wc -l; }

# refused SERVICE ATTEMPT WHAT [RUNBOOK-OPTION...]: in a plan and in `run --dry-run`, the attempt is
# refused with a message naming WHAT, the plan fails with the engine's message, and SERVICE saw no change.
refused() {
  local service=$1 attempt=$2 what=$3 before after cmd
  shift 3
  for cmd in plan "run --dry-run"; do
    before=$("${service}_changes")
    # shellcheck disable=SC2086
    run_rb $cmd guard-attempt -p attempt="$attempt" "$@"
    after=$("${service}_changes")
    is "$RC" 1 "$attempt ($cmd): exit 1"
    like "$ERR" "attempt $attempt: raised: (.*: )?refused: $what" "  the refusal names what was refused"
    like "$ERR" "attempt $attempt: raised: .* while planning; planning is read-only" "  and says planning is read-only"
    like "$ERR" "guard-attempt tried to change something while planning" "  the engine fails the plan though the runbook caught it"
    is "$after" "$before" "  $service saw no change"
  done
}
# allowed ATTEMPT RESULT-REGEX [RUNBOOK-OPTION...]: a read a plan may do goes through.
allowed() {
  local attempt=$1 result=$2
  shift 2
  run_rb plan guard-attempt -p attempt="$attempt" "$@"
  is "$RC" 0 "$attempt: allowed while planning (exit 0)"
  like "$ERR" "attempt $attempt: returned: $result" "  and answered"
}

# ---------------------------------------------------------------- JupyterHub
hub_before=$(hub_api GET /users/guard | "$PY" -c 'import json,sys; u=json.load(sys.stdin); print(u["admin"], u["groups"], u["last_activity"], bool(u["server"]))')
users_before=$(hub_users "$SCRATCH/hub" | tr '\n' ' ')
refused hub hub.delete_user "HTTP DELETE http://[^ ]*/hub/api/users/guard while"
refused hub hub.create_user "HTTP POST http://[^ ]*/hub/api/users/guard-new while"
refused hub hub.create_users "HTTP POST http://[^ ]*/hub/api/users while"
refused hub hub.add_to_group "HTTP POST http://[^ ]*/hub/api/groups/staff/users while"
refused hub hub.set_activity "HTTP POST http://[^ ]*/hub/api/users/guard/activity while"
refused hub hub.stop_server "HTTP DELETE http://[^ ]*/hub/api/users/guard/server while"
refused hub hub.raw_post "HTTP POST http://[^ ]*/hub/api/users/guard-raw while"
refused hub hub.raw_patch "HTTP PATCH http://[^ ]*/hub/api/users/guard while"
refused hub hub.raw_delete "HTTP DELETE http://[^ ]*/hub/api/users/guard while"
# A GET with a body: the wire must carry GET (libcurl sends POST for a body unless told the method).
run_rb plan guard-attempt -p attempt=hub.get_with_body
is "$(hub_changes)" 0 "hub: a GET carrying a body is sent as GET, not as a POST that creates the user"
is "$(hub_api_status GET /users/guard-sneaky)" 404 "  no user guard-sneaky"
allowed hub.read "guard"
run_rb plan guard-attempt -p attempt=hub.delete_user -p swallow=false
is "$RC" 1 "hub: a refusal the runbook does not catch: exit 1"
like "$ERR" "tried to change something while planning" "  with the engine's message"
is "$(hub_changes)" 0 "hub: its log shows no POST, PUT, PATCH or DELETE from the runbook's token"
is "$(hub_users "$SCRATCH/hub" | tr '\n' ' ')" "$users_before" "hub: the same users"
is "$(hub_api GET /users/guard | "$PY" -c 'import json,sys; u=json.load(sys.stdin); print(u["admin"], u["groups"], u["last_activity"], bool(u["server"]))')" \
  "$hub_before" "hub: guard unchanged (admin, groups, last activity, running server)"

# ---------------------------------------------------------------- Kubernetes
k8s_before=$(k8s_state)
refused k8s k8s.create "HTTP POST https://[^ ]*/api/v1/namespaces/hub-a/configmaps while" "${K[@]}"
refused k8s k8s.create_dry_run "HTTP POST https://[^ ]*/api/v1/namespaces/hub-a/configmaps\?dryRun=All while" "${K[@]}"
refused k8s k8s.delete "HTTP DELETE https://[^ ]*/api/v1/namespaces/hub-a/configmaps/guard-cm while" "${K[@]}"
refused k8s k8s.delete_dry_run "HTTP DELETE https://[^ ]*/configmaps/guard-cm\?dryRun=All while" "${K[@]}"
refused k8s k8s.patch_strategic "HTTP PATCH https://[^ ]*/api/v1/namespaces/hub-a/configmaps/guard-cm while" "${K[@]}"
refused k8s k8s.patch_merge "HTTP PATCH https://[^ ]*/configmaps/guard-cm while" "${K[@]}"
refused k8s k8s.patch_json "HTTP PATCH https://[^ ]*/configmaps/guard-cm while" "${K[@]}"
refused k8s k8s.rollout_restart "HTTP PATCH https://[^ ]*/apis/apps/v1/namespaces/hub-a/deployments/hub while" "${K[@]}"
refused k8s k8s.exec "exec of \`sh -c \"echo changed > /srv/jupyterhub/guard-marker\"\` in pods/hub-a/hub-" "${K[@]}"
refused k8s k8s.copy_to "exec of \`sh -c .* /srv/jupyterhub/guard-marker\` in pods/hub-a/hub-" "${K[@]}"
refused k8s k8s.raw_put "HTTP PUT https://[^ ]*/configmaps/guard-cm while" "${K[@]}"
run_rb plan guard-attempt -p attempt=k8s.get_with_body "${K[@]}"
is "$(k8s_changes)" 0 "k8s: a GET carrying a body is sent as GET, not as a POST that creates the object"
reviews=$(k8s_reviews)
allowed k8s.access_review "can delete configmaps: true" "${K[@]}"
is "$(k8s_reviews)" $((reviews + 1)) "  the SelfSubjectAccessReview reached the server: the one POST a plan may send"
allowed k8s.exec_readonly "exit 0, read read me" "${K[@]}"
is "$(fake_k8s_requests '"exec" in r and r["exec"]["command"] == ["cat", "/srv/jupyterhub/guard-readme"]' | wc -l)" 1 \
  "  the exec declared read-only ran"
is "$(k8s_changes)" 0 "k8s: requests.log shows no write and no exec but the read-only one"
is "$(k8s_state)" "$k8s_before" "k8s: the ConfigMaps are as they were (names, resourceVersions, data)"
is "$(fake_k8s_control GET 'volume-files?volume=hub-db-hub-a' | "$PY" -c 'import json,sys; print("guard-marker" in json.load(sys.stdin)["files"])')" \
  False "k8s: no file written in the hub's volume"

# ---------------------------------------------------------------- PostgreSQL
pg_changes() { pg_state; }
pg_before=$(pg_state)
PGAPPNAME=guard-victim "$PG_BIN/psql" "$GUARD_PG host=127.0.0.1" -X -q -c "SELECT pg_sleep(3600)" >/dev/null 2>&1 &
VICTIM=$!
on_exit "kill $VICTIM"
for _ in $(seq 50); do
  [ "$(pg_psql_super "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'guard-victim'")" = 1 ] && break
  sleep 0.1
done
refused pg pg.insert "SQL INSERT \(cannot execute INSERT in a read-only transaction\)"
refused pg pg.update "SQL UPDATE \(cannot execute UPDATE in a read-only transaction\)"
refused pg pg.delete "SQL DELETE \(cannot execute DELETE in a read-only transaction\)"
refused pg pg.drop "SQL DROP \(cannot execute DROP TABLE in a read-only transaction\)"
refused pg pg.create "SQL CREATE \(cannot execute CREATE TABLE in a read-only transaction\)"
refused pg pg.truncate "SQL TRUNCATE \(cannot execute TRUNCATE TABLE in a read-only transaction\)"
refused pg pg.copy_from "SQL COPY \(only COPY ... TO STDOUT reads"
refused pg pg.copy_to_server_file "SQL COPY \(only COPY ... TO STDOUT reads"
refused pg pg.nextval "SQL SELECT \(cannot execute nextval\(\) in a read-only transaction\)"
refused pg pg.setval "SQL SELECT \(cannot execute setval\(\) in a read-only transaction\)"
refused pg pg.writing_function "SQL SELECT \(cannot execute INSERT in a read-only transaction\)"
refused pg pg.writable_cte "SQL WITH \(cannot execute .* in a read-only transaction\)"
refused pg pg.select_for_update "SQL SELECT \(cannot execute SELECT FOR UPDATE in a read-only transaction\)"
refused pg pg.terminate_backend "SQL calling pg_terminate_backend\(\)"
refused pg pg.read_write_again "SQL SELECT \(transaction read-write mode must be set before any query"
refused pg pg.advisory_lock "SQL calling pg_advisory_lock\(\)"
refused pg pg.transaction "SQL INSERT \(cannot execute INSERT in a read-only transaction\)"
allowed pg.select "rows 3"
is "$(pg_state)" "$pg_before" "pg: rows, sequence and tables unchanged"
is "$(pg_psql_super "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'guard-victim'")" 1 \
  "pg: the other session is still there"

# ---------------------------------------------------------------- GitLab
refused gitlab gitlab.deactivate "HTTP POST http://[^ ]*/api/v4/users/2/deactivate while"
refused gitlab gitlab.raw_post "HTTP POST http://[^ ]*/api/v4/users/2/block while"
is "$(gitlab_changes)" 0 "gitlab: its log shows no POST, PUT or DELETE"
is "$(gitlab_state guard state)" active "gitlab: guard is still active"

# ---------------------------------------------------------------- local files: backup, userbackup, copies
# The rule as the code and tests/41 have it: a plan may create NEW local files (a backup module file, a
# copy out of a pod or a table), which changes no server; nothing is ever overwritten or replaced.
files_state() { (cd "$GUARD_DIR" && find . -printf '%p:%m:%s\n' | sort | tr '\n' ' '); }
allowed backup.mkdir "true"
allowed backup.write "sha256 [0-9a-f]{64}"
is "$(stat -c %a "$GUARD_DIR/written.json")" 600 "  a new file, mode 0600"
allowed userbackup.save "users/user-guard.json"
allowed k8s.copy_from "sha256 [0-9a-f]{64}" "${K[@]}"
is "$(cat "$GUARD_DIR/copied")" "read me" "  the copy holds the pod's file"
allowed pg.copy_to_local_file "rows 3"
files_before=$(files_state)
allowed backup.write_existing "nil, cannot create backup $GUARD_DIR/finished/file.json: File exists"
allowed backup.publish_existing "nil, backup $GUARD_DIR/finished exists already"
allowed backup.read "\{\}"
is "$(files_state)" "$files_before" "backup: an existing file or directory is neither overwritten nor replaced"
is "$(cat "$GUARD_DIR/finished/file.json")" "{}" "  the existing file holds what it held"
is "$(k8s_changes)/$(hub_changes)/$(gitlab_changes)" "0/0/0" "  and no server saw a change"
is "$(pg_state)" "$pg_before" "  not even the database copied"

# ---------------------------------------------------------------- runbook exec without --write
# exec_refused SERVICE NAME WHAT SCRIPT: read-only by default, the same way, and nothing reaches SERVICE.
exec_refused() {
  local service=$1 name=$2 what=$3 before
  cat > "$SCRATCH/$name.lua"
  before=$("${service}_changes")
  run_rb exec "${K[@]}" "$SCRATCH/$name.lua"
  is "$RC" 1 "exec $name without --write: exit 1"
  like "$ERR" "refused: $what in read-only mode \(use .runbook exec --write. to allow changes\)" "  names what was refused"
  is "$("${service}_changes")" "$before" "  $service saw no change"
}
exec_refused hub hub-delete "HTTP DELETE http://[^ ]*/hub/api/users/guard" <<'EOF'
local hub = require "runbook.hub"
assert(hub.connect{ token_file = os.getenv("JUPYTERHUB_TOKEN_FILE") }):delete_user("guard")
EOF
exec_refused k8s k8s-delete "HTTP DELETE https://[^ ]*/configmaps/guard-cm" <<'EOF'
local c = assert(require("runbook.k8s").connect(options))
c:delete("configmaps", "guard-cm", { namespace = "hub-a" })
EOF
exec_refused pg pg-delete "SQL DELETE \(cannot execute DELETE in a read-only transaction\)" <<'EOF'
assert(require("runbook.pg").connect(os.getenv("GUARD_PG"))):query("DELETE FROM guarded")
EOF
exec_refused gitlab gitlab-deactivate "HTTP POST http://[^ ]*/api/v4/users/2/deactivate" <<'EOF'
assert(require("runbook.gitlab").connect{ url = os.getenv("GITLAB_URL") }):deactivate(2)
EOF

# ---------------------------------------------------------------- the evidence can speak
# With --write the same calls reach each server, and its log or state shows them: the silence above is
# the guard's doing, not a log that records nothing.
cat > "$SCRATCH/write-all.lua" <<'EOF'
local hub = assert(require("runbook.hub").connect{ token_file = os.getenv("JUPYTERHUB_TOKEN_FILE") })
assert(hub:create_user("control-user"))
local k = assert(require("runbook.k8s").connect(options))
assert(k:create("configmaps", { metadata = { name = "control-cm" }, data = {} }, { namespace = "hub-a" }))
assert(assert(require("runbook.pg").connect(os.getenv("GUARD_PG"))):query("INSERT INTO guarded (name) VALUES ('control')"))
assert(assert(require("runbook.gitlab").connect{ url = os.getenv("GITLAB_URL") }):deactivate(3))
assert(require("runbook.backup").write(os.getenv("GUARD_DIR") .. "/control.json", "{}"))
EOF
run_rb exec --write "${K[@]}" "$SCRATCH/write-all.lua"
is "$RC" 0 "exec --write: the same modules change things" || diag "$ERR"
is "$(hub_changes)" 1 "  the hub's log shows the runbook token's POST"
is "$(k8s_changes)" 1 "  the fake Kubernetes API's log shows the POST"
unlike "$(pg_state)" "^$(printf '%s' "$pg_before" | cut -d'|' -f1)\|" "  the table has a new row"
is "$(gitlab_changes)" 1 "  the fake GitLab's log shows the POST"
check "  the backup file is there" test -f "$GUARD_DIR/control.json"

done_testing
