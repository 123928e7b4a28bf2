/* Fuzz target: site policy files (lua/runner/policy.lua, policy.load) for the prune-dormant runbook,
 * then its exclude hook called as the runbook calls it. A policy is Lua code run in a sandbox under an
 * instruction budget: whatever it does, loading must end with the policy or an exit-2 failure, in
 * bounded time (libFuzzer's -timeout catches code that escapes the budget, e.g. inside a C function).
 *
 * The budget here is 1M instructions instead of 50M (load) and 5M (calls): the mechanism is the same,
 * and an input looping to the real budget would cost a third of a second. */
#include "fuzz.h"

static const char driver[] =
    "local host = require 'runbook.host'\n"
    "local loader = require 'runner.loader'\n"
    "local policy = require 'runner.policy'\n"
    "local def = loader.load(loader.find('prune-dormant', {}))\n"
    "local call_with_budget = host.call_with_budget\n"
    "host.call_with_budget = function(n, ...) return call_with_budget(math.min(n, 1000000), ...) end\n"
    "local path = fuzz_scratch_dir .. '/site-policy.lua'\n"
    "return function(text)\n"
    "  fuzz_write_file(path, text)\n"
    "  local loaded = policy.load(path, def)\n"
    "  local hooks = policy.hooks(loaded, def)\n"
    "  if hooks.exclude then\n"
    "    hooks.exclude({ name = 'ana', admin = false, groups = { 'staff' }, servers = {},\n"
    "                    last_activity = '2024-01-31T12:00:00Z' })\n"
    "  end\n"
    "end\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_lua_init("policy", driver);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_lua_run(data, size);
    return 0;
}
