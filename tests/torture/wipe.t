#!/usr/bin/env bash
# `make torture`: wipe-hub-db killed after every journal write (20) and in the middle of its COPY
# backups, then resumed (tests/50-kill-resume.t runs a few of these).
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP/tests/lib/hub.sh"
. "$TOP/tests/lib/pg.sh"
. "$TOP/tests/lib/fake-k8s.sh"
. "$TOP/tests/torture/wipe.sh"
export XDG_STATE_HOME="$SCRATCH/state"
wipe_world_start "$SCRATCH" || { ok 1 "the world starts"; done_testing; exit 1; }
for n in $(seq 1 20); do wipe_kill_resume "journal:$n"; done
for n in 1 3 8; do wipe_kill_resume "backup-write:$n"; done
done_testing
