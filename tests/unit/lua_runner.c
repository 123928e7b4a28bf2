/* Runs Lua unit tests with the engine's own modules (privileged require), printing TAP.
 * Usage: lua_runner tests/lua/tap.lua tests/lua/test_x.lua ... */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luastate.h"

int main(int argc, char **argv)
{
    lua_State *L = rb_state_new();
    int failed = 0;
    for (int i = 1; i < argc && !failed; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) {
            printf("not ok - cannot open %s\n", argv[i]);
            failed = 1;
            break;
        }
        char *text = NULL;
        size_t cap = 0, len = 0, n;
        char buf[4096];
        while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
            if (len + n > cap) {
                cap = (len + n) * 2;
                text = realloc(text, cap);
            }
            memcpy(text + len, buf, n);
            len += n;
        }
        fclose(f);
        char name[512];
        snprintf(name, sizeof name, "@%s", argv[i]);
        if (luaL_loadbufferx(L, text ? text : "", len, name, "t") != LUA_OK || rb_pcall(L, 0, 0) != LUA_OK) {
            printf("not ok - %s\n# %s\n", argv[i], lua_tostring(L, -1));
            failed = 1;
        }
        free(text);
    }
    lua_getglobal(L, "done_testing");
    if (!failed && lua_isfunction(L, -1)) {
        if (rb_pcall(L, 0, 1) != LUA_OK) {
            printf("not ok - done_testing failed: %s\n", lua_tostring(L, -1));
            failed = 1;
        } else {
            failed = !lua_toboolean(L, -1);
        }
    } else if (!failed) {
        printf("1..0\n");
    }
    lua_close(L);
    return failed;
}
