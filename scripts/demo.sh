#!/bin/bash
# demo.sh - the newcomer's first command: set up, build, bring up Soft-RoCE
# (in the test guest when this kernel has no rxe) and run verbusd on one
# RDMA host with `verbus sub` and `verbus pub` on two others, a request
# answered across hosts, a short `verbus bench` and `verbus stat`
# (scripts/demo-broker.sh), then shut everything down.
#
# demo.sh --tcp runs the same demo over the TCP transport on this machine
# (127.0.0.1, no RDMA device, no guest): seconds once built.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${VERBUS_BUILD_DIR:-$ROOT/build}
"$ROOT/scripts/setup.sh"
if [ "${1:-}" = --tcp ]; then
	VERBUS_BIN=$BUILD/bin VERBUS_SCHEME=tcp exec "$ROOT/scripts/demo-broker.sh"
fi
native=()
[ "${VERBUS_RXE_MODE:-vm}" = native ] && native=(--native)
VERBUS_BIN=$BUILD/bin exec "$ROOT/tests/vm/rxe-run" "${native[@]}" \
	--hosts 3 -w "$BUILD" -- "$ROOT/scripts/demo-broker.sh"
