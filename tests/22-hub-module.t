#!/usr/bin/env bash
# The JupyterHub module on its own, through `runbook exec` scripts against a real JupyterHub 3.0:
# every function, odd names, retries and their limits, timeouts, TLS verification, old hubs.
. "$(dirname "$0")/lib/tap.sh"
. "$TOP/tests/lib/hub.sh"
. "$TOP/tests/lib/testservers.sh"
command -v jupyterhub >/dev/null || skip_all "jupyterhub is not installed"
H="$SCRATCH/hub"
hub_start "$H" >/dev/null 2>&1 || { ok 1 "hub starts"; done_testing; exit 1; }
hub_seed "$H" --generate u:240:-10d --user 'ana.maria@example.edu,user+tag,josé,runner,member' \
  --group staff=member,josé --running runner >/dev/null 2>&1
ok $? "hub seeded"
export JUPYTERHUB_API_TOKEN=$(cat "$JUPYTERHUB_TOKEN_FILE")
HUB_ROOT=${JUPYTERHUB_API_URL%/hub/api}

lua() {  # lua [--write] 'CODE': runs CODE with `hub` and `c` (a client for $URL) in scope
  local write=
  [ "$1" = --write ] && { write=--write; shift; }
  printf 'local hub = require "runbook.hub"\nlocal c = assert(hub.connect{ url = os.getenv("URL"), ca_file = os.getenv("CA"), insecure = os.getenv("INSECURE") == "1", timeout = tonumber(os.getenv("TIMEOUT") or "30") })\n%s\n' "$1" > "$SCRATCH/script.lua"
  run_rb exec $write "$SCRATCH/script.lua"
}

# --- URLs: the public URL, /hub, /hub/api and a trailing slash all reach the API ---
for url in "$HUB_ROOT" "$HUB_ROOT/hub" "$HUB_ROOT/hub/api" "$HUB_ROOT/hub/api/"; do
  URL=$url lua 'print(c:info().version, c.api_url)'
  like "$ERR" "^3\.0\.0	http://127\.0\.0\.1:[0-9]+/hub/api$" "connect to $url"
done
export URL=$HUB_ROOT

# --- listing, counting, reading ---
lua 'local n = 0 for u in c:users() do n = n + 1 end print(n, c:count(), c.listed_total)'
is "$ERR" "245	245	245" "users() walks every page (245 users); count() agrees"
lua 'local n = 0 for u in c:users{ page_size = 7 } do n = n + 1 end print(n)'
is "$ERR" "245" "pages of 7 give the same users"
lua 'local n = 0 for u in c:users{ name_filter = "user" } do n = n + 1 end print(n)'
is "$ERR" "1" "name_filter is passed to the hub (a substring match there: user+tag)"
lua 'local n = 0 for u in c:users{ state = "active" } do n = n + 1 end print(n)'
is "$ERR" "1" "state=active lists the user with a running server"
for name in 'ana.maria@example.edu' 'user+tag' 'josé'; do
  NAME=$name lua 'local u = c:user(os.getenv("NAME")) print(u and u.name)'
  is "$ERR" "$name" "user() reads '$name' (escaped in the URL)"
done
lua 'print(c:user("nobody-at-all"))'
is "$ERR" "false" "user() of an unknown name is false"
lua 'local u = c:user("runner") print(hub.server_state(u), hub.last_activity(u) ~= nil)'
is "$ERR" "server running	true" "server_state() sees the running server"
lua 'local u = c:user("u0000") print(hub.server_state(u), math.floor((os.time() - hub.last_activity(u)) / 86400))'
is "$ERR" "nil	10" "an idle user: no server, active 10 days ago"
lua 'print(c:groups())'
like "$ERR" "^nil	.*GET /groups: HTTP 403: .*requires any of \[list:groups\]; the token is not valid for this hub, or lacks that scope$" "groups() with a token without list:groups: the hub's reason"
JUPYTERHUB_API_TOKEN=$(cat "$H/harness-token") lua 'local gs = assert(c:groups()) local g = assert(c:group("staff")) table.sort(g.users) print(#gs, gs[1].name, table.concat(g.users, ","), c:group("nope"))'
is "$ERR" "1	staff	josé,member	false" "groups() and group() with a token that may read groups"

# --- changes: only with --write ---
lua 'print(c:delete_user("u0001"))'
is "$RC" 1 "delete_user in read-only exec is refused"; like "$ERR" "refused: HTTP DELETE" "  by the host"
lua --write 'print(c:create_users({ "made.a", "made.b" }) and "created") print(#assert(c:create_users({ "made.a" })))'
is "$ERR" "created
0" "create_users(); creating existing users again is nothing to create"
lua --write 'print(c:set_activity("made.a", "2020-01-01T00:00:00Z"), c:user("made.a").last_activity)'
like "$ERR" "^true	2020-01-01T00:00:00" "set_activity()"
lua --write 'print(c:delete_user("made.b")) print(c:delete_user("made.b"))'
is "$ERR" "true	deleted
true	already gone" "delete_user(): deleted, then already gone"
lua --write 'print(c:stop_server("runner"))'
like "$ERR" "^true	(stopped|stopping)" "stop_server()"

# --- failures come back as nil, message ---
JUPYTERHUB_API_TOKEN=wrong-token lua 'print(c:user("u0000"))'
like "$ERR" "^nil	hub 127\.0\.0\.1:[0-9]+: GET /users/u0000: HTTP 403.*token is not valid for this hub, or lacks that scope" "a refused token: nil and a message with the status"
unlike "$ERR" "wrong-token" "  the token is not in it"
printf 'tok\n' > "$SCRATCH/token"; chmod 644 "$SCRATCH/token"
printf 'print(require("runbook.hub").connect{ url = "%s", token_file = "%s" } ~= nil)' "$HUB_ROOT" "$SCRATCH/token" > "$SCRATCH/t.lua"
run_rb exec "$SCRATCH/t.lua"
like "$ERR" "warning: token file .* is readable by other users" "a token file others can read is warned about"
: > "$SCRATCH/empty-token"
printf 'print(require("runbook.hub").connect{ url = "%s", token_file = "%s" })' "$HUB_ROOT" "$SCRATCH/empty-token" > "$SCRATCH/t.lua"
run_rb exec "$SCRATCH/t.lua"
like "$ERR" "token file .* is empty" "an empty token file is an error"

# --- retries through the fault proxy ---
fault_start "$HUB_ROOT"
URL=$FAULT_URL
fault_rules '[{"method": "GET", "path": "/users/u0002$", "status": 429, "headers": {"Retry-After": "1"}, "count": 2}]'
start=$(date +%s.%N)
URL=$FAULT_URL lua 'print(c:user("u0002").name)'
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
is "$ERR" "u0002" "429 with Retry-After is retried until it succeeds"
ok $(echo "$elapsed >= 1.5" | bc | grep -q 1; echo $?) "  after waiting as asked (${elapsed}s for two Retry-After: 1)"
is "$(grep -c 'GET /hub/api/users/u0002 ' "$FAULT_DIR/requests.log")" 3 "  three requests reached the proxy"
fault_rules '[{"method": "DELETE", "path": "/users/u0003$", "status": 503, "count": 1}]'
URL=$FAULT_URL lua --write 'print(c:delete_user("u0003"))'
is "$ERR" "true	deleted" "a 503 on DELETE (safe to repeat) is retried"
is "$(grep -c 'DELETE /hub/api/users/u0003 ' "$FAULT_DIR/requests.log")" 2 "  the proxy saw the 503 and the retry"
fault_rules '[{"method": "GET", "path": "/users/u0004$", "status": 500, "count": 1}]'
URL=$FAULT_URL lua 'print(c:user("u0004"))'
like "$ERR" "^nil	.*HTTP 500" "a 500 is not retried: it is reported"
is "$(grep -c 'GET /hub/api/users/u0004 ' "$FAULT_DIR/requests.log")" 1 "  with one request"
fault_rules '[{"method": "POST", "path": "/users$", "status": 502, "count": 1}]'
URL=$FAULT_URL lua --write 'print(c:create_users({ "made.c" }))'
like "$ERR" "^nil	.*HTTP 502" "a POST answered 502 is not repeated (it may have been processed)"
is "$(grep -c 'POST /hub/api/users ' "$FAULT_DIR/requests.log")" 1 "  one request"
fault_rules '[{"method": "GET", "path": "/hub/api/users", "status": 200, "body": "[]"}]'
URL=$FAULT_URL lua 'for u in c:users() do end'
is "$RC" 1 "a listing that comes back without pagination is refused"
like "$ERR" "did not return a paginated answer; refusing a possibly partial list" "  with the reason"
fault_rules '[{"method": "GET", "path": "/hub/api/$", "status": 200, "body": "{\"version\": \"1.5.0\"}"}]'
URL=$FAULT_URL lua 'local n = 0 for u in c:users() do n = n + 1 end print(c:info().version, n)'
is "$ERR" "1.5.0	200" "a hub older than 2.0: one request, a bare list (3.0 cuts such lists at 200)"
like "$(tail -n 1 "$FAULT_DIR/requests.log")" "^GET /hub/api/users " "  sent without offset or limit"
fault_rules '[]'

# --- timeouts: a server that accepts and never answers ---
"$PY" -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
conns = []
while True:
    c, _ = s.accept(); conns.append(c)
' "$SCRATCH/silent-port" &
silent=$!; on_exit "kill $silent"
for i in $(seq 50); do [ -s "$SCRATCH/silent-port" ] && break; sleep 0.1; done
start=$(date +%s)
URL="http://127.0.0.1:$(cat "$SCRATCH/silent-port")" TIMEOUT=1 lua 'print(c:info())'
took=$(( $(date +%s) - start ))
like "$ERR" "timed out" "a silent server times out"
ok $([ "$took" -lt 20 ]; echo $?) "  within bounds (${took}s: 1 s a try, retried with backoff)"

# --- TLS: verified by default, a wrong CA fails closed ---
make_ca "$SCRATCH/tls"
fault_start "$HUB_ROOT" --tls-cert "$SCRATCH/tls/server.pem" --tls-key "$SCRATCH/tls/server.key"
URL=$FAULT_URL lua 'print(c:info())'
like "$ERR" "^nil	.*(certificate|SSL).*TLS verification failed" "TLS: an unknown CA fails, with a hint"
URL=$FAULT_URL CA="$SCRATCH/tls/other-ca.pem" lua 'print(c:info())'
like "$ERR" "^nil	.*TLS verification failed" "TLS: the wrong CA fails closed"
URL=$FAULT_URL CA="$SCRATCH/tls/ca.pem" lua 'print(c:info().version)'
is "$ERR" "3.0.0" "TLS: the right CA works"
URL=$FAULT_URL INSECURE=1 lua 'print(c:info().version)'
is "$(printf '%s\n' "$ERR" | tail -n 1)" "3.0.0" "TLS: insecure skips verification when asked"
like "$ERR" "TLS is NOT VERIFIED for 127\.0\.0\.1:[0-9]+" "  and says so"
URL=${FAULT_URL/127.0.0.1/localhost} CA="$SCRATCH/tls/ca.pem" lua 'print(c:info().version)'
is "$ERR" "3.0.0" "TLS: the name is checked against the certificate (localhost is in it)"

done_testing
