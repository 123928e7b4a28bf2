-- What a runbook may require: the modules runbook.public names, each the engine's own copy, and nothing
-- else -- not the engine, not runbook.host, not the plumbing the service clients share.
local public = require "runbook.public"
local sandbox = require "runner.sandbox"
local util = require "runbook.util"

-- Runs code as a runbook's chunk would run (its own environment): ok, result | false, message
local function in_runbook(code)
  local chunk = assert(load(code, "=runbook test", "t", sandbox.runbook_env("test")))
  return pcall(chunk)
end

local names = util.sorted_keys(public)
ok(#names > 0, "runbook.public names modules")
for _, name in ipairs(names) do
  is(type(public[name]), "string", name .. ": listed with what it is for")
  local fine, module = in_runbook(string.format("return require(%q)", name))
  ok(fine and module == require(name), name .. ": a runbook may require it, and gets the engine's copy")
end

for _, name in ipairs({ "runbook.host", "runbook.rest", "runner.sandbox", "runbook.public", "runner.engine",
                        "runbook.secrets", "runbook.http_core", "io", "os", "debug", "no.such.module" }) do
  ok(public[name] == nil, name .. ": not in runbook.public")
  local fine, err = in_runbook(string.format("return require(%q)", name))
  ok(not fine and tostring(err):find("module '" .. name .. "' is not available to runbooks", 1, true) ~= nil,
    "  so a runbook cannot require it: " .. tostring(err))
end

done_testing()
