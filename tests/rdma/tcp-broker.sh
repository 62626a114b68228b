#!/bin/bash
# verbusd over the TCP transport, on this machine's loopback (no RDMA
# device: label "tcp", run natively beside the unit tests): the verbus
# tool's pub and sub, a stream from a publisher to 4 subscribers, the
# broker's fan-out to TCP subscribers gathered from the publisher's ring
# (payload_copy_bytes stays 0), a clean SIGTERM.  (The library's cases run
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

broker_stop
echo "PASS: verbusd over tcp"
