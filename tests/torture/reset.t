#!/usr/bin/env bash
# `make torture`: reset-sqlite over two hubs (hub-a, hub-b, ~3.9 MiB databases each, hub-b with a
# -journal) killed after every journal write (14: 1 plan line + 2 x 6 actions + finish), at every
# HTTP response of its REST calls (24; exec streams are WebSockets, not counted there), and in the
# middle of the exec streams that copy the databases out (backup-write: 629 writes, 314 for hub-a's
# file, 314 for hub-b's and 1 for its -journal), then resumed (tests/50-kill-resume.t runs a few).
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP/tests/lib/fake-k8s.sh"
. "$TOP/tests/torture/reset.sh"
for tool in openssl bwrap; do command -v "$tool" >/dev/null || skip_all "$tool is not installed"; done
export XDG_STATE_HOME="$SCRATCH/state"
reset_world_start "$SCRATCH/reset" || { ok 1 "the reset-sqlite world starts"; done_testing; exit 1; }
for n in $(seq 1 14); do reset_kill_resume "journal:$n"; done
for n in $(seq 1 24); do reset_kill_resume "http-response:$n"; done
# the first write; mid-file; hub-a's last chunk (killed before the rename); hub-b's first, middle and
# last chunk; hub-b's -journal (its database already renamed into place)
for n in 1 100 200 314 315 450 628 629; do reset_kill_resume "backup-write:$n"; done
done_testing
