/* Unit tests for credentials and permissions (daemon/auth.c). */
#include "daemon/account.h"
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

/*
 * Accounts (daemon/account.h, issue 18): a group with users of the global
 * account and of accounts, exports and imports resolved, limits read; the
 * users' accounts.
 */
static struct vbd_auth *load_accounts(char *pw, size_t pwlen, char tok[65])
{
	static char conf[4096];
	struct vbd_auth *a = NULL;
	char err[512] = "";

	assert_int_equal(vbd_auth_hash_password("s3cret", pw, pwlen), VB_OK);
	vbd_auth_hash_token("tok-123", tok);
	snprintf(
		conf, sizeof(conf),
		"listen = \"0.0.0.0:1\";\n"
		"authorization = {\n"
		"  users = ( { user = \"eve\"; password = \"%s\"; } );\n"
		"  accounts = (\n"
		"    { name = \"orders\";\n"
		"      users = ( { user = \"alice\"; password = \"%s\"; },\n"
		"                { user = \"carol\"; password = \"%s\";\n"
		"                  subscribe = [ \"orders.>\" ]; } );\n"
		"      exports = ( { stream = \"orders.shipped.>\"; },\n"
		"                  { service = \"orders.status\";\n"
		"                    accounts = [ \"billing\" ]; responses = 3;\n"
		"                    response_ms = 5000; } );\n"
		"      limits = { max_conns = 100; max_subs = 1000;\n"
		"                 max_memory = \"64M\"; };\n"
		"    },\n"
		"    { name = \"billing\";\n"
		"      users = ( { user = \"bob\"; password = \"%s\"; },\n"
		"                { name = \"svc\"; token_sha256 = \"%s\"; } );\n"
		"      imports = ( { stream = \"orders.shipped.eu.>\";\n"
		"                    account = \"orders\"; },\n"
		"                  { service = \"orders.status\";\n"
		"                    account = \"orders\"; } );\n"
		"      limits = { max_memory = 4194304; };\n"
		"    }\n"
		"  );\n"
		"};\n",
		pw, pw, pw, pw, tok);
	write_conf(conf);
	assert_int_equal(vbd_auth_load(path, &a, err, sizeof(err)), VB_OK);
	unlink(path);
	assert_non_null(a);
	return a;
}

static void test_auth_accounts(void **state)
{
	char pw[256], tok[65];
	struct vbd_auth *a = load_accounts(pw, sizeof(pw), tok);
	const struct vbd_acct_def *orders, *billing;
	const struct vbd_user *u = NULL;
	uint8_t buf[512];
	size_t n;

	(void)state;
	assert_int_equal(vbd_auth_users(a), 5);
	assert_int_equal(vbd_auth_accounts(a), 2);
	orders = vbd_auth_account(a, 0);
	billing = vbd_auth_account(a, 1);
	assert_non_null(orders);
	assert_non_null(billing);
	assert_null(vbd_auth_account(a, 2));
	assert_string_equal(orders->name, "orders");
	assert_string_equal(billing->name, "billing");
	/* orders: two exports, one of them to billing only; its limits. */
	assert_int_equal(orders->nexports, 2);
	assert_int_equal(orders->nimports, 0);
	assert_int_equal(orders->exports[0].kind, VBD_STREAM);
	assert_string_equal(orders->exports[0].pattern, "orders.shipped.>");
	assert_null(orders->exports[0].accounts);
	assert_int_equal(orders->exports[1].kind, VBD_SERVICE);
	assert_string_equal(orders->exports[1].pattern, "orders.status");
	assert_int_equal(orders->exports[1].naccounts, 1);
	assert_string_equal(orders->exports[1].accounts[0], "billing");
	assert_int_equal(orders->exports[1].responses, 3);
	assert_int_equal(orders->exports[1].response_ms, 5000);
	assert_int_equal(orders->max_conns, 100);
	assert_int_equal(orders->max_subs, 1000);
	assert_int_equal(orders->max_memory, 64u << 20);
	/* billing: its imports resolved to orders' exports covering them;
	 * absent limits are none, max_memory in bytes. */
	assert_int_equal(billing->nexports, 0);
	assert_int_equal(billing->nimports, 2);
	assert_int_equal(billing->imports[0].kind, VBD_STREAM);
	assert_string_equal(billing->imports[0].from, "orders");
	assert_int_equal(billing->imports[0].from_idx, 0);
	assert_ptr_equal(billing->imports[0].exp, &orders->exports[0]);
	assert_int_equal(billing->imports[1].kind, VBD_SERVICE);
	assert_ptr_equal(billing->imports[1].exp, &orders->exports[1]);
	assert_int_equal(billing->max_conns, 0);
	assert_int_equal(billing->max_subs, 0);
	assert_int_equal(billing->max_memory, 4u << 20);
	/* Each user's account; users of authorization.users: the global. */
	n = creds(buf, "alice", "s3cret", NULL);
	assert_int_equal(vbd_auth_check(a, buf, n, &u), VB_OK);
	assert_ptr_equal(vbd_user_account(u), orders);
	n = creds(buf, "carol", "s3cret", NULL);
	assert_int_equal(vbd_auth_check(a, buf, n, &u), VB_OK);
	assert_ptr_equal(vbd_user_account(u), orders);
	assert_true(vbd_user_may_subscribe(u, "orders.new", 10));
	assert_false(vbd_user_may_subscribe(u, ">", 1));
	n = creds(buf, "bob", "s3cret", NULL);
	assert_int_equal(vbd_auth_check(a, buf, n, &u), VB_OK);
	assert_ptr_equal(vbd_user_account(u), billing);
	n = creds(buf, NULL, NULL, "tok-123");
	assert_int_equal(vbd_auth_check(a, buf, n, &u), VB_OK);
	assert_string_equal(vbd_user_name(u), "svc");
	assert_ptr_equal(vbd_user_account(u), billing);
	n = creds(buf, "eve", "s3cret", NULL);
	assert_int_equal(vbd_auth_check(a, buf, n, &u), VB_OK);
	assert_null(vbd_user_account(u));
	n = creds(buf, "bob", "s3cres", NULL);
	assert_int_equal(vbd_auth_check(a, buf, n, &u), VB_EACCES);
	vbd_auth_destroy(a);

	/* users alone: no accounts, every user in the global one. */
	a = load_two_users();
	assert_int_equal(vbd_auth_accounts(a), 0);
	assert_null(vbd_auth_account(a, 0));
	n = creds(buf, "alice", "s3cret", NULL);
	assert_int_equal(vbd_auth_check(a, buf, n, &u), VB_OK);
	assert_null(vbd_user_account(u));
	vbd_auth_destroy(a);
}

/* accounts without users (of the global account): the users are all in
 * accounts; an account with no user at all is allowed; response_ms 0 (no
 * limit) and the limits' bounds are accepted. */
static void test_auth_accounts_only(void **state)
{
	struct vbd_auth *a = NULL;
	char err[512] = "";

	(void)state;
	write_conf(
		"authorization = { accounts = (\n"
		"  { name = \"a-1_B\";\n"
		"    users = ( { user = \"x\"; password = \"$argon2id$x\"; } );\n"
		"    exports = ( { service = \"s.>\"; response_ms = 0;\n"
		"                  responses = 65536; } );\n"
		"    limits = { max_conns = 1048576; max_subs = 16777216; }; },\n"
		"  { name = \"b\";\n"
		"    imports = ( { service = \"s.x\"; account = \"a-1_B\"; } );\n"
		"    limits = { max_conns = 1; max_subs = 1; max_memory = \"1K\"; }; }\n"
		"); };\n");
	if (vbd_auth_load(path, &a, err, sizeof(err)) != VB_OK)
		fail_msg("refused: %s", err);
	unlink(path);
	assert_non_null(a);
	assert_int_equal(vbd_auth_users(a), 1);
	assert_int_equal(vbd_auth_accounts(a), 2);
	assert_int_equal(vbd_auth_account(a, 0)->exports[0].response_ms, 0);
	assert_int_equal(vbd_auth_account(a, 0)->exports[0].responses, 65536);
	assert_int_equal(vbd_auth_account(a, 0)->max_conns, 1048576);
	assert_int_equal(vbd_auth_account(a, 0)->max_subs, 16777216);
	assert_int_equal(vbd_auth_account(a, 1)->max_memory, 1024);
	assert_ptr_equal(vbd_auth_account(a, 1)->imports[0].exp,
			 &vbd_auth_account(a, 0)->exports[0]);
	vbd_auth_destroy(a);
}

/*
 * acct_refused(USERS, ACCOUNTS, WHY, WHY2): the group "users = ( USERS );"
 * (left out if NULL) and "accounts = ( ACCOUNTS );" is refused with
 * VB_EINVAL and "FILE:LINE: authorization: ..." (LINE above 0) holding WHY
 * (and WHY2 if not NULL).
 */
static void acct_refused(const char *users, const char *accts, const char *why,
			 const char *why2)
{
	struct vbd_auth *a = NULL;
	char conf[2048], err[512] = "", *end;
	size_t plen;
	long line;

	snprintf(conf, sizeof(conf),
		 "listen = \"0.0.0.0:1\";\n"
		 "authorization = {\n"
		 "%s%s%s"
		 "  accounts = (\n%s\n  );\n"
		 "};\n",
		 users ? "  users = ( " : "", users ? users : "",
		 users ? " );\n" : "", accts);
	write_conf(conf);
	assert_int_equal(vbd_auth_load(path, &a, err, sizeof(err)), VB_EINVAL);
	unlink(path);
	assert_null(a);
	plen = strlen(path);
	if (strncmp(err, path, plen) || err[plen] != ':')
		fail_msg("error \"%s\" does not start with \"%s:\"", err, path);
	line = strtol(err + plen + 1, &end, 10);
	if (line <= 0 || strncmp(end, ": authorization: ", 17))
		fail_msg("error \"%s\" lacks \"%s:LINE: authorization: \"", err,
			 path);
	if (!strstr(err, why) || (why2 && !strstr(err, why2)))
		fail_msg("error \"%s\" lacks \"%s\"%s%s%s", err, why,
			 why2 ? " and \"" : "", why2 ? why2 : "",
			 why2 ? "\"" : "");
}

#define PW "password = \"$argon2id$x\""
/* One account "orders" with user alice, and whatever @more says. */
#define ORDERS(more)                                             \
	"{ name = \"orders\"; users = ( { user = \"alice\"; " PW \
	"; } ); " more " }"
/* The account "billing" exporting @exp (a list's entries). */
#define BILLING(exp) "{ name = \"billing\"; exports = ( " exp " ); }"
/* orders' import of billing's events; billing's export of them to audit. */
#define IMPORT_EVENTS \
	"imports = ( { stream = \"billing.events.>\"; account = \"billing\"; } );"
#define TO_AUDIT "{ stream = \"billing.events.>\"; accounts = [ \"audit\" ]; }"

static void test_auth_accounts_bad(void **state)
{
	(void)state;
	/* Names: invalid, reserved, twice. */
	acct_refused(NULL, "{ name = \"bad name\"; }", "name", NULL);
	acct_refused(NULL, "{ name = \"\"; }", "name", NULL);
	acct_refused(NULL,
		     "{ name = \"a123456789012345678901234567890123456789"
		     "0123456789012345678901234\"; }",
		     "name", NULL);
	acct_refused(NULL, "{ name = \"$G\"; }", "reserved", NULL);
	acct_refused(NULL, "{ name = \"$sys\"; }", "reserved", NULL);
	acct_refused(NULL, "{ users = ( { user = \"x\"; " PW "; } ); }", "name",
		     NULL);
	acct_refused(NULL, "{ name = \"orders\"; }, { name = \"orders\"; }",
		     "orders", "twice");
	/* A user name once in the whole group. */
	acct_refused(NULL,
		     ORDERS("") ", { name = \"billing\"; users = ( { user = "
				"\"alice\"; " PW "; } ); }",
		     "alice", "twice");
	acct_refused("{ user = \"alice\"; " PW "; }", ORDERS(""), "alice",
		     "twice");
	acct_refused(NULL,
		     "{ name = \"orders\"; users = ( { user = \"bob\"; " PW
		     "; }, { user = \"bob\"; " PW "; } ); }",
		     "bob", "twice");
	/* Unknown keys. */
	acct_refused(NULL, ORDERS("admins = [ \"alice\" ];"),
		     "unknown key 'admins'", NULL);
	acct_refused(
		NULL,
		ORDERS("exports = ( { stream = \"a.>\"; publish = 1; } );"),
		"unknown key 'publish'", NULL);
	acct_refused(NULL,
		     BILLING("{ stream = \"b.>\"; }") ", " ORDERS(
			     "imports = ( { stream = \"b.>\"; account = "
			     "\"billing\"; as = \"x\"; } );"),
		     "unknown key 'as'", NULL);
	acct_refused(NULL, ORDERS("limits = { max_bytes = 1; };"),
		     "unknown key 'max_bytes'", NULL);
	/* Patterns: invalid, under _INBOX. */
	acct_refused(NULL, ORDERS("exports = ( { stream = \"a..b\"; } );"),
		     "not a valid subject pattern", NULL);
	acct_refused(NULL,
		     BILLING("{ stream = \"b.>\"; }") ", " ORDERS(
			     "imports = ( { stream = \"b.>.c\"; account = "
			     "\"billing\"; } );"),
		     "not a valid subject pattern", NULL);
	acct_refused(NULL, ORDERS("exports = ( { stream = \"_INBOX.>\"; } );"),
		     "_INBOX", NULL);
	acct_refused(NULL,
		     ORDERS("exports = ( { service = \"_INBOX.abc.x\"; } );"),
		     "_INBOX", NULL);
	acct_refused(NULL,
		     BILLING("{ stream = \">\"; }") ", " ORDERS(
			     "imports = ( { stream = \"_INBOX.>\"; account = "
			     "\"billing\"; } );"),
		     "_INBOX", NULL);
	/* Imports: from an unknown account, from its own, not exported (or
	 * not as that kind), not exported to the importer. */
	acct_refused(NULL,
		     ORDERS("imports = ( { stream = \"b.>\"; account = "
			    "\"nosuch\"; } );"),
		     "imports: stream b.> from account nosuch", NULL);
	acct_refused(
		NULL,
		ORDERS("exports = ( { stream = \"o.>\"; } ); imports = ( { "
		       "stream = \"o.>\"; account = \"orders\"; } );"),
		"imports: stream o.> from account orders", NULL);
	acct_refused(NULL,
		     BILLING("{ stream = \"billing.other.>\"; }") ", " ORDERS(
			     IMPORT_EVENTS),
		     "imports: stream billing.events.> from account billing: "
		     "billing exports no stream covering it",
		     NULL);
	acct_refused(NULL,
		     BILLING("{ stream = \"billing.events.x\"; }") ", " ORDERS(
			     IMPORT_EVENTS),
		     "billing exports no stream covering it", NULL);
	acct_refused(NULL,
		     BILLING("{ service = \"billing.events.>\"; }") ", " ORDERS(
			     IMPORT_EVENTS),
		     "billing exports no stream covering it", NULL);
	acct_refused(NULL,
		     BILLING("{ stream = \"billing.price\"; }") ", " ORDERS(
			     "imports = ( { service = \"billing.price\"; "
			     "account = \"billing\"; } );"),
		     "imports: service billing.price from account billing: "
		     "billing exports no service covering it",
		     NULL);
	acct_refused(NULL, BILLING(TO_AUDIT) ", " ORDERS(IMPORT_EVENTS),
		     "imports: stream billing.events.> from account billing: "
		     "billing does not export it to orders",
		     NULL);
	/* Ranges. */
	acct_refused(
		NULL,
		ORDERS("exports = ( { service = \"o.s\"; responses = 0; } );"),
		"responses", NULL);
	acct_refused(NULL,
		     ORDERS("exports = ( { service = \"o.s\"; responses = "
			    "65537; } );"),
		     "responses", NULL);
	acct_refused(NULL,
		     ORDERS("exports = ( { service = \"o.s\"; response_ms = "
			    "-1; } );"),
		     "response_ms", NULL);
	acct_refused(NULL,
		     ORDERS("exports = ( { service = \"o.s\"; response_ms = "
			    "86400001; } );"),
		     "response_ms", NULL);
	acct_refused(NULL, ORDERS("limits = { max_conns = 0; };"), "max_conns",
		     NULL);
	acct_refused(NULL, ORDERS("limits = { max_conns = 1048577; };"),
		     "max_conns", NULL);
	acct_refused(NULL, ORDERS("limits = { max_subs = 0; };"), "max_subs",
		     NULL);
	acct_refused(NULL, ORDERS("limits = { max_subs = 16777217; };"),
		     "max_subs", NULL);
	acct_refused(NULL, ORDERS("limits = { max_memory = \"lots\"; };"),
		     "max_memory", NULL);
	acct_refused(NULL, ORDERS("limits = { max_memory = 0; };"),
		     "max_memory", NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_auth_credentials),
		cmocka_unit_test(test_auth_permissions),
		cmocka_unit_test(test_auth_bad_entries),
		cmocka_unit_test(test_auth_accounts),
		cmocka_unit_test(test_auth_accounts_only),
		cmocka_unit_test(test_auth_accounts_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
