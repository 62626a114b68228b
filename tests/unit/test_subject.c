/* Unit tests for subject validation and the subscription trie. */
#include "core/subject.h"

#include <verbus/verbus.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/*
 * The test links with --wrap=malloc,calloc,realloc (tests/CMakeLists.txt):
 * allocations from this file and from verbus_core come here, and fail once
 * alloc_budget successes are spent.  -1: never fail.
 */
static long alloc_budget = -1;

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);

static bool alloc_fails(void)
{
	if (alloc_budget < 0)
		return false;
	if (alloc_budget == 0)
		return true;
	alloc_budget--;
	return false;
}

void *__wrap_malloc(size_t size)
{
	return alloc_fails() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
	return alloc_fails() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
	return alloc_fails() ? NULL : __real_realloc(p, size);
}

/* A string with its length, NULs inside included. */
struct str {
	const char *s;
	size_t len;
};

#define S(lit)                        \
	{                             \
		lit, sizeof(lit) - 1, \
	}

static void check_table(int (*check)(const char *, size_t), const struct str *t,
			size_t n, int want, const char *what)
{
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		rc = check(t[i].s, t[i].len);
		if (rc != want)
			fail_msg("%s #%zu \"%.*s\" (%zu bytes): got %d", what,
				 i, (int)t[i].len, t[i].s, t[i].len, rc);
	}
}

#define CHECK_TABLE(fn, t, want) \
	check_table(fn, t, sizeof(t) / sizeof(t[0]), want, #t)

/* Tokens that are literal in both subjects and patterns. */
static const struct str literal_ok[] = {
	S("a"),
	S("orders.eu.paris"),
	S("a.b.c.d.e.f.g"),
	S("A-b_c"),
	S("$SYS.req"),
	S("1.22.333"),
	S("a~b!c@d#e%f&g"),
	S("\xc3\xa9t\xc3\xa9.caf\xc3\xa9"),
	S("\x80\xff"),
	S("_INBOX.x7f"),
};

/* Invalid anywhere: empty tokens, bad bytes, wildcards inside a token. */
static const struct str always_bad[] = {
	S(""),	     S("."),	 S(".."),    S("a."),	 S(".a"),   S("a..b"),
	S("a.b."),   S(".a.b"),	 S("a*"),    S("*a"),	 S(">a"),   S("a>"),
	S("a*b"),    S("a>b"),	 S("**"),    S(">>"),	 S("*>"),   S("a.**"),
	S("a.b*.c"), S("a.>.b"), S(">.a"),   S("a. "),	 S("a b"),  S(" a"),
	S("a "),     S("a\tb"),	 S("a\nb"),  S("a\rb"),	 S("a\0b"), S("\0"),
	S("a.\0"),   S("a\x01"), S("a\x1f"), S("a\x7f"), S("\x7f"),
};

static const struct str wild_only[] = {
	S("*"),	  S(">"),   S("a.*"),	S("a.>"),   S("*.a"),
	S("*.*"), S("*.>"), S("a.*.c"), S("*.b.>"), S("a.*.*.>"),
};

static void test_subject_check_subjects(void **state)
{
	(void)state;
	CHECK_TABLE(vbi_subject_check, literal_ok, VB_OK);
	CHECK_TABLE(vbi_subject_check, always_bad, VB_EINVAL);
	CHECK_TABLE(vbi_subject_check, wild_only, VB_EINVAL);
	assert_int_equal(vbi_subject_check(NULL, 0), VB_EINVAL);
	assert_int_equal(vbi_subject_check(NULL, 3), VB_EINVAL);
}

static void test_subject_check_patterns(void **state)
{
	(void)state;
	CHECK_TABLE(vbi_pattern_check, literal_ok, VB_OK);
	CHECK_TABLE(vbi_pattern_check, wild_only, VB_OK);
	CHECK_TABLE(vbi_pattern_check, always_bad, VB_EINVAL);
	assert_int_equal(vbi_pattern_check(NULL, 1), VB_EINVAL);
}

static void test_subject_check_queues(void **state)
{
	static const struct str ok[] = {
		S("w"), S("workers"), S("a.b"),	  S("q*"),
		S(">"), S("."),	      S("x-1_2"), S("\xc3\xa9"),
	};
	static const struct str bad[] = {
		S(""),	   S(" "),    S("a b"), S("a\tb"),
		S("a\0b"), S("\x7f"), S("a\n"), S("\x01"),
	};
	char name[VBI_QUEUE_MAX + 1];

	(void)state;
	CHECK_TABLE(vbi_queue_check, ok, VB_OK);
	CHECK_TABLE(vbi_queue_check, bad, VB_EINVAL);
	memset(name, 'q', sizeof(name));
	assert_int_equal(vbi_queue_check(name, VBI_QUEUE_MAX), VB_OK);
	assert_int_equal(vbi_queue_check(name, VBI_QUEUE_MAX + 1), VB_EINVAL);
	assert_int_equal(vbi_queue_check(NULL, 0), VB_EINVAL);
	assert_int_equal(vbi_queue_check(NULL, 1), VB_EINVAL);
}

/* Only @len bytes are ever read: what follows does not matter. */
static void test_subject_check_reads_only_len(void **state)
{
	static const char buf[] = "a.bXYZ";
	static const char dot[] = "a.b.";
	static const char bad[] = "a.b c";

	(void)state;
	assert_int_equal(vbi_subject_check(buf, 3), VB_OK);
	assert_int_equal(vbi_subject_check(buf, 6), VB_OK);
	assert_int_equal(vbi_subject_check(dot, 3), VB_OK);
	assert_int_equal(vbi_subject_check(dot, 4), VB_EINVAL);
	assert_int_equal(vbi_subject_check(bad, 3), VB_OK);
	assert_int_equal(vbi_subject_check(bad, 5), VB_EINVAL);
	assert_int_equal(vbi_pattern_check("a.*x", 3), VB_OK);
	assert_int_equal(vbi_pattern_check("a.>.b", 3), VB_OK);
	assert_int_equal(vbi_queue_check("w x", 1), VB_OK);
}

/* Fill @buf with @ntok tokens of @tok ("a"), dot-separated; return bytes. */
static size_t make_tokens(char *buf, size_t ntok, char tok)
{
	size_t i, n = 0;

	for (i = 0; i < ntok; i++) {
		if (i)
			buf[n++] = '.';
		buf[n++] = tok;
	}
	return n;
}

static void test_subject_check_lengths(void **state)
{
	char buf[VBI_SUBJECT_MAX + 8];
	size_t n;

	(void)state;
	memset(buf, 'a', sizeof(buf));
	assert_int_equal(vbi_subject_check(buf, VBI_SUBJECT_MAX), VB_OK);
	assert_int_equal(vbi_subject_check(buf, VBI_SUBJECT_MAX + 1),
			 VB_EINVAL);
	assert_int_equal(vbi_pattern_check(buf, VBI_SUBJECT_MAX), VB_OK);
	assert_int_equal(vbi_pattern_check(buf, VBI_SUBJECT_MAX + 1),
			 VB_EINVAL);
	/* The most tokens a subject can have: 512 in 1023 bytes. */
	n = make_tokens(buf, 512, 'a');
	assert_int_equal(n, 1023);
	assert_int_equal(vbi_subject_check(buf, n), VB_OK);
	n = make_tokens(buf, 513, 'a');
	assert_int_equal(vbi_subject_check(buf, n), VB_EINVAL);
	n = make_tokens(buf, 512, '*');
	assert_int_equal(vbi_pattern_check(buf, n), VB_OK);
	assert_int_equal(vbi_subject_check(buf, n), VB_EINVAL);
	buf[n - 1] = '>';
	assert_int_equal(vbi_pattern_check(buf, n), VB_OK);
	/* 1024 bytes ending in a dot: the last token is empty. */
	n = make_tokens(buf, 512, 'a');
	buf[n++] = '.';
	assert_int_equal(vbi_subject_check(buf, n), VB_EINVAL);
}

/* A sublist and a match result for one test. */
struct fix {
	struct vbi_sublist *sl;
	struct vbi_match m;
};

static void fix_init(struct fix *f)
{
	assert_int_equal(vbi_sublist_create(&f->sl), VB_OK);
	assert_int_equal(vbi_sublist_nodes(f->sl), 1);
	assert_int_equal(vbi_sublist_count(f->sl), 0);
	vbi_match_init(&f->m);
}

static void fix_fini(struct fix *f)
{
	vbi_sublist_destroy(f->sl);
	vbi_match_fini(&f->m);
}

static void sub_add(struct fix *f, struct vbi_sub *sub, const char *pattern,
		    const char *queue)
{
	vbi_sub_init(sub, pattern, strlen(pattern), queue,
		     queue ? strlen(queue) : 0, NULL);
	assert_int_equal(vbi_sublist_insert(f->sl, sub), VB_OK);
}

static size_t match(struct fix *f, const char *subject)
{
	assert_int_equal(
		vbi_sublist_match(f->sl, subject, strlen(subject), &f->m),
		VB_OK);
	return f->m.n;
}

/* How many times @sub is in the last result. */
static size_t got(const struct fix *f, const struct vbi_sub *sub)
{
	size_t i, k = 0;

	for (i = 0; i < f->m.n; i++)
		k += f->m.subs[i] == sub;
	return k;
}

struct match_case {
	const char *pattern;
	const char *subject;
	bool match;
};

static void test_subject_match_table(void **state)
{
	static const struct match_case t[] = {
		{ "a", "a", true },
		{ "a", "b", false },
		{ "a", "a.b", false },
		{ "a.b", "a", false },
		{ "a.b.c", "a.b.c", true },
		{ "a.b.c", "a.b.d", false },
		{ "a.b.c", "a.bc", false },
		{ "ab.c", "a.bc", false },
		{ "orders.eu.paris", "orders.eu.paris", true },
		/* "*" at each position. */
		{ "*", "a", true },
		{ "*", "a.b", false },
		{ "*.b.c", "a.b.c", true },
		{ "a.*.c", "a.b.c", true },
		{ "a.b.*", "a.b.c", true },
		{ "*.b.c", "a.x.c", false },
		{ "a.*.c", "a.b.x", false },
		{ "a.b.*", "x.b.c", false },
		{ "a.*", "a", false },
		{ "a.*", "a.b.c", false },
		{ "*.*", "a.b", true },
		{ "*.*", "a", false },
		{ "*.*", "a.b.c", false },
		{ "*.*.*", "a.b.c", true },
		/* ">" matches one or more trailing tokens. */
		{ ">", "a", true },
		{ ">", "a.b.c.d", true },
		{ "a.>", "a", false },
		{ "a.>", "a.b", true },
		{ "a.>", "a.b.c", true },
		{ "a.>", "b.c", false },
		{ "a.b.>", "a.b", false },
		{ "a.b.>", "a.b.c", true },
		{ "*.>", "a", false },
		{ "*.>", "a.b", true },
		{ "*.b.>", "a.b.c.d", true },
		{ "*.b.>", "a.c.c.d", false },
		{ "a.*.>", "a.b", false },
		{ "a.*.>", "a.b.c", true },
	};
	struct fix f;
	struct vbi_sub sub;
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		fix_init(&f);
		sub_add(&f, &sub, t[i].pattern, NULL);
		n = match(&f, t[i].subject);
		if (n != (t[i].match ? 1u : 0u) || (n && f.m.subs[0] != &sub))
			fail_msg("\"%s\" vs \"%s\": %zu results", t[i].pattern,
				 t[i].subject, n);
		fix_fini(&f);
	}
}

/* The subject is (pointer, length), never NUL-terminated; so is a pattern. */
static void test_subject_match_not_nul_terminated(void **state)
{
	static const char buf[] = "a.bXYZ";
	static const char pat[] = "a.*garbage";
	struct vbi_sub ab, abxyz, star;
	struct fix f;

	(void)state;
	fix_init(&f);
	sub_add(&f, &ab, "a.b", NULL);
	sub_add(&f, &abxyz, "a.bXYZ", NULL);
	vbi_sub_init(&star, pat, 3, NULL, 0, &f);
	assert_int_equal(vbi_sublist_insert(f.sl, &star), VB_OK);
	assert_ptr_equal(star.owner, &f);
	assert_int_equal(vbi_sublist_match(f.sl, buf, 3, &f.m), VB_OK);
	assert_int_equal(f.m.n, 2);
	assert_int_equal(got(&f, &ab), 1);
	assert_int_equal(got(&f, &star), 1);
	assert_int_equal(vbi_sublist_match(f.sl, buf, 6, &f.m), VB_OK);
	assert_int_equal(f.m.n, 2);
	assert_int_equal(got(&f, &abxyz), 1);
	assert_int_equal(got(&f, &star), 1);
	fix_fini(&f);
}

/* Overlapping patterns all deliver, each sub exactly once. */
static void test_subject_match_overlapping(void **state)
{
	static const char *const yes[] = {
		"a.b.c", "a.*.c", "a.>", ">",	  "*.b.*",
		"a.b.*", "*.*.*", "*.>", "a.b.>", "*.*.c",
	};
	static const char *const no[] = {
		"x.>", "a.b", "a.b.c.>", "*.*", "a.*.d", "a.b.c.d", "*",
	};
	struct vbi_sub y[10], n[7], twin;
	struct fix f;
	size_t i;

	(void)state;
	fix_init(&f);
	for (i = 0; i < 10; i++)
		sub_add(&f, &y[i], yes[i], NULL);
	for (i = 0; i < 7; i++)
		sub_add(&f, &n[i], no[i], NULL);
	/* A second sub with the same pattern is a second delivery. */
	sub_add(&f, &twin, "a.b.c", NULL);
	assert_int_equal(match(&f, "a.b.c"), 11);
	for (i = 0; i < 10; i++)
		assert_int_equal(got(&f, &y[i]), 1);
	assert_int_equal(got(&f, &twin), 1);
	/* Inserting the same sub again is refused and changes nothing. */
	assert_int_equal(vbi_sublist_insert(f.sl, &y[0]), VB_EINVAL);
	assert_int_equal(vbi_sublist_count(f.sl), 18);
	assert_int_equal(match(&f, "a.b.c"), 11);
	assert_int_equal(got(&f, &y[0]), 1);
	assert_int_equal(match(&f, "q"), 2); /* ">" and "*" */
	assert_int_equal(match(&f, "q.r.s.t.u"), 2); /* ">" and "*.>" */
	fix_fini(&f);
}

static void test_subject_insert_rejects(void **state)
{
	struct vbi_sublist *other;
	struct vbi_sub sub;
	struct fix f;
	char big[VBI_QUEUE_MAX + 1];

	(void)state;
	fix_init(&f);
	memset(big, 'q', sizeof(big));
	vbi_sub_init(&sub, "a..b", 4, NULL, 0, NULL);
	assert_int_equal(vbi_sublist_insert(f.sl, &sub), VB_EINVAL);
	vbi_sub_init(&sub, "a.>.b", 5, NULL, 0, NULL);
	assert_int_equal(vbi_sublist_insert(f.sl, &sub), VB_EINVAL);
	vbi_sub_init(&sub, NULL, 0, NULL, 0, NULL);
	assert_int_equal(vbi_sublist_insert(f.sl, &sub), VB_EINVAL);
	vbi_sub_init(&sub, "a", 1, "w x", 3, NULL);
	assert_int_equal(vbi_sublist_insert(f.sl, &sub), VB_EINVAL);
	vbi_sub_init(&sub, "a", 1, "", 0, NULL);
	assert_int_equal(vbi_sublist_insert(f.sl, &sub), VB_EINVAL);
	vbi_sub_init(&sub, "a", 1, big, sizeof(big), NULL);
	assert_int_equal(vbi_sublist_insert(f.sl, &sub), VB_EINVAL);
	vbi_sub_init(&sub, "a", 1, NULL, 1, NULL);
	assert_int_equal(vbi_sublist_insert(f.sl, &sub), VB_EINVAL);
	assert_int_equal(vbi_sublist_insert(NULL, &sub), VB_EINVAL);
	assert_int_equal(vbi_sublist_insert(f.sl, NULL), VB_EINVAL);
	assert_int_equal(vbi_sublist_count(f.sl), 0);
	assert_int_equal(vbi_sublist_nodes(f.sl), 1);
	/* A sub is in one sublist at a time. */
	assert_int_equal(vbi_sublist_create(&other), VB_OK);
	sub_add(&f, &sub, "a", NULL);
	assert_int_equal(vbi_sublist_insert(other, &sub), VB_EINVAL);
	assert_int_equal(vbi_sublist_remove(other, &sub), VB_EINVAL);
	assert_int_equal(vbi_sublist_count(other), 0);
	assert_int_equal(vbi_sublist_remove(f.sl, &sub), VB_OK);
	assert_int_equal(vbi_sublist_insert(other, &sub), VB_OK);
	assert_int_equal(vbi_sublist_count(other), 1);
	vbi_sublist_destroy(other);
	assert_int_equal(vbi_sublist_create(NULL), VB_EINVAL);
	vbi_sublist_destroy(NULL);
	vbi_match_fini(NULL);
	fix_fini(&f);
}

static void test_subject_match_rejects(void **state)
{
	static const char *const bad[] = { "", "a.*", ">", "a..b", "a b" };
	struct vbi_sub sub;
	struct fix f;
	size_t i;

	(void)state;
	fix_init(&f);
	sub_add(&f, &sub, ">", NULL);
	assert_int_equal(match(&f, "a"), 1);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(
			vbi_sublist_match(f.sl, bad[i], strlen(bad[i]), &f.m),
			VB_EINVAL);
		/* The previous result is left as it was. */
		assert_int_equal(f.m.n, 1);
	}
	assert_int_equal(vbi_sublist_match(f.sl, "a\0b", 3, &f.m), VB_EINVAL);
	assert_int_equal(vbi_sublist_match(NULL, "a", 1, &f.m), VB_EINVAL);
	assert_int_equal(vbi_sublist_match(f.sl, "a", 1, NULL), VB_EINVAL);
	/* The variant for subjects the caller checked: arguments only. */
	assert_int_equal(vbi_sublist_match_valid(f.sl, "a.b", 3, &f.m), VB_OK);
	assert_int_equal(f.m.n, 1);
	assert_int_equal(vbi_sublist_match_valid(NULL, "a", 1, &f.m),
			 VB_EINVAL);
	assert_int_equal(vbi_sublist_match_valid(f.sl, "a", 1, NULL),
			 VB_EINVAL);
	assert_int_equal(vbi_sublist_match_valid(f.sl, NULL, 1, &f.m),
			 VB_EINVAL);
	assert_int_equal(vbi_sublist_match_valid(f.sl, "a", 0, &f.m),
			 VB_EINVAL);
	fix_fini(&f);
}

/* Deepest recursion: 512 tokens against 512 "*", and a 512-token literal. */
static void test_subject_match_deepest(void **state)
{
	char subj[VBI_SUBJECT_MAX], stars[VBI_SUBJECT_MAX],
		lit[VBI_SUBJECT_MAX], full[VBI_SUBJECT_MAX];
	struct vbi_sub s1, s2, s3, s4;
	size_t ns, np, nl, nf;
	struct fix f;

	(void)state;
	fix_init(&f);
	ns = make_tokens(subj, 512, 'a');
	np = make_tokens(stars, 512, '*');
	nl = make_tokens(lit, 512, 'a');
	nf = make_tokens(full, 512, '*');
	full[nf - 1] = '>';
	vbi_sub_init(&s1, stars, np, NULL, 0, NULL);
	vbi_sub_init(&s2, lit, nl, NULL, 0, NULL);
	vbi_sub_init(&s3, full, nf, NULL, 0, NULL);
	vbi_sub_init(&s4, full, nf - 2, NULL, 0, NULL); /* 511 "*" */
	assert_int_equal(vbi_sublist_insert(f.sl, &s1), VB_OK);
	assert_int_equal(vbi_sublist_insert(f.sl, &s2), VB_OK);
	assert_int_equal(vbi_sublist_insert(f.sl, &s3), VB_OK);
	assert_int_equal(vbi_sublist_insert(f.sl, &s4), VB_OK);
	assert_int_equal(vbi_sublist_nodes(f.sl), 1 + 512 + 512 + 1);
	assert_int_equal(vbi_sublist_match(f.sl, subj, ns, &f.m), VB_OK);
	assert_int_equal(f.m.n, 3);
	assert_int_equal(got(&f, &s1), 1);
	assert_int_equal(got(&f, &s2), 1);
	assert_int_equal(got(&f, &s3), 1);
	/* 511 tokens: only the 511-"*" pattern. */
	assert_int_equal(vbi_sublist_match(f.sl, subj, ns - 2, &f.m), VB_OK);
	assert_int_equal(f.m.n, 1);
	assert_int_equal(got(&f, &s4), 1);
	fix_fini(&f);
}

/* Every queue group gets one copy; plain subs each get theirs. */
static void test_subject_queue_one_per_group(void **state)
{
	struct vbi_sub w[3], v[2], plain[2];
	struct fix f;
	size_t i, k, nw, nv;

	(void)state;
	fix_init(&f);
	for (i = 0; i < 3; i++)
		sub_add(&f, &w[i], "orders.new", "w");
	for (i = 0; i < 2; i++)
		sub_add(&f, &v[i], "orders.new", "v");
	sub_add(&f, &plain[0], "orders.new", NULL);
	sub_add(&f, &plain[1], "orders.*", NULL);
	for (k = 0; k < 12; k++) {
		assert_int_equal(match(&f, "orders.new"), 4);
		assert_int_equal(got(&f, &plain[0]), 1);
		assert_int_equal(got(&f, &plain[1]), 1);
		for (i = nw = 0; i < 3; i++)
			nw += got(&f, &w[i]);
		for (i = nv = 0; i < 2; i++)
			nv += got(&f, &v[i]);
		assert_int_equal(nw, 1);
		assert_int_equal(nv, 1);
	}
	assert_int_equal(match(&f, "orders.old"), 1);
	assert_int_equal(got(&f, &plain[1]), 1);
	fix_fini(&f);
}

/* Round robin: k members, k * 1000 messages, 1000 each, in rotation. */
static void test_subject_queue_round_robin_even(void **state)
{
	struct vbi_sub w[3];
	size_t count[3] = { 0 }, i, k, last = 3, who;
	struct fix f;

	(void)state;
	fix_init(&f);
	for (i = 0; i < 3; i++)
		sub_add(&f, &w[i], "jobs", "w");
	for (k = 0; k < 3000; k++) {
		assert_int_equal(match(&f, "jobs"), 1);
		who = (size_t)(f.m.subs[0] - w);
		assert_true(who < 3);
		/* A strict rotation: never the same member twice running. */
		assert_true(who != last);
		last = who;
		count[who]++;
	}
	for (i = 0; i < 3; i++)
		assert_int_equal(count[i], 1000);
	/* A member leaves: the other two share evenly. */
	assert_int_equal(vbi_sublist_remove(f.sl, &w[1]), VB_OK);
	memset(count, 0, sizeof(count));
	for (k = 0; k < 1000; k++) {
		assert_int_equal(match(&f, "jobs"), 1);
		count[f.m.subs[0] - w]++;
	}
	assert_int_equal(count[0], 500);
	assert_int_equal(count[1], 0);
	assert_int_equal(count[2], 500);
	fix_fini(&f);
}

/* match_all lists every member of every group and moves no rotation: the
 * matches around it see the same strict rotation as without it. */
static void test_subject_match_all(void **state)
{
	struct vbi_sub w[3], plain;
	struct fix f;
	size_t i, k, last, who, step = 0;

	(void)state;
	fix_init(&f);
	for (i = 0; i < 3; i++)
		sub_add(&f, &w[i], "jobs.*", "w");
	sub_add(&f, &plain, "jobs.>", NULL);
	assert_int_equal(match(&f, "jobs.a"), 2);
	last = (size_t)(f.m.subs[1] - w);
	if (f.m.subs[1] == &plain)
		last = (size_t)(f.m.subs[0] - w);
	for (k = 0; k < 30; k++) {
		for (i = 0; i < 5; i++) {
			assert_int_equal(
				vbi_sublist_match_all(f.sl, "jobs.a", 6, &f.m),
				VB_OK);
			assert_int_equal(f.m.n, 4);
			assert_int_equal(got(&f, &plain), 1);
			assert_int_equal(got(&f, &w[0]), 1);
			assert_int_equal(got(&f, &w[1]), 1);
			assert_int_equal(got(&f, &w[2]), 1);
		}
		assert_int_equal(match(&f, "jobs.a"), 2);
		who = f.m.subs[0] == &plain ? (size_t)(f.m.subs[1] - w) :
					      (size_t)(f.m.subs[0] - w);
		/* A strict rotation, in the trie's order: one constant step. */
		if (step == 0)
			step = (who + 3 - last) % 3;
		assert_int_not_equal(step, 0);
		assert_int_equal(who, (last + step) % 3);
		last = who;
	}
	assert_int_equal(vbi_sublist_match_all(f.sl, "jobs", 4, &f.m), VB_OK);
	assert_int_equal(f.m.n, 0);
	assert_int_equal(vbi_sublist_match_all(f.sl, "jobs.*", 6, &f.m),
			 VB_EINVAL);
	fix_fini(&f);
}

/* A group's members may subscribe with different patterns. */
static void test_subject_queue_across_patterns(void **state)
{
	struct vbi_sub star, full, lit, other, plain;
	size_t a[3] = { 0 }, k;
	struct fix f;

	(void)state;
	fix_init(&f);
	sub_add(&f, &star, "orders.*", "w");
	sub_add(&f, &full, "orders.>", "w");
	sub_add(&f, &lit, "orders.new", "w");
	sub_add(&f, &other, "orders.*", "v");
	sub_add(&f, &plain, "orders.>", NULL);
	for (k = 0; k < 3000; k++) {
		assert_int_equal(match(&f, "orders.new"), 3);
		assert_int_equal(got(&f, &plain), 1);
		assert_int_equal(got(&f, &other), 1);
		a[0] += got(&f, &star);
		a[1] += got(&f, &full);
		a[2] += got(&f, &lit);
	}
	assert_int_equal(a[0], 1000);
	assert_int_equal(a[1], 1000);
	assert_int_equal(a[2], 1000);
	/* Two members match "orders.old": they alternate. */
	memset(a, 0, sizeof(a));
	for (k = 0; k < 1000; k++) {
		assert_int_equal(match(&f, "orders.old"), 3);
		a[0] += got(&f, &star);
		a[1] += got(&f, &full);
		assert_int_equal(got(&f, &lit), 0);
	}
	assert_int_equal(a[0], 500);
	assert_int_equal(a[1], 500);
	/* Only "orders.>" matches three tokens: it gets every one. */
	for (k = 0; k < 10; k++) {
		assert_int_equal(match(&f, "orders.new.eu"), 2);
		assert_int_equal(got(&f, &full), 1);
		assert_int_equal(got(&f, &plain), 1);
	}
	fix_fini(&f);
}

static void test_subject_remove_stops_matching(void **state)
{
	struct vbi_sub a, b, q, never;
	struct fix f;

	(void)state;
	fix_init(&f);
	sub_add(&f, &a, "a.b", NULL);
	sub_add(&f, &b, "a.*", NULL);
	sub_add(&f, &q, "a.b", "w");
	assert_int_equal(match(&f, "a.b"), 3);
	assert_int_equal(vbi_sublist_remove(f.sl, &a), VB_OK);
	assert_int_equal(match(&f, "a.b"), 2);
	assert_int_equal(got(&f, &a), 0);
	assert_int_equal(vbi_sublist_remove(f.sl, &a), VB_EINVAL);
	assert_int_equal(vbi_sublist_remove(f.sl, &q), VB_OK);
	assert_int_equal(vbi_sublist_remove(f.sl, &q), VB_EINVAL);
	assert_int_equal(match(&f, "a.b"), 1);
	assert_int_equal(got(&f, &b), 1);
	vbi_sub_init(&never, "a.b", 3, NULL, 0, NULL);
	assert_int_equal(vbi_sublist_remove(f.sl, &never), VB_EINVAL);
	assert_int_equal(vbi_sublist_remove(f.sl, NULL), VB_EINVAL);
	assert_int_equal(vbi_sublist_remove(NULL, &b), VB_EINVAL);
	assert_int_equal(vbi_sublist_count(f.sl), 1);
	/* Removed, a sub may be inserted again. */
	assert_int_equal(vbi_sublist_insert(f.sl, &a), VB_OK);
	assert_int_equal(match(&f, "a.b"), 2);
	fix_fini(&f);
}

static void test_subject_remove_prunes(void **state)
{
	struct vbi_sub deep, side, wild, q1, q2;
	struct fix f;

	(void)state;
	fix_init(&f);
	sub_add(&f, &deep, "a.b.c.d", NULL);
	assert_int_equal(vbi_sublist_nodes(f.sl), 5);
	sub_add(&f, &side, "a.b.x", NULL);
	assert_int_equal(vbi_sublist_nodes(f.sl), 6);
	sub_add(&f, &wild, "a.*.>", NULL);
	assert_int_equal(vbi_sublist_nodes(f.sl), 8);
	sub_add(&f, &q1, "a.b", "w");
	sub_add(&f, &q2, "a.b", "v");
	assert_int_equal(vbi_sublist_nodes(f.sl), 8);
	/* "a.b" still holds a queue sub and a child: nothing goes. */
	assert_int_equal(vbi_sublist_remove(f.sl, &deep), VB_OK);
	assert_int_equal(vbi_sublist_nodes(f.sl), 6);
	assert_int_equal(vbi_sublist_remove(f.sl, &side), VB_OK);
	assert_int_equal(vbi_sublist_nodes(f.sl), 5);
	assert_int_equal(vbi_sublist_groups(f.sl), 2);
	assert_int_equal(vbi_sublist_remove(f.sl, &q1), VB_OK);
	assert_int_equal(vbi_sublist_groups(f.sl), 1);
	assert_int_equal(vbi_sublist_remove(f.sl, &q2), VB_OK);
	assert_int_equal(vbi_sublist_groups(f.sl), 0);
	assert_int_equal(vbi_sublist_nodes(f.sl), 4);
	assert_int_equal(vbi_sublist_remove(f.sl, &wild), VB_OK);
	assert_int_equal(vbi_sublist_nodes(f.sl), 1);
	assert_int_equal(vbi_sublist_count(f.sl), 0);
	assert_int_equal(match(&f, "a.b.c.d"), 0);
	fix_fini(&f);
}

/* Destroying a sublist frees it all but the subs, which it lets go. */
static void test_subject_destroy_releases_subs(void **state)
{
	struct vbi_sub s[4];
	struct fix f;
	size_t i;

	(void)state;
	fix_init(&f);
	sub_add(&f, &s[0], "a.b", NULL);
	sub_add(&f, &s[1], "a.*", "w");
	sub_add(&f, &s[2], "a.>", "w");
	sub_add(&f, &s[3], ">", "v");
	assert_int_equal(match(&f, "a.b"), 3);
	vbi_sublist_destroy(f.sl);
	for (i = 0; i < 4; i++)
		assert_null(s[i].link.sl);
	assert_int_equal(vbi_sublist_create(&f.sl), VB_OK);
	for (i = 0; i < 4; i++)
		assert_int_equal(vbi_sublist_insert(f.sl, &s[i]), VB_OK);
	assert_int_equal(match(&f, "a.b"), 3);
	fix_fini(&f);
}

#define MANY 100000u

/* MANY subs on "svc.<i>.data", their patterns kept beside them. */
struct many {
	struct vbi_sub *subs;
	char (*pats)[24];
};

static void many_init(struct many *mn)
{
	size_t i;

	mn->subs = calloc(MANY, sizeof(*mn->subs));
	mn->pats = calloc(MANY, sizeof(*mn->pats));
	assert_non_null(mn->subs);
	assert_non_null(mn->pats);
	for (i = 0; i < MANY; i++) {
		int n = snprintf(mn->pats[i], sizeof(mn->pats[i]),
				 "svc.%zu.data", i);

		/* Every 10th is in a queue group of its own, named as it. */
		vbi_sub_init(&mn->subs[i], mn->pats[i], (size_t)n,
			     i % 10 ? NULL : mn->pats[i],
			     i % 10 ? 0 : (size_t)n, NULL);
	}
}

static void many_fini(struct many *mn)
{
	free(mn->subs);
	free(mn->pats);
}

/* The @i-th sub to remove in @round: forward, backward, odd ones first. */
static size_t churn_order(size_t round, size_t i)
{
	if (round == 0)
		return i;
	if (round == 1)
		return MANY - 1 - i;
	return i < MANY / 2 ? 2 * i + 1 : 2 * (i - MANY / 2);
}

/* Insert and remove MANY subs a few times: memory returns to the root. */
static void test_subject_churn_prunes(void **state)
{
	struct many mn;
	struct fix f;
	size_t i, round;

	(void)state;
	fix_init(&f);
	many_init(&mn);
	for (round = 0; round < 3; round++) {
		for (i = 0; i < MANY; i++)
			assert_int_equal(vbi_sublist_insert(f.sl, &mn.subs[i]),
					 VB_OK);
		assert_int_equal(vbi_sublist_count(f.sl), MANY);
		assert_int_equal(vbi_sublist_nodes(f.sl), 2 + 2 * MANY);
		assert_int_equal(vbi_sublist_groups(f.sl), MANY / 10);
		for (i = 0; i < MANY; i++) {
			struct vbi_sub *sub = &mn.subs[churn_order(round, i)];

			assert_int_equal(vbi_sublist_remove(f.sl, sub), VB_OK);
		}
		assert_int_equal(vbi_sublist_count(f.sl), 0);
		assert_int_equal(vbi_sublist_nodes(f.sl), 1);
		assert_int_equal(vbi_sublist_groups(f.sl), 0);
	}
	many_fini(&mn);
	fix_fini(&f);
}

/* Matching among MANY subs finds exactly the right ones. */
static void test_subject_scale(void **state)
{
	static const char *const wild[] = {
		"svc.*.data", "svc.>", ">", "svc.42.*", "*.42.data", "*.*.*",
	};
	struct vbi_sub w[6], miss[3];
	struct many mn;
	struct fix f;
	size_t i, k;

	(void)state;
	fix_init(&f);
	many_init(&mn);
	for (i = 0; i < MANY; i++)
		assert_int_equal(vbi_sublist_insert(f.sl, &mn.subs[i]), VB_OK);
	for (i = 0; i < 6; i++)
		sub_add(&f, &w[i], wild[i], NULL);
	sub_add(&f, &miss[0], "svc.*", NULL);
	sub_add(&f, &miss[1], "svc.42.data.>", NULL);
	sub_add(&f, &miss[2], "*.43.data", NULL);
	for (k = 0; k < 1000; k++) {
		assert_int_equal(match(&f, "svc.42.data"), 7);
		assert_int_equal(got(&f, &mn.subs[42]), 1);
		for (i = 0; i < 6; i++)
			assert_int_equal(got(&f, &w[i]), 1);
	}
	/* Every 10th is a queue sub, alone in its group. */
	assert_int_equal(match(&f, "svc.99990.data"), 5);
	assert_int_equal(got(&f, &mn.subs[99990]), 1);
	assert_int_equal(match(&f, "svc.99999.data"), 5);
	assert_int_equal(got(&f, &mn.subs[99999]), 1);
	assert_int_equal(match(&f, "svc.100000.data"), 4);
	assert_int_equal(match(&f, "svc.42"), 3); /* svc.>, >, svc.* */
	assert_int_equal(match(&f, "other"), 1);
	for (i = 0; i < MANY; i++)
		assert_int_equal(vbi_sublist_remove(f.sl, &mn.subs[i]), VB_OK);
	assert_int_equal(match(&f, "svc.42.data"), 6);
	many_fini(&mn);
	fix_fini(&f);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

/* The next token of @s (from *@p), or false if none is left. */
static bool ref_token(const char **p, const char **tok, size_t *len)
{
	const char *dot;

	if (*p == NULL)
		return false;
	*tok = *p;
	dot = strchr(*p, '.');
	*len = dot ? (size_t)(dot - *p) : strlen(*p);
	*p = dot ? dot + 1 : NULL;
	return true;
}

/* The rules, naively: a token-by-token walk of pattern and subject. */
static bool ref_match(const char *pattern, const char *subject)
{
	const char *pp = pattern, *sp = subject, *pt, *st;
	size_t pl, sl;
	bool hp, hs;

	for (;;) {
		hp = ref_token(&pp, &pt, &pl);
		hs = ref_token(&sp, &st, &sl);
		if (hp && pl == 1 && pt[0] == '>')
			return hs;
		if (!hp || !hs)
			return hp == hs;
		if (!(pl == 1 && pt[0] == '*') &&
		    (pl != sl || memcmp(pt, st, pl) != 0))
			return false;
	}
}

#define DIFF_SUBS 3000u
#define DIFF_SUBJECTS 2000u

static void rnd_string(uint64_t *s, char *buf, bool pattern)
{
	static const char *const lits[] = { "a", "b", "c", "dd" };
	size_t ntok = 1 + rnd(s) % (pattern ? 4 : 5), i;
	uint64_t r;

	buf[0] = '\0';
	for (i = 0; i < ntok; i++) {
		r = rnd(s) % 100;
		if (i)
			strcat(buf, ".");
		if (pattern && r < 25)
			strcat(buf, "*");
		else if (pattern && r < 35 && i == ntok - 1)
			strcat(buf, ">");
		else
			strcat(buf, lits[r % (pattern ? 3 : 4)]);
	}
}

/*
 * Compare one match with the reference over the live subs: every plain
 * sub that matches exactly once, and one sub of each group that has a
 * matching member.
 */
static void diff_check(struct fix *f, const struct vbi_sub *subs,
		       char (*pats)[24], const bool *live, const char *subject)
{
	unsigned hits[DIFF_SUBS] = { 0 };
	size_t i, want = 0, groups[2] = { 0 }, group_got[2] = { 0 };
	size_t idx;

	match(f, subject);
	for (i = 0; i < f->m.n; i++) {
		idx = (size_t)(f->m.subs[i] - subs);
		assert_true(idx < DIFF_SUBS);
		hits[idx]++;
	}
	for (i = 0; i < DIFF_SUBS; i++) {
		bool should = live[i] && ref_match(pats[i], subject);
		const char *q = subs[i].queue;

		if (!should) {
			if (hits[i])
				fail_msg("\"%s\" got \"%s\"", subject, pats[i]);
			continue;
		}
		if (q == NULL) {
			if (hits[i] != 1)
				fail_msg("\"%s\" missed \"%s\"", subject,
					 pats[i]);
			want++;
		} else {
			groups[q[1] - '1']++;
			group_got[q[1] - '1'] += hits[i];
		}
	}
	for (i = 0; i < 2; i++) {
		assert_int_equal(group_got[i], groups[i] ? 1 : 0);
		want += groups[i] ? 1 : 0;
	}
	assert_int_equal(f->m.n, want);
}

/* The trie against the reference, on random patterns and subjects. */
static void test_subject_random_differential(void **state)
{
	struct vbi_sub *subs = calloc(DIFF_SUBS, sizeof(*subs));
	char(*pats)[24] = calloc(DIFF_SUBS, sizeof(*pats));
	char(*subjects)[24] = calloc(DIFF_SUBJECTS, sizeof(*subjects));
	bool *live = calloc(DIFF_SUBS, sizeof(*live));
	uint64_t seed = 0x5eed;
	struct fix f;
	size_t i;

	(void)state;
	assert_non_null(subs);
	assert_non_null(pats);
	assert_non_null(subjects);
	assert_non_null(live);
	fix_init(&f);
	for (i = 0; i < DIFF_SUBS; i++) {
		/* One in five in "q1", one in five in "q2". */
		const char *q = i % 5 == 0 ? "q1" : i % 5 == 1 ? "q2" : NULL;

		rnd_string(&seed, pats[i], true);
		assert_int_equal(vbi_pattern_check(pats[i], strlen(pats[i])),
				 VB_OK);
		vbi_sub_init(&subs[i], pats[i], strlen(pats[i]), q, q ? 2 : 0,
			     NULL);
		assert_int_equal(vbi_sublist_insert(f.sl, &subs[i]), VB_OK);
		live[i] = true;
	}
	for (i = 0; i < DIFF_SUBJECTS; i++) {
		rnd_string(&seed, subjects[i], false);
		diff_check(&f, subs, pats, live, subjects[i]);
	}
	/* Again: now from the match cache. */
	for (i = 0; i < DIFF_SUBJECTS; i++)
		diff_check(&f, subs, pats, live, subjects[i]);
	/* Remove a random half, and check again. */
	for (i = 0; i < DIFF_SUBS; i++) {
		if (rnd(&seed) % 2)
			continue;
		assert_int_equal(vbi_sublist_remove(f.sl, &subs[i]), VB_OK);
		live[i] = false;
	}
	for (i = 0; i < DIFF_SUBJECTS; i++)
		diff_check(&f, subs, pats, live, subjects[i]);
	for (i = 0; i < DIFF_SUBJECTS; i++)
		diff_check(&f, subs, pats, live, subjects[i]);
	for (i = 0; i < DIFF_SUBS; i++)
		if (live[i])
			assert_int_equal(vbi_sublist_remove(f.sl, &subs[i]),
					 VB_OK);
	assert_int_equal(vbi_sublist_nodes(f.sl), 1);
	fix_fini(&f);
	free(subs);
	free(pats);
	free(subjects);
	free(live);
}

/*
 * Insert under allocation failure: fail the k-th allocation and every one
 * after it, for k = 0, 1, ... until the insert succeeds.  Every failure is
 * VB_ENOMEM and changes nothing.  Enough siblings are inserted to make
 * uthash grow its bucket arrays, whose failure has its own rollback.
 */
static void test_subject_oom_insert_changes_nothing(void **state)
{
	enum { N = 3000 };
	struct vbi_sub *subs = calloc(N, sizeof(*subs));
	char(*pats)[24] = calloc(N, sizeof(*pats));
	size_t i, nodes, count, groups, failures = 0;
	struct fix f;
	long k;
	int rc;

	(void)state;
	assert_non_null(subs);
	assert_non_null(pats);
	fix_init(&f);
	for (i = 0; i < N; i++) {
		int n = snprintf(pats[i], sizeof(pats[i]), "%zu.%s", i,
				 i % 3 ? "x.y" : "*");
		/* Group names repeat, so some inserts create a group. */
		const char *q = i % 4 ? NULL : i % 8 ? "even" : "odd";

		vbi_sub_init(&subs[i], pats[i], (size_t)n, q, q ? strlen(q) : 0,
			     NULL);
		nodes = vbi_sublist_nodes(f.sl);
		count = vbi_sublist_count(f.sl);
		groups = vbi_sublist_groups(f.sl);
		for (k = 0;; k++) {
			alloc_budget = k;
			rc = vbi_sublist_insert(f.sl, &subs[i]);
			alloc_budget = -1;
			if (rc == VB_OK)
				break;
			assert_int_equal(rc, VB_ENOMEM);
			assert_int_equal(vbi_sublist_nodes(f.sl), nodes);
			assert_int_equal(vbi_sublist_count(f.sl), count);
			assert_int_equal(vbi_sublist_groups(f.sl), groups);
			assert_null(subs[i].link.sl);
			failures++;
		}
		assert_int_equal(vbi_sublist_count(f.sl), count + 1);
	}
	assert_true(failures >= N);
	/* The tables survived: everything still matches, and removes. */
	for (i = 0; i < N; i += 7) {
		assert_int_equal(vbi_sublist_match(f.sl, pats[i],
						   subs[i].pattern_len, &f.m),
				 i % 3 ? VB_OK : VB_EINVAL);
		if (i % 3)
			assert_int_equal(f.m.n, 1);
	}
	assert_int_equal(match(&f, "3.z"), 1);
	assert_int_equal(vbi_sublist_groups(f.sl), 2);
	for (i = 0; i < N; i++)
		assert_int_equal(vbi_sublist_remove(f.sl, &subs[i]), VB_OK);
	assert_int_equal(vbi_sublist_nodes(f.sl), 1);
	assert_int_equal(vbi_sublist_groups(f.sl), 0);
	fix_fini(&f);
	free(subs);
	free(pats);
}

/* Create under allocation failure. */
static void test_subject_oom_create(void **state)
{
	struct vbi_sublist *sl = NULL;
	long k;
	int rc;

	(void)state;
	for (k = 0;; k++) {
		alloc_budget = k;
		rc = vbi_sublist_create(&sl);
		alloc_budget = -1;
		if (rc == VB_OK)
			break;
		assert_int_equal(rc, VB_ENOMEM);
		assert_null(sl);
	}
	assert_true(k > 0);
	vbi_sublist_destroy(sl);
}

/*
 * 16 plain subs on "a.>" (filling a result's first allocation, so that the
 * pick itself must grow it) and 24 queue subs of "w" on "a.*".
 */
#define OOM_PLAIN 16u
#define OOM_SUBS 40u

static void oom_subs(struct vbi_sub *s)
{
	size_t i;

	for (i = 0; i < OOM_SUBS; i++)
		vbi_sub_init(&s[i], i < OOM_PLAIN ? "a.>" : "a.*", 3,
			     i < OOM_PLAIN ? NULL : "w", i < OOM_PLAIN ? 0 : 1,
			     NULL);
}

/* The queue member a fresh sublist picks first, for comparison. */
static size_t oom_first_pick(void)
{
	struct vbi_sub s[OOM_SUBS];
	struct fix f;
	size_t i, who = OOM_SUBS;

	oom_subs(s);
	fix_init(&f);
	for (i = 0; i < OOM_SUBS; i++)
		assert_int_equal(vbi_sublist_insert(f.sl, &s[i]), VB_OK);
	assert_int_equal(match(&f, "a.b"), OOM_PLAIN + 1);
	for (i = 0; i < f.m.n; i++)
		if (f.m.subs[i]->queue)
			who = (size_t)(f.m.subs[i] - s);
	fix_fini(&f);
	assert_true(who >= OOM_PLAIN && who < OOM_SUBS);
	return who;
}

/*
 * Matching under allocation failure: VB_ENOMEM, an empty result and no
 * rotation advanced.  Once the arrays have grown, matching allocates
 * nothing at all.
 */
static void test_subject_oom_match(void **state)
{
	struct vbi_sub s[OOM_SUBS];
	size_t i, want = oom_first_pick();
	struct fix f;
	long k;
	int rc;

	(void)state;
	oom_subs(s);
	fix_init(&f);
	for (i = 0; i < OOM_SUBS; i++)
		assert_int_equal(vbi_sublist_insert(f.sl, &s[i]), VB_OK);
	for (k = 0;; k++) {
		vbi_match_fini(&f.m);
		alloc_budget = k;
		rc = vbi_sublist_match(f.sl, "a.b", 3, &f.m);
		alloc_budget = -1;
		if (rc == VB_OK)
			break;
		assert_int_equal(rc, VB_ENOMEM);
		assert_int_equal(f.m.n, 0);
	}
	/* Seven allocations: subs, cands, cands grown; the match cache's
	 * entry, uthash's table and buckets (a failure there only leaves
	 * the subject uncached); subs grown to pick. */
	assert_int_equal(k, 7);
	assert_int_equal(f.m.n, OOM_PLAIN + 1);
	assert_int_equal(got(&f, &s[want]), 1);
	/* Warm: a thousand matches with every allocation failing. */
	alloc_budget = 0;
	for (k = 0; k < 1000; k++) {
		rc = vbi_sublist_match(f.sl, "a.b", 3, &f.m);
		if (rc == VB_OK && f.m.n != OOM_PLAIN + 1)
			rc = VB_EINVAL;
		if (rc != VB_OK)
			break;
	}
	alloc_budget = -1;
	assert_int_equal(rc, VB_OK);
	fix_fini(&f);
}

/*
 * The match cache: a result comes from it once a subject was matched, and
 * follows every insert and remove (a removed sub is never handed out);
 * queue rotation goes on through it.
 */
static void test_subject_cache_follows_changes(void **state)
{
	struct vbi_sub a, b, q1, q2;
	struct fix f;
	int k;

	(void)state;
	fix_init(&f);
	sub_add(&f, &a, "a.b", NULL);
	assert_int_equal(match(&f, "a.b"), 1);
	assert_int_equal(vbi_sublist_cached(f.sl), 1);
	assert_int_equal(match(&f, "a.b"), 1);
	assert_int_equal(got(&f, &a), 1);
	sub_add(&f, &b, "a.*", NULL);
	assert_int_equal(match(&f, "a.b"), 2);
	assert_int_equal(got(&f, &a) + got(&f, &b), 2);
	assert_int_equal(vbi_sublist_remove(f.sl, &a), VB_OK);
	assert_int_equal(match(&f, "a.b"), 1);
	assert_int_equal(got(&f, &b), 1);
	assert_int_equal(match(&f, "a.b"), 1);
	assert_int_equal(got(&f, &a), 0);
	/* Two members of one group: they alternate, cached or not. */
	sub_add(&f, &q1, "a.b", "w");
	sub_add(&f, &q2, "a.>", "w");
	for (k = 0; k < 6; k++) {
		assert_int_equal(match(&f, "a.b"), 2);
		assert_int_equal(got(&f, &b), 1);
		assert_int_equal(got(&f, k % 2 ? &q2 : &q1), 1);
	}
	assert_int_equal(vbi_sublist_remove(f.sl, &q1), VB_OK);
	for (k = 0; k < 3; k++) {
		assert_int_equal(match(&f, "a.b"), 2);
		assert_int_equal(got(&f, &q2), 1);
	}
	assert_int_equal(vbi_sublist_remove(f.sl, &q2), VB_OK);
	assert_int_equal(vbi_sublist_remove(f.sl, &b), VB_OK);
	assert_int_equal(match(&f, "a.b"), 0);
	fix_fini(&f);
}

/* The cache keeps at most 1,024 subjects, and no result of more than 256
 * subs; what it does not keep still matches. */
static void test_subject_cache_bounded(void **state)
{
	static struct vbi_sub many[300];
	struct vbi_sub one;
	char subject[32];
	struct fix f;
	size_t i;

	(void)state;
	fix_init(&f);
	sub_add(&f, &one, "s.*", NULL);
	for (i = 0; i < 3000; i++) {
		snprintf(subject, sizeof(subject), "s.%zu", i);
		assert_int_equal(match(&f, subject), 1);
		assert_true(vbi_sublist_cached(f.sl) <= 1024);
	}
	assert_true(vbi_sublist_cached(f.sl) > 0);
	for (i = 0; i < 300; i++)
		sub_add(&f, &many[i], "big", NULL);
	assert_int_equal(match(&f, "big"), 300);
	assert_int_equal(match(&f, "big"), 300);
	for (i = 0; i < 300; i++)
		assert_int_equal(got(&f, &many[i]), 1);
	for (i = 0; i < 300; i++)
		assert_int_equal(vbi_sublist_remove(f.sl, &many[i]), VB_OK);
	assert_int_equal(match(&f, "big"), 0);
	assert_int_equal(vbi_sublist_remove(f.sl, &one), VB_OK);
	fix_fini(&f);
}

static bool covers(const char *a, const char *r)
{
	return vbi_pattern_covers(a, strlen(a), r, strlen(r));
}

/* Permissions: which patterns an allowed pattern covers. */
static void test_subject_pattern_covers(void **state)
{
	(void)state;
	assert_true(covers("orders.>", "orders.new"));
	assert_true(covers("orders.>", "orders.*"));
	assert_true(covers("orders.>", "orders.eu.>"));
	assert_true(covers("orders.>", "orders.>"));
	assert_false(covers("orders.>", "orders"));
	assert_false(covers("orders.>", "other.x"));
	assert_true(covers("orders.*", "orders.new"));
	assert_true(covers("orders.*", "orders.*"));
	assert_false(covers("orders.*", "orders.>"));
	assert_false(covers("orders.*", "orders.a.b"));
	assert_false(covers("orders.*", "orders"));
	assert_true(covers(">", "a"));
	assert_true(covers(">", "a.*.>"));
	assert_true(covers("*.b", "a.b"));
	assert_false(covers("*.b", "a.c"));
	assert_true(covers("a.b", "a.b"));
	assert_false(covers("a.b", "a.*"));
	assert_false(covers("a.b", "a.bc"));
	assert_false(covers("a.bc", "a.b"));
	assert_false(covers("a.b.c", "a.b"));
	assert_false(covers("a.b", "a.b.c"));
	assert_true(covers("_INBOX.>", "_INBOX.4f2a.1"));
	/* Invalid input is covered by nothing and covers nothing. */
	assert_false(covers(">", "a..b"));
	assert_false(covers("a.>.b", "a.x.b"));
	assert_false(covers("", ""));
	assert_false(covers(">", ""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_subject_check_subjects),
		cmocka_unit_test(test_subject_check_patterns),
		cmocka_unit_test(test_subject_check_queues),
		cmocka_unit_test(test_subject_check_reads_only_len),
		cmocka_unit_test(test_subject_check_lengths),
		cmocka_unit_test(test_subject_match_table),
		cmocka_unit_test(test_subject_match_not_nul_terminated),
		cmocka_unit_test(test_subject_match_overlapping),
		cmocka_unit_test(test_subject_insert_rejects),
		cmocka_unit_test(test_subject_match_rejects),
		cmocka_unit_test(test_subject_match_deepest),
		cmocka_unit_test(test_subject_queue_one_per_group),
		cmocka_unit_test(test_subject_queue_round_robin_even),
		cmocka_unit_test(test_subject_queue_across_patterns),
		cmocka_unit_test(test_subject_match_all),
		cmocka_unit_test(test_subject_remove_stops_matching),
		cmocka_unit_test(test_subject_remove_prunes),
		cmocka_unit_test(test_subject_destroy_releases_subs),
		cmocka_unit_test(test_subject_churn_prunes),
		cmocka_unit_test(test_subject_scale),
		cmocka_unit_test(test_subject_random_differential),
		cmocka_unit_test(test_subject_oom_insert_changes_nothing),
		cmocka_unit_test(test_subject_oom_create),
		cmocka_unit_test(test_subject_oom_match),
		cmocka_unit_test(test_subject_cache_follows_changes),
		cmocka_unit_test(test_subject_cache_bounded),
		cmocka_unit_test(test_subject_pattern_covers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
