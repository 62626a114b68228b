#!/bin/bash
# The data path under valgrind memcheck: both ends of a verified exchange
# (random sizes both ways, then a size sweep with the ring wrapping), with
# leak checking.  Any memcheck error or leak fails the test.  The transport
# marks the bytes the RDMA device wrote as defined (memcheck cannot see
# DMA), so what remains is ours.
set -u
. "$(dirname "$0")/lib.sh"
# VERBUS_SCHEME=tcp: the same over the TCP transport on loopback
# (tcp.data_path_memcheck, natively).
scheme=${VERBUS_SCHEME:-rdma}
if [ "$scheme" = rdma ]; then
	need_hosts 2
	srv=$VERBUS_HOST_1_ADDR cli=$VERBUS_HOST_2_ADDR
else
	[ -n "${VERBUS_BIN:-}" ] || fail "VERBUS_BIN is not set (run through ctest)"
	srv=127.0.0.1 cli=127.0.0.1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
VG=(valgrind -q --vgdb=no --suppressions="$(dirname "$0")/valgrind.supp" --error-exitcode=99 --leak-check=full
	--show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible)

# run NAME ARGS...: a memchecked server and client with the same ARGS;
# memcheck starts slowly, so the client may wait a minute for the server.
run() {
	local name=$1 port
	shift
	port=$(free_port)
	run_pair "$name" 60 timeout 600 "${VG[@]}" "$VERBUS_BIN/vb_dp_stream" \
		--server --scheme "$scheme" --bind "$srv" --port "$port" "$@" -- \
		timeout 600 "${VG[@]}" "$VERBUS_BIN/vb_dp_stream" --client \
		--scheme "$scheme" --connect "$srv" --source "$cli" \
		--port "$port" "$@" ||
		fail "$name under memcheck: server rc=$pair_src client rc=$pair_crc (99: memcheck errors)"
}

run "random sizes both ways" --count 3000 --max-payload 256
run "size sweep, 64 KiB ring" --count 400 --sweep --max-payload 30000 \
	--ring 65536
echo "PASS: data path clean under memcheck ($scheme)"
