# Helpers for the rxe integration drivers (sourced).  Every failure is loud:
# a driver that cannot find its device or hosts fails, it never skips.

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# need_hosts N: the harness (tests/vm/rxe-run --hosts N) must be providing
# at least N RDMA hosts.
need_hosts() {
	[ -n "${VERBUS_BIN:-}" ] || fail "VERBUS_BIN is not set (run through ctest)"
	[ "${VERBUS_HOSTS:-0}" -ge "$1" ] ||
		fail "needs $1 RDMA hosts: run under tests/vm/rxe-run --hosts $1 (see docs/TESTING.md)"
	ibv_devices 2>/dev/null | grep -q . && [ -n "$(ls /sys/class/infiniband 2>/dev/null)" ] ||
		fail "no RDMA device on this machine: run under tests/vm/rxe-run"
}

# netdev_of ADDR: the network interface holding ADDR.
netdev_of() {
	ip -o -4 addr show | awk -v a="$1" '{ split($4, p, "/"); if (p[1] == a) { print $2; exit } }'
}

# rdmadev_of ADDR: the RDMA device on the interface holding ADDR.
rdmadev_of() {
	local nd
	nd=$(netdev_of "$1")
	rdma link show | awk -v n="$nd" '$0 ~ "netdev " n "( |$)" { split($2, d, "/"); print d[1]; exit }'
}

# tx_bytes DEV: bytes the interface has sent.
tx_bytes() {
	cat "/sys/class/net/$1/statistics/tx_bytes"
}

# free_port: a port for a listener (rdma_cm, TCP, the monitor's HTTP) that
# nothing on this host holds now: below the kernel's ephemeral range (so
# that no client connection of this or an earlier test can come to hold
# it: CI once lost tcp.broker to a monitor port, 39279, that a connection
# had), and not in use by any socket ss(8) lists.
free_port() {
	local p lo i
	read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lo=32768
	[ "$lo" -gt 12000 ] 2>/dev/null || lo=32768
	for ((i = 0; i < 50; i++)); do
		p=$((10000 + RANDOM % (lo - 10000)))
		command -v ss >/dev/null || break
		[ -z "$(ss -Hantu "sport = :$p" 2>/dev/null)" ] && break
	done
	echo "$p"
}

# show NAME FILE: print a process's log, framed, so that CI logs are readable.
show() {
	echo "----- $1 -----"
	cat "$2"
}

# wait_for PATTERN FILE [SECONDS]: until a line of FILE matches PATTERN
# (grep -E), polling every 0.1 s for at most SECONDS (30); status 1 if it
# never came.
wait_for() {
	local i
	for ((i = 0; i < ${3:-30} * 10; i++)); do
		grep -qE "$1" "$2" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# tls_files DIR [IP...]: a test PKI made with openssl(1) in DIR: ca.pem (the
# CA), srv.pem/srv.key (the broker's, for localhost, 127.0.0.1 and each IP
# given), cli.pem/
# cli.key (a client's, signed by the CA), other.pem/other.key (a CA that
# signed nothing here), and name.pem/name.key (signed by the CA, for the
# name elsewhere.invalid only).  P-256 keys: made in milliseconds.
tls_files() {
	local d=$1 n ip san=DNS:localhost,IP:127.0.0.1
	shift
	for ip in "$@"; do san=$san,IP:$ip; done
	mkdir -p "$d"
	(
		cd "$d" || exit 1
		key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }
		key ca && openssl req -x509 -new -key ca.key -out ca.pem -days 30 \
			-subj "/CN=verbus test CA" 2>/dev/null || exit 1
		key other && openssl req -x509 -new -key other.key -out other.pem \
			-days 30 -subj "/CN=another CA" 2>/dev/null || exit 1
		for n in "srv:$san" cli:DNS:client1 \
			name:DNS:elsewhere.invalid; do
			key "${n%%:*}" &&
				openssl req -new -key "${n%%:*}.key" -subj "/CN=${n%%:*}" \
					-out "${n%%:*}.csr" 2>/dev/null &&
				printf 'subjectAltName=%s\n' "${n#*:}" >"${n%%:*}.ext" &&
				openssl x509 -req -in "${n%%:*}.csr" -CA ca.pem -CAkey ca.key \
					-CAcreateserial -days 30 -extfile "${n%%:*}.ext" \
					-out "${n%%:*}.pem" 2>/dev/null || exit 1
		done
	) || fail "openssl could not make the test certificates in $d"
}

# pair_env: a server and a client address, $srv and $cli, for a pair of
# processes over $scheme (VERBUS_SCHEME, rdma by default): two RDMA hosts,
# or with tcp or tls this machine's loopback twice (no RDMA device
# needed).
pair_env() {
	scheme=${VERBUS_SCHEME:-rdma}
	if [ "$scheme" = rdma ]; then
		need_hosts 2
		srv=$VERBUS_HOST_1_ADDR cli=$VERBUS_HOST_2_ADDR
	else
		[ -n "${VERBUS_BIN:-}" ] || fail "VERBUS_BIN is not set (run through ctest)"
		srv=127.0.0.1 cli=127.0.0.1
	fi
}

# run_pair NAME SECONDS SERVER_CMD... -- CLIENT_CMD...: run a server in the
# background (output in $work/srv), start the client (output in $work/cli)
# once the server says "server listening" or after SECONDS (a client that
# came too early would be refused and leave the server waiting), wait for
# both and show both logs.  Status 0 only if both exited 0; their
# statuses are left in pair_src and pair_crc.  The caller sets $work.
run_pair() {
	local name=$1 secs=$2 spid scmd=()
	shift 2
	while [ "$1" != -- ]; do
		scmd+=("$1")
		shift
	done
	shift
	# Emptied here, not only by the child's redirection, which runs after
	# the fork: wait_for could otherwise find the last pair's "server
	# listening" and start the client before this server listens.
	: >"$work/srv"
	"${scmd[@]}" >"$work/srv" 2>&1 &
	spid=$!
	wait_for "server listening" "$work/srv" "$secs" || true
	"$@" >"$work/cli" 2>&1
	pair_crc=$?
	wait "$spid"
	pair_src=$?
	show "$name: server" "$work/srv"
	show "$name: client" "$work/cli"
	[ "$pair_src" = 0 ] && [ "$pair_crc" = 0 ]
}

# broker_env: the three hosts ($brk runs verbusd, $a and $b the clients), a
# scratch directory $work removed on exit together with any broker still
# running (and whatever "$@" says, run first), and free ports $port (the
# broker's) and $mport (monitoring).  $scheme is the transport the broker
# listens with and the clients connect by: VERBUS_SCHEME, rdma by default;
# with tcp or tls the three "hosts" are this machine's loopback (no RDMA
# needed).  With tls, test certificates in $work/tls (tls_files), which
# broker_start gives verbusd and SSL_CERT_FILE gives every client (it is
# OpenSSL's default trust store: programs that set no CA of their own,
# the examples among them, verify the broker by it).
broker_env() {
	scheme=${VERBUS_SCHEME:-rdma}
	if [ "$scheme" = rdma ]; then
		need_hosts 3
		brk=$VERBUS_HOST_1_ADDR a=$VERBUS_HOST_2_ADDR b=$VERBUS_HOST_3_ADDR
	else
		[ -n "${VERBUS_BIN:-}" ] || fail "VERBUS_BIN is not set (run through ctest)"
		brk=127.0.0.1 a=127.0.0.1 b=127.0.0.1
	fi
	work=$(mktemp -d)
	bpid=
	broker_exit_extra=${1:-}
	trap '[ -n "$broker_exit_extra" ] && eval "$broker_exit_extra"; broker_kill; rm -rf "$work"' EXIT
	port=$(free_port) mport=$(free_port)
	while [ "$mport" = "$port" ]; do mport=$(free_port); done
	if [ "$scheme" = tls ]; then
		tls_files "$work/tls" "$brk"
		export SSL_CERT_FILE=$work/tls/ca.pem
	fi
}

# broker_start [VERBUSD-ARGS...]: verbusd on $brk:$port with its monitor on
# 127.0.0.1:$mport (unless the arguments say otherwise: -c FILE), log
# appended to $work/broker.log, waited until it listens; $bpid, and
# $broker_listen_after: the time (date +%s.%N) of the last look that did
# not yet find "listening on" in the log: it said so after that.
broker_start() {
	local n t
	n=$(grep -c "listening on" "$work/broker.log" 2>/dev/null)
	if [ "${1:-}" = -c ]; then
		"$VERBUS_BIN/verbusd" "$@" >>"$work/broker.log" 2>&1 &
	else
		# rdma in the plain form, which builds older than the URL
		# grammar also take (scripts/bench-ab.sh measures those).
		local at="$brk:$port" tls=()
		[ "${scheme:-rdma}" = rdma ] || at="$scheme://$brk:$port"
		[ "${scheme:-rdma}" = tls ] &&
			tls=(--tls-cert "$work/tls/srv.pem" --tls-key "$work/tls/srv.key")
		"$VERBUS_BIN/verbusd" --listen "$at" "${tls[@]}" \
			--monitor "127.0.0.1:$mport" "$@" >>"$work/broker.log" 2>&1 &
	fi
	bpid=$!
	broker_listen_after=$(date +%s.%N)
	for _ in $(seq 500); do
		t=$(date +%s.%N)
		[ "$(grep -c "listening on" "$work/broker.log")" -gt "${n:-0}" ] && return
		broker_listen_after=$t
		sleep 0.02
	done
	show broker "$work/broker.log"
	fail "verbusd did not come up"
}

# broker_kill: SIGKILL the broker, if one runs.
broker_kill() {
	[ -n "${bpid:-}" ] || return 0
	kill -9 "$bpid" 2>/dev/null
	wait "$bpid" 2>/dev/null
	bpid=
}

# broker_stop: SIGTERM; verbusd must drain and exit 0.
broker_stop() {
	kill -TERM "$bpid"
	wait "$bpid" || { show broker "$work/broker.log"; fail "verbusd exited $? on SIGTERM"; }
	bpid=
}

# poll_mode MODE: the arguments of a polling mode, for verbusd in
# $mode_broker_args and for verbus bench in $mode_bench_args: event (sleep
# when idle), spin (adaptive polling, 200 us), busy (never sleep).
poll_mode() {
	case $1 in
	event) mode_broker_args=() mode_bench_args=() ;;
	spin) mode_broker_args=(--set spin_us=200) mode_bench_args=(--spin 200) ;;
	busy) mode_broker_args=(--set busy_poll=true) mode_bench_args=(--busy-poll) ;;
	*) fail "unknown polling mode '$1' (event, spin, busy)" ;;
	esac
}

# metric NAME: one value from the broker's /metrics.
metric() {
	curl -sf "http://127.0.0.1:$mport/metrics" | awk -v n="$1" '$1 == n { print $2; exit }'
}

# Background vb_pubsub clients of a driver that defines
# `client NAME ARGS...` (runs one, its output in $work/NAME.out):
# spawn NAME ARGS...: a client in the background, waited until it is ready.
spawn() {
	local name=$1
	: >"$work/$name.out" # not the last run's "ready" (run_pair says why)
	client "$@" &
	eval "pid_$name=$!"
	wait_for ready "$work/$name.out" 30 && return
	show "$name" "$work/$name.out"
	fail "$name never became ready"
}

# reap NAME: wait for a background client; it must exit 0.
reap() {
	local pid rc
	eval "pid=\$pid_$1"
	wait "$pid"
	rc=$?
	[ "$rc" = 0 ] || { show "$1" "$work/$1.out"; show broker "$work/broker.log"; fail "$1 exited $rc"; }
}

# received NAME: how many messages the vb_pubsub subscriber NAME reported.
received() { sed -nE 's/.*received ([0-9]+) messages.*/\1/p' "$work/$1.out"; }

# mark, then delta NAME: how much the broker's metric NAME grew since.
declare -A marks
mark() {
	for n in verbus_payload_copy_bytes_total verbus_zero_copy_bytes_total \
		verbus_messages_out_total verbus_forward_failures_total; do
		marks[$n]=$(metric "$n")
	done
}
delta() { echo $(($(metric "$1") - ${marks[$1]})); }
