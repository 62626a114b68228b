/*
 * rloss.c - deliveries lost on the way to a route (daemon/rloss.h).
 *
 * A uthash by (sid, subject) for adding, and the same entries on a FIFO
 * list for sending, oldest first.
 */
#include "daemon/rloss.h"

#include <stdlib.h>
#include <string.h>

struct rl_entry;
#define uthash_nonfatal_oom(elt) rl_oom(elt)
static void rl_oom(struct rl_entry *e);
#include "core/hash.h"

struct rl_entry {
	struct rl_entry *next; /* FIFO, oldest first */
	uint64_t count;
	uint32_t sid;
	bool oom; /* uthash: the insert failed */
	UT_hash_handle hh;
	size_t keylen; /* sizeof(sid) + the subject's length */
	char key[]; /* sid, then the subject, then a NUL */
};

struct vbd_rloss {
	struct rl_entry *by_key; /* uthash */
	struct rl_entry *head, *tail;
	uint32_t n;
	uint64_t other; /* losses no entry could take */
	uint64_t owed; /* in all, entries and other */
};

static void rl_oom(struct rl_entry *e)
{
	e->oom = true;
}

struct vbd_rloss *vbd_rloss_create(void)
{
	return calloc(1, sizeof(struct vbd_rloss));
}

void vbd_rloss_destroy(struct vbd_rloss *t)
{
	struct rl_entry *e, *next;

	if (!t)
		return;
	HASH_CLEAR(hh, t->by_key);
	for (e = t->head; e; e = next) {
		next = e->next;
		free(e);
	}
	free(t);
}

static const char *entry_subject(const struct rl_entry *e)
{
	return e->key + sizeof(e->sid);
}

void vbd_rloss_add(struct vbd_rloss *t, const char *subject, size_t len,
		   uint32_t sid, uint64_t n)
{
	struct rl_entry *e = NULL;
	size_t klen = sizeof(sid) + len;
	char stack[sizeof(sid) + 64];
	char *key = klen <= sizeof(stack) ? stack : malloc(klen);

	if (n == 0)
		goto out_free;
	t->owed += n;
	if (!key || len == 0)
		goto out_other;
	memcpy(key, &sid, sizeof(sid));
	memcpy(key + sizeof(sid), subject, len);
	HASH_FIND(hh, t->by_key, key, klen, e);
	if (e) {
		e->count += n;
		goto out_free;
	}
	if (t->n >= VBD_RLOSS_MAX)
		goto out_other;
	e = malloc(sizeof(*e) + klen + 1);
	if (!e)
		goto out_other;
	memset(e, 0, sizeof(*e));
	e->sid = sid;
	e->count = n;
	e->keylen = klen;
	memcpy(e->key, key, klen);
	e->key[klen] = '\0';
	HASH_ADD_KEYPTR(hh, t->by_key, e->key, klen, e);
	if (e->oom) {
		free(e);
		goto out_other;
	}
	if (t->tail)
		t->tail->next = e;
	else
		t->head = e;
	t->tail = e;
	t->n++;
	goto out_free;
out_other:
	t->other += n;
out_free:
	if (key != stack)
		free(key);
}

bool vbd_rloss_peek(const struct vbd_rloss *t, struct vbd_rloss_entry *out)
{
	if (t->head) {
		out->subject = entry_subject(t->head);
		out->sid = t->head->sid;
		out->count = t->head->count;
		return true;
	}
	if (t->other) {
		out->subject = "";
		out->sid = 0;
		out->count = t->other;
		return true;
	}
	return false;
}

void vbd_rloss_pop(struct vbd_rloss *t)
{
	struct rl_entry *e = t->head;

	if (!e) {
		t->owed -= t->other;
		t->other = 0;
		return;
	}
	t->owed -= e->count;
	HASH_DEL(t->by_key, e);
	t->head = e->next;
	if (!t->head)
		t->tail = NULL;
	t->n--;
	free(e);
}

uint64_t vbd_rloss_owed(const struct vbd_rloss *t)
{
	return t->owed;
}
