/*
 * syncsub.c - synchronous subscriptions: vb_subscribe_sync() and
 * vb_next_msg() (verbus/verbus.h), for programs that pull messages instead
 * of taking callbacks (nats.c's natsSubscription_NextMsg).
 *
 * Decisions a reader must know.
 *
 * Zero copy while the application keeps up.  A message for a synchronous
 * subscription is queued as it arrived: the delivery's reference to its
 * frame in the receive ring, which vb_next_msg() hands out as a held
 * message (vb_msg_hold).  But a ring is freed only over a released prefix,
 * so a queued frame holds back every frame after it, of any subscription
 * of the connection: one left queued while the rest of the traffic passes
 * would fill the ring, and the broker would pause its publishers and then
 * shed the connection (its slow-consumer policy).  So before each delivery,
 * queued messages that would hold more than half the ring (from the oldest
 * queued frame to the end of the arriving one), or a ring of an earlier
 * connection, are copied out of it, oldest first, and their frames
 * released (c->pinned lists them in ring order, so this costs one
 * comparison while nothing lags).  Only a consumer half a ring behind pays
 * a copy; its lag is then bounded by its pending limits (malloc'd memory,
 * as nats.c's queue), not by the ring.  A message vb_next_msg() returned
 * stays where it is: the application has pointers into it.
 *
 * Waiting.  vb_next_msg() progresses the connection itself, as vb_request()
 * does: it processes, and sleeps on vb_fd() without the lock.  With
 * VB_OPT_LOCKED another thread may do the same (vb_run): whichever thread
 * processes an arrival queues it, and a waiter that did not must wake at
 * once, not at the end of its sleep.  So a synchronous subscription of a
 * locked connection has an eventfd; a waiter asleep polls it beside
 * vb_fd(), and the thread that queues a message for it, ends or
 * unsubscribes it, or closes the connection for good, writes it (only while
 * someone sleeps: s->sleepers).  Nobody spins on the lock: a thread holds
 * it only to process or to take a message, and sleeps in poll(2) until the
 * connection has work or its subscription has a message.
 */
#include "clients/lib/client.h"

#include <poll.h>
#include <unistd.h>

/* ---- the queue ---------------------------------------------------------- */

static void pin(struct vb_conn *c, struct held_msg *h)
{
	h->pnext = NULL;
	h->pprev = c->pinned_tail;
	if (c->pinned_tail)
		c->pinned_tail->pnext = h;
	else
		c->pinned_head = h;
	c->pinned_tail = h;
}

void vbi_syncsub_unpin(struct vb_conn *c, struct held_msg *h)
{
	if (h->pprev)
		h->pprev->pnext = h->pnext;
	else
		c->pinned_head = h->pnext;
	if (h->pnext)
		h->pnext->pprev = h->pprev;
	else
		c->pinned_tail = h->pprev;
	h->pprev = h->pnext = NULL;
}

static void signal_sleepers(struct vb_sub *s)
{
	uint64_t one = 1;

	if (s->efd < 0 || !s->sleepers)
		return;
	if (write(s->efd, &one, sizeof(one)) < 0)
		return; /* the counter is full: a wake-up is pending anyway */
}

void vbi_syncsub_wake(struct vb_sub *s)
{
	signal_sleepers(s);
}

void vbi_syncsub_wake_all(struct vb_conn *c)
{
	struct vb_sub *s;

	for (s = c->subs; s; s = s->hh.next)
		signal_sleepers(s);
	for (s = c->ended; s; s = s->enext)
		signal_sleepers(s);
}

int vbi_syncsub_enqueue(struct vb_sub *s, const struct held_msg *h)
{
	struct held_msg *q = malloc(sizeof(*q));

	if (!q)
		return VB_ENOMEM;
	/* The delivery's reference (its frame, or a large message's
	 * buffer) becomes the queue's. */
	*q = *h;
	q->m.sub = s; /* a synchronous handle lives until vb_unsubscribe */
	q->copy = NULL;
	q->owner = s;
	q->prev = q->next = q->qnext = NULL;
	q->pprev = q->pnext = NULL;
	*s->q_tail = q;
	s->q_tail = &q->qnext;
	if (q->vc) /* in the ring; a large message is not */
		pin(s->c, q);
	vbi_pending_add(&s->pend, q->m.size);
	signal_sleepers(s);
	return VB_OK;
}

void vbi_syncsub_relieve(struct vb_conn *c, const struct vbi_conn *vc,
			 const struct vbi_frame_view *v)
{
	uint64_t end = v->pos + v->span;
	struct vbi_conn_stats cs;
	struct held_msg *h;

	if (!c->ring_size) {
		vbi_conn_stats(vc, &cs);
		c->ring_size = cs.ring_size;
	}
	/*
	 * A frame still referenced keeps its connection allocated, so an
	 * older connection's @vc is never the address of the current one:
	 * positions are compared within one ring only.
	 */
	while ((h = c->pinned_head) &&
	       (h->vc != vc || end - h->v.pos > c->ring_size / 2)) {
		/* Out of memory: it stays in the ring, which backs up
		 * (the broker's policy then); nothing is lost here, and the
		 * next delivery tries again. */
		if (vbi_msg_copy_out(h) != VB_OK)
			return;
		vbi_syncsub_unpin(c, h);
	}
}

/* The oldest queued message of @s, now the application's (in c->held). */
static struct held_msg *queue_take(struct vb_sub *s)
{
	struct vb_conn *c = s->c;
	struct held_msg *h = s->q_head;

	s->q_head = h->qnext;
	if (!s->q_head)
		s->q_tail = &s->q_head;
	h->qnext = NULL;
	if (h->vc)
		vbi_syncsub_unpin(c, h);
	h->prev = NULL;
	h->next = c->held;
	if (c->held)
		c->held->prev = h;
	c->held = h;
	s->delivered++;
	c->st.msgs_in++;
	c->st.bytes_in += h->m.size;
	return h;
}

/* ---- waiting ------------------------------------------------------------ */

/* Sleep up to @ms (-1: until woken) without the lock, until @c has work or
 * a message is queued for @s. */
static void sleep_unlocked(struct vb_sub *s, int ms)
{
	struct vb_conn *c = s->c;
	struct pollfd p[2] = {
		{ .fd = c->epfd, .events = POLLIN },
		{ .fd = s->efd, .events = POLLIN },
	};
	nfds_t n = s->efd >= 0 ? 2 : 1;
	uint64_t v;

	s->sleepers++;
	client_unlock(c);
	if (poll(p, n, ms) > 0 && n == 2 && (p[1].revents & POLLIN) &&
	    read(s->efd, &v, sizeof(v)) < 0)
		v = 0; /* another sleeper took it */
	client_lock(c);
	s->sleepers--;
}

/*
 * Progress @c until @s has a message queued (VB_OK), it ends or the
 * connection is closed for good (VB_ECLOSED), or the time is up
 * (VB_ETIMEDOUT: @timeout_ms 0 after one look, else at @deadline_ns, never
 * before).  Called and returns with the lock held.
 */
static int wait_msg(struct vb_sub *s, int timeout_ms, uint64_t deadline_ns)
{
	struct vb_conn *c = s->c;
	bool looked = false;
	uint64_t now;
	int rc, ms;

	for (;;) {
		if (s->q_head)
			return VB_OK;
		if (s->gone || s->ended || c->state == CS_CLOSED)
			return VB_ECLOSED;
		if (looked && timeout_ms == 0)
			return VB_ETIMEDOUT;
		now = vbi_client_now_ns();
		if (looked && deadline_ns && now >= deadline_ns)
			return VB_ETIMEDOUT;
		rc = vb_process(c); /* the lock is recursive */
		looked = true;
		if (rc != 0 || s->q_head || timeout_ms == 0)
			continue;
		/* As vb_request: the message may be a moment away. */
		if (c->o.spin_us > 0 && vb_spin(c, c->o.spin_us) != 0)
			continue;
		if (c->o.flags & VB_OPT_BUSY_POLL)
			continue; /* vb_fd() does not report messages */
		ms = -1;
		if (deadline_ns) {
			now = vbi_client_now_ns();
			if (now >= deadline_ns)
				continue;
			ms = (int)((deadline_ns - now + 999999u) / 1000000u);
		}
		if (!s->q_head && !s->gone && !s->ended)
			sleep_unlocked(s, ms);
	}
}

/* ---- the API ------------------------------------------------------------ */

int vb_subscribe_sync(struct vb_conn *c, const char *pattern, const char *queue,
		      struct vb_sub **out)
{
	if (!out)
		return VB_EINVAL;
	return vbi_subs_create(c, pattern, queue, 0, NULL, NULL, out);
}

int vb_next_msg(struct vb_sub *s, int timeout_ms, struct vb_msg **out)
{
	uint64_t deadline_ns = 0;
	struct vb_conn *c;
	int rc;

	if (!s || !out || timeout_ms < -1)
		return VB_EINVAL;
	c = s->c;
	client_lock(c);
	rc = VB_EINVAL;
	if (!s->sync || s->gone)
		goto out_unlock;
	if (timeout_ms > 0)
		deadline_ns =
			vbi_client_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	s->waiters++;
	rc = wait_msg(s, timeout_ms, deadline_ns);
	s->waiters--;
	if (rc == VB_OK)
		*out = &queue_take(s)->m;
	/* Another sleeper: there is more for it, or the news that it is
	 * over (an eventfd read wakes one of them only). */
	if (s->q_head || rc == VB_ECLOSED)
		signal_sleepers(s);
	vbi_subs_settle(s); /* unsubscribed meanwhile: the last one frees */
out_unlock:
	client_unlock(c);
	return rc;
}
