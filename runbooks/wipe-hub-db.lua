-- wipe-hub-db: empty the PostgreSQL database of a JupyterHub (Nublado layout) and let the hub start
-- afresh, without locking users out for longer than needed and without touching anything that is
-- not the hub's. The procedure, in the order it runs:
--   1. save the proxy ingress, then delete it: nobody can start or reach a lab (the hub keeps running)
--   2. delete every lab namespace (prefix "nublado-", with the dash: "nublado" holds the hub) and wait
--   3. check that the database role owns nothing but JupyterHub's own tables and sequences
--   4. back up every table the role owns (COPY, row counts, SHA-256) to a dated directory
--   5. DROP OWNED BY current_user, after checking ownership and the backup again
--   6. rollout restart the hub deployment and wait for the new pod to be Ready
--   7. wait until the hub has recreated its schema
--   8. recreate the ingress from the saved object: users are back
-- If a run stops halfway, on_stop restores access when the database is consistent (never wiped, or
-- wiped and recreated); `runbook resume` cuts access again before going on.
local backup = require "runbook.backup"
local json = require "runbook.json"
local k8s = require "runbook.k8s"
local pg = require "runbook.pg"
local util = require "runbook.util"

-- What JupyterHub 3.0 creates (all in schema public): tables and the sequences behind their ids.
-- Indexes and row types belong to the tables. Other hub versions' tables: -p extra_hub_tables=a,b
local HUB_TABLES = { "alembic_version", "api_tokens", "group_role_map", "groups", "oauth_clients", "oauth_codes",
                     "roles", "servers", "service_role_map", "services", "spawners", "user_group_map",
                     "user_role_map", "users" }
local HUB_SEQUENCES = { "api_tokens_id_seq", "groups_id_seq", "oauth_clients_id_seq", "oauth_codes_id_seq",
                        "roles_id_seq", "servers_id_seq", "services_id_seq", "spawners_id_seq", "users_id_seq" }

-- Everything the connecting role owns in this database: exactly what DROP OWNED BY drops (it walks
-- the same owner dependencies). Indexes, TOAST tables and row types follow their tables.
local OWNED_SQL = [[
SELECT pg_describe_object(d.classid, d.objid, d.objsubid) AS object,
       d.classid::regclass::text AS catalog, c.relkind::text AS relkind, c.relname AS name, n.nspname AS schema
  FROM pg_shdepend d
  LEFT JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid
  LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE d.refclassid = 'pg_authid'::regclass AND d.deptype = 'o'
   AND d.refobjid = (SELECT oid FROM pg_roles WHERE rolname = current_user)
   AND d.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
 ORDER BY 1]]

-- Privileges granted to the role and policies naming it: DROP OWNED revokes and drops those too.
local GRANTS_SQL = [[
SELECT pg_describe_object(d.classid, d.objid, d.objsubid) AS object, d.deptype::text AS kind
  FROM pg_shdepend d
 WHERE d.refclassid = 'pg_authid'::regclass AND d.deptype IN ('a', 'r')
   AND d.refobjid = (SELECT oid FROM pg_roles WHERE rolname = current_user)
   AND d.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
 ORDER BY 1]]

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

-- A URL is saved in the plan: a password typed into it would be too. libpq reads PGPASSWORD and
-- ~/.pgpass, and the cluster's Secret is read at apply time: those are the places for it.
local function no_password(v)
  local has = v:match("^%a[%w+.-]*://[^/@]*:[^/@]+@") or v:find("password%s*=") or v:find("[?&]password=")
  return not has, "must not contain the password (it would be saved in the plan): use PGPASSWORD, ~/.pgpass or the Secret"
end

local function ends_with_dash(v) return v:sub(-1) == "-", "must end with '-' (nublado- spares nublado itself)" end

-- ---- connections ----
-- Failures of the outside world (a server down, a refused token) end the run with util.fail: one
-- message, no traceback. Tracebacks are for bugs.

local function cluster(ctx)
  if ctx.state.k8s then return ctx.state.k8s end
  local client, err = k8s.connect(ctx.options)
  if not client then util.fail(2, err) end
  ctx.state.k8s = client
  return client
end

local function ingress_label(p) return p.ingress_resource:match("^[^.]+") .. "/" .. p.namespace .. "/" .. p.ingress_name end

-- The database URL: the parameter, or the hub's configuration in the cluster; the password from its
-- Secret unless the URL carries one. Returns the URL to connect with and the URL as it may be shown.
local function database_url(ctx)
  local p = ctx.params
  local client = cluster(ctx)
  local url = p.database_url
  if not url then
    local cm, err = client:get("configmaps", p.config_map, { namespace = p.namespace })
    if cm == nil then util.fail(1, err) end
    if cm == false or type(cm.data) ~= "table" or type(cm.data[p.url_key]) ~= "string" then
      util.fail(2, "no database URL: ConfigMap %s/%s has no key %s; give -p database_url=...", p.namespace,
        p.config_map, p.url_key)
    end
    url = util.trim(cm.data[p.url_key])
  end
  if url:match("^postgres[%w]*://[^/@]*:[^/@]*@") or not url:match("^postgres") then
    return url, pg.redact(url) -- a password typed in the URL, or a conninfo string: used as given
  end
  local secret, err = client:get("secrets", p.password_secret, { namespace = p.namespace })
  if secret == nil then util.fail(1, err) end
  local encoded = secret and type(secret.data) == "table" and secret.data[p.password_key]
  if not encoded then
    util.fail(2, "no database password: Secret %s/%s has no key %s", p.namespace, p.password_secret, p.password_key)
  end
  local password = k8s.base64_decode(encoded)
  if not password then util.fail(2, "Secret %s/%s key %s is not base64", p.namespace, p.password_secret, p.password_key) end
  local scheme, user, rest = url:match("^(postgres[%w]*://)([^/@]*)@(.*)$")
  if not scheme then scheme, user, rest = url:match("^(postgres[%w]*://)()(.*)$") end
  return scheme .. user .. ":" .. util.url_escape(password) .. "@" .. rest, pg.redact(url)
end

local function database(ctx)
  if ctx.state.db then return ctx.state.db end
  local url, shown = database_url(ctx)
  -- No connect_timeout here: the module's default (10 s) applies, and PGCONNECT_TIMEOUT can change it.
  local conn, err = pg.connect(url, { statement_timeout = ctx.params.statement_timeout,
                                      application_name = "runbook wipe-hub-db" })
  if not conn then util.fail(1, err) end
  ctx.state.db, ctx.state.db_shown = conn, shown
  return conn
end

-- ---- what the role owns ----

-- owned(ctx) -> {tables = {...}, sequences = {...}, foreign = {descriptions}, all = {descriptions}}
local function owned(ctx)
  local conn = database(ctx)
  local rows, err = conn:query(OWNED_SQL)
  if not rows then return nil, err end
  local tables = set_of(HUB_TABLES)
  for _, t in ipairs(ctx.params.extra_hub_tables) do tables[t] = true end
  local sequences = set_of(HUB_SEQUENCES)
  local found = { tables = {}, sequences = {}, foreign = {}, all = {} }
  for _, row in ipairs(rows) do
    found.all[#found.all + 1] = row.object
    local hub_relation = row.catalog == "pg_class" and row.schema == "public"
    if hub_relation and (row.relkind == "r" or row.relkind == "p") and tables[row.name] then
      found.tables[#found.tables + 1] = row.name
    elseif hub_relation and row.relkind == "S" and sequences[row.name] then
      found.sequences[#found.sequences + 1] = row.name
    else
      found.foreign[#found.foreign + 1] = row.object
    end
  end
  return found
end

-- The schema is there when the hub's bookkeeping table and its users table exist.
local SCHEMA_SQL = "SELECT to_regclass('public.alembic_version') IS NOT NULL AND to_regclass('public.users') IS NOT NULL AS present"

-- schema_present(ctx) -> true | false | nil, message. A check that fails is tried once more on a new
-- connection: on_stop asks right after the failure that stopped the run, which is often the
-- connection itself dying (reset, given up after a stall, the backend terminated).
local function schema_present(ctx)
  local rows, err = database(ctx):query(SCHEMA_SQL)
  if not rows then
    ctx.state.db:close()
    ctx.state.db = nil
    local connected, conn = pcall(database, ctx)
    if not connected then return nil, err .. "; a new connection failed too: " .. tostring(conn.message or conn) end
    local again
    rows, again = conn:query(SCHEMA_SQL)
    if not rows then return nil, again end
    ctx.log("wipe-hub-db: the schema check failed (%s); a new connection answered it", err)
  end
  return rows[1].present
end

-- ---- the ingress ----

-- The object as it can be created again: what the server fills in is left out.
local function recreatable(obj)
  local meta = obj.metadata or {}
  local clean = util.shallow_copy(obj)
  clean.status = nil
  clean.metadata = { name = meta.name, namespace = meta.namespace, labels = meta.labels, annotations = meta.annotations }
  if type(meta.annotations) == "table" then
    local annotations = util.shallow_copy(meta.annotations)
    annotations["kubectl.kubernetes.io/last-applied-configuration"] = nil
    clean.metadata.annotations = next(annotations) and annotations or nil
  end
  return clean
end

local function restore_ingress(ctx, file)
  local p = ctx.params
  local text, err = backup.read(file)
  if not text then return nil, err end
  local obj = json.decode(text)
  local client = cluster(ctx)
  local current, get_err = client:get(p.ingress_resource, p.ingress_name, { namespace = p.namespace })
  if current == nil then return nil, get_err end
  if current then return true, "already there" end
  local created, create_err = client:create(p.ingress_resource, obj, { namespace = p.namespace })
  if not created then return nil, create_err end
  return true
end

-- ---- the plan ----

local function plan_ingress(ctx, dir)
  local p = ctx.params
  local client = cluster(ctx)
  local obj, err = client:get(p.ingress_resource, p.ingress_name, { namespace = p.namespace })
  if obj == nil then util.fail(1, err) end
  if obj == false then
    util.fail(1, "the ingress %s does not exist: access is already cut, or -p ingress_name is wrong; " ..
      "this runbook restores access from the object it saves, so it will not start without it", ingress_label(p))
  end
  local file = dir .. "/ingress-" .. p.ingress_name .. ".json"
  local target = ingress_label(p)
  ctx:add{ kind = "k8s.backup", target = target, reason = "saved so access can be restored", args = { file = file } }
  ctx:add{ kind = "k8s.delete", target = target, reason = "cut user access for the duration (the hub keeps running)",
           args = { file = file, uid = obj.metadata.uid } }
  return file
end

local function plan_namespaces(ctx)
  local p = ctx.params
  local items, err = cluster(ctx):list("namespaces")
  if not items then util.fail(1, err) end
  local stem = p.lab_prefix:gsub("%-+$", "")
  local count = 0
  for _, ns in ipairs(items) do
    local name = ns.metadata.name
    if name == p.namespace then
      ctx:skip{ target = "namespaces/" .. name, reason = "the hub's own namespace" }
    elseif util.starts_with(name, p.lab_prefix) then
      count = count + 1
      ctx:add{ kind = "k8s.delete", target = "namespaces/" .. name, reason = "a user lab namespace (" .. p.lab_prefix .. "*)",
               args = { namespace = name, uid = ns.metadata.uid } }
    elseif name:find(stem, 1, true) then
      ctx:skip{ target = "namespaces/" .. name, reason = "does not start with " .. p.lab_prefix }
    end
  end
  ctx:fact("lab_namespaces", count)
end

local function plan_database(ctx, dir)
  local p = ctx.params
  local found, err = owned(ctx)
  if not found then util.fail(1, err) end
  ctx:fact("database", ctx.state.db_shown)
  ctx:fact("role_owns", #found.all .. " objects")
  if #found.foreign > 0 then
    util.fail(1, "the database role owns %d object%s that %s not JupyterHub's: %s. DROP OWNED BY would destroy " ..
      "them; nothing was touched. Move them to another owner (ALTER ... OWNER TO), or name extra hub tables with " ..
      "-p extra_hub_tables=...", #found.foreign, #found.foreign == 1 and "" or "s", #found.foreign == 1 and "is" or "are",
      table.concat(found.foreign, ", "))
  end
  if #found.tables == 0 then
    util.fail(1, "the database role owns no JupyterHub tables: nothing to wipe (already wiped? wrong database?)")
  end
  for _, name in ipairs(found.tables) do ctx:skip{ target = "table " .. name, reason = "JupyterHub's: backed up, then dropped" } end
  local grants = assert(database(ctx):query(GRANTS_SQL))
  for _, g in ipairs(grants) do
    ctx:note(string.format("DROP OWNED also %s %s", g.kind == "a" and "revokes the role's privileges on" or "drops",
      g.object))
  end
  local db = ctx.state.db_shown
  local backup_dir = dir .. "/database"
  ctx:add{ kind = "pg.backup", target = db, reason = string.format("COPY of %d tables (and %d sequences' values)",
           #found.tables, #found.sequences), args = { dir = backup_dir, tables = found.tables, sequences = found.sequences } }
  ctx:add{ kind = "pg.drop_owned", target = db, reason = "DROP OWNED BY current_user: the role owns only the hub's tables",
           args = { dir = backup_dir, tables = found.tables, sequences = found.sequences } }
end

-- ---- actions ----

local function ingress_backup_run(ctx, action)
  local p = ctx.params
  local file = action.args.file
  if backup.exists(file) then
    local text = backup.read(file)
    if text and json.decode(text) then return true, "saved earlier" end
    return nil, "a damaged ingress backup exists at " .. file .. "; move it away and resume"
  end
  local obj, err = cluster(ctx):get(p.ingress_resource, p.ingress_name, { namespace = p.namespace })
  if not obj then return nil, err or ("the ingress " .. ingress_label(p) .. " is gone: it cannot be saved") end
  local ok, mkerr = backup.mkdir(file:match("^(.*)/"))
  if not ok then return nil, mkerr end
  local saved, werr = backup.write(file, json.pretty(recreatable(obj)) .. "\n")
  if not saved then return nil, werr end
  return true, "saved to " .. file .. " (sha256 " .. saved.sha256:sub(1, 12) .. ")"
end

local function saved_ingress(ctx, action)
  local text, err = backup.read(action.args.file)
  if not text then return nil, err end
  local obj = json.decode(text)
  if type(obj) ~= "table" or type(obj.metadata) ~= "table" then return nil, "the ingress backup " .. action.args.file .. " is not an object" end
  return obj
end

local function ingress_delete_check(ctx, action)
  local obj, err = saved_ingress(ctx, action)
  if not obj then return nil, "no usable ingress backup, so access could not be restored: " .. err end
  return true
end

local function ingress_delete_run(ctx, action)
  local p = ctx.params
  local client = cluster(ctx)
  local ok, how = client:delete(p.ingress_resource, p.ingress_name, { namespace = p.namespace })
  if not ok then return nil, how end
  local gone, err = client:wait_gone(p.ingress_resource, p.ingress_name, { namespace = p.namespace, timeout = 120 })
  if not gone then return nil, err end
  return true, how ~= "deleted" and how or nil
end

local function namespace_check(ctx, action)
  local p = ctx.params
  local name = action.args.namespace
  if name == p.namespace or not util.starts_with(name, p.lab_prefix) then
    return false, "no longer a lab namespace name (hub namespace or prefix changed)"
  end
  local ns, err = cluster(ctx):get("namespaces", name)
  if ns == nil then return nil, err end
  if ns and ns.metadata.uid ~= action.args.uid then
    return false, "a different namespace of that name exists now (created after the plan)"
  end
  return true
end

local function namespace_run(ctx, action)
  local client = cluster(ctx)
  local ok, how = client:delete("namespaces", action.args.namespace, { propagation = "Background" })
  if not ok then return nil, how end
  local gone, err = client:wait_gone("namespaces", action.args.namespace, { timeout = ctx.params.namespace_timeout })
  if not gone then return nil, err end
  return true, how ~= "deleted" and how or nil
end

-- The database is as planned: the role owns only the hub's objects, and no hub table appeared.
local function ownership_unchanged(ctx, action)
  local found, err = owned(ctx)
  if not found then return nil, err end
  if #found.foreign > 0 then
    return false, "the role now owns objects that are not JupyterHub's: " .. table.concat(found.foreign, ", ")
  end
  local planned = set_of(action.args.tables)
  for _, t in ipairs(found.tables) do
    if not planned[t] then return false, "the role owns a table the plan did not back up: " .. t end
  end
  return true, found
end

local MANIFEST = "manifest.json"

-- The backup directory verifies: a manifest, and every file matching its SHA-256.
local function verified_backup(dir, tables)
  local text, err = backup.read(dir .. "/" .. MANIFEST)
  if not text then return nil, err end
  local manifest = json.decode(text)
  if type(manifest) ~= "table" or type(manifest.tables) ~= "table" then return nil, "the backup manifest is damaged" end
  local have = {}
  for _, t in ipairs(manifest.tables) do
    local ok, verr = backup.verify(dir .. "/" .. t.file, t.sha256)
    if not ok then return nil, verr end
    have[t.name] = t
  end
  for _, name in ipairs(tables) do
    if not have[name] then return nil, "the backup has no copy of table " .. name end
  end
  return manifest
end

local function pg_backup_run(ctx, action)
  local dir = action.args.dir
  if backup.exists(dir) then
    local manifest, err = verified_backup(dir, action.args.tables)
    if manifest then return true, "backed up earlier" end
    return nil, "a backup directory exists but does not verify (" .. err .. "); move it away and resume"
  end
  -- Written under a temporary name and renamed when complete: a directory under the final name is
  -- always a whole backup, whatever happens meanwhile. A new one each attempt: an attempt killed
  -- halfway leaves its partial directory behind.
  local partial, err = backup.mkdir_new(dir .. ".partial-" .. util.format_time(ctx.time()):gsub("[^%w]", ""))
  if not partial then return nil, err end
  local ok
  local conn = database(ctx)
  local manifest = { database = ctx.state.db_shown, created = util.format_time(ctx.time()), tables = json.array(),
                     sequences = json.array() }
  for _, name in ipairs(action.args.tables) do
    local file = name .. ".copy"
    local copied, cerr = conn:copy_to(name, partial .. "/" .. file)
    if not copied then return nil, cerr end
    manifest.tables[#manifest.tables + 1] = { name = name, file = file, rows = copied.rows, bytes = copied.bytes,
                                              sha256 = copied.sha256 }
  end
  for _, name in ipairs(action.args.sequences) do
    local rows, serr = conn:query("SELECT last_value, is_called FROM " .. conn:escape_identifier(name))
    if not rows then return nil, serr end
    manifest.sequences[#manifest.sequences + 1] = { name = name, last_value = rows[1].last_value, is_called = rows[1].is_called }
  end
  local saved, werr = backup.write(partial .. "/" .. MANIFEST, json.pretty(manifest) .. "\n")
  if not saved then return nil, werr end
  local verified, verr = verified_backup(partial, action.args.tables)
  if not verified then return nil, verr end
  ok, err = backup.publish(partial, dir)
  if not ok then return nil, err end
  local rows = 0
  for _, t in ipairs(manifest.tables) do rows = rows + t.rows end
  return true, string.format("%d tables, %d rows, in %s", #manifest.tables, rows, dir)
end

local function drop_check(ctx, action)
  local unchanged, found = ownership_unchanged(ctx, action)
  if not unchanged then return unchanged, found end
  if #found.tables == 0 and #found.sequences == 0 then return true end -- dropped already: run confirms
  local manifest, err = verified_backup(action.args.dir, found.tables)
  if not manifest then return false, "no verified backup, so nothing is dropped: " .. err end
  return true
end

local function drop_run(ctx, action)
  local conn = database(ctx)
  local found, err = owned(ctx)
  if not found then return nil, err end
  if #found.all == 0 then return true, "the role owned nothing: dropped earlier" end
  local result, terr = conn:transaction(function(c)
    local ok, qerr = c:query("DROP OWNED BY current_user")
    if not ok then return nil, qerr end
    return true
  end)
  if not result then return nil, terr end
  return true, string.format("dropped %d objects", #found.all)
end

local function restart_check(ctx, action)
  local p = ctx.params
  local dep, err = cluster(ctx):get("deployments", p.deployment, { namespace = p.namespace })
  if dep == nil then return nil, err end
  if dep == false then return nil, "the hub deployment " .. p.namespace .. "/" .. p.deployment .. " is gone" end
  return true
end

local function restart_run(ctx, action)
  local p = ctx.params
  local client = cluster(ctx)
  local ok, err = client:rollout_restart(p.deployment, { namespace = p.namespace })
  if not ok then return nil, err end
  local pod, werr = client:wait_rollout(p.deployment, { namespace = p.namespace, timeout = p.rollout_timeout })
  if not pod then return nil, werr end
  return true, "new pod " .. pod.metadata.name .. " is Ready"
end

local function schema_run(ctx, action)
  local deadline = ctx.time() + ctx.params.schema_timeout
  while true do
    local present, err = schema_present(ctx)
    if present then return true end
    if present == nil then ctx.log("wipe-hub-db: %s", err) end
    if ctx.time() >= deadline then
      return nil, string.format("the hub did not recreate its schema within %ds (is the new hub pod healthy?)",
        ctx.params.schema_timeout)
    end
    if not util.sleep(2) then return nil, "interrupted while waiting for the hub's schema" end
  end
end

local function restore_check(ctx, action)
  local present, err = schema_present(ctx)
  if present == nil then return nil, err end
  if not present then return nil, "the database has no hub schema: access stays cut until the hub recreates it" end
  local obj, serr = saved_ingress(ctx, action)
  if not obj then return nil, serr end
  return true
end

local function restore_run(ctx, action)
  local ok, how = restore_ingress(ctx, action.args.file)
  if not ok then return nil, how end
  return true, how
end

return {
  summary = "Wipe a JupyterHub's PostgreSQL database (Nublado): cut access, delete labs, back up, DROP OWNED, restart, restore",
  description = [[
For a hub on PostgreSQL with user labs in namespaces nublado-<user> and access through a
GafaelfawrIngress `proxy` (Rubin's Nublado). The plan lists the ingress to save and delete, every lab
namespace to delete (and near misses it leaves, such as nubladox-test), and every object the database
role owns; if the role owns anything that is not JupyterHub's, the plan stops and nothing is touched.
Apply saves the ingress, deletes it, deletes the lab namespaces and waits until they are gone, backs up
every table (COPY text format, one file a table, manifest.json with row counts, SHA-256 and the
sequences' values) into a dated directory under backup_dir, checks ownership and the backup again,
runs DROP OWNED BY current_user, restarts the hub and waits for its schema, and recreates the ingress.
If a run stops, access is restored when the database is consistent; `runbook resume JOURNAL` cuts it
again and finishes the job. To restore the data: let the same JupyterHub version create its schema,
then COPY each table FROM its file (psql \copy), in the manifest's order, and setval each sequence.
The database URL: -p database_url, or ConfigMap `config_map` key `url_key` in the hub's namespace; its
password from Secret `password_secret` key `password_key` unless the URL has one. Kubernetes access as
kubectl: --kubeconfig, --context.]],
  params = {
    { name = "namespace", type = "string", default = "nublado", help = "the hub's namespace" },
    { name = "lab_prefix", type = "string", default = "nublado-", check = ends_with_dash,
      help = "lab namespaces start with this (must end with '-')" },
    { name = "ingress_resource", type = "string", default = "gafaelfawringresses.gafaelfawr.lsst.io/v1alpha1",
      help = "the access ingress's resource (PLURAL.GROUP/VERSION)" },
    { name = "ingress_name", type = "string", default = "proxy", help = "the access ingress's name" },
    { name = "deployment", type = "string", default = "hub", help = "the hub's deployment" },
    { name = "database_url", type = "string", check = no_password,
      help = "PostgreSQL URL without its password (else read from the cluster)" },
    { name = "config_map", type = "string", default = "hub-config", help = "ConfigMap holding the database URL" },
    { name = "url_key", type = "string", default = "jupyterhub.hub.db.url", help = "its key (the Helm value jupyterhub.hub.db.url)" },
    { name = "password_secret", type = "string", default = "nublado-secret", help = "Secret holding the database password" },
    { name = "password_key", type = "string", default = "hub.db.password", help = "its key" },
    { name = "backup_dir", type = "path", default = "wipe-hub-db-backups", help = "backups go in a dated directory under this" },
    { name = "extra_hub_tables", type = "list", default = {}, help = "more table names that are the hub's (other JupyterHub versions)" },
    { name = "namespace_timeout", type = "integer", default = 600, min = 1, max = 86400, help = "seconds to wait for a lab namespace to go" },
    { name = "rollout_timeout", type = "integer", default = 600, min = 1, max = 86400, help = "seconds to wait for the new hub pod" },
    { name = "schema_timeout", type = "integer", default = 600, min = 1, max = 86400, help = "seconds to wait for the hub's schema" },
    { name = "statement_timeout", type = "integer", default = 300, min = 1, max = 86400,
      help = "seconds each SQL statement (a table's COPY too) may take; a server that stops answering is given 5 s more" },
  },
  steps = {
    "Save the access ingress to the backup directory, then delete it (the hub keeps running)",
    "Delete every lab namespace (lab_prefix*, never the hub's) and wait until each is gone",
    "Back up every table the database role owns (COPY, row counts, SHA-256) to a dated directory",
    "Check the role still owns only JupyterHub's tables and the backup verifies; DROP OWNED BY current_user",
    "Rollout restart the hub deployment; wait for the new pod to be Ready and for the hub's schema",
    "Recreate the access ingress from the saved object",
  },

  target = function(ctx)
    local p = ctx.params
    if p.namespace == "" or util.starts_with(p.namespace, p.lab_prefix) then
      util.fail(2, "lab_prefix %s would match the hub's own namespace %s", p.lab_prefix, p.namespace)
    end
    return p.namespace
  end,

  -- Both doors are opened before anything happens: a database that went away since the plan stops
  -- the apply before access is cut.
  setup = function(ctx)
    cluster(ctx)
    database(ctx)
  end,

  plan = function(ctx)
    local p = ctx.params
    local client = cluster(ctx)
    ctx:fact("kubernetes_context", client.context)
    local dir = string.format("%s/%s-%s", p.backup_dir, p.namespace, os.date("!%Y%m%dT%H%M%SZ", math.floor(ctx.now)))
    ctx:fact("backup_directory", dir)
    local ingress_file = plan_ingress(ctx, dir)
    plan_namespaces(ctx)
    plan_database(ctx, dir)
    ctx:add{ kind = "k8s.restart", target = "deployments/" .. p.namespace .. "/" .. p.deployment,
             reason = "a running hub is confused by an empty database; it recreates its schema on start" }
    ctx:add{ kind = "pg.wait_schema", target = ctx.state.db_shown, reason = "the new hub has created its tables" }
    ctx:add{ kind = "k8s.create", target = ingress_label(p), reason = "restore user access", args = { file = ingress_file } }
  end,

  actions = {
    ["k8s.backup"] = { run = ingress_backup_run },
    -- Cutting access converges ("the ingress is absent"): resume checks it again, since on_stop may
    -- have restored access after an earlier stop. Deleted namespaces stay deleted: no need.
    ["k8s.delete"] = {
      repeat_on_resume = function(action) return action.args.namespace == nil end,
      check = function(ctx, action)
        if action.args.namespace then return namespace_check(ctx, action) end
        return ingress_delete_check(ctx, action)
      end,
      run = function(ctx, action)
        if action.args.namespace then return namespace_run(ctx, action) end
        return ingress_delete_run(ctx, action)
      end,
    },
    ["pg.backup"] = { check = ownership_unchanged, run = pg_backup_run },
    ["pg.drop_owned"] = { check = drop_check, run = drop_run },
    ["k8s.restart"] = { check = restart_check, run = restart_run },
    ["pg.wait_schema"] = { run = schema_run },
    ["k8s.create"] = { check = restore_check, run = restore_run },
  },

  -- After a stop: access comes back only if the database is consistent (never wiped, or recreated).
  on_stop = function(ctx, results)
    local file, drop_begun
    for _, a in ipairs(results.plan_actions) do
      if a.kind == "k8s.create" then file = a.args.file end
      if a.kind == "pg.drop_owned" and results.ever_started[a.id] then drop_begun = true end
    end
    if not file or not backup.exists(file) then return false, "no saved ingress: access was not cut" end
    -- Never wiped means consistent, whatever the database answers now; once the drop has begun,
    -- only a schema seen again proves it.
    local present, err = true, nil
    if drop_begun then present, err = schema_present(ctx) end
    if present == nil then return false, "access stays cut: the database was being wiped and cannot be checked (" .. err .. ")" end
    if not present then
      return false, "access stays cut: the database was wiped and the hub has not recreated its schema yet; " ..
        "fix the cause and run `runbook resume`"
    end
    local ok, how = restore_ingress(ctx, file)
    if not ok then return false, "access stays cut: the ingress could not be recreated (" .. how .. ")" end
    return true, how == "already there" and "access was not cut (the ingress is there)"
      or "access restored: the ingress is back (the database is consistent); `runbook resume` cuts it again and goes on"
  end,
}
