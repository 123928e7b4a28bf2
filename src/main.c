/* runbook: carries out JupyterHub maintenance procedures with a rehearsal, a confirmation and a journal.
 * The command line and the engine live in Lua (lua/runbook/cli.lua); this file only builds the state
 * and turns what the CLI returns into the process's exit status. */
#include <lauxlib.h>
#include <stdio.h>

#include "luastate.h"

int main(int argc, char **argv)
{
    lua_State *L = rb_state_new();
    if (L == NULL) {
        fprintf(stderr, "runbook: cannot create the Lua state (out of memory)\n");
        return 1;
    }
    int status = 1;
    lua_getglobal(L, "require");
    lua_pushliteral(L, "runbook.cli");
    if (rb_pcall(L, 1, 1) == LUA_OK) {
        lua_getfield(L, -1, "main");
        lua_createtable(L, argc, 0);
        for (int i = 1; i < argc; i++) {
            lua_pushstring(L, argv[i]);
            lua_rawseti(L, -2, i);
        }
        if (rb_pcall(L, 1, 1) == LUA_OK) {
            status = (int)lua_tointeger(L, -1);
            lua_pop(L, 1);
        } else {
            fprintf(stderr, "runbook: internal error: %s\n", lua_tostring(L, -1));
            lua_pop(L, 1);
        }
    } else {
        fprintf(stderr, "runbook: internal error: %s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    fflush(stdout);
    lua_close(L);
    return status;
}
