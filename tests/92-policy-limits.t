#!/usr/bin/env bash
# Site code (policy files, policy functions, inventories) cannot hang runbook, exhaust its memory or
# change what it decides with (issue 16, items 4 and 5): a pcall or coroutine cannot swallow the
# instruction budget, work done inside C functions (pattern backtracking, string.rep, gsub doubling, a
# huge returned reason) is bounded by a memory limit, pattern guards and a deadline, and a policy
# function gets a copy of what it is shown. Each case ends within `timeout` (a regression fails, it
# does not hang) with exit 2 and a message naming the file; /usr/bin/time checks the peak RSS.
. "$(dirname "$0")/lib/tap.sh"
. "$TOP/tests/lib/testservers.sh"
export RUNBOOK_PATH="$TOP/tests/runbooks"
export XDG_STATE_HOME="$SCRATCH/state"
[ -x /usr/bin/time ] || skip_all "/usr/bin/time is not installed"
MAX_RSS_KB=200000

kv_start "tmp-a=1,tmp-b=2,keep=3"

# limited NAME ARGS...: runbook ARGS under `timeout 20`, with its peak RSS (KB) in $RSS
limited() {
  local name=$1; shift
  local o e
  o=$(mktemp); e=$(mktemp)
  # (under AddressSanitizer, freed memory is held in a quarantine of 256 MiB unless told otherwise)
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16" \
    /usr/bin/time -f %M -o "$SCRATCH/$name.rss" timeout 20 "$RUNBOOK" "$@" >"$o" 2>"$e" </dev/null; RC=$?
  OUT=$(cat "$o"); ERR=$(cat "$e"); rm -f "$o" "$e"
  RSS=$(tail -n 1 "$SCRATCH/$name.rss" | grep -Eo '^[0-9]+$' || echo 999999999)
}
policy() { printf '%s\n' "$2" > "$SCRATCH/$1.lua"; }

# --- the budget cannot be caught: pcall, xpcall, coroutines ---
policy pcall-file 'while true do pcall(function() while true do end end) end'
limited pcall-file plan kv-prune --policy "$SCRATCH/pcall-file.lua"
is "$RC" 2 "a policy file looping around pcall ends: exit 2"
like "$ERR" "policy file .*pcall-file.lua failed: instruction budget exhausted" "  names the file and the budget"

policy pcall-fn 'exclude = function(name) while true do pcall(function() while true do end end) end end'
limited pcall-fn plan kv-prune --policy "$SCRATCH/pcall-fn.lua"
is "$RC" 2 "an exclude function looping around pcall ends: exit 2"
like "$ERR" "policy function 'exclude' \(.*pcall-fn.lua\) failed: instruction budget exhausted" "  names the function, the file and the budget"

policy xpcall-fn 'exclude = function(name) while true do xpcall(function() while true do end end, function(e) while true do end end) end end'
limited xpcall-fn plan kv-prune --policy "$SCRATCH/xpcall-fn.lua"
is "$RC" 2 "an exclude function looping around xpcall with a looping handler ends: exit 2"
like "$ERR" "policy function 'exclude'.*budget exhausted" "  says the budget ran out"

# (coverage: the old hook already stopped this one, the outer thread's hook firing outside the pcall)
policy coroutine-fn 'exclude = function(name) while true do coroutine.resume(coroutine.create(function() while true do end end)) end end'
limited coroutine-fn plan kv-prune --policy "$SCRATCH/coroutine-fn.lua"
is "$RC" 2 "an exclude function looping around coroutine.resume ends: exit 2"
like "$ERR" "policy function 'exclude'.*budget exhausted" "  says the budget ran out"

cat > "$SCRATCH/inventory.lua" <<'LUA'
while true do pcall(function() while true do end end) end
targets = { { name = "one" } }
LUA
limited inventory plan kv-prune --inventory "$SCRATCH/inventory.lua"
is "$RC" 2 "an inventory looping around pcall ends: exit 2"
like "$ERR" "inventory .*inventory.lua failed: instruction budget exhausted" "  names the inventory and the budget"

# --- work inside C functions ---
policy backtrack 'local found = string.find(("a"):rep(40), (".-"):rep(30) .. "b")'
limited backtrack plan kv-prune --policy "$SCRATCH/backtrack.lua"
is "$RC" 2 "a backtracking pattern is refused before it runs: exit 2"
like "$ERR" "backtrack.lua failed: .*string.find: the pattern .* could take about" "  says why"
policy backtrack-method 'exclude = function(name) return (name:rep(8)):match(("(.-)"):rep(12) .. "!") ~= nil end'
limited backtrack-method plan kv-prune --policy "$SCRATCH/backtrack-method.lua"
is "$RC" 2 "a backtracking pattern through a string method, in a policy function: exit 2"
like "$ERR" "policy function 'exclude'.*string.match: the pattern" "  says why"

policy rep 'local s = string.rep("x", 1024 * 1024 * 1024)'
limited rep plan kv-prune --policy "$SCRATCH/rep.lua"
is "$RC" 2 "string.rep of 1 GiB: exit 2"
like "$ERR" "rep.lua failed: used more than its memory limit of [0-9]+ MiB" "  the memory limit says so"
ok $([ "$RSS" -lt $MAX_RSS_KB ]; echo $?) "  peak RSS ${RSS} KB stays under $MAX_RSS_KB KB"

policy gsub 'local s = "x" while true do s = s:gsub(".", "%0%0") end'
limited gsub plan kv-prune --policy "$SCRATCH/gsub.lua"
is "$RC" 2 "gsub doubling a string for ever: exit 2"
like "$ERR" "gsub.lua failed: used more than its memory limit" "  stopped by the memory limit"
ok $([ "$RSS" -lt $MAX_RSS_KB ]; echo $?) "  peak RSS ${RSS} KB stays under $MAX_RSS_KB KB"

policy keep 'local kept = {}
exclude = function(name) kept[#kept + 1] = ("k"):rep(40 * 1024 * 1024) .. name return false end'
for i in 1 2 3 4 5 6; do kv_put "many-$i" x; done
limited keep plan kv-prune --policy "$SCRATCH/keep.lua" -p prefix=many-
is "$RC" 2 "a policy function keeping 40 MiB a call: exit 2"
like "$ERR" "policy function 'exclude'.*memory limit" "  the limit holds across calls"
ok $([ "$RSS" -lt $MAX_RSS_KB ]; echo $?) "  peak RSS ${RSS} KB stays under $MAX_RSS_KB KB"

policy reason 'exclude = function(name) return ("r"):rep(128 * 1024 * 1024) end'
limited reason plan kv-prune --policy "$SCRATCH/reason.lua"
is "$RC" 2 "an exclude function returning a 128 MiB reason: exit 2"
like "$ERR" "policy function 'exclude'.*memory limit" "  stopped by the memory limit"
ok $([ "$RSS" -lt $MAX_RSS_KB ]; echo $?) "  peak RSS ${RSS} KB stays under $MAX_RSS_KB KB"

policy long-reason 'exclude = function(name) return ("r"):rep(100000) end'
limited long-reason plan kv-prune --policy "$SCRATCH/long-reason.lua"
is "$RC" 2 "an exclude function returning a 100 kB reason: exit 2"
like "$ERR" "policy function 'exclude'.*returned a string of 100000 bytes \(at most 1000\)" "  the limit on what it returns says so"

policy slow 'exclude = function(name) for i = 1, 1e6 do local s = ("s"):rep(16 * 1024 * 1024) end end'
limited slow plan kv-prune --policy "$SCRATCH/slow.lua"
is "$RC" 2 "an exclude function doing big C work in a loop of few instructions: exit 2"
like "$ERR" "policy function 'exclude'.*budget exhausted" "  stopped by the budget, which C work is charged to"

policy compare 'local a, b = ("c"):rep(20 * 1024 * 1024), ("c"):rep(20 * 1024 * 1024)
exclude = function(name) while true do local same = a == b end end'
limited compare plan kv-prune --policy "$SCRATCH/compare.lua"
is "$RC" 2 "an exclude function comparing two 20 MiB strings for ever (work no hook counts): exit 2"
like "$ERR" "policy function 'exclude'.*time budget exhausted" "  stopped by the budget's deadline"

policy move 'local t = table.move({}, 1, math.maxinteger - 1, 1, {})'
limited move plan kv-prune --policy "$SCRATCH/move.lua"
is "$RC" 2 "table.move over 2^63 empty slots: exit 2"
like "$ERR" "move.lua failed: .*table.move: more than" "  says why"

# A reasonable policy still works with the guards in place.
policy fine 'local pattern = "^%s*(.-)%s*$"
exclude = function(name, entry)
  local trimmed = ("  " .. name .. "  "):match(pattern)
  return trimmed == "tmp-b" and ("reason: " .. trimmed:gsub("%-", "_")) or false
end'
limited fine plan kv-prune --policy "$SCRATCH/fine.lua" --output json
is "$RC" 0 "an ordinary policy using patterns still works"
is "$(printf '%s' "$OUT" | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print([a["target"] for a in d["actions"]], [s["target"] for s in d["skipped"] if s["reason"] == "excluded by policy"])')" \
   "['tmp-a'] ['tmp-b']" "  and excludes what it says"

# --- a policy function cannot change what it is shown ---
policy mutate 'exclude = function(name, entry) entry.version = 12345 entry.value = "changed" return false end'
run_rb plan kv-prune --policy "$SCRATCH/mutate.lua" -o "$SCRATCH/mutate.json"
is "$RC" 0 "plan with a policy that edits the entries it is shown exits 0"
is "$("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sorted((a["target"], a["args"]["version"]) for a in d["actions"]))' "$SCRATCH/mutate.json")" \
   "[('tmp-a', 1), ('tmp-b', 1)]" "  the plan holds the server's versions, not the policy's"
run_rb apply "$SCRATCH/mutate.json" --yes --journal-dir "$SCRATCH/journals"
is "$RC" 0 "  apply exits 0"
is "$(kv_keys)" "keep many-1 many-2 many-3 many-4 many-5 many-6" "  and deletes what the server's data says"

done_testing
