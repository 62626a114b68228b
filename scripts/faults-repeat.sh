#!/bin/bash
# faults-repeat.sh - rxe.faults N times in a row in one boot of the test
# guest, and the spread of its memory measures: the check must never fail
# on a correct broker (issue 14).  A soak, not a CI step.
#
#   scripts/faults-repeat.sh [--runs N] [BUILD_DIR]
#
#   --runs N     how many runs [20]
#   BUILD_DIR    the build to test [build]
#
# Prints one line per run (pass or fail, and the heap in use and resident
# memory the broker gained over its 1,000 connection cycles), then the
# minimum, median and maximum of each.  VERBUS_CHURN and VERBUS_STREAM
# pass through to the test.  Exit status: 0 only if every run passed.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${VERBUS_HOST_3_ADDR:-}" ]; then
	runs=20 build=$ROOT/build
	while [ $# -gt 0 ]; do
		case $1 in
		--runs) runs=$2; shift ;;
		-h | --help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
		-*) echo "faults-repeat: unknown option $1" >&2; exit 2 ;;
		*) build=$(cd "$1" && pwd) ;;
		esac
		shift
	done
	export VERBUS_FAULTS_RUNS=$runs
	# One run takes about a minute and a half on an idle 2-core machine:
	# the guest's own time limit must cover them all.
	export VERBUS_VM_TIMEOUT=${VERBUS_VM_TIMEOUT:-$((runs * 240 + 300))}
	exec "$ROOT/tests/vm/rxe-run" --hosts 3 -w "$build" -- "$0" "$build"
fi

# In the guest.
build=$1
out=$(mktemp)
passed=0 failed=0
for ((i = 1; i <= VERBUS_FAULTS_RUNS; i++)); do
	if (cd "$build" && ctest -R '^rxe\.faults$' -V) >"$out" 2>&1; then
		passed=$((passed + 1)) verdict=pass
	else
		failed=$((failed + 1)) verdict=FAIL
	fi
	line=$(grep -E 'over [0-9]+ cycles: heap in use grew by' "$out" | tail -n 1)
	heap=$(sed -E 's/.*heap in use grew by (-?[0-9]+) KiB.*/\1/' <<<"$line")
	rss=$(sed -E 's/.*resident memory by (-?[0-9]+) KiB.*/\1/' <<<"$line")
	echo "run $i: $verdict heap_kib ${heap:-?} rss_kib ${rss:-?}"
	[ "$verdict" = pass ] || grep -E 'FAIL' "$out" | head -n 5
	echo "$heap $rss" >>"$out.all"
done
for col in 1 2; do
	name=$([ $col = 1 ] && echo "heap in use (KiB)" || echo "resident (KiB)")
	awk -v c=$col '$c ~ /^-?[0-9]+$/ { print $c }' "$out.all" | sort -n |
		awk -v n="$name" '{ v[NR] = $1 } END {
			if (NR) printf "%s: min %d median %d max %d over %d runs\n",
				n, v[1], v[int((NR + 1) / 2)], v[NR], NR }'
done
rm -f "$out" "$out.all"
echo "faults-repeat: $passed passed, $failed failed"
[ "$failed" = 0 ]
