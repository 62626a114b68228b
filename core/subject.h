/*
 * subject.h - subject validation and the subscription trie (NATS rules).
 *
 * A subject is a dot-separated list of tokens: "orders.eu.paris".  Messages
 * are published on literal subjects; subscriptions name patterns, in which
 * a whole token "*" matches exactly one token and a whole last token ">"
 * matches one or more trailing tokens ("a.>" matches "a.b" and "a.b.c" but
 * not "a").  A subscription may belong to a queue group: of the members of
 * one group (by name, across all the patterns that match) each message
 * goes to exactly one, chosen round robin.
 *
 * Subjects, patterns and queue names arrive as (pointer, length) from rings
 * and are never NUL-terminated; every function here takes them that way
 * and validates them before use.
 *
 * Ownership: a struct vbi_sub is the caller's (the broker embeds it in its
 * own subscription struct); the sublist links it but never frees it.
 * Threading: nothing here locks.  A sublist, and every sub and match result
 * used with it, belongs to one thread at a time; matching updates the
 * round-robin state, so even matches must not run concurrently.  Nothing
 * blocks.
 */
#ifndef VERBUS_CORE_SUBJECT_H
#define VERBUS_CORE_SUBJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* Longest subject or pattern, in bytes: so at most 512 tokens. */
#define VBI_SUBJECT_MAX 1024u

/* Longest queue group name, in bytes. */
#define VBI_QUEUE_MAX 255u

/* Private inboxes' subjects begin with this (the broker's daemon/inbox.c,
 * libverbus's vb_new_inbox()); a subject that does is never direct. */
#define VBI_INBOX_PREFIX "_INBOX."
#define VBI_INBOX_PREFIX_LEN 7u

/*
 * Token bytes: anything but '.', '*', '>', the bytes below 0x21 (controls,
 * space, NUL) and 0x7f.  UTF-8 is allowed.  "*" and ">" are only ever whole
 * tokens, and only in patterns.
 *
 * vbi_subject_check() - is @s (@len bytes) a literal subject a message may
 * be published on: 1..VBI_SUBJECT_MAX bytes of non-empty tokens, no
 * wildcard?  Returns VB_OK or VB_EINVAL.  Reads only @s[0..@len).
 */
int vbi_subject_check(const char *s, size_t len);

/*
 * vbi_pattern_check() - is @s (@len bytes) a pattern a subscription may
 * use: as a subject, but a token may be a lone "*", and the last token a
 * lone ">"?  Returns VB_OK or VB_EINVAL.
 */
int vbi_pattern_check(const char *s, size_t len);

/*
 * vbi_queue_check() - is @s (@len bytes) a queue group name: 1..VBI_QUEUE_MAX
 * bytes, none below 0x21 nor 0x7f?  The name is opaque: dots and wildcard
 * characters are plain bytes in it.  Returns VB_OK or VB_EINVAL.
 */
int vbi_queue_check(const char *s, size_t len);

/*
 * vbi_pattern_covers() - does the pattern @allowed match everything that
 * @req (a subject or a pattern) can match?  "orders.>" covers
 * "orders.new", "orders.*" and "orders.eu.>"; "orders.*" covers
 * "orders.new" and "orders.*" but not "orders.>" nor "orders.a.b".  Used
 * for permissions: a publish is allowed if an allowed pattern covers its
 * subject, a subscription if one covers its pattern.  Invalid input covers
 * and is covered by nothing.
 */
bool vbi_pattern_covers(const char *allowed, size_t alen, const char *req,
			size_t rlen);

/*
 * vbi_topic_split() - a frame's topic is "subject[ SP reply]"
 * (PROTOCOL.md, "Frames"): returns the subject's length and sets *@reply
 * and *@reply_len to the reply subject (NULL and 0 without one).  Nothing
 * is validated: the caller checks each part as it needs.
 */
static inline size_t vbi_topic_split(const char *topic, size_t len,
				     const char **reply, size_t *reply_len)
{
	const char *sp = memchr(topic, ' ', len);

	*reply = sp ? sp + 1 : NULL;
	*reply_len = sp ? len - (size_t)(sp - topic) - 1 : 0;
	return sp ? (size_t)(sp - topic) : len;
}

struct vbi_sublist;
struct vbi_subnode;
struct vbi_subgroup;
struct vbi_sub;

/*
 * The sublist's private linkage inside a vbi_sub.  Only subject.c reads or
 * writes it; vbi_sub_init() zeroes it, and it must be zero before a sub is
 * first inserted.
 */
struct vbi_sub_link {
	struct vbi_sublist *sl; /* the sublist holding the sub; NULL: none */
	struct vbi_subnode *node; /* the trie node where the pattern ends */
	struct vbi_subgroup *group; /* its queue group; NULL: a plain sub */
	struct vbi_sub *prev; /* neighbours in the node's list of subs */
	struct vbi_sub *next;
};

/* A subscription, embedded by the caller in its own struct. */
struct vbi_sub {
	const char *pattern; /* the pattern, not NUL-terminated */
	size_t pattern_len; /* bytes in @pattern */
	const char *queue; /* the queue group name; NULL: none */
	size_t queue_len; /* bytes in @queue; 0 with @queue NULL */
	void *owner; /* the caller's, never read here */
	struct vbi_sub_link link; /* private: see struct vbi_sub_link */
};

/*
 * vbi_sub_init() - fill in a sub's public fields and zero its linkage, ready
 * for vbi_sublist_insert().  Nothing is checked or copied here.
 */
void vbi_sub_init(struct vbi_sub *sub, const char *pattern, size_t pattern_len,
		  const char *queue, size_t queue_len, void *owner);

/*
 * vbi_sublist_create() - a new, empty sublist in *@out (written only on
 * success).  Returns VB_OK, VB_EINVAL (@out NULL) or VB_ENOMEM.
 */
int vbi_sublist_create(struct vbi_sublist **out);

/*
 * vbi_sublist_destroy() - free @sl and everything it allocated.  Accepts
 * NULL.  The subs still inserted are not freed (they are the caller's) but
 * their linkage is zeroed, so they may be inserted again elsewhere.
 */
void vbi_sublist_destroy(struct vbi_sublist *sl);

/*
 * vbi_sublist_insert() - add @sub, whose public fields say what it wants.
 * The sublist reads @sub->pattern and @sub->queue only during this call
 * (it copies what it keeps), but holds @sub itself until it is removed or
 * the sublist destroyed: the caller must not free or move it before then.
 *
 * Returns VB_OK; VB_EINVAL if the pattern or queue name is invalid, @sub
 * is already in a sublist, or an argument is NULL; or VB_ENOMEM.  Nothing
 * changes on error.
 */
int vbi_sublist_insert(struct vbi_sublist *sl, struct vbi_sub *sub);

/*
 * vbi_sublist_remove() - take @sub out of @sl, freeing the trie nodes and
 * queue group state nothing uses any more, and zero its linkage.  Never
 * allocates, so it cannot fail for want of memory.  Returns VB_OK, or
 * VB_EINVAL if @sub is not in @sl (never inserted, removed already, or in
 * another sublist): nothing changes.  Results of earlier matches may still
 * point at @sub: the caller must drop them first.
 */
int vbi_sublist_remove(struct vbi_sublist *sl, struct vbi_sub *sub);

/* vbi_sublist_count() - the number of subs in @sl. */
size_t vbi_sublist_count(const struct vbi_sublist *sl);

/*
 * vbi_sublist_nodes() - the number of trie nodes @sl holds, the root
 * included, so 1 when empty: for tests and statistics, to show that
 * removal gives memory back.
 */
size_t vbi_sublist_nodes(const struct vbi_sublist *sl);

/*
 * vbi_sublist_groups() - the number of queue groups with at least one
 * member in @sl: a group's state is freed with its last member.
 */
size_t vbi_sublist_groups(const struct vbi_sublist *sl);

/* vbi_sublist_cached() - subjects whose match result the sublist keeps
 * (its match cache, see subject.c); live or stale.  0 for NULL. */
size_t vbi_sublist_cached(const struct vbi_sublist *sl);

/*
 * A match result, kept by the caller between matches: its arrays grow
 * geometrically and are reused, so that steady-state matching allocates
 * nothing.  Fill it with vbi_sublist_match(); read only @subs and @n.
 */
struct vbi_match {
	struct vbi_sub **subs; /* the subs a message goes to, @n of them */
	size_t n; /* entries in @subs */
	size_t cap; /* slots allocated in @subs */
	struct vbi_sub **cands; /* private: candidate queue subs */
	size_t ncands; /* private: entries in @cands */
	size_t cands_cap; /* private: slots allocated in @cands */
};

/* vbi_match_init() - an empty result, allocating nothing. */
void vbi_match_init(struct vbi_match *m);

/*
 * vbi_match_fini() - free @m's arrays and leave it empty (ready for reuse,
 * as after vbi_match_init()).  Accepts NULL.
 */
void vbi_match_fini(struct vbi_match *m);

/*
 * vbi_sublist_match() - which subs does a message published on @subject
 * (@len bytes, not NUL-terminated) go to?  Fills @m with every matching
 * plain sub and, for each queue group with a matching member, exactly one
 * such member, the next in that group's rotation.  No sub appears twice.
 * The order is the trie's, stable while the sublist does not change.  The
 * pointers stay valid until the subs are removed; @m's contents until the
 * next call with @m.
 *
 * Recursion is bounded by the subject's token count (at most 512, given
 * VBI_SUBJECT_MAX), a few dozen bytes of stack per token.
 *
 * Returns VB_OK (@m->n may be 0); VB_EINVAL if @subject is not a valid
 * literal subject (@m unchanged, no rotation advanced); or VB_ENOMEM when
 * @m's arrays could not grow (@m->n is 0, no rotation advanced).
 */
int vbi_sublist_match(struct vbi_sublist *sl, const char *subject, size_t len,
		      struct vbi_match *m);

/*
 * vbi_sublist_match_valid() - vbi_sublist_match() for a @subject the caller
 * has already passed through vbi_subject_check() (the broker checks each
 * published subject once, before permissions and routing).  An unchecked
 * subject is a caller bug: the trie is still only read within @len bytes,
 * but the result is unspecified.  Same returns, VB_EINVAL only for NULL
 * arguments or an empty subject.
 */
int vbi_sublist_match_valid(struct vbi_sublist *sl, const char *subject,
			    size_t len, struct vbi_match *m);

/*
 * vbi_sublist_match_all() - every sub a message on @subject could go to:
 * the plain subs, then every matching member of every queue group, none
 * picked and no rotation advanced (a question about interest, not a
 * delivery: direct mode's paths, a reply's way back).  Same order, results
 * and returns as vbi_sublist_match(), @subject checked as there.
 */
int vbi_sublist_match_all(struct vbi_sublist *sl, const char *subject,
			  size_t len, struct vbi_match *m);

#endif /* VERBUS_CORE_SUBJECT_H */
