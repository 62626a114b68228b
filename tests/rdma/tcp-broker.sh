#!/bin/bash
# verbusd over the TCP transport, on this machine's loopback (no RDMA
# device: label "tcp", run natively beside the unit tests): the library's
# API, threads and posting cases (tests/rdma/libtest.c, as rxe.libverbus
# runs them over RDMA), the verbus tool's pub and sub, the broker's
# zero-copy fan-out to TCP subscribers (payload_copy_bytes stays 0), a clean
# SIGTERM.
set -u
. "$(dirname "$0")/lib.sh"
[ -n "${VERBUS_BIN:-}" ] || fail "VERBUS_BIN is not set (run through ctest)"
work=$(mktemp -d)
bpid=
trap '[ -n "$bpid" ] && kill -KILL "$bpid" 2>/dev/null; rm -rf "$work"' EXIT
port=$(free_port) mport=$(free_port)
url="tcp://127.0.0.1:$port"

"$VERBUS_BIN/verbusd" --listen "$url" --monitor "127.0.0.1:$mport" \
	>"$work/broker.log" 2>&1 &
bpid=$!
wait_for "listening on tcp://127.0.0.1:$port" "$work/broker.log" 30 ||
	{ show broker "$work/broker.log"; fail "verbusd never listened on $url"; }

for c in api threads posting; do
	timeout 300 "$VERBUS_BIN/vb_libtest" "$c" "$url" 127.0.0.1 127.0.0.1 \
		>"$work/$c.out" 2>&1
	rc=$?
	cat "$work/$c.out"
	[ "$rc" = 0 ] || { show broker "$work/broker.log"; fail "vb_libtest $c exited $rc over tcp"; }
done

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

kill -TERM "$bpid"
wait "$bpid"
rc=$?
bpid=
[ "$rc" = 0 ] || { show broker "$work/broker.log"; fail "verbusd exited $rc after SIGTERM"; }
echo "PASS: verbusd over tcp"
