#!/bin/bash
# bench-ab.sh - what a change buys: two builds of Verbus measured in turn,
# A B A B ..., in one boot of the test guest, so that both see the same
# emulated device and, as far as can be, the same load.  A tool, not a
# test: it prints numbers and never fails on them.
#
#   scripts/bench-ab.sh [--rounds N] [--modes LIST] [--sizes LIST]
#                       [--samples N] [--count N] [--idle-poll] A_BUILD B_BUILD
#
#   A_BUILD, B_BUILD  build directories (each with bin/verbusd, bin/verbus),
#                     e.g. one of a `git worktree` of the older commit
#   --rounds N        A then B, N times [2]
#   --modes LIST      event, spin (200 us), busy [event,busy]: the broker's
#                     and verbus bench's polling for the latency tests
#   --sizes LIST      payload sizes [64]
#   --samples N       latency and request/reply samples per run [3000]
#   --count N         throughput and fan-out messages per run; 0 skips
#                     them [0]
#   --idle-poll       boot the guest with idle=poll (see bench-compare.sh)
#
# Prints one line per build, round, mode and test: the median and p99 in
# microseconds (latency, rtt) or msg/s and MB/s (throughput and fanout,
# event-driven; fan-out msg/s are all 8 subscribers' deliveries),
# and the broker's credit waits.  Hosts as in bench-compare.sh: verbusd on
# host 1, publisher on host 2, subscriber on host 3.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${VERBUS_HOST_3_ADDR:-}" ]; then
	rounds=2 modes=event,busy sizes=64 samples=3000 count=0 builds=()
	while [ $# -gt 0 ]; do
		case $1 in
		--rounds) rounds=$2; shift ;;
		--modes) modes=$2; shift ;;
		--sizes) sizes=$2; shift ;;
		--samples) samples=$2; shift ;;
		--count) count=$2; shift ;;
		--idle-poll) export VERBUS_VM_APPEND="${VERBUS_VM_APPEND:+$VERBUS_VM_APPEND }idle=poll" ;;
		-h | --help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
		-*) echo "bench-ab: unknown option $1" >&2; exit 2 ;;
		*) builds+=("$(cd "$1" 2>/dev/null && pwd)") ;;
		esac
		shift
	done
	[ "${#builds[@]}" = 2 ] && [ -n "${builds[0]}" ] && [ -n "${builds[1]}" ] ||
		{ echo "usage: bench-ab.sh [options] A_BUILD B_BUILD (--help)" >&2; exit 2; }
	for b in "${builds[@]}"; do
		[ -x "$b/bin/verbusd" ] && [ -x "$b/bin/verbus" ] ||
			{ echo "bench-ab: $b/bin has no verbusd and verbus" >&2; exit 2; }
	done
	export BENCH_AB_A=${builds[0]} BENCH_AB_B=${builds[1]} BENCH_AB_ROUNDS=$rounds \
		BENCH_AB_MODES=$modes BENCH_AB_SIZES=$sizes \
		BENCH_AB_SAMPLES=$samples BENCH_AB_COUNT=$count
	native=()
	[ "${VERBUS_RXE_MODE:-vm}" = native ] && native=(--native)
	exec env VERBUS_BIN="$BENCH_AB_B/bin" \
		VERBUS_VM_ENV="BENCH_AB_A BENCH_AB_B BENCH_AB_ROUNDS BENCH_AB_MODES BENCH_AB_SIZES BENCH_AB_SAMPLES BENCH_AB_COUNT" \
		"$ROOT/tests/vm/rxe-run" "${native[@]}" --hosts 3 \
		-w "$BENCH_AB_A" -w "$BENCH_AB_B" -- "$0"
fi

# ---- on the RDMA hosts ------------------------------------------------------
. "$ROOT/tests/rdma/lib.sh"
broker_env
echo "bench-ab: $(date -u +%FT%TZ), A=$BENCH_AB_A B=$BENCH_AB_B," \
	"kernel parameters: $(cat /proc/cmdline)"
tests=(latency rtt) count=()
[ "$BENCH_AB_COUNT" != 0 ] && tests+=(throughput fanout) count=(--count "$BENCH_AB_COUNT")
# run NAME BUILD MODE: one broker of that build, the latency tests (and
# throughput and 1->8 fan-out when asked for, event-driven only) at every
# size
run() {
	local name=$1 mode=$3 size t=("${tests[@]}")
	VERBUS_BIN=$2/bin
	poll_mode "$mode"
	[ "$mode" = event ] || t=(latency rtt)
	port=$(free_port) mport=$(free_port)
	broker_start --set limits.max_msg=128K "${mode_broker_args[@]}"
	for size in ${BENCH_AB_SIZES//,/ }; do
		"$VERBUS_BIN/verbus" bench -s "rdma://$brk:$port" --pub-source "$a" \
			--sub-source "$b" --max-msg 128K --sizes "$size" \
			--samples "$BENCH_AB_SAMPLES" "${count[@]}" \
			"${mode_bench_args[@]}" --format csv "${t[@]}" 2>/dev/null |
			awk -F, -v t="$name $mode" '$1 == "latency" || $1 == "rtt" {
				printf "%-14s %-10s %6s B  p50 %9s us  p99 %9s us\n", t, $1, $2, $10, $12 }
			$1 == "throughput" || $1 == "fanout" {
				printf "%-14s %-10s %6s B  %9.0f msg/s %8s MB/s\n", t, $1, $2, $6, $7 }'
	done
	echo "$name $mode: broker credit waits $(metric verbus_credit_waits_total)"
	broker_stop
}
for ((r = 1; r <= BENCH_AB_ROUNDS; r++)); do
	for mode in ${BENCH_AB_MODES//,/ }; do
		run "A r$r" "$BENCH_AB_A" "$mode"
		run "B r$r" "$BENCH_AB_B" "$mode"
	done
done
