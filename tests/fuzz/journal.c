/* Fuzz target: journals as `runbook resume` reads them (lua/runner/journal.lua, journal.parse, which
 * journal.read uses): JSON lines, a torn last line tolerated, any other damage refused with exit 2. */
#include "fuzz.h"

static const char driver[] =
    "local journal = require 'runner.journal'\n"
    "return function(text)\n"
    "  local state = journal.parse(text, 'fuzz.journal')\n"
    "  assert(type(state.plan) == 'table', 'a journal read without its plan')\n"
    "  assert(state.valid_text:sub(-1) == '\\n', 'valid_text must end a line: resume appends after it')\n"
    "end\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_lua_init("journal", driver);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_lua_run(data, size);
    return 0;
}
