/*
 * tcp_hostile.c - a hostile peer of verbusd's TCP transport, written from
 * docs/PROTOCOL.md ("Over TCP"): plain sockets and the protobuf-c codec,
 * no libverbus.  Each mode is one attack; tests/rdma/tcp-hostile.sh runs
 * them against a broker that carries a numbered stream meanwhile.
 *
 *   vb_tcp_hostile HOST PORT MODE [ARG...]
 *
 * Modes that expect the broker to close the connection print "closed
 * after N ms" and exit 0 when it does (a reject record, then the end of
 * the stream, counts as closed), 1 if it is still open after 10 s:
 *   garbage     an HTTP request instead of the version record
 *   version     a version record of another protocol version
 *   kind        the version record, then a record of an unknown kind
 *   bigctrl     a control record announcing 1,000,000 bytes
 *   early       a DATA record before the Hello
 *   nohello     the version record, then nothing (the handshake deadline)
 *   truncated   half a record header, then nothing
 *   flood       the handshake, then 5,000 empty Credits ignoring credits
 *   lie         the handshake, then a DATA record longer than the ring
 *   corrupt     the handshake, then a DATA record of garbage frames
 *   badhdr      the handshake, then a message with headers (an HMSG frame)
 *               whose header block is malformed (a line without ':')
 *   badhlen     the same, its header block's length past the payload
 *   hshort      an HMSG whose payload (3 bytes) cannot hold the block's
 *               length
 *   chunk0      a large message's middle chunk with no first chunk
 *   chunkjump   a first chunk, then one at an offset past where it ended
 *   chunkbig    a first chunk announcing 1 GiB (above max_payload)
 *   chunkbad    a chunk whose prefix has an unknown flag
 *   chunkhdr    a first chunk with headers whose block is not in it
 *   chunkstall  the first two chunks of a 1 MiB message, then nothing (the
 *               broker's stall timer)
 * Others:
 *   silent N SECS    N connections that send nothing, held SECS seconds;
 *                    prints how many were refused (by reason), closed by
 *                    the broker, or still open at the end
 *   stall SUBJ SECS  the handshake and a subscription to SUBJ, then never
 *                    reads: a consumer that takes nothing; exits after SECS
 *   route CLUSTER SECRET ID WHAT  a broker of the cluster (a RouteAuth in
 *                    its Hello, to a route listener) that then sends bad
 *                    input, WHAT: badsub (an invalid pattern), dupid (one
 *                    interest id twice), unsub (withdraws an id it never
 *                    declared), subscribe (a client's Subscribe), dropped
 *                    (a Dropped of no messages), dropsubj (a Dropped for
 *                    a wildcard subject); expects the route closed
 *
 * Exit: 0 as described, 1 the broker did not do what was expected, 2 usage.
 */
#include "core/chunk.h"
#include "core/frame.h"
#include "proto/codec.h"

#include <verbus/verbus.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REC_HDR 12u
#define REC_DATA 1u
#define REC_CTRL 2u
#define CLOSE_WAIT_MS 10000

static const char *host, *port;

static uint64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static int dial(void)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	int fd;

	if (getaddrinfo(host, port, &hints, &ai))
		return -1;
	fd = socket(ai->ai_family, SOCK_STREAM, 0);
	if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen)) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

static int send_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read exactly @len bytes within @ms; 0, or -1 (closed, error, timeout). */
static int recv_all(int fd, void *buf, size_t len, int ms)
{
	uint8_t *p = buf;
	struct pollfd pf = { .fd = fd, .events = POLLIN };

	while (len) {
		ssize_t n;

		if (poll(&pf, 1, ms) <= 0)
			return -1;
		n = recv(fd, p, len, 0);
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void put32(uint8_t *p, uint32_t v)
{
	v = htonl(v);
	memcpy(p, &v, 4);
}

static int send_rec(int fd, uint32_t kind, uint32_t len, const void *body,
		    uint32_t bytes)
{
	uint8_t h[REC_HDR];

	put32(h, kind);
	put32(h + 4, len);
	put32(h + 8, bytes);
	return send_all(fd, h, sizeof(h)) ||
			       (bytes && send_all(fd, body, bytes)) ?
		       -1 :
		       0;
}

/*
 * One HMSG frame (seq 1, at the start of the ring) whose header block is
 * what @mode breaks: "badhdr" a line without ':', "badhlen" a block length
 * past the payload, "hshort" a payload of 3 bytes.
 */
static int send_hmsg(int fd, const char *mode)
{
	static const char blk[] = "NATS/1.0\r\nno colon here\r\n\r\n";
	uint8_t payload[64], frame[128] __attribute__((aligned(8)));
	struct vbi_frame_msg m = { 0 };
	uint32_t hlen = sizeof(blk) - 1;
	size_t span;

	if (strcmp(mode, "badhlen") == 0)
		hlen = 1000;
	payload[0] = (uint8_t)hlen;
	payload[1] = (uint8_t)(hlen >> 8);
	payload[2] = 0;
	payload[3] = 0;
	memcpy(payload + 4, blk, sizeof(blk) - 1);
	payload[4 + sizeof(blk) - 1] = 'x';
	m.kind = VBI_FRAME_HMSG;
	m.topic = "hostile.hdr";
	m.topic_len = 11;
	m.payload = payload;
	m.payload_len = strcmp(mode, "hshort") == 0 ? 3 : 4 + sizeof(blk);
	m.seq = 1;
	if (vbi_frame_encode(frame, sizeof(frame), &m, &span))
		return -1;
	return send_rec(fd, REC_DATA, (uint32_t)span, frame, (uint32_t)span);
}

/* One CHUNK frame (core/chunk.h) of @len bytes of data, with sequence
 * number @seq; *@off counts the ring bytes sent. */
static int send_chunk(int fd, size_t *off, uint64_t seq, uint32_t total,
		      uint32_t at, uint32_t flags, uint32_t len)
{
	static uint8_t frame[4096] __attribute__((aligned(8)));
	uint8_t payload[2048];
	struct vbi_chunk ck = { .tag = 0x686f7374696c65ull,
				.total = total,
				.off = at,
				.flags = flags };
	struct vbi_frame_msg m = { 0 };
	size_t span;

	if (len > sizeof(payload) - VBI_CHUNK_PREFIX_LEN)
		return -1;
	vbi_chunk_put(payload, &ck);
	memset(payload + VBI_CHUNK_PREFIX_LEN, 'c', len);
	m.kind = VBI_FRAME_CHUNK;
	m.topic = "hostile.chunk";
	m.topic_len = 13;
	m.payload = payload;
	m.payload_len = VBI_CHUNK_PREFIX_LEN + len;
	m.seq = seq;
	if (vbi_frame_encode(frame, sizeof(frame), &m, &span))
		return -1;
	if (send_rec(fd, REC_DATA, (uint32_t)span, frame, (uint32_t)span))
		return -1;
	*off += span;
	return 0;
}

/* What @mode does wrong with a large message's chunks. */
static int send_chunks(int fd, const char *mode)
{
	size_t off = 0;

	if (strcmp(mode, "chunk0") == 0)
		return send_chunk(fd, &off, 1, 4096, 1024, 0, 1024);
	if (strcmp(mode, "chunkjump") == 0)
		return send_chunk(fd, &off, 1, 4096, 0, VBI_CHUNK_FIRST,
				  1024) ||
		       send_chunk(fd, &off, 2, 4096, 2048, 0, 1024);
	if (strcmp(mode, "chunkbig") == 0)
		return send_chunk(fd, &off, 1, 1u << 30, 0, VBI_CHUNK_FIRST,
				  1024);
	if (strcmp(mode, "chunkbad") == 0)
		return send_chunk(fd, &off, 1, 4096, 0, VBI_CHUNK_FIRST | 0x80,
				  1024);
	if (strcmp(mode, "chunkstall") == 0)
		return send_chunk(fd, &off, 1, 1u << 20, 0, VBI_CHUNK_FIRST,
				  1024) ||
		       send_chunk(fd, &off, 2, 1u << 20, 1024, 0, 1024);
	/* chunkhdr: the block's length says 1,000 bytes; 16 came. */
	return send_chunk(fd, &off, 1, 4096, 0,
			  VBI_CHUNK_FIRST | VBI_CHUNK_HDRS, 16);
}

static int send_ctrl(int fd, const Verbus__Control *m)
{
	uint8_t buf[VBI_CTRL_MAX];
	size_t len;

	if (vbi_codec_encode(m, buf, sizeof(buf), &len))
		return -1;
	return send_rec(fd, REC_CTRL, 0, buf, (uint32_t)len);
}

/* The version records, both ways.  0, or -1 (refused or closed). */
static int greet(int fd)
{
	uint8_t rec[VBI_CM_HDR_LEN];
	struct vbi_cm_hdr h;

	vbi_cm_hdr_encode(rec);
	if (send_all(fd, rec, sizeof(rec)) ||
	    recv_all(fd, rec, sizeof(rec), 5000) ||
	    vbi_cm_hdr_decode(rec, sizeof(rec), &h) || h.reason)
		return -1;
	return 0;
}

/* A route's credentials (mode route), packed; none by default. */
static uint8_t cred[VBI_CRED_MAX];
static size_t cred_len;

/* Greet, Hello (a 64 KiB ring, 16 credits), and the Welcome back. */
static int handshake(int fd, uint32_t *server_ring)
{
	Verbus__Control m = VERBUS__CONTROL__INIT, *w = NULL;
	Verbus__Hello h = VERBUS__HELLO__INIT;
	Verbus__RingInfo r = VERBUS__RING_INFO__INIT;
	uint8_t hdr[REC_HDR], body[VBI_CTRL_MAX];
	uint32_t n;

	if (greet(fd))
		return -1;
	r.addr = 1;
	r.size = 65536;
	h.version = VBI_PROTO_VERSION;
	h.name = (char *)"tcp-hostile";
	h.ring = &r;
	h.max_msg_size = 4096;
	h.credits = 16;
	h.credentials.data = cred;
	h.credentials.len = cred_len;
	m.body_case = VERBUS__CONTROL__BODY_HELLO;
	m.hello = &h;
	if (send_ctrl(fd, &m) || recv_all(fd, hdr, sizeof(hdr), 5000))
		return -1;
	memcpy(&n, hdr + 8, 4);
	n = ntohl(n);
	if (n > sizeof(body) || recv_all(fd, body, n, 5000) ||
	    vbi_codec_decode(body, n, &w))
		return -1;
	if (w->body_case != VERBUS__CONTROL__BODY_WELCOME) {
		vbi_codec_free(w);
		return -1;
	}
	*server_ring = w->welcome->ring->size;
	vbi_codec_free(w);
	return 0;
}

/* Wait until the broker closes @fd (what it sends meanwhile is read and
 * dropped): 0 and "closed after N ms", or -1 after CLOSE_WAIT_MS. */
static int expect_close(int fd, uint64_t t0)
{
	uint8_t buf[4096];
	struct pollfd pf = { .fd = fd, .events = POLLIN };

	while (now_ms() - t0 < CLOSE_WAIT_MS) {
		ssize_t n;

		if (poll(&pf, 1, 100) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
			printf("closed after %llu ms\n",
			       (unsigned long long)(now_ms() - t0));
			close(fd);
			return 0;
		}
	}
	printf("still open after %d ms\n", CLOSE_WAIT_MS);
	close(fd);
	return -1;
}

static int silent(int n, int secs)
{
	int *fds = calloc((size_t)n, sizeof(*fds));
	int refused[4] = { 0 }, closed = 0, open_ = 0, failed = 0;
	uint64_t end = now_ms() + (uint64_t)secs * 1000u;
	uint8_t rec[VBI_CM_HDR_LEN];

	if (!fds)
		return 1;
	for (int i = 0; i < n; i++)
		if ((fds[i] = dial()) < 0)
			failed++;
	while (now_ms() < end) {
		for (int i = 0; i < n; i++) {
			struct pollfd pf = { .fd = fds[i], .events = POLLIN };
			struct vbi_cm_hdr h;
			ssize_t r;

			if (fds[i] < 0 || poll(&pf, 1, 0) <= 0)
				continue;
			r = recv(fds[i], rec, sizeof(rec), MSG_PEEK);
			if (r == (ssize_t)sizeof(rec) &&
			    vbi_cm_hdr_decode(rec, sizeof(rec), &h) == VB_OK &&
			    h.reason)
				refused[h.reason < 4 ? h.reason : 0]++;
			else
				closed++;
			close(fds[i]);
			fds[i] = -1;
		}
		usleep(20000);
	}
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0) {
			open_++;
			close(fds[i]);
		}
	printf("silent: %d opened, %d refused full, %d refused address, "
	       "%d refused otherwise, %d closed, %d open at the end, %d "
	       "failed to connect\n",
	       n - failed, refused[1], refused[2], refused[0] + refused[3],
	       closed, open_, failed);
	free(fds);
	return 0;
}

/* Mode route: admitted as broker @id of @cluster, then @what. */
static int route(int fd, const char *cluster, const char *secret,
		 const char *id, const char *what)
{
	Verbus__Credentials cr = VERBUS__CREDENTIALS__INIT;
	Verbus__RouteAuth ra = VERBUS__ROUTE_AUTH__INIT;
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__RouteSub rs = VERBUS__ROUTE_SUB__INIT;
	Verbus__RouteUnsub ru = VERBUS__ROUTE_UNSUB__INIT;
	Verbus__Subscribe sub = VERBUS__SUBSCRIBE__INIT;
	Verbus__Dropped d = VERBUS__DROPPED__INIT;
	uint32_t ring;

	ra.cluster = (char *)cluster;
	ra.secret = (char *)secret;
	ra.broker_id = (char *)id;
	cr.route = &ra;
	if (verbus__credentials__get_packed_size(&cr) > sizeof(cred))
		return -1;
	cred_len = verbus__credentials__pack(&cr, cred);
	if (handshake(fd, &ring)) {
		fprintf(stderr, "vb_tcp_hostile: not admitted as a route\n");
		return -1;
	}
	printf("admitted as route %s\n", id);
	rs.id = 7;
	rs.subject = (char *)"ok.subject";
	rs.queue = (char *)"";
	m.body_case = VERBUS__CONTROL__BODY_ROUTE_SUB;
	m.route_sub = &rs;
	if (strcmp(what, "badsub") == 0) {
		rs.subject = (char *)"a.>.b";
	} else if (strcmp(what, "dupid") == 0) {
		if (send_ctrl(fd, &m))
			return -1;
	} else if (strcmp(what, "unsub") == 0) {
		ru.id = 99;
		m.body_case = VERBUS__CONTROL__BODY_ROUTE_UNSUB;
		m.route_unsub = &ru;
	} else if (strcmp(what, "subscribe") == 0) {
		sub.sid = 1;
		sub.subject = (char *)">";
		sub.queue = (char *)"";
		m.body_case = VERBUS__CONTROL__BODY_SUBSCRIBE;
		m.subscribe = &sub;
	} else if (strcmp(what, "dropped") == 0 ||
		   strcmp(what, "dropsubj") == 0) {
		d.subject = (char *)(what[4] == 's' ? "a.*" : "ok.subject");
		d.count = what[4] == 's' ? 5 : 0;
		m.body_case = VERBUS__CONTROL__BODY_DROPPED;
		m.dropped = &d;
	} else {
		return -1;
	}
	return send_ctrl(fd, &m);
}

static int usage(void)
{
	fprintf(stderr, "usage: vb_tcp_hostile HOST PORT MODE [ARG...] "
			"(see tests/rdma/tcp_hostile.c)\n");
	return 2;
}

int main(int argc, char **argv)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	uint8_t junk[4096];
	uint32_t ring = 0;
	const char *mode;
	uint64_t t0;
	int fd;

	if (argc < 4)
		return usage();
	host = argv[1];
	port = argv[2];
	mode = argv[3];
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(mode, "silent") == 0)
		return argc == 6 ? silent(atoi(argv[4]), atoi(argv[5])) :
				   usage();
	fd = dial();
	if (fd < 0) {
		fprintf(stderr, "vb_tcp_hostile: cannot connect to %s:%s\n",
			host, port);
		return 1;
	}
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 131 + 7);
	t0 = now_ms();
	if (strcmp(mode, "garbage") == 0) {
		const char *req = "GET / HTTP/1.0\r\n\r\n";

		send_all(fd, req, strlen(req));
	} else if (strcmp(mode, "version") == 0) {
		uint8_t rec[VBI_CM_HDR_LEN];

		vbi_cm_hdr_encode(rec);
		rec[5] ^= 0x40; /* another version */
		send_all(fd, rec, sizeof(rec));
	} else if (strcmp(mode, "kind") == 0) {
		if (greet(fd))
			return 1;
		send_rec(fd, 7, 0, junk, 16);
	} else if (strcmp(mode, "bigctrl") == 0) {
		if (greet(fd))
			return 1;
		/* The header only: the body never needs to come. */
		uint8_t h[REC_HDR];

		put32(h, REC_CTRL);
		put32(h + 4, 0);
		put32(h + 8, 1000000);
		send_all(fd, h, sizeof(h));
	} else if (strcmp(mode, "early") == 0) {
		if (greet(fd))
			return 1;
		send_rec(fd, REC_DATA, 64, junk, 64);
	} else if (strcmp(mode, "nohello") == 0) {
		if (greet(fd))
			return 1;
	} else if (strcmp(mode, "truncated") == 0) {
		if (greet(fd))
			return 1;
		send_all(fd, junk, REC_HDR / 2);
	} else if (strcmp(mode, "flood") == 0) {
		/* Credits that return nothing: the transport's own business,
		 * which no layer above limits; each still takes a credit. */
		Verbus__Credit cr = VERBUS__CREDIT__INIT;

		if (handshake(fd, &ring))
			return 1;
		m.body_case = VERBUS__CONTROL__BODY_CREDIT;
		m.credit = &cr;
		for (int i = 0; i < 5000; i++)
			if (send_ctrl(fd, &m))
				break; /* closed on us already */
	} else if (strcmp(mode, "lie") == 0) {
		if (handshake(fd, &ring))
			return 1;
		send_rec(fd, REC_DATA, 2 * ring, junk, 64);
	} else if (strcmp(mode, "corrupt") == 0) {
		if (handshake(fd, &ring))
			return 1;
		send_rec(fd, REC_DATA, 64, junk, 64);
	} else if (strcmp(mode, "badhdr") == 0 ||
		   strcmp(mode, "badhlen") == 0 ||
		   strcmp(mode, "hshort") == 0) {
		if (handshake(fd, &ring))
			return 1;
		if (send_hmsg(fd, mode))
			return 1;
	} else if (strncmp(mode, "chunk", 5) == 0) {
		if (handshake(fd, &ring))
			return 1;
		if (send_chunks(fd, mode))
			return 1;
	} else if (strcmp(mode, "stall") == 0 && argc == 6) {
		Verbus__Subscribe s = VERBUS__SUBSCRIBE__INIT;

		if (handshake(fd, &ring))
			return 1;
		s.sid = 1;
		s.subject = argv[4];
		m.body_case = VERBUS__CONTROL__BODY_SUBSCRIBE;
		m.subscribe = &s;
		if (send_ctrl(fd, &m))
			return 1;
		printf("stalled: subscribed to %s, reading nothing\n", argv[4]);
		sleep((unsigned)atoi(argv[5]));
		close(fd);
		return 0;
	} else if (strcmp(mode, "route") == 0 && argc == 8) {
		if (route(fd, argv[4], argv[5], argv[6], argv[7]))
			return 1;
	} else {
		close(fd);
		return usage();
	}
	return expect_close(fd, t0) ? 1 : 0;
}
