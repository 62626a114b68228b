/*
 * Unit tests for the losses a broker keeps for a route's peer
 * (daemon/rloss.c): counted by (subject, sid), given back oldest first,
 * never forgotten past the table's bound.
 */
#include "daemon/rloss.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

static void add(struct vbd_rloss *t, const char *subj, uint32_t sid, uint64_t n)
{
	vbd_rloss_add(t, subj, strlen(subj), sid, n);
}

static void expect_next(struct vbd_rloss *t, const char *subj, uint32_t sid,
			uint64_t n)
{
	struct vbd_rloss_entry e;

	assert_true(vbd_rloss_peek(t, &e));
	assert_string_equal(e.subject, subj);
	assert_int_equal(e.sid, sid);
	assert_int_equal(e.count, n);
	vbd_rloss_pop(t);
}

static void test_rloss_aggregates(void **state)
{
	struct vbd_rloss *t = vbd_rloss_create();
	struct vbd_rloss_entry e;

	(void)state;
	assert_non_null(t);
	assert_false(vbd_rloss_peek(t, &e));
	add(t, "orders.new", 0, 1);
	add(t, "orders.old", 0, 2);
	add(t, "orders.new", 7, 1); /* another sid: another entry */
	add(t, "orders.new", 0, 3);
	add(t, "orders.nothing", 0, 0); /* nothing lost: no entry */
	/* A subject given with its reply suffix cut off by length. */
	vbd_rloss_add(t, "orders.old INBOX.1", 10, 0, 1);
	assert_int_equal(vbd_rloss_owed(t), 8);
	expect_next(t, "orders.new", 0, 4);
	expect_next(t, "orders.old", 0, 3);
	/* Added after being sent: a new entry at the back. */
	add(t, "orders.new", 0, 1);
	expect_next(t, "orders.new", 7, 1);
	expect_next(t, "orders.new", 0, 1);
	assert_false(vbd_rloss_peek(t, &e));
	assert_int_equal(vbd_rloss_owed(t), 0);
	vbd_rloss_destroy(t);
	vbd_rloss_destroy(NULL);
}

static void test_rloss_bounded(void **state)
{
	struct vbd_rloss *t = vbd_rloss_create();
	char subj[32];
	unsigned i;

	(void)state;
	for (i = 0; i < VBD_RLOSS_MAX + 10; i++) {
		snprintf(subj, sizeof(subj), "s.%u", i);
		add(t, subj, 0, 2);
	}
	assert_int_equal(vbd_rloss_owed(t), 2 * (VBD_RLOSS_MAX + 10));
	for (i = 0; i < VBD_RLOSS_MAX; i++) {
		snprintf(subj, sizeof(subj), "s.%u", i);
		expect_next(t, subj, 0, 2);
	}
	/* The ten that found no room: counted, unattributed, last. */
	expect_next(t, "", 0, 20);
	assert_int_equal(vbd_rloss_owed(t), 0);
	vbd_rloss_destroy(t);
}

static void test_rloss_long_subject(void **state)
{
	struct vbd_rloss *t = vbd_rloss_create();
	char a[600], b[600];

	(void)state;
	memset(a, 'a', sizeof(a) - 1);
	a[sizeof(a) - 1] = '\0';
	memcpy(b, a, sizeof(b));
	b[300] = 'b';
	add(t, a, 1, 1);
	add(t, b, 1, 1);
	add(t, a, 1, 1);
	expect_next(t, a, 1, 2);
	expect_next(t, b, 1, 1);
	/* Entries left in the table are freed with it. */
	add(t, a, 2, 5);
	add(t, "", 0, 4); /* no subject: unattributed */
	assert_int_equal(vbd_rloss_owed(t), 9);
	vbd_rloss_destroy(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rloss_aggregates),
		cmocka_unit_test(test_rloss_bounded),
		cmocka_unit_test(test_rloss_long_subject),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
