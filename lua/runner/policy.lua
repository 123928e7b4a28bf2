-- Site policy files: a sandboxed Lua chunk that sets values and functions a runbook reads, e.g.
--   days = 180
--   protected_users = { "alice" }
--   exclude = function(user) return user.groups and user.groups.staff end
-- Nothing else: no io, no os.execute, no require, no environment. Every key is checked against what
-- the runbook declares. The policy's code runs in a Lua state of its own with a memory limit, under
-- an instruction budget (sandbox.site_vm, src/sitevm.c).
local host = require "runbook.host"
local params = require "runner.params"
local sandbox = require "runner.sandbox"
local util = require "runbook.util"

local policy = {}

local LOAD_BUDGET = 50 * 1000 * 1000
local CALL_BUDGET = 5 * 1000 * 1000 -- per call of a policy function: ample for any real rule

local function allowed_keys(def)
  local keys = {}
  for _, spec in ipairs(def.params) do keys[spec.name] = spec.type end
  for name, kind in pairs(def.policy) do keys[name] = kind end
  return keys
end

local function check_type(kind, value)
  if kind == "function" then return type(value) == "function" end
  if kind == "list" then
    if type(value) ~= "table" then return false end
    for _, v in ipairs(value) do if type(v) ~= "string" then return false end end
    return true
  end
  if kind == "table" then return type(value) == "table" end
  return true -- parameter types are checked when parameters are resolved
end

-- load(path, def) -> {path, sha256, values} ; exit 2 on any problem, naming it.
function policy.load(path, def)
  local text, err = host.read_file(path)
  if not text then util.fail(2, "cannot read policy file %s", err) end
  local vm = sandbox.site_vm(path:match("[^/]+$"))
  local chunk, syntax = vm:load(text, "@" .. path)
  if not chunk then util.fail(2, "policy file has a syntax error: %s", syntax) end
  local ok, run_err = host.call_with_budget(LOAD_BUDGET, chunk)
  if not ok then util.fail(2, "policy file %s failed: %s", path, tostring(run_err)) end
  local got, values = pcall(vm.values, vm)
  if not got then util.fail(2, "policy file %s: %s", path, tostring(values)) end
  local keys = allowed_keys(def)
  for _, key in ipairs(util.sorted_keys(values)) do
    local kind = keys[key]
    if not kind then
      local names = util.sorted_keys(keys)
      util.fail(2, "policy file %s sets '%s', which runbook %s does not read; it reads: %s", path, key,
        def.name, table.concat(names, ", "))
    end
    if not check_type(kind, values[key]) then
      util.fail(2, "policy file %s: '%s' must be a %s, got a %s", path, key, kind, type(values[key]))
    end
  end
  return { path = host.realpath(path) or path, sha256 = host.sha256(text), values = values }
end

-- The values a runbook sees through ctx.policy: parameters are excluded (they reach ctx.params).
function policy.hooks(loaded, def)
  local hooks = {}
  if not loaded then return hooks end
  for name in pairs(def.policy) do
    local value = loaded.values[name]
    if type(value) == "function" then
      -- Site code runs under a budget: an endless loop stops with a message naming the function. The
      -- function is a proxy into the policy's own Lua state: what it is given is a deep copy, so a
      -- policy that edits the user it is shown changes nothing the runbook decides with (the hub's
      -- data decides), and what it returns is a copy too, bounded (strings of at most 1000 bytes).
      hooks[name] = function(...)
        local results = table.pack(host.call_with_budget(CALL_BUDGET, value, ...))
        if not results[1] then
          -- A broken policy is bad input (exit 2), whoever happens to call it.
          util.fail(2, "policy function '%s' (%s) failed: %s", name, loaded.path, tostring(results[2]))
        end
        return table.unpack(results, 2, results.n)
      end
    else
      hooks[name] = value
    end
  end
  return hooks
end

-- Only the parameter values a policy sets. A relative path in a policy file is relative to the file
-- (as in an inventory, or a kubeconfig), not to wherever runbook happens to run.
function policy.param_values(loaded, def)
  if not loaded then return nil end
  local dir = loaded.path:match("^(.*)/") or "."
  local values = {}
  for _, spec in ipairs(def.params) do
    local value = loaded.values[spec.name]
    if spec.type == "path" and type(value) == "string" and value ~= "" and value:sub(1, 1) ~= "/" then
      value = dir .. "/" .. value
    end
    values[spec.name] = value
  end
  return values
end

return policy
