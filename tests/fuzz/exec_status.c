/* Fuzz target: the Kubernetes exec status parser (lua/runbook/k8s/exec.lua, exit_from_status): the
 * JSON Status the API server sends on channel 3 becomes an exit code (an integer), or a failure
 * (nil, message) for anything that is not an exit. */
#include "fuzz.h"

static const char driver[] =
    "local exec = require 'runbook.k8s.exec'\n"
    "return function(text)\n"
    "  local code, message = exec.exit_from_status(text)\n"
    "  if code ~= nil then\n"
    "    assert(math.type(code) == 'integer', 'an exit code that is not an integer: ' .. tostring(code))\n"
    "  else\n"
    "    assert(type(message) == 'string', 'a failure without a message')\n"
    "  end\n"
    "end\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_lua_init("exec_status", driver);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_lua_run(data, size);
    return 0;
}
