/*
 * session.c - the session protocol over any transport (see session.h).
 *
 * Decisions a reader must know:
 *  - Frames are built in staging, a local mirror of the peer's ring, at the
 *    offsets they will have there, so that everything queued together
 *    leaves as one write of one contiguous range (coalescing); the
 *    transport posts it (sops->batch_post).
 *  - Every write of frames and every control message consumes one RECV
 *    credit at the peer (core/credit.c), so the peer can always take it.
 *    Acks ride in the last frame of each batch, or in a Credit control
 *    message when no data flows back.  Hello and Welcome sit outside the
 *    accounting.
 *  - Control messages for the layer above stay in order with the frames
 *    that came before them: while those are held (paused), so are they.
 *  - A connection dies in one place (vbi_sess_fail); the transport frees it
 *    later, never under a callback.
 *  - A delivered frame carries a reference count in its ack_recvs word
 *    (consumed at delivery, in our own ring): the space goes back to the
 *    sender when the last reference (the delivery's, holds, forwards in
 *    flight) is gone.  refs_out counts them too, in trusted memory: the
 *    transport frees a closed connection only once it reaches zero, so no
 *    forward ever reads freed memory.
 *  - Forwarding (the broker's fan-out) copies no payload where the
 *    transport can send straight from the source's ring (sops->can_gather):
 *    only a new header is built in staging, and the forward holds a
 *    reference to the source's frame until the transport reports it done
 *    (vbi_sess_fwd_complete).  Elsewhere the message is copied into
 *    staging at once (forward_copy) and counted in bytes_copied.
 *  - A fan-out (a direct publisher's one message for many subscribers) is a
 *    forward from another connection's staging, the message it committed
 *    last: that connection pins the frame (its space is not reused) until
 *    our peer has freed our copy's header, not merely until the write
 *    completed, so that the bytes can be read again for a resend
 *    (vbi_sess_unacked) as long as our own frames can.
 */
#include "session.h"

#include "core/frame.h"
#include "core/log.h"
#include "core/prof.h"

#include <verbus/verbus.h>

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEF_RING (1u << 20)
#define DEF_MAX_MSG (64u << 10)
#define DEF_RECV_DEPTH 128u
#define DEF_TIMEOUT_MS 10000
#define DEFER_MAX 1024u /* control messages held while paused */
#define FRAME_REFS_OFF 12u /* ack_recvs: our reference count once delivered */
#define FWD_MAX VBI_SESS_FWD_MAX
#define FAN_MAX VBI_SESS_FANOUT_MAX
/* A fan-out's body below this is copied, not gathered: copying it costs
 * less than the gather entries and the pin (TCP loopback, verbus bench
 * --direct fanout to 4: copies 7-14% faster at 64-256 B, even at 1 KiB,
 * gathers ahead from 4 KiB), and a small write may then go inline. */
#define FAN_GATHER_MIN 1024u

int vbi_sess_addr_name(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[NI_MAXHOST], port[NI_MAXSERV];
	socklen_t salen;

	if (len == 0)
		return VB_EINVAL;
	if (sa == NULL ||
	    (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)) {
		snprintf(buf, len, "?:0");
		return VB_OK;
	}
	salen = sa->sa_family == AF_INET ? sizeof(struct sockaddr_in) :
					   sizeof(struct sockaddr_in6);
	if (getnameinfo(sa, salen, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(buf, len, "?:0");
		return VB_OK;
	}
	snprintf(buf, len, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s",
		 host, port);
	return VB_OK;
}

int vbi_sess_errno(int e)
{
	switch (e) {
	case ENOMEM:
	case ENOBUFS:
		return VB_ENOMEM;
	case ENODEV:
	case ENOSYS:
		return VB_ENODEV;
	case ETIMEDOUT:
		return VB_ETIMEDOUT;
	case ECONNREFUSED:
		return VB_ECONNREFUSED;
	case ECONNRESET:
	case EPIPE:
		return VB_ECLOSED;
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

/* ---- options, set-up, teardown ----------------------------------------- */

/* A ring we allocate, or accept from a peer: a power of two in range. */
static bool ring_size_ok(uint32_t size)
{
	return size >= VBI_SESS_RING_MIN && size <= VBI_RING_MAX &&
	       (size & (size - 1)) == 0;
}

int vbi_sess_opts(struct vbi_conn_opts *o)
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

void vbi_sess_init(struct vbi_conn *c, const struct vbi_transport_ops *ops,
		   const struct vbi_sess_ops *sops,
		   const struct vbi_conn_opts *o,
		   const struct vbi_conn_cbs *cbs, void *arg)
{
	c->ops = ops;
	c->sops = sops;
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
}

int vbi_sess_setup(struct vbi_conn *c, const char **what)
{
	int rc;

	*what = "forward queue";
	c->fwd = calloc(FWD_MAX, sizeof(*c->fwd));
	if (!c->fwd)
		return VB_ENOMEM;
	rc = c->sops->setup_session(c, what);
	if (rc)
		return rc;
	*what = "receive ring";
	if (vbi_ring_rx_init(&c->rx, c->ring_mem, c->opts.ring_size))
		return VB_EINVAL;
	c->preauth = false;
	return VB_OK;
}

void vbi_sess_free(struct vbi_conn *c)
{
	for (unsigned i = 0; i < c->ndeferred; i++)
		vbi_codec_free(c->deferred[i].m);
	free(c->deferred);
	c->deferred = NULL;
	c->ndeferred = 0;
	free(c->fwd);
	c->fwd = NULL;
	free(c->pins);
	c->pins = NULL;
	free(c->borrows);
	c->borrows = NULL;
}

const char *vbi_sess_label(const struct vbi_conn *c, char *buf, size_t len)
{
	char addr[80];

	if (!c->server || c->named)
		return c->name;
	c->ops->peer_name(c, addr, sizeof(addr));
	snprintf(buf, len, "from %s", addr);
	return buf;
}

void vbi_sess_fail(struct vbi_conn *c, int err, const char *fmt, ...)
{
	char label[96], tag[32];
	va_list ap;

	if (c->state == VBI_SS_CLOSED)
		return;
	c->why.err = err;
	va_start(ap, fmt);
	vsnprintf(c->why.reason, sizeof(c->why.reason), fmt, ap);
	va_end(ap);
	if (err != VB_ECLOSED) {
		c->sops->tag(c, tag, sizeof(tag));
		vbi_warn("conn %s %s: %s (%s)",
			 vbi_sess_label(c, label, sizeof(label)), tag,
			 c->why.reason, vb_strerror(err));
	}
	if (c->state >= VBI_SS_CONNECTING)
		c->sops->disconnect(c);
	c->state = VBI_SS_CLOSED;
}

/* The staging mirror of the peer's ring, once its size is known.  *@what
 * names the transport's part that failed, or is NULL: the peer's ring
 * info is unusable. */
static int setup_stage(struct vbi_conn *c, const Verbus__RingInfo *r,
		       uint32_t peer_max_msg, uint32_t peer_credits,
		       const char **what)
{
	int rc;

	*what = NULL;
	if (!ring_size_ok(r->size) ||
	    (c->opts.max_peer_ring && r->size > c->opts.max_peer_ring))
		return VB_EPROTO;
	rc = c->sops->setup_stage(c, r, what);
	if (rc)
		return rc;
	*what = NULL;
	rc = vbi_ring_tx_init(&c->tx, c->stage_mem, r->size);
	if (rc)
		return VB_EPROTO;
	rc = vbi_credit_init(&c->cr, peer_credits, c->opts.recv_depth);
	if (rc)
		return VB_EPROTO;
	c->peer_ring = r->size;
	/* Never more than fits half the peer's ring (core/ring.h). */
	c->peer_max_msg = peer_max_msg;
	if (vbi_frame_span(VBI_FRAME_HDR_LEN + (size_t)peer_max_msg) >
	    r->size / 2)
		c->peer_max_msg = r->size / 2 - VBI_FRAME_HDR_LEN;
	return VB_OK;
}

/* ---- frame references -------------------------------------------------- */

/* Whether @v can be a frame delivered from @c's ring and not yet given
 * back: checked against our own counters only, which the peer cannot
 * touch. */
static bool view_in_ring(const struct vbi_conn *c,
			 const struct vbi_frame_view *v)
{
	return c->ring_mem && v && vbi_frame_is_msg(v->kind) &&
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
		vbi_sess_fail(c, VB_EPROTO, "peer overwrote a held frame");
		return VB_EPROTO;
	}
	r = frame_refs(f);
	if (r == 0) {
		vbi_sess_fail(c, VB_EPROTO, "peer overwrote a held frame");
		return VB_EPROTO;
	}
	frame_set_refs(f, r - 1);
	if (r > 1)
		return VB_OK;
	rc = vbi_ring_rx_release(&c->rx, v);
	if (rc == VB_EPROTO)
		vbi_sess_fail(c, VB_EPROTO, "peer overwrote a held frame");
	return rc;
}

int vbi_sess_release(struct vbi_conn *c, const struct vbi_frame_view *v)
{
	return frame_unref(c, v);
}

int vbi_sess_hold(struct vbi_conn *c, const struct vbi_frame_view *v)
{
	uint8_t *f = view_frame(c, v);

	if (!f || frame_refs(f) == 0)
		return VB_EINVAL;
	frame_set_refs(f, frame_refs(f) + 1);
	c->refs_out++;
	return VB_OK;
}

/* The view of the frame a forward entry refers to, rebuilt. */
static void fwd_view(const struct vbi_fwd *f, struct vbi_frame_view *v)
{
	memset(v, 0, sizeof(*v));
	v->kind = VBI_FRAME_MSG;
	v->off = f->off;
	v->span = f->span;
	v->pos = f->pos;
	v->seq = f->seq;
	v->topic = (const char *)f->src->ring_mem + f->off + VBI_FRAME_HDR_LEN;
}

void vbi_sess_fwd_complete(struct vbi_conn *c, uint64_t upto)
{
	struct vbi_frame_view v;

	if (!c->fwd)
		return;
	if (upto > c->fwd_tail)
		upto = c->fwd_tail;
	while (c->fwd_head < upto) {
		struct vbi_fwd *f = &c->fwd[c->fwd_head % FWD_MAX];

		/* A fan-out's body stays pinned until our peer frees the
		 * frame (borrows_return), not just until it is written. */
		if (!f->staged) {
			fwd_view(f, &v);
			frame_unref(f->src, &v);
		}
		c->fwd_head++;
	}
	if (c->fwd_sig < c->fwd_head)
		c->fwd_sig = c->fwd_head;
	if (c->fwd_post < c->fwd_head)
		c->fwd_post = c->fwd_head;
}

/* ---- fan-out: pins and borrows ----------------------------------------- */

/* Tell @c's ring where the oldest pinned frame is (nothing: UINT64_MAX). */
static void pins_floor(struct vbi_conn *c)
{
	uint64_t was = c->tx.pinned;

	while (c->pin_head < c->pin_tail &&
	       !c->pins[c->pin_head % FAN_MAX].refs)
		c->pin_head++;
	vbi_ring_tx_pin(&c->tx, c->pin_head < c->pin_tail ?
					c->pins[c->pin_head % FAN_MAX].pos :
					UINT64_MAX);
	/* Space came back: a sender that waited hears at the turn's end
	 * (vbi_sess_after), not under another connection's acks. */
	if (c->tx.pinned > was && c->want_writable)
		c->pin_moved = true;
}

/* Pin the frame of @c's staging at stream position @pos (the newest pinned
 * or newer): its index in *@idx.  VB_OK, or VB_EAGAIN (no room to track
 * it: the caller copies instead), VB_ENOMEM. */
static int pin_take(struct vbi_conn *c, uint64_t pos, uint64_t *idx)
{
	struct vbi_pin *p;

	if (!c->pins) {
		c->pins = calloc(FAN_MAX, sizeof(*c->pins));
		if (!c->pins)
			return VB_ENOMEM;
	}
	p = &c->pins[(c->pin_tail - 1) % FAN_MAX];
	if (c->pin_tail == c->pin_head || p->pos != pos) {
		if (c->pin_tail - c->pin_head == FAN_MAX)
			return VB_EAGAIN;
		p = &c->pins[c->pin_tail++ % FAN_MAX];
		p->pos = pos;
		p->refs = 0;
	}
	p->refs++;
	c->refs_out++;
	*idx = c->pin_tail - 1;
	pins_floor(c);
	return VB_OK;
}

/* Drop a hold on pin @idx of @c: space behind the oldest held comes back. */
static void pin_drop(struct vbi_conn *c, uint64_t idx)
{
	struct vbi_pin *p = &c->pins[idx % FAN_MAX];

	if (p->refs)
		p->refs--;
	if (c->refs_out)
		c->refs_out--;
	pins_floor(c);
}

/* Our peer freed our frames before tx.peer_freed (@all: or we write no
 * more): what they borrowed goes back to the sources. */
static void borrows_return(struct vbi_conn *c, bool all)
{
	while (c->borrow_head < c->borrow_tail) {
		struct vbi_borrow *b = &c->borrows[c->borrow_head % FAN_MAX];

		if (!all && b->start + b->span > c->tx.peer_freed)
			break;
		pin_drop(b->src, b->pin);
		c->borrow_head++;
	}
}

void vbi_sess_quiesce(struct vbi_conn *c)
{
	vbi_sess_fwd_complete(c, c->fwd_tail);
	borrows_return(c, true);
}

/* ---- sending ----------------------------------------------------------- */

/* Send one control message.  @counted: it takes a RECV credit (all but
 * the handshake's); @credit_return: it may use the reserved credits. */
static int send_ctrl(struct vbi_conn *c, const Verbus__Control *m, bool counted,
		     bool credit_return)
{
	if (!c->sops->ctrl_room(c))
		return VB_EAGAIN;
	if (counted && vbi_credit_take(&c->cr, credit_return))
		return VB_EAGAIN;
	return c->sops->ctrl_post(c, m);
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

void vbi_sess_stamp_acks(struct vbi_conn *c, const struct vbi_ring_batch *b,
			 struct vbi_credit_ack *ack)
{
	vbi_credit_snapshot(&c->cr, ack);
	if (b->has_last)
		vbi_frame_set_acks(c->stage_mem + b->last_off, ack->ack_recvs,
				   ack->ack_freed);
}

/* Post the staged frames, as few writes as the ring's end and the batch
 * limit allow.  Stops quietly when out of RECV credits or transport room:
 * what remains is posted when credits or completions come back. */
int vbi_sess_flush(struct vbi_conn *c)
{
	struct vbi_ring_batch b;
	struct vbi_credit_ack ack;
	int rc;

	if (c->state != VBI_SS_OPEN)
		return c->state == VBI_SS_CLOSED ? VB_ECLOSED : VB_ESTATE;
	/* The frames carry the freshest acks: what was released just now. */
	vbi_credit_note_freed(&c->cr, c->rx.freed);
	for (;;) {
		rc = vbi_ring_tx_next_batch(&c->tx, VBI_SESS_BATCH_MAX, &b);
		if (rc || b.len == 0)
			return rc;
		if (!c->sops->batch_room(c))
			return VB_OK;
		if (vbi_credit_take(&c->cr, false))
			return VB_OK;
		rc = c->sops->batch_post(c, &b, &ack);
		if (rc)
			return rc;
		if (b.has_last)
			vbi_credit_sent(&c->cr, &ack);
		vbi_ring_tx_flushed(&c->tx, b.len);
	}
}

/* No room at @c's peer for a frame: staged but unflushed frames hold space
 * too, so they are pushed, and the sender hears when room comes back.
 * Returns VB_EAGAIN. */
static int no_room(struct vbi_conn *c)
{
	vbi_sess_flush(c);
	c->want_writable = true;
	c->st.credit_waits++;
	return VB_EAGAIN;
}

int vbi_sess_reserve(struct vbi_conn *c, uint8_t kind, uint16_t topic_len,
		     uint32_t payload_len, void **topic, void **payload)
{
	struct vbi_frame_msg m = { 0 };
	size_t span, off;
	uint64_t len = vbi_frame_msg_len(topic_len, payload_len);
	uint8_t *f;
	int rc;

	if (c->state != VBI_SS_OPEN)
		return c->state == VBI_SS_CLOSED ? VB_ECLOSED : VB_ESTATE;
	if (c->reserved)
		return VB_ESTATE;
	if ((uint64_t)topic_len + payload_len > c->peer_max_msg)
		return VB_EMSGSIZE;
	span = vbi_frame_span((size_t)len);
	rc = vbi_ring_tx_reserve(&c->tx, span, &off, NULL);
	if (rc == VB_EAGAIN)
		return no_room(c);
	if (rc)
		return rc;
	f = c->stage_mem + off;
	m.kind = kind;
	m.topic_len = topic_len;
	m.payload_len = payload_len;
	m.seq = c->seq + 1;
	vbi_frame_put_hdr(f, span, &m);
	c->reserved = true;
	c->res_off = off;
	c->res_span = span;
	c->res_pos = c->tx.tail - span;
	*topic = f + VBI_FRAME_HDR_LEN;
	*payload = f + VBI_FRAME_HDR_LEN + topic_len;
	return VB_OK;
}

int vbi_sess_commit(struct vbi_conn *c)
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

int vbi_sess_send(struct vbi_conn *c, const void *topic, uint16_t tlen,
		  const void *payload, uint32_t plen)
{
	void *t, *p;
	int rc = vbi_sess_reserve(c, VBI_FRAME_MSG, tlen, plen, &t, &p);

	if (rc)
		return rc;
	if (tlen)
		memcpy(t, topic, tlen);
	if (plen)
		memcpy(p, payload, plen);
	c->st.bytes_copied += (uint64_t)tlen + plen;
	return vbi_sess_commit(c);
}

/*
 * A forward the transport cannot send from the source's ring: the topic
 * and payload are copied behind the header already in staging at @off,
 * and leave with it; no reference to the source is kept.
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

int vbi_sess_forward(struct vbi_conn *dst, struct vbi_conn *src,
		     const struct vbi_frame_view *v, uint32_t sid)
{
	struct vbi_frame_msg m = { 0 };
	uint64_t len = (uint64_t)v->topic_len + v->payload_len;
	struct vbi_fwd *f;
	uint8_t *frame;
	bool copy;
	size_t off;
	int rc;

	if (dst->state != VBI_SS_OPEN)
		return dst->state == VBI_SS_CLOSED ? VB_ECLOSED : VB_ESTATE;
	if (dst->reserved)
		return VB_ESTATE;
	frame = view_frame(src, v);
	if (!frame)
		return VB_EINVAL;
	if (len > dst->peer_max_msg)
		return VB_EMSGSIZE;
	copy = !dst->sops->can_gather(dst, src);
	if (!copy && dst->fwd_tail - dst->fwd_head >= FWD_MAX)
		goto out_full;
	rc = vbi_ring_tx_reserve(&dst->tx, v->span, &off, NULL);
	if (rc == VB_EAGAIN)
		goto out_full;
	if (rc)
		return rc;
	m.kind = v->kind; /* headers and all: the payload is copied whole */
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
	return no_room(dst);
}

int vbi_sess_fanout(struct vbi_conn *dst, struct vbi_conn *src, uint32_t sid)
{
	struct vbi_frame_msg m = { 0 };
	struct vbi_borrow *b;
	struct vbi_fwd *f;
	const uint8_t *frame;
	uint64_t len, pin = 0;
	size_t span, off;
	bool copy;
	int rc;

	if (dst->state != VBI_SS_OPEN)
		return dst->state == VBI_SS_CLOSED ? VB_ECLOSED : VB_ESTATE;
	if (dst->reserved)
		return VB_ESTATE;
	/* The last committed frame, unless its space was reused since. */
	if (src->reserved || !src->stage_mem || !src->res_span ||
	    src->tx.tail - src->res_pos > src->tx.size)
		return VB_EINVAL;
	frame = src->stage_mem + src->res_off;
	span = src->res_span;
	len = vbi_frame_get_len(frame) - VBI_FRAME_HDR_LEN;
	if (len > dst->peer_max_msg)
		return VB_EMSGSIZE;
	copy = len < FAN_GATHER_MIN || src->ops != dst->ops ||
	       !dst->sops->can_gather(dst, src) ||
	       dst->fwd_tail - dst->fwd_head >= FWD_MAX;
	if (!copy && !dst->borrows) {
		dst->borrows = calloc(FAN_MAX, sizeof(*dst->borrows));
		if (!dst->borrows)
			return VB_ENOMEM;
	}
	if (!copy && dst->borrow_tail - dst->borrow_head == FAN_MAX)
		copy = true;
	/* Pinned first: when @dst is @src, the reservation below must not
	 * take the frame's own space. */
	if (!copy) {
		rc = pin_take(src, src->res_pos, &pin);
		if (rc == VB_ENOMEM)
			return rc;
		copy = rc != VB_OK;
	}
	rc = vbi_ring_tx_reserve(&dst->tx, span, &off, NULL);
	if (rc) {
		if (!copy)
			pin_drop(src, pin);
		return rc == VB_EAGAIN ? no_room(dst) : rc;
	}
	m.kind = vbi_frame_get_kind(frame);
	m.topic_len = vbi_frame_get_topic_len(frame);
	m.payload_len = (uint32_t)(len - m.topic_len);
	m.seq = ++dst->seq;
	m.sid = sid;
	vbi_frame_put_hdr(dst->stage_mem + off, span, &m);
	dst->st.msgs_out++;
	dst->st.bytes_out += len;
	if (copy) {
		forward_copy(dst, off, frame, (size_t)len, span);
		return VB_OK;
	}
	f = &dst->fwd[dst->fwd_tail++ % FWD_MAX];
	memset(f, 0, sizeof(*f));
	f->src = src;
	f->start = dst->tx.tail - span;
	f->off = (uint32_t)src->res_off;
	f->span = (uint32_t)span;
	f->staged = true;
	b = &dst->borrows[dst->borrow_tail++ % FAN_MAX];
	b->src = src;
	b->start = f->start;
	b->pin = pin;
	b->off = f->off;
	b->span = f->span;
	dst->st.bytes_forwarded += len;
	return VB_OK;
}

int vbi_sess_unacked(struct vbi_conn *c, vbi_frame_fn fn, void *arg)
{
	uint64_t pos = c->tx.peer_freed, end = c->tx.tail, bi = c->borrow_head;
	struct vbi_frame_view v;
	int rc;

	if (!c->stage_mem || !c->tx.size)
		return VB_ESTATE;
	/* Forwards from rings: headers only, the bytes were gathered from
	 * rings that have them no more.  Fan-outs' bytes are still pinned. */
	if (c->fwd_tail != c->borrow_tail)
		return VB_EINVAL;
	if (c->reserved)
		end -= c->res_span; /* not a frame yet */
	while (pos < end) {
		size_t off = (size_t)(pos & (c->tx.size - 1));
		size_t avail = c->tx.size - off;

		if (end - pos < avail)
			avail = (size_t)(end - pos);
		rc = vbi_frame_parse(c->stage_mem, c->tx.size, off, avail,
				     UINT32_MAX, &v);
		if (rc)
			return VB_EPROTO; /* our own staging: cannot be */
		while (bi < c->borrow_tail &&
		       c->borrows[bi % FAN_MAX].start < pos)
			bi++;
		if (bi < c->borrow_tail &&
		    c->borrows[bi % FAN_MAX].start == pos) {
			const struct vbi_borrow *b = &c->borrows[bi % FAN_MAX];

			v.topic = (const char *)b->src->stage_mem + b->off +
				  VBI_FRAME_HDR_LEN;
			v.payload = v.topic + v.topic_len;
		}
		if (v.kind != VBI_FRAME_PAD) {
			rc = fn(arg, &v);
			if (rc)
				return rc;
		}
		pos += v.span;
	}
	return VB_OK;
}

int vbi_sess_unpin(struct vbi_conn *c)
{
	struct vbi_frame_view v;
	int n = 0;

	/* The forwards not yet posted are the newest: [fwd_post, fwd_tail). */
	while (c->fwd_tail > c->fwd_post) {
		struct vbi_fwd *f = &c->fwd[(c->fwd_tail - 1) % FWD_MAX];
		size_t off = (size_t)(f->start & (c->tx.size - 1));
		/* Our own header in staging says how much: not the peer's. */
		size_t len = vbi_frame_get_len(c->stage_mem + off) -
			     VBI_FRAME_HDR_LEN;
		uint8_t *frame;

		if (f->staged) {
			/* A fan-out: the body is copied, the pin goes. */
			struct vbi_borrow *b =
				&c->borrows[--c->borrow_tail % FAN_MAX];

			forward_copy(c, off,
				     VBI_FWD_BODY(f) - VBI_FRAME_HDR_LEN, len,
				     f->span);
			c->st.bytes_forwarded -= len;
			pin_drop(b->src, b->pin);
			c->fwd_tail--;
			n++;
			continue;
		}
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
	/* Those posted without a completion asked for: have them reported
	 * now. */
	c->sops->kick(c);
	return n;
}

int vbi_sess_send_ctrl(struct vbi_conn *c, const Verbus__Control *m)
{
	int rc;

	if (c->state != VBI_SS_OPEN)
		return c->state == VBI_SS_CLOSED ? VB_ECLOSED : VB_ESTATE;
	/* A control message must not overtake frames queued before it (a
	 * Ping is a barrier): they go first, or it waits for room. */
	vbi_sess_flush(c);
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

/* ---- receiving --------------------------------------------------------- */

void vbi_sess_writable(struct vbi_conn *c)
{
	if (c->want_writable && c->state == VBI_SS_OPEN) {
		c->want_writable = false;
		if (c->cbs.writable)
			c->cbs.writable(c, c->arg);
	}
}

void vbi_sess_ctrl_sent(struct vbi_conn *c)
{
	if (c->refusing) {
		/* vbi_sess_fail() formats into c->why.reason: not from it. */
		char reason[sizeof(c->why.reason)];

		memcpy(reason, c->why.reason, sizeof(reason));
		vbi_sess_fail(c, c->why.err, "%s", reason);
		return;
	}
	vbi_sess_writable(c);
}

static void apply_acks(struct vbi_conn *c, uint32_t recvs, uint32_t freed)
{
	uint64_t before = c->tx.peer_freed;
	uint32_t credits = c->cr.recv_credits;

	if (vbi_credit_grant(&c->cr, recvs) ||
	    vbi_ring_tx_credit(&c->tx, freed)) {
		vbi_sess_fail(c, VB_EPROTO,
			      "peer returned credits it never had");
		return;
	}
	if (c->tx.peer_freed != before)
		borrows_return(c, false);
	if (c->tx.peer_freed != before || c->cr.recv_credits != credits) {
		c->st.progress++;
		vbi_sess_writable(c);
	}
}

static void conn_open(struct vbi_conn *c)
{
	char tag[32];

	c->state = VBI_SS_OPEN;
	c->sops->tag(c, tag, sizeof(tag));
	vbi_info("conn %s %s open: ring %u, peer ring %u", c->name, tag,
		 c->opts.ring_size, c->peer_ring);
	if (c->cbs.open)
		c->cbs.open(c, c->arg);
}

/*
 * Turn a client away after its Hello: an Error {@err, @reason} goes back
 * (so that it can report why), and the connection closes once that has
 * left (or at once if it cannot be sent).  Nothing else is answered
 * meanwhile: the client never learns our ring.
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
		vbi_sess_fail(c, err, "refused: %s", reason);
}

/*
 * The session's memory could not be set up after a Hello (@what failed):
 * said in the log, with the transport's sentence if it has one (the
 * locked-memory limit), and the client turned away with a reason of its
 * own, rather than a bare disconnect it could only guess about.
 */
static void refuse_setup(struct vbi_conn *c, int err, const char *what)
{
	char label[96], tag[32];

	c->sops->tag(c, tag, sizeof(tag));
	vbi_warn("conn %s %s: refused: cannot set up the session's %s (%s)",
		 vbi_sess_label(c, label, sizeof(label)), tag, what,
		 vb_strerror(err));
	refuse(c, err,
	       err == VB_ENOMEM ?
		       "the broker cannot register memory for this "
		       "connection now (see its log)" :
		       "the broker cannot set up this connection (see its "
		       "log)");
}

static void on_hello(struct vbi_conn *c, const Verbus__Hello *h)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__Welcome w = VERBUS__WELCOME__INIT;
	Verbus__RingInfo r = VERBUS__RING_INFO__INIT;
	const char *what;
	int rc;

	if (h->version != VBI_PROTO_VERSION) {
		vbi_sess_fail(c, VB_EVERSION, "client speaks version %u",
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
		c->hello_ring = h->ring ? h->ring->size : 0;
		rc = c->cbs.authorize(c, c->cred, c->cred_len, c->arg);
		if (rc) {
			refuse(c, rc,
			       c->refusal[0] ? c->refusal : "not authorized");
			return;
		}
	}
	rc = setup_stage(c, h->ring, h->max_msg_size, h->credits, &what);
	c->peer_max_payload = h->max_payload;
	if (rc && !what) {
		vbi_sess_fail(c, rc, "unusable hello");
		return;
	}
	if (rc == VB_OK)
		rc = vbi_sess_setup(c, &what);
	if (rc) {
		refuse_setup(c, rc, what);
		return;
	}
	c->sops->ring_info(c, &r);
	w.version = VBI_PROTO_VERSION;
	w.session_id = ((uint64_t)(uint32_t)rand() << 32) | (uint32_t)rand();
	w.ring = &r;
	w.credits = c->opts.recv_depth;
	w.max_msg_size = c->opts.max_msg;
	w.max_payload = c->opts.max_payload;
	w.server_version = (char *)vb_version();
	m.body_case = VERBUS__CONTROL__BODY_WELCOME;
	m.welcome = &w;
	rc = send_ctrl(c, &m, false, false);
	if (rc) {
		vbi_sess_fail(c, rc, "cannot send welcome");
		return;
	}
	conn_open(c);
}

void vbi_sess_established(struct vbi_conn *c)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__Hello h = VERBUS__HELLO__INIT;
	Verbus__RingInfo r = VERBUS__RING_INFO__INIT;
	int rc;

	c->state = VBI_SS_HANDSHAKE;
	if (c->server)
		return; /* the client speaks first */
	c->sops->ring_info(c, &r);
	h.version = VBI_PROTO_VERSION;
	h.name = c->name;
	h.credentials.data = c->cred;
	h.credentials.len = c->cred_len;
	h.ring = &r;
	h.max_msg_size = c->opts.max_msg;
	h.max_payload = c->opts.max_payload;
	h.credits = c->opts.recv_depth;
	m.body_case = VERBUS__CONTROL__BODY_HELLO;
	m.hello = &h;
	rc = send_ctrl(c, &m, false, false);
	if (rc)
		vbi_sess_fail(c, rc, "cannot send hello");
}

/* Keep control message @m until the frames before it have been handed up
 * (replay_ctrl). */
static int defer_ctrl(struct vbi_conn *c, Verbus__Control *m)
{
	if (!c->deferred) {
		c->deferred = calloc(DEFER_MAX, sizeof(*c->deferred));
		if (!c->deferred) {
			vbi_sess_fail(c, VB_ENOMEM,
				      "cannot hold a control message");
			return VB_ENOMEM;
		}
	}
	if (c->ndeferred == DEFER_MAX) {
		vbi_sess_fail(c, VB_EPROTO,
			      "too many control messages while paused");
		return VB_ENOSPC;
	}
	c->deferred[c->ndeferred].m = m;
	c->deferred[c->ndeferred].at = c->rx.written;
	c->ndeferred++;
	return VB_OK;
}

/* Whether the oldest held control message is due: every frame that came
 * before it handed up, and none after it yet. */
static bool ctrl_due(const struct vbi_conn *c)
{
	return c->ndeferred && c->rx.head >= c->deferred[0].at;
}

/* Hand up the oldest held control message. */
static void replay_one(struct vbi_conn *c)
{
	Verbus__Control *m = c->deferred[0].m;

	c->ndeferred--;
	memmove(c->deferred, c->deferred + 1,
		c->ndeferred * sizeof(*c->deferred));
	if (c->cbs.control)
		c->cbs.control(c, m, c->arg);
	vbi_codec_free(m);
}

/* Hand up the control messages held behind frames, once those are out
 * (each in its place: before the frames that came after it). */
static void replay_ctrl(struct vbi_conn *c)
{
	while (c->state == VBI_SS_OPEN && !c->paused && ctrl_due(c))
		replay_one(c);
}

/*
 * The peer sent an Error: it is closing, and says why.  Its code becomes
 * our close error if it is one of ours; its reason goes to the log
 * escaped, always (even when the code says an orderly close: a peer that
 * leaves before its Hello is worth a line).
 */
static void on_error(struct vbi_conn *c, const Verbus__Error *e)
{
	char reason[VBI_LOG_ESCAPE_MAX], label[96], tag[32];
	int err = e->code > 0 && e->code <= (uint32_t)-VB_ESYS ? -(int)e->code :
								 VB_EPROTO;
	const char *when =
		c->state == VBI_SS_OPEN ? "" : " before the handshake";

	vbi_log_escape(reason, sizeof(reason), e->reason, strlen(e->reason));
	if (err == VB_ECLOSED) {
		c->sops->tag(c, tag, sizeof(tag));
		vbi_warn("conn %s %s: peer sent an error%s: %s",
			 vbi_sess_label(c, label, sizeof(label)), tag, when,
			 reason);
	}
	vbi_sess_fail(c, err, "peer sent an error%s: %s", when, reason);
}

static void on_ctrl(struct vbi_conn *c, const uint8_t *buf, uint32_t len)
{
	Verbus__Control *m = NULL;
	const char *what;
	int rc;

	if (c->refusing)
		return; /* turned away: nothing more is answered */
	rc = vbi_codec_decode(buf, len, &m);
	if (rc) {
		vbi_sess_fail(c, rc, "malformed control message (%u bytes)",
			      len);
		return;
	}
	switch (m->body_case) {
	case VERBUS__CONTROL__BODY_HELLO:
		/* It may arrive before the transport says it is connected. */
		if (!c->server || (c->state != VBI_SS_HANDSHAKE &&
				   c->state != VBI_SS_CONNECTING))
			goto unexpected;
		on_hello(c, m->hello);
		break;
	case VERBUS__CONTROL__BODY_WELCOME:
		if (c->server || c->state != VBI_SS_HANDSHAKE)
			goto unexpected;
		if (m->welcome->version != VBI_PROTO_VERSION) {
			vbi_sess_fail(c, VB_EVERSION,
				      "server speaks version %u",
				      m->welcome->version);
			break;
		}
		rc = setup_stage(c, m->welcome->ring, m->welcome->max_msg_size,
				 m->welcome->credits, &what);
		c->peer_max_payload = m->welcome->max_payload;
		if (rc) {
			if (what)
				vbi_sess_fail(c, rc,
					      "cannot set up the session's %s",
					      what);
			else
				vbi_sess_fail(c, rc, "unusable welcome");
			break;
		}
		/* The peer's text, bounded by the codec: escaped once here,
		 * so that whoever shows it shows no control character. */
		vbi_log_escape(c->peer_version, sizeof(c->peer_version),
			       m->welcome->server_version,
			       strlen(m->welcome->server_version));
		conn_open(c);
		break;
	case VERBUS__CONTROL__BODY_CREDIT:
		if (c->state != VBI_SS_OPEN)
			goto unexpected;
		apply_acks(c, m->credit->recvs, m->credit->freed);
		break;
	case VERBUS__CONTROL__BODY_ERROR:
		on_error(c, m->error);
		break;
	default:
		/* Every other kind (the codec lets through only the kinds it
		 * knows, each checked) is the layer above's business, in
		 * order with the frames that came before it: while those
		 * are held (paused), so is it. */
		if (c->state != VBI_SS_OPEN)
			goto unexpected;
		if (c->paused || c->ndeferred) {
			if (defer_ctrl(c, m) == VB_OK)
				return; /* kept: freed after its replay */
			break;
		}
		if (c->cbs.control)
			c->cbs.control(c, m, c->arg);
		break;
	}
	vbi_codec_free(m);
	return;
unexpected:
	vbi_sess_fail(c, VB_EPROTO, "unexpected %s %s", vbi_codec_kind_name(m),
		      c->state == VBI_SS_OPEN ? "on an open connection" :
						"during the handshake");
	vbi_codec_free(m);
}

void vbi_sess_on_ctrl(struct vbi_conn *c, const uint8_t *buf, uint32_t len)
{
	/* Frames that arrived before it are handed up first: a control
	 * message (a Ping, say) follows them, as on the wire. */
	vbi_sess_deliver(c);
	if (c->state == VBI_SS_CLOSED)
		return;
	on_ctrl(c, buf, len);
}

int vbi_sess_arrived(struct vbi_conn *c, uint32_t len)
{
	if (c->state != VBI_SS_OPEN) {
		vbi_sess_fail(c, VB_EPROTO, "data before the handshake");
		return VB_EPROTO;
	}
	if (vbi_ring_rx_arrived(&c->rx, len)) {
		vbi_sess_fail(c, VB_EPROTO,
			      "peer wrote %u bytes it had no room for", len);
		return VB_EPROTO;
	}
	return VB_OK;
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

void vbi_sess_deliver(struct vbi_conn *c)
{
	struct vbi_frame_view v;
	unsigned n = 0;
	int rc;

	while (c->state == VBI_SS_OPEN && !c->paused) {
		/* A control message held behind earlier frames goes before
		 * the frames that came after it. */
		if (ctrl_due(c)) {
			replay_one(c);
			continue;
		}
		rc = vbi_ring_rx_next(&c->rx, c->opts.max_msg, &v);
		if (rc == VB_EAGAIN)
			return;
		if (rc) {
			vbi_sess_fail(c, VB_EPROTO,
				      "corrupt frame in ring at %llu",
				      (unsigned long long)c->rx.head);
			return;
		}
		apply_acks(c, v.ack_recvs, v.ack_freed);
		if (c->state != VBI_SS_OPEN)
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
		if (++n % 64 == 0 && c->state == VBI_SS_OPEN)
			credit_maybe(c);
	}
}

void vbi_sess_after(struct vbi_conn *c)
{
	if (c->state != VBI_SS_OPEN)
		return;
	/* Messages that waited while we were paused, then the control
	 * messages that came after them. */
	if (!c->paused && c->rx.head != c->rx.written)
		vbi_sess_deliver(c);
	if (c->ndeferred)
		replay_ctrl(c);
	if (c->state != VBI_SS_OPEN)
		return;
	/* Frames first: they may carry the acks a Credit would. */
	vbi_credit_note_freed(&c->cr, c->rx.freed);
	vbi_sess_flush(c);
	if (c->state == VBI_SS_OPEN)
		credit_maybe(c);
	if (c->pin_moved) {
		c->pin_moved = false;
		vbi_sess_writable(c);
	}
}

bool vbi_sess_pins(const struct vbi_conn *c)
{
	/* It blocks only with more than ring - max frame >= ring / 2
	 * outstanding, of which less than a quarter can be freed and
	 * unreturned (vbi_credit_should_return). */
	if (c->state == VBI_SS_CLOSED)
		return c->refs_out != 0;
	return c->state == VBI_SS_OPEN &&
	       c->rx.written - c->rx.freed > c->opts.ring_size / 4;
}

bool vbi_sess_deadline(struct vbi_conn *c, uint64_t now_ms)
{
	if (!c->hs_deadline || c->state == VBI_SS_OPEN ||
	    c->state == VBI_SS_CLOSED || now_ms < c->hs_deadline)
		return false;
	vbi_sess_fail(c, VB_ETIMEDOUT, "handshake timeout: no %s within %u ms",
		      c->named ? "admission" : "hello",
		      c->opts.handshake_timeout_ms);
	return true;
}

/* ---- the rest of the ops ----------------------------------------------- */

const char *vbi_sess_name(const struct vbi_conn *c)
{
	return c->name;
}

const void *vbi_sess_credentials(const struct vbi_conn *c, size_t *len)
{
	*len = c->cred_len;
	return c->cred;
}

void vbi_sess_refusal(struct vbi_conn *c, const char *reason)
{
	snprintf(c->refusal, sizeof(c->refusal), "%s", reason);
}

void vbi_sess_pause(struct vbi_conn *c, int paused)
{
	c->paused = paused != 0;
}

void vbi_sess_close(struct vbi_conn *c)
{
	if (c)
		vbi_sess_fail(c, VB_ECLOSED, "closed locally");
}

void vbi_sess_close_error(struct vbi_conn *c, int err, const char *reason)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__Error e = VERBUS__ERROR__INIT;

	if (!c || c->state == VBI_SS_CLOSED || c->refusing)
		return;
	if (c->state != VBI_SS_OPEN) {
		vbi_sess_fail(c, VB_ECLOSED, "closed locally: %s", reason);
		return;
	}
	e.code = (uint32_t)-err;
	e.reason = (char *)reason;
	m.body_case = VERBUS__CONTROL__BODY_ERROR;
	m.error = &e;
	/* Frames staged before it go first, as for any control message. */
	vbi_sess_flush(c);
	c->why.err = VB_ECLOSED;
	snprintf(c->why.reason, sizeof(c->why.reason), "closed locally: %s",
		 reason);
	if (c->tx.flushed == c->tx.tail &&
	    send_ctrl(c, &m, true, true) == VB_OK)
		c->refusing = true; /* closes once it has left */
	else
		vbi_sess_fail(c, VB_ECLOSED, "closed locally: %s", reason);
}

void vbi_sess_stats(const struct vbi_conn *c, struct vbi_conn_stats *s)
{
	*s = c->st;
	s->fwd_pending = c->fwd_tail - c->fwd_head;
	s->tx_waiting = c->tx.tail - c->tx.flushed;
	s->recv_credits = c->cr.recv_credits;
	s->refs_out = c->refs_out;
	s->ring_size = c->opts.ring_size;
	s->peer_ring = c->peer_ring ? c->peer_ring : c->hello_ring;
	s->peer_max_msg = c->peer_max_msg;
	s->peer_max_payload = c->peer_max_payload;
	s->tx_staged = c->tx.tail;
	s->tx_posted = c->tx.flushed;
	memcpy(s->peer_version, c->peer_version, sizeof(s->peer_version));
}

void vbi_sess_set_arg(struct vbi_conn *c, void *arg)
{
	c->arg = arg;
}
