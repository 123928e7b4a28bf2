#!/usr/bin/env bash
# valgrind reports no leak and no error on `runbook list` and on a plan/apply cycle.
. "$(dirname "$0")/lib/tap.sh"
. "$TOP/tests/lib/testservers.sh"
case "$RUNBOOK" in *asan*) skip_all "the sanitizer build cannot run under valgrind (check-asan covers leaks there)";; esac
command -v valgrind >/dev/null || skip_all "valgrind is not installed"
export RUNBOOK_PATH="$TOP/tests/runbooks"
kv_start "tmp-a=1,tmp-b=2,keep=3"
vg() {  # vg NAME ARGS...: runs runbook under valgrind, checks for leaks and errors
  local name=$1; shift
  valgrind --leak-check=full --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible \
    --error-exitcode=99 --log-file="$SCRATCH/vg-$name.log" "$RUNBOOK" "$@" >/dev/null 2>&1 </dev/null
  local rc=$?
  ok $([ "$rc" -ne 99 ]; echo $?) "valgrind: $name has no leak or memory error"
  [ "$rc" -eq 99 ] && sed -n '/ERROR SUMMARY/p;/definitely lost/p;/Invalid/,+6p' "$SCRATCH/vg-$name.log" | head -n 30 | sed 's/^/# /'
  VG_RC=$rc
}
vg list list
is "$VG_RC" 0 "  list exits 0"
vg plan plan kv-prune -o "$SCRATCH/plan.json"
is "$VG_RC" 0 "  plan exits 0"
vg apply apply "$SCRATCH/plan.json" --yes --journal-dir "$SCRATCH/j"
is "$VG_RC" 0 "  apply exits 0"
is "$(kv_keys)" "keep" "  apply under valgrind did the work"
vg bad-plan apply "$SCRATCH/nonexistent.json" --yes
is "$VG_RC" 2 "  a failing command exits 2 without leaking"
done_testing
