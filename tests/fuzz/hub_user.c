/* Fuzz target: the hub's JSON user model as runbooks read it (lua/runbook/hub.lua): the input is what
 * the hub answers to GET /users/NAME (one model) or GET /users (a page of models). Each model is read
 * with server_state, can_see_servers, last_activity and created; the page goes through the real
 * client:users() iterator, with the HTTP layer replaced by the input (one page, then an empty one).
 * The iterator's documented failure is an error without a position ("did not return a paginated
 * answer"); an error raised at a line of our code ("attempt to index ...") is a bug. */
#include "fuzz.h"

static const char driver[] =
    "local hub = require 'runbook.hub'\n"
    "local http = require 'runbook.http'\n"
    "local json = require 'runbook.json'\n"
    "local answer  -- the body the fake hub gives to the next GET /users\n"
    "local function respond(opts)\n"
    "  if opts.url:match('/hub/api/?$') then return { status = 200, body = '{\"version\": \"3.0.0\"}', headers = {} } end\n"
    "  local body = answer or '{\"items\": [], \"_pagination\": {\"offset\": 0, \"limit\": 200, \"total\": 0, \"next\": null}}'\n"
    "  answer = nil\n"
    "  return { status = 200, body = body, headers = {} }\n"
    "end\n"
    "http.request = respond\n"
    "http.start = function(opts) local resp = respond(opts) return { wait = function() return resp end } end\n"
    "local host = require 'runbook.host'\n"
    "fuzz_write_file(fuzz_scratch_dir .. '/token', 'fuzz-token')\n"
    "local client = assert(hub.connect({ url = 'http://hub.invalid', token_file = fuzz_scratch_dir .. '/token' }))\n"
    "local function read(user)\n"
    "  if type(user) ~= 'table' then return end  -- a model is an object; other values are not models\n"
    "  local state = hub.server_state(user)\n"
    "  assert(state == nil or type(state) == 'string', 'server_state gave neither nil nor a reason')\n"
    "  assert(type(hub.can_see_servers(user)) == 'boolean')\n"
    "  for _, f in ipairs({ hub.last_activity, hub.created }) do\n"
    "    local t, err = f(user)\n"
    "    assert(t == nil or (type(t) == 'number' and t == t), 'a time that is not a number')\n"
    "    assert(t ~= nil or err == nil or type(err) == 'string')\n"
    "  end\n"
    "end\n"
    "local function list_users()\n"
    "  local n = 0\n"
    "  for user in client:users() do\n"
    "    read(user)\n"
    "    n = n + 1\n"
    "  end\n"
    "end\n"
    "return function(text)\n"
    "  read(json.decode(text))\n"
    "  answer = text\n"
    "  local ok, err = xpcall(list_users, host.traceback)\n"
    "  if not ok and (type(err) ~= 'string' or err:match('^[^\\n]-%.lua:%d+:')) then error(err, 0) end\n"
    "end\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_lua_init("hub_user", driver);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_lua_run(data, size);
    return 0;
}
