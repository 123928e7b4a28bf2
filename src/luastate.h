/* The Lua state every command runs in: chosen libraries only, embedded modules, no C loading. */
#ifndef RUNBOOK_LUASTATE_H
#define RUNBOOK_LUASTATE_H
#include <lua.h>

lua_State *rb_state_new(void);
/* lua_pcall with a message handler that appends a traceback; returns the pcall status. */
int rb_pcall(lua_State *L, int nargs, int nresults);

#endif
