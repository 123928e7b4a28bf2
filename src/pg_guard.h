/* SQL text read without a server (pg_guard.c): the read-only guard's statement check, and the other
 * questions runbook.pg_core asks of a statement's text. */
#ifndef RUNBOOK_PG_GUARD_H
#define RUNBOOK_PG_GUARD_H
#include <lua.h>
#include <stddef.h>

/* Why the read-only guard refuses `sql` before sending it: returns 1 and writes the reason to `why`
 * (NUL-terminated, truncated to why_size), or returns 0 when the statement may be sent.
 * `sql` need not be NUL-terminated. */
int rb_pg_guard_reason(const char *sql, size_t len, char *why, size_t why_size);

/* The first word of a NUL-terminated statement in capitals ("statement" when it has none), for
 * messages: never its values, which may be secrets. */
void rb_pg_statement_keyword(const char *sql, char *out, size_t size);

/* Whether sql is COPY ... TO STDOUT however the session reads backslashes. */
int rb_pg_is_copy_to_stdout(const char *sql, size_t len);

/* Pushes sql with every string literal's contents replaced by "...", for logs. */
void rb_pg_push_masked_literals(lua_State *L, const char *sql, size_t len, int backslash_quotes);

#endif
