#!/bin/bash
# cluster.sh - the cluster in one command: set up, build, bring up
# Soft-RoCE (the test guest when this kernel has no rxe), start ZooKeeper
# and three brokers on three RDMA hosts (scripts/cluster-demo.sh), and show
# a subscriber on broker 3 getting what a publisher gives broker 1, a
# request answered across brokers, and /routez; then shut everything down.
#
# cluster.sh --tcp: the same over TCP on this machine (no RDMA, no guest).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${VERBUS_BUILD_DIR:-$ROOT/build}
"$ROOT/scripts/setup.sh"
if [ "${1:-}" = --tcp ]; then
	VERBUS_BIN=$BUILD/bin VERBUS_SCHEME=tcp exec "$ROOT/scripts/cluster-demo.sh"
fi
native=()
[ "${VERBUS_RXE_MODE:-vm}" = native ] && native=(--native)
VERBUS_BIN=$BUILD/bin exec "$ROOT/tests/vm/rxe-run" "${native[@]}" \
	--hosts 3 -w "$BUILD" -- "$ROOT/scripts/cluster-demo.sh"
