/*
 * Unit tests for verbusd's log sinks (daemon/logsink.c): the timestamp,
 * recognising the journal's stream, and the stamped stderr line.
 */
#include "daemon/logsink.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

static void test_logsink_stamp(void **state)
{
	struct timespec ts = { .tv_sec = 1700000000, .tv_nsec = 123456789 };
	char buf[VBD_LOG_STAMP_MAX];

	(void)state;
	assert_int_equal(vbd_logsink_stamp(buf, sizeof(buf), &ts), 24);
	assert_string_equal(buf, "2023-11-14T22:13:20.123Z");
	/* Milliseconds are cut, not rounded: never ".1000". */
	ts.tv_nsec = 999999999;
	vbd_logsink_stamp(buf, sizeof(buf), &ts);
	assert_string_equal(buf, "2023-11-14T22:13:20.999Z");
	ts.tv_sec = 0;
	ts.tv_nsec = 5000000;
	vbd_logsink_stamp(buf, sizeof(buf), &ts);
	assert_string_equal(buf, "1970-01-01T00:00:00.005Z");
	/* Too small a buffer: nothing, and an empty string. */
	assert_int_equal(vbd_logsink_stamp(buf, 24, &ts), 0);
	assert_string_equal(buf, "");
	assert_int_equal(vbd_logsink_stamp(buf, 10, &ts), 0);
	assert_string_equal(buf, "");
	assert_int_equal(vbd_logsink_stamp(buf, 0, &ts), 0);
}

static void test_logsink_is_journal(void **state)
{
	char path[] = "/tmp/verbus-test-logsink-XXXXXX", v[96];
	int fd = mkstemp(path), other = open("/dev/null", 0);
	struct stat st;

	(void)state;
	assert_true(fd >= 0 && other >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	snprintf(v, sizeof(v), "%ju:%ju", (uintmax_t)st.st_dev,
		 (uintmax_t)st.st_ino);
	assert_true(vbd_logsink_is_journal(v, fd));
	/* Inherited from a parent whose stderr was the journal: another
	 * file is not. */
	assert_false(vbd_logsink_is_journal(v, other));
	snprintf(v, sizeof(v), "%ju:%ju", (uintmax_t)st.st_dev,
		 (uintmax_t)st.st_ino + 1);
	assert_false(vbd_logsink_is_journal(v, fd));
	snprintf(v, sizeof(v), "%ju:%ju", (uintmax_t)st.st_dev + 1,
		 (uintmax_t)st.st_ino);
	assert_false(vbd_logsink_is_journal(v, fd));
	/* Malformed: never the journal. */
	snprintf(v, sizeof(v), "%ju:%jux", (uintmax_t)st.st_dev,
		 (uintmax_t)st.st_ino);
	assert_false(vbd_logsink_is_journal(v, fd));
	snprintf(v, sizeof(v), " %ju:%ju", (uintmax_t)st.st_dev,
		 (uintmax_t)st.st_ino);
	assert_false(vbd_logsink_is_journal(v, fd));
	snprintf(v, sizeof(v), "%ju:-%ju", (uintmax_t)st.st_dev,
		 (uintmax_t)st.st_ino);
	assert_false(vbd_logsink_is_journal(v, fd));
	assert_false(vbd_logsink_is_journal(NULL, fd));
	assert_false(vbd_logsink_is_journal("", fd));
	assert_false(vbd_logsink_is_journal(":", fd));
	assert_false(vbd_logsink_is_journal("1", fd));
	assert_false(vbd_logsink_is_journal("99999999999999999999999:1", fd));
	/* A descriptor that is not open. */
	snprintf(v, sizeof(v), "%ju:%ju", (uintmax_t)st.st_dev,
		 (uintmax_t)st.st_ino);
	assert_false(vbd_logsink_is_journal(v, -1));
	close(other);
	close(fd);
	unlink(path);
}

/* What @sink writes to stderr for one line, into @out. */
static void sink_output(vbi_log_fn sink, enum vbi_log_level level,
			const char *line, char *out, size_t cap)
{
	char path[] = "/tmp/verbus-test-logsink-XXXXXX";
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

/* "TIME level: line", the time now's. */
static void test_logsink_stderr(void **state)
{
	char out[700], big[700], stamp[VBD_LOG_STAMP_MAX];
	struct timespec before, after;
	struct tm tm = { 0 };
	char *end;
	time_t t;

	(void)state;
	clock_gettime(CLOCK_REALTIME, &before);
	sink_output(vbd_logsink_stderr, VBI_LOG_WARN, "disk full", out,
		    sizeof(out));
	clock_gettime(CLOCK_REALTIME, &after);
	assert_int_equal(strlen(out), 24 + strlen(" warn: disk full\n"));
	assert_string_equal(out + 24, " warn: disk full\n");
	memcpy(stamp, out, 24);
	stamp[24] = '\0';
	end = strptime(stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	assert_non_null(end);
	assert_true(end[0] == '.' && end[4] == 'Z');
	t = timegm(&tm);
	assert_true(t >= before.tv_sec && t <= after.tv_sec);
	/* A line too long for one write is cut, still ending the line. */
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	sink_output(vbd_logsink_stderr, VBI_LOG_INFO, big, out, sizeof(out));
	assert_int_equal(strlen(out), 639);
	assert_int_equal(out[638], '\n');
}

/* Outside systemd ($JOURNAL_STREAM unset, or naming another file): the
 * stamped sink. */
static void test_logsink_install(void **state)
{
	char v[96];
	struct stat st;

	(void)state;
	unsetenv("JOURNAL_STREAM");
	assert_string_equal(vbd_logsink_install(VBI_LOG_INFO), "stderr");
	assert_true(vbi_log_enabled(VBI_LOG_INFO));
	assert_false(vbi_log_enabled(VBI_LOG_DEBUG));
	assert_int_equal(fstat(STDERR_FILENO, &st), 0);
	snprintf(v, sizeof(v), "%ju:%ju", (uintmax_t)st.st_dev,
		 (uintmax_t)st.st_ino + 1);
	setenv("JOURNAL_STREAM", v, 1);
	assert_string_equal(vbd_logsink_install(VBI_LOG_INFO), "stderr");
	/* Stderr is "the journal", whose socket a namespace hides. */
	snprintf(v, sizeof(v), "%ju:%ju", (uintmax_t)st.st_dev,
		 (uintmax_t)st.st_ino);
	setenv("JOURNAL_STREAM", v, 1);
	setenv("LOG_NAMESPACE", "verbus", 1);
	assert_string_equal(vbd_logsink_install(VBI_LOG_INFO),
			    "journal stream");
	unsetenv("LOG_NAMESPACE");
	assert_string_equal(vbd_logsink_install(VBI_LOG_INFO),
			    access("/run/systemd/journal/socket", W_OK) == 0 ?
				    "journal" :
				    "journal stream");
	unsetenv("JOURNAL_STREAM");
	vbi_log_set(NULL, NULL, VBI_LOG_INFO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_logsink_stamp),
		cmocka_unit_test(test_logsink_is_journal),
		cmocka_unit_test(test_logsink_stderr),
		cmocka_unit_test(test_logsink_install),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
