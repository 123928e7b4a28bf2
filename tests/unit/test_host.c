/* C unit tests: the Lua state's sandbox, the phase guard and the host's file primitives. */
#include <lauxlib.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "luastate.h"
#include "phase.h"
#include "tap.h"

/* Runs a chunk in the state's global environment; returns its first result as a string ("" on none). */
static const char *run(lua_State *L, const char *code, int *status)
{
    lua_settop(L, 0);
    *status = luaL_loadstring(L, code);
    if (*status == LUA_OK)
        *status = rb_pcall(L, 0, 1);
    const char *s = lua_tostring(L, -1);
    return s ? s : "";
}

static int call_guard(lua_State *L)
{
    rb_phase_require_mutation(L, "a test mutation");
    lua_pushboolean(L, 1);
    return 1;
}

static int guard_allows(enum rb_phase phase)
{
    lua_State *L = luaL_newstate();
    rb_phase_set(phase);
    lua_pushcfunction(L, call_guard);
    int status = lua_pcall(L, 0, 1, 0);
    lua_close(L);
    rb_phase_set(RB_PHASE_READONLY);
    return status == LUA_OK;
}

int main(void)
{
    lua_State *L = rb_state_new();
    int status;
    const char *r;

    ok(L != NULL, "state created");
    r = run(L, "return tostring(io)", &status);
    ok(status == LUA_OK && strcmp(r, "nil") == 0, "no io library");
    r = run(L, "return tostring(debug)", &status);
    ok(strcmp(r, "nil") == 0, "no debug library");
    r = run(L, "return tostring(os.execute) .. tostring(os.remove) .. tostring(os.exit)", &status);
    ok(strcmp(r, "nilnilnil") == 0, "os has no execute, remove or exit");
    r = run(L, "return type(os.time) .. type(os.date) .. type(os.getenv) .. type(os.clock)", &status);
    ok(strcmp(r, "functionfunctionfunctionfunction") == 0, "os keeps time, date, getenv and clock");
    r = run(L, "return tostring(dofile) .. tostring(loadfile) .. tostring(string.dump)", &status);
    ok(strcmp(r, "nilnilnil") == 0, "no dofile, loadfile or string.dump");
    r = run(L, "return select(2, load('\\27Lua binary'))", &status);
    ok(strstr(r, "attempt to load a binary chunk") != NULL, "load refuses bytecode: %s", r);
    r = run(L, "return tostring(package.loadlib) .. package.path .. package.cpath", &status);
    ok(strcmp(r, "nil") == 0, "no loadlib, empty path and cpath");
    r = run(L, "return select(2, pcall(require, 'socket'))", &status);
    ok(strstr(r, "module 'socket' not found") != NULL, "require finds no outside module");
    r = run(L, "return require('cjson').encode({1,2})", &status);
    ok(strcmp(r, "[1,2]") == 0, "cjson is preloaded");
    r = run(L, "return type(require('runner.cli').main)", &status);
    ok(strcmp(r, "function") == 0, "embedded Lua modules load");
    r = run(L, "return type(require('runbook.host').embedded_runbooks())", &status);
    ok(strcmp(r, "table") == 0, "embedded runbooks are listed");

    ok(!guard_allows(RB_PHASE_PLAN), "mutation refused while planning");
    ok(!guard_allows(RB_PHASE_READONLY), "mutation refused in read-only mode");
    ok(guard_allows(RB_PHASE_APPLY), "mutation allowed while applying");
    ok(guard_allows(RB_PHASE_WRITE), "mutation allowed with exec --write");
    ok(rb_phase_refusals() == 2, "refusals are counted (%d)", rb_phase_refusals());

    char dir[] = "/tmp/runbook-unit.XXXXXX";
    ok(mkdtemp(dir) != NULL, "temp dir");
    char code[1024];
    snprintf(code, sizeof code,
             "local h = require 'runbook.host'\n"
             "assert(h.write_file('%s/f', 'data', tonumber('600', 8)))\n"
             "assert(h.read_file('%s/f') == 'data')\n"
             "local j = assert(h.open_append('%s/j'))\n"
             "assert(j:append('one\\n')) assert(j:append('two\\n')) j:close()\n"
             "assert(not pcall(j.append, j, 'x'))\n"
             "assert(h.mkdirs('%s/a/b/c'))\n"
             "return h.read_file('%s/j') .. h.sha256('abc')",
             dir, dir, dir, dir, dir);
    r = run(L, code, &status);
    ok(status == LUA_OK && strcmp(r, "one\ntwo\nba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0,
       "write_file, read_file, append-only journal file, mkdirs, sha256");
    struct stat st;
    char path[512];
    snprintf(path, sizeof path, "%s/f", dir);
    ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "write_file sets mode 0600");
    snprintf(path, sizeof path, "%s/j", dir);
    ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "journal files are mode 0600");
    r = run(L, "local h = require 'runbook.host' local ok, err = h.call_with_budget(100000, function() while true do end end) "
               "return tostring(ok) .. ' ' .. err",
            &status);
    ok(strstr(r, "false") == r && strstr(r, "instruction budget exhausted"), "instruction budget stops a loop: %s", r);
    r = run(L, "local h = require 'runbook.host' return select(2, h.call_with_budget(100000, function(a, b) return a + b end, 2, 3))",
            &status);
    ok(strcmp(r, "5") == 0, "call_with_budget returns the results");

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
    lua_close(L);
    return done_testing();
}
