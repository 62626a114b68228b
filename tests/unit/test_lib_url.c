/*
 * Unit tests for libverbus's URL functions (clients/lib/url.c) and
 * vb_connect()'s refusal of a scheme no transport serves, which comes
 * before any device is touched.
 */
#include <verbus/verbus.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

static void test_lib_url_parse(void **state)
{
	struct vb_url u;
	char err[128] = "";

	(void)state;
	assert_int_equal(vb_url_parse("Tcp://[::1]:9", &u, err, sizeof(err)),
			 VB_OK);
	assert_string_equal(u.scheme, "tcp");
	assert_string_equal(u.host, "::1");
	assert_string_equal(u.port, "9");
	assert_int_equal(u.has_scheme, 1);
	assert_int_equal(u.has_port, 1);
	assert_int_equal(vb_url_parse("h", &u, err, sizeof(err)), VB_OK);
	assert_string_equal(u.scheme, "rdma");
	assert_string_equal(u.port, "7700");
	assert_int_equal(u.has_scheme, 0);
	assert_int_equal(u.has_port, 0);

	assert_int_equal(vb_url_parse("rdma://h/x", &u, err, sizeof(err)),
			 VB_EINVAL);
	assert_non_null(strstr(err, "unexpected"));
	assert_int_equal(vb_url_parse("h", NULL, err, sizeof(err)), VB_EINVAL);
	assert_int_equal(vb_url_parse(NULL, &u, NULL, 0), VB_EINVAL);
}

static void test_lib_url_supported(void **state)
{
	struct vb_url u;
	char err[128] = "";

	(void)state;
	assert_int_equal(vb_url_parse("RDMA://h", &u, err, sizeof(err)), VB_OK);
	assert_int_equal(vb_url_supported(&u, err, sizeof(err)), VB_OK);
	assert_int_equal(vb_url_parse("udp://h:1", &u, err, sizeof(err)),
			 VB_OK);
	assert_int_equal(vb_url_supported(&u, err, sizeof(err)), VB_EINVAL);
	assert_string_equal(
		err,
		"unsupported scheme \"udp\" (this build has: rdma, tcp, tls)");
	/* Cut, never overrun. */
	memset(err, 'x', sizeof(err));
	assert_int_equal(vb_url_supported(&u, err, 8), VB_EINVAL);
	assert_string_equal(err, "unsuppo");
	assert_int_equal(err[8], 'x');
	assert_int_equal(vb_url_supported(NULL, NULL, 0), VB_EINVAL);
}

/* Refused before any transport or device is created. */
static void test_lib_url_connect_refuses(void **state)
{
	struct vb_conn *c = (struct vb_conn *)&c;

	(void)state;
	assert_int_equal(vb_connect("udp://127.0.0.1:7700", NULL, &c),
			 VB_EINVAL);
	assert_int_equal(vb_connect("rdma://u@h", NULL, &c), VB_EINVAL);
	assert_int_equal(vb_connect("1x://h", NULL, &c), VB_EINVAL);
	/* Output written only on success. */
	assert_ptr_equal(c, (struct vb_conn *)&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lib_url_parse),
		cmocka_unit_test(test_lib_url_supported),
		cmocka_unit_test(test_lib_url_connect_refuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
