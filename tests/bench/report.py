#!/usr/bin/env python3
"""report.py DIR - the report of scripts/bench-compare.sh.

Reads DIR/results.csv (tool,test,size,payload,metric,value: one figure a
line, written by scripts/bench-compare-guest.sh) and DIR/machine.txt, and
writes DIR/results.md (one Markdown table with every figure and the ratios
Verbus/raw verbs, Verbus/UCX, Verbus/NATS, then the issue's targets; then
Verbus direct (issue 19: verbus bench --direct) beside raw verbs, UCX and
brokered Verbus, with issue 19's targets; then Verbus over TCP beside NATS
with the ratio Verbus-TCP/NATS and issue 16's targets; then the cluster:
Verbus across two brokers of a cluster beside a NATS cluster and the raw
three-hop relay, with issue 15's targets),
DIR/plot.dat and DIR/results.png (gnuplot: latency and throughput by
message size).  A figure that was not measured shows as a dash.
"""
import csv
import math
import os
import shutil
import subprocess
import sys

SIZES = [64, 1024, 65536]
SIZE_NAME = {64: "64 B", 1024: "1 KiB", 65536: "64 KiB"}

# The rows of the table: (label, metric, lower-is-better, and for each
# column the (tool, test) it is read from, or None).
LAT = "lower"
TPUT = "higher"
ROWS = [
    ("one-way latency, median (us)", "p50_us", LAT,
     ("raw", "ib_write_lat"), ("ucx", "am_lat"), ("nats", "latency"),
     ("verbus", "latency"), ("verbus_spin", "latency"), ("verbus_busy", "latency"),
     ("relay", "latency"), ("relay_events", "latency")),
    ("one-way latency, p99 (us)", "p99_us", LAT,
     ("raw", "ib_write_lat"), ("ucx", "am_lat"), ("nats", "latency"),
     ("verbus", "latency"), ("verbus_spin", "latency"), ("verbus_busy", "latency"),
     ("relay", "latency"), ("relay_events", "latency")),
    ("one-way latency, p99.9 (us)", "p999_us", LAT,
     ("raw", "ib_write_lat"), ("ucx", "am_lat"), ("nats", "latency"),
     ("verbus", "latency"), ("verbus_spin", "latency"), ("verbus_busy", "latency"),
     ("relay", "latency"), ("relay_events", "latency")),
    ("request/reply round trip, median (us)", "p50_us", LAT,
     ("raw", "ib_write_lat"), ("ucx", "am_lat"), ("nats", "rtt"),
     ("verbus", "rtt"), ("verbus_spin", "rtt"), ("verbus_busy", "rtt"),
     ("relay", "rtt"), ("relay_events", "rtt")),
    ("request/reply round trip, p99 (us)", "p99_us", LAT,
     ("raw", "ib_write_lat"), ("ucx", "am_lat"), ("nats", "rtt"),
     ("verbus", "rtt"), ("verbus_spin", "rtt"), ("verbus_busy", "rtt"),
     ("relay", "rtt"), ("relay_events", "rtt")),
    ("1->1 throughput (msg/s)", "msgs_per_s", TPUT,
     ("raw", "ib_write_bw"), ("ucx", "am_bw"), ("nats", "throughput"),
     ("verbus", "throughput"), ("verbus_spin", "throughput"),
     ("verbus_busy", "throughput"), ("relay", "throughput"), None),
    ("1->1 throughput (MB/s)", "mb_per_s", TPUT,
     ("raw", "ib_write_bw"), ("ucx", "am_bw"), ("nats", "throughput"),
     ("verbus", "throughput"), ("verbus_spin", "throughput"),
     ("verbus_busy", "throughput"), ("relay", "throughput"), None),
    ("1->8 fan-out, deliveries (msg/s)", "msgs_per_s", TPUT,
     ("raw", "ib_write_bw"), None, ("nats", "fanout"),
     ("verbus", "fanout"), ("verbus_spin", "fanout"),
     ("verbus_busy", "fanout"), None, None),
    ("1->8 fan-out, deliveries (MB/s)", "mb_per_s", TPUT,
     ("raw", "ib_write_bw"), None, ("nats", "fanout"),
     ("verbus", "fanout"), ("verbus_spin", "fanout"),
     ("verbus_busy", "fanout"), None, None),
    ("raw send/recv latency, median (us)", "p50_us", LAT,
     ("raw", "ib_send_lat"), None, None, None, None, None, None, None),
]


def load(path):
    vals, payload = {}, {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            key = (r["tool"], r["test"], int(r["size"]), r["metric"])
            try:
                v = float(r["value"])
            except ValueError:
                continue
            if not math.isfinite(v):
                continue  # perftest prints "inf" for a run it mistimed
            vals[key] = v
            payload[(r["tool"], int(r["size"]))] = int(r["payload"])
    return vals, payload


def fmt(v):
    if v is None:
        return "-"
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    return f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def ratio(a, b):
    return a / b if a is not None and b else None


def get(vals, src, size, metric):
    if src is None:
        return None
    return vals.get((src[0], src[1], size, metric))


def best(v, better):
    """The best of the Verbus configurations measured, or None."""
    have = [x for x in v if x is not None]
    if not have:
        return None
    return min(have) if better == LAT else max(have)


def table(vals, payload):
    out = [
        "| measure | size | raw verbs | raw relay | raw relay, events | UCX "
        "| NATS | Verbus | Verbus spin | Verbus busy-poll | better "
        "| Verbus/raw | Verbus/relay, events | Verbus/UCX | Verbus/NATS "
        "| best Verbus/raw | best Verbus/relay | best Verbus/UCX "
        "| best Verbus/NATS |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
        "---|---|",
    ]
    for label, metric, better, *cols in ROWS:
        for size in SIZES:
            v = [get(vals, c, size, metric) for c in cols]
            if all(x is None for x in v):
                continue
            raw, ucx, nats, vb, vbs, vbb, rel, rele = v
            b = best((vb, vbs, vbb), better)
            out.append(
                f"| {label} | {SIZE_NAME[size]} | {fmt(raw)} | {fmt(rel)} "
                f"| {fmt(rele)} | {fmt(ucx)} "
                f"| {fmt(nats)} | {fmt(vb)} | {fmt(vbs)} | {fmt(vbb)} "
                f"| {better} "
                f"| {fmt(ratio(vb, raw))} | {fmt(ratio(vb, rele))} "
                f"| {fmt(ratio(vb, ucx))} "
                f"| {fmt(ratio(vb, nats))} | {fmt(ratio(b, raw))} "
                f"| {fmt(ratio(b, rel))} "
                f"| {fmt(ratio(b, ucx))} | {fmt(ratio(b, nats))} |")
    notes = [
        "",
        "raw verbs: perftest between the publisher's and the subscriber's "
        "devices, one hop (ib_write_lat/ib_send_lat: half the round trip; "
        "ib_write_bw: messages of that size, MB/s = msg/s x size / 10^6). "
        "raw relay: vb_relay_bench, the floor of two hops on this "
        "device: the least a broker can do in raw verbs (one "
        "WRITE_WITH_IMM in, one out, zero-copy; no subjects, frames or "
        "credits), publisher -> relay -> subscriber as Verbus measures, "
        "busy-polling like perftest; raw relay, events: the same sleeping "
        "on the completion channel when idle, beside event-driven Verbus "
        "(Verbus/relay, events). best Verbus/relay sets the best Verbus "
        "configuration beside the busy-polling relay. "
        "UCX: ucx_perftest UCP active messages (ucp_am_lat: half the round "
        "trip; ucp_am_bw), one hop. NATS and Verbus: publisher -> broker "
        "-> subscriber, two hops, stamped with the one clock of the guest. "
        "The request/reply rows set the round trip (four hops) beside the "
        "one-hop one-way figures of raw verbs and UCX, as the issue's "
        "target (<= 4.0x raw) is stated. The fan-out rows set all 8 "
        "subscribers' deliveries beside one link's ib_write_bw. "
        "Verbus is event-driven (every party sleeps when idle); Verbus "
        "spin: adaptive polling, every party polling up to the spin time "
        "after work before it sleeps (verbusd spin_us, verbus bench "
        "--spin); Verbus busy-poll: every party spinning all the time, as "
        "perftest and ucx_perftest do. The ratios are for event-driven "
        "Verbus, then for the best of the three.",
    ]
    vb_big = payload.get(("verbus", 65536))
    if vb_big and vb_big != 65536:
        notes.append(
            "")
        notes.append(
            f"Verbus's 64 KiB rows carry {vb_big:,}-byte payloads: the "
            "verbus tool's connections accept at most 64 KiB of subject "
            "+ payload.")
    return out + notes


# Verbus over TCP beside NATS (issue 16): every row of ROWS that has a NATS
# figure, read from the tool "verbus_tcp" with the same test.  Event-driven
# Verbus over RDMA is shown beside them for reference.
NATS_COL = 2
VERBUS_COL = 3


def tcp_table(vals):
    out = [
        "", "## Verbus over TCP beside NATS (same hosts, same run)", "",
        "| measure | size | NATS | Verbus over TCP | Verbus over RDMA "
        "| better | Verbus-TCP/NATS |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, metric, better, *cols in ROWS:
        nats_src = cols[NATS_COL]
        if nats_src is None:
            continue
        for size in SIZES:
            nats = get(vals, nats_src, size, metric)
            tcp = get(vals, ("verbus_tcp", nats_src[1]), size, metric)
            rdma = get(vals, cols[VERBUS_COL], size, metric)
            if tcp is None and nats is None:
                continue
            out.append(
                f"| {label} | {SIZE_NAME[size]} | {fmt(nats)} | {fmt(tcp)} "
                f"| {fmt(rdma)} | {better} | {fmt(ratio(tcp, nats))} |")
    if len(out) == 5:
        return []
    out += [
        "",
        "Verbus over TCP: a verbusd listening on TCP only (--listen "
        "tcp://) on host 1, verbus bench -s tcp://... with its publisher "
        "on host 2 and its subscribers on host 3, event-driven, the same "
        "tests, sizes and counts as NATS; run after the RDMA rows, with "
        "no RDMA broker beside it. Verbus over RDMA: the event-driven "
        "column of the table above.",
    ]
    return out


def tcp_targets(vals):
    """Issue 16's targets for Verbus over TCP, judged against NATS."""
    def g(tool, test, size, metric):
        return vals.get((tool, test, size, metric))

    if not any(k[0] == "verbus_tcp" for k in vals):
        return []
    lines = ["", "| target (issue 16) | measured | met? |", "|---|---|---|"]
    for name, test, size, metric, op in (
            ("64 B one-way latency (median) lower than NATS's "
             "(Verbus-TCP/NATS < 1)", "latency", 64, "p50_us", "<"),
            ("64 B request/reply (median) lower than NATS's "
             "(Verbus-TCP/NATS < 1)", "rtt", 64, "p50_us", "<"),
            ("64 B message rate at least NATS's (Verbus-TCP/NATS >= 1)",
             "throughput", 64, "msgs_per_s", ">="),
            ("64 KiB throughput at least NATS's, MB/s "
             "(Verbus-TCP/NATS >= 1)", "throughput", 65536, "mb_per_s",
             ">=")):
        r = ratio(g("verbus_tcp", test, size, metric),
                  g("nats", test, size, metric))
        if r is None:
            lines.append(f"| {name} | not measured | - |")
            continue
        ok = r < 1.0 if op == "<" else r >= 1.0
        lines.append(f"| {name} | {r:.2f}x | {'yes' if ok else 'no'} |")
    won = of = 0
    for label, metric, better, *cols in ROWS:
        src = cols[NATS_COL]
        if src is None:
            continue
        for size in SIZES:
            tcp = get(vals, ("verbus_tcp", src[1]), size, metric)
            nats = get(vals, src, size, metric)
            if tcp is None or nats is None:
                continue
            of += 1
            won += (tcp < nats) if better == LAT else (tcp > nats)
    lines.append(f"| Verbus over TCP ahead of NATS on every row | {won} of "
                 f"{of} rows | {'yes' if of and won == of else 'no'} |")
    return lines


def targets(vals):
    """The issue's targets, each with the figures it is judged on."""
    def g(tool, test, size, metric):
        return vals.get((tool, test, size, metric))

    lines = ["", "| target (issue 6) | measured | met? |", "|---|---|---|"]

    def judge(name, a, b, op, bound, unit="x"):
        r = ratio(a, b)
        if r is None:
            lines.append(f"| {name} | not measured | - |")
            return
        ok = r <= bound if op == "<=" else r >= bound
        lines.append(f"| {name} | {r:.2f}{unit} | {'yes' if ok else 'no'} |")

    def info(name, a, b):
        """A ratio shown beside the targets, judged by none."""
        r = ratio(a, b)
        lines.append(f"| {name} | {'not measured' if r is None else f'{r:.2f}x'} | - |")

    def low(test):
        """The lowest 64 B median of the three Verbus configurations."""
        return best([g(t, test, 64, "p50_us") for t in
                     ("verbus", "verbus_spin", "verbus_busy")], LAT)

    def high(size, metric):
        """The best 1->1 throughput of the three Verbus configurations."""
        return best([g(t, "throughput", size, metric) for t in
                     ("verbus", "verbus_spin", "verbus_busy")], TPUT)

    judge("64 B pub->sub latency <= 2.0x raw ib_write_lat",
          g("verbus", "latency", 64, "p50_us"),
          g("raw", "ib_write_lat", 64, "p50_us"), "<=", 2.0)
    judge("the same, best Verbus configuration", low("latency"),
          g("raw", "ib_write_lat", 64, "p50_us"), "<=", 2.0)
    judge("64 B request/reply <= 4.0x raw ib_write_lat",
          g("verbus", "rtt", 64, "p50_us"),
          g("raw", "ib_write_lat", 64, "p50_us"), "<=", 4.0)
    judge("the same, best Verbus configuration", low("rtt"),
          g("raw", "ib_write_lat", 64, "p50_us"), "<=", 4.0)
    judge("64 KiB throughput >= 0.90x raw ib_write_bw (MB/s)",
          g("verbus", "throughput", 65536, "mb_per_s"),
          g("raw", "ib_write_bw", 65536, "mb_per_s"), ">=", 0.90)
    judge("the same, best Verbus configuration",
          high(65536, "mb_per_s"),
          g("raw", "ib_write_bw", 65536, "mb_per_s"), ">=", 0.90)
    judge("64 B message rate above NATS's (Verbus/NATS > 1)",
          g("verbus", "throughput", 64, "msgs_per_s"),
          g("nats", "throughput", 64, "msgs_per_s"), ">", 1.0)
    judge("the same, best Verbus configuration",
          high(64, "msgs_per_s"),
          g("nats", "throughput", 64, "msgs_per_s"), ">", 1.0)
    judge("64 B latency more than 10x lower than NATS (NATS/Verbus >= 10)",
          g("nats", "latency", 64, "p50_us"),
          g("verbus", "latency", 64, "p50_us"), ">=", 10.0)
    judge("the same, best Verbus configuration",
          g("nats", "latency", 64, "p50_us"), low("latency"), ">=", 10.0)
    # The floor: what two raw hops through a minimal relay cost here, and
    # what Verbus costs above it.
    judge("floor: raw relay 64 B one-way / raw ib_write_lat "
          "(within 2.0x: the target is reachable here)",
          g("relay", "latency", 64, "p50_us"),
          g("raw", "ib_write_lat", 64, "p50_us"), "<=", 2.0)
    judge("floor: raw relay 64 B round trip / raw ib_write_lat "
          "(within 4.0x: reachable)",
          g("relay", "rtt", 64, "p50_us"),
          g("raw", "ib_write_lat", 64, "p50_us"), "<=", 4.0)
    # The same floor for the bytes Verbus puts on the wire for 64 B (its
    # frame: header, subject, payload), and Verbus above it.
    judge("floor: raw relay at Verbus's 64 B frame size (112 B) one-way / "
          "raw ib_write_lat (within 2.0x: reachable)",
          g("relay_wire", "latency", 64, "p50_us"),
          g("raw", "ib_write_lat", 64, "p50_us"), "<=", 2.0)
    judge("floor: raw relay at 112 B round trip / raw ib_write_lat "
          "(within 4.0x: reachable)",
          g("relay_wire", "rtt", 64, "p50_us"),
          g("raw", "ib_write_lat", 64, "p50_us"), "<=", 4.0)
    info("best Verbus 64 B one-way / raw relay at 112 B",
         low("latency"), g("relay_wire", "latency", 64, "p50_us"))
    info("best Verbus 64 B request/reply / raw relay at 112 B",
         low("rtt"), g("relay_wire", "rtt", 64, "p50_us"))
    judge("floor: raw relay 64 KiB MB/s / raw ib_write_bw "
          "(at least 0.90x: reachable)",
          g("relay", "throughput", 65536, "mb_per_s"),
          g("raw", "ib_write_bw", 65536, "mb_per_s"), ">=", 0.90)
    ahead = {"ucx": [0, 0], "nats": [0, 0]}
    for label, metric, better, *cols in ROWS:
        for size in SIZES:
            vb = best([get(vals, c, size, metric) for c in cols[3:6]],
                      better)
            for i, tool in ((1, "ucx"), (2, "nats")):
                other = get(vals, cols[i], size, metric)
                if vb is None or other is None:
                    continue
                ahead[tool][1] += 1
                if (vb < other) if better == LAT else (vb > other):
                    ahead[tool][0] += 1
    for tool, name in (("ucx", "UCX"), ("nats", "NATS")):
        won, of = ahead[tool]
        lines.append(f"| ahead of {name} on every row (best Verbus) "
                     f"| {won} of {of} rows "
                     f"| {'yes' if of and won == of else 'no'} |")
    return lines


# Direct mode (issue 19): verbus bench --direct, the publisher writing into
# the subscribers' rings, one hop, the broker only negotiating (and carrying
# request/reply's replies).  The rows of ROWS that Verbus has, read from
# these tools with the same test; each test also has "sent" (the messages
# the bench sent) and "broker_in" (those the broker received meanwhile).
DIRECT_VB = ("verbus_direct", "verbus_direct_spin", "verbus_direct_busy")
BROKERED_VB = ("verbus", "verbus_spin", "verbus_busy")
RAW_COL = 0
UCX_COL = 1


def pct(a, b):
    r = ratio(a, b)
    return "-" if r is None else f"{100 * r:.0f}%"


def direct_table(vals):
    if not any(k[0] in DIRECT_VB for k in vals):
        return []
    out = [
        "", "## Verbus direct (issue 19): the publisher writes into the "
        "subscribers' rings", "",
        "| measure | size | raw verbs | UCX | Verbus | best Verbus "
        "| Verbus direct | direct spin | direct busy-poll | better "
        "| direct/raw | best direct/raw | direct/UCX | best direct/UCX "
        "| best direct/best Verbus | through the broker (direct, spin, "
        "busy-poll) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, metric, better, *cols in ROWS:
        vb_src = cols[VERBUS_COL]
        if vb_src is None:
            continue
        test = vb_src[1]
        for size in SIZES:
            d = [get(vals, (t, test), size, metric) for t in DIRECT_VB]
            if all(x is None for x in d):
                continue
            raw = get(vals, cols[RAW_COL], size, metric)
            ucx = get(vals, cols[UCX_COL], size, metric)
            vb = get(vals, vb_src, size, metric)
            bvb = best([get(vals, (t, test), size, metric)
                        for t in BROKERED_VB], better)
            bd = best(d, better)
            via = ", ".join(
                pct(get(vals, (t, test), size, "broker_in"),
                    get(vals, (t, test), size, "sent")) for t in DIRECT_VB)
            out.append(
                f"| {label} | {SIZE_NAME[size]} | {fmt(raw)} | {fmt(ucx)} "
                f"| {fmt(vb)} | {fmt(bvb)} | {fmt(d[0])} | {fmt(d[1])} "
                f"| {fmt(d[2])} | {better} | {fmt(ratio(d[0], raw))} "
                f"| {fmt(ratio(bd, raw))} | {fmt(ratio(d[0], ucx))} "
                f"| {fmt(ratio(bd, ucx))} | {fmt(ratio(bd, bvb))} "
                f"| {via} |")
    out += [
        "",
        "Verbus direct: the Verbus rows again with verbus bench --direct "
        "(the publisher opened with VB_OPT_DIRECT, the subscriptions made "
        "with VB_SUB_DIRECT), the same broker settings, publisher on host 2, "
        "subscribers on host 3, broker on host 1: once the broker has "
        "answered a subject's DirectQuery the publisher RDMA-WRITEs into "
        "each subscriber's ring, one hop, like raw verbs and UCX; a "
        "subject's first messages, those sent while a path is switched "
        "off (its queue of copies full), and request/reply's replies (an "
        "inbox is never direct) go through the broker. Event-driven, spin "
        "and busy-poll as brokered Verbus (the smoke: event-driven only). "
        "through the broker: of the messages the bench sent in "
        "that test (request/reply: requests and replies; latency: with "
        "the warm-up), the share the broker received; a throughput row "
        "that went mostly through it measures the brokered path. best: "
        "the best configuration measured. No 64 KiB fan-out "
        "(docs/PERFORMANCE.md).",
    ]
    return out


def direct_targets(vals):
    """Issue 19's targets for direct mode, judged; never a failure."""
    if not any(k[0] in DIRECT_VB for k in vals):
        return []

    def g(tool, test, size, metric):
        return vals.get((tool, test, size, metric))

    lines = ["", "| target (issue 19) | measured | met? |", "|---|---|---|"]

    def judge(name, pick, b, op, bound):
        """pick: (figure, tool, test, size) of the direct side."""
        a, tool, test, size = pick
        r = ratio(a, b)
        if r is None:
            lines.append(f"| {name} | not measured | - |")
            return
        ok = {"<": r < bound, "<=": r <= bound, ">": r > bound,
              ">=": r >= bound}[op]
        via = pct(g(tool, test, size, "broker_in"), g(tool, test, size, "sent"))
        via = "" if via == "-" else f"; {via} through the broker"
        lines.append(f"| {name} | {r:.2f}x ({fmt(a)} / {fmt(b)}{via}) "
                     f"| {'yes' if ok else 'no'} |")

    def one(test, size, metric):
        return (g("verbus_direct", test, size, metric), "verbus_direct",
                test, size)

    def top(test, size, metric, better):
        """The best direct configuration's figure, and its tool."""
        have = [(g(t, test, size, metric), t) for t in DIRECT_VB
                if g(t, test, size, metric) is not None]
        if not have:
            return (None, None, test, size)
        v, t = (min if better == LAT else max)(have)
        return (v, t, test, size)

    raw_lat = g("raw", "ib_write_lat", 64, "p50_us")
    ucx_lat = g("ucx", "am_lat", 64, "p50_us")
    raw_bw = g("raw", "ib_write_bw", 65536, "mb_per_s")
    judge("64 B direct one-way latency (median) <= 1.2x raw ib_write_lat",
          one("latency", 64, "p50_us"), raw_lat, "<=", 1.2)
    judge("the same, best direct configuration",
          top("latency", 64, "p50_us", LAT), raw_lat, "<=", 1.2)
    # Publisher and subscriber in two processes (vb_one_hop), as
    # ib_write_lat's two ends; verbus bench's one thread waits out the
    # publisher's post before its subscriber polls.
    two = (("verbus_direct_2p", "event-driven"),
           ("verbus_direct_2p_busy", "busy-polling"))
    for tool, how in two:
        judge(f"the same, publisher and subscriber in two processes "
              f"(vb_one_hop, {how})",
              (g(tool, "latency", 64, "p50_us"), tool, "latency", 64),
              raw_lat, "<=", 1.2)
    judge("64 B direct one-way latency (median) below UCX's "
          "(ucp_am_lat; direct/UCX < 1)",
          one("latency", 64, "p50_us"), ucx_lat, "<", 1.0)
    judge("the same, best direct configuration",
          top("latency", 64, "p50_us", LAT), ucx_lat, "<", 1.0)
    for tool, how in two:
        judge(f"the same, publisher and subscriber in two processes "
              f"(vb_one_hop, {how})",
              (g(tool, "latency", 64, "p50_us"), tool, "latency", 64),
              ucx_lat, "<", 1.0)
    judge("64 KiB direct 1->1 throughput >= 0.90x raw ib_write_bw (MB/s)",
          one("throughput", 65536, "mb_per_s"), raw_bw, ">=", 0.90)
    judge("the same, best direct configuration",
          top("throughput", 65536, "mb_per_s", TPUT), raw_bw, ">=", 0.90)
    judge("64 B direct request/reply (median) <= 2.5x raw ib_write_lat",
          one("rtt", 64, "p50_us"), raw_lat, "<=", 2.5)
    judge("the same, best direct configuration",
          top("rtt", 64, "p50_us", LAT), raw_lat, "<=", 2.5)
    for name, test in (("64 B one-way latency", "latency"),
                       ("64 B request/reply", "rtt")):
        r = ratio(top(test, 64, "p50_us", LAT)[0],
                  best([g(t, test, 64, "p50_us") for t in BROKERED_VB], LAT))
        lines.append(f"| {name}, best direct / best brokered Verbus (not a "
                     f"target) | {'not measured' if r is None else f'{r:.2f}x'}"
                     f" | - |")
    lines += [
        "",
        "A figure measured with a large share of its messages through the "
        "broker (a subject's first ones, until the broker's answer is in "
        "and the direct connection is up, or while the path was switched "
        "off) is the brokered path's as much as direct mode's: the share "
        "is given beside it.",
    ]
    return lines


# The cluster (issue 15): Verbus from broker 1 to broker 2 of three beside
# a NATS cluster of three and the raw floor of those three hops (two relays
# in a chain).  The rows of ROWS that NATS has, read from these tools.
CLUSTER_VB = ("verbus_cluster", "verbus_cluster_spin", "verbus_cluster_busy")


def cluster_rows(vals):
    """(label, metric, better, size, figures by column) of the table."""
    rows = []
    for label, metric, better, *cols in ROWS:
        nats_src = cols[NATS_COL]
        if nats_src is None:
            continue
        test = nats_src[1]
        relay_ok = test in ("latency", "rtt", "throughput")
        for size in SIZES:
            f = {
                "relay3": get(vals, ("relay3", test), size, metric)
                if relay_ok else None,
                "relay3_events": get(vals, ("relay3_events", test), size,
                                     metric) if test != "throughput"
                and relay_ok else None,
                "nats_cluster": get(vals, ("nats_cluster", test), size,
                                    metric),
                "nats": get(vals, nats_src, size, metric),
                "verbus": get(vals, cols[VERBUS_COL], size, metric),
            }
            for t in CLUSTER_VB:
                f[t] = get(vals, (t, test), size, metric)
            f["best"] = best([f[t] for t in CLUSTER_VB], better)
            # The floor: the lower of the relay's two modes (busy-polling
            # three parties on two vCPUs can be the slower one).
            f["relay3_best"] = best([f["relay3"], f["relay3_events"]],
                                    better)
            if f["verbus_cluster"] is None and f["nats_cluster"] is None \
                    and f["relay3"] is None:
                continue
            rows.append((label, metric, better, size, test, f))
    return rows


def cluster_table(vals):
    rows = cluster_rows(vals)
    if not rows:
        return []
    out = [
        "", "## The cluster (issue 15): across two brokers, beside a NATS "
        "cluster and the raw three-hop relay", "",
        "| measure | size | raw relay, 3 hops | raw relay, 3 hops, events "
        "| NATS cluster | Verbus cluster | Verbus cluster spin "
        "| Verbus cluster busy-poll | better "
        "| Verbus/relay3, events | best Verbus/best relay3 "
        "| Verbus/NATS | best Verbus/NATS "
        "| NATS, one server | Verbus, one broker |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, metric, better, size, test, f in rows:
        vb = f["verbus_cluster"]
        out.append(
            f"| {label} | {SIZE_NAME[size]} | {fmt(f['relay3'])} "
            f"| {fmt(f['relay3_events'])} | {fmt(f['nats_cluster'])} "
            f"| {fmt(vb)} | {fmt(f['verbus_cluster_spin'])} "
            f"| {fmt(f['verbus_cluster_busy'])} | {better} "
            f"| {fmt(ratio(vb, f['relay3_events']))} "
            f"| {fmt(ratio(f['best'], f['relay3_best']))} "
            f"| {fmt(ratio(vb, f['nats_cluster']))} "
            f"| {fmt(ratio(f['best'], f['nats_cluster']))} "
            f"| {fmt(f['nats'])} | {fmt(f['verbus'])} |")
    out += [
        "",
        "Three brokers on hosts 1, 2 and 3; the publisher on broker 1 "
        "(from host 2), the subscribers and the responder on broker 2 (from "
        "host 3): publisher -> broker 1 -> broker 2 -> subscriber, three "
        "hops (request/reply: six). Verbus cluster: verbusd in one "
        "ZooKeeper cluster, routes over RDMA, verbus bench --sub-server; "
        "event-driven, spin (adaptive polling) and busy-poll as the single "
        "broker (broker 3, off the path, event-driven in all). NATS "
        "cluster: nats-server with cluster routes (a full mesh, over the "
        "hosts' links), vb_nats_bench --sub-server. raw relay, 3 hops: "
        "vb_relay_bench, relay A on host 1 forwarding to relay B on host 2 "
        "(relay --next), the floor of those three hops, busy-polling, and "
        "event-driven (events). Ratios: Verbus (event-driven) / the "
        "event-driven relay, the best Verbus configuration / the "
        "relay's better mode, Verbus / the NATS cluster (event-driven, then "
        "the best configuration). The last two columns: the same test "
        "through one server (NATS) and one broker (event-driven Verbus), "
        "two hops, from the tables above.",
    ]
    return out


def cluster_targets(vals):
    """Issue 15's targets, judged; never a failure."""
    rows = cluster_rows(vals)
    if not rows:
        return []

    def g(tool, test, size, metric):
        return vals.get((tool, test, size, metric))

    lines = ["", "| target (issue 15) | measured | met? |", "|---|---|---|"]

    def judge(name, r, op, bound):
        if r is None:
            lines.append(f"| {name} | not measured | - |")
            return
        ok = r <= bound if op == "<=" else r >= bound
        lines.append(f"| {name} | {r:.2f}x | {'yes' if ok else 'no'} |")

    def floor(test):
        return best([g("relay3", test, 64, "p50_us"),
                     g("relay3_events", test, 64, "p50_us")], LAT)

    best64 = best([g(t, "latency", 64, "p50_us") for t in CLUSTER_VB], LAT)
    judge("64 B cross-broker one-way latency (median), best Verbus "
          "configuration <= 1.2x the raw three-hop relay (its better mode)",
          ratio(best64, floor("latency")), "<=", 1.2)
    judge("the same, event-driven Verbus <= 1.2x the event-driven relay",
          ratio(g("verbus_cluster", "latency", 64, "p50_us"),
                g("relay3_events", "latency", 64, "p50_us")), "<=", 1.2)
    bestrtt = best([g(t, "rtt", 64, "p50_us") for t in CLUSTER_VB], LAT)
    judge("64 B cross-broker request/reply (median), best Verbus "
          "configuration <= 1.2x the raw relay's six hops (its better mode)",
          ratio(bestrtt, floor("rtt")), "<=", 1.2)
    for name, pick in (("event-driven Verbus", lambda f: f["verbus_cluster"]),
                       ("best Verbus configuration", lambda f: f["best"])):
        won = of = 0
        for label, metric, better, size, test, f in rows:
            if better == LAT or (size == 64 and metric == "msgs_per_s"):
                vb, nats = pick(f), f["nats_cluster"]
                if vb is None or nats is None:
                    continue
                of += 1
                won += (vb < nats) if better == LAT else (vb > nats)
        lines.append(
            f"| ahead of the NATS cluster on every latency row and the "
            f"64 B rate rows ({name}) | {won} of {of} rows "
            f"| {'yes' if of and won == of else 'no'} |")
    return lines


def plot(d, vals):
    dat = os.path.join(d, "plot.dat")
    series = [("raw", "ib_write_lat", "ib_write_bw"),
              ("relay", "latency", "throughput"), ("ucx", "am_lat", "am_bw"),
              ("nats", "latency", "throughput"),
              ("verbus", "latency", "throughput"),
              ("verbus_spin", "latency", "throughput"),
              ("verbus_tcp", "latency", "throughput"),
              ("verbus_direct", "latency", "throughput"),
              ("verbus_direct_busy", "latency", "throughput")]
    with open(dat, "w") as f:
        f.write("# size " + " ".join(
            f"{t}_p50_us {t}_mb_per_s" for t, _, _ in series) + "\n")
        for size in SIZES:
            row = [str(size)]
            for tool, lat, tput in series:
                for key in ((tool, lat, size, "p50_us"),
                            (tool, tput, size, "mb_per_s")):
                    v = vals.get(key)
                    row.append("NaN" if v is None else f"{v}")
            f.write(" ".join(row) + "\n")
    names = ["raw verbs (perftest), one hop",
             "raw relay (vb_relay_bench), two hops", "UCX (ucp am)",
             "NATS (TCP)",
             "Verbus (via verbusd)", "Verbus, adaptive spin",
             "Verbus over TCP", "Verbus direct",
             "Verbus direct, busy-poll"]
    lat = ", ".join(
        f"'{dat}' using 1:{2 + 2 * i} with linespoints title '{n}'"
        for i, n in enumerate(names))
    tput = ", ".join(
        f"'{dat}' using 1:{3 + 2 * i} with linespoints title '{n}'"
        for i, n in enumerate(names))
    script = f"""
set terminal pngcairo size 1200,500 font ',10'
set output '{os.path.join(d, "results.png")}'
set multiplot layout 1,2 title 'Verbus (RDMA, direct and TCP) beside raw verbs, UCX and NATS (same run)'
# gnuplot has 8 colours; the ninth series would take the first's.
set linetype 9 lc rgb 'dark-orange'
set logscale xy
set xtics ('64 B' 64, '1 KiB' 1024, '64 KiB' 65536)
set xrange [40:100000]
set grid
set key top left
set xlabel 'message size'
set ylabel 'one-way latency, median (us)'
set title 'latency (lower is better)'
plot {lat}
set ylabel 'throughput, 1->1 (MB/s)'
set title 'throughput (higher is better)'
plot {tput}
unset multiplot
"""
    # fontconfig wants a writable cache; the guest's home may be read-only.
    env = dict(os.environ, XDG_CACHE_HOME=os.path.join(d, ".cache"))
    subprocess.run(["gnuplot"], input=script, text=True, check=True, env=env)
    shutil.rmtree(os.path.join(d, ".cache"), ignore_errors=True)


def main():
    d = sys.argv[1]
    vals, payload = load(os.path.join(d, "results.csv"))
    machine = []
    for name in ("machine.txt", "host.txt"):
        path = os.path.join(d, name)
        if os.path.exists(path):
            with open(path) as f:
                machine += f.read().strip().splitlines()
    md = ["# Verbus beside raw verbs, UCX and NATS", ""]
    md += [f"- {line}" for line in machine]
    md += [""] + table(vals, payload) + targets(vals)
    md += direct_table(vals) + direct_targets(vals)
    md += tcp_table(vals) + tcp_targets(vals)
    md += cluster_table(vals) + cluster_targets(vals)
    md += ["", "![latency and throughput by size](results.png)", ""]
    with open(os.path.join(d, "results.md"), "w") as f:
        f.write("\n".join(md))
    plot(d, vals)


if __name__ == "__main__":
    main()
