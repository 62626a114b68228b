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

# free_port: an rdma_cm port no other test in this boot is using.
free_port() {
	echo $((20000 + RANDOM % 20000))
}

# show NAME FILE: print a process's log, framed, so that CI logs are readable.
show() {
	echo "----- $1 -----"
	cat "$2"
}
