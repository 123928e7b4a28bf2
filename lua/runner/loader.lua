-- Finds runbooks (a file path, the site's directories, then the ones built into the binary), loads
-- each into its own sandbox and checks its declaration, so a broken runbook fails with file:line
-- before anything runs.
local host = require "runbook.host"
local params = require "runner.params"
local sandbox = require "runner.sandbox"
local util = require "runbook.util"

local loader = {}

local function site_dirs(opts)
  local dirs = {}
  for _, d in ipairs(opts.runbook_path or {}) do dirs[#dirs + 1] = d end
  for _, d in ipairs(util.split(os.getenv("RUNBOOK_PATH") or "", ":")) do
    if d ~= "" then dirs[#dirs + 1] = d end
  end
  return dirs
end

local function from_file(path, name)
  local text, err = host.read_file(path)
  if not text then util.fail(2, "cannot read runbook %s", err) end
  local abs = host.realpath(path) or path
  return { name = name, text = text, source = abs, chunkname = "@" .. path }
end

local embedded_cache
local function embedded()
  embedded_cache = embedded_cache or host.embedded_runbooks()
  return embedded_cache
end

-- find(name, opts) -> {name, text, source, chunkname}
function loader.find(name, opts)
  opts = opts or {}
  if name:find("/", 1, true) or name:match("%.lua$") then
    local base = name:match("([^/]+)%.lua$") or name:match("([^/]+)$")
    return from_file(name, base)
  end
  if not name:match("^[%w][%w%._-]*$") then util.fail(2, "'%s' is not a runbook name", name) end
  for _, dir in ipairs(site_dirs(opts)) do
    local path = dir .. "/" .. name .. ".lua"
    if host.stat(path) then return from_file(path, name) end
  end
  local text = embedded()[name]
  if text then
    return { name = name, text = text, source = "built-in", chunkname = "@runbooks/" .. name .. ".lua" }
  end
  local names = {}
  for _, item in ipairs(loader.list(opts)) do names[#names + 1] = item.name end
  util.fail(2, "unknown runbook '%s'%s; `runbook list` shows the available ones", name, util.suggest(name, names))
end

-- Finds a runbook again from what a plan recorded, so apply uses the very file the plan was made with.
function loader.find_recorded(name, source, opts)
  if source == "built-in" then
    local text = embedded()[name]
    if not text then util.fail(2, "the plan was made with the built-in runbook '%s', which this runbook does not have", name) end
    return { name = name, text = text, source = source, chunkname = "@runbooks/" .. name .. ".lua" }
  end
  if type(source) ~= "string" or source:sub(1, 1) ~= "/" then
    util.fail(2, "the plan names no usable runbook source")
  end
  if not host.stat(source) then util.fail(2, "the plan's runbook %s no longer exists", source) end
  return from_file(source, name)
end

local function check_actions(def)
  if type(def.actions) ~= "table" then return "'actions' must map each action kind to its handlers" end
  for kind, handler in pairs(def.actions) do
    if type(kind) ~= "string" or type(handler) ~= "table" then
      return "'actions' must map action kinds (strings) to handler tables"
    end
    if type(handler.run) ~= "function" then return "action '" .. kind .. "' needs a run function" end
    if handler.check ~= nil and type(handler.check) ~= "function" then
      return "action '" .. kind .. "': check must be a function"
    end
    local repeats = handler.repeat_on_resume
    if repeats ~= nil and type(repeats) ~= "boolean" and type(repeats) ~= "function" then
      return "action '" .. kind .. "': repeat_on_resume must be true, false or a function(action)"
    end
    if handler.on_failure ~= nil and handler.on_failure ~= "stop" and handler.on_failure ~= "continue" then
      return "action '" .. kind .. "': on_failure must be \"stop\" or \"continue\""
    end
  end
end

local POLICY_TYPES = { ["function"] = true, list = true, table = true, string = true, number = true, boolean = true }

local function check_definition(def)
  if type(def) ~= "table" then return "must return a table (the runbook's definition)" end
  if type(def.summary) ~= "string" then return "needs a one-line 'summary'" end
  def.params = def.params or {}
  local err = params.check_declarations(def.params)
  if err then return err end
  if type(def.plan) ~= "function" then return "needs a 'plan' function" end
  err = check_actions(def)
  if err then return err end
  for name, kind in pairs(def.policy or {}) do
    if not POLICY_TYPES[kind] then return "policy key '" .. tostring(name) .. "' has unknown type " .. tostring(kind) end
  end
  for _, field in ipairs({ "target", "setup", "report", "on_stop" }) do
    if def[field] ~= nil and type(def[field]) ~= "function" then return "'" .. field .. "' must be a function" end
  end
end

-- load(found[, {checksum = false}]) -> definition (validated), with .name, .source, .sha256 filled in.
-- `list` skips the checksum: the first SHA-256 initialises OpenSSL, which costs more than the rest
-- of `list` together.
function loader.load(found, opts)
  local env = sandbox.runbook_env(found.name)
  local chunk, err
  if found.source == "built-in" then
    chunk = host.load_embedded_runbook(found.name, env) -- the same text, compiled by the build
  else
    chunk, err = load(found.text, found.chunkname, "t", env)
  end
  if not chunk then util.fail(2, "runbook %s has a syntax error: %s", found.name, err) end
  local ok, def = xpcall(chunk, host.traceback)
  if not ok then util.fail(2, "runbook %s failed while loading: %s", found.name, tostring(def)) end
  local problem = check_definition(def)
  if problem then util.fail(2, "runbook %s %s", found.name, problem) end
  if def.name ~= nil and def.name ~= found.name then
    util.fail(2, "runbook file %s declares the name '%s'; name the file %s.lua", found.source, tostring(def.name), tostring(def.name))
  end
  def.name, def.source, def.text = found.name, found.source, found.text
  if not (opts and opts.checksum == false) then def.sha256 = host.sha256(found.text) end
  def.policy = def.policy or {}
  def.steps = def.steps or {}
  return def
end

-- All runbooks: site directories first (they may shadow a built-in one), then the built-in ones.
function loader.list(opts)
  local seen, found = {}, {}
  for _, dir in ipairs(site_dirs(opts or {})) do
    for _, file in ipairs(host.list_dir(dir) or {}) do
      local name = file:match("^(.+)%.lua$")
      if name and not seen[name] then
        seen[name] = true
        found[#found + 1] = { name = name, dir = dir }
      end
    end
  end
  for name in pairs(embedded()) do
    if not seen[name] then
      seen[name] = true
      found[#found + 1] = { name = name }
    end
  end
  table.sort(found, function(a, b) return a.name < b.name end)
  return found
end

return loader
