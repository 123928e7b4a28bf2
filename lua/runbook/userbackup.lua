-- Records of deleted hub users (require "runbook.userbackup"): what prune-dormant keeps of each user
-- just before deleting them, so the run can be audited and undone (restore-users).
--
--   local userbackup = require "runbook.userbackup"
--   local saved = assert(userbackup.save(ctx.run_backup_dir, record))   -- {file=, sha256=}: put it in the journal
--   local run = assert(userbackup.read_run("/state/runbook/prune-dormant-20261203T101500Z-42.journal"))
--   for _, entry in ipairs(run.users) do print(entry.record.user.name) end
--
-- One file per user, users/NAME.json under the run's backup directory (beside its journal: the
-- journal FILE.journal has FILE.backup/), mode 0600, written under a temporary name and renamed, so a
-- file under its final name is always whole. Its SHA-256 goes into the journal's end line for the
-- action; read_run checks every file against it.
local backup = require "runbook.backup"
local host = require "runbook.host"
local json = require "runbook.json"
local journal = require "runner.journal"
local util = require "runbook.util"

local userbackup = {}

userbackup.FORMAT = "runbook-deleted-user/1"

-- The file of one user: the name percent-encoded (josé -> jos%C3%A9, "a#b" -> a%23b), or its SHA-256
-- when that would not fit a file name.
function userbackup.file_name(name)
  local escaped = util.url_escape(name)
  if #escaped > 200 then escaped = "sha256-" .. host.sha256(name) end
  return "users/user-" .. escaped .. ".json"
end

-- The run's backup directory, from its journal's path.
function userbackup.dir_of_journal(journal_path)
  return (journal_path:gsub("%.journal$", "")) .. ".backup"
end

-- find(dir, name) -> {file=, sha256=, earlier = true} for a record saved earlier, or nil
function userbackup.find(dir, name)
  local file = userbackup.file_name(name)
  local path = dir .. "/" .. file
  if not backup.exists(path) then return nil end
  local sum = host.sha256_file(path)
  return sum and { file = file, sha256 = sum, earlier = true } or nil
end

-- save(dir, record) -> {file=, sha256=, size=} | nil, message
-- A file saved by an earlier attempt (a run killed after saving, before deleting) is kept as it is:
-- it was taken when the user still existed.
function userbackup.save(dir, record)
  local earlier = userbackup.find(dir, record.user.name)
  if earlier then return earlier end
  local file = userbackup.file_name(record.user.name)
  local path = dir .. "/" .. file
  local ok, err = backup.mkdir(dir .. "/users")
  if not ok then return nil, "cannot create the backup directory " .. err end
  record.format = userbackup.FORMAT
  local partial
  partial, err = backup.unused_name(path .. ".partial")
  if not partial then return nil, err end
  local saved
  saved, err = backup.write(partial, json.pretty(record) .. "\n")
  if not saved then return nil, err end
  ok, err = backup.publish(partial, path)
  if not ok then return nil, err end
  return { file = file, sha256 = saved.sha256, size = saved.size }
end

local function failure_text(e)
  if type(e) == "table" and e.message then return e.message end
  return tostring(e)
end

-- read_run(path) -> run | nil, message
-- path: a prune-dormant journal, or its backup directory. run = {journal=, dir=, plan=, users = {
-- {record=, action=, message=} ...}, missing = {{name=, why=}...}}: every user the run deleted, its
-- record checked against the journal's checksum; `missing` lists deleted users without a usable record.
function userbackup.read_run(path)
  if type(path) ~= "string" or path == "" then return nil, "name a prune-dormant journal or its backup directory" end
  path = path:gsub("/+$", "")
  local journal_path, dir
  if path:match("%.journal$") then
    journal_path, dir = path, userbackup.dir_of_journal(path)
  elseif path:match("%.backup$") then
    dir, journal_path = path, path:gsub("%.backup$", "") .. ".journal"
  else
    return nil, string.format("%s is neither a journal (*.journal) nor a run's backup directory (*.backup)", path)
  end
  local text, err = host.read_file(journal_path)
  if not text then return nil, "cannot read the run's journal " .. err end
  local ok, state = pcall(journal.parse, text, journal_path)
  if not ok then return nil, failure_text(state) end
  local plan = state.plan
  if plan.runbook ~= "prune-dormant" then
    return nil, string.format("%s is a journal of %s, not of prune-dormant", journal_path, tostring(plan.runbook))
  end
  local run = { journal = journal_path, dir = dir, plan = plan, users = {}, missing = {} }
  for id, action in ipairs(plan.actions) do
    local event = state.outcomes[id]
    if action.kind == "hub.delete_user" and event and event.outcome == "done" then
      local data = type(event.data) == "table" and event.data or {}
      local saved = type(data.backup) == "table" and data.backup or nil
      if not saved or type(saved.file) ~= "string" or type(saved.sha256) ~= "string" or saved.file:find("..", 1, true) then
        run.missing[#run.missing + 1] = { name = action.target,
          why = data.why_no_backup or "the journal records no backup of this user" }
      else
        local body, read_err = backup.read(dir .. "/" .. saved.file, saved.sha256)
        local record = body and json.decode(body)
        if not body then
          run.missing[#run.missing + 1] = { name = action.target, why = read_err }
        elseif type(record) ~= "table" or record.format ~= userbackup.FORMAT or type(record.user) ~= "table"
            or record.user.name ~= action.target then
          run.missing[#run.missing + 1] = { name = action.target, why = "its backup " .. saved.file .. " is not a user record" }
        else
          run.users[#run.users + 1] = { record = record, action = action, message = event.message }
        end
      end
    end
  end
  return run
end

return userbackup
