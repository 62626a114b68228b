#!/bin/bash
# One broker, two transports: verbusd on host 1 listening on RDMA and, with
# --listen-tcp, on TCP; numbered streams (vb_pubsub) between an RDMA client
# and a TCP client, both ways at once, every message in order and none
# lost.  An RDMA publisher's messages reach the TCP subscriber from the
# broker's receive ring without a copy (sendmsg gathers them:
# zero_copy_bytes grows by every byte, payload_copy_bytes not at all); a
# TCP publisher's reach the RDMA subscriber by a copy into its staging (the
# device gathers only registered memory), counted to the byte.  Then a
# request/reply across the transports and a queue group with a member on
# each; SIGTERM clean.  Then the broker again with a TLS listener instead
# of the TCP one: both ways at once between RDMA and TLS, the RDMA
# publisher's messages gathered from the broker's ring into TLS records
# (zero_copy_bytes), the TLS publisher's copied into RDMA staging.
set -u
. "$(dirname "$0")/lib.sh"
broker_env
tport=$(free_port)
M=${VERBUS_MIXED_COUNT:-20000}
SIZE=100

# client NAME SCHEME SOURCE ARGS...: vb_pubsub over SCHEME from SOURCE to the
# broker, output in $work/NAME.out.
client() {
	local name=$1 scheme=$2 src=$3 p=$port
	shift 3
	[ "$scheme" = rdma ] || p=$tport
	timeout 300 "$VERBUS_BIN/vb_pubsub" --scheme "$scheme" --connect "$brk" \
		--port "$p" --source "$src" --name "$name" "$@" >"$work/$name.out" 2>&1
}

# both_ways SCHEME: an RDMA client and a SCHEME (tcp or tls) client each
# publish $M numbered messages to a subscriber on the other transport, at
# once; every message arrives, in order.  The SCHEME publisher's reach the
# RDMA subscriber by a copy into its staging (counted to the byte), the
# RDMA publisher's reach the SCHEME subscriber gathered from the broker's
# ring (zero copy).
both_ways() {
	local sch=$1 pa got s in out nin nout
	in=mix.$sch.in out=mix.$sch.out
	# What each direction's forwards carry: topic and payload.
	nin=$((M * (${#in} + SIZE))) nout=$((M * (${#out} + SIZE)))
	mark
	spawn "s_$sch" "$sch" "$b" --sub "$in" --expect "$M"
	spawn "s_rdma_$sch" rdma "$a" --sub "$out" --expect "$M"
	client "p_rdma_$sch" rdma "$a" --pub "$in" --count "$M" \
		--size $SIZE --pub-id 1 &
	pa=$!
	client "p_$sch" "$sch" "$b" --pub "$out" --count "$M" \
		--size $SIZE --pub-id 2 ||
		{ show "p_$sch" "$work/p_$sch.out"; fail "$sch publisher failed"; }
	wait "$pa" ||
		{ show "p_rdma_$sch" "$work/p_rdma_$sch.out"; fail "rdma publisher failed"; }
	reap "s_$sch"
	reap "s_rdma_$sch"
	for s in "s_$sch" "s_rdma_$sch"; do
		[ "$(received "$s")" = "$M" ] || fail "$s received $(received "$s") of $M"
	done
	got=$(delta verbus_payload_copy_bytes_total)
	[ "$got" = "$nout" ] ||
		fail "$sch -> rdma: $got bytes copied, expected $nout (topic + payload of every message)"
	[ "$(delta verbus_zero_copy_bytes_total)" = "$nin" ] ||
		fail "rdma -> $sch: zero-copy bytes $(delta verbus_zero_copy_bytes_total), expected $nin"
	[ "$(delta verbus_messages_out_total)" = $((2 * M)) ] ||
		fail "broker delivered $(delta verbus_messages_out_total), clients got $((2 * M))"
	[ "$(delta verbus_forward_failures_total)" = 0 ] || fail "forwards failed"
	echo "PASS: rdma <-> $sch: $M messages each way in order; $sch -> rdma copied $got bytes, rdma -> $sch none"
}

broker_start --listen-tcp "tcp://$brk:$tport"
grep -q "also listening on tcp://$brk:$tport" "$work/broker.log" ||
	{ show broker "$work/broker.log"; fail "verbusd is not listening on tcp"; }

echo "===== rdma -> tcp: zero copy"
mark
spawn s_tcp tcp "$b" --sub mix.rt --expect "$M"
client p_rdma rdma "$a" --pub mix.rt --count "$M" --size $SIZE ||
	{ show p_rdma "$work/p_rdma.out"; fail "rdma publisher failed"; }
reap s_tcp
[ "$(received s_tcp)" = "$M" ] || fail "tcp subscriber received $(received s_tcp) of $M"
[ "$(delta verbus_payload_copy_bytes_total)" = 0 ] ||
	fail "rdma -> tcp: the broker copied $(delta verbus_payload_copy_bytes_total) bytes"
[ "$(delta verbus_zero_copy_bytes_total)" = $((M * (6 + SIZE))) ] ||
	fail "rdma -> tcp: zero-copy bytes $(delta verbus_zero_copy_bytes_total), expected $((M * (6 + SIZE)))"
echo "PASS: rdma -> tcp: $M messages in order, 0 bytes copied"

echo "===== rdma <-> tcp, both ways at once"
both_ways tcp

echo "===== request/reply and a queue group across transports"
spawn r_tcp tcp "$b" --rep mix.svc --count 100
client q_rdma rdma "$a" --req mix.svc --count 100 ||
	{ show q_rdma "$work/q_rdma.out"; fail "requests over rdma to a tcp responder failed"; }
reap r_tcp
spawn g_tcp tcp "$b" --sub 'mix.q' --queue workers --idle-ms 3000
spawn g_rdma rdma "$a" --sub 'mix.q' --queue workers --idle-ms 3000
# /connz says which transport each client came by.
kinds=$(curl -sf "http://127.0.0.1:$mport/connz" | python3 -c '
import json, sys
print(" ".join(sorted(c["name"] + ":" + c["transport"] for c in json.load(sys.stdin)["connections"])))')
echo "connz: $kinds"
[ "$kinds" = "g_rdma:rdma g_tcp:tcp" ] || fail "/connz shows \"$kinds\""
client p_q rdma "$a" --pub mix.q --count 1000 --size 16 ||
	{ show p_q "$work/p_q.out"; fail "queue publisher failed"; }
reap g_tcp
reap g_rdma
n1=$(received g_tcp) n2=$(received g_rdma)
echo "queue group: tcp member $n1, rdma member $n2"
[ $((n1 + n2)) = 1000 ] || fail "queue group got $((n1 + n2)) of 1000"
[ "$n1" -gt 0 ] && [ "$n2" -gt 0 ] || fail "a queue member got nothing"
echo "PASS: request/reply rdma -> tcp, queue group across transports"

broker_stop

echo "===== rdma <-> tls, both ways at once"
tls_files "$work/tls" "$brk"
export SSL_CERT_FILE=$work/tls/ca.pem # vb_pubsub's trust: OpenSSL's default
broker_start --listen-tcp "tls://$brk:$tport" --tls-cert "$work/tls/srv.pem" \
	--tls-key "$work/tls/srv.key"
both_ways tls
grep -q "open (tls)" "$work/broker.log" || fail "no tls connection in the broker's log"
broker_stop
echo "PASS: mixed transports"
