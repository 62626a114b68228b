#!/bin/bash
# TLS (tls:// URLs) on this machine's loopback (label "tcp": no RDMA
# device): the broker's certificate verified by the client, client
# certificates required by a broker with tls.ca, and every refusal with
# its words, the broker serving on throughout: a client that trusts
# another CA, a certificate for another name, a client without a
# certificate, plain TCP to a tls listener and TLS to a plain one, files
# that do not load, a handshake that never finishes (the handshake
# timeout, counted in /varz).  (The library's own cases over TLS are
# tls.libverbus and tls.auth; the data path through TLS is tls.data_path;
# RDMA and TLS clients on one broker are rxe.mixed's.)
set -u
. "$(dirname "$0")/lib.sh"
ppid_= # the plain broker of the last case, killed on exit too
VERBUS_SCHEME=tls broker_env '[ -n "$ppid_" ] && kill "$ppid_" 2>/dev/null'
T=$work/tls
url="tls://$brk:$port"
V=$VERBUS_BIN/verbus
unset SSL_CERT_FILE # each client here says what it trusts
# 3 s: short for the stalled handshakes below, long enough for a real one
# in a sanitized build on a loaded machine (500 ms was not).
broker_start --set limits.handshake_timeout_ms=3000

# expect_fail NAME WORDS CMD...: CMD must exit 1 and say WORDS on stderr.
expect_fail() {
	local name=$1 words=$2 rc
	shift 2
	timeout 20 "$@" >"$work/out" 2>&1
	rc=$?
	if [ "$rc" != 1 ] || ! grep -q -- "$words" "$work/out"; then
		cat "$work/out"
		show broker "$work/broker.log"
		fail "$name: exit $rc, expected 1 and \"$words\""
	fi
	echo "PASS: $name: $(head -1 "$work/out")"
}

# pubsub NAME URL [OPTIONS...]: 3 messages from a publisher to a subscriber.
pubsub() {
	local name=$1 u=$2 spid i
	shift 2
	: >"$work/sub.out" # not the last call's "subscribed"
	"$V" sub -s "$u" "$@" --count 3 'tls.>' >"$work/sub.out" 2>&1 &
	spid=$!
	wait_for subscribed "$work/sub.out" 30 ||
		{ cat "$work/sub.out"; fail "$name: verbus sub never subscribed"; }
	for i in 1 2 3; do
		"$V" pub -s "$u" "$@" tls.test "hello $i" >/dev/null ||
			fail "$name: verbus pub $i failed"
	done
	wait "$spid" || { cat "$work/sub.out"; fail "$name: verbus sub exited $?"; }
	[ "$(grep -c '^hello [123]$' "$work/sub.out")" = 3 ] ||
		{ cat "$work/sub.out"; fail "$name: not 3 messages"; }
	echo "PASS: $name"
}

pubsub "publish and subscribe over TLS, the CA by --tls-ca" "$url" --tls-ca "$T/ca.pem"
VERBUS_TLS_CA=$T/ca.pem pubsub "the CA by \$VERBUS_TLS_CA" "tls://localhost:$port"
SSL_CERT_FILE=$T/ca.pem pubsub "the CA by OpenSSL's default store (SSL_CERT_FILE)" "$url"
grep -q "open (tls)" "$work/broker.log" || fail "the broker never logged a tls connection"

expect_fail "a client that trusts another CA" "certificate verify failed" \
	"$V" pub -s "$url" --tls-ca "$T/other.pem" tls.x x
expect_fail "a CA file that does not exist" "cannot load the CA file" \
	"$V" pub -s "$url" --tls-ca "$work/none.pem" tls.x x
expect_fail "plain TCP to a tls listener" "the server requires TLS" \
	"$V" pub -s "tcp://$brk:$port" tls.x x
# The library: tls options with a tcp:// URL refused (a connection in the
# clear that its application thinks is not), tls_server_name checked.
timeout 60 "$VERBUS_BIN/vb_libtest" tls "$url" "$T/ca.pem" - >"$work/out" 2>&1 ||
	{ cat "$work/out"; show broker "$work/broker.log"; fail "vb_libtest tls"; }
cat "$work/out"

# A handshake that never finishes: a connection that sends nothing, and
# one that sends half a ClientHello.  Both closed at the timeout.
before=$(curl -sf "http://127.0.0.1:$mport/varz" | tr ',' '\n' |
	sed -n 's/.*"handshake_timeouts": *\([0-9]*\).*/\1/p')
exec 7<>"/dev/tcp/127.0.0.1/$port"
exec 8<>"/dev/tcp/127.0.0.1/$port"
printf '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03' >&8
# The broker serves others meanwhile.
pubsub "others served during two stalled handshakes" "$url" --tls-ca "$T/ca.pem"
for _ in $(seq 100); do
	after=$(curl -sf "http://127.0.0.1:$mport/varz" | tr ',' '\n' |
		sed -n 's/.*"handshake_timeouts": *\([0-9]*\).*/\1/p')
	[ "$((after - before))" -ge 2 ] && break
	sleep 0.1
done
[ "$((after - before))" -ge 2 ] ||
	{ show broker "$work/broker.log"; fail "handshake_timeouts went $before -> $after, expected +2"; }
grep -q "TLS not done within 3000 ms" "$work/broker.log" ||
	{ show broker "$work/broker.log"; fail "no log line for the stalled handshakes"; }
timeout 5 cat <&7 >/dev/null 2>&1 || fail "the broker did not close a stalled handshake"
exec 7<&- 8<&-
echo "PASS: stalled TLS handshakes closed at the timeout (handshake_timeouts $before -> $after)"

broker_kill
# A certificate for another name: the client checks the name it dialled.
: >"$work/broker.log"
broker_start --set tls.cert="$T/name.pem" --set tls.key="$T/name.key"
expect_fail "a broker certificate for another name" "certificate verify failed" \
	"$V" pub -s "$url" --tls-ca "$T/ca.pem" tls.x x
broker_kill

# Client certificates: tls.ca makes the broker ask for one.
: >"$work/broker.log"
broker_start --tls-ca "$T/ca.pem"
expect_fail "no client certificate where the broker asks for one" \
	"certificate required" "$V" pub -s "$url" --tls-ca "$T/ca.pem" tls.x x
grep -q "peer did not return a certificate" "$work/broker.log" ||
	{ show broker "$work/broker.log"; fail "the broker did not say why it refused"; }
expect_fail "a client certificate from another CA" "tls" \
	"$V" pub -s "$url" --tls-ca "$T/ca.pem" --tls-cert "$T/other.pem" \
	--tls-key "$T/other.key" tls.x x
pubsub "a client certificate the broker's CA signed" "$url" --tls-ca "$T/ca.pem" \
	--tls-cert "$T/cli.pem" --tls-key "$T/cli.key"
broker_kill

# The broker refuses to start on files that do not load, saying which.
for bad in "--tls-cert $work/none.pem --tls-key $T/srv.key:cannot load the certificate" \
	"--tls-cert $T/srv.pem --tls-key $T/cli.key:key values mismatch" \
	"--tls-key $T/srv.key:a tls listener needs tls.cert and tls.key"; do
	# shellcheck disable=SC2086 # the options split on purpose
	if "$VERBUS_BIN/verbusd" --listen "$url" --monitor "127.0.0.1:$mport" \
		${bad%%:*} >"$work/bad.log" 2>&1; then
		fail "verbusd started with ${bad%%:*}"
	fi
	grep -q "${bad#*:}" "$work/bad.log" ||
		{ cat "$work/bad.log"; fail "no \"${bad#*:}\" for ${bad%%:*}"; }
done
echo "PASS: verbusd refuses certificates and keys that do not load"

# TLS to a plain listener.
pport=$(free_port)
"$VERBUS_BIN/verbusd" --listen "tcp://$brk:$pport" --monitor "127.0.0.1:$(free_port)" \
	>"$work/plain.log" 2>&1 &
ppid_=$!
wait_for "listening on" "$work/plain.log" 30 || fail "the plain broker did not start"
expect_fail "TLS to a tcp listener" "does not speak TLS" \
	"$V" pub -s "tls://$brk:$pport" --tls-ca "$T/ca.pem" tls.x x
kill "$ppid_"
wait "$ppid_" 2>/dev/null

echo "PASS: tls"
