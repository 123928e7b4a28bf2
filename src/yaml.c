/* runbook.yaml_core: YAML text to Lua values with libyaml (kubeconfig files are YAML; never parse
 * YAML by hand). rb_yaml_load is a pure function of its input, so a fuzzer can call it directly.
 *
 * Values: mappings become tables, sequences become lists, null becomes json.null (a NULL light
 * userdata, cjson's null). Plain scalars are typed by the YAML 1.2 core schema (null, booleans,
 * integers, floats) unless `strings` is set, in which case every non-null scalar stays text: that
 * is how Kubernetes reads a string field (namespace: "0123" or namespace: no stay strings), and the
 * caller converts the few boolean fields itself. Aliases refer to the anchored value (shared, never
 * copied, so "billion laughs" documents cost nothing); merge keys (<<) are honoured. */
#include <errno.h>
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "bindings.h"
#include "yaml_load.h"

#define MAX_DEPTH 200

struct loader {
    lua_State *L;
    yaml_parser_t parser;
    yaml_event_t event;
    int have_event;
    int anchors; /* stack index of the anchor table */
    int strings;
    char *error;
    size_t error_size;
};

static int fail(struct loader *ld, const yaml_mark_t *mark, const char *message)
{
    if (mark)
        snprintf(ld->error, ld->error_size, "%lu:%lu: %s", (unsigned long)mark->line + 1,
                 (unsigned long)mark->column + 1, message);
    else
        snprintf(ld->error, ld->error_size, "%s", message);
    return -1;
}

static int parser_failure(struct loader *ld)
{
    char message[300];
    const yaml_parser_t *p = &ld->parser;
    if (p->context)
        snprintf(message, sizeof message, "%s %s", p->problem ? p->problem : "invalid YAML", p->context);
    else
        snprintf(message, sizeof message, "%s", p->problem ? p->problem : "invalid YAML");
    if (p->error == YAML_MEMORY_ERROR)
        return fail(ld, NULL, "out of memory reading YAML");
    return fail(ld, &p->problem_mark, message);
}

static int next_event(struct loader *ld)
{
    if (ld->have_event)
        yaml_event_delete(&ld->event);
    ld->have_event = 0;
    if (!yaml_parser_parse(&ld->parser, &ld->event))
        return parser_failure(ld);
    ld->have_event = 1;
    return 0;
}

static int is_one_of(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return 1;
    return 0;
}

/* YAML 1.2 core schema for plain scalars. */
static void push_plain_scalar(lua_State *L, const char *s, size_t len)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"true", "True", "TRUE", NULL};
    static const char *const falses[] = {"false", "False", "FALSE", NULL};
    if (strlen(s) != len) { /* an embedded NUL: only text can hold it */
        lua_pushlstring(L, s, len);
        return;
    }
    if (is_one_of(s, nulls)) {
        lua_pushlightuserdata(L, NULL);
        return;
    }
    if (is_one_of(s, trues) || is_one_of(s, falses)) {
        lua_pushboolean(L, is_one_of(s, trues));
        return;
    }
    const char *digits = s + (s[0] == '-' || s[0] == '+');
    if (strncmp(s, "0o", 2) == 0 && len > 2 && strspn(s + 2, "01234567") == len - 2) {
        errno = 0;
        unsigned long long v = strtoull(s + 2, NULL, 8);
        if (errno == 0 && v <= (unsigned long long)LUA_MAXINTEGER) {
            lua_pushinteger(L, (lua_Integer)v);
            return;
        }
    } else if (strncmp(s, "0x", 2) == 0 && len > 2 && strspn(s + 2, "0123456789abcdefABCDEF") == len - 2) {
        errno = 0;
        unsigned long long v = strtoull(s + 2, NULL, 16);
        if (errno == 0 && v <= (unsigned long long)LUA_MAXINTEGER) {
            lua_pushinteger(L, (lua_Integer)v);
            return;
        }
    } else if (*digits && strspn(digits, "0123456789") == strlen(digits)) {
        errno = 0;
        long long v = strtoll(s, NULL, 10);
        if (errno == 0) {
            lua_pushinteger(L, (lua_Integer)v);
            return;
        }
    } else if (strcmp(digits, ".inf") == 0 || strcmp(digits, ".Inf") == 0 || strcmp(digits, ".INF") == 0) {
        lua_pushnumber(L, s[0] == '-' ? -HUGE_VAL : HUGE_VAL);
        return;
    } else if (strcmp(s, ".nan") == 0 || strcmp(s, ".NaN") == 0 || strcmp(s, ".NAN") == 0) {
        lua_pushnumber(L, NAN);
        return;
    } else {
        /* [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
        const char *p = digits;
        size_t whole = strspn(p, "0123456789");
        p += whole;
        size_t fraction = 0;
        int dot = *p == '.';
        if (dot) {
            fraction = strspn(p + 1, "0123456789");
            p += 1 + fraction;
        }
        int shaped = whole > 0 || fraction > 0;
        if (shaped && (*p == 'e' || *p == 'E')) {
            p++;
            if (*p == '-' || *p == '+')
                p++;
            size_t exp = strspn(p, "0123456789");
            shaped = exp > 0;
            p += exp;
        }
        if (shaped && *p == '\0' && (dot || strpbrk(digits, "eE"))) {
            lua_pushnumber(L, strtod(s, NULL));
            return;
        }
    }
    lua_pushlstring(L, s, len);
}

static int is_tag(const yaml_char_t *tag, const char *name)
{
    return tag && strcmp((const char *)tag, name) == 0;
}

static void push_scalar(struct loader *ld)
{
    const yaml_event_t *e = &ld->event;
    const char *value = (const char *)e->data.scalar.value;
    size_t len = e->data.scalar.length;
    const yaml_char_t *tag = e->data.scalar.tag;
    if (is_tag(tag, YAML_STR_TAG) || (!tag && !e->data.scalar.plain_implicit)) {
        lua_pushlstring(ld->L, value, len); /* quoted or block scalars, and !!str, are text */
    } else if (ld->strings) {
        static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
        if (strlen(value) == len && is_one_of(value, nulls))
            lua_pushlightuserdata(ld->L, NULL);
        else
            lua_pushlstring(ld->L, value, len);
    } else {
        push_plain_scalar(ld->L, value, len);
    }
}

/* A node's anchor (or false) goes below its value while the node is read, and names the value only
 * once the node is complete: an alias inside its own anchor's node is unknown, so no value can
 * contain itself (consumers would loop forever on a cycle). */
static void push_anchor_name(struct loader *ld, const yaml_char_t *anchor)
{
    if (anchor)
        lua_pushstring(ld->L, (const char *)anchor);
    else
        lua_pushboolean(ld->L, 0);
}

/* Stack: anchor-name value -> value, recorded under the name. */
static int remember_anchor(struct loader *ld)
{
    lua_State *L = ld->L;
    if (lua_isstring(L, -2)) {
        lua_pushvalue(L, -2);
        lua_pushvalue(L, -2);
        lua_rawset(L, ld->anchors);
    }
    lua_remove(L, -2);
    return 0;
}

static int load_node(struct loader *ld, int depth);

/* `<<: *base` or `<<: [*a, *b]`: keys of the merged mappings that the mapping does not set itself. */
static int merge_into(struct loader *ld, int target, int source, const yaml_mark_t *mark)
{
    lua_State *L = ld->L;
    if (lua_type(L, source) != LUA_TTABLE)
        return fail(ld, mark, "a merge key (<<) needs a mapping or a list of mappings");
    lua_pushnil(L);
    while (lua_next(L, source)) {
        lua_pushvalue(L, -2);
        if (lua_rawget(L, target) == LUA_TNIL) {
            lua_pop(L, 1);
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, target);
        } else {
            lua_pop(L, 2);
        }
    }
    return 0;
}

static int load_mapping(struct loader *ld, int depth)
{
    lua_State *L = ld->L;
    push_anchor_name(ld, ld->event.data.mapping_start.anchor);
    lua_newtable(L);
    int table = lua_gettop(L);
    for (;;) {
        if (next_event(ld) != 0)
            return -1;
        if (ld->event.type == YAML_MAPPING_END_EVENT)
            return remember_anchor(ld);
        yaml_mark_t key_mark = ld->event.start_mark;
        int merge = ld->event.type == YAML_SCALAR_EVENT && ld->event.data.scalar.plain_implicit &&
                    strcmp((const char *)ld->event.data.scalar.value, "<<") == 0;
        if (load_node(ld, depth + 1) != 0)
            return -1;
        int key_type = lua_type(L, -1);
        if (key_type == LUA_TTABLE || key_type == LUA_TLIGHTUSERDATA)
            return fail(ld, &key_mark, "mapping keys must be scalars");
        if (key_type == LUA_TNUMBER && lua_isinteger(L, -1) == 0) {
            lua_pushstring(L, lua_tostring(L, -1)); /* float keys would be rounded by Lua: keep the text */
            lua_replace(L, -2);
        }
        if (next_event(ld) != 0)
            return -1;
        if (load_node(ld, depth + 1) != 0)
            return -1;
        if (merge) {
            int value = lua_gettop(L);
            if (lua_type(L, value) == LUA_TTABLE && lua_rawlen(L, value) > 0) {
                /* earlier mappings in the list win over later ones */
                for (lua_Integer i = 1; i <= (lua_Integer)lua_rawlen(L, value); i++) {
                    lua_rawgeti(L, value, i);
                    if (merge_into(ld, table, lua_gettop(L), &key_mark) != 0)
                        return -1;
                    lua_pop(L, 1);
                }
            } else if (merge_into(ld, table, value, &key_mark) != 0) {
                return -1;
            }
            lua_pop(L, 2);
            continue;
        }
        lua_rawset(L, table); /* a repeated key: the last one wins, as Kubernetes' YAML reader does */
    }
}

static int load_sequence(struct loader *ld, int depth)
{
    lua_State *L = ld->L;
    push_anchor_name(ld, ld->event.data.sequence_start.anchor);
    lua_newtable(L);
    lua_Integer n = 0;
    for (;;) {
        if (next_event(ld) != 0)
            return -1;
        if (ld->event.type == YAML_SEQUENCE_END_EVENT)
            return remember_anchor(ld);
        if (load_node(ld, depth + 1) != 0)
            return -1;
        lua_rawseti(L, -2, ++n);
    }
}

/* Pushes the node whose first event is the current one. */
static int load_node(struct loader *ld, int depth)
{
    lua_State *L = ld->L;
    if (depth > MAX_DEPTH)
        return fail(ld, &ld->event.start_mark, "nested too deeply");
    if (!lua_checkstack(L, 8))
        return fail(ld, NULL, "out of Lua stack reading YAML");
    switch (ld->event.type) {
    case YAML_SCALAR_EVENT:
        push_anchor_name(ld, ld->event.data.scalar.anchor);
        push_scalar(ld);
        return remember_anchor(ld);
    case YAML_SEQUENCE_START_EVENT:
        return load_sequence(ld, depth);
    case YAML_MAPPING_START_EVENT:
        return load_mapping(ld, depth);
    case YAML_ALIAS_EVENT:
        lua_pushstring(L, (const char *)ld->event.data.alias.anchor);
        if (lua_rawget(L, ld->anchors) == LUA_TNIL) {
            char message[200];
            snprintf(message, sizeof message, "unknown alias *%.100s", (const char *)ld->event.data.alias.anchor);
            return fail(ld, &ld->event.start_mark, message);
        }
        return 0;
    default:
        return fail(ld, &ld->event.start_mark, "unexpected YAML event");
    }
}

int rb_yaml_load(lua_State *L, const char *text, size_t len, int strings, char *error, size_t error_size)
{
    struct loader ld;
    memset(&ld, 0, sizeof ld);
    ld.L = L;
    ld.strings = strings;
    ld.error = error;
    ld.error_size = error_size;
    if (!yaml_parser_initialize(&ld.parser))
        return fail(&ld, NULL, "out of memory starting the YAML parser");
    yaml_parser_set_input_string(&ld.parser, (const unsigned char *)text, len);
    int base = lua_gettop(L);
    lua_newtable(L);
    ld.anchors = lua_gettop(L);
    int status = 0, documents = 0;
    for (;;) {
        if ((status = next_event(&ld)) != 0)
            break;
        yaml_event_type_t type = ld.event.type;
        if (type == YAML_STREAM_END_EVENT)
            break;
        if (type != YAML_DOCUMENT_START_EVENT)
            continue;
        if (documents++ > 0) {
            status = fail(&ld, &ld.event.start_mark, "more than one YAML document (---); expected one");
            break;
        }
        if ((status = next_event(&ld)) != 0)
            break;
        if ((status = load_node(&ld, 0)) != 0)
            break;
        if ((status = next_event(&ld)) != 0)
            break;
    }
    if (ld.have_event)
        yaml_event_delete(&ld.event);
    yaml_parser_delete(&ld.parser);
    if (status != 0) {
        lua_settop(L, base);
        return -1;
    }
    if (documents == 0)
        lua_pushlightuserdata(L, NULL); /* an empty file: no value, as an empty kubeconfig is */
    lua_remove(L, base + 1);           /* the anchors */
    return 0;
}

/* parse(text[, {strings = bool}]) -> value | nil, "LINE:COLUMN: problem" */
static int yaml_parse(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    int strings = 0;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_getfield(L, 2, "strings");
        strings = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    lua_settop(L, 2);
    char error[400];
    if (rb_yaml_load(L, text, len, strings, error, sizeof error) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, error);
        return 2;
    }
    return 1;
}

static const luaL_Reg yaml_functions[] = {
    {"parse", yaml_parse},
    {NULL, NULL},
};

int luaopen_runbook_yaml_core(lua_State *L)
{
    luaL_newlib(L, yaml_functions);
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    return 1;
}
