/* libFuzzer target: a receive ring written by a hostile peer.  The input
 * is the ring's bytes followed by a list of immediates; the ring is driven
 * through vbi_ring_rx_arrived/next/release exactly as the transport does,
 * and every view handed out must lie inside the ring. */
#include "core/frame.h"
#include "core/ring.h"

#include <verbus/verbus.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define RING 4096u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t ring[RING] __attribute__((aligned(8)));
	struct vbi_frame_view held[64];
	struct vbi_ring_rx rx;
	size_t nheld = 0, i;
	int rc;

	if (size < RING)
		return 0;
	memcpy(ring, data, RING);
	data += RING;
	size -= RING;
	if (vbi_ring_rx_init(&rx, ring, RING) != VB_OK)
		abort();
	for (; size >= 2; data += 2, size -= 2) {
		uint32_t imm = (uint32_t)(data[0] | data[1] << 8) & 0x1ff8u;

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
			/* Hold some, release others, out of order. */
			if (nheld < 64 && (v.seq & 1))
				held[nheld++] = v;
			else if (vbi_ring_rx_release(&rx, &v) == VB_EINVAL)
				abort();
		}
		if (rc == VB_EPROTO)
			break;
		for (i = nheld; i-- > 0;)
			vbi_ring_rx_release(&rx, &held[i]);
		nheld = 0;
	}
	return 0;
}
