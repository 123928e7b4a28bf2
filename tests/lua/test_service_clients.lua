-- runbook.hub and runbook.gitlab, the parts that need no server: URLs, tokens, request options, and the
-- messages for failed connections, redirects and unexpected answers (each service's own words on one
-- shared base, runbook.rest), built from responses as runbook.http returns them.
local gitlab = require "runbook.gitlab"
local host = require "runbook.host"
local hub = require "runbook.hub"
local rest = require "runbook.rest"
local ui = require "runner.ui"

local dir = (os.getenv("TMPDIR") or "/tmp") .. "/runbook-service-clients." .. host.getpid()
assert(host.mkdirs(dir, tonumber("700", 8)))

local function token_file(name, text, mode)
  local path = dir .. "/" .. name
  assert(host.write_file(path, text, mode and tonumber(mode, 8) or nil))
  return path
end

-- What ui.warn would print while fn runs, instead of printing it.
local function warnings_of(fn)
  local warned, real = {}, ui.warn
  ui.warn = function(s) warned[#warned + 1] = s end
  local results = table.pack(pcall(fn))
  ui.warn = real
  assert(results[1], results[2])
  return warned, table.unpack(results, 2, results.n)
end

local function answer(status, body, headers)
  return { status = status, body = body or "", headers = headers or {}, time = 0.01 }
end

-- ---- URLs ----
is(hub.api_url("https://hub.example.org"), "https://hub.example.org/hub/api", "hub: a bare URL gets /hub/api")
is(hub.api_url("https://hub.example.org/x/hub/"), "https://hub.example.org/x/hub/api", "hub: .../hub/ gets /api")
is(hub.api_url("http://h:8081/hub/api//"), "http://h:8081/hub/api", "hub: .../hub/api/ is the API")
is(select(2, hub.api_url("ftp://h")), "'ftp://h' is not a hub URL (expected http(s)://host[/prefix][/hub/api])",
  "hub: not http(s), in the hub's words")
is(select(2, hub.api_url(nil)), "'nil' is not a hub URL (expected http(s)://host[/prefix][/hub/api])", "hub: no URL")
raises(function() hub.api_url("https://ops:s3cret@hub.example.org/") end,
  "holds credentials %(user:password@%).*JUPYTERHUB_API_TOKEN", "hub: credentials in the URL are refused")
is(gitlab.api_url("https://git.example.com/gitlab/"), "https://git.example.com/gitlab/api/v4",
  "gitlab: a relative URL root gets /api/v4")
is(gitlab.api_url("https://git.example.com/api/v4"), "https://git.example.com/api/v4", "gitlab: .../api/v4 is the API")
is(select(2, gitlab.api_url("git.example.com")),
  "'git.example.com' is not a GitLab URL (expected http(s)://host[/path][/api/v4])", "gitlab: no scheme, in GitLab's words")

-- ---- tokens ----
local missing = dir .. "/no-such-token"
local client, err = hub.connect{ url = "https://hub.example.org", token_file = missing }
ok(client == nil and err:find("^cannot read the hub token: ") ~= nil, "hub: an unreadable token file is named: " .. tostring(err))
client, err = gitlab.connect{ url = "https://git.example.com", token_file = token_file("empty", "\n") }
is(err, "the GitLab token file " .. dir .. "/empty is empty", "gitlab: an empty token file")
client, err = gitlab.connect{ url = "git.example.com", token_file = token_file("fine", "tok") }
is(err, "'git.example.com' is not a GitLab URL (expected http(s)://host[/path][/api/v4])",
  "gitlab: the URL is checked before the token")

local warned
warned, client = warnings_of(function()
  return assert(hub.connect{ url = "https://hub.example.org/", token_file = token_file("hub", "  hub-tok\n") })
end)
is(#warned, 0, "hub: a 0600 token file: no warning")
is(client.token, "hub-tok", "  the token is trimmed")
is(client.api_url .. " " .. client.host .. " " .. client.timeout, "https://hub.example.org/hub/api hub.example.org 30",
  "  the API URL, host and default timeout")
is(tostring(client), "hub client for https://hub.example.org/hub/api", "  tostring names the hub")
local open = token_file("open", "gl-tok", "644")
warned = warnings_of(function() assert(gitlab.connect{ url = "https://git.example.com", token_file = open }) end)
is(warned[1], "token file " .. open .. " is readable by other users (mode 644); chmod 600 it",
  "gitlab: a token file others may read is warned about")

-- ---- request options ----
local hub_client = client
local options = hub_client:request_options("GET", "/users", { query = { limit = 2, offset = 0 },
  accept = "application/jupyterhub-pagination+json" })
is(options.url, "https://hub.example.org/hub/api/users?limit=2&offset=0", "hub: the query is added to the URL")
is(options.headers.Authorization, "token hub-tok", "hub: the token goes in Authorization: token ...")
is(options.headers.Accept, "application/jupyterhub-pagination+json", "hub: Accept as asked")
is(options.timeout, 30, "hub: the client's timeout")
local gl_client = assert(gitlab.connect{ url = "https://git.example.com", token_file = token_file("gl", "gl-tok"),
  ca_file = "/etc/ca.pem", timeout = 5 })
options = gl_client:request_options("POST", "/users/7/deactivate")
is(options.method .. " " .. options.url, "POST https://git.example.com/api/v4/users/7/deactivate",
  "gitlab: method and URL")
is(options.headers["PRIVATE-TOKEN"], "gl-tok", "gitlab: the token goes in PRIVATE-TOKEN")
is(options.headers.Authorization, nil, "  and not in Authorization")
is(options.headers.Accept .. " " .. options.ca_file .. " " .. options.timeout, "application/json /etc/ca.pem 5",
  "gitlab: JSON, the CA file and the timeout")
is(tostring(gl_client), "gitlab client for https://git.example.com/api/v4", "gitlab: tostring names GitLab")

-- ---- messages ----
is(hub_client:unexpected("GET", "/users", answer(401, '{"status": 401, "message": "Unauthorized"}')),
  "hub hub.example.org: GET /users: HTTP 401: Unauthorized; the hub does not accept the token (expired, revoked, or for another hub?)",
  "hub: a 401, with the hub's message and advice")
local message, details = hub_client:unexpected("DELETE", "/users/bob", answer(403,
  '{"status": 403, "message": "Action is not authorized with current scopes; requires any of [delete:users]"}'))
is(message, "hub hub.example.org: DELETE /users/bob: HTTP 403: Action is not authorized with current scopes; "
  .. "requires any of [delete:users]; the token is not valid for this hub, or lacks that scope",
  "hub: a 403 naming the scope it requires")
is(details.status .. " " .. details.message,
  "403 Action is not authorized with current scopes; requires any of [delete:users]", "  details: status and message")
is(hub_client:unexpected("GET", "/", answer(404, "  Not   Found \n")),
  "hub hub.example.org: GET /: HTTP 404:  Not Found ; this URL is not a JupyterHub API",
  "hub: a 404 for the API's root: the body's text, spaces folded")
is(gl_client:unexpected("GET", "/users?per_page=100&page=2", answer(429, "Retry later\n")),
  "gitlab git.example.com: GET /users: HTTP 429: Retry later; GitLab's rate limit held for longer than the retries waited",
  "gitlab: a 429, the query left out of the path")
is(gl_client:unexpected("POST", "/users/7/deactivate", answer(403, '{"message": "403 Forbidden"}')),
  "gitlab git.example.com: POST /users/7/deactivate: HTTP 403: 403 Forbidden; "
  .. "the token's user must be an administrator, and the token needs the api scope", "gitlab: a bare 403")
is(gl_client:unexpected("GET", "/user", answer(500, '{"error": {"base": ["broken"]}}')),
  'gitlab git.example.com: GET /user: HTTP 500: {"base":["broken"]}', "gitlab: an error object, as JSON, no advice")

is(hub_client:unexpected("GET", "/users", answer(302, "", { location = "/hub/login?next=%2Fhub%2Fapi%2Fusers" })),
  "hub hub.example.org: the server redirected GET /hub/api/users to https://hub.example.org/hub/login?next=%2Fhub%2Fapi%2Fusers: "
  .. "the URL is probably not the hub's; give the hub's base URL (-p hub=https://hub.example.org/)",
  "hub: a redirect within the same base URL")
local prefixed = assert(hub.connect{ url = "https://hub.example.org/x/", token_file = token_file("hub2", "t") })
message, details = prefixed:unexpected("GET", "/users", answer(301, "", { location = "http://hub.example.org/hub/users" }))
is(message, "hub hub.example.org: the server redirected GET /x/hub/api/users to http://hub.example.org/hub/users: "
  .. "the URL is probably not the hub's base URL; try -p hub=http://hub.example.org/", "hub: a redirect showing the base URL")
is(details.status .. " " .. details.location, "301 http://hub.example.org/hub/users", "  details: status and location")
is(hub_client:unexpected("GET", "/", answer(302, "", { location = "https://sso.example.org/login" })),
  "hub hub.example.org: the server redirected GET /hub/api/ to https://sso.example.org/login: it leads to another server "
  .. "(a login page? an authenticating proxy in front of the hub?); give the URL the hub itself answers on",
  "hub: a redirect to another server")
is(gl_client:unexpected("GET", "/version", answer(302, "", { location = "https://git.example.com/users/sign_in" })),
  "gitlab git.example.com: the server redirected GET /api/v4/version to https://git.example.com/users/sign_in: "
  .. "the URL is probably not GitLab's; give its base URL (-p gitlab=https://gitlab.example.com)",
  "gitlab: a redirect to the sign-in page at the root")
local rooted = assert(gitlab.connect{ url = "https://git.example.com/", token_file = token_file("gl2", "t") })
is(rooted:unexpected("GET", "/version", answer(302, "", { location = "https://git.example.com/gitlab/users/sign_in" })),
  "gitlab git.example.com: the server redirected GET /api/v4/version to https://git.example.com/gitlab/users/sign_in: "
  .. "the URL is probably not GitLab's base URL; try -p gitlab=https://git.example.com/gitlab", "gitlab: a relative URL root shown")
is(gl_client:unexpected("GET", "/version", answer(307, "", { location = "https://sso.example.com/saml" })),
  "gitlab git.example.com: the server redirected GET /api/v4/version to https://sso.example.com/saml: "
  .. "it leads to another server (a single sign-on page?); give the URL GitLab itself answers on",
  "gitlab: a redirect to another server")

-- Failed connections, as runbook.http reports them (message, {kind=}), with each service's advice.
local refused = "GET https://hub.example.org/hub/api/: Couldn't connect to server"
is(hub_client:with_hint(refused, { kind = "connect" }),
  "hub hub.example.org: " .. refused .. " (is the hub running, and is the URL right?)", "hub: connect hint")
is(gl_client:with_hint("GET x: certificate", { kind = "tls" }),
  "gitlab git.example.com: GET x: certificate (TLS verification failed: give GitLab's CA with -p ca_file=...)",
  "gitlab: TLS hint")
is(gl_client:with_hint("GET x: handshake", { kind = "tls_handshake" }),
  "gitlab git.example.com: GET x: handshake (the TLS handshake failed: is the URL's scheme, http:// or https://, and its port right?)",
  "gitlab: handshake hint")
is(hub_client:with_hint("GET x: timed out", { kind = "timeout" }), "hub hub.example.org: GET x: timed out",
  "hub: no hint for a timeout")

-- ---- GitLab's Link header ----
is(gitlab.next_query('<https://other.example/api/v4/users?id_after=42&per_page=100>; rel="next", '
  .. '<https://other.example/api/v4/users?per_page=100>; rel="first"'), "id_after=42&per_page=100",
  "the next page's query, not its host")
is(gitlab.next_query('<https://g/api/v4/users?page=1>; rel=first, <https://g/api/v4/users?page=3>; rel=next'),
  "page=3", "rel without quotes")
is(gitlab.next_query('<https://g/api/v4/users?page=1>; rel="first"'), nil, "no next: the last page")
is(gitlab.next_query(nil), nil, "no Link header")

-- ---- pages fetched one ahead (runbook.rest) ----
-- Three pages, the middle one empty; turn(pending) is asked for a page only when the last is used up.
local pages = { { "a", "b" }, {}, { "c" } }
local asked = {}
local items = rest.prefetched(1, function(n)
  asked[#asked + 1] = n
  return pages[n], n < #pages and n + 1 or nil
end)
is(items(), "a", "the first item")
is(table.concat(asked, ","), "1", "  only the first page asked for")
is(items() .. items(), "bc", "then the rest, the empty page skipped")
is(table.concat(asked, ","), "1,2,3", "  each page asked for once, in order")
is(items(), nil, "then nothing")
is(items(), nil, "  and nothing again, without asking for more")
is(#asked, 3, "  (no page asked for after the last)")

done_testing()
