-- JupyterHub REST API for runbooks (require "runbook.hub").
--
--   local hub = require "runbook.hub"
--   local client = assert(hub.connect{ url = "https://hub.example.org", token_file = "/etc/hub-token" })
--   for user in client:users() do ... end            -- every user, page by page (raises on failure)
--   local user = client:user("ana.maria@example.edu") -- table | false (no such user) | nil, message
--   assert(client:delete_user("bob"))                 -- true, "deleted" | true, "already gone" | nil, message
--
-- The token comes from token_file or JUPYTERHUB_API_TOKEN, never from the command line, and never
-- appears in any message. Failures come back as nil, message, details; misuse raises. What every
-- service client shares (token, requests, hints, redirects, paging) is in runbook.rest.
local http = require "runbook.http"
local json = require "runbook.json"
local rest = require "runbook.rest"
local util = require "runbook.util"

local hub = {}

local PAGINATION = "application/jupyterhub-pagination+json"
local MAX_PAGE = 200 -- the hub caps pages at api_page_max_limit, 200 by default

-- The hub's error message, when it sent one ({"status": 403, "message": "..."}).
local function hub_message(resp)
  local doc = json.decode(resp.body)
  if type(doc) == "table" and type(doc.message) == "string" then return doc.message end
  local text = resp.body:gsub("%s+", " "):sub(1, 200)
  return text ~= "" and text or nil
end

local SERVICE = {
  label = "hub", name = "hub", noun = "the hub", url_shape = "http(s)://host[/prefix][/hub/api]",
  api_url = function(url) return hub.api_url(url) end, message = hub_message,
  token_env = "JUPYTERHUB_API_TOKEN", token_header = "Authorization", token_prefix = "token ",
  -- The hub sends unknown paths to /hub/..., a proxy sends http:// to https:// or to a login page; the
  -- base URL is the part before /hub/.
  redirect = {
    base_of = function(path)
      local prefix = path:match("^(.-)/hub/") or path:match("^(.-)/hub$")
      return prefix and (prefix .. "/")
    end,
    elsewhere = "it leads to another server (a login page? an authenticating proxy in front of the hub?); " ..
      "give the URL the hub itself answers on",
    suggest = "the URL is probably not the hub's base URL; try -p hub=",
    otherwise = "the URL is probably not the hub's; give the hub's base URL (-p hub=https://hub.example.org/)",
  },
  advice = {
    [401] = "; the hub does not accept the token (expired, revoked, or for another hub?)",
    -- JupyterHub 3 answers an unknown token like an anonymous request: 403, naming the scopes.
    [403] = function(_, message)
      return (message or ""):find("requires", 1, true) and "; the token is not valid for this hub, or lacks that scope"
        or "; the token is not valid for this hub, or lacks a scope this needs (a service token with admin:users, admin:servers, list:users, read:users, read:hub)"
    end,
    [404] = function(path) return path == "/" and "; this URL is not a JupyterHub API" or "" end,
  },
}

-- "https://hub.example.org", ".../hub", ".../hub/api" and ".../hub/api/" all mean the same API.
-- Credentials in the URL (https://user:password@host) are refused, not stripped: the URL is a
-- parameter, shown in the plan and saved in it twice, and the hub takes a token, not a password.
-- That refusal raises (exit 2, like a password in a database_url), so every runbook's parameter
-- check gives the same advice; the password is remembered as a secret first, so that no message
-- quoting the URL can show it.
function hub.api_url(url)
  if type(url) == "string" then
    local userinfo = url:match("^%a[%w+.-]*://([^/?#]*)@")
    if userinfo then
      local password = userinfo:match(":(.*)$")
      if password then require("runbook.secrets").remember(password) end
      util.fail(2, "the hub URL %s holds credentials (user:password@); they would be shown and saved in the plan. "
        .. "Give the hub's API token in a token file (-p token_file=PATH, mode 0600) or JUPYTERHUB_API_TOKEN, "
        .. "and the URL without them", util.redact_url(url))
    end
  end
  local err
  url, err = rest.base_url(url, SERVICE)
  if not url then return nil, err end
  if url:match("/hub/api$") then return url end
  if url:match("/hub$") then return url .. "/api" end
  return url .. "/hub/api"
end

local Client = rest.class(SERVICE)

-- connect{url=, token_file=, ca_file=, insecure=, timeout=} -> client | nil, message
-- url defaults to JUPYTERHUB_API_URL. Nothing is sent until the first call.
function hub.connect(opts)
  opts = opts or {}
  return rest.connect(Client, opts.url or os.getenv("JUPYTERHUB_API_URL"), opts)
end

-- GET / answering 404 means the URL is not a JupyterHub API: a failure, not an absent document.
function Client:absent(path)
  return path ~= "/"
end

-- The document alone: hub callers take a second value only as the message of a failure.
local function document(doc, ...)
  if doc then return doc end
  return doc, ...
end

-- GET a JSON document: doc | false (404) | nil, message, details
function Client:get_json(path, opts)
  return document(rest.Client.get_json(self, path, opts))
end

-- Starts a GET now; the returned function finishes it with get_json's results.
function Client:start_get(path, opts)
  local finish = rest.Client.start_get(self, path, opts)
  return function() return document(finish()) end
end

-- info() -> {version = "3.0.0", major = 3, minor = 0} | nil, message. Cached.
function Client:info()
  if self._info then return self._info end
  local doc, err, detail = self:get_json("/")
  if not doc then return nil, err, detail end
  if type(doc) ~= "table" or type(doc.version) ~= "string" then
    return nil, self:failure("GET /hub/api/ did not name a JupyterHub version; is this a JupyterHub?")
  end
  local major, minor = doc.version:match("^(%d+)%.(%d+)")
  self._info = { version = doc.version, major = tonumber(major) or 0, minor = tonumber(minor) or 0 }
  return self._info
end

-- whoami() -> the token's own model (a service's or a user's, with its `scopes` from 2.0) | nil,
-- message: the first request that needs a valid token, so a wrong one is reported as such.
function Client:whoami()
  local doc, err, detail = self:get_json("/user")
  if doc == false then return nil, self:failure("GET /hub/api/user: HTTP 404"), { status = 404 } end
  return doc, err, detail
end

-- hub_info() -> {version=, spawner_class=, spawner_version=, authenticator_class=} | nil, message, details
-- GET /hub/api/info: which spawner the hub runs, the way to know whether deleting a user deletes their
-- storage (KubeSpawner does). Needs the read:hub scope; without it details.status is 403 and the
-- caller treats the spawner as unknown. Cached.
function Client:hub_info()
  if self._hub_info then return self._hub_info end
  local path = "/info"
  local doc, err, detail = self:get_json(path)
  if doc == false then
    return nil, self:failure("GET /hub/api/info: HTTP 404 (not a JupyterHub API?)"), { status = 404 }
  end
  if not doc then return nil, err, detail end
  local function class_of(part)
    return type(part) == "table" and type(part.class) == "string" and part.class or nil
  end
  local spawner = type(doc) == "table" and doc.spawner or nil
  self._hub_info = {
    version = type(doc) == "table" and type(doc.version) == "string" and doc.version or nil,
    spawner_class = class_of(spawner),
    spawner_version = type(spawner) == "table" and type(spawner.version) == "string" and spawner.version or nil,
    authenticator_class = class_of(type(doc) == "table" and doc.authenticator or nil),
  }
  return self._hub_info
end

local function at_least(info, major, minor)
  return info.major > major or (info.major == major and info.minor >= minor)
end

-- can_sort() -> true when GET /users takes sort=last_activity (JupyterHub 5.0 and later).
function Client:can_sort()
  return at_least(assert(self:info()), 5, 0)
end

-- The order of sort=last_activity: never-active users (null) first, then the longest idle.
-- Checked on every user, so a hub that ignored the parameter cannot make a caller stop early.
local function sorted_by_activity_check(client)
  local previous, seen_active = nil, false
  return function(user)
    if type(user) ~= "table" then error(client:failure("GET /users listed something that is not a user"), 0) end
    local last = hub.last_activity(user)
    local ok = true
    if last == nil then
      ok = not seen_active
    else
      ok = previous == nil or last >= previous
      previous, seen_active = last, true
    end
    if not ok then
      error(client:failure("GET /users?sort=last_activity returned %s out of order; the hub did not sort, " ..
        "so a listing that stops early could miss users: refusing it", tostring(user.name)), 0)
    end
  end
end

-- users{state=, name_filter=, sort=, page_size=} -> iterator, listing
-- The iterator hands out user models, in id order, or with sort = "last_activity" (can_sort())
-- never-active users first, then the longest idle first, so a caller looking for idle users can stop
-- at the first recent one.
-- `listing` tells whether the listing can be trusted to have handed out every user once: offsets move
-- when users come and go during a listing, and a sorted listing has no unique tiebreaker (JupyterHub
-- 5/6 sort by last_activity alone, and PostgreSQL returns tied rows -- every never-active user, every
-- shared timestamp -- in a different order on each page), so pages can repeat some users and skip
-- others. Pages overlap by one user (each starts with the previous page's last), so a shift shows.
-- A user is never handed out twice in a sorted listing, and listing.anomaly names the first sign
-- that users may have been skipped: a page that does not start where the previous one ended, a user
-- listed twice, a page shorter than promised, and in a sorted listing the hub's total changing.
-- (listing.total_changed is set for any listing whose total moved; in id order, users created
-- meanwhile come last and skip no one.)
-- Pages are fetched one ahead (the next page is on its way while the caller works on this one),
-- so memory holds at most two pages, and for a sorted listing the names seen. A failure raises an
-- error (an iterator cannot return nil, message): wrap the loop in pcall to handle it.
-- On hubs older than 2.0 (no pagination) the single answer is the whole list.
function Client:users(opts)
  opts = opts or {}
  local info = assert(self:info())
  local paginated = at_least(info, 2, 0)
  local query = { limit = math.min(opts.page_size or MAX_PAGE, MAX_PAGE) }
  local check_order
  if opts.sort then
    if opts.sort ~= "last_activity" then error("users: sort must be \"last_activity\"", 2) end
    if not self:can_sort() then error("hub " .. info.version .. " cannot sort users (JupyterHub 5.0 can)", 2) end
    query.sort = opts.sort
    check_order = sorted_by_activity_check(self)
  end
  if opts.state then
    if not at_least(info, 1, 3) then error("hub " .. info.version .. " cannot filter users by state", 2) end
    query.state = opts.state
  end
  if opts.name_filter then
    if not at_least(info, 2, 3) then error("hub " .. info.version .. " cannot filter users by name", 2) end
    query.name_filter = opts.name_filter
  end
  if not paginated then query.limit = nil end
  local client = self
  local listing = { pages = 0, duplicates = 0, anomaly = nil, total_changed = false, first_total = nil }
  local function start(offset)
    local q = util.shallow_copy(query)
    if paginated then q.offset = offset end
    return client:start_get("/users", { query = q, accept = paginated and PAGINATION or nil })
  end
  local function take(finish)
    local doc, err = finish()
    if doc == false then error(client:failure("GET /users: HTTP 404"), 0) end
    if not doc then error(err, 0) end
    if not paginated then
      if type(doc) ~= "table" then error(client:failure("GET /users did not return a list"), 0) end
      return doc, #doc, nil
    end
    if type(doc) ~= "table" or type(doc.items) ~= "table" or type(doc._pagination) ~= "table" then
      -- A bare list here means the pagination header was dropped on the way (a proxy?): the list
      -- would be silently cut at 200 users, the very bug this module exists to avoid.
      error(client:failure("GET /users did not return a paginated answer; refusing a possibly partial list"), 0)
    end
    local nxt = doc._pagination.next
    if nxt == nil or nxt == json.null then return doc.items, doc._pagination.total, nil end
    if type(nxt) ~= "table" or math.type(nxt.offset) ~= "integer" then
      error(client:failure("GET /users named a next page without its offset; refusing a possibly partial list"), 0)
    end
    return doc.items, doc._pagination.total, nxt.offset, doc._pagination.limit
  end
  local function note(anomaly)
    listing.anomaly = listing.anomaly or anomaly
  end
  -- The whole page is checked before any of it is handed out, so a caller never stops early on a
  -- hub that ignored the sort.
  local seen = {}
  local function sorted_page(items)
    local kept = {}
    for _, user in ipairs(items) do
      local name = type(user) == "table" and user.name or nil
      if name ~= nil and seen[name] then
        listing.duplicates = listing.duplicates + 1
        note(string.format("user %s was listed twice", tostring(name)))
      else
        check_order(user)
        kept[#kept + 1] = user
        if name ~= nil then seen[name] = true end
      end
    end
    return kept
  end
  -- Pages overlap: each next page starts at the previous page's last user, who must come back
  -- first. If not, users moved between the pages (one deleted or made active before that point, ties
  -- in another order): the listing may have skipped some, though none came twice.
  local last_name
  local function overlapping(items)
    if listing.pages == 1 then return items end
    local first = items[1]
    if type(first) ~= "table" or first.name ~= last_name then
      note(string.format("users moved between pages (%s came where %s was expected)",
        tostring(type(first) == "table" and first.name or "nothing"), tostring(last_name)))
      return items
    end
    return table.move(items, 2, #items, 1, {})
  end
  local page_offset = 0
  return rest.prefetched(start(0), function(this_page)
    local items, total, next_offset, limit = take(this_page)
    local this_offset = page_offset
    if next_offset and #items >= 2 then next_offset = this_offset + #items - 1 end
    -- The next page is requested before this one is handed out: the hub works while we do.
    local next_page = next_offset and start(next_offset) or nil
    page_offset = next_offset
    listing.pages = listing.pages + 1
    if next_offset and math.type(limit) == "integer" and #items < limit then
      note(string.format("a page had %d users where %d were promised", #items, limit))
    end
    if paginated then
      items = overlapping(items)
      local tail = items[#items]
      last_name = type(tail) == "table" and tail.name or last_name
    end
    if math.type(total) == "integer" then
      listing.first_total = listing.first_total or total
      if total ~= listing.first_total then
        listing.total_changed = true
        -- In id order, users created meanwhile come last and move no one; sorted, they land
        -- among the ones already listed.
        if check_order then
          note(string.format("the hub's number of users changed while listing (%d, then %d)", listing.first_total, total))
        end
      end
    end
    client.listed_total = total
    return check_order and sorted_page(items) or items, next_page
  end), listing
end

-- count() -> number of users (one small request) | nil, message
function Client:count()
  local info, err = self:info()
  if not info then return nil, err end
  if not at_least(info, 2, 0) then
    local doc
    doc, err = self:get_json("/users")
    if not doc then return nil, err end
    return #doc
  end
  local doc
  doc, err = self:get_json("/users", { query = { limit = 1, offset = 0 }, accept = PAGINATION })
  if not doc then return nil, err end
  return doc._pagination and doc._pagination.total
end

local function user_path(name)
  return "/users/" .. util.url_escape(name)
end

-- user(name) -> model | false when the hub has no such user | nil, message
function Client:user(name)
  return self:get_json(user_path(name))
end

-- delete_user(name) -> true, "deleted" | true, "already gone" | nil, message, details
-- The hub deletes a user even when their default server is running (it stops it first), so callers
-- that must spare active users re-read the user right before calling this.
function Client:delete_user(name)
  local path = user_path(name)
  local resp, err, detail = self:request("DELETE", path)
  if not resp then return nil, err, detail end
  if resp.status == 204 or resp.status == 200 then return true, "deleted" end
  if resp.status == 404 then return true, "already gone" end
  return nil, self:unexpected("DELETE", path, resp)
end

-- stop_server(name[, server_name]) -> true, "stopped" | true, "stopping" | nil, message
function Client:stop_server(name, server_name)
  local path = user_path(name) .. "/server" .. (server_name and server_name ~= "" and ("s/" .. util.url_escape(server_name)) or "")
  local resp, err, detail = self:request("DELETE", path)
  if not resp then return nil, err, detail end
  if resp.status == 204 then return true, "stopped" end
  if resp.status == 202 then return true, "stopping" end
  return nil, self:unexpected("DELETE", path, resp)
end

-- create_users(names[, {admin=bool}]) -> list of created models | nil, message
-- The hub answers 409 when every name exists already; that is "nothing to create", not a failure.
function Client:create_users(names, opts)
  local body = { usernames = names, admin = opts and opts.admin or nil }
  local resp, err, detail = self:request("POST", "/users", { json = body })
  if not resp then return nil, err, detail end
  if resp.status == 409 then return json.array() end
  if resp.status ~= 201 then return nil, self:unexpected("POST", "/users", resp) end
  return http.decode(resp)
end

-- create_user(name[, {admin=bool}]) -> true, "created" | true, "exists" | nil, message, details
function Client:create_user(name, opts)
  local path = user_path(name)
  local resp, err, detail = self:request("POST", path, { json = { admin = opts and opts.admin or false } })
  if not resp then return nil, err, detail end
  if resp.status == 201 or resp.status == 200 then return true, "created" end
  if resp.status == 409 then return true, "exists" end
  return nil, self:unexpected("POST", path, resp)
end

-- add_to_group(group, names) -> true | false (no such group) | nil, message, details
-- Adding a member twice is harmless: the hub keeps one membership. Needs the `groups` scope.
function Client:add_to_group(group, names)
  local path = "/groups/" .. util.url_escape(group) .. "/users"
  local resp, err, detail = self:request("POST", path, { json = { users = names } })
  if not resp then return nil, err, detail end
  if resp.status == 200 or resp.status == 201 then return true end
  if resp.status == 404 then return false end
  return nil, self:unexpected("POST", path, resp)
end

-- set_activity(name, when) -> true | nil, message. The hub only moves last_activity forward.
function Client:set_activity(name, when)
  local path = user_path(name) .. "/activity"
  local resp, err, detail = self:request("POST", path, { json = { last_activity = when } })
  if not resp then return nil, err, detail end
  if resp.status ~= 200 and resp.status ~= 204 then return nil, self:unexpected("POST", path, resp) end
  return true
end

-- groups() -> list of group models | nil, message ; group(name) -> model | false | nil, message
-- (the token needs list:groups and read:groups; users' own models list their groups with read:users)
function Client:groups()
  local info, err = self:info()
  if not info then return nil, err end
  local all, offset = {}, 0
  while true do
    local doc
    doc, err = self:get_json("/groups", { query = at_least(info, 2, 0) and { offset = offset, limit = MAX_PAGE } or nil,
                                          accept = at_least(info, 2, 0) and PAGINATION or nil })
    if not doc then return nil, err end
    local items = doc.items or doc
    for _, g in ipairs(items) do all[#all + 1] = g end
    local nxt = doc._pagination and doc._pagination.next
    if not nxt or nxt == json.null then return all end
    offset = nxt.offset
  end
end

function Client:group(name)
  return self:get_json("/groups/" .. util.url_escape(name))
end

-- ---- reading user models ----

local function present(v) return v ~= nil and v ~= json.null end

-- server_state(user) -> nil when no server runs or is pending, else a reason ("server running",
-- "server pending (spawn)", "named server 'x' running"). Looks at every entry of `servers` and at
-- the old top-level fields. A model without `servers` cannot be judged: callers must refuse it.
function hub.server_state(user)
  if present(user.pending) then return "server pending (" .. tostring(user.pending) .. ")" end
  if type(user.servers) == "table" then
    for _, name in ipairs(util.sorted_keys(user.servers)) do
      local s = user.servers[name]
      local label = name == "" and "server" or ("named server '" .. name .. "'")
      if type(s) ~= "table" then return label .. " in a state the hub did not describe" end -- cannot judge: keep
      if present(s.pending) then return label .. " pending (" .. tostring(s.pending) .. ")" end
      if s.ready or present(s.started) or present(s.url) then return label .. " running" end
    end
  end
  if present(user.server) then return "server running" end
  return nil
end

-- Whether the model shows servers at all (the token needs read:servers / admin:servers to see them).
function hub.can_see_servers(user)
  return type(user.servers) == "table"
end

-- last_activity(user) -> seconds since the epoch | nil (never active)
function hub.last_activity(user)
  if not present(user.last_activity) then return nil end
  return util.parse_time(user.last_activity)
end

function hub.created(user)
  if not present(user.created) then return nil end
  return util.parse_time(user.created)
end

-- ---- the token's scopes (JupyterHub 2.0 and later) ----
-- The scopes that grant each scope runbooks need, from JupyterHub's scope_definitions: admin:users
-- holds delete:users and users; users holds read:users and list:users; admin:servers holds servers,
-- which holds read:servers and delete:servers; admin:groups holds groups.
local IMPLIED_BY = {
  ["delete:users"] = { "admin:users" },
  ["read:users"] = { "users", "admin:users" },
  ["list:users"] = { "users", "admin:users" },
  ["users:activity"] = { "users", "admin:users" },
  ["read:servers"] = { "servers", "admin:servers" },
  ["delete:servers"] = { "servers", "admin:servers" },
  ["groups"] = { "admin:groups" },
  ["read:groups"] = { "groups", "admin:groups" },
}

-- scopes_implying(scope) -> the broader scopes that also grant it ({"admin:users"} for delete:users)
function hub.scopes_implying(scope)
  return util.shallow_copy(IMPLIED_BY[scope] or {})
end

-- token_scopes(model) -> {scope = true (on everyone) | {user = {name = true}, group = {...}}} from the
-- `scopes` of the token's own model (whoami()), or nil when the hub does not say (before 2.0) or the
-- token has `inherit` (its owner's permissions, which the model does not spell out).
-- A filtered scope ("delete:users!group=students") grants its scope on those users only.
function hub.token_scopes(model)
  if type(model) ~= "table" or type(model.scopes) ~= "table" then return nil end
  local scopes = {}
  for _, text in ipairs(model.scopes) do
    if type(text) == "string" then
      if text == "inherit" then return nil end
      local name, kind, value = text:match("^([^!]+)!(%w+)=(.+)$")
      if not name then
        scopes[text] = true
      elseif scopes[name] ~= true then
        scopes[name] = scopes[name] or { user = {}, group = {}, server = {} }
        if scopes[name][kind] then scopes[name][kind][value] = true end
      end
    end
  end
  return scopes
end

-- has_scope(scopes, scope, user) -> whether token_scopes(...) grant `scope` on this user (a model
-- with name and groups), directly or through a broader scope; with no user, on every user.
function hub.has_scope(scopes, scope, user)
  local names = { scope }
  for _, broader in ipairs(IMPLIED_BY[scope] or {}) do names[#names + 1] = broader end
  for _, name in ipairs(names) do
    local grant = scopes[name]
    if grant == true then return true end
    if type(grant) == "table" and user then
      if grant.user[user.name] then return true end
      for _, g in ipairs(type(user.groups) == "table" and user.groups or {}) do
        if grant.group[g] then return true end
      end
    end
  end
  return false
end

-- ---- the scopes apply will need, checked at plan time ----
-- A runbook counts, for each thing its apply will do, whether the token's scopes allow it; what is
-- missing becomes one refusal that names each scope, how many of the plan's targets it is missing
-- for, who the token belongs to and the role to grant. Scopes are listed in the order first needed.
local SHOWN_NAMES = 5

local ScopeCheck = {}
ScopeCheck.__index = ScopeCheck

-- scope_check(scopes) -> a check for token_scopes(...) (not nil: a hub that does not list the
-- token's scopes cannot be checked, and the plan says so instead)
function hub.scope_check(scopes)
  return setmetatable({ scopes = scopes, order = {}, needs = {} }, ScopeCheck)
end

-- record(scope, granted, name, of): one target (`name`, shown for the first few missing) of the
-- `of` ("users to delete") needs `scope`; `granted` says whether the token has it there.
function ScopeCheck:record(scope, granted, name, of)
  local need = self.needs[scope]
  if not need then
    need = { of = of, total = 0, missing = 0, names = {} }
    self.needs[scope] = need
    self.order[#self.order + 1] = scope
  end
  need.total = need.total + 1
  if granted then return true end
  need.missing = need.missing + 1
  if #need.names < SHOWN_NAMES then need.names[#need.names + 1] = name end
  return false
end

-- need(scope, user, of) -> whether the token has `scope` on this user (a model with name and groups),
-- recording it for user.name.
function ScopeCheck:need(scope, user, of)
  return self:record(scope, hub.has_scope(self.scopes, scope, user), user.name, of)
end

-- missing() -> the scopes the token lacks somewhere, in the order first needed
function ScopeCheck:missing()
  local list = {}
  for _, scope in ipairs(self.order) do
    if self.needs[scope].missing > 0 then list[#list + 1] = scope end
  end
  return list
end

-- refusal(me, role) -> the message refusing the plan | nil when nothing is missing. `me` is the
-- token's model (whoami()); role = {name = "prune-dormant", scopes = {...}}: what to grant.
function ScopeCheck:refusal(me, role)
  local lines = {}
  for _, scope in ipairs(self:missing()) do
    local need, broader = self.needs[scope], IMPLIED_BY[scope] or {}
    lines[#lines + 1] = string.format("  %s%s, for %d of the %d %s (%s%s)", scope,
      #broader > 0 and (" (or " .. table.concat(broader, " or ") .. ")") or "", need.missing, need.total, need.of,
      table.concat(need.names, ", "), need.missing > #need.names and ", ..." or "")
  end
  if #lines == 0 then return nil end
  local who, holder
  if me.kind == "service" then
    who, holder = string.format("service '%s'", tostring(me.name)), string.format('"services": ["%s"]', tostring(me.name))
  else
    who, holder = string.format("user '%s'", tostring(me.name)), string.format('"users": ["%s"]', tostring(me.name))
  end
  local has = {}
  for _, s in ipairs(type(me.scopes) == "table" and me.scopes or {}) do has[#has + 1] = tostring(s) end
  local grant = {}
  for _, s in ipairs(role.scopes) do grant[#grant + 1] = '"' .. s .. '"' end
  return string.format("the hub token cannot do what apply would do: it lacks\n%s\nThe token belongs to %s; its " ..
    "scopes: %s.\nGrant the scopes to %s in jupyterhub_config.py and restart the hub (zero-to-jupyterhub: " ..
    'hub.loadRoles):\n  c.JupyterHub.load_roles = [{"name": "%s", "scopes": [%s], %s}]\nthen plan again. ' ..
    "Nothing was changed.", table.concat(lines, "\n"), who, #has > 0 and table.concat(has, ", ") or "none", who,
    role.name, table.concat(grant, ", "), holder)
end

return hub
