-- yaml_core: YAML text to Lua values (kubeconfig files), and the base64 of kubeconfig *-data fields.
local yaml = require "runbook.yaml_core"
local base64 = require "runbook.k8s.base64"

local doc = assert(yaml.parse([[
apiVersion: v1
n: 42
neg: -3
f: 2.5
e: 1e3
hex: 0x1F
oct: 0o17
yes_plain: yes
t: true
nothing: ~
empty:
quoted: "42"
single: 'true'
list: [a, "b", 3]
block: |
  line one
  line two
base: &base {k: v, shared: 1}
derived:
  <<: *base
  shared: 2
]]))
is(doc.n, 42, "integers are integers")
is(math.type(doc.n), "integer", "  of Lua's integer type")
is(doc.neg, -3, "negative integers")
is(doc.f, 2.5, "floats")
is(doc.e, 1000.0, "exponents")
is(doc.hex, 31, "0x hexadecimal (YAML 1.2)")
is(doc.oct, 15, "0o octal (YAML 1.2)")
is(doc.yes_plain, "yes", "yes stays text (YAML 1.2 core schema)")
is(doc.t, true, "true")
is(doc.nothing, yaml.null, "~ is null")
is(doc.empty, yaml.null, "an empty value is null")
is(doc.quoted, "42", "quoted scalars stay text")
is(doc.single, "true", "single-quoted too")
is(#doc.list, 3, "flow sequences")
is(doc.list[3], 3, "  typed items")
is(doc.block, "line one\nline two\n", "block scalars keep their newlines")
is(doc.derived.k, "v", "merge keys (<<) bring the anchored mapping")
is(doc.derived.shared, 2, "  without overriding the mapping's own keys")
is(doc.base.k, "v", "anchors keep their value")

local strings = assert(yaml.parse("namespace: 0123\nport: 8080\nflag: true\nnone: null\n", { strings = true }))
is(strings.namespace, "0123", "strings mode: number-like text is kept exactly")
is(strings.flag, "true", "strings mode: booleans stay text")
is(strings.none, yaml.null, "strings mode: null is still null")

local v, err = yaml.parse("a: [1, 2\nb: c\n")
ok(v == nil and err:match("^%d+:%d+: "), "syntax errors give LINE:COLUMN: " .. tostring(err))
v, err = yaml.parse("a: *nowhere\n")
like(err, "1:4: unknown alias %*nowhere", "unknown aliases are errors with a position")
v, err = yaml.parse("&loop [ *loop ]")
like(err, "unknown alias", "an alias inside its own anchor is refused (no cycles)")
v, err = yaml.parse("--- a\n--- b\n")
like(err, "more than one YAML document", "several documents are refused")
is(yaml.parse(""), yaml.null, "an empty text is null")
v, err = yaml.parse(string.rep("[", 300) .. string.rep("]", 300))
like(err, "nested too deeply", "deep nesting is refused, not a C stack overflow")
v, err = yaml.parse("{[1]: x}")
like(err, "mapping keys must be scalars", "complex keys are refused")
local laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
for i = 1, 20 do laughs = laughs .. string.format("l%d: &l%d [*%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s]\n",
  i, i, i == 1 and "a" or "l" .. (i - 1), i == 1 and "a" or "l" .. (i - 1), i == 1 and "a" or "l" .. (i - 1),
  i == 1 and "a" or "l" .. (i - 1), i == 1 and "a" or "l" .. (i - 1), i == 1 and "a" or "l" .. (i - 1),
  i == 1 and "a" or "l" .. (i - 1), i == 1 and "a" or "l" .. (i - 1)) end
local bomb = assert(yaml.parse(laughs))
ok(bomb.l20[1] == bomb.l19, "aliases share the anchored value (a billion laughs costs nothing)")
v, err = yaml.parse("\0\1\2")
ok(v == nil and type(err) == "string", "binary garbage is an error, not a crash")

is(base64.decode("aGVsbG8gd29ybGQ="), "hello world", "base64 decode")
is(base64.decode("aGVs\nbG8="), "hello", "base64 decode ignores line breaks")
is(base64.encode("hello world"), "aGVsbG8gd29ybGQ=", "base64 encode")
local all = {}
for i = 0, 255 do all[#all + 1] = string.char(i) end
all = table.concat(all)
is(base64.decode(base64.encode(all)), all, "base64 round trip of every byte")
v, err = base64.decode("a$b=")
like(err, "not base64", "bad base64 is an error")
done_testing()
