/*
 * bstats.c - the monitor's view of the broker (daemon/stats.h): a snapshot
 * copied out on every request.
 */
#include "daemon/broker_int.h"

#include "core/clock.h"

#include <verbus/verbus.h>

#include <stdio.h>
#include <string.h>

/* ---- the monitor's view ----------------------------------------------- */

static void fill_conn(const struct bconn *bc, struct vbd_stats_conn *o)
{
	struct vbi_conn_stats cs;

	memset(o, 0, sizeof(*o));
	vbi_conn_stats(bc->c, &cs);
	o->cid = bc->cid;
	snprintf(o->name, sizeof(o->name), "%s", bc->name);
	snprintf(o->peer, sizeof(o->peer), "%s", bc->peer);
	snprintf(o->transport, sizeof(o->transport), "%s",
		 vbi_conn_scheme(bc->c));
	o->start_time = bc->start_time;
	o->subs = bc->nsubs;
	o->msgs_in = bc->msgs_in;
	o->bytes_in = bc->bytes_in;
	o->msgs_out = bc->msgs_out;
	o->bytes_out = bc->bytes_out;
	o->drops = bc->drops;
	o->credit_waits = bc->waits;
	o->pending = bc->pend_n + cs.fwd_pending;
	o->ring_size = cs.ring_size;
	o->peer_ring = cs.peer_ring;
	snprintf(o->account, sizeof(o->account), "%s",
		 bc->acct ? bc->acct->name : VBD_GLOBAL_ACCOUNT);
	bk_direct_stats(bc, o);
}

static void src_server(void *arg, struct vbd_stats_server *s)
{
	struct vbd_broker *b = arg;
	uint64_t now = vbi_clock_coarse_ms();
	struct vbi_tp_stats ts;
	const struct bconn *bc;

	vbi_tp_stats_all(&ts);
	*s = b->st;
	s->version = vb_version();
	s->server_name = b->cfg.server_name;
	s->listen = b->listen;
	s->start_time = b->start_time;
	s->uptime_ms = now - b->start_ms;
	/* Every listener of the configuration still open: a shutdown (and
	 * lame duck) closes them. */
	s->listening = b->ntp > 0;
	for (unsigned i = 0; i < b->ntp; i++)
		s->listening = s->listening && b->l[i] != NULL;
	/* Shutting down or in lame duck: no new clients. */
	s->draining = b->shutting_down || b->ldm_since;
	s->tick_age_ms =
		b->last_tick && now > b->last_tick ? now - b->last_tick : 0;
	if (b->away_end) {
		s->loop_away_ms = b->away_ms;
		s->loop_back_ms = now > b->away_end ? now - b->away_end : 0;
	}
	s->sub_cache = 0;
	for (const struct bacct *a = b->accts; a; a = a->hh.next)
		s->sub_cache += vbi_sublist_cached(a->sl);
	s->conns = b->nconns;
	s->mr_registered = ts.mr_registered;
	s->mr_deregistered = ts.mr_deregistered;
	s->handshakes = b->nhandshakes;
	s->lame_duck = b->ldm_since != 0;
	s->handshake_timeouts = ts.handshake_timeouts;
	for (bc = b->head; bc; bc = bc->next) {
		struct vbi_conn_stats cs;

		vbi_conn_stats(bc->c, &cs);
		s->payload_copies += cs.bytes_copied;
		s->zero_copy_bytes += cs.bytes_forwarded;
		s->forward_kicks += cs.kicks;
		s->credit_waits += bc->waits;
	}
	/* What is registered now, counted where it is registered: rings,
	 * staging and control buffers of open connections, and the
	 * handshake buffers of those not yet admitted. */
	s->mem_registered = ts.mr_bytes;
	s->max_conns = b->cfg.max_conns;
	s->max_subs = b->cfg.max_subs;
	s->max_msg = b->cfg.max_msg;
	s->max_payload = b->cfg.max_payload;
	s->large_active = HASH_COUNT(b->streams);
	s->ring_size = b->cfg.ring_size;
}

static void src_conns(void *arg,
		      void (*fn)(void *ctx, const struct vbd_stats_conn *c),
		      void *ctx)
{
	struct vbd_broker *b = arg;
	struct vbd_stats_conn o;
	const struct bconn *bc;

	for (bc = b->head; bc; bc = bc->next) {
		if (bc->role != BK_CLIENT)
			continue; /* /routez's */
		fill_conn(bc, &o);
		fn(ctx, &o);
	}
}

static int src_conn(void *arg, uint64_t cid, struct vbd_stats_conn *c)
{
	struct vbd_broker *b = arg;
	struct bconn *bc = NULL;

	HASH_FIND(hh, b->by_cid, &cid, sizeof(cid), bc);
	if (!bc || bc->role != BK_CLIENT)
		return -1;
	fill_conn(bc, c);
	return 0;
}

/* The cluster's state; enabled false (the rest zero) if not clustered,
 * or no longer (shutting down). */
static void src_cluster(void *arg, struct vbd_stats_cluster *c)
{
	struct vbd_broker *b = arg;

	memset(c, 0, sizeof(*c));
	if (b->cluster)
		bk_cluster_stats(b->cluster, c);
}

static void src_routes(void *arg,
		       void (*fn)(void *ctx, const struct vbd_stats_route *r),
		       void *ctx)
{
	bk_routes_each(arg, fn, ctx);
}

/*
 * /subsz: the subscriptions of clients.  With @test, matched one by one
 * with the rules of the trie (vbi_pattern_covers() of a literal subject is
 * a match), not through the trie itself: vbi_sublist_match() gives one
 * member per queue group and advances the group's rotation, and a monitor
 * page must neither hide the other members nor change who gets the next
 * message.
 */
static void src_subs(void *arg, const char *test,
		     void (*fn)(void *ctx, const struct vbd_stats_sub *s),
		     void *ctx)
{
	struct vbd_broker *b = arg;
	size_t tlen = test ? strlen(test) : 0;
	struct vbd_stats_sub o;
	struct bsub *s, *tmp;
	struct bconn *bc;

	for (bc = b->head; bc; bc = bc->next) {
		if (bc->role != BK_CLIENT)
			continue; /* a route's interest is not a sub */
		HASH_ITER(hh, bc->subs, s, tmp)
		{
			if (test &&
			    !vbi_pattern_covers(s->subject, strlen(s->subject),
						test, tlen))
				continue;
			o.cid = bc->cid;
			o.name = bc->name;
			o.sid = s->sid;
			o.subject = s->subject;
			o.queue = s->queue;
			o.msgs = s->delivered;
			o.dropped = s->dropped;
			o.max = s->max_msgs;
			fn(ctx, &o);
		}
	}
}

static void src_accounts(void *arg,
			 void (*fn)(void *ctx,
				    const struct vbd_stats_account *a),
			 void *ctx)
{
	bk_accounts_each(arg, fn, ctx);
}

void vbd_broker_stats_source(struct vbd_broker *b, struct vbd_stats_source *src)
{
	src->server = src_server;
	src->conns = src_conns;
	src->conn = src_conn;
	src->cluster = src_cluster;
	src->routes = src_routes;
	src->subs = src_subs;
	src->accounts = src_accounts;
	src->arg = b;
}
