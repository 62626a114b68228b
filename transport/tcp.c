/*
 * tcp.c - the TCP transport: the session protocol (session.h) over one
 * non-blocking stream socket per connection, for hosts without an RNIC.
 *
 * The wire (docs/PROTOCOL.md, "Over TCP"):
 *  - The client sends the 8-byte version record of an rdma_cm connection
 *    request (proto/codec.h); the server answers with its own record, or a
 *    reject record with its reason, and closes.  Then both sides speak the
 *    session protocol in records.
 *  - A record is a 12-byte header (network order: kind, len, bytes) and
 *    `bytes` bytes.  DATA is what a WRITE_WITH_IMM is over RDMA: `bytes`
 *    of frames that land at the receiver's ring write position, `len` the
 *    immediate (bytes >= len would be a lie; len - bytes is a PAD's unread
 *    tail).  CTRL carries one protobuf-c control message (len 0).  Each
 *    record consumes one RECV credit, as each WRITE or SEND does over RDMA,
 *    so the session's flow control is the same: a sender never has more
 *    records in flight than the receiver grants, nor more frame bytes than
 *    its ring has free.
 *
 * Done as fast TCP servers do it: every socket non-blocking in the tp's
 * epoll set (no thread per connection), TCP_NODELAY, frames built in
 * staging exactly as for RDMA, many records per writev(), forwarded frames
 * gathered by writev() straight from the publisher's ring (zero copy, the
 * same reference counting as an RDMA forward: done once the kernel has
 * them), and records read straight into the receive ring, where frames are
 * parsed in place and delivered as views.  Records queued for a socket that
 * takes nothing are bounded (OUT_MAX) and so are their forwards (the
 * subscriber's credits and ring); a consumer that takes nothing is the
 * broker's slow-consumer policy's, whose unpin has them copied into
 * staging (kick) so that it pins no publisher.
 *
 * Completions (a record fully written) are handled at the end of a turn,
 * never inside the call that posted: as with RDMA, no callback runs under a
 * send.
 */
#include "session.h"
#include "tls.h"

#include "core/clock.h"
#include "core/frame.h"
#include "core/log.h"

#include <verbus/verbus.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define REC_HDR 12u /* kind, len, bytes: 3 x u32, network order */
#define REC_DATA 1u
#define REC_CTRL 2u
#define CTRL_SLOTS 8u /* control messages queued at most */
#define OUT_MAX 64u /* records queued for the socket at most */
#define WRITEV_MAX 1024 /* iovecs per sendmsg() (IOV_MAX) */
#define READ_RECORDS 64 /* records read per wake-up, then the others' turn */
#define HS_CHECK_MS 50
#define LISTEN_BACKLOG 128

enum ep_kind { EP_LISTENER = 1, EP_CONN };

#define CONTAINER(p, type, member) \
	((type *)(void *)((uint8_t *)(p)-offsetof(type, member)))

/* What an epoll event points at: the first byte of a listener or conn. */
struct tcp_ep {
	enum ep_kind kind;
};

struct tcp_tp {
	const struct vbi_transport_ops *ops; /* first: transport.c dispatch */
	bool tls; /* the "tls" scheme: every connection is TLS */
	int epfd;
	struct tcp_conn *conns;
	struct tcp_listener *listeners;
	bool busy_poll;
	uint64_t hs_check;
	struct iovec iov[WRITEV_MAX]; /* out_write()'s, one thread per tp */
	uint8_t *tls_buf; /* VBI_TLS_CHUNK: io_writev()'s plaintext */
};

struct tcp_listener {
	const struct vbi_transport_ops *ops; /* first: transport.c dispatch */
	struct tcp_ep ep;
	struct tcp_tp *tp;
	int fd;
	struct vbi_conn_opts opts;
	struct vbi_conn_cbs cbs;
	void *arg;
	struct vbi_tls_ctx *tls_ctx; /* tls: what the sessions start from */
	struct tcp_listener *next;
};

/*
 * One record queued for the socket.  A DATA record is described, not
 * spelled out: its staging range and the forwards in it, whose topics and
 * payloads out_write() gathers from their sources' rings (the forward
 * entries stay put until the record is written or kicked).
 */
struct out_rec {
	uint8_t hdr[REC_HDR];
	int slot; /* CTRL: its buffer; DATA: -1 */
	uint32_t ctrl_len; /* CTRL: the message's bytes */
	size_t off, xfer; /* DATA: staging offset and bytes of the batch */
	uint64_t start; /* DATA: the tx stream position of @off */
	uint64_t fwd_from, fwd_to; /* DATA: the forwards in it */
	bool copied; /* DATA: kick() copied them into staging */
	size_t len; /* bytes on the wire, the header included */
};

struct tcp_conn {
	struct vbi_conn c; /* first: the session (and the ops pointer) */
	struct tcp_ep ep;
	struct tcp_tp *tp;
	struct tcp_conn *next, *prev;
	int fd;
	bool want_out; /* EPOLLOUT is in the epoll set */
	bool greeted; /* the version records have been exchanged */
	/* TLS (NULL: plain TCP).  The handshake comes first, then the
	 * version records and the session, all inside it. */
	struct vbi_tls *tls;
	bool tls_done; /* handshake finished */
	bool tls_plain; /* client: the server answered in plain TCP */
	bool tls_err; /* the last io_*() failure was TLS's (tls_why) */
	bool rd_wants_out; /* TLS read needs the socket writable */
	bool wr_wants_in; /* TLS write needs the socket readable */
	uint64_t connect_deadline; /* client: coarse ms; 0 once greeted */
	/* Reading: a record's header, then its body into the ring (DATA) or
	 * ctrl_in (CTRL). */
	uint8_t in_hdr[REC_HDR];
	size_t in_have; /* bytes of the header, then of the body, read */
	bool in_body;
	uint32_t in_kind, in_len, in_bytes;
	uint8_t *in_to; /* where the body goes */
	uint8_t ctrl_in[VBI_CTRL_MAX];
	/* Writing. */
	struct out_rec *out; /* OUT_MAX records, a ring */
	uint64_t out_head; /* completions handled up to here */
	uint64_t out_done; /* fully written up to here */
	uint64_t out_tail; /* queued up to here */
	size_t out_off; /* bytes of record out_done already written */
	uint8_t *ctrl_out[CTRL_SLOTS]; /* VBI_CTRL_MAX each, allocated on use */
	uint32_t ctrl_busy; /* bitmap of ctrl_out slots queued */
	size_t ring_len, stage_len; /* the mappings' lengths */
	struct sockaddr_storage peer;
	socklen_t peer_len;
};

static const struct vbi_sess_ops tcp_sess_ops;
const struct vbi_transport_ops vbi_tcp_ops;
const struct vbi_transport_ops vbi_tls_ops;
/* Per scheme: [0] tcp, [1] tls. */
static uint64_t conns_alive[2], handshake_timeouts[2];

static struct tcp_conn *tconn(struct vbi_conn *c)
{
	return (struct tcp_conn *)(void *)c;
}

static const struct tcp_conn *tconn_const(const struct vbi_conn *c)
{
	return (const struct tcp_conn *)(const void *)c;
}

static struct tcp_tp *ttp(struct vbi_tp *tp)
{
	return (struct tcp_tp *)(void *)tp;
}

static void put32(uint8_t *p, uint32_t v)
{
	v = htonl(v);
	memcpy(p, &v, 4);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return ntohl(v);
}

/* ---- memory ------------------------------------------------------------- */

static void *map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void unmap(uint8_t **p, size_t *len)
{
	if (*p && *len)
		munmap(*p, *len);
	*p = NULL;
	*len = 0;
}

static int setup_session(struct vbi_conn *c, const char **what)
{
	struct tcp_conn *t = tconn(c);

	*what = "receive ring";
	c->ring_mem = map(c->opts.ring_size);
	if (!c->ring_mem)
		return VB_ENOMEM;
	t->ring_len = c->opts.ring_size;
	return VB_OK;
}

static int setup_stage(struct vbi_conn *c, const Verbus__RingInfo *r,
		       const char **what)
{
	struct tcp_conn *t = tconn(c);

	*what = "staging buffer";
	c->stage_mem = map(r->size);
	if (!c->stage_mem)
		return VB_ENOMEM;
	t->stage_len = r->size;
	return VB_OK;
}

static void ring_info(struct vbi_conn *c, Verbus__RingInfo *r)
{
	/* No remote access over TCP: the address is a placeholder (the
	 * codec wants one), the key none. */
	r->addr = 1;
	r->rkey = 0;
	r->size = c->opts.ring_size;
}

/* ---- writing ------------------------------------------------------------ */

static void want_out(struct tcp_conn *t, bool on)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &t->ep };

	on = on || t->rd_wants_out;
	if (t->want_out == on || t->fd < 0)
		return;
	if (on)
		ev.events |= EPOLLOUT;
	if (epoll_ctl(t->tp->epfd, EPOLL_CTL_MOD, t->fd, &ev) == 0)
		t->want_out = on;
}

/*
 * The socket's bytes, plain or through TLS.  Both return what read() and
 * sendmsg() do: bytes, 0 at the end of the stream (read), or -1 with
 * errno (EAGAIN: not now; after a TLS failure EPROTO or EACCES, with
 * t->tls_err set and the words in vbi_tls_why()).
 */
static ssize_t tls_errno(struct tcp_conn *t, enum vbi_tls_rc rc)
{
	switch (rc) {
	case VBI_TLS_WANT_OUT:
	case VBI_TLS_WANT_IN:
		errno = EAGAIN;
		return -1;
	case VBI_TLS_EOF:
		return 0;
	case VBI_TLS_ERRNO:
		return -1;
	case VBI_TLS_DENIED:
		t->tls_err = true;
		errno = EACCES;
		return -1;
	default:
		t->tls_err = true;
		errno = EPROTO;
		return -1;
	}
}

static ssize_t io_read(struct tcp_conn *t, void *buf, size_t len)
{
	enum vbi_tls_rc rc;
	size_t got;

	if (!t->tls || !t->tls_done)
		return read(t->fd, buf, len);
	rc = vbi_tls_read(t->tls, buf, len, &got);
	if (rc == VBI_TLS_OK)
		return (ssize_t)got;
	if (rc == VBI_TLS_WANT_OUT) {
		t->rd_wants_out = true;
		want_out(t, true);
	}
	return tls_errno(t, rc);
}

static ssize_t io_writev(struct tcp_conn *t, struct iovec *iov, int n)
{
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)n };
	enum vbi_tls_rc rc;
	size_t put;

	/* sendmsg() for MSG_NOSIGNAL: a peer gone must not raise SIGPIPE in
	 * the host process (tls.c's socket BIO does the same). */
	if (!t->tls)
		return sendmsg(t->fd, &msg, MSG_NOSIGNAL);
	rc = vbi_tls_write(t->tls, iov, n, t->tp->tls_buf, &put);
	if (rc == VBI_TLS_OK)
		return (ssize_t)put;
	if (rc == VBI_TLS_WANT_IN)
		t->wr_wants_in = true;
	if (rc == VBI_TLS_EOF) {
		errno = EPIPE;
		return -1;
	}
	return tls_errno(t, rc);
}

/* Fail @t after an io_*() call failed with @err, saying @what failed. */
static void io_fail(struct tcp_conn *t, int err, const char *what)
{
	if (t->tls_err)
		vbi_sess_fail(&t->c, err == EACCES ? VB_EACCES : VB_EPROTO,
			      "tls %s: %s", what, vbi_tls_why(t->tls));
	else
		vbi_sess_fail(&t->c, vbi_sess_errno(err), "%s: %s", what,
			      strerror(err));
}

/*
 * A write failed with @err.  A TLS peer that refused us (TLS 1.3: a
 * client's certificate is judged after the client's handshake is over)
 * said why in an alert before it closed, which the write cannot see: a
 * read finds it, and that is the reason given.
 */
static void io_write_fail(struct tcp_conn *t, int err, const char *what)
{
	uint8_t b;

	if (t->tls_done && !t->tls_err && io_read(t, &b, 1) < 0 && t->tls_err) {
		io_fail(t, errno, "read");
		return;
	}
	io_fail(t, err, what);
}

/*
 * Append the gather entries of record @r to @iov (room for @cap), skipping
 * its first *@skip bytes (which are consumed).  Returns the entries
 * added; fewer than the record needs only when @cap runs out.
 */
static int rec_iov(const struct tcp_conn *t, const struct out_rec *r,
		   struct iovec *iov, int cap, size_t *skip)
{
	const struct vbi_conn *c = &t->c;
	int k = 0;

/* One segment of @len bytes at @p, after what *skip still swallows. */
#define SEG(p, n)                                                 \
	do {                                                      \
		size_t n_ = (n);                                  \
		if (*skip >= n_) {                                \
			*skip -= n_;                              \
		} else if (k < cap) {                             \
			iov[k].iov_base = (uint8_t *)(p) + *skip; \
			iov[k++].iov_len = n_ - *skip;            \
			*skip = 0;                                \
		} else {                                          \
			return k;                                 \
		}                                                 \
	} while (0)

	SEG(r->hdr, REC_HDR);
	if (r->slot >= 0) {
		SEG(t->ctrl_out[r->slot], r->ctrl_len);
		return k;
	}
	if (!r->copied) {
		size_t cur = r->off;

		for (uint64_t i = r->fwd_from; i < r->fwd_to; i++) {
			const struct vbi_fwd *f = &c->fwd[i % VBI_SESS_FWD_MAX];
			size_t hoff = r->off + (size_t)(f->start - r->start);

			SEG(c->stage_mem + cur, hoff + VBI_FRAME_HDR_LEN - cur);
			if (f->span > VBI_FRAME_HDR_LEN)
				SEG(VBI_FWD_BODY(f),
				    f->span - VBI_FRAME_HDR_LEN);
			cur = hoff + f->span;
		}
		if (cur < r->off + r->xfer)
			SEG(c->stage_mem + cur, r->off + r->xfer - cur);
		return k;
	}
	SEG(c->stage_mem + r->off, r->xfer);
	return k;
#undef SEG
}

/* Write what is queued, as much as the socket takes, up to WRITEV_MAX
 * entries per sendmsg().  Completions are handled later (out_complete). */
static void out_write(struct tcp_conn *t)
{
	struct iovec *iov = t->tp->iov;
	/* TLS takes one record's plaintext per call: gather no more. */
	size_t cap = t->tls ? VBI_TLS_CHUNK : SIZE_MAX;
	ssize_t n;

	while (t->out_done < t->out_tail && t->c.state != VBI_SS_CLOSED) {
		size_t skip = t->out_off, bytes = 0;
		int k = 0, k0;

		for (uint64_t i = t->out_done;
		     i < t->out_tail && k < WRITEV_MAX && bytes < cap; i++) {
			k0 = k;
			k += rec_iov(t, &t->out[i % OUT_MAX], iov + k,
				     WRITEV_MAX - k, &skip);
			while (k0 < k)
				bytes += iov[k0++].iov_len;
		}
		n = io_writev(t, iov, k);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				/* A TLS write that must read first waits for
				 * EPOLLIN (conn_event), not for EPOLLOUT. */
				want_out(t, !t->wr_wants_in);
				return;
			}
			if (errno == EINTR)
				continue;
			io_write_fail(t, errno, "write");
			return;
		}
		/* Advance over the records now written whole. */
		t->out_off += (size_t)n;
		while (t->out_done < t->out_tail) {
			size_t len = t->out[t->out_done % OUT_MAX].len;

			if (t->out_off < len)
				break;
			t->out_off -= len;
			t->out_done++;
		}
	}
	want_out(t, false);
}

/* Records written whole: their control buffers are free, their forwards
 * done; a sender that waited hears. */
static void out_complete(struct tcp_conn *t)
{
	struct vbi_conn *c = &t->c;

	while (t->out_head < t->out_done) {
		struct out_rec *r = &t->out[t->out_head++ % OUT_MAX];

		if (r->slot >= 0) {
			t->ctrl_busy &= ~(1u << r->slot);
			vbi_sess_ctrl_sent(c);
		} else if (r->fwd_to > c->fwd_head) {
			vbi_sess_fwd_complete(c, r->fwd_to);
			vbi_sess_writable(c);
		} else {
			vbi_sess_writable(c);
		}
		if (c->state == VBI_SS_CLOSED)
			return;
	}
}

static struct out_rec *out_next(struct tcp_conn *t)
{
	if (!t->out) {
		t->out = calloc(OUT_MAX, sizeof(*t->out));
		if (!t->out)
			return NULL;
	}
	if (t->out_tail - t->out_head >= OUT_MAX)
		return NULL;
	return &t->out[t->out_tail % OUT_MAX];
}

static unsigned ctrl_slot(const struct tcp_conn *t)
{
	unsigned s;

	for (s = 0; s < CTRL_SLOTS; s++)
		if (!(t->ctrl_busy & (1u << s)))
			break;
	return s;
}

static bool ctrl_room(struct vbi_conn *c)
{
	struct tcp_conn *t = tconn(c);

	return ctrl_slot(t) < CTRL_SLOTS && t->out_tail - t->out_head < OUT_MAX;
}

static int ctrl_post(struct vbi_conn *c, const Verbus__Control *m)
{
	struct tcp_conn *t = tconn(c);
	unsigned s = ctrl_slot(t);
	struct out_rec *r;
	size_t len;
	int rc;

	r = s < CTRL_SLOTS ? out_next(t) : NULL;
	if (!r)
		return VB_EAGAIN;
	if (!t->ctrl_out[s] && !(t->ctrl_out[s] = malloc(VBI_CTRL_MAX)))
		return VB_ENOMEM;
	rc = vbi_codec_encode(m, t->ctrl_out[s], VBI_CTRL_MAX, &len);
	if (rc)
		return rc;
	put32(r->hdr, REC_CTRL);
	put32(r->hdr + 4, 0);
	put32(r->hdr + 8, (uint32_t)len);
	r->slot = (int)s;
	r->ctrl_len = (uint32_t)len;
	r->len = REC_HDR + len;
	t->ctrl_busy |= 1u << s;
	t->out_tail++;
	out_write(t);
	return VB_OK;
}

static bool batch_room(struct vbi_conn *c)
{
	struct tcp_conn *t = tconn(c);

	return t->out_tail - t->out_head < OUT_MAX;
}

static bool can_gather(const struct vbi_conn *dst, const struct vbi_conn *src)
{
	(void)dst;
	(void)src;
	return true; /* writev() reads any memory of ours */
}

/*
 * Queue batch @b as one DATA record: staging, except that each forwarded
 * frame's topic and payload will be gathered from its source's ring when
 * the record is written (rec_iov).
 */
static int batch_post(struct vbi_conn *c, struct vbi_ring_batch *b,
		      struct vbi_credit_ack *ack)
{
	struct tcp_conn *t = tconn(c);
	struct out_rec *r = out_next(t);
	uint64_t end = c->tx.flushed + b->len, i = c->fwd_post;

	if (!r)
		return VB_EAGAIN;
	while (i < c->fwd_tail && c->fwd[i % VBI_SESS_FWD_MAX].start < end)
		i++;
	vbi_sess_stamp_acks(c, b, ack);
	put32(r->hdr, REC_DATA);
	put32(r->hdr + 4, (uint32_t)b->len);
	put32(r->hdr + 8, (uint32_t)b->xfer);
	r->slot = -1;
	r->off = b->off;
	r->xfer = b->xfer;
	r->start = c->tx.flushed;
	r->fwd_from = c->fwd_post;
	r->fwd_to = i;
	r->copied = false;
	r->len = REC_HDR + b->xfer;
	c->fwd_post = i;
	t->out_tail++;
	c->st.writes++;
	out_write(t);
	return VB_OK;
}

/*
 * Copy the forwarded bytes of every record not yet written whole into
 * staging (where their frames' space is reserved anyway), so that their
 * sources get their frames back now.  Only through vbi_conn_unpin(), the
 * broker's answer to a slow consumer: a socket that drains slowly holds
 * its publishers' frames, which is backpressure, as a full ring is.
 */
static void kick(struct vbi_conn *c)
{
	struct tcp_conn *t = tconn(c);
	uint64_t upto = 0;

	for (uint64_t i = t->out_done; i < t->out_tail; i++) {
		struct out_rec *r = &t->out[i % OUT_MAX];

		if (r->slot >= 0 || r->copied)
			continue;
		for (uint64_t j = r->fwd_from; j < r->fwd_to; j++) {
			const struct vbi_fwd *f = &c->fwd[j % VBI_SESS_FWD_MAX];
			size_t hoff = r->off + (size_t)(f->start - r->start);
			/* Our own header says how much: not the source's. */
			size_t len = vbi_frame_get_len(c->stage_mem + hoff) -
				     VBI_FRAME_HDR_LEN;

			memcpy(c->stage_mem + hoff + VBI_FRAME_HDR_LEN,
			       VBI_FWD_BODY(f), f->span - VBI_FRAME_HDR_LEN);
			c->st.bytes_copied += len;
			c->st.bytes_forwarded -= len;
		}
		r->copied = true;
		upto = r->fwd_to;
	}
	if (upto > c->fwd_head) {
		vbi_sess_fwd_complete(c, upto);
		c->st.kicks++;
	}
}

/* ---- reading ------------------------------------------------------------ */

/* A record's header has been read: check it and say where its body goes. */
static int rec_begin(struct tcp_conn *t)
{
	struct vbi_conn *c = &t->c;
	uint64_t free_bytes;
	size_t at;

	t->in_kind = get32(t->in_hdr);
	t->in_len = get32(t->in_hdr + 4);
	t->in_bytes = get32(t->in_hdr + 8);
	/* Once open, every record takes a credit, as a WRITE or SEND takes a
	 * posted RECV: the peer may have sent no more than we granted at the
	 * handshake plus the reposts we have acknowledged (over RDMA, more
	 * would find no RECV and fail the QP). */
	if (c->state == VBI_SS_OPEN &&
	    c->cr.reposted >=
		    (uint64_t)c->cr.local_posted + c->cr.returned_recvs) {
		vbi_sess_fail(c, VB_EPROTO,
			      "peer sent more records than it had credit for");
		return VB_EPROTO;
	}
	switch (t->in_kind) {
	case REC_CTRL:
		if (t->in_len != 0 || t->in_bytes > VBI_CTRL_MAX) {
			vbi_sess_fail(c, VB_EPROTO,
				      "control record of %u bytes",
				      t->in_bytes);
			return VB_EPROTO;
		}
		t->in_to = t->ctrl_in;
		return VB_OK;
	case REC_DATA:
		if (c->state != VBI_SS_OPEN) {
			vbi_sess_fail(c, VB_EPROTO,
				      "data before the handshake");
			return VB_EPROTO;
		}
		/* Checked before a byte lands: what a hostile peer could
		 * otherwise overwrite is frames we hold. */
		free_bytes = c->rx.size - (c->rx.written - c->rx.freed);
		at = (size_t)(c->rx.written & (c->rx.size - 1));
		if (t->in_bytes > t->in_len || t->in_len > free_bytes ||
		    t->in_bytes > c->rx.size - at) {
			vbi_sess_fail(c, VB_EPROTO,
				      "peer sent %u bytes (%u in the ring) it "
				      "had no room for",
				      t->in_bytes, t->in_len);
			return VB_EPROTO;
		}
		t->in_to = c->ring_mem + at;
		return VB_OK;
	default:
		vbi_sess_fail(c, VB_EPROTO, "unknown record kind %u",
			      t->in_kind);
		return VB_EPROTO;
	}
}

/* A record's body has been read: hand it to the session. */
static void rec_end(struct tcp_conn *t)
{
	struct vbi_conn *c = &t->c;
	bool was_open = c->state == VBI_SS_OPEN;

	if (t->in_kind == REC_DATA) {
		if (vbi_sess_arrived(c, t->in_len) == VB_OK)
			vbi_credit_reposted(&c->cr, 1);
		return;
	}
	vbi_sess_on_ctrl(c, t->ctrl_in, t->in_bytes);
	/* The handshake's messages are outside the accounting. */
	if (was_open && c->state == VBI_SS_OPEN)
		vbi_credit_reposted(&c->cr, 1);
}

/* Read records until the socket is empty or READ_RECORDS were handled. */
static int conn_read(struct tcp_conn *t)
{
	struct vbi_conn *c = &t->c;
	int records = 0;
	ssize_t n;

	/* TLS may hold decrypted bytes that no epoll event announces: they
	 * are read before the turn ends (at most one TLS record's). */
	while (c->state != VBI_SS_CLOSED &&
	       (records < READ_RECORDS ||
		(t->tls_done && vbi_tls_pending(t->tls)))) {
		uint8_t *to;
		size_t want;

		if (!t->in_body) {
			to = t->in_hdr + t->in_have;
			want = REC_HDR - t->in_have;
		} else {
			to = t->in_to + t->in_have;
			want = t->in_bytes - t->in_have;
		}
		n = want ? io_read(t, to, want) : 0;
		if (want && n <= 0) {
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				break;
			if (n < 0 && errno == EINTR)
				continue;
			if (n == 0)
				vbi_sess_fail(c, VB_ECLOSED,
					      "peer disconnected");
			else
				io_fail(t, errno, "read");
			break;
		}
		t->in_have += (size_t)n;
		if (!t->in_body) {
			if (t->in_have < REC_HDR)
				continue;
			t->in_have = 0;
			if (rec_begin(t))
				break;
			t->in_body = true;
			if (t->in_bytes)
				continue;
		} else if (t->in_have < t->in_bytes) {
			continue;
		}
		t->in_body = false;
		t->in_have = 0;
		rec_end(t);
		records++;
	}
	return records;
}

/* ---- connection set-up and lifetime ------------------------------------ */

static struct tcp_conn *conn_new(struct tcp_tp *tp,
				 const struct vbi_conn_opts *o,
				 const struct vbi_conn_cbs *cbs, void *arg)
{
	struct tcp_conn *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	vbi_sess_init(&t->c, tp->ops, &tcp_sess_ops, o, cbs, arg);
	t->ep.kind = EP_CONN;
	t->tp = tp;
	t->fd = -1;
	t->next = tp->conns;
	if (tp->conns)
		tp->conns->prev = t;
	tp->conns = t;
	conns_alive[tp->tls]++;
	if (o->busy_poll)
		tp->busy_poll = true;
	return t;
}

static void conn_free(struct tcp_conn *t)
{
	if (!t)
		return;
	vbi_sess_quiesce(&t->c);
	vbi_tls_destroy(t->tls);
	if (t->fd >= 0)
		close(t->fd); /* also leaves the epoll set */
	unmap(&t->c.ring_mem, &t->ring_len);
	unmap(&t->c.stage_mem, &t->stage_len);
	for (unsigned i = 0; i < CTRL_SLOTS; i++)
		free(t->ctrl_out[i]);
	free(t->out);
	vbi_sess_free(&t->c);
	if (t->prev)
		t->prev->next = t->next;
	else if (t->tp->conns == t)
		t->tp->conns = t->next;
	if (t->next)
		t->next->prev = t->prev;
	conns_alive[t->tp->tls]--;
	free(t);
}

static void disconnect(struct vbi_conn *c)
{
	struct tcp_conn *t = tconn(c);

	/* What was written goes first (an Error that turns a client away),
	 * then TLS's close alert and the end of the stream. */
	if (t->tls_done)
		vbi_tls_close(t->tls);
	if (t->fd >= 0)
		shutdown(t->fd, SHUT_WR);
}

static void tag(const struct vbi_conn *c, char *buf, size_t len)
{
	const struct tcp_conn *t = tconn_const(c);

	snprintf(buf, len, "%s fd %d", t->tls ? "tls" : "tcp", t->fd);
}

static int peer_name(const struct vbi_conn *c, char *buf, size_t len)
{
	const struct tcp_conn *t = tconn_const(c);

	return vbi_sess_addr_name(
		t->peer_len ? (const struct sockaddr *)&t->peer : NULL, buf,
		len);
}

/* getsockname(@fd) as vbi_sess_addr_name() writes it. */
static int sock_name(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (len == 0)
		return VB_EINVAL;
	if (fd < 0)
		return VB_ESTATE;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl))
		return vbi_sess_errno(errno);
	return vbi_sess_addr_name((const struct sockaddr *)&ss, buf, len);
}

static int local_name(const struct vbi_conn *c, char *buf, size_t len)
{
	return sock_name(tconn_const(c)->fd, buf, len);
}

static int listener_name(const struct vbi_listener *vl, char *buf, size_t len)
{
	return sock_name(((const struct tcp_listener *)(const void *)vl)->fd,
			 buf, len);
}

static int sock_setup(int fd)
{
	int one = 1;

	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		return vbi_sess_errno(errno);
	return VB_OK;
}

static int epoll_add(struct tcp_tp *tp, int fd, struct tcp_ep *ep,
		     uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = ep };

	return epoll_ctl(tp->epfd, EPOLL_CTL_ADD, fd, &ev) ? VB_ESYS : VB_OK;
}

/* Write a refusal (a reject record) in plain TCP, before any TLS; the
 * socket is new and empty, so 8 bytes always fit. */
static void refuse_write(int fd, uint16_t reason)
{
	uint8_t rec[VBI_CM_HDR_LEN];

	vbi_cm_hdr_encode_reject(rec, reason);
	if (send(fd, rec, VBI_CM_HDR_LEN, MSG_NOSIGNAL) < 0)
		return; /* the peer is gone: nothing to tell */
}

/* Write our version record, inside TLS if the connection has it; nothing
 * else is queued yet, so 8 bytes always fit.  What io_writev() returns. */
static ssize_t greet_send(struct tcp_conn *t)
{
	uint8_t rec[VBI_CM_HDR_LEN];
	struct iovec v = { .iov_base = rec, .iov_len = VBI_CM_HDR_LEN };

	vbi_cm_hdr_encode(rec);
	return io_writev(t, &v, 1);
}

/* greet_send(), failing the connection if it fails: VB_OK or VB_ECLOSED. */
static int greet_write(struct tcp_conn *t)
{
	ssize_t n = greet_send(t);

	if (n == (ssize_t)VBI_CM_HDR_LEN)
		return VB_OK;
	if (n < 0)
		io_write_fail(t, errno, "write of the version record");
	else
		vbi_sess_fail(&t->c, VB_ECLOSED, "cannot send the version");
	return VB_ECLOSED;
}

static void on_accept(struct tcp_listener *l)
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	struct tcp_conn *t;
	int fd, rc;

	for (;;) {
		len = sizeof(sa);
		fd = accept4(l->fd, (struct sockaddr *)&sa, &len,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR && errno != ECONNABORTED)
				vbi_warn("tcp accept: %s", strerror(errno));
			return;
		}
		t = conn_new(l->tp, &l->opts, &l->cbs, l->arg);
		if (!t || sock_setup(fd)) {
			vbi_warn("refusing a tcp connection: %s",
				 t ? "socket options" : "out of memory");
			close(fd);
			if (t)
				conn_free(t);
			continue;
		}
		t->fd = fd;
		memcpy(&t->peer, &sa, len);
		t->peer_len = len;
		t->c.server = true;
		t->c.preauth = true;
		t->c.state = VBI_SS_CONNECTING;
		/* From now on it counts, as at an rdma_cm request. */
		if (l->cbs.accept && (rc = l->cbs.accept(&t->c, l->arg))) {
			/* In plain TCP even on a TLS listener: a refused
			 * peer costs no handshake, and its client knows a
			 * reject record from TLS by the first byte. */
			refuse_write(fd, vbi_cm_reject_code(rc));
			t->c.state = VBI_SS_CLOSED;
			t->c.closed_reported = true; /* refused: no callback */
			continue;
		}
		if (l->tls_ctx &&
		    vbi_tls_create(l->tls_ctx, fd, true, NULL, &t->tls)) {
			vbi_sess_fail(&t->c, VB_ENOMEM,
				      "out of memory for TLS");
			continue;
		}
		if (l->opts.handshake_timeout_ms)
			t->c.hs_deadline = vbi_clock_coarse_ms() +
					   l->opts.handshake_timeout_ms;
		if (epoll_add(l->tp, fd, &t->ep, EPOLLIN)) {
			vbi_sess_fail(&t->c, VB_ESYS,
				      "cannot watch the socket");
			continue;
		}
	}
}

/* The 8-byte version records, before any session record. */
static int greet_read(struct tcp_conn *t)
{
	struct vbi_conn *c = &t->c;
	struct vbi_cm_hdr hdr;
	ssize_t n;
	int rc;

	n = io_read(t, t->in_hdr + t->in_have, VBI_CM_HDR_LEN - t->in_have);
	if (n < 0 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return VB_EAGAIN;
	if (n == 0) {
		vbi_sess_fail(c, VB_ECLOSED,
			      "peer disconnected before the version record");
		return VB_ECLOSED;
	}
	if (n < 0) {
		io_fail(t, errno, "read of the version record");
		return VB_ECLOSED;
	}
	t->in_have += (size_t)n;
	if (t->in_have < VBI_CM_HDR_LEN)
		return VB_EAGAIN;
	t->in_have = 0;
	rc = vbi_cm_hdr_decode(t->in_hdr, VBI_CM_HDR_LEN, &hdr);
	if (c->server) {
		if (rc) {
			/* Our record tells the peer which version we speak;
			 * the refusal is the reason, whatever the write. */
			greet_send(t);
			vbi_sess_fail(c, rc, "refusing a connection: %s",
				      rc == VB_EVERSION ?
					      "peer speaks another version" :
					      "not a verbus client");
			return rc;
		}
		if (greet_write(t))
			return VB_ECLOSED;
	} else if (rc == VB_EVERSION) {
		vbi_sess_fail(c, VB_EVERSION,
			      "refused: the server speaks version %u",
			      hdr.version);
		return rc;
	} else if (rc) {
		vbi_sess_fail(c, VB_EPROTO, "peer is not a verbus v%u server",
			      VBI_PROTO_VERSION);
		return rc;
	} else if (hdr.reason != VBI_CM_REJ_NONE) {
		vbi_sess_fail(c, VB_ECONNREFUSED, "refused: %s",
			      vbi_cm_reject_reason(hdr.reason));
		return VB_ECONNREFUSED;
	} else if (t->tls_plain) {
		vbi_sess_fail(c, VB_EPROTO,
			      "the server does not speak TLS (a tcp:// "
			      "listener?)");
		return VB_EPROTO;
	}
	t->greeted = true;
	t->connect_deadline = 0;
	vbi_sess_established(c);
	return VB_OK;
}

/*
 * Advance the TLS handshake; true once it is done (a client has then sent
 * its version record, inside TLS) or once a client found a plain server
 * (whose record greet_read() then reads).  A peer that speaks plain TCP
 * shows by its first byte (tls.c looks): TLS records start with a content
 * type 20-23, a version or reject record with the magic's 'V'.
 */
static bool tls_step(struct tcp_conn *t)
{
	struct vbi_conn *c = &t->c;
	enum vbi_tls_rc rc = vbi_tls_handshake(t->tls);

	switch (rc) {
	case VBI_TLS_OK:
		break;
	case VBI_TLS_PLAIN:
		if (!c->server) {
			t->tls_plain = true;
			return true;
		}
		refuse_write(t->fd, VBI_CM_REJ_TLS);
		vbi_sess_fail(c, VB_EPROTO,
			      "refusing a connection: it does not speak TLS "
			      "(a tcp:// client?)");
		return false;
	case VBI_TLS_WANT_IN:
		want_out(t, false);
		return false;
	case VBI_TLS_WANT_OUT:
		want_out(t, true);
		return false;
	case VBI_TLS_EOF:
		vbi_sess_fail(c, VB_ECLOSED,
			      "peer disconnected during the TLS handshake");
		return false;
	default:
		/* A socket error, a certificate refused, any other failure:
		 * classified as for a read or write. */
		tls_errno(t, rc);
		io_fail(t, errno, "handshake");
		return false;
	}
	t->tls_done = true;
	want_out(t, false);
	if (vbi_log_enabled(VBI_LOG_DEBUG)) {
		char desc[96];

		vbi_tls_describe(t->tls, desc, sizeof(desc));
		vbi_debug("tls fd %d: %s", t->fd, desc);
	}
	if (!c->server && greet_write(t))
		return false;
	return true;
}

/* The client's socket became writable while connecting: did it connect? */
static void connected(struct tcp_conn *t)
{
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
		vbi_sess_fail(&t->c, vbi_sess_errno(err ? err : errno),
			      "connect: %s", strerror(err ? err : errno));
		return;
	}
	want_out(t, false);
	t->c.state = VBI_SS_CONNECTING; /* connected: records now */
	if (t->tls)
		tls_step(t); /* the ClientHello; the version comes after */
	else
		greet_write(t);
}

static void conn_event(struct tcp_conn *t, uint32_t events)
{
	struct vbi_conn *c = &t->c;

	if (c->state == VBI_SS_CLOSED)
		return;
	if (c->state == VBI_SS_RESOLVING) {
		/* A client's connect() in progress: writable means done. */
		if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			connected(t);
		return;
	}
	/* TLS's reversals: a read that waited to write, a write that
	 * waited to read. */
	if (t->rd_wants_out && (events & EPOLLOUT)) {
		t->rd_wants_out = false;
		events |= EPOLLIN;
	}
	if (t->wr_wants_in && (events & EPOLLIN)) {
		t->wr_wants_in = false;
		events |= EPOLLOUT;
	}
	if (t->tls && !t->tls_done && !t->tls_plain) {
		if (!tls_step(t))
			return;
		events |= EPOLLIN; /* what came with the last flight */
	}
	if (events & EPOLLOUT)
		out_write(t);
	if (!t->greeted && (events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
		if (greet_read(t) != VB_OK)
			return;
	}
	if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && conn_read(t))
		vbi_sess_deliver(c);
}

/* ---- the event loop ----------------------------------------------------- */

static void reap(struct tcp_tp *tp, bool force)
{
	struct tcp_conn *t = tp->conns, *next;

	for (; t; t = next) {
		struct vbi_conn *c = &t->c;

		next = t->next;
		if (c->state != VBI_SS_CLOSED)
			continue;
		if (!c->closed_reported) {
			c->closed_reported = true;
			if (c->cbs.closed)
				c->cbs.closed(c, &c->why, c->arg);
		}
		/* Nothing is written after the close: the forwards are
		 * done, and no writev() reads a source's ring again. */
		vbi_sess_quiesce(c);
		next = t->next; /* the callback may have closed others */
		if (c->refs_out == 0 || force)
			conn_free(t);
	}
}

static void check_deadlines(struct tcp_tp *tp)
{
	uint64_t now = vbi_clock_coarse_ms();
	struct tcp_conn *t;

	if (now < tp->hs_check)
		return;
	tp->hs_check = now + HS_CHECK_MS;
	for (t = tp->conns; t; t = t->next) {
		if (t->tls && !t->tls_done && t->c.hs_deadline &&
		    now >= t->c.hs_deadline && t->c.state != VBI_SS_CLOSED) {
			vbi_sess_fail(&t->c, VB_ETIMEDOUT,
				      "handshake timeout: TLS not done within "
				      "%u ms",
				      t->c.opts.handshake_timeout_ms);
			handshake_timeouts[tp->tls]++;
			continue;
		}
		if (t->connect_deadline && now >= t->connect_deadline &&
		    t->c.state != VBI_SS_CLOSED) {
			vbi_sess_fail(&t->c, VB_ETIMEDOUT,
				      "connect timeout after %d ms",
				      t->c.opts.timeout_ms);
			continue;
		}
		if (vbi_sess_deadline(&t->c, now))
			handshake_timeouts[tp->tls]++;
	}
}

static void tp_after(struct tcp_tp *tp)
{
	struct tcp_conn *t;

	for (t = tp->conns; t; t = t->next) {
		out_complete(t);
		vbi_sess_after(&t->c);
	}
}

static int handle(struct epoll_event *evs, int n)
{
	int total = 0;

	for (int i = 0; i < n; i++) {
		struct tcp_ep *ep = evs[i].data.ptr;

		if (ep->kind == EP_LISTENER)
			on_accept(CONTAINER(ep, struct tcp_listener, ep));
		else
			conn_event(CONTAINER(ep, struct tcp_conn, ep),
				   evs[i].events);
		total++;
	}
	return total;
}

static int tp_progress(struct vbi_tp *vtp, int timeout_ms)
{
	struct tcp_tp *tp = ttp(vtp);
	struct epoll_event evs[64];
	int n, total;

	tp_after(tp);
	n = epoll_wait(tp->epfd, evs, 64, tp->busy_poll ? 0 : timeout_ms);
	if (n < 0 && errno != EINTR)
		return VB_ESYS;
	total = n > 0 ? handle(evs, n) : 0;
	check_deadlines(tp);
	tp_after(tp);
	reap(tp, false);
	return total;
}

static int tp_spin(struct vbi_tp *vtp, uint64_t budget_ns)
{
	struct tcp_tp *tp = ttp(vtp);
	struct epoll_event evs[64];
	uint64_t end = 0;
	int n, total = 0;

	for (;;) {
		n = epoll_wait(tp->epfd, evs, 64, 0);
		if (n > 0)
			total += handle(evs, n);
		if (total || budget_ns == 0)
			break;
		if (end == 0)
			end = vbi_clock_ns() + budget_ns;
		else if (vbi_clock_ns() >= end)
			break;
	}
	tp_after(tp);
	reap(tp, false);
	return total;
}

/* ---- the ops ------------------------------------------------------------ */

static int tp_new(bool tls, struct vbi_tp **out)
{
	struct tcp_tp *tp = calloc(1, sizeof(*tp));
	int rc = VB_ENOMEM;

	if (!tp)
		return VB_ENOMEM;
	tp->ops = tls ? &vbi_tls_ops : &vbi_tcp_ops;
	tp->tls = tls;
	if (tls && !(tp->tls_buf = malloc(VBI_TLS_CHUNK)))
		goto out_free;
	tp->epfd = epoll_create1(EPOLL_CLOEXEC);
	rc = VB_ESYS;
	if (tp->epfd < 0)
		goto out_free;
	*out = (struct vbi_tp *)(void *)tp;
	return VB_OK;
out_free:
	free(tp->tls_buf);
	free(tp);
	return rc;
}

static int tp_create(struct vbi_tp **out)
{
	return tp_new(false, out);
}

static int tp_create_tls(struct vbi_tp **out)
{
	return tp_new(true, out);
}

static void listener_close(struct vbi_listener *vl)
{
	struct tcp_listener *l = (struct tcp_listener *)(void *)vl;
	struct tcp_listener **p;

	if (!l)
		return;
	for (p = &l->tp->listeners; *p; p = &(*p)->next) {
		if (*p == l) {
			*p = l->next;
			break;
		}
	}
	if (l->fd >= 0)
		close(l->fd);
	vbi_tls_ctx_put(l->tls_ctx); /* its sessions keep their hold */
	free(l);
}

static void tp_destroy(struct vbi_tp *vtp)
{
	struct tcp_tp *tp = ttp(vtp);
	struct tcp_conn *t;

	if (!tp)
		return;
	while (tp->listeners)
		listener_close((struct vbi_listener *)(void *)tp->listeners);
	for (t = tp->conns; t; t = t->next)
		vbi_sess_fail(&t->c, VB_ECLOSED, "transport destroyed");
	reap(tp, false);
	reap(tp, true);
	close(tp->epfd);
	free(tp->tls_buf);
	free(tp);
}

static int tp_fd(struct vbi_tp *tp)
{
	return ttp(tp)->epfd;
}

static int resolve(const char *addr, const char *port, bool passive,
		   struct addrinfo **ai)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_family = AF_UNSPEC };

	hints.ai_flags = passive ? AI_PASSIVE : 0;
	return getaddrinfo(addr, port, &hints, ai) ? VB_EUNREACH : VB_OK;
}

/* A TLS context from @o's files; @err says what failed. */
static int tls_ctx(const struct vbi_conn_opts *o, bool server,
		   struct vbi_tls_ctx **out, char *err, size_t len)
{
	struct vbi_tls_conf conf = {
		.cert = o->tls_cert,
		.key = o->tls_key,
		.ca = o->tls_ca,
	};

	return vbi_tls_ctx_create(&conf, server, out, err, len);
}

static int tp_listen(struct vbi_tp *vtp, const char *addr, const char *port,
		     const struct vbi_conn_opts *o,
		     const struct vbi_conn_cbs *cbs, void *arg,
		     struct vbi_listener **out)
{
	struct tcp_tp *tp = ttp(vtp);
	struct tcp_listener *l;
	struct addrinfo *ai = NULL;
	int one = 1, rc;

	l = calloc(1, sizeof(*l));
	if (!l)
		return VB_ENOMEM;
	l->ops = tp->ops;
	l->ep.kind = EP_LISTENER;
	l->tp = tp;
	l->fd = -1;
	l->opts = *o;
	l->opts.source = NULL;
	l->cbs = *cbs;
	l->arg = arg;
	rc = vbi_sess_opts(&l->opts);
	if (rc)
		goto out_free;
	if (tp->tls) {
		char err[256];

		rc = tls_ctx(o, true, &l->tls_ctx, err, sizeof(err));
		if (rc) {
			vbi_err("%s", err); /* names the operator's file */
			goto out_free;
		}
	}
	rc = resolve(addr, port, true, &ai);
	if (rc)
		goto out_free;
	l->fd = socket(ai->ai_family,
		       SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0 ||
	    setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(l->fd, ai->ai_addr, ai->ai_addrlen) ||
	    listen(l->fd, LISTEN_BACKLOG)) {
		int e = errno;

		/* The words too: "address already in use" has no vb_err. */
		vbi_warn("tcp: cannot listen on %s:%s: %s", addr, port,
			 strerror(e));
		rc = vbi_sess_errno(e);
		goto out_free_ai;
	}
	rc = epoll_add(tp, l->fd, &l->ep, EPOLLIN);
	if (rc)
		goto out_free_ai;
	freeaddrinfo(ai);
	l->next = tp->listeners;
	tp->listeners = l;
	*out = (struct vbi_listener *)(void *)l;
	return VB_OK;
out_free_ai:
	freeaddrinfo(ai);
out_free:
	if (l->fd >= 0)
		close(l->fd);
	vbi_tls_ctx_put(l->tls_ctx);
	free(l);
	return rc;
}

static int tp_connect(struct vbi_tp *vtp, const char *addr, const char *port,
		      const struct vbi_conn_opts *o,
		      const struct vbi_conn_cbs *cbs, void *arg,
		      struct vbi_conn **out)
{
	struct tcp_tp *tp = ttp(vtp);
	struct vbi_conn_opts opts = *o;
	struct addrinfo *dst = NULL, *src = NULL;
	struct vbi_tls_ctx *ctx = NULL;
	const char *what = "session";
	struct tcp_conn *t;
	char err[256];
	int rc;

	rc = vbi_sess_opts(&opts);
	if (rc)
		return rc;
	if (tp->tls && tls_ctx(&opts, false, &ctx, err, sizeof(err))) {
		/* Said as a connection that failed, so that the words (a
		 * file that does not load) reach the application. */
		t = conn_new(tp, &opts, cbs, arg);
		if (!t)
			return VB_ENOMEM;
		vbi_sess_fail(&t->c, VB_EINVAL, "%s", err);
		*out = &t->c;
		return VB_OK;
	}
	rc = resolve(addr, port, false, &dst);
	if (rc)
		goto out_free_ctx;
	if (opts.source) {
		rc = resolve(opts.source, NULL, true, &src);
		if (rc)
			goto out_free_dst;
	}
	t = conn_new(tp, &opts, cbs, arg);
	if (!t) {
		rc = VB_ENOMEM;
		goto out_free_src;
	}
	t->c.state = VBI_SS_RESOLVING;
	t->fd = socket(dst->ai_family,
		       SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (t->fd < 0 || sock_setup(t->fd) ||
	    (src && bind(t->fd, src->ai_addr, src->ai_addrlen)) ||
	    (connect(t->fd, dst->ai_addr, dst->ai_addrlen) &&
	     errno != EINPROGRESS)) {
		rc = vbi_sess_errno(errno);
		goto out_free_conn;
	}
	memcpy(&t->peer, dst->ai_addr, dst->ai_addrlen);
	t->peer_len = dst->ai_addrlen;
	if (ctx) {
		rc = vbi_tls_create(
			ctx, t->fd, false,
			opts.tls_server_name ? opts.tls_server_name : addr,
			&t->tls);
		if (rc)
			goto out_free_conn;
	}
	rc = vbi_sess_setup(&t->c, &what);
	if (rc)
		goto out_free_conn;
	rc = epoll_add(tp, t->fd, &t->ep, EPOLLIN | EPOLLOUT);
	if (rc)
		goto out_free_conn;
	t->want_out = true;
	t->connect_deadline = vbi_clock_coarse_ms() + (uint64_t)opts.timeout_ms;
	*out = &t->c;
	goto out_free_src;
out_free_conn:
	conn_free(t);
out_free_src:
	if (src)
		freeaddrinfo(src);
out_free_dst:
	freeaddrinfo(dst);
out_free_ctx:
	vbi_tls_ctx_put(ctx); /* the session keeps its own hold */
	return rc;
}

static void tp_stats(struct vbi_tp_stats *s)
{
	s->conns_open = conns_alive[0];
	s->handshake_timeouts = handshake_timeouts[0];
}

static void tp_stats_tls(struct vbi_tp_stats *s)
{
	s->conns_open = conns_alive[1];
	s->handshake_timeouts = handshake_timeouts[1];
}

static const struct vbi_sess_ops tcp_sess_ops = {
	.ctrl_room = ctrl_room,
	.ctrl_post = ctrl_post,
	.batch_room = batch_room,
	.batch_post = batch_post,
	.kick = kick,
	.can_gather = can_gather,
	.setup_session = setup_session,
	.setup_stage = setup_stage,
	.ring_info = ring_info,
	.disconnect = disconnect,
	.tag = tag,
};

/* The two schemes' tables: the same code, tls's connections through
 * tls.c. */
/* clang-format off */
#define TCP_TRANSPORT_OPS                     \
	.tp_destroy = tp_destroy,             \
	.tp_fd = tp_fd,                       \
	.tp_progress = tp_progress,           \
	.tp_spin = tp_spin,                   \
	.listen = tp_listen,                  \
	.listener_close = listener_close,     \
	.connect = tp_connect,                \
	.peer_name = peer_name,               \
	.local_name = local_name,             \
	.listener_name = listener_name,       \
	VBI_SESS_TRANSPORT_OPS
/* clang-format on */

const struct vbi_transport_ops vbi_tcp_ops = {
	.scheme = "tcp",
	.tp_create = tp_create,
	.tp_stats = tp_stats,
	TCP_TRANSPORT_OPS,
};

const struct vbi_transport_ops vbi_tls_ops = {
	.scheme = "tls",
	.tp_create = tp_create_tls,
	.tp_stats = tp_stats_tls,
	TCP_TRANSPORT_OPS,
};
