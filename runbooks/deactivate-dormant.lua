-- deactivate-dormant: GitLab's automatic deactivation of dormant users, as a rehearsed procedure.
-- GitLab's design (the "Automate deactivation of dormant users" work, and what came after it): an
-- active, non-internal user whose last_activity_on is `days` (90, the minimum) or more days old, or
-- who never had any activity and was created more than 7 days ago, is deactivated, in batches of 200,
-- at most 100,000 a day; a deactivated user is reactivated when they next sign in. Bots are left
-- alone, and each user is checked again by the deactivation itself (POST /users/:id/deactivate
-- refuses, with 403, a user who is blocked, internal or active within the period).
--
-- Through GitLab's REST API with an administrator's token: list (keyset pages), judge, re-read each
-- user just before POST /users/:id/deactivate. The same policy for a JupyterHub that cannot start is
-- delete-dormant-db.
local ctxstate = require "runbook.ctxstate"
local dormancy = require "runbook.dormancy"
local gitlab = require "runbook.gitlab"
local json = require "runbook.json"
local util = require "runbook.util"

local DAY = dormancy.DAY
local DEACTIVATE = "gitlab.deactivate_user"

local function human(seconds) return util.human_duration(math.max(0, seconds)) end
local n_users = dormancy.n_users
local policy_protection = dormancy.policy_protection

-- What the operator types to confirm: GitLab's host.
local function target_name(ctx)
  return ctxstate.once(ctx, "target", function()
    return gitlab.api_url(ctx.params.gitlab):match("^https?://([^/]+)")
  end)
end

local function limits(ctx) return dormancy.caps(ctx, DEACTIVATE, target_name(ctx)) end

local function gitlab_client(ctx)
  return ctxstate.once(ctx, "gitlab", function()
    local p = ctx.params
    local client, err = gitlab.connect{ url = p.gitlab, token_file = p.token_file, ca_file = p.ca_file, insecure = p.insecure }
    if not client then util.fail(2, err) end
    local version
    version, err = client:version()
    if not version then util.fail(1, err) end
    local me
    me, err = client:current_user()
    if not me then util.fail(1, err) end
    if me.is_admin ~= true then
      util.fail(1, "gitlab %s: the token belongs to %s, who is not an administrator; deactivating users needs an " ..
        "administrator's personal access token with the api scope", client.host, tostring(me.username))
    end
    ctx.state.gitlab_version, ctx.state.gitlab_user = version.version, me.username
    return client
  end)
end

-- Why a GitLab user must be left alone, or nil. The plan and the re-check judge by these same rules.
local function gitlab_protection(ctx, user)
  if user.state ~= "active" then return "state " .. tostring(user.state) end
  if user.bot == true then return "bot user" end
  if type(user.user_type) == "string" and user.user_type ~= "human" then return "not a human user (" .. user.user_type .. ")" end
  if user.is_admin == true and not ctx.params.include_admins then return "admin" end
  return policy_protection(ctx, user.username, user)
end

-- gitlab_dormancy(ctx, user, now) -> reason it is dormant | nil, reason it is not. GitLab's rules:
-- last_activity_on on or before the date `days` ago; or never active and created on or before
-- midnight `grace_days` ago. A sign-in within the period counts as activity, as it does for the
-- deactivate endpoint's own check (User#last_active_at).
local function gitlab_dormancy(ctx, user, now)
  local p = ctx.params
  local signed_in = gitlab.time(user, "current_sign_in_at")
  if signed_in and signed_in > now - p.days * DAY then
    return nil, "signed in " .. human(now - signed_in) .. " ago"
  end
  local last = gitlab.last_activity_on(user)
  local today = util.parse_time(gitlab.date(now))
  if last then
    local idle_days = (today - util.parse_time(last)) // DAY
    if last <= gitlab.date(now - p.days * DAY) then
      return string.format("no activity for %s (last activity on %s)", util.count(idle_days, "day"), last)
    end
    return nil, string.format("active %s ago (last activity on %s)", util.count(math.max(0, idle_days), "day"), last)
  end
  local created = gitlab.time(user, "created_at")
  if not created then return nil, "never active, creation time unknown" end
  if created <= util.parse_time(gitlab.date(now - p.grace_days * DAY)) then
    return string.format("never active; created %s ago", human(now - created))
  end
  return nil, string.format("new account, created %s ago (grace period %s)", human(now - created), util.count(p.grace_days, "day"))
end

-- Failures of the outside world while listing become one clear message; anything else is a bug.
local function listing(fn)
  local ok, err = pcall(fn)
  if ok then return end
  if type(err) == "string" and err:match("^gitlab ") then util.fail(1, err) end
  error(err, 0)
end

local function plan_deactivations(ctx)
  local p = ctx.params
  local client = gitlab_client(ctx)
  local now = ctx.now
  ctx:fact("gitlab_version", ctx.state.gitlab_version)
  ctx:fact("token_user", ctx.state.gitlab_user .. " (administrator)")
  ctx:fact("dormant_after", string.format("%s: last activity on or before %s", util.count(p.days, "day"), gitlab.date(now - p.days * DAY)))
  ctx:fact("grace_for_new_accounts", p.grace_days .. " days")
  local room = limits(ctx):room()
  local listed, capped = 0, 0
  listing(function()
    -- GitLab filters out what it never deactivates (blocked and deactivated users, bots, internal
    -- users); each user is judged here again all the same, for GitLab versions without the filters.
    for user in client:users{ active = true, humans = true, exclude_internal = true, without_project_bots = true,
                              per_page = p.per_page } do
      listed = listed + 1
      ctx.progress("listing users", listed)
      if not gitlab.is_admin_view(user) then
        util.fail(1, "gitlab %s: the user list has no is_admin or last_activity_on: the token does not see what " ..
          "an administrator sees, so nobody can be judged", client.host)
      end
      local kept = gitlab_protection(ctx, user)
      local dormant, active
      if not kept then dormant, active = gitlab_dormancy(ctx, user, now) end
      if kept or active then
        ctx:skip{ target = user.username, reason = kept or active }
      elseif #ctx.actions >= room.run then
        capped = capped + 1
        ctx:skip{ target = user.username, reason = limits(ctx):over(room) }
      else
        ctx:add{ kind = DEACTIVATE, target = user.username, reason = dormant,
                 args = { id = user.id, last_activity_on = gitlab.last_activity_on(user),
                          current_sign_in_at = user.current_sign_in_at ~= json.null and user.current_sign_in_at or nil } }
      end
    end
  end)
  ctx.progress_done("listing users")
  if #ctx.actions > 0 then
    ctx:effect(n_users(#ctx.actions) .. " deactivated (each reactivated at their next sign-in)")
  end
  ctx:fact("users_listed", string.format("%s (%s)", util.count(listed, "active human user"), util.count(client.pages, "page")))
  if capped > 0 then
    ctx:note(string.format("%d more dormant users are over the caps; later runs take them", capped))
  end
end

-- The user is read again just before the deactivation: only a user still exactly as planned goes.
local function deactivate_check(ctx, action)
  local client = gitlab_client(ctx)
  local user, err = client:user(action.args.id)
  if user == nil then return nil, err end
  if user == false then return false, "no longer exists" end
  if user.username ~= action.target then return false, "user " .. action.args.id .. " is now called " .. tostring(user.username) end
  if not gitlab.is_admin_view(user) then return nil, "GET /users/" .. action.args.id .. " shows no last_activity_on: not an administrator's view" end
  if user.state == "deactivated" then
    ctx.state.already = ctx.state.already or {}
    ctx.state.already[action.id] = true
    return true
  end
  local kept = gitlab_protection(ctx, user)
  if kept then return false, kept .. " now" end
  local last = gitlab.last_activity_on(user)
  if (last or false) ~= (action.args.last_activity_on or false) then
    return false, "active since the plan (last activity on " .. tostring(last) .. ")"
  end
  local dormant, active = gitlab_dormancy(ctx, user, ctx.time())
  if not dormant then return false, active end
  return limits(ctx):reserve(1)
end

local function deactivate_run(ctx, action)
  if ctx.state.already and ctx.state.already[action.id] then return true, "already deactivated" end
  local ok, how = gitlab_client(ctx):deactivate(action.args.id)
  if ok then
    ctx.state.changed = (ctx.state.changed or 0) + 1
    return true
  end
  limits(ctx):release(1)
  if ok == false then return false, "GitLab refused: " .. how end
  return nil, how
end

-- ==== the runbook ====

local params = {
  { name = "gitlab", type = "string", env = "GITLAB_URL", help = "GitLab's URL (https://host, or .../api/v4)" },
  { name = "token_file", type = "path", help = "file holding an administrator's access token (else GITLAB_TOKEN)" },
}
for _, spec in ipairs(dormancy.params()) do params[#params + 1] = spec end
for _, spec in ipairs({
  { name = "concurrency", type = "integer", default = 4, min = 1, max = 64,
    help = "at most this many deactivations in flight (adaptive below it)" },
  { name = "adaptive", type = "boolean", default = true, help = "adapt the deactivations in flight to GitLab's latency" },
  { name = "max_rate", type = "number", default = 0, min = 0, max = 100000, help = "at most this many deactivations a second (0: no limit)" },
  { name = "per_page", type = "integer", default = 100, min = 1, max = 100, help = "users per page (GitLab's maximum is 100)" },
  { name = "ca_file", type = "path", help = "CA bundle to verify GitLab's TLS certificate" },
  { name = "insecure", type = "boolean", default = false, help = "do not verify TLS (never in production)" },
}) do params[#params + 1] = spec end
-- This runbook had a database mode (-p mode=database) until it became a runbook of its own. The API
-- mode is all that is left: mode=api is still taken (and is no parameter any more); mode=database,
-- on the command line or in a saved plan, is refused with the runbook to use.
params.retired = {
  mode = { keep = "api", why = function(value)
    if value == "database" then
      return "that mode is now the runbook delete-dormant-db (it DELETEs a stopped JupyterHub's dormant users in SQL): " ..
        "run `runbook plan delete-dormant-db -n NAMESPACE -p database_url=...` with the same parameters, without mode"
    end
    return "it works through GitLab's API only (what mode=api meant); deleting a stopped JupyterHub's dormant users " ..
      "in SQL (what mode=database meant) is the runbook delete-dormant-db"
  end },
}

return {
  summary = "Deactivate dormant GitLab users, GitLab's way (90 days, 7-day grace, caps)",
  description = [[
GitLab's policy for dormant users, with a rehearsal, site exclusions and a report. Defaults are
GitLab's: a user is dormant when their last activity (GitLab's last_activity_on, or a sign-in) is
`days` (90) or more days old, or when they never had any activity and were created more than
`grace_days` (7) days ago. GitLab's minimum period is 90 days; a shorter one needs
allow_short_period=true, set on purpose. Never touched: blocked or already deactivated users, bots
(project bots, service accounts and GitLab's own), internal users (ghost, support and alert bots),
and admins (unless include_admins). A site policy file can also set protected_users = {...} and
exclude = function(user) ... end (return true, or a reason, to keep a user), besides any parameter.
Caps: max_actions users per run, and max_per_day users a day (100,000, GitLab's); the day's count
includes earlier runs on the same target, read from the journals.

Works through GitLab's REST API v4 with an administrator's personal access token (GITLAB_TOKEN or
-p token_file=PATH, never on the command line). Lists users with keyset pagination
(pagination=keyset, order_by=id, following the Link header), re-reads each user (GET /users/:id)
just before POST /users/:id/deactivate, and skips anyone who changed. GitLab re-checks too: its 403
("blocked", "internal", "active in the past N days") is a skip with GitLab's reason, not a failure.
A deactivated user is reactivated by GitLab when they next sign in. policy exclude(user) gets
GitLab's user (username, is_admin, last_activity_on, created_at, ...).

The same policy for a JupyterHub whose hub cannot start (its users table is too large), applied in
its database with the hub stopped, is the runbook delete-dormant-db.]],
  params = params,
  policy = dormancy.policy(),
  steps = {
    "Read GitLab's version and check the token is an administrator's",
    "List the users (keyset pages of GET /users) and judge each: blocked, bots, internal users, admins, protected or excluded users, users active within `days` and new accounts within `grace_days` are kept",
    dormancy.STEP_CAPS,
    "For each user, GET /users/:id again, skip if anything changed, then POST /users/:id/deactivate (GitLab's 403 is a skip)",
    dormancy.STEP_REPORT,
  },

  -- The target is what the operator types: GitLab's host. Parameters are checked here, before
  -- anything connects.
  target = function(ctx)
    local p = ctx.params
    dormancy.check_period(p)
    if not p.gitlab then util.fail(2, "deactivate-dormant needs GitLab's URL: -p gitlab=https://... or GITLAB_URL") end
    local api, err = gitlab.api_url(p.gitlab)
    if not api then util.fail(2, err) end
    return target_name(ctx)
  end,

  setup = function(ctx)
    target_name(ctx)
    gitlab_client(ctx)
  end,

  plan = plan_deactivations,

  actions = {
    [DEACTIVATE] = { concurrent = true, on_failure = "continue", check = deactivate_check, run = deactivate_run },
  },

  report = function(ctx)
    return { string.format("Deactivated %s on %s.", util.count(ctx.state.changed or 0, "user"), target_name(ctx)),
             limits(ctx):today_line() }
  end,
}
