/* Fuzz target: the read-only guard's statement check (src/pg_guard.c, rb_pg_guard_reason), a lexer over SQL
 * text that decides whether a statement may run while planning. Memory safety and termination only:
 * what it refuses is checked by the unit and PostgreSQL tests. The text is not NUL-terminated. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "pg_guard.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *sql = malloc(size ? size : 1);
    memcpy(sql, data, size);
    char why[160];
    memset(why, 'x', sizeof why);
    if (rb_pg_guard_reason(sql, size, why, sizeof why) && memchr(why, '\0', sizeof why) == NULL) {
        fprintf(stderr, "pg_guard: a refusal without a NUL-terminated reason\n");
        abort();
    }
    free(sql);
    return 0;
}
