#!/bin/bash
# setup.sh - everything a fresh Debian 12 machine needs, then the build.
#
#   scripts/setup.sh [--no-build]
#
# Installs the Debian packages listed below (only the missing ones; apt-get
# update runs only when something must be installed), prepares the test
# guest's kernel and initramfs (tests/vm/prepare, cached), then configures
# and builds into $VERBUS_BUILD_DIR (default: build/) with warnings as
# errors.  Idempotent: a second run with nothing to do takes seconds.
# Needs root (or sudo) for the packages.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${VERBUS_BUILD_DIR:-$ROOT/build}

# Why each package is here: docs/DEPENDENCIES.md.
PACKAGES=(
	build-essential cmake pkg-config clang-format help2man
	clang libclang-rt-dev
	rdma-core libibverbs-dev librdmacm-dev ibverbs-utils rdmacm-utils
	perftest iproute2
	libprotobuf-c-dev protobuf-c-compiler
	libcmocka-dev
	uthash-dev libconfig-dev libmicrohttpd-dev libjson-c-dev
	libcurl4-openssl-dev libsodium-dev libssl-dev openssl
	libsystemd-dev systemd
	default-jre-headless libzookeeper-java libzookeeper-st-dev
	valgrind
	nats-server libnats-dev ucx-utils gnuplot-nox python3
	qemu-system-x86 busybox-static kmod xz-utils file
)

sudo_() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	sudo_ apt-get update -q
	sudo_ apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# The guest kernel is fetched by name: the package lists must know it.
if ! apt-cache depends linux-image-amd64 >/dev/null 2>&1; then
	sudo_ apt-get update -q
fi
"$ROOT/tests/vm/prepare"

[ "${1:-}" = --no-build ] && exit 0
cmake -S "$ROOT" -B "$BUILD" -DVERBUS_WERROR=ON ${VERBUS_CMAKE_ARGS:-}
cmake --build "$BUILD" -j"$(nproc)"
