-- How many actions run at once against a server, and how fast they start, adapted to how the server copes.
-- Two ways, by what the runbook can tell us:
--
-- Share of the hub (a handler that can measure the round trip: `round_trip(ctx)`, a request the
-- server answers with no work, GET /hub/api/ for JupyterHub). A single-threaded hub delays a user's
-- request by at most one service time while it serves one of ours; what hurts is a queue of ours
-- in front of them. So we keep the hub busy with our requests `share` of the time (hub_share, 0.75
-- by default) and never queue on purpose: each request's hub time is its latency less the round trip
-- (min of the last PROBES probes); over a window of completed actions, hub seconds per action h gives
--   rate = share / h actions a second, in flight = rate x (wall seconds per action) + 1.
-- h counts time waiting behind anyone: when the hub slows (a GC, someone else's listing, our own
-- queue), h rises and the rate falls at once; a faster hub raises it halfway per window. The same
-- on loopback and across 50 ms: the round trip is subtracted, not compared. On 429 or 5xx, half.
--
-- Queue (no round-trip probe, e.g. GitLab, many workers): how many of our requests wait in the
-- server's queue, estimated from their latency as TCP Vegas does: with `limit` in flight, a latency
-- `average` and the lowest latency seen in this run `floor` (round trip plus work, no queue),
--   waiting = limit * (1 - floor / average)
-- While fewer than `low` wait, one more in flight per round trip; past `high`, a fifth fewer, and
-- that limit is not tried again for REPROBE round trips; on 429 or 5xx, half. The floor never
-- forgets within a run, and is kept per request method (a GET and a DELETE differ naturally).
--
-- Both: bounded by [1, max], and by max_rate actions a second; adaptive = false keeps exactly max.
local host = require "runbook.host"
local sched = require "runner.sched"

local pacing = {}

local Pacer = {}
Pacer.__index = Pacer

local SMOOTHING = 0.2    -- queue: weight of a new sample in the moving average
local REPROBE = 100      -- queue: round trips before a limit that queued may be tried again
local JITTER = 0.001     -- queue: seconds of latency not counted as queueing: on loopback the floor is a
                         -- millisecond, and scheduling noise alone would read as a queue
local SHARE = 0.75       -- share: the hub's time our requests may take, by default (see README, make bench)
local PROBES = 8         -- share: round-trip probes remembered; the lowest is the round trip (a probe
                         -- waits at the hub too when it arrives during one of ours)
local WINDOW = 10        -- share: a window closes after this many completed actions (and 4 x in flight),
local WINDOW_SECONDS = 1 -- or after this long with 2 at least: a slow rate must not mean a slow recovery

-- new{max = n, max_rate = per_second (0: none), adaptive = true, start = 1 (share) or 2 (queue),
--     probe = function() -> seconds | nil (share mode), share = 0.75, low = 0.2, high = 0.5 (queue mode)}
function pacing.new(opts)
  local max = math.max(1, math.floor(opts.max or 1))
  local adaptive = opts.adaptive ~= false
  local self = setmetatable({
    max = max,
    adaptive = adaptive,
    mode = (adaptive and opts.probe) and "share" or "queue",
    low = opts.low or 0.2,
    high = opts.high or 0.5,
    max_rate = (opts.max_rate and opts.max_rate > 0) and opts.max_rate or nil,
    latency = {},         -- queue: per request method: { floor = lowest seen, average = moving average }
    calm_until = 0,       -- queue: no second decrease before the requests in flight at the first one finish
    queued_at = math.huge, -- queue: the last limit at which our requests queued
    reprobe_after = 0,    -- queue: and when it may be tried again (in completed requests)
    completed = 0,
    probe = opts.probe,
    share = opts.share or SHARE,
    probes = {},          -- share: the last PROBES round trips measured
    probe_due = true,     -- share: measure the round trip before the next start
    rate = nil,           -- share: actions a second (nil until the first window)
    window = { actions = 0, hub = 0, wall = 0, opened = host.monotonic() }, -- share: this window's actions,
                                                                             -- hub and wall seconds
    next_start = 0,       -- when the next action may begin (rate, max_rate)
    history = {},         -- (time, limit, rate) changes, for -v and the bench
  }, Pacer)
  -- Share mode starts with one in flight: a queue of ours is what it avoids, until it has measured.
  self.current = adaptive and math.min(max, opts.start or (self.mode == "share" and 1 or 2)) or max
  return self
end

function Pacer:limit()
  return math.max(1, math.floor(self.current))
end

local function record(self, reason)
  local n, last = self:limit(), self.history[#self.history]
  local rate = self.rate and math.floor(self.rate * 10 + 0.5) / 10 or nil
  local same_rate = last and (last.rate == rate or (rate and last.rate and math.abs(rate / last.rate - 1) < 0.1))
  if last and last.limit == n and same_rate then return end
  self.history[#self.history + 1] = { time = host.monotonic(), limit = n, rate = rate, reason = reason }
  require("runner.ui").verbose(string.format("pacing: %d in flight%s (%s)", n,
    rate and string.format(", %.1f/s", rate) or "", reason))
end

-- The round trip with no work at the server: the lowest of the last probes; 0 before any (then all
-- of a latency counts as the hub's: slower, never faster than the share).
function Pacer:round_trip_estimate()
  if #self.probes == 0 then return 0 end
  return math.min(table.unpack(self.probes))
end

-- take_probe() -> true when the caller should measure the round trip now, before its start (one
-- probe at a time, one a window); it then reports round_trip(seconds | nil).
function Pacer:take_probe()
  if self.mode ~= "share" or not self.probe_due or self.probing then return false end
  self.probing, self.probe_due = true, false
  return true
end

function Pacer:round_trip(seconds)
  self.probing = false
  if type(seconds) ~= "number" then return end
  table.insert(self.probes, seconds)
  if #self.probes > PROBES then table.remove(self.probes, 1) end
end

local function update_latency(self, seconds, key)
  local l = self.latency[key]
  if not l then
    l = { floor = seconds, average = seconds }
    self.latency[key] = l
  end
  l.floor = math.min(l.floor, seconds)
  l.average = l.average * (1 - SMOOTHING) + seconds * SMOOTHING
  return l
end

local function observe_queue(self, seconds, overloaded, key)
  local l = overloaded and nil or update_latency(self, seconds, key or "")
  local calm = self.completed >= self.calm_until
  if overloaded then
    if calm then
      self.current = math.max(1, self.current / 2)
      self.calm_until = self.completed + self:limit()
      record(self, "server answered " .. tostring(overloaded))
    end
    return
  end
  local waiting = self:limit() * (1 - l.floor / math.max(l.floor, l.average - JITTER))
  local why = string.format("%.1f waiting: latency %.0f ms, floor %.0f ms", waiting, l.average * 1000, l.floor * 1000)
  if waiting > self.high then
    if calm then
      self.queued_at = self:limit()
      self.reprobe_after = self.completed + REPROBE * self:limit()
      self.current = math.max(1, self.current * 0.8)
      self.calm_until = self.completed + self:limit()
      record(self, why)
    end
  elseif waiting < self.low and self.current < self.max then
    local cap = self.max
    if self.completed < self.reprobe_after then cap = math.min(cap, self.queued_at - 0.01) end
    self.current = math.max(self.current, math.min(cap, self.current + 1 / self.current))
    record(self, why)
  end
end

local function new_window(self)
  self.window = { actions = 0, hub = 0, wall = 0, opened = host.monotonic() }
  self.probe_due = true
end

-- A window closes: hub seconds per action give the rate that takes `share` of the hub, wall seconds
-- per action how many must be in flight to reach it. Down at once, up halfway; never up in a window
-- the server refused (refused requests cost it little, and would read as a fast hub).
local function close_window(self)
  local w = self.window
  local per_action = math.max(w.hub / w.actions, 1e-6)
  local target = self.share / per_action
  if self.rate and target > self.rate then target = w.overloaded and self.rate or (self.rate + target) / 2 end
  local in_flight = math.max(1, math.min(self.max, math.ceil(target * w.wall / w.actions) + 1))
  self.rate = target
  self.current = w.overloaded and math.min(self.current, in_flight) or in_flight
  record(self, string.format("hub %.1f ms an action, round trip %.0f ms, share %.2f", per_action * 1000,
    self:round_trip_estimate() * 1000, self.share))
  new_window(self)
end

local function observe_share(self, seconds, overloaded)
  if overloaded then
    -- Once per window: the requests already in flight answer the same, and are no news.
    if not self.window.overloaded then
      self.current = math.max(1, self.current / 2)
      if self.rate then self.rate = self.rate / 2 end
      record(self, "server answered " .. tostring(overloaded))
      new_window(self)
      self.window.overloaded = true
    end
    return
  end
  local w = self.window
  w.hub = w.hub + math.max(0, seconds - self:round_trip_estimate())
  w.wall = w.wall + seconds
end

-- observe(seconds, status[, key]): one response from the server (status nil: no response at all);
-- key tells apart requests of different natural latency (the HTTP method).
function Pacer:observe(seconds, status, key)
  if not self.adaptive then return end
  self.completed = self.completed + 1
  local overloaded = (status == nil or status == 429 or status >= 500) and (status or "nothing") or nil
  if self.mode == "share" then observe_share(self, seconds, overloaded)
  else observe_queue(self, seconds, overloaded, key) end
end

-- finished(): one action is over (share mode counts hub time per action).
function Pacer:finished()
  if self.mode ~= "share" then return end
  local w = self.window
  w.actions = w.actions + 1
  if w.actions >= math.max(WINDOW, 4 * self:limit())
    or (w.actions >= 2 and host.monotonic() - w.opened >= WINDOW_SECONDS) then
    close_window(self)
  end
end

-- start_delay(now) -> seconds: the next action's start is booked; it waits this long (rate, max_rate).
-- After a pause the next start goes at once, never a burst to catch up.
function Pacer:start_delay(now)
  local rate = self.max_rate
  if self.rate then rate = rate and math.min(rate, self.rate) or self.rate end
  if not rate then return 0 end
  local start = math.max(now, self.next_start)
  self.next_start = start + 1 / rate
  return start - now
end

-- acquire(): before an action starts; measures the round trip when due, then waits (yielding to other
-- actions) until the rate allows one more action to begin.
function Pacer:acquire()
  if self:take_probe() then
    -- A probe that fails is no measurement; the action after it meets the same server and says why.
    local ok, seconds = pcall(self.probe)
    self:round_trip(ok and seconds or nil)
  end
  local wait = self:start_delay(host.monotonic())
  if wait > 0 then sched.sleep(wait) end
end

return pacing
