-- wipe-hub-db: empty the PostgreSQL database of a JupyterHub and let the hub start afresh, without
-- locking users out for longer than needed and without touching anything that is not the hub's.
-- Two layouts: Rubin's Nublado (labs in namespaces nublado-<user>, access through a GafaelfawrIngress)
-- and a standard zero-to-jupyterhub release (user pods in the hub's namespace, access through the
-- proxy Deployment, or the chart's Ingress). The procedure, in the order it runs:
--   1. cut user access: save and delete the access ingress, or scale the proxy (and autohttps) to 0,
--      recording the replicas to restore (the hub keeps running)
--   2. stop the user servers: delete every lab namespace (Nublado: prefix "nublado-", with the dash:
--      "nublado" holds the hub), or every pod labelled component=singleuser-server in the hub's
--      namespace (z2jh), and wait until they are gone
--   3. check that the database role owns nothing but JupyterHub's own tables and sequences
--   4. back up every table the role owns (COPY, row counts, SHA-256) to a dated directory
--   5. DROP OWNED BY current_user, after checking ownership and the backup again
--   6. rollout restart the hub deployment and wait for the new pod to be Ready
--   7. wait until the hub has recreated its schema
--   8. restore access: recreate the ingress from the saved object, or scale back to the recorded replicas
-- If a run stops halfway, on_stop restores access when the database is consistent (never wiped, or
-- wiped and recreated); `runbook resume` cuts access again before going on.
local ctxstate = require "runbook.ctxstate"
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
local function one_of(...)
  local allowed = { ... }
  return function(v)
    return set_of(allowed)[v] ~= nil, "must be " .. table.concat(allowed, " or ")
  end
end

-- Where each layout keeps what this runbook needs; a parameter given on the command line wins.
local LAYOUTS = {
  nublado = { config_map = "hub-config", url_key = "jupyterhub.hub.db.url", password_secret = "nublado-secret",
              ingress_resource = "gafaelfawringresses.gafaelfawr.lsst.io/v1alpha1", ingress_name = "proxy",
              access = "ingress" },
  -- The chart renders its values into ConfigMap hub (key values.yaml, hub.db.url inside) and the
  -- password into Secret hub (key hub.db.password), which the hub exports as PGPASSWORD.
  z2jh = { config_map = "hub", url_key = "values.yaml", password_secret = "hub",
           ingress_resource = "ingresses.networking.k8s.io/v1", ingress_name = "jupyterhub" },
}
local LAYOUT_NAMES = { nublado = "Nublado", z2jh = "zero-to-jupyterhub" }
-- The Deployments that carry users' traffic in a z2jh release, in the order they are scaled down:
-- configurable-http-proxy, and Traefik in front of it when automatic HTTPS is on.
local PROXY_DEPLOYMENTS = { "proxy", "autohttps" }
-- KubeSpawner's pods: what a z2jh hub runs for each user server.
local USER_SERVER_LABEL, USER_SERVER_VALUE = "component", "singleuser-server"

local function is_user_server(pod)
  local labels = pod.metadata.labels or {}
  return labels[USER_SERVER_LABEL] == USER_SERVER_VALUE
end

-- 3112 -> "3,112": row counts an operator reads at a glance.
local function thousands(n)
  local s = tostring(math.tointeger(n) or n)
  local sign, digits = s:match("^(-?)(%d+)$")
  if not digits then return s end
  return sign .. digits:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
end

local function plural(n, word)
  return string.format("%s %s", thousands(n), n == 1 and word or (word .. "s"))
end

-- ---- connections ----
-- Failures of the outside world (a server down, a refused token) end the run with util.fail: one
-- message, no traceback. Tracebacks are for bugs.

local function cluster(ctx) return ctxstate.k8s(ctx) end

local function ingress_label(p) return p.ingress_resource:match("^[^.]+") .. "/" .. p.namespace .. "/" .. p.ingress_name end

-- ---- the layout ----

-- What the namespace shows of each layout. Nublado: its GafaelfawrIngress (Nublado also runs the
-- z2jh chart, so a proxy Deployment proves nothing), and no user server in the hub's namespace (labs
-- run in namespaces of their own). z2jh: the proxy Deployment and no GafaelfawrIngress. Anything
-- else is not guessed. -> layout, evidence | nil, why not
local function detect_layout(ctx)
  local p = ctx.params
  local client = cluster(ctx)
  local nublado = LAYOUTS.nublado
  local gafaelfawr, err = client:get(nublado.ingress_resource, p.ingress_name or nublado.ingress_name,
    { namespace = p.namespace })
  if gafaelfawr == nil then util.fail(1, err) end
  local proxy, perr = client:get("deployments", PROXY_DEPLOYMENTS[1], { namespace = p.namespace })
  if proxy == nil then util.fail(1, perr) end
  local pods, lerr = client:list("pods", { namespace = p.namespace,
                                           label_selector = USER_SERVER_LABEL .. "=" .. USER_SERVER_VALUE })
  if not pods then util.fail(1, lerr) end
  local gafaelfawr_name = "GafaelfawrIngress " .. (p.ingress_name or nublado.ingress_name)
  if gafaelfawr and #pods == 0 then return "nublado", gafaelfawr_name .. ", no user server in the hub's namespace" end
  if gafaelfawr then
    return nil, string.format("it has the %s (Nublado) and also %s labelled %s=%s (zero-to-jupyterhub)",
      gafaelfawr_name, plural(#pods, "pod"), USER_SERVER_LABEL, USER_SERVER_VALUE)
  end
  if proxy then return "z2jh", "Deployment " .. PROXY_DEPLOYMENTS[1] .. ", no GafaelfawrIngress" end
  return nil, string.format("it has neither the %s of Nublado nor the Deployment %s of zero-to-jupyterhub",
    gafaelfawr_name, PROXY_DEPLOYMENTS[1])
end

-- z2jh: scaling the proxy cuts every way in (the chart's Ingress, a LoadBalancer, a NodePort all
-- lead to it); the chart's Ingress is the door only where there is no proxy Deployment.
local function detect_access(ctx)
  local p = ctx.params
  local client = cluster(ctx)
  local proxy, err = client:get("deployments", PROXY_DEPLOYMENTS[1], { namespace = p.namespace })
  if proxy == nil then util.fail(1, err) end
  if proxy then return "proxy" end
  local ingress, ierr = client:get(p.ingress_resource, p.ingress_name, { namespace = p.namespace })
  if ingress == nil then util.fail(1, ierr) end
  if ingress then return "ingress" end
  util.fail(1, "no way to cut user access in %s: neither a Deployment %s nor the ingress %s exists; name the " ..
    "ingress with -p access=ingress -p ingress_resource=... -p ingress_name=...", p.namespace, PROXY_DEPLOYMENTS[1],
    ingress_label(p))
end

-- Settles the layout (given, recorded in the plan, or detected now) and fills in its defaults, so
-- that the plan records every name apply will use.
local function choose_layout(ctx)
  local p = ctx.params
  if p.layout then
    ctx.state.layout_evidence = ctx.state.layout_evidence or "given"
  else
    local layout, why = detect_layout(ctx)
    if not layout then
      util.fail(2, "cannot tell the layout of namespace %s: %s. Choose: -p layout=nublado (labs in namespaces " ..
        "%s*, access through the GafaelfawrIngress) or -p layout=z2jh (user pods in the hub's namespace, access " ..
        "through the proxy Deployment)", p.namespace, why, p.lab_prefix)
    end
    p.layout, ctx.state.layout_evidence = layout, "detected: " .. why
  end
  for key, value in pairs(LAYOUTS[p.layout]) do
    if p[key] == nil then p[key] = value end
  end
  if p.access == nil then
    p.access = detect_access(ctx)
    ctx.state.access_evidence = "detected"
  end
end

-- ---- the database ----

local function dig(t, ...)
  for _, key in ipairs({ ... }) do
    if type(t) ~= "table" then return nil end
    t = t[key]
  end
  return t
end

-- The hub's database URL: -p database_url, else the hub's configuration in the cluster: a ConfigMap
-- key holding the URL, or holding the chart's values (YAML) with hub.db.url.
local function configured_url(ctx)
  local p = ctx.params
  if p.database_url then return p.database_url end
  local where = string.format("ConfigMap %s/%s", p.namespace, p.config_map)
  local cm, err = cluster(ctx):get("configmaps", p.config_map, { namespace = p.namespace })
  if cm == nil then util.fail(1, err) end
  if cm == false then util.fail(2, "no database URL: %s does not exist; give -p database_url=...", where) end
  local text = type(cm.data) == "table" and cm.data[p.url_key]
  if type(text) ~= "string" then
    util.fail(2, "no database URL: %s has no key %s; give -p database_url=...", where, p.url_key)
  end
  text = util.trim(text)
  if text:match("^%a[%w+.-]*://") or text:find("=", 1, true) and not text:find("\n") then return text end
  local values, yerr = k8s.decode_yaml(text)
  if values == nil then util.fail(2, "%s key %s is neither a URL nor YAML (%s)", where, p.url_key, yerr) end
  local db = dig(values, "hub", "db") or dig(values, "jupyterhub", "hub", "db")
  if type(db) ~= "table" then
    util.fail(2, "no database URL: %s key %s has no hub.db; give -p database_url=...", where, p.url_key)
  end
  if type(db.type) == "string" and db.type ~= "postgres" then
    util.fail(2, "the hub's database is hub.db.type %s (%s key %s), not postgres: this runbook wipes PostgreSQL " ..
      "databases%s", db.type, where, p.url_key, db.type:match("sqlite") and "; reset-sqlite handles SQLite" or "")
  end
  if type(db.url) ~= "string" or db.url == "" then
    util.fail(2, "no database URL: %s key %s has no hub.db.url; give -p database_url=...", where, p.url_key)
  end
  return util.trim(db.url)
end

-- The chart's URL is SQLAlchemy's: postgresql+psycopg2://... is postgresql://... to libpq.
local function libpq_url(url)
  return (url:gsub("^(postgres%a*)%+[%w_]+://", "%1://"))
end

local function typed_password(url)
  return url:match("^%a[%w+.-]*://[^/@]*:[^/@]*@") or url:find("password%s*=")
end

-- Whether libpq has a password source of its own, which comes before any Secret: PGPASSWORD, a
-- service (PGSERVICE, service=), or a password file (PGPASSFILE, else ~/.pgpass).
local function libpq_password_source(url)
  local function set(name) return (os.getenv(name) or "") ~= "" end
  if set("PGPASSWORD") then return "PGPASSWORD" end
  if set("PGSERVICE") or url:find("service%s*=") then return "the service file (PGSERVICE)" end
  local file = os.getenv("PGPASSFILE")
  if not file or file == "" then
    local home = os.getenv("HOME")
    file = home and home ~= "" and (home .. "/.pgpass") or nil
  end
  -- A relative PGPASSFILE is libpq's business: let it look.
  if file and (file:sub(1, 1) ~= "/" or backup.exists(file)) then return "the password file " .. file end
end

-- The Secret's password -> password | nil, why there is none ("Secret x/y does not exist").
local function secret_password(ctx)
  local p = ctx.params
  local secret, err = cluster(ctx):get("secrets", p.password_secret, { namespace = p.namespace })
  if secret == nil then util.fail(1, err) end
  local where = string.format("Secret %s/%s", p.namespace, p.password_secret)
  if secret == false then return nil, where .. " does not exist" end
  local encoded = type(secret.data) == "table" and secret.data[p.password_key]
  if not encoded then return nil, string.format("%s has no key %s", where, p.password_key) end
  local password = k8s.base64_decode(encoded)
  if not password then util.fail(2, "%s key %s is not base64", where, p.password_key) end
  return password, string.format("%s key %s", where, p.password_key)
end

local function with_password(url, password)
  local scheme, user, rest = url:match("^(postgres[%w]*://)([^/@]*)@(.*)$")
  if not scheme then scheme, user, rest = url:match("^(postgres[%w]*://)()(.*)$") end
  if scheme then return scheme .. user .. ":" .. util.url_escape(password) .. "@" .. rest end
  return url .. " password='" .. password:gsub("[\\']", "\\%0") .. "'" -- a conninfo string
end

-- libpq says so when the server wants a password and it has none to give (fe-auth.c).
local function wants_password(err) return tostring(err):find("no password supplied", 1, true) ~= nil end

-- Connects the way psql would first (libpq's own password sources), then with the Secret's password
-- if libpq had none for this server. -> conn, where the password came from
local function connect(ctx, url)
  local opts = { statement_timeout = ctx.params.statement_timeout, application_name = "runbook wipe-hub-db" }
  -- No connect_timeout here: the module's default (10 s) applies, and PGCONNECT_TIMEOUT can change it.
  local source = typed_password(url) and "the URL" or libpq_password_source(url)
  local tried_libpq = false
  if source then
    local conn, err = pg.connect(url, opts)
    if conn then return conn, source end
    if source == "the URL" or not wants_password(err) then util.fail(1, err) end
    tried_libpq = true
  end
  local password, where = secret_password(ctx)
  if not password then
    if not tried_libpq then
      -- Nothing to give: the server may want none (trust, certificates).
      local conn, err = pg.connect(url, opts)
      if conn then return conn, "none (the server asked for none)" end
      if not wants_password(err) then util.fail(1, err) end
    end
    util.fail(2, "no database password: libpq has none for %s (PGPASSWORD, PGSERVICE, ~/.pgpass or PGPASSFILE) and %s",
      pg.redact(url), where)
  end
  local conn, err = pg.connect(with_password(url, password), opts)
  if not conn then util.fail(1, err) end
  return conn, where
end

local function database(ctx)
  return ctxstate.once(ctx, "db", function()
    local url = libpq_url(configured_url(ctx))
    local conn, source = connect(ctx, url)
    ctx.state.db_shown, ctx.state.password_source = pg.redact(url), source
    return conn
  end)
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
-- Each plan_* adds its actions and returns what the plan's effect and the operator need to know.

-- Access through an ingress: saved, deleted, recreated at the end. -> cut {effect, wait, restore()}
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
  return {
    effect = string.format("access cut (%s %s deleted, recreated at the end)", obj.kind or "ingress", p.ingress_name),
    wait = p.access_timeout,
    wait_text = string.format("ingress %ds", p.access_timeout),
    restore = function()
      ctx:add{ kind = "k8s.create", target = target, reason = "restore user access", args = { file = file } }
    end,
  }
end

-- Access through the proxy (z2jh): each proxy Deployment scaled to 0, and back to the replicas it
-- had, which the plan records (resume and on_stop read them from there).
local function plan_proxy(ctx)
  local p = ctx.params
  local client = cluster(ctx)
  local scaled, words = {}, {}
  for i, name in ipairs(PROXY_DEPLOYMENTS) do
    local target = "deployments/" .. p.namespace .. "/" .. name
    local dep, err = client:get("deployments", name, { namespace = p.namespace })
    if dep == nil then util.fail(1, err) end
    local replicas = dep and (dep.spec and dep.spec.replicas or 1)
    if i == 1 and not dep then
      util.fail(1, "the Deployment %s does not exist: -p access=proxy needs it (-p access=ingress cuts access at an " ..
        "ingress instead)", target)
    elseif i == 1 and replicas == 0 then
      util.fail(1, "the Deployment %s has 0 replicas: access is already cut, or by someone else; this runbook " ..
        "restores access to the replicas it finds, so it will not start with none", target)
    elseif dep and replicas == 0 then
      ctx:skip{ target = target, reason = "at 0 replicas already: left at 0" }
    elseif dep then
      ctx:add{ kind = "k8s.scale", target = target,
               reason = string.format("cut user access: scale to 0 (from %d, restored at the end)", replicas),
               args = { deployment = name, replicas = 0, restore = replicas, uid = dep.metadata.uid } }
      scaled[#scaled + 1] = { name = name, target = target, replicas = replicas, uid = dep.metadata.uid }
      words[#words + 1] = string.format("%s 0 <- %d", name, replicas)
    end
  end
  return {
    effect = "access cut (" .. table.concat(words, ", "):gsub("^(%S+) ", "%1 scaled ", 1) .. ")",
    wait = #scaled * p.access_timeout * 2, -- down now, up at the end
    wait_text = string.format("proxies %d x 2 x %ds", #scaled, p.access_timeout),
    -- One action brings them all back: while it is pending, resume cuts access again first (on_stop
    -- may have restored it); once it is done, nothing after it could need access cut.
    restore = function()
      local names, back, list = {}, {}, json.array()
      for _, d in ipairs(scaled) do
        names[#names + 1] = d.name
        back[#back + 1] = string.format("%s to %d", d.name, d.replicas)
        list[#list + 1] = { deployment = d.name, replicas = d.replicas, uid = d.uid }
      end
      ctx:add{ kind = "k8s.scale", target = "deployments/" .. p.namespace .. "/" .. table.concat(names, ","),
               reason = "restore user access: " .. table.concat(back, ", "), args = { deployments = list } }
    end,
  }
end

-- Nublado: every lab namespace. -> {effect, wait}
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
  return { effect = plural(count, "lab namespace") .. " deleted", wait = count * p.namespace_timeout,
           wait_text = string.format("lab namespaces %d x %ds", count, p.namespace_timeout) }
end

-- z2jh: every user server pod in the hub's namespace (and only those: the hub, the proxy, image
-- pullers and look-alike names stay), then one wait for all of them. -> {effect, wait}
local function plan_user_pods(ctx)
  local p = ctx.params
  local pods, err = cluster(ctx):list("pods", { namespace = p.namespace })
  if not pods then util.fail(1, err) end
  local planned = json.array()
  for _, pod in ipairs(pods) do
    local name, labels = pod.metadata.name, pod.metadata.labels or {}
    local target = "pods/" .. p.namespace .. "/" .. name
    if is_user_server(pod) then
      local user = labels["hub.jupyter.org/username"]
      ctx:add{ kind = "k8s.delete", target = target,
               reason = "a user server" .. (user and (" (" .. user .. ")") or ""),
               args = { pod = name, uid = pod.metadata.uid } }
      planned[#planned + 1] = { name = name, uid = pod.metadata.uid }
    elseif name:match("^jupyter%-") then
      ctx:skip{ target = target, reason = string.format("not labelled %s=%s", USER_SERVER_LABEL, USER_SERVER_VALUE) }
    end
  end
  ctx:fact("user_servers", #planned)
  if #planned == 0 then return { effect = "no user server running", wait = 0, wait_text = "user servers 0s" } end
  local selector = USER_SERVER_LABEL .. "=" .. USER_SERVER_VALUE
  ctx:add{ kind = "k8s.wait_gone", target = string.format("pods/%s %s", p.namespace, selector),
           reason = string.format("the %s stopped (at most %ds)", plural(#planned, "user server"), p.server_timeout),
           args = { pods = planned } }
  return { effect = plural(#planned, "user server") .. " stopped", wait = p.server_timeout,
           wait_text = string.format("user servers %ds", p.server_timeout) }
end

-- Every table the role owns, counted now. -> {tables, rows}
local function plan_database(ctx, dir)
  local p = ctx.params
  local found, err = owned(ctx)
  if not found then util.fail(1, err) end
  ctx:fact("database", ctx.state.db_shown)
  ctx:fact("database_password", ctx.state.password_source)
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
  local conn = database(ctx)
  local rows, counted = 0, {}
  for _, name in ipairs(found.tables) do
    local result, cerr = conn:query("SELECT count(*) AS n FROM public." .. conn:escape_identifier(name))
    if not result then util.fail(1, cerr) end
    rows = rows + result[1].n
    counted[#counted + 1] = string.format("%s %s", name, thousands(result[1].n))
  end
  local grants = assert(conn:query(GRANTS_SQL))
  for _, g in ipairs(grants) do
    ctx:note(string.format("DROP OWNED also %s %s", g.kind == "a" and "revokes the role's privileges on" or "drops",
      g.object))
  end
  ctx:note("sessions of the role left idle in a transaction (a running hub's reads) are ended just before the drop: " ..
    "their locks would hold it")
  local db = ctx.state.db_shown
  local backup_dir = dir .. "/database"
  local what = string.format("%s (%s)", plural(#found.tables, "table"), plural(rows, "row"))
  ctx:fact("hub_tables", what)
  ctx:consequence(string.format("DROP OWNED BY current_user destroys the hub's %s and %s, after backing them up " ..
    "to %s. Rows per table: %s", what, plural(#found.sequences, "sequence"), backup_dir, table.concat(counted, ", ")))
  ctx:add{ kind = "pg.backup", target = db, reason = string.format("COPY of %d tables (and %d sequences' values): %s rows",
           #found.tables, #found.sequences, thousands(rows)),
           args = { dir = backup_dir, tables = found.tables, sequences = found.sequences } }
  ctx:add{ kind = "pg.drop_owned", target = db,
           reason = string.format("DROP OWNED BY current_user destroys %s: %s (the role owns nothing else)",
             what, table.concat(found.tables, ", ")),
           args = { dir = backup_dir, tables = found.tables, sequences = found.sequences } }
  return { tables = #found.tables, rows = rows }
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
  local gone, err = client:wait_gone(p.ingress_resource, p.ingress_name,
    { namespace = p.namespace, timeout = p.access_timeout })
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

-- A running JupyterHub leaves its connection idle inside an open transaction after it reads (3.0 on
-- PostgreSQL stays so for minutes, until its next write), and that transaction's locks on its tables
-- hold DROP OWNED until the statement times out. Access is cut and the hub is restarted right after, so
-- the role's own sessions idle in a transaction are ended first; the drop then waits LOCK_WAIT at most
-- for a lock and, when that runs out (the hub reconnected and read again), ends them and tries again
-- until statement_timeout has passed. Sessions of other roles are never ended: they are named instead.
local LOCK_WAIT = "5s"
local LOCK_NOT_AVAILABLE = "55P03"

local END_IDLE_SESSIONS_SQL = [[
SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS ended FROM pg_stat_activity
 WHERE datname = current_database() AND usename = current_user AND pid <> pg_backend_pid()
   AND state IN ('idle in transaction', 'idle in transaction (aborted)')]]

-- Who holds a lock on something the role owns (other than this session): what the drop waits for.
-- The state of another role's session is hidden (NULL) unless the role may read all statistics.
local LOCK_HOLDERS_SQL = [[
SELECT DISTINCT a.pid, a.usename AS role, coalesce(nullif(a.application_name, ''), '-') AS application,
       a.state
  FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid JOIN pg_class c ON c.oid = l.relation
 WHERE l.granted AND l.pid <> pg_backend_pid() AND c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
 ORDER BY a.pid]]

local function lock_holders(conn)
  local rows = conn:query(LOCK_HOLDERS_SQL)
  if not rows or #rows == 0 then return "none found now" end
  local named = {}
  for _, r in ipairs(rows) do
    named[#named + 1] = string.format("pid %d (role %s, application %s%s)", r.pid, r.role, r.application,
      r.state and (", " .. r.state) or "")
  end
  return table.concat(named, ", ")
end

local function drop_owned_once(conn)
  return conn:transaction(function(c)
    local ok, err, details = c:query("SET LOCAL lock_timeout = '" .. LOCK_WAIT .. "'")
    if not ok then return nil, err, details end
    ok, err, details = c:query("DROP OWNED BY current_user")
    if not ok then return nil, err, details end
    return true
  end)
end

local function drop_run(ctx, action)
  local conn = database(ctx)
  local found, err = owned(ctx)
  if not found then return nil, err end
  if #found.all == 0 then return true, "the role owned nothing: dropped earlier" end
  local deadline, ended = ctx.time() + ctx.params.statement_timeout, 0
  while true do
    local idle, ierr = conn:query(END_IDLE_SESSIONS_SQL)
    if not idle then return nil, ierr end
    ended = ended + idle[1].ended
    local dropped, derr, details = drop_owned_once(conn)
    if dropped then break end
    if not (details and details.sqlstate == LOCK_NOT_AVAILABLE) then return nil, derr end
    if ctx.time() >= deadline then
      return nil, string.format("DROP OWNED waited %ds for locks on the hub's tables and gave up; nothing was " ..
        "dropped. Holding them: %s. End those sessions (or wait for them), then resume", ctx.params.statement_timeout,
        lock_holders(conn))
    end
    ctx.log("wipe-hub-db: DROP OWNED waits for a lock; held by %s", lock_holders(conn))
  end
  return true, string.format("dropped %d objects%s", #found.all, ended == 0 and "" or
    string.format(" (after ending %d session%s of the role idle in a transaction)", ended, ended == 1 and "" or "s"))
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

-- ---- z2jh: the proxy and the user servers ----

local function deployment_pods(ctx, dep)
  local sel = dep.spec and dep.spec.selector and dep.spec.selector.matchLabels
  if type(sel) ~= "table" or next(sel) == nil then return nil, "the Deployment has no selector" end
  return cluster(ctx):list("pods", { namespace = ctx.params.namespace, label_selector = sel })
end

-- poll(ctx, timeout, what, check) -> result | nil, message: check() -> done, result | nil, message | false, state
local function poll(ctx, timeout, what, check)
  local deadline = ctx.time() + timeout
  while true do
    local done, result, state = check()
    if done == nil then return nil, result end
    if done then return result end
    if ctx.time() >= deadline then
      return nil, string.format("timed out after %ds waiting for %s%s", timeout, what,
        state and (" (" .. state .. ")") or "")
    end
    if not util.sleep(0.5) then return nil, "interrupted while waiting for " .. what end
  end
end

-- current_deployment(ctx, {deployment=, uid=}) -> the Deployment, still the plan's | nil, message
local function current_deployment(ctx, planned)
  local p = ctx.params
  local label = p.namespace .. "/" .. planned.deployment
  local dep, err = cluster(ctx):get("deployments", planned.deployment, { namespace = p.namespace })
  if dep == nil then return nil, err end
  if dep == false then return nil, "the Deployment " .. label .. " is gone" end
  if dep.metadata.uid ~= planned.uid then
    return nil, "the Deployment " .. label .. " was replaced since the plan (another uid): make a new plan"
  end
  return dep
end

local function restore_ready(ctx)
  local present, err = schema_present(ctx)
  if present == nil then return nil, err end
  if not present then return nil, "the database has no hub schema: access stays cut until the hub recreates it" end
  return true
end

-- Down: only from the replicas the plan recorded (or 0, cut already), or access would come back at
-- another size than the operator reviewed.
local function scale_down_check(ctx, action)
  local dep, err = current_deployment(ctx, action.args)
  if not dep then return nil, err end
  local now = dep.spec and dep.spec.replicas or 1
  if now ~= 0 and now ~= action.args.restore then
    return nil, string.format("it has %d replicas now, the plan recorded %d (and would restore those): make a new plan",
      now, action.args.restore)
  end
  return true
end

-- Up: only onto a database with the hub's schema, and only Deployments that are still the plan's.
local function scale_up_check(ctx, action)
  for _, d in ipairs(action.args.deployments) do
    local dep, err = current_deployment(ctx, d)
    if not dep then return nil, err end
  end
  return restore_ready(ctx)
end

local function scale_to(ctx, name, replicas)
  return cluster(ctx):patch("deployments", name, { spec = { replicas = replicas } },
    { namespace = ctx.params.namespace, type = "merge" })
end

local function scale_down_run(ctx, action)
  local p = ctx.params
  local name = action.args.deployment
  local dep, err = scale_to(ctx, name, 0)
  if not dep then return nil, err end
  -- Access is cut when the last pod has stopped, not when the Deployment says 0.
  local gone, perr = poll(ctx, p.access_timeout, "the pods of " .. name .. " to stop", function()
    local pods, lerr = deployment_pods(ctx, dep)
    if not pods then return nil, lerr end
    if #pods == 0 then return true, true end
    return false, nil, plural(#pods, "pod") .. " left"
  end)
  if not gone then return nil, perr end
  return true, string.format("at 0 (was %d)", action.args.restore)
end

-- In the plan's order (proxy before autohttps, which sends it traffic), each Ready before the next.
local function scale_up_run(ctx, action)
  local p = ctx.params
  local done = {}
  for _, d in ipairs(action.args.deployments) do
    local dep, err = scale_to(ctx, d.deployment, d.replicas)
    if not dep then return nil, err end
    local pod, werr = cluster(ctx):wait_rollout(d.deployment, { namespace = p.namespace, timeout = p.access_timeout })
    if not pod then return nil, werr end
    done[#done + 1] = string.format("%s back to %d", d.deployment, d.replicas)
  end
  return true, table.concat(done, ", ")
end

local function pod_check(ctx, action)
  local p = ctx.params
  local pod, err = cluster(ctx):get("pods", action.args.pod, { namespace = p.namespace })
  if pod == nil then return nil, err end
  if pod and pod.metadata.uid ~= action.args.uid then
    return false, "a different pod of that name runs now (started after the plan)"
  end
  return true
end

local function pod_run(ctx, action)
  local ok, how, status = cluster(ctx):delete("pods", action.args.pod,
    { namespace = ctx.params.namespace, preconditions = { uid = action.args.uid } })
  if not ok and type(status) == "table" and status.code == 409 then
    return false, "a different pod of that name runs now (started after the plan)"
  end
  if not ok then return nil, how end
  if how == "already gone" then return "already", how end
  return true
end

-- Every planned user server gone. A user server the plan does not know (started since) would
-- outlive the wipe with a session the new database knows nothing of: the run stops, access comes
-- back, and a new plan lists it.
local function servers_gone_run(ctx, action)
  local p = ctx.params
  local planned = {}
  for _, pod in ipairs(action.args.pods) do planned[pod.uid] = pod.name end
  return poll(ctx, p.server_timeout, "the user servers to stop", function()
    local pods, err = cluster(ctx):list("pods", { namespace = p.namespace })
    if not pods then return nil, err end
    local left, strangers = {}, {}
    for _, pod in ipairs(pods) do
      if is_user_server(pod) then
        local list = planned[pod.metadata.uid] and left or strangers
        list[#list + 1] = pod.metadata.name
      end
    end
    if #strangers > 0 then
      return nil, string.format("user servers started since the plan: %s; they would outlive the wipe: make a new plan",
        table.concat(strangers, ", "))
    end
    if #left == 0 then return true, true end
    return false, nil, "still there: " .. table.concat(left, ", ")
  end)
end

-- on_stop's part for the proxy: each Deployment this run scaled down (at 0 now) goes back to its
-- recorded replicas; one that is not at 0 was never cut (its check refused) and is left alone.
local function restore_proxies(ctx, cuts)
  local restored = {}
  for _, a in ipairs(cuts) do
    local dep, err = current_deployment(ctx, a.args)
    if not dep then return nil, err end
    if (dep.spec and dep.spec.replicas or 1) == 0 then
      local ok, serr = scale_to(ctx, a.args.deployment, a.args.restore)
      if not ok then return nil, serr end
      restored[#restored + 1] = string.format("%s back to %d", a.args.deployment, a.args.restore)
    end
  end
  return restored
end

return {
  summary = "Wipe a JupyterHub's PostgreSQL database (Nublado or z2jh): cut access, stop servers, back up, " ..
            "DROP OWNED, restart, restore",
  description = [[
For a hub on PostgreSQL, in one of two layouts (-p layout; detected when the namespace shows one
unambiguously, and recorded in the plan; when it cannot tell, the plan stops with exit 2):
nublado (Rubin's Nublado: user labs in namespaces nublado-<user>, access through a GafaelfawrIngress
`proxy`) and z2jh (a zero-to-jupyterhub release: user pods labelled component=singleuser-server in
the hub's namespace, access through the `proxy` Deployment and, with automatic HTTPS, `autohttps`).
The plan lists how access is cut, every lab namespace or user server pod it deletes (and the near
misses it leaves), every table the database role owns with its rows; if the role owns anything that
is not JupyterHub's, the plan stops and nothing is touched. Its effect line says what is destroyed.
Apply cuts access (access=ingress: saves the ingress and deletes it; access=proxy: scales the proxy
Deployments to 0, the plan recording their replicas), deletes the lab namespaces or user pods and
waits until they are gone, backs up every table (COPY text format, one file a table, manifest.json
with row counts, SHA-256 and the sequences' values) into a dated directory under backup_dir, checks
ownership and the backup again, runs DROP OWNED BY current_user, restarts the hub and waits for its
schema, and restores access (the ingress from the saved object, the proxies to their replicas).
If a run stops, access is restored when the database is consistent; `runbook resume JOURNAL` cuts it
again and finishes the job. To restore the data: let the same JupyterHub version create its schema,
then COPY each table FROM its file (psql \copy), in the manifest's order, and setval each sequence.
The database URL: -p database_url, or ConfigMap `config_map` key `url_key` in the hub's namespace
(the URL itself, or the chart's values with hub.db.url; postgresql+psycopg2:// is read as
postgresql://). Its password, in this order: one typed in the URL; libpq's own sources (PGPASSWORD,
PGSERVICE, the password file PGPASSFILE or ~/.pgpass); then Secret `password_secret` key
`password_key`. Kubernetes access as kubectl: --kubeconfig, --context.]],
  params = {
    { name = "namespace", type = "string", default = "nublado", help = "the hub's namespace" },
    { name = "layout", type = "string", check = one_of("nublado", "z2jh"),
      help = "nublado or z2jh; detected from the namespace when not given" },
    { name = "access", type = "string", check = one_of("ingress", "proxy"),
      help = "how access is cut: ingress (delete and recreate it; nublado's way) or proxy (scale the proxy and " ..
             "autohttps Deployments to 0 and back; z2jh's way, unless there is no proxy Deployment)" },
    { name = "lab_prefix", type = "string", default = "nublado-", check = ends_with_dash,
      help = "nublado: lab namespaces start with this (must end with '-')" },
    { name = "ingress_resource", type = "string",
      help = "the access ingress's resource, PLURAL.GROUP/VERSION (nublado: gafaelfawringresses.gafaelfawr.lsst.io/" ..
             "v1alpha1; z2jh: ingresses.networking.k8s.io/v1)" },
    { name = "ingress_name", type = "string", help = "the access ingress's name (nublado: proxy; z2jh: jupyterhub)" },
    { name = "deployment", type = "string", default = "hub", help = "the hub's deployment" },
    { name = "database_url", type = "string", check = no_password,
      help = "PostgreSQL URL without its password (else read from the cluster)" },
    { name = "config_map", type = "string", help = "ConfigMap holding the database URL (nublado: hub-config; z2jh: hub)" },
    { name = "url_key", type = "string",
      help = "its key: the URL, or the chart's values with hub.db.url (nublado: jupyterhub.hub.db.url; z2jh: values.yaml)" },
    { name = "password_secret", type = "string",
      help = "Secret holding the database password, read when libpq has none (nublado: nublado-secret; z2jh: hub)" },
    { name = "password_key", type = "string", default = "hub.db.password", help = "its key" },
    { name = "backup_dir", type = "path", default = "wipe-hub-db-backups", help = "backups go in a dated directory under this" },
    { name = "extra_hub_tables", type = "list", default = {}, help = "more table names that are the hub's (other JupyterHub versions)" },
    { name = "access_timeout", type = "integer", default = 120, min = 1, max = 86400,
      help = "seconds to wait for the ingress or the proxy pods to go, and for the proxy to be back" },
    { name = "namespace_timeout", type = "integer", default = 600, min = 1, max = 86400, help = "nublado: seconds to wait for a lab namespace to go" },
    { name = "server_timeout", type = "integer", default = 300, min = 1, max = 86400, help = "z2jh: seconds to wait for the user server pods to go" },
    { name = "rollout_timeout", type = "integer", default = 600, min = 1, max = 86400, help = "seconds to wait for the new hub pod" },
    { name = "schema_timeout", type = "integer", default = 600, min = 1, max = 86400, help = "seconds to wait for the hub's schema" },
    { name = "statement_timeout", type = "integer", default = 300, min = 1, max = 86400,
      help = "seconds each SQL statement (a table's COPY too) may take; a server that stops answering is given 5 s more" },
  },
  steps = {
    "Cut user access: save the access ingress, then delete it; or scale the proxy (and autohttps) Deployments to 0",
    "Stop the user servers: delete every lab namespace (nublado: lab_prefix*, never the hub's), or every pod labelled " ..
      "component=singleuser-server in the hub's namespace (z2jh), and wait until they are gone",
    "Back up every table the database role owns (COPY, row counts, SHA-256) to a dated directory",
    "Check the role still owns only JupyterHub's tables and the backup verifies; DROP OWNED BY current_user",
    "Rollout restart the hub deployment; wait for the new pod to be Ready and for the hub's schema",
    "Restore access: recreate the ingress from the saved object, or scale the proxies back to their recorded replicas",
  },

  target = function(ctx)
    local p = ctx.params
    if p.namespace == "" or (p.layout ~= "z2jh" and util.starts_with(p.namespace, p.lab_prefix)) then
      util.fail(2, "lab_prefix %s would match the hub's own namespace %s", p.lab_prefix, p.namespace)
    end
    return p.namespace
  end,

  -- Both doors are opened before anything happens: a database that went away since the plan stops
  -- the apply before access is cut. The layout comes first: it says where the database URL is.
  setup = function(ctx)
    cluster(ctx)
    choose_layout(ctx)
    database(ctx)
  end,

  plan = function(ctx)
    local p = ctx.params
    local client = cluster(ctx)
    ctx:fact("kubernetes_context", client.context)
    ctx:fact("layout", string.format("%s (%s; %s)", p.layout, LAYOUT_NAMES[p.layout], ctx.state.layout_evidence))
    ctx:fact("access", p.access == "proxy" and "cut at the proxy Deployments" or ("cut at the ingress " .. ingress_label(p)))
    local dir = string.format("%s/%s-%s", p.backup_dir, p.namespace, os.date("!%Y%m%dT%H%M%SZ", math.floor(ctx.now)))
    ctx:fact("backup_directory", dir)
    local cut = p.access == "proxy" and plan_proxy(ctx) or plan_ingress(ctx, dir)
    local servers = p.layout == "nublado" and plan_namespaces(ctx) or plan_user_pods(ctx)
    local db = plan_database(ctx, dir)
    ctx:add{ kind = "k8s.restart", target = "deployments/" .. p.namespace .. "/" .. p.deployment,
             reason = "a running hub is confused by an empty database; it recreates its schema on start" }
    ctx:add{ kind = "pg.wait_schema", target = ctx.state.db_shown, reason = "the new hub has created its tables" }
    cut.restore()
    ctx:effect(cut.effect)
    ctx:effect(servers.effect)
    ctx:effect(string.format("%s dropped (%s)", plural(db.tables, "table"), plural(db.rows, "row")))
    ctx:effect("hub restarted")
    local waits = cut.wait + servers.wait + p.rollout_timeout + p.schema_timeout
    ctx:consequence(string.format("Users are locked out from the first action to the last: at most about %s (the " ..
      "timeouts of its waits: %s, %s, hub rollout %ds, schema %ds), plus the time the backup of %s takes.",
      util.human_duration(waits), cut.wait_text, servers.wait_text, p.rollout_timeout,
      p.schema_timeout, plural(db.rows, "row")))
  end,

  actions = {
    ["k8s.backup"] = { run = ingress_backup_run },
    -- Cutting access converges ("the ingress is absent", "the proxy is at 0"): resume does it again,
    -- since on_stop may have restored access after an earlier stop. Deleted namespaces and pods stay
    -- deleted: no need.
    ["k8s.delete"] = {
      repeat_on_resume = function(action) return action.args.namespace == nil and action.args.pod == nil end,
      check = function(ctx, action)
        if action.args.namespace then return namespace_check(ctx, action) end
        if action.args.pod then return pod_check(ctx, action) end
        return ingress_delete_check(ctx, action)
      end,
      run = function(ctx, action)
        if action.args.namespace then return namespace_run(ctx, action) end
        if action.args.pod then return pod_run(ctx, action) end
        return ingress_delete_run(ctx, action)
      end,
    },
    ["k8s.scale"] = {
      repeat_on_resume = function(action) return action.args.replicas == 0 end,
      check = function(ctx, action)
        if action.args.deployments then return scale_up_check(ctx, action) end
        return scale_down_check(ctx, action)
      end,
      run = function(ctx, action)
        if action.args.deployments then return scale_up_run(ctx, action) end
        return scale_down_run(ctx, action)
      end,
    },
    ["k8s.wait_gone"] = { run = servers_gone_run },
    ["pg.backup"] = { check = ownership_unchanged, run = pg_backup_run },
    ["pg.drop_owned"] = { check = drop_check, run = drop_run },
    ["k8s.restart"] = { check = restart_check, run = restart_run },
    ["pg.wait_schema"] = { run = schema_run },
    ["k8s.create"] = { check = restore_check, run = restore_run },
  },

  -- After a stop: access comes back only if the database is consistent (never wiped, or recreated).
  on_stop = function(ctx, results)
    local file, drop_begun
    local cuts = {}
    for _, a in ipairs(results.plan_actions) do
      if a.kind == "k8s.create" then file = a.args.file end
      if a.kind == "k8s.scale" and a.args.replicas == 0 and results.ever_started[a.id] then cuts[#cuts + 1] = a end
      if a.kind == "pg.drop_owned" and results.ever_started[a.id] then drop_begun = true end
    end
    local ingress_cut = file ~= nil and backup.exists(file)
    if not ingress_cut and #cuts == 0 then
      return false, file and "no saved ingress: access was not cut" or "access was not cut"
    end
    -- Never wiped means consistent, whatever the database answers now; once the drop has begun,
    -- only a schema seen again proves it.
    local present, err = true, nil
    if drop_begun then present, err = schema_present(ctx) end
    if present == nil then return false, "access stays cut: the database was being wiped and cannot be checked (" .. err .. ")" end
    if not present then
      return false, "access stays cut: the database was wiped and the hub has not recreated its schema yet; " ..
        "fix the cause and run `runbook resume`"
    end
    if #cuts > 0 then
      local restored, rerr = restore_proxies(ctx, cuts)
      if not restored then return false, "access stays cut: the proxy could not be scaled back (" .. rerr .. ")" end
      if #restored == 0 then return true, "access was not cut (the proxy is at its replicas)" end
      return true, "access restored: " .. table.concat(restored, ", ") ..
        " (the database is consistent); `runbook resume` cuts it again and goes on"
    end
    local ok, how = restore_ingress(ctx, file)
    if not ok then return false, "access stays cut: the ingress could not be recreated (" .. how .. ")" end
    return true, how == "already there" and "access was not cut (the ingress is there)"
      or "access restored: the ingress is back (the database is consistent); `runbook resume` cuts it again and goes on"
  end,
}
