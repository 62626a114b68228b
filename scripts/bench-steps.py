#!/usr/bin/env python3
"""bench-steps.py - per-step times of one message through the parties, from
the step timestamps a -DVERBUS_PROF=ON build writes (core/prof.h).

    bench-steps.py DIR [DIR...]

Each DIR holds the prof.<pid> files of one run: one process that published
(it has "publish" marks: verbus bench, or vb_relay_bench's driver) and the
middle party (verbusd, or the relay).  One message is in flight at a time,
so the marks after each publish, in time order, are that message's steps.
A DIR whose name starts with "direct" is a direct-mode run (issue 19): the
publisher writes into the subscriber's ring itself, so its path is the
client's steps alone, and a message the broker touched (before the path
was switched on) is left out.  Prints the median and mean of each step, in
microseconds.
"""
import os
import statistics
import sys

PUBLISH, POST, ARRIVED, DELIVER, DONE, POSTED = 1, 2, 3, 4, 5, 6
# (label, party, point): the path of one message, publisher to subscriber.
# A point a build does not mark (the relay delivers nothing) is skipped.
PATH = [
    ("publish call -> write posted", "client", POST),
    ("posted -> broker polls it", "broker", ARRIVED),
    ("broker: polled -> handed to the broker", "broker", DELIVER),
    ("broker: -> forward posted", "broker", POST),
    ("forward posted -> subscriber polls it", "client", ARRIVED),
    ("subscriber: polled -> callback", "client", DELIVER),
    ("callback -> application has it", "client", DONE),
]
# Beside the path: how long each party's ibv_post_send() took (under rxe
# the doorbell system call, in which the kernel sends the packet and may
# even complete it at the receiver before it returns).
IN_POST = [("publisher: in ibv_post_send", "client"),
           ("broker: in ibv_post_send", "broker")]
# Direct mode: one hop, publisher to subscriber (both in the client).
DIRECT_PATH = [
    ("publish call -> write posted", "client", POST),
    ("direct: posted -> subscriber polls it", "client", ARRIVED),
    ("subscriber: polled -> callback", "client", DELIVER),
    ("callback -> application has it", "client", DONE),
]
WARMUP = 200


def load(d):
    procs = []
    for name in sorted(os.listdir(d)):
        if not name.startswith("prof."):
            continue
        with open(os.path.join(d, name)) as f:
            head = f.readline().split()
            rate = float(head[1])
            marks = [tuple(map(int, line.split())) for line in f]
        procs.append((rate, marks))
    clients = [p for p in procs if any(m[1] == PUBLISH for m in p[1])]
    others = [p for p in procs if p not in clients]
    if len(clients) != 1 or len(others) != 1:
        sys.exit(f"bench-steps: {d}: want one publishing process and one "
                 f"middle party, found {len(clients)} and {len(others)}")
    rate = clients[0][0]
    ev = [(t, "client", p) for t, p in clients[0][1]]
    ev += [(t, "broker", p) for t, p in others[0][1]]
    ev.sort()
    return rate, ev


def steps(rate, ev, direct):
    starts = [i for i, e in enumerate(ev) if e[1] == "client" and e[2] == PUBLISH]
    have = {(e[1], e[2]) for e in ev}
    path = [s for s in (DIRECT_PATH if direct else PATH) if (s[1], s[2]) in have]
    out = {s[0]: [] for s in path}
    total = []
    for k, i in enumerate(starts[WARMUP:-1], WARMUP):
        end = starts[k + 1]
        if direct and any(ev[j][1] == "broker" and ev[j][2] == ARRIVED
                          for j in range(i, end)):
            continue  # it went through the broker
        t_prev, j, got = ev[i][0], i + 1, []
        for label, party, point in path:
            while j < end and not (ev[j][1] == party and ev[j][2] == point):
                j += 1
            if j == end:
                break
            got.append((label, (ev[j][0] - t_prev) / rate))
            t_prev = ev[j][0]
            j += 1
        if len(got) != len(path):
            continue
        for label, us in got:
            out[label].append(us)
        total.append((t_prev - ev[i][0]) / rate)
    for label, party in IN_POST:
        t_post, v = None, []
        for t, who, point in ev:
            if who != party:
                continue
            if point == POST:
                t_post = t
            elif point == POSTED and t_post is not None:
                v.append((t - t_post) / rate)
                t_post = None
        if v:
            out[label] = v[WARMUP:]
    return path, out, total


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    runs = []
    for d in sys.argv[1:]:
        rate, ev = load(d)
        name = os.path.basename(d.rstrip("/"))
        runs.append((name,) + steps(rate, ev, name.startswith("direct")))
    labels = [s[0] for s in PATH]
    labels.insert(5, DIRECT_PATH[1][0])
    labels += [s[0] for s in IN_POST]
    print("| step (us) | " + " | ".join(f"{r[0]} median | {r[0]} mean" for r in runs) + " |")
    print("|---|" + "---|---|" * len(runs))
    for label in labels:
        cells = []
        for _, path, out, _ in runs:
            v = out.get(label)
            cells += [f"{statistics.median(v):.1f}", f"{statistics.mean(v):.1f}"] if v else ["-", "-"]
        print(f"| {label} | " + " | ".join(cells) + " |")
    cells = []
    for _, _, _, total in runs:
        cells += [f"{statistics.median(total):.1f}", f"{statistics.mean(total):.1f}"] if total else ["-", "-"]
    print("| publish call -> application has it | " + " | ".join(cells) + " |")
    print("messages: " + ", ".join(f"{r[0]} {len(r[3])}" for r in runs))


main()
