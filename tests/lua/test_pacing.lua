-- The adaptive pacer with simulated latencies: up while latency stays near its floor, down when the
-- server queues or refuses, always within [1, max]; max_rate spaces the starts.
local pacing = require "runner.pacing"
local host = require "runbook.host"

local p = pacing.new({ max = 16 })
is(p:limit(), 2, "starts at 2 in flight")
for _ = 1, 60 do p:observe(0.010, 204) end
ok(p:limit() >= 8, "steady latency: the limit grows (" .. p:limit() .. ")")
for _ = 1, 400 do p:observe(0.010, 204) end
is(p:limit(), 16, "never above max")
local before = p:limit()
for _ = 1, 30 do p:observe(0.050, 204) end
ok(p:limit() < before, "latency 5x its floor: the limit falls (" .. before .. " -> " .. p:limit() .. ")")
for _ = 1, 300 do p:observe(0.200, 204) end
is(p:limit(), 1, "sustained queueing brings it down to 1, never below")
local mixed = pacing.new({ max = 16 })
for _ = 1, 200 do mixed:observe(0.002, 200, "GET") mixed:observe(0.030, 204, "DELETE") end
is(mixed:limit(), 16, "fast GETs and slow DELETEs are judged apart: their mix is not queueing")

-- A server that serves 4 requests at once and queues the rest, 10 ms each, behind a round trip of
-- 0 or 20 ms: the pacer should find 4 and stay there, not sit above it (each request over 4 waits in
-- front of the server's users). Behind 20 ms, a one-request queue is only a third more latency.
local function settle(round_trip)
  local p, above, at = pacing.new({ max = 16 }), 0, 0
  for _ = 1, 3000 do
    local limit = p:limit()
    if limit > 4 then above = above + 1 elseif limit == 4 then at = at + 1 end
    p:observe(round_trip + 0.010 + math.max(0, limit - 4) * 0.010, 204)
  end
  return above / 3000, at / 3000
end
for _, rtt in ipairs({ 0, 0.020 }) do
  local above, at = settle(rtt)
  ok(above < 0.1, string.format("%d ms round trip: above 4 in flight %.0f%% of the time", rtt * 1000, above * 100))
  ok(at > 0.6, string.format("  and at 4 %.0f%% of the time", at * 100))
end

local q = pacing.new({ max = 16, start = 8 })
q:observe(0.01, 204)
q:observe(0.01, 429)
is(q:limit(), 4, "a 429 halves it")
q:observe(0.01, 503)
is(q:limit(), 4, "  once per round of requests in flight, not once per failed request")
for _ = 1, 4 do q:observe(0.01, 204) end
q:observe(0, nil)
is(q:limit(), 2, "no answer at all counts as overload")
local fixed = pacing.new({ max = 6, adaptive = false })
for _ = 1, 50 do fixed:observe(1.0, 500) end
is(fixed:limit(), 6, "adaptive = false keeps exactly max")

-- max_rate on a simulated clock (host.monotonic and sched.sleep stood in), so the spacing is checked
-- exactly, whatever the load of the machine: 11 starts at 20/s are 0.05 s apart, 0.5 s in all.
local sched = require "runner.sched"
local real_monotonic, real_sleep = host.monotonic, sched.sleep
local clock, waits = 1000, {}
host.monotonic = function() return clock end
sched.sleep = function(seconds) waits[#waits + 1] = seconds; clock = clock + seconds end
local rated = pacing.new({ max = 4, max_rate = 20 })
local starts = {}
for _ = 1, 11 do rated:acquire(); starts[#starts + 1] = clock end
local gaps_right = true
for i = 2, #starts do gaps_right = gaps_right and math.abs(starts[i] - starts[i - 1] - 0.05) < 1e-9 end
ok(gaps_right, "max_rate 20/s: each start 0.05 s after the one before")
ok(math.abs(starts[11] - starts[1] - 0.5) < 1e-9, string.format("  11 starts take 0.5 s (%.3f s)", starts[11] - starts[1]))
is(#waits, 10, "  the first starts at once, each other one waits")
clock = clock + 1
local waited = #waits
rated:acquire()
is(#waits, waited, "after a pause longer than the spacing, the next start does not wait")
rated:acquire()
ok(#waits == waited + 1 and math.abs(waits[#waits] - 0.05) < 1e-9, "  and the one after waits 0.05 s again: no burst")
host.monotonic, sched.sleep = real_monotonic, real_sleep

-- On the real clock, the waits really pass: load can only make them longer, so only the lower bound
-- is exact. The upper bound is generous (10 x 0.05 s; a scheduler that slept a whole second a wait
-- would take 10 s) and stays far from what a loaded machine adds to ten short sleeps.
rated = pacing.new({ max = 4, max_rate = 20 })
local t0 = host.monotonic()
for _ = 1, 11 do rated:acquire() end
local took = host.monotonic() - t0
ok(took >= 0.49 and took < 5, string.format("on the real clock, 11 starts at 20/s take at least 0.5 s (%.2f s)", took))
done_testing()
