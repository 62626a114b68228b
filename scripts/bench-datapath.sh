#!/bin/bash
# bench-datapath.sh - raw verbs (perftest) and Verbus's transport between
# the same two RDMA hosts in one guest boot, so the figures can be compared
# as ratios.  A tool, not a test: it prints numbers and never fails on them.
#
#   scripts/bench-datapath.sh          (after scripts/setup.sh)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${VERBUS_BUILD_DIR:-$ROOT/build}
if [ -z "${VERBUS_HOST_2_ADDR:-}" ]; then
	exec env VERBUS_BIN="$BUILD/bin" "$ROOT/tests/vm/rxe-run" --hosts 2 \
		-w "$BUILD" -- "$0"
fi
. "$ROOT/tests/rdma/lib.sh"
S=$VERBUS_HOST_1_ADDR C=$VERBUS_HOST_2_ADDR
sdev=$(rdmadev_of "$S") cdev=$(rdmadev_of "$C")
pt() { # TOOL SIZE ITERS: perftest server on host 1, client on host 2
	timeout 60 "$1" -d "$sdev" -F -s "$2" -n "$3" >/dev/null 2>&1 &
	sleep 1
	timeout 60 "$1" -d "$cdev" -F -s "$2" -n "$3" "$S" 2>&1 |
		grep -E '^ +[0-9]+ +[0-9]+' | tail -1
	wait
}
dp() { # SIZE COUNT [ARGS...]: payload bytes not touched
	local port size=$1 count=$2
	shift 2
	port=$(free_port)
	"$VERBUS_BIN/vb_dp_stream" --server --bind "$S" --port "$port" \
		--size "$size" --count "$count" --no-verify "$@" >"$W/srv" 2>&1 &
	sleep 0.5
	"$VERBUS_BIN/vb_dp_stream" --client --connect "$S" --source "$C" \
		--port "$port" --size "$size" --count "$count" --no-verify \
		"$@" 2>&1 | grep -E "client:|latency"
	wait
	grep "server:" "$W/srv"
}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
echo "date $(date -u +%FT%TZ), $sdev -> $cdev, mode ${VERBUS_RXE_MODE:-?}"
echo "ib_write_lat 64 B (bytes iters t_min t_max t_typical ...):"; pt ib_write_lat 64 5000
echo "ib_write_bw 64 B (bytes iters peak avg MB/s Mpps):"; pt ib_write_bw 64 50000
echo "ib_write_bw 64 KiB:"; pt ib_write_bw 65536 2000
echo "vb_dp_stream 64 B ping-pong, busy-poll:"; dp 64 5000 --pingpong --busy-poll
echo "vb_dp_stream 64 B ping-pong, event-driven:"; dp 64 5000 --pingpong
echo "vb_dp_stream 64 B, one way (the server's line is the receiver's rate):"; dp 64 500000 --one-way
echo "vb_dp_stream 64 KiB, one way:"; dp 65536 2000 --one-way
echo "vb_dp_stream 64 B, both ways at once:"; dp 64 500000
echo "vb_dp_stream 64 KiB, both ways at once:"; dp 65536 2000
