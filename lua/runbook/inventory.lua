-- Inventories: one command for every hub of a site. An inventory is a sandboxed Lua file, like a
-- policy (its own Lua state, memory limit and instruction budget), that names targets and their parameters:
--   defaults = { days = 120 }                                       -- for every target
--   targets = {
--     { name = "science", hub = "https://science.example.org", token_file = "/etc/runbook/science.token",
--       policy = "science-policy.lua" },                             -- relative to the inventory
--     { name = "teaching", hub = "https://teaching.example.org", token_file = "/etc/runbook/teaching.token" },
--   }
-- Each target's values are checked against the runbook's parameters like a policy's, and rank like
-- them: the command line still wins.
local host = require "runbook.host"
local sandbox = require "runbook.sandbox"
local util = require "runbook.util"

local inventory = {}

local RESERVED = { name = true, policy = true }

-- load(path, def) -> list of {name=, policy_path=, values={param=value}} ; exit 2 naming any problem.
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
  local known = {}
  for _, spec in ipairs(def.params) do known[spec.name] = true end
  local seen, entries = {}, {}
  for i, target in ipairs(values.targets) do
    if type(target) ~= "table" or type(target.name) ~= "string" or not target.name:match("^[%w][%w%._-]*$") then
      util.fail(2, "inventory %s: target %d needs a name (letters, digits, . _ -)", path, i)
    end
    if seen[target.name] then util.fail(2, "inventory %s names the target %s twice", path, target.name) end
    seen[target.name] = true
    local entry = { name = target.name, values = {} }
    for k, v in pairs(values.defaults or {}) do entry.values[k] = v end
    for k, v in pairs(target) do
      if not RESERVED[k] then entry.values[k] = v end
    end
    for k in pairs(entry.values) do
      if not known[k] then
        util.fail(2, "inventory %s: target %s sets '%s', which runbook %s does not take; it takes: %s", path,
          target.name, k, def.name, table.concat(util.sorted_keys(known), ", "))
      end
    end
    if target.policy ~= nil then
      if type(target.policy) ~= "string" then util.fail(2, "inventory %s: target %s: policy must be a path", path, target.name) end
      entry.policy_path = target.policy:sub(1, 1) == "/" and target.policy or (dir .. "/" .. target.policy)
    end
    entries[#entries + 1] = entry
  end
  return entries
end

return inventory
