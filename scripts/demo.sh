#!/bin/bash
# demo.sh - the newcomer's first command: set up, build, bring up Soft-RoCE
# (in the test guest when this kernel has no rxe) and run Verbus's own RDMA
# smoke program between two hosts, printing what each side verified.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${VERBUS_BUILD_DIR:-$ROOT/build}
"$ROOT/scripts/setup.sh"
native=()
[ "${VERBUS_RXE_MODE:-vm}" = native ] && native=(--native)
VERBUS_BIN=$BUILD/bin exec "$ROOT/tests/vm/rxe-run" "${native[@]}" \
	--hosts 2 -w "$BUILD" -- "$ROOT/tests/rdma/smoke-two-hosts.sh"
