#!/bin/bash
# libverbus against verbusd: verbusd on host 1, the library's two
# connections on hosts 2 and 3 (tests/rdma/libtest.c): the API case, the
# threads case, and reconnection after the broker is killed with SIGKILL
# and restarted on the same address; headers (tests/rdma/libhdr.c); large
# messages (tests/rdma/liblarge.c, and verbus pub --size 8M); drain, round
# trips, the broker's version and the log callback (tests/rdma/libdrain.c).
set -u
. "$(dirname "$0")/lib.sh"
broker_env
url="$scheme://$brk:$port"

# libtest CASE: run one case to completion.
libtest() {
	timeout 300 "$VERBUS_BIN/vb_libtest" "$1" "$url" "$a" "$b" >"$work/$1.out" 2>&1
	local rc=$?
	cat "$work/$1.out"
	[ "$rc" = 0 ] || { show broker "$work/broker.log"; fail "vb_libtest $1 exited $rc"; }
}

broker_start --monitor 127.0.0.1:0
libtest api
libtest threads
libtest posting
# Message headers and no-responders (tests/rdma/libhdr.c).
timeout 120 "$VERBUS_BIN/vb_libhdr" "$url" "$a" "$b" >"$work/libhdr.out" 2>&1 ||
	{ cat "$work/libhdr.out"; show broker "$work/broker.log"; fail "vb_libhdr failed"; }
cat "$work/libhdr.out"

# Large messages (tests/rdma/liblarge.c), then from the command line with
# the defaults: `verbus pub --size 8M` to `verbus sub`, every byte; and a
# subscriber with --max-payload 1M told why a 2 MiB message did not come.
timeout 120 "$VERBUS_BIN/vb_liblarge" "$url" "$a" "$b" >"$work/liblarge.out" 2>&1 ||
	{ cat "$work/liblarge.out"; show broker "$work/broker.log"; fail "vb_liblarge failed"; }
cat "$work/liblarge.out"
V=$VERBUS_BIN/verbus
timeout 60 "$V" sub -s "$url" --source "$b" --count 1 --raw big.cli \
	>"$work/big.out" 2>"$work/big.err" &
bigsub=$!
wait_for "subscribed" "$work/big.err" 10 || { cat "$work/big.err"; fail "verbus sub big.cli never subscribed"; }
timeout 60 "$V" pub -s "$url" --source "$a" --size 8M big.cli 2>"$work/bigpub.err" ||
	{ cat "$work/bigpub.err"; fail "verbus pub --size 8M failed"; }
wait "$bigsub" || { cat "$work/big.err"; fail "verbus sub of 8M exited $?"; }
# The generated payload: "#1 ", then the alphabet over and over; then the
# newline --raw adds.
[ "$(stat -c %s "$work/big.out")" = 8388609 ] || fail "verbus sub got $(stat -c %s "$work/big.out") bytes of 8388609"
want=$({ printf '#1 '; yes abcdefghijklmnopqrstuvwxyz | tr -d '\n' | head -c $((8388608 - 3)); echo; } | md5sum)
[ "$(md5sum <"$work/big.out")" = "$want" ] || fail "verbus sub's 8 MiB differ from what verbus pub generates"
# No deadline of its own: the notice may take seconds to come in a
# sanitized build under emulation; the subscriber is ended once it is seen.
timeout 120 "$V" sub -s "$url" --source "$b" --count 1 --max-payload 1M big.cli \
	>"$work/small.out" 2>"$work/small.err" &
smallsub=$!
wait_for "subscribed" "$work/small.err" 10 || { cat "$work/small.err"; fail "verbus sub --max-payload never subscribed"; }
timeout 60 "$V" pub -s "$url" --source "$a" --size 2M -q big.cli || fail "verbus pub --size 2M failed"
wait_for "too large for this subscriber.*--max-payload" "$work/small.err" 60 ||
	{ cat "$work/small.err"; fail "verbus sub --max-payload 1M did not say why the message did not come"; }
kill "$smallsub" 2>/dev/null
wait "$smallsub" 2>/dev/null
[ -s "$work/small.out" ] && { cat "$work/small.out"; fail "verbus sub --max-payload 1M printed a message it should not have had"; }
echo "PASS: verbus pub --size 8M to verbus sub, every byte; --max-payload 1M says why a 2 MiB message did not come"

# Drain, round trips, the broker's version, the log callback
# (tests/rdma/libdrain.c); CLOSED-URL: a port where nothing listens.
ver=$("$VERBUS_BIN/verbusd" --version | awk '{ print $2 }')
timeout 300 "$VERBUS_BIN/vb_libdrain" "$url" "$a" "$b" "$ver" \
	"$scheme://$brk:$(free_port)" >"$work/libdrain.out" 2>&1
rc=$?
cat "$work/libdrain.out"
[ "$rc" = 0 ] || { show broker "$work/broker.log"; fail "vb_libdrain exited $rc"; }

# Synchronous subscriptions, pending limits, inboxes (tests/rdma/libsync.c).
timeout 300 "$VERBUS_BIN/vb_libsync" "$url" "$a" "$b" >"$work/sync.out" 2>&1
rc=$?
cat "$work/sync.out"
[ "$rc" = 0 ] || { show broker "$work/broker.log"; fail "vb_libsync exited $rc"; }

# The examples: hello, then two epoll bridges (hosts 2 and 3) passing a
# line from a TCP client of one to a TCP client of the other.
timeout 60 "$VERBUS_BIN/vb_example_hello" "$url" "$a" >"$work/hello.out" 2>&1 ||
	{ cat "$work/hello.out"; fail "vb_example_hello failed"; }
[ "$(grep -c '^greet.world: hello$' "$work/hello.out")" = 3 ] ||
	{ cat "$work/hello.out"; fail "hello did not receive its 3 messages"; }
echo "PASS: examples/hello"
tpa=$(free_port) tpb=$(free_port)
for side in a b; do
	eval "src=\$$side tp=\$tp$side"
	timeout 120 "$VERBUS_BIN/vb_example_epoll" "$url" "$src" "$tp" 'chat.>' \
		>"$work/bridge-$side.out" 2>&1 &
	eval "bridge_$side=$!"
	for _ in $(seq 200); do
		grep -q ready "$work/bridge-$side.out" && break
		sleep 0.05
	done
	grep -q ready "$work/bridge-$side.out" || { cat "$work/bridge-$side.out"; fail "bridge $side never ready"; }
done
exec 5<>"/dev/tcp/127.0.0.1/$tpb" 6<>"/dev/tcp/127.0.0.1/$tpa"
read -r -t 10 w5 <&5 && read -r -t 10 w6 <&6 && [ "$w5 $w6" = "welcome welcome" ] ||
	fail "the bridges did not greet their tcp clients"
echo "chat.room hello over $scheme" >&6
read -r -t 10 line <&5
[ "$line" = "chat.room hello over $scheme" ] || fail "bridge b's client read \"$line\""
exec 5<&- 6<&-
kill "$bridge_a" "$bridge_b"
echo "PASS: examples/epoll_bridge: tcp -> libverbus -> verbusd -> libverbus -> tcp"

# Reconnection: kill the broker when the client says so, restart it.
timeout 120 "$VERBUS_BIN/vb_libtest" reconnect "$url" "$a" "$b" >"$work/rc.out" 2>&1 &
tpid=$!
for _ in $(seq 600); do
	grep -q KILL-BROKER "$work/rc.out" && break
	sleep 0.05
done
grep -q KILL-BROKER "$work/rc.out" || { cat "$work/rc.out"; fail "reconnect case never got going"; }
broker_kill
sleep 0.3
start=$(date +%s.%N)
broker_start --monitor 127.0.0.1:0
# The broker is back once it listens: after $broker_listen_after, the last
# time broker_start looked and did not see it, so the times below are upper
# bounds.  verbusd's own start-up (device, protection domain, listener)
# before that is not the client's reconnection, and its length varies
# with the load on an emulated guest.
back=$broker_listen_after
wait "$tpid"
rc=$?
cat "$work/rc.out"
[ "$rc" = 0 ] || { show broker "$work/broker.log"; fail "vb_libtest reconnect exited $rc"; }
# Both clients are back within 2 s of the broker's return (the
# reconnect delay is capped at 200 ms here, plus up to 20 ms of jitter).
for t in $(awk '/^event: reconnected at/ { print $4 }' "$work/rc.out"); do
	ms=$(awk -v a="$t" -v b="$back" 'BEGIN { printf "%d", (a - b) * 1000 }')
	ms0=$(awk -v a="$t" -v b="$start" 'BEGIN { printf "%d", (a - b) * 1000 }')
	echo "reconnected at most $ms ms after the broker listened again ($ms0 ms after verbusd was started)"
	[ "$ms" -lt 2000 ] || fail "reconnection took $ms ms (limit 2000)"
done
echo "PASS: libverbus"
