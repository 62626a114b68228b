#!/bin/bash
# install-test.sh - install a build into a scratch prefix and use it as an
# outside project would.
#
#   tests/install/install-test.sh BUILD_DIR
#
# 1. cmake --install BUILD_DIR --prefix TMP/prefix, and every file in its
#    place (header, both libraries, CMake package, verbus.pc, verbusd, the
#    verbus tool when built, the systemd unit, the man pages); the unit
#    naming this prefix's verbusd and verbusd.conf, and passing
#    `systemd-analyze verify`;
# 2. libverbus.so: SONAME libverbus.so.MAJOR, and the dynamic symbols it
#    defines are exactly the VB_EXPORT functions of the installed header;
# 3. tests/install/consumer built with CMake (find_package(verbus)): the
#    check program against verbus::verbus and verbus::verbus_static, and
#    the examples of clients/examples; a request for version 1.0 refused;
# 4. the same with pkg-config: cc $(pkg-config --cflags --libs verbus), and
#    statically with pkg-config --static;
# 5. each check program runs (no RDMA device needed) and must load the
#    installed library, not the build tree's.
# Environment (set by ctest, tests/install/CMakeLists.txt): CC, the
# compiler of the build; VERBUS_SANITIZE, its sanitizers, which the
# consumers must be built with too; VERBUS_EXPECT_CLI=1 if the build has
# the verbus tool.  Exit status 0 only if every check passed.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
[ $# = 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
BUILD=$(cd "$1" && pwd) || exit 2
CC=${CC:-cc}
SAN=()
[ -n "${VERBUS_SANITIZE:-}" ] &&
	SAN=(-fsanitize="$VERBUS_SANITIZE" -fno-omit-frame-pointer)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
failed=0

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
# check WHAT CMD...: one named check.
check() {
	local what=$1
	shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}
# run LOG CMD...: CMD with its output in LOG, shown only if it fails.
run() {
	local log=$1
	shift
	"$@" >"$log" 2>&1 && return 0
	echo "---- $* failed:"
	tail -n 40 "$log"
	return 1
}

echo "install-test: $BUILD -> $prefix"
run "$work/install.log" cmake --install "$BUILD" --prefix "$prefix" || {
	fail "cmake --install"
	echo "install-test: $failed failed"
	exit 1
}
pass "cmake --install"

# -- 1. the files -----------------------------------------------------------
pc=$(find "$prefix" -name verbus.pc -path '*/pkgconfig/*' | head -n1)
libdir=$(dirname "$(dirname "$pc")")
[ -n "$pc" ] || libdir=$prefix/lib
version=$(sed -n 's/^Version: //p' "$pc" 2>/dev/null)
major=${version%%.*}
files=(include/verbus/verbus.h sbin/verbusd etc/verbus/verbusd.conf
	lib/systemd/system/verbusd.service share/man/man8/verbusd.8)
[ "${VERBUS_EXPECT_CLI:-0}" = 1 ] && files+=(bin/verbus share/man/man1/verbus.1)
for f in "${files[@]}"; do
	check "installed $f" test -s "$prefix/$f"
done
for f in libverbus.so.$version libverbus.a cmake/verbus/verbusConfig.cmake \
	cmake/verbus/verbusConfigVersion.cmake cmake/verbus/verbusTargets.cmake \
	pkgconfig/verbus.pc; do
	check "installed ${libdir#"$prefix"/}/$f" test -s "$libdir/$f"
done
check "libverbus.so -> libverbus.so.$major -> libverbus.so.$version" \
	test "$(readlink "$libdir/libverbus.so")" = "libverbus.so.$major" -a \
	"$(readlink "$libdir/libverbus.so.$major")" = "libverbus.so.$version"
check "verbusd.8 documents the options" \
	grep -qF '\-\-listen' "$prefix/share/man/man8/verbusd.8"

# -- 1b. the systemd unit ----------------------------------------------------
# Made at install time for this prefix: ExecStart is the verbusd just
# installed, reading the verbusd.conf just installed.
unit=$prefix/lib/systemd/system/verbusd.service
check "verbusd.service starts $prefix/sbin/verbusd --config $prefix/etc/verbus/verbusd.conf" \
	grep -qxF "ExecStart=$prefix/sbin/verbusd --config $prefix/etc/verbus/verbusd.conf" "$unit"
check "verbusd.service is Type=notify, with ExecReload" \
	bash -c "grep -qx 'Type=notify' '$unit' && grep -qxF 'ExecReload=/bin/kill -HUP \$MAINPID' '$unit'"
# systemd's own check: syntax, that ExecStart exists and is executable, and
# (MANPATH: the installed pages) that Documentation's man:verbusd(8) is
# there.  It warns of unknown or malformed settings without failing, so
# any output at all fails too.  Without man(1) the page is not checked.
verify=(systemd-analyze verify)
command -v man >/dev/null || verify+=(--man=no)
if command -v systemd-analyze >/dev/null; then
	MANPATH=$prefix/share/man "${verify[@]}" "$unit" >"$work/verify.log" 2>&1
	rc=$?
	[ "$rc" = 0 ] && [ ! -s "$work/verify.log" ] || cat "$work/verify.log"
	check "${verify[*]} verbusd.service: exit $rc, $(wc -l <"$work/verify.log") lines of complaint" \
		test "$rc" = 0 -a ! -s "$work/verify.log"
else
	fail "systemd-analyze not found (scripts/setup.sh installs systemd)"
fi

# -- 2. SONAME and exported symbols -----------------------------------------
so=$libdir/libverbus.so.$version
soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
check "SONAME is libverbus.so.$major (readelf: $soname)" \
	test "$soname" = "libverbus.so.$major"
# Defined dynamic symbols, minus the version node's own (VERBUS_0).
nm -D --defined-only "$so" | awk '{ print $3 }' | sed 's/@.*//' |
	grep -v '^VERBUS_[0-9]*$' | sort -u >"$work/exported"
grep -o '^VB_EXPORT[^(]*(' "$prefix/include/verbus/verbus.h" |
	sed 's/.*[ *]\([a-z_0-9]*\)($/\1/' | sort -u >"$work/declared"
check "exports only vb_ symbols ($(wc -l <"$work/exported") of them)" \
	bash -c "! grep -v '^vb_' '$work/exported'"
check "exports every VB_EXPORT function of verbus.h, and nothing else" \
	diff "$work/declared" "$work/exported"

# -- 3. a CMake project: find_package(verbus) -------------------------------
ex=("$ROOT"/clients/examples/*.c)
[ -e "${ex[0]}" ] || ex=()
examples=$(IFS=';' && echo "${ex[*]}")
cm=(cmake -S "$HERE/consumer" -DCMAKE_PREFIX_PATH="$prefix"
	-DCMAKE_C_COMPILER="$CC" -DCMAKE_C_FLAGS="${SAN[*]}"
	-DVERBUS_EXAMPLES="$examples")
if run "$work/cmake.log" "${cm[@]}" -B "$work/cmake" &&
	run "$work/cmake-build.log" cmake --build "$work/cmake" -j4; then
	pass "CMake consumer builds (check_shared, check_static, examples: ${examples:-none})"
else
	fail "CMake consumer builds"
fi
"${cm[@]}" -B "$work/cmake-v1" -DVERBUS_WANT=1.0 >"$work/cmake-v1.log" 2>&1
check "find_package(verbus 1.0) is refused (SameMajorVersion)" \
	grep -q "verbusConfig.cmake, version: $version" "$work/cmake-v1.log"

# -- 4. pkg-config -----------------------------------------------------------
export PKG_CONFIG_PATH=$libdir/pkgconfig
check "pkg-config --modversion verbus is $version" \
	test "$(pkg-config --modversion verbus)" = "$version"
mkdir -p "$work/pc"
cflags=(-Wall -Wextra -Wpedantic -Werror "${SAN[@]}")
# shellcheck disable=SC2046 # pkg-config's output is meant to be split
check "cc \$(pkg-config --cflags --libs verbus)" \
	run "$work/pc.log" "$CC" "${cflags[@]}" -o "$work/pc/check_shared" \
	"$HERE/consumer/check.c" $(pkg-config --cflags --libs verbus) \
	-Wl,-rpath,"$libdir"
for src in "${ex[@]}"; do
	n=$(basename "$src" .c)
	# shellcheck disable=SC2046
	check "example $n with pkg-config" run "$work/pc-$n.log" "$CC" \
		"${cflags[@]}" -o "$work/pc/example_$n" "$src" \
		$(pkg-config --cflags --libs verbus)
done
# Static: pkg-config --static adds libverbus's own dependencies; the .a is
# asked for by name, since -lverbus prefers the .so beside it.
static_libs=$(pkg-config --static --libs verbus) &&
	static_libs=${static_libs/-lverbus/-l:libverbus.a}
# shellcheck disable=SC2046,SC2086
check "cc \$(pkg-config --static --cflags --libs verbus), libverbus.a" \
	run "$work/pc-static.log" "$CC" "${cflags[@]}" \
	-o "$work/pc/check_static" "$HERE/consumer/check.c" \
	$(pkg-config --static --cflags verbus) $static_libs

# -- 5. run them ---------------------------------------------------------------
# needed BINARY: its NEEDED entries.
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
for bin in "$work/cmake/check_shared" "$work/pc/check_shared"; do
	[ -x "$bin" ] || continue
	where=$(ldd "$bin" | awk '$1 == "libverbus.so.'"$major"'" { print $3 }')
	check "${bin#"$work"/} loads the installed libverbus ($where)" \
		test "$where" = "$libdir/libverbus.so.$major"
done
for bin in "$work/cmake/check_static" "$work/pc/check_static"; do
	[ -x "$bin" ] || continue
	check "${bin#"$work"/} has no libverbus.so dependency" \
		bash -c "! grep -q libverbus <<<'$(needed "$bin")'"
done
for bin in "$work"/cmake/check_* "$work"/pc/check_*; do
	[ -x "$bin" ] || continue
	check "${bin#"$work"/} runs" timeout 60 "$bin"
done

echo "install-test: $failed failed"
[ "$failed" = 0 ]
