/* Builds the Lua state. The sandbox is made by construction: only the libraries runbooks need are
 * opened, `os` keeps its harmless functions, `load` accepts text only, and `require` finds embedded
 * modules and preloaded C modules, never files or shared objects. */
#include "luastate.h"

#include <lauxlib.h>
#include <lualib.h>
#include <string.h>

#include "bindings.h"

int luaopen_cjson(lua_State *L);

static int traceback_handler(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            return 1;
        if (lua_istable(L, 1)) /* structured errors (tables) travel unchanged */
            return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

int rb_pcall(lua_State *L, int nargs, int nresults)
{
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, traceback_handler);
    lua_insert(L, base);
    int status = lua_pcall(L, nargs, nresults, base);
    lua_remove(L, base);
    return status;
}

/* The files are bytecode made at build time by embedgen with this same liblua ("b" is allowed for
 * them alone: everything loaded at run time is text). */
void rb_push_embedded_chunk(lua_State *L, const struct embedded_file *file)
{
    lua_pushfstring(L, "@%s", file->path);
    if (luaL_loadbufferx(L, file->bytecode, (size_t)file->bytecode_size, lua_tostring(L, -1), "b") != LUA_OK)
        lua_error(L);
    lua_remove(L, -2); /* the chunk name */
}

/* package.searchers entry: finds a module among the Lua files compiled into the binary. */
static int search_embedded(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    for (const struct embedded_file *f = embedded_modules; f->name; f++) {
        if (strcmp(f->name, name) != 0)
            continue;
        rb_push_embedded_chunk(L, f);
        lua_pushstring(L, f->path);
        return 2;
    }
    lua_pushfstring(L, "no embedded module '%s'", name);
    return 1;
}

/* `load` restricted to text chunks: precompiled bytecode can crash the interpreter. */
static int load_text_only(lua_State *L)
{
    lua_settop(L, 4);
    lua_pushliteral(L, "t");
    lua_replace(L, 3);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, 4, LUA_MULTRET);
    return lua_gettop(L);
}

static void open_library(lua_State *L, const char *name, lua_CFunction open)
{
    luaL_requiref(L, name, open, 1);
    lua_pop(L, 1);
}

static void restrict_base(lua_State *L)
{
    static const char *const removed[] = {"dofile", "loadfile", NULL};
    for (const char *const *n = removed; *n; n++) {
        lua_pushnil(L);
        lua_setglobal(L, *n);
    }
    lua_getglobal(L, "load");
    lua_pushcclosure(L, load_text_only, 1);
    lua_setglobal(L, "load");
    lua_getglobal(L, "string");
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);
}

/* os with only clocks, dates and the environment: no execute, remove, rename, exit, tmpname. */
static void open_restricted_os(lua_State *L)
{
    static const char *const kept[] = {"time", "date", "getenv", "clock", "difftime", NULL};
    luaopen_os(L);
    lua_newtable(L);
    for (const char *const *n = kept; *n; n++) {
        lua_getfield(L, -2, *n);
        lua_setfield(L, -2, *n);
    }
    lua_setglobal(L, "os");
    lua_pop(L, 1);
}

/* require: preloaded C modules, then embedded Lua modules. No path, no cpath, no loadlib. */
static void restrict_package(lua_State *L)
{
    open_library(L, LUA_LOADLIBNAME, luaopen_package);
    lua_getglobal(L, "package");
    lua_pushliteral(L, "");
    lua_setfield(L, -2, "path");
    lua_pushliteral(L, "");
    lua_setfield(L, -2, "cpath");
    lua_pushnil(L);
    lua_setfield(L, -2, "loadlib");
    lua_getfield(L, -1, "searchers");
    lua_rawgeti(L, -1, 1); /* the preload searcher */
    lua_newtable(L);
    lua_insert(L, -2);
    lua_rawseti(L, -2, 1);
    lua_pushcfunction(L, search_embedded);
    lua_rawseti(L, -2, 2);
    lua_setfield(L, -3, "searchers");
    lua_pop(L, 1); /* old searchers */

    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_cjson);
    lua_setfield(L, -2, "cjson");
    for (const struct rb_binding *b = rb_bindings; b->name; b++) {
        lua_pushcfunction(L, b->open);
        lua_setfield(L, -2, b->name);
    }
    lua_pop(L, 2);
}

lua_State *rb_state_new(void)
{
    lua_State *L = luaL_newstate();
    if (L == NULL)
        return NULL;
    open_library(L, LUA_GNAME, luaopen_base);
    open_library(L, LUA_STRLIBNAME, luaopen_string);
    open_library(L, LUA_TABLIBNAME, luaopen_table);
    open_library(L, LUA_MATHLIBNAME, luaopen_math);
    open_library(L, LUA_UTF8LIBNAME, luaopen_utf8);
    open_library(L, LUA_COLIBNAME, luaopen_coroutine);
    open_restricted_os(L);
    restrict_base(L);
    restrict_package(L);
    return L;
}
