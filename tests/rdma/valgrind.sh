#!/bin/bash
# The data path under valgrind memcheck: both ends of a verified exchange
# (random sizes both ways, then a size sweep with the ring wrapping), with
# leak checking.  Any memcheck error or leak fails the test.  The transport
# marks the bytes the RDMA device wrote as defined (memcheck cannot see
# DMA), so what remains is ours.
set -u
. "$(dirname "$0")/lib.sh"
# VERBUS_SCHEME=tcp runs the same over the TCP transport, on this
# machine's loopback (pair_env): ctest's tcp.data_path_memcheck; tls
# through TLS (OpenSSL's memory included): tls.data_path_memcheck.
pair_env
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tls=()
if [ "$scheme" = tls ]; then
	tls_files "$work/tls"
	tls=(--tls-cert "$work/tls/srv.pem" --tls-key "$work/tls/srv.key")
	export SSL_CERT_FILE=$work/tls/ca.pem # the client's trust
fi
VG=(valgrind -q --vgdb=no --suppressions="$(dirname "$0")/valgrind.supp" --error-exitcode=99 --leak-check=full
	--show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible)

# run NAME ARGS...: a memchecked server and client with the same ARGS;
# memcheck starts slowly, so the client may wait a minute for the server.
run() {
	local name=$1 port
	shift
	port=$(free_port)
	run_pair "$name" 60 timeout 600 "${VG[@]}" "$VERBUS_BIN/vb_dp_stream" \
		--server --scheme "$scheme" "${tls[@]}" --bind "$srv" --port "$port" "$@" -- \
		timeout 600 "${VG[@]}" "$VERBUS_BIN/vb_dp_stream" --client \
		--scheme "$scheme" --connect "$srv" --source "$cli" \
		--port "$port" "$@" ||
		fail "$name under memcheck: server rc=$pair_src client rc=$pair_crc (99: memcheck errors)"
}

run "random sizes both ways" --count 3000 --max-payload 256
run "size sweep, 64 KiB ring" --count 400 --sweep --max-payload 30000 \
	--ring 65536
echo "PASS: data path clean under memcheck ($scheme)"
