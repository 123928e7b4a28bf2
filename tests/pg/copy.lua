-- copy.lua WHAT PATH [OPTIONS_JSON]: copy_to, then prints "result <json>" and checks that the connection
-- still works; a failure is an error (exit 1).
local json = require "runbook.json"
local conn = connect()
local opts = arg[3] and assert(json.decode(arg[3])) or nil
local result, err, details = conn:copy_to(arg[1], arg[2], opts)
local after = conn:query("SELECT 41 + 1 AS answer")
print("connection after the copy: " .. tostring(after and after[1].answer))
if not result then error(err .. " [kind " .. tostring(details and details.kind) .. "]", 0) end
print("result " .. json.encode(result))
