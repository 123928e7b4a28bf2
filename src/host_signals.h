/* runbook.host's signals (host_signals.c): what asks a run to stop. */
#ifndef RUNBOOK_HOST_SIGNALS_H
#define RUNBOOK_HOST_SIGNALS_H
#include <lua.h>

/* trap_signals(): from now on SIGINT, SIGTERM and SIGHUP ask the run to stop; SIGPIPE is ignored. */
int rb_host_trap_signals(lua_State *L);
/* interrupted() -> what asked the run to stop, or nothing. */
int rb_host_interrupted(lua_State *L);

#endif
