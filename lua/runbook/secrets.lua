-- The secrets this process holds (hub and GitLab tokens, Kubernetes bearer tokens and what exec
-- plugins return, client keys, PostgreSQL passwords), so that no output can show them, whoever
-- wrote the text: a server that echoes our request headers in an error body, a runbook that prints
-- what it read. Modules call secrets.remember(value) where they read one; ui (stdout, stderr) and
-- the plan and journal writers pass what they write through secrets.redact.
--
-- A value shorter than MIN_LENGTH is not remembered: it would turn up by chance in ordinary text
-- (a user name, a word of a message) and redacting it there would garble output and files alike.
local json = require "runbook.json"
local util = require "runbook.util"

local secrets = {}

local MIN_LENGTH = 6

local held = {}    -- every form of every secret, longest first
local known = {}   -- set of the same

local function add(form)
  if known[form] or #form < MIN_LENGTH then return end
  known[form] = true
  held[#held + 1] = form
  table.sort(held, function(a, b) return #a > #b end)
end

-- remember(value): from now on, value (and its JSON-escaped and percent-encoded forms, as a plan,
-- a journal or a URL would carry it) is replaced by *** in everything runbook writes.
function secrets.remember(value)
  if type(value) ~= "string" then return end
  local trimmed = value:match("^%s*(.-)%s*$")
  for _, v in ipairs({ value, trimmed }) do
    add(v)
    -- As a JSON string carries it (a plan, a journal, --output json), by our encoder and by one
    -- that writes "/" as "\/".
    local encoded = json.encode(v):sub(2, -2)
    add(encoded)
    add((encoded:gsub("/", "\\/")))
    add(util.url_escape(v))
    -- A PEM block also travels base64-encoded (kubeconfig *-data fields); its body lines are
    -- secret on their own when a message quotes one line of it.
    if v:find("-----BEGIN", 1, true) then
      for line in v:gmatch("[^\r\n]+") do
        if not line:find("^%-%-%-%-%-") and #line >= 16 then add(line) end
      end
    end
  end
end

-- holds(text) -> true when text contains a secret this process holds
function secrets.holds(text)
  if type(text) ~= "string" then return false end
  for _, s in ipairs(held) do
    if text:find(s, 1, true) then return true end
  end
  return false
end

-- redact(text) -> text with every secret replaced by ***
function secrets.redact(text)
  if type(text) ~= "string" or #held == 0 then return text end
  for _, s in ipairs(held) do
    local start = text:find(s, 1, true)
    if start then
      local parts, init = {}, 1
      while start do
        parts[#parts + 1] = text:sub(init, start - 1)
        parts[#parts + 1] = "***"
        init = start + #s
        start = text:find(s, init, true)
      end
      parts[#parts + 1] = text:sub(init)
      text = table.concat(parts)
    end
  end
  return text
end

-- Only for tests: forget everything.
function secrets._reset()
  held, known = {}, {}
end

return secrets
