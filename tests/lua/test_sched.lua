-- The scheduler with a stand-in for the curl multi core whose transfers finish while it is looked
-- at (as on loopback): a task whose transfer is done must go on at once, not after an idle slice.
local host = require "runbook.host"
local real_core = package.loaded["runbook.http_core"]
local transfers = {}
local fake_core = {
  wait = function(seconds)
    -- every pending transfer completes during this look; nothing is left running
    for _, t in ipairs(transfers) do t.finished = true end
    transfers = {}
    if seconds and seconds > 0 then host.sleep(seconds) end
    return 0
  end,
}
local function start_transfer()
  local t = { finished = false }
  t.done = function(self) return self.finished end
  transfers[#transfers + 1] = t
  return t
end
package.loaded["runbook.http_core"] = fake_core
package.loaded["runner.sched"] = nil
local sched = require "runner.sched"
package.loaded["runbook.http_core"] = real_core
package.loaded["runner.sched"] = nil

local jobs, finished = 40, 0
local started = host.monotonic()
sched.run({
  limit = function() return 1 end,
  next_job = function()
    if jobs == 0 then return nil end
    jobs = jobs - 1
    return function() sched.await(start_transfer()) return true end
  end,
  on_finish = function() finished = finished + 1 end,
})
local elapsed = host.monotonic() - started
is(finished, 40, "40 jobs, one at a time, each awaiting a transfer: all finish")
ok(elapsed < 0.5, string.format("  without idling a slice per job when the transfer finished while looked at (%.3f s; 40 slices would be 2 s)", elapsed))
done_testing()
