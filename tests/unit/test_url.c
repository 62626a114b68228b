/* Unit tests for broker URLs (core/url.c). */
#include "core/url.h"

#include <verbus/verbus.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

static void check(const char *s, const char *host, const char *port)
{
	struct vbi_url u;
	char err[128] = "";

	assert_int_equal(vbi_url_parse(s, &u, err, sizeof(err)), VB_OK);
	assert_string_equal(u.scheme, "rdma");
	assert_string_equal(u.host, host);
	assert_string_equal(u.port, port);
	assert_string_equal(err, "");
}

static void test_url_accepts(void **state)
{
	(void)state;
	check("rdma://10.0.0.1:7700", "10.0.0.1", "7700");
	check("rdma://10.0.0.1", "10.0.0.1", "7700");
	check("10.0.0.2:9", "10.0.0.2", "9");
	check("broker-1.example.com", "broker-1.example.com", "7700");
	check("rdma://[fe80::1%eth0]:65535", "fe80::1%eth0", "65535");
	check("rdma://[::1]", "::1", "7700");
	check("rdma://host:007", "host", "7");
}

static void refuse(const char *s, const char *why)
{
	struct vbi_url u;
	char err[128] = "";

	memset(&u, 0x5a, sizeof(u));
	assert_int_equal(vbi_url_parse(s, &u, err, sizeof(err)), VB_EINVAL);
	if (!strstr(err, why))
		fail_msg("\"%s\": reason \"%s\" lacks \"%s\"", s ? s : "(null)",
			 err, why);
	/* Untouched on failure. */
	assert_int_equal((unsigned char)u.host[0], 0x5a);
}

static void test_url_refuses(void **state)
{
	(void)state;
	refuse(NULL, "empty");
	refuse("", "empty");
	refuse("tcp://h:1", "unsupported scheme");
	refuse("rdma://", "no host");
	refuse("rdma://:7700", "no host");
	refuse("rdma://h:", "bad port");
	refuse("rdma://h:0", "bad port");
	refuse("rdma://h:65536", "bad port");
	refuse("rdma://h:-1", "bad port");
	refuse("rdma://h:77x", "bad port");
	refuse("rdma://h:7700/path", "bad port");
	refuse("rdma://h/path", "unexpected");
	refuse("rdma://[::1", "missing ']'");
	refuse("rdma://[::1]x", "unexpected");
	refuse("rdma://us er@h", "credentials");
	refuse("rdma://u:p@h:1", "credentials");
	refuse("rdma://h st:1", "bad character");
}

static void test_url_long_host(void **state)
{
	char s[400];

	(void)state;
	memset(s, 'a', sizeof(s));
	memcpy(s, "rdma://", 7);
	s[sizeof(s) - 1] = '\0';
	refuse(s, "too long");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_accepts),
		cmocka_unit_test(test_url_refuses),
		cmocka_unit_test(test_url_long_host),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
