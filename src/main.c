/* runbook: carries out JupyterHub maintenance procedures with a rehearsal, a confirmation and a journal.
 * The command line and the engine live in Lua (lua/runner/cli.lua); this file only builds the state
 * and turns what the CLI returns into the process's exit status. */
#include <lauxlib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/resource.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "luastate.h"

/* runbook holds tokens and passwords in memory: like ssh-agent, it makes no core dump and cannot be
 * attached to with ptrace by other processes of its user, unless RUNBOOK_ALLOW_CORE=1 asks for both
 * (to debug a crash). */
static void protect_memory(void)
{
    const char *allow = getenv("RUNBOOK_ALLOW_CORE");
    if (allow != NULL && strcmp(allow, "1") == 0)
        return;
    struct rlimit none = {0, 0};
    if (setrlimit(RLIMIT_CORE, &none) != 0)
        fprintf(stderr, "runbook: warning: cannot disable core dumps\n");
#ifdef __linux__
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        fprintf(stderr, "runbook: warning: cannot disable core dumps and ptrace attach (PR_SET_DUMPABLE)\n");
#endif
}

int main(int argc, char **argv)
{
    protect_memory();
    /* A reader that goes away (`runbook apply plan.json --yes | head`) must not kill an apply between
     * two journal lines: writes then fail with EPIPE, which stops the run like an interrupt. */
    signal(SIGPIPE, SIG_IGN);
    lua_State *L = rb_state_new();
    if (L == NULL) {
        fprintf(stderr, "runbook: cannot create the Lua state (out of memory)\n");
        return 1;
    }
    int status = 1;
    lua_getglobal(L, "require");
    lua_pushliteral(L, "runner.cli");
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
