#!/bin/bash
# Proves tests/lib/hub.py + hub.sh against a REAL JupyterHub 3.0, and the hub
# facts the runbooks rely on (field notes, JupyterHub section): pagination,
# the user model, last_activity rules, odd user names, DELETE semantics, and
# that stopping leaves no process behind.
. "$(dirname "$0")/lib/tap.sh"
. "$(dirname "$0")/lib/hub.sh"

[ -x /usr/bin/jupyterhub ] || skip_all "jupyterhub not installed (apt-get install jupyterhub)"

H=$SCRATCH/hub
PAGES=application/jupyterhub-pagination+json

# jget JSON EXPR: a value from JSON, `d` being the document; strings raw, others as JSON.
jget() {
  "$PY" -c 'import json, sys
d = json.loads(sys.argv[1]); v = eval(sys.argv[2])
print(v if isinstance(v, str) else json.dumps(v))' "$1" "$2"
}
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
days_ago() { date -u -d "$1 days ago" +%F; }
# listening PID...: "ip:port" of the TCP sockets these processes listen on (from /proc: no ss needed)
listening() {
  "$PY" - "$@" <<'PYEOF'
import os, socket, struct, sys
inodes = set()
for pid in sys.argv[1:]:
    for fd in os.listdir(f"/proc/{pid}/fd"):
        link = os.readlink(f"/proc/{pid}/fd/{fd}")
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
    for line in open(f"/proc/net/{table}").readlines()[1:]:
        f = line.split()
        if f[3] == "0A" and f[9] in inodes:  # 0A = LISTEN
            hexip, hexport = f[1].split(":")
            raw = bytes.fromhex(hexip)
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))  # per-word little endian
            print(f"{socket.inet_ntop(family, raw)}:{int(hexport, 16)}")
PYEOF
}
# alive PID: exists and is not a zombie waiting to be reaped
alive() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null) && [ "${s:0:1}" != Z ]; }

# ---------------------------------------------------------------- start
t0=$(date +%s%N)
hub_start "$H" --spawner-delay-users pend.user --spawner-slow-stop-users stopper || { ok 1 "hub starts"; done_testing; exit 1; }
ok 0 "hub starts ($(ms_since "$t0") ms)"
like "$JUPYTERHUB_API_URL" '^http://127\.0\.0\.1:[0-9]+/hub/api$' "JUPYTERHUB_API_URL is loopback"
like "$HUB_URL" '^http://127\.0\.0\.1:[0-9]+$' "HUB_URL is loopback"
is "$JUPYTERHUB_TOKEN_FILE" "$H/token" "JUPYTERHUB_TOKEN_FILE points at DIR/token"
is "$(stat -c %a "$H/token")" 600 "token file is 0600"
check "HUB_PID is alive" kill -0 "$HUB_PID"
is "$(hub_api_status GET /users/nobody-here)" 404 "the ops token is accepted (404, not 403)"
is "$(HUB_API_ACCEPT=$PAGES hub_api_status GET /groups)" 403 "the ops token has exactly the documented scopes (no groups)"
out=$(hub_fetch "$HUB_URL/hub/api/")
is "${out##*$'\n'}" 200 "the proxy serves the hub at HUB_URL..."
like "${out%$'\n'*}" '^\{"version": "3\.0\.[0-9]+"\}$' "...JupyterHub 3.0"
addrs=$(listening "$HUB_PID" "$(<"$H/jupyterhub-proxy.pid")")
like "$addrs" '^127\.0\.0\.1:' "hub and proxy listen..."
unlike "$addrs" '^[^1]|^1[^2]|^12[^7]' "...on 127.0.0.1 only"

# ---------------------------------------------------------------- seed
ODD=('ana.maria@example.edu' 'user+tag' 'josé')
t0=$(date +%s%N)
hub_seed "$H" --generate old:200:-100d --generate new:250 \
  --user "$(IFS=,; echo "${ODD[*]}"),admin1,runner,named,pend.user,fresh30,fresh1,stopper" \
  --created fresh30=-30d --created fresh1=-1d --admin admin1 --group staff=admin1,runner \
  --running runner,stopper --named-server named/lab2 --pending pend.user
ok $? "seed 460 users, admins, a group, backdated users, 3 real servers, 1 pending spawn ($(ms_since "$t0") ms)"
is "$(hub_count "$H")" 460 "hub.py count"
users=$(hub_users "$H")
is "$(printf '%s\n' "$users" | wc -l)" 460 "hub.py users lists every page"
for n in "${ODD[@]}"; do
  check "hub.py users has '$n'" grep -qxF -- "$n" <<<"$users"
done

# ---------------------------------------------------------------- pagination (field notes)
bare=$(hub_api GET /users)
is "$(jget "$bare" 'type(d).__name__ + str(len(d))')" list200 "without the pagination Accept header: a bare list of 200"
page=$(HUB_API_ACCEPT=$PAGES hub_api GET '/users?limit=1000')
is "$(jget "$page" '[len(d["items"]), d["_pagination"]["limit"], d["_pagination"]["total"], d["_pagination"]["next"]["offset"]]')" \
  "[200, 200, 460, 200]" "with it: items, limit capped at 200, total, next offset"
n=0 offset=0 pages=0
while [ -n "$offset" ] && [ $pages -lt 10 ]; do
  page=$(HUB_API_ACCEPT=$PAGES hub_api GET "/users?offset=$offset&limit=200")
  n=$((n + $(jget "$page" 'len(d["items"])')))
  offset=$(jget "$page" '(d["_pagination"]["next"] or {}).get("offset", "")')
  pages=$((pages + 1))
done
is "$n/$pages" 460/3 "following _pagination.next returns all 460 users in 3 pages"

# ---------------------------------------------------------------- the user model
u=$(hub_api GET /users/new0000)
is "$(jget "$u" 'sorted(d)')" \
  '["admin", "auth_state", "created", "groups", "kind", "last_activity", "name", "pending", "roles", "server", "servers"]' \
  "user model fields"
is "$(jget "$u" '[d["last_activity"], d["servers"], d["pending"], d["server"]]')" '[null, {}, null, null]' \
  "a new user: last_activity null, no servers"
u=$(hub_api GET /users/old0000)
like "$(jget "$u" 'd["last_activity"]')" "^$(days_ago 100)T" "last_activity set to 100 days ago after creation"
hub_api POST /users/old0000/activity '{"last_activity": "2001-01-01T00:00:00Z"}' >/dev/null
ok $? "an older last_activity is answered 200..."
like "$(jget "$(hub_api GET /users/old0000)" 'd["last_activity"]')" "^$(days_ago 100)T" "...and ignored: it only moves forward"
u=$(hub_api GET /users/fresh30)
is "$(jget "$u" 'd["last_activity"]')" null "fresh30: last_activity null"
like "$(jget "$u" 'd["created"]')" "^$(days_ago 30)T" "fresh30: created 30 days ago (backdated in the db)"
like "$(jget "$(hub_api GET /users/fresh1)" 'd["created"]')" "^$(days_ago 1)T" "fresh1: created 1 day ago"
is "$(jget "$(hub_api GET /users/admin1)" '[d["admin"], d["groups"]]')" '[true, ["staff"]]' "admin1 is admin, in group staff"
u=$(hub_api GET /users/runner)
is "$(jget "$u" '[d["pending"], d["server"], d["servers"][""]["ready"], d["servers"][""]["pending"]]')" \
  '[null, "/user/runner/", true, null]' "runner has a ready default server"
like "$(jget "$u" 'd["last_activity"]')" "^$(date -u +%F)T" "starting a server set last_activity to now"
runner_pid=$(jget "$u" 'd["servers"][""]["state"]["pid"]')
check "runner's jupyterhub-singleuser process (pid $runner_pid) is alive" alive "$runner_pid"
like "$(listening "$runner_pid")" '^127\.0\.0\.1:[0-9]+$' "...listening on 127.0.0.1 only"
out=$(hub_fetch "$HUB_URL/user/runner/api")
like "${out%$'\n'*}/${out##*$'\n'}" '^\{"version": "[0-9.]+"\}/200$' \
  "the proxy routes /user/runner/ to the real notebook server (its /api answers)"
u=$(hub_api GET /users/pend.user)
is "$(jget "$u" '[d["pending"], d["servers"][""]["pending"], d["servers"][""]["ready"]]')" \
  '["spawn", "spawn", false]' "pend.user has a pending spawn"
is "$(jget "$(hub_api GET /users/named)" '[d["server"], d["servers"]["lab2"]["ready"]]')" \
  '[null, true]' "named has a running named server lab2 and no default server"
active=$(HUB_API_ACCEPT=$PAGES hub_api GET '/users?state=active')
is "$(jget "$active" 'sorted(u["name"] for u in d["items"])')" '["named", "pend.user", "runner", "stopper"]' \
  "state=active lists running and pending users"

# ---------------------------------------------------------------- odd names
for n in "${ODD[@]}"; do
  q=$(hub_quote "$n")
  is "$(jget "$(hub_api GET "/users/$q")" 'd["name"]')" "$n" "GET /users/$q finds '$n' unchanged"
done
is "$(hub_api_status GET /users/user%2Btag)" 200 "user%2Btag works too"
is "$(hub_api_status GET /users/ana.maria%40example.edu)" 200 "ana.maria%40example.edu works too"
# hub_api without curl (hub.py http): the same answers
is "$(jget "$(HUB_HTTP=python hub_api GET "/users/$(hub_quote josé)")" 'd["name"]')" josé "HUB_HTTP=python hub_api: GET josé"
is "$(HUB_HTTP=python hub_api_status POST /users/old0001/activity '{"last_activity": "2001-01-01T00:00:00Z"}')" 200 \
  "HUB_HTTP=python hub_api_status: POST with a JSON body"
is "$(HUB_HTTP=python HUB_API_ACCEPT=$PAGES hub_api GET '/users?limit=1' | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["_pagination"]["total"])')" \
  460 "HUB_HTTP=python: the Accept header goes through"
is "$(hub_api_status POST /users '{"usernames": ["old0000", "new0000"]}')" 409 "bulk POST /users of existing users only: 409"
made=$(hub_api POST /users '{"usernames": ["Mixed.Case"]}')
is "$(jget "$made" '[u["name"] for u in d]')" '["mixed.case"]' "bulk POST /users lowercases names"
made=$(hub_api POST /users/Single.Case)
is "$(jget "$made" 'd["name"]')" Single.Case "POST /users/{name} does NOT lowercase"

# ---------------------------------------------------------------- DELETE semantics (field notes)
is "$(hub_api_status DELETE /users/nobody-here)" 404 "DELETE unknown user: 404"
is "$(hub_api_status DELETE /users/new0001)" 204 "DELETE idle user: 204"
is "$(hub_api_status GET /users/new0001)" 404 "...and it is gone"
is "$(hub_api_status DELETE "/users/$(hub_quote josé)")" 204 "DELETE /users/jos%C3%A9: 204"
out=$(hub_api DELETE /users/pend.user)
is "$(jget "$out" '[d["status"], d["message"]]')" '[500, "Internal Server Error"]' "DELETE with a pending spawn: 500, generic body"
is "$(jget "$(hub_api GET /users/pend.user)" 'd["pending"]')" spawn "...the user stays, still pending"
grep -q "RuntimeError: Spawner pend.user is active and cannot be deleted" "$HUB_LOG"
ok $? "...the reason is only in the hub log"
is "$(hub_api_status DELETE /users/named)" 500 "DELETE with a running named server: 500"
is "$(hub_api_status GET /users/named)" 200 "...the user stays"
t0=$(date +%s%N)
is "$(hub_api_status DELETE /users/runner)" 204 "DELETE with a running default server: 204 (DANGER) ($(ms_since "$t0") ms)"
is "$(hub_api_status GET /users/runner)" 404 "...the user is gone"
sleep 0.5
! alive "$runner_pid"; ok $? "...and the hub stopped its server process"
# stopper's server takes 5 s to stop (hubtest SlowSpawner): DELETE meanwhile.
hub_api_status DELETE /users/stopper/server >"$SCRATCH/stop.status" &
stopping=$!
sleep 1
out=$(hub_api DELETE /users/stopper)
is "$(jget "$out" '[d["status"], d["message"]]')" "[400, \"stopper's server is in the process of stopping, please wait.\"]" \
  "DELETE while the server is stopping: 400"
wait "$stopping"
is "$(<"$SCRATCH/stop.status")" 204 "...the stop ends (204 within the 10 s slow_stop_timeout)"
is "$(hub_api_status DELETE /users/stopper)" 204 "...then DELETE: 204"

# ---------------------------------------------------------------- the hub log
log=$(cat "$HUB_LOG")
like "$log" '204 DELETE /hub/api/users/new0001 \(ops@127\.0\.0\.1\)' "hub.log has request lines (method, path, service)"
like "$log" '201 POST /hub/api/users \(harness@127\.0\.0\.1\)' "seeding shows as harness@, not ops@"
unlike "$log" "$(<"$H/token")" "the ops token never appears in hub.log"

# ---------------------------------------------------------------- restart, backdate, bulk seeding
old_url=$HUB_URL old_pid=$HUB_PID
hub_backdate_created "$H" new0002=2020-01-02T03:04:05Z
ok $? "hub.py backdate-created (stop, UPDATE users, start)"
is "$HUB_URL" "$old_url" "...same ports after the restart"
[ "$HUB_PID" != "$old_pid" ]; ok $? "...a new hub process"
like "$(jget "$(hub_api GET /users/new0002)" 'd["created"]')" '^2020-01-02T03:04:05' "...created is 2020-01-02T03:04:05"
t0=$(date +%s%N)
hub_seed "$H" --via-db --generate bulk:1000:-200d:-300d
ok $? "seed 1,000 users in the database ($(ms_since "$t0") ms)"
u=$(hub_api GET /users/bulk0999)
like "$(jget "$u" '[d["created"], d["last_activity"], d["roles"]]')" \
  "^\[\"$(days_ago 300)T.*\", \"$(days_ago 200)T.*\", \[\"user\"\]\]$" "a db-seeded user looks like an API-made one"
is "$(hub_count "$H")" $((460 + 2 - 4 + 1000)) "count: 460 seeded + 2 made in tests - 4 deleted + 1,000"

# ---------------------------------------------------------------- stop: nothing left
hub_seed "$H" --running runner2 --user runner2 >/dev/null 2>&1  # a fresh server to kill on stop
pids=("$HUB_PID" "$(<"$H/jupyterhub-proxy.pid")")
for p in $(pgrep -f jupyterhub-singleuser); do
  case $(readlink "/proc/$p/cwd") in "$H"/home/*) pids+=("$p") ;; esac
done
is "${#pids[@]}" 3 "before stop: hub, proxy and runner2's single-user server"
t0=$(date +%s%N)
hub_stop "$H"
ok $? "hub_stop ($(ms_since "$t0") ms)"
left=()
for p in "${pids[@]}"; do alive "$p" && left+=("$p"); done
is "${left[*]}" "" "no hub, proxy or single-user process left"
marked=$(for p in $(pgrep -f 'jupyterhub|configurable-http-proxy'); do
  alive "$p" && tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qxF "HUBTEST_DIR=$H" && echo "$p"
done)
is "$marked" "" "no process carries this hub's marker"
is "$(pgrep -f "$H" | tr '\n' ' ')" "" "no process mentions the hub dir"
hub_stop "$H"; ok $? "hub_stop twice is harmless"

done_testing
