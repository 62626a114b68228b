/*
 * Unit tests for a subscription's pending limits (clients/lib/pending.c):
 * the defaults, setting limits, which arrival is dropped, slow-consumer
 * episodes reported once; and the public calls of synchronous
 * subscriptions refusing what needs no connection to refuse.
 */
#include "clients/lib/pending.h"

#include <verbus/verbus.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

static void test_pending_defaults(void **state)
{
	struct vbi_pending p;

	(void)state;
	vbi_pending_init(&p);
	assert_int_equal(p.max_msgs, 65536);
	assert_int_equal(p.max_bytes, 64 * 1024 * 1024);
	assert_int_equal(p.msgs, 0);
	assert_int_equal(p.bytes, 0);
	assert_int_equal(p.dropped, 0);
	assert_false(p.slow);
}

static void test_pending_set_limits(void **state)
{
	struct vbi_pending p;

	(void)state;
	vbi_pending_init(&p);
	assert_int_equal(vbi_pending_set_limits(&p, 0, 10), VB_EINVAL);
	assert_int_equal(vbi_pending_set_limits(&p, 10, 0), VB_EINVAL);
	assert_int_equal(vbi_pending_set_limits(&p, -2, 10), VB_EINVAL);
	assert_int_equal(vbi_pending_set_limits(&p, 10, -5), VB_EINVAL);
	/* Refusals change nothing. */
	assert_int_equal(p.max_msgs, 65536);
	assert_int_equal(p.max_bytes, 64 * 1024 * 1024);
	assert_int_equal(vbi_pending_set_limits(&p, 3, -1), VB_OK);
	assert_int_equal(p.max_msgs, 3);
	assert_int_equal(p.max_bytes, -1);
	assert_int_equal(vbi_pending_set_limits(&p, -1, 100), VB_OK);
	assert_int_equal(p.max_msgs, -1);
	assert_int_equal(p.max_bytes, 100);
}

/* A limit of N messages holds N; the N+1th is dropped. */
static void test_pending_msgs_limit(void **state)
{
	struct vbi_pending p;
	int i;

	(void)state;
	vbi_pending_init(&p);
	assert_int_equal(vbi_pending_set_limits(&p, 3, -1), VB_OK);
	for (i = 0; i < 3; i++) {
		assert_int_equal(vbi_pending_admit(&p, 10), VBI_PENDING_TAKE);
		vbi_pending_add(&p, 10);
	}
	assert_int_equal(p.msgs, 3);
	assert_int_equal(p.bytes, 30);
	assert_int_equal(vbi_pending_admit(&p, 10), VBI_PENDING_DROP_FIRST);
	assert_int_equal(vbi_pending_admit(&p, 10), VBI_PENDING_DROP);
	assert_int_equal(vbi_pending_admit(&p, 0), VBI_PENDING_DROP);
	assert_int_equal(p.dropped, 3);
	assert_int_equal(p.msgs, 3); /* drops add nothing */
	vbi_pending_done(&p, 10);
	assert_int_equal(vbi_pending_admit(&p, 10), VBI_PENDING_TAKE);
	assert_false(p.slow);
}

/* Bytes: a message that would pass the limit is dropped, one that fits
 * exactly is taken; one larger than the limit never fits. */
static void test_pending_bytes_limit(void **state)
{
	struct vbi_pending p;

	(void)state;
	vbi_pending_init(&p);
	assert_int_equal(vbi_pending_set_limits(&p, -1, 100), VB_OK);
	assert_int_equal(vbi_pending_admit(&p, 101), VBI_PENDING_DROP_FIRST);
	assert_int_equal(vbi_pending_admit(&p, 60), VBI_PENDING_TAKE);
	vbi_pending_add(&p, 60);
	assert_int_equal(vbi_pending_admit(&p, 41), VBI_PENDING_DROP_FIRST);
	assert_int_equal(vbi_pending_admit(&p, 40), VBI_PENDING_TAKE);
	vbi_pending_add(&p, 40);
	assert_int_equal(p.bytes, 100);
	assert_int_equal(vbi_pending_admit(&p, 1), VBI_PENDING_DROP_FIRST);
	/* Zero bytes still fit a full byte limit: no message limit. */
	assert_int_equal(vbi_pending_admit(&p, 0), VBI_PENDING_TAKE);
	assert_int_equal(p.dropped, 3);
	/* Huge sizes do not wrap the comparison. */
	assert_int_equal(vbi_pending_admit(&p, UINT64_MAX),
			 VBI_PENDING_DROP_FIRST);
}

/* One report per episode: drops in a row are one episode; a message taken
 * ends it, and the next drop starts another. */
static void test_pending_episodes(void **state)
{
	struct vbi_pending p;
	int first = 0, i;

	(void)state;
	vbi_pending_init(&p);
	assert_int_equal(vbi_pending_set_limits(&p, 1, -1), VB_OK);
	assert_int_equal(vbi_pending_admit(&p, 5), VBI_PENDING_TAKE);
	vbi_pending_add(&p, 5);
	for (i = 0; i < 100; i++)
		first += vbi_pending_admit(&p, 5) == VBI_PENDING_DROP_FIRST;
	assert_int_equal(first, 1);
	assert_true(p.slow);
	vbi_pending_done(&p, 5);
	assert_int_equal(vbi_pending_admit(&p, 5), VBI_PENDING_TAKE);
	vbi_pending_add(&p, 5);
	assert_false(p.slow);
	for (i = 0; i < 10; i++)
		first += vbi_pending_admit(&p, 5) == VBI_PENDING_DROP_FIRST;
	assert_int_equal(first, 2);
	assert_int_equal(p.dropped, 110);
}

/* No limits: everything is taken. */
static void test_pending_unlimited(void **state)
{
	struct vbi_pending p;
	int i;

	(void)state;
	vbi_pending_init(&p);
	assert_int_equal(vbi_pending_set_limits(&p, -1, -1), VB_OK);
	for (i = 0; i < 100000; i++) {
		assert_int_equal(vbi_pending_admit(&p, 1 << 20),
				 VBI_PENDING_TAKE);
		vbi_pending_add(&p, 1 << 20);
	}
	assert_int_equal(p.msgs, 100000);
	assert_int_equal(p.dropped, 0);
}

/* Counters never go below zero. */
static void test_pending_done_floor(void **state)
{
	struct vbi_pending p;

	(void)state;
	vbi_pending_init(&p);
	vbi_pending_add(&p, 10);
	vbi_pending_done(&p, 20);
	assert_int_equal(p.msgs, 0);
	assert_int_equal(p.bytes, 0);
	vbi_pending_done(&p, 1);
	assert_int_equal(p.msgs, 0);
	assert_int_equal(p.bytes, 0);
}

/* The public calls refuse what needs no connection to refuse. */
static void test_pending_public_refusals(void **state)
{
	struct vb_msg *m = (struct vb_msg *)(uintptr_t)1;
	struct vb_sub *s = (struct vb_sub *)(uintptr_t)1;
	char buf[VB_INBOX_LEN] = "untouched";
	uint64_t n = 7, b = 7;
	int64_t lm = 7, lb = 7;

	(void)state;
	assert_int_equal(vb_subscribe_sync(NULL, "a", NULL, &s), VB_EINVAL);
	assert_int_equal(vb_next_msg(NULL, 0, &m), VB_EINVAL);
	assert_int_equal(vb_sub_set_pending_limits(NULL, 1, 1), VB_EINVAL);
	assert_int_equal(vb_sub_pending_limits(NULL, &lm, &lb), VB_EINVAL);
	assert_int_equal(vb_sub_pending(NULL, &n, &b), VB_EINVAL);
	assert_int_equal(vb_sub_dropped(NULL), 0);
	assert_int_equal(vb_new_inbox(NULL, buf, sizeof(buf)), VB_EINVAL);
	/* Output parameters untouched on failure. */
	assert_ptr_equal(s, (struct vb_sub *)(uintptr_t)1);
	assert_ptr_equal(m, (struct vb_msg *)(uintptr_t)1);
	assert_int_equal(n, 7);
	assert_int_equal(lm, 7);
	assert_string_equal(buf, "untouched");
	assert_string_equal(vb_errname(VB_ETIMEDOUT), "VB_ETIMEDOUT");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pending_defaults),
		cmocka_unit_test(test_pending_set_limits),
		cmocka_unit_test(test_pending_msgs_limit),
		cmocka_unit_test(test_pending_bytes_limit),
		cmocka_unit_test(test_pending_episodes),
		cmocka_unit_test(test_pending_unlimited),
		cmocka_unit_test(test_pending_done_floor),
		cmocka_unit_test(test_pending_public_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
