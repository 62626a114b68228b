/*
 * accountz.c - the /accountz page's accounts (monitor_int.h): each one's
 * counters, limits, exports and imports, as JSON.
 */
#include "daemon/monitor_int.h"

#include "core/subject.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Names as a JSON array of strings; NULL when out of memory. */
static json_object *names_json(char *const *names, size_t n)
{
	json_object *arr = json_object_new_array(), *o;
	char buf[VBD_ACCOUNT_NAME_MAX + 1];
	size_t i;

	if (arr == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		vbd_mon_clean_text(buf, names[i], sizeof(buf));
		o = json_object_new_string(buf);
		if (o == NULL || json_object_array_add(arr, o) != 0) {
			json_object_put(o);
			json_object_put(arr);
			return NULL;
		}
	}
	return arr;
}

/*
 * One export: {"stream" or "service": pattern, "accounts": [who may
 * import it] (absent: any account), "responses", "response_ms" (services
 * only)}.  NULL when out of memory.
 */
static json_object *export_json(const struct vbd_export *e)
{
	json_object *o = json_object_new_object(), *arr;

	if (o == NULL)
		return NULL;
	vbd_mon_jadd_text(o, vbd_xport_kind_name(e->kind), e->pattern,
			  VBI_SUBJECT_MAX + 1);
	if (e->accounts != NULL) {
		arr = names_json(e->accounts, e->naccounts);
		if (arr == NULL) {
			json_object_put(o);
			return NULL;
		}
		json_object_object_add(o, "accounts", arr);
	}
	if (e->kind == VBD_SERVICE) {
		vbd_mon_jadd_u64(o, "responses", e->responses);
		vbd_mon_jadd_u64(o, "response_ms", e->response_ms);
	}
	return o;
}

/* One import: {"stream" or "service": pattern, "account": from}. */
static json_object *import_json(const struct vbd_import *im)
{
	json_object *o = json_object_new_object();

	if (o == NULL)
		return NULL;
	vbd_mon_jadd_text(o, vbd_xport_kind_name(im->kind), im->pattern,
			  VBI_SUBJECT_MAX + 1);
	vbd_mon_jadd_text(o, "account", im->from, VBD_ACCOUNT_NAME_MAX + 1);
	return o;
}

/* {"max_conns", "max_subs", "max_memory"}: 0 is no account limit. */
static json_object *limits_json(const struct vbd_acct_def *d)
{
	json_object *o = json_object_new_object();

	if (o == NULL)
		return NULL;
	vbd_mon_jadd_u64(o, "max_conns", d->max_conns);
	vbd_mon_jadd_u64(o, "max_subs", d->max_subs);
	vbd_mon_jadd_u64(o, "max_memory", d->max_memory);
	return o;
}

/*
 * @d's exports and imports as arrays under "exports" and "imports" of
 * @o; both [] for the global account (@d NULL).  False: out of memory.
 */
static bool xports_json(json_object *o, const struct vbd_acct_def *d)
{
	json_object *ex = json_object_new_array(), *im, *x;
	size_t i;

	if (ex == NULL)
		return false;
	json_object_object_add(o, "exports", ex);
	for (i = 0; d != NULL && i < d->nexports; i++) {
		x = export_json(&d->exports[i]);
		if (x == NULL || json_object_array_add(ex, x) != 0) {
			json_object_put(x);
			return false;
		}
	}
	im = json_object_new_array();
	if (im == NULL)
		return false;
	json_object_object_add(o, "imports", im);
	for (i = 0; d != NULL && i < d->nimports; i++) {
		x = import_json(&d->imports[i]);
		if (x == NULL || json_object_array_add(im, x) != 0) {
			json_object_put(x);
			return false;
		}
	}
	return true;
}

/* One account of /accountz; NULL when out of memory. */
static json_object *account_json(const struct vbd_stats_account *a)
{
	json_object *o = json_object_new_object(), *lim;

	if (o == NULL)
		return NULL;
	vbd_mon_jadd_text(o, "name", a->name, VBD_ACCOUNT_NAME_MAX + 1);
	vbd_mon_jadd_u64(o, "conns", a->conns);
	vbd_mon_jadd_u64(o, "subs", a->subs);
	vbd_mon_jadd_u64(o, "memory", a->memory);
	vbd_mon_jadd_u64(o, "msgs_in", a->msgs_in);
	vbd_mon_jadd_u64(o, "bytes_in", a->bytes_in);
	vbd_mon_jadd_u64(o, "msgs_out", a->msgs_out);
	vbd_mon_jadd_u64(o, "bytes_out", a->bytes_out);
	vbd_mon_jadd_u64(o, "conns_refused", a->conns_refused);
	vbd_mon_jadd_u64(o, "subs_refused", a->subs_refused);
	/* The global account has no definition, so no limits of its own. */
	if (a->def != NULL) {
		lim = limits_json(a->def);
		if (lim == NULL)
			goto out_put;
		json_object_object_add(o, "limits", lim);
	}
	if (!xports_json(o, a->def))
		goto out_put;
	return o;
out_put:
	json_object_put(o);
	return NULL;
}

/* The accounts of /accountz being built, one at a time. */
struct accountz_page {
	const char *acc; /* only this one (?acc=); NULL: all */
	json_object *arr; /* the accounts */
	bool oom; /* an object could not be built */
};

/*
 * Built during the callback, since the definition it points to is the
 * broker's only until the callback returns (a reload may replace it).
 */
static void accountz_add(void *ctx, const struct vbd_stats_account *a)
{
	struct accountz_page *p = ctx;
	json_object *o;

	if (p->oom || (p->acc != NULL &&
		       (a->name == NULL || strcmp(a->name, p->acc) != 0)))
		return;
	o = account_json(a);
	if (o == NULL || json_object_array_add(p->arr, o) != 0) {
		json_object_put(o);
		p->oom = true;
	}
}

json_object *vbd_accountz_json(const struct vbd_stats_source *src,
			       const char *acc)
{
	struct accountz_page p = { .acc = acc };

	p.arr = json_object_new_array();
	if (p.arr == NULL)
		return NULL;
	if (src->accounts != NULL)
		src->accounts(src->arg, accountz_add, &p);
	if (p.oom) {
		json_object_put(p.arr);
		return NULL;
	}
	return p.arr;
}
