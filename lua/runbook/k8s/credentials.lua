-- The credentials a request carries: a bearer token (given, from a file re-read on every request
-- because projected tokens rotate, or from an exec plugin, cached until it expires) and client
-- certificates (from the kubeconfig or the plugin). Nothing here ever goes into a message: errors
-- name the file, the plugin command and its exit code, never what they returned.
local base64 = require "runbook.k8s.base64"
local host = require "runbook.host"
local json = require "runbook.json"
local plugin_core = require "runbook.k8s_plugin_core"
local secrets = require "runbook.secrets"
local util = require "runbook.util"

local credentials = {}

local PLUGIN_TIMEOUT = 60     -- seconds; kubectl waits forever, an unattended runbook must not
local EXPIRY_MARGIN = 10      -- seconds: a token about to expire is renewed before it is used

local Credentials = {}
Credentials.__index = Credentials

-- new(access) where access comes from config.resolve.
-- Every token and key read here is remembered as a secret (runbook.secrets): output never shows it.
function credentials.new(access)
  if access.auth then secrets.remember(access.auth.token) end
  if access.tls then secrets.remember(access.tls.client_key_pem) end
  return setmetatable({ auth = access.auth, access = access, cached = nil }, Credentials)
end

local function exec_info(self)
  local e = self.auth.exec
  local spec = { interactive = false }
  if e.provide_cluster_info then
    local raw, access = self.access.cluster_info or {}, self.access
    local cluster = { server = access.server, ["tls-server-name"] = raw["tls-server-name"],
                      ["insecure-skip-tls-verify"] = access.tls.insecure or nil }
    if access.tls.ca_pem then
      cluster["certificate-authority-data"] = base64.encode(access.tls.ca_pem)
    elseif access.tls.ca_file then
      local pem = host.read_file(access.tls.ca_file)
      if pem then cluster["certificate-authority-data"] = base64.encode(pem) end
    end
    spec.cluster = cluster
  end
  return json.encode({ apiVersion = e.api_version, kind = "ExecCredential", spec = spec })
end

local function last_line(text)
  local line = util.trim(text or ""):match("([^\n]*)$") or ""
  return #line > 200 and line:sub(1, 200) .. "..." or line
end

-- Runs the plugin: {token=, cert_pem=, key_pem=, expires=} | nil, message
local function run_plugin(self)
  local e = self.auth.exec
  local result, err, kind = plugin_core.run{ command = e.command, args = e.args, env = e.env,
                                             exec_info = exec_info(self), timeout = PLUGIN_TIMEOUT }
  local name = e.command:match("[^/]+$")
  if not result then
    if kind == "not_found" then
      return nil, string.format("exec credential plugin '%s' not found%s", e.command,
        e.install_hint and (": " .. util.trim(e.install_hint)) or " (is it installed and on PATH?)")
    end
    return nil, "exec credential plugin " .. name .. ": " .. err
  end
  if result.exit_code ~= 0 then
    local why = result.signal and ("was killed by signal " .. result.signal) or ("exited with status " .. tostring(result.exit_code))
    local said = last_line(result.stderr)
    return nil, string.format("exec credential plugin %s %s%s", name, why, said ~= "" and (": " .. said) or "")
  end
  local doc = json.decode(result.stdout)
  if type(doc) ~= "table" or doc.kind ~= "ExecCredential" then
    return nil, "exec credential plugin " .. name .. " did not print an ExecCredential"
  end
  if doc.apiVersion ~= e.api_version then
    return nil, string.format("exec credential plugin %s answered apiVersion %s, but the kubeconfig asks for %s",
      name, tostring(doc.apiVersion), e.api_version)
  end
  local status = type(doc.status) == "table" and doc.status or {}
  local out = {}
  if type(status.token) == "string" and status.token ~= "" then out.token = status.token end
  if type(status.clientCertificateData) == "string" and type(status.clientKeyData) == "string" then
    out.cert_pem, out.key_pem = status.clientCertificateData, status.clientKeyData
  end
  if not out.token and not out.cert_pem then
    return nil, "exec credential plugin " .. name .. " returned neither a token nor a client certificate"
  end
  if type(status.expirationTimestamp) == "string" then
    out.expires = util.parse_time(status.expirationTimestamp)
  end
  return out
end

local function plugin_credential(self)
  local c = self.cached
  if c and (not c.expires or c.expires - EXPIRY_MARGIN > host.now()) then return c end
  local fresh, err = run_plugin(self)
  if not fresh then return nil, err end
  secrets.remember(fresh.token)
  secrets.remember(fresh.key_pem)
  self.cached = fresh
  return fresh
end

-- headers() -> {Authorization = ...} (possibly empty) | nil, message
function Credentials:headers()
  local auth = self.auth
  if auth.kind == "token" then return { Authorization = "Bearer " .. auth.token } end
  if auth.kind == "token_file" then
    local body, err = host.read_file(auth.token_file)
    if not body then return nil, "cannot read the token file " .. err end
    local token = util.trim(body)
    if token == "" then return nil, "the token file " .. auth.token_file .. " is empty" end
    secrets.remember(token)
    return { Authorization = "Bearer " .. token }
  end
  if auth.kind == "exec" then
    local c, err = plugin_credential(self)
    if not c then return nil, err end
    return c.token and { Authorization = "Bearer " .. c.token } or {}
  end
  return {}
end

-- tls() -> extra TLS options (a client certificate an exec plugin returned), or {}.
function Credentials:tls()
  local c = self.auth.kind == "exec" and self.cached
  if c and c.cert_pem then return { client_cert_pem = c.cert_pem, client_key_pem = c.key_pem } end
  return {}
end

-- After a 401: forget what may be stale. Returns true when a retry can present something new
-- (a token file is read again anyway; an exec plugin runs again).
function Credentials:refresh()
  if self.auth.kind == "exec" then
    self.cached = nil
    return true
  end
  return self.auth.kind == "token_file"
end

-- What to call these credentials in a message (never their value).
function Credentials:describe()
  local a = self.auth
  if a.kind == "token" then return "a bearer token" end
  if a.kind == "token_file" then return "the token in " .. a.token_file end
  if a.kind == "exec" then return "exec plugin " .. a.exec.command:match("[^/]+$") end
  if a.kind == "certificate" then return "a client certificate" end
  return "no credentials"
end

return credentials
