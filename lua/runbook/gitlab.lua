-- The GitLab REST API (v4) for runbooks (require "runbook.gitlab"): the few calls user administration
-- needs, with GitLab's own rules for pagination and refusals.
--
--   local gitlab = require "runbook.gitlab"
--   local client = assert(gitlab.connect{ url = "https://gitlab.example.com", token_file = "/etc/gitlab-token" })
--   for user in client:users{ active = true, humans = true } do ... end  -- every page (raises on failure)
--   local user = client:user(42)              -- table | false (no such user) | nil, message
--   local ok, how = client:deactivate(42)     -- true, "deactivated" | false, GitLab's refusal | nil, message
--
-- The token (an administrator's personal access token) comes from token_file or GITLAB_TOKEN, never from
-- the command line, and never appears in a message. Failures come back as nil, message, details; misuse
-- raises. Requests that are safe to repeat, and any request GitLab answers 429 with Retry-After, are
-- retried by runbook.http.
local host = require "runbook.host"
local http = require "runbook.http"
local json = require "runbook.json"
local util = require "runbook.util"

local gitlab = {}

-- GitLab caps per_page at 100 (offset and keyset pagination alike).
local MAX_PAGE = 100

local Client = {}
Client.__index = Client
Client.__name = "runbook.gitlab.Client"
Client.__tostring = function(c) return "gitlab client for " .. c.api_url end

-- "https://gitlab.example.com", ".../gitlab" (a relative URL root) and ".../api/v4" all mean one API.
function gitlab.api_url(url)
  if type(url) ~= "string" or not url:match("^https?://[^/]+") then
    return nil, string.format("'%s' is not a GitLab URL (expected http(s)://host[/path][/api/v4])", tostring(url))
  end
  url = url:gsub("/+$", "")
  if url:match("/api/v4$") then return url end
  return url .. "/api/v4"
end

local function read_token(opts)
  if opts.token_file then
    local text, err = host.read_file(opts.token_file)
    if not text then return nil, "cannot read the GitLab token: " .. err end
    local st = host.stat(opts.token_file)
    if st and st.mode & tonumber("077", 8) ~= 0 then
      require("runbook.ui").warn(string.format("token file %s is readable by other users (mode %o); chmod 600 it",
        opts.token_file, st.mode))
    end
    local token = util.trim(text)
    if token == "" then return nil, "the GitLab token file " .. opts.token_file .. " is empty" end
    return token
  end
  local token = os.getenv("GITLAB_TOKEN")
  if token and token ~= "" then return util.trim(token) end
  return nil, "no GitLab token: set GITLAB_TOKEN or give a token file (-p token_file=PATH)"
end

-- connect{url=, token_file=, ca_file=, insecure=, timeout=} -> client | nil, message
-- Nothing is sent until the first call.
function gitlab.connect(opts)
  opts = opts or {}
  local api, err = gitlab.api_url(opts.url)
  if not api then return nil, err end
  local token
  token, err = read_token(opts)
  if not token then return nil, err end
  require("runbook.secrets").remember(token) -- whatever echoes it (a hostile 401 body) shows ***
  return setmetatable({
    api_url = api,
    host = api:match("^https?://([^/]+)"),
    token = token,
    tls = { ca_file = opts.ca_file, insecure = opts.insecure },
    timeout = opts.timeout or 30,
  }, Client)
end

-- GitLab's error message: {"message": "403 Forbidden - ..."} (or {"error": ...}), else the text
-- (Rack::Attack's 429 answers "Retry later" as plain text).
local function gitlab_message(resp)
  local doc = json.decode(resp.body)
  if type(doc) == "table" then
    local m = doc.message or doc.error
    if type(m) == "string" then return m end
    if type(m) == "table" then return json.encode(m) end
  end
  local text = util.trim(resp.body:gsub("%s+", " ")):sub(1, 200)
  return text ~= "" and text or nil
end
gitlab.message = gitlab_message

local HINTS = {
  connect = " (is GitLab running, and is the URL right?)",
  tls = " (TLS verification failed: give GitLab's CA with -p ca_file=...)",
  tls_handshake = " (the TLS handshake failed: is the URL's scheme, http:// or https://, and its port right?)",
}

local function with_hint(client, err, detail)
  return string.format("gitlab %s: %s%s", client.host, err, detail and HINTS[detail.kind] or ""), detail
end

-- A redirect means the URL is not the API: http:// sent to https://, a wrong relative URL root sent to
-- the sign-in page. Says where it leads and, when the target shows it, the base URL to give instead.
local function redirect_message(client, method, path, resp)
  local url = client.api_url .. path
  local to = http.redirect(url, resp)
  if not to then return nil end
  local origin, from_path = url:match("^(%a[%w+.-]*://[^/?#]*)([^?#]*)")
  local prefix = to.path:match("^(.-)/api/v4/") or to.path:match("^(.-)/users/sign_in")
  local suggestion = prefix and (to.origin .. prefix)
  local advice
  if to.origin:gsub("^%a+", "") ~= origin:lower():gsub("^%a+", "") then
    advice = "it leads to another server (a single sign-on page?); give the URL GitLab itself answers on"
  elseif suggestion and gitlab.api_url(suggestion) ~= client.api_url then
    advice = "the URL is probably not GitLab's base URL; try -p gitlab=" .. suggestion
  else
    advice = "the URL is probably not GitLab's; give its base URL (-p gitlab=https://gitlab.example.com)"
  end
  return string.format("gitlab %s: the server redirected %s %s to %s: %s", client.host, method, from_path,
    util.redact_url(to.location):sub(1, 300), advice)
end

-- The options for runbook.http: path is below /api/v4, with its query string already built.
function Client:request_options(method, path_and_query)
  return {
    method = method, url = self.api_url .. path_and_query, timeout = self.timeout,
    headers = { ["PRIVATE-TOKEN"] = self.token, Accept = "application/json" },
    ca_file = self.tls.ca_file, insecure = self.tls.insecure,
  }
end

-- An error message for a response the caller did not expect, with advice for the usual causes.
function Client:unexpected(method, path, resp)
  local redirected = redirect_message(self, method, path, resp)
  if redirected then return redirected, { status = resp.status, location = resp.headers.location } end
  local message = gitlab_message(resp)
  local advice = ""
  if resp.status == 401 then
    advice = "; GitLab does not accept the token (expired, revoked, or for another instance?)"
  elseif resp.status == 403 then
    advice = "; the token's user must be an administrator, and the token needs the api scope"
  elseif resp.status == 429 then
    advice = "; GitLab's rate limit held for longer than the retries waited"
  end
  return string.format("gitlab %s: %s %s: HTTP %d%s%s", self.host, method, path:gsub("%?.*$", ""), resp.status,
    message and (": " .. message) or "", advice), { status = resp.status, message = message }
end

local function decode_get(client, path, resp, err, detail)
  if not resp then return nil, with_hint(client, err, detail) end
  if resp.status == 404 then return false end
  if resp.status ~= 200 then return nil, client:unexpected("GET", path, resp) end
  local doc, decode_err = http.decode(resp)
  if doc == nil then return nil, string.format("gitlab %s: GET %s: %s", client.host, path, decode_err) end
  return doc, resp
end

-- get_json(path_and_query) -> doc, response | false (404) | nil, message, details
function Client:get_json(path)
  return decode_get(self, path, http.request(self:request_options("GET", path)))
end

-- Starts a GET now; the returned function finishes it with get_json's results.
function Client:start_get(path)
  local pending = http.start(self:request_options("GET", path))
  return function() return decode_get(self, path, pending:wait()) end
end

-- version() -> {version = "17.5.1-ee", revision = ...} | nil, message. Cached.
function Client:version()
  if self._version then return self._version end
  local doc, err, detail = self:get_json("/version")
  if doc == false then return nil, string.format("gitlab %s: GET /api/v4/version: HTTP 404; is this GitLab?", self.host) end
  if not doc then return nil, err, detail end
  if type(doc) ~= "table" or type(doc.version) ~= "string" then
    return nil, string.format("gitlab %s: GET /api/v4/version did not name a version; is this GitLab?", self.host)
  end
  self._version = doc
  return doc
end

-- current_user() -> the token's user (with is_admin when it is an administrator) | nil, message
function Client:current_user()
  local doc, err, detail = self:get_json("/user")
  if doc == false then return nil, string.format("gitlab %s: GET /api/v4/user: HTTP 404", self.host) end
  return doc, err, detail
end

-- The query of the next page, from a Link header (RFC 8288): `<URL>; rel="next"`. Only the query is
-- taken: it is sent to our own API URL, so the token never follows a link to another host (GitLab
-- writes its external URL there, which may differ from the URL the runbook was given).
function gitlab.next_query(link)
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

-- users{active=, humans=, exclude_internal=, without_project_bots=, admins=, per_page=} -> iterator
-- over user models in id order, every page, with keyset pagination (pagination=keyset, order_by=id,
-- sort=asc), following the Link header. The next page is requested while the caller works on this one,
-- so memory holds at most two pages. A failure raises (an iterator cannot return nil, message): wrap
-- the loop in pcall to handle it. client.pages counts the pages read.
function Client:users(opts)
  opts = opts or {}
  local query = { pagination = "keyset", order_by = "id", sort = "asc",
                  per_page = math.min(opts.per_page or MAX_PAGE, MAX_PAGE) }
  for _, filter in ipairs({ "active", "humans", "exclude_internal", "without_project_bots", "admins" }) do
    if opts[filter] then query[filter] = true end
  end
  local client = self
  client.pages = 0
  local function start(q) return client:start_get("/users?" .. q) end
  local function take(finish)
    local doc, resp = finish()
    if doc == false then error(string.format("gitlab %s: GET /api/v4/users: HTTP 404", client.host), 0) end
    if not doc then error(resp, 0) end
    if type(doc) ~= "table" or (next(doc) ~= nil and #doc == 0) then
      error("gitlab " .. client.host .. ": GET /api/v4/users did not return a list", 0)
    end
    client.pages = client.pages + 1
    return doc, gitlab.next_query(resp.headers["link"])
  end
  local page, index, seen_last = {}, 0, 0
  local next_page = start(util.query(query))
  return function()
    while index >= #page do
      if not next_page then return nil end
      local items, next_q = take(next_page)
      -- A next link that does not move on would loop for ever: keyset pages ascend by id.
      if #items > 0 and math.type(items[1].id) == "integer" and items[1].id <= seen_last then
        error("gitlab " .. client.host .. ": GET /api/v4/users went back to id " .. items[1].id .. "; refusing to loop", 0)
      end
      next_page = (next_q and #items > 0) and start(next_q) or nil
      page, index = items, 0
      if #items > 0 then seen_last = items[#items].id end
    end
    index = index + 1
    return page[index]
  end
end

-- user(id) -> model | false when GitLab has no such user | nil, message
function Client:user(id)
  return self:get_json("/users/" .. math.tointeger(id))
end

-- deactivate(id) -> true, "deactivated" | false, refusal | nil, message, details
-- GitLab answers 201 when the user is deactivated now or was already; 403 with a reason when the
-- user cannot be deactivated (blocked, internal, active within the instance's dormancy period): that
-- refusal is the outside world saying no, returned as false and GitLab's words. A bare 403 means the
-- token is not an administrator's: a failure.
function Client:deactivate(id)
  local path = "/users/" .. math.tointeger(id) .. "/deactivate"
  local resp, err, detail = http.request(self:request_options("POST", path))
  if not resp then return nil, with_hint(self, err, detail) end
  if resp.status == 201 or resp.status == 200 then return true, "deactivated" end
  if resp.status == 404 then return false, "no such user (deleted since the plan)" end
  local message = gitlab_message(resp)
  if resp.status == 403 and message and message:find("cannot be deactivated", 1, true) then
    return false, (message:gsub("^403 Forbidden%s*%-%s*", ""))
  end
  return nil, self:unexpected("POST", path, resp)
end

-- ---- reading user models ----

local function present(v) return v ~= nil and v ~= json.null end

-- The calendar date (UTC) of a time, "2026-08-25": GitLab's last_activity_on is a date.
function gitlab.date(t)
  return os.date("!%Y-%m-%d", math.floor(t))
end

-- last_activity_on(user) -> "YYYY-MM-DD" | nil (never active)
function gitlab.last_activity_on(user)
  local v = user.last_activity_on
  if present(v) and type(v) == "string" and v:match("^%d%d%d%d%-%d%d%-%d%d$") then return v end
  return nil
end

-- A time field (created_at, current_sign_in_at) in seconds since the epoch, or nil.
function gitlab.time(user, field)
  local v = user[field]
  if not present(v) then return nil end
  return util.parse_time(v)
end

-- Whether the model is the administrator's view (the list shows is_admin and last_activity_on only
-- to administrators): without it, nobody can be judged.
function gitlab.is_admin_view(user)
  return user.is_admin ~= nil and user.last_activity_on ~= nil
end

return gitlab
