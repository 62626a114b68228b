/*
 * large.h - large messages in libverbus, the pure part: cutting a message
 * into CHUNK frames (core/chunk.h) and putting the chunks a connection
 * receives back together, per subscription and stream.
 *
 * A receiver's table holds one entry per stream under way, by (sid, tag):
 * a partial message (its bytes so far, in one buffer of the message's
 * size, allocated at its FIRST chunk), or a tombstone: a stream whose
 * message was dropped (too large, no room, a chunk that did not follow),
 * so that its later chunks are discarded quietly and the message is
 * counted once.  The partial messages' sizes count against a budget;
 * when a new one does not fit, partials idle for longer than idle_ns go
 * first.  A message put back together is a struct vbi_lbuf: its bytes
 * (what a MSG or HMSG payload would be), its topic after them, shared by
 * reference count among the deliveries and held messages that point into
 * it.
 *
 * Pure logic: no I/O, no locking (the connection's lock covers it), the
 * time passed in; only malloc.  tests/unit/test_large.c drives all of it.
 */
#ifndef VERBUS_CLIENTS_LIB_LARGE_H
#define VERBUS_CLIENTS_LIB_LARGE_H

#include "core/chunk.h"
#include "core/hash.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The defaults: a message up to 8 MiB, partials up to 4 of those, a
 * partial idle for 5 s may be evicted. */
#define VBI_LARGE_MAX_DEF (8u << 20)
#define VBI_LARGE_BUDGET_FACTOR 4u
#define VBI_LARGE_IDLE_NS (5ull * 1000000000ull)

/* A large message's bytes, shared by the references to it. */
struct vbi_lbuf {
	uint32_t refs; /* references: the table's, deliveries', holds' */
	uint32_t total; /* the message's bytes, at @bytes */
	uint16_t topic_len; /* the topic's, after them */
	/* total bytes of the message, topic_len of its topic, a NUL */
	char bytes[];
};

/* vbi_lbuf_topic() - where @b's topic starts. */
static inline char *vbi_lbuf_topic(struct vbi_lbuf *b)
{
	return b->bytes + b->total;
}

/* vbi_lbuf_get() - one more reference to @b. */
void vbi_lbuf_get(struct vbi_lbuf *b);

/* vbi_lbuf_put() - drop one reference to @b (NULL: nothing); the last
 * frees it. */
void vbi_lbuf_put(struct vbi_lbuf *b);

/* The key of a stream: whose, and which. */
struct vbi_large_key {
	uint64_t tag; /* the publisher's */
	uint32_t sid; /* the subscription it is delivered for */
	uint32_t zero; /* padding, always 0: the key is hashed whole */
};

/* One stream under way (table-internal). */
struct vbi_large_part {
	struct vbi_large_key key;
	struct vbi_lbuf *buf; /* the message so far; NULL: a tombstone */
	uint32_t total; /* the message's bytes, as its FIRST said */
	uint32_t next; /* where the next chunk must start */
	uint32_t flags; /* the FIRST's VBI_CHUNK_HDRS */
	uint64_t last_ns; /* the last chunk's arrival */
	UT_hash_handle hh;
};

/* A connection's streams under way. */
struct vbi_large {
	struct vbi_large_part *parts; /* by key, owned */
	uint64_t used; /* the partials' totals, summed */
	uint64_t budget; /* the most @used may be */
	uint32_t max_payload; /* the largest message taken */
	uint64_t idle_ns; /* a partial idle that long may be evicted */
	uint64_t swept_ns; /* when idle tombstones were last looked for */
	/* Counters, monotonic. */
	uint64_t done; /* messages put back together */
	uint64_t aborted; /* partials ended by an ABORT or vbi_large_clear */
	uint64_t dropped; /* messages dropped here: too large, no room or
			   * memory, a stream joined mid-way, a chunk that
			   * did not follow, a partial evicted */
};

/* What vbi_large_feed() made of a chunk. */
enum vbi_large_res {
	VBI_LARGE_MORE, /* taken: the message goes on */
	VBI_LARGE_DONE, /* taken, and the message is whole: *out */
	VBI_LARGE_DISCARDED, /* of a stream dropped or skipped before, or an
			      * ABORT of none we know: nothing to report */
	VBI_LARGE_SKIPPED, /* a FIRST the caller did not take: not counted */
	VBI_LARGE_ABORTED, /* an ABORT ended a partial (counted) */
	VBI_LARGE_STRAY, /* the first chunk seen of a stream joined mid-way
			  * (a subscription made during it): dropped,
			  * counted */
	VBI_LARGE_BROKEN, /* a chunk that does not follow the one before
			   * (offset, total, flags): the partial is dropped,
			   * counted */
	VBI_LARGE_TOO_BIG, /* a FIRST above max_payload: dropped, counted */
	VBI_LARGE_NO_ROOM, /* a FIRST over the budget: dropped, counted */
	VBI_LARGE_NO_MEM, /* a FIRST whose buffer could not be allocated */
	VBI_LARGE_BAD, /* a malformed prefix (nothing known of it: not
			* counted here), or a FIRST with headers whose block
			* is not inside it (dropped, counted) */
};

/* What vbi_large_feed() says of the chunk's message. */
struct vbi_large_msg {
	/* VBI_LARGE_DONE: the message, one reference now the caller's; its
	 * bytes are a MSG payload, or an HMSG payload if @hdrs. */
	struct vbi_lbuf *buf;
	bool hdrs;
	bool first; /* the chunk was its FIRST */
	uint32_t total; /* the message's bytes (as the chunk says) */
	uint64_t tag;
};

/*
 * vbi_large_init() - an empty table taking messages up to @max_payload
 * bytes, @budget bytes of partials at once, evicting partials idle for
 * @idle_ns when a new one does not fit.
 */
void vbi_large_init(struct vbi_large *t, uint32_t max_payload, uint64_t budget,
		    uint64_t idle_ns);

/*
 * vbi_large_feed() - one CHUNK frame delivered for subscription @sid:
 * @topic (@topic_len bytes) and @payload (@payload_len: prefix and piece),
 * arrived at @now_ns.  The bytes are copied; the caller releases the frame
 * when it returns.  @take: whether the subscription takes a new message
 * now (false: a FIRST is skipped, and so is its stream; a partial already
 * under way goes on).  Writes *@out (always: the fields the chunk
 * decides).  Returns what became of the chunk (enum vbi_large_res).
 */
enum vbi_large_res vbi_large_feed(struct vbi_large *t, uint32_t sid,
				  const char *topic, uint16_t topic_len,
				  const void *payload, uint32_t payload_len,
				  bool take, uint64_t now_ns,
				  struct vbi_large_msg *out);

/* vbi_large_partials() - how many partial messages @sid has under way. */
size_t vbi_large_partials(const struct vbi_large *t, uint32_t sid);

/* vbi_large_drop_sid() - forget @sid's streams (its subscription is gone:
 * not counted). */
void vbi_large_drop_sid(struct vbi_large *t, uint32_t sid);

/* vbi_large_clear() - forget every stream (the connection is gone: the
 * partials count as aborted).  The table stays usable. */
void vbi_large_clear(struct vbi_large *t);

/*
 * vbi_large_plan() - the next chunk of a message of @total bytes (@hdr_end:
 * the end of its header block, 0 without headers), sent from @off, in
 * frames of at most @frame_max topic + payload bytes with a topic of
 * @topic_len: fills @ck's total, off, flags and len (not tag or data).
 * Returns VB_OK, or VB_EMSGSIZE: no data fits beside the topic and the
 * prefix, the header block does not fit in the FIRST, or @total is 0 or
 * above VBI_CHUNK_TOTAL_MAX, or @off is not below it.
 */
int vbi_large_plan(uint32_t total, uint32_t hdr_end, uint32_t off,
		   uint16_t topic_len, uint32_t frame_max,
		   struct vbi_chunk *ck);

#endif /* VERBUS_CLIENTS_LIB_LARGE_H */
