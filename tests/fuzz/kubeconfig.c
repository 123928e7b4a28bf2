/* Fuzz target: kubeconfig resolution (lua/runbook/k8s/config.lua, config.resolve) on top of the YAML
 * loader: the input is written to a file given as --kubeconfig, then resolved for its current context
 * and for each context it names. The answer is an access table with a URL, or nil and a message.
 * Credentials are not fetched: an exec plugin named by a fuzzed file must never run. */
#include "fuzz.h"

static const char driver[] =
    "local config = require 'runbook.k8s.config'\n"
    "local yaml = require 'runbook.yaml_core'\n"
    "local path = fuzz_scratch_dir .. '/kubeconfig'\n"
    "local function resolve(context)\n"
    "  local access, err = config.resolve({ kubeconfig = path, context = context })\n"
    "  if not access then\n"
    "    assert(type(err) == 'string', 'a failure without a message')\n"
    "    return\n"
    "  end\n"
    "  assert(type(access.server) == 'string' and access.server:match('^https?://'), 'no server URL')\n"
    "  assert(type(access.namespace) == 'string' and type(access.auth) == 'table' and type(access.tls) == 'table',\n"
    "    'an access table without namespace, auth or tls')\n"
    "end\n"
    "return function(text)\n"
    "  fuzz_write_file(path, text)\n"
    "  resolve(nil)\n"
    "  local doc = yaml.parse(text, { strings = true })\n"
    "  if type(doc) == 'table' and type(doc.contexts) == 'table' then\n"
    "    for i, entry in ipairs(doc.contexts) do\n"
    "      if i > 4 then break end\n"
    "      if type(entry) == 'table' and type(entry.name) == 'string' then resolve(entry.name) end\n"
    "    end\n"
    "  end\n"
    "end\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_lua_init("kubeconfig", driver);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_lua_run(data, size);
    return 0;
}
