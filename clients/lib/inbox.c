/*
 * inbox.c - the connection's private inbox (docs/PROTOCOL.md, "Private
 * inboxes").
 *
 * A vb_conn draws 16 random bytes once, its inbox secret, and sends them in
 * the credentials of every Hello, to whichever broker of its pool it
 * connects.  Its inbox id is the first 8 bytes of the secret's SHA-256 in
 * hex: the broker computes the same, and delivers a message published on
 * "_INBOX.<id>" or under it (or on "_INBOX.<id>-<n>", vb_new_inbox()) to
 * this connection only, and lets no other subscribe there.  The id is
 * public (it is in every reply subject); the secret never leaves the
 * connection to the broker, and finding a secret with a given id is a
 * 2^64 search.  The id stays across reconnections, so a request in flight
 * and the application's inboxes survive a failover.
 *
 * SHA-256 is OpenSSL's (libcrypto, which the TLS transport links anyway);
 * the broker's is libsodium's: the same function.
 */
#include "clients/lib/client.h"

#include <openssl/evp.h>

#include <stdio.h>
#include <sys/random.h>

int vbi_inbox_id(const uint8_t *secret, size_t len, char id[17])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int i;

	if (!EVP_Digest(secret, len, md, &mdlen, EVP_sha256(), NULL) ||
	    mdlen < 8)
		return VB_ESYS;
	for (i = 0; i < 8; i++)
		snprintf(id + 2 * i, 3, "%02x", md[i]);
	return VB_OK;
}

int vbi_inbox_init(struct vb_conn *c)
{
	char id[17];
	int rc;

	if (getrandom(c->inbox_secret, sizeof(c->inbox_secret), 0) !=
	    (ssize_t)sizeof(c->inbox_secret))
		return VB_ESYS;
	rc = vbi_inbox_id(c->inbox_secret, sizeof(c->inbox_secret), id);
	if (rc)
		return rc;
	snprintf(c->inbox, sizeof(c->inbox), VB_INBOX_PREFIX "%s", id);
	return VB_OK;
}
