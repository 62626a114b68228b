/*
 * mw_probe.c - can memory windows isolate one client's rkey from another's
 * on this device (issue 7, memory isolation)?
 *
 * The broker keeps every connection in one protection domain, because a
 * forwarded message is gathered from one connection's ring into another
 * connection's WRITE.  So a client's rkey must not be a key to a
 * PD-wide memory region: the candidate is a type-2 memory window, bound by
 * a work request on that client's own QP, over exactly its ring, on a
 * region registered without remote rights.  This probe checks, with real
 * verbs between two hosts (two rdma devices, rdma_cm across the link),
 * everything that design relies on:
 *
 *   - the device reports and allocates type-2 windows;
 *   - a window bound on QP A over the whole of a connection's ring region
 *     admits a WRITE from A's peer inside it and refuses one outside it
 *     (past the end, straddling it, before the start) with a remote access
 *     error, writing nothing, and the server's end of the connection goes
 *     to error (its RECV is flushed: the broker would close it);
 *   - the same rkey used from another connection (QP B, same PD, same
 *     client host) is refused, and A keeps working;
 *   - the region's own keys, never given out, admit nothing;
 *   - a window invalidated by the server admits nothing;
 *   - a connection whose window is freed first closes at once;
 *   - and, for the alternative of one PD per connection: a WRITE whose
 *     gather list names memory of another PD fails locally.
 * For information only: a window over a sub-range of a larger region (rxe
 * checks a window's WRITE against its region's bounds, not the window's:
 * so each ring needs a region of its own), and type-1 windows (not bound
 * to a QP, so a type-1 rkey works on every QP of the PD).
 *
 * With --close-first, the sub-range cases close each connection before
 * freeing its window, to show what that costs on rxe (information only).
 *
 * One process plays both hosts: the server side listens on SERVER_ADDR
 * (its device owns the memory), the client side connects from CLIENT_ADDR
 * (another device); every WRITE crosses the link like any client's.  Each
 * check prints one line, "ok", "FAIL" or "info"; exit status 0 only if no
 * check failed, 1 otherwise, 2 for usage.
 *
 *   vb_mw_probe [--close-first] SERVER_ADDR CLIENT_ADDR [PORT]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <infiniband/verbs.h>
#include <netdb.h>
#include <rdma/rdma_cma.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MEM_LEN 65536u /* the server's memory: several "rings" */
#define WIN_OFF 16384u /* the ring, and the window every client is given */
#define WIN_LEN 4096u
#define CANARY 0xa5
#define CHUNK 256u /* bytes per WRITE */
#define WAIT_S 10 /* longest wait for a completion or an event */

/* One connection: both ends, since this process plays both hosts. */
struct conn {
	struct rdma_cm_id *sid; /* server end (the broker) */
	struct rdma_cm_id *cid; /* client end */
	struct ibv_cq *scq; /* the server end's CQ */
	struct ibv_cq *ccq; /* the client end's CQ */
};

/* Everything the probe holds, in the order it is created. */
struct probe {
	const char *saddr; /* server (host 1) address */
	const char *caddr; /* client (host 2) address */
	const char *port; /* rdma_cm port */
	struct rdma_event_channel *sec; /* server side rdma_cm events */
	struct rdma_event_channel *cec; /* client side rdma_cm events */
	struct rdma_cm_id *listen; /* the server's listening id */
	struct ibv_context *sctx; /* the server's device */
	struct ibv_context *cctx; /* the client's device, once resolved */
	struct ibv_pd *spd; /* the server's one PD for all connections */
	struct ibv_pd *spd2; /* another PD: the per-connection alternative */
	struct ibv_pd *cpd; /* the client's PD */
	uint8_t *smem; /* the server's memory, MEM_LEN */
	struct ibv_mr *smr; /* smem: local write + MW bind, no remote right */
	struct ibv_mr *rmr; /* the ring: smem[WIN_OFF, +WIN_LEN), the same */
	struct ibv_mr *recv_mr; /* the server ends' RECV buffers */
	uint8_t recvbuf[64]; /* where a RECV would land */
	uint8_t *smem2; /* memory of spd2 */
	struct ibv_mr *smr2; /* smem2 in spd2, local write */
	uint8_t *cmem; /* the client's memory: sources and targets */
	struct ibv_mr *cmr; /* cmem: local + remote write */
	int failed; /* checks that failed */
};

static struct probe P;

/* Seconds since the probe started, for the report's lines. */
static double elapsed(void)
{
	static struct timespec t0;
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (t0.tv_sec == 0 && t0.tv_nsec == 0)
		t0 = now;
	return (double)(now.tv_sec - t0.tv_sec) +
	       (double)(now.tv_nsec - t0.tv_nsec) / 1e9;
}

/* check(COND, FMT...): one line of the report; a false COND fails. */
__attribute__((format(printf, 2, 3))) static void check(int cond,
							const char *fmt, ...)
{
	va_list ap;

	printf("mw_probe: %6.1fs %s: ", elapsed(), cond ? "ok  " : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!cond)
		P.failed++;
}

__attribute__((format(printf, 1, 2))) static void info(const char *fmt, ...)
{
	va_list ap;

	printf("mw_probe: %6.1fs info: ", elapsed());
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static void die(const char *what)
{
	printf("mw_probe: FAIL: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* The next event on @ec, which must be @want; DISCONNECTED and
 * TIMEWAIT_EXIT of connections torn down earlier are skipped.  Returns
 * the event's id (the new one for CONNECT_REQUEST). */
static struct rdma_cm_id *expect_event(struct rdma_event_channel *ec,
				       enum rdma_cm_event_type want)
{
	struct rdma_cm_event *ev;
	struct rdma_cm_id *id;

	for (;;) {
		if (rdma_get_cm_event(ec, &ev))
			die("rdma_get_cm_event");
		if (ev->event == want)
			break;
		if (ev->event != RDMA_CM_EVENT_DISCONNECTED &&
		    ev->event != RDMA_CM_EVENT_TIMEWAIT_EXIT) {
			printf("mw_probe: FAIL: rdma_cm event %s (status %d), "
			       "expected %s\n",
			       rdma_event_str(ev->event), ev->status,
			       rdma_event_str(want));
			exit(1);
		}
		rdma_ack_cm_event(ev);
	}
	id = ev->id;
	rdma_ack_cm_event(ev);
	return id;
}

static struct ibv_qp *make_qp(struct rdma_cm_id *id, struct ibv_pd *pd,
			      struct ibv_cq **cq)
{
	struct ibv_qp_init_attr a = { 0 };

	*cq = ibv_create_cq(id->verbs, 32, NULL, NULL, 0);
	if (*cq == NULL)
		die("ibv_create_cq");
	a.send_cq = *cq;
	a.recv_cq = *cq;
	a.qp_type = IBV_QPT_RC;
	a.cap.max_send_wr = 16;
	a.cap.max_recv_wr = 1;
	a.cap.max_send_sge = 2;
	a.cap.max_recv_sge = 1;
	if (rdma_create_qp(id, pd, &a))
		die("rdma_create_qp");
	return id->qp;
}

/* A new RC connection from the client host to the server host; the
 * server end's QP in @spd. */
static void connect_pair(struct conn *c, struct ibv_pd *spd)
{
	struct rdma_addrinfo hints = { .ai_port_space = RDMA_PS_TCP };
	struct rdma_addrinfo *src, *dst;
	struct rdma_conn_param cp = { 0 };
	struct rdma_cm_event *ev;
	int tries;

	hints.ai_flags = RAI_PASSIVE;
	if (rdma_getaddrinfo(P.caddr, NULL, &hints, &src))
		die("rdma_getaddrinfo (client)");
	hints.ai_flags = 0;
	if (rdma_getaddrinfo(P.saddr, P.port, &hints, &dst))
		die("rdma_getaddrinfo (server)");
	if (rdma_create_id(P.cec, &c->cid, NULL, RDMA_PS_TCP))
		die("rdma_create_id");
	/* Short resolutions, retried: a cold neighbour entry on rxe behind a
	 * bridge is otherwise re-checked only at the deadline
	 * (docs/PROTOCOL.md). */
	for (tries = 0;; tries++) {
		if (rdma_resolve_addr(c->cid, src->ai_src_addr,
				      dst->ai_dst_addr, 200))
			die("rdma_resolve_addr");
		if (rdma_get_cm_event(P.cec, &ev))
			die("rdma_get_cm_event");
		if (ev->event == RDMA_CM_EVENT_ADDR_RESOLVED) {
			rdma_ack_cm_event(ev);
			break;
		}
		rdma_ack_cm_event(ev);
		if (tries == 50) {
			printf("mw_probe: FAIL: cannot resolve %s from %s\n",
			       P.saddr, P.caddr);
			exit(1);
		}
	}
	rdma_freeaddrinfo(src);
	rdma_freeaddrinfo(dst);
	if (rdma_resolve_route(c->cid, 2000))
		die("rdma_resolve_route");
	expect_event(P.cec, RDMA_CM_EVENT_ROUTE_RESOLVED);
	if (P.cpd == NULL) {
		P.cctx = c->cid->verbs;
		P.cpd = ibv_alloc_pd(P.cctx);
		if (P.cpd == NULL)
			die("ibv_alloc_pd (client)");
		P.cmem = aligned_alloc(4096, MEM_LEN);
		if (P.cmem == NULL)
			die("aligned_alloc");
		P.cmr = ibv_reg_mr(P.cpd, P.cmem, MEM_LEN,
				   IBV_ACCESS_LOCAL_WRITE |
					   IBV_ACCESS_REMOTE_WRITE);
		if (P.cmr == NULL)
			die("ibv_reg_mr (client)");
	}
	make_qp(c->cid, P.cpd, &c->ccq);
	cp.responder_resources = 1;
	cp.initiator_depth = 1;
	/* No transport retries: a refused WRITE is a NAK, not a loss. */
	cp.retry_count = 1;
	cp.rnr_retry_count = 7;
	if (rdma_connect(c->cid, &cp))
		die("rdma_connect");
	c->sid = expect_event(P.sec, RDMA_CM_EVENT_CONNECT_REQUEST);
	make_qp(c->sid, spd, &c->scq);
	/* One RECV, as the broker keeps posted: a QP gone to error flushes
	 * it, which is how the broker learns of it. */
	if (spd == P.spd) {
		struct ibv_sge sge = { (uintptr_t)P.recvbuf, sizeof(P.recvbuf),
				       P.recv_mr->lkey };
		struct ibv_recv_wr rwr = { .sg_list = &sge, .num_sge = 1 };
		struct ibv_recv_wr *rbad;

		if (ibv_post_recv(c->sid->qp, &rwr, &rbad))
			die("ibv_post_recv");
	}
	if (rdma_accept(c->sid, &cp))
		die("rdma_accept");
	expect_event(P.cec, RDMA_CM_EVENT_ESTABLISHED);
	expect_event(P.sec, RDMA_CM_EVENT_ESTABLISHED);
}

static void close_pair(struct conn *c)
{
	rdma_destroy_qp(c->cid);
	rdma_destroy_id(c->cid);
	rdma_destroy_qp(c->sid);
	rdma_destroy_id(c->sid);
	ibv_destroy_cq(c->ccq);
	ibv_destroy_cq(c->scq);
	memset(c, 0, sizeof(*c));
}

/* The status of the next completion on @cq, or -1 if none came. */
static int wait_wc(struct ibv_cq *cq)
{
	struct timespec start, now, nap = { 0, 1000000 };
	struct ibv_wc wc;
	int n;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		n = ibv_poll_cq(cq, 1, &wc);
		if (n < 0)
			die("ibv_poll_cq");
		if (n == 1)
			return wc.status;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec > WAIT_S)
			return -1;
		nanosleep(&nap, NULL);
	}
}

static const char *status_str(int st)
{
	return st < 0 ? "no completion" :
			ibv_wc_status_str((enum ibv_wc_status)st);
}

/* An RDMA WRITE of @len bytes (pattern @pat) from the client end of @c to
 * @raddr/@rkey on the server; the completion's status. */
static int client_write(struct conn *c, uint64_t raddr, uint32_t rkey,
			uint32_t len, uint8_t pat)
{
	struct ibv_sge sge = { (uintptr_t)P.cmem, len, P.cmr->lkey };
	struct ibv_send_wr wr = { 0 }, *bad;

	memset(P.cmem, pat, len);
	wr.opcode = IBV_WR_RDMA_WRITE;
	wr.send_flags = IBV_SEND_SIGNALED;
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.wr.rdma.remote_addr = raddr;
	wr.wr.rdma.rkey = rkey;
	if (ibv_post_send(c->cid->qp, &wr, &bad)) {
		printf("mw_probe: post WRITE: %s\n", strerror(errno));
		return -2;
	}
	return wait_wc(c->ccq);
}

/* Bind type-2 window @mw on the server end of @c over smem[@off, +@len),
 * within region @mr, with remote write; IBV_WC_SUCCESS and the new rkey in
 * *@rkey, or the status. */
static int bind_type2(struct conn *c, struct ibv_mw *mw, struct ibv_mr *mr,
		      uint32_t off, uint32_t len, uint32_t *rkey)
{
	struct ibv_send_wr wr = { 0 }, *bad;
	int st;

	wr.opcode = IBV_WR_BIND_MW;
	wr.send_flags = IBV_SEND_SIGNALED;
	wr.bind_mw.mw = mw;
	wr.bind_mw.rkey = ibv_inc_rkey(mw->rkey);
	wr.bind_mw.bind_info.mr = mr;
	wr.bind_mw.bind_info.addr = (uintptr_t)P.smem + off;
	wr.bind_mw.bind_info.length = len;
	wr.bind_mw.bind_info.mw_access_flags = IBV_ACCESS_REMOTE_WRITE;
	if (ibv_post_send(c->sid->qp, &wr, &bad)) {
		printf("mw_probe: post BIND_MW: %s\n", strerror(errno));
		return -2;
	}
	st = wait_wc(c->scq);
	if (st == IBV_WC_SUCCESS)
		*rkey = wr.bind_mw.rkey;
	return st;
}

/* Is smem all canary, but for [@off, +@len), which must be @pat? */
static int mem_is(uint32_t off, uint32_t len, uint8_t pat)
{
	uint32_t i;

	for (i = 0; i < MEM_LEN; i++) {
		uint8_t want = (i >= off && i < off + len) ? pat : CANARY;

		if (P.smem[i] != want)
			return 0;
	}
	return 1;
}

static const char *qp_state(struct ibv_qp *qp)
{
	static const char *names[] = { "RESET", "INIT", "RTR", "RTS",
				       "SQD",	"SQE",	"ERR" };
	struct ibv_qp_attr a;
	struct ibv_qp_init_attr ia;

	if (ibv_query_qp(qp, &a, IBV_QP_STATE, &ia))
		return "?";
	return a.qp_state <= IBV_QPS_ERR ? names[a.qp_state] : "?";
}

/* Print and acknowledge the server device's pending async events. */
static void server_async_events(void)
{
	struct ibv_async_event ev;

	while (ibv_get_async_event(P.sctx, &ev) == 0) {
		info("server device async event: %s",
		     ibv_event_type_str(ev.event_type));
		ibv_ack_async_event(&ev);
	}
}

/* The outcome of a WRITE that may be refused: its status, whether it
 * wrote anything, and what the server end of the connection saw. */
struct outcome {
	int st; /* the client's completion */
	int untouched; /* no byte of the server's memory changed */
	const char *qp; /* the server end's QP state afterwards */
	int flushed; /* the server end's RECV completed in error */
};

static struct outcome try_write(struct conn *c, uint64_t raddr, uint32_t rkey,
				uint32_t len)
{
	struct outcome o;
	int rst;

	memset(P.smem, CANARY, MEM_LEN);
	o.st = client_write(c, raddr, rkey, len, 0x3c);
	o.untouched = mem_is(0, 0, 0);
	o.qp = qp_state(c->sid->qp);
	rst = o.st == IBV_WC_SUCCESS ? -1 : wait_wc(c->scq);
	o.flushed = rst == IBV_WC_WR_FLUSH_ERR;
	server_async_events();
	return o;
}

/* A WRITE that must be refused: remote access error, nothing written, and
 * the server's end of the connection in error, its RECV flushed. */
static void expect_refused(const char *what, struct conn *c, uint64_t raddr,
			   uint32_t rkey, uint32_t len)
{
	struct outcome o = try_write(c, raddr, rkey, len);

	check(o.st == IBV_WC_REM_ACCESS_ERR && o.untouched &&
		      !strcmp(o.qp, "ERR") && o.flushed,
	      "%s: %s, server memory %s, server QP %s, its RECV %s", what,
	      status_str(o.st), o.untouched ? "untouched" : "WRITTEN", o.qp,
	      o.flushed ? "flushed" : "NOT flushed");
}

static void caps(void)
{
	struct ibv_device_attr_ex a = { 0 };
	uint64_t f;

	if (ibv_query_device_ex(P.sctx, NULL, &a))
		die("ibv_query_device_ex");
	f = a.device_cap_flags_ex;
	info("server device %s: MEM_WINDOW %s, TYPE_2A %s, TYPE_2B %s, "
	     "max_mw %d, max_mr %d",
	     ibv_get_device_name(P.sctx->device),
	     f & IBV_DEVICE_MEM_WINDOW ? "yes" : "no",
	     f & IBV_DEVICE_MEM_WINDOW_TYPE_2A ? "yes" : "no",
	     f & IBV_DEVICE_MEM_WINDOW_TYPE_2B ? "yes" : "no",
	     a.orig_attr.max_mw, a.orig_attr.max_mr);
	check((f & (IBV_DEVICE_MEM_WINDOW_TYPE_2A |
		    IBV_DEVICE_MEM_WINDOW_TYPE_2B)) != 0,
	      "device reports type-2 memory windows");
}

static void listen_server(void)
{
	struct rdma_addrinfo hints = { .ai_flags = RAI_PASSIVE,
				       .ai_port_space = RDMA_PS_TCP };
	struct rdma_addrinfo *ai;
	int fl;

	P.sec = rdma_create_event_channel();
	P.cec = rdma_create_event_channel();
	if (P.sec == NULL || P.cec == NULL)
		die("rdma_create_event_channel");
	if (rdma_getaddrinfo(P.saddr, P.port, &hints, &ai))
		die("rdma_getaddrinfo");
	if (rdma_create_id(P.sec, &P.listen, NULL, RDMA_PS_TCP) ||
	    rdma_bind_addr(P.listen, ai->ai_src_addr) ||
	    rdma_listen(P.listen, 8))
		die("listen");
	rdma_freeaddrinfo(ai);
	if (P.listen->verbs == NULL) {
		printf("mw_probe: FAIL: no rdma device holds %s\n", P.saddr);
		exit(1);
	}
	P.sctx = P.listen->verbs;
	fl = fcntl(P.sctx->async_fd, F_GETFL);
	if (fcntl(P.sctx->async_fd, F_SETFL, fl | O_NONBLOCK))
		die("fcntl");
	P.spd = ibv_alloc_pd(P.sctx);
	P.spd2 = ibv_alloc_pd(P.sctx);
	P.smem = aligned_alloc(4096, MEM_LEN);
	P.smem2 = aligned_alloc(4096, MEM_LEN);
	if (!P.spd || !P.spd2 || !P.smem || !P.smem2)
		die("server resources");
	P.smr = ibv_reg_mr(P.spd, P.smem, MEM_LEN,
			   IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_MW_BIND);
	if (P.smr == NULL)
		die("ibv_reg_mr (local write + MW bind)");
	P.rmr = ibv_reg_mr(P.spd, P.smem + WIN_OFF, WIN_LEN,
			   IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_MW_BIND);
	if (P.rmr == NULL)
		die("ibv_reg_mr (the ring)");
	P.recv_mr = ibv_reg_mr(P.spd, P.recvbuf, sizeof(P.recvbuf),
			       IBV_ACCESS_LOCAL_WRITE);
	if (P.recv_mr == NULL)
		die("ibv_reg_mr (RECV buffer)");
	P.smr2 = ibv_reg_mr(P.spd2, P.smem2, MEM_LEN, IBV_ACCESS_LOCAL_WRITE);
	if (P.smr2 == NULL)
		die("ibv_reg_mr (second PD)");
	info("server ring region lkey 0x%x rkey 0x%x (registered without "
	     "remote rights)",
	     P.rmr->lkey, P.rmr->rkey);
}

/* Close @c and free @mw, which is still bound on it: the window first if
 * @mw_first, else the connection first.  Window first must be quick;
 * connection first is reported (on rxe the bound window holds a reference
 * on the QP: destroying the QP waits for it, about 50 s, and the kernel
 * warns). */
static void teardown(struct conn *c, struct ibv_mw *mw, int mw_first)
{
	double t0 = elapsed(), t1, t2;

	if (mw_first)
		ibv_dealloc_mw(mw);
	else
		close_pair(c);
	t1 = elapsed();
	if (mw_first)
		close_pair(c);
	else
		ibv_dealloc_mw(mw);
	t2 = elapsed();
	if (mw_first)
		check(t2 - t0 < 5,
		      "teardown, window first: ibv_dealloc_mw %.1f s, then "
		      "closing %.1f s",
		      t1 - t0, t2 - t1);
	else
		info("teardown, connection first: closing %.1f s, then "
		     "ibv_dealloc_mw %.1f s",
		     t1 - t0, t2 - t1);
}

/* Out of range, each on a connection of its own (a refused WRITE ends
 * the connection, as it should), through a window over the whole ring
 * region (@whole: what the broker would do; checked) or over the same
 * range within the larger region smr (information only).  @close_first:
 * tear down the connection before the window (information only). */
static void out_of_range(int whole, int close_first)
{
	static const struct {
		const char *what;
		int32_t off; /* from the window's start */
		uint32_t len;
	} cases[] = {
		{ "one byte just past the window", WIN_LEN, 1 },
		{ "a WRITE straddling the window's end", WIN_LEN - CHUNK / 2,
		  CHUNK },
		{ "a WRITE just before the window", -(int32_t)CHUNK, CHUNK },
		{ "a WRITE far outside the window (offset 0 of smem)",
		  -(int32_t)WIN_OFF, CHUNK },
	};
	const char *kind = whole ? "window = whole ring region" :
				   "window = sub-range of a larger region";
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conn c;
		struct ibv_mw *mw = ibv_alloc_mw(P.spd, IBV_MW_TYPE_2);
		uint64_t raddr = (uintptr_t)P.smem + WIN_OFF + cases[i].off;
		uint32_t rkey = 0;
		struct outcome o;
		int st;

		if (mw == NULL)
			die("ibv_alloc_mw");
		connect_pair(&c, P.spd);
		st = bind_type2(&c, mw, whole ? P.rmr : P.smr, WIN_OFF, WIN_LEN,
				&rkey);
		if (st != IBV_WC_SUCCESS) {
			check(0, "%s: bind for \"%s\": %s", kind, cases[i].what,
			      status_str(st));
		} else if (whole) {
			expect_refused(cases[i].what, &c, raddr, rkey,
				       cases[i].len);
		} else {
			o = try_write(&c, raddr, rkey, cases[i].len);
			info("%s: %s: %s, server memory %s%s", kind,
			     cases[i].what, status_str(o.st),
			     o.untouched ? "untouched" : "WRITTEN",
			     o.st == IBV_WC_SUCCESS ?
				     " (the window's own range is NOT enforced)" :
				     "");
		}
		teardown(&c, mw, !close_first);
	}
}

/* The region's own keys are never given out; guessing them gains nothing. */
static void region_keys(void)
{
	struct conn c;

	connect_pair(&c, P.spd);
	expect_refused("a WRITE with the ring region's rkey", &c,
		       (uintptr_t)P.smem + WIN_OFF, P.rmr->rkey, CHUNK);
	close_pair(&c);
	connect_pair(&c, P.spd);
	expect_refused("a WRITE with the ring region's lkey as rkey", &c,
		       (uintptr_t)P.smem + WIN_OFF, P.rmr->lkey, CHUNK);
	close_pair(&c);
}

/* Type 1: bound with ibv_bind_mw, not tied to a QP.  Information only. */
static void type1(void)
{
	struct ibv_mw *mw = ibv_alloc_mw(P.spd, IBV_MW_TYPE_1);
	struct ibv_mw_bind b = { 0 };
	struct conn a, o;
	int st;

	if (mw == NULL) {
		info("type-1 window: ibv_alloc_mw: %s", strerror(errno));
		return;
	}
	connect_pair(&a, P.spd);
	connect_pair(&o, P.spd);
	b.send_flags = IBV_SEND_SIGNALED;
	b.bind_info.mr = P.rmr;
	b.bind_info.addr = (uintptr_t)P.smem + WIN_OFF;
	b.bind_info.length = WIN_LEN;
	b.bind_info.mw_access_flags = IBV_ACCESS_REMOTE_WRITE;
	if (ibv_bind_mw(a.sid->qp, mw, &b)) {
		info("type-1 window: ibv_bind_mw: %s", strerror(errno));
		goto out;
	}
	st = wait_wc(a.scq);
	info("type-1 window: bind on QP A: %s", status_str(st));
	if (st != IBV_WC_SUCCESS)
		goto out;
	memset(P.smem, CANARY, MEM_LEN);
	st = client_write(&a, (uintptr_t)P.smem + WIN_OFF, mw->rkey, CHUNK,
			  0x11);
	info("type-1 window: WRITE inside from QP A: %s", status_str(st));
	memset(P.smem, CANARY, MEM_LEN);
	st = client_write(&o, (uintptr_t)P.smem + WIN_OFF, mw->rkey, CHUNK,
			  0x22);
	info("type-1 window: WRITE inside from another QP: %s%s",
	     status_str(st),
	     st == IBV_WC_SUCCESS ?
		     " (a type-1 rkey is PD-wide: no isolation)" :
		     "");
out:
	close_pair(&o);
	close_pair(&a);
	ibv_dealloc_mw(mw);
}

/* One PD per connection: a WRITE on a QP of one PD gathering from memory
 * of another (what forwarding from another connection's ring would be). */
static void per_connection_pd(void)
{
	struct ibv_sge sge;
	struct ibv_send_wr wr = { 0 }, *bad;
	struct conn c;
	int st;

	connect_pair(&c, P.spd);
	wr.opcode = IBV_WR_RDMA_WRITE;
	wr.send_flags = IBV_SEND_SIGNALED;
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.wr.rdma.remote_addr = (uintptr_t)P.cmem;
	wr.wr.rdma.rkey = P.cmr->rkey;
	sge = (struct ibv_sge){ (uintptr_t)P.smem, CHUNK, P.smr->lkey };
	if (ibv_post_send(c.sid->qp, &wr, &bad))
		die("ibv_post_send");
	st = wait_wc(c.scq);
	check(st == IBV_WC_SUCCESS,
	      "server WRITE gathering from memory of its own PD: %s",
	      status_str(st));
	sge = (struct ibv_sge){ (uintptr_t)P.smem2, CHUNK, P.smr2->lkey };
	if (ibv_post_send(c.sid->qp, &wr, &bad))
		die("ibv_post_send");
	st = wait_wc(c.scq);
	check(st != IBV_WC_SUCCESS,
	      "server WRITE gathering from memory of another PD: %s "
	      "(so one PD per connection rules out zero-copy forwarding)",
	      status_str(st));
	close_pair(&c);
}

int main(int argc, char **argv)
{
	struct conn a, b;
	struct ibv_mw *mw;
	struct ibv_send_wr wr = { 0 }, *bad;
	uint64_t win;
	uint32_t rkey = 0;
	int close_first = 0;
	int st;

	if (argc > 1 && !strcmp(argv[1], "--close-first")) {
		close_first = 1;
		argv++;
		argc--;
	}
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: vb_mw_probe [--close-first] "
				"SERVER_ADDR CLIENT_ADDR [PORT]\n");
		return 2;
	}
	P.saddr = argv[1];
	P.caddr = argv[2];
	P.port = argc > 3 ? argv[3] : "7499";
	alarm(500); /* a hang is a failure, never a stuck test */
	elapsed();
	listen_server();
	caps();

	mw = ibv_alloc_mw(P.spd, IBV_MW_TYPE_2);
	check(mw != NULL, "ibv_alloc_mw(IBV_MW_TYPE_2): %s",
	      mw ? "allocated" : strerror(errno));
	if (mw == NULL)
		return 1;
	connect_pair(&a, P.spd);
	info("client device %s, server device %s",
	     ibv_get_device_name(P.cctx->device),
	     ibv_get_device_name(P.sctx->device));
	st = bind_type2(&a, mw, P.rmr, WIN_OFF, WIN_LEN, &rkey);
	check(st == IBV_WC_SUCCESS,
	      "IBV_WR_BIND_MW on QP A over the whole ring region (%u B, no "
	      "remote rights of its own): %s (rkey 0x%x)",
	      WIN_LEN, status_str(st), rkey);
	if (st != IBV_WC_SUCCESS)
		return 1;
	win = (uintptr_t)P.smem + WIN_OFF;

	memset(P.smem, CANARY, MEM_LEN);
	st = client_write(&a, win, rkey, CHUNK, 0x5a);
	check(st == IBV_WC_SUCCESS && mem_is(WIN_OFF, CHUNK, 0x5a),
	      "QP A WRITE at the window's start: %s, bytes %s", status_str(st),
	      mem_is(WIN_OFF, CHUNK, 0x5a) ? "exactly there" : "WRONG");
	memset(P.smem, CANARY, MEM_LEN);
	st = client_write(&a, win + WIN_LEN - CHUNK, rkey, CHUNK, 0x5b);
	check(st == IBV_WC_SUCCESS &&
		      mem_is(WIN_OFF + WIN_LEN - CHUNK, CHUNK, 0x5b),
	      "QP A WRITE ending at the window's last byte: %s, bytes %s",
	      status_str(st),
	      mem_is(WIN_OFF + WIN_LEN - CHUNK, CHUNK, 0x5b) ? "exactly there" :
							       "WRONG");

	/* The isolation property: A's rkey is worthless on another QP. */
	connect_pair(&b, P.spd);
	expect_refused("QP B (same PD, same client host) WRITE inside A's "
		       "window with A's rkey",
		       &b, win, rkey, CHUNK);
	memset(P.smem, CANARY, MEM_LEN);
	st = client_write(&a, win, rkey, CHUNK, 0x5c);
	check(st == IBV_WC_SUCCESS && mem_is(WIN_OFF, CHUNK, 0x5c),
	      "QP A still writes after B was refused: %s (server QP A %s)",
	      status_str(st), qp_state(a.sid->qp));
	close_pair(&b);

	/* The server revokes A's window (what a close would do). */
	wr.opcode = IBV_WR_LOCAL_INV;
	wr.send_flags = IBV_SEND_SIGNALED;
	wr.invalidate_rkey = rkey;
	st = ibv_post_send(a.sid->qp, &wr, &bad) ? -2 : wait_wc(a.scq);
	check(st == IBV_WC_SUCCESS, "server invalidates A's window: %s",
	      status_str(st));
	expect_refused("QP A WRITE through its invalidated window", &a, win,
		       rkey, CHUNK);
	close_pair(&a);
	ibv_dealloc_mw(mw);

	out_of_range(1, 0);
	out_of_range(0, close_first);
	region_keys();
	type1();
	per_connection_pd();

	printf("mw_probe: %s (%d check%s failed)\n",
	       P.failed ? "FAILED" :
			  "type-2 windows over per-connection regions "
			  "isolate clients",
	       P.failed, P.failed == 1 ? "" : "s");
	return P.failed ? 1 : 0;
}
