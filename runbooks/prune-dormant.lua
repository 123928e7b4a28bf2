-- prune-dormant: delete JupyterHub users with no activity for a number of days.
-- Every user is listed first (deleting while paging would shift the pages), each is judged, and each
-- candidate is read again just before it is deleted: JupyterHub 3.0 deletes a user whose server is
-- running (it stops the server first), so the hub's own checks cannot be relied on.
local hub = require "runbook.hub"
local json = require "runbook.json"
local k8s = require "runbook.k8s"
local storage = require "runbook.storage"
local userbackup = require "runbook.userbackup"
local util = require "runbook.util"

local DAY = 86400
local LISTING_TRIES = 3 -- listings in all, the sorted one included, before planning on a moving hub

local function connect(ctx)
  if ctx.state.client then return ctx.state.client end
  local p = ctx.params
  local client, err = hub.connect{ url = p.hub, token_file = p.token_file, ca_file = p.ca_file, insecure = p.insecure }
  if not client then util.fail(2, err) end -- no token, unreadable token file: the operator's to fix
  local info
  info, err = client:info()
  if not info then util.fail(1, err) end -- the hub is down or refuses us: a message, not a traceback
  -- Who the token is: a token the hub rejects is reported as that (not as a missing scope later), and
  -- the token's own identity is never deleted (the hub answers "Cannot delete yourself!").
  local me
  me, err = client:whoami()
  if not me then util.fail(1, err) end
  ctx.state.client, ctx.state.info, ctx.state.me = client, info, me
  return client
end

local function hub_url(v)
  return hub.api_url(v) ~= nil, "must be the hub's URL, http(s)://host[/prefix][/hub/api], not '" .. v .. "'"
end
local STORAGE_CHOICES = { retain = true, delete = true, ["keep-user"] = true, unchecked = true }
local function storage_choice(v)
  return STORAGE_CHOICES[v] ~= nil, "must be retain, delete, keep-user or unchecked, not '" .. v .. "'"
end

local function when(t) return t and util.format_time(t) or "never" end

-- Why a user must be left alone right now, or nil when nothing protects them. Shared by the plan and
-- the re-check, so both judge by the same rules.
local function protection(ctx, user)
  local p, policy = ctx.params, ctx.policy
  for _, name in ipairs(policy.protected_users or {}) do
    if name == user.name then return "protected by policy (protected_users)" end
  end
  local me = ctx.state.me
  if type(me) == "table" and me.name == user.name then
    return string.format("the token's own identity (%s %s): the hub refuses to delete it", tostring(me.kind or "user"), me.name)
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

-- ---- users' storage ----
-- Deleting a hub user makes the spawner delete what it keeps for them (KubeSpawner: the home
-- directory's claim, and with reclaim policy Delete the volume). The plan finds that storage and the
-- operator chooses what happens to it (-p storage=); nothing is planned with it unaccounted for.

local function k8s_client(ctx)
  if ctx.state.k8s then return ctx.state.k8s end
  local client, err = k8s.connect(ctx.options)
  if not client then util.fail(2, err) end
  ctx.state.k8s = client
  return client
end

-- find_storage(ctx) -> index of the users' claims | nil when there is nothing to look for.
local function find_storage(ctx)
  local p = ctx.params
  local info, err, detail = ctx.state.client:hub_info()
  local class = info and info.spawner_class
  if info then
    ctx:fact("spawner", class and (class .. " " .. (info.spawner_version or "")) or "not named by the hub")
  elseif detail and detail.status == 403 then
    ctx:fact("spawner", "unknown: the token lacks the read:hub scope (GET /hub/api/info answered 403)")
  elseif detail and detail.status == 404 then
    ctx:fact("spawner", "unknown: the hub has no /hub/api/info")
  else
    util.fail(1, err)
  end
  if p.storage == "unchecked" then
    ctx:fact("storage", "not checked: storage=unchecked (the operator asserts there is no per-user storage to protect)")
    return nil
  end
  local kind = storage.spawner_kind(class)
  if kind == "local" then
    ctx:fact("storage", "none: " .. class .. " keeps no per-user storage that deleting a user removes")
    return nil
  end
  local why = kind == "kubernetes"
      and ("the hub runs " .. class .. ", which deletes a user's home directory claim with the user (delete_pvc is on unless the site turned it off)")
    or class and ("the hub runs " .. class .. ", a spawner runbook does not know: deleting a user may delete their storage")
    or "runbook cannot tell which spawner the hub runs (give the token the read:hub scope), so deleting a user may delete their storage"
  local client, connect_err = k8s.connect(ctx.options)
  if not client then
    util.fail(2, "%s, and no Kubernetes access was given (%s).\nChoose: give access (--kubeconfig, --context, -n NAMESPACE " ..
      "where the users' claims are, or run in the cluster) so runbook can keep each user's storage (-p storage=retain, the " ..
      "default), delete it knowingly (-p storage=delete) or leave users who have storage alone (-p storage=keep-user); " ..
      "or assert there is no per-user storage to protect with -p storage=unchecked", why, connect_err)
  end
  ctx.state.k8s = client
  local namespace = ctx.options.namespace or client.namespace
  local index, list_err = storage.index(client, namespace)
  if not index then
    util.fail(1, "cannot list the users' storage: %s\n(runbook needs list on persistentvolumeclaims in %s and list, get and " ..
      "patch on persistentvolumes: see deploy/rbac.yaml)", list_err, namespace)
  end
  ctx:fact("storage_checked_in", string.format("namespace %s, context %s: %d user claims (%s)", namespace, client.context,
    index.count, storage.CLAIM_SELECTOR))
  if index.count == 0 and kind == "kubernetes" then
    ctx:note(string.format("the hub runs KubeSpawner but namespace %s has no user claims: if they are in another " ..
      "namespace, plan again with -n NAMESPACE", namespace))
  end
  if #index.unattributed > 0 then
    local names = {}
    for i, c in ipairs(index.unattributed) do if i <= 5 then names[#names + 1] = c.name end end
    ctx:note(string.format("%d claims carry no hub.jupyter.org/username annotation (%s%s); they are matched only to users " ..
      "whose name is their label", #index.unattributed, table.concat(names, ", "), #index.unattributed > 5 and ", ..." or ""))
  end
  return index
end

-- The plan's words for what storage=MODE does to the candidates' storage, and the confirmation's.
local function storage_summary(ctx, claims)
  local mode = ctx.params.storage
  local count, bytes = 0, 0
  for _, c in ipairs(claims) do
    if c.volume then count, bytes = count + 1, bytes + c.bytes end
  end
  local at_risk, at_risk_bytes = storage.at_risk(claims)
  local size = storage.human_bytes(bytes)
  if mode == "retain" then
    ctx:fact("storage_of_candidates", string.format("%d home directories, %s: kept (each volume set to reclaim policy " ..
      "Retain before its user is deleted)", count, size))
    if count > 0 then
      ctx:consequence(string.format("%d home directories (%s) are kept after their users are deleted: their volumes stay " ..
        "(Released, reclaim Retain) and keep using storage until restore-users attaches them again or you delete them " ..
        "(kubectl get pv -l %s)", count, size, storage.RETAINED_LABEL))
    end
  elseif mode == "delete" then
    ctx:fact("storage_of_candidates", string.format("%d home directories, %s: %d of them (%s) DELETED with their users " ..
      "(storage=delete)", count, size, at_risk, storage.human_bytes(at_risk_bytes)))
    if at_risk > 0 then
      ctx:consequence(string.format("%d home directories (%s) are DELETED with their users and cannot be restored " ..
        "(storage=delete)", at_risk, storage.human_bytes(at_risk_bytes)))
    end
  end
end

-- What is kept of a user before they are deleted: the hub's record of them, and their storage's manifests.
local function user_record(user)
  local servers = json.array()
  for name, s in pairs(type(user.servers) == "table" and user.servers or {}) do
    servers[#servers + 1] = { name = name, last_activity = type(s) == "table" and s.last_activity or nil }
  end
  table.sort(servers, function(a, b) return a.name < b.name end)
  return {
    name = user.name, admin = user.admin == true, kind = user.kind, groups = user.groups, roles = user.roles,
    created = user.created, last_activity = user.last_activity, servers = servers,
  }
end

-- judge_users(ctx, client, claims_index, sorted) -> {listed, capped, stopped_at, candidate_claims, listing}
-- Lists the users (sorted by activity, or in id order) and judges each, filling the plan's actions and
-- skipped items anew. A sorted listing stops at the first user active within `days`, or as soon as it
-- is found inconsistent (listing.anomaly): the caller then lists again in id order.
local function judge_users(ctx, client, claims_index, sorted, last_try)
  ctx.actions, ctx.skipped = json.array(), json.array()
  local now, p = ctx.now, ctx.params
  local run = { listed = 0, capped = 0, candidate_claims = {} }
  local users
  users, run.listing = client:users{ sort = sorted and "last_activity" or nil }
  for user in users do
    -- A listing found inconsistent is abandoned: the caller lists again, in id order.
    if run.listing.anomaly and not last_try then break end
    local last = hub.last_activity(user)
    if sorted and last and now - last <= p.days * DAY then
      run.stopped_at = user.name
      break
    end
    run.listed = run.listed + 1
    ctx.progress("listing users", run.listed, client.listed_total)
    local kept = protection(ctx, user)
    local dormant, active = nil, nil
    if not kept then dormant, active = dormancy(ctx, user, now) end
    local claims = (dormant and claims_index) and claims_index:claims_of(user.name) or {}
    if #claims > 0 and p.storage == "keep-user" then
      local described = {}
      for _, c in ipairs(claims) do described[#described + 1] = storage.describe(c) end
      kept = "has storage (" .. table.concat(described, "; ") .. "); storage=keep-user"
    end
    if kept or active then
      ctx:skip{ target = user.name, reason = kept or active }
    elseif p.max_actions > 0 and #ctx.actions >= p.max_actions then
      run.capped = run.capped + 1
      ctx:skip{ target = user.name, reason = "over this run's cap (max_actions " .. p.max_actions .. ")" }
    else
      local reason, args = dormant, { last_activity = user.last_activity, created = user.created }
      if #claims > 0 then
        local described = {}
        for _, c in ipairs(claims) do
          described[#described + 1] = storage.describe(c, p.storage)
          run.candidate_claims[#run.candidate_claims + 1] = c
        end
        reason = reason .. "; " .. table.concat(described, "; ")
        args.storage = { mode = p.storage, claims = claims }
      end
      ctx:add{ kind = "hub.delete_user", target = user.name, reason = reason, args = args }
    end
  end
  return run
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
Storage: deleting a user makes the hub's spawner delete what it keeps for them; with KubeSpawner
(zero-to-jupyterhub) that is the user's home directory claim, and with the usual storage class the
disk. The plan reads the spawner from /hub/api/info; for KubeSpawner (or an unknown spawner) it needs
Kubernetes access (--kubeconfig/--context, -n the namespace of the users' claims) and lists every
claim labelled component=singleuser-storage. storage=retain (default) sets each candidate's volume
to reclaim policy Retain, labelled runbook/retained-by=prune-dormant, before deleting the user, so the
data stays; storage=delete lets the hub delete it; storage=keep-user leaves users with storage alone;
storage=unchecked asserts there is nothing to protect. Before each deletion the user's record (admin,
groups, roles, created, last activity, servers) and the manifests of their claims and volumes are
saved beside the journal (JOURNAL.backup/users/); restore-users -p from=JOURNAL undoes the run.
Token: JUPYTERHUB_API_TOKEN or -p token_file=PATH (a service token with admin:users, admin:servers,
list:users, read:users, read:hub). Never on the command line.]],
  params = {
    { name = "hub", type = "string", env = "JUPYTERHUB_API_URL", required = true, check = hub_url,
      help = "the hub's public URL or its /hub/api URL" },
    { name = "token_file", type = "path", help = "file holding the API token (else JUPYTERHUB_API_TOKEN)" },
    { name = "days", type = "integer", default = 90, min = 1, max = 36500, help = "dormant after this many days without activity" },
    { name = "grace_days", type = "integer", default = 7, min = 0, max = 36500,
      help = "never-active accounts younger than this are kept" },
    { name = "max_actions", type = "integer", default = 0, min = 0, max = 10000000,
      help = "delete at most this many users per run (0: no cap)" },
    { name = "include_admins", type = "boolean", default = false, help = "also delete dormant admins" },
    { name = "storage", type = "string", default = "retain", check = storage_choice,
      help = "users' storage (KubeSpawner claims): retain (keep the volume), delete, keep-user (skip users who have some), unchecked" },
    { name = "concurrency", type = "integer", default = 8, min = 1, max = 64,
      help = "at most this many deletions in flight (adaptive below it: fewer when the hub slows down)" },
    { name = "adaptive", type = "boolean", default = true,
      help = "adapt the deletions in flight to the hub's latency (false: always `concurrency`)" },
    { name = "max_rate", type = "number", default = 0, min = 0, max = 100000,
      help = "at most this many deletions a second (0: no limit)" },
    { name = "ca_file", type = "path", help = "CA bundle to verify the hub's TLS certificate" },
    { name = "insecure", type = "boolean", default = false, help = "do not verify TLS (never in production)" },
  },
  policy = { exclude = "function", protected_users = "list" },
  steps = {
    "Read the hub's version and spawner (/hub/api/info); for KubeSpawner, list the users' claims and their volumes",
    "Read every user, page by page (200 at a time)",
    "Judge each user: admins, users with a running or pending server, protected or excluded users, and users active within `days` are left alone",
    "Apply: for each candidate, read the user (and their claims) again; skip them if anything changed",
    "Save the user's record and their storage's manifests beside the journal; with storage=retain set each volume to Retain",
    "DELETE /hub/api/users/NAME, then check what became of their claims and volumes",
    "Report deleted, skipped (by reason), failed (with the hub's message), and the user count before and after",
  },

  target = function(ctx)
    local api = assert(hub.api_url(ctx.params.hub))
    return api:match("^https?://([^/]+)")
  end,

  setup = connect,

  plan = function(ctx)
    local client = connect(ctx)
    ctx:fact("hub_version", ctx.state.info.version)
    ctx:fact("dormant_after", ctx.params.days .. " days without activity")
    local claims_index = find_storage(ctx)
    -- Hubs that sort by activity (5.0 and later) list the idle first: the first user active within
    -- `days` ends the listing, as everyone after them was active more recently still -- when the
    -- listing was consistent. One that was not (a user listed twice: ties in another order on each
    -- page; the total moving) may have skipped users: then every user is listed again, in id order.
    -- In id order only users deleted or moved during the listing can shift the pages: it is tried
    -- LISTING_TRIES times in all; if users keep moving, the last listing is planned on, and the plan says
    -- some users may be left for the next run.
    local sorted = client:can_sort()
    local run = judge_users(ctx, client, claims_index, sorted)
    local fell_back, tries = nil, 1
    if sorted and run.listing.anomaly then fell_back = run.listing.anomaly end
    while run.listing.anomaly and tries < LISTING_TRIES do
      tries = tries + 1
      run = judge_users(ctx, client, claims_index, false, tries == LISTING_TRIES)
    end
    local unsettled = run.listing.anomaly
    ctx.progress_done("listing users")
    ctx:fact("users_listed", run.listed)
    ctx:fact("users_total", client.listed_total or run.listed)
    local days = ctx.params.days
    if fell_back then
      ctx:fact("listing", string.format("every user, in id order: the sorted listing was not consistent (%s), so it " ..
        "could have skipped users", fell_back))
    elseif run.stopped_at then
      ctx:fact("listing", string.format("sorted by last activity; stopped at %s, the first user active within %d days: " ..
        "the %d users not listed were all active more recently", run.stopped_at, days,
        math.max(0, (client.listed_total or run.listed) - run.listed)))
    elseif sorted then
      ctx:fact("listing", string.format("sorted by last activity; no user was active within %d days", days))
    else
      ctx:fact("listing", "every user, in id order (the hub cannot sort users by activity before JupyterHub 5.0)")
    end
    if unsettled then
      ctx:note(string.format("users kept moving during %d listings (%s): some may not have been listed, and are " ..
        "left for the next run", tries, unsettled))
    elseif tries > 1 and not fell_back then
      ctx:fact("listing", string.format("every user, in id order, listed %d times: users moved during the first", tries))
    end
    if claims_index then storage_summary(ctx, run.candidate_claims) end
    if #ctx.actions > 0 then
      ctx:fact("records_kept", "each deleted user's record goes beside the journal (JOURNAL.backup/users/); " ..
        "restore-users -p from=JOURNAL undoes the run")
    end
    if run.capped > 0 then
      ctx:note(string.format("%d more dormant users are over this run's cap of %d; they are left for later runs",
        run.capped, ctx.params.max_actions))
    end
  end,

  actions = {
    ["hub.delete_user"] = {
      concurrent = true,
      on_failure = "continue",
      -- The user is read again just before deletion: only a user who is still exactly as planned goes,
      -- with the storage that was planned (the same claims, bound to the same volumes).
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
        local claims = {}
        for _, c in ipairs(action.args.storage and action.args.storage.claims or {}) do
          local claim, claim_err = k8s_client(ctx):get("persistentvolumeclaims", c.name, { namespace = c.namespace })
          if claim == nil then return nil, claim_err end
          if claim == false or claim.metadata.uid ~= c.uid then
            return false, "claim " .. c.name .. " was deleted or made anew since the plan"
          end
          local volume = claim.spec and claim.spec.volumeName or nil
          if (volume ~= "" and volume or nil) ~= c.volume then
            return false, "claim " .. c.name .. " is bound to another volume since the plan"
          end
          claims[c.name] = claim
        end
        ctx.state.checked = ctx.state.checked or {}
        ctx.state.checked[action.id] = { user = user, claims = claims }
        return true
      end,
      -- Keep the record, keep the volumes (storage=retain), delete, then say what became of the storage.
      -- Every step is safe to repeat, so a resume after a kill anywhere in it finishes the same way.
      run = function(ctx, action)
        local checked = ctx.state.checked and ctx.state.checked[action.id]
        if ctx.state.checked then ctx.state.checked[action.id] = nil end
        local planned = action.args.storage
        local claims = planned and planned.claims or {}
        local data = {}
        local kept_volumes = {}
        if planned and planned.mode == "retain" then
          for _, c in ipairs(claims) do
            if c.volume then
              local before, err = storage.retain(k8s_client(ctx), c,
                { user = action.target, run = ctx.run_name, time = util.format_time(ctx.time()) })
              if not before then
                return nil, (checked and "not deleted: " or "") .. "cannot keep the volume of " .. c.name .. ": " .. err
              end
              kept_volumes[c.name] = before
            end
          end
        end
        local saved = userbackup.find(ctx.run_backup_dir, action.target)
        if not saved and checked then
          local record = { user = user_record(checked.user), hub = connect(ctx).api_url, run = ctx.run_name,
                           saved = util.format_time(ctx.time()), storage = planned and { mode = planned.mode, claims = {} } or nil }
          for _, c in ipairs(claims) do
            local volume = kept_volumes[c.name]
            if not volume and c.volume then
              local err
              volume, err = k8s_client(ctx):get("persistentvolumes", c.volume)
              if volume == nil then return nil, "not deleted: cannot read volume " .. c.volume .. ": " .. err end
            end
            table.insert(record.storage.claims, { planned = c, claim = checked.claims[c.name], volume = volume or nil })
          end
          local err
          saved, err = userbackup.save(ctx.run_backup_dir, record)
          if not saved then return nil, "not deleted: cannot save the user's record: " .. err end
        end
        if saved then
          data.backup = { file = saved.file, sha256 = saved.sha256 }
        else
          data.why_no_backup = "the user was gone before this run could save their record"
        end
        local ok, how = connect(ctx):delete_user(action.target)
        if not ok then return nil, how, data end
        local said = {}
        -- Gone before this DELETE: by someone else, or by this very action in a run that was killed
        -- before it could record it. Only the first is "already done".
        local already = how ~= "deleted" and not ctx.started_earlier(action)
        if how ~= "deleted" then
          said[#said + 1] = already and "already gone" or "gone (this action was under way when the earlier run stopped)"
        end
        for _, c in ipairs(claims) do
          local text, err = storage.after_delete(k8s_client(ctx), c, planned.mode)
          if not text then return nil, "deleted, but " .. err, data end
          said[#said + 1] = text
        end
        data.storage = planned and planned.mode or nil
        return already and "already" or true, #said > 0 and table.concat(said, "; ") or nil, data
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
    local kept, deleted = 0, 0
    for _, r in ipairs(results.done) do
      for _, c in ipairs(r.action.args.storage and r.action.args.storage.claims or {}) do
        if c.volume and r.action.args.storage.mode == "retain" then kept = kept + 1 end
        if c.volume and r.action.args.storage.mode == "delete" and c.reclaim_policy ~= "Retain" then deleted = deleted + 1 end
      end
    end
    if kept > 0 then
      lines[#lines + 1] = string.format("Home directories kept: %d volumes (reclaim Retain, label %s=prune-dormant).",
        kept, storage.RETAINED_LABEL)
    end
    if deleted > 0 then lines[#lines + 1] = string.format("Home directories deleted with their users: %d.", deleted) end
    if #results.done > 0 and ctx.run_backup_dir then
      lines[#lines + 1] = "Records of the deleted users: " .. ctx.run_backup_dir .. "/users; to undo: runbook plan " ..
        "restore-users -p from=" .. ctx.run_backup_dir
    end
    return lines
  end,
}
