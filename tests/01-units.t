#!/usr/bin/env bash
# C and Lua unit tests (built by `make test-programs`; RUNBOOK_BUILD picks the sanitizer build).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=${RUNBOOK_BUILD:-build}
cd "$top"
# The Lua tests write their files under TMPDIR: a directory of this run's, removed however it ends.
scratch=$(mktemp -d /tmp/runbook-units.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
"$build/tests/test_host" | sed 's/^1\.\.\([0-9]*\)$/# c units: \1/' | grep -v '^# c units' > "$scratch/c.tap" ; c_status=${PIPESTATUS[0]}
TMPDIR=$scratch "$build/tests/lua_runner" tests/lua/tap.lua tests/lua/test_*.lua > "$scratch/lua.tap"; lua_status=$?
# One TAP stream: renumber both parts.
n=0
while IFS= read -r line; do
  case "$line" in
    "ok "*|"not ok "*)
      n=$((n + 1))
      echo "$line" | sed -E "s/^(not )?ok [0-9]+/\1ok $n/" ;;
    "1.."*) ;;
    *) echo "$line" ;;
  esac
done < <(cat "$scratch/c.tap" "$scratch/lua.tap")
n=$((n + 1))
if [ "$c_status" -eq 0 ] && [ "$lua_status" -eq 0 ]; then echo "ok $n - unit test programs exited 0"; else echo "not ok $n - unit test programs exited $c_status/$lua_status"; fi
echo "1..$n"
