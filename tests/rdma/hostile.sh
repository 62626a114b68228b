#!/bin/bash
# Hostile peers (issue 21): verbusd on host 1 with tight limits; a
# legitimate stream (vb_pubsub, host 2 -> host 3, 20000 messages of 4 KiB
# every 2 ms) flows while vb_hostile (tests/rdma/hostile.c, raw verbs)
# attacks from hosts 2 and 3, one attack after another: a subscriber that
# withholds credit, connections that never say hello (past the per-address
# cap, then past max_conns), a client name and an Error reason that forge
# log lines, RDMA WRITEs outside the client's ring, malformed Hellos,
# messages before the Hello, a Ping flood.  Then: the stream arrived whole
# and in time; no log line starts with an attacker's text, and the log
# names each attack's outcome; the broker's counters agree; everything the
# attackers cost is given back; SIGTERM stops the broker cleanly.
#
# A failed check stops the test (lib.sh's fail), as everywhere;
# VERBUS_HOSTILE_KEEP_GOING=1 prints it and carries on, so that one run
# shows every check (the exit status is still 1).  VERBUS_HOSTILE_SLACK_S
# (5) is the least allowance for the stream beyond its nominal time and
# block_timeout (40 % of the nominal time where that is more).
set -u
. "$(dirname "$0")/lib.sh"
broker_env 'touch "$work/sampling.stop" 2>/dev/null'

KEEP=${VERBUS_HOSTILE_KEEP_GOING:-0}
SLACK_S=${VERBUS_HOSTILE_SLACK_S:-5}
MAX_CONNS=16 HS_MS=2000 PER_ADDR=8 BLOCK_MS=2000
# 20,000 x 2 ms: the stream outlasts every attack (about 25 s of them).
COUNT=20000 SIZE=4096 INTERVAL_US=2000
CAL_COUNT=200 # the calibration stream (see below)
SILENT_N=12   # per batch: more than either limit leaves room for
SILENT_HOLD_S=6
failures=0

pass() {
	echo "PASS: $*"
}

# bad MSG: a check failed.  Stop here, with the broker's log, unless
# VERBUS_HOSTILE_KEEP_GOING=1: then say so and carry on.
bad() {
	if [ "$KEEP" = 1 ]; then
		echo "FAIL: $*" >&2
		failures=$((failures + 1))
		return
	fi
	show broker "$work/broker.log"
	fail "$*"
}

# check MSG COMMAND...: PASS: MSG if COMMAND succeeds, else bad MSG.
check() {
	local msg=$1
	shift
	if "$@"; then pass "$msg"; else bad "$msg"; fi
}

# num VALUE: VALUE if it is a number, else -1 (a metric the broker does
# not have, a result line that never came), so that comparisons fail
# rather than break.
num() {
	[[ "${1:-}" =~ ^[0-9]+$ ]] && echo "$1" || echo -1
}

# resw NAME KEY: KEY's value in the result line of $work/NAME.out.
resw() {
	awk -v k="$2" '$1 == "hostile:" && $3 == "result" {
		for (i = 4; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) v = kv[2] }
	} END { print v }' "$work/$1.out" 2>/dev/null
}

# res NAME KEY: the same, for a number.
res() {
	num "$(resw "$1" "$2")"
}

live_mrs() {
	echo $(($(num "$(metric verbus_mr_registered_total)") - $(num "$(metric verbus_mr_deregistered_total)")))
}

broker_qps() {
	rdma resource show qp 2>/dev/null | grep -c "pid $bpid "
}

broker_fds() {
	ls "/proc/$bpid/fd" 2>/dev/null | wc -l
}

flowing() {
	if kill -0 "$pubpid" 2>/dev/null; then
		echo "while the legitimate stream flows"
	else
		echo "after the legitimate stream ended"
	fi
}

# attack NAME HOST ARGS...: vb_hostile ARGS from HOST, output in
# $work/NAME.out and shown; bad() unless the attack was made (exit 0).
attack() {
	local name=$1 src=$2 rc
	shift 2
	echo "===== $name: vb_hostile $* from $src, $(flowing)"
	timeout 120 "$VERBUS_BIN/vb_hostile" "$@" --connect "$brk" \
		--port "$port" --source "$src" >"$work/$name.out" 2>&1
	rc=$?
	cat "$work/$name.out"
	[ "$rc" = 0 ] || bad "vb_hostile $1 from $src exited $rc: the attack was not made"
}

# legit HOST NAME ARGS...: vb_pubsub from HOST, output in $work/NAME.out.
legit() {
	local src=$1 name=$2
	shift 2
	timeout 600 "$VERBUS_BIN/vb_pubsub" --connect "$brk" --port "$port" \
		--source "$src" --name "$name" --timeout 300 "$@" \
		>"$work/$name.out" 2>&1
}

# ready NAME: wait until the background vb_pubsub NAME is ready.
ready() {
	wait_for "ready" "$work/$1.out" 60 || {
		show "$1" "$work/$1.out"
		fail "$1 never became ready"
	}
}

# peak NAME: the most of NAME's silent connections open at once, from
# their open and drop times (one clock: the guest's hosts share it).
peak() {
	awk '$1 == "hostile:" && $3 == "conn" && $5 == "open" { print $6, 1; print $7, -1 }' \
		"$work/$1.out" | sort -k1,1g -k2,2n |
		awk '{ n += $2; if (n > m) m = n } END { print m + 0 }'
}

# open_clients: connections open now (handshake done), for the room left.
open_clients() {
	num "$(metric verbus_connections)"
}

echo "===== verbusd on $brk with the hostile settings"
# Each setting on its own first: one the broker does not know is a
# failure, and (KEEP_GOING) the broker then runs without it.
bargs=()
for kv in limits.max_conns=$MAX_CONNS limits.handshake_timeout_ms=$HS_MS \
	limits.max_handshakes_per_addr=$PER_ADDR \
	slow_consumer.block_timeout_ms=$BLOCK_MS; do
	if "$VERBUS_BIN/verbusd" --set "$kv" --print-config >/dev/null 2>"$work/set.err"; then
		bargs+=(--set "$kv")
	else
		bad "verbusd refuses --set $kv: $(head -c 160 "$work/set.err")"
	fi
done
[ "${#bargs[@]}" = 8 ] && pass "verbusd takes the hostile settings"
broker_start "${bargs[@]}"
# Before any client: what everything the attacks cost must come back to.
fds0=$(broker_fds) qps0=$(broker_qps) mrs0=$(live_mrs) conns0=$(open_clients)
echo "before any client: conns $conns0 qps $qps0 live MRs $mrs0 fds $fds0"

# The stream's nominal time is COUNT intervals, but a paced publisher
# sleeps between messages, and in the emulated guest every wake-up costs
# far more than 2 ms: measure what this machine makes of the same stream,
# undisturbed, and take the longer.
echo "===== calibration: $CAL_COUNT messages of $SIZE B every $INTERVAL_US us, $a -> $b"
legit "$b" cal-sub --sub legit.cal --expect "$CAL_COUNT" --idle-ms 20000 &
calpid=$!
ready cal-sub
legit "$a" cal-pub --pub legit.cal --count "$CAL_COUNT" --size "$SIZE" \
	--interval-us "$INTERVAL_US" || { show cal-pub "$work/cal-pub.out"; fail "the calibration publisher failed"; }
wait "$calpid" || { show cal-sub "$work/cal-sub.out"; fail "the calibration subscriber failed"; }
cal=$(sed -nE 's/.*first to last message ([0-9.]+) s.*/\1/p' "$work/cal-sub.out")
nominal=$(awk -v c="$cal" -v n="$CAL_COUNT" -v N="$COUNT" -v i="$INTERVAL_US" \
	'BEGIN { t = c / (n - 1) * N; if (t < N * i / 1e6) t = N * i / 1e6; printf "%.1f", t }')
echo "calibration: $CAL_COUNT messages in ${cal:-?} s: the stream's nominal time here is $nominal s ($((COUNT * INTERVAL_US / 1000000)) s at full speed)"

echo "===== the legitimate stream: $COUNT messages of $SIZE B every $INTERVAL_US us, $a -> $b"
# --idle-ms: a subscriber that hears nothing for 20 s reports what it has
# rather than waiting for --timeout.
legit "$b" legit-sub --sub legit.stream --expect "$COUNT" --idle-ms 20000 &
subpid=$!
ready legit-sub
legit "$a" legit-pub --pub legit.stream --count "$COUNT" --size "$SIZE" \
	--interval-us "$INTERVAL_US" &
pubpid=$!
in0=$(num "$(metric verbus_messages_in_total)")
for _ in $(seq 300); do
	[ "$(num "$(metric verbus_messages_in_total)")" -ge $((in0 + 20)) ] && break
	sleep 0.1
done
echo "the stream flows: $(($(num "$(metric verbus_messages_in_total)") - in0)) messages in so far"

# 1. A subscriber to the stream that takes two frames and returns nothing.
# Meanwhile the broker's messages in are sampled: how long the stream
# stood still (a withholder must not pin the publisher's ring for longer
# than block_timeout).
rm -f "$work/sampling.stop"
# (One curl a sample and nothing else forked: in the emulated guest each
# process costs a good part of a second.)
(
	while [ ! -e "$work/sampling.stop" ]; do
		m=$(curl -sf "http://127.0.0.1:$mport/metrics")
		[[ "$m" =~ verbus_messages_in_total\ ([0-9]+) ]] &&
			echo "$EPOCHREALTIME ${BASH_REMATCH[1]}"
		sleep 0.5
	done
) >"$work/in.samples" 2>/dev/null &
sampler=$!
# Held up to 15 s: at the emulated guest's pace the publisher's 1 MiB ring
# on the broker takes several seconds to fill, and a broker that let the
# withholder pin it must be seen to stall (a correct one cuts it at 2 s).
attack withhold "$b" withhold legit.stream --hold-s 15 --name hostile-withhold
sleep 1
touch "$work/sampling.stop"
wait "$sampler"
still=$(awk '{ if (NR == 1 || $2 != v) { v = $2; t0 = $1 } else if ($1 - t0 > m) m = $1 - t0 }
	END { printf "%d", m * 1000 }' "$work/in.samples")
echo "the broker's messages in, every 0.5 s meanwhile: $(wc -l <"$work/in.samples") samples," \
	"$(head -n 1 "$work/in.samples" | cut -d' ' -f2) -> $(tail -n 1 "$work/in.samples" | cut -d' ' -f2);" \
	"the longest stand-still $still ms"
sc=$(num "$(metric verbus_slow_consumers_total)")
sd=$(num "$(metric verbus_slow_disconnects_total)")
stall=$(res withhold stall_ms)
check "the withholding subscriber was found slow: verbus_slow_consumers_total $sc" \
	[ "$sc" -ge 1 ]
check "and disconnected (block's fallback): verbus_slow_disconnects_total $sd" \
	[ "$sd" -ge 1 ]
check "it was disconnected $stall ms into its stall (at most $BLOCK_MS + 1500)" \
	[ "$(res withhold disconnected)" = 1 -a "$stall" -ge 0 -a "$stall" -le $((BLOCK_MS + 1500)) ]
check "meanwhile the stream stood still at the broker for at most $still ms (at most $BLOCK_MS + 1500)" \
	[ "$still" -le $((BLOCK_MS + 1500)) ]

# 2. Connections that never say hello.  First past the per-address cap:
# one batch from host 2, with room under max_conns for all of it.  Then
# past max_conns: open connections leave room for fewer than the cap, and
# a batch from the other host asks for more.  Two batches at once would
# race the handshake timeout (in the emulated guest an accept can take
# 200 ms, and the first silent connections go after 2 s); each phase here
# is decided, accepted and refused, within a fraction of that.
base1=$(open_clients)
attack silent-cap "$a" silent "$SILENT_N" --hold-s "$SILENT_HOLD_S"
peak1=$(peak silent-cap)
echo "silent-cap: at most $peak1 open at once from $a, beside $base1 clients; $(res silent-cap accepted) accepted in all"
check "silent connections accepted from one address within the cap of $PER_ADDR: $(res silent-cap accepted) ($peak1 at once)" \
	[ "$(res silent-cap accepted)" -le "$PER_ADDR" -a "$(res silent-cap accepted)" -ge 1 ]
check "the per-address cap refused the rest, saying why: reason 2 x$(res silent-cap reason2) of $(res silent-cap rejected) rejected" \
	[ "$(res silent-cap reason2)" -ge 1 -a "$(res silent-cap reason2)" = "$(res silent-cap rejected)" ]

nfill=$((MAX_CONNS - $(open_clients) - (PER_ADDR - 2)))
# From host 2 (host 3 only for what the cap would not let host 2 open at
# once), so that the batch's own address has nothing else in handshake.
nfill_a=$((nfill < PER_ADDR ? nfill : PER_ADDR))
nfill_b=$((nfill - nfill_a))
echo "===== $nfill open connections ($nfill_a from $a, $nfill_b from $b), so that max_conns leaves room for $((PER_ADDR - 2))"
legit "$a" filler-a --sub hostile.filler --conns "$nfill_a" --expect 1 --idle-ms 0 &
fillpid_a=$!
ready filler-a
fillpid_b=
if [ "$nfill_b" -gt 0 ]; then
	legit "$b" filler-b --sub hostile.filler --conns "$nfill_b" --expect 1 --idle-ms 0 &
	fillpid_b=$!
	ready filler-b
fi
base2=$(open_clients)
attack silent-max "$b" silent "$SILENT_N" --hold-s "$SILENT_HOLD_S"
peak2=$(peak silent-max)
room=$((MAX_CONNS - base2))
echo "silent-max: at most $peak2 open at once from $b, beside $base2 clients; $(res silent-max accepted) accepted in all"
legit "$b" filler-pub --pub hostile.filler --count 1 || bad "the filler's publisher failed"
for p in $fillpid_a $fillpid_b; do
	wait "$p" || bad "the filler connections failed: $(cat "$work"/filler-*.out)"
done
check "connections open at once never above max_conns $MAX_CONNS: $peak1 + $base1, then $peak2 + $base2" \
	[ $((peak1 + base1)) -le "$MAX_CONNS" -a $((peak2 + base2)) -le "$MAX_CONNS" -a "$peak2" -ge 1 ]
check "max_conns, not the cap, refused the rest, saying why: reason 1 x$(res silent-max reason1) of $(res silent-max rejected) rejected (room $room)" \
	[ "$(res silent-max reason1)" -ge 1 -a "$(res silent-max reason1)" = "$(res silent-max rejected)" ]
acc=$(($(res silent-cap accepted) + $(res silent-max accepted)))
dropped=$(($(res silent-cap dropped) + $(res silent-max dropped)))
hst=$(num "$(metric verbus_handshake_timeouts_total)")
check "verbus_handshake_timeouts_total $hst = the $acc silent connections accepted, all dropped ($dropped: $(res silent-cap drop_min_ms)-$(res silent-cap drop_max_ms) ms, $(res silent-max drop_min_ms)-$(res silent-max drop_max_ms) ms after they opened)" \
	[ "$hst" = "$acc" -a "$dropped" = "$acc" ]

# 3. Forged log lines: a client name, and an Error's reason (code 7 as
# asked, a close the transport may keep quiet about, and code 4, a
# protocol error, which it logs).
attack forge-name "$a" forge-name
attack forge-error "$a" forge-error --code 7
attack forge-error-4 "$b" forge-error --code 4

# 4. Writes outside the client's own ring.
attack write-outside "$b" write-outside
check "writes outside the ring failed ($(resw write-outside past_status), $(resw write-outside before_status)) and the broker closed both connections" \
	[ "$(resw write-outside past_status)" = remote_access_error -a \
	"$(resw write-outside before_status)" = remote_access_error -a \
	"$(res write-outside past_disconnected)" = 1 -a "$(res write-outside before_disconnected)" = 1 ]

# 5. Malformed Hellos, messages before the Hello, a Ping flood.
attack bad-ring "$a" bad-ring
attack zero-max-msg "$b" zero-max-msg
attack zero-credits "$a" zero-credits
attack early-credit "$b" early-credit
attack early-subscribe "$a" early-subscribe
attack ping-flood "$b" ping-flood 1000
refused=1 answers=
for n in bad-ring zero-max-msg zero-credits early-credit early-subscribe; do
	answers="$answers $n: $(resw "$n" answer),"
	case $(resw "$n" answer) in
	error | disconnect) ;;
	*) refused=0 ;;
	esac
done
check "malformed hellos and messages before the hello were refused ($answers the early subscriber got $(res early-subscribe writes) writes)" \
	[ "$refused" = 1 -a "$(res early-subscribe writes)" = 0 ]

echo "===== the legitimate stream"
wait "$pubpid"
rc_pub=$?
wait "$subpid"
rc_sub=$?
show legit-pub "$work/legit-pub.out"
show legit-sub "$work/legit-sub.out"
got=$(sed -nE 's/.*received ([0-9]+) messages.*/\1/p' "$work/legit-sub.out")
secs=$(sed -nE 's/.*first to last message ([0-9.]+) s.*/\1/p' "$work/legit-sub.out")
# The slack: a few seconds, or 40 % of the nominal time where the
# emulation stretches it: the attacks share the guest's two vCPUs with
# the stream (in the ASan build a run took 15 % longer than calibrated,
# with no stall).  A sanity bound only: that no one holds the stream is
# the stand-still check's job, sampled every second above.
limit=$(awk -v n="$nominal" -v b="$BLOCK_MS" -v s="$SLACK_S" \
	'BEGIN { if (n * 0.4 > s) s = n * 0.4; printf "%.1f", n + b / 1000 + s }')
check "the legitimate subscriber got all $COUNT in order (publisher exit $rc_pub, subscriber exit $rc_sub, received ${got:-?})" \
	[ "$rc_pub" = 0 -a "$rc_sub" = 0 -a "${got:-0}" = "$COUNT" ]
check "the stream took ${secs:-?} s from first to last message, at most $limit s (nominal $nominal s + block_timeout + slack)" \
	awk -v s="${secs:-}" -v l="$limit" 'BEGIN { exit !(s != "" && s + 0 <= l) }'

echo "===== the broker's log"
log=$work/broker.log
grep FORGED "$log" >"$work/forged"
echo "lines with FORGED (the forgeries as the broker logged them): $(wc -l <"$work/forged")"
cat "$work/forged"
# Every line that carries the attacker's text must carry it escaped, and
# none may start with it.
unescaped=$(grep -cvF '\n' "$work/forged")
# (A space after each: the broker's own "info: conn cid 15 x\n..." is
# fine, its line starting with the forged "cid 1 " would not be.)
started=$(grep -cE '^(info: conn cid 1 |warn: conn legit-pub )' "$work/forged")
check "no log line starts with text an attacker chose ($(wc -l <"$work/forged") with FORGED: $unescaped without the escaped newline, $started starting like the broker's own lines)" \
	[ "$unescaped" = 0 -a "$started" = 0 ]
check "the log names the withholding client a slow consumer" \
	grep -q "slow consumer.*hostile-withhold\|hostile-withhold.*slow consumer" "$log"
hlines=$(grep -c "handshake timeout" "$log")
check "$hlines log lines say handshake timeout, for $acc silent connections accepted" \
	[ "$hlines" -ge "$acc" -a "$acc" -ge 1 ]
check "the log says a write landed outside its ring" grep -q "outside its ring" "$log"

echo "===== afterwards: everything given back"
for _ in $(seq 300); do
	[ "$(open_clients)" = 0 ] && [ "$(broker_qps)" = "$qps0" ] &&
		[ "$(live_mrs)" = "$mrs0" ] && break
	sleep 0.1
done
conns=$(open_clients) qps=$(broker_qps) mrs=$(live_mrs) fds=$(broker_fds)
echo "now: conns $conns qps $qps live MRs $mrs fds $fds (before: $conns0 $qps0 $mrs0 $fds0)"
check "the broker's connections ($conns), QPs ($qps), live memory regions ($mrs) and fds ($fds) are back to $conns0, $qps0, $mrs0, $fds0" \
	[ "$conns" = 0 -a "$qps" = 0 -a "$mrs" = 0 -a "$conns" = "$conns0" -a \
	"$qps" = "$qps0" -a "$mrs" = "$mrs0" -a "$fds" = "$fds0" ]
if kill -0 "$bpid" 2>/dev/null; then
	kill -TERM "$bpid"
	wait "$bpid"
	rc=$?
	bpid=
	check "the broker ran to the end and SIGTERM stopped it cleanly (exit $rc)" [ "$rc" = 0 ]
else
	bad "the broker died during the attacks"
fi
if [ "$failures" -gt 0 ]; then
	show broker "$log"
	fail "$failures checks failed (VERBUS_HOSTILE_KEEP_GOING=1)"
fi
echo "PASS: hostile peers"
