/* Unit tests for how the verbus tool shows messages (clients/cli/print.c). */
#include "cli/print.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* What @mode prints for @m, in a malloc()ed string. */
static char *printed(uint64_t index, const struct vb_msg *m,
		     enum cli_payload mode)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	cli_print_msg(f, index, m, mode);
	fclose(f);
	return buf;
}

static struct vb_msg msg(const char *subject, const void *data, size_t size)
{
	struct vb_msg m = { .subject = subject,
			    .subject_len = strlen(subject),
			    .data = data,
			    .size = size };
	return m;
}

static void test_cli_print_text(void **state)
{
	/* The subject is a view: not NUL-terminated where it ends. */
	struct vb_msg m = msg("orders.newXXX", "hello", 5);
	char *s;

	(void)state;
	m.subject_len = 10;
	s = printed(1, &m, CLI_PAYLOAD_AUTO);
	assert_string_equal(s, "[#1] orders.new (5 bytes)\nhello\n");
	free(s);

	m.reply = "_INBOX.1.2zz";
	m.reply_len = 10;
	m.size = 1;
	s = printed(42, &m, CLI_PAYLOAD_AUTO);
	assert_string_equal(s,
			    "[#42] orders.new (1 byte) reply _INBOX.1.2\nh\n");
	free(s);

	/* UTF-8, tabs and newlines are text. */
	m = msg("a", "caf\xc3\xa9\tline\nnext", 15);
	s = printed(3, &m, CLI_PAYLOAD_AUTO);
	assert_string_equal(s, "[#3] a (15 bytes)\ncaf\xc3\xa9\tline\nnext\n");
	free(s);

	/* An empty payload still has its line. */
	m = msg("a", "", 0);
	s = printed(1, &m, CLI_PAYLOAD_AUTO);
	assert_string_equal(s, "[#1] a (0 bytes)\n\n");
	free(s);
}

static void test_cli_print_headers(void **state)
{
	static const char blk[] = "NATS/1.0\r\nTrace-Id: 42\r\nE:\r\n"
				  "Ctl: a\x01"
				  "b\r\n\r\n";
	struct vb_msg m = msg("orders.new", "hello", 5);
	char *s;

	(void)state;
	m.headers = blk;
	m.headers_len = sizeof(blk) - 1;
	s = printed(1, &m, CLI_PAYLOAD_AUTO);
	assert_string_equal(s, "[#1] orders.new (5 bytes)\nTrace-Id: 42\nE: "
			       "\nCtl: a\\x01b\nhello\n");
	free(s);
	/* --raw: the payload only. */
	s = printed(1, &m, CLI_PAYLOAD_RAW);
	assert_string_equal(s, "hello\n");
	free(s);
	m.headers_len = 12; /* cut inside the first header: malformed */
	s = printed(1, &m, CLI_PAYLOAD_AUTO);
	assert_string_equal(s, "[#1] orders.new (5 bytes)\n(malformed header "
			       "block)\nhello\n");
	free(s);
}

static void test_cli_print_binary_as_hex(void **state)
{
	static const unsigned char bin[] = { 0x00, 0x01, 'A', 0xff };
	struct vb_msg m = msg("b", bin, sizeof(bin));
	char *s;

	(void)state;
	s = printed(1, &m, CLI_PAYLOAD_AUTO);
	assert_string_equal(s,
			    "[#1] b (4 bytes)\n"
			    "0000  00 01 41 ff                                "
			    "      |..A.|\n");
	free(s);

	/* --hex: text too. */
	m = msg("b", "hi", 2);
	s = printed(1, &m, CLI_PAYLOAD_HEX);
	assert_string_equal(s,
			    "[#1] b (2 bytes)\n"
			    "0000  68 69                                      "
			    "      |hi|\n");
	free(s);
}

static void test_cli_print_long_binary_is_cut(void **state)
{
	unsigned char big[CLI_HEX_PREVIEW + 100];
	struct vb_msg m;
	char *s;

	(void)state;
	memset(big, 0x80, sizeof(big));
	m = msg("big", big, sizeof(big));
	s = printed(1, &m, CLI_PAYLOAD_AUTO);
	assert_non_null(
		strstr(s, "... 100 more bytes (--hex shows them all)\n"));
	assert_non_null(strstr(s, "\n00f0 "));
	assert_null(strstr(s, "\n0100 "));
	free(s);
	s = printed(1, &m, CLI_PAYLOAD_HEX);
	assert_null(strstr(s, "more bytes"));
	assert_non_null(strstr(s, "\n0160 "));
	free(s);
}

static void test_cli_print_raw(void **state)
{
	static const char bin[] = { 'a', 0, 'b' };
	struct vb_msg m = msg("r", bin, sizeof(bin));
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);

	(void)state;
	cli_print_msg(f, 1, &m, CLI_PAYLOAD_RAW);
	fclose(f);
	assert_int_equal(len, 4);
	assert_memory_equal(s, "a\0b\n", 4);
	free(s);
}

/* Anything that could upset a terminal is not text. */
static void test_cli_print_is_text(void **state)
{
	static const char *const not_text[] = {
		"\x1b[31mred", /* an escape sequence */
		"a\x7f", /* DEL */
		"\xc3", /* a cut sequence */
		"\xc0\xaf", /* overlong '/' */
		"\xed\xa0\x80", /* a surrogate */
		"\xf4\x90\x80\x80", /* beyond U+10FFFF */
		"\xc2\x85", /* a C1 control (NEL) */
		"\xff",
	};
	size_t i;

	(void)state;
	assert_true(cli_is_text("", 0));
	assert_true(cli_is_text("plain \t\r\n", 9));
	assert_true(cli_is_text("\xe2\x82\xac 5", 5)); /* the euro sign */
	assert_true(cli_is_text("\xf0\x9f\x98\x80", 4)); /* an emoji */
	assert_false(cli_is_text("a\0b", 3));
	for (i = 0; i < sizeof(not_text) / sizeof(not_text[0]); i++)
		if (cli_is_text(not_text[i], strlen(not_text[i])))
			fail_msg("not_text[%zu] taken for text", i);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cli_print_text),
		cmocka_unit_test(test_cli_print_headers),
		cmocka_unit_test(test_cli_print_binary_as_hex),
		cmocka_unit_test(test_cli_print_long_binary_is_cut),
		cmocka_unit_test(test_cli_print_raw),
		cmocka_unit_test(test_cli_print_is_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
