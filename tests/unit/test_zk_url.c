/*
 * Unit tests for the ZooKeeper URL and broker ids (daemon/zk_url.c), and for
 * vbd_zk_create() refusing bad arguments and coming to no harm with no
 * server: a closed port on the loopback, never another machine.
 */
#include "core/log.h"
#include "daemon/zk.h"

#include <verbus/verbus.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

/* The last line logged at "err", for the refusals' reasons. */
static char last_err[600];

static void sink(void *arg, enum vbi_log_level level, const char *line)
{
	(void)arg;
	if (level == VBI_LOG_ERR)
		snprintf(last_err, sizeof(last_err), "%s", line);
}

static int setup(void **state)
{
	(void)state;
	vbi_log_set(sink, NULL, VBI_LOG_ERR);
	return 0;
}

/* @url parses to @hosts and @path. */
static void accept_as(const char *url, const char *hosts, const char *path)
{
	char h[256], p[256];

	assert_int_equal(vbd_zk_url_parse(url, h, sizeof(h), p, sizeof(p)),
			 VB_OK);
	assert_string_equal(h, hosts);
	assert_string_equal(p, path);
}

/* @url is refused, with @why in the log line, and nothing written. */
static void refuse(const char *url, const char *why)
{
	char h[256] = "untouched", p[256] = "untouched";

	last_err[0] = '\0';
	assert_int_equal(vbd_zk_url_parse(url, h, sizeof(h), p, sizeof(p)),
			 VB_EINVAL);
	if (!strstr(last_err, why))
		fail_msg("'%s': expected '%s' in '%s'", url ? url : "(null)",
			 why, last_err);
	assert_string_equal(h, "untouched");
	assert_string_equal(p, "untouched");
}

static void test_zk_url_accepts(void **state)
{
	(void)state;
	accept_as("zk://127.0.0.1:2181/verbus/c1", "127.0.0.1:2181",
		  "/verbus/c1");
	accept_as("127.0.0.1:2181/verbus/c1", "127.0.0.1:2181", "/verbus/c1");
	accept_as("ZK://10.0.0.1:1/v", "10.0.0.1:1", "/v");
	accept_as("zk://10.0.0.1:2181,10.0.0.2:2182,10.0.0.3:65535/a/b/c",
		  "10.0.0.1:2181,10.0.0.2:2182,10.0.0.3:65535", "/a/b/c");
	accept_as("zk://zk-1.example.com:2181/verbus", "zk-1.example.com:2181",
		  "/verbus");
	accept_as("zk://h:0010/verbus/c1/", "h:10", "/verbus/c1");
	accept_as("zk://h:1/a_b/c-d/e.f//", "h:1", "/a_b/c-d/e.f");
	accept_as("zk://h:1/zookeeperx/zookeeper", "h:1",
		  "/zookeeperx/zookeeper");
	accept_as("zk://h:1/...", "h:1", "/...");
}

/* IPv6 addresses come bracketed and leave unbracketed, which is what the
 * library's parser (the last ':' starts the port) wants. */
static void test_zk_url_ipv6(void **state)
{
	(void)state;
	accept_as("zk://[::1]:2181/v", "::1:2181", "/v");
	accept_as("zk://[fe80::1%eth0]:2181,[2001:db8::7]:2/v",
		  "fe80::1%eth0:2181,2001:db8::7:2", "/v");
	accept_as("zk://[::ffff:10.0.0.1]:9,10.0.0.2:9/v",
		  "::ffff:10.0.0.1:9,10.0.0.2:9", "/v");
	refuse("zk://::1:2181/v", "must be in brackets");
	refuse("zk://[::1/v", "missing ']' after ipv6 address");
	refuse("zk://[]:1/v", "no host");
	refuse("zk://[::1]/v", "no port ([ADDR]:PORT)");
	refuse("zk://[::1]x:1/v", "unexpected \"x:1\" after the host");
	refuse("zk://[::1 ]:1/v", "bad character ' ' in ipv6 address");
}

static void test_zk_url_refuses(void **state)
{
	(void)state;
	refuse(NULL, "no url");
	refuse("", "no base path");
	refuse("zk://", "no base path");
	refuse("http://h:1/v", "the scheme must be zk://");
	refuse("rdma://h:1/v", "the scheme must be zk://");
	refuse("zk://h:1", "no base path");
	refuse("zk:///v", "no host");
	refuse("zk://h/v", "no port (HOST:PORT)");
	refuse("zk://h:/v", "bad port \"\" (1-65535 expected)");
	refuse("zk://h:0/v", "bad port \"0\" (1-65535 expected)");
	refuse("zk://h:65536/v", "bad port \"65536\"");
	refuse("zk://h:99999999999999999999/v", "bad port");
	refuse("zk://h:1x/v", "bad port \"1x\"");
	refuse("zk://h:-1/v", "bad port \"-1\"");
	refuse("zk://:1/v", "no host");
	refuse("zk://h:1,/v", "an empty entry");
	refuse("zk://,h:1/v", "an empty entry");
	refuse("zk://h:1,,h:2/v", "an empty entry");
	refuse("zk://h h:1/v", "bad character ' ' in host name");
	refuse("zk://h\n:1/v", "bad character 0x0a in host name");
	refuse("zk://h:1/", "must not be the root");
	refuse("zk://h:1//", "must not be the root");
	refuse("zk://h:1/a//b", "each component");
	refuse("zk://h:1/a/./b", "each component");
	refuse("zk://h:1/a/..", "each component");
	refuse("zk://h:1/a b", "each component");
	refuse("zk://h:1/a\nb", "each component");
	refuse("zk://h:1/a/\xc3\xa9", "each component");
	refuse("zk://h:1/zookeeper", "ZooKeeper's own");
	refuse("zk://h:1/zookeeper/x", "ZooKeeper's own");
}

/* The url in the log line is escaped: no line of its own. */
static void test_zk_url_escapes(void **state)
{
	(void)state;
	refuse("zk://h:1/\nerr: forged", "\\nerr: forged");
	assert_null(strchr(last_err, '\n'));
}

/* The results' sizes: an exact fit is fine, a byte less is refused. */
static void test_zk_url_lengths(void **state)
{
	char h[16], p[8];

	(void)state;
	/* "10.0.0.1:2181" is 13 bytes, "/ab/cd" 6. */
	assert_int_equal(
		vbd_zk_url_parse("zk://10.0.0.1:2181/ab/cd", h, 14, p, 7),
		VB_OK);
	assert_string_equal(h, "10.0.0.1:2181");
	assert_string_equal(p, "/ab/cd");
	memcpy(h, "untouched", 10);
	assert_int_equal(
		vbd_zk_url_parse("zk://10.0.0.1:2181/ab/cd", h, 13, p, 7),
		VB_EINVAL);
	assert_non_null(strstr(last_err, "host list is longer than 12"));
	assert_string_equal(h, "untouched");
	assert_int_equal(
		vbd_zk_url_parse("zk://10.0.0.1:2181/ab/cd", h, 14, p, 6),
		VB_EINVAL);
	assert_non_null(strstr(last_err, "base path is longer than 5"));
	assert_string_equal(h, "untouched");
	assert_int_equal(vbd_zk_url_parse("zk://h:1/v", NULL, 14, p, 7),
			 VB_EINVAL);
}

static void test_zk_id_valid(void **state)
{
	char id[VBD_ZK_ID_MAX + 2];

	(void)state;
	assert_true(vbd_zk_id_valid("A"));
	assert_true(vbd_zk_id_valid("broker-1.dc_2"));
	assert_true(vbd_zk_id_valid("..."));
	memset(id, 'x', VBD_ZK_ID_MAX);
	id[VBD_ZK_ID_MAX] = '\0';
	assert_true(vbd_zk_id_valid(id));
	id[VBD_ZK_ID_MAX] = 'x';
	id[VBD_ZK_ID_MAX + 1] = '\0';
	assert_false(vbd_zk_id_valid(id));
	assert_false(vbd_zk_id_valid(NULL));
	assert_false(vbd_zk_id_valid(""));
	assert_false(vbd_zk_id_valid("."));
	assert_false(vbd_zk_id_valid(".."));
	assert_false(vbd_zk_id_valid("a/b"));
	assert_false(vbd_zk_id_valid("a b"));
	assert_false(vbd_zk_id_valid("a\n"));
	assert_false(vbd_zk_id_valid("\xc3\xa9"));
}

/* Bad arguments are refused before anything starts; *out is untouched. */
static void test_zk_create_refuses(void **state)
{
	struct vbd_zk *zk = (struct vbd_zk *)&zk, *const mark = zk;
	char big[VBD_ZK_DATA_MAX + 1] = { 0 };

	(void)state;
	assert_int_equal(
		vbd_zk_create(NULL, "/v", 2000, "a", "", 0, NULL, NULL, &zk),
		VB_EINVAL);
	assert_int_equal(
		vbd_zk_create("", "/v", 2000, "a", "", 0, NULL, NULL, &zk),
		VB_EINVAL);
	assert_int_equal(
		vbd_zk_create("h:1/x", "/v", 2000, "a", "", 0, NULL, NULL, &zk),
		VB_EINVAL);
	assert_int_equal(
		vbd_zk_create("h:1", "v", 2000, "a", "", 0, NULL, NULL, &zk),
		VB_EINVAL);
	assert_int_equal(
		vbd_zk_create("h:1", "/", 2000, "a", "", 0, NULL, NULL, &zk),
		VB_EINVAL);
	assert_int_equal(
		vbd_zk_create("h:1", "/v", 2000, "a/b", "", 0, NULL, NULL, &zk),
		VB_EINVAL);
	assert_int_equal(vbd_zk_create("h:1", "/v", 2000, "a", big, sizeof(big),
				       NULL, NULL, &zk),
			 VB_EINVAL);
	assert_int_equal(
		vbd_zk_create("h:1", "/v", 2000, "a", NULL, 3, NULL, NULL, &zk),
		VB_EINVAL);
	assert_int_equal(
		vbd_zk_create("h:1", "/v", 0, "a", "", 0, NULL, NULL, &zk),
		VB_EINVAL);
	assert_int_equal(
		vbd_zk_create("h:1", "/v", 2000, "a", "", 0, NULL, NULL, NULL),
		VB_EINVAL);
	assert_ptr_equal(zk, mark);
	vbd_zk_destroy(NULL);
}

static unsigned states_down;

static void on_state(void *arg, bool up, const char *why)
{
	(void)arg;
	(void)why;
	if (!up)
		states_down++;
}

/*
 * No server (a closed port on the loopback): create succeeds, processing
 * never blocks and never reports a session, the timeout is never "wait for
 * ever", and destroy is immediate.
 */
static void test_zk_no_server(void **state)
{
	struct vbd_zk_cbs cbs = { .state = on_state };
	struct vbd_zk_stats st;
	struct vbd_zk *zk = NULL;
	struct timespec t0, t1;
	int i, t;

	(void)state;
	assert_int_equal(vbd_zk_create("127.0.0.1:1", "/verbus/unit", 2000,
				       "u1", "data", 4, &cbs, NULL, &zk),
			 VB_OK);
	assert_non_null(zk);
	assert_true(vbd_zk_fd(zk) >= 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < 20; i++) {
		t = vbd_zk_timeout_ms(zk);
		assert_true(t >= 0 && t <= 2000);
		usleep(10000);
		assert_int_equal(vbd_zk_process(zk), VB_OK);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	vbd_zk_stats(zk, &st);
	assert_false(st.connected);
	assert_false(st.registered);
	assert_int_equal(st.connects, 0);
	assert_int_equal(st.member_changes, 0);
	assert_int_equal(states_down, 0);
	/* 20 turns of 10 ms: nothing waited on the network. */
	assert_true((t1.tv_sec - t0.tv_sec) * 1000 +
			    (t1.tv_nsec - t0.tv_nsec) / 1000000 <
		    1500);
	vbd_zk_destroy(zk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_zk_url_accepts),
		cmocka_unit_test(test_zk_url_ipv6),
		cmocka_unit_test(test_zk_url_refuses),
		cmocka_unit_test(test_zk_url_escapes),
		cmocka_unit_test(test_zk_url_lengths),
		cmocka_unit_test(test_zk_id_valid),
		cmocka_unit_test(test_zk_create_refuses),
		cmocka_unit_test(test_zk_no_server),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
