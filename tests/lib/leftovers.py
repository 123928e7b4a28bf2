#!/usr/bin/python3
"""No process a test (or a test run) started may still be alive.

Usage: leftovers.py DIR [--grace SECONDS]

A process belongs to DIR when its environment, command line or working directory names DIR or a path
under it. tap.sh runs it at each test's exit with the test's SCRATCH (which it exports as
RUNBOOK_TEST_SCRATCH, so every process the test starts carries it); tests/lib/prove-checked runs it
after prove with the run's directory (TMPDIR and RUNBOOK_TEST_RUN of every test; each SCRATCH is under
it): what escaped a test's own check. Programs that build their children's environment afresh (as
JupyterHub's spawner does) still give them a working directory or a command line under DIR (the hub's
HUBTEST_DIR, postgres -D, a server's --dir). No registration to forget.

Processes a test stopped with a bare `kill` may take a moment to exit: they get --grace seconds (15).
Those still there are named (PID, the test that started them, the command line) on stderr, then
stopped (SIGTERM, SIGKILL 5 s later; only those PIDs, and only if the PID still names the same
process), and the exit status is 1. Nothing left: exit status 0, no output.
"""
import argparse
import os
import re
import signal
import sys
import time


def read(path, mode="rb"):
    try:
        with open(path, mode) as f:
            return f.read()
    except OSError:
        return None


def start_time(pid):
    """The process's start (clock ticks since boot), to tell it from a later process with its PID;
    None when it is gone or a zombie (exited: nothing left to stop)."""
    stat = read(f"/proc/{pid}/stat", "r")
    if stat is None:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] in ("Z", "X") else fields[19]


def ancestors():
    """This process and its ancestors: the run's own prove-checked and make, never leftovers."""
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        status = read(f"/proc/{pid}/status", "r") or ""
        match = re.search(r"^PPid:\s*(\d+)", status, re.M)
        pid = int(match.group(1)) if match else 0
    return pids


def names_dir(data, run_dir):
    """Does data (NUL-separated strings) name run_dir or a path under it?"""
    needle = run_dir.encode()
    # " (deleted)": a working directory removed since (a test's SCRATCH is, at its exit)
    return any(re.search(re.escape(needle) + rb"(/|$| \(deleted\)$)", part) for part in data.split(b"\0") if needle in part)


SCRATCH_NAME = rb"runbook-test\.([A-Za-z0-9_-]+)\.[A-Za-z0-9]{6}"  # tap.sh's SCRATCH: runbook-test.NAME.XXXXXX


def test_of(environ, cmdline, cwd, run_dir):
    """The test that started the process: its RUNBOOK_TEST_FILE; else the test whose SCRATCH DIR is;
    else the test whose SCRATCH (a directory in DIR) the process names."""
    for var in environ.split(b"\0"):
        if var.startswith(b"RUNBOOK_TEST_FILE="):
            return var.split(b"=", 1)[1].decode(errors="replace")
    match = re.fullmatch(SCRATCH_NAME, os.path.basename(run_dir).encode())
    if not match:
        match = re.search(re.escape(run_dir.encode()) + b"/" + SCRATCH_NAME, environ + b"\0" + cmdline + b"\0" + cwd)
    return match.group(1).decode() if match else "a test of the run"


def run_processes(run_dir, skip):
    """{pid: (start time, test, command line)} of every live process that belongs to the run."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in skip:
            continue
        pid = int(entry)
        environ = read(f"/proc/{pid}/environ") or b""
        cmdline = read(f"/proc/{pid}/cmdline") or b""
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd").encode()
        except OSError:
            cwd = b""
        if not (names_dir(environ, run_dir) or names_dir(cmdline, run_dir) or names_dir(cwd, run_dir)):
            continue
        started = start_time(pid)
        if started is not None:
            command = cmdline.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
            found[pid] = (started, test_of(environ, cmdline, cwd, run_dir), command or "?")
    return found


def stop(found):
    def same(pid):
        return start_time(pid) == found[pid][0]

    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 2)):
        for pid in found:
            if same(pid):
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(same(pid) for pid in found):
            time.sleep(0.1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("--grace", type=float, default=15)
    args = ap.parse_args()
    run_dir = os.path.realpath(args.run_dir).rstrip("/")
    skip = ancestors()
    deadline = time.monotonic() + args.grace
    found = run_processes(run_dir, skip)
    while found and time.monotonic() < deadline:
        time.sleep(0.2)
        found = run_processes(run_dir, skip)
    if not found:
        return 0
    print(f"# {len(found)} process(es) outlived their test (a helper that starts a server must stop it with on_exit):",
          file=sys.stderr)
    for pid, (_, test, command) in sorted(found.items()):
        print(f"#   pid {pid}, started by {test}: {command[:300]}", file=sys.stderr)
    stop(found)
    print("#   (stopped now)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
