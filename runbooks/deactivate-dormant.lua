-- deactivate-dormant: GitLab's automatic deactivation of dormant users, as a rehearsed procedure.
-- GitLab's design (the "Automate deactivation of dormant users" work, and what came after it): an
-- active, non-internal user whose last_activity_on is `days` (90, the minimum) or more days old, or
-- who never had any activity and was created more than 7 days ago, is deactivated, in batches of 200,
-- at most 100,000 a day; a deactivated user is reactivated when they next sign in. Bots are left
-- alone, and each user is checked again by the deactivation itself (POST /users/:id/deactivate
-- refuses, with 403, a user who is blocked, internal or active within the period).
--
-- Two modes, chosen explicitly with -p mode=:
--   api       GitLab's REST API with an administrator's token: list (keyset pages), judge, re-read
--             each user just before POST /users/:id/deactivate.
--   database  for a JupyterHub that cannot start (its users table is too large): the same dormancy
--             query in SQL on the hub's database, with the hub scaled to zero. JupyterHub has no
--             deactivated state, so "deactivate" is delete the user's row, after a COPY of it and of
--             every row that references it, one batch a transaction.
local backup = require "runbook.backup"
local gitlab = require "runbook.gitlab"
local json = require "runbook.json"
local k8s = require "runbook.k8s"
local pg = require "runbook.pg"
local util = require "runbook.util"

local DAY = 86400
local GITLAB_MINIMUM_DAYS = 90 -- GitLab refuses a shorter dormancy period (15.5 and later)
local DEACTIVATE = "gitlab.deactivate_user"
local DELETE_BATCH = "pg.delete_users"

local function a_mode(v) return v == "api" or v == "database", "must be api or database" end
local function human(seconds) return util.human_duration(math.max(0, seconds)) end
local function n_users(n) return string.format("%d user%s", n, n == 1 and "" or "s") end
local function sql_time(t) return os.date("!%Y-%m-%d %H:%M:%S", math.floor(t)) end

-- ---- what the site's policy keeps, in both modes ----

-- policy_protection(ctx, name, user) -> reason | nil
local function policy_protection(ctx, name, user)
  for _, protected in ipairs(ctx.policy.protected_users or {}) do
    if protected == name then return "protected by policy (protected_users)" end
  end
  if ctx.policy.exclude then
    local excluded = ctx.policy.exclude(user)
    if excluded then return "excluded by policy" .. (type(excluded) == "string" and (": " .. excluded) or "") end
  end
  return nil
end

-- ---- the caps ----

local cluster -- defined with the database mode; the target of that mode is the hub's namespace

-- What the operator types to confirm: GitLab's host, or the hub's namespace.
local function target_name(ctx)
  if not ctx.state.target then
    local api = ctx.params.mode == "api" and gitlab.api_url(ctx.params.gitlab)
    ctx.state.target = api and api:match("^https?://([^/]+)") or cluster(ctx).namespace
  end
  return ctx.state.target
end

-- Users already taken today by this runbook on this target (from the journals: the engine reads them).
-- A batch counts the users it planned, even if the re-check kept some: the cap errs on the safe side.
local function used_today(ctx, kind)
  local used = 0
  for _, action in ipairs(ctx.done_today(kind, target_name(ctx))) do
    used = used + (action.args.ids and #action.args.ids or 1)
  end
  return used
end

-- Room left for the plan: {run = users this run may take, day = ..., used = done today}.
local function plan_room(ctx, kind)
  local p = ctx.params
  local used = p.max_per_day > 0 and used_today(ctx, kind) or 0
  local day = p.max_per_day > 0 and math.max(0, p.max_per_day - used) or math.huge
  local run = p.max_actions > 0 and p.max_actions or math.huge
  if p.max_per_day > 0 then
    ctx:fact("done_today", string.format("%d of max_per_day %d (earlier runs' journals)", used, p.max_per_day))
  end
  return { run = math.min(run, day), day = day, used = used }
end

local function cap_reason(ctx, room)
  local p = ctx.params
  if p.max_per_day > 0 and room.day <= room.run then
    return string.format("over today's cap (max_per_day %d, %d done earlier today)", p.max_per_day, room.used)
  end
  return "over this run's cap (max_actions " .. p.max_actions .. ")"
end

-- While applying, the day's count comes from the journals once (again after midnight, UTC); then each
-- action reserves its users before it acts and gives them back if it did not act. A plan made
-- yesterday, or before another run today, cannot take the day past its cap.
local function reserve_today(ctx, kind, amount)
  local p = ctx.params
  if p.max_per_day == 0 then return true end
  local day = os.date("!%Y-%m-%d", math.floor(ctx.time()))
  local d = ctx.state.daily
  if not d or d.day ~= day then
    d = { day = day, used = used_today(ctx, kind) }
    ctx.state.daily = d
  end
  if d.used + amount > p.max_per_day then
    return false, string.format("over today's cap (max_per_day %d, %d done today)", p.max_per_day, d.used)
  end
  d.used = d.used + amount
  return true
end

local function release_today(ctx, amount)
  if ctx.state.daily then ctx.state.daily.used = ctx.state.daily.used - amount end
end

-- ==== api mode: GitLab's REST API ====

local function gitlab_client(ctx)
  if ctx.state.gitlab then return ctx.state.gitlab end
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
  ctx.state.gitlab, ctx.state.gitlab_version, ctx.state.gitlab_user = client, version.version, me.username
  return client
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

local function plan_api(ctx)
  local p = ctx.params
  local client = gitlab_client(ctx)
  local now = ctx.now
  ctx:fact("gitlab_version", ctx.state.gitlab_version)
  ctx:fact("token_user", ctx.state.gitlab_user .. " (administrator)")
  ctx:fact("dormant_after", string.format("%s: last activity on or before %s", util.count(p.days, "day"), gitlab.date(now - p.days * DAY)))
  ctx:fact("grace_for_new_accounts", p.grace_days .. " days")
  local room = plan_room(ctx, DEACTIVATE)
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
        ctx:skip{ target = user.username, reason = cap_reason(ctx, room) }
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
  return reserve_today(ctx, DEACTIVATE, 1)
end

local function deactivate_run(ctx, action)
  if ctx.state.already and ctx.state.already[action.id] then return true, "already deactivated" end
  local ok, how = gitlab_client(ctx):deactivate(action.args.id)
  if ok then
    ctx.state.changed = (ctx.state.changed or 0) + 1
    return true
  end
  release_today(ctx, 1)
  if ok == false then return false, "GitLab refused: " .. how end
  return nil, how
end

-- ==== database mode: the hub's PostgreSQL database, with the hub stopped ====

function cluster(ctx)
  if ctx.state.k8s then return ctx.state.k8s end
  local client, err = k8s.connect(ctx.options)
  if not client then util.fail(2, err) end
  ctx.state.k8s = client
  return client
end

-- hub_stopped(ctx) -> description | nil, why not. The deployment asks for no pods and none is left
-- (a terminating pod may still write to the database).
local function hub_stopped(ctx)
  local client = cluster(ctx)
  local ns, name = client.namespace, ctx.params.deployment
  local label = ns .. "/" .. name
  local dep, err = client:get("deployments", name, { namespace = ns })
  if dep == nil then return nil, err end
  if dep == false then return nil, "there is no deployment " .. label .. ", so nothing shows the hub is stopped (-n, -p deployment=)" end
  local replicas = type(dep.spec) == "table" and dep.spec.replicas
  if replicas ~= 0 then
    return nil, string.format("deployment %s has spec.replicas %s; stop the hub first: kubectl -n %s scale deployment %s --replicas=0",
      label, tostring(replicas), ns, name)
  end
  local selector = type(dep.spec.selector) == "table" and dep.spec.selector.matchLabels
  if type(selector) ~= "table" or next(selector) == nil then
    return nil, "deployment " .. label .. " has no matchLabels selector: its pods cannot be found"
  end
  local pods, perr = client:list("pods", { namespace = ns, label_selector = selector })
  if not pods then return nil, perr end
  if #pods > 0 then
    local names = {}
    for _, pod in ipairs(pods) do names[#names + 1] = pod.metadata.name end
    return nil, string.format("deployment %s is scaled to 0 but %d pod%s still exist%s (%s); wait until %s gone",
      label, #pods, #pods == 1 and "" or "s", #pods == 1 and "s" or "", table.concat(names, ", "), #pods == 1 and "it is" or "they are")
  end
  return string.format("%s: spec.replicas 0, no pods", label)
end

local function database(ctx)
  if ctx.state.db then return ctx.state.db end
  local conn, err = pg.connect(ctx.params.database_url, { connect_timeout = 10, statement_timeout = ctx.params.statement_timeout,
                                                          application_name = "runbook deactivate-dormant" })
  if not conn then util.fail(1, err) end
  ctx.state.db = conn
  return conn
end

-- The dormancy query, one batch at a time in id order (keyset: $3 is the last id of the previous
-- batch). Written as the UNION of its two conditions, as GitLab's was: with OR between "idle since
-- the cutoff" and "never active and created before the grace cutoff" PostgreSQL cannot walk one index
-- for both, so it reads the whole table; each branch of the UNION can use an index of its own.
local function candidates_sql(include_admins)
  local admin = include_admins and "" or " AND admin IS NOT TRUE"
  return [[
SELECT u.id, u.name, u.admin, u.created::text AS created, u.last_activity::text AS last_activity,
       EXISTS (SELECT 1 FROM spawners s WHERE s.user_id = u.id AND s.server_id IS NOT NULL) AS has_server,
       ARRAY(SELECT g.name::text FROM user_group_map m JOIN groups g ON g.id = m.group_id
              WHERE m.user_id = u.id ORDER BY 1) AS groups
  FROM users u
 WHERE u.id IN ((SELECT id FROM users WHERE last_activity <= $1::timestamp]] .. admin .. [[ AND id > $3
                  ORDER BY id LIMIT $4)
                UNION
                (SELECT id FROM users WHERE last_activity IS NULL AND created <= $2::timestamp]] .. admin .. [[ AND id > $3
                  ORDER BY id LIMIT $4))
 ORDER BY u.id
 LIMIT $4]]
end

local function dormant_count_sql(include_admins)
  local admin = include_admins and "" or " AND admin IS NOT TRUE"
  return "SELECT count(*) AS n FROM ((SELECT id FROM users WHERE last_activity <= $1::timestamp" .. admin .. ")" ..
    " UNION (SELECT id FROM users WHERE last_activity IS NULL AND created <= $2::timestamp" .. admin .. ")) d"
end

-- The re-check inside each batch's transaction: the planned ids that are still dormant, still not
-- admins and still without a server, locked until the transaction ends. (OR is fine here: the ids
-- lead the search.)
local function recheck_sql(include_admins)
  return [[
SELECT u.id, u.name, u.admin, u.created::text AS created, u.last_activity::text AS last_activity,
       ARRAY(SELECT g.name::text FROM user_group_map m JOIN groups g ON g.id = m.group_id
              WHERE m.user_id = u.id ORDER BY 1) AS groups
  FROM users u
 WHERE u.id = ANY($1::int[])
   AND (u.last_activity <= $2::timestamp OR (u.last_activity IS NULL AND u.created <= $3::timestamp))]] ..
   (include_admins and "" or "\n   AND u.admin IS NOT TRUE") .. [[

   AND NOT EXISTS (SELECT 1 FROM spawners s WHERE s.user_id = u.id AND s.server_id IS NOT NULL)
 ORDER BY u.id
   FOR UPDATE OF u]]
end

-- The index that serves both branches of the query, as GitLab's (id, last_activity_on) partial index
-- served its worker: scanned in id order, the dormancy columns read from the index itself.
local function suggested_index(include_admins)
  return "CREATE INDEX CONCURRENTLY ix_users_dormancy ON users (id, last_activity, created)" ..
    (include_admins and "" or " WHERE admin IS NOT TRUE") .. ";"
end

-- Rows of a query the plan cannot do without, or the end of the plan with the server's message.
local function must(rows, err)
  if not rows then util.fail(1, err) end
  return rows
end

local function cutoffs(ctx, now)
  return sql_time(now - ctx.params.days * DAY), sql_time(now - ctx.params.grace_days * DAY)
end

-- The tables whose rows go with a user's (ON DELETE CASCADE): backed up with the users' rows. Any
-- other kind of reference, or a reference to those tables, would make the backup incomplete: refuse.
local function dependent_tables(conn)
  local rows, err = conn:query([[
SELECT c.conrelid::regclass::text AS tbl, a.attname::text AS col, c.confdeltype::text AS on_delete,
       EXISTS (SELECT 1 FROM pg_constraint r WHERE r.contype = 'f' AND r.confrelid = c.conrelid) AS referenced
  FROM pg_constraint c
  JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
 WHERE c.contype = 'f' AND c.confrelid = 'users'::regclass
 ORDER BY 1, 2]])
  if not rows then return nil, err end
  for _, r in ipairs(rows) do
    if r.on_delete ~= "c" then
      return nil, string.format("%s.%s references users without ON DELETE CASCADE: deleting users would fail or leave rows behind", r.tbl, r.col)
    end
    if r.referenced then
      return nil, string.format("%s (which goes with users) is itself referenced by another table: its backup would be incomplete", r.tbl)
    end
  end
  return rows
end

local function check_schema(conn)
  local rows = must(conn:query([[
SELECT t.name, to_regclass('public.' || t.name) IS NOT NULL AS present
  FROM unnest(ARRAY['users', 'spawners', 'groups', 'user_group_map']) AS t(name)]]))
  for _, r in ipairs(rows) do
    if not r.present then util.fail(1, "the database has no table %s: is this a JupyterHub database?", r.name) end
  end
end

-- What EXPLAIN shows for the first batch, and whether an index serves the dormancy columns.
local function plan_query_notes(ctx, conn, cutoff, grace_cutoff)
  local p = ctx.params
  local sql = candidates_sql(p.include_admins)
  local rows = must(conn:query("EXPLAIN " .. sql, cutoff, grace_cutoff, 0, p.batch_size))
  local lines = {}
  for _, r in ipairs(rows) do lines[#lines + 1] = "  " .. r["QUERY PLAN"] end
  local explain = table.concat(lines, "\n")
  ctx:note("Each batch runs this query ($1 the activity cutoff, $2 the grace cutoff, $3 the last id of the " ..
    "previous batch, $4 batch_size):\n" .. sql)
  ctx:note("EXPLAIN of the first batch:\n" .. explain)
  local indexes = must(conn:query([[
SELECT c.relname::text AS name, pg_get_indexdef(i.indexrelid) AS def
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 WHERE i.indrelid = 'users'::regclass ORDER BY 1]]))
  local covering
  for _, ix in ipairs(indexes) do
    if ix.def:find("last_activity", 1, true) then covering = ix.name break end
  end
  if not covering then
    ctx:fact("dormancy_index", "none: no index on users covers last_activity")
    ctx:note("No index on users covers last_activity, so every batch walks users in id order and reads each " ..
      "row to test it (EXPLAIN above). On a large table, create this index first (this runbook does not " ..
      "create it):\n  " .. suggested_index(p.include_admins))
  elseif explain:find(covering, 1, true) then
    ctx:fact("dormancy_index", covering .. " (EXPLAIN uses it)")
  else
    ctx:fact("dormancy_index", covering .. " (EXPLAIN does not use it: PostgreSQL finds another path cheaper for this data)")
  end
end

local function array_literal(ids)
  for _, id in ipairs(ids) do
    if math.type(id) ~= "integer" then error("user ids must be integers, got " .. tostring(id), 2) end
  end
  return "{" .. table.concat(ids, ",") .. "}"
end

local function hub_user(row)
  return { id = row.id, name = row.name, admin = row.admin, created = row.created,
           last_activity = row.last_activity, groups = row.groups or {} }
end

local function plan_database(ctx)
  local p = ctx.params
  local stopped, why = hub_stopped(ctx)
  if not stopped then util.fail(1, "refusing to change the hub's database while the hub may be running: %s", why) end
  ctx:fact("hub", stopped)
  local conn = database(ctx)
  ctx:fact("database", conn:label())
  check_schema(conn)
  local deps, derr = dependent_tables(conn)
  if not deps then util.fail(1, "refusing: %s", derr) end
  local backed_up = { "users" }
  for _, d in ipairs(deps) do backed_up[#backed_up + 1] = d.tbl .. " (by " .. d.col .. ")" end
  ctx:fact("backed_up_with_each_batch", table.concat(backed_up, ", "))
  local now = ctx.now
  local cutoff, grace_cutoff = cutoffs(ctx, now)
  ctx:fact("dormant_after", string.format("%d days: last activity at or before %s UTC, or none and created at or before %s UTC",
    p.days, cutoff, grace_cutoff))
  plan_query_notes(ctx, conn, cutoff, grace_cutoff)
  local total = must(conn:query(dormant_count_sql(p.include_admins), cutoff, grace_cutoff))[1].n
  ctx:fact("dormant_users", total)
  if not p.include_admins then
    local admins = must(conn:query("SELECT name FROM users WHERE admin AND (last_activity <= $1::timestamp OR " ..
      "(last_activity IS NULL AND created <= $2::timestamp)) ORDER BY id LIMIT 1000", cutoff, grace_cutoff))
    for _, a in ipairs(admins) do ctx:skip{ target = a.name, reason = "admin" } end
  end
  local room = plan_room(ctx, DELETE_BATCH)
  local dir = string.format("%s/%s-%s", p.backup_dir, target_name(ctx), os.date("!%Y%m%dT%H%M%SZ", math.floor(now)))
  ctx:fact("backup_directory", dir)
  local sql = candidates_sql(p.include_admins)
  local after, scanned, taken, batch = 0, 0, 0, { ids = {}, names = {} }
  local function close_batch()
    if #batch.ids == 0 then return end
    local n = #ctx.actions + 1
    local shown = table.concat(batch.names, ", ", 1, math.min(#batch.names, 5)) .. (#batch.names > 5 and ", ..." or "")
    ctx:add{ kind = DELETE_BATCH, target = string.format("batch %d: users.id %d..%d", n, batch.ids[1], batch.ids[#batch.ids]),
             reason = string.format("deletes %d dormant user%s (%s) and the rows that reference them",
               #batch.ids, #batch.ids == 1 and "" or "s", shown),
             args = { ids = batch.ids, names = batch.names, dir = string.format("%s/batch-%04d", dir, n) } }
    batch = { ids = {}, names = {} }
  end
  while taken < room.run do
    local rows = must(conn:query(sql, cutoff, grace_cutoff, after, p.batch_size))
    for _, row in ipairs(rows) do
      scanned = scanned + 1
      after = row.id
      local kept = row.has_server and "server running (spawners.server_id is set)"
        or (row.admin and not p.include_admins and "admin") or policy_protection(ctx, row.name, hub_user(row))
      if kept then
        ctx:skip{ target = row.name, reason = kept }
      elseif taken < room.run then
        taken = taken + 1
        batch.ids[#batch.ids + 1], batch.names[#batch.names + 1] = row.id, row.name
        if #batch.ids == p.batch_size then close_batch() end
      end
      if taken >= room.run then break end
    end
    ctx.progress("finding dormant users", scanned, total)
    if #rows < p.batch_size then break end
  end
  close_batch()
  ctx.progress_done("finding dormant users")
  -- One action is a whole batch of users: the effect counts users, not actions.
  if taken > 0 then ctx:effect(string.format("%s deleted, their rows backed up first", n_users(taken))) end
  local left = total - scanned
  if left > 0 then
    ctx:note(string.format("%d more dormant users were not reached: the caps came first (%s); later runs take them",
      left, cap_reason(ctx, room)))
  end
end

local MANIFEST = "manifest.json"

local function read_manifest(dir)
  local text, err = backup.read(dir .. "/" .. MANIFEST)
  if not text then return nil, err end
  local manifest = json.decode(text)
  if type(manifest) ~= "table" or type(manifest.tables) ~= "table" or type(manifest.ids) ~= "table" then
    return nil, "the backup manifest in " .. dir .. " is damaged"
  end
  for _, t in ipairs(manifest.tables) do
    local ok, verr = backup.verify(dir .. "/" .. t.file, t.sha256)
    if not ok then return nil, verr end
  end
  return manifest
end

-- A batch's backup directory from an earlier attempt tells what that attempt did: its transaction
-- either committed (none of its users is left) or rolled back (all of them are). Returns "done",
-- "again" (the rolled-back attempt's files were set aside) or nil, message.
local function earlier_attempt(ctx, conn, dir)
  local manifest, err = read_manifest(dir)
  if not manifest then return nil, "a backup for this batch exists but does not verify (" .. err .. "); move it away and resume" end
  local rows, qerr = conn:query("SELECT count(*) AS n FROM users WHERE id = ANY($1::int[])", array_literal(manifest.ids))
  if not rows then return nil, qerr end
  local left = rows[1].n
  if left == 0 then return "done", manifest end
  if left ~= #manifest.ids then
    return nil, string.format("%d of the %d users in the backup %s are still in the database: an attempt neither " ..
      "committed nor rolled back? Check, then move the backup away and resume", left, #manifest.ids, dir)
  end
  local aside, aerr = backup.unused_name(dir .. ".rolled-back-" .. os.date("!%Y%m%dT%H%M%SZ", math.floor(ctx.time())))
  if not aside then return nil, aerr end
  local ok, perr = backup.publish(dir, aside)
  if not ok then return nil, perr end
  ctx.log("deactivate-dormant: an earlier attempt at %s rolled back; its files are in %s", dir, aside)
  return "again"
end

local function batch_check(ctx, action)
  local stopped, why = hub_stopped(ctx)
  if not stopped then return nil, "the hub is not stopped any more: " .. why end
  return reserve_today(ctx, DELETE_BATCH, #action.args.ids)
end

-- COPY the batch's rows of users and of every dependent table into a new directory, with a manifest;
-- verified, then published under its final name. Runs inside the batch's transaction.
local function copy_batch(ctx, c, dir, ids, names)
  local list = array_literal(ids)
  -- A directory of its own: an attempt killed halfway leaves its partial directory behind.
  local partial, err = backup.mkdir_new(dir .. ".partial-" .. os.date("!%Y%m%dT%H%M%SZ", math.floor(ctx.time())))
  if not partial then return nil, err end
  local deps, derr = dependent_tables(c)
  if not deps then return nil, derr end
  local manifest = { database = c:label(), created = util.format_time(ctx.time()), ids = ids, names = names,
                     tables = json.array() }
  local sources = { { tbl = "users", col = "id" } }
  for _, d in ipairs(deps) do sources[#sources + 1] = d end
  for _, s in ipairs(sources) do
    local file = s.tbl .. ".copy"
    local query = string.format("SELECT * FROM %s WHERE %s = ANY('%s'::int[]) ORDER BY 1",
      assert(c:escape_identifier(s.tbl)), assert(c:escape_identifier(s.col)), list)
    local copied, cerr = c:copy_to(query, partial .. "/" .. file)
    if not copied then return nil, cerr end
    manifest.tables[#manifest.tables + 1] = { name = s.tbl, column = s.col, file = file, rows = copied.rows,
                                              sha256 = copied.sha256 }
  end
  local saved, werr = backup.write(partial .. "/" .. MANIFEST, json.pretty(manifest) .. "\n")
  if not saved then return nil, werr end
  local verified, verr = read_manifest(partial)
  if not verified then return nil, verr end
  return backup.publish(partial, dir)
end

local function batch_run(ctx, action)
  local p = ctx.params
  local conn = database(ctx)
  local dir = action.args.dir
  local planned = #action.args.ids
  if backup.exists(dir) then
    local state, manifest = earlier_attempt(ctx, conn, dir)
    if not state then release_today(ctx, planned) return nil, manifest end
    if state == "done" then return true, string.format("deleted earlier (%s; backup in %s)", util.count(#manifest.ids, "user"), dir) end
  end
  local cutoff, grace_cutoff = cutoffs(ctx, ctx.time())
  local result, err = conn:transaction(function(c)
    local rows, qerr = c:query(recheck_sql(p.include_admins), array_literal(action.args.ids), cutoff, grace_cutoff)
    if not rows then return nil, qerr end
    local ids, names = {}, {}
    for _, row in ipairs(rows) do
      if not policy_protection(ctx, row.name, hub_user(row)) then
        ids[#ids + 1], names[#names + 1] = row.id, row.name
      end
    end
    if #ids == 0 then return { deleted = 0 } end
    local copied, cerr = copy_batch(ctx, c, dir, ids, names)
    if not copied then return nil, cerr end
    local deleted, derr = c:query("DELETE FROM users WHERE id = ANY($1::int[])", array_literal(ids))
    if not deleted then return nil, derr end
    if deleted ~= #ids then return nil, string.format("DELETE removed %d rows, expected %d: rolled back", deleted, #ids) end
    return { deleted = deleted }
  end)
  if not result then release_today(ctx, planned) return nil, err end
  release_today(ctx, planned - result.deleted)
  ctx.state.changed = (ctx.state.changed or 0) + result.deleted
  if result.deleted == 0 then return false, "none of the batch is dormant any more (active, admin, server, or gone)" end
  local kept = planned - result.deleted
  return true, string.format("deleted %s%s; backup in %s", util.count(result.deleted, "user"),
    kept > 0 and string.format(" (%d kept: no longer dormant, or gone)", kept) or "", dir)
end

-- ==== the runbook ====

return {
  summary = "Deactivate dormant users, GitLab's way (90 days, 7-day grace, caps); or, below a stopped JupyterHub, delete them in SQL",
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

mode=api (the default): GitLab's REST API v4 with an administrator's personal access token
(GITLAB_TOKEN or -p token_file=PATH, never on the command line). Lists users with keyset pagination
(pagination=keyset, order_by=id, following the Link header), re-reads each user (GET /users/:id)
just before POST /users/:id/deactivate, and skips anyone who changed. GitLab re-checks too: its 403
("blocked", "internal", "active in the past N days") is a skip with GitLab's reason, not a failure.
A deactivated user is reactivated by GitLab when they next sign in. policy exclude(user) gets
GitLab's user (username, is_admin, last_activity_on, created_at, ...).

mode=database: for a JupyterHub whose hub cannot start because its users table is too large. Works
on the hub's PostgreSQL database (-p database_url, else PG* variables) only while the hub is
stopped: the hub deployment (-n NAMESPACE, -p deployment=hub) must have spec.replicas 0 and no pods
left, checked in the plan and again before every batch; otherwise it refuses. JupyterHub has no
deactivated state, so here a dormant user is DELETED: their users row and, by ON DELETE CASCADE,
their spawners, api_tokens, oauth_codes and group and role memberships. Users with a server
(spawners.server_id set) are kept. The query is the UNION of the two dormancy conditions, in batches
of batch_size (200) by id; the plan shows it, its EXPLAIN, and the index to create when none serves
it. Each batch is one transaction: lock and re-check the rows, COPY them and every row that
references them to backup_dir/NAMESPACE-TIME/batch-NNNN (manifest.json with row counts and SHA-256),
then DELETE. To restore a batch: COPY each file back FROM, users first (psql \copy). policy
exclude(user) gets {id, name, admin, created, last_activity, groups}.]],
  params = {
    { name = "mode", type = "string", default = "api", check = a_mode,
      help = "api (GitLab's REST API) or database (a stopped JupyterHub's PostgreSQL)" },
    { name = "gitlab", type = "string", env = "GITLAB_URL", help = "api: GitLab's URL (https://host, or .../api/v4)" },
    { name = "token_file", type = "path", help = "api: file holding an administrator's access token (else GITLAB_TOKEN)" },
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
    { name = "concurrency", type = "integer", default = 4, min = 1, max = 64,
      help = "api: at most this many deactivations in flight (adaptive below it)" },
    { name = "adaptive", type = "boolean", default = true, help = "api: adapt the deactivations in flight to GitLab's latency" },
    { name = "max_rate", type = "number", default = 0, min = 0, max = 100000, help = "api: at most this many deactivations a second (0: no limit)" },
    { name = "per_page", type = "integer", default = 100, min = 1, max = 100, help = "api: users per page (GitLab's maximum is 100)" },
    { name = "ca_file", type = "path", help = "api: CA bundle to verify GitLab's TLS certificate" },
    { name = "insecure", type = "boolean", default = false, help = "api: do not verify TLS (never in production)" },
    { name = "database_url", type = "string", help = "database: the hub's PostgreSQL URL or conninfo (else PG* variables)" },
    { name = "deployment", type = "string", default = "hub", help = "database: the hub's deployment, which must be at 0 replicas (namespace: -n)" },
    { name = "batch_size", type = "integer", default = 200, min = 1, max = 100000, help = "database: users per batch (one transaction each)" },
    { name = "backup_dir", type = "path", default = "deactivate-dormant-backups", help = "database: backups go under this" },
    { name = "statement_timeout", type = "integer", default = 300, min = 1, max = 86400,
      help = "database: seconds each SQL statement (a batch's COPY too) may take; a server that stops answering is given 5 s more" },
  },
  policy = { exclude = "function", protected_users = "list" },
  steps = {
    "api: read GitLab's version and check the token is an administrator's; database: check the hub deployment has 0 replicas and no pods",
    "List the users (api: keyset pages of GET /users; database: the dormancy query, batch by batch) and judge each: blocked, bots, internal users, admins, protected or excluded users, users active within `days` and new accounts within `grace_days` are kept",
    "Cap the plan at max_actions users, and at what is left of max_per_day after today's earlier runs",
    "api: for each user, GET /users/:id again, skip if anything changed, then POST /users/:id/deactivate (GitLab's 403 is a skip)",
    "database: for each batch, check the hub is still stopped; in one transaction lock and re-check the rows, COPY them and their dependent rows to a verified backup, DELETE",
    "Report what was done, skipped (by reason) and failed, and today's count against max_per_day",
  },

  -- The target is what the operator types: GitLab's host, or the hub's namespace. Parameters are
  -- checked against each other here, before anything connects.
  target = function(ctx)
    local p = ctx.params
    if p.days < GITLAB_MINIMUM_DAYS and not p.allow_short_period then
      util.fail(2, "days=%d is below GitLab's minimum of %d; set allow_short_period=true to go lower on purpose",
        p.days, GITLAB_MINIMUM_DAYS)
    end
    -- Parameters are saved in the plan and shown: a password typed into the URL would be too.
    if p.database_url and pg.redact(p.database_url) ~= p.database_url then
      util.fail(2, "database_url holds a password, and parameters are saved in the plan; give it in PGPASSWORD or ~/.pgpass")
    end
    if p.mode == "api" then
      if not p.gitlab then util.fail(2, "mode api needs GitLab's URL: -p gitlab=https://... or GITLAB_URL") end
      local api, err = gitlab.api_url(p.gitlab)
      if not api then util.fail(2, err) end
    end
    return target_name(ctx)
  end,

  setup = function(ctx)
    target_name(ctx)
    if ctx.params.mode == "api" then gitlab_client(ctx) else database(ctx) end
  end,

  plan = function(ctx)
    if ctx.params.mode == "api" then plan_api(ctx) else plan_database(ctx) end
  end,

  actions = {
    [DEACTIVATE] = { concurrent = true, on_failure = "continue", check = deactivate_check, run = deactivate_run },
    [DELETE_BATCH] = { check = batch_check, run = batch_run },
  },

  report = function(ctx, results)
    local p = ctx.params
    local lines = {}
    local changed = ctx.state.changed or 0
    lines[#lines + 1] = p.mode == "api" and string.format("Deactivated %s on %s.", util.count(changed, "user"), target_name(ctx))
      or string.format("Deleted %d dormant users from the hub's database (backups under %s).", changed, p.backup_dir)
    if p.max_per_day > 0 and ctx.state.daily then
      lines[#lines + 1] = string.format("Today (UTC): %d of max_per_day %d.", ctx.state.daily.used, p.max_per_day)
    end
    return lines
  end,
}
