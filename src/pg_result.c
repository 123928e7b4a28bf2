/* runbook.pg_core's results: what a statement's PGresult becomes in Lua. Rows are tables keyed by column name,
 * typed by OID (bool, integers, floats and the common array types as Lua values, bytea unescaped, NULL as
 * nil); failures are nil, message, details. A PGresult is always owned by a userdata with a __gc (a holder),
 * so a Lua error, even out of memory, cannot leak it. */
#include <errno.h>
#include <libpq-fe.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_array.h"
#include "pg_conn.h"
#include "pg_result.h"

#define RESULT_META "runbook.pg.Result"

/* Type OIDs (catalog/pg_type.h is not part of libpq's headers). */
enum {
    OID_BOOL = 16, OID_BYTEA = 17, OID_INT8 = 20, OID_INT2 = 21, OID_INT4 = 23, OID_OID = 26,
    OID_JSON = 114, OID_FLOAT4 = 700, OID_FLOAT8 = 701, OID_JSONB = 3802,
    OID_BOOL_ARRAY = 1000, OID_CHAR_ARRAY = 1002, OID_NAME_ARRAY = 1003, OID_INT2_ARRAY = 1005,
    OID_INT4_ARRAY = 1007, OID_TEXT_ARRAY = 1009, OID_BPCHAR_ARRAY = 1014, OID_VARCHAR_ARRAY = 1015,
    OID_INT8_ARRAY = 1016, OID_FLOAT4_ARRAY = 1021, OID_FLOAT8_ARRAY = 1022, OID_OID_ARRAY = 1028,
    OID_TIMESTAMP_ARRAY = 1115, OID_DATE_ARRAY = 1182, OID_TIMESTAMPTZ_ARRAY = 1185,
    OID_NUMERIC_ARRAY = 1231, OID_UUID_ARRAY = 2951,
};

static int result_gc(lua_State *L)
{
    struct result_holder *h = luaL_checkudata(L, 1, RESULT_META);
    PQclear(h->res);
    h->res = NULL;
    return 0;
}

struct result_holder *rb_pg_new_holder(lua_State *L)
{
    struct result_holder *h = lua_newuserdatauv(L, sizeof *h, 0);
    h->res = NULL;
    luaL_setmetatable(L, RESULT_META);
    return h;
}

void rb_pg_holder_set(struct result_holder *h, PGresult *res)
{
    if (h->res != res)
        PQclear(h->res);
    h->res = res;
}

static int is_space_char(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* libpq's messages end with a newline and may span lines: one line for ours. */
void rb_pg_push_message(lua_State *L, const char *text)
{
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    size_t n = text ? strlen(text) : 0;
    while (n > 0 && is_space_char(text[n - 1]))
        n--;
    int pending_space = 0;
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '\n') {
            pending_space = 1;
            continue;
        }
        if (pending_space) {
            luaL_addstring(&b, "; ");
            pending_space = 0;
            while (i < n && is_space_char(text[i]))
                i++;
            if (i >= n)
                break;
        }
        luaL_addchar(&b, text[i]);
    }
    if (luaL_bufflen(&b) == 0)
        luaL_addstring(&b, "unknown libpq failure");
    luaL_pushresult(&b);
}

void rb_pg_set_string_field(lua_State *L, const char *name, const char *value)
{
    if (value) {
        lua_pushstring(L, value);
        lua_setfield(L, -2, name);
    }
}

/* nil, message, {kind=kind} */
int rb_pg_push_failure(lua_State *L, const char *message, const char *kind)
{
    lua_pushnil(L);
    rb_pg_push_message(L, message);
    lua_createtable(L, 0, 1);
    rb_pg_set_string_field(L, "kind", kind);
    return 3;
}

/* A statement given up after its deadline (see rb_pg_exec_bounded): nil, message, {kind="timeout"}. */
static int push_stalled(lua_State *L, struct pg_conn *c)
{
    char message[256];
    c->stalled = 0;
    snprintf(message, sizeof message, "no answer from the server within %lld s (statement_timeout %lld s, plus %d s): "
             "the connection was closed; is the network or a proxy between here and the server stalled?",
             c->statement_timeout_ms / 1000 + STALL_GRACE_SECONDS, c->statement_timeout_ms / 1000, STALL_GRACE_SECONDS);
    return rb_pg_push_failure(L, message, "timeout");
}

/* nil, message, {sqlstate=, severity=, message=, detail=, hint=, position=, ..., kind="server"|"connection"} */
static int push_error_result(lua_State *L, struct pg_conn *c, const PGresult *res)
{
    if (c->stalled && (res == NULL || PQresultErrorField(res, PG_DIAG_SQLSTATE) == NULL))
        return push_stalled(L, c);
    if (res == NULL)
        return rb_pg_push_failure(L, PQerrorMessage(c->pg), "connection");
    const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    lua_pushnil(L);
    if (primary)
        lua_pushstring(L, primary);
    else
        rb_pg_push_message(L, *PQresultErrorMessage(res) ? PQresultErrorMessage(res) : PQerrorMessage(c->pg));
    lua_createtable(L, 0, 12);
    static const struct { const char *name; int code; } fields[] = {
        {"sqlstate", PG_DIAG_SQLSTATE}, {"severity", PG_DIAG_SEVERITY_NONLOCALIZED},
        {"message", PG_DIAG_MESSAGE_PRIMARY}, {"detail", PG_DIAG_MESSAGE_DETAIL}, {"hint", PG_DIAG_MESSAGE_HINT},
        {"context", PG_DIAG_CONTEXT}, {"schema", PG_DIAG_SCHEMA_NAME}, {"table", PG_DIAG_TABLE_NAME},
        {"column", PG_DIAG_COLUMN_NAME}, {"datatype", PG_DIAG_DATATYPE_NAME},
        {"constraint", PG_DIAG_CONSTRAINT_NAME},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        rb_pg_set_string_field(L, fields[i].name, PQresultErrorField(res, fields[i].code));
    const char *position = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);
    if (position) {
        lua_pushinteger(L, (lua_Integer)strtol(position, NULL, 10));
        lua_setfield(L, -2, "position");
    }
    /* Errors libpq makes itself (a lost connection, a timeout on our side) have no SQLSTATE. */
    rb_pg_set_string_field(L, "kind", sqlstate && PQstatus(c->pg) == CONNECTION_OK ? "server" : "connection");
    return 3;
}

static void push_integer_text(lua_State *L, const char *text, int len)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno == 0 && end == text + len && len > 0)
        lua_pushinteger(L, (lua_Integer)v);
    else
        lua_pushlstring(L, text, (size_t)len); /* cannot happen for int2/4/8; never lose the value */
}

static void push_float_text(lua_State *L, const char *text, int len)
{
    char *end = NULL;
    double v = strtod(text, &end); /* also reads PostgreSQL's "Infinity", "-Infinity" and "NaN" */
    if (end == text + len && len > 0)
        lua_pushnumber(L, v);
    else
        lua_pushlstring(L, text, (size_t)len);
}

static void push_bytea(lua_State *L, const char *text, int len)
{
    size_t n = 0;
    unsigned char *bytes = PQunescapeBytea((const unsigned char *)text, &n);
    if (bytes == NULL) {
        lua_pushlstring(L, text, (size_t)len);
        return;
    }
    lua_pushlstring(L, (const char *)bytes, n);
    PQfreemem(bytes);
}

/* The element type of the array types decoded into tables; -1 for other types. */
static int array_element_kind(Oid oid)
{
    switch (oid) {
    case OID_BOOL_ARRAY:
        return RB_PG_ELEMENT_BOOLEAN;
    case OID_INT2_ARRAY: case OID_INT4_ARRAY: case OID_INT8_ARRAY: case OID_OID_ARRAY:
        return RB_PG_ELEMENT_INTEGER;
    case OID_FLOAT4_ARRAY: case OID_FLOAT8_ARRAY:
        return RB_PG_ELEMENT_FLOAT;
    case OID_TEXT_ARRAY: case OID_VARCHAR_ARRAY: case OID_BPCHAR_ARRAY: case OID_NAME_ARRAY: case OID_CHAR_ARRAY:
    case OID_NUMERIC_ARRAY: case OID_UUID_ARRAY: case OID_DATE_ARRAY: case OID_TIMESTAMP_ARRAY:
    case OID_TIMESTAMPTZ_ARRAY:
        return RB_PG_ELEMENT_TEXT;
    default:
        return -1;
    }
}

/* One non-NULL value of type `oid`: bool, integers and floats as Lua values, bytea unescaped, arrays of the
 * types above as tables, everything else (numeric, json, timestamps...) as the server's text. */
static void push_value(lua_State *L, Oid oid, const char *text, int len)
{
    switch (oid) {
    case OID_BOOL:
        lua_pushboolean(L, text[0] == 't');
        return;
    case OID_INT2: case OID_INT4: case OID_INT8: case OID_OID:
        push_integer_text(L, text, len);
        return;
    case OID_FLOAT4: case OID_FLOAT8:
        push_float_text(L, text, len);
        return;
    case OID_BYTEA:
        push_bytea(L, text, len);
        return;
    default:
        break;
    }
    int kind = array_element_kind(oid);
    const char *error;
    size_t offset;
    if (kind >= 0 && rb_pg_parse_array(L, text, (size_t)len, (enum rb_pg_element)kind, &error, &offset) == 0)
        return;
    lua_pushlstring(L, text, (size_t)len);
}

static int is_json_type(Oid oid)
{
    return oid == OID_JSON || oid == OID_JSONB;
}

/* rows (array of tables keyed by column name), columns (names in order), json_columns (names to decode) */
static int push_rows(lua_State *L, const PGresult *res)
{
    int nrows = PQntuples(res), ncols = PQnfields(res);
    lua_createtable(L, nrows, 0);
    int rows = lua_gettop(L);
    lua_createtable(L, ncols, 0);
    int columns = rows + 1;
    lua_newtable(L);
    int json_columns = rows + 2;
    lua_Integer njson = 0;
    for (int j = 0; j < ncols; j++) {
        lua_pushstring(L, PQfname(res, j));
        lua_rawseti(L, columns, j + 1);
        if (is_json_type(PQftype(res, j))) {
            lua_pushstring(L, PQfname(res, j));
            lua_rawseti(L, json_columns, ++njson);
        }
    }
    for (int i = 0; i < nrows; i++) {
        lua_createtable(L, 0, ncols);
        for (int j = 0; j < ncols; j++) {
            if (PQgetisnull(res, i, j))
                continue; /* NULL is nil: the key stays absent */
            lua_rawgeti(L, columns, j + 1);
            push_value(L, PQftype(res, j), PQgetvalue(res, i, j), PQgetlength(res, i, j));
            lua_rawset(L, -3);
        }
        lua_rawseti(L, rows, i + 1);
    }
    return 3;
}

/* What a finished statement returns to Lua: rows, columns, json_columns | affected, tag | nil, message, details */
int rb_pg_push_statement_result(lua_State *L, struct pg_conn *c, struct result_holder *h)
{
    int n;
    switch (h->res ? PQresultStatus(h->res) : PGRES_FATAL_ERROR) {
    case PGRES_TUPLES_OK:
        n = push_rows(L, h->res);
        break;
    case PGRES_COMMAND_OK:
    case PGRES_EMPTY_QUERY: {
        const char *affected = PQcmdTuples(h->res);
        lua_pushinteger(L, *affected ? (lua_Integer)strtoll(affected, NULL, 10) : 0);
        lua_pushstring(L, PQcmdStatus(h->res));
        n = 2;
        break;
    }
    default:
        n = push_error_result(L, c, h->res);
        break;
    }
    rb_pg_holder_set(h, NULL);
    return n;
}

void rb_pg_open_results(lua_State *L)
{
    luaL_newmetatable(L, RESULT_META);
    lua_pushcfunction(L, result_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
}
