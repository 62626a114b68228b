/*
 * broker.c - verbusd's engine: lifecycle, listeners, the event loop and
 * connections opening and closing.  Routing and delivery are deliver.c's,
 * a client's control messages subs.c's (broker_int.h lists the files).
 */
#include "daemon/broker_int.h"

#include "core/clock.h"
#include "core/log.h"

#include <verbus/verbus.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

static void peer_addr(struct vbi_conn *c, char *buf, size_t len)
{
	char *colon;

	vbi_conn_peer_name(c, buf, len);
	colon = strrchr(buf, ':');
	if (colon)
		*colon = '\0';
}

static struct hs_addr *hs_find(struct vbd_broker *b, const char *addr)
{
	struct hs_addr *h = NULL;

	HASH_FIND_STR(b->hs_by_addr, addr, h);
	return h;
}

/*
 * A connection request (the transport's accept callback): every one
 * counts against max_conns from now, and one address may have only so
 * many in their handshake.  Refused ones are turned away at rdma_cm with
 * the reason in the reject.
 */
int bk_accept(struct vbi_conn *c, void *arg)
{
	struct vbd_broker *b = arg;
	char addr[64];
	struct hs_addr *h;

	peer_addr(c, addr, sizeof(addr));
	if (b->shutting_down || b->ldm_since) {
		b->st.conns_rejected++;
		vbi_info("refusing a connection from %s: %s", addr,
			 b->ldm_since ? "lame duck" : "shutting down");
		return VB_ESTATE;
	}
	if (b->nconns + b->nhandshakes >= b->cfg.max_conns) {
		b->st.conns_rejected++;
		vbi_warn("refusing a connection from %s: %" PRIu64 " open and "
			 "%" PRIu64 " in their handshake (limits.max_conns "
			 "%u)",
			 addr, b->nconns, b->nhandshakes, b->cfg.max_conns);
		return VB_ENOSPC;
	}
	h = hs_find(b, addr);
	if (h && h->n >= b->cfg.max_handshakes_per_addr) {
		b->st.conns_rejected++;
		vbi_warn("refusing a connection from %s: %u of its connections "
			 "are in their handshake "
			 "(limits.max_handshakes_per_addr)",
			 addr, h->n);
		return VB_EAGAIN;
	}
	if (!h) {
		h = calloc(1, sizeof(*h));
		if (!h) {
			b->st.conns_rejected++;
			return VB_ENOSPC;
		}
		snprintf(h->addr, sizeof(h->addr), "%s", addr);
		HASH_ADD_STR(b->hs_by_addr, addr, h);
		if (h->oom) {
			free(h);
			b->st.conns_rejected++;
			return VB_ENOSPC;
		}
	}
	h->n++;
	b->nhandshakes++;
	return VB_OK;
}

/* A connection bk_accept() admitted has opened or closed: its handshake
 * no longer counts. */
void bk_handshake_done(struct vbd_broker *b, struct vbi_conn *c)
{
	char addr[64];
	struct hs_addr *h;

	peer_addr(c, addr, sizeof(addr));
	h = hs_find(b, addr);
	if (b->nhandshakes)
		b->nhandshakes--;
	if (h && --h->n == 0) {
		HASH_DEL(b->hs_by_addr, h);
		free(h);
	}
}

/* Turn a new connection away: it never gets a bconn. */
void bk_refuse(struct vbd_broker *b, struct vbi_conn *c, const char *why)
{
	vbi_warn("refusing a connection: %s", why);
	b->st.conns_rejected++;
	vbi_conn_set_arg(c, NULL);
	vbi_conn_close(c);
}

struct bconn *bk_conn_add(struct vbd_broker *b, struct vbi_conn *c,
			  enum bk_role role, const struct vbd_user *user)
{
	struct bconn *bc = calloc(1, sizeof(*bc));

	if (!bc) {
		bk_refuse(b, c, "out of memory");
		return NULL;
	}
	bc->kind = KIND_CONN;
	bc->role = role;
	bc->user = user;
	bc->b = b;
	bc->c = c;
	bc->cid = ++b->next_cid;
	bc->start_time = time(NULL);
	vbi_conn_peer_name(c, bc->peer, sizeof(bc->peer));
	snprintf(bc->name, sizeof(bc->name), "%s", vbi_conn_name(c));
	HASH_ADD(hh, b->by_cid, cid, sizeof(bc->cid), bc);
	if (bc->oom) {
		free(bc);
		bk_refuse(b, c, "out of memory");
		return NULL;
	}
	bc->prev = b->tail;
	if (b->tail)
		b->tail->next = bc;
	else
		b->head = bc;
	b->tail = bc;
	if (role == BK_CLIENT) {
		b->nconns++;
		b->st.conns++;
	} else {
		b->nroutes++;
	}
	vbi_conn_set_arg(c, bc);
	vbi_info("%s cid %" PRIu64 " %s from %s open (%s)",
		 role == BK_ROUTE ? "route" : "conn", bc->cid, bc->name,
		 bc->peer, vbi_conn_scheme(c));
	return bc;
}

static void on_open(struct vbi_conn *c, void *arg)
{
	struct vbd_broker *b = arg;
	const struct vbd_user *user = NULL;
	struct bconn *bc;

	bk_handshake_done(b, c);
	b->st.conns_total++;
	if (b->shutting_down || b->ldm_since) {
		bk_refuse(b, c,
			  b->ldm_since ? "lame duck: going away" :
					 "shutting down");
		return;
	}
	if (b->nconns >= b->cfg.max_conns) {
		bk_refuse(b, c, "too many connections");
		return;
	}
	if (b->auth) {
		/* authorize() admitted it: this check is the cached one. */
		size_t clen;
		const void *cred = vbi_conn_credentials(c, &clen);

		if (vbd_auth_check(b->auth, cred, clen, &user)) {
			bk_refuse(b, c, "credentials no longer valid");
			return;
		}
	}
	bc = bk_conn_add(b, c, BK_CLIENT, user);
	if (bc) {
		size_t clen;
		const void *cred = vbi_conn_credentials(c, &clen);
		char why[VBI_REASON_MAX];

		vbd_inbox_id(cred, clen, bc->inbox_id);
		if (bk_account_join(bc, why, sizeof(why)) != VB_OK) {
			/* Told why, as a refusal at the Hello is. */
			vbi_warn("conn cid %" PRIu64 " %s: refused: %s",
				 bc->cid, bc->name, why);
			b->st.conns_rejected++;
			/* Nothing it sends meanwhile is routed (it has no
			 * account), as a revoked client's. */
			bc->closing = true;
			bc->revoked = true;
			vbi_conn_close_error(c, VB_ENOSPC, why);
			return;
		}
	}
	if (bc && b->cluster)
		bk_cluster_client_open(b->cluster, bc);
}

void bk_conn_closed(struct bconn *bc, const struct vbi_close_info *why)
{
	struct vbd_broker *b = bc->b;
	struct vbi_conn_stats cs;
	struct bsub *s, *tmp;

	vbi_info("%s cid %" PRIu64 " %s from %s closed: %s",
		 bc->role == BK_ROUTE ? "route" : "conn", bc->cid, bc->name,
		 bc->peer, why->reason);
	vbi_conn_stats(bc->c, &cs);
	b->st.payload_copies += cs.bytes_copied;
	b->st.zero_copy_bytes += cs.bytes_forwarded;
	b->st.forward_kicks += cs.kicks;
	b->st.credit_waits += bc->waits;
	bk_streams_src_gone(bc);
	if (bc->role == BK_ROUTE) {
		/* Its queue is lost: the peer hears of it when the route
		 * opens again (route.c). */
		bk_pend_drop_all(bc, true);
		bk_route_closed(bc, why);
	}
	HASH_ITER(hh, bc->subs, s, tmp)
	bk_sub_free(b, s);
	bk_direct_closed(bc);
	bk_account_leave(bc);
	bk_pend_drop_all(bc, false);
	if (bc->paused)
		b->npaused--;
	free(bc->pend);
	vbd_grants_destroy(bc->grants);
	HASH_DEL(b->by_cid, bc);
	if (bc->prev)
		bc->prev->next = bc->next;
	else
		b->head = bc->next;
	if (bc->next)
		bc->next->prev = bc->prev;
	else
		b->tail = bc->prev;
	if (bc->role == BK_CLIENT) {
		b->nconns--;
		b->st.conns--;
	} else {
		b->nroutes--;
	}
	free(bc);
}

/*
 * A callback's arg is the broker until the connection opens (the listener's
 * arg), then its bconn, or NULL if it was refused: only a bconn of this very
 * connection gets the event.
 */
struct bconn *bk_conn_of(struct vbi_conn *c, void *arg)
{
	struct bconn *bc = arg;

	if (!arg || *(const uint32_t *)arg != KIND_CONN || bc->c != c)
		return NULL;
	return bc;
}

void bk_cb_message(struct vbi_conn *c, const struct vbi_frame_view *v,
		   void *arg)
{
	/* A client whose credentials a reload removed: nothing it still
	 * sends is routed. */
	if (bk_conn_of(c, arg) && !((struct bconn *)arg)->revoked)
		bk_publish(c, v, arg);
	else
		vbi_conn_release(c, v);
}

static void cb_control(struct vbi_conn *c, const Verbus__Control *m, void *arg)
{
	if (bk_conn_of(c, arg))
		bk_client_control(c, m, arg);
}

static void cb_writable(struct vbi_conn *c, void *arg)
{
	if (bk_conn_of(c, arg))
		bk_writable(c, arg);
}

static void cb_closed(struct vbi_conn *c, const struct vbi_close_info *why,
		      void *arg)
{
	struct vbd_broker *b = arg;

	if (bk_conn_of(c, arg))
		bk_conn_closed(arg, why);
	else if (b && b->kind == KIND_BROKER)
		bk_handshake_done(b, c); /* it never opened */
}

/* At the Hello, before the client learns anything: its credentials. */
static int cb_authorize(struct vbi_conn *c, const void *cred, size_t len,
			void *arg)
{
	struct vbd_broker *b = arg;
	const struct vbd_user *u;
	char peer[64];

	if (!b || b->kind != KIND_BROKER)
		return VB_OK;
	vbi_conn_peer_name(c, peer, sizeof(peer));
	if (bk_cred_is_route(cred, len)) {
		/* A broker at the client port: it would get a client's
		 * rights and none of a route's. */
		b->st.conns_rejected++;
		vbi_warn("refusing %s from %s: a route Hello on the client "
			 "port (routes go to cluster.listen)",
			 vbi_conn_name(c), peer);
		return VB_EACCES;
	}
	u = NULL;
	if (!b->auth || vbd_auth_check(b->auth, cred, len, &u) == VB_OK) {
		char why[VBI_REASON_MAX];

		if (bk_account_admit(b, u, c, why, sizeof(why)) == VB_OK)
			return VB_OK;
		b->st.conns_rejected++;
		vbi_warn("refusing %s from %s: %s", vbi_conn_name(c), peer,
			 why);
		vbi_conn_refusal(c, why);
		return VB_ENOSPC;
	}
	b->st.auth_failures++;
	b->st.conns_rejected++;
	vbi_warn("refusing %s from %s: bad or missing credentials",
		 vbi_conn_name(c), peer);
	return VB_EACCES;
}

static const struct vbi_conn_cbs broker_cbs = {
	.accept = bk_accept,
	.authorize = cb_authorize,
	.open = on_open,
	.message = bk_cb_message,
	.writable = cb_writable,
	.control = cb_control,
	.closed = cb_closed,
};

/*
 * The loop ran again after @away ms (it turns at least every TICK_MS): the
 * process was not running (a host or VM paused, swapping, a debugger).
 * Its peers were paused with it, or could not be served: no stall timer
 * counts that time, so that nobody is judged a slow consumer for it at the
 * first tick back, before it had a chance to move.
 */
static void loop_was_away(struct vbd_broker *b, uint64_t now, uint64_t away)
{
	struct bconn *bc;

	b->st.loop_late++;
	b->st.loop_late_ms += away;
	b->away_ms = away; /* /healthz: the latest absence, and when */
	b->away_end = now;
	if (b->st.loop_late == 1 || away >= 2000)
		vbi_warn("the event loop was away %" PRIu64 " ms (the process "
			 "was not running); stall timers skip that time "
			 "(verbus_event_loop_late_total)",
			 away);
	/* Not past now: a stall that began after we woke keeps its start. */
	for (bc = b->head; bc; bc = bc->next)
		if (bc->blocked_since)
			bc->blocked_since = bc->blocked_since + away > now ?
						    now :
						    bc->blocked_since + away;
}

/* Timers: block timeouts, notices owed, routes, and the end of a shutdown. */
static void tick(struct vbd_broker *b)
{
	uint64_t now = vbi_clock_coarse_ms();
	struct bconn *bc, *next;

	if (now - b->last_tick < TICK_MS)
		return;
	/* last_tick 0: a shutdown asked for the next tick at once. */
	if (b->last_tick && now - b->last_tick > LOOP_AWAY_MS)
		loop_was_away(b, now, now - b->last_tick - TICK_MS);
	b->last_tick = now;
	if (b->cluster)
		bk_routes_tick(b, now);
	if (b->ldm_since)
		bk_lame_duck_tick(b, now);
	if (b->streams)
		bk_streams_tick(b, now);
	for (bc = b->head; bc; bc = next) {
		next = bc->next;
		if (bc->closing)
			continue;
		bk_pend_flush(bc);
		bk_stall_check(bc, now);
		if (bc->closing)
			continue;
		if (bc->direct_on)
			bk_direct_tick(bc, now);
		bk_send_owed(bc);
		if (b->shutting_down && bc->pend_n == 0) {
			bc->closing = true;
			vbi_conn_close(bc->c);
		}
	}
}

/* ---- lifecycle --------------------------------------------------------- */

#define EV_CLUSTER 0xffu /* the epoll tag of ZooKeeper's fd */

/* A transport context for @scheme and a listener on @addr:@port in it. */
static int listen_on(struct vbd_broker *b, const char *scheme, const char *addr,
		     const char *port, const struct vbi_conn_opts *o)
{
	unsigned i = b->ntp;
	int rc;

	rc = vbi_tp_create(scheme, &b->tp[i]);
	if (rc)
		return rc;
	b->ntp++;
	rc = vbi_tp_listen(b->tp[i], addr, port, o, &broker_cbs, b, &b->l[i]);
	if (rc)
		vbi_err("cannot listen on %s://%s:%s: %s", scheme, addr, port,
			vb_strerror(rc));
	return rc;
}

int vbd_broker_create(const struct vbd_config *cfg, struct vbd_broker **out)
{
	struct vbi_conn_opts o = { 0 };
	struct vbd_broker *b = calloc(1, sizeof(*b));
	int rc;

	if (!b)
		return VB_ENOMEM;
	b->kind = KIND_BROKER;
	b->epfd = -1;
	b->cfg = *cfg;
	b->start_time = time(NULL);
	b->start_ms = vbi_clock_coarse_ms();
	vbi_match_init(&b->match);
	snprintf(b->listen, sizeof(b->listen), "%s:%s", cfg->listen_addr,
		 cfg->port);
	rc = bk_accounts_init(b);
	if (rc)
		goto out_free;
	o.name = cfg->server_name;
	o.ring_size = cfg->ring_size;
	o.max_msg = cfg->max_msg;
	o.max_payload = cfg->max_payload;
	o.recv_depth = cfg->recv_depth;
	o.busy_poll = cfg->busy_poll;
	/* A client's ring is mirrored here in registered memory: bound it. */
	o.max_peer_ring = MAX_CLIENT_RING;
	/* Each client reaches its own ring only, through its own QP. */
	o.isolate = 1;
	o.handshake_timeout_ms = cfg->handshake_timeout_ms;
	/* Read by a tls listener only (OpenSSL loads them at listen). */
	o.tls_cert = cfg->tls_cert[0] ? cfg->tls_cert : NULL;
	o.tls_key = cfg->tls_key[0] ? cfg->tls_key : NULL;
	o.tls_ca = cfg->tls_ca[0] ? cfg->tls_ca : NULL;
	rc = listen_on(b, cfg->scheme, cfg->listen_addr, cfg->port, &o);
	if (rc == VB_OK && cfg->tcp_addr[0])
		rc = listen_on(b, cfg->tcp_scheme, cfg->tcp_addr,
			       cfg->tcp_port[0] ? cfg->tcp_port : cfg->port,
			       &o);
	if (rc)
		goto out_free;
	if (vbd_config_clustered(cfg)) {
		rc = bk_routes_init(b);
		if (rc)
			goto out_free;
		rc = bk_cluster_create(b, &b->cluster);
		if (rc)
			goto out_free;
	}
	if (b->ntp > 1 || b->cluster) {
		struct epoll_event ev = { .events = EPOLLIN };

		b->epfd = epoll_create1(EPOLL_CLOEXEC);
		rc = VB_ESYS;
		if (b->epfd < 0)
			goto out_free;
		for (unsigned i = 0; i < b->ntp; i++) {
			ev.data.u32 = i;
			if (epoll_ctl(b->epfd, EPOLL_CTL_ADD,
				      vbi_tp_fd(b->tp[i]), &ev))
				goto out_free;
		}
		ev.data.u32 = EV_CLUSTER;
		if (b->cluster && epoll_ctl(b->epfd, EPOLL_CTL_ADD,
					    bk_cluster_fd(b->cluster), &ev))
			goto out_free;
	}
	*out = b;
	return VB_OK;
out_free:
	vbd_broker_destroy(b);
	return rc;
}

int vbd_broker_fd(struct vbd_broker *b)
{
	return b->epfd >= 0 ? b->epfd : vbi_tp_fd(b->tp[0]);
}

int vbd_broker_progress(struct vbd_broker *b, int timeout_ms)
{
	struct epoll_event evs[4];
	bool zk_due = false;
	int rc, ne, n = 0;

	if (timeout_ms < 0 || timeout_ms > TICK_MS)
		timeout_ms = TICK_MS;
	if (b->epfd < 0) {
		n = vbi_tp_progress(b->tp[0], timeout_ms);
		tick(b);
		return n;
	}
	if (b->cluster) {
		int zt = bk_cluster_timeout_ms(b->cluster);

		if (zt < timeout_ms)
			timeout_ms = zt;
		zk_due = vbi_clock_coarse_ms() >= b->cluster_due;
	}
	/* Sleep on every fd; then each context turns without waiting.
	 * Clustered, the wait also says whether ZooKeeper's fd is ready. */
	if (!b->cfg.busy_poll || b->cluster) {
		ne = epoll_wait(b->epfd, evs, 4,
				b->cfg.busy_poll ? 0 : timeout_ms);
		if (ne < 0 && errno != EINTR)
			return VB_ESYS;
		for (int i = 0; i < ne; i++)
			if (evs[i].data.u32 == EV_CLUSTER)
				zk_due = true;
	}
	for (unsigned i = 0; i < b->ntp; i++) {
		rc = vbi_tp_progress(b->tp[i], 0);
		if (rc < 0)
			return rc;
		n += rc;
	}
	if (b->cluster && zk_due) {
		bk_cluster_process(b->cluster);
		b->cluster_due = vbi_clock_coarse_ms() +
				 (uint64_t)bk_cluster_timeout_ms(b->cluster);
	}
	tick(b);
	return n;
}

int vbd_broker_spin(struct vbd_broker *b, uint32_t us)
{
	uint64_t end = vbi_clock_coarse_ms() + (us + 999) / 1000;
	int n = 0;

	if (b->ntp == 1)
		return vbi_tp_spin(b->tp[0], (uint64_t)us * 1000u);
	/* Each a pass at a time, so that neither waits for the other. */
	do {
		for (unsigned i = 0; i < b->ntp; i++)
			n += vbi_tp_spin(b->tp[i], 0);
	} while (n == 0 && vbi_clock_coarse_ms() < end);
	return n;
}

void bk_stop_accepting(struct vbd_broker *b)
{
	for (unsigned i = 0; i < b->ntp; i++) {
		vbi_listener_close(b->l[i]);
		b->l[i] = NULL;
	}
}

void vbd_broker_shutdown(struct vbd_broker *b)
{
	if (b->shutting_down)
		return;
	b->shutting_down = true;
	bk_stop_accepting(b);
	vbi_listener_close(b->route_l);
	b->route_l = NULL;
	if (b->cluster) {
		/* Leave the cluster now: the others stop routing to us and
		 * our clients' next broker is already known to them. */
		epoll_ctl(b->epfd, EPOLL_CTL_DEL, bk_cluster_fd(b->cluster),
			  NULL);
		bk_cluster_destroy(b->cluster);
		b->cluster = NULL;
	}
	b->last_tick = 0; /* start closing at the next tick */
	vbi_info("shutting down: %" PRIu64 " connections to close", b->nconns);
}

bool vbd_broker_idle(const struct vbd_broker *b)
{
	return b->nconns == 0 && b->nroutes == 0;
}

void vbd_broker_destroy(struct vbd_broker *b)
{
	struct hs_addr *h, *tmp;

	if (!b)
		return;
	if (b->cluster && b->epfd >= 0)
		epoll_ctl(b->epfd, EPOLL_CTL_DEL, bk_cluster_fd(b->cluster),
			  NULL);
	bk_cluster_destroy(b->cluster);
	b->cluster = NULL;
	vbi_listener_close(b->route_l);
	b->route_l = NULL;
	/* Closes every connection; on_closed frees their state, and
	 * handshake_done() the per-address counts.  Every listener first,
	 * then every context: a connection of one may still forward from
	 * another's. */
	for (unsigned i = 0; i < b->ntp; i++)
		vbi_listener_close(b->l[i]);
	if (b->ntp > 1) {
		/* A connection of one context may hold forwards from the
		 * rings of another's: close them all and let every context
		 * turn once, which completes each closed connection's
		 * forwards, before any context frees its connections. */
		for (struct bconn *bc = b->head; bc; bc = bc->next)
			vbi_conn_close(bc->c);
		for (unsigned i = 0; i < b->ntp; i++)
			vbi_tp_progress(b->tp[i], 0);
	}
	for (unsigned i = 0; i < b->ntp; i++)
		vbi_tp_destroy(b->tp[i]);
	if (b->epfd >= 0)
		close(b->epfd);
	HASH_ITER(hh, b->hs_by_addr, h, tmp)
	{
		HASH_DEL(b->hs_by_addr, h);
		free(h);
	}
	bk_routes_fini(b);
	bk_accounts_fini(b);
	vbi_match_fini(&b->match);
	vbd_auth_destroy(b->auth);
	free(b);
}

void vbd_broker_set_auth(struct vbd_broker *b, struct vbd_auth *a)
{
	if (b->auth != a)
		vbd_auth_destroy(b->auth);
	b->auth = a;
	bk_accounts_bind(b);
}
