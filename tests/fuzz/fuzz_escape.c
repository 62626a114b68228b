/* libFuzzer target: vbi_log_escape and vbi_text_clean (core/log.c), the one
 * way a string a peer chose reaches a log line.  The input, any bytes, is
 * escaped into a buffer large enough for anything and then into buffers cut
 * short (sizes 0 to 5, one byte short of the whole, exactly the whole, two
 * picked by the input).  Each buffer is allocated to its exact size, so that
 * ASan sees a write past it.  Every output must be one safe line, checked
 * with a UTF-8 validator written here from the Unicode table of well-formed
 * sequences rather than with the decoder under test; the whole output must
 * un-escape to the input; a cut one must be a prefix of whole escapes and
 * characters then "...".  vbi_text_clean must agree with the same table and
 * hold exactly when the escaper copies the input as it is. */
#include "core/log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The longest piece the escaper writes for one character: "\xNN" for each
 * byte of an unsafe 3-byte one (U+2028).  A cut output wastes less room.
 */
#define PIECE_MAX 12

/*
 * The length of the well-formed UTF-8 sequence at @s (@len bytes), 0 if
 * none, with its code point in *@cp: Table 3-7 of the Unicode Standard,
 * row by row.
 */
static size_t ref_utf8(const uint8_t *s, size_t len, uint32_t *cp)
{
	uint8_t b = s[0], lo = 0x80, hi = 0xbf;
	size_t n, k;

	if (b <= 0x7f) {
		*cp = b;
		return 1;
	}
	if (b >= 0xc2 && b <= 0xdf)
		n = 2;
	else if (b >= 0xe0 && b <= 0xef)
		n = 3;
	else if (b >= 0xf0 && b <= 0xf4)
		n = 4;
	else
		return 0;
	if (b == 0xe0)
		lo = 0xa0;
	else if (b == 0xed)
		hi = 0x9f;
	else if (b == 0xf0)
		lo = 0x90;
	else if (b == 0xf4)
		hi = 0x8f;
	if (len < n || s[1] < lo || s[1] > hi)
		return 0;
	for (k = 2; k < n; k++)
		if (s[k] < 0x80 || s[k] > 0xbf)
			return 0;
	*cp = b & (0xff >> (n + 1));
	for (k = 1; k < n; k++)
		*cp = *cp << 6 | (s[k] & 0x3f);
	return n;
}

/* The characters the escaper must not let through, listed as log.h does. */
static bool ref_unsafe(uint32_t cp)
{
	if (cp <= 0x1f || (cp >= 0x7f && cp <= 0x9f))
		return true;
	switch (cp) {
	case 0x2028:
	case 0x2029:
	case 0x202a:
	case 0x202b:
	case 0x202c:
	case 0x202d:
	case 0x202e:
	case 0x2066:
	case 0x2067:
	case 0x2068:
	case 0x2069:
		return true;
	}
	return false;
}

/* Valid UTF-8 with no unsafe character, by the table above. */
static bool ref_clean(const uint8_t *s, size_t len)
{
	size_t i = 0, n;
	uint32_t cp;

	while (i < len) {
		n = ref_utf8(s + i, len - i, &cp);
		if (n == 0 || ref_unsafe(cp))
			return false;
		i += n;
	}
	return true;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1; /* uppercase too: the escaper writes lowercase only */
}

/*
 * Undo the escapes of @e (@n bytes) into @out (room for @n bytes): the
 * length, or -1 if @e holds a backslash that does not start a whole escape.
 */
static long unescape(const char *e, size_t n, uint8_t *out)
{
	size_t i = 0, o = 0;
	int h, l;

	while (i < n) {
		if (e[i] != '\\') {
			out[o++] = (uint8_t)e[i++];
			continue;
		}
		if (i + 1 >= n)
			return -1;
		switch (e[i + 1]) {
		case '\\':
			out[o++] = '\\';
			break;
		case 'n':
			out[o++] = '\n';
			break;
		case 'r':
			out[o++] = '\r';
			break;
		case 't':
			out[o++] = '\t';
			break;
		case 'x':
			if (i + 3 >= n)
				return -1;
			h = hexval(e[i + 2]);
			l = hexval(e[i + 3]);
			if (h < 0 || l < 0)
				return -1;
			out[o++] = (uint8_t)(h << 4 | l);
			i += 2;
			break;
		default:
			return -1;
		}
		i += 2;
	}
	return (long)o;
}

/* One output of @n bytes, written into a buffer of @cap: a safe line. */
static void check_line(const char *out, size_t n, size_t cap)
{
	size_t i;

	if (cap == 0 || n > cap - 1 || out[n] != '\0' || strlen(out) != n)
		abort();
	for (i = 0; i < n; i++)
		if ((uint8_t)out[i] < 0x20 || (uint8_t)out[i] == 0x7f)
			abort();
	if (!ref_clean((const uint8_t *)out, n) || !vbi_text_clean(out, n))
		abort();
}

/*
 * Escape @in into exactly @cap bytes and compare with @full, the whole
 * output (@full_len bytes); @tmp has room to un-escape @full.
 */
static void check_cut(const uint8_t *in, size_t len, const char *full,
		      size_t full_len, size_t cap, uint8_t *tmp)
{
	char *out = malloc(cap ? cap : 1);
	size_t n, keep;
	long u;

	if (out == NULL)
		return;
	out[0] = 'Z';
	n = vbi_log_escape(out, cap, in, len);
	if (cap == 0) {
		if (n != 0 || out[0] != 'Z')
			abort();
		goto out_free;
	}
	check_line(out, n, cap);
	if (full_len <= cap - 1) {
		if (n != full_len || memcmp(out, full, n) != 0)
			abort();
		goto out_free;
	}
	/* Cut: nothing under 4 bytes, else whole pieces then "...". */
	if (cap < 4) {
		if (n != 0)
			abort();
		goto out_free;
	}
	if (n < 3 || memcmp(out + n - 3, "...", 3) != 0)
		abort();
	keep = n - 3;
	if (memcmp(out, full, keep) != 0 || keep + 3 + PIECE_MAX <= cap - 1)
		abort();
	/* Not inside an escape, and what is kept stands for a prefix. */
	u = unescape(out, keep, tmp);
	if (u < 0 || (size_t)u > len || memcmp(tmp, in, (size_t)u) != 0)
		abort();
out_free:
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t cap = 4 * size + 4, n, i, j, pick;
	size_t caps[10];
	char *full = malloc(cap), *plain = malloc(2 * size + 1);
	uint8_t *tmp = malloc(cap);
	bool clean;
	long u;

	if (full == NULL || plain == NULL || tmp == NULL)
		goto out_free;
	/* Large enough for anything: never cut, and un-escapes exactly. */
	n = vbi_log_escape(full, cap, data, size);
	check_line(full, n, cap);
	u = unescape(full, n, tmp);
	if (u < 0 || (size_t)u != size || memcmp(tmp, data, size) != 0)
		abort();
	/* Clean text is copied as it is, backslashes doubled, and only it. */
	for (i = 0, j = 0; i < size; i++) {
		if (data[i] == '\\')
			plain[j++] = '\\';
		plain[j++] = (char)data[i];
	}
	clean = vbi_text_clean(data, size);
	if (clean != ref_clean(data, size) ||
	    clean != (j == n && memcmp(full, plain, n) == 0))
		abort();
	pick = size ? data[0] | (size_t)data[size - 1] << 8 : 0;
	caps[0] = 0;
	caps[1] = 1;
	caps[2] = 2;
	caps[3] = 3;
	caps[4] = 4;
	caps[5] = 5;
	caps[6] = n; /* one byte short */
	caps[7] = n + 1; /* exactly enough */
	caps[8] = (pick & 0xff) % (n + 2);
	caps[9] = pick % (n + 2);
	for (i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
		check_cut(data, size, full, n, caps[i], tmp);
out_free:
	free(tmp);
	free(plain);
	free(full);
	return 0;
}
