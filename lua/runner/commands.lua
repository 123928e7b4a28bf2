-- The commands of the contract. Each returns the exit status; failures raise util.fail.
-- Modules are loaded when a command first needs them: `runbook version` should not load the engine.
local host = require "runbook.host"
local json = require "runbook.json"
local ui = require "runner.ui"
local util = require "runbook.util"

local lazy = setmetatable({}, { __index = function(t, name)
  local module = require("runner." .. name)
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
    rows[#rows + 1] = { e.name, e.ok and e.summary or ui.style.red(e.summary) }
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

local function refuse_stale(doc, opts)
  local earlier = lazy.journal.applies_of(doc, lazy.journal.dir(opts))
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

function commands.apply(pos, opts)
  local doc = lazy.plan.load(pos[1])
  local def = lazy.loader.load(lazy.loader.find_recorded(doc.runbook, doc.runbook_source, find_opts(opts)))
  lazy.plan.check_fresh(doc, def, opts.max_age, host.now())
  check_assertions(doc, def, opts.param)
  local loaded_policy = plan_policy(doc, def, opts.policy)
  -- The lock first: an apply of this plan that is running now is "running", not "did not finish".
  -- (Libraries before the lock: a missing one stops the apply with nothing written, not even a lock.)
  if #doc.actions > 0 then lazy.engine.load_libraries() end
  local lock = #doc.actions > 0 and lazy.engine.hold_lock(doc, lazy.journal.dir(opts)) or nil
  refuse_stale(doc, opts)
  if ui.output ~= "json" then lazy.render.plan(doc, opts) end
  return lazy.engine.apply_plan(def, doc, loaded_policy, opts, lock)
end

function commands.run(pos, opts)
  if opts.inventory then
    if opts.out then util.fail(2, "run --inventory saves no plans; use plan --inventory -o DIR") end
    return for_each_target(pos, opts, function(_, def, doc, loaded_policy, target_opts)
      if opts["dry-run"] then return 0 end
      return lazy.engine.apply_plan(def, doc, loaded_policy, target_opts)
    end)
  end
  local def, doc, loaded_policy = make_plan(pos, opts)
  if opts["dry-run"] then
    ui.info("\nDry run: nothing was changed.")
    return 0
  end
  return lazy.engine.apply_plan(def, doc, loaded_policy, opts)
end

function commands.resume(pos, opts)
  local state = lazy.journal.read(lazy.journal.find(pos[1], opts))
  local doc = state.plan
  local def = lazy.loader.load(lazy.loader.find_recorded(doc.runbook, doc.runbook_source, find_opts(opts)))
  lazy.plan.check_fresh(doc, def, nil, host.now())
  return lazy.engine.resume(def, state, plan_policy(doc, def, opts.policy), opts)
end

function commands.history(pos, opts)
  return lazy.history.show(lazy.journal.dir(opts), pos[1])
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
