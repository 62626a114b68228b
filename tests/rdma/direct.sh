#!/bin/bash
# Direct mode, the broker's side (docs/PROTOCOL.md, "Direct mode"):
# verbusd on host 1, vb_direct_ctl (tests/rdma/direct_ctl.c) with its
# subscribers' connections from host 2 and its publishers' from host 3.
# The program checks, case by case (a-g): DirectListen and DirectKey, a
# direct Subscribe without one refused; the DirectPaths of a DirectQuery
# and their grants under the subscribers' keys; DirectStale when direct
# interest changes; DirectSwitch and the DirectFence ordering brokered
# messages before it; DirectRevoke when the publisher goes; an unknown
# sub_id ignored and a second DirectListen closing the connection.  Then
# (h) the broker's /metrics counted it all, and its gauges are back to 0
# once every connection has gone.  Then libverbus end to end
# (tests/rdma/libdirect.c).  Then (i) a rogue direct publisher
# (vb_direct_ctl --rogue) against a real libverbus direct subscriber
# (vb_libdirect --serve): every forged, replayed, foreign or misused grant
# refused, no frame of its delivered, the subscriber's brokered traffic
# carrying on; (j) a direct subscriber killed while a direct publisher
# streams: a second direct subscriber and a plain one get every message,
# in order, and the publisher ends well; (k) configuration reloads while a
# direct publisher streams: every message once and in order, the
# publisher switching off by itself (nothing revoked); (l) request/reply
# with --direct: no DirectQuery for the replies' inboxes; (m) direct
# fan-out under backpressure, every message once; (n) direct connections
# cut with both ends alive while a direct publisher streams: what was in
# flight goes again through the broker, every message once and in order;
# (o) a direct publisher whose switch off names frames it never writes
# (vb_direct_ctl --rogue --stall) holds the subscriber's brokered
# deliveries 10 s at most; (p) resends counted on the direct connection
# their tag names, not the publisher's newer one.
set -u
. "$(dirname "$0")/lib.sh"
broker_env 'for p in ${pid_srv:-} ${pid_s1:-} ${pid_s2:-} ${pid_t:-}; do kill -9 "$p" 2>/dev/null; done'
[ "$scheme" = tls ] && fail "direct.sh runs over rdma or tcp"

broker_start
timeout 300 "$VERBUS_BIN/vb_direct_ctl" --scheme "$scheme" --connect "$brk" \
	--port "$port" --sub-source "$a" --pub-source "$b" \
	--monitor "127.0.0.1:$mport" >"$work/ctl.out" 2>&1
rc=$?
cat "$work/ctl.out"
[ "$rc" = 0 ] || { show broker "$work/broker.log"; fail "vb_direct_ctl exited $rc"; }
kill -0 "$bpid" 2>/dev/null || { show broker "$work/broker.log"; fail "verbusd died"; }

# at_least NAME MIN: the broker's metric NAME (labels included) is >= MIN.
at_least() {
	local v
	v=$(metric "$1")
	[ -n "$v" ] || { curl -s "http://127.0.0.1:$mport/metrics" | grep direct; fail "/metrics has no $1"; }
	awk -v v="$v" -v m="$2" 'BEGIN { exit !(v >= m) }' || fail "$1 is $v, expected at least $2"
	echo "direct: $1 $v"
}
# 7 queries (4 in c, 2 in d, 1 in g); 6 paths granted (2 + 1 + 2 + 1);
# P switched on twice and off once; P's close revoked; two changes of
# interest after P asked.
at_least verbus_direct_queries_total 7
at_least verbus_direct_paths_granted_total 6
at_least 'verbus_direct_switches_total{state="on"}' 2
at_least 'verbus_direct_switches_total{state="off"}' 1
at_least verbus_direct_revokes_total 1
at_least verbus_direct_stale_total 2
echo "PASS: h. /metrics: queries, paths granted, switches on and off, revokes and stale counted"

# Every connection has gone: no listener, no path open.
for _ in $(seq 100); do
	[ "$(metric verbus_direct_listeners)" = 0 ] &&
		[ "$(metric verbus_direct_paths_open)" = 0 ] && break
	sleep 0.1
done
[ "$(metric verbus_direct_listeners)" = 0 ] || fail "verbus_direct_listeners $(metric verbus_direct_listeners) with no client"
[ "$(metric verbus_direct_paths_open)" = 0 ] || fail "verbus_direct_paths_open $(metric verbus_direct_paths_open) with no client"
echo "PASS: h. gauges verbus_direct_listeners and verbus_direct_paths_open back to 0"

# libverbus end to end (tests/rdma/libdirect.c): a direct publisher on
# host 3, a direct and a plain subscriber on host 2; the switch-over under
# a continuous stream, new subjects while switched on, an unsubscribe, a
# new subscription.
timeout 300 "$VERBUS_BIN/vb_libdirect" "$scheme://$brk:$port" "$b" "$a" \
	>"$work/libdirect.out" 2>&1
rc=$?
cat "$work/libdirect.out"
[ "$rc" = 0 ] || { show broker "$work/broker.log"; fail "vb_libdirect exited $rc"; }

# client NAME ARGS...: vb_libdirect ARGS (a --serve, for lib.sh's spawn and
# reap_served), stdout in $work/NAME.out, stderr (the library's warnings) in
# $work/NAME.err.  Each --serve gives up by itself: 120 s without a quit,
# 30 s after it.
client() {
	local name=$1
	shift
	exec "$VERBUS_BIN/vb_libdirect" "$@" >"$work/$name.out" 2>"$work/$name.err"
}
url=$scheme://$brk:$port
# reap_served NAME: reap, showing its warnings too if it failed.
reap_served() {
	local pid rc
	eval "pid=\$pid_$1"
	wait "$pid"
	rc=$?
	[ "$rc" = 0 ] && return
	show "$1" "$work/$1.out"
	show "$1: stderr" "$work/$1.err"
	show broker "$work/broker.log"
	fail "$1 exited $rc"
}
# served NAME FIELD: a number from NAME's "served ..." line (direct,
# refused, numbered; messages: "served").
served() {
	local l
	l=$(grep '^served ' "$work/$1.out")
	case $2 in
	messages) echo "$l" | sed -nE 's/^served ([0-9]+) messages.*/\1/p' ;;
	*) echo "$l" | sed -nE "s/.*, $2 ([0-9]+).*/\1/p" ;;
	esac
}

# publish_bg SUBJECT COUNT: a direct publisher (vb_libdirect --publish) from
# host 3 in the background, $pid_pub, its output in $work/pub.out.
publish_bg() {
	timeout 120 "$VERBUS_BIN/vb_libdirect" --publish "$url" "$b" "$1" "$2" \
		>"$work/pub.out" 2>&1 &
	pid_pub=$!
}
# flowing NAME: a --serve NAME has had a direct message (30 s at most).
flowing() {
	wait_for 'direct flowing' "$work/$1.out" 30 && return
	show publisher "$work/pub.out"
	fail "${1^^} never got a direct message"
}

# served_rogue NAME [OPTION]: a --serve subscriber on NAME.>, and
# vb_direct_ctl --rogue NAME.x [OPTION] against it; its output in
# $work/NAME.out, the "ok" messages it published in $oks, each of which the
# subscriber must have had.
served_rogue() {
	local rc
	spawn srv --serve "$url" "$a" "$1.>"
	timeout 120 "$VERBUS_BIN/vb_direct_ctl" --scheme "$scheme" --connect "$brk" \
		--port "$port" --sub-source "$a" --pub-source "$b" --rogue "$1.x" \
		${2:+"$2"} >"$work/$1.out" 2>&1
	rc=$?
	cat "$work/$1.out"
	[ "$rc" = 0 ] || { show served "$work/srv.err"; show broker "$work/broker.log"; fail "vb_direct_ctl --rogue ${2:-} exited $rc"; }
	reap_served srv
	cat "$work/srv.out"
	show "served: warnings" "$work/srv.err"
	oks=$(sed -nE 's/^[a-z]+: .*[ ,] ?([0-9]+) ("ok" messages in all|brokered messages published).*/\1/p' "$work/$1.out")
	[ -n "$oks" ] || fail "vb_direct_ctl --rogue ${2:-} did not say what it did"
	[ "$(served srv numbered)" = "$oks" ] || fail "the served subscriber got $(served srv numbered) of the $oks messages"
}

# i. The rogue: a direct subscriber on host 2, vb_direct_ctl --rogue from
# host 3 (its own S on host 2).
served_rogue rog
attempts=$(sed -nE 's/^rogue: ([0-9]+) attempts refused.*/\1/p' "$work/rog.out")
[ -n "$attempts" ] || fail "vb_direct_ctl --rogue did not say what it did"
[ "$(served srv direct)" = 0 ] || fail "the served subscriber took $(served srv direct) messages from the rogue"
[ "$(served srv refused)" = "$attempts" ] ||
	fail "the served subscriber counts $(served srv refused) refused (vb_stats.direct_refused), the rogue made $attempts attempts"
# One line per attempt from direct_sub.c (the transport adds its own).
n=$(grep -c 'direct mode: direct connection refused' "$work/srv.err")
m=$(grep -cE 'direct mode: connection from .* closed:' "$work/srv.err")
[ "$n" -ge 1 ] && [ "$m" -ge 1 ] && [ $((n + m)) = "$attempts" ] ||
	fail "the served subscriber logged $n refusals and $m closes for $attempts attempts"
echo "PASS: i. a rogue direct publisher: $attempts attempts refused ($n) or closed ($m), each logged by the subscriber, none delivered; its $oks brokered messages all in order"

# j. S1 (direct) killed mid-stream: S2 (direct) and T (plain) miss nothing.
count=${VERBUS_DIRECT_KILL_MSGS:-20000}
spawn s1 --serve "$url" "$a" kill.x
spawn s2 --serve "$url" "$a" kill.x
spawn t --serve-plain "$url" "$a" kill.x
publish_bg kill.x "$count"
flowing s1
flowing s2
grep -q 'messages, direct out' "$work/pub.out" && fail "the stream ended before S1 could be killed ($count messages: VERBUS_DIRECT_KILL_MSGS)"
kill -9 "$pid_s1"
wait "$pid_s1" 2>/dev/null
pid_s1=
at=$(sed -nE 's/^published ([0-9]+)$/\1/p' "$work/pub.out" | tail -1)
echo "direct: S1 killed after about ${at:-0} messages"
wait "$pid_pub"
rc=$?
cat "$work/pub.out"
[ "$rc" = 0 ] || { show broker "$work/broker.log"; fail "the direct publisher exited $rc after S1 was killed"; }
"$VERBUS_BIN/verbus" pub -q -s "$url" quit "$count" || fail "verbus pub quit failed"
reap_served s2
reap_served t
cat "$work/s2.out" "$work/t.out"
[ "$(served s2 numbered)" = "$count" ] || fail "S2 got $(served s2 numbered) of $count"
[ "$(served t numbered)" = "$count" ] || fail "T got $(served t numbered) of $count"
[ "$(served s2 direct)" -gt 0 ] || fail "S2 got nothing directly"
echo "PASS: j. a direct subscriber killed after ${at:-0} of $count messages: the other direct subscriber ($(served s2 direct) direct) and the plain one each got all $count, in order; the publisher exited 0"

# k. Configuration reloads (SIGHUP) while a direct publisher streams: each
# reload makes the publisher switch every path off in order and ask again
# (a DirectStale for everything), so a direct and a plain subscriber get
# every message once and in order, and the broker revokes nothing.
count=${VERBUS_DIRECT_RELOAD_MSGS:-40000}
reloads=$(grep -c 'reload: applied' "$work/broker.log")
spawn s1 --serve "$url" "$a" rel.x
spawn t --serve-plain "$url" "$a" rel.x
publish_bg rel.x "$count"
flowing s1
hups=0
for _ in 1 2 3; do
	grep -q 'messages, direct out' "$work/pub.out" && break
	kill -HUP "$bpid"
	hups=$((hups + 1))
	sleep 0.3
done
wait "$pid_pub"
rc=$?
cat "$work/pub.out"
[ "$rc" = 0 ] || { show broker "$work/broker.log"; fail "the direct publisher exited $rc across reloads"; }
[ "$hups" -ge 1 ] || fail "the stream ended before a reload could be sent ($count messages: VERBUS_DIRECT_RELOAD_MSGS)"
"$VERBUS_BIN/verbus" pub -q -s "$url" quit "$count" || fail "verbus pub quit failed"
reap_served s1
reap_served t
cat "$work/s1.out" "$work/t.out"
n=$(($(grep -c 'reload: applied' "$work/broker.log") - reloads))
[ "$n" = "$hups" ] || fail "$hups reloads sent, $n applied"
[ "$(served s1 numbered)" = "$count" ] || fail "S1 got $(served s1 numbered) of $count"
[ "$(served t numbered)" = "$count" ] || fail "T got $(served t numbered) of $count"
[ "$(served s1 direct)" -gt 0 ] || fail "S1 got nothing directly"
! grep -q 'off within .* of a reload; revoked' "$work/broker.log" ||
	{ grep 'of a reload; revoked' "$work/broker.log"; fail "the broker revoked direct paths: the publisher did not switch them off by itself"; }
echo "PASS: k. $n reloads during a direct stream: the direct subscriber ($(served s1 direct) direct) and the plain one each got all $count, in order; the publisher switched off and on by itself, nothing revoked"

# l. Request/reply, direct both ways (verbus bench --direct rtt): the
# requests go direct, the replies to the requester's inbox through the
# broker without a DirectQuery each (an inbox is never direct): the
# publishers ask about the request subject only.
q0=$(metric verbus_direct_queries_total)
"$VERBUS_BIN/verbus" bench -s "$url" --pub-source "$b" --sub-source "$a" \
	--direct -z 64 --samples 300 --warmup 20 rtt >"$work/rtt.out" 2>&1 ||
	{ cat "$work/rtt.out"; fail "verbus bench --direct rtt failed"; }
cat "$work/rtt.out"
q=$(($(metric verbus_direct_queries_total) - q0))
[ "$q" -le 4 ] || fail "$q DirectQuery for 320 requests and their replies: the replies' inboxes were asked about"
echo "PASS: l. 320 requests and replies with --direct: $q DirectQuery in all (none for the replies' inboxes)"

# m. Fan-out under backpressure: 4 direct subscribers of 32 KiB messages,
# their paths switching off and on as the publisher's queues fill: each
# gets every message once (vb_publish refusing a message with VB_EAGAIN
# after writing it directly made the bench publish it again: 3 runs in 4
# doubled 20-30 messages over TCP, before the fix in outq.c).
n=3000
[ "$scheme" = rdma ] && n=300 # the guest's rxe: ~20 MB/s
"$VERBUS_BIN/verbus" bench -s "$url" --pub-source "$b" --sub-source "$a" \
	--direct -z 32768 -n "$n" --subs 4 fanout >"$work/fanout.out" 2>&1 ||
	{ cat "$work/fanout.out"; fail "verbus bench --direct fanout lost or doubled messages"; }
cat "$work/fanout.out"
echo "PASS: m. $n messages of 32 KiB to 4 direct subscribers under backpressure: each once"

# n. Direct connections cut with both ends alive: the libraries of two
# direct subscribers close each direct connection in abruptly after every
# 1,000 frames they took (VERBUS_TEST_DIRECT_CUT; the first cut switches
# the publisher's paths off for a while, so one of them may be cut alone),
# frames still in flight on it, while a direct publisher streams 1,100-byte
# messages (VERBUS_DIRECT_PAD: the fan-out sends the second subscriber's
# copy from the first one's staging, gathered, not copied); the publisher
# resends through the broker, behind its DirectSwitch off, what the cut
# subscriber had not freed in its ring (RESEND frames, to it alone; read
# from staging, the borrowed bytes too), and the subscriber drops those it
# had taken: S1, S2 and a plain subscriber each get every message once, in
# order and intact.  (Before the resends a cut lost what was in flight: at
# most once.)
count=${VERBUS_DIRECT_CUT_MSGS:-20000}
r0=$(metric verbus_direct_resends_total)
export VERBUS_TEST_DIRECT_CUT=1000
spawn s1 --serve "$url" "$a" cut.x
spawn s2 --serve "$url" "$a" cut.x
unset VERBUS_TEST_DIRECT_CUT
spawn t --serve-plain "$url" "$a" cut.x
export VERBUS_DIRECT_PAD=1100
publish_bg cut.x "$count"
unset VERBUS_DIRECT_PAD
flowing s1
flowing s2
wait "$pid_pub"
rc=$?
cat "$work/pub.out"
[ "$rc" = 0 ] || { show broker "$work/broker.log"; fail "the direct publisher exited $rc across cut direct connections"; }
"$VERBUS_BIN/verbus" pub -q -s "$url" quit "$count" || fail "verbus pub quit failed"
reap_served s1
reap_served s2
reap_served t
cat "$work/s1.out" "$work/s2.out" "$work/t.out"
resent=$(sed -nE 's/.*, resent ([0-9]+)$/\1/p' "$work/pub.out")
gathered=$(sed -nE 's/.*, gathered ([0-9]+), .*/\1/p' "$work/pub.out")
r=$(($(metric verbus_direct_resends_total) - r0))
[ "$(served t numbered)" = "$count" ] || fail "T got $(served t numbered) of $count"
all_cuts=0
for s in s1 s2; do
	cuts=$(grep -c 'cut after .* frames' "$work/$s.err")
	all_cuts=$((all_cuts + cuts))
	[ "$(served $s numbered)" = "$count" ] || fail "${s^^} got $(served $s numbered) of $count across $cuts cuts"
	[ "$(served $s direct)" -gt 0 ] || fail "${s^^} got nothing directly"
	# The frame each cut fell on was never taken: it must have come again.
	[ "$(served $s resent)" -ge "$cuts" ] ||
		fail "${s^^}: $cuts cuts, but the publisher resent ${resent:-0}, the broker delivered $r again and ${s^^} took $(served $s resent) of them"
	echo "${s^^}: $cuts direct connections cut, $(served $s resent) resends taken, $(served $s dup) dropped as had, $(served $s direct) direct"
done
# The first cut switches every path off for a while (the subject is asked
# about again): over rxe the other subscriber, its path switched on a little
# later, may not reach its 1,000th frame before the stream ends.
[ "$all_cuts" -ge 1 ] || fail "no direct connection was cut ($count messages: VERBUS_DIRECT_CUT_MSGS)"
[ "${gathered:-0}" -gt 0 ] || fail "the publisher's fan-out gathered nothing: every copy was copied again"
echo "PASS: n. direct connections cut mid-stream: the publisher resent $resent through the broker (delivered $r), its fan-out gathered $gathered bytes; S1, S2 and the plain subscriber each got all $count, in order, intact"

# o. A stalled barrier: a direct publisher (vb_direct_ctl --rogue --stall,
# case h) writes 3 frames to a real direct subscriber, then a DirectSwitch
# off naming 1,000,000, its direct connection kept open.  The subscriber
# holds the brokered messages behind the broker's fence off 10 s
# (VBI_DIRECT_RESEND_WAIT_NS) and no longer, with a warning; then every
# message comes once and in order, and later ones at once.  (Before
# 4b18c90 the barrier held them as long as the connection stayed open.)
served_rogue stall --stall
direct=$(sed -nE 's/^stall: ([0-9]+) written directly.*/\1/p' "$work/stall.out")
[ -n "$direct" ] || fail "vb_direct_ctl --rogue --stall did not say what it did"
[ "$(served srv direct)" = "$direct" ] || fail "the stalled subscriber took $(served srv direct) messages directly, the publisher wrote $direct"
grep -qE "direct mode: publisher [0-9]+'s direct connection stalled after $direct of the 1000000 frames its switch off named and nothing more came for 10 s" "$work/srv.err" ||
	fail "the stalled subscriber's log has no warning that its barrier lifted after 10 s"
echo "PASS: o. a direct publisher whose switch off named 1,000,000 frames ($direct written), its connection open: the subscriber's barrier lifted after 10 s with a warning; all $oks messages once and in order"

# p. A resend names the direct connection it repeats: a direct publisher
# (vb_direct_ctl --rogue --reconnect, its case i) writes 3 frames on a
# first connection to a real direct subscriber, switches off and closes
# it, writes 5 on a second, then sends RESENDs of the first connection's
# frames 4 and 5 tagged with its connect grant's nonce: the subscriber
# counts them on the first connection (3 taken) and delivers them; counted
# on the open second one (5 taken), as before the tag, they were dropped.
served_rogue recon --reconnect
[ "$(served srv resent)" = 2 ] && [ "$(served srv dup)" = 0 ] ||
	fail "the subscriber took $(served srv resent) resends and dropped $(served srv dup) as had: expected 2 and 0"
echo "PASS: p. resends of a closed direct connection, sent while the publisher's next one was open: counted on the connection their tag names, delivered once and in order"

broker_stop
echo "PASS: direct"
