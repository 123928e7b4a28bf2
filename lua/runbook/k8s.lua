-- The Kubernetes API for runbooks (require "runbook.k8s").
--
--   local k8s = require "runbook.k8s"
--   local client = assert(k8s.connect(ctx.options))     -- {kubeconfig=, context=, namespace=}, as kubectl
--   local pods = assert(client:list("pods", { namespace = "hub-a", label_selector = "component=hub" }))
--   local pod = client:get("pods", "hub-7d9", { namespace = "hub-a" })   -- object | false (404) | nil, message, status
--   local r = assert(client:exec("hub-7d9", { "sha256sum", "--", "/srv/jupyterhub/jupyterhub.sqlite" },
--                                { namespace = "hub-a", container = "hub", readonly = true }))
--   assert(client:rollout_restart("hub", { namespace = "hub-a" }))
--   local new_pod = assert(client:wait_rollout("hub", { namespace = "hub-a", timeout = 300 }))
--
-- Failures from the outside world return nil, message, status: the API's Status object (code, reason,
-- message, details) when the server sent one, else {kind = "connect" | "tls" | "timeout" | ...}.
-- Misuse (an unknown resource, a command that is not a list) raises. Requests that are safe to repeat
-- are retried on 429/5xx with Retry-After (runbook.http); a 401 re-reads token files and re-runs exec
-- plugins once. Mutations (create, delete, patch, exec without readonly = true) are refused by the
-- host while planning. Credentials never appear in messages.
local config = require "runbook.k8s.config"
local credentials = require "runbook.k8s.credentials"
local exec = require "runbook.k8s.exec"
local host = require "runbook.host"
local http = require "runbook.http"
local json = require "runbook.json"
local resources = require "runbook.k8s.resources"
local sched = require "runner.sched"
local ui = require "runner.ui"
local util = require "runbook.util"

local k8s = {}

local DEFAULT_PAGE = 500
local PATCH_TYPES = {
  strategic = "application/strategic-merge-patch+json",
  merge = "application/merge-patch+json",
  json = "application/json-patch+json",
}

local Client = {}
Client.__index = Client
Client.__name = "runbook.k8s.Client"
Client.__tostring = function(c) return "k8s client for " .. c.label end

-- RUNBOOK_K8S_TIMEOUT: seconds each API request (and an exec's handshake, and the answer to a ping on
-- a quiet exec stream) may take, for every client a runbook makes; 30 by default.
local function env_timeout()
  local n = tonumber(os.getenv("RUNBOOK_K8S_TIMEOUT") or "")
  if n and n > 0 then return n end
end

-- connect{kubeconfig=, context=, namespace=, timeout=} -> client | nil, message
-- Reads the configuration now (and runs no plugin yet); nothing is sent until the first call.
-- client.namespace is the default namespace (-n, the context's, in-cluster's, or "default").
function k8s.connect(opts)
  opts = opts or {}
  local access, err = config.resolve(opts)
  if not access then return nil, err end
  return setmetatable({
    server = access.server,
    context = access.context,
    user = access.user,
    namespace = access.namespace,
    namespace_source = access.namespace_source,
    source = access.source,
    label = access.context .. " (" .. access.server:match("^https?://([^/]+)") .. ")",
    access = access,
    credentials = credentials.new(access),
    timeout = opts.timeout or env_timeout() or 30,
  }, Client)
end

-- TLS options for http.request and ws_core.connect (a plugin's client certificate included).
function Client:tls_options()
  local o = util.shallow_copy(self.access.tls)
  for k, v in pairs(self.credentials:tls()) do o[k] = v end
  return o
end

-- ---- errors ----

local HINTS = {
  connect = "is the API server reachable at %s?",
  resolve = "cannot resolve the API server's name (%s)",
  tls = "TLS verification of %s failed: check certificate-authority in the kubeconfig",
  timeout = "the API server at %s did not answer in time",
}

function Client:failure_message(verb, target, err, detail)
  local hint = detail and HINTS[detail.kind]
  return string.format("k8s %s: %s %s: %s%s", self.context, verb, target, err,
    hint and ("; " .. hint:format(self.server)) or "")
end

-- The API's Status, or one made from a response that has none (a 429 from API Priority and
-- Fairness is plain text; a proxy's 502 is HTML).
local function status_of(resp)
  local doc = json.decode(resp.body or "")
  if type(doc) == "table" and doc.kind == "Status" then return doc end
  local text = util.trim((resp.body or ""):gsub("%s+", " ")):sub(1, 200)
  return { kind = "Status", status = "Failure", code = resp.status, message = text ~= "" and text or nil,
           reason = resp.status == 429 and "TooManyRequests" or nil }
end

-- nil, message, status for a response the caller did not expect.
function Client:status_failure(verb, target, resp)
  local status = status_of(resp)
  local advice = ""
  if resp.status == 401 then
    advice = string.format("; the cluster did not accept %s (context \"%s\"): expired or revoked?",
      self.credentials:describe(), self.context)
  elseif resp.status == 403 then
    advice = string.format("; user \"%s\" (context \"%s\") lacks the permission (RBAC)", tostring(self.user), self.context)
  end
  local message = status.message or ("HTTP " .. resp.status)
  return nil, string.format("k8s %s: %s %s: %s (%s%s)%s", self.context, verb, target, message,
    status.reason and (status.reason .. ", ") or "", "HTTP " .. resp.status, advice), status
end

-- ---- requests ----

-- request(method, path, {query=, json=, body=, content_type=, accept=, timeout=}) -> response | nil, message, details
-- The raw door: any status is a response. A 401 is tried once more with refreshed credentials.
function Client:request(method, path, opts)
  opts = opts or {}
  local url = self.server .. path
  if opts.query then
    local q = util.query(opts.query)
    if q ~= "" then url = url .. "?" .. q end
  end
  local refreshed = false
  while true do
    local headers, err = self.credentials:headers()
    if not headers then return nil, string.format("k8s %s: %s", self.context, err), { kind = "credentials" } end
    headers.Accept = opts.accept or "application/json"
    local body = opts.body
    if opts.json ~= nil then body = json.encode(opts.json) end
    if body then headers["Content-Type"] = opts.content_type or "application/json" end
    local req = self:tls_options()
    req.method, req.url, req.headers, req.body, req.timeout = method, url, headers, body, opts.timeout or self.timeout
    local resp, detail
    resp, err, detail = http.request(req)
    if not resp then return nil, err, detail end
    if resp.status ~= 401 or refreshed or not self.credentials:refresh() then return resp end
    refreshed = true
  end
end

local function namespace_for(client, res, opts)
  if not res.namespaced then return nil end
  return opts.namespace or client.namespace
end

-- Sends a request and decodes the JSON answer: object | false (404, when allowed) | nil, message, status
local function call(client, verb, method, path, target, opts, expected)
  local resp, err, detail = client:request(method, path, opts)
  if not resp then return nil, client:failure_message(verb, target, err, detail), detail end
  if resp.status == 404 and opts.missing_ok then return false end
  if not expected[resp.status] then return client:status_failure(verb, target, resp) end
  if resp.body == "" then return {} end
  local doc, decode_err = http.decode(resp)
  if doc == nil then
    return nil, string.format("k8s %s: %s %s: %s", client.context, verb, target, decode_err)
  end
  return doc
end

local OK = { [200] = true }
local CREATED = { [200] = true, [201] = true, [202] = true }

-- get(resource, name, {namespace=}) -> object | false (not found) | nil, message, status
function Client:get(resource, name, opts)
  opts = opts or {}
  local res = resources.resolve(resource, 2)
  local ns = namespace_for(self, res, opts)
  return call(self, "GET", "GET", resources.path(res, ns, name), resources.label(res, ns, name),
    { missing_ok = true }, OK)
end

local function selector_text(sel)
  if sel == nil or type(sel) == "string" then return sel end
  local parts = {}
  for _, k in ipairs(util.sorted_keys(sel)) do parts[#parts + 1] = k .. "=" .. tostring(sel[k]) end
  return table.concat(parts, ",")
end
k8s.selector = selector_text

-- list(resource, {namespace=, all_namespaces=, label_selector= (text or {key=value}), field_selector=, limit=})
-- -> items, {resource_version=, pages=} | nil, message, status
-- Follows `continue` page by page; if the server expires the token (410), lists once more whole.
-- Items get the kind and apiVersion that typed lists leave out.
function Client:list(resource, opts)
  opts = opts or {}
  local res = resources.resolve(resource, 2)
  local ns = not opts.all_namespaces and namespace_for(self, res, opts) or nil
  local path, target = resources.path(res, ns), resources.label(res, ns)
  local query = { labelSelector = selector_text(opts.label_selector), fieldSelector = opts.field_selector,
                  limit = opts.limit or DEFAULT_PAGE }
  local items, pages, version = {}, 0, nil
  while true do
    local doc, err, detail = call(self, "LIST", "GET", path, target, { query = query }, OK)
    if not doc then
      if type(detail) == "table" and detail.code == 410 and query.continue then
        -- The snapshot is gone: start over without paging, as client-go's pager does.
        items, query.continue, query.limit = {}, nil, nil
      else
        return nil, err, detail
      end
    else
      pages = pages + 1
      local kind = type(doc.kind) == "string" and doc.kind:gsub("List$", "") or nil
      for _, item in ipairs(doc.items or {}) do
        if item.kind == nil and kind then item.kind, item.apiVersion = kind, doc.apiVersion end
        items[#items + 1] = item
      end
      local meta = type(doc.metadata) == "table" and doc.metadata or {}
      version = meta.resourceVersion
      if type(meta.continue) ~= "string" or meta.continue == "" then break end
      query.continue = meta.continue
    end
  end
  return items, { resource_version = version, pages = pages }
end

local function dry(query, opts)
  query = query or {}
  if opts.dry_run then query.dryRun = "All" end
  return query
end

-- create(resource, object, {namespace=, dry_run=}) -> object | nil, message, status
function Client:create(resource, object, opts)
  opts = opts or {}
  local res = resources.resolve(resource, 2)
  local meta = type(object.metadata) == "table" and object.metadata or {}
  local ns = res.namespaced and (opts.namespace or meta.namespace or self.namespace) or nil
  return call(self, "CREATE", "POST", resources.path(res, ns), resources.label(res, ns, meta.name or meta.generateName),
    { json = object, query = dry(nil, opts) }, CREATED)
end

-- delete(resource, name, {namespace=, propagation="Background"|"Foreground"|"Orphan", grace_period=,
--        preconditions={uid=, resourceVersion=}, dry_run=})
-- -> answer, "deleted" | true, "already gone" | nil, message, status
-- A namespace already terminating counts as deleted (200 since Kubernetes 1.17, 409 before).
function Client:delete(resource, name, opts)
  opts = opts or {}
  local res = resources.resolve(resource, 2)
  local ns = namespace_for(self, res, opts)
  local target = resources.label(res, ns, name)
  local body = { kind = "DeleteOptions", apiVersion = "v1", propagationPolicy = opts.propagation,
                 gracePeriodSeconds = opts.grace_period, preconditions = opts.preconditions,
                 dryRun = opts.dry_run and json.array({ "All" }) or nil }
  local resp, err, detail = self:request("DELETE", resources.path(res, ns, name), { json = body, query = dry(nil, opts) })
  if not resp then return nil, self:failure_message("DELETE", target, err, detail), detail end
  if resp.status == 404 then return true, "already gone" end
  if resp.status == 409 and res.resource == "namespaces" then
    local status = status_of(resp)
    if tostring(status.message):find("ensuring all content is removed", 1, true) then return true, "already terminating" end
  end
  if resp.status ~= 200 and resp.status ~= 202 then return self:status_failure("DELETE", target, resp) end
  return http.decode(resp) or {}, "deleted"
end

-- patch(resource, name, patch, {namespace=, type="strategic"|"merge"|"json", dry_run=}) -> object | nil, message, status
-- Custom resources take merge or json patches only (the server answers 415 to a strategic one).
function Client:patch(resource, name, patch, opts)
  opts = opts or {}
  local res = resources.resolve(resource, 2)
  local content_type = PATCH_TYPES[opts.type or "strategic"]
  if not content_type then error("patch type must be strategic, merge or json, not " .. tostring(opts.type), 2) end
  local ns = namespace_for(self, res, opts)
  return call(self, "PATCH", "PATCH", resources.path(res, ns, name), resources.label(res, ns, name),
    { json = patch, content_type = content_type, query = dry(nil, opts) }, OK)
end

-- ---- waiting ----

-- Polls check() -> done, result | nil, message  until done, an error, or the timeout; the operator
-- sees what is awaited and its state meanwhile (ui.waiting).
local function poll(check, timeout, what)
  timeout = timeout or 120
  local started = host.monotonic()
  local deadline = started + timeout
  local interval = 0.2
  local last_state
  local function finish(...)
    ui.waiting_done(what)
    return ...
  end
  while true do
    local done, result, state = check()
    if done == nil then return finish(nil, result) end
    if done then return finish(result) end
    last_state = state or last_state
    ui.waiting(what, last_state, host.monotonic() - started, timeout)
    if host.monotonic() >= deadline then
      return finish(nil, string.format("timed out after %ds waiting for %s%s", math.floor(timeout), what,
        last_state and (" (" .. last_state .. ")") or ""))
    end
    if host.interrupted() then return finish(nil, "interrupted while waiting for " .. what) end
    sched.sleep(math.min(interval, math.max(0, deadline - host.monotonic())))
    interval = math.min(interval * 1.5, 2)
  end
end

-- wait_gone(resource, name, {namespace=, timeout=}) -> true | nil, message
function Client:wait_gone(resource, name, opts)
  opts = opts or {}
  local res = resources.resolve(resource, 2)
  local ns = namespace_for(self, res, opts)
  return poll(function()
    local obj, err = self:get(res, name, { namespace = ns })
    if obj == nil then return nil, err end
    if obj == false then return true, true end
    local phase = obj.status and obj.status.phase
    return false, nil, phase and ("still there, " .. tostring(phase)) or "still there"
  end, opts.timeout, resources.label(res, ns, name) .. " to be gone")
end

local function condition(obj, kind)
  for _, c in ipairs(obj.status and obj.status.conditions or {}) do
    if c.type == kind then return c end
  end
end

-- is_ready(pod) -> whether the pod is Running, Ready and not being deleted.
function k8s.is_ready(pod)
  local ready = condition(pod, "Ready")
  return pod.metadata.deletionTimestamp == nil and pod.status ~= nil and pod.status.phase == "Running"
    and ready ~= nil and ready.status == "True"
end

-- pod_state(pod) -> "Running, Ready" | "Pending" | "CrashLoopBackOff (5 restarts)" | "Terminating" ...
function k8s.pod_state(pod)
  if pod.metadata.deletionTimestamp then return "Terminating" end
  local status = pod.status or {}
  for _, cs in ipairs(status.containerStatuses or {}) do
    local waiting = cs.state and cs.state.waiting
    if waiting and waiting.reason and waiting.reason ~= "ContainerCreating" then
      return string.format("%s (%d restarts)", waiting.reason, cs.restartCount or 0)
    end
  end
  local phase = status.phase or "Unknown"
  if phase == "Running" then return k8s.is_ready(pod) and "Running, Ready" or "Running, not Ready" end
  return phase
end

-- The deployment's newest ReplicaSet (highest revision) and its pod-template-hash.
local function newest_replicaset(client, deployment, ns)
  local sel = deployment.spec and deployment.spec.selector and deployment.spec.selector.matchLabels
  local sets, err = client:list("replicasets", { namespace = ns, label_selector = sel })
  if not sets then return nil, err end
  local best, best_rev
  for _, rs in ipairs(sets) do
    local owned = false
    for _, ref in ipairs(rs.metadata.ownerReferences or {}) do
      if ref.uid == deployment.metadata.uid then owned = true end
    end
    local rev = tonumber((rs.metadata.annotations or {})["deployment.kubernetes.io/revision"] or "0")
    if owned and (not best_rev or rev > best_rev) then best, best_rev = rs, rev end
  end
  return best
end

-- wait_rollout(name, {namespace=, timeout=}) -> new_pod, deployment | nil, message
-- Waits as `kubectl rollout status` does (observed generation, updated, no old replicas, available),
-- then for a Ready pod of the newest ReplicaSet, and returns that pod.
function Client:wait_rollout(name, opts)
  opts = opts or {}
  local ns = opts.namespace or self.namespace
  local deployment
  local ready_pod, err = poll(function()
    local d, get_err = self:get("deployments", name, { namespace = ns })
    if d == nil then return nil, get_err end
    if d == false then return nil, string.format("deployment %s/%s does not exist", ns, name) end
    deployment = d
    local spec, st = d.spec or {}, d.status or {}
    local want = spec.replicas or 1
    local progressing = condition(d, "Progressing")
    if progressing and progressing.reason == "ProgressDeadlineExceeded" then
      return nil, string.format("deployment %s/%s exceeded its progress deadline: %s", ns, name,
        tostring(progressing.message))
    end
    local waiting
    if (st.observedGeneration or 0) < (d.metadata.generation or 0) then
      waiting = "not yet observed"
    elseif (st.updatedReplicas or 0) < want then
      waiting = string.format("%d of %d new replicas updated", st.updatedReplicas or 0, want)
    elseif (st.replicas or 0) > (st.updatedReplicas or 0) then
      waiting = string.format("%d old replicas pending termination", (st.replicas or 0) - (st.updatedReplicas or 0))
    elseif (st.availableReplicas or 0) < (st.updatedReplicas or 0) then
      waiting = string.format("%d of %d updated replicas available", st.availableReplicas or 0, st.updatedReplicas or 0)
    end
    if waiting then
      -- Say what the pods are doing: "CrashLoopBackOff (3 restarts)" is what the operator needs to see.
      local pods = self:list("pods", { namespace = ns, label_selector = d.spec.selector and d.spec.selector.matchLabels })
      local states = {}
      for _, pod in ipairs(pods or {}) do states[#states + 1] = pod.metadata.name .. " " .. k8s.pod_state(pod) end
      return false, nil, waiting .. (#states > 0 and ("; pods: " .. table.concat(states, ", ")) or "")
    end
    if want == 0 then return true, false end
    local rs, rs_err = newest_replicaset(self, d, ns)
    if rs == nil and rs_err then return nil, rs_err end
    local hash = rs and rs.metadata.labels and rs.metadata.labels["pod-template-hash"]
    local sel = util.shallow_copy(d.spec.selector and d.spec.selector.matchLabels or {})
    if hash then sel["pod-template-hash"] = hash end
    local pods, pods_err = self:list("pods", { namespace = ns, label_selector = sel })
    if not pods then return nil, pods_err end
    local states = {}
    for _, pod in ipairs(pods) do
      if k8s.is_ready(pod) then return true, pod end
      states[#states + 1] = pod.metadata.name .. " " .. k8s.pod_state(pod)
    end
    return false, nil, #states > 0 and table.concat(states, "; ") or "no pod of the new revision yet"
  end, opts.timeout or 300, string.format("deployment %s/%s to roll out", ns, name))
  if ready_pod == nil then return nil, err end
  return ready_pod, deployment
end

-- wait_replaced(pod_name, {namespace=, label_selector=, timeout=}) -> new_pod | nil, message
-- After deleting a pod its owner makes another: waits until the old one is gone and a pod matching
-- the selector (another name) is Ready.
function Client:wait_replaced(pod_name, opts)
  opts = opts or {}
  local ns = opts.namespace or self.namespace
  return poll(function()
    local pods, err = self:list("pods", { namespace = ns, label_selector = opts.label_selector })
    if not pods then return nil, err end
    local states, old_gone, ready = {}, true, nil
    for _, pod in ipairs(pods) do
      if pod.metadata.name == pod_name then old_gone = false end
      if pod.metadata.name ~= pod_name and k8s.is_ready(pod) then ready = pod end
      states[#states + 1] = pod.metadata.name .. " " .. k8s.pod_state(pod)
    end
    if old_gone and ready then return true, ready end
    return false, nil, #states > 0 and table.concat(states, "; ") or "no pod"
  end, opts.timeout or 300, string.format("a pod to replace %s/%s", ns, pod_name))
end

-- restarted_at(deployment) -> when its last rollout restart was asked for (the pod template's
-- kubectl.kubernetes.io/restartedAt, seconds since the epoch), or nil if it never was.
function k8s.restarted_at(deployment)
  local template = deployment.spec and deployment.spec.template
  local annotations = template and template.metadata and template.metadata.annotations
  local stamp = annotations and annotations["kubectl.kubernetes.io/restartedAt"]
  return stamp and util.parse_time(stamp) or nil
end

-- rollout_restart(name, {namespace=, dry_run=}) -> deployment, restarted_at | nil, message, status
-- What `kubectl rollout restart` does: stamp the pod template, so the deployment rolls out anew.
function Client:rollout_restart(name, opts)
  opts = opts or {}
  -- RFC 3339 with microseconds: kubectl stamps whole seconds, so two restarts within one second would
  -- make the second a no-op patch (nothing restarts); a finer stamp always changes the template.
  local now = host.now()
  local stamp = os.date("!%Y-%m-%dT%H:%M:%S", math.floor(now)) .. string.format(".%06dZ", math.floor((now % 1) * 1e6))
  local patch = { spec = { template = { metadata = { annotations = { ["kubectl.kubernetes.io/restartedAt"] = stamp } } } } }
  local d, err, status = self:patch("deployments", name, patch, { namespace = opts.namespace, dry_run = opts.dry_run })
  if not d then return nil, err, status end
  return d, stamp
end

-- ---- exec and files ----

-- exec(pod, command, {namespace=, container=, stdin=, readonly=, output=, make_dirs=, on_stdout=, timeout=})
-- -> {exit_code=, stdout=, stderr=, sha256=, size=} | nil, message, status
-- readonly = true declares that the command changes nothing (cat, sha256sum, stat): it may then run
-- while planning. Anything else is a mutation and is refused outside an action.
function Client:exec(pod, command, opts)
  opts = opts or {}
  return exec.run(self, opts.namespace or self.namespace, pod, command, opts)
end

-- Runs a read-only command and returns its stdout; a non-zero exit is a failure with its stderr.
local function read_command(client, pod, command, opts)
  local o = util.shallow_copy(opts)
  o.readonly, o.output, o.on_stdout = true, nil, nil
  local r, err, status = client:exec(pod, command, o)
  if not r then return nil, err, status end
  if r.exit_code ~= 0 then
    return nil, string.format("`%s` in pods/%s/%s exited with status %d: %s", exec.command_text(command),
      o.namespace or client.namespace, pod, r.exit_code, util.trim(r.stderr):sub(1, 300)), { exit_code = r.exit_code }
  end
  return r.stdout
end

-- remote_sha256(pod, path, opts) -> sha256 hex, or nil, message (with sha256sum in the container)
function Client:remote_sha256(pod, path, opts)
  local out, err, detail = read_command(self, pod, { "sha256sum", "--", path }, opts or {})
  if not out then return nil, err, detail end
  local sum = out:match("^(%x+)")
  if not sum or #sum ~= 64 then return nil, "sha256sum in " .. pod .. " printed no checksum" end
  return sum:lower()
end

-- copy_from(pod, remote_path, local_path, {namespace=, container=, make_dirs=}) -> {path=, sha256=, size=} | nil, message
-- Streams `cat` into a new local file, compares its SHA-256 with the pod's own sha256sum of the
-- file, then renames it to local_path (never overwriting a file there). Until then it has a name of
-- its own (local_path.partial-RANDOM), so a file under local_path is always a whole, verified copy,
-- even after a kill mid-stream. On any failure or mismatch the partial file is removed.
function Client:copy_from(pod, remote_path, local_path, opts)
  opts = opts or {}
  if host.stat(local_path) then return nil, "cannot create the output file " .. local_path .. ": File exists" end
  local partial = local_path .. ".partial-" .. host.random_hex(4)
  local o = util.shallow_copy(opts)
  o.readonly, o.output = true, partial
  local r, err, status = self:exec(pod, { "cat", "--", remote_path }, o)
  if not r then return nil, err, status end
  local function fail(message, detail)
    host.remove(partial)
    return nil, message, detail
  end
  if r.exit_code ~= 0 then
    return fail(string.format("cannot read %s in pods/%s/%s: %s", remote_path, opts.namespace or self.namespace, pod,
      util.trim(r.stderr):sub(1, 300)), { exit_code = r.exit_code })
  end
  local remote, sum_err = self:remote_sha256(pod, remote_path, opts)
  if not remote then return fail(sum_err) end
  if remote ~= r.sha256 then
    return fail(string.format("the copy of %s does not match the pod's file (sha256 %s here, %s in the pod): it changed "
      .. "while being copied; the copy was removed", remote_path, r.sha256:sub(1, 12), remote:sub(1, 12)))
  end
  local renamed, rename_err = host.rename(partial, local_path, true)
  if not renamed then return fail("cannot put the verified copy in place: " .. rename_err) end
  return { path = local_path, sha256 = r.sha256, size = r.size }
end

-- leftover_partials(local_path) -> {file names}: the partial files (local_path.partial-HEX) that
-- copy_from calls killed mid-stream left beside local_path. copy_from cannot remove them (the process
-- died) and a later copy does not reuse them (each attempt has a name of its own), so they stay until
-- someone removes them: a runbook names them in its report, so the operator knows they are incomplete
-- copies, not backups, and can delete them.
function k8s.leftover_partials(local_path)
  local dir, name = local_path:match("^(.*)/([^/]+)$")
  local found = {}
  if not dir then return found end
  local prefix = name .. ".partial-"
  for _, entry in ipairs(host.list_dir(dir ~= "" and dir or "/") or {}) do
    if entry:sub(1, #prefix) == prefix and entry:sub(#prefix + 1):match("^%x+$") then found[#found + 1] = entry end
  end
  table.sort(found)
  return found
end

-- copy_to(pod, local_path, remote_path, {namespace=, container=, replace_also={paths}}) -> {sha256=, size=} | nil, message
-- Sends the file through stdin into REMOTE.runbook-new, removes the replace_also paths, moves the new
-- file over REMOTE, and checks the pod's sha256sum of the result. A mutation. The file is read into
-- memory whole.
function Client:copy_to(pod, local_path, remote_path, opts)
  opts = opts or {}
  local data, err = host.read_file(local_path)
  if not data then return nil, "cannot read " .. err end
  local sum = host.sha256(data)
  local o = util.shallow_copy(opts)
  o.stdin, o.readonly, o.output, o.on_stdout, o.replace_also = data, false, nil, nil, nil
  local script = 'target=$1; shift; cat > "$target.runbook-new" && rm -f -- "$@" && mv -f -- "$target.runbook-new" "$target"'
  local command = { "sh", "-c", script, "sh", remote_path }
  for _, path in ipairs(opts.replace_also or {}) do command[#command + 1] = path end
  local r, exec_err, status = self:exec(pod, command, o)
  if not r then return nil, exec_err, status end
  if r.exit_code ~= 0 then
    return nil, string.format("writing %s in pods/%s/%s failed (status %d): %s", remote_path,
      opts.namespace or self.namespace, pod, r.exit_code, util.trim(r.stderr):sub(1, 300))
  end
  local remote, sum_err = self:remote_sha256(pod, remote_path, opts)
  if not remote then return nil, sum_err end
  if remote ~= sum then
    return nil, string.format("%s in the pod does not match %s after the copy (sha256 %s vs %s)", remote_path,
      local_path, remote:sub(1, 12), sum:sub(1, 12))
  end
  return { sha256 = sum, size = #data }
end

-- file_sha256(local_path) -> sha256 hex, size | nil, message: to check a backup on this machine.
function k8s.file_sha256(path)
  local st, err = host.stat(path)
  if not st then return nil, err end
  local sum
  sum, err = host.sha256_file(path)
  if not sum then return nil, err end
  return sum, st.size
end

-- base64_decode(text) -> bytes | nil, message: for a Secret's data values.
k8s.base64_decode = require("runbook.k8s.base64").decode

-- decode_yaml(text) -> value | nil, "LINE:COLUMN: problem": YAML that objects hold (a Helm chart's
-- values.yaml in a ConfigMap), read with libyaml. Scalars stay text, as Kubernetes reads string
-- fields ("0123", "no"); null is json.null.
function k8s.decode_yaml(text)
  return require("runbook.yaml_core").parse(text, { strings = true })
end

return k8s
