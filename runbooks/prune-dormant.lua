-- prune-dormant: delete JupyterHub users with no activity for a number of days.
-- Every user is listed first (deleting while paging would shift the pages), each is judged, and each
-- candidate is read again just before it is deleted: JupyterHub 3.0 deletes a user whose server is
-- running (it stops the server first), so the hub's own checks cannot be relied on.
local ctxstate = require "runbook.ctxstate"
local http = require "runbook.http"
local hub = require "runbook.hub"
local json = require "runbook.json"
local k8s = require "runbook.k8s"
local access = require "runbook.k8s.access"
local storage = require "runbook.storage"
local userbackup = require "runbook.userbackup"
local util = require "runbook.util"

local DAY = 86400
local LISTING_TRIES = 3 -- listings in all, the sorted one included, before planning on a moving hub
-- The thresholds the plan also counts for (with the chosen `days`), so a site can pick one from one listing.
local WHAT_IF_DAYS = { 30, 90, 180, 365 }
-- The ranges active users are grouped by in the plan (each ends where the next begins; the last at `days`).
local ACTIVITY_BANDS = { 7, 30, 90, 180, 365, 730 }
-- Below this a threshold takes users who were merely away (a holiday, a term break): the plan says so.
local LOW_DAYS = 30
-- The share cap (max_percent) counts only above this many deletions: up to 20 the plan lists every
-- one of them by name (the renderer shows 20 a group), so the operator reads who goes. Above it,
-- nobody reads the list, and a threshold that takes most of a hub is far likelier a slip (days=1
-- for days=100, a clock, a unit) than a decision; 50% by default still lets a first prune clear a
-- large backlog, and a site whose hub really is mostly dormant says so once with -p max_percent=.
local SHARE_CAP_FLOOR = 20

local function connect(ctx)
  return ctxstate.once(ctx, "client", function()
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
    ctx.state.info, ctx.state.me = info, me
    return client
  end)
end

local function hub_url(v)
  return hub.api_url(v) ~= nil, "must be the hub's URL, http(s)://host[/prefix][/hub/api], not '" .. v .. "'"
end
local STORAGE_CHOICES = { retain = true, delete = true, ["keep-user"] = true, unchecked = true }
local function storage_choice(v)
  return STORAGE_CHOICES[v] ~= nil, "must be retain, delete, keep-user or unchecked, not '" .. v .. "'"
end

local function when(t) return t and util.format_time(t) or "never" end

-- protection(ctx, user) -> why a user must be left alone right now, and the group the plan lists them
-- under | nil when nothing protects them. Shared by the plan and the re-check, so both judge by the
-- same rules. Nothing here depends on `days`: what protects a user protects them at every threshold.
local function protection(ctx, user)
  local p, policy = ctx.params, ctx.policy
  for _, name in ipairs(policy.protected_users or {}) do
    if name == user.name then return "protected by policy (protected_users)", "protected by policy" end
  end
  local me = ctx.state.me
  if type(me) == "table" and me.name == user.name then
    return string.format("the token's own identity (%s %s): the hub refuses to delete it", tostring(me.kind or "user"),
      me.name), "the token's own identity"
  end
  if user.admin and not p.include_admins then return "admin", "admin" end
  if not hub.can_see_servers(user) then
    error("the hub token cannot see users' servers (the user model has no 'servers'); " ..
      "give it the admin:servers or read:servers scope, or a user with a running server could be deleted", 0)
  end
  local server = hub.server_state(user)
  if server then return server, server:find("pending", 1, true) and "server pending" or "server running" end
  if policy.exclude then
    -- The policy is shown the user and nothing else (not `days`): its answer holds at every threshold,
    -- which is what lets the what-if counts honour it.
    local excluded = policy.exclude(user)
    if excluded then
      return "excluded by policy" .. (type(excluded) == "string" and (": " .. excluded) or ""), "excluded by policy"
    end
  end
  return nil
end


-- The group of a user active `idle` seconds ago, among ranges that end at `days`: "active within 7
-- days", "active 7 to 30 days ago", ..., "active 30 to 90 days ago" (for days=90), so that users seen
-- yesterday and users seen nearly `days` ago are not counted as one.
local function activity_group(idle, days)
  local lower = 0
  for _, band in ipairs(ACTIVITY_BANDS) do
    if band >= days then break end
    if idle <= band * DAY then break end
    lower = band
  end
  local upper = days
  for _, band in ipairs(ACTIVITY_BANDS) do
    if band > lower and band < days then upper = band break end
  end
  if lower == 0 then return "active within " .. util.count(upper, "day") end
  return string.format("active %d to %s ago", lower, util.count(upper, "day"))
end

-- dormancy(ctx, user, now) -> reason it is dormant | nil, reason it is not, its group
local function dormancy(ctx, user, now)
  local p = ctx.params
  local last = hub.last_activity(user)
  if last then
    local idle = now - last
    if idle > p.days * DAY then
      return string.format("no activity for %s (last %s)", util.human_duration(idle), when(last))
    end
    return nil, string.format("active %s ago", util.human_duration(math.max(0, idle))),
      activity_group(math.max(0, idle), p.days)
  end
  local created = hub.created(user)
  if not created then return nil, "never active, creation time unknown", "never active, creation time unknown" end
  local age = now - created
  if age > p.grace_days * DAY then
    return string.format("never active; created %s ago", util.human_duration(age))
  end
  return nil, string.format("new account, created %s ago (grace period %s)", util.human_duration(math.max(0, age)),
    util.count(p.grace_days, "day")), "created within the grace period"
end

-- ---- users' storage ----
-- Deleting a hub user makes the spawner delete what it keeps for them (KubeSpawner: the home
-- directory's claim, and with reclaim policy Delete the volume). The plan finds that storage and the
-- operator chooses what happens to it (-p storage=); nothing is planned with it unaccounted for.

local function k8s_client(ctx) return ctxstate.k8s(ctx) end

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

-- ---- what-if: how many users other thresholds would delete ----
-- Counted while the users stream by, from the judgement the plan makes of each (protection, policy,
-- storage=keep-user, grace): a few integers whatever the hub's size. Only the comparison with `days`
-- depends on the threshold, so each user adds to the count of every threshold their idle time exceeds.

local function new_tally(ctx, sorted)
  local days, thresholds, seen = ctx.params.days, {}, {}
  for _, d in ipairs(WHAT_IF_DAYS) do
    -- A listing sorted by activity stops at the first user active within `days`: the users of a
    -- smaller threshold are not all listed, so it is not counted (the plan says so).
    if not seen[d] and (not sorted or d >= days) then thresholds[#thresholds + 1], seen[d] = d, true end
  end
  if not seen[days] then thresholds[#thresholds + 1] = days end
  table.sort(thresholds)
  local idle_over = {}
  for i = 1, #thresholds do idle_over[i] = 0 end
  return { thresholds = thresholds, idle_over = idle_over, never_active = 0, left_alone = {}, sorted = sorted }
end

local function tally_left_alone(tally, group)
  tally.left_alone[group] = (tally.left_alone[group] or 0) + 1
end

local function tally_idle(tally, idle)
  for i, d in ipairs(tally.thresholds) do
    if idle > d * DAY then tally.idle_over[i] = tally.idle_over[i] + 1 end
  end
end

-- would_delete(tally) -> {days = count}: what each threshold selects (before max_actions spreads it over runs)
local function would_delete(tally)
  local counts = {}
  for i, d in ipairs(tally.thresholds) do counts[d] = tally.idle_over[i] + tally.never_active end
  return counts
end

local function what_if_line(tally)
  local counts, parts = would_delete(tally), {}
  for _, d in ipairs(tally.thresholds) do parts[#parts + 1] = string.format("%d days: %d", d, counts[d]) end
  return table.concat(parts, ", ")
end

local function what_if_facts(ctx, tally)
  local counts, rows = would_delete(tally), json.array()
  for _, d in ipairs(tally.thresholds) do rows[#rows + 1] = { days = d, would_delete = counts[d] } end
  -- A list of rows: the plan shows it as a small table (DAYS, WOULD DELETE).
  ctx:fact("what_if", rows)
  ctx:fact("what_if_never_active", tally.never_active)
  local groups, parts = util.sorted_keys(tally.left_alone), {}
  table.sort(groups, function(a, b)
    return tally.left_alone[a] > tally.left_alone[b] or (tally.left_alone[a] == tally.left_alone[b] and a < b)
  end)
  for _, g in ipairs(groups) do parts[#parts + 1] = string.format("%s %d", g, tally.left_alone[g]) end
  ctx:fact("what_if_left_alone", #parts > 0 and table.concat(parts, ", ") or "none")
  local how = string.format("each count is what a plan with that days would select (max_actions aside): the users " ..
    "idle longer, plus the %d never active for more than grace_days=%d, judged as this plan judges them", tally.never_active,
    ctx.params.grace_days)
  if ctx.policy.exclude or ctx.policy.protected_users then
    how = how .. "; the site policy is honoured at every threshold (exclude() is shown only the user, not days)"
  end
  if tally.sorted then
    how = how .. string.format("; thresholds below %d days are not counted: the listing, sorted by activity, stopped " ..
      "at the first user active within %d days (plan with a smaller days to count them), and left-alone counts " ..
      "cover only the users listed", ctx.params.days, ctx.params.days)
  end
  ctx:fact("what_if_counted", how)
end

local KEEP_USER_GROUP = "has storage (storage=keep-user)"

-- ---- permissions apply will need, checked at plan time ----
-- Apply reads each candidate again (GET /users/NAME: read:users, and read:servers to see their
-- servers) and deletes them (delete:users). The listing that made the plan proves the token can list
-- and read; only the hub's scopes say whether it may delete. A scope may be granted on some users
-- only (delete:users!group=students): it is checked for each candidate, counting what is missing.
local APPLY_SCOPES = { "delete:users", "read:users", "read:servers" }
-- What the refusal tells the operator to grant: the scopes of the token the runbook documents.
local ROLE = { name = "prune-dormant", scopes = { "admin:users", "admin:servers", "list:users", "read:users", "read:hub" } }

-- check_scopes(scope_check, user): counts what the token lacks to re-read and delete this candidate.
local function check_scopes(scope_check, user)
  if not scope_check then return end -- the hub does not say (before JupyterHub 2.0): the plan notes it
  for _, scope in ipairs(APPLY_SCOPES) do scope_check:need(scope, user, "users to delete") end
end

-- Refuses the plan (exit 2) when the token lacks a scope apply needs, naming what to grant and where.
local function refuse_missing_scopes(ctx, scope_check)
  local message = scope_check:refusal(ctx.state.me, ROLE)
  if message then util.fail(2, message) end
end

-- The Kubernetes calls apply makes for the candidates' storage, checked with SelfSubjectAccessReviews:
-- it reads each claim and volume again, and with storage=retain patches the volumes (cluster-scoped).
local function check_cluster_access(ctx, namespace, claims)
  if #claims == 0 then return end
  local needs = storage.needed_access(ctx.params.storage, namespace)
  local client = k8s_client(ctx)
  local denied, err = access.missing(client, needs)
  if not denied then
    ctx:note("Kubernetes permissions were not checked in advance: " .. err)
    return
  end
  if #denied == 0 then
    ctx:fact("storage_permissions", "checked (SelfSubjectAccessReview): " .. access.describe_all(needs))
    return
  end
  local lines = {}
  for _, d in ipairs(denied) do lines[#lines + 1] = "  " .. access.describe(d) .. ": " .. d.why end
  util.fail(2, "Kubernetes user '%s' (context %s) may not do what apply would do for the users' storage:\n%s\n" ..
    "Grant it (deploy/rbac.yaml: a Role with get and list on persistentvolumeclaims, a ClusterRole with get, list and " ..
    "patch on persistentvolumes, which are cluster-scoped), or use a context that has it, and plan again. " ..
    "Nothing was changed.", tostring(client.user), tostring(client.context), table.concat(lines, "\n"))
end

-- count_for_what_if(tally, params, user, now, kept_group, has_storage): one user's part in the counts.
-- A user left alone for a reason that does not depend on `days` is left alone at every threshold.
local function count_for_what_if(tally, p, user, now, kept_group, has_storage)
  if kept_group then return tally_left_alone(tally, kept_group) end
  if has_storage and p.storage == "keep-user" then return tally_left_alone(tally, KEEP_USER_GROUP) end
  local last = hub.last_activity(user)
  if last then return tally_idle(tally, math.max(0, now - last)) end
  local created = hub.created(user)
  if not created then return tally_left_alone(tally, "never active, creation time unknown") end
  if now - created > p.grace_days * DAY then
    tally.never_active = tally.never_active + 1
  else
    tally_left_alone(tally, "created within the grace period")
  end
end

-- judge_users(ctx, client, claims_index, sorted) -> {listed, capped, stopped_at, candidate_claims, listing, tally}
-- Lists the users (sorted by activity, or in id order) and judges each, filling the plan's actions and
-- skipped items anew. A sorted listing stops at the first user active within `days`, or as soon as it
-- is found inconsistent (listing.anomaly): the caller then lists again in id order.
local function judge_users(ctx, client, claims_index, sorted, last_try)
  ctx.actions, ctx.skipped = json.array(), json.array()
  local now, p = ctx.now, ctx.params
  local run = { listed = 0, capped = 0, candidate_claims = {}, tally = new_tally(ctx, sorted),
                scope_check = ctx.state.scopes and hub.scope_check(ctx.state.scopes) or nil }
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
    local kept, group = protection(ctx, user)
    local dormant, active = nil, nil
    if not kept then dormant, active, group = dormancy(ctx, user, now) end
    local claims = (not kept and claims_index) and claims_index:claims_of(user.name) or {}
    count_for_what_if(run.tally, p, user, now, kept and group, #claims > 0)
    if not dormant then claims = {} end
    if #claims > 0 and p.storage == "keep-user" then
      local described = {}
      for _, c in ipairs(claims) do described[#described + 1] = storage.describe(c) end
      kept, group = "has storage (" .. table.concat(described, "; ") .. "); storage=keep-user", KEEP_USER_GROUP
    end
    if kept or active then
      ctx:skip{ target = user.name, reason = kept or active, group = group }
    elseif p.max_actions > 0 and #ctx.actions >= p.max_actions then
      run.capped = run.capped + 1
      local cap = "over this run's cap (max_actions " .. p.max_actions .. ")"
      ctx:skip{ target = user.name, reason = cap, group = cap }
    else
      check_scopes(run.scope_check, user)
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

-- The plan's effect in a line: how many users go, and what becomes of their home directories.
local function state_effect(ctx, claims_index, claims)
  local n = #ctx.actions
  ctx:effect(string.format("%d user%s deleted", n, n == 1 and "" or "s"))
  local mode = ctx.params.storage
  local function dirs(k) return string.format("%d home director%s", k, k == 1 and "y" or "ies") end
  if mode == "unchecked" then
    ctx:effect("storage not checked")
  elseif claims_index and mode == "keep-user" then
    ctx:effect("home directories untouched (users who have one are left alone)")
  elseif claims_index and mode == "retain" then
    local kept = 0
    for _, c in ipairs(claims) do if c.volume then kept = kept + 1 end end
    if kept > 0 then ctx:effect(dirs(kept) .. " kept (volumes set to Retain)") end
  elseif claims_index and mode == "delete" then
    local lost = storage.at_risk(claims)
    if lost > 0 then ctx:effect(dirs(lost) .. " deleted with their users") end
  end
end

-- check_share(ctx, selected, total, tally): refuses (exit 2) a plan whose threshold selects more than
-- max_percent of the hub's users, past the floor above. It judges what `days` selects, before
-- max_actions: a per-run cap spreads a deletion over runs, it does not make a wrong threshold right.
local function check_share(ctx, selected, total, tally)
  local p = ctx.params
  local share = total > 0 and selected * 100 / total or 0
  ctx:fact("share_of_hub", string.format("%d of %d users (%.0f%%); limit: max_percent=%d%s", selected, total, share,
    p.max_percent, p.max_percent >= 100 and " (no limit)" or string.format(", above %d users", SHARE_CAP_FLOOR)))
  if p.max_percent >= 100 or selected <= SHARE_CAP_FLOOR or selected * 100 <= total * p.max_percent then return end
  local needed = (selected * 100 + total - 1) // total
  util.fail(2, "days=%d would delete %d of the hub's %d users (%.0f%%), more than max_percent=%d allows (%d users).\n" ..
    "A threshold that takes this much of a hub is more often a slip than a decision. Users each threshold would " ..
    "delete: %s.\nChoose a larger days; or, if this many users really are to go, plan again with -p max_percent=%d " ..
    "(the plan records it). Nothing was changed.", p.days, selected, total, share, p.max_percent,
    total * p.max_percent // 100, what_if_line(tally), needed)
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
      help = "delete at most this many users per run (0: no cap); the rest are left for later runs" },
    { name = "max_percent", type = "integer", default = 50, min = 1, max = 100,
      help = "refuse a plan whose days selects more than this share (percent) of the hub's users, " ..
        "when more than " .. SHARE_CAP_FLOOR .. " (100: no limit)" },
    { name = "include_admins", type = "boolean", default = false, help = "also delete dormant admins" },
    { name = "storage", type = "string", default = "retain", check = storage_choice,
      help = "users' storage (KubeSpawner claims): retain (keep the volume), delete, keep-user (skip users who have some), unchecked" },
    { name = "concurrency", type = "integer", default = 8, min = 1, max = 64,
      help = "at most this many deletions in flight (adaptive below it: fewer when the hub slows down)" },
    { name = "adaptive", type = "boolean", default = true,
      help = "adapt the deletions in flight to the hub's latency (false: always `concurrency`)" },
    { name = "max_rate", type = "number", default = 0, min = 0, max = 100000,
      help = "at most this many deletions a second (0: no limit)" },
    { name = "hub_share", type = "number", default = 0.75, min = 0.05, max = 1,
      help = "share of the hub's time the deletions may take (adaptive: users' requests get the rest)" },
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
    ctx.state.scopes = hub.token_scopes(ctx.state.me)
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
    what_if_facts(ctx, run.tally)
    local selected = #ctx.actions + run.capped
    local chosen = would_delete(run.tally)[days]
    if chosen ~= selected then -- the what-if counts and the plan judged differently: never show such numbers
      error(string.format("what-if count for %d days (%d) differs from the plan's (%d)", days, chosen, selected), 0)
    end
    check_share(ctx, selected, client.listed_total or run.listed, run.tally)
    if days < LOW_DAYS then
      ctx:note(string.format("days=%d is unusually low: it takes users who were away for just over %s (a holiday, a " ..
        "break between terms); dormant-user pruning usually waits 90 days or more (the counts by threshold are under " ..
        "Found: what if)", days, util.count(days, "day")))
    end
    if ctx.state.scopes then
      refuse_missing_scopes(ctx, run.scope_check)
      if #ctx.actions > 0 then ctx:fact("hub_permissions", "checked: the token may delete and read the users to delete") end
    elseif #ctx.actions > 0 then
      ctx:note("the hub does not list the token's scopes (GET /hub/api/user, JupyterHub 2.0 and later): whether it may " ..
        "delete users is known only when apply tries")
    end
    if claims_index then
      check_cluster_access(ctx, claims_index.namespace, run.candidate_claims)
      storage_summary(ctx, run.candidate_claims)
    end
    if #ctx.actions > 0 then
      ctx:fact("records_kept", "each deleted user's record goes beside the journal (JOURNAL.backup/users/); " ..
        "restore-users -p from=JOURNAL undoes the run")
      state_effect(ctx, claims_index, run.candidate_claims)
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
      -- GET /hub/api/ without the token (the hub's version: no database, no token to look up): its
      -- latency is the round trip, and what a deletion takes beyond it is the hub's work, which the
      -- pacer keeps to hub_share of the hub's time (runner.pacing).
      round_trip = function(ctx)
        local opts = connect(ctx):request_options("GET", "/")
        opts.headers, opts.retries = { Accept = "application/json" }, 0
        local resp = http.request(opts)
        return resp and resp.status == 200 and resp.time or nil
      end,
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
