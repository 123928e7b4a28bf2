#!/usr/bin/env bash
# doc/runbook.1 renders cleanly (groff -ww, man -l) and keeps up with the code: every command and
# option `runbook --help` lists, every module scripts may require, every shipped runbook and each of
# its parameters, every environment variable the Lua or C code reads, and every exit status are
# documented.
. "$(dirname "$0")/lib/tap.sh"
MAN="$TOP/doc/runbook.1"
unset RUNBOOK_PATH

out=$(groff -man -Tutf8 -ww -z "$MAN" 2>&1); rc=$?
is "$rc:$out" "0:" "groff -man -Tutf8 -ww: no warnings"
out=$(MANWIDTH=80 man -l "$MAN" 2>"$SCRATCH/man.err" </dev/null); rc=$?
is "$rc" 0 "man -l renders it"; is "$(cat "$SCRATCH/man.err")" "" "  without a message"
for section in NAME SYNOPSIS DESCRIPTION COMMANDS OPTIONS "EXIT STATUS" ENVIRONMENT FILES "JSON OUTPUT" EXAMPLES "SEE ALSO"; do
  printf '%s\n' "$out" | grep -qx "$section"; ok $? "  has $section"
done
unlike "$(printf '%s\n' "$out" | grep -v '^ *$' | awk 'length > 80')" "." "  no line wider than 80 columns"

# The page as plain text for the checks below: lines 250 columns wide and no hyphenation, so that
# no name is broken across lines.
TEXT="$SCRATCH/man.txt"
groff -man -Tascii -P-c -P-b -P-u -rHY=0 -rLL=250n "$MAN" > "$TEXT" 2>/dev/null
section() {  # section NAME: the rendered text of one section
  awk -v s="$1" '/^[A-Z][A-Z ]*$/ { inside = ($0 == s); next } inside' "$TEXT"
}

help=$("$RUNBOOK" --help 2>/dev/null </dev/null)
commands=$(printf '%s\n' "$help" | sed -n '/^Commands:/,/^$/p' | awk 'NF > 1 {print $1}')
for c in $commands help; do
  section COMMANDS | grep -qE "^       $c( |$)"; ok $? "command $c is described under COMMANDS"
  section SYNOPSIS | grep -qE "runbook $c( |$)"; ok $? "  and in the SYNOPSIS"
done
for opt in $(printf '%s\n' "$help" | grep -oE -- '(^| )--?[a-z][a-z-]*' | sort -u); do
  section OPTIONS | grep -qE -- "(^|[ ,])$opt([ ,]|$)"; ok $? "option $opt is described under OPTIONS"
done

# The modules a script or runbook may require (the one list, runbook.public) are named where exec is described.
modules=$(grep -oE '^ *\["(runbook\.[a-z0-9_.]+|cjson)"\] = ' "$TOP/lua/runbook/public.lua" | sed 's/^ *\["\(.*\)"\].*/\1/')
ok $([ "$(wc -w <<<"$modules")" -ge 10 ]; echo $?) "the list of modules runbooks may require is read ($(wc -w <<<"$modules") of them)"
for m in $modules; do
  section COMMANDS | grep -qE "(^|[ (,])${m//./\\.}([ ,)]|$)"; ok $? "module $m is named under COMMANDS (exec)"
done

shipped=$("$RUNBOOK" list 2>/dev/null </dev/null | awk '{print $1}')
for name in $shipped; do
  section "SHIPPED RUNBOOKS" | grep -qx "   $name"; ok $? "runbook $name has its subsection"
  text=$(section "SHIPPED RUNBOOKS" | awk -v n="   $name" '$0 == n {on = 1; next} /^   [a-z]/ {on = 0} on')
  for p in $("$RUNBOOK" show "$name" --output json 2>/dev/null </dev/null |
             "$PY" -c 'import json,sys; print(" ".join(p["name"] for p in json.load(sys.stdin)["params"]))'); do
    printf '%s' "$text" | tr '\n' ' ' | grep -qE "(^|[^a-z_])${p}([^a-z_]|$)"; ok $? "  its parameter $p is documented"
  done
  printf '%s' "$text" | grep -q "runbook .* $name"; ok $? "  with an example"
done

# Environment variables the code reads: os.getenv in lua/ and getenv in src/, and the env of
# every shipped runbook's parameters.
vars=$( (grep -rhoE 'getenv\("[A-Z_]+"\)' "$TOP/lua" "$TOP/src" | sed 's/getenv("\(.*\)")/\1/'
         for name in $shipped; do
           "$RUNBOOK" show "$name" --output json 2>/dev/null </dev/null |
             "$PY" -c 'import json,sys; print("\n".join(p["env"] for p in json.load(sys.stdin)["params"] if "env" in p))'
         done) | sort -u)
for v in $vars KUBERNETES_SERVICE_PORT PGHOST PGPASSWORD; do
  section ENVIRONMENT | grep -qE "(^|[ ,])$v([ ,]|$)"; ok $? "environment variable $v is documented"
done

for status in 0 1 2 3 4; do
  section "EXIT STATUS" | grep -qE "^       $status  "; ok $? "exit status $status is documented"
done

done_testing
