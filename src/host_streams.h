/* runbook.host's files written piece by piece (host_streams.c): the types File (journals) and Output
 * (backups). */
#ifndef RUNBOOK_HOST_STREAMS_H
#define RUNBOOK_HOST_STREAMS_H
#include <lua.h>

/* open_append(path[, how]) -> File | nil, message */
int rb_host_open_append(lua_State *L);
/* create_output(path[, mode]) -> Output | nil, message */
int rb_host_create_output(lua_State *L);
/* Makes the metatables of File and Output; before either is created. */
void rb_open_stream_types(lua_State *L);

#endif
