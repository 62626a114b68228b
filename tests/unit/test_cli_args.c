/* Unit tests for the verbus tool's argument parsing (clients/cli/args.c). */
#include "cli/args.h"

#include <verbus/verbus.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_cli_args_u64_in_range(void **state)
{
	uint64_t v = 0;

	(void)state;
	assert_int_equal(cli_parse_u64("1", 1, 10, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(cli_parse_u64("10", 1, 10, &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(
		cli_parse_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);
}

/* What a person did not mean as a count: refused, output untouched. */
static void test_cli_args_u64_refuses(void **state)
{
	static const char *const bad[] = {
		"",
		" 1",
		"1 ",
		"+1",
		"-1",
		"1k",
		"0x10",
		"1.5",
		"abc",
		"0", /* below the minimum */
		"11", /* above the maximum */
		"18446744073709551616",
	};
	uint64_t v = 42;
	size_t i;

	(void)state;
	for (i = 0; i < N(bad); i++) {
		assert_int_equal(cli_parse_u64(bad[i], 1, 10, &v), -1);
		assert_int_equal(v, 42);
	}
	assert_int_equal(cli_parse_u64(NULL, 0, 10, &v), -1);
}

static void test_cli_args_sizes_with_suffixes(void **state)
{
	static const struct {
		const char *s;
		uint64_t v;
	} good[] = {
		{ "0", 0 },
		{ "64", 64 },
		{ "64b", 64 },
		{ "1K", 1024 },
		{ "1k", 1024 },
		{ "4KiB", 4096 },
		{ "4kib", 4096 },
		{ "1M", 1u << 20 },
		{ "2MiB", 2u << 20 },
		{ "1G", 1u << 30 },
		{ "16GiB", 16ull << 30 },
		/* KB, MB, GB: binary too, as in verbusd's file (core/parse.h) */
		{ "1KB", 1024 },
		{ "64kb", 64u << 10 },
		{ "8MB", 8u << 20 },
		{ "1gb", 1u << 30 },
		{ "512B", 512 },
	};
	uint64_t v;
	size_t i;

	(void)state;
	for (i = 0; i < N(good); i++) {
		assert_int_equal(cli_parse_size(good[i].s, 0, UINT64_MAX, &v),
				 0);
		assert_true(v == good[i].v);
	}
}

static void test_cli_args_sizes_refuses(void **state)
{
	static const char *const bad[] = {
		"",   "K",  "1 K", "1KiBs", "1Ki",	    "1.5K",
		"-1", "1T", "1Kx", "0x40",  "20000000000G", /* overflows u64 once multiplied */
	};
	uint64_t v = 7;
	size_t i;

	(void)state;
	for (i = 0; i < N(bad); i++) {
		assert_int_equal(cli_parse_size(bad[i], 0, UINT64_MAX, &v), -1);
		assert_int_equal(v, 7);
	}
	/* Bounds apply after the suffix. */
	assert_int_equal(cli_parse_size("2K", 0, 2047, &v), -1);
	assert_int_equal(cli_parse_size("8", 16, 100, &v), -1);
	assert_int_equal(cli_parse_size("2K", 0, 2048, &v), 0);
	assert_int_equal(v, 2048);
}

static void test_cli_args_size_lists(void **state)
{
	uint64_t v[4];
	size_t n = 99;

	(void)state;
	assert_int_equal(
		cli_parse_size_list("64,1K,65536", 16, 1u << 20, v, N(v), &n),
		0);
	assert_int_equal(n, 3);
	assert_int_equal(v[0], 64);
	assert_int_equal(v[1], 1024);
	assert_int_equal(v[2], 65536);
	assert_int_equal(cli_parse_size_list("32", 16, 64, v, N(v), &n), 0);
	assert_int_equal(n, 1);

	n = 99;
	/* Empty items, a bad item, one below the minimum, too many. */
	assert_int_equal(cli_parse_size_list("", 1, 64, v, N(v), &n), -1);
	assert_int_equal(cli_parse_size_list("64,", 1, 64, v, N(v), &n), -1);
	assert_int_equal(cli_parse_size_list(",64", 1, 64, v, N(v), &n), -1);
	assert_int_equal(cli_parse_size_list("1,,2", 1, 64, v, N(v), &n), -1);
	assert_int_equal(cli_parse_size_list("1,x", 1, 64, v, N(v), &n), -1);
	assert_int_equal(cli_parse_size_list("8,64", 16, 64, v, N(v), &n), -1);
	assert_int_equal(cli_parse_size_list("1,2,3,4,5", 1, 64, v, N(v), &n),
			 -1);
	assert_int_equal(n, 99);
}

static void test_cli_args_durations(void **state)
{
	int ms = -1;

	(void)state;
	assert_int_equal(cli_parse_ms("250", 1, &ms), 0);
	assert_int_equal(ms, 250);
	assert_int_equal(cli_parse_ms("250ms", 1, &ms), 0);
	assert_int_equal(ms, 250);
	assert_int_equal(cli_parse_ms("2s", 1, &ms), 0);
	assert_int_equal(ms, 2000);
	assert_int_equal(cli_parse_ms("3m", 1, &ms), 0);
	assert_int_equal(ms, 180000);
	assert_int_equal(cli_parse_ms("0", 0, &ms), 0);
	assert_int_equal(ms, 0);

	ms = 5;
	assert_int_equal(cli_parse_ms("0", 1, &ms), -1); /* below min */
	assert_int_equal(cli_parse_ms("", 0, &ms), -1);
	assert_int_equal(cli_parse_ms("1h", 0, &ms), -1);
	assert_int_equal(cli_parse_ms("1.5s", 0, &ms), -1);
	assert_int_equal(cli_parse_ms("-1", 0, &ms), -1);
	assert_int_equal(cli_parse_ms("2147483648", 0, &ms), -1);
	assert_int_equal(cli_parse_ms("3000000s", 0, &ms), -1);
	assert_int_equal(ms, 5);
}

static void test_cli_args_urls(void **state)
{
	struct vb_url u;
	char err[160];

	(void)state;
	assert_int_equal(
		cli_parse_url("rdma://10.0.0.1:7700", &u, err, sizeof(err)), 0);
	assert_string_equal(u.scheme, "rdma");
	assert_string_equal(u.host, "10.0.0.1");
	assert_string_equal(u.port, "7700");

	/* Port and scheme may be left out. */
	assert_int_equal(
		cli_parse_url("rdma://broker-1.example", &u, err, sizeof(err)),
		0);
	assert_string_equal(u.host, "broker-1.example");
	assert_string_equal(u.port, "7700");
	assert_int_equal(cli_parse_url("10.0.0.2:1", &u, err, sizeof(err)), 0);
	assert_string_equal(u.scheme, "rdma");
	assert_string_equal(u.host, "10.0.0.2");
	assert_string_equal(u.port, "1");
	/* The scheme without case. */
	assert_int_equal(cli_parse_url("RDMA://h", &u, err, sizeof(err)), 0);
	assert_string_equal(u.scheme, "rdma");

	assert_int_equal(cli_parse_url("rdma://[fe80::1%vbeth1]:65535", &u, err,
				       sizeof(err)),
			 0);
	assert_string_equal(u.host, "fe80::1%vbeth1");
	assert_string_equal(u.port, "65535");
}

/* Each bad URL is refused with a reason that names what is wrong. */
static void test_cli_args_bad_urls(void **state)
{
	static const struct {
		const char *url;
		const char *reason; /* a part of the message */
	} bad[] = {
		{ "", "empty" },
		{ "http://10.0.0.1:7700",
		  "unsupported scheme \"http\" (this build has: rdma, tcp, tls)" },
		{ "UDP://host", "unsupported scheme \"udp\"" },
		{ "1rdma://host", "bad scheme" },
		{ "rdma://", "no host" },
		{ "rdma://:7700", "no host" },
		{ "rdma://host:0", "bad port \"0\"" },
		{ "rdma://host:65536", "bad port" },
		{ "rdma://host:77x", "bad port" },
		{ "rdma://host:", "bad port" },
		{ "rdma://host/path", "unexpected \"/path\"" },
		{ "rdma://user:pw@host", "credentials" },
		{ "rdma://ho st", "bad character ' '" },
		{ "rdma://[fe80::1", "missing ']'" },
		{ "rdma://[fe80::1]x", "unexpected \"x\"" },
	};
	struct vb_url u = { .host = "untouched", .port = "1" };
	char err[160];
	size_t i;

	(void)state;
	for (i = 0; i < N(bad); i++) {
		err[0] = '\0';
		assert_int_equal(
			cli_parse_url(bad[i].url, &u, err, sizeof(err)), -1);
		if (strstr(err, bad[i].reason) == NULL)
			fail_msg("'%s': got \"%s\", want \"%s\"", bad[i].url,
				 err, bad[i].reason);
	}
	assert_string_equal(u.host, "untouched");
	assert_int_equal(cli_parse_url(NULL, &u, err, sizeof(err)), -1);
	/* A too-small buffer is cut, never overrun. */
	assert_int_equal(cli_parse_url("http://x", &u, err, 4), -1);
	assert_int_equal(strlen(err), 3);
}

/* -s takes a list: the first server, how many, how many over TLS. */
static void test_cli_args_server_lists(void **state)
{
	struct vb_url u = { .host = "untouched" };
	size_t n = 99, ntls = 99;
	char err[256];

	(void)state;
	assert_int_equal(
		cli_parse_servers("rdma://h", &u, &n, &ntls, err, sizeof(err)),
		0);
	assert_string_equal(u.host, "h");
	assert_int_equal(n, 1);
	assert_int_equal(ntls, 0);
	assert_int_equal(cli_parse_servers("tls://a:1, tcp://b:2,tls://A:1,"
					   "tls://c",
					   &u, &n, &ntls, err, sizeof(err)),
			 0);
	assert_string_equal(u.scheme, "tls");
	assert_string_equal(u.host, "a");
	assert_int_equal(n, 3);
	assert_int_equal(ntls, 2);

	u.host[0] = 'x';
	assert_int_equal(cli_parse_servers("tcp://a:1,", &u, &n, &ntls, err,
					   sizeof(err)),
			 -1);
	assert_string_equal(err, "server 2 of the list is empty");
	assert_int_equal(cli_parse_servers("tcp://a:1,http://b", &u, &n, &ntls,
					   err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "server 2 of the list (\"http://b\"): "
				    "unsupported scheme \"http\""));
	assert_int_equal(cli_parse_servers("", &u, &n, &ntls, err, sizeof(err)),
			 -1);
	assert_int_equal(u.host[0], 'x');
	assert_int_equal(n, 3);
}

static void test_cli_args_monitor_urls(void **state)
{
	struct vb_url srv;
	char buf[128], err[160];

	(void)state;
	assert_int_equal(
		cli_parse_url("rdma://10.0.0.1:7700", &srv, err, sizeof(err)),
		0);
	/* Default: the broker's host, port 8222. */
	assert_int_equal(
		cli_monitor_url(NULL, &srv, buf, sizeof(buf), err, sizeof(err)),
		0);
	assert_string_equal(buf, "http://10.0.0.1:8222");
	assert_int_equal(cli_monitor_url("127.0.0.1:9000", &srv, buf,
					 sizeof(buf), err, sizeof(err)),
			 0);
	assert_string_equal(buf, "http://127.0.0.1:9000");
	assert_int_equal(cli_monitor_url("http://mon/", &srv, buf, sizeof(buf),
					 err, sizeof(err)),
			 0);
	assert_string_equal(buf, "http://mon:8222");
	assert_int_equal(cli_parse_url("rdma://[::1]", &srv, err, sizeof(err)),
			 0);
	assert_int_equal(
		cli_monitor_url(NULL, &srv, buf, sizeof(buf), err, sizeof(err)),
		0);
	assert_string_equal(buf, "http://[::1]:8222");

	assert_int_equal(cli_monitor_url("https://mon", &srv, buf, sizeof(buf),
					 err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "unsupported scheme 'https://'"));
	assert_int_equal(cli_monitor_url("HTTP://[fe80::1%vbeth1]:9/", &srv,
					 buf, sizeof(buf), err, sizeof(err)),
			 0);
	assert_string_equal(buf, "http://[fe80::1%vbeth1]:9");
	/* A port that happens to be the broker's default is kept. */
	assert_int_equal(cli_monitor_url("mon:7700", &srv, buf, sizeof(buf),
					 err, sizeof(err)),
			 0);
	assert_string_equal(buf, "http://mon:7700");
	assert_int_equal(cli_monitor_url("http://mon/varz", &srv, buf,
					 sizeof(buf), err, sizeof(err)),
			 -1);
	assert_int_equal(cli_monitor_url("mon:x", &srv, buf, sizeof(buf), err,
					 sizeof(err)),
			 -1);
	assert_int_equal(
		cli_monitor_url("", &srv, buf, sizeof(buf), err, sizeof(err)),
		-1);
	/* No room for the result. */
	assert_int_equal(cli_monitor_url(NULL, &srv, buf, 10, err, sizeof(err)),
			 -1);
}

static void test_cli_args_formats(void **state)
{
	enum cli_format f = CLI_FMT_TABLE;

	(void)state;
	assert_int_equal(cli_parse_format("csv", &f), 0);
	assert_int_equal(f, CLI_FMT_CSV);
	assert_int_equal(cli_parse_format("json", &f), 0);
	assert_int_equal(f, CLI_FMT_JSON);
	assert_int_equal(cli_parse_format("table", &f), 0);
	assert_int_equal(f, CLI_FMT_TABLE);
	assert_int_equal(cli_parse_format("JSON", &f), -1);
	assert_int_equal(cli_parse_format("", &f), -1);
	assert_int_equal(cli_parse_format(NULL, &f), -1);
	assert_int_equal(f, CLI_FMT_TABLE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cli_args_u64_in_range),
		cmocka_unit_test(test_cli_args_u64_refuses),
		cmocka_unit_test(test_cli_args_sizes_with_suffixes),
		cmocka_unit_test(test_cli_args_sizes_refuses),
		cmocka_unit_test(test_cli_args_size_lists),
		cmocka_unit_test(test_cli_args_durations),
		cmocka_unit_test(test_cli_args_urls),
		cmocka_unit_test(test_cli_args_bad_urls),
		cmocka_unit_test(test_cli_args_server_lists),
		cmocka_unit_test(test_cli_args_monitor_urls),
		cmocka_unit_test(test_cli_args_formats),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
