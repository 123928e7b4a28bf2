-- restore-users: undo a prune-dormant run. Re-creates the users it deleted (admin flag, groups, last
-- activity) from the records it saved beside its journal, and attaches each home directory volume it
-- kept to a new claim of the old name, so the user's next server mounts the same data.
local ctxstate = require "runbook.ctxstate"
local hub = require "runbook.hub"
local k8s = require "runbook.k8s"
local access = require "runbook.k8s.access"
local storage = require "runbook.storage"
local userbackup = require "runbook.userbackup"
local util = require "runbook.util"

local function connect(ctx)
  return ctxstate.once(ctx, "client", function()
    local p = ctx.params
    local client, err = hub.connect{ url = p.hub, token_file = p.token_file, ca_file = p.ca_file, insecure = p.insecure }
    if not client then util.fail(2, err) end
    local info
    info, err = client:info()
    if not info then util.fail(1, err) end
    return client
  end)
end

local function k8s_client(ctx)
  return ctxstate.once(ctx, "k8s", function()
    local client, err = k8s.connect(ctx.options)
    if not client then
      util.fail(2, "the run kept home directory volumes, and attaching them again needs Kubernetes access (%s): give " ..
        "--kubeconfig/--context as for the prune, or pass -p reattach=false to restore only the users", err)
    end
    return client
  end)
end

-- The prune run, read once: its journal, and each deleted user's record checked against it.
local function prune_run(ctx)
  return ctxstate.once(ctx, "run", function()
    local run, err = userbackup.read_run(ctx.params.from)
    if not run then util.fail(2, "cannot restore from %s: %s", ctx.params.from, err) end
    return run
  end)
end

local field = storage.field

-- The volumes of a record that prune-dormant kept, with what is needed to attach them again.
local function kept_volumes(record)
  local list = {}
  if field(record, "storage", "mode") ~= "retain" then return list end
  for _, saved in ipairs(record.storage.claims or {}) do
    if field(saved, "planned", "volume") and type(saved.claim) == "table" then list[#list + 1] = saved end
  end
  return list
end

local function plan_volume(ctx, name, saved)
  local client = k8s_client(ctx)
  local planned = saved.planned
  local target = "persistentvolumes/" .. planned.volume
  local pv, err = client:get("persistentvolumes", planned.volume)
  if pv == nil then util.fail(1, err) end
  if pv == false then
    ctx:skip{ target = target, reason = string.format("volume of %s (claim %s) is gone: its data cannot be restored", name, planned.name) }
    return
  end
  local state, holder = storage.volume_state(pv, planned.uid)
  local claim
  claim, err = client:get("persistentvolumeclaims", planned.name, { namespace = planned.namespace })
  if claim == nil then util.fail(1, err) end
  if claim and field(claim, "spec", "volumeName") == planned.volume then
    ctx:skip{ target = target, reason = "already attached to claim " .. planned.namespace .. "/" .. planned.name }
  elseif claim then
    ctx:skip{ target = target, reason = string.format("a claim %s/%s exists again (volume %s): attach the kept volume by hand " ..
      "if it is wanted", planned.namespace, planned.name, tostring(field(claim, "spec", "volumeName") or "none yet")) }
  elseif state == "bound" then
    ctx:skip{ target = target, reason = "bound to another claim, " .. holder }
  else
    local annotations = field(pv, "metadata", "annotations") or {}
    ctx:add{ kind = "k8s.reattach_volume", target = target,
             reason = string.format("attach to a new claim %s/%s for %s (%s, %s)", planned.namespace, planned.name, name,
               storage.human_bytes(storage.quantity(field(pv, "spec", "capacity", "storage")) or 0),
               state == "released" and "Released" or "Available"),
             args = { user = name, volume = planned.volume, old_claim_uid = planned.uid,
                      claim = storage.claim_for(saved.claim, pv),
                      previous_policy = annotations[storage.PREVIOUS_POLICY_ANNOTATION] } }
  end
end

-- ---- permissions apply will need, checked at plan time ----
-- Apply creates each user (POST /users/NAME, with their admin flag: admin:users), adds them to their
-- groups (groups, per group), and sets their last activity (users:activity). A scope may be granted
-- on some users or groups only (admin:users!user=alice, groups!group=staff): it is checked for each.
-- A user who does not exist yet is in no group, so a scope filtered by group cannot create them.
local ROLE = { name = "restore-users", scopes = { "admin:users", "groups" } }
local TO_CREATE = "users to re-create"

local function check_scopes(scope_check, name, groups, last_activity)
  if not scope_check then return end -- the hub does not say (before JupyterHub 2.0): the plan notes it
  scope_check:need("admin:users", { name = name, groups = {} }, TO_CREATE)
  if #groups > 0 then
    local granted = true
    for _, g in ipairs(groups) do
      granted = hub.has_scope(scope_check.scopes, "groups", { groups = { g } }) and granted
    end
    scope_check:record("groups", granted, name, "users to put back in their groups")
  end
  if type(last_activity) == "string" then
    -- Set after the groups are restored: a scope filtered by group counts them.
    scope_check:need("users:activity", { name = name, groups = groups }, "users whose last activity is restored")
  end
end

local function check_hub_scopes(ctx, scope_check, creations)
  if not scope_check then
    if creations > 0 then
      ctx:note("the hub does not list the token's scopes (GET /hub/api/user, JupyterHub 2.0 and later): whether it may " ..
        "create users is known only when apply tries")
    end
    return
  end
  local message = scope_check:refusal(ctx.state.me, ROLE)
  if message then util.fail(2, message) end
  if creations > 0 then
    ctx:fact("hub_permissions", "checked: the token may create the users, restore their groups and last activity")
  end
end

-- The Kubernetes calls attaching the planned volumes makes, asked with SelfSubjectAccessReviews, each
-- with the number of volumes it is for (a claim's namespace may differ from one volume to the next).
local function check_cluster_access(ctx)
  local per_namespace, namespaces, total = {}, {}, 0
  for _, a in ipairs(ctx.actions) do
    if a.kind == "k8s.reattach_volume" then
      local ns = a.args.claim.metadata.namespace
      if not per_namespace[ns] then namespaces[#namespaces + 1], per_namespace[ns] = ns, 0 end
      per_namespace[ns], total = per_namespace[ns] + 1, total + 1
    end
  end
  if total == 0 then return end
  local checks, asked = {}, {}
  for _, ns in ipairs(namespaces) do
    for _, check in ipairs(storage.reattach_access(ns)) do
      local key = access.describe(check)
      if not asked[key] then
        asked[key], check.volumes = true, check.namespace and per_namespace[ns] or total
        checks[#checks + 1] = check
      end
    end
  end
  local client = k8s_client(ctx)
  local denied, err = access.missing(client, checks)
  if not denied then
    ctx:note("Kubernetes permissions were not checked in advance: " .. err)
    return
  end
  if #denied == 0 then
    ctx:fact("storage_permissions", "checked (SelfSubjectAccessReview): " .. access.describe_all(checks))
    return
  end
  local lines = {}
  for _, d in ipairs(denied) do
    lines[#lines + 1] = string.format("  %s: %s, for %d of the %d volumes to attach", access.describe(d), d.why, d.volumes,
      total)
  end
  util.fail(2, "Kubernetes user '%s' (context %s) may not do what apply would do to attach the kept home directory " ..
    "volumes again:\n%s\nGrant it (a Role with get and create on persistentvolumeclaims in the claims' namespace, a " ..
    "ClusterRole with get and patch on persistentvolumes, which are cluster-scoped), or use a context that has it, and " ..
    "plan again; or restore only the users, leaving the volumes as they are, with -p reattach=false. Nothing was changed.",
    tostring(client.user), tostring(client.context), table.concat(lines, "\n"))
end

return {
  summary = "Undo a prune-dormant run: re-create its users and attach their kept home directories again",
  description = [[
Reads a prune-dormant run (-p from= its journal, or the JOURNAL.backup directory beside it) and the
record it saved of each user it deleted, each checked against the checksum in the journal. Plans to
re-create every deleted user (or only -p users=a,b) who does not exist again: the admin flag, group
memberships (groups that no longer exist are named and left out) and the last activity. For each home
directory volume the run kept (storage=retain), clears the volume's reference to its deleted claim,
creates the claim again under its old name, namespace, labels and annotations with spec.volumeName set
to that volume, waits until it is Bound, and puts back the volume's old reclaim policy: the user's next
server mounts the same data. Users that exist again, and volumes that are gone or bound elsewhere, are
left alone with the reason. API tokens cannot be restored (the hub keeps only their hashes).
Token: a service token with admin:users and groups (they hold read:users, users:activity and
read:groups). Kubernetes (for volumes): get and patch on persistentvolumes, get and create on
persistentvolumeclaims. The plan checks both before anything is done: the token's scopes (JupyterHub
2.0 and later list them), user by user and group by group, and the Kubernetes permissions
(SelfSubjectAccessReview); it refuses (exit 2) naming what is missing, for how many users or volumes,
and what to grant, or -p reattach=false to restore only the users.]],
  params = {
    { name = "from", type = "path", required = true, help = "the prune-dormant run: its journal or its .backup directory" },
    { name = "users", type = "list", default = {}, help = "only these users (default: every user the run deleted)" },
    { name = "hub", type = "string", env = "JUPYTERHUB_API_URL",
      help = "the hub's URL (default: the URL the run used; another URL of the same hub is accepted, with a note)" },
    { name = "token_file", type = "path", help = "file holding the API token (else JUPYTERHUB_API_TOKEN)" },
    { name = "reattach", type = "boolean", default = true, help = "attach the kept home directory volumes again" },
    { name = "bind_timeout", type = "integer", default = 120, min = 1, max = 3600, help = "seconds to wait for each new claim to be Bound" },
    { name = "ca_file", type = "path", help = "CA bundle to verify the hub's TLS certificate" },
    { name = "insecure", type = "boolean", default = false, help = "do not verify TLS (never in production)" },
  },
  steps = {
    "Read the prune run's journal and each deleted user's record (checked against the journal's SHA-256)",
    "For each user: leave them alone if they exist again; otherwise plan to create them",
    "Check that the token's scopes allow creating the users, their groups and last activity; refuse the plan if not",
    "For each kept volume: leave it alone if it is gone or bound to another claim; otherwise plan to attach it",
    "Ask the Kubernetes API whether the context may create the claims and patch the volumes; refuse the plan if not",
    "Apply: create the user (admin flag), add them to their groups, set their last activity",
    "Apply: clear the volume's old claimRef, create the claim with spec.volumeName, wait for Bound, restore the reclaim policy",
  },

  -- The hub is the run's, unless given: the same hub may be reached by another URL from here (a
  -- CronJob pruned http://hub:8081 in the cluster; an operator restores through its public URL).
  -- The plan says so, and the confirmation names the hub that will be written to.
  target = function(ctx)
    local run = prune_run(ctx)
    local pruned = hub.api_url(run.plan.params.hub or "")
    if not pruned then util.fail(2, "the run's journal names no hub") end
    if ctx.params.hub == nil then ctx.params.hub = pruned end
    local api = hub.api_url(ctx.params.hub)
    if not api then util.fail(2, "parameter 'hub' must be the hub's URL, not '%s'", tostring(ctx.params.hub)) end
    ctx.state.pruned_url = pruned
    return api:match("^https?://([^/]+)")
  end,

  setup = connect,

  plan = function(ctx)
    local client = connect(ctx)
    local run = prune_run(ctx)
    -- Who the token is, and its scopes (JupyterHub 2.0 and later): what apply may do is checked below.
    local me, err = client:whoami()
    if not me then util.fail(1, err) end
    ctx.state.me = me
    local scopes = hub.token_scopes(me)
    local scope_check = scopes and hub.scope_check(scopes) or nil
    ctx:fact("prune_run", string.format("%s (planned %s on %s)", run.journal, tostring(run.plan.created), run.plan.target))
    ctx:fact("users_deleted_by_the_run", #run.users + #run.missing)
    ctx:note("API tokens cannot be restored: the hub keeps only their hashes; restored users create new ones")
    if ctx.state.pruned_url ~= client.api_url then
      ctx:note(string.format("the run pruned the hub at %s; this restores to %s: make sure it is the same hub",
        ctx.state.pruned_url, client.api_url))
    end
    local wanted
    if #ctx.params.users > 0 then
      wanted = {}
      for _, name in ipairs(ctx.params.users) do wanted[name] = true end
    end
    local in_run = {}
    for _, m in ipairs(run.missing) do
      in_run[m.name] = true
      if not wanted or wanted[m.name] then ctx:skip{ target = m.name, reason = "no record to restore from: " .. m.why } end
    end
    local groups_exist = {}
    local volumes = {}
    for _, entry in ipairs(run.users) do
      local record = entry.record
      local name = record.user.name
      in_run[name] = true
      if not wanted or wanted[name] then
        local now, err = client:user(name)
        if now == nil then util.fail(1, err) end
        if now then
          ctx:skip{ target = name, reason = "exists again on the hub" }
        else
          local groups, lost = {}, {}
          for _, g in ipairs(type(record.user.groups) == "table" and record.user.groups or {}) do
            if groups_exist[g] == nil and scope_check and not hub.has_scope(scopes, "read:groups", { groups = { g } }) then
              -- The token may not read the group (403), so it may not add members to it either (groups
              -- holds read:groups): the pre-flight below refuses the plan for it, whether it exists or not.
              groups_exist[g] = true
            elseif groups_exist[g] == nil then
              local group, gerr = client:group(g)
              if group == nil then util.fail(1, gerr) end
              groups_exist[g] = group ~= false
            end
            if groups_exist[g] then groups[#groups + 1] = g else lost[#lost + 1] = g end
          end
          if #lost > 0 then
            ctx:note(string.format("%s was in groups that no longer exist (%s): those memberships are not restored", name,
              table.concat(lost, ", ")))
          end
          local what = { record.user.admin and "admin" or nil }
          if #groups > 0 then what[#what + 1] = "groups " .. table.concat(groups, ", ") end
          check_scopes(scope_check, name, groups, record.user.last_activity)
          ctx:add{ kind = "hub.create_user", target = name,
                   reason = "deleted by the run" .. (#what > 0 and ("; " .. table.concat(what, "; ")) or ""),
                   args = { admin = record.user.admin == true, groups = groups, last_activity = record.user.last_activity } }
          if ctx.params.reattach then
            for _, saved in ipairs(kept_volumes(record)) do volumes[#volumes + 1] = { name = name, saved = saved } end
          end
        end
      end
    end
    for name in pairs(wanted or {}) do
      if not in_run[name] then util.fail(2, "user '%s' was not deleted by the run %s", name, run.journal) end
    end
    local created = #ctx.actions
    check_hub_scopes(ctx, scope_check, created)
    for _, v in ipairs(volumes) do plan_volume(ctx, v.name, v.saved) end
    check_cluster_access(ctx)
    local reattached = #ctx.actions - created
    if created > 0 then ctx:effect(string.format("%d user%s re-created", created, created == 1 and "" or "s")) end
    if reattached > 0 then
      ctx:effect(string.format("%d home director%s re-attached", reattached, reattached == 1 and "y" or "ies"))
    end
  end,

  actions = {
    ["hub.create_user"] = {
      concurrent = true,
      on_failure = "continue",
      check = function(ctx, action)
        local user, err = connect(ctx):user(action.target)
        if user == nil then return nil, err end
        -- A resume after a kill right after the creation finds the user it made: go on with the groups.
        if user and not ctx.started_earlier(action) then return false, "exists again on the hub" end
        return true
      end,
      run = function(ctx, action)
        local client = connect(ctx)
        local ok, err = client:create_user(action.target, { admin = action.args.admin })
        if not ok then return nil, err end
        local said = { "created" .. (action.args.admin and " (admin)" or "") }
        for _, g in ipairs(action.args.groups or {}) do
          local added, gerr = client:add_to_group(g, { action.target })
          if added == nil then return nil, "created, but not added to group " .. g .. ": " .. gerr end
          said[#said + 1] = added and ("in group " .. g) or ("group " .. g .. " is gone")
        end
        if type(action.args.last_activity) == "string" then
          local set, aerr = client:set_activity(action.target, action.args.last_activity)
          if not set then return nil, "created, but its last activity was not restored: " .. aerr end
        end
        return true, table.concat(said, ", ")
      end,
    },
    ["k8s.reattach_volume"] = {
      on_failure = "continue",
      check = function(ctx, action)
        local a = action.args
        local client = k8s_client(ctx)
        local pv, err = client:get("persistentvolumes", a.volume)
        if pv == nil then return nil, err end
        if pv == false then return false, "the volume is gone" end
        local state, holder = storage.volume_state(pv, a.old_claim_uid)
        local mine = a.claim.metadata.namespace .. "/" .. a.claim.metadata.name
        if state == "bound" and holder ~= mine then return false, "bound to another claim, " .. holder end
        local claim
        claim, err = client:get("persistentvolumeclaims", a.claim.metadata.name, { namespace = a.claim.metadata.namespace })
        if claim == nil then return nil, err end
        if claim and field(claim, "spec", "volumeName") ~= a.volume then
          return false, "a claim " .. mine .. " exists again, for another volume"
        end
        return true
      end,
      run = function(ctx, action)
        local a = action.args
        local client = k8s_client(ctx)
        local ns, name = a.claim.metadata.namespace, a.claim.metadata.name
        local pv, err = client:get("persistentvolumes", a.volume)
        if not pv then return nil, err or "the volume is gone" end
        if storage.volume_state(pv, a.old_claim_uid) == "released" then
          local ok, rerr = storage.release(client, a.volume, a.old_claim_uid)
          if not ok then return nil, "cannot free the volume from its deleted claim: " .. rerr end
        end
        local claim
        claim, err = client:get("persistentvolumeclaims", name, { namespace = ns })
        if claim == nil then return nil, err end
        if claim == false then
          local made, cerr = client:create("persistentvolumeclaims", a.claim, { namespace = ns })
          if not made then return nil, "cannot create the claim: " .. cerr end
        end
        local bound, berr = storage.wait_bound(client, ns, name, a.volume, ctx.params.bind_timeout)
        if not bound then return nil, berr end
        local said = "claim " .. ns .. "/" .. name .. " Bound to " .. a.volume
        if a.previous_policy and a.previous_policy ~= "Retain" then
          local ok, perr = storage.restore_policy(client, a.volume, a.previous_policy)
          if not ok then return nil, said .. ", but its reclaim policy was not put back: " .. perr end
          said = said .. "; reclaim policy back to " .. a.previous_policy
        elseif a.previous_policy then
          local ok, perr = storage.restore_policy(client, a.volume, "Retain")
          if not ok then return nil, said .. ", but runbook's marks were not removed: " .. perr end
        end
        return true, said
      end,
    },
  },
}
