#!/usr/bin/env bash
# Replays every fuzz corpus and regression input (tests/fuzz/corpus, tests/fuzz/regressions) through
# the fuzz targets' own entry points, built without libFuzzer but with AddressSanitizer and UBSan
# (replay-TARGET, made by `make test-programs`): an input that once crashed stays fixed, and the
# corpus keeps passing, without running a fuzzer. A finding aborts the replay and names the input.
. "$(dirname "$0")/lib/tap.sh"
build=${RUNBOOK_BUILD:-build}
F="$TOP/tests/fuzz"
for src in "$F"/*.c; do
  t=$(basename "$src" .c)
  case $t in fuzz_lua|replay) continue ;; esac
  bin="$TOP/$build/tests/replay-$t"
  if [ ! -x "$bin" ]; then ok 1 "$t: $bin is built (make test-programs)"; continue; fi
  dirs=()
  for d in "$F/corpus/$t" "$F/regressions/$t"; do [ -d "$d" ] && dirs+=("$d"); done
  regressions=$(find "$F/regressions/$t" -type f 2>/dev/null | wc -l)
  out=$(TMPDIR=$SCRATCH ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$bin" "${dirs[@]}" 2>"$SCRATCH/$t.err")
  rc=$?
  ok $rc "$t: $out ($regressions of them regressions)"
  if [ $rc -ne 0 ]; then
    grep '^# ' "$SCRATCH/$t.err" | tail -n 1 | sed 's/^# /#   failing input: /'
    grep -v '^# ' "$SCRATCH/$t.err" | head -n 30 | sed 's/^/#   /'
  fi
done
done_testing
