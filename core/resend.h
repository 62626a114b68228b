/*
 * resend.h - direct mode's resends: the prefix of a RESEND frame
 * (core/frame.h, docs/PROTOCOL.md "Direct mode", step 4).
 *
 * When a publisher's direct connection fails while switched on, the frames
 * it wrote there that the subscriber may not have taken (those the
 * subscriber has not yet freed in its ring, and those still queued) go
 * again through the broker, each as a RESEND frame on the broker
 * connection: the original topic, the sid it was written for, and a
 * payload that starts with this 32-byte prefix (all little-endian), then
 * the original payload (an HMSG's: header block first):
 *
 *   u64 pub_id   the publisher's id (DirectPaths.pub_id)
 *   u64 sub_id   the subscriber connection's id (the path's)
 *   u64 seq      the frame's number on the direct connection, from 1
 *   u8  kind     the original frame's kind: VBI_FRAME_MSG or _HMSG
 *   u8  conn[7]  the direct connection's tag: the first 7 bytes of the
 *                nonce of the connect grant it was opened with (all 0:
 *                not known)
 *
 * The broker delivers it, unchanged, to that subscriber connection only,
 * for that sid; the subscriber drops the ones whose seq it has taken from
 * that direct connection already (the tag says which of the publisher's
 * connections, open or closed, the seq counts on).
 *
 * Ownership: caller-owned memory only.  Threading: reentrant; none blocks
 * or allocates.
 */
#ifndef VERBUS_CORE_RESEND_H
#define VERBUS_CORE_RESEND_H

#include <stddef.h>
#include <stdint.h>

#define VBI_RESEND_PREFIX_LEN 32u
#define VBI_RESEND_CONN_LEN 7u

/* A resend's prefix, decoded. */
struct vbi_resend {
	uint64_t pub_id;
	uint64_t sub_id;
	uint64_t seq;
	uint8_t kind; /* VBI_FRAME_MSG or VBI_FRAME_HMSG */
	uint8_t conn[VBI_RESEND_CONN_LEN]; /* the connection's tag */
	const void *payload; /* the original payload: after the prefix */
	uint32_t payload_len;
};

/*
 * vbi_resend_parse() - decode and check the prefix at the start of a
 * RESEND's @payload (@payload_len bytes): room for it, ids and seq not 0,
 * the kind MSG or HMSG (any tag).  Returns VB_OK and fills
 * *@out, or VB_EPROTO (nothing written).
 */
int vbi_resend_parse(const void *payload, uint32_t payload_len,
		     struct vbi_resend *out);

/*
 * vbi_resend_put() - write the prefix of @r (pub_id, sub_id, seq, kind,
 * conn; not payload) at @dst, VBI_RESEND_PREFIX_LEN bytes.
 */
void vbi_resend_put(void *dst, const struct vbi_resend *r);

#endif /* VERBUS_CORE_RESEND_H */
