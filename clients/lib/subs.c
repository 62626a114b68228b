/*
 * subs.c - subscriptions and delivered messages (verbus/verbus.h).
 *
 * Subscriptions live in a table by sid (never reused on a vb_conn).  A
 * frame's sid finds its subscription; the callback gets a struct vb_msg
 * that is the first member of a struct held_msg on the stack, so that
 * vb_msg_hold() can copy the frame's view and take a transport reference.
 * A subscription removed while its callback runs (by the callback itself)
 * is freed when the callback returns.
 */
#include "clients/lib/client.h"
#include "core/subject.h"

#include <stdlib.h>
#include <string.h>

/* ---- subscriptions ------------------------------------------------------ */

struct vb_sub *vbi_subs_find(struct vb_conn *c, uint32_t sid)
{
	struct vb_sub *s;

	HASH_FIND(hh, c->subs, &sid, sizeof(sid), s);
	return s;
}

void vbi_subs_free(struct vb_sub *s)
{
	if (!s)
		return;
	free(s->pattern);
	free(s->queue);
	free(s);
}

/* Take @s out of the table; freed now, or when its callback returns. */
void vbi_subs_remove(struct vb_sub *s)
{
	struct vb_conn *c = s->c;

	if (s->gone)
		return;
	vbi_drain_sub_gone(s);
	HASH_DELETE(hh, c->subs, s);
	if (c->inbox_sub == s)
		c->inbox_sub = NULL;
	s->gone = true;
	if (!s->in_cb)
		vbi_subs_free(s);
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

void vbi_subs_deliver(struct vbi_conn *vc, const struct vbi_frame_view *v,
		      void *arg)
{
	struct vb_conn *c = arg;
	struct held_msg h = { .c = c, .vc = vc, .v = *v };
	struct vb_sub *s = c->closing ? NULL : vbi_subs_find(c, v->sid);

	if (!s || (s->max && s->delivered >= s->max) ||
	    (s->drain && vbi_drain_expired(s))) {
		c->st.orphans++;
		vbi_conn_release(vc, v);
		return;
	}
	if (msg_fill(&h.m, v)) {
		c->st.bad_msgs++;
		vbi_client_event(c, VB_EV_NOTICE, VB_EPROTO,
				 "a message with a malformed header block "
				 "was dropped",
				 NULL, 0);
		vbi_conn_release(vc, v);
		return;
	}
	h.m.sub = s;
	s->delivered++;
	if (s != c->inbox_sub) {
		c->st.msgs_in++;
		c->st.bytes_in += v->payload_len;
	}
	s->in_cb = true;
	s->cb(c, &h.m, s->arg);
	s->in_cb = false;
	vbi_conn_release(vc, v);
	if (s->gone)
		vbi_subs_free(s);
	else if (s->max && s->delivered >= s->max)
		vbi_subs_remove(s); /* the broker has ended it too */
}

/* ---- subscribing -------------------------------------------------------- */

int vb_subscribe(struct vb_conn *c, const char *pattern, const char *queue,
		 vb_msg_cb cb, void *arg, struct vb_sub **out)
{
	struct out_item *it = NULL;
	struct vb_sub *s = NULL;
	size_t pl, ql;
	int rc;

	if (!c || !pattern || !cb)
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
	rc = VB_ENOMEM;
	s = calloc(1, sizeof(*s));
	if (!s)
		goto out_unlock;
	s->c = c;
	s->cb = cb;
	s->arg = arg;
	s->pattern = strdup(pattern);
	s->queue = queue ? strdup(queue) : NULL;
	if (!s->pattern || (queue && !s->queue))
		goto out_free_sub;
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
	int rc;

	if (!s || s->gone)
		return VB_EINVAL;
	c = s->c;
	client_lock(c);
	/* Draining, it was unsubscribed at the broker already. */
	rc = s->drain ? VB_OK : queue_unsub(c, s->sid, 0);
	vbi_subs_remove(s);
	client_unlock(c);
	return rc;
}

int vb_sub_autounsubscribe(struct vb_sub *s, uint64_t max)
{
	struct vb_conn *c;
	int rc;

	if (!s || s->gone || max == 0)
		return VB_EINVAL;
	c = s->c;
	client_lock(c);
	if (s->drain) { /* ending already: vb_sub_drain() */
		client_unlock(c);
		return VB_ESTATE;
	}
	if (s->delivered >= max) {
		rc = queue_unsub(c, s->sid, 0);
		vbi_subs_remove(s);
	} else {
		s->max = max;
		rc = queue_unsub(c, s->sid, max);
	}
	client_unlock(c);
	return rc;
}

uint64_t vb_sub_delivered(const struct vb_sub *s)
{
	return s ? s->delivered : 0;
}

/* ---- messages ----------------------------------------------------------- */

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
	rc = vbi_conn_hold(h->vc, &h->v);
	if (rc) {
		free(h);
		goto out;
	}
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
	vbi_conn_release(h->vc, &h->v);
	free(h);
	client_unlock(c);
}

int vb_respond(struct vb_conn *c, const struct vb_msg *m, const void *data,
	       size_t size)
{
	char reply[VBI_SUBJECT_MAX + 1];

	if (!c || !m)
		return VB_EINVAL;
	if (!m->reply || !m->reply_len || m->reply_len > VBI_SUBJECT_MAX)
		return VB_EINVAL;
	memcpy(reply, m->reply, m->reply_len);
	reply[m->reply_len] = '\0';
	return vb_publish(c, reply, data, size);
}
