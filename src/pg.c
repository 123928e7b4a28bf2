/* runbook.pg_core: PostgreSQL on libpq, and the guard that keeps planning read-only.
 *
 * While the engine plans (phase "plan") or runs read-only ("readonly"), every statement goes through the
 * guard, in layers, so that no single mistake lets a write through:
 *   1. a lexical check (pg_guard.c) refuses, before anything is sent, what a read-only transaction does not stop:
 *      transaction control, COPY to server files or programs, LOCK modes that block writers, maintenance
 *      commands, and calls of functions that act outside the transaction (pg_terminate_backend, dblink...);
 *   2. the statement runs alone (PQexecParams refuses several) inside a READ ONLY transaction opened here,
 *      with a snapshot already taken so that nothing can make it read-write; the server's refusals
 *      (SQLSTATE 25006 read-only transaction, 25001 not inside a transaction block) are the phase's refusals;
 *   3. afterwards the transaction must still be ours and still read-only;
 *   4. it is rolled back, so that even session settings the statement changed are undone.
 * Every refusal goes through rb_phase_require_mutation, which counts it: a plan that tried fails even when
 * the runbook caught the error.
 *
 * libpq never calls Lua: the notice receiver only copies notices into C memory, and the COPY writer (a Lua
 * function) is called between libpq calls under lua_pcall. A PGresult is always owned by a userdata with a
 * __gc, so a Lua error (even out of memory) cannot leak it. */
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <libpq-fe.h>
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bindings.h"
#include "clock.h"
#include "dynlib.h"
#include "pg_array.h"
#include "pg_guard.h"
#include "phase.h"

#define CONN_META "runbook.pg.Conn"
#define RESULT_META "runbook.pg.Result"
#define MAX_NOTICES 1000      /* kept per connection between two notices() calls; more are counted */
#define MAX_PARAMS 65535      /* the protocol's limit */
#define COPY_CHUNK (64 * 1024) /* COPY rows are handed to the writer in chunks of about this size */
#define DEFAULT_STATEMENT_TIMEOUT_MS 300000LL
#define STALL_GRACE_SECONDS 5 /* after statement_timeout, for the server's answer to travel */

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

/* What a transaction() block on the connection is. */
enum block_kind {
    BLOCK_NONE,
    BLOCK_GUARDED, /* opened in a read-only phase: READ ONLY, always rolled back */
    BLOCK_OPEN,    /* opened while changes are allowed: committed at its end */
};

struct notice {
    struct notice *next;
    char *severity, *sqlstate, *message, *detail, *hint;
};

struct pg_conn {
    PGconn *pg;
    enum block_kind block;
    long long statement_timeout_ms;
    double deadline;  /* monotonic seconds: when the statement under way stops being waited for */
    int stalled;      /* the last wait hit the deadline: the next failure says so */
    struct notice *notices, *last_notice;
    int notice_count, notices_dropped;
    char label[512];
};

struct result_holder {
    PGresult *res;
};

/* ------------------------------------------------------------------------------------------------
 * Results: owned by a userdata so that a Lua error cannot leak them; converted to Lua values by type. */

static int result_gc(lua_State *L)
{
    struct result_holder *h = luaL_checkudata(L, 1, RESULT_META);
    PQclear(h->res);
    h->res = NULL;
    return 0;
}

static struct result_holder *new_holder(lua_State *L)
{
    struct result_holder *h = lua_newuserdatauv(L, sizeof *h, 0);
    h->res = NULL;
    luaL_setmetatable(L, RESULT_META);
    return h;
}

static void holder_set(struct result_holder *h, PGresult *res)
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
static void push_message(lua_State *L, const char *text)
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

static void set_string_field(lua_State *L, const char *name, const char *value)
{
    if (value) {
        lua_pushstring(L, value);
        lua_setfield(L, -2, name);
    }
}

/* nil, message, {kind=kind} */
static int push_failure(lua_State *L, const char *message, const char *kind)
{
    lua_pushnil(L);
    push_message(L, message);
    lua_createtable(L, 0, 1);
    set_string_field(L, "kind", kind);
    return 3;
}

/* A statement given up after its deadline (see exec_bounded): nil, message, {kind="timeout"}. */
static int push_stalled(lua_State *L, struct pg_conn *c)
{
    char message[256];
    c->stalled = 0;
    snprintf(message, sizeof message, "no answer from the server within %lld s (statement_timeout %lld s, plus %d s): "
             "the connection was closed; is the network or a proxy between here and the server stalled?",
             c->statement_timeout_ms / 1000 + STALL_GRACE_SECONDS, c->statement_timeout_ms / 1000, STALL_GRACE_SECONDS);
    return push_failure(L, message, "timeout");
}

/* nil, message, {sqlstate=, severity=, message=, detail=, hint=, position=, ..., kind="server"|"connection"} */
static int push_error_result(lua_State *L, struct pg_conn *c, const PGresult *res)
{
    if (c->stalled && (res == NULL || PQresultErrorField(res, PG_DIAG_SQLSTATE) == NULL))
        return push_stalled(L, c);
    if (res == NULL)
        return push_failure(L, PQerrorMessage(c->pg), "connection");
    const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    lua_pushnil(L);
    if (primary)
        lua_pushstring(L, primary);
    else
        push_message(L, *PQresultErrorMessage(res) ? PQresultErrorMessage(res) : PQerrorMessage(c->pg));
    lua_createtable(L, 0, 12);
    static const struct { const char *name; int code; } fields[] = {
        {"sqlstate", PG_DIAG_SQLSTATE}, {"severity", PG_DIAG_SEVERITY_NONLOCALIZED},
        {"message", PG_DIAG_MESSAGE_PRIMARY}, {"detail", PG_DIAG_MESSAGE_DETAIL}, {"hint", PG_DIAG_MESSAGE_HINT},
        {"context", PG_DIAG_CONTEXT}, {"schema", PG_DIAG_SCHEMA_NAME}, {"table", PG_DIAG_TABLE_NAME},
        {"column", PG_DIAG_COLUMN_NAME}, {"datatype", PG_DIAG_DATATYPE_NAME},
        {"constraint", PG_DIAG_CONSTRAINT_NAME},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        set_string_field(L, fields[i].name, PQresultErrorField(res, fields[i].code));
    const char *position = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);
    if (position) {
        lua_pushinteger(L, (lua_Integer)strtol(position, NULL, 10));
        lua_setfield(L, -2, "position");
    }
    /* Errors libpq makes itself (a lost connection, a timeout on our side) have no SQLSTATE. */
    set_string_field(L, "kind", sqlstate && PQstatus(c->pg) == CONNECTION_OK ? "server" : "connection");
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
static int push_statement_result(lua_State *L, struct pg_conn *c, struct result_holder *h)
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
    holder_set(h, NULL);
    return n;
}

/* ------------------------------------------------------------------------------------------------
 * Connections */

static void free_notices(struct pg_conn *c)
{
    struct notice *n = c->notices;
    while (n) {
        struct notice *next = n->next;
        free(n->severity);
        free(n->sqlstate);
        free(n->message);
        free(n->detail);
        free(n->hint);
        free(n);
        n = next;
    }
    c->notices = c->last_notice = NULL;
    c->notice_count = 0;
    c->notices_dropped = 0;
}

static char *copy_field(const PGresult *res, int field)
{
    const char *s = PQresultErrorField(res, field);
    return s ? strdup(s) : NULL;
}

/* Called by libpq in the middle of its work: copies the notice into C memory and nothing else. */
static void on_notice(void *arg, const PGresult *res)
{
    struct pg_conn *c = arg;
    if (c->notice_count >= MAX_NOTICES) {
        c->notices_dropped++;
        return;
    }
    struct notice *n = calloc(1, sizeof *n);
    if (n == NULL) {
        c->notices_dropped++;
        return;
    }
    n->severity = copy_field(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    n->sqlstate = copy_field(res, PG_DIAG_SQLSTATE);
    n->message = copy_field(res, PG_DIAG_MESSAGE_PRIMARY);
    n->detail = copy_field(res, PG_DIAG_MESSAGE_DETAIL);
    n->hint = copy_field(res, PG_DIAG_MESSAGE_HINT);
    if (c->last_notice)
        c->last_notice->next = n;
    else
        c->notices = n;
    c->last_notice = n;
    c->notice_count++;
}

static void conn_release(struct pg_conn *c)
{
    if (c->pg) {
        PQfinish(c->pg); /* the server rolls back whatever transaction was open */
        c->pg = NULL;
    }
    free_notices(c);
    c->block = BLOCK_NONE;
}

static int conn_close(lua_State *L)
{
    conn_release(luaL_checkudata(L, 1, CONN_META));
    return 0;
}

static struct pg_conn *check_conn(lua_State *L, int index)
{
    struct pg_conn *c = luaL_checkudata(L, index, CONN_META);
    if (c->pg == NULL)
        luaL_error(L, "attempt to use a closed PostgreSQL connection");
    return c;
}

/* ------------------------------------------------------------------------------------------------
 * Waiting for the server, bounded. statement_timeout is the server's bound; it cannot help when the
 * network or a proxy in between stalls (keeps the TCP connection up, answers keepalives, passes nothing
 * on): libpq's own calls would then wait in poll() for ever. So every statement is sent asynchronously
 * and waited for until statement_timeout plus a grace, after which the socket is shut down: libpq sees
 * the end of the stream, the call fails with a message, and later calls fail at once. */

/* Waits until the socket is readable; 0 when it is (or libpq should look), -1 when the deadline passed. */
static int wait_readable(struct pg_conn *c)
{
    int fd = PQsocket(c->pg);
    if (fd < 0)
        return 0; /* no socket: libpq reports the lost connection */
    for (;;) {
        double left = c->deadline - rb_monotonic_seconds();
        if (left <= 0)
            return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, left > 60 ? 60000 : (int)ceil(left * 1000));
        if (n > 0 || (n < 0 && errno != EINTR))
            return 0;
    }
}

static void give_up_stalled(struct pg_conn *c)
{
    c->stalled = 1;
    shutdown(PQsocket(c->pg), SHUT_RDWR);
}

/* Reads what has arrived, waiting while libpq needs more. 0 when a result is ready, -1 on failure. */
static int await_input(struct pg_conn *c)
{
    while (PQisBusy(c->pg)) {
        if (wait_readable(c) < 0)
            give_up_stalled(c);
        if (!PQconsumeInput(c->pg))
            return -1;
    }
    return 0;
}

/* The last result of what was sent, as PQexec returns it (a COPY's start ends the wait). */
static PGresult *collect_results(struct pg_conn *c)
{
    PGresult *last = NULL, *r;
    for (;;) {
        if (await_input(c) < 0) { /* the connection is lost: its message is libpq's error message */
            PQclear(last);
            return NULL;
        }
        if ((r = PQgetResult(c->pg)) == NULL)
            break;
        PQclear(last);
        last = r;
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_COPY_OUT || st == PGRES_COPY_IN || st == PGRES_COPY_BOTH || PQstatus(c->pg) == CONNECTION_BAD)
            break;
    }
    return last;
}

/* PQexec (nparams < 0: one or more statements, no parameters) or PQexecParams, bounded in time. */
static PGresult *exec_bounded(struct pg_conn *c, const char *sql, int nparams, const char *const *values)
{
    c->stalled = 0;
    c->deadline = rb_monotonic_seconds() + (double)c->statement_timeout_ms / 1000.0 + STALL_GRACE_SECONDS;
    int sent = nparams < 0 ? PQsendQuery(c->pg, sql)
                           : PQsendQueryParams(c->pg, sql, nparams, NULL, values, NULL, NULL, 0);
    if (!sent)
        return NULL; /* the failure is the connection's message */
    return collect_results(c);
}

/* PQgetCopyData, waiting until the statement's deadline: > 0 a row, -1 the end, -2 a failure. */
static int get_copy_data(struct pg_conn *c, char **row)
{
    for (;;) {
        int n = PQgetCopyData(c->pg, row, 1);
        if (n != 0)
            return n;
        if (wait_readable(c) < 0)
            give_up_stalled(c);
        if (!PQconsumeInput(c->pg))
            return -2;
    }
}

static int run_setting(struct pg_conn *c, const char *sql)
{
    PGresult *r = exec_bounded(c, sql, -1, NULL);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    return ok;
}

static int apply_statement_timeout(struct pg_conn *c, long long ms)
{
    char sql[64];
    snprintf(sql, sizeof sql, "SET statement_timeout = %lld", ms);
    if (!run_setting(c, sql))
        return 0;
    c->statement_timeout_ms = ms;
    return 1;
}

static void push_seconds(lua_State *L, long long ms)
{
    if (ms % 1000 == 0)
        lua_pushinteger(L, (lua_Integer)(ms / 1000));
    else
        lua_pushnumber(L, (double)ms / 1000.0);
}

/* statement_timeout is an int of milliseconds on the server: at most about 24.8 days. */
#define MAX_TIMEOUT_SECONDS 2147483.0

static long long timeout_ms(lua_State *L, int index, double seconds)
{
    luaL_argcheck(L, seconds > 0 && seconds <= MAX_TIMEOUT_SECONDS, index,
                  "a timeout in seconds, more than 0 and at most 2147483");
    long long ms = (long long)ceil(seconds * 1000);
    return ms < 1 ? 1 : ms;
}

struct connect_params {
    const char *keywords[24];
    const char *values[24];
    int n;
};

static void add_param(struct connect_params *cp, const char *keyword, const char *value)
{
    if (value && cp->n < (int)(sizeof cp->keywords / sizeof cp->keywords[0]) - 1) {
        cp->keywords[cp->n] = keyword;
        cp->values[cp->n] = value;
        cp->n++;
    }
}

static const char *opt_string_field(lua_State *L, int opts, const char *field)
{
    if (lua_isnoneornil(L, opts))
        return NULL;
    lua_getfield(L, opts, field);
    const char *s = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
    lua_pop(L, 1); /* the string stays alive: the options table holds it */
    return s;
}

static double opt_number_field(lua_State *L, int opts, const char *field, double fallback)
{
    if (lua_isnoneornil(L, opts))
        return fallback;
    lua_getfield(L, opts, field);
    double v = lua_isnil(L, -1) ? fallback : luaL_checknumber(L, -1);
    lua_pop(L, 1);
    return v;
}

static int connect_failure(lua_State *L, struct pg_conn *c)
{
    int n = push_failure(L, PQerrorMessage(c->pg), "connection");
    conn_release(c);
    return n;
}

/* connect(conninfo_or_url, {connect_timeout=, sslmode=, application_name=, statement_timeout=})
 * -> conn | nil, message, {kind="connection"}
 * Keywords before dbname are defaults the connection string may override; those after it override it. */
static int core_connect(lua_State *L)
{
    const char *conninfo = luaL_optstring(L, 1, "");
    const int opts = 2;
    if (rb_dynlib_load(&rb_libpq) != 0) /* opened on first use: see dynlib.h */
        return push_failure(L, rb_libpq.error, "connection");
    if (!lua_isnoneornil(L, opts))
        luaL_checktype(L, opts, LUA_TTABLE);
    char connect_timeout[32] = "";
    double connect_seconds = opt_number_field(L, opts, "connect_timeout", 0);
    if (connect_seconds != 0) {
        luaL_argcheck(L, connect_seconds >= 1 && connect_seconds <= 3600, opts,
                      "connect_timeout: seconds between 1 and 3600");
        snprintf(connect_timeout, sizeof connect_timeout, "%d", (int)ceil(connect_seconds));
    }
    long long statement_ms = timeout_ms(L, opts, opt_number_field(L, opts, "statement_timeout",
                                                                  DEFAULT_STATEMENT_TIMEOUT_MS / 1000.0));

    struct connect_params cp = {.n = 0};
    add_param(&cp, "fallback_application_name", "runbook");
    /* PGCONNECT_TIMEOUT is libpq's to read: a default here would hide it. */
    add_param(&cp, "connect_timeout", getenv("PGCONNECT_TIMEOUT") ? NULL : "10");
    /* Keepalives find a dead peer while we wait for an answer; tcp_user_timeout ends a send that is
     * never acknowledged. Together with statement_timeout, no call waits forever. */
    add_param(&cp, "keepalives", "1");
    add_param(&cp, "keepalives_idle", "30");
    add_param(&cp, "keepalives_interval", "10");
    add_param(&cp, "keepalives_count", "3");
    add_param(&cp, "tcp_user_timeout", "60000");
    add_param(&cp, "dbname", conninfo);
    add_param(&cp, "connect_timeout", connect_timeout[0] ? connect_timeout : NULL);
    add_param(&cp, "sslmode", opt_string_field(L, opts, "sslmode"));
    add_param(&cp, "application_name", opt_string_field(L, opts, "application_name"));
    add_param(&cp, "client_encoding", "UTF8"); /* parameters and results are UTF-8, like JSON */
    cp.keywords[cp.n] = NULL;
    cp.values[cp.n] = NULL;

    struct pg_conn *c = lua_newuserdatauv(L, sizeof *c, 0);
    memset(c, 0, sizeof *c);
    luaL_setmetatable(L, CONN_META);
    c->pg = PQconnectdbParams(cp.keywords, cp.values, 1);
    if (c->pg == NULL)
        return push_failure(L, "out of memory connecting to PostgreSQL", "connection");
    if (PQstatus(c->pg) != CONNECTION_OK)
        return connect_failure(L, c);
    PQsetNoticeReceiver(c->pg, on_notice, c);
    c->statement_timeout_ms = statement_ms; /* bounds the wait for the SET itself */
    if (!apply_statement_timeout(c, statement_ms))
        return connect_failure(L, c);
    snprintf(c->label, sizeof c->label, "%s@%s:%s/%s", PQuser(c->pg), PQhost(c->pg), PQport(c->pg), PQdb(c->pg));
    return 1;
}

/* ------------------------------------------------------------------------------------------------
 * The guard around one statement */

static int phase_is_guarded(void)
{
    enum rb_phase phase = rb_phase_get();
    return phase == RB_PHASE_PLAN || phase == RB_PHASE_READONLY;
}

/* Raises the phase's refusal (counted). Only called in guarded phases, where it never returns. */
static int refuse(lua_State *L, const char *what)
{
    rb_phase_require_mutation(L, what);
    return luaL_error(L, "refused: %s", what);
}

static void refuse_if_forbidden(lua_State *L, const char *sql, size_t len)
{
    char why[256];
    if (rb_pg_guard_reason(sql, len, why, sizeof why))
        refuse(L, why);
}

static void rollback_if_open(struct pg_conn *c)
{
    PGTransactionStatusType ts = PQtransactionStatus(c->pg);
    if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR)
        run_setting(c, "ROLLBACK");
}

/* START TRANSACTION READ ONLY, then a snapshot: once a query has run, PostgreSQL refuses to make the
 * transaction read-write (SET TRANSACTION READ WRITE fails with 25001). NOT DEFERRABLE: a site whose
 * default is SERIALIZABLE DEFERRABLE would otherwise make the snapshot wait. Leaves any failure in h. */
static int begin_read_only(struct pg_conn *c, struct result_holder *h)
{
    holder_set(h, exec_bounded(c, "START TRANSACTION READ ONLY, NOT DEFERRABLE; SELECT 1", -1, NULL));
    if (PQresultStatus(h->res) == PGRES_TUPLES_OK && PQtransactionStatus(c->pg) == PQTRANS_INTRANS) {
        holder_set(h, NULL);
        return 1;
    }
    rollback_if_open(c);
    return 0;
}

/* The guard around one statement, from guard_enter to guard_leave. */
struct guard {
    int on;     /* the phase is guarded */
    int opened; /* the read-only transaction is the statement's own, to be rolled back after it */
};

/* Before a statement: pushes the holder of its result (*h). In a guarded phase, first the statement check
 * (raising its refusal), then the read-only transaction the statement runs in (its own, or its transaction()
 * block's). Returns 0 with the failure in *h when that transaction cannot be opened. */
static int guard_enter(lua_State *L, struct pg_conn *c, const char *sql, size_t len, struct result_holder **h,
                       struct guard *g)
{
    g->on = phase_is_guarded();
    g->opened = 0;
    if (g->on)
        refuse_if_forbidden(L, sql, len);
    *h = new_holder(L);
    if (!g->on)
        return 1;
    if (PQstatus(c->pg) != CONNECTION_OK)
        return 0; /* (*h)->res stays NULL: the failure is the connection's message */
    if (c->block == BLOCK_GUARDED)
        return 1;
    if (c->block == BLOCK_OPEN || PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        refuse(L, "SQL in a transaction opened while changes were allowed (it is not read-only)");
    if (!begin_read_only(c, *h))
        return 0;
    g->opened = 1;
    return 1;
}

static int is_transaction_control_tag(const char *tag)
{
    static const char *const tags[] = {"BEGIN", "START TRANSACTION", "COMMIT", "ROLLBACK", "SAVEPOINT",
                                       "RELEASE", "PREPARE TRANSACTION", NULL};
    for (const char *const *t = tags; *t; t++)
        if (strncmp(tag, *t, strlen(*t)) == 0)
            return 1;
    return 0;
}

/* 1 unless the transaction is known to have become read-write. */
static int still_read_only(struct pg_conn *c)
{
    PGresult *r = exec_bounded(c, "SHOW transaction_read_only", -1, NULL);
    int read_only = PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 ||
                    strcmp(PQgetvalue(r, 0, 0), "on") == 0;
    PQclear(r);
    return read_only;
}

/* After a guarded statement: whether it broke out of the guard, and how. */
static int guard_violation(struct pg_conn *c, PGresult *res, const char *keyword, char *why, size_t size)
{
    const char *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (sqlstate && strcmp(sqlstate, "25006") == 0) {
        snprintf(why, size, "SQL %s (%s)", keyword, primary ? primary : "it writes");
        return 1;
    }
    if (sqlstate && strcmp(sqlstate, "25001") == 0) {
        snprintf(why, size, "SQL %s (%s; it cannot run in the read-only transaction that guards this phase)",
                 keyword, primary ? primary : "active transaction");
        return 1;
    }
    if (res && PQresultStatus(res) == PGRES_COMMAND_OK && is_transaction_control_tag(PQcmdStatus(res))) {
        snprintf(why, size, "SQL %s (transaction control; use conn:transaction())", PQcmdStatus(res));
        return 1;
    }
    PGTransactionStatusType ts = PQtransactionStatus(c->pg);
    if (ts == PQTRANS_IDLE) {
        snprintf(why, size, "SQL %s (it ended the read-only transaction that guards this phase)", keyword);
        return 1;
    }
    if (ts == PQTRANS_INTRANS && !still_read_only(c)) {
        snprintf(why, size, "SQL %s (it made the transaction read-write)", keyword);
        return 1;
    }
    return 0;
}

/* After a statement, in a guarded phase: refuses (rolling back first) if it broke out, else rolls back its
 * own transaction. Leaves h alone unless it refuses. */
static void guard_leave(lua_State *L, struct pg_conn *c, struct result_holder *h, const char *sql,
                        const struct guard *g)
{
    if (!g->on)
        return;
    char keyword[32], why[400];
    rb_pg_statement_keyword(sql, keyword, sizeof keyword);
    int violated = guard_violation(c, h->res, keyword, why, sizeof why);
    if (g->opened || violated)
        rollback_if_open(c);
    if (violated) {
        c->block = BLOCK_NONE; /* a block the statement broke is over: it was rolled back */
        holder_set(h, NULL);
        refuse(L, why);
    }
}

/* ------------------------------------------------------------------------------------------------
 * Statements */

static void format_float_param(char *buf, size_t size, double v)
{
    if (isnan(v))
        snprintf(buf, size, "NaN");
    else if (isinf(v))
        snprintf(buf, size, v > 0 ? "Infinity" : "-Infinity");
    else {
        snprintf(buf, size, "%.15g", v);
        if (strtod(buf, NULL) != v)
            snprintf(buf, size, "%.17g", v);
    }
}

/* Turns parameter `index` into text in place (nil stays nil: SQL NULL). */
static void normalize_param(lua_State *L, int index)
{
    char buf[64];
    switch (lua_type(L, index)) {
    case LUA_TNIL:
        return;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, index, &len);
        if (memchr(s, '\0', len))
            luaL_argerror(L, index, "text parameters cannot contain NUL bytes");
        return;
    }
    case LUA_TBOOLEAN:
        lua_pushstring(L, lua_toboolean(L, index) ? "true" : "false");
        break;
    case LUA_TNUMBER:
        if (lua_isinteger(L, index))
            snprintf(buf, sizeof buf, "%lld", (long long)lua_tointeger(L, index));
        else
            format_float_param(buf, sizeof buf, lua_tonumber(L, index));
        lua_pushstring(L, buf);
        break;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, index) == NULL) { /* cjson.null, json.null */
            lua_pushnil(L);
            break;
        }
        /* fall through */
    default:
        luaL_argerror(L, index, lua_pushfstring(L, "cannot pass a %s as a SQL parameter", luaL_typename(L, index)));
        return;
    }
    lua_replace(L, index);
}

/* Parameters first..first+n-1 as text pointers (they stay on the stack while the statement runs). */
static const char **param_values(lua_State *L, int first, int n)
{
    for (int i = 0; i < n; i++)
        normalize_param(L, first + i);
    const char **values = lua_newuserdatauv(L, sizeof *values * (size_t)(n > 0 ? n : 1), 0);
    for (int i = 0; i < n; i++)
        values[i] = lua_tostring(L, first + i);
    return values;
}

/* Reads and drops the rest of a COPY TO STDOUT. Returns -1 when it ended, -2 on failure. */
static int drain_copy_out(struct pg_conn *c)
{
    char *row = NULL;
    int n;
    while ((n = get_copy_data(c, &row)) > 0)
        PQfreemem(row);
    return n;
}

/* Asks the server to stop the running statement. PQcancel opens its own short connection. */
static void cancel_statement(PGconn *pg)
{
    PGcancel *cancel = PQgetCancel(pg);
    if (cancel) {
        char error[256];
        PQcancel(cancel, error, sizeof error);
        PQfreeCancel(cancel);
    }
}

/* The statement's final result after its COPY data: the last PQgetResult before NULL. */
static PGresult *final_result(struct pg_conn *c)
{
    return collect_results(c); /* stops at a COPY status, which cannot come after the copy ended */
}

/* A statement that began a COPY the caller did not ask for: end it without moving any data. */
static void end_unwanted_copy(struct pg_conn *c, struct result_holder *h)
{
    ExecStatusType st = PQresultStatus(h->res);
    holder_set(h, NULL);
    if (st == PGRES_COPY_IN) {
        PQputCopyEnd(c->pg, "runbook.pg sends no COPY data");
    } else {
        cancel_statement(c->pg);
        drain_copy_out(c);
    }
    holder_set(h, final_result(c));
}

static int is_copy_status(const PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    return st == PGRES_COPY_OUT || st == PGRES_COPY_IN || st == PGRES_COPY_BOTH;
}

/* exec(conn, sql, ...) -> rows, columns, json_columns | affected, tag | nil, message, details
 * One statement with $1... parameters (nil is NULL). In read-only phases it runs under the guard. */
/* libpq reads the SQL up to its first NUL byte: the server would run less than the guard checked. */
static const char *check_sql(lua_State *L, int index, size_t *len)
{
    const char *sql = luaL_checklstring(L, index, len);
    luaL_argcheck(L, memchr(sql, '\0', *len) == NULL, index, "SQL text cannot contain NUL bytes");
    return sql;
}

static int core_exec(lua_State *L)
{
    struct pg_conn *c = check_conn(L, 1);
    size_t sql_len;
    const char *sql = check_sql(L, 2, &sql_len);
    int nparams = lua_gettop(L) - 2;
    luaL_argcheck(L, nparams <= MAX_PARAMS, 2, "too many parameters");
    const char **values = param_values(L, 3, nparams);
    struct result_holder *h;
    struct guard guard;
    if (!guard_enter(L, c, sql, sql_len, &h, &guard))
        return push_statement_result(L, c, h);
    holder_set(h, exec_bounded(c, sql, nparams, values));
    int unwanted_copy = h->res && is_copy_status(h->res);
    if (unwanted_copy)
        end_unwanted_copy(c, h);
    guard_leave(L, c, h, sql, &guard);
    if (unwanted_copy) {
        holder_set(h, NULL);
        return luaL_error(L, "conn:query cannot run COPY ... TO STDOUT or FROM STDIN; use conn:copy_to");
    }
    return push_statement_result(L, c, h);
}

/* ------------------------------------------------------------------------------------------------
 * COPY TO STDOUT, streamed to a Lua writer in chunks: memory stays flat whatever the table's size. */

enum writer_outcome { WRITER_OK, WRITER_FAILED, WRITER_RAISED };

struct copy_progress {
    lua_Integer rows, bytes;
    enum writer_outcome outcome;
    int error_index; /* where the writer's message or error object is, when it failed */
};

/* Calls writer(chunk) with the chunk on top of the stack. A failure leaves its message (nil, message)
 * or error object on the stack and records where. */
static int call_writer(lua_State *L, int writer, struct copy_progress *pr)
{
    size_t len = lua_rawlen(L, -1);
    lua_pushvalue(L, writer);
    lua_insert(L, -2);
    if (lua_pcall(L, 1, 2, 0) != LUA_OK) {
        pr->outcome = WRITER_RAISED;
        pr->error_index = lua_gettop(L);
        return 0;
    }
    if (!lua_toboolean(L, -2)) {
        if (!lua_isstring(L, -1)) {
            lua_pop(L, 1);
            lua_pushliteral(L, "the writer did not accept the data");
        }
        lua_remove(L, -2);
        pr->outcome = WRITER_FAILED;
        pr->error_index = lua_gettop(L);
        return 0;
    }
    lua_pop(L, 2);
    pr->bytes += (lua_Integer)len;
    return 1;
}

/* Moves the COPY data to the writer. When the writer fails, the server is asked to stop and the rest is
 * read and dropped, so the connection is usable again. */
static void stream_copy(lua_State *L, struct pg_conn *c, int writer, struct copy_progress *pr)
{
    char *chunk = lua_newuserdatauv(L, COPY_CHUNK, 0);
    size_t used = 0;
    for (;;) {
        char *row = NULL;
        int n = get_copy_data(c, &row);
        if (n < 0)
            break; /* -1: the end; -2: a failure, which the final result reports */
        pr->rows++;
        if (used > 0 && used + (size_t)n > COPY_CHUNK) {
            lua_pushlstring(L, chunk, used);
            used = 0;
            if (!call_writer(L, writer, pr)) {
                PQfreemem(row);
                goto stop;
            }
        }
        if ((size_t)n > COPY_CHUNK) { /* a row larger than a chunk goes on its own */
            lua_pushlstring(L, row, (size_t)n);
            PQfreemem(row);
            if (!call_writer(L, writer, pr))
                goto stop;
            continue;
        }
        memcpy(chunk + used, row, (size_t)n);
        used += (size_t)n;
        PQfreemem(row);
    }
    if (used > 0) {
        lua_pushlstring(L, chunk, used);
        call_writer(L, writer, pr); /* all data has arrived: nothing left to stop */
    }
    return;
stop:
    cancel_statement(c->pg);
    drain_copy_out(c);
}

/* copy_out(conn, sql, writer) -> rows, bytes | nil, message, details
 * sql must be COPY ... TO STDOUT; writer(chunk) -> true | nil, message. An error raised by the writer is
 * raised again once the connection is back in order. */
static int core_copy_out(lua_State *L)
{
    struct pg_conn *c = check_conn(L, 1);
    size_t sql_len;
    const char *sql = check_sql(L, 2, &sql_len);
    luaL_checktype(L, 3, LUA_TFUNCTION);
    lua_settop(L, 3);
    if (!rb_pg_is_copy_to_stdout(sql, sql_len))
        return luaL_error(L, "copy_to needs a COPY ... TO STDOUT statement");
    struct result_holder *h;
    struct guard guard;
    if (!guard_enter(L, c, sql, sql_len, &h, &guard))
        return push_statement_result(L, c, h);
    holder_set(h, exec_bounded(c, sql, 0, NULL));
    struct copy_progress pr = {0, 0, WRITER_OK, 0};
    if (h->res && PQresultStatus(h->res) == PGRES_COPY_OUT) {
        holder_set(h, NULL);
        stream_copy(L, c, 3, &pr);
        holder_set(h, final_result(c));
    } else if (h->res && is_copy_status(h->res)) {
        end_unwanted_copy(c, h);
    }
    guard_leave(L, c, h, sql, &guard);
    if (pr.outcome == WRITER_RAISED) {
        holder_set(h, NULL);
        lua_pushvalue(L, pr.error_index);
        return lua_error(L);
    }
    if (pr.outcome == WRITER_FAILED) {
        holder_set(h, NULL);
        lua_pushnil(L);
        lua_pushvalue(L, pr.error_index);
        lua_createtable(L, 0, 1);
        set_string_field(L, "kind", "write");
        return 3;
    }
    if (!h->res || PQresultStatus(h->res) != PGRES_COMMAND_OK)
        return push_statement_result(L, c, h);
    const char *count = PQcmdTuples(h->res);
    lua_pushinteger(L, *count ? (lua_Integer)strtoll(count, NULL, 10) : pr.rows);
    lua_pushinteger(L, pr.bytes);
    holder_set(h, NULL);
    return 2;
}

/* ------------------------------------------------------------------------------------------------
 * Transaction blocks: begin() and finish(commit) around a Lua function (conn:transaction in pg.lua). */

/* begin(conn) -> true | nil, message, details. Read-only phases get a READ ONLY transaction. */
static int core_begin(lua_State *L)
{
    struct pg_conn *c = check_conn(L, 1);
    if (PQstatus(c->pg) != CONNECTION_OK) /* a lost connection is a failure, not an open transaction */
        return push_failure(L, PQerrorMessage(c->pg), "connection");
    if (c->block != BLOCK_NONE || PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        return luaL_error(L, "a transaction is already open on this connection (transactions do not nest)");
    struct result_holder *h = new_holder(L);
    if (phase_is_guarded()) {
        if (!begin_read_only(c, h))
            return push_statement_result(L, c, h);
        c->block = BLOCK_GUARDED;
    } else {
        holder_set(h, exec_bounded(c, "BEGIN", -1, NULL));
        if (PQresultStatus(h->res) != PGRES_COMMAND_OK)
            return push_statement_result(L, c, h);
        holder_set(h, NULL);
        c->block = BLOCK_OPEN;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* finish(conn, commit) -> true | nil, message, details. A read-only block always rolls back: it has
 * nothing to keep, and whatever a statement might have slipped through is dropped. */
static int core_finish(lua_State *L)
{
    struct pg_conn *c = check_conn(L, 1);
    int commit = lua_toboolean(L, 2);
    enum block_kind block = c->block;
    c->block = BLOCK_NONE;
    if (block != BLOCK_OPEN || !commit) {
        rollback_if_open(c);
        lua_pushboolean(L, 1);
        return 1;
    }
    struct result_holder *h = new_holder(L);
    holder_set(h, exec_bounded(c, "COMMIT", -1, NULL));
    if (PQresultStatus(h->res) != PGRES_COMMAND_OK)
        return push_statement_result(L, c, h);
    /* COMMIT of a transaction in which a statement failed answers ROLLBACK, without an error. */
    if (strcmp(PQcmdStatus(h->res), "ROLLBACK") == 0) {
        holder_set(h, NULL);
        lua_pushnil(L);
        lua_pushliteral(L, "the transaction was rolled back: a statement in it had failed");
        lua_createtable(L, 0, 2);
        set_string_field(L, "sqlstate", "25P02");
        set_string_field(L, "kind", "server");
        return 3;
    }
    holder_set(h, NULL);
    lua_pushboolean(L, 1);
    return 1;
}

/* ------------------------------------------------------------------------------------------------
 * Connection methods */

static int conn_escape(lua_State *L, int identifier)
{
    struct pg_conn *c = check_conn(L, 1);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    /* libpq would silently stop at a NUL byte: a shortened literal is worse than an error. */
    luaL_argcheck(L, memchr(s, '\0', len) == NULL, 2, "cannot contain NUL bytes");
    char *escaped = identifier ? PQescapeIdentifier(c->pg, s, len) : PQescapeLiteral(c->pg, s, len);
    if (escaped == NULL)
        return push_failure(L, PQerrorMessage(c->pg), "input");
    lua_pushstring(L, escaped);
    PQfreemem(escaped);
    return 1;
}

static int conn_escape_literal(lua_State *L)
{
    return conn_escape(L, 0);
}

static int conn_escape_identifier(lua_State *L)
{
    return conn_escape(L, 1);
}

/* notices() -> {{severity=, message=, sqlstate=, detail=, hint=}, ..., dropped=n}; clears them. */
static int conn_notices(lua_State *L)
{
    struct pg_conn *c = check_conn(L, 1);
    lua_createtable(L, c->notice_count, 1);
    lua_Integer i = 0;
    for (struct notice *n = c->notices; n; n = n->next) {
        lua_createtable(L, 0, 5);
        set_string_field(L, "severity", n->severity);
        set_string_field(L, "sqlstate", n->sqlstate);
        set_string_field(L, "message", n->message ? n->message : "");
        set_string_field(L, "detail", n->detail);
        set_string_field(L, "hint", n->hint);
        lua_rawseti(L, -2, ++i);
    }
    if (c->notices_dropped > 0) {
        lua_pushinteger(L, c->notices_dropped);
        lua_setfield(L, -2, "dropped");
    }
    free_notices(c);
    return 1;
}

/* info() -> {user=, host=, port=, dbname=, server_version=, backend_pid=, ssl=, label=} */
static int conn_info(lua_State *L)
{
    struct pg_conn *c = check_conn(L, 1);
    lua_createtable(L, 0, 8);
    set_string_field(L, "user", PQuser(c->pg));
    set_string_field(L, "host", PQhost(c->pg));
    set_string_field(L, "port", PQport(c->pg));
    set_string_field(L, "dbname", PQdb(c->pg));
    set_string_field(L, "label", c->label);
    lua_pushinteger(L, PQserverVersion(c->pg));
    lua_setfield(L, -2, "server_version");
    lua_pushinteger(L, PQbackendPID(c->pg));
    lua_setfield(L, -2, "backend_pid");
    lua_pushboolean(L, PQsslInUse(c->pg));
    lua_setfield(L, -2, "ssl");
    push_seconds(L, c->statement_timeout_ms);
    lua_setfield(L, -2, "statement_timeout");
    return 1;
}

/* set_statement_timeout(seconds) -> previous seconds | nil, message. Outside transactions only: a SET
 * inside one would be undone by its rollback. */
static int conn_set_statement_timeout(lua_State *L)
{
    struct pg_conn *c = check_conn(L, 1);
    long long ms = timeout_ms(L, 2, luaL_checknumber(L, 2));
    if (PQstatus(c->pg) != CONNECTION_OK)
        return push_failure(L, PQerrorMessage(c->pg), "connection");
    if (c->block != BLOCK_NONE || PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        return luaL_error(L, "set_statement_timeout cannot be called inside a transaction");
    long long previous = c->statement_timeout_ms;
    if (!apply_statement_timeout(c, ms))
        return push_failure(L, PQerrorMessage(c->pg), "connection");
    push_seconds(L, previous);
    return 1;
}

static int conn_tostring(lua_State *L)
{
    struct pg_conn *c = luaL_checkudata(L, 1, CONN_META);
    if (c->pg)
        lua_pushfstring(L, "PostgreSQL connection %s", c->label);
    else
        lua_pushliteral(L, "PostgreSQL connection (closed)");
    return 1;
}

/* ------------------------------------------------------------------------------------------------
 * Helpers without a connection */

/* conninfo_secrets(conninfo_or_url) -> {password, sslpassword...} (may be empty) | nil, message:
 * the values to scrub from every message. */
static int core_conninfo_secrets(lua_State *L)
{
    const char *conninfo = luaL_checkstring(L, 1);
    if (rb_dynlib_load(&rb_libpq) != 0) {
        lua_pushnil(L);
        push_message(L, rb_libpq.error);
        return 2;
    }
    char *error = NULL;
    PQconninfoOption *options = PQconninfoParse(conninfo, &error);
    if (options == NULL) {
        lua_pushnil(L);
        push_message(L, error ? error : "out of memory");
        PQfreemem(error);
        return 2;
    }
    lua_newtable(L);
    lua_Integer n = 0;
    for (PQconninfoOption *o = options; o->keyword; o++) {
        int secret = strcmp(o->keyword, "password") == 0 || strcmp(o->keyword, "sslpassword") == 0;
        if (secret && o->val && *o->val) {
            lua_pushstring(L, o->val);
            lua_rawseti(L, -2, ++n);
        }
    }
    PQconninfoFree(options);
    return 1;
}

/* guard_reason(sql) -> reason | nil: why the guard refuses sql in read-only phases before sending it. */
static int core_guard_reason(lua_State *L)
{
    size_t len;
    const char *sql = luaL_checklstring(L, 1, &len);
    char why[256];
    if (!rb_pg_guard_reason(sql, len, why, sizeof why))
        return 0;
    lua_pushstring(L, why);
    return 1;
}

/* parse_array(text, kind) -> table | nil, message. kind: "text", "integer", "float", "boolean". */
static int core_parse_array(lua_State *L)
{
    static const char *const kinds[] = {"text", "integer", "float", "boolean", NULL};
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    enum rb_pg_element kind = (enum rb_pg_element)luaL_checkoption(L, 2, "text", kinds);
    const char *error = NULL;
    size_t offset = 0;
    if (rb_pg_parse_array(L, text, len, kind, &error, &offset) == 0)
        return 1;
    lua_pushnil(L);
    lua_pushfstring(L, "malformed array literal: %s at position %d", error, (int)offset + 1);
    return 2;
}

/* mask_literals(sql) -> sql with every string literal's contents replaced by "...", for logs. */
static int core_mask_literals(lua_State *L)
{
    size_t len;
    const char *sql = luaL_checklstring(L, 1, &len);
    rb_pg_push_masked_literals(L, sql, len, lua_toboolean(L, 2));
    return 1;
}

static int core_library_version(lua_State *L)
{
    lua_pushinteger(L, PQlibVersion());
    return 1;
}

static const luaL_Reg core_functions[] = {
    {"connect", core_connect},
    {"exec", core_exec},
    {"copy_out", core_copy_out},
    {"begin", core_begin},
    {"finish", core_finish},
    {"conninfo_secrets", core_conninfo_secrets},
    {"guard_reason", core_guard_reason},
    {"parse_array", core_parse_array},
    {"mask_literals", core_mask_literals},
    {"library_version", core_library_version},
    {NULL, NULL},
};

static const luaL_Reg conn_methods[] = {
    {"close", conn_close},
    {"escape_literal", conn_escape_literal},
    {"escape_identifier", conn_escape_identifier},
    {"notices", conn_notices},
    {"info", conn_info},
    {"set_statement_timeout", conn_set_statement_timeout},
    {NULL, NULL},
};

/* The module table; `methods` is the connection's __index table, which runbook.pg extends in Lua. */
int luaopen_runbook_pg_core(lua_State *L)
{
    luaL_newmetatable(L, RESULT_META);
    lua_pushcfunction(L, result_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);

    luaL_newmetatable(L, CONN_META);
    luaL_newlib(L, conn_methods);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "__index");
    lua_pushcfunction(L, conn_close);
    lua_setfield(L, -3, "__gc");
    lua_pushcfunction(L, conn_close);
    lua_setfield(L, -3, "__close");
    lua_pushcfunction(L, conn_tostring);
    lua_setfield(L, -3, "__tostring");

    luaL_newlib(L, core_functions);
    lua_insert(L, -2);
    lua_setfield(L, -2, "methods");
    lua_remove(L, -2); /* the metatable */
    return 1;
}
