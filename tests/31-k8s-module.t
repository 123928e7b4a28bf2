#!/usr/bin/env bash
# runbook.k8s against the fake Kubernetes API server: kubeconfig resolution as kubectl does it
# (files, KUBECONFIG merge, contexts, relative paths, every kind of credential, in-cluster), REST
# (get, list with selectors and continue, create, delete, patches, dry run, waits, rollout restart),
# WebSocket exec (5 MB binary round trips both ways, exit codes, streams cut mid-way) and errors
# (Status messages, 401/403, an expired token, an unreachable server), with secrets never printed.
. "$(dirname "$0")/lib/tap.sh"
. "$(dirname "$0")/lib/fake-k8s.sh"
for tool in openssl bwrap curl; do command -v "$tool" >/dev/null || skip_all "$tool is not installed"; done

"$PY" "$TOP/tests/fake-k8s/make-seed.py" "$SCRATCH/seed" >/dev/null
fake_k8s_start "$SCRATCH/k8s" "$SCRATCH/seed/seed.json" --pod-start-seconds 0.3 --pod-stop-seconds 0.3 \
  --namespace-termination-seconds 1
ok $? "the fake API server starts" || { done_testing; exit 1; }
D=$FAKE_K8S_DIR
BUILD=${RUNBOOK_BUILD:-build}
export HOME="$SCRATCH/home" XDG_STATE_HOME="$SCRATCH/state"
mkdir -p "$HOME"
unset KUBECONFIG
SERVICE_HOST=$KUBERNETES_SERVICE_HOST SERVICE_PORT=$KUBERNETES_SERVICE_PORT
unset KUBERNETES_SERVICE_HOST KUBERNETES_SERVICE_PORT  # in-cluster only where a check asks for it

# ---------------------------------------------------------------- framing unit tests (C)
if [ -x "$TOP/$BUILD/tests/test_ws_frame" ]; then
  while IFS= read -r line; do
    case $line in "ok "*) ok 0 "ws_frame: ${line#ok * - }" ;; "not ok "*) ok 1 "ws_frame: ${line#not ok * - }" ;; esac
  done < <("$TOP/$BUILD/tests/test_ws_frame")
else
  ok 1 "build/tests/test_ws_frame exists (make test-programs)"
fi

# ---------------------------------------------------------------- helpers
PRELUDE='local k8s = require "runbook.k8s"
local json = require "runbook.json"
local function check(cond, desc, detail)
  local line = (cond and "ok" or "not ok") .. "\t" .. desc
  if not cond and detail ~= nil then line = line .. "\t" .. tostring(detail):gsub("[\t\n]", " ") end
  print(line)
  return cond
end
local function connect(opts) local c, err = k8s.connect(opts or {}); if not c then print("not ok\tconnect\t" .. err) end; return c end
local function hub_pod(c, ns) local pods = assert(c:list("pods", { namespace = ns, label_selector = "component=hub" })); return pods[1].metadata.name end
'
ALL_OUTPUT="$SCRATCH/all-output"
# lua_checks NAME [exec options] <<'LUA' ... : runs a `runbook exec` script and reports its check() lines.
lua_checks() {
  local name=$1; shift
  { printf '%s\n' "$PRELUDE"; cat; } > "$SCRATCH/$name.lua"
  "$RUNBOOK" exec "$@" "$SCRATCH/$name.lua" >"$SCRATCH/$name.out" 2>&1
  local rc=$? verdict desc detail
  cat "$SCRATCH/$name.out" >> "$ALL_OUTPUT"
  while IFS=$'\t' read -r verdict desc detail; do
    case $verdict in
      ok) ok 0 "$name: $desc" ;;
      "not ok") ok 1 "$name: $desc"; diag "$detail" ;;
      *) [ -n "$verdict$desc" ] && diag "$verdict $desc $detail" ;;
    esac
  done < "$SCRATCH/$name.out"
  [ $rc -eq 0 ] || { ok 1 "$name: the script exits 0 (got $rc)"; }
}
mutations() { fake_k8s_requests 'r.get("mutating")' | wc -l; }

# ---------------------------------------------------------------- kubeconfig resolution
export KC=$KUBECONFIG_FILE
lua_checks contexts <<'LUA'
local kc = os.getenv("KC")
for _, name in ipairs({ "token", "cert-files", "cert-data", "token-file" }) do
  local c = connect({ kubeconfig = kc, context = name })
  local ns, err = c:list("namespaces")
  check(ns and #ns >= 7, "context " .. name .. ": lists namespaces", err)
end
local c = connect({ kubeconfig = kc })
check(c.context == "token", "without --context: current-context (token)", c.context)
check(c.namespace == "default", "no namespace in the context: default", c.namespace)
c = connect({ kubeconfig = kc, context = "cert-files" })
check(c.namespace == "nublado", "the context's namespace (cert-files: nublado)", c.namespace)
c = connect({ kubeconfig = kc, context = "cert-files", namespace = "hub-a" })
check(c.namespace == "hub-a", "-n wins over the context's namespace", c.namespace)
local bad, err = k8s.connect({ kubeconfig = kc, context = "nope" })
check(bad == nil and err:find('context "nope" not found', 1, true) and err:find("cert-data", 1, true),
  "an unknown context is named, with the ones there are", err)
bad, err = k8s.connect({ kubeconfig = "/nonexistent/kubeconfig" })
check(bad == nil and err:find("/nonexistent/kubeconfig", 1, true), "a missing --kubeconfig file is an error", err)
LUA

# runbook exec hands the command line's cluster selection to the script as `options`.
lua_checks exec-options --kubeconfig "$KC" --context cert-files -n hub-b <<'LUA'
check(options.kubeconfig == os.getenv("KC") and options.context == "cert-files" and options.namespace == "hub-b",
  "exec: options holds --kubeconfig, --context and -n", json.encode(options))
local c = connect(options)
check(c.context == "cert-files" and c.namespace == "hub-b", "  k8s.connect(options) uses them", c.context)
LUA

# KUBECONFIG: a list, merged; the first file to name something wins; missing files are skipped.
mkdir -p "$SCRATCH/kc"
cat > "$SCRATCH/kc/first.yaml" <<EOF
apiVersion: v1
kind: Config
current-context: cert-data
contexts:
- name: token
  context: {cluster: bogus, user: admin-token}
EOF
KC_LIST="$SCRATCH/kc/first.yaml:$SCRATCH/kc/missing.yaml:$KUBECONFIG_FILE"
KUBECONFIG=$KC_LIST lua_checks kubeconfig-merge <<'LUA'
local c = connect()
check(c and c.context == "cert-data", "KUBECONFIG: current-context comes from the first file that sets it", c and c.context)
local ns, err = c:list("namespaces")
check(ns ~= nil, "KUBECONFIG: clusters and users come from the later file (relative paths from its own directory)", err)
local bad
bad, err = k8s.connect({ context = "token" })
check(bad == nil and err:find('cluster "bogus"', 1, true), "KUBECONFIG: the first file's context of a name wins", err)
LUA

# Relative paths resolve against the kubeconfig's directory, not the current one; a YAML error has a position.
cd / && lua_checks relative-paths <<'LUA'
local c = connect({ kubeconfig = os.getenv("KC"), context = "cert-files" })
local pods, err = c:list("pods", { namespace = "hub-a" })
check(pods ~= nil, "client-certificate: pki/admin.crt is found from another working directory", err)
LUA
cd "$TOP"
printf 'apiVersion: v1\nclusters:\n  - name: x\n   cluster: {}\n' > "$SCRATCH/kc/broken.yaml"
KC=$SCRATCH/kc/broken.yaml lua_checks yaml-error <<'LUA'
local c, err = k8s.connect({ kubeconfig = os.getenv("KC") })
check(c == nil and err:find("broken.yaml: %d+:%d+: "), "a YAML error names the file, line and column", err)
LUA

# TLS settings: tls-server-name, insecure-skip-tls-verify, certificate-authority-data.
cat > "$SCRATCH/kc/tls.yaml" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: by-name
  cluster: {server: "$K8S_SERVER", certificate-authority: $K8S_CA, tls-server-name: kubernetes.default}
- name: wrong-name
  cluster: {server: "$K8S_SERVER", certificate-authority: $K8S_CA, tls-server-name: wrong.example}
- name: insecure
  cluster: {server: "$K8S_SERVER", insecure-skip-tls-verify: true}
- name: both
  cluster: {server: "$K8S_SERVER", certificate-authority: $K8S_CA, insecure-skip-tls-verify: true}
- name: no-ca
  cluster: {server: "$K8S_SERVER"}
- name: down
  cluster: {server: "https://127.0.0.1:$(free_port)", certificate-authority: $K8S_CA}
users:
- name: admin
  user: {token: "$K8S_TOKEN"}
contexts:
- {name: by-name, context: {cluster: by-name, user: admin}}
- {name: wrong-name, context: {cluster: wrong-name, user: admin}}
- {name: insecure, context: {cluster: insecure, user: admin}}
- {name: both, context: {cluster: both, user: admin}}
- {name: no-ca, context: {cluster: no-ca, user: admin}}
- {name: down, context: {cluster: down, user: admin}}
current-context: by-name
EOF
KC=$SCRATCH/kc/tls.yaml lua_checks tls <<'LUA'
local kc = os.getenv("KC")
local c = connect({ kubeconfig = kc, context = "by-name" })
local ns, err = c:list("namespaces")
check(ns ~= nil, "tls-server-name: the certificate is checked against that name", err)
c = connect({ kubeconfig = kc, context = "wrong-name" })
ns, err = c:list("namespaces")
check(ns == nil and err:find("TLS verification"), "tls-server-name that the certificate lacks: a TLS error with a hint", err)
c = connect({ kubeconfig = kc, context = "insecure" })
ns, err = c:list("namespaces")
check(ns ~= nil, "insecure-skip-tls-verify: true", err)
local bad
bad, err = k8s.connect({ kubeconfig = kc, context = "both" })
check(bad == nil and err:find("insecure%-skip%-tls%-verify"), "a CA and insecure-skip-tls-verify together are refused, as kubectl does", err)
c = connect({ kubeconfig = kc, context = "no-ca" })
ns, err = c:list("namespaces")
check(ns == nil and err:find("TLS"), "no CA for a private CA's server: TLS verification fails", err)
c = connect({ kubeconfig = kc, context = "down" })
ns, err = c:list("namespaces")
check(ns == nil and err:find("is the API server reachable at https://127.0.0.1:%d+%?"), "an unreachable server: a clear message", err)
local r
r, err = c:exec("hub", { "true" }, { namespace = "hub-a", readonly = true })
check(r == nil and err:find("is the API server reachable"), "exec to an unreachable server: the same message", err)
LUA

# In-cluster: no kubeconfig anywhere, the service account directory of the fake.
KUBERNETES_SERVICE_HOST=$SERVICE_HOST KUBERNETES_SERVICE_PORT=$SERVICE_PORT RUNBOOK_SERVICEACCOUNT_DIR=$K8S_SA_DIR \
  lua_checks in-cluster <<'LUA'
local c = connect()
check(c and c.context == "in-cluster", "no kubeconfig and KUBERNETES_SERVICE_HOST set: in-cluster", c and c.context)
check(c.namespace == "default", "in-cluster namespace from the service account's namespace file", c.namespace)
local pods, err = c:list("pods", { namespace = "hub-a" })
check(pods ~= nil, "in-cluster: the service account token and CA work", err)
c = connect({ namespace = "hub-b" })
check(c.namespace == "hub-b", "in-cluster: -n still wins", c.namespace)
LUA
RUNBOOK_SERVICEACCOUNT_DIR=$K8S_SA_DIR lua_checks no-config <<'LUA'
local c, err = k8s.connect()
check(c == nil and err:find("no Kubernetes configuration"), "no kubeconfig and not in a cluster: a clear message", err)
LUA

# tokenFile is re-read: the fake rotates it and only the new token works.
KC=$KC lua_checks token-file <<'LUA'
local c = connect({ kubeconfig = os.getenv("KC"), context = "token-file" })
local ok1, err = c:list("namespaces")
check(ok1 ~= nil, "tokenFile: works", err)
local http = require "runbook.http"
local resp = http.request({ method = "GET", url = os.getenv("K8S_SERVER") .. "/_fake/state?resource=namespaces",
  headers = { Authorization = "Bearer " .. os.getenv("CONTROL_TOKEN") }, ca_file = os.getenv("K8S_CA") })
check(resp and resp.status == 200, "(control API reachable)", resp and resp.status)
LUA
fake_k8s_control POST tokens/rotate-file '{}' >/dev/null
KC=$KC lua_checks token-file-rotated <<'LUA'
local c = connect({ kubeconfig = os.getenv("KC"), context = "token-file" })
local ns, err = c:list("namespaces")
check(ns ~= nil, "tokenFile: after rotation the new token is read", err)
LUA

# Exec credential plugins (v1 and v1beta1), cached, re-run after a 401, failures explained.
mkdir -p "$SCRATCH/plugin"
cat > "$SCRATCH/plugin/cred.sh" <<'EOF'
#!/bin/sh
# Counts its runs; prints the token named by TOKEN_SOURCE (first run may print a stale one).
n=$(cat "$PLUGIN_DIR/count" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > "$PLUGIN_DIR/count"
printf '%s' "$KUBERNETES_EXEC_INFO" > "$PLUGIN_DIR/exec-info.json"
case "$MODE" in
  fail) echo "error: you must log in first (run: login-tool)" >&2; exit 1 ;;
  stale-first) if [ "$n" -eq 1 ]; then token=$STALE; else token=$GOOD; fi ;;
  stale) token=$STALE ;;
  *) token=$GOOD ;;
esac
printf '{"apiVersion":"%s","kind":"ExecCredential","status":{"token":"%s","expirationTimestamp":"2099-01-01T00:00:00Z"}}\n' "$API" "$token"
EOF
chmod +x "$SCRATCH/plugin/cred.sh"
plugin_kubeconfig() {  # plugin_kubeconfig API MODE [COMMAND] -> a kubeconfig using the plugin
  cat <<EOF
apiVersion: v1
kind: Config
current-context: plugin
clusters: [{name: fake, cluster: {server: "$K8S_SERVER", certificate-authority: $K8S_CA}}]
contexts: [{name: plugin, context: {cluster: fake, user: plugin}}]
users:
- name: plugin
  user:
    exec:
      apiVersion: client.authentication.k8s.io/$1
      command: ${3:-./cred.sh}
      args: [--cluster, fake]
      env:
      - {name: MODE, value: "$2"}
      - {name: API, value: client.authentication.k8s.io/$1}
      - {name: PLUGIN_DIR, value: "$SCRATCH/plugin"}
      - {name: GOOD, value: "$K8S_TOKEN"}
      - {name: STALE, value: "$K8S_EXPIRED_TOKEN"}
      installHint: "install cred.sh from the site wiki"
      provideClusterInfo: true
      interactiveMode: Never
EOF
}
for api in v1 v1beta1; do
  plugin_kubeconfig $api good > "$SCRATCH/plugin/$api.yaml"
done
plugin_kubeconfig v1 stale-first > "$SCRATCH/plugin/stale-first.yaml"
plugin_kubeconfig v1 stale > "$SCRATCH/plugin/stale.yaml"
plugin_kubeconfig v1 fail > "$SCRATCH/plugin/fail.yaml"
plugin_kubeconfig v1 good no-such-plugin > "$SCRATCH/plugin/missing.yaml"
P=$SCRATCH/plugin lua_checks exec-plugin <<'LUA'
local dir = os.getenv("P")
for _, api in ipairs({ "v1", "v1beta1" }) do
  local c = connect({ kubeconfig = dir .. "/" .. api .. ".yaml" })
  local a, err = c:list("namespaces")
  local b = c:get("namespaces", "hub-a")
  check(a ~= nil and b, "exec plugin " .. api .. ": its token works", err)
end
LUA
is "$(cat "$SCRATCH/plugin/count")" 2 "exec plugin: run once per connection, then cached until it expires"
info=$(cat "$SCRATCH/plugin/exec-info.json")
like "$info" '"kind":"ExecCredential"' "KUBERNETES_EXEC_INFO is an ExecCredential"
like "$info" '"interactive":false' "  saying runbook is not interactive"
like "$info" '"certificate-authority-data":"[A-Za-z0-9+/=]+"' "  with the cluster's CA (provideClusterInfo)"
like "$info" "\"server\":\"$K8S_SERVER\"" "  and its server"
echo 0 > "$SCRATCH/plugin/count"
P=$SCRATCH/plugin lua_checks exec-plugin-401 <<'LUA'
local dir = os.getenv("P")
local c = connect({ kubeconfig = dir .. "/stale-first.yaml" })
local ns, err = c:list("namespaces")
check(ns ~= nil, "a 401 re-runs the plugin once and the request goes through", err)
c = connect({ kubeconfig = dir .. "/stale.yaml" })
ns, err = c:list("namespaces")
check(ns == nil and err:find("HTTP 401") and err:find("exec plugin cred.sh"), "still 401 after the re-run: the error names the plugin", err)
c = connect({ kubeconfig = dir .. "/fail.yaml" })
ns, err = c:list("namespaces")
check(ns == nil and err:find("exited with status 1: error: you must log in first"), "a failing plugin: its status and last stderr line", err)
c = connect({ kubeconfig = dir .. "/missing.yaml" })
ns, err = c:list("namespaces")
check(ns == nil and err:find("not found: install cred.sh from the site wiki"), "a missing plugin: the installHint", err)
LUA
is "$(cat "$SCRATCH/plugin/count")" 5 "the plugin ran 2 times for the stale-first context, 2 for the stale one, once failing"

# ---------------------------------------------------------------- REST
export KUBECONFIG=$KUBECONFIG_FILE
before=$(mutations)
lua_checks rest-read <<'LUA'
local c = connect()
local pod = c:get("pods", "nope", { namespace = "hub-a" })
check(pod == false, "get: a missing object is false")
local ns = c:get("namespaces", "hub-a")
check(ns and ns.metadata.name == "hub-a", "get: a cluster-scoped object")
local all, meta = c:list("namespaces", { label_selector = "app.kubernetes.io/part-of in (jupyterhub, other)" })
check(all and #all == 2, "list with a set-based selector", all and #all or meta)
all, meta = c:list("namespaces", { limit = 2 })
local names = {}
for _, ns in ipairs(all or {}) do names[#names + 1] = ns.metadata.name end
check(#names >= 7 and meta.pages == math.ceil(#names / 2), "limit 2: every namespace, page by page (continue)", table.concat(names, ","))
local labs = assert(c:list("pods", { namespace = "nublado-alice", label_selector = "component notin (hub)" }))
check(#labs == 1 and labs[1].kind == "Pod" and labs[1].apiVersion == "v1", "listed items get their kind and apiVersion")
local hubs = assert(c:list("pods", { all_namespaces = true, label_selector = { component = "hub", app = "jupyterhub" } }))
check(#hubs == 3, "list with a selector given as a table", #hubs)
local one = assert(c:list("namespaces", { field_selector = "metadata.name=hub-b" }))
check(#one == 1 and one[1].metadata.name == "hub-b", "field selector")
local cr = assert(c:list("gafaelfawringresses.gafaelfawr.lsst.io/v1alpha1", { namespace = "nublado" }))
check(#cr == 1 and cr[1].kind == "GafaelfawrIngress", "custom resources by PLURAL.GROUP/VERSION")
local cr2 = c:get({ group = "gafaelfawr.lsst.io", version = "v1alpha1", resource = "gafaelfawringresses" }, "proxy", { namespace = "nublado" })
check(cr2 and cr2.metadata.name == "proxy", "custom resources by {group, version, resource}")
local bad, err = c:list("pods", { namespace = "hub-a", field_selector = "spec.bogus=1" })
check(bad == nil and err:find("field label not supported"), "a 400 gives the API's message", err)
local ok_raise = pcall(c.get, c, "frobnicators", "x")
check(not ok_raise, "an unknown resource name raises (misuse)")
LUA
is "$(mutations)" "$before" "reading sends no mutating request"

fake_k8s_control POST faults '{"method":"GET","path":"continue=","status":410,"count":1,"message":"The provided continue parameter is too old"}' >/dev/null
fake_k8s_control POST faults '{"method":"GET","path":"^/api/v1/namespaces(\\?|$)","status":429,"count":1}' >/dev/null
fake_k8s_control POST faults '{"method":"GET","path":"^/api/v1/namespaces/hub-a$","status":500,"retryAfter":1,"count":1}' >/dev/null
lua_checks rest-retries <<'LUA'
local c = connect()
local list, meta = c:list("namespaces", { limit = 2 })
check(list and #list >= 7, "a 410 Expired continue token: listed again whole", meta)
local ns, err = c:list("namespaces")
check(ns ~= nil, "a 429 (APF, plain text, Retry-After) is retried", err)
local one
one, err = c:get("namespaces", "hub-a")
check(one and one.metadata.name == "hub-a", "a 500 with Retry-After is retried", err)
LUA
is "$(fake_k8s_requests 'r["path"] == "/api/v1/namespaces" and "limit" not in (r.get("query") or {})' | wc -l)" 1 \
  "after the 410, one list without limit"

# Mutations are refused in read-only mode (the host's phase guard), allowed with --write.
lua_checks phase-guard <<'LUA'
local c = connect()
local ok1, err = pcall(c.delete, c, "pods", "x", { namespace = "hub-a" })
check(not ok1 and tostring(err):find("refused: HTTP DELETE"), "delete in read-only mode: refused by the host", err)
local ok2, err2 = pcall(c.exec, c, hub_pod(c, "hub-a"), { "rm", "-f", "/tmp/x" }, { namespace = "hub-a" })
check(not ok2 and tostring(err2):find("refused: exec of `rm %-f /tmp/x` in pods/hub%-a/"), "exec not declared read-only: refused by the host", err2)
local r = c:exec(hub_pod(c, "hub-a"), { "true" }, { namespace = "hub-a", readonly = true })
check(r and r.exit_code == 0, "exec declared read-only: allowed")
LUA
is "$(fake_k8s_requests 'r.get("exec") and r["exec"]["command"][0] == "rm"' | wc -l)" 0 "the refused exec never reached the server"

before=$(mutations)
lua_checks rest-write --write <<'LUA'
local c = connect()
local cm = { apiVersion = "v1", kind = "ConfigMap", metadata = { name = "rb-test", namespace = "hub-a" }, data = { a = "1" } }
local dry, err = c:create("configmaps", cm, { dry_run = true })
check(dry and dry.metadata.name == "rb-test", "create with dryRun=All answers the object", err)
check(c:get("configmaps", "rb-test", { namespace = "hub-a" }) == false, "  and creates nothing")
local made = c:create("configmaps", cm)
check(made and made.metadata.uid, "create")
local again
again, err = c:create("configmaps", cm)
check(again == nil and err:find("AlreadyExists"), "create again: AlreadyExists from the API's Status", err)
local _, _, status = c:create("configmaps", cm)
check(type(status) == "table" and status.code == 409 and status.reason == "AlreadyExists", "the Status object is the third value")
local p = c:patch("configmaps", "rb-test", { data = { b = "2" } }, { namespace = "hub-a" })
check(p and p.data.a == "1" and p.data.b == "2", "strategic merge patch")
p = c:patch("configmaps", "rb-test", { data = { a = json.null } }, { namespace = "hub-a", type = "merge" })
check(p and p.data.a == nil and p.data.b == "2", "merge patch (null removes)")
p = c:patch("configmaps", "rb-test", { { op = "add", path = "/data/c", value = "3" } }, { namespace = "hub-a", type = "json" })
check(p and p.data.c == "3", "JSON patch")
p, err = c:patch("configmaps", "rb-test", { { op = "test", path = "/data/c", value = "4" } }, { namespace = "hub-a", type = "json" })
check(p == nil and err:find("HTTP 422"), "a failed JSON patch test: 422 with the API's message", err)
p, err = c:patch("gafaelfawringresses.gafaelfawr.lsst.io/v1alpha1", "proxy", { config = { x = 1 } }, { namespace = "nublado" })
check(p == nil and err:find("HTTP 415"), "strategic merge patch on a custom resource: 415", err)
p = c:patch("configmaps", "rb-test", { data = { d = "4" } }, { namespace = "hub-a", dry_run = true })
check(p and p.data.d == "4" and c:get("configmaps", "rb-test", { namespace = "hub-a" }).data.d == nil, "patch with dry run changes nothing")
local gone, how = c:delete("configmaps", "rb-test", { namespace = "hub-a", dry_run = true })
check(gone and c:get("configmaps", "rb-test", { namespace = "hub-a" }), "delete with dry run keeps the object")
gone, how = c:delete("configmaps", "rb-test", { namespace = "hub-a" })
check(gone and how == "deleted", "delete", how)
gone, how = c:delete("configmaps", "rb-test", { namespace = "hub-a" })
check(gone == true and how == "already gone", "delete again: already gone", how)
-- a pod: graceful delete, then wait until it is gone
gone, how = c:delete("pods", "nb-alice", { namespace = "nublado-alice", grace_period = 1, propagation = "Background" })
check(gone and how == "deleted" and gone.metadata.deletionTimestamp, "delete a pod: it terminates gracefully")
local waited
waited, err = c:wait_gone("pods", "nb-alice", { namespace = "nublado-alice", timeout = 10 })
check(waited == true, "wait_gone: until the pod is gone", err)
-- namespaces: Terminating, a repeat delete is fine either way
gone, how = c:delete("namespaces", "nubladox-test")
check(gone and gone.status and gone.status.phase == "Terminating", "delete a namespace: Terminating")
gone, how = c:delete("namespaces", "nubladox-test")
check(gone and how == "deleted", "delete a Terminating namespace again: 200 (Kubernetes >= 1.17)", how)
waited, err = c:wait_gone("namespaces", "nubladox-test", { timeout = 10 })
check(waited == true, "wait_gone: the namespace is gone", err)
LUA
like "$(fake_k8s_requests 'r.get("dryRun")' | sed -n 1p)" '"mutating": false' "dry runs are logged as not mutating"
is "$(fake_k8s_requests 'r.get("verb") == "delete" and r["path"].endswith("/pods/nb-alice")' | grep -c '"status": 200')" 1 "one pod delete"
fake_k8s_control POST settings '{"legacyNamespaceConflict": true}' >/dev/null
lua_checks legacy-409 --write <<'LUA'
local c = connect()
local gone, how = c:delete("namespaces", "other-nublado-carol")
check(gone, "delete a namespace", how)
gone, how = c:delete("namespaces", "other-nublado-carol")
check(gone == true and how == "already terminating", "a pre-1.17 409 for a Terminating namespace counts as done", how)
LUA
fake_k8s_control POST settings '{"legacyNamespaceConflict": false}' >/dev/null

# rollout restart the way kubectl does it; wait until the new pod is Ready.
lua_checks rollout --write <<'LUA'
local c = connect()
local old = hub_pod(c, "hub-b")
local d, stamp = c:rollout_restart("hub", { namespace = "hub-b" })
check(d and d.spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"] == stamp, "rollout restart stamps restartedAt", stamp)
local pod, err = c:wait_rollout("hub", { namespace = "hub-b", timeout = 30 })
check(pod and pod.metadata.name ~= old and k8s.is_ready(pod), "wait_rollout returns the new Ready pod", err)
local left = assert(c:list("pods", { namespace = "hub-b", label_selector = "component=hub" }))
check(#left == 1 and left[1].metadata.name == pod.metadata.name, "and the old pod is gone")
d = c:rollout_restart("hub", { namespace = "hub-b", dry_run = true })
check(d and c:get("deployments", "hub", { namespace = "hub-b" }).metadata.generation == d.metadata.generation - 1,
  "rollout restart with dry run changes nothing")
LUA
like "$(fake_k8s_requests 'r.get("verb") == "patch" and r["path"].endswith("/deployments/hub")' | sed -n 1p)" \
  '"patchType": "application/strategic-merge-patch\+json"' "rollout restart is a strategic merge patch, as kubectl's"
fake_k8s_control POST pods/state '{"namespace":"hub-b","labelSelector":"component=hub","reason":"CrashLoopBackOff","message":"back-off"}' >/dev/null
lua_checks rollout-crash --write <<'LUA'
local c = connect()
assert(c:rollout_restart("hub", { namespace = "hub-b" }))
local pod, err = c:wait_rollout("hub", { namespace = "hub-b", timeout = 3 })
check(pod == nil and err:find("timed out after 3s") and err:find("CrashLoopBackOff"), "a new pod in CrashLoopBackOff: the timeout says so", err)
LUA
fake_k8s_control POST pods/state '{"namespace":"hub-b","labelSelector":"component=hub","clear":true}' >/dev/null

# ---------------------------------------------------------------- exec
head -c 5242880 /dev/urandom > "$D/volumes/hub-db-hub-a/blob.bin"
printf '\0\r\n\377binary\0' >> "$D/volumes/hub-db-hub-a/blob.bin"
sum=$(sha256sum < "$D/volumes/hub-db-hub-a/blob.bin" | cut -d' ' -f1)
SUM=$sum OUT=$SCRATCH/out lua_checks exec <<'LUA'
local c = connect()
local pod = hub_pod(c, "hub-a")
local o = { namespace = "hub-a", container = "hub", readonly = true }
local want = os.getenv("SUM")
local copy, err = c:copy_from(pod, "/srv/jupyterhub/blob.bin", os.getenv("OUT") .. "/dir/blob.bin", { namespace = "hub-a", make_dirs = true })
check(copy and copy.sha256 == want and copy.size == 5242891, "5 MB binary file out through exec, streamed to a file: identical", err)
local n, hashed = 0, {}
local r = c:exec(pod, { "cat", "/srv/jupyterhub/blob.bin" }, { namespace = "hub-a", readonly = true,
  on_stdout = function(chunk) n = n + #chunk; hashed[#hashed + 1] = #chunk end })
check(r and r.exit_code == 0 and n == 5242891, "the same through a callback, in pieces", n)
local biggest = 0
for _, k in ipairs(hashed) do if k > biggest then biggest = k end end
check(biggest <= 256 * 1024, "  no piece larger than the receive buffer (memory stays bounded)", biggest)
r = c:exec(pod, { "cat", "/srv/jupyterhub/blob.bin" }, o)
check(r and #r.stdout == 5242891 and r.stdout:sub(-11) == "\0\r\n\255binary\0", "and collected in memory, binary-safe")
local again
again, err = c:copy_from(pod, "/srv/jupyterhub/blob.bin", os.getenv("OUT") .. "/dir/blob.bin", { namespace = "hub-a" })
check(again == nil and err:find("File exists"), "an existing local file is never overwritten", err)
r = c:exec(pod, { "sh", "-c", "echo out; echo err >&2; exit 7" }, o)
check(r and r.exit_code == 7 and r.stdout == "out\n" and r.stderr == "err\n", "exit code, stdout and stderr", r and r.exit_code)
r, err = c:exec(pod, { "no-such-command" }, o)
check(r == nil and err:find("executable file not found"), "a missing executable: the runtime's message", err)
r, err = c:exec(pod, { "true" }, { namespace = "hub-a", container = "nope", readonly = true })
check(r == nil and err:find("container nope is not valid"), "a wrong container: the API's message (400)", err)
r, err = c:exec("nope", { "true" }, o)
check(r == nil and err:find('pods "nope" not found'), "a missing pod: 404 NotFound", err)
local v4 = c:exec(pod, { "sh", "-c", "echo four; exit 3" }, { namespace = "hub-a", readonly = true, protocols = { "v4.channel.k8s.io" } })
check(v4 and v4.protocol == "v4.channel.k8s.io" and v4.stdout == "four\n" and v4.exit_code == 3, "v4.channel.k8s.io: output and exit code",
  v4 and v4.protocol)
r, err = c:exec(pod, { "cat" }, { namespace = "hub-a", readonly = true, stdin = "x", protocols = { "v4.channel.k8s.io" } })
check(r == nil and err:find("needs v5.channel.k8s.io"), "v4 cannot end stdin: refused with a reason", err)
local tail = c:exec(pod, { "sh", "-c", "sleep 1; echo late" }, o)
check(tail and tail.stdout == "late\n", "output after a quiet second arrives")
LUA

SUM=$sum OUT=$SCRATCH/out lua_checks exec-stdin --write <<'LUA'
local c = connect()
local pod = hub_pod(c, "hub-a")
local copy, err = c:copy_to(pod, os.getenv("OUT") .. "/dir/blob.bin", "/srv/jupyterhub/blob-back.bin", { namespace = "hub-a" })
check(copy and copy.sha256 == os.getenv("SUM"), "5 MB binary file into the pod through stdin: identical (pod's sha256sum)", err)
LUA
is "$(sha256sum < "$D/volumes/hub-db-hub-a/blob-back.bin" | cut -d' ' -f1)" "$sum" "the file in the pod's volume is byte-identical"

fake_k8s_control POST exec-faults '{"command":"^cat -- /srv/jupyterhub/blob.bin","cutAfterBytes":1000000,"count":1}' >/dev/null
OUT=$SCRATCH/out lua_checks exec-cut <<'LUA'
local c = connect()
local copy, err, detail = c:copy_from(hub_pod(c, "hub-a"), "/srv/jupyterhub/blob.bin", os.getenv("OUT") .. "/cut.bin", { namespace = "hub-a" })
check(copy == nil and err:find("cut after 1000000 bytes") and err:find("partial file was removed"), "a stream cut mid-way: a clear failure", err)
check(detail and detail.kind == "cut", "  with kind = cut")
local f = k8s.file_sha256(os.getenv("OUT") .. "/cut.bin")
check(f == nil, "  and nothing is left under the file's name")
LUA
is "$(ls "$SCRATCH/out" | grep -c '^cut\.bin')" 0 "  nor a partial file beside it"
is "$(ls "$SCRATCH/out/dir")" "blob.bin" "a finished copy: only the file, under its name (it was streamed under another and renamed once verified)"

KC=$KC lua_checks exec-auth <<'LUA'
local kc = os.getenv("KC")
local c = connect({ kubeconfig = kc, context = "readonly" })
local r, err = c:exec(hub_pod(c, "hub-a"), { "true" }, { namespace = "hub-a", readonly = true })
check(r == nil and err:find("HTTP 403") and err:find("pods/exec") and err:find("RBAC"), "exec as a read-only user: 403 (create on pods/exec)", err)
c = connect({ kubeconfig = kc, context = "expired" })
r, err = c:exec("hub", { "true" }, { namespace = "hub-a", readonly = true })
check(r == nil and err:find("HTTP 401") and err:find("did not accept a bearer token"), "exec with an expired token: 401", err)
local ns
ns, err = c:list("namespaces")
check(ns == nil and err:find("Unauthorized") and err:find('context "expired"'), "REST with an expired token: 401 naming the context", err)
LUA
KC=$KC lua_checks rbac --write <<'LUA'
local c = connect({ kubeconfig = os.getenv("KC"), context = "readonly" })
local ok1, err = c:delete("secrets", "nublado-secret", { namespace = "nublado" })
check(ok1 == nil and err:find('cannot delete resource "secrets"') and err:find('user "readonly"'), "403 from RBAC: the API's message and the user", err)
LUA

# ---------------------------------------------------------------- secrets never printed
for secret in "$K8S_TOKEN" "$K8S_EXPIRED_TOKEN" "$K8S_READONLY_TOKEN" "$(cat "$D/tokens/token-file")"; do
  if grep -qF -- "$secret" "$ALL_OUTPUT"; then ok 1 "a token appeared in the output"; else ok 0 "no token appears in any output"; fi
done
key_line=$(grep -v -- '-----' "$D/pki/admin.key" | head -1)
if grep -qF -- "$key_line" "$ALL_OUTPUT"; then ok 1 "the client key appeared"; else ok 0 "the client key never appears"; fi

# ---------------------------------------------------------------- throughput, for the record
head -c 104857600 /dev/zero > "$D/volumes/hub-db-hub-b/zero.bin"
start=$(date +%s.%N)
OUT=$SCRATCH/out lua_checks throughput <<'LUA'
local c = connect()
local r = c:exec(hub_pod(c, "hub-b"), { "cat", "/srv/jupyterhub/zero.bin" }, { namespace = "hub-b", readonly = true,
  output = os.getenv("OUT") .. "/zero.bin" })
check(r and r.size == 104857600, "100 MiB through exec to a file")
LUA
end=$(date +%s.%N)
diag "$(awk -v s="$start" -v e="$end" 'BEGIN { printf "exec throughput: 100 MiB in %.2f s (%.0f MiB/s), process start included", e - s, 100 / (e - s) }')"

# Paging across namespaces whose names sort differently as strings and as (namespace, name) pairs
# ("nublado-alice/x" < "nublado/y"): every pod exactly once, as with one unpaged list.
cat > "$SCRATCH/paging.lua" <<'LUA'
local k8s = require "runbook.k8s"
local c = assert(k8s.connect{ kubeconfig = os.getenv("KUBECONFIG_FILE") })
local paged = assert(c:list("pods", { all_namespaces = true, limit = 1 }))
local whole = assert(c:list("pods", { all_namespaces = true }))
local seen = {}
for _, p in ipairs(paged) do seen[p.metadata.namespace .. "/" .. p.metadata.name] = true end
local n = 0
for _ in pairs(seen) do n = n + 1 end
print(#paged, n, #whole)
LUA
run_rb exec "$SCRATCH/paging.lua"
like "$ERR" "^([0-9]+)	\1	\1$" "paging one pod at a time across namespaces lists each pod once, like one unpaged list"

# Waits show what is awaited, its state as it changes and the time against the timeout (issue 17):
# a rollout whose new pod takes 3 s to start.
fake_k8s_control POST settings '{"podStartSeconds": 3}' >/dev/null
cat > "$SCRATCH/rollout.lua" <<'LUA'
local k8s = require "runbook.k8s"
local c = assert(k8s.connect{ kubeconfig = os.getenv("KUBECONFIG_FILE") })
assert(c:rollout_restart("hub", { namespace = "hub-b" }))
local pod = assert(c:wait_rollout("hub", { namespace = "hub-b", timeout = 60 }))
print("ready " .. pod.metadata.name)
LUA
run_rb exec --write "$SCRATCH/rollout.lua"
is "$RC" 0 "a rollout waited for"
like "$ERR" "waiting for deployment hub-b/hub to roll out: .*Pending.* \([1-9][0-9]*s of 60s\)" \
  "  not on a terminal: a line with what is awaited, the pods' state, the time against the timeout"
is "$(printf '%s\n' "$ERR" | grep -c 'waiting for deployment hub-b/hub')" \
   "$(printf '%s\n' "$ERR" | grep 'waiting for deployment hub-b/hub' | sed 's/ ([0-9]*s of 60s)$//' | uniq | wc -l)" \
  "  a new line only when the state changes"
out=$("$PY" "$TOP/tests/lib/pty_run.py" "" "$RUNBOOK" exec --write "$SCRATCH/rollout.lua" 2>&1)
rewrites=$(printf '%s' "$out" | grep -o $'\r\e\\[Kwaiting for deployment hub-b/hub to roll out: [^\r]*([1-9][0-9]*s of 60s)' | wc -l)
ok $([ "$rewrites" -ge 2 ]; echo $?) "  on a terminal: one line rewritten as the seconds pass ($rewrites times)"
like "$out" $'\r\e\\[Kready hub-' "  and cleared when the wait is over"
fake_k8s_control POST settings '{"podStartSeconds": 0.3}' >/dev/null

done_testing
