/* Fuzz target: the PostgreSQL array literal parser (src/pg_array.c, rb_pg_parse_array), which turns the
 * server's text for int[], float8[], bool[] and text[] columns into Lua tables. Input: byte 0 picks
 * the element type, the rest is the literal. On success exactly one table is pushed; on failure
 * nothing, with a reason and an offset inside the text. */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "pg_array.h"

static lua_State *L;

static void check(int condition, const char *what)
{
    if (!condition) {
        fprintf(stderr, "pg_array: %s\n", what);
        abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    L = luaL_newstate();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    enum rb_pg_element kind = (enum rb_pg_element)(data[0] % 4);
    size_t len = size - 1;
    char *text = malloc(len ? len : 1); /* exactly the literal: the parser must not read past it */
    memcpy(text, data + 1, len);
    const char *error = NULL;
    size_t offset = (size_t)-1;
    int top = lua_gettop(L);
    if (rb_pg_parse_array(L, text, len, kind, &error, &offset) == 0) {
        check(lua_gettop(L) == top + 1 && lua_istable(L, -1), "success did not push one table");
    } else {
        check(lua_gettop(L) == top, "failure left values on the stack");
        check(error != NULL && offset <= len, "failure without a reason, or an offset outside the text");
    }
    lua_settop(L, top);
    lua_gc(L, LUA_GCCOLLECT); /* balance allocations: libFuzzer scans for leaks after an input that is not */
    free(text);
    return 0;
}
