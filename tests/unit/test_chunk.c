/*
 * test_chunk.c - a large message's chunk prefix (core/chunk.c): what one
 * chunk may say of itself, and the encoder read back.
 */
#include "core/chunk.h"

#include <verbus/verbus.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static uint8_t buf[VBI_CHUNK_PREFIX_LEN + 64];

/* Parse a chunk of @len data bytes with this prefix. */
static int parse(uint32_t total, uint32_t off, uint32_t flags, uint32_t len,
		 struct vbi_chunk *out)
{
	struct vbi_chunk ck = { .tag = 0x0102030405060708ull,
				.total = total,
				.off = off,
				.flags = flags };

	vbi_chunk_put(buf, &ck);
	return vbi_chunk_parse(buf, VBI_CHUNK_PREFIX_LEN + len, out);
}

static void test_chunk_round_trip(void **state)
{
	struct vbi_chunk ck;

	(void)state;
	assert_int_equal(
		parse(100, 0, VBI_CHUNK_FIRST | VBI_CHUNK_HDRS, 40, &ck),
		VB_OK);
	assert_true(ck.tag == 0x0102030405060708ull);
	assert_int_equal(ck.total, 100);
	assert_int_equal(ck.off, 0);
	assert_int_equal(ck.flags, VBI_CHUNK_FIRST | VBI_CHUNK_HDRS);
	assert_ptr_equal(ck.data, buf + VBI_CHUNK_PREFIX_LEN);
	assert_int_equal(ck.len, 40);
	/* Little endian on the wire. */
	assert_int_equal(buf[0], 0x08);
	assert_int_equal(buf[7], 0x01);
	assert_int_equal(buf[8], 100);
	assert_int_equal(parse(100, 40, 0, 40, &ck), VB_OK);
	assert_int_equal(parse(100, 80, VBI_CHUNK_LAST, 20, &ck), VB_OK);
	assert_int_equal(
		parse(20, 0, VBI_CHUNK_FIRST | VBI_CHUNK_LAST, 20, &ck), VB_OK);
	assert_int_equal(parse(100, 40, VBI_CHUNK_ABORT, 0, &ck), VB_OK);
	assert_int_equal(ck.len, 0);
}

static void test_chunk_refused(void **state)
{
	struct vbi_chunk ck = { 0 };

	(void)state;
	/* Too short for the prefix. */
	assert_int_equal(vbi_chunk_parse(buf, VBI_CHUNK_PREFIX_LEN - 1, &ck),
			 VB_EPROTO);
	assert_int_equal(vbi_chunk_parse(NULL, 64, &ck), VB_EPROTO);
	/* Total 0, or above the protocol's bound. */
	assert_int_equal(parse(0, 0, VBI_CHUNK_FIRST, 1, &ck), VB_EPROTO);
	assert_int_equal(
		parse(VBI_CHUNK_TOTAL_MAX + 1, 0, VBI_CHUNK_FIRST, 1, &ck),
		VB_EPROTO);
	/* Past the total. */
	assert_int_equal(parse(100, 90, 0, 20, &ck), VB_EPROTO);
	assert_int_equal(parse(100, 101, VBI_CHUNK_ABORT, 0, &ck), VB_EPROTO);
	/* FIRST only at offset 0, and offset 0 only with FIRST. */
	assert_int_equal(parse(100, 10, VBI_CHUNK_FIRST, 10, &ck), VB_EPROTO);
	assert_int_equal(parse(100, 0, 0, 10, &ck), VB_EPROTO);
	/* LAST exactly at the end. */
	assert_int_equal(parse(100, 40, VBI_CHUNK_LAST, 10, &ck), VB_EPROTO);
	assert_int_equal(parse(100, 80, 0, 20, &ck), VB_EPROTO);
	/* ABORT alone, without data. */
	assert_int_equal(parse(100, 40, VBI_CHUNK_ABORT, 8, &ck), VB_EPROTO);
	assert_int_equal(
		parse(100, 0, VBI_CHUNK_ABORT | VBI_CHUNK_FIRST, 0, &ck),
		VB_EPROTO);
	/* A chunk without data, unknown flags, the reserved word. */
	assert_int_equal(parse(100, 40, 0, 0, &ck), VB_EPROTO);
	assert_int_equal(parse(100, 0, VBI_CHUNK_FIRST | 0x10, 10, &ck),
			 VB_EPROTO);
	assert_int_equal(parse(100, 0, VBI_CHUNK_FIRST, 10, &ck), VB_OK);
	buf[20] = 1;
	assert_int_equal(vbi_chunk_parse(buf, VBI_CHUNK_PREFIX_LEN + 10, &ck),
			 VB_EPROTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chunk_round_trip),
		cmocka_unit_test(test_chunk_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
