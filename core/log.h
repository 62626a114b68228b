/*
 * log.h - internal logging.
 *
 * The library is silent unless the application installs a sink; the daemon
 * installs one that writes one line per event to stderr.  The sink and the
 * level are process-wide and set once, before any connection exists; reading
 * them is then lock-free from any thread.
 */
#ifndef VERBUS_CORE_LOG_H
#define VERBUS_CORE_LOG_H

/* Severity of a log line, most severe first. */
enum vbi_log_level {
	VBI_LOG_ERR = 0,
	VBI_LOG_WARN = 1,
	VBI_LOG_INFO = 2,
	VBI_LOG_DEBUG = 3,
};

/*
 * A log sink.  Called with one complete line (no trailing newline) on the
 * thread that logs; must not call back into Verbus.  @arg is the pointer
 * given to vbi_log_set().
 */
typedef void (*vbi_log_fn)(void *arg, enum vbi_log_level level,
			   const char *line);

/*
 * vbi_log_set() - install @fn (NULL: silence) and the most verbose level to
 * emit.  Not thread-safe with concurrent logging: call at start-up.
 */
void vbi_log_set(vbi_log_fn fn, void *arg, enum vbi_log_level max_level);

/* vbi_log_enabled() - true if a line at @level would reach a sink. */
int vbi_log_enabled(enum vbi_log_level level);

/* vbi_log() - format and emit one line; lines over 512 bytes are cut. */
void vbi_log(enum vbi_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* vbi_log_level_name() - "err", "warn", "info" or "debug". */
const char *vbi_log_level_name(enum vbi_log_level level);

/*
 * vbi_log_stderr() - a ready sink: "LEVEL: line\n" on stderr in one write,
 * which journald and a terminal both read well.
 */
void vbi_log_stderr(void *arg, enum vbi_log_level level, const char *line);

/*
 * vbi_log_journal() - the same with the syslog priority first ("<3>" for
 * err to "<7>" for debug), from which journald sets each entry's level: for
 * a service under systemd (JOURNAL_STREAM set).
 */
void vbi_log_journal(void *arg, enum vbi_log_level level, const char *line);

#define vbi_err(...) vbi_log(VBI_LOG_ERR, __VA_ARGS__)
#define vbi_warn(...) vbi_log(VBI_LOG_WARN, __VA_ARGS__)
#define vbi_info(...) vbi_log(VBI_LOG_INFO, __VA_ARGS__)
#define vbi_debug(...)                                       \
	do {                                                 \
		if (vbi_log_enabled(VBI_LOG_DEBUG))          \
			vbi_log(VBI_LOG_DEBUG, __VA_ARGS__); \
	} while (0)

#endif /* VERBUS_CORE_LOG_H */
