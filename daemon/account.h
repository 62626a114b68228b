/*
 * account.h - accounts (tenants): what verbusd.conf says of each, read and
 * checked (docs/SECURITY.md, "Accounts").
 *
 *   authorization = {
 *     users = ( ... );                    # the global account, "$G"
 *     accounts = (
 *       { name = "orders";
 *         users = ( { user = "alice"; password = "..."; }, ... );
 *         exports = ( { stream = "orders.shipped.>"; },
 *                     { service = "orders.status";
 *                       accounts = [ "billing" ]; } );
 *         imports = ( { stream = "billing.events.>";
 *                       account = "billing"; } );
 *         limits = { max_conns = 100; max_subs = 1000;
 *                    max_memory = "64M"; }; }
 *     );
 *   };
 *
 * Subjects are isolated per account: a message published in one reaches
 * its own subscribers only, and those of the accounts that import a
 * stream of it covering the subject (under the same subject), or, for a
 * service an account imports, the exporting account's subscribers, whose
 * replies go back into the importer.  How the broker routes it is
 * daemon/broker_int.h's (bacct.c); this file is the configuration alone:
 * pure, no broker state, so that tests/unit covers it.
 *
 * Threading: none kept.  Ownership: an array of definitions and what they
 * point to belong to the struct vbd_auth that loaded them (auth.h).
 */
#ifndef VERBUS_DAEMON_ACCOUNT_H
#define VERBUS_DAEMON_ACCOUNT_H

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VBD_ACCOUNT_NAME_MAX 64 /* bytes of a name, without terminator */
#define VBD_GLOBAL_ACCOUNT "$G" /* users of authorization.users, or none */

enum vbd_xport_kind {
	VBD_STREAM, /* messages, one way */
	VBD_SERVICE, /* requests; responders reply into the requester's */
};

/* What an account exports: a pattern others may import. */
struct vbd_export {
	enum vbd_xport_kind kind;
	char *pattern;
	char **accounts; /* who may import it; NULL: any account */
	size_t naccounts;
	/* A service's responders: replies per request, and for how long
	 * after it (0: no limit) [1, 120000]. */
	uint32_t responses;
	uint32_t response_ms;
};

/* What an account imports: a pattern from another's export. */
struct vbd_import {
	enum vbd_xport_kind kind;
	char *pattern;
	char *from; /* the exporting account's name */
	size_t from_idx; /* its index among the definitions (resolved) */
	const struct vbd_export *exp; /* the export covering it (resolved) */
	const config_setting_t *where; /* while loading: for errors */
};

/* One account's definition. */
struct vbd_acct_def {
	char name[VBD_ACCOUNT_NAME_MAX + 1];
	struct vbd_export *exports;
	size_t nexports;
	struct vbd_import *imports;
	size_t nimports;
	/* Limits over all its connections; 0: none but the broker's. */
	uint32_t max_conns;
	uint32_t max_subs;
	uint64_t max_memory; /* the broker's registered memory for them */
	const config_setting_t *where; /* while loading: for errors */
};

/*
 * vbd_conf_bad() - an error about the authorization group: "@path:line:
 * authorization: why" into @err (the line of @s, if known).  Returns
 * VB_EINVAL, for "return vbd_conf_bad(...)".
 */
__attribute__((format(printf, 5, 6))) int
vbd_conf_bad(char *err, size_t errlen, const config_setting_t *s,
	     const char *path, const char *fmt, ...);

/*
 * vbd_conf_keys() - whether every key of group @g is one of the
 * NULL-terminated @keys: VB_OK, or VB_EINVAL with "...: @what: unknown key
 * 'k' (allowed: a, b)" in @err (no "@what: " when @what is "").
 */
int vbd_conf_keys(const config_setting_t *g, const char *const *keys,
		  const char *what, const char *path, char *err, size_t errlen);

/*
 * vbd_acct_load() - read one entry of the accounts list @e into @d
 * (zeroed by the caller): its name, exports, imports and limits; the
 * users are the caller's (auth.c).  Imports are resolved later, once
 * every account is read (vbd_acct_resolve()).  Returns VB_OK, VB_EINVAL
 * (@err says "file:line: authorization: why") or VB_ENOMEM.  On error @d
 * may hold what was read so far: vbd_acct_free() it.
 */
int vbd_acct_load(const config_setting_t *e, struct vbd_acct_def *d,
		  const char *path, char *err, size_t errlen);

/*
 * vbd_acct_resolve() - check the @n definitions @d as a whole: names
 * unique, each import from another account that exports, of the same
 * kind, a pattern covering it to the importer; resolves from_idx and
 * exp.  Returns VB_OK or VB_EINVAL (@err says which import and why).
 */
int vbd_acct_resolve(struct vbd_acct_def *d, size_t n, const char *path,
		     char *err, size_t errlen);

/* vbd_acct_name_ok() - whether @n is an account's name: 1-64 of
 * [A-Za-z0-9_-] (the global account's "$G" is not). */
bool vbd_acct_name_ok(const char *n);

/* vbd_acct_free() - free what @d holds (not @d); accepts half-read. */
void vbd_acct_free(struct vbd_acct_def *d);

/* vbd_xport_kind_name() - "stream" or "service". */
const char *vbd_xport_kind_name(enum vbd_xport_kind k);

#endif /* VERBUS_DAEMON_ACCOUNT_H */
