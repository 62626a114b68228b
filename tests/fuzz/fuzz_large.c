/* libFuzzer target: the chunks a connection receives, as libverbus puts
 * them back together (clients/lib/large.c): a hostile publisher (or a
 * broker) chooses every prefix field, the order, the subscription, the
 * tag.  The input is a list of 12-byte chunks: sid (1..4), tag (0..3),
 * total (bytes 2-3, 1..65535), offset (4-5), flags (6), data length
 * (7-8, at most 4096), whether the subscription takes new messages (9),
 * time step (10-11, ms).  The table must never exceed its budget, never
 * hand out a message whose size is not the one its stream announced,
 * and free everything at the end (ASan's leak check). */
#include "clients/lib/large.h"
#include "core/chunk.h"

#include <verbus/verbus.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t payload[VBI_CHUNK_PREFIX_LEN + 4096];
	struct vbi_large t;
	uint64_t now = 1;

	/* Small limits, so that budget and eviction are reached. */
	vbi_large_init(&t, 40000, 100000, 50ull * 1000000);
	for (; size >= 12; data += 12, size -= 12) {
		struct vbi_chunk ck = { 0 };
		struct vbi_large_msg m;
		enum vbi_large_res res;
		uint32_t sid = 1 + (data[0] & 3), len;

		ck.tag = data[1] & 3;
		ck.total = (uint32_t)(data[2] | data[3] << 8);
		ck.off = (uint32_t)(data[4] | data[5] << 8);
		ck.flags = data[6] & (VBI_CHUNK_FLAGS | 0x10);
		len = (uint32_t)(data[7] | data[8] << 8) % 4097;
		now += (uint64_t)(data[10] | data[11] << 8) * 1000000;
		vbi_chunk_put(payload, &ck);
		memset(payload + VBI_CHUNK_PREFIX_LEN, data[9], len);
		if ((data[9] & 0x30) == 0x30) {
			vbi_large_drop_sid(&t, sid);
			continue;
		}
		res = vbi_large_feed(&t, sid, "fuzz.x", 6, payload,
				     VBI_CHUNK_PREFIX_LEN + len, data[9] & 1,
				     now, &m);
		if (t.used > t.budget)
			abort();
		if (res == VBI_LARGE_DONE) {
			if (!m.buf || m.buf->total != m.total ||
			    m.total > t.max_payload ||
			    memcmp(vbi_lbuf_topic(m.buf), "fuzz.x", 6))
				abort();
			vbi_lbuf_put(m.buf);
		}
	}
	vbi_large_clear(&t);
	if (t.used != 0 || t.parts != NULL)
		abort();
	return 0;
}
