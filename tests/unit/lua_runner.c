/* Runs one Lua unit test file with the engine's own modules (privileged require), printing TAP.
 * Usage: lua_runner tests/lua/tap.lua tests/lua/test_x.lua
 * One test file a process: its plan is its own, and an os.exit or a crash in it ends only its run.
 * The file must end with done_testing(), which prints its plan: a file that returns or exits before
 * its end has no plan, and tests/01-units.t fails it. Exit status 0 only when the file ran to its
 * end, called done_testing() and every test passed (tap.lua's tap_passed()). */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luastate.h"

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *text = NULL, buf[4096];
    size_t cap = 0, n;
    *len = 0;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        if (*len + n > cap) {
            cap = (*len + n) * 2;
            char *grown = realloc(text, cap);
            if (!grown) {
                free(text);
                fclose(f);
                return NULL;
            }
            text = grown;
        }
        memcpy(text + *len, buf, n);
        *len += n;
    }
    fclose(f);
    return text ? text : calloc(1, 1);
}

/* Loads and runs one file; on failure prints a TAP failure naming it and returns 0. */
static int run_file(lua_State *L, const char *path)
{
    size_t len;
    char *text = read_file(path, &len);
    if (!text) {
        printf("not ok - cannot read %s\n", path);
        return 0;
    }
    char name[512];
    snprintf(name, sizeof name, "@%s", path);
    int fine = luaL_loadbufferx(L, text, len, name, "t") == LUA_OK && rb_pcall(L, 0, 0) == LUA_OK;
    if (!fine) {
        printf("not ok - %s raised an error\n# %s\n", path, lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    free(text);
    return fine;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: lua_runner TAP.lua TEST.lua\n");
        return 2;
    }
    lua_State *L = rb_state_new();
    int passed = run_file(L, argv[1]) && run_file(L, argv[2]);
    if (passed) {
        lua_getglobal(L, "tap_passed");
        if (!lua_isfunction(L, -1) || rb_pcall(L, 0, 1) != LUA_OK) {
            printf("not ok - %s defines no tap_passed()\n", argv[1]);
            passed = 0;
        } else {
            passed = lua_toboolean(L, -1);
        }
    }
    lua_close(L);
    return passed ? 0 : 1;
}
