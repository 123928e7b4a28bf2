-- Cooperative scheduling without threads (the model of OpenResty's cosockets): code inside a task
-- calls http or sleep as if they blocked; the task yields here and the scheduler drives every
-- transfer of the curl multi handle until one can go on. Outside a task the same calls simply block.
local core = require "runbook.http_core"
local host = require "runbook.host"

local sched = {}

local tasks = setmetatable({}, { __mode = "k" }) -- coroutine -> true while the scheduler runs it
local WAIT_SLICE = 0.05                           -- seconds a blocking wait lets pass between checks

local function in_task()
  local co = coroutine.running()
  return tasks[co] == true
end

-- Waits for a transfer started with http_core.start.
function sched.await(transfer)
  if in_task() then
    coroutine.yield("await", transfer)
  else
    while not transfer:done() do core.wait(WAIT_SLICE) end
  end
end

function sched.sleep(seconds)
  if seconds <= 0 then return end
  if in_task() then
    coroutine.yield("sleep", host.monotonic() + seconds)
  else
    local deadline = host.monotonic() + seconds
    while true do
      local left = deadline - host.monotonic()
      if left <= 0 or host.interrupted() then return end
      -- Transfers of other callers keep moving while this one waits.
      if core.wait(0) > 0 then core.wait(math.min(left, WAIT_SLICE)) else host.sleep(math.min(left, WAIT_SLICE)) end
    end
  end
end

local function ready(task, now)
  if task.waiting == "await" then return task.arg:done() end
  if task.waiting == "sleep" then return now >= task.arg end
  return true
end

-- run{next_job = function() -> fn|nil, limit = function() -> n, on_finish = function(job_result...)}
-- Starts jobs while fewer than limit() run, resumes each when what it waits for is ready, returns
-- when no job is left. A job's error ends the whole run (jobs report their own failures as values).
function sched.run(opts)
  local active = {}
  local exhausted = false
  local function step(task, ...)
    local results = table.pack(coroutine.resume(task.co, ...))
    if not results[1] then
      error(results[2], 0)
    end
    if coroutine.status(task.co) == "dead" then
      tasks[task.co] = nil
      if opts.on_finish then opts.on_finish(table.unpack(results, 2, results.n)) end
      return false
    end
    task.waiting, task.arg = results[2], results[3]
    return true
  end
  while true do
    while not exhausted and #active < math.max(1, opts.limit()) do
      local job = opts.next_job()
      if not job then exhausted = true break end
      local task = { co = coroutine.create(job) }
      tasks[task.co] = true
      if step(task) then active[#active + 1] = task end
    end
    if #active == 0 then return end
    local now = host.monotonic()
    local next_wake = now + WAIT_SLICE
    local any_ready = false
    for _, task in ipairs(active) do
      if ready(task, now) then any_ready = true end
      if task.waiting == "sleep" then next_wake = math.min(next_wake, task.arg) end
    end
    if not any_ready then
      local timeout = math.max(0, next_wake - now)
      local running = core.wait(0)
      -- That look at the transfers may itself have finished one (on loopback, often): sleeping
      -- then would idle a whole slice with a task ready to go on.
      for _, task in ipairs(active) do
        if ready(task, now) then any_ready = true break end
      end
      if not any_ready then
        if running > 0 then core.wait(timeout) else host.sleep(timeout) end
      end
    end
    now = host.monotonic()
    local still = {}
    for _, task in ipairs(active) do
      if ready(task, now) then
        if step(task) then still[#still + 1] = task end
      else
        still[#still + 1] = task
      end
    end
    active = still
  end
end

return sched
