/* The libraries runbook uses, as they say at run time: their versions for `runbook version`, and
 * loading the ones opened on first use (dynlib.h) before an apply starts. */
#include <curl/curl.h>
#include <lauxlib.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <yaml.h>

#include "dynlib.h"
#include "versions.h"

/* Sets versions[field] to what version_of() says if lib loads; otherwise appends lib's error to
 * the problems list at index problems_index. */
static void lazy_version(lua_State *L, struct rb_dynlib *lib, const char *field, int problems_index,
                         void (*version_of)(lua_State *L))
{
    if (rb_dynlib_load(lib) == 0) {
        version_of(L);
        lua_setfield(L, -2, field);
    } else {
        lua_pushstring(L, lib->error);
        lua_rawseti(L, problems_index, (lua_Integer)lua_rawlen(L, problems_index) + 1);
    }
}

static void libcurl_version(lua_State *L)
{
    lua_pushstring(L, curl_version_info(CURLVERSION_NOW)->version);
}

static void libpq_version(lua_State *L)
{
    int pq = PQlibVersion();
    lua_pushfstring(L, "%d.%d", pq / 10000, pq % 10000);
}

static void openssl_version(lua_State *L)
{
    lua_pushstring(L, OpenSSL_version(OPENSSL_VERSION));
}

int rb_library_versions(lua_State *L)
{
    lua_newtable(L); /* problems */
    int problems = lua_gettop(L);
    lua_newtable(L);
    lua_pushliteral(L, LUA_RELEASE);
    lua_setfield(L, -2, "lua");
    lazy_version(L, &rb_libcurl, "libcurl", problems, libcurl_version);
    lazy_version(L, &rb_libpq, "libpq", problems, libpq_version);
    lazy_version(L, &rb_libcrypto, "openssl", problems, openssl_version);
    lua_pushstring(L, yaml_get_version_string());
    lua_setfield(L, -2, "libyaml");
    lua_insert(L, problems); /* versions, problems */
    return 2;
}

int rb_load_libraries(lua_State *L)
{
    struct rb_dynlib *libraries[] = { &rb_libcurl, &rb_libpq, &rb_libcrypto };
    for (size_t i = 0; i < sizeof libraries / sizeof libraries[0]; i++) {
        if (rb_dynlib_load(libraries[i]) != 0) {
            lua_pushnil(L);
            lua_pushstring(L, libraries[i]->error);
            return 2;
        }
    }
    lua_pushboolean(L, 1);
    return 1;
}
