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
local k8s = require "runbook.k8s"
local util = require "runbook.util"

local SIDECARS = { "-journal", "-wal", "-shm" }

local function human_size(n)
  if n < 1024 then return n .. " bytes" end
  if n < 1024 * 1024 then return string.format("%.1f KiB", n / 1024) end
  if n < 1024 * 1024 * 1024 then return string.format("%.1f MiB", n / (1024 * 1024)) end
  return string.format("%.2f GiB", n / (1024 * 1024 * 1024))
end

local function client_of(ctx)
  if ctx.state.client then return ctx.state.client end
  local client, err = k8s.connect(ctx.options)
  if not client then util.fail(2, err) end -- no kubeconfig, unknown context: the operator's to fix
  ctx.state.client = client
  return client
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
end

local function backup_paths(ctx, namespace, files, database)
  local client = client_of(ctx)
  local stamp = os.date("!%Y%m%dT%H%M%SZ", math.floor(ctx.now))
  local dir = string.format("%s/%s/%s/%s", ctx.params.backup_dir ~= "" and ctx.params.backup_dir or default_backup_dir(),
    client.context, namespace, stamp)
  local name = database:match("[^/]+$")
  local list = {}
  for _, suffix in ipairs({ "", table.unpack(SIDECARS) }) do
    if files[database .. suffix] then
      list[#list + 1] = { path = database .. suffix, size = files[database .. suffix].size, backup = dir .. "/" .. name .. suffix }
    end
  end
  return list, dir
end

local function plan_reset(ctx, namespace)
  local p = ctx.params
  local pod = hub_pod(ctx, namespace)
  local pod_name = pod.metadata.name
  local files = database_files(ctx, namespace, pod_name, p.database)
  local deployment = deployment_of(ctx, namespace, pod)
  ctx:fact("hub pod in " .. namespace, string.format("%s (%s)%s", pod_name, k8s.pod_state(pod),
    deployment and (", deployment " .. deployment) or ""))
  if not files[p.database] then
    ctx:fact("database in " .. namespace, "none at " .. p.database)
    ctx:skip{ target = "pods/" .. namespace .. "/" .. pod_name, reason = "no database at " .. p.database .. " (already reset?)" }
    return
  end
  ctx:fact("database in " .. namespace, p.database .. ", " .. describe_files(files, p.database))
  local copies, dir = backup_paths(ctx, namespace, files, p.database)
  local common = { namespace = namespace, pod = pod_name, container = p.container, uid = pod.metadata.uid }
  local args = util.shallow_copy(common)
  args.files = copies
  ctx:add{ kind = "k8s.backup", target = "pods/" .. namespace .. "/" .. pod_name .. ":" .. p.database,
           reason = string.format("copy %s to %s/, verified against the pod's sha256sum", describe_files(files, p.database), dir),
           args = args }
  args = util.shallow_copy(common)
  args.database, args.backup = p.database, copies[1].backup
  ctx:add{ kind = "k8s.exec", target = "pods/" .. namespace .. "/" .. pod_name,
           reason = "rm " .. p.database .. " and its -journal/-wal/-shm, only if it still matches the verified backup",
           args = args }
  plan_restart(ctx, namespace, pod, deployment, " (the hub starts with an empty database)",
    { database = p.database, backup = copies[1].backup })
end

local function plan_restore(ctx, namespace)
  local p = ctx.params
  if p.restore_from:match("%.partial%-%x+$") then
    -- what copy_from leaves behind when killed mid-stream: an incomplete copy, never a backup
    util.fail(2, "%s is an incomplete copy left by an interrupted backup, not a backup; restore from the file without .partial-...",
      p.restore_from)
  end
  local sum, size = k8s.file_sha256(p.restore_from)
  if not sum then util.fail(2, "cannot use the backup to restore: %s", size) end
  local pod = hub_pod(ctx, namespace)
  local pod_name = pod.metadata.name
  local files = database_files(ctx, namespace, pod_name, p.database)
  local deployment = deployment_of(ctx, namespace, pod)
  ctx:fact("hub pod in " .. namespace, string.format("%s (%s)%s", pod_name, k8s.pod_state(pod),
    deployment and (", deployment " .. deployment) or ""))
  ctx:fact("backup to restore", string.format("%s, %s, sha256 %s", p.restore_from, human_size(size), sum:sub(1, 16)))
  local common = { namespace = namespace, pod = pod_name, container = p.container, uid = pod.metadata.uid }
  if files[p.database] then
    ctx:fact("database in " .. namespace, p.database .. ", " .. describe_files(files, p.database) .. " (will be replaced)")
    local copies, dir = backup_paths(ctx, namespace, files, p.database)
    local args = util.shallow_copy(common)
    args.files = copies
    ctx:add{ kind = "k8s.backup", target = "pods/" .. namespace .. "/" .. pod_name .. ":" .. p.database,
             reason = "keep the database being replaced: copy " .. describe_files(files, p.database) .. " to " .. dir .. "/",
             args = args }
  else
    ctx:fact("database in " .. namespace, "none at " .. p.database)
  end
  local args = util.shallow_copy(common)
  args.database, args.source, args.sha256, args.size = p.database, p.restore_from, sum, size
  ctx:add{ kind = "k8s.exec", target = "pods/" .. namespace .. "/" .. pod_name,
           reason = string.format("put %s (%s) back as %s, checked by sha256sum", p.restore_from, human_size(size), p.database),
           args = args }
  plan_restart(ctx, namespace, pod, deployment, " (the hub opens the restored database)")
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
  local note = #leftovers > 0 and ("; left over from an interrupted copy, incomplete, not a backup (delete it): "
    .. table.concat(leftovers, ", ")) or ""
  return true, "verified: " .. table.concat(done, "; ") .. " in " .. a.files[1].backup:match("^(.*)/") .. note
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

return {
  summary = "Reset hubs' SQLite databases on Kubernetes: verified backup, remove, restart (or restore a backup)",
  description = [[
For each named namespace: finds the hub pod (exactly one, Running and Ready, matching pod_selector),
the database file and its -journal/-wal/-shm sidecars. Apply copies them out through exec (`cat`
streamed to a local file, its SHA-256 compared with the pod's own `sha256sum`), removes them only if
the database still has the backup's checksum (checked in the same shell step as the removal), then
restarts the hub (rollout restart of its Deployment, or deleting the pod) and waits until the new pod
is Ready. If a backup does not verify, nothing is removed.
mode=restore puts a backup back (-p restore_from=FILE) into one namespace: the database being replaced
is backed up first, then the file is written through exec and checked, then the hub restarts.
Namespaces: -n NS, -p namespaces=a,b or -p namespace_selector=LABELS; never the context's default.
Kubernetes access as kubectl: --kubeconfig, KUBECONFIG, ~/.kube/config, --context, or in-cluster.]],
  params = {
    { name = "namespaces", type = "list", help = "hub namespaces, comma-separated (or -n NS)" },
    { name = "namespace_selector", type = "string", help = "label selector choosing the hub namespaces" },
    { name = "mode", type = "string", default = "reset", check = one_of("reset", "restore"),
      help = "reset (back up, remove, restart) or restore (put restore_from back, restart)" },
    { name = "restore_from", type = "path", help = "mode=restore: the backed-up database file to put back" },
    { name = "pod_selector", type = "string", default = "component=hub", help = "label selector of the hub pod" },
    { name = "container", type = "string", default = "hub", help = "the hub's container in that pod" },
    { name = "database", type = "string", default = "/srv/jupyterhub/jupyterhub.sqlite", check = absolute_path,
      help = "the SQLite file in the container" },
    { name = "backup_dir", type = "path", default = "",
      help = "where backups go (default $XDG_STATE_HOME/runbook/backups); CONTEXT/NAMESPACE/TIME/ below it" },
    { name = "restart", type = "string", default = "rollout", check = one_of("rollout", "delete-pod"),
      help = "rollout (restart the hub's Deployment) or delete-pod" },
    { name = "timeout", type = "integer", default = 300, min = 1, max = 86400, help = "seconds to wait for the new hub pod" },
  },
  steps = {
    "Resolve the Kubernetes context and the named namespaces (each must exist)",
    "In each: the one hub pod (Running, Ready), its Deployment, and the database and sidecar files (stat, read-only exec)",
    "Apply, per namespace: copy the files out (cat through exec), compare SHA-256 with the pod's sha256sum",
    "Remove the database and its sidecars in one shell step that first checks the checksum still matches the backup",
    "Restart the hub (rollout restart, or delete the pod) and wait until the new pod is Ready",
    "mode=restore: back up the current database, write restore_from through exec, check its sha256sum, restart",
  },

  setup = function(ctx)
    local client = client_of(ctx)
    if ctx.phase == "plan" then
      if ctx.params.mode == "restore" and not ctx.params.restore_from then
        util.fail(2, "mode=restore needs -p restore_from=FILE (a backup made by this runbook)")
      end
      namespaces(ctx)
    end
    return client
  end,

  target = function(ctx)
    return table.concat(namespaces(ctx), ",")
  end,

  plan = function(ctx)
    local client = client_of(ctx)
    ctx:fact("cluster", string.format("context %s, server %s", client.context, client.server))
    ctx:fact("namespaces", table.concat(namespaces(ctx), ", "))
    if ctx.params.mode == "reset" or ctx.params.mode == "restore" then
      ctx:fact("backups go to", (ctx.params.backup_dir ~= "" and ctx.params.backup_dir or default_backup_dir())
        .. "/" .. client.context .. "/NAMESPACE/TIME/")
    end
    for _, namespace in ipairs(namespaces(ctx)) do
      if ctx.params.mode == "restore" then plan_restore(ctx, namespace) else plan_reset(ctx, namespace) end
    end
  end,

  actions = {
    ["k8s.backup"] = { check = same_pod, run = run_backup },
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
