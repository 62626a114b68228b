/* libFuzzer target: a receive ring written by a hostile peer.  The input
 * is the ring's bytes followed by a list of 2-byte operations: an
 * immediate (bit 15 clear; its bits 3-12: bytes arrived), 0 meaning
 * "release the frames held", or, bit 15 set, the peer rewriting 8 bytes
 * of the ring (the 8 bytes that follow, at the 8-aligned offset in bits
 * 3-11) at any time, under frames we hold or have released too: that is
 * how the peer writes the frames after a wrap-around, and how it lies
 * after the fact.  The ring is driven through vbi_ring_rx_arrived/next/
 * release exactly as the transport does, odd frames held and released
 * later, newest first; every view handed out must lie inside the ring and
 * the ring's counters must stay ordered.  A CHUNK's prefix is decoded too
 * (core/chunk.c): its piece must lie inside the payload and within the
 * total it announces, and the prefix must encode back to the same; so is
 * a RESEND's (core/resend.c): the original payload after it, its fields
 * as checked, and the same bytes again from its encoder. */
#include "core/chunk.h"
#include "core/resend.h"
#include "core/frame.h"
#include "core/ring.h"

#include <verbus/verbus.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define RING 4096u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The ring's counters stay ordered whatever the peer writes. */
static void check_counters(const struct vbi_ring_rx *rx)
{
	if (rx->freed > rx->head || rx->head > rx->written ||
	    rx->written - rx->freed > RING)
		abort();
}

/* A CHUNK's prefix, as the broker and the library decode it. */
static void check_chunk(const struct vbi_frame_view *v)
{
	uint8_t again[VBI_CHUNK_PREFIX_LEN];
	const uint8_t *p = v->payload;
	struct vbi_chunk ck, ck2;

	if (v->kind != VBI_FRAME_CHUNK ||
	    vbi_chunk_parse(v->payload, v->payload_len, &ck) != VB_OK)
		return;
	if ((const uint8_t *)ck.data != p + VBI_CHUNK_PREFIX_LEN ||
	    ck.len != v->payload_len - VBI_CHUNK_PREFIX_LEN ||
	    (uint64_t)ck.off + ck.len > ck.total ||
	    ck.total > VBI_CHUNK_TOTAL_MAX)
		abort();
	vbi_chunk_put(again, &ck);
	if (memcmp(again, p, sizeof(again)) ||
	    vbi_chunk_parse(again, sizeof(again) + ck.len, &ck2) != VB_OK ||
	    ck2.tag != ck.tag || ck2.total != ck.total || ck2.off != ck.off ||
	    ck2.flags != ck.flags)
		abort();
}

/* A RESEND's prefix, as the broker and the library decode it. */
static void check_resend(const struct vbi_frame_view *v)
{
	uint8_t again[VBI_RESEND_PREFIX_LEN];
	const uint8_t *p = v->payload;
	struct vbi_resend r, r2;

	if (v->kind != VBI_FRAME_RESEND ||
	    vbi_resend_parse(v->payload, v->payload_len, &r) != VB_OK)
		return;
	if ((const uint8_t *)r.payload != p + VBI_RESEND_PREFIX_LEN ||
	    r.payload_len != v->payload_len - VBI_RESEND_PREFIX_LEN ||
	    !r.pub_id || !r.sub_id || !r.seq ||
	    (r.kind != VBI_FRAME_MSG && r.kind != VBI_FRAME_HMSG))
		abort();
	vbi_resend_put(again, &r);
	if (memcmp(again, p, sizeof(again)) ||
	    vbi_resend_parse(again, sizeof(again), &r2) != VB_OK ||
	    r2.pub_id != r.pub_id || r2.sub_id != r.sub_id || r2.seq != r.seq ||
	    r2.kind != r.kind || memcmp(r2.conn, r.conn, sizeof(r.conn)))
		abort();
}

/* Release what we hold, newest first: only a header the peer rewrote
 * may refuse. */
static void release_held(struct vbi_ring_rx *rx, struct vbi_frame_view *held,
			 size_t *nheld, bool rewritten)
{
	while (*nheld > 0) {
		if (vbi_ring_rx_release(rx, &held[--*nheld]) == VB_EINVAL &&
		    !rewritten)
			abort();
		check_counters(rx);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t ring[RING] __attribute__((aligned(8)));
	struct vbi_frame_view held[64];
	struct vbi_ring_rx rx;
	size_t nheld = 0;
	bool rewritten = false; /* the peer rewrote part of the ring */
	int rc;

	if (size < RING)
		return 0;
	memcpy(ring, data, RING);
	data += RING;
	size -= RING;
	if (vbi_ring_rx_init(&rx, ring, RING) != VB_OK)
		abort();
	for (; size >= 2; data += 2, size -= 2) {
		uint32_t op = (uint32_t)(data[0] | data[1] << 8);
		uint32_t imm = op & 0x1ff8u;

		if (op & 0x8000u) {
			if (size < 10)
				break;
			memcpy(ring + (op & (RING - 8)), data + 2, 8);
			data += 8;
			size -= 8;
			rewritten = true;
			continue;
		}
		if (imm == 0) {
			release_held(&rx, held, &nheld, rewritten);
			continue;
		}
		if (vbi_ring_rx_arrived(&rx, imm) != VB_OK)
			break;
		for (;;) {
			struct vbi_frame_view v;

			rc = vbi_ring_rx_next(&rx, 2048, &v);
			if (rc != VB_OK)
				break;
			if (v.off + v.span > RING ||
			    (const uint8_t *)v.topic < ring ||
			    (const uint8_t *)v.payload + v.payload_len >
				    ring + RING)
				abort();
			check_chunk(&v);
			check_resend(&v);
			/* Hold the odd ones (until a 0 immediate), release
			 * the others at once: out of order. */
			if (nheld < 64 && (v.seq & 1))
				held[nheld++] = v;
			else if (vbi_ring_rx_release(&rx, &v) == VB_EINVAL &&
				 !rewritten)
				abort();
			check_counters(&rx);
		}
		check_counters(&rx);
		if (rc == VB_EPROTO)
			break;
	}
	release_held(&rx, held, &nheld, rewritten);
	return 0;
}
