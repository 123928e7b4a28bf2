/* PostgreSQL array literals to Lua values (pg_array.c): how runbook.pg_core decodes array columns.
 * A pure function of its input, so that fuzzers and unit tests can call it directly. */
#ifndef RUNBOOK_PG_ARRAY_H
#define RUNBOOK_PG_ARRAY_H
#include <lua.h>
#include <stddef.h>

/* How the elements of an array literal are typed. */
enum rb_pg_element {
    RB_PG_ELEMENT_TEXT,
    RB_PG_ELEMENT_INTEGER,
    RB_PG_ELEMENT_FLOAT,
    RB_PG_ELEMENT_BOOLEAN,
};

/* Parses a PostgreSQL array literal ("{1,2,NULL}", "[0:1]={{a,b},{c,d}}") and pushes it as nested Lua
 * sequences (NULL elements are cjson's null, a NULL light userdata). Returns 0 on success; on a malformed
 * literal returns -1, pushes nothing, and sets *error and *error_offset (0-based). */
int rb_pg_parse_array(lua_State *L, const char *text, size_t len, enum rb_pg_element kind,
                      const char **error, size_t *error_offset);

#endif
