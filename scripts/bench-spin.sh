#!/bin/bash
# bench-spin.sh - what adaptive polling buys: 64 B pub->sub latency and
# request/reply round trip through verbusd, and 1->1 throughput, with
# verbusd's spin_us and verbus bench --spin at each value given, beside
# ib_write_lat between the same two hosts, in one boot of the test guest.
# Prints a Markdown table.  A tool, not a test: it fails only when a tool
# does.
#
#   scripts/bench-spin.sh [US...]        (spin times [0 50 200 1000])
#
# VERBUS_BENCH_SAMPLES (2000) latency samples, VERBUS_BENCH_COUNT (50000)
# throughput messages per value.  VERBUS_RXE_MODE=native runs on this
# machine; VERBUS_BUILD_DIR picks the build [build/].
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${VERBUS_BUILD_DIR:-$ROOT/build}
SPINS=${*:-0 50 200 1000}
N=${VERBUS_BENCH_SAMPLES:-2000}
COUNT=${VERBUS_BENCH_COUNT:-50000}

if [ -z "${VERBUS_BENCH_SPIN_GUEST:-}" ]; then
	native=()
	[ "${VERBUS_RXE_MODE:-vm}" = native ] && native=(--native)
	exec env VERBUS_BIN="$BUILD/bin" VERBUS_BENCH_SPIN_GUEST=1 \
		"$ROOT/tests/vm/rxe-run" "${native[@]}" --hosts 3 -w "$BUILD" -- \
		"$0" "$@"
fi

# ---- on the RDMA hosts: broker on host 1, publisher 2, subscriber 3 ------
. "$ROOT/tests/rdma/lib.sh"
need_hosts 3
B=$VERBUS_HOST_1_ADDR P=$VERBUS_HOST_2_ADDR S=$VERBUS_HOST_3_ADDR
pdev=$(rdmadev_of "$P") sdev=$(rdmadev_of "$S")
work=$(mktemp -d)
bpid=
trap '[ -n "$bpid" ] && kill "$bpid" 2>/dev/null; rm -rf "$work"' EXIT
failed=0

port=$(free_port)
ib_write_lat -d "$sdev" -F -p "$port" -s 64 -n "$N" >"$work/lat.srv" 2>&1 &
spid=$!
sleep 1
# bytes iters t_min t_max t_typical ...
raw=$(timeout 120 ib_write_lat -d "$pdev" -F -p "$port" -s 64 -n "$N" "$S" 2>&1 |
	awk '$1 == 64 && NF >= 5 { print $5 }')
wait "$spid"
[ -n "$raw" ] || { echo "bench-spin: ib_write_lat failed" >&2; raw=; failed=1; }

# field NAME CSVLINE: one column of verbus bench's CSV.
field() {
	awk -F, -v n="$1" 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
		{ print $c[n] }' <<<"$2"
}
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.2f", a / b }'
}

echo "64 B through verbusd ($B), publisher $P ($pdev), subscriber $S ($sdev); $(uname -r); $(date -u +%FT%TZ)"
echo "raw ib_write_lat 64 B, typical: ${raw:--} us"
echo
echo "| spin (us) | one-way p50 (us) | p99 (us) | x raw | request/reply p50 (us) | x raw | 1->1 msg/s |"
echo "|---|---|---|---|---|---|---|"
for spin in $SPINS; do
	vport=$(free_port) mport=$(free_port)
	"$VERBUS_BIN/verbusd" --listen "$B:$vport" --monitor "127.0.0.1:$mport" \
		--set spin_us="$spin" >"$work/verbusd.log" 2>&1 &
	bpid=$!
	wait_for "listening on" "$work/verbusd.log" 10 ||
		{ show verbusd "$work/verbusd.log"; failed=1; continue; }
	bench() {
		timeout 600 "$VERBUS_BIN/verbus" bench -s "rdma://$B:$vport" \
			--pub-source "$P" --sub-source "$S" --sizes 64 \
			--spin "$spin" --format csv "$@" 2>>"$work/bench.err"
	}
	lat=$(bench --samples "$N" latency) && rtt=$(bench --samples "$N" rtt) &&
		tput=$(bench --count "$COUNT" throughput) ||
		{ show "verbus bench" "$work/bench.err"; failed=1; }
	kill "$bpid"
	wait "$bpid" 2>/dev/null
	bpid=
	l50=$(field p50_us "$lat") l99=$(field p99_us "$lat")
	r50=$(field p50_us "$rtt") rate=$(field msgs_per_s "$tput")
	echo "| $spin | $l50 | $l99 | $(ratio "$l50" "$raw") | $r50 | $(ratio "$r50" "$raw") | ${rate%.*} |"
done
exit "$failed"
