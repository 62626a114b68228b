/*
 * frame.c - encoding and validation of ring frames.
 *
 * Two decisions shape this file.  First, fields are moved with explicit
 * little-endian byte loads and stores rather than through a struct pointer
 * into the ring: the ring is plain bytes the NIC writes, so this is free of
 * aliasing and byte-order assumptions, and the compiler turns each accessor
 * into a single move on x86_64.  Second, the parser treats the ring as
 * hostile and concurrently mutable: it reads each header field exactly once
 * into a local, validates the local copies, and builds the view only from
 * them, and it never touches a byte outside what the caller says has
 * arrived.  A PAD is validated from its first 8 bytes alone.
 */
#include "frame.h"
#include "header.h"
#include "le.h"

#include <verbus/verbus.h>

#include <string.h>

#define HDR_OFF_LEN offsetof(struct vbi_frame_hdr, len)
#define HDR_OFF_KIND offsetof(struct vbi_frame_hdr, kind)
#define HDR_OFF_FLAGS offsetof(struct vbi_frame_hdr, flags)
#define HDR_OFF_TOPIC_LEN offsetof(struct vbi_frame_hdr, topic_len)
#define HDR_OFF_PAYLOAD_LEN offsetof(struct vbi_frame_hdr, payload_len)
#define HDR_OFF_ACK_RECVS offsetof(struct vbi_frame_hdr, ack_recvs)
#define HDR_OFF_SEQ offsetof(struct vbi_frame_hdr, seq)
#define HDR_OFF_ACK_FREED offsetof(struct vbi_frame_hdr, ack_freed)
#define HDR_OFF_SID offsetof(struct vbi_frame_hdr, sid)

static int frame_misaligned(const void *p)
{
	return ((uintptr_t)p & (VBI_FRAME_ALIGN - 1)) != 0;
}

/* Checks shared by the two encoders; sets *@len and *@span on success. */
static int frame_check_msg(const void *dst, size_t cap,
			   const struct vbi_frame_msg *m, uint32_t *len,
			   size_t *span)
{
	uint64_t l;

	if (dst == NULL || m == NULL || frame_misaligned(dst))
		return VB_EINVAL;
	l = vbi_frame_msg_len(m->topic_len, m->payload_len);
	if (l > UINT32_MAX || vbi_frame_span((size_t)l) > cap)
		return VB_EMSGSIZE;
	*len = (uint32_t)l;
	*span = vbi_frame_span((size_t)l);
	return VB_OK;
}

static void frame_write_hdr(uint8_t *p, uint32_t len, size_t span,
			    const struct vbi_frame_msg *m)
{
	vbi_st32(p + HDR_OFF_LEN, len);
	/* 0 and MSG are MSG, HMSG stays (no branch on the message path). */
	p[HDR_OFF_KIND] = (uint8_t)(m->kind | VBI_FRAME_MSG);
	p[HDR_OFF_FLAGS] = 0;
	vbi_st16(p + HDR_OFF_TOPIC_LEN, m->topic_len);
	vbi_st32(p + HDR_OFF_PAYLOAD_LEN, m->payload_len);
	vbi_st32(p + HDR_OFF_ACK_RECVS, m->ack_recvs);
	vbi_st64(p + HDR_OFF_SEQ, m->seq);
	vbi_st32(p + HDR_OFF_ACK_FREED, m->ack_freed);
	vbi_st32(p + HDR_OFF_SID, m->sid);
	/* Padding is zeroed so that no stale staging bytes reach the wire. */
	memset(p + len, 0, span - len);
}

int vbi_frame_put_hdr(void *dst, size_t cap, const struct vbi_frame_msg *m)
{
	uint32_t len;
	size_t span;
	int rc;

	rc = frame_check_msg(dst, cap, m, &len, &span);
	if (rc != VB_OK)
		return rc;
	frame_write_hdr(dst, len, span, m);
	return VB_OK;
}

int vbi_frame_encode(void *dst, size_t cap, const struct vbi_frame_msg *m,
		     size_t *span)
{
	uint8_t *p = dst;
	uint32_t len;
	size_t sp;
	int rc;

	rc = frame_check_msg(dst, cap, m, &len, &sp);
	if (rc != VB_OK)
		return rc;
	if ((m->topic_len && m->topic == NULL) ||
	    (m->payload_len && m->payload == NULL))
		return VB_EINVAL;
	frame_write_hdr(p, len, sp, m);
	if (m->topic_len)
		memcpy(p + VBI_FRAME_HDR_LEN, m->topic, m->topic_len);
	if (m->payload_len)
		memcpy(p + VBI_FRAME_HDR_LEN + m->topic_len, m->payload,
		       m->payload_len);
	if (span)
		*span = sp;
	return VB_OK;
}

int vbi_frame_put_pad(void *dst, size_t len)
{
	uint8_t *p = dst;

	if (p == NULL || frame_misaligned(p) || len < VBI_FRAME_PAD_LEN ||
	    len % VBI_FRAME_ALIGN || len > UINT32_MAX)
		return VB_EINVAL;
	vbi_st32(p + HDR_OFF_LEN, (uint32_t)len);
	p[HDR_OFF_KIND] = VBI_FRAME_PAD;
	p[HDR_OFF_FLAGS] = 0;
	vbi_st16(p + HDR_OFF_TOPIC_LEN, 0);
	return VB_OK;
}

void vbi_frame_set_acks(void *frame, uint32_t ack_recvs, uint32_t ack_freed)
{
	uint8_t *p = frame;

	vbi_st32(p + HDR_OFF_ACK_RECVS, ack_recvs);
	vbi_st32(p + HDR_OFF_ACK_FREED, ack_freed);
}

uint32_t vbi_frame_get_len(const void *frame)
{
	return vbi_ld32((const uint8_t *)frame + HDR_OFF_LEN);
}

uint8_t vbi_frame_get_kind(const void *frame)
{
	return ((const uint8_t *)frame)[HDR_OFF_KIND];
}

uint8_t vbi_frame_get_flags(const void *frame)
{
	return ((const uint8_t *)frame)[HDR_OFF_FLAGS];
}

uint16_t vbi_frame_get_topic_len(const void *frame)
{
	return vbi_ld16((const uint8_t *)frame + HDR_OFF_TOPIC_LEN);
}

uint64_t vbi_frame_get_seq(const void *frame)
{
	return vbi_ld64((const uint8_t *)frame + HDR_OFF_SEQ);
}

void vbi_frame_set_flags(void *frame, uint8_t flags)
{
	((uint8_t *)frame)[HDR_OFF_FLAGS] = flags;
}

void vbi_frame_set_sid(void *frame, uint32_t sid)
{
	vbi_st32((uint8_t *)frame + HDR_OFF_SID, sid);
}

int vbi_frame_hmsg_split(const void *payload, uint32_t payload_len,
			 uint32_t *hdr_len)
{
	uint32_t h;

	if (payload == NULL || payload_len < VBI_FRAME_HLEN_LEN)
		return VB_EPROTO;
	h = vbi_ld32(payload);
	if (h < VBI_HDR_MIN_LEN || h > payload_len - VBI_FRAME_HLEN_LEN)
		return VB_EPROTO;
	*hdr_len = h;
	return VB_OK;
}

/* A PAD covers exactly the rest of the ring and nothing else. */
static int frame_parse_pad(uint32_t len, uint16_t topic_len, size_t room,
			   size_t avail, struct vbi_frame_view *v)
{
	if (topic_len != 0 || len != room || len > avail)
		return VB_EPROTO;
	v->kind = VBI_FRAME_PAD;
	v->span = len;
	return VB_OK;
}

/* A MSG or an HMSG (whose payload the reader splits: frame.h). */
static int frame_parse_msg(const uint8_t *p, uint8_t kind, uint32_t len,
			   uint16_t topic_len, size_t room, size_t avail,
			   size_t max_msg, struct vbi_frame_view *v)
{
	uint32_t payload_len;
	size_t span;

	if (avail < VBI_FRAME_HDR_LEN || len < VBI_FRAME_HDR_LEN)
		return VB_EPROTO;
	span = vbi_frame_span(len);
	if (len > avail || span > avail || span > room)
		return VB_EPROTO;
	payload_len = vbi_ld32(p + HDR_OFF_PAYLOAD_LEN);
	if (vbi_frame_msg_len(topic_len, payload_len) != len ||
	    payload_len > max_msg)
		return VB_EPROTO;
	v->kind = kind;
	v->span = span;
	v->seq = vbi_ld64(p + HDR_OFF_SEQ);
	v->ack_recvs = vbi_ld32(p + HDR_OFF_ACK_RECVS);
	v->ack_freed = vbi_ld32(p + HDR_OFF_ACK_FREED);
	v->sid = vbi_ld32(p + HDR_OFF_SID);
	v->topic = (const char *)p + VBI_FRAME_HDR_LEN;
	v->topic_len = topic_len;
	v->payload = p + VBI_FRAME_HDR_LEN + topic_len;
	v->payload_len = payload_len;
	return VB_OK;
}

int vbi_frame_parse(const void *ring, size_t ring_size, size_t off,
		    size_t avail, size_t max_msg, struct vbi_frame_view *out)
{
	struct vbi_frame_view v = { 0 };
	const uint8_t *p;
	uint16_t topic_len;
	uint8_t kind;
	uint32_t len;
	size_t room;
	int rc;

	if (ring == NULL || out == NULL || off >= ring_size ||
	    avail > ring_size - off)
		return VB_EINVAL;
	if (off % VBI_FRAME_ALIGN || avail < VBI_FRAME_PAD_LEN)
		return VB_EPROTO;
	p = (const uint8_t *)ring + off;
	room = ring_size - off;
	len = vbi_ld32(p + HDR_OFF_LEN);
	topic_len = vbi_ld16(p + HDR_OFF_TOPIC_LEN);
	kind = p[HDR_OFF_KIND];
	if (p[HDR_OFF_FLAGS] != 0)
		return VB_EPROTO;
	switch (kind) {
	case VBI_FRAME_PAD:
		rc = frame_parse_pad(len, topic_len, room, avail, &v);
		break;
	case VBI_FRAME_MSG:
	case VBI_FRAME_HMSG:
	case VBI_FRAME_CHUNK:
	case VBI_FRAME_RESEND:
		rc = frame_parse_msg(p, kind, len, topic_len, room, avail,
				     max_msg, &v);
		break;
	default:
		rc = VB_EPROTO;
		break;
	}
	if (rc != VB_OK)
		return rc;
	v.off = off;
	v.pos = off;
	*out = v;
	return VB_OK;
}
