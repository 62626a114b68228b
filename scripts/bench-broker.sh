#!/bin/bash
# bench-broker.sh - raw verbs (perftest) and Verbus through verbusd in one
# guest boot: the broker on host 1, publishers on host 2, subscribers on
# host 3, perftest between hosts 2 and 1 (one hop of the two a message
# makes).  Prints a Markdown table; a tool, not a test: nothing fails on a
# number.  The cross-device rows run the broker on 0.0.0.0 with the
# publisher reaching it through host 3's device and the subscriber
# through host 1's, so every forward is copied between devices (issue 22).
#
#   scripts/bench-broker.sh          (after scripts/setup.sh)
#   VERBUS_BENCH_N=200000 scripts/bench-broker.sh    (messages per run)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${VERBUS_BUILD_DIR:-$ROOT/build}
if [ -z "${VERBUS_HOST_3_ADDR:-}" ]; then
	exec env VERBUS_BIN="$BUILD/bin" "$ROOT/tests/vm/rxe-run" --hosts 3 \
		-w "$BUILD" -- "$0"
fi
. "$ROOT/tests/rdma/lib.sh"
B=$VERBUS_HOST_1_ADDR P=$VERBUS_HOST_2_ADDR S=$VERBUS_HOST_3_ADDR
bdev=$(rdmadev_of "$B") pdev=$(rdmadev_of "$P")
N=${VERBUS_BENCH_N:-100000}
W=$(mktemp -d)
bpid=
trap 'kill $bpid 2>/dev/null; rm -rf "$W"' EXIT

pt() { # TOOL SIZE ITERS: perftest server on host 1, client on host 2
	timeout 60 "$1" -d "$bdev" -F -s "$2" -n "$3" >/dev/null 2>&1 &
	sleep 1
	timeout 60 "$1" -d "$pdev" -F -s "$2" -n "$3" "$B" 2>&1 |
		grep -E '^ +[0-9]+ +[0-9]+' | tail -1
	wait
}
broker() { # [verbusd args]: a fresh broker
	[ -n "$bpid" ] && { kill "$bpid"; wait "$bpid"; }
	port=$(free_port)
	mport=$(free_port)
	"$VERBUS_BIN/verbusd" --listen "${LISTEN:-$B}:$port" --monitor "127.0.0.1:$mport" \
		"$@" >"$W/broker.log" 2>&1 &
	bpid=$!
	sleep 1
}
ps() { # NAME HOST ARGS...: vb_pubsub to the broker at $TO ($B), output in $W/NAME
	local name=$1 src=$2
	shift 2
	timeout 300 "$VERBUS_BIN/vb_pubsub" --connect "${TO:-$B}" --port "$port" \
		--source "$src" --name "$name" "$@" >"$W/$name" 2>&1
}
spids=()
subs() { # K ARGS...: K subscribers on host 3, waited ready
	local k=$1 i
	shift
	spids=()
	for i in $(seq "$k"); do
		ps "sub$i" "$S" --sub "$@" &
		spids+=($!)
	done
	for i in $(seq "$k"); do
		until grep -q ready "$W/sub$i" 2>/dev/null; do sleep 0.1; done
	done
}
# reap: wait for the subscribers (not the broker, which runs on).
reap() { local p; for p in "${spids[@]}"; do wait "$p"; done; }
field() { sed -nE "s|.*$1.*|\\1|p" "$2" | head -1; }

echo "date $(date -u +%FT%TZ), $(uname -r), mode ${VERBUS_RXE_MODE:-?}," \
	"broker $bdev, publisher $pdev, $(nproc) vCPUs"
lat=$(pt ib_write_lat 64 5000 | awk '{ print $5 }')
bw64=$(pt ib_write_bw 64 50000 | awk '{ printf "%.0f", $5 * 1e6 }')
bw64k=$(pt ib_write_bw 65536 2000 | awk '{ print $4 }')
echo "raw: ib_write_lat 64 B typical $lat us; ib_write_bw 64 B $bw64 msg/s;" \
	"64 KiB $bw64k MB/s"

rows=()
row() { rows+=("| $1 | $2 | $3 | $4 |"); }

latency() { # LABEL [verbusd args]: paced 64 B messages, one-way latency
	local label=$1 l p99
	shift
	broker "$@"
	subs 1 bench.lat --expect 3000 --no-verify --latency
	TO=${PUB_TO:-$B} ps pub "$P" --pub bench.lat --count 3000 --size 64 --no-verify \
		--latency --interval-us 2000
	reap
	l=$(field 'median ([0-9.]+) us' "$W/sub1")
	p99=$(field 'p99 ([0-9.]+) us' "$W/sub1")
	row "pub->sub one-way latency, 64 B, $label (median; p99)" \
		"$l us; $p99 us" "ib_write_lat $lat us" \
		"$(awk -v a="$l" -v b="$lat" 'BEGIN { printf "%.2f", a / b }')"
}
latency "event-driven"
latency "broker busy-polling" --set busy_poll=true

broker
ps rep "$S" --rep bench.rr --count 2000 --no-verify &
spids=($!)
until grep -q ready "$W/rep" 2>/dev/null; do sleep 0.1; done
ps req "$P" --req bench.rr --count 2000 --size 64
reap
rr=$(field 'median ([0-9.]+) us' "$W/req")
row "request/reply round trip, 64 B (median; 4 hops)" "$rr us" \
	"ib_write_lat $lat us" \
	"$(awk -v a="$rr" -v b="$lat" 'BEGIN { printf "%.2f", a / b }')"
half=$(awk -v a="$rr" 'BEGIN { printf "%.1f", a / 2 }')
row "pub->sub one-way, back to back (request/reply / 2)" "$half us" \
	"ib_write_lat $lat us" \
	"$(awk -v a="$half" -v b="$lat" 'BEGIN { printf "%.2f", a / b }')"

throughput() { # LABEL: 1->1 throughput at 64 B and 64 KiB
	local label=$1 size n r mb
	for size in 64 65536; do
		n=$N
		[ "$size" = 65536 ] && n=3000
		# A 64 KiB payload plus its topic needs more than the default.
		broker --set limits.max_msg=128K
		subs 1 bench.tp --expect "$n" --no-verify --max-msg 128K
		TO=${PUB_TO:-$B} ps pub "$P" --pub bench.tp --count "$n" \
			--size "$size" --no-verify --max-msg 128K
		reap
		r=$(field ': ([0-9]+) msg/s' "$W/sub1")
		mb=$(field 'msg/s, ([0-9.]+) MB/s' "$W/sub1")
		if [ "$size" = 64 ]; then
			row "1->1 throughput, 64 B$label" "$r msg/s" \
				"ib_write_bw $bw64 msg/s" \
				"$(awk -v a="$r" -v b="$bw64" 'BEGIN { printf "%.2f", a / b }')"
		else
			row "1->1 throughput, 64 KiB$label" "$mb MB/s" \
				"ib_write_bw $bw64k MB/s" \
				"$(awk -v a="$mb" -v b="$bw64k" 'BEGIN { printf "%.2f", a / b }')"
		fi
	done
}
throughput ""

broker
subs 8 bench.fan --expect "$((N / 4))" --no-verify --ring 4M
ps pub "$P" --pub bench.fan --count "$((N / 4))" --size 64 --no-verify
reap
total=0
for i in $(seq 8); do
	r=$(field ': ([0-9]+) msg/s' "$W/sub$i")
	total=$((total + ${r:-0}))
done
row "1->8 fan-out, 64 B, deliveries in all" "$total msg/s" \
	"ib_write_bw $bw64 msg/s" \
	"$(awk -v a="$total" -v b="$bw64" 'BEGIN { printf "%.2f", a / b }')"
copies=$(curl -s "http://127.0.0.1:$mport/metrics" |
	awk '$1 == "verbus_payload_copy_bytes_total" { print $2 }')

# The same rows across devices: broker on every address, publisher in
# through host 3's device, subscriber through host 1's.
export LISTEN=0.0.0.0 PUB_TO=$S
latency "event-driven, across devices"
throughput ", across devices"
xcopies=$(curl -s "http://127.0.0.1:$mport/metrics" |
	awk '$1 == "verbus_payload_copy_bytes_total" { print $2 }')
unset LISTEN PUB_TO

echo
echo "| measure | Verbus | raw verbs, same devices | ratio |"
echo "|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "payload bytes copied by the broker's CPU during the fan-out run: ${copies:-?};" \
	"during the cross-device 64 KiB run: ${xcopies:-?}"
