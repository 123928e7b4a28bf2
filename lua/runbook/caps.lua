-- Caps for runbooks (require "runbook.caps"): at most so many things per run, and so many a day on
-- one target, earlier runs included. The day's count comes from the journals (the engine reads them
-- for the runbook: ctx.done_today), the day is UTC's.
--
--   local limits = caps.of(ctx, { kind = "gitlab.deactivate_user", target = host,
--                                 per_run = p.max_actions, per_day = p.max_per_day })
--   local room = limits:room()                 -- in the plan: how many this plan may take
--   if taken >= room.run then ctx:skip{ target = name, reason = limits:over(room) } end
--   local ok, why = limits:reserve(n)          -- in an action's check: false, why when over the day's cap
--   limits:release(n)                          -- in its run, for what it did not take after all
-- A cap of 0 is no cap. An action counts the users it names (#args.ids), else 1: a batch counts the
-- users it planned, even if the re-check kept some, so the cap errs on the safe side.
local caps = {}

local Caps = {}
Caps.__index = Caps

local STATE_KEY = "runbook.caps"

local function units(action)
  return type(action.args) == "table" and type(action.args.ids) == "table" and #action.args.ids or 1
end

-- caps.of(ctx, spec) -> the caps of this run, made on the first call and kept in ctx.state, so that
-- the reservations of one action are seen by the next. spec: kind (the action kind counted), target
-- (the target the day's count is for), per_run, per_day (0: no cap).
function caps.of(ctx, spec)
  local made = ctx.state[STATE_KEY]
  if made then return made end
  for _, field in ipairs({ "per_run", "per_day" }) do
    if math.type(spec[field]) ~= "integer" or spec[field] < 0 then
      error("caps.of: " .. field .. " must be a whole number, 0 or more", 2)
    end
  end
  if type(spec.kind) ~= "string" or type(spec.target) ~= "string" then
    error("caps.of: kind and target must be strings", 2)
  end
  made = setmetatable({ ctx = ctx, kind = spec.kind, target = spec.target, per_run = spec.per_run,
                        per_day = spec.per_day }, Caps)
  ctx.state[STATE_KEY] = made
  return made
end

-- Units already taken today by this runbook on this target, from the journals.
function Caps:used_today()
  local used = 0
  for _, action in ipairs(self.ctx.done_today(self.kind, self.target)) do used = used + units(action) end
  return used
end

-- room() -> {run = units this plan may take, day = units left today, used = done today}; states the
-- day's count as the plan's fact done_today.
function Caps:room()
  local used = self.per_day > 0 and self:used_today() or 0
  local day = self.per_day > 0 and math.max(0, self.per_day - used) or math.huge
  local run = self.per_run > 0 and self.per_run or math.huge
  if self.per_day > 0 then
    self.ctx:fact("done_today", string.format("%d of max_per_day %d (earlier runs' journals)", used, self.per_day))
  end
  return { run = math.min(run, day), day = day, used = used }
end

-- over(room) -> why what is past room.run is left for later runs: the cap that came first.
function Caps:over(room)
  if self.per_day > 0 and room.day <= room.run then
    return string.format("over today's cap (max_per_day %d, %d done earlier today)", self.per_day, room.used)
  end
  return "over this run's cap (max_actions " .. self.per_run .. ")"
end

-- While applying, the day's count comes from the journals once (again after midnight, UTC); then each
-- action reserves its units before it acts and releases what it did not take. A plan made yesterday,
-- or before another run today, cannot take the day past its cap.
function Caps:reserve(amount)
  if self.per_day == 0 then return true end
  local day = os.date("!%Y-%m-%d", math.floor(self.ctx.time()))
  if not self.daily or self.daily.day ~= day then self.daily = { day = day, used = self:used_today() } end
  if self.daily.used + amount > self.per_day then
    return false, string.format("over today's cap (max_per_day %d, %d done today)", self.per_day, self.daily.used)
  end
  self.daily.used = self.daily.used + amount
  return true
end

function Caps:release(amount)
  if self.daily then self.daily.used = self.daily.used - amount end
end

-- today_line() -> "Today (UTC): N of max_per_day M." for a run's report | nil when nothing was reserved.
function Caps:today_line()
  if self.per_day == 0 or not self.daily then return nil end
  return string.format("Today (UTC): %d of max_per_day %d.", self.daily.used, self.per_day)
end

return caps
