/*
 * subject.c - subject validation, and the token trie that finds the
 * subscriptions a published subject matches.
 *
 * Decisions a reader must know:
 *
 * - One trie node per distinct pattern prefix.  A node keeps its literal
 *   children in a hash table keyed by token, and its "*" and ">" children
 *   in two dedicated pointers, so that matching a subject of T tokens costs
 *   one hash lookup per token on each branch that still matches (a literal
 *   and a "*" branch per level at most), plus the results: never a walk
 *   over unrelated subscriptions.  Each node a match reaches corresponds to
 *   a different pattern, so no sub can be reached twice.
 *
 * - Nodes are freed as soon as nothing uses them (no sub ends there and no
 *   child hangs below), walking up from the node a removal emptied, so that
 *   memory follows the live subscriptions however much they churn.
 *
 * - Queue groups are sublist-wide, keyed by name: members of "w" under
 *   "orders.*" and under "orders.>" share one rotation.  A match collects
 *   every matching queue sub as a candidate, then picks, for each group,
 *   candidate number (turn % candidates) in trie order and advances the
 *   group's turn by one.  While the same members match, each gets exactly
 *   every k-th message.  The per-match counting lives in the group itself
 *   and the candidates in the caller's vbi_match, so steady-state matching
 *   allocates nothing.
 *
 * - The hash tables are uthash, built with HASH_NONFATAL_OOM: a failed
 *   allocation inside uthash marks the element (->oom) and leaves the table
 *   as it was, instead of calling exit().  Every insert either completes or
 *   undoes what it added; removal only frees.
 *
 * - A match cache, as NATS's sublist has: the trie walk's result for a
 *   published subject (its plain subs, then its queue candidates, before
 *   the pick) is kept under the subject, so that a subject published again
 *   costs one hash lookup instead of one per token and branch.  Every
 *   insert or remove bumps the sublist's generation, which makes every
 *   entry stale (an entry may name a removed sub; a stale one is never
 *   read, only dropped when found).  At most CACHE_MAX subjects are kept,
 *   and the cache is emptied whole when full: each entry is freed once
 *   for each time it was added.  Results of more than CACHE_SUBS_MAX subs
 *   are not kept (the deliveries then cost more than the walk).  A failed
 *   allocation only leaves a subject uncached.
 *
 * - Wildcard characters are rejected anywhere in a literal token, in
 *   subjects as in patterns (NATS accepts "a*b" as a literal subject).  A
 *   subject must be one a literal subscription can name.
 */
#include "subject.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define uthash_nonfatal_oom(elt) ((elt)->oom = true)
#include "core/hash.h"

#include <verbus/verbus.h>

/* Which of its parent's slots holds a node. */
enum subnode_kind {
	SUBNODE_ROOT, /* no parent */
	SUBNODE_LIT, /* in the parent's literal table */
	SUBNODE_STAR, /* the parent's "*" child */
	SUBNODE_FULL, /* the parent's ">" child */
};

/* One pattern prefix: a token below its parent's prefix. */
struct vbi_subnode {
	UT_hash_handle hh; /* in the parent's @lits, keyed by @tok */
	struct vbi_subnode *parent; /* NULL for the root */
	struct vbi_subnode *lits; /* literal children: a uthash head */
	struct vbi_subnode *star; /* the "*" child, or NULL */
	struct vbi_subnode *full; /* the ">" child, or NULL */
	struct vbi_sub *plain; /* plain subs whose pattern ends here */
	struct vbi_sub *queued; /* queue subs whose pattern ends here */
	enum subnode_kind kind; /* which slot of @parent holds this node */
	bool oom; /* set by uthash: adding this node failed */
	size_t tok_len; /* bytes in @tok; 0 unless SUBNODE_LIT */
	char tok[]; /* the literal token, a copy (no NUL) */
};

/* One queue group, by name, across all patterns. */
struct vbi_subgroup {
	UT_hash_handle hh; /* in the sublist's @groups, keyed by @name */
	size_t refs; /* queue subs in the group: freed at 0 */
	uint64_t turn; /* matches this group has served: the rotation */
	size_t hits; /* during one match: candidates from this group */
	size_t seen; /* during one match: candidates already considered */
	size_t pick; /* during one match: which candidate gets the message */
	bool oom; /* set by uthash: adding this group failed */
	size_t name_len; /* bytes in @name */
	char name[]; /* the name, a copy (no NUL) */
};

/* Subjects the match cache keeps at most, and subs per subject. */
#define CACHE_MAX 1024u
#define CACHE_SUBS_MAX 256u

/* One cached match result (see the top of the file). */
struct cache_ent {
	UT_hash_handle hh; /* in the sublist's @cache, keyed by @subject */
	uint64_t gen; /* the sublist's generation when filled */
	size_t n; /* plain subs: subs[0..n) */
	size_t ncands; /* queue candidates: subs[n..n + ncands) */
	char *subject; /* the key, after @subs in the same allocation */
	bool oom; /* set by uthash: adding this entry failed */
	struct vbi_sub *subs[];
};

struct vbi_sublist {
	struct vbi_subnode *root; /* the empty prefix; always there */
	struct vbi_subgroup *groups; /* queue groups in use: a uthash head */
	size_t count; /* subs inserted */
	size_t nodes; /* trie nodes allocated, the root included */
	struct cache_ent *cache; /* match results by subject: a uthash head */
	uint64_t gen; /* +1 per insert or remove: older entries are stale */
};

/*
 * Byte classes for the scans below: one table lookup per byte on every
 * published message's path.  SC_BAD: controls, space and DEL, which no
 * token may contain.
 */
enum subject_class {
	SC_TOKEN = 0, /* an ordinary token byte */
	SC_DOT, /* '.', the separator */
	SC_WILD, /* '*' or '>', a whole token in a pattern only */
	SC_BAD,
};

/* clang-format off */
#define B SC_BAD
static const uint8_t subject_class[256] = {
	B, B, B, B, B, B, B, B, B, B, B, B, B, B, B, B, /* 0x00-0x0f */
	B, B, B, B, B, B, B, B, B, B, B, B, B, B, B, B, /* 0x10-0x1f */
	[' '] = B, ['*'] = SC_WILD, ['.'] = SC_DOT, ['>'] = SC_WILD,
	[0x7f] = B,
};
#undef B
/* clang-format on */

static bool subject_bad_byte(unsigned char c)
{
	return subject_class[c] == SC_BAD;
}

/*
 * One pass over a subject or (with @pattern) a pattern: non-empty tokens
 * of allowed bytes, "*" only as a whole token, ">" only as a whole last
 * token.
 */
static int subject_scan(const char *s, size_t len, bool pattern)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, start = 0;

	if (s == NULL || len == 0 || len > VBI_SUBJECT_MAX)
		return VB_EINVAL;
	for (;;) {
		/* The common case: ordinary bytes, one lookup each. */
		while (i < len && subject_class[p[i]] == SC_TOKEN)
			i++;
		if (i == len)
			break;
		switch (subject_class[p[i]]) {
		case SC_DOT:
			if (i == start)
				return VB_EINVAL;
			start = i + 1;
			break;
		case SC_WILD:
			if (!pattern || i != start)
				return VB_EINVAL;
			if (i + 1 < len && (p[i] == '>' || p[i + 1] != '.'))
				return VB_EINVAL;
			break;
		default:
			return VB_EINVAL;
		}
		i++;
	}
	/* A last dot leaves an empty last token. */
	return start == len ? VB_EINVAL : VB_OK;
}

int vbi_subject_check(const char *s, size_t len)
{
	return subject_scan(s, len, false);
}

int vbi_pattern_check(const char *s, size_t len)
{
	return subject_scan(s, len, true);
}

int vbi_queue_check(const char *s, size_t len)
{
	size_t i;

	if (s == NULL || len == 0 || len > VBI_QUEUE_MAX)
		return VB_EINVAL;
	for (i = 0; i < len; i++)
		if (subject_bad_byte((unsigned char)s[i]))
			return VB_EINVAL;
	return VB_OK;
}

/* Bytes in the token at @s, @left bytes before the end of the subject. */
static size_t subject_token_len(const char *s, size_t left)
{
	const char *dot = memchr(s, '.', left);

	return dot ? (size_t)(dot - s) : left;
}

static bool token_is(const char *t, size_t len, char wild)
{
	return len == 1 && t[0] == wild;
}

bool vbi_pattern_covers(const char *allowed, size_t alen, const char *req,
			size_t rlen)
{
	size_t at, rt;

	if (vbi_pattern_check(allowed, alen) || vbi_pattern_check(req, rlen))
		return false;
	for (;;) {
		at = subject_token_len(allowed, alen);
		rt = subject_token_len(req, rlen);
		if (token_is(allowed, at, '>'))
			return true; /* one or more tokens of anything */
		if (token_is(req, rt, '>'))
			return false; /* only a '>' covers a '>' */
		if (token_is(allowed, at, '*')) {
			/* covers a literal or a '*' */
		} else if (token_is(req, rt, '*') || at != rt ||
			   memcmp(allowed, req, at) != 0) {
			return false;
		}
		if (at == alen || rt == rlen)
			return at == alen && rt == rlen;
		allowed += at + 1;
		alen -= at + 1;
		req += rt + 1;
		rlen -= rt + 1;
	}
}

void vbi_sub_init(struct vbi_sub *sub, const char *pattern, size_t pattern_len,
		  const char *queue, size_t queue_len, void *owner)
{
	memset(sub, 0, sizeof(*sub));
	sub->pattern = pattern;
	sub->pattern_len = pattern_len;
	sub->queue = queue;
	sub->queue_len = queue_len;
	sub->owner = owner;
}

static struct vbi_subnode *subnode_new(struct vbi_sublist *sl,
				       struct vbi_subnode *parent,
				       enum subnode_kind kind, const char *tok,
				       size_t tok_len)
{
	struct vbi_subnode *n = calloc(1, sizeof(*n) + tok_len);

	if (n == NULL)
		return NULL;
	n->parent = parent;
	n->kind = kind;
	n->tok_len = tok_len;
	if (tok_len)
		memcpy(n->tok, tok, tok_len);
	sl->nodes++;
	return n;
}

static bool subnode_empty(const struct vbi_subnode *n)
{
	return n->plain == NULL && n->queued == NULL && n->lits == NULL &&
	       n->star == NULL && n->full == NULL;
}

/* Unlink @n, which has no children, from its parent and free it. */
static void subnode_drop(struct vbi_sublist *sl, struct vbi_subnode *n)
{
	struct vbi_subnode *parent = n->parent;

	switch (n->kind) {
	case SUBNODE_LIT:
		HASH_DELETE(hh, parent->lits, n);
		break;
	case SUBNODE_STAR:
		parent->star = NULL;
		break;
	case SUBNODE_FULL:
		parent->full = NULL;
		break;
	case SUBNODE_ROOT:
		break;
	}
	free(n);
	sl->nodes--;
}

/* Free @n and its ancestors, bottom up, as long as nothing uses them. */
static void subnode_prune(struct vbi_sublist *sl, struct vbi_subnode *n)
{
	struct vbi_subnode *parent;

	while (n->kind != SUBNODE_ROOT && subnode_empty(n)) {
		parent = n->parent;
		subnode_drop(sl, n);
		n = parent;
	}
}

/* The child of @n for token @tok (@len bytes), created if need be. */
static struct vbi_subnode *subnode_child(struct vbi_sublist *sl,
					 struct vbi_subnode *n, const char *tok,
					 size_t len)
{
	struct vbi_subnode *child;

	if (len == 1 && tok[0] == '*') {
		if (n->star == NULL)
			n->star = subnode_new(sl, n, SUBNODE_STAR, NULL, 0);
		return n->star;
	}
	if (len == 1 && tok[0] == '>') {
		if (n->full == NULL)
			n->full = subnode_new(sl, n, SUBNODE_FULL, NULL, 0);
		return n->full;
	}
	HASH_FIND(hh, n->lits, tok, len, child);
	if (child)
		return child;
	child = subnode_new(sl, n, SUBNODE_LIT, tok, len);
	if (child == NULL)
		return NULL;
	HASH_ADD_KEYPTR(hh, n->lits, child->tok, child->tok_len, child);
	if (child->oom) {
		free(child);
		sl->nodes--;
		return NULL;
	}
	return child;
}

/*
 * The node where pattern @p (@len bytes, valid) ends, creating the missing
 * ones.  On VB_ENOMEM the nodes created so far are pruned again.
 */
static int sublist_path(struct vbi_sublist *sl, const char *p, size_t len,
			struct vbi_subnode **out)
{
	struct vbi_subnode *n = sl->root, *child;
	size_t pos = 0, tlen;

	while (pos < len) {
		tlen = subject_token_len(p + pos, len - pos);
		child = subnode_child(sl, n, p + pos, tlen);
		if (child == NULL) {
			subnode_prune(sl, n);
			return VB_ENOMEM;
		}
		n = child;
		pos += tlen + 1;
	}
	*out = n;
	return VB_OK;
}

/* Take a reference on the group named @name, created if need be. */
static int subgroup_get(struct vbi_sublist *sl, const char *name, size_t len,
			struct vbi_subgroup **out)
{
	struct vbi_subgroup *g;

	HASH_FIND(hh, sl->groups, name, len, g);
	if (g == NULL) {
		g = calloc(1, sizeof(*g) + len);
		if (g == NULL)
			return VB_ENOMEM;
		memcpy(g->name, name, len);
		g->name_len = len;
		HASH_ADD_KEYPTR(hh, sl->groups, g->name, g->name_len, g);
		if (g->oom) {
			free(g);
			return VB_ENOMEM;
		}
	}
	g->refs++;
	*out = g;
	return VB_OK;
}

static void subgroup_put(struct vbi_sublist *sl, struct vbi_subgroup *g)
{
	if (--g->refs)
		return;
	HASH_DELETE(hh, sl->groups, g);
	free(g);
}

static void sub_list_push(struct vbi_sub **head, struct vbi_sub *sub)
{
	sub->link.prev = NULL;
	sub->link.next = *head;
	if (*head)
		(*head)->link.prev = sub;
	*head = sub;
}

static void sub_list_unlink(struct vbi_sub **head, struct vbi_sub *sub)
{
	if (sub->link.prev)
		sub->link.prev->link.next = sub->link.next;
	else
		*head = sub->link.next;
	if (sub->link.next)
		sub->link.next->link.prev = sub->link.prev;
}

/* Zero the linkage of every sub in the list at @head. */
static void sub_list_release(struct vbi_sub *head)
{
	struct vbi_sub *next;

	for (; head; head = next) {
		next = head->link.next;
		memset(&head->link, 0, sizeof(head->link));
	}
}

/* ---- the match cache ---------------------------------------------------- */

static void cache_clear(struct vbi_sublist *sl)
{
	struct cache_ent *e, *tmp;

	HASH_ITER(hh, sl->cache, e, tmp)
	{
		HASH_DELETE(hh, sl->cache, e);
		free(e);
	}
}

size_t vbi_sublist_cached(const struct vbi_sublist *sl)
{
	return sl ? HASH_COUNT(sl->cache) : 0;
}

int vbi_sublist_create(struct vbi_sublist **out)
{
	struct vbi_sublist *sl;

	if (out == NULL)
		return VB_EINVAL;
	sl = calloc(1, sizeof(*sl));
	if (sl == NULL)
		return VB_ENOMEM;
	sl->root = subnode_new(sl, NULL, SUBNODE_ROOT, NULL, 0);
	if (sl->root == NULL)
		goto out_free_sl;
	*out = sl;
	return VB_OK;

out_free_sl:
	free(sl);
	return VB_ENOMEM;
}

void vbi_sublist_destroy(struct vbi_sublist *sl)
{
	struct vbi_subnode *n, *next;
	struct vbi_subgroup *g;

	if (sl == NULL)
		return;
	/* Post-order without recursion: descend to a leaf, free it, go up. */
	n = sl->root;
	while (n) {
		next = n->lits ? n->lits : n->star ? n->star : n->full;
		if (next) {
			n = next;
			continue;
		}
		sub_list_release(n->plain);
		sub_list_release(n->queued);
		next = n->parent;
		subnode_drop(sl, n);
		n = next;
	}
	while (sl->groups) {
		g = sl->groups;
		HASH_DELETE(hh, sl->groups, g);
		free(g);
	}
	cache_clear(sl);
	free(sl);
}

int vbi_sublist_insert(struct vbi_sublist *sl, struct vbi_sub *sub)
{
	struct vbi_subgroup *group = NULL;
	struct vbi_subnode *n;
	int rc;

	if (sl == NULL || sub == NULL || sub->link.sl != NULL)
		return VB_EINVAL;
	if (vbi_pattern_check(sub->pattern, sub->pattern_len) != VB_OK)
		return VB_EINVAL;
	if (sub->queue == NULL && sub->queue_len != 0)
		return VB_EINVAL;
	if (sub->queue && vbi_queue_check(sub->queue, sub->queue_len) != VB_OK)
		return VB_EINVAL;
	if (sub->queue) {
		rc = subgroup_get(sl, sub->queue, sub->queue_len, &group);
		if (rc != VB_OK)
			return rc;
	}
	rc = sublist_path(sl, sub->pattern, sub->pattern_len, &n);
	if (rc != VB_OK)
		goto out_put_group;
	sub->link.sl = sl;
	sub->link.node = n;
	sub->link.group = group;
	sub_list_push(group ? &n->queued : &n->plain, sub);
	sl->count++;
	sl->gen++;
	return VB_OK;

out_put_group:
	if (group)
		subgroup_put(sl, group);
	return rc;
}

int vbi_sublist_remove(struct vbi_sublist *sl, struct vbi_sub *sub)
{
	struct vbi_subnode *n;

	if (sl == NULL || sub == NULL || sub->link.sl != sl)
		return VB_EINVAL;
	n = sub->link.node;
	if (sub->link.group) {
		sub_list_unlink(&n->queued, sub);
		subgroup_put(sl, sub->link.group);
	} else {
		sub_list_unlink(&n->plain, sub);
	}
	memset(&sub->link, 0, sizeof(sub->link));
	sl->count--;
	sl->gen++;
	subnode_prune(sl, n);
	return VB_OK;
}

size_t vbi_sublist_count(const struct vbi_sublist *sl)
{
	return sl ? sl->count : 0;
}

size_t vbi_sublist_nodes(const struct vbi_sublist *sl)
{
	return sl ? sl->nodes : 0;
}

size_t vbi_sublist_groups(const struct vbi_sublist *sl)
{
	return sl ? HASH_COUNT(sl->groups) : 0;
}

void vbi_match_init(struct vbi_match *m)
{
	memset(m, 0, sizeof(*m));
}

void vbi_match_fini(struct vbi_match *m)
{
	if (m == NULL)
		return;
	free(m->subs);
	free(m->cands);
	vbi_match_init(m);
}

/* Make room for @need entries in *@arr, doubling its capacity *@cap. */
static int match_grow(struct vbi_sub ***arr, size_t *cap, size_t need)
{
	size_t ncap = *cap ? *cap : 16;
	struct vbi_sub **p;

	if (need <= *cap)
		return VB_OK;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2 / sizeof(*p))
			return VB_ENOMEM;
		ncap *= 2;
	}
	p = realloc(*arr, ncap * sizeof(*p));
	if (p == NULL)
		return VB_ENOMEM;
	*arr = p;
	*cap = ncap;
	return VB_OK;
}

static int match_push(struct vbi_sub ***arr, size_t *n, size_t *cap,
		      struct vbi_sub *sub)
{
	if (match_grow(arr, cap, *n + 1) != VB_OK)
		return VB_ENOMEM;
	(*arr)[(*n)++] = sub;
	return VB_OK;
}

/* Every sub whose pattern ends at @n: plain ones now, queue ones later. */
static int match_collect(struct vbi_match *m, const struct vbi_subnode *n)
{
	struct vbi_sub *sub;

	for (sub = n->plain; sub; sub = sub->link.next)
		if (match_push(&m->subs, &m->n, &m->cap, sub) != VB_OK)
			return VB_ENOMEM;
	for (sub = n->queued; sub; sub = sub->link.next)
		if (match_push(&m->cands, &m->ncands, &m->cands_cap, sub) !=
		    VB_OK)
			return VB_ENOMEM;
	return VB_OK;
}

/*
 * Match the subject's tokens from offset @pos (past the end: all matched)
 * below @n.  Recurses once per token, on the literal and "*" branches.
 */
static int match_node(struct vbi_match *m, const struct vbi_subnode *n,
		      const char *s, size_t len, size_t pos)
{
	struct vbi_subnode *lit;
	size_t tlen;
	int rc;

	if (pos > len)
		return match_collect(m, n);
	tlen = subject_token_len(s + pos, len - pos);
	HASH_FIND(hh, n->lits, s + pos, tlen, lit);
	if (lit) {
		rc = match_node(m, lit, s, len, pos + tlen + 1);
		if (rc != VB_OK)
			return rc;
	}
	if (n->star) {
		rc = match_node(m, n->star, s, len, pos + tlen + 1);
		if (rc != VB_OK)
			return rc;
	}
	/* ">" takes this token and all the rest: at least one. */
	if (n->full)
		return match_collect(m, n->full);
	return VB_OK;
}

/*
 * Deliver to one candidate per queue group: number (turn % candidates), in
 * trie order.  Room for every candidate is made first, so that a failure
 * leaves every rotation where it was.
 */
static int match_pick(struct vbi_match *m)
{
	struct vbi_subgroup *g;
	size_t i;

	if (m->ncands == 0)
		return VB_OK;
	if (match_grow(&m->subs, &m->cap, m->n + m->ncands) != VB_OK)
		return VB_ENOMEM;
	for (i = 0; i < m->ncands; i++) {
		g = m->cands[i]->link.group;
		g->hits = 0;
		g->seen = 0;
	}
	for (i = 0; i < m->ncands; i++)
		m->cands[i]->link.group->hits++;
	for (i = 0; i < m->ncands; i++) {
		g = m->cands[i]->link.group;
		if (g->seen == 0) {
			g->pick = (size_t)(g->turn % g->hits);
			g->turn++;
		}
		if (g->seen++ == g->pick)
			m->subs[m->n++] = m->cands[i];
	}
	return VB_OK;
}

/* The live entry for @subject, or NULL; a stale one found is dropped. */
static struct cache_ent *cache_find(struct vbi_sublist *sl, const char *subject,
				    size_t len)
{
	struct cache_ent *e;

	HASH_FIND(hh, sl->cache, subject, len, e);
	if (e == NULL || e->gen == sl->gen)
		return e;
	HASH_DELETE(hh, sl->cache, e);
	free(e);
	return NULL;
}

/* Keep @m's walk (plain subs and candidates, before the pick) under
 * @subject.  Best effort: nothing is kept when memory is short. */
static void cache_add(struct vbi_sublist *sl, const char *subject, size_t len,
		      const struct vbi_match *m)
{
	size_t k = m->n + m->ncands;
	struct cache_ent *e;

	if (k > CACHE_SUBS_MAX)
		return;
	if (HASH_COUNT(sl->cache) >= CACHE_MAX)
		cache_clear(sl);
	e = malloc(sizeof(*e) + k * sizeof(e->subs[0]) + len);
	if (e == NULL)
		return;
	memset(e, 0, sizeof(*e));
	e->gen = sl->gen;
	e->n = m->n;
	e->ncands = m->ncands;
	e->subject = (char *)&e->subs[k];
	if (m->n)
		memcpy(e->subs, m->subs, m->n * sizeof(e->subs[0]));
	if (m->ncands)
		memcpy(e->subs + m->n, m->cands,
		       m->ncands * sizeof(e->subs[0]));
	memcpy(e->subject, subject, len);
	HASH_ADD_KEYPTR(hh, sl->cache, e->subject, len, e);
	if (e->oom)
		free(e);
}

/* @m as the walk that filled @e left it: plain subs and candidates. */
static int cache_load(struct vbi_match *m, const struct cache_ent *e)
{
	if (match_grow(&m->subs, &m->cap, e->n) != VB_OK ||
	    match_grow(&m->cands, &m->cands_cap, e->ncands) != VB_OK)
		return VB_ENOMEM;
	if (e->n)
		memcpy(m->subs, e->subs, e->n * sizeof(m->subs[0]));
	if (e->ncands)
		memcpy(m->cands, e->subs + e->n,
		       e->ncands * sizeof(m->cands[0]));
	m->n = e->n;
	m->ncands = e->ncands;
	return VB_OK;
}

/* Every candidate after the plain subs, no pick: no rotation moves. */
static int match_take_all(struct vbi_match *m)
{
	if (m->ncands == 0)
		return VB_OK;
	if (match_grow(&m->subs, &m->cap, m->n + m->ncands) != VB_OK)
		return VB_ENOMEM;
	memcpy(m->subs + m->n, m->cands, m->ncands * sizeof(m->subs[0]));
	m->n += m->ncands;
	return VB_OK;
}

/* The walk (from the cache, or the trie's, then cached), then @finish. */
static int match_run(struct vbi_sublist *sl, const char *subject, size_t len,
		     struct vbi_match *m, int (*finish)(struct vbi_match *))
{
	struct cache_ent *e;
	int rc;

	if (sl == NULL || m == NULL || subject == NULL || len == 0)
		return VB_EINVAL;
	m->n = 0;
	m->ncands = 0;
	e = cache_find(sl, subject, len);
	if (e) {
		rc = cache_load(m, e);
	} else {
		rc = match_node(m, sl->root, subject, len, 0);
		if (rc == VB_OK)
			cache_add(sl, subject, len, m);
	}
	if (rc == VB_OK)
		rc = finish(m);
	if (rc != VB_OK)
		m->n = 0;
	m->ncands = 0;
	return rc;
}

int vbi_sublist_match(struct vbi_sublist *sl, const char *subject, size_t len,
		      struct vbi_match *m)
{
	if (vbi_subject_check(subject, len) != VB_OK)
		return VB_EINVAL;
	return vbi_sublist_match_valid(sl, subject, len, m);
}

int vbi_sublist_match_valid(struct vbi_sublist *sl, const char *subject,
			    size_t len, struct vbi_match *m)
{
	return match_run(sl, subject, len, m, match_pick);
}

int vbi_sublist_match_all(struct vbi_sublist *sl, const char *subject,
			  size_t len, struct vbi_match *m)
{
	if (vbi_subject_check(subject, len) != VB_OK)
		return VB_EINVAL;
	return match_run(sl, subject, len, m, match_take_all);
}
