#!/usr/bin/env bash
# Runs fuzz targets built by `make fuzz`: run.sh BUILD_DIR SECONDS TARGET...
# Each target runs for SECONDS on tests/fuzz/corpus/TARGET (and its regression inputs, read only),
# with tests/fuzz/dict/TARGET.dict when there is one. New inputs are found in a scratch directory,
# then the corpus is minimised with them (-merge=1: the fewest inputs that keep all coverage). A
# crash, leak, timeout or out-of-memory is saved as BUILD_DIR/findings/TARGET/... and makes the run exit 1; copy it into
# tests/fuzz/regressions/TARGET/ once it is fixed. One summary line per target: executions, time,
# coverage (libFuzzer's cov: and ft:), findings.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$1 seconds=$2
shift 2
status=0
summary=()

# minimise BIN CORPUS NEW MERGED: the corpus becomes the smallest set of inputs (old and new) that keeps
# every feature (-merge=1). Seeds with a name (real documents, hand-made cases) stay whatever they
# cover; inputs named by their SHA-1 (libFuzzer's) are replaced by the merged set.
minimise() {
  local bin=$1 corpus=$2 new=$3 merged=$4 f name
  rm -rf "$merged" && mkdir -p "$merged"
  "$bin" -merge=1 "$merged" "$corpus" "$new" || return 1
  for f in "$corpus"/*; do
    [ -f "$f" ] || continue
    name=${f##*/}
    if [[ $name =~ ^[0-9a-f]{40}$ ]]; then
      rm -f "$f"
    else
      rm -f "$merged/$(sha1sum < "$f" | cut -d' ' -f1)"
    fi
  done
  cp "$merged"/* "$corpus"/ 2>/dev/null
  return 0
}
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
  mkdir -p "$build/tmp"
  TMPDIR=$build/tmp ASAN_OPTIONS=detect_leaks=1 "$bin" "${args[@]}" "$work" "$corpus" "$regressions" >"$log" 2>&1
  rc=$?
  took=$((SECONDS - started))
  TMPDIR=$build/tmp minimise "$bin" "$corpus" "$work" "$build/merged/$target" >>"$log" 2>&1 ||
    echo "fuzz: $target: merging into the corpus failed (see $log)" >&2
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1)
  rm -rf "$build/tmp"/runbook-fuzz-*  # the Lua targets' scratch files
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
