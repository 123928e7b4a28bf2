#!/usr/bin/env bash
# prune-dormant on a hub that sorts users by activity (JupyterHub 5.0 and later): the listing asks
# for sort=last_activity and stops at the first user active within `days`, without reading the
# other pages. JupyterHub 3.0 (Debian's, which the other tests run) has no sort, so this test uses
# tests/lib/hub5sort.py, a stand-in that follows JupyterHub 5's users.py for that one request.
. "$(dirname "$0")/lib/tap.sh"
export XDG_STATE_HOME="$SCRATCH/state"
unset JUPYTERHUB_API_URL JUPYTERHUB_API_TOKEN
TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
TEST_SECRETS+=("$TOKEN")
printf '%s\n' "$TOKEN" > "$SCRATCH/token"; chmod 600 "$SCRATCH/token"

# 1000 users in a shuffled id order: 60 never active (5 of them new), 150 idle for 100-400 days
# (one an admin, one with a running server), and 790 active within the last 60 days.
"$PY" - "$SCRATCH/users.json" <<'PY'
import json, random, sys
from datetime import datetime, timedelta, timezone
now = datetime.now(timezone.utc)
iso = lambda d: (now - timedelta(days=d)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
rng = random.Random(7)
users = []
for i in range(55): users.append({"name": f"never{i:03}", "created": iso(300), "last_activity": None})
for i in range(5): users.append({"name": f"new{i}", "created": iso(2), "last_activity": None})
for i in range(150): users.append({"name": f"idle{i:03}", "created": iso(500), "last_activity": iso(100 + 2 * i)})
for i in range(790): users.append({"name": f"busy{i:03}", "created": iso(500), "last_activity": iso(rng.uniform(0, 60))})
for u in users:
    u.update(admin=False, servers={}, kind="user", groups=[])
next(u for u in users if u["name"] == "idle010")["admin"] = True
next(u for u in users if u["name"] == "idle020")["servers"] = {"": {"name": "", "ready": True, "pending": None, "url": "/user/idle020/"}}
rng.shuffle(users)
json.dump(users, open(sys.argv[1], "w"))
PY

hub5_start() {  # hub5_start DIR [hub5sort.py options]: sets HUB5_URL
  local dir=$1; shift
  mkdir -p "$dir"
  "$PY" "$TOP/tests/lib/hub5sort.py" --dir "$dir" --users "$SCRATCH/users.json" --token "$TOKEN" "$@" &
  on_exit "kill $!"
  local i
  for i in $(seq 100); do [ -f "$dir/port" ] && break; sleep 0.05; done
  HUB5_URL="http://127.0.0.1:$(cat "$dir/port")"
}
users_requests() { grep -c '^GET /hub/api/users?' "$1/requests.log"; }
py() { "$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

# --- a 5.x hub: sorted, stops early ---
hub5_start "$SCRATCH/h1"
run_rb plan prune-dormant -p hub="$HUB5_URL" -p token_file="$SCRATCH/token" -o "$SCRATCH/p1.json"
is "$RC" 0 "plan against a hub that sorts exits 0"
is "$(py "$SCRATCH/p1.json" 'len(d["actions"])')" 203 "203 dormant users: 55 never active and 148 idle (not the admin, not the running server)"
is "$(py "$SCRATCH/p1.json" '" ".join(sorted(set(s["reason"].split(" (")[0].split(",")[0] for s in d["skipped"])))')" \
   "admin new account server running" "the skipped: the admin, the running server, the 5 new accounts"
like "$(py "$SCRATCH/p1.json" 'd["facts"]["listing"]')" "^sorted by last activity; stopped at busy[0-9]+, the first user active within 90 days: the [0-9]+ users not listed" \
  "the plan says it stopped early, and why"
is "$(py "$SCRATCH/p1.json" 'd["facts"]["users_total"]')" 1000 "  and how many users the hub has"
grep '^GET /hub/api/users?' "$SCRATCH/h1/requests.log" | grep -vq 'sort=last_activity'; ok $([ $? -ne 0 ]; echo $?) "every page asked for sort=last_activity"
pages=$(users_requests "$SCRATCH/h1")
ok $([ "$pages" -le 2 ]; echo $?) "2 of the 5 pages read at most (the first, and the one prefetched): $pages"
first=$(py "$SCRATCH/p1.json" 'd["actions"][0]["target"]')
like "$first" "^never" "the never active come first, as the hub sorts them"

run_rb apply "$SCRATCH/p1.json" --yes
is "$RC" 0 "apply exits 0"
like "$OUT$ERR" "203 done, 0 skipped, 0 failed" "  the 203 are deleted"
run_rb plan prune-dormant -p hub="$HUB5_URL" -p token_file="$SCRATCH/token" -o "$SCRATCH/p1b.json"
is "$(py "$SCRATCH/p1b.json" 'len(d["actions"])')" 0 "a second plan finds no one left"

# --- people use the hub during the listing: a newcomer pushes a user back onto the next page ---
hub5_start "$SCRATCH/h2"
printf '{"200": {"create": 3}}' > "$SCRATCH/h2/events.json"
run_rb plan prune-dormant -p hub="$HUB5_URL" -p token_file="$SCRATCH/token" -p days=30 -p grace_days=0 -o "$SCRATCH/p2.json"
is "$RC" 0 "plan while 3 users are created between pages exits 0"
is "$(py "$SCRATCH/p2.json" 'len(d["actions"]) == len(set(a["target"] for a in d["actions"]))')" True \
  "  no user is planned twice (the 3 pushed back onto the next page are dropped there)"

# --- a hub that says 5.x but ignores sort: refused, never stopped early ---
hub5_start "$SCRATCH/h3" --ignore-sort
run_rb plan prune-dormant -p hub="$HUB5_URL" -p token_file="$SCRATCH/token"
is "$RC" 1 "a hub that ignores sort: the plan fails (exit 1)"
like "$ERR" "GET /users\?sort=last_activity returned [a-z0-9]+ out of order; the hub did not sort" "  naming the problem"
unlike "$ERR" "stack traceback|\.lua:[0-9]+:" "  no traceback"

# --- a 3.x hub: the parameter is never sent ---
hub5_start "$SCRATCH/h4" --version 3.1.1
run_rb plan prune-dormant -p hub="$HUB5_URL" -p token_file="$SCRATCH/token" -o "$SCRATCH/p4.json"
is "$RC" 0 "a 3.x hub: plan exits 0"
is "$(users_requests "$SCRATCH/h4")" 5 "  every page is read"
grep -q 'sort=' "$SCRATCH/h4/requests.log"; ok $([ $? -ne 0 ]; echo $?) "  and sort is never sent"
is "$(py "$SCRATCH/p4.json" 'len(d["actions"])')" 203 "  the same 203 dormant users"
like "$(py "$SCRATCH/p4.json" 'd["facts"]["listing"]')" "^every user, in id order" "  the plan says it listed everyone"

done_testing
