#!/bin/bash
# The data path under valgrind memcheck: both ends of a verified exchange
# (random sizes both ways, then a size sweep with the ring wrapping), with
# leak checking.  Any memcheck error or leak fails the test.  The transport
# marks the bytes the RDMA device wrote as defined (memcheck cannot see
# DMA), so what remains is ours.
set -u
. "$(dirname "$0")/lib.sh"
need_hosts 2
srv=$VERBUS_HOST_1_ADDR cli=$VERBUS_HOST_2_ADDR
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
VG=(valgrind -q --vgdb=no --suppressions="$(dirname "$0")/valgrind.supp" --error-exitcode=99 --leak-check=full
	--show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible)

# run NAME ARGS...: a memchecked server and client with the same ARGS.
run() {
	local name=$1 port
	shift
	port=$(free_port)
	timeout 600 "${VG[@]}" "$VERBUS_BIN/vb_dp_stream" --server \
		--bind "$srv" --port "$port" "$@" >"$work/srv" 2>&1 &
	local spid=$!
	# memcheck starts slowly: a client that came too early would be
	# refused and leave the server waiting for it.
	for _ in $(seq 600); do
		grep -q "server listening" "$work/srv" 2>/dev/null && break
		sleep 0.1
	done
	timeout 600 "${VG[@]}" "$VERBUS_BIN/vb_dp_stream" --client \
		--connect "$srv" --source "$cli" --port "$port" "$@" \
		>"$work/cli" 2>&1
	local crc=$?
	wait "$spid"
	local src=$?
	show "$name: server" "$work/srv"
	show "$name: client" "$work/cli"
	[ "$src" = 0 ] && [ "$crc" = 0 ] ||
		fail "$name under memcheck: server rc=$src client rc=$crc (99: memcheck errors)"
}

run "random sizes both ways" --count 3000 --max-payload 256
run "size sweep, 64 KiB ring" --count 400 --sweep --max-payload 30000 \
	--ring 65536
echo "PASS: data path clean under memcheck"
