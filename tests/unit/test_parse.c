/* Unit tests for strict number, size and name parsing (core/parse.c). */
#include "core/parse.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

static void test_parse_accepts_plain_decimals(void **state)
{
	uint64_t v = 0;

	(void)state;
	assert_true(vbi_parse_u64("0", &v));
	assert_int_equal(v, 0);
	assert_true(vbi_parse_u64("7470", &v));
	assert_int_equal(v, 7470);
	assert_true(vbi_parse_u64("18446744073709551615", &v));
	assert_true(v == UINT64_MAX);
	assert_true(vbi_parse_u64("007", &v));
	assert_int_equal(v, 7);
}

/* Everything strtoull would let through and a person did not mean. */
static void test_parse_refuses_the_rest(void **state)
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
		"1e3",
		"abc",
		"\t2",
		"18446744073709551616",
		"99999999999999999999",
	};
	uint64_t v = 42;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(vbi_parse_u64(bad[i], &v));
		assert_int_equal(v, 42); /* untouched */
	}
	assert_false(vbi_parse_u64(NULL, &v));
}

/* The one size syntax: verbusd's file and flags, the verbus tool. */
static void test_parse_sizes(void **state)
{
	static const struct {
		const char *s;
		uint64_t v;
	} ok[] = {
		{ "0", 0 },
		{ "4096", 4096 },
		{ "100b", 100 },
		{ "100B", 100 },
		{ "1K", 1024 },
		{ "1k", 1024 },
		{ "64KB", 65536 },
		{ "64kb", 65536 },
		{ "64KiB", 65536 },
		{ "64kib", 65536 },
		{ "64KIB", 65536 },
		{ "1M", 1u << 20 },
		{ "1MB", 1u << 20 },
		{ "1MiB", 1u << 20 },
		{ "8mib", 8u << 20 },
		{ "2G", 2ull << 30 },
		{ "2GB", 2ull << 30 },
		{ "2GiB", 2ull << 30 },
		{ "007K", 7u << 10 },
		{ "17179869183G", 17179869183ull << 30 }, /* just fits */
		{ "18446744073709551615", UINT64_MAX },
		{ "18446744073709551615B", UINT64_MAX },
	};
	static const struct {
		const char *s;
		const char *why; /* a part of the reason */
	} bad[] = {
		{ "", "empty" },
		{ "K", "not a number" },
		{ "-1K", "not a number" },
		{ "+1", "not a number" },
		{ " 1", "not a number" },
		{ "1 K", "unknown unit" },
		{ "1K ", "unknown unit" },
		{ "1.5M", "unknown unit" },
		{ "1T", "unknown unit" },
		{ "1KiBs", "unknown unit" },
		{ "1Ki", "unknown unit" },
		{ "1bytes", "unknown unit" },
		{ "0x10", "unknown unit" },
		{ "1e3", "unknown unit" },
		{ "17179869184G", "too large" },
		{ "18014398509481984K", "too large" },
		{ "18446744073709551616", "too large" },
		{ "99999999999999999999999", "too large" },
	};
	const char *why;
	uint64_t v;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		why = NULL;
		if (!vbi_parse_size(ok[i].s, &v, &why))
			fail_msg("\"%s\" refused: %s", ok[i].s, why);
		if (v != ok[i].v)
			fail_msg("\"%s\" gave %llu", ok[i].s,
				 (unsigned long long)v);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 42;
		why = NULL;
		if (vbi_parse_size(bad[i].s, &v, &why))
			fail_msg("\"%s\" accepted", bad[i].s);
		assert_int_equal(v, 42); /* untouched */
		if (!why || !strstr(why, bad[i].why))
			fail_msg("\"%s\": \"%s\" lacks \"%s\"", bad[i].s,
				 why ? why : "(null)", bad[i].why);
	}
	assert_false(vbi_parse_size(NULL, &v, NULL));
	/* The unit list is in the reason. */
	assert_false(vbi_parse_size("3X", &v, &why));
	assert_non_null(strstr(why, VBI_SIZE_UNITS));
}

/* Sizes for people, in messages. */
static void test_parse_size_str(void **state)
{
	char b[32];

	(void)state;
	assert_string_equal(vbi_size_str(0, b, sizeof(b)), "0 bytes");
	assert_string_equal(vbi_size_str(1, b, sizeof(b)), "1 byte");
	assert_string_equal(vbi_size_str(1000, b, sizeof(b)), "1000 bytes");
	assert_string_equal(vbi_size_str(4096, b, sizeof(b)), "4 KiB");
	assert_string_equal(vbi_size_str(65536, b, sizeof(b)), "64 KiB");
	assert_string_equal(vbi_size_str(1536 << 10, b, sizeof(b)), "1536 KiB");
	assert_string_equal(vbi_size_str(1u << 20, b, sizeof(b)), "1 MiB");
	assert_string_equal(vbi_size_str(3ull << 30, b, sizeof(b)), "3 GiB");
	assert_string_equal(vbi_size_str(UINT64_MAX, b, sizeof(b)),
			    "18446744073709551615 bytes");
	/* Cut, not overrun. */
	memset(b, 'x', sizeof(b));
	vbi_size_str(1u << 20, b, 4);
	assert_string_equal(b, "1 M");
	assert_int_equal(b[4], 'x');
}

/* One rule for server names, cluster names and broker ids. */
static void test_parse_names(void **state)
{
	char n[VBI_ID_MAX + 2];

	(void)state;
#define NAME(s) vbi_name_valid(s, strlen(s))
	assert_true(NAME("b1"));
	assert_true(NAME("verbusd"));
	assert_true(NAME("Broker_2.east-1"));
	assert_true(NAME("..."));
	assert_true(NAME(".a"));
	assert_false(NAME(""));
	assert_false(NAME("."));
	assert_false(NAME(".."));
	assert_false(NAME("a/b"));
	assert_false(NAME("a b"));
	assert_false(NAME("caf\xc3\xa9"));
#undef NAME
	assert_false(vbi_name_valid(NULL, 3));
	assert_false(vbi_name_valid("a\0b", 3)); /* a NUL inside */
	memset(n, 'x', sizeof(n));
	assert_true(vbi_name_valid(n, VBI_ID_MAX));
	assert_false(vbi_name_valid(n, VBI_ID_MAX + 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_accepts_plain_decimals),
		cmocka_unit_test(test_parse_refuses_the_rest),
		cmocka_unit_test(test_parse_names),
		cmocka_unit_test(test_parse_sizes),
		cmocka_unit_test(test_parse_size_str),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
