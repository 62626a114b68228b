/*
 * test_inbox.c - private inboxes and responders' grants (daemon/inbox.c),
 * and the inbox id libverbus computes (clients/lib/inbox.c, OpenSSL)
 * against the broker's (libsodium): the same for the same secret.
 */
#include "clients/lib/client.h"
#include "daemon/inbox.h"
#include "proto/codec.h"

#include <verbus/verbus.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static void test_inbox_id_agrees(void **state)
{
	Verbus__Credentials cr = VERBUS__CREDENTIALS__INIT;
	uint8_t secret[16], packed[256];
	char lib[17], brk[VBD_INBOX_ID_LEN + 1];
	size_t len;

	(void)state;
	for (int k = 0; k < 16; k++) {
		for (int i = 0; i < 16; i++)
			secret[i] = (uint8_t)(k * 31 + i * 7);
		cr.token = cr.user = cr.password = (char *)"";
		cr.inbox_secret.data = secret;
		cr.inbox_secret.len = sizeof(secret);
		len = verbus__credentials__pack(&cr, packed);
		assert_int_equal(vbi_inbox_id(secret, sizeof(secret), lib),
				 VB_OK);
		vbd_inbox_id(packed, len, brk);
		assert_int_equal(strlen(brk), VBD_INBOX_ID_LEN);
		assert_string_equal(lib, brk);
	}
	/* SHA-256("abc") starts ba7816bf8f01cfea. */
	assert_int_equal(vbi_inbox_id((const uint8_t *)"abc", 3, lib), VB_OK);
	assert_string_equal(lib, "ba7816bf8f01cfea");
	/* No secret, a short one, garbage: no inbox. */
	cr.inbox_secret.len = 0;
	len = verbus__credentials__pack(&cr, packed);
	vbd_inbox_id(packed, len, brk);
	assert_string_equal(brk, "");
	cr.inbox_secret.len = 8;
	len = verbus__credentials__pack(&cr, packed);
	vbd_inbox_id(packed, len, brk);
	assert_string_equal(brk, "");
	vbd_inbox_id("\xff\xff\xff", 3, brk);
	assert_string_equal(brk, "");
	vbd_inbox_id(NULL, 0, brk);
	assert_string_equal(brk, "");
}

static void test_inbox_owner(void **state)
{
	const char *s;
	size_t n;

	(void)state;
#define OWNER(subj, want)                                    \
	do {                                                 \
		s = vbd_inbox_owner(subj, strlen(subj), &n); \
		assert_non_null(s);                          \
		assert_int_equal(n, strlen(want));           \
		assert_memory_equal(s, want, n);             \
	} while (0)
	OWNER("_INBOX.abc", "abc");
	OWNER("_INBOX.abc.1", "abc");
	OWNER("_INBOX.abc-7", "abc");
	OWNER("_INBOX.abc-7.x.y", "abc");
	OWNER("_INBOX.-7", "");
	assert_null(vbd_inbox_owner("_INBOX", 6, &n));
	assert_null(vbd_inbox_owner("_INBOXX.a", 9, &n));
	assert_null(vbd_inbox_owner("orders.x", 8, &n));
	assert_null(vbd_inbox_owner("_inbox.abc", 10, &n));
	assert_true(vbd_inbox_is("abc", "abc.1", 3));
	assert_false(vbd_inbox_is("abcd", "abc", 3));
	assert_false(vbd_inbox_is("ab", "abc", 3));
	assert_false(vbd_inbox_is("", "", 0)); /* no id owns nothing */
}

static void test_inbox_pattern(void **state)
{
	(void)state;
#define PAT(p, id) vbd_inbox_pattern(p, strlen(p), id)
	assert_int_equal(PAT("orders.>", "abc"), VBD_INBOX_NONE);
	assert_int_equal(PAT(">", "abc"), VBD_INBOX_NONE);
	assert_int_equal(PAT("*.abc", "abc"), VBD_INBOX_NONE);
	assert_int_equal(PAT("_INBOX", "abc"), VBD_INBOX_NONE);
	assert_int_equal(PAT("_INBOX.abc.*", "abc"), VBD_INBOX_OWN);
	assert_int_equal(PAT("_INBOX.abc", "abc"), VBD_INBOX_OWN);
	assert_int_equal(PAT("_INBOX.abc-3", "abc"), VBD_INBOX_OWN);
	assert_int_equal(PAT("_INBOX.abc-3.>", "abc"), VBD_INBOX_OWN);
	assert_int_equal(PAT("_INBOX.>", "abc"), VBD_INBOX_OTHER);
	assert_int_equal(PAT("_INBOX.*", "abc"), VBD_INBOX_OTHER);
	assert_int_equal(PAT("_INBOX.*.x", "abc"), VBD_INBOX_OTHER);
	assert_int_equal(PAT("_INBOX.abd.*", "abc"), VBD_INBOX_OTHER);
	assert_int_equal(PAT("_INBOX.abcd", "abc"), VBD_INBOX_OTHER);
	assert_int_equal(PAT("_INBOX.abc.*", ""), VBD_INBOX_OTHER);
}

static void test_grants(void **state)
{
	struct vbd_grants *g = NULL;
	int there = 0;
	void *to = &there;
	char subj[32];

	(void)state;
	assert_false(vbd_grants_use(NULL, "a", 1, 0, &to));
	/* A grant into another account gives its destination back. */
	assert_int_equal(vbd_grants_add(&g, "_INBOX.y.1", 10, 1, 0, &there),
			 VB_OK);
	to = NULL;
	assert_true(vbd_grants_use(g, "_INBOX.y.1", 10, 5, &to));
	assert_ptr_equal(to, &there);
	/* Twice, then no more. */
	assert_int_equal(vbd_grants_add(&g, "_INBOX.x.1", 10, 2, 0, NULL),
			 VB_OK);
	assert_false(vbd_grants_use(g, "_INBOX.x.2", 10, 5, &to));
	assert_true(vbd_grants_use(g, "_INBOX.x.1", 10, 5, &to));
	assert_null(to);
	assert_true(vbd_grants_use(g, "_INBOX.x.1", 10, 5, &to));
	assert_false(vbd_grants_use(g, "_INBOX.x.1", 10, 5, &to));
	assert_int_equal(vbd_grants_count(g), 0);
	/* Expired. */
	assert_int_equal(vbd_grants_add(&g, "r.1", 3, 5, 100, NULL), VB_OK);
	assert_true(vbd_grants_use(g, "r.1", 3, 99, &to));
	assert_false(vbd_grants_use(g, "r.1", 3, 100, &to));
	assert_int_equal(vbd_grants_count(g), 0);
	/* The newest VBD_GRANTS_MAX are kept, the oldest go. */
	for (int i = 0; i < VBD_GRANTS_MAX + 10; i++) {
		int n = snprintf(subj, sizeof(subj), "r.%d", i);

		assert_int_equal(
			vbd_grants_add(&g, subj, (size_t)n, 1, 0, NULL), VB_OK);
	}
	assert_int_equal(vbd_grants_count(g), VBD_GRANTS_MAX);
	assert_false(vbd_grants_use(g, "r.0", 3, 1, &to));
	assert_false(vbd_grants_use(g, "r.9", 3, 1, &to));
	assert_true(vbd_grants_use(g, "r.10", 4, 1, &to));
	/* Added again: one grant, the latest count. */
	assert_int_equal(vbd_grants_add(&g, "r.11", 4, 3, 0, NULL), VB_OK);
	assert_int_equal(vbd_grants_count(g), VBD_GRANTS_MAX - 1);
	for (int i = 0; i < 3; i++)
		assert_true(vbd_grants_use(g, "r.11", 4, 1, &to));
	assert_false(vbd_grants_use(g, "r.11", 4, 1, &to));
	vbd_grants_destroy(g);
	vbd_grants_destroy(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inbox_id_agrees),
		cmocka_unit_test(test_inbox_owner),
		cmocka_unit_test(test_inbox_pattern),
		cmocka_unit_test(test_grants),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
