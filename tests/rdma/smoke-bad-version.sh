#!/bin/bash
# A client that speaks another protocol version is refused with a clear
# error on both sides, and the server goes on to serve the next client.
set -u
. "$(dirname "$0")/lib.sh"
need_hosts 2
srv=$VERBUS_HOST_1_ADDR cli=$VERBUS_HOST_2_ADDR port=$(free_port)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$VERBUS_BIN/vb_rdma_smoke" --server --bind "$srv" --port "$port" \
	--count 10 --size 64 >"$work/srv" 2>&1 &
spid=$!
"$VERBUS_BIN/vb_rdma_smoke" --client --bad-version --connect "$srv" \
	--source "$cli" --port "$port" --count 10 --size 64 >"$work/bad" 2>&1
brc=$?
"$VERBUS_BIN/vb_rdma_smoke" --client --connect "$srv" --source "$cli" \
	--port "$port" --count 10 --size 64 >"$work/good" 2>&1
grc=$?
wait "$spid"
src=$?
show "server" "$work/srv"
show "client with a bad version" "$work/bad"
show "good client" "$work/good"
[ "$brc" = 3 ] || fail "bad-version client exited $brc, expected 3 (refused)"
grep -q "refused by the server (it speaks version 1)" "$work/bad" ||
	fail "the refused client did not say why"
grep -q "refusing a client: protocol version mismatch" "$work/srv" ||
	fail "the server did not log the version mismatch"
[ "$grc" = 0 ] && [ "$src" = 0 ] ||
	fail "the server did not serve the next client (server $src, client $grc)"
echo "PASS: version mismatch refused, server carried on"
