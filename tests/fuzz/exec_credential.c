/* Fuzz target: what an exec credential plugin prints (lua/runbook/k8s/credentials.lua): the input is
 * the plugin's stdout (an ExecCredential), read through Credentials:headers() with the plugin runner
 * replaced by one that returns the input; and the same text as the stderr of a plugin that failed.
 * Nothing is executed. */
#include "fuzz.h"

static const char driver[] =
    "local credentials = require 'runbook.k8s.credentials'\n"
    "local plugin_core = require 'runbook.k8s_plugin_core'\n"
    "local result\n"
    "plugin_core.run = function() return result end\n"
    "local exec = { command = '/usr/local/bin/cloud-login', args = {}, env = {}, provide_cluster_info = true,\n"
    "               api_version = 'client.authentication.k8s.io/v1' }\n"
    "local access = { server = 'https://k8s.example:6443', tls = { ca_pem = 'x' }, cluster_info = {},\n"
    "                 auth = { kind = 'exec', exec = exec } }\n"
    "local function read()\n"
    "  local creds = credentials.new(access)\n"
    "  local headers, err = creds:headers()\n"
    "  if not headers then assert(type(err) == 'string', 'a failure without a message') return end\n"
    "  assert(type(headers) == 'table' and type(creds:tls()) == 'table', 'headers or tls that are not tables')\n"
    "  assert(headers.Authorization == nil or type(headers.Authorization) == 'string')\n"
    "end\n"
    "return function(text)\n"
    "  result = { exit_code = 0, stdout = text, stderr = '' }\n"
    "  read()\n"
    "  result = { exit_code = 1, stdout = '', stderr = text }\n"
    "  read()\n"
    "end\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_lua_init("exec_credential", driver);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_lua_run(data, size);
    return 0;
}
