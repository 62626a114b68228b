#!/bin/bash
# bench-large.sh - large messages (issue 17): Verbus's throughput at 1 MiB
# and 8 MiB beside raw verbs (perftest's ib_write_bw, one hop, the same
# devices, the same run) and NATS (nats-server with max_payload 64 MiB,
# vb_nats_bench), in one boot of the test guest: the publisher on host 2,
# the subscriber on host 3, the broker on host 1.  Verbus also fans one
# 1 MiB stream out to 8 subscribers and prints what the broker copied
# (verbus_payload_copy_bytes_total: 0, every chunk gathered from the
# publisher's ring).  Prints a Markdown table with the ratios.  A tool, not
# a test: it never fails on a number, only when a tool fails.
#
#   scripts/bench-large.sh [--smoke]
#
#   --smoke    a few messages per row: the tools run, the figures mean
#              nothing
#
# VERBUS_RXE_MODE=native runs on this machine (rdma_rxe or real RNICs)
# instead of in the guest; VERBUS_BUILD_DIR picks the build [build/].  Run
# scripts/setup.sh first.  About 5 minutes in the guest.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

if [ "${1:-}" != --guest ]; then
	BUILD=${VERBUS_BUILD_DIR:-$ROOT/build}
	native=()
	[ "${VERBUS_RXE_MODE:-vm}" = native ] && native=(--native)
	exec env VERBUS_BIN="$BUILD/bin" "$ROOT/tests/vm/rxe-run" \
		"${native[@]}" --hosts 3 -w "$BUILD" -- \
		"$ROOT/scripts/bench-large.sh" --guest "$@"
fi
shift
smoke=0
[ "${1:-}" = --smoke ] && smoke=1
. "$ROOT/tests/rdma/lib.sh"
need_hosts 3
for t in ib_write_bw nats-server "$VERBUS_BIN/verbusd" "$VERBUS_BIN/verbus" \
	"$VERBUS_BIN/vb_nats_bench"; do
	command -v "$t" >/dev/null || fail "$t is missing: run scripts/setup.sh"
done
B=$VERBUS_HOST_1_ADDR P=$VERBUS_HOST_2_ADDR S=$VERBUS_HOST_3_ADDR
pdev=$(rdmadev_of "$P") sdev=$(rdmadev_of "$S")
W=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$W"' EXIT

SIZES="1048576 8388608"
if [ "$smoke" = 1 ]; then
	BW_N=20 COUNT=20 FAN_COUNT=10
else
	BW_N=500 COUNT=200 FAN_COUNT=50
fi
declare -A raw vb nats

# ---- raw verbs: ib_write_bw from host 2 to host 3 -------------------------
for size in $SIZES; do
	port=$((18515 + RANDOM % 2000))
	timeout 300 ib_write_bw -d "$sdev" -F -p "$port" -s "$size" -n "$BW_N" \
		>"$W/bw.srv" 2>&1 &
	spid=$!
	for _ in $(seq 50); do
		ss -ltn | grep -q ":$port " && break
		sleep 0.1
	done
	timeout 300 ib_write_bw -d "$pdev" -F -p "$port" -s "$size" -n "$BW_N" \
		"$S" >"$W/bw.$size" 2>&1
	wait "$spid"
	# bytes iters peak_MBps avg_MBps Mpps: MB/s from the message rate
	# (10^6 bytes, as verbus bench and vb_nats_bench count them; perftest's
	# own MB/s column is in MiB)
	raw[$size]=$(grep -E '^ +[0-9]+ +[0-9]+' "$W/bw.$size" | tail -1 |
		awk -v s="$size" '{ printf "%.1f", $5 * s }')
	[ -n "${raw[$size]}" ] || { cat "$W/bw.$size"; fail "ib_write_bw -s $size"; }
done

# ---- Verbus: verbusd on host 1, verbus bench from hosts 2 and 3 ----------
port=$(free_port) mport=$(free_port)
"$VERBUS_BIN/verbusd" --listen "rdma://$B:$port" --monitor "127.0.0.1:$mport" \
	>"$W/verbusd.log" 2>&1 &
pids+=($!)
wait_for "listening" "$W/verbusd.log" 30 || { cat "$W/verbusd.log"; fail "verbusd did not start"; }
vbb() { # SIZE COUNT TEST [ARGS...]: verbus bench CSV on stdout
	local size=$1 count=$2 t=$3
	shift 3
	timeout 900 "$VERBUS_BIN/verbus" bench -s "rdma://$B:$port" \
		--pub-source "$P" --sub-source "$S" --sizes "$size" \
		--count "$count" --format csv "$@" "$t" 2>>"$W/bench.err" ||
		{ cat "$W/bench.err" >&2; fail "verbus bench $t --sizes $size"; }
}
# CSV: test,size,subs,msgs,secs,rate,mb_per_s,...,lost,dup,bad
for size in $SIZES; do
	vb[$size]=$(vbb "$size" "$COUNT" throughput | awk -F, '$1 == "throughput" { print $7 }')
done
copy0=$(curl -sf "http://127.0.0.1:$mport/metrics" |
	awk '$1 == "verbus_payload_copy_bytes_total" { print $2 }')
fan=$(vbb 1048576 "$FAN_COUNT" fanout --subs 8 | awk -F, '$1 == "fanout" { print $7 }')
copy1=$(curl -sf "http://127.0.0.1:$mport/metrics" |
	awk '$1 == "verbus_payload_copy_bytes_total" { print $2 }')

# ---- NATS: nats-server on host 1, vb_nats_bench from hosts 2 and 3 -------
nport=$(free_port)
cat >"$W/nats.conf" <<EOF
listen: "$B:$nport"
max_payload: 67108864
max_pending: 1073741824
write_deadline: "60s"
EOF
nats-server -c "$W/nats.conf" >"$W/nats.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
	(exec 3<>"/dev/tcp/$B/$nport") 2>/dev/null && break
	sleep 0.1
done
for size in $SIZES; do
	nats[$size]=$(timeout 900 "$VERBUS_BIN/vb_nats_bench" -s "nats://$B:$nport" \
		--pub-source "$P" --sub-source "$S" --sizes "$size" \
		--count "$COUNT" --format csv throughput 2>>"$W/nats.err" |
		awk -F, '$1 == "throughput" { print $7 }')
	[ -n "${nats[$size]}" ] || { cat "$W/nats.err" "$W/nats.log" >&2; nats[$size]=-; }
done

# ---- the table ------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "-" }'; }
echo
echo "Large messages, MB/s delivered (10^6 bytes; $(date -u +%FT%TZ), $(uname -r), ${VERBUS_RXE_MODE:-vm}; smoke $smoke)"
echo
echo "| size | ib_write_bw (one hop) | Verbus (two hops) | Verbus / ib_write_bw | NATS (TCP) | Verbus / NATS |"
echo "|---|---|---|---|---|---|"
for size in $SIZES; do
	echo "| $((size >> 20)) MiB | ${raw[$size]} | ${vb[$size]} | $(ratio "${vb[$size]}" "${raw[$size]}") | ${nats[$size]} | $(ratio "${vb[$size]}" "${nats[$size]}") |"
done
echo
echo "Fan-out of 1 MiB messages to 8 subscribers: $fan MB/s delivered in all; the broker copied $((${copy1:-0} - ${copy0:-0})) payload bytes"
