/* Lua modules and runbooks compiled into the binary (see embedgen.c). */
#ifndef RUNBOOK_EMBEDDED_H
#define RUNBOOK_EMBEDDED_H
#include <stddef.h>

struct embedded_file {
    const char *name;   /* module name ("runner.cli") or runbook name ("prune-dormant") */
    const char *path;   /* source path in the repository, for messages */
    const char *bytecode; /* compiled at build time by the liblua the binary links, debug info kept */
    int bytecode_size;
    const char *text;     /* runbooks only: the source, which plans hash */
    int text_size;
};

/* Both tables end with an entry whose name is NULL. */
extern const struct embedded_file embedded_modules[];
extern const struct embedded_file embedded_runbooks[];

#endif
