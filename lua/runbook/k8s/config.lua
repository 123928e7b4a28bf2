-- Where the Kubernetes API is and how to reach it, resolved as kubectl resolves it:
--   files: --kubeconfig FILE (must exist), else KUBECONFIG (a colon list, missing files skipped,
--          merged: the first file to define a cluster/user/context name or current-context wins),
--          else ~/.kube/config;
--   context: --context, else current-context; relative paths resolve against the file that set them;
--   namespace: -n, else the context's, else the in-cluster one, else "default";
--   in-cluster: when no kubeconfig names a context and KUBERNETES_SERVICE_HOST/PORT are set, the
--          service account's token (re-read, it rotates), CA and namespace.
-- RUNBOOK_SERVICEACCOUNT_DIR replaces /var/run/secrets/kubernetes.io/serviceaccount, and only counts
-- when KUBERNETES_SERVICE_HOST is set (tests point it at a fake's service account directory).
--
-- resolve(opts) -> access | nil, message. Secrets (tokens, keys) stay in `access.auth` and
-- `access.tls`; nothing here puts them in a message.
local base64 = require "runbook.k8s.base64"
local host = require "runbook.host"
local util = require "runbook.util"
local yaml = require "runbook.yaml_core"

local config = {}

local SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"

local function dir_of(path)
  return path:match("^(.*)/[^/]*$") or "."
end

local function absolute(path, base_dir)
  if path == nil or path == "" or path:sub(1, 1) == "/" then return path end
  return base_dir .. "/" .. path
end

-- kubeconfig values are strings (the YAML is read with every scalar as text, as Kubernetes reads
-- string fields); null and empty mean "not set".
local function text(v)
  if v == nil or v == yaml.null or v == "" then return nil end
  if type(v) ~= "string" then return nil end
  return v
end

-- YAML 1.1 booleans, as Kubernetes' YAML reader accepts them.
local function flag(v, where)
  if v == nil or v == yaml.null then return false end
  local s = tostring(v):lower()
  if s == "true" or s == "yes" or s == "on" or s == "y" then return true end
  if s == "false" or s == "no" or s == "off" or s == "n" or s == "" then return false end
  return nil, string.format("%s must be true or false, not '%s'", where, tostring(v))
end

local function read_kubeconfig(path)
  local body, err = host.read_file(path)
  if not body then return nil, "cannot read kubeconfig " .. err end
  local doc, problem = yaml.parse(body, { strings = true })
  if doc == nil then return nil, string.format("kubeconfig %s: %s", path, problem) end
  if doc == yaml.null then return {} end
  if type(doc) ~= "table" then return nil, string.format("kubeconfig %s is not a YAML mapping", path) end
  return doc
end

-- The files to read, in precedence order; explicit means a missing file is an error.
local function kubeconfig_files(opts)
  if opts.kubeconfig and opts.kubeconfig ~= "" then return { opts.kubeconfig }, true end
  local env = os.getenv("KUBECONFIG")
  if env and env ~= "" then
    local files, seen = {}, {}
    for _, f in ipairs(util.split(env, ":")) do
      if f ~= "" and not seen[f] then
        seen[f] = true
        files[#files + 1] = f
      end
    end
    return files, false
  end
  local home = os.getenv("HOME")
  return home and { home .. "/.kube/config" } or {}, false
end

-- Merges the files: named entries and current-context from the first file that has them. Each entry
-- remembers its file's directory, for relative paths.
local function load_merged(opts)
  local files, explicit = kubeconfig_files(opts)
  local merged = { clusters = {}, users = {}, contexts = {}, files = {} }
  for _, path in ipairs(files) do
    if explicit or host.stat(path) then
      local doc, err = read_kubeconfig(path)
      if not doc then return nil, err end
      merged.files[#merged.files + 1] = path
      local base = dir_of(host.realpath(path) or path)
      if not merged.current_context and text(doc["current-context"]) then
        merged.current_context = doc["current-context"]
      end
      for _, section in ipairs({ { "clusters", "cluster" }, { "users", "user" }, { "contexts", "context" } }) do
        local list, field = doc[section[1]], section[2]
        if list ~= nil and list ~= yaml.null then
          if type(list) ~= "table" then return nil, string.format("kubeconfig %s: %s must be a list", path, section[1]) end
          for i, entry in ipairs(list) do
            local name = type(entry) == "table" and text(entry.name)
            if not name then return nil, string.format("kubeconfig %s: %s entry %d has no name", path, section[1], i) end
            if not merged[section[1]][name] then
              local body = entry[field]
              merged[section[1]][name] = { body = type(body) == "table" and body or {}, dir = base, file = path }
            end
          end
        end
      end
    end
  end
  return merged
end

local function service_account_dir()
  local override = os.getenv("RUNBOOK_SERVICEACCOUNT_DIR")
  if override and override ~= "" then return override end
  return SERVICE_ACCOUNT_DIR
end

local function in_cluster_possible()
  local h, p = os.getenv("KUBERNETES_SERVICE_HOST"), os.getenv("KUBERNETES_SERVICE_PORT")
  if not h or h == "" or not p or p == "" then return false end
  return host.stat(service_account_dir() .. "/token") ~= nil
end

local function in_cluster(opts)
  local h, p = os.getenv("KUBERNETES_SERVICE_HOST"), os.getenv("KUBERNETES_SERVICE_PORT")
  if h:find(":", 1, true) then h = "[" .. h .. "]" end
  local dir = service_account_dir()
  local namespace, source = opts.namespace, "command line"
  if not namespace or namespace == "" then
    local from_env = os.getenv("POD_NAMESPACE") -- what client-go's in-cluster config reads first
    local ns = (from_env and from_env ~= "") and from_env or host.read_file(dir .. "/namespace")
    namespace = ns and util.trim(ns) or "default"
    source = (from_env and from_env ~= "") and "POD_NAMESPACE" or ns and "service account" or "default"
  end
  return {
    server = "https://" .. h .. ":" .. p,
    context = "in-cluster",
    user = "service account",
    source = "in-cluster service account (" .. dir .. ")",
    namespace = namespace,
    namespace_source = source,
    tls = { ca_file = host.stat(dir .. "/ca.crt") and (dir .. "/ca.crt") or nil },
    auth = { kind = "token_file", token_file = dir .. "/token" },
  }
end

local function decode_data(value, what, where)
  local bytes, err = base64.decode(value)
  if not bytes then return nil, string.format("%s: %s is %s", where, what, err) end
  return bytes
end

local function cluster_settings(entry, name, where)
  local c = entry.body
  local server = text(c.server)
  if not server then return nil, string.format("%s: cluster \"%s\" has no server", where, name) end
  if not server:match("^https?://[^/]") then -- a host after the scheme: tls-server-name splits it off
    return nil, string.format("%s: cluster \"%s\" has server '%s', not an http(s) URL", where, name, server)
  end
  local tls = {}
  local insecure, err = flag(c["insecure-skip-tls-verify"], "insecure-skip-tls-verify")
  if insecure == nil then return nil, where .. ": " .. err end
  tls.ca_file = absolute(text(c["certificate-authority"]), entry.dir)
  if text(c["certificate-authority-data"]) then
    tls.ca_pem, err = decode_data(c["certificate-authority-data"], "certificate-authority-data", where)
    if not tls.ca_pem then return nil, err end
  end
  if insecure and (tls.ca_file or tls.ca_pem) then
    return nil, string.format("%s: cluster \"%s\" sets both a certificate authority and insecure-skip-tls-verify; "
      .. "kubectl refuses that too: keep one", where, name)
  end
  tls.insecure = insecure or nil
  local server_name = text(c["tls-server-name"])
  if server_name then
    -- libcurl takes the TLS name from the URL: connect to the real address under that name.
    local scheme, hostport, rest = server:match("^(https?://)([^/]+)(.*)$")
    local real_host, port = hostport:match("^(.*):(%d+)$")
    real_host, port = real_host or hostport, port or (scheme == "https://" and "443" or "80")
    tls.connect_to = string.format("%s:%s:%s:%s", server_name, port, real_host, port)
    server = scheme .. server_name .. ":" .. port .. rest
  end
  if text(c["proxy-url"]) then
    return nil, string.format("%s: cluster \"%s\" sets proxy-url, which runbook does not support; "
      .. "use HTTPS_PROXY instead", where, name)
  end
  return { server = server:gsub("/+$", ""), tls = tls, raw = c }
end

local function exec_settings(e, entry, where)
  if type(e) ~= "table" then return nil, where .. ": exec must be a mapping" end
  local command = text(e.command)
  if not command then return nil, where .. ": exec has no command" end
  if command:find("/", 1, true) then command = absolute(command, entry.dir) end
  local args, env = {}, {}
  for _, a in ipairs(type(e.args) == "table" and e.args or {}) do args[#args + 1] = tostring(a) end
  for _, item in ipairs(type(e.env) == "table" and e.env or {}) do
    if type(item) == "table" and text(item.name) then env[#env + 1] = item.name .. "=" .. (text(item.value) or "") end
  end
  local api = text(e.apiVersion)
  if api ~= "client.authentication.k8s.io/v1" and api ~= "client.authentication.k8s.io/v1beta1" then
    return nil, string.format("%s: exec plugin apiVersion '%s' is not supported (use client.authentication.k8s.io/v1 or v1beta1)",
      where, tostring(api))
  end
  if text(e.interactiveMode) == "Always" then
    return nil, where .. ": the exec plugin needs an interactive terminal (interactiveMode: Always); runbook never prompts"
  end
  local provide = flag(e.provideClusterInfo, "provideClusterInfo")
  return { command = command, args = args, env = env, api_version = api, install_hint = text(e.installHint),
           provide_cluster_info = provide or false }
end

local function user_settings(entry, name, where)
  local u = entry.body
  local tls, auth = {}, { kind = "none" }
  local err
  tls.client_cert_file = absolute(text(u["client-certificate"]), entry.dir)
  tls.client_key_file = absolute(text(u["client-key"]), entry.dir)
  if text(u["client-certificate-data"]) then
    tls.client_cert_pem, err = decode_data(u["client-certificate-data"], "client-certificate-data", where)
    if not tls.client_cert_pem then return nil, err end
  end
  if text(u["client-key-data"]) then
    tls.client_key_pem, err = decode_data(u["client-key-data"], "client-key-data", where)
    if not tls.client_key_pem then return nil, err end
  end
  local has_cert = tls.client_cert_file or tls.client_cert_pem
  local has_key = tls.client_key_file or tls.client_key_pem
  if (has_cert and not has_key) or (has_key and not has_cert) then
    return nil, string.format("%s: user \"%s\" has a client certificate without its key (or a key without its certificate)",
      where, name)
  end
  if text(u.tokenFile) then
    auth = { kind = "token_file", token_file = absolute(u.tokenFile, entry.dir) }
  elseif text(u.token) then
    auth = { kind = "token", token = u.token }
  elseif u.exec ~= nil and u.exec ~= yaml.null then
    local e
    e, err = exec_settings(u.exec, entry, where .. ": user \"" .. name .. "\"")
    if not e then return nil, err end
    auth = { kind = "exec", exec = e }
  elseif text(u.username) or text(u.password) then
    return nil, string.format("%s: user \"%s\" uses basic authentication (username/password), which runbook does not support",
      where, name)
  elseif u["auth-provider"] ~= nil and u["auth-provider"] ~= yaml.null then
    return nil, string.format("%s: user \"%s\" uses an auth-provider, removed from kubectl; use an exec plugin", where, name)
  end
  if has_cert and auth.kind == "none" then auth.kind = "certificate" end
  return { tls = tls, auth = auth }
end

-- resolve{kubeconfig=, context=, namespace=} -> access | nil, message
-- access = {server, context, user, source, namespace, namespace_source, tls = {...}, auth = {...}, files}
function config.resolve(opts)
  opts = opts or {}
  local merged, err = load_merged(opts)
  if not merged then return nil, err end
  local where = #merged.files > 0 and ("kubeconfig " .. table.concat(merged.files, ":")) or "kubeconfig"
  local context_name = opts.context ~= "" and opts.context or nil
  if not context_name then
    context_name = merged.current_context
    if not context_name then
      if in_cluster_possible() then return in_cluster(opts) end
      if #merged.files == 0 then
        return nil, "no Kubernetes configuration: no kubeconfig file (--kubeconfig, KUBECONFIG, ~/.kube/config) and " ..
          "not running in a cluster"
      end
      return nil, where .. " sets no current-context; choose one with --context"
    end
  end
  local ctx_entry = merged.contexts[context_name]
  if not ctx_entry then
    local names = util.sorted_keys(merged.contexts)
    return nil, string.format("context \"%s\" not found in %s (it has: %s)", context_name, where,
      #names > 0 and table.concat(names, ", ") or "no contexts")
  end
  local ctx = ctx_entry.body
  local cluster_name = text(ctx.cluster)
  local cluster_entry = cluster_name and merged.clusters[cluster_name]
  if not cluster_entry then
    return nil, string.format("%s: context \"%s\" names cluster \"%s\", which is not defined", where, context_name,
      tostring(cluster_name))
  end
  local cluster
  cluster, err = cluster_settings(cluster_entry, cluster_name, where)
  if not cluster then return nil, err end
  local user_name = text(ctx.user)
  local user = { tls = {}, auth = { kind = "none" } }
  if user_name then
    local user_entry = merged.users[user_name]
    if not user_entry then
      return nil, string.format("%s: context \"%s\" names user \"%s\", which is not defined", where, context_name, user_name)
    end
    user, err = user_settings(user_entry, user_name, where)
    if not user then return nil, err end
  end
  if cluster.server:match("^http://") and (user.auth.kind ~= "none" and user.auth.kind ~= "certificate") then
    return nil, string.format("%s: cluster \"%s\" is plain http; credentials are sent only over https", where, cluster_name)
  end
  local tls = util.shallow_copy(cluster.tls)
  for k, v in pairs(user.tls) do tls[k] = v end
  local namespace, source = opts.namespace, "command line"
  if not namespace or namespace == "" then
    namespace, source = text(ctx.namespace), "context " .. context_name
    if not namespace then namespace, source = "default", "default" end
  end
  return {
    server = cluster.server,
    context = context_name,
    cluster = cluster_name,
    user = user_name,
    source = where,
    files = merged.files,
    namespace = namespace,
    namespace_source = source,
    tls = tls,
    auth = user.auth,
    cluster_info = cluster.raw,
  }
end

return config
