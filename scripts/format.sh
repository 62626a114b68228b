#!/bin/bash
# format.sh - apply the checked-in .clang-format (kernel style) to every C
# source and header in the tree; with --check, change nothing and fail
# listing the files that differ.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
mapfile -t files < <(git ls-files '*.c' '*.h')
if [ "${1:-}" = --check ]; then
	bad=()
	for f in "${files[@]}"; do
		clang-format --style=file "$f" | cmp -s - "$f" || bad+=("$f")
	done
	if [ ${#bad[@]} -gt 0 ]; then
		echo "format: these files differ from .clang-format (run scripts/format.sh):"
		printf '  %s\n' "${bad[@]}"
		exit 1
	fi
	echo "format: ${#files[@]} files conform"
else
	clang-format -i --style=file "${files[@]}"
fi
