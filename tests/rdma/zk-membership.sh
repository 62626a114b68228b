#!/bin/bash
# Cluster membership in ZooKeeper (daemon/zk.c), with real processes: a
# private ZooKeeper server (zk.sh) and vb_zk_member processes joining the
# same cluster, with a 2000 ms session timeout (the server's tickTime is
# 500 ms).  Label "tcp": it needs java and ZooKeeper, no RDMA device.
#
#   1. A and B join; each sees both, with the right data.
#   2. kill -9 B: A sees it gone within the session timeout + 1 s.
#   3. SIGTERM on B: A sees it gone at once (the session is closed).
#   4. A second member with B's id while B lives: it is warned, does not
#      take the node, and takes it once B has left; a restarted member
#      waits out the node of its previous (killed) run the same way.
#   5. SIGSTOP B beyond its session timeout: A sees it go; after SIGCONT,
#      B's session has expired, and B starts a new one and joins again.
#   6. ZooKeeper stopped 5 s and restarted on the same port and data: A
#      and B report the session down, then up, and are members again; C,
#      started while the server was away, keeps trying and joins.
#
# Every member prints one line per event (zk_member.c), stamped with the
# wall clock in ms; the checks read those lines, each with a deadline.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/zk.sh"
[ -n "${VERBUS_BIN:-}" ] || fail "VERBUS_BIN is not set (run through ctest)"

# Its own server always, even with a shared one in VERBUS_ZK_CONNECT:
# case 6 stops and restarts it.
unset VERBUS_ZK_CONNECT
SESSION_MS=2000
work=$(mktemp -d)
declare -A pids=()

cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill -CONT "$p" 2>/dev/null
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	zk_stop
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# die MESSAGE: show every member's output and the server's log, then fail.
die() {
	local f
	for f in "$work"/*.out; do
		[ -e "$f" ] && show "$(basename "$f" .out)" "$f"
	done
	[ -n "${ZK_DIR:-}" ] && [ -e "$ZK_DIR/log" ] &&
		{ echo "----- zookeeper (last 40 lines) -----"; tail -n 40 "$ZK_DIR/log"; }
	fail "$*"
}

# member NAME ID DATA: start a member (output in $work/NAME.out).
member() {
	"$VERBUS_BIN/vb_zk_member" --session "$SESSION_MS" "$url" "$2" "$3" \
		>"$work/$1.out" 2>&1 &
	pids[$1]=$!
}

# leave NAME: SIGTERM; the member must exit 0.
leave() {
	kill -TERM "${pids[$1]}"
	wait "${pids[$1]}" || die "$1 exited $? on SIGTERM"
	unset "pids[$1]"
}

# kill9 NAME
kill9() {
	kill -9 "${pids[$1]}"
	wait "${pids[$1]}" 2>/dev/null
	unset "pids[$1]"
}

# mark NAME: the number of lines NAME has printed so far.
mark() { wc -l <"$work/$1.out"; }

# wait_line PATTERN NAME MARK SECONDS: print the first line of NAME after
# line MARK that matches PATTERN (grep -E), waiting up to SECONDS for it.
wait_line() {
	local i l
	for ((i = 0; i < $4 * 20; i++)); do
		l=$(tail -n +$(($3 + 1)) "$work/$2.out" | grep -E -m1 -- "$1") &&
			{ echo "$l"; return 0; }
		sleep 0.05
	done
	return 1
}

# since T0 LINE: ms from T0 to the stamp that starts LINE.
since() { echo $((${2%% *} - $1)); }

now() { date +%s%3N; }

zk_start || fail "ZooKeeper did not start (needs java and libzookeeper-java: scripts/setup.sh)"
url="zk://$ZK_CONNECT/verbus/zk-membership-$$"
echo "ZooKeeper on $ZK_CONNECT; cluster $url"
DA=tcp://127.0.0.1:1001 DB=tcp://127.0.0.1:1002 DB2=tcp://127.0.0.1:1003
both="members 2: A=$DA B=$DB\$"

# 1. Two members see each other.
member A A "$DA"
member B B "$DB"
wait_line "A $both" A 0 30 >/dev/null || die "A never saw A and B"
wait_line "B $both" B 0 30 >/dev/null || die "B never saw A and B"
echo "PASS: A and B see each other with their data"

# 2. kill -9: gone once its session times out.
m=$(mark A)
t0=$(now)
kill9 B
l=$(wait_line "A members 1: A=$DA\$" A "$m" 10) || die "A never saw B's death"
dt=$(since "$t0" "$l")
echo "A saw B killed after $dt ms (session $SESSION_MS ms)"
[ "$dt" -le $((SESSION_MS + 1000)) ] || die "B's death took $dt ms to be seen"
echo "PASS: a killed member is gone within the session timeout"

# 3. SIGTERM: gone at once.
member B B "$DB"
wait_line "A $both" A "$m" 30 >/dev/null || die "A never saw B come back"
m=$(mark A)
t0=$(now)
leave B
l=$(wait_line "A members 1: A=$DA\$" A "$m" 10) || die "A never saw B leave"
dt=$(since "$t0" "$l")
echo "A saw B leave after $dt ms"
[ "$dt" -le 1000 ] || die "B's clean leave took $dt ms to be seen"
grep -q "B leaving" "$work/B.out" || die "B did not say it was leaving"
echo "PASS: a member that leaves is gone at once"

# 4. A duplicate id waits for the node; so does a member restarted after
# kill -9, for the node of its previous run.
member B B "$DB"
wait_line "A $both" A "$m" 30 >/dev/null || die "A never saw B come back"
member B2 B "$DB2"
wait_line "is held by session" B2 0 10 >/dev/null ||
	die "the second member with id B was not warned"
sleep $((SESSION_MS / 1000 + 1))
grep -q "B=$DB2" "$work/A.out" && die "the second member with id B took B's node"
grep -q "B registered" "$work/B2.out" && die "the second member with id B says it is registered"
echo "PASS: a second member with B's id is warned and does not take the node"
m=$(mark A)
leave B
wait_line "B registered" B2 0 10 >/dev/null || die "B2 did not register once B had left"
wait_line "A members 2: A=$DA B=$DB2\$" A "$m" 10 >/dev/null ||
	die "A never saw B2's data for B"
echo "PASS: it takes the node once B has left"
m=$(mark A)
kill9 B2
member B B "$DB"
wait_line "is held by session" B 0 10 >/dev/null ||
	die "the restarted B did not see its previous run's node"
l=$(wait_line "A $both" A "$m" 10) || die "the restarted B never got its node back"
echo "PASS: a restarted member waits out its previous run's node"

# 5. A member stopped beyond its session timeout: expired, then back.
m=$(mark A)
mb=$(mark B)
kill -STOP "${pids[B]}"
wait_line "A members 1: A=$DA\$" A "$m" 10 >/dev/null ||
	{ kill -CONT "${pids[B]}"; die "A never saw the stopped B go"; }
sleep 1
kill -CONT "${pids[B]}"
wait_line "B state down: zookeeper session expired" B "$mb" 10 >/dev/null ||
	die "B did not report its session expired"
wait_line "B state up" B "$mb" 15 >/dev/null || die "B did not start a new session"
wait_line "B registered" B "$mb" 10 >/dev/null || die "B did not register again"
wait_line "A $both" A "$m" 10 >/dev/null || die "A never saw B back"
echo "PASS: an expired member starts a new session and joins again"

# 6. ZooKeeper away for 5 s; C starts while it is away.
m=$(mark A)
mb=$(mark B)
t0=$(now)
DC=tcp://127.0.0.1:1004
(
	sleep 2
	exec "$VERBUS_BIN/vb_zk_member" --session "$SESSION_MS" "$url" C "$DC"
) >"$work/C.out" 2>&1 &
pids[C]=$!
zk_restart 5 || die "ZooKeeper did not come back"
echo "ZooKeeper back after $(($(now) - t0)) ms"
wait_line "A state down" A "$m" 5 >/dev/null || die "A did not report the session down"
kill -0 "${pids[C]}" || die "C, started without a server, exited"
for n in A B; do
	mk=$m
	[ $n = B ] && mk=$mb
	l=$(wait_line "$n state up" $n "$mk" 20) || die "$n did not reconnect"
	echo "$n: ${l#* }"
	wait_line "$n members 3: A=$DA B=$DB C=$DC\$" $n "$mk" 30 >/dev/null ||
		die "$n is not a member again, or does not see C"
	if grep -q "$n state down: zookeeper session expired" <(tail -n +$((mk + 1)) "$work/$n.out"); then
		echo "$n: its session expired during the outage; it registered again"
	else
		echo "$n: its session outlived the outage (the server restores sessions)"
	fi
done
wait_line "C members 3: A=$DA B=$DB C=$DC\$" C 0 30 >/dev/null ||
	die "C, started while ZooKeeper was away, did not join"
# The server was down from before t0 + 1 s (SIGTERM takes a few hundred
# ms) to after t0 + 5 s: C, started at t0 + 2 s, cannot have been up then.
l=$(wait_line "C state up" C 0 1) || die "C did not report its session up"
[ "$(since "$t0" "$l")" -ge 5000 ] ||
	die "C says it connected $(since "$t0" "$l") ms after ZooKeeper went away"
echo "PASS: after ZooKeeper was away 5 s, A and B are members again, and C joined"

for n in A B C; do leave $n; done
echo "PASS: zk.membership"
