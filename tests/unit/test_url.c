/* Unit tests for broker URLs (core/url.c). */
#include "core/url.h"

#include <verbus/verbus.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

/* @s parses to @scheme, @host and @port. */
static void check_as(const char *s, const char *scheme, const char *host,
		     const char *port)
{
	struct vb_url u;
	char err[128] = "";

	assert_int_equal(vbi_url_parse(s, &u, err, sizeof(err)), VB_OK);
	assert_string_equal(u.scheme, scheme);
	assert_string_equal(u.host, host);
	assert_string_equal(u.port, port);
	assert_int_equal(u.has_scheme, strstr(s, "://") != NULL);
	assert_string_equal(err, "");
}

static void check(const char *s, const char *host, const char *port)
{
	check_as(s, "rdma", host, port);
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
	check("[fe80::1%vbeth1]", "fe80::1%vbeth1", "7700");
	check("[fe80::1%eth0.100]:1", "fe80::1%eth0.100", "1");
}

/* Any well-formed scheme parses, lowercased: the transport layer decides
 * which it serves. */
static void test_url_schemes(void **state)
{
	struct vb_url u;
	char err[128];

	(void)state;
	check_as("tcp://h:1", "tcp", "h", "1");
	check_as("RDMA://h", "rdma", "h", "7700");
	check_as("Rdma://[::1]:9", "rdma", "::1", "9");
	check_as("tls+v1.3-x://h", "tls+v1.3-x", "h", "7700");
	check_as("abcdefghijklmno://h", "abcdefghijklmno", "h", "7700");
	check_as("z9://h", "z9", "h", "7700");

	/* Whether the URL named its port and scheme. */
	assert_int_equal(vbi_url_parse("h:7700", &u, err, sizeof(err)), VB_OK);
	assert_int_equal(u.has_port, 1);
	assert_int_equal(u.has_scheme, 0);
	assert_int_equal(vbi_url_parse("rdma://h", &u, err, sizeof(err)),
			 VB_OK);
	assert_int_equal(u.has_port, 0);
	assert_int_equal(u.has_scheme, 1);
}

static void refuse(const char *s, const char *why)
{
	struct vb_url u;
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
	refuse("://h:1", "no scheme");
	refuse("1rdma://h", "bad scheme \"1rdma\"");
	refuse("+rdma://h", "bad scheme");
	refuse("rd_ma://h", "bad scheme");
	refuse("rd ma://h", "bad scheme");
	refuse("abcdefghijklmnop://h", "too long (at most 15");
	refuse("h:1://x", "bad scheme");
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
	refuse("rdma://h st:1", "bad character ' ' in host name");
	refuse("rdma://[fe80::1%et h0]", "bad character ' ' in ipv6");
	refuse("RDMA://u@h", "credentials");
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
		cmocka_unit_test(test_url_schemes),
		cmocka_unit_test(test_url_refuses),
		cmocka_unit_test(test_url_long_host),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
