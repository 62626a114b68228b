#!/bin/bash
# demo-broker.sh - run inside the harness by scripts/demo.sh: verbusd on
# host 1, a subscriber on host 3 and a publisher on host 2 (the verbus
# tool, as a user would run it), a request answered across hosts, a short
# `verbus bench`, the broker's counters, then a clean shutdown.
# VERBUS_SCHEME=tcp (scripts/demo.sh --tcp): all of it over TCP on
# 127.0.0.1, no RDMA hosts needed.
set -euo pipefail
. "$(dirname "$0")/../tests/rdma/lib.sh"
scheme=${VERBUS_SCHEME:-rdma}
if [ "$scheme" = rdma ]; then
	need_hosts 3
	B=$VERBUS_HOST_1_ADDR P=$VERBUS_HOST_2_ADDR S=$VERBUS_HOST_3_ADDR
else
	B=127.0.0.1 P=127.0.0.1 S=127.0.0.1
fi
work=$(mktemp -d)
bpid=
trap '[ -n "$bpid" ] && kill "$bpid" 2>/dev/null; rm -rf "$work"' EXIT
say() { echo; echo "== $*"; }
export VERBUS_URL="$scheme://$B:7700"
V=$VERBUS_BIN/verbus

say "verbusd on $VERBUS_URL (host 1), monitoring on 127.0.0.1:8222"
"$VERBUS_BIN/verbusd" --listen "$VERBUS_URL" >"$work/broker.log" 2>&1 &
bpid=$!
until curl -sf http://127.0.0.1:8222/healthz >/dev/null; do sleep 0.1; done

say "host 3 ($S): verbus sub 'orders.>' --count 3"
"$V" sub --source "$S" --count 3 'orders.>' >"$work/sub.out" 2>"$work/sub.err" &
spid=$!
until grep -qs subscribed "$work/sub.err"; do sleep 0.1; done
cat "$work/sub.err"

say "host 2 ($P): three messages with verbus pub"
"$V" pub --source "$P" orders.eu.paris 'croissants x12'
"$V" pub --source "$P" orders.us.nyc 'bagels x6'
printf 'coffee x2\n' | "$V" pub --source "$P" orders.eu.rome
wait "$spid"
say "what host 3 printed"
cat "$work/sub.out"

say "a responder on host 3, a request from host 2"
"$V" reply --source "$S" --count 1 svc.time "it is $(date +%T) on host 3" \
	>/dev/null 2>"$work/reply.err" &
rpid=$!
until grep -qs subscribed "$work/reply.err"; do sleep 0.1; done
"$V" req --source "$P" svc.time 'what time is it?'
wait "$rpid"

say "verbus bench (publisher on host 2, subscribers on host 3; small counts)"
"$V" bench --pub-source "$P" --sub-source "$S" --sizes 64 --count 10000 \
	--samples 1000 --subs 4

say "verbus stat"
"$V" stat --monitor http://127.0.0.1:8222

kill -TERM "$bpid"
wait "$bpid"
bpid=
say "broker log (last lines)"
tail -n 3 "$work/broker.log"
