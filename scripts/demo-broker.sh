#!/bin/bash
# demo-broker.sh - run inside the harness by scripts/demo.sh: verbusd on
# host 1, two subscribers on host 3 (one on a wildcard), a publisher on
# host 2; then the broker's own counters from its monitoring endpoint.
set -euo pipefail
. "$(dirname "$0")/../tests/rdma/lib.sh"
need_hosts 3
B=$VERBUS_HOST_1_ADDR P=$VERBUS_HOST_2_ADDR S=$VERBUS_HOST_3_ADDR
work=$(mktemp -d)
trap 'kill "$bpid" 2>/dev/null; rm -rf "$work"' EXIT
say() { echo; echo "== $*"; }

say "verbusd on $B:7700 (host 1), monitoring on 127.0.0.1:8222"
"$VERBUS_BIN/verbusd" --listen "$B:7700" >"$work/broker.log" 2>&1 &
bpid=$!
until curl -sf http://127.0.0.1:8222/healthz >/dev/null; do sleep 0.1; done

subs=()
sub() { # NAME PATTERN: a subscriber on host 3 expecting 10000 messages
	"$VERBUS_BIN/vb_pubsub" --connect "$B" --source "$S" --name "$1" \
		--sub "$2" --expect 10000 >"$work/$1" 2>&1 &
	subs+=($!)
	until grep -q ready "$work/$1"; do sleep 0.1; done
	echo "subscriber $1 on host 3 ($S) subscribed to '$2'"
}
sub exact orders.eu.paris
sub wild 'orders.>'

say "publisher on host 2 ($P): 10000 messages of 256 B to orders.eu.paris"
"$VERBUS_BIN/vb_pubsub" --connect "$B" --source "$P" --name pub \
	--pub orders.eu.paris --count 10000 --size 256 | grep "pub:"
for p in "${subs[@]}"; do wait "$p"; done
say "what the subscribers verified (every byte, every sequence number)"
grep -h "sub: received" "$work/exact" "$work/wild"

say "the broker's counters (curl http://127.0.0.1:8222/metrics)"
curl -s http://127.0.0.1:8222/metrics | grep -E '^verbus_(messages|bytes)_(in|out)_total |^verbus_(payload_copy|zero_copy)_bytes_total |^verbus_mr_registered_total '
kill -TERM "$bpid"
wait "$bpid"
say "broker log"
cat "$work/broker.log"
