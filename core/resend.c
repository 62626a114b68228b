/*
 * resend.c - direct mode's resends: the RESEND prefix (core/resend.h).
 */
#include "core/resend.h"
#include "core/frame.h"
#include "core/le.h"

#include <verbus/verbus.h>

#include <string.h>

int vbi_resend_parse(const void *payload, uint32_t payload_len,
		     struct vbi_resend *out)
{
	const uint8_t *p = payload;
	struct vbi_resend r;

	if (!p || payload_len < VBI_RESEND_PREFIX_LEN)
		return VB_EPROTO;
	/* Each field read once: the bytes may be a peer's to change. */
	r.pub_id = vbi_ld64(p);
	r.sub_id = vbi_ld64(p + 8);
	r.seq = vbi_ld64(p + 16);
	r.kind = p[24];
	memcpy(r.conn, p + 25, VBI_RESEND_CONN_LEN);
	if (!r.pub_id || !r.sub_id || !r.seq ||
	    (r.kind != VBI_FRAME_MSG && r.kind != VBI_FRAME_HMSG))
		return VB_EPROTO;
	r.payload = p + VBI_RESEND_PREFIX_LEN;
	r.payload_len = payload_len - VBI_RESEND_PREFIX_LEN;
	*out = r;
	return VB_OK;
}

void vbi_resend_put(void *dst, const struct vbi_resend *r)
{
	uint8_t *p = dst;

	vbi_st64(p, r->pub_id);
	vbi_st64(p + 8, r->sub_id);
	vbi_st64(p + 16, r->seq);
	p[24] = r->kind;
	memcpy(p + 25, r->conn, VBI_RESEND_CONN_LEN);
}
