-- The commands of the contract. Each returns the exit status; failures raise util.fail.
-- Modules are loaded when a command first needs them: `runbook version` should not load the engine.
local host = require "runbook.host"
local json = require "runbook.json"
local ui = require "runbook.ui"
local util = require "runbook.util"

local lazy = setmetatable({}, { __index = function(t, name)
  local module = require("runbook." .. name)
  rawset(t, name, module)
  return module
end })

local commands = {}

local function find_opts(opts)
  return { runbook_path = opts["runbook-path"] }
end

local function load_runbook(name, opts, load_opts)
  return lazy.loader.load(lazy.loader.find(name, find_opts(opts)), load_opts)
end

-- libcurl, libpq and OpenSSL are opened on first use (src/dynlib.h), so `version` opens them to ask;
-- one that cannot be opened is reported, and the exit status says the installation is broken.
function commands.version()
  local v, problems = host.library_versions()
  for _, message in ipairs(problems) do ui.error(message) end
  local status = #problems == 0 and 0 or 1
  if ui.output == "json" then
    v.runbook = host.version()
    ui.emit_json(json.encode(v))
    return status
  end
  local missing = "(cannot be loaded)"
  ui.say("runbook " .. host.version())
  ui.table({ { "  Lua", v.lua }, { "  libcurl", v.libcurl or missing }, { "  libpq", v.libpq or missing },
             { "  OpenSSL", v.openssl or missing }, { "  libyaml", v.libyaml } })
  return status
end

-- An apply opens the libraries its actions may need before the first one, so a missing library
-- stops it with nothing done rather than in the middle (where the call would end the process).
local function load_libraries()
  local ok, err = host.load_libraries()
  if not ok then util.fail(1, "%s", err) end
end

function commands.list(_, opts)
  local entries = {}
  for _, item in ipairs(lazy.loader.list(find_opts(opts))) do
    local ok, def = pcall(load_runbook, item.dir and (item.dir .. "/" .. item.name .. ".lua") or item.name, opts,
                          { checksum = false })
    entries[#entries + 1] = { name = item.name, summary = ok and def.summary or ("cannot be loaded: " .. tostring(def.message or def)),
                              source = item.dir and (item.dir .. "/" .. item.name .. ".lua") or "built-in", ok = ok }
  end
  if ui.output == "json" then
    local out = json.array()
    for _, e in ipairs(entries) do out[#out + 1] = { name = e.name, summary = e.summary, source = e.source } end
    ui.emit_json(json.encode(out))
    return 0
  end
  local rows = {}
  for _, e in ipairs(entries) do
    rows[#rows + 1] = { e.name, e.ok and e.summary or ui.style.red(e.summary) .. (e.source ~= "built-in" and "" or "") }
  end
  ui.table(rows)
  return 0
end

local function default_text(spec)
  if spec.default == nil then return spec.required and "(required)" or "" end
  if type(spec.default) == "table" then return table.concat(spec.default, ",") end
  return tostring(spec.default)
end

-- A saved plan is shown as apply will show it (terraform show): text, or the document itself.
local function show_plan_file(path, opts)
  local text, err = host.read_file(path)
  if not text then util.fail(2, "cannot read plan file %s", err) end
  local doc = lazy.plan.parse(text, path) -- verified: a damaged or edited plan is refused here too
  if ui.output == "json" then
    host.write(1, text) -- the file as it is, checksum and all
  else
    lazy.render.plan(doc, opts)
  end
  return 0
end

local function is_plan_file(name)
  if name:match("%.lua$") then return false end
  if name:match("%.json$") then return true end
  local st = name:find("/", 1, true) and host.stat(name)
  return st ~= nil and st ~= false and st.type == "file"
end

function commands.show(pos, opts)
  if is_plan_file(pos[1]) then return show_plan_file(pos[1], opts) end
  local def = load_runbook(pos[1], opts)
  if ui.output == "json" then
    local ps = json.array()
    for _, spec in ipairs(def.params) do
      ps[#ps + 1] = { name = spec.name, type = spec.type, default = spec.default, required = spec.required or false,
                      env = spec.env, help = spec.help, min = spec.min, max = spec.max }
    end
    local kinds = util.sorted_keys(def.actions)
    ui.emit_json(json.encode({ name = def.name, summary = def.summary, description = def.description,
      source = def.source, sha256 = def.sha256, params = ps, policy = def.policy, steps = json.array(def.steps),
      actions = json.array(kinds) }))
    return 0
  end
  local s = ui.style
  ui.say(s.bold(def.name) .. ": " .. def.summary)
  ui.say("  source " .. def.source .. ", sha256 " .. def.sha256:sub(1, 12))
  if def.description then ui.say("") ui.say(util.trim(def.description)) end
  ui.say("")
  ui.say(s.bold("Parameters") .. " (-p NAME=VALUE):")
  local rows = { { "  NAME", "TYPE", "DEFAULT", "HELP" } }
  for _, spec in ipairs(def.params) do
    local help = spec.help or ""
    if spec.min or spec.max then help = help .. string.format(" [%s..%s]", spec.min or "", spec.max or "") end
    if spec.env then help = help .. " [env " .. spec.env .. "]" end
    rows[#rows + 1] = { "  " .. spec.name, spec.type, default_text(spec), help }
  end
  ui.table(rows)
  local keys = util.sorted_keys(def.policy)
  if #keys > 0 then
    ui.say("")
    ui.say(s.bold("Policy file") .. " (--policy FILE) may set any parameter above and:")
    for _, k in ipairs(keys) do ui.say("  " .. k .. " (" .. def.policy[k] .. ")") end
  end
  if #def.steps > 0 then
    ui.say("")
    ui.say(s.bold("Steps:"))
    for i, step in ipairs(def.steps) do ui.say(string.format("  %d. %s", i, step)) end
  end
  ui.say("")
  ui.say(s.bold("Action kinds: ") .. table.concat(util.sorted_keys(def.actions), ", "))
  return 0
end

local function print_plan(doc, opts)
  if ui.output == "json" then lazy.plan.print(doc) else lazy.render.plan(doc, opts) end
end

local function make_plan(pos, opts)
  local def = load_runbook(pos[1], opts)
  local loaded_policy = opts.policy and lazy.policy.load(opts.policy, def) or nil
  local given = lazy.params.parse_assignments(def.params, opts.param, def.name)
  local doc = lazy.engine.plan(def, given, loaded_policy, opts)
  print_plan(doc, opts)
  if opts.out then
    lazy.plan.save(doc, opts.out)
    ui.info(string.format("\nPlan saved to %s. Apply it with: runbook apply %s", opts.out, opts.out))
  end
  return def, doc, loaded_policy
end

-- ---- inventories: the same command for every target of a site ----

local SEVERITY = { [0] = 0, [4] = 1, [3] = 2, [2] = 3, [1] = 4 } -- which exit status wins the summary

-- Plans each target of the inventory and calls act(def, doc, loaded_policy, target_opts) -> status.
-- One target's failure does not stop the others; a summary ends the run.
local function for_each_target(pos, opts, act)
  local def = load_runbook(pos[1], opts)
  local targets = lazy.inventory.load(opts.inventory, def)
  for _, target in ipairs(targets) do
    -- Which of two policies should decide for this hub is not ours to guess: one may exclude staff.
    if opts.policy and target.policy_path then
      util.fail(2, "target %s of the inventory names its own policy file (%s) and --policy names %s; " ..
        "--policy is for targets that name none: drop it, or the target's policy in the inventory",
        target.name, target.policy_path, opts.policy)
    end
  end
  local given = lazy.params.parse_assignments(def.params, opts.param, def.name)
  local rows, worst = { { "TARGET", "ACTIONS", "RESULT" } }, 0
  for _, target in ipairs(targets) do
    ui.say("")
    ui.say(ui.style.bold("=== " .. target.name .. " ==="))
    local actions = "-"
    local ok, code = pcall(function()
      local path = target.policy_path or opts.policy
      local loaded_policy = path and lazy.policy.load(path, def) or nil
      local target_opts = util.shallow_copy(opts)
      target_opts.inventory_values = target.values
      local doc = lazy.engine.plan(def, given, loaded_policy, target_opts)
      actions = tostring(#doc.actions)
      print_plan(doc, opts)
      return act(target, def, doc, loaded_policy, target_opts)
    end)
    if not ok then
      if util.is_failure(code) then
        ui.error(target.name .. ": " .. code.message)
        code = code.code
      else
        ui.error(target.name .. ": internal error: " .. tostring(code))
        code = 1
      end
    end
    rows[#rows + 1] = { target.name, actions, code == 0 and "ok" or ("exit " .. code) }
    if SEVERITY[code] > SEVERITY[worst] then worst = code end
  end
  ui.say("")
  ui.say(ui.style.bold(string.format("%s on %d targets:", def.name, #targets)))
  ui.table(rows, "  ")
  return worst
end

function commands.plan(pos, opts)
  if opts.inventory then
    if opts.out then
      local ok, err = host.mkdirs(opts.out, tonumber("700", 8))
      if not ok then util.fail(1, "cannot create the plan directory: %s", err) end
    end
    local pending = false
    local worst = for_each_target(pos, opts, function(target, _, doc)
      if opts.out then
        local path = opts.out .. "/" .. target.name .. ".json"
        lazy.plan.save(doc, path)
        ui.info("Plan saved to " .. path)
      end
      pending = pending or #doc.actions > 0
      return 0
    end)
    if opts["detailed-exitcode"] then
      if worst ~= 0 then return 1 end
      return pending and 2 or 0
    end
    return worst
  end
  local _, doc = make_plan(pos, opts)
  if opts["detailed-exitcode"] and #doc.actions > 0 then return 2 end
  return 0
end

-- The policy a plan was made with, unchanged; or none if the plan had none.
local function plan_policy(doc, def, given_path)
  if not doc.policy then
    if given_path then util.fail(2, "the plan was made without a policy file; make a new plan with --policy") end
    return nil
  end
  local loaded = lazy.policy.load(given_path or doc.policy.path, def)
  if loaded.sha256 ~= doc.policy.sha256 then
    util.fail(2, "policy file %s changed since the plan was made; make a new plan", loaded.path)
  end
  return loaded
end

-- Parameters given to apply are assertions: the plan must be for exactly that target.
local function check_assertions(doc, def, assignments)
  local given = lazy.params.parse_assignments(def.params, assignments, def.name)
  for name, value in pairs(given) do
    if json.encode(doc.params[name]) ~= json.encode(value) then
      util.fail(2, "the plan is for %s=%s, not %s; make a new plan for that", name, json.encode(doc.params[name]),
        json.encode(value))
    end
  end
end

local function journal_dir(opts)
  return opts["journal-dir"] or lazy.journal.default_dir()
end

local function count_pending(doc, done_ids)
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
    local again = lazy.params.resolve(secret_specs, {}, lazy.policy.param_values(loaded_policy, def), def.name, {})
    for k, v in pairs(again) do values[k] = v end
  end
  return values
end

local function apply_context(def, doc, loaded_policy, opts)
  opts.cluster = plan_cluster_options(doc, opts)
  local values = lazy.params.check_planned(def.params, plan_params(def, doc, loaded_policy), "the plan")
  local ctx = lazy.engine.context(def, values, loaded_policy, opts)
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
  local ok, target = xpcall(def.target, lazy.engine.traceback, ctx)
  if not ok then
    if util.is_failure(target) then error(target, 0) end
    util.fail(2, "the plan's parameters do not name a target runbook %s accepts: %s", def.name, tostring(target))
  end
  if target ~= doc.target then
    util.fail(2, "the plan says its target is %s, but its parameters name %s: the plan was edited; make a new plan",
      tostring(doc.target), tostring(target))
  end
end

-- What the confirmation must let the operator check: where runbook will connect and where each
-- credential comes from (parameters that name URLs, files and the Kubernetes selection).
local function show_access(def, ctx)
  local lines = {}
  for _, spec in ipairs(def.params) do
    local value = ctx.params[spec.name]
    if spec.type == "path" or spec.name == "hub" or spec.name == "gitlab" or spec.name:match("url$") then
      if type(value) == "string" and value ~= "" then
        lines[#lines + 1] = string.format("  %s: %s", spec.name, util.redact_url(value))
      elseif spec.name == "token_file" then
        lines[#lines + 1] = "  token_file: none (the token comes from the environment)"
      end
    end
  end
  for _, key in ipairs({ "kubeconfig", "context", "namespace" }) do
    if ctx.options[key] then lines[#lines + 1] = string.format("  --%s: %s", key, ctx.options[key]) end
  end
  if #lines > 0 then
    ui.info("Connecting with:")
    for _, line in ipairs(lines) do ui.info(line) end
  end
end

-- One apply or resume at a time per runbook and target on this machine (this journal directory):
-- two at once would each carry out the same actions. The lock goes with the process.
local function hold_lock(doc, journal_directory)
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

local function run_setup(def, ctx)
  if not def.setup then return end
  host.set_phase("apply")
  local ok, err = xpcall(def.setup, lazy.engine.traceback, ctx)
  host.set_phase("readonly")
  if not ok then
    if util.is_failure(err) then error(err, 0) end
    util.fail(1, "runbook %s failed while connecting: %s", def.name, tostring(err))
  end
end

-- The journals in dir of an apply of exactly this plan (same digest), newest last: a saved plan is
-- applied once, like terraform's ("Saved plan is stale"). Only journals of the plan's runbook written
-- since the plan was made are read.
local function earlier_applies(doc, dir)
  local digest = lazy.journal.plan_digest(doc)
  local found = {}
  local prefix = doc.runbook .. "-"
  for _, file in ipairs(host.list_dir(dir) or {}) do
    local path = dir .. "/" .. file
    local st = util.starts_with(file, prefix) and file:match("%.journal$") and host.stat(path)
    if st and st.type == "file" and st.mtime >= doc.created_unix then
      local ok, state = pcall(lazy.journal.read, path)
      if ok and state.plan and lazy.journal.plan_digest(state.plan) == digest then found[#found + 1] = state end
    end
  end
  table.sort(found, function(a, b) return a.path < b.path end)
  return found
end

local function refuse_stale(doc, opts)
  local earlier = earlier_applies(doc, journal_dir(opts))
  local last = earlier[#earlier]
  if not last then return end
  local how = last.finished and "was applied already" or "was begun already and did not finish"
  local advice = last.finished and "make a new plan (runbook plan ...) to see what is left to do"
    or "finish it with: runbook resume " .. last.path
  if opts.force then
    ui.warn(string.format("this plan %s (journal %s); applying it again because of --force", how, last.path))
    return
  end
  util.fail(2, "this plan %s (journal %s): a saved plan is applied once; %s, or pass --force to apply it again",
    how, last.path, advice)
end

-- Exit 4 (some actions skipped because their target changed) counts as success with --skipped-ok.
local function final_status(code, opts)
  if code == 4 and opts["skipped-ok"] then return 0 end
  return code
end

-- lock: held already by the caller (apply takes it before it looks for earlier applies of the plan).
local function apply_document(def, doc, loaded_policy, opts, lock)
  local pending = count_pending(doc)
  if pending == 0 then
    ui.info("Nothing to do: the plan has no actions.")
    return 0
  end
  load_libraries()
  local ctx = apply_context(def, doc, loaded_policy, opts)
  check_target(def, doc, ctx)
  lock = lock or hold_lock(doc, journal_dir(opts))
  show_access(def, ctx)
  lazy.engine.confirm(doc, pending, opts)
  host.trap_signals()
  local j = lazy.journal.create(journal_dir(opts), doc)
  ui.info("Journal: " .. j.path)
  local ok, err = pcall(run_setup, def, ctx)
  if not ok then
    j:record({ type = "stop", reason = "setup failed: " .. tostring(err.message or err) })
    error(err, 0)
  end
  local results = lazy.engine.apply(def, doc, ctx, j)
  local code = lazy.engine.report(def, doc, ctx, results, j)
  j:close()
  lock:release()
  return final_status(code, opts)
end

function commands.apply(pos, opts)
  local doc = lazy.plan.load(pos[1])
  local def = lazy.loader.load(lazy.loader.find_recorded(doc.runbook, doc.runbook_source, find_opts(opts)))
  lazy.plan.check_fresh(doc, def, opts.max_age, host.now())
  check_assertions(doc, def, opts.param)
  local loaded_policy = plan_policy(doc, def, opts.policy)
  -- The lock first: an apply of this plan that is running now is "running", not "did not finish".
  -- (Libraries before the lock: a missing one stops the apply with nothing written, not even a lock.)
  if #doc.actions > 0 then load_libraries() end
  local lock = #doc.actions > 0 and hold_lock(doc, journal_dir(opts)) or nil
  refuse_stale(doc, opts)
  if ui.output ~= "json" then lazy.render.plan(doc, opts) end
  return apply_document(def, doc, loaded_policy, opts, lock)
end

function commands.run(pos, opts)
  if opts.inventory then
    if opts.out then util.fail(2, "run --inventory saves no plans; use plan --inventory -o DIR") end
    return for_each_target(pos, opts, function(_, def, doc, loaded_policy, target_opts)
      if opts["dry-run"] then return 0 end
      return apply_document(def, doc, loaded_policy, target_opts)
    end)
  end
  local def, doc, loaded_policy = make_plan(pos, opts)
  if opts["dry-run"] then
    ui.info("\nDry run: nothing was changed.")
    return 0
  end
  return apply_document(def, doc, loaded_policy, opts)
end

-- A journal named without a directory that is not in the working directory is looked up in the
-- journal directory, with or without its .journal suffix (what `runbook history` prints).
local function find_journal(name, opts)
  if name:find("/", 1, true) or host.stat(name, true) then return name end
  local dir = journal_dir(opts)
  for _, candidate in ipairs({ dir .. "/" .. name, dir .. "/" .. name .. ".journal" }) do
    if host.stat(candidate, true) then return candidate end
  end
  return name
end

function commands.resume(pos, opts)
  local path = find_journal(pos[1], opts)
  local state = lazy.journal.read(path)
  local doc = state.plan
  local def = lazy.loader.load(lazy.loader.find_recorded(doc.runbook, doc.runbook_source, find_opts(opts)))
  lazy.plan.check_fresh(doc, def, nil, host.now())
  local loaded_policy = plan_policy(doc, def, opts.policy)
  if state.torn then ui.warn("the journal's last line was torn (the process died while writing it); it is ignored") end
  if state.unverified then
    ui.warn("the journal was written by an older runbook and holds no digest of its plan: its plan cannot be checked"
      .. " for edits")
  end
  -- Finished actions are not repeated, except those that converge on a state an on_stop handler may
  -- have undone (wipe-hub-db's "access is cut"), and only while an action after them still has to
  -- run: a run killed after its last action has nothing that needs the state again.
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
  for id in pairs(state.started) do
    if not state.outcomes[id] then
      local a = doc.actions[id]
      ui.info(string.format("Action %d (%s %s) was under way when the apply stopped; it is checked again and finished.",
        id, a and a.kind or "?", a and a.target or "?"))
    end
  end
  local pending = count_pending(doc, done_ids)
  ui.info(string.format("Resuming %s on %s: %d of %d actions finished earlier (%d done, %d skipped), %d to go.",
    doc.runbook, doc.target, #doc.actions - pending, #doc.actions, earlier.done, earlier.skipped, pending))
  if pending == 0 then
    if not state.finished then
      -- Killed after its last action but before it could say so: the journal is the record an
      -- operator audits later, so it gets the ending the run did not write.
      lazy.journal.repair(state)
      local j = lazy.journal.reopen(path)
      j:record({ type = "resume", pid = host.getpid() })
      j:record({ type = "finish", done = earlier.done, skipped = earlier.skipped, failed = 0 })
      j:close()
      ui.info("Nothing left to do; the journal now records the run as finished.")
    else
      ui.info("Nothing left to do.")
    end
    return 0
  end
  load_libraries()
  local ctx = apply_context(def, doc, loaded_policy, opts)
  check_target(def, doc, ctx)
  local lock = hold_lock(doc, path:match("^(.*)/[^/]*$") or ".")
  show_access(def, ctx)
  lazy.engine.confirm(doc, pending, opts)
  host.trap_signals()
  lazy.journal.repair(state)
  local j = lazy.journal.reopen(path)
  j:record({ type = "resume", pid = host.getpid() })
  local ok, err = pcall(run_setup, def, ctx)
  if not ok then
    j:record({ type = "stop", reason = "setup failed: " .. tostring(err.message or err) })
    error(err, 0)
  end
  local results = lazy.engine.apply(def, doc, ctx, j, done_ids, state.started)
  local code = lazy.engine.report(def, doc, ctx, results, j)
  j:close()
  lock:release()
  return final_status(code, opts)
end

function commands.history(pos, opts)
  return lazy.history.show(journal_dir(opts), pos[1])
end

function commands.exec(pos, opts)
  local path = pos[1]
  local text, err = host.read_file(path)
  if not text then util.fail(2, "cannot read script %s", err) end
  local env = lazy.sandbox.runbook_env(path:match("[^/]+$"))
  local args = { n = #pos - 1 }
  for i = 2, #pos do args[i - 1] = pos[i] end
  rawset(env, "arg", args)
  -- The command line's Kubernetes selection, as runbooks get it in ctx.options: k8s.connect(options)
  -- honours --kubeconfig, --context and -n the way kubectl does.
  rawset(env, "options", util.shallow_copy(opts.cluster or {}))
  local chunk, syntax = load(text, "@" .. path, "t", env)
  if not chunk then util.fail(2, "script has a syntax error: %s", syntax) end
  host.set_phase(opts.write and "write" or "readonly")
  local ok, result = xpcall(chunk, lazy.engine.traceback, table.unpack(args, 1, args.n))
  host.set_phase("readonly")
  if not ok then
    if util.is_failure(result) then error(result, 0) end
    util.fail(1, "script %s failed: %s", path, tostring(result))
  end
  if math.type(result) == "integer" then return result end
  return 0
end

return commands
