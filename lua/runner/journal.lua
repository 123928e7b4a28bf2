-- The journal of one apply: JSON lines, each on disk (fdatasync) before the engine goes on.
-- The first line holds the whole plan and its digest, so `runbook resume JOURNAL` needs nothing else;
-- then a start and an end line per action. A torn last line (power lost mid-write) is cut off in
-- place; any other damage (an edited plan, an end without its start) refuses the resume rather than
-- guessing. Journals are created new in a directory only their user can write, never through a link.
local host = require "runbook.host"
local json = require "runbook.json"
local plan = require "runner.plan"
local secrets = require "runbook.secrets"
local util = require "runbook.util"

local journal = {}
-- Format 2 adds the plan's digest to the first line; journals of format 1 (written before) are still
-- resumed, with a warning that their plan cannot be checked.
journal.FORMAT = "runbook-journal/2"
journal.FORMAT_V1 = "runbook-journal/1"

local Journal = {}
Journal.__index = Journal

function journal.default_dir()
  local state = os.getenv("XDG_STATE_HOME")
  if state and state ~= "" then return state .. "/runbook" end
  local home = os.getenv("HOME")
  if not home or home == "" then util.fail(2, "no journal directory: set HOME, XDG_STATE_HOME or --journal-dir") end
  return home .. "/.local/state/runbook"
end

-- The journal directory of a command: --journal-dir, or the default.
function journal.dir(opts)
  return opts["journal-dir"] or journal.default_dir()
end

-- A journal's file name: RUNBOOK-STAMP-PID.journal, the time it was created (UTC) and the process.
local NAME_PATTERN = "^(.+)%-(%d%d%d%d%d%d%d%dT%d%d%d%d%d%dZ)%-(%d+)%.journal$"

local function file_name(dir, runbook)
  return string.format("%s/%s-%s-%d.journal", dir, runbook, os.date("!%Y%m%dT%H%M%SZ"), host.getpid())
end

-- parse_name(path) -> runbook, stamp ("20260102T030405Z"), pid (a string); nil for a file not named
-- as journal.create names journals. The directory part of path is not looked at.
function journal.parse_name(path)
  return (path:match("[^/]*$")):match(NAME_PATTERN)
end

-- A journal named without a directory that is not in the working directory is looked up in the
-- journal directory, with or without its .journal suffix (what `runbook history` prints).
function journal.find(name, opts)
  if name:find("/", 1, true) or host.stat(name, true) then return name end
  local dir = journal.dir(opts)
  for _, candidate in ipairs({ dir .. "/" .. name, dir .. "/" .. name .. ".journal" }) do
    if host.stat(candidate, true) then return candidate end
  end
  return name
end

-- A journal directory must be the operator's and writable by nobody else (as ssh wants ~/.ssh):
-- whoever can write there can swap a journal or plant a link where one will be created.
local function check_dir(dir)
  local ok, err = host.check_private_dir(dir)
  if not ok then util.fail(1, "refusing the journal directory: %s", err) end
end

-- The directory a journal is in ("" for one in /).
function journal.dir_of(path)
  return path:match("^(.*)/[^/]*$") or "."
end
local dir_of = journal.dir_of

-- open(path, create): created new (never an existing file, never through a symbolic link), or, for a
-- resume, the existing journal itself, never a link to one.
local function open(path, create)
  check_dir(dir_of(path) == "" and "/" or dir_of(path))
  local file, err = host.open_append(path, create and "new" or "existing")
  if not file then util.fail(1, "cannot open the journal: %s", err) end
  return setmetatable({ path = path, file = file }, Journal)
end

-- Records one event; the time is added here. A journal that cannot be written stops everything:
-- going on without a record is exactly what the journal exists to prevent.
function Journal:record(event)
  event.time = util.format_time(host.now())
  -- A secret a server echoed into a message is not written (runbook.secrets).
  local ok, err = self.file:append(secrets.redact(json.encode_compact(event)) .. "\n")
  if not ok then util.fail(1, "cannot write the journal %s: %s; stopping", self.path, err) end
end

function Journal:close()
  self.file:close()
end

function journal.create(dir, doc)
  local ok, err = host.mkdirs(dir, tonumber("700", 8))
  if not ok then util.fail(1, "cannot create the journal directory: %s", err) end
  local j = open(file_name(dir, doc.runbook), true)
  j:record({ type = "plan", format = journal.FORMAT, plan = doc, plan_digest = journal.plan_digest(doc),
             pid = host.getpid() })
  return j
end

function journal.reopen(path)
  return open(path, false)
end

-- resume(state) -> the journal read as state, its torn last line cut off, reopened to go on, with the
-- resume recorded.
function journal.resume(state)
  journal.repair(state)
  local j = journal.reopen(state.path)
  j:record({ type = "resume", pid = host.getpid() })
  return j
end

-- The digest of a plan as the journal holds it: of the document read back from its JSON line (numbers
-- and empty lists as decoding gives them), so resume computes the same digest from the line.
function journal.plan_digest(doc)
  return plan.digest(json.decode(json.encode_compact(doc)))
end

-- read(path) -> {plan, outcomes = {[id] = end event}, started = {[id] = time of its first start event},
--                torn = bool, finished = bool, size = bytes read, began = time of the plan line,
--                last_time = time of the last line, stop_reason = why the last run stopped (nil after
--                a resume)}
-- The journal resume trusts: any damage journal.parse found refuses it (exit 2, naming the line).
function journal.read(path)
  local st = host.stat(path, true)
  if st and st.type == "link" then
    util.fail(2, "journal %s is a symbolic link; runbook does not follow links to journals: give the journal's own path",
      path)
  end
  local text, err = host.read_file(path, true)
  if not text then util.fail(2, "cannot read journal %s", err) end
  local state = journal.parse(text, path)
  if state.damage then util.fail(2, "%s", state.damage) end
  state.size = #text
  return state
end

-- The actions of runbook `name` on `target` (of `kind`, when given) whose end was "done" today (UTC),
-- from every journal in dir: the fact a per-day cap needs (ctx.done_today). Runbooks cannot read files, so
-- the engine counts for them. Only journals written to today are opened; one that cannot be read stops the
-- count with an error, since a cap must not count low in silence.
function journal.done_today(dir, name, kind, target)
  local now = host.now()
  local today, midnight = os.date("!%Y-%m-%d", math.floor(now)), now - now % 86400
  local done = {}
  for _, file in ipairs(host.list_dir(dir) or {}) do
    local path = dir .. "/" .. file
    local st = journal.parse_name(file) == name and host.stat(path)
    if st and st.type == "file" and st.mtime >= midnight then
      local ok, state = pcall(journal.read, path)
      if not ok then util.fail(1, "cannot count what was done today: %s", tostring(state.message or state)) end
      if state.plan.runbook == name and state.plan.target == target then
        for id, event in pairs(state.outcomes) do
          local action = state.plan.actions[id]
          if action and event.outcome == "done" and type(event.time) == "string" and event.time:sub(1, 10) == today
              and (kind == nil or action.kind == kind) then
            done[#done + 1] = action
          end
        end
      end
    end
  end
  return done
end

-- applies_of(doc, dir) -> the journals (as read returns them) in dir of an apply of exactly this plan
-- (same digest), oldest first: a saved plan is applied once, like terraform's ("Saved plan is stale").
-- Only journals of the plan's runbook written since the plan was made are read.
function journal.applies_of(doc, dir)
  local digest = journal.plan_digest(doc)
  local found = {}
  local prefix = doc.runbook .. "-"
  for _, file in ipairs(host.list_dir(dir) or {}) do
    local path = dir .. "/" .. file
    local st = util.starts_with(file, prefix) and file:match("%.journal$") and host.stat(path)
    if st and st.type == "file" and st.mtime >= doc.created_unix then
      local ok, state = pcall(journal.read, path)
      if ok and state.plan and journal.plan_digest(state.plan) == digest then found[#found + 1] = state end
    end
  end
  table.sort(found, function(a, b) return a.path < b.path end)
  return found
end

-- parse(text, path): what read returns, from the journal's text (path names it in messages; a fuzz
-- entry). A journal that is not one at all raises (exit 2); one whose lines contradict each other or
-- its plan gets state.damage, the first problem with its line number: read refuses it, a reader that
-- only looks up records (userbackup) may go on. The lines must tell one story: a plan whose digest
-- matches it, each end after its action's start, only actions of the plan, nothing after the finish
-- but a resume.
function journal.parse(text, path)
  local lines = {}
  for line in text:gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  -- Not text:match("[^\n]+$"): that retries from every byte of a long line, quadratic in the plan's size.
  local tail = #text > 0 and text:sub(-1) ~= "\n"
  local state = { path = path, outcomes = {}, started = {}, torn = false, finished = false, events = 0 }
  if tail then state.torn = true end -- written without its newline: the process died mid-write
  local function damaged(n, fmt, ...)
    state.damage = state.damage or string.format("journal %s is damaged at line %d (%s); it cannot be resumed safely",
      path, n, string.format(fmt, ...))
  end
  for n, line in ipairs(lines) do
    local event = json.decode(line)
    if type(event) ~= "table" or type(event.type) ~= "string" then
      if n == #lines and not tail then
        state.torn = true -- the last line is garbage: a torn write whose newline did land
        break
      end
      util.fail(2, "journal %s is damaged at line %d; it cannot be resumed safely", path, n)
    end
    if (event.type == "start" or event.type == "end") and math.type(event.id) ~= "integer" then
      util.fail(2, "journal %s is damaged at line %d (an action without its id); it cannot be resumed safely", path, n)
    end
    if n == 1 then
      if event.type ~= "plan" or (event.format ~= journal.FORMAT and event.format ~= journal.FORMAT_V1)
          or type(event.plan) ~= "table" then
        util.fail(2, "%s is not a runbook journal (its first line holds no plan)", path)
      end
      -- The plan is what resume carries out: it must be the one the apply journaled. The digest is
      -- taken before check_document fills in defaults. Journals of the first format (before digests)
      -- have none to check.
      if event.format == journal.FORMAT_V1 and event.plan_digest == nil then
        state.unverified = true
      else
        local ok, digest = pcall(plan.digest, event.plan)
        if type(event.plan_digest) ~= "string" then
          damaged(1, "its plan has no digest")
        elseif not ok or digest ~= event.plan_digest then
          damaged(1, "its plan does not match the digest recorded with it: the plan was edited")
        end
      end
      plan.check_document(event.plan, path) -- resume relies on the same fields as apply
      state.plan = event.plan
    elseif state.finished and event.type ~= "resume" then
      damaged(n, "a %s line after the run's finish line", event.type)
    elseif (event.type == "start" or event.type == "end") and not state.plan.actions[event.id] then
      damaged(n, "action %d is not in the journal's plan", event.id)
    elseif event.type == "start" then
      state.started[event.id] = state.started[event.id] or event.time or true
    elseif event.type == "end" then
      if not state.started[event.id] then damaged(n, "the end of action %d, which never started", event.id) end
      state.outcomes[event.id] = event
    elseif event.type == "finish" then
      state.finished = true
    elseif event.type == "stop" then
      state.stop_reason = event.reason
    elseif event.type == "resume" then
      state.finished, state.stop_reason = false, nil
    end
    if n == 1 then state.began = event.time end
    state.last_time = event.time or state.last_time
    state.events = n
  end
  if not state.plan then util.fail(2, "journal %s is empty", path) end
  state.valid_text = table.concat(lines, "\n", 1, state.events) .. "\n"
  return state
end

-- Drops a torn last line before appending again, so it cannot glue itself to the next record. The
-- journal is cut in place (on disk first, then truncated to its valid lines): no copy, so no free
-- space is needed, and no second file exists even for a moment.
function journal.repair(state)
  if not state.torn then return end
  check_dir(dir_of(state.path) == "" and "/" or dir_of(state.path))
  local file, err = host.open_append(state.path, "existing")
  if not file then util.fail(1, "cannot repair the journal: %s", err) end
  local ok, terr = file:truncate(#state.valid_text, state.size)
  file:close()
  if not ok then util.fail(1, "cannot repair the journal %s: %s", state.path, terr) end
end

return journal
