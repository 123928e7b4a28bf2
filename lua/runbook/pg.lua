-- PostgreSQL for runbooks (require "runbook.pg").
--
--   local pg = require "runbook.pg"
--   local conn = assert(pg.connect("postgresql://hub@db.example.org/jupyterhub", { connect_timeout = 5 }))
--   local rows = assert(conn:query("SELECT id, name, admin FROM users WHERE name = $1", "alice"))
--   for _, user in ipairs(rows) do print(user.id, user.name, user.admin) end  -- typed: integer, string, boolean
--   local n = assert(conn:query("DELETE FROM spawners WHERE user_id = $1", id))  -- affected rows
--   assert(conn:transaction(function(c) ... return true end))                    -- COMMIT, or ROLLBACK on failure
--   local backup = assert(conn:copy_to("users", "/backups/users.copy"))         -- {sha256=, bytes=, rows=}
--
-- Connection strings are libpq's (URL or "host=... dbname=..."); PG* variables and ~/.pgpass work too.
-- Passwords never appear in a message or log. Failures come back as nil, message, details; misuse raises.
-- While the engine plans, and in `runbook exec` without --write, the C core refuses every statement that
-- could change anything (see src/pg.c for how); such a refusal raises, and is counted even if caught.
local core = require "runbook.pg_core"
local host = require "runbook.host"
local json = require "runbook.json"
local ui = require "runner.ui"
local util = require "runbook.util"

local pg = {}

-- SQL NULL inside arrays, and JSON null inside json/jsonb values (a NULL column is nil: the key is absent).
pg.null = json.null

local Conn = core.methods -- the C methods (close, escape_literal, escape_identifier, notices, info,
                          -- set_statement_timeout); the ones below are added to the same table

-- What this module knows about each connection, without keeping it alive.
local state = setmetatable({}, { __mode = "k" })

-- ---- secrets ----

-- The password as typed in the string (percent-encoded in a URL, quoted or escaped in a conninfo), for
-- every place libpq accepts one: user:PASSWORD@ in a URL, ?password=, password=/sslpassword= keywords.
local function typed_passwords(target)
  local found = {}
  local in_url = target:match("^%a[%w+.-]*://[^/@:]*:([^/@]*)@")
  if in_url and in_url ~= "" then found[#found + 1] = in_url end
  local init = 1
  while true do
    local _, value_start = target:find("password%s*=%s*", init)
    if not value_start then break end
    local i = value_start + 1
    local value_end
    if target:sub(i, i) == "'" then
      i = i + 1
      while i <= #target and target:sub(i, i) ~= "'" do
        i = i + (target:sub(i, i) == "\\" and 2 or 1)
      end
      value_end = math.min(i, #target)
    else
      value_end = (target:find("[%s&]", i) or #target + 1) - 1
    end
    local value = target:sub(value_start + 1, value_end)
    if value ~= "" then found[#found + 1] = value end
    init = value_end + 1
  end
  return found
end

local function replace_plain(text, secret, with)
  local parts, init = {}, 1
  while true do
    local s, e = text:find(secret, init, true)
    if not s then break end
    parts[#parts + 1] = text:sub(init, s - 1)
    parts[#parts + 1] = with
    init = e + 1
  end
  parts[#parts + 1] = text:sub(init)
  return table.concat(parts)
end

local function scrub(text, secrets)
  if type(text) ~= "string" then return text end
  for _, secret in ipairs(secrets) do text = replace_plain(text, secret, "***") end
  return text
end

-- secrets_of(target) -> list of strings to hide, longest first | nil, message (the string does not parse)
local function secrets_of(target)
  local secrets = typed_passwords(target)
  local decoded, parse_error = core.conninfo_secrets(target)
  if not decoded then
    -- libpq quotes the offending piece of the string, which may be the password itself: only quoted
    -- single characters ("=") stay.
    local shown = scrub(parse_error, secrets):gsub('"([^"]*)"', function(piece)
      if #piece > 1 then return '"..."' end
    end)
    return nil, "cannot read the PostgreSQL connection string: " .. shown
  end
  for _, s in ipairs(decoded) do secrets[#secrets + 1] = s end
  table.sort(secrets, function(a, b) return #a > #b end)
  return secrets
end

-- The connection string as it may be shown: passwords replaced by ***.
function pg.redact(target)
  if type(target) ~= "string" then return target end
  local shown = scrub(target, typed_passwords(target))
  local decoded = core.conninfo_secrets(target)
  return util.redact_url(scrub(shown, decoded or {}))
end

-- ---- connecting ----

local function check_options(opts)
  if opts == nil then return {} end
  if type(opts) ~= "table" then error("pg.connect: options must be a table", 3) end
  local known = { connect_timeout = "number", statement_timeout = "number", sslmode = "string",
                  application_name = "string" }
  for key, value in pairs(opts) do
    if not known[key] then error(string.format("pg.connect: unknown option '%s'", tostring(key)), 3) end
    if type(value) ~= known[key] then
      error(string.format("pg.connect: option %s must be a %s", key, known[key]), 3)
    end
  end
  if opts.connect_timeout and not (opts.connect_timeout >= 1 and opts.connect_timeout <= 3600) then
    error("pg.connect: connect_timeout must be between 1 and 3600 seconds", 3)
  end
  if opts.statement_timeout and not (opts.statement_timeout > 0 and opts.statement_timeout <= 2147483) then
    error("pg.connect: statement_timeout must be more than 0 and at most 2147483 seconds (every statement is bounded)", 3)
  end
  return opts
end

local function connect_hint(message)
  if message:find("password authentication failed", 1, true) then
    return " (wrong password, or the role has none: check the URL, PGPASSWORD or ~/.pgpass)"
  elseif message:find("timeout expired", 1, true) then
    return " (the server did not answer in time: is the host right, and does a firewall drop the packets?)"
  end -- for a refused connection or a missing socket, libpq's own message already asks the right question
  return ""
end

-- connect([url_or_conninfo][, {connect_timeout=10, statement_timeout=300, sslmode=, application_name=}])
-- -> conn | nil, message, {kind="connection"}
-- Without a string, libpq takes everything from PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD,
-- PGSSLMODE... Timeouts are in seconds: connect_timeout bounds connecting, statement_timeout every statement.
function pg.connect(target, opts)
  if target ~= nil and type(target) ~= "string" then error("pg.connect: expected a URL or conninfo string", 2) end
  target = target or ""
  opts = check_options(opts)
  local secrets, err = secrets_of(target)
  if not secrets then return nil, err, { kind = "input" } end
  -- Held for the whole process (runbook.secrets): no output, plan or journal may show them.
  local registry = require "runbook.secrets"
  for _, secret in ipairs(secrets) do registry.remember(secret) end
  registry.remember(os.getenv("PGPASSWORD"))
  local shown = target == "" and "(PG* variables and defaults)" or pg.redact(target)
  ui.verbose("pg: connecting to " .. shown)
  local conn, message, details = core.connect(target, opts)
  if not conn then
    message = scrub(message, secrets)
    return nil, string.format("cannot connect to PostgreSQL %s: %s%s", shown, message, connect_hint(message)), details
  end
  local info = conn:info()
  state[conn] = { label = info.label, secrets = secrets }
  ui.verbose(string.format("pg: connected to %s (server %d, backend %d%s)", info.label, info.server_version,
    info.backend_pid, info.ssl and ", TLS" or ""))
  return conn
end

-- ---- statements ----

local function label_of(conn)
  local s = state[conn]
  return s and s.label or "connection"
end

-- Errors raised by the C core (refusals, misuse) name the runbook's line, not this file's.
local function raised_at_caller(ok, ...)
  if ok then return ... end
  local err = ...
  if type(err) == "string" then error((err:gsub("^[^:]*runbook/pg%.lua:%d+: ", "")), 3) end
  error(err, 0)
end

local function failure(conn, message, details)
  local s = state[conn]
  message = scrub(message, s and s.secrets or {})
  if details and details.detail then message = message .. " (" .. scrub(details.detail, s and s.secrets or {}) .. ")" end
  return nil, string.format("pg %s: %s", label_of(conn), message), details
end

-- Parameters: nil and pg.null are NULL, booleans and numbers become their text, tables become JSON.
local function prepare_params(n, ...)
  local params = table.pack(...)
  for i = 1, n do
    if type(params[i]) == "table" then params[i] = json.encode(params[i]) end
  end
  return params
end

local function decode_json_columns(rows, json_columns)
  if #json_columns == 0 then return end
  for _, row in ipairs(rows) do
    for _, name in ipairs(json_columns) do
      local text = row[name]
      if type(text) == "string" then
        local value = json.decode(text)
        -- The server checked the JSON; a document cjson cannot read (nested too deeply) stays text.
        if value ~= nil then row[name] = value end
      end
    end
  end
end

local function shown_sql(sql)
  local one_line = core.mask_literals(sql):gsub("%s+", " ")
  return #one_line > 160 and one_line:sub(1, 157) .. "..." or one_line
end

-- query(sql, ...) -> rows | affected, tag | nil, message, details
-- One statement; $1, $2... are the extra arguments. rows is an array of tables keyed by column name,
-- with rows.columns listing the names in order. Values are typed by the column's type: bool -> boolean,
-- int2/int4/int8/oid -> integer, float4/float8 -> float, json/jsonb -> decoded (JSON null is pg.null),
-- bytea -> bytes, arrays of those, text, numeric and the rest -> strings; NULL -> nil (key absent).
-- Statements without rows return the number of rows they affected and the command tag ("UPDATE 3").
-- details: {sqlstate=, severity=, message=, detail=, hint=, position=, table=, constraint=, ..., kind=}
function Conn:query(sql, ...)
  if type(sql) ~= "string" then error("conn:query: expected an SQL string", 2) end
  local n = select("#", ...)
  local params = prepare_params(n, ...)
  local started = host.monotonic()
  local result, a, b = raised_at_caller(pcall(core.exec, self, sql, table.unpack(params, 1, n)))
  local took = host.monotonic() - started
  if result == nil then
    ui.verbose(string.format("pg %s: %s failed: %s", label_of(self), shown_sql(sql), tostring(a)), 2)
    return failure(self, a, b)
  end
  if type(result) == "table" then
    result.columns = a
    decode_json_columns(result, b)
    ui.verbose(string.format("pg %s: %s -> %d rows (%.3fs)", label_of(self), shown_sql(sql), #result, took), 2)
    return result
  end
  ui.verbose(string.format("pg %s: %s -> %s (%.3fs)", label_of(self), shown_sql(sql), a, took), 2)
  return result, a
end

-- transaction(fn) -> what fn returned | nil, message, details
-- Runs fn(conn) between BEGIN and COMMIT. If fn raises, the transaction is rolled back and the error
-- raised again; if fn returns nil (nil, message), it is rolled back and that is returned. In read-only
-- phases the transaction is READ ONLY and always rolled back (there is nothing to keep). No nesting.
function Conn:transaction(fn)
  if type(fn) ~= "function" then error("conn:transaction: expected a function", 2) end
  local ok, err, details = raised_at_caller(pcall(core.begin, self))
  if not ok then return failure(self, err, details) end
  local results = table.pack(pcall(fn, self))
  if not results[1] then
    pcall(core.finish, self, false) -- the error being raised matters more than a failed rollback
    error(results[2], 0)
  end
  if results[2] == nil then
    pcall(core.finish, self, false)
    return nil, results[3], results[4]
  end
  ok, err, details = core.finish(self, true)
  if not ok then return failure(self, err, details) end
  return table.unpack(results, 2, results.n)
end

-- The COPY statement for copy_to: a whole COPY ... TO STDOUT statement is used as is; other SQL (a
-- statement has spaces) is a query to copy; a bare name is a table, or schema.table.
local function copy_statement(conn, what, opts)
  if what:match("^%s*[Cc][Oo][Pp][Yy]%s") then
    if opts.format or opts.header then error("conn:copy_to: format and header apply only when copy_to writes the COPY", 3) end
    return what
  end
  local source
  if what:find("%s") then
    source = "(" .. what:gsub("[;%s]+$", "") .. ")" -- "SELECT ...;" is a query too
  else
    local parts = {}
    for part in what:gmatch("[^.]+") do parts[#parts + 1] = assert(conn:escape_identifier(part)) end
    if #parts == 0 or #parts > 2 then error("conn:copy_to: '" .. what .. "' is not a table name", 3) end
    source = table.concat(parts, ".")
  end
  local format = opts.format or "text"
  if format ~= "text" and format ~= "csv" and format ~= "binary" then
    error("conn:copy_to: format must be text, csv or binary", 3)
  end
  local options = { "FORMAT " .. format }
  if opts.header then
    if format ~= "csv" then error("conn:copy_to: header needs format csv", 3) end
    options[#options + 1] = "HEADER true"
  end
  return string.format("COPY %s TO STDOUT (%s)", source, table.concat(options, ", "))
end

-- copy_to(table_or_query_or_copy, path[, {format="text"|"csv"|"binary", header=, timeout=}])
-- -> {sha256=, bytes=, rows=, path=} | nil, message, details
-- Streams COPY ... TO STDOUT into a new file (created exclusively, mode 0600, hashed while written,
-- fsync'd): memory stays flat whatever the table's size. A failed copy removes its partial file.
-- timeout (seconds) replaces statement_timeout for this copy, for tables too large to copy in time.
function Conn:copy_to(what, path, opts)
  if type(what) ~= "string" then error("conn:copy_to: expected a table name, query or COPY statement", 2) end
  if type(path) ~= "string" or path == "" then error("conn:copy_to: expected a file path", 2) end
  opts = opts or {}
  local sql = copy_statement(self, what, opts)
  local previous_timeout
  if opts.timeout then
    local previous, err, details = self:set_statement_timeout(opts.timeout)
    if not previous then return failure(self, err, details) end
    previous_timeout = previous
  end
  local out, open_error = host.create_output(path)
  if not out then
    if previous_timeout then self:set_statement_timeout(previous_timeout) end
    return nil, string.format("pg %s: cannot create %s", label_of(self), open_error), { kind = "write" }
  end
  local started = host.monotonic()
  local results = table.pack(pcall(core.copy_out, self, sql, function(chunk) return out:write(chunk) end))
  if previous_timeout then self:set_statement_timeout(previous_timeout) end
  local ok, rows, bytes_or_message, details = results[1], results[2], results[3], results[4]
  if not ok or rows == nil then
    out:close()
    host.remove(path) -- a partial backup must not look like a backup
    if not ok then raised_at_caller(false, rows) end
    if details and details.kind == "write" then
      return nil, string.format("pg %s: writing %s: %s", label_of(self), path, bytes_or_message), details
    end
    return failure(self, bytes_or_message, details)
  end
  local sha256, size = out:close()
  if not sha256 then
    host.remove(path)
    return nil, string.format("pg %s: %s", label_of(self), size), { kind = "write" }
  end
  local took = host.monotonic() - started
  ui.verbose(string.format("pg %s: copied %s to %s: %d rows, %d bytes in %.2fs", label_of(self), shown_sql(sql),
    path, rows, size, took))
  return { sha256 = sha256, bytes = size, rows = rows, path = path }
end

function Conn:label()
  return label_of(self)
end

-- ---- helpers without a connection ----

-- parse_array(text[, "text"|"integer"|"float"|"boolean"]) -> table | nil, message
-- A PostgreSQL array literal ("{1,2,NULL}", "{{a,b},{c,d}}") as nested tables; NULL elements are pg.null.
function pg.parse_array(text, kind)
  if type(text) ~= "string" then error("pg.parse_array: expected a string", 2) end
  return core.parse_array(text, kind)
end

-- guard_reason(sql) -> reason | nil: why the read-only guard refuses sql before sending it. nil does not
-- mean the statement is read-only: the read-only transaction and the server still have their say.
function pg.guard_reason(sql)
  if type(sql) ~= "string" then error("pg.guard_reason: expected a string", 2) end
  return core.guard_reason(sql)
end

return pg
