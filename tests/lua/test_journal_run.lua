-- runner.journal's names and look-ups, and what the engine decides when it resumes a journal: the
-- pieces that need no server (the whole apply and resume run in tests/10-engine.t and 50-kill-resume.t).
local host = require "runbook.host"
local journal = require "runner.journal"
local json = require "runbook.json"
local engine = require "runner.engine"
local plan = require "runner.plan"

local dir = (os.getenv("TMPDIR") or "/tmp") .. "/runbook-journal-run." .. host.getpid()
assert(host.mkdirs(dir, tonumber("700", 8)))

-- A plan as apply holds it: checked, its defaults filled in (what the journal's reader gives back).
local function plan_doc(runbook, target, created_unix)
  local doc = { format = "runbook-plan/1", runbook = runbook, runbook_source = "built-in", runbook_sha256 = "x",
           created = "2026-12-03T00:00:00Z", created_unix = created_unix or 1, target = target, params = {},
           actions = { { id = 1, kind = "k.cut", target = "a", reason = "r", args = {} },
                       { id = 2, kind = "k.delete", target = "b", reason = "r", args = {} },
                       { id = 3, kind = "k.delete", target = "c", reason = "r", args = {} } } }
  plan.check_document(doc, "test plan")
  return doc
end

-- names: what journal.create writes is what parse_name reads
local doc = plan_doc("wipe-hub-db", "hub-a")
local j = journal.create(dir, doc)
j:close()
local runbook, stamp, pid = journal.parse_name(j.path)
is(runbook, "wipe-hub-db", "parse_name: the runbook of a journal journal.create made (a name with hyphens)")
like(stamp, "^%d%d%d%d%d%d%d%dT%d%d%d%d%d%dZ$", "  its time stamp")
is(pid, tostring(host.getpid()), "  its process")
is(journal.dir_of(j.path), dir, "dir_of: the directory it was made in")
is(select("#", journal.parse_name("prune-dormant-20261204T031500Z-4242.journal")), 3, "parse_name: three parts")
is(journal.parse_name("/x/a-b-20261204T031500Z-1-20261205T031500Z-2.journal"), "a-b-20261204T031500Z-1",
   "  the stamp and process are the last ones: a runbook name cannot be mistaken for them")
is(journal.parse_name("prune-dormant-20261204T031500Z-4242.journal.bak"), nil, "  not a journal: another suffix")
is(journal.parse_name("prune-dormant-20261204-4242.journal"), nil, "  not a journal: no time stamp")
is(journal.parse_name("-20261204T031500Z-4242.journal"), nil, "  not a journal: no runbook")
is(journal.parse_name("/20261204T031500Z/x.journal"), nil, "  the directory part is not read")

-- find: a bare name is looked up in the journal directory, with or without .journal
local base = j.path:match("[^/]+$")
local opts = { ["journal-dir"] = dir }
is(journal.find(base, opts), j.path, "find: a file name in the journal directory")
is(journal.find(base:gsub("%.journal$", ""), opts), j.path, "  and without its .journal suffix")
is(journal.find("./" .. base, opts), "./" .. base, "  a name with a directory is taken as it is")
is(journal.find("nothing-here", opts), "nothing-here", "  a name found nowhere is left as given (read says why)")
is(journal.dir(opts), dir, "dir: --journal-dir")

-- applies_of: the journals of exactly this plan, since it was made
local other = plan_doc("wipe-hub-db", "hub-b")
is(#journal.applies_of(doc, dir), 1, "applies_of: the apply of this plan")
is(journal.applies_of(doc, dir)[1].path, j.path, "  its journal")
is(#journal.applies_of(other, dir), 0, "  none for another plan of the same runbook")
is(#journal.applies_of(plan_doc("wipe-hub-db", "hub-a", os.time() + 3600), dir), 0,
   "  none written before the plan was made")

-- resume: the journal reopened with a resume line, a torn last line cut off first
j = journal.reopen(j.path)
j:record({ type = "start", id = 1, kind = "k.cut", target = "a" })
j:record({ type = "end", id = 1, outcome = "done" })
j:close()
local text = assert(host.read_file(j.path))
assert(host.write_file(j.path, text .. '{"type":"start","id'))
local state = journal.read(j.path)
ok(state.torn, "a journal with a torn last line reads as torn")
local resumed = journal.resume(state)
resumed:close()
local lines = {}
for line in assert(host.read_file(j.path)):gmatch("[^\n]+") do lines[#lines + 1] = line end
is(#lines, 4, "resume: the torn line is gone and one line is added")
local last = json.decode(lines[4])
is(last.type .. " " .. last.pid, "resume " .. host.getpid(), "  the resume, with its process")
ok(not journal.read(j.path).torn, "  the journal reads whole again")

-- engine.resume_state: what is not run again
local def = { actions = { ["k.cut"] = { repeat_on_resume = true }, ["k.delete"] = {} } }
local function resume_state(outcomes)
  local s = { plan = plan_doc("wipe-hub-db", "hub-a"), outcomes = {} }
  for id, outcome in pairs(outcomes) do s.outcomes[id] = { outcome = outcome } end
  local done_ids, earlier = engine.resume_state(def, s)
  local ids = {}
  for id = 1, 3 do if done_ids[id] then ids[#ids + 1] = id end end
  return table.concat(ids, ","), earlier.done .. " done, " .. earlier.skipped .. " skipped",
    engine.count_pending(s.plan, done_ids)
end
local ids, earlier, pending = resume_state({ [1] = "done", [2] = "skipped", [3] = "failed" })
is(ids, "2", "resume_state: a failed action runs again; one that repeats on resume runs again before a pending one")
is(earlier, "0 done, 1 skipped", "  counted: only what is not run again")
is(pending, 2, "  two to go")
ids, earlier, pending = resume_state({ [1] = "done", [2] = "done", [3] = "done" })
is(ids, "1,2,3", "  nothing repeats when nothing after it is pending")
is(earlier .. " / " .. pending, "3 done, 0 skipped / 0", "  all done earlier, none to go")
def.actions["k.cut"].repeat_on_resume = function(action) return action.target ~= "a" end
ids = resume_state({ [1] = "done" })
is(ids, "1", "  repeat_on_resume as a function of the action")

done_testing()
