/*
 * subs.c - subscriptions and delivered messages (verbus/verbus.h).
 *
 * Subscriptions live in a table by sid (never reused on a vb_conn).  A
 * frame's sid finds its subscription; the callback gets a struct vb_msg
 * that is the first member of a struct held_msg on the stack, so that
 * vb_msg_hold() can copy the frame's view and take a transport reference.
 * A subscription removed while its callback runs (by the callback itself)
 * is freed when the callback returns.
 *
 * Pending limits (pending.h) apply to both kinds: what a callback
 * subscription holds is what vb_msg_hold() kept of it, what a synchronous
 * one holds is its queue and what vb_next_msg() returned (syncsub.c).  A
 * message that would pass a limit is released at once, before anything
 * else runs, and counted; the application hears of it once per episode
 * (VB_EV_SLOW_CONSUMER).
 */
#include "clients/lib/client.h"
#include "core/subject.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* ---- subscriptions ------------------------------------------------------ */

struct vb_sub *vbi_subs_find(struct vb_conn *c, uint32_t sid)
{
	struct vb_sub *s;

	HASH_FIND(hh, c->subs, &sid, sizeof(sid), s);
	return s;
}

void vbi_msg_free(struct held_msg *h)
{
	if (h->vc)
		vbi_conn_release(h->vc, &h->v);
	vbi_lbuf_put(h->lbuf);
	free(h->copy);
	free(h);
}

/* @h is no longer pending for its subscription. */
static void msg_unpend(struct held_msg *h)
{
	if (h->owner)
		vbi_pending_done(&h->owner->pend, h->m.size);
	h->owner = NULL;
}

/* Give back what @s has queued for vb_next_msg(). */
static void queue_release(struct vb_sub *s)
{
	struct held_msg *h;

	while ((h = s->q_head)) {
		s->q_head = h->qnext;
		if (h->vc)
			vbi_syncsub_unpin(s->c, h);
		msg_unpend(h);
		vbi_msg_free(h);
	}
	s->q_tail = &s->q_head;
}

/* Link @s into or out of c->ended (synchronous subscriptions that ended
 * by themselves and wait for vb_unsubscribe()). */
static void ended_link(struct vb_sub *s)
{
	struct vb_conn *c = s->c;

	s->eprev = NULL;
	s->enext = c->ended;
	if (c->ended)
		c->ended->eprev = s;
	c->ended = s;
}

static void ended_unlink(struct vb_sub *s)
{
	struct vb_conn *c = s->c;

	if (s->eprev)
		s->eprev->enext = s->enext;
	else
		c->ended = s->enext;
	if (s->enext)
		s->enext->eprev = s->eprev;
	s->eprev = s->enext = NULL;
}

/* Accepts half-built subscriptions (vbi_subs_create's failures). */
void vbi_subs_free(struct vb_sub *s)
{
	struct held_msg *h;

	if (!s)
		return;
	queue_release(s);
	/* Held messages outlive it: they stop counting for it. */
	for (h = s->c->held; h; h = h->next)
		if (h->owner == s)
			h->owner = NULL;
	if (s->efd >= 0)
		close(s->efd);
	free(s->pattern);
	free(s->queue);
	free(s);
}

void vbi_subs_settle(struct vb_sub *s)
{
	if (s->gone && !s->in_cb && !s->waiters)
		vbi_subs_free(s);
}

/* Out of the table (and of the request mux's hands). */
static void sub_unlink(struct vb_sub *s)
{
	struct vb_conn *c = s->c;

	vbi_drain_sub_gone(s); /* a drain under way ends */
	vbi_large_drop_sid(&c->large, s->sid); /* its streams too */
	HASH_DELETE(hh, c->subs, s);
	if (c->inbox_sub == s)
		c->inbox_sub = NULL;
}

/* Take @s out of the table; freed now, or when its callback returns. */
void vbi_subs_remove(struct vb_sub *s)
{
	if (s->gone || s->ended)
		return;
	sub_unlink(s);
	if (s->sync) {
		/* The application still holds the handle, and may still
		 * have messages to take from it. */
		s->ended = true;
		ended_link(s);
		vbi_syncsub_wake(s);
		return;
	}
	s->gone = true;
	vbi_subs_settle(s);
}

void vbi_subs_free_all(struct vb_conn *c)
{
	struct held_msg *h;
	struct vb_sub *s, *tmp;

	while ((h = c->held)) {
		c->held = h->next;
		vbi_msg_free(h);
	}
	HASH_ITER(hh, c->subs, s, tmp)
	{
		HASH_DELETE(hh, c->subs, s);
		vbi_subs_free(s);
	}
	while ((s = c->ended)) {
		ended_unlink(s);
		vbi_subs_free(s);
	}
	c->inbox_sub = NULL;
	vbi_large_clear(&c->large);
}

/*
 * Split a delivered frame into the message: the topic "subject[ reply]",
 * and an HMSG's header block and data.  Returns VB_OK, or VB_EPROTO for
 * an HMSG whose block is malformed: the broker checked it, but forwards
 * it from the publisher's memory, which a hostile publisher can change
 * under the forward; that costs the message, not the connection.
 */
static int msg_fill(struct vb_msg *m, const struct vbi_frame_view *v)
{
	const char *p = v->payload;
	uint32_t hlen;

	m->subject = v->topic;
	m->subject_len = vbi_topic_split(v->topic, v->topic_len, &m->reply,
					 &m->reply_len);
	m->data = v->payload;
	m->size = v->payload_len;
	m->headers = NULL;
	m->headers_len = 0;
	if (v->kind != VBI_FRAME_HMSG)
		return VB_OK;
	if (vbi_frame_hmsg_split(p, v->payload_len, &hlen) ||
	    vbi_hdr_validate(p + VBI_FRAME_HLEN_LEN, hlen))
		return VB_EPROTO;
	m->headers = p + VBI_FRAME_HLEN_LEN;
	m->headers_len = hlen;
	m->data = p + VBI_FRAME_HLEN_LEN + hlen;
	m->size = v->payload_len - VBI_FRAME_HLEN_LEN - hlen;
	return VB_OK;
}

/*
 * The first message of an episode that @s's pending limits refused
 * (counted, and released by the caller already): the application hears.
 */
static void slow_consumer(struct vb_conn *c, struct vb_sub *s)
{
	char why[VBI_SUBJECT_MAX + 160];

	snprintf(why, sizeof(why),
		 "slow consumer: \"%s\" holds %" PRIu64 " messages, %" PRIu64
		 " bytes: pending limit reached, messages dropped",
		 s->pattern, s->pend.msgs, s->pend.bytes);
	s->in_cb++; /* the handler may unsubscribe it */
	vbi_client_event(c, VB_EV_SLOW_CONSUMER, VB_ENOSPC, why, s,
			 s->pend.dropped);
	s->in_cb--;
}

/* Give back the delivery's own reference to @h's bytes. */
static void delivery_put(const struct held_msg *h)
{
	if (h->vc)
		vbi_conn_release(h->vc, &h->v);
	else
		vbi_lbuf_put(h->lbuf);
}

/* After a delivery to @s: free it if it was unsubscribed meanwhile, end it
 * at its auto-unsubscribe limit (once its large messages under way, which
 * count already, have ended). */
static void deliver_settle(struct vb_conn *c, struct vb_sub *s)
{
	if (s->gone)
		vbi_subs_settle(s);
	else if (s->max && s->received >= s->max &&
		 (!c->large.parts || !vbi_large_partials(&c->large, s->sid)))
		vbi_subs_remove(s); /* the broker has ended it too */
}

/*
 * Hand the delivery @h (on the stack) to @s: its callback, or its queue
 * (synchronous), within its pending limits; @counted: it counts towards
 * the auto-unsubscribe limit already (a large message, at its FIRST
 * chunk).  Gives back the delivery's reference.  Inlined: it is every
 * message's path, which the large ones' second caller must not lengthen.
 */
__attribute__((always_inline)) static inline void
deliver(struct vb_conn *c, struct vb_sub *s, struct held_msg *h, bool counted)
{
	enum vbi_pending_verdict verdict;

	if (msg_fill(&h->m, &h->v)) {
		c->st.bad_msgs++;
		vbi_client_event(c, VB_EV_NOTICE, VB_EPROTO,
				 "a message with a malformed header block "
				 "was dropped",
				 NULL, 0);
		delivery_put(h);
		if (counted)
			deliver_settle(c, s);
		return;
	}
	h->m.sub = s;
	if (!counted)
		s->received++;
	verdict = vbi_pending_admit(&s->pend, h->m.size);
	if (verdict != VBI_PENDING_TAKE) {
		delivery_put(h);
		if (verdict == VBI_PENDING_DROP_FIRST)
			slow_consumer(c, s);
		goto out_settle;
	}
	if (s->sync) {
		/* The queue takes over the delivery's reference. */
		if (vbi_syncsub_enqueue(s, h) != VB_OK) {
			s->pend.dropped++; /* out of memory: lost, counted */
			delivery_put(h);
		}
		goto out_settle;
	}
	h->owner = s; /* what vb_msg_hold() keeps counts for it */
	s->delivered++;
	if (s != c->inbox_sub) {
		c->st.msgs_in++;
		c->st.bytes_in += h->v.payload_len;
	}
	s->in_cb++;
	s->cb(c, &h->m, s->arg);
	s->in_cb--;
	delivery_put(h);
out_settle:
	deliver_settle(c, s);
}

void vbi_subs_deliver(struct vbi_conn *vc, const struct vbi_frame_view *v,
		      void *arg)
{
	struct vb_conn *c = arg;

	/* Direct mode: behind a fence, the broker's frames may wait. */
	if (vbi_direct_barrier(c, vc, v, c->dir))
		return;
	vbi_subs_deliver_now(c, vc, v);
}

void vbi_subs_deliver_now(struct vb_conn *c, struct vbi_conn *vc,
			  const struct vbi_frame_view *v)
{
	struct held_msg h = { .c = c, .vc = vc, .v = *v };
	struct vb_sub *s;

	if (v->kind == VBI_FRAME_CHUNK) {
		vbi_stream_chunk(c, vc, v); /* a piece of a large message */
		return;
	}
	if (v->kind == VBI_FRAME_RESEND) {
		vbi_direct_on_resend(c, vc, v); /* direct mode's, unwrapped */
		return;
	}
	s = c->closing ? NULL : vbi_subs_find(c, v->sid);
	if (!s || (s->max && s->received >= s->max) ||
	    (s->drain && vbi_drain_expired(s))) {
		c->st.orphans++;
		vbi_conn_release(vc, v);
		return;
	}
	if (c->pinned_head) /* queued messages may hold the ring back */
		vbi_syncsub_relieve(c, vc, v);
	deliver(c, s, &h, false);
}

void vbi_subs_deliver_large(struct vb_conn *c, struct vb_sub *s,
			    struct held_msg *h)
{
	if (s->drain && vbi_drain_expired(s)) {
		c->st.orphans++;
		delivery_put(h);
		deliver_settle(c, s);
		return;
	}
	deliver(c, s, h, true);
}

/* ---- subscribing -------------------------------------------------------- */

int vbi_subs_create(struct vb_conn *c, const char *pattern, const char *queue,
		    unsigned flags, vb_msg_cb cb, void *arg,
		    struct vb_sub **out)
{
	struct out_item *it = NULL;
	struct vb_sub *s = NULL;
	size_t pl, ql;
	int rc;

	if (!c || !pattern || (flags & ~(unsigned)VB_SUB_DIRECT))
		return VB_EINVAL;
	pl = strlen(pattern);
	ql = queue ? strlen(queue) : 0;
	if (pl > VBI_SUBJECT_MAX || vbi_pattern_check(pattern, pl) ||
	    (queue && (ql > VBI_QUEUE_MAX || vbi_queue_check(queue, ql))))
		return VB_EINVAL;
	client_lock(c);
	rc = VB_ECLOSED;
	if (c->state == CS_CLOSED)
		goto out_unlock;
	rc = VB_ESTATE;
	if (c->drain)
		goto out_unlock; /* vb_drain(): no new interest */
	if (flags & VB_SUB_DIRECT) {
		/* Listening (and DirectListen queued) before its Subscribe. */
		rc = vbi_direct_sub_listen(c);
		if (rc)
			goto out_unlock;
	}
	rc = VB_ENOMEM;
	s = calloc(1, sizeof(*s));
	if (!s)
		goto out_unlock;
	s->c = c;
	s->direct = !!(flags & VB_SUB_DIRECT);
	s->cb = cb;
	s->arg = arg;
	s->sync = !cb;
	s->q_tail = &s->q_head;
	s->efd = -1;
	vbi_pending_init(&s->pend);
	s->pattern = strdup(pattern);
	s->queue = queue ? strdup(queue) : NULL;
	if (!s->pattern || (queue && !s->queue))
		goto out_free_sub;
	if (s->sync && c->locked) {
		rc = VB_ESYS; /* the waiters' wake-up (syncsub.c) */
		s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (s->efd < 0)
			goto out_free_sub;
		rc = VB_ENOMEM;
	}
	if (c->state == CS_OPEN) {
		it = vbi_outq_new(OUT_SUB, 0);
		if (!it)
			goto out_free_sub;
	}
	s->sid = ++c->next_sid;
	HASH_ADD(hh, c->subs, sid, sizeof(s->sid), s);
	if (!vbi_subs_find(c, s->sid)) /* uthash out of memory */
		goto out_free_item;
	if (it) {
		it->sid = s->sid;
		vbi_outq_append(c, it);
		vbi_outq_pump(c);
		vbi_client_wake(c);
	}
	if (out)
		*out = s;
	client_unlock(c);
	return VB_OK;
out_free_item:
	free(it);
out_free_sub:
	vbi_subs_free(s);
out_unlock:
	client_unlock(c);
	return rc;
}

int vb_subscribe(struct vb_conn *c, const char *pattern, const char *queue,
		 vb_msg_cb cb, void *arg, struct vb_sub **out)
{
	if (!cb)
		return VB_EINVAL;
	return vbi_subs_create(c, pattern, queue, 0, cb, arg, out);
}

int vb_subscribe_flags(struct vb_conn *c, const char *pattern,
		       const char *queue, unsigned flags, vb_msg_cb cb,
		       void *arg, struct vb_sub **out)
{
	if (!cb && !out)
		return VB_EINVAL; /* synchronous: the handle is needed */
	return vbi_subs_create(c, pattern, queue, flags, cb, arg, out);
}

/* Queue an Unsubscribe for @s (max 0: now). */
static int queue_unsub(struct vb_conn *c, uint32_t sid, uint64_t max)
{
	struct out_item *it;

	if (c->state != CS_OPEN)
		return VB_OK; /* the next open re-sends only what lives */
	it = vbi_outq_new(OUT_UNSUB, 0);
	if (!it)
		return VB_ENOMEM;
	it->sid = sid;
	it->num = max;
	vbi_outq_append(c, it);
	vbi_outq_pump(c);
	vbi_client_wake(c);
	return VB_OK;
}

int vb_unsubscribe(struct vb_sub *s)
{
	struct vb_conn *c;
	int rc = VB_OK;

	if (!s)
		return VB_EINVAL;
	c = s->c;
	client_lock(c);
	if (s->gone) {
		rc = VB_EINVAL;
		goto out_unlock;
	}
	if (s->ended) {
		ended_unlink(s); /* the broker has ended it already */
	} else {
		/* Draining, it was unsubscribed at the broker already. */
		rc = s->drain ? VB_OK : queue_unsub(c, s->sid, 0);
		sub_unlink(s);
	}
	s->gone = true;
	queue_release(s);
	vbi_syncsub_wake(s); /* a waiter frees it */
	vbi_subs_settle(s);
out_unlock:
	client_unlock(c);
	return rc;
}

int vb_sub_autounsubscribe(struct vb_sub *s, uint64_t max)
{
	struct vb_conn *c;
	int rc;

	if (!s || max == 0)
		return VB_EINVAL;
	c = s->c;
	client_lock(c);
	rc = VB_EINVAL;
	if (s->gone || s->ended)
		goto out_unlock;
	rc = VB_ESTATE;
	if (s->drain) /* ending already: vb_sub_drain() */
		goto out_unlock;
	if (s->received >= max) {
		rc = queue_unsub(c, s->sid, 0);
		vbi_subs_remove(s);
	} else {
		s->max = max;
		rc = queue_unsub(c, s->sid, max);
	}
out_unlock:
	client_unlock(c);
	return rc;
}

uint64_t vb_sub_delivered(const struct vb_sub *s)
{
	return s ? s->delivered : 0;
}

/* ---- pending limits ----------------------------------------------------- */

int vb_sub_set_pending_limits(struct vb_sub *s, int64_t msgs, int64_t bytes)
{
	int rc;

	if (!s)
		return VB_EINVAL;
	client_lock(s->c);
	rc = s->gone ? VB_EINVAL :
		       vbi_pending_set_limits(&s->pend, msgs, bytes);
	client_unlock(s->c);
	return rc;
}

int vb_sub_pending_limits(struct vb_sub *s, int64_t *msgs, int64_t *bytes)
{
	if (!s)
		return VB_EINVAL;
	client_lock(s->c);
	if (msgs)
		*msgs = s->pend.max_msgs;
	if (bytes)
		*bytes = s->pend.max_bytes;
	client_unlock(s->c);
	return VB_OK;
}

int vb_sub_pending(struct vb_sub *s, uint64_t *msgs, uint64_t *bytes)
{
	if (!s)
		return VB_EINVAL;
	client_lock(s->c);
	if (msgs)
		*msgs = s->pend.msgs;
	if (bytes)
		*bytes = s->pend.bytes;
	client_unlock(s->c);
	return VB_OK;
}

uint64_t vb_sub_dropped(struct vb_sub *s)
{
	uint64_t n;

	if (!s)
		return 0;
	client_lock(s->c);
	n = s->pend.dropped;
	client_unlock(s->c);
	return n;
}

/* ---- messages ----------------------------------------------------------- */

/*
 * Every pointer of a struct vb_msg into its frame, moved from the frame's
 * bytes at @from (@len of them) to a copy at @to.  A field added to struct
 * vb_msg that points into the frame is moved here too.
 */
static const void *rebase(const void *p, const char *from, size_t len,
			  const char *to)
{
	const char *q = p;

	if (!q || q < from || q > from + len)
		return p;
	return to + (q - from);
}

static void msg_rebase(struct vb_msg *m, const char *from, size_t len,
		       const char *to)
{
	m->subject = rebase(m->subject, from, len, to);
	m->reply = rebase(m->reply, from, len, to);
	m->data = rebase(m->data, from, len, to);
	m->headers = rebase(m->headers, from, len, to);
}

int vbi_msg_copy_out(struct held_msg *h)
{
	const char *lo = h->v.topic, *hi = h->v.topic + h->v.topic_len;
	const char *p = h->v.payload;
	char *copy;

	if (!h->vc)
		return VB_OK;
	if (p && p < lo)
		lo = p;
	if (p && p + h->v.payload_len > hi)
		hi = p + h->v.payload_len;
	copy = malloc((size_t)(hi - lo) + 1);
	if (!copy)
		return VB_ENOMEM;
	memcpy(copy, lo, (size_t)(hi - lo));
	msg_rebase(&h->m, lo, (size_t)(hi - lo), copy);
	vbi_conn_release(h->vc, &h->v);
	h->vc = NULL;
	h->copy = copy;
	h->copy_len = (size_t)(hi - lo);
	return VB_OK;
}

/* Take a reference for @h, a copy of @cur: its frame's, its large
 * message's (shared), or its own bytes. */
static int msg_ref(struct held_msg *h, const struct held_msg *cur)
{
	if (cur->vc)
		return vbi_conn_hold(h->vc, &h->v);
	if (cur->lbuf) {
		vbi_lbuf_get(cur->lbuf);
		return VB_OK;
	}
	h->copy = malloc(cur->copy_len + 1);
	if (!h->copy)
		return VB_ENOMEM;
	memcpy(h->copy, cur->copy, cur->copy_len);
	msg_rebase(&h->m, cur->copy, cur->copy_len, h->copy);
	return VB_OK;
}

int vb_msg_hold(const struct vb_msg *m, struct vb_msg **out)
{
	const struct held_msg *cur = (const struct held_msg *)m;
	struct vb_conn *c;
	struct held_msg *h;
	int rc;

	if (!m || !out)
		return VB_EINVAL;
	c = cur->c;
	client_lock(c);
	rc = VB_ENOMEM;
	h = malloc(sizeof(*h));
	if (!h)
		goto out;
	*h = *cur;
	h->m.sub = NULL; /* may be gone by the time it is read */
	h->copy = NULL;
	h->qnext = h->pprev = h->pnext = NULL;
	rc = msg_ref(h, cur);
	if (rc) {
		free(h);
		goto out;
	}
	if (h->owner && h->owner->gone)
		h->owner = NULL;
	if (h->owner)
		vbi_pending_add(&h->owner->pend, h->m.size);
	h->prev = NULL;
	h->next = c->held;
	if (c->held)
		c->held->prev = h;
	c->held = h;
	*out = &h->m;
out:
	client_unlock(c);
	return rc;
}

void vb_msg_release(struct vb_msg *m)
{
	struct held_msg *h = (struct held_msg *)m;
	struct vb_conn *c;

	if (!m)
		return;
	c = h->c;
	client_lock(c);
	if (h->prev)
		h->prev->next = h->next;
	else
		c->held = h->next;
	if (h->next)
		h->next->prev = h->prev;
	msg_unpend(h);
	/* Ring space came back: a loop asleep in vb_run()/vb_poll() (on
	 * another thread, or later on this one) wakes to return the credit,
	 * or a publisher held back by it would wait for other traffic. */
	if (h->vc)
		vbi_client_wake(c);
	vbi_msg_free(h);
	client_unlock(c);
}

int vb_respond(struct vb_conn *c, const struct vb_msg *m, const void *data,
	       size_t size)
{
	return vb_respond_msg(c, m, NULL, 0, data, size);
}
