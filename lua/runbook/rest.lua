-- What every client of a token-authenticated JSON API needs (runbook.hub, runbook.gitlab), so that each
-- of those modules holds only its own service: the token read from a file or the environment, the
-- base URL checked, request options built, connection failures given advice, messages shaped as
-- "<service> <host>: ...", redirects explained, and pages fetched one ahead.
--
-- A service module describes itself once and gets a client class:
--
--   local Client = rest.class{
--     label = "gitlab",              -- starts every message ("gitlab HOST: ...") and the class's name
--     name = "GitLab",               -- in token and URL messages ("no GitLab token", "not a GitLab URL")
--     noun = "GitLab",               -- in advice ("is GitLab running", "give GitLab's CA")
--     url_shape = "http(s)://host[/path][/api/v4]",
--     api_url = gitlab.api_url,      -- url -> the API's base URL | nil, message
--     token_env = "GITLAB_TOKEN", token_header = "PRIVATE-TOKEN", token_prefix = "",
--     message = gitlab.message,      -- response -> the service's own error message | nil
--     redirect = {                   -- what to say after a redirect (see Base:redirect_advice)
--       base_of = function(path) ... end, -- the base URL's path, from the path redirected to | nil
--       elsewhere = "...", suggest = "... try -p gitlab=", otherwise = "...",
--     },
--     advice = { [401] = "; ...", [403] = function(path, message) return "; ..." end }, -- by status
--   }
--
-- Not for runbooks (it is not in runbook.public): they use the service modules.
local host = require "runbook.host"
local http = require "runbook.http"
local secrets = require "runbook.secrets"
local ui = require "runner.ui"
local util = require "runbook.util"

local rest = {}

-- Methods every service client has; a service's own Client falls back to these.
local Base = {}
rest.Client = Base

-- class(service) -> the metatable of that service's clients (see above), inheriting Base.
function rest.class(service)
  local Client = setmetatable({ service = service }, { __index = Base })
  Client.__index = Client
  Client.__name = "runbook." .. service.label .. ".Client"
  Client.__tostring = function(c) return service.label .. " client for " .. c.api_url end
  -- Advice for a connection that failed, by the kind runbook.http gives it.
  Client.hints = {
    connect = " (is " .. service.noun .. " running, and is the URL right?)",
    tls = " (TLS verification failed: give " .. service.noun .. "'s CA with -p ca_file=...)",
    tls_handshake = " (the TLS handshake failed: is the URL's scheme, http:// or https://, and its port right?)",
  }
  return Client
end

-- base_url(url, service) -> url without trailing slashes | nil, message (not http(s)://host...)
function rest.base_url(url, service)
  if type(url) ~= "string" or not url:match("^https?://[^/]+") then
    return nil, string.format("'%s' is not a %s URL (expected %s)", tostring(url), service.name, service.url_shape)
  end
  return (url:gsub("/+$", ""))
end

-- read_token(service, opts) -> token | nil, message: from opts.token_file (warning when others may read
-- it), else from the service's environment variable. Never from the command line.
function rest.read_token(service, opts)
  if opts.token_file then
    local text, err = host.read_file(opts.token_file)
    if not text then return nil, "cannot read the " .. service.name .. " token: " .. err end
    local st = host.stat(opts.token_file)
    if st and st.mode & tonumber("077", 8) ~= 0 then
      ui.warn(string.format("token file %s is readable by other users (mode %o); chmod 600 it",
        opts.token_file, st.mode))
    end
    local token = util.trim(text)
    if token == "" then return nil, "the " .. service.name .. " token file " .. opts.token_file .. " is empty" end
    return token
  end
  local token = os.getenv(service.token_env)
  if token and token ~= "" then return util.trim(token) end
  return nil, string.format("no %s token: set %s or give a token file (-p token_file=PATH)", service.name,
    service.token_env)
end

-- connect(Client, url, {token_file=, ca_file=, insecure=, timeout=}) -> client | nil, message
-- Nothing is sent until the first call.
function rest.connect(Client, url, opts)
  local service = Client.service
  local api, err = service.api_url(url)
  if not api then return nil, err end
  local token
  token, err = rest.read_token(service, opts)
  if not token then return nil, err end
  secrets.remember(token) -- whatever echoes it (a hostile 401 body) shows ***
  return setmetatable({
    api_url = api,
    host = api:match("^https?://([^/]+)"),
    token = token,
    tls = { ca_file = opts.ca_file, insecure = opts.insecure },
    timeout = opts.timeout or 30,
  }, Client)
end

-- failure(fmt, ...) -> "<service> <host>: " and the formatted text: how every message names its server.
function Base:failure(fmt, ...)
  return string.format("%s %s: " .. fmt, self.service.label, self.host, ...)
end

-- with_hint(err, details) -> message, details: a failed connection, with advice for its kind.
function Base:with_hint(err, detail)
  return self:failure("%s%s", err, detail and self.hints[detail.kind] or ""), detail
end

-- request_options(method, path[, {query=, json=, accept=}]) -> the options for runbook.http. path is
-- below the API's base URL and may carry its own query string.
function Base:request_options(method, path, opts)
  opts = opts or {}
  local url = self.api_url .. path
  if opts.query then
    local q = util.query(opts.query)
    if q ~= "" then url = url .. "?" .. q end
  end
  local service = self.service
  return {
    method = method, url = url, json = opts.json, timeout = self.timeout,
    headers = { [service.token_header] = service.token_prefix .. self.token, Accept = opts.accept or "application/json" },
    ca_file = self.tls.ca_file, insecure = self.tls.insecure,
  }
end

-- request(method, path, {query=, json=, accept=}) -> response | nil, message, details
function Base:request(method, path, opts)
  local resp, err, detail = http.request(self:request_options(method, path, opts))
  if not resp then return nil, self:with_hint(err, detail) end
  return resp
end

-- redirected(method, path, resp) -> message, details | nil when resp is no redirect. A redirect means
-- the URL is not the API: say where it leads, and the service's advice, given the target ({origin=,
-- path=, location=}) and whether it is on another server (the scheme aside: http:// sent to https://
-- is the same server).
function Base:redirected(method, path, resp)
  local url = self.api_url .. path
  local to = http.redirect(url, resp)
  if not to then return nil end
  local origin, from_path = url:match("^(%a[%w+.-]*://[^/?#]*)([^?#]*)")
  local elsewhere = to.origin:gsub("^%a+", "") ~= origin:lower():gsub("^%a+", "")
  return self:failure("the server redirected %s %s to %s: %s", method, from_path,
    util.redact_url(to.location):sub(1, 300), self:redirect_advice(to, elsewhere)),
    { status = resp.status, location = resp.headers.location }
end

-- The service's advice after a redirect: `to` is on another server; or it shows the service's base URL
-- (a prefix, a relative URL root) and that differs from ours; or neither.
function Base:redirect_advice(to, elsewhere)
  local words = self.service.redirect
  if elsewhere then return words.elsewhere end
  local base = words.base_of(to.path)
  local suggestion = base and (to.origin .. base)
  if suggestion and self.service.api_url(suggestion) ~= self.api_url then return words.suggest .. suggestion end
  return words.otherwise
end

-- The service's advice after an unexpected status, for its usual causes ("" when it has none).
function Base:advice(method, path, resp, message)
  local advice = self.service.advice[resp.status]
  if type(advice) == "function" then return advice(path, message) end
  return advice or ""
end

-- How a request path is shown in messages.
function Base:shown_path(path)
  return path
end

-- unexpected(method, path, resp) -> message, details: for a response the caller did not expect, with the
-- service's own message and advice for the usual causes.
function Base:unexpected(method, path, resp)
  local redirected, details = self:redirected(method, path, resp)
  if redirected then return redirected, details end
  local message = self.service.message(resp)
  return self:failure("%s %s: HTTP %d%s%s", method, self:shown_path(path), resp.status,
    message and (": " .. message) or "", self:advice(method, path, resp, message)),
    { status = resp.status, message = message }
end

-- Whether a 404 answer to GET path means "no such thing" (get_json's false) rather than a failure.
function Base:absent(path)
  return true
end

local function decode_get(client, path, resp, err, detail)
  if not resp then return nil, client:with_hint(err, detail) end
  if resp.status == 404 and client:absent(path) then return false end
  if resp.status ~= 200 then return nil, client:unexpected("GET", path, resp) end
  local doc, decode_err = http.decode(resp)
  if doc == nil then return nil, client:failure("GET %s: %s", path, decode_err) end
  return doc, resp
end

-- get_json(path[, opts]) -> doc, response | false (absent) | nil, message, details
function Base:get_json(path, opts)
  return decode_get(self, path, http.request(self:request_options("GET", path, opts)))
end

-- Starts a GET now; the returned function finishes it with get_json's results.
function Base:start_get(path, opts)
  local pending = http.start(self:request_options("GET", path, opts))
  return function() return decode_get(self, path, pending:wait()) end
end

-- ---- paging ----

-- prefetched(first, turn) -> iterator over the items of every page. first is the first page's pending
-- request; turn(pending) -> this page's items, the next page's pending request (nil after the last),
-- and is expected to send that request before returning, so the service works on the next page while
-- the caller works on this one: memory holds at most two pages.
function rest.prefetched(first, turn)
  local page, index, pending = {}, 0, first
  return function()
    while index >= #page do
      if not pending then return nil end
      page, pending = turn(pending)
      index = 0
    end
    index = index + 1
    return page[index]
  end
end

-- The query of the next page, from a Link header (RFC 8288): `<URL>; rel="next"`. Only the query is
-- taken: it is sent to our own API URL, so the token never follows a link to another host (a service
-- may write its external URL there, which may differ from the URL the runbook was given).
function rest.next_query(link)
  if type(link) ~= "string" then return nil end
  for target, params in link:gmatch("<([^>]*)>([^,<]*)") do
    local rel = params:match('[Rr][Ee][Ll]%s*=%s*"([^"]*)"') or params:match("[Rr][Ee][Ll]%s*=%s*([^;%s]+)")
    if rel then
      for word in rel:gmatch("%S+") do
        if word == "next" then return target:match("%?(.*)$") or "" end
      end
    end
  end
  return nil
end

return rest
