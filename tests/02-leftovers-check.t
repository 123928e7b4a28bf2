#!/usr/bin/env bash
# No process a test started outlives it (tests/lib/leftovers.py): checked at each test's exit (tap.sh)
# and, for what escapes that, after the whole run (tests/lib/prove-checked: make test, make check-asan).
# Run here on small test files of its own, which start servers and forget them as a helper without
# on_exit would.
. "$(dirname "$0")/lib/tap.sh"
T=$SCRATCH/t
mkdir -p "$T"
tag=${SCRATCH##*.}  # in the stand-ins' command lines: this run's, not another's on the same machine
export RUNBOOK_LEFTOVERS_GRACE=3
export TMPDIR=$SCRATCH  # the checked runs' directories: under this test's

# alive NAME...: is a stand-in NAME-$tag running? (The pattern does not match grep's own command line.)
alive() {
  local names
  names=$(IFS='|'; echo "$*")
  grep -a -l -E -- "($names)-${tag%?}[${tag: -1}]" /proc/[0-9]*/cmdline 2>/dev/null | grep -q .
}

# Stand-in servers write nowhere: one that kept the test's stdout would make prove wait for it.
# A server that forgets to stop, three ways: its environment is the test's; it was started with
# an empty environment and only its working directory is the test's; only its command line names
# the test's directory (as a server given --dir "$SCRATCH/..." does).
cat >"$T/leaky.t" <<EOF
#!/usr/bin/env bash
. "$TOP/tests/lib/tap.sh"
"\$PY" -c 'import time; time.sleep(300)' leaky-env-$tag >/dev/null 2>&1 &
(cd "\$SCRATCH" && exec env -i /usr/bin/python3 -c 'import time; time.sleep(300)' leaky-cwd-$tag) >/dev/null 2>&1 &
(cd / && exec env -i /usr/bin/python3 -c 'import time; time.sleep(300)' leaky-argv-$tag "\$SCRATCH/k8s") >/dev/null 2>&1 &
ok 0 "started three servers and forgot them"
done_testing
EOF
# One that names none of the test's own: only the run's directory (it escapes the test's own check).
cat >"$T/escaping.t" <<EOF
#!/usr/bin/env bash
. "$TOP/tests/lib/tap.sh"
(cd / && exec env -i /usr/bin/python3 -c 'import time; time.sleep(300)' escaping-$tag "\$TMPDIR/elsewhere") >/dev/null 2>&1 &
ok 0 "started a server and forgot it"
done_testing
EOF
# Stops its server; and one whose server takes a second to exit after the test has ended.
cat >"$T/tidy.t" <<EOF
#!/usr/bin/env bash
. "$TOP/tests/lib/tap.sh"
"\$PY" -c 'import time; time.sleep(300)' tidy-$tag >/dev/null 2>&1 &
on_exit "kill \$!"
"\$PY" -c 'import signal, sys, time
signal.signal(signal.SIGTERM, lambda *a: (time.sleep(1), sys.exit(0)))
time.sleep(300)' slow-exit-$tag >/dev/null 2>&1 &
on_exit "kill \$!"
ok 0 "started two servers, stops them at exit"
done_testing
EOF

# Something of this test's own (outside the checked runs) must be left alone.
"$PY" -c 'import time; time.sleep(300)' "outer-$tag" >/dev/null 2>&1 &
on_exit "kill $!"

out=$("$TOP/tests/lib/prove-checked" "$T/tidy.t" 2>&1)
is "$?" 0 "every test stops what it starts: the run passes"
unlike "$out" "outlived" "  and nothing is reported"

out=$("$TOP/tests/lib/prove-checked" -j2 "$T" 2>&1)
is "$?" 1 "tests left servers behind: the run fails"
like "$out" "leaky\.t +\(Wstat: 256 \(exited 1\) Tests: 1 Failed: 0\)" \
  "  the test that left them fails at its exit, though its tests passed"
like "$out" "3 process\(es\) outlived their test" "  saying how many"
like "$out" "pid [0-9]+, started by .*leaky\.t: /usr/bin/python3 -c import time; time.sleep\(300\) leaky-env-$tag" \
  "  naming the one that kept the test's environment: its test and command line"
like "$out" "pid [0-9]+, started by leaky: /usr/bin/python3 .* leaky-cwd-$tag" "  the one found by its working directory"
like "$out" "pid [0-9]+, started by leaky: /usr/bin/python3 .* leaky-argv-$tag .*/runbook-test\.leaky\.[^/]*/k8s" \
  "  the one found by its command line"
like "$out" "escaping\.t +\.+ ok" "a server that names only the run's directory escapes its test's check"
like "$out" "Result: FAIL" "  prove fails (leaky.t)"
like "$out" "1 process\(es\) outlived their test.*
.*pid [0-9]+, started by a test of the run: /usr/bin/python3 .* escaping-$tag .*/runbook-suite\.[^/]*/elsewhere" \
  "  but not the check after the run"
unlike "$out" "tidy-$tag|slow-exit-$tag" "  not those stopped at exit, even one a second slow to go"
unlike "$out" "outer-$tag" "  nor a process outside the run"
alive leaky-env leaky-cwd leaky-argv escaping
ok $((! $?)) "the leftovers are stopped"
alive outer
ok $? "the process outside the run still runs"
is "$(find "$SCRATCH" -maxdepth 1 -name 'runbook-suite.*' | wc -l)" 0 "the runs' directories are removed"

# Ctrl-C (SIGINT to the whole process group) in the middle of a run: the check still runs. The
# forgotten server ignores SIGINT, as a background job of a script does.
cat >"$T/leaky-slow.t" <<EOF
#!/usr/bin/env bash
. "$TOP/tests/lib/tap.sh"
"\$PY" -c 'import time; time.sleep(300)' leaky-slow-$tag >/dev/null 2>&1 &
sleep 300
EOF
# A background job here ignores SIGINT (so would its children): the launcher restores it, as in a terminal.
"$PY" -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.setsid(); os.execv(sys.argv[1], sys.argv[1:])' \
  "$TOP/tests/lib/prove-checked" "$T/leaky-slow.t" >"$SCRATCH/interrupted.out" 2>&1 &
checked=$!
for _ in $(seq 100); do alive leaky-slow && break; sleep 0.1; done
kill -INT -- -$checked
wait $checked
is "$?" 130 "interrupted by Ctrl-C: exit 130"
like "$(cat "$SCRATCH/interrupted.out")" "started by .*leaky-slow\.t: .*leaky-slow-$tag" "  the leftover is named"
alive leaky-slow
ok $((! $?)) "  and stopped"

done_testing
