/*
 * client.c - libverbus connections: connect, reconnect, the transport's
 * callbacks, timers and the event loop (verbus/verbus.h).  Publishing and
 * the outgoing queue are in outq.c, subscriptions and delivered messages
 * in subs.c, requests in request.c.
 *
 * Decisions a reader must know.
 *
 * Reconnecting, and failing over.  When the transport connection closes,
 * queued control messages are dropped (the state they describe is re-sent
 * whole: every open puts one Subscribe per live subscription at the head
 * of the queue) and queued publishes stay.  The next attempt goes to the
 * next server of the pool (pool.h) at once, so that the loss of one broker
 * moves the client to another without a wait; only after a whole pass in
 * which no server opened does the doubling, capped, jittered delay of the
 * timerfd apply.  Every attempt starts from the timer, never from inside
 * the transport's callback that reported the failure.
 *
 * One transport context per scheme.  The pool may mix schemes (rdma://
 * and tcp://); each attempt uses the context of its server's scheme,
 * created the first time and kept until vb_close(): a transport keeps the
 * closed connection's registered buffers for its next one
 * (vbi_conn_opts.keep_memory; RDMA per device), so reconnecting to a
 * scheme used before registers no memory, and messages held from an
 * older connection stay valid.  Every context's fd is in vb_fd()'s epoll
 * set and every one is progressed (an idle one costs a non-blocking look).
 *
 * Posting, and waking the loop.  The first message published outside
 * vb_process() since the last one is posted at once (vbi_client_staged):
 * a lone message, the latency case, waits for nobody.  Those that follow
 * it before the next vb_process() are staged and leave together as one
 * write when it runs (a burst costs two writes, not one per message); so
 * that an event loop sleeping on vb_fd() gets there, such a call makes
 * the eventfd readable (once per batch).  With VB_OPT_BUSY_POLL the
 * caller spins anyway: no syscall.  VB_OPT_NODELAY posts every such
 * message at once: an application that processes a connection only when
 * its fd is readable, and publishes one message per outside event, would
 * otherwise see every other one wait for that wake-up.
 */
#include "clients/lib/client.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/subject.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define DEF_NAME "verbus"
#define DEF_CONNECT_TIMEOUT_MS 5000
#define DEF_RECONNECT_MAX 60
#define DEF_RECONNECT_WAIT_MS 50
#define DEF_RECONNECT_WAIT_MAX_MS 2000
#define DEF_RECONNECT_JITTER_MS 100
#define DEF_PENDING_MAX (8u << 20)
#define DEF_PING_INTERVAL_MS 1000
#define DEF_MAX_MSG (64u << 10) /* the transport's default */

uint64_t vbi_client_now_ns(void)
{
	return vbi_clock_ns();
}

/*
 * The coarse clock is the monotonic clock as of the last tick, at most its
 * resolution behind, and is read without a system call even where the
 * precise one needs one (a guest whose clocksource the vDSO cannot read:
 * hpet under QEMU TCG, where a precise read costs ~1.5 us).
 */
uint64_t vbi_client_later_ns(void)
{
	static _Atomic uint64_t res_ns;
	struct timespec ts;
	uint64_t res = atomic_load_explicit(&res_ns, memory_order_relaxed);

	if (res == 0) {
		if (clock_getres(CLOCK_MONOTONIC_COARSE, &ts))
			return vbi_client_now_ns();
		res = (uint64_t)ts.tv_sec * 1000000000ull +
		      (uint64_t)ts.tv_nsec;
		atomic_store_explicit(&res_ns, res, memory_order_relaxed);
	}
	if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts))
		return vbi_client_now_ns();
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec + res;
}

/* Whether the monotonic clock may have reached @at: vb_process() asks on
 * every call while a heartbeat is armed. */
static bool clock_may_reach(uint64_t at)
{
	return vbi_client_later_ns() >= at;
}

static uint64_t rng_next(struct vb_conn *c)
{
	c->rng ^= c->rng >> 12;
	c->rng ^= c->rng << 25;
	c->rng ^= c->rng >> 27;
	return c->rng * 0x2545f4914f6cdd1dull;
}

void vbi_client_event(struct vb_conn *c, enum vb_event_type type, int err,
		      const char *detail, struct vb_sub *s, uint64_t count)
{
	struct vb_event ev = {
		.type = type,
		.err = err,
		.detail = detail ? detail : "",
		.sub = s,
		.count = count,
	};

	if (c->o.on_event && !c->closing)
		c->o.on_event(c, &ev, c->o.event_arg);
}

/* Make vb_fd() readable: frames wait for the next vb_process(). */
void vbi_client_wake(struct vb_conn *c)
{
	uint64_t one = 1;

	if (c->efd_armed || c->in_process || (c->o.flags & VB_OPT_BUSY_POLL))
		return;
	if (write(c->efd, &one, sizeof(one)) == (ssize_t)sizeof(one))
		c->efd_armed = true;
}

void vbi_client_staged(struct vb_conn *c)
{
	if (c->in_process || c->state != CS_OPEN || !c->vc ||
	    (c->posted_early && !(c->o.flags & VB_OPT_NODELAY))) {
		vbi_client_wake(c);
		return;
	}
	/* What cannot go now (no credit) goes when the credit comes back:
	 * that arrival is work the loop sees. */
	c->posted_early = true;
	if (vbi_conn_flush(c->vc) != VB_OK)
		vbi_client_wake(c); /* the loop reports the failure */
}

/* ---- the transport's callbacks ------------------------------------------ */

/* Whether TLS options were given: then every server must be tls://. */
static bool tls_only(const struct vb_conn *c)
{
	return c->tls_ca || c->tls_cert || c->tls_key || c->tls_server_name;
}

static void fail_for_good(struct vb_conn *c, int err, const char *reason)
{
	c->state = CS_CLOSED;
	c->close_err = err;
	snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason);
	vbi_outq_free_all(c);
	vbi_request_expire(c, 0, true);
	vbi_syncsub_wake_all(c);
	vbi_client_event(c, VB_EV_CLOSED, err, reason, NULL, 0);
}

/*
 * The transport connection is gone (or could not be made): the next
 * server of the pool is tried at once, unless that completes a pass in
 * which none opened: then after the backoff (or, connecting
 * synchronously, not at all).
 */
static void lost(struct vb_conn *c, int err, const char *reason)
{
	bool was_open = c->state == CS_OPEN, moving = c->moving;
	uint64_t now = vbi_client_now_ns(), wait = 0;
	bool pass_done;
	int shift;

	c->vc = NULL;
	c->reserving = false;
	c->move_ping = 0; /* a move ends with the connection it left */
	c->move_sent = false;
	c->moving = false;
	vbi_outq_drop_control(c);
	vbi_stream_lost(c);
	if (c->dir)
		vbi_direct_lost(c);
	pass_done = vbi_pool_failed(c->pool, err, now);
	if (c->sync_connect && pass_done) {
		c->state = CS_CLOSED;
		c->close_err = err;
		snprintf(c->close_reason, sizeof(c->close_reason), "%s",
			 reason);
		return;
	}
	if (was_open)
		vbi_client_event(c, VB_EV_DISCONNECTED, err, reason, NULL, 0);
	/* Without reconnection a first connect still tries every server. */
	/* A move off a lame duck is no loss: it goes on even so. */
	if (((c->o.flags & VB_OPT_NO_RECONNECT) && !moving &&
	     (c->ever_open || pass_done)) ||
	    (pass_done && c->o.reconnect_max >= 0 &&
	     c->passes >= c->o.reconnect_max)) {
		fail_for_good(c, err, reason);
		return;
	}
	if (pass_done) {
		shift = c->passes < 20 ? c->passes : 20;
		wait = (uint64_t)c->o.reconnect_wait_ms << shift;
		if (wait > (uint64_t)c->o.reconnect_wait_max_ms)
			wait = (uint64_t)c->o.reconnect_wait_max_ms;
		if (c->o.reconnect_jitter_ms > 0)
			wait += rng_next(c) %
				(uint64_t)c->o.reconnect_jitter_ms;
		c->passes++;
	}
	c->state = CS_WAITING;
	c->retry_ns = now + wait * 1000000ull;
	if (vbi_pool_url(&vbi_pool_current(c->pool)->url, c->server,
			 sizeof(c->server)))
		c->server[0] = '\0';
	vbi_debug("%s: %s (%s); next: %s in %llu ms", c->name, reason,
		  vb_strerror(err), c->server, (unsigned long long)wait);
	vbi_client_arm_timer(c);
}

void vbi_client_move(struct vb_conn *c, const char *why)
{
	struct vbi_conn *vc = c->vc;

	if (c->state != CS_OPEN || !vc)
		return;
	/* Its closed callback finds c->vc changed: nothing more. */
	vbi_conn_close(vc);
	c->moving = true;
	lost(c, VB_ECLOSED, why);
}

static void on_open(struct vbi_conn *vc, void *arg)
{
	struct vb_conn *c = arg;
	const struct vbi_srv *srv;
	struct vbi_conn_stats cs;

	if (c->closing || vc != c->vc)
		return;
	if (vbi_outq_resubscribe(c)) {
		vbi_conn_close(vc);
		return;
	}
	srv = vbi_pool_current(c->pool);
	vbi_pool_opened(c->pool);
	vbi_conn_stats(vc, &cs);
	c->peer_max_msg = cs.peer_max_msg;
	c->state = CS_OPEN;
	c->passes = 0;
	c->gen++;
	if (c->o.ping_interval_ms > 0) {
		c->ping_ns = vbi_client_now_ns() +
			     (uint64_t)c->o.ping_interval_ms * 1000000ull;
		vbi_client_arm_timer(c);
	}
	if (vbi_pool_url(&srv->url, c->server, sizeof(c->server)))
		c->server[0] = '\0';
	vbi_diag_opened(c);
	vbi_debug("%s: connected to %s", c->name, c->server);
	if (c->ever_open) {
		c->st.reconnects++;
		if (!vbi_pool_same(&srv->url, &c->open_url))
			c->st.failovers++;
		c->open_url = srv->url;
		vbi_client_event(c, VB_EV_RECONNECTED, VB_OK, c->server, NULL,
				 0);
	} else {
		c->ever_open = true;
		c->open_url = srv->url;
		vbi_client_event(c, VB_EV_CONNECTED, VB_OK, c->server, NULL, 0);
	}
	vbi_outq_pump(c);
}

static void on_writable(struct vbi_conn *vc, void *arg)
{
	struct vb_conn *c = arg;

	if (!c->closing && vc == c->vc)
		vbi_outq_pump(c);
}

static void on_notice(struct vb_conn *c, const Verbus__Notice *n)
{
	struct vb_sub *s = n->sid ? vbi_subs_find(c, n->sid) : NULL;
	int err = -(int)n->code;

	if (n->code == 0)
		return; /* informational (an auto-unsubscribe completed) */
	/* A request refused or unanswerable: it fails now, no event. */
	if (n->subject[0] && vbi_request_refused(c, n->subject, err))
		return;
	vbi_client_event(c, VB_EV_NOTICE, err, n->reason, s, 0);
	/* A refused subscription is not in force: forget it, so that it is
	 * not re-sent on reconnection either.  VB_EMSGSIZE about a
	 * subscription is no refusal: a delivery was too large for us.
	 * VB_EACCES about one that had messages: its permission was revoked
	 * (a configuration reload on the broker), it is gone. */
	if (s && err != VB_EMSGSIZE && (s->received == 0 || err == VB_EACCES))
		vbi_subs_remove(s);
}

/*
 * A broker's Info: the cluster's client URLs join the pool (those it no
 * longer names leave it, if they were learned).  The strings are the
 * peer's: the pool parses each and drops what is bad; none reaches a log.
 * A client that speaks TLS (its options, or a tls:// broker) learns
 * tls:// URLs only: an advertisement never moves it to plain text.
 */
static void on_info(struct vb_conn *c, const Verbus__Info *in)
{
	struct vbi_pool_merge_result r;
	char scheme[sizeof(c->open_url.scheme)];
	bool tls;

	/* A copy: the merge moves the pool's entries. */
	snprintf(scheme, sizeof(scheme), "%s",
		 vbi_pool_current(c->pool)->url.scheme);
	tls = tls_only(c) || strcmp(scheme, "tls") == 0;
	vbi_pool_merge(c->pool, (const char *const *)in->connect_urls,
		       in->n_connect_urls, scheme, tls ? "tls" : NULL,
		       c->pool_flags, rng_next(c), &r);
	vbi_debug("%s: info: %zu servers learned, %zu forgotten, %zu "
		  "ignored; %zu in all",
		  c->name, r.added, r.removed, r.ignored,
		  vbi_pool_count(c->pool));
}

void vbi_client_pong(struct vb_conn *c, uint64_t id)
{
	vbi_diag_pong(c, id);
	vbi_lameduck_pong(c, id);
}

static void on_control(struct vbi_conn *vc, const Verbus__Control *m, void *arg)
{
	struct vb_conn *c = arg;
	struct vb_sub *s;

	if (c->closing || vc != c->vc)
		return;
	switch (m->body_case) {
	case VERBUS__CONTROL__BODY_PONG:
		/* Behind a DirectFence off, a Pong says nothing until the
		 * direct connection has delivered what came before it. */
		if (!(c->dir && c->dir->barrier_pub &&
		      vbi_direct_hold_pong(c, m->pong->id)))
			vbi_client_pong(c, m->pong->id);
		break;
	case VERBUS__CONTROL__BODY_LAME_DUCK:
		vbi_lameduck_on(c, m->lame_duck);
		break;
	case VERBUS__CONTROL__BODY_PING: {
		Verbus__Control r = VERBUS__CONTROL__INIT;
		Verbus__Pong p = VERBUS__PONG__INIT;

		p.id = m->ping->id;
		r.body_case = VERBUS__CONTROL__BODY_PONG;
		r.pong = &p;
		(void)vbi_conn_send_ctrl(vc, &r); /* best effort */
		break;
	}
	case VERBUS__CONTROL__BODY_NOTICE:
		on_notice(c, m->notice);
		break;
	case VERBUS__CONTROL__BODY_INFO:
		on_info(c, m->info);
		break;
	case VERBUS__CONTROL__BODY_DIRECT_KEY:
		vbi_direct_on_key(c, m->direct_key);
		break;
	case VERBUS__CONTROL__BODY_DIRECT_FENCE:
		vbi_direct_on_fence(c, m->direct_fence);
		break;
	case VERBUS__CONTROL__BODY_DIRECT_REVOKE:
		vbi_direct_on_revoke(c, m->direct_revoke);
		break;
	case VERBUS__CONTROL__BODY_DIRECT_PATHS:
		vbi_direct_on_paths(c, m->direct_paths);
		break;
	case VERBUS__CONTROL__BODY_DIRECT_STALE:
		vbi_direct_on_stale(c, m->direct_stale);
		break;
	case VERBUS__CONTROL__BODY_DROPPED:
		s = vbi_subs_find(c, m->dropped->sid);
		if (s)
			vbi_client_event(c, VB_EV_DROPPED, VB_OK,
					 "slow consumer: the broker dropped "
					 "deliveries",
					 s, m->dropped->count);
		break;
	default:
		vbi_debug("%s: control message %d ignored", c->name,
			  (int)m->body_case);
		break;
	}
}

static void on_closed(struct vbi_conn *vc, const struct vbi_close_info *why,
		      void *arg)
{
	struct vb_conn *c = arg;

	if (c->closing || vc != c->vc)
		return;
	lost(c, why->err, why->reason);
}

static const struct vbi_conn_cbs client_cbs = {
	.open = on_open,
	.message = vbi_subs_deliver,
	.writable = on_writable,
	.control = on_control,
	.closed = on_closed,
};

static int add_fd(int epfd, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) ? VB_ESYS : VB_OK;
}

int vbi_client_tp_for(struct vb_conn *c, const char *scheme,
		      struct vbi_tp **out)
{
	struct client_tp *t;
	unsigned i;
	int rc;

	for (i = 0; i < c->ntps; i++) {
		if (strcmp(c->tps[i].scheme, scheme) == 0) {
			*out = c->tps[i].tp;
			return VB_OK;
		}
	}
	if (c->ntps == CLIENT_TPS_MAX)
		return VB_ENOSPC;
	t = &c->tps[c->ntps];
	rc = vbi_tp_create(scheme, &t->tp);
	if (rc) {
		t->tp = NULL;
		return rc;
	}
	rc = add_fd(c->epfd, vbi_tp_fd(t->tp));
	if (rc) {
		vbi_tp_destroy(t->tp);
		t->tp = NULL;
		return rc;
	}
	snprintf(t->scheme, sizeof(t->scheme), "%s", scheme);
	c->ntps++;
	*out = t->tp;
	return VB_OK;
}

/* Start one attempt, to the pool's current server. */
static void attempt(struct vb_conn *c)
{
	const struct vbi_srv *srv = vbi_pool_current(c->pool);
	struct vbi_conn_opts o = {
		.name = c->name,
		.ring_size = c->o.ring_size,
		.max_msg = c->o.max_msg,
		.max_payload = c->o.max_payload,
		.busy_poll = !!(c->o.flags & VB_OPT_BUSY_POLL),
		.source = c->source,
		.timeout_ms = c->o.connect_timeout_ms,
		.credentials = c->cred,
		.credentials_len = c->cred_len,
		.keep_memory = 1,
		.tls_ca = c->tls_ca,
		.tls_cert = c->tls_cert,
		.tls_key = c->tls_key,
		.tls_server_name = c->tls_server_name,
	};
	char why[sizeof(srv->url.host) + 96];
	int rc;

	c->state = CS_CONNECTING;
	rc = vbi_client_tp_for(c, srv->url.scheme, &c->tp);
	if (rc == VB_OK)
		rc = vbi_tp_connect(c->tp, srv->url.host, srv->url.port, &o,
				    &client_cbs, c, &c->vc);
	if (rc) {
		snprintf(why, sizeof(why), "cannot connect to %s:%s: %s",
			 srv->url.host, srv->url.port, vb_strerror(rc));
		c->vc = NULL;
		c->state = CS_WAITING; /* lost() decides what follows */
		lost(c, rc, why);
	}
}

/* ---- timers ------------------------------------------------------------- */

void vbi_client_arm_timer(struct vb_conn *c)
{
	struct itimerspec its = { 0 };
	uint64_t next = vbi_request_next_deadline(c);
	uint64_t drain = vbi_drain_next_deadline(c);
	uint64_t dir = c->dir ? vbi_direct_next_deadline(c) : 0;

	if (drain && (!next || drain < next))
		next = drain;
	if (dir && (!next || dir < next))
		next = dir;
	if (c->state == CS_WAITING && (!next || c->retry_ns < next))
		next = c->retry_ns;
	if (c->state == CS_OPEN && c->ping_ns && (!next || c->ping_ns < next))
		next = c->ping_ns;
	if (next == c->timer_at)
		return; /* armed already: no syscall on the hot path */
	if (next) {
		its.it_value.tv_sec = (time_t)(next / 1000000000ull);
		its.it_value.tv_nsec = (long)(next % 1000000000ull);
		if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
			its.it_value.tv_nsec = 1;
	}
	if (timerfd_settime(c->tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
		c->timer_at = next;
}

/*
 * The heartbeat: a Ping, queued like any control message.  Its SEND is
 * what detects a broker that vanished without a word: the device retries
 * it and then fails the connection (retry exceeded), which starts the
 * reconnection.  No answer is required: a broker that is alive but slow to
 * answer (pausing us, say) is not a lost one.
 */
static void heartbeat(struct vb_conn *c, uint64_t now)
{
	c->ping_ns = now + (uint64_t)c->o.ping_interval_ms * 1000000ull;
	if (c->out_head)
		return; /* traffic is waiting: no need, and no pile-up */
	vbi_diag_ping(c);
}

/* Deadlines due: checked against the clock (vDSO, no syscall); the
 * timerfd is only read once it has fired. */
static int run_timers(struct vb_conn *c)
{
	uint64_t now, ticks;

	if (!c->timer_at || !clock_may_reach(c->timer_at))
		return 0;
	now = vbi_client_now_ns();
	if (now < c->timer_at)
		return 0;
	if (read(c->tfd, &ticks, sizeof(ticks)) < 0)
		ticks = 0;
	c->timer_at = 0; /* disarmed by expiry; arm_timer sets the next */
	vbi_request_expire(c, now, false);
	if (c->dir)
		vbi_direct_expire(c, now);
	if (c->state == CS_WAITING && now >= c->retry_ns)
		attempt(c);
	if (c->state == CS_OPEN && c->ping_ns && now >= c->ping_ns)
		heartbeat(c, now);
	vbi_client_arm_timer(c);
	return 1;
}

/* ---- creation ----------------------------------------------------------- */

static char *dup_or_null(const char *s, int *rc)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*rc = VB_ENOMEM;
	return d;
}

/*
 * The Hello's credentials: the token, or the user and password, if any,
 * and always the inbox secret (inbox.c), which makes the connection's
 * inbox its own at the broker.
 */
static int pack_credentials(struct vb_conn *c, const struct vb_opts *o)
{
	Verbus__Credentials cr = VERBUS__CREDENTIALS__INIT;
	int rc;

	if (o->token && (o->user || o->password))
		return VB_EINVAL; /* one kind of credentials */
	if (!o->token && (!!o->user != !!o->password))
		return VB_EINVAL;
	rc = vbi_inbox_init(c);
	if (rc)
		return rc;
	cr.token = (char *)(o->token ? o->token : "");
	cr.user = (char *)(o->user ? o->user : "");
	cr.password = (char *)(o->password ? o->password : "");
	cr.inbox_secret.data = c->inbox_secret;
	cr.inbox_secret.len = sizeof(c->inbox_secret);
	if (verbus__credentials__get_packed_size(&cr) > sizeof(c->cred))
		return VB_EINVAL;
	c->cred_len = verbus__credentials__pack(&cr, c->cred);
	return VB_OK;
}

/* Copy @in (the first in->sz bytes) and fill in the defaults. */
static int opts_load(struct vb_conn *c, const struct vb_opts *in)
{
	struct vb_opts *o = &c->o;
	int rc = VB_OK;

	if (in) {
		if (in->sz < offsetof(struct vb_opts, name))
			return VB_EINVAL;
		memcpy(o, in, in->sz < sizeof(*o) ? in->sz : sizeof(*o));
	}
	o->sz = sizeof(*o);
	if (o->flags &
	    ~(unsigned)(VB_OPT_ASYNC_CONNECT | VB_OPT_BUSY_POLL |
			VB_OPT_LOCKED | VB_OPT_NO_RECONNECT | VB_OPT_NODELAY |
			VB_OPT_RANDOMIZE | VB_OPT_DIRECT))
		return VB_EINVAL;
	if (o->connect_timeout_ms < 0 || o->reconnect_wait_ms < 0 ||
	    o->reconnect_wait_max_ms < 0 || o->reconnect_jitter_ms < 0 ||
	    o->reconnect_max < -1)
		return VB_EINVAL;
	if (!o->connect_timeout_ms)
		o->connect_timeout_ms = DEF_CONNECT_TIMEOUT_MS;
	if (!o->reconnect_max)
		o->reconnect_max = DEF_RECONNECT_MAX;
	if (!o->reconnect_wait_ms)
		o->reconnect_wait_ms = DEF_RECONNECT_WAIT_MS;
	if (!o->reconnect_wait_max_ms)
		o->reconnect_wait_max_ms = DEF_RECONNECT_WAIT_MAX_MS;
	if (o->reconnect_wait_max_ms < o->reconnect_wait_ms)
		o->reconnect_wait_max_ms = o->reconnect_wait_ms;
	if (!o->reconnect_jitter_ms)
		o->reconnect_jitter_ms = DEF_RECONNECT_JITTER_MS;
	if (!o->pending_max)
		o->pending_max = DEF_PENDING_MAX;
	if (o->ping_interval_ms < -1)
		return VB_EINVAL;
	if (!o->ping_interval_ms)
		o->ping_interval_ms = DEF_PING_INTERVAL_MS;
	if (o->spin_us < 0 || o->spin_us > 1000000)
		return VB_EINVAL;
	if (!o->max_msg)
		o->max_msg = DEF_MAX_MSG;
	/* Large messages: by default 8 MiB, or one frame if that is more. */
	if (!o->max_payload)
		o->max_payload = o->max_msg > VBI_LARGE_MAX_DEF ?
					 o->max_msg :
					 VBI_LARGE_MAX_DEF;
	if (o->max_payload > VB_MAX_PAYLOAD_MAX || o->max_payload < o->max_msg)
		return VB_EINVAL;
	vbi_large_init(&c->large, o->max_payload,
		       (uint64_t)o->max_payload * VBI_LARGE_BUDGET_FACTOR,
		       VBI_LARGE_IDLE_NS);
	if (vbi_diag_log_load(c))
		return VB_EINVAL;
	c->name = dup_or_null(o->name ? o->name : DEF_NAME, &rc);
	c->source = dup_or_null(o->source, &rc);
	c->tls_ca = dup_or_null(o->tls_ca, &rc);
	c->tls_cert = dup_or_null(o->tls_cert, &rc);
	c->tls_key = dup_or_null(o->tls_key, &rc);
	c->tls_server_name = dup_or_null(o->tls_server_name, &rc);
	c->direct_listen = dup_or_null(o->direct_listen, &rc);
	o->tls_ca = o->tls_cert = o->tls_key = o->tls_server_name = NULL;
	o->direct_listen = NULL;
	if (!o->direct_peers_max)
		o->direct_peers_max = VBI_DIRECT_PEERS_DEFAULT;
	if (rc)
		return rc;
	if (strlen(c->name) > VBI_NAME_MAX)
		return VB_EINVAL;
	rc = pack_credentials(c, o);
	/* The caller's strings are not kept. */
	o->name = o->source = o->token = o->user = o->password = NULL;
	return rc;
}

static void client_free(struct vb_conn *c)
{
	if (!c)
		return;
	c->closing = true;
	/* What the transport logs while it closes is still this
	 * connection's (the sink lives in @c: popped before the free). */
	vbi_log_push(&c->log);
	vbi_drain_free_all(c);
	vbi_subs_free_all(c); /* their messages reference the transports */
	vbi_direct_free(c); /* before the transports too */
	vbi_request_free_all(c);
	while (c->ntps > 0)
		vbi_tp_destroy(c->tps[--c->ntps].tp);
	c->tp = NULL;
	vbi_outq_free_all(c);
	if (c->efd >= 0)
		close(c->efd);
	if (c->tfd >= 0)
		close(c->tfd);
	if (c->epfd >= 0)
		close(c->epfd);
	if (c->locked)
		pthread_mutex_destroy(&c->lock);
	vbi_log_pop();
	free(c->name);
	free(c->source);
	free(c->tls_ca);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->tls_server_name);
	free(c->direct_listen);
	vbi_pool_destroy(c->pool);
	free(c);
}

static bool is_settled(struct vb_conn *c, void *arg)
{
	(void)arg;
	return c->state == CS_OPEN || c->state == CS_CLOSED;
}

int vb_connect(const char *url, const struct vb_opts *opts,
	       struct vb_conn **out)
{
	pthread_mutexattr_t ma;
	const struct vbi_srv *srv;
	struct vb_conn *c;
	bool pushed = false;
	char err[384];
	size_t i;
	int rc;

	if (!out)
		return VB_EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return VB_ENOMEM;
	c->epfd = c->tfd = c->efd = -1;
	c->out_tail = &c->out_head;
	if (getrandom(&c->rng, sizeof(c->rng), 0) != sizeof(c->rng))
		c->rng = vbi_client_now_ns();
	c->rng |= 1;
	rc = opts_load(c, opts);
	if (rc)
		goto out_free;
	/* From here what the library logs is this connection's. */
	vbi_log_push(&c->log);
	pushed = true;
	c->pool_flags = (c->o.flags & VB_OPT_RANDOMIZE) ? VBI_POOL_SHUFFLE : 0;
	rc = vbi_pool_create(url, c->pool_flags, rng_next(c), &c->pool, err,
			     sizeof(err));
	if (rc) {
		vbi_warn("bad url \"%s\": %s", url ? url : "", err);
		goto out_free;
	}
	/* TLS files with a plain URL would be a connection in the clear
	 * that its application thinks is protected: every server counts. */
	rc = VB_EINVAL;
	for (i = 0; tls_only(c) && (srv = vbi_pool_get(c->pool, i)); i++) {
		if (strcmp(srv->url.scheme, "tls") != 0) {
			vbi_warn("tls options with a %s:// URL",
				 srv->url.scheme);
			goto out_free;
		}
	}
	if (c->o.flags & VB_OPT_LOCKED) {
		pthread_mutexattr_init(&ma);
		pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
		rc = pthread_mutex_init(&c->lock, &ma) ? VB_ESYS : VB_OK;
		pthread_mutexattr_destroy(&ma);
		if (rc)
			goto out_free;
		c->locked = true;
	}
	rc = VB_ESYS;
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	c->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c->epfd < 0 || c->tfd < 0 || c->efd < 0)
		goto out_free;
	if ((rc = add_fd(c->epfd, c->tfd)) || (rc = add_fd(c->epfd, c->efd)))
		goto out_free;

	c->sync_connect = !(c->o.flags & VB_OPT_ASYNC_CONNECT);
	attempt(c);
	if (c->sync_connect) {
		client_lock(c); /* vbi_client_wait drops it while sleeping */
		vbi_client_wait(c, is_settled, NULL, 0);
		client_unlock(c);
		if (c->state != CS_OPEN) {
			rc = c->close_err ? c->close_err : VB_ETIMEDOUT;
			vbi_warn("%s: cannot connect to %s: %s", c->name, url,
				 c->close_reason);
			vbi_client_event(c, VB_EV_CLOSED, rc, c->close_reason,
					 NULL, 0);
			goto out_free;
		}
		c->sync_connect = false;
	}
	vbi_log_pop();
	*out = c;
	return VB_OK;
out_free:
	if (pushed)
		vbi_log_pop();
	client_free(c);
	return rc;
}

void vb_close(struct vb_conn *c)
{
	if (!c)
		return;
	client_lock(c);
	if (c->state != CS_CLOSED) {
		c->state = CS_CLOSED;
		vbi_request_expire(c, 0, true);
		vbi_client_event(c, VB_EV_CLOSED, VB_ECLOSED,
				 "closed by the user", NULL, 0);
	}
	client_unlock(c);
	client_free(c);
}

/* ---- the event loop ----------------------------------------------------- */

int vb_fd(struct vb_conn *c)
{
	return c ? c->epfd : VB_EINVAL;
}

/* Adaptive polling for @us microseconds; callbacks may run. */
static int spin(struct vb_conn *c, int us)
{
	int n;

	if (!c->tp)
		return 0;
	c->in_process = true;
	c->posted_early = false;
	n = vbi_tp_spin(c->tp, (uint64_t)us * 1000u);
	c->in_process = false;
	return n;
}

static int process(struct vb_conn *c)
{
	uint64_t v;
	unsigned i;
	int n, total = 0;

	if ((c->efd_armed || atomic_load(&c->stop)) &&
	    read(c->efd, &v, sizeof(v)) > 0)
		c->efd_armed = false;
	c->in_process = true;
	c->posted_early = false;
	for (i = 0; i < c->ntps; i++) {
		n = vbi_tp_progress(c->tps[i].tp, 0);
		if (n > 0)
			total += n;
	}
	total += run_timers(c);
	if (c->drain || c->sub_drains)
		vbi_drain_step(c);
	vbi_outq_pump(c);
	c->in_process = false;
	/* What vbi_outq_pump() staged goes now, not at the next call. */
	if (c->vc && c->state == CS_OPEN)
		vbi_conn_flush(c->vc);
	return c->state == CS_CLOSED ? VB_ECLOSED : total;
}

int vb_process(struct vb_conn *c)
{
	int rc;

	if (!c)
		return VB_EINVAL;
	client_lock(c);
	rc = c->state == CS_CLOSED ? VB_ECLOSED : process(c);
	client_unlock(c);
	return rc;
}

int vb_spin(struct vb_conn *c, int us)
{
	int n, rc;

	if (!c || us < 0)
		return VB_EINVAL;
	client_lock(c);
	if (c->state == CS_CLOSED) {
		client_unlock(c);
		return VB_ECLOSED;
	}
	n = spin(c, us);
	/* What the callbacks staged, and the credits they freed, go now. */
	rc = n > 0 ? process(c) : 0;
	client_unlock(c);
	if (rc < 0)
		return rc;
	return n > 0 ? n + rc : 0;
}

/* Wait for work up to @timeout_ms without holding the lock. */
static void sleep_on_fd(struct vb_conn *c, int timeout_ms)
{
	struct epoll_event ev;

	if (timeout_ms != 0)
		epoll_wait(c->epfd, &ev, 1, timeout_ms);
}

int vb_poll(struct vb_conn *c, int timeout_ms)
{
	uint64_t deadline;
	int rc;

	if (!c)
		return VB_EINVAL;
	if (!(c->o.flags & VB_OPT_BUSY_POLL)) {
		rc = vb_process(c); /* post what is staged before sleeping */
		if (rc == 0 && timeout_ms != 0 && c->o.spin_us > 0 &&
		    atomic_load(&c->recent_work))
			rc = vb_spin(c, c->o.spin_us);
		if (rc == 0) {
			sleep_on_fd(c, timeout_ms);
			rc = vb_process(c);
		}
		atomic_store(&c->recent_work, rc > 0);
		return rc;
	}
	deadline = timeout_ms < 0 ? UINT64_MAX :
				    vbi_client_now_ns() +
					    (uint64_t)timeout_ms * 1000000ull;
	for (;;) {
		rc = vb_process(c);
		if (rc != 0 || atomic_load(&c->stop) ||
		    vbi_client_now_ns() >= deadline)
			return rc;
	}
}

int vb_run(struct vb_conn *c)
{
	int rc;

	if (!c)
		return VB_EINVAL;
	atomic_store(&c->stop, false);
	while (!atomic_load(&c->stop)) {
		rc = vb_poll(c, 1000);
		if (rc == VB_ECLOSED && c->drained)
			return VB_OK; /* vb_drain() completed */
		if (rc == VB_ECLOSED)
			return c->close_err ? c->close_err : VB_ECLOSED;
	}
	return VB_OK;
}

void vb_stop(struct vb_conn *c)
{
	uint64_t one = 1;

	if (!c)
		return;
	atomic_store(&c->stop, true);
	/* Wake a vb_poll sleeping in epoll_wait; async-signal-safe. */
	if (write(c->efd, &one, sizeof(one)) < 0)
		return;
}

int vbi_client_wait(struct vb_conn *c, bool (*done)(struct vb_conn *, void *),
		    void *arg, uint64_t deadline_ns)
{
	uint64_t now;
	int ms, rc;

	for (;;) {
		if (done(c, arg))
			return VB_OK;
		if (c->state == CS_CLOSED)
			return VB_ECLOSED;
		now = vbi_client_now_ns();
		if (deadline_ns && now >= deadline_ns)
			return VB_ETIMEDOUT;
		ms = 100;
		if (deadline_ns && (deadline_ns - now) / 1000000ull < 100)
			ms = (int)((deadline_ns - now) / 1000000ull) + 1;
		if (c->o.flags & VB_OPT_BUSY_POLL)
			ms = 0;
		rc = process(c);
		/* A blocking call waits for something it just asked for (a
		 * reply, a Pong): with spin_us, poll for it before sleeping. */
		if (rc == 0 && ms != 0 && c->o.spin_us > 0 && !done(c, arg) &&
		    c->state != CS_CLOSED)
			rc = spin(c, c->o.spin_us);
		if (rc == 0 && !done(c, arg) && c->state != CS_CLOSED) {
			if (c->locked)
				pthread_mutex_unlock(&c->lock);
			sleep_on_fd(c, ms);
			if (c->locked)
				pthread_mutex_lock(&c->lock);
		}
	}
}

/* ---- state -------------------------------------------------------------- */

int vb_stats(struct vb_conn *c, struct vb_stats *s)
{
	struct vb_stats all;
	struct vbi_tp_stats ts;

	if (!c || !s || s->sz < sizeof(s->sz))
		return VB_EINVAL;
	client_lock(c);
	all = c->st;
	all.sz = s->sz < sizeof(all) ? s->sz : sizeof(all);
	all.pending_msgs = c->out_msgs;
	all.pending_bytes = c->out_bytes;
	all.max_msg = 0;
	all.max_payload = 0;
	if (c->state == CS_OPEN && c->vc) {
		struct vbi_conn_stats cs;

		vbi_conn_stats(c->vc, &cs);
		all.max_msg = cs.peer_max_msg;
		all.max_payload = cs.peer_max_payload;
	}
	all.large_msgs_in = c->large.done;
	all.large_aborted = c->large.aborted;
	all.large_dropped = c->large.dropped;
	vbi_tp_stats_all(&ts);
	all.mr_registered = ts.mr_registered;
	all.servers = vbi_pool_count(c->pool);
	if (c->dir) {
		all.direct_msgs_in = c->dir->msgs_in;
		all.direct_msgs_out = c->dir->msgs_out;
		all.direct_peers = c->dir->npeers;
		all.direct_refused = c->dir->refused + c->dir->dropped;
		all.direct_failed = c->dir->paths_failed;
		all.direct_mem = vbi_direct_mem(c);
		all.direct_resent = c->dir->resent;
		all.direct_resent_in = c->dir->resent_in;
		all.direct_resent_dup = c->dir->resent_dup;
		all.direct_resent_lost = c->dir->resends_lost;
		vbi_direct_pub_fanout(c, &all.direct_fanout_gathered,
				      &all.direct_fanout_copied);
	}
	memcpy(s, &all, all.sz);
	client_unlock(c);
	return VB_OK;
}

int vb_is_connected(struct vb_conn *c)
{
	int open;

	if (!c)
		return 0;
	client_lock(c);
	open = c->state == CS_OPEN;
	client_unlock(c);
	return open;
}

int vb_conn_server_url(struct vb_conn *c, char *buf, size_t len)
{
	char u[VBI_POOL_URL_LEN];
	int rc;

	if (!c || !buf)
		return VB_EINVAL;
	client_lock(c);
	rc = vbi_pool_url(c->state == CS_OPEN ? &c->open_url :
						&vbi_pool_current(c->pool)->url,
			  u, sizeof(u));
	client_unlock(c);
	if (rc == VB_OK && strlen(u) >= len)
		rc = VB_ENOSPC;
	if (rc == VB_OK)
		memcpy(buf, u, strlen(u) + 1);
	return rc;
}
