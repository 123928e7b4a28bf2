#ifndef RUNBOOK_VERSIONS_H
#define RUNBOOK_VERSIONS_H
#include <lua.h>

/* library_versions() -> {lua=, libcurl=, libpq=, openssl=, libyaml=}, {message...}: a library that
 * cannot be loaded has no version and a message saying why, in the second table. */
int rb_library_versions(lua_State *L);

/* load_libraries() -> true | nil, message: opens libcurl, libpq and libcrypto now. */
int rb_load_libraries(lua_State *L);

#endif
