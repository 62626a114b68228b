/*
 * inbox.h - private inboxes and the replies a responder may send
 * (docs/PROTOCOL.md, "Private inboxes"; docs/SECURITY.md).
 *
 * Inboxes.  A client proves an inbox id at its Hello: the credentials
 * carry a 16-byte inbox secret, and the id is the first 8 bytes of its
 * SHA-256 in hex (libsodium's; libverbus computes the same with
 * OpenSSL's).  A subject "_INBOX.<t>[.more]" belongs to the id that starts
 * its second token <t>, up to a '-' if it has one ("_INBOX.<id>-<n>" is
 * vb_new_inbox()'s).  The broker delivers a message on such a subject to
 * the connections that proved its id only, whatever else subscribed (a
 * "_INBOX.>" or ">" subscriber sees nothing of others' replies), and a
 * subscription whose pattern is under "_INBOX." must name the
 * connection's own id in its second token, without wildcards there (a
 * refused one gets a Notice).  Its own inbox a connection may always
 * subscribe to, whatever its subscribe permissions: nobody else reads it.
 *
 * Responses.  A user with allow_responses (auth.h) may publish to the
 * reply subject of a message delivered to it, even where its publish
 * permissions do not reach: at most max times, within expires_ms of the
 * delivery, as NATS's allow_responses.  Each connection keeps its grants
 * (the newest VBD_GRANTS_MAX).
 *
 * Threading: the broker's thread.  Ownership: a grants table is its
 * connection's (vbd_grants_destroy() at close).
 */
#ifndef VERBUS_DAEMON_INBOX_H
#define VERBUS_DAEMON_INBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VBD_INBOX_ID_LEN 16 /* hex digits */
#define VBD_GRANTS_MAX 1024 /* reply grants kept per connection */

/*
 * vbd_inbox_id() - the inbox id the packed Verbus__Credentials @cred (@len
 * bytes) prove, into @id (VBD_INBOX_ID_LEN + 1 bytes): "" if they carry
 * no inbox secret of 16 bytes, or do not decode.
 */
void vbd_inbox_id(const void *cred, size_t len, char id[VBD_INBOX_ID_LEN + 1]);

/*
 * vbd_inbox_owner() - whether @subject (@len bytes, a valid subject) is
 * under "_INBOX.": NULL if not, else its owner id (the second token up to
 * a '-'), *@idlen bytes at the pointer returned.
 */
const char *vbd_inbox_owner(const char *subject, size_t len, size_t *idlen);

/* vbd_inbox_is() - whether connection id @id (NUL-terminated) owns
 * @owner (@olen bytes, from vbd_inbox_owner()). */
static inline bool vbd_inbox_is(const char *id, const char *owner, size_t olen)
{
	size_t i;

	for (i = 0; i < olen; i++)
		if (id[i] != owner[i])
			return false;
	return id[olen] == '\0' && olen > 0;
}

enum vbd_inbox_pat {
	VBD_INBOX_NONE, /* not under "_INBOX.": no inbox rule applies */
	VBD_INBOX_OWN, /* under the connection's own inbox */
	VBD_INBOX_OTHER, /* under "_INBOX." and not only its own: refused */
};

/* vbd_inbox_pattern() - what subscription pattern @pattern (@len bytes,
 * valid) is to the connection whose inbox id is @id ("" if none). */
enum vbd_inbox_pat vbd_inbox_pattern(const char *pattern, size_t len,
				     const char *id);

struct vbd_grants;

/*
 * vbd_grants_add() - the connection may publish to @subject (@len bytes)
 * @max times until @expires_ms (coarse clock; 0: no expiry): added to
 * *@g (created at the first), replacing the same subject's grant, the
 * oldest dropped beyond VBD_GRANTS_MAX.  @to is the caller's, given back
 * by vbd_grants_use() (the broker: the account the reply goes into, for
 * a service another account imports; NULL: the responder's own).
 * Returns VB_OK or VB_ENOMEM.
 */
int vbd_grants_add(struct vbd_grants **g, const char *subject, size_t len,
		   uint32_t max, uint64_t expires_ms, void *to);

/* vbd_grants_use() - whether @g (NULL: none) lets the connection publish
 * to @subject now (@now_ms): true uses one of the grant's replies and
 * sets *@to to the grant's @to. */
bool vbd_grants_use(struct vbd_grants *g, const char *subject, size_t len,
		    uint64_t now_ms, void **to);

/* vbd_grants_count() - grants held (for tests and /connz). */
size_t vbd_grants_count(const struct vbd_grants *g);

/* vbd_grants_destroy() - free @g; accepts NULL. */
void vbd_grants_destroy(struct vbd_grants *g);

#endif /* VERBUS_DAEMON_INBOX_H */
