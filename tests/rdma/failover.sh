#!/bin/bash
# A client's failover between brokers (issue 15, the client's part), over
# TCP on this machine's loopback (label "tcp": no RDMA device needed).  Two
# independent verbusd, A and B (no cluster); every client is given the list
# "tcp://A,tcp://B" and starts on A.
#  1. verbus sub on A; A killed with SIGKILL: the subscriber must have its
#     subscription in force on B within 2 s of the kill (B's subscription
#     gauge, polled: the time printed is an upper bound), then gets every
#     one of N messages published on B.
#  2. vb_libtest failover: the library's subscriber and publisher; the
#     subscriber resubscribed on B within 2 s of the kill, the publisher's
#     messages published while it had no broker buffered and delivered
#     through B, in order; then back to A (round robin) when B dies.
#  3. A list of two schemes, tcp:// A and tls:// C: the failover changes
#     transport (a second transport context in the client).
set -u
. "$(dirname "$0")/lib.sh"
[ -n "${VERBUS_BIN:-}" ] || fail "VERBUS_BIN is not set (run through ctest)"
N=500
LIMIT_MS=2000
work=$(mktemp -d)
declare -A pid
trap 'for n in "${!pid[@]}"; do kill -9 "${pid[$n]}" 2>/dev/null; wait "${pid[$n]}" 2>/dev/null; done; rm -rf "$work"' EXIT

# Six ports from free_port's range: the brokers' and their monitors'.
p0=$(free_port)
pa=$p0 pb=$((p0 + 1)) pc=$((p0 + 2)) ma=$((p0 + 3)) mb=$((p0 + 4)) mc=$((p0 + 5))
a=tcp://127.0.0.1:$pa b=tcp://127.0.0.1:$pb c=tls://127.0.0.1:$pc
list="$a,$b"

# start NAME URL MPORT: verbusd NAME listening on URL, its monitor on
# 127.0.0.1:MPORT, log appended to $work/NAME.log; waited until it listens.
start() {
	local name=$1 url=$2 mport=$3 n tls=()
	n=$(grep -c "listening on" "$work/$name.log" 2>/dev/null)
	[ "${url%%://*}" = tls ] &&
		tls=(--tls-cert "$work/tls/srv.pem" --tls-key "$work/tls/srv.key")
	"$VERBUS_BIN/verbusd" --listen "$url" "${tls[@]}" \
		--monitor "127.0.0.1:$mport" >>"$work/$name.log" 2>&1 &
	pid[$name]=$!
	for _ in $(seq 500); do
		[ "$(grep -c "listening on" "$work/$name.log")" -gt "${n:-0}" ] && return
		sleep 0.02
	done
	show "$name" "$work/$name.log"
	fail "verbusd $name did not come up"
}

# kill9 NAME: SIGKILL the broker NAME.
kill9() {
	kill -9 "${pid[$1]}" 2>/dev/null
	wait "${pid[$1]}" 2>/dev/null
	unset "pid[$1]"
}

# subs MPORT: the subscriptions the broker with that monitor holds now.
subs() {
	curl -sf "http://127.0.0.1:$1/metrics" |
		awk '$1 == "verbus_subscriptions" { print $2; exit }'
}

# lines FILE TEXT: how many lines of FILE are TEXT.
lines() { grep -cx "$2" "$1" 2>/dev/null; }

# wait_lines FILE TEXT COUNT: until FILE has COUNT lines TEXT (10 s).
wait_lines() {
	for _ in $(seq 200); do
		[ "$(lines "$1" "$2")" -ge "$3" ] && return 0
		sleep 0.05
	done
	return 1
}

# ms_since NS: milliseconds from NS (date +%s%N) to now.
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

start a "$a" "$ma"
start b "$b" "$mb"

# ---- 1. verbus sub, A killed ----------------------------------------------
"$VERBUS_BIN/verbus" sub -s "$list" --raw 'fo.>' >"$work/sub.out" 2>"$work/sub.err" &
pid[sub]=$!
wait_for subscribed "$work/sub.err" 30 || { cat "$work/sub.err"; fail "verbus sub never subscribed"; }
"$VERBUS_BIN/verbus" pub -s "$list" -q --count 3 fo.a before ||
	fail "verbus pub -s $list failed"
wait_lines "$work/sub.out" before 3 || { cat "$work/sub.out"; fail "the subscriber did not get 3 messages through A"; }
[ "$(subs "$ma")" = 1 ] && [ "$(subs "$mb")" = 0 ] ||
	fail "the subscriber is not on A (A holds $(subs "$ma") subscriptions, B $(subs "$mb"))"
echo "PASS: the list's first broker used ($a)"

t0=$(date +%s%N)
kill9 a
while [ "$(subs "$mb")" != 1 ]; do
	[ "$(ms_since "$t0")" -lt 10000 ] || { cat "$work/sub.err"; fail "the subscriber never resubscribed on B"; }
	sleep 0.01
done
ms=$(ms_since "$t0")
echo "verbus sub: subscription in force on B at most $ms ms after A was killed"
[ "$ms" -le "$LIMIT_MS" ] || fail "failover took $ms ms (limit $LIMIT_MS)"
grep -q "reconnected to $b\$" "$work/sub.err" || { cat "$work/sub.err"; fail "verbus sub did not say it reconnected to $b"; }
"$VERBUS_BIN/verbus" pub -s "$b" -q --count "$N" fo.b after ||
	fail "verbus pub -s $b failed"
wait_lines "$work/sub.out" after "$N" ||
	fail "the subscriber got $(lines "$work/sub.out" after) of $N messages through B"
kill -TERM "${pid[sub]}"
wait "${pid[sub]}" || { cat "$work/sub.err"; fail "verbus sub exited $?"; }
unset "pid[sub]"
echo "PASS: verbus sub failed over to $b in $ms ms and got all $N messages published there"

# ---- 2. the library: a subscriber and a buffering publisher -----------------
start a "$a" "$ma"
timeout 120 "$VERBUS_BIN/vb_libtest" failover "$list" 127.0.0.1 127.0.0.1 \
	>"$work/lib.out" 2>&1 &
pid[lib]=$!
wait_for KILL-BROKER "$work/lib.out" 30 || { cat "$work/lib.out"; fail "vb_libtest failover never got going"; }
kt=$(date +%s.%N)
kill9 a
wait_for RESTART-A-KILL-B "$work/lib.out" 60 || { cat "$work/lib.out"; fail "vb_libtest failover did not fail over"; }
start a "$a" "$ma"
kill9 b
wait "${pid[lib]}"
rc=$?
unset "pid[lib]"
cat "$work/lib.out"
[ "$rc" = 0 ] || { show a "$work/a.log"; show b "$work/b.log"; fail "vb_libtest failover exited $rc"; }
t=$(awk '/^resubscribed at/ { print $3 }' "$work/lib.out")
[ -n "$t" ] || fail "vb_libtest said nothing of its resubscription"
ms=$(awk -v a="$t" -v b="$kt" 'BEGIN { printf "%d", (a - b) * 1000 }')
echo "libverbus: subscriptions in force on B $ms ms after A was killed"
[ "$ms" -le "$LIMIT_MS" ] || fail "failover took $ms ms (limit $LIMIT_MS)"
echo "PASS: libverbus failover in $ms ms, buffered publishes delivered through B"

# ---- 3. two schemes: tcp:// A, then tls:// C ---------------------------------
tls_files "$work/tls"
export SSL_CERT_FILE=$work/tls/ca.pem
start c "$c" "$mc"
"$VERBUS_BIN/verbus" sub -s "$a, $c" --raw 'mix.>' >"$work/mix.out" 2>"$work/mix.err" &
pid[sub]=$!
wait_for subscribed "$work/mix.err" 30 || { cat "$work/mix.err"; fail "verbus sub never subscribed"; }
[ "$(subs "$ma")" = 1 ] || fail "the subscriber of '$a, $c' is not on A"
kill9 a
wait_for "reconnected to $c\$" "$work/mix.err" 10 || { cat "$work/mix.err"; fail "verbus sub did not fail over to $c"; }
for _ in $(seq 200); do
	[ "$(subs "$mc")" = 1 ] && break
	sleep 0.05
done
"$VERBUS_BIN/verbus" pub -s "$c" -q --count "$N" mix.c over-tls ||
	fail "verbus pub -s $c failed"
wait_lines "$work/mix.out" over-tls "$N" ||
	fail "the subscriber got $(lines "$work/mix.out" over-tls) of $N messages through C"
kill -TERM "${pid[sub]}"
wait "${pid[sub]}" || { cat "$work/mix.err"; fail "verbus sub exited $?"; }
unset "pid[sub]"
echo "PASS: failover from tcp:// to tls:// ($c): all $N messages"
echo "PASS: failover"
