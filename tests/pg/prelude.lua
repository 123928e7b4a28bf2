-- Checks for scripts that tests/41-pg-module.t runs with `runbook exec`: the .t file puts this file in
-- front of each script. Every check prints "ok - ..." or "not ok - ..." (print goes to stderr), which the
-- .t file turns into TAP lines; `done_checks()` prints how many ran, so a script that dies is noticed.
local json = require "runbook.json"
local pg = require "runbook.pg"

local checks_run = 0

local function show(v)
  if v == pg.null then return "null" end
  if type(v) == "table" then
    local ok, text = pcall(json.encode, v)
    return ok and text or tostring(v)
  end
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v) .. (math.type(v) and (" (" .. math.type(v) .. ")") or "")
end

local function deep_equal(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then
    if math.type(a) and math.type(b) and math.type(a) ~= math.type(b) then return false end
    if a ~= a and b ~= b then return true end -- NaN
    return a == b
  end
  for k, v in pairs(a) do if not deep_equal(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

local function check(cond, desc, why)
  checks_run = checks_run + 1
  print((cond and "ok - " or "not ok - ") .. desc)
  if not cond and why then print("#   " .. why) end
  return cond
end

local function eq(got, want, desc)
  return check(deep_equal(got, want), desc, "got " .. show(got) .. ", expected " .. show(want))
end

local function like(text, pattern, desc)
  return check(type(text) == "string" and text:find(pattern) ~= nil, desc, "got " .. show(text) .. ", expected /" .. pattern .. "/")
end

local function done_checks()
  print("checks run: " .. checks_run)
end

local function connect(url_variable)
  return assert(pg.connect(os.getenv(url_variable or "PG_HUB_URL")))
end

-- end of prelude
