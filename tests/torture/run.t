#!/usr/bin/env bash
# `make torture`: the full kill-and-resume matrix (tests/50-kill-resume.t runs a representative part).
# prune-dormant: every journal write (26) and every HTTP response (24) of a 12-deletion apply.
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP/tests/lib/hub.sh"
. "$TOP/tests/torture/prune.sh"
export XDG_STATE_HOME="$SCRATCH/state"
prune_world_start "$SCRATCH/hub" || { ok 1 "hub starts"; done_testing; exit 1; }
for n in $(seq 1 26); do prune_kill_resume "journal:$n"; done
for n in $(seq 1 24); do prune_kill_resume "http-response:$n"; done
done_testing
