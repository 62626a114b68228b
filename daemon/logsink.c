/*
 * logsink.c - verbusd's log sinks: the journal natively, or stderr with a
 * timestamp (logsink.h).
 *
 * Decisions: the stderr line is formatted in a stack buffer and written
 * with one write(), as core/log.c's sinks do, so that two lines never
 * interleave even if a library ever logs from a thread of its own.  The time is UTC with milliseconds, the form nats-server and
 * most collectors parse without configuration.  The journal sink suppresses
 * libsystemd's CODE_FILE/CODE_LINE fields, which would name this file for
 * every line and say nothing.
 */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include "daemon/logsink.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

/* A decimal number that fills [s, end) exactly, into *@v. */
static bool parse_dec(const char *s, const char *end, uintmax_t *v)
{
	char *stop;

	if (s == end || *s < '0' || *s > '9')
		return false;
	errno = 0;
	*v = strtoumax(s, &stop, 10);
	return errno == 0 && stop == end;
}

bool vbd_logsink_is_journal(const char *journal_stream, int fd)
{
	const char *colon;
	uintmax_t dev, ino;
	struct stat st;

	if (journal_stream == NULL)
		return false;
	colon = strchr(journal_stream, ':');
	if (colon == NULL || !parse_dec(journal_stream, colon, &dev) ||
	    !parse_dec(colon + 1, colon + 1 + strlen(colon + 1), &ino))
		return false;
	if (fstat(fd, &st) != 0)
		return false;
	return (uintmax_t)st.st_dev == dev && (uintmax_t)st.st_ino == ino;
}

size_t vbd_logsink_stamp(char *buf, size_t size, const struct timespec *ts)
{
	time_t t = ts->tv_sec;
	struct tm tm;
	size_t n;
	int k;

	if (size == 0)
		return 0;
	buf[0] = '\0';
	if (gmtime_r(&t, &tm) == NULL)
		return 0;
	n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	if (n == 0)
		goto out_empty;
	k = snprintf(buf + n, size - n, ".%03ldZ",
		     (long)(ts->tv_nsec / 1000000) % 1000);
	if (k < 0 || (size_t)k >= size - n)
		goto out_empty;
	return n + (size_t)k;
out_empty:
	buf[0] = '\0';
	return 0;
}

void vbd_logsink_stderr(void *arg, enum vbi_log_level level, const char *line)
{
	char stamp[VBD_LOG_STAMP_MAX + 1];
	struct timespec ts;
	size_t n;

	(void)arg;
	clock_gettime(CLOCK_REALTIME, &ts);
	n = vbd_logsink_stamp(stamp, VBD_LOG_STAMP_MAX, &ts);
	if (n) {
		stamp[n] = ' ';
		stamp[n + 1] = '\0';
	}
	vbi_log_write(stamp, level, line);
}

void vbd_logsink_journal(void *arg, enum vbi_log_level level, const char *line)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	const char *name = vbi_log_level_name(level);
	int p = prio[level <= VBI_LOG_DEBUG ? level : VBI_LOG_DEBUG];

	if (sd_journal_send("MESSAGE=%s: %s", name, line, "PRIORITY=%d", p,
			    "SYSLOG_IDENTIFIER=%s",
			    program_invocation_short_name, "VERBUS_LEVEL=%s",
			    name, NULL) < 0)
		vbi_log_journal(arg, level, line);
}

/* Where sd_journal_send() sends, always: the default namespace's socket. */
#define JOURNAL_SOCKET "/run/systemd/journal/socket"

const char *vbd_logsink_install(enum vbi_log_level max_level)
{
	if (!vbd_logsink_is_journal(getenv("JOURNAL_STREAM"), STDERR_FILENO)) {
		vbi_log_set(vbd_logsink_stderr, NULL, max_level);
		return "stderr";
	}
	/*
	 * sd_journal_send() drops a line in silence when the socket is
	 * missing, and knows nothing of LogNamespace= (whose journald
	 * listens elsewhere, named in $LOG_NAMESPACE): the stream, which
	 * does reach it, with the "<N>" prefix then.
	 */
	if (getenv("LOG_NAMESPACE") || access(JOURNAL_SOCKET, W_OK) != 0) {
		vbi_log_set(vbi_log_journal, NULL, max_level);
		return "journal stream";
	}
	vbi_log_set(vbd_logsink_journal, NULL, max_level);
	return "journal";
}
