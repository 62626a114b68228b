/*
 * drain.c - ending a subscription or a whole connection without losing
 * what is in flight (vb_sub_drain, vb_sub_drain_wait, vb_drain; see
 * verbus/verbus.h), as nats.c's natsSubscription_Drain and
 * natsConnection_Drain.
 *
 * Decisions a reader must know.
 *
 * A Pong is the barrier.  Draining a subscription sends its Unsubscribe,
 * then a Ping.  The broker answers a Ping only once it has processed what
 * came before it (the Unsubscribe: nothing more is routed to the
 * subscription) and has handed the transport everything it queued for us
 * before it (daemon/subs.c); the session hands control messages up in
 * order with the frames before them.  So once the Pong is seen, every
 * message the broker routed to the subscription has been delivered to its
 * callback: the drain is over and the subscription is freed.  A connection
 * drain does that for every subscription at once (one Ping), lets the
 * requests still waiting have their replies (or their own timeouts), then
 * refuses publishing and sends a last Ping behind what is queued: its
 * Pong means that everything published has reached the broker and been
 * routed, and the connection closes.
 *
 * Asynchronous, driven by the connection's loop.  vb_drain() and
 * vb_sub_drain() queue messages and return; vbi_drain_step(), from every
 * process(), sees the Pongs and the deadlines and ends drains.  So a drain
 * makes progress however the application drives the connection (vb_run()
 * in another thread, its own loop on vb_fd(), a blocking call such as
 * vb_sub_drain_wait()), and its end (VB_EV_DRAINED, VB_EV_CLOSED) is
 * reported from inside that loop, never from the call that started it.
 *
 * A loss ends what it interrupts.  Messages in flight when a connection
 * breaks are lost with it (at most once), so a subscription drain that has
 * not seen its Pong ends then, with VB_ECLOSED.  A connection drain goes
 * on: its subscriptions are over, its publishes stay queued, and its last
 * Ping goes again on the next connection, within its deadline.
 */
#include "clients/lib/client.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

/* vb_sub_drain_wait()'s view of the drain it waits for. */
struct sub_drain_wait {
	bool done;
	int err; /* VB_OK, VB_ETIMEDOUT or VB_ECLOSED once done */
};

/* One subscription's drain. */
struct sub_drain {
	uint64_t deadline_ns; /* 0: none (in a vb_drain(): the connection's) */
	bool sent; /* its Unsubscribe was queued (a connection was open) */
	uint64_t gen; /* on that connection */
	uint64_t ping; /* the Ping after it; 0: still to send */
	bool quiet; /* no VB_EV_DRAINED: part of vb_drain(), or waited for */
	bool expired; /* past the deadline: deliveries dropped since */
	struct sub_drain_wait *waiter; /* vb_sub_drain_wait()'s, or NULL */
};

/* What a connection drain waits for, in order. */
enum conn_drain_phase {
	CD_SUBS, /* the subscriptions' drains */
	CD_REQUESTS, /* the requests still waiting for a reply */
	CD_FLUSH, /* publishing refused: the last Ping's Pong */
};

struct conn_drain {
	enum conn_drain_phase phase;
	uint64_t deadline_ns; /* 0: none */
	int timeout_ms; /* as given, for the messages */
	uint64_t ping; /* CD_FLUSH: the last Ping; 0: still to send */
	uint64_t gen; /* on this connection */
};

/* Not an error: the drain goes on. */
#define DRAIN_GOES_ON 1

static uint64_t deadline_after(int timeout_ms)
{
	if (timeout_ms < 0)
		return 0;
	/* An upper bound of now, without a system call: a drain may end up
	 * to one clock tick late, never early. */
	return vbi_client_later_ns() + (uint64_t)timeout_ms * 1000000ull;
}

/* ---- subscriptions ------------------------------------------------------ */

/*
 * Whether every message routed to @s before its Unsubscribe has been
 * handed to the application, once the Pong is in: the callback ran for
 * each (the session delivers frames before the control messages behind
 * them), and a synchronous one's queue is empty: vb_next_msg() took
 * them (it then ends: VB_ECLOSED after the last).
 */
static bool sub_delivered_all(const struct vb_sub *s)
{
	/* A large message whose FIRST came before the Pong was routed
	 * before it: its stream is awaited (it ends whole or aborted). */
	if (s->c->large.parts && vbi_large_partials(&s->c->large, s->sid))
		return false;
	return !s->sync || s->q_head == NULL; /* vb_next_msg() took them */
}

/* Start draining @s: its Unsubscribe (@unsub, owned; NULL if no connection
 * is open) goes in the queue.  The Ping follows (drain_ping_subs). */
static void sub_drain_start(struct vb_conn *c, struct vb_sub *s,
			    struct sub_drain *d, struct out_item *unsub)
{
	if (unsub) {
		unsub->sid = s->sid;
		unsub->num = 0; /* now */
		vbi_outq_append(c, unsub);
		d->sent = true;
		d->gen = c->gen;
	}
	s->drain = d;
	c->sub_drains++;
}

/* One Ping behind the Unsubscribes that have none yet (a failed
 * allocation is tried again at the next step). */
static void drain_ping_subs(struct vb_conn *c)
{
	struct vb_sub *s, *tmp;
	uint64_t id = 0;

	if (c->state != CS_OPEN)
		return;
	HASH_ITER(hh, c->subs, s, tmp)
	{
		struct sub_drain *d = s->drain;

		if (!d || !d->sent || d->ping || d->gen != c->gen)
			continue;
		/* A direct subscription's: its Pong also waits for the
		 * direct publishers that may still write to it (they switch
		 * off, and what they wrote comes first: PROTOCOL.md). */
		if (!id && !(id = vbi_diag_ping_ex(c, c->dir != NULL)))
			return;
		d->ping = id;
	}
}

/* Where @s's drain stands: DRAIN_GOES_ON, or how it ends. */
static int sub_drain_state(const struct vb_conn *c, const struct vb_sub *s,
			   uint64_t now)
{
	const struct sub_drain *d = s->drain;

	if (!d->sent)
		return VB_OK; /* no connection: nothing was in flight */
	if (c->state != CS_OPEN || c->gen != d->gen)
		return VB_ECLOSED; /* what was in flight went with it */
	if (d->expired)
		return VB_ETIMEDOUT; /* messages were dropped */
	if (d->ping && c->pong_id >= d->ping && sub_delivered_all(s))
		return VB_OK;
	if (d->deadline_ns && now >= d->deadline_ns)
		return VB_ETIMEDOUT;
	return DRAIN_GOES_ON;
}

/*
 * End @s's drain with @err: tell the waiter, announce it (VB_EV_DRAINED,
 * @s valid during the event), and free @s.  Its Unsubscribe went when the
 * drain began (or no connection was open): removing it is local.  Returns
 * whether application code ran (the event), which may have changed the
 * table.
 */
static bool sub_drain_finish(struct vb_conn *c, struct vb_sub *s, int err)
{
	struct sub_drain *d = s->drain;
	bool in_cb = s->in_cb, announced = false;
	char why[96];

	s->drain = NULL;
	c->sub_drains--;
	if (d->waiter) {
		d->waiter->done = true;
		d->waiter->err = err;
	}
	/* Within vb_drain() the connection's line says it all. */
	if (err == VB_ETIMEDOUT && !c->drain)
		vbi_warn("%s: subscription %" PRIu32 " (%s): drain timed out "
			 "after %" PRIu64 " messages; later ones are dropped",
			 c->name, s->sid, s->pattern, s->delivered);
	if (!d->quiet) {
		snprintf(why, sizeof(why), "%s",
			 err == VB_OK ? "drained" :
			 err == VB_ETIMEDOUT ?
					"drain timed out" :
					"connection lost while draining");
		/* Freed only after the event, whatever the application
		 * does with @s in it (vb_unsubscribe). */
		s->in_cb = true;
		vbi_client_event(c, VB_EV_DRAINED, err, why, s, s->delivered);
		s->in_cb = in_cb;
		announced = true;
	}
	free(d);
	if (!s->gone)
		vbi_subs_remove(s); /* frees it, or its delivery will; a
				     * synchronous one ends (vb_next_msg) */
	else
		vbi_subs_settle(s);
	return announced;
}

/* End every subscription drain that is over (@force: all, with @err). */
static void subs_step(struct vb_conn *c, uint64_t now, bool force, int err)
{
	struct vb_sub *s, *tmp;
	int st;

again:
	HASH_ITER(hh, c->subs, s, tmp)
	{
		if (!s->drain)
			continue;
		st = force ? err : sub_drain_state(c, s, now);
		if (st == DRAIN_GOES_ON)
			continue;
		/* An event may have unsubscribed others: walk again. */
		if (sub_drain_finish(c, s, st))
			goto again;
	}
}

bool vbi_drain_expired(struct vb_sub *s)
{
	struct sub_drain *d = s->drain;
	const struct conn_drain *cd = s->c->drain;
	uint64_t deadline = d->deadline_ns;

	if (d->expired)
		return true;
	if (cd && cd->deadline_ns && (!deadline || cd->deadline_ns < deadline))
		deadline = cd->deadline_ns;
	/* The precise clock: a turn that delivers many messages to a slow
	 * callback stops at the deadline, not at the end of the turn. */
	if (!deadline || vbi_client_now_ns() < deadline)
		return false;
	d->expired = true;
	return true;
}

void vbi_drain_sub_gone(struct vb_sub *s)
{
	struct sub_drain *d = s->drain;

	if (!d)
		return;
	s->drain = NULL;
	s->c->sub_drains--;
	if (d->waiter) {
		d->waiter->done = true;
		d->waiter->err = VB_OK; /* it is gone, as the waiter wants */
	}
	free(d);
}

/* Check @s and @timeout_ms for a drain; VB_OK or why not. */
static int sub_drain_check(const struct vb_sub *s, int timeout_ms)
{
	if (!s || s->gone || timeout_ms < -1)
		return VB_EINVAL;
	if (s->c->state == CS_CLOSED)
		return VB_ECLOSED;
	return VB_OK;
}

/* Begin draining @s (locked); VB_OK or VB_ENOMEM (nothing changed). */
static int sub_drain_begin(struct vb_conn *c, struct vb_sub *s, int timeout_ms,
			   bool quiet)
{
	struct out_item *unsub = NULL;
	struct sub_drain *d;

	d = calloc(1, sizeof(*d));
	if (!d)
		return VB_ENOMEM;
	if (c->state == CS_OPEN && !(unsub = vbi_outq_new(OUT_UNSUB, 0))) {
		free(d);
		return VB_ENOMEM;
	}
	d->deadline_ns = deadline_after(timeout_ms);
	d->quiet = quiet;
	sub_drain_start(c, s, d, unsub);
	drain_ping_subs(c);
	vbi_client_arm_timer(c);
	vbi_client_wake(c); /* the loop ends it, even with nothing sent */
	return VB_OK;
}

int vb_sub_drain(struct vb_sub *s, int timeout_ms)
{
	struct vb_conn *c;
	int rc;

	if (!s)
		return VB_EINVAL;
	c = s->c;
	client_lock(c);
	rc = sub_drain_check(s, timeout_ms);
	if (rc == VB_OK && s->drain)
		rc = VB_ESTATE; /* draining already */
	if (rc == VB_OK)
		rc = sub_drain_begin(c, s, timeout_ms, false);
	client_unlock(c);
	return rc;
}

static bool sub_drain_waited(struct vb_conn *c, void *arg)
{
	(void)c;
	return ((struct sub_drain_wait *)arg)->done;
}

int vb_sub_drain_wait(struct vb_sub *s, int timeout_ms)
{
	struct sub_drain_wait w = { 0 };
	struct vb_conn *c;
	int rc;

	if (!s)
		return VB_EINVAL;
	c = s->c;
	client_lock(c);
	rc = sub_drain_check(s, timeout_ms);
	if (rc == VB_OK && (s->in_cb || (s->drain && s->drain->waiter)))
		rc = VB_ESTATE; /* its own callback, or waited for already */
	if (rc == VB_OK && !s->drain)
		rc = sub_drain_begin(c, s, timeout_ms, true);
	if (rc)
		goto out;
	s->drain->waiter = &w;
	rc = vbi_client_wait(c, sub_drain_waited, &w,
			     deadline_after(timeout_ms));
	if (!w.done) {
		/* Our timeout, or the connection closed for good: it ends
		 * now (@s is alive: its end would have told us). */
		if (rc == VB_OK)
			rc = VB_ETIMEDOUT;
		sub_drain_finish(c, s, rc);
	} else {
		rc = w.err;
	}
out:
	client_unlock(c);
	return rc;
}

/* ---- the connection ----------------------------------------------------- */

/*
 * Close @c for good at the end of its drain: VB_OK (everything in flight
 * delivered, everything queued sent and routed) or VB_ETIMEDOUT.  The
 * transport connection goes (the broker drops what is ours), and the
 * application hears VB_EV_CLOSED; vb_close() frees what remains.
 */
static void conn_drain_close(struct vb_conn *c, int err)
{
	struct conn_drain *d = c->drain;
	const char *why = err ? "drain timed out" : "drained";

	if (err)
		vbi_warn("%s: drain timed out after %d ms: %u subscriptions "
			 "not drained, %" PRIu64 " messages not sent; closing",
			 c->name, d->timeout_ms, c->sub_drains, c->out_msgs);
	if (c->sub_drains)
		subs_step(c, 0, true, err ? err : VB_ECLOSED);
	c->drain = NULL;
	free(d);
	c->state = CS_CLOSED;
	c->close_err = err;
	c->drained = err == VB_OK;
	snprintf(c->close_reason, sizeof(c->close_reason), "%s", why);
	if (c->vc) {
		vbi_conn_close(c->vc); /* its closed callback finds no match */
		c->vc = NULL;
	}
	c->reserving = false;
	vbi_outq_free_all(c);
	vbi_request_expire(c, 0, true);
	vbi_client_event(c, VB_EV_CLOSED, err, why, NULL, 0);
}

static void conn_drain_step(struct vb_conn *c, uint64_t now)
{
	struct conn_drain *d = c->drain;

	if (c->state == CS_CLOSED) {
		/* Closed otherwise (reconnecting gave up): its VB_EV_CLOSED
		 * said why. */
		c->drain = NULL;
		free(d);
		return;
	}
	if (d->deadline_ns && now >= d->deadline_ns) {
		conn_drain_close(c, VB_ETIMEDOUT);
		return;
	}
	switch (d->phase) {
	case CD_SUBS:
		if (c->sub_drains)
			return;
		d->phase = CD_REQUESTS;
		__attribute__((fallthrough)); /* gcc and clang both take it */
	case CD_REQUESTS:
		if (c->reqs)
			return;
		d->phase = CD_FLUSH;
		c->pubs_closed = true;
		__attribute__((fallthrough));
	case CD_FLUSH:
		if (c->state != CS_OPEN) {
			/* Reconnecting: queued messages wait for the next
			 * connection; with none, nothing is left to send. */
			if (!c->out_head)
				conn_drain_close(c, VB_OK);
			return;
		}
		if (!d->ping || d->gen != c->gen) {
			d->ping = vbi_diag_ping(c);
			d->gen = c->gen;
			return;
		}
		if (c->pong_id >= d->ping)
			conn_drain_close(c, VB_OK);
		return;
	}
}

void vbi_drain_step(struct vb_conn *c)
{
	uint64_t now = vbi_client_now_ns();

	/* The connection's deadline first: its warning counts what its
	 * subscriptions had left. */
	if (c->drain && c->drain->deadline_ns && now >= c->drain->deadline_ns &&
	    c->state != CS_CLOSED) {
		conn_drain_close(c, VB_ETIMEDOUT);
		return;
	}
	if (c->sub_drains) {
		drain_ping_subs(c);
		subs_step(c, now, false, VB_OK);
	}
	if (c->drain)
		conn_drain_step(c, now);
}

uint64_t vbi_drain_next_deadline(const struct vb_conn *c)
{
	const struct vb_sub *s;
	uint64_t next = c->drain ? c->drain->deadline_ns : 0;

	if (!c->sub_drains)
		return next;
	for (s = c->subs; s; s = s->hh.next)
		if (s->drain && s->drain->deadline_ns &&
		    (!next || s->drain->deadline_ns < next))
			next = s->drain->deadline_ns;
	return next;
}

int vb_drain(struct vb_conn *c, int timeout_ms)
{
	struct vb_sub *s, *tmp;
	struct sub_drain **ds = NULL;
	struct out_item **us = NULL;
	struct conn_drain *d;
	size_t n = 0, i;
	int rc;

	if (!c || timeout_ms < -1)
		return VB_EINVAL;
	client_lock(c);
	rc = VB_ECLOSED;
	if (c->state == CS_CLOSED)
		goto out;
	rc = VB_ESTATE;
	if (c->drain)
		goto out; /* draining already */
	/* Everything first, so that running out of memory changes nothing. */
	rc = VB_ENOMEM;
	d = calloc(1, sizeof(*d));
	ds = calloc(HASH_COUNT(c->subs) + 1, sizeof(*ds));
	us = calloc(HASH_COUNT(c->subs) + 1, sizeof(*us));
	if (!d || !ds || !us)
		goto out_free;
	HASH_ITER(hh, c->subs, s, tmp)
	{
		/* The inbox stays, for the replies to requests waiting; it
		 * goes with the connection. */
		if (s->drain || s == c->inbox_sub)
			continue;
		ds[n] = calloc(1, sizeof(**ds));
		if (!ds[n])
			goto out_free;
		ds[n]->quiet = true;
		n++;
		if (c->state == CS_OPEN &&
		    !(us[n - 1] = vbi_outq_new(OUT_UNSUB, 0)))
			goto out_free;
	}
	i = 0;
	HASH_ITER(hh, c->subs, s, tmp)
	{
		if (s->drain || s == c->inbox_sub)
			continue;
		sub_drain_start(c, s, ds[i], us[i]);
		i++;
	}
	d->phase = CD_SUBS;
	d->deadline_ns = deadline_after(timeout_ms);
	d->timeout_ms = timeout_ms;
	c->drain = d;
	drain_ping_subs(c);
	vbi_client_arm_timer(c);
	vbi_client_wake(c);
	rc = VB_OK;
	goto out;
out_free:
	for (i = 0; i <= n && ds && us; i++) {
		free(ds[i]);
		free(us[i]);
	}
	free(d);
out:
	free(ds);
	free(us);
	client_unlock(c);
	return rc;
}

int vb_is_draining(struct vb_conn *c)
{
	int draining;

	if (!c)
		return 0;
	client_lock(c);
	draining = c->drain != NULL;
	client_unlock(c);
	return draining;
}

void vbi_drain_free_all(struct vb_conn *c)
{
	struct vb_sub *s;

	for (s = c->subs; s && c->sub_drains; s = s->hh.next) {
		struct sub_drain *d = s->drain;

		if (!d)
			continue;
		s->drain = NULL;
		c->sub_drains--;
		if (d->waiter) {
			d->waiter->done = true;
			d->waiter->err = VB_ECLOSED;
		}
		free(d);
	}
	free(c->drain);
	c->drain = NULL;
	c->pubs_closed = false;
}
