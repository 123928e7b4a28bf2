-- Types, NULLs and parameters, read-only (runs without --write).
local conn = connect()

local function one(sql, ...)
  local rows, err = conn:query(sql, ...)
  if not rows then error(err, 2) end
  return rows[1]
end

-- scalars: every type the module types, and NULL of each
local r = one([[SELECT true AS t, false AS f, 32767::int2 AS i2, (-2147483648)::int4 AS i4,
  9223372036854775807::int8 AS i8max, (-9223372036854775807 - 1)::int8 AS i8min, 4294967295::oid AS o,
  1.5::float4 AS f4, 0.1::float8 AS f8, 'Infinity'::float8 AS inf, '-Infinity'::float8 AS ninf, 'NaN'::float8 AS nan,
  12345678901234567890.000001::numeric AS num, 'NaN'::numeric AS numnan,
  'héllo wörld ✓'::text AS txt, 'v'::varchar(5) AS vc, 'ab'::char(4) AS ch, 'pg_class'::name AS nm,
  '\x00ff41'::bytea AS by, '2024-02-29 12:34:56.789'::timestamp AS ts, '2024-02-29 12:34:56+00'::timestamptz AS tstz,
  '2024-02-29'::date AS d, '1 day 02:00'::interval AS iv, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u]])
eq(r.t, true, "bool true is true")
eq(r.f, false, "bool false is false (not nil)")
eq(r.i2, 32767, "int2 is an integer")
eq(r.i4, -2147483648, "int4 is an integer")
eq(r.i8max, math.maxinteger, "int8 max is math.maxinteger")
eq(r.i8min, math.mininteger, "int8 min is math.mininteger")
eq(r.o, 4294967295, "oid is an integer")
eq(r.f4, 1.5, "float4 is a float")
eq(r.f8, 0.1, "float8 0.1 is the float 0.1")
eq(r.inf, math.huge, "float8 Infinity is math.huge")
eq(r.ninf, -math.huge, "float8 -Infinity is -math.huge")
check(r.nan ~= r.nan, "float8 NaN is NaN")
eq(r.num, "12345678901234567890.000001", "numeric is an exact string")
eq(r.numnan, "NaN", "numeric NaN is a string")
eq(r.txt, "héllo wörld ✓", "text is UTF-8")
eq(r.vc, "v", "varchar is a string")
eq(r.ch, "ab  ", "char(n) keeps its padding")
eq(r.nm, "pg_class", "name is a string")
eq(r.by, "\0\255A", "bytea is the raw bytes")
eq(r.ts, "2024-02-29 12:34:56.789", "timestamp is the server's text")
eq(r.tstz, "2024-02-29 12:34:56+00", "timestamptz is the server's text (UTC session)")
eq(r.d, "2024-02-29", "date is a string")
eq(r.iv, "1 day 02:00:00", "interval is a string")
eq(r.u, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "uuid is a string")

local nulls = conn:query([[SELECT NULL::bool AS b, NULL::int2 AS i2, NULL::int4 AS i4, NULL::int8 AS i8,
  NULL::float4 AS f4, NULL::float8 AS f8, NULL::numeric AS n, NULL::json AS j, NULL::jsonb AS jb, NULL::text AS t,
  NULL::varchar AS v, NULL::name AS nm, NULL::bytea AS by, NULL::timestamptz AS ts, NULL::int4[] AS a, NULL::text[] AS ta]])
eq(#nulls, 1, "a row of NULLs is still a row")
eq(next(nulls[1]), nil, "NULL of every type is nil (no key at all)")
eq(#nulls.columns, 16, "...and rows.columns still lists all 16 columns")

-- json and jsonb
r = one([[SELECT '{"a": [1, 2.5, null, "x"], "b": {"c": true}}'::json AS j, '{"n": null, "big": 9007199254740993}'::jsonb AS jb,
  'null'::jsonb AS jnull, '[]'::json AS empty, '"text"'::jsonb AS str, '42'::json AS num]])
eq(r.j, { a = { 1, 2.5, pg.null, "x" }, b = { c = true } }, "json is decoded (JSON null is pg.null)")
eq(math.type(r.j.a[1]), "integer", "whole JSON numbers are integers")
eq(r.jb.n, pg.null, "jsonb null member is pg.null")
eq(r.jnull, pg.null, "a jsonb document 'null' is pg.null, not nil")
eq(r.empty, {}, "an empty JSON array is an empty table")
eq(r.str, "text", "a JSON string document is a string")
eq(r.num, 42, "a JSON number document is a number")
eq(pg.null, require("runbook.json").null, "pg.null is json.null")

-- arrays
r = one([=[SELECT ARRAY[1, 2, NULL, -3]::int4[] AS i4, ARRAY[9223372036854775807]::int8[] AS i8, ARRAY[1]::int2[] AS i2,
  ARRAY[true, false, NULL]::bool[] AS b, ARRAY[1.5, NULL, 'NaN']::float8[] AS f,
  ARRAY['plain', 'with space', 'comma,here', 'quote"here', 'back\slash', '{brace}', '', 'NULL', NULL, 'héllo']::text[] AS t,
  ARRAY['v1', 'v 2']::varchar[] AS v, '{}'::int4[] AS empty, ARRAY[[1, 2], [3, 4]] AS matrix,
  '[0:1]={7,8}'::int4[] AS lower, ARRAY[1.10, 2]::numeric[] AS n, ARRAY['pg_class']::name[] AS nm,
  ARRAY['2024-01-01'::date] AS dates, ARRAY['{"a":1}'::jsonb] AS js]=])
eq(r.i4, { 1, 2, pg.null, -3 }, "int4[] with a NULL element (pg.null)")
eq(r.i8, { math.maxinteger }, "int8[] of integers")
eq(r.i2, { 1 }, "int2[]")
eq(r.b, { true, false, pg.null }, "bool[]")
eq(r.f[1], 1.5, "float8[] elements are floats")
eq(r.f[2], pg.null, "...NULL is pg.null")
check(r.f[3] ~= r.f[3], "...NaN is NaN")
eq(r.t, { "plain", "with space", "comma,here", 'quote"here', "back\\slash", "{brace}", "", "NULL", pg.null, "héllo" },
  "text[] with spaces, commas, quotes, backslashes, braces, empty, 'NULL' and NULL")
eq(r.v, { "v1", "v 2" }, "varchar[]")
eq(r.empty, {}, "an empty array is an empty table")
eq(r.matrix, { { 1, 2 }, { 3, 4 } }, "a two-dimensional array is nested tables")
eq(r.lower, { 7, 8 }, "an array with lower bound 0 becomes a sequence from 1")
eq(r.n, { "1.10", "2" }, "numeric[] elements are exact strings")
eq(r.nm, { "pg_class" }, "name[]")
eq(r.dates, { "2024-01-01" }, "date[] elements are strings")
eq(r.js, '{"{\\"a\\": 1}"}', "arrays of other types (jsonb[]) stay the server's text")

-- rows and columns
local rows = assert(conn:query("SELECT g AS n, 'r' || g AS name FROM generate_series(1, 3) g ORDER BY g"))
eq(#rows, 3, "three rows")
eq(rows.columns, { "n", "name" }, "rows.columns lists the names in order")
eq(rows[3], { n = 3, name = "r3" }, "rows are keyed by column name")
rows = assert(conn:query("SELECT 1 WHERE false"))
eq(#rows, 0, "no rows is an empty table")
eq(rows.columns, { "?column?" }, "...with its columns")
rows = assert(conn:query("SELECT 1 AS a, 2 AS a"))
eq(rows.columns, { "a", "a" }, "duplicate column names are both in columns")
eq(rows[1].a, 2, "...and the last one wins in the row")

-- parameters
r = one("SELECT $1::text AS t, $2::int AS i, $3::bool AS b, $4::float8 AS f, $5::text AS n, $6::int8 AS big, $7::jsonb AS j",
  "naïve ✓ 'quoted' \"double\"", 42, true, 0.1, nil, math.mininteger, { list = { 1, 2 }, nothing = pg.null })
eq(r.t, "naïve ✓ 'quoted' \"double\"", "$1 text parameter with non-ASCII and quotes")
eq(r.i, 42, "$2 integer parameter")
eq(r.b, true, "$3 boolean parameter")
eq(r.f, 0.1, "$4 float parameter keeps its exact value")
eq(r.n, nil, "$5 nil parameter is NULL")
eq(r.big, math.mininteger, "$6 the smallest int8")
eq(r.j, { list = { 1, 2 }, nothing = pg.null }, "$7 a table parameter is sent as JSON")
r = one("SELECT $1::text IS NULL AS isnull, $2::int AS after_null", pg.null, 7)
eq(r.isnull, true, "pg.null as a parameter is NULL")
eq(r.after_null, 7, "...and the parameters after it keep their places")
r = one("SELECT $1 AS untyped", "plain")
eq(r.untyped, "plain", "an untyped parameter comes back as text")
r = one("SELECT $1::float8 AS big, $2::float8 AS inf", 1e300, math.huge)
eq(r.big, 1e300, "1e300 round-trips")
eq(r.inf, math.huge, "math.huge is sent as Infinity")
local ok, err = pcall(conn.query, conn, "SELECT $1", "nul\0byte")
check(not ok and err:find("NUL bytes", 1, true), "a parameter with a NUL byte raises", tostring(err))
ok, err = pcall(conn.query, conn, "SELECT $1", print)
check(not ok and err:find("cannot pass a function", 1, true), "a function as a parameter raises", tostring(err))
local _, perr, pdetails = conn:query("SELECT $1::int", "x")
like(perr, "invalid input syntax for type integer", "a parameter the server cannot read is a failure")
eq(pdetails and pdetails.sqlstate, "22P02", "...with sqlstate 22P02")
_, perr, pdetails = conn:query("SELECT $1::int, $2::int", 1)
like(perr, "bind message supplies 1 parameters, but prepared statement .* requires 2", "too few parameters is a server error")
_, perr = conn:query("SELECT $1::text", "\xff\xfe")
like(perr, "invalid byte sequence for encoding \"UTF8\"", "invalid UTF-8 in a parameter is refused by the server")

-- values come back after NULL columns and in a second query on the same connection
r = one("SELECT NULL::int AS a, 2 AS b")
eq(r, { b = 2 }, "a NULL column does not shift the others")
done_checks()
