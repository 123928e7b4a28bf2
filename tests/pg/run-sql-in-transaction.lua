-- run-sql-in-transaction.lua SQL: like run-sql.lua, inside conn:transaction() after a first read.
local sql = arg[1]
local conn = connect()
local result, err = conn:transaction(function(c)
  assert(c:query("SELECT count(*) FROM guarded"))
  return c:query(sql)
end)
if result == nil then error(err, 0) end
print("done")
