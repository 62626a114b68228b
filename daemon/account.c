/*
 * account.c - accounts' definitions read from verbusd.conf (see account.h).
 */
#include "daemon/account.h"

#include "core/parse.h"
#include "core/subject.h"

#include <verbus/verbus.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESPONSES_DEFAULT 1u
#define RESPONSE_MS_DEFAULT 120000u /* NATS's response threshold */

int vbd_conf_bad(char *err, size_t errlen, const config_setting_t *s,
		 const char *path, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "%s:%d: authorization: %s",
		 s && config_setting_source_file(s) ?
			 config_setting_source_file(s) :
			 path,
		 s ? (int)config_setting_source_line(s) : 0, msg);
	return VB_EINVAL;
}

const char *vbd_xport_kind_name(enum vbd_xport_kind k)
{
	return k == VBD_STREAM ? "stream" : "service";
}

int vbd_conf_keys(const config_setting_t *g, const char *const *keys,
		  const char *what, const char *path, char *err, size_t errlen)
{
	for (int i = 0; i < config_setting_length(g); i++) {
		const char *k = config_setting_name(
			config_setting_get_elem(g, (unsigned)i));
		const char *const *p;
		char allowed[160];
		size_t n = 0;

		for (p = keys; *p && strcmp(*p, k); p++)
			;
		if (*p)
			continue;
		allowed[0] = '\0';
		for (p = keys; *p && n < sizeof(allowed); p++)
			n += (size_t)snprintf(allowed + n, sizeof(allowed) - n,
					      "%s%s", p == keys ? "" : ", ",
					      *p);
		return vbd_conf_bad(err, errlen, g, path,
				    "%s%sunknown key '%s' (allowed: %s)", what,
				    *what ? ": " : "", k, allowed);
	}
	return VB_OK;
}

bool vbd_acct_name_ok(const char *n)
{
	size_t len = strlen(n);

	if (len == 0 || len > VBD_ACCOUNT_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = n[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
			return false;
	}
	return true;
}

/* The stream or service pattern of export or import @e, checked. */
static int xport_pattern(const config_setting_t *e, const char *what,
			 enum vbd_xport_kind *kind, char **out,
			 const char *path, char *err, size_t errlen)
{
	const char *st = NULL, *sv = NULL, *p;

	if (!config_setting_is_group(e))
		return vbd_conf_bad(err, errlen, e, path,
				    "%s: each entry is a group { stream = "
				    "\"...\"; } or { service = \"...\"; }",
				    what);
	config_setting_lookup_string(e, "stream", &st);
	config_setting_lookup_string(e, "service", &sv);
	if (!st == !sv)
		return vbd_conf_bad(err, errlen, e, path,
				    "%s: an entry has one of stream or service",
				    what);
	p = st ? st : sv;
	*kind = st ? VBD_STREAM : VBD_SERVICE;
	if (vbi_pattern_check(p, strlen(p)))
		return vbd_conf_bad(
			err, errlen, e, path,
			"%s: '%.80s' is not a valid subject pattern", what, p);
	/* Inboxes are private (daemon/inbox.h): the broker never routes
	 * their subjects across accounts, and a pattern that names them is
	 * refused rather than silently useless. */
	if (!strncmp(p, "_INBOX.", 7) || !strcmp(p, "_INBOX"))
		return vbd_conf_bad(err, errlen, e, path,
				    "%s: '%.80s' is under _INBOX: inboxes are "
				    "private and never cross accounts",
				    what, p);
	*out = strdup(p);
	return *out ? VB_OK : VB_ENOMEM;
}

static int load_export(const config_setting_t *e, void *p, const char *path,
		       char *err, size_t errlen)
{
	struct vbd_export *x = p;
	static const char *const keys[] = { "stream",	   "service",
					    "accounts",	   "responses",
					    "response_ms", NULL };
	const config_setting_t *l;
	int rc, v;

	x->responses = RESPONSES_DEFAULT;
	x->response_ms = RESPONSE_MS_DEFAULT;
	rc = xport_pattern(e, "exports", &x->kind, &x->pattern, path, err,
			   errlen);
	if (rc)
		return rc;
	rc = vbd_conf_keys(e, keys, "exports", path, err, errlen);
	if (rc)
		return rc;
	if (x->kind == VBD_STREAM &&
	    (config_setting_get_member(e, "responses") ||
	     config_setting_get_member(e, "response_ms")))
		return vbd_conf_bad(err, errlen, e, path, "%s",
				    "exports: responses and response_ms are "
				    "a service's");
	if (config_setting_lookup_int(e, "responses", &v)) {
		if (v < 1 || v > 65536)
			return vbd_conf_bad(err, errlen, e, path, "%s",
					    "exports: responses 1-65536");
		x->responses = (uint32_t)v;
	}
	if (config_setting_lookup_int(e, "response_ms", &v)) {
		if (v < 0 || v > 86400000)
			return vbd_conf_bad(err, errlen, e, path, "%s",
					    "exports: response_ms 0-86400000");
		x->response_ms = (uint32_t)v;
	}
	l = config_setting_get_member(e, "accounts");
	if (!l)
		return VB_OK;
	if (!config_setting_is_array(l) && !config_setting_is_list(l))
		return vbd_conf_bad(err, errlen, l, path, "%s",
				    "exports: accounts: a list of account "
				    "names [ \"a\", ... ]");
	x->accounts = calloc((size_t)config_setting_length(l) + 1,
			     sizeof(*x->accounts));
	if (!x->accounts)
		return VB_ENOMEM;
	for (int i = 0; i < config_setting_length(l); i++) {
		const char *n = config_setting_get_string_elem(l, i);

		if (!n || !vbd_acct_name_ok(n))
			return vbd_conf_bad(err, errlen, l, path, "%s",
					    "exports: accounts: names of 1-64 "
					    "of [A-Za-z0-9_-]");
		x->accounts[x->naccounts] = strdup(n);
		if (!x->accounts[x->naccounts])
			return VB_ENOMEM;
		x->naccounts++;
	}
	return VB_OK;
}

static int load_import(const config_setting_t *e, void *p, const char *path,
		       char *err, size_t errlen)
{
	static const char *const keys[] = { "stream", "service", "account",
					    NULL };
	struct vbd_import *x = p;
	const char *from = NULL;
	int rc;

	x->where = e;
	rc = xport_pattern(e, "imports", &x->kind, &x->pattern, path, err,
			   errlen);
	if (rc)
		return rc;
	rc = vbd_conf_keys(e, keys, "imports", path, err, errlen);
	if (rc)
		return rc;
	if (!config_setting_lookup_string(e, "account", &from) ||
	    !vbd_acct_name_ok(from))
		return vbd_conf_bad(err, errlen, e, path, "%s",
				    "imports: account: the exporting "
				    "account's name");
	x->from = strdup(from);
	return x->from ? VB_OK : VB_ENOMEM;
}

static int load_limits(const config_setting_t *l, struct vbd_acct_def *d,
		       const char *path, char *err, size_t errlen)
{
	static const char *const keys[] = { "max_conns", "max_subs",
					    "max_memory", NULL };
	const config_setting_t *m;
	int rc, v;

	if (!config_setting_is_group(l))
		return vbd_conf_bad(err, errlen, l, path, "%s",
				    "limits: a group { max_conns = N; ... }");
	rc = vbd_conf_keys(l, keys, "limits", path, err, errlen);
	if (rc)
		return rc;
	if (config_setting_lookup_int(l, "max_conns", &v)) {
		if (v < 1 || v > (1 << 20))
			return vbd_conf_bad(err, errlen, l, path, "%s",
					    "limits: max_conns 1-1048576");
		d->max_conns = (uint32_t)v;
	}
	if (config_setting_lookup_int(l, "max_subs", &v)) {
		if (v < 1 || v > (1 << 24))
			return vbd_conf_bad(err, errlen, l, path, "%s",
					    "limits: max_subs 1-16777216");
		d->max_subs = (uint32_t)v;
	}
	m = config_setting_get_member(l, "max_memory");
	if (m) {
		uint64_t sz = 0;
		bool ok;

		if (config_setting_type(m) == CONFIG_TYPE_INT ||
		    config_setting_type(m) == CONFIG_TYPE_INT64) {
			long long n = config_setting_get_int64(m);

			ok = n > 0;
			sz = (uint64_t)n;
		} else {
			const char *s = config_setting_get_string(m);

			ok = s && vbi_parse_size(s, &sz, NULL) && sz > 0;
		}
		if (!ok)
			return vbd_conf_bad(err, errlen, m, path, "%s",
					    "limits: max_memory: a size above "
					    "0 (bytes, or \"64M\")");
		d->max_memory = sz;
	}
	return VB_OK;
}

typedef int (*load_fn)(const config_setting_t *e, void *x, const char *path,
		       char *err, size_t errlen);

/* Read list @key of account @e, each entry with @load, into a new array
 * of @size-byte elements *@arr, *@n of them read (the one that failed
 * included, for vbd_acct_free()). */
static int load_list(const config_setting_t *e, const char *key, size_t size,
		     void **arr, size_t *n, load_fn load, const char *path,
		     char *err, size_t errlen)
{
	const config_setting_t *l = config_setting_get_member(e, key);
	int rc = VB_OK;

	if (!l)
		return VB_OK;
	if (!config_setting_is_list(l))
		return vbd_conf_bad(err, errlen, l, path,
				    "%s: a list ( { ... }, ... )", key);
	*arr = calloc((size_t)config_setting_length(l) + 1, size);
	if (!*arr)
		return VB_ENOMEM;
	for (int i = 0; !rc && i < config_setting_length(l); i++) {
		rc = load(config_setting_get_elem(l, (unsigned)i),
			  (char *)*arr + *n * size, path, err, errlen);
		(*n)++;
	}
	return rc;
}

int vbd_acct_load(const config_setting_t *e, struct vbd_acct_def *d,
		  const char *path, char *err, size_t errlen)
{
	static const char *const keys[] = { "name",    "users",	 "exports",
					    "imports", "limits", NULL };
	const config_setting_t *l;
	const char *name = NULL;
	int rc;

	d->where = e;
	if (!config_setting_is_group(e))
		return vbd_conf_bad(err, errlen, e, path, "%s",
				    "accounts: each entry is a group { name = "
				    "\"...\"; users = ( ... ); }");
	rc = vbd_conf_keys(e, keys, "accounts", path, err, errlen);
	if (rc)
		return rc;
	if (!config_setting_lookup_string(e, "name", &name))
		return vbd_conf_bad(err, errlen, e, path, "%s",
				    "accounts: an account needs a name");
	if (name[0] == '$')
		return vbd_conf_bad(err, errlen, e, path,
				    "accounts: '%.64s': names starting with "
				    "'$' are reserved (\"$G\" is the global "
				    "account's)",
				    name);
	if (!vbd_acct_name_ok(name))
		return vbd_conf_bad(err, errlen, e, path, "%s",
				    "accounts: a name is 1-64 of "
				    "[A-Za-z0-9_-]");
	snprintf(d->name, sizeof(d->name), "%s", name);
	rc = load_list(e, "exports", sizeof(*d->exports), (void **)&d->exports,
		       &d->nexports, load_export, path, err, errlen);
	if (!rc)
		rc = load_list(e, "imports", sizeof(*d->imports),
			       (void **)&d->imports, &d->nimports, load_import,
			       path, err, errlen);
	if (rc)
		return rc;
	l = config_setting_get_member(e, "limits");
	return l ? load_limits(l, d, path, err, errlen) : VB_OK;
}

static bool exports_to(const struct vbd_export *x, const char *who)
{
	if (!x->accounts)
		return true;
	for (size_t i = 0; i < x->naccounts; i++)
		if (!strcmp(x->accounts[i], who))
			return true;
	return false;
}

/* Resolve import @im of account @d among the @n definitions @all. */
static int resolve_one(struct vbd_acct_def *all, size_t n,
		       struct vbd_acct_def *d, struct vbd_import *im,
		       const char *path, char *err, size_t errlen)
{
	const char *kind = vbd_xport_kind_name(im->kind);
	const struct vbd_acct_def *from = NULL;
	bool covered = false;
	size_t i;

	for (i = 0; i < n && !from; i++)
		if (!strcmp(all[i].name, im->from))
			from = &all[i];
	if (!from)
		return vbd_conf_bad(err, errlen, im->where, path,
				    "imports: %s %.80s from account %s: no "
				    "such account",
				    kind, im->pattern, im->from);
	if (from == d)
		return vbd_conf_bad(err, errlen, im->where, path,
				    "imports: %s %.80s from account %s: an "
				    "account does not import from itself",
				    kind, im->pattern, im->from);
	im->from_idx = (size_t)(from - all);
	for (i = 0; i < from->nexports; i++) {
		const struct vbd_export *x = &from->exports[i];

		if (x->kind != im->kind ||
		    !vbi_pattern_covers(x->pattern, strlen(x->pattern),
					im->pattern, strlen(im->pattern)))
			continue;
		covered = true;
		if (exports_to(x, d->name)) {
			im->exp = x;
			return VB_OK;
		}
	}
	if (!covered)
		return vbd_conf_bad(err, errlen, im->where, path,
				    "imports: %s %.80s from account %s: %s "
				    "exports no %s covering it",
				    kind, im->pattern, im->from, im->from,
				    kind);
	return vbd_conf_bad(err, errlen, im->where, path,
			    "imports: %s %.80s from account %s: %s does not "
			    "export it to %s",
			    kind, im->pattern, im->from, im->from, d->name);
}

int vbd_acct_resolve(struct vbd_acct_def *d, size_t n, const char *path,
		     char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < i; j++)
			if (!strcmp(d[i].name, d[j].name))
				return vbd_conf_bad(err, errlen, d[i].where,
						    path,
						    "accounts: '%s' is defined "
						    "twice",
						    d[i].name);
		for (size_t j = 0; j < d[i].nimports; j++) {
			int rc = resolve_one(d, n, &d[i], &d[i].imports[j],
					     path, err, errlen);

			if (rc)
				return rc;
		}
	}
	return VB_OK;
}

void vbd_acct_free(struct vbd_acct_def *d)
{
	if (!d)
		return;
	for (size_t i = 0; d->exports && i < d->nexports; i++) {
		for (size_t j = 0; j < d->exports[i].naccounts; j++)
			free(d->exports[i].accounts[j]);
		free(d->exports[i].accounts);
		free(d->exports[i].pattern);
	}
	free(d->exports);
	for (size_t i = 0; d->imports && i < d->nimports; i++) {
		free(d->imports[i].pattern);
		free(d->imports[i].from);
	}
	free(d->imports);
	d->exports = NULL;
	d->imports = NULL;
	d->nexports = d->nimports = 0;
}
