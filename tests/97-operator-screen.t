#!/usr/bin/env bash
# What the operator sees during and after an apply (issue 17): a refused credential stops the run once
# instead of failing every action; failures that say the same thing are reported once; a log (not a
# terminal) names every action; on a terminal the progress line never has a message glued onto it and
# ends on the real count; an interruption is worded as one.
. "$(dirname "$0")/lib/tap.sh"
. "$TOP/tests/lib/testservers.sh"
export RUNBOOK_PATH="$TOP/tests/runbooks"
export XDG_STATE_HOME="$SCRATCH/state"

keys=""
for n in $(seq 1 8); do keys="$keys,perm-$n=forbidden"; done
for n in $(seq 1 40); do keys="$keys,log-$n=v"; done
for n in $(seq 1 34); do keys="$keys,tty-$n=wait"; done
keys="$keys,tty-35=fail"
kv_start "${keys#,}"

# --- a refused credential: stop after a run of identical refusals, say it once ---
run_rb run kv-prune -p prefix=perm- --yes --journal-dir "$SCRATCH/j1"
is "$RC" 1 "actions refused with 403 one after another: exit 1"
is "$(kv_count '^DELETE /keys/perm-')" 3 "  the apply stops after 3 identical refusals (5 never sent)"
like "$ERR" "3 kv.delete actions in a row were refused the same way .*requires any of \[delete:keys\].*grant it, then resume" \
  "  the stop names the refusal and what to do"
like "$OUT" "3 actions: HTTP 403: Action is not authorized" "  the report says the refusal once, with a count"
like "$OUT" "perm-1, perm-2, perm-3" "  and the targets it hit"
like "$OUT" "5 not run" "  the summary counts what was not run"
j=$(ls "$SCRATCH"/j1/*.journal)
like "$(grep '"type":"stop"' "$j")" '"reason":"3 kv.delete actions in a row were refused' "  the journal records the stop"
# a refusal between successes does not stop the run: only a run of identical ones does
kv_put mix-1 v; kv_put mix-2 forbidden; kv_put mix-3 v; kv_put mix-4 forbidden; kv_put mix-5 v
run_rb run kv-prune -p prefix=mix- --yes --journal-dir "$SCRATCH/j2"
is "$RC" 1 "two refusals among successes: exit 1 (they failed)"
is "$(kv_count '^DELETE /keys/mix-')" 5 "  every action was tried"
unlike "$ERR" "in a row were refused" "  no permission stop"

# --- not on a terminal: every action named (the log of a CronJob is the audit trail) ---
run_rb run kv-prune -p prefix=log- --yes --journal-dir "$SCRATCH/j3"
is "$RC" 0 "40 deletions with output to a file: exit 0"
is "$(printf '%s\n' "$OUT" | grep -c -E '^  done +kv.delete log-[0-9]+$')" 40 "  each of the 40 is named on its own line"

# --- on a terminal: the progress line ---
out=$("$PY" "$TOP/tests/lib/pty_run.py" "" "$RUNBOOK" run kv-prune -p prefix=tty- -p concurrency=4 --yes \
      --journal-dir "$SCRATCH/j4" 2>&1)
like "$out" "applying: [0-9]+/35" "on a terminal, 35 actions show a progress counter"
glued=$(printf '%s' "$out" | tr '\r' '\n' | grep -c -E 'applying: [0-9]+/35 .*FAILED' || true)
is "$glued" 0 "  the failure line is never glued onto the counter"
like "$(printf '%s' "$out" | tr '\r' '\n' | grep -E 'tty-35: HTTP 500')" "^(.\[K)?  .*FAILED" "  it starts its own line"
last=$(printf '%s' "$out" | tr '\r' '\n' | grep -o -E 'applying: [0-9]+/35' | tail -1)
is "$last" "applying: 35/35" "  the counter ends on the real count"
like "$out" "tty-prune on|kv-prune on .*: 34 done, 0 skipped, 1 failed" "  and the summary agrees"

# --- a resume counts what is left, not the whole plan ---
for n in $(seq 1 60); do kv_put "res-$n" wait; done
kv_put res-61 slow
run_rb plan kv-prune -p prefix=res- -o "$SCRATCH/res.json"
"$PY" "$TOP/tests/lib/pty_run.py" "" "$RUNBOOK" apply "$SCRATCH/res.json" --yes --journal-dir "$SCRATCH/j5" \
  >"$SCRATCH/res.out" 2>&1 &
pid=$!
# pty_run prints when the command ends: the journal says how far it got
for i in $(seq 400); do [ "$(cat "$SCRATCH"/j5/*.journal 2>/dev/null | grep -c '"outcome":"done"')" -ge 10 ] && break; sleep 0.05; done
pkill -INT -f "^$RUNBOOK apply $SCRATCH/res.json"; wait $pid
like "$(cat "$SCRATCH/res.out")" "stopped: interrupted by SIGINT. Nothing failed" "Ctrl-C is worded as an interruption"
unlike "$(cat "$SCRATCH/res.out")" "after fixing the cause" "  not as a failure"
rj=$(ls "$SCRATCH"/j5/*.journal)
done_before=$(grep -c '"outcome":"done"' "$rj")
left=$((61 - done_before))
out=$("$PY" "$TOP/tests/lib/pty_run.py" "" "$RUNBOOK" resume "$rj" --yes 2>&1)
like "$out" "applying: [0-9]+/$left " "  the resume's counter counts the $left actions left"
unlike "$out" "applying: [0-9]+/61 " "  not the whole plan"

done_testing
