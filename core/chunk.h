/*
 * chunk.h - large messages: the prefix of a CHUNK frame (core/frame.h).
 *
 * A message larger than the frames a connection takes goes as a stream of
 * CHUNK frames, each with the message's topic and a payload that starts
 * with this 24-byte prefix (all little-endian), then the next piece of the
 * message's bytes:
 *
 *   u64 tag     the stream's id, chosen by its publisher, the same in every
 *               chunk; unique among the streams a broker forwards
 *   u32 total   the message's bytes (its payload: an HMSG payload, block
 *               length and block first, when VBI_CHUNK_HDRS)
 *   u32 off     where this piece starts in them
 *   u32 flags   VBI_CHUNK_*
 *   u32 zero    reserved, 0
 *
 * The pieces come in order, without gaps: the first at offset 0 with
 * VBI_CHUNK_FIRST, the last ending at @total with VBI_CHUNK_LAST.  An
 * ABORT ends a stream before its end: no data, the offset where it
 * stopped.
 *
 * Ownership: caller-owned memory only.  Threading: reentrant; none blocks
 * or allocates.
 */
#ifndef VERBUS_CORE_CHUNK_H
#define VERBUS_CORE_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#define VBI_CHUNK_PREFIX_LEN 24u

#define VBI_CHUNK_FIRST 0x1u /* the stream's first piece (offset 0) */
#define VBI_CHUNK_LAST 0x2u /* its last: it ends at total */
#define VBI_CHUNK_ABORT 0x4u /* the stream ends unfinished; no data */
#define VBI_CHUNK_HDRS 0x8u /* the message has headers (HMSG payload) */
#define VBI_CHUNK_FLAGS 0xfu /* every flag defined */

/*
 * The largest topic + payload of a CHUNK frame a publisher makes (less if
 * its broker takes less): every connection with the default max_msg
 * (64 KiB) takes them, so that a large message reaches every subscriber
 * whatever the broker's own max_msg.
 */
#define VBI_CHUNK_FRAME_MAX (64u << 10)

/* The largest message a stream can carry (the protocol's bound; brokers
 * and clients set lower limits). */
#define VBI_CHUNK_TOTAL_MAX (1u << 30)

/* A chunk's prefix, decoded. */
struct vbi_chunk {
	uint64_t tag;
	uint32_t total;
	uint32_t off;
	uint32_t flags;
	const void *data; /* the piece: after the prefix */
	uint32_t len; /* its bytes */
};

/*
 * vbi_chunk_parse() - decode and check the prefix at the start of a CHUNK's
 * @payload (@payload_len bytes).  Checks what one chunk can say of itself:
 * room for the prefix, the reserved word 0, no unknown flag, 0 < total <=
 * VBI_CHUNK_TOTAL_MAX, off + len <= total, FIRST only at offset 0, LAST
 * exactly when the piece ends at total, ABORT alone (no FIRST or LAST) and
 * with no data, and a piece of data in every other chunk.  Returns VB_OK
 * and fills *@out, or VB_EPROTO (nothing written).  Whether the chunk
 * follows the one before is the stream's reader's to check.
 */
int vbi_chunk_parse(const void *payload, uint32_t payload_len,
		    struct vbi_chunk *out);

/*
 * vbi_chunk_put() - write the prefix of @ck (tag, total, off, flags; not
 * data or len) at @dst, VBI_CHUNK_PREFIX_LEN bytes.
 */
void vbi_chunk_put(void *dst, const struct vbi_chunk *ck);

#endif /* VERBUS_CORE_CHUNK_H */
