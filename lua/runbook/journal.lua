-- The journal of one apply: JSON lines, each on disk (fdatasync) before the engine goes on.
-- The first line holds the whole plan, so `runbook resume JOURNAL` needs nothing else; then a start
-- and an end line per action. A torn last line (power lost mid-write) is ignored; any other damage
-- refuses the resume rather than guessing.
local host = require "runbook.host"
local json = require "runbook.json"
local plan = require "runbook.plan"
local util = require "runbook.util"

local journal = {}
journal.FORMAT = "runbook-journal/1"

local Journal = {}
Journal.__index = Journal

function journal.default_dir()
  local state = os.getenv("XDG_STATE_HOME")
  if state and state ~= "" then return state .. "/runbook" end
  local home = os.getenv("HOME")
  if not home or home == "" then util.fail(2, "no journal directory: set HOME, XDG_STATE_HOME or --journal-dir") end
  return home .. "/.local/state/runbook"
end

local function open(path)
  local file, err = host.open_append(path)
  if not file then util.fail(1, "cannot open the journal: %s", err) end
  return setmetatable({ path = path, file = file }, Journal)
end

-- Records one event; the time is added here. A journal that cannot be written stops everything:
-- going on without a record is exactly what the journal exists to prevent.
function Journal:record(event)
  event.time = util.format_time(host.now())
  local ok, err = self.file:append(json.encode_compact(event) .. "\n")
  if not ok then util.fail(1, "cannot write the journal %s: %s; stopping", self.path, err) end
end

function Journal:close()
  self.file:close()
end

function journal.create(dir, doc)
  local ok, err = host.mkdirs(dir, tonumber("700", 8))
  if not ok then util.fail(1, "cannot create the journal directory: %s", err) end
  local stamp = os.date("!%Y%m%dT%H%M%SZ")
  local path = string.format("%s/%s-%s-%d.journal", dir, doc.runbook, stamp, host.getpid())
  local j = open(path)
  j:record({ type = "plan", format = journal.FORMAT, plan = doc, pid = host.getpid() })
  return j
end

function journal.reopen(path)
  return open(path)
end

-- read(path) -> {plan, outcomes = {[id] = end event}, started = {[id] = time of its first start event},
--                torn = bool, finished = bool}
function journal.read(path)
  local text, err = host.read_file(path)
  if not text then util.fail(2, "cannot read journal %s", err) end
  return journal.parse(text, path)
end

-- parse(text, path): what read returns, from the journal's text (path names it in messages; a fuzz entry).
function journal.parse(text, path)
  local lines = {}
  for line in text:gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  -- Not text:match("[^\n]+$"): that retries from every byte of a long line, quadratic in the plan's size.
  local tail = #text > 0 and text:sub(-1) ~= "\n"
  local state = { path = path, outcomes = {}, started = {}, torn = false, finished = false, events = 0 }
  if tail then state.torn = true end -- written without its newline: the process died mid-write
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
      if event.type ~= "plan" or event.format ~= journal.FORMAT or type(event.plan) ~= "table" then
        util.fail(2, "%s is not a runbook journal (its first line holds no plan)", path)
      end
      plan.check_document(event.plan, path) -- resume relies on the same fields as apply
      state.plan = event.plan
    elseif event.type == "start" then
      state.started[event.id] = state.started[event.id] or event.time or true
    elseif event.type == "end" then
      state.outcomes[event.id] = event
    elseif event.type == "finish" then
      state.finished = true
    elseif event.type == "resume" then
      state.finished = false
    end
    state.events = n
  end
  if not state.plan then util.fail(2, "journal %s is empty", path) end
  state.valid_text = table.concat(lines, "\n", 1, state.events) .. "\n"
  return state
end

-- Drops a torn last line before appending again, so it cannot glue itself to the next record.
function journal.repair(state)
  if not state.torn then return end
  local ok, err = host.write_file(state.path, state.valid_text, tonumber("600", 8))
  if not ok then util.fail(1, "cannot repair the journal: %s", err) end
end

return journal
