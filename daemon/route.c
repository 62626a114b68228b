/*
 * route.c - routes: connections to the other brokers of the cluster, the
 * interest they exchange, and forwards across them (docs/PROTOCOL.md,
 * "Routes"; docs/ARCHITECTURE.md, "The cluster").
 *
 * Decisions a reader must know:
 *  - A route is a connection of the same transport as a client's (rings,
 *    credits, zero-copy forwards), one per pair of members: the broker
 *    whose id is the smaller opens it, to the other's cluster.listen, with
 *    a Hello whose credentials carry a RouteAuth (cluster name, secret,
 *    its id).  The route listener admits only that; the client listener
 *    refuses it (broker.c), so a client never poses as a route and a route
 *    never gets a client's permissions.
 *  - Interest, as NATS's: each broker tells every route the (pattern,
 *    queue) pairs its own clients subscribe to, the first subscription of
 *    each as a RouteSub under an id of ours, the last one's going as a
 *    RouteUnsub; a route that opens gets the whole set.  What a peer
 *    declared lives in a trie of its own per account (bacct.remote), apart
 *    from the clients' (bacct.sl).  Interest carries its account: the
 *    same name is the same account on every member.
 *  - A client's message is matched against both, in its account and in
 *    each account it crosses into (bacct.c: a stream another imports, a
 *    service it imports).  Each route with plain interest in an account
 *    gets one forward with the peer's id of the account as sid (its
 *    RouteSubs' account_sid, bit 31 set: deliver to your plain
 *    subscribers of that account; 0: of the global account, as before
 *    accounts); a queue group gets a forward
 *    with the peer's id of it as sid only if no local member took the
 *    message (a local member is preferred, as NATS does), one route per
 *    group (the remote trie's rotation).  A message that came over a
 *    route goes to local clients only: never back over a route, never
 *    across accounts again, so no loops and no duplicates.
 *  - Forwards to a route are deliveries like any other (bk_deliver_to:
 *    zero copy within a device; when it has no room they queue and pause
 *    publishers rather than lose messages).  A route is never closed for
 *    slowness: held back for ROUTE_STALL_FACTOR x block_timeout_ms it is
 *    shed (deliver.c), and what it loses, then or when it closes, is kept
 *    by subject (rloss.h) and reported to the peer in Dropped messages
 *    after our interest, so that the subscribers behind it are told.
 *  - Interest to send waits in a queue per route, in order, while the
 *    route has no control credit; a route whose queue exceeds the whole
 *    set by ROUTE_OPS_MAX is closed and resynchronised when it reopens.
 *  - A member that leaves ZooKeeper keeps its open route (ZooKeeper's
 *    view is not the route's: a broker cut from ZooKeeper still routes);
 *    a closed route is reopened, with backoff, only while its peer is a
 *    member.
 */
#include "daemon/broker_int.h"
#include "daemon/rloss.h"

#include "core/chunk.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/parse.h"
#include "core/url.h"

#include <verbus/verbus.h>

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KIND_ROUTE 0x524f5554u /* an outbound route's arg until it opens */
#define ROUTE_OPS_MAX \
	(1u << 20) /* interest messages waiting per route,
				  * beyond the whole set */
#define ROUTE_RSUBS_MAX (1u << 22) /* interest entries a peer may declare */
#define ROUTE_PING_MS 1000 /* a ping on each open route this often */
#define ROUTE_BACKOFF_MIN_MS 100
#define ROUTE_BACKOFF_MAX_MS 5000
#define ROUTE_CONNECT_MS 5000 /* an attempt gives up after this */
#define ROUTE_SECRET_MAX 128
#define ROUTE_CLUSTER_MAX 64

/* An entry of a peer's interest, in its account's remote trie. */
struct rsub {
	struct vbi_sub s; /* s.owner is this */
	struct bconn *rc; /* the route it came over */
	uint32_t id; /* the peer's id for it: the sid of forwards */
	uint32_t acct_sid; /* the peer's id for its account: plain forwards' */
	struct bacct *acct;
	char *pattern;
	char *queue; /* NULL: plain */
	bool oom;
	UT_hash_handle hh; /* route->rsubs, by id */
};

/* One interest message waiting to go over a route. */
struct route_op {
	struct route_op *next;
	uint32_t id;
	bool add; /* RouteSub (then account, pattern, queue) or RouteUnsub */
	const char *account; /* an account's name: accounts outlive ops */
	uint32_t account_sid; /* our id for it (RouteSub account_sid) */
	char *pattern;
	char *queue;
};

/* One (account, pattern, queue) of our clients' interest, with its
 * users. */
struct bk_interest {
	char *key; /* account NUL pattern NUL queue NUL */
	size_t key_len;
	struct bacct *acct;
	const char *pattern; /* in @key */
	const char *queue; /* in @key; NULL: plain */
	uint32_t id; /* ours, > 0: the sid a peer forwards to it with */
	uint32_t count; /* subscriptions with this pair */
	bool oom;
	UT_hash_handle hh; /* b->interest, by key */
	UT_hash_handle hh_id; /* b->interest_by_id, by id */
};

enum route_state {
	RT_WAITING, /* closed: retried at next_try if outbound and member */
	RT_CONNECTING, /* our attempt is under way */
	RT_OPEN,
};

struct vbd_route {
	uint32_t kind; /* KIND_ROUTE: first (an outbound arg, see below) */
	struct vbd_broker *b;
	char peer_id[64];
	char url[VBD_URL_MAX]; /* its cluster.listen, from its member data */
	bool member; /* in the latest member list */
	bool outbound; /* our id is the smaller: we open it */
	enum route_state state;
	struct vbi_conn *conn; /* connecting (outbound) */
	struct bconn *bc; /* open */
	uint64_t next_try; /* ms, coarse clock */
	uint32_t backoff_ms;
	struct rsub *rsubs; /* the peer's interest, by id */
	uint64_t nrsubs;
	struct route_op *ops, *ops_tail; /* interest to send, in order */
	uint64_t nops;
	uint64_t fwd_gen; /* b->fwd_gen of the last plain forward */
	uint64_t last_ping;
	uint64_t ping_id;
	uint64_t connects, failures;
	struct vbd_rloss *loss; /* deliveries lost on the way, to report */
	char last_error[256]; /* as vbi_close_info.reason */
	bool oom;
	UT_hash_handle hh; /* b->routes, by peer_id */
};

static const struct vbi_conn_cbs route_cbs;

/* ---- credentials --------------------------------------------------------- */

/* Our own RouteAuth, packed once into b->route_cred. */
static int pack_cred(struct vbd_broker *b)
{
	Verbus__Credentials cr = VERBUS__CREDENTIALS__INIT;
	Verbus__RouteAuth ra = VERBUS__ROUTE_AUTH__INIT;

	ra.cluster = b->cfg.cluster_name;
	ra.secret = b->cfg.cluster_secret;
	ra.broker_id = b->cfg.cluster_id;
	cr.route = &ra;
	if (verbus__credentials__get_packed_size(&cr) > sizeof(b->route_cred))
		return VB_EINVAL;
	b->route_cred_len = verbus__credentials__pack(&cr, b->route_cred);
	return VB_OK;
}

static Verbus__Credentials *unpack_cred(const void *cred, size_t len)
{
	if (!cred || len == 0 || len > VBI_CRED_MAX)
		return NULL;
	return verbus__credentials__unpack(NULL, len, cred);
}

bool bk_cred_is_route(const void *cred, size_t len)
{
	Verbus__Credentials *c = unpack_cred(cred, len);
	bool route = c && c->route;

	if (c)
		verbus__credentials__free_unpacked(c, NULL);
	return route;
}

/* Equal secrets, in time that does not depend on where they differ. */
static bool secret_eq(const char *a, const char *b)
{
	char x[ROUTE_SECRET_MAX + 1] = { 0 }, y[ROUTE_SECRET_MAX + 1] = { 0 };
	size_t la = strnlen(a, ROUTE_SECRET_MAX + 1);
	size_t lb = strnlen(b, ROUTE_SECRET_MAX + 1);

	if (la > ROUTE_SECRET_MAX || lb > ROUTE_SECRET_MAX)
		return false;
	memcpy(x, a, la);
	memcpy(y, b, lb);
	return (sodium_memcmp(x, y, sizeof(x)) == 0) & (la == lb);
}

/*
 * The route listener's authorize: a RouteAuth of our cluster, with our
 * secret and a valid id that is not ours.  Everything else is refused
 * with a log line saying which.
 */
static int route_authorize(struct vbi_conn *c, const void *cred, size_t len,
			   void *arg)
{
	struct vbd_broker *b = arg;
	Verbus__Credentials *cr;
	const Verbus__RouteAuth *ra;
	const char *why = NULL;
	char peer[64], what[VBI_LOG_ESCAPE_MAX];
	int rc = VB_EACCES;

	if (!b || b->kind != KIND_BROKER)
		return VB_EACCES;
	vbi_conn_peer_name(c, peer, sizeof(peer));
	what[0] = '\0';
	cr = unpack_cred(cred, len);
	ra = cr ? cr->route : NULL;
	if (!ra) {
		why = "a client Hello on the route port (clients connect to "
		      "listen)";
	} else if (strcmp(ra->cluster, b->cfg.cluster_name) != 0) {
		vbi_log_escape(what, sizeof(what), ra->cluster,
			       strnlen(ra->cluster, ROUTE_CLUSTER_MAX));
		why = "it belongs to another cluster";
	} else if (!secret_eq(ra->secret, b->cfg.cluster_secret)) {
		why = "wrong cluster secret";
	} else if (!vbi_name_valid(ra->broker_id,
				   strnlen(ra->broker_id, VBI_ID_MAX + 1))) {
		why = "invalid broker id";
	} else if (strcmp(ra->broker_id, b->cfg.cluster_id) == 0) {
		why = "it has our own broker id (two brokers with one id?)";
	} else if (strcmp(b->cfg.cluster_id, ra->broker_id) < 0) {
		why = "our id is the smaller, so we open the route to it";
	} else {
		rc = VB_OK;
	}
	if (rc) {
		b->cst.routes_refused++;
		b->st.conns_rejected++;
		vbi_warn("refusing a route from %s: %s%s%s%s", peer, why,
			 what[0] ? " ('" : "", what,
			 what[0] ? "', not ours)" : "");
	}
	if (cr)
		verbus__credentials__free_unpacked(cr, NULL);
	return rc;
}

/* ---- our interest ------------------------------------------------------ */

static void op_free(struct route_op *op)
{
	free(op->pattern);
	free(op->queue);
	free(op);
}

static void ops_clear(struct vbd_route *rt)
{
	struct route_op *op, *next;

	for (op = rt->ops; op; op = next) {
		next = op->next;
		op_free(op);
	}
	rt->ops = rt->ops_tail = NULL;
	rt->nops = 0;
}

static void loss_flush(struct vbd_route *rt);

/* Send what waits while the route has control credit: our interest, then
 * the losses we owe the peer. */
static void ops_flush(struct vbd_route *rt)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	struct route_op *op;

	if (rt->state != RT_OPEN || rt->bc->closing)
		return;
	while ((op = rt->ops)) {
		Verbus__RouteSub rs = VERBUS__ROUTE_SUB__INIT;
		Verbus__RouteUnsub ru = VERBUS__ROUTE_UNSUB__INIT;
		int rc;

		if (op->add) {
			rs.id = op->id;
			rs.subject = op->pattern;
			rs.queue = op->queue ? op->queue : (char *)"";
			/* "": the global account, as an older broker has
			 * it. */
			rs.account = strcmp(op->account, VBD_GLOBAL_ACCOUNT) ?
					     (char *)op->account :
					     (char *)"";
			rs.account_sid = op->account_sid;
			m.body_case = VERBUS__CONTROL__BODY_ROUTE_SUB;
			m.route_sub = &rs;
		} else {
			ru.id = op->id;
			m.body_case = VERBUS__CONTROL__BODY_ROUTE_UNSUB;
			m.route_unsub = &ru;
		}
		rc = vbi_conn_send_ctrl(rt->bc->c, &m);
		if (rc == VB_EAGAIN)
			return; /* the writable callback goes on */
		if (rc) {
			vbi_warn("route to %s: cannot send interest: %s",
				 rt->peer_id, vb_strerror(rc));
			return;
		}
		rt->ops = op->next;
		if (!rt->ops)
			rt->ops_tail = NULL;
		rt->nops--;
		op_free(op);
	}
	loss_flush(rt);
}

/* Report what was lost on the way to the peer (rloss.h), once our interest
 * has gone out, while the route has control credit. */
static void loss_flush(struct vbd_route *rt)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__Dropped d = VERBUS__DROPPED__INIT;
	struct vbd_rloss_entry e;

	if (rt->state != RT_OPEN || rt->bc->closing || rt->ops || !rt->loss)
		return;
	while (vbd_rloss_peek(rt->loss, &e)) {
		int rc;

		d.sid = e.sid;
		d.count = e.count;
		d.subject = (char *)e.subject;
		m.body_case = VERBUS__CONTROL__BODY_DROPPED;
		m.dropped = &d;
		rc = vbi_conn_send_ctrl(rt->bc->c, &m);
		if (rc == VB_EAGAIN)
			return; /* the writable callback goes on */
		if (rc) {
			vbi_warn("route to %s: cannot report losses: %s",
				 rt->peer_id, vb_strerror(rc));
			return;
		}
		rt->b->cst.route_drops_reported += e.count;
		vbd_rloss_pop(rt->loss);
	}
}

void bk_route_lost(struct bconn *bc, const struct vbi_frame_view *v,
		   uint32_t sid)
{
	struct vbd_route *rt = bc->route;
	const char *reply;
	size_t rlen, slen;

	bc->b->cst.route_drops++;
	if (!rt) {
		bc->b->cst.route_drops_unreported++;
		return; /* closing, detached from its route already */
	}
	if (!rt->loss)
		rt->loss = vbd_rloss_create();
	if (!rt->loss) {
		bc->b->cst.route_drops_unreported++;
		return;
	}
	slen = vbi_topic_split(v->topic, v->topic_len, &reply, &rlen);
	vbd_rloss_add(rt->loss, v->topic, slen, sid, 1);
}

/* Queue one interest message for @rt; false if it cannot (then the route
 * is closed, to be resynchronised when it reopens). */
static bool op_push(struct vbd_route *rt, const struct bk_interest *in,
		    bool add)
{
	struct route_op *op;

	/* Room for the whole set (a route's opening sync) and a backlog. */
	if (rt->nops >= ROUTE_OPS_MAX + rt->b->cst.interest_local)
		goto out_close;
	op = calloc(1, sizeof(*op));
	if (!op)
		goto out_close;
	op->id = in->id;
	op->add = add;
	op->account = in->acct->name;
	op->account_sid = in->acct->rid ? VBI_ACCOUNT_SID | in->acct->rid : 0;
	if (add) {
		op->pattern = strdup(in->pattern);
		op->queue = in->queue ? strdup(in->queue) : NULL;
		if (!op->pattern || (in->queue && !op->queue)) {
			op_free(op);
			goto out_close;
		}
	}
	if (rt->ops_tail)
		rt->ops_tail->next = op;
	else
		rt->ops = op;
	rt->ops_tail = op;
	rt->nops++;
	return true;
out_close:
	vbi_warn("route to %s: %" PRIu64 " interest messages wait or memory "
		 "ran out; closing it to resynchronise",
		 rt->peer_id, rt->nops);
	snprintf(rt->last_error, sizeof(rt->last_error),
		 "interest backlog: closed to resynchronise");
	ops_clear(rt);
	rt->bc->closing = true;
	vbi_conn_close(rt->bc->c);
	return false;
}

/* Tell every open route of @in's first user (@add) or its last's end. */
static void interest_announce(struct vbd_broker *b, struct bk_interest *in,
			      bool add)
{
	struct vbd_route *rt, *tmp;

	HASH_ITER(hh, b->routes, rt, tmp)
	{
		if (rt->state != RT_OPEN || rt->bc->closing)
			continue;
		if (op_push(rt, in, add))
			ops_flush(rt);
	}
}

static char *interest_key(const struct bsub *s, size_t *len)
{
	const char *a = s->bc->acct->name;
	size_t al = strlen(a), pl = strlen(s->subject),
	       ql = s->queue ? strlen(s->queue) : 0;
	char *k = malloc(al + pl + ql + 3);

	if (!k)
		return NULL;
	memcpy(k, a, al + 1);
	memcpy(k + al + 1, s->subject, pl + 1);
	memcpy(k + al + pl + 2, s->queue ? s->queue : "", ql + 1);
	*len = al + pl + ql + 3;
	return k;
}

static struct bk_interest *interest_find(struct vbd_broker *b,
					 const struct bsub *s)
{
	struct bk_interest *in = NULL;
	size_t len;
	char *k = interest_key(s, &len);

	if (!k)
		return NULL;
	HASH_FIND(hh, b->interest, k, len, in);
	free(k);
	return in;
}

void bk_interest_add(struct vbd_broker *b, const struct bsub *s)
{
	struct bk_interest *in;

	if (!b->cluster)
		return;
	in = interest_find(b, s);
	if (in) {
		in->count++;
		return;
	}
	in = calloc(1, sizeof(*in));
	if (!in)
		goto out_nomem;
	in->key = interest_key(s, &in->key_len);
	if (!in->key)
		goto out_free;
	in->acct = s->bc->acct;
	in->pattern = in->key + strlen(in->key) + 1;
	in->queue = s->queue ? in->pattern + strlen(in->pattern) + 1 : NULL;
	in->count = 1;
	do {
		/* Below VBI_ACCOUNT_SID: a sid with that bit names an
		 * account. */
		in->id = ++b->next_interest_id & (VBI_ACCOUNT_SID - 1);
	} while (in->id == 0);
	HASH_ADD_KEYPTR(hh, b->interest, in->key, in->key_len, in);
	if (in->oom)
		goto out_free;
	HASH_ADD(hh_id, b->interest_by_id, id, sizeof(in->id), in);
	if (in->oom) {
		HASH_DELETE(hh, b->interest, in);
		goto out_free;
	}
	b->cst.interest_local++;
	interest_announce(b, in, true);
	return;
out_free:
	free(in->key);
	free(in);
out_nomem:
	/* The subscription works locally; the peers will not know of it. */
	vbi_err("out of memory: a subscription is not announced to the "
		"cluster's other brokers");
}

void bk_interest_del(struct vbd_broker *b, const struct bsub *s)
{
	struct bk_interest *in;

	if (!b->cluster)
		return;
	in = interest_find(b, s);
	if (!in || --in->count)
		return;
	interest_announce(b, in, false);
	HASH_DELETE(hh, b->interest, in);
	HASH_DELETE(hh_id, b->interest_by_id, in);
	b->cst.interest_local--;
	free(in->key);
	free(in);
}

bool bk_interest_of(struct vbd_broker *b, uint32_t id, struct bacct **a,
		    const char **q, size_t *qlen)
{
	struct bk_interest *in = NULL;

	if (id == 0 || (id & VBI_ACCOUNT_SID)) { /* plain, of an account */
		*a = bk_account_by_sid(b, id);
		*q = NULL;
		*qlen = 0;
		return *a != NULL;
	}
	HASH_FIND(hh_id, b->interest_by_id, &id, sizeof(id), in);
	if (!in)
		return false;
	*a = in->acct;
	*q = in->queue;
	*qlen = in->queue ? strlen(in->queue) : 0;
	return true;
}

/* ---- the peers' interest ------------------------------------------------- */

static void rsub_free(struct vbd_broker *b, struct vbd_route *rt,
		      struct rsub *r)
{
	vbi_sublist_remove(r->acct->remote, &r->s);
	bk_direct_interest(b, r->acct, r->pattern); /* an answer's others */
	HASH_DEL(rt->rsubs, r);
	rt->nrsubs--;
	b->cst.interest_remote--;
	free(r->pattern);
	free(r->queue);
	free(r);
}

static void rsubs_clear(struct vbd_broker *b, struct vbd_route *rt)
{
	struct rsub *r, *tmp;

	HASH_ITER(hh, rt->rsubs, r, tmp)
	rsub_free(b, rt, r);
}

static void on_route_sub(struct bconn *bc, const Verbus__RouteSub *m)
{
	struct vbd_route *rt = bc->route;
	struct vbd_broker *b = bc->b;
	size_t plen = strlen(m->subject), qlen = strlen(m->queue);
	struct rsub *r = NULL;
	struct bacct *a;

	if (vbi_pattern_check(m->subject, plen) != VB_OK ||
	    (qlen && vbi_queue_check(m->queue, qlen) != VB_OK)) {
		bk_route_fail(bc, "invalid subject pattern or queue group in "
				  "its interest");
		return;
	}
	if (bk_account_route(b, m->account, &a) != VB_OK ||
	    (a == b->gacct) != (m->account_sid == 0)) {
		bk_route_fail(bc, "an invalid account name or account id in "
				  "its interest, or no memory for the account");
		return;
	}
	HASH_FIND(hh, rt->rsubs, &m->id, sizeof(m->id), r);
	if (r) {
		bk_route_fail(bc, "interest id declared twice");
		return;
	}
	if (rt->nrsubs >= ROUTE_RSUBS_MAX) {
		bk_route_fail(bc, "more interest entries than a route may "
				  "declare");
		return;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		goto out_nomem;
	r->rc = bc;
	r->id = m->id;
	r->acct_sid = m->account_sid;
	r->acct = a;
	r->pattern = strdup(m->subject);
	r->queue = qlen ? strdup(m->queue) : NULL;
	if (!r->pattern || (qlen && !r->queue))
		goto out_free;
	vbi_sub_init(&r->s, r->pattern, plen, r->queue, qlen, r);
	if (vbi_sublist_insert(a->remote, &r->s))
		goto out_free;
	HASH_ADD(hh, rt->rsubs, id, sizeof(r->id), r);
	if (r->oom) {
		vbi_sublist_remove(a->remote, &r->s);
		goto out_free;
	}
	rt->nrsubs++;
	b->cst.interest_remote++;
	bk_direct_interest(b, a, r->pattern); /* an answer's others */
	return;
out_free:
	free(r->pattern);
	free(r->queue);
	free(r);
out_nomem:
	/* Missing interest would lose messages silently: resynchronise. */
	bk_route_fail(bc, "out of memory for its interest");
}

static void on_route_unsub(struct bconn *bc, const Verbus__RouteUnsub *m)
{
	struct rsub *r = NULL;

	HASH_FIND(hh, bc->route->rsubs, &m->id, sizeof(m->id), r);
	if (!r) {
		bk_route_fail(bc, "it withdrew interest it never declared");
		return;
	}
	rsub_free(bc->b, bc->route, r);
}

/* ---- forwarding ---------------------------------------------------------- */

/* Did a local subscriber of queue group @q take the message? */
static bool local_has_queue(const struct vbi_match *local, const char *q,
			    size_t qlen)
{
	for (size_t i = 0; i < local->n; i++) {
		const struct vbi_sub *s = local->subs[i];

		if (s->queue && s->queue_len == qlen &&
		    memcmp(s->queue, q, qlen) == 0)
			return true;
	}
	return false;
}

size_t bk_routes_forward(struct vbd_broker *b, struct bconn *pub,
			 struct bacct *a, const struct vbi_frame_view *v,
			 size_t slen, const struct vbi_match *local)
{
	size_t i, n = 0;

	if (!a->remote || b->cst.interest_remote == 0)
		return 0;
	if (vbi_sublist_match_valid(a->remote, v->topic, slen, &b->rmatch))
		return 0;
	b->fwd_gen++;
	for (i = 0; i < b->rmatch.n; i++) {
		struct rsub *r = b->rmatch.subs[i]->owner;
		struct vbd_route *rt = r->rc->route;
		uint32_t sid = 0;

		if (r->rc->closing)
			continue;
		if (!r->queue) {
			if (rt->fwd_gen == b->fwd_gen)
				continue; /* one plain forward per route */
			rt->fwd_gen = b->fwd_gen;
			/* The peer's id for the account: stable while the
			 * peer lives, so no plain forward is lost to an entry
			 * withdrawn meanwhile; the global one's is 0, which
			 * an older peer understands. */
			sid = r->acct_sid;
		} else {
			if (local_has_queue(local, r->s.queue, r->s.queue_len))
				continue;
			sid = r->id;
		}
		if (bk_deliver_to(r->rc, pub, v, sid)) {
			n++;
			b->cst.route_msgs_out++;
			b->cst.route_bytes_out += v->topic_len + v->payload_len;
		}
	}
	return n;
}

/* ---- route connections ------------------------------------------------- */

static struct vbd_route *route_find(struct vbd_broker *b, const char *id)
{
	struct vbd_route *rt = NULL;

	HASH_FIND_STR(b->routes, id, rt);
	return rt;
}

static struct vbd_route *route_get(struct vbd_broker *b, const char *id)
{
	struct vbd_route *rt = route_find(b, id);

	if (rt)
		return rt;
	rt = calloc(1, sizeof(*rt));
	if (!rt)
		return NULL;
	rt->kind = KIND_ROUTE;
	rt->b = b;
	snprintf(rt->peer_id, sizeof(rt->peer_id), "%s", id);
	/* The smaller id opens the route: never two for one pair. */
	rt->outbound = strcmp(b->cfg.cluster_id, id) < 0;
	rt->state = RT_WAITING;
	rt->backoff_ms = ROUTE_BACKOFF_MIN_MS;
	HASH_ADD_STR(b->routes, peer_id, rt);
	if (rt->oom) {
		free(rt);
		return NULL;
	}
	return rt;
}

static void route_free(struct vbd_broker *b, struct vbd_route *rt)
{
	if (rt->loss && vbd_rloss_owed(rt->loss))
		vbi_warn("route to %s: %" PRIu64 " deliveries lost on the way "
			 "to it were never reported: it left the cluster",
			 rt->peer_id, vbd_rloss_owed(rt->loss));
	HASH_DEL(b->routes, rt);
	ops_clear(rt);
	vbd_rloss_destroy(rt->loss);
	free(rt);
}

/* Forget @rt if nothing keeps it: not a member, not open, not trying. */
static void route_gc(struct vbd_broker *b, struct vbd_route *rt)
{
	if (!rt->member && rt->state == RT_WAITING)
		route_free(b, rt);
}

/* The route opened (either side): it gets our whole interest. */
static void route_opened(struct vbd_route *rt, struct bconn *bc)
{
	struct vbd_broker *b = rt->b;
	struct bk_interest *in, *tmp;

	bc->route = rt;
	rt->bc = bc;
	rt->conn = NULL;
	rt->state = RT_OPEN;
	rt->connects++;
	rt->backoff_ms = ROUTE_BACKOFF_MIN_MS;
	rt->last_ping = vbi_clock_coarse_ms();
	rt->last_error[0] = '\0';
	b->cst.routes_opened++;
	vbi_info("route to %s open (%s, %s)", rt->peer_id, bc->peer,
		 rt->outbound ? "we opened it" : "it opened it");
	ops_clear(rt);
	HASH_ITER(hh, b->interest, in, tmp)
	if (!op_push(rt, in, true))
		return;
	ops_flush(rt);
}

/* The route listener's open: a member (or one ZooKeeper has not shown us
 * yet) opened its route to us. */
static void route_in_open(struct vbi_conn *c, struct vbd_broker *b)
{
	Verbus__Credentials *cr;
	struct vbd_route *rt;
	struct bconn *bc;
	size_t len;
	const void *cred = vbi_conn_credentials(c, &len);
	char id[64];

	bk_handshake_done(b, c);
	cr = unpack_cred(cred, len);
	if (!cr || !cr->route) {
		if (cr)
			verbus__credentials__free_unpacked(cr, NULL);
		bk_refuse(b, c, "route credentials gone"); /* not reached */
		return;
	}
	snprintf(id, sizeof(id), "%s", cr->route->broker_id);
	verbus__credentials__free_unpacked(cr, NULL);
	if (b->shutting_down) {
		bk_refuse(b, c, "shutting down");
		return;
	}
	rt = route_get(b, id);
	if (!rt) {
		bk_refuse(b, c, "out of memory");
		return;
	}
	if (rt->outbound) { /* route_authorize() refused these */
		bk_refuse(b, c, "route from the wrong side");
		route_gc(b, rt);
		return;
	}
	if (rt->state == RT_OPEN) {
		/* It opened a new one: the old one is dead and we have not
		 * noticed yet (a host gone, a peer restarted). */
		vbi_info("route from %s replaces its previous route (cid "
			 "%" PRIu64 ")",
			 id, rt->bc->cid);
		rt->bc->route = NULL;
		rsubs_clear(b, rt);
		rt->bc->closing = true;
		vbi_conn_close(rt->bc->c);
		rt->bc = NULL;
		rt->state = RT_WAITING;
	}
	bc = bk_conn_add(b, c, BK_ROUTE, NULL);
	if (!bc) {
		route_gc(b, rt);
		return;
	}
	route_opened(rt, bc);
}

static void route_open(struct vbi_conn *c, void *arg)
{
	struct vbd_route *rt = arg;
	struct vbd_broker *b;
	struct bconn *bc;

	if (!arg)
		return;
	if (rt->kind != KIND_ROUTE) {
		route_in_open(c, arg); /* the listener's arg: the broker */
		return;
	}
	b = rt->b;
	if (rt->conn != c)
		return; /* an attempt we gave up on */
	bc = bk_conn_add(b, c, BK_ROUTE, NULL);
	if (!bc) {
		rt->conn = NULL;
		rt->state = RT_WAITING;
		rt->next_try = vbi_clock_coarse_ms() + rt->backoff_ms;
		return;
	}
	route_opened(rt, bc);
}

void bk_route_closed(struct bconn *bc, const struct vbi_close_info *why)
{
	struct vbd_route *rt = bc->route;
	struct vbd_broker *b = bc->b;

	if (!rt)
		return; /* replaced by a newer route (route_in_open) */
	rsubs_clear(b, rt);
	ops_clear(rt);
	rt->bc = NULL;
	bc->route = NULL;
	rt->state = RT_WAITING;
	if (!rt->last_error[0] || why->err != VB_ECLOSED)
		snprintf(rt->last_error, sizeof(rt->last_error), "%s",
			 why->reason);
	rt->next_try = vbi_clock_coarse_ms() + rt->backoff_ms;
	route_gc(b, rt);
}

/* An outbound attempt closed before it opened. */
static void route_attempt_failed(struct vbd_route *rt, struct vbi_conn *c,
				 const struct vbi_close_info *why)
{
	struct vbd_broker *b = rt->b;

	if (rt->conn != c)
		return;
	rt->conn = NULL;
	rt->state = RT_WAITING;
	rt->failures++;
	b->cst.route_connect_failures++;
	snprintf(rt->last_error, sizeof(rt->last_error), "%s", why->reason);
	/* Once per streak: a member that stays away logs little. */
	if (rt->backoff_ms == ROUTE_BACKOFF_MIN_MS)
		vbi_warn("route to %s (%s): cannot connect: %s; retrying with "
			 "backoff while it is a member",
			 rt->peer_id, rt->url, why->reason);
	rt->next_try = vbi_clock_coarse_ms() + rt->backoff_ms;
	rt->backoff_ms = rt->backoff_ms * 2 > ROUTE_BACKOFF_MAX_MS ?
				 ROUTE_BACKOFF_MAX_MS :
				 rt->backoff_ms * 2;
	route_gc(b, rt);
}

static void route_closed_cb(struct vbi_conn *c,
			    const struct vbi_close_info *why, void *arg)
{
	struct vbd_broker *b = arg;

	if (bk_conn_of(c, arg))
		bk_conn_closed(arg, why);
	else if (arg && ((struct vbd_route *)arg)->kind == KIND_ROUTE)
		route_attempt_failed(arg, c, why);
	else if (b && b->kind == KIND_BROKER)
		bk_handshake_done(b, c); /* an inbound one never opened */
}

static void route_control(struct vbi_conn *c, const Verbus__Control *m,
			  void *arg)
{
	struct bconn *bc = bk_conn_of(c, arg);

	if (!bc || !bc->route || bc->closing)
		return;
	switch (m->body_case) {
	case VERBUS__CONTROL__BODY_ROUTE_SUB:
		on_route_sub(bc, m->route_sub);
		break;
	case VERBUS__CONTROL__BODY_ROUTE_UNSUB:
		on_route_unsub(bc, m->route_unsub);
		break;
	case VERBUS__CONTROL__BODY_PING:
		bk_client_control(c, m, arg); /* answered with a Pong */
		break;
	case VERBUS__CONTROL__BODY_DROPPED:
		bk_route_dropped(bc, m->dropped);
		break;
	case VERBUS__CONTROL__BODY_SUBSCRIBE:
	case VERBUS__CONTROL__BODY_UNSUBSCRIBE:
		bk_route_fail(bc, "a client's Subscribe or Unsubscribe on a "
				  "route");
		break;
	default:
		break; /* Pong, Notice, Info: nothing to do */
	}
}

static void route_writable(struct vbi_conn *c, void *arg)
{
	struct bconn *bc = bk_conn_of(c, arg);

	if (!bc)
		return;
	bk_writable(c, arg);
	if (bc->route)
		ops_flush(bc->route);
}

static const struct vbi_conn_cbs route_cbs = {
	.accept = bk_accept,
	.authorize = route_authorize,
	.open = route_open,
	.message = bk_cb_message,
	.writable = route_writable,
	.control = route_control,
	.closed = route_closed_cb,
};

void bk_route_fail(struct bconn *bc, const char *why)
{
	struct vbd_route *rt = bc->route;

	if (bc->closing)
		return;
	bc->b->cst.route_errors++;
	vbi_warn("route cid %" PRIu64 " to %s (%s): dropped: %s", bc->cid,
		 rt ? rt->peer_id : "?", bc->peer, why);
	if (rt)
		snprintf(rt->last_error, sizeof(rt->last_error), "%s", why);
	bc->closing = true;
	bk_pend_drop_all(bc, true);
	bk_resume_publishers(bc->b);
	vbi_conn_close(bc->c);
}

/* Our connection options for a route, either side. */
static void route_opts(const struct vbd_broker *b, struct vbi_conn_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->name = b->cfg.cluster_id;
	o->ring_size = b->cfg.ring_size;
	o->max_msg = b->cfg.max_msg;
	/* Routes carry the cluster's large messages, whatever their size:
	 * the broker each came from held it to its own limit. */
	o->max_payload = VBI_CHUNK_TOTAL_MAX;
	o->recv_depth = b->cfg.recv_depth;
	o->busy_poll = b->cfg.busy_poll;
	o->max_peer_ring = MAX_CLIENT_RING;
	o->isolate = 1;
	o->handshake_timeout_ms = b->cfg.handshake_timeout_ms;
	o->timeout_ms = ROUTE_CONNECT_MS;
	/* tls routes: the members' one PKI.  The listener presents the
	 * certificate (and with tls.ca asks for one); the opener presents
	 * it too and verifies the peer by tls.ca. */
	o->tls_cert = b->cfg.tls_cert[0] ? b->cfg.tls_cert : NULL;
	o->tls_key = b->cfg.tls_key[0] ? b->cfg.tls_key : NULL;
	o->tls_ca = b->cfg.tls_ca[0] ? b->cfg.tls_ca : NULL;
}

static void route_connect(struct vbd_broker *b, struct vbd_route *rt)
{
	struct vbi_conn_opts o;
	struct vb_url u, self;
	char why[160];
	int rc;

	rt->next_try = vbi_clock_coarse_ms() + rt->backoff_ms;
	if (vbi_url_parse(rt->url, &u, why, sizeof(why)) != VB_OK) {
		snprintf(rt->last_error, sizeof(rt->last_error),
			 "bad route URL: %.120s", why);
		return;
	}
	if (strcmp(u.scheme, vbi_tp_scheme(b->route_tp)) != 0) {
		snprintf(rt->last_error, sizeof(rt->last_error),
			 "its routes are %s, ours %s", u.scheme,
			 vbi_tp_scheme(b->route_tp));
		return;
	}
	route_opts(b, &o);
	o.credentials = b->route_cred;
	o.credentials_len = b->route_cred_len;
	/* From our route address: the device (and host) that is ours. */
	if (vbi_url_parse(b->cfg.cluster_listen, &self, why, sizeof(why)) ==
	    VB_OK)
		o.source = self.host;
	rc = vbi_tp_connect(b->route_tp, u.host, u.port, &o, &route_cbs, rt,
			    &rt->conn);
	if (rc) {
		rt->conn = NULL;
		rt->failures++;
		b->cst.route_connect_failures++;
		snprintf(rt->last_error, sizeof(rt->last_error),
			 "cannot connect: %s", vb_strerror(rc));
		rt->backoff_ms = rt->backoff_ms * 2 > ROUTE_BACKOFF_MAX_MS ?
					 ROUTE_BACKOFF_MAX_MS :
					 rt->backoff_ms * 2;
		return;
	}
	rt->state = RT_CONNECTING;
}

void bk_route_want(struct vbd_broker *b, const char *peer_id, const char *url)
{
	struct vbd_route *rt;

	if (strcmp(peer_id, b->cfg.cluster_id) == 0)
		return;
	rt = route_get(b, peer_id);
	if (!rt) {
		vbi_err("out of memory: no route to member %s", peer_id);
		return;
	}
	rt->member = true;
	if (strcmp(rt->url, url) != 0) {
		snprintf(rt->url, sizeof(rt->url), "%s", url);
		rt->backoff_ms = ROUTE_BACKOFF_MIN_MS;
		rt->next_try = 0; /* try the new address now */
	}
}

void bk_route_unwant(struct vbd_broker *b, const char *peer_id)
{
	struct vbd_route *rt = route_find(b, peer_id);

	if (!rt)
		return;
	rt->member = false;
	if (rt->state == RT_CONNECTING) {
		/* Gone from ZooKeeper while we were still trying. */
		struct vbi_conn *c = rt->conn;

		rt->conn = NULL;
		rt->state = RT_WAITING;
		vbi_conn_set_arg(c, NULL);
		vbi_conn_close(c);
	}
	route_gc(b, rt);
}

void bk_routes_tick(struct vbd_broker *b, uint64_t now)
{
	struct vbd_route *rt, *tmp;

	HASH_ITER(hh, b->routes, rt, tmp)
	{
		if (rt->state == RT_WAITING && rt->outbound && rt->member &&
		    rt->url[0] && !b->shutting_down && now >= rt->next_try) {
			route_connect(b, rt);
			continue;
		}
		if (rt->state != RT_OPEN || rt->bc->closing)
			continue;
		ops_flush(rt);
		if (now - rt->last_ping >= ROUTE_PING_MS) {
			/* Keeps the transport noticing a peer that vanished
			 * without a word, as a client's heartbeat does. */
			Verbus__Control m = VERBUS__CONTROL__INIT;
			Verbus__Ping p = VERBUS__PING__INIT;

			p.id = ++rt->ping_id;
			m.body_case = VERBUS__CONTROL__BODY_PING;
			m.ping = &p;
			if (vbi_conn_send_ctrl(rt->bc->c, &m) == VB_OK)
				rt->last_ping = now;
		}
	}
}

void bk_routes_each(struct vbd_broker *b,
		    void (*fn)(void *ctx, const struct vbd_stats_route *r),
		    void *ctx)
{
	static const char *const states[] = {
		[RT_WAITING] = "waiting",
		[RT_CONNECTING] = "connecting",
		[RT_OPEN] = "open",
	};
	struct vbd_route *rt, *tmp;
	struct vbd_stats_route r;

	HASH_ITER(hh, b->routes, rt, tmp)
	{
		memset(&r, 0, sizeof(r));
		snprintf(r.peer_id, sizeof(r.peer_id), "%s", rt->peer_id);
		snprintf(r.url, sizeof(r.url), "%s", rt->url);
		r.state = states[rt->state];
		r.outbound = rt->outbound;
		r.member = rt->member;
		if (rt->state == RT_OPEN) {
			r.cid = rt->bc->cid;
			snprintf(r.peer, sizeof(r.peer), "%s", rt->bc->peer);
			r.start_time = rt->bc->start_time;
			r.msgs_in = rt->bc->msgs_in;
			r.bytes_in = rt->bc->bytes_in;
			r.msgs_out = rt->bc->msgs_out;
			r.bytes_out = rt->bc->bytes_out;
		}
		r.interest_in = rt->nrsubs;
		r.interest_queued = rt->nops;
		r.connects = rt->connects;
		r.failures = rt->failures;
		snprintf(r.last_error, sizeof(r.last_error), "%s",
			 rt->last_error);
		fn(ctx, &r);
	}
}

/* ---- lifecycle --------------------------------------------------------- */

/* The context whose scheme is @scheme, or NULL. */
static struct vbi_tp *tp_of(struct vbd_broker *b, const char *scheme)
{
	for (unsigned i = 0; i < b->ntp; i++)
		if (strcmp(vbi_tp_scheme(b->tp[i]), scheme) == 0)
			return b->tp[i];
	return NULL;
}

int bk_routes_init(struct vbd_broker *b)
{
	struct vbi_conn_opts o;
	struct vb_url u;
	char why[160];
	int rc;

	if (!b->cfg.cluster_id[0])
		snprintf(b->cfg.cluster_id, sizeof(b->cfg.cluster_id), "%s",
			 b->cfg.server_name);
	rc = pack_cred(b);
	if (rc) {
		vbi_err("cluster: the route credentials do not fit");
		return rc;
	}
	vbi_match_init(&b->rmatch);
	rc = vbi_url_parse(b->cfg.cluster_listen, &u, why, sizeof(why));
	if (rc) {
		vbi_err("cluster.listen: %s", why);
		return rc;
	}
	b->route_tp = tp_of(b, u.scheme);
	if (!b->route_tp) {
		vbi_err("cluster.listen: %s routes need the broker to listen "
			"with %s too (listen or listen_tcp)",
			u.scheme, u.scheme);
		return VB_EINVAL;
	}
	route_opts(b, &o);
	rc = vbi_tp_listen(b->route_tp, u.host, u.port, &o, &route_cbs, b,
			   &b->route_l);
	if (rc)
		vbi_err("cannot listen for routes on %s: %s",
			b->cfg.cluster_listen, vb_strerror(rc));
	return rc;
}

void bk_routes_fini(struct vbd_broker *b)
{
	struct vbd_route *rt, *tmp;
	struct bk_interest *in, *itmp;

	vbi_listener_close(b->route_l);
	b->route_l = NULL;
	/* Connections are gone (vbi_tp_destroy closed them, and each
	 * route's rsubs went with its bconn); attempts too. */
	HASH_ITER(hh, b->routes, rt, tmp)
	{
		rsubs_clear(b, rt);
		route_free(b, rt);
	}
	HASH_ITER(hh, b->interest, in, itmp)
	{
		HASH_DELETE(hh, b->interest, in);
		HASH_DELETE(hh_id, b->interest_by_id, in);
		free(in->key);
		free(in);
	}
	vbi_match_fini(&b->rmatch);
}
