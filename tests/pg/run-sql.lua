-- run-sql.lua SQL [URL_VARIABLE]: runs one statement on the connection named by the environment variable
-- (PG_HUB_URL by default) and prints what came back; a failure is an error (exit 1).
local sql, variable = arg[1], arg[2]
local conn = connect(variable)
local result, err = conn:query(sql)
if result == nil then error(err, 0) end
print(type(result) == "table" and ("rows: " .. #result) or ("affected: " .. tostring(result)))
