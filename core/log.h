/*
 * log.h - internal logging.
 *
 * The library is silent unless the application installs a sink; the daemon
 * installs one that writes one line per event to stderr.  The sink and the
 * level are process-wide and set once, before any connection exists; reading
 * them is then lock-free from any thread.  A thread working for one
 * libverbus connection logs to that connection's sink instead
 * (vbi_log_push).
 */
#ifndef VERBUS_CORE_LOG_H
#define VERBUS_CORE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/*
 * A sink of one scope: libverbus's connection, whose application gave a
 * log callback (vb_opts.log) or none.  Owned by whoever pushes it, and
 * kept alive while pushed.
 */
struct vbi_log_sink {
	vbi_log_fn fn; /* NULL: silent */
	void *arg;
	enum vbi_log_level max_level;
};

/*
 * vbi_log_push() - until the matching vbi_log_pop(), lines logged on this
 * thread go to @s instead of the process-wide sink (a library connection's
 * entry points push its sink, so that what the transport logs on their
 * behalf reaches that connection's application).  Pushes nest (a
 * callback of one connection calling into another); past 8 deep the
 * innermost 8th stays in force.  Thread-local, never allocates.
 */
void vbi_log_push(const struct vbi_log_sink *s);

/* vbi_log_pop() - undo this thread's latest vbi_log_push(). */
void vbi_log_pop(void);

/* vbi_log_enabled() - true if a line at @level would reach a sink. */
int vbi_log_enabled(enum vbi_log_level level);

/* vbi_log() - format and emit one line; lines over 512 bytes are cut. */
void vbi_log(enum vbi_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* vbi_log_level_name() - "err", "warn", "info" or "debug". */
const char *vbi_log_level_name(enum vbi_log_level level);

/*
 * vbi_log_write() - "<@prefix>LEVEL: line\n" to stderr in one write(), so
 * that concurrent writers do not interleave (a line too long is cut, its
 * newline kept): what the stderr sinks below and the daemon's stamped one
 * write.
 */
void vbi_log_write(const char *prefix, enum vbi_log_level level,
		   const char *line);

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

/*
 * A buffer size for one peer-chosen string escaped into a log line: room for
 * a name of a few dozen bytes even if every byte needs "\xNN", small enough
 * that several fit in one 512-byte line.
 */
#define VBI_LOG_ESCAPE_MAX 256

/*
 * vbi_log_escape() - @src (@len bytes, any bytes, need not be NUL-terminated)
 * as text safe for one log line, into @dst of @size bytes (NUL-terminated
 * whenever @size > 0).  Every string a peer chose reaches a log line through
 * this function, so that no peer can start a line of its own, hide text or
 * reorder what a terminal shows.
 *
 * Byte by byte, or character by character for valid UTF-8:
 * - printable ASCII (0x20-0x7e) is copied, except that a backslash becomes
 *   "\\", so that every backslash in the output starts an escape;
 * - newline, carriage return and tab become "\n", "\r" and "\t";
 * - every other C0 byte (0x00-0x1f), DEL (0x7f), and every byte that is not
 *   part of a valid UTF-8 sequence (a stray continuation byte, a truncated
 *   sequence, an overlong form, a surrogate, a code point over U+10FFFF, the
 *   bytes 0xc0, 0xc1 and 0xf5-0xff) becomes "\xNN", lowercase hex;
 * - a valid multi-byte UTF-8 character is copied unchanged, except the C1
 *   controls (U+0080-U+009F), the line and paragraph separators (U+2028,
 *   U+2029) and the bidi controls (U+202A-U+202E, U+2066-U+2069), each byte
 *   of which becomes "\xNN".
 * The output is thus valid UTF-8 with no control character, and un-escaping
 * an output that was not cut gives back @src exactly.
 *
 * Each escape, each copied character and each escaped character is one
 * piece, never split.  When the next piece does not fit in @size - 1 bytes,
 * the output is cut after the last piece that leaves room for "...", ends
 * with "..." and stops; if @size is under 4 there is no room for the dots
 * and a cut output is empty.  @size == 0 writes nothing; @src may be NULL
 * when @len is 0.  Never allocates; any thread.
 *
 * Returns the length written (excluding the NUL).
 */
size_t vbi_log_escape(char *dst, size_t size, const void *src, size_t len);

/*
 * vbi_utf8_decode() - one UTF-8 character at @s (@len > 0 bytes): its length
 * (1-4) with the code point in *@cp, or 0 if @s does not start a valid
 * sequence (stray continuation byte, truncated sequence, overlong form,
 * surrogate, over U+10FFFF), in which case only the first byte is to be
 * taken as bad: the bytes after it are decoded afresh.  The one UTF-8
 * decoder of peer-chosen text (the log edge, the monitor's pages).
 */
size_t vbi_utf8_decode(const void *s, size_t len, uint32_t *cp);

/*
 * vbi_text_clean() - true if @s (@len bytes) is valid UTF-8 (shortest form,
 * no surrogates, no code point over U+10FFFF) with no control character (C0
 * including NUL, DEL, C1, U+2028, U+2029) and no bidi control (U+202A-U+202E,
 * U+2066-U+2069): what a peer-chosen name must be.  Exactly the text that
 * vbi_log_escape() copies as it is, backslashes apart.  @s may be NULL when
 * @len is 0 (the empty string is clean).
 */
bool vbi_text_clean(const void *s, size_t len);

#define vbi_err(...) vbi_log(VBI_LOG_ERR, __VA_ARGS__)
#define vbi_warn(...) vbi_log(VBI_LOG_WARN, __VA_ARGS__)
#define vbi_info(...) vbi_log(VBI_LOG_INFO, __VA_ARGS__)
#define vbi_debug(...)                                       \
	do {                                                 \
		if (vbi_log_enabled(VBI_LOG_DEBUG))          \
			vbi_log(VBI_LOG_DEBUG, __VA_ARGS__); \
	} while (0)

#endif /* VERBUS_CORE_LOG_H */
