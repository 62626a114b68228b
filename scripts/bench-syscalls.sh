#!/bin/bash
# bench-syscalls.sh - system calls per message, by call, for the broker and
# for the client (verbus bench: publisher and subscriber connections in one
# process), event-driven and busy-polling, in one boot of the test guest.
# perf trace counts them (the raw_syscalls tracepoints; perf must match the
# guest's kernel, Debian's linux-perf does).  A tool, not a test.
#
#   scripts/bench-syscalls.sh [--samples N] [--modes LIST]
#
#   --samples N    64 B messages, one in flight (verbus bench latency) [2000]
#   --modes LIST   event, spin (200 us), busy [event,busy]
#
# The client's counts include its start-up (connecting, registering,
# loading libraries): the "per message" column subtracts nothing, so it is
# an upper bound that tends to the true figure as --samples grows.
# Tracing slows every call, so the latencies printed alongside mean
# nothing.  docs/PERFORMANCE.md has a run and what it says.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${VERBUS_BUILD_DIR:-$ROOT/build}
if [ -z "${VERBUS_HOST_3_ADDR:-}" ]; then
	samples=2000 modes=event,busy
	while [ $# -gt 0 ]; do
		case $1 in
		--samples) samples=$2; shift ;;
		--modes) modes=$2; shift ;;
		-h | --help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
		*) echo "usage: bench-syscalls.sh [--samples N] [--modes LIST]" >&2; exit 2 ;;
		esac
		shift
	done
	command -v perf >/dev/null ||
		{ echo "bench-syscalls: perf is missing (Debian: linux-perf)" >&2; exit 1; }
	native=()
	[ "${VERBUS_RXE_MODE:-vm}" = native ] && native=(--native)
	exec env VERBUS_BIN="$BUILD/bin" BENCH_SC_SAMPLES="$samples" \
		BENCH_SC_MODES="$modes" \
		VERBUS_VM_ENV="BENCH_SC_SAMPLES BENCH_SC_MODES" \
		"$ROOT/tests/vm/rxe-run" "${native[@]}" --hosts 3 -w "$BUILD" -- "$0"
fi

# ---- on the RDMA hosts ------------------------------------------------------
. "$ROOT/tests/rdma/lib.sh"
N=$BENCH_SC_SAMPLES
tpid=
broker_env '[ -z "$tpid" ] || kill "$tpid" 2>/dev/null'
W=$work
# perf trace needs tracefs; the guest mounts none by itself.
[ -d /sys/kernel/tracing/events ] || mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null
echo "bench-syscalls: $(date -u +%FT%TZ), $N messages of 64 B, one in flight;" \
	"clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null)"
# table FILE WHO: perf trace's summary as "call count per-message"
table() {
	awk -v n="$N" -v who="$2" '
		$1 ~ /^[a-z_0-9]+$/ && $2 ~ /^[0-9]+$/ { c[$1] += $2; t += $2 }
		END {
			printf "  %-8s %-16s %9s %12s\n", who, "call", "calls", "per message"
			for (k in c) if (c[k] >= n / 20)
				printf "  %-8s %-16s %9d %12.2f\n", who, k, c[k], c[k] / n | "sort -k4 -n -r"
			close("sort -k4 -n -r")
			printf "  %-8s %-16s %9d %12.2f\n", who, "all", t, t / n
		}' "$1"
}
for mode in ${BENCH_SC_MODES//,/ }; do
	poll_mode "$mode"
	port=$(free_port) mport=$(free_port)
	broker_start "${mode_broker_args[@]}"
	timeout 600 perf trace -s -p "$bpid" -o "$W/broker" 2>"$W/perf.err" &
	tpid=$!
	sleep 1
	echo "== $mode: $(timeout 600 perf trace -s -o "$W/client" "$VERBUS_BIN/verbus" bench \
		-s "rdma://$brk:$port" --pub-source "$a" --sub-source "$b" \
		--sizes 64 --samples "$N" --warmup 0 "${mode_bench_args[@]}" latency \
		--format csv 2>"$W/bench.err" | awk -F, '$1 == "latency" {
			print "latency p50 " $10 " us (traced: meaningless)" }')"
	sleep 0.5
	kill -INT "$tpid"
	wait "$tpid"
	tpid=
	if [ ! -s "$W/broker" ] || [ ! -s "$W/client" ]; then
		echo "bench-syscalls: perf trace gave nothing" >&2
		cat "$W/perf.err" "$W/bench.err" >&2
		exit 1
	fi
	table "$W/broker" broker
	table "$W/client" client
	broker_stop
done
