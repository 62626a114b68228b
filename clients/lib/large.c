/*
 * large.c - large messages, the pure part: cutting a message into chunks
 * and putting received chunks back together (see large.h).
 *
 * Decisions a reader must know.
 *
 * One buffer per message, allocated whole at its FIRST chunk (the total
 * is known then), so each chunk is copied once, to its place, and its
 * frame goes back to the ring at once: a stream never holds the receive
 * ring, however large its message.  What the partials may take is bounded
 * by the table's budget instead; a message that would pass it is dropped
 * at its FIRST (after evicting partials nobody has fed for idle_ns, which
 * a publisher that vanished without an ABORT leaves behind).
 *
 * A message is dropped or counted once.  A stream dropped part-way (too
 * large, no room, a chunk that does not follow) leaves a tombstone under
 * its key, so that its later chunks are discarded without counting the
 * message again; tombstones go with the stream's LAST or ABORT, or, idle
 * for idle_ns, at a later FIRST.  Chunks are the broker's to check, but
 * it forwards them from the publisher's memory, which a hostile publisher
 * can change under the forward: every field is checked here again, and a
 * bad chunk costs its message, never the connection.
 */
#include "clients/lib/large.h"
#include "core/frame.h"

#include <verbus/verbus.h>

#include <stdlib.h>
#include <string.h>

/* ---- shared buffers ----------------------------------------------------- */

/* A buffer for a message of @total bytes and a topic of @topic_len, with
 * one reference (the caller's); NULL if out of memory. */
static struct vbi_lbuf *lbuf_new(uint32_t total, uint16_t topic_len)
{
	struct vbi_lbuf *b =
		malloc(sizeof(*b) + (size_t)total + (size_t)topic_len + 1);

	if (!b)
		return NULL;
	b->refs = 1;
	b->total = total;
	b->topic_len = topic_len;
	b->bytes[(size_t)total + topic_len] = '\0';
	return b;
}

void vbi_lbuf_get(struct vbi_lbuf *b)
{
	b->refs++;
}

void vbi_lbuf_put(struct vbi_lbuf *b)
{
	if (b && --b->refs == 0)
		free(b);
}

/* ---- the table ---------------------------------------------------------- */

void vbi_large_init(struct vbi_large *t, uint32_t max_payload, uint64_t budget,
		    uint64_t idle_ns)
{
	*t = (struct vbi_large){
		.max_payload = max_payload,
		.budget = budget,
		.idle_ns = idle_ns,
	};
}

static struct vbi_large_part *part_find(struct vbi_large *t, uint64_t tag,
					uint32_t sid)
{
	struct vbi_large_key key = { .tag = tag, .sid = sid, .zero = 0 };
	struct vbi_large_part *p;

	HASH_FIND(hh, t->parts, &key, sizeof(key), p);
	return p;
}

/* Give back @p's message, if it has one: @p becomes a tombstone. */
static void part_bury(struct vbi_large *t, struct vbi_large_part *p)
{
	if (!p->buf)
		return;
	t->used -= p->total;
	vbi_lbuf_put(p->buf);
	p->buf = NULL;
}

static void part_free(struct vbi_large *t, struct vbi_large_part *p)
{
	HASH_DELETE(hh, t->parts, p);
	part_bury(t, p);
	free(p);
}

/* A new entry for @ck's stream of @sid, a tombstone (no buffer yet), in
 * the table; NULL if out of memory. */
static struct vbi_large_part *part_new(struct vbi_large *t, uint32_t sid,
				       const struct vbi_chunk *ck,
				       uint64_t now_ns)
{
	struct vbi_large_part *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->key.tag = ck->tag;
	p->key.sid = sid;
	p->total = ck->total;
	p->flags = ck->flags & VBI_CHUNK_HDRS;
	p->last_ns = now_ns;
	HASH_ADD(hh, t->parts, key, sizeof(p->key), p);
	if (part_find(t, ck->tag, sid) != p) { /* uthash out of memory */
		free(p);
		return NULL;
	}
	return p;
}

/* The rest of a stream dropped at @ck is to be discarded: a tombstone,
 * unless @ck ends it (or there is no memory for one: its later chunks
 * are then counted as a stream joined mid-way). */
static void bury_rest(struct vbi_large *t, uint32_t sid,
		      const struct vbi_chunk *ck, uint64_t now_ns)
{
	if (!(ck->flags & VBI_CHUNK_LAST))
		part_new(t, sid, ck, now_ns);
}

static bool idle(const struct vbi_large *t, const struct vbi_large_part *p,
		 uint64_t now_ns)
{
	return now_ns >= p->last_ns && now_ns - p->last_ns >= t->idle_ns;
}

/* Forget the idle tombstones; with @partials too, drop the idle partials
 * (counted), leaving tombstones. */
static void sweep(struct vbi_large *t, uint64_t now_ns, bool partials)
{
	struct vbi_large_part *p, *tmp;

	HASH_ITER(hh, t->parts, p, tmp)
	{
		if (!idle(t, p, now_ns))
			continue;
		if (!p->buf) {
			part_free(t, p);
		} else if (partials) {
			t->dropped++;
			part_bury(t, p);
		}
	}
	t->swept_ns = now_ns;
}

/* @p is whole: hand its message over. */
static enum vbi_large_res finish(struct vbi_large *t, struct vbi_large_part *p,
				 struct vbi_large_msg *out)
{
	out->buf = p->buf; /* the table's reference, now the caller's */
	t->used -= p->total;
	p->buf = NULL;
	part_free(t, p);
	t->done++;
	return VBI_LARGE_DONE;
}

/* A stream's FIRST chunk @ck. */
static enum vbi_large_res first(struct vbi_large *t, uint32_t sid,
				const struct vbi_chunk *ck, const char *topic,
				uint16_t topic_len, bool take, uint64_t now_ns,
				struct vbi_large_msg *out)
{
	struct vbi_large_part *p;
	uint32_t hlen;

	if (now_ns >= t->swept_ns && now_ns - t->swept_ns >= t->idle_ns)
		sweep(t, now_ns, false);
	if (!take) {
		bury_rest(t, sid, ck, now_ns);
		return VBI_LARGE_SKIPPED;
	}
	if (ck->total > t->max_payload) {
		t->dropped++;
		bury_rest(t, sid, ck, now_ns);
		return VBI_LARGE_TOO_BIG;
	}
	/* The whole header block comes in the FIRST: checked whole at the
	 * end (the delivery reads it as any HMSG's). */
	if ((ck->flags & VBI_CHUNK_HDRS) &&
	    vbi_frame_hmsg_split(ck->data, ck->len, &hlen) != VB_OK) {
		t->dropped++;
		bury_rest(t, sid, ck, now_ns);
		return VBI_LARGE_BAD;
	}
	if (t->used + ck->total > t->budget) {
		sweep(t, now_ns, true);
		if (t->used + ck->total > t->budget) {
			t->dropped++;
			bury_rest(t, sid, ck, now_ns);
			return VBI_LARGE_NO_ROOM;
		}
	}
	p = part_new(t, sid, ck, now_ns);
	if (p)
		p->buf = lbuf_new(ck->total, topic_len);
	if (!p || !p->buf) {
		/* What entry there is stays as the stream's tombstone. */
		if (p && (ck->flags & VBI_CHUNK_LAST))
			part_free(t, p);
		t->dropped++;
		return VBI_LARGE_NO_MEM;
	}
	t->used += ck->total;
	memcpy(vbi_lbuf_topic(p->buf), topic, topic_len);
	memcpy(p->buf->bytes, ck->data, ck->len);
	p->next = ck->len;
	if (ck->flags & VBI_CHUNK_LAST)
		return finish(t, p, out);
	return VBI_LARGE_MORE;
}

/* A chunk @ck after the FIRST, of the stream @p (NULL: none known). */
static enum vbi_large_res next(struct vbi_large *t, struct vbi_large_part *p,
			       uint32_t sid, const struct vbi_chunk *ck,
			       bool take, uint64_t now_ns,
			       struct vbi_large_msg *out)
{
	if (!p) {
		if (!take)
			return VBI_LARGE_DISCARDED;
		t->dropped++;
		bury_rest(t, sid, ck, now_ns);
		return VBI_LARGE_STRAY;
	}
	p->last_ns = now_ns;
	if (!p->buf) {
		if (ck->flags & VBI_CHUNK_LAST)
			part_free(t, p);
		return VBI_LARGE_DISCARDED;
	}
	if (ck->total != p->total || ck->off != p->next ||
	    (ck->flags & VBI_CHUNK_HDRS) != p->flags) {
		t->dropped++;
		if (ck->flags & VBI_CHUNK_LAST)
			part_free(t, p);
		else
			part_bury(t, p);
		return VBI_LARGE_BROKEN;
	}
	memcpy(p->buf->bytes + ck->off, ck->data, ck->len);
	p->next += ck->len;
	if (ck->flags & VBI_CHUNK_LAST)
		return finish(t, p, out);
	return VBI_LARGE_MORE;
}

enum vbi_large_res vbi_large_feed(struct vbi_large *t, uint32_t sid,
				  const char *topic, uint16_t topic_len,
				  const void *payload, uint32_t payload_len,
				  bool take, uint64_t now_ns,
				  struct vbi_large_msg *out)
{
	struct vbi_large_part *p;
	struct vbi_chunk ck;
	bool partial;

	memset(out, 0, sizeof(*out));
	if (vbi_chunk_parse(payload, payload_len, &ck) != VB_OK)
		return VBI_LARGE_BAD;
	out->total = ck.total;
	out->tag = ck.tag;
	out->hdrs = (ck.flags & VBI_CHUNK_HDRS) != 0;
	out->first = (ck.flags & VBI_CHUNK_FIRST) != 0;
	p = part_find(t, ck.tag, sid);
	if (ck.flags & VBI_CHUNK_ABORT) {
		if (!p)
			return VBI_LARGE_DISCARDED;
		partial = p->buf != NULL;
		part_free(t, p);
		if (!partial)
			return VBI_LARGE_DISCARDED;
		t->aborted++;
		return VBI_LARGE_ABORTED;
	}
	if (!(ck.flags & VBI_CHUNK_FIRST))
		return next(t, p, sid, &ck, take, now_ns, out);
	if (p) {
		/* The same tag again: the stream before it is lost. */
		if (p->buf)
			t->dropped++;
		part_free(t, p);
	}
	return first(t, sid, &ck, topic, topic_len, take, now_ns, out);
}

size_t vbi_large_partials(const struct vbi_large *t, uint32_t sid)
{
	const struct vbi_large_part *p;
	size_t n = 0;

	for (p = t->parts; p; p = p->hh.next)
		if (p->key.sid == sid && p->buf)
			n++;
	return n;
}

void vbi_large_drop_sid(struct vbi_large *t, uint32_t sid)
{
	struct vbi_large_part *p, *tmp;

	HASH_ITER(hh, t->parts, p, tmp)
	{
		if (p->key.sid == sid)
			part_free(t, p);
	}
}

void vbi_large_clear(struct vbi_large *t)
{
	struct vbi_large_part *p, *tmp;

	HASH_ITER(hh, t->parts, p, tmp)
	{
		if (p->buf)
			t->aborted++;
		part_free(t, p);
	}
}

/* ---- sending ------------------------------------------------------------ */

int vbi_large_plan(uint32_t total, uint32_t hdr_end, uint32_t off,
		   uint16_t topic_len, uint32_t frame_max, struct vbi_chunk *ck)
{
	uint32_t room, len;

	if (total == 0 || total > VBI_CHUNK_TOTAL_MAX || off >= total)
		return VB_EMSGSIZE;
	if ((uint64_t)topic_len + VBI_CHUNK_PREFIX_LEN >= frame_max)
		return VB_EMSGSIZE;
	room = frame_max - topic_len - VBI_CHUNK_PREFIX_LEN;
	len = total - off < room ? total - off : room;
	if (off == 0 && hdr_end > len)
		return VB_EMSGSIZE;
	ck->total = total;
	ck->off = off;
	ck->len = len;
	ck->flags = (off == 0 ? VBI_CHUNK_FIRST : 0) |
		    (len == total - off ? VBI_CHUNK_LAST : 0) |
		    (hdr_end ? VBI_CHUNK_HDRS : 0);
	return VB_OK;
}
