/* Unit tests for the log sink (core/log.c). */
#include "core/log.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
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

/* Run @sink on one line with stderr sent to a file; return what it wrote. */
static void sink_output(vbi_log_fn sink, enum vbi_log_level level,
			const char *line, char *out, size_t cap)
{
	char path[] = "/tmp/test_log.XXXXXX";
	int fd = mkstemp(path), saved = dup(STDERR_FILENO);
	ssize_t n;

	assert_true(fd >= 0 && saved >= 0);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	sink(NULL, level, line);
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	n = pread(fd, out, cap - 1, 0);
	assert_true(n >= 0);
	out[n] = '\0';
	close(fd);
	unlink(path);
}

/* stderr: "level: line"; journal: the syslog priority first. */
static void test_log_sinks_format(void **state)
{
	char out[700], big[700];

	(void)state;
	sink_output(vbi_log_stderr, VBI_LOG_WARN, "disk full", out,
		    sizeof(out));
	assert_string_equal(out, "warn: disk full\n");
	sink_output(vbi_log_journal, VBI_LOG_ERR, "boom", out, sizeof(out));
	assert_string_equal(out, "<3>err: boom\n");
	sink_output(vbi_log_journal, VBI_LOG_INFO, "up", out, sizeof(out));
	assert_string_equal(out, "<6>info: up\n");
	sink_output(vbi_log_journal, VBI_LOG_DEBUG, "x", out, sizeof(out));
	assert_string_equal(out, "<7>debug: x\n");
	/* A line too long for one write is cut, still ending the line. */
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	sink_output(vbi_log_stderr, VBI_LOG_INFO, big, out, sizeof(out));
	assert_int_equal(strlen(out), 599);
	assert_int_equal(out[598], '\n');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_silent_without_sink),
		cmocka_unit_test(test_log_level_filter),
		cmocka_unit_test(test_log_long_line_is_cut),
		cmocka_unit_test(test_log_level_names),
		cmocka_unit_test(test_log_sinks_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
