#!/bin/bash
# The data path through transport/ between two RDMA hosts: messages both
# ways with every byte, length and sequence number verified; a sweep of
# sizes up to the maximum with the ring wrapping; a slow receiver (the
# sender must see backpressure, nothing lost); one direction only;
# ping-pong (one message in flight) event-driven and busy-polling; a
# receiver killed with
# SIGKILL (the sender must get a clean error, not hang); the registration
# count constant throughout; traffic verified to cross the link.
set -u
. "$(dirname "$0")/lib.sh"
# VERBUS_SCHEME=tcp runs the same over the TCP transport, on this
# machine's loopback (pair_env): ctest's tcp.data_path; VERBUS_SCHEME=tls
# through TLS: tls.data_path.
pair_env
dev=$(netdev_of "$cli")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tls=()
if [ "$scheme" = tls ]; then
	tls_files "$work/tls"
	tls=(--tls-cert "$work/tls/srv.pem" --tls-key "$work/tls/srv.key")
	export SSL_CERT_FILE=$work/tls/ca.pem # the client's trust
fi
N=${VERBUS_DP_COUNT:-1000000}

# run NAME SERVER_ARGS -- CLIENT_ARGS: one server/client pair, both must pass.
run() {
	local name=$1 port sa=()
	shift
	while [ "$1" != -- ]; do sa+=("$1"); shift; done
	shift
	port=$(free_port)
	run_pair "$name" 30 timeout 600 "$VERBUS_BIN/vb_dp_stream" --server \
		--scheme "$scheme" "${tls[@]}" --bind "$srv" --port "$port" "${sa[@]}" -- \
		timeout 600 "$VERBUS_BIN/vb_dp_stream" --client --scheme "$scheme" \
		--connect "$srv" --source "$cli" --port "$port" "$@" ||
		fail "$name: server rc=$pair_src client rc=$pair_crc"
}

before=$(tx_bytes "$dev")
run "small messages, both ways" --count "$N" --max-payload 256 -- \
	--count "$N" --max-payload 256
sent=$(($(tx_bytes "$dev") - before))
echo "$dev sent $sent bytes"
[ "$sent" -ge $((N * 100)) ] || fail "the traffic did not cross the link"

run "size sweep to 60000 B, 64 KiB ring wrapping" --count 3000 --sweep \
	--max-payload 30000 --ring 65536 -- --count 3000 --sweep \
	--max-payload 30000 --ring 65536

run "slow receiver" --count 20000 --hold 64 --hold-ms 20 -- --count 20000
grep -qE 'backpressure waits, ' "$work/cli" || fail "no stats"
waits=$(sed -nE 's/.* ([0-9]+) backpressure waits.*/\1/p' "$work/cli")
[ "${waits:-0}" -gt 0 ] || fail "the sender never saw backpressure"

run "one direction only" --one-way --count 200000 -- --one-way \
	--count 200000

run "ping-pong, busy-poll" --pingpong --busy-poll --count 2000 -- \
	--pingpong --busy-poll --count 2000
grep -q "one-way latency" "$work/cli" || fail "no latency reported"

run "ping-pong, event-driven" --pingpong --count 2000 -- --pingpong \
	--count 2000

# A receiver killed mid-stream: the sender must stop with a clean error.
port=$(free_port)
: >"$work/srv" # not the last pair's "server listening" (run_pair says why)
"$VERBUS_BIN/vb_dp_stream" --server --scheme "$scheme" "${tls[@]}" --bind "$srv" \
	--port "$port" --count 100000000 >"$work/srv" 2>&1 &
spid=$!
wait_for "server listening" "$work/srv" 30
timeout 120 "$VERBUS_BIN/vb_dp_stream" --client --scheme "$scheme" \
	--connect "$srv" --source "$cli" --port "$port" --count 100000000 >"$work/cli" 2>&1 &
cpid=$!
sleep 3
kill -KILL "$spid"
wait "$cpid"
crc=$?
show "killed receiver: client" "$work/cli"
[ "$crc" = 4 ] || fail "after the peer was killed the client exited $crc, expected 4"
grep -q "connection closed" "$work/cli" || fail "no clean close reported"
echo "PASS: data path ($scheme)"
