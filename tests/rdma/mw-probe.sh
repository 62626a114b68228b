#!/bin/bash
# Memory windows on rxe (issue 7, memory isolation): vb_mw_probe binds a
# type-2 window on one connection's QP over a sub-range of a region
# without remote rights, then WRITEs to it from a client on another host:
# inside (must land), outside or from another QP (remote access error,
# nothing written), with the region's own keys or after invalidation
# (refused).  See tests/rdma/mw_probe.c.
set -u
. "$(dirname "$0")/lib.sh"
need_hosts 2
timeout 200 "$VERBUS_BIN/vb_mw_probe" "$VERBUS_HOST_1_ADDR" \
	"$VERBUS_HOST_2_ADDR" "$(free_port)" || fail "vb_mw_probe"
echo "PASS: type-2 memory windows isolate clients"
