#!/bin/bash
# bench-steps.sh - where one message's time goes: per-step times of a 64 B
# message through publisher, broker and subscriber (verbus bench latency),
# the same one hop in direct mode (verbus bench --direct latency: the
# publisher writes into the subscriber's ring), beside the same steps
# through the raw relay (vb_relay_bench) and raw verbs' one hop
# (ib_write_lat, its total only), in one boot of the test guest.  A tool,
# not a test.
#
#   scripts/bench-steps.sh [--samples N] [--modes LIST] [--size BYTES]
#
#   --samples N    messages, one in flight, per run [5000]
#   --modes LIST   Verbus's polling: event, spin (200 us), busy [busy]
#                  (each brokered, then direct)
#   --size BYTES   message size [64]
#
# It configures and builds a second tree with -DVERBUS_PROF=ON (step
# timestamps, core/prof.h; $VERBUS_PROF_BUILD, default build-prof/), runs
# the latency test in the guest with VERBUS_PROF_DIR set, and prints a
# table (scripts/bench-steps.py).  The relay busy-polls like perftest.
# A step's stamp is one cycle-counter read (no system call); the build
# otherwise equals a RelWithDebInfo one.  docs/PERFORMANCE.md has a run.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${VERBUS_HOST_3_ADDR:-}" ]; then
	samples=5000 modes=busy size=64
	while [ $# -gt 0 ]; do
		case $1 in
		--samples) samples=$2; shift ;;
		--modes) modes=$2; shift ;;
		--size) size=$2; shift ;;
		-h | --help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
		*) echo "usage: bench-steps.sh [--samples N] [--modes LIST] [--size BYTES]" >&2; exit 2 ;;
		esac
		shift
	done
	PB=${VERBUS_PROF_BUILD:-$ROOT/build-prof}
	cmake -S "$ROOT" -B "$PB" -DVERBUS_PROF=ON -DVERBUS_WERROR=ON \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
		cmake --build "$PB" -j"$(nproc)" --target verbusd verbus_cli \
			vb_relay_bench vb_one_hop >/dev/null ||
		{ echo "bench-steps: the -DVERBUS_PROF=ON build failed" >&2; exit 1; }
	native=()
	[ "${VERBUS_RXE_MODE:-vm}" = native ] && native=(--native)
	exec env VERBUS_BIN="$PB/bin" BENCH_ST_SAMPLES="$samples" \
		BENCH_ST_MODES="$modes" BENCH_ST_SIZE="$size" \
		VERBUS_VM_ENV="BENCH_ST_SAMPLES BENCH_ST_MODES BENCH_ST_SIZE" \
		"$ROOT/tests/vm/rxe-run" "${native[@]}" --hosts 3 -w "$PB" -- "$0"
fi

# ---- on the RDMA hosts ------------------------------------------------------
. "$ROOT/tests/rdma/lib.sh"
N=$BENCH_ST_SAMPLES SIZE=$BENCH_ST_SIZE
rpid=
broker_env '[ -z "$rpid" ] || kill "$rpid" 2>/dev/null'
W=$work
echo "bench-steps: $(date -u +%FT%TZ), $N messages of $SIZE B, one in flight"
dirs=()
for mode in ${BENCH_ST_MODES//,/ }; do
	poll_mode "$mode"
	port=$(free_port) mport=$(free_port)
	mkdir -p "$W/verbus-$mode"
	VERBUS_PROF_DIR="$W/verbus-$mode" broker_start "${mode_broker_args[@]}"
	VERBUS_PROF_DIR="$W/verbus-$mode" timeout 600 "$VERBUS_BIN/verbus" bench \
		-s "rdma://$brk:$port" --pub-source "$a" --sub-source "$b" \
		--sizes "$SIZE" --samples "$N" --warmup 0 "${mode_bench_args[@]}" \
		latency --format csv >"$W/bench-$mode.csv" 2>"$W/bench.err" ||
		{ cat "$W/bench.err" >&2; fail "verbus bench failed"; }
	broker_stop
	echo "verbus, $mode: p50 $(awk -F, '$1 == "latency" { print $10 }' "$W/bench-$mode.csv") us"
	dirs+=("$W/verbus-$mode")
	# Direct mode: the first messages go through the broker until the
	# path is switched on (bench-steps.py leaves those out).
	port=$(free_port) mport=$(free_port)
	mkdir -p "$W/direct-$mode"
	VERBUS_PROF_DIR="$W/direct-$mode" broker_start "${mode_broker_args[@]}"
	VERBUS_PROF_DIR="$W/direct-$mode" timeout 600 "$VERBUS_BIN/verbus" bench \
		-s "rdma://$brk:$port" --pub-source "$a" --sub-source "$b" \
		--direct --sizes "$SIZE" --samples "$N" --warmup 0 \
		"${mode_bench_args[@]}" latency --format csv \
		>"$W/direct-$mode.csv" 2>"$W/bench.err" ||
		{ cat "$W/bench.err" >&2; fail "verbus bench --direct failed"; }
	broker_stop
	echo "verbus direct, $mode: p50 $(awk -F, '$1 == "latency" { print $10 }' "$W/direct-$mode.csv") us"
	dirs+=("$W/direct-$mode")
done

# The same one-way latency with the publisher and the subscriber in two
# processes (vb_one_hop), as ib_write_lat's two ends: verbus bench drives
# both from one thread, so that under rxe its subscriber cannot poll
# while its publisher is in ibv_post_send() (PERFORMANCE.md).  The broker
# event-driven: busy-polling, a third spinning process on the guest's two
# vCPUs makes every figure a scheduler's time slice (12 ms at p50).  So
# busy-polling clients are measured direct only (the broker off the path).
for mode in ${BENCH_ST_MODES//,/ }; do
	[ "$mode" = spin ] && continue # vb_one_hop: busy or event only
	oh=() paths=(--direct)
	[ "$mode" = busy ] || oh=(--event) paths=("" --direct)
	port=$(free_port) mport=$(free_port)
	broker_start
	for path in "${paths[@]}"; do
		timeout 600 "$VERBUS_BIN/vb_one_hop" "rdma://$brk:$port" "$a" "$b" \
			$path "${oh[@]}" --samples "$N" --size "$SIZE" \
			>>"$W/one_hop.csv" 2>"$W/one_hop.err" ||
			{ cat "$W/one_hop.err" >&2; fail "vb_one_hop $path failed"; }
	done
	broker_stop
done
echo "two processes (vb_one_hop: mode, path, bytes, samples, p50, p99, p99.9, mean, us):"
cat "$W/one_hop.csv"

# Raw verbs, one hop, the same two hosts: the total a direct message is
# judged against (issue 19: at most 1.2x).
if command -v ib_write_lat >/dev/null; then
	pport=$(free_port)
	timeout 120 ib_write_lat -d "$(rdmadev_of "$b")" -F -p "$pport" \
		-s "$SIZE" -n "$N" >"$W/pt.srv" 2>&1 &
	ppid=$!
	sleep 1
	timeout 120 ib_write_lat -d "$(rdmadev_of "$a")" -F -p "$pport" \
		-s "$SIZE" -n "$N" "$b" >"$W/pt.cli" 2>&1
	wait "$ppid"
	# bytes iters t_min t_max t_typical t_avg t_stdev p99 p99.9
	echo "ib_write_lat, one hop: $(grep -E '^ +[0-9]+ +[0-9]+' "$W/pt.cli" |
		tail -1 | awk '{ print "typical " $5 " us, avg " $6 " us (one-way: half a round trip)" }')"
fi

rport=$(free_port)
mkdir -p "$W/relay"
VERBUS_PROF_DIR="$W/relay" "$VERBUS_BIN/vb_relay_bench" relay --listen "$brk" \
	--port "$rport" >"$W/relay.log" 2>&1 &
rpid=$!
for _ in $(seq 100); do
	grep -q "listening" "$W/relay.log" && break
	sleep 0.1
done
VERBUS_PROF_DIR="$W/relay" timeout 600 "$VERBUS_BIN/vb_relay_bench" run \
	--connect "$brk" --port "$rport" --pub-source "$a" --sub-source "$b" \
	--sizes "$SIZE" --count 1 --samples "$N" --format csv latency \
	>"$W/relay.csv" 2>"$W/relay.err" ||
	{ cat "$W/relay.err" >&2; fail "vb_relay_bench failed"; }
kill "$rpid"
wait "$rpid" 2>/dev/null
rpid=
echo "relay: p50 $(awk -F, '$1 == "latency" { print $0 }' "$W/relay.csv")"
dirs+=("$W/relay")
python3 "$ROOT/scripts/bench-steps.py" "${dirs[@]}"
