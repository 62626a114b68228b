#!/bin/bash
# test.sh - the whole test suite, from a fresh machine.
#
#   scripts/test.sh
#
# 1. scripts/setup.sh: packages, guest kernel, build (warnings are errors);
# 2. unit tests on this machine (ctest -L unit);
# 3. one boot of the test guest with 3 RDMA hosts running every rxe test
#    (ctest -L rxe), so they exercise real verbs on Soft-RoCE;
# 4. the end-to-end smoke across two guests on a QEMU socket network
#    (rxe-run --vms 2).
# With VERBUS_RXE_MODE=native, steps 3 and 4 run on this machine's own rxe
# or RNICs instead (docs/TESTING.md).  Exit status: 0 only if every step
# passed.  The last line counts the tests: "N passed, N failed".
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${VERBUS_BUILD_DIR:-$ROOT/build}
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
passed=0 failed=0

step() { echo; echo "===== $*"; }

# count_ctest: add the counts of ctest's summary line in $LOG.
count_ctest() {
	local line total bad
	line=$(sed 's/\x1b\[[0-9;]*m//g' "$LOG" | grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' | tail -n1)
	if [ -z "$line" ]; then
		failed=$((failed + 1)) # ctest did not even report
		return
	fi
	bad=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
	total=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line")
	passed=$((passed + total - bad))
	failed=$((failed + bad))
}

step "setup and build"
"$ROOT/scripts/setup.sh" || { echo "0 passed, 1 failed"; exit 1; }

step "unit tests (this machine)"
(cd "$BUILD" && ctest -L unit --output-on-failure) 2>&1 | tee "$LOG"
count_ctest

step "rxe tests (3 RDMA hosts)"
native=()
[ "${VERBUS_RXE_MODE:-vm}" = native ] && native=(--native)
"$ROOT/tests/vm/rxe-run" "${native[@]}" --hosts 3 -w "$BUILD" -- \
	sh -c "cd '$BUILD' && ctest -L rxe --output-on-failure" 2>&1 | tee "$LOG"
count_ctest

if [ "${VERBUS_RXE_MODE:-vm}" != native ]; then
	step "smoke across two guests (rxe-run --vms 2)"
	if VERBUS_BIN=$BUILD/bin VERBUS_VM_ENV=VERBUS_BIN \
		"$ROOT/tests/vm/rxe-run" --vms 2 -w "$BUILD" -- \
		"$ROOT/tests/rdma/smoke-vms.sh"; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
	fi
fi

echo
echo "test: $passed passed, $failed failed"
[ "$failed" = 0 ]
