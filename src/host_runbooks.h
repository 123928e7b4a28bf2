/* runbook.host's built-in runbooks (host_runbooks.c). */
#ifndef RUNBOOK_HOST_RUNBOOKS_H
#define RUNBOOK_HOST_RUNBOOKS_H
#include <lua.h>

/* embedded_runbooks() -> {name = source text} */
int rb_host_embedded_runbooks(lua_State *L);
/* load_embedded_runbook(name, env) -> the runbook's main chunk, with env as its _ENV. */
int rb_host_load_embedded_runbook(lua_State *L);

#endif
