#!/bin/bash
# verbusd over the TCP transport, on this machine's loopback (no RDMA
# device: label "tcp", run natively beside the unit tests): the verbus
# tool's pub and sub, a stream from a publisher to 4 subscribers (and
# large messages, 1 MiB and 8 MiB, to 8), the
# broker's fan-out to TCP subscribers gathered from the publisher's ring
# (payload_copy_bytes stays 0), a host paused under a subscriber that is
# behind (no slow consumer for it), messages too large for a subscriber
# (it is told, with sizes, and takes the next), /subsz with a subject
# test and paging, /healthz: 503 to a request that waited behind a 3 s
# stall and during a drain, a clean SIGTERM.  (The library's cases run
# over TCP as tcp.libverbus and tcp.auth: libverbus.sh and auth.sh with
# VERBUS_SCHEME=tcp.)
set -u
. "$(dirname "$0")/lib.sh"
VERBUS_SCHEME=tcp broker_env
url="$scheme://$brk:$port"
broker_start

# A stream to 4 subscribers, every message verified (verbus bench fanout).
"$VERBUS_BIN/verbus" bench -s "$url" --sizes 64,4K --count 20000 --subs 4 \
	fanout >"$work/bench.out" 2>&1 ||
	{ cat "$work/bench.out"; show broker "$work/broker.log"; fail "verbus bench fanout over tcp failed"; }
cat "$work/bench.out"
# Large messages (streams of chunks) to 8 subscribers, every one verified;
# the broker gathers each chunk from the publisher's ring (copies nothing).
"$VERBUS_BIN/verbus" bench -s "$url" --sizes 1M,8M --count 20 --subs 8 \
	fanout >"$work/lbench.out" 2>&1 ||
	{ cat "$work/lbench.out"; show broker "$work/broker.log"; fail "verbus bench fanout of large messages over tcp failed"; }
cat "$work/lbench.out"

"$VERBUS_BIN/verbus" sub -s "$url" --count 3 'greet.>' >"$work/sub.out" 2>&1 &
spid=$!
wait_for subscribed "$work/sub.out" 30 || fail "verbus sub never subscribed"
for i in 1 2 3; do
	"$VERBUS_BIN/verbus" pub -s "$url" greet.world "hello $i" ||
		fail "verbus pub $i over tcp failed"
done
wait "$spid" || { cat "$work/sub.out"; fail "verbus sub exited $?"; }
[ "$(grep -c '^hello [123]$' "$work/sub.out")" = 3 ] ||
	{ cat "$work/sub.out"; fail "verbus sub did not get its 3 messages"; }
echo "PASS: verbus pub and sub over tcp"

metrics=$(curl -sf "http://127.0.0.1:$mport/metrics") || fail "no /metrics"
out=$(awk '$1 == "verbus_messages_out_total" { print $2 }' <<<"$metrics")
copied=$(awk '$1 == "verbus_payload_copy_bytes_total" { print $2 }' <<<"$metrics")
echo "broker: $out messages delivered, $copied payload bytes copied"
[ "${out:-0}" -gt 20000 ] || fail "the broker delivered only ${out:-0} messages"
[ "$copied" = 0 ] || fail "the broker copied $copied payload bytes to tcp subscribers"
echo "PASS: zero-copy fan-out to tcp subscribers"

# A paused host (a VM stopped, the machine swapping) is no slow consumer:
# broker and subscriber stopped together for 3 s while the subscriber is
# behind (it stalls 1 s at its first message, within the 2 s block
# timeout) must not have the broker judge the subscriber for the time
# neither ran, at its first tick back; the broker must see it was away.
broker_stop
broker_start --set slow_consumer.block_timeout_ms=2000
client() {
	local name=$1
	shift
	timeout 120 "$VERBUS_BIN/vb_pubsub" --scheme tcp --connect 127.0.0.1 \
		--port "$port" --source 127.0.0.1 --name "$name" "$@" >"$work/$name.out" 2>&1
}
spawn paused --sub 'pause.>' --pause-ms 1000 --expect 20000 --size 4096
client ppub --pub pause.x --count 20000 --size 4096 &
ppid=$!
sleep 0.3
kill -STOP "$bpid" "$pid_paused"
sleep 0.5
# A health check that waits behind the stall is answered after it: 503,
# the loop was away (health.h), not an "ok" 2.5 s late.
curl -s --max-time 30 -o "$work/hz-stall.json" -w '%{http_code}' \
	"http://127.0.0.1:$mport/healthz" >"$work/hz-stall.code" &
hzpid=$!
sleep 2.5
kill -CONT "$bpid" "$pid_paused"
wait "$hzpid"
grep -qx 503 "$work/hz-stall.code" && grep -q '"event_loop"' "$work/hz-stall.json" ||
	{ cat "$work/hz-stall.code" "$work/hz-stall.json"; fail "/healthz asked during a 3 s stall did not say 503 event_loop"; }
echo "PASS: /healthz after a 3 s stall: 503, $(grep -o '"error": "[^"]*"' "$work/hz-stall.json")"
wait "$ppid" || { show ppub "$work/ppub.out"; show broker "$work/broker.log"; fail "the publisher failed"; }
reap paused
[ "$(received paused)" = 20000 ] || fail "the paused subscriber got $(received paused) of 20000"
[ "$(metric verbus_slow_disconnects_total)" = 0 ] || fail "a subscriber was disconnected for the time the host was paused"
late=$(metric verbus_event_loop_late_total)
[ "${late:-0}" -ge 1 ] || fail "the broker did not notice it was away"
# ... and "ok" again 2 s after the loop came back.
for _ in $(seq 50); do
	curl -sf "http://127.0.0.1:$mport/healthz" >/dev/null && break
	sleep 0.1
done
curl -sf "http://127.0.0.1:$mport/healthz" >/dev/null || fail "/healthz not ok again after the stall"
echo "PASS: a paused host is no slow consumer (the broker saw itself away $late time(s), $(metric verbus_event_loop_late_ms_total) ms)"

# A message larger than a subscriber takes is never dropped in silence:
# the broker takes 256 KiB, one subscriber 64 KiB (the default), another
# --max-msg 200K; two of 100 KiB and one small message published.
broker_stop
broker_start --set limits.max_msg=256K
"$VERBUS_BIN/verbus" sub -s "$url" --count 2 --timeout 5s big.x >"$work/small.out" 2>&1 &
p1=$!
"$VERBUS_BIN/verbus" sub -s "$url" --count 3 --raw --max-msg 200K big.x >"$work/large.out" 2>"$work/large.err" &
p2=$!
wait_for subscribed "$work/small.out" 30 && wait_for subscribed "$work/large.err" 30 ||
	fail "the big.x subscribers never subscribed"
"$VERBUS_BIN/verbus" pub -s "$url" big.x --size 100K --count 2 -q || fail "pub of 100 KiB failed"
"$VERBUS_BIN/verbus" pub -s "$url" big.x small -q || fail "pub small failed"
wait "$p2" || { cat "$work/large.err"; fail "the --max-msg 200K subscriber exited $?"; }
wait "$p1"
rc=$?
cat "$work/small.out"
[ "$rc" = 1 ] || fail "the 64 KiB subscriber exited $rc (expected 1: 1 of 2 messages)"
grep -q "^verbus: a message was too large for this subscriber: a message of 102405 bytes .* this connection takes 65536 at most" "$work/small.out" ||
	fail "the 64 KiB subscriber was not told why"
grep -q "^verbus: the broker dropped 2 messages in all for this subscriber (too large" "$work/small.out" ||
	fail "the 64 KiB subscriber was not told how many"
grep -qx small "$work/small.out" || fail "the small message after the large ones did not arrive"
[ "$(wc -c <"$work/large.out")" = $((2 * (102400 + 1) + 6)) ] || fail "the 200K subscriber got $(wc -c <"$work/large.out") bytes"
echo "PASS: messages too large for a subscriber: told why (once) and how many (2), the next one delivered; --max-msg 200K took both"

# /subsz: three subscribers; ?test= lists the two a message on subsz.a
# reaches (the broker's matching, a queue group's member included), paged
# one at a time; /healthz is ok.
curl -sf "http://127.0.0.1:$mport/healthz" >/dev/null || fail "/healthz not ok while serving"
"$VERBUS_BIN/verbus" sub -s "$url" -q workers 'subsz.>' >"$work/sz1.out" 2>&1 &
z1=$!
"$VERBUS_BIN/verbus" sub -s "$url" subsz.a >"$work/sz2.out" 2>&1 &
z2=$!
"$VERBUS_BIN/verbus" sub -s "$url" 'other.*' >"$work/sz3.out" 2>&1 &
z3=$!
for f in sz1 sz2 sz3; do
	wait_for subscribed "$work/$f.out" 30 || fail "verbus sub ($f) never subscribed"
done
for q in "test=subsz.a&limit=1" "test=subsz.a&limit=1&offset=1" "test=other.x" ""; do
	curl -sf "http://127.0.0.1:$mport/subsz?$q"
	echo
done >"$work/subsz.json" || fail "no /subsz"
python3 - "$work/subsz.json" <<'PY' || { cat "$work/subsz.json"; fail "/subsz: wrong subscriptions"; }
import json, sys
dec, text, pages = json.JSONDecoder(), open(sys.argv[1]).read(), []
i = 0
while i < len(text):
    if text[i].isspace():
        i += 1
        continue
    o, i = dec.raw_decode(text, i)
    pages.append(o)
p1, p2, other, every = pages
assert p1["total"] == 2 and p2["total"] == 2, (p1["total"], p2["total"])
assert len(p1["subscriptions_list"]) == 1 and len(p2["subscriptions_list"]) == 1
got = sorted((s["subject"], s.get("qgroup", ""), s["name"])
             for s in p1["subscriptions_list"] + p2["subscriptions_list"])
assert got == [("subsz.>", "workers", "verbus-sub"), ("subsz.a", "", "verbus-sub")], got
assert p1["subscriptions_list"][0]["cid"] != p2["subscriptions_list"][0]["cid"]
assert [s["subject"] for s in other["subscriptions_list"]] == ["other.*"]
assert every["total"] == 3 and every["num_subscriptions"] == 3, every
PY
echo "PASS: /subsz: ?test=subsz.a gives its 2 of 3 subscriptions, one page each"

# /healthz during a drain: a subscriber stopped with deliveries queued
# for it holds the shutdown (up to 5 s); meanwhile /healthz says 503
# draining.  Then it is killed, and the broker exits 0.
kill -STOP "$z2"
"$VERBUS_BIN/verbus" pub -s "$url" subsz.a --size 4K --count 2000 -q >"$work/szpub.out" 2>&1 &
zp=$!
pending=0
for _ in $(seq 100); do
	pending=$(curl -sf "http://127.0.0.1:$mport/connz" |
		python3 -c 'import json, sys; print(max(c["pending"] for c in json.load(sys.stdin)["connections"]))')
	[ "${pending:-0}" -gt 0 ] && break
	sleep 0.1
done
[ "${pending:-0}" -gt 0 ] || fail "no delivery queued for the stopped subscriber"
kill -TERM "$bpid"
code=
for _ in $(seq 40); do
	code=$(curl -s -o "$work/hz-drain.json" -w '%{http_code}' "http://127.0.0.1:$mport/healthz")
	[ "$code" = 503 ] && break
	sleep 0.05
done
[ "$code" = 503 ] && grep -q '"draining"' "$work/hz-drain.json" ||
	{ cat "$work/hz-drain.json"; fail "/healthz during the drain: $code"; }
echo "PASS: /healthz during the drain ($pending deliveries queued): 503, $(grep -o '"error": "[^"]*"' "$work/hz-drain.json")"
kill -9 "$z2" "$zp" 2>/dev/null
wait "$bpid" || { show broker "$work/broker.log"; fail "verbusd exited $? after the drain"; }
bpid=
wait "$z1" "$z3" "$z2" "$zp" 2>/dev/null
echo "PASS: verbusd over tcp"
