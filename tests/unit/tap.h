/* Minimal TAP for C unit tests. */
#ifndef RUNBOOK_TEST_TAP_H
#define RUNBOOK_TEST_TAP_H
#include <stdio.h>
#include <string.h>

static int tap_count = 0, tap_failed = 0;

#define ok(cond, ...)                                                                                                  \
    do {                                                                                                               \
        int ok_ = (cond);                                                                                              \
        printf("%sok %d - ", ok_ ? "" : "not ", ++tap_count);                                                          \
        printf(__VA_ARGS__);                                                                                           \
        printf("\n");                                                                                                  \
        if (!ok_) {                                                                                                    \
            tap_failed++;                                                                                              \
            printf("#   at %s:%d\n", __FILE__, __LINE__);                                                              \
        }                                                                                                              \
    } while (0)

static inline int done_testing(void)
{
    printf("1..%d\n", tap_count);
    return tap_failed ? 1 : 0;
}
#endif
