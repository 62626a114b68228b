/* Unit tests for the log sink (core/log.c). */
#include "core/log.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

struct capture {
	int lines;
	enum vbi_log_level level;
	char last[600];
};

static void capture_fn(void *arg, enum vbi_log_level level, const char *line)
{
	struct capture *c = arg;

	c->lines++;
	c->level = level;
	strncpy(c->last, line, sizeof(c->last) - 1);
}

static void test_log_silent_without_sink(void **state)
{
	(void)state;
	vbi_log_set(NULL, NULL, VBI_LOG_DEBUG);
	assert_false(vbi_log_enabled(VBI_LOG_ERR));
	vbi_err("nobody hears this %d", 1); /* must not crash */
}

static void test_log_level_filter(void **state)
{
	struct capture c = { 0 };

	(void)state;
	vbi_log_set(capture_fn, &c, VBI_LOG_WARN);
	vbi_info("filtered");
	vbi_debug("filtered too");
	assert_int_equal(c.lines, 0);
	vbi_warn("qp 0x%x stalled", 0x1234);
	assert_int_equal(c.lines, 1);
	assert_int_equal(c.level, VBI_LOG_WARN);
	assert_string_equal(c.last, "qp 0x1234 stalled");
	vbi_log_set(NULL, NULL, VBI_LOG_INFO);
}

static void test_log_long_line_is_cut(void **state)
{
	struct capture c = { 0 };
	char big[2000];

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	vbi_log_set(capture_fn, &c, VBI_LOG_DEBUG);
	vbi_err("%s", big);
	assert_int_equal(c.lines, 1);
	assert_int_equal(strlen(c.last), 511);
	vbi_log_set(NULL, NULL, VBI_LOG_INFO);
}

static void test_log_level_names(void **state)
{
	(void)state;
	assert_string_equal(vbi_log_level_name(VBI_LOG_ERR), "err");
	assert_string_equal(vbi_log_level_name(VBI_LOG_DEBUG), "debug");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_silent_without_sink),
		cmocka_unit_test(test_log_level_filter),
		cmocka_unit_test(test_log_long_line_is_cut),
		cmocka_unit_test(test_log_level_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
