/* runbook.pg_core's results (pg_result.c): a PGresult owned by a userdata, and what it becomes in Lua. */
#ifndef RUNBOOK_PG_RESULT_H
#define RUNBOOK_PG_RESULT_H
#include <libpq-fe.h>
#include <lua.h>

struct pg_conn;

/* A PGresult owned by a userdata with a __gc, so that a Lua error cannot leak it. */
struct result_holder {
    PGresult *res;
};

/* Makes the metatable of the holders; before the first rb_pg_new_holder. */
void rb_pg_open_results(lua_State *L);

/* Pushes an empty holder. */
struct result_holder *rb_pg_new_holder(lua_State *L);

/* Gives h the result res, clearing the one it held. */
void rb_pg_holder_set(struct result_holder *h, PGresult *res);

/* Pushes a libpq message (which ends with a newline and may span lines) as one line. */
void rb_pg_push_message(lua_State *L, const char *text);

/* t[name] = value for the table on top of the stack, unless value is NULL. */
void rb_pg_set_string_field(lua_State *L, const char *name, const char *value);

/* nil, message, {kind=kind} */
int rb_pg_push_failure(lua_State *L, const char *message, const char *kind);

/* What a finished statement returns to Lua: rows, columns, json_columns | affected, tag | nil, message,
 * details. Empties h. */
int rb_pg_push_statement_result(lua_State *L, struct pg_conn *c, struct result_holder *h);

#endif
