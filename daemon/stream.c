/*
 * stream.c - large messages: streams of CHUNK frames (core/chunk.h).
 *
 * Decisions a reader must know:
 *  - A message larger than a frame comes as its publisher's stream of
 *    CHUNK frames through the publisher's ring: no memory beyond the rings.
 *    Each chunk is forwarded like a message, zero-copy from that ring, to
 *    the stream's recipients; the broker never holds the whole message.
 *  - The stream is routed once, at its first chunk, through the path of
 *    every message (subject, permissions, match, queue groups, routes, no
 *    responders: bk_route_frame()) with b->collect set, so that each
 *    delivery made is recorded as a recipient (bk_deliver_to()).  Later
 *    chunks go to those recipients only: a subscription made meanwhile
 *    gets the next message, not the middle of this one, and a queue group
 *    member keeps the whole message.
 *  - Chunks of several streams interleave on a subscriber's connection;
 *    its library reassembles per (sid, tag).  The tag is the publisher's,
 *    checked unique among the streams under way here, so a subscriber
 *    never sees two streams with one tag from this broker.
 *  - A client publishes one stream at a time, in order: its first chunk
 *    at offset 0, each next where the last ended, the same tag and total,
 *    the last at total.  A client that breaks this breaks the protocol and
 *    is closed with the reason; a route's stray chunk is ignored (its peer
 *    ended the stream, or we refused its tag).
 *  - A recipient that loses a chunk (slow-consumer policy, a failed
 *    forward) gets no more of the stream, and an ABORT behind what is
 *    queued for it (bk_owe_abort()); so do all of them when the publisher
 *    closes mid-stream or stops sending for STREAM_STALL_FACTOR block
 *    timeouts (a client publisher is then closed).  A recipient's
 *    auto-unsubscribe limit is applied once the stream ends.
 *  - One allocation per large message (the stream and its recipients):
 *    small next to the megabytes it carries.
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

/* A stream with no chunk for this many block_timeout_ms ends; a route's
 * gets twice as long (its peer ends its own publisher's first). */
#define STREAM_STALL_FACTOR 4u

static struct bstream *stream_find(struct vbd_broker *b, uint64_t tag)
{
	struct bstream *st;

	HASH_FIND(hh, b->streams, &tag, sizeof(tag), st);
	return st;
}

static void stream_free(struct vbd_broker *b, struct bstream *st)
{
	HASH_DEL(b->streams, st);
	if (st->src->stream == st)
		st->src->stream = NULL;
	st->src->nstreams--;
	free(st->to);
	free(st);
}

void bk_stream_record(struct bstream *st, struct bconn *dst, uint32_t sid)
{
	struct brecip *to;

	if (st->nto == st->cap) {
		size_t cap = st->cap ? st->cap * 2 : 8;

		to = realloc(st->to, cap * sizeof(*to));
		if (!to) {
			/* Its first chunk went: it hears that the rest
			 * will not. */
			bk_owe_abort(dst, sid, st, 0);
			return;
		}
		st->to = to;
		st->cap = cap;
	}
	to = &st->to[st->nto++];
	to->cid = dst->cid;
	to->sid = sid;
	to->lost = false;
	/* One message out for it (its chunks count bytes only). */
	dst->msgs_out++;
	dst->b->st.msgs_out++;
}

static struct bconn *conn_find(struct vbd_broker *b, uint64_t cid)
{
	struct bconn *bc;

	HASH_FIND(hh, b->by_cid, &cid, sizeof(cid), bc);
	return bc;
}

/*
 * @r's connection, if it still takes the stream: open.  Its subscription
 * may have gone since the first chunk (an Unsubscribe, a drain, another
 * message reaching its auto-unsubscribe limit): the message was routed
 * while it was there, so the rest of it still goes, as the frames of a
 * small one already on their way would (the library delivers it to a
 * subscription it keeps for it, or drops it as an orphan).
 */
static struct bconn *recip_conn(struct vbd_broker *b, const struct brecip *r)
{
	struct bconn *dst = conn_find(b, r->cid);

	if (!dst || dst->closing)
		return NULL;
	return dst;
}

/*
 * @st ends.  @done: its last chunk went; else every recipient still
 * taking it is owed an ABORT at @st->next.  Either way a subscription
 * whose auto-unsubscribe limit the message reached ends now.
 */
static void stream_end(struct vbd_broker *b, struct bstream *st, bool done)
{
	size_t i;

	for (i = 0; i < st->nto; i++) {
		struct brecip *r = &st->to[i];
		struct bconn *dst = recip_conn(b, r);
		struct bsub *s;

		if (!dst || dst == st->src)
			continue;
		if (!done && !r->lost)
			bk_owe_abort(dst, r->sid, st, st->next);
		if (dst->role == BK_CLIENT && (s = bk_sub_find(dst, r->sid)) &&
		    s->max_msgs && s->delivered >= s->max_msgs)
			bk_sub_free(b, s);
	}
	if (!done)
		b->st.large_aborted++;
	stream_free(b, st);
}

/* Chunk @v (at @off) to every recipient of @st still taking it. */
static void stream_forward(struct vbd_broker *b, struct bstream *st,
			   struct bconn *pub, const struct vbi_frame_view *v,
			   uint32_t off)
{
	size_t i;

	for (i = 0; i < st->nto; i++) {
		struct brecip *r = &st->to[i];
		struct bconn *dst;

		if (r->lost)
			continue;
		dst = recip_conn(b, r);
		if (!dst) {
			r->lost = true;
			continue;
		}
		if (!bk_deliver_to(dst, pub, v, r->sid)) {
			r->lost = true;
			bk_owe_abort(dst, r->sid, st, off);
		}
	}
}

/* A client broke the stream protocol: closed, with the reason. */
static void client_fail(struct bconn *bc, const struct vbi_frame_view *v,
			const char *why)
{
	vbi_warn("conn cid %" PRIu64 " %s: %s; closed", bc->cid, bc->name, why);
	bc->b->st.bad_chunks++;
	bc->closing = true;
	vbi_conn_release(bc->c, v);
	vbi_conn_close(bc->c);
}

/* What is wrong with the header block of a first chunk that says it has
 * one, or NULL: the whole block is in the first chunk. */
static const char *first_hdrs_bad(const struct vbi_chunk *ck)
{
	uint32_t hlen;

	if (!(ck->flags & VBI_CHUNK_HDRS))
		return NULL;
	if (vbi_frame_hmsg_split(ck->data, ck->len, &hlen))
		return "its header block is not all in its first chunk";
	if (vbi_hdr_validate((const char *)ck->data + VBI_FRAME_HLEN_LEN, hlen))
		return "its header block is not NATS/1.0 headers";
	return NULL;
}

/*
 * A first chunk: a new stream, unless it breaks a rule (returns the
 * reason; a route's refused stream returns "" and is ignored).
 */
static const char *stream_open(struct bconn *bc, const struct vbi_chunk *ck,
			       struct bstream **out)
{
	struct vbd_broker *b = bc->b;
	struct bstream *st;
	const char *bad;

	*out = NULL;
	if (bc->role == BK_CLIENT) {
		if (bc->stream)
			return "sent a large message's first chunk before the "
			       "last one ended";
		if (ck->total > b->cfg.max_payload)
			return "sent a large message above limits.max_payload";
	}
	if (stream_find(b, ck->tag)) {
		if (bc->role == BK_CLIENT)
			return "sent a large message with a tag in use";
		vbi_warn("route cid %" PRIu64 " %s: a large message's tag is "
			 "in use here: that message is dropped",
			 bc->cid, bc->name);
		return "";
	}
	bad = first_hdrs_bad(ck);
	if (bad)
		return bad;
	st = calloc(1, sizeof(*st));
	if (!st)
		return "out of memory for a large message";
	st->tag = ck->tag;
	st->src = bc;
	st->total = ck->total;
	HASH_ADD(hh, b->streams, tag, sizeof(st->tag), st);
	if (st->oom) {
		free(st);
		return "out of memory for a large message";
	}
	bc->nstreams++;
	if (bc->role == BK_CLIENT)
		bc->stream = st;
	*out = st;
	return NULL;
}

/* The stream a later chunk of @bc belongs to, or NULL (*@why says why,
 * "" for a route's stray chunk). */
static struct bstream *stream_of(struct bconn *bc, const struct vbi_chunk *ck,
				 const char **why)
{
	struct bstream *st = bc->role == BK_CLIENT ?
				     bc->stream :
				     stream_find(bc->b, ck->tag);

	*why = "";
	if (!st || st->src != bc) {
		if (bc->role == BK_CLIENT)
			*why = "sent a large message's chunk with no first "
			       "chunk before it";
		return NULL;
	}
	if (st->tag != ck->tag || st->total != ck->total ||
	    st->next != ck->off) {
		*why = "sent a large message's chunk that does not follow the "
		       "one before (tag, total or offset)";
		return NULL;
	}
	return st;
}

void bk_chunk(struct bconn *bc, const struct vbi_frame_view *v)
{
	struct vbd_broker *b = bc->b;
	struct vbi_chunk ck;
	struct bstream *st;
	const char *why;

	bc->bytes_in += v->topic_len + v->payload_len;
	b->st.bytes_in += v->topic_len + v->payload_len;
	if (vbi_chunk_parse(v->payload, v->payload_len, &ck)) {
		why = "sent a malformed chunk (core/chunk.h)";
		goto out_fail;
	}
	if (ck.flags & VBI_CHUNK_FIRST) {
		why = stream_open(bc, &ck, &st);
		if (!st)
			goto out_fail;
		bc->msgs_in++;
		b->st.msgs_in++;
		b->st.large_in++;
		st->next = ck.len;
		st->last_ms = vbi_clock_coarse_ms();
		b->collect = st;
		bk_route_frame(bc, v);
		b->collect = NULL;
		/* Routing it may have closed the route it came from. */
		if (ck.flags & VBI_CHUNK_LAST)
			stream_end(b, st, true);
		goto out_release;
	}
	st = stream_of(bc, &ck, &why);
	if (!st)
		goto out_fail;
	st->next += ck.len;
	st->last_ms = vbi_clock_coarse_ms();
	stream_forward(b, st, bc, v, ck.off);
	if (ck.flags & (VBI_CHUNK_LAST | VBI_CHUNK_ABORT))
		stream_end(b, st, !(ck.flags & VBI_CHUNK_ABORT));
out_release:
	vbi_conn_release(bc->c, v);
	return;
out_fail:
	if (bc->role == BK_CLIENT) {
		client_fail(bc, v, why);
		return;
	}
	if (*why)
		bk_route_fail(bc, why);
	vbi_conn_release(bc->c, v);
}

void bk_streams_src_gone(struct bconn *bc)
{
	struct bstream *st, *tmp;

	if (!bc->nstreams)
		return;
	HASH_ITER(hh, bc->b->streams, st, tmp)
	{
		if (st->src == bc)
			stream_end(bc->b, st, false);
	}
}

void bk_streams_tick(struct vbd_broker *b, uint64_t now)
{
	uint64_t limit =
		(uint64_t)b->cfg.block_timeout_ms * STREAM_STALL_FACTOR;
	struct bstream *st, *tmp;

	HASH_ITER(hh, b->streams, st, tmp)
	{
		struct bconn *src = st->src;
		uint64_t after = src->role == BK_ROUTE ? 2 * limit : limit;

		/* Paused by us, it is not the one stalling. */
		if (src->paused || src->closing || st->last_ms + after > now)
			continue;
		vbi_warn("%s cid %" PRIu64 " %s: a large message stalled at "
			 "%u of %u bytes: no chunk for %" PRIu64 " ms%s",
			 src->role == BK_ROUTE ? "route" : "conn", src->cid,
			 src->name, st->next, st->total, after,
			 src->role == BK_ROUTE ? "; dropped" : "; closed");
		if (src->role == BK_ROUTE) {
			stream_end(b, st, false);
			continue;
		}
		/* Its streams end as it closes (bk_conn_closed). */
		src->closing = true;
		vbi_conn_close(src->c);
	}
}
