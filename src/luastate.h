/* The Lua state every command runs in: chosen libraries only, embedded modules, no C loading. */
#ifndef RUNBOOK_LUASTATE_H
#define RUNBOOK_LUASTATE_H
#include <lua.h>

#include "embedded.h"

lua_State *rb_state_new(void);
/* Pushes the main chunk of a file compiled into the binary (named "@path", as tracebacks show it);
 * raises a Lua error if it does not load. Bytecode is loaded for these alone: the build made it. */
void rb_push_embedded_chunk(lua_State *L, const struct embedded_file *file);
/* lua_pcall with a message handler that appends a traceback; returns the pcall status. */
int rb_pcall(lua_State *L, int nargs, int nresults);

#endif
