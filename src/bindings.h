/* The C modules the host preloads. Each binding owns one door to the outside world. */
#ifndef RUNBOOK_BINDINGS_H
#define RUNBOOK_BINDINGS_H
#include <lua.h>

struct rb_binding {
    const char *name;
    lua_CFunction open;
};

/* Ends with an entry whose name is NULL. */
extern const struct rb_binding rb_bindings[];

int luaopen_runbook_host(lua_State *L);      /* host.c, host_*.c: files, terminal, clocks, signals, phase (engine) */
int luaopen_runbook_http_core(lua_State *L); /* http.c: libcurl multi transfers */
int luaopen_runbook_pg_core(lua_State *L);   /* pg.c, pg_*.c: libpq, the read-only guard, COPY */
int luaopen_runbook_yaml_core(lua_State *L); /* yaml.c: YAML text to Lua values (kubeconfig) */
int luaopen_runbook_ws_core(lua_State *L);   /* ws.c: WebSocket client for Kubernetes exec */
int luaopen_runbook_k8s_plugin_core(lua_State *L); /* k8s_plugin.c: kubeconfig exec credential plugins */
int luaopen_runbook_lock_core(lua_State *L); /* lock.c: one run at a time per target (flock) */

#endif
