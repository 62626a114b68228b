/*
 * frame.h - the format of the frames a peer writes into our receive ring.
 *
 * A frame is a 32-byte header, the topic bytes (not NUL-terminated), the
 * payload bytes, then zero padding to the next multiple of 8.  Every field is
 * little-endian on the wire; the accessors below convert explicitly, so they
 * neither depend on the host's byte order nor alias the ring through a struct.
 * Frames start 8-aligned in the ring and never straddle its end: the sender
 * closes the ring with a PAD frame instead, whose first 8 bytes are all that
 * is ever written or read of it (the end of the ring may be only 8 bytes
 * away).
 *
 * Ownership: every function works on caller-owned memory and keeps no
 * pointer to it, except that a view returned by vbi_frame_parse() points
 * into the ring it was parsed from.
 * Threading: every function is reentrant; none blocks or allocates.
 */
#ifndef VERBUS_CORE_FRAME_H
#define VERBUS_CORE_FRAME_H

#include <stddef.h>
#include <stdint.h>

/*
 * Frame kinds.  Any other value is malformed (room for later kinds).  An
 * HMSG is a MSG whose payload starts with a header block: a u32 (little
 * endian) H, then H bytes of NATS/1.0 headers (core/header.h), then the
 * message's data.  Messages without headers stay MSG frames, so headers
 * cost them nothing; anything that forwards a frame keeps its kind.
 */
#define VBI_FRAME_MSG 1u
#define VBI_FRAME_PAD 2u
#define VBI_FRAME_HMSG 3u
/*
 * A CHUNK is one piece of a message larger than a frame (a large message,
 * core/chunk.h): its payload starts with a 24-byte chunk prefix, then that
 * piece of the message's bytes.  Frames, rings and forwards treat it as a
 * MSG; what the prefix says is for its readers to check.
 */
#define VBI_FRAME_CHUNK 5u
/*
 * A RESEND is a direct-mode frame that goes through the broker after its
 * direct connection failed (core/resend.h): its payload starts with a
 * 32-byte prefix (publisher, subscriber, its number on the direct
 * connection, its own kind), then the original payload.  Frames, rings
 * and forwards treat it as a MSG; the broker delivers it to one
 * subscriber connection only.
 */
#define VBI_FRAME_RESEND 7u

/* Bytes of the header-block length at the start of an HMSG's payload. */
#define VBI_FRAME_HLEN_LEN 4u

/*
 * Receiver-local bookkeeping in the flags byte: the receiver sets it in its
 * own ring when the frame is released.  A sender always writes 0, so a
 * nonzero flags byte on arrival is malformed.
 */
#define VBI_FRAME_F_RELEASED 0x01u

/* Frame alignment and granularity of every ring offset and length. */
#define VBI_FRAME_ALIGN 8u

/* Bytes of a MSG header, and so the smallest MSG frame. */
#define VBI_FRAME_HDR_LEN 32u

/* Bytes of a PAD frame that carry meaning, and so the smallest PAD. */
#define VBI_FRAME_PAD_LEN 8u

/*
 * The wire layout of a frame header.  It documents the layout and pins the
 * offsets with static assertions; the code reads and writes the fields at
 * these offsets byte by byte, in little-endian order.  A PAD frame uses only
 * the first 8 bytes (len, kind, flags, topic_len).
 */
struct vbi_frame_hdr {
	uint32_t len; /* header + topic + payload, unpadded */
	uint8_t kind; /* VBI_FRAME_MSG, _HMSG or _PAD */
	uint8_t flags; /* 0 on the wire; VBI_FRAME_F_RELEASED locally */
	uint16_t topic_len; /* topic bytes after the header; 0 in a PAD */
	uint32_t payload_len; /* payload bytes after the topic */
	uint32_t ack_recvs; /* sender's reposted RECVs, cumulative mod 2^32 */
	uint64_t seq; /* sender's MSG sequence number, from 1 */
	uint32_t ack_freed; /* sender's ring freed bytes / 8, mod 2^32 */
	uint32_t sid; /* subscription the message is delivered for; 0: none */
};

_Static_assert(sizeof(struct vbi_frame_hdr) == VBI_FRAME_HDR_LEN,
	       "frame header must be exactly 32 bytes");
_Static_assert(offsetof(struct vbi_frame_hdr, kind) == 4, "kind at 4");
_Static_assert(offsetof(struct vbi_frame_hdr, flags) == 5, "flags at 5");
_Static_assert(offsetof(struct vbi_frame_hdr, topic_len) == 6, "topic at 6");
_Static_assert(offsetof(struct vbi_frame_hdr, payload_len) == 8, "pay at 8");
_Static_assert(offsetof(struct vbi_frame_hdr, ack_recvs) == 12, "ack at 12");
_Static_assert(offsetof(struct vbi_frame_hdr, seq) == 16, "seq at 16");
_Static_assert(offsetof(struct vbi_frame_hdr, ack_freed) == 24, "ack at 24");
_Static_assert(offsetof(struct vbi_frame_hdr, sid) == 28, "sid at 28");
_Static_assert(VBI_FRAME_HDR_LEN % VBI_FRAME_ALIGN == 0, "header 8-aligned");

/* What a sender puts in a MSG frame (input of the encoders). */
struct vbi_frame_msg {
	const void *topic; /* topic bytes; NULL only if topic_len is 0 */
	uint16_t topic_len; /* bytes at @topic */
	const void *payload; /* payload bytes; NULL only if payload_len is 0 */
	uint32_t payload_len; /* bytes at @payload */
	uint64_t seq; /* this frame's sequence number */
	uint32_t ack_recvs; /* piggybacked RECV credit (see credit.h) */
	uint32_t ack_freed; /* piggybacked ring credit, in 8-byte units */
	uint32_t sid; /* subscription id (broker to subscriber); else 0 */
	uint8_t kind; /* VBI_FRAME_MSG (or 0), _HMSG, _CHUNK or _RESEND */
};

/*
 * A validated frame in a ring.  Pointers and offsets refer to the ring given
 * to vbi_frame_parse(); the view is valid until the frame is released.
 */
struct vbi_frame_view {
	uint8_t kind; /* VBI_FRAME_MSG, _HMSG, _CHUNK, _RESEND or _PAD */
	size_t off; /* ring offset of the header */
	size_t span; /* bytes the frame occupies in the ring */
	uint64_t pos; /* stream position: @off, or see ring.h */
	uint64_t seq; /* MSG sequence number; 0 for a PAD */
	const char *topic; /* topic bytes in the ring (not terminated) */
	uint16_t topic_len; /* bytes at @topic */
	const void *payload; /* payload bytes in the ring */
	uint32_t payload_len; /* bytes at @payload */
	uint32_t ack_recvs; /* piggybacked RECV credit; 0 for a PAD */
	uint32_t ack_freed; /* piggybacked ring credit; 0 for a PAD */
	uint32_t sid; /* the header's subscription id; 0 for a PAD */
};

/*
 * vbi_frame_span() - bytes a frame of @len bytes occupies: @len rounded up to
 * VBI_FRAME_ALIGN.  @len must be below SIZE_MAX - 7 (any u32 is).  Inline:
 * it is on every message's path.
 */
static inline size_t vbi_frame_span(size_t len)
{
	return (len + VBI_FRAME_ALIGN - 1) & ~(size_t)(VBI_FRAME_ALIGN - 1);
}

/*
 * vbi_frame_is_msg() - whether @kind, of a parsed frame (or one of our
 * own), is a message (MSG, HMSG, CHUNK or RESEND): the message kinds are the odd
 * ones, one test on every message's path.  Not a validation: the parser
 * refuses the other odd values.
 */
static inline int vbi_frame_is_msg(uint8_t kind)
{
	return (kind & 1u) != 0;
}

/*
 * vbi_frame_hmsg_split() - the header block of an HMSG's payload (@payload,
 * @payload_len bytes, e.g. a view's): sets *@hdr_len to the block's length,
 * which starts VBI_FRAME_HLEN_LEN bytes into the payload; the data follows
 * it.  Reads the length once.  Returns VB_OK, or VB_EPROTO if the payload
 * is too short for the length or the block it announces (or the block is
 * shorter than the smallest valid one).  It does not validate the block
 * itself (vbi_hdr_validate()).
 */
int vbi_frame_hmsg_split(const void *payload, uint32_t payload_len,
			 uint32_t *hdr_len);

/*
 * vbi_frame_msg_len() - the unpadded len of a MSG frame with @topic_len and
 * @payload_len bytes (no overflow for any pair of such values).
 */
static inline uint64_t vbi_frame_msg_len(uint16_t topic_len,
					 uint32_t payload_len)
{
	return (uint64_t)VBI_FRAME_HDR_LEN + topic_len + payload_len;
}

/*
 * vbi_frame_put_hdr() - write the header of MSG @m at @dst and zero its
 * padding, leaving the topic and payload bytes for the caller to write in
 * place (zero-copy); @m->topic and @m->payload are not read.  @dst must be
 * 8-aligned with @cap bytes.  Returns VB_OK, VB_EINVAL (@dst misaligned or
 * NULL) or VB_EMSGSIZE (the frame's span exceeds @cap or its len a u32);
 * nothing is written on error.
 */
int vbi_frame_put_hdr(void *dst, size_t cap, const struct vbi_frame_msg *m);

/*
 * vbi_frame_encode() - write the whole MSG frame @m (header, topic, payload,
 * padding) at @dst, as vbi_frame_put_hdr(), and set *@span to the bytes it
 * occupies.  Same errors; nothing is written on error.
 */
int vbi_frame_encode(void *dst, size_t cap, const struct vbi_frame_msg *m,
		     size_t *span);

/*
 * vbi_frame_put_pad() - write a PAD header for @len bytes at @dst (8-aligned;
 * only its first 8 bytes are written).  Returns VB_OK or VB_EINVAL (@len not
 * a multiple of 8, below 8 or above UINT32_MAX; @dst NULL or misaligned).
 */
int vbi_frame_put_pad(void *dst, size_t len);

/*
 * vbi_frame_set_acks() - overwrite the piggybacked credits of the MSG frame
 * whose header is at @frame, e.g. in a staged batch just before it is posted
 * so that it carries the freshest values.
 */
void vbi_frame_set_acks(void *frame, uint32_t ack_recvs, uint32_t ack_freed);

/*
 * Field accessors for a header at @frame (8 bytes readable for the first
 * four, 32 for the seq).  They do not validate: use them on frames already
 * parsed, or on one's own staging.
 */
uint32_t vbi_frame_get_len(const void *frame);
uint8_t vbi_frame_get_kind(const void *frame);
uint8_t vbi_frame_get_flags(const void *frame);
uint16_t vbi_frame_get_topic_len(const void *frame);
uint64_t vbi_frame_get_seq(const void *frame);

/* vbi_frame_set_flags() - set the flags byte (receiver-local bookkeeping). */
void vbi_frame_set_flags(void *frame, uint8_t flags);

/* vbi_frame_set_sid() - set the sid of a frame of our own (a reserved one,
 * before its commit: a broker's frame for a subscription). */
void vbi_frame_set_sid(void *frame, uint32_t sid);

/*
 * vbi_frame_parse() - validate the frame a peer wrote at offset @off of the
 * ring [@ring, @ring + @ring_size), given that @avail bytes from @off are
 * known to have landed (@avail must not reach past the end of the ring).
 * Reads nothing outside [@ring + @off, @ring + @off + @avail), and each
 * header field only once, so a peer rewriting the ring meanwhile cannot make
 * the checks and the view disagree.
 *
 * Returns VB_OK and fills *@out, or:
 * - VB_EPROTO: the peer wrote a malformed frame: @off not 8-aligned; fewer
 *   than 8 bytes available (or 32 for a MSG); nonzero flags; unknown kind;
 *   a PAD with a topic or whose len is not exactly @ring_size - @off; a MSG
 *   whose len is below 32, differs from 32 + topic_len + payload_len, or
 *   exceeds @avail, whose span crosses the end of the ring, whose payload
 *   exceeds @max_msg.  A frame longer than
 *   @avail is malformed, not "wait for more": the immediates that make bytes
 *   available only ever cover whole frames, so a short frame means the
 *   sender lied.
 * - VB_EINVAL: a caller error (@ring or @out NULL, @off >= @ring_size, or
 *   @avail beyond the end of the ring).
 * *@out is written only on success; @out->pos is set to @off.  An HMSG (and
 * a CHUNK) is checked as a MSG and its kind reported: what its payload
 * holds is for its reader to check (vbi_frame_hmsg_split(),
 * vbi_hdr_validate(), vbi_chunk_parse()), since a broker forwards it from the publisher's ring, which can change under
 * the forward: a bad block is the message's fault, not the connection's.
 */
int vbi_frame_parse(const void *ring, size_t ring_size, size_t off,
		    size_t avail, size_t max_msg, struct vbi_frame_view *out);

#endif /* VERBUS_CORE_FRAME_H */
