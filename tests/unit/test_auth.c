/* Unit tests for credentials and permissions (daemon/auth.c). */
#include "daemon/auth.h"
#include "proto/codec.h"

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

static char path[64];

static void write_conf(const char *text)
{
	FILE *f;

	snprintf(path, sizeof(path), "/tmp/vb-auth-XXXXXX");
	close(mkstemp(path));
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* Credentials as a client packs them into its Hello. */
static size_t creds(uint8_t *buf, const char *user, const char *pw,
		    const char *token)
{
	Verbus__Credentials c = VERBUS__CREDENTIALS__INIT;

	c.user = (char *)(user ? user : "");
	c.password = (char *)(pw ? pw : "");
	c.token = (char *)(token ? token : "");
	return verbus__credentials__pack(&c, buf);
}

static struct vbd_auth *load_two_users(void)
{
	char pw[256], tok[65], conf[1024];
	struct vbd_auth *a = NULL;
	char err[256] = "";

	assert_int_equal(vbd_auth_hash_password("s3cret", pw, sizeof(pw)),
			 VB_OK);
	vbd_auth_hash_token("tok-123", tok);
	snprintf(
		conf, sizeof(conf),
		"listen = \"0.0.0.0:1\";\n"
		"authorization = { users = (\n"
		"  { user = \"alice\"; password = \"%s\";\n"
		"    publish = [ \"orders.>\" ]; subscribe = [ \"orders.*\" ]; },\n"
		"  { name = \"svc\"; token_sha256 = \"%s\"; }\n"
		"); };\n",
		pw, tok);
	write_conf(conf);
	assert_int_equal(vbd_auth_load(path, &a, err, sizeof(err)), VB_OK);
	unlink(path);
	assert_non_null(a);
	assert_int_equal(vbd_auth_users(a), 2);
	return a;
}

static void test_auth_credentials(void **state)
{
	struct vbd_auth *a = load_two_users();
	const struct vbd_user *u = NULL;
	uint8_t buf[512];
	size_t n;

	(void)state;
	n = creds(buf, "alice", "s3cret", NULL);
	assert_int_equal(vbd_auth_check(a, buf, n, &u), VB_OK);
	assert_string_equal(vbd_user_name(u), "alice");
	/* Again: the remembered success answers the same. */
	assert_int_equal(vbd_auth_check(a, buf, n, &u), VB_OK);
	n = creds(buf, "alice", "s3cres", NULL);
	assert_int_equal(vbd_auth_check(a, buf, n, &u), VB_EACCES);
	n = creds(buf, "bob", "s3cret", NULL);
	assert_int_equal(vbd_auth_check(a, buf, n, &u), VB_EACCES);
	n = creds(buf, NULL, NULL, "tok-123");
	assert_int_equal(vbd_auth_check(a, buf, n, &u), VB_OK);
	assert_string_equal(vbd_user_name(u), "svc");
	n = creds(buf, NULL, NULL, "tok-124");
	assert_int_equal(vbd_auth_check(a, buf, n, &u), VB_EACCES);
	/* Both kinds at once, none, and garbage are refused. */
	n = creds(buf, "alice", "s3cret", "tok-123");
	assert_int_equal(vbd_auth_check(a, buf, n, &u), VB_EACCES);
	assert_int_equal(vbd_auth_check(a, buf, 0, &u), VB_EACCES);
	memset(buf, 0xff, 40);
	assert_int_equal(vbd_auth_check(a, buf, 40, &u), VB_EACCES);
	vbd_auth_destroy(a);
}

static void test_auth_permissions(void **state)
{
	struct vbd_auth *a = load_two_users();
	const struct vbd_user *alice = NULL, *svc = NULL;
	uint8_t buf[512];
	size_t n;

	(void)state;
	n = creds(buf, "alice", "s3cret", NULL);
	assert_int_equal(vbd_auth_check(a, buf, n, &alice), VB_OK);
	n = creds(buf, NULL, NULL, "tok-123");
	assert_int_equal(vbd_auth_check(a, buf, n, &svc), VB_OK);
	assert_true(vbd_user_may_publish(alice, "orders.new", 10));
	assert_false(vbd_user_may_publish(alice, "payroll.x", 9));
	assert_true(vbd_user_may_subscribe(alice, "orders.*", 8));
	assert_true(vbd_user_may_subscribe(alice, "orders.eu", 9));
	assert_false(vbd_user_may_subscribe(alice, "orders.>", 8));
	/* No lists: everything; no auth at all (NULL user): everything. */
	assert_true(vbd_user_may_publish(svc, "any.thing", 9));
	assert_true(vbd_user_may_subscribe(svc, ">", 1));
	assert_true(vbd_user_may_publish(NULL, "x", 1));
	vbd_auth_destroy(a);
}

static void refused(const char *conf, const char *why)
{
	struct vbd_auth *a = NULL;
	char err[256] = "";

	write_conf(conf);
	assert_int_equal(vbd_auth_load(path, &a, err, sizeof(err)), VB_EINVAL);
	unlink(path);
	assert_null(a);
	if (!strstr(err, why))
		fail_msg("error \"%s\" lacks \"%s\"", err, why);
}

static void test_auth_bad_entries(void **state)
{
	struct vbd_auth *a = (struct vbd_auth *)1;
	char err[256];

	(void)state;
	refused("authorization = { users = ( { user = \"a\"; password = "
		"\"plain\"; } ); };",
		"Argon2id");
	refused("authorization = { users = ( { token_sha256 = \"abc\"; } ); };",
		"64 hex");
	refused("authorization = { users = ( { user = \"a\"; } ); };",
		"either user and password");
	refused("authorization = { users = ( { token_sha256 = \"00\"; user = "
		"\"a\"; password = \"$argon2id$x\"; } ); };",
		"either");
	refused("authorization = { users = ( { user = \"a\"; password = "
		"\"$argon2id$x\"; publish = [ \"a..b\" ]; } ); };",
		"publish: not a valid subject pattern");
	refused("authorization = { users = ( { user = \"a\"; password = "
		"\"$argon2id$x\"; admin = true; } ); };",
		"unknown key 'admin'");
	refused("authorization = { people = (); };", "users");
	/* No group: no authorization, every client admitted. */
	write_conf("listen = \"0.0.0.0:1\";\n");
	assert_int_equal(vbd_auth_load(path, &a, err, sizeof(err)), VB_OK);
	unlink(path);
	assert_null(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_auth_credentials),
		cmocka_unit_test(test_auth_permissions),
		cmocka_unit_test(test_auth_bad_entries),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
