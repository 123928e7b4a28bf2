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
-- retried by runbook.http. What every service client shares (token, requests, hints, redirects, paging)
-- is in runbook.rest.
local json = require "runbook.json"
local rest = require "runbook.rest"
local util = require "runbook.util"

local gitlab = {}

-- GitLab caps per_page at 100 (offset and keyset pagination alike).
local MAX_PAGE = 100

-- GitLab's error message: {"message": "403 Forbidden - ..."} (or {"error": ...}), else the text
-- (Rack::Attack's 429 answers "Retry later" as plain text).
function gitlab.message(resp)
  local doc = json.decode(resp.body)
  if type(doc) == "table" then
    local m = doc.message or doc.error
    if type(m) == "string" then return m end
    if type(m) == "table" then return json.encode(m) end
  end
  local text = util.trim(resp.body:gsub("%s+", " ")):sub(1, 200)
  return text ~= "" and text or nil
end

local SERVICE = {
  label = "gitlab", name = "GitLab", noun = "GitLab", url_shape = "http(s)://host[/path][/api/v4]",
  api_url = function(url) return gitlab.api_url(url) end, message = gitlab.message,
  token_env = "GITLAB_TOKEN", token_header = "PRIVATE-TOKEN", token_prefix = "",
  -- http:// sent to https://, a wrong relative URL root sent to the sign-in page.
  redirect = {
    base_of = function(path) return path:match("^(.-)/api/v4/") or path:match("^(.-)/users/sign_in") end,
    elsewhere = "it leads to another server (a single sign-on page?); give the URL GitLab itself answers on",
    suggest = "the URL is probably not GitLab's base URL; try -p gitlab=",
    otherwise = "the URL is probably not GitLab's; give its base URL (-p gitlab=https://gitlab.example.com)",
  },
  advice = {
    [401] = "; GitLab does not accept the token (expired, revoked, or for another instance?)",
    [403] = "; the token's user must be an administrator, and the token needs the api scope",
    [429] = "; GitLab's rate limit held for longer than the retries waited",
  },
}

local Client = rest.class(SERVICE)

-- "https://gitlab.example.com", ".../gitlab" (a relative URL root) and ".../api/v4" all mean one API.
function gitlab.api_url(url)
  local err
  url, err = rest.base_url(url, SERVICE)
  if not url then return nil, err end
  if url:match("/api/v4$") then return url end
  return url .. "/api/v4"
end

-- connect{url=, token_file=, ca_file=, insecure=, timeout=} -> client | nil, message
-- Nothing is sent until the first call.
function gitlab.connect(opts)
  opts = opts or {}
  return rest.connect(Client, opts.url, opts)
end

-- Paths here carry their query (the next page's comes from a Link header); messages show the path alone.
function Client:shown_path(path)
  return (path:gsub("%?.*$", ""))
end

-- request_options(method, path_and_query) -> the options for runbook.http; get_json(path_and_query) ->
-- doc, response | false (404) | nil, message, details; start_get(path_and_query): as in runbook.rest.

-- version() -> {version = "17.5.1-ee", revision = ...} | nil, message. Cached.
function Client:version()
  if self._version then return self._version end
  local doc, err, detail = self:get_json("/version")
  if doc == false then return nil, self:failure("GET /api/v4/version: HTTP 404; is this GitLab?") end
  if not doc then return nil, err, detail end
  if type(doc) ~= "table" or type(doc.version) ~= "string" then
    return nil, self:failure("GET /api/v4/version did not name a version; is this GitLab?")
  end
  self._version = doc
  return doc
end

-- current_user() -> the token's user (with is_admin when it is an administrator) | nil, message
function Client:current_user()
  local doc, err, detail = self:get_json("/user")
  if doc == false then return nil, self:failure("GET /api/v4/user: HTTP 404") end
  return doc, err, detail
end

-- next_query(link) -> the query of the next page, from a Link header (runbook.rest's, named here too).
gitlab.next_query = rest.next_query

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
    if doc == false then error(client:failure("GET /api/v4/users: HTTP 404"), 0) end
    if not doc then error(resp, 0) end
    if type(doc) ~= "table" or (next(doc) ~= nil and #doc == 0) then
      error(client:failure("GET /api/v4/users did not return a list"), 0)
    end
    client.pages = client.pages + 1
    return doc, rest.next_query(resp.headers["link"])
  end
  local seen_last = 0
  return rest.prefetched(start(util.query(query)), function(this_page)
    local items, next_q = take(this_page)
    -- A next link that does not move on would loop for ever: keyset pages ascend by id.
    if #items > 0 and math.type(items[1].id) == "integer" and items[1].id <= seen_last then
      error(client:failure("GET /api/v4/users went back to id %d; refusing to loop", items[1].id), 0)
    end
    if #items > 0 then seen_last = items[#items].id end
    return items, (next_q and #items > 0) and start(next_q) or nil
  end)
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
  local resp, err, detail = self:request("POST", path)
  if not resp then return nil, err, detail end
  if resp.status == 201 or resp.status == 200 then return true, "deactivated" end
  if resp.status == 404 then return false, "no such user (deleted since the plan)" end
  local message = gitlab.message(resp)
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
