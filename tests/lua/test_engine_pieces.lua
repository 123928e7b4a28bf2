-- Unit tests of the engine's Lua pieces: JSON, times, parameters, plan encoding, CLI parsing.
local json = require "runbook.json"
local util = require "runbook.util"
local params = require "runner.params"
local plan = require "runner.plan"
local cli = require "runner.cli"

-- json
is(json.encode({ b = 1, a = { 1, 2, "x" }, c = json.null }), '{"a":[1,2,"x"],"b":1,"c":null}', "json keys are sorted")
is(json.encode({ s = "quote\" back\\ nl\n tab\t \1" }), '{"s":"quote\\" back\\\\ nl\\n tab\\t \\u0001"}', "json escapes")
is(json.encode(json.array()), "[]", "json.array encodes empty as []")
is(json.encode({}), "{}", "empty table encodes as {}")
is(json.encode(1.5), "1.5", "floats")
is(json.encode(3.0), "3", "whole floats print as integers")
is(json.encode("josé"), '"josé"', "UTF-8 passes through")
raises(function() json.encode({ f = print }) end, "value.f: a function is not data", "functions are refused with their path")
raises(function() json.encode(0 / 0) end, "not a JSON number", "NaN refused")
local cyclic = {}
cyclic.self = cyclic
raises(function() json.encode(cyclic) end, "refers to itself", "cycles refused")
local doc = json.decode('{"days": 90, "ratio": 0.5, "list": [1, 2], "n": null}')
is(math.type(doc.days), "integer", "decode: whole numbers are integers")
is(doc.ratio, 0.5, "decode: fractions stay floats")
is(doc.n, json.null, "decode: null is json.null")
local bad, err = json.decode('{"a": ')
ok(bad == nil and err:find("character") ~= nil, "decode error names the position: " .. tostring(err))
is(json.decode(json.encode({ x = "é\n" })).x, "é\n", "round trip")

-- times
is(util.parse_time("1970-01-01T00:00:00Z"), 0, "epoch")
is(util.parse_time("2024-02-29T12:30:15.500000Z"), 1709209815.5, "leap day with fraction")
is(util.parse_time("2024-02-29T14:30:15+02:00"), 1709209815, "offsets")
is(util.parse_time("2024-02-29T12:30:15"), 1709209815, "no zone means UTC")
ok(util.parse_time("yesterday") == nil, "nonsense is nil")
is(util.format_time(1709209815), "2024-02-29T12:30:15Z", "format_time")
is(util.human_duration(412 * 86400 + 5), "412 days", "days")
is(util.human_duration(3 * 3600), "3 hours", "hours")
is(util.url_escape("ana.maria@example.edu"), "ana.maria%40example.edu", "url_escape @")
is(util.url_escape("user+tag"), "user%2Btag", "url_escape +")
is(util.url_escape("josé"), "jos%C3%A9", "url_escape UTF-8")
is(util.redact_url("postgresql://hub:s3cret@db:5432/x"), "postgresql://hub:***@db:5432/x", "redact_url hides passwords")
is(util.query({ b = "x y", a = { "1", "2" } }), "a=1&a=2&b=x%20y", "query strings")

-- parameters
local decl = { { name = "days", type = "integer", default = 90 }, { name = "names", type = "list" },
               { name = "on", type = "boolean", default = false }, { name = "dir", type = "path" } }
ok(params.check_declarations(decl) == nil, "declarations are valid")
local given = params.parse_assignments(decl, { "days=30", "names=a, b,,c", "on=yes", "dir=rel/x" }, "t")
is(given.days, 30, "integer parameter")
is(table.concat(given.names, "|"), "a|b|c", "list parameter")
is(given.on, true, "boolean parameter")
local values, sources = params.resolve(decl, given, { days = 7 }, "t", { cwd = "/base" })
is(values.days, 30, "command line beats policy")
is(sources.days, "command line", "source recorded")
is(values.dir, "/base/rel/x", "paths become absolute")
values, sources = params.resolve(decl, {}, { days = 7 }, "t", {})
is(values.days, 7, "policy beats default")
raises(function() params.resolve(decl, {}, { days = 7.5 }, "t", {}) end, "whole number", "policy values are type-checked")
raises(function() params.parse_assignments(decl, { "days" }, "t") end, "write %-p key=value", "assignment without =")
ok(params.check_declarations({ { name = "x", type = "colour" } }):find("unknown type") ~= nil, "unknown parameter type")

-- plan encoding: any change to the bytes is detected
local d = { format = plan.FORMAT, runbook = "t", runbook_source = "built-in", runbook_sha256 = string.rep("a", 64),
            created = "2026-01-01T00:00:00Z", created_unix = 1, target = "x", params = {},
            actions = json.array({ { id = 1, kind = "k", target = "t1", reason = "r", args = { checksum = "sha256:ff" } } }) }
local text = plan.encode(d)
local back = plan.parse(text, "p")
is(back.actions[1].target, "t1", "plan round trip")
is(back.actions[1].args.checksum, "sha256:ff", "an action's own 'checksum' key is data, not the plan's checksum")
raises(function() plan.parse(text:gsub('"t1"', '"t2"'), "p") end, "edited or damaged", "edits are refused")
raises(function() plan.parse(text:sub(1, 100), "p") end, "truncated", "truncation is refused")

-- command line
local command, pos, opts = cli.parse({ "-vv", "plan", "x", "-p", "a=1", "-pb=2", "--output=json", "-n", "ns" })
is(command, "plan", "command")
is(pos[1], "x", "positional")
is(opts.verbose, 2, "-vv counts")
is(table.concat(opts.param, ","), "a=1,b=2", "-p repeats, attached or not")
is(opts.output, "json", "--opt=value")
is(opts.namespace, "ns", "-n value")
command, pos = cli.parse({ "exec", "s.lua", "--flag", "x" })
is(#pos, 3, "exec passes the arguments after the script to it")
raises(function() cli.parse({ "exec", "s.lua", "--flag", "-p" }) end, "option %-p comes after the script",
  "runbook's own options after the script are refused, not passed on in silence")
command, pos = cli.parse({ "exec", "s.lua", "--flag", "--", "-p", "--write" })
is(table.concat(pos, " ", 2), "--flag -p --write", "after -- they are the script's")

-- empty arrays survive a decode/encode round trip (objects read from an API and sent back)
is(json.encode(json.decode('{"a":[],"b":{},"c":[ ],"d":"[]","e":["x",[]],"f":"a\\"[]"}')),
   '{"a":[],"b":{},"c":[],"d":"[]","e":["x",[]],"f":"a\\"[]"}', "empty arrays and objects survive a round trip; [] inside strings is text")
local bad_text, bad_err = json.decode('{"a": [')
ok(bad_text == nil and bad_err ~= nil, "a truncated document is still an error")
is(#json.decode('[[], [1]]')[1], 0, "an empty array is an empty table to Lua")

-- small words: counts, suggestions, plain replacement
is(util.count(1, "day"), "1 day", "1 day, not 1 days")
is(util.count(2, "day"), "2 days", "2 days")
is(util.count(0, "page"), "0 pages", "0 pages")
is(util.count(3, "match", "matches"), "3 matches", "an irregular plural")
is(util.suggest("plna", { "list", "plan", "apply" }), " (did you mean 'plan'?)", "a swap of neighbours is one typo")
is(util.suggest("prefx", { "url", "prefix", "max_actions" }), " (did you mean 'prefix'?)", "a missing letter")
is(util.suggest("colour", { "url", "prefix", "max_actions" }), "", "nothing close: no suggestion")
is(util.suggest("ab", { "abc", "xyz" }), " (did you mean 'abc'?)", "short words: one edit")
is(util.suggest("resume", { "resume" }), " (did you mean 'resume'?)", "the same word (case aside) is found")
is(util.replace_plain("a.b.a.b", "a.b", "*"), "*.*", "plain replacement: no patterns")
is(util.replace_plain("x%1y", "%1", "%%"), "x%%y", "pattern characters in both")
done_testing()
