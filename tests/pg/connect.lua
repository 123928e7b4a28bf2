-- connect.lua VARIABLE [OPTIONS_JSON]: connects to the target in the environment variable (never on a
-- command line), prints who we are; a failure is an error (exit 1).
local json = require "runbook.json"
local pg = require "runbook.pg"
local target = arg[1] ~= "" and os.getenv(arg[1]) or nil
local opts = arg[2] and assert(json.decode(arg[2])) or nil
local conn, err = pg.connect(target, opts)
if not conn then error(err, 0) end
print("connected " .. conn:label())
print("shown as " .. tostring(pg.redact(target)))
local row = assert(conn:query("SELECT current_user AS u, current_setting('application_name') AS app, " ..
  "current_setting('statement_timeout') AS st, current_setting('client_encoding') AS enc"))[1]
print(string.format("user=%s app=%s statement_timeout=%s encoding=%s", row.u, row.app, row.st, row.enc))
print("tostring " .. tostring(conn))
assert(conn:query("SELECT 'supersecret-literal' AS s"))
