/*
 * grant.h - direct mode's grants: what a broker signs and a subscriber checks
 * (docs/PROTOCOL.md, "Direct mode").
 *
 * A subscriber that accepts direct publishers gets a key from its broker
 * (DirectKey, VBI_DIRECT_KEY_LEN random bytes, one per connection).  The
 * broker answers a publisher's DirectQuery with grants, each an
 * HMAC-SHA256 under that key over the grant's fields in the fixed layout
 * below: a connect grant (no subject) lets the publisher's direct
 * connection past its Hello, a subject grant lets it write messages on
 * that subject to the sids it names.  Nobody but the broker and the
 * subscriber holds the key, so a publisher can neither forge a grant nor
 * stretch one to another subject, subscriber, publisher or time.
 *
 * Layout MAC'd (big-endian integers): "VBDG", a kind byte (1 connect, 2
 * subject), pub_id, sub_id, expires_ms (8 bytes each), the nonce
 * (VBI_GRANT_NONCE_LEN), then subject, queue (each a 2-byte length and its
 * bytes) and the sids (a 2-byte count, 4 bytes each).
 *
 * HMAC is OpenSSL's (libcrypto, linked for TLS and the inboxes anyway).
 * Threading: reentrant; nothing blocks.
 */
#ifndef VERBUS_PROTO_GRANT_H
#define VERBUS_PROTO_GRANT_H

#include "proto/codec.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A grant's fields, as signed; the strings and sids are borrowed. */
struct vbi_grant {
	uint64_t pub_id, sub_id;
	uint64_t expires_ms; /* ms since the Unix epoch */
	const char *subject; /* "" (or NULL): a connect grant */
	const char *queue; /* "" (or NULL): none */
	const uint32_t *sids;
	size_t nsids; /* at most VBI_GRANT_SIDS_MAX */
	uint8_t nonce[VBI_GRANT_NONCE_LEN];
};

/*
 * vbi_grant_mac() - @mac (VBI_GRANT_MAC_LEN bytes) for @g under @key
 * (VBI_DIRECT_KEY_LEN bytes).  Returns VB_OK, VB_EINVAL (a field out of
 * bounds) or VB_ESYS (libcrypto failed).
 */
int vbi_grant_mac(const uint8_t *key, const struct vbi_grant *g, uint8_t *mac);

/*
 * vbi_grant_verify() - whether @mac (@mac_len bytes) is @g's under @key,
 * compared in constant time.  Expiry is the caller's to check.
 */
bool vbi_grant_verify(const uint8_t *key, const struct vbi_grant *g,
		      const uint8_t *mac, size_t mac_len);

/*
 * vbi_grant_from_msg() - @g borrowing @m's fields (@subject instead of
 * @m's own, if not NULL: a DirectPath's grant carries none on the wire).
 * Returns VB_OK or VB_EPROTO (a nonce of the wrong size).
 */
int vbi_grant_from_msg(struct vbi_grant *g, const Verbus__DirectGrant *m,
		       const char *subject);

#endif /* VERBUS_PROTO_GRANT_H */
