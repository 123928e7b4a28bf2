#include "crashpoint.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int configured = 0;
static char point[64];
static long remaining = -1;

static void configure(void)
{
    configured = 1;
    const char *spec = getenv("RUNBOOK_CRASH_AT");
    if (!spec || !*spec)
        return;
    const char *colon = strrchr(spec, ':');
    if (!colon || (size_t)(colon - spec) >= sizeof point)
        return;
    memcpy(point, spec, (size_t)(colon - spec));
    point[colon - spec] = '\0';
    remaining = strtol(colon + 1, NULL, 10);
}

void rb_crash_point(const char *name)
{
    if (!configured)
        configure();
    if (remaining <= 0 || strcmp(name, point) != 0)
        return;
    if (--remaining == 0) {
        fprintf(stderr, "runbook: crash point %s reached: killing myself (RUNBOOK_CRASH_AT)\n", name);
        raise(SIGKILL);
    }
}
