/* runbook.pg_core's connection (pg_conn.c), as the rest of pg_core uses it: the object, and the calls that
 * wait for the server within bounds (statement_timeout plus a grace: see pg_conn.c). */
#ifndef RUNBOOK_PG_CONN_H
#define RUNBOOK_PG_CONN_H
#include <libpq-fe.h>
#include <lua.h>

#define STALL_GRACE_SECONDS 5 /* after statement_timeout, for the server's answer to travel */

/* What a transaction() block on the connection is. */
enum block_kind {
    BLOCK_NONE,
    BLOCK_GUARDED, /* opened in a read-only phase: READ ONLY, always rolled back */
    BLOCK_OPEN,    /* opened while changes are allowed: committed at its end */
};

struct notice;

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

/* connect(conninfo_or_url, {connect_timeout=, sslmode=, application_name=, statement_timeout=})
 * -> conn | nil, message, {kind="connection"} */
int rb_pg_connect(lua_State *L);

/* The connection at `index`; raises if it is not one or is closed. */
struct pg_conn *rb_pg_check_conn(lua_State *L, int index);

/* PQexec (nparams < 0: one or more statements, no parameters) or PQexecParams, bounded in time. */
PGresult *rb_pg_exec_bounded(struct pg_conn *c, const char *sql, int nparams, const char *const *values);

/* The last result of what was sent, as PQexec returns it (a COPY's start ends the wait). */
PGresult *rb_pg_collect_results(struct pg_conn *c);

/* PQgetCopyData, waiting until the statement's deadline: > 0 a row, -1 the end, -2 a failure. */
int rb_pg_get_copy_data(struct pg_conn *c, char **row);

/* Runs a statement without results (SET, ROLLBACK); whether it succeeded. */
int rb_pg_run_setting(struct pg_conn *c, const char *sql);

/* Makes the Conn metatable and pushes its __index table (the connection's methods). */
void rb_pg_push_conn_methods(lua_State *L);

#endif
