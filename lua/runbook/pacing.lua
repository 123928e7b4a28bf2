-- How many actions run at once against a server, adapted to how the server copes.
-- The signal is the latency of our own requests: while it stays near the lowest seen in this run
-- (the server with no queue in front of it), one more request in flight per round trip; once it
-- rises past `tolerance` times that floor, the server is queueing (its users feel that too), so
-- back off by a fifth; on 429 or 5xx, halve. Bounded by [1, max], and by max_rate actions a second.
-- (Additive increase, multiplicative decrease, on a latency target: TCP Vegas' idea, per request.)
-- The floor never forgets within a run: a floor that slid with recent samples would take sustained
-- queueing for normal and creep back up. Floors are kept per request method, since a re-check GET
-- and a DELETE have different natural latencies and their mix must not read as queueing.
local host = require "runbook.host"
local sched = require "runbook.sched"

local pacing = {}

local Pacer = {}
Pacer.__index = Pacer

local SMOOTHING = 0.2    -- weight of a new sample in the moving average

-- new{max = n, max_rate = per_second (0: none), adaptive = true, tolerance = 1.5, start = 2}
function pacing.new(opts)
  local max = math.max(1, math.floor(opts.max or 1))
  local self = setmetatable({
    max = max,
    adaptive = opts.adaptive ~= false,
    tolerance = opts.tolerance or 1.5,
    max_rate = (opts.max_rate and opts.max_rate > 0) and opts.max_rate or nil,
    latency = {},         -- per request method: { floor = lowest seen, average = moving average }
    calm_until = 0,       -- no second decrease before the requests in flight at the first one finish
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
  require("runbook.ui").verbose(string.format("pacing: %d in flight (%s)", n, reason))
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
  elseif l.average > l.floor * self.tolerance + 0.002 then
    -- (2 ms of slack: on loopback the floor is a millisecond and jitter alone would trip it)
    if calm then
      self.current = math.max(1, self.current * 0.8)
      self.calm_until = self.completed + self:limit()
      record(self, string.format("latency %.0f ms, floor %.0f ms", l.average * 1000, l.floor * 1000))
    end
  elseif self.current < self.max then
    self.current = math.min(self.max, self.current + 1 / self.current)
    record(self, string.format("latency %.0f ms near its floor", l.average * 1000))
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
