#!/bin/bash
# bench-tcp.sh - Verbus over TCP beside NATS over TCP, on this machine's
# loopback, in one run (no RDMA device, no guest): verbusd --listen
# tcp://127.0.0.1 with `verbus bench`, nats-server with vb_nats_bench (the
# same four tests, the same sizes and counts, the same client library
# shape: one process, a connection per publisher and subscriber).  Prints
# one table with the ratio Verbus / NATS per figure (lower is better for
# latencies, higher for rates).  A benchmark, not a test: nothing fails on
# a number; lost or duplicated messages do fail it.
#
#   scripts/bench-tcp.sh [--tls] [BUILD_DIR]   (VERBUS_BENCH_COUNT, _SAMPLES, _SIZES)
#
# --tls: both through TLS instead (verbusd --listen tls://, nats-server's
# tls block; the same certificate, made here with openssl, TLS 1.3 both).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/tests/rdma/lib.sh"
tls=
[ "${1:-}" = --tls ] && { tls=1; shift; }
BIN=${1:-$ROOT/build}/bin
SIZES=${VERBUS_BENCH_SIZES:-64,1024,65536}
COUNT=${VERBUS_BENCH_COUNT:-200000}
SAMPLES=${VERBUS_BENCH_SAMPLES:-20000}
W=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$W"' EXIT
for t in "$BIN/verbusd" "$BIN/verbus" "$BIN/vb_nats_bench" nats-server; do
	command -v "$t" >/dev/null || { echo "bench-tcp: $t is missing (scripts/setup.sh)" >&2; exit 1; }
done
# Below the ephemeral range, not in use (tests/rdma/lib.sh).
port=$(free_port) mport=$(free_port) nport=$(free_port)

scheme=tcp vtls=() ntls=() nblock=
if [ -n "$tls" ]; then
	scheme=tls
	(
		cd "$W"
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout ca.key -out ca.pem -days 2 -subj /CN=bench-ca 2>/dev/null
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout srv.key -out srv.csr -subj /CN=localhost 2>/dev/null
		printf 'subjectAltName=IP:127.0.0.1\n' >srv.ext
		openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
			-days 2 -extfile srv.ext -out srv.pem 2>/dev/null
	) || { echo "bench-tcp: openssl could not make a certificate" >&2; exit 1; }
	vtls=(--tls-cert "$W/srv.pem" --tls-key "$W/srv.key")
	ntls=(--tls-ca "$W/ca.pem")
	nblock="tls { cert_file: \"$W/srv.pem\", key_file: \"$W/srv.key\" }"
	export VERBUS_TLS_CA=$W/ca.pem
fi
"$BIN/verbusd" --listen "$scheme://127.0.0.1:$port" "${vtls[@]}" \
	--monitor "127.0.0.1:$mport" \
	--set limits.max_msg=1M --set limits.ring_size=4M >"$W/verbusd.log" 2>&1 &
pids+=("$!")
cat >"$W/nats.conf" <<EON
listen: "127.0.0.1:$nport"
max_payload: 1048576
max_pending: 1073741824
write_deadline: "60s"
$nblock
EON
nats-server -c "$W/nats.conf" >"$W/nats.log" 2>&1 &
pids+=("$!")
for _ in $(seq 100); do
	curl -sf "http://127.0.0.1:$mport/healthz" >/dev/null &&
		(exec 3<>"/dev/tcp/127.0.0.1/$nport") 2>/dev/null && break
	sleep 0.1
done

common=(--pub-source 127.0.0.1 --sub-source 127.0.0.1 --sizes "$SIZES"
	--count "$COUNT" --samples "$SAMPLES" --subs 4 --format csv)
"$BIN/verbus" bench -s "$scheme://127.0.0.1:$port" --max-msg 1M --ring 4M \
	"${common[@]}" >"$W/verbus.csv"
"$BIN/vb_nats_bench" -s "nats://127.0.0.1:$nport" "${ntls[@]}" "${common[@]}" >"$W/nats.csv"

echo "# Verbus over ${tls:+TLS over }TCP beside NATS over ${tls:+TLS over }TCP, loopback, $(date -u +%FT%TZ)"
echo "# $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); nats-server $(nats-server --version 2>&1 | head -1)"
python3 - "$W/verbus.csv" "$W/nats.csv" <<'EOP'
import csv, sys
def load(p):
    out = {}
    for r in csv.DictReader(open(p)):
        if int(r.get('lost') or 0) or int(r.get('dup') or 0):
            sys.exit(f"{p}: {r['test']} {r['size']}: lost or duplicated messages")
        out[(r['test'], r['size'])] = r
    return out
v, n = load(sys.argv[1]), load(sys.argv[2])
print(f"{'test':<11}{'size':>7}  {'figure':<10}{'verbus':>12}{'nats':>12}{'verbus/nats':>13}")
for key in v:
    if key not in n:
        continue
    test, size = key
    figs = [('p50_us', 'p50_us'), ('p99_us', 'p99_us')] if test in ('latency', 'rtt') \
        else [('msgs/s', 'msgs_per_s'), ('MB/s', 'mb_per_s')]
    for name, col in figs:
        a, b = float(v[key][col]), float(n[key][col])
        print(f"{test:<11}{size:>7}  {name:<10}{a:>12.1f}{b:>12.1f}{a / b if b else float('nan'):>13.2f}")
EOP
