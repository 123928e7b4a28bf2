#!/usr/bin/env bash
# runbook.pg against a real PostgreSQL 15 (tests/lib/pg.sh), driven through `runbook exec`: types and
# NULLs, $1 parameters, errors, transactions, notices, escaping; COPY to a file (the same bytes as psql's
# \copy, memory flat); the read-only guard (every refused statement, the server provably unchanged, and a
# plan that tries fails); secrets never shown; connect failures with clear messages.
# The Lua scripts are in tests/pg/; each is run with tests/pg/prelude.lua in front of it.
. "$(dirname "$0")/lib/tap.sh"
. "$(dirname "$0")/lib/pg.sh"

[ -x "$PG_BIN/initdb" ] || skip_all "PostgreSQL 15 not installed (apt-get install postgresql)"
case "$RUNBOOK" in *asan*) SANITIZED=1 ;; *) SANITIZED=0 ;; esac

pg_start "$SCRATCH/pg" || { ok 1 "pg_start"; done_testing; exit 1; }
export PG_SUPER_HUB="$PG_SUPER_CONNINFO dbname=jupyterhub"
PSQL_HUB=(env PGPASSWORD="$PG_HUB_PASSWORD" "$PG_BIN/psql" "host=127.0.0.1 port=$PG_PORT user=hub dbname=jupyterhub" -X -q -v ON_ERROR_STOP=1)

# script NAME: tests/pg/prelude.lua + tests/pg/NAME.lua as one file; prints its path
script() {
  cat "$TOP/tests/pg/prelude.lua" "$TOP/tests/pg/$1.lua" >"$SCRATCH/$1.lua"
  echo "$SCRATCH/$1.lua"
}

# run_checks LABEL RUNBOOK-ARGS...: runs a check script; its "ok - ..." lines become TAP lines
run_checks() {
  local label=$1 line n=0
  shift
  run_rb "$@"
  while IFS= read -r line; do
    case "$line" in
      "ok - "*) ok 0 "$label: ${line#ok - }"; n=$((n + 1)) ;;
      "not ok - "*) ok 1 "$label: ${line#not ok - }"; n=$((n + 1)) ;;
      "#   "*) echo "$line" ;;
    esac
  done <<<"$ERR"
  is "$RC" 0 "$label: the script exits 0" || diag "$(printf '%s\n' "$ERR" | grep -v '^ok - ' | tail -n 15)"
  is "$(printf '%s\n' "$ERR" | sed -n 's/^checks run: //p')" "$n" "$label: every check ran ($n)"
}

# ---------------------------------------------------------------- the database the tests use
"${PSQL_HUB[@]}" >/dev/null <<'SQL'
CREATE TABLE guarded (id serial PRIMARY KEY, name text NOT NULL);
INSERT INTO guarded (name) VALUES ('alpha'), ('beta'), ('gamma');
CREATE FUNCTION write_something() RETURNS int LANGUAGE sql AS $$ INSERT INTO guarded (name) VALUES ('from a function') RETURNING id $$;
CREATE MATERIALIZED VIEW guarded_names AS SELECT name FROM guarded;
SQL
ok $? "test tables created as hub"

# ---------------------------------------------------------------- types, writes, errors, transactions
run_checks types exec "$(script types)"
run_checks writes exec --write "$(script writes)"
run_checks arrays exec "$(script arrays)"
run_checks guard exec "$(script guard)"

# ---------------------------------------------------------------- the read-only guard
# A session the guard must not touch: pg_terminate_backend is a function a read-only transaction allows.
PGAPPNAME=victim "${PSQL_HUB[@]}" -c "SELECT pg_sleep(3600)" >/dev/null 2>&1 &
VICTIM=$!
on_exit "kill $VICTIM"
for _ in $(seq 50); do
  [ "$(pg_psql_super "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'victim'")" = 1 ] && break
  sleep 0.1
done

# Everything a statement could change: rows, sequences, objects, comments, grants, role and database
# settings, large objects, prepared transactions, other sessions, databases, the server's config and files.
fingerprint() {
  "$PG_BIN/psql" "$PG_SUPER_HUB" -X -q -A -t -v ON_ERROR_STOP=1 -c "
    SELECT md5(string_agg(x, '|' ORDER BY x)) FROM (
      SELECT 'row ' || g::text FROM guarded g
      UNION ALL SELECT 'seq ' || last_value || ' ' || is_called FROM guarded_id_seq
      UNION ALL SELECT 'rel ' || relname || ' ' || relkind::text || ' ' || coalesce(relacl::text, '') || ' ' || relfilenode
        FROM pg_class WHERE relnamespace = 'public'::regnamespace
      UNION ALL SELECT 'view ' || count(*) FROM guarded_names
      UNION ALL SELECT 'comment ' || coalesce(obj_description('guarded'::regclass), '')
      UNION ALL SELECT 'proc ' || proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace
      UNION ALL SELECT 'role ' || rolname || coalesce(rolconfig::text, '') FROM pg_roles WHERE rolname = 'hub'
      UNION ALL SELECT 'setting ' || coalesce(setconfig::text, '') FROM pg_db_role_setting
      UNION ALL SELECT 'lo ' || count(*) FROM pg_largeobject_metadata
      UNION ALL SELECT 'prepared ' || count(*) FROM pg_prepared_xacts
      UNION ALL SELECT 'victim ' || count(*) FROM pg_stat_activity WHERE application_name = 'victim'
      UNION ALL SELECT 'database ' || datname FROM pg_database
    ) s(x)"
  md5sum "$PG_DIR/data/postgresql.auto.conf" | cut -d' ' -f1
  ls "$SCRATCH" | grep -c pwned
}
FP=$(fingerprint)
like "$FP" '^[0-9a-f]{32}' "fingerprint of the database taken"
like "$(pg_psql_super "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'victim'")" '^1$' "the victim session is connected"

RUN_SQL=$(script run-sql)
RUN_SQL_TX=$(script run-sql-in-transaction)
# refused [-t] SQL REASON-REGEX [URL_VARIABLE]: in read-only mode, SQL fails (exit 1) with a refusal
# whose reason matches, and the database is unchanged. -t: inside conn:transaction().
refused() {
  local runner=$RUN_SQL where=""
  if [ "$1" = -t ]; then runner=$RUN_SQL_TX where=" in a transaction"; shift; fi
  local sql=$1 reason=$2 variable=${3:-PG_HUB_URL}
  run_rb exec "$runner" "$sql" "$variable"
  local now
  now=$(fingerprint)
  if [ "$RC" -eq 1 ] && printf '%s' "$ERR" | grep -Eq -- "refused: .*$reason.* in read-only mode" && [ "$now" = "$FP" ]; then
    ok 0 "refused$where: $sql"
  else
    ok 1 "refused$where: $sql"
    diag "exit $RC; database unchanged: $([ "$now" = "$FP" ] && echo yes || echo NO)"
    diag "$(printf '%s\n' "$ERR" | head -n 3)"
  fi
}

# writes the server refuses in the read-only transaction (SQLSTATE 25006)
refused "INSERT INTO guarded (name) VALUES ('x')" "SQL INSERT \(cannot execute INSERT in a read-only transaction\)"
refused "UPDATE guarded SET name = 'y'" "cannot execute UPDATE in a read-only transaction"
refused "DELETE FROM guarded" "cannot execute DELETE in a read-only transaction"
refused "WITH d AS (DELETE FROM guarded RETURNING *) SELECT count(*) FROM d" "SQL WITH \(cannot execute SELECT in a read-only transaction"
refused "CREATE TABLE sneaky (x int)" "cannot execute CREATE TABLE"
refused "CREATE TEMP TABLE sneaky (x int)" "cannot execute CREATE TABLE"
refused "DROP OWNED BY current_user" "cannot execute DROP OWNED"
refused "DROP TABLE guarded" "cannot execute DROP TABLE"
refused "TRUNCATE guarded" "cannot execute TRUNCATE TABLE"
refused "ALTER TABLE guarded ADD COLUMN z int" "cannot execute ALTER TABLE"
refused "COMMENT ON TABLE guarded IS 'x'" "cannot execute COMMENT"
refused "GRANT SELECT ON guarded TO PUBLIC" "cannot execute GRANT"
refused "ALTER ROLE hub SET default_transaction_read_only = off" "cannot execute ALTER ROLE"
refused "REFRESH MATERIALIZED VIEW guarded_names" "cannot execute REFRESH MATERIALIZED VIEW"
refused "SELECT nextval('guarded_id_seq')" "cannot execute nextval\(\)"
refused "SELECT setval('guarded_id_seq', 100)" "cannot execute setval\(\)"
refused "SELECT write_something()" "cannot execute INSERT"
refused "SELECT * FROM guarded FOR UPDATE" "cannot execute SELECT FOR UPDATE"
refused "SELECT * FROM guarded FOR SHARE" "cannot execute SELECT FOR SHARE"
refused "EXPLAIN ANALYZE DELETE FROM guarded" "cannot execute DELETE"
# refused because they cannot run inside the guard's transaction block (SQLSTATE 25001)
refused "SELECT set_config('transaction_read_only', 'off', false)" "transaction read-write mode must be set before any query"
refused "ALTER SYSTEM SET work_mem = '1MB'" "ALTER SYSTEM cannot run inside a transaction block" PG_SUPER_HUB
refused "CREATE DATABASE sneaky" "cannot execute CREATE DATABASE in a read-only transaction" PG_SUPER_HUB
refused "VACUUM FULL guarded" "a maintenance command"
# refused before anything is sent: transaction control, read-write switches, COPY beyond the client,
# strong locks, maintenance, code blocks, and functions acting outside the transaction
refused "COMMIT" "SQL COMMIT \(transaction control; use conn:transaction\(\)\)"
refused "ROLLBACK" "transaction control"
refused "END" "transaction control"
refused "ABORT" "transaction control"
refused "COMMIT AND CHAIN" "transaction control"
refused "BEGIN READ WRITE" "transaction control"
refused "START TRANSACTION READ WRITE" "transaction control"
refused "SAVEPOINT s" "transaction control"
refused "PREPARE TRANSACTION 'x'" "transaction control"
refused "SET TRANSACTION READ WRITE" "SQL SET \(it changes read-only mode\)"
refused "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE" "it changes read-only mode"
refused "SET default_transaction_read_only = off" "it changes read-only mode"
refused 'SET "transaction_read_only" TO off' "it changes read-only mode"
refused "RESET default_transaction_read_only" "it changes read-only mode"
refused "COPY guarded FROM STDIN" "only COPY ... TO STDOUT reads"
refused "COPY guarded TO '/tmp/runbook-guard-test'" "only COPY ... TO STDOUT reads" PG_SUPER_HUB
refused "COPY (SELECT 1) TO PROGRAM 'touch $SCRATCH/pwned'" "only COPY ... TO STDOUT reads" PG_SUPER_HUB
refused "LOCK guarded IN ACCESS EXCLUSIVE MODE" "a lock mode stronger than ACCESS SHARE"
refused "LOCK TABLE guarded" "a lock mode stronger than ACCESS SHARE"
refused "LOCK guarded IN SHARE MODE NOWAIT" "a lock mode stronger than ACCESS SHARE"
refused "VACUUM guarded" "a maintenance command"
refused "ANALYZE guarded" "a maintenance command"
refused "REINDEX TABLE guarded" "a maintenance command"
refused "DO \$\$BEGIN INSERT INTO guarded (name) VALUES ('do'); END\$\$" "SQL DO \(an anonymous code block"
refused "EXECUTE some_prepared_statement" "a prepared statement could hide"
refused "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'victim'" "SQL calling pg_terminate_backend\(\)"
refused "SELECT pg_catalog.\"pg_cancel_backend\"(pid) FROM pg_stat_activity WHERE application_name = 'victim'" "calling pg_cancel_backend"
refused "SELECT PG_TERMINATE_BACKEND(pid) FROM pg_stat_activity WHERE application_name = 'victim'" "calling PG_TERMINATE_BACKEND"
refused "SELECT 1 /* a comment */ , pg_reload_conf()" "calling pg_reload_conf"
refused "SELECT 'x\\' , pg_terminate_backend(0) -- '" "calling pg_terminate_backend" # code to the server, a string if backslashes escaped
refused "SELECT U&\"\\0070g_terminate_backend\"(0)" "U&"
refused "SELECT lo_export(0, '/tmp/runbook-guard-test')" "calling lo_export" PG_SUPER_HUB
refused "SELECT query_to_xml('DELETE FROM guarded RETURNING 1', true, false, '')" "calling query_to_xml"
# the same inside conn:transaction(), after a first read
refused -t "DELETE FROM guarded" "cannot execute DELETE"
refused -t "SELECT nextval('guarded_id_seq')" "cannot execute nextval"
refused -t "SELECT set_config('transaction_read_only', 'off', true)" "must be set before any query"
refused -t "COMMIT" "transaction control"
refused -t "SET TRANSACTION READ WRITE" "it changes read-only mode"
refused -t "SELECT write_something()" "cannot execute INSERT"

run_rb exec "$RUN_SQL" "SELECT 1; DELETE FROM guarded"
is "$RC" 1 "two statements in one query: exit 1"
like "$ERR" "cannot insert multiple commands into a prepared statement" "...the server refuses several statements"
is "$(fingerprint)" "$FP" "...nothing changed"
is "$(pg_psql_super "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'victim'")" 1 "the victim session is still there"
check "no file was created by COPY TO PROGRAM" test ! -e "$SCRATCH/pwned"
is "$(pg_psql_super "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'")" 0 "no session is left in a transaction"

run_checks reads exec "$(script reads)" "$SCRATCH/reads.copy"
is "$(fingerprint)" "$FP" "reads changed nothing"

# ---------------------------------------------------------------- planning
# No password in the URL: the engine copies parameters into the plan, secret ones included.
export PG_TEST_URL="postgresql://hub@127.0.0.1:$PG_PORT/jupyterhub" PGPASSWORD=$PG_HUB_PASSWORD
run_rb plan "$TOP/tests/pg/pg-plan.lua" -p backup="$SCRATCH/plan-backup.copy" --output json
is "$RC" 0 "a runbook that reads PostgreSQL plans (exit 0)"
like "$OUT" '"target": ?"gamma"' "...its plan lists the rows it read"
is "$(wc -l <"$SCRATCH/plan-backup.copy" 2>/dev/null)" 3 "...and copy_to works while planning"
unlike "$OUT$ERR" "$PG_HUB_PASSWORD" "...the password is nowhere in the plan or its output"
run_rb plan "$TOP/tests/pg/pg-plan.lua" -p sneaky=true
is "$RC" 1 "a runbook that tries to write while planning fails, even though it caught the errors"
like "$ERR" "tried to change something while planning" "...with the engine's message"
is "$(fingerprint)" "$FP" "...and the database is unchanged"
unset PGPASSWORD

# ---------------------------------------------------------------- write mode allows everything
run_rb exec --write "$RUN_SQL" "INSERT INTO guarded (name) VALUES ('written')"
is "$RC:$OUT$(printf '%s' "$ERR" | grep '^affected')" "0:affected: 1" "exec --write: INSERT is allowed and affects 1 row"
for sql in "VACUUM guarded" "ANALYZE guarded" "SELECT nextval('guarded_id_seq')" "DO \$\$BEGIN PERFORM 1; END\$\$" \
           "REFRESH MATERIALIZED VIEW guarded_names" "SET TRANSACTION READ WRITE"; do
  run_rb exec --write "$RUN_SQL" "$sql"
  is "$RC" 0 "exec --write: $sql is allowed" || diag "$ERR"
done
is "$(pg_psql_hub "SELECT count(*) FROM guarded_names")" 4 "...and did what it says"

# ---------------------------------------------------------------- COPY
"${PSQL_HUB[@]}" >/dev/null <<'SQL'
CREATE TABLE big AS
  SELECT g AS id, md5(g::text) AS hash, repeat(chr(65 + g % 26), 120) AS pad,
         TIMESTAMPTZ '2024-01-01 00:00:00+00' + g * interval '1 minute' AS at, g % 3 = 0 AS flag,
         CASE WHEN g % 7 = 0 THEN NULL ELSE E'tab\there, "quoted" \\ back\nslash é' END AS tricky
  FROM generate_series(1, 200000) g;
SQL
ok $? "a table of 200,000 rows"
"${PSQL_HUB[@]}" -c "\\copy big TO '$SCRATCH/psql.copy'"
"${PSQL_HUB[@]}" -c "\\copy (SELECT id, tricky FROM big WHERE id <= 5000) TO '$SCRATCH/psql.csv' WITH (FORMAT csv, HEADER true)"
psql_size=$(stat -c %s "$SCRATCH/psql.copy")
ok $(( psql_size > 20000000 ? 0 : 1 )) "psql's \\copy of it is tens of MB ($((psql_size / 1000000)) MB)"

COPY_SCRIPT=$(script copy)
read -r copy_rc copy_rss copy_seconds < <("$PY" "$TOP/tests/pg/measure.py" "$SCRATCH/copy.out" "$SCRATCH/copy.err" \
  "$RUNBOOK" exec "$COPY_SCRIPT" big "$SCRATCH/big.copy")
is "$copy_rc" 0 "copy_to of the big table exits 0" || diag "$(head -n 5 "$SCRATCH/copy.err")"
result=$(sed -n 's/^result //p' "$SCRATCH/copy.err")
is "$(sha256sum <"$SCRATCH/big.copy" | cut -d' ' -f1)" "$(sha256sum <"$SCRATCH/psql.copy" | cut -d' ' -f1)" \
  "the file has the same bytes as psql's \\copy"
is "$(printf '%s' "$result" | "$PY" -c 'import json,sys; r=json.load(sys.stdin); print(r["rows"], r["bytes"], r["sha256"])')" \
  "200000 $psql_size $(sha256sum <"$SCRATCH/psql.copy" | cut -d' ' -f1)" "copy_to returns rows, bytes and sha256 (equal to the file's)"
is "$(stat -c %a "$SCRATCH/big.copy")" 600 "the file is mode 0600"
read -r base_rc base_rss base_seconds < <("$PY" "$TOP/tests/pg/measure.py" /dev/null /dev/null \
  "$RUNBOOK" exec "$RUN_SQL" "SELECT 1")
diag "COPY of $((psql_size / 1000000)) MB in ${copy_seconds}s ($(echo "$psql_size $copy_seconds" | awk '{printf "%.0f", $1 / $2 / 1e6}') MB/s); peak RSS ${copy_rss} kB (a plain SELECT 1: ${base_rss} kB)"
if [ "$SANITIZED" = 1 ]; then
  ok 0 "peak RSS during the copy under 30 MB # SKIP the sanitizers' allocator keeps freed memory"
else
  ok $(( copy_rss < 30720 ? 0 : 1 )) "peak RSS during the copy under 30 MB: memory stays flat (${copy_rss} kB)"
fi

run_rb exec "$COPY_SCRIPT" "SELECT id, tricky FROM big WHERE id <= 5000;" "$SCRATCH/query.csv" '{"format": "csv", "header": true}'
is "$RC" 0 "copy_to of a query as CSV with a header exits 0" || diag "$ERR"
is "$(sha256sum <"$SCRATCH/query.csv" | cut -d' ' -f1)" "$(sha256sum <"$SCRATCH/psql.csv" | cut -d' ' -f1)" "...the same bytes as psql's \\copy"
run_rb exec "$COPY_SCRIPT" "COPY (SELECT id FROM big WHERE id <= 3) TO STDOUT" "$SCRATCH/stmt.copy"
is "$RC:$(cat "$SCRATCH/stmt.copy" | tr '\n' ,)" "0:1,2,3," "copy_to of a whole COPY statement"
run_rb exec "$COPY_SCRIPT" "public.guarded" "$SCRATCH/schema.copy" '{"format": "binary"}'
is "$RC:$(head -c 5 "$SCRATCH/schema.copy")" "0:PGCOP" "copy_to of schema.table in binary format"

echo keep >"$SCRATCH/exists.copy"
run_rb exec "$COPY_SCRIPT" big "$SCRATCH/exists.copy"
is "$RC" 1 "copy_to onto an existing file: exit 1"
like "$ERR" "cannot create .*exists.copy: File exists" "...saying the file exists"
is "$(cat "$SCRATCH/exists.copy")" keep "...and the file is untouched"
run_rb exec "$COPY_SCRIPT" no_such_table "$SCRATCH/missing.copy"
is "$RC" 1 "copy_to of a missing table: exit 1"
like "$ERR" 'relation "no_such_table" does not exist' "...with the server's message"
check "...and no file is left" test ! -e "$SCRATCH/missing.copy"
( trap '' XFSZ; ulimit -f 2048; exec "$RUNBOOK" exec "$COPY_SCRIPT" big "$SCRATCH/too-big.copy" ) >"$SCRATCH/o" 2>"$SCRATCH/e" </dev/null
is "$?" 1 "a copy whose file cannot grow (ulimit -f 2 MB): exit 1"
like "$(cat "$SCRATCH/e")" "writing .*too-big.copy: .*File too large" "...saying why"
like "$(cat "$SCRATCH/e")" "connection after the copy: 42" "...and the connection still works afterwards"
check "...and the partial file is removed" test ! -e "$SCRATCH/too-big.copy"
run_rb exec --write "$COPY_SCRIPT" "DELETE FROM guarded" "$SCRATCH/delete.copy"
is "$RC" 1 "copy_to of a DELETE (no RETURNING) fails"
is "$(pg_psql_hub "SELECT count(*) FROM guarded")" 4 "...and deletes nothing"

# ---------------------------------------------------------------- connecting, and secrets
CONNECT=$(script connect)
run_rb -v exec "$CONNECT" PG_HUB_URL '{"application_name": "runbook-test", "statement_timeout": 60}'
is "$RC" 0 "connect with a URL and a password (scram-sha-256)"
like "$ERR" "connected hub@127.0.0.1:$PG_PORT/jupyterhub" "...conn:label() is user@host:port/dbname"
like "$ERR" "pg: connecting to postgresql://hub:\*\*\*@127.0.0.1:$PG_PORT/jupyterhub" "...-v shows the URL with the password hidden"
like "$ERR" "user=hub app=runbook-test statement_timeout=1min encoding=UTF8" "...application_name and statement_timeout options, UTF-8"
unlike "$OUT$ERR" "$PG_HUB_PASSWORD" "...and the password appears nowhere"
run_rb -v -v exec "$CONNECT" PG_HUB_URL
like "$ERR" "SELECT '...' AS s -> 1 rows" "-vv logs each statement with its literals hidden"
unlike "$ERR" "supersecret-literal" "...so a literal never reaches the log"
like "$ERR" "user=hub app=runbook statement_timeout=5min" "by default: application_name runbook, statement_timeout 5 min"

export PG_WRONG_URL="postgresql://hub:Wrong-Secret-123@127.0.0.1:$PG_PORT/jupyterhub"
run_rb -v exec "$CONNECT" PG_WRONG_URL
is "$RC" 1 "a wrong password: exit 1"
like "$ERR" 'cannot connect to PostgreSQL postgresql://hub:\*\*\*@127.0.0.1:[0-9]+/jupyterhub: .*password authentication failed for user "hub" \(wrong password' \
  "...says the password was refused, with advice"
unlike "$OUT$ERR" "Wrong-Secret-123" "...without showing it"
export PG_WRONG_CONNINFO="host=127.0.0.1 port=$PG_PORT user=hub dbname=jupyterhub password='Wrong Secret\\'s'"
run_rb -v exec "$CONNECT" PG_WRONG_CONNINFO
like "$ERR" "password=\*\*\*: .*password authentication failed" "a conninfo with a wrong password: shown as password=***"
unlike "$OUT$ERR" "Wrong Secret|Secret\\\\'s|Secret's" "...and the password (quoted, with an escape) appears nowhere"
export PG_BAD_URL="postgresql://hub:Sec%zzret-9@127.0.0.1:$PG_PORT/jupyterhub"
run_rb exec "$CONNECT" PG_BAD_URL
is "$RC" 1 "a URL libpq cannot parse: exit 1"
like "$ERR" "cannot read the PostgreSQL connection string: invalid percent-encoded token" "...with libpq's reason"
unlike "$OUT$ERR" "Sec%zzret|zzret-9|ret-9" "...and not the password libpq quotes"
export PG_BAD_CONNINFO="host=127.0.0.1 password=Hunter2-secret bogus"
run_rb exec "$CONNECT" PG_BAD_CONNINFO
like "$ERR" 'cannot read the PostgreSQL connection string: missing "=" after' "a conninfo libpq cannot parse: libpq's reason"
unlike "$OUT$ERR" "Hunter2" "...and not the password"
export PG_PLAIN_CONNINFO="host=127.0.0.1 port=$PG_PORT user=hub dbname=jupyterhub"
PGPASSWORD=$PG_HUB_PASSWORD run_rb exec "$CONNECT" PG_PLAIN_CONNINFO
is "$RC" 0 "a conninfo without a password, PGPASSWORD in the environment"
mkdir -p "$SCRATCH/home"
printf '127.0.0.1:%s:jupyterhub:hub:%s\n' "$PG_PORT" "$PG_HUB_PASSWORD" >"$SCRATCH/home/.pgpass"
chmod 600 "$SCRATCH/home/.pgpass"
HOME=$SCRATCH/home run_rb exec "$CONNECT" PG_PLAIN_CONNINFO
is "$RC" 0 "the password from ~/.pgpass" || diag "$ERR"
HOME=$SCRATCH/home PGHOST=127.0.0.1 PGPORT=$PG_PORT PGUSER=hub PGDATABASE=jupyterhub run_rb exec "$CONNECT" ""
is "$RC" 0 "pg.connect() with nothing: PGHOST, PGPORT, PGUSER, PGDATABASE and ~/.pgpass"
like "$ERR" "connected hub@127.0.0.1:$PG_PORT/jupyterhub" "...to the right place"
run_rb exec "$CONNECT" PG_HUB_URL '{"sslmode": "require"}'
is "$RC" 1 "sslmode=require against a server without TLS: exit 1"
like "$ERR" "server does not support SSL, but SSL was required" "...libpq says so"
run_rb exec "$CONNECT" PG_HUB_URL '{"connect_timeout": "soon"}'
is "$RC" 1 "a bad option: exit 1"
like "$ERR" "option connect_timeout must be a number" "...naming it"

export PG_CLOSED_URL="postgresql://hub@127.0.0.1:$(free_port)/jupyterhub"
run_rb exec "$CONNECT" PG_CLOSED_URL
is "$RC" 1 "nothing listening: exit 1"
like "$ERR" "Connection refused" "...connection refused"
"$PY" "$TOP/tests/pg/silent-server.py" "$SCRATCH/silent.log" >"$SCRATCH/silent.port" &
SILENT=$!
on_exit "kill $SILENT"
for _ in $(seq 50); do [ -s "$SCRATCH/silent.port" ] && break; sleep 0.1; done
export PG_SILENT_URL="postgresql://hub:Silent-Secret@127.0.0.1:$(cat "$SCRATCH/silent.port")/jupyterhub"
# held_ms: how long the last connection was held open before the client gave up, as the silent server
# measured it (from its accept to the client's close: the runbook's start-up and the load of the
# machine are not in it). libpq keeps its connect deadline in whole seconds (time(NULL) + timeout), so
# a timeout of 2 ends after 1 to 2 s; its default in runbook, 10, after 9 to 10 s. The bounds: 0.9 s
# (a connection made just before a second turns) to 6 s: a timeout not applied fails the upper one.
held_ms() {
  local n
  for n in $(seq 100); do [ "$(wc -l <"$SCRATCH/silent.log")" -gt "$1" ] && break; sleep 0.05; done
  tail -n 1 "$SCRATCH/silent.log"
}
: >"$SCRATCH/silent.log"
run_rb exec "$CONNECT" PG_SILENT_URL '{"connect_timeout": 2}'
held=$(held_ms 0)
is "$RC" 1 "a server that never answers: exit 1"
like "$ERR" "timeout expired \(the server did not answer in time" "...timeout expired, with advice"
ok $(( ${held:-0} >= 900 && held < 6000 ? 0 : 1 )) "...after connect_timeout=2 (held ${held} ms)"
unlike "$ERR" "Silent-Secret" "...and without the password"
PGCONNECT_TIMEOUT=2 run_rb exec "$CONNECT" PG_SILENT_URL
held=$(held_ms 1)
ok $(( RC == 1 && ${held:-0} >= 900 && held < 6000 ? 0 : 1 )) "PGCONNECT_TIMEOUT=2 is honoured (held ${held} ms)"
is "$(wc -l <"$SCRATCH/silent.log")" 2 "...one connection each"
run_rb exec "$CONNECT" PG_HUB_URL '{"statement_timeout": 0}'
like "$ERR" "connect.lua:[0-9]+: pg.connect: statement_timeout must be more than 0" "statement_timeout 0 (no limit) is refused, naming the caller's line"

done_testing
