#!/usr/bin/python3
"""Did a killed apply and its resume do every action exactly once? Judged from the journal and from what
the server saw, never from the exit status alone.

Usage: exactly_once.py AT_KILL FINAL [--point journal:N] [--repeats IDS] [--kind KIND --requests FILE]
  AT_KILL   a copy of the journal taken right after the apply was killed, before the resume
  FINAL     the journal after the resume
  --point   the crash point: for journal:N, the copy must hold exactly N lines (killed right after the
            N-th write, not before, not later)
  --repeats action ids the runbook declares repeat_on_resume (converging actions: resume may start
            them once more)
  --kind, --requests
            every mutating request the server saw for the targets of the actions of KIND, since the world
            was reset, whatever its status: one "TARGET STATUS" a line
Prints one line per problem (nothing when all is well) and a last line "at the kill: ..."; exits 1 on a problem.

The rule, for each planned action, by its state in the journal at the kill:
  finished (an end line, outcome done or skipped, was on disk): the resume must not start it again: as
            many start lines in FINAL as at the kill (one); on the server, exactly one mutating request
            for its target (its own), and it succeeded.
  in flight (a start line, no end line): the kill may have come before or after the server acted, so
            the resume starts it again, once: two start lines; on the server, at most two mutating
            requests (one from each run) of which exactly one succeeded (the second finds it gone: 404).
  not started: one start line; on the server exactly one mutating request, and it succeeded.
Every action ends done exactly once in FINAL (a skipped one must say why and never be done). A
repeat_on_resume action may start once more than this (it converges on a state on_stop may undo).
A request that "succeeded" answered 2xx. Targets start to exist, so exactly one success is the deletion.
"""
import argparse
import collections
import json
import sys


def read_journal(path):
    events = []
    with open(path) as f:
        for line in f:
            if not line.endswith("\n"):
                break  # a torn last line: the process died while writing it
            events.append(json.loads(line))
    return events


def starts_and_ends(events):
    starts, ends = collections.Counter(), collections.defaultdict(list)
    for e in events[1:]:
        if e.get("type") == "start":
            starts[e["id"]] += 1
        elif e.get("type") == "end":
            ends[e["id"]].append(e)
    return starts, ends


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("at_kill")
    ap.add_argument("final")
    ap.add_argument("--point", default="")
    ap.add_argument("--repeats", default="")
    ap.add_argument("--kind")
    ap.add_argument("--requests")
    args = ap.parse_args()
    problems = []
    at_kill, final = read_journal(args.at_kill), read_journal(args.final)
    if args.point.startswith("journal:") and len(at_kill) != int(args.point.split(":")[1]):
        problems.append("the journal at the kill holds %d lines, not %s" % (len(at_kill), args.point.split(":")[1]))
    plan = final[0]["plan"]
    repeats = {int(i) for i in args.repeats.split(",") if i}
    starts_then, ends_then = starts_and_ends(at_kill)
    starts_now, ends_now = starts_and_ends(final)
    requests = collections.defaultdict(list)
    if args.requests:
        with open(args.requests) as f:
            for line in f:
                if line.strip():
                    target, status = line.rsplit(None, 1)
                    requests[target].append(int(status))
    states = collections.Counter()
    for a in plan["actions"]:
        aid, what = a["id"], "action %d (%s %s)" % (a["id"], a["kind"], a["target"])
        finished = any(e["outcome"] in ("done", "skipped") for e in ends_then[aid])
        state = "finished" if finished else "in flight" if starts_then[aid] else "not started"
        states[state] += 1
        allowed = {"finished": starts_then[aid], "in flight": 2, "not started": 1}[state]
        if aid in repeats:
            allowed += 1
        if starts_now[aid] > allowed or starts_now[aid] < 1:
            problems.append("%s, %s at the kill: started %d times in all (%d at the kill), expected at most %d"
                            % (what, state, starts_now[aid], starts_then[aid], allowed))
        outcomes = [e["outcome"] for e in ends_now[aid]]
        skipped_ok = outcomes and all(o == "skipped" for o in outcomes) and all(e.get("message") for e in ends_now[aid])
        if outcomes.count("done") != 1 and not skipped_ok and aid not in repeats:
            problems.append("%s ended %s" % (what, ", ".join(outcomes) or "never"))
        if args.kind and a["kind"] == args.kind:
            seen = requests.get(a["target"], [])
            ok = sum(1 for s in seen if 200 <= s < 300)
            most = 2 if state == "in flight" else 1
            if len(seen) > most or ok != 1:
                problems.append("%s, %s at the kill: the server saw %d mutating requests (statuses %s), "
                                "expected at most %d with exactly one success"
                                % (what, state, len(seen), " ".join(map(str, seen)) or "none", most))
    for p in problems:
        print(p)
    print("at the kill: %d finished, %d in flight, %d not started"
          % (states["finished"], states["in flight"], states["not started"]))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
