#!/usr/bin/env bash
# Runs fuzz targets built by `make fuzz`: run.sh BUILD_DIR SECONDS TARGET...
# Each target runs for SECONDS on tests/fuzz/corpus/TARGET (and its regression inputs, read only),
# with tests/fuzz/dict/TARGET.dict when there is one. New inputs are found in a scratch directory and
# minimised into the corpus (-merge=1 keeps only those that add coverage). A crash, leak, timeout or
# out-of-memory is saved as BUILD_DIR/findings/TARGET/... and makes the run exit 1; copy it into
# tests/fuzz/regressions/TARGET/ once it is fixed. One summary line per target: executions, time,
# coverage (libFuzzer's cov: and ft:), findings.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$1 seconds=$2
shift 2
status=0
summary=()
for target in "$@"; do
  bin="$build/fuzz/$target"
  corpus="$top/tests/fuzz/corpus/$target"
  regressions="$top/tests/fuzz/regressions/$target"
  work="$build/work/$target"
  findings="$build/findings/$target"
  log="$build/logs/$target.log"
  mkdir -p "$corpus" "$regressions" "$findings" "$(dirname "$log")"
  rm -rf "$work" && mkdir -p "$work"
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1
        -artifact_prefix="$findings/")
  [ -f "$top/tests/fuzz/dict/$target.dict" ] && args+=(-dict="$top/tests/fuzz/dict/$target.dict")
  echo "fuzz: $target for ${seconds}s (log: $log)"
  # The scratch directory comes first: libFuzzer writes what it finds into its first corpus directory.
  started=$SECONDS
  ASAN_OPTIONS=detect_leaks=1 "$bin" "${args[@]}" "$work" "$corpus" "$regressions" >"$log" 2>&1
  rc=$?
  took=$((SECONDS - started))
  "$bin" -merge=1 "$corpus" "$work" >>"$log" 2>&1 || echo "fuzz: $target: merging into the corpus failed (see $log)" >&2
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1)
  found=$(find "$findings" -type f | wc -l)
  line=$(printf '%-13s %10s execs  %4ss  %-22s findings: %s' "$target" "${execs:-?}" "$took" "${cov:-cov: ?}" "$found")
  if [ "$rc" -ne 0 ]; then
    status=1
    line="$line  FAILED (exit $rc): $(grep -m1 -E '^(==[0-9]+==ERROR|SUMMARY|fuzz |ws_frame|yaml|pg_)' "$log")"
  fi
  summary+=("$line")
  echo "$line"
done
echo "---- fuzz summary ($seconds s per target)"
printf '%s\n' "${summary[@]}"
exit $status
