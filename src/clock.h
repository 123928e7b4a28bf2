/* Seconds on a clock, as a double: CLOCK_MONOTONIC for deadlines and timing (immune to the wall
 * clock being set), CLOCK_REALTIME for timestamps. One definition for every binding that waits. */
#ifndef RUNBOOK_CLOCK_H
#define RUNBOOK_CLOCK_H
#include <time.h>

static inline double rb_clock_seconds(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline double rb_monotonic_seconds(void)
{
    return rb_clock_seconds(CLOCK_MONOTONIC);
}

#endif
