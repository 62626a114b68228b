#!/bin/bash
# verbusd over the TCP transport, on this machine's loopback (no RDMA
# device: label "tcp", run natively beside the unit tests): the verbus
# tool's pub and sub, a stream from a publisher to 4 subscribers, the
# broker's fan-out to TCP subscribers gathered from the publisher's ring
# (payload_copy_bytes stays 0), a host paused under a subscriber that is
# behind (no slow consumer for it), a clean SIGTERM.  (The library's cases run
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

broker_stop
echo "PASS: verbusd over tcp"
