#!/bin/bash
# bench-compare-guest.sh - the part of scripts/bench-compare.sh that runs on
# the RDMA hosts (inside the test guest, or natively): raw verbs (perftest),
# the raw two-hop floor (vb_relay_bench), UCX (ucx_perftest), NATS
# (nats-server + vb_nats_bench), Verbus (verbusd + verbus bench), Verbus
# direct (issue 19: verbus bench --direct, the publisher writing into the
# subscribers' rings, the broker only negotiating) and Verbus over TCP (the
# same with tcp:// URLs, beside NATS's TCP) at 64 B, 1 KiB and 64 KiB; the
# cluster rows (issue 15): Verbus across two brokers of a
# three-broker cluster, a NATS cluster of three, and the raw floor of those
# three hops (two relays in a chain); then the report
# (tests/bench/report.py: results.md, results.csv, results.png).
#
#   bench-compare-guest.sh [--smoke] [--out DIR]
#
# Needs three hosts (tests/vm/rxe-run --hosts 3) and VERBUS_BIN.  Host 1
# runs the brokers (verbusd over RDMA, then a verbusd listening on TCP
# only, nats-server) and the raw relay; host 2 the
# publishers, host 3 the subscribers; perftest and UCX run between hosts 2
# and 3.  The clusters have a broker (verbusd, nats-server) on each of
# hosts 1, 2 and 3, the relay chain a relay on hosts 1 and 2: publisher on
# host 2 to the broker on host 1, subscribers on host 3 to the broker on
# host 2, every hop across a link.  ZooKeeper (tests/rdma/zk.sh, for the
# Verbus cluster) starts in the background first: its JVM takes ~14 s in
# the guest, spent while the other rows run.  Without
# --out the results go to a temporary directory and only the table is
# printed (what the smoke test does).  Nothing here fails on a number:
# only a tool that does not run, or a lost message, makes the status 1.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/tests/rdma/lib.sh"
. "$ROOT/tests/rdma/zk.sh"

smoke=0 out=
while [ $# -gt 0 ]; do
	case $1 in
	--smoke) smoke=1 ;;
	--out) out=$2; shift ;;
	*) echo "usage: bench-compare-guest.sh [--smoke] [--out DIR]" >&2; exit 2 ;;
	esac
	shift
done
need_hosts 3
for t in ib_write_lat ib_write_bw ib_send_lat ucx_perftest nats-server \
	gnuplot python3 curl "$VERBUS_BIN/verbusd" "$VERBUS_BIN/verbus" \
	"$VERBUS_BIN/vb_nats_bench" "$VERBUS_BIN/vb_relay_bench" \
	"$VERBUS_BIN/vb_one_hop"; do
	command -v "$t" >/dev/null ||
		fail "$t is missing: run scripts/setup.sh (vb_nats_bench needs libnats-dev)"
done

B=$VERBUS_HOST_1_ADDR P=$VERBUS_HOST_2_ADDR S=$VERBUS_HOST_3_ADDR
# The clusters' brokers: K on host K.
H=(- "$VERBUS_HOST_1_ADDR" "$VERBUS_HOST_2_ADDR" "$VERBUS_HOST_3_ADDR")
pdev=$(rdmadev_of "$P") sdev=$(rdmadev_of "$S")
pnet=$(netdev_of "$P")
[ -n "$pdev" ] && [ -n "$sdev" ] && [ "$pdev" != "$sdev" ] ||
	fail "hosts 2 and 3 need distinct RDMA devices (got '$pdev', '$sdev')"

W=$(mktemp -d)
tmp_out=0
if [ -z "$out" ]; then
	out=$W/out
	tmp_out=1
fi
mkdir -p "$out" || fail "cannot create $out"
pids=()
rules=()
zkbg=0 zkjob=''
cleanup() {
	local p r
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for r in "${rules[@]}"; do
		# shellcheck disable=SC2086 # a rule's selectors, split on purpose
		ip rule del $r 2>/dev/null
	done
	zk_load
	zk_stop
	rm -rf "$W"
}
trap cleanup EXIT

# ZooKeeper for the Verbus cluster, in the background (its JVM takes ~14 s
# under TCG), waited for by zk_load when the cluster rows come; zk_start's
# variables come back through a file.  The smoke starts it here, while the
# other rows run; the full run just before the cluster rows, so that no
# JVM starting up takes the vCPUs from a measurement.
zk_start_bg() {
	zkbg=1
	(zk_start >"$W/zk.log" 2>&1 &&
		echo "ZK_PID=$ZK_PID ZK_CONNECT=$ZK_CONNECT ZK_DIR=$ZK_DIR ZK_OWN_DIR=$ZK_OWN_DIR ZK_EXTERNAL=$ZK_EXTERNAL" \
			>"$W/zk.env") &
	zkjob=$!
}
[ "$smoke" = 1 ] && zk_start_bg
# zk_load: wait for that start; 0, with its variables set, if it serves.
zk_load() {
	[ "$zkbg" = 1 ] || return 1
	[ -n "$zkjob" ] && { wait "$zkjob" 2>/dev/null; zkjob=; }
	[ -s "$W/zk.env" ] || return 1
	# shellcheck disable=SC2046 # NAME=VALUE words
	eval $(cat "$W/zk.env")
	rm -f "$W/zk.env"
	return 0
}

SIZES="64 1024 65536"
RANKS="50 99 99.9"
# Verbus's connections accept a 64 KiB payload and its subject: verbusd
# with limits.max_msg=128K, verbus bench with --max-msg 128K.
VB_MAX_MSG=128K
# Counts: latency iterations (perftest, UCX) and samples (NATS, Verbus);
# throughput messages; the _BIG ones at 64 KiB, where one message takes
# milliseconds under emulation.
if [ "$smoke" = 1 ]; then
	# Every tool and both ends of the size range, once each.
	SIZES="64 65536" RANKS=50
	LAT_N=200 LAT_BIG_N=50 BW_N=2000 BW_BIG_N=200
	SAMPLES=200 SAMPLES_BIG=50 COUNT=2000 COUNT_BIG=100
	SAMPLES3=20 SAMPLES3_BIG=10 WARMUP3=10
	# The Verbus cluster event-driven and busy-polling: adaptive polling
	# is the single broker's smoke's, and each mode costs a cluster.
	CLUSTER_MODES="events busy"
	# Direct mode event-driven only: a run of verbus bench per test, ~1.7 s
	# each in the guest, 12 s in all (busy-polling too took 30 s).
	DIRECT_MODES=events
else
	LAT_N=10000 LAT_BIG_N=1000 BW_N=200000 BW_BIG_N=3000
	SAMPLES=10000 SAMPLES_BIG=1000 COUNT=100000 COUNT_BIG=3000
	SAMPLES3=1000 SAMPLES3_BIG=300 WARMUP3=100
	CLUSTER_MODES="events spin busy"
	DIRECT_MODES="events spin busy"
fi
# Samples of the busy-polling runs over three hops (the relay chain, the
# Verbus cluster busy-polling): three spinning parties on the guest's two
# vCPUs take turns by the scheduler's time slice, ~16 ms a message (a
# smoke of 2026-12-03), so the full counts would take an hour.
FANOUT=8
CSV=$out/results.csv
echo "tool,test,size,payload,metric,value" >"$CSV"

T0=$(date +%s)
say() { echo "bench-compare: [$(($(date +%s) - T0)) s] $*" >&2; }
broken() { # WHAT LOGFILE: a tool did not run (noted in a file: this may
	# run in a $(...) subshell)
	say "FAILED: $1"
	[ -f "$2" ] && tail -n 20 "$2" >&2
	echo "$1" >>"$W/failed"
}
# listening PORT: wait (at most 30 s) until a TCP server listens on PORT;
# a tool's server can take seconds to start under emulation.
listening() {
	local i
	for ((i = 0; i < 300; i++)); do
		ss -Hltn "sport = :$1" 2>/dev/null | grep -q . && return 0
		sleep 0.1
	done
	return 1
}
# rec TOOL TEST SIZE PAYLOAD METRIC VALUE
rec() { [ -n "$6" ] && echo "$1,$2,$3,$4,$5,$6" >>"$CSV"; }

# rec_bench TOOL SIZE: the CSV rows of verbus bench, vb_nats_bench or
# vb_relay_bench (the same columns) on stdin
rec_bench() {
	local tool=$1 size=$2
	while IFS=, read -r test psize subs msgs secs rate mb min mean p50 p90 \
		p99 p999 max lost dup bad; do
		[ "$test" = test ] && continue
		case $test in
		latency | rtt)
			rec "$tool" "$test" "$size" "$psize" p50_us "$p50"
			rec "$tool" "$test" "$size" "$psize" p99_us "$p99"
			rec "$tool" "$test" "$size" "$psize" p999_us "$p999"
			;;
		*)
			rec "$tool" "$test" "$size" "$psize" msgs_per_s "${rate%.*}"
			rec "$tool" "$test" "$size" "$psize" mb_per_s "$mb"
			;;
		esac
		[ "$((lost + dup + bad))" = 0 ] ||
			broken "$tool $test $psize: $lost lost, $dup duplicated, $bad bad" /dev/null
	done
}

# ---- the machine ----------------------------------------------------------
{
	echo "date: $(date -u +%FT%TZ)"
	echo "mode: ${VERBUS_RXE_MODE:-?} (vm: the QEMU test guest, tests/vm/rxe-run)"
	echo "kernel: $(uname -srvm)"
	echo "kernel parameters: $(cat /proc/cmdline)$(grep -qw idle=poll /proc/cmdline &&
		echo " (idle=poll: idle CPUs poll instead of halting; bench-compare.sh --idle-poll)")"
	echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(nproc) CPUs"
	echo "devices: publisher $pdev ($P), subscriber $sdev ($S), broker $(rdmadev_of "$B") ($B)"
	echo "device: $(ibv_devinfo -d "$pdev" | awk '/transport:|active_mtu:|link_layer:/ { printf "%s %s ", $1, $2 }')"
	echo "netdev mtu: $(cat "/sys/class/net/$pnet/mtu")"
	echo "perftest: $(dpkg-query -W -f='${Version}' perftest 2>/dev/null)"
	echo "ucx: $(ucx_info -v | sed -n 's/^# Version //p')"
	echo "nats-server: $(nats-server --version 2>&1 | head -1)"
	echo "libnats: $(dpkg-query -W -f='${Version}' libnats-dev 2>/dev/null)"
	echo "verbus: $("$VERBUS_BIN/verbus" --version 2>/dev/null | head -1)"
	echo "counts: latency $LAT_N iterations (perftest, UCX) and $SAMPLES" \
		"samples (NATS, Verbus), at 64 KiB $LAT_BIG_N and $SAMPLES_BIG;" \
		"throughput $BW_N messages (perftest, UCX) and $COUNT (NATS," \
		"Verbus), at 64 KiB $BW_BIG_N and $COUNT_BIG; fan-out to" \
		"$FANOUT subscribers; busy-polling over three hops $SAMPLES3" \
		"samples, at 64 KiB $SAMPLES3_BIG; Verbus direct: $DIRECT_MODES"
	[ "$smoke" = 1 ] && echo "smoke: tiny counts, the figures mean nothing"
} >"$out/machine.txt"
cat "$out/machine.txt" >&2

# ---- raw verbs: perftest between hosts 2 and 3 ----------------------------
say "perftest"
pt() { # TOOL SIZE ITERS: server on host 3, client on host 2; last data line
	local log=$W/pt.$1.$2 port=$((18515 + RANDOM % 2000)) spid
	timeout 300 "$1" -d "$sdev" -F -p "$port" -s "$2" -n "$3" \
		>"$log.srv" 2>&1 &
	spid=$!
	listening "$port"
	timeout 300 "$1" -d "$pdev" -F -p "$port" -s "$2" -n "$3" "$S" \
		>"$log" 2>&1 || kill "$spid" 2>/dev/null
	wait "$spid"
	grep -E '^ +[0-9]+ +[0-9]+' "$log" | tail -1 | grep . ||
		{ broken "$1 -s $2" "$log"; return 1; }
}
# ptok LINE FIELD: the LINE's FIELD-th figure is a positive, finite number.
# perftest sometimes mistimes a run under emulation and prints 0.00 or
# inf (seen with idle=poll, and in a plain run of 2026-11-27): such a
# figure is not a measurement.
ptok() {
	echo "$1" | awk -v f="$2" '{ v = $f } END {
		exit !(v ~ /^[0-9.]+$/ && v + 0 > 0) }'
}
# ptrun TOOL SIZE ITERS FIELD: pt, once more if the figure is not one.
ptrun() {
	local line try
	for try in 1 2; do
		line=$(pt "$1" "$2" "$3") || return 1
		ptok "$line" "$4" && { echo "$line"; return 0; }
		say "$1 -s $2: perftest printed '$(echo "$line" | awk -v f="$4" '{ print $f }')', not a figure (try $try)"
	done
	# Not a tool failure (it ran): noted, and the report says "not
	# measured" where the figure would be.
	echo "perftest: $1 -s $2 printed no usable figure twice; not recorded" \
		>>"$out/machine.txt"
	return 1
}
for size in $SIZES; do
	n=$LAT_N
	[ "$size" = 65536 ] && n=$LAT_BIG_N
	for tool in ib_write_lat ib_send_lat; do
		# bytes iters t_min t_max t_typical t_avg t_stdev p99 p99.9
		if line=$(ptrun "$tool" "$size" "$n" 5); then
			set -- $line
			rec raw "$tool" "$size" "$size" p50_us "$5"
			rec raw "$tool" "$size" "$size" p99_us "$8"
			rec raw "$tool" "$size" "$size" p999_us "$9"
		fi
	done
	n=$BW_N
	[ "$size" = 65536 ] && n=$BW_BIG_N
	# bytes iters peak_MBps avg_MBps Mpps
	if line=$(ptrun ib_write_bw "$size" "$n" 5); then
		set -- $line
		r=$(awk -v m="$5" 'BEGIN { printf "%.0f", m * 1e6 }')
		rec raw ib_write_bw "$size" "$size" msgs_per_s "$r"
		rec raw ib_write_bw "$size" "$size" mb_per_s \
			"$(awk -v r="$r" -v s="$size" 'BEGIN { printf "%.1f", r * s / 1e6 }')"
	fi
done

# ---- raw relay: the floor of two hops, host 2 -> host 1 -> host 3 ---------
WIRE64=112 # Verbus's one-way frame for 64 B of payload, see below
# vb_relay_bench (tests/bench/relay_bench.c): the least a broker can do in
# raw verbs, one WRITE_WITH_IMM in and one out per message, driven like
# verbus bench (one process, pub from host 2, sub from host 3).  Busy-
# polling as perftest does ("relay"), then sleeping when idle
# ("relay_events", beside event-driven Verbus).
say "raw relay"
rport=$(free_port)
"$VERBUS_BIN/vb_relay_bench" relay --listen "$B" --port "$rport" \
	>"$W/relay.log" 2>&1 &
rpid=$!
pids+=("$rpid")
for _ in $(seq 100); do
	grep -q "listening" "$W/relay.log" && break
	sleep 0.1
done
rb() { # SIZE COUNT SAMPLES ARGS...: vb_relay_bench CSV on stdout
	local size=$1 count=$2 samples=$3
	shift 3
	timeout 900 "$VERBUS_BIN/vb_relay_bench" run --connect "$B" \
		--port "$rport" --pub-source "$P" --sub-source "$S" \
		--sizes "$size" --count "$count" --samples "$samples" \
		--format csv "$@" 2>>"$W/relay_bench.err" ||
		{ broken "vb_relay_bench --sizes $size $*" "$W/relay_bench.err"; return 1; }
}
for size in $SIZES; do
	count=$COUNT samples=$SAMPLES
	[ "$size" = 65536 ] && count=$COUNT_BIG samples=$SAMPLES_BIG
	rb "$size" "$count" "$samples" >"$W/relay.$size.csv" &&
		rec_bench relay "$size" <"$W/relay.$size.csv"
	rb "$size" 1 "$samples" --events latency rtt \
		>"$W/relay_ev.$size.csv" &&
		rec_bench relay_events "$size" <"$W/relay_ev.$size.csv"
done
# The relay again at the size of Verbus's frame for a 64 B one-way
# message (a 32 B header, the subject "b.latency.64.0", 64 B, padded to 8:
# 112 B on the wire): the floor for those bytes, which in the guest cost
# more than 64 B do (docs/PERFORMANCE.md, bench-steps).  Request/reply
# frames carry a reply subject too, so the round trip there is a lower
# bound.
rb "$WIRE64" 1 "$SAMPLES" latency rtt >"$W/relay_wire.csv" &&
	rec_bench relay_wire 64 <"$W/relay_wire.csv"
kill "$rpid" 2>/dev/null
wait "$rpid" 2>/dev/null

# ---- raw relay, three hops: host 2 -> host 1 -> host 2 -> host 3 ----------
# The floor of a message between two brokers of a cluster (publisher ->
# broker 1 -> broker 2 -> subscriber): relay A on host 1 forwards to relay
# B on host 2 (vb_relay_bench relay --next), which forwards to the driver's
# subscriber on host 3.  Busy-polling ("relay3") and event-driven
# ("relay3_events"), as the two-hop relay.
say "raw relay, three hops"
rport=$(free_port)
rport2=$((rport + 1))
"$VERBUS_BIN/vb_relay_bench" relay --listen "${H[2]}" --port "$rport2" \
	>"$W/relay_b.log" 2>&1 &
rbpid=$!
pids+=("$rbpid")
"$VERBUS_BIN/vb_relay_bench" relay --listen "$B" --port "$rport" \
	--next "${H[2]}" --next-port "$rport2" >"$W/relay_a.log" 2>&1 &
rpid=$!
pids+=("$rpid")
for _ in $(seq 100); do
	grep -q "listening" "$W/relay_a.log" &&
		grep -q "listening" "$W/relay_b.log" && break
	sleep 0.1
done
for size in $SIZES; do
	count=$COUNT samples=$SAMPLES
	[ "$size" = 65536 ] && count=$COUNT_BIG samples=$SAMPLES_BIG
	busy3=$SAMPLES3
	[ "$size" = 65536 ] && busy3=$SAMPLES3_BIG
	rb "$size" "$count" "$busy3" --sub-connect "${H[2]}" \
		--sub-port "$rport2" --warmup "$WARMUP3" >"$W/relay3.$size.csv" &&
		rec_bench relay3 "$size" <"$W/relay3.$size.csv"
	rb "$size" 1 "$samples" --sub-connect "${H[2]}" --sub-port "$rport2" \
		--events latency rtt >"$W/relay3_ev.$size.csv" &&
		rec_bench relay3_events "$size" <"$W/relay3_ev.$size.csv"
done
kill "$rpid" "$rbpid" 2>/dev/null
wait "$rpid" "$rbpid" 2>/dev/null
[ -s "$W/relay3.64.csv" ] || cat "$W/relay_a.log" "$W/relay_b.log" >&2

# ---- UCX: ucx_perftest active messages between hosts 2 and 3 --------------
say "ucx_perftest"
# UCP active messages (ucp_am_lat, ucp_am_bw) over rc_verbs, each side held
# to its own device by UCX_NET_DEVICES, ud_verbs only to wire the endpoints
# up (":aux"), on GID 0: with the IPv4 GID UCX picks by itself, ud_verbs
# times out on rxe here.  docs/PERFORMANCE.md says what was tried, and why
# not the UCT tests (-x rc_verbs -t am_lat) the issue names.
UCX_TLS_USED=${VERBUS_BENCH_UCX_TLS:-rc_verbs,ud_verbs:aux}
export UCX_IB_GID_INDEX=${UCX_IB_GID_INDEX:-0}
ux() { # TEST SIZE ITERS [ARGS...]: prints the "Final:" line
	local t=$1 size=$2 n=$3 port log=$W/ucx.$1.$2 spid
	shift 3
	port=$((13337 + RANDOM % 1000))
	UCX_NET_DEVICES=$sdev:1 UCX_TLS=$UCX_TLS_USED timeout 300 \
		ucx_perftest -p "$port" >"$log.srv" 2>&1 &
	spid=$!
	listening "$port"
	UCX_NET_DEVICES=$pdev:1 UCX_TLS=$UCX_TLS_USED timeout 300 \
		ucx_perftest "$S" -p "$port" -t "$t" -s "$size" -n "$n" \
		-w $((n / 10)) "$@" >"$log" 2>&1 || kill "$spid" 2>/dev/null
	wait "$spid"
	grep '^Final:' "$log" | tail -1 | grep . ||
		{ broken "ucx_perftest -t $t -s $size" "$log"; cat "$log.srv" >&2; return 1; }
}
tx0=$(tx_bytes "$pnet")
for size in $SIZES; do
	# Final: iters p50/rank avg overall MBps_avg MBps_overall rate_avg rate_overall
	n=$LAT_N
	[ "$size" = 65536 ] && n=$LAT_BIG_N
	for rank in $RANKS; do
		line=$(ux ucp_am_lat "$size" "$n" -R "$rank") || break
		set -- $line
		case $rank in
		50) m=p50_us ;; 99) m=p99_us ;; *) m=p999_us ;;
		esac
		rec ucx am_lat "$size" "$size" "$m" "$3"
	done
	n=$BW_N
	[ "$size" = 65536 ] && n=$BW_BIG_N
	if line=$(ux ucp_am_bw "$size" "$n"); then
		set -- $line
		rec ucx am_bw "$size" "$size" msgs_per_s "${9%.*}"
		rec ucx am_bw "$size" "$size" mb_per_s \
			"$(awk -v r="$9" -v s="$size" 'BEGIN { printf "%.1f", r * s / 1e6 }')"
	fi
done
say "ucx: $pnet sent $(($(tx_bytes "$pnet") - tx0)) bytes"

# ---- NATS: nats-server on host 1, vb_nats_bench on hosts 2 and 3 ----------
say "nats"
nport=$((4222 + RANDOM % 1000))
cat >"$W/nats.conf" <<EOF
listen: "$B:$nport"
# Generous limits, so that NATS is never cut short by its defaults: 64 KiB
# payloads, and a subscriber far behind during a throughput run.
max_payload: 1048576
max_pending: 1073741824
write_deadline: "60s"
EOF
nats-server -c "$W/nats.conf" >"$W/nats.log" 2>&1 &
npid=$!
pids+=("$npid")
for _ in $(seq 100); do
	(exec 3<>"/dev/tcp/$B/$nport") 2>/dev/null && break
	sleep 0.1
done
nb() { # SIZE COUNT SAMPLES: vb_nats_bench CSV on stdout
	local size=$1 count=$2 samples=$3
	shift 3
	timeout 900 "$VERBUS_BIN/vb_nats_bench" -s "nats://$B:$nport" \
		--pub-source "$P" --sub-source "$S" --sizes "$size" \
		--count "$count" --samples "$samples" --subs "$FANOUT" \
		--format csv "$@" 2>>"$W/nats_bench.err" ||
		{ broken "vb_nats_bench --sizes $size" "$W/nats_bench.err"; return 1; }
}
tx0=$(tx_bytes "$pnet")
for size in $SIZES; do
	count=$COUNT samples=$SAMPLES
	[ "$size" = 65536 ] && count=$COUNT_BIG samples=$SAMPLES_BIG
	nb "$size" "$count" "$samples" >"$W/nats.$size.csv" &&
		rec_bench nats "$size" <"$W/nats.$size.csv"
done
sent=$(($(tx_bytes "$pnet") - tx0))
say "nats: $pnet sent $sent bytes"
[ "$sent" -gt "$COUNT" ] || broken "NATS traffic did not cross host 2's link" /dev/null
kill "$npid" 2>/dev/null
wait "$npid" 2>/dev/null

# ---- NATS cluster: nats-server on hosts 1, 2 and 3, routes between them --
# vb_nats_bench's publisher on server 1 (from host 2), its subscribers and
# responder on server 2 (--sub-server, from host 3).  nats-server cannot
# bind the source address of a route it dials, and a socket without one
# reaches a local address through lo; so, for the run, a routing rule per
# server sends what this kernel sends to that server's cluster port out of
# another host's link (host 1's; for server 1, host 2's), as verbusd's
# source-bound routes go.  Host 1's link must then carry what server 1
# forwards to server 2.
say "nats cluster"
nbase=$((4300 + RANDOM % 1000))
declare -a np cp hp
for k in 1 2 3; do
	np[k]=$((nbase + k)) cp[k]=$((nbase + 10 + k)) hp[k]=$((nbase + 20 + k))
done
for k in 1 2 3; do
	routes=
	for j in 1 2 3; do
		[ "$j" = "$k" ] ||
			routes="$routes${routes:+, }\"nats://${H[j]}:${cp[j]}\""
	done
	cat >"$W/nats$k.conf" <<EOF
listen: "${H[k]}:${np[k]}"
http: "127.0.0.1:${hp[k]}"
server_name: "n$k"
max_payload: 1048576
max_pending: 1073741824
write_deadline: "60s"
cluster {
  name: "bench"
  listen: "${H[k]}:${cp[k]}"
  routes: [$routes]
}
EOF
	via=$((k == 1 ? 2 : 1))
	r="pref 12 iif lo to ${H[k]} ipproto tcp dport ${cp[k]} lookup $((100 + via))"
	# shellcheck disable=SC2086 # the rule's selectors
	if ip rule add $r; then
		rules+=("$r")
	else
		broken "ip rule add $r (the NATS routes would stay on lo)" /dev/null
	fi
done
npids=()
for k in 1 2 3; do
	nats-server -c "$W/nats$k.conf" >"$W/nats$k.log" 2>&1 &
	npids+=($!)
	pids+=($!)
done
nroutes() { # HTTP_PORT: the server's routes, from its monitor
	curl -sf -m 2 "http://127.0.0.1:$1/routez" |
		sed -n 's/.*"num_routes": *\([0-9]*\).*/\1/p'
}
for k in 1 2 3; do
	end=$((SECONDS + 30))
	while [ "$(nroutes "${hp[k]}")" != 2 ] && [ $SECONDS -lt $end ]; do
		sleep 0.1
	done
	[ "$(nroutes "${hp[k]}")" = 2 ] ||
		broken "nats-server n$k has no route to both others" "$W/nats$k.log"
done
bnet=$(netdev_of "$B")
tx0=$(tx_bytes "$bnet")
for size in $SIZES; do
	count=$COUNT samples=$SAMPLES
	[ "$size" = 65536 ] && count=$COUNT_BIG samples=$SAMPLES_BIG
	if timeout 900 "$VERBUS_BIN/vb_nats_bench" -s "nats://${H[1]}:${np[1]}" \
		--sub-server "nats://${H[2]}:${np[2]}" \
		--pub-source "$P" --sub-source "$S" --sizes "$size" \
		--count "$count" --samples "$samples" --subs "$FANOUT" \
		--format csv >"$W/nats_cluster.$size.csv" \
		2>>"$W/nats_cluster.err"; then
		rec_bench nats_cluster "$size" <"$W/nats_cluster.$size.csv"
	else
		broken "vb_nats_bench --sub-server --sizes $size" "$W/nats_cluster.err"
	fi
done
sent=$(($(tx_bytes "$bnet") - tx0))
say "nats cluster: $bnet (server 1's link) sent $sent bytes"
[ "$sent" -gt "$COUNT" ] || broken "the NATS route did not cross host 1's link" /dev/null
kill "${npids[@]}" 2>/dev/null
wait "${npids[@]}" 2>/dev/null
echo "nats cluster: nats-server on hosts 1-3 (routes: a full mesh), publisher on n1 from host 2, subscribers and responder on n2 from host 3" >>"$out/machine.txt"

# ---- Verbus: verbusd on host 1, verbus bench on hosts 2 and 3 -------------
say "verbus"
bpid=
# The transport broker() listens on and vb() connects to: rdma, then tcp
# (the last section).  An RDMA listener keeps the plain ADDR:PORT form.
vscheme=rdma
broker() { # [verbusd args]: a fresh broker taking 64 KiB payloads
	local listen
	[ -n "$bpid" ] && { kill "$bpid"; wait "$bpid" 2>/dev/null; }
	vport=$(free_port)
	mport=$(free_port)
	listen=$B:$vport
	[ "$vscheme" = tcp ] && listen=tcp://$B:$vport
	"$VERBUS_BIN/verbusd" --listen "$listen" --monitor "127.0.0.1:$mport" \
		--set limits.max_msg=$VB_MAX_MSG "$@" >"$W/verbusd.log" 2>&1 &
	bpid=$!
	pids+=("$bpid")
	for _ in $(seq 100); do
		curl -sf "http://127.0.0.1:$mport/healthz" >/dev/null && return 0
		sleep 0.1
	done
	broken "verbusd --listen $listen $*" "$W/verbusd.log"
	return 1
}
vb() { # SIZE COUNT SAMPLES ARGS...: verbus bench CSV on stdout
	local size=$1 count=$2 samples=$3
	shift 3
	timeout 900 "$VERBUS_BIN/verbus" bench -s "$vscheme://$B:$vport" \
		--pub-source "$P" --sub-source "$S" --sizes "$size" \
		--count "$count" --samples "$samples" --subs "$FANOUT" \
		--max-msg "$VB_MAX_MSG" --subject b --format csv "$@" \
		2>>"$W/verbus_bench.err" ||
		{ broken "verbus bench --sizes $size $*" "$W/verbus_bench.err"; return 1; }
}
tx0=$(tx_bytes "$pnet")
if broker; then
	for size in $SIZES; do
		count=$COUNT samples=$SAMPLES
		[ "$size" = 65536 ] && count=$COUNT_BIG samples=$SAMPLES_BIG
		vb "$size" "$count" "$samples" >"$W/verbus.$size.csv" &&
			rec_bench verbus "$size" <"$W/verbus.$size.csv"
	done
fi
sent=$(($(tx_bytes "$pnet") - tx0))
say "verbus: $pnet sent $sent bytes"
[ "$sent" -gt "$COUNT" ] || broken "Verbus traffic did not cross host 2's link" /dev/null
# The same runs with adaptive polling: after work, every party polls up to
# VB_SPIN microseconds before it sleeps.
VB_SPIN=${VERBUS_BENCH_SPIN_US:-200}
echo "verbus spin: verbusd spin_us and verbus bench --spin $VB_SPIN us" >>"$out/machine.txt"
if broker --set spin_us="$VB_SPIN"; then
	for size in $SIZES; do
		count=$COUNT samples=$SAMPLES
		[ "$size" = 65536 ] && count=$COUNT_BIG samples=$SAMPLES_BIG
		vb "$size" "$count" "$samples" --spin "$VB_SPIN" \
			>"$W/verbus_spin.$size.csv" &&
			rec_bench verbus_spin "$size" <"$W/verbus_spin.$size.csv"
	done
fi
# The same runs with every party spinning instead of sleeping.
if broker --set busy_poll=true; then
	for size in $SIZES; do
		count=$COUNT samples=$SAMPLES
		[ "$size" = 65536 ] && count=$COUNT_BIG samples=$SAMPLES_BIG
		vb "$size" "$count" "$samples" --busy-poll \
			>"$W/verbus_busy.$size.csv" &&
			rec_bench verbus_busy "$size" <"$W/verbus_busy.$size.csv"
	done
fi
copied=$(curl -s "http://127.0.0.1:$mport/metrics" |
	awk '$1 == "verbus_payload_copy_bytes_total" { print $2 }')
echo "broker payload bytes copied (busy-poll run): ${copied:-?}" >>"$out/machine.txt"
kill "$bpid" 2>/dev/null
wait "$bpid" 2>/dev/null
bpid=

# ---- Verbus direct: the publisher writes into the subscribers (issue 19) --
# verbus bench --direct: its publisher opened with VB_OPT_DIRECT, its
# subscriptions made with VB_SUB_DIRECT, so once the broker has answered a
# subject's DirectQuery (its first messages go through the broker) the
# publisher on host 2 RDMA-WRITEs straight into the rings of the
# subscribers on host 3, one hop; verbusd on host 1 only negotiates, and
# carries the replies of request/reply (an inbox is never direct).  The
# same brokers and invocations as the brokered rows, plus --direct, one
# run of verbus bench per test, so that what the broker received during
# each (its verbus_messages_in_total) is recorded beside what the bench
# sent: the share of a row that did not go direct.
say "verbus direct"
# bmetrics: the current broker's metrics, "NAME VALUE" lines (a request to
# the monitor costs a good part of a second in the guest: one per run).
bmetrics() {
	curl -s "http://127.0.0.1:$mport/metrics" |
		awk '$1 ~ /^verbus_/ { printf "%s %.0f\n", $1, $2 }'
}
# bmetric NAME: NAME's value (labels included) in $W/metrics, bmetrics'
# lines as last fetched.
bmetric() { awk -v n="$1" '$1 == n { print $2 }' "$W/metrics"; }
# vbd TOOL SIZE TEST COUNT SAMPLES ARGS...: one test of verbus bench
# --direct, recorded, with the messages the bench sent and those of them
# the broker received: $W/metrics holds the broker's metrics before the
# run, and after it once it returns.  (Not "test" or "psize": rec_bench
# reads into those.)
vbd() {
	local tool=$1 size=$2 what=$3 count=$4 samples=$5 csv in0 in1 n pay
	shift 5
	csv=$W/$tool.$what.$size.csv
	in0=$(bmetric verbus_messages_in_total)
	vb "$size" "$count" "$samples" --direct "$@" "$what" >"$csv" ||
		return 1
	bmetrics >"$W/metrics"
	in1=$(bmetric verbus_messages_in_total)
	# The publisher's messages (latency and rtt: the warm-up's too; rtt:
	# the responder's replies too).
	case $what in
	latency) n=$((samples + VB_WARMUP)) ;;
	rtt) n=$((2 * (samples + VB_WARMUP))) ;;
	*) n=$count ;;
	esac
	pay=$(awk -F, 'NR == 2 { print $2 }' "$csv")
	rec "$tool" "$what" "$size" "$pay" sent "$n"
	[ -n "$in0" ] && [ -n "$in1" ] &&
		rec "$tool" "$what" "$size" "$pay" broker_in $((in1 - in0))
	rec_bench "$tool" "$size" <"$csv"
}
VB_WARMUP=100 # verbus bench's default --warmup
tx0=$(tx_bytes "$pnet")
for mode in $DIRECT_MODES; do
	case $mode in
	events) bargs=() cargs=() tool=verbus_direct ;;
	spin) bargs=(--set spin_us="$VB_SPIN") cargs=(--spin "$VB_SPIN")
		tool=verbus_direct_spin ;;
	busy) bargs=(--set busy_poll=true) cargs=(--busy-poll)
		tool=verbus_direct_busy ;;
	esac
	broker "${bargs[@]}" || continue
	bmetrics >"$W/metrics"
	for size in $SIZES; do
		count=$COUNT samples=$SAMPLES
		[ "$size" = 65536 ] && count=$COUNT_BIG samples=$SAMPLES_BIG
		tests="latency rtt throughput fanout"
		# Not in the smoke (CI's time; direct fan-out under
		# backpressure is tests/rdma/direct.sh's case m).
		[ "$smoke" = 1 ] && tests="latency rtt throughput"
		for t in $tests; do
			vbd "$tool" "$size" "$t" "$count" "$samples" \
				"${cargs[@]}"
		done
	done
	# The 64 B one-way latency again with the publisher and the
	# subscriber in two processes (vb_one_hop), as ib_write_lat's two
	# ends: verbus bench drives both from one thread, so under rxe its
	# subscriber cannot poll while its publisher is in ibv_post_send()
	# (PERFORMANCE.md, "where a direct message's time goes").  Event-driven
	# and busy-polling clients, with the event-driven broker (a third
	# process spinning on the guest's two vCPUs would make every figure a
	# time slice; direct, the broker is off the path anyway).
	if [ "$mode" = events ] && [[ " $SIZES " == *" 64 "* ]]; then
		for oh in --event --busy; do
			t=verbus_direct_2p
			[ "$oh" = --busy ] && t=verbus_direct_2p_busy oh=
			if timeout 600 "$VERBUS_BIN/vb_one_hop" \
				"$vscheme://$B:$vport" "$P" "$S" --direct $oh \
				--samples "$SAMPLES" --size 64 >"$W/$t.csv" \
				2>"$W/$t.err"; then
				IFS=, read -r _ _ _ psize _ p50 p99 p999 _ <"$W/$t.csv"
				rec "$t" latency 64 "$psize" p50_us "$p50"
				rec "$t" latency 64 "$psize" p99_us "$p99"
				rec "$t" latency 64 "$psize" p999_us "$p999"
			else
				broken "vb_one_hop --direct ${oh:---busy}" "$W/$t.err"
			fi
		done
	fi
	say "verbus direct ($mode) done"
	bmetrics >"$W/metrics"
	on=$(bmetric 'verbus_direct_switches_total{state="on"}')
	echo "verbus direct ($mode): verbus bench --direct; the broker received $(bmetric verbus_messages_in_total) messages, sent $(bmetric verbus_messages_out_total), answered $(bmetric verbus_direct_queries_total) DirectQuery, granted $(bmetric verbus_direct_paths_granted_total) paths, switched ${on:-?} on and $(bmetric 'verbus_direct_switches_total{state="off"}') off ($(bmetric 'verbus_direct_switches_total{state="failed"}') failed)" \
		>>"$out/machine.txt"
	# Rows measured without a single direct path are the brokered path's.
	[ "${on:-0}" -gt 0 ] ||
		broken "verbus bench --direct ($mode): no path was switched on at the broker" \
			"$W/verbusd.log"
done
if [ -n "$bpid" ]; then
	kill "$bpid" 2>/dev/null
	wait "$bpid" 2>/dev/null
	bpid=
fi
sent=$(($(tx_bytes "$pnet") - tx0))
say "verbus direct: $pnet sent $sent bytes"
[ "$sent" -gt "$COUNT" ] || broken "Verbus direct traffic did not cross host 2's link" /dev/null

# ---- Verbus over TCP: verbusd on host 1, verbus bench on hosts 2 and 3 ----
# The event-driven Verbus runs again, over TCP, beside NATS's TCP: the same
# hosts, sizes and counts, verbus bench with tcp:// URLs and --pub-source /
# --sub-source binding its sockets to hosts 2 and 3.  A broker of its own
# listening on TCP only, started after the RDMA rows are done, so that
# nothing of it runs beside them (a broker with both listeners holds both
# transports' contexts, and busy-polling it turns both every round).
# Event-driven only, as NATS is.
say "verbus over tcp"
vscheme=tcp
tx0=$(tx_bytes "$pnet")
if broker; then
	for size in $SIZES; do
		count=$COUNT samples=$SAMPLES
		[ "$size" = 65536 ] && count=$COUNT_BIG samples=$SAMPLES_BIG
		vb "$size" "$count" "$samples" >"$W/verbus_tcp.$size.csv" &&
			rec_bench verbus_tcp "$size" <"$W/verbus_tcp.$size.csv"
	done
	copied=$(curl -s "http://127.0.0.1:$mport/metrics" |
		awk '$1 == "verbus_payload_copy_bytes_total" { print $2 }')
	echo "verbus over tcp: verbusd --listen tcp://$B:PORT (TCP only), verbus bench -s tcp://...; broker payload bytes copied: ${copied:-?}" >>"$out/machine.txt"
	kill "$bpid" 2>/dev/null
	wait "$bpid" 2>/dev/null
	bpid=
fi
sent=$(($(tx_bytes "$pnet") - tx0))
say "verbus over tcp: $pnet sent $sent bytes"
[ "$sent" -gt "$COUNT" ] || broken "Verbus TCP traffic did not cross host 2's link" /dev/null

# ---- Verbus cluster: verbusd on hosts 1, 2 and 3 (issue 15) ---------------
# Three brokers under one ZooKeeper cluster path, a full mesh of routes
# over RDMA; verbus bench's publisher on broker 1 (from host 2), its
# subscribers and responder on broker 2 (--sub-server, from host 3):
# publisher -> b1 -> b2 -> subscriber, three hops.  verbus bench probes each
# run's subject until its interest has crossed the route.  Event-driven,
# adaptive polling and busy-polling as the single broker: brokers 1 and 2
# in that mode, broker 3 (in the mesh, off the path) event-driven in all,
# so that on these 2 vCPUs no fourth party spins beside the path's three.
say "verbus cluster"
cpids=()
declare -a cport mport
cluster_down() {
	[ "${#cpids[@]}" -gt 0 ] || return 0
	kill "${cpids[@]}" 2>/dev/null
	wait "${cpids[@]}" 2>/dev/null
	cpids=()
}
# cluster_up NAME [verbusd args]: brokers b1-b3 under a cluster path of
# their own (no member left from the mode before), waited until each has
# a route to both others.
cluster_up() {
	local name=$1 k v cbase extra end
	shift
	cluster_down
	cbase=$(free_port)
	for k in 1 2 3; do
		cport[k]=$((cbase + k)) mport[k]=$((cbase + 10 + k))
		extra=("$@")
		[ "$k" = 3 ] && extra=()
		"$VERBUS_BIN/verbusd" --listen "rdma://${H[k]}:${cport[k]}" \
			--monitor "127.0.0.1:${mport[k]}" \
			--cluster "zk://$ZK_CONNECT/verbus/bench-$$-$name" \
			--cluster-id "b$k" \
			--cluster-listen "rdma://${H[k]}:$((cbase + 20 + k))" \
			--set limits.max_msg=$VB_MAX_MSG "${extra[@]}" \
			>"$W/cluster.b$k.log" 2>&1 &
		cpids+=($!)
		pids+=($!)
	done
	for k in 1 2 3; do
		end=$((SECONDS + 30))
		while :; do
			v=$(curl -sf -m 2 "http://127.0.0.1:${mport[k]}/metrics" |
				awk '$1 == "verbus_cluster_routes" { print $2 }')
			[ "${v%.*}" = 2 ] || [ $SECONDS -ge $end ] && break
			sleep 0.1
		done
		[ "${v%.*}" = 2 ] || {
			broken "verbusd cluster ($name): b$k has ${v:-no} routes, not 2" \
				"$W/cluster.b$k.log"
			return 1
		}
	done
}
vbc() { # TOOL SIZE COUNT SAMPLES ARGS...: verbus bench, b1 -> b2, recorded
	local tool=$1 size=$2 count=$3 samples=$4
	shift 4
	if timeout 900 "$VERBUS_BIN/verbus" bench -s "rdma://${H[1]}:${cport[1]}" \
		--sub-server "rdma://${H[2]}:${cport[2]}" \
		--pub-source "$P" --sub-source "$S" --sizes "$size" \
		--count "$count" --samples "$samples" --subs "$FANOUT" \
		--max-msg "$VB_MAX_MSG" --subject b --format csv "$@" \
		>"$W/$tool.$size.csv" 2>>"$W/verbus_cluster.err"; then
		rec_bench "$tool" "$size" <"$W/$tool.$size.csv"
	else
		broken "verbus bench --sub-server ($tool) --sizes $size $*" \
			"$W/verbus_cluster.err"
	fi
}
t_zk=$(date +%s)
[ "$zkbg" = 1 ] || zk_start_bg
if ! zk_load; then
	broken "ZooKeeper did not start (tests/rdma/zk.sh)" "$W/zk.log"
else
	say "zookeeper at $ZK_CONNECT (waited $(($(date +%s) - t_zk)) s for it here)"
	export VERBUSD_CLUSTER_SECRET=bench-$RANDOM$RANDOM$RANDOM
	bnet=$(netdev_of "$B")
	tx0=$(tx_bytes "$bnet")
	for mode in $CLUSTER_MODES; do
		case $mode in
		events) bargs=() cargs=() tool=verbus_cluster ;;
		spin) bargs=(--set spin_us="$VB_SPIN") cargs=(--spin "$VB_SPIN")
			tool=verbus_cluster_spin ;;
		busy) bargs=(--set busy_poll=true) cargs=(--busy-poll)
			tool=verbus_cluster_busy ;;
		esac
		cluster_up "$mode" "${bargs[@]}" || continue
		for size in $SIZES; do
			count=$COUNT samples=$SAMPLES
			[ "$size" = 65536 ] && count=$COUNT_BIG samples=$SAMPLES_BIG
			warm=()
			if [ "$mode" = busy ]; then
				samples=$SAMPLES3 warm=(--warmup "$WARMUP3")
				[ "$size" = 65536 ] && samples=$SAMPLES3_BIG
			fi
			vbc "$tool" "$size" "$count" "$samples" "${cargs[@]}" \
				"${warm[@]}"
		done
	done
	copied=$(curl -s "http://127.0.0.1:${mport[2]}/metrics" |
		awk '$1 == "verbus_payload_copy_bytes_total" { print $2 }')
	cluster_down
	sent=$(($(tx_bytes "$bnet") - tx0))
	say "verbus cluster: $bnet (broker 1's link) sent $sent bytes"
	[ "$sent" -gt "$COUNT" ] || broken "the Verbus route did not cross host 1's link" /dev/null
	echo "verbus cluster: verbusd on hosts 1-3 (ZooKeeper membership, a full mesh of RDMA routes, limits.max_msg=$VB_MAX_MSG), publisher on b1 from host 2, subscribers and responder on b2 from host 3 (verbus bench --sub-server); b3 event-driven in every mode; b2's payload bytes copied (busy-poll run): ${copied:-?}" >>"$out/machine.txt"
fi

echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"

# ---- the report -----------------------------------------------------------
say "report"
python3 "$ROOT/tests/bench/report.py" "$out" ||
	broken "the report (tests/bench/report.py)" /dev/null
[ -f "$out/results.md" ] && cat "$out/results.md"
if [ "$tmp_out" = 0 ]; then
	say "results in $out: results.md, results.csv, results.png, machine.txt"
fi
if [ -s "$W/failed" ]; then
	say "$(wc -l <"$W/failed") failures:"
	sed 's/^/  /' "$W/failed" >&2
	exit 1
fi
exit 0
