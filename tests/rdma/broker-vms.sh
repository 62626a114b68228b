#!/bin/bash
# Run in every guest of `rxe-run --vms 3`: the broker in guest 1, a
# subscriber in guest 3, a publisher in guest 2 -- three kernels joined
# only by the QEMU socket network.  The subscriber verifies every message
# (order, bytes) and the broker must report nothing copied.
set -u
. "$(dirname "$0")/lib.sh"
[ -n "${VERBUS_HOST:-}" ] || fail "run under tests/vm/rxe-run --vms 3"
need_hosts 3
brk=$VERBUS_HOST_1_ADDR port=7700 mport=8222 N=2000
barrier() { "$(dirname "$0")/../vm/rxe-barrier" "$1" 180 || fail "barrier $1"; }
pubsub() {
	timeout 300 "$VERBUS_BIN/vb_pubsub" --connect "$brk" --port "$port" \
		--source "$(eval echo "\$VERBUS_HOST_${VERBUS_HOST}_ADDR")" "$@"
}
case $VERBUS_HOST in
1)
	"$VERBUS_BIN/verbusd" --listen "$brk:$port" \
		--monitor "127.0.0.1:$mport" &
	bpid=$!
	for _ in $(seq 100); do
		curl -sf "http://127.0.0.1:$mport/healthz" >/dev/null && break
		sleep 0.1
	done
	barrier up
	barrier subscribed
	barrier done
	m=$(curl -sf "http://127.0.0.1:$mport/metrics")
	echo "$m" | grep -E '^verbus_(messages_(in|out)|payload_copy_bytes|zero_copy_bytes)_total '
	kill -TERM "$bpid"
	wait "$bpid" || fail "verbusd exited $? on SIGTERM"
	echo "$m" | grep -qx "verbus_messages_out_total $N" || fail "broker did not deliver $N"
	echo "$m" | grep -qx "verbus_payload_copy_bytes_total 0" || fail "broker copied payload"
	;;
2)
	barrier up
	barrier subscribed
	pubsub --name pub --pub across.vms --count "$N" --size 256 || fail "publisher"
	barrier done
	;;
3)
	barrier up
	pubsub --name sub --sub across.vms --expect "$N" --ready-file /tmp/ready &
	spid=$!
	for _ in $(seq 600); do [ -e /tmp/ready ] && break; sleep 0.1; done
	barrier subscribed
	wait "$spid" || fail "subscriber"
	barrier done
	;;
esac
echo "PASS: broker across guests (host $VERBUS_HOST)"
