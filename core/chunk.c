/*
 * chunk.c - large messages: the CHUNK prefix (core/chunk.h).
 */
#include "core/chunk.h"

#include <verbus/verbus.h>

static uint32_t ld32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void st32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

int vbi_chunk_parse(const void *payload, uint32_t payload_len,
		    struct vbi_chunk *out)
{
	const uint8_t *p = payload;
	struct vbi_chunk ck;

	if (!p || payload_len < VBI_CHUNK_PREFIX_LEN)
		return VB_EPROTO;
	/* Each field read once: the bytes may be a peer's to change. */
	ck.tag = (uint64_t)ld32(p) | (uint64_t)ld32(p + 4) << 32;
	ck.total = ld32(p + 8);
	ck.off = ld32(p + 12);
	ck.flags = ld32(p + 16);
	if (ld32(p + 20) != 0 || (ck.flags & ~VBI_CHUNK_FLAGS))
		return VB_EPROTO;
	ck.data = p + VBI_CHUNK_PREFIX_LEN;
	ck.len = payload_len - VBI_CHUNK_PREFIX_LEN;
	if (ck.total == 0 || ck.total > VBI_CHUNK_TOTAL_MAX ||
	    ck.off > ck.total || ck.len > ck.total - ck.off)
		return VB_EPROTO;
	if (ck.flags & VBI_CHUNK_ABORT) {
		if (ck.flags & (VBI_CHUNK_FIRST | VBI_CHUNK_LAST) || ck.len)
			return VB_EPROTO;
	} else {
		if (ck.len == 0)
			return VB_EPROTO;
		if (!(ck.flags & VBI_CHUNK_FIRST) != (ck.off != 0))
			return VB_EPROTO;
		if (!(ck.flags & VBI_CHUNK_LAST) !=
		    (ck.off + ck.len != ck.total))
			return VB_EPROTO;
	}
	*out = ck;
	return VB_OK;
}

void vbi_chunk_put(void *dst, const struct vbi_chunk *ck)
{
	uint8_t *p = dst;

	st32(p, (uint32_t)ck->tag);
	st32(p + 4, (uint32_t)(ck->tag >> 32));
	st32(p + 8, ck->total);
	st32(p + 12, ck->off);
	st32(p + 16, ck->flags);
	st32(p + 20, 0);
}
