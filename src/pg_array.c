/* PostgreSQL array literals to Lua sequences: {1,2,NULL}, {"a b","c\"d"}, {{1,2},{3,4}}, [0:1]={x,y}.
 * Never trusts the input: it is a fuzz target (pg_array), and the server's output is parsed with it. */
#include <errno.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pg_array.h"

#define MAX_ARRAY_DEPTH 6 /* PostgreSQL's MAXDIM */

struct array_parser {
    const char *start, *p, *end;
    char *scratch; /* an element after unquoting: never longer than the input */
    enum rb_pg_element kind;
    const char *error;
};

static int is_array_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static void skip_array_space(struct array_parser *ap)
{
    while (ap->p < ap->end && is_array_space(*ap->p))
        ap->p++;
}

static int array_fail(struct array_parser *ap, const char *why)
{
    ap->error = why;
    return -1;
}

static int push_element(lua_State *L, struct array_parser *ap, size_t n)
{
    char *s = ap->scratch, *end = NULL;
    s[n] = '\0';
    switch (ap->kind) {
    case RB_PG_ELEMENT_INTEGER: {
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (n == 0 || end != s + n || errno != 0)
            return array_fail(ap, "an element is not an integer");
        lua_pushinteger(L, (lua_Integer)v);
        return 0;
    }
    case RB_PG_ELEMENT_FLOAT: {
        double v = strtod(s, &end);
        if (n == 0 || end != s + n)
            return array_fail(ap, "an element is not a number");
        lua_pushnumber(L, v);
        return 0;
    }
    case RB_PG_ELEMENT_BOOLEAN:
        if (strcmp(s, "t") == 0 || strcmp(s, "true") == 0)
            lua_pushboolean(L, 1);
        else if (strcmp(s, "f") == 0 || strcmp(s, "false") == 0)
            lua_pushboolean(L, 0);
        else
            return array_fail(ap, "an element is not a boolean");
        return 0;
    case RB_PG_ELEMENT_TEXT:
        break;
    }
    lua_pushlstring(L, s, n);
    return 0;
}

static int parse_quoted_element(lua_State *L, struct array_parser *ap)
{
    size_t n = 0;
    ap->p++; /* the opening quote */
    for (;;) {
        if (ap->p >= ap->end)
            return array_fail(ap, "unterminated quoted element");
        char c = *ap->p++;
        if (c == '"')
            break;
        if (c == '\\') {
            if (ap->p >= ap->end)
                return array_fail(ap, "backslash at the end");
            c = *ap->p++;
        }
        ap->scratch[n++] = c;
    }
    return push_element(L, ap, n);
}

/* An unquoted element: up to the next ',' or '}', surrounding spaces dropped, backslashes escaping;
 * NULL (any case, without escapes) is the null element. */
static int parse_bare_element(lua_State *L, struct array_parser *ap)
{
    size_t n = 0, significant = 0;
    int escaped = 0;
    while (ap->p < ap->end && *ap->p != ',' && *ap->p != '}') {
        char c = *ap->p++;
        if (c == '{' || c == '"')
            return array_fail(ap, "unexpected '{' or '\"' inside an element");
        if (c == '\\') {
            if (ap->p >= ap->end)
                return array_fail(ap, "backslash at the end");
            ap->scratch[n++] = *ap->p++;
            significant = n;
            escaped = 1;
            continue;
        }
        ap->scratch[n++] = c;
        if (!is_array_space(c))
            significant = n;
    }
    if (significant == 0)
        return array_fail(ap, "empty element");
    if (!escaped && significant == 4 && strncasecmp(ap->scratch, "NULL", 4) == 0) {
        lua_pushlightuserdata(L, NULL); /* cjson.null */
        return 0;
    }
    return push_element(L, ap, significant);
}

/* One {...} level, starting at its '{'; pushes a table. On failure the caller restores the stack. */
static int parse_array_level(lua_State *L, struct array_parser *ap, int depth)
{
    if (depth > MAX_ARRAY_DEPTH)
        return array_fail(ap, "more than 6 dimensions");
    if (!lua_checkstack(L, 4))
        return array_fail(ap, "nested too deeply");
    ap->p++; /* '{' */
    lua_newtable(L);
    skip_array_space(ap);
    if (ap->p < ap->end && *ap->p == '}') {
        ap->p++;
        return 0;
    }
    for (lua_Integer count = 1;; count++) {
        skip_array_space(ap);
        if (ap->p >= ap->end)
            return array_fail(ap, "unterminated array");
        int status;
        if (*ap->p == '{')
            status = parse_array_level(L, ap, depth + 1);
        else if (*ap->p == '"')
            status = parse_quoted_element(L, ap);
        else
            status = parse_bare_element(L, ap);
        if (status != 0)
            return status;
        lua_rawseti(L, -2, count);
        skip_array_space(ap);
        if (ap->p >= ap->end)
            return array_fail(ap, "unterminated array");
        char c = *ap->p++;
        if (c == '}')
            return 0;
        if (c != ',')
            return array_fail(ap, "expected ',' or '}'");
    }
}

static int is_digit_char(char c)
{
    return c >= '0' && c <= '9';
}

static int skip_bound(struct array_parser *ap)
{
    if (ap->p < ap->end && (*ap->p == '-' || *ap->p == '+'))
        ap->p++;
    const char *digits = ap->p;
    while (ap->p < ap->end && is_digit_char(*ap->p))
        ap->p++;
    return ap->p > digits;
}

/* "[1:3][0:1]=" in front of arrays whose lower bounds are not 1; Lua sequences start at 1 anyway. */
static int skip_dimensions(struct array_parser *ap)
{
    int dims = 0;
    while (ap->p < ap->end && *ap->p == '[') {
        if (++dims > MAX_ARRAY_DEPTH)
            return array_fail(ap, "more than 6 dimensions");
        ap->p++;
        if (!skip_bound(ap))
            return array_fail(ap, "bad dimension");
        if (ap->p < ap->end && *ap->p == ':') {
            ap->p++;
            if (!skip_bound(ap))
                return array_fail(ap, "bad dimension");
        }
        if (ap->p >= ap->end || *ap->p != ']')
            return array_fail(ap, "bad dimension");
        ap->p++;
    }
    skip_array_space(ap);
    if (ap->p >= ap->end || *ap->p != '=')
        return array_fail(ap, "expected '=' after the dimensions");
    ap->p++;
    return 0;
}

int rb_pg_parse_array(lua_State *L, const char *text, size_t len, enum rb_pg_element kind,
                      const char **error, size_t *error_offset)
{
    int top = lua_gettop(L);
    struct array_parser ap = {text, text, text + len, NULL, kind, NULL};
    ap.scratch = lua_newuserdatauv(L, len + 1, 0);
    int status = 0;
    skip_array_space(&ap);
    if (ap.p < ap.end && *ap.p == '[')
        status = skip_dimensions(&ap);
    if (status == 0) {
        skip_array_space(&ap);
        if (ap.p >= ap.end || *ap.p != '{')
            status = array_fail(&ap, "an array starts with '{'");
        else
            status = parse_array_level(L, &ap, 1);
    }
    if (status == 0) {
        skip_array_space(&ap);
        if (ap.p != ap.end)
            status = array_fail(&ap, "text after the array");
    }
    if (status != 0) {
        lua_settop(L, top);
        *error = ap.error;
        *error_offset = (size_t)(ap.p - ap.start);
        return -1;
    }
    lua_remove(L, top + 1); /* the scratch buffer */
    return 0;
}
