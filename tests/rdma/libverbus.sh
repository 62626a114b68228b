#!/bin/bash
# libverbus against verbusd: verbusd on host 1, the library's two
# connections on hosts 2 and 3 (tests/rdma/libtest.c): the API case, the
# threads case, and reconnection after the broker is killed with SIGKILL
# and restarted on the same address.
set -u
. "$(dirname "$0")/lib.sh"
need_hosts 3
brk=$VERBUS_HOST_1_ADDR a=$VERBUS_HOST_2_ADDR b=$VERBUS_HOST_3_ADDR
work=$(mktemp -d)
bpid=
trap '[ -n "$bpid" ] && kill -9 "$bpid" 2>/dev/null; rm -rf "$work"' EXIT
port=$(free_port)
url="rdma://$brk:$port"

# broker: verbusd on host 1, waited until it listens.
broker() {
	"$VERBUS_BIN/verbusd" --listen "$brk:$port" --monitor 127.0.0.1:0 \
		>>"$work/broker.log" 2>&1 &
	bpid=$!
	for _ in $(seq 100); do
		grep -q "listening on" "$work/broker.log" && return
		sleep 0.05
	done
	show broker "$work/broker.log"
	fail "verbusd did not come up"
}

# libtest CASE: run one case to completion.
libtest() {
	timeout 300 "$VERBUS_BIN/vb_libtest" "$1" "$url" "$a" "$b" >"$work/$1.out" 2>&1
	local rc=$?
	cat "$work/$1.out"
	[ "$rc" = 0 ] || { show broker "$work/broker.log"; fail "vb_libtest $1 exited $rc"; }
}

broker
libtest api
libtest threads

# Reconnection: kill the broker when the client says so, restart it.
: >"$work/broker.log"
timeout 120 "$VERBUS_BIN/vb_libtest" reconnect "$url" "$a" "$b" >"$work/rc.out" 2>&1 &
tpid=$!
for _ in $(seq 600); do
	grep -q KILL-BROKER "$work/rc.out" && break
	sleep 0.05
done
grep -q KILL-BROKER "$work/rc.out" || { cat "$work/rc.out"; fail "reconnect case never got going"; }
kill -9 "$bpid"
wait "$bpid" 2>/dev/null
bpid=
sleep 0.3
broker
wait "$tpid"
rc=$?
cat "$work/rc.out"
[ "$rc" = 0 ] || { show broker "$work/broker.log"; fail "vb_libtest reconnect exited $rc"; }
echo "PASS: libverbus"
