/* runbook.host's built-in runbooks: their text (which plans hash) and their main chunks, compiled at build
 * time. */
#include <lauxlib.h>
#include <string.h>

#include "embedded.h"
#include "host_runbooks.h"
#include "luastate.h"

/* embedded_runbooks() -> {name = source text} */
int rb_host_embedded_runbooks(lua_State *L)
{
    lua_newtable(L);
    for (const struct embedded_file *f = embedded_runbooks; f->name; f++) {
        lua_pushlstring(L, f->text, (size_t)f->text_size);
        lua_setfield(L, -2, f->name);
    }
    return 1;
}

/* load_embedded_runbook(name, env) -> the runbook's main chunk, from the bytecode compiled with its
 * text at build time, with env as its _ENV. */
int rb_host_load_embedded_runbook(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    for (const struct embedded_file *f = embedded_runbooks; f->name; f++) {
        if (strcmp(f->name, name) != 0)
            continue;
        rb_push_embedded_chunk(L, f);
        lua_pushvalue(L, 2);
        lua_setupvalue(L, -2, 1); /* a main chunk's one upvalue is its _ENV */
        return 1;
    }
    return luaL_error(L, "no built-in runbook '%s'", name);
}
