/* Unit tests for the error codes (core/err.c). */
#include <verbus/verbus.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#define ERR_ENTRY(name, value, msg) { name, #name },
static const struct {
	int code;
	const char *name;
} all_errors[] = { VB_ERRORS(ERR_ENTRY) };

static void test_err_every_code_has_text(void **state)
{
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(all_errors) / sizeof(all_errors[0]); i++) {
		const char *msg = vb_strerror(all_errors[i].code);

		assert_non_null(msg);
		assert_string_not_equal(msg, "unknown error");
		assert_string_equal(vb_errname(all_errors[i].code),
				    all_errors[i].name);
		/* Codes are unique and never positive. */
		assert_true(all_errors[i].code <= 0);
		for (j = 0; j < i; j++)
			assert_int_not_equal(all_errors[i].code,
					     all_errors[j].code);
	}
}

static void test_err_ok_is_zero(void **state)
{
	(void)state;
	assert_int_equal(VB_OK, 0);
	assert_string_equal(vb_strerror(VB_OK), "success");
}

static void test_err_unknown_code(void **state)
{
	(void)state;
	assert_string_equal(vb_strerror(12345), "unknown error");
	assert_string_equal(vb_strerror(-9999), "unknown error");
	assert_string_equal(vb_errname(1), "VB_UNKNOWN");
}

static void test_err_version_string(void **state)
{
	char expect[32];

	(void)state;
	snprintf(expect, sizeof(expect), "%d.%d.%d", VB_VERSION_MAJOR,
		 VB_VERSION_MINOR, VB_VERSION_PATCH);
	assert_string_equal(vb_version(), expect);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_err_every_code_has_text),
		cmocka_unit_test(test_err_ok_is_zero),
		cmocka_unit_test(test_err_unknown_code),
		cmocka_unit_test(test_err_version_string),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
