-- The guard's statement check on its own (no server): what it refuses before sending, what it must let
-- through, and random input that must never crash it.
local pg = require "runbook.pg"
local function allowed(sql, desc) eq(pg.guard_reason(sql), nil, desc or ("allowed: " .. sql)) end
local function refused(sql, pattern, desc)
  like(pg.guard_reason(sql), pattern, desc or ("refused: " .. sql))
end

allowed("SELECT 1")
allowed("SELECT * FROM users WHERE name = $1")
allowed("SHOW transaction_read_only", "SHOW of the read-only setting")
allowed("SELECT current_setting('transaction_read_only')", "reading the setting")
allowed("SELECT 'pg_terminate_backend(1); COMMIT'", "forbidden words inside a string")
allowed("SELECT $$ pg_terminate_backend(1) $$", "...inside a dollar-quoted string")
allowed("SELECT $tag$ $$ pg_terminate_backend(1) $$ $tag$", "...inside a tagged dollar quote holding $$")
allowed("SELECT E'\\' pg_terminate_backend(1) '", "...inside an E'' string with an escaped quote")
allowed("SELECT 1 -- pg_terminate_backend(1)", "...inside a line comment")
allowed("/* a /* nested */ pg_terminate_backend(1) */ SELECT 1", "...inside a nested block comment")
allowed("COPY users TO STDOUT", "COPY ... TO STDOUT")
allowed("copy (select 1 from users where name = 'to') to stdout with (format csv)", "COPY (query) TO STDOUT, lower case")
allowed("COPY users (id, name) TO STDOUT", "COPY with a column list")
allowed("LOCK users IN ACCESS SHARE MODE", "LOCK IN ACCESS SHARE MODE")
allowed("EXPLAIN SELECT 1")
allowed("WITH x AS (SELECT 1) SELECT * FROM x")

refused("COMMIT", "transaction control")
refused("-- a comment first\ncommit", "transaction control", "COMMIT after a comment")
refused("(((BEGIN", "transaction control", "BEGIN after parentheses")
refused("/* x /* nested */ */ SELECT pg_terminate_backend(1)", "pg_terminate_backend", "a call after a nested comment")
refused("SELECT 1 -- a comment that ends at a carriage return\r, pg_terminate_backend(1)", "pg_terminate_backend",
  "a call after a line comment ended by \\r")
refused("SELECT $a$ $$ $a$, pg_terminate_backend(1)", "pg_terminate_backend", "a call after a dollar quote")
refused("SELECT 'a\\' , pg_terminate_backend(1) --'", "pg_terminate_backend",
  "a call that is code when backslashes do not escape (standard_conforming_strings on)")
refused("SELECT 'a\\', 'b', pg_terminate_backend(1) --'", "pg_terminate_backend", "...and when they do")
refused('SELECT "pg_terminate_backend"(1)', "pg_terminate_backend", "a quoted function name")
refused("SELECT pg_catalog.Pg_Terminate_Backend(1)", "Pg_Terminate_Backend", "a qualified name in mixed case")
refused("SELECT dblink_exec('host=x', 'DELETE FROM t')", "dblink_exec", "dblink_exec (a prefix entry)")
refused("SELECT pg_stat_reset_shared('bgwriter')", "pg_stat_reset_shared", "pg_stat_reset_shared (a prefix entry)")
refused("SELECT * FROM ts_stat('SELECT to_tsvector(pg_cancel_backend(1)::text)')", "ts_stat", "ts_stat runs SQL text")
refused('SELECT U&"\\0070g_terminate_backend"(1)', 'U&"', "a Unicode-escaped name")
refused("COPY (SELECT 'to stdout') TO '/tmp/x'", "only COPY ... TO STDOUT", "COPY to a file (TO STDOUT only inside a string)")
refused("COPY users TO PROGRAM 'rm -rf /'", "only COPY ... TO STDOUT", "COPY TO PROGRAM")
refused("COPY users FROM STDIN", "only COPY ... TO STDOUT", "COPY FROM STDIN")
refused("LOCK users", "stronger than ACCESS SHARE", "LOCK without a mode (ACCESS EXCLUSIVE)")
refused("LOCK users IN ROW SHARE MODE", "stronger than ACCESS SHARE", "LOCK IN ROW SHARE MODE")
refused("SET TRANSACTION READ /* hm */ WRITE", "changes read%-only mode", "READ WRITE with a comment between")
refused('SET "DEFAULT_TRANSACTION_READ_ONLY" = off', "changes read%-only mode", "a quoted setting name in capitals")
refused("SET LOCAL transaction_read_only TO off", "changes read%-only mode")
refused("PREPARE TRANSACTION 'x'", "transaction control")
refused("EXPLAIN EXECUTE stmt(1)", "prepared statement", "EXPLAIN EXECUTE")
refused("DO LANGUAGE plpgsql $$ BEGIN NULL; END $$", "anonymous code block")
refused("CHECKPOINT", "maintenance")
refused("LOAD 'auto_explain'", "maintenance")
eq(pg.guard_reason(""), nil, "an empty statement is for the server to refuse")

-- random input: every answer is nil or a string, and the process does not crash
local pieces = { "'", '"', "$", "$$", "$a$", "--", "/*", "*/", "\\", "E'", "U&\"", "(", ")", " ", "\n", "copy", "to",
                 "stdout", "pg_terminate_backend", "commit", "lock", "in", "access", "share", "mode", "set", "read",
                 "write", "x", "1", ";", "é" }
math.randomseed(tonumber(os.getenv("PG_FUZZ_SEED") or "") or 4242)
local answered = 0
for _ = 1, 20000 do
  local parts = {}
  for i = 1, math.random(0, 16) do parts[i] = pieces[math.random(#pieces)] end
  local reason = pg.guard_reason(table.concat(parts, math.random(2) == 1 and " " or ""))
  if reason == nil or type(reason) == "string" then answered = answered + 1 end
end
eq(answered, 20000, "20,000 random statements: each allowed or refused with a reason")
done_checks()
