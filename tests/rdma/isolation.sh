#!/bin/bash
# Memory isolation between clients (issue 7): verbusd on host 1; a raw
# verbs client on host 2 (vb_rdma_smoke --rogue) writes past the end of
# its own ring and, through a second connection, into a third's ring with
# that one's address and rkey: both must fail with a remote access error;
# a fourth writes a corrupt frame and must be disconnected with the reason
# logged; the victim's connection must carry on, and the broker must keep serving
# others (a verbus pub/sub round afterwards) and shut down cleanly.
set -u
. "$(dirname "$0")/lib.sh"
broker_env
broker_start

timeout 120 "$VERBUS_BIN/vb_rdma_smoke" --client --rogue --connect "$brk" \
	--source "$a" --port "$port" >"$work/rogue.out" 2>&1
rc=$?
cat "$work/rogue.out"
[ "$rc" = 0 ] || { show broker "$work/broker.log"; fail "the rogue client's probes failed ($rc)"; }
grep -q 'has no type-2 memory windows' "$work/broker.log" && fail "the broker could not isolate clients"
# Both rogue connections (cid 2 and 3) died of the access error (their QPs
# went to error, their RECVs flushed: logged as what the peer did), the
# corrupt frame's (cid 4) of that,
# with the reason logged; the victim (cid 1) only when it left.
[ "$(grep -c 'cid [23] .* closed: peer touched memory outside its ring' "$work/broker.log")" = 2 ] &&
	grep -q 'corrupt frame in ring' "$work/broker.log" &&
	grep -q 'cid 4 .* closed: corrupt frame' "$work/broker.log" &&
	grep -q 'cid 1 .* closed: peer disconnected' "$work/broker.log" ||
	{ show broker "$work/broker.log"; fail "the broker did not close exactly the rogue connections"; }
echo "PASS: the broker closed the two rogue connections, not the victim's"

# The broker carries on for everyone else.
V=$VERBUS_BIN/verbus
"$V" sub -s "rdma://$brk:$port" --source "$b" --count 1 iso.check >"$work/sub.out" 2>"$work/sub.err" &
spid=$!
wait_for subscribed "$work/sub.err" 20 || { cat "$work/sub.err"; fail "subscriber never ready"; }
"$V" pub -s "rdma://$brk:$port" --source "$a" -q iso.check 'still here' || fail "publish after the rogue"
wait "$spid" || fail "subscriber exited $?"
grep -qx 'still here' "$work/sub.out" || { cat "$work/sub.out"; fail "message after the rogue not delivered"; }
echo "PASS: the broker serves other clients after the rogue"
broker_stop
echo "PASS: isolation"
