/*
 * dp_stream.c - the data path under load, through transport/ on real verbs.
 *
 * Two processes, one connection, messages in both directions at once.
 * Message k in direction d has a topic and a payload whose lengths and
 * bytes are functions of (d, k), so the receiver verifies every byte, every
 * length and the sequence (no loss, no duplicate, no reordering) without
 * any other channel.  The memory registration count is read when the
 * connection opens and at the end: it must not have moved.
 *
 * --hold N --hold-ms M makes the receiver slow: it keeps up to N messages
 * unreleased and sleeps M ms before releasing them, so the sender runs out
 * of credits and must see backpressure (VB_EAGAIN), never loss.
 *
 * --size B sends every payload at exactly B bytes, and --no-verify skips
 * filling and checking payload bytes (lengths and sequence are still
 * checked): together they make a throughput benchmark.  --one-way sends
 * from the client only.  --pingpong sends one message at a time each way
 * (the server answers each message with the next of its own) and the
 * client reports the round-trip latency's distribution: half of it is the
 * one-way latency.  --busy-poll never sleeps on the file descriptor.
 * --scheme tcp runs it over the TCP transport (default rdma), --scheme tls
 * over TLS (--tls-cert and --tls-key: the server's; --tls-ca: what the
 * client trusts [OpenSSL's default store]).
 *
 * Exit: 0 verified, 1 failure, 2 usage, 4 the peer vanished (clean error).
 */
#include "core/log.h"
#include "transport/transport.h"

#include <verbus/verbus.h>

#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EXIT_VANISHED 4
#define HOLD_MAX 4096

/* Options and the state of the one connection. */
struct st {
	bool server;
	const char *addr, *source, *port;
	uint64_t count; /* messages each way */
	uint32_t max_payload; /* payload sizes are 0..max_payload */
	bool sweep; /* every size 0..max in turn, not random */
	bool fixed; /* every payload exactly max_payload bytes */
	bool no_verify; /* benchmark: lengths and seq only, no bytes */
	bool one_way; /* only the client sends */
	bool pingpong; /* one message in flight: latency */
	bool busy_poll; /* progress() never sleeps */
	uint64_t to_send, to_recv; /* this side's share of count */
	uint64_t *rtt_ns; /* pingpong client: one round trip per message */
	uint64_t t_start, t_open, t_last; /* ns: start, open, last message */
	int hold, hold_ms; /* slow receiver */
	uint32_t ring;
	struct vbi_conn *c;
	bool open, done, failed, vanished;
	bool ponged, pong_owed; /* drain: the Pong came; one is owed */
	uint64_t sent, received, eagain;
	uint64_t mr_at_open;
	struct vbi_frame_view held[HOLD_MAX];
	int nheld;
};

static uint32_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return (uint32_t)x;
}

static uint32_t payload_len(const struct st *s, int dir, uint64_t k)
{
	if (s->fixed)
		return s->max_payload;
	if (s->sweep)
		return (uint32_t)(k % ((uint64_t)s->max_payload + 1));
	return mix(k * 2 + (uint64_t)dir) % (s->max_payload + 1);
}

static uint8_t byte_at(int dir, uint64_t k, size_t i)
{
	return (uint8_t)mix((k << 20) ^ ((uint64_t)dir << 60) ^ i);
}

static int topic_of(int dir, uint64_t k, char *buf)
{
	return sprintf(buf, "stream.%d.%" PRIu64, dir, k % 1000);
}

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void fail(struct st *s, const char *what, uint64_t k)
{
	fprintf(stderr, "dp_stream: message %" PRIu64 ": %s\n", k, what);
	s->failed = true;
}

static void on_open(struct vbi_conn *c, void *arg)
{
	struct st *s = arg;
	struct vbi_tp_stats ts;

	vbi_tp_stats_all(&ts);
	s->c = c;
	s->open = true;
	s->mr_at_open = ts.mr_registered;
	s->t_open = now_ns();
	printf("dp_stream: %s open, %" PRIu64 " memory registrations\n",
	       s->server ? "server" : "client", ts.mr_registered);
}

static void release_held(struct st *s)
{
	for (int i = 0; i < s->nheld; i++)
		if (vbi_conn_release(s->c, &s->held[i]))
			fail(s, "release refused", s->held[i].seq);
	s->nheld = 0;
}

static void pump(struct st *s);

static void on_message(struct vbi_conn *c, const struct vbi_frame_view *v,
		       void *arg)
{
	struct st *s = arg;
	int dir = s->server ? 0 : 1; /* the peer's direction */
	uint64_t k = s->received;
	uint32_t plen = payload_len(s, dir, k);
	const uint8_t *p = v->payload;
	char topic[64];
	int tlen = topic_of(dir, k, topic);

	if (v->seq != k + 1)
		fail(s, "out of sequence", k);
	else if (v->topic_len != tlen || memcmp(v->topic, topic, tlen))
		fail(s, "wrong topic", k);
	else if (v->payload_len != plen)
		fail(s, "wrong payload length", k);
	for (uint32_t i = 0; i < plen && !s->failed && !s->no_verify; i++)
		if (p[i] != byte_at(dir, k, i))
			fail(s, "payload byte differs", k);
	s->received++;
	s->t_last = now_ns();
	if (s->rtt_ns)
		s->rtt_ns[k] = now_ns() - s->rtt_ns[k];
	if (s->hold > 0) {
		s->held[s->nheld++] = *v;
		if (s->nheld >= s->hold) {
			usleep((useconds_t)s->hold_ms * 1000);
			release_held(s);
		}
		return;
	}
	if (vbi_conn_release(c, v))
		fail(s, "release refused", k);
	if (s->pingpong)
		pump(s); /* answer (server) or send the next (client) now */
}

static void on_closed(struct vbi_conn *c, const struct vbi_close_info *why,
		      void *arg)
{
	struct st *s = arg;

	(void)c;
	printf("dp_stream: connection closed: %s (%s)\n", why->reason,
	       vb_strerror(why->err));
	s->c = NULL;
	s->nheld = 0;
	if (s->received < s->to_recv || s->sent < s->to_send) {
		s->vanished = true;
		fprintf(stderr,
			"dp_stream: closed after %" PRIu64 " of %" PRIu64
			" received, %" PRIu64 " sent\n",
			s->received, s->to_recv, s->sent);
	}
	s->done = true;
}

/* Control messages: a Ping is answered, a Pong ends a drain. */
static void on_control(struct vbi_conn *c, const Verbus__Control *m, void *arg)
{
	struct st *s = arg;

	if (m->body_case == VERBUS__CONTROL__BODY_PONG) {
		s->ponged = true;
	} else if (m->body_case == VERBUS__CONTROL__BODY_PING) {
		Verbus__Control r = VERBUS__CONTROL__INIT;
		Verbus__Pong p = VERBUS__PONG__INIT;

		p.id = m->ping->id;
		r.body_case = VERBUS__CONTROL__BODY_PONG;
		r.pong = &p;
		if (vbi_conn_send_ctrl(c, &r) != VB_OK)
			s->pong_owed = true;
	}
}

/* Wait until the peer has handed up everything we sent: Ping, then its
 * Pong (control messages follow the frames before them). */
static void drain(struct st *s, struct vbi_tp *tp)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__Ping ping = VERBUS__PING__INIT;
	int sent = VB_EAGAIN;

	ping.id = 1;
	m.body_case = VERBUS__CONTROL__BODY_PING;
	m.ping = &ping;
	for (int i = 0; i < 3000 && s->c && !s->ponged; i++) {
		if (sent != VB_OK)
			sent = vbi_conn_send_ctrl(s->c, &m);
		vbi_tp_progress(tp, 10);
	}
	if (!s->ponged)
		fprintf(stderr, "dp_stream: no pong: the peer may not have "
				"everything\n");
}

/*
 * Send until the ring or the credits run out; in pingpong mode, only when
 * the peer's answer to our last message has come (the client leads).
 */
static void pump(struct st *s)
{
	int dir = s->server ? 1 : 0;
	char topic[64];

	while (s->c && s->open && s->sent < s->to_send) {
		uint64_t k = s->sent;

		if (s->pingpong && s->sent + (s->server ? 1 : 0) != s->received)
			return;
		uint32_t plen = payload_len(s, dir, k);
		int tlen = topic_of(dir, k, topic);
		void *t, *p;
		int rc = vbi_conn_reserve(s->c, (uint16_t)tlen, plen, &t, &p);

		if (rc == VB_EAGAIN) {
			s->eagain++;
			return;
		}
		if (rc) {
			fprintf(stderr, "dp_stream: reserve: %s\n",
				vb_strerror(rc));
			s->failed = true;
			return;
		}
		memcpy(t, topic, (size_t)tlen);
		for (uint32_t i = 0; i < plen && !s->no_verify; i++)
			((uint8_t *)p)[i] = byte_at(dir, k, i);
		vbi_conn_commit(s->c);
		if (s->rtt_ns) {
			s->rtt_ns[k] = now_ns();
			vbi_conn_flush(s->c);
		}
		s->sent++;
		if (s->sent == s->to_send && s->t_last < now_ns())
			s->t_last = now_ns();
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The pingpong client's round trips, halved: one-way latency. */
static void report_latency(const struct st *s, uint64_t n)
{
	if (n == 0 || !s->rtt_ns)
		return;
	qsort(s->rtt_ns, n, sizeof(*s->rtt_ns), cmp_u64);
	printf("dp_stream: one-way latency (rtt/2) over %" PRIu64
	       " messages: min %.2f us, median %.2f us, p99 %.2f us, "
	       "p99.9 %.2f us, max %.2f us\n",
	       n, s->rtt_ns[0] / 2e3, s->rtt_ns[n / 2] / 2e3,
	       s->rtt_ns[n * 99 / 100] / 2e3, s->rtt_ns[n * 999 / 1000] / 2e3,
	       s->rtt_ns[n - 1] / 2e3);
}

static void on_writable(struct vbi_conn *c, void *arg)
{
	(void)c;
	pump(arg);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: vb_dp_stream --server --bind ADDR | --client --connect "
		"ADDR --source ADDR\n"
		"  [--port P] [--count N] [--max-payload B | --size B] [--sweep]\n"
		"  [--no-verify] [--one-way | --pingpong] [--busy-poll]\n"
		"  [--hold N --hold-ms MS] [--ring BYTES] [--verbose]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "server", no_argument, NULL, 'S' },
		{ "client", no_argument, NULL, 'C' },
		{ "bind", required_argument, NULL, 'b' },
		{ "connect", required_argument, NULL, 'c' },
		{ "source", required_argument, NULL, 'I' },
		{ "port", required_argument, NULL, 'p' },
		{ "count", required_argument, NULL, 'n' },
		{ "max-payload", required_argument, NULL, 'm' },
		{ "sweep", no_argument, NULL, 'w' },
		{ "size", required_argument, NULL, 'z' },
		{ "no-verify", no_argument, NULL, 'N' },
		{ "one-way", no_argument, NULL, 'o' },
		{ "pingpong", no_argument, NULL, 'P' },
		{ "busy-poll", no_argument, NULL, 'B' },
		{ "hold", required_argument, NULL, 'H' },
		{ "hold-ms", required_argument, NULL, 'M' },
		{ "ring", required_argument, NULL, 'r' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "scheme", required_argument, NULL, 's' },
		{ "tls-cert", required_argument, NULL, 'T' },
		{ "tls-key", required_argument, NULL, 'K' },
		{ "tls-ca", required_argument, NULL, 'A' },
		{ 0 },
	};
	static struct st s = { .port = "7480",
			       .count = 100000,
			       .max_payload = 256,
			       .ring = 1u << 20 };
	struct vbi_conn_cbs cbs = { .open = on_open,
				    .message = on_message,
				    .writable = on_writable,
				    .control = on_control,
				    .closed = on_closed };
	struct vbi_conn_opts o = { .name = "dp_stream" };
	struct vbi_tp *tp = NULL;
	struct vbi_listener *l = NULL;
	struct vbi_conn_stats cs = { 0 };
	struct vbi_tp_stats ts;
	const char *scheme = "rdma";
	int ch, rc, server = -1;
	double sec;

	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'S':
			server = 1;
			break;
		case 'C':
			server = 0;
			break;
		case 'b':
		case 'c':
			s.addr = optarg;
			break;
		case 'I':
			s.source = optarg;
			break;
		case 'T':
			o.tls_cert = optarg;
			break;
		case 'K':
			o.tls_key = optarg;
			break;
		case 'A':
			o.tls_ca = optarg;
			break;
		case 's':
			scheme = optarg;
			break;
		case 'p':
			s.port = optarg;
			break;
		case 'n':
			s.count = strtoull(optarg, NULL, 0);
			break;
		case 'm':
			s.max_payload = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'w':
			s.sweep = true;
			break;
		case 'N':
			s.no_verify = true;
			break;
		case 'o':
			s.one_way = true;
			break;
		case 'P':
			s.pingpong = true;
			break;
		case 'B':
			s.busy_poll = true;
			break;
		case 'z':
			s.fixed = true;
			s.max_payload = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'H':
			s.hold = atoi(optarg);
			break;
		case 'M':
			s.hold_ms = atoi(optarg);
			break;
		case 'r':
			s.ring = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'v':
			vbi_log_set(vbi_log_stderr, NULL, VBI_LOG_DEBUG);
			break;
		default:
			usage();
		}
	}
	if (server < 0 || !s.addr || (!server && !s.source) || s.hold < 0 ||
	    s.hold > HOLD_MAX || (s.one_way && s.pingpong))
		usage();
	s.server = server;
	s.to_send = s.one_way && server ? 0 : s.count;
	s.to_recv = s.one_way && !server ? 0 : s.count;
	if (s.pingpong && !server) {
		s.rtt_ns = calloc(s.count ? s.count : 1, sizeof(*s.rtt_ns));
		if (!s.rtt_ns)
			return 1;
	}
	o.busy_poll = s.busy_poll;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!vbi_log_enabled(VBI_LOG_WARN))
		vbi_log_set(vbi_log_stderr, NULL, VBI_LOG_WARN);
	o.ring_size = s.ring;
	o.max_msg = s.max_payload + 64 > 4096 ? s.max_payload + 64 : 4096;
	o.source = s.source;
	rc = vbi_tp_create(scheme, &tp);
	if (rc) {
		fprintf(stderr, "dp_stream: transport: %s\n", vb_strerror(rc));
		return 1;
	}
	if (server)
		rc = vbi_tp_listen(tp, s.addr, s.port, &o, &cbs, &s, &l);
	else
		rc = vbi_tp_connect(tp, s.addr, s.port, &o, &cbs, &s, &s.c);
	if (rc) {
		fprintf(stderr, "dp_stream: %s: %s\n",
			server ? "listen" : "connect", vb_strerror(rc));
		vbi_tp_destroy(tp);
		return 1;
	}
	/* Scripts wait for this line before starting the client. */
	if (server)
		printf("dp_stream: server listening on %s port %s\n", s.addr,
		       s.port);
	/* The server learns its connection in the open callback. */
	s.t_start = now_ns();
	while (!s.done && !s.failed) {
		rc = vbi_tp_progress(tp, s.busy_poll ? 0 : 100);
		if (rc < 0) {
			fprintf(stderr, "dp_stream: progress: %s\n",
				vb_strerror(rc));
			s.failed = true;
			break;
		}
		if (s.c) {
			pump(&s);
			if (s.pong_owed) {
				Verbus__Control r = VERBUS__CONTROL__INIT;
				Verbus__Pong p = VERBUS__PONG__INIT;

				r.body_case = VERBUS__CONTROL__BODY_PONG;
				r.pong = &p;
				s.pong_owed =
					vbi_conn_send_ctrl(s.c, &r) != VB_OK;
			}
			vbi_conn_stats(s.c, &cs);
		}
		if (s.received >= s.to_recv && s.sent >= s.to_send && s.c &&
		    !server && s.nheld == 0) {
			vbi_conn_flush(s.c);
			/* Close once the peer has everything: a Ping goes
			 * after the last frame, and its Pong comes back once
			 * the peer has handed them all up (30 s at most); then
			 * a few turns for the last acks. */
			drain(&s, tp);
			for (int i = 0; i < 20 && s.c; i++)
				vbi_tp_progress(tp, 10);
			break;
		}
	}
	/* Rates count from the open to the last message in or out. */
	sec = s.t_last > s.t_open ? (double)(s.t_last - s.t_open) / 1e9 : 0;
	if (s.t_open)
		printf("dp_stream: connected in %.3f s\n",
		       (double)(s.t_open - s.t_start) / 1e9);
	vbi_tp_stats_all(&ts);
	printf("dp_stream: %s: sent %" PRIu64 ", received %" PRIu64
	       " verified, %" PRIu64 " writes, %" PRIu64
	       " credit returns, %" PRIu64 " backpressure waits, %.2f s"
	       " (%.0f msg/s per direction)\n",
	       server ? "server" : "client", s.sent, s.received, cs.writes,
	       cs.credit_returns, cs.credit_waits, sec,
	       sec > 0 ? (double)(s.one_way ? s.count : s.received) / sec :
			 0.0);
	report_latency(&s, s.received);
	printf("dp_stream: memory registrations: %" PRIu64 " at open, %" PRIu64
	       " at the end\n",
	       s.mr_at_open, ts.mr_registered);
	if (ts.mr_registered != s.mr_at_open) {
		fprintf(stderr, "dp_stream: memory was registered while "
				"messages flowed\n");
		s.failed = true;
	}
	if (s.c)
		vbi_conn_close(s.c);
	vbi_listener_close(l);
	vbi_tp_destroy(tp);
	free(s.rtt_ns);
	if (s.failed)
		return 1;
	if (s.vanished)
		return EXIT_VANISHED;
	printf("dp_stream: PASS\n");
	return 0;
}
