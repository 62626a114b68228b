/*
 * chunk.c - large messages: the CHUNK prefix (core/chunk.h).
 */
#include "core/chunk.h"
#include "core/le.h"

#include <verbus/verbus.h>

int vbi_chunk_parse(const void *payload, uint32_t payload_len,
		    struct vbi_chunk *out)
{
	const uint8_t *p = payload;
	struct vbi_chunk ck;

	if (!p || payload_len < VBI_CHUNK_PREFIX_LEN)
		return VB_EPROTO;
	/* Each field read once: the bytes may be a peer's to change. */
	ck.tag = vbi_ld64(p);
	ck.total = vbi_ld32(p + 8);
	ck.off = vbi_ld32(p + 12);
	ck.flags = vbi_ld32(p + 16);
	if (vbi_ld32(p + 20) != 0 || (ck.flags & ~VBI_CHUNK_FLAGS))
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

	vbi_st64(p, ck->tag);
	vbi_st32(p + 8, ck->total);
	vbi_st32(p + 12, ck->off);
	vbi_st32(p + 16, ck->flags);
	vbi_st32(p + 20, 0);
}
