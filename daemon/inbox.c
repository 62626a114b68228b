/*
 * inbox.c - private inboxes and the replies a responder may send
 * (daemon/inbox.h).
 */
#include "daemon/inbox.h"

#include "core/subject.h"

#include "proto/codec.h"

#include <verbus/verbus.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* uthash: out of memory is an error we report, never exit(). */
#define uthash_nonfatal_oom(elt) ((elt)->oom = true)
#include "core/hash.h"

#define INBOX_PREFIX VBI_INBOX_PREFIX
#define INBOX_PREFIX_LEN VBI_INBOX_PREFIX_LEN
#define SECRET_LEN 16

void vbd_inbox_id(const void *cred, size_t len, char id[VBD_INBOX_ID_LEN + 1])
{
	unsigned char md[crypto_hash_sha256_BYTES];
	Verbus__Credentials *c;
	int i;

	id[0] = '\0';
	if (!cred || !len)
		return;
	c = verbus__credentials__unpack(NULL, len, cred);
	if (!c)
		return;
	if (c->inbox_secret.len == SECRET_LEN && sodium_init() >= 0 &&
	    crypto_hash_sha256(md, c->inbox_secret.data, SECRET_LEN) == 0) {
		for (i = 0; i < VBD_INBOX_ID_LEN / 2; i++)
			snprintf(id + 2 * i, 3, "%02x", md[i]);
	}
	verbus__credentials__free_unpacked(c, NULL);
}

const char *vbd_inbox_owner(const char *subject, size_t len, size_t *idlen)
{
	const char *t, *end;
	size_t n = 0;

	if (len <= INBOX_PREFIX_LEN ||
	    memcmp(subject, INBOX_PREFIX, INBOX_PREFIX_LEN) != 0)
		return NULL;
	t = subject + INBOX_PREFIX_LEN;
	end = subject + len;
	while (t + n < end && t[n] != '.' && t[n] != '-')
		n++;
	*idlen = n;
	return t;
}

enum vbd_inbox_pat vbd_inbox_pattern(const char *pattern, size_t len,
				     const char *id)
{
	const char *t = pattern + INBOX_PREFIX_LEN, *end = pattern + len;
	size_t n = 0, olen = 0;

	if (len <= INBOX_PREFIX_LEN ||
	    memcmp(pattern, INBOX_PREFIX, INBOX_PREFIX_LEN) != 0)
		return VBD_INBOX_NONE;
	while (t + n < end && t[n] != '.')
		n++;
	/* A wildcard second token reaches every inbox. */
	if ((n == 1 && (t[0] == '*' || t[0] == '>')))
		return VBD_INBOX_OTHER;
	while (olen < n && t[olen] != '-')
		olen++;
	return vbd_inbox_is(id, t, olen) ? VBD_INBOX_OWN : VBD_INBOX_OTHER;
}

/* ---- grants ------------------------------------------------------------- */

struct grant {
	char *subject; /* owned, NUL-terminated */
	uint32_t left; /* publishes still allowed */
	uint64_t expires_ms; /* 0: never */
	void *to; /* the caller's: where the reply goes */
	bool oom;
	UT_hash_handle hh; /* by subject; the hash keeps insertion order */
};

struct vbd_grants {
	struct grant *by_subject;
};

static void grant_free(struct vbd_grants *g, struct grant *e)
{
	HASH_DEL(g->by_subject, e);
	free(e->subject);
	free(e);
}

int vbd_grants_add(struct vbd_grants **gp, const char *subject, size_t len,
		   uint32_t max, uint64_t expires_ms, void *to)
{
	struct vbd_grants *g = *gp;
	struct grant *e;

	if (!g) {
		g = calloc(1, sizeof(*g));
		if (!g)
			return VB_ENOMEM;
		*gp = g;
	}
	HASH_FIND(hh, g->by_subject, subject, len, e);
	if (e)
		grant_free(g, e); /* added again: the newest */
	/* The oldest goes first (the hash's order is insertion order). */
	while (HASH_COUNT(g->by_subject) >= VBD_GRANTS_MAX)
		grant_free(g, g->by_subject);
	e = calloc(1, sizeof(*e));
	if (!e)
		return VB_ENOMEM;
	e->subject = malloc(len + 1);
	if (!e->subject) {
		free(e);
		return VB_ENOMEM;
	}
	memcpy(e->subject, subject, len);
	e->subject[len] = '\0';
	e->left = max;
	e->expires_ms = expires_ms;
	e->to = to;
	HASH_ADD_KEYPTR(hh, g->by_subject, e->subject, len, e);
	if (e->oom) {
		free(e->subject);
		free(e);
		return VB_ENOMEM;
	}
	return VB_OK;
}

bool vbd_grants_use(struct vbd_grants *g, const char *subject, size_t len,
		    uint64_t now_ms, void **to)
{
	struct grant *e;

	if (!g)
		return false;
	HASH_FIND(hh, g->by_subject, subject, len, e);
	if (!e)
		return false;
	if (e->expires_ms && now_ms >= e->expires_ms) {
		grant_free(g, e);
		return false;
	}
	*to = e->to;
	if (--e->left == 0)
		grant_free(g, e);
	return true;
}

size_t vbd_grants_count(const struct vbd_grants *g)
{
	return g ? HASH_COUNT(g->by_subject) : 0;
}

void vbd_grants_destroy(struct vbd_grants *g)
{
	struct grant *e, *tmp;

	if (!g)
		return;
	HASH_ITER(hh, g->by_subject, e, tmp)
	{
		grant_free(g, e);
	}
	free(g);
}
