-- Environments for code the engine did not write: runbooks and site policy files.
-- Each gets its own _ENV with strict globals (a misspelt name is an error, not a silent nil) and only
-- the modules it may use. The engine's privileged module (runbook.host) is never reachable from here.
local ui = require "runbook.ui"

local sandbox = {}

-- What runbooks may require. Loaded through the engine's require, so they share one copy.
local PUBLIC_MODULES = {
  ["runbook.hub"] = true, ["runbook.http"] = true, ["runbook.json"] = true, ["runbook.util"] = true,
  ["runbook.k8s"] = true, ["runbook.pg"] = true, ["runbook.backup"] = true, ["runbook.gitlab"] = true,
  ["runbook.storage"] = true, ["runbook.userbackup"] = true,
  ["cjson"] = true,
}

local SAFE_BASE = { "assert", "error", "ipairs", "next", "pairs", "pcall", "select", "tonumber", "tostring",
                    "type", "xpcall", "rawequal", "rawget", "rawset", "rawlen", "setmetatable", "getmetatable",
                    "_VERSION" }

-- A library table whose missing fields say why they are missing.
local function guarded(lib, name, who)
  local copy = {}
  for k, v in pairs(lib) do copy[k] = v end
  return setmetatable(copy, { __index = function(_, key)
    error(string.format("%s.%s is not available to %s", name, tostring(key), who), 2)
  end })
end

local FORBIDDEN = {
  io = "files are reached only through the bindings",
  debug = "the debug library is not available",
  package = "modules are loaded with require",
  dofile = "code is not loaded from files", loadfile = "code is not loaded from files",
  collectgarbage = "memory is managed by the host",
}

local function strict(env, who, on_assign)
  return setmetatable(env, {
    __index = function(_, key)
      local why = FORBIDDEN[key]
      if why then error(string.format("%s cannot use '%s': %s", who, key, why), 2) end
      error(string.format("undefined global '%s' in %s", tostring(key), who), 2)
    end,
    __newindex = on_assign or function(_, key)
      error(string.format("%s assigns the global '%s'; declare it local", who, tostring(key)), 2)
    end,
  })
end

local function base_env(who)
  local env = {}
  for _, name in ipairs(SAFE_BASE) do env[name] = _G[name] end
  env.string = guarded(string, "string", who)
  env.table = guarded(table, "table", who)
  env.math = guarded(math, "math", who)
  env.utf8 = guarded(utf8, "utf8", who)
  env.coroutine = guarded(coroutine, "coroutine", who)
  return env
end

-- The environment one runbook runs in.
function sandbox.runbook_env(label)
  local who = "runbook " .. label
  local env = base_env(who)
  env.os = guarded(os, "os", who)
  env.print = function(...)
    local parts = table.pack(...)
    for i = 1, parts.n do parts[i] = tostring(parts[i]) end
    ui.info(table.concat(parts, "\t"))
  end
  env.require = function(name)
    if not PUBLIC_MODULES[name] then
      error(string.format("module '%s' is not available to runbooks", tostring(name)), 2)
    end
    return require(name)
  end
  env.load = function(chunk, chunkname, _, chunk_env)
    return load(chunk, chunkname, "t", chunk_env or env)
  end
  return strict(env, who)
end

-- The environment of a policy file: no modules, no environment variables, only values and functions.
-- Globals it assigns are collected in `values`.
function sandbox.policy_env(label, values)
  local who = "policy " .. label
  local env = base_env(who)
  env.os = setmetatable({ time = os.time, date = os.date, clock = os.clock, difftime = os.difftime },
    { __index = function(_, key) error(string.format("os.%s is not available to policy files", tostring(key)), 2) end })
  -- No metatables: their methods run whenever the engine touches the value (a __gc finalizer, an
  -- __index under ipairs, the shared string metatable), outside the instruction budget.
  local function no_metatables() error("policy files cannot use metatables (their methods would escape the instruction budget)", 2) end
  env.setmetatable, env.getmetatable = no_metatables, no_metatables
  return strict(env, who, function(_, key, value)
    if type(key) ~= "string" then error("policy keys must be names", 2) end
    values[key] = value
  end)
end

return sandbox
