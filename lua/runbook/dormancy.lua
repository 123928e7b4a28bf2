-- GitLab's policy for dormant users (require "runbook.dormancy"), shared by the runbooks that carry
-- it out: deactivate-dormant (GitLab's own users, through its API) and delete-dormant-db (a stopped
-- JupyterHub's users, in its database). A user is dormant `days` (90, GitLab's minimum) after their
-- last activity, or `grace_days` (7) after their account was made when they were never active; caps
-- per run and per day (100,000, GitLab's).
local caps = require "runbook.caps"
local util = require "runbook.util"

local dormancy = {}

dormancy.DAY = 86400
dormancy.GITLAB_MINIMUM_DAYS = 90 -- GitLab refuses a shorter dormancy period (15.5 and later)

-- params() -> the declarations of the policy's parameters, a new list each call (the loader fills in
-- declarations), in the order `runbook show` lists them.
function dormancy.params()
  return {
    { name = "days", type = "integer", default = 90, min = 1, max = 36500, help = "dormant after this many days without activity" },
    { name = "allow_short_period", type = "boolean", default = false,
      help = "allow days below GitLab's minimum of 90" },
    { name = "grace_days", type = "integer", default = 7, min = 0, max = 36500,
      help = "never-active accounts younger than this are kept" },
    { name = "include_admins", type = "boolean", default = false, help = "also take dormant admins" },
    { name = "max_actions", type = "integer", default = 0, min = 0, max = 10000000,
      help = "at most this many users per run (0: no cap)" },
    { name = "max_per_day", type = "integer", default = 100000, min = 0, max = 10000000,
      help = "at most this many users a day, earlier runs included (0: no cap)" },
  }
end

-- check_period(p): a period below GitLab's minimum only on purpose (exit 2 otherwise).
function dormancy.check_period(p)
  if p.days < dormancy.GITLAB_MINIMUM_DAYS and not p.allow_short_period then
    util.fail(2, "days=%d is below GitLab's minimum of %d; set allow_short_period=true to go lower on purpose",
      p.days, dormancy.GITLAB_MINIMUM_DAYS)
  end
end

-- policy_protection(ctx, name, user) -> why the site's policy keeps the user | nil: protected_users
-- names them, or exclude(user) returns true or a reason.
function dormancy.policy_protection(ctx, name, user)
  for _, protected in ipairs(ctx.policy.protected_users or {}) do
    if protected == name then return "protected by policy (protected_users)" end
  end
  if ctx.policy.exclude then
    local excluded = ctx.policy.exclude(user)
    if excluded then return "excluded by policy" .. (type(excluded) == "string" and (": " .. excluded) or "") end
  end
  return nil
end

-- caps(ctx, kind, target) -> the run's caps (runbook.caps) from max_actions and max_per_day.
function dormancy.caps(ctx, kind, target)
  return caps.of(ctx, { kind = kind, target = target, per_run = ctx.params.max_actions, per_day = ctx.params.max_per_day })
end

-- What a site policy file may set for these runbooks, besides any parameter.
function dormancy.policy() return { exclude = "function", protected_users = "list" } end

-- The steps both runbooks take, as `runbook show` lists them.
dormancy.STEP_CAPS = "Cap the plan at max_actions users, and at what is left of max_per_day after today's earlier runs"
dormancy.STEP_REPORT = "Report what was done, skipped (by reason) and failed, and today's count against max_per_day"

function dormancy.n_users(n) return string.format("%d user%s", n, n == 1 and "" or "s") end

return dormancy
