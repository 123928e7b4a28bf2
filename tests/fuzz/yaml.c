/* Fuzz target: the YAML loader (src/yaml.c, rb_yaml_load), both ways the engine reads YAML: typed
 * (the core schema) and strings-only (kubeconfig). It must push exactly one value on success and
 * nothing on failure, with a message that names a place; and the values it makes must be plain data
 * (no table that contains itself). */
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "yaml_load.h"

static lua_State *L;
static int acyclic_ref;

static void check(int condition, const char *what, const char *detail)
{
    if (!condition) {
        fprintf(stderr, "yaml: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
        abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    L = luaL_newstate();
    luaL_openlibs(L);
    /* Values must be plain data: a table that contains itself would send every consumer into a loop.
     * Aliases share tables (a DAG), so the walk marks finished tables instead of re-walking them. */
    const char *walker =
        "return function(root)\n"
        "  local state = {}\n"
        "  local function visit(v)\n"
        "    if type(v) ~= 'table' or state[v] == 'done' then return end\n"
        "    if state[v] == 'open' then error('a value contains itself') end\n"
        "    state[v] = 'open'\n"
        "    for k, x in pairs(v) do visit(k) visit(x) end\n"
        "    state[v] = 'done'\n"
        "  end\n"
        "  visit(root)\n"
        "end\n";
    int ok = luaL_loadstring(L, walker) == LUA_OK && lua_pcall(L, 0, 1, 0) == LUA_OK;
    check(ok, "cannot load the cycle check", lua_tostring(L, -1));
    acyclic_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int strings = 0; strings <= 1; strings++) {
        char error[400];
        memset(error, 'x', sizeof error);
        int top = lua_gettop(L);
        int status = rb_yaml_load(L, (const char *)data, size, strings, error, sizeof error);
        if (status == 0) {
            check(lua_gettop(L) == top + 1, "success did not push exactly one value", NULL);
            lua_rawgeti(L, LUA_REGISTRYINDEX, acyclic_ref);
            lua_insert(L, -2);
            check(lua_pcall(L, 1, 0, 0) == LUA_OK, "the value is not plain data", lua_tostring(L, -1));
        } else {
            check(status == -1, "status is neither 0 nor -1", NULL);
            check(lua_gettop(L) == top, "failure left values on the stack", NULL);
            check(memchr(error, '\0', sizeof error) != NULL && error[0] != '\0', "failure without a message", NULL);
        }
        lua_settop(L, top);
    }
    lua_gc(L, LUA_GCCOLLECT); /* balance allocations: libFuzzer scans for leaks after an input that is not */
    return 0;
}
