-- `runbook history [NAME]`: what was done, to what, when and by which run, read from the journals --
-- the answer to "where did my account go?". Without NAME, one line per run; with NAME, every action
-- on that target (a user name, "namespaces/nublado-alice", or the last part of a target) in any run.
-- Journals are the record: nothing else is kept, so history is as complete as the journal directory.
local host = require "runbook.host"
local journal = require "runner.journal"
local json = require "runbook.json"
local ui = require "runner.ui"
local util = require "runbook.util"

local history = {}

-- Every journal in dir, read, oldest first; one that cannot be read is listed with why.
local function journals(dir)
  local list = {}
  for _, file in ipairs(host.list_dir(dir) or {}) do
    local path = dir .. "/" .. file
    local st = file:match("%.journal$") and host.stat(path, true)
    if st and st.type == "file" then
      local ok, state = pcall(journal.read, path)
      if ok then
        list[#list + 1] = state
      else
        list[#list + 1] = { path = path, unreadable = tostring(state.message or state), began = "" }
      end
    end
  end
  table.sort(list, function(a, b)
    if a.began ~= b.began then return (a.began or "") < (b.began or "") end
    return a.path < b.path
  end)
  return list
end

local function run_state(state)
  if state.unreadable then return "unreadable" end
  if state.finished then return "finished" end
  if state.stop_reason then return "stopped: " .. state.stop_reason end
  return "incomplete (killed, or still running)"
end

local function counts(state)
  local c = { done = 0, skipped = 0, failed = 0, already = 0 }
  for _, event in pairs(state.outcomes or {}) do
    if event.outcome == "done" and event.already then
      c.already = c.already + 1
    elseif c[event.outcome] then
      c[event.outcome] = c[event.outcome] + 1
    end
  end
  return c
end

local function matches(target, name)
  return target == name or target:sub(-(#name + 1)) == "/" .. name
end

local function base(path) return path:match("[^/]+$") end

local function list_runs(runs)
  if ui.output == "json" then
    local out = json.array()
    for _, r in ipairs(runs) do
      local c = counts(r)
      out[#out + 1] = { journal = r.path, runbook = r.plan and r.plan.runbook, target = r.plan and r.plan.target,
                        began = r.began, last = r.last_time, state = run_state(r), actions = r.plan and #r.plan.actions,
                        done = c.done, already_done = c.already, skipped = c.skipped, failed = c.failed,
                        error = r.unreadable }
    end
    ui.emit_json(json.encode(out))
    return 0
  end
  if #runs == 0 then
    ui.say("No runs recorded.")
    return 0
  end
  local rows = { { "BEGAN", "RUNBOOK", "TARGET", "ACTIONS", "DONE", "SKIPPED", "FAILED", "STATE", "JOURNAL" } }
  for _, r in ipairs(runs) do
    local c = counts(r)
    rows[#rows + 1] = { r.began or "?", r.plan and ui.escape(r.plan.runbook) or "?", r.plan and ui.escape(r.plan.target) or "?",
                        r.plan and tostring(#r.plan.actions) or "-", tostring(c.done + c.already), tostring(c.skipped),
                        tostring(c.failed), ui.escape(r.unreadable or run_state(r)), base(r.path) }
  end
  ui.table(rows)
  return 0
end

local function list_actions(runs, name)
  local found = {}
  for _, r in ipairs(runs) do
    for _, action in ipairs(r.plan and r.plan.actions or {}) do
      if matches(action.target, name) then
        local event = r.outcomes[action.id]
        found[#found + 1] = { run = r, action = action, event = event }
      end
    end
  end
  if ui.output == "json" then
    local out = json.array()
    for _, f in ipairs(found) do
      out[#out + 1] = { journal = f.run.path, runbook = f.run.plan.runbook, run_target = f.run.plan.target,
                        kind = f.action.kind, target = f.action.target, reason = f.action.reason,
                        planned = f.run.plan.created, outcome = f.event and f.event.outcome or "not run",
                        already = f.event and f.event.already or nil, time = f.event and f.event.time or nil,
                        message = f.event and f.event.message or nil, data = f.event and f.event.data or nil }
    end
    ui.emit_json(json.encode(out))
    return 0
  end
  if #found == 0 then
    ui.say(string.format("Nothing in the journals touched %s.", ui.escape(name)))
    return 0
  end
  local rows = { { "TIME", "RUNBOOK", "ON", "ACTION", "OUTCOME", "JOURNAL" } }
  for _, f in ipairs(found) do
    local outcome = f.event and (f.event.already and "already done" or f.event.outcome) or "not run"
    local message = f.event and f.event.message
    rows[#rows + 1] = { f.event and f.event.time or ("planned " .. f.run.plan.created), ui.escape(f.run.plan.runbook),
                        ui.escape(f.run.plan.target), ui.escape(f.action.kind .. " " .. f.action.target),
                        ui.escape(outcome .. (message and (": " .. message) or "")), base(f.run.path) }
  end
  ui.table(rows)
  ui.say(string.format("%s; why each was planned: runbook history %s --output json",
    util.count(#found, "action"), ui.escape(name)))
  return 0
end

function history.show(dir, name)
  local runs = journals(dir)
  if name then return list_actions(runs, name) end
  return list_runs(runs)
end

return history
