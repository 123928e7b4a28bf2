/* Crash points, for the kill-and-resume tests: with RUNBOOK_CRASH_AT=NAME:N in the environment the
 * process kills itself with SIGKILL (no cleanup at all, like a power cut) the N-th time it passes
 * the point NAME. Without the variable a crash point costs one branch. Points:
 *   journal        a journal line has just reached the disk
 *   http-response  a response has arrived, before the runbook sees it (the server acted; we did not record it)
 *   backup-write   a chunk of a backup file has been written (an exec stream copied out of a pod,
 *                  a table's COPY: both go through host.create_output) */
#ifndef RUNBOOK_CRASHPOINT_H
#define RUNBOOK_CRASHPOINT_H

void rb_crash_point(const char *name);

#endif
