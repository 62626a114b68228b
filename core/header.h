/*
 * header.h - message headers: the NATS/1.0 header block a message may carry
 * before its data (an HMSG frame, frame.h).
 *
 * The block is text, as NATS 2.2 defines it:
 *
 *   NATS/1.0[ SP 3DIGIT[ SP description]] CRLF
 *   *( name ":" [ SP ] value CRLF )
 *   CRLF
 *
 * A name is 1 to VBI_HDR_NAME_MAX bytes of visible ASCII (0x21-0x7e) other
 * than ':'; names are compared exactly (case-sensitive, as nats.c 3.x).  A
 * value is any bytes but CR, LF and NUL (UTF-8 passes through); the spaces
 * and tabs around it are not part of it.  One name may appear several
 * times: each is a value of it, in order.
 *
 * Everything here treats the block as hostile input: it reads no byte
 * outside [@blk, @blk + @len) and a malformed block is an error, never a
 * crash; a block that changes while it is read (a peer's memory) yields
 * garbage or an error, never an out-of-bounds access.
 *
 * Ownership: every function works on the caller's memory and keeps no
 * pointer to it; views point into the caller's block.
 * Threading: reentrant; nothing blocks or allocates.
 */
#ifndef VERBUS_CORE_HEADER_H
#define VERBUS_CORE_HEADER_H

#include <verbus/verbus.h> /* struct vb_header: one header to encode */

#include <stddef.h>
#include <stdint.h>

#define VBI_HDR_VERSION "NATS/1.0"
#define VBI_HDR_NAME_MAX 255u /* bytes in a header's name, at most */
/* The smallest block: "NATS/1.0\r\n\r\n". */
#define VBI_HDR_MIN_LEN 12u

/* One header of a block, as found in it (not NUL-terminated). */
struct vbi_hdr_field {
	const char *name;
	size_t name_len;
	const char *value; /* without the spaces around it */
	size_t value_len;
};

/*
 * vbi_hdr_validate() - whether the @len bytes at @blk are exactly one
 * well-formed block: its version line, its headers and the empty line that
 * ends it, and nothing after.  Returns VB_OK or VB_EPROTO.
 */
int vbi_hdr_validate(const char *blk, size_t len);

/*
 * vbi_hdr_status() - the status code of the block's version line (e.g.
 * 503), or 0 if it has none or the line is malformed.
 */
unsigned vbi_hdr_status(const char *blk, size_t len);

/*
 * vbi_hdr_next() - the header after position *@pos (0: the first) of the
 * block at @blk: fills *@out and advances *@pos.  Returns VB_OK, VB_EAGAIN
 * at the end of the block (the empty line), or VB_EPROTO (malformed up to
 * there).  Iterating to VB_EAGAIN validates what was read, but not that
 * nothing follows the empty line: vbi_hdr_validate() checks that.
 */
int vbi_hdr_next(const char *blk, size_t len, size_t *pos,
		 struct vbi_hdr_field *out);

/*
 * vbi_hdr_get() - the @idx-th value (0: the first) of the header named
 * @name (@name_len bytes) in the block.  Returns VB_OK and fills
 * @value/@value_len, VB_EAGAIN if there is no such value, or VB_EPROTO (the
 * block is malformed before it was found).
 */
int vbi_hdr_get(const char *blk, size_t len, const char *name, size_t name_len,
		size_t idx, const char **value, size_t *value_len);

/*
 * vbi_hdr_check_in() - whether @h is a header vbi_hdr_encode() may write:
 * a valid name and a value without CR or LF.  Returns VB_OK or VB_EINVAL.
 */
int vbi_hdr_check_in(const struct vb_header *h);

/*
 * vbi_hdr_encoded_len() - the bytes of the block vbi_hdr_encode() writes
 * for the @n headers at @h (each checked by vbi_hdr_check_in()), into
 * *@out.  Returns VB_OK, VB_EINVAL (a bad header; @h NULL with @n > 0) or
 * VB_EMSGSIZE (the block would exceed UINT32_MAX bytes).
 */
int vbi_hdr_encoded_len(const struct vb_header *h, size_t n, size_t *out);

/*
 * vbi_hdr_encode() - write the block of the @n headers at @h to @dst,
 * exactly vbi_hdr_encoded_len() bytes, which the caller has checked and
 * room for.  "name: value" per header, in order; no status.
 */
void vbi_hdr_encode(const struct vb_header *h, size_t n, char *dst);

#endif /* VERBUS_CORE_HEADER_H */
