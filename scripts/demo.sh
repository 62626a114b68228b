#!/bin/bash
# demo.sh - the newcomer's first command: set up, build, bring up Soft-RoCE
# (in the test guest when this kernel has no rxe) and run the broker with a
# publisher and two subscribers on three RDMA hosts (scripts/demo-broker.sh),
# printing what the subscribers verified and the broker's counters.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${VERBUS_BUILD_DIR:-$ROOT/build}
"$ROOT/scripts/setup.sh"
native=()
[ "${VERBUS_RXE_MODE:-vm}" = native ] && native=(--native)
VERBUS_BIN=$BUILD/bin exec "$ROOT/tests/vm/rxe-run" "${native[@]}" \
	--hosts 3 -w "$BUILD" -- "$ROOT/scripts/demo-broker.sh"
