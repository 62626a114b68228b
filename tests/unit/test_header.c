/*
 * test_header.c - the NATS/1.0 header block (core/header.c): what is
 * accepted, what is refused, lookups, iteration, and the encoder's output
 * read back.
 */
#include "core/header.h"

#include <verbus/verbus.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static int valid(const char *s)
{
	return vbi_hdr_validate(s, strlen(s));
}

static void test_header_valid_blocks(void **state)
{
	(void)state;
	assert_int_equal(valid("NATS/1.0\r\n\r\n"), VB_OK);
	assert_int_equal(valid("NATS/1.0\r\nA: b\r\n\r\n"), VB_OK);
	assert_int_equal(valid("NATS/1.0\r\nA:b\r\nA:  c \t\r\n\r\n"), VB_OK);
	assert_int_equal(valid("NATS/1.0\r\nEmpty:\r\n\r\n"), VB_OK);
	assert_int_equal(valid("NATS/1.0 503\r\n\r\n"), VB_OK);
	assert_int_equal(valid("NATS/1.0 408 Request Timeout\r\n\r\n"), VB_OK);
	assert_int_equal(valid("NATS/1.0\r\nU: caf\xc3\xa9\r\n\r\n"), VB_OK);
	assert_int_equal(vbi_hdr_status("NATS/1.0 503\r\n\r\n", 16), 503);
	assert_int_equal(vbi_hdr_status("NATS/1.0\r\n\r\n", 12), 0);
}

static void test_header_malformed_blocks(void **state)
{
	static const char *const bad[] = {
		"",
		"NATS/1.0",
		"NATS/1.0\r\n",
		"NATS/1.0\r\n\r",
		"NATS/1.1\r\n\r\n",
		"nats/1.0\r\n\r\n",
		"NATS/1.0\n\n",
		"NATS/1.0 50\r\n\r\n",
		"NATS/1.0 5x3\r\n\r\n",
		"NATS/1.0\r\nA: b\r\n",
		"NATS/1.0\r\nA b\r\n\r\n",
		"NATS/1.0\r\n: b\r\n\r\n",
		"NATS/1.0\r\nA b: c\r\n\r\n",
		"NATS/1.0\r\nA: b\rc\r\n\r\n",
		"NATS/1.0\r\nA: b\nc\r\n\r\n",
		"NATS/1.0\r\nA: b\r\n\r\nX",
		"NATS/1.0\r\n\r\n\r\n",
	};
	char big[300 + 20];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(valid(bad[i]), VB_EPROTO);
	/* A NUL inside a value. */
	assert_int_equal(vbi_hdr_validate("NATS/1.0\r\nA: \0\r\n\r\n", 18),
			 VB_EPROTO);
	/* A name of 256 bytes. */
	memcpy(big, "NATS/1.0\r\n", 10);
	memset(big + 10, 'n', 256);
	memcpy(big + 266, ": v\r\n\r\n", 8);
	assert_int_equal(valid(big), VB_EPROTO);
	memmove(big + 265, big + 266, 8); /* 255 bytes, then ": v" */
	assert_int_equal(valid(big), VB_OK);
	assert_int_equal(vbi_hdr_validate(NULL, 0), VB_EPROTO);
}

static void test_header_get_and_iterate(void **state)
{
	static const char blk[] = "NATS/1.0\r\nA: 1\r\nb: two  \r\nA:3\r\n"
				  "Nats-Msg-Id:  x y\r\nE:\r\n\r\n";
	struct vbi_hdr_field f;
	const char *v;
	size_t n, pos = 0, count = 0;

	(void)state;
	assert_int_equal(vbi_hdr_get(blk, sizeof(blk) - 1, "A", 1, 0, &v, &n),
			 VB_OK);
	assert_int_equal(n, 1);
	assert_memory_equal(v, "1", 1);
	assert_int_equal(vbi_hdr_get(blk, sizeof(blk) - 1, "A", 1, 1, &v, &n),
			 VB_OK);
	assert_memory_equal(v, "3", 1);
	assert_int_equal(vbi_hdr_get(blk, sizeof(blk) - 1, "A", 1, 2, &v, &n),
			 VB_EAGAIN);
	/* Names are case-sensitive. */
	assert_int_equal(vbi_hdr_get(blk, sizeof(blk) - 1, "a", 1, 0, &v, &n),
			 VB_EAGAIN);
	assert_int_equal(vbi_hdr_get(blk, sizeof(blk) - 1, "b", 1, 0, &v, &n),
			 VB_OK);
	assert_int_equal(n, 3);
	assert_memory_equal(v, "two", 3);
	assert_int_equal(
		vbi_hdr_get(blk, sizeof(blk) - 1, "Nats-Msg-Id", 11, 0, &v, &n),
		VB_OK);
	assert_int_equal(n, 3);
	assert_memory_equal(v, "x y", 3);
	assert_int_equal(vbi_hdr_get(blk, sizeof(blk) - 1, "E", 1, 0, &v, &n),
			 VB_OK);
	assert_int_equal(n, 0);
	while (vbi_hdr_next(blk, sizeof(blk) - 1, &pos, &f) == VB_OK)
		count++;
	assert_int_equal(count, 5);
	assert_int_equal(vbi_hdr_next(blk, sizeof(blk) - 1, &pos, &f),
			 VB_EAGAIN);
	/* A malformed block found before the header sought. */
	assert_int_equal(
		vbi_hdr_get("NATS/1.0\r\nX\r\n\r\n", 15, "A", 1, 0, &v, &n),
		VB_EPROTO);
}

static void test_header_encode(void **state)
{
	const struct vb_header h[] = {
		{ "Content-Type", "text/plain" },
		{ "Empty", "" },
		{ "Dup", "1" },
		{ "Dup", "2" },
	};
	const struct vb_header bad[] = {
		{ "", "v" },	 { "a b", "v" },  { "a:b", "v" },
		{ "a", "x\ry" }, { "a", "x\ny" }, { "\x7f", "v" },
	};
	char out[256];
	const char *v;
	size_t len, n, i;

	(void)state;
	assert_int_equal(vbi_hdr_encoded_len(h, 4, &len), VB_OK);
	assert_true(len < sizeof(out));
	vbi_hdr_encode(h, 4, out);
	assert_int_equal(vbi_hdr_validate(out, len), VB_OK);
	assert_int_equal(len, strlen("NATS/1.0\r\nContent-Type: text/plain\r\n"
				     "Empty: \r\nDup: 1\r\nDup: 2\r\n\r\n"));
	assert_memory_equal(out, "NATS/1.0\r\nContent-Type: text/plain\r\n",
			    36);
	assert_int_equal(vbi_hdr_get(out, len, "Dup", 3, 1, &v, &n), VB_OK);
	assert_memory_equal(v, "2", 1);
	assert_int_equal(vbi_hdr_get(out, len, "Empty", 5, 0, &v, &n), VB_OK);
	assert_int_equal(n, 0);
	/* No headers: the smallest block. */
	assert_int_equal(vbi_hdr_encoded_len(NULL, 0, &len), VB_OK);
	assert_int_equal(len, VBI_HDR_MIN_LEN);
	vbi_hdr_encode(NULL, 0, out);
	assert_memory_equal(out, "NATS/1.0\r\n\r\n", VBI_HDR_MIN_LEN);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(vbi_hdr_check_in(&bad[i]), VB_EINVAL);
		assert_int_equal(vbi_hdr_encoded_len(&bad[i], 1, &len),
				 VB_EINVAL);
	}
	assert_int_equal(vbi_hdr_encoded_len(NULL, 1, &len), VB_EINVAL);
}

/* Every prefix of a valid block is refused, and no read leaves it. */
static void test_header_prefixes(void **state)
{
	static const char blk[] = "NATS/1.0 503 No\r\nA: 1\r\nB:\r\n\r\n";
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(blk) - 1; i++) {
		char *p = malloc(i ? i : 1);

		assert_non_null(p);
		memcpy(p, blk, i);
		assert_int_equal(vbi_hdr_validate(p, i), VB_EPROTO);
		free(p);
	}
	assert_int_equal(vbi_hdr_validate(blk, sizeof(blk) - 1), VB_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_valid_blocks),
		cmocka_unit_test(test_header_malformed_blocks),
		cmocka_unit_test(test_header_get_and_iterate),
		cmocka_unit_test(test_header_encode),
		cmocka_unit_test(test_header_prefixes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
