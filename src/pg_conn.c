/* runbook.pg_core's connections (the Conn type): connecting, waiting for the server within bounds, the
 * notices it sends, and the connection's methods. libpq never calls Lua: the notice receiver only copies
 * notices into C memory. */
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <libpq-fe.h>
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "dynlib.h"
#include "pg_conn.h"
#include "pg_result.h"

#define CONN_META "runbook.pg.Conn"
#define MAX_NOTICES 1000      /* kept per connection between two notices() calls; more are counted */
#define DEFAULT_STATEMENT_TIMEOUT_MS 300000LL

struct notice {
    struct notice *next;
    char *severity, *sqlstate, *message, *detail, *hint;
};

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

struct pg_conn *rb_pg_check_conn(lua_State *L, int index)
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
PGresult *rb_pg_collect_results(struct pg_conn *c)
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
PGresult *rb_pg_exec_bounded(struct pg_conn *c, const char *sql, int nparams, const char *const *values)
{
    c->stalled = 0;
    c->deadline = rb_monotonic_seconds() + (double)c->statement_timeout_ms / 1000.0 + STALL_GRACE_SECONDS;
    int sent = nparams < 0 ? PQsendQuery(c->pg, sql)
                           : PQsendQueryParams(c->pg, sql, nparams, NULL, values, NULL, NULL, 0);
    if (!sent)
        return NULL; /* the failure is the connection's message */
    return rb_pg_collect_results(c);
}

/* PQgetCopyData, waiting until the statement's deadline: > 0 a row, -1 the end, -2 a failure. */
int rb_pg_get_copy_data(struct pg_conn *c, char **row)
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

int rb_pg_run_setting(struct pg_conn *c, const char *sql)
{
    PGresult *r = rb_pg_exec_bounded(c, sql, -1, NULL);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    return ok;
}

static int apply_statement_timeout(struct pg_conn *c, long long ms)
{
    char sql[64];
    snprintf(sql, sizeof sql, "SET statement_timeout = %lld", ms);
    if (!rb_pg_run_setting(c, sql))
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
    int n = rb_pg_push_failure(L, PQerrorMessage(c->pg), "connection");
    conn_release(c);
    return n;
}

/* connect(conninfo_or_url, {connect_timeout=, sslmode=, application_name=, statement_timeout=})
 * -> conn | nil, message, {kind="connection"}
 * Keywords before dbname are defaults the connection string may override; those after it override it. */
int rb_pg_connect(lua_State *L)
{
    const char *conninfo = luaL_optstring(L, 1, "");
    const int opts = 2;
    if (rb_dynlib_load(&rb_libpq) != 0) /* opened on first use: see dynlib.h */
        return rb_pg_push_failure(L, rb_libpq.error, "connection");
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
        return rb_pg_push_failure(L, "out of memory connecting to PostgreSQL", "connection");
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
 * Connection methods */

static int conn_escape(lua_State *L, int identifier)
{
    struct pg_conn *c = rb_pg_check_conn(L, 1);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    /* libpq would silently stop at a NUL byte: a shortened literal is worse than an error. */
    luaL_argcheck(L, memchr(s, '\0', len) == NULL, 2, "cannot contain NUL bytes");
    char *escaped = identifier ? PQescapeIdentifier(c->pg, s, len) : PQescapeLiteral(c->pg, s, len);
    if (escaped == NULL)
        return rb_pg_push_failure(L, PQerrorMessage(c->pg), "input");
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
    struct pg_conn *c = rb_pg_check_conn(L, 1);
    lua_createtable(L, c->notice_count, 1);
    lua_Integer i = 0;
    for (struct notice *n = c->notices; n; n = n->next) {
        lua_createtable(L, 0, 5);
        rb_pg_set_string_field(L, "severity", n->severity);
        rb_pg_set_string_field(L, "sqlstate", n->sqlstate);
        rb_pg_set_string_field(L, "message", n->message ? n->message : "");
        rb_pg_set_string_field(L, "detail", n->detail);
        rb_pg_set_string_field(L, "hint", n->hint);
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
    struct pg_conn *c = rb_pg_check_conn(L, 1);
    lua_createtable(L, 0, 8);
    rb_pg_set_string_field(L, "user", PQuser(c->pg));
    rb_pg_set_string_field(L, "host", PQhost(c->pg));
    rb_pg_set_string_field(L, "port", PQport(c->pg));
    rb_pg_set_string_field(L, "dbname", PQdb(c->pg));
    rb_pg_set_string_field(L, "label", c->label);
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
    struct pg_conn *c = rb_pg_check_conn(L, 1);
    long long ms = timeout_ms(L, 2, luaL_checknumber(L, 2));
    if (PQstatus(c->pg) != CONNECTION_OK)
        return rb_pg_push_failure(L, PQerrorMessage(c->pg), "connection");
    if (c->block != BLOCK_NONE || PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        return luaL_error(L, "set_statement_timeout cannot be called inside a transaction");
    long long previous = c->statement_timeout_ms;
    if (!apply_statement_timeout(c, ms))
        return rb_pg_push_failure(L, PQerrorMessage(c->pg), "connection");
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

static const luaL_Reg conn_methods[] = {
    {"close", conn_close},
    {"escape_literal", conn_escape_literal},
    {"escape_identifier", conn_escape_identifier},
    {"notices", conn_notices},
    {"info", conn_info},
    {"set_statement_timeout", conn_set_statement_timeout},
    {NULL, NULL},
};

void rb_pg_push_conn_methods(lua_State *L)
{
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
    lua_remove(L, -2); /* the metatable */
}
