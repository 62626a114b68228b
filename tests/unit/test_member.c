/*
 * Unit tests for a member node's data (daemon/member.c): what we write
 * reads back; what another member (or anyone who can write to ZooKeeper)
 * wrote is taken only when it is a usable route URL.
 */
#include "daemon/member.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

static void test_member_roundtrip(void **state)
{
	struct vbd_member_addrs a;
	char buf[2 * VBI_URL_MAX + 16];
	size_t n;

	(void)state;
	n = vbd_member_encode("rdma://10.0.0.1:7700", "rdma://10.0.0.1:7701",
			      buf, sizeof(buf));
	assert_int_equal(n, strlen(buf));
	assert_string_equal(buf, "client=rdma://10.0.0.1:7700\n"
				 "route=rdma://10.0.0.1:7701\n");
	assert_true(vbd_member_parse(buf, n, &a));
	assert_string_equal(a.client, "rdma://10.0.0.1:7700");
	assert_string_equal(a.route, "rdma://10.0.0.1:7701");
	/* Too small a buffer: nothing half-written is offered. */
	assert_int_equal(vbd_member_encode("tcp://a:1", "tcp://b:2", buf, 10),
			 0);
}

static void test_member_tolerant(void **state)
{
	static const char d[] = "version=2\nroute=tcp://127.0.0.1:9\n"
				"weight=7\nclient=tls://[::1]:7700";
	struct vbd_member_addrs a;

	(void)state;
	/* Unknown keys ignored, no final newline, any order. */
	assert_true(vbd_member_parse(d, sizeof(d) - 1, &a));
	assert_string_equal(a.route, "tcp://127.0.0.1:9");
	assert_string_equal(a.client, "tls://[::1]:7700");
	/* No client URL: still a member whose routes work. */
	assert_true(vbd_member_parse("route=tcp://10.1.2.3:1\n", 23, &a));
	assert_string_equal(a.client, "");
}

static void test_member_hostile(void **state)
{
	static const struct {
		const char *d;
		size_t len; /* 0: strlen */
	} bad[] = {
		{ "", 0 },
		{ "route", 0 },
		{ "route=", 0 },
		{ "route=\n", 0 },
		{ "routes=tcp://a:1\n", 0 },
		{ "route=tcp://a\n", 0 }, /* no port: nothing to dial */
		{ "route=gopher://a:1\n", 0 }, /* no such transport */
		{ "route=tcp://a:99999\n", 0 },
		{ "route=tcp://a b:1\n", 0 },
		{ "route=tcp://a:1\0tail\n", 20 }, /* a NUL inside */
		{ " route=tcp://a:1\n", 0 },
	};
	struct vbd_member_addrs a;
	char big[3 * VBI_URL_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = bad[i].len ? bad[i].len : strlen(bad[i].d);

		assert_false(vbd_member_parse(bad[i].d, len, &a));
		assert_string_equal(a.route, "");
	}
	/* A value as long as a URL may not be. */
	memcpy(big, "route=tcp://", 12);
	memset(big + 12, 'a', sizeof(big) - 12 - 3);
	memcpy(big + sizeof(big) - 3, ":1", 2);
	big[sizeof(big) - 1] = '\n';
	assert_false(vbd_member_parse(big, sizeof(big), &a));
	/* The first line of a key counts; a bad client URL is dropped. */
	assert_true(vbd_member_parse("route=tcp://a:1\nroute=tcp://evil:2\n"
				     "client=tcp://c\n",
				     49, &a));
	assert_string_equal(a.route, "tcp://a:1");
	assert_string_equal(a.client, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_member_roundtrip),
		cmocka_unit_test(test_member_tolerant),
		cmocka_unit_test(test_member_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
