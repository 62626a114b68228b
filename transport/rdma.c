/*
 * rdma.c - the RDMA transport: its context and event loop, completions,
 * connection lifetime, and its ops tables (see rdma.h for the files' jobs
 * and the decisions a reader must know).
 *
 * One rdma_cm event channel per tp and one completion channel per
 * connection, all in one epoll set, whose fd the caller waits on.
 * Connections die in one place (vbi_sess_fail), and are freed only from
 * progress() after their closed callback ran, never under a callback; one
 * whose frames other connections still forward is quiesced (its QP
 * destroyed) and kept until the last reference is back, so no write ever
 * reads freed memory.
 */
#include "rdma.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/prof.h"

#include <verbus/verbus.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>
#include <valgrind/memcheck.h>

#define POLL_BATCH 32

static uint64_t conns_alive;

static int wc_to_vb(enum ibv_wc_status s)
{
	switch (s) {
	case IBV_WC_SUCCESS:
		return VB_OK;
	case IBV_WC_REM_ACCESS_ERR:
	case IBV_WC_LOC_PROT_ERR:
	case IBV_WC_LOC_ACCESS_ERR:
		return VB_EACCES;
	case IBV_WC_RETRY_EXC_ERR:
	case IBV_WC_RNR_RETRY_EXC_ERR:
		return VB_ETIMEDOUT;
	case IBV_WC_WR_FLUSH_ERR:
		return VB_ECLOSED;
	default:
		return VB_EIO;
	}
}

static void tag(const struct vbi_conn *c, char *buf, size_t len)
{
	const struct rdma_conn *r = rdma_conn_of_const(c);

	snprintf(buf, len, "qp 0x%x",
		 r->id && r->id->qp ? r->id->qp->qp_num : 0);
}

/* ---- connection lifetime ------------------------------------------------ */

struct rdma_conn *vbi_rdma_conn_new(struct rdma_tp *tp,
				    const struct vbi_conn_opts *o,
				    const struct vbi_conn_cbs *cbs, void *arg)
{
	struct rdma_conn *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	vbi_sess_init(&r->c, tp->ops, &vbi_rdma_sess_ops, o, cbs, arg);
	r->tp = tp;
	r->next = tp->conns;
	if (tp->conns)
		tp->conns->prev = r;
	tp->conns = r;
	conns_alive++;
	if (o->busy_poll)
		tp->busy_poll = true;
	return r;
}

static void conn_unlink(struct rdma_conn *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else if (r->tp->conns == r)
		r->tp->conns = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->next = r->prev = NULL;
}

/*
 * Stop all I/O of a closed connection: destroy its QP (no write reads our
 * staging or another ring after that) and return what its forwards hold.
 */
static void conn_quiesce(struct rdma_conn *r)
{
	/* The window first: destroying a QP a window is still bound to
	 * stalls for tens of seconds on rxe (tests/rdma/mw_probe.c). */
	if (r->ring_mw) {
		ibv_dealloc_mw(r->ring_mw);
		r->ring_mw = NULL;
	}
	if (r->id && r->id->qp)
		rdma_destroy_qp(r->id);
	vbi_sess_quiesce(&r->c);
}

void vbi_rdma_conn_free(struct rdma_conn *r)
{
	if (!r)
		return;
	if (r->in_epoll && r->cc)
		epoll_ctl(r->tp->epfd, EPOLL_CTL_DEL, r->cc->fd, NULL);
	conn_quiesce(r);
	vbi_rdma_mem_free(r);
	if (r->id)
		rdma_destroy_id(r->id);
	vbi_sess_free(&r->c);
	conn_unlink(r);
	conns_alive--;
	free(r);
}

/* ---- completions -------------------------------------------------------- */

/* How many of @bytes fit between the ring's write position and its end. */
static size_t ring_room(const struct vbi_conn *c, uint32_t bytes)
{
	size_t at = (size_t)(c->rx.written & (c->rx.size - 1));

	return bytes < c->rx.size - at ? bytes : c->rx.size - at;
}

/*
 * Read the asynchronous events of @p's device: a QP in error through what
 * its peer did closes its connection with that said in words.
 */
static void tp_async(struct rdma_tp *tp, struct rdma_pd *p)
{
	struct ibv_async_event ev;
	struct rdma_conn *r;

	if (!p || !p->async_watched)
		return;
	while (ibv_get_async_event(p->verbs, &ev) == 0) {
		const char *why = NULL;
		int err = VB_EIO;

		switch (ev.event_type) {
		case IBV_EVENT_QP_ACCESS_ERR:
			err = VB_EACCES;
			why = "peer touched memory outside its ring";
			break;
		case IBV_EVENT_QP_REQ_ERR:
			err = VB_EPROTO;
			why = "peer sent a request the device refused";
			break;
		case IBV_EVENT_QP_FATAL:
			why = "the device failed the queue pair";
			break;
		default:
			break;
		}
		/* Only this tp's connections: the device's events are the
		 * whole process's. */
		for (r = tp->conns; why && r; r = r->next)
			if (r->id && r->id->qp == ev.element.qp)
				break;
		if (why && r)
			vbi_sess_fail(&r->c, err, "%s", why);
		else
			vbi_debug("device %s: async event %s",
				  ibv_get_device_name(p->verbs->device),
				  ibv_event_type_str(ev.event_type));
		ibv_ack_async_event(&ev);
	}
}

static void on_wc(struct rdma_conn *r, const struct ibv_wc *wc)
{
	struct vbi_conn *c = &r->c;
	bool was_open, was_preauth;
	uint32_t n;

	if (wc->status != IBV_WC_SUCCESS) {
		if (c->state == VBI_SS_CLOSED)
			return;
		if (wc->status != IBV_WC_WR_FLUSH_ERR) {
			vbi_sess_fail(c, wc_to_vb(wc->status),
				      "work completion: %s",
				      ibv_wc_status_str(wc->status));
			return;
		}
		/* A flush while we still think the connection alive: our
		 * QP left the ready state on its own.  We move it to error
		 * only through vbi_sess_fail(), after which nothing is looked
		 * at; a peer that leaves sends a DREQ, which arrives as
		 * DISCONNECTED first; a request of ours that fails comes
		 * with its own status first.  What remains is the device
		 * refusing a request of the peer's: a write outside its ring,
		 * a read or an atomic.  Its async event, if the device raises
		 * one and it is already there, says which (rxe raises none). */
		tp_async(r->tp, vbi_rdma_mem_pd_find(r->tp, r->pd));
		vbi_sess_fail(c, VB_EACCES,
			      "peer touched memory outside its ring (or sent "
			      "another request the device refused): the "
			      "device closed the connection");
		return;
	}
	switch (wc->opcode) {
	case IBV_WC_RECV_RDMA_WITH_IMM:
		n = ntohl(wc->imm_data);
		/* The peer's bytes come from the device, which memcheck
		 * cannot see: tell it they are defined (a no-op natively). */
		if (c->state == VBI_SS_OPEN)
			VALGRIND_MAKE_MEM_DEFINED(
				c->ring_mem +
					(c->rx.written & (c->rx.size - 1)),
				ring_room(c, n));
		VBI_PROF(VBI_PROF_ARRIVED);
		if (vbi_sess_arrived(c, n))
			return;
		if (vbi_rdma_post_recv(r, wc->wr_id)) {
			vbi_sess_fail(c, VB_EIO, "cannot repost a recv");
			return;
		}
		vbi_credit_reposted(&c->cr, 1);
		break;
	case IBV_WC_RECV:
		VALGRIND_MAKE_MEM_DEFINED(vbi_rdma_post_recv_buf(r, wc->wr_id),
					  wc->byte_len < VBI_CTRL_MAX ?
						  wc->byte_len :
						  VBI_CTRL_MAX);
		was_open = c->state == VBI_SS_OPEN;
		was_preauth = c->preauth;
		vbi_sess_on_ctrl(c, vbi_rdma_post_recv_buf(r, wc->wr_id),
				 wc->byte_len);
		/* A server's handshake RECV is not reposted: the Hello either
		 * got the session's full set posted, or was turned away. */
		if (c->state == VBI_SS_CLOSED || was_preauth)
			return;
		if (vbi_rdma_post_recv(r, wc->wr_id)) {
			vbi_sess_fail(c, VB_EIO, "cannot repost a recv");
			return;
		}
		/* Handshake RECVs are outside the accounting. */
		if (was_open)
			vbi_credit_reposted(&c->cr, 1);
		break;
	case IBV_WC_BIND_MW:
		r->sq_used--;
		break;
	case IBV_WC_SEND:
		r->ctrl_busy &= ~(1u << (wc->wr_id & 31));
		r->sq_used--;
		vbi_sess_ctrl_sent(c);
		break;
	case IBV_WC_RDMA_WRITE:
		/* A signalled write completes it and the unsignalled ones
		 * before it, and the forwards they carried (see
		 * rdma_post.c). */
		r->sq_used -= (uint32_t)(wc->wr_id & 0xffff) > r->sq_used ?
				      r->sq_used :
				      (uint32_t)(wc->wr_id & 0xffff);
		if (wc->wr_id >> 16 > c->fwd_head) {
			vbi_sess_fwd_complete(c, wc->wr_id >> 16);
			vbi_sess_writable(c);
		}
		break;
	default:
		break;
	}
}

/* Drain @r's CQ, deliver what arrived.  Returns events handled. */
int vbi_rdma_conn_poll(struct rdma_conn *r)
{
	struct ibv_wc wc[POLL_BATCH];
	int n, i, total = 0;

	do {
		n = ibv_poll_cq(r->cq, POLL_BATCH, wc);
		if (n < 0) {
			vbi_sess_fail(&r->c, VB_EIO, "ibv_poll_cq failed");
			return total;
		}
		for (i = 0; i < n; i++)
			on_wc(r, &wc[i]);
		total += n;
		vbi_sess_deliver(&r->c);
	} while (n == POLL_BATCH && r->c.state != VBI_SS_CLOSED);
	return total;
}

/*
 * Completion channel readable: consume one event, re-arm, poll.  One read
 * only: the CQ is armed once, so one event is all there is, and should
 * another be queued the (level-triggered) epoll reports the channel again;
 * reading until EAGAIN would cost a failing read per wake-up.
 */
static int conn_event(struct rdma_conn *r)
{
	struct ibv_cq *cq;
	void *ctx;

	if (ibv_get_cq_event(r->cc, &cq, &ctx) == 0) {
		ibv_ack_cq_events(cq, 1);
		if (!r->c.opts.busy_poll && ibv_req_notify_cq(r->cq, 0))
			vbi_sess_fail(&r->c, VB_EIO, "cannot re-arm the cq");
	}
	return vbi_rdma_conn_poll(r);
}

/* ---- the event loop ----------------------------------------------------- */

/*
 * Report and free closed connections: the only place they are freed.  One
 * whose frames are still referenced (held, or being forwarded by another
 * connection) is quiesced and kept until the last reference goes, unless
 * @force (the transport is going away).
 */
static void reap(struct rdma_tp *tp, bool force)
{
	struct rdma_conn *r = tp->conns, *next;

	for (; r; r = next) {
		struct vbi_conn *c = &r->c;

		next = r->next;
		if (c->state != VBI_SS_CLOSED)
			continue;
		/* Drain what the QP flushed so nothing references it. */
		if (r->cq) {
			struct ibv_wc wc[POLL_BATCH];

			while (ibv_poll_cq(r->cq, POLL_BATCH, wc) > 0)
				;
		}
		if (!c->closed_reported) {
			c->closed_reported = true;
			if (c->cbs.closed)
				c->cbs.closed(c, &c->why, c->arg);
		}
		conn_quiesce(r);
		next = r->next; /* the callback may have closed others */
		if (c->refs_out == 0 || force)
			vbi_rdma_conn_free(r);
	}
}

/* The end of a turn: push what callbacks queued, return credits, and kick
 * the forwards of a connection that needs its frames back. */
static void tp_after(struct rdma_tp *tp)
{
	struct rdma_conn *r;
	bool kick = false;

	for (r = tp->conns; r; r = r->next) {
		vbi_sess_after(&r->c);
		kick = kick || vbi_sess_pins(&r->c);
	}
	if (kick)
		for (r = tp->conns; r; r = r->next)
			vbi_rdma_post_kick(&r->c);
}

static int tp_progress(struct vbi_tp *vtp, int timeout_ms)
{
	struct rdma_tp *tp = rdma_tp_of(vtp);
	struct epoll_event evs[64];
	struct rdma_conn *r;
	int n, i, total = 0;

	/* What the caller queued since the last call leaves before we sleep. */
	tp_after(tp);
	/* Busy-polling reads the CQs directly below; the fd (rdma_cm events,
	 * completion-channel wake-ups) is looked at one turn in
	 * VBI_BUSY_LOOK_EVERY only: a system call costs several turns of the
	 * spin, and a message landing during one waits for it. */
	if (tp->busy_poll && (tp->spins++ % VBI_BUSY_LOOK_EVERY) != 0)
		n = 0;
	else
		n = epoll_wait(tp->epfd, evs, 64,
			       tp->busy_poll ? 0 : timeout_ms);
	if (n < 0 && errno != EINTR)
		return VB_ESYS;
	for (i = 0; i < n; i++) {
		void *ptr = evs[i].data.ptr;
		struct rdma_pd *p;

		if (ptr == NULL)
			total += vbi_rdma_cm_events(tp);
		else if (tp->nasync && (p = vbi_rdma_mem_pd_of(tp, ptr)))
			tp_async(tp, p);
		else
			total += conn_event(ptr);
	}
	if (tp->busy_poll)
		for (r = tp->conns; r; r = r->next)
			if (r->cq && r->c.state != VBI_SS_CLOSED)
				total += vbi_rdma_conn_poll(r);
	vbi_rdma_cm_check_handshakes(tp);
	tp_after(tp);
	reap(tp, false);
	return total;
}

/*
 * Poll the completion queues directly, no system call, until one has work
 * or @budget_ns has passed (0: one pass), then push what the callbacks
 * queued, as tp_progress() does.  Completions found here still wake the
 * completion channel: the next tp_progress() consumes that event and
 * re-arms, without sleeping.  The clock is read one pass in 16.
 */
static int tp_spin(struct vbi_tp *vtp, uint64_t budget_ns)
{
	struct rdma_tp *tp = rdma_tp_of(vtp);
	uint64_t end = 0, now;
	struct rdma_conn *r;
	unsigned pass = 0;
	int total = 0;

	for (;;) {
		for (r = tp->conns; r; r = r->next)
			if (r->cq && r->c.state != VBI_SS_CLOSED)
				total += vbi_rdma_conn_poll(r);
		if (total || budget_ns == 0)
			break;
		if ((pass++ & 15) == 0) {
			now = vbi_clock_ns();
			if (end == 0)
				end = now + budget_ns;
			else if (now >= end)
				break;
		}
	}
	tp_after(tp);
	reap(tp, false);
	return total;
}

/* ---- the transport context ---------------------------------------------- */

static int tp_create(struct vbi_tp **out)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	struct rdma_tp *tp = calloc(1, sizeof(*tp));
	int rc = VB_ESYS;

	if (!tp)
		return VB_ENOMEM;
	tp->ops = &vbi_rdma_ops;
	tp->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (tp->epfd < 0)
		goto out_free;
	tp->ec = rdma_create_event_channel();
	if (!tp->ec) {
		rc = errno == ENODEV ? VB_ENODEV : vbi_sess_errno(errno);
		goto out_close_ep;
	}
	if (fcntl(tp->ec->fd, F_SETFL,
		  fcntl(tp->ec->fd, F_GETFL) | O_NONBLOCK) ||
	    epoll_ctl(tp->epfd, EPOLL_CTL_ADD, tp->ec->fd, &ev))
		goto out_destroy_ec;
	*out = (struct vbi_tp *)(void *)tp;
	return VB_OK;
out_destroy_ec:
	rdma_destroy_event_channel(tp->ec);
out_close_ep:
	close(tp->epfd);
out_free:
	free(tp);
	return rc;
}

static void tp_destroy(struct vbi_tp *vtp)
{
	struct rdma_tp *tp = rdma_tp_of(vtp);
	struct rdma_conn *r;

	if (!tp)
		return;
	while (tp->listeners)
		vbi_rdma_cm_listener_close(
			(struct vbi_listener *)(void *)tp->listeners);
	for (r = tp->conns; r; r = r->next)
		vbi_sess_fail(&r->c, VB_ECLOSED, "transport destroyed");
	/* Quiesce every connection before freeing any: a forward may read
	 * from a ring until its own QP is gone. */
	reap(tp, false);
	reap(tp, true);
	vbi_rdma_mem_drop_kept(tp);
	if (tp->ec)
		rdma_destroy_event_channel(tp->ec);
	if (tp->epfd >= 0)
		close(tp->epfd);
	free(tp);
}

static int tp_fd(struct vbi_tp *tp)
{
	return rdma_tp_of(tp)->epfd;
}

static void tp_stats(struct vbi_tp_stats *s)
{
	vbi_rdma_mem_stats(s);
	s->conns_open = conns_alive;
	s->handshake_timeouts = vbi_rdma_cm_handshake_timeouts();
}

/* ---- the ops ------------------------------------------------------------ */

const struct vbi_sess_ops vbi_rdma_sess_ops = {
	.ctrl_room = vbi_rdma_post_ctrl_room,
	.ctrl_post = vbi_rdma_post_ctrl,
	.batch_room = vbi_rdma_post_batch_room,
	.batch_post = vbi_rdma_post_batch,
	.kick = vbi_rdma_post_kick,
	.can_gather = vbi_rdma_post_can_gather,
	.setup_session = vbi_rdma_mem_setup_session,
	.setup_stage = vbi_rdma_mem_setup_stage,
	.ring_info = vbi_rdma_mem_ring_info,
	.disconnect = vbi_rdma_cm_disconnect,
	.tag = tag,
};

const struct vbi_transport_ops vbi_rdma_ops = {
	.scheme = "rdma",
	.tp_create = tp_create,
	.tp_destroy = tp_destroy,
	.tp_fd = tp_fd,
	.tp_progress = tp_progress,
	.tp_spin = tp_spin,
	.listen = vbi_rdma_cm_listen,
	.listener_close = vbi_rdma_cm_listener_close,
	.connect = vbi_rdma_cm_connect,
	VBI_SESS_TRANSPORT_OPS,
	.peer_name = vbi_rdma_cm_peer_name,
	.local_name = vbi_rdma_cm_local_name,
	.listener_name = vbi_rdma_cm_listener_name,
	.tp_stats = tp_stats,
};
