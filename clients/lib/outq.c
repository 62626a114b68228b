/*
 * outq.c - the outgoing queue, publishing and flushing (verbus/verbus.h).
 *
 * One ordered queue.  Publishes go straight to the transport while it has
 * credit and nothing waits before them; otherwise they are copied into
 * c->out (bounded by pending_max), together with the control messages
 * (Subscribe, Unsubscribe, Ping) issued meanwhile, and vbi_outq_pump()
 * sends the queue in order whenever the transport takes more.  So a Ping
 * always follows every message published before it, which is what
 * vb_flush() relies on.  On a lost connection the control messages are
 * dropped (the state they describe is re-sent whole at the next open) and
 * the publishes stay.
 */
#include "clients/lib/client.h"
#include "core/header.h"
#include "core/subject.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the outgoing queue ------------------------------------------------- */

struct out_item *vbi_outq_new(enum out_kind kind, size_t extra)
{
	/* Not calloc: a queued publish fills its @extra bytes at once, and
	 * zeroing 64 KiB first would be a pass over the payload for nothing. */
	struct out_item *it = malloc(sizeof(*it) + extra);

	if (it) {
		memset(it, 0, sizeof(*it));
		it->kind = kind;
	}
	return it;
}

void vbi_outq_append(struct vb_conn *c, struct out_item *it)
{
	it->next = NULL;
	*c->out_tail = it;
	c->out_tail = &it->next;
	if (it->kind == OUT_PUB) {
		c->out_msgs++;
		c->out_bytes += it->size;
	}
}

static void out_pop(struct vb_conn *c)
{
	struct out_item *it = c->out_head;

	c->out_head = it->next;
	if (!c->out_head)
		c->out_tail = &c->out_head;
	if (it->kind == OUT_PUB) {
		c->out_msgs--;
		c->out_bytes -= it->size;
	}
	free(it);
}

/* Drop the queued control messages (a connection was lost), and direct
 * mode's resends: they go with the DirectSwitch that announced them. */
void vbi_outq_drop_control(struct vb_conn *c)
{
	struct out_item **pp = &c->out_head, *it;
	uint64_t resends = 0;

	c->out_tail = &c->out_head;
	while ((it = *pp)) {
		if (it->kind == OUT_PUB && it->fkind == VBI_FRAME_RESEND) {
			/* Behind a DirectSwitch off of this connection only:
			 * a new broker connection has no use for them. */
			c->out_msgs--;
			c->out_bytes -= it->size;
			resends++;
		} else if (it->kind == OUT_PUB) {
			/* A stream cut short starts again, as a new one. */
			it->tag = 0;
			it->off = 0;
			c->out_tail = &it->next;
			pp = &it->next;
			continue;
		}
		*pp = it->next;
		free(it);
	}
	*c->out_tail = NULL;
	if (resends) {
		if (c->dir)
			c->dir->resends_lost += resends;
		vbi_warn("%s: %" PRIu64 " message(s) of failed direct paths, "
			 "queued to go again through the broker, lost with the "
			 "broker connection",
			 c->name, resends);
	}
}

void vbi_outq_free_all(struct vb_conn *c)
{
	while (c->out_head)
		out_pop(c);
}

/* A Subscribe for every live subscription, at the head of the queue. */
int vbi_outq_resubscribe(struct vb_conn *c)
{
	struct out_item *head = NULL, **tail = &head, *it;
	struct vb_sub *s, *tmp;

	/* Direct mode: where we listen, before any direct Subscribe. */
	if (c->dir) {
		it = vbi_direct_listen_item(c);
		if (it) {
			*tail = it;
			tail = &it->next;
		}
	}
	HASH_ITER(hh, c->subs, s, tmp)
	{
		if (s->drain)
			continue; /* unsubscribed already (drain.c) */
		it = vbi_outq_new(OUT_SUB, 0);
		if (!it) {
			while ((it = head)) {
				head = it->next;
				free(it);
			}
			return VB_ENOMEM;
		}
		it->sid = s->sid;
		*tail = it;
		tail = &it->next;
	}
	if (!head)
		return VB_OK;
	*tail = c->out_head;
	if (!c->out_head)
		c->out_tail = tail;
	c->out_head = head;
	return VB_OK;
}

static int send_subscribe(struct vb_conn *c, uint32_t sid)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__Subscribe sub = VERBUS__SUBSCRIBE__INIT;
	struct vb_sub *s = vbi_subs_find(c, sid);

	if (!s)
		return VB_OK; /* unsubscribed meanwhile */
	sub.sid = s->sid;
	sub.subject = s->pattern;
	sub.queue = s->queue ? s->queue : (char *)"";
	sub.max_msgs = s->max ? s->max - s->received : 0;
	sub.direct = s->direct;
	m.body_case = VERBUS__CONTROL__BODY_SUBSCRIBE;
	m.subscribe = &sub;
	return vbi_conn_send_ctrl(c->vc, &m);
}

/* vbi_conn_send() for a frame of @kind (the payload is whole already),
 * for @sid (a RESEND's; else 0). */
static int send_copy(struct vbi_conn *vc, uint8_t kind, uint32_t sid,
		     const void *topic, uint16_t tlen, const void *payload,
		     uint32_t plen)
{
	void *t, *p;
	int rc = vbi_conn_reserve_kind(vc, kind, tlen, plen, &t, &p);

	if (rc)
		return rc;
	memcpy(t, topic, tlen);
	memcpy(p, payload, plen);
	if (sid)
		vbi_frame_set_sid((uint8_t *)t - VBI_FRAME_HDR_LEN, sid);
	return vbi_conn_commit(vc);
}

/* An OUT_CTRL item: its packed Control (ours, so it decodes), sent. */
static int send_packed(struct vb_conn *c, const struct out_item *it)
{
	Verbus__Control *m = NULL;
	int rc = vbi_codec_decode(it->bytes, it->size, &m);

	if (rc)
		return rc;
	rc = vbi_conn_send_ctrl(c->vc, m);
	vbi_codec_free(m);
	return rc;
}

static int send_item(struct vb_conn *c, struct out_item *it)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__Unsubscribe u = VERBUS__UNSUBSCRIBE__INIT;
	Verbus__Ping p = VERBUS__PING__INIT;
	int rc;

	switch (it->kind) {
	case OUT_PUB:
		if (it->tag) /* a stream under way */
			return vbi_stream_send(c, it);
		if (it->fkind == VBI_FRAME_RESEND) {
			/* Direct mode's (direct_pub.c): one frame, whose size
			 * was checked; one the broker no longer takes (it
			 * came back smaller) is lost, and said so. */
			rc = send_copy(c->vc, it->fkind, it->sid, it->bytes,
				       it->topic_len, it->bytes + it->topic_len,
				       it->size);
			if (rc == VB_EMSGSIZE) {
				vbi_warn("%s: a direct message resent through "
					 "the broker is larger than it takes; "
					 "lost",
					 c->name);
				rc = VB_OK;
			}
			return rc;
		}
		if (it->fkind == VBI_FRAME_HMSG)
			rc = send_copy(c->vc, it->fkind, 0, it->bytes,
				       it->topic_len, it->bytes + it->topic_len,
				       it->size);
		else
			rc = vbi_conn_send(c->vc, it->bytes, it->topic_len,
					   it->bytes + it->topic_len, it->size);
		/* Too large for one frame: a stream, if the broker takes
		 * one that large. */
		if (rc == VB_EMSGSIZE)
			rc = vbi_stream_send(c, it);
		return rc;
	case OUT_SUB:
		return send_subscribe(c, it->sid);
	case OUT_UNSUB:
		u.sid = it->sid;
		u.max_msgs = it->num;
		m.body_case = VERBUS__CONTROL__BODY_UNSUBSCRIBE;
		m.unsubscribe = &u;
		return vbi_conn_send_ctrl(c->vc, &m);
	case OUT_PING:
		p.id = it->num;
		p.wait_direct = it->sid != 0;
		m.body_case = VERBUS__CONTROL__BODY_PING;
		m.ping = &p;
		return vbi_conn_send_ctrl(c->vc, &m);
	case OUT_CTRL:
		return send_packed(c, it);
	}
	return VB_EINVAL;
}

struct out_item *vbi_outq_ctrl_item(const Verbus__Control *m)
{
	uint8_t buf[VBI_CTRL_MAX];
	struct out_item *it;
	size_t len = 0;

	if (vbi_codec_encode(m, buf, sizeof(buf), &len) != VB_OK)
		return NULL;
	it = vbi_outq_new(OUT_CTRL, len);
	if (!it)
		return NULL;
	memcpy(it->bytes, buf, len);
	it->size = (uint32_t)len;
	return it;
}

int vbi_outq_ctrl(struct vb_conn *c, const Verbus__Control *m)
{
	struct out_item *it;
	int rc;

	if (c->state != CS_OPEN || !c->vc)
		return VB_ESTATE;
	if (!c->out_head && !c->reserving && !c->move_sent) {
		rc = vbi_conn_send_ctrl(c->vc, m);
		if (rc != VB_EAGAIN)
			return rc;
	}
	it = vbi_outq_ctrl_item(m);
	if (!it)
		return VB_ENOMEM;
	vbi_outq_append(c, it);
	return VB_OK;
}

/* Whether a caller that saw VB_EAGAIN may try again now. */
static bool room_again(const struct vb_conn *c)
{
	return c->state == CS_OPEN && !c->reserving && !c->move_ping &&
	       c->out_bytes <= c->o.pending_max / 2;
}

/* Send what the queue holds, in order, as far as the transport takes it. */
void vbi_outq_pump(struct vb_conn *c)
{
	struct out_item *it;
	char why[96];
	int rc;

	while (c->state == CS_OPEN && !c->reserving && !c->move_sent &&
	       (it = c->out_head)) {
		rc = send_item(c, it);
		if (rc == VB_EAGAIN)
			break;
		/* A move's barrier: what follows waits for the next server. */
		if (rc == VB_OK && it->kind == OUT_PING && c->move_ping &&
		    it->num == c->move_ping)
			c->move_sent = true;
		if (rc == VB_OK && it->kind == OUT_PUB &&
		    it->fkind != VBI_FRAME_RESEND) { /* counted once */
			c->st.msgs_out++;
			c->st.bytes_out += it->size;
		} else if (rc != VB_OK) {
			/* Refused for good (too large for this broker): say
			 * so, never drop in silence. */
			snprintf(why, sizeof(why),
				 "queued %s of %u bytes not sent",
				 it->kind == OUT_PUB ? "message" : "request",
				 it->size);
			vbi_client_event(c, VB_EV_NOTICE, rc, why, NULL, 0);
		}
		out_pop(c);
	}
	if (c->want_writable && room_again(c)) {
		c->want_writable = false;
		vbi_client_event(c, VB_EV_WRITABLE, VB_OK, NULL, NULL, 0);
	}
}

/* ---- publishing --------------------------------------------------------- */

/* Build "subject[ reply]" in c->topic; returns its length or an error. */
static int make_topic(struct vb_conn *c, const char *subject, const char *reply)
{
	size_t sl = subject ? strlen(subject) : 0;
	size_t rl = reply ? strlen(reply) : 0;

	if (sl > VBI_SUBJECT_MAX || vbi_subject_check(subject, sl))
		return VB_EINVAL;
	if (reply && (rl > VBI_SUBJECT_MAX || vbi_subject_check(reply, rl)))
		return VB_EINVAL;
	memcpy(c->topic, subject, sl);
	if (reply) {
		c->topic[sl] = ' ';
		memcpy(c->topic + sl + 1, reply, rl);
		sl += rl + 1;
	}
	return (int)sl;
}

/*
 * An HMSG's payload at @p: the block's length (little endian), the block
 * of the @n headers at @h (@blk bytes, checked), the @size data bytes.
 */
void vbi_outq_hmsg_fill(uint8_t *p, const struct vb_header *h, size_t n,
			size_t blk, const void *data, size_t size)
{
	p[0] = (uint8_t)blk;
	p[1] = (uint8_t)(blk >> 8);
	p[2] = (uint8_t)(blk >> 16);
	p[3] = (uint8_t)(blk >> 24);
	vbi_hdr_encode(h, n, (char *)p + VBI_FRAME_HLEN_LEN);
	if (size)
		memcpy(p + VBI_FRAME_HLEN_LEN + blk, data, size);
}

/* Straight to the transport: VB_OK, VB_EAGAIN (queue it) or an error. */
static int publish_now(struct vb_conn *c, int tlen, const struct vb_header *h,
		       size_t n, size_t blk, const void *data, size_t size)
{
	void *t, *p;
	int rc;

	if (!n)
		return vbi_conn_send(c->vc, c->topic, (uint16_t)tlen, data,
				     (uint32_t)size);
	rc = vbi_conn_reserve_kind(c->vc, VBI_FRAME_HMSG, (uint16_t)tlen,
				   (uint32_t)(VBI_FRAME_HLEN_LEN + blk + size),
				   &t, &p);
	if (rc)
		return rc;
	memcpy(t, c->topic, (size_t)tlen);
	vbi_outq_hmsg_fill(p, h, n, blk, data, size);
	return vbi_conn_commit(c->vc);
}

/* Whether a message of @tlen + @plen bytes can go neither as one frame
 * to the open connection's peer nor as a stream. */
static bool too_large(struct vb_conn *c, size_t tlen, size_t plen)
{
	return tlen + plen > c->peer_max_msg && !vbi_stream_fits(c, tlen, plen);
}

int vbi_outq_publish_hdr(struct vb_conn *c, const char *subject,
			 const char *reply, const struct vb_header *h, size_t n,
			 const void *data, size_t size)
{
	struct out_item *it;
	size_t blk = 0, plen;
	bool large = false, committed = false;
	int tlen, rc;

	if (c->state == CS_CLOSED)
		return VB_ECLOSED;
	if (c->reserving || c->pubs_closed)
		return VB_ESTATE;
	if (size && !data)
		return VB_EINVAL;
	tlen = make_topic(c, subject, reply);
	if (tlen < 0)
		return tlen;
	if (n) {
		rc = vbi_hdr_encoded_len(h, n, &blk);
		if (rc)
			return rc;
	}
	/* The payload: [the block's length and the block] and the data. */
	plen = n ? VBI_FRAME_HLEN_LEN + blk : 0;
	if (plen > UINT32_MAX - (size_t)tlen ||
	    size > UINT32_MAX - (size_t)tlen - plen)
		return VB_EMSGSIZE;
	plen += size;
	/* Direct mode: written to the switched-on subscribers now; the
	 * broker too, unless they are all it has for the subject.  Once
	 * anything is written directly the message is published whatever
	 * follows (a caller told VB_EAGAIN would publish it again, and the
	 * direct subscribers get it twice): what would refuse it is checked
	 * first, and the broker's copy is queued past pending_max. */
	if (c->o.flags & VB_OPT_DIRECT) {
		if (c->out_head && c->out_bytes + plen > c->o.pending_max) {
			c->want_writable = true;
			return VB_EAGAIN;
		}
		if (c->state == CS_OPEN && too_large(c, (size_t)tlen, plen))
			return VB_EMSGSIZE;
		if (vbi_direct_publish(c, strlen(subject), tlen, h, n, blk,
				       data, size)) {
			c->st.msgs_out++;
			c->st.bytes_out += plen;
			return VB_OK;
		}
		committed = true;
	}
	if (c->state == CS_OPEN && !c->out_head && !c->move_ping) {
		rc = publish_now(c, tlen, h, n, blk, data, size);
		if (rc == VB_OK) {
			c->st.msgs_out++;
			c->st.bytes_out += plen;
			vbi_client_staged(c);
			return VB_OK;
		}
		/* Larger than a frame: a stream, queued and pumped. */
		if (rc == VB_EMSGSIZE && vbi_stream_fits(c, (size_t)tlen, plen))
			large = true;
		else if (rc != VB_EAGAIN)
			return rc;
	}
	/* Queued behind others: refuse now what cannot go later. */
	if (c->state == CS_OPEN && !large && too_large(c, (size_t)tlen, plen))
		return VB_EMSGSIZE;
	/* An empty queue takes any message, even one above pending_max (a
	 * large one): it could never go otherwise. */
	if (!committed && c->out_head &&
	    c->out_bytes + plen > c->o.pending_max) {
		c->want_writable = true;
		return VB_EAGAIN;
	}
	it = vbi_outq_new(OUT_PUB, (size_t)tlen + plen);
	if (!it)
		return VB_ENOMEM;
	it->topic_len = (uint16_t)tlen;
	it->fkind = n ? VBI_FRAME_HMSG : VBI_FRAME_MSG;
	it->size = (uint32_t)plen;
	memcpy(it->bytes, c->topic, (size_t)tlen);
	if (n)
		vbi_outq_hmsg_fill(it->bytes + tlen, h, n, blk, data, size);
	else if (size)
		memcpy(it->bytes + tlen, data, size);
	vbi_outq_append(c, it);
	if (large) {
		vbi_outq_pump(c); /* its first chunks, as credit allows */
		vbi_client_staged(c);
	}
	return VB_OK;
}

int vbi_outq_publish(struct vb_conn *c, const char *subject, const char *reply,
		     const void *data, size_t size)
{
	return vbi_outq_publish_hdr(c, subject, reply, NULL, 0, data, size);
}

int vb_publish(struct vb_conn *c, const char *subject, const void *data,
	       size_t size)
{
	return vb_publish_reply(c, subject, NULL, data, size);
}

int vb_publish_reply(struct vb_conn *c, const char *subject, const char *reply,
		     const void *data, size_t size)
{
	int rc;

	if (!c)
		return VB_EINVAL;
	client_lock(c);
	rc = vbi_outq_publish(c, subject, reply, data, size);
	client_unlock(c);
	return rc;
}

int vb_reserve(struct vb_conn *c, const char *subject, const char *reply,
	       size_t size, void **buf)
{
	void *topic, *payload;
	int tlen, rc;

	if (!c || !buf)
		return VB_EINVAL;
	client_lock(c);
	rc = VB_ECLOSED;
	if (c->state == CS_CLOSED)
		goto out;
	rc = VB_ESTATE;
	if (c->reserving || c->pubs_closed)
		goto out;
	rc = VB_EMSGSIZE;
	if (size > UINT32_MAX - 2 * VBI_SUBJECT_MAX - 1)
		goto out;
	rc = tlen = make_topic(c, subject, reply);
	if (tlen < 0)
		goto out;
	if (c->o.flags & VB_OPT_DIRECT)
		vbi_direct_reserve(c, strlen(subject), tlen, size);
	vbi_outq_pump(c);
	rc = VB_EAGAIN;
	if (c->state != CS_OPEN || c->out_head || c->move_ping) {
		c->want_writable = true;
		goto out;
	}
	rc = vbi_conn_reserve(c->vc, (uint16_t)tlen, (uint32_t)size, &topic,
			      &payload);
	if (rc == VB_EAGAIN)
		c->want_writable = true;
	if (rc)
		goto out;
	memcpy(topic, c->topic, (size_t)tlen);
	*buf = payload;
	c->reserving = true;
	c->res_size = (uint32_t)size;
	c->res_tlen = tlen;
	c->res_payload = payload;
out:
	client_unlock(c);
	return rc;
}

int vb_commit(struct vb_conn *c)
{
	int rc;

	if (!c)
		return VB_EINVAL;
	client_lock(c);
	rc = VB_ESTATE;
	if (c->reserving && c->vc) {
		if (c->o.flags & VB_OPT_DIRECT)
			vbi_direct_publish_reserved(c, c->topic, c->res_tlen,
						    c->res_payload,
						    c->res_size);
		rc = vbi_conn_commit(c->vc);
		if (rc == VB_OK) {
			c->st.msgs_out++;
			c->st.bytes_out += c->res_size;
			vbi_client_staged(c);
		}
	}
	c->reserving = false;
	client_unlock(c);
	return rc;
}

/* ---- flush -------------------------------------------------------------- */

struct flush_wait {
	uint64_t id; /* the Ping sent, 0: none yet */
	uint64_t gen; /* on which connection */
};

static bool flush_done(struct vb_conn *c, void *arg)
{
	struct flush_wait *w = arg;

	if (w->id && w->gen == c->gen && c->state == CS_OPEN &&
	    c->pong_id >= w->id &&
	    (!c->dir || vbi_direct_pub_drained(c))) /* direct writes too */
		return true;
	/* (Re)issue the Ping once connected; a lost one is lost with its
	 * connection. */
	if (c->state == CS_OPEN && (!w->id || w->gen != c->gen)) {
		w->id = vbi_diag_ping(c);
		w->gen = c->gen;
	}
	return false;
}

int vb_flush(struct vb_conn *c, int timeout_ms)
{
	struct flush_wait w = { 0 };
	int rc;

	if (!c)
		return VB_EINVAL;
	client_lock(c);
	rc = vbi_client_wait(c, flush_done, &w,
			     timeout_ms < 0 ?
				     0 :
				     vbi_client_now_ns() +
					     (uint64_t)timeout_ms * 1000000ull);
	client_unlock(c);
	return rc;
}
