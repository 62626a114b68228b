/* Unit tests for the log sink and the escaping of peer strings (core/log.c). */
#include "core/log.h"

#include <stdarg.h>
#include <stdbool.h>
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

static void test_log_scope_routes_and_nests(void **state)
{
	struct capture g = { 0 }, a = { 0 }, b = { 0 };
	struct vbi_log_sink sa = { capture_fn, &a, VBI_LOG_INFO };
	struct vbi_log_sink sb = { capture_fn, &b, VBI_LOG_ERR };
	struct vbi_log_sink silent = { NULL, NULL, VBI_LOG_DEBUG };
	int i;

	(void)state;
	vbi_log_set(capture_fn, &g, VBI_LOG_DEBUG);
	vbi_log_push(&sa);
	vbi_info("to a");
	vbi_debug("filtered by a");
	vbi_log_push(&sb); /* a callback of one into another */
	vbi_warn("filtered by b");
	vbi_err("to b");
	vbi_log_pop();
	vbi_warn("a again");
	vbi_log_pop();
	vbi_warn("to the process");
	assert_int_equal(a.lines, 2);
	assert_string_equal(a.last, "a again");
	assert_int_equal(b.lines, 1);
	assert_string_equal(b.last, "to b");
	assert_int_equal(g.lines, 1);
	assert_string_equal(g.last, "to the process");

	/* A scope without a sink is silent, not the process's. */
	vbi_log_push(&silent);
	assert_false(vbi_log_enabled(VBI_LOG_ERR));
	vbi_err("nobody");
	vbi_log_pop();
	assert_int_equal(g.lines, 1);

	/* Past 8 deep the 8th stays in force; pops unwind all the same. */
	for (i = 0; i < 7; i++)
		vbi_log_push(&sb);
	vbi_log_push(&sa);
	for (i = 0; i < 4; i++)
		vbi_log_push(&sb);
	vbi_info("deep");
	assert_int_equal(a.lines, 3);
	for (i = 0; i < 12; i++)
		vbi_log_pop();
	vbi_log_pop(); /* one too many: harmless */
	vbi_warn("back");
	assert_int_equal(g.lines, 2);
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
	assert_int_equal(strlen(out), 639);
	assert_int_equal(out[638], '\n');
}

/* vbi_log_escape() of @len bytes into a VBI_LOG_ESCAPE_MAX buffer. */
static const char *esc(const void *in, size_t len)
{
	static char out[VBI_LOG_ESCAPE_MAX];
	size_t n = vbi_log_escape(out, sizeof(out), in, len);

	assert_int_equal(n, strlen(out));
	return out;
}

/* The same for a NUL-terminated string. */
static const char *esc_str(const char *in)
{
	return esc(in, strlen(in));
}

/* The forged log line of issue 21 stays inside the one line it is in. */
static void test_log_escape_forged_newline(void **state)
{
	static const char name[] =
		"x\ninfo: conn cid 1 legit-sub closed: FORGED";

	(void)state;
	assert_string_equal(esc_str(name),
			    "x\\ninfo: conn cid 1 legit-sub closed: FORGED");
	assert_null(strchr(esc_str(name), '\n'));
	assert_string_equal(esc_str("a\r\nb"), "a\\r\\nb");
}

static void test_log_escape_printable_ascii(void **state)
{
	char in[0x7f - 0x20], want[0x7f - 0x20 + 1];
	size_t i, n = 0;

	(void)state;
	for (i = 0; i < sizeof(in); i++) {
		in[i] = (char)(0x20 + i);
		if (in[i] != '\\')
			want[n++] = in[i];
	}
	want[n] = '\0';
	/* Everything but the backslash, checked on its own below. */
	assert_string_equal(esc(want, n), want);
	assert_int_equal(strlen(esc(in, sizeof(in))), sizeof(in) + 1);
}

/* Doubled, so that a peer's "\n" (two characters) cannot pass for an
 * escaped newline and every backslash in a line starts an escape. */
static void test_log_escape_backslash(void **state)
{
	(void)state;
	assert_string_equal(esc_str("a\\b"), "a\\\\b");
	assert_string_equal(esc_str("\\n"), "\\\\n");
	assert_string_equal(esc_str("\\x0a"), "\\\\x0a");
	assert_string_equal(esc_str("\\"), "\\\\");
}

static void test_log_escape_c0_and_del(void **state)
{
	char want[8];
	unsigned int c;
	unsigned char b;

	(void)state;
	assert_string_equal(esc_str("\t\r\n"), "\\t\\r\\n");
	for (c = 0; c < 0x20; c++) {
		if (c == '\t' || c == '\r' || c == '\n')
			continue;
		b = (unsigned char)c;
		snprintf(want, sizeof(want), "\\x%02x", c);
		assert_string_equal(esc(&b, 1), want);
	}
	assert_string_equal(esc("\x7f", 1), "\\x7f");
	/* Lowercase hex; a NUL inside the string does not end it. */
	assert_string_equal(esc("\x1b[2J", 4), "\\x1b[2J");
	assert_string_equal(esc("a\0b", 3), "a\\x00b");
}

/* Valid multi-byte UTF-8 is copied, up to the edges of the unsafe ranges. */
static void test_log_escape_utf8_kept(void **state)
{
	static const char *const kept[] = {
		"\xc2\xa0", /* U+00A0, just after C1 */
		"\xc3\xa9", /* é */
		"\xdf\xbf", /* U+07FF, the last 2-byte one */
		"\xe0\xa0\x80", /* U+0800, the first 3-byte one */
		"\xe2\x82\xac", /* € */
		"\xe2\x80\xa7", /* U+2027, before the separators */
		"\xe2\x80\xaf", /* U+202F, after the bidi embeddings */
		"\xe2\x81\xa5", /* U+2065, before the bidi isolates */
		"\xe2\x81\xaa", /* U+206A, after them */
		"\xed\x9f\xbf", /* U+D7FF, before the surrogates */
		"\xee\x80\x80", /* U+E000, after them */
		"\xef\xbf\xbf", /* U+FFFF */
		"\xf0\x90\x80\x80", /* U+10000, the first 4-byte one */
		"\xf0\x9f\x98\x80", /* 😀 */
		"\xf4\x8f\xbf\xbf", /* U+10FFFF, the last */
		"na\xc3\xafve caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
		assert_string_equal(esc_str(kept[i]), kept[i]);
		assert_true(vbi_text_clean(kept[i], strlen(kept[i])));
	}
}

/* One input and its escaped form, for tables. */
struct esc_case {
	const char *in;
	const char *out;
};

static void test_log_escape_invalid_utf8(void **state)
{
	static const struct esc_case cases[] = {
		/* Stray continuation bytes. */
		{ "\x80", "\\x80" },
		{ "a\xbfz", "a\\xbfz" },
		/* Bytes that never occur. */
		{ "\xc0", "\\xc0" },
		{ "\xc1", "\\xc1" },
		{ "\xf5\x80\x80\x80", "\\xf5\\x80\\x80\\x80" },
		{ "\xfe\xff", "\\xfe\\xff" },
		/* Overlong forms, of NUL, '/' and the last of each length. */
		{ "\xc0\x80", "\\xc0\\x80" },
		{ "\xc0\xaf", "\\xc0\\xaf" },
		{ "\xc1\xbf", "\\xc1\\xbf" },
		{ "\xe0\x80\x80", "\\xe0\\x80\\x80" },
		{ "\xe0\x9f\xbf", "\\xe0\\x9f\\xbf" },
		{ "\xf0\x80\x80\x80", "\\xf0\\x80\\x80\\x80" },
		{ "\xf0\x8f\xbf\xbf", "\\xf0\\x8f\\xbf\\xbf" },
		/* Surrogates, first and last. */
		{ "\xed\xa0\x80", "\\xed\\xa0\\x80" },
		{ "\xed\xbf\xbf", "\\xed\\xbf\\xbf" },
		/* Over U+10FFFF. */
		{ "\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80" },
		{ "\xf7\xbf\xbf\xbf", "\\xf7\\xbf\\xbf\\xbf" },
		/* Truncated at the end, or cut by another character. */
		{ "\xc3", "\\xc3" },
		{ "\xe2\x82", "\\xe2\\x82" },
		{ "\xf0\x9f\x98", "\\xf0\\x9f\\x98" },
		{ "\xe2\x82Z", "\\xe2\\x82Z" },
		{ "\xf0\x9f\x98\n", "\\xf0\\x9f\\x98\\n" },
		/* A lead byte then a valid character: only the lead is bad. */
		{ "\xc3\xc3\xa9", "\\xc3\xc3\xa9" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_string_equal(esc_str(cases[i].in), cases[i].out);
		assert_false(vbi_text_clean(cases[i].in, strlen(cases[i].in)));
	}
}

/* C1, the line and paragraph separators and the bidi controls. */
static void test_log_escape_unsafe_characters(void **state)
{
	static const struct esc_case cases[] = {
		{ "\xc2\x80", "\\xc2\\x80" }, /* U+0080 */
		{ "\xc2\x85", "\\xc2\\x85" }, /* NEL */
		{ "\xc2\x9b", "\\xc2\\x9b" }, /* CSI */
		{ "\xc2\x9f", "\\xc2\\x9f" }, /* U+009F */
		{ "\xe2\x80\xa8", "\\xe2\\x80\\xa8" }, /* U+2028 */
		{ "\xe2\x80\xa9", "\\xe2\\x80\\xa9" }, /* U+2029 */
		{ "\xe2\x80\xaa", "\\xe2\\x80\\xaa" }, /* LRE */
		{ "\xe2\x80\xab", "\\xe2\\x80\\xab" }, /* RLE */
		{ "\xe2\x80\xac", "\\xe2\\x80\\xac" }, /* PDF */
		{ "\xe2\x80\xad", "\\xe2\\x80\\xad" }, /* LRO */
		{ "\xe2\x80\xae", "\\xe2\\x80\\xae" }, /* RLO */
		{ "\xe2\x81\xa6", "\\xe2\\x81\\xa6" }, /* LRI */
		{ "\xe2\x81\xa7", "\\xe2\\x81\\xa7" }, /* RLI */
		{ "\xe2\x81\xa8", "\\xe2\\x81\\xa8" }, /* FSI */
		{ "\xe2\x81\xa9", "\\xe2\\x81\\xa9" }, /* PDI */
		/* RLO, which would make a terminal show "sub" as "bus". */
		{ "ok \xe2\x80\xaesub", "ok \\xe2\\x80\\xaesub" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_string_equal(esc_str(cases[i].in), cases[i].out);
		assert_false(vbi_text_clean(cases[i].in, strlen(cases[i].in)));
	}
}

static void test_log_escape_empty_and_size_zero(void **state)
{
	char out[4] = "zzz";

	(void)state;
	assert_int_equal(vbi_log_escape(out, 0, "abc", 3), 0);
	assert_string_equal(out, "zzz");
	assert_int_equal(vbi_log_escape(out, sizeof(out), NULL, 0), 0);
	assert_string_equal(out, "");
	assert_int_equal(vbi_log_escape(out, 1, "abc", 3), 0);
	assert_string_equal(out, "");
}

/*
 * A mixed input given as its pieces (each one character or bad byte and its
 * escaped form), cut at every size: the output is always NUL-terminated
 * inside the buffer, the longest run of whole pieces that leaves room for
 * "...", then "..." (nothing at all under 4 bytes), or all of it if it fits.
 */
static void test_log_escape_truncation(void **state)
{
	static const struct esc_case pieces[] = {
		{ "a", "a" },
		{ "b", "b" },
		{ "\\", "\\\\" },
		{ "\n", "\\n" },
		{ "\xc3\xa9", "\xc3\xa9" },
		{ "\xe2\x82\xac", "\xe2\x82\xac" },
		{ "\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80" },
		{ "\x01", "\\x01" },
		{ "\xff", "\\xff" },
		{ "\xe2\x80\xae", "\\xe2\\x80\\xae" },
		{ "Z", "Z" },
		{ "\t", "\\t" },
		{ "\xc2\x85", "\\xc2\\x85" },
		{ "q", "q" },
	};
	enum { NP = sizeof(pieces) / sizeof(pieces[0]) };
	char in[64] = "", full[128] = "", out[128];
	size_t ends[NP], full_len, size, n, i, keep;

	(void)state;
	for (i = 0; i < NP; i++) {
		strcat(in, pieces[i].in);
		strcat(full, pieces[i].out);
		ends[i] = strlen(full);
	}
	full_len = strlen(full);
	assert_string_equal(esc_str(in), full);
	for (size = 0; size <= full_len + 2; size++) {
		memset(out, 'Z', sizeof(out));
		n = vbi_log_escape(out, size, in, strlen(in));
		/* Nothing written past @size. */
		for (i = size; i < sizeof(out); i++)
			assert_int_equal(out[i], 'Z');
		if (size == 0) {
			assert_int_equal(n, 0);
			continue;
		}
		assert_true(n <= size - 1);
		assert_int_equal(out[n], '\0');
		assert_int_equal(strlen(out), n);
		if (full_len <= size - 1) {
			assert_string_equal(out, full);
			continue;
		}
		if (size < 4) {
			assert_int_equal(n, 0);
			continue;
		}
		/* The longest prefix of whole pieces with room for "...". */
		keep = 0;
		for (i = 0; i < NP && ends[i] + 3 <= size - 1; i++)
			keep = ends[i];
		assert_int_equal(n, keep + 3);
		assert_memory_equal(out, full, keep);
		assert_string_equal(out + keep, "...");
	}
}

/* A full VBI_LOG_ESCAPE_MAX buffer of escapes ends in "..." at its end. */
static void test_log_escape_max_buffer(void **state)
{
	char in[100], out[VBI_LOG_ESCAPE_MAX];
	size_t n;

	(void)state;
	memset(in, 0xff, sizeof(in));
	n = vbi_log_escape(out, sizeof(out), in, sizeof(in));
	assert_int_equal(n, VBI_LOG_ESCAPE_MAX - 1);
	assert_memory_equal(out, "\\xff\\xff", 8);
	assert_string_equal(out + n - 7, "\\xff...");
}

static void test_log_text_clean_accepts(void **state)
{
	static const char *const good[] = {
		"",
		"legit-sub",
		"a b\\c~",
		"caf\xc3\xa9",
		"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
		"\xf0\x9f\x98\x80",
		"\xc2\xa0",
		"\xf4\x8f\xbf\xbf",
	};
	size_t i;

	(void)state;
	assert_true(vbi_text_clean(NULL, 0));
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(vbi_text_clean(good[i], strlen(good[i])));
}

static void test_log_text_clean_rejects(void **state)
{
	static const char *const bad[] = {
		"x\ninfo: conn cid 1 legit-sub closed: FORGED",
		"tab\there",
		"cr\r",
		"\x1b[31m",
		"del\x7f",
		"\xc2\x85",
		"\xe2\x80\xa8",
		"\xe2\x80\xa9",
		"\xe2\x80\xae",
		"\xe2\x81\xa6",
		"\xff",
		"\xc0\x80",
		"\xed\xa0\x80",
		"\xf4\x90\x80\x80",
		"caf\xc3",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(vbi_text_clean(bad[i], strlen(bad[i])));
	/* A NUL inside the string, which strlen() would not see. */
	assert_false(vbi_text_clean("a\0b", 3));
	assert_false(vbi_text_clean("", 1));
}

/* @in with each backslash doubled, into @out; returns its length. */
static size_t double_backslashes(char *out, const unsigned char *in, size_t len)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		if (in[i] == '\\')
			out[n++] = '\\';
		out[n++] = (char)in[i];
	}
	out[n] = '\0';
	return n;
}

/* Check that @in is clean exactly when the escaper copies it as it is. */
static void check_clean_agrees(const unsigned char *in, size_t len)
{
	char out[32], plain[32];
	size_t n, pn;

	n = vbi_log_escape(out, sizeof(out), in, len);
	pn = double_backslashes(plain, in, len);
	assert_int_equal(vbi_text_clean(in, len),
			 n == pn && memcmp(out, plain, n) == 0);
}

/*
 * Every 1- and 2-byte input, every 3-byte lead with every pair of
 * continuation bytes (overlong forms, surrogates, U+2028, the bidi
 * controls) and every 4-byte lead with every second byte: the two
 * functions draw the same line.
 */
static void test_log_text_clean_agrees_with_escape(void **state)
{
	unsigned char b[4];
	unsigned int i, j, k;

	(void)state;
	for (i = 0; i < 256; i++) {
		b[0] = (unsigned char)i;
		check_clean_agrees(b, 1);
		for (j = 0; j < 256; j++) {
			b[1] = (unsigned char)j;
			check_clean_agrees(b, 2);
		}
	}
	for (i = 0xe0; i < 0xf0; i++)
		for (j = 0x80; j < 0xc0; j++)
			for (k = 0x80; k < 0xc0; k++) {
				b[0] = (unsigned char)i;
				b[1] = (unsigned char)j;
				b[2] = (unsigned char)k;
				check_clean_agrees(b, 3);
			}
	for (i = 0xf0; i < 0xf8; i++)
		for (j = 0; j < 256; j++) {
			b[0] = (unsigned char)i;
			b[1] = (unsigned char)j;
			b[2] = 0x80;
			b[3] = 0x80;
			check_clean_agrees(b, 4);
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_silent_without_sink),
		cmocka_unit_test(test_log_level_filter),
		cmocka_unit_test(test_log_long_line_is_cut),
		cmocka_unit_test(test_log_scope_routes_and_nests),
		cmocka_unit_test(test_log_level_names),
		cmocka_unit_test(test_log_sinks_format),
		cmocka_unit_test(test_log_escape_forged_newline),
		cmocka_unit_test(test_log_escape_printable_ascii),
		cmocka_unit_test(test_log_escape_backslash),
		cmocka_unit_test(test_log_escape_c0_and_del),
		cmocka_unit_test(test_log_escape_utf8_kept),
		cmocka_unit_test(test_log_escape_invalid_utf8),
		cmocka_unit_test(test_log_escape_unsafe_characters),
		cmocka_unit_test(test_log_escape_empty_and_size_zero),
		cmocka_unit_test(test_log_escape_truncation),
		cmocka_unit_test(test_log_escape_max_buffer),
		cmocka_unit_test(test_log_text_clean_accepts),
		cmocka_unit_test(test_log_text_clean_rejects),
		cmocka_unit_test(test_log_text_clean_agrees_with_escape),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
