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
	refuse("rdma://fe80::1:7700", "an ipv6 address must be in brackets");
	refuse("rdma://h:1:2", "bad port \"1:2\"");
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

/* @s (all of it) as HOST[:PORT] under @flags gives @host and @port. */
static void hp_ok(const char *s, unsigned flags, const char *host,
		  int port /* -1: none given */)
{
	struct vbi_hostport hp;
	char err[128] = "";

	if (vbi_hostport_parse(s, strlen(s), flags, &hp, err, sizeof(err)))
		fail_msg("\"%s\" (flags %u): %s", s, flags, err);
	assert_string_equal(hp.host, host);
	assert_int_equal(hp.has_port, port >= 0);
	assert_int_equal(hp.port, port >= 0 ? port : 0);
	assert_int_equal(hp.bracketed, s[0] == '[');
}

static void hp_bad(const char *s, unsigned flags, const char *why)
{
	struct vbi_hostport hp;
	char err[128] = "";

	memset(&hp, 0x5a, sizeof(hp));
	assert_int_equal(vbi_hostport_parse(s, s ? strlen(s) : 0, flags, &hp,
					    err, sizeof(err)),
			 VB_EINVAL);
	if (!strstr(err, why))
		fail_msg("\"%s\" (flags %u): reason \"%s\" lacks \"%s\"",
			 s ? s : "(null)", flags, err, why);
	assert_int_equal((unsigned char)hp.host[0], 0x5a); /* untouched */
}

/* The one host:port reader: URLs, monitor.listen, ZooKeeper hosts. */
static void test_url_hostport(void **state)
{
	const unsigned bare = VBI_HP_BARE_V6, need = VBI_HP_NEED_PORT,
		       zero = VBI_HP_PORT_ZERO;
	struct vbi_hostport hp;
	char err[128];

	(void)state;
	hp_ok("h", 0, "h", -1);
	hp_ok("h:1", 0, "h", 1);
	hp_ok("10.0.0.1:65535", need, "10.0.0.1", 65535);
	hp_ok("[::1]", 0, "::1", -1);
	hp_ok("[fe80::1%eth0]:7700", need, "fe80::1%eth0", 7700);
	hp_ok("h:0", zero, "h", 0);
	hp_ok("h:00080", 0, "h", 80);
	/* A bare IPv6 address: whole, without a port, where allowed. */
	hp_ok("::", bare, "::", -1);
	hp_ok("fe80::1%eth0", bare, "fe80::1%eth0", -1);
	hp_ok("::ffff:10.0.0.1", bare, "::ffff:10.0.0.1", -1);
	hp_ok("h:1", bare, "h", 1); /* one ':' is a port */
	hp_bad("::1", 0, "an ipv6 address must be in brackets ([ADDR]:PORT)");
	hp_bad("fe80::1:7700", need, "must be in brackets");
	hp_bad("::1", bare | need, "no port");
	/* Not IPv6 (not hex): a host and a bad port, as before. */
	hp_bad("host:1:2", bare, "bad port \"1:2\"");
	hp_bad("h:0", 0, "bad port \"0\" (1-65535 expected)");
	hp_bad("h:65536", zero, "bad port \"65536\" (0-65535 expected)");
	hp_bad("h:", 0, "bad port \"\"");
	hp_bad("h:+1", 0, "bad port");
	hp_bad("h: 1", 0, "bad port");
	hp_bad("h:123456789012345678901234567890123456789", 0,
	       "bad port \"12345678901234567890123456789012...\"");
	hp_bad("h", need, "no port (HOST:PORT)");
	hp_bad("[::1]", need, "no port ([ADDR]:PORT)");
	hp_bad("", 0, "no host");
	hp_bad(":1", 0, "no host");
	hp_bad("[]:1", 0, "no host");
	hp_bad(NULL, 0, "no host");
	hp_bad("[::1", 0, "missing ']'");
	hp_bad("[::1]:", 0, "bad port");
	hp_bad("[::1]x", 0, "unexpected \"x\" after the host");
	hp_bad("h/x", 0, "unexpected \"/x\" after the host");
	hp_bad("a b:1", 0, "bad character ' ' in host name");
	hp_bad("a\nb", 0, "bad character 0x0a in host name");
	hp_bad("[::1\x1b]", 0, "bad character 0x1b in ipv6 address");
	hp_bad("a@b", 0, "bad character '@'");

	/* @len bounds it: no NUL needed, nothing read beyond. */
	assert_int_equal(
		vbi_hostport_parse("h:12,x", 4, 0, &hp, err, sizeof(err)),
		VB_OK);
	assert_string_equal(hp.host, "h");
	assert_int_equal(hp.port, 12);
	assert_int_equal(
		vbi_hostport_parse("[::1]:9/v", 7, 0, &hp, err, sizeof(err)),
		VB_OK);
	assert_string_equal(hp.host, "::1");
	assert_int_equal(hp.port, 9);
	/* A NULL error buffer of size 0 is fine. */
	assert_int_equal(vbi_hostport_parse("h:x", 3, 0, &hp, NULL, 0),
			 VB_EINVAL);
}

/* listen's forms through vbi_url_parse_ex: a bare IPv6 only without a
 * scheme. */
static void test_url_bare_v6(void **state)
{
	struct vb_url u;
	char err[128];

	(void)state;
	assert_int_equal(
		vbi_url_parse_ex("::", VBI_HP_BARE_V6, &u, err, sizeof(err)),
		VB_OK);
	assert_string_equal(u.host, "::");
	assert_string_equal(u.port, "7700");
	assert_int_equal(u.has_port, 0);
	assert_int_equal(vbi_url_parse_ex("rdma://::", VBI_HP_BARE_V6, &u, err,
					  sizeof(err)),
			 VB_EINVAL);
	assert_non_null(strstr(err, "must be in brackets"));
	assert_int_equal(vbi_url_parse("::", &u, err, sizeof(err)), VB_EINVAL);
	assert_non_null(strstr(err, "must be in brackets"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_accepts),
		cmocka_unit_test(test_url_schemes),
		cmocka_unit_test(test_url_refuses),
		cmocka_unit_test(test_url_long_host),
		cmocka_unit_test(test_url_hostport),
		cmocka_unit_test(test_url_bare_v6),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
