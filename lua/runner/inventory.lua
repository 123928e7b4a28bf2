-- Inventories: one command for every hub of a site. An inventory is a sandboxed Lua file, like a
-- policy (its own Lua state, memory limit and instruction budget), that names targets and their parameters:
--   defaults = { days = 120 }                                       -- for every target
--   targets = {
--     { name = "science", hub = "https://science.example.org", token_file = "/etc/runbook/science.token",
--       policy = "science-policy.lua" },                             -- relative to the inventory
--     { name = "teaching", hub = "https://teaching.example.org", token_file = "/etc/runbook/teaching.token" },
--   }
-- Each target's values are checked against the runbook's parameters like a policy's. A target's own
-- values are the most specific the file holds, `defaults` the least: a target's policy file ranks
-- between them (params.resolve has the whole order). Relative paths -- a target's policy and every
-- parameter of type path (token_file, ca_file, backup_dir) -- are relative to the inventory's directory,
-- whichever directory runbook runs from.
local host = require "runbook.host"
local sandbox = require "runner.sandbox"
local util = require "runbook.util"

local inventory = {}

local TARGET_KEYS = { name = true, policy = true } -- what a target sets besides parameters

local function absolute(path, dir)
  if path == "" or path:sub(1, 1) == "/" then return path end
  return dir .. "/" .. path
end

-- The parameters one table of the inventory sets (a target, or `defaults`), checked by name, with
-- relative paths made absolute against the inventory's directory.
local function param_values(tbl, dir, specs, reserved, where)
  local values = {}
  for k, v in pairs(tbl) do
    if not reserved[k] then
      local spec = specs[k]
      if not spec then
        util.fail(2, "inventory %s: %s sets '%s', which runbook %s does not take; it takes: %s", where.path, where.what,
          k, where.runbook, table.concat(util.sorted_keys(specs), ", "))
      end
      if spec.type == "path" and type(v) == "string" then v = absolute(v, dir) end
      values[k] = v
    end
  end
  return values
end

-- load(path, def) -> list of {name=, policy_path=, values={target={param=value}, defaults={param=value}}};
-- exit 2 naming any problem. params.resolve ranks the two tables of values apart.
function inventory.load(path, def)
  local text, err = host.read_file(path)
  if not text then util.fail(2, "cannot read inventory %s", err) end
  local vm = sandbox.site_vm(path:match("[^/]+$"))
  local chunk, syntax = vm:load(text, "@" .. path)
  if not chunk then util.fail(2, "inventory has a syntax error: %s", syntax) end
  local ok, run_err = host.call_with_budget(50 * 1000 * 1000, chunk)
  if not ok then util.fail(2, "inventory %s failed: %s", path, tostring(run_err)) end
  local got, values = pcall(vm.values, vm)
  if not got then util.fail(2, "inventory %s: %s", path, tostring(values)) end
  vm:close() -- an inventory is data: nothing of its state is needed once copied
  for key in pairs(values) do
    if key ~= "targets" and key ~= "defaults" then
      util.fail(2, "inventory %s sets '%s'; an inventory sets only `targets` and `defaults`", path, key)
    end
  end
  if type(values.targets) ~= "table" or #values.targets == 0 then
    util.fail(2, "inventory %s names no targets (targets = { { name = ..., ... }, ... })", path)
  end
  local dir = (host.realpath(path) or path):match("^(.*)/") or "."
  local specs = {}
  for _, spec in ipairs(def.params) do specs[spec.name] = spec end
  if values.defaults ~= nil and type(values.defaults) ~= "table" then
    util.fail(2, "inventory %s: defaults must be a table of parameters (defaults = { days = 120 })", path)
  end
  local defaults = param_values(values.defaults or {}, dir, specs, {},
    { path = path, what = "defaults", runbook = def.name })
  local seen, entries = {}, {}
  for i, target in ipairs(values.targets) do
    if type(target) ~= "table" or type(target.name) ~= "string" or not target.name:match("^[%w][%w%._-]*$") then
      util.fail(2, "inventory %s: target %d needs a name (letters, digits, . _ -)", path, i)
    end
    if seen[target.name] then util.fail(2, "inventory %s names the target %s twice", path, target.name) end
    seen[target.name] = true
    local own = param_values(target, dir, specs, TARGET_KEYS,
      { path = path, what = "target " .. target.name, runbook = def.name })
    local entry = { name = target.name, values = { target = own, defaults = defaults } }
    if target.policy ~= nil then
      if type(target.policy) ~= "string" then util.fail(2, "inventory %s: target %s: policy must be a path", path, target.name) end
      entry.policy_path = absolute(target.policy, dir)
    end
    entries[#entries + 1] = entry
  end
  return entries
end

return inventory
