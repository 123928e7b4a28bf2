-- runner.params bounds and retired parameters, runbook.caps, runbook.ctxstate and the batch backup
-- helpers of runbook.backup: the pieces the dormant-user runbooks are made of.
local params = require "runner.params"
local caps = require "runbook.caps"
local ctxstate = require "runbook.ctxstate"
local backup = require "runbook.backup"
local host = require "runbook.host"

local function fail_of(fn)
  local fine, err = pcall(fn)
  if fine then return "(no error)" end
  return type(err) == "table" and (err.code .. ": " .. err.message) or tostring(err)
end

-- ---- numeric bounds, declared in the parameter table ----
local decl = {
  { name = "days", type = "integer", default = 90, min = 1, max = 36500 },
  { name = "grace_days", type = "integer", default = 7, min = 0 },
  { name = "rate", type = "number", default = 0, min = 0, max = 10.5 },
  { name = "plain", type = "integer" },
}
ok(params.check_declarations(decl) == nil, "bounded declarations are valid")
is(params.resolve(decl, params.parse_assignments(decl, { "days=1" }, "t"), {}, "t", {}).days, 1, "days=1, the minimum: taken")
is(params.resolve(decl, params.parse_assignments(decl, { "days=36500" }, "t"), {}, "t", {}).days, 36500, "the maximum: taken")
is(fail_of(function() params.resolve(decl, params.parse_assignments(decl, { "days=0" }, "t"), {}, "t", {}) end),
   "2: parameter 'days' must be between 1 and 36500, got 0", "below min: exit 2 naming the parameter and both bounds")
is(fail_of(function() params.resolve(decl, params.parse_assignments(decl, { "days=36501" }, "t"), {}, "t", {}) end),
   "2: parameter 'days' must be between 1 and 36500, got 36501", "above max: the same")
like(fail_of(function() params.resolve(decl, {}, { grace_days = -1 }, "t", {}) end),
     "^2: parameter 'grace_days' must be between 0 and 2147483647, got %-1$", "a policy value below min: refused")
like(fail_of(function() params.resolve(decl, params.parse_assignments(decl, { "rate=10.6" }, "t"), {}, "t", {}) end),
     "^2: parameter 'rate' must be between 0 and 10.5, got 10.6", "numbers have bounds too")
like(fail_of(function() params.resolve(decl, params.parse_assignments(decl, { "plain=2147483648" }, "t"), {}, "t", {}) end),
     "must be between %-2147483648 and 2147483647", "no declared bounds: the default ones")
like(fail_of(function() params.check_planned(decl, { days = 0 }, "the plan") end),
     "^2: the plan: parameter 'days' must be between 1 and 36500", "a saved plan is held to the same bounds")
like(params.check_declarations({ { name = "x", type = "string", min = 1 } }) or "", "min is for numbers",
     "a bound on a string is a declaration error")
like(params.check_declarations({ { name = "x", type = "integer", min = 5, max = 1 } }) or "", "min is above max",
     "min above max is a declaration error")

-- ---- retired parameters ----
local rdecl = { { name = "gitlab", type = "string" } }
rdecl.retired = { mode = { keep = "api", why = "that mode is now the runbook other" } }
local given = params.parse_assignments(rdecl, { "mode=api", "gitlab=https://g" }, "t")
is(given.mode, nil, "a retired parameter given the value the runbook still means is taken and dropped")
is(given.gitlab, "https://g", "  the others as before")
is(fail_of(function() params.parse_assignments(rdecl, { "mode=database" }, "t") end),
   "2: t no longer takes mode=database: that mode is now the runbook other", "any other value: exit 2 with what to do")
local planned = params.check_planned(rdecl, { mode = "api", gitlab = "https://g" }, "the plan")
is(planned.mode, nil, "a saved plan's mode=api is dropped")
is(fail_of(function() params.check_planned(rdecl, { mode = "database" }, "the plan") end),
   "2: the plan: parameter mode=database: that mode is now the runbook other", "a saved plan's mode=database: exit 2")
rdecl.retired.mode.why = function(value) return "asked for " .. value end
is(fail_of(function() params.parse_assignments(rdecl, { "mode=x" }, "t") end), "2: t no longer takes mode=x: asked for x",
   "why may depend on the value")
like(fail_of(function() params.parse_assignments(rdecl, { "nope=1" }, "t") end), "unknown parameter 'nope'",
     "unknown parameters are still refused")

-- ---- caps ----
-- A ctx as the engine makes it, with the journals' count of today stubbed by a list.
local function context(done, clock)
  local facts = {}
  return { state = {}, facts = facts, time = function() return clock.now end,
           fact = function(_, k, v) facts[k] = v end,
           done_today = function(kind, target)
             local out = {}
             for _, a in ipairs(done) do if a.kind == kind and a.target == target then out[#out + 1] = a end end
             return out
           end }
end
local clock = { now = 1796342400 + 3600 } -- 01:00 UTC
local done = { { kind = "k", target = "t", args = { ids = { 1, 2, 3 } } }, { kind = "k", target = "t", args = {} },
               { kind = "k", target = "other", args = {} }, { kind = "x", target = "t", args = {} } }
local ctx = context(done, clock)
local limits = caps.of(ctx, { kind = "k", target = "t", per_run = 10, per_day = 8 })
ok(caps.of(ctx, { kind = "ignored", target = "t", per_run = 0, per_day = 0 }) == limits, "one caps object per ctx")
is(limits:used_today(), 4, "today's count: a batch counts its ids, other actions 1; other targets and kinds not")
local room = limits:room()
is(room.run, 4, "room: per_day 8 minus 4 done today, under per_run 10")
is(ctx.facts.done_today, "4 of max_per_day 8 (earlier runs' journals)", "  stated as the plan's fact")
is(limits:over(room), "over today's cap (max_per_day 8, 4 done earlier today)", "over: the day's cap came first")
is(limits:reserve(3), true, "reserve 3 of the 4 left")
local fine, why = limits:reserve(2)
is(fine, false, "reserving 2 more is over the day's cap")
is(why, "over today's cap (max_per_day 8, 7 done today)", "  saying so")
limits:release(1)
is(limits:reserve(2), true, "after releasing 1, 2 fit")
is(limits:today_line(), "Today (UTC): 8 of max_per_day 8.", "today_line(): the day's count as applying left it")
clock.now = clock.now + 86400
done[#done + 1] = { kind = "k", target = "t", args = {} }
is(limits:reserve(2), true, "after midnight the count starts again from the journals")
is(limits:today_line(), "Today (UTC): 7 of max_per_day 8.", "  (5 done today by the journals, and 2)")

local run_capped = caps.of(context({}, clock), { kind = "k", target = "t", per_run = 5, per_day = 0 })
room = run_capped:room()
is(room.run, 5, "per_day 0: no day's cap, the run's")
is(run_capped:over(room), "over this run's cap (max_actions 5)", "  over: the run's cap")
is(run_capped:reserve(1000000), true, "  reserve never refuses without a day's cap")
is(run_capped:today_line(), nil, "  and the report has no day's line")
is(caps.of(context({}, clock), { kind = "k", target = "t", per_run = 0, per_day = 5 }):today_line(), nil,
   "nothing reserved (a plan, or nothing applied): no day's line")
is(caps.of(context({}, clock), { kind = "k", target = "t", per_run = 0, per_day = 0 }):room().run, math.huge,
   "both 0: no cap")
raises(function() caps.of(context({}, clock), { kind = "k", target = "t", per_run = -1, per_day = 0 }) end,
       "per_run must be a whole number", "a negative cap is a bug")

-- ---- ctxstate.once ----
local c = { state = {} }
local made = 0
local function make() made = made + 1 return { n = made } end
local first = ctxstate.once(c, "client", make)
ok(ctxstate.once(c, "client", make) == first and made == 1, "once: made on the first call, then kept in ctx.state")
ok(c.state.client == first, "  under its key")
raises(function() ctxstate.once(c, "x", function() error("no server", 0) end) end, "no server", "a make that raises...")
is(c.state.x, nil, "  keeps nothing")
raises(function() ctxstate.once(c, "y", function() return nil end) end, "returned nothing", "a make returning nil is a bug")

local no_config = { state = {}, options = { kubeconfig = "/nonexistent/kubeconfig" } }
like(fail_of(function() ctxstate.k8s(no_config) end), "^2: .*nonexistent/kubeconfig",
     "ctxstate.k8s: a kubeconfig that is not there is exit 2 naming it")
is(no_config.state.k8s, nil, "  and nothing is kept")

-- ---- backup: a directory with a manifest ----
local base = (os.getenv("TMPDIR") or "/tmp") .. "/runbook-params-caps." .. host.getpid()
local dir = base .. "/backups/batch-0001"
local partial = assert(backup.partial_dir(dir, clock.now))
like(partial, "^" .. dir:gsub("%p", "%%%0") .. "%.partial%-%d+T%d+Z%-1$", "partial_dir: dir.partial-TIME-1")
local saved = assert(backup.write(partial .. "/users.copy", "1\talice\n"))
local manifest = { ids = { 1 }, tables = { { name = "users", file = "users.copy", sha256 = saved.sha256 } } }
ok(backup.finish(partial, dir, manifest) == true, "finish: manifest written, verified, published")
ok(not backup.exists(partial), "  the partial name is gone")
local read = assert(backup.read_manifest(dir))
is(read.ids[1], 1, "read_manifest: the manifest back")
assert(host.write_file(base .. "/tampered", ""))
local p2 = assert(backup.partial_dir(base .. "/backups/batch-0002", clock.now))
local s2 = assert(backup.write(p2 .. "/users.copy", "x"))
local bad, berr = backup.finish(p2, base .. "/backups/batch-0002",
  { tables = { { file = "users.copy", sha256 = s2.sha256:gsub("^.", "0") == s2.sha256 and ("1" .. s2.sha256:sub(2))
                  or ("0" .. s2.sha256:sub(2)) } } })
ok(bad == nil and berr:find("does not match its checksum", 1, true) ~= nil, "finish refuses a file that does not verify")
ok(not backup.exists(base .. "/backups/batch-0002"), "  and publishes nothing")
local aside = assert(backup.set_aside(dir, "rolled-back", clock.now))
like(aside, "%.rolled%-back%-%d+T%d+Z%-1$", "set_aside: moved to dir.rolled-back-TIME-1")
ok(not backup.exists(dir) and backup.read_manifest(aside) ~= nil, "  whole, and the name free again")
done_testing()
