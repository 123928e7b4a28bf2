-- Environments for code the engine did not write: runbooks and site policy files.
-- Each gets its own _ENV with strict globals (a misspelt name is an error, not a silent nil) and only
-- the modules it may use. The engine's privileged module (runbook.host) is never reachable from here.
local host = require "runbook.host"
local ui = require "runner.ui"

local sandbox = {}

-- What runbooks may require, and why: runbook.public.
local PUBLIC_MODULES = require "runbook.public"

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

-- Site code (policy files and inventories) runs in a Lua state of its own (src/sitevm.c): a memory
-- limit for its whole life, the instruction budget of host.call_with_budget, and values that cross
-- only as copies. This prelude runs first in that state: it builds the environment the code sees
-- (no modules, no environment variables, only values and functions; globals it assigns are collected
-- in `values`) and guards the C functions that could otherwise work without bound where the budget
-- cannot see.
local SITE_PRELUDE = [==[
local charge, label = ... -- charge(n): counts n instructions' worth of C work against the budget
local who = "policy " .. label
local string, table, math, utf8, coroutine, os = string, table, math, utf8, coroutine, os
local error, type, tostring, setmetatable, pairs, ipairs = error, type, tostring, setmetatable, pairs, ipairs
local format, byte = string.format, string.byte

-- Pattern matching backtracks inside C, where the budget cannot stop it: k repetitions (* + -) may
-- try every way of splitting the subject among them, about C(n+k, k) for n bytes (times 2 for each
-- ?, n for each %b or back-reference, n again when not anchored), which for (".-"):rep(30) against
-- 40 bytes is 10^19. A match whose worst case exceeds MAX_STEPS is refused before it starts. A
-- repetition at the very end of the pattern never backtracks into the others, so it is not counted.
local MAX_STEPS = 1e8

local function skip_set(p, i, m) -- p[i] is '[': the index after the matching ']'
  i = i + 1
  if byte(p, i) == 94 then i = i + 1 end -- ^
  repeat
    if i > m then return m + 1 end -- malformed: the real function says so
    local c = byte(p, i)
    i = i + 1
    if c == 37 then i = i + 1 end -- %x inside a set
  until byte(p, i) == 93 -- ]
  return i + 1
end

local function pattern_shape(p, first)
  local m = #p
  local i, reps, opts, scans, last = first, 0, 0, 0, nil
  while i <= m do
    local c, single = byte(p, i), true
    if c == 40 or c == 41 then -- ( )
      i, single = i + 1, false
      if c == 40 then last = nil end
    elseif c == 37 then -- %
      local d = byte(p, i + 1)
      if d == 98 then i, single, scans = i + 4, false, scans + 1 -- %bxy
      elseif d == 102 then i, single = (byte(p, i + 2) == 91) and skip_set(p, i + 2, m) or i + 3, false -- %f[set]
      elseif d and d >= 48 and d <= 57 then i, single, scans = i + 2, false, scans + 1 -- %1
      else i = i + 2 end
    elseif c == 91 then i = skip_set(p, i, m)
    elseif c == 36 and i == m then i, single = i + 1, false -- $
    else i = i + 1 end
    if single then
      local r = byte(p, i)
      if r == 42 or r == 43 or r == 45 then reps, last, i = reps + 1, "rep", i + 1
      elseif r == 63 then opts, last, i = opts + 1, "opt", i + 1
      else last = "item" end
    elseif c ~= 41 then
      last = "item"
    end
  end
  if last == "rep" then reps = reps - 1 end
  return reps, opts, scans
end

local function guard_match(fname, s, p, init, plain, can_anchor)
  local ts, tp = type(s), type(p)
  if (ts ~= "string" and ts ~= "number") or (tp ~= "string" and tp ~= "number") then return end
  s, p = tostring(s), tostring(p)
  local n, m = #s, #p
  local steps
  if plain then
    steps = (n + 1) * (m + 1)
  else
    local anchored = can_anchor and byte(p, 1) == 94
    local reps, opts, scans = pattern_shape(p, anchored and 2 or 1)
    steps = (m + 1) * 2.0 ^ opts * (n + 1.0) ^ scans * (anchored and 1 or n + 1)
    for i = 1, reps do
      if steps > MAX_STEPS then break end
      steps = steps * (n + i) / i
    end
  end
  if steps > MAX_STEPS then
    error(format("%s: the pattern %q against %d bytes could take about %.0e steps, more than site code "
      .. "may use (%.0e); use fewer repetitions (* + - ?) or a shorter text", fname,
      #p > 40 and p:sub(1, 40) .. "..." or p, n, steps, MAX_STEPS), 3)
  end
  charge(steps / 100) -- the worst case, in instructions of about 100 steps
end

local find, match, gmatch, gsub = string.find, string.match, string.gmatch, string.gsub
-- In place, so that method calls (s:find) get them too: this state has its own string library.
string.find = function(s, p, init, plain) guard_match("string.find", s, p, init, plain, true) return find(s, p, init, plain) end
string.match = function(s, p, init) guard_match("string.match", s, p, init, false, true) return match(s, p, init) end
string.gmatch = function(s, p, init) guard_match("string.gmatch", s, p, init, false, false) return gmatch(s, p, init) end
string.gsub = function(s, p, repl, n) guard_match("string.gsub", s, p, nil, false, true) return gsub(s, p, repl, n) end

-- C functions that walk a whole table or string without allocating: charged by size. table.move
-- walks its range even when there is nothing in it.
local move, sort, insert, remove, rawlen = table.move, table.sort, table.insert, table.remove, rawlen
local ulen, uoffset = utf8.len, utf8.offset
table.move = function(a1, f, e, t, a2)
  if type(f) == "number" and type(e) == "number" and e - f >= 1e7 then
    error("table.move: more than 10^7 elements at once", 2)
  end
  if type(f) == "number" and type(e) == "number" and e > f then charge((e - f) / 4) end
  return move(a1, f, e, t, a2)
end
local function size(t) return type(t) == "table" and rawlen(t) or type(t) == "string" and #t or 0 end
table.sort = function(t, cmp) local n = size(t) charge(n * math.log(n + 1, 2) / 4) return sort(t, cmp) end
table.insert = function(t, ...) charge(size(t) / 16) return insert(t, ...) end
table.remove = function(t, ...) charge(size(t) / 16) return remove(t, ...) end
utf8.len = function(s, ...) charge(size(s) / 64) return ulen(s, ...) end
utf8.offset = function(s, ...) charge(size(s) / 64) return uoffset(s, ...) end

local SAFE_BASE = { "assert", "error", "ipairs", "next", "pairs", "pcall", "select", "tonumber", "tostring",
                    "type", "xpcall", "rawequal", "rawget", "rawset", "rawlen", "_VERSION" }

local function guarded(lib, name)
  local copy = {}
  for k, v in pairs(lib) do copy[k] = v end
  return setmetatable(copy, { __index = function(_, key)
    error(format("%s.%s is not available to %s", name, tostring(key), who), 2)
  end })
end

local FORBIDDEN = {
  io = "files are reached only through the bindings",
  debug = "the debug library is not available",
  package = "modules are loaded with require",
  dofile = "code is not loaded from files", loadfile = "code is not loaded from files",
  collectgarbage = "memory is managed by the host",
}

local env, values = {}, {}
for _, name in ipairs(SAFE_BASE) do env[name] = _G[name] end
-- xpcall's handler would run with hooks off when the error came from the budget's hook (Lua calls
-- it from inside the hook's error): run it after pcall instead, where the budget still counts.
local pcall = pcall
local function after_pcall(handler, ok, ...)
  if ok then return ok, ... end
  local _, result = pcall(handler, (...))
  return false, result
end
env.xpcall = function(f, handler, ...) return after_pcall(handler, pcall(f, ...)) end
env.string = guarded(string, "string")
env.table = guarded(table, "table")
env.math = guarded(math, "math")
env.utf8 = guarded(utf8, "utf8")
env.coroutine = guarded(coroutine, "coroutine")
env.os = setmetatable({ time = os.time, date = os.date, clock = os.clock, difftime = os.difftime },
  { __index = function(_, key) error(format("os.%s is not available to policy files", tostring(key)), 2) end })
-- No metatables: a __gc finalizer would run whenever the collector does, outside any budget.
local function no_metatables() error("policy files cannot use metatables (their methods would escape the instruction budget)", 2) end
env.setmetatable, env.getmetatable = no_metatables, no_metatables
setmetatable(env, {
  __index = function(_, key)
    local why = FORBIDDEN[key]
    if why then error(format("%s cannot use '%s': %s", who, key, why), 2) end
    error(format("undefined global '%s' in %s", tostring(key), who), 2)
  end,
  __newindex = function(_, key, value)
    if type(key) ~= "string" then error("policy keys must be names", 2) end
    values[key] = value
  end,
})
return env, values
]==]

-- Memory one policy file or inventory may use, all its life (its own Lua state).
sandbox.SITE_MEMORY = 64 * 1024 * 1024

-- A Lua state for the site code of one file: vm:load(text, chunkname) -> chunk | nil, err (call it
-- under host.call_with_budget), then vm:values() -> a copy of the globals it set, its functions as
-- proxies that copy their arguments in and their results out (call those under a budget too).
function sandbox.site_vm(label)
  return host.site_vm(SITE_PRELUDE, sandbox.SITE_MEMORY, label)
end

return sandbox
