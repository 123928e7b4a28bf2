-- The adaptive pacer with simulated latencies: up while latency stays near its floor, down when the
-- server queues or refuses, always within [1, max]; max_rate spaces the starts.
local pacing = require "runbook.pacing"
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
local rated = pacing.new({ max = 4, max_rate = 20 })
local t0 = host.monotonic()
for _ = 1, 11 do rated:acquire() end
local took = host.monotonic() - t0
ok(took >= 0.45 and took < 1.0, string.format("max_rate 20/s: 11 starts take about 0.5 s (%.2f s)", took))
done_testing()
