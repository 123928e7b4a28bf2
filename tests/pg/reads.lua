-- Reading works in read-only mode (exec without --write), and what a guarded statement changes in its
-- session does not outlive it.
local conn = connect()
local rows = assert(conn:query("SELECT id, name FROM guarded ORDER BY id"))
eq(#rows, 3, "SELECT works in read-only mode")
local plan = assert(conn:query("EXPLAIN DELETE FROM guarded"))
like(plan[1]["QUERY PLAN"], "^Delete on guarded", "EXPLAIN of a DELETE (without ANALYZE) works")
eq(conn:query("SHOW transaction_read_only")[1].transaction_read_only, "on", "statements run in a read-only transaction")
eq(conn:query("SELECT md5('x') AS h, pg_sleep(0)::text AS slept")[1], { h = "9dd4e461268c8034f5c8564e155c67a6", slept = "" },
  "harmless functions run")
eq({ conn:query("LOCK guarded IN ACCESS SHARE MODE") }, { 0, "LOCK TABLE" }, "LOCK ... IN ACCESS SHARE MODE is allowed")
eq(conn:query("SELECT $a$ pg_terminate_backend(0); COMMIT $a$ AS s")[1].s, " pg_terminate_backend(0); COMMIT ",
  "forbidden words inside a dollar-quoted string are only text")
eq(conn:query("SELECT 'DELETE FROM guarded' AS s -- pg_terminate_backend(0)")[1].s, "DELETE FROM guarded",
  "...and inside strings and comments")

-- session changes are rolled back with the statement's transaction
assert(conn:query("SET statement_timeout = '1234ms'"))
eq(conn:query("SHOW statement_timeout")[1].statement_timeout, "5min", "a SET does not outlive its statement")
-- set_config() hides the setting's name in a string; the guard does not rely on the default anyway
assert(conn:query("SELECT set_config('default_transaction_read_only', 'off', false)"))
local ok, err = pcall(conn.query, conn, "INSERT INTO guarded (name) VALUES ('after set_config')")
check(not ok and err:find("refused", 1, true), "after set_config(default_transaction_read_only, off), an INSERT is still refused", tostring(err))

-- a read-only transaction block
local count, names = conn:transaction(function(c)
  local n = assert(c:query("SELECT count(*) AS n FROM guarded"))[1].n
  local list = {}
  for _, row in ipairs(assert(c:query("SELECT name FROM guarded ORDER BY id"))) do list[#list + 1] = row.name end
  eq(c:query("SHOW transaction_read_only")[1].transaction_read_only, "on", "a transaction() block is read-only")
  return n, table.concat(list, ",")
end)
eq({ count, names }, { 3, "alpha,beta,gamma" }, "transaction() works for reads and returns the function's values")
ok, err = pcall(conn.transaction, conn, function(c)
  assert(c:query("SELECT 1"))
  c:query("UPDATE guarded SET name = 'x'")
end)
check(not ok and err:find("refused: SQL UPDATE", 1, true), "a write inside a read-only transaction() raises a refusal", tostring(err))
local caught
ok, err = pcall(conn.transaction, conn, function(c)
  caught = select(2, pcall(c.query, c, "DELETE FROM guarded")) -- a runbook that hides the refusal
  return c:query("SELECT count(*) AS n FROM guarded")
end)
like(caught, "refused: SQL DELETE", "a refusal inside a block can be caught...")
check(ok and err and err[1].n == 3, "...and later reads run in their own guarded transactions", tostring(err))

-- COPY TO STDOUT is reading
local path = arg[1]
local backup, copy_err = conn:copy_to("guarded", path)
check(backup ~= nil, "copy_to works in read-only mode", tostring(copy_err))
eq(backup and backup.rows, 3, "...copying 3 rows")
ok, err = pcall(conn.copy_to, conn, "COPY guarded TO '/tmp/runbook-should-not-exist'", path .. ".2")
check(not ok and err:find("needs a COPY ... TO STDOUT", 1, true), "copy_to of COPY to a server file raises", tostring(err))
done_checks()
