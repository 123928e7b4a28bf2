-- JSON for plans, journals and APIs. Decoding is lua-cjson's; numbers that are whole come back as
-- integers (cjson yields floats for every number, and "90.0 days" is not what an operator wants to read).
-- Encoding is ours: keys sorted, so a plan file is the same bytes for the same plan and diffs well.
local cjson = require "cjson"

local json = {}

json.null = cjson.null
local array_mt = { __name = "json.array" }

local decoder = cjson.new()
decoder.decode_max_depth(200)
-- NaN, Infinity and hex numbers are not JSON: a document holding one could never be encoded again
-- (a plan's digest, a journal line), so it is refused where it is read.
decoder.decode_invalid_numbers(false)

-- Marks a table to be encoded as a JSON array even when empty.
function json.array(t)
  return setmetatable(t or {}, array_mt)
end

-- cjson decodes [] and {} alike, as an empty table, which would then be encoded back as {}: an object
-- read from an API and sent back would change (Kubernetes rejects `"rules": {}`). So each empty array
-- outside strings is given one sentinel element before decoding, and turned into json.array() after.
local EMPTY_ARRAY = "\0[]"
local EMPTY_ARRAY_JSON = '"\\u0000[]"'

local function mark_empty_arrays(text)
  if not text:find("%[%s*%]") then return text end
  local out, copied, pos = {}, 1, 1
  while true do
    local at = text:find('[%["]', pos)
    if not at then break end
    if text:byte(at) == 34 then -- a string: skip to its closing quote, past escapes
      local i = at + 1
      while true do
        local q = text:find('["\\]', i)
        if not q then return text end -- unterminated: the decoder reports it
        if text:byte(q) == 92 then i = q + 2 else pos = q + 1 break end
      end
    else
      local close = text:match("^%[%s*()%]", at)
      if close then
        out[#out + 1] = text:sub(copied, at)
        out[#out + 1] = EMPTY_ARRAY_JSON
        copied, pos = close, close + 1
      else
        pos = at + 1
      end
    end
  end
  out[#out + 1] = text:sub(copied)
  return table.concat(out)
end

-- After cjson: whole numbers back to integers, marked empty arrays back to json.array().
local function restore(v)
  if type(v) == "table" then
    if v[1] == EMPTY_ARRAY and v[2] == nil and next(v, 1) == nil then return json.array() end
    for k, x in pairs(v) do
      if type(x) == "table" or math.type(x) == "float" then v[k] = restore(x) end
    end
  elseif math.type(v) == "float" and v == math.floor(v) and v >= -2^53 and v <= 2^53 then
    return math.tointeger(v)
  elseif v == math.huge or v == -math.huge then
    error("a number is too large (1e400 becomes infinity, which JSON cannot hold)", 0)
  end
  return v
end

-- decode(text) -> value | nil, message (the message names the character position)
function json.decode(text)
  if type(text) ~= "string" then return nil, "expected JSON text, got " .. type(text) end
  local ok, value = pcall(decoder.decode, mark_empty_arrays(text))
  if not ok then return nil, (tostring(value):gsub("^.-:%d+: ", "")) end
  local restored, result = pcall(restore, value)
  if not restored then return nil, result end
  return result
end

local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
                  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
local function quote(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return escapes[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function is_array(t)
  if getmetatable(t) == array_mt then return true end
  local n = #t
  if n == 0 then return false end
  local count = 0
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 or k > n then return false end
    count = count + 1
  end
  return count == n
end

local function sorted_keys(t, where)
  local keys = {}
  for k in pairs(t) do
    if type(k) ~= "string" then
      error(string.format("cannot encode %s: table key %s is not a string", where, tostring(k)), 0)
    end
    keys[#keys + 1] = k
  end
  table.sort(keys)
  return keys
end

local encode_value

local function encode_table(t, out, indent, depth, where, seen)
  if seen[t] then error("cannot encode " .. where .. ": it refers to itself", 0) end
  seen[t] = true
  local nl, pad, pad_in, colon = "", "", "", ":"
  if indent then
    nl = "\n"
    pad = string.rep(indent, depth)
    pad_in = pad .. indent
    colon = ": "
  end
  if is_array(t) then
    if #t == 0 then out[#out + 1] = "[]" else
      out[#out + 1] = "[" .. nl
      for i = 1, #t do
        out[#out + 1] = pad_in
        encode_value(t[i], out, indent, depth + 1, where .. "[" .. i .. "]", seen)
        out[#out + 1] = (i < #t and "," or "") .. nl
      end
      out[#out + 1] = pad .. "]"
    end
  else
    local keys = sorted_keys(t, where)
    if #keys == 0 then out[#out + 1] = "{}" else
      out[#out + 1] = "{" .. nl
      for i, k in ipairs(keys) do
        out[#out + 1] = pad_in .. quote(k) .. colon
        encode_value(t[k], out, indent, depth + 1, where .. "." .. k, seen)
        out[#out + 1] = (i < #keys and "," or "") .. nl
      end
      out[#out + 1] = pad .. "}"
    end
  end
  seen[t] = nil
end

function encode_value(v, out, indent, depth, where, seen)
  local kind = type(v)
  if v == nil or v == json.null then
    out[#out + 1] = "null"
  elseif kind == "boolean" then
    out[#out + 1] = v and "true" or "false"
  elseif kind == "number" then
    if math.type(v) == "integer" then
      out[#out + 1] = string.format("%d", v)
    elseif v ~= v or v == math.huge or v == -math.huge then
      error("cannot encode " .. where .. ": " .. tostring(v) .. " is not a JSON number", 0)
    elseif v == math.floor(v) and v >= -2^53 and v <= 2^53 then
      out[#out + 1] = string.format("%d", math.tointeger(v))
    else
      out[#out + 1] = string.format("%.17g", v)
    end
  elseif kind == "string" then
    out[#out + 1] = quote(v)
  elseif kind == "table" then
    encode_table(v, out, indent, depth, where, seen)
  else
    error("cannot encode " .. where .. ": a " .. kind .. " is not data", 0)
  end
end

-- encode(value[, {indent = "  "}]) -> text. Raises on functions, cycles, NaN and non-string keys.
-- opts.depth: the indentation level the value starts at (for values nested in a streamed document).
function json.encode(value, opts)
  local out = {}
  encode_value(value, out, opts and opts.indent, opts and opts.depth or 0, "value", {})
  return table.concat(out)
end

-- Compact encoding in C (lua-cjson), for large documents where key order does not matter (journal
-- lines hold a whole plan). Raises on functions and other non-data like encode.
local encoder = cjson.new()
encoder.encode_sparse_array(true)
function json.encode_compact(value)
  return encoder.encode(value)
end

function json.pretty(value)
  return json.encode(value, { indent = "  " })
end

return json
