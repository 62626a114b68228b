/*
 * rdma.c - the RDMA transport: rdma_cm connections, RC QPs, frames written
 * with RDMA WRITE_WITH_IMM into the peer's ring, control over SEND/RECV.
 *
 * Decisions a reader must know:
 *  - Memory is registered at connection set-up and never again: the receive
 *    ring (its own MR, the only one with remote-write rights, covering
 *    exactly the ring), the control buffers (RECVs and control SENDs), and,
 *    once the peer's ring size is known from Hello/Welcome, the staging
 *    area: a local mirror of the peer's ring.  Frames are built in staging
 *    at the offsets they will have remotely, so that everything queued
 *    together leaves as one WRITE of one contiguous range (coalescing).
 *  - Every WRITE_WITH_IMM and SEND consumes one RECV at the peer; the
 *    credits in core/credit.c make sure one is always posted, so an RNR can
 *    only mean a bug (rnr_retry is a backstop, set to 7).  Acks ride in the
 *    last frame of each batch, or in a Credit control message when no data
 *    flows back.  Hello and Welcome sit outside the accounting: each side
 *    reposts their RECV before it starts counting.
 *  - One rdma_cm event channel per vbi_tp and one completion channel per
 *    connection, all in one epoll set, whose fd the caller waits on.
 *  - Connections die in one place (conn_fail), and are freed only from
 *    progress() after their closed callback ran, never under a callback.
 *  - errno, ibv_wc_status and rdma_cm statuses become vb_err here and
 *    nowhere else.
 *  - Forwarding (the broker's fan-out) copies no payload within a device:
 *    the WRITE to a subscriber gathers the header from its staging and the
 *    topic and payload from the publisher's receive ring.  So every
 *    connection on a device shares one protection domain (per vbi_tp);
 *    across devices (another PD) the message is copied into the
 *    subscriber's staging instead (forward_copy).  A delivered
 *    frame carries a reference count in its ack_recvs word (consumed at
 *    delivery, in our own ring): the space goes back to the publisher when
 *    the last reference (the delivery's, holds, writes in flight) is gone.
 *    refs_out counts them too, in trusted memory: a closed connection is
 *    freed only once it reaches zero, so no write ever reads freed memory.
 */
#include "transport.h"

#include "core/credit.h"
#include "core/frame.h"
#include "core/log.h"
#include "core/prof.h"
#include "core/ring.h"
#include "proto/codec.h"

#include <verbus/verbus.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <infiniband/verbs.h>
#include <netdb.h>
#include <rdma/rdma_cma.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <valgrind/memcheck.h>

#define DEF_RING (1u << 20)
#define DEF_MAX_MSG (64u << 10)
#define DEF_RECV_DEPTH 128u
#define DEF_TIMEOUT_MS 10000
#define CTRL_SENDS 8u /* control SEND buffers per connection */
#define HS_CHECK_MS 50 /* handshake deadlines are looked at this often */
#define SEND_DEPTH 64u /* send queue depth */
#define SIGNAL_EVERY 16u /* selective signalling: 1 in N data writes */
#define SIGNAL_BYTES (64u << 10) /* or once this many bytes went unsignalled */
#define MAX_BATCH (256u << 10) /* bytes per WRITE at most */
#define INLINE_WANT 256u /* inline size asked for; rxe may give less */
#define POLL_BATCH 32
#define RING_MIN 4096u /* smallest ring, ours or the peer's (one page) */
#define FWD_MAX 1024u /* forwards queued or in flight per connection */
#define DEFER_MAX 1024u /* control messages held while paused */
#define SGE_WANT 32u /* gather entries per WRITE asked for */
#define FRAME_REFS_OFF 12u /* ack_recvs: our reference count once delivered */
/*
 * Address resolution is retried in steps this long.  Linux (6.1) re-checks
 * an unresolved neighbour only at the resolution's deadline unless a
 * neighbour event wakes it, and on rxe behind a bridge none does: one long
 * rdma_resolve_addr() then takes its whole timeout on a cold ARP cache.
 */
#define RESOLVE_STEP_MS 200
#define WRID_BIND (3ull << 32) /* the ring window's bind (isolate) */

static uint64_t mr_registered, mr_deregistered, conns_alive;
static uint64_t handshake_timeouts, mr_bytes;

enum conn_state {
	ST_RESOLVING, /* client: address and route resolution */
	ST_CONNECTING, /* rdma_connect/rdma_accept issued */
	ST_HANDSHAKE, /* ESTABLISHED; waiting for Hello or Welcome */
	ST_OPEN, /* data may flow */
	ST_CLOSED, /* failed or closed; freed by progress() */
};

/* A protection domain shared by every connection on one device. */
/* A registered buffer a closed connection left for the next one
 * (vbi_conn_opts.keep_memory): reconnecting registers nothing again. */
struct mem_slot {
	uint8_t *mem;
	struct ibv_mr *mr;
	size_t len;
	int access;
};

#define MEM_KEPT_MAX 8 /* buffers kept per device */

struct tp_pd {
	struct ibv_context *verbs; /* the device */
	struct ibv_pd *pd;
	bool async_watched; /* its async events are in the tp's epoll set */
	unsigned refs; /* connections using it, and one per kept buffer */
	int mw2; /* type-2 memory windows: 1 yes, 0 no, -1 not asked yet */
	struct mem_slot kept[MEM_KEPT_MAX];
	unsigned nkept;
	struct tp_pd *next;
};

/* One message queued for forwarding to this connection's peer. */
struct fwd {
	struct vbi_conn *src; /* whose ring holds the topic and payload */
	uint64_t start; /* our tx stream position of the frame */
	uint64_t pos; /* the frame's stream position in src's ring */
	uint64_t seq; /* and its seq there */
	uint32_t off; /* its offset in src's ring */
	uint32_t span; /* bytes it occupies (both rings) */
};

struct vbi_tp {
	const struct vbi_transport_ops *ops; /* first: transport.c dispatch */
	struct tp_pd *pds; /* one per device in use */
	struct rdma_event_channel *ec; /* rdma_cm events, non-blocking */
	int epfd; /* ec + every completion channel */
	struct vbi_conn *conns; /* all connections, linked */
	struct vbi_listener *listeners; /* all listeners, linked */
	bool busy_poll; /* some connection busy-polls */
	uint64_t hs_check; /* coarse ms: next look at handshake deadlines */
	unsigned nasync; /* devices whose async events are in the epoll set */
	unsigned spins; /* busy-poll turns, for the fd's 1-in-16 check */
};

struct vbi_listener {
	const struct vbi_transport_ops *ops;
	struct vbi_tp *tp;
	struct rdma_cm_id *id;
	struct vbi_conn_opts opts; /* for the accepted connections */
	struct vbi_conn_cbs cbs;
	void *arg;
	struct vbi_listener *next;
};

struct vbi_conn {
	const struct vbi_transport_ops *ops;
	struct vbi_tp *tp;
	struct vbi_conn *next, *prev; /* tp->conns */
	enum conn_state state;
	bool server;
	struct rdma_cm_id *id;
	struct ibv_pd *pd;
	struct ibv_comp_channel *cc;
	struct ibv_cq *cq;
	uint8_t *ring_mem; /* our receive ring */
	struct ibv_mr *ring_mr; /* the ring: remote-write, or (isolate)
				 * local only and reached through ring_mw */
	int ring_access; /* what ring_mr was registered with */
	struct ibv_mw *ring_mw; /* isolate: a type-2 window bound to our QP
				 * over the ring; its rkey is the peer's */
	uint32_t ring_rkey; /* what the peer gets: ring_mw's or ring_mr's */
	uint8_t *ctrl_mem; /* ctrl_recvs RECV + ctrl_sends SEND buffers */
	struct ibv_mr *ctrl_mr;
	uint32_t ctrl_recvs, ctrl_sends;
	/* A server's connection before its Hello is accepted: no ring, and
	 * control buffers for the Hello and one answer only, so that a peer
	 * that never authenticates costs a few KiB (conn_setup_session). */
	bool preauth;
	bool named; /* server: the peer's Hello named it (c->name) */
	uint64_t hs_deadline; /* server: coarse ms to be open by; 0: none */
	uint8_t *stage_mem; /* mirror of the peer's ring */
	struct ibv_mr *stage_mr;
	struct vbi_ring_rx rx;
	struct vbi_ring_tx tx;
	struct vbi_credit cr;
	uint64_t peer_addr; /* the peer's ring */
	uint32_t peer_rkey;
	uint32_t peer_ring;
	uint32_t peer_max_msg;
	uint32_t max_inline; /* what the QP really supports */
	uint32_t max_sge; /* gather entries per WRITE the QP supports */
	struct fwd *fwd; /* FWD_MAX entries, a ring of forwards */
	uint64_t fwd_head; /* completed: head <= sig <= post <= tail */
	uint64_t fwd_sig; /* a signalled WR in flight completes these */
	uint64_t fwd_post; /* handed to the device */
	uint64_t fwd_tail; /* queued */
	uint64_t refs_out; /* references to frames of our ring */
	uint32_t sq_used; /* send WRs not yet known complete */
	uint32_t unsignaled; /* data writes since the last signal */
	uint32_t unsignaled_bytes; /* and the bytes they carried */
	uint32_t ctrl_busy; /* bitmap of control buffers in flight */
	uint64_t seq; /* last MSG sequence number used */
	bool reserved; /* between reserve and commit */
	size_t res_off, res_span; /* the reservation */
	bool want_writable; /* a send hit VB_EAGAIN */
	bool paused; /* deliver nothing until unpaused (vbi_conn_pause) */
	Verbus__Control **deferred; /* control messages behind held frames */
	unsigned ndeferred;
	bool in_epoll;
	struct vbi_conn_opts opts;
	char name[VBI_NAME_MAX + 1];
	uint8_t cred[VBI_CRED_MAX]; /* ours (client) or the peer's (server) */
	size_t cred_len;
	struct vbi_conn_cbs cbs;
	void *arg;
	struct vbi_conn_stats st;
	struct sockaddr_storage src_sa, dst_sa; /* connect: for re-resolving */
	bool has_src;
	uint64_t resolve_deadline; /* connect: CLOCK_MONOTONIC ms */
	struct vbi_close_info why;
	bool refusing; /* an Error is on its way: close once it has left */
	bool closed_reported;
};

/* ---- helpers ----------------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static uint64_t now_ms(void)
{
	return now_ns() / 1000000u;
}

/* For timers a tick late is fine: never a system call. */
static uint64_t now_coarse_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

/*
 * How a connection is named in log lines: by the name its peer gave in
 * the Hello (escaped when it was stored), or before that by the peer's
 * address, never by our own name.
 */
static int conn_peer_name(const struct vbi_conn *c, char *buf, size_t len);

static const char *conn_label(const struct vbi_conn *c, char *buf, size_t len)
{
	char addr[80];

	if (!c->server || c->named)
		return c->name;
	conn_peer_name(c, addr, sizeof(addr));
	snprintf(buf, len, "from %s", addr);
	return buf;
}

static void opts_defaults(struct vbi_conn_opts *o)
{
	if (!o->name)
		o->name = "verbus";
	if (!o->ring_size)
		o->ring_size = DEF_RING;
	if (!o->max_msg)
		o->max_msg = DEF_MAX_MSG;
	if (!o->recv_depth)
		o->recv_depth = DEF_RECV_DEPTH;
	if (!o->timeout_ms)
		o->timeout_ms = DEF_TIMEOUT_MS;
}

/* A ring we allocate, or accept from a peer: a power of two in range. */
static bool ring_size_ok(uint32_t size)
{
	return size >= RING_MIN && size <= VBI_RING_MAX &&
	       (size & (size - 1)) == 0;
}

static int opts_check(const struct vbi_conn_opts *o)
{
	if (!ring_size_ok(o->ring_size))
		return VB_EINVAL;
	/* A frame may take at most half the peer's ring (core/ring.h). */
	if (vbi_frame_span(VBI_FRAME_HDR_LEN + (size_t)o->max_msg) >
	    o->ring_size / 2)
		return VB_EINVAL;
	if (o->recv_depth < VBI_CREDIT_MIN_POSTED || o->recv_depth > 4096)
		return VB_EINVAL;
	if (o->credentials_len > VBI_CRED_MAX)
		return VB_EINVAL;
	return VB_OK;
}

static int errno_to_vb(int e)
{
	switch (e) {
	case ENOMEM:
		return VB_ENOMEM;
	case ENODEV:
	case ENOSYS:
		return VB_ENODEV;
	case ETIMEDOUT:
		return VB_ETIMEDOUT;
	case ECONNREFUSED:
		return VB_ECONNREFUSED;
	case EADDRNOTAVAIL:
	case ENETUNREACH:
	case EHOSTUNREACH:
		return VB_EUNREACH;
	case EINVAL:
		return VB_EINVAL;
	case EACCES:
	case EPERM:
		return VB_EACCES;
	default:
		return VB_ESYS;
	}
}

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

static void conn_unlink(struct vbi_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else if (c->tp->conns == c)
		c->tp->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
}

static void dereg(struct ibv_mr **mr)
{
	if (*mr) {
		mr_bytes -= (*mr)->length;
		ibv_dereg_mr(*mr);
		mr_deregistered++;
		*mr = NULL;
	}
}

static struct ibv_mr *reg(struct ibv_pd *pd, void *p, size_t len, int access)
{
	struct ibv_mr *mr = ibv_reg_mr(pd, p, len, access);

	if (mr) {
		mr_registered++;
		mr_bytes += len;
	}
	return mr;
}

/*
 * A server's tp watches each device's asynchronous events, which are how a
 * QP put in error by what its peer did (a write outside its ring) says so:
 * the completions only say "flushed".  A client's tp does not (the device
 * context, and so its event queue, is shared by every tp in the process).
 */
static void async_watch(struct vbi_tp *tp, struct tp_pd *p)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = p };
	int fd = p->verbs->async_fd;

	if (!tp->listeners ||
	    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) ||
	    epoll_ctl(tp->epfd, EPOLL_CTL_ADD, fd, &ev))
		return;
	p->async_watched = true;
	tp->nasync++;
}

static struct ibv_pd *pd_get(struct vbi_tp *tp, struct ibv_context *verbs)
{
	struct tp_pd *p;

	for (p = tp->pds; p; p = p->next) {
		if (p->verbs == verbs) {
			p->refs++;
			return p->pd;
		}
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->pd = ibv_alloc_pd(verbs);
	if (!p->pd) {
		free(p);
		return NULL;
	}
	p->verbs = verbs;
	p->refs = 1;
	p->mw2 = -1;
	p->next = tp->pds;
	tp->pds = p;
	async_watch(tp, p);
	return p->pd;
}

static void pd_put(struct vbi_tp *tp, struct ibv_pd *pd)
{
	struct tp_pd **pp, *p;

	for (pp = &tp->pds; (p = *pp); pp = &p->next) {
		if (p->pd != pd)
			continue;
		if (--p->refs == 0) {
			*pp = p->next;
			if (p->async_watched) {
				epoll_ctl(tp->epfd, EPOLL_CTL_DEL,
					  p->verbs->async_fd, NULL);
				tp->nasync--;
			}
			ibv_dealloc_pd(p->pd);
			free(p);
		}
		return;
	}
}

static struct tp_pd *pd_find(struct vbi_tp *tp, const struct ibv_pd *pd)
{
	struct tp_pd *p;

	for (p = tp->pds; p; p = p->next)
		if (p->pd == pd)
			return p;
	return NULL;
}

/*
 * A zeroed buffer of @len bytes registered with @access in @c's PD: one a
 * closed connection kept, if @c keeps memory and one fits, else a new
 * one.  Returns VB_OK or an error, with *@mem and *@mr set or NULL.
 */
static int mem_get(struct vbi_conn *c, size_t len, int access, uint8_t **mem,
		   struct ibv_mr **mr)
{
	struct tp_pd *p = c->opts.keep_memory ? pd_find(c->tp, c->pd) : NULL;
	void *p0;
	int rc;

	for (unsigned i = 0; p && i < p->nkept; i++) {
		if (p->kept[i].len != len || p->kept[i].access != access)
			continue;
		*mem = p->kept[i].mem;
		*mr = p->kept[i].mr;
		p->kept[i] = p->kept[--p->nkept];
		p->refs--; /* the slot's reference; @c holds its own */
		memset(*mem, 0, len);
		return VB_OK;
	}
	/* Straight from the kernel, not the heap: zeroed, page-aligned, and
	 * given back whole by munmap() when the connection goes, so a broker
	 * whose clients come and go returns their memory (ARCHITECTURE.md,
	 * "Memory per connection"). */
	p0 = mmap(NULL, len, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p0 == MAP_FAILED) {
		*mem = NULL;
		*mr = NULL;
		return VB_ENOMEM;
	}
	*mr = reg(c->pd, p0, len, access);
	if (!*mr) {
		rc = errno_to_vb(errno);
		munmap(p0, len);
		*mem = NULL;
		return rc;
	}
	*mem = p0;
	return VB_OK;
}

/* Deregister and unmap a buffer of mem_get()'s (its length is the MR's:
 * mem_get() never leaves one without the other). */
static void mem_free(uint8_t **mem, struct ibv_mr **mr)
{
	size_t len = *mr ? (*mr)->length : 0;

	dereg(mr);
	if (*mem && len)
		munmap(*mem, len);
	*mem = NULL;
}

/* Give back a buffer from mem_get(): kept for the next connection if @c
 * keeps memory and there is room, else deregistered and freed. */
static void mem_put(struct vbi_conn *c, uint8_t **mem, struct ibv_mr **mr,
		    int access)
{
	struct tp_pd *p;

	if (*mr && c->opts.keep_memory && (p = pd_find(c->tp, c->pd)) &&
	    p->nkept < MEM_KEPT_MAX) {
		p->kept[p->nkept++] = (struct mem_slot){
			.mem = *mem,
			.mr = *mr,
			.len = (*mr)->length,
			.access = access,
		};
		p->refs++;
		*mem = NULL;
		*mr = NULL;
		return;
	}
	mem_free(mem, mr);
}

/* Drop every buffer kept for reuse (at transport destruction). */
static void mem_drop_kept(struct vbi_tp *tp)
{
	struct tp_pd *p = tp->pds, *next;

	for (; p; p = next) {
		unsigned n = p->nkept;

		next = p->next;
		p->nkept = 0;
		for (unsigned i = 0; i < n; i++)
			mem_free(&p->kept[i].mem, &p->kept[i].mr);
		for (unsigned i = 0; i < n; i++)
			pd_put(tp, p->pd); /* the last may free p */
	}
}

/* Whether @v can be a frame delivered from @c's ring and not yet given
 * back: checked against our own counters only, which the peer cannot
 * touch. */
static bool view_in_ring(const struct vbi_conn *c,
			 const struct vbi_frame_view *v)
{
	return c->ring_mem && v && v->kind == VBI_FRAME_MSG &&
	       v->off < c->rx.size && v->span <= c->rx.size - v->off &&
	       v->pos >= c->rx.freed && v->pos < c->rx.head &&
	       v->off == (size_t)(v->pos & (c->rx.size - 1));
}

/* The header of the frame @v refers to in @c's ring, if @v is one of ours
 * still delivered (not released to the sender) and its header is intact;
 * else NULL. */
static uint8_t *view_frame(const struct vbi_conn *c,
			   const struct vbi_frame_view *v)
{
	uint8_t *f;

	if (!view_in_ring(c, v))
		return NULL;
	f = c->ring_mem + v->off;
	if (vbi_frame_get_seq(f) != v->seq ||
	    (vbi_frame_get_flags(f) & VBI_FRAME_F_RELEASED))
		return NULL;
	return f;
}

static uint32_t frame_refs(const uint8_t *f)
{
	uint32_t r;

	memcpy(&r, f + FRAME_REFS_OFF, sizeof(r));
	return r;
}

static void frame_set_refs(uint8_t *f, uint32_t r)
{
	memcpy(f + FRAME_REFS_OFF, &r, sizeof(r));
}

static void conn_fail(struct vbi_conn *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Drop one reference to the frame @v of @c; the last one releases it to the
 * ring (and so, later, to the sender).  The count lives in the peer-writable
 * ring, so a peer can corrupt it: that can only stall or hurry the release
 * of its own frames (refs_out, in our memory, decides when @c is freed), and
 * an impossible count is a protocol error.
 */
static int frame_unref(struct vbi_conn *c, const struct vbi_frame_view *v)
{
	uint8_t *f = view_frame(c, v);
	uint32_t r;
	int rc;

	if (!view_in_ring(c, v))
		return VB_EINVAL; /* not ours: a caller bug, nothing changes */
	/* Released already, by the look of it: a double release (a caller
	 * bug), nothing changes.  (A peer forging that look only keeps its
	 * own connection's memory longer; see docs/PROTOCOL.md.) */
	if (!f && vbi_frame_get_seq(c->ring_mem + v->off) == v->seq &&
	    (vbi_frame_get_flags(c->ring_mem + v->off) & VBI_FRAME_F_RELEASED))
		return VB_EINVAL;
	/* A reference of ours goes, whatever else the peer did to the
	 * header: refs_out must reach zero for @c to be freed. */
	if (c->refs_out)
		c->refs_out--;
	if (!f) {
		conn_fail(c, VB_EPROTO, "peer overwrote a held frame");
		return VB_EPROTO;
	}
	r = frame_refs(f);
	if (r == 0) {
		conn_fail(c, VB_EPROTO, "peer overwrote a held frame");
		return VB_EPROTO;
	}
	frame_set_refs(f, r - 1);
	if (r > 1)
		return VB_OK;
	rc = vbi_ring_rx_release(&c->rx, v);
	if (rc == VB_EPROTO)
		conn_fail(c, VB_EPROTO, "peer overwrote a held frame");
	return rc;
}

/* The view of the frame a forward entry refers to, rebuilt. */
static void fwd_view(const struct fwd *f, struct vbi_frame_view *v)
{
	memset(v, 0, sizeof(*v));
	v->kind = VBI_FRAME_MSG;
	v->off = f->off;
	v->span = f->span;
	v->pos = f->pos;
	v->seq = f->seq;
	v->topic = (const char *)f->src->ring_mem + f->off + VBI_FRAME_HDR_LEN;
}

/* Forwards up to @upto are done (written, or dropped with the QP): their
 * references go back to their sources. */
static void fwd_complete(struct vbi_conn *c, uint64_t upto)
{
	struct vbi_frame_view v;

	if (upto > c->fwd_tail)
		upto = c->fwd_tail;
	while (c->fwd_head < upto) {
		struct fwd *f = &c->fwd[c->fwd_head % FWD_MAX];

		fwd_view(f, &v);
		frame_unref(f->src, &v);
		c->fwd_head++;
	}
	if (c->fwd_sig < c->fwd_head)
		c->fwd_sig = c->fwd_head;
	if (c->fwd_post < c->fwd_head)
		c->fwd_post = c->fwd_head;
}

/*
 * Stop all I/O of a closed connection: destroy its QP (no write reads our
 * staging or another ring after that) and return what its forwards hold.
 */
static void conn_quiesce(struct vbi_conn *c)
{
	/* The window first: destroying a QP a window is still bound to
	 * stalls for tens of seconds on rxe (tests/rdma/mw_probe.c). */
	if (c->ring_mw) {
		ibv_dealloc_mw(c->ring_mw);
		c->ring_mw = NULL;
	}
	if (c->id && c->id->qp)
		rdma_destroy_qp(c->id);
	if (c->fwd)
		fwd_complete(c, c->fwd_tail);
}

/* Free every verbs object of @c, in reverse order of creation.  Accepts a
 * half-built connection. */
static void conn_free(struct vbi_conn *c)
{
	if (!c)
		return;
	if (c->in_epoll && c->cc)
		epoll_ctl(c->tp->epfd, EPOLL_CTL_DEL, c->cc->fd, NULL);
	conn_quiesce(c);
	mem_put(c, &c->stage_mem, &c->stage_mr, IBV_ACCESS_LOCAL_WRITE);
	mem_put(c, &c->ctrl_mem, &c->ctrl_mr, IBV_ACCESS_LOCAL_WRITE);
	mem_put(c, &c->ring_mem, &c->ring_mr, c->ring_access);
	if (c->cq)
		ibv_destroy_cq(c->cq);
	if (c->cc)
		ibv_destroy_comp_channel(c->cc);
	if (c->pd)
		pd_put(c->tp, c->pd);
	if (c->id)
		rdma_destroy_id(c->id);
	for (unsigned i = 0; i < c->ndeferred; i++)
		vbi_codec_free(c->deferred[i]);
	free(c->deferred);
	free(c->fwd);
	conn_unlink(c);
	conns_alive--;
	free(c);
}

/* The one way a connection dies: record why, disconnect, and leave the
 * closed callback and the freeing to progress(). */
static void conn_fail(struct vbi_conn *c, int err, const char *fmt, ...)
{
	char label[96];
	va_list ap;

	if (c->state == ST_CLOSED)
		return;
	c->why.err = err;
	va_start(ap, fmt);
	vsnprintf(c->why.reason, sizeof(c->why.reason), fmt, ap);
	va_end(ap);
	if (err != VB_ECLOSED)
		vbi_warn("conn %s qp 0x%x: %s (%s)",
			 conn_label(c, label, sizeof(label)),
			 c->id && c->id->qp ? c->id->qp->qp_num : 0,
			 c->why.reason, vb_strerror(err));
	if (c->state >= ST_CONNECTING && c->id)
		rdma_disconnect(c->id);
	c->state = ST_CLOSED;
}

static struct vbi_conn *conn_new(struct vbi_tp *tp,
				 const struct vbi_conn_opts *o,
				 const struct vbi_conn_cbs *cbs, void *arg)
{
	struct vbi_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->ops = tp->ops;
	c->tp = tp;
	c->opts = *o;
	snprintf(c->name, sizeof(c->name), "%s", o->name);
	c->opts.name = c->name;
	c->opts.source = NULL; /* not kept: the caller owns the string */
	if (o->credentials && o->credentials_len <= sizeof(c->cred)) {
		memcpy(c->cred, o->credentials, o->credentials_len);
		c->cred_len = o->credentials_len;
	}
	c->opts.credentials = NULL;
	c->cbs = *cbs;
	c->arg = arg;
	c->next = tp->conns;
	if (tp->conns)
		tp->conns->prev = c;
	tp->conns = c;
	conns_alive++;
	if (o->busy_poll)
		tp->busy_poll = true;
	return c;
}

static uint8_t *recv_buf(struct vbi_conn *c, uint64_t i)
{
	return c->ctrl_mem + i * VBI_CTRL_MAX;
}

static uint8_t *send_buf(struct vbi_conn *c, unsigned slot)
{
	return c->ctrl_mem + (size_t)(c->ctrl_recvs + slot) * VBI_CTRL_MAX;
}

static int post_recv(struct vbi_conn *c, uint64_t i)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)recv_buf(c, i),
		.length = VBI_CTRL_MAX,
		.lkey = c->ctrl_mr->lkey,
	};
	struct ibv_recv_wr wr = { .wr_id = i, .sg_list = &sge, .num_sge = 1 };
	struct ibv_recv_wr *bad;

	return ibv_post_recv(c->id->qp, &wr, &bad) ? VB_EIO : VB_OK;
}

/* Whether @c's device has type-2 memory windows (asked once per PD). */
static bool device_has_mw2(struct vbi_conn *c)
{
	struct tp_pd *p = pd_find(c->tp, c->pd);
	struct ibv_device_attr_ex a;

	if (!p)
		return false;
	if (p->mw2 < 0) {
		p->mw2 = ibv_query_device_ex(c->id->verbs, NULL, &a) == 0 &&
			 (a.device_cap_flags_ex &
			  (IBV_DEVICE_MEM_WINDOW_TYPE_2A |
			   IBV_DEVICE_MEM_WINDOW_TYPE_2B));
		if (!p->mw2)
			vbi_warn("device %s has no type-2 memory windows: "
				 "peers' rings are protected by their rkeys "
				 "only (docs/SECURITY.md)",
				 ibv_get_device_name(c->id->verbs->device));
	}
	return p->mw2 == 1;
}

/*
 * The control buffers: @recvs RECV buffers, each posted, then @sends SEND
 * buffers, in one region.  Replaces a region already there (a server's
 * handshake buffers, whose one RECV its Hello has consumed).
 */
static int ctrl_setup(struct vbi_conn *c, uint32_t recvs, uint32_t sends)
{
	uint8_t *old_mem = c->ctrl_mem;
	struct ibv_mr *old_mr = c->ctrl_mr;
	int rc;

	c->ctrl_mem = NULL;
	c->ctrl_mr = NULL;
	rc = mem_get(c, (size_t)(recvs + sends) * VBI_CTRL_MAX,
		     IBV_ACCESS_LOCAL_WRITE, &c->ctrl_mem, &c->ctrl_mr);
	if (rc) {
		c->ctrl_mem = old_mem;
		c->ctrl_mr = old_mr;
		return rc;
	}
	mem_put(c, &old_mem, &old_mr, IBV_ACCESS_LOCAL_WRITE);
	c->ctrl_recvs = recvs;
	c->ctrl_sends = sends;
	for (uint32_t i = 0; i < recvs; i++)
		if (post_recv(c, i))
			return VB_EIO;
	return VB_OK;
}

/* Our receive ring, and (isolate) the window the peer will reach it by. */
static int ring_setup(struct vbi_conn *c)
{
	int rc;

	c->ring_access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE;
	if (c->opts.isolate && device_has_mw2(c)) {
		/* The region itself grants no remote access: only the window
		 * bound to this connection's QP does (ring_bind()). */
		c->ring_access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_MW_BIND;
	}
	rc = mem_get(c, c->opts.ring_size, c->ring_access, &c->ring_mem,
		     &c->ring_mr);
	if (rc)
		return rc;
	c->ring_rkey = c->ring_mr->rkey;
	if (vbi_ring_rx_init(&c->rx, c->ring_mem, c->opts.ring_size))
		return VB_EINVAL;
	/* The window after the QP, on purpose: when a process dies the
	 * kernel frees its verbs objects newest first, and a QP destroyed
	 * while a window is still bound to it stalls rxe for tens of seconds
	 * (tests/rdma/mw_probe.c --close-first) -- long enough that a
	 * SIGKILLed broker's clients would not hear of it. */
	if (c->ring_access & IBV_ACCESS_MW_BIND) {
		c->ring_mw = ibv_alloc_mw(c->pd, IBV_MW_TYPE_2);
		if (!c->ring_mw)
			return errno_to_vb(errno);
	}
	return VB_OK;
}

static int conn_setup_session(struct vbi_conn *c, const char **what);

/*
 * Create PD, completion channel, CQ and QP, and the control buffers with
 * their RECVs posted: what a connection needs before connect/accept.  A
 * client also gets its ring now (its Hello names it); a server's accepted
 * connection gets only one RECV and one SEND buffer until its Hello is
 * accepted (conn_setup_session).
 */
static int conn_setup_verbs(struct vbi_conn *c, const char **what)
{
	struct ibv_qp_init_attr qa = { 0 };
	struct ibv_qp_attr attr;
	struct ibv_qp_init_attr got;
	struct epoll_event ev = { .events = EPOLLIN };
	uint32_t depth = c->opts.recv_depth;

	*what = "protection domain";
	c->pd = pd_get(c->tp, c->id->verbs);
	if (!c->pd)
		return VB_ENOMEM;
	*what = "completion channel";
	c->cc = ibv_create_comp_channel(c->id->verbs);
	if (!c->cc)
		return VB_ESYS;
	if (fcntl(c->cc->fd, F_SETFL, fcntl(c->cc->fd, F_GETFL) | O_NONBLOCK))
		return VB_ESYS;
	*what = "completion queue";
	c->cq = ibv_create_cq(c->id->verbs, (int)(depth + SEND_DEPTH + 8), c,
			      c->cc, 0);
	if (!c->cq)
		return VB_ENOMEM;
	/* Busy-polling reads the CQ every turn: never armed, a completion
	 * costs no channel event, read or re-arm (see conn_event). */
	if (!c->opts.busy_poll && ibv_req_notify_cq(c->cq, 0))
		return VB_EIO;
	ev.data.ptr = c;
	if (epoll_ctl(c->tp->epfd, EPOLL_CTL_ADD, c->cc->fd, &ev))
		return VB_ESYS;
	c->in_epoll = true;

	*what = "queue pair";
	qa.send_cq = c->cq;
	qa.recv_cq = c->cq;
	qa.qp_type = IBV_QPT_RC;
	qa.sq_sig_all = 0;
	qa.cap.max_send_wr = SEND_DEPTH;
	qa.cap.max_recv_wr = depth;
	qa.cap.max_send_sge = SGE_WANT;
	qa.cap.max_recv_sge = 1;
	qa.cap.max_inline_data = INLINE_WANT;
	if (rdma_create_qp(c->id, c->pd, &qa)) {
		/* The device may not do that much: ask for the minimum (no
		 * inline, one gather entry: forwards are then copied). */
		qa.cap.max_inline_data = 0;
		qa.cap.max_send_sge = 1;
		if (rdma_create_qp(c->id, c->pd, &qa))
			return errno_to_vb(errno);
	}
	c->max_inline = qa.cap.max_inline_data;
	c->max_sge = qa.cap.max_send_sge;
	if (ibv_query_qp(c->id->qp, &attr, IBV_QP_CAP, &got) == 0) {
		c->max_inline = got.cap.max_inline_data;
		c->max_sge = got.cap.max_send_sge;
	}
	if (c->max_sge > SGE_WANT)
		c->max_sge = SGE_WANT;
	if (!c->server)
		return conn_setup_session(c, what);
	*what = "control buffers";
	c->preauth = true;
	return ctrl_setup(c, 1, 1);
}

/*
 * What carries a session: the forward queue, the ring, and the whole set
 * of control buffers with every RECV posted (the Welcome grants them all
 * as credits).  A client's at set-up; a server's once the Hello is
 * accepted, in place of the handshake's two buffers.  *@what names the
 * part that failed.
 */
static int conn_setup_session(struct vbi_conn *c, const char **what)
{
	int rc;

	*what = "forward queue";
	c->fwd = calloc(FWD_MAX, sizeof(*c->fwd));
	if (!c->fwd)
		return VB_ENOMEM;
	*what = "receive ring";
	rc = ring_setup(c);
	if (rc)
		return rc;
	*what = "control buffers";
	rc = ctrl_setup(c, c->opts.recv_depth, CTRL_SENDS);
	if (rc)
		return rc;
	c->preauth = false;
	return VB_OK;
}

/* The staging mirror of the peer's ring, once its size is known. */
static int conn_setup_stage(struct vbi_conn *c, const Verbus__RingInfo *r,
			    uint32_t peer_max_msg, uint32_t peer_credits)
{
	int rc;

	if (!ring_size_ok(r->size) ||
	    (c->opts.max_peer_ring && r->size > c->opts.max_peer_ring))
		return VB_EPROTO;
	rc = mem_get(c, r->size, IBV_ACCESS_LOCAL_WRITE, &c->stage_mem,
		     &c->stage_mr);
	if (rc)
		return rc;
	rc = vbi_ring_tx_init(&c->tx, c->stage_mem, r->size);
	if (rc)
		return VB_EPROTO;
	rc = vbi_credit_init(&c->cr, peer_credits, c->opts.recv_depth);
	if (rc)
		return VB_EPROTO;
	c->peer_addr = r->addr;
	c->peer_rkey = r->rkey;
	c->peer_ring = r->size;
	/* Never more than fits half the peer's ring (core/ring.h). */
	c->peer_max_msg = peer_max_msg;
	if (vbi_frame_span(VBI_FRAME_HDR_LEN + (size_t)peer_max_msg) >
	    r->size / 2)
		c->peer_max_msg = r->size / 2 - VBI_FRAME_HDR_LEN;
	return VB_OK;
}

/* ---- sending --------------------------------------------------------- */

static void ring_info(struct vbi_conn *c, Verbus__RingInfo *r)
{
	r->addr = (uintptr_t)c->ring_mem;
	r->rkey = c->ring_rkey;
	r->size = c->opts.ring_size;
}

/*
 * Bind our ring's window to this connection's QP (isolate): from now on
 * the peer's rkey reaches exactly the ring, and only through this QP.  The
 * bind goes on the send queue before the Welcome that tells the peer the
 * rkey, so it is in force before the peer can use it.
 */
static int ring_bind(struct vbi_conn *c)
{
	struct ibv_send_wr wr = { 0 }, *bad;
	uint32_t rkey = ibv_inc_rkey(c->ring_mw->rkey);

	if (c->sq_used >= SEND_DEPTH)
		return VB_EAGAIN;
	wr.wr_id = WRID_BIND;
	wr.opcode = IBV_WR_BIND_MW;
	wr.send_flags = IBV_SEND_SIGNALED;
	wr.bind_mw.mw = c->ring_mw;
	wr.bind_mw.rkey = rkey;
	wr.bind_mw.bind_info.mr = c->ring_mr;
	wr.bind_mw.bind_info.addr = (uintptr_t)c->ring_mem;
	wr.bind_mw.bind_info.length = c->opts.ring_size;
	wr.bind_mw.bind_info.mw_access_flags = IBV_ACCESS_REMOTE_WRITE;
	if (ibv_post_send(c->id->qp, &wr, &bad))
		return errno_to_vb(errno);
	c->sq_used++;
	c->ring_rkey = rkey;
	return VB_OK;
}

/* SEND one control message (always signalled: its buffer is reused only
 * after the completion).  @credit_return may use the reserved credits. */
static int send_ctrl(struct vbi_conn *c, const Verbus__Control *m, bool counted,
		     bool credit_return)
{
	struct ibv_sge sge;
	struct ibv_send_wr wr = { 0 }, *bad;
	unsigned slot;
	size_t len;
	uint8_t *buf;
	int rc;

	for (slot = 0; slot < c->ctrl_sends; slot++)
		if (!(c->ctrl_busy & (1u << slot)))
			break;
	if (slot == c->ctrl_sends || c->sq_used >= SEND_DEPTH)
		return VB_EAGAIN;
	if (counted && vbi_credit_take(&c->cr, credit_return))
		return VB_EAGAIN;
	buf = send_buf(c, slot);
	rc = vbi_codec_encode(m, buf, VBI_CTRL_MAX, &len);
	if (rc)
		return rc;
	sge.addr = (uintptr_t)buf;
	sge.length = (uint32_t)len;
	sge.lkey = c->ctrl_mr->lkey;
	wr.wr_id = 1ull << 32 | slot;
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.opcode = IBV_WR_SEND;
	wr.send_flags = IBV_SEND_SIGNALED;
	if (len <= c->max_inline)
		wr.send_flags |= IBV_SEND_INLINE;
	if (ibv_post_send(c->id->qp, &wr, &bad))
		return VB_EIO;
	c->ctrl_busy |= 1u << slot;
	c->sq_used++;
	return VB_OK;
}

static int send_credit(struct vbi_conn *c)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__Credit cr = VERBUS__CREDIT__INIT;
	struct vbi_credit_ack ack;
	int rc;

	vbi_credit_snapshot(&c->cr, &ack);
	cr.recvs = ack.ack_recvs;
	cr.freed = ack.ack_freed;
	m.body_case = VERBUS__CONTROL__BODY_CREDIT;
	m.credit = &cr;
	rc = send_ctrl(c, &m, true, true);
	if (rc == VB_OK) {
		vbi_credit_sent(&c->cr, &ack);
		c->st.credit_returns++;
	}
	return rc;
}

/*
 * The WR about to be posted is signalled: it completes the unsignalled
 * writes before it and the forwards posted so far.  Returns its wr_id: the
 * forwards done when it completes, and the writes it completes (itself
 * included).
 */
static uint64_t signal_point(struct vbi_conn *c)
{
	uint64_t id = c->fwd_post << 16 | c->unsignaled;

	c->unsignaled = 0;
	c->unsignaled_bytes = 0;
	c->fwd_sig = c->fwd_post;
	return id;
}

/*
 * The gather list of batch @b: staging, except that each forwarded frame's
 * topic and payload come from its source's ring.  Cuts @b after a forwarded
 * frame when the QP's gather entries run out.  Returns the entry count and
 * sets *@nfwd to the forwards the batch carries.
 */
static int batch_sges(struct vbi_conn *c, struct vbi_ring_batch *b,
		      struct ibv_sge *sg, uint32_t *nfwd)
{
	uint64_t start = c->tx.flushed;
	size_t cur = b->off, end = b->off + b->xfer, last = 0;
	uint32_t n = 0, k = 0;
	uint64_t i;

	for (i = c->fwd_post; i < c->fwd_tail; i++) {
		const struct fwd *f = &c->fwd[i % FWD_MAX];
		size_t hoff;

		if (f->start >= start + b->len)
			break;
		if (k > 0 && n + 3 > c->max_sge) {
			/* Cut after the previous forward: its header is the
			 * last MSG, and nothing follows it in this WRITE. */
			b->len = b->xfer = cur - b->off;
			b->last_off = last;
			end = cur;
			break;
		}
		hoff = b->off + (size_t)(f->start - start);
		sg[n].addr = (uintptr_t)(c->stage_mem + cur);
		sg[n].length = (uint32_t)(hoff + VBI_FRAME_HDR_LEN - cur);
		sg[n++].lkey = c->stage_mr->lkey;
		if (f->span > VBI_FRAME_HDR_LEN) {
			sg[n].addr = (uintptr_t)(f->src->ring_mem + f->off +
						 VBI_FRAME_HDR_LEN);
			sg[n].length = f->span - VBI_FRAME_HDR_LEN;
			sg[n++].lkey = f->src->ring_mr->lkey;
		}
		cur = hoff + f->span;
		last = hoff;
		k++;
	}
	if (cur < end) {
		sg[n].addr = (uintptr_t)(c->stage_mem + cur);
		sg[n].length = (uint32_t)(end - cur);
		sg[n++].lkey = c->stage_mr->lkey;
	}
	*nfwd = k;
	return (int)n;
}

/* Post the staged frames, as few WRITE_WITH_IMMs as the ring's end and the
 * batch limit allow.  Stops quietly when out of RECV credits or send queue:
 * what remains is posted when credits or completions come back. */
static int conn_flush(struct vbi_conn *c)
{
	struct vbi_ring_batch b;
	struct vbi_credit_ack ack;
	struct ibv_sge sge[SGE_WANT];
	struct ibv_send_wr wr, *bad;
	uint32_t nfwd;
	int rc, nsge;

	if (c->state != ST_OPEN)
		return c->state == ST_CLOSED ? VB_ECLOSED : VB_ESTATE;
	/* The frames carry the freshest acks: what was released just now. */
	vbi_credit_note_freed(&c->cr, c->rx.freed);
	for (;;) {
		rc = vbi_ring_tx_next_batch(&c->tx, MAX_BATCH, &b);
		if (rc || b.len == 0)
			return rc;
		if (c->sq_used + 1 >= SEND_DEPTH)
			return VB_OK;
		if (vbi_credit_take(&c->cr, false))
			return VB_OK;
		nsge = batch_sges(c, &b, sge, &nfwd);
		vbi_credit_snapshot(&c->cr, &ack);
		if (b.has_last)
			vbi_frame_set_acks(c->stage_mem + b.last_off,
					   ack.ack_recvs, ack.ack_freed);
		memset(&wr, 0, sizeof(wr));
		wr.wr_id = 0;
		wr.sg_list = sge;
		wr.num_sge = nsge;
		wr.opcode = IBV_WR_RDMA_WRITE_WITH_IMM;
		wr.imm_data = htonl((uint32_t)b.len);
		wr.wr.rdma.remote_addr = c->peer_addr + b.off;
		wr.wr.rdma.rkey = c->peer_rkey;
		/* Signal one write in SIGNAL_EVERY or per SIGNAL_BYTES
		 * (large forwards then return their sources' frames
		 * promptly, at a completion per 64 KiB), and always when the
		 * send queue or the forward slots are half used, so that
		 * completions free them in time.  Forwards ride unsignalled
		 * like any write: a source whose frames they pin for too long
		 * gets them back through conn_kick().  wr_id: the forwards
		 * done when it completes, and the writes it completes. */
		c->fwd_post += nfwd;
		c->unsignaled_bytes += b.xfer;
		if (++c->unsignaled >= SIGNAL_EVERY ||
		    c->unsignaled_bytes >= SIGNAL_BYTES ||
		    c->sq_used + 1 >= SEND_DEPTH / 2 ||
		    c->fwd_post - c->fwd_head >= FWD_MAX / 2) {
			wr.send_flags |= IBV_SEND_SIGNALED;
			wr.wr_id = signal_point(c);
		}
		/* Inline copies with the CPU: never for forwarded bytes. */
		if (nfwd == 0 && b.xfer <= c->max_inline)
			wr.send_flags |= IBV_SEND_INLINE;
		VBI_PROF(VBI_PROF_POST);
		if (ibv_post_send(c->id->qp, &wr, &bad)) {
			conn_fail(c, VB_EIO, "ibv_post_send failed: %s",
				  strerror(errno));
			return VB_EIO;
		}
		VBI_PROF(VBI_PROF_POSTED);
		c->sq_used++;
		c->st.writes++;
		if (b.has_last)
			vbi_credit_sent(&c->cr, &ack);
		vbi_ring_tx_flushed(&c->tx, b.len);
	}
}

/*
 * Have the device report the forwards posted unsignalled so far, so that
 * their sources get their frames back: a signalled zero-length WRITE (it
 * touches no memory and consumes no RECV at the peer; completions on a
 * send queue come in order, so it completes after every WR before it).
 * Nothing to do when a signalled WR already covers them, or when the send
 * queue is full: it is then at least half full, so its signalled WRs
 * complete soon and the next turn asks again.
 */
static void conn_kick(struct vbi_conn *c)
{
	struct ibv_send_wr wr, *bad;

	if (c->state != ST_OPEN || c->fwd_sig == c->fwd_post ||
	    c->sq_used + 1 >= SEND_DEPTH)
		return;
	memset(&wr, 0, sizeof(wr));
	wr.opcode = IBV_WR_RDMA_WRITE;
	wr.send_flags = IBV_SEND_SIGNALED;
	wr.wr.rdma.remote_addr = c->peer_addr;
	wr.wr.rdma.rkey = c->peer_rkey;
	c->unsignaled++; /* the kick itself */
	wr.wr_id = signal_point(c);
	if (ibv_post_send(c->id->qp, &wr, &bad)) {
		conn_fail(c, VB_EIO, "ibv_post_send failed: %s",
			  strerror(errno));
		return;
	}
	c->sq_used++;
	c->st.kicks++;
}

static int conn_reserve(struct vbi_conn *c, uint16_t topic_len,
			uint32_t payload_len, void **topic, void **payload)
{
	struct vbi_frame_msg m = { 0 };
	size_t span, off;
	uint64_t len = vbi_frame_msg_len(topic_len, payload_len);
	uint8_t *f;
	int rc;

	if (c->state != ST_OPEN)
		return c->state == ST_CLOSED ? VB_ECLOSED : VB_ESTATE;
	if (c->reserved)
		return VB_ESTATE;
	if ((uint64_t)topic_len + payload_len > c->peer_max_msg)
		return VB_EMSGSIZE;
	span = vbi_frame_span((size_t)len);
	rc = vbi_ring_tx_reserve(&c->tx, span, &off, NULL);
	if (rc == VB_EAGAIN) {
		/* Staged but unflushed frames hold space too: push them. */
		conn_flush(c);
		c->want_writable = true;
		c->st.credit_waits++;
		return VB_EAGAIN;
	}
	if (rc)
		return rc;
	f = c->stage_mem + off;
	m.topic_len = topic_len;
	m.payload_len = payload_len;
	m.seq = c->seq + 1;
	vbi_frame_put_hdr(f, span, &m);
	c->reserved = true;
	c->res_off = off;
	c->res_span = span;
	*topic = f + VBI_FRAME_HDR_LEN;
	*payload = f + VBI_FRAME_HDR_LEN + topic_len;
	return VB_OK;
}

static int conn_commit(struct vbi_conn *c)
{
	uint8_t *f;
	uint32_t len;

	if (!c->reserved)
		return VB_ESTATE;
	c->reserved = false;
	c->seq++;
	f = c->stage_mem + c->res_off;
	len = vbi_frame_get_len(f);
	/* Zero the padding: nothing stale goes on the wire. */
	memset(f + len, 0, c->res_span - len);
	c->st.msgs_out++;
	c->st.bytes_out += len - VBI_FRAME_HDR_LEN;
	return VB_OK;
}

/*
 * A forward the device cannot gather (the source's ring is registered on
 * another device, or the QP has too few gather entries): the topic and
 * payload are copied behind the header already in staging at @off, and
 * leave with it; no reference to the source is kept.
 */
static void forward_copy(struct vbi_conn *dst, size_t off, const uint8_t *frame,
			 size_t len, size_t span)
{
	uint8_t *to = dst->stage_mem + off + VBI_FRAME_HDR_LEN;

	memcpy(to, frame + VBI_FRAME_HDR_LEN, len);
	/* Zero the padding: nothing stale goes on the wire. */
	memset(to + len, 0, span - VBI_FRAME_HDR_LEN - len);
	dst->st.bytes_copied += len;
}

static int conn_forward(struct vbi_conn *dst, struct vbi_conn *src,
			const struct vbi_frame_view *v, uint32_t sid)
{
	struct vbi_frame_msg m = { 0 };
	uint64_t len = (uint64_t)v->topic_len + v->payload_len;
	struct fwd *f;
	uint8_t *frame;
	bool copy;
	size_t off;
	int rc;

	if (dst->state != ST_OPEN)
		return dst->state == ST_CLOSED ? VB_ECLOSED : VB_ESTATE;
	if (dst->reserved)
		return VB_ESTATE;
	frame = view_frame(src, v);
	if (!frame)
		return VB_EINVAL;
	if (len > dst->peer_max_msg)
		return VB_EMSGSIZE;
	/* The device can gather only from memory of the QP's own PD (one per
	 * device), and needs 3 entries for a forward: else copy. */
	copy = src->pd != dst->pd || dst->max_sge < 3;
	if (!copy && dst->fwd_tail - dst->fwd_head >= FWD_MAX)
		goto out_full;
	rc = vbi_ring_tx_reserve(&dst->tx, v->span, &off, NULL);
	if (rc == VB_EAGAIN)
		goto out_full;
	if (rc)
		return rc;
	m.topic_len = v->topic_len;
	m.payload_len = v->payload_len;
	m.seq = ++dst->seq;
	m.sid = sid;
	vbi_frame_put_hdr(dst->stage_mem + off, v->span, &m);
	dst->st.msgs_out++;
	dst->st.bytes_out += len;
	if (copy) {
		forward_copy(dst, off, frame, (size_t)len, v->span);
		return VB_OK;
	}
	f = &dst->fwd[dst->fwd_tail++ % FWD_MAX];
	f->src = src;
	f->start = dst->tx.tail - v->span;
	f->pos = v->pos;
	f->seq = v->seq;
	f->off = (uint32_t)v->off;
	f->span = (uint32_t)v->span;
	frame_set_refs(frame, frame_refs(frame) + 1);
	src->refs_out++;
	dst->st.bytes_forwarded += len;
	return VB_OK;
out_full:
	/* Staged but unflushed frames hold space too: push them. */
	conn_flush(dst);
	dst->want_writable = true;
	dst->st.credit_waits++;
	return VB_EAGAIN;
}

static int conn_unpin(struct vbi_conn *c)
{
	struct vbi_frame_view v;
	int n = 0;

	/* The forwards not yet posted are the newest: [fwd_post, fwd_tail). */
	while (c->fwd_tail > c->fwd_post) {
		struct fwd *f = &c->fwd[(c->fwd_tail - 1) % FWD_MAX];
		size_t off = (size_t)(f->start & (c->tx.size - 1));
		/* Our own header in staging says how much: not the peer's. */
		size_t len = vbi_frame_get_len(c->stage_mem + off) -
			     VBI_FRAME_HDR_LEN;
		uint8_t *frame;

		fwd_view(f, &v);
		frame = view_frame(f->src, &v);
		if (frame) {
			forward_copy(c, off, frame, len, f->span);
			c->st.bytes_forwarded -= len;
		} else {
			/* The source broke its frame (it fails for that):
			 * zeros go, not stale bytes. */
			memset(c->stage_mem + off + VBI_FRAME_HDR_LEN, 0,
			       f->span - VBI_FRAME_HDR_LEN);
		}
		frame_unref(f->src, &v);
		c->fwd_tail--;
		n++;
	}
	/* Those posted unsignalled: have the device report them now. */
	conn_kick(c);
	return n;
}

static int conn_send(struct vbi_conn *c, const void *topic, uint16_t tlen,
		     const void *payload, uint32_t plen)
{
	void *t, *p;
	int rc = conn_reserve(c, tlen, plen, &t, &p);

	if (rc)
		return rc;
	if (tlen)
		memcpy(t, topic, tlen);
	if (plen)
		memcpy(p, payload, plen);
	c->st.bytes_copied += (uint64_t)tlen + plen;
	return conn_commit(c);
}

/* ---- receiving --------------------------------------------------------- */

/* Room came back (a buffer, a slot for forwards): tell a waiting user. */
static void writable(struct vbi_conn *c)
{
	if (c->want_writable && c->state == ST_OPEN) {
		c->want_writable = false;
		if (c->cbs.writable)
			c->cbs.writable(c, c->arg);
	}
}

static void apply_acks(struct vbi_conn *c, uint32_t recvs, uint32_t freed)
{
	uint64_t before = c->tx.peer_freed;
	uint32_t credits = c->cr.recv_credits;

	if (vbi_credit_grant(&c->cr, recvs) ||
	    vbi_ring_tx_credit(&c->tx, freed)) {
		conn_fail(c, VB_EPROTO, "peer returned credits it never had");
		return;
	}
	if (c->tx.peer_freed != before || c->cr.recv_credits != credits)
		c->st.progress++;
	if (c->want_writable &&
	    (c->tx.peer_freed != before || c->cr.recv_credits != credits)) {
		c->want_writable = false;
		if (c->cbs.writable)
			c->cbs.writable(c, c->arg);
	}
}

static void conn_open(struct vbi_conn *c)
{
	c->state = ST_OPEN;
	vbi_info("conn %s qp 0x%x open: ring %u, peer ring %u, inline %u",
		 c->name, c->id->qp->qp_num, c->opts.ring_size, c->peer_ring,
		 c->max_inline);
	if (c->cbs.open)
		c->cbs.open(c, c->arg);
}

/*
 * Turn a client away after its Hello: an Error {@err, @reason} goes back
 * (so that it can report why), and the connection closes once that SEND
 * has completed (or at once if it cannot be sent).  Nothing else is
 * answered meanwhile: the client never learns our ring.
 */
static void refuse(struct vbi_conn *c, int err, const char *reason)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__Error e = VERBUS__ERROR__INIT;

	e.code = (uint32_t)-err;
	e.reason = (char *)reason;
	m.body_case = VERBUS__CONTROL__BODY_ERROR;
	m.error = &e;
	c->why.err = err;
	snprintf(c->why.reason, sizeof(c->why.reason), "refused: %s", reason);
	if (send_ctrl(c, &m, false, false) == VB_OK)
		c->refusing = true;
	else
		conn_fail(c, err, "refused: %s", reason);
}

static void on_hello(struct vbi_conn *c, const Verbus__Hello *h)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__Welcome w = VERBUS__WELCOME__INIT;
	Verbus__RingInfo r = VERBUS__RING_INFO__INIT;
	const char *what;
	int rc;

	if (h->version != VBI_PROTO_VERSION) {
		conn_fail(c, VB_EVERSION, "client speaks version %u",
			  h->version);
		return;
	}
	/* The name reaches log lines and monitoring pages: printable text
	 * only, and even so stored escaped (the one escape at the log
	 * edge), so that no name can start a line of its own. */
	vbi_log_escape(c->name, sizeof(c->name), h->name, strlen(h->name));
	c->named = true;
	if (!vbi_text_clean(h->name, strlen(h->name))) {
		refuse(c, VB_EINVAL,
		       "client name must be printable UTF-8 text");
		return;
	}
	/* The codec bounds it to VBI_CRED_MAX. */
	c->cred_len = h->credentials.len;
	if (c->cred_len)
		memcpy(c->cred, h->credentials.data, c->cred_len);
	if (c->cbs.authorize) {
		rc = c->cbs.authorize(c, c->cred, c->cred_len, c->arg);
		if (rc) {
			refuse(c, rc, "not authorized");
			return;
		}
	}
	rc = conn_setup_stage(c, h->ring, h->max_msg_size, h->credits);
	if (rc) {
		conn_fail(c, rc, "unusable hello");
		return;
	}
	rc = conn_setup_session(c, &what);
	if (rc) {
		conn_fail(c, rc, "cannot set up the session's %s", what);
		return;
	}
	if (c->ring_mw) {
		rc = ring_bind(c);
		if (rc) {
			conn_fail(c, rc,
				  "cannot bind the ring's memory window");
			return;
		}
	}
	ring_info(c, &r);
	w.version = VBI_PROTO_VERSION;
	w.session_id = ((uint64_t)c->id->qp->qp_num << 32) | (uint32_t)rand();
	w.ring = &r;
	w.credits = c->opts.recv_depth;
	w.max_msg_size = c->opts.max_msg;
	m.body_case = VERBUS__CONTROL__BODY_WELCOME;
	m.welcome = &w;
	rc = send_ctrl(c, &m, false, false);
	if (rc) {
		conn_fail(c, rc, "cannot send welcome");
		return;
	}
	conn_open(c);
}

/* Keep control message @m until the frames before it have been handed up
 * (conn_after replays it). */
static int defer_ctrl(struct vbi_conn *c, Verbus__Control *m)
{
	if (!c->deferred) {
		c->deferred = calloc(DEFER_MAX, sizeof(*c->deferred));
		if (!c->deferred) {
			conn_fail(c, VB_ENOMEM,
				  "cannot hold a control message");
			return VB_ENOMEM;
		}
	}
	if (c->ndeferred == DEFER_MAX) {
		conn_fail(c, VB_EPROTO,
			  "too many control messages while paused");
		return VB_ENOSPC;
	}
	c->deferred[c->ndeferred++] = m;
	return VB_OK;
}

/* Hand up the control messages held behind frames, once those are out. */
static void replay_ctrl(struct vbi_conn *c)
{
	unsigned i = 0;

	while (i < c->ndeferred && c->state == ST_OPEN && !c->paused &&
	       c->rx.head == c->rx.written) {
		Verbus__Control *m = c->deferred[i++];

		if (c->cbs.control)
			c->cbs.control(c, m, c->arg);
		vbi_codec_free(m);
	}
	memmove(c->deferred, c->deferred + i,
		(c->ndeferred - i) * sizeof(*c->deferred));
	c->ndeferred -= i;
}

/*
 * The peer sent an Error: it is closing, and says why.  Its code becomes
 * our close error if it is one of ours; its reason goes to the log
 * escaped, always (even when the code says an orderly close: a peer that
 * leaves before its Hello is worth a line).
 */
static void on_error(struct vbi_conn *c, const Verbus__Error *e)
{
	char reason[VBI_LOG_ESCAPE_MAX], label[96];
	int err = e->code > 0 && e->code <= (uint32_t)-VB_ESYS ? -(int)e->code :
								 VB_EPROTO;

	vbi_log_escape(reason, sizeof(reason), e->reason, strlen(e->reason));
	if (err == VB_ECLOSED)
		vbi_warn("conn %s qp 0x%x: peer sent an error%s: %s",
			 conn_label(c, label, sizeof(label)),
			 c->id && c->id->qp ? c->id->qp->qp_num : 0,
			 c->state == ST_OPEN ? "" : " before the handshake",
			 reason);
	conn_fail(c, err, "peer sent an error%s: %s",
		  c->state == ST_OPEN ? "" : " before the handshake", reason);
}

/* One control message received on @c. */
static void on_ctrl(struct vbi_conn *c, const uint8_t *buf, uint32_t len)
{
	Verbus__Control *m = NULL;
	int rc;

	if (c->refusing)
		return; /* turned away: nothing more is answered */
	rc = vbi_codec_decode(buf, len, &m);
	if (rc) {
		conn_fail(c, rc, "malformed control message (%u bytes)", len);
		return;
	}
	switch (m->body_case) {
	case VERBUS__CONTROL__BODY_HELLO:
		/* The RECV may complete before rdma_cm says ESTABLISHED. */
		if (!c->server ||
		    (c->state != ST_HANDSHAKE && c->state != ST_CONNECTING))
			goto unexpected;
		on_hello(c, m->hello);
		break;
	case VERBUS__CONTROL__BODY_WELCOME:
		if (c->server || c->state != ST_HANDSHAKE)
			goto unexpected;
		if (m->welcome->version != VBI_PROTO_VERSION) {
			conn_fail(c, VB_EVERSION, "server speaks version %u",
				  m->welcome->version);
			break;
		}
		rc = conn_setup_stage(c, m->welcome->ring,
				      m->welcome->max_msg_size,
				      m->welcome->credits);
		if (rc) {
			conn_fail(c, rc, "unusable welcome");
			break;
		}
		conn_open(c);
		break;
	case VERBUS__CONTROL__BODY_CREDIT:
		if (c->state != ST_OPEN)
			goto unexpected;
		apply_acks(c, m->credit->recvs, m->credit->freed);
		break;
	case VERBUS__CONTROL__BODY_ERROR:
		on_error(c, m->error);
		break;
	case VERBUS__CONTROL__BODY_SUBSCRIBE:
	case VERBUS__CONTROL__BODY_UNSUBSCRIBE:
	case VERBUS__CONTROL__BODY_NOTICE:
	case VERBUS__CONTROL__BODY_DROPPED:
	case VERBUS__CONTROL__BODY_PING:
	case VERBUS__CONTROL__BODY_PONG:
		/* The layer above's business, in order with the frames that
		 * came before it: while those are held (paused), so is it. */
		if (c->state != ST_OPEN)
			goto unexpected;
		if (c->paused || c->ndeferred) {
			if (defer_ctrl(c, m) == VB_OK)
				return; /* kept: freed after its replay */
			break;
		}
		if (c->cbs.control)
			c->cbs.control(c, m, c->arg);
		break;
	default:
unexpected:
		conn_fail(c, VB_EPROTO, "unexpected %s %s",
			  vbi_codec_kind_name(m),
			  c->state == ST_OPEN ? "on an open connection" :
						"during the handshake");
	}
	vbi_codec_free(m);
}

/* Return ring credit now if enough is owed (within a long delivery run, a
 * slow callback must not starve the sender until the run ends). */
static void credit_maybe(struct vbi_conn *c)
{
	vbi_credit_note_freed(&c->cr, c->rx.freed);
	if (vbi_credit_should_return(&c->cr, c->opts.ring_size) ||
	    (c->rx.freed == c->rx.written &&
	     vbi_credit_ring_may_block(
		     &c->cr, c->opts.ring_size,
		     vbi_frame_span(VBI_FRAME_HDR_LEN +
				    (size_t)c->opts.max_msg))))
		send_credit(c);
}

/* Hand every complete frame to the message callback. */
static void deliver(struct vbi_conn *c)
{
	struct vbi_frame_view v;
	unsigned n = 0;
	int rc;

	while (c->state == ST_OPEN && !c->paused) {
		rc = vbi_ring_rx_next(&c->rx, c->opts.max_msg, &v);
		if (rc == VB_EAGAIN)
			return;
		if (rc) {
			conn_fail(c, VB_EPROTO, "corrupt frame in ring at %llu",
				  (unsigned long long)c->rx.head);
			return;
		}
		apply_acks(c, v.ack_recvs, v.ack_freed);
		if (c->state != ST_OPEN)
			return;
		c->st.msgs_in++;
		c->st.bytes_in += v.topic_len + v.payload_len;
		if (!c->cbs.message) {
			vbi_ring_rx_release(&c->rx, &v);
			continue;
		}
		/* The delivery's reference (see the top of the file). */
		frame_set_refs(c->ring_mem + v.off, 1);
		c->refs_out++;
		VBI_PROF(VBI_PROF_DELIVER);
		c->cbs.message(c, &v, c->arg);
		if (++n % 64 == 0 && c->state == ST_OPEN)
			credit_maybe(c);
	}
}

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
static void tp_async(struct vbi_tp *tp, struct tp_pd *p)
{
	struct ibv_async_event ev;
	struct vbi_conn *c;

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
		for (c = tp->conns; why && c; c = c->next)
			if (c->id && c->id->qp == ev.element.qp)
				break;
		if (why && c)
			conn_fail(c, err, "%s", why);
		else
			vbi_debug("device %s: async event %s",
				  ibv_get_device_name(p->verbs->device),
				  ibv_event_type_str(ev.event_type));
		ibv_ack_async_event(&ev);
	}
}

static void on_wc(struct vbi_conn *c, const struct ibv_wc *wc)
{
	bool was_open, was_preauth;

	if (wc->status != IBV_WC_SUCCESS) {
		if (c->state == ST_CLOSED)
			return;
		if (wc->status != IBV_WC_WR_FLUSH_ERR) {
			conn_fail(c, wc_to_vb(wc->status),
				  "work completion: %s",
				  ibv_wc_status_str(wc->status));
			return;
		}
		/* A flush while we still think the connection alive: our
		 * QP left the ready state on its own.  We move it to error
		 * only through conn_fail(), after which nothing is looked
		 * at; a peer that leaves sends a DREQ, which arrives as
		 * DISCONNECTED first; a request of ours that fails comes
		 * with its own status first.  What remains is the device
		 * refusing a request of the peer's: a write outside its ring,
		 * a read or an atomic.  Its async event, if the device raises
		 * one and it is already there, says which (rxe raises none). */
		tp_async(c->tp, pd_find(c->tp, c->pd));
		conn_fail(c, VB_EACCES,
			  "peer touched memory outside its ring (or sent "
			  "another request the device refused): the device "
			  "closed the connection");
		return;
	}
	switch (wc->opcode) {
	case IBV_WC_RECV_RDMA_WITH_IMM:
		if (c->state != ST_OPEN) {
			conn_fail(c, VB_EPROTO, "data before the handshake");
			return;
		}
		/* The peer's bytes come from the device, which memcheck
		 * cannot see: tell it they are defined (a no-op natively). */
		VALGRIND_MAKE_MEM_DEFINED(
			c->ring_mem + (c->rx.written & (c->rx.size - 1)),
			ring_room(c, ntohl(wc->imm_data)));
		VBI_PROF(VBI_PROF_ARRIVED);
		if (vbi_ring_rx_arrived(&c->rx, ntohl(wc->imm_data))) {
			conn_fail(c, VB_EPROTO,
				  "peer wrote %u bytes it had no room for",
				  ntohl(wc->imm_data));
			return;
		}
		if (post_recv(c, wc->wr_id)) {
			conn_fail(c, VB_EIO, "cannot repost a recv");
			return;
		}
		vbi_credit_reposted(&c->cr, 1);
		break;
	case IBV_WC_RECV:
		/* Frames that arrived before this SEND are handed up first:
		 * a control message (a Ping, say) follows them, as on the
		 * wire. */
		deliver(c);
		if (c->state == ST_CLOSED)
			return;
		VALGRIND_MAKE_MEM_DEFINED(recv_buf(c, wc->wr_id),
					  wc->byte_len < VBI_CTRL_MAX ?
						  wc->byte_len :
						  VBI_CTRL_MAX);
		was_open = c->state == ST_OPEN;
		was_preauth = c->preauth;
		on_ctrl(c, recv_buf(c, wc->wr_id), wc->byte_len);
		/* A server's handshake RECV is not reposted: the Hello either
		 * got the session's full set posted, or was turned away. */
		if (c->state == ST_CLOSED || was_preauth)
			return;
		if (post_recv(c, wc->wr_id)) {
			conn_fail(c, VB_EIO, "cannot repost a recv");
			return;
		}
		/* Handshake RECVs are outside the accounting (see top). */
		if (was_open)
			vbi_credit_reposted(&c->cr, 1);
		break;
	case IBV_WC_BIND_MW:
		c->sq_used--;
		break;
	case IBV_WC_SEND:
		c->ctrl_busy &= ~(1u << (wc->wr_id & 31));
		c->sq_used--;
		if (c->refusing) {
			/* conn_fail() formats into c->why.reason: not from
			 * it. */
			char reason[sizeof(c->why.reason)];

			memcpy(reason, c->why.reason, sizeof(reason));
			conn_fail(c, c->why.err, "%s", reason);
			return;
		}
		writable(c);
		break;
	case IBV_WC_RDMA_WRITE:
		/* A signalled write completes it and the unsignalled ones
		 * before it, and the forwards they carried (see conn_flush). */
		c->sq_used -= (uint32_t)(wc->wr_id & 0xffff) > c->sq_used ?
				      c->sq_used :
				      (uint32_t)(wc->wr_id & 0xffff);
		if (wc->wr_id >> 16 > c->fwd_head) {
			fwd_complete(c, wc->wr_id >> 16);
			writable(c);
		}
		break;
	default:
		break;
	}
}

/* Drain @c's CQ, deliver what arrived, re-arm.  Returns events handled. */
static int conn_poll(struct vbi_conn *c)
{
	struct ibv_wc wc[POLL_BATCH];
	int n, i, total = 0;

	do {
		n = ibv_poll_cq(c->cq, POLL_BATCH, wc);
		if (n < 0) {
			conn_fail(c, VB_EIO, "ibv_poll_cq failed");
			return total;
		}
		for (i = 0; i < n; i++)
			on_wc(c, &wc[i]);
		total += n;
		deliver(c);
	} while (n == POLL_BATCH && c->state != ST_CLOSED);
	return total;
}

/* After callbacks ran: push staged frames, return credits if owed. */
static void conn_after(struct vbi_conn *c)
{
	if (c->state != ST_OPEN)
		return;
	/* Messages that waited while we were paused, then the control
	 * messages that came after them. */
	if (!c->paused && c->rx.head != c->rx.written)
		deliver(c);
	if (c->ndeferred)
		replay_ctrl(c);
	if (c->state != ST_OPEN)
		return;
	/* Frames first: they may carry the acks a Credit would. */
	vbi_credit_note_freed(&c->cr, c->rx.freed);
	conn_flush(c);
	if (c->state == ST_OPEN)
		credit_maybe(c);
}

/*
 * Completion channel readable: consume one event, re-arm, poll.  One read
 * only: the CQ is armed once, so one event is all there is, and should
 * another be queued the (level-triggered) epoll reports the channel again;
 * reading until EAGAIN would cost a failing read per wake-up.
 */
static int conn_event(struct vbi_conn *c)
{
	struct ibv_cq *cq;
	void *ctx;

	if (ibv_get_cq_event(c->cc, &cq, &ctx) == 0) {
		ibv_ack_cq_events(cq, 1);
		if (!c->opts.busy_poll && ibv_req_notify_cq(c->cq, 0))
			conn_fail(c, VB_EIO, "cannot re-arm the cq");
	}
	return conn_poll(c);
}

/* ---- rdma_cm events ---------------------------------------------------- */

/* The reject's reason code for an accept callback's refusal. */
static uint16_t reject_reason(int rc)
{
	switch (rc) {
	case VB_ENOSPC:
		return VBI_CM_REJ_FULL;
	case VB_EAGAIN:
		return VBI_CM_REJ_ADDR;
	case VB_ESTATE:
		return VBI_CM_REJ_SHUTDOWN;
	default:
		return VBI_CM_REJ_NONE;
	}
}

static void on_connect_request(struct vbi_listener *l, struct rdma_cm_event *ev)
{
	struct rdma_conn_param cp = { 0 };
	struct vbi_cm_hdr hdr;
	uint8_t pd[VBI_CM_HDR_LEN];
	const char *what = "connection";
	char label[96];
	struct vbi_conn *c;
	int rc;

	vbi_cm_hdr_encode(pd);
	rc = vbi_cm_hdr_decode(ev->param.conn.private_data,
			       ev->param.conn.private_data_len, &hdr);
	if (rc) {
		vbi_warn("refusing a connection: %s%s", vb_strerror(rc),
			 rc == VB_EVERSION ? " (peer speaks another version)" :
					     " (not a verbus client)");
		rdma_reject(ev->id, pd, sizeof(pd));
		rdma_destroy_id(ev->id);
		return;
	}
	c = conn_new(l->tp, &l->opts, &l->cbs, l->arg);
	if (!c) {
		vbi_warn("refusing a connection: out of memory");
		rdma_reject(ev->id, pd, sizeof(pd));
		rdma_destroy_id(ev->id);
		return;
	}
	c->server = true;
	c->id = ev->id;
	c->id->context = c;
	c->state = ST_CONNECTING;
	/* From now on it counts: whoever keeps limits hears of it first,
	 * and it has this long to say Hello and be admitted. */
	if (l->cbs.accept && (rc = l->cbs.accept(c, l->arg)) != VB_OK) {
		vbi_cm_hdr_encode_reject(pd, reject_reason(rc));
		rdma_reject(ev->id, pd, sizeof(pd));
		c->state = ST_CLOSED;
		c->closed_reported = true; /* refused: no callback */
		return;
	}
	if (l->opts.handshake_timeout_ms)
		c->hs_deadline = now_coarse_ms() + l->opts.handshake_timeout_ms;
	rc = conn_setup_verbs(c, &what);
	if (rc == VB_OK) {
		what = "rdma_accept";
		cp.private_data = pd;
		cp.private_data_len = sizeof(pd);
		cp.responder_resources = 1;
		cp.initiator_depth = 1;
		cp.rnr_retry_count = 7;
		if (rdma_accept(c->id, &cp))
			rc = errno_to_vb(errno);
	}
	if (rc) {
		/* Said plainly: which resource, for whom. */
		c->why.err = rc;
		snprintf(c->why.reason, sizeof(c->why.reason),
			 "cannot accept: %s failed (%s)", what,
			 vb_strerror(rc));
		vbi_warn("conn %s: %s", conn_label(c, label, sizeof(label)),
			 c->why.reason);
		rdma_reject(ev->id, pd, sizeof(pd));
		c->state = ST_CLOSED;
	}
}

/*
 * Close every accepted connection whose handshake has outlived its
 * deadline: a peer that connects and says nothing (or whose Hello is never
 * admitted) holds its QP and buffers for handshake_timeout_ms at most.
 * Looked at every HS_CHECK_MS on the coarse clock.
 */
static void check_handshakes(struct vbi_tp *tp)
{
	uint64_t now = now_coarse_ms();
	struct vbi_conn *c;

	if (now < tp->hs_check)
		return;
	tp->hs_check = now + HS_CHECK_MS;
	for (c = tp->conns; c; c = c->next) {
		if (!c->hs_deadline || c->state == ST_OPEN ||
		    c->state == ST_CLOSED || now < c->hs_deadline)
			continue;
		handshake_timeouts++;
		conn_fail(c, VB_ETIMEDOUT,
			  "handshake timeout: no %s within %u ms",
			  c->named ? "admission" : "hello",
			  c->opts.handshake_timeout_ms);
	}
}

/* One step of address resolution, no longer than what the deadline leaves.
 * Returns false when the deadline has passed or the call failed. */
static bool resolve_step(struct vbi_conn *c)
{
	uint64_t now = now_ms();
	uint64_t left =
		c->resolve_deadline > now ? c->resolve_deadline - now : 0;

	if (left == 0)
		return false;
	return rdma_resolve_addr(
		       c->id, c->has_src ? (struct sockaddr *)&c->src_sa : NULL,
		       (struct sockaddr *)&c->dst_sa,
		       (int)(left < RESOLVE_STEP_MS ? left :
						      RESOLVE_STEP_MS)) == 0;
}

static void client_step(struct vbi_conn *c, struct rdma_cm_event *ev)
{
	struct rdma_conn_param cp = { 0 };
	uint8_t pd[VBI_CM_HDR_LEN];
	const char *what;
	int rc;

	switch (ev->event) {
	case RDMA_CM_EVENT_ADDR_RESOLVED:
		if (rdma_resolve_route(c->id, c->opts.timeout_ms))
			conn_fail(c, errno_to_vb(errno), "resolve route");
		break;
	case RDMA_CM_EVENT_ROUTE_RESOLVED:
		rc = conn_setup_verbs(c, &what);
		if (rc) {
			conn_fail(c, rc, "cannot set up the %s", what);
			break;
		}
		vbi_cm_hdr_encode(pd);
		cp.private_data = pd;
		cp.private_data_len = sizeof(pd);
		cp.responder_resources = 1;
		cp.initiator_depth = 1;
		cp.retry_count = 7;
		cp.rnr_retry_count = 7;
		c->state = ST_CONNECTING;
		if (rdma_connect(c->id, &cp))
			conn_fail(c, errno_to_vb(errno), "rdma_connect");
		break;
	default:
		break;
	}
}

static void on_established(struct vbi_conn *c)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__Hello h = VERBUS__HELLO__INIT;
	Verbus__RingInfo r = VERBUS__RING_INFO__INIT;
	int rc;

	c->state = ST_HANDSHAKE;
	if (c->server)
		return; /* the client speaks first */
	ring_info(c, &r);
	h.version = VBI_PROTO_VERSION;
	h.name = c->name;
	h.credentials.data = c->cred;
	h.credentials.len = c->cred_len;
	h.ring = &r;
	h.max_msg_size = c->opts.max_msg;
	h.credits = c->opts.recv_depth;
	m.body_case = VERBUS__CONTROL__BODY_HELLO;
	m.hello = &h;
	rc = send_ctrl(c, &m, false, false);
	if (rc)
		conn_fail(c, rc, "cannot send hello");
}

static bool is_listener(const struct vbi_tp *tp, const struct rdma_cm_id *id)
{
	const struct vbi_listener *l;

	for (l = tp->listeners; l; l = l->next)
		if (l->id == id)
			return true;
	return false;
}

static int cm_event(struct vbi_tp *tp)
{
	struct rdma_cm_event *ev;
	struct vbi_conn *c;
	struct vbi_cm_hdr hdr;
	int n = 0, rc;

	while (rdma_get_cm_event(tp->ec, &ev) == 0) {
		n++;
		if (ev->event == RDMA_CM_EVENT_CONNECT_REQUEST) {
			on_connect_request(ev->listen_id->context, ev);
			rdma_ack_cm_event(ev);
			continue;
		}
		if (is_listener(tp, ev->id)) { /* e.g. device removal */
			rdma_ack_cm_event(ev);
			continue;
		}
		c = ev->id->context;
		vbi_debug("conn %s: %s (status %d) in state %d", c->name,
			  rdma_event_str(ev->event), ev->status, c->state);
		switch (ev->event) {
		case RDMA_CM_EVENT_ADDR_RESOLVED:
		case RDMA_CM_EVENT_ROUTE_RESOLVED:
			if (c->state == ST_RESOLVING)
				client_step(c, ev);
			break;
		case RDMA_CM_EVENT_ESTABLISHED:
			/* A server may see the client's Hello complete before
			 * this event: it is then already past CONNECTING. */
			if (c->server && c->state != ST_CONNECTING)
				break;
			if (c->state == ST_CONNECTING &&
			    (c->server ||
			     vbi_cm_hdr_decode(ev->param.conn.private_data,
					       ev->param.conn.private_data_len,
					       &hdr) == VB_OK))
				on_established(c);
			else
				conn_fail(c, VB_EPROTO,
					  "peer is not a verbus v%u server",
					  VBI_PROTO_VERSION);
			break;
		case RDMA_CM_EVENT_REJECTED:
			rc = vbi_cm_hdr_decode(ev->param.conn.private_data,
					       ev->param.conn.private_data_len,
					       &hdr);
			if (rc == VB_EVERSION)
				conn_fail(c, VB_EVERSION,
					  "refused: the server speaks version "
					  "%u",
					  hdr.version);
			else if (rc == VB_OK && hdr.reason != VBI_CM_REJ_NONE)
				conn_fail(c, VB_ECONNREFUSED, "refused: %s",
					  vbi_cm_reject_reason(hdr.reason));
			else
				conn_fail(c, VB_ECONNREFUSED,
					  "connection refused (status %d)",
					  ev->status);
			break;
		case RDMA_CM_EVENT_ADDR_ERROR:
			/* Cold neighbour cache: try again until the deadline
			 * (see RESOLVE_STEP_MS). */
			if (c->state == ST_RESOLVING && resolve_step(c))
				break;
			conn_fail(c, VB_EUNREACH, "%s (status %d)",
				  rdma_event_str(ev->event), ev->status);
			break;
		case RDMA_CM_EVENT_ROUTE_ERROR:
		case RDMA_CM_EVENT_UNREACHABLE:
			conn_fail(c, VB_EUNREACH, "%s (status %d)",
				  rdma_event_str(ev->event), ev->status);
			break;
		case RDMA_CM_EVENT_CONNECT_ERROR:
			conn_fail(c, VB_EIO, "connect error (status %d)",
				  ev->status);
			break;
		case RDMA_CM_EVENT_DISCONNECTED:
		case RDMA_CM_EVENT_TIMEWAIT_EXIT:
			conn_fail(c, VB_ECLOSED, "peer disconnected");
			break;
		case RDMA_CM_EVENT_DEVICE_REMOVAL:
			conn_fail(c, VB_ENODEV, "rdma device removed");
			break;
		default:
			break;
		}
		rdma_ack_cm_event(ev);
	}
	return n;
}

/*
 * Report and free closed connections: the only place they are freed.  One
 * whose frames are still referenced (held, or being forwarded by another
 * connection) is quiesced and kept until the last reference goes, unless
 * @force (the transport is going away).
 */
static void reap(struct vbi_tp *tp, bool force)
{
	struct vbi_conn *c = tp->conns, *next;

	for (; c; c = next) {
		next = c->next;
		if (c->state != ST_CLOSED)
			continue;
		/* Drain what the QP flushed so nothing references it. */
		if (c->cq) {
			struct ibv_wc wc[POLL_BATCH];

			while (ibv_poll_cq(c->cq, POLL_BATCH, wc) > 0)
				;
		}
		if (!c->closed_reported) {
			c->closed_reported = true;
			if (c->cbs.closed)
				c->cbs.closed(c, &c->why, c->arg);
		}
		conn_quiesce(c);
		next = c->next; /* the callback may have closed others */
		if (c->refs_out == 0 || force)
			conn_free(c);
	}
}

/*
 * Does @c need the unsignalled forwards of its frames completed?  Yes when
 * more than a quarter of its ring is landed and not yet released: its
 * sender may then be blocked.  (It blocks only with more than
 * ring - max frame >= ring / 2 outstanding, of which less than a quarter
 * can be freed and unreturned, see vbi_credit_should_return.)  And yes
 * when it is closed with references out: it is freed only once they are
 * back.
 */
static bool conn_pins(const struct vbi_conn *c)
{
	if (c->state == ST_CLOSED)
		return c->refs_out != 0;
	return c->state == ST_OPEN &&
	       c->rx.written - c->rx.freed > c->opts.ring_size / 4;
}

/* The end of a turn: push what callbacks queued, return credits, and kick
 * the forwards of a connection that needs its frames back. */
static void tp_after(struct vbi_tp *tp)
{
	struct vbi_conn *c;
	bool kick = false;

	for (c = tp->conns; c; c = c->next) {
		conn_after(c);
		kick = kick || conn_pins(c);
	}
	if (kick)
		for (c = tp->conns; c; c = c->next)
			conn_kick(c);
}

/* The device whose async events @ptr (from the epoll set) stands for. */
static struct tp_pd *pd_of(struct vbi_tp *tp, const void *ptr)
{
	struct tp_pd *p;

	for (p = tp->pds; p; p = p->next)
		if (p == ptr)
			return p;
	return NULL;
}

static int tp_progress(struct vbi_tp *tp, int timeout_ms)
{
	struct epoll_event evs[64];
	struct vbi_conn *c;
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
		struct tp_pd *p;

		if (ptr == NULL)
			total += cm_event(tp);
		else if (tp->nasync && (p = pd_of(tp, ptr)))
			tp_async(tp, p);
		else
			total += conn_event(ptr);
	}
	if (tp->busy_poll)
		for (c = tp->conns; c; c = c->next)
			if (c->cq && c->state != ST_CLOSED)
				total += conn_poll(c);
	check_handshakes(tp);
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
static int tp_spin(struct vbi_tp *tp, uint64_t budget_ns)
{
	uint64_t end = 0, now;
	struct vbi_conn *c;
	unsigned pass = 0;
	int total = 0;

	for (;;) {
		for (c = tp->conns; c; c = c->next)
			if (c->cq && c->state != ST_CLOSED)
				total += conn_poll(c);
		if (total || budget_ns == 0)
			break;
		if ((pass++ & 15) == 0) {
			now = now_ns();
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

/* ---- the ops ------------------------------------------------------------ */

static int tp_create(struct vbi_tp **out)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	struct vbi_tp *tp = calloc(1, sizeof(*tp));
	int rc = VB_ESYS;

	if (!tp)
		return VB_ENOMEM;
	tp->ops = &vbi_rdma_ops;
	tp->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (tp->epfd < 0)
		goto out_free;
	tp->ec = rdma_create_event_channel();
	if (!tp->ec) {
		rc = errno == ENODEV ? VB_ENODEV : errno_to_vb(errno);
		goto out_close_ep;
	}
	if (fcntl(tp->ec->fd, F_SETFL,
		  fcntl(tp->ec->fd, F_GETFL) | O_NONBLOCK) ||
	    epoll_ctl(tp->epfd, EPOLL_CTL_ADD, tp->ec->fd, &ev))
		goto out_destroy_ec;
	*out = tp;
	return VB_OK;
out_destroy_ec:
	rdma_destroy_event_channel(tp->ec);
out_close_ep:
	close(tp->epfd);
out_free:
	free(tp);
	return rc;
}

static void listener_close(struct vbi_listener *l)
{
	struct vbi_listener **p;

	if (!l)
		return;
	for (p = &l->tp->listeners; *p; p = &(*p)->next) {
		if (*p == l) {
			*p = l->next;
			break;
		}
	}
	if (l->id)
		rdma_destroy_id(l->id);
	free(l);
}

static void tp_destroy(struct vbi_tp *tp)
{
	struct vbi_conn *c;

	if (!tp)
		return;
	while (tp->listeners)
		listener_close(tp->listeners);
	for (c = tp->conns; c; c = c->next)
		conn_fail(c, VB_ECLOSED, "transport destroyed");
	/* Quiesce every connection before freeing any: a forward may read
	 * from a ring until its own QP is gone. */
	reap(tp, false);
	reap(tp, true);
	mem_drop_kept(tp);
	if (tp->ec)
		rdma_destroy_event_channel(tp->ec);
	if (tp->epfd >= 0)
		close(tp->epfd);
	free(tp);
}

static int tp_fd(struct vbi_tp *tp)
{
	return tp->epfd;
}

static int resolve(const char *addr, const char *port, bool passive,
		   struct rdma_addrinfo **ai)
{
	struct rdma_addrinfo hints = { .ai_port_space = RDMA_PS_TCP };

	hints.ai_flags = passive ? RAI_PASSIVE : 0;
	if (rdma_getaddrinfo(addr, port, &hints, ai))
		return VB_EUNREACH;
	return VB_OK;
}

static int tp_listen(struct vbi_tp *tp, const char *addr, const char *port,
		     const struct vbi_conn_opts *o,
		     const struct vbi_conn_cbs *cbs, void *arg,
		     struct vbi_listener **out)
{
	struct vbi_listener *l;
	struct rdma_addrinfo *ai = NULL;
	int rc;

	l = calloc(1, sizeof(*l));
	if (!l)
		return VB_ENOMEM;
	l->ops = tp->ops;
	l->tp = tp;
	l->opts = *o;
	opts_defaults(&l->opts);
	l->opts.source = NULL;
	l->cbs = *cbs;
	l->arg = arg;
	rc = opts_check(&l->opts);
	if (rc)
		goto out_free;
	rc = resolve(addr, port, true, &ai);
	if (rc)
		goto out_free;
	if (rdma_create_id(tp->ec, &l->id, l, RDMA_PS_TCP) ||
	    rdma_bind_addr(l->id, ai->ai_src_addr) || rdma_listen(l->id, 64)) {
		rc = errno_to_vb(errno);
		goto out_free_ai;
	}
	rdma_freeaddrinfo(ai);
	l->next = tp->listeners;
	tp->listeners = l;
	*out = l;
	return VB_OK;
out_free_ai:
	rdma_freeaddrinfo(ai);
out_free:
	if (l->id)
		rdma_destroy_id(l->id);
	free(l);
	return rc;
}

static int tp_connect(struct vbi_tp *tp, const char *addr, const char *port,
		      const struct vbi_conn_opts *o,
		      const struct vbi_conn_cbs *cbs, void *arg,
		      struct vbi_conn **out)
{
	struct vbi_conn_opts opts = *o;
	struct rdma_addrinfo *src = NULL, *dst = NULL;
	struct vbi_conn *c;
	int rc;

	opts_defaults(&opts);
	rc = opts_check(&opts);
	if (rc)
		return rc;
	rc = resolve(addr, port, false, &dst);
	if (rc)
		return rc;
	if (opts.source) {
		rc = resolve(opts.source, NULL, true, &src);
		if (rc)
			goto out_free_dst;
	}
	c = conn_new(tp, &opts, cbs, arg);
	if (!c) {
		rc = VB_ENOMEM;
		goto out_free_src;
	}
	c->state = ST_RESOLVING;
	if (src && src->ai_src_len <= sizeof(c->src_sa)) {
		memcpy(&c->src_sa, src->ai_src_addr, src->ai_src_len);
		c->has_src = true;
	}
	if (dst->ai_dst_len > sizeof(c->dst_sa)) {
		rc = VB_EINVAL;
		conn_free(c);
		goto out_free_src;
	}
	memcpy(&c->dst_sa, dst->ai_dst_addr, dst->ai_dst_len);
	c->resolve_deadline = now_ms() + (uint64_t)opts.timeout_ms;
	if (rdma_create_id(tp->ec, &c->id, c, RDMA_PS_TCP) ||
	    !resolve_step(c)) {
		rc = errno_to_vb(errno);
		conn_free(c);
		goto out_free_src;
	}
	*out = c;
out_free_src:
	if (src)
		rdma_freeaddrinfo(src);
out_free_dst:
	rdma_freeaddrinfo(dst);
	return rc;
}

static int conn_release(struct vbi_conn *c, const struct vbi_frame_view *v)
{
	return frame_unref(c, v);
}

static int conn_hold(struct vbi_conn *c, const struct vbi_frame_view *v)
{
	uint8_t *f = view_frame(c, v);

	if (!f || frame_refs(f) == 0)
		return VB_EINVAL;
	frame_set_refs(f, frame_refs(f) + 1);
	c->refs_out++;
	return VB_OK;
}

static int conn_send_ctrl(struct vbi_conn *c, const Verbus__Control *m)
{
	int rc;

	if (c->state != ST_OPEN)
		return c->state == ST_CLOSED ? VB_ECLOSED : VB_ESTATE;
	/* A control message must not overtake frames queued before it (a
	 * Ping is a barrier): they go first, or it waits for room. */
	conn_flush(c);
	if (c->tx.flushed != c->tx.tail)
		rc = VB_EAGAIN;
	else
		rc = send_ctrl(c, m, true, false);
	if (rc == VB_EAGAIN) {
		c->want_writable = true;
		c->st.credit_waits++;
	}
	return rc;
}

static int conn_peer_name(const struct vbi_conn *c, char *buf, size_t len)
{
	struct sockaddr *sa = c->id ? rdma_get_peer_addr(c->id) : NULL;
	char host[NI_MAXHOST] = "?";

	if (len == 0)
		return VB_EINVAL;
	/* Numeric only: never a name lookup. */
	if (sa && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) &&
	    getnameinfo(sa,
			sa->sa_family == AF_INET ? sizeof(struct sockaddr_in) :
						   sizeof(struct sockaddr_in6),
			host, sizeof(host), NULL, 0, NI_NUMERICHOST) != 0)
		snprintf(host, sizeof(host), "?");
	snprintf(buf, len,
		 sa && sa->sa_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host,
		 c->id ? ntohs(rdma_get_dst_port(c->id)) : 0);
	return VB_OK;
}

static void conn_close(struct vbi_conn *c)
{
	if (c)
		conn_fail(c, VB_ECLOSED, "closed locally");
}

static void conn_pause(struct vbi_conn *c, int paused)
{
	c->paused = paused != 0;
}

static const void *conn_credentials(const struct vbi_conn *c, size_t *len)
{
	*len = c->cred_len;
	return c->cred;
}

static const char *conn_name(const struct vbi_conn *c)
{
	return c->name;
}

static void conn_stats(const struct vbi_conn *c, struct vbi_conn_stats *s)
{
	*s = c->st;
	s->fwd_pending = c->fwd_tail - c->fwd_head;
	s->tx_waiting = c->tx.tail - c->tx.flushed;
	s->recv_credits = c->cr.recv_credits;
	s->refs_out = c->refs_out;
	s->ring_size = c->opts.ring_size;
	s->peer_ring = c->peer_ring;
	s->peer_max_msg = c->peer_max_msg;
}

static void conn_set_arg(struct vbi_conn *c, void *arg)
{
	c->arg = arg;
}

static void tp_stats(struct vbi_tp_stats *s)
{
	s->mr_registered = mr_registered;
	s->mr_deregistered = mr_deregistered;
	s->conns_open = conns_alive;
	s->handshake_timeouts = handshake_timeouts;
	s->mr_bytes = mr_bytes;
}

const struct vbi_transport_ops vbi_rdma_ops = {
	.scheme = "rdma",
	.tp_create = tp_create,
	.tp_destroy = tp_destroy,
	.tp_fd = tp_fd,
	.tp_progress = tp_progress,
	.tp_spin = tp_spin,
	.listen = tp_listen,
	.listener_close = listener_close,
	.connect = tp_connect,
	.send = conn_send,
	.reserve = conn_reserve,
	.commit = conn_commit,
	.flush = conn_flush,
	.release = conn_release,
	.hold = conn_hold,
	.forward = conn_forward,
	.unpin = conn_unpin,
	.send_ctrl = conn_send_ctrl,
	.peer_name = conn_peer_name,
	.name = conn_name,
	.credentials = conn_credentials,
	.pause = conn_pause,
	.close = conn_close,
	.stats = conn_stats,
	.set_arg = conn_set_arg,
	.tp_stats = tp_stats,
};
