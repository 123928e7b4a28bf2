-- The adaptive pacer. Queue mode (no round-trip probe) with simulated latencies: up while latency stays
-- near its floor, down when the server queues or refuses, always within [1, max]. Share mode on a
-- simulated single-server hub and clock: it settles where the hub is busy with ours about `share`
-- of the time with no standing queue of ours, at 0, 20 and 50 ms round trips, when the service time
-- doubles or someone else holds the hub, and on 429/5xx. max_rate spaces the starts.
local pacing = require "runner.pacing"
local host = require "runbook.host"
local sched = require "runner.sched"
local real_monotonic, real_sleep = host.monotonic, sched.sleep

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

-- ==== share mode on a simulated hub ====
-- One server, first come first served: our actions (a GET then a DELETE, each a round trip plus its
-- service time at the hub), the pacer's probe (service PROBE_WORK), and others' work (a listing that
-- holds the hub). Events run in time order on a simulated clock; the sim plays the engine: it starts
-- actions while fewer than limit() are in flight, each after take_probe/round_trip and start_delay,
-- and calls finished() when an action's last response is in.
local PROBE_WORK = 0.0005

local function simulate(o)
  local clock = 0
  host.monotonic = function() return clock end
  local p = pacing.new({ max = o.max or 16, share = o.share, max_rate = o.max_rate, adaptive = o.adaptive,
                         probe = function() end })
  local events = {}
  local function at(t, fn)
    local i = #events
    while i > 0 and events[i].t > t do i = i - 1 end
    table.insert(events, i + 1, { t = t, fn = fn })
  end
  local hub_free, served = 0, {} -- served: our requests {arrive, start, work}
  local function send(kind, work, respond)
    local sent = clock
    at(clock + o.rtt / 2, function()
      local start = math.max(clock, hub_free)
      hub_free = start + work
      if kind ~= "probe" then served[#served + 1] = { arrive = clock, start = start, work = work } end
      at(hub_free + o.rtt / 2, function() respond(clock - sent) end)
    end)
  end
  for _, other in ipairs(o.others or {}) do
    at(other.at, function() hub_free = math.max(clock, hub_free) + other.seconds end)
  end
  local inflight, started, done, limits, finish_times = 0, 0, 0, {}, {}
  local try_start
  local function request(i)
    local kind = i == 1 and "GET" or "DELETE"
    send(kind, o.work(clock, kind), function(latency)
      local status = o.status and o.status(clock) or (kind == "GET" and 200 or 204)
      p:observe(latency, status, kind)
      if i == 1 then return request(2) end
      inflight, done = inflight - 1, done + 1
      finish_times[#finish_times + 1] = clock
      p:finished()
      try_start()
    end)
  end
  local function begin()
    local wait = p:start_delay(clock)
    at(clock + wait, function() request(1) end)
  end
  try_start = function()
    while inflight < p:limit() and started < o.actions do
      started, inflight = started + 1, inflight + 1
      limits[#limits + 1] = p:limit()
      if p:take_probe() then
        send("probe", PROBE_WORK, function(latency)
          p:observe(latency, 200, "GET")
          p:round_trip(not o.probe_unanswered and latency or nil)
          begin()
        end)
      else
        begin()
      end
    end
  end
  at(0, try_start)
  while #events > 0 do
    local e = table.remove(events, 1)
    clock = e.t
    e.fn()
  end
  host.monotonic = real_monotonic
  -- What the hub's users feel between from and to (seconds): how busy the hub was with ours, and how
  -- many of ours waited in its queue on average (the sum of their waits over the time: Little's law).
  local function window(from, to)
    local busy, waited, actions = 0, 0, 0
    for _, r in ipairs(served) do
      if r.arrive >= from and r.arrive < to then busy, waited = busy + r.work, waited + (r.start - r.arrive) end
    end
    for _, t in ipairs(finish_times) do if t >= from and t < to then actions = actions + 1 end end
    return { busy = busy / (to - from), waiting = waited / (to - from), per_second = actions / (to - from) }
  end
  local max_limit = 0
  for _, l in ipairs(limits) do max_limit = math.max(max_limit, l) end
  return { pacer = p, window = window, duration = clock, max_limit = max_limit }
end

local function steady_work(get, delete)
  return function(_, kind) return kind == "GET" and get or delete end
end

-- The hub does an action's work in 10 ms (2 + 8): 100 actions a second at most.
for _, rtt in ipairs({ 0, 0.020, 0.050 }) do
  local run = simulate({ rtt = rtt, actions = 3000, work = steady_work(0.002, 0.008) })
  local w = run.window(run.duration / 2, run.duration)
  local ms = rtt * 1000
  ok(w.busy >= 0.6 and w.busy <= 0.85,
    string.format("share 0.75, %d ms: the hub busy with ours %.2f of the time", ms, w.busy))
  ok(w.waiting < 0.35, string.format("  no standing queue of ours: %.2f waiting on average", w.waiting))
  ok(w.per_second >= 60, string.format("  %.0f actions/s of the hub's 100", w.per_second))
  ok(run.max_limit <= 16, "  never above max in flight (" .. run.max_limit .. ")")
end

-- What the bound on waiting means: a fixed 8 in flight there keeps a standing queue of ours.
local eight = simulate({ rtt = 0.020, actions = 1500, max = 8, adaptive = false, work = steady_work(0.002, 0.008) })
local ew = eight.window(eight.duration / 2, eight.duration)
ok(ew.waiting > 1, string.format("(a fixed 8 in flight at 20 ms: %.2f of ours waiting on average)", ew.waiting))

local low = simulate({ rtt = 0.020, actions = 2000, share = 0.4, work = steady_work(0.002, 0.008) })
local lw = low.window(low.duration / 2, low.duration)
ok(lw.busy >= 0.3 and lw.busy <= 0.48, string.format("share 0.4 at 20 ms: busy with ours %.2f of the time", lw.busy))

-- The hub's DELETE doubles from 8 to 16 ms after 10 s (the hub slows down: a GC, a bigger database),
-- and back after 30 s: the rate follows both ways, the queue stays short. (Busy a little less than
-- the share while slow: our GETs more often wait behind our own longer DELETEs, and a wait counts
-- as the hub's time.)
local function changing(t, kind)
  if kind == "GET" then return 0.002 end
  return (t >= 10 and t < 30) and 0.016 or 0.008
end
local slowed = simulate({ rtt = 0.020, actions = 3500, work = changing })
local before, slow_w, after = slowed.window(5, 10), slowed.window(15, 30), slowed.window(35, slowed.duration)
ok(slow_w.busy >= 0.5 and slow_w.busy <= 0.85 and slow_w.waiting < 0.35,
  string.format("service time doubled: busy %.2f, %.2f waiting", slow_w.busy, slow_w.waiting))
ok(slow_w.per_second < 0.7 * before.per_second,
  string.format("  the rate falls with it (%.0f/s -> %.0f/s)", before.per_second, slow_w.per_second))
ok(after.per_second > 0.85 * before.per_second and after.waiting < 0.35,
  string.format("  and rises again when the hub is fast again (%.0f/s, %.2f waiting)", after.per_second, after.waiting))
local early = slowed.window(10, 11)
ok(early.waiting < 1.5,
  string.format("  in the first second of the slow hub, %.2f of ours waiting on average", early.waiting))

-- Someone else's listing holds the hub for half a second at 10 s: our requests then queue behind
-- it (nothing can prevent that); the pacer must not keep feeding the queue, and must come back.
local listing = simulate({ rtt = 0.020, actions = 2500, work = steady_work(0.002, 0.008),
                           others = { { at = 10, seconds = 0.5 } } })
local stalled, later = listing.window(10, 10.5), listing.window(13, 18)
local before_listing = listing.window(5, 10)
ok(stalled.per_second < 0.2 * before_listing.per_second,
  string.format("a 0.5 s listing: %.0f actions/s during it", stalled.per_second))
ok(later.per_second > 0.85 * before_listing.per_second and later.waiting < 0.35,
  string.format("  3 s later back to %.0f/s (from %.0f/s), %.2f waiting", later.per_second,
    before_listing.per_second, later.waiting))

-- 429 then 503 from 10 s to 12 s: halved once per window, not once per refused request; back after.
local refusing = simulate({ rtt = 0.020, actions = 2500, work = steady_work(0.002, 0.008),
  status = function(t) if t >= 10 and t < 11 then return 429 elseif t >= 11 and t < 12 then return 503 end end })
local halvings, rate_before = 0, nil
for _, h in ipairs(refusing.pacer.history) do
  if h.time < 10 then rate_before = h.rate end
  if h.reason:match("^server answered") then halvings = halvings + 1 end
end
local refused, recovered = refusing.window(10.5, 12), refusing.window(16, 20)
ok(halvings >= 2 and halvings <= 10, string.format("429/503 for 2 s: %d halvings (once a window)", halvings))
ok(refused.per_second < 0.4 * rate_before,
  string.format("  %.0f actions/s while refused (%.0f/s before)", refused.per_second, rate_before))
ok(recovered.per_second > 0.85 * rate_before, string.format("  %.0f/s 4 s after", recovered.per_second))

-- No probe answers: no round trip to subtract, every latency counts as the hub's: slower, never faster.
local blind = simulate({ rtt = 0.020, actions = 1500, work = steady_work(0.002, 0.008), probe_unanswered = true })
local bw = blind.window(blind.duration / 2, blind.duration)
ok(bw.busy <= 0.4 and bw.waiting < 0.1,
  string.format("probes unanswered at 20 ms: the round trip counts as hub time, busy %.2f (slower, not faster)",
    bw.busy))
local unanswered = pacing.new({ max = 16, probe = function() return nil end })
ok(unanswered:take_probe(), "share mode: the first start measures the round trip")
ok(not unanswered:take_probe(), "  one probe at a time")
unanswered:round_trip(nil)
is(unanswered:round_trip_estimate(), 0, "  an unanswered probe measures nothing: round trip 0")

-- max_rate and adaptive = false still rule in share mode.
local capped = simulate({ rtt = 0.020, actions = 600, max_rate = 20, work = steady_work(0.002, 0.008) })
local cw = capped.window(capped.duration / 2, capped.duration)
ok(cw.per_second <= 20.5, string.format("max_rate 20 caps the share's rate (%.1f/s)", cw.per_second))
local fixed3 = simulate({ rtt = 0.020, actions = 600, max = 3, adaptive = false, work = steady_work(0.002, 0.008) })
is(fixed3.max_limit, 3, "adaptive = false with a probe: exactly max in flight")
is(fixed3.pacer.mode, "queue", "  and the share is not applied")

-- max_rate on a simulated clock (host.monotonic and sched.sleep stood in), so the spacing is checked
-- exactly, whatever the load of the machine: 11 starts at 20/s are 0.05 s apart, 0.5 s in all.
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
