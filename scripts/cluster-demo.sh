#!/bin/bash
# cluster-demo.sh - the body of scripts/cluster.sh, run where the RDMA hosts
# are (VERBUS_HOST_K_ADDR from tests/vm/rxe-run) or, with VERBUS_SCHEME=tcp,
# on 127.0.0.1: ZooKeeper (tests/rdma/zk.sh), brokers a, b and c, a
# message published on a and received on c, a request on a answered on b,
# and what /routez says.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/tests/rdma/zk.sh"
BIN=${VERBUS_BIN:-$ROOT/build/bin}
scheme=${VERBUS_SCHEME:-rdma}
if [ "$scheme" = rdma ]; then
	H=("${VERBUS_HOST_1_ADDR:?run through scripts/cluster.sh}" "$VERBUS_HOST_2_ADDR" "$VERBUS_HOST_3_ADDR")
else
	H=(127.0.0.1 127.0.0.1 127.0.0.1)
fi
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; zk_stop; rm -rf "$work"' EXIT
zk_start
echo "== ZooKeeper on $ZK_CONNECT"
export VERBUSD_CLUSTER_SECRET=demo-$RANDOM$RANDOM
ids=(a b c)
for k in 0 1 2; do
	"$BIN/verbusd" --listen "$scheme://${H[k]}:$((7700 + k))" \
		--monitor "127.0.0.1:$((8222 + k))" \
		--cluster "zk://$ZK_CONNECT/verbus/demo" --cluster-id "${ids[k]}" \
		--cluster-listen "$scheme://${H[k]}:$((7710 + k))" >"$work/${ids[k]}.log" 2>&1 &
	pids+=($!)
	echo "== broker ${ids[k]}: clients $scheme://${H[k]}:$((7700 + k)), routes :$((7710 + k))"
done
for _ in $(seq 300); do
	n=$(curl -sf http://127.0.0.1:8222/routez | grep -o '"state": *"open"' | wc -l || true)
	[ "$n" = 2 ] && break
	sleep 0.1
done
echo "== broker a as verbus stat sees it (/varz and /routez):"
"$BIN/verbus" stat -m http://127.0.0.1:8222 --routes | grep -E "^broker|^cluster|^routes|^peer|^[bc] "
c_url="$scheme://${H[2]}:7702" a_url="$scheme://${H[0]}:7700" b_url="$scheme://${H[1]}:7701"
"$BIN/verbus" sub -s "$c_url" --count 3 'orders.>' >"$work/sub.out" 2>&1 &
spid=$!
"$BIN/verbus" reply -s "$b_url" --count 1 svc.time 'it is time' >"$work/rep.out" 2>&1 &
pids+=($!)
sleep 1 # the subscriptions reach the other brokers over the routes
for i in 1 2 3; do "$BIN/verbus" pub -s "$a_url" orders.new "order $i (published on a)"; done
wait "$spid"
echo "== the subscriber on c got:"
cat "$work/sub.out"
echo "== a request on a, answered on b:"
"$BIN/verbus" req -s "$a_url" svc.time 'what time is it?'
echo "== done: stopping the brokers and ZooKeeper"
