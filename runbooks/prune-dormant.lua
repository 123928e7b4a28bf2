-- prune-dormant: delete JupyterHub users with no activity for a number of days.
-- Every user is listed first (deleting while paging would shift the pages), each is judged, and each
-- candidate is read again just before it is deleted: JupyterHub 3.0 deletes a user whose server is
-- running (it stops the server first), so the hub's own checks cannot be relied on.
local hub = require "runbook.hub"
local util = require "runbook.util"

local DAY = 86400

local function connect(ctx)
  if ctx.state.client then return ctx.state.client end
  local p = ctx.params
  local client, err = hub.connect{ url = p.hub, token_file = p.token_file, ca_file = p.ca_file, insecure = p.insecure }
  if not client then util.fail(2, err) end -- no token, unreadable token file: the operator's to fix
  local info
  info, err = client:info()
  if not info then util.fail(1, err) end -- the hub is down or refuses us: a message, not a traceback
  ctx.state.client, ctx.state.info = client, info
  return client
end

local function hub_url(v)
  return hub.api_url(v) ~= nil, "must be the hub's URL, http(s)://host[/prefix][/hub/api], not '" .. v .. "'"
end
local function positive(v) return v >= 1, "must be at least 1" end
local function not_negative(v) return v >= 0, "must not be negative" end

local function when(t) return t and util.format_time(t) or "never" end

-- Why a user must be left alone right now, or nil when nothing protects them. Shared by the plan and
-- the re-check, so both judge by the same rules.
local function protection(ctx, user)
  local p, policy = ctx.params, ctx.policy
  for _, name in ipairs(policy.protected_users or {}) do
    if name == user.name then return "protected by policy (protected_users)" end
  end
  if user.admin and not p.include_admins then return "admin" end
  if not hub.can_see_servers(user) then
    error("the hub token cannot see users' servers (the user model has no 'servers'); " ..
      "give it the admin:servers or read:servers scope, or a user with a running server could be deleted", 0)
  end
  local server = hub.server_state(user)
  if server then return server end
  if policy.exclude then
    local excluded = policy.exclude(user)
    if excluded then return "excluded by policy" .. (type(excluded) == "string" and (": " .. excluded) or "") end
  end
  return nil
end

-- dormancy(ctx, user, now) -> reason it is dormant | nil, reason it is not
local function dormancy(ctx, user, now)
  local p = ctx.params
  local last = hub.last_activity(user)
  if last then
    local idle = now - last
    if idle > p.days * DAY then
      return string.format("no activity for %s (last %s)", util.human_duration(idle), when(last))
    end
    return nil, string.format("active %s ago", util.human_duration(math.max(0, idle)))
  end
  local created = hub.created(user)
  if not created then return nil, "never active, creation time unknown" end
  local age = now - created
  if age > p.grace_days * DAY then
    return string.format("never active; created %s ago", util.human_duration(age))
  end
  return nil, string.format("new account, created %s ago (grace period %d days)", util.human_duration(math.max(0, age)),
    p.grace_days)
end

return {
  summary = "Delete hub users with no activity for N days (admins and users with servers are never touched)",
  description = [[
Lists every user of a JupyterHub (all pages; from JupyterHub 5.0 on, sorted by activity, stopping at
the first user active within `days`), and plans to delete those who are dormant: not an admin
(unless include_admins), no server running or pending (default or named), and last activity older
than `days` -- or never active and created more than `grace_days` ago. Each candidate is read again
just before deletion and skipped if anything changed (activity moved, a server started or is
pending, they became an admin). A site policy file can set days, grace_days, max_actions,
include_admins, protected_users = {...} and exclude = function(user) ... end (return true, or a
reason string, to keep a user).
Token: JUPYTERHUB_API_TOKEN or -p token_file=PATH (a service token with admin:users, admin:servers,
list:users, read:users). Never on the command line.]],
  params = {
    { name = "hub", type = "string", env = "JUPYTERHUB_API_URL", required = true, check = hub_url,
      help = "the hub's public URL or its /hub/api URL" },
    { name = "token_file", type = "path", help = "file holding the API token (else JUPYTERHUB_API_TOKEN)" },
    { name = "days", type = "integer", default = 90, check = positive, help = "dormant after this many days without activity" },
    { name = "grace_days", type = "integer", default = 7, check = not_negative,
      help = "never-active accounts younger than this are kept" },
    { name = "max_actions", type = "integer", default = 0, check = not_negative,
      help = "delete at most this many users per run (0: no cap)" },
    { name = "include_admins", type = "boolean", default = false, help = "also delete dormant admins" },
    { name = "concurrency", type = "integer", default = 8, check = positive,
      help = "at most this many deletions in flight (adaptive below it: fewer when the hub slows down)" },
    { name = "adaptive", type = "boolean", default = true,
      help = "adapt the deletions in flight to the hub's latency (false: always `concurrency`)" },
    { name = "max_rate", type = "number", default = 0, check = not_negative,
      help = "at most this many deletions a second (0: no limit)" },
    { name = "ca_file", type = "path", help = "CA bundle to verify the hub's TLS certificate" },
    { name = "insecure", type = "boolean", default = false, help = "do not verify TLS (never in production)" },
  },
  policy = { exclude = "function", protected_users = "list" },
  steps = {
    "Read the hub's version, then every user, page by page (200 at a time)",
    "Judge each user: admins, users with a running or pending server, protected or excluded users, and users active within `days` are left alone",
    "Apply: for each candidate, read the user again; skip them if anything changed; otherwise DELETE /hub/api/users/NAME",
    "Report deleted, skipped (by reason), failed (with the hub's message), and the user count before and after",
  },

  target = function(ctx)
    local api = assert(hub.api_url(ctx.params.hub))
    return api:match("^https?://([^/]+)")
  end,

  setup = connect,

  plan = function(ctx)
    local client = connect(ctx)
    local now = ctx.now
    ctx:fact("hub_version", ctx.state.info.version)
    ctx:fact("dormant_after", ctx.params.days .. " days without activity")
    local listed, capped = 0, 0
    -- Hubs that sort by activity (5.0 and later) list the idle first: the first user active within
    -- `days` ends the listing, as everyone after them was active more recently still.
    local sorted = client:can_sort()
    local stopped_at
    for user in client:users{ sort = sorted and "last_activity" or nil } do
      local last = hub.last_activity(user)
      if sorted and last and now - last <= ctx.params.days * DAY then
        stopped_at = user.name
        break
      end
      listed = listed + 1
      ctx.progress("listing users", listed, client.listed_total)
      local kept = protection(ctx, user)
      local dormant, active = nil, nil
      if not kept then dormant, active = dormancy(ctx, user, now) end
      if kept or active then
        ctx:skip{ target = user.name, reason = kept or active }
      elseif ctx.params.max_actions > 0 and #ctx.actions >= ctx.params.max_actions then
        capped = capped + 1
        ctx:skip{ target = user.name, reason = "over this run's cap (max_actions " .. ctx.params.max_actions .. ")" }
      else
        ctx:add{ kind = "hub.delete_user", target = user.name, reason = dormant,
                 args = { last_activity = user.last_activity, created = user.created } }
      end
    end
    ctx.progress_done("listing users")
    ctx:fact("users_listed", listed)
    ctx:fact("users_total", client.listed_total or listed)
    if stopped_at then
      ctx:fact("listing", string.format("sorted by last activity; stopped at %s, the first user active within %d days: " ..
        "the %d users not listed were all active more recently", stopped_at, ctx.params.days,
        math.max(0, (client.listed_total or listed) - listed)))
    else
      ctx:fact("listing", sorted and "sorted by last activity; no user was active within days" or
        "every user, in id order (the hub cannot sort users by activity before JupyterHub 5.0)")
    end
    if capped > 0 then
      ctx:note(string.format("%d more dormant users are over this run's cap of %d; they are left for later runs",
        capped, ctx.params.max_actions))
    end
  end,

  actions = {
    ["hub.delete_user"] = {
      concurrent = true,
      on_failure = "continue",
      -- The user is read again just before deletion: only a user who is still exactly as planned goes.
      check = function(ctx, action)
        local client = connect(ctx)
        local user, err = client:user(action.target)
        if user == nil then return nil, err end
        if user == false then return true end -- already gone: the delete will confirm it
        local kept = protection(ctx, user)
        if kept then return false, kept .. " now" end
        local planned = action.args.last_activity
        if (user.last_activity or false) ~= (planned or false) then
          local was, now = util.parse_time(planned or ""), hub.last_activity(user)
          if not (was and now and now <= was) then
            return false, "active since the plan (last activity " .. when(now) .. ")"
          end
        end
        local dormant, active = dormancy(ctx, user, ctx.time())
        if not dormant then return false, active end
        return true
      end,
      run = function(ctx, action)
        local ok, how = connect(ctx):delete_user(action.target)
        if not ok then return nil, how end
        return true, how ~= "deleted" and how or nil
      end,
    },
  },

  report = function(ctx, results)
    local client = ctx.state.client
    local count = client and client:count()
    local lines = {}
    if count then
      lines[#lines + 1] = string.format("Users on the hub: %s before the plan, %d now.",
        tostring(ctx.plan_facts and ctx.plan_facts.users_total or "?"), count)
    end
    return lines
  end,
}
