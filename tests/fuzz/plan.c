/* Fuzz target: plan files as `runbook apply` reads them (lua/runner/plan.lua, plan.parse), then shows
 * them (render.plan) and digests them for the journal. A mutated plan nearly always fails its
 * checksum, so each input is also tried with its checksum made to match: the checks behind it (the
 * fields apply relies on) see the mutations too. */
#include "fuzz.h"

static const char driver[] =
    "local host = require 'runbook.host'\n"
    "local plan = require 'runner.plan'\n"
    "local render = require 'runner.render'\n"
    "local util = require 'runbook.util'\n"
    "-- the rendered plan goes nowhere; host.write keeps its argument check\n"
    "host.write = function(_, s) assert(type(s) == 'string' or type(s) == 'number', 'host.write: not text') end\n"
    "local CHECKSUM_LINE = '\\n  \"checksum\": \"sha256:'\n"
    "local function load_and_show(text)\n"
    "  local doc = plan.parse(text, 'fuzz.plan')\n"
    "  render.plan(doc, { verbose = 0 })\n"
    "  plan.digest(doc)\n"
    "end\n"
    "local function accepted(text)  -- a util.fail failure (exit 2) is an answer; any other error is a bug\n"
    "  local ok, err = xpcall(load_and_show, host.traceback, text)\n"
    "  if not ok and not util.is_failure(err) then error(err, 0) end\n"
    "end\n"
    "return function(text)\n"
    "  accepted(text)\n"
    "  local zeroed, n = text:gsub(CHECKSUM_LINE .. '%x+\"', CHECKSUM_LINE .. string.rep('0', 64) .. '\"', 1)\n"
    "  if n == 1 then\n"
    "    accepted((zeroed:gsub(CHECKSUM_LINE .. '%x+\"', CHECKSUM_LINE .. host.sha256(zeroed) .. '\"', 1)))\n"
    "  end\n"
    "end\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_lua_init("plan", driver);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_lua_run(data, size);
    return 0;
}
