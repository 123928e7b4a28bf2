-- reset-sqlite: give JupyterHub hubs on Kubernetes an empty SQLite database, with a verified backup
-- first; or (mode=restore) put a backed-up database back.
--
-- The seed procedure ("exec into the hub pod, rm jupyterhub.sqlite, kill the pod") loses the database
-- with no way back and is easy to aim at the wrong namespace. Here every namespace is named
-- explicitly, the plan shows the pod and the file found in each, the file is copied out through exec
-- and its SHA-256 compared with the pod's own sha256sum, and the removal happens in one shell step
-- that checks the file still has the backup's checksum: nothing is removed without a verified copy.
--
-- Besides the database, its SQLite sidecar files (-journal, -wal, -shm) are backed up when present and
-- always removed with it: a stale write-ahead log next to a new database would be replayed into it.
--
-- Users' servers: on zero-to-jupyterhub they are pods in the hub's namespace, and a hub restarted
-- on an empty (or another) database has no record of them: they would run on, holding their
-- resources, out of the idle culler's sight, until their user starts a server again. So they are
-- stopped first (user_servers=stop): through the hub's API when it is given (-p hub), so that the
-- spawner cleans up as it always does, then whatever pod remains is deleted directly.
--
-- Every backup gets a manifest.json beside it (where it came from, each file's SHA-256, the run), so
-- that mode=restore can refuse another hub's backup, or a file that is not what was backed up.
local ctxstate = require "runbook.ctxstate"
local backup = require "runbook.backup"
local hub = require "runbook.hub"
local json = require "runbook.json"
local k8s = require "runbook.k8s"
local util = require "runbook.util"

local SIDECARS = { "-journal", "-wal", "-shm" }
local MANIFEST = "manifest.json"
local MANIFEST_FORMAT = "runbook-sqlite-backup/1"


local function human_size(n)
  if n < 1024 then return n .. " bytes" end
  if n < 1024 * 1024 then return string.format("%.1f KiB", n / 1024) end
  if n < 1024 * 1024 * 1024 then return string.format("%.1f MiB", n / (1024 * 1024)) end
  return string.format("%.2f GiB", n / (1024 * 1024 * 1024))
end

local function client_of(ctx) return ctxstate.k8s(ctx) end

-- The hub's API, when -p hub is given; the token is read by runbook.hub (token_file or
-- JUPYTERHUB_API_TOKEN), as for every runbook that talks to a hub.
local function hub_of(ctx)
  return ctxstate.once(ctx, "hub", function()
    local p = ctx.params
    local client, err = hub.connect{ url = p.hub, token_file = p.token_file, ca_file = p.ca_file }
    if not client then util.fail(2, err) end -- no token, unreadable token file: the operator's to fix
    local info
    info, err = client:info()
    if not info then util.fail(1, err) end -- the hub is down or refuses us: a message, not a traceback
    ctx.state.hub_info = info
    return client
  end)
end

local function default_backup_dir()
  local state = os.getenv("XDG_STATE_HOME")
  if not state or state == "" then state = (os.getenv("HOME") or ".") .. "/.local/state" end
  return state .. "/runbook/backups"
end

-- The namespaces to work on: -p namespaces, -p namespace_selector, or -n; never a silent default.
local function namespaces(ctx)
  if ctx.state.namespaces then return ctx.state.namespaces end
  local p, client = ctx.params, client_of(ctx)
  local list = {}
  if p.namespace_selector and p.namespace_selector ~= "" then
    local found, err = client:list("namespaces", { label_selector = p.namespace_selector })
    if not found then error(err, 0) end
    for _, ns in ipairs(found) do list[#list + 1] = ns.metadata.name end
    table.sort(list)
    if #list == 0 then util.fail(1, "no namespace matches the selector %s in context %s", p.namespace_selector, client.context) end
  elseif p.namespaces and #p.namespaces > 0 then
    list = p.namespaces
  elseif ctx.options.namespace and ctx.options.namespace ~= "" then
    list = { ctx.options.namespace }
  else
    util.fail(2, "name the hub namespaces: -n NAMESPACE, -p namespaces=a,b or -p namespace_selector=LABELS " ..
      "(the context's namespace is never assumed for a destructive runbook)")
  end
  if p.mode == "restore" and #list ~= 1 then
    util.fail(2, "mode=restore puts one backup back into one namespace; name exactly one (got %s)", table.concat(list, ", "))
  end
  ctx.state.namespaces = list
  return list
end

-- The one Running, Ready hub pod of a namespace, or a failure naming what was found instead.
local function hub_pod(ctx, namespace)
  local p, client = ctx.params, client_of(ctx)
  local ns, err = client:get("namespaces", namespace)
  if ns == nil then error(err, 0) end
  if ns == false then
    util.fail(1, "namespace %s does not exist in context %s (%s)", namespace, client.context, client.server)
  end
  local pods
  pods, err = client:list("pods", { namespace = namespace, label_selector = p.pod_selector })
  if not pods then error(err, 0) end
  if #pods == 0 then
    util.fail(1, "no hub pod in namespace %s: no pod matches %s (is this a hub namespace? see -p pod_selector)",
      namespace, p.pod_selector)
  end
  if #pods > 1 then
    local names = {}
    for _, pod in ipairs(pods) do names[#names + 1] = pod.metadata.name .. " (" .. k8s.pod_state(pod) .. ")" end
    util.fail(1, "%d pods match %s in namespace %s: %s; expected exactly one hub (a rollout under way? wait and plan again)",
      #pods, p.pod_selector, namespace, table.concat(names, ", "))
  end
  local pod = pods[1]
  if not k8s.is_ready(pod) then
    util.fail(1, "the hub pod %s/%s is %s, not Running and Ready", namespace, pod.metadata.name, k8s.pod_state(pod))
  end
  local containers = {}
  for _, c in ipairs(pod.spec.containers or {}) do
    if c.name == p.container then return pod end
    containers[#containers + 1] = c.name
  end
  util.fail(1, "the hub pod %s/%s has no container '%s' (it has: %s); see -p container", namespace, pod.metadata.name,
    p.container, table.concat(containers, ", "))
end

-- The Deployment behind a pod (pod -> ReplicaSet -> Deployment), or nil.
local function deployment_of(ctx, namespace, pod)
  local client = client_of(ctx)
  for _, ref in ipairs(pod.metadata.ownerReferences or {}) do
    if ref.kind == "ReplicaSet" then
      local rs, err = client:get("replicasets", ref.name, { namespace = namespace })
      if rs == nil then error(err, 0) end
      for _, owner in ipairs(rs and rs.metadata.ownerReferences or {}) do
        if owner.kind == "Deployment" then return owner.name end
      end
    end
  end
end

-- {path -> size} of the database and its sidecars present in the pod (read-only exec of stat).
local function database_files(ctx, namespace, pod_name, database)
  local client = client_of(ctx)
  local paths = { database }
  for _, suffix in ipairs(SIDECARS) do paths[#paths + 1] = database .. suffix end
  local command = { "stat", "-L", "-c", "%s|%F|%n", "--" }
  for _, path in ipairs(paths) do command[#command + 1] = path end
  local r, err = client:exec(pod_name, command, { namespace = namespace, container = ctx.params.container, readonly = true })
  if not r then error(err, 0) end
  local files = {}
  for line in r.stdout:gmatch("[^\n]+") do
    local size, kind, path = line:match("^(%d+)|([^|]*)|(.*)$")
    if size then files[path] = { size = math.tointeger(tonumber(size)), kind = kind } end
  end
  if r.exit_code ~= 0 and not files[database] and not r.stderr:find("No such file", 1, true) then
    error(string.format("stat in %s/%s failed (status %d): %s", namespace, pod_name, r.exit_code, util.trim(r.stderr)), 0)
  end
  if files[database] and files[database].kind ~= "regular file" then
    util.fail(1, "%s in %s/%s is a %s, not a database file", database, namespace, pod_name, files[database].kind)
  end
  return files
end

local function describe_files(files, database)
  local main = files[database]
  local extra = {}
  for _, suffix in ipairs(SIDECARS) do
    if files[database .. suffix] then extra[#extra + 1] = suffix .. " " .. human_size(files[database .. suffix].size) end
  end
  return human_size(main.size) .. (#extra > 0 and (" (with " .. table.concat(extra, ", ") .. ")") or "")
end

-- ---- plan ----

-- reset_of: the removal's database and backup, when the restart follows one (see check_restart).
local function plan_restart(ctx, namespace, pod, deployment, why, reset_of)
  local p = ctx.params
  reset_of = reset_of or {}
  if p.restart == "rollout" then
    if not deployment then
      util.fail(1, "the hub pod %s/%s is not managed by a Deployment; use -p restart=delete-pod", namespace, pod.metadata.name)
    end
    ctx:add{ kind = "k8s.restart", target = "deployments/" .. namespace .. "/" .. deployment,
             reason = "rollout restart, then wait until the new hub pod is Ready" .. why,
             args = { namespace = namespace, deployment = deployment, pod = pod.metadata.name, method = "rollout",
                      container = p.container, database = reset_of.database, backup = reset_of.backup } }
  else
    if not pod.metadata.ownerReferences then
      util.fail(1, "the hub pod %s/%s has no owner: deleting it would not bring the hub back", namespace, pod.metadata.name)
    end
    ctx:add{ kind = "k8s.restart", target = "pods/" .. namespace .. "/" .. pod.metadata.name,
             reason = "delete the pod, then wait until its replacement is Ready" .. why,
             args = { namespace = namespace, pod = pod.metadata.name, method = "delete-pod",
                      container = p.container, database = reset_of.database, backup = reset_of.backup } }
  end
  ctx.state.restarts = (ctx.state.restarts or 0) + 1
end

-- The backup directory of a namespace for this plan: CONTEXT/NAMESPACE/TIME[-stage].
local function backup_paths(ctx, namespace, files, database, stage)
  local client = client_of(ctx)
  local stamp = os.date("!%Y%m%dT%H%M%SZ", math.floor(ctx.now))
  local dir = string.format("%s/%s/%s/%s%s", ctx.params.backup_dir ~= "" and ctx.params.backup_dir or default_backup_dir(),
    client.context, namespace, stamp, stage and ("-" .. stage) or "")
  local name = database:match("[^/]+$")
  local list = {}
  for _, suffix in ipairs({ "", table.unpack(SIDECARS) }) do
    if files[database .. suffix] then
      list[#list + 1] = { path = database .. suffix, size = files[database .. suffix].size, backup = dir .. "/" .. name .. suffix }
    end
  end
  return list, dir
end

-- What a backup's manifest records about where it comes from, known when the plan is made.
local function manifest_origin(ctx, namespace, pod, deployment)
  local client, p = client_of(ctx), ctx.params
  local image
  for _, c in ipairs(pod.spec.containers or {}) do
    if c.name == p.container then image = c.image end
  end
  local info = ctx.state.hub_info
  return {
    cluster = { context = client.context, server = client.server },
    namespace = namespace, deployment = deployment, pod = pod.metadata.name, pod_uid = pod.metadata.uid,
    container = p.container, database = p.database,
    hub_image = image,
    -- z2jh's image tag is the chart's version; the hub's own version comes only from its API.
    hub_image_tag = image and image:match(":([%w][%w._-]*)$") or nil,
    hub_version = info and info.version or nil,
    hub_url = info and ctx.state.hub.api_url or nil,
  }
end

local function add_backup(ctx, namespace, pod, files, stage, origin, reason)
  local p = ctx.params
  local copies, dir = backup_paths(ctx, namespace, files, p.database, stage and stage.dir)
  local manifest = util.shallow_copy(origin)
  manifest.stage = stage and stage.text or (p.mode == "restore" and "the database before the restore replaced it"
    or "the database before its removal")
  ctx:add{ kind = "k8s.backup", target = "pods/" .. namespace .. "/" .. pod.metadata.name .. ":" .. p.database,
           reason = reason(describe_files(files, p.database), dir),
           args = { namespace = namespace, pod = pod.metadata.name, container = p.container, uid = pod.metadata.uid,
                    files = copies, manifest = manifest } }
  return copies, dir
end

-- The user named by a user server pod: KubeSpawner's annotation holds the exact name, its label an
-- escaped one (the same for plain names such as alice).
local function pod_owner(pod)
  local annotations, labels = pod.metadata.annotations or {}, pod.metadata.labels or {}
  return annotations["hub.jupyter.org/username"] or labels["hub.jupyter.org/username"],
    annotations["hub.jupyter.org/servername"] or labels["hub.jupyter.org/servername"] or ""
end

local function server_key(user, server) return tostring(user) .. "\0" .. (server or "") end

-- Controllers bring their pods back: a pod one of them owns is not a user's server (KubeSpawner's pods
-- have no owner), whatever labels it carries.
local function controller_of(pod)
  for _, ref in ipairs(pod.metadata.ownerReferences or {}) do
    if ref.controller then return ref.kind .. " " .. ref.name end
  end
end

-- The hub's running servers: {key -> {user=, server=, ready=, pending=}}, in a list too.
local function hub_servers(ctx)
  local client = hub_of(ctx)
  local found, list = {}, {}
  local ok, err = pcall(function()
    for user in client:users{ state = "active" } do
      if not hub.can_see_servers(user) then
        util.fail(1, "the hub token cannot see users' servers (the user model has no 'servers'); give it the " ..
          "admin:servers scope (it also needs it to stop them)")
      end
      for _, name in ipairs(util.sorted_keys(user.servers)) do
        local s = user.servers[name]
        local entry = { user = user.name, server = name, ready = s.ready == true,
                        pending = s.pending ~= json.null and s.pending or nil }
        found[server_key(user.name, name)] = entry
        list[#list + 1] = entry
      end
    end
  end)
  if not ok then
    if util.is_failure(err) then error(err, 0) end
    util.fail(1, "%s", tostring(err))
  end
  return found, list
end

local function server_label(user, server)
  return server ~= "" and (user .. "'s server '" .. server .. "'") or (user .. "'s server")
end

local function stop_target(user, server)
  return "users/" .. user .. (server ~= "" and ("/servers/" .. server) or "/server")
end

-- The user server pods of a namespace and the actions that would remove them (user_servers=stop),
-- or the note that they stay (keep). Adds facts and notes; returns the actions, for the caller to
-- add in their place (after the first backup).
local function plan_servers(ctx, namespace, hub_pod_uid)
  local p, client = ctx.params, client_of(ctx)
  local found, err = client:list("pods", { namespace = namespace, label_selector = p.server_selector })
  if not found then error(err, 0) end
  local pods = {}
  for _, pod in ipairs(found) do
    local owner = controller_of(pod)
    if pod.metadata.uid == hub_pod_uid then
      ctx:skip{ target = "pods/" .. namespace .. "/" .. pod.metadata.name, reason = "the hub pod itself, not a user server" }
    elseif owner then
      ctx:skip{ target = "pods/" .. namespace .. "/" .. pod.metadata.name, group = "managed by a controller, not a user server",
                reason = "managed by " .. owner .. ", not a user server" }
    else
      pods[#pods + 1] = pod
    end
  end
  table.sort(pods, function(a, b) return a.metadata.name < b.metadata.name end)
  local names = {}
  for _, pod in ipairs(pods) do names[#names + 1] = pod.metadata.name .. " (" .. k8s.pod_state(pod) .. ")" end
  ctx:fact("user servers in " .. namespace, #pods == 0 and ("none (no pod matches " .. p.server_selector .. ")")
    or (util.count(#pods, "pod") .. ": " .. table.concat(names, ", ")))
  -- The hub's servers with a pod here. If it runs servers and none has a pod here, it is not this
  -- namespace's hub: refused, whatever user_servers says (the manifest would name its version too).
  local by_hub = {}
  if p.hub then
    local running, listed = hub_servers(ctx)
    for _, pod in ipairs(pods) do
      local user, server = pod_owner(pod)
      local entry = user and running[server_key(user, server)]
      -- A server pending its spawn cannot be stopped through JupyterHub 3's API (400): its pod is deleted.
      if entry and (entry.ready or entry.pending == "stop") then
        local key = server_key(user, server)
        if not by_hub[key] then
          by_hub[key] = { user = user, server = server, pods = {} }
          by_hub[#by_hub + 1] = by_hub[key]
        end
        by_hub[key].pods[#by_hub[key].pods + 1] = { name = pod.metadata.name, uid = pod.metadata.uid }
      end
    end
    local elsewhere = {}
    for _, s in ipairs(listed) do
      if s.ready and not by_hub[server_key(s.user, s.server)] then elsewhere[#elsewhere + 1] = server_label(s.user, s.server) end
    end
    if #by_hub == 0 and #elsewhere > 0 then
      util.fail(2, "the hub at %s runs %s (%s) and namespace %s has a pod for none of them: is -p hub the hub of %s?",
        hub_of(ctx).api_url, util.count(#elsewhere, "server"), table.concat(elsewhere, ", "), namespace, namespace)
    end
    if #elsewhere > 0 then
      ctx:note(string.format("the hub runs %s with no pod in %s (%s): not stopped (their pods may be in another namespace)",
        util.count(#elsewhere, "server"), namespace, table.concat(elsewhere, ", ")))
    end
  end
  local actions = {}
  if #pods == 0 then return actions end
  if p.user_servers == "keep" then
    ctx:note(string.format("user_servers=keep: %s in %s keep running (%s). The restarted hub has no record of them: "
      .. "they hold their resources until their users start a server again, and the idle culler cannot see them",
      util.count(#pods, "user server pod"), namespace, table.concat(names, ", ")))
    ctx.state.kept = (ctx.state.kept or 0) + #pods
    return actions
  end
  -- Through the hub first: its spawner stops the server as it always does (and the hub records it).
  for _, s in ipairs(by_hub) do
    local pod_names = {}
    for _, pod in ipairs(s.pods) do pod_names[#pod_names + 1] = pod.name end
    actions[#actions + 1] = {
      kind = "hub.stop_server", target = stop_target(s.user, s.server),
      reason = string.format("stop %s through the hub (its spawner deletes %s), then wait until it is gone",
        server_label(s.user, s.server), table.concat(pod_names, ", ")),
      args = { namespace = namespace, user = s.user, server = s.server, pods = s.pods } }
  end
  for _, pod in ipairs(pods) do
    local user, server = pod_owner(pod)
    if not (user and by_hub[server_key(user, server)]) then
      local whose = user and server_label(user, server) or "a pod without a hub.jupyter.org/username"
      local why = p.hub and " (not a server the hub can stop)" or ""
      actions[#actions + 1] = {
        kind = "k8s.delete", target = "pods/" .. namespace .. "/" .. pod.metadata.name,
        reason = string.format("%s%s: delete the pod, then wait until it is gone", whose, why),
        args = { namespace = namespace, pod = pod.metadata.name, uid = pod.metadata.uid, user = user, server = server } }
    end
  end
  ctx.state.stopped = (ctx.state.stopped or 0) + #actions
  ctx.state.stopped_by_hub = (ctx.state.stopped_by_hub or 0) + #by_hub
  return actions
end

-- The backup to restore, checked against its manifest: the file must be the one backed up (sha256),
-- and from this target (cluster and namespace) unless allow_foreign_backup says otherwise.
local function check_manifest(ctx, namespace, source, sum)
  local p, client = ctx.params, client_of(ctx)
  local dir, name = source:match("^(.*)/([^/]+)$")
  local path = (dir ~= "" and dir or "") .. "/" .. MANIFEST
  if not backup.exists(path) then
    ctx:fact("backup made from", "unknown: no " .. MANIFEST .. " beside it")
    ctx:note(string.format("%s has no %s beside it (a backup made by an older runbook, or copied by hand): runbook "
      .. "cannot check that it is a backup of this hub (%s in context %s); make sure it is", source, MANIFEST, namespace,
      client.context))
    return
  end
  local text, err = backup.read(path)
  if not text then util.fail(2, "%s", err) end
  local m
  m, err = json.decode(text)
  if type(m) ~= "table" or m.format ~= MANIFEST_FORMAT or type(m.files) ~= "table" or type(m.cluster) ~= "table" then
    util.fail(2, "%s is not a reset-sqlite backup manifest (%s); move it aside to restore without the check",
      path, err or ("format " .. tostring(type(m) == "table" and m.format or nil)))
  end
  local entry
  for _, f in ipairs(m.files) do
    if type(f) == "table" and f.name == name then entry = f end
  end
  if not entry then util.fail(2, "%s does not list %s: it is not the manifest of this file", path, name) end
  if entry.sha256 ~= sum then
    util.fail(2, "%s does not match its manifest %s (sha256 %s, the manifest says %s): it changed since the backup, or is "
      .. "not the file backed up; refusing to restore it", source, path, sum:sub(1, 16), tostring(entry.sha256):sub(1, 16))
  end
  local from = string.format("namespace %s in context %s (server %s)", tostring(m.namespace), tostring(m.cluster.context),
    tostring(m.cluster.server))
  local here = string.format("namespace %s in context %s (server %s)", namespace, client.context, client.server)
  ctx:fact("backup made from", string.format("%s, pod %s, at %s (%s)", from, tostring(m.pod), tostring(m.created),
    tostring(m.stage)))
  if m.cluster.server ~= client.server or m.namespace ~= namespace then
    if not p.allow_foreign_backup then
      util.fail(2, "%s is a backup of %s, not of %s: restoring it gives this hub another hub's users and tokens. "
        .. "If that is what you want, pass -p allow_foreign_backup=true", source, from, here)
    end
    ctx:note(string.format("allow_foreign_backup=true overrides the check that the backup is this hub's: the database of %s "
      .. "goes into %s", from, here))
  end
end

-- One namespace: back up, stop the users' servers, remove (or restore) the database, restart the hub.
--
-- The order, and why: the first backup comes before anything changes (a verified copy with every
-- server's record in it: the way back). Then the users' servers go, while the hub still has its
-- database: stopping them through the hub lets it record that, and removing them before the restart
-- means no pod outlives the hub that knew it (with the database removed first, a hub that opens a new
-- connection would find an empty file and could not stop anything). Stopping servers makes the hub
-- write to its database, so it no longer matches the first backup: a second verified backup is
-- taken right before the removal, which checks against that one. Nothing is removed without a
-- verified copy of exactly what is removed, and the window in which the hub could write something
-- unbacked stays as short as without servers. The restart comes last.
local function plan_namespace(ctx, namespace)
  local p = ctx.params
  local restore = p.mode == "restore"
  local sum, size
  if restore then
    if p.restore_from:match("%.partial%-%x+$") then
      -- what copy_from leaves behind when killed mid-stream: an incomplete copy, never a backup
      util.fail(2, "%s is an incomplete copy left by an interrupted backup, not a backup; restore from the file without .partial-...",
        p.restore_from)
    end
    sum, size = k8s.file_sha256(p.restore_from)
    if not sum then util.fail(2, "cannot use the backup to restore: %s", size) end
    check_manifest(ctx, namespace, p.restore_from, sum)
  end
  local pod = hub_pod(ctx, namespace)
  local pod_name = pod.metadata.name
  local files = database_files(ctx, namespace, pod_name, p.database)
  local deployment = deployment_of(ctx, namespace, pod)
  ctx:fact("hub pod in " .. namespace, string.format("%s (%s)%s", pod_name, k8s.pod_state(pod),
    deployment and (", deployment " .. deployment) or ""))
  if restore then
    ctx:fact("backup to restore", string.format("%s, %s, sha256 %s", p.restore_from, human_size(size), sum:sub(1, 16)))
  end
  if not files[p.database] then
    ctx:fact("database in " .. namespace, "none at " .. p.database)
    if not restore then
      ctx:skip{ target = "pods/" .. namespace .. "/" .. pod_name, reason = "no database at " .. p.database .. " (already reset?)" }
      return
    end
  else
    ctx:fact("database in " .. namespace, p.database .. ", " .. describe_files(files, p.database)
      .. (restore and " (will be replaced)" or ""))
  end
  local origin = manifest_origin(ctx, namespace, pod, deployment)
  local server_actions = plan_servers(ctx, namespace, pod.metadata.uid)
  local stopping = #server_actions > 0
  local copies
  if files[p.database] then
    copies = add_backup(ctx, namespace, pod, files,
      stopping and { text = "the database before the users' servers were stopped" } or nil, origin,
      restore and function(what, to) return "keep the database being replaced: copy " .. what .. " to " .. to .. "/" end
      or function(what, to) return string.format("copy %s to %s/, verified against the pod's sha256sum", what, to) end)
  end
  for _, action in ipairs(server_actions) do ctx:add(action) end
  if stopping and files[p.database] then
    copies = add_backup(ctx, namespace, pod, files, { dir = "servers-stopped",
      text = restore and "the database replaced, after the users' servers were stopped"
        or "the database removed, after the users' servers were stopped" }, origin,
      function(_, to)
        return "copy the database again once the servers are stopped (the hub may have recorded that in it) to "
          .. to .. "/, verified against the pod's sha256sum"
      end)
  end
  local args = { namespace = namespace, pod = pod_name, container = p.container, uid = pod.metadata.uid }
  if restore then
    args.database, args.source, args.sha256, args.size = p.database, p.restore_from, sum, size
    ctx:add{ kind = "k8s.exec", target = "pods/" .. namespace .. "/" .. pod_name,
             reason = string.format("put %s (%s) back as %s, checked by sha256sum", p.restore_from, human_size(size), p.database),
             args = args }
    if files[p.database] then
      ctx.state.replaced = (ctx.state.replaced or 0) + 1
    else
      ctx.state.put_back = (ctx.state.put_back or 0) + 1
    end
    plan_restart(ctx, namespace, pod, deployment, " (the hub opens the restored database)")
    return
  end
  args.database, args.backup = p.database, copies[1].backup
  ctx:add{ kind = "k8s.exec", target = "pods/" .. namespace .. "/" .. pod_name,
           reason = "rm " .. p.database .. " and its -journal/-wal/-shm, only if it still matches the verified backup",
           args = args }
  ctx.state.removed = (ctx.state.removed or 0) + 1
  plan_restart(ctx, namespace, pod, deployment, " (the hub starts with an empty database)",
    { database = p.database, backup = copies[1].backup })
end

local function plan_effects(ctx)
  local st = ctx.state
  if (st.removed or 0) > 0 then ctx:effect(util.count(st.removed, "hub database") .. " removed (backed up first)") end
  if (st.replaced or 0) > 0 then ctx:effect(util.count(st.replaced, "hub database") .. " replaced (backed up first)") end
  if (st.put_back or 0) > 0 then ctx:effect(util.count(st.put_back, "hub database") .. " restored (there was none)") end
  if (st.stopped or 0) > 0 then
    ctx:effect(util.count(st.stopped, "user server") .. " stopped"
      .. ((st.stopped_by_hub or 0) > 0 and string.format(" (%d through the hub)", st.stopped_by_hub) or ""))
    ctx:consequence(string.format("%s stopped: whatever their users have only in running kernels is lost",
      util.count(st.stopped, "user server")))
  end
  if (st.kept or 0) > 0 then ctx:effect(util.count(st.kept, "user server") .. " left running (user_servers=keep)") end
  if (st.restarts or 0) > 0 then ctx:effect(util.count(st.restarts, "hub") .. " restarted") end
end

-- ---- apply ----

-- The planned pod, still there and still the same pod (same uid): true | false, why | nil, message
local function same_pod(ctx, action)
  local a = action.args
  local pod, err = client_of(ctx):get("pods", a.pod, { namespace = a.namespace })
  if pod == nil then return nil, err end
  if pod == false then return false, "the hub pod " .. a.pod .. " is gone since the plan; make a new plan" end
  if pod.metadata.uid ~= a.uid then return false, "the hub pod " .. a.pod .. " was replaced since the plan; make a new plan" end
  if not k8s.is_ready(pod) then return false, "the hub pod is " .. k8s.pod_state(pod) .. " now" end
  return true
end

local function exec_opts(a, extra)
  local o = { namespace = a.namespace, container = a.container }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

-- The manifest beside a verified backup: where it comes from, each file's SHA-256, the run. Written
-- under a name of its own (manifest.json.partial-N), then renamed, so a manifest.json is always whole.
-- A resumed run finds the interrupted run's manifest and keeps it if it describes these very files.
local function write_manifest(ctx, a)
  local dir = a.files[1].backup:match("^(.*)/")
  local path = dir .. "/" .. MANIFEST
  local files = json.array()
  for _, f in ipairs(a.files) do
    local sum, size = k8s.file_sha256(f.backup)
    if sum then files[#files + 1] = { name = f.backup:match("[^/]+$"), path = f.path, size = size, sha256 = sum } end
  end
  if backup.exists(path) then
    local text, err = backup.read(path)
    if not text then return nil, err end
    local m = json.decode(text)
    local listed = {}
    for _, f in ipairs(type(m) == "table" and type(m.files) == "table" and m.files or {}) do
      if type(f) == "table" and f.name then listed[f.name] = f.sha256 end
    end
    for _, f in ipairs(files) do
      if listed[f.name] ~= f.sha256 then
        return nil, path .. " exists but does not describe the backup beside it; move it aside and resume"
      end
    end
    return MANIFEST .. " (already written)"
  end
  local doc = util.shallow_copy(a.manifest or {})
  doc.format, doc.runbook, doc.files = MANIFEST_FORMAT, ctx.runbook, files
  doc.created = util.format_time(ctx.time())
  doc.run = {
    name = ctx.run_name,
    journal = ctx.run_backup_dir and (ctx.run_backup_dir:gsub("%.backup$", ".journal")) or nil,
    plan_created = ctx.plan_time and util.format_time(ctx.plan_time) or nil,
  }
  local partial, err = backup.unused_name(path .. ".partial")
  if not partial then return nil, err end
  local saved
  saved, err = backup.write(partial, json.pretty(doc) .. "\n")
  if not saved then return nil, err end
  local published
  published, err = backup.publish(partial, path)
  if not published then return nil, err end
  return MANIFEST .. " written"
end

local function run_backup(ctx, action)
  local a, client = action.args, client_of(ctx)
  local done = {}
  for i, f in ipairs(a.files) do
    local existing = k8s.file_sha256(f.backup)
    if existing then
      -- A resumed apply: the copy from the interrupted run counts if it matches the pod's file.
      local remote, err = client:remote_sha256(a.pod, f.path, exec_opts(a))
      if not remote then return nil, err end
      if remote ~= existing then
        return nil, string.format("%s exists but does not match %s in the pod; move it aside and resume", f.backup, f.path)
      end
      done[#done + 1] = f.path:match("[^/]+$") .. " (already copied)"
    else
      local copy, err = client:copy_from(a.pod, f.path, f.backup, exec_opts(a, { make_dirs = true }))
      if not copy then
        if i > 1 and err:find("No such file", 1, true) then
          done[#done + 1] = f.path:match("[^/]+$") .. " (gone meanwhile)" -- a journal comes and goes with transactions
        else
          return nil, err
        end
      else
        done[#done + 1] = string.format("%s %s sha256 %s", f.path:match("[^/]+$"), human_size(copy.size), copy.sha256:sub(1, 16))
      end
    end
  end
  -- A copy killed mid-stream (an earlier attempt of this action) left its partial file beside the
  -- backup; the resumed copy wrote a new one. Say so, so that nobody takes it for a backup and it
  -- does not stay there unnoticed (it can be as large as the database).
  local leftovers = {}
  for _, f in ipairs(a.files) do
    for _, name in ipairs(k8s.leftover_partials(f.backup)) do leftovers[#leftovers + 1] = name end
  end
  local dir = a.files[1].backup:match("^(.*)/")
  for _, name in ipairs(k8s.leftover_partials(dir .. "/" .. MANIFEST)) do leftovers[#leftovers + 1] = name end
  local note = #leftovers > 0 and ("; left over from an interrupted copy, incomplete, not a backup (delete it): "
    .. table.concat(leftovers, ", ")) or ""
  local manifest, err = write_manifest(ctx, a)
  if not manifest then return nil, err end
  return true, "verified: " .. table.concat(done, "; ") .. " in " .. dir .. ", " .. manifest .. note
end

-- Removes the database only if it still has the backup's checksum, in one shell step in the pod.
local REMOVE_SCRIPT = [[
db=$1 expected=$2
if [ ! -e "$db" ]; then rm -f -- "$db-journal" "$db-wal" "$db-shm"; echo gone; exit 0; fi
actual=$(sha256sum -- "$db") || exit 3
if [ "${actual%% *}" != "$expected" ]; then echo "sha256 is now ${actual%% *}" >&2; exit 9; fi
rm -f -- "$db" "$db-journal" "$db-wal" "$db-shm" && echo removed
]]

local function check_remove(ctx, action)
  local a, client = action.args, client_of(ctx)
  local fine, why = same_pod(ctx, action)
  if not fine then return fine, why end
  local local_sum = k8s.file_sha256(a.backup)
  if not local_sum then return nil, "no backup at " .. a.backup .. ": nothing is removed without a verified backup" end
  local remote, err, detail = client:remote_sha256(a.pod, a.database, exec_opts(a))
  if not remote then
    if detail and detail.exit_code then return true end -- gone already (an interrupted apply): run finishes the sidecars
    return nil, err
  end
  if remote ~= local_sum then
    return nil, string.format("%s changed since its backup (sha256 %s now, %s backed up): nothing removed; make a new plan",
      a.database, remote:sub(1, 12), local_sum:sub(1, 12))
  end
  return true
end

local function run_remove(ctx, action)
  local a, client = action.args, client_of(ctx)
  local local_sum = k8s.file_sha256(a.backup)
  if not local_sum then return nil, "no backup at " .. a.backup .. ": nothing removed" end
  local r, err = client:exec(a.pod, { "sh", "-c", REMOVE_SCRIPT, "sh", a.database, local_sum }, exec_opts(a))
  if not r then return nil, err end
  if r.exit_code == 9 then
    return nil, a.database .. " changed between the check and the removal (" .. util.trim(r.stderr) .. "): nothing removed"
  end
  if r.exit_code ~= 0 then
    return nil, string.format("removing %s failed (status %d): %s", a.database, r.exit_code, util.trim(r.stderr))
  end
  if util.trim(r.stdout) == "gone" then return true, "already removed" end
  return true, "removed " .. a.database .. " (backup " .. a.backup .. ")"
end

local function check_restore(ctx, action)
  local a = action.args
  local fine, why = same_pod(ctx, action)
  if not fine then return fine, why end
  local sum = k8s.file_sha256(a.source)
  if sum ~= a.sha256 then return nil, a.source .. " is missing or changed since the plan" end
  return true
end

local function run_restore(ctx, action)
  local a, client = action.args, client_of(ctx)
  local replaced = {}
  for _, suffix in ipairs(SIDECARS) do replaced[#replaced + 1] = a.database .. suffix end
  local copy, err = client:copy_to(a.pod, a.source, a.database, exec_opts(a, { replace_also = replaced }))
  if not copy then return nil, err end
  return true, string.format("%s restored (%s, sha256 %s)", a.database, human_size(copy.size), copy.sha256:sub(1, 16))
end

-- ---- users' servers ----

-- "running" | "stopping" | "pending" | nil (not running), from a user model.
local function server_state_of(user, server)
  local s = type(user.servers) == "table" and user.servers[server] or nil
  if type(s) ~= "table" then return nil end
  if s.pending == "stop" then return "stopping" end
  if s.pending ~= nil and s.pending ~= json.null then return "pending" end
  if s.ready then return "running" end
  return nil
end

-- Waits until each pod is gone (or deadline): the pods still there.
local function pods_left(ctx, namespace, pods, deadline)
  local left = {}
  for _, pod in ipairs(pods) do
    local gone = client_of(ctx):wait_gone("pods", pod.name, { namespace = namespace,
      timeout = math.max(1, deadline - ctx.time()) })
    if not gone then left[#left + 1] = pod end
  end
  return left
end

-- Deletes a pod (only the planned one: uid precondition) and waits until it is gone.
-- -> true, "deleted" | true, "already gone" | nil, message
local function delete_pod(ctx, namespace, name, uid)
  local client = client_of(ctx)
  local ok, how, detail = client:delete("pods", name, { namespace = namespace, preconditions = { uid = uid } })
  if not ok then
    if type(detail) == "table" and detail.code == 409 then
      return nil, "pods/" .. namespace .. "/" .. name .. " is another pod now (its user started again?): not deleted"
    end
    return nil, how
  end
  if how == "already gone" then return true, how end
  local gone, err = client:wait_gone("pods", name, { namespace = namespace, timeout = ctx.params.timeout })
  if not gone then return nil, err end
  return true, "deleted"
end

-- Stops a server through the hub, waits until the hub says it stopped and its pods are gone; a pod
-- that outlives the wait is deleted directly. Resumable: a server stopped already is not stopped again.
local function run_stop(ctx, action)
  local a, client = action.args, hub_of(ctx)
  local label = server_label(a.user, a.server)
  local deadline = ctx.time() + ctx.params.timeout
  local user, err = client:user(a.user)
  if user == nil then return nil, err end
  local state = user and server_state_of(user, a.server)
  local did = "not running any more"
  if state == "pending" then
    return false, label .. " is starting again since the plan: not stopped; make a new plan"
  elseif state then
    local ok, how = client:stop_server(a.user, a.server)
    if not ok then return nil, how end
    did = "stopped by the hub"
    while state do
      if ctx.time() >= deadline then
        return nil, string.format("the hub did not stop %s within %ds", label, ctx.params.timeout)
      end
      if not util.sleep(0.5) then return nil, "interrupted while waiting for the hub to stop " .. label end
      user, err = client:user(a.user)
      if user == nil then return nil, err end
      state = user and server_state_of(user, a.server)
    end
  end
  local names = {}
  for _, pod in ipairs(a.pods) do names[#names + 1] = pod.name end
  local left = pods_left(ctx, a.namespace, a.pods, deadline)
  if #left == 0 then
    return did == "stopped by the hub" or "already", string.format("%s; %s gone", did, table.concat(names, ", "))
  end
  -- The spawner left it (or the hub had lost track of it): deleted directly, as if the hub had not run it.
  local deleted = {}
  for _, pod in ipairs(left) do
    local ok, how = delete_pod(ctx, a.namespace, pod.name, pod.uid)
    if not ok then return nil, how end
    deleted[#deleted + 1] = pod.name
  end
  return true, string.format("%s, but %s stayed: deleted it", did, table.concat(deleted, ", "))
end

local function check_delete(ctx, action)
  local a = action.args
  local pod, err = client_of(ctx):get("pods", a.pod, { namespace = a.namespace })
  if pod == nil then return nil, err end
  if pod and pod.metadata.uid ~= a.uid then
    return false, "a new pod of that name runs since the plan (its user started again?): not deleted; make a new plan"
  end
  return true
end

local function run_delete(ctx, action)
  local a = action.args
  local ok, how = delete_pod(ctx, a.namespace, a.pod, a.uid)
  if not ok then return nil, how end
  if how == "already gone" then return "already", "gone already" end
  return true, "deleted; gone"
end

-- Whether an interrupted earlier run of this action already asked for the rollout (killed after
-- the PATCH was answered, before the journal said so): a second PATCH would restart the hub again.
local function restarted_by_earlier_run(ctx, action, client)
  local since = ctx.started_earlier(action)
  if not since then return false end
  local a = action.args
  local d, err = client:get("deployments", a.deployment, { namespace = a.namespace })
  if d == nil then return nil, err end
  local at = d and k8s.restarted_at(d)
  return at ~= nil and at >= since
end

local function run_restart(ctx, action)
  local a, client = action.args, client_of(ctx)
  if a.method == "rollout" then
    local earlier, err = restarted_by_earlier_run(ctx, action, client)
    if earlier == nil then return nil, err end
    if not earlier then
      local restarted, patch_err = client:rollout_restart(a.deployment, { namespace = a.namespace })
      if not restarted then return nil, patch_err end
    end
    local pod
    pod, err = client:wait_rollout(a.deployment, { namespace = a.namespace, timeout = ctx.params.timeout })
    if not pod then return nil, err end
    return true, (earlier and "restarted by the interrupted run; " or "") .. "new hub pod " .. pod.metadata.name .. " is Ready"
  end
  local ok, err = client:delete("pods", a.pod, { namespace = a.namespace })
  if not ok then return nil, err end
  local pod
  pod, err = client:wait_replaced(a.pod, { namespace = a.namespace, label_selector = ctx.params.pod_selector,
                                           timeout = ctx.params.timeout })
  if not pod then return nil, err end
  return true, "new hub pod " .. pod.metadata.name .. " is Ready"
end

-- A restart after a reset is pointless if the database was not removed (its removal was skipped):
-- the pod's file would still have the backup's checksum. The hub may already have created a new
-- file (an open connection), so "absent" is not required: only "not the backed-up database".
local function check_restart(ctx, action)
  local a, client = action.args, client_of(ctx)
  if a.method == "rollout" then
    local d, err = client:get("deployments", a.deployment, { namespace = a.namespace })
    if d == nil then return nil, err end
    if d == false then return false, "deployment " .. a.deployment .. " is gone" end
  end
  if a.database and a.backup then
    local pod, err = client:get("pods", a.pod, { namespace = a.namespace })
    if pod == nil then return nil, err end
    local backed_up = k8s.file_sha256(a.backup)
    if pod and k8s.is_ready(pod) and backed_up then
      local current = client:remote_sha256(a.pod, a.database, exec_opts(a))
      if current == backed_up then return false, a.database .. " was not removed; not restarting the hub" end
    end
  end
  return true
end

local function one_of(...)
  local allowed = { ... }
  return function(v)
    for _, x in ipairs(allowed) do if v == x then return true end end
    return false, "must be one of: " .. table.concat(allowed, ", ")
  end
end
local function absolute_path(v) return v:sub(1, 1) == "/", "must be an absolute path in the container" end

local function hub_url(v)
  return hub.api_url(v) ~= nil, "must be the hub's URL, http(s)://host[/prefix][/hub/api], not '" .. v .. "'"
end

return {
  summary = "Reset hubs' SQLite databases on Kubernetes: verified backup, stop users' servers, remove, restart (or restore)",
  description = [[
For each named namespace: finds the hub pod (exactly one, Running and Ready, matching pod_selector),
the database file and its -journal/-wal/-shm sidecars, and the users' server pods (server_selector;
pods a controller owns are never touched). Apply copies the files out through exec (`cat` streamed to
a local file, its SHA-256 compared with the pod's own `sha256sum`) with a manifest.json beside them;
stops the users' servers (user_servers=stop): through the hub's API when -p hub is given, then
deletes whatever server pod remains and waits until it is gone, and backs the database up again (the
hub wrote to it); removes the files only if the database still has that backup's checksum (checked in
the same shell step as the removal); then restarts the hub (rollout restart of its Deployment, or
deleting the pod) and waits until the new pod is Ready. If a backup does not verify, nothing is
removed. user_servers=keep leaves the servers running (the new hub will not know them).
mode=restore puts a backup back (-p restore_from=FILE) into one namespace: the manifest beside it must
name this cluster and namespace (else -p allow_foreign_backup=true) and the file's SHA-256; the
database being replaced is backed up first, then the file is written through exec and checked, then
the hub restarts.
Namespaces: -n NS, -p namespaces=a,b or -p namespace_selector=LABELS; never the context's default.
-p hub=URL (one namespace): the hub's API, token from JUPYTERHUB_API_TOKEN or -p token_file=PATH (a
service token with list:users, read:users, admin:servers).
Kubernetes access as kubectl: --kubeconfig, KUBECONFIG, ~/.kube/config, --context, or in-cluster.]],
  params = {
    { name = "namespaces", type = "list", help = "hub namespaces, comma-separated (or -n NS)" },
    { name = "namespace_selector", type = "string", help = "label selector choosing the hub namespaces" },
    { name = "mode", type = "string", default = "reset", check = one_of("reset", "restore"),
      help = "reset (back up, remove, restart) or restore (put restore_from back, restart)" },
    { name = "restore_from", type = "path", help = "mode=restore: the backed-up database file to put back" },
    { name = "allow_foreign_backup", type = "boolean", default = false,
      help = "mode=restore: restore a backup whose manifest names another cluster or namespace" },
    { name = "user_servers", type = "string", default = "stop", check = one_of("stop", "keep"),
      help = "the users' server pods in the namespace: stop (before the restart) or keep (left running, unknown to the new hub)" },
    { name = "server_selector", type = "string", default = "component=singleuser-server",
      help = "label selector of the users' server pods" },
    { name = "hub", type = "string", check = hub_url,
      help = "the hub's URL (one namespace): stop its users' servers through its API first" },
    { name = "token_file", type = "path", help = "file holding the hub's API token (else JUPYTERHUB_API_TOKEN)" },
    { name = "ca_file", type = "path", help = "CA bundle to verify the hub's TLS certificate" },
    { name = "pod_selector", type = "string", default = "component=hub", help = "label selector of the hub pod" },
    { name = "container", type = "string", default = "hub", help = "the hub's container in that pod" },
    { name = "database", type = "string", default = "/srv/jupyterhub/jupyterhub.sqlite", check = absolute_path,
      help = "the SQLite file in the container" },
    { name = "backup_dir", type = "path", default = "",
      help = "where backups go (default $XDG_STATE_HOME/runbook/backups); CONTEXT/NAMESPACE/TIME/ below it" },
    { name = "restart", type = "string", default = "rollout", check = one_of("rollout", "delete-pod"),
      help = "rollout (restart the hub's Deployment) or delete-pod" },
    { name = "timeout", type = "integer", default = 300, min = 1, max = 86400,
      help = "seconds to wait for the new hub pod, for a server to stop, for a pod to go" },
  },
  steps = {
    "Resolve the Kubernetes context and the named namespaces (each must exist)",
    "In each: the one hub pod (Running, Ready), its Deployment, and the database and sidecar files (stat, read-only exec)",
    "List the users' server pods; with -p hub, the hub's running servers (a hub with none of them here is refused)",
    "Apply, per namespace: copy the files out (cat through exec), compare SHA-256 with the pod's sha256sum, write manifest.json",
    "user_servers=stop: stop each server through the hub and wait until its pod is gone; delete the pods that remain",
    "Then back the database up again (stopping servers changes it)",
    "Remove the database and its sidecars in one shell step that first checks the checksum still matches the backup",
    "Restart the hub (rollout restart, or delete the pod) and wait until the new pod is Ready",
    "mode=restore: check the backup's manifest (target, sha256), back up the current database, write restore_from "
      .. "through exec, check its sha256sum, restart",
  },

  setup = function(ctx)
    local client = client_of(ctx)
    if ctx.phase == "plan" then
      if ctx.params.mode == "restore" and not ctx.params.restore_from then
        util.fail(2, "mode=restore needs -p restore_from=FILE (a backup made by this runbook)")
      end
      namespaces(ctx)
      if ctx.params.hub then hub_of(ctx) end
    end
    return client
  end,

  target = function(ctx)
    local list = namespaces(ctx)
    if ctx.params.hub and #list ~= 1 then
      util.fail(2, "-p hub names one hub: give exactly one namespace with it (got %s)", table.concat(list, ", "))
    end
    return table.concat(list, ",")
  end,

  plan = function(ctx)
    local client = client_of(ctx)
    ctx:fact("cluster", string.format("context %s, server %s", client.context, client.server))
    ctx:fact("namespaces", table.concat(namespaces(ctx), ", "))
    ctx:fact("backups go to", (ctx.params.backup_dir ~= "" and ctx.params.backup_dir or default_backup_dir())
      .. "/" .. client.context .. "/NAMESPACE/TIME/")
    if ctx.params.hub then
      ctx:fact("hub API", string.format("%s (JupyterHub %s)", hub_of(ctx).api_url, ctx.state.hub_info.version))
    end
    ctx:fact("user servers", ctx.params.user_servers == "keep" and "keep running (user_servers=keep)"
      or (ctx.params.hub and "stopped through the hub, then what remains deleted" or "deleted (no -p hub)"))
    for _, namespace in ipairs(namespaces(ctx)) do plan_namespace(ctx, namespace) end
    plan_effects(ctx)
  end,

  actions = {
    ["k8s.backup"] = { check = same_pod, run = run_backup },
    ["hub.stop_server"] = { run = run_stop },
    ["k8s.delete"] = { check = check_delete, run = run_delete },
    ["k8s.exec"] = {
      check = function(ctx, action)
        if action.args.source then return check_restore(ctx, action) end
        return check_remove(ctx, action)
      end,
      run = function(ctx, action)
        if action.args.source then return run_restore(ctx, action) end
        return run_remove(ctx, action)
      end,
    },
    ["k8s.restart"] = { check = check_restart, run = run_restart },
  },
}
