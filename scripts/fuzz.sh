#!/bin/bash
# fuzz.sh - build the libFuzzer targets with clang, ASan and UBSan
# (build-fuzz/) and run each for SECONDS (default 60), seeded from
# tests/fuzz/corpus/.  Exit status 1 if any target crashed; the crashing
# input is left in build-fuzz/ (crash-*).
#
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECS=${1:-60}
B=$ROOT/build-fuzz
command -v clang >/dev/null || { echo "fuzz: needs clang (apt-get install clang)" >&2; exit 2; }
CC=clang cmake -S "$ROOT" -B "$B" -DVERBUS_FUZZ=ON -DVERBUS_BUILD_TESTS=OFF \
	-DVERBUS_SANITIZE=address,undefined >/dev/null
cmake --build "$B" -j"$(nproc)" --target fuzz_codec fuzz_frame fuzz_subject >/dev/null
status=0
for t in codec frame subject; do
	work=$(mktemp -d)
	echo "fuzz_$t: $SECS s"
	rc=0
	(cd "$B" && "$B/bin/fuzz_$t" -max_total_time="$SECS" -rss_limit_mb=2048 \
		-print_final_stats=1 "$work" "$ROOT/tests/fuzz/corpus/$t") \
		>"$work.log" 2>&1 || rc=$?
	grep -E "^(Done|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY)" "$work.log" || true
	if [ "$rc" != 0 ]; then
		echo "fuzz_$t FAILED (exit $rc); log: $work.log"
		status=1
	else
		rm -f "$work.log"
	fi
	rm -rf "$work"
done
exit $status
