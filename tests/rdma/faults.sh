#!/bin/bash
# Fault injection against verbusd (block mode, the default): 1,000
# connect/disconnect cycles with no growth in the broker's QPs, memory
# registrations, file descriptors or memory; 1,000,000 numbered messages
# through publishers and subscribers that come and go, nothing lost,
# duplicated or reordered; the publisher's link cut for 3 s mid-stream
# and restored.  (The broker killed with SIGKILL and restarted is in
# rxe.libverbus; a subscriber killed mid-delivery in rxe.broker.)
# VERBUS_CHURN and VERBUS_STREAM change the counts (longer runs).
set -u
. "$(dirname "$0")/lib.sh"
broker_env 'ip link set vbport2 up 2>/dev/null'
url="rdma://$brk:$port"
CHURN=${VERBUS_CHURN:-1000}
STREAM=${VERBUS_STREAM:-1000000}

broker_start

# snapshot: what the broker holds now, one line.
snapshot() {
	local qps fds rss mrs
	qps=$(rdma resource show qp 2>/dev/null | grep -c "pid $bpid ")
	fds=$(ls "/proc/$bpid/fd" | wc -l)
	rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$bpid/status")
	mrs=$(($(metric verbus_mr_registered_total) - $(metric verbus_mr_deregistered_total)))
	echo "conns $(metric verbus_connections) qps $qps mrs $mrs mem_registered $(metric verbus_registered_memory_bytes) fds $fds rss_kib $rss"
}
faults() {
	timeout 900 "$VERBUS_BIN/vb_faults" "$@" >>"$work/faults.out" 2>&1
	local rc=$?
	tail -n 3 "$work/faults.out"
	[ "$rc" = 0 ] || { show broker "$work/broker.log"; fail "vb_faults $1 exited $rc"; }
}

# Warm up (first-use allocations, ARP), then the counted cycles.
faults churn "$url" "$a" 50
before=$(snapshot)
faults churn "$url" "$a" "$CHURN"
sleep 0.5
after=$(snapshot)
echo "before: $before"
echo "after:  $after"
set -- $before
b_conns=$2 b_qps=$4 b_mrs=$6 b_mem=$8 b_fds=${10} b_rss=${12}
set -- $after
[ "$2" = 0 ] && [ "$2" = "$b_conns" ] || fail "connections left: $2"
[ "$4" = "$b_qps" ] || fail "QPs grew: $b_qps -> $4"
[ "$6" = "$b_mrs" ] && [ "$6" = 0 ] || fail "memory regions left: $b_mrs -> $6"
[ "$8" = "$b_mem" ] || fail "registered memory grew: $b_mem -> $8"
[ "${10}" = "$b_fds" ] || fail "file descriptors grew: $b_fds -> ${10}"
# The allocator may keep a little; a leak of a connection's ring (1 MiB)
# per cycle would show as a gigabyte.  Under AddressSanitizer resident
# memory measures its quarantine (up to 256 MiB of freed blocks held back
# to catch use-after-free), not leaks: there LeakSanitizer checks instead,
# when broker_stop makes verbusd exit (a leak makes it exit non-zero).
if ldd "$VERBUS_BIN/verbusd" | grep -q libasan; then
	echo "resident memory grew by $((${12} - b_rss)) KiB (ASan quarantine; LeakSanitizer checks at exit)"
else
	[ $((${12} - b_rss)) -lt 4096 ] || fail "resident memory grew by $((${12} - b_rss)) KiB"
fi
echo "PASS: $CHURN connections opened and closed: no QP, memory region, fd or memory left behind"

faults stream "$url" "$a" "$b" "$STREAM"

# The publisher's link (host 2's bridge port) down for 3 s, mid-stream.
timeout 300 "$VERBUS_BIN/vb_faults" link "$url" "$a" "$b" 15 >"$work/link.out" 2>&1 &
lpid=$!
for _ in $(seq 300); do
	grep -q CUT-NOW "$work/link.out" && break
	sleep 0.1
done
grep -q CUT-NOW "$work/link.out" || { cat "$work/link.out"; fail "link test never got going"; }
ip link set vbport2 down
sleep 3
ip link set vbport2 up
wait "$lpid"
rc=$?
cat "$work/link.out"
[ "$rc" = 0 ] || { show broker "$work/broker.log"; fail "vb_faults link exited $rc"; }
broker_stop
echo "PASS: faults"
