-- runbook.backup: an attempt killed halfway leaves its partial directory behind; the next attempt,
-- within the same second, gets a directory of its own and never writes into the old one.
local host = require "runbook.host"
local backup = require "runbook.backup"
local base = (os.getenv("TMPDIR") or "/tmp") .. "/runbook-backup-names." .. host.getpid()
local prefix = base .. "/site/batch-0001.partial-20261123T101010Z"

local first = assert(backup.mkdir_new(prefix))
is(first, prefix .. "-1", "the first attempt's directory, parents made")
assert(backup.write(first .. "/users.copy", "half a copy"))
local second = assert(backup.mkdir_new(prefix))
is(second, prefix .. "-2", "the next attempt with the same name gets a new directory")
ok(backup.write(second .. "/users.copy", "whole copy") ~= nil, "  and writes its files there")
is(host.read_file(first .. "/users.copy"), "half a copy", "the leftover is untouched")
is(host.stat(second).mode, tonumber("700", 8), "mode 0700")

local ok_, err = host.mkdirs(first, tonumber("700", 8), true)
ok(ok_ == nil and err:find("File exists", 1, true) ~= nil, "host.mkdirs with new=true refuses an existing directory")
ok(host.mkdirs(first, tonumber("700", 8)) == true, "  without it, an existing directory is fine")

assert(host.write_file(base .. "/a-file", "x"))
local none, ferr = backup.mkdir_new(base .. "/a-file/sub")
ok(none == nil and ferr:find("a-file", 1, true) ~= nil, "a parent that is a file: an error naming it, not a loop")

is(backup.unused_name(prefix), prefix .. "-3", "unused_name: the first free name")
raises(function() backup.mkdir_new("relative/path") end, "absolute", "relative paths are refused")

-- host.rename(from, to, true) never replaces what is at `to`; publish relies on it.
assert(host.write_file(base .. "/new", "new"))
assert(host.write_file(base .. "/old", "old"))
local renamed, rerr = host.rename(base .. "/new", base .. "/old", true)
ok(renamed == nil and rerr:find("File exists", 1, true) ~= nil, "rename with no_replace refuses an existing target")
is(host.read_file(base .. "/old"), "old", "  which keeps its content")
ok(host.rename(base .. "/new", base .. "/fresh", true) == true, "  and renames to a free name")
local published, perr = backup.publish(first, second)
ok(published == nil and perr:find("exists already", 1, true) ~= nil, "publish onto an existing backup directory is refused")
done_testing()
