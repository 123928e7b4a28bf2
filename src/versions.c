/* What `runbook version` reports: the libraries this binary was linked with, as they say at run time. */
#include <curl/curl.h>
#include <lauxlib.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <yaml.h>

#include "versions.h"

int rb_library_versions(lua_State *L)
{
    lua_newtable(L);
    lua_pushliteral(L, LUA_RELEASE);
    lua_setfield(L, -2, "lua");
    lua_pushstring(L, curl_version_info(CURLVERSION_NOW)->version);
    lua_setfield(L, -2, "libcurl");
    int pq = PQlibVersion();
    lua_pushfstring(L, "%d.%d", pq / 10000, pq % 10000);
    lua_setfield(L, -2, "libpq");
    lua_pushstring(L, OpenSSL_version(OPENSSL_VERSION));
    lua_setfield(L, -2, "openssl");
    lua_pushstring(L, yaml_get_version_string());
    lua_setfield(L, -2, "libyaml");
    return 1;
}
