#!/bin/bash
# verbusd over the TCP transport, on this machine's loopback (no RDMA
# device: label "tcp", run natively beside the unit tests): the verbus
# tool's pub and sub, a stream from a publisher to 4 subscribers (and
# large messages, 1 MiB and 8 MiB, to 8), the
# broker's fan-out to TCP subscribers gathered from the publisher's ring
# (payload_copy_bytes stays 0), a host paused under a subscriber that is
# behind (no slow consumer for it), messages too large for a subscriber
# (it is told, with sizes, and takes the next), a clean SIGTERM.  (The library's cases run
# over TCP as tcp.libverbus and tcp.auth: libverbus.sh and auth.sh with
# VERBUS_SCHEME=tcp.)
set -u
. "$(dirname "$0")/lib.sh"
VERBUS_SCHEME=tcp broker_env
url="$scheme://$brk:$port"
broker_start

# A stream to 4 subscribers, every message verified (verbus bench fanout).
"$VERBUS_BIN/verbus" bench -s "$url" --sizes 64,4K --count 20000 --subs 4 \
	fanout >"$work/bench.out" 2>&1 ||
	{ cat "$work/bench.out"; show broker "$work/broker.log"; fail "verbus bench fanout over tcp failed"; }
cat "$work/bench.out"
# Large messages (streams of chunks) to 8 subscribers, every one verified;
# the broker gathers each chunk from the publisher's ring (copies nothing).
"$VERBUS_BIN/verbus" bench -s "$url" --sizes 1M,8M --count 20 --subs 8 \
	fanout >"$work/lbench.out" 2>&1 ||
	{ cat "$work/lbench.out"; show broker "$work/broker.log"; fail "verbus bench fanout of large messages over tcp failed"; }
cat "$work/lbench.out"

"$VERBUS_BIN/verbus" sub -s "$url" --count 3 'greet.>' >"$work/sub.out" 2>&1 &
spid=$!
wait_for subscribed "$work/sub.out" 30 || fail "verbus sub never subscribed"
for i in 1 2 3; do
	"$VERBUS_BIN/verbus" pub -s "$url" greet.world "hello $i" ||
		fail "verbus pub $i over tcp failed"
done
wait "$spid" || { cat "$work/sub.out"; fail "verbus sub exited $?"; }
[ "$(grep -c '^hello [123]$' "$work/sub.out")" = 3 ] ||
	{ cat "$work/sub.out"; fail "verbus sub did not get its 3 messages"; }
echo "PASS: verbus pub and sub over tcp"

metrics=$(curl -sf "http://127.0.0.1:$mport/metrics") || fail "no /metrics"
out=$(awk '$1 == "verbus_messages_out_total" { print $2 }' <<<"$metrics")
copied=$(awk '$1 == "verbus_payload_copy_bytes_total" { print $2 }' <<<"$metrics")
echo "broker: $out messages delivered, $copied payload bytes copied"
[ "${out:-0}" -gt 20000 ] || fail "the broker delivered only ${out:-0} messages"
[ "$copied" = 0 ] || fail "the broker copied $copied payload bytes to tcp subscribers"
echo "PASS: zero-copy fan-out to tcp subscribers"

# A paused host (a VM stopped, the machine swapping) is no slow consumer:
# broker and subscriber stopped together for 3 s while the subscriber is
# behind (it stalls 1 s at its first message, within the 2 s block
# timeout) must not have the broker judge the subscriber for the time
# neither ran, at its first tick back; the broker must see it was away.
broker_stop
broker_start --set slow_consumer.block_timeout_ms=2000
client() {
	local name=$1
	shift
	timeout 120 "$VERBUS_BIN/vb_pubsub" --scheme tcp --connect 127.0.0.1 \
		--port "$port" --source 127.0.0.1 --name "$name" "$@" >"$work/$name.out" 2>&1
}
spawn paused --sub 'pause.>' --pause-ms 1000 --expect 20000 --size 4096
client ppub --pub pause.x --count 20000 --size 4096 &
ppid=$!
sleep 0.3
kill -STOP "$bpid" "$pid_paused"
sleep 3
kill -CONT "$bpid" "$pid_paused"
wait "$ppid" || { show ppub "$work/ppub.out"; show broker "$work/broker.log"; fail "the publisher failed"; }
reap paused
[ "$(received paused)" = 20000 ] || fail "the paused subscriber got $(received paused) of 20000"
[ "$(metric verbus_slow_disconnects_total)" = 0 ] || fail "a subscriber was disconnected for the time the host was paused"
late=$(metric verbus_event_loop_late_total)
[ "${late:-0}" -ge 1 ] || fail "the broker did not notice it was away"
echo "PASS: a paused host is no slow consumer (the broker saw itself away $late time(s), $(metric verbus_event_loop_late_ms_total) ms)"

# A message larger than a subscriber takes is never dropped in silence:
# the broker takes 256 KiB, one subscriber 64 KiB (the default), another
# --max-msg 200K; two of 100 KiB and one small message published.
broker_stop
broker_start --set limits.max_msg=256K
"$VERBUS_BIN/verbus" sub -s "$url" --count 2 --timeout 5s big.x >"$work/small.out" 2>&1 &
p1=$!
"$VERBUS_BIN/verbus" sub -s "$url" --count 3 --raw --max-msg 200K big.x >"$work/large.out" 2>"$work/large.err" &
p2=$!
wait_for subscribed "$work/small.out" 30 && wait_for subscribed "$work/large.err" 30 ||
	fail "the big.x subscribers never subscribed"
"$VERBUS_BIN/verbus" pub -s "$url" big.x --size 100K --count 2 -q || fail "pub of 100 KiB failed"
"$VERBUS_BIN/verbus" pub -s "$url" big.x small -q || fail "pub small failed"
wait "$p2" || { cat "$work/large.err"; fail "the --max-msg 200K subscriber exited $?"; }
wait "$p1"
rc=$?
cat "$work/small.out"
[ "$rc" = 1 ] || fail "the 64 KiB subscriber exited $rc (expected 1: 1 of 2 messages)"
grep -q "^verbus: a message was too large for this subscriber: a message of 102405 bytes .* this connection takes 65536 at most" "$work/small.out" ||
	fail "the 64 KiB subscriber was not told why"
grep -q "^verbus: the broker dropped 2 messages in all for this subscriber (too large" "$work/small.out" ||
	fail "the 64 KiB subscriber was not told how many"
grep -qx small "$work/small.out" || fail "the small message after the large ones did not arrive"
[ "$(wc -c <"$work/large.out")" = $((2 * (102400 + 1) + 6)) ] || fail "the 200K subscriber got $(wc -c <"$work/large.out") bytes"
echo "PASS: messages too large for a subscriber: told why (once) and how many (2), the next one delivered; --max-msg 200K took both"

broker_stop
echo "PASS: verbusd over tcp"
