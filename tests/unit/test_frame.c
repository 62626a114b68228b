/*
 * Unit tests for the frame format (core/frame.c).
 *
 * Rings are placed between two inaccessible guard pages, so that a parser
 * reading one byte before or after the ring faults even without ASan; the
 * frames under test sit at the very end of the ring with @avail reaching
 * exactly to it, so that reading past @avail faults too.
 */
#include "core/frame.h"

#include <verbus/verbus.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#define RING_SIZE 4096u
#define MAX_MSG 65536u

/* A ring of RING_SIZE bytes with a PROT_NONE page on each side. */
struct guarded {
	uint8_t *map; /* the whole mapping */
	size_t map_len; /* bytes mapped */
	uint8_t *ring; /* the accessible ring inside it */
};

static void guarded_map(struct guarded *g, size_t size)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t body = (size + page - 1) / page * page;

	g->map_len = body + 2 * page;
	g->map = mmap(NULL, g->map_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		      -1, 0);
	assert_true(g->map != MAP_FAILED);
	assert_int_equal(mprotect(g->map + page, body, PROT_READ | PROT_WRITE),
			 0);
	/* The ring ends exactly at the trailing guard page. */
	g->ring = g->map + page + body - size;
}

static void guarded_unmap(struct guarded *g)
{
	munmap(g->map, g->map_len);
}

static void fill_pattern(uint8_t *p, size_t n, unsigned seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(seed * 131u + i * 7u + 1u);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void test_frame_span(void **state)
{
	(void)state;
	assert_int_equal(vbi_frame_span(0), 0);
	assert_int_equal(vbi_frame_span(1), 8);
	assert_int_equal(vbi_frame_span(8), 8);
	assert_int_equal(vbi_frame_span(33), 40);
	assert_int_equal(vbi_frame_span(UINT32_MAX), (size_t)UINT32_MAX + 1);
	assert_true(vbi_frame_msg_len(UINT16_MAX, UINT32_MAX) ==
		    32ull + UINT16_MAX + UINT32_MAX);
}

/* The header's bytes on the wire, field by field, little-endian. */
static void test_frame_wire_layout(void **state)
{
	static const uint8_t topic[3] = { 'a', 'b', 'c' };
	static const uint8_t payload[2] = { 0xee, 0xff };
	static const uint8_t want[40] = {
		0x25, 0,    0,	  0, /* len 37 */
		1, /* kind MSG */
		0, /* flags */
		3,    0, /* topic_len */
		2,    0,    0,	  0, /* payload_len */
		0x44, 0x33, 0x22, 0x11, /* ack_recvs */
		8,    7,    6,	  5,	4,    3, 2, 1, /* seq */
		0xdd, 0xcc, 0xbb, 0xaa, /* ack_freed */
		0,    0,    0,	  0, /* sid */
		'a',  'b',  'c',  0xee, 0xff, 0, 0, 0, /* topic, payload, pad */
	};
	struct vbi_frame_msg m = {
		.topic = topic,
		.topic_len = 3,
		.payload = payload,
		.payload_len = 2,
		.seq = 0x0102030405060708ull,
		.ack_recvs = 0x11223344u,
		.ack_freed = 0xaabbccddu,
	};
	_Alignas(8) uint8_t buf[48];
	size_t span = 0;

	(void)state;
	memset(buf, 0x5a, sizeof(buf));
	assert_int_equal(vbi_frame_encode(buf, sizeof(buf), &m, &span), VB_OK);
	assert_int_equal(span, 40);
	assert_memory_equal(buf, want, sizeof(want));
	/* Nothing written past the span. */
	assert_int_equal(buf[40], 0x5a);
	assert_int_equal(vbi_frame_get_len(buf), 37);
	assert_int_equal(vbi_frame_get_kind(buf), VBI_FRAME_MSG);
	assert_int_equal(vbi_frame_get_flags(buf), 0);
	assert_true(vbi_frame_get_seq(buf) == m.seq);

	memset(buf, 0x5a, sizeof(buf));
	assert_int_equal(vbi_frame_put_pad(buf, 4096), VB_OK);
	assert_memory_equal(
		buf, ((const uint8_t[]){ 0, 0x10, 0, 0, 2, 0, 0, 0 }), 8);
	assert_int_equal(buf[8], 0x5a);
}

static void check_round_trip(struct guarded *g, uint16_t tlen, uint32_t plen,
			     uint8_t *topic, uint8_t *payload)
{
	struct vbi_frame_msg m = {
		.topic = topic,
		.topic_len = tlen,
		.payload = payload,
		.payload_len = plen,
		.seq = 1000u + tlen * 1000u + plen,
		.ack_recvs = tlen,
		.ack_freed = plen,
	};
	struct vbi_frame_view v;
	size_t span = vbi_frame_span(32u + tlen + plen), off, i;

	fill_pattern(topic, tlen, tlen);
	fill_pattern(payload, plen, plen + 1);
	/* At the end of the ring: any over-read hits the guard page. */
	off = RING_SIZE - span;
	memset(g->ring + off, 0xa5, span);
	assert_int_equal(vbi_frame_encode(g->ring + off, span, &m, NULL),
			 VB_OK);
	for (i = 32u + tlen + plen; i < span; i++)
		assert_int_equal(g->ring[off + i], 0);
	assert_int_equal(
		vbi_frame_parse(g->ring, RING_SIZE, off, span, MAX_MSG, &v),
		VB_OK);
	assert_int_equal(v.kind, VBI_FRAME_MSG);
	assert_int_equal(v.off, off);
	assert_int_equal(v.pos, off);
	assert_int_equal(v.span, span);
	assert_true(v.seq == m.seq);
	assert_int_equal(v.ack_recvs, tlen);
	assert_int_equal(v.ack_freed, plen);
	assert_int_equal(v.topic_len, tlen);
	assert_int_equal(v.payload_len, plen);
	assert_ptr_equal(v.topic, (const char *)g->ring + off + 32);
	assert_memory_equal(v.topic, topic, tlen);
	assert_memory_equal(v.payload, payload, plen);
}

static void test_frame_round_trip_small(void **state)
{
	uint8_t topic[301], payload[301];
	struct guarded g;
	unsigned t, p;

	(void)state;
	guarded_map(&g, RING_SIZE);
	for (t = 0; t <= 300; t++)
		for (p = 0; p <= 300; p++)
			check_round_trip(&g, (uint16_t)t, p, topic, payload);
	guarded_unmap(&g);
}

static void test_frame_round_trip_large(void **state)
{
	size_t size = 1u << 20, plen = size - 32 - 65535 - 5, span, off;
	uint8_t *topic = malloc(65535), *payload = malloc(plen);
	struct vbi_frame_msg m = { 0 };
	struct vbi_frame_view v;
	struct guarded g;

	(void)state;
	assert_non_null(topic);
	assert_non_null(payload);
	guarded_map(&g, size);
	fill_pattern(topic, 65535, 3);
	fill_pattern(payload, plen, 4);
	m.topic = topic;
	m.topic_len = 65535;
	m.payload = payload;
	m.payload_len = (uint32_t)plen;
	m.seq = UINT64_MAX;
	span = vbi_frame_span(vbi_frame_msg_len(65535, (uint32_t)plen));
	off = size - span;
	assert_int_equal(vbi_frame_encode(g.ring + off, span, &m, NULL), VB_OK);
	assert_int_equal(vbi_frame_parse(g.ring, size, off, span, plen, &v),
			 VB_OK);
	assert_true(v.seq == UINT64_MAX);
	assert_memory_equal(v.topic, topic, 65535);
	assert_memory_equal(v.payload, payload, plen);
	/* One byte over max_msg is refused. */
	assert_int_equal(vbi_frame_parse(g.ring, size, off, span, plen - 1, &v),
			 VB_EPROTO);
	guarded_unmap(&g);
	free(topic);
	free(payload);
}

/* Zero-copy: header first, then the caller writes in place. */
static void test_frame_put_hdr_then_fill(void **state)
{
	struct vbi_frame_msg m = { .topic_len = 5, .payload_len = 6, .seq = 9 };
	_Alignas(8) uint8_t buf[64];
	struct vbi_frame_view v;
	size_t i;

	(void)state;
	memset(buf, 0xff, sizeof(buf));
	assert_int_equal(vbi_frame_put_hdr(buf, 48, &m), VB_OK);
	/* Padding (bytes 43..47) zeroed, topic and payload left alone. */
	for (i = 43; i < 48; i++)
		assert_int_equal(buf[i], 0);
	assert_int_equal(buf[32], 0xff);
	memcpy(buf + 32, "topic", 5);
	memcpy(buf + 37, "abcdef", 6);
	assert_int_equal(vbi_frame_parse(buf, sizeof(buf), 0, 48, 100, &v),
			 VB_OK);
	assert_memory_equal(v.topic, "topic", 5);
	assert_memory_equal(v.payload, "abcdef", 6);
	vbi_frame_set_acks(buf, 77, 88);
	assert_int_equal(vbi_frame_parse(buf, sizeof(buf), 0, 48, 100, &v),
			 VB_OK);
	assert_int_equal(v.ack_recvs, 77);
	assert_int_equal(v.ack_freed, 88);
}

static void test_frame_encode_errors(void **state)
{
	struct vbi_frame_msg m = { .topic_len = 1, .payload_len = 0 };
	_Alignas(8) uint8_t buf[64];
	size_t span = 12345;

	(void)state;
	memset(buf, 0x11, sizeof(buf));
	/* topic_len without a topic. */
	assert_int_equal(vbi_frame_encode(buf, sizeof(buf), &m, &span),
			 VB_EINVAL);
	m.topic = "x";
	assert_int_equal(vbi_frame_encode(buf + 4, 60, &m, &span), VB_EINVAL);
	assert_int_equal(vbi_frame_encode(NULL, 60, &m, &span), VB_EINVAL);
	/* Span 40 does not fit 39 bytes. */
	assert_int_equal(vbi_frame_encode(buf, 39, &m, &span), VB_EMSGSIZE);
	assert_int_equal(vbi_frame_put_hdr(buf, 39, &m), VB_EMSGSIZE);
	/* A len that overflows the u32 field. */
	m.topic_len = 0;
	m.payload_len = UINT32_MAX - 31;
	assert_int_equal(vbi_frame_put_hdr(buf, SIZE_MAX, &m), VB_EMSGSIZE);
	/* Nothing was written by any failed call. */
	assert_int_equal(buf[0], 0x11);
	assert_int_equal(span, 12345);

	assert_int_equal(vbi_frame_put_pad(buf, 0), VB_EINVAL);
	assert_int_equal(vbi_frame_put_pad(buf, 12), VB_EINVAL);
	assert_int_equal(vbi_frame_put_pad(buf + 4, 8), VB_EINVAL);
	assert_int_equal(vbi_frame_put_pad(NULL, 8), VB_EINVAL);
	assert_int_equal(vbi_frame_put_pad(buf, (size_t)UINT32_MAX + 1),
			 VB_EINVAL);
	assert_int_equal(buf[0], 0x11);
}

/* Encode a valid MSG of @span bytes ending at the ring's end; return off. */
static size_t put_last_msg(struct guarded *g, uint16_t tlen, uint32_t plen)
{
	static const uint8_t zeros[256];
	struct vbi_frame_msg m = {
		.topic = zeros,
		.topic_len = tlen,
		.payload = zeros,
		.payload_len = plen,
		.seq = 5,
	};
	size_t span = vbi_frame_span(32u + tlen + plen);
	size_t off = RING_SIZE - span;

	assert_int_equal(vbi_frame_encode(g->ring + off, span, &m, NULL),
			 VB_OK);
	return off;
}

static int parse_end(struct guarded *g, size_t off)
{
	struct vbi_frame_view v;

	return vbi_frame_parse(g->ring, RING_SIZE, off, RING_SIZE - off,
			       MAX_MSG, &v);
}

static void test_frame_rejects_malformed_msg(void **state)
{
	struct vbi_frame_view v, keep;
	struct guarded g;
	size_t off;
	unsigned b;

	(void)state;
	guarded_map(&g, RING_SIZE);
	off = put_last_msg(&g, 3, 10); /* len 45, span 48 */
	assert_int_equal(parse_end(&g, off), VB_OK);

	/* len below the header, above avail, or not topic + payload. */
	put_le32(g.ring + off, 31);
	assert_int_equal(parse_end(&g, off), VB_EPROTO);
	put_le32(g.ring + off, 0);
	assert_int_equal(parse_end(&g, off), VB_EPROTO);
	put_le32(g.ring + off, 44);
	assert_int_equal(parse_end(&g, off), VB_EPROTO);
	put_le32(g.ring + off, 46);
	assert_int_equal(parse_end(&g, off), VB_EPROTO);
	put_le32(g.ring + off, 49);
	assert_int_equal(parse_end(&g, off), VB_EPROTO);
	put_le32(g.ring + off, UINT32_MAX);
	assert_int_equal(parse_end(&g, off), VB_EPROTO);
	put_le32(g.ring + off, 45);
	assert_int_equal(parse_end(&g, off), VB_OK);

	/* payload_len inconsistent (and a huge one that would overflow). */
	put_le32(g.ring + off + 8, 11);
	assert_int_equal(parse_end(&g, off), VB_EPROTO);
	put_le32(g.ring + off + 8, UINT32_MAX);
	assert_int_equal(parse_end(&g, off), VB_EPROTO);
	put_le32(g.ring + off + 8, 10);

	/* topic_len inconsistent. */
	g.ring[off + 6] = 4;
	assert_int_equal(parse_end(&g, off), VB_EPROTO);
	g.ring[off + 6] = 0;
	g.ring[off + 7] = 1;
	assert_int_equal(parse_end(&g, off), VB_EPROTO);
	g.ring[off + 6] = 3;
	g.ring[off + 7] = 0;

	/* Every nonzero flags value, every unknown kind. */
	for (b = 1; b < 256; b++) {
		g.ring[off + 5] = (uint8_t)b;
		assert_int_equal(parse_end(&g, off), VB_EPROTO);
	}
	g.ring[off + 5] = 0;
	for (b = 0; b < 256; b++) {
		if (b == VBI_FRAME_MSG || b == VBI_FRAME_HMSG ||
		    b == VBI_FRAME_CHUNK || b == VBI_FRAME_RESEND)
			continue;
		g.ring[off + 4] = (uint8_t)b;
		assert_int_equal(parse_end(&g, off), VB_EPROTO);
	}
	/* The same frame as an HMSG: its 10-byte payload has room for the
	 * block's length, and the kind reaches the view. */
	g.ring[off + 4] = VBI_FRAME_HMSG;
	assert_int_equal(vbi_frame_parse(g.ring, RING_SIZE, off, 48, 10, &v),
			 VB_OK);
	assert_int_equal(v.kind, VBI_FRAME_HMSG);
	g.ring[off + 4] = VBI_FRAME_MSG;

	/* The subscription id is any value, and reaches the view. */
	g.ring[off + 31] = 0x80;
	g.ring[off + 28] = 7;
	assert_int_equal(parse_end(&g, off), VB_OK);
	assert_int_equal(vbi_frame_parse(g.ring, RING_SIZE, off, 48, 10, &v),
			 VB_OK);
	assert_int_equal(v.sid, 0x80000007u);
	g.ring[off + 31] = 0;
	g.ring[off + 28] = 0;

	/* Payload over max_msg. */
	assert_int_equal(vbi_frame_parse(g.ring, RING_SIZE, off, 48, 9, &v),
			 VB_EPROTO);
	assert_int_equal(vbi_frame_parse(g.ring, RING_SIZE, off, 48, 10, &v),
			 VB_OK);

	/* Frame longer than what arrived: every shorter avail. */
	for (b = 0; b < 48; b++)
		assert_int_equal(
			vbi_frame_parse(g.ring, RING_SIZE, off, b, MAX_MSG, &v),
			VB_EPROTO);

	/* Off not 8-aligned. */
	assert_int_equal(
		vbi_frame_parse(g.ring, RING_SIZE, off + 4, 44, MAX_MSG, &v),
		VB_EPROTO);

	/* The output is untouched by every failure. */
	memset(&keep, 0x3c, sizeof(keep));
	v = keep;
	g.ring[off + 4] = 9;
	assert_int_equal(parse_end(&g, off), VB_EPROTO);
	assert_int_equal(
		vbi_frame_parse(g.ring, RING_SIZE, off, 48, MAX_MSG, &v),
		VB_EPROTO);
	assert_memory_equal(&v, &keep, sizeof(v));
	guarded_unmap(&g);
}

/* A MSG header claiming to cross the end of the ring. */
static void test_frame_rejects_crossing_end(void **state)
{
	struct vbi_frame_view v;
	struct guarded g;
	size_t off = RING_SIZE - 40;

	(void)state;
	guarded_map(&g, RING_SIZE);
	/* A valid 48-byte frame written 8 bytes too close to the end. */
	memset(g.ring + off, 0, 40);
	put_le32(g.ring + off, 45);
	g.ring[off + 4] = VBI_FRAME_MSG;
	g.ring[off + 6] = 3;
	put_le32(g.ring + off + 8, 10);
	assert_int_equal(
		vbi_frame_parse(g.ring, RING_SIZE, off, 40, MAX_MSG, &v),
		VB_EPROTO);
	/* A MSG header with fewer than 32 bytes left in the ring. */
	off = RING_SIZE - 24;
	memset(g.ring + off, 0, 24);
	put_le32(g.ring + off, 32);
	g.ring[off + 4] = VBI_FRAME_MSG;
	assert_int_equal(
		vbi_frame_parse(g.ring, RING_SIZE, off, 24, MAX_MSG, &v),
		VB_EPROTO);
	guarded_unmap(&g);
}

static void test_frame_pad(void **state)
{
	struct vbi_frame_view v;
	struct guarded g;
	size_t rest;

	(void)state;
	guarded_map(&g, RING_SIZE);
	/* Every PAD length down to 8, read from its first 8 bytes only. */
	for (rest = RING_SIZE / 2; rest >= 8; rest -= 8) {
		size_t off = RING_SIZE - rest;

		assert_int_equal(vbi_frame_put_pad(g.ring + off, rest), VB_OK);
		assert_int_equal(vbi_frame_parse(g.ring, RING_SIZE, off, rest,
						 MAX_MSG, &v),
				 VB_OK);
		assert_int_equal(v.kind, VBI_FRAME_PAD);
		assert_int_equal(v.span, rest);
		assert_int_equal(v.seq, 0);
		assert_int_equal(v.ack_recvs, 0);
		/* A PAD must reach exactly the end of the ring. */
		put_le32(g.ring + off, (uint32_t)rest - 8);
		assert_int_equal(parse_end(&g, off), VB_EPROTO);
		put_le32(g.ring + off, (uint32_t)rest + 8);
		assert_int_equal(parse_end(&g, off), VB_EPROTO);
		put_le32(g.ring + off, (uint32_t)rest);
		/* No topic in a PAD, no flags. */
		g.ring[off + 6] = 1;
		assert_int_equal(parse_end(&g, off), VB_EPROTO);
		g.ring[off + 6] = 0;
		g.ring[off + 5] = VBI_FRAME_F_RELEASED;
		assert_int_equal(parse_end(&g, off), VB_EPROTO);
		g.ring[off + 5] = 0;
		/* Not all of it arrived. */
		assert_int_equal(vbi_frame_parse(g.ring, RING_SIZE, off,
						 rest - 8, MAX_MSG, &v),
				 VB_EPROTO);
	}
	guarded_unmap(&g);
}

/* An HMSG: encoded with its kind, parsed, its block length checked. */
static void test_frame_hmsg(void **state)
{
	static const char blk[] = "NATS/1.0\r\nA: b\r\n\r\n";
	uint8_t payload[64], ring[256] __attribute__((aligned(8)));
	struct vbi_frame_msg m = { 0 };
	struct vbi_frame_view v;
	uint32_t hlen = sizeof(blk) - 1, got = 0;
	size_t span;

	(void)state;
	put_le32(payload, hlen);
	memcpy(payload + 4, blk, hlen);
	memcpy(payload + 4 + hlen, "data", 4);
	m.kind = VBI_FRAME_HMSG;
	m.topic = "t";
	m.topic_len = 1;
	m.payload = payload;
	m.payload_len = 4 + hlen + 4;
	m.seq = 1;
	assert_int_equal(vbi_frame_encode(ring, sizeof(ring), &m, &span),
			 VB_OK);
	assert_int_equal(vbi_frame_get_kind(ring), VBI_FRAME_HMSG);
	assert_int_equal(
		vbi_frame_parse(ring, sizeof(ring), 0, span, MAX_MSG, &v),
		VB_OK);
	assert_int_equal(v.kind, VBI_FRAME_HMSG);
	assert_true(vbi_frame_is_msg(v.kind));
	assert_int_equal(vbi_frame_hmsg_split(v.payload, v.payload_len, &got),
			 VB_OK);
	assert_int_equal(got, hlen);
	/* No data after the block is fine; a block past the payload is not. */
	assert_int_equal(vbi_frame_hmsg_split(payload, 4 + hlen, &got), VB_OK);
	assert_int_equal(vbi_frame_hmsg_split(payload, 4 + hlen - 1, &got),
			 VB_EPROTO);
	assert_int_equal(vbi_frame_hmsg_split(payload, 3, &got), VB_EPROTO);
	put_le32(payload, 0xffffffffu);
	assert_int_equal(vbi_frame_hmsg_split(payload, 64, &got), VB_EPROTO);
	put_le32(payload, 11); /* shorter than "NATS/1.0\r\n\r\n" */
	assert_int_equal(vbi_frame_hmsg_split(payload, 64, &got), VB_EPROTO);
	/* A zero kind in the input is a plain MSG. */
	m.kind = 0;
	assert_int_equal(vbi_frame_encode(ring, sizeof(ring), &m, &span),
			 VB_OK);
	assert_int_equal(vbi_frame_get_kind(ring), VBI_FRAME_MSG);
	/* An HMSG whose payload cannot hold the block's length is a frame
	 * (its reader refuses the payload, not the connection). */
	m.kind = VBI_FRAME_HMSG;
	m.payload_len = 3;
	assert_int_equal(vbi_frame_encode(ring, sizeof(ring), &m, &span),
			 VB_OK);
	assert_int_equal(
		vbi_frame_parse(ring, sizeof(ring), 0, span, MAX_MSG, &v),
		VB_OK);
	assert_int_equal(vbi_frame_hmsg_split(v.payload, v.payload_len, &got),
			 VB_EPROTO);
}

static void test_frame_rejects_short_avail(void **state)
{
	struct vbi_frame_view v;
	struct guarded g;
	size_t a;

	(void)state;
	guarded_map(&g, RING_SIZE);
	assert_int_equal(vbi_frame_put_pad(g.ring + RING_SIZE - 8, 8), VB_OK);
	for (a = 0; a < 8; a++)
		assert_int_equal(vbi_frame_parse(g.ring, RING_SIZE,
						 RING_SIZE - 8, a, MAX_MSG, &v),
				 VB_EPROTO);
	/* A MSG header in the last 8 bytes: only 8 bytes may be read. */
	g.ring[RING_SIZE - 4] = VBI_FRAME_MSG;
	put_le32(g.ring + RING_SIZE - 8, 32);
	assert_int_equal(vbi_frame_parse(g.ring, RING_SIZE, RING_SIZE - 8, 8,
					 MAX_MSG, &v),
			 VB_EPROTO);
	guarded_unmap(&g);
}

static void test_frame_parse_caller_errors(void **state)
{
	_Alignas(8) uint8_t ring[64] = { 0 };
	struct vbi_frame_view v;

	(void)state;
	assert_int_equal(vbi_frame_parse(NULL, 64, 0, 8, 1, &v), VB_EINVAL);
	assert_int_equal(vbi_frame_parse(ring, 64, 0, 8, 1, NULL), VB_EINVAL);
	assert_int_equal(vbi_frame_parse(ring, 64, 64, 0, 1, &v), VB_EINVAL);
	assert_int_equal(vbi_frame_parse(ring, 64, 56, 16, 1, &v), VB_EINVAL);
}

/* Random bytes at random offsets: never a crash, never a read past avail. */
static void test_frame_parse_garbage(void **state)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;
	struct vbi_frame_view v;
	struct guarded g;
	unsigned n, ok = 0;
	size_t i, off;

	(void)state;
	guarded_map(&g, RING_SIZE);
	for (n = 0; n < 20000; n++) {
		off = RING_SIZE - 8 * (1 + n % 64);
		for (i = off; i < RING_SIZE; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			g.ring[i] = (uint8_t)x;
		}
		/* Bias toward plausible headers now and then. */
		if (n % 4 == 0) {
			g.ring[off + 4] = (uint8_t)(1 + n % 2);
			g.ring[off + 5] = 0;
		}
		if (vbi_frame_parse(g.ring, RING_SIZE, off, RING_SIZE - off,
				    MAX_MSG, &v) == VB_OK) {
			ok++;
			assert_true(v.off + v.span <= RING_SIZE);
		}
	}
	/* Only PADs can pass by chance (a MSG needs exact lengths). */
	assert_true(ok < 20000);
	guarded_unmap(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_span),
		cmocka_unit_test(test_frame_wire_layout),
		cmocka_unit_test(test_frame_round_trip_small),
		cmocka_unit_test(test_frame_round_trip_large),
		cmocka_unit_test(test_frame_put_hdr_then_fill),
		cmocka_unit_test(test_frame_encode_errors),
		cmocka_unit_test(test_frame_rejects_malformed_msg),
		cmocka_unit_test(test_frame_rejects_crossing_end),
		cmocka_unit_test(test_frame_pad),
		cmocka_unit_test(test_frame_hmsg),
		cmocka_unit_test(test_frame_rejects_short_avail),
		cmocka_unit_test(test_frame_parse_caller_errors),
		cmocka_unit_test(test_frame_parse_garbage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
