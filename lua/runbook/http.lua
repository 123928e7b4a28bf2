-- HTTP for runbooks (require "runbook.http"): JSON in and out, retries with backoff for requests that
-- are safe to repeat, Retry-After honoured. Failures come back as nil, message, details; they never raise.
-- Mutating methods are refused while planning by the C core, whatever the caller does.
local core = require "runbook.http_core"
local host = require "runbook.host"
local sched = require "runner.sched"
local json = require "runbook.json"
local secrets = require "runbook.secrets"
local ui = require "runner.ui"
local util = require "runbook.util"

local http = {}

local IDEMPOTENT = { GET = true, HEAD = true, OPTIONS = true, PUT = true, DELETE = true }
local TRANSIENT_FAILURE = { timeout = true, connect = true, reset = true }
local RETRY_STATUS = { [429] = true, [502] = true, [503] = true, [504] = true }
local MAX_RETRY_AFTER = 120 -- seconds: a server asking for longer is treated as down

local function header_list(headers)
  local list = {}
  if headers then
    for _, name in ipairs(util.sorted_keys(headers)) do list[#list + 1] = name .. ": " .. headers[name] end
  end
  return list
end

local function retry_after_seconds(value)
  if not value then return nil end
  local n = tonumber(value)
  if n then return math.max(0, n) end
  return nil -- an HTTP date: rare for APIs; fall back to our own backoff
end

-- Where a request goes, as "host" and "host:port" (no user info).
local function host_of(url)
  local authority = (url:match("^%a[%w+.-]*://([^/?#]*)") or ""):gsub("^.*@", "")
  local name = authority:match("^%[(.-)%]") or authority:match("^[^:]*")
  return name:lower(), authority
end

-- 127.0.0.0/8, ::1 and localhost: traffic that never leaves the machine.
local function loopback(name)
  if name == "localhost" or name == "::1" or name:match("^[0:]*:0*1$") then return true end
  local a, b, c, d = name:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  return a ~= nil and tonumber(a) == 127 and tonumber(b) < 256 and tonumber(c) < 256 and tonumber(d) < 256
end

local CREDENTIAL_HEADERS = { authorization = true, ["private-token"] = true, cookie = true, ["proxy-authorization"] = true }

-- The warnings a request deserves before it is sent, each once per run and host: TLS that is not
-- verified (insecure=true, a kubeconfig's insecure-skip-tls-verify), and credentials sent over plain
-- HTTP to another machine (readable on the way, and by any proxy in http_proxy).
local function warn_transport(opts)
  if type(opts.url) ~= "string" then return end
  local name, authority = host_of(opts.url)
  if opts.insecure and opts.url:match("^[Hh][Tt][Tt][Pp][Ss]://") then
    ui.warn_once("insecure " .. authority, string.format("TLS is NOT VERIFIED for %s (insecure=true, or " ..
      "insecure-skip-tls-verify in the kubeconfig): anyone on the path can pose as that server and take the " ..
      "credentials sent to it; give its CA (ca_file) instead", authority))
  end
  if opts.url:match("^[Hh][Tt][Tt][Pp]://") and not loopback(name) then
    local credentials = false
    for header, value in pairs(opts.headers or {}) do
      if CREDENTIAL_HEADERS[tostring(header):lower()] or secrets.holds(tostring(value)) then credentials = true end
    end
    if credentials then
      ui.warn_once("plain " .. authority, string.format("%s is plain http://: the token is sent unencrypted, " ..
        "readable by anyone on the network path (and by any proxy set in http_proxy); use https://", authority))
    end
  end
end

local function prepare(opts)
  warn_transport(opts)
  local req = util.shallow_copy(opts)
  req.method = (opts.method or "GET"):upper()
  local headers = util.shallow_copy(opts.headers or {})
  if opts.json ~= nil then
    req.body = json.encode(opts.json)
    headers["Content-Type"] = headers["Content-Type"] or "application/json"
  end
  req.headers = header_list(headers)
  return req
end

-- What to do after an attempt: returns the final results, or nil and how long to wait before the next.
local function judge(req, opts, try, resp, message, class)
  local method, shown_url = req.method, util.redact_url(req.url)
  local retries = opts.retries or 4
  local repeatable = IDEMPOTENT[method] or opts.retry_non_idempotent
  local backoff = opts.backoff or 0.5
  if resp then
    ui.verbose(string.format("%s %s -> %d (%.3fs)", method, shown_url, resp.status, resp.time), 2)
    -- Any 5xx that says when to come back is temporary (the Kubernetes API server sends such 500s).
    local temporary = RETRY_STATUS[resp.status] or (resp.status >= 500 and resp.headers["retry-after"] ~= nil)
    if not (temporary and try < retries) then return { resp } end
    -- 429 and 503 mean "not processed": safe to repeat even for POST when the server says when.
    local after = retry_after_seconds(resp.headers["retry-after"])
    if not repeatable and not (after and (resp.status == 429 or resp.status == 503)) then return { resp } end
    if after and after > MAX_RETRY_AFTER then return { resp } end
    local wait = after or backoff * 2 ^ try
    ui.verbose(string.format("%s %s: %d, retrying in %.1fs", method, shown_url, resp.status, wait))
    return nil, wait
  end
  ui.verbose(string.format("%s %s failed: %s", method, shown_url, message), 2)
  -- A connection that was never made sent nothing, so even a POST may be tried again.
  local unsent = class == "connect" or class == "resolve"
  if not (TRANSIENT_FAILURE[class] and (repeatable or unsent) and try < retries) then
    return { nil, string.format("%s %s: %s", method, shown_url, message), { kind = class } }
  end
  local wait = backoff * 2 ^ try
  ui.verbose(string.format("%s %s: %s, retrying in %.1fs", method, shown_url, message, wait))
  return nil, wait
end

-- ---- the wrong scheme: https:// to a plain-HTTP port, http:// to a TLS port ----
-- Left alone, the first waits out the connect timeout on every retry (a plain-HTTP server waits for a
-- request line that never comes while the TLS handshake waits for its answer: almost a minute in
-- all), and the second reads as a reset connection. A probe that carries nothing of the request (no
-- headers, no proxy) tells which protocol the port speaks, once per run and server.

local TLS_SILENCE = 1.5   -- seconds a first TLS handshake may go unanswered before the port is probed
local WATCH_SLICE = 0.05  -- how often that first handshake is looked at
local PROBE_TIMEOUT = 2
local TLS_ANSWERED = {}   -- authority -> true once a TLS server answered there: no more watching
local DIAGNOSED = {}      -- authority -> a diagnosis, or false: each server is probed at most once

local function scheme_of(url)
  return (url:match("^(%a[%w+.-]*)://") or ""):lower()
end

-- probe(opts) -> true when the probe got an HTTP answer (or, connect_only, made its connection).
local function probe(opts)
  opts.timeout, opts.connect_timeout, opts.no_proxy = PROBE_TIMEOUT, PROBE_TIMEOUT, true
  local transfer = core.start(opts)
  sched.await(transfer)
  local status = transfer:result()
  transfer:cancel()
  return status ~= nil and (opts.connect_only or status > 0)
end

-- diagnose(url, what_happened) -> a sentence saying the port speaks the other protocol, or nil.
local function diagnose(url, what_happened)
  local _, authority = host_of(url)
  if DIAGNOSED[authority] == nil then
    local diagnosis = false
    if scheme_of(url) == "https" then
      if probe{ method = "HEAD", url = "http://" .. authority .. "/" } then
        diagnosis = string.format("the server at %s %s: use http:// (or the right port)", authority, what_happened)
      end
    elseif probe{ url = "https://" .. authority .. "/", connect_only = true, insecure = true } then
      diagnosis = string.format("the server at %s %s: use https:// (or the right port)", authority, what_happened)
    end
    DIAGNOSED[authority] = diagnosis
  end
  return DIAGNOSED[authority] or nil
end

-- Waits for a transfer; a first TLS handshake with a server is watched: unanswered for TLS_SILENCE
-- seconds, the port is probed for plain HTTP. Returns a diagnosis when it is (the transfer is then
-- cancelled), else nil once the transfer is done.
local function await_watching(req, transfer)
  local _, authority = host_of(req.url)
  if scheme_of(req.url) ~= "https" or TLS_ANSWERED[authority] or DIAGNOSED[authority] ~= nil then
    return sched.await(transfer)
  end
  local started = host.monotonic()
  while not transfer:done() do
    if host.monotonic() - started >= TLS_SILENCE then
      if transfer:tls_unanswered() then
        local diagnosis = diagnose(req.url, "did not answer the TLS handshake but answers plain HTTP")
        if diagnosis then return diagnosis end
      end
      return sched.await(transfer)
    end
    sched.sleep(WATCH_SLICE)
  end
end

-- After a failure (or a 400 a TLS server sends to plain HTTP), what the port really speaks, if that
-- explains it: https:// to a server that answered the handshake with something else, http:// to one
-- that hung up or answered gibberish.
local PLAIN_TO_TLS_PAGE = { "plain HTTP request was sent to HTTPS port", "HTTP request to an HTTPS server" }
local function wrong_scheme(url, resp, class)
  local scheme = scheme_of(url)
  if scheme == "https" and class == "tls_handshake" then
    return diagnose(url, "answered plain HTTP to a TLS handshake")
  end
  if scheme ~= "http" then return nil end
  if class == "reset" or class == "protocol" then
    return diagnose(url, "speaks TLS, and did not answer a plain HTTP request")
  end
  if resp and resp.status == 400 then
    for _, text in ipairs(PLAIN_TO_TLS_PAGE) do
      if resp.body:find(text, 1, true) then return diagnose(url, "speaks TLS (it answered: " .. text .. ")") end
    end
  end
end

-- http.observer, when set (the engine sets it while it applies actions), hears of every response:
-- observer:observe(seconds, status|nil, method). That is how concurrency adapts to the server.
http.observer = nil

local function finish(req, opts, transfer)
  for try = 0, opts.retries or 4 do
    transfer = transfer or core.start(req)
    local diagnosis = await_watching(req, transfer)
    if diagnosis then
      transfer:cancel()
      return nil, string.format("%s %s: %s", req.method, util.redact_url(req.url), diagnosis), { kind = "scheme" }
    end
    local status, headers, body, seconds = transfer:result()
    transfer:cancel()
    transfer = nil
    local resp = status and { status = status, headers = headers, body = body, time = seconds } or nil
    if resp and scheme_of(req.url) == "https" then TLS_ANSWERED[select(2, host_of(req.url))] = true end
    diagnosis = try == 0 and wrong_scheme(req.url, resp, not resp and body or nil)
    if diagnosis then
      return nil, string.format("%s %s: %s", req.method, util.redact_url(req.url), diagnosis), { kind = "scheme" }
    end
    if http.observer then http.observer:observe(resp and resp.time or 0, resp and resp.status or nil, req.method) end
    local final, wait = judge(req, opts, try, resp, headers, body)
    if final then return table.unpack(final, 1, 3) end
    -- Jitter spreads retries of concurrent requests so they do not arrive together.
    sched.sleep(wait * (0.75 + 0.5 * math.random()))
  end
end

-- request{method=, url=, headers={Name=value}, body=, json=, timeout=, retries=, retry_non_idempotent=,
--         ca_file=, ca_pem=, insecure=, client_cert_file=, ...}
-- -> response {status, headers, body, time} | nil, message, {kind=}
-- A response with any HTTP status is a response: callers decide what a 404 means. Requests that are
-- safe to repeat are retried on timeouts, resets and 429/502/503/504, with backoff and Retry-After.
function http.request(opts)
  local req = prepare(opts)
  return finish(req, opts, nil)
end

-- start(opts) -> pending: the request is on its way now; pending:wait() returns what request would.
-- Lets a caller overlap a request with its own work (reading the next page while using this one).
local Pending = {}
Pending.__index = Pending

function http.start(opts)
  local req = prepare(opts)
  return setmetatable({ req = req, opts = opts, transfer = core.start(req) }, Pending)
end

function Pending:wait()
  local transfer = self.transfer
  self.transfer = nil
  return finish(self.req, self.opts, transfer)
end

-- redirect(url, resp) -> {location=, origin=, path=} | nil: where a 3xx answer to a request for url
-- sends the client (the Location made absolute), for messages that say where an API URL leads.
function http.redirect(url, resp)
  if resp.status < 300 or resp.status > 399 then return nil end
  local location = resp.headers.location
  if type(location) ~= "string" or location == "" then return nil end
  if location:match("^//") then
    location = url:match("^%a[%w+.-]*:") .. location
  elseif location:sub(1, 1) == "/" then
    location = url:match("^%a[%w+.-]*://[^/?#]*") .. location
  elseif not location:match("^%a[%w+.-]*://") then
    location = url:gsub("[?#].*$", ""):gsub("[^/]*$", "") .. location
  end
  local origin, path = location:match("^(%a[%w+.-]*://[^/?#]*)([^?#]*)")
  if not origin then return nil end
  return { location = location, origin = origin:lower(), path = path }
end

-- Decodes a JSON response body; nil, message when it is not JSON.
function http.decode(resp)
  if resp.body == "" then return nil, "empty response body" end
  local doc, err = json.decode(resp.body)
  if doc == nil then return nil, "response is not JSON (" .. err .. ")" end
  return doc
end

return http
