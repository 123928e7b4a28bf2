-- How many actions run at once against a server, adapted to how the server copes.
-- The signal is how many of our own requests wait in the server's queue, estimated from their latency
-- as TCP Vegas does: with `limit` requests in flight, a latency `average` and the lowest latency seen
-- in this run `floor` (the round trip plus the server's work, no queue), Little's law gives
--   waiting = limit * (1 - floor / average)
-- requests of ours queued at the server. Every one of them is also in front of the server's users:
-- a single-threaded hub serves a user's request only after those. So: while fewer than `low` wait,
-- one more in flight per round trip; past `high`, a fifth fewer; on 429 or 5xx, half. Bounded by
-- [1, max], and by max_rate actions a second.
-- Counting requests rather than comparing latencies makes the rule the same on loopback and across
-- a 20 ms round trip, where a standing queue is only a small rise in latency (a 1.5x latency rule
-- let 5 requests queue there). A limit that made requests queue is not tried again for REPROBE
-- round trips: growing straight back to it would put the queue back half the time.
-- The floor never forgets within a run: a floor that slid with recent samples would take sustained
-- queueing for normal and creep back up. Floors are kept per request method, since a re-check GET
-- and a DELETE have different natural latencies and their mix must not read as queueing.
local host = require "runbook.host"
local sched = require "runner.sched"

local pacing = {}

local Pacer = {}
Pacer.__index = Pacer

local SMOOTHING = 0.2    -- weight of a new sample in the moving average
local REPROBE = 100      -- round trips before a limit that queued may be tried again
local JITTER = 0.001     -- seconds of latency not counted as queueing: on loopback the floor is a
                         -- millisecond, and scheduling noise alone would read as a queue

-- new{max = n, max_rate = per_second (0: none), adaptive = true, start = 2, low = 0.2, high = 0.5}
-- low and high: requests of ours waiting at the server, on average, below which the limit grows and
-- above which it falls. Half a request keeps the server busy without a standing queue.
function pacing.new(opts)
  local max = math.max(1, math.floor(opts.max or 1))
  local self = setmetatable({
    max = max,
    adaptive = opts.adaptive ~= false,
    low = opts.low or 0.2,
    high = opts.high or 0.5,
    max_rate = (opts.max_rate and opts.max_rate > 0) and opts.max_rate or nil,
    latency = {},         -- per request method: { floor = lowest seen, average = moving average }
    calm_until = 0,       -- no second decrease before the requests in flight at the first one finish
    queued_at = math.huge, -- the last limit at which our requests queued
    reprobe_after = 0,    -- and when it may be tried again (in completed requests)
    completed = 0,
    next_start = 0,       -- for max_rate: when the next action may begin
    history = {},         -- (time, limit) changes, for -v and the bench
  }, Pacer)
  self.current = opts.adaptive == false and max or math.min(max, opts.start or 2)
  return self
end

function Pacer:limit()
  return math.max(1, math.floor(self.current))
end

local function record(self, reason)
  local n = self:limit()
  if self.history[#self.history] and self.history[#self.history].limit == n then return end
  self.history[#self.history + 1] = { time = host.monotonic(), limit = n, reason = reason }
  require("runner.ui").verbose(string.format("pacing: %d in flight (%s)", n, reason))
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

-- observe(seconds, status[, key]): one response from the server (status nil: no response at all);
-- key tells apart requests of different natural latency (the HTTP method).
function Pacer:observe(seconds, status, key)
  if not self.adaptive then return end
  self.completed = self.completed + 1
  local overloaded = status == nil or status == 429 or status >= 500
  local l = overloaded and nil or update_latency(self, seconds, key or "")
  local calm = self.completed >= self.calm_until
  if overloaded then
    if calm then
      self.current = math.max(1, self.current / 2)
      self.calm_until = self.completed + self:limit()
      record(self, "server answered " .. tostring(status or "nothing"))
    end
  else
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
end

-- acquire(): waits (yielding to other actions) until max_rate allows one more action to begin.
function Pacer:acquire()
  if not self.max_rate then return end
  local now = host.monotonic()
  local start = math.max(now, self.next_start)
  self.next_start = start + 1 / self.max_rate
  if start > now then sched.sleep(start - now) end
end

return pacing
