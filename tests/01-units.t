#!/usr/bin/env bash
# C and Lua unit tests (built by `make test-programs`; RUNBOOK_BUILD picks the sanitizer build), as one
# TAP stream: every C unit program (tests/unit/test_*.c) and every Lua test file (tests/lua/test_*.lua,
# one lua_runner process each). Their tests are renumbered into this stream, and each program's own
# plan is checked: a program or Lua file that stops early (returns, exits 0, raises) fails here.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=${RUNBOOK_BUILD:-build}
cd "$top"
# The Lua tests write their files under TMPDIR: a directory of this run's, removed however it ends.
scratch=$(mktemp -d "${TMPDIR:-/tmp}/runbook-units.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
n=0

tap() {  # tap 0|1 DESCRIPTION: one line of this file's own stream
  n=$((n + 1))
  if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi
}

count() { if [ "$1" -eq 1 ]; then echo "1 $2"; else echo "$1 ${2}s"; fi; }  # count N NOUN

# plan_problem OUTPUT-FILE STATUS: what is wrong with a unit program's run, judged by its own TAP and
# exit status (nothing when the number of tests it reported is its plan and it exited 0). The runner's
# own "not ok - FILE raised an error" line (unnumbered) is not one of the file's tests.
plan_problem() {
  local out=$1 status=$2 tests plans plan problems=()
  tests=$(grep -E '^(not )?ok\b' "$out" | grep -cvE '^not ok - .* raised an error$')
  plans=$(grep -cE '^1\.\.[0-9]+' "$out")
  if [ "$plans" -eq 0 ]; then
    problems+=("no plan: it stopped after $(count "$tests" test), before done_testing()")
  elif [ "$plans" -gt 1 ]; then
    problems+=("$plans plans")
  else
    plan=$(sed -nE 's/^1\.\.([0-9]+).*/\1/p' "$out")
    [ "$plan" -ne "$tests" ] && problems+=("it ran $(count "$tests" test), its plan says $plan")
  fi
  grep -qE '^not ok - .* raised an error$' "$out" &&
    problems+=("it raised an error: $(grep -A1 -E '^not ok - .* raised an error$' "$out" | sed -n '2s/^# //p')")
  [ "$status" -ne 0 ] && problems+=("it exited $status")
  [ ${#problems[@]} -gt 0 ] && printf '%s; ' "${problems[@]}" | sed 's/; $//'
  return 0
}

# report NAME OUTPUT-FILE STATUS: NAME's tests, renumbered and named, then whether its plan holds.
report() {
  local name=$1 out=$2 status=$3 line problem
  while IFS= read -r line; do
    if [[ $line =~ ^(not\ )?ok([[:space:]]+[0-9]+)?([[:space:]]+-)?[[:space:]]*(.*)$ ]]; then
      tap "$([ -z "${BASH_REMATCH[1]}" ]; echo $?)" "$name: ${BASH_REMATCH[4]}"
    elif [[ ! $line =~ ^1\.\.[0-9]+ ]]; then
      printf '%s\n' "$line"
    fi
  done <"$out"
  problem=$(plan_problem "$out" "$status")
  tap "$([ -z "$problem" ]; echo $?)" "$name: ran to its plan and exited 0${problem:+ -- no: $problem}"
}

# lua_run FILE OUTPUT-FILE: one Lua test file in a runner of its own; its exit status
lua_run() { TMPDIR=$scratch "$build/tests/lua_runner" tests/lua/tap.lua "$1" >"$2" 2>&1; }

for src in tests/unit/test_*.c; do
  prog=$(basename "$src" .c)
  "$build/tests/$prog" >"$scratch/$prog.tap" 2>&1; status=$?
  report "$prog" "$scratch/$prog.tap" "$status"
done
for file in tests/lua/test_*.lua; do
  lua_run "$file" "$scratch/lua.tap"; status=$?
  report "${file##*/}" "$scratch/lua.tap" "$status"
done

# The plan check itself: Lua test files that stop early in each way a real one could, and stand-ins for
# a C unit program (a script) that returns early from main with status 0 or miscounts.
self=$scratch/self-test
mkdir -p "$self"
judge() {  # judge NAME LUA-CODE: runs it as a test file; prints what plan_problem says of it
  printf '%s\n' "$2" >"$self/$1.lua"
  lua_run "$self/$1.lua" "$self/$1.tap"
  plan_problem "$self/$1.tap" $?
}
judge_program() {  # judge_program NAME SHELL-CODE: runs it as a unit program; prints what plan_problem says
  printf '%s\n' "$2" >"$self/$1.sh"
  bash "$self/$1.sh" >"$self/$1.tap" 2>&1
  plan_problem "$self/$1.tap" $?
}
expect() {  # expect GOT GLOB DESCRIPTION
  # shellcheck disable=SC2053
  [[ $1 == $2 ]]
  tap $? "plan check: $3 (${1:-nothing reported})"
}
expect "$(judge complete 'ok(true, "one") ok(true, "two") done_testing()')" "" \
  "a Lua file that runs to done_testing() passes"
expect "$(judge returns 'ok(true, "one") do return end ok(true, "two") done_testing()')" \
  "no plan: it stopped after 1 test, before done_testing(); it exited 1" "a Lua file that returns midway fails"
expect "$(judge raises 'ok(true, "one") error("boom") ok(true, "two") done_testing()')" \
  "no plan: it stopped after 1 test, before done_testing(); it raised an error: */raises.lua:1: boom; it exited 1" \
  "a Lua file that raises midway fails, naming the error"
# Test files have the sandbox's os (no os.exit), so exiting early is an error too; fails either way.
expect "$(judge exits 'ok(true, "one") os.exit(0) ok(true, "two") done_testing()')" "no plan: it stopped after 1 test*" \
  "a Lua file that calls os.exit(0) midway fails"
expect "$(judge failing 'ok(false, "one") done_testing()')" "it exited 1" "a failed Lua test makes its runner exit 1"
expect "$(judge twice 'ok(true, "one") done_testing() done_testing()')" "*done_testing() called twice*" "a Lua file that plans twice fails"
expect "$(judge_program early-exit 'echo "ok 1 - one"; echo "ok 2 - two"; exit 0')" \
  "no plan: it stopped after 2 tests, before done_testing()" "a program that exits 0 before its plan fails"
expect "$(judge_program short 'echo "ok 1 - one"; echo "1..3"')" "it ran 1 test, its plan says 3" \
  "a program that ran fewer tests than its plan fails"
expect "$(judge_program crash 'echo "ok 1 - one"; kill -SEGV $$')" "no plan: it stopped after 1 test*it exited 139" \
  "a program that crashes fails"

echo "1..$n"
