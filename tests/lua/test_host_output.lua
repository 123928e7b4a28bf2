-- host.create_output: backups are created exclusively, hashed as written, and on disk when closed.
local host = require "runbook.host"
local dir = (os.getenv("TMPDIR") or "/tmp") .. "/runbook-output-test." .. host.getpid()
assert(host.mkdirs(dir))
local path = dir .. "/backup.bin"
local out = assert(host.create_output(path))
for _ = 1, 100 do out:write(string.rep("\0\255", 5000)) end
is(out:size(), 1000000, "output counts bytes written")
local sum, size = out:close()
is(size, 1000000, "close returns the size")
is(sum, host.sha256_file(path), "close returns the SHA-256 of what is on disk")
is(host.stat(path).mode, tonumber("600", 8), "backups are mode 0600")
local again, err = host.create_output(path)
ok(again == nil and err:find("File exists") ~= nil, "an existing file is never overwritten")
raises(function() out:write("x") end, "closed output", "writing after close raises")
assert(host.remove(path))
ok(host.stat(path) == nil, "remove removes")
done_testing()
