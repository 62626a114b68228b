#!/bin/bash
# fuzz.sh - build the libFuzzer targets with clang, ASan and UBSan
# (build-fuzz/, or $VERBUS_FUZZ_BUILD_DIR) and run each for SECONDS
# (default 60), seeded from tests/fuzz/corpus/.
#
#   scripts/fuzz.sh [SECONDS [TARGET...]]
#       TARGET: codec frame header subject auth escape tcp large
#
# Any crash, leak (LeakSanitizer), sanitizer report, input slower than 10 s
# (-timeout) or RSS over 2 GiB fails the target: exit status 1, the log kept
# and its path printed, the offending input left in the build dir (crash-*,
# leak-*, timeout-*, oom-*).  New inputs go to a temporary directory, never
# into the corpus in the repo.  VERBUS_FUZZ_ARGS adds libFuzzer flags (for
# a long run: VERBUS_FUZZ_ARGS=-runs=10000000 scripts/fuzz.sh 0 codec).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECS=${1:-60}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(codec frame header subject auth escape tcp large)
B=${VERBUS_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
command -v clang >/dev/null || { echo "fuzz: needs clang (apt-get install clang libclang-rt-dev)" >&2; exit 2; }
mkdir -p "$B"
if ! { CC=clang cmake -S "$ROOT" -B "$B" -DVERBUS_FUZZ=ON \
	-DVERBUS_BUILD_TESTS=OFF -DVERBUS_SANITIZE=address,undefined &&
	cmake --build "$B" -j"$(nproc)" --target fuzz_codec fuzz_frame fuzz_header \
		fuzz_subject fuzz_auth fuzz_escape fuzz_tcp fuzz_large; } >"$B/fuzz-build.log" 2>&1; then
	cat "$B/fuzz-build.log"
	echo "fuzz: the build failed" >&2
	exit 2
fi
status=0
for t in "${TARGETS[@]}"; do
	# fuzz_frame's input is a 4 KiB ring then 2-byte immediates: let it
	# grow past libFuzzer's default limit (the largest seed) to hold many.
	extra=()
	[ "$t" = frame ] && extra=(-max_len=8192)
	work=$(mktemp -d)
	echo "fuzz_$t: $SECS s"
	rc=0
	(cd "$B" && "$B/bin/fuzz_$t" -max_total_time="$SECS" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 "${extra[@]}" \
		${VERBUS_FUZZ_ARGS:-} "$work" "$ROOT/tests/fuzz/corpus/$t") \
		>"$work.log" 2>&1 || rc=$?
	grep -E "^(INFO: Seed|#[0-9]+.*DONE|Done|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==ERROR|SUMMARY)" "$work.log" || true
	if [ "$rc" != 0 ]; then
		echo "fuzz_$t FAILED (exit $rc); log: $work.log"
		status=1
	else
		echo "fuzz_$t: ok"
		rm -f "$work.log"
	fi
	rm -rf "$work"
done
exit $status
