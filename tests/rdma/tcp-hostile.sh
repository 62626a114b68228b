#!/bin/bash
# Hostile peers of verbusd's TCP transport (tests/rdma/tcp_hostile.c), on
# this machine's loopback (label "tcp"), while a paced numbered stream
# flows between two honest clients (vb_pubsub over tcp): garbage instead of
# the version record, another version, a record of an unknown kind, a
# control record announcing 1 MB, data before the Hello, a Hello that never
# comes and half a record header (both closed by the handshake deadline),
# 5,000 empty Credit messages sent ignoring credits, a DATA record longer than the ring, a
# DATA record of garbage frames, messages with headers whose header block
# is malformed or longer than the message, 20 silent connections from one address
# (the per-address cap refuses the rest with its reason; the deadline
# closes those accepted), and a subscriber that stops reading (a slow
# consumer, disconnected within block_timeout_ms).  Each is closed with its
# reason in the log; the stream arrives complete and in order; the broker's
# connections come back to zero; SIGTERM is clean.
set -u
. "$(dirname "$0")/lib.sh"
pids=()
VERBUS_SCHEME=tcp broker_env 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done'
H=$VERBUS_BIN/vb_tcp_hostile
N=${VERBUS_TCP_STREAM:-20000}
broker_start --set limits.max_conns=24 --set limits.handshake_timeout_ms=1000 \
	--set limits.max_handshakes_per_addr=8 \
	--set slow_consumer.block_timeout_ms=1000

# The honest stream: a subscriber, then a paced publisher (about 10 s).
pubsub() {
	local name=$1
	shift
	timeout 300 "$VERBUS_BIN/vb_pubsub" --scheme tcp --connect 127.0.0.1 \
		--port "$port" --source 127.0.0.1 --name "$name" "$@" \
		>"$work/$name.out" 2>&1
}
pubsub legit-sub --sub legit.stream --expect "$N" &
spid=$!
pids+=("$spid")
wait_for ready "$work/legit-sub.out" 30 || fail "the stream's subscriber never became ready"
pubsub legit-pub --pub legit.stream --count "$N" --size 256 --interval-us 500 &
ppid=$!
pids+=("$ppid")
sleep 0.5

# attack MODE PATTERN [ARGS...]: one attack that the broker must close, and
# the reason it must log.
attack() {
	local mode=$1 pattern=$2
	shift 2
	"$H" 127.0.0.1 "$port" "$mode" "$@" >"$work/$mode.out" 2>&1 ||
		{ cat "$work/$mode.out"; show broker "$work/broker.log"; fail "$mode: not closed"; }
	wait_for "$pattern" "$work/broker.log" 10 ||
		{ show broker "$work/broker.log"; fail "$mode: no log line matching '$pattern'"; }
	echo "PASS: $mode: $(cat "$work/$mode.out"), logged '$pattern'"
}
attack garbage "not a verbus client"
attack version "another version"
attack kind "unknown record kind 7"
attack bigctrl "control record of 1000000 bytes"
attack early "data before the handshake"
attack nohello "handshake timeout: no hello"
attack truncated "handshake timeout"
attack flood "more records than it had credit for"
attack lie "had no room for"
attack corrupt "corrupt frame"
attack badhdr "malformed header block .not NATS/1.0 headers.; closed"
attack badhlen "malformed header block .its length is past the message.s end.; closed"
attack hshort "malformed header block .its length is past the message.s end.; closed"
attack chunk0 "a large message's chunk with no first chunk before it; closed"
attack chunkjump "a large message's chunk that does not follow the one before .tag, total or offset.; closed"
attack chunkbig "a large message above limits.max_payload; closed"
attack chunkbad "a malformed chunk .core/chunk.h.; closed"
attack chunkhdr "its header block is not all in its first chunk; closed"
[ "$(grep -c "its length is past the message's end" "$work/broker.log")" = 2 ] ||
	{ show broker "$work/broker.log"; fail "badhlen and hshort: not both closed for their header block"; }

to_before=$(metric verbus_handshake_timeouts_total)
"$H" 127.0.0.1 "$port" silent 20 3 >"$work/silent.out" 2>&1 || fail "silent attack failed"
cat "$work/silent.out"
refused=$(sed -nE 's/.* ([0-9]+) refused address.*/\1/p' "$work/silent.out")
closed=$(sed -nE 's/.* ([0-9]+) closed,.*/\1/p' "$work/silent.out")
still=$(sed -nE 's/.* ([0-9]+) open at the end.*/\1/p' "$work/silent.out")
[ "${refused:-0}" -ge 12 ] || fail "silent: only ${refused:-0} of 20 refused by the per-address cap of 8"
[ "${still:-1}" = 0 ] || fail "silent: $still connections still open after 3 s (deadline 1 s)"
[ $(($(metric verbus_handshake_timeouts_total) - to_before)) -ge "$closed" ] ||
	fail "silent: $closed closed, not all counted as handshake timeouts"
echo "PASS: silent: $refused refused (reason: address), $closed closed by the deadline"

"$H" 127.0.0.1 "$port" stall legit.stream 5 >"$work/stall.out" 2>&1 &
stpid=$!
pids+=("$stpid")
wait_for "tcp-hostile: slow consumer" "$work/broker.log" 10 ||
	{ show broker "$work/broker.log"; cat "$work/stall.out"; fail "stall: never counted a slow consumer"; }
echo "PASS: stall: $(grep -m1 'tcp-hostile: slow consumer' "$work/broker.log")"

wait "$ppid" || { cat "$work/legit-pub.out"; show broker "$work/broker.log"; fail "the stream's publisher failed"; }
wait "$spid" || { cat "$work/legit-sub.out"; show broker "$work/broker.log"; fail "the stream's subscriber failed"; }
grep -q "received $N messages" "$work/legit-sub.out" ||
	{ cat "$work/legit-sub.out"; fail "the stream did not arrive whole"; }
echo "PASS: the stream: $N messages in order beside the attacks"
wait "$stpid"
# After the stream (its 4 s would outlast it): a large message cut short;
# its subscriber drops what it had (an ABORT from the broker), then takes
# the next one whole.
"$VERBUS_BIN/vb_liblarge" --aborted "tcp://127.0.0.1:$port" 127.0.0.1 \
	hostile.chunk 30 >"$work/aborted.out" 2>&1 &
apid=$!
pids+=("$apid")
wait_for ready "$work/aborted.out" 10 || { cat "$work/aborted.out"; fail "vb_liblarge --aborted never ready"; }
attack chunkstall "a large message stalled at 2048 of 1048576 bytes: no chunk for 4000 ms; closed"
"$VERBUS_BIN/verbus" pub -s "tcp://127.0.0.1:$port" --size 1M hostile.chunk ||
	fail "verbus pub --size 1M failed"
wait "$apid" || { cat "$work/aborted.out"; show broker "$work/broker.log"; fail "the subscriber of a large message cut short"; }
cat "$work/aborted.out"
[ "$(metric verbus_large_aborted_total)" -ge 1 ] || fail "verbus_large_aborted_total did not count it"
pids=()
for _ in $(seq 50); do
	[ "$(metric verbus_connections)" = 0 ] && break
	sleep 0.1
done
[ "$(metric verbus_connections)" = 0 ] || fail "connections left: $(metric verbus_connections)"
broker_stop
echo "PASS: tcp hostile peers"
