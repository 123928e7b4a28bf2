#!/usr/bin/env bash
# `make demo`: the main job on a local, real JupyterHub 3.0 that this script starts and stops itself.
# It seeds users, rehearses prune-dormant, applies it, and tells you what happened at each step.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
RUNBOOK="$TOP/runbook"
DEMO=$(mktemp -d "${TMPDIR:-/tmp}/runbook-demo.XXXXXX")
HUB="$DEMO/hub"
bold=; plain=
if [ -t 1 ]; then bold=$(tput bold 2>/dev/null || true); plain=$(tput sgr0 2>/dev/null || true); fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }
say() { printf '    %s\n' "$*"; }
show() { printf '\n    $ %s\n\n' "$*"; }

cleanup() {
  "$PY" "$TOP/tests/lib/hub.py" stop --dir "$HUB" >/dev/null 2>&1
  rm -rf "$DEMO"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "Starting a local JupyterHub 3.0 (Debian's package) on 127.0.0.1, in $DEMO"
say "It gets a service token with the scopes prune-dormant needs (admin:users, admin:servers, list:users, read:users,"
say "read:hub: to learn the hub's spawner, which decides whether deleting a user deletes their home directory)."
if ! "$PY" "$TOP/tests/lib/hub.py" start --dir "$HUB" >"$DEMO/start.log" 2>&1; then
  echo "The demo hub did not start:"; tail -n 20 "$DEMO/start.log"; exit 1
fi
set -a; . "$HUB/env"; set +a
JUPYTERHUB_API_TOKEN=$(cat "$JUPYTERHUB_TOKEN_FILE"); export JUPYTERHUB_API_TOKEN
say "Hub API: $JUPYTERHUB_API_URL (the token is in JUPYTERHUB_API_TOKEN, never on a command line)."

step "Seeding 620 users: the kind of mix a hub has before a semester"
say "400 dormant (last active 120 days ago), 150 active this week, 50 who signed up today and never used the hub,"
say "10 who never used it and signed up 30 days ago, 8 dormant users with names that need escaping or policy,"
say "an admin who has not logged in for a year, and a user whose server is running right now (a real one)."
"$PY" "$TOP/tests/lib/hub.py" seed --dir "$HUB" \
  --generate dormant:400:-120d --generate active:150:-2d --generate newcomer:50 --generate ghost:10::-30d \
  --user 'ana.maria@example.edu,user+tag,josé,prof.smith,ta.jones,alumni1,alumni2,alumni3,root-admin,busy.bee' \
  --activity 'ana.maria@example.edu=-200d' --activity 'user+tag=-200d' --activity 'josé=-200d' \
  --activity 'prof.smith=-300d' --activity 'ta.jones=-300d' --activity 'alumni1=-400d' --activity 'alumni2=-400d' \
  --activity 'alumni3=-400d' --activity 'root-admin=-365d' --admin root-admin --group staff=prof.smith,ta.jones \
  --running busy.bee >"$DEMO/seed.log" 2>&1 || { echo "Seeding failed:"; tail -n 20 "$DEMO/seed.log"; exit 1; }
say "The hub now has $("$PY" "$TOP/tests/lib/hub.py" count --dir "$HUB") users."

step "A site policy: keep the staff group, whatever their activity; most of this hub may go"
cat > "$DEMO/policy.lua" <<'LUA'
-- Sites tune prune-dormant in Lua without editing it. This one keeps the staff group.
days = 90
max_percent = 70   -- two thirds of this hub is dormant: say that deleting up to 70% of it is meant (default 50)
exclude = function(user)
  for _, group in ipairs(user.groups or {}) do
    if group == "staff" then return "member of staff" end
  end
end
LUA
sed 's/^/    | /' "$DEMO/policy.lua"

step "1. Rehearse: plan, changing nothing"
say "Every user is listed (all pages, 200 at a time); each is judged; nothing is deleted."
show "runbook run prune-dormant --policy policy.lua --dry-run"
"$RUNBOOK" run prune-dormant --policy "$DEMO/policy.lua" --dry-run
deletes=$(grep -cE 'DELETE /hub/api/users/.*\(ops@' "$HUB_LOG")
say "The hub's log shows $deletes DELETE requests from the runbook's token during the rehearsal."
say "'spawner' and 'storage' under Found: this hub runs local processes, which keep no per-user storage,"
say "so deleting a user loses no home directory. On zero-to-jupyterhub (KubeSpawner) it would: there the plan"
say "lists each user's claim and, by default, keeps the volume (-p storage=retain)."

step "2. Save the plan, to review it and apply exactly that later"
show "runbook plan prune-dormant --policy policy.lua -o plan.json -q"
"$RUNBOOK" plan prune-dormant --policy "$DEMO/policy.lua" -o "$DEMO/plan.json" -q >/dev/null
say "plan.json (mode $(stat -c %a "$DEMO/plan.json")) holds $("$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["actions"]))' "$DEMO/plan.json") deletions, the parameters, the runbook's hash and a checksum."

step "Meanwhile, one of the dormant users comes back (alumni1 logs in)"
"$PY" "$TOP/tests/lib/hub.py" seed --dir "$HUB" --activity "alumni1=$(date -u +%Y-%m-%dT%H:%M:%SZ)" >/dev/null 2>&1
say "apply re-reads every user just before deleting them, so alumni1 will be skipped."

step "3. Apply the saved plan"
if [ -t 0 ] && [ -t 1 ]; then
  say "You will be asked to type the hub's name ($(echo "$JUPYTERHUB_API_URL" | sed -E 's#^https?://([^/]+).*#\1#')) to go on."
  show "runbook apply plan.json"
  "$RUNBOOK" apply "$DEMO/plan.json" --journal-dir "$DEMO/journal"
else
  say "No terminal here, so the demo passes --yes (without it, apply would refuse: exit 3)."
  show "runbook apply plan.json --yes"
  "$RUNBOOK" apply "$DEMO/plan.json" --yes --journal-dir "$DEMO/journal"
fi
status=$?
say "Exit status $status (0 done, 4 done with some users skipped because they changed, 3 not confirmed)."
say "The journal (one JSON line per step, fsync'd) is what 'runbook resume' would use after a crash:"
ls "$DEMO"/journal/*.journal 2>/dev/null | sed 's/^/    /'

step "4. Undo part of it: alumni2 wants their account back"
say "Before each deletion the user's record (admin, groups, activity, servers) was saved beside the journal;"
say "restore-users re-creates users from it (and would attach their kept home directories again)."
journal=$(ls "$DEMO"/journal/prune-dormant-*.journal | head -n 1)
show "runbook run restore-users -p from=$(basename "$journal") -p users=alumni2 --yes"
"$RUNBOOK" run restore-users -p from="$journal" -p users=alumni2 --yes --journal-dir "$DEMO/journal"
say "alumni2 is back: $("$PY" "$TOP/tests/lib/hub.py" api --dir "$HUB" GET /users/alumni2 2>/dev/null | grep -c '"name": "alumni2"') user named alumni2 on the hub."

step "Done. What to try next"
cat <<EOT
    runbook show prune-dormant            what it does, its parameters and policy keys
    runbook show restore-users            how a prune run is undone
    runbook list                          the other runbooks (reset-sqlite, wipe-hub-db, ...)
    runbook plan prune-dormant -p hub=https://your.hub -o plan.json     with JUPYTERHUB_API_TOKEN set
    runbook apply plan.json               after reading it; you type the hub's name to confirm
    make test                             the whole test suite, against real servers
EOT
exit 0
