-- Base64 (RFC 4648, standard alphabet) for kubeconfig *-data fields and exec plugin credentials.
-- Small inputs only (certificates, keys): plain Lua is fast enough.
local base64 = {}

local ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local VALUE = {}
for i = 1, #ALPHABET do VALUE[ALPHABET:byte(i)] = i - 1 end

-- decode(text) -> bytes | nil, message. Whitespace (line-wrapped PEM-style data) is ignored.
function base64.decode(text)
  local clean = text:gsub("%s", "")
  if #clean % 4 == 1 then return nil, "not base64 (wrong length)" end
  local out, bits, nbits = {}, 0, 0
  for i = 1, #clean do
    local c = clean:byte(i)
    if c == 61 then -- '=' ends the data
      if clean:sub(i):match("^=+$") == nil then return nil, "not base64 (data after '=')" end
      break
    end
    local v = VALUE[c]
    if not v then return nil, "not base64 (character " .. string.format("%q", string.char(c)) .. ")" end
    bits = (bits << 6) | v
    nbits = nbits + 6
    if nbits >= 8 then
      nbits = nbits - 8
      out[#out + 1] = string.char((bits >> nbits) & 0xFF)
    end
  end
  return table.concat(out)
end

function base64.encode(bytes)
  local out = {}
  for i = 1, #bytes, 3 do
    local a, b, c = bytes:byte(i, i + 2)
    local n = (a << 16) | ((b or 0) << 8) | (c or 0)
    local chunk = {}
    for k = 3, 0, -1 do
      local v = (n >> (6 * k)) & 63
      chunk[#chunk + 1] = ALPHABET:sub(v + 1, v + 1)
    end
    if not b then chunk[3], chunk[4] = "=", "=" elseif not c then chunk[4] = "=" end
    out[#out + 1] = table.concat(chunk)
  end
  return table.concat(out)
end

return base64
