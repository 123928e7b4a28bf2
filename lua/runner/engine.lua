-- The engine: runs a runbook's discovery read-only, asks for confirmation, and applies a plan action
-- by action, re-checking each precondition just before acting and journaling every step.
local host = require "runbook.host"
local http = require "runbook.http"
local json = require "runbook.json"
local journal = require "runner.journal"
local params = require "runner.params"
local plan = require "runner.plan"
local policy = require "runner.policy"
local pacing = require "runner.pacing"
local sched = require "runner.sched"
local ui = require "runner.ui"
local util = require "runbook.util"

local engine = {}

-- The context every runbook function receives.
function engine.context(def, values, loaded_policy, opts)
  return {
    runbook = def.name,
    params = values,
    policy = policy.hooks(loaded_policy, def),
    options = opts.cluster or {},
    now = host.now(),          -- when this phase began: the plan judges everything against one instant
    time = host.now,           -- the clock now, for re-checks during a long apply
    state = {},
    log = function(fmt, ...) ui.verbose(select("#", ...) > 0 and fmt:format(...) or fmt) end,
    info = function(fmt, ...) ui.info(select("#", ...) > 0 and fmt:format(...) or fmt) end,
    warn = function(fmt, ...) ui.warn(select("#", ...) > 0 and fmt:format(...) or fmt) end,
    progress = ui.progress,
    progress_done = ui.progress_done,
    -- ctx.done_today(kind, target) -> list of the actions (kind, target, args) done today on target
    done_today = function(kind, target)
      return journal.done_today(opts["journal-dir"] or journal.default_dir(), def.name, kind, target)
    end,
  }
end

-- The message handler for runbook code. A message raised with error(message, 0) -- how modules
-- report the outside world from inside an iterator (a hub answering 500 while listing) -- has no
-- position and is shown as it is; a bug ("file.lua:12: attempt to index a nil value", or an error
-- raised with its position) gets the traceback its author needs.
function engine.traceback(err)
  if type(err) == "string" and not (err:match("^[^%s:]+:%d+: ") or err:match("^%[string .-%]:%d+: ")) then return err end
  return host.traceback(err)
end

-- Calls runbook code; a runbook's own error becomes a failure with its traceback.
local function call_runbook(def, what, fn, ...)
  local results = table.pack(xpcall(fn, engine.traceback, ...))
  if results[1] then return table.unpack(results, 2, results.n) end
  local err = results[2]
  if util.is_failure(err) then error(err, 0) end
  util.fail(1, "runbook %s failed while %s: %s", def.name, what, tostring(err))
end

-- plan(def, given, loaded_policy, opts) -> plan document. Nothing can change while it runs.
function engine.plan(def, given, loaded_policy, opts)
  local values, sources = params.resolve(def.params, given, policy.param_values(loaded_policy, def), def.name,
    { cwd = host.realpath("."), inventory = opts.inventory_values })
  local ctx = engine.context(def, values, loaded_policy, opts)
  ctx.phase = "plan"
  local _, refusals_before = host.phase()
  host.set_phase("plan")
  local ok, doc = pcall(function()
    -- The target first: it is where runbooks check parameters against each other, before connecting.
    local target = def.target and call_runbook(def, "naming its target", def.target, ctx) or def.name
    if def.setup then call_runbook(def, "connecting", def.setup, ctx) end
    if type(target) ~= "string" or target == "" then util.fail(1, "runbook %s named no target", def.name) end
    local builder = plan.builder(def, ctx)
    call_runbook(def, "planning", def.plan, builder)
    return plan.document(def, builder, { now = ctx.now, target = target, sources = sources, policy = loaded_policy })
  end)
  host.set_phase("readonly")
  local _, refusals_after = host.phase()
  if refusals_after > refusals_before then
    -- Even if the runbook caught the error, a plan that tried to change something is not a plan.
    util.fail(1, "runbook %s tried to change something while planning (refused, nothing was sent); " ..
      "the runbook is broken: mutations belong in action handlers", def.name)
  end
  if not ok then error(doc, 0) end
  return doc
end

-- Runs one action: re-check, then act. Returns outcome ("done"|"skipped"|"failed"), message.
local function run_one(def, ctx, action, j, results)
  local handler = def.actions[action.kind]
  results.ever_started[action.id] = true
  j:record({ type = "start", id = action.id, kind = action.kind, target = action.target })
  local function attempt()
    if handler.check then
      local fine, why = handler.check(ctx, action)
      if fine == false then return "skipped", why or "precondition no longer holds" end
      if not fine then return "failed", why or "precondition check failed" end
    end
    -- A third result is data for the journal's end line (where a backup went, and its checksum).
    -- A result of "already" means the action's end state held before it acted (a user someone else
    -- deleted): done, but counted apart, so a report never claims work it did not do.
    local result, message, data = handler.run(ctx, action)
    if type(data) ~= "table" then data = nil end
    if result == false then return "skipped", message or "skipped by the runbook", data end
    if not result then return "failed", message or "the action reported no result", data end
    return "done", type(message) == "string" and message or nil, data, result == "already" or nil
  end
  local ok, outcome, message, data, already = xpcall(attempt, engine.traceback)
  if not ok then
    if util.is_failure(outcome) then outcome = outcome.message end
    ui.verbose(tostring(outcome))
    outcome, message, data, already = "failed", tostring(outcome):match("^[^\n]*"), nil, nil
  end
  j:record({ type = "end", id = action.id, outcome = outcome, message = message, data = data, already = already })
  return outcome, message, already
end

-- The pacer of a run of actions: one at a time unless the handler says its actions may overlap;
-- then adaptive between 1 and the `concurrency` parameter, at most `max_rate` a second, unless
-- the runbook's `adaptive` parameter is false (then exactly `concurrency`). A handler with
-- round_trip(ctx) -> seconds (a request the server answers with no work) is paced to take
-- `hub_share` of the server's time (runner.pacing).
local function pacer_for(ctx, handler)
  if not handler.concurrent then return pacing.new({ max = 1, adaptive = false }) end
  local p = ctx.params
  local probe = handler.round_trip and function() return handler.round_trip(ctx) end or nil
  return pacing.new({ max = p.concurrency or handler.concurrency or 4, max_rate = p.max_rate,
                      adaptive = p.adaptive ~= false, probe = probe, share = p.hub_share })
end

-- A refusal of the credential (HTTP 401/403, Kubernetes' Forbidden) does not get better by trying the
-- next action: after PERMISSION_RUN of them in a row with the same message (the action's own target
-- taken out), the apply stops, so the operator reads the cause once rather than 200 times.
local PERMISSION_RUN = 3

local function is_permission_failure(message)
  return type(message) == "string" and (message:find("HTTP 40[13]") ~= nil or message:find("Forbidden", 1, true) ~= nil)
end

-- The message with what is particular to one action left out: its target and the paths in it.
local function failure_shape(action, message)
  local shape = message
  for _, piece in ipairs({ action.target, util.url_escape(action.target), action.target:match("[^/]+$") }) do
    if piece and #piece >= 2 then shape = util.replace_plain(shape, piece, "*") end
  end
  return (shape:gsub("(%u%u%u+) /%S*", "%1 *"))
end

-- apply(def, doc, ctx, j[, done_ids, started_earlier]) -> results. done_ids: actions finished in
-- earlier runs (resume); started_earlier: actions begun in earlier runs, finished or not.
-- results.ever_started (ids begun in any run) and results.plan_actions let on_stop judge the state.
function engine.apply(def, doc, ctx, j, done_ids, started_earlier)
  -- ctx.started_earlier(action) -> when an interrupted earlier run began this action (seconds since
  -- the epoch, to the second), or nil: a handler whose effect cannot be seen afterwards by a check
  -- (a rollout restart) uses it not to repeat that effect.
  ctx.started_earlier = function(action)
    local at = started_earlier and started_earlier[action.id]
    return type(at) == "string" and util.parse_time(at) or nil
  end
  -- The run's own backup directory, beside its journal (FILE.journal -> FILE.backup), the same for
  -- every resume of it: where handlers keep what an action is about to destroy.
  local journal_path = j.path:sub(1, 1) == "/" and j.path or (host.realpath(".") .. "/" .. j.path)
  ctx.run_name = journal_path:match("([^/]+)%.journal$") or journal_path:match("[^/]+$")
  ctx.run_backup_dir = journal_path:gsub("%.journal$", "") .. ".backup"
  local results = { done = {}, skipped = {}, failed = {}, not_run = {}, stop_reason = nil,
                    plan_actions = doc.actions, ever_started = util.shallow_copy(started_earlier or {}) }
  -- Each skip and failure is shown as it happens; successes only for short plans or with -v,
  -- so that 10,000 deletions show as a progress line, not 10,000 lines.
  -- The counter counts this run's actions: a resume of the last 15 shows n/15, not n/400.
  local total, finished = 0, 0
  for _, a in ipairs(doc.actions) do if not (done_ids and done_ids[a.id]) then total = total + 1 end end
  -- Not on a terminal (a CronJob's log), every action is named: the log is the audit trail.
  local list_done = total <= 30 or ui.verbose_level > 0 or not host.isatty(ui.output == "json" and 2 or 1)
  local refusals = { shape = nil, count = 0 } -- the current run of identical permission failures
  local function remember(action, outcome, message, already)
    local list = results[outcome]
    list[#list + 1] = { action = action, message = message, already = already }
    finished = finished + 1
    if outcome ~= "done" or list_done then
      local label = outcome == "done" and ui.style.green("done") or outcome == "skipped" and ui.style.yellow("skipped")
        or ui.style.red("FAILED")
      ui.say(string.format("  %-7s %s %s%s", label, action.kind, action.target, message and (": " .. message) or ""))
    end
    if not list_done then ui.progress("applying", finished, total) end
  end
  local function end_progress()
    if not list_done then ui.progress_done("applying", finished, total) end
  end
  local actions = doc.actions
  local i = 1
  host.set_phase("apply")
  while i <= #actions do
    local action = actions[i]
    local handler = def.actions[action.kind]
    if not handler then util.fail(2, "the plan has action kind '%s', which runbook %s does not handle", action.kind, def.name) end
    if done_ids and done_ids[action.id] then
      i = i + 1
    elseif results.stop_reason and not handler.always then
      results.not_run[#results.not_run + 1] = { action = action }
      i = i + 1
    else
      local signal = host.interrupted()
      if signal and not results.stop_reason then
        results.stop_reason, results.interrupted = "interrupted by " .. signal, true
        j:record({ type = "stop", reason = results.stop_reason })
      else
        -- A run of consecutive actions of one kind goes through the scheduler together.
        local batch = { action }
        local pacer = pacer_for(ctx, handler)
        if handler.concurrent and not results.stop_reason then
          local k = i + 1
          while k <= #actions and actions[k].kind == action.kind do
            if not (done_ids and done_ids[actions[k].id]) then batch[#batch + 1] = actions[k] end
            k = k + 1
          end
          i = k
        else
          i = i + 1
        end
        local next_index = 0
        http.observer = pacer
        sched.run({
          limit = function() return pacer:limit() end,
          next_job = function()
            if host.interrupted() or (results.stop_reason and not handler.always) then return nil end
            next_index = next_index + 1
            local a = batch[next_index]
            if not a then return nil end
            return function()
              pacer:acquire()
              return a, run_one(def, ctx, a, j, results)
            end
          end,
          on_finish = function(a, outcome, message, already)
            pacer:finished()
            remember(a, outcome, message, already)
            local shape = outcome == "failed" and is_permission_failure(message) and failure_shape(a, message) or nil
            if shape and shape == refusals.shape then
              refusals.count = refusals.count + 1
            else
              refusals.shape, refusals.count = shape, shape and 1 or 0
            end
            if results.stop_reason then return end
            if outcome == "failed" and host.interrupted() then
              -- The action failed because the operator stopped it (a wait cut short): an interruption.
              results.stop_reason = string.format("interrupted by %s during action %d (%s %s)", host.interrupted(),
                a.id, a.kind, a.target)
              results.interrupted = true
              j:record({ type = "stop", reason = results.stop_reason })
            elseif outcome == "failed" and handler.on_failure ~= "continue" then
              results.stop_reason = string.format("action %d (%s %s) failed", a.id, a.kind, a.target)
              j:record({ type = "stop", reason = results.stop_reason })
            elseif refusals.count >= PERMISSION_RUN then
              results.stop_reason = string.format("%d %s actions in a row were refused the same way (%s): the " ..
                "credential lacks a permission, and the other actions would be refused too; grant it, then resume",
                refusals.count, a.kind, message)
              j:record({ type = "stop", reason = results.stop_reason })
            end
          end,
        })
        http.observer = nil
        results.pacing = pacer.history
        for n = next_index + 1, #batch do results.not_run[#results.not_run + 1] = { action = batch[n] } end
        if host.interrupted() and not results.stop_reason then
          results.stop_reason, results.interrupted = "interrupted by " .. host.interrupted(), true
          j:record({ type = "stop", reason = results.stop_reason })
        end
      end
    end
  end
  end_progress()
  if results.stop_reason and def.on_stop then
    -- The runbook's chance to put things back when a run stops halfway (wipe-hub-db restores
    -- access when the database is consistent). Journaled, so `resume` knows it happened.
    local ok, outcome, message = xpcall(def.on_stop, engine.traceback, ctx, results)
    local text = ok and message or tostring(outcome)
    if ok and outcome then ui.info(text or "the runbook's stop handler ran") end
    if not ok or not outcome then ui.warn("after the stop: " .. (text or "nothing was put back")) end
    j:record({ type = "on_stop", outcome = ok and (outcome and "done" or "declined") or "failed", message = text })
  end
  host.set_phase("readonly")
  if not results.stop_reason then
    local already = engine.already_done(results)
    j:record({ type = "finish", done = #results.done - #already, already = #already > 0 and #already or nil,
               skipped = #results.skipped, failed = #results.failed })
  end
  return results
end

-- already_done(results) -> the done results whose end state held before they acted
function engine.already_done(results)
  local list = {}
  for _, r in ipairs(results.done) do if r.already then list[#list + 1] = r end end
  return list
end

-- Prints the outcome and returns the exit status the contract gives it.
function engine.report(def, doc, ctx, results, j)
  local already = engine.already_done(results)
  local E = ui.escape -- targets and messages come from servers and plan files
  ui.say("")
  ui.say(string.format("%s on %s: %d done, %s%d skipped, %d failed%s.", E(doc.runbook), E(doc.target), #results.done - #already,
    #already > 0 and (#already .. " already done, ") or "", #results.skipped, #results.failed,
    #results.not_run > 0 and (", " .. #results.not_run .. " not run") or ""))
  if #results.skipped > 0 then
    ui.say("Skipped because their precondition no longer held:")
    for _, r in ipairs(results.skipped) do ui.say("  " .. E(r.action.target) .. ": " .. E(r.message or "")) end
  end
  if #results.failed > 0 then
    -- Failures that say the same thing (a refused credential, a server down) are said once, with
    -- the targets they hit, so the cause is not lost among 200 copies of it.
    ui.say("Failed:")
    local groups, order = {}, {}
    for _, r in ipairs(results.failed) do
      local shape = failure_shape(r.action, r.message or "")
      if not groups[shape] then groups[shape] = {}; order[#order + 1] = shape end
      table.insert(groups[shape], r)
    end
    for _, shape in ipairs(order) do
      local list = groups[shape]
      if #list == 1 then
        ui.say("  " .. E(list[1].action.target) .. ": " .. E(list[1].message or ""))
      else
        local names = {}
        for n = 1, math.min(#list, 10) do names[n] = E(list[n].action.target) end
        ui.say(string.format("  %d actions: %s", #list, E(shape)))
        ui.say("    " .. table.concat(names, ", ") .. (#list > 10 and string.format(", and %d more", #list - 10) or ""))
      end
    end
  end
  if def.report then
    local ok, lines = pcall(def.report, ctx, results)
    if ok and type(lines) == "table" then for _, line in ipairs(lines) do ui.say(tostring(line)) end end
    if not ok then ui.warn("the runbook's report failed: " .. tostring(lines)) end
  end
  local code = 0
  if results.stop_reason and results.interrupted then
    -- Nothing went wrong: the operator (or a signal) stopped it. Say how to finish.
    ui.error(string.format("stopped: %s. Nothing failed; the journal %s records where it stopped; to finish " ..
      "the job, run: runbook resume %s",
      E(results.stop_reason), j.path, j.path))
    code = 1
  elseif results.stop_reason then
    ui.error(string.format("stopped: %s. The journal %s records where; after fixing the cause, run: runbook resume %s",
      E(results.stop_reason), j.path, j.path))
    code = 1
  elseif #results.failed > 0 then
    ui.error(string.format("%d action%s failed; journal: %s", #results.failed, #results.failed == 1 and "" or "s", j.path))
    code = 1
  elseif #results.skipped > 0 then
    code = 4
  end
  if ui.output == "json" then
    local function list(items)
      local out = json.array()
      for _, r in ipairs(items) do
        out[#out + 1] = { id = r.action.id, kind = r.action.kind, target = r.action.target, message = r.message }
      end
      return out
    end
    local done_here = {}
    for _, r in ipairs(results.done) do if not r.already then done_here[#done_here + 1] = r end end
    ui.emit_json(json.encode({ runbook = doc.runbook, target = doc.target, journal = j.path,
      done = list(done_here), already_done = list(already), skipped = list(results.skipped), failed = list(results.failed),
      not_run = list(results.not_run), stopped = results.stop_reason, exit_status = code }))
  end
  return code
end

-- ---- the run: one sequence for apply, run and resume ----

-- An apply opens the libraries its actions may need before the first one, so a missing library
-- stops it with nothing done rather than in the middle (where the call would end the process).
function engine.load_libraries()
  local ok, err = host.load_libraries()
  if not ok then util.fail(1, "%s", err) end
end

-- One apply or resume at a time per runbook and target on this machine (this journal directory):
-- two at once would each carry out the same actions. The lock goes with the process.
function engine.hold_lock(doc, journal_directory)
  local dir = journal_directory .. "/locks"
  local made, err = host.mkdirs(dir, tonumber("700", 8))
  if not made then util.fail(1, "cannot create the lock directory: %s", err) end
  local path = string.format("%s/%s-%s.lock", dir, doc.runbook, host.sha256(doc.target):sub(1, 16))
  local lock, holder, held = require("runbook.lock_core").lock(path)
  if lock then return lock end
  if held then
    util.fail(1, "another %s on %s is running (%s; lock %s): wait for it to finish, or stop it first",
      doc.runbook, doc.target, holder, path)
  end
  util.fail(1, "%s", holder)
end

-- count_pending(doc[, done_ids]) -> how many of the plan's actions are not among done_ids
function engine.count_pending(doc, done_ids)
  local n = 0
  for _, a in ipairs(doc.actions) do if not done_ids or not done_ids[a.id] then n = n + 1 end end
  return n
end

-- Cluster options (--kubeconfig, --context, -n) are the plan's: given again to apply or resume, they
-- must be the same, or the plan is for another target.
local function plan_cluster_options(doc, opts)
  local planned = doc.options or {}
  for _, key in ipairs({ "kubeconfig", "context", "namespace" }) do
    local given = opts.cluster[key]
    if given ~= nil and given ~= planned[key] then
      util.fail(2, "the plan was made with --%s %s, not %s; make a new plan for that", key,
        tostring(planned[key] or "(none)"), given)
    end
  end
  return planned
end

-- The plan's parameters, with the secret ones (never saved in plans) read again from their
-- environment variable or the policy, as when the plan was made.
local function plan_params(def, doc, loaded_policy)
  local values = util.shallow_copy(doc.params)
  local secret_specs = {}
  for _, spec in ipairs(def.params) do if spec.secret then secret_specs[#secret_specs + 1] = spec end end
  if #secret_specs > 0 then
    local again = params.resolve(secret_specs, {}, policy.param_values(loaded_policy, def), def.name, {})
    for k, v in pairs(again) do values[k] = v end
  end
  return values
end

local function apply_context(def, doc, loaded_policy, opts)
  opts.cluster = plan_cluster_options(doc, opts)
  local values = params.check_planned(def.params, plan_params(def, doc, loaded_policy), "the plan")
  local ctx = engine.context(def, values, loaded_policy, opts)
  ctx.phase = "apply"
  ctx.plan_time = doc.created_unix
  ctx.plan_facts = doc.facts
  return ctx
end

-- The target is what the parameters name, not what the plan file says: a plan whose stored target
-- differs from the one its parameters give (edited, checksum recomputed) is refused before anything
-- is shown or sent.
local function check_target(def, doc, ctx)
  if not def.target then return end
  local ok, target = xpcall(def.target, engine.traceback, ctx)
  if not ok then
    if util.is_failure(target) then error(target, 0) end
    util.fail(2, "the plan's parameters do not name a target runbook %s accepts: %s", def.name, tostring(target))
  end
  if target ~= doc.target then
    util.fail(2, "the plan says its target is %s, but its parameters name %s: the plan was edited; make a new plan",
      tostring(doc.target), tostring(target))
  end
end

local function run_setup(def, ctx)
  if not def.setup then return end
  host.set_phase("apply")
  local ok, err = xpcall(def.setup, engine.traceback, ctx)
  host.set_phase("readonly")
  if not ok then
    if util.is_failure(err) then error(err, 0) end
    util.fail(1, "runbook %s failed while connecting: %s", def.name, tostring(err))
  end
end

-- Exit 4 (some actions skipped because their target changed) counts as success with --skipped-ok.
local function final_status(code, opts)
  if code == 4 and opts["skipped-ok"] then return 0 end
  return code
end

-- carry_out(def, doc, loaded_policy, opts, run) -> exit status: the one sequence of every apply --
-- check, lock, confirm, journal, connect, apply, report. run.pending: how many actions it will carry
-- out; run.lock: held already by the caller, or nil; run.resume: nil for a new journal in the journal
-- directory, or { state = the journal as read, done_ids = actions not to run again } to go on in it.
local function carry_out(def, doc, loaded_policy, opts, run)
  local resume = run.resume
  engine.load_libraries()
  local ctx = apply_context(def, doc, loaded_policy, opts)
  check_target(def, doc, ctx)
  local lock = run.lock or engine.hold_lock(doc, resume and journal.dir_of(resume.state.path) or journal.dir(opts))
  ui.show_access(def, ctx)
  ui.confirm(doc, run.pending, opts)
  host.trap_signals()
  local j
  if resume then
    j = journal.resume(resume.state)
  else
    j = journal.create(journal.dir(opts), doc)
    ui.info("Journal: " .. j.path)
  end
  local ok, err = pcall(run_setup, def, ctx)
  if not ok then
    j:record({ type = "stop", reason = "setup failed: " .. tostring(err.message or err) })
    error(err, 0)
  end
  local results = engine.apply(def, doc, ctx, j, resume and resume.done_ids, resume and resume.state.started)
  local code = engine.report(def, doc, ctx, results, j)
  j:close()
  lock:release()
  return final_status(code, opts)
end

-- apply_plan(def, doc, loaded_policy, opts[, lock]) -> exit status: a new apply of the plan (apply, run),
-- journaled in the journal directory. lock: held already by the caller (apply takes it before it looks
-- for earlier applies of the plan).
function engine.apply_plan(def, doc, loaded_policy, opts, lock)
  local pending = engine.count_pending(doc)
  if pending == 0 then
    ui.info("Nothing to do: the plan has no actions.")
    return 0
  end
  return carry_out(def, doc, loaded_policy, opts, { pending = pending, lock = lock })
end

-- resume_state(def, state) -> done_ids, earlier: the actions of an interrupted apply (its journal read
-- as state) not to run again, and how many of those were done and skipped. Finished actions are not
-- repeated, except those that converge on a state an on_stop handler may have undone (wipe-hub-db's
-- "access is cut"), and only while an action after them still has to run: a run killed after its
-- last action has nothing that needs the state again.
function engine.resume_state(def, state)
  local doc = state.plan
  local done_ids, earlier = {}, { done = 0, skipped = 0 }
  local last_pending = 0
  for id, event in pairs(state.outcomes) do
    if event.outcome ~= "failed" then done_ids[id] = true end
  end
  for id in ipairs(doc.actions) do
    if not done_ids[id] then last_pending = id end
  end
  for id in pairs(done_ids) do
    local action = doc.actions[id]
    local handler = action and def.actions[action.kind]
    local repeats = handler and handler.repeat_on_resume
    if type(repeats) == "function" then repeats = repeats(action) end
    if repeats and id < last_pending then
      done_ids[id] = nil
    else
      local outcome = state.outcomes[id].outcome
      earlier[outcome] = (earlier[outcome] or 0) + 1
    end
  end
  return done_ids, earlier
end

-- resume(def, state, loaded_policy, opts) -> exit status: finishes the interrupted apply whose journal
-- was read as state, in that journal.
function engine.resume(def, state, loaded_policy, opts)
  local doc = state.plan
  if state.torn then ui.warn("the journal's last line was torn (the process died while writing it); it is ignored") end
  if state.unverified then
    ui.warn("the journal was written by an older runbook and holds no digest of its plan: its plan cannot be checked"
      .. " for edits")
  end
  local done_ids, earlier = engine.resume_state(def, state)
  for id in pairs(state.started) do
    if not state.outcomes[id] then
      local a = doc.actions[id]
      ui.info(string.format("Action %d (%s %s) was under way when the apply stopped; it is checked again and finished.",
        id, a and a.kind or "?", a and a.target or "?"))
    end
  end
  local pending = engine.count_pending(doc, done_ids)
  ui.info(string.format("Resuming %s on %s: %d of %d actions finished earlier (%d done, %d skipped), %d to go.",
    doc.runbook, doc.target, #doc.actions - pending, #doc.actions, earlier.done, earlier.skipped, pending))
  if pending == 0 then
    if not state.finished then
      -- Killed after its last action but before it could say so: the journal is the record an
      -- operator audits later, so it gets the ending the run did not write.
      local j = journal.resume(state)
      j:record({ type = "finish", done = earlier.done, skipped = earlier.skipped, failed = 0 })
      j:close()
      ui.info("Nothing left to do; the journal now records the run as finished.")
    else
      ui.info("Nothing left to do.")
    end
    return 0
  end
  return carry_out(def, doc, loaded_policy, opts,
    { pending = pending, resume = { state = state, done_ids = done_ids } })
end

return engine
