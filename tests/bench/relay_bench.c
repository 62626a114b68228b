/*
 * relay_bench.c - the floor of a broker's two hops on a device: the least
 * a relay can do, in raw verbs, measured the way `verbus bench` measures
 * Verbus (the "raw relay" column of scripts/bench-compare.sh).
 *
 *   vb_relay_bench relay --listen ADDR [--port P] [--next ADDR
 *       [--next-port P]]
 *   vb_relay_bench run --connect ADDR [--port P] --pub-source ADDR
 *       --sub-source ADDR [--sub-connect ADDR [--sub-port P]]
 *       [--sizes LIST] [--samples N] [--count N]
 *       [--warmup N] [--ring BYTES] [--events] [--timeout MS]
 *       [--format table|csv] [TEST...]        (latency rtt throughput)
 *
 * perftest measures one hop; a broker's pub -> broker -> sub path is two,
 * with the middle party on the same kind of CPU.  This relay does for each
 * message what any broker must and nothing else: a WRITE_WITH_IMM lands in
 * a ring registered for its connection (one RECV consumed and reposted),
 * and the relay forwards those bytes with one WRITE_WITH_IMM from that
 * ring into the other connection's ring at the driver: zero-copy, inline
 * when the device takes it, one completion asked for every SIGNAL_EVERY
 * posts.  No subjects, frames, matching or credits: the driver owns both
 * ends, so it reuses a slot once the message has reached the far end (the
 * relay's copy of it has then been read).  Whatever Verbus measures above
 * this relay is Verbus's own cost; what this relay measures above one raw
 * hop is the cost of having a middle party at all on that machine.
 *
 * The driver (`run`) is one process, as `verbus bench` is: its "pub"
 * connection binds --pub-source, its "sub" connection --sub-source, each
 * its own QP, CQ and device.  Every message carries its sequence number in
 * the immediate and in its first 8 bytes, both checked on arrival.
 *   latency     one message in flight: pub -> relay -> sub, timed from the
 *               post to the receive completion;
 *   rtt         pub -> relay -> sub, then sub -> relay -> pub (four hops,
 *               as a Verbus request and its reply);
 *   throughput  pub streams, as many in flight as the ring has slots.
 * Every party busy-polls (as perftest does) unless --events: then the
 * driver and the relay sleep on their completion channels when idle (the
 * relay does what each session's driver asks).
 *
 * Output: the rows and columns of `verbus bench` (--format csv: the same
 * CSV header), so that bench-compare-guest.sh reads both alike.
 *
 * Chains: a relay started with --next forwards to another relay instead
 * of to a driver's subscriber: when a driver's publisher connects, it
 * connects to the --next relay as that relay's publisher (from --listen's
 * address, so over that device) before it accepts, and its session's
 * second connection is that link.  The driver's subscriber then connects
 * to the last relay of the chain (--sub-connect).  Two relays make the
 * three hops of a message between two brokers of a cluster: client ->
 * relay A -> relay B -> client; each relay still does only what any
 * broker must.  The driver reuses a slot once a message has reached the
 * far end, which holds along a chain too: every relay's copy has been
 * read by then.
 *
 * A benchmark tool, not part of libverbus (tests/bench/CMakeLists.txt).
 * The connection record travels in rdma_cm private data, as perftest's
 * does over its side channel; Verbus itself negotiates with protobuf-c
 * (docs/PROTOCOL.md).  Exit: 0 done, 1 failure, 2 usage.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include "cli/stats.h"
#include "core/prof.h"

#define MAGIC 0x56425231u /* "VBR1" */
#define SLOTS_MAX 256u /* messages in flight at most */
#define SIZE_MAX_BYTES (1u << 20) /* largest message */
#define RING_MAX_BYTES (16u << 20) /* largest ring */
#define RING_DEFAULT (1u << 20) /* as a Verbus connection's ring */
#define SQ_DEPTH 512u
#define RQ_DEPTH 512u /* > SLOTS_MAX: a RECV is always posted */
#define SIGNAL_EVERY 32u /* one send completion asked for per this many */
#define INLINE_WANT 256u
#define CM_EVERY 4096u /* busy relay: empty polls between looks at rdma_cm */

/* Connect private data, driver -> relay: what this connection is. */
struct hello {
	uint32_t magic;
	uint8_t role; /* 0: pub, 1: sub */
	uint8_t events; /* 1: sleep on the completion channel when idle */
	uint16_t slots; /* messages the ring holds */
	uint32_t size; /* bytes a slot holds */
	uint32_t rkey; /* of the driver's ring for this connection */
	uint64_t addr;
} __attribute__((packed));

/* Accept private data, relay -> driver: where the relay's ring is. */
struct welcome {
	uint32_t magic;
	uint32_t rkey;
	uint64_t addr;
} __attribute__((packed));

/*
 * One side of a connection: its QP (the rdma_cm id's), the ring the peer
 * writes into, and for the driver the buffer it sends from.  The relay's
 * two connections share one PD and CQ (one device); the driver's each
 * have their own (two devices).
 */
struct conn {
	struct rdma_cm_id *id;
	struct ibv_pd *pd; /* owned when own_cq */
	struct ibv_comp_channel *cc; /* owned when own_cq */
	struct ibv_cq *cq; /* owned when own_cq */
	bool own_cq;
	uint8_t *ring; /* slots * size bytes; the peer writes here */
	struct ibv_mr *ring_mr;
	uint8_t *out; /* driver: sent from here */
	struct ibv_mr *out_mr;
	uint64_t peer_addr;
	uint32_t peer_rkey;
	uint32_t max_inline;
	uint32_t since_signal; /* posts since the last signaled one */
	uint32_t sq_used; /* posts not yet known to be complete */
	bool established;
};

/* What a run measures, with the settings it shares. */
struct opts {
	const char *connect, *port, *pub_src, *sub_src, *listen;
	const char *next, *next_port; /* relay: the next relay of a chain */
	const char *sub_connect, *sub_port; /* run: the chain's last relay */
	uint32_t sizes[16];
	size_t nsizes;
	uint64_t samples, count, warmup;
	uint32_t ring;
	bool events, csv;
	int timeout_ms;
	bool tests[3];
};

enum test { T_LATENCY, T_RTT, T_THROUGHPUT, T_COUNT };
static const char *const test_names[T_COUNT] = { "latency", "rtt",
						 "throughput" };

/* One result: the columns of `verbus bench`. */
struct row {
	enum test test;
	uint32_t size;
	uint64_t messages;
	double seconds, msgs_s, mb_s;
	struct cli_lat lat;
	uint64_t lost, dup, bad;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- both sides ---------------------------------------------------------- */

static int post_recvs(struct conn *c, unsigned n)
{
	struct ibv_recv_wr wr = { 0 }, *bad;

	/* WRITE_WITH_IMM consumes a RECV without using its buffer. */
	while (n--) {
		if (ibv_post_recv(c->id->qp, &wr, &bad)) {
			perror("relay_bench: ibv_post_recv");
			return -1;
		}
	}
	return 0;
}

/* A send completion: the posts it covers are done. */
static void sent(struct conn *c, const struct ibv_wc *wc)
{
	c->sq_used -= (uint32_t)wc->wr_id;
}

/*
 * Write @len bytes at @src (registered as @lkey) to the peer's ring slot
 * @slot, with @imm.  The caller has checked c->sq_used < SQ_DEPTH.
 */
static int post_write(struct conn *c, const uint8_t *src, uint32_t lkey,
		      uint32_t slot, uint32_t len, uint32_t imm)
{
	struct ibv_sge sge = { .addr = (uintptr_t)src,
			       .length = len,
			       .lkey = lkey };
	struct ibv_send_wr wr = { 0 }, *bad;

	wr.opcode = IBV_WR_RDMA_WRITE_WITH_IMM;
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.imm_data = htobe32(imm);
	wr.wr.rdma.remote_addr = c->peer_addr + (uint64_t)slot * len;
	wr.wr.rdma.rkey = c->peer_rkey;
	if (len <= c->max_inline)
		wr.send_flags |= IBV_SEND_INLINE;
	c->since_signal++;
	if (c->since_signal == SIGNAL_EVERY) {
		wr.send_flags |= IBV_SEND_SIGNALED;
		wr.wr_id = c->since_signal;
		c->since_signal = 0;
	}
	VBI_PROF(VBI_PROF_POST);
	if (ibv_post_send(c->id->qp, &wr, &bad)) {
		perror("relay_bench: ibv_post_send");
		return -1;
	}
	VBI_PROF(VBI_PROF_POSTED);
	c->sq_used++;
	return 0;
}

/* The QP, on the PD and CQ already in @c. */
static int make_qp(struct conn *c)
{
	struct ibv_qp_init_attr qa = { 0 };

	qa.send_cq = c->cq;
	qa.recv_cq = c->cq;
	qa.qp_type = IBV_QPT_RC;
	qa.cap.max_send_wr = SQ_DEPTH;
	qa.cap.max_recv_wr = RQ_DEPTH;
	qa.cap.max_send_sge = 1;
	qa.cap.max_recv_sge = 1;
	qa.cap.max_inline_data = INLINE_WANT;
	if (rdma_create_qp(c->id, c->pd, &qa)) {
		qa.cap.max_inline_data = 0;
		if (rdma_create_qp(c->id, c->pd, &qa)) {
			perror("relay_bench: rdma_create_qp");
			return -1;
		}
	}
	c->max_inline = qa.cap.max_inline_data;
	return 0;
}

/* Free a CQ, its completion channel and the PD beside them; each may be
 * NULL (never made). */
static void cq_destroy(struct ibv_pd *pd, struct ibv_comp_channel *cc,
		       struct ibv_cq *cq)
{
	if (cq)
		ibv_destroy_cq(cq);
	if (cc)
		ibv_destroy_comp_channel(cc);
	if (pd)
		ibv_dealloc_pd(pd);
}

/* A PD, a completion channel and a CQ of @cqe entries on @verbs: 0, or
 * -1 (said) with none of them left. */
static int cq_create(struct ibv_context *verbs, int cqe, struct ibv_pd **pd,
		     struct ibv_comp_channel **cc, struct ibv_cq **cq)
{
	*pd = ibv_alloc_pd(verbs);
	*cc = *pd ? ibv_create_comp_channel(verbs) : NULL;
	*cq = *cc ? ibv_create_cq(verbs, cqe, NULL, *cc, 0) : NULL;
	if (*cq)
		return 0;
	perror("relay_bench: PD, channel or CQ");
	cq_destroy(*pd, *cc, NULL);
	*pd = NULL;
	*cc = NULL;
	return -1;
}

/* PD, completion channel and CQ of @c's device, owned by @c. */
static int make_cq(struct conn *c)
{
	c->own_cq = true;
	return cq_create(c->id->verbs, 2 * (SQ_DEPTH + RQ_DEPTH), &c->pd,
			 &c->cc, &c->cq);
}

/* Register @len bytes for the ring (remote write) and, for the driver,
 * as many again to send from. */
static int make_bufs(struct conn *c, size_t len, bool out)
{
	c->ring = calloc(1, len);
	if (c->ring == NULL)
		return -1;
	c->ring_mr =
		ibv_reg_mr(c->pd, c->ring, len,
			   IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
	if (c->ring_mr == NULL)
		goto fail;
	if (!out)
		return 0;
	c->out = calloc(1, len);
	if (c->out == NULL)
		return -1;
	c->out_mr = ibv_reg_mr(c->pd, c->out, len, IBV_ACCESS_LOCAL_WRITE);
	if (c->out_mr == NULL)
		goto fail;
	return 0;
fail:
	perror("relay_bench: ibv_reg_mr");
	return -1;
}

/* Undo whatever of @c was built; @c is zeroed. */
static void conn_destroy(struct conn *c)
{
	if (c->id && c->id->qp)
		rdma_destroy_qp(c->id);
	if (c->out_mr)
		ibv_dereg_mr(c->out_mr);
	if (c->ring_mr)
		ibv_dereg_mr(c->ring_mr);
	free(c->out);
	free(c->ring);
	if (c->own_cq)
		cq_destroy(c->pd, c->cc, c->cq);
	if (c->id)
		rdma_destroy_id(c->id);
	memset(c, 0, sizeof(*c));
}

/* Sleep until @c's completion channel fires or @ms pass: 1 fired, 0
 * timed out, -1 error.  The CQ must have been armed. */
static int cq_sleep(struct conn *const *cs, size_t n, int ms)
{
	struct pollfd pfd[2];
	struct ibv_cq *cq;
	void *ctx;
	size_t i;
	int r;

	for (i = 0; i < n; i++)
		pfd[i] = (struct pollfd){ .fd = cs[i]->cc->fd,
					  .events = POLLIN };
	r = poll(pfd, (nfds_t)n, ms);
	if (r <= 0)
		return r < 0 && errno != EINTR ? -1 : 0;
	for (i = 0; i < n; i++) {
		if (!(pfd[i].revents & POLLIN))
			continue;
		if (ibv_get_cq_event(cs[i]->cc, &cq, &ctx))
			return -1;
		ibv_ack_cq_events(cq, 1);
	}
	return 1;
}

/* The next rdma_cm event, which must be @want for @id: 0, or -1 (said). */
static int expect(struct rdma_event_channel *ec, struct rdma_cm_id *id,
		  enum rdma_cm_event_type want, struct welcome *w, int ms)
{
	struct pollfd pfd = { .fd = ec->fd, .events = POLLIN };
	struct rdma_cm_event *ev;
	int ok;

	if (poll(&pfd, 1, ms) != 1) {
		fprintf(stderr, "relay_bench: no %s in %d ms\n",
			rdma_event_str(want), ms);
		return -1;
	}
	if (rdma_get_cm_event(ec, &ev)) {
		perror("relay_bench: rdma_get_cm_event");
		return -1;
	}
	ok = ev->event == want && ev->id == id;
	if (ok && w != NULL) {
		ok = ev->param.conn.private_data_len >= sizeof(*w);
		if (ok)
			memcpy(w, ev->param.conn.private_data, sizeof(*w));
		ok = ok && be32toh(w->magic) == MAGIC;
	}
	if (!ok)
		fprintf(stderr, "relay_bench: got %s (status %d), wanted %s\n",
			rdma_event_str(ev->event), ev->status,
			rdma_event_str(want));
	rdma_ack_cm_event(ev);
	return ok ? 0 : -1;
}

/* ---- the relay ----------------------------------------------------------- */

/* One pair of connections from one driver run. */
struct session {
	struct conn c[2]; /* by role: 0 pub, 1 sub */
	struct ibv_pd *pd;
	struct ibv_comp_channel *cc;
	struct ibv_cq *cq;
	struct ibv_context *verbs; /* the device all of it is on */
	/* --next: the channel of the link to the next relay (c[1]), its own
	 * so that the link is made synchronously; NULL otherwise. */
	struct rdma_event_channel *next_ec;
	uint32_t slots, size;
	bool events;
	uint64_t forwarded;
	/* Messages that arrived while the other send queue was full, by
	 * the connection they came on. */
	uint32_t wait[2][RQ_DEPTH];
	uint32_t wait_head[2], nwait[2];
};

static void session_end(struct session *s)
{
	int i;

	for (i = 0; i < 2; i++) {
		if (s->c[i].id && s->c[i].established)
			rdma_disconnect(s->c[i].id);
		conn_destroy(&s->c[i]);
	}
	/* Its events were acked or never read: the ids are gone. */
	if (s->next_ec)
		rdma_destroy_event_channel(s->next_ec);
	cq_destroy(s->pd, s->cc, s->cq);
	memset(s, 0, sizeof(*s));
}

/*
 * Connect @c from @src to the relay at @dst:@port as @role, with
 * @slots x @size rings.  A driver's connection (@s NULL) has its own PD,
 * CQ and a buffer to send from; a relay's link to the next relay (@s its
 * session) uses the session's PD and CQ and sends from its other ring.
 * 0, or -1 (said) with what was made left in @c for conn_destroy().
 */
static int dial(struct rdma_event_channel *ec, struct conn *c, const char *dst,
		const char *port, const char *src, int role, bool events,
		uint32_t slots, uint32_t size, const struct session *s)
{
	struct rdma_addrinfo hints = { 0 }, *to = NULL, *me = NULL;
	struct rdma_conn_param cp = { 0 };
	struct hello h = { 0 };
	struct welcome w;
	int rc = -1;

	hints.ai_port_space = RDMA_PS_TCP;
	if (rdma_getaddrinfo(dst, port, &hints, &to)) {
		fprintf(stderr, "relay_bench: cannot resolve %s\n", dst);
		goto out;
	}
	hints.ai_flags = RAI_PASSIVE;
	if (rdma_getaddrinfo(src, NULL, &hints, &me)) {
		fprintf(stderr, "relay_bench: cannot resolve %s\n", src);
		goto out;
	}
	if (rdma_create_id(ec, &c->id, NULL, RDMA_PS_TCP) ||
	    rdma_resolve_addr(c->id, me->ai_src_addr, to->ai_dst_addr, 2000)) {
		perror("relay_bench: rdma_resolve_addr");
		goto out;
	}
	if (expect(ec, c->id, RDMA_CM_EVENT_ADDR_RESOLVED, NULL, 5000) ||
	    rdma_resolve_route(c->id, 2000) ||
	    expect(ec, c->id, RDMA_CM_EVENT_ROUTE_RESOLVED, NULL, 5000))
		goto out;
	if (s != NULL) {
		if (c->id->verbs != s->verbs) {
			fprintf(stderr,
				"relay_bench: %s is not reached over "
				"--listen's device\n",
				dst);
			goto out;
		}
		c->pd = s->pd;
		c->cc = s->cc;
		c->cq = s->cq;
	} else if (make_cq(c)) {
		goto out;
	}
	if (make_qp(c) || make_bufs(c, (size_t)slots * size, s == NULL) ||
	    post_recvs(c, RQ_DEPTH))
		goto out;
	h.magic = htobe32(MAGIC);
	h.role = (uint8_t)role;
	h.events = events;
	h.slots = htobe16((uint16_t)slots);
	h.size = htobe32(size);
	h.rkey = htobe32(c->ring_mr->rkey);
	h.addr = htobe64((uintptr_t)c->ring);
	cp.private_data = &h;
	cp.private_data_len = sizeof(h);
	cp.responder_resources = 1;
	cp.initiator_depth = 1;
	cp.retry_count = 7;
	cp.rnr_retry_count = 7;
	if (rdma_connect(c->id, &cp)) {
		perror("relay_bench: rdma_connect");
		goto out;
	}
	if (expect(ec, c->id, RDMA_CM_EVENT_ESTABLISHED, &w, 10000))
		goto out;
	c->peer_addr = be64toh(w.addr);
	c->peer_rkey = be32toh(w.rkey);
	c->established = true;
	rc = 0;
out:
	rdma_freeaddrinfo(me);
	rdma_freeaddrinfo(to);
	return rc;
}

/*
 * --next: the session's second connection, a link to the next relay as
 * its publisher, made before the first connection is accepted.  0, or -1
 * (said) with the link undone.
 */
static int link_next(const struct opts *o, struct session *s)
{
	s->next_ec = rdma_create_event_channel();
	if (s->next_ec == NULL) {
		perror("relay_bench: rdma_create_event_channel");
		return -1;
	}
	if (dial(s->next_ec, &s->c[1], o->next,
		 o->next_port ? o->next_port : o->port, o->listen, 0, s->events,
		 s->slots, s->size, s) == 0)
		return 0;
	conn_destroy(&s->c[1]);
	return -1;
}

/*
 * A connect request: validate it and accept it, or reject it and return
 * false: the caller destroys the event's id once it has acked the event
 * (librdmacm waits for that ack before it destroys an id).  A session
 * left with no connection by a refusal is ended, so that the next driver
 * starts afresh.
 */
static bool on_request(const struct opts *o, struct session *s,
		       struct rdma_cm_event *ev)
{
	const struct hello *h = ev->param.conn.private_data;
	struct rdma_cm_id *id = ev->id;
	struct hello hv;
	struct welcome w;
	struct rdma_conn_param cp = { 0 };
	struct conn *c;

	if (h == NULL || ev->param.conn.private_data_len < sizeof(hv))
		goto reject;
	memcpy(&hv, h, sizeof(hv));
	hv.slots = be16toh(hv.slots);
	hv.size = be32toh(hv.size);
	if (be32toh(hv.magic) != MAGIC || hv.role > 1 || hv.slots == 0 ||
	    hv.slots > SLOTS_MAX || hv.size == 0 || hv.size > SIZE_MAX_BYTES ||
	    (uint64_t)hv.slots * hv.size > RING_MAX_BYTES)
		goto reject;
	/* In a chain the second connection is the link to --next. */
	if (o->next && hv.role != 0)
		goto reject;
	c = &s->c[hv.role];
	if (c->id != NULL)
		goto reject; /* that role is taken */
	if (s->verbs == NULL) {
		s->verbs = id->verbs;
		s->slots = hv.slots;
		s->size = hv.size;
		s->events = hv.events != 0;
		if (cq_create(id->verbs, 4 * (SQ_DEPTH + RQ_DEPTH), &s->pd,
			      &s->cc, &s->cq))
			goto reject;
	} else if (s->verbs != id->verbs || s->slots != hv.slots ||
		   s->size != hv.size || s->events != (hv.events != 0)) {
		goto reject; /* not the other half of this session */
	}
	c->id = id;
	c->pd = s->pd;
	c->cc = s->cc;
	c->cq = s->cq;
	c->peer_addr = be64toh(hv.addr);
	c->peer_rkey = be32toh(hv.rkey);
	if (make_qp(c) || make_bufs(c, (size_t)s->slots * s->size, false) ||
	    post_recvs(c, RQ_DEPTH))
		goto undo;
	if (o->next && link_next(o, s))
		goto undo;
	w.magic = htobe32(MAGIC);
	w.rkey = htobe32(c->ring_mr->rkey);
	w.addr = htobe64((uintptr_t)c->ring);
	cp.private_data = &w;
	cp.private_data_len = sizeof(w);
	cp.responder_resources = 1;
	cp.initiator_depth = 1;
	if (rdma_accept(id, &cp)) {
		perror("relay_bench: rdma_accept");
		goto undo;
	}
	return true;
undo:
	c->id = NULL; /* the event's id is the caller's to destroy */
	if (id->qp)
		rdma_destroy_qp(id);
	conn_destroy(c);
reject:
	fprintf(stderr, "relay_bench: connection refused\n");
	rdma_reject(id, NULL, 0);
	if (s->c[0].id == NULL && s->c[1].id == NULL)
		session_end(s);
	return false;
}

/* Which of the session's connections @id is, or -1. */
static int role_of(const struct session *s, const struct rdma_cm_id *id)
{
	int i;

	for (i = 0; i < 2; i++)
		if (s->c[i].id == id)
			return i;
	return -1;
}

/* Take every pending rdma_cm event (the channel is non-blocking). */
static int cm_events(const struct opts *o, struct rdma_event_channel *ec,
		     struct session *s)
{
	struct rdma_cm_event *ev;
	int role;

	while (rdma_get_cm_event(ec, &ev) == 0) {
		switch (ev->event) {
		case RDMA_CM_EVENT_CONNECT_REQUEST: {
			struct rdma_cm_id *id = ev->id;
			bool ok = on_request(o, s, ev);

			rdma_ack_cm_event(ev);
			if (!ok)
				rdma_destroy_id(id);
			break;
		}
		case RDMA_CM_EVENT_ESTABLISHED:
			role = role_of(s, ev->id);
			rdma_ack_cm_event(ev);
			if (role >= 0)
				s->c[role].established = true;
			break;
		case RDMA_CM_EVENT_DISCONNECTED:
		case RDMA_CM_EVENT_CONNECT_ERROR:
		case RDMA_CM_EVENT_UNREACHABLE:
		case RDMA_CM_EVENT_REJECTED:
		case RDMA_CM_EVENT_DEVICE_REMOVAL:
			role = role_of(s, ev->id);
			rdma_ack_cm_event(ev);
			if (role >= 0) {
				/* One side gone ends the session. */
				s->c[role].established = false;
				session_end(s);
			}
			break;
		default:
			rdma_ack_cm_event(ev);
			break;
		}
	}
	return errno == EAGAIN ? 0 : -1;
}

/* Send message @seq, which arrived on connection @from, on the other. */
static int send_on(struct session *s, int from, uint32_t seq)
{
	struct conn *in = &s->c[from], *out = &s->c[!from];
	uint32_t slot = seq % s->slots;

	s->forwarded++;
	return post_write(out, in->ring + (size_t)slot * s->size,
			  in->ring_mr->lkey, slot, s->size, seq);
}

/* Forward message @seq, which arrived on connection @from, to the other
 * one; while that send queue is full it waits, in order, in s->wait. */
static int forward(struct session *s, int from, uint32_t seq)
{
	if (s->nwait[from] > 0 || s->c[!from].sq_used >= SQ_DEPTH) {
		if (s->nwait[from] == RQ_DEPTH) {
			fprintf(stderr, "relay_bench: the driver broke its "
					"window\n");
			return -1;
		}
		s->wait[from][(s->wait_head[from] + s->nwait[from]++) %
			      RQ_DEPTH] = seq;
		return 0;
	}
	return send_on(s, from, seq);
}

/* Send what waited for room in a send queue, in order. */
static int forward_waiting(struct session *s)
{
	int from;
	uint32_t seq;

	for (from = 0; from < 2; from++) {
		while (s->nwait[from] > 0 && s->c[!from].sq_used < SQ_DEPTH) {
			seq = s->wait[from][s->wait_head[from]];
			s->wait_head[from] =
				(s->wait_head[from] + 1) % RQ_DEPTH;
			s->nwait[from]--;
			if (send_on(s, from, seq))
				return -1;
		}
	}
	return 0;
}

/* One pass over the CQ: >0 completions handled, 0 none, -1 the session
 * failed. */
static int relay_poll(struct session *s)
{
	struct ibv_wc wc[32];
	int n, i, from;

	n = ibv_poll_cq(s->cq, 32, wc);
	for (i = 0; i < n; i++) {
		from = wc[i].qp_num == s->c[0].id->qp->qp_num ? 0 : 1;
		if (wc[i].status != IBV_WC_SUCCESS) {
			fprintf(stderr, "relay_bench: %s completion: %s\n",
				from ? "sub" : "pub",
				ibv_wc_status_str(wc[i].status));
			return -1;
		}
		if (wc[i].opcode == IBV_WC_RECV_RDMA_WITH_IMM) {
			VBI_PROF(VBI_PROF_ARRIVED);
			if (post_recvs(&s->c[from], 1) ||
			    forward(s, from, be32toh(wc[i].imm_data)))
				return -1;
		} else if (wc[i].opcode == IBV_WC_RDMA_WRITE) {
			sent(&s->c[from], &wc[i]);
		}
	}
	if (n > 0 && forward_waiting(s))
		return -1;
	return n;
}

static int run_relay(const struct opts *o)
{
	struct rdma_event_channel *ec;
	struct rdma_cm_id *lid = NULL;
	struct rdma_addrinfo hints = { 0 }, *ai = NULL;
	struct session s = { 0 };
	unsigned idle = 0;
	int rc = 1, n;

	ec = rdma_create_event_channel();
	if (ec == NULL) {
		perror("relay_bench: rdma_create_event_channel");
		return 1;
	}
	if (fcntl(ec->fd, F_SETFL, fcntl(ec->fd, F_GETFL) | O_NONBLOCK))
		goto out_channel;
	hints.ai_flags = RAI_PASSIVE;
	hints.ai_port_space = RDMA_PS_TCP;
	if (rdma_getaddrinfo(o->listen, o->port, &hints, &ai)) {
		fprintf(stderr, "relay_bench: cannot resolve %s\n", o->listen);
		goto out_channel;
	}
	if (rdma_create_id(ec, &lid, NULL, RDMA_PS_TCP) ||
	    rdma_bind_addr(lid, ai->ai_src_addr) || rdma_listen(lid, 4)) {
		perror("relay_bench: listen");
		goto out_id;
	}
	printf("relay_bench: relay listening on %s:%s%s%s%s%s\n", o->listen,
	       o->port, o->next ? ", forwarding to " : "",
	       o->next ? o->next : "", o->next ? ":" : "",
	       o->next ? (o->next_port ? o->next_port : o->port) : "");
	fflush(stdout);
	while (!stop) {
		bool live = s.c[0].established && s.c[1].established;
		struct pollfd pfd[2] = { { .fd = ec->fd, .events = POLLIN } };

		if (!live) {
			if (poll(pfd, 1, 500) < 0 && errno != EINTR)
				break;
			if (cm_events(o, ec, &s))
				break;
			continue;
		}
		n = relay_poll(&s);
		if (n < 0) {
			session_end(&s);
			continue;
		}
		if (n > 0) {
			idle = 0;
			continue;
		}
		if (!s.events) {
			if (++idle % CM_EVERY == 0 && cm_events(o, ec, &s))
				break;
			continue;
		}
		/* Event-driven: arm, look once more, then sleep on both the
		 * CQ and rdma_cm. */
		if (ibv_req_notify_cq(s.cq, 0))
			break;
		n = relay_poll(&s);
		if (n < 0) {
			session_end(&s);
			continue;
		}
		if (n > 0)
			continue;
		pfd[1] = (struct pollfd){ .fd = s.cc->fd, .events = POLLIN };
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents & POLLIN) {
			struct ibv_cq *cq;
			void *ctx;

			if (ibv_get_cq_event(s.cc, &cq, &ctx))
				break;
			ibv_ack_cq_events(cq, 1);
		}
		if ((pfd[0].revents & POLLIN) && cm_events(o, ec, &s))
			break;
	}
	rc = stop ? 0 : 1;
	if (rc)
		perror("relay_bench: relay loop");
	session_end(&s);
out_id:
	if (lid)
		rdma_destroy_id(lid);
	rdma_freeaddrinfo(ai);
out_channel:
	rdma_destroy_event_channel(ec);
	return rc;
}

/* ---- the driver ---------------------------------------------------------- */

/* Connect @c from @src to the relay of --connect (@sub and --sub-connect:
 * that one) as @role. */
static int drv_connect(const struct opts *o, struct rdma_event_channel *ec,
		       struct conn *c, const char *src, int role,
		       uint32_t slots, uint32_t size)
{
	const char *dst = o->connect, *port = o->port;

	if (role == 1 && o->sub_connect) {
		dst = o->sub_connect;
		port = o->sub_port ? o->sub_port : o->port;
	}
	return dial(ec, c, dst, port, src, role, o->events, slots, size, NULL);
}

/* Disconnect and free both connections (the relay may have disconnected
 * the second already, so the events come in either order). */
static void drv_close(struct rdma_event_channel *ec, struct conn c[2])
{
	struct pollfd pfd = { .fd = ec->fd, .events = POLLIN };
	struct rdma_cm_event *ev;
	int i, open = 0;

	for (i = 0; i < 2; i++)
		if (c[i].established && rdma_disconnect(c[i].id) == 0)
			open |= 1 << i;
	while (open && poll(&pfd, 1, 2000) == 1 &&
	       rdma_get_cm_event(ec, &ev) == 0) {
		for (i = 0; i < 2; i++)
			if (ev->id == c[i].id &&
			    ev->event == RDMA_CM_EVENT_DISCONNECTED)
				open &= ~(1 << i);
		rdma_ack_cm_event(ev);
	}
	for (i = 0; i < 2; i++)
		conn_destroy(&c[i]);
}

/*
 * Poll @c's CQ once.  Send completions are counted off; each receive's
 * sequence number goes to @seqs (room for 32; NULL: none expected) and its
 * RECV is reposted.  Returns the receives, or -1 (said).
 */
static int poll_conn(struct conn *c, uint32_t *seqs)
{
	struct ibv_wc wc[32];
	int n, i, got = 0;

	n = ibv_poll_cq(c->cq, 32, wc);
	for (i = 0; i < n; i++) {
		if (wc[i].status != IBV_WC_SUCCESS) {
			fprintf(stderr, "relay_bench: completion: %s\n",
				ibv_wc_status_str(wc[i].status));
			return -1;
		}
		if (wc[i].opcode == IBV_WC_RDMA_WRITE) {
			sent(c, &wc[i]);
			continue;
		}
		if (seqs == NULL) {
			fprintf(stderr, "relay_bench: unexpected message\n");
			return -1;
		}
		VBI_PROF(VBI_PROF_ARRIVED);
		seqs[got++] = be32toh(wc[i].imm_data);
		if (post_recvs(c, 1))
			return -1;
	}
	return n < 0 ? -1 : got;
}

/* Wait for receives on @rx, polling @other's send completions too. */
static int wait_recv(const struct opts *o, struct conn *rx, struct conn *other,
		     uint32_t *seqs)
{
	uint64_t deadline = now_ns() + (uint64_t)o->timeout_ms * 1000000u;
	unsigned spins = 0;
	int n;

	for (;;) {
		if (poll_conn(other, NULL) < 0)
			return -1;
		n = poll_conn(rx, seqs);
		if (n != 0)
			return n;
		if (!o->events) {
			if (++spins % 1024 == 0 && now_ns() > deadline)
				goto late;
			continue;
		}
		if (ibv_req_notify_cq(rx->cq, 0))
			return -1;
		n = poll_conn(rx, seqs);
		if (n != 0)
			return n;
		n = cq_sleep(&rx, 1, o->timeout_ms);
		if (n < 0)
			return -1;
		if (n == 0 && now_ns() > deadline)
			goto late;
	}
late:
	fprintf(stderr, "relay_bench: nothing arrived in %d ms\n",
		o->timeout_ms);
	return -1;
}

/* Send message @seq from @c's slot for it, with its number in it. */
static int drv_send(struct conn *c, uint32_t slots, uint32_t size, uint64_t seq)
{
	uint32_t slot = (uint32_t)(seq % slots);

	while (c->sq_used >= SQ_DEPTH)
		if (poll_conn(c, NULL) < 0)
			return -1;
	memcpy(c->out + (size_t)slot * size, &seq, sizeof(seq));
	return post_write(c, c->out + (size_t)slot * size, c->out_mr->lkey,
			  slot, size, (uint32_t)seq);
}

/* Whether message @seq arrived intact in @c's ring. */
static bool arrived(const struct conn *c, uint32_t slots, uint32_t size,
		    uint64_t seq, uint32_t got)
{
	uint64_t v;

	memcpy(&v, c->ring + (size_t)(seq % slots) * size, sizeof(v));
	return got == (uint32_t)seq && v == seq;
}

/* latency and rtt: one message in flight. */
static int drv_latency(const struct opts *o, struct conn c[2], uint32_t slots,
		       struct row *r)
{
	struct cli_samples lat = { 0 };
	uint32_t seqs[32];
	uint64_t i, t0;
	int n, rc = -1;

	if (cli_samples_init(&lat, o->samples))
		return -1;
	for (i = 0; i < o->warmup + o->samples; i++) {
		t0 = now_ns();
		VBI_PROF(VBI_PROF_PUBLISH);
		if (drv_send(&c[0], slots, r->size, i))
			goto out;
		n = wait_recv(o, &c[1], &c[0], seqs);
		if (n < 0)
			goto out;
		VBI_PROF(VBI_PROF_DONE);
		if (n != 1 || !arrived(&c[1], slots, r->size, i, seqs[0]))
			r->bad++;
		if (r->test == T_RTT) {
			if (drv_send(&c[1], slots, r->size, i))
				goto out;
			n = wait_recv(o, &c[0], &c[1], seqs);
			if (n < 0)
				goto out;
			if (n != 1 ||
			    !arrived(&c[0], slots, r->size, i, seqs[0]))
				r->bad++;
		}
		if (i >= o->warmup)
			cli_samples_add(&lat, now_ns() - t0);
	}
	rc = 0;
out:
	if (rc)
		r->lost = o->warmup + o->samples - i;
	cli_samples_summary(&lat, &r->lat);
	r->messages = lat.n;
	cli_samples_fini(&lat);
	return rc;
}

/* throughput: pub streams through the relay, a window of @slots. */
static int drv_throughput(const struct opts *o, struct conn c[2],
			  uint32_t slots, struct row *r)
{
	uint64_t posted = 0, got = 0, t0 = now_ns();
	uint32_t seqs[32];
	int n, i;

	while (got < o->count) {
		while (posted < o->count && posted - got < slots)
			if (drv_send(&c[0], slots, r->size, posted++))
				goto fail;
		n = wait_recv(o, &c[1], &c[0], seqs);
		if (n < 0)
			goto fail;
		for (i = 0; i < n; i++, got++)
			if (!arrived(&c[1], slots, r->size, got, seqs[i]))
				r->bad++;
	}
	r->messages = got;
	r->seconds = (double)(now_ns() - t0) / 1e9;
	r->msgs_s = (double)got / r->seconds;
	r->mb_s = r->msgs_s * r->size / 1e6;
	return 0;
fail:
	r->messages = got;
	r->lost = o->count - got;
	return -1;
}

static double us(uint64_t ns)
{
	return (double)ns / 1e3;
}

static void print_rows(const struct opts *o, const struct row *rows, size_t n)
{
	size_t i;

	if (o->csv)
		printf("test,size,subs,messages,seconds,msgs_per_s,mb_per_s,"
		       "min_us,mean_us,p50_us,p90_us,p99_us,p99_9_us,max_us,"
		       "lost,dup,bad\n");
	for (i = 0; i < n; i++) {
		const struct row *r = &rows[i];
		const struct cli_lat *l = &r->lat;

		if (o->csv && r->test != T_THROUGHPUT)
			printf("%s,%u,,%" PRIu64 ",,,,%.3f,%.3f,%.3f,%.3f,%.3f,"
			       "%.3f,%.3f,",
			       test_names[r->test], r->size, r->messages,
			       us(l->min), l->mean / 1e3, us(l->p50),
			       us(l->p90), us(l->p99), us(l->p999), us(l->max));
		else if (o->csv)
			printf("%s,%u,1,%" PRIu64 ",%.6f,%.1f,%.3f,,,,,,,,",
			       test_names[r->test], r->size, r->messages,
			       r->seconds, r->msgs_s, r->mb_s);
		else if (r->test != T_THROUGHPUT)
			printf("%-10s %8u %8" PRIu64 " samples  p50 %9.2f  "
			       "p99 %9.2f  p99.9 %9.2f us",
			       test_names[r->test], r->size, r->messages,
			       us(l->p50), us(l->p99), us(l->p999));
		else
			printf("%-10s %8u %8" PRIu64 " messages %12.0f msg/s "
			       "%10.1f MB/s",
			       test_names[r->test], r->size, r->messages,
			       r->msgs_s, r->mb_s);
		if (o->csv)
			printf("%" PRIu64 ",%" PRIu64 ",%" PRIu64 "\n", r->lost,
			       r->dup, r->bad);
		else
			printf("  lost %" PRIu64 " bad %" PRIu64 "\n", r->lost,
			       r->bad);
	}
}

static int run_driver(const struct opts *o)
{
	struct rdma_event_channel *ec;
	struct row rows[16 * T_COUNT];
	size_t nrows = 0, si;
	int t, rc = 0;

	ec = rdma_create_event_channel();
	if (ec == NULL) {
		perror("relay_bench: rdma_create_event_channel");
		return 1;
	}
	for (si = 0; si < o->nsizes && rc == 0; si++) {
		uint32_t size = o->sizes[si];
		uint32_t slots = o->ring / size;

		if (slots > SLOTS_MAX)
			slots = SLOTS_MAX;
		if (slots == 0)
			slots = 1;
		for (t = 0; t < T_COUNT && rc == 0; t++) {
			struct conn c[2] = { 0 };
			struct row *r = &rows[nrows++];

			if (!o->tests[t]) {
				nrows--;
				continue;
			}
			memset(r, 0, sizeof(*r));
			r->test = (enum test)t;
			r->size = size;
			/* Both connections afresh for each run: the relay
			 * serves one pair at a time. */
			if (drv_connect(o, ec, &c[0], o->pub_src, 0, slots,
					size) ||
			    drv_connect(o, ec, &c[1], o->sub_src, 1, slots,
					size)) {
				rc = 1;
				nrows--; /* nothing measured: no row */
			} else if (t == T_THROUGHPUT) {
				rc = drv_throughput(o, c, slots, r) ? 1 : 0;
			} else {
				rc = drv_latency(o, c, slots, r) ? 1 : 0;
			}
			if (r->bad)
				rc = 1;
			drv_close(ec, c);
		}
	}
	print_rows(o, rows, nrows);
	rdma_destroy_event_channel(ec);
	return rc;
}

/* ---- main ---------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
		"usage: vb_relay_bench relay --listen ADDR [--port P] "
		"[--next ADDR [--next-port P]]\n"
		"       vb_relay_bench run --connect ADDR [--port P] "
		"--pub-source ADDR --sub-source ADDR\n"
		"           [--sub-connect ADDR [--sub-port P]] "
		"(the last relay of a chain)\n"
		"           [--sizes LIST] [--samples N] [--count N] "
		"[--warmup N] [--ring BYTES]\n"
		"           [--events] [--timeout MS] [--format table|csv] "
		"[latency] [rtt] [throughput]\n");
}

static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr,
			"relay_bench: bad number '%s' (%" PRIu64 "..%" PRIu64
			")\n",
			s, lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_sizes(struct opts *o, const char *list)
{
	char buf[256], *tok, *save = NULL;
	uint64_t v;

	if (strlen(list) >= sizeof(buf))
		return -1;
	strcpy(buf, list);
	o->nsizes = 0;
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (o->nsizes == 16 || parse_u64(tok, 8, SIZE_MAX_BYTES, &v))
			return -1;
		o->sizes[o->nsizes++] = (uint32_t)v;
	}
	return o->nsizes ? 0 : -1;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "connect", required_argument, NULL, 'c' },
		{ "port", required_argument, NULL, 'p' },
		{ "pub-source", required_argument, NULL, 'P' },
		{ "sub-source", required_argument, NULL, 'S' },
		{ "sizes", required_argument, NULL, 's' },
		{ "samples", required_argument, NULL, 'n' },
		{ "count", required_argument, NULL, 'N' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "ring", required_argument, NULL, 'r' },
		{ "events", no_argument, NULL, 'e' },
		{ "timeout", required_argument, NULL, 't' },
		{ "format", required_argument, NULL, 'f' },
		{ "next", required_argument, NULL, 'x' },
		{ "next-port", required_argument, NULL, 'X' },
		{ "sub-connect", required_argument, NULL, 'C' },
		{ "sub-port", required_argument, NULL, 'Q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct opts o = { .port = "18600",
			  .samples = 10000,
			  .count = 100000,
			  .warmup = 100,
			  .ring = RING_DEFAULT,
			  .timeout_ms = 10000,
			  .sizes = { 64 },
			  .nsizes = 1 };
	bool relay, any = false;
	uint64_t v;
	int ch, t;

	if (argc < 2 || (strcmp(argv[1], "relay") && strcmp(argv[1], "run"))) {
		usage();
		return 2;
	}
	relay = strcmp(argv[1], "relay") == 0;
	optind = 2;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'l':
			o.listen = optarg;
			break;
		case 'c':
			o.connect = optarg;
			break;
		case 'p':
			o.port = optarg;
			break;
		case 'P':
			o.pub_src = optarg;
			break;
		case 'x':
			o.next = optarg;
			break;
		case 'X':
			o.next_port = optarg;
			break;
		case 'C':
			o.sub_connect = optarg;
			break;
		case 'Q':
			o.sub_port = optarg;
			break;
		case 'S':
			o.sub_src = optarg;
			break;
		case 's':
			if (parse_sizes(&o, optarg))
				return usage(), 2;
			break;
		case 'n':
			if (parse_u64(optarg, 1, 100000000, &o.samples))
				return 2;
			break;
		case 'N':
			if (parse_u64(optarg, 1, UINT32_MAX, &o.count))
				return 2;
			break;
		case 'w':
			if (parse_u64(optarg, 0, 100000000, &o.warmup))
				return 2;
			break;
		case 'r':
			if (parse_u64(optarg, 8, RING_MAX_BYTES, &v))
				return 2;
			o.ring = (uint32_t)v;
			break;
		case 'e':
			o.events = true;
			break;
		case 't':
			if (parse_u64(optarg, 100, 3600000, &v))
				return 2;
			o.timeout_ms = (int)v;
			break;
		case 'f':
			if (strcmp(optarg, "csv") && strcmp(optarg, "table"))
				return usage(), 2;
			o.csv = strcmp(optarg, "csv") == 0;
			break;
		default:
			usage();
			return ch == 'h' ? 0 : 2;
		}
	}
	for (; optind < argc; optind++) {
		for (t = 0; t < T_COUNT; t++)
			if (strcmp(argv[optind], test_names[t]) == 0)
				break;
		if (t == T_COUNT)
			return usage(), 2;
		o.tests[t] = any = true;
	}
	if (!any)
		o.tests[T_LATENCY] = o.tests[T_RTT] = o.tests[T_THROUGHPUT] =
			true;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (relay) {
		if (o.listen == NULL)
			return usage(), 2;
		return run_relay(&o);
	}
	if (o.connect == NULL || o.pub_src == NULL || o.sub_src == NULL)
		return usage(), 2;
	return run_driver(&o);
}
