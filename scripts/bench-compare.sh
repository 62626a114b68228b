#!/bin/bash
# bench-compare.sh - Verbus side by side with raw verbs (perftest), UCX
# (ucx_perftest) and NATS (nats-server, over TCP) in one boot of the test
# guest, on the same devices: latency, request/reply, throughput and
# fan-out at 64 B, 1 KiB and 64 KiB.  Verbus runs over RDMA, then in direct
# mode (issue 19: verbus bench --direct, the publisher on host 2 writing
# into the subscribers' rings on host 3, the broker only negotiating; no
# 64 KiB fan-out), then over TCP (a verbusd listening on TCP only on host
# 1, verbus bench -s tcp:// from hosts 2 and 3, after the RDMA rows)
# beside NATS on the same hosts; then
# the cluster (issue 15): Verbus from broker 1 to broker 2 of a
# three-broker cluster beside a NATS cluster of three and the raw relay
# over three hops.  Writes a Markdown table with the ratios, a second one
# with Verbus direct beside raw verbs and UCX and issue 19's targets, a
# third with Verbus over TCP / NATS and issue 16's targets, a fourth with
# the cluster and issue 15's targets, a CSV and a PNG plot
# (docs/PERFORMANCE.md explains them).  A tool, not a test: it never fails
# on a number, only when a tool fails.
#
#   scripts/bench-compare.sh [--smoke] [--idle-poll] [--out DIR]
#
#   --smoke    tiny counts, every tool once (a few minutes; the direct
#              rows add ~12 s, the TCP rows seconds, the cluster rows
#              ~45 s): the suite's rxe.bench_compare runs the same
#              inside an already-booted guest
#   --idle-poll  boot the guest with idle=poll: its idle vCPUs poll instead
#              of halting, so waking a sleeping party costs what it does on
#              a latency-tuned server, not TCG's slow wake-up of a halted
#              vCPU (docs/PERFORMANCE.md); takes the host's CPUs whole
#   --out DIR  where the results go [bench-results/<UTC timestamp>/]
#
# VERBUS_RXE_MODE=native runs on this machine (rdma_rxe or real RNICs; see
# docs/TESTING.md) instead of in the guest.  VERBUS_BUILD_DIR picks the
# build [build/].  Run scripts/setup.sh first.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${VERBUS_BUILD_DIR:-$ROOT/build}
smoke=() out=
while [ $# -gt 0 ]; do
	case $1 in
	--smoke) smoke=(--smoke) ;;
	--idle-poll) export VERBUS_VM_APPEND="${VERBUS_VM_APPEND:+$VERBUS_VM_APPEND }idle=poll" ;;
	--out) [ $# -ge 2 ] || { echo "bench-compare: --out needs a directory" >&2; exit 2; }
		out=$2; shift ;;
	-h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "usage: bench-compare.sh [--smoke] [--idle-poll] [--out DIR]" >&2; exit 2 ;;
	esac
	shift
done
[ -n "$out" ] || out=$ROOT/bench-results/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
out=$(cd "$out" && pwd)
for b in verbusd verbus vb_nats_bench vb_relay_bench; do
	[ -x "$BUILD/bin/$b" ] ||
		{ echo "bench-compare: $BUILD/bin/$b is missing: run scripts/setup.sh" >&2; exit 1; }
done
# The machine the guest runs on, beside what the guest says of itself.
{
	echo "host: $(uname -srvm)"
	echo "host cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(nproc) CPUs"
	echo "host load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/host.txt"
native=()
[ "${VERBUS_RXE_MODE:-vm}" = native ] && native=(--native)
# The full run with the cluster rows takes over 30 minutes in the guest,
# past rxe-run's default limit of 1800 s.
export VERBUS_VM_TIMEOUT=${VERBUS_VM_TIMEOUT:-3600}
start=$(date +%s)
rc=0
VERBUS_BIN=$BUILD/bin "$ROOT/tests/vm/rxe-run" "${native[@]}" --hosts 3 \
	-w "$BUILD" -w "$out" -- \
	"$ROOT/scripts/bench-compare-guest.sh" "${smoke[@]}" --out "$out" || rc=$?
echo "host load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/host.txt"
# Again, now that host.txt is complete (the guest wrote it first).
[ -f "$out/results.csv" ] && python3 "$ROOT/tests/bench/report.py" "$out" >/dev/null
echo "bench-compare: $(($(date +%s) - start)) s; results in $out (status $rc)" >&2
exit "$rc"
