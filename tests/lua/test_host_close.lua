-- host's File, Output and Hasher are to-be-closed values: `local x <close> = ...` releases them when the
-- scope ends, however it ends, and a second close (explicit close() first, or __close twice) is harmless.
local host = require "runbook.host"
local dir = (os.getenv("TMPDIR") or "/tmp") .. "/runbook-close-test." .. host.getpid()
assert(host.mkdirs(dir))

local function left_open(kind, open)
  local kept
  local fine, err = pcall(function()
    local x <close> = assert(open())
    kept = x
    error("an error in the scope")
  end)
  like(err, "an error in the scope", kind .. ": the scope's error comes through <close>")
  return fine, kept
end

-- Output
local _, out = left_open("output", function() return host.create_output(dir .. "/left.bin") end)
raises(function() out:write("x") end, "closed output", "output: <close> closes it when its scope ends in an error")
local fine, err = pcall(getmetatable(out).__close, out)
ok(fine, "output: closing it again is harmless" .. (fine and "" or ": " .. tostring(err)))
local sum, size
fine, err = pcall(function()
  local o <close> = assert(host.create_output(dir .. "/kept.bin"))
  o:write("abc")
  sum, size = o:close()
end)
ok(fine, "output: close() then <close> raises nothing" .. (fine and "" or ": " .. tostring(err)))
is(sum, host.sha256("abc"), "output: close() inside the scope still returns the SHA-256")
is(size, 3, "output: and the size")

-- Hasher
local _, hasher = left_open("hasher", host.hasher)
raises(function() hasher:update("x") end, "finished hasher", "hasher: <close> finishes it when its scope ends")
fine, err = pcall(getmetatable(hasher).__close, hasher)
ok(fine, "hasher: closing it again is harmless" .. (fine and "" or ": " .. tostring(err)))
local hex
fine, err = pcall(function()
  local h <close> = host.hasher()
  hex = h:update("abc"):hex()
end)
ok(fine, "hasher: hex() then <close> raises nothing" .. (fine and "" or ": " .. tostring(err)))
is(hex, host.sha256("abc"), "hasher: hex() inside the scope is the SHA-256")

-- File (journals), which had __close already
local _, file = left_open("file", function() return host.open_append(dir .. "/journal") end)
raises(function() file:append("x\n") end, "closed file", "file: <close> closes it when its scope ends")
fine = pcall(getmetatable(file).__close, file)
ok(fine, "file: closing it again is harmless")

for _, name in ipairs({"left.bin", "kept.bin", "journal"}) do assert(host.remove(dir .. "/" .. name)) end
done_testing()
