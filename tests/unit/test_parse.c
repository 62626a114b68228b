/* Unit tests for strict number and name parsing (core/parse.c). */
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
