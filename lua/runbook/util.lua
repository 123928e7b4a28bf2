-- Small helpers shared by the engine and the bindings. Available to runbooks as require "runbook.util".
local util = {}

-- Failures the user can cause carry an exit status and travel as tables, so the command line can
-- print one clear message instead of a traceback.
local Failure = { __name = "runbook.Failure" }
Failure.__index = Failure
Failure.__tostring = function(f) return f.message end

function util.fail(code, fmt, ...)
  local message = select("#", ...) > 0 and string.format(fmt, ...) or fmt
  error(setmetatable({ code = code, message = message }, Failure), 0)
end

function util.is_failure(e)
  return getmetatable(e) == Failure
end

function util.trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

function util.split(s, sep)
  local parts = {}
  for part in (s .. sep):gmatch("(.-)" .. sep:gsub("%p", "%%%0")) do parts[#parts + 1] = part end
  return parts
end

function util.sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

function util.starts_with(s, prefix)
  return s:sub(1, #prefix) == prefix
end

-- Percent-encodes everything but RFC 3986's unreserved characters (user names like ana.maria@x, user+tag, josé).
-- The edit distance between two short strings: insertions, deletions, substitutions and swaps of
-- two neighbours ("plna" is one typo away from "plan").
local function edit_distance(a, b)
  local before, previous = nil, {}
  for j = 0, #b do previous[j] = j end
  for i = 1, #a do
    local current = { [0] = i }
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      current[j] = math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
      if before and i > 1 and j > 1 and a:byte(i) == b:byte(j - 1) and a:byte(i - 1) == b:byte(j) then
        current[j] = math.min(current[j], before[j - 2] + 1)
      end
    end
    before, previous = previous, current
  end
  return previous[#b]
end

-- suggest(word, candidates) -> " (did you mean 'x'?)" for the closest candidate a typo away, or "".
-- Close: at most a third of the word's length edited (at least 1, at most 3), or a prefix of it.
function util.suggest(word, candidates)
  local best, best_distance
  local allowed = math.max(1, math.min(3, #word // 3))
  for _, candidate in ipairs(candidates) do
    local d = edit_distance(word:lower(), candidate:lower())
    if #word >= 3 and candidate:sub(1, #word) == word then d = math.min(d, 1) end
    if d <= allowed and (not best_distance or d < best_distance) then best, best_distance = candidate, d end
  end
  return best and string.format(" (did you mean '%s'?)", best) or ""
end

-- count(n, word[, plural]) -> "1 day", "2 days", "1 match", "3 matches" (plural defaults to word .. "s")
function util.count(n, word, plural)
  return string.format("%d %s", n, n == 1 and word or (plural or word .. "s"))
end

-- replace_plain(s, find, repl): every occurrence of the plain text find (no patterns) replaced.
function util.replace_plain(s, find, repl)
  local out, from = {}, 1
  while true do
    local i, j = s:find(find, from, true)
    if not i then break end
    out[#out + 1] = s:sub(from, i - 1) .. repl
    from = j + 1
  end
  out[#out + 1] = s:sub(from)
  return table.concat(out)
end

function util.url_escape(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

-- Builds a query string from a table, keys sorted; list values repeat the key.
function util.query(params)
  local parts = {}
  for _, k in ipairs(util.sorted_keys(params)) do
    local v = params[k]
    if type(v) == "table" then
      for _, item in ipairs(v) do parts[#parts + 1] = util.url_escape(k) .. "=" .. util.url_escape(item) end
    elseif v ~= nil and v ~= false then
      parts[#parts + 1] = util.url_escape(k) .. "=" .. util.url_escape(v == true and "true" or v)
    end
  end
  return table.concat(parts, "&")
end

-- Hides a password in a URL (scheme://user:secret@host -> scheme://user:***@host) before it is shown.
function util.redact_url(url)
  if type(url) ~= "string" then return url end
  return (url:gsub("^(%a[%w+.-]*://)([^/@:]*):[^/@]*@", "%1%2:***@"))
end

-- Days from 1970-01-01 to a civil date (proleptic Gregorian): independent of the local time zone.
local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

-- parse_time("2024-01-31T12:00:00.123456Z") -> seconds since the epoch, or nil, message.
-- Accepts Z, +HH:MM and -HH:MM offsets, and no offset at all (taken as UTC, as JupyterHub means it).
function util.parse_time(s)
  if type(s) ~= "string" then return nil, "not a time: " .. tostring(s) end
  local y, mo, d, h, mi, sec, rest = s:match("^(%d%d%d%d)-(%d%d)-(%d%d)[T ](%d%d):(%d%d):(%d%d)(.*)$")
  if not y then
    y, mo, d = s:match("^(%d%d%d%d)-(%d%d)-(%d%d)$")
    if not y then return nil, "not an ISO 8601 time: " .. s end
    h, mi, sec, rest = 0, 0, 0, ""
  end
  local frac = 0
  local f = rest:match("^%.(%d+)")
  if f then
    frac = tonumber("0." .. f)
    rest = rest:sub(#f + 2)
  end
  local offset = 0
  if rest ~= "" and rest ~= "Z" and rest ~= "z" then
    local sign, oh, om = rest:match("^([+-])(%d%d):?(%d%d)$")
    if not sign then return nil, "bad time zone in " .. s end
    offset = (tonumber(oh) * 3600 + tonumber(om) * 60) * (sign == "+" and 1 or -1)
  end
  local days = days_from_civil(tonumber(y), tonumber(mo), tonumber(d))
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(sec) + frac - offset
end

function util.format_time(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t))
end

-- "412 days", "3 hours", "45 seconds": what an operator reads in a reason.
function util.human_duration(seconds)
  seconds = math.floor(seconds)
  local function unit(n, name) return string.format("%d %s%s", n, name, n == 1 and "" or "s") end
  if seconds >= 2 * 86400 then return unit(seconds // 86400, "day") end
  if seconds >= 2 * 3600 then return unit(seconds // 3600, "hour") end
  if seconds >= 2 * 60 then return unit(seconds // 60, "minute") end
  return unit(seconds, "second")
end

-- sleep(seconds) -> true, or false when the operator interrupted (SIGINT/SIGTERM) meanwhile.
-- Inside concurrent actions it lets the others run.
function util.sleep(seconds)
  require("runner.sched").sleep(seconds)
  return not require("runbook.host").interrupted()
end

function util.shallow_copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

return util
