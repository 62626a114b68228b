/* Unit tests for verbusd's configuration (daemon/config.c). */
#include "daemon/config.h"
#include "daemon/reload.h"

#include <verbus/verbus.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

/* Write @text to a fresh temporary file; its name goes to @path. */
static void write_conf(char *path, size_t len, const char *text)
{
	size_t n = strlen(text);
	int fd;

	snprintf(path, len, "/tmp/verbus-test-config-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, n), (ssize_t)n);
	assert_int_equal(close(fd), 0);
}

/* Load @text over the defaults into *@c; returns load()'s code. */
static int load_text(struct vbd_config *c, const char *text, char *path,
		     size_t pathlen, char *err, size_t errlen)
{
	int rc;

	write_conf(path, pathlen, text);
	rc = vbd_config_load(c, path, err, errlen);
	assert_int_equal(unlink(path), 0);
	return rc;
}

/* Field by field: bytes after a string's terminator do not count. */
static void assert_config_equal(const struct vbd_config *a,
				const struct vbd_config *b)
{
	assert_string_equal(a->server_name, b->server_name);
	assert_string_equal(a->scheme, b->scheme);
	assert_string_equal(a->listen_addr, b->listen_addr);
	assert_string_equal(a->port, b->port);
	assert_int_equal(a->max_conns, b->max_conns);
	assert_int_equal(a->max_subs, b->max_subs);
	assert_int_equal(a->ring_size, b->ring_size);
	assert_int_equal(a->max_msg, b->max_msg);
	assert_int_equal(a->recv_depth, b->recv_depth);
	assert_int_equal(a->handshake_timeout_ms, b->handshake_timeout_ms);
	assert_int_equal(a->max_handshakes_per_addr,
			 b->max_handshakes_per_addr);
	assert_int_equal(a->slow_policy, b->slow_policy);
	assert_int_equal(a->block_timeout_ms, b->block_timeout_ms);
	assert_int_equal(a->block_fallback, b->block_fallback);
	assert_int_equal(a->pending_max, b->pending_max);
	assert_int_equal(a->log_level, b->log_level);
	assert_string_equal(a->monitor_addr, b->monitor_addr);
	assert_int_equal(a->monitor_port, b->monitor_port);
	assert_int_equal(a->busy_poll, b->busy_poll);
	assert_int_equal(a->spin_us, b->spin_us);
	assert_int_equal(a->direct_any_host, b->direct_any_host);
}

static void test_config_defaults(void **state)
{
	struct vbd_config c;
	char err[256];

	(void)state;
	memset(&c, 0xa5, sizeof(c));
	vbd_config_defaults(&c);
	assert_string_equal(c.server_name, "verbusd");
	assert_string_equal(c.scheme, "rdma");
	assert_string_equal(c.listen_addr, "0.0.0.0");
	assert_string_equal(c.port, "7700");
	assert_int_equal(c.max_conns, 1024);
	assert_int_equal(c.max_subs, 65536);
	assert_int_equal(c.ring_size, 1u << 20);
	assert_int_equal(c.max_msg, 64u << 10);
	assert_int_equal(c.recv_depth, 128);
	assert_int_equal(c.handshake_timeout_ms, 2000);
	assert_int_equal(c.max_handshakes_per_addr, 256);
	assert_int_equal(c.slow_policy, VBD_SLOW_BLOCK);
	assert_int_equal(c.block_timeout_ms, 2000);
	assert_int_equal(c.block_fallback, VBD_SLOW_DISCONNECT);
	assert_int_equal(c.pending_max, 4096);
	assert_int_equal(c.log_level, 2);
	assert_string_equal(c.monitor_addr, "127.0.0.1");
	assert_int_equal(c.monitor_port, 8222);
	assert_int_equal(c.busy_poll, 0);
	assert_int_equal(c.spin_us, VBD_SPIN_US_DEFAULT);
	assert_int_equal(c.direct_any_host, 0);
	assert_int_equal(vbd_config_check(&c, err, sizeof(err)), VB_OK);
	assert_string_equal(vbd_slow_policy_name(VBD_SLOW_DROP), "drop");
	assert_string_equal(vbd_slow_policy_name((enum vbd_slow_policy)9), "?");
}

static void test_config_full_file(void **state)
{
	static const char text[] =
		"# every key\n"
		"server_name = \"broker-a\";\n"
		"listen = \"10.0.0.1:7471\";\n"
		"limits = { max_conns = 1000; max_subs = 10000;\n"
		"  ring_size = \"4M\"; max_msg = \"1M\"; recv_depth = 256; };\n"
		"slow_consumer = { policy = \"drop\"; block_timeout_ms = 500;\n"
		"  fallback = \"drop\"; pending_max = 100; };\n"
		"log = { level = \"debug\"; };\n"
		"monitor = { listen = \"[::1]:9000\"; };\n"
		"busy_poll = true;\n"
		"spin_us = 250;\n"
		"direct = { listen_any_host = true; };\n";
	struct vbd_config c;
	char path[64], err[256];

	(void)state;
	vbd_config_defaults(&c);
	assert_int_equal(
		load_text(&c, text, path, sizeof(path), err, sizeof(err)),
		VB_OK);
	assert_string_equal(c.server_name, "broker-a");
	assert_string_equal(c.listen_addr, "10.0.0.1");
	assert_string_equal(c.port, "7471");
	assert_int_equal(c.max_conns, 1000);
	assert_int_equal(c.max_subs, 10000);
	assert_int_equal(c.ring_size, 4u << 20);
	assert_int_equal(c.max_msg, 1u << 20);
	assert_int_equal(c.recv_depth, 256);
	assert_int_equal(c.slow_policy, VBD_SLOW_DROP);
	assert_int_equal(c.block_timeout_ms, 500);
	assert_int_equal(c.block_fallback, VBD_SLOW_DROP);
	assert_int_equal(c.pending_max, 100);
	assert_int_equal(c.log_level, 3);
	assert_string_equal(c.monitor_addr, "::1");
	assert_int_equal(c.monitor_port, 9000);
	assert_int_equal(c.busy_poll, 1);
	assert_int_equal(c.spin_us, 250);
	assert_int_equal(c.direct_any_host, 1);
	assert_int_equal(vbd_config_check(&c, err, sizeof(err)), VB_OK);
}

/* A partial file keeps the other values; "port" alone; integer sizes. */
static void test_config_partial_file(void **state)
{
	static const char text[] = "port = 9999;\n"
				   "listen = \"192.168.1.2\";\n"
				   "limits = { ring_size = 65536; };\n"
				   "log = { level = 0; };\n"
				   "monitor = { port = 0; };\n";
	struct vbd_config c, d;
	char path[64], err[256];

	(void)state;
	vbd_config_defaults(&c);
	vbd_config_defaults(&d);
	assert_int_equal(
		load_text(&c, text, path, sizeof(path), err, sizeof(err)),
		VB_OK);
	assert_string_equal(c.listen_addr, "192.168.1.2");
	assert_string_equal(c.port, "9999");
	assert_int_equal(c.ring_size, 65536);
	assert_int_equal(c.log_level, 0);
	assert_int_equal(c.monitor_port, 0);
	assert_string_equal(c.monitor_addr, "127.0.0.1");
	d.ring_size = c.ring_size;
	d.log_level = 0;
	d.monitor_port = 0;
	snprintf(d.port, sizeof(d.port), "9999");
	snprintf(d.listen_addr, sizeof(d.listen_addr), "192.168.1.2");
	assert_config_equal(&c, &d);
}

/* One bad setting per file: its line, its key and the reason. */
static void test_config_bad_values(void **state)
{
	static const struct {
		const char *text; /* the file */
		int line; /* where the error is */
		const char *key; /* the key the message names */
		const char *why; /* and part of the reason */
	} cases[] = {
		{ "limits = { max_conns = 0; };", 1, "limits.max_conns",
		  "0 is out of range [1, 1048576]" },
		{ "\nlimits = {\n max_conns = 2000000; };", 3,
		  "limits.max_conns", "out of range" },
		{ "limits = { max_conns = -5; };", 1, "limits.max_conns",
		  "-5 is out of range" },
		{ "limits = { max_conns = \"100\"; };", 1, "limits.max_conns",
		  "expected an integer, got a string" },
		{ "limits = { max_subs = 1.5; };", 1, "limits.max_subs",
		  "got a floating-point number" },
		{ "limits = { ring_size = \"3000\"; };", 1, "limits.ring_size",
		  "out of range [4K, 2G]" },
		{ "limits = { ring_size = \"12K\"; };", 1, "limits.ring_size",
		  "not a power of two" },
		{ "limits = { ring_size = \"4G\"; };", 1, "limits.ring_size",
		  "4G is out of range" },
		{ "limits = { ring_size = \"1.5M\"; };", 1, "limits.ring_size",
		  "is not a size" },
		{ "limits = { max_msg = 0; };", 1, "limits.max_msg",
		  "out of range" },
		{ "limits = { recv_depth = 2; };", 1, "limits.recv_depth",
		  "2 is out of range [4, 4096]" },
		{ "limits = { recv_depth = 5000000000; };", 1,
		  "limits.recv_depth", "out of range" },
		{ "slow_consumer = { policy = \"wait\"; };", 1,
		  "slow_consumer.policy", "'wait' is not one of block, drop" },
		{ "slow_consumer = { fallback = \"block\"; };", 1,
		  "slow_consumer.fallback", "drop, disconnect" },
		{ "slow_consumer = { block_timeout_ms = 0; };", 1,
		  "slow_consumer.block_timeout_ms", "out of range" },
		{ "slow_consumer = { pending_max = 0; };", 1,
		  "slow_consumer.pending_max", "out of range" },
		{ "log = { level = \"verbose\"; };", 1, "log.level",
		  "err, warn, info, debug" },
		{ "log = { level = 4; };", 1, "log.level",
		  "4 is out of range [0, 3]" },
		{ "server_name = \"a b\";", 1, "server_name", "A-Z a-z 0-9" },
		{ "server_name = \"\";", 1, "server_name", "1-63 characters" },
		{ "server_name = 7;", 1, "server_name", "expected a string" },
		{ "listen = \"10.0.0.1:0\";", 1, "listen",
		  "bad port \"0\" (1-65535 expected)" },
		{ "listen = \"10.0.0.1:http\";", 1, "listen",
		  "bad port \"http\"" },
		{ "listen = \"[::1\";", 1, "listen", "missing ']'" },
		{ "listen = \"a b:1\";", 1, "listen", "bad character ' '" },
		{ "listen = \"udp://h:1\";", 1, "listen",
		  "unsupported scheme \"udp\" (this build has: rdma, tcp, tls)" },
		{ "listen = \"rdma://u@h:1\";", 1, "listen", "credentials" },
		{ "listen = \"rdma://h:1/x\";", 1, "listen", "bad port" },
		{ "listen = \"rdma://h/x\";", 1, "listen", "unexpected" },
		{ "listen = \"fe80::1%eth0:1:2:3:4:5:6:7:8:9:a:b:c:d:e:f:"
		  "0:1:2:3:4:5:6:7:8:9:a\";",
		  1, "listen", "too long" },
		{ "port = 70000;", 1, "port", "out of range" },
		{ "monitor = { listen = \"localhost:8222\"; };", 1,
		  "monitor.listen", "numeric IPv4 or IPv6" },
		{ "monitor = { listen = \"127.0.0.1:65536\"; };", 1,
		  "monitor.listen", "bad port \"65536\" (0-65535 expected)" },
		{ "monitor = { listen = \"[::1\"; };", 1, "monitor.listen",
		  "missing ']'" },
		{ "monitor = { listen = \"[::1]x\"; };", 1, "monitor.listen",
		  "unexpected \"x\" after the host" },
		{ "monitor = { listen = \"127.0.0.1:\"; };", 1,
		  "monitor.listen", "bad port \"\"" },
		{ "busy_poll = 1;", 1, "busy_poll",
		  "expected true or false, got an integer" },
		{ "limits = 5;", 1, "limits", "expected a group" },
		{ "busy_poll = { x = 1; };", 1, "busy_poll", "got a group" },
		{ "spin_us = 1000001;", 1, "spin_us", "out of range" },
		{ "spin_us = -1;", 1, "spin_us", "out of range" },
	};
	struct vbd_config c, d;
	char path[64], err[512], want[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		vbd_config_defaults(&c);
		d = c;
		err[0] = '\0';
		assert_int_equal(load_text(&c, cases[i].text, path,
					   sizeof(path), err, sizeof(err)),
				 VB_EINVAL);
		snprintf(want, sizeof(want), "%s:%d: %s: ", path, cases[i].line,
			 cases[i].key);
		if (strncmp(err, want, strlen(want)) != 0 ||
		    strstr(err, cases[i].why) == NULL)
			fail_msg("case %zu: got \"%s\", want \"%s...%s\"", i,
				 err, want, cases[i].why);
		/* A failed load changes nothing. */
		assert_config_equal(&c, &d);
	}
}

/* A later bad line undoes the good ones before it. */
static void test_config_failed_load_is_atomic(void **state)
{
	struct vbd_config c, d;
	char path[64], err[256];

	(void)state;
	vbd_config_defaults(&c);
	d = c;
	assert_int_equal(
		load_text(&c,
			  "server_name = \"x\";\n"
			  "limits = { max_conns = 7; max_subs = 0; };\n",
			  path, sizeof(path), err, sizeof(err)),
		VB_EINVAL);
	assert_config_equal(&c, &d);
	assert_non_null(strstr(err, "limits.max_subs"));
}

static void test_config_unknown_key(void **state)
{
	struct vbd_config c;
	char path[64], err[512], want[128];

	(void)state;
	vbd_config_defaults(&c);
	assert_int_equal(load_text(&c, "server_name = \"a\";\nlimtis = {};\n",
				   path, sizeof(path), err, sizeof(err)),
			 VB_EINVAL);
	snprintf(want, sizeof(want), "%s:2: unknown key 'limtis'", path);
	assert_memory_equal(err, want, strlen(want));
	assert_non_null(
		strstr(err, "allowed: server_name, listen, listen_tcp, port, "
			    "limits, slow_consumer, log, monitor, "
			    "busy_poll, spin_us, tls, cluster, pid_file, "
			    "lame_duck_duration_ms, lame_duck_grace_ms, "
			    "direct)"));

	assert_int_equal(load_text(&c,
				   "limits = {\n  max_conns = 5;\n"
				   "  max_con = 5;\n};\n",
				   path, sizeof(path), err, sizeof(err)),
			 VB_EINVAL);
	snprintf(want, sizeof(want), "%s:3: unknown key 'limits.max_con'",
		 path);
	assert_memory_equal(err, want, strlen(want));
	assert_non_null(strstr(err, "allowed in limits: max_conns, max_subs, "
				    "ring_size, max_msg, max_payload, "
				    "recv_depth, "
				    "handshake_timeout_ms, "
				    "max_handshakes_per_addr)"));

	/* A dotted key is a command-line spelling, not a file key. */
	assert_int_equal(load_text(&c, "monitor = { listen = { }; };\n", path,
				   sizeof(path), err, sizeof(err)),
			 VB_EINVAL);
	assert_non_null(strstr(err, "monitor.listen: expected a string"));
	assert_int_equal(c.max_conns, 1024);
}

static void test_config_syntax_error(void **state)
{
	struct vbd_config c;
	char path[64], err[512], want[128];

	(void)state;
	vbd_config_defaults(&c);
	assert_int_equal(load_text(&c,
				   "server_name = \"a\";\n"
				   "# a comment\n"
				   "limits = { max_conns = = 5; };\n"
				   "busy_poll = true;\n",
				   path, sizeof(path), err, sizeof(err)),
			 VB_EINVAL);
	snprintf(want, sizeof(want), "%s:3: syntax error", path);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("got \"%s\", want \"%s...\"", err, want);

	/* Duplicate settings are libconfig's error, also with a line. */
	assert_int_equal(load_text(&c, "port = 1;\nport = 2;\n", path,
				   sizeof(path), err, sizeof(err)),
			 VB_EINVAL);
	snprintf(want, sizeof(want), "%s:2: syntax error", path);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("got \"%s\", want \"%s...\"", err, want);
	assert_string_equal(c.port, "7700");
}

static void test_config_missing_file(void **state)
{
	struct vbd_config c;
	char err[256];

	(void)state;
	vbd_config_defaults(&c);
	assert_int_equal(vbd_config_load(&c, "/nonexistent/verbusd.conf", err,
					 sizeof(err)),
			 VB_ESYS);
	assert_non_null(strstr(err, "/nonexistent/verbusd.conf: cannot read"));
	assert_non_null(strstr(err, "No such file"));
	/* No error buffer at all is fine too. */
	assert_int_equal(vbd_config_load(&c, "/nonexistent/x", NULL, 0),
			 VB_ESYS);
}

static void test_config_size_suffixes(void **state)
{
	static const struct {
		const char *text; /* ring_size's value */
		uint32_t want; /* bytes; 0: rejected */
	} cases[] = {
		{ "4096", 4096 },
		{ "8K", 8192 },
		{ "8k", 8192 },
		{ "2M", 2u << 20 },
		{ "1G", 1u << 30 },
		{ "2g", 2u << 30 },
		{ "64", 0 }, /* below 4K */
		{ "1.5M", 0 },
		{ "M", 0 },
		{ "-1M", 0 },
		{ "+1M", 0 },
		{ " 1M", 0 },
		{ "1M ", 0 },
		{ "1T", 0 },
		{ "1MB", 1u << 20 }, /* core/parse.h: binary, as in the CLI */
		{ "1mib", 1u << 20 },
		{ "64KiB", 64u << 10 },
		{ "4096b", 4096 },
		{ "1 MiB", 0 },
		{ "1MiBs", 0 },
		{ "0x1000", 0 },
		{ "99999999999999999999", 0 },
		{ "17179869184G", 0 }, /* overflows 64 bits */
		{ "", 0 },
	};
	struct vbd_config c;
	char err[256];
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		vbd_config_defaults(&c);
		rc = vbd_config_set(&c, "limits.ring_size", cases[i].text, err,
				    sizeof(err));
		if (cases[i].want == 0) {
			if (rc != VB_EINVAL)
				fail_msg("'%s' accepted", cases[i].text);
			assert_int_equal(c.ring_size, 1u << 20);
			assert_non_null(strstr(err, "limits.ring_size: "));
		} else {
			if (rc != VB_OK)
				fail_msg("'%s': %s", cases[i].text, err);
			assert_int_equal(c.ring_size, cases[i].want);
		}
	}
	/* max_msg takes sizes too; counts do not. */
	assert_int_equal(
		vbd_config_set(&c, "limits.max_msg", "16K", err, sizeof(err)),
		VB_OK);
	assert_int_equal(c.max_msg, 16384);
	assert_int_equal(
		vbd_config_set(&c, "limits.max_conns", "1K", err, sizeof(err)),
		VB_EINVAL);
	assert_non_null(strstr(err, "not a decimal integer"));
}

/* The cluster's settings: each needed one, wildcard addresses, and the
 * secret left out of --print-config. */
static void test_config_cluster(void **state)
{
	struct vbd_config c;
	char err[512], *out = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	vbd_config_defaults(&c);
	assert_false(vbd_config_clustered(&c));
	assert_int_equal(vbd_config_check(&c, err, sizeof(err)), VB_OK);
	assert_int_equal(vbd_config_set(&c, "cluster.zookeeper",
					"zk://127.0.0.1:2181/verbus/t", err,
					sizeof(err)),
			 VB_OK);
	assert_true(vbd_config_clustered(&c));
	assert_int_equal(vbd_config_check(&c, err, sizeof(err)), VB_EINVAL);
	assert_non_null(strstr(err, "cluster.listen"));
	assert_int_equal(vbd_config_set(&c, "cluster.listen",
					"rdma://0.0.0.0:7701", err,
					sizeof(err)),
			 VB_OK);
	assert_int_equal(vbd_config_check(&c, err, sizeof(err)), VB_EINVAL);
	assert_non_null(strstr(err, "wildcard"));
	assert_int_equal(vbd_config_set(&c, "cluster.listen",
					"rdma://10.0.0.1:7701", err,
					sizeof(err)),
			 VB_OK);
	/* listen is 0.0.0.0 by default: clients need an advertised URL. */
	assert_int_equal(vbd_config_check(&c, err, sizeof(err)), VB_EINVAL);
	assert_non_null(strstr(err, "cluster.advertise"));
	assert_int_equal(vbd_config_set(&c, "cluster.advertise",
					"rdma://10.0.0.1:7700", err,
					sizeof(err)),
			 VB_OK);
	assert_int_equal(vbd_config_check(&c, err, sizeof(err)), VB_EINVAL);
	assert_non_null(strstr(err, "cluster.secret"));
	assert_int_equal(vbd_config_set(&c, "cluster.secret", "s3cret-value",
					err, sizeof(err)),
			 VB_OK);
	assert_int_equal(vbd_config_check(&c, err, sizeof(err)), VB_OK);
	assert_int_equal(
		vbd_config_set(&c, "cluster.id", "bad id", err, sizeof(err)),
		VB_EINVAL);
	assert_int_equal(vbd_config_set(&c, "cluster.listen", "nope://x:1", err,
					sizeof(err)),
			 VB_OK);
	assert_int_equal(vbd_config_check(&c, err, sizeof(err)), VB_EINVAL);
	assert_int_equal(vbd_config_set(&c, "cluster.listen",
					"rdma://10.0.0.1:7701", err,
					sizeof(err)),
			 VB_OK);
	assert_int_equal(vbd_config_set(&c, "cluster.session_timeout_ms", "500",
					err, sizeof(err)),
			 VB_EINVAL);
	f = open_memstream(&out, &len);
	assert_non_null(f);
	vbd_config_print(&c, f);
	fclose(f);
	assert_non_null(strstr(out, "zookeeper = \"zk://127.0.0.1:2181/"));
	assert_null(strstr(out, "s3cret-value"));
	free(out);
}

static void test_config_set_overrides(void **state)
{
	struct vbd_config c, d;
	char err[1024];

	(void)state;
	vbd_config_defaults(&c);
	assert_int_equal(
		vbd_config_set(&c, "server_name", "b-2", err, sizeof(err)),
		VB_OK);
	assert_int_equal(vbd_config_set(&c, "listen", "[fe80::1%eth0]:7000",
					err, sizeof(err)),
			 VB_OK);
	assert_string_equal(c.listen_addr, "fe80::1%eth0");
	assert_string_equal(c.port, "7000");
	assert_int_equal(vbd_config_set(&c, "port", "7001", err, sizeof(err)),
			 VB_OK);
	assert_string_equal(c.port, "7001");
	assert_int_equal(vbd_config_set(&c, "limits.max_conns", "4096", err,
					sizeof(err)),
			 VB_OK);
	assert_int_equal(vbd_config_set(&c, "slow_consumer.policy",
					"disconnect", err, sizeof(err)),
			 VB_OK);
	assert_int_equal(vbd_config_set(&c, "slow_consumer.fallback", "drop",
					err, sizeof(err)),
			 VB_OK);
	assert_int_equal(
		vbd_config_set(&c, "log.level", "warn", err, sizeof(err)),
		VB_OK);
	assert_int_equal(vbd_config_set(&c, "monitor.listen", "0.0.0.0:1", err,
					sizeof(err)),
			 VB_OK);
	assert_int_equal(
		vbd_config_set(&c, "monitor.port", "0", err, sizeof(err)),
		VB_OK);
	assert_int_equal(
		vbd_config_set(&c, "busy_poll", "yes", err, sizeof(err)),
		VB_OK);
	assert_string_equal(c.server_name, "b-2");
	assert_int_equal(c.max_conns, 4096);
	assert_int_equal(c.slow_policy, VBD_SLOW_DISCONNECT);
	assert_int_equal(c.block_fallback, VBD_SLOW_DROP);
	assert_int_equal(c.log_level, 1);
	assert_string_equal(c.monitor_addr, "0.0.0.0");
	assert_int_equal(c.monitor_port, 0);
	assert_int_equal(c.busy_poll, 1);
	assert_int_equal(
		vbd_config_set(&c, "busy_poll", "Off", err, sizeof(err)),
		VB_OK);
	assert_int_equal(c.busy_poll, 0);

	/* Errors change nothing, and name the key or list the keys. */
	d = c;
	assert_int_equal(
		vbd_config_set(&c, "limits.max_con", "5", err, sizeof(err)),
		VB_EINVAL);
	assert_non_null(strstr(err, "unknown key 'limits.max_con' (allowed: "
				    "server_name, listen, listen_tcp, port, "
				    "limits.max_conns,"));
	assert_non_null(strstr(err,
			       "monitor.port, busy_poll, spin_us, "
			       "tls.cert, tls.key, tls.ca, "
			       "cluster.zookeeper, cluster.name, "
			       "cluster.id, cluster.listen, "
			       "cluster.advertise, cluster.secret, "
			       "cluster.session_timeout_ms, pid_file, "
			       "lame_duck_duration_ms, lame_duck_grace_ms, "
			       "direct.listen_any_host)"));
	assert_int_equal(vbd_config_set(&c, "limits", "5", err, sizeof(err)),
			 VB_EINVAL);
	assert_int_equal(
		vbd_config_set(&c, "busy_poll", "maybe", err, sizeof(err)),
		VB_EINVAL);
	assert_string_equal(err, "busy_poll: 'maybe' is not a boolean (true "
				 "or false)");
	assert_int_equal(vbd_config_set(&c, "limits.max_conns", "0x10", err,
					sizeof(err)),
			 VB_EINVAL);
	assert_int_equal(
		vbd_config_set(&c, "limits.max_conns", "", err, sizeof(err)),
		VB_EINVAL);
	assert_int_equal(vbd_config_set(&c, "log.level", "9", err, sizeof(err)),
			 VB_EINVAL);
	assert_int_equal(
		vbd_config_set(&c, "listen", "1.2.3.4:", err, sizeof(err)),
		VB_EINVAL);
	assert_int_equal(vbd_config_set(&c, "port", NULL, err, sizeof(err)),
			 VB_EINVAL);
	assert_int_equal(vbd_config_set(&c, NULL, "1", err, sizeof(err)),
			 VB_EINVAL);
	assert_int_equal(vbd_config_set(&c, "server_name",
					"a-name-that-is-far-too-long-for-the-"
					"sixty-four-byte-field-of-the-struct",
					err, sizeof(err)),
			 VB_EINVAL);
	assert_config_equal(&c, &d);
	/* A tiny error buffer is cut, not overrun. */
	memset(err, 'x', sizeof(err));
	assert_int_equal(vbd_config_set(&c, "nope", "1", err, 8), VB_EINVAL);
	assert_string_equal(err, "unknown");
	assert_int_equal(err[8], 'x');
}

/*
 * monitor.listen: the forms of core/url.c's host:port reader (the same as
 * listen's, bare IPv6 included), numeric only, port 0 allowed (it turns the
 * monitor off).  A form without a port keeps monitor.port.
 */
static void test_config_monitor_listen(void **state)
{
	static const struct {
		const char *value; /* what monitor.listen is set to */
		const char *addr; /* monitor_addr then */
		unsigned port; /* monitor_port then (from 8222) */
	} cases[] = {
		{ "127.0.0.1", "127.0.0.1", 8222 },
		{ "10.0.0.1:9000", "10.0.0.1", 9000 },
		{ "0.0.0.0:0", "0.0.0.0", 0 },
		{ "::1", "::1", 8222 },
		{ "::", "::", 8222 },
		{ "[::1]", "::1", 8222 },
		{ "[fe80::1]:1", "fe80::1", 1 },
		{ "[::]:65535", "::", 65535 },
	};
	static const struct {
		const char *value;
		const char *why; /* a part of the reason */
	} bad[] = {
		{ "", "monitor.listen: no host" },
		{ ":8222", "no host" },
		{ "localhost", "not a valid numeric" },
		{ "10.0.0.1:x", "bad port \"x\" (0-65535 expected)" },
		{ "10.0.0.1:-1", "bad port" },
		{ "10.0.0.1:1:2", "not a valid numeric" }, /* bare IPv6? */
		{ "[::1]:", "bad port \"\"" },
		{ "[::1]9", "unexpected \"9\" after the host" },
		{ "[]:1", "no host" },
		{ "1.2.3.4/8", "unexpected \"/8\"" },
	};
	struct vbd_config c, d;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		vbd_config_defaults(&c);
		if (vbd_config_set(&c, "monitor.listen", cases[i].value, err,
				   sizeof(err)) != VB_OK)
			fail_msg("'%s': %s", cases[i].value, err);
		assert_string_equal(c.monitor_addr, cases[i].addr);
		assert_int_equal(c.monitor_port, cases[i].port);
		assert_int_equal(vbd_config_check(&c, err, sizeof(err)), VB_OK);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		vbd_config_defaults(&c);
		d = c;
		err[0] = '\0';
		assert_int_equal(vbd_config_set(&c, "monitor.listen",
						bad[i].value, err, sizeof(err)),
				 VB_EINVAL);
		if (!strstr(err, bad[i].why))
			fail_msg("'%s': \"%s\" lacks \"%s\"", bad[i].value, err,
				 bad[i].why);
		assert_config_equal(&c, &d);
	}
}

/* listen takes a URL, and the plain forms it always took (they mean rdma). */
/* listen_tcp: a second, TCP, listener; its forms, defaults and refusals. */
static void test_config_listen_tcp(void **state)
{
	static const struct {
		const char *value; /* what listen_tcp is set to */
		const char *url; /* vbd_config_listen_tcp_url(), port 7001 */
	} cases[] = {
		{ "tcp://10.0.0.1:7800", "tcp://10.0.0.1:7800" },
		{ "TCP://host-1", "tcp://host-1:7001" },
		{ "10.0.0.2", "tcp://10.0.0.2:7001" },
		{ "10.0.0.2:1", "tcp://10.0.0.2:1" },
		{ "::", "tcp://[::]:7001" },
		{ "[::1]:5", "tcp://[::1]:5" },
	};
	char err[256], url[VBD_LISTEN_URL_MAX];
	struct vbd_config c;
	size_t i;

	(void)state;
	vbd_config_defaults(&c);
	assert_false(vbd_config_listen_tcp_url(&c, url, sizeof(url)));
	assert_string_equal(url, "");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		vbd_config_defaults(&c);
		assert_int_equal(
			vbd_config_set(&c, "port", "7001", err, sizeof(err)),
			VB_OK);
		if (vbd_config_set(&c, "listen_tcp", cases[i].value, err,
				   sizeof(err)) != VB_OK)
			fail_msg("%s: %s", cases[i].value, err);
		assert_true(vbd_config_listen_tcp_url(&c, url, sizeof(url)));
		assert_string_equal(url, cases[i].url);
		assert_int_equal(vbd_config_check(&c, err, sizeof(err)), VB_OK);
	}
	/* "" turns it off again. */
	assert_int_equal(vbd_config_set(&c, "listen_tcp", "", err, sizeof(err)),
			 VB_OK);
	assert_false(vbd_config_listen_tcp_url(&c, url, sizeof(url)));
	/* Not tcp, not a URL, or beside a listen that is tcp already. */
	vbd_config_defaults(&c);
	assert_int_equal(
		vbd_config_set(&c, "listen_tcp", "rdma://h", err, sizeof(err)),
		VB_EINVAL);
	assert_non_null(strstr(err, "is not a tcp or tls URL"));
	assert_int_equal(
		vbd_config_set(&c, "listen_tcp", "tcp://u@h", err, sizeof(err)),
		VB_EINVAL);
	assert_non_null(strstr(err, "credentials"));
	assert_int_equal(vbd_config_set(&c, "listen", "tcp://127.0.0.1", err,
					sizeof(err)),
			 VB_OK);
	assert_int_equal(vbd_config_set(&c, "listen_tcp", "127.0.0.1:1", err,
					sizeof(err)),
			 VB_OK);
	assert_int_equal(vbd_config_check(&c, err, sizeof(err)), VB_EINVAL);
	assert_non_null(strstr(err, "listen is a tcp URL already"));
}

/* TLS: listen_tcp (or listen) tls://, which needs tls.cert and tls.key. */
static void test_config_tls(void **state)
{
	char err[256], url[VBD_LISTEN_URL_MAX], big[VBD_PATH_MAX + 8];
	struct vbd_config c;
	FILE *f;
	char *text = NULL;
	size_t len = 0;

	(void)state;
	vbd_config_defaults(&c);
	assert_false(vbd_config_tls(&c));
	assert_int_equal(vbd_config_set(&c, "listen_tcp", "tls://0.0.0.0:7701",
					err, sizeof(err)),
			 VB_OK);
	assert_true(vbd_config_tls(&c));
	assert_true(vbd_config_listen_tcp_url(&c, url, sizeof(url)));
	assert_string_equal(url, "tls://0.0.0.0:7701");
	/* A tls listener without its certificate and key is refused. */
	assert_int_equal(vbd_config_check(&c, err, sizeof(err)), VB_EINVAL);
	assert_non_null(strstr(err, "needs tls.cert and tls.key"));
	assert_int_equal(vbd_config_set(&c, "tls.cert", "/etc/v/\"c\".pem", err,
					sizeof(err)),
			 VB_OK);
	assert_int_equal(vbd_config_check(&c, err, sizeof(err)), VB_EINVAL);
	assert_int_equal(
		vbd_config_set(&c, "tls.key", "/etc/v/k.pem", err, sizeof(err)),
		VB_OK);
	assert_int_equal(vbd_config_check(&c, err, sizeof(err)), VB_OK);
	assert_string_equal(c.tls_cert, "/etc/v/\"c\".pem");
	/* A file name too long for its field. */
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(vbd_config_set(&c, "tls.ca", big, err, sizeof(err)),
			 VB_EINVAL);
	assert_non_null(strstr(err, "tls.ca: a file name of at most"));
	/* The printed configuration escapes the quotes. */
	f = open_memstream(&text, &len);
	assert_non_null(f);
	vbd_config_print(&c, f);
	fclose(f);
	assert_non_null(strstr(text, "listen_tcp = \"tls://0.0.0.0:7701\";"));
	assert_non_null(strstr(text, "cert = \"/etc/v/\\\"c\\\".pem\";"));
	free(text);
	/* listen tls:// counts as the tcp-family listener. */
	vbd_config_defaults(&c);
	assert_int_equal(vbd_config_set(&c, "listen", "tls://127.0.0.1", err,
					sizeof(err)),
			 VB_OK);
	assert_true(vbd_config_tls(&c));
	assert_int_equal(vbd_config_set(&c, "listen_tcp", "127.0.0.1:1", err,
					sizeof(err)),
			 VB_OK);
	assert_int_equal(vbd_config_check(&c, err, sizeof(err)), VB_EINVAL);
	assert_non_null(strstr(err, "listen is a tls URL already"));
}

static void test_config_listen_url(void **state)
{
	static const struct {
		const char *value; /* what listen is set to */
		const char *addr, *port; /* what it gives, from port 7001 */
		const char *url; /* and vbd_config_listen_url() */
	} cases[] = {
		{ "rdma://10.0.0.1:7700", "10.0.0.1", "7700",
		  "rdma://10.0.0.1:7700" },
		{ "RDMA://host-1", "host-1", "7001", "rdma://host-1:7001" },
		{ "rdma://[fe80::1%eth0]:9", "fe80::1%eth0", "9",
		  "rdma://[fe80::1%eth0]:9" },
		{ "10.0.0.2", "10.0.0.2", "7001", "rdma://10.0.0.2:7001" },
		{ "10.0.0.2:1", "10.0.0.2", "1", "rdma://10.0.0.2:1" },
		{ "[::]:2", "::", "2", "rdma://[::]:2" },
		{ "::", "::", "7001", "rdma://[::]:7001" },
		{ "fe80::1%eth0", "fe80::1%eth0", "7001",
		  "rdma://[fe80::1%eth0]:7001" },
	};
	char err[256], url[VBD_LISTEN_URL_MAX];
	struct vbd_config c;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		vbd_config_defaults(&c);
		snprintf(c.scheme, sizeof(c.scheme), "x");
		assert_int_equal(
			vbd_config_set(&c, "port", "7001", err, sizeof(err)),
			VB_OK);
		if (vbd_config_set(&c, "listen", cases[i].value, err,
				   sizeof(err)) != VB_OK)
			fail_msg("'%s': %s", cases[i].value, err);
		assert_string_equal(c.scheme, "rdma");
		assert_string_equal(c.listen_addr, cases[i].addr);
		assert_string_equal(c.port, cases[i].port);
		vbd_config_listen_url(&c, url, sizeof(url));
		assert_string_equal(url, cases[i].url);
		assert_int_equal(vbd_config_check(&c, err, sizeof(err)), VB_OK);
	}

	/* A hand-filled struct: a scheme without a transport, a bad host. */
	vbd_config_defaults(&c);
	snprintf(c.scheme, sizeof(c.scheme), "udp");
	assert_int_equal(vbd_config_check(&c, err, sizeof(err)), VB_EINVAL);
	assert_string_equal(err, "listen: unsupported scheme \"udp\" (this "
				 "build has: rdma, tcp, tls)");
	vbd_config_defaults(&c);
	snprintf(c.listen_addr, sizeof(c.listen_addr), "a/b");
	assert_int_equal(vbd_config_check(&c, err, sizeof(err)), VB_EINVAL);
	assert_non_null(strstr(err, "listen: "));
	vbd_config_defaults(&c);
	c.listen_addr[0] = '\0';
	assert_int_equal(vbd_config_check(&c, err, sizeof(err)), VB_EINVAL);
	assert_non_null(strstr(err, "listen: no host"));
}

static void test_config_check_cross_field(void **state)
{
	struct vbd_config c;
	char err[256];

	(void)state;
	/* The largest frame must fit half the ring, header included. */
	vbd_config_defaults(&c);
	assert_int_equal(
		vbd_config_set(&c, "limits.ring_size", "64K", err, sizeof(err)),
		VB_OK);
	assert_int_equal(vbd_config_check(&c, err, sizeof(err)), VB_EINVAL);
	assert_string_equal(err, "limits.max_msg: 64K does not fit half of "
				 "limits.ring_size (64K) after the 32-byte "
				 "header: at most 32736");
	c.max_msg = 32736;
	assert_int_equal(vbd_config_check(&c, err, sizeof(err)), VB_OK);
	c.max_msg = 32737;
	assert_int_equal(vbd_config_check(&c, err, sizeof(err)), VB_EINVAL);

	/* Either order of set() works, since check() comes last. */
	vbd_config_defaults(&c);
	assert_int_equal(
		vbd_config_set(&c, "limits.max_msg", "1M", err, sizeof(err)),
		VB_OK);
	assert_int_equal(vbd_config_check(&c, err, sizeof(err)), VB_EINVAL);
	assert_int_equal(
		vbd_config_set(&c, "limits.ring_size", "4M", err, sizeof(err)),
		VB_OK);
	assert_int_equal(vbd_config_check(&c, err, sizeof(err)), VB_OK);

	/* A hand-filled struct: ring_size not a power of two. */
	vbd_config_defaults(&c);
	c.ring_size = 3u << 20;
	assert_int_equal(vbd_config_check(&c, err, sizeof(err)), VB_EINVAL);
	assert_string_equal(err,
			    "limits.ring_size: 3145728 is not a power of two");

	vbd_config_defaults(&c);
	c.block_fallback = VBD_SLOW_BLOCK;
	assert_int_equal(vbd_config_check(&c, err, sizeof(err)), VB_EINVAL);
	assert_string_equal(err, "slow_consumer.fallback: must be drop or "
				 "disconnect, got block");

	vbd_config_defaults(&c);
	c.slow_policy = (enum vbd_slow_policy)7;
	assert_int_equal(vbd_config_check(&c, err, sizeof(err)), VB_EINVAL);
	assert_non_null(strstr(err, "slow_consumer.policy"));

	vbd_config_defaults(&c);
	c.recv_depth = 1;
	assert_int_equal(vbd_config_check(&c, err, sizeof(err)), VB_EINVAL);
	assert_non_null(strstr(err, "limits.recv_depth: 1 is out of range"));

	vbd_config_defaults(&c);
	c.log_level = 4;
	assert_int_equal(vbd_config_check(&c, err, sizeof(err)), VB_EINVAL);

	/* The monitor's address matters only when it is enabled. */
	vbd_config_defaults(&c);
	snprintf(c.monitor_addr, sizeof(c.monitor_addr), "localhost");
	assert_int_equal(vbd_config_check(&c, err, sizeof(err)), VB_EINVAL);
	assert_non_null(strstr(err, "monitor.listen"));
	c.monitor_port = 0;
	assert_int_equal(vbd_config_check(&c, err, sizeof(err)), VB_OK);

	vbd_config_defaults(&c);
	memset(c.server_name, 'a', sizeof(c.server_name));
	assert_int_equal(vbd_config_check(&c, err, sizeof(err)), VB_EINVAL);
	vbd_config_defaults(&c);
	snprintf(c.port, sizeof(c.port), "0");
	assert_int_equal(vbd_config_check(&c, err, sizeof(err)), VB_EINVAL);
	assert_non_null(strstr(err, "port: 0 is out of range"));
}

/* What print() writes, load() reads back to the same configuration. */
static void test_config_print_round_trip(void **state)
{
	struct vbd_config c, d;
	char path[64], err[256], *text = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	vbd_config_defaults(&c);
	assert_int_equal(
		vbd_config_set(&c, "server_name", "rt.1", err, sizeof(err)),
		VB_OK);
	assert_int_equal(
		vbd_config_set(&c, "listen", "[::]:7000", err, sizeof(err)),
		VB_OK);
	assert_int_equal(vbd_config_set(&c, "limits.ring_size", "256K", err,
					sizeof(err)),
			 VB_OK);
	assert_int_equal(
		vbd_config_set(&c, "limits.max_msg", "1000", err, sizeof(err)),
		VB_OK);
	assert_int_equal(vbd_config_set(&c, "slow_consumer.policy", "drop", err,
					sizeof(err)),
			 VB_OK);
	assert_int_equal(
		vbd_config_set(&c, "log.level", "debug", err, sizeof(err)),
		VB_OK);
	assert_int_equal(
		vbd_config_set(&c, "monitor.port", "0", err, sizeof(err)),
		VB_OK);
	assert_int_equal(
		vbd_config_set(&c, "busy_poll", "true", err, sizeof(err)),
		VB_OK);
	f = open_memstream(&text, &len);
	assert_non_null(f);
	vbd_config_print(&c, f);
	assert_int_equal(fclose(f), 0);
	assert_non_null(strstr(text, "listen = \"rdma://[::]:7000\";\n"));
	assert_non_null(strstr(text, "\tring_size = \"256K\";\n"));
	assert_non_null(strstr(text, "\tmax_msg = \"1000\";\n"));
	assert_non_null(strstr(text, "\tlisten = \"127.0.0.1:0\";\n"));
	vbd_config_defaults(&d);
	assert_int_equal(
		load_text(&d, text, path, sizeof(path), err, sizeof(err)),
		VB_OK);
	assert_config_equal(&c, &d);
	free(text);
}

/* The sample that gets installed loads, and documents the defaults. */
static void test_config_sample_file(void **state)
{
	struct vbd_config c, d;
	char err[256];

	(void)state;
	vbd_config_defaults(&c);
	vbd_config_defaults(&d);
	/* Start from something else, so that every key must be in the file. */
	c.max_conns = 1;
	c.busy_poll = 1;
	c.log_level = 0;
	c.monitor_port = 1;
	if (vbd_config_load(&c, VERBUS_SAMPLE_CONF, err, sizeof(err)) != VB_OK)
		fail_msg("%s", err);
	assert_config_equal(&c, &d);
}

/* What a reload reports: reload.h's vbd_config_keep_fixed(). */
struct fixed_seen {
	char keys[256];
	char last_running[64], last_asked[64];
};

static void fixed_report(void *ctx, const char *key, const char *running,
			 const char *asked)
{
	struct fixed_seen *f = ctx;

	strcat(f->keys, key);
	strcat(f->keys, " ");
	snprintf(f->last_running, sizeof(f->last_running), "%s", running);
	snprintf(f->last_asked, sizeof(f->last_asked), "%s", asked);
}

static void test_config_reload_keep_fixed(void **state)
{
	struct vbd_config run, next;
	struct fixed_seen f = { 0 };
	char err[256], changed[256];

	(void)state;
	vbd_config_defaults(&run);
	next = run;
	assert_int_equal(vbd_config_keep_fixed(&run, &next, fixed_report, &f,
					       changed, sizeof(changed)),
			 0);
	assert_string_equal(changed, "");
	assert_int_equal(vbd_config_set(&next, "limits.ring_size", "2M", err,
					sizeof(err)),
			 VB_OK);
	assert_int_equal(vbd_config_set(&next, "cluster.secret", "s3cr3t", err,
					sizeof(err)),
			 VB_OK);
	assert_int_equal(vbd_config_set(&next, "limits.max_conns", "10", err,
					sizeof(err)),
			 VB_OK);
	assert_int_equal(vbd_config_set(&next, "slow_consumer.policy", "drop",
					err, sizeof(err)),
			 VB_OK);
	assert_int_equal(vbd_config_keep_fixed(&run, &next, fixed_report, &f,
					       changed, sizeof(changed)),
			 2);
	assert_string_equal(f.keys, "limits.ring_size cluster.secret ");
	/* The secret is never shown. */
	assert_string_equal(f.last_running, "(secret)");
	assert_null(strstr(f.last_asked, "s3cr3t"));
	/* Fixed ones as they run, live ones as asked. */
	assert_int_equal(next.ring_size, 1u << 20);
	assert_string_equal(next.cluster_secret, "");
	assert_int_equal(next.max_conns, 10);
	assert_int_equal(next.slow_policy, VBD_SLOW_DROP);
	assert_string_equal(changed, "limits.max_conns 1024 -> 10, "
				     "slow_consumer.policy block -> drop");
	/* The lame-duck grace must be shorter than the duration. */
	assert_int_equal(vbd_config_set(&next, "lame_duck_grace_ms", "30000",
					err, sizeof(err)),
			 VB_OK);
	assert_int_equal(vbd_config_check(&next, err, sizeof(err)), VB_EINVAL);
	assert_non_null(strstr(err, "lame_duck_grace_ms"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_defaults),
		cmocka_unit_test(test_config_full_file),
		cmocka_unit_test(test_config_partial_file),
		cmocka_unit_test(test_config_bad_values),
		cmocka_unit_test(test_config_failed_load_is_atomic),
		cmocka_unit_test(test_config_unknown_key),
		cmocka_unit_test(test_config_syntax_error),
		cmocka_unit_test(test_config_missing_file),
		cmocka_unit_test(test_config_size_suffixes),
		cmocka_unit_test(test_config_set_overrides),
		cmocka_unit_test(test_config_cluster),
		cmocka_unit_test(test_config_listen_url),
		cmocka_unit_test(test_config_monitor_listen),
		cmocka_unit_test(test_config_listen_tcp),
		cmocka_unit_test(test_config_tls),
		cmocka_unit_test(test_config_check_cross_field),
		cmocka_unit_test(test_config_print_round_trip),
		cmocka_unit_test(test_config_sample_file),
		cmocka_unit_test(test_config_reload_keep_fixed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
