/*
 * log.c - the process-wide log sink.
 *
 * Formatting happens only when a sink is installed and the level is enabled,
 * so disabled debug lines cost one load and a compare.  Lines are formatted
 * into a stack buffer: logging never allocates.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static vbi_log_fn log_fn;
static void *log_arg;
static enum vbi_log_level log_max = VBI_LOG_INFO;

void vbi_log_set(vbi_log_fn fn, void *arg, enum vbi_log_level max_level)
{
	log_fn = fn;
	log_arg = arg;
	log_max = max_level;
}

int vbi_log_enabled(enum vbi_log_level level)
{
	return log_fn != NULL && level <= log_max;
}

void vbi_log(enum vbi_log_level level, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (!vbi_log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_fn(log_arg, level, line);
}

const char *vbi_log_level_name(enum vbi_log_level level)
{
	switch (level) {
	case VBI_LOG_ERR:
		return "err";
	case VBI_LOG_WARN:
		return "warn";
	case VBI_LOG_INFO:
		return "info";
	case VBI_LOG_DEBUG:
		return "debug";
	}
	return "?";
}

/* One line to stderr, "<prefix>level: line", in one write() so that
 * concurrent writers do not interleave. */
static void log_write(const char *prefix, enum vbi_log_level level,
		      const char *line)
{
	char buf[600];
	int n;

	n = snprintf(buf, sizeof(buf), "%s%s: %s\n", prefix,
		     vbi_log_level_name(level), line);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf)) {
		n = sizeof(buf) - 1;
		buf[n - 1] = '\n';
	}
	if (write(STDERR_FILENO, buf, (size_t)n) < 0)
		return;
}

void vbi_log_stderr(void *arg, enum vbi_log_level level, const char *line)
{
	(void)arg;
	log_write("", level, line);
}

void vbi_log_journal(void *arg, enum vbi_log_level level, const char *line)
{
	static const char *const prio[] = { "<3>", "<4>", "<6>", "<7>" };

	(void)arg;
	log_write(prio[level <= VBI_LOG_DEBUG ? level : VBI_LOG_DEBUG], level,
		  line);
}
