/* Unit tests for the ring arithmetic (core/ring.c). */
#include "core/frame.h"
#include "core/ring.h"

#include <verbus/verbus.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define MAX_MSG 65536u

static uint8_t *ring_alloc(size_t size)
{
	uint8_t *p = aligned_alloc(64, size);

	assert_non_null(p);
	memset(p, 0xcd, size);
	return p;
}

static uint8_t pattern_byte(uint64_t seq, size_t i)
{
	return (uint8_t)(seq * 131u + i * 7u + 1u);
}

/* Reserve and stage one MSG frame; returns VB_OK or the reserve error. */
static int stage_msg(struct vbi_ring_tx *tx, uint16_t tlen, uint32_t plen,
		     uint64_t seq, size_t *off, size_t *pad)
{
	struct vbi_frame_msg m = {
		.topic_len = tlen,
		.payload_len = plen,
		.seq = seq,
	};
	size_t span = vbi_frame_span(vbi_frame_msg_len(tlen, plen)), at, i;
	uint8_t *p;
	int rc;

	rc = vbi_ring_tx_reserve(tx, span, &at, pad);
	if (rc != VB_OK)
		return rc;
	p = tx->stage + at;
	assert_int_equal(vbi_frame_put_hdr(p, span, &m), VB_OK);
	for (i = 0; i < (size_t)tlen + plen; i++)
		p[32 + i] = pattern_byte(seq, i);
	if (off)
		*off = at;
	return VB_OK;
}

/* Move the next batch from staging to @remote as the NIC would. */
static size_t flush_to(struct vbi_ring_tx *tx, struct vbi_ring_rx *rx,
		       size_t max)
{
	struct vbi_ring_batch b;

	assert_int_equal(vbi_ring_tx_next_batch(tx, max, &b), VB_OK);
	if (b.len == 0)
		return 0;
	assert_true(b.off + b.len <= tx->size);
	assert_true(b.xfer <= b.len);
	memcpy(rx->base + b.off, tx->stage + b.off, b.xfer);
	assert_int_equal(vbi_ring_tx_flushed(tx, b.len), VB_OK);
	assert_int_equal(vbi_ring_rx_arrived(rx, (uint32_t)b.len), VB_OK);
	return b.len;
}

static void check_view(const struct vbi_frame_view *v, uint64_t seq,
		       uint16_t tlen, uint32_t plen)
{
	const uint8_t *t = (const uint8_t *)v->topic;
	const uint8_t *p = v->payload;
	size_t i;

	assert_int_equal(v->kind, VBI_FRAME_MSG);
	assert_true(v->seq == seq);
	assert_int_equal(v->topic_len, tlen);
	assert_int_equal(v->payload_len, plen);
	for (i = 0; i < tlen; i++)
		assert_int_equal(t[i], pattern_byte(seq, i));
	for (i = 0; i < plen; i++)
		assert_int_equal(p[i], pattern_byte(seq, tlen + i));
}

static void test_ring_init_rejects_bad_sizes(void **state)
{
	struct vbi_ring_tx tx;
	struct vbi_ring_rx rx;
	uint8_t *buf = ring_alloc(256);

	(void)state;
	assert_int_equal(vbi_ring_tx_init(&tx, buf, 32), VB_EINVAL);
	assert_int_equal(vbi_ring_tx_init(&tx, buf, 96), VB_EINVAL);
	assert_int_equal(vbi_ring_tx_init(&tx, buf, 0), VB_EINVAL);
	assert_int_equal(vbi_ring_tx_init(&tx, NULL, 64), VB_EINVAL);
	assert_int_equal(vbi_ring_tx_init(&tx, buf + 4, 64), VB_EINVAL);
	assert_int_equal(vbi_ring_tx_init(&tx, buf, (size_t)1 << 32),
			 VB_EINVAL);
	assert_int_equal(vbi_ring_rx_init(&rx, buf, 100), VB_EINVAL);
	assert_int_equal(vbi_ring_rx_init(&rx, buf + 8, 64), VB_OK);
	assert_int_equal(vbi_ring_tx_init(&tx, buf, 64), VB_OK);
	assert_int_equal(vbi_ring_rx_init(&rx, buf, 256), VB_OK);
	free(buf);
}

static void test_ring_empty(void **state)
{
	struct vbi_ring_batch b;
	struct vbi_ring_tx tx;
	struct vbi_ring_rx rx;
	struct vbi_frame_view v;
	uint8_t *stage = ring_alloc(1024), *remote = ring_alloc(1024);

	(void)state;
	assert_int_equal(vbi_ring_tx_init(&tx, stage, 1024), VB_OK);
	assert_int_equal(vbi_ring_rx_init(&rx, remote, 1024), VB_OK);
	assert_int_equal(vbi_ring_tx_space(&tx), 1024);
	assert_int_equal(vbi_ring_tx_next_batch(&tx, 0, &b), VB_OK);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.xfer, 0);
	assert_false(b.has_last);
	assert_int_equal(vbi_ring_tx_flushed(&tx, 8), VB_EINVAL);
	assert_int_equal(vbi_ring_tx_flushed(&tx, 0), VB_OK);
	assert_int_equal(vbi_ring_rx_next(&rx, MAX_MSG, &v), VB_EAGAIN);
	assert_int_equal(vbi_ring_rx_freed_units(&rx), 0);
	/* An immediate of 0 is harmless. */
	assert_int_equal(vbi_ring_rx_arrived(&rx, 0), VB_OK);
	assert_int_equal(vbi_ring_rx_next(&rx, MAX_MSG, &v), VB_EAGAIN);
	free(stage);
	free(remote);
}

static void test_ring_reserve_limits(void **state)
{
	struct vbi_ring_tx tx;
	uint8_t *stage = ring_alloc(1024);
	size_t off = 77;

	(void)state;
	assert_int_equal(vbi_ring_tx_init(&tx, stage, 1024), VB_OK);
	assert_int_equal(vbi_ring_tx_reserve(&tx, 513, &off, NULL), VB_EINVAL);
	assert_int_equal(vbi_ring_tx_reserve(&tx, 520, &off, NULL),
			 VB_EMSGSIZE);
	assert_int_equal(vbi_ring_tx_reserve(&tx, 24, &off, NULL), VB_EINVAL);
	assert_int_equal(vbi_ring_tx_reserve(&tx, 0, &off, NULL), VB_EINVAL);
	assert_int_equal(off, 77);
	assert_true(tx.tail == 0);
	/* Exactly half the ring is allowed. */
	assert_int_equal(vbi_ring_tx_reserve(&tx, 512, &off, NULL), VB_OK);
	assert_int_equal(off, 0);
	free(stage);
}

static void test_ring_full(void **state)
{
	struct vbi_ring_tx tx;
	struct vbi_ring_rx rx;
	struct vbi_frame_view v[4];
	uint8_t *stage = ring_alloc(1024), *remote = ring_alloc(1024);
	size_t off, pad;
	int i;

	(void)state;
	assert_int_equal(vbi_ring_tx_init(&tx, stage, 1024), VB_OK);
	assert_int_equal(vbi_ring_rx_init(&rx, remote, 1024), VB_OK);
	/* Four 256-byte frames fill the ring exactly. */
	for (i = 0; i < 4; i++) {
		assert_int_equal(stage_msg(&tx, 4, 220, i + 1, &off, &pad),
				 VB_OK);
		assert_int_equal(off, 256 * i);
		assert_int_equal(pad, 0);
	}
	assert_int_equal(vbi_ring_tx_space(&tx), 0);
	assert_int_equal(stage_msg(&tx, 0, 0, 5, NULL, NULL), VB_EAGAIN);
	assert_int_equal(flush_to(&tx, &rx, 0), 1024);
	/* Full remotely too: no immediate may add a byte. */
	assert_int_equal(vbi_ring_rx_arrived(&rx, 8), VB_EPROTO);
	assert_true(rx.broken);
	rx.broken = false;
	for (i = 0; i < 4; i++) {
		assert_int_equal(vbi_ring_rx_next(&rx, MAX_MSG, &v[i]), VB_OK);
		check_view(&v[i], i + 1, 4, 220);
	}
	assert_int_equal(vbi_ring_rx_next(&rx, MAX_MSG, &v[0]), VB_EAGAIN);
	/* Credit for one frame makes room for exactly one frame. */
	assert_int_equal(vbi_ring_rx_release(&rx, &v[0]), VB_OK);
	assert_int_equal(vbi_ring_tx_credit(&tx, vbi_ring_rx_freed_units(&rx)),
			 VB_OK);
	assert_int_equal(vbi_ring_tx_space(&tx), 256);
	assert_int_equal(stage_msg(&tx, 4, 220, 5, &off, &pad), VB_OK);
	assert_int_equal(off, 0);
	assert_int_equal(pad, 0);
	assert_int_equal(stage_msg(&tx, 0, 0, 6, NULL, NULL), VB_EAGAIN);
	free(stage);
	free(remote);
}

/* A frame ending exactly at the end of the ring needs no PAD. */
static void test_ring_exact_fit_to_end(void **state)
{
	struct vbi_ring_batch b;
	struct vbi_ring_tx tx;
	uint8_t *stage = ring_alloc(256);
	size_t off, pad;

	(void)state;
	assert_int_equal(vbi_ring_tx_init(&tx, stage, 256), VB_OK);
	assert_int_equal(stage_msg(&tx, 0, 96, 1, &off, &pad), VB_OK);
	assert_int_equal(stage_msg(&tx, 0, 96, 2, &off, &pad), VB_OK);
	assert_int_equal(off, 128);
	assert_int_equal(pad, 0);
	assert_true(tx.tail == 256);
	assert_int_equal(vbi_ring_tx_next_batch(&tx, 0, &b), VB_OK);
	assert_int_equal(b.off, 0);
	assert_int_equal(b.len, 256);
	assert_int_equal(b.xfer, 256);
	assert_int_equal(b.last_off, 128);
	assert_int_equal(vbi_ring_tx_flushed(&tx, 256), VB_OK);
	assert_int_equal(vbi_ring_tx_credit(&tx, 256 / 8), VB_OK);
	assert_int_equal(stage_msg(&tx, 0, 0, 3, &off, &pad), VB_OK);
	assert_int_equal(off, 0);
	assert_int_equal(pad, 0);
	free(stage);
}

/*
 * Leave @rest bytes before the end of a 256-byte ring, then stage a 40-byte
 * frame: it must wrap behind a PAD of @rest bytes.
 */
static void check_wrap_with_pad(size_t rest)
{
	struct vbi_frame_view v, f[2];
	struct vbi_ring_batch b;
	struct vbi_ring_tx tx;
	struct vbi_ring_rx rx;
	uint8_t *stage = ring_alloc(256), *remote = ring_alloc(256);
	size_t off, pad, first = 256 - rest;

	assert_int_equal(vbi_ring_tx_init(&tx, stage, 256), VB_OK);
	assert_int_equal(vbi_ring_rx_init(&rx, remote, 256), VB_OK);
	/* Two frames (each at most half the ring) up to 256 - rest. */
	assert_int_equal(stage_msg(&tx, 0, 96, 1, &off, NULL), VB_OK);
	assert_int_equal(
		stage_msg(&tx, 0, (uint32_t)(first - 128 - 32), 2, &off, NULL),
		VB_OK);
	assert_int_equal(off, 128);
	assert_int_equal(flush_to(&tx, &rx, 0), first);
	assert_int_equal(vbi_ring_rx_next(&rx, MAX_MSG, &f[0]), VB_OK);
	assert_int_equal(vbi_ring_rx_next(&rx, MAX_MSG, &f[1]), VB_OK);
	/* @rest bytes are free, but PAD + frame need @rest + 40. */
	assert_int_equal(vbi_ring_tx_space(&tx), rest);
	assert_int_equal(stage_msg(&tx, 0, 8, 3, NULL, NULL), VB_EAGAIN);
	assert_true(tx.tail == first);
	assert_int_equal(vbi_ring_rx_release(&rx, &f[0]), VB_OK);
	assert_int_equal(vbi_ring_rx_release(&rx, &f[1]), VB_OK);
	assert_int_equal(vbi_ring_tx_credit(&tx, vbi_ring_rx_freed_units(&rx)),
			 VB_OK);
	assert_int_equal(stage_msg(&tx, 0, 8, 3, &off, &pad), VB_OK);
	assert_int_equal(off, 0);
	assert_int_equal(pad, rest);
	assert_true(tx.tail == 256 + 40);
	assert_int_equal(vbi_frame_get_kind(stage + first), VBI_FRAME_PAD);
	assert_int_equal(vbi_frame_get_len(stage + first), rest);
	/* The PAD closes the first batch; it costs the WRITE 8 bytes. */
	assert_int_equal(vbi_ring_tx_next_batch(&tx, 0, &b), VB_OK);
	assert_int_equal(b.off, first);
	assert_int_equal(b.len, rest);
	assert_int_equal(b.xfer, 8);
	assert_false(b.has_last);
	assert_int_equal(flush_to(&tx, &rx, 0), rest);
	assert_int_equal(flush_to(&tx, &rx, 0), 40);
	assert_int_equal(vbi_ring_rx_next(&rx, MAX_MSG, &v), VB_OK);
	check_view(&v, 3, 0, 8);
	assert_int_equal(v.off, 0);
	assert_true(v.pos == 256);
	/* The PAD was released on the way: freed reached the end. */
	assert_true(rx.freed == 256);
	assert_int_equal(vbi_ring_rx_release(&rx, &v), VB_OK);
	assert_true(rx.freed == 296);
	free(stage);
	free(remote);
}

static void test_ring_wrap_with_pad_8(void **state)
{
	(void)state;
	check_wrap_with_pad(8);
}

static void test_ring_wrap_with_pad_16(void **state)
{
	(void)state;
	check_wrap_with_pad(16);
}

static void test_ring_wrap_with_pad_24_and_larger(void **state)
{
	(void)state;
	check_wrap_with_pad(24);
	check_wrap_with_pad(32);
}

/* With the pad and the frame, the ring must hold both at once. */
static void test_ring_pad_counts_toward_space(void **state)
{
	struct vbi_ring_tx tx;
	uint8_t *stage = ring_alloc(256);
	size_t off, pad;

	(void)state;
	assert_int_equal(vbi_ring_tx_init(&tx, stage, 256), VB_OK);
	/* tail at 240, peer freed up to 112: space 128, rest of ring 16. */
	tx.tail = tx.flushed = 240;
	tx.peer_freed = 112;
	assert_int_equal(vbi_ring_tx_space(&tx), 128);
	/* 16 + 128 > 128. */
	assert_int_equal(vbi_ring_tx_reserve(&tx, 128, &off, &pad), VB_EAGAIN);
	assert_true(tx.tail == 240);
	/* 16 + 112 fits exactly. */
	assert_int_equal(vbi_ring_tx_reserve(&tx, 112, &off, &pad), VB_OK);
	assert_int_equal(off, 0);
	assert_int_equal(pad, 16);
	assert_int_equal(vbi_ring_tx_space(&tx), 0);
	assert_int_equal(vbi_frame_get_kind(stage + 240), VBI_FRAME_PAD);
	assert_int_equal(vbi_frame_get_len(stage + 240), 16);
	free(stage);
}

/* A pinned frame's space is not reused, even once the peer freed it; the
 * pin lifted, it is. */
static void test_ring_pin_holds_space(void **state)
{
	struct vbi_ring_tx tx;
	uint8_t *stage = ring_alloc(256);
	size_t off, pad;

	(void)state;
	assert_int_equal(vbi_ring_tx_init(&tx, stage, 256), VB_OK);
	assert_true(tx.pinned == UINT64_MAX);
	/* Frames at 0, 64, 128, 192; the one at 64 pinned, all freed. */
	for (int i = 0; i < 4; i++)
		assert_int_equal(vbi_ring_tx_reserve(&tx, 64, &off, &pad),
				 VB_OK);
	tx.flushed = tx.peer_freed = 256;
	vbi_ring_tx_pin(&tx, 64);
	/* Only [0, 64) is free: 64 fits, a second 64 does not. */
	assert_int_equal(vbi_ring_tx_space(&tx), 64);
	assert_int_equal(vbi_ring_tx_reserve(&tx, 64, &off, &pad), VB_OK);
	assert_int_equal(off, 0);
	assert_int_equal(vbi_ring_tx_reserve(&tx, 64, &off, &pad), VB_EAGAIN);
	/* Pinned behind what the peer freed counts as the pin, not more. */
	vbi_ring_tx_pin(&tx, 192);
	assert_int_equal(vbi_ring_tx_space(&tx), 128);
	/* A pin ahead of peer_freed changes nothing. */
	tx.flushed = tx.peer_freed = 320;
	vbi_ring_tx_pin(&tx, 320);
	assert_int_equal(vbi_ring_tx_space(&tx), 256);
	vbi_ring_tx_pin(&tx, UINT64_MAX);
	assert_int_equal(vbi_ring_tx_space(&tx), 256);
	free(stage);
}

/* Several frames staged together leave in one WRITE. */
static void test_ring_coalescing(void **state)
{
	struct vbi_ring_batch b;
	struct vbi_ring_tx tx;
	struct vbi_ring_rx rx;
	struct vbi_frame_view v;
	uint8_t *stage = ring_alloc(4096), *remote = ring_alloc(4096);
	size_t off;
	int i;

	(void)state;
	assert_int_equal(vbi_ring_tx_init(&tx, stage, 4096), VB_OK);
	assert_int_equal(vbi_ring_rx_init(&rx, remote, 4096), VB_OK);
	for (i = 0; i < 10; i++)
		assert_int_equal(stage_msg(&tx, 3, 21, i + 1, &off, NULL),
				 VB_OK);
	assert_int_equal(vbi_ring_tx_next_batch(&tx, 0, &b), VB_OK);
	assert_int_equal(b.off, 0);
	assert_int_equal(b.len, 10 * 56);
	assert_int_equal(b.xfer, 10 * 56);
	assert_true(b.has_last);
	assert_int_equal(b.last_off, 9 * 56);
	/* A cap splits on frame boundaries... */
	assert_int_equal(vbi_ring_tx_next_batch(&tx, 200, &b), VB_OK);
	assert_int_equal(b.len, 3 * 56);
	assert_int_equal(b.last_off, 2 * 56);
	/* ...but a batch always holds one frame. */
	assert_int_equal(vbi_ring_tx_next_batch(&tx, 8, &b), VB_OK);
	assert_int_equal(b.len, 56);
	assert_int_equal(b.last_off, 0);
	/* One immediate, ten frames. */
	assert_int_equal(flush_to(&tx, &rx, 0), 560);
	for (i = 0; i < 10; i++) {
		assert_int_equal(vbi_ring_rx_next(&rx, MAX_MSG, &v), VB_OK);
		check_view(&v, i + 1, 3, 21);
		assert_int_equal(vbi_ring_rx_release(&rx, &v), VB_OK);
	}
	assert_int_equal(vbi_ring_rx_freed_units(&rx), 70);
	free(stage);
	free(remote);
}

static void test_ring_flushed_rejects(void **state)
{
	struct vbi_ring_tx tx;
	uint8_t *stage = ring_alloc(256);

	(void)state;
	assert_int_equal(vbi_ring_tx_init(&tx, stage, 256), VB_OK);
	assert_int_equal(stage_msg(&tx, 0, 8, 1, NULL, NULL), VB_OK);
	assert_int_equal(vbi_ring_tx_flushed(&tx, 48), VB_EINVAL);
	assert_int_equal(vbi_ring_tx_flushed(&tx, 20), VB_EINVAL);
	assert_int_equal(vbi_ring_tx_flushed(&tx, 40), VB_OK);
	assert_int_equal(vbi_ring_tx_flushed(&tx, 8), VB_EINVAL);
	free(stage);
}

/* A staged header the caller forgot to write is caught, not walked. */
static void test_ring_next_batch_catches_bad_staging(void **state)
{
	struct vbi_ring_batch b = { .len = 99 };
	struct vbi_ring_tx tx;
	uint8_t *stage = ring_alloc(256);
	size_t off;

	(void)state;
	assert_int_equal(vbi_ring_tx_init(&tx, stage, 256), VB_OK);
	assert_int_equal(vbi_ring_tx_reserve(&tx, 64, &off, NULL), VB_OK);
	assert_int_equal(vbi_ring_tx_next_batch(&tx, 0, &b), VB_EINVAL);
	assert_int_equal(b.len, 99);
	free(stage);
}

/* The 32-bit credit counter wraps every 2^35 bytes; widening survives. */
static void test_ring_credit_wraps(void **state)
{
	struct vbi_ring_tx tx;
	uint8_t *stage = ring_alloc(1024);
	uint64_t start = (1ull << 35) - 512, expect;
	int i;

	(void)state;
	assert_int_equal(vbi_ring_tx_init(&tx, stage, 1024), VB_OK);
	tx.tail = tx.flushed = tx.peer_freed = start;
	for (i = 0; i < 8; i++) {
		assert_int_equal(stage_msg(&tx, 0, 224, i + 1, NULL, NULL),
				 VB_OK);
		assert_int_equal(vbi_ring_tx_flushed(&tx, 256), VB_OK);
		expect = tx.flushed;
		/* The units counter passes 2^32 and wraps to a small value. */
		assert_int_equal(
			vbi_ring_tx_credit(&tx, (uint32_t)(expect / 8)), VB_OK);
		assert_true(tx.peer_freed == expect);
		assert_int_equal(vbi_ring_tx_space(&tx), 1024);
	}
	assert_true(tx.peer_freed > (1ull << 35));
	assert_true((uint32_t)(tx.peer_freed / 8) < 1024);
	/* The same wrap on a large ring, half a ring at a time. */
	free(stage);
	stage = ring_alloc(1u << 20);
	assert_int_equal(vbi_ring_tx_init(&tx, stage, 1u << 20), VB_OK);
	tx.tail = tx.flushed = tx.peer_freed = 3 * (1ull << 35) - (1u << 19);
	assert_int_equal(stage_msg(&tx, 0, (1u << 19) - 32, 1, NULL, NULL),
			 VB_OK);
	assert_int_equal(stage_msg(&tx, 0, (1u << 19) - 32, 2, NULL, NULL),
			 VB_OK);
	assert_int_equal(vbi_ring_tx_flushed(&tx, 1u << 19), VB_OK);
	assert_int_equal(vbi_ring_tx_flushed(&tx, 1u << 19), VB_OK);
	assert_int_equal(vbi_ring_tx_credit(&tx, (uint32_t)(tx.tail / 8)),
			 VB_OK);
	assert_true(tx.peer_freed == tx.tail);
	free(stage);
}

static void test_ring_credit_lies_rejected(void **state)
{
	struct vbi_ring_tx tx;
	uint8_t *stage = ring_alloc(1024);
	uint64_t units;

	(void)state;
	assert_int_equal(vbi_ring_tx_init(&tx, stage, 1024), VB_OK);
	assert_int_equal(stage_msg(&tx, 0, 224, 1, NULL, NULL), VB_OK);
	assert_int_equal(stage_msg(&tx, 0, 224, 2, NULL, NULL), VB_OK);
	assert_int_equal(vbi_ring_tx_flushed(&tx, 256), VB_OK);
	/* Reserved but not flushed: the peer cannot have freed it. */
	assert_int_equal(vbi_ring_tx_credit(&tx, 512 / 8), VB_EPROTO);
	assert_int_equal(vbi_ring_tx_credit(&tx, 264 / 8), VB_EPROTO);
	/* Far ahead, but below the stale half of the u32 range. */
	assert_int_equal(vbi_ring_tx_credit(&tx, INT32_MAX), VB_EPROTO);
	assert_true(tx.peer_freed == 0);
	assert_int_equal(vbi_ring_tx_credit(&tx, 128 / 8), VB_OK);
	assert_true(tx.peer_freed == 128);
	/* A stale (older) credit is ignored, not applied backwards. */
	assert_int_equal(vbi_ring_tx_credit(&tx, 64 / 8), VB_OK);
	assert_int_equal(vbi_ring_tx_credit(&tx, 0), VB_OK);
	assert_true(tx.peer_freed == 128);
	units = (uint32_t)(0 - 1u);
	assert_int_equal(vbi_ring_tx_credit(&tx, (uint32_t)units), VB_OK);
	assert_true(tx.peer_freed == 128);
	assert_int_equal(vbi_ring_tx_credit(&tx, 256 / 8), VB_OK);
	assert_true(tx.peer_freed == 256);
	assert_true(tx.peer_freed <= tx.flushed);
	free(stage);
}

/* A sender and receiver pair over one 1 KiB ring. */
struct pair {
	struct vbi_ring_tx tx; /* sender's view */
	struct vbi_ring_rx rx; /* receiver's view */
	uint8_t *stage; /* sender's staging */
	uint8_t *remote; /* receiver's ring */
};

static void pair_init(struct pair *p, size_t size)
{
	p->stage = ring_alloc(size);
	p->remote = ring_alloc(size);
	assert_int_equal(vbi_ring_tx_init(&p->tx, p->stage, size), VB_OK);
	assert_int_equal(vbi_ring_rx_init(&p->rx, p->remote, size), VB_OK);
}

static void pair_free(struct pair *p)
{
	free(p->stage);
	free(p->remote);
}

static void test_ring_rx_out_of_order_release(void **state)
{
	struct vbi_frame_view v[3];
	struct pair p;
	int i;

	(void)state;
	pair_init(&p, 1024);
	for (i = 0; i < 3; i++)
		assert_int_equal(stage_msg(&p.tx, 1, 7, i + 1, NULL, NULL),
				 VB_OK);
	assert_int_equal(flush_to(&p.tx, &p.rx, 0), 120);
	for (i = 0; i < 3; i++)
		assert_int_equal(vbi_ring_rx_next(&p.rx, MAX_MSG, &v[i]),
				 VB_OK);
	/* 2 and 3 first: nothing freed while 1 is held. */
	assert_int_equal(vbi_ring_rx_release(&p.rx, &v[1]), VB_OK);
	assert_int_equal(vbi_ring_rx_release(&p.rx, &v[2]), VB_OK);
	assert_true(p.rx.freed == 0);
	assert_int_equal(vbi_ring_rx_freed_units(&p.rx), 0);
	assert_int_equal(vbi_ring_rx_release(&p.rx, &v[0]), VB_OK);
	assert_true(p.rx.freed == 120);
	assert_int_equal(vbi_ring_rx_freed_units(&p.rx), 15);
	pair_free(&p);
}

static void test_ring_rx_double_release_rejected(void **state)
{
	struct vbi_frame_view v[2], forged;
	struct pair p, other;

	(void)state;
	pair_init(&p, 1024);
	pair_init(&other, 1024);
	assert_int_equal(stage_msg(&p.tx, 1, 7, 1, NULL, NULL), VB_OK);
	assert_int_equal(stage_msg(&p.tx, 1, 7, 2, NULL, NULL), VB_OK);
	assert_int_equal(flush_to(&p.tx, &p.rx, 0), 80);
	assert_int_equal(vbi_ring_rx_next(&p.rx, MAX_MSG, &v[0]), VB_OK);
	assert_int_equal(vbi_ring_rx_next(&p.rx, MAX_MSG, &v[1]), VB_OK);

	/* Second frame released twice while the first is held. */
	assert_int_equal(vbi_ring_rx_release(&p.rx, &v[1]), VB_OK);
	assert_int_equal(vbi_ring_rx_release(&p.rx, &v[1]), VB_EINVAL);
	assert_true(p.rx.freed == 0);

	/* Another ring's view, even at the same offsets. */
	assert_int_equal(vbi_ring_rx_release(&other.rx, &v[0]), VB_EINVAL);
	/* A forged view off a frame start, and one with a wrong seq. */
	forged = v[0];
	forged.pos += 8;
	forged.off += 8;
	forged.topic += 8;
	assert_int_equal(vbi_ring_rx_release(&p.rx, &forged), VB_EINVAL);
	forged = v[0];
	forged.seq = 2;
	assert_int_equal(vbi_ring_rx_release(&p.rx, &forged), VB_EINVAL);
	forged = v[0];
	forged.pos += p.rx.size;
	assert_int_equal(vbi_ring_rx_release(&p.rx, &forged), VB_EINVAL);
	forged = v[0];
	forged.kind = VBI_FRAME_PAD;
	assert_int_equal(vbi_ring_rx_release(&p.rx, &forged), VB_EINVAL);
	assert_int_equal(vbi_ring_rx_release(&p.rx, NULL), VB_EINVAL);
	assert_true(p.rx.freed == 0);

	/* Now the real release frees both; repeating it is refused. */
	assert_int_equal(vbi_ring_rx_release(&p.rx, &v[0]), VB_OK);
	assert_true(p.rx.freed == 80);
	assert_int_equal(vbi_ring_rx_release(&p.rx, &v[0]), VB_EINVAL);
	assert_int_equal(vbi_ring_rx_release(&p.rx, &v[1]), VB_EINVAL);
	assert_true(p.rx.freed == 80);
	pair_free(&p);
	pair_free(&other);
}

/* A PAD between held frames is released on the spot but not freed early. */
static void test_ring_rx_pad_skipping(void **state)
{
	struct vbi_frame_view a, b, c;
	struct pair p;
	size_t off, pad;

	(void)state;
	pair_init(&p, 256);
	/* 104 + 104 = 208: 48 bytes left, a 64-byte frame must wrap. */
	assert_int_equal(stage_msg(&p.tx, 0, 72, 1, NULL, NULL), VB_OK);
	assert_int_equal(stage_msg(&p.tx, 0, 72, 2, NULL, NULL), VB_OK);
	assert_int_equal(flush_to(&p.tx, &p.rx, 0), 208);
	assert_int_equal(vbi_ring_rx_next(&p.rx, MAX_MSG, &a), VB_OK);
	assert_int_equal(vbi_ring_rx_release(&p.rx, &a), VB_OK);
	assert_int_equal(
		vbi_ring_tx_credit(&p.tx, vbi_ring_rx_freed_units(&p.rx)),
		VB_OK);
	assert_int_equal(stage_msg(&p.tx, 0, 32, 3, &off, &pad), VB_OK);
	assert_int_equal(off, 0);
	assert_int_equal(pad, 48);
	assert_int_equal(flush_to(&p.tx, &p.rx, 0), 48);
	assert_int_equal(flush_to(&p.tx, &p.rx, 0), 64);
	assert_int_equal(vbi_ring_rx_next(&p.rx, MAX_MSG, &b), VB_OK);
	assert_true(b.seq == 2);
	assert_int_equal(vbi_ring_rx_next(&p.rx, MAX_MSG, &c), VB_OK);
	assert_true(c.seq == 3);
	assert_int_equal(c.off, 0);
	/* Frame 2 is held, so the PAD after it is not freed yet. */
	assert_true(p.rx.freed == 104);
	assert_int_equal(vbi_ring_rx_release(&p.rx, &c), VB_OK);
	assert_true(p.rx.freed == 104);
	assert_int_equal(vbi_ring_rx_release(&p.rx, &b), VB_OK);
	assert_true(p.rx.freed == 256 + 64);
	assert_true(p.rx.freed == p.rx.head);
	pair_free(&p);
}

static void test_ring_rx_arrived_lies_rejected(void **state)
{
	struct vbi_ring_rx rx;
	uint8_t *remote = ring_alloc(256);

	(void)state;
	assert_int_equal(vbi_ring_rx_init(&rx, remote, 256), VB_OK);
	assert_int_equal(vbi_ring_rx_arrived(&rx, 12), VB_EPROTO);
	assert_true(rx.written == 0);
	assert_int_equal(vbi_ring_rx_init(&rx, remote, 256), VB_OK);
	assert_int_equal(vbi_ring_rx_arrived(&rx, 264), VB_EPROTO);
	assert_int_equal(vbi_ring_rx_init(&rx, remote, 256), VB_OK);
	assert_int_equal(vbi_ring_rx_arrived(&rx, UINT32_MAX - 7), VB_EPROTO);
	/* More than the free space, after a legitimate batch. */
	assert_int_equal(vbi_ring_rx_init(&rx, remote, 256), VB_OK);
	rx.written = rx.head = 1000;
	rx.freed = 800;
	assert_int_equal(vbi_ring_rx_arrived(&rx, 64), VB_EPROTO);
	/* A WRITE may not cross the end of the ring. */
	assert_int_equal(vbi_ring_rx_init(&rx, remote, 256), VB_OK);
	rx.written = rx.head = rx.freed = 192;
	assert_int_equal(vbi_ring_rx_arrived(&rx, 72), VB_EPROTO);
	assert_true(rx.written == 192);
	/* And once broken, the ring stays broken. */
	assert_int_equal(vbi_ring_rx_arrived(&rx, 64), VB_EPROTO);
	assert_int_equal(vbi_ring_rx_init(&rx, remote, 256), VB_OK);
	rx.written = rx.head = rx.freed = 192;
	assert_int_equal(vbi_ring_rx_arrived(&rx, 64), VB_OK);
	free(remote);
}

/* Garbage after good frames: an error, then the same error, no damage. */
static void test_ring_rx_malformed_is_sticky(void **state)
{
	struct vbi_frame_view v, w;
	struct pair p;
	size_t off;

	(void)state;
	pair_init(&p, 1024);
	assert_int_equal(stage_msg(&p.tx, 1, 7, 1, NULL, NULL), VB_OK);
	assert_int_equal(stage_msg(&p.tx, 1, 7, 2, &off, NULL), VB_OK);
	assert_int_equal(flush_to(&p.tx, &p.rx, 0), 80);
	p.remote[off + 5] = 0x80; /* flags on the wire */
	assert_int_equal(vbi_ring_rx_next(&p.rx, MAX_MSG, &v), VB_OK);
	memset(&w, 0x77, sizeof(w));
	assert_int_equal(vbi_ring_rx_next(&p.rx, MAX_MSG, &w), VB_EPROTO);
	assert_int_equal(vbi_ring_rx_next(&p.rx, MAX_MSG, &w), VB_EPROTO);
	assert_int_equal(w.kind, 0x77);
	assert_true(p.rx.head == 40);
	/* The frame already handed out can still be released. */
	assert_int_equal(vbi_ring_rx_release(&p.rx, &v), VB_OK);
	assert_true(p.rx.freed == 40);
	pair_free(&p);
}

static void test_ring_rx_seq_must_follow(void **state)
{
	struct vbi_frame_view v;
	struct pair p;

	(void)state;
	pair_init(&p, 1024);
	assert_int_equal(stage_msg(&p.tx, 0, 8, 1, NULL, NULL), VB_OK);
	assert_int_equal(stage_msg(&p.tx, 0, 8, 3, NULL, NULL), VB_OK);
	assert_int_equal(flush_to(&p.tx, &p.rx, 0), 80);
	assert_int_equal(vbi_ring_rx_next(&p.rx, MAX_MSG, &v), VB_OK);
	assert_int_equal(vbi_ring_rx_next(&p.rx, MAX_MSG, &v), VB_EPROTO);
	assert_true(p.rx.broken);
	pair_free(&p);
}

/* A truncated PAD: the immediate stops short of the end of the ring. */
static void test_ring_rx_short_pad_rejected(void **state)
{
	struct vbi_frame_view v;
	struct vbi_ring_rx rx;
	uint8_t *remote = ring_alloc(256);

	(void)state;
	assert_int_equal(vbi_ring_rx_init(&rx, remote, 256), VB_OK);
	rx.written = rx.head = rx.freed = 128;
	assert_int_equal(vbi_frame_put_pad(remote + 128, 128), VB_OK);
	assert_int_equal(vbi_ring_rx_arrived(&rx, 64), VB_OK);
	assert_int_equal(vbi_ring_rx_next(&rx, MAX_MSG, &v), VB_EPROTO);
	free(remote);
}

/*
 * The peer may rewrite a header we still hold.  Release must stay within
 * the ring and the counters, and report the ring broken.
 */
static void test_ring_rx_peer_rewrites_held_header(void **state)
{
	struct vbi_frame_view v[3];
	struct pair p;
	int i;

	(void)state;
	pair_init(&p, 1024);
	for (i = 0; i < 3; i++)
		assert_int_equal(stage_msg(&p.tx, 0, 8, i + 1, NULL, NULL),
				 VB_OK);
	assert_int_equal(flush_to(&p.tx, &p.rx, 0), 120);
	for (i = 0; i < 3; i++)
		assert_int_equal(vbi_ring_rx_next(&p.rx, MAX_MSG, &v[i]),
				 VB_OK);
	assert_int_equal(vbi_ring_rx_release(&p.rx, &v[1]), VB_OK);
	assert_int_equal(vbi_ring_rx_release(&p.rx, &v[2]), VB_OK);
	/* Frame 2 now claims to be huge. */
	p.remote[40] = 0xff;
	p.remote[41] = 0xff;
	assert_int_equal(vbi_ring_rx_release(&p.rx, &v[0]), VB_EPROTO);
	assert_true(p.rx.freed == 40);
	assert_true(p.rx.freed <= p.rx.head);
	assert_int_equal(vbi_ring_rx_next(&p.rx, MAX_MSG, &v[0]), VB_EPROTO);
	pair_free(&p);
}

/* xorshift64*: deterministic, good enough for shuffling. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

/* Lengths are a function of seq, so the receiver can check them. */
static void sim_lengths(uint64_t seq, uint16_t *tlen, uint32_t *plen)
{
	uint64_t h = seq * 0x9e3779b97f4a7c15ull;

	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	*tlen = (uint16_t)(h % 41);
	if ((h >> 8) % 64 == 0)
		*plen = (uint32_t)((h >> 16) % 3000);
	else
		*plen = (uint32_t)((h >> 16) % 200);
}

#define SIM_FRAMES 200000u
#define SIM_RING 8192u
#define SIM_WINDOW 8

static void sim_check_invariants(const struct pair *p)
{
	assert_true(p->tx.peer_freed <= p->tx.flushed);
	assert_true(p->tx.flushed <= p->tx.tail);
	assert_true(p->tx.tail - p->tx.peer_freed <= p->tx.size);
	assert_true(p->rx.freed <= p->rx.head);
	assert_true(p->rx.head <= p->rx.written);
	assert_true(p->rx.written - p->rx.freed <= p->rx.size);
	assert_true(p->rx.written == p->tx.flushed);
	assert_true(p->tx.peer_freed <= p->rx.freed);
}

static void test_ring_simulation(void **state)
{
	struct vbi_frame_view held[SIM_WINDOW];
	uint64_t s = 0x1234567887654321ull, sent = 0, got = 0, done = 0;
	uint64_t batches = 0, pads = 0, steps = 0, stale = 0;
	struct pair p;
	int nheld = 0;

	(void)state;
	pair_init(&p, SIM_RING);
	while (done < SIM_FRAMES) {
		uint64_t r = rnd(&s);
		uint16_t tlen;
		uint32_t plen;
		size_t pad;
		int rc, i;

		assert_true(++steps < 50u * SIM_FRAMES);
		/* Sender: stage a few frames. */
		for (i = (int)(r % 4); i > 0 && sent < SIM_FRAMES; i--) {
			sim_lengths(sent + 1, &tlen, &plen);
			rc = stage_msg(&p.tx, tlen, plen, sent + 1, NULL, &pad);
			if (rc == VB_EAGAIN)
				break;
			assert_int_equal(rc, VB_OK);
			sent++;
			pads += pad != 0;
		}
		/* The NIC: move one batch, sometimes capped. */
		if ((r >> 8) % 3 == 0) {
			size_t max = (r >> 10) % 2 ? 0 : 64 + (r >> 12) % 2048;

			if (flush_to(&p.tx, &p.rx, max))
				batches++;
		}
		/* Receiver: take frames while the window has room. */
		while (nheld < SIM_WINDOW && (r >> 20) % 2) {
			rc = vbi_ring_rx_next(&p.rx, 4096, &held[nheld]);
			if (rc == VB_EAGAIN)
				break;
			assert_int_equal(rc, VB_OK);
			sim_lengths(got + 1, &tlen, &plen);
			check_view(&held[nheld], got + 1, tlen, plen);
			got++;
			nheld++;
		}
		/* The application releases in random order. */
		if (nheld && (r >> 24) % 2) {
			i = (int)((r >> 28) % (uint64_t)nheld);
			/* Still intact: nobody overwrote a held frame. */
			sim_lengths(held[i].seq, &tlen, &plen);
			check_view(&held[i], held[i].seq, tlen, plen);
			assert_int_equal(vbi_ring_rx_release(&p.rx, &held[i]),
					 VB_OK);
			held[i] = held[--nheld];
			done++;
		}
		/* Credit returns, sometimes late, sometimes repeated. */
		if ((r >> 40) % 4 == 0) {
			uint64_t before = p.tx.peer_freed;

			assert_int_equal(
				vbi_ring_tx_credit(
					&p.tx, vbi_ring_rx_freed_units(&p.rx)),
				VB_OK);
			/* An old credit arriving afterwards changes nothing. */
			if (before < p.tx.peer_freed && (r >> 44) % 2) {
				assert_int_equal(
					vbi_ring_tx_credit(
						&p.tx, (uint32_t)(before / 8)),
					VB_OK);
				stale++;
			}
			assert_true(p.tx.peer_freed == p.rx.freed);
		}
		sim_check_invariants(&p);
	}
	assert_true(got == SIM_FRAMES);
	assert_true(sent == SIM_FRAMES);
	/* It wrapped many times, padded, coalesced and saw stale credits. */
	assert_true(p.tx.tail / SIM_RING > 1000);
	assert_true(pads > 1000);
	assert_true(batches < SIM_FRAMES / 2);
	assert_true(stale > 1000);
	pair_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ring_init_rejects_bad_sizes),
		cmocka_unit_test(test_ring_empty),
		cmocka_unit_test(test_ring_reserve_limits),
		cmocka_unit_test(test_ring_full),
		cmocka_unit_test(test_ring_exact_fit_to_end),
		cmocka_unit_test(test_ring_wrap_with_pad_8),
		cmocka_unit_test(test_ring_wrap_with_pad_16),
		cmocka_unit_test(test_ring_wrap_with_pad_24_and_larger),
		cmocka_unit_test(test_ring_pad_counts_toward_space),
		cmocka_unit_test(test_ring_pin_holds_space),
		cmocka_unit_test(test_ring_coalescing),
		cmocka_unit_test(test_ring_flushed_rejects),
		cmocka_unit_test(test_ring_next_batch_catches_bad_staging),
		cmocka_unit_test(test_ring_credit_wraps),
		cmocka_unit_test(test_ring_credit_lies_rejected),
		cmocka_unit_test(test_ring_rx_out_of_order_release),
		cmocka_unit_test(test_ring_rx_double_release_rejected),
		cmocka_unit_test(test_ring_rx_pad_skipping),
		cmocka_unit_test(test_ring_rx_arrived_lies_rejected),
		cmocka_unit_test(test_ring_rx_malformed_is_sticky),
		cmocka_unit_test(test_ring_rx_seq_must_follow),
		cmocka_unit_test(test_ring_rx_short_pad_rejected),
		cmocka_unit_test(test_ring_rx_peer_rewrites_held_header),
		cmocka_unit_test(test_ring_simulation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
