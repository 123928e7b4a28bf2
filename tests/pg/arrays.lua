-- The array literal parser on its own: edge cases, malformed input, and random input that must never
-- crash it (it is a fuzz target; under `make check-asan` this runs with the sanitizers).
local pg = require "runbook.pg"
local N = pg.null
eq(pg.parse_array("{}"), {}, "empty")
eq(pg.parse_array("{1,2,3}", "integer"), { 1, 2, 3 }, "integers")
eq(pg.parse_array("  { 1 , -2 ,NULL }  ", "integer"), { 1, -2, N }, "spaces around elements, NULL")
eq(pg.parse_array("{null,NuLl,\"NULL\"}"), { N, N, "NULL" }, "NULL in any case; quoted \"NULL\" is text")
eq(pg.parse_array([[{"a b","c,d","e\"f","g\\h",\N\U\L\L,  x y  ,""}]]), { "a b", "c,d", 'e"f', "g\\h", "NULL", "x y", "" },
  "quotes, escapes (an escaped NULL is text), inner spaces kept, outer dropped, empty quoted")
eq(pg.parse_array("{{1,2},{3,4},{5,6}}", "integer"), { { 1, 2 }, { 3, 4 }, { 5, 6 } }, "two dimensions")
eq(pg.parse_array("[0:1][1:2]={{a,b},{c,d}}"), { { "a", "b" }, { "c", "d" } }, "dimension decoration")
eq(pg.parse_array("[-3:-2]={x,y}"), { "x", "y" }, "negative bounds")
eq(pg.parse_array("{t,f,true,false}", "boolean"), { true, false, true, false }, "booleans")
eq(pg.parse_array("{1.5,-0.25,1e3,Infinity,-Infinity}", "float"), { 1.5, -0.25, 1000.0, math.huge, -math.huge }, "floats")
eq(pg.parse_array("{9223372036854775807,-9223372036854775808}", "integer"), { math.maxinteger, math.mininteger }, "int8 limits")
eq(pg.parse_array("{{{{{{1}}}}}}", "integer"), { { { { { { 1 } } } } } }, "six dimensions")
local malformed = {
  "", "1,2", "{", "}", "{1,2", "{1,,2}", "{,}", "{1,}", "{,1}", '{"a}', '{a"b}', "{a{b}", "{1} x", "{{1}",
  "{1}}", "[1:2]{1,2}", "[1:2=]{1}", "[]={}", "{\\", '{"\\', "{{{{{{{1}}}}}}}", "[1][2][3][4][5][6][7]={1}",
  "{ }x", "{\"a\"b}",
}
for _, text in ipairs(malformed) do
  local value, err = pg.parse_array(text)
  check(value == nil and type(err) == "string" and err:find("^malformed array literal: .+ at position %d+$"),
    string.format("malformed %q is refused with a message", text), tostring(err))
end
local value, err = pg.parse_array("{1,x}", "integer")
like(err, "not an integer at position", "a non-integer element of an integer array")
value, err = pg.parse_array("{99999999999999999999}", "integer")
like(err, "not an integer", "an integer element out of range")
value, err = pg.parse_array("{maybe}", "boolean")
like(err, "not a boolean", "a non-boolean element")
check(not pcall(pg.parse_array, "{}", "decimal"), "an unknown element kind raises")

-- random input from the characters that matter: never a crash, always a table or nil, message
local alphabet = { "{", "}", ",", '"', "\\", " ", "N", "U", "L", "1", "-", "a", "[", "]", ":", "=", "\t", "é" }
local seed = tonumber(os.getenv("PG_FUZZ_SEED") or "") or 12345
math.randomseed(seed)
local parsed, refused = 0, 0
for _ = 1, 20000 do
  local parts = {}
  for i = 1, math.random(0, 24) do parts[i] = alphabet[math.random(#alphabet)] end
  local text = table.concat(parts)
  for _, kind in ipairs({ "text", "integer" }) do
    local v, e = pg.parse_array(text, kind)
    if v ~= nil then parsed = parsed + 1 elseif type(e) == "string" then refused = refused + 1 end
  end
end
eq(parsed + refused, 40000, string.format("40,000 random literals: every one parsed or refused (seed %d, %d parsed)", seed, parsed))
done_checks()
