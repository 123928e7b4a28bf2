#ifndef RUNBOOK_VERSIONS_H
#define RUNBOOK_VERSIONS_H
#include <lua.h>

/* Pushes {lua=, libcurl=, libpq=, openssl=, libyaml=}. */
int rb_library_versions(lua_State *L);

#endif
