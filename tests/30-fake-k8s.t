#!/bin/bash
# The fake Kubernetes API server (tests/fake-k8s) proven against real clients:
# Debian's python3-kubernetes and a raw WebSocket client (tests/fake-k8s/client_checks.py),
# curl and openssl s_client here, and kubectl when the machine has one.
. "$(dirname "$0")/lib/tap.sh"
. "$(dirname "$0")/lib/fake-k8s.sh"

"$PY" -c 'import kubernetes' 2>/dev/null || skip_all "Debian's python3-kubernetes is not installed"
for tool in openssl curl bwrap; do
  command -v "$tool" >/dev/null || skip_all "$tool is not installed"
done

"$PY" "$TOP/tests/fake-k8s/make-seed.py" "$SCRATCH/seed" >/dev/null
fake_k8s_start "$SCRATCH/k8s" "$SCRATCH/seed/seed.json"
ok $? "fake starts with the standard seed and writes DIR/ready" || { done_testing; exit 1; }
D=$FAKE_K8S_DIR

# ---------------------------------------------------------------- files it writes
check "kubeconfig, service account mount and env are written" \
  test -s "$D/kubeconfig" -a -s "$D/serviceaccount/token" -a -s "$D/serviceaccount/ca.crt" \
       -a -s "$D/serviceaccount/namespace" -a -s "$D/pki/admin.key"
is "$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT" "127.0.0.1:$K8S_PORT" "env: KUBERNETES_SERVICE_HOST/PORT"
like "$(cat "$D/kubeconfig")" 'current-context: token' "kubeconfig: current context is token"
like "$(grep -c '^- name:' "$D/kubeconfig")" '^1[0-9]$' "kubeconfig: clusters, users and contexts listed"
check "server certificate is for 127.0.0.1 and localhost, signed by the CA" \
  sh -c "openssl verify -CAfile '$D/pki/ca.crt' '$D/pki/server.crt' && openssl x509 -in '$D/pki/server.crt' -noout -ext subjectAltName | grep -q 'IP Address:127.0.0.1, DNS:localhost'"
like "$(openssl x509 -in "$D/pki/admin.crt" -noout -subject)" 'O ?= ?system:masters, CN ?= ?admin-user' \
  "client certificate: CN=admin-user, O=system:masters"

# ---------------------------------------------------------------- TLS and raw HTTP
tls() { openssl s_client -connect "127.0.0.1:$K8S_PORT" -CAfile "$K8S_CA" "$@" </dev/null 2>&1; }
out=$(tls -tls1_2)
like "$out" 'New, TLSv1\.2, Cipher is [A-Z]' "openssl: a TLS 1.2 handshake succeeds"
like "$out" 'Verify return code: 0 \(ok\)' "openssl: the server certificate verifies against the CA"
like "$(tls -tls1_1)" 'alert protocol version' "openssl: TLS 1.1 is refused (protocol_version alert)"

body=$(curl -sS --cacert "$K8S_CA" "$K8S_SERVER/api/v1/namespaces")
is "$body" '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}' \
  "curl without credentials: the 401 Status, byte for byte"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$K8S_CA" -H "Authorization: Bearer $K8S_EXPIRED_TOKEN" "$K8S_SERVER/api")
is "$code" 401 "curl with the expired token: 401"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$K8S_CA" --cert "$D/pki/admin.crt" --key "$D/pki/admin.key" "$K8S_SERVER/api/v1/namespaces/nublado/secrets/nublado-secret")
is "$code" 200 "curl with the client certificate: 200"
like "$(curl -sS --cacert "$K8S_CA" -H "Authorization: Bearer $K8S_TOKEN" "$K8S_SERVER/api/v1/namespaces/nublado/pods/nope")" \
  '"reason":"NotFound".*"details":\{"name":"nope","kind":"pods"\}' "curl: 404 NotFound Status with details"

fake_k8s_control POST faults '{"method":"GET","path":"^/api/v1/namespaces$","status":503,"count":1}' >/dev/null
ok $? "control API: a 503 fault is accepted"
like "$(curl -sS -i --cacert "$K8S_CA" -H "Authorization: Bearer $K8S_TOKEN" "$K8S_SERVER/api/v1/namespaces")" \
  '^HTTP/1.1 503' "the fault is served once"
like "$(curl -sS -i --cacert "$K8S_CA" -H "Authorization: Bearer $K8S_TOKEN" "$K8S_SERVER/api/v1/namespaces")" \
  '^HTTP/1.1 200' "and the next request is normal"
unlike "$(cat "$D/requests.log")" '"/_fake/' "control API calls are not in requests.log"

# ---------------------------------------------------------------- real clients
while IFS=$'\t' read -r verdict description detail; do
  case $verdict in
    ok) ok 0 "$description" ;;
    "not ok") ok 1 "$description"; diag "$detail" ;;
    "#"*) diag "${verdict#\# }" ;;
  esac
done < <(timeout 120 "$PY" "$TOP/tests/fake-k8s/client_checks.py" "$D" 2>&1)

# ---------------------------------------------------------------- SelfSubjectAccessReview
# "may I?" answered by the fake's own authorizer: readonly-user may get/list/watch, the others are
# admins. Asked with python3-kubernetes' AuthorizationV1Api, and with runbook's runbook.k8s.access.
"$PY" - "$KUBECONFIG_FILE" > "$SCRATCH/ssar.out" 2>&1 <<'PY'
import sys
from kubernetes import client, config
from kubernetes.client.rest import ApiException
def ask(context, verb, resource, namespace=None):
    api = client.AuthorizationV1Api(config.new_client_from_config(config_file=sys.argv[1], context=context))
    attrs = client.V1ResourceAttributes(verb=verb, resource=resource, group="", namespace=namespace)
    review = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=attrs))
    return api.create_self_subject_access_review(review).status.allowed
print("readonly", ask("readonly", "get", "persistentvolumeclaims", "hub-a"), ask("readonly", "patch", "persistentvolumes"),
      ask("readonly", "list", "persistentvolumes"), ask("readonly", "delete", "pods", "hub-a"))
print("admin", ask("token", "patch", "persistentvolumes"), ask("cert-files", "delete", "pods", "hub-a"))
try:
    api = client.AuthorizationV1Api(config.new_client_from_config(config_file=sys.argv[1], context="token"))
    api.create_self_subject_access_review(client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec()))
    print("empty accepted")
except ApiException as e:
    print("empty", e.status)
PY
is "$(grep ^readonly "$SCRATCH/ssar.out")" "readonly True False True False" \
  "SelfSubjectAccessReview (python3-kubernetes): readonly-user may get and list, not patch or delete"
is "$(grep ^admin "$SCRATCH/ssar.out")" "admin True True" "  the admin contexts may patch and delete"
is "$(grep ^empty "$SCRATCH/ssar.out")" "empty 422" "  a review without attributes: 422 Invalid"
ssar_log=$(fake_k8s_requests 'r["path"].endswith("/selfsubjectaccessreviews")')
like "$ssar_log" '"status": ?201' "  answered 201 Created, as the API server does"
unlike "$ssar_log" '"mutating": ?true' "  and never logged as mutating: it stores nothing"
cat > "$SCRATCH/can_i.lua" <<'LUA'
local k8s = require "runbook.k8s"
local access = require "runbook.k8s.access"
local client = assert(k8s.connect{ kubeconfig = arg[1], context = arg[2] })
local allowed, reason = access.can_i(client, "patch", "persistentvolumes")
local denied = assert(access.missing(client, { { verb = "get", resource = "persistentvolumeclaims", namespace = "hub-a" },
                                               { verb = "patch", resource = "persistentvolumes" } }))
print(arg[2], allowed, #denied, denied[1] and access.describe(denied[1]) or "-", reason ~= nil)
LUA
is "$("$RUNBOOK" exec "$SCRATCH/can_i.lua" "$KUBECONFIG_FILE" readonly 2>&1)" \
  "$(printf 'readonly\tfalse\t1\tpatch persistentvolumes (cluster-wide)\ttrue')" \
  "runbook.k8s.access: readonly may not patch persistentvolumes, and missing() names it"
is "$("$RUNBOOK" exec "$SCRATCH/can_i.lua" "$KUBECONFIG_FILE" token 2>&1)" "$(printf 'token\ttrue\t0\t-\ttrue')" \
  "runbook.k8s.access: the token context may"

if command -v kubectl >/dev/null && kubectl version --client >/dev/null 2>&1; then
  export KUBECONFIG=$KUBECONFIG_FILE
  like "$(kubectl get pods -A -l component=hub,app=jupyterhub -o name 2>&1)" 'pod/hub-' "kubectl: get pods by label"
  kubectl rollout restart deployment/hub -n hub-b >/dev/null 2>&1 &&
    kubectl rollout status deployment/hub -n hub-b --timeout=20s >/dev/null 2>&1
  ok $? "kubectl: rollout restart, then rollout status (watch) sees it finish"
  # (a pod that an earlier step replaced may still be starting on a busy machine: a few tries)
  for i in $(seq 20); do
    pod=$(kubectl get pods -n nublado -l component=hub -o name)
    out=$(KUBECTL_REMOTE_COMMAND_WEBSOCKETS=true kubectl exec -n nublado "$pod" -- cat /srv/jupyterhub/motd.txt 2>&1)
    [ "$out" = "hello from /srv/jupyterhub" ] && break
    sleep 0.5
  done
  is "$out" "hello from /srv/jupyterhub" "kubectl: exec over WebSocket"
  KUBECTL_REMOTE_COMMAND_WEBSOCKETS=true kubectl exec -n nublado "$pod" -- sh -c 'exit 7' >/dev/null 2>&1
  is "$?" 7 "kubectl: exec exit code"
  kubectl delete namespace other-nublado-carol --timeout=20s >/dev/null 2>&1
  ok $? "kubectl: delete namespace waits (watch) until it is gone"
  like "$(fake_k8s_requests 'r.get("exec")' | tail -1)" '"protocol": "v5.channel.k8s.io"' "kubectl negotiated v5.channel.k8s.io"
else
  diag "kubectl not found: kubectl checks skipped"
fi

# ---------------------------------------------------------------- shutdown
kill -TERM "$FAKE_K8S_PID"; wait "$FAKE_K8S_PID"
is "$?" 0 "SIGTERM: the fake exits with status 0"
check "and removes DIR/ready" test ! -e "$D/ready"

done_testing
