#!/bin/bash
# Run in every guest of `rxe-run --vms 2`: guest 1 serves, guest 2 connects.
# Real separate kernels on a QEMU socket network: nothing is shared but the
# wire, so a pass proves the traffic crossed it.
set -u
. "$(dirname "$0")/lib.sh"
[ -n "${VERBUS_HOST:-}" ] || fail "run under tests/vm/rxe-run --vms 2"
need_hosts 2
srv=$VERBUS_HOST_1_ADDR port=7471
case $VERBUS_HOST in
1)
	"$VERBUS_BIN/vb_rdma_smoke" --server --bind "$srv" --port "$port" \
		--count 200 --size 4096 --timeout 120 &
	pid=$!
	"$(dirname "$0")/../vm/rxe-barrier" listening 120 || fail "barrier"
	wait "$pid" || fail "server failed"
	;;
2)
	"$(dirname "$0")/../vm/rxe-barrier" listening 120 || fail "barrier"
	"$VERBUS_BIN/vb_rdma_smoke" --client --connect "$srv" \
		--source "$VERBUS_HOST_2_ADDR" --port "$port" --count 200 \
		--size 4096 --timeout 120 || fail "client failed"
	;;
*)
	exit 0
	;;
esac
echo "PASS: smoke across guests (host $VERBUS_HOST)"
