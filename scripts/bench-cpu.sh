#!/bin/bash
# bench-cpu.sh - CPU cost per message on Verbus's core path and its TCP
# path, in machine instructions counted by valgrind's callgrind:
# deterministic (on the core path; see below for TCP), so it shows a
# regression even on a busy machine where timings mean little.  No RDMA
# device needed.  Prints three Markdown tables: the core path (RDMA's
# calls, no device), the TCP path (the real processes over loopback), and
# direct mode beside the brokered path (over loopback too).
#
#   scripts/bench-cpu.sh [--core | --tcp] [COUNT]
#                         (messages per scenario [20000]; --core or --tcp:
#                         that table only; VERBUS_BENCH_CPU_ROUNDS: rounds
#                         of the TCP table [3])
#
# tests/bench/cpu_core.c (vb_bench_cpu) drives the calls transport/rdma.c
# and daemon/broker.c make for each message: the publisher's copy into its
# staging ring and the write's description, the broker's parse, subject
# check, match against 1,000 subscriptions and per-delivery header, the
# subscriber's parse and release, and the credit each side returns.  The
# NIC's copies are done by memcpy outside the counted functions.  Built in
# $VERBUS_BUILD_DIR [build/] as configured there (RelWithDebInfo: -O2 -g
# by default).
#
# The TCP path (issue 16) is measured on the real processes instead: verbusd
# --listen tcp://127.0.0.1 and `verbus bench -s tcp://127.0.0.1`, both under
# callgrind.  A vb_bench_cpu scenario would have to re-enact what costs
# most there, the event loop and transport/tcp.c's reads, records and
# sendmsg() gather lists, and would drift from it; the processes run that
# very code, and need no device.  What that counts: every user-space
# instruction of each process, the event loop and libc's system-call
# wrappers included; not the kernel's TCP work (callgrind sees user space
# only, and `perf stat -e instructions:k` says "not supported" on the
# builder this was written on).  Each
# scenario runs at N and at 2N messages, and the difference is divided by
# N, so start-up and connection set-up cancel out.  How many messages share
# one read or one sendmsg() depends on how the two processes happen to be
# scheduled, so the counts move by a tenth or more from round to round:
# the table shows each figure's median over the rounds, and its range
# where that is wide.  Each scenario runs again with verbus bench --direct
# (issue 19: the publisher writes on a connection of its own to the
# subscriber, the broker only negotiates), and a third table sets those
# beside the brokered ones: issue 19's target is no more instructions per
# message than the brokered path, publisher's side and subscriber's.
# Direct mode is measured over TCP too: callgrind does not run verbs, and
# vb_bench_cpu has no direct scenario.  About two minutes at the default
# COUNT.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/tests/rdma/lib.sh"
BUILD=${VERBUS_BUILD_DIR:-$ROOT/build}
core=1 tcp=1
case ${1:-} in
--core) tcp=0; shift ;;
--tcp) core=0; shift ;;
esac
COUNT=${1:-20000}
ROUNDS=${VERBUS_BENCH_CPU_ROUNDS:-3}
command -v valgrind >/dev/null || { echo "bench-cpu: valgrind is missing: run scripts/setup.sh" >&2; exit 1; }
[ -f "$BUILD/CMakeCache.txt" ] || cmake -S "$ROOT" -B "$BUILD" -DVERBUS_WERROR=ON >/dev/null
cmake --build "$BUILD" --target vb_bench_cpu verbusd verbus_cli >/dev/null
W=$(mktemp -d)
bpid=
trap '[ -n "$bpid" ] && kill "$bpid" 2>/dev/null; rm -rf "$W"' EXIT

# run LABEL ARGS...: one scenario under callgrind, one table row.
run() {
	local label=$1 out=$W/cg line
	shift
	line=$(valgrind --tool=callgrind --callgrind-out-file="$out" \
		"$BUILD/bin/vb_bench_cpu" --count "$COUNT" "$@" 2>/dev/null)
	# published N routed N forwarded N delivered N size B subs N batch N
	set -- $line
	local pub=$2 fwd=$6 del=$8
	# Inclusive instructions per function.  callgrind_annotate may list
	# one function under two spellings of its file (absolute and
	# relative) with disjoint parts of its cost, so the parts are added.
	(cd "$W" && callgrind_annotate --inclusive=yes --threshold=100 \
		--auto=no "$out" 2>/dev/null) |
		awk -v label="$label" -v pub="$pub" -v fwd="$fwd" -v del="$del" '
		# "  1,234 (12.3%)  /path/file.c:function[.constprop.0] [binary]"
		$1 ~ /^[0-9,]+$/ && $2 ~ /^\(/ && /:[A-Za-z_]/ {
			v = $1; gsub(",", "", v)
			f = $0; sub(/^[^)]*\) +/, "", f); sub(/ \[.*/, "", f)
			sub(/.*:/, "", f); sub(/\..*/, "", f)
			ir[f] += v
		}
		function per(x, n) { return n ? x / n : 0 }
		END {
			pubc = ir["cost_publish"] + ir["cost_pub_flush"] + ir["cost_pub_acks"]
			fwdc = ir["cost_forward"] + ir["cost_fwd_flush"] + ir["cost_fwd_acks"]
			# wire_gather (the NIC gather) runs inside cost_ingress.
			ir["cost_ingress"] -= ir["wire_gather"]
			ing = ir["cost_ingress"] - ir["cost_forward"]
			whole = pubc + ir["cost_ingress"] + ir["cost_fwd_flush"] + \
				ir["cost_fwd_acks"] + ir["cost_deliver"]
			printf "| %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f |\n",
				label, per(pubc, pub), per(ir["cost_deliver"], del),
				per(ing, pub), per(fwdc, fwd), per(whole, pub),
				per(ir["vbi_sublist_match_valid"], pub),
				per(ir["vbi_subject_check"], pub),
				per(ir["vbi_frame_parse"], pub)
		}'
}

core_table() {
	echo "CPU instructions per message on the core path (callgrind, $COUNT messages a row; $(date -u +%F), $(cc --version | head -1))"
	echo
	echo "| scenario | publish (library) | deliver (library) | broker per message | broker per delivery | whole path per message | in match | in subject checks | in frame parses |"
	echo "|---|---|---|---|---|---|---|---|---|"
	run "64 B, 1,000 subscriptions, one write per message" --size 64
	run "1 KiB, 1,000 subscriptions, one write per message" --size 1024
	# (a tenth of the messages: each is 64 KiB of copying under callgrind)
	COUNT=$((COUNT / 10)) run "64 KiB, 1,000 subscriptions, one write per message" --size 65536
	run "64 B, 1,000 subscriptions, 16 messages per write" --size 64 --batch 16
	run "64 B, 1,000 + 7 wildcard subscriptions (8 deliveries)" --size 64 --wild 7
	run "64 B, 10 subscriptions, one write per message" --size 64 --subs 10
	echo
	echo "publish: the publisher's copy into its staging ring, the write's description and the returned credit;"
	echo "deliver: the subscriber's parse, release and credit, per delivered message; target (issue 6): <= 500 each."
	echo "broker per message: parse, subject check, match, release (per published message); per delivery: the new header, the write, the credit."
	echo "whole path: everything above for one published message and all its deliveries; the last three columns are parts of it, per published"
	echo "message: vbi_sublist_match_valid, vbi_subject_check (once, by the broker), vbi_frame_parse (the receivers' vbi_ring_rx_next, once"
	echo "a frame and a hop; a sender's vbi_ring_tx_next_batch only reads the length and kind of the frames it staged itself)."
}

# ---- the TCP path -----------------------------------------------------------
# cg_funcs FILE: "function inclusive-instructions" lines of a callgrind
# output, the total first (as "TOTAL"); a function listed under two
# spellings of its file is added up, as above.
cg_funcs() {
	(cd "$W" && callgrind_annotate --inclusive=yes --threshold=100 \
		--auto=no "$1" 2>/dev/null) |
		awk '
		$1 ~ /^[0-9,]+$/ && /PROGRAM TOTALS/ { v = $1; gsub(",", "", v); print "TOTAL", v }
		$1 ~ /^[0-9,]+$/ && $2 ~ /^\(/ && /:[A-Za-z_]/ {
			v = $1; gsub(",", "", v)
			f = $0; sub(/^[^)]*\) +/, "", f); sub(/ \[.*/, "", f)
			sub(/.*:/, "", f); sub(/\..*/, "", f)
			ir[f] += v
		}
		END { for (f in ir) print f, ir[f] }'
}

# tcp_run TAG N TEST SIZE BENCH-ARGS...: verbusd and verbus bench, both
# under callgrind, one run of TEST; their function costs in $W/TAG.b and
# $W/TAG.c.
tcp_run() {
	local tag=$1 n=$2 test=$3 size=$4 port mport i
	shift 4
	# Below the ephemeral range, not in use (tests/rdma/lib.sh).
	port=$(free_port) mport=$(free_port)
	[ "$mport" != "$port" ] || mport=$((port + 1))
	valgrind --tool=callgrind --callgrind-out-file="$W/$tag.b.cg" \
		"$BUILD/bin/verbusd" --listen "tcp://127.0.0.1:$port" \
		--monitor "127.0.0.1:$mport" --set limits.max_msg=128K \
		>"$W/verbusd.log" 2>&1 &
	bpid=$!
	for ((i = 0; i < 300; i++)); do
		curl -sf "http://127.0.0.1:$mport/healthz" >/dev/null && break
		sleep 0.1
	done
	valgrind --tool=callgrind --callgrind-out-file="$W/$tag.c.cg" \
		"$BUILD/bin/verbus" bench -s "tcp://127.0.0.1:$port" \
		--max-msg 128K --sizes "$size" --count "$n" --samples "$n" \
		--format csv "$@" "$test" >"$W/$tag.csv" 2>"$W/bench.err" ||
		{ cat "$W/bench.err" "$W/verbusd.log" >&2; exit 1; }
	# The messages the broker received: all of them on the brokered path,
	# those of a direct run that did not go direct.
	curl -s "http://127.0.0.1:$mport/metrics" |
		awk '$1 == "verbus_messages_in_total" { printf "%.0f\n", $2 }' \
			>"$W/$tag.in"
	kill "$bpid"
	wait "$bpid" || true
	bpid=
	# A run that lost a message measured something else.
	awk -F, 'NR > 1 && $15 + $16 + $17 != 0 { exit 1 }' "$W/$tag.csv" ||
		{ echo "bench-cpu: $test $size: messages lost" >&2; exit 1; }
	cg_funcs "$tag.b.cg" >"$W/$tag.b"
	cg_funcs "$tag.c.cg" >"$W/$tag.c"
}

# tcp_scenario NAME N TEST SIZE SUBS BENCH-ARGS...: ROUNDS rounds of a run
# of N and one of 2N messages; "NAME N SUBS TAG..." into $W/scenarios.
tcp_scenario() {
	local name=$1 n=$2 test=$3 size=$4 subs=$5 r tags=
	shift 5
	for ((r = 1; r <= ROUNDS; r++)); do
		tcp_run "$name.$r.1" "$n" "$test" "$size" "$@"
		tcp_run "$name.$r.2" $((2 * n)) "$test" "$size" "$@"
		tags="$tags $name.$r"
	done
	echo "$name $n $subs$tags" >>"$W/scenarios"
}

tcp_table() {
	: >"$W/scenarios"
	tcp_scenario thr64 "$COUNT" throughput 64 1
	tcp_scenario fan64 $((COUNT / 4)) fanout 64 4 --subs 4
	tcp_scenario lat64 $((COUNT / 4)) latency 64 1
	# (a tenth of the messages: each is 64 KiB of copying under callgrind)
	tcp_scenario thr64k $((COUNT / 10)) throughput 65536 1
	# Direct mode (issue 19): the same runs with verbus bench --direct, the
	# publisher writing on a connection of its own to the subscriber, the
	# broker only negotiating.
	tcp_scenario thr64d "$COUNT" throughput 64 1 --direct
	tcp_scenario fan64d $((COUNT / 4)) fanout 64 4 --subs 4 --direct
	tcp_scenario lat64d $((COUNT / 4)) latency 64 1 --direct
	tcp_scenario thr64kd $((COUNT / 10)) throughput 65536 1 --direct
	echo
	echo "CPU instructions per message on the TCP path (callgrind, verbusd and verbus bench over tcp://127.0.0.1;" \
		"$ROUNDS rounds of N and 2N messages; $(date -u +%F), $(cc --version | head -1))"
	echo
	cat >"$W/tcp.py" <<'EOP'
import os, statistics, sys
w, what = sys.argv[1], sys.argv[2]
LABEL = {
    "thr64": "64 B, 1->1 stream (throughput)",
    "fan64": "64 B, 1->4 fan-out (per published message)",
    "lat64": "64 B, one message in flight (latency)",
    "thr64k": "64 KiB, 1->1 stream (throughput)",
}
# The --direct runs of each scenario: its name and "d".
for k in list(LABEL):
    LABEL[k + "d"] = LABEL[k] + ", --direct"


def funcs(path):
    out = {}
    with open(path) as f:
        for line in f:
            name, v = line.split()
            out[name] = out.get(name, 0) + int(v)
    return out


def received(path):
    """The broker's verbus_messages_in_total at the end of a run."""
    with open(path) as f:
        v = f.read().split()
    return int(v[0]) if v else 0


def cols(tag):
    """The figures of one run: broker and client, by part."""
    b, c = funcs(f"{w}/{tag}.b"), funcs(f"{w}/{tag}.c")
    return {
        "broker": b.get("TOTAL", 0),
        # The broker's message callback (cb_message before its rename).
        "cb_message": b.get("bk_cb_message", b.get("cb_message", 0)),
        "match": b.get("vbi_sublist_match_valid", 0),
        "subject": b.get("vbi_subject_check", 0),
        "parse": b.get("vbi_frame_parse", 0),
        "client": c.get("TOTAL", 0),
        "publish": c.get("vb_publish", 0),
        # The library's delivery, without the bench's own callback.
        "deliver": c.get("vbi_sess_deliver", 0) - c.get("on_msg", 0),
        "received": received(f"{w}/{tag}.in"),
    }


scen = {}
for line in open(os.path.join(w, "scenarios")):
    name, n, subs, *tags = line.split()
    rounds = []
    for t in tags:
        one, two = cols(f"{t}.1"), cols(f"{t}.2")
        rounds.append({k: (two[k] - one[k]) / int(n) for k in one})
    scen[name] = (int(subs), rounds)


def cell(rounds, key, div=1.0):
    v = [r[key] / div for r in rounds]
    med = statistics.median(v)
    if len(v) > 1 and max(v) - min(v) >= 0.05 * med:
        return f"{med:,.0f} ({min(v):,.0f}-{max(v):,.0f})"
    return f"{med:,.0f}"


def main_table():
    print("| scenario | broker per message | broker per delivery | client per message "
          "(publisher + subscribers, one process) | publish (library) | deliver "
          "(library, per delivery) | broker's cb_message | in match | "
          "in subject checks | in frame parses |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, (subs, rounds) in scen.items():
        per_del = "-"
        # The same messages sent to one subscriber, the same way.
        one = scen.get("thr64d" if name.endswith("d") else "thr64")
        if subs > 1 and one:
            # What each delivery beyond the first adds.
            extra = [(r["broker"] - b["broker"]) / (subs - 1)
                     for r in rounds for b in one[1]]
            per_del = f"{statistics.median(extra):,.0f}"
        print(f"| {LABEL.get(name, name)} | {cell(rounds, 'broker')} | {per_del} "
              f"| {cell(rounds, 'client')} | {cell(rounds, 'publish')} "
              f"| {cell(rounds, 'deliver', subs)} | {cell(rounds, 'cb_message')} "
              f"| {cell(rounds, 'match')} | {cell(rounds, 'subject')} "
              f"| {cell(rounds, 'parse')} |")


def direct_table():
    """Each --direct scenario beside its brokered one: issue 19's target."""
    def med(name, key, div=1.0):
        return statistics.median(r[key] / div for r in scen[name][1])

    print("| scenario | client per message, brokered | direct "
          "| direct/brokered | publish (library), brokered | direct "
          "| deliver (library, per delivery), brokered | direct "
          "| broker per message, brokered | direct "
          "| direct: through the broker "
          "| direct no higher? (client, publish, deliver) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in [k for k in LABEL if not k.endswith("d")]:
        if name not in scen or name + "d" not in scen:
            continue
        subs = scen[name][0]
        b = {k: med(name, k) for k in ("client", "publish", "broker")}
        d = {k: med(name + "d", k) for k in ("client", "publish", "broker")}
        b["deliver"] = med(name, "deliver", subs)
        d["deliver"] = med(name + "d", "deliver", subs)
        met = ", ".join("yes" if d[k] <= b[k] else "no"
                        for k in ("client", "publish", "deliver"))
        print(f"| {LABEL[name]} | {b['client']:,.0f} | {d['client']:,.0f} "
              f"| {d['client'] / b['client']:.2f} | {b['publish']:,.0f} "
              f"| {d['publish']:,.0f} | {b['deliver']:,.0f} "
              f"| {d['deliver']:,.0f} | {b['broker']:,.0f} "
              f"| {d['broker']:,.0f} "
              f"| {max(0, round(100 * med(name + 'd', 'received')))}% "
              f"| {met} |")


if what == "main":
    main_table()
else:
    direct_table()
EOP
	python3 "$W/tcp.py" "$W" main
	echo
	echo "Per published message unless said otherwise; median of the rounds, (min-max) where they differ by 5% or more."
	echo "broker: every instruction of verbusd (event loop, transport/tcp.c, session, broker, libc); per delivery: what each"
	echo "subscriber beyond the first adds (fan-out minus the 1->1 stream, over 3); client: the whole verbus bench process,"
	echo "its own bookkeeping (a clock read, a sequence check) included; publish: vb_publish; deliver: the library's"
	echo "vbi_sess_deliver without the bench's callback; the last four: parts of the broker's count.  One subscription;"
	echo "user space only (the kernel's TCP work is not counted)."
	echo
	echo "Direct mode (issue 19) beside the brokered path: the rows --direct above, each beside its brokered row;"
	echo "issue 19's target: no more instructions per message than the brokered path, publisher's side and subscriber's."
	echo
	python3 "$W/tcp.py" "$W" direct
	echo
	echo "Medians of the rounds above.  client: the whole verbus bench process (publisher and subscribers); publish:"
	echo "vb_publish, the publisher's side (direct: the copy into the direct connection's staging and, with nothing"
	echo "staged before it, the send itself, which the brokered publisher leaves to its event loop); deliver:"
	echo "vbi_sess_deliver without the bench's callback, the subscriber's side (direct: the direct connection's frames,"
	echo "checked against their grant).  through the broker: the messages the broker received in the N further"
	echo "messages of the 2N run, over N (a subject's first ones, and those sent while the path was switched off; a"
	echo "difference below 0, the N-message run's start having sent more through the broker, shows as 0%)."
	echo "Over TCP on loopback, not RDMA: the core path's vb_bench_cpu has no direct scenario."
}

[ "$core" = 1 ] && core_table
[ "$tcp" = 1 ] && tcp_table
exit 0
