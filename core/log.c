/*
 * log.c - the process-wide log sink.
 *
 * Formatting happens only when a sink is installed and the level is enabled,
 * so disabled debug lines cost one load and a compare.  Lines are formatted
 * into a stack buffer: logging never allocates.
 *
 * Strings a peer chose are escaped (vbi_log_escape) before they reach a
 * line.  The escaper and vbi_text_clean share one UTF-8 decoder and one
 * list of unsafe characters, so that the text a name check accepts is
 * exactly the text the escaper leaves alone.
 */
#include "log.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static vbi_log_fn log_fn;
static void *log_arg;
static enum vbi_log_level log_max = VBI_LOG_INFO;

#define SCOPES_MAX 8u

/*
 * This thread's pushed sinks.  initial-exec: a read is one load from the
 * thread pointer, no __tls_get_addr call, even in libverbus.so (a few
 * bytes of the static TLS surplus that glibc keeps for such libraries).
 */
static __attribute__((
	tls_model("initial-exec"))) _Thread_local const struct vbi_log_sink
	*scopes[SCOPES_MAX];
static __attribute__((
	tls_model("initial-exec"))) _Thread_local unsigned nscopes;

void vbi_log_set(vbi_log_fn fn, void *arg, enum vbi_log_level max_level)
{
	log_fn = fn;
	log_arg = arg;
	log_max = max_level;
}

void vbi_log_push(const struct vbi_log_sink *s)
{
	if (nscopes < SCOPES_MAX)
		scopes[nscopes] = s;
	nscopes++;
}

void vbi_log_pop(void)
{
	if (nscopes)
		nscopes--;
}

/* The scope in force on this thread, or NULL: the process-wide sink. */
static const struct vbi_log_sink *scope(void)
{
	unsigned n = nscopes;

	if (!n)
		return NULL;
	return scopes[(n < SCOPES_MAX ? n : SCOPES_MAX) - 1];
}

int vbi_log_enabled(enum vbi_log_level level)
{
	const struct vbi_log_sink *s = scope();

	if (s)
		return s->fn != NULL && level <= s->max_level;
	return log_fn != NULL && level <= log_max;
}

void vbi_log(enum vbi_log_level level, const char *fmt, ...)
{
	const struct vbi_log_sink *s = scope();
	char line[512];
	va_list ap;

	if (!vbi_log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (s)
		s->fn(s->arg, level, line);
	else
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

void vbi_log_write(const char *prefix, enum vbi_log_level level,
		   const char *line)
{
	char buf[640];
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
	vbi_log_write("", level, line);
}

void vbi_log_journal(void *arg, enum vbi_log_level level, const char *line)
{
	static const char *const prio[] = { "<3>", "<4>", "<6>", "<7>" };

	(void)arg;
	vbi_log_write(prio[level <= VBI_LOG_DEBUG ? level : VBI_LOG_DEBUG],
		      level, line);
}

size_t vbi_utf8_decode(const void *p, size_t len, uint32_t *cp)
{
	const uint8_t *s = p;
	uint32_t c = s[0], min;
	size_t n, k;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c < 0xc2) /* a continuation byte, or 0xc0/0xc1: always overlong */
		return 0;
	if (c < 0xe0) {
		n = 2;
		c &= 0x1f;
		min = 0x80;
	} else if (c < 0xf0) {
		n = 3;
		c &= 0x0f;
		min = 0x800;
	} else if (c < 0xf5) {
		n = 4;
		c &= 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (k = 1; k < n; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[k] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

/*
 * Code points that may not appear in a log line as they are: C0 and DEL,
 * C1 (some terminals act on them), the Unicode line and paragraph separators
 * (a log viewer may break the line there) and the bidi controls, which
 * reorder what a terminal shows and so can make a line read as something
 * else ("Trojan Source").
 */
static bool char_unsafe(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 ||
	       cp == 0x2029 || (cp >= 0x202a && cp <= 0x202e) ||
	       (cp >= 0x2066 && cp <= 0x2069);
}

/*
 * The longest piece: a 4-byte character escaped, "\xNN" four times.  The
 * unsafe characters are all 2 or 3 bytes today; this leaves room should the
 * list grow past the BMP.
 */
#define ESCAPE_PIECE_MAX 16

/* "\xNN" for each of @n bytes at @s into @out; returns the length. */
static size_t escape_hex(char *out, const uint8_t *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t k;

	for (k = 0; k < n; k++) {
		out[4 * k] = '\\';
		out[4 * k + 1] = 'x';
		out[4 * k + 2] = hex[s[k] >> 4];
		out[4 * k + 3] = hex[s[k] & 0xf];
	}
	return 4 * n;
}

/*
 * The escaped form of the one character or bad byte at @s (@len > 0 bytes)
 * into @out: its length; *@used is the number of input bytes it stands for.
 */
static size_t escape_piece(char *out, const uint8_t *s, size_t len,
			   size_t *used)
{
	uint32_t cp;
	size_t n = vbi_utf8_decode(s, len, &cp);

	if (n == 0) {
		*used = 1;
		return escape_hex(out, s, 1);
	}
	*used = n;
	if (char_unsafe(cp)) {
		switch (cp) {
		case '\n':
			memcpy(out, "\\n", 2);
			return 2;
		case '\r':
			memcpy(out, "\\r", 2);
			return 2;
		case '\t':
			memcpy(out, "\\t", 2);
			return 2;
		}
		return escape_hex(out, s, n);
	}
	if (cp == '\\') {
		memcpy(out, "\\\\", 2);
		return 2;
	}
	memcpy(out, s, n);
	return n;
}

size_t vbi_log_escape(char *dst, size_t size, const void *src, size_t len)
{
	const uint8_t *s = src;
	char piece[ESCAPE_PIECE_MAX];
	size_t room, o = 0, mark = 0, i = 0, plen, used;

	if (size == 0)
		return 0;
	room = size - 1;
	/*
	 * One pass: @mark is the end of the last piece after which "..."
	 * still fits, where a cut output goes back to.  Measuring the whole
	 * output first would read all of a long input just to drop most of it.
	 */
	while (i < len) {
		plen = escape_piece(piece, s + i, len - i, &used);
		if (plen > room - o) {
			if (room < 3) {
				o = 0;
			} else {
				memcpy(dst + mark, "...", 3);
				o = mark + 3;
			}
			break;
		}
		memcpy(dst + o, piece, plen);
		o += plen;
		i += used;
		if (room >= 3 && o <= room - 3)
			mark = o;
	}
	dst[o] = '\0';
	return o;
}

bool vbi_text_clean(const void *s, size_t len)
{
	const uint8_t *p = s;
	uint32_t cp;
	size_t i = 0, n;

	while (i < len) {
		n = vbi_utf8_decode(p + i, len - i, &cp);
		if (n == 0 || char_unsafe(cp))
			return false;
		i += n;
	}
	return true;
}
