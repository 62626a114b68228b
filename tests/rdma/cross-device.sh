#!/bin/bash
# verbusd on its default kind of listen address (0.0.0.0, every device)
# with clients that reach it through two of its devices (issue 22): the
# subscriber on host 2 through the broker's address on device 1, the
# publisher on host 3 through its address on device 2.  Numbered messages
# both ways at once, request/reply and a queue group across the devices,
# all verified by vb_pubsub; the broker must copy exactly the bytes that
# cross devices (payload_copy_bytes) and none of those that do not; its
# counters must agree with what the clients got.  Then a forward that
# cannot be made (a message larger than the subscriber takes) must be
# counted, logged once and reported to the subscriber, never lost silently.
set -u
. "$(dirname "$0")/lib.sh"
broker_env
dev1=$VERBUS_HOST_1_ADDR dev2=$VERBUS_HOST_2_ADDR
h2=$VERBUS_HOST_2_ADDR h3=$VERBUS_HOST_3_ADDR
M=${VERBUS_CROSS_COUNT:-5000}
SIZE=64

broker_start_any() {
	"$VERBUS_BIN/verbusd" --listen "0.0.0.0:$port" \
		--monitor "127.0.0.1:$mport" "$@" >>"$work/broker.log" 2>&1 &
	bpid=$!
	for _ in $(seq 100); do
		curl -sf "http://127.0.0.1:$mport/healthz" >/dev/null && return
		sleep 0.1
	done
	show broker "$work/broker.log"
	fail "verbusd did not come up"
}

# client NAME SOURCE BROKER-ADDR ARGS...: vb_pubsub from SOURCE to the
# broker at BROKER-ADDR, output in $work/NAME.out.
client() {
	local name=$1 src=$2 to=$3
	shift 3
	timeout 300 "$VERBUS_BIN/vb_pubsub" --connect "$to" --port "$port" \
		--source "$src" --name "$name" "$@" >"$work/$name.out" 2>&1
}

dropped() { sed -nE 's/.*dropped ([0-9]+) \(notices\).*/\1/p' "$work/$1.out"; }


broker_start_any
echo "broker on 0.0.0.0:$port; device 1 at $dev1, device 2 at $dev2"

echo "===== same device: both clients through $dev1"
mark
spawn s_same "$h2" "$dev1" --sub same.x --expect "$M"
client p_same "$h3" "$dev1" --pub same.x --count "$M" --size $SIZE ||
	{ show p_same "$work/p_same.out"; fail "publisher failed"; }
reap s_same
[ "$(received s_same)" = "$M" ] || fail "same device: received $(received s_same) of $M"
[ "$(delta verbus_payload_copy_bytes_total)" = 0 ] ||
	fail "same device: the broker copied $(delta verbus_payload_copy_bytes_total) bytes"
[ "$(delta verbus_zero_copy_bytes_total)" = $((M * (6 + SIZE))) ] ||
	fail "same device: zero-copy bytes $(delta verbus_zero_copy_bytes_total), expected $((M * (6 + SIZE)))"
echo "PASS: same device: $M messages in order, 0 bytes copied"

echo "===== across devices, both ways at once"
mark
spawn s_ab "$h2" "$dev1" --sub cross.ab --expect "$M"
spawn s_ba "$h3" "$dev2" --sub cross.ba --expect "$M"
# The broker's QPs must really sit on two devices.
devs=$(rdma resource show qp 2>/dev/null | grep "pid $bpid " |
	awk '{ for (i = 1; i < NF; i++) if ($i == "link") print $(i + 1) }' |
	cut -d/ -f1 | sort -u | wc -l)
[ "$devs" -ge 2 ] || { rdma resource show qp; fail "the broker's QPs are on $devs device(s), expected 2"; }
client p_ab "$h3" "$dev2" --pub cross.ab --count "$M" --size $SIZE --pub-id 1 &
pa=$!
client p_ba "$h2" "$dev1" --pub cross.ba --count "$M" --size $SIZE --pub-id 2 ||
	{ show p_ba "$work/p_ba.out"; fail "publisher b->a failed"; }
wait "$pa" || { show p_ab "$work/p_ab.out"; fail "publisher a->b failed"; }
reap s_ab
reap s_ba
for s in s_ab s_ba; do
	[ "$(received $s)" = "$M" ] || fail "$s received $(received $s) of $M"
done
want=$((2 * M * (8 + SIZE)))
got=$(delta verbus_payload_copy_bytes_total)
[ "$got" = "$want" ] || fail "across devices: $got bytes copied, expected $want (topic + payload of every message)"
[ "$(delta verbus_zero_copy_bytes_total)" = 0 ] || fail "across devices: zero-copy bytes grew"
[ "$(delta verbus_messages_out_total)" = $((2 * M)) ] ||
	fail "broker delivered $(delta verbus_messages_out_total), clients got $((2 * M))"
echo "PASS: across devices: $M messages each way in order, $got bytes copied (= every byte that crossed)"

echo "===== request/reply across devices"
spawn rep "$h2" "$dev1" --rep svc.cross --count 500
client req "$h3" "$dev2" --req svc.cross --count 500 || { show req "$work/req.out"; fail "requests failed"; }
reap rep
grep "round trips" "$work/req.out"
echo "PASS: request/reply across devices"

echo "===== a queue group with members on both devices"
mark
spawn q1 "$h2" "$dev1" --sub 'jobs.>' --queue workers --idle-ms 2000
spawn q2 "$h3" "$dev2" --sub 'jobs.>' --queue workers --idle-ms 2000
spawn q3 "$h3" "$dev1" --sub 'jobs.>' --queue workers --idle-ms 2000
client qp "$h3" "$dev1" --pub jobs.x --count "$M" --size $SIZE || fail "publisher failed"
total=0
for q in q1 q2 q3; do
	reap $q
	n=$(received $q)
	echo "$q received $n"
	[ "${n:-0}" -gt 0 ] || fail "queue member $q got nothing"
	total=$((total + n))
done
[ "$total" = "$M" ] || fail "queue group received $total, expected exactly $M"
[ "$(delta verbus_messages_out_total)" = "$M" ] || fail "broker counted $(delta verbus_messages_out_total) deliveries"
[ "$(delta verbus_payload_copy_bytes_total)" -gt 0 ] || fail "no cross-device delivery in the queue group"
echo "PASS: queue group across devices, each message to exactly one member"
[ "$(metric verbus_forward_failures_total)" = 0 ] || fail "forwards failed: $(metric verbus_forward_failures_total)"

echo "===== a forward that cannot be made is counted, logged once and reported"
mark
spawn small "$h2" "$dev1" --sub big.x --max-msg 1024 --idle-ms 2000 --no-verify
client bigp "$h3" "$dev2" --pub big.x --count 10 --size 2048 || fail "publisher failed"
reap small
[ "$(delta verbus_forward_failures_total)" = 10 ] ||
	fail "forward failures $(delta verbus_forward_failures_total), expected 10"
[ "$(received small)" = 0 ] || fail "the small subscriber received $(received small)"
[ "$(dropped small)" = 10 ] || { show small "$work/small.out"; fail "the subscriber was told of $(dropped small) dropped, expected 10"; }
[ "$(grep -c 'a delivery to sid .* failed: the message is larger than the subscriber takes' "$work/broker.log")" = 1 ] ||
	{ show broker "$work/broker.log"; fail "expected one log line for the failed forwards"; }
curl -sf "http://127.0.0.1:$mport/varz" | grep -q '"forward_failures": *10' ||
	fail "/varz does not show the 10 forward failures"
echo "PASS: 10 failed forwards: counted, one log line, the subscriber told"

broker_stop
echo "PASS: cross-device"
