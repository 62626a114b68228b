/*
 * test_resend.c - direct mode's RESEND prefix (core/resend.c): the encoder
 * read back, little-endian on the wire, and what a prefix may not say.
 */
#include "core/frame.h"
#include "core/resend.h"

#include <verbus/verbus.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static uint8_t buf[VBI_RESEND_PREFIX_LEN + 16];

static void put(uint64_t pub, uint64_t sub, uint64_t seq, uint8_t kind)
{
	struct vbi_resend r = {
		.pub_id = pub,
		.sub_id = sub,
		.seq = seq,
		.kind = kind,
		.conn = { 1, 2, 3, 4, 5, 6, 0xff },
	};

	memset(buf, 0xaa, sizeof(buf));
	vbi_resend_put(buf, &r);
}

static void test_resend_round_trip(void **state)
{
	struct vbi_resend r;

	(void)state;
	put(0x0102030405060708ull, 7, 1500, VBI_FRAME_HMSG);
	assert_int_equal(vbi_resend_parse(buf, sizeof(buf), &r), VB_OK);
	assert_true(r.pub_id == 0x0102030405060708ull);
	assert_true(r.sub_id == 7);
	assert_true(r.seq == 1500);
	assert_int_equal(r.kind, VBI_FRAME_HMSG);
	assert_ptr_equal(r.payload, buf + VBI_RESEND_PREFIX_LEN);
	assert_int_equal(r.payload_len, 16);
	for (int i = 0; i < 6; i++)
		assert_int_equal(r.conn[i], i + 1);
	assert_int_equal(r.conn[6], 0xff);
	/* Little endian, the connection's tag last. */
	assert_int_equal(buf[0], 0x08);
	assert_int_equal(buf[7], 0x01);
	assert_int_equal(buf[8], 7);
	assert_int_equal(buf[16], 1500 & 0xff);
	assert_int_equal(buf[17], 1500 >> 8);
	for (int i = 25; i < 31; i++)
		assert_int_equal(buf[i], i - 24);
	assert_int_equal(buf[31], 0xff);
	/* No payload after the prefix: an empty message. */
	assert_int_equal(vbi_resend_parse(buf, VBI_RESEND_PREFIX_LEN, &r),
			 VB_OK);
	assert_int_equal(r.payload_len, 0);
}

static void test_resend_refused(void **state)
{
	struct vbi_resend r = { .seq = 99 };

	(void)state;
	put(1, 2, 3, VBI_FRAME_MSG);
	assert_int_equal(vbi_resend_parse(buf, VBI_RESEND_PREFIX_LEN - 1, &r),
			 VB_EPROTO);
	assert_int_equal(vbi_resend_parse(NULL, 64, &r), VB_EPROTO);
	/* Zero ids or number; kinds that are not a message of one frame. */
	put(0, 2, 3, VBI_FRAME_MSG);
	assert_int_equal(vbi_resend_parse(buf, sizeof(buf), &r), VB_EPROTO);
	put(1, 0, 3, VBI_FRAME_MSG);
	assert_int_equal(vbi_resend_parse(buf, sizeof(buf), &r), VB_EPROTO);
	put(1, 2, 0, VBI_FRAME_MSG);
	assert_int_equal(vbi_resend_parse(buf, sizeof(buf), &r), VB_EPROTO);
	put(1, 2, 3, VBI_FRAME_CHUNK);
	assert_int_equal(vbi_resend_parse(buf, sizeof(buf), &r), VB_EPROTO);
	put(1, 2, 3, VBI_FRAME_RESEND);
	assert_int_equal(vbi_resend_parse(buf, sizeof(buf), &r), VB_EPROTO);
	put(1, 2, 3, VBI_FRAME_PAD);
	assert_int_equal(vbi_resend_parse(buf, sizeof(buf), &r), VB_EPROTO);
	/* Nothing written on error. */
	assert_true(r.seq == 99);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resend_round_trip),
		cmocka_unit_test(test_resend_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
