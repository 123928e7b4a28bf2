#!/usr/bin/env bash
# The wrong scheme or the wrong path fails at once with a message that says what to do:
# https:// to a plain-HTTP port (a server that answers the handshake with HTTP, and one -- the hub
# itself -- that waits for a request line and never answers it: that took 57 s of retries), http://
# to a TLS port, and a hub or GitLab URL that is not the API (the server redirects).
. "$(dirname "$0")/lib/tap.sh"
. "$TOP/tests/lib/hub.sh"
. "$TOP/tests/lib/testservers.sh"
command -v jupyterhub >/dev/null || skip_all "jupyterhub is not installed"
command -v openssl >/dev/null || skip_all "openssl is not installed"
export XDG_STATE_HOME="$SCRATCH/state"
unset JUPYTERHUB_API_URL JUPYTERHUB_API_TOKEN GITLAB_URL GITLAB_TOKEN http_proxy https_proxy HTTP_PROXY HTTPS_PROXY

# timed VAR: run_rb with its arguments, and the seconds it took (with a fraction) in VAR.
timed() {
  local var=$1; shift
  local start end
  start=$(date +%s.%N)
  run_rb "$@"
  end=$(date +%s.%N)
  printf -v "$var" '%s' "$("$PY" -c 'import sys; print("%.1f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$start" "$end")"
}
under() { "$PY" -c 'import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)' "$1" "$2"; }

hub_start "$SCRATCH/hub" >/dev/null 2>&1 || { ok 1 "hub starts"; done_testing; exit 1; }
HUB_API=$JUPYTERHUB_API_URL HUB_TOKEN=$JUPYTERHUB_TOKEN_FILE
unset JUPYTERHUB_API_URL JUPYTERHUB_TOKEN_FILE
HUB_HOSTPORT=${HUB_API#http://}; HUB_HOSTPORT=${HUB_HOSTPORT%%/*}

# --- https:// to the hub's plain-HTTP port: the hub waits for a request line, the handshake for an answer
timed took plan prune-dormant -p hub="https://$HUB_HOSTPORT/" -p token_file="$HUB_TOKEN"
is "$RC" 1 "https:// to the hub's plain-HTTP port: exit 1"
like "$ERR" "the server at 127\.0\.0\.1:[0-9]+ did not answer the TLS handshake but answers plain HTTP: use http:// \(or the right port\)" \
  "  says the port speaks plain HTTP, and what to do"
ok $(under "$took" 5; echo $?) "  at once (${took}s, not a minute of retried handshakes)"
unlike "$ERR" "traceback" "  no traceback"

# --- https:// to a plain-HTTP server that answers the TLS handshake with an HTTP error
mkdir -p "$SCRATCH/www"
PLAIN_PORT=$(free_port)
"$PY" -m http.server --bind 127.0.0.1 --directory "$SCRATCH/www" "$PLAIN_PORT" >/dev/null 2>&1 &
on_exit "kill $!"
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PLAIN_PORT/" && break; sleep 0.05; done
timed took plan prune-dormant -p hub="https://127.0.0.1:$PLAIN_PORT/" -p token_file="$HUB_TOKEN"
is "$RC" 1 "https:// to a plain-HTTP server: exit 1"
like "$ERR" "the server at 127\.0\.0\.1:$PLAIN_PORT answered plain HTTP to a TLS handshake: use http:// \(or the right port\)" \
  "  says it answered plain HTTP to the handshake"
unlike "$ERR" "TLS verification failed" "  no advice about CA certificates, which would not help"
ok $(under "$took" 5; echo $?) "  at once (${took}s)"

# --- http:// to a TLS port (a TLS proxy in front of the hub)
make_ca "$SCRATCH/tls"
fault_start "$HUB_API" --tls-cert "$SCRATCH/tls/server.pem" --tls-key "$SCRATCH/tls/server.key"
TLS_HOSTPORT=${FAULT_URL#https://}
timed took plan prune-dormant -p hub="http://$TLS_HOSTPORT/" -p token_file="$HUB_TOKEN"
is "$RC" 1 "http:// to a TLS port: exit 1"
like "$ERR" "the server at $TLS_HOSTPORT speaks TLS, and did not answer a plain HTTP request: use https:// \(or the right port\)" \
  "  says the port speaks TLS, and what to do"
ok $(under "$took" 5; echo $?) "  at once (${took}s, not retried as a reset connection)"
run_rb plan prune-dormant -p hub="https://$TLS_HOSTPORT/" -p token_file="$HUB_TOKEN" -p ca_file="$SCRATCH/tls/ca.pem"
is "$RC" 0 "  the same port with https:// and its CA works"

# --- a hub URL that is not the hub's: the hub redirects /x/hub/api/ to /hub/x/hub/api/
run_rb plan prune-dormant -p hub="http://$HUB_HOSTPORT/x/" -p token_file="$HUB_TOKEN"
is "$RC" 1 "a wrong hub path: exit 1"
like "$ERR" "the server redirected GET /x/hub/api/ to http://$HUB_HOSTPORT/hub/x/hub/api/: the URL is probably not the hub's base URL; try -p hub=http://$HUB_HOSTPORT/" \
  "  says where the redirect leads and which URL to try"
unlike "$ERR" "HTTP 302$" "  not a bare status"
run_rb plan prune-dormant -p hub="http://$HUB_HOSTPORT/" -p token_file="$HUB_TOKEN"
is "$RC" 0 "  the suggested URL works"

# a redirect to another server (a login page in front of the hub)
fault_start "$HUB_API"
fault_rules '[{"path": "^/hub/api", "status": 302, "headers": {"Location": "https://sso.example.org/login?next=%2Fhub%2F"}}]'
run_rb plan prune-dormant -p hub="$FAULT_URL" -p token_file="$HUB_TOKEN"
is "$RC" 1 "a redirect to another server: exit 1"
like "$ERR" "redirected GET /hub/api/ to https://sso\.example\.org/login\?next=%2Fhub%2F: it leads to another server" \
  "  says where it leads, and that it is another server"

# --- GitLab's client: a wrong relative URL root is sent to the sign-in page
echo "glpat-not-a-real-token-0000" > "$SCRATCH/gitlab.token"; chmod 600 "$SCRATCH/gitlab.token"
fault_rules '[{"path": "^/wrong/", "status": 302, "headers": {"Location": "/users/sign_in"}}]'
run_rb plan deactivate-dormant -p gitlab="$FAULT_URL/wrong" -p token_file="$SCRATCH/gitlab.token"
is "$RC" 1 "GitLab at a wrong path: exit 1"
like "$ERR" "gitlab 127\.0\.0\.1:[0-9]+: the server redirected GET /wrong/api/v4/version to $FAULT_URL/users/sign_in: the URL is probably not GitLab's base URL; try -p gitlab=$FAULT_URL" \
  "  says where the redirect leads and which URL to try"
run_rb plan deactivate-dormant -p gitlab="https://127.0.0.1:$PLAIN_PORT" -p token_file="$SCRATCH/gitlab.token"
like "$ERR" "gitlab 127\.0\.0\.1:$PLAIN_PORT: .*answered plain HTTP to a TLS handshake: use http://" \
  "GitLab's client says so too for https:// to a plain-HTTP port"
done_testing
