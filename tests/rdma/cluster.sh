#!/bin/bash
# cluster.sh - verbusd brokers as one cluster: membership in a real
# ZooKeeper (tests/rdma/zk.sh starts one), routes between the brokers over
# the transport under test, interest propagation, queue groups and
# request/reply across brokers, a fourth broker joining, a broker killed,
# ZooKeeper away and back, refused routes, and route churn without leaks
# (issue 15; docs/TESTING.md, "The cluster").
#
# VERBUS_SCHEME=rdma (the default, label rxe): broker K on RDMA host K of
# the guest (tests/vm/rxe-run --hosts 3; the fourth broker shares host 1),
# clients beside their broker.  VERBUS_SCHEME=tcp (label tcp): every broker
# on this machine's loopback.  VERBUS_CLUSTER_MSGS messages per stream
# (100000 over tcp, 20000 over rxe under TCG by default).
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/zk.sh"

scheme=${VERBUS_SCHEME:-rdma}
if [ "$scheme" = rdma ]; then
	need_hosts 3
	H=(- "$VERBUS_HOST_1_ADDR" "$VERBUS_HOST_2_ADDR" "$VERBUS_HOST_3_ADDR" "$VERBUS_HOST_1_ADDR" "$VERBUS_HOST_2_ADDR")
	M=${VERBUS_CLUSTER_MSGS:-20000}
else
	[ -n "${VERBUS_BIN:-}" ] || fail "VERBUS_BIN is not set (run through ctest)"
	H=(- 127.0.0.1 127.0.0.1 127.0.0.1 127.0.0.1 127.0.0.1)
	M=${VERBUS_CLUSTER_MSGS:-100000}
fi
work=$(mktemp -d)
declare -A bpid
cleanup() {
	local k
	for k in "${!bpid[@]}"; do
		[ -n "${bpid[$k]}" ] && kill -9 "${bpid[$k]}" 2>/dev/null
	done
	jobs -p | xargs -r kill -9 2>/dev/null
	wait 2>/dev/null
	zk_stop
	rm -rf "$work"
}
trap cleanup EXIT
export VERBUSD_CLUSTER_SECRET=cluster-test-secret-$RANDOM$RANDOM
zkpath=/verbus/cluster-test-$$-$RANDOM
base=$(free_port)
# Broker K: clients on P[K], routes on R[K], monitor on MP[K].
declare -a P R MP
for k in 1 2 3 4 5; do
	P[k]=$((base + k)) R[k]=$((base + 10 + k)) MP[k]=$((base + 20 + k))
done

# member_start K [ARGS...]: broker bK, waited until it listens.
member_start() {
	local k=$1
	shift
	"$VERBUS_BIN/verbusd" --listen "$scheme://${H[k]}:${P[k]}" \
		--monitor "127.0.0.1:${MP[k]}" --cluster "zk://$ZK_CONNECT$zkpath" \
		--cluster-id "b$k" --cluster-listen "$scheme://${H[k]}:${R[k]}" \
		"$@" >>"$work/b$k.log" 2>&1 &
	bpid[$k]=$!
	wait_for "listening on" "$work/b$k.log" 30 ||
		{ show "b$k" "$work/b$k.log"; fail "broker b$k did not come up"; }
}

# mval K NAME: metric NAME of broker K (its first sample).
mval() {
	curl -sf "http://127.0.0.1:${MP[$1]}/metrics" |
		awk -v n="$2" '$1 == n { print $2; exit }'
}

# wait_metric K NAME OP VALUE [SECONDS]: until broker K's metric compares.
wait_metric() {
	local i v
	for ((i = 0; i < ${5:-30} * 10; i++)); do
		v=$(mval "$1" "$2")
		[ -n "$v" ] && [ "${v%.*}" "$3" "$4" ] && return 0
		sleep 0.1
	done
	echo "broker b$1: $2 is ${v:-missing}, wanted $3 $4" >&2
	return 1
}

# wait_mesh K...: each of the brokers K has a route to each other one.
wait_mesh() {
	local k n=$#
	for k in "$@"; do
		wait_metric "$k" verbus_cluster_routes -eq $((n - 1)) 30 ||
			{ show "b$k" "$work/b$k.log"; fail "b$k has no full mesh"; }
	done
}

# client K NAME ARGS...: vb_pubsub against broker K, output in $work/NAME.out.
client() {
	local k=$1 name=$2
	shift 2
	timeout 300 "$VERBUS_BIN/vb_pubsub" --scheme "$scheme" --connect "${H[k]}" \
		--port "${P[k]}" --source "${H[k]}" --name "$name" "$@" \
		>"$work/$name.out" 2>&1
}

# sub_at K NAME ARGS...: a subscriber in the background, waited ready.
sub_at() {
	local k=$1 name=$2
	shift 2
	: >"$work/$name.out"
	client "$k" "$name" --sub "$@" &
	eval "pid_$name=$!"
	wait_for ready "$work/$name.out" 30 ||
		{ show "$name" "$work/$name.out"; fail "$name never became ready"; }
}

# interest K N: broker K knows at least N interest entries of its peers.
interest() {
	wait_metric "$1" verbus_cluster_interest_remote -ge "$2" 30 ||
		fail "interest did not reach b$1"
}

t0=$(date +%s%N)
zk_start || fail "ZooKeeper did not start"
echo "ZooKeeper at $ZK_CONNECT serving after $((($(date +%s%N) - t0) / 1000000)) ms;" \
	"cluster path $zkpath, $scheme, $M messages"

echo "===== three brokers, full mesh"
for k in 1 2 3; do member_start "$k"; done
wait_mesh 1 2 3
for k in 1 2 3; do
	[ "$(mval "$k" verbus_cluster_members)" = 3 ] || fail "b$k does not list 3 members"
done
echo "PASS: 3 members, one route between each pair"

echo "===== 1. a wildcard subscriber on b3 and one on b1 get every message from b1"
sub_at 3 far 'orders.>' --expect "$M"
sub_at 1 near 'orders.>' --expect "$M"
interest 1 1
client 1 pub1 --pub orders.eu.paris --count "$M" --size 64 ||
	{ show pub1 "$work/pub1.out"; fail "publisher on b1 failed"; }
reap far
reap near
for s in far near; do [ "$(received $s)" = "$M" ] || fail "$s received $(received $s), not $M"; done
c1=$(mval 1 verbus_payload_copy_bytes_total) c3=$(mval 3 verbus_payload_copy_bytes_total)
echo "payload bytes copied: b1 $c1, b3 $c3"
[ "$scheme" != rdma ] || [ "$c1$c3" = 00 ] || fail "a broker copied payload bytes (b1 $c1, b3 $c3)"
echo "PASS: $M messages across brokers, in order, none twice"

echo "===== 2. a queue group with members on every broker"
for k in 1 2 3; do sub_at "$k" "q$k" 'jobs.>' --queue workers --idle-ms 3000; done
interest 1 2
interest 2 2
interest 3 2
for k in 1 2 3; do
	client "$k" "qpub$k" --pub "jobs.k$k" --count 1000 --pub-id "$k" ||
		fail "publisher on b$k failed"
done
total=0
for k in 1 2 3; do
	reap "q$k"
	n=$(received "q$k")
	echo "q$k (b$k) received ${n:-0}"
	[ "${n:-0}" -gt 0 ] || fail "queue member q$k got nothing"
	total=$((total + n))
done
[ "$total" = 3000 ] || fail "the group received $total, not exactly 3000"
echo "PASS: each message to exactly one member cluster-wide (a local member first)"
# Members on b2 and b3 only, the publisher on b1: across the routes.
for k in 2 3; do sub_at "$k" "r$k" 'jobs.>' --queue remote --idle-ms 3000; done
wait_metric 1 verbus_cluster_interest_remote -eq 2 30 || fail "queue interest did not reach b1"
client 1 rpub --pub jobs.x --count 2000 || fail "publisher on b1 failed"
total=0
for k in 2 3; do
	reap "r$k"
	n=$(received "r$k")
	echo "r$k (b$k) received ${n:-0}"
	[ "${n:-0}" -gt 0 ] || fail "remote queue member r$k got nothing"
	total=$((total + n))
done
[ "$total" = 2000 ] || fail "the remote group received $total, not exactly 2000"
echo "PASS: a group with no local member, each message to one remote member"

echo "===== 3. request/reply, the responder on another broker"
: >"$work/rep.out"
client 3 rep --rep svc.echo --count 200 &
pid_rep=$!
wait_for ready "$work/rep.out" 30 || fail "responder never ready"
interest 1 1
client 1 req --req svc.echo --count 200 || { show req "$work/req.out"; fail "requests across brokers failed"; }
reap rep
echo "PASS: 200 requests on b1 answered from b3"

echo "===== 3b. large messages across brokers (streams of chunks over routes)"
# verbus bench from b1, its subscribers on b3 (every message's sequence
# number and size checked), 1 MiB and 8 MiB, one subscriber and two; then
# a queue group with a member on b2 and one on b3: each large message to
# exactly one of them, whole.
url() { echo "$scheme://${H[$1]}:${P[$1]}"; }
LN=${VERBUS_CLUSTER_LARGE:-10}
lc1=$(mval 1 verbus_payload_copy_bytes_total) lc3=$(mval 3 verbus_payload_copy_bytes_total)
timeout 300 "$VERBUS_BIN/verbus" bench -s "$(url 1)" --sub-server "$(url 3)" \
	--pub-source "${H[1]}" --sub-source "${H[3]}" --sizes 1M,8M \
	--count "$LN" --subs 2 throughput fanout >"$work/lbench.out" 2>&1 ||
	{ show lbench "$work/lbench.out"; fail "verbus bench of large messages across brokers failed"; }
cat "$work/lbench.out"
lc1=$(($(mval 1 verbus_payload_copy_bytes_total) - lc1))
lc3=$(($(mval 3 verbus_payload_copy_bytes_total) - lc3))
echo "payload bytes copied by the brokers meanwhile: b1 $lc1, b3 $lc3"
[ "$scheme" != rdma ] || [ "$lc1$lc3" = 00 ] || fail "a broker copied large messages' bytes (b1 $lc1, b3 $lc3)"
for k in 2 3; do
	"$VERBUS_BIN/verbus" sub -s "$(url $k)" --source "${H[$k]}" -q big \
		--raw --timeout 30000 'big.>' >"$work/lq$k.out" 2>"$work/lq$k.err" &
	eval "pid_lq$k=$!"
	wait_for subscribed "$work/lq$k.err" 30 || fail "lq$k never subscribed"
done
interest 1 2
"$VERBUS_BIN/verbus" pub -s "$(url 1)" --source "${H[1]}" --size 2M \
	--count 20 big.jobs >"$work/lpub.out" 2>&1 ||
	{ show lpub "$work/lpub.out"; fail "verbus pub --size 2M on b1 failed"; }
ltotal=0
for k in 2 3; do
	# --raw: each message's bytes, then a newline; 20 of 2 MiB in all.
	for _ in $(seq 100); do
		[ $((ltotal + $(stat -c %s "$work/lq$k.out"))) -ge $((20 * (2097152 + 1))) ] && break
		sleep 0.1
	done
	ltotal=$((ltotal + $(stat -c %s "$work/lq$k.out")))
done
kill "$pid_lq2" "$pid_lq3" 2>/dev/null
wait "$pid_lq2" "$pid_lq3" 2>/dev/null
echo "queue group: b2's member $(stat -c %s "$work/lq2.out") bytes, b3's $(stat -c %s "$work/lq3.out")"
[ "$ltotal" = $((20 * (2097152 + 1))) ] ||
	fail "the queue group got $ltotal bytes, not 20 messages of 2 MiB exactly once"
echo "PASS: large messages across brokers: 1 MiB and 8 MiB to 1 and 2 subscribers, in order; a queue group took each 2 MiB message once"

echo "===== 4. a fourth broker joins while traffic flows"
sub_at 1 flow 'live.>' --idle-ms 4000
client 2 flowpub --pub live.feed --count "$M" --interval-us 50 &
fpid=$!
member_start 4
wait_mesh 1 2 3 4
sub_at 4 late 'live.>' --idle-ms 4000 --late
interest 2 2
wait "$fpid" || fail "the publisher on b2 failed while b4 joined"
client 2 flowpub2 --pub live.feed --count 1000 --pub-id 2 || fail "publisher on b2 failed"
reap flow
reap late
[ "$(received flow)" = $((M + 1000)) ] || fail "b1's subscriber got $(received flow) of $((M + 1000))"
n=$(sed -nE 's/.*id=2:([0-9]+).*/\1/p' "$work/late.out")
[ "${n:-0}" = 1000 ] || fail "b4's subscriber got ${n:-0} of the 1000 published after it joined"
echo "PASS: b4 in a full mesh, its subscriber served, nothing lost meanwhile"
# Nobody subscribes any more: nothing crosses a route.
for k in 1 2 3 4; do wait_metric "$k" verbus_cluster_interest_remote -eq 0 30 || fail "interest still held at b$k"; done
out='verbus_route_messages_total{direction="out"}'
before=$(mval 1 "$out")
client 1 nopub --pub orders.none --count 1000 || fail "publisher failed"
after=$(mval 1 "$out")
[ "$before" = "$after" ] || fail "b1 forwarded $((after - before)) messages with no interest anywhere"
echo "PASS: no interest, no forwards over routes"

echo "===== 7. refused routes: a client on a route port, a wrong secret, another cluster"
"$VERBUS_BIN/vb_pubsub" --scheme "$scheme" --connect "${H[1]}" --port "${R[1]}" \
	--source "${H[1]}" --name intruder --pub x.y --count 1 >"$work/intruder.out" 2>&1 &&
	fail "a client was admitted on the route port"
wait_for "refusing a route from .*client Hello on the route port" "$work/b1.log" 10 ||
	fail "b1 did not log the client on its route port"
# A member with a wrong secret (id b5: the others open its routes).
VERBUSD_CLUSTER_SECRET=wrong member_start 5
wait_for "refusing a route from .*wrong cluster secret" "$work/b5.log" 20 ||
	{ show b5 "$work/b5.log"; fail "a wrong secret was not refused"; }
# A broker of another cluster registered under our path (id a0: it opens
# the routes, and every member refuses them).
"$VERBUS_BIN/verbusd" --listen "$scheme://${H[1]}:$((base + 30))" --monitor 127.0.0.1:0 \
	--cluster "zk://$ZK_CONNECT$zkpath" --cluster-name other --cluster-id a0 \
	--cluster-listen "$scheme://${H[1]}:$((base + 31))" >"$work/a0.log" 2>&1 &
bpid[a0]=$!
wait_for "refusing a route from .*another cluster \('other', not ours\)" "$work/b1.log" 20 ||
	{ show a0 "$work/a0.log"; fail "b1 did not refuse a broker of another cluster"; }
for k in 5 a0; do kill -TERM "${bpid[$k]}"; wait "${bpid[$k]}" 2>/dev/null; bpid[$k]=; done
wait_mesh 1 2 3 4
echo "PASS: a client on a route port, a wrong secret, another cluster: refused and logged"
if [ "$scheme" = tcp ]; then
	# A broker with the secret that then sends bad input (vb_tcp_hostile
	# speaks TCP): that route dropped with the reason, nothing else.
	for what in badsub dupid unsub subscribe dropped dropsubj; do
		"$VERBUS_BIN/vb_tcp_hostile" 127.0.0.1 "${R[1]}" route verbus \
			"$VERBUSD_CLUSTER_SECRET" "a-$what" "$what" >"$work/hr.out" 2>&1 ||
			{ cat "$work/hr.out"; show b1 "$work/b1.log"; fail "b1 kept a route that sent $what"; }
	done
	for why in "invalid subject pattern" "interest id declared twice" \
		"it withdrew interest it never declared" "a client's Subscribe" \
		"a Dropped with no count or an invalid subject"; do
		grep -q "route cid .* to a-.*dropped: $why" "$work/b1.log" ||
			{ grep -E "a-|dropped" "$work/b1.log"; fail "b1 did not log a route dropped for: $why"; }
	done
	wait_mesh 1 2 3 4
	echo "PASS: a route that sends bad input is dropped with the reason; the mesh stays"
fi

echo "===== 5. kill -9 of a broker"
member_kill() { kill -9 "${bpid[$1]}"; wait "${bpid[$1]}" 2>/dev/null; bpid[$1]=; }
# A client that was given b4 alone: it learns the members (Info) and,
# when b4 dies, is on another member and receiving within 2 s, while a
# publisher on b2 sends a tick every 50 ms.
"$VERBUS_BIN/verbus" sub -s "$scheme://${H[4]}:${P[4]}" 'fail.>' >"$work/fsub.out" 2>&1 &
fsub=$!
wait_for "subscribed" "$work/fsub.out" 30 || fail "the subscriber on b4 never subscribed"
(
	i=0
	while :; do
		i=$((i + 1))
		"$VERBUS_BIN/verbus" pub -s "$scheme://${H[2]}:${P[2]}" fail.over "tick $i" >/dev/null 2>&1
		sleep 0.05
	done
) &
ticker=$!
wait_for "^tick" "$work/fsub.out" 30 || { show fsub "$work/fsub.out"; fail "no tick reached b4's subscriber"; }
t0=$(date +%s%N)
member_kill 4
for ((i = 0; i < 100; i++)); do
	awk '/reconnected/ { r = 1 } r && /^tick/ { f = 1 } END { exit !f }' "$work/fsub.out" && break
	sleep 0.02
done
ms=$((($(date +%s%N) - t0) / 1000000))
kill "$ticker"; wait "$ticker" 2>/dev/null
kill "$fsub"; wait "$fsub" 2>/dev/null
awk '/reconnected/ { r = 1 } r && /^tick/ { f = 1 } END { exit !f }' "$work/fsub.out" ||
	{ show fsub "$work/fsub.out"; fail "b4's subscriber receives nothing after b4 died"; }
echo "b4's subscriber: $(grep -o 'reconnected.*' "$work/fsub.out" | head -1), receiving again $ms ms after the kill"
[ "$ms" -lt 2000 ] || fail "b4's subscriber took $ms ms to receive again (more than 2 s)"
wait_mesh 1 2 3
for k in 1 2 3; do
	wait_metric "$k" verbus_cluster_members -eq 3 10 || fail "b4 still a member at b$k"
done
echo "PASS: b4 gone from ZooKeeper and from every broker's routes; its client failed over"

echo "===== 6. ZooKeeper away for 10 s"
sub_at 3 zsub 'zk.>' --expect "$M"
interest 1 1
client 1 zpub --pub zk.during --count "$M" --interval-us 100 &
zpid=$!
zk_restart 10 || fail "ZooKeeper did not come back"
wait "$zpid" || fail "the publisher failed while ZooKeeper was away"
reap zsub
[ "$(received zsub)" = "$M" ] || fail "zsub got $(received zsub) of $M while ZooKeeper was away"
for k in 1 2 3; do
	wait_metric "$k" verbus_cluster_registered -eq 1 30 || fail "b$k did not register again"
	wait_metric "$k" verbus_cluster_members -eq 3 30 || fail "b$k lists no 3 members again"
done
wait_mesh 1 2 3
echo "PASS: no message lost while ZooKeeper was away, membership restored"

echo "===== 8. route connect/disconnect cycles leak nothing"
# b3 leaves (SIGTERM: its node goes at once) and comes back, $cycles times.
cycles=${VERBUS_CLUSTER_CYCLES:-200}
[ "$scheme" = rdma ] && cycles=${VERBUS_CLUSTER_CYCLES:-40}
mem0=$(mval 1 verbus_registered_memory_bytes)
# nfd: broker 1's open fds. A count taken right after a cycle can hold a
# socket still closing (a duplicate route attempt lost to the other side's,
# the monitor's last HTTP answer), so the check waits up to 10 s for the
# count to come back down: a leak, one fd or more per cycle, never does.
nfd() { ls /proc/"${bpid[1]}"/fd | wc -l; }
fd0=$(nfd)
for ((i = 1; i <= cycles; i++)); do
	kill -TERM "${bpid[3]}"
	wait "${bpid[3]}" || fail "b3 exited $? on SIGTERM"
	member_start 3
	wait_metric 1 verbus_cluster_routes -eq 2 30 >/dev/null ||
		{ show b3 "$work/b3.log"; fail "cycle $i: no route b1-b3"; }
	[ $((i % 20)) = 0 ] && echo "$i cycles"
done
wait_mesh 1 2 3
mem=$(mval 1 verbus_registered_memory_bytes)
for ((i = 0; i < 100; i++)); do
	fd=$(nfd)
	[ "$fd" -le "$fd0" ] && break
	sleep 0.1
done
opened=$(mval 1 verbus_routes_opened_total)
echo "b1: registered memory $mem0 -> $mem bytes, fds $fd0 -> $fd, routes opened $opened"
[ "$mem" = "$mem0" ] || fail "b1's registered memory grew from $mem0 to $mem over $cycles route cycles"
[ "$fd" -le "$fd0" ] || { ls -l /proc/"${bpid[1]}"/fd; fail "b1's fds grew from $fd0 to $fd over $cycles route cycles (10 s after the last)"; }
echo "PASS: $cycles route cycles, no registered memory or fd kept"

echo "===== 9. a route held back: shed, not closed; the subscribers behind it told"
# b2 holds its route from b1 back for a subscriber of its own that stalls
# for 3 s (b2's block timeout is long); b1 judges the stalled route after 4 x 250 ms,
# sheds it rather than closing it, and reports what it lost, by subject, to
# b2, which tells its subscribers: each gets every message or a Dropped
# for it, and the route stays open.
for k in 1 2; do
	kill -TERM "${bpid[$k]}"
	wait "${bpid[$k]}" || { show "b$k" "$work/b$k.log"; fail "b$k exited $? on SIGTERM"; }
done
member_start 1 --set slow_consumer.block_timeout_ms=250
member_start 2 --set slow_consumer.block_timeout_ms=60000
wait_mesh 1 2 3
L=${VERBUS_CLUSTER_LOSSY:-20000}
sub_at 2 lossy 'lossy.>' --pause-ms 3000 --idle-ms 5000 --size 1024
sub_at 2 lossyfast 'lossy.>' --idle-ms 5000 --size 1024
interest 1 1
opened=$(mval 1 verbus_routes_opened_total)
client 1 lpub --pub lossy.x --count "$L" --size 1024 ||
	{ show lpub "$work/lpub.out"; fail "the publisher failed"; }
reap lossy
reap lossyfast
dropped() { sed -nE 's/.*dropped ([0-9]+) \(notices\).*/\1/p' "$work/$1.out"; }
for s in lossy lossyfast; do
	r=$(received $s) d=$(dropped $s)
	echo "$s: received $r, told dropped $d, of $L"
	[ $((r + d)) = "$L" ] || { show "$s" "$work/$s.out"; fail "$s: $r received + $d dropped is not $L"; }
done
[ "$(dropped lossyfast)" -gt 0 ] || fail "nothing was shed: the test did not hold the route back"
wait_metric 1 verbus_route_drops_reported_total -eq "$(mval 1 verbus_route_drops_total)" 10 ||
	fail "b1 did not report every loss"
wait_metric 2 verbus_route_drops_in_total -eq "$(dropped lossyfast)" 10 ||
	fail "b2 was not told of every loss"
[ "$(mval 1 verbus_routes_opened_total)" = "$opened" ] || fail "b1's routes were reopened: a route was closed"
grep -h "slow consumer" "$work/b1.log" | tail -2
echo "PASS: the held-back route was shed, not closed; every loss was reported to the subscribers behind it"

echo "===== 10. lame duck: a rolling restart loses nothing a client buffered"
# b4 (back, with short lame-duck timings) serves a publisher whose pool is
# b4 then b2, publishing a numbered stream; a subscriber on b3.  verbusd
# --signal ldm: b4 tells its clients, the publisher moves to b2 (a Ping
# barrier behind what it sent b4, the rest buffered), b4 exits 0 once its
# clients are gone; every message arrives once.
member_start 4 --set lame_duck_grace_ms=1000 --set lame_duck_duration_ms=3000
wait_mesh 1 2 3 4
N=${VERBUS_LDM_MSGS:-3000}
"$VERBUS_BIN/verbus" sub -s "$scheme://${H[3]}:${P[3]}" --source "${H[3]}" --count "$N" --timeout 60000 'ldm.>' \
	>"$work/ldsub.out" 2>"$work/ldsub.err" &
ldsub=$!
wait_for subscribed "$work/ldsub.err" 30 || { cat "$work/ldsub.err"; fail "the subscriber on b3 never subscribed"; }
interest 4 1
"$VERBUS_BIN/verbus" pub -s "$scheme://${H[4]}:${P[4]},$scheme://${H[2]}:${P[2]}" --source "${H[4]}" \
	--count "$N" --size 32 --interval 1 ldm.x >"$work/ldpub.out" 2>&1 &
ldpub=$!
wait_for '^#' "$work/ldsub.out" 30 || { cat "$work/ldpub.out"; fail "nothing reached b3's subscriber"; }
sleep 0.3
"$VERBUS_BIN/verbusd" --signal "ldm=${bpid[4]}" || fail "verbusd --signal ldm exited $?"
wait "${bpid[4]}" || { show b4 "$work/b4.log"; fail "b4 exited $? after lame duck"; }
bpid[4]=
wait "$ldpub" || { cat "$work/ldpub.out"; fail "the publisher failed across the lame duck"; }
wait "$ldsub" || { tail -5 "$work/ldsub.err"; fail "the subscriber did not get $N messages"; }
grep -q "lame duck: .*moving to another server" "$work/ldpub.out" || { cat "$work/ldpub.out"; fail "the publisher was not told to move"; }
grep -q "reconnected to $scheme://${H[2]}:${P[2]}" "$work/ldpub.out" || { cat "$work/ldpub.out"; fail "the publisher did not move to b2"; }
grep -q "lame duck: no longer accepting" "$work/b4.log" || { show b4 "$work/b4.log"; fail "b4 did not enter lame duck"; }
seqs=$(grep -oE '^#[0-9]+' "$work/ldsub.out" | sort -u | wc -l)
total=$(grep -cE '^#[0-9]+' "$work/ldsub.out")
[ "$seqs" = "$N" ] && [ "$total" = "$N" ] ||
	{ fail "b3's subscriber: $total messages, $seqs distinct, of $N"; }
wait_mesh 1 2 3
echo "PASS: lame duck: b4 told its publisher, which moved to b2; $N numbered messages reached b3, none lost, none twice; b4 exited 0"

for k in 1 2 3; do
	kill -TERM "${bpid[$k]}"
	wait "${bpid[$k]}" || { show "b$k" "$work/b$k.log"; fail "b$k exited $? on SIGTERM"; }
	bpid[$k]=
done
echo "===== 11. accounts across the routes"
# b1 and b2 again, with accounts: orders (alice, carol) exports the stream
# orders.shipped.> and the service orders.status to billing (bob), which
# imports both; eve is the global account's.  Subscribers on b2, clients
# on b1: billing's '>' gets the imported stream only, $G's '>' nothing of
# either account, and bob's request from b1 is answered by carol on b2,
# the reply crossing back into billing, to bob's inbox behind b1.
apw=$(echo acct-pw | "$VERBUS_BIN/verbusd" --hash-password) || fail "--hash-password"
cat >"$work/acct.conf" <<CONF
authorization = {
  users = ( { user = "eve"; password = "$apw"; } );
  accounts = (
    { name = "orders";
      users = ( { user = "alice"; password = "$apw"; }, { user = "carol"; password = "$apw"; } );
      exports = ( { stream = "orders.shipped.>"; },
                  { service = "orders.status"; accounts = [ "billing" ]; } ); },
    { name = "billing";
      users = ( { user = "bob"; password = "$apw"; } );
      imports = ( { stream = "orders.shipped.>"; account = "orders"; },
                  { service = "orders.status"; account = "orders"; } ); }
  );
};
CONF
member_start 1 -c "$work/acct.conf"
member_start 2 -c "$work/acct.conf"
wait_mesh 1 2
acct() { local u=$1 k=$2; shift 2; "$VERBUS_BIN/verbus" "$@" -s "$scheme://${H[k]}:${P[k]}" --source "${H[k]}" --user "$u" --password acct-pw; }
# acct_bg: acct for a client started with '&': the subshell becomes it
# (exec), so that $! is the client and killing it ends it.
acct_bg() { local u=$1 k=$2; shift 2; exec "$VERBUS_BIN/verbus" "$@" -s "$scheme://${H[k]}:${P[k]}" --source "${H[k]}" --user "$u" --password acct-pw; }
acct_bg bob 2 sub '>' >"$work/abob.out" 2>&1 &
abob=$!
acct_bg eve 2 sub '>' >"$work/aeve.out" 2>&1 &
aeve=$!
acct_bg carol 2 reply --count 2 orders.status >"$work/acarol.out" 2>&1 &
acarol=$!
for f in abob aeve acarol; do
	wait_for subscribed "$work/$f.out" 30 || { show "$f" "$work/$f.out"; fail "$f never subscribed"; }
done
interest 1 3
acct alice 1 pub orders.new.1 new >/dev/null 2>&1 || fail "alice's publish"
acct alice 1 pub orders.shipped.1 shipped >/dev/null 2>&1 || fail "alice's publish"
for i in 1 2; do
	acct bob 1 req --timeout 10000 orders.status "status $i" >"$work/abreq$i.out" 2>&1 ||
		{ show "req $i" "$work/abreq$i.out"; show b1 "$work/b1.log"; show b2 "$work/b2.log"; fail "bob's request $i from b1 was not answered from b2"; }
	grep -q "status $i" "$work/abreq$i.out" || { show "req $i" "$work/abreq$i.out"; fail "bob's reply $i"; }
done
wait "$acarol" || { show carol "$work/acarol.out"; fail "carol's responder exited $?"; }
wait_for 'orders\.shipped\.1' "$work/abob.out" 10 || { show bob "$work/abob.out"; fail "billing's subscriber on b2 missed the imported stream"; }
sleep 0.5
kill "$abob" "$aeve" 2>/dev/null
wait "$abob" "$aeve" 2>/dev/null
grep -q 'orders\.new' "$work/abob.out" && { show bob "$work/abob.out"; fail "billing saw orders.new.1, which orders does not export"; }
grep -q '^\[#[0-9]*\] _INBOX' "$work/abob.out" && { show bob "$work/abob.out"; fail "billing's '>' saw a reply to bob's inbox"; }
[ "$(grep -c '^\[#[0-9]*\] orders\.status' "$work/abob.out")" = 2 ] || { show bob "$work/abob.out"; fail "billing's '>' on b2 did not see bob's 2 requests"; }
grep -q '^\[#' "$work/aeve.out" && { show eve "$work/aeve.out"; fail "\$G's '>' saw an account's message"; }
echo "PASS: accounts across routes: billing's '>' on b2 got orders' imported stream (not orders.new), \$G's nothing; bob's 2 requests from b1 answered by carol on b2 through the service import, the replies back into billing"
for k in 1 2; do
	kill -TERM "${bpid[$k]}"
	wait "${bpid[$k]}" || { show "b$k" "$work/b$k.log"; fail "b$k exited $? on SIGTERM"; }
	bpid[$k]=
done

grep -E "error|crash|sanitizer" "$work"/b*.log | grep -v "route_errors" | head
echo "PASS: the cluster"
