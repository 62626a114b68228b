/*
 * stream.c - large messages in libverbus (vb_opts.max_payload in
 * verbus/verbus.h): a message too large for one frame of the broker goes
 * as a stream of CHUNK frames (core/chunk.h), and the chunks a connection
 * receives are put back together (large.c) and delivered as any message.
 *
 * Decisions a reader must know.
 *
 * Sending: one copy, then credit.  vb_publish() is non-blocking, so a
 * large message is copied once into a queued item, as any message that
 * cannot go at once; vbi_outq_pump() sends its chunks in order as the
 * transport takes them, the item staying at the head of the queue with
 * its cursor, so nothing published after it overtakes it.  The queue
 * takes a large message when it is empty even if it passes pending_max
 * (it could never go otherwise), and nothing more until it has gone.  A
 * connection lost part-way loses the stream (the broker aborts it for its
 * subscribers); the item starts again from its first byte, under a new
 * tag, on the next connection.
 *
 * Receiving: a copy per chunk, none per delivery.  Each chunk is copied
 * into its message's buffer and its frame goes back to the ring at once,
 * so a stream never holds the ring; the message, once whole, is delivered
 * through the paths of any message (callbacks, vb_msg_hold, synchronous
 * queues, pending limits, requests), which share its buffer by reference
 * instead of copying it.  A large message counts towards its
 * subscription's auto-unsubscribe limit at its FIRST chunk, when the
 * broker sends it; a subscription that reaches its limit ends once its
 * streams under way have ended.
 */
#include "clients/lib/client.h"
#include "core/chunk.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

_Static_assert(VB_MAX_PAYLOAD_MAX == VBI_CHUNK_TOTAL_MAX,
	       "vb_opts.max_payload's bound is the protocol's");

/* ---- sending ------------------------------------------------------------ */

/* The largest topic + payload of a chunk frame to the open connection's
 * broker (0: it takes no stream), and the largest message. */
static void peer_limits(struct vb_conn *c, uint32_t *frame_max,
			uint32_t *max_payload)
{
	struct vbi_conn_stats cs;

	vbi_conn_stats(c->vc, &cs);
	*frame_max = cs.peer_max_msg < VBI_CHUNK_FRAME_MAX ?
			     cs.peer_max_msg :
			     VBI_CHUNK_FRAME_MAX;
	*max_payload = cs.peer_max_payload;
}

bool vbi_stream_fits(struct vb_conn *c, size_t topic_len, size_t size)
{
	uint32_t frame_max, max_payload;

	if (c->state != CS_OPEN || !c->vc)
		return false;
	peer_limits(c, &frame_max, &max_payload);
	return size > 0 && size <= max_payload && size <= VBI_CHUNK_TOTAL_MAX &&
	       topic_len + VBI_CHUNK_PREFIX_LEN < frame_max;
}

/* The end of @it's header block (an HMSG payload), or 0 without one. */
static uint32_t hdr_end(const struct out_item *it)
{
	const uint8_t *p = it->bytes + it->topic_len;

	if (it->fkind != VBI_FRAME_HMSG)
		return 0;
	return VBI_FRAME_HLEN_LEN + ((uint32_t)p[0] | (uint32_t)p[1] << 8 |
				     (uint32_t)p[2] << 16 |
				     (uint32_t)p[3] << 24);
}

/* A tag no other stream of this connection has had. */
static uint64_t new_tag(struct vb_conn *c)
{
	if (c->tag_base == 0 && getrandom(&c->tag_base, sizeof(c->tag_base),
					  0) != sizeof(c->tag_base))
		c->tag_base = vbi_client_now_ns() * 0x9e3779b97f4a7c15ull;
	return c->tag_base + ++c->tag_seq;
}

int vbi_stream_send(struct vb_conn *c, struct out_item *it)
{
	uint32_t frame_max, max_payload, end = hdr_end(it);
	struct vbi_chunk ck;
	void *t, *p;
	int rc;

	peer_limits(c, &frame_max, &max_payload);
	if (!it->tag) {
		/* Checked for the broker it goes to now: this connection's
		 * may differ from the one it was published on. */
		if (it->size > max_payload)
			return VB_EMSGSIZE;
		it->tag = new_tag(c);
		it->off = 0;
	}
	while (it->off < it->size) {
		rc = vbi_large_plan(it->size, end, it->off, it->topic_len,
				    frame_max, &ck);
		if (rc)
			return rc;
		ck.tag = it->tag;
		rc = vbi_conn_reserve_kind(
			c->vc, VBI_FRAME_CHUNK, it->topic_len,
			VBI_CHUNK_PREFIX_LEN + ck.len, &t, &p);
		/* A connection going: the item waits for the next. */
		if (rc == VB_ECLOSED || rc == VB_ESTATE)
			return VB_EAGAIN;
		if (rc)
			return rc;
		memcpy(t, it->bytes, it->topic_len);
		vbi_chunk_put(p, &ck);
		memcpy((uint8_t *)p + VBI_CHUNK_PREFIX_LEN,
		       it->bytes + it->topic_len + ck.off, ck.len);
		rc = vbi_conn_commit(c->vc);
		if (rc)
			return rc;
		it->off += ck.len;
	}
	c->st.large_msgs_out++;
	return VB_OK;
}

/* ---- receiving ---------------------------------------------------------- */

/*
 * The first message of an episode dropped for want of room or memory to
 * put it back together (VB_EV_SLOW_CONSUMER, as the pending limits' drops:
 * counted in vb_sub_dropped, once per episode).
 */
static void no_room(struct vb_conn *c, struct vb_sub *s, uint32_t total,
		    enum vbi_large_res res)
{
	char why[VBI_SUBJECT_MAX + 192];

	s->pend.dropped++;
	if (s->pend.slow)
		return;
	s->pend.slow = true;
	if (res == VBI_LARGE_NO_MEM)
		snprintf(why, sizeof(why),
			 "slow consumer: \"%s\": no memory for a large "
			 "message of %" PRIu32 " bytes: messages dropped",
			 s->pattern, total);
	else
		snprintf(why, sizeof(why),
			 "slow consumer: \"%s\": large messages being received "
			 "hold %" PRIu64 " bytes (the most is %" PRIu64
			 "): a message of %" PRIu32 " bytes dropped",
			 s->pattern, c->large.used, c->large.budget, total);
	vbi_client_event(c, VB_EV_SLOW_CONSUMER, VB_ENOSPC, why, s,
			 s->pend.dropped);
}

static void too_big(struct vb_conn *c, struct vb_sub *s, uint32_t total)
{
	char why[VBI_SUBJECT_MAX + 128];

	snprintf(why, sizeof(why),
		 "a message of %" PRIu32 " bytes for \"%s\" is larger than "
		 "this connection's max_payload (%" PRIu32 "): dropped",
		 total, s->pattern, c->large.max_payload);
	vbi_client_event(c, VB_EV_NOTICE, VB_EMSGSIZE, why, s, 0);
}

static void malformed(struct vb_conn *c, enum vbi_large_res res)
{
	c->st.bad_msgs++;
	vbi_client_event(c, VB_EV_NOTICE, VB_EPROTO,
			 res == VBI_LARGE_BROKEN ?
				 "a large message was dropped: a chunk did "
				 "not follow the one before" :
				 "a large message was dropped: a malformed "
				 "chunk",
			 NULL, 0);
}

/* Whether @s takes a new large message now (its FIRST chunk). */
static bool takes_new(struct vb_sub *s)
{
	if (!s || s->gone || s->ended)
		return false;
	if (s->drain && vbi_drain_expired(s))
		return false;
	/* received counts the large messages under way already (at their
	 * FIRST), as the broker's count does. */
	return !s->max || s->received < s->max;
}

/* The message @m is whole: deliver it to @s as any message. */
static void deliver(struct vb_conn *c, struct vb_sub *s,
		    const struct vbi_large_msg *m)
{
	struct vbi_lbuf *b = m->buf;
	struct held_msg h = {
		.c = c,
		.lbuf = b,
		.v = {
			.kind = m->hdrs ? VBI_FRAME_HMSG : VBI_FRAME_MSG,
			.topic = vbi_lbuf_topic(b),
			.topic_len = b->topic_len,
			.payload = b->bytes,
			.payload_len = b->total,
			.sid = s->sid,
		},
	};

	vbi_subs_deliver_large(c, s, &h);
}

void vbi_stream_chunk(struct vb_conn *c, struct vbi_conn *vc,
		      const struct vbi_frame_view *v)
{
	struct vb_sub *s = c->closing ? NULL : vbi_subs_find(c, v->sid);
	bool take = takes_new(s);
	struct vbi_large_msg m;
	enum vbi_large_res res;

	res = vbi_large_feed(&c->large, v->sid, v->topic, v->topic_len,
			     v->payload, v->payload_len, take,
			     vbi_client_later_ns(), &m);
	vbi_conn_release(vc, v); /* copied: the ring has it back at once */
	/* The broker sent it (taken, or dropped for its size): it counts. */
	if (take && m.first && res != VBI_LARGE_SKIPPED)
		s->received++;
	switch (res) {
	case VBI_LARGE_DONE:
		if (s) {
			deliver(c, s, &m); /* may free @s */
			return;
		}
		/* Gone since its FIRST (only a closing connection). */
		vbi_lbuf_put(m.buf);
		c->st.orphans++;
		return;
	case VBI_LARGE_MORE:
	case VBI_LARGE_DISCARDED:
	case VBI_LARGE_ABORTED:
	case VBI_LARGE_STRAY:
		break;
	case VBI_LARGE_SKIPPED:
		c->st.orphans++;
		return;
	case VBI_LARGE_BAD:
	case VBI_LARGE_BROKEN:
		malformed(c, res);
		break;
	case VBI_LARGE_TOO_BIG:
	case VBI_LARGE_NO_ROOM:
	case VBI_LARGE_NO_MEM:
		s->in_cb++; /* the event's handler may unsubscribe it */
		if (res == VBI_LARGE_TOO_BIG)
			too_big(c, s, m.total);
		else
			no_room(c, s, m.total, res);
		s->in_cb--;
		break;
	}
	if (!s)
		return;
	if (s->gone)
		vbi_subs_settle(s);
	else if (s->max && s->received >= s->max &&
		 !vbi_large_partials(&c->large, s->sid))
		vbi_subs_remove(s); /* the broker has ended it too */
}

void vbi_stream_lost(struct vb_conn *c)
{
	vbi_large_clear(&c->large);
}
