-- A broken runbook for tests/99-planning-guard.t: while planning it tries one change (-p attempt=NAME)
-- through a real module (runbook.hub, k8s, pg, gitlab), and with swallow=true (the default) catches the
-- refusal and goes on as if nothing happened. The host must refuse the change and the engine must fail
-- the plan anyway. Some attempts are allowed (a SelfSubjectAccessReview, an exec declared read-only, a
-- SELECT, new local files through runbook.backup, userbackup, copy_from and copy_to): they must go through.
-- Each attempt says how it ended on stderr:
--   attempt NAME: raised: MESSAGE | attempt NAME: returned: VALUE
-- Connections come from the environment (JUPYTERHUB_API_URL, JUPYTERHUB_TOKEN_FILE, GITLAB_URL,
-- GITLAB_TOKEN, GUARD_PG, PGPASSWORD, GUARD_DIR, GUARD_FILE) and --kubeconfig.
local access = require "runbook.k8s.access"
local backup = require "runbook.backup"
local gitlab = require "runbook.gitlab"
local http = require "runbook.http"
local hub = require "runbook.hub"
local k8s = require "runbook.k8s"
local pg = require "runbook.pg"
local userbackup = require "runbook.userbackup"

local NS = "hub-a"         -- tests/fake-k8s/make-seed.py's z2jh namespace
local VICTIM = "guard-cm"  -- a ConfigMap the test made there
local GUARD_USER = "guard" -- a hub user / GitLab user the test made

local function need(name)
  local v = os.getenv(name)
  if not v or v == "" then error("guard-attempt: set " .. name, 0) end
  return v
end

local function hub_client()
  return assert(hub.connect{ token_file = need("JUPYTERHUB_TOKEN_FILE") })
end

local function k8s_client(ctx)
  local c = assert(k8s.connect(ctx.options))
  c.namespace = NS
  return c
end

local function hub_pod(c)
  local pods = assert(c:list("pods", { label_selector = "component=hub" }))
  return assert(pods[1], "no hub pod").metadata.name
end

local function gitlab_client()
  return assert(gitlab.connect{ url = need("GITLAB_URL") })
end

local function gitlab_id()
  local c = gitlab_client()
  for u in c:users() do if u.username == GUARD_USER then return c, u.id end end
  error("no GitLab user " .. GUARD_USER, 0)
end

local function pg_conn()
  return assert(pg.connect(need("GUARD_PG")))
end

local function sql(text)
  return function() return pg_conn():query(text) end
end

local function dir() return need("GUARD_DIR") end

local CM = { apiVersion = "v1", kind = "ConfigMap", metadata = { name = "guard-new" }, data = { a = "1" } }

local ATTEMPTS = {
  -- JupyterHub, through runbook.hub's client
  ["hub.delete_user"] = function() return hub_client():delete_user(GUARD_USER) end,
  ["hub.create_user"] = function() return hub_client():create_user("guard-new") end,
  ["hub.create_users"] = function() return hub_client():create_users({ "guard-new1", "guard-new2" }) end,
  ["hub.add_to_group"] = function() return hub_client():add_to_group("staff", { GUARD_USER }) end,
  ["hub.set_activity"] = function() return hub_client():set_activity(GUARD_USER, "2030-01-01T00:00:00Z") end,
  ["hub.stop_server"] = function() return hub_client():stop_server(GUARD_USER) end,
  ["hub.raw_post"] = function() return hub_client():request("POST", "/users/guard-raw", { json = {} }) end,
  ["hub.raw_patch"] = function() return hub_client():request("PATCH", "/users/" .. GUARD_USER, { json = { admin = true } }) end,
  ["hub.raw_delete"] = function() return hub_client():request("DELETE", "/users/" .. GUARD_USER) end,
  -- A GET that carries a body: libcurl would send it as POST unless told the method.
  ["hub.get_with_body"] = function() return hub_client():request("GET", "/users/guard-sneaky", { json = {} }) end,
  ["hub.read"] = function() return assert(hub_client():user(GUARD_USER)).name end,

  -- Kubernetes, through runbook.k8s
  ["k8s.create"] = function(ctx) return k8s_client(ctx):create("configmaps", CM) end,
  ["k8s.create_dry_run"] = function(ctx) return k8s_client(ctx):create("configmaps", CM, { dry_run = true }) end,
  ["k8s.delete"] = function(ctx) return k8s_client(ctx):delete("configmaps", VICTIM) end,
  ["k8s.delete_dry_run"] = function(ctx) return k8s_client(ctx):delete("configmaps", VICTIM, { dry_run = true }) end,
  ["k8s.patch_strategic"] = function(ctx) return k8s_client(ctx):patch("configmaps", VICTIM, { data = { a = "2" } }) end,
  ["k8s.patch_merge"] = function(ctx)
    return k8s_client(ctx):patch("configmaps", VICTIM, { data = { a = "2" } }, { type = "merge" })
  end,
  ["k8s.patch_json"] = function(ctx)
    return k8s_client(ctx):patch("configmaps", VICTIM, { { op = "replace", path = "/data/a", value = "2" } }, { type = "json" })
  end,
  ["k8s.rollout_restart"] = function(ctx) return k8s_client(ctx):rollout_restart("hub") end,
  ["k8s.exec"] = function(ctx)
    local c = k8s_client(ctx)
    return c:exec(hub_pod(c), { "sh", "-c", "echo changed > /srv/jupyterhub/guard-marker" })
  end,
  ["k8s.copy_to"] = function(ctx)
    local c = k8s_client(ctx)
    return c:copy_to(hub_pod(c), need("GUARD_FILE"), "/srv/jupyterhub/guard-marker")
  end,
  -- a read of the pod into a new local file
  ["k8s.copy_from"] = function(ctx)
    local c = k8s_client(ctx)
    return "sha256 " .. assert(c:copy_from(hub_pod(c), "/srv/jupyterhub/guard-readme", dir() .. "/copied")).sha256
  end,
  ["k8s.raw_put"] = function(ctx)
    return k8s_client(ctx):request("PUT", "/api/v1/namespaces/" .. NS .. "/configmaps/" .. VICTIM,
      { json = { apiVersion = "v1", kind = "ConfigMap", metadata = { name = VICTIM }, data = { a = "2" } } })
  end,
  ["k8s.get_with_body"] = function(ctx)
    return k8s_client(ctx):request("GET", "/api/v1/namespaces/" .. NS .. "/configmaps", { json = CM })
  end,
  -- allowed: a question (SelfSubjectAccessReview), and an exec declared read-only
  ["k8s.access_review"] = function(ctx)
    local allowed = assert(access.can_i(k8s_client(ctx), "delete", "configmaps", { namespace = NS }))
    return "can delete configmaps: " .. tostring(allowed)
  end,
  ["k8s.exec_readonly"] = function(ctx)
    local c = k8s_client(ctx)
    local r = assert(c:exec(hub_pod(c), { "cat", "/srv/jupyterhub/guard-readme" }, { readonly = true }))
    return "exit " .. r.exit_code .. ", read " .. r.stdout
  end,

  -- PostgreSQL, through runbook.pg (the test made table guarded, its sequence, and write_row())
  ["pg.insert"] = sql("INSERT INTO guarded (name) VALUES ('new')"),
  ["pg.update"] = sql("UPDATE guarded SET name = 'changed'"),
  ["pg.delete"] = sql("DELETE FROM guarded"),
  ["pg.drop"] = sql("DROP TABLE guarded"),
  ["pg.create"] = sql("CREATE TABLE guard_new (id int)"),
  ["pg.truncate"] = sql("TRUNCATE guarded"),
  ["pg.copy_from"] = sql("COPY guarded (name) FROM STDIN"),
  ["pg.copy_to_server_file"] = sql("COPY guarded TO '/tmp/guard-copy'"),
  ["pg.nextval"] = sql("SELECT nextval('guarded_id_seq')"),
  ["pg.setval"] = sql("SELECT setval('guarded_id_seq', 1000)"),
  ["pg.writing_function"] = sql("SELECT write_row()"),
  ["pg.writable_cte"] = sql("WITH gone AS (DELETE FROM guarded RETURNING id) SELECT count(*) AS n FROM gone"),
  ["pg.select_for_update"] = sql("SELECT id FROM guarded FOR UPDATE"),
  ["pg.terminate_backend"] = sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'guard-victim'"),
  ["pg.read_write_again"] = sql("SELECT set_config('transaction_read_only', 'off', false)"),
  -- A session lock outlives the statement's rolled-back transaction: it would block other sessions.
  ["pg.advisory_lock"] = function()
    local c = pg_conn()
    assert(c:query("SELECT pg_advisory_lock(4242)"))
    local held = assert(c:query("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"))
    return "advisory locks held: " .. held[1].n
  end,
  ["pg.transaction"] = function()
    return pg_conn():transaction(function(c)
      assert(c:query("SELECT count(*) AS n FROM guarded"))
      return c:query("INSERT INTO guarded (name) VALUES ('in a transaction')")
    end)
  end,
  ["pg.copy_to_local_file"] = function()
    return "rows " .. assert(pg_conn():copy_to("guarded", dir() .. "/guarded.copy")).rows
  end,
  ["pg.select"] = function()
    local rows = assert(pg_conn():query("SELECT count(*) AS n FROM guarded"))
    return "rows " .. rows[1].n
  end,

  -- GitLab, through runbook.gitlab
  ["gitlab.deactivate"] = function() local c, id = gitlab_id(); return c:deactivate(id) end,
  ["gitlab.raw_post"] = function()
    local c, id = gitlab_id()
    return http.request(c:request_options("POST", "/users/" .. id .. "/block"))
  end,

  -- Local files. Planning may create new ones (tests/41 copies a table while planning); what the backup
  -- module promises is that nothing is ever overwritten or replaced, while planning or not.
  ["backup.mkdir"] = function() return backup.mkdir(dir() .. "/made") end,
  ["backup.write"] = function() return "sha256 " .. assert(backup.write(dir() .. "/written.json", "{}")).sha256 end,
  ["backup.write_existing"] = function() return backup.write(dir() .. "/finished/file.json", "changed") end,
  ["backup.publish_existing"] = function() return backup.publish(dir() .. "/made", dir() .. "/finished") end,
  ["userbackup.save"] = function()
    return assert(userbackup.save(dir() .. "/run.backup", { user = { name = GUARD_USER, admin = false } })).file
  end,
  ["backup.read"] = function() return backup.read(dir() .. "/finished/file.json") end,
}

local function shown(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, math.min(n, 2) do parts[#parts + 1] = tostring((select(i, ...))) end
  return (table.concat(parts, ", "):gsub("\n", " "))
end

return {
  summary = "Tries one change while planning through a real module (must be refused)",
  params = {
    { name = "attempt", type = "string", required = true },
    { name = "swallow", type = "boolean", default = true, help = "catch the refusal and carry on" },
  },
  plan = function(ctx)
    local name = ctx.params.attempt
    local fn = ATTEMPTS[name]
    if not fn then error("guard-attempt: unknown attempt " .. name, 0) end
    if not ctx.params.swallow then
      ctx.warn("attempt %s: returned: %s", name, shown(fn(ctx)))
      return
    end
    local results = table.pack(pcall(fn, ctx))
    if results[1] then
      ctx.warn("attempt %s: returned: %s", name, shown(table.unpack(results, 2, results.n)))
    else
      ctx.warn("attempt %s: raised: %s", name, (tostring(results[2]):gsub("\n", " ")))
    end
    ctx:note("pretending nothing happened")
  end,
  actions = { ["guard.noop"] = { run = function() return true end } },
}
