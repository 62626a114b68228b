/*
 * Unit tests for large messages in libverbus, the pure part
 * (clients/lib/large.c): cutting a message into chunks, and putting
 * chunks back together per (subscription, stream), with the counters,
 * the budget, idle eviction, tombstones and every way a stream can go
 * wrong (aborted, joined mid-way, a chunk that does not follow, too large,
 * a malformed prefix or header block).
 */
#include "clients/lib/large.h"
#include "core/chunk.h"

#include <verbus/verbus.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define SEC 1000000000ull
#define TOPIC "big.one reply.here"
#define TLEN ((uint16_t)(sizeof(TOPIC) - 1))

/* A test's table: max 1 MiB, budget 2.5 MiB, idle after 5 s. */
static void table(struct vbi_large *t)
{
	vbi_large_init(t, 1u << 20, (5u << 20) / 2, 5 * SEC);
}

/* The chunk payload of @ck (prefix, then @len bytes of @msg from
 * ck->off), in @buf. */
static uint32_t make_chunk(uint8_t *buf, const struct vbi_chunk *ck,
			   const uint8_t *msg)
{
	vbi_chunk_put(buf, ck);
	if (ck->len)
		memcpy(buf + VBI_CHUNK_PREFIX_LEN, msg + ck->off, ck->len);
	return VBI_CHUNK_PREFIX_LEN + ck->len;
}

/* Feed one hand-made chunk. */
static enum vbi_large_res feed(struct vbi_large *t, uint32_t sid, uint64_t tag,
			       uint32_t total, uint32_t off, uint32_t len,
			       uint32_t flags, const uint8_t *msg, bool take,
			       uint64_t now, struct vbi_large_msg *out)
{
	struct vbi_chunk ck = {
		.tag = tag,
		.total = total,
		.off = off,
		.flags = flags,
		.len = len,
	};
	uint8_t *buf = malloc(VBI_CHUNK_PREFIX_LEN + len);
	enum vbi_large_res r;
	uint32_t n;

	assert_non_null(buf);
	n = make_chunk(buf, &ck, msg);
	r = vbi_large_feed(t, sid, TOPIC, TLEN, buf, n, take, now, out);
	free(buf);
	return r;
}

static uint8_t *pattern(uint32_t n, uint32_t seed)
{
	uint8_t *p = malloc(n ? n : 1);
	uint32_t i;

	assert_non_null(p);
	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 7 + seed + (i >> 13));
	return p;
}

/* ---- planning ----------------------------------------------------------- */

static void test_large_plan_sizes(void **state)
{
	struct vbi_chunk ck;
	const uint32_t fmax = 1000, room = fmax - TLEN - VBI_CHUNK_PREFIX_LEN;

	(void)state;
	/* One byte: one chunk, first and last. */
	assert_int_equal(vbi_large_plan(1, 0, 0, TLEN, fmax, &ck), VB_OK);
	assert_int_equal(ck.len, 1);
	assert_int_equal(ck.flags, VBI_CHUNK_FIRST | VBI_CHUNK_LAST);
	/* Exactly one frame's room, then one byte more. */
	assert_int_equal(vbi_large_plan(room, 0, 0, TLEN, fmax, &ck), VB_OK);
	assert_int_equal(ck.len, room);
	assert_int_equal(ck.flags, VBI_CHUNK_FIRST | VBI_CHUNK_LAST);
	assert_int_equal(vbi_large_plan(room + 1, 0, 0, TLEN, fmax, &ck),
			 VB_OK);
	assert_int_equal(ck.len, room);
	assert_int_equal(ck.flags, VBI_CHUNK_FIRST);
	assert_int_equal(vbi_large_plan(room + 1, 0, room, TLEN, fmax, &ck),
			 VB_OK);
	assert_int_equal(ck.off, room);
	assert_int_equal(ck.len, 1);
	assert_int_equal(ck.flags, VBI_CHUNK_LAST);
	/* A middle chunk has neither flag; headers flag every chunk. */
	assert_int_equal(vbi_large_plan(3 * room, 40, room, TLEN, fmax, &ck),
			 VB_OK);
	assert_int_equal(ck.flags, VBI_CHUNK_HDRS);
	assert_int_equal(vbi_large_plan(3 * room, 40, 0, TLEN, fmax, &ck),
			 VB_OK);
	assert_int_equal(ck.flags, VBI_CHUNK_FIRST | VBI_CHUNK_HDRS);
	assert_int_equal(ck.total, 3 * room);
}

static void test_large_plan_refusals(void **state)
{
	struct vbi_chunk ck = { .tag = 99 };
	const uint32_t fmax = 1000, room = fmax - TLEN - VBI_CHUNK_PREFIX_LEN;

	(void)state;
	assert_int_equal(vbi_large_plan(0, 0, 0, TLEN, fmax, &ck), VB_EMSGSIZE);
	assert_int_equal(
		vbi_large_plan(VBI_CHUNK_TOTAL_MAX + 1, 0, 0, TLEN, fmax, &ck),
		VB_EMSGSIZE);
	assert_int_equal(vbi_large_plan(10, 0, 10, TLEN, fmax, &ck),
			 VB_EMSGSIZE);
	/* No room for data beside the topic and the prefix. */
	assert_int_equal(vbi_large_plan(10, 0, 0, 1000 - VBI_CHUNK_PREFIX_LEN,
					fmax, &ck),
			 VB_EMSGSIZE);
	assert_int_equal(
		vbi_large_plan(10, 0, 0, 999 - VBI_CHUNK_PREFIX_LEN, fmax, &ck),
		VB_OK);
	/* A header block that does not fit in the FIRST. */
	assert_int_equal(vbi_large_plan(5 * room, room + 1, 0, TLEN, fmax, &ck),
			 VB_EMSGSIZE);
	assert_int_equal(vbi_large_plan(5 * room, room, 0, TLEN, fmax, &ck),
			 VB_OK);
	assert_int_equal(
		vbi_large_plan(VBI_CHUNK_TOTAL_MAX, 0, 0, TLEN, fmax, &ck),
		VB_OK);
	assert_int_equal(ck.tag, 99); /* not the plan's to write */
}

/* ---- putting back together ---------------------------------------------- */

/* Cut @msg (@total bytes; @hdr_end) as a sender does, feed every chunk
 * and check the message that comes out. */
static void round_trip(uint32_t total, uint32_t hdr_end, uint32_t fmax)
{
	uint8_t *msg = pattern(total, total), *buf = malloc(fmax);
	struct vbi_large t;
	struct vbi_large_msg m;
	struct vbi_chunk ck;
	enum vbi_large_res r = VBI_LARGE_MORE;
	uint32_t off = 0, n, chunks = 0;

	assert_non_null(buf);
	if (hdr_end) { /* a plausible block length */
		msg[0] = (uint8_t)(hdr_end - 4);
		msg[1] = (uint8_t)((hdr_end - 4) >> 8);
		msg[2] = msg[3] = 0;
	}
	table(&t);
	while (off < total) {
		assert_int_equal(r, VBI_LARGE_MORE);
		assert_int_equal(
			vbi_large_plan(total, hdr_end, off, TLEN, fmax, &ck),
			VB_OK);
		ck.tag = 0x1122334455667788ull;
		n = make_chunk(buf, &ck, msg);
		assert_true(TLEN + n <= fmax);
		r = vbi_large_feed(&t, 7, TOPIC, TLEN, buf, n, true,
				   chunks * 1000, &m);
		off += ck.len;
		chunks++;
	}
	assert_int_equal(r, VBI_LARGE_DONE);
	assert_non_null(m.buf);
	assert_int_equal(m.buf->refs, 1);
	assert_int_equal(m.buf->total, total);
	assert_int_equal(m.total, total);
	assert_int_equal(m.hdrs, hdr_end != 0);
	assert_int_equal(m.buf->topic_len, TLEN);
	assert_memory_equal(vbi_lbuf_topic(m.buf), TOPIC, TLEN);
	assert_int_equal(vbi_lbuf_topic(m.buf)[TLEN], '\0');
	assert_memory_equal(m.buf->bytes, msg, total);
	assert_int_equal(t.done, 1);
	assert_int_equal(t.dropped + t.aborted, 0);
	assert_int_equal(t.used, 0);
	assert_null(t.parts);
	vbi_lbuf_put(m.buf);
	free(buf);
	free(msg);
}

static void test_large_round_trip(void **state)
{
	(void)state;
	round_trip(1, 0, 65536);
	round_trip(65536, 0, 65536);
	round_trip(1u << 20, 0, 65536);
	round_trip((1u << 20) - 1, 0, 4096);
	round_trip(100000, 40, 65536);
	round_trip(300000, 4 + 2000, 4096);
}

/* Two subscriptions get one stream (same tag), and one of them another,
 * their chunks interleaved: three messages, each whole. */
static void test_large_interleaved(void **state)
{
	uint8_t *a = pattern(3000, 1), *b = pattern(2500, 2);
	struct vbi_large t;
	struct vbi_large_msg m;
	int done = 0;

	(void)state;
	table(&t);
	assert_int_equal(
		feed(&t, 1, 10, 3000, 0, 1000, VBI_CHUNK_FIRST, a, true, 0, &m),
		VBI_LARGE_MORE);
	assert_true(m.first);
	assert_int_equal(
		feed(&t, 2, 10, 3000, 0, 1000, VBI_CHUNK_FIRST, a, true, 0, &m),
		VBI_LARGE_MORE);
	assert_int_equal(
		feed(&t, 1, 11, 2500, 0, 2000, VBI_CHUNK_FIRST, b, true, 0, &m),
		VBI_LARGE_MORE);
	assert_int_equal(vbi_large_partials(&t, 1), 2);
	assert_int_equal(vbi_large_partials(&t, 2), 1);
	assert_int_equal(vbi_large_partials(&t, 3), 0);
	assert_int_equal(t.used, 8500);
	assert_int_equal(feed(&t, 1, 10, 3000, 1000, 1000, 0, a, true, 0, &m),
			 VBI_LARGE_MORE);
	assert_false(m.first);
	assert_int_equal(feed(&t, 1, 11, 2500, 2000, 500, VBI_CHUNK_LAST, b,
			      true, 0, &m),
			 VBI_LARGE_DONE);
	assert_memory_equal(m.buf->bytes, b, 2500);
	vbi_lbuf_put(m.buf);
	done++;
	assert_int_equal(feed(&t, 2, 10, 3000, 1000, 2000, VBI_CHUNK_LAST, a,
			      true, 0, &m),
			 VBI_LARGE_DONE);
	assert_memory_equal(m.buf->bytes, a, 3000);
	vbi_lbuf_put(m.buf);
	done++;
	assert_int_equal(feed(&t, 1, 10, 3000, 2000, 1000, VBI_CHUNK_LAST, a,
			      true, 0, &m),
			 VBI_LARGE_DONE);
	assert_memory_equal(m.buf->bytes, a, 3000);
	vbi_lbuf_put(m.buf);
	done++;
	assert_int_equal(t.done, done);
	assert_int_equal(t.used, 0);
	assert_null(t.parts);
	free(a);
	free(b);
}

/* An ABORT drops the partial (counted); of a stream unknown, nothing. */
static void test_large_abort(void **state)
{
	uint8_t *a = pattern(3000, 3);
	struct vbi_large t;
	struct vbi_large_msg m;

	(void)state;
	table(&t);
	assert_int_equal(
		feed(&t, 1, 5, 3000, 0, 1000, VBI_CHUNK_FIRST, a, true, 0, &m),
		VBI_LARGE_MORE);
	assert_int_equal(
		feed(&t, 1, 5, 3000, 1000, 0, VBI_CHUNK_ABORT, a, true, 0, &m),
		VBI_LARGE_ABORTED);
	assert_int_equal(t.aborted, 1);
	assert_int_equal(t.used, 0);
	assert_null(t.parts);
	assert_int_equal(
		feed(&t, 1, 6, 3000, 0, 0, VBI_CHUNK_ABORT, a, true, 0, &m),
		VBI_LARGE_DISCARDED);
	assert_int_equal(t.aborted, 1);
	assert_int_equal(t.dropped, 0);
	free(a);
}

/* A subscription made during a stream sees it from the middle: the
 * message is counted once, the rest discarded, nothing left behind. */
static void test_large_joined_midway(void **state)
{
	uint8_t *a = pattern(4000, 4);
	struct vbi_large t;
	struct vbi_large_msg m;

	(void)state;
	table(&t);
	assert_int_equal(feed(&t, 1, 5, 4000, 1000, 1000, 0, a, true, 0, &m),
			 VBI_LARGE_STRAY);
	assert_int_equal(feed(&t, 1, 5, 4000, 2000, 1000, 0, a, true, 0, &m),
			 VBI_LARGE_DISCARDED);
	assert_int_equal(feed(&t, 1, 5, 4000, 3000, 1000, VBI_CHUNK_LAST, a,
			      true, 0, &m),
			 VBI_LARGE_DISCARDED);
	assert_int_equal(t.dropped, 1);
	assert_null(t.parts);
	/* A lone LAST: counted, nothing kept. */
	assert_int_equal(feed(&t, 1, 6, 4000, 3000, 1000, VBI_CHUNK_LAST, a,
			      true, 0, &m),
			 VBI_LARGE_STRAY);
	assert_int_equal(t.dropped, 2);
	assert_null(t.parts);
	/* One the subscription does not take: not counted at all. */
	assert_int_equal(feed(&t, 1, 7, 4000, 1000, 1000, 0, a, false, 0, &m),
			 VBI_LARGE_DISCARDED);
	assert_int_equal(t.dropped, 2);
	assert_null(t.parts);
	assert_int_equal(t.done, 0);
	free(a);
}

/* A chunk that does not follow drops its partial once. */
static void test_large_broken(void **state)
{
	uint8_t *a = pattern(4000, 5);
	struct vbi_large t;
	struct vbi_large_msg m;
	struct {
		uint32_t total, off, flags;
	} bad[] = {
		{ 4000, 2000, 0 }, /* a gap */
		{ 4000, 0, 0 }, /* back to the start, without FIRST */
		{ 5000, 1000, 0 }, /* another total */
		{ 4000, 1000, VBI_CHUNK_HDRS }, /* headers appear */
	};
	size_t i;

	(void)state;
	table(&t);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t tag = 100 + i;

		assert_int_equal(feed(&t, 1, tag, 4000, 0, 1000,
				      VBI_CHUNK_FIRST, a, true, 0, &m),
				 VBI_LARGE_MORE);
		/* The wrong offset 0 is refused by the prefix check
		 * itself (FIRST only at 0): a malformed chunk. */
		assert_int_equal(feed(&t, 1, tag, bad[i].total, bad[i].off,
				      1000, bad[i].flags, a, true, 0, &m),
				 bad[i].off == 0 ? VBI_LARGE_BAD :
						   VBI_LARGE_BROKEN);
		if (bad[i].off == 0) {
			/* Still under way: the next good chunk follows. */
			assert_int_equal(feed(&t, 1, tag, 4000, 1000, 1000, 0,
					      a, true, 0, &m),
					 VBI_LARGE_MORE);
			assert_int_equal(feed(&t, 1, tag, 4000, 3000, 1000,
					      VBI_CHUNK_LAST, a, true, 0, &m),
					 VBI_LARGE_BROKEN);
			continue;
		}
		assert_int_equal(t.used, 0);
		assert_int_equal(
			feed(&t, 1, tag, 4000, 2000, 1000, 0, a, true, 0, &m),
			VBI_LARGE_DISCARDED);
		assert_int_equal(feed(&t, 1, tag, 4000, 3000, 1000,
				      VBI_CHUNK_LAST, a, true, 0, &m),
				 VBI_LARGE_DISCARDED);
	}
	assert_int_equal(t.dropped, 4);
	assert_int_equal(t.done, 0);
	assert_int_equal(t.used, 0);
	assert_null(t.parts);
	free(a);
}

static void test_large_too_big(void **state)
{
	uint8_t *a = pattern((1u << 20) + 1, 6);
	struct vbi_large t;
	struct vbi_large_msg m;

	(void)state;
	table(&t);
	assert_int_equal(feed(&t, 1, 5, (1u << 20) + 1, 0, 1000,
			      VBI_CHUNK_FIRST, a, true, 0, &m),
			 VBI_LARGE_TOO_BIG);
	assert_int_equal(m.total, (1u << 20) + 1);
	assert_true(m.first);
	assert_null(m.buf);
	assert_int_equal(
		feed(&t, 1, 5, (1u << 20) + 1, 1000, 1000, 0, a, true, 0, &m),
		VBI_LARGE_DISCARDED);
	assert_int_equal(feed(&t, 1, 5, (1u << 20) + 1, 1u << 20, 1,
			      VBI_CHUNK_LAST, a, true, 0, &m),
			 VBI_LARGE_DISCARDED);
	assert_int_equal(t.dropped, 1);
	assert_int_equal(t.used, 0);
	assert_null(t.parts);
	/* The limit itself is taken. */
	assert_int_equal(feed(&t, 1, 6, 1u << 20, 0, 1000, VBI_CHUNK_FIRST, a,
			      true, 0, &m),
			 VBI_LARGE_MORE);
	assert_int_equal(t.used, 1u << 20);
	vbi_large_clear(&t);
	assert_int_equal(t.aborted, 1);
	free(a);
}

/* The budget: a FIRST that does not fit is dropped, unless partials idle
 * for idle_ns can make room. */
static void test_large_budget(void **state)
{
	uint8_t *a = pattern(3000, 7);
	const uint32_t mib = 1u << 20;
	struct vbi_large t;
	struct vbi_large_msg m;

	(void)state;
	table(&t); /* 2.5 MiB */
	assert_int_equal(
		feed(&t, 1, 1, mib, 0, 1000, VBI_CHUNK_FIRST, a, true, 0, &m),
		VBI_LARGE_MORE);
	assert_int_equal(feed(&t, 1, 2, mib, 0, 1000, VBI_CHUNK_FIRST, a, true,
			      1 * SEC, &m),
			 VBI_LARGE_MORE);
	assert_int_equal(feed(&t, 2, 3, mib, 0, 1000, VBI_CHUNK_FIRST, a, true,
			      2 * SEC, &m),
			 VBI_LARGE_NO_ROOM);
	assert_int_equal(t.dropped, 1);
	assert_int_equal(t.used, 2 * mib);
	/* Half a MiB still fits. */
	assert_int_equal(feed(&t, 2, 4, mib / 2, 0, 1000, VBI_CHUNK_FIRST, a,
			      true, 2 * SEC, &m),
			 VBI_LARGE_MORE);
	/* Stream 1 is fed at 3 s; at 6.5 s stream 2 (last fed at 1 s) is
	 * idle long enough to go, streams 1 and 4 (3 s, 2 s) are not. */
	assert_int_equal(
		feed(&t, 1, 1, mib, 1000, 1000, 0, a, true, 3 * SEC, &m),
		VBI_LARGE_MORE);
	assert_int_equal(feed(&t, 2, 5, mib, 0, 1000, VBI_CHUNK_FIRST, a, true,
			      6 * SEC + SEC / 2, &m),
			 VBI_LARGE_MORE);
	assert_int_equal(t.dropped, 2); /* the evicted one */
	assert_int_equal(vbi_large_partials(&t, 1), 1);
	assert_int_equal(vbi_large_partials(&t, 2), 2);
	assert_int_equal(t.used, mib + mib / 2 + mib);
	/* The evicted stream's next chunk is discarded, not counted again. */
	assert_int_equal(
		feed(&t, 1, 2, mib, 1000, 1000, 0, a, true, 7 * SEC, &m),
		VBI_LARGE_DISCARDED);
	assert_int_equal(t.dropped, 2);
	vbi_large_clear(&t);
	assert_int_equal(t.aborted, 3);
	assert_int_equal(t.used, 0);
	assert_null(t.parts);
	free(a);
}

/* A FIRST the subscription does not take: its stream goes by unseen. */
static void test_large_skipped(void **state)
{
	uint8_t *a = pattern(3000, 8);
	struct vbi_large t;
	struct vbi_large_msg m;

	(void)state;
	table(&t);
	assert_int_equal(
		feed(&t, 1, 1, 3000, 0, 1000, VBI_CHUNK_FIRST, a, false, 0, &m),
		VBI_LARGE_SKIPPED);
	/* Even if it would take the rest: a tombstone says no. */
	assert_int_equal(feed(&t, 1, 1, 3000, 1000, 1000, 0, a, true, 0, &m),
			 VBI_LARGE_DISCARDED);
	assert_int_equal(feed(&t, 1, 1, 3000, 2000, 1000, VBI_CHUNK_LAST, a,
			      true, 0, &m),
			 VBI_LARGE_DISCARDED);
	assert_int_equal(t.dropped + t.aborted + t.done, 0);
	assert_null(t.parts);
	/* A partial under way goes on when new ones are not taken. */
	assert_int_equal(
		feed(&t, 1, 2, 3000, 0, 1000, VBI_CHUNK_FIRST, a, true, 0, &m),
		VBI_LARGE_MORE);
	assert_int_equal(feed(&t, 1, 2, 3000, 1000, 2000, VBI_CHUNK_LAST, a,
			      false, 0, &m),
			 VBI_LARGE_DONE);
	vbi_lbuf_put(m.buf);
	free(a);
}

/* Malformed: a prefix that does not parse, a header block that is not
 * inside the FIRST. */
static void test_large_malformed(void **state)
{
	uint8_t *a = pattern(3000, 9), buf[64] = { 0 };
	struct vbi_large t;
	struct vbi_large_msg m;

	(void)state;
	table(&t);
	assert_int_equal(
		vbi_large_feed(&t, 1, TOPIC, TLEN, buf, 10, true, 0, &m),
		VBI_LARGE_BAD);
	assert_int_equal(vbi_large_feed(&t, 1, TOPIC, TLEN, buf, sizeof(buf),
					true, 0, &m),
			 VBI_LARGE_BAD); /* total 0 */
	assert_int_equal(t.dropped, 0); /* nothing known of them */
	/* Block length 2000 in a FIRST of 1000 bytes. */
	a[0] = 0xd0;
	a[1] = 0x07;
	a[2] = a[3] = 0;
	assert_int_equal(feed(&t, 1, 1, 3000, 0, 1000,
			      VBI_CHUNK_FIRST | VBI_CHUNK_HDRS, a, true, 0, &m),
			 VBI_LARGE_BAD);
	assert_int_equal(t.dropped, 1);
	assert_int_equal(feed(&t, 1, 1, 3000, 1000, 2000,
			      VBI_CHUNK_LAST | VBI_CHUNK_HDRS, a, true, 0, &m),
			 VBI_LARGE_DISCARDED);
	assert_null(t.parts);
	/* Block length 900: inside. */
	a[0] = 0x84;
	a[1] = 0x03;
	assert_int_equal(feed(&t, 1, 2, 3000, 0, 1000,
			      VBI_CHUNK_FIRST | VBI_CHUNK_HDRS, a, true, 0, &m),
			 VBI_LARGE_MORE);
	assert_int_equal(feed(&t, 1, 2, 3000, 1000, 2000,
			      VBI_CHUNK_LAST | VBI_CHUNK_HDRS, a, true, 0, &m),
			 VBI_LARGE_DONE);
	assert_true(m.hdrs);
	vbi_lbuf_put(m.buf);
	free(a);
}

/* A FIRST under a tag under way: the stream before is lost (counted). */
static void test_large_same_tag_again(void **state)
{
	uint8_t *a = pattern(3000, 10);
	struct vbi_large t;
	struct vbi_large_msg m;

	(void)state;
	table(&t);
	assert_int_equal(
		feed(&t, 1, 1, 3000, 0, 1000, VBI_CHUNK_FIRST, a, true, 0, &m),
		VBI_LARGE_MORE);
	assert_int_equal(
		feed(&t, 1, 1, 2000, 0, 1000, VBI_CHUNK_FIRST, a, true, 0, &m),
		VBI_LARGE_MORE);
	assert_int_equal(t.dropped, 1);
	assert_int_equal(t.used, 2000);
	assert_int_equal(feed(&t, 1, 1, 2000, 1000, 1000, VBI_CHUNK_LAST, a,
			      true, 0, &m),
			 VBI_LARGE_DONE);
	assert_int_equal(m.buf->total, 2000);
	vbi_lbuf_put(m.buf);
	free(a);
}

/* A subscription gone, a connection lost: its partials go. */
static void test_large_drop_and_clear(void **state)
{
	uint8_t *a = pattern(3000, 11);
	struct vbi_large t;
	struct vbi_large_msg m;

	(void)state;
	table(&t);
	feed(&t, 1, 1, 3000, 0, 1000, VBI_CHUNK_FIRST, a, true, 0, &m);
	feed(&t, 1, 2, 3000, 0, 1000, VBI_CHUNK_FIRST, a, true, 0, &m);
	feed(&t, 2, 1, 3000, 0, 1000, VBI_CHUNK_FIRST, a, true, 0, &m);
	feed(&t, 2, 9, 9000, 1000, 1000, 0, a, true, 0, &m); /* stray */
	assert_int_equal(t.dropped, 1);
	vbi_large_drop_sid(&t, 1);
	assert_int_equal(vbi_large_partials(&t, 1), 0);
	assert_int_equal(vbi_large_partials(&t, 2), 1);
	assert_int_equal(t.used, 3000);
	assert_int_equal(t.aborted, 0); /* unsubscribing is no loss */
	/* Its streams' later chunks are not taken any more. */
	assert_int_equal(feed(&t, 1, 1, 3000, 1000, 1000, 0, a, false, 0, &m),
			 VBI_LARGE_DISCARDED);
	vbi_large_clear(&t);
	assert_int_equal(t.aborted, 1); /* tombstones are no loss */
	assert_int_equal(t.used, 0);
	assert_null(t.parts);
	/* Usable after. */
	assert_int_equal(feed(&t, 2, 1, 1000, 0, 1000,
			      VBI_CHUNK_FIRST | VBI_CHUNK_LAST, a, true, 0, &m),
			 VBI_LARGE_DONE);
	vbi_lbuf_put(m.buf);
	free(a);
}

/* Tombstones of streams that never ended go once idle. */
static void test_large_tombstones_swept(void **state)
{
	uint8_t *a = pattern(3000, 12);
	struct vbi_large t;
	struct vbi_large_msg m;

	(void)state;
	table(&t);
	/* A FIRST sweeps at most once per idle_ns: at 0 s it does. */
	feed(&t, 1, 1, 3000, 0, 1000, VBI_CHUNK_FIRST, a, false, 0, &m);
	feed(&t, 1, 2, 3000, 1000, 1000, 0, a, true, SEC, &m); /* stray */
	assert_non_null(t.parts);
	assert_int_equal(HASH_COUNT(t.parts), 2);
	/* At 5.5 s the first is idle, the second not yet. */
	feed(&t, 1, 3, 1000, 0, 1000, VBI_CHUNK_FIRST | VBI_CHUNK_LAST, a, true,
	     5 * SEC + SEC / 2, &m);
	vbi_lbuf_put(m.buf);
	assert_int_equal(HASH_COUNT(t.parts), 1);
	/* Not again before 10.5 s. */
	feed(&t, 1, 4, 1000, 0, 1000, VBI_CHUNK_FIRST | VBI_CHUNK_LAST, a, true,
	     10 * SEC, &m);
	vbi_lbuf_put(m.buf);
	assert_int_equal(HASH_COUNT(t.parts), 1);
	feed(&t, 1, 5, 1000, 0, 1000, VBI_CHUNK_FIRST | VBI_CHUNK_LAST, a, true,
	     11 * SEC, &m);
	vbi_lbuf_put(m.buf);
	assert_null(t.parts);
	free(a);
}

static void test_large_lbuf_refs(void **state)
{
	uint8_t *a = pattern(10, 13);
	struct vbi_large t;
	struct vbi_large_msg m;

	(void)state;
	table(&t);
	assert_int_equal(feed(&t, 1, 1, 10, 0, 10,
			      VBI_CHUNK_FIRST | VBI_CHUNK_LAST, a, true, 0, &m),
			 VBI_LARGE_DONE);
	vbi_lbuf_get(m.buf);
	vbi_lbuf_get(m.buf);
	assert_int_equal(m.buf->refs, 3);
	vbi_lbuf_put(m.buf);
	vbi_lbuf_put(m.buf);
	assert_int_equal(m.buf->refs, 1);
	assert_memory_equal(m.buf->bytes, a, 10);
	vbi_lbuf_put(m.buf); /* freed: memcheck says if not */
	vbi_lbuf_put(NULL);
	free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_large_plan_sizes),
		cmocka_unit_test(test_large_plan_refusals),
		cmocka_unit_test(test_large_round_trip),
		cmocka_unit_test(test_large_interleaved),
		cmocka_unit_test(test_large_abort),
		cmocka_unit_test(test_large_joined_midway),
		cmocka_unit_test(test_large_broken),
		cmocka_unit_test(test_large_too_big),
		cmocka_unit_test(test_large_budget),
		cmocka_unit_test(test_large_skipped),
		cmocka_unit_test(test_large_malformed),
		cmocka_unit_test(test_large_same_tag_again),
		cmocka_unit_test(test_large_drop_and_clear),
		cmocka_unit_test(test_large_tombstones_swept),
		cmocka_unit_test(test_large_lbuf_refs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
