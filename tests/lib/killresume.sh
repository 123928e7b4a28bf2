# Helpers of the kill-and-resume tests (tests/50-kill-resume.t, tests/torture/*.sh). Source after tap.sh.
# A crash point that a test expects to be reached must be reached: an apply that finishes (or fails)
# instead of dying there proves nothing about resume, so it fails the test; and exactly-once is judged
# from the journal and from what the server saw (tests/lib/exactly_once.py), not from exit statuses.

# kr_killed RC OUTPUT POINT: the apply died at POINT: SIGKILL (exit 137) and the point's own marker
# ("crash point journal reached") in its output, so that no other death passes for it.
kr_killed() { [ "$1" -eq 137 ] && grep -q "crash point ${3%%:*} reached" "$2"; }

# kr_exactly_once AT_KILL FINAL [exactly_once.py options]: prints what is wrong (nothing when all is
# well) and a last line "at the kill: ...". Exit 1 on a problem.
kr_exactly_once() { "$PY" "$TOP/tests/lib/exactly_once.py" "$@"; }
