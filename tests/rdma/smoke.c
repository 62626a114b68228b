/*
 * smoke.c - the first end-to-end RDMA test: two processes, real verbs.
 *
 * A server and a client meet through rdma_cm (the client binding its own
 * host's address, so that traffic crosses the link between two rxe
 * devices), check each other's private-data record, exchange a protobuf-c
 * Hello/Welcome over SEND/RECV that carries the server's ring address, rkey
 * and size, and then play ping-pong: the client RDMA-WRITEs-with-immediate
 * round i into slot i of the server's ring, the server verifies every byte
 * and answers with a SEND whose every byte the client verifies.  Each side
 * registers one buffer, once, before the first message.
 *
 * It deliberately uses verbs and rdma_cm directly (not transport/): it
 * proves the toolchain, the harness and the device, independently of the
 * code it will later be used to test.
 *
 * With --rogue the client talks to verbusd instead and checks that the
 * broker isolates clients: see run_rogue().
 *
 * Exit status: 0 all verified, 1 verification or RDMA failure, 2 usage,
 * 3 the server refused us (e.g. version mismatch: --bad-version).
 */
#include "proto/codec.h"

#include <verbus/verbus.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <infiniband/verbs.h>
#include <netdb.h>
#include <poll.h>
#include <rdma/rdma_cma.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SLOTS 16 /* ring slots on the server, one round each */
#define RECVS 8 /* RECVs kept posted on each side */
#define EXIT_REFUSED 3

/* Command-line options. */
struct opts {
	int server; /* 1: listen; 0: connect */
	const char *addr; /* server: bind address; client: server address */
	const char *source; /* client: local address to bind (host K) */
	const char *port; /* rdma_cm port, as a string */
	unsigned count; /* ping-pong rounds */
	size_t size; /* bytes per message, both directions */
	int timeout_s; /* give up after this long */
	int bad_version; /* client: send a wrong protocol version */
	int rogue; /* client, against verbusd: probe the isolation */
};

/* One side's verbs objects, in the order they are created. */
struct ctx {
	struct rdma_event_channel *ec; /* rdma_cm events */
	struct rdma_cm_id *listen_id; /* server only */
	struct rdma_cm_id *id; /* the connection */
	struct ibv_pd *pd;
	struct ibv_comp_channel *cc; /* wakes us when the CQ has entries */
	struct ibv_cq *cq;
	uint8_t *buf; /* the one registered buffer */
	size_t buf_len;
	struct ibv_mr *mr; /* registration of buf, made once */
	size_t slot; /* bytes per ring slot (>= size) */
	uint8_t *ring; /* SLOTS * slot: RDMA-written by peer */
	uint8_t *sendbuf; /* what we SEND or RDMA-WRITE from */
	uint8_t *recvbufs; /* RECVS buffers of recv_len bytes */
	size_t recv_len;
	uint64_t peer_addr; /* the peer's ring */
	uint32_t peer_rkey;
	uint32_t peer_size;
	struct timespec deadline;
	const struct opts *o;
	struct ibv_wc early; /* a receive that completed before our send */
	int has_early;
};

static void die_usage(void)
{
	fprintf(stderr,
		"usage: vb_rdma_smoke --server --bind ADDR [options]\n"
		"       vb_rdma_smoke --client --connect ADDR --source ADDR "
		"[options]\n"
		"options: --port P (7471) --count N (1000) --size BYTES (4096)\n"
		"         --timeout SEC (60) --bad-version\n"
		"         --rogue (a client against verbusd: writes outside its "
		"ring must fail)\n");
	exit(2);
}

static int expired(const struct ctx *c)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > c->deadline.tv_sec ||
	       (now.tv_sec == c->deadline.tv_sec &&
		now.tv_nsec >= c->deadline.tv_nsec);
}

/* The bytes of round @round in direction @dir: cheap, and position-dependent
 * so that a shifted or stale buffer never verifies. */
static uint8_t pattern(unsigned round, unsigned dir, size_t i)
{
	uint32_t x = round * 2654435761u ^ dir * 0x9e3779b9u ^ (uint32_t)i;

	x ^= x >> 15;
	x *= 0x2c1b3c6du;
	x ^= x >> 12;
	return (uint8_t)x;
}

static void fill(uint8_t *p, size_t n, unsigned round, unsigned dir)
{
	for (size_t i = 0; i < n; i++)
		p[i] = pattern(round, dir, i);
}

static int verify(const uint8_t *p, size_t n, unsigned round, unsigned dir)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] != pattern(round, dir, i)) {
			fprintf(stderr,
				"smoke: round %u: byte %zu is 0x%02x, "
				"expected 0x%02x\n",
				round, i, p[i], pattern(round, dir, i));
			return -1;
		}
	}
	return 0;
}

/* What we keep of an rdma_cm event after acking it: the event's own
 * private data is freed by rdma_ack_cm_event(). */
struct cm_info {
	enum rdma_cm_event_type event;
	int status;
	struct rdma_cm_id *id;
	uint8_t pd[64]; /* a copy of the private data */
	uint8_t pd_len;
};

/* Wait for one rdma_cm event of type @want; anything else is a failure
 * (reported, with the event's status). */
static int expect_event(struct ctx *c, enum rdma_cm_event_type want,
			struct cm_info *copy)
{
	struct rdma_cm_event *ev;
	struct pollfd pfd = { .fd = c->ec->fd, .events = POLLIN };
	int ok;

	while (poll(&pfd, 1, 200) == 0) {
		if (expired(c)) {
			fprintf(stderr, "smoke: timed out waiting for %s\n",
				rdma_event_str(want));
			return -1;
		}
	}
	if (rdma_get_cm_event(c->ec, &ev)) {
		perror("smoke: rdma_get_cm_event");
		return -1;
	}
	ok = ev->event == want;
	if (copy) {
		copy->event = ev->event;
		copy->status = ev->status;
		copy->id = ev->id;
		copy->pd_len = 0;
		if (ev->param.conn.private_data) {
			copy->pd_len = ev->param.conn.private_data_len;
			if (copy->pd_len > sizeof(copy->pd))
				copy->pd_len = sizeof(copy->pd);
			memcpy(copy->pd, ev->param.conn.private_data,
			       copy->pd_len);
		}
	}
	if (!ok)
		fprintf(stderr, "smoke: got %s (status %d), wanted %s\n",
			rdma_event_str(ev->event), ev->status,
			rdma_event_str(want));
	rdma_ack_cm_event(ev);
	return ok ? 0 : -1;
}

/* Poll one completion, sleeping on the completion channel when idle. */
/* The next completion, whatever its status. */
static int wait_wc_any(struct ctx *c, struct ibv_wc *wc)
{
	struct pollfd pfd = { .fd = c->cc->fd, .events = POLLIN };
	struct ibv_cq *ev_cq;
	void *ev_ctx;
	int n;

	if (c->has_early) {
		*wc = c->early;
		c->has_early = 0;
		return 0;
	}
	for (;;) {
		n = ibv_poll_cq(c->cq, 1, wc);
		if (n < 0)
			return -1;
		if (n == 1)
			break;
		if (ibv_req_notify_cq(c->cq, 0))
			return -1;
		/* Re-poll: a completion may have landed before the request. */
		n = ibv_poll_cq(c->cq, 1, wc);
		if (n < 0)
			return -1;
		if (n == 1)
			break;
		while (poll(&pfd, 1, 200) == 0) {
			if (expired(c)) {
				fprintf(stderr, "smoke: timed out waiting for "
						"a completion\n");
				return -1;
			}
		}
		if (ibv_get_cq_event(c->cc, &ev_cq, &ev_ctx))
			return -1;
		ibv_ack_cq_events(ev_cq, 1);
	}
	return 0;
}

/* The next completion, which must have succeeded. */
static int wait_wc(struct ctx *c, struct ibv_wc *wc)
{
	if (wait_wc_any(c, wc))
		return -1;
	if (wc->status != IBV_WC_SUCCESS) {
		fprintf(stderr, "smoke: completion error: %s (wr_id %llu)\n",
			ibv_wc_status_str(wc->status),
			(unsigned long long)wc->wr_id);
		return -1;
	}
	return 0;
}

/*
 * Wait for the completion of the send we just posted. The peer may answer
 * it, and its answer complete here, before our send's own completion (the
 * ACK that completes a send can trail the peer's reply), so one receive is
 * kept aside for the next wait_wc().
 */
static int wait_send(struct ctx *c)
{
	struct ibv_wc wc;

	for (;;) {
		if (wait_wc(c, &wc))
			return -1;
		if (!(wc.opcode & IBV_WC_RECV))
			return 0;
		if (c->has_early) {
			fprintf(stderr, "smoke: two receives before our send "
					"completed\n");
			return -1;
		}
		c->early = wc;
		c->has_early = 1;
	}
}

static int post_recv(struct ctx *c, unsigned idx)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)(c->recvbufs + idx * c->recv_len),
		.length = (uint32_t)c->recv_len,
		.lkey = c->mr->lkey,
	};
	struct ibv_recv_wr wr = { .wr_id = idx, .sg_list = &sge, .num_sge = 1 };
	struct ibv_recv_wr *bad;

	return ibv_post_recv(c->id->qp, &wr, &bad) ? -1 : 0;
}

/* Send @len bytes of sendbuf: SEND, or WRITE_WITH_IMM to @raddr. */
static int post_send(struct ctx *c, size_t len, int write, uint64_t raddr,
		     uint32_t imm)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)c->sendbuf,
		.length = (uint32_t)len,
		.lkey = c->mr->lkey,
	};
	struct ibv_send_wr wr = {
		.wr_id = 1000000,
		.sg_list = &sge,
		.num_sge = 1,
		.opcode = write ? IBV_WR_RDMA_WRITE_WITH_IMM : IBV_WR_SEND,
		.send_flags = IBV_SEND_SIGNALED,
	};
	struct ibv_send_wr *bad;

	if (write) {
		wr.imm_data = htonl(imm);
		wr.wr.rdma.remote_addr = raddr;
		wr.wr.rdma.rkey = c->peer_rkey;
	}
	if (ibv_post_send(c->id->qp, &wr, &bad)) {
		perror("smoke: ibv_post_send");
		return -1;
	}
	return 0;
}

/* Allocate and register the one buffer; create CQ and QP on c->id. */
static int setup_verbs(struct ctx *c)
{
	struct ibv_qp_init_attr qa = { 0 };
	size_t ring_len;

	c->slot = (c->o->size + 63) & ~(size_t)63;
	ring_len = SLOTS * c->slot;
	c->recv_len = c->o->size > VBI_CTRL_MAX ? c->o->size : VBI_CTRL_MAX;
	c->buf_len = ring_len + c->slot + RECVS * c->recv_len;
	if (posix_memalign((void **)&c->buf, 4096, c->buf_len))
		return -1;
	memset(c->buf, 0, c->buf_len);
	c->ring = c->buf;
	c->sendbuf = c->buf + ring_len;
	c->recvbufs = c->sendbuf + c->slot;

	c->pd = ibv_alloc_pd(c->id->verbs);
	if (!c->pd)
		return -1;
	c->mr = ibv_reg_mr(c->pd, c->buf, c->buf_len,
			   IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
	if (!c->mr) {
		perror("smoke: ibv_reg_mr");
		return -1;
	}
	c->cc = ibv_create_comp_channel(c->id->verbs);
	if (!c->cc)
		return -1;
	c->cq = ibv_create_cq(c->id->verbs, 4 * RECVS, NULL, c->cc, 0);
	if (!c->cq)
		return -1;
	qa.send_cq = c->cq;
	qa.recv_cq = c->cq;
	qa.qp_type = IBV_QPT_RC;
	qa.cap.max_send_wr = 4;
	qa.cap.max_recv_wr = RECVS;
	qa.cap.max_send_sge = 1;
	qa.cap.max_recv_sge = 1;
	if (rdma_create_qp(c->id, c->pd, &qa)) {
		perror("smoke: rdma_create_qp");
		return -1;
	}
	for (unsigned i = 0; i < RECVS; i++)
		if (post_recv(c, i))
			return -1;
	printf("smoke: %s: device %s, one buffer of %zu bytes registered "
	       "once (lkey 0x%x), qp 0x%x\n",
	       c->o->server ? "server" : "client",
	       ibv_get_device_name(c->id->verbs->device), c->buf_len,
	       c->mr->lkey, c->id->qp->qp_num);
	return 0;
}

/* Free whatever exists, in reverse order of creation, and forget it. */
static void teardown(struct ctx *c)
{
	if (c->id && c->id->qp)
		rdma_destroy_qp(c->id);
	if (c->cq)
		ibv_destroy_cq(c->cq);
	if (c->cc)
		ibv_destroy_comp_channel(c->cc);
	if (c->mr)
		ibv_dereg_mr(c->mr);
	if (c->pd)
		ibv_dealloc_pd(c->pd);
	if (c->id)
		rdma_destroy_id(c->id);
	if (c->listen_id)
		rdma_destroy_id(c->listen_id);
	if (c->ec)
		rdma_destroy_event_channel(c->ec);
	free(c->buf);
	c->id = c->listen_id = NULL;
	c->cq = NULL;
	c->cc = NULL;
	c->mr = NULL;
	c->pd = NULL;
	c->ec = NULL;
	c->buf = NULL;
}

/* SEND one control message from sendbuf. */
static int send_ctrl(struct ctx *c, const Verbus__Control *m)
{
	size_t len;
	int rc = vbi_codec_encode(m, c->sendbuf, c->slot, &len);

	if (rc) {
		fprintf(stderr, "smoke: encode: %s\n", vb_strerror(rc));
		return -1;
	}
	if (post_send(c, len, 0, 0, 0) || wait_send(c))
		return -1;
	return 0;
}

/* Receive one control message (and repost its buffer). */
static int recv_ctrl(struct ctx *c, Verbus__Control **m)
{
	struct ibv_wc wc;
	int rc;

	if (wait_wc(c, &wc))
		return -1;
	if (wc.opcode != IBV_WC_RECV) {
		fprintf(stderr,
			"smoke: expected a control RECV, got opcode "
			"%d\n",
			wc.opcode);
		return -1;
	}
	rc = vbi_codec_decode(c->recvbufs + wc.wr_id * c->recv_len, wc.byte_len,
			      m);
	if (post_recv(c, (unsigned)wc.wr_id))
		return -1;
	if (rc) {
		fprintf(stderr, "smoke: bad control message: %s\n",
			vb_strerror(rc));
		return -1;
	}
	return 0;
}

static void ring_info(struct ctx *c, Verbus__RingInfo *r)
{
	r->addr = (uintptr_t)c->ring;
	r->rkey = c->mr->rkey;
	/* Hello/Welcome insist on a power of two: advertise the largest
	 * power of two inside the ring. */
	r->size = 1;
	while ((size_t)r->size * 2 <= SLOTS * c->slot && r->size < (1u << 31))
		r->size *= 2;
}

static int run_server(struct ctx *c)
{
	struct rdma_addrinfo hints = { .ai_flags = RAI_PASSIVE,
				       .ai_port_space = RDMA_PS_TCP };
	struct rdma_addrinfo *ai;
	struct cm_info ev;
	struct rdma_conn_param cp = { 0 };
	struct vbi_cm_hdr hdr;
	uint8_t pd[VBI_CM_HDR_LEN];
	Verbus__Control *m = NULL;
	Verbus__Control out = VERBUS__CONTROL__INIT;
	Verbus__Welcome w = VERBUS__WELCOME__INIT;
	Verbus__RingInfo r = VERBUS__RING_INFO__INIT;
	struct ibv_wc wc;
	unsigned round;
	int rc;

	if (rdma_getaddrinfo(c->o->addr, c->o->port, &hints, &ai)) {
		perror("smoke: rdma_getaddrinfo");
		return 1;
	}
	rc = rdma_create_id(c->ec, &c->listen_id, NULL, RDMA_PS_TCP) ||
	     rdma_bind_addr(c->listen_id, ai->ai_src_addr) ||
	     rdma_listen(c->listen_id, 1);
	rdma_freeaddrinfo(ai);
	if (rc) {
		perror("smoke: listen");
		return 1;
	}
	printf("smoke: server listening on %s port %s\n", c->o->addr,
	       c->o->port);
	fflush(stdout);

	for (;;) {
		if (expect_event(c, RDMA_CM_EVENT_CONNECT_REQUEST, &ev))
			return 1;
		rc = vbi_cm_hdr_decode(ev.pd, ev.pd_len, &hdr);
		if (rc == VB_OK)
			break;
		/* Refuse, with our own record so the client can tell why. */
		fprintf(stderr, "smoke: refusing a client: %s (version %u)\n",
			vb_strerror(rc), rc == VB_EVERSION ? hdr.version : 0);
		vbi_cm_hdr_encode(pd);
		rdma_reject(ev.id, pd, sizeof(pd));
		rdma_destroy_id(ev.id);
	}
	c->id = ev.id;
	if (setup_verbs(c))
		return 1;
	vbi_cm_hdr_encode(pd);
	cp.private_data = pd;
	cp.private_data_len = sizeof(pd);
	cp.responder_resources = 1;
	cp.initiator_depth = 1;
	cp.rnr_retry_count = 7;
	if (rdma_accept(c->id, &cp) ||
	    expect_event(c, RDMA_CM_EVENT_ESTABLISHED, NULL)) {
		perror("smoke: accept");
		return 1;
	}

	if (recv_ctrl(c, &m))
		return 1;
	if (m->body_case != VERBUS__CONTROL__BODY_HELLO ||
	    m->hello->version != VBI_PROTO_VERSION ||
	    m->hello->max_msg_size < c->o->size) {
		fprintf(stderr, "smoke: unexpected %s from client\n",
			vbi_codec_kind_name(m));
		vbi_codec_free(m);
		return 1;
	}
	printf("smoke: hello from \"%s\" (ring 0x%llx rkey 0x%x size %u)\n",
	       m->hello->name, (unsigned long long)m->hello->ring->addr,
	       m->hello->ring->rkey, m->hello->ring->size);
	vbi_codec_free(m);
	ring_info(c, &r);
	w.version = VBI_PROTO_VERSION;
	w.session_id = 1;
	w.ring = &r;
	w.credits = RECVS;
	w.max_msg_size = (uint32_t)c->o->size;
	out.body_case = VERBUS__CONTROL__BODY_WELCOME;
	out.welcome = &w;
	if (send_ctrl(c, &out))
		return 1;

	for (round = 0; round < c->o->count; round++) {
		uint32_t imm;
		size_t slot_off = (round % SLOTS) * c->slot;

		if (wait_wc(c, &wc))
			return 1;
		if (wc.opcode != IBV_WC_RECV_RDMA_WITH_IMM) {
			fprintf(stderr,
				"smoke: round %u: opcode %d, expected "
				"RECV_RDMA_WITH_IMM\n",
				round, wc.opcode);
			return 1;
		}
		imm = ntohl(wc.imm_data);
		if (post_recv(c, (unsigned)wc.wr_id))
			return 1;
		if (imm != round) {
			fprintf(stderr, "smoke: immediate %u, expected %u\n",
				imm, round);
			return 1;
		}
		if (verify(c->ring + slot_off, c->o->size, round, 0))
			return 1;
		fill(c->sendbuf, c->o->size, round, 1);
		if (post_send(c, c->o->size, 0, 0, 0) || wait_send(c))
			return 1;
	}
	if (expect_event(c, RDMA_CM_EVENT_DISCONNECTED, NULL))
		return 1;
	printf("smoke: server verified %u WRITE_WITH_IMM messages of %zu "
	       "bytes (%llu bytes) and sent %u SENDs; client disconnected\n",
	       c->o->count, c->o->size,
	       (unsigned long long)c->o->count * c->o->size, c->o->count);
	return 0;
}

/* Resolve and connect, retrying while the server is not listening yet. */
static int client_connect(struct ctx *c)
{
	struct rdma_addrinfo hints = { .ai_port_space = RDMA_PS_TCP };
	struct rdma_addrinfo *src = NULL, *dst = NULL;
	struct rdma_conn_param cp = { 0 };
	struct cm_info ev;
	struct vbi_cm_hdr hdr;
	uint8_t pd[VBI_CM_HDR_LEN];
	int rc = -1;

	hints.ai_flags = RAI_PASSIVE;
	if (rdma_getaddrinfo(c->o->source, NULL, &hints, &src))
		goto out_perror;
	hints.ai_flags = 0;
	if (rdma_getaddrinfo(c->o->addr, c->o->port, &hints, &dst))
		goto out_perror;
	for (;;) {
		if (rdma_create_id(c->ec, &c->id, NULL, RDMA_PS_TCP) ||
		    rdma_resolve_addr(c->id, src->ai_src_addr, dst->ai_dst_addr,
				      2000) ||
		    expect_event(c, RDMA_CM_EVENT_ADDR_RESOLVED, NULL) ||
		    rdma_resolve_route(c->id, 2000) ||
		    expect_event(c, RDMA_CM_EVENT_ROUTE_RESOLVED, NULL))
			goto out_perror;
		if (setup_verbs(c))
			goto out;
		vbi_cm_hdr_encode(pd);
		if (c->o->bad_version)
			pd[5] ^= 0x7f;
		cp.private_data = pd;
		cp.private_data_len = sizeof(pd);
		cp.responder_resources = 1;
		cp.initiator_depth = 1;
		cp.retry_count = 7;
		cp.rnr_retry_count = 7;
		if (rdma_connect(c->id, &cp))
			goto out_perror;
		if (expect_event(c, RDMA_CM_EVENT_ESTABLISHED, &ev) == 0)
			break;
		if (ev.event != RDMA_CM_EVENT_REJECTED &&
		    ev.event != RDMA_CM_EVENT_UNREACHABLE)
			goto out;
		if (ev.event == RDMA_CM_EVENT_REJECTED &&
		    vbi_cm_hdr_decode(ev.pd, ev.pd_len, &hdr) == VB_OK) {
			/* A Verbus server said no: final. */
			fprintf(stderr,
				"smoke: refused by the server "
				"(it speaks version %u)\n",
				hdr.version);
			rc = EXIT_REFUSED;
			goto out;
		}
		/* Nobody listening yet: start again from a clean id. */
		teardown(c);
		if (expired(c))
			goto out;
		usleep(200000);
		c->ec = rdma_create_event_channel();
		if (!c->ec)
			goto out_perror;
	}
	rc = vbi_cm_hdr_decode(ev.pd, ev.pd_len, &hdr);
	if (rc) {
		fprintf(stderr, "smoke: server's record: %s\n",
			vb_strerror(rc));
		rc = -1;
	}
	goto out;
out_perror:
	perror("smoke: connect");
out:
	if (src)
		rdma_freeaddrinfo(src);
	if (dst)
		rdma_freeaddrinfo(dst);
	return rc;
}

/* Connect and exchange Hello/Welcome: the peer's ring is then known. */
static int client_hello(struct ctx *c)
{
	Verbus__Control out = VERBUS__CONTROL__INIT, *m = NULL;
	Verbus__Hello h = VERBUS__HELLO__INIT;
	Verbus__RingInfo r = VERBUS__RING_INFO__INIT;
	int rc;

	rc = client_connect(c);
	if (rc)
		return rc == EXIT_REFUSED ? EXIT_REFUSED : 1;
	ring_info(c, &r);
	h.version = VBI_PROTO_VERSION;
	h.name = (char *)"vb_rdma_smoke";
	h.ring = &r;
	h.max_msg_size = (uint32_t)c->o->size;
	h.credits = RECVS;
	out.body_case = VERBUS__CONTROL__BODY_HELLO;
	out.hello = &h;
	if (send_ctrl(c, &out) || recv_ctrl(c, &m))
		return 1;
	if (m->body_case != VERBUS__CONTROL__BODY_WELCOME ||
	    m->welcome->ring->size < c->o->size) {
		fprintf(stderr, "smoke: unexpected %s from server\n",
			vbi_codec_kind_name(m));
		vbi_codec_free(m);
		return 1;
	}
	c->peer_addr = m->welcome->ring->addr;
	c->peer_rkey = m->welcome->ring->rkey;
	c->peer_size = m->welcome->ring->size;
	vbi_codec_free(m);
	printf("smoke: welcome: server ring 0x%llx rkey 0x%x size %u\n",
	       (unsigned long long)c->peer_addr, c->peer_rkey, c->peer_size);
	return 0;
}

/* One plain RDMA WRITE of 8 bytes to @raddr with @rkey; its status. */
static int write_status(struct ctx *c, uint64_t raddr, uint32_t rkey,
			enum ibv_wc_status *status)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)c->sendbuf,
		.length = 8,
		.lkey = c->mr->lkey,
	};
	struct ibv_send_wr wr = {
		.wr_id = 2000000,
		.sg_list = &sge,
		.num_sge = 1,
		.opcode = IBV_WR_RDMA_WRITE,
		.send_flags = IBV_SEND_SIGNALED,
	};
	struct ibv_send_wr *bad;
	struct ibv_wc wc;

	memset(c->sendbuf, 0xee, 8);
	wr.wr.rdma.remote_addr = raddr;
	wr.wr.rdma.rkey = rkey;
	if (ibv_post_send(c->id->qp, &wr, &bad))
		return -1;
	do {
		if (wait_wc_any(c, &wc))
			return -1;
	} while (wc.wr_id != 2000000);
	*status = wc.status;
	return 0;
}

/*
 * --rogue, against verbusd: a client that uses its rkey outside its ring,
 * and another that uses a third one's address and rkey, must get remote
 * access errors (and lose their connections); the third carries on (its
 * Ping answered).  The broker is expected to isolate clients
 * (vbi_conn_opts.isolate: a memory window per connection).
 */
static int run_rogue(struct ctx *victim)
{
	struct ctx a = { .o = victim->o, .deadline = victim->deadline };
	struct ctx b = { .o = victim->o, .deadline = victim->deadline };
	Verbus__Control out = VERBUS__CONTROL__INIT, *m = NULL;
	Verbus__Ping ping = VERBUS__PING__INIT;
	enum ibv_wc_status st;
	int rc = 1;

	a.ec = rdma_create_event_channel();
	b.ec = rdma_create_event_channel();
	if (!a.ec || !b.ec || client_hello(victim) || client_hello(&a) ||
	    client_hello(&b))
		goto out;
	/* Inside its own ring, with its own rkey: allowed. */
	if (write_status(&a, a.peer_addr + a.peer_size - 8, a.peer_rkey, &st))
		goto out;
	if (st != IBV_WC_SUCCESS) {
		fprintf(stderr,
			"smoke: rogue: a write inside its own ring: "
			"%s\n",
			ibv_wc_status_str(st));
		goto out;
	}
	printf("PASS: a write inside the client's own ring succeeds\n");
	/* One byte past the end of its own ring. */
	if (write_status(&a, a.peer_addr + a.peer_size, a.peer_rkey, &st))
		goto out;
	if (st != IBV_WC_REM_ACCESS_ERR) {
		fprintf(stderr, "smoke: rogue: a write past its ring: %s\n",
			ibv_wc_status_str(st));
		goto out;
	}
	printf("PASS: a write past the end of its own ring: %s\n",
	       ibv_wc_status_str(st));
	/* Another client's ring, its address and rkey, through our QP. */
	if (write_status(&b, victim->peer_addr, victim->peer_rkey, &st))
		goto out;
	if (st != IBV_WC_REM_ACCESS_ERR) {
		fprintf(stderr,
			"smoke: rogue: a write into another client's ring "
			"with its rkey: %s (NOT ISOLATED)\n",
			ibv_wc_status_str(st));
		goto out;
	}
	printf("PASS: a write into another client's ring with that client's "
	       "address and rkey: %s\n",
	       ibv_wc_status_str(st));
	/* The victim is unharmed: the broker answers its Ping. */
	ping.id = 42;
	out.body_case = VERBUS__CONTROL__BODY_PING;
	out.ping = &ping;
	if (send_ctrl(victim, &out) || recv_ctrl(victim, &m))
		goto out;
	if (m->body_case != VERBUS__CONTROL__BODY_PONG || m->pong->id != 42) {
		fprintf(stderr, "smoke: rogue: the victim got %s\n",
			vbi_codec_kind_name(m));
		goto out;
	}
	printf("PASS: the other client's connection carries on (Ping "
	       "answered)\n");
	/* Garbage announced as a frame, in its own ring: the broker must
	 * close that connection (it says why in its log), nothing else. */
	teardown(&a);
	a = (struct ctx){ .o = victim->o, .deadline = victim->deadline };
	a.ec = rdma_create_event_channel();
	if (!a.ec || client_hello(&a))
		goto out;
	memset(a.sendbuf, 0xee, 64);
	if (post_send(&a, 64, 1, a.peer_addr, 64) ||
	    expect_event(&a, RDMA_CM_EVENT_DISCONNECTED, NULL))
		goto out;
	printf("PASS: a client that wrote a corrupt frame was disconnected\n");
	vbi_codec_free(m);
	m = NULL;
	ping.id = 43;
	if (send_ctrl(victim, &out) || recv_ctrl(victim, &m) ||
	    m->body_case != VERBUS__CONTROL__BODY_PONG || m->pong->id != 43)
		goto out;
	printf("PASS: the other client's connection still carries on\n");
	rc = 0;
out:
	vbi_codec_free(m);
	teardown(&a);
	teardown(&b);
	return rc;
}

static int run_client(struct ctx *c)
{
	struct ibv_wc wc;
	unsigned round;
	int rc;

	rc = client_hello(c);
	if (rc)
		return rc;
	for (round = 0; round < c->o->count; round++) {
		uint64_t raddr = c->peer_addr + (round % SLOTS) * c->slot;
		int got_send = 0, got_write = 0;

		fill(c->sendbuf, c->o->size, round, 0);
		if (post_send(c, c->o->size, 1, raddr, round))
			return 1;
		/* Our WRITE's completion and the server's SEND, any order. */
		while (!got_send || !got_write) {
			if (wait_wc(c, &wc))
				return 1;
			if (wc.opcode == IBV_WC_RDMA_WRITE) {
				got_write = 1;
				continue;
			}
			if (wc.opcode != IBV_WC_RECV ||
			    wc.byte_len != c->o->size) {
				fprintf(stderr,
					"smoke: round %u: opcode %d "
					"len %u\n",
					round, wc.opcode, wc.byte_len);
				return 1;
			}
			got_send = 1;
			if (verify(c->recvbufs + wc.wr_id * c->recv_len,
				   c->o->size, round, 1) ||
			    post_recv(c, (unsigned)wc.wr_id))
				return 1;
		}
	}
	rdma_disconnect(c->id);
	if (expect_event(c, RDMA_CM_EVENT_DISCONNECTED, NULL))
		return 1;
	printf("smoke: client %s -> %s: %u rounds of %zu bytes verified "
	       "(WRITE_WITH_IMM out, SEND back)\n",
	       c->o->source, c->o->addr, c->o->count, c->o->size);
	return 0;
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
		{ "size", required_argument, NULL, 's' },
		{ "timeout", required_argument, NULL, 't' },
		{ "bad-version", no_argument, NULL, 'V' },
		{ "rogue", no_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct opts o = { .server = -1,
			  .port = "7471",
			  .count = 1000,
			  .size = 4096,
			  .timeout_s = 60 };
	struct ctx c = { .o = &o };
	int ch, rc;

	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'S':
			o.server = 1;
			break;
		case 'C':
			o.server = 0;
			break;
		case 'b':
		case 'c':
			o.addr = optarg;
			break;
		case 'I':
			o.source = optarg;
			break;
		case 'p':
			o.port = optarg;
			break;
		case 'n':
			o.count = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 's':
			o.size = strtoul(optarg, NULL, 0);
			break;
		case 't':
			o.timeout_s = atoi(optarg);
			break;
		case 'V':
			o.bad_version = 1;
			break;
		case 'R':
			o.rogue = 1;
			break;
		default:
			die_usage();
		}
	}
	if (o.server < 0 || !o.addr || (!o.server && !o.source) ||
	    o.size == 0 || o.size > (1u << 20) || o.timeout_s <= 0)
		die_usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	clock_gettime(CLOCK_MONOTONIC, &c.deadline);
	c.deadline.tv_sec += o.timeout_s;
	c.ec = rdma_create_event_channel();
	if (!c.ec) {
		perror("smoke: rdma_create_event_channel (no RDMA device?)");
		return 1;
	}
	rc = o.server ? run_server(&c) :
	     o.rogue  ? run_rogue(&c) :
			run_client(&c);
	teardown(&c);
	if (rc && rc != EXIT_REFUSED)
		fprintf(stderr, "smoke: FAILED\n");
	return rc;
}
