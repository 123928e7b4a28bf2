-- delete-dormant-db: GitLab's policy for dormant users, for a JupyterHub that cannot start because
-- its users table is too large: the same dormancy query in SQL on the hub's PostgreSQL database,
-- with the hub scaled to zero. JupyterHub has no deactivated state, so a dormant user is DELETED:
-- their users row goes, after a COPY of it and of every row that references it, one batch a
-- transaction. (Until it became a runbook of its own, this was deactivate-dormant -p mode=database.)
local backup = require "runbook.backup"
local ctxstate = require "runbook.ctxstate"
local dormancy = require "runbook.dormancy"
local json = require "runbook.json"
local pg = require "runbook.pg"
local util = require "runbook.util"

local DAY = dormancy.DAY
local DELETE_BATCH = "pg.delete_users"

local n_users = dormancy.n_users
local policy_protection = dormancy.policy_protection
local function sql_time(t) return os.date("!%Y-%m-%d %H:%M:%S", math.floor(t)) end

local function cluster(ctx) return ctxstate.k8s(ctx) end

-- What the operator types to confirm: the hub's namespace.
local function target_name(ctx) return cluster(ctx).namespace end

local function limits(ctx) return dormancy.caps(ctx, DELETE_BATCH, target_name(ctx)) end

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
  return ctxstate.once(ctx, "db", function()
    local conn, err = pg.connect(ctx.params.database_url, { connect_timeout = 10, statement_timeout = ctx.params.statement_timeout,
                                                            application_name = "runbook delete-dormant-db" })
    if not conn then util.fail(1, err) end
    return conn
  end)
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

local function plan_deletions(ctx)
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
  local room = limits(ctx):room()
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
      left, limits(ctx):over(room)))
  end
end


-- A batch's backup: its manifest (the users' ids and names besides the files), every file verified.
local function read_batch_manifest(dir)
  local manifest, err = backup.read_manifest(dir)
  if not manifest then return nil, err end
  if type(manifest.ids) ~= "table" then return nil, "the backup manifest in " .. dir .. " is damaged" end
  return manifest
end

-- A batch's backup directory from an earlier attempt tells what that attempt did: its transaction
-- either committed (none of its users is left) or rolled back (all of them are). Returns "done",
-- "again" (the rolled-back attempt's files were set aside) or nil, message.
local function earlier_attempt(ctx, conn, dir)
  local manifest, err = read_batch_manifest(dir)
  if not manifest then return nil, "a backup for this batch exists but does not verify (" .. err .. "); move it away and resume" end
  local rows, qerr = conn:query("SELECT count(*) AS n FROM users WHERE id = ANY($1::int[])", array_literal(manifest.ids))
  if not rows then return nil, qerr end
  local left = rows[1].n
  if left == 0 then return "done", manifest end
  if left ~= #manifest.ids then
    return nil, string.format("%d of the %d users in the backup %s are still in the database: an attempt neither " ..
      "committed nor rolled back? Check, then move the backup away and resume", left, #manifest.ids, dir)
  end
  local aside, aerr = backup.set_aside(dir, "rolled-back", ctx.time())
  if not aside then return nil, aerr end
  ctx.log("delete-dormant-db: an earlier attempt at %s rolled back; its files are in %s", dir, aside)
  return "again"
end

local function batch_check(ctx, action)
  local stopped, why = hub_stopped(ctx)
  if not stopped then return nil, "the hub is not stopped any more: " .. why end
  return limits(ctx):reserve(#action.args.ids)
end

-- COPY the batch's rows of users and of every dependent table into a new directory, with a manifest;
-- verified, then published under its final name. Runs inside the batch's transaction.
local function copy_batch(ctx, c, dir, ids, names)
  local list = array_literal(ids)
  local partial, err = backup.partial_dir(dir, ctx.time())
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
  return backup.finish(partial, dir, manifest)
end

local function batch_run(ctx, action)
  local p = ctx.params
  local conn = database(ctx)
  local dir = action.args.dir
  local planned = #action.args.ids
  if backup.exists(dir) then
    local state, manifest = earlier_attempt(ctx, conn, dir)
    if not state then limits(ctx):release(planned) return nil, manifest end
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
  if not result then limits(ctx):release(planned) return nil, err end
  limits(ctx):release(planned - result.deleted)
  ctx.state.changed = (ctx.state.changed or 0) + result.deleted
  if result.deleted == 0 then return false, "none of the batch is dormant any more (active, admin, server, or gone)" end
  local kept = planned - result.deleted
  return true, string.format("deleted %s%s; backup in %s", util.count(result.deleted, "user"),
    kept > 0 and string.format(" (%d kept: no longer dormant, or gone)", kept) or "", dir)
end

-- ==== the runbook ====

local params = dormancy.params()
for _, spec in ipairs({
  { name = "database_url", type = "string", help = "the hub's PostgreSQL URL or conninfo (else PG* variables)" },
  { name = "deployment", type = "string", default = "hub", help = "the hub's deployment, which must be at 0 replicas (namespace: -n)" },
  { name = "batch_size", type = "integer", default = 200, min = 1, max = 100000, help = "users per batch (one transaction each)" },
  -- The name it had when this was deactivate-dormant's database mode: later runs put their backups
  -- beside the earlier ones.
  { name = "backup_dir", type = "path", default = "deactivate-dormant-backups", help = "backups go under this" },
  { name = "statement_timeout", type = "integer", default = 300, min = 1, max = 86400,
    help = "seconds each SQL statement (a batch's COPY too) may take; a server that stops answering is given 5 s more" },
}) do params[#params + 1] = spec end

return {
  summary = "Delete dormant users (GitLab's policy: 90 days, 7-day grace, caps) from a stopped JupyterHub's database, backed up",
  description = [[
GitLab's policy for dormant users, for a JupyterHub whose hub cannot start because its users table
is too large. A user is dormant when their last activity is `days` (90) or more days old, or when
they never had any activity and were created more than `grace_days` (7) days ago. GitLab's minimum
period is 90 days; a shorter one needs allow_short_period=true, set on purpose. Admins are kept
(unless include_admins), and so are users with a server (spawners.server_id set). A site policy
file can also set protected_users = {...} and exclude = function(user) ... end (return true, or a
reason, to keep a user), besides any parameter; exclude(user) gets {id, name, admin, created,
last_activity, groups}. Caps: max_actions users per run, and max_per_day users a day (100,000,
GitLab's); the day's count includes earlier runs on the same namespace, read from the journals.

Works on the hub's PostgreSQL database (-p database_url, else PG* variables) only while the hub is
stopped: the hub deployment (-n NAMESPACE, -p deployment=hub) must have spec.replicas 0 and no pods
left, checked in the plan and again before every batch; otherwise it refuses. JupyterHub has no
deactivated state, so here a dormant user is DELETED: their users row and, by ON DELETE CASCADE,
their spawners, api_tokens, oauth_codes and group and role memberships. The query is the UNION of
the two dormancy conditions, in batches of batch_size (200) by id; the plan shows it, its EXPLAIN,
and the index to create when none serves it. Each batch is one transaction: lock and re-check the
rows, COPY them and every row that references them to backup_dir/NAMESPACE-TIME/batch-NNNN
(manifest.json with row counts and SHA-256), then DELETE. To restore a batch: COPY each file back
FROM, users first (psql \copy).

GitLab's own users are deactivated (not deleted) by the runbook deactivate-dormant.]],
  params = params,
  policy = dormancy.policy(),
  steps = {
    "Check the hub deployment has 0 replicas and no pods",
    "Find the dormant users with the dormancy query, batch by batch, and judge each: admins, users with a server, protected or excluded users are kept",
    dormancy.STEP_CAPS,
    "For each batch, check the hub is still stopped; in one transaction lock and re-check the rows, COPY them and their dependent rows to a verified backup, DELETE",
    dormancy.STEP_REPORT,
  },

  -- The target is what the operator types: the hub's namespace. Parameters are checked here, before
  -- anything connects.
  target = function(ctx)
    local p = ctx.params
    dormancy.check_period(p)
    -- Parameters are saved in the plan and shown: a password typed into the URL would be too.
    if p.database_url and pg.redact(p.database_url) ~= p.database_url then
      util.fail(2, "database_url holds a password, and parameters are saved in the plan; give it in PGPASSWORD or ~/.pgpass")
    end
    return target_name(ctx)
  end,

  setup = function(ctx)
    target_name(ctx)
    database(ctx)
  end,

  plan = plan_deletions,

  actions = {
    [DELETE_BATCH] = { check = batch_check, run = batch_run },
  },

  report = function(ctx)
    return { string.format("Deleted %d dormant users from the hub's database (backups under %s).",
               ctx.state.changed or 0, ctx.params.backup_dir),
             limits(ctx):today_line() }
  end,
}
