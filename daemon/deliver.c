/*
 * deliver.c - routing a published frame and delivering it.
 *
 * Decisions a reader must know:
 *  - A published frame is not copied within a device.  It stays in the
 *    publisher's receive ring on the broker; each matching subscription gets
 *    a vbi_conn_forward() (the device gathers the payload from that ring;
 *    to a subscriber on another device the transport copies it) and the
 *    broker drops its own reference at once.  The frame's space, and so
 *    the publisher's credit, comes back when the last write reading it has
 *    completed.  A forward that fails is counted, logged once per
 *    connection and reported to the subscriber as dropped: never silent.
 *  - A subscriber without room (its ring or forward queue full) gets the
 *    slow-consumer policy.  block: the delivery waits in the subscriber's
 *    pending queue holding a reference to the frame, in order.  Once that
 *    queue is pending_max deep, the publisher is paused (its frames stay
 *    in its ring, so it runs out of room and sees VB_EAGAIN) until the
 *    queue drains to half: backpressure, nothing lost.  A subscriber that
 *    makes no progress for block_timeout_ms gets the fallback.  drop:
 *    counted, and the subscriber is told with a Dropped message.
 *    disconnect: the subscriber is closed.  Once a subscriber has pending
 *    deliveries, new ones queue behind them so that per-publisher order
 *    holds.  A route always queues and is shed, never closed, when it
 *    stalls; what it loses is reported to its peer (route.c), whose
 *    bk_route_dropped() tells its own subscribers.
 *  - Nothing is allocated per message: the match result and the pending
 *    queues grow to their high-water mark and stay.
 */
#include "daemon/broker_int.h"

#include "core/chunk.h"
#include "core/clock.h"
#include "core/header.h"
#include "core/log.h"

#include <verbus/verbus.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- delivery ---------------------------------------------------------- */

static int pend_grow(struct bconn *bc)
{
	size_t cap = bc->pend_cap ? bc->pend_cap * 2 : 64, i;
	struct pend *p;

	if (cap > bc->b->cfg.pending_max + PEND_SLACK)
		cap = bc->b->cfg.pending_max + PEND_SLACK;
	if (cap <= bc->pend_cap)
		return VB_ENOSPC;
	p = malloc(cap * sizeof(*p));
	if (!p)
		return VB_ENOMEM;
	for (i = 0; i < bc->pend_n; i++)
		p[i] = bc->pend[(bc->pend_head + i) % bc->pend_cap];
	free(bc->pend);
	bc->pend = p;
	bc->pend_cap = cap;
	bc->pend_head = 0;
	return VB_OK;
}

/* Queue a delivery behind the others (block policy); takes a reference. */
static int pend_push(struct bconn *bc, struct vbi_conn *src,
		     const struct vbi_frame_view *v, uint32_t sid)
{
	struct pend *p;
	int rc;

	if (bc->pend_n == bc->pend_cap) {
		rc = pend_grow(bc);
		if (rc)
			return rc;
	}
	rc = vbi_conn_hold(src, v);
	if (rc)
		return rc;
	p = &bc->pend[(bc->pend_head + bc->pend_n++) % bc->pend_cap];
	p->src = src;
	p->v = *v;
	p->sid = sid;
	p->abort_tag = 0;
	bc->pend_pushed++;
	if (!bc->blocked_since)
		bc->blocked_since = vbi_clock_coarse_ms();
	return VB_OK;
}

/* Let every paused publisher go on (those still blocked pause again). */
void bk_resume_publishers(struct vbd_broker *b)
{
	struct bconn *bc;

	if (b->npaused == 0)
		return;
	for (bc = b->head; bc; bc = bc->next) {
		if (bc->paused) {
			bc->paused = false;
			vbi_conn_pause(bc->c, 0);
		}
	}
	b->npaused = 0;
}

static void pend_pop(struct bconn *bc)
{
	struct pend *p = &bc->pend[bc->pend_head];

	if (p->src)
		vbi_conn_release(p->src, &p->v);
	bc->pend_head = (bc->pend_head + 1) % bc->pend_cap;
	if (--bc->pend_n == 0)
		bc->blocked_since = 0;
	if (bc->pend_n == bc->b->cfg.pending_max / 2)
		bk_resume_publishers(bc->b);
}

/* @n deliveries to @s are lost: its subscriber is told (subs.c). */
static void sub_owe(struct bsub *s, uint64_t n)
{
	s->dropped += n;
	s->dropped_owed = true;
	s->bc->drops_owed = true;
}

/* A delivery of @v to @bc's subscription @sid is lost: the subscriber is
 * told with a Dropped notice; a route's peer, with a Dropped naming the
 * subject, for the subscribers behind it (route.c). */
static void owe_dropped(struct bconn *bc, const struct vbi_frame_view *v,
			uint32_t sid)
{
	struct bsub *s;

	bc->drops++;
	if (bc->role == BK_ROUTE) {
		bk_route_lost(bc, v, sid);
		return;
	}
	s = bk_sub_find(bc, sid);
	if (s)
		sub_owe(s, 1);
}

static void count_drop(struct bconn *bc, const struct vbi_frame_view *v,
		       uint32_t sid)
{
	bc->b->st.drops++;
	owe_dropped(bc, v, sid);
}

/* What a failed vbi_conn_forward() means, for the log. */
static const char *forward_error(int rc)
{
	switch (rc) {
	case VB_EMSGSIZE:
		return "the message is larger than the subscriber takes";
	case VB_ECLOSED:
	case VB_ESTATE:
		return "the subscriber's connection is not open";
	case VB_EINVAL:
		return "the publisher's frame is no longer held";
	default:
		return vb_strerror(rc);
	}
}

/*
 * A forward to @bc for @sid failed with @rc (not VB_EAGAIN): the delivery
 * is lost.  Counted (verbus_forward_failures_total), the subscriber told,
 * and logged once per connection, so that no loss is silent and no
 * subscriber floods the log.
 */
static void forward_failed(struct bconn *bc, const struct vbi_frame_view *v,
			   uint32_t sid, int rc)
{
	struct bsub *s;
	char why[200];

	bc->b->st.forward_failures++;
	owe_dropped(bc, v, sid);
	/* Too large for it: the Dropped count says how many, and a Notice,
	 * once per subscription, says why (not a slow consumer). */
	if (rc == VB_EMSGSIZE && bc->role == BK_CLIENT &&
	    (s = bk_sub_find(bc, sid)) && !s->too_big_told) {
		struct vbi_conn_stats cs;

		vbi_conn_stats(bc->c, &cs);
		s->too_big_told = true;
		if (bc->b->collect)
			snprintf(why, sizeof(why),
				 "a large message of %u bytes was dropped: "
				 "this connection takes %u at most (its "
				 "max_payload); later ones are counted as "
				 "dropped",
				 (unsigned)bc->b->collect->total,
				 (unsigned)cs.peer_max_payload);
		else
			snprintf(why, sizeof(why),
				 "a message of %u bytes (subject and data) "
				 "was dropped: this connection takes %u at "
				 "most; later ones are counted as dropped",
				 (unsigned)(v->topic_len + v->payload_len),
				 (unsigned)cs.peer_max_msg);
		bk_send_notice(bc, VB_EMSGSIZE, sid, 0, why);
	}
	if (bc->fwd_fail_logged)
		return;
	bc->fwd_fail_logged = true;
	vbi_warn("conn cid %" PRIu64 " %s: a delivery to sid %u failed: %s "
		 "(%s); this and later failures on the connection are counted "
		 "in verbus_forward_failures_total",
		 bc->cid, bc->name, sid, forward_error(rc), vb_strerror(rc));
}

/* Drop every pending delivery (the fallback, or the subscriber left). */
void bk_pend_drop_all(struct bconn *bc, bool count)
{
	while (bc->pend_n) {
		if (count && bc->pend[bc->pend_head].src)
			count_drop(bc, &bc->pend[bc->pend_head].v,
				   bc->pend[bc->pend_head].sid);
		pend_pop(bc);
	}
}

void bk_slow_disconnect(struct bconn *bc, const char *why)
{
	if (bc->closing)
		return;
	vbi_warn("conn cid %" PRIu64 " %s: slow consumer disconnected: %s",
		 bc->cid, bc->name, why);
	bc->b->st.slow_disconnects++;
	bc->closing = true;
	bk_pend_drop_all(bc, true);
	bk_resume_publishers(bc->b);
	vbi_conn_close(bc->c);
}

/* A delivery made: its bytes, and a message unless it is a chunk (a
 * large message counts once, when its first chunk is routed: stream.c). */
static void count_out(struct bconn *bc, const struct vbi_frame_view *v)
{
	unsigned msg = v->kind != VBI_FRAME_CHUNK;

	bc->msgs_out += msg;
	bc->bytes_out += v->topic_len + v->payload_len;
	if (bc->acct) {
		bc->acct->msgs_out += msg;
		bc->acct->bytes_out += v->topic_len + v->payload_len;
	}
	bc->b->st.msgs_out += msg;
	bc->b->st.bytes_out += v->topic_len + v->payload_len;
}

/* An ABORT of stream @tag for @sid, from our staging (core/chunk.h): no
 * topic, no data, the offset where @bc's copy stopped. */
static int send_abort(struct bconn *bc, uint32_t sid, uint64_t tag,
		      uint32_t total, uint32_t off)
{
	struct vbi_chunk ck = {
		.tag = tag, .total = total, .off = off, .flags = VBI_CHUNK_ABORT
	};
	void *t, *p;
	int rc = vbi_conn_reserve_kind(bc->c, VBI_FRAME_CHUNK, 0,
				       VBI_CHUNK_PREFIX_LEN, &t, &p);

	if (rc)
		return rc;
	vbi_chunk_put(p, &ck);
	vbi_frame_set_sid((uint8_t *)t - VBI_FRAME_HDR_LEN, sid);
	return vbi_conn_commit(bc->c);
}

void bk_owe_abort(struct bconn *dst, uint32_t sid, const struct bstream *st,
		  uint32_t off)
{
	struct pend *p;

	/* Shed, it takes nothing: an ABORT queued would only get it closed
	 * (bk_stall_check); its library drops the partial message when it
	 * needs the room (docs/PROTOCOL.md). */
	if (dst->closing || dst->shed)
		return;
	if (!dst->pend_n &&
	    send_abort(dst, sid, st->tag, st->total, off) != VB_EAGAIN)
		return;
	if (dst->pend_n == dst->pend_cap && pend_grow(dst))
		return; /* its library times the message out */
	p = &dst->pend[(dst->pend_head + dst->pend_n++) % dst->pend_cap];
	memset(p, 0, sizeof(*p));
	p->sid = sid;
	p->abort_tag = st->tag;
	p->abort_total = st->total;
	p->abort_off = off;
	dst->pend_pushed++;
	if (!dst->blocked_since)
		dst->blocked_since = vbi_clock_coarse_ms();
}

/* Forward what waits, in order, while there is room. */
void bk_pend_flush(struct bconn *bc)
{
	while (bc->pend_n && !bc->closing) {
		struct pend *p = &bc->pend[bc->pend_head];
		int rc;

		/* A DirectFence goes between the deliveries queued before it
		 * and those after (direct.c). */
		if (bc->direct && bk_direct_fence_waits(bc))
			return;

		if (!p->src) {
			rc = send_abort(bc, p->sid, p->abort_tag,
					p->abort_total, p->abort_off);
			if (rc == VB_EAGAIN)
				return;
			bc->blocked_since = vbi_clock_coarse_ms();
			pend_pop(bc);
			continue;
		}
		rc = vbi_conn_forward(bc->c, p->src, &p->v, p->sid);
		if (rc == VB_EAGAIN)
			return;
		/* Progress: the no-progress timer starts again. */
		bc->blocked_since = vbi_clock_coarse_ms();
		if (rc == VB_OK) {
			count_out(bc, &p->v);
		} else {
			/* Counted as delivered when it was queued. */
			struct bsub *s = bk_sub_find(bc, p->sid);

			if (s && s->delivered)
				s->delivered--;
			forward_failed(bc, &p->v, p->sid, rc);
		}
		pend_pop(bc);
	}
}

/* The subscriber had no room for a delivery of @pub's frame: apply the
 * policy.  Returns true if the delivery was queued (block), false if it
 * was dropped or the subscriber disconnected. */
static bool slow(struct bconn *dst, struct bconn *pub,
		 const struct vbi_frame_view *v, uint32_t sid, bool first)
{
	struct vbi_conn *src = pub->c;
	struct vbd_broker *b = dst->b;
	/* A route always queues (stall detection sheds it, never closes
	 * it): dropping or disconnecting at once would cost every
	 * subscriber behind it for one busy moment. */
	enum vbd_slow_policy p =
		dst->role == BK_ROUTE ? VBD_SLOW_BLOCK : b->cfg.slow_policy;

	if (first)
		dst->waits++;
	if (!dst->slow_counted) {
		dst->slow_counted = true;
		b->st.slow_consumers++;
	}
	if (p == VBD_SLOW_BLOCK) {
		if (pend_push(dst, src, v, sid) == VB_OK) {
			/* Deep enough: hold the publisher back. */
			if (dst->pend_n >= b->cfg.pending_max && !pub->paused) {
				pub->paused = true;
				b->npaused++;
				vbi_conn_pause(src, 1);
			}
			return true;
		}
		/* Beyond even the slack. */
		p = dst->role == BK_ROUTE ? VBD_SLOW_DROP :
					    b->cfg.block_fallback;
	}
	if (p == VBD_SLOW_DISCONNECT)
		bk_slow_disconnect(dst, "no room for a delivery");
	else
		count_drop(dst, v, sid);
	return false;
}

/* One delivery as @sid to @dst. */
static bool deliver_to(struct bconn *dst, struct bconn *pub,
		       const struct vbi_frame_view *v, uint32_t sid)
{
	int rc;

	if (dst->shed) {
		/* It takes nothing: its deliveries are dropped until it
		 * does, rather than pinning the publisher (tick). */
		count_drop(dst, v, sid);
		return false;
	}
	if (dst->pend_n || (dst->direct && bk_direct_fence_waits(dst)))
		return slow(dst, pub, v, sid, false);
	rc = vbi_conn_forward(dst->c, pub->c, v, sid);
	if (rc == VB_OK) {
		count_out(dst, v);
		return true;
	}
	if (rc == VB_EAGAIN)
		return slow(dst, pub, v, sid, true);
	forward_failed(dst, v, sid, rc);
	return false;
}

/*
 * Whether @dst takes the large message whose first chunk is being routed
 * (b->collect): its max_payload, from its handshake.  If not, the delivery
 * is lost as a forward too large for it would be (counted, the subscriber
 * told once per subscription), before any chunk goes.
 */
static bool large_fits(struct bconn *dst, const struct vbi_frame_view *v,
		       uint32_t sid)
{
	struct vbi_conn_stats cs;

	vbi_conn_stats(dst->c, &cs);
	if (dst->b->collect->total <= cs.peer_max_payload)
		return true;
	forward_failed(dst, v, sid, VB_EMSGSIZE);
	return false;
}

/* One delivery as @sid to @dst (broker_int.h); a large message's first
 * chunk records where it went (stream.c). */
bool bk_deliver_to(struct bconn *dst, struct bconn *pub,
		   const struct vbi_frame_view *v, uint32_t sid)
{
	struct bstream *st = dst->b->collect;

	if (dst->closing)
		return false;
	if (!st)
		return deliver_to(dst, pub, v, sid);
	if (!large_fits(dst, v, sid) || !deliver_to(dst, pub, v, sid))
		return false;
	bk_stream_record(st, dst, sid);
	return true;
}

/* One delivery of @pub's frame @v to subscription @s. */
static void deliver(struct bsub *s, struct bconn *pub,
		    const struct vbi_frame_view *v)
{
	/* delivered counts what was delivered or queued to be: what the
	 * policy dropped or a failed forward lost is not. */
	if (bk_deliver_to(s->bc, pub, v, s->sid))
		s->delivered++;
	/* A large message's subscription ends after its last chunk
	 * (stream.c), not at its first. */
	if (s->max_msgs && s->delivered >= s->max_msgs && !s->bc->b->collect)
		bk_sub_free(s->bc->b, s);
}

/* Whether local subscription @s is one a route's sid means (the queue
 * group @q of @qlen bytes that bk_interest_of() gave): NULL, a plain
 * subscriber; else a member of that group. */
static bool route_sid_wants(const struct bsub *s, const char *q, size_t qlen)
{
	if (!q)
		return s->s.queue == NULL;
	return s->s.queue && s->s.queue_len == qlen &&
	       memcmp(s->s.queue, q, qlen) == 0;
}

/*
 * What a published message's subject and reply subject mean for its local
 * deliveries (daemon/inbox.h): under an inbox, only the connections that
 * proved its id get it; with a reply subject, each responder it reaches
 * may publish there.  Both NULL on the common path.
 */
struct guard {
	const char *owner; /* the inbox id the subject is under */
	size_t olen;
	const char *reply; /* a reply subject to grant (responders exist) */
	size_t rlen;
	/* A request of another account's client, come over a route through
	 * a service that account imports: its responders' grants send their
	 * replies into @to, as @exp says (route_service_to()). */
	struct bacct *to;
	const struct vbd_export *exp;
};

/* Whether local subscription @s may get the message @g describes; a
 * responder among them gets its grant to reply. */
static bool guard_pass(const struct guard *g, struct bsub *s)
{
	struct bconn *bc = s->bc;
	uint32_t max, ms;

	if (g->owner && !vbd_inbox_is(bc->inbox_id, g->owner, g->olen))
		return false;
	/* Out of memory: its reply is refused, and it is told. */
	if (g->reply && g->to)
		vbd_grants_add(
			&bc->grants, g->reply, g->rlen, g->exp->responses,
			g->exp->response_ms ?
				vbi_clock_coarse_ms() + g->exp->response_ms :
				0,
			g->to);
	else if (g->reply && vbd_user_responses(bc->user, &max, &ms))
		vbd_grants_add(&bc->grants, g->reply, g->rlen, max,
			       ms ? vbi_clock_coarse_ms() + ms : 0, NULL);
	return true;
}

/*
 * The message @v from @pub, published in account @a on a subject of
 * @slen bytes with reply subject @reply (NULL: none), where it crosses to
 * other accounts (bacct.c): to the subscribers of each account importing
 * a stream of @a that covers the subject, and of each account exporting
 * a service @a imports that covers it, whose responders may then reply
 * into @a (a grant each, as the export says).  Each account once, @a's
 * own subscribers already served; inbox subjects never cross (the
 * configuration refuses patterns under _INBOX, and a wider one, ">",
 * must not carry a reply into another account's inbox).  Returns the
 * deliveries made.
 */
static size_t route_crossings(struct bconn *pub, struct bacct *a,
			      const struct vbi_frame_view *v, size_t slen,
			      const char *reply, size_t rlen)
{
	struct vbd_broker *b = pub->b;
	uint64_t gen = ++b->acct_gen;
	size_t i, j, olen, n = 0;

	if (vbd_inbox_owner(v->topic, slen, &olen))
		return 0;
	a->gen = gen;
	for (i = 0; i < a->nstreams_out + a->nservices_in; i++) {
		bool svc = i >= a->nstreams_out;
		const struct bxport *x =
			svc ? &a->services_in[i - a->nstreams_out] :
			      &a->streams_out[i];
		uint32_t ms;

		if (x->acct->gen == gen ||
		    !vbi_pattern_covers(x->pattern, x->plen, v->topic, slen))
			continue;
		x->acct->gen = gen;
		if (vbi_sublist_match_valid(x->acct->sl, v->topic, slen,
					    &b->match))
			continue;
		/* Over routes first, as for the publisher's own account:
		 * the forwards read the local match's queue groups. */
		n += bk_routes_forward(b, pub, x->acct, v, slen, &b->match);
		ms = svc ? x->exp->response_ms : 0;
		for (j = 0; j < b->match.n; j++) {
			struct bsub *s = b->match.subs[j]->owner;

			/* Out of memory: its reply is refused, and it is
			 * told. */
			if (svc && reply)
				vbd_grants_add(
					&s->bc->grants, reply, rlen,
					x->exp->responses,
					ms ? vbi_clock_coarse_ms() + ms : 0, a);
			deliver(s, pub, v);
			n++;
		}
	}
	return n;
}

/*
 * A request that came over a route in account @a, on subject @subj (@slen
 * bytes) with reply subject @reply: if @a exports a service covering it
 * that other accounts import, the importing account whose subscribers,
 * here or behind a route, would get the reply (the requester's inbox, in
 * practice: private, so exactly one), and the export, so that the
 * responders here reply into it.  The publishing broker made the
 * crossing; only its reply's way back is decided here.  NULL: none.
 */
static struct bacct *route_service_to(struct vbd_broker *b, struct bacct *a,
				      const char *subj, size_t slen,
				      const char *reply, size_t rlen,
				      const struct vbd_export **exp)
{
	for (size_t i = 0; i < a->nservices_out; i++) {
		const struct bxport *x = &a->services_out[i];
		struct bacct *to = x->acct;

		if (!vbi_pattern_covers(x->pattern, x->plen, subj, slen))
			continue;
		/* A question about interest: no queue group's rotation
		 * moves for it. */
		if ((vbi_sublist_match_all(to->sl, reply, rlen, &b->match) ==
			     VB_OK &&
		     b->match.n) ||
		    (to->remote &&
		     vbi_sublist_match_all(to->remote, reply, rlen,
					   &b->rmatch) == VB_OK &&
		     b->rmatch.n)) {
			*exp = x->exp;
			return to;
		}
	}
	return NULL;
}

/*
 * A frame that came over a route, matched in its account (b->match): to
 * local subscribers only, never back over a route, never across accounts.
 * Its sid said which (bk_interest_of()): the account's plain subscribers
 * (@q NULL), or one member of queue group @q (the peer chose us for it).
 */
static size_t publish_from_route(struct bconn *bc,
				 const struct vbi_frame_view *v,
				 const struct guard *g, const char *q,
				 size_t qlen)
{
	struct vbd_broker *b = bc->b;
	size_t i, n = 0;

	for (i = 0; i < b->match.n; i++) {
		struct bsub *s = b->match.subs[i]->owner;

		if (!route_sid_wants(s, q, qlen))
			continue;
		if (g && !guard_pass(g, s))
			continue;
		deliver(s, bc, v);
		n++;
	}
	return n;
}

/*
 * A route's peer lost @d->count messages on @d->subject on their way here
 * (route.c): the subscribers that would have had them are told, as if we
 * had dropped them.  Plain subscribers each; a queue group, one member
 * (which one would have had them is unknowable).  Invalid input fails the
 * route, as a bad frame does.
 */
void bk_route_dropped(struct bconn *bc, const Verbus__Dropped *d)
{
	struct vbd_broker *b = bc->b;
	size_t slen = strlen(d->subject), qlen = 0, i;
	const char *q = NULL;
	struct bacct *a;
	bool told = false;

	if (d->count == 0 || (slen && vbi_subject_check(d->subject, slen))) {
		bk_route_fail(bc, "a Dropped with no count or an invalid "
				  "subject");
		return;
	}
	b->cst.route_drops_in += d->count;
	if (slen == 0) {
		vbi_warn("route cid %" PRIu64 " %s: the peer lost %" PRIu64
			 " messages on their way here it cannot name the "
			 "subjects of; their subscribers cannot be told",
			 bc->cid, bc->name, d->count);
		return;
	}
	if (!bk_interest_of(b, d->sid, &a, &q, &qlen))
		return; /* the group left here meanwhile */
	if (vbi_sublist_match_valid(a->sl, d->subject, slen, &b->match))
		return;
	for (i = 0; i < b->match.n && !told; i++) {
		struct bsub *s = b->match.subs[i]->owner;

		if (!route_sid_wants(s, q, qlen))
			continue;
		sub_owe(s, d->count);
		told = q != NULL; /* one member of the group */
	}
}

/*
 * What is wrong with an HMSG's header block, or NULL if nothing (or the
 * frame is a plain MSG).  Read from the publisher's ring, which it may
 * rewrite later (a forward then carries what is there, and subscribers
 * check again), but a publisher that sends a malformed block breaks the
 * protocol now and is dropped.
 */
static const char *hmsg_bad(const struct vbi_frame_view *v)
{
	const uint8_t *p = v->payload;
	uint32_t hlen;

	if (v->kind != VBI_FRAME_HMSG)
		return NULL;
	if (vbi_frame_hmsg_split(p, v->payload_len, &hlen))
		return "its length is past the message's end";
	if (vbi_hdr_validate((const char *)p + VBI_FRAME_HLEN_LEN, hlen))
		return "not NATS/1.0 headers";
	return NULL;
}

void bk_route_frame(struct bconn *bc, const struct vbi_frame_view *v)
{
	struct vbd_broker *b = bc->b;
	struct bacct *a = bc->acct ? bc->acct : b->gacct;
	struct guard g = { 0 }, *gp;
	const char *reply, *q = NULL;
	size_t i, n, rlen, qlen = 0;
	size_t slen = vbi_topic_split(v->topic, v->topic_len, &reply, &rlen);
	bool cross = false;
	int rc;

	if (vbi_subject_check(v->topic, slen) != VB_OK ||
	    (reply && vbi_subject_check(reply, rlen) != VB_OK)) {
		if (bc->role == BK_ROUTE)
			bk_route_fail(bc, "a message with an invalid subject");
		else
			bk_send_notice(bc, VB_EINVAL, 0, v->seq,
				       "invalid subject or reply subject");
		return;
	}
	/* A route carries its cluster's messages: no user's permissions.  A
	 * responder's reply may go where its permissions do not reach, and
	 * into the requester's account when that imports the service. */
	if (bc->role == BK_CLIENT) {
		void *to = NULL;

		if (!(bc->grants &&
		      vbd_grants_use(bc->grants, v->topic, slen,
				     vbi_clock_coarse_ms(), &to)) &&
		    !vbd_user_may_publish(bc->user, v->topic, slen)) {
			b->st.denied_publish++;
			bk_send_notice_reply(bc, VB_EACCES, 0, v->seq, reply,
					     rlen,
					     "permission denied: publish");
			return;
		}
		a->msgs_in++;
		a->bytes_in += v->topic_len + v->payload_len;
		if (to) {
			a = to;
			cross = true;
		}
	} else {
		/* Its sid says which account, and which of its subscribers. */
		b->cst.route_msgs_in++;
		b->cst.route_bytes_in += v->topic_len + v->payload_len;
		if (!bk_interest_of(b, v->sid, &a, &q, &qlen)) {
			/* The entry went here meanwhile: nobody wants it,
			 * counted as a message without interest is. */
			b->st.no_interest++;
			return;
		}
		if (reply && a->nservices_out)
			g.to = route_service_to(b, a, v->topic, slen, reply,
						rlen, &g.exp);
	}
	/* Checked above: the match need not check it again. */
	rc = vbi_sublist_match_valid(a->sl, v->topic, slen, &b->match);
	if (rc) {
		if (bc->role == BK_CLIENT)
			bk_send_notice(bc, rc, 0, v->seq,
				       "cannot route the message");
		return;
	}
	g.owner = vbd_inbox_owner(v->topic, slen, &g.olen);
	if (reply && (g.to || vbd_auth_responders(b->auth))) {
		g.reply = reply;
		g.rlen = rlen;
	}
	gp = g.owner || g.reply ? &g : NULL;
	if (bc->role == BK_ROUTE) {
		n = publish_from_route(bc, v, gp, q, qlen);
	} else {
		/* Direct mode (direct.c): a publisher switched to some
		 * subscribers writes to their direct subscriptions itself
		 * (and picks a member of their queue groups), on the
		 * subjects it is granted paths for; the broker skips those
		 * (delivered, not dropped).  One branch
		 * for every other publisher. */
		bool dskip = bc->direct_on && !cross && !g.owner &&
			     bk_direct_eligible(a, v->topic, slen);

		/* The routes first: they read the local match's queue
		 * groups, and deliver() may free a local sub
		 * (auto-unsubscribe), though not the match. */
		n = bk_routes_forward(b, bc, a, v, slen, &b->match);
		if (!gp && !dskip) {
			for (i = 0; i < b->match.n; i++)
				deliver(b->match.subs[i]->owner, bc, v);
			n += b->match.n;
		} else {
			for (i = 0; i < b->match.n; i++) {
				struct bsub *s = b->match.subs[i]->owner;

				/* A responder reached directly still gets
				 * its grant to reply. */
				if (gp && !guard_pass(gp, s))
					continue;
				n++;
				if (dskip &&
				    bk_direct_skip(bc, s, v->topic, slen))
					continue;
				deliver(s, bc, v);
			}
		}
		if (!cross && (a->nstreams_out || a->nservices_in))
			n += route_crossings(bc, a, v, slen, reply, rlen);
	}
	if (n == 0) {
		b->st.no_interest++;
		/* A request nobody can answer fails now, not at its timeout
		 * (best effort: a client out of credit loses the Notice and
		 * its request times out as before). */
		if (reply && bc->role == BK_CLIENT) {
			b->st.no_responders++;
			bk_send_notice_reply(bc, VB_ENORESPONDERS, 0, v->seq,
					     reply, rlen, "no responders");
		}
	}
}

/* A frame from a client or a route: route it, then drop our reference. */
void bk_publish(struct vbi_conn *c, const struct vbi_frame_view *v, void *arg)
{
	struct bconn *bc = arg;
	struct vbd_broker *b = bc->b;
	const char *bad;

	if (v->kind == VBI_FRAME_CHUNK) {
		bk_chunk(bc, v); /* counts it, as one message per stream */
		return;
	}
	if (v->kind == VBI_FRAME_RESEND) {
		/* Direct mode's, from a client only: for one subscriber. */
		if (bc->role == BK_ROUTE)
			bk_route_fail(bc, "a RESEND frame");
		else
			bk_direct_resend(bc, v);
		vbi_conn_release(c, v);
		return;
	}
	bc->msgs_in++;
	bc->bytes_in += v->topic_len + v->payload_len;
	b->st.msgs_in++;
	b->st.bytes_in += v->topic_len + v->payload_len;
	bad = hmsg_bad(v);
	if (bad) {
		b->st.bad_headers++;
		if (bc->role == BK_ROUTE) {
			bk_route_fail(bc, "a message with a malformed header "
					  "block");
		} else {
			vbi_warn("conn cid %" PRIu64 " %s: sent a message "
				 "with a malformed header block (%s); closed",
				 bc->cid, bc->name, bad);
			bc->closing = true;
			vbi_conn_release(c, v);
			vbi_conn_close(c);
			return;
		}
	} else {
		bk_route_frame(bc, v);
	}
	vbi_conn_release(c, v);
}

/*
 * A subscriber that has something waiting for it (deliveries queued here,
 * or frames staged in the transport) and has made no progress (freed no
 * ring space, returned no credit) for block_timeout_ms
 * is a slow consumer, whatever it is short of, under any policy: a peer
 * that withholds receive credits stalls as surely as one whose ring is
 * full.  The fallback (drop or disconnect; drop under the drop policy):
 * disconnect closes it, which returns every frame it held; drop drops
 * what is queued, has the transport copy the forwards it holds so that no
 * publisher stays pinned (vbi_conn_unpin), and drops its deliveries until
 * it moves again.  A dropped one whose own writes still do not complete a
 * block_timeout_ms later is disconnected: only a peer that breaks the
 * protocol can do that.
 */
void bk_stall_check(struct bconn *bc, uint64_t now)
{
	struct vbd_broker *b = bc->b;
	struct vbi_conn_stats cs;
	uint64_t timeout;
	bool waiting;
	char what[160];

	vbi_conn_stats(bc->c, &cs);
	/* Once shed, only writes it let us post and never completed hold
	 * anyone (vbi_conn_unpin() asked the device to report them). */
	waiting = bc->pend_n || (bc->shed ? cs.fwd_pending : cs.tx_waiting);
	if (cs.progress != bc->progress_seen) {
		bc->progress_seen = cs.progress;
		if (bc->shed)
			vbi_info("conn cid %" PRIu64 " %s: takes deliveries "
				 "again after %" PRIu64 " dropped",
				 bc->cid, bc->name, bc->drops);
		bc->shed = false;
		bc->blocked_since = waiting ? now : 0;
	}
	if (!waiting) {
		bc->blocked_since = 0;
		bc->slow_counted = false;
		return;
	}
	if (!bc->blocked_since) {
		bc->blocked_since = now;
		return;
	}
	/* A route stalls when the broker behind it holds it back for a slow
	 * subscriber of its own, which its policy settles within
	 * block_timeout_ms: the route gets ROUTE_STALL_FACTOR times as long
	 * before it is judged, so that one slow subscriber over there does
	 * not cost every message in flight on the route.  No subtraction:
	 * bk_pend_flush() may just have set blocked_since a little after
	 * @now. */
	timeout = b->cfg.block_timeout_ms;
	if (bc->role == BK_ROUTE)
		timeout *= ROUTE_STALL_FACTOR;
	if (bc->blocked_since + timeout > now)
		return;
	if (!bc->slow_counted) {
		bc->slow_counted = true;
		b->st.slow_consumers++;
	}
	snprintf(what, sizeof(what),
		 "no progress for %" PRIu64
		 " ms: %zu deliveries queued, %" PRIu64
		 " bytes waiting to be written, %u receive credits left (it "
		 "withholds %s)",
		 timeout, bc->pend_n, cs.tx_waiting, cs.recv_credits,
		 cs.recv_credits == 0 ? "receive credit" : "ring space");
	if (bc->shed) {
		bk_slow_disconnect(bc, "its writes do not complete");
		return;
	}
	/* A route is shed, never closed: closing it would lose its
	 * interest and what its transport holds, for every subscriber
	 * behind it; shed, it loses only what it cannot take, and the
	 * peer is told what (route.c). */
	if (bc->role == BK_CLIENT &&
	    (b->cfg.slow_policy == VBD_SLOW_DISCONNECT ||
	     (b->cfg.slow_policy == VBD_SLOW_BLOCK &&
	      b->cfg.block_fallback == VBD_SLOW_DISCONNECT))) {
		bk_slow_disconnect(bc, what);
		return;
	}
	vbi_warn("%s cid %" PRIu64 " %s: slow consumer: %s; dropping its "
		 "deliveries until it moves%s",
		 bc->role == BK_ROUTE ? "route" : "conn", bc->cid, bc->name,
		 what,
		 bc->role == BK_ROUTE ? " (the peer is told what it lost)" :
					"");
	bk_pend_drop_all(bc, true);
	vbi_conn_unpin(bc->c);
	bc->shed = true;
	bc->blocked_since = now;
}
