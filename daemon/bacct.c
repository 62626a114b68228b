/*
 * bacct.c - accounts at run time (see broker_int.h, struct bacct).
 *
 * Decisions a reader must know:
 *  - Subjects are per account because subscriptions are: each account has
 *    a trie of its own, and a message is matched in its publisher's.  The
 *    common case, one account, costs nothing more than before: the
 *    crossings below are empty.
 *  - Crossings are made from the definitions once per bind (start-up,
 *    reload), not per message: an exporting account lists the accounts
 *    importing its streams (with the import's pattern), an importing one
 *    the services it imports.  Routing (deliver.c) walks those short
 *    lists for the message's subject.
 *  - Accounts are never freed before the broker: a connection and a
 *    service's reply grant point at theirs, and a reload only rebinds
 *    definitions.  An account gone from the file keeps its name and
 *    counters, no definition and no crossings; its clients were
 *    disconnected by the reload (their users went with it).
 *  - Limits are counted here: connections and their registered memory at
 *    the open, subscriptions as they come.  A lower limit refuses what
 *    comes next and closes nothing.
 */
#include "daemon/broker_int.h"

#include "daemon/auth.h"

#include "core/log.h"
#include "core/parse.h"

#include <verbus/verbus.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "$G" first ('$' sorts before every character a name may hold). */
static int by_name(const struct bacct *x, const struct bacct *y)
{
	return strcmp(x->name, y->name);
}

static struct bacct *acct_new(struct vbd_broker *b, const char *name)
{
	struct bacct *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	snprintf(a->name, sizeof(a->name), "%s", name);
	if (b->nrids == b->cap_rids) {
		uint32_t cap = b->cap_rids ? 2 * b->cap_rids : 8;
		struct bacct **p = realloc(b->by_rid, cap * sizeof(*p));

		if (!p)
			goto out_free;
		b->by_rid = p;
		b->cap_rids = cap;
	}
	if (vbi_sublist_create(&a->sl))
		goto out_free;
	HASH_ADD_STR(b->accts, name, a);
	if (a->oom)
		goto out_destroy_sl;
	HASH_SORT(b->accts, by_name);
	a->rid = b->nrids;
	b->by_rid[b->nrids++] = a;
	return a;
out_destroy_sl:
	vbi_sublist_destroy(a->sl);
out_free:
	free(a);
	return NULL;
}

static void acct_free(struct bacct *a)
{
	vbi_sublist_destroy(a->sl);
	vbi_sublist_destroy(a->remote);
	free(a->streams_out);
	free(a->services_in);
	free(a->services_out);
	free(a);
}

int bk_accounts_init(struct vbd_broker *b)
{
	b->gacct = acct_new(b, VBD_GLOBAL_ACCOUNT);
	return b->gacct ? VB_OK : VB_ENOMEM;
}

void bk_accounts_fini(struct vbd_broker *b)
{
	struct bacct *a, *tmp;

	HASH_ITER(hh, b->accts, a, tmp)
	{
		HASH_DEL(b->accts, a);
		acct_free(a);
	}
	b->gacct = NULL;
	free(b->by_rid);
	b->by_rid = NULL;
	b->nrids = b->cap_rids = 0;
}

struct bacct *bk_account_by_sid(struct vbd_broker *b, uint32_t sid)
{
	uint32_t rid = sid & ~VBI_ACCOUNT_SID;

	if (sid && !(sid & VBI_ACCOUNT_SID))
		return NULL;
	return rid < b->nrids ? b->by_rid[rid] : NULL;
}

static struct bacct *acct_find(struct vbd_broker *b, const char *name)
{
	struct bacct *a = NULL;

	HASH_FIND_STR(b->accts, name, a);
	return a;
}

static int xport_add(struct bxport **arr, size_t *n, struct bacct *acct,
		     const struct vbd_import *im)
{
	struct bxport *p = realloc(*arr, (*n + 1) * sizeof(*p));

	if (!p)
		return VB_ENOMEM;
	*arr = p;
	p[*n].acct = acct;
	p[*n].pattern = im->pattern;
	p[*n].plen = strlen(im->pattern);
	p[*n].exp = im->exp;
	(*n)++;
	return VB_OK;
}

int bk_accounts_bind(struct vbd_broker *b)
{
	size_t n = vbd_auth_accounts(b->auth), i, j;
	struct bacct *a, *tmp;
	int rc = VB_OK;

	HASH_ITER(hh, b->accts, a, tmp)
	{
		a->def = NULL;
		free(a->streams_out);
		free(a->services_in);
		free(a->services_out);
		a->streams_out = a->services_in = a->services_out = NULL;
		a->nstreams_out = a->nservices_in = a->nservices_out = 0;
	}
	for (i = 0; i < n; i++) {
		const struct vbd_acct_def *d = vbd_auth_account(b->auth, i);

		a = acct_find(b, d->name);
		if (!a && !(a = acct_new(b, d->name)))
			goto out_nomem;
		a->def = d;
	}
	for (i = 0; i < n; i++) {
		const struct vbd_acct_def *d = vbd_auth_account(b->auth, i);
		struct bacct *imp = acct_find(b, d->name);

		for (j = 0; j < d->nimports; j++) {
			const struct vbd_import *im = &d->imports[j];
			struct bacct *exp = acct_find(b, im->from);

			if (im->kind == VBD_STREAM)
				rc = xport_add(&exp->streams_out,
					       &exp->nstreams_out, imp, im);
			else if (!(rc = xport_add(&imp->services_in,
						  &imp->nservices_in, exp, im)))
				/* The way back, for a request that comes
				 * over a route (deliver.c). */
				rc = xport_add(&exp->services_out,
					       &exp->nservices_out, imp, im);
			if (rc)
				goto out_nomem;
		}
	}
	return VB_OK;
out_nomem:
	vbi_err("accounts: out of memory binding them to the configuration: "
		"some imports are not in force");
	return VB_ENOMEM;
}

int bk_account_route(struct vbd_broker *b, const char *name, struct bacct **out)
{
	struct bacct *a;

	if (!*name || !strcmp(name, VBD_GLOBAL_ACCOUNT))
		a = b->gacct;
	else if (!vbd_acct_name_ok(name))
		return VB_EINVAL;
	else if (!(a = acct_find(b, name)) && !(a = acct_new(b, name)))
		return VB_ENOMEM;
	if (!a->remote && vbi_sublist_create(&a->remote))
		return VB_ENOMEM;
	*out = a;
	return VB_OK;
}

const char *bk_account_name_of(const struct vbd_user *u)
{
	const struct vbd_acct_def *d = vbd_user_account(u);

	return d ? d->name : VBD_GLOBAL_ACCOUNT;
}

/* The account @u belongs to, and what connection @c would cost it: its
 * ring here and the mirror of the client's (the Hello's size, before open). */
static struct bacct *acct_of(struct vbd_broker *b, const struct vbd_user *u,
			     struct vbi_conn *c, uint64_t *mem)
{
	struct bacct *a = acct_find(b, bk_account_name_of(u));
	struct vbi_conn_stats cs;

	vbi_conn_stats(c, &cs);
	*mem = (uint64_t)cs.ring_size + cs.peer_ring;
	return a ? a : b->gacct; /* not bound (out of memory): the global */
}

/* Whether @a takes one more connection of @mem bytes; if not, @why. */
static bool acct_room(struct bacct *a, uint64_t mem, char *why, size_t len)
{
	char lim[32];

	if (!a->def)
		return true;
	if (a->def->max_conns && a->nconns >= a->def->max_conns) {
		snprintf(why, len,
			 "account %s: too many connections (max_conns %u)",
			 a->name, a->def->max_conns);
		a->conns_refused++;
		return false;
	}
	if (a->def->max_memory && a->memory + mem > a->def->max_memory) {
		snprintf(why, len,
			 "account %s: registered memory limit reached "
			 "(max_memory %s; this connection needs %" PRIu64
			 " bytes, %" PRIu64 " in use)",
			 a->name,
			 vbi_size_str(a->def->max_memory, lim, sizeof(lim)),
			 mem, a->memory);
		a->conns_refused++;
		return false;
	}
	return true;
}

int bk_account_admit(struct vbd_broker *b, const struct vbd_user *u,
		     struct vbi_conn *c, char *why, size_t len)
{
	uint64_t mem;
	struct bacct *a = acct_of(b, u, c, &mem);

	return acct_room(a, mem, why, len) ? VB_OK : VB_ENOSPC;
}

int bk_account_join(struct bconn *bc, char *why, size_t len)
{
	uint64_t mem;
	struct bacct *a = acct_of(bc->b, bc->user, bc->c, &mem);

	if (!acct_room(a, mem, why, len))
		return VB_ENOSPC;
	bc->acct = a;
	bc->acct_mem = mem;
	a->nconns++;
	a->memory += mem;
	return VB_OK;
}

void bk_account_leave(struct bconn *bc)
{
	struct bacct *a = bc->acct;

	if (!a)
		return;
	a->nconns--;
	a->memory -= bc->acct_mem;
	bc->acct = NULL;
}

bool bk_account_sub_ok(struct bconn *bc, char *why, size_t len)
{
	struct bacct *a = bc->acct;

	if (!a->def || !a->def->max_subs || a->nsubs < a->def->max_subs)
		return true;
	a->subs_refused++;
	snprintf(why, len, "account %s: too many subscriptions (max_subs %u)",
		 a->name, a->def->max_subs);
	return false;
}

void bk_accounts_each(struct vbd_broker *b,
		      void (*fn)(void *ctx, const struct vbd_stats_account *a),
		      void *ctx)
{
	struct vbd_stats_account o;
	const struct bacct *a;

	for (a = b->accts; a; a = a->hh.next) {
		memset(&o, 0, sizeof(o));
		o.name = a->name;
		o.def = a->def;
		o.conns = a->nconns;
		o.subs = a->nsubs;
		o.memory = a->memory;
		o.msgs_in = a->msgs_in;
		o.bytes_in = a->bytes_in;
		o.msgs_out = a->msgs_out;
		o.bytes_out = a->bytes_out;
		o.conns_refused = a->conns_refused;
		o.subs_refused = a->subs_refused;
		fn(ctx, &o);
	}
}
