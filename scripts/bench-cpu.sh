#!/bin/bash
# bench-cpu.sh - CPU cost per message on Verbus's core path, in machine
# instructions counted by valgrind's callgrind: deterministic, so it shows a
# regression even on a busy machine where timings mean little.  No RDMA
# device needed.  Prints a Markdown table.
#
#   scripts/bench-cpu.sh [COUNT]      (messages per scenario [20000])
#
# tests/bench/cpu_core.c (vb_bench_cpu) drives the calls transport/rdma.c
# and daemon/broker.c make for each message: the publisher's copy into its
# staging ring and the write's description, the broker's parse, subject
# check, match against 1,000 subscriptions and per-delivery header, the
# subscriber's parse and release, and the credit each side returns.  The
# NIC's copies are done by memcpy outside the counted functions.  Built in
# $VERBUS_BUILD_DIR [build/] as configured there (RelWithDebInfo: -O2 -g
# by default).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${VERBUS_BUILD_DIR:-$ROOT/build}
COUNT=${1:-20000}
command -v valgrind >/dev/null || { echo "bench-cpu: valgrind is missing: run scripts/setup.sh" >&2; exit 1; }
[ -f "$BUILD/CMakeCache.txt" ] || cmake -S "$ROOT" -B "$BUILD" -DVERBUS_WERROR=ON >/dev/null
cmake --build "$BUILD" --target vb_bench_cpu >/dev/null
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

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
