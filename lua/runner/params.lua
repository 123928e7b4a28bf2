-- Runbook parameters: declared with a type, a default and help; given with -p key=value, by an
-- inventory, by a site policy, or from an environment variable the declaration names. The most
-- specific source wins (params.resolve has the order). Every bad value is a usage error that names
-- the parameter.
local util = require "runbook.util"

local params = {}

local TYPES = { string = true, integer = true, number = true, boolean = true, list = true, path = true }
params.TYPES = TYPES

-- Numbers a parameter may hold when its declaration sets no bounds: within them, arithmetic on days
-- or sizes (days * 86400, a cap times a size) cannot overflow a 64-bit integer or lose precision as a
-- float, and a value survives the trip through a plan file's JSON as the same number.
local DEFAULT_MIN, DEFAULT_MAX = -2147483648, 2147483647
params.DEFAULT_MIN, params.DEFAULT_MAX = DEFAULT_MIN, DEFAULT_MAX

local BOOLEANS = { ["true"] = true, yes = true, ["1"] = true, on = true,
                   ["false"] = false, no = false, ["0"] = false, off = false }

-- Converts a command-line string to the parameter's type: value | nil, message.
local function from_text(spec, text)
  local kind = spec.type
  if kind == "integer" then
    local n = math.tointeger(tonumber(text))
    if not n then return nil, "must be a whole number, got '" .. text .. "'" end
    return n
  elseif kind == "number" then
    local n = tonumber(text)
    if not n then return nil, "must be a number, got '" .. text .. "'" end
    return n
  elseif kind == "boolean" then
    local b = BOOLEANS[text:lower()]
    if b == nil then return nil, "must be true or false, got '" .. text .. "'" end
    return b
  elseif kind == "list" then
    local items = {}
    for _, item in ipairs(util.split(text, ",")) do
      item = util.trim(item)
      if item ~= "" then items[#items + 1] = item end
    end
    return items
  end
  return text
end

-- Checks a Lua value (from a policy or a default) against the type: value | nil, message.
local function from_value(spec, value)
  local kind = spec.type
  if kind == "integer" then
    if math.type(value) ~= "integer" and not (math.type(value) == "float" and value == math.floor(value)) then
      return nil, "must be a whole number, got " .. tostring(value)
    end
    local n = math.tointeger(value)
    if n == nil then return nil, "must be a whole number within range, got " .. tostring(value) end
    return n
  elseif kind == "number" then
    if type(value) ~= "number" then return nil, "must be a number, got " .. type(value) end
  elseif kind == "boolean" then
    if type(value) ~= "boolean" then return nil, "must be true or false, got " .. type(value) end
  elseif kind == "list" then
    if type(value) == "string" then return from_text(spec, value) end
    if type(value) ~= "table" then return nil, "must be a list of strings, got " .. type(value) end
    for i, item in ipairs(value) do
      if type(item) ~= "string" then return nil, "item " .. i .. " must be a string" end
    end
  elseif type(value) ~= "string" then
    return nil, "must be a string, got " .. type(value)
  end
  return value
end

-- in_range(spec, value) -> value | nil, message: a number within the declared bounds (min, max), or
-- the default bounds; NaN and infinities are never numbers here.
local function in_range(spec, value)
  if spec.type ~= "integer" and spec.type ~= "number" then return value end
  if value ~= value or value == math.huge or value == -math.huge then return nil, "must be a finite number" end
  local low, high = spec.min or DEFAULT_MIN, spec.max or DEFAULT_MAX
  if value < low or value > high then
    return nil, string.format("must be between %s and %s, got %s", tostring(low), tostring(high), tostring(value))
  end
  return value
end

-- Validates a runbook's parameter declarations; returns an error message or nil.
function params.check_declarations(list)
  if type(list) ~= "table" then return "'params' must be a list of parameter declarations" end
  local seen = {}
  for i, spec in ipairs(list) do
    if type(spec) ~= "table" or type(spec.name) ~= "string" or not spec.name:match("^[%a_][%w_]*$") then
      return "parameter " .. i .. " needs a name made of letters, digits and _"
    end
    if seen[spec.name] then return "parameter '" .. spec.name .. "' is declared twice" end
    seen[spec.name] = true
    spec.type = spec.type or "string"
    if not TYPES[spec.type] then
      return string.format("parameter '%s' has unknown type '%s'", spec.name, tostring(spec.type))
    end
    if spec.help ~= nil and type(spec.help) ~= "string" then return "parameter '" .. spec.name .. "': help must be text" end
    for _, bound in ipairs({ "min", "max" }) do
      if spec[bound] ~= nil and (type(spec[bound]) ~= "number" or (spec.type ~= "integer" and spec.type ~= "number")) then
        return string.format("parameter '%s': %s is for numbers, and must be one", spec.name, bound)
      end
    end
    if spec.min and spec.max and spec.min > spec.max then return "parameter '" .. spec.name .. "': min is above max" end
  end
end

function params.find(list, name)
  for _, spec in ipairs(list) do if spec.name == name then return spec end end
end

function params.names(list)
  local names = {}
  for _, spec in ipairs(list) do names[#names + 1] = spec.name end
  return table.concat(names, ", ")
end

-- A parameter a runbook no longer takes: list.retired[name] = {keep = the value that means what the
-- runbook does now (taken, and dropped), why = what to do instead (text, or function(value) -> text)}.
-- retired(list, name, value) -> nil (not retired) | true (the kept value: drop it) | false, why.
local function retired(list, name, value)
  local entry = type(list.retired) == "table" and list.retired[name]
  if not entry then return nil end
  if entry.keep ~= nil and value == entry.keep then return true end
  return false, type(entry.why) == "function" and entry.why(value) or entry.why
end

-- The value of one "-p key=value", converted to the parameter's type; unknown keys are usage errors.
local function assigned(list, key, value, runbook_name)
  local spec = params.find(list, key)
  if not spec then
    local names = {}
    for _, spec_of in ipairs(list) do names[#names + 1] = spec_of.name end
    util.fail(2, "unknown parameter '%s' for %s%s; it takes: %s", key, runbook_name, util.suggest(key, names),
      params.names(list))
  end
  if spec.secret then
    util.fail(2, "parameter '%s' is a secret and is never taken from the command line; %s", key,
      spec.env and ("set " .. spec.env) or "use a file")
  end
  local converted, err = from_text(spec, value)
  if converted == nil then util.fail(2, "parameter '%s' %s", key, err) end
  return converted
end

-- Parses "-p key=value" strings into a map. A retired parameter given the value the runbook still
-- means is dropped; any other value of it is a usage error saying what to do instead.
function params.parse_assignments(list, assignments, runbook_name)
  local given = {}
  for _, text in ipairs(assignments) do
    local key, value = text:match("^([^=]+)=(.*)$")
    if not key then util.fail(2, "bad parameter '%s': write -p key=value", text) end
    key = util.trim(key)
    local gone, why = retired(list, key, value)
    if gone == false then util.fail(2, "%s no longer takes %s=%s: %s", runbook_name, key, value, why) end
    if not gone then given[key] = assigned(list, key, value, runbook_name) end
  end
  return given
end

local function absolute(path, cwd)
  if path:sub(1, 1) == "/" or not cwd then return path end
  return cwd .. "/" .. path
end

-- The files and the command line a parameter's value may come from, the first that sets it winning:
-- the most specific first, the command line over everything. Values from the command line are
-- already converted (parse_assignments); those from files are checked here, `what` naming the file
-- in the error. The environment and the runbook's default come after all of them (value_from):
-- a file named for this run says more than the environment the operator happens to have.
local function sources_in_order(given, policy_values, inventory)
  inventory = inventory or {}
  return {
    { label = "command line", values = given, typed = true },
    { label = "inventory target", values = inventory.target, what = "the inventory's target sets" },
    { label = "policy", values = policy_values, what = "policy sets" },
    { label = "inventory defaults", values = inventory.defaults, what = "the inventory's defaults set" },
  }
end

-- value_from(spec, sources) -> value, label: the first source that sets the parameter, its value
-- checked against the parameter's type; else the environment variable the declaration names.
local function value_from(spec, sources)
  local name = spec.name
  for _, source in ipairs(sources) do
    local raw = source.values and source.values[name]
    if raw ~= nil then
      if source.typed then return raw, source.label end
      local value, err = from_value(spec, raw)
      if value == nil then util.fail(2, "%s '%s', which %s", source.what, name, err) end
      return value, source.label
    end
  end
  if spec.env and (os.getenv(spec.env) or "") ~= "" then
    local value, err = from_text(spec, os.getenv(spec.env))
    if value == nil then util.fail(2, "environment variable %s (parameter '%s') %s", spec.env, name, err) end
    return value, "environment " .. spec.env
  end
  if spec.default ~= nil then
    local value = spec.default
    if type(value) == "table" then value = util.shallow_copy(value) end
    return value, "default"
  end
end

-- resolve(list, given, policy_values, runbook_name, opts) -> values, sources
-- A value comes from, in this order: the command line (-p), the inventory target's own values, the
-- policy file (the target's own, or --policy), the inventory's defaults, the environment variable
-- the parameter names, the runbook's default. sources[name] says which.
-- opts.cwd makes relative path parameters absolute, so a saved plan means the same files from
-- anywhere (paths from an inventory or a policy file are already absolute, against that file's
-- directory); opts.inventory = {target = {...}, defaults = {...}} holds an inventory target's values.
function params.resolve(list, given, policy_values, runbook_name, opts)
  local values, sources = {}, {}
  local order = sources_in_order(given, policy_values, opts and opts.inventory)
  for _, spec in ipairs(list) do
    local name = spec.name
    local value, source = value_from(spec, order)
    if value == nil and spec.required then
      util.fail(2, "parameter '%s' is required: pass -p %s=...%s", name, name,
        spec.env and (" or set " .. spec.env) or "")
    end
    if spec.type == "path" and type(value) == "string" and value ~= "" then
      value = absolute(value, opts and opts.cwd)
    end
    if value ~= nil then
      local bounded, range_err = in_range(spec, value)
      if bounded == nil then util.fail(2, "parameter '%s' %s", name, range_err) end
    end
    if value ~= nil and spec.check then
      local ok, why = spec.check(value)
      if not ok then util.fail(2, "parameter '%s' %s", name, why or "is not valid") end
    end
    values[name], sources[name] = value, source
  end
  return values, sources
end

-- check_planned(list, values, where) -> values: the parameters a plan file or journal carries, held
-- to the same types and bounds as when they were given (a whole number read back from JSON as a
-- float becomes an integer again; anything else wrong is exit 2). Secret parameters are not in plans.
function params.check_planned(list, values, where)
  for _, spec in ipairs(list) do
    local value = values[spec.name]
    if value ~= nil and not spec.secret then
      local typed, err = from_value(spec, value)
      if typed ~= nil then typed, err = in_range(spec, typed) end
      if typed == nil then util.fail(2, "%s: parameter '%s' %s", where, spec.name, err) end
      if spec.check then
        local ok, why = spec.check(typed)
        if not ok then util.fail(2, "%s: parameter '%s' %s", where, spec.name, why or "is not valid") end
      end
      values[spec.name] = typed
    end
  end
  for _, name in ipairs(util.sorted_keys(values)) do
    local gone, why = retired(list, name, values[name])
    if gone == false then util.fail(2, "%s: parameter %s=%s: %s", where, name, tostring(values[name]), why) end
    if gone then
      values[name] = nil
    elseif not params.find(list, name) then
      util.fail(2, "%s: parameter '%s' is not one the runbook takes", where, name)
    end
  end
  return values
end

return params
