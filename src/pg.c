/* runbook.pg_core: statements on PostgreSQL (libpq), and the guard that keeps planning read-only; COPY TO
 * STDOUT and transaction blocks. The library table is here; its parts have files of their own: the connection
 * (pg_conn.c), results (pg_result.c), the guard's statement check (pg_guard.c), array literals (pg_array.c).
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
#include <libpq-fe.h>
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bindings.h"
#include "dynlib.h"
#include "pg_array.h"
#include "pg_conn.h"
#include "pg_guard.h"
#include "pg_result.h"
#include "phase.h"

#define MAX_PARAMS 65535      /* the protocol's limit */
#define COPY_CHUNK (64 * 1024) /* COPY rows are handed to the writer in chunks of about this size */

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
        rb_pg_run_setting(c, "ROLLBACK");
}

/* START TRANSACTION READ ONLY, then a snapshot: once a query has run, PostgreSQL refuses to make the
 * transaction read-write (SET TRANSACTION READ WRITE fails with 25001). NOT DEFERRABLE: a site whose
 * default is SERIALIZABLE DEFERRABLE would otherwise make the snapshot wait. Leaves any failure in h. */
static int begin_read_only(struct pg_conn *c, struct result_holder *h)
{
    rb_pg_holder_set(h, rb_pg_exec_bounded(c, "START TRANSACTION READ ONLY, NOT DEFERRABLE; SELECT 1", -1, NULL));
    if (PQresultStatus(h->res) == PGRES_TUPLES_OK && PQtransactionStatus(c->pg) == PQTRANS_INTRANS) {
        rb_pg_holder_set(h, NULL);
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
    *h = rb_pg_new_holder(L);
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
    PGresult *r = rb_pg_exec_bounded(c, "SHOW transaction_read_only", -1, NULL);
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
        rb_pg_holder_set(h, NULL);
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
    while ((n = rb_pg_get_copy_data(c, &row)) > 0)
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
    return rb_pg_collect_results(c); /* stops at a COPY status, which cannot come after the copy ended */
}

/* A statement that began a COPY the caller did not ask for: end it without moving any data. */
static void end_unwanted_copy(struct pg_conn *c, struct result_holder *h)
{
    ExecStatusType st = PQresultStatus(h->res);
    rb_pg_holder_set(h, NULL);
    if (st == PGRES_COPY_IN) {
        PQputCopyEnd(c->pg, "runbook.pg sends no COPY data");
    } else {
        cancel_statement(c->pg);
        drain_copy_out(c);
    }
    rb_pg_holder_set(h, final_result(c));
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
    struct pg_conn *c = rb_pg_check_conn(L, 1);
    size_t sql_len;
    const char *sql = check_sql(L, 2, &sql_len);
    int nparams = lua_gettop(L) - 2;
    luaL_argcheck(L, nparams <= MAX_PARAMS, 2, "too many parameters");
    const char **values = param_values(L, 3, nparams);
    struct result_holder *h;
    struct guard guard;
    if (!guard_enter(L, c, sql, sql_len, &h, &guard))
        return rb_pg_push_statement_result(L, c, h);
    rb_pg_holder_set(h, rb_pg_exec_bounded(c, sql, nparams, values));
    int unwanted_copy = h->res && is_copy_status(h->res);
    if (unwanted_copy)
        end_unwanted_copy(c, h);
    guard_leave(L, c, h, sql, &guard);
    if (unwanted_copy) {
        rb_pg_holder_set(h, NULL);
        return luaL_error(L, "conn:query cannot run COPY ... TO STDOUT or FROM STDIN; use conn:copy_to");
    }
    return rb_pg_push_statement_result(L, c, h);
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
        int n = rb_pg_get_copy_data(c, &row);
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
    struct pg_conn *c = rb_pg_check_conn(L, 1);
    size_t sql_len;
    const char *sql = check_sql(L, 2, &sql_len);
    luaL_checktype(L, 3, LUA_TFUNCTION);
    lua_settop(L, 3);
    if (!rb_pg_is_copy_to_stdout(sql, sql_len))
        return luaL_error(L, "copy_to needs a COPY ... TO STDOUT statement");
    struct result_holder *h;
    struct guard guard;
    if (!guard_enter(L, c, sql, sql_len, &h, &guard))
        return rb_pg_push_statement_result(L, c, h);
    rb_pg_holder_set(h, rb_pg_exec_bounded(c, sql, 0, NULL));
    struct copy_progress pr = {0, 0, WRITER_OK, 0};
    if (h->res && PQresultStatus(h->res) == PGRES_COPY_OUT) {
        rb_pg_holder_set(h, NULL);
        stream_copy(L, c, 3, &pr);
        rb_pg_holder_set(h, final_result(c));
    } else if (h->res && is_copy_status(h->res)) {
        end_unwanted_copy(c, h);
    }
    guard_leave(L, c, h, sql, &guard);
    if (pr.outcome == WRITER_RAISED) {
        rb_pg_holder_set(h, NULL);
        lua_pushvalue(L, pr.error_index);
        return lua_error(L);
    }
    if (pr.outcome == WRITER_FAILED) {
        rb_pg_holder_set(h, NULL);
        lua_pushnil(L);
        lua_pushvalue(L, pr.error_index);
        lua_createtable(L, 0, 1);
        rb_pg_set_string_field(L, "kind", "write");
        return 3;
    }
    if (!h->res || PQresultStatus(h->res) != PGRES_COMMAND_OK)
        return rb_pg_push_statement_result(L, c, h);
    const char *count = PQcmdTuples(h->res);
    lua_pushinteger(L, *count ? (lua_Integer)strtoll(count, NULL, 10) : pr.rows);
    lua_pushinteger(L, pr.bytes);
    rb_pg_holder_set(h, NULL);
    return 2;
}

/* ------------------------------------------------------------------------------------------------
 * Transaction blocks: begin() and finish(commit) around a Lua function (conn:transaction in pg.lua). */

/* begin(conn) -> true | nil, message, details. Read-only phases get a READ ONLY transaction. */
static int core_begin(lua_State *L)
{
    struct pg_conn *c = rb_pg_check_conn(L, 1);
    if (PQstatus(c->pg) != CONNECTION_OK) /* a lost connection is a failure, not an open transaction */
        return rb_pg_push_failure(L, PQerrorMessage(c->pg), "connection");
    if (c->block != BLOCK_NONE || PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        return luaL_error(L, "a transaction is already open on this connection (transactions do not nest)");
    struct result_holder *h = rb_pg_new_holder(L);
    if (phase_is_guarded()) {
        if (!begin_read_only(c, h))
            return rb_pg_push_statement_result(L, c, h);
        c->block = BLOCK_GUARDED;
    } else {
        rb_pg_holder_set(h, rb_pg_exec_bounded(c, "BEGIN", -1, NULL));
        if (PQresultStatus(h->res) != PGRES_COMMAND_OK)
            return rb_pg_push_statement_result(L, c, h);
        rb_pg_holder_set(h, NULL);
        c->block = BLOCK_OPEN;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* finish(conn, commit) -> true | nil, message, details. A read-only block always rolls back: it has
 * nothing to keep, and whatever a statement might have slipped through is dropped. */
static int core_finish(lua_State *L)
{
    struct pg_conn *c = rb_pg_check_conn(L, 1);
    int commit = lua_toboolean(L, 2);
    enum block_kind block = c->block;
    c->block = BLOCK_NONE;
    if (block != BLOCK_OPEN || !commit) {
        rollback_if_open(c);
        lua_pushboolean(L, 1);
        return 1;
    }
    struct result_holder *h = rb_pg_new_holder(L);
    rb_pg_holder_set(h, rb_pg_exec_bounded(c, "COMMIT", -1, NULL));
    if (PQresultStatus(h->res) != PGRES_COMMAND_OK)
        return rb_pg_push_statement_result(L, c, h);
    /* COMMIT of a transaction in which a statement failed answers ROLLBACK, without an error. */
    if (strcmp(PQcmdStatus(h->res), "ROLLBACK") == 0) {
        rb_pg_holder_set(h, NULL);
        lua_pushnil(L);
        lua_pushliteral(L, "the transaction was rolled back: a statement in it had failed");
        lua_createtable(L, 0, 2);
        rb_pg_set_string_field(L, "sqlstate", "25P02");
        rb_pg_set_string_field(L, "kind", "server");
        return 3;
    }
    rb_pg_holder_set(h, NULL);
    lua_pushboolean(L, 1);
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
        rb_pg_push_message(L, rb_libpq.error);
        return 2;
    }
    char *error = NULL;
    PQconninfoOption *options = PQconninfoParse(conninfo, &error);
    if (options == NULL) {
        lua_pushnil(L);
        rb_pg_push_message(L, error ? error : "out of memory");
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
    {"connect", rb_pg_connect},
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

/* The module table; `methods` is the connection's __index table, which runbook.pg extends in Lua. */
int luaopen_runbook_pg_core(lua_State *L)
{
    rb_pg_open_results(L);
    rb_pg_push_conn_methods(L);
    luaL_newlib(L, core_functions);
    lua_insert(L, -2);
    lua_setfield(L, -2, "methods");
    return 1;
}
