-- Backups for runbooks (require "runbook.backup"): the one way a runbook writes local files, and it
-- cannot overwrite anything. Files are created exclusively (an existing file is an error), mode 0600,
-- fsync'd, and their SHA-256 is returned, so a later step (or a later process) can verify them.
--
--   local backup = require "runbook.backup"
--   assert(backup.mkdir("/var/backups/hub-2026-11-23"))
--   local saved = assert(backup.write("/var/backups/hub-2026-11-23/ingress.json", text))  -- {sha256=, size=}
--   local text = assert(backup.read(path, saved.sha256))   -- nil, message if missing or changed
local host = require "runbook.host"
local json = require "runbook.json"

local backup = {}

local function absolute(path)
  if type(path) ~= "string" or path:sub(1, 1) ~= "/" then
    error("backup paths must be absolute (path parameters are made absolute when the plan is made)", 3)
  end
  return path
end

-- A directory backups go in must be the operator's and writable by nobody else (as ssh wants
-- ~/.ssh): whoever can write there can replace a backup before it is restored.
local function private(path)
  local ok, err = host.check_private_dir(path)
  if not ok then return nil, "refusing the backup directory: " .. err end
  return true
end

-- mkdir(path) -> true | nil, message: the directory and its parents, mode 0700.
function backup.mkdir(path)
  local ok, err = host.mkdirs(absolute(path), tonumber("700", 8))
  if not ok then return nil, err end
  return private(path)
end

-- mkdir_new(prefix) -> path | nil, message: a directory that did not exist before, named
-- prefix-1, prefix-2, ... (parents made as needed, mode 0700). An attempt killed halfway leaves its
-- directory behind, and the next attempt, maybe within the same second, must not write into it.
function backup.mkdir_new(prefix)
  absolute(prefix)
  local parent = prefix:match("^(.*)/[^/]+$")
  if parent ~= "" then
    local ok, err = host.mkdirs(parent, tonumber("700", 8))
    if not ok then return nil, err end
  end
  local fine, why = private(parent ~= "" and parent or "/")
  if not fine then return nil, why end
  local last_err
  for n = 1, 1000 do
    local path = prefix .. "-" .. n
    local ok, err = host.mkdirs(path, tonumber("700", 8), true)
    if ok then return path end
    if not host.stat(path) then return nil, err end -- failed for another reason than being taken
    last_err = err
  end
  return nil, last_err .. " (and 999 more names after it are taken; clear out old partial backups)"
end

-- unused_name(prefix) -> path | nil, message: the first of prefix-1, prefix-2, ... that does not
-- exist, to move a backup aside under (publish refuses a name that exists).
function backup.unused_name(prefix)
  absolute(prefix)
  for n = 1, 1000 do
    local path = prefix .. "-" .. n
    if not host.stat(path) then return path end
  end
  return nil, "cannot find a free name " .. prefix .. "-N: the first 1000 are taken; clear out old backups"
end

-- write(path, text) -> {sha256=, size=} | nil, message. Fails if the file exists.
function backup.write(path, text)
  local dir = absolute(path):match("^(.*)/[^/]*$")
  local fine, why = private(dir ~= "" and dir or "/")
  if not fine then return nil, why end
  local out, err = host.create_output(path, tonumber("600", 8))
  if not out then return nil, "cannot create backup " .. err end
  local ok, werr = out:write(text)
  if not ok then
    out:close()
    host.remove(path)
    return nil, "cannot write backup " .. werr
  end
  local sum, size = out:close()
  if not sum then return nil, "cannot write backup " .. size end
  return { sha256 = sum, size = size }
end

-- read(path[, sha256]) -> text | nil, message. With sha256, the content must match it.
function backup.read(path, sha256)
  local text, err = host.read_file(absolute(path))
  if not text then return nil, "cannot read backup " .. err end
  if sha256 and host.sha256(text) ~= sha256 then
    return nil, "backup " .. path .. " does not match its checksum: it changed since it was written"
  end
  return text
end

-- verify(path, sha256) -> true | nil, message, for files too large to read whole.
function backup.verify(path, sha256)
  local sum, err = host.sha256_file(absolute(path))
  if not sum then return nil, "cannot read backup " .. err end
  if sum ~= sha256 then return nil, "backup " .. path .. " does not match its checksum: it changed since it was written" end
  return true
end

function backup.exists(path)
  return host.stat(absolute(path)) ~= nil
end

-- publish(from, to) -> true | nil, message: renames a finished backup directory into place, so a
-- directory under its final name is always complete. Fails if `to` exists.
function backup.publish(from, to)
  absolute(from)
  if host.stat(absolute(to)) then return nil, "backup " .. to .. " exists already" end
  local ok, err = host.rename(from, to, true)
  if not ok then return nil, "cannot publish backup " .. err end
  return true
end

-- ---- a directory of files with a manifest ----
-- A batch's backup is a directory: its files, and manifest.json listing them under `tables` as
-- {file = name in the directory, sha256 = ...} (with whatever else the runbook records). It is
-- written under a name of its own (partial_dir), then published whole (finish).

backup.MANIFEST = "manifest.json"

local function stamp(time) return os.date("!%Y%m%dT%H%M%SZ", math.floor(time)) end

-- partial_dir(dir, time) -> path | nil, message: a new directory to write dir's files in, named
-- dir.partial-TIME-N. An attempt killed halfway leaves its partial directory behind.
function backup.partial_dir(dir, time)
  return backup.mkdir_new(dir .. ".partial-" .. stamp(time))
end

-- read_manifest(dir) -> manifest | nil, message: dir's manifest, every file it lists verified.
function backup.read_manifest(dir)
  local text, err = backup.read(dir .. "/" .. backup.MANIFEST)
  if not text then return nil, err end
  local manifest = json.decode(text)
  if type(manifest) ~= "table" or type(manifest.tables) ~= "table" then
    return nil, "the backup manifest in " .. dir .. " is damaged"
  end
  for _, t in ipairs(manifest.tables) do
    local verified, verr = backup.verify(dir .. "/" .. t.file, t.sha256)
    if not verified then return nil, verr end
  end
  return manifest
end

-- finish(partial, dir, manifest) -> true | nil, message: writes the manifest into partial, reads it
-- back with every file verified, and publishes partial as dir.
function backup.finish(partial, dir, manifest)
  local saved, err = backup.write(partial .. "/" .. backup.MANIFEST, json.pretty(manifest) .. "\n")
  if not saved then return nil, err end
  local verified, verr = backup.read_manifest(partial)
  if not verified then return nil, verr end
  return backup.publish(partial, dir)
end

-- set_aside(dir, why, time) -> the new path | nil, message: moves a backup directory out of the way
-- (to dir.WHY-TIME-N), for a new attempt to write under its name.
function backup.set_aside(dir, why, time)
  local aside, err = backup.unused_name(dir .. "." .. why .. "-" .. stamp(time))
  if not aside then return nil, err end
  local ok, perr = backup.publish(dir, aside)
  if not ok then return nil, perr end
  return aside
end

return backup
