/*
 * Unit tests for a client's server pool (clients/lib/pool.c): parsing the
 * list, the order servers are tried in, passes, merging the URLs brokers
 * advertise; and the public edges that use it (vb_url_list_parse(),
 * vb_connect() refusing a bad list before any device is touched).
 */
#include "clients/lib/pool.h"

#include <verbus/verbus.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

/* The pool made from @list, which must parse. */
static struct vbi_pool *make(const char *list, unsigned flags, uint64_t seed)
{
	struct vbi_pool *p = NULL;
	char err[256] = "";

	if (vbi_pool_create(list, flags, seed, &p, err, sizeof(err)) != VB_OK)
		fail_msg("'%s': %s", list, err);
	return p;
}

/* Server @i of @p as a URL. */
static const char *at(const struct vbi_pool *p, size_t i)
{
	static char buf[VBI_POOL_URL_LEN];
	const struct vbi_srv *s = vbi_pool_get(p, i);

	assert_non_null(s);
	assert_int_equal(vbi_pool_url(&s->url, buf, sizeof(buf)), VB_OK);
	return buf;
}

static const char *cur(const struct vbi_pool *p)
{
	static char buf[VBI_POOL_URL_LEN];

	assert_int_equal(
		vbi_pool_url(&vbi_pool_current(p)->url, buf, sizeof(buf)),
		VB_OK);
	return buf;
}

static void test_pool_parse_list(void **state)
{
	struct vbi_pool *p;

	(void)state;
	p = make("tcp://a:7700,tcp://b:7701", 0, 0);
	assert_int_equal(vbi_pool_count(p), 2);
	assert_string_equal(at(p, 0), "tcp://a:7700");
	assert_string_equal(at(p, 1), "tcp://b:7701");
	assert_null(vbi_pool_get(p, 2));
	assert_string_equal(cur(p), "tcp://a:7700");
	assert_false(vbi_pool_get(p, 0)->discovered);
	assert_int_equal(vbi_pool_get(p, 0)->attempts, 0);
	vbi_pool_destroy(p);

	/* One URL is a list of one; no scheme is rdma's, as for one URL. */
	p = make("h", 0, 0);
	assert_int_equal(vbi_pool_count(p), 1);
	assert_string_equal(at(p, 0), "rdma://h:7700");
	vbi_pool_destroy(p);

	/* Spaces (and tabs) around the commas and at the ends. */
	p = make("  tcp://a:1 ,\ttls://b:2\t, rdma://[fe80::1%eth0]:3 ", 0, 0);
	assert_int_equal(vbi_pool_count(p), 3);
	assert_string_equal(at(p, 0), "tcp://a:1");
	assert_string_equal(at(p, 1), "tls://b:2");
	assert_string_equal(at(p, 2), "rdma://[fe80::1%eth0]:3");
	vbi_pool_destroy(p);
	vbi_pool_destroy(NULL);
}

static void test_pool_parse_duplicates(void **state)
{
	struct vbi_pool *p;

	(void)state;
	/* Same scheme, host without case and port: the first is kept. */
	p = make("tcp://a:1,TCP://A:1,tcp://b:1,tcp://a:01,tls://a:1,tcp://a",
		 0, 0);
	assert_int_equal(vbi_pool_count(p), 4);
	assert_string_equal(at(p, 0), "tcp://a:1");
	assert_string_equal(at(p, 1), "tcp://b:1");
	assert_string_equal(at(p, 2), "tls://a:1");
	assert_string_equal(at(p, 3), "tcp://a:7700");
	vbi_pool_destroy(p);
}

static void test_pool_parse_rejects(void **state)
{
	static const struct {
		const char *list;
		const char *why; /* a part of the reason */
	} bad[] = {
		{ "", "empty url" },
		{ "   ", "empty url" },
		{ "tcp://a:1,", "server 2 of the list is empty" },
		{ ",tcp://a:1", "server 1 of the list is empty" },
		{ "tcp://a:1,,tcp://b:1", "server 2 of the list is empty" },
		{ "tcp://a:1, ,tcp://b:1", "server 2 of the list is empty" },
		{ "udp://a:1", "unsupported scheme \"udp\"" },
		{ "tcp://a:1,udp://b:1",
		  "server 2 of the list (\"udp://b:1\"): unsupported scheme" },
		{ "tcp://a:1, tcp://b:x",
		  "server 2 of the list (\"tcp://b:x\"): "
		  "bad port" },
		{ "tcp://u@h:1,tcp://b:1", "server 1 of the list" },
		{ "tcp://a:1 tcp://b:1", "bad port" },
	};
	struct vbi_pool *p = (struct vbi_pool *)&p;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(vbi_pool_create(bad[i].list, 0, 0, &p, err,
						 sizeof(err)),
				 VB_EINVAL);
		if (!strstr(err, bad[i].why))
			fail_msg("'%s': got \"%s\", want \"%s\"", bad[i].list,
				 err, bad[i].why);
	}
	assert_int_equal(vbi_pool_create(NULL, 0, 0, &p, err, sizeof(err)),
			 VB_EINVAL);
	/* Written on success only. */
	assert_ptr_equal(p, (struct vbi_pool *)&p);
	/* The reason is cut, never overrun. */
	memset(err, 'x', sizeof(err));
	assert_int_equal(vbi_pool_create("udp://a", 0, 0, &p, err, 6),
			 VB_EINVAL);
	assert_string_equal(err, "unsup");
	assert_int_equal(err[6], 'x');
	assert_int_equal(vbi_pool_create("udp://a", 0, 0, &p, NULL, 0),
			 VB_EINVAL);
}

/* A list of @n servers tcp://h0:1 .. tcp://h<n-1>:1, then @dups of h0. */
static void list_of(char *buf, size_t len, int n, int dups)
{
	size_t k = 0;

	for (int i = 0; i < n + dups; i++)
		k += (size_t)snprintf(buf + k, len - k, "%stcp://h%d:1",
				      i ? "," : "", i < n ? i : 0);
}

static void test_pool_parse_cap(void **state)
{
	static char list[VBI_POOL_MAX * 2 * 16];
	struct vbi_pool *p;
	char err[256] = "";

	(void)state;
	list_of(list, sizeof(list), VBI_POOL_MAX, 10);
	p = make(list, 0, 0);
	assert_int_equal(vbi_pool_count(p), VBI_POOL_MAX);
	vbi_pool_destroy(p);
	list_of(list, sizeof(list), VBI_POOL_MAX + 1, 0);
	assert_int_equal(vbi_pool_create(list, 0, 0, &p, err, sizeof(err)),
			 VB_EINVAL);
	assert_non_null(strstr(err, "more than 64 servers"));
}

static void test_pool_failed_round_robin(void **state)
{
	struct vbi_pool *p = make("tcp://a:1,tcp://b:1,tcp://c:1", 0, 0);

	(void)state;
	/* Every server once, in order, then the pass is complete. */
	assert_false(vbi_pool_failed(p, VB_ECONNREFUSED, 10));
	assert_string_equal(cur(p), "tcp://b:1");
	assert_false(vbi_pool_failed(p, VB_ETIMEDOUT, 20));
	assert_string_equal(cur(p), "tcp://c:1");
	assert_true(vbi_pool_failed(p, VB_EUNREACH, 30));
	assert_string_equal(cur(p), "tcp://a:1");
	assert_int_equal(vbi_pool_get(p, 0)->attempts, 1);
	assert_int_equal(vbi_pool_get(p, 0)->last_err, VB_ECONNREFUSED);
	assert_int_equal(vbi_pool_get(p, 0)->last_fail_ns, 10);
	assert_int_equal(vbi_pool_get(p, 1)->last_err, VB_ETIMEDOUT);
	assert_int_equal(vbi_pool_get(p, 2)->last_fail_ns, 30);

	/* The next pass, starting where the last one ended. */
	assert_false(vbi_pool_failed(p, VB_ECONNREFUSED, 40));
	assert_string_equal(cur(p), "tcp://b:1");
	assert_int_equal(vbi_pool_get(p, 0)->attempts, 2);

	/* b opens: its failures are forgotten, the others' are not, and a
	 * pass starts afresh: its loss, then c and a. */
	vbi_pool_opened(p);
	assert_int_equal(vbi_pool_get(p, 1)->attempts, 0);
	assert_int_equal(vbi_pool_get(p, 0)->attempts, 2);
	assert_false(vbi_pool_failed(p, VB_ECLOSED, 50));
	assert_string_equal(cur(p), "tcp://c:1");
	assert_false(vbi_pool_failed(p, VB_ECONNREFUSED, 60));
	assert_true(vbi_pool_failed(p, VB_ECONNREFUSED, 70));
	assert_string_equal(cur(p), "tcp://b:1");
	vbi_pool_destroy(p);

	/* One server: every failure is a pass. */
	p = make("tcp://a:1", 0, 0);
	assert_true(vbi_pool_failed(p, VB_ECLOSED, 1));
	assert_true(vbi_pool_failed(p, VB_ECLOSED, 2));
	assert_string_equal(cur(p), "tcp://a:1");
	assert_int_equal(vbi_pool_get(p, 0)->attempts, 2);
	vbi_pool_destroy(p);
}

/* Whether @p holds tcp://h0:1 .. tcp://h<n-1>:1, each once. */
static void assert_permutation(const struct vbi_pool *p, int n)
{
	char want[32];
	int i, seen;

	assert_int_equal(vbi_pool_count(p), n);
	for (i = 0; i < n; i++) {
		snprintf(want, sizeof(want), "tcp://h%d:1", i);
		seen = 0;
		for (size_t j = 0; j < vbi_pool_count(p); j++)
			seen += strcmp(at(p, j), want) == 0;
		assert_int_equal(seen, 1);
	}
}

static void test_pool_shuffle(void **state)
{
	static char list[512];
	struct vbi_pool *p;
	int moved = 0;

	(void)state;
	list_of(list, sizeof(list), 8, 0);
	p = make(list, 0, 12345);
	for (int i = 0; i < 8; i++) {
		char want[32];

		snprintf(want, sizeof(want), "tcp://h%d:1", i);
		assert_string_equal(at(p, (size_t)i), want);
	}
	vbi_pool_destroy(p);
	/* Shuffled: a permutation, and not the same one for every seed. */
	for (uint64_t seed = 1; seed <= 8; seed++) {
		p = make(list, VBI_POOL_SHUFFLE, seed * 0x9e3779b97f4a7c15ull);
		assert_permutation(p, 8);
		moved += strcmp(at(p, 0), "tcp://h0:1") != 0;
		vbi_pool_destroy(p);
	}
	assert_true(moved > 0);
}

static void test_pool_merge_adds_and_drops(void **state)
{
	const char *first[] = { "tcp://c:3", "d:4", "tcp://A:1", "tcp://c:3" };
	const char *second[] = { "tcp://d:4", "tcp://e:5" };
	struct vbi_pool *p = make("tcp://a:1,tcp://b:2", 0, 0);
	struct vbi_pool_merge_result r;

	(void)state;
	/* New ones at the end, discovered; no scheme: the sender's; one the
	 * user gave (host without case) or twice in the list: once. */
	vbi_pool_merge(p, first, 4, "tcp", NULL, 0, 0, &r);
	assert_int_equal(r.added, 2);
	assert_int_equal(r.removed, 0);
	assert_int_equal(r.ignored, 0);
	assert_int_equal(vbi_pool_count(p), 4);
	assert_string_equal(at(p, 2), "tcp://c:3");
	assert_string_equal(at(p, 3), "tcp://d:4");
	assert_true(vbi_pool_get(p, 2)->discovered);
	assert_false(vbi_pool_get(p, 0)->discovered);

	/* c is no longer named: dropped; the user's never are. */
	vbi_pool_merge(p, second, 2, "tcp", NULL, 0, 0, &r);
	assert_int_equal(r.added, 1);
	assert_int_equal(r.removed, 1);
	assert_int_equal(vbi_pool_count(p), 4);
	assert_string_equal(at(p, 0), "tcp://a:1");
	assert_string_equal(at(p, 1), "tcp://b:2");
	assert_string_equal(at(p, 2), "tcp://d:4");
	assert_string_equal(at(p, 3), "tcp://e:5");

	/* An empty list forgets every discovered one. */
	vbi_pool_merge(p, NULL, 0, "tcp", NULL, 0, 0, &r);
	assert_int_equal(r.removed, 2);
	assert_int_equal(vbi_pool_count(p), 2);
	assert_string_equal(cur(p), "tcp://a:1");
	vbi_pool_destroy(p);
}

static void test_pool_merge_keeps_current(void **state)
{
	const char *adv[] = { "tcp://c:3", "tcp://d:4", "tcp://e:5" };
	const char *only_e[] = { "tcp://e:5" };
	struct vbi_pool *p = make("tcp://a:1,tcp://b:2", 0, 0);
	struct vbi_pool_merge_result r;

	(void)state;
	vbi_pool_merge(p, adv, 3, NULL, NULL, 0, 0, NULL);
	/* Fail over to d (a, b, c fail). */
	for (int i = 0; i < 3; i++)
		assert_false(vbi_pool_failed(p, VB_ECONNREFUSED, 1));
	assert_string_equal(cur(p), "tcp://d:4");
	vbi_pool_opened(p);
	/* d (current) stays though not named, and stays current; c goes,
	 * before it, so the index moves with it. */
	vbi_pool_merge(p, only_e, 1, NULL, NULL, 0, 0, &r);
	assert_int_equal(r.removed, 1);
	assert_int_equal(vbi_pool_count(p), 4);
	assert_string_equal(cur(p), "tcp://d:4");
	assert_string_equal(at(p, 2), "tcp://d:4");
	assert_string_equal(at(p, 3), "tcp://e:5");
	/* And the next after it is e, then a. */
	assert_false(vbi_pool_failed(p, VB_ECLOSED, 2));
	assert_string_equal(cur(p), "tcp://e:5");
	assert_false(vbi_pool_failed(p, VB_ECLOSED, 3));
	assert_string_equal(cur(p), "tcp://a:1");
	vbi_pool_destroy(p);
}

static void test_pool_merge_ignores(void **state)
{
	static char longhost[400];
	const char *adv[] = {
		"",
		NULL,
		"udp://x:1",
		"tcp://u@h:1",
		"tcp://h:99999",
		longhost,
		"tcp://ok:1",
		"tls://t:2",
		"x:3",
		"rdma://r:4",
	};
	struct vbi_pool *p = make("tls://a:1", 0, 0);
	struct vbi_pool_merge_result r;

	(void)state;
	memset(longhost, 'h', sizeof(longhost) - 1);
	/* With TLS options only tls:// (and, without a scheme, the
	 * sender's, here tls) are taken. */
	vbi_pool_merge(p, adv, sizeof(adv) / sizeof(adv[0]), "tls", "tls", 0, 0,
		       &r);
	assert_int_equal(r.added, 2);
	assert_int_equal(r.ignored, 8);
	assert_string_equal(at(p, 1), "tls://t:2");
	assert_string_equal(at(p, 2), "tls://x:3");
	vbi_pool_destroy(p);
}

static void test_pool_merge_cap(void **state)
{
	static char urls[VBI_POOL_MAX + 10][32];
	const char *adv[VBI_POOL_MAX + 10];
	struct vbi_pool *p = make("tcp://a:1,tcp://b:1", 0, 0);
	struct vbi_pool_merge_result r;
	size_t i, n = VBI_POOL_MAX + 10;

	(void)state;
	for (i = 0; i < n; i++) {
		snprintf(urls[i], sizeof(urls[i]), "tcp://h%zu:1", i);
		adv[i] = urls[i];
	}
	vbi_pool_merge(p, adv, n, NULL, NULL, 0, 0, &r);
	assert_int_equal(vbi_pool_count(p), VBI_POOL_MAX);
	assert_int_equal(r.added, VBI_POOL_MAX - 2);
	assert_int_equal(r.ignored, 12);
	/* Shuffled additions: a permutation of what was added. */
	vbi_pool_merge(p, NULL, 0, NULL, NULL, 0, 0, NULL);
	assert_int_equal(vbi_pool_count(p), 2);
	vbi_pool_merge(p, adv, 8, NULL, NULL, VBI_POOL_SHUFFLE, 77, &r);
	assert_int_equal(r.added, 8);
	assert_string_equal(at(p, 0), "tcp://a:1");
	assert_string_equal(at(p, 1), "tcp://b:1");
	vbi_pool_destroy(p);
}

static void test_pool_url(void **state)
{
	struct vbi_pool *p = make("[::1]:9,tcp://h:1", 0, 0);
	char buf[12];

	(void)state;
	assert_string_equal(at(p, 0), "rdma://[::1]:9");
	assert_int_equal(
		vbi_pool_url(&vbi_pool_get(p, 1)->url, buf, sizeof(buf)),
		VB_OK);
	assert_string_equal(buf, "tcp://h:1");
	assert_int_equal(
		vbi_pool_url(&vbi_pool_get(p, 0)->url, buf, sizeof(buf)),
		VB_ENOSPC);
	assert_true(vbi_pool_same(&vbi_pool_get(p, 1)->url,
				  &vbi_pool_get(p, 1)->url));
	assert_false(vbi_pool_same(&vbi_pool_get(p, 0)->url,
				   &vbi_pool_get(p, 1)->url));
	vbi_pool_destroy(p);
}

/* The public edges: the tool's check, and vb_connect's refusals, which
 * come before any transport or device is created. */
static void test_pool_public(void **state)
{
	struct vb_url u[2] = { 0 };
	struct vb_opts o = VB_OPTS_INIT;
	struct vb_conn *c = (struct vb_conn *)&c;
	char err[256] = "";

	(void)state;
	assert_int_equal(vb_url_list_parse("tcp://a:1, tls://b:2,tcp://a:1,"
					   "tcp://c:3",
					   u, 2, err, sizeof(err)),
			 3);
	assert_string_equal(u[0].host, "a");
	assert_string_equal(u[1].scheme, "tls");
	assert_int_equal(vb_url_list_parse("tcp://a:1", NULL, 0, NULL, 0), 1);
	assert_int_equal(
		vb_url_list_parse("tcp://a:1,", u, 2, err, sizeof(err)),
		VB_EINVAL);
	assert_int_equal(vb_url_list_parse("tcp://a:1", NULL, 1, NULL, 0),
			 VB_EINVAL);

	assert_int_equal(vb_connect("tcp://127.0.0.1:1,udp://h", NULL, &c),
			 VB_EINVAL);
	assert_int_equal(vb_connect("tcp://127.0.0.1:1,,tcp://h", NULL, &c),
			 VB_EINVAL);
	/* TLS options: every server tls://. */
	o.tls_ca = "/nonexistent";
	assert_int_equal(
		vb_connect("tls://127.0.0.1:1,tcp://127.0.0.1:2", &o, &c),
		VB_EINVAL);
	/* An unknown flag. */
	o.tls_ca = NULL;
	o.flags = 0x80000000u;
	assert_int_equal(vb_connect("tcp://127.0.0.1:1", &o, &c), VB_EINVAL);
	assert_ptr_equal(c, (struct vb_conn *)&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool_parse_list),
		cmocka_unit_test(test_pool_parse_duplicates),
		cmocka_unit_test(test_pool_parse_rejects),
		cmocka_unit_test(test_pool_parse_cap),
		cmocka_unit_test(test_pool_failed_round_robin),
		cmocka_unit_test(test_pool_shuffle),
		cmocka_unit_test(test_pool_merge_adds_and_drops),
		cmocka_unit_test(test_pool_merge_keeps_current),
		cmocka_unit_test(test_pool_merge_ignores),
		cmocka_unit_test(test_pool_merge_cap),
		cmocka_unit_test(test_pool_url),
		cmocka_unit_test(test_pool_public),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
