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

local function whole_numbers(v)
  if type(v) == "table" then
    for k, x in pairs(v) do
      if type(x) == "table" or math.type(x) == "float" then v[k] = whole_numbers(x) end
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
  local ok, value = pcall(decoder.decode, text)
  if not ok then return nil, (tostring(value):gsub("^.-:%d+: ", "")) end
  local whole, result = pcall(whole_numbers, value)
  if not whole then return nil, result end
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
