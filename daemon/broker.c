/*
 * broker.c - verbusd's engine: subscriptions, routing, slow consumers.
 *
 * Decisions a reader must know:
 *  - A published frame is not copied within a device.  It stays in the
 *    publisher's receive ring on the broker; each matching subscription gets
 *    a vbi_conn_forward() (the device gathers the payload from that ring;
 *    to a subscriber on another device the transport copies it) and the
 *    broker drops its own reference at once.  The frame's space, and so
 *    the publisher's credit, comes back when the last write reading it has
 *    completed.  A forward that fails is counted, logged once per
 *    connection and reported to the subscriber as dropped: never silent.
 *  - A subscriber without room (its ring or forward queue full) gets the
 *    slow-consumer policy.  block: the delivery waits in the subscriber's
 *    pending queue holding a reference to the frame, in order.  Once that
 *    queue is pending_max deep, the publisher is paused (its frames stay
 *    in its ring, so it runs out of room and sees VB_EAGAIN) until the
 *    queue drains to half: backpressure, nothing lost.  A subscriber that
 *    makes no progress for block_timeout_ms gets the fallback.  drop:
 *    counted, and the subscriber is told with a Dropped message.
 *    disconnect: the subscriber is closed.  Once a subscriber has pending
 *    deliveries, new ones queue behind them so that per-publisher order
 *    holds.
 *  - Nothing is allocated per message: the match result and the pending
 *    queues grow to their high-water mark and stay.
 */
#include "daemon/broker.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/subject.h"
#include "transport/transport.h"

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

/* uthash: out of memory is an error we report, never exit(). */
#define uthash_nonfatal_oom(elt) ((elt)->oom = true)
#include "core/hash.h"

#define TICK_MS 50 /* timers: block timeouts, notices owed */
/* What a callback's arg points at: the broker (before open) or a bconn. */
#define KIND_BROKER 0x42524b52u
#define KIND_CONN 0x434f4e4eu
#define PINGS_MAX 16 /* Pongs owed per connection at most */
#define MAX_CLIENT_RING (64u << 20) /* largest client ring we mirror */
/* Deliveries a pending queue takes past pending_max: those of the frames
 * already being routed when the publishers were paused. */
#define PEND_SLACK 1024u

struct bconn;

/* One subscription of one connection. */
struct bsub {
	struct vbi_sub s; /* in the broker's trie; s.owner is this */
	struct bconn *bc;
	uint32_t sid; /* the client's id for it */
	char *subject; /* the pattern, NUL-terminated */
	char *queue; /* queue group, or NULL */
	uint64_t max_msgs; /* auto-unsubscribe after this many; 0: never */
	uint64_t delivered; /* deliveries made or queued to be made */
	uint64_t dropped; /* dropped by the policy, in all */
	bool dropped_owed; /* a Dropped notice must go out */
	bool oom; /* uthash: an insert failed */
	UT_hash_handle hh; /* bc->subs, by sid */
};

/* A delivery waiting for room at a subscriber. */
struct pend {
	struct vbi_conn *src; /* the publisher (may be closed) */
	struct vbi_frame_view v; /* held: one reference */
	uint32_t sid;
};

/* Connections from one address in their handshake (b->hs_by_addr). */
struct hs_addr {
	char addr[64]; /* the peer's address, without its port */
	uint32_t n;
	bool oom; /* uthash: the insert failed */
	UT_hash_handle hh;
};

/* One client connection. */
struct bconn {
	uint32_t kind; /* KIND_CONN: first, see conn_of() */
	struct vbd_broker *b;
	struct vbi_conn *c;
	uint64_t cid;
	char name[64];
	char peer[64];
	int64_t start_time;
	struct bsub *subs; /* by sid */
	uint32_t nsubs;
	struct pend *pend; /* a ring of pend_cap entries */
	size_t pend_head, pend_n, pend_cap;
	uint64_t blocked_since; /* ms: waiting without progress since; 0:
				 * nothing waits for it */
	uint64_t pings[PINGS_MAX]; /* Pongs owed, oldest first */
	unsigned npings;
	bool drops_owed; /* some sub has dropped_owed */
	bool fwd_fail_logged; /* a failed forward to it was logged */
	/* Stall detection (tick): the transport's progress count when last
	 * looked at, and whether this stall was counted as a slow consumer
	 * and has shed its forwards (drop: its deliveries are then dropped
	 * until it moves again). */
	uint64_t progress_seen;
	bool slow_counted;
	bool shed;
	bool paused; /* as a publisher: paused for a full subscriber */
	bool closing;
	uint64_t msgs_in, bytes_in, msgs_out, bytes_out, drops, waits;
	struct bconn *prev, *next; /* the broker's list, by cid */
	bool oom;
	const struct vbd_user *user; /* what it proved; NULL: no auth */
	UT_hash_handle hh; /* b->by_cid */
};

struct vbd_broker {
	uint32_t kind; /* KIND_BROKER: first, see conn_of() */
	struct vbd_config cfg;
	/* One transport context and listener per transport listened on:
	 * listen's, and listen_tcp's if set.  With two, @epfd watches both
	 * contexts' fds (vbd_broker_fd). */
	struct vbi_tp *tp[2];
	struct vbi_listener *l[2];
	unsigned ntp;
	int epfd;
	struct vbi_sublist *sl;
	struct vbi_match match; /* reused for every message */
	struct bconn *by_cid; /* uthash */
	struct bconn *head, *tail; /* every connection, by cid */
	uint64_t nconns, next_cid;
	uint64_t nhandshakes; /* accepted, not yet open or closed */
	struct hs_addr *hs_by_addr; /* handshakes in progress per address */
	uint32_t npaused; /* publishers paused (bconn.paused) */
	uint64_t last_tick;
	bool shutting_down;
	int64_t start_time;
	uint64_t start_ms;
	char listen[80];
	struct vbd_stats_server st; /* the monotonic counters */
	struct vbd_auth *auth; /* owned; NULL: everyone admitted */
};

/* ---- control messages to a client ------------------------------------ */

static void send_notice(struct bconn *bc, int err, uint32_t sid, uint64_t seq,
			const char *reason)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__Notice n = VERBUS__NOTICE__INIT;

	n.code = (uint32_t)-err;
	n.reason = (char *)reason;
	n.sid = sid;
	n.seq = seq;
	m.body_case = VERBUS__CONTROL__BODY_NOTICE;
	m.notice = &n;
	/* Best effort: a client out of credit loses a notice, not data. */
	if (vbi_conn_send_ctrl(bc->c, &m) != VB_OK)
		vbi_debug("conn %s: notice dropped: %s", bc->name, reason);
}

/* Send the Pongs and Dropped notices owed, as credit allows. */
static void send_owed(struct bconn *bc)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	struct bsub *s, *tmp;

	while (bc->npings) {
		Verbus__Pong p = VERBUS__PONG__INIT;

		p.id = bc->pings[0];
		m.body_case = VERBUS__CONTROL__BODY_PONG;
		m.pong = &p;
		if (vbi_conn_send_ctrl(bc->c, &m) != VB_OK)
			return;
		memmove(bc->pings, bc->pings + 1,
			--bc->npings * sizeof(bc->pings[0]));
	}
	if (!bc->drops_owed)
		return;
	HASH_ITER(hh, bc->subs, s, tmp)
	{
		Verbus__Dropped d = VERBUS__DROPPED__INIT;

		if (!s->dropped_owed)
			continue;
		d.sid = s->sid;
		d.count = s->dropped;
		m.body_case = VERBUS__CONTROL__BODY_DROPPED;
		m.dropped = &d;
		if (vbi_conn_send_ctrl(bc->c, &m) != VB_OK)
			return;
		s->dropped_owed = false;
	}
	bc->drops_owed = false;
}

/* ---- subscriptions ----------------------------------------------------- */

static void sub_free(struct vbd_broker *b, struct bsub *s)
{
	struct bconn *bc = s->bc;

	vbi_sublist_remove(b->sl, &s->s);
	HASH_DEL(bc->subs, s);
	bc->nsubs--;
	b->st.subs--;
	free(s->subject);
	free(s->queue);
	free(s);
}

static struct bsub *sub_find(struct bconn *bc, uint32_t sid)
{
	struct bsub *s = NULL;

	HASH_FIND(hh, bc->subs, &sid, sizeof(sid), s);
	return s;
}

static void on_subscribe(struct bconn *bc, const Verbus__Subscribe *m)
{
	struct vbd_broker *b = bc->b;
	size_t plen = strlen(m->subject), qlen = strlen(m->queue);
	struct bsub *s;
	int rc;

	if (vbi_pattern_check(m->subject, plen) != VB_OK) {
		send_notice(bc, VB_EINVAL, m->sid, 0,
			    "invalid subject pattern");
		return;
	}
	if (qlen && vbi_queue_check(m->queue, qlen) != VB_OK) {
		send_notice(bc, VB_EINVAL, m->sid, 0, "invalid queue group");
		return;
	}
	if (sub_find(bc, m->sid)) {
		send_notice(bc, VB_EINVAL, m->sid, 0, "sid already in use");
		return;
	}
	if (!vbd_user_may_subscribe(bc->user, m->subject, plen)) {
		char subj[VBI_LOG_ESCAPE_MAX];

		b->st.denied_subscribe++;
		/* Subjects may hold any byte from 0x80 up: escaped. */
		vbi_log_escape(subj, sizeof(subj), m->subject, plen);
		vbi_info("conn cid %" PRIu64 " %s (user %s): subscribe to %s "
			 "denied",
			 bc->cid, bc->name, vbd_user_name(bc->user), subj);
		send_notice(bc, VB_EACCES, m->sid, 0,
			    "permission denied: subscribe");
		return;
	}
	if (bc->nsubs >= b->cfg.max_subs) {
		send_notice(bc, VB_ENOSPC, m->sid, 0,
			    "too many subscriptions on this connection");
		return;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		goto out_nomem;
	s->bc = bc;
	s->sid = m->sid;
	s->max_msgs = m->max_msgs;
	s->subject = strdup(m->subject);
	s->queue = qlen ? strdup(m->queue) : NULL;
	if (!s->subject || (qlen && !s->queue))
		goto out_free;
	vbi_sub_init(&s->s, s->subject, plen, s->queue, qlen, s);
	rc = vbi_sublist_insert(b->sl, &s->s);
	if (rc)
		goto out_free;
	HASH_ADD(hh, bc->subs, sid, sizeof(s->sid), s);
	if (s->oom) {
		vbi_sublist_remove(b->sl, &s->s);
		goto out_free;
	}
	bc->nsubs++;
	b->st.subs++;
	if (vbi_log_enabled(VBI_LOG_DEBUG)) {
		char subj[VBI_LOG_ESCAPE_MAX], queue[VBI_LOG_ESCAPE_MAX];

		vbi_log_escape(subj, sizeof(subj), s->subject, plen);
		vbi_log_escape(queue, sizeof(queue), m->queue, qlen);
		vbi_debug("conn %s: sid %u subscribes to %s%s%s", bc->name,
			  s->sid, subj, qlen ? " in queue " : "", queue);
	}
	return;
out_free:
	free(s->subject);
	free(s->queue);
	free(s);
out_nomem:
	send_notice(bc, VB_ENOMEM, m->sid, 0, "broker out of memory");
}

static void on_unsubscribe(struct bconn *bc, const Verbus__Unsubscribe *m)
{
	struct bsub *s = sub_find(bc, m->sid);

	if (!s) {
		send_notice(bc, VB_EINVAL, m->sid, 0, "no such subscription");
		return;
	}
	if (m->max_msgs == 0 || s->delivered >= m->max_msgs)
		sub_free(bc->b, s);
	else
		s->max_msgs = m->max_msgs;
}

/* ---- delivery ---------------------------------------------------------- */

static int pend_grow(struct bconn *bc)
{
	size_t cap = bc->pend_cap ? bc->pend_cap * 2 : 64, i;
	struct pend *p;

	if (cap > bc->b->cfg.pending_max + PEND_SLACK)
		cap = bc->b->cfg.pending_max + PEND_SLACK;
	if (cap <= bc->pend_cap)
		return VB_ENOSPC;
	p = malloc(cap * sizeof(*p));
	if (!p)
		return VB_ENOMEM;
	for (i = 0; i < bc->pend_n; i++)
		p[i] = bc->pend[(bc->pend_head + i) % bc->pend_cap];
	free(bc->pend);
	bc->pend = p;
	bc->pend_cap = cap;
	bc->pend_head = 0;
	return VB_OK;
}

/* Queue a delivery behind the others (block policy); takes a reference. */
static int pend_push(struct bconn *bc, struct vbi_conn *src,
		     const struct vbi_frame_view *v, uint32_t sid)
{
	struct pend *p;
	int rc;

	if (bc->pend_n == bc->pend_cap) {
		rc = pend_grow(bc);
		if (rc)
			return rc;
	}
	rc = vbi_conn_hold(src, v);
	if (rc)
		return rc;
	p = &bc->pend[(bc->pend_head + bc->pend_n++) % bc->pend_cap];
	p->src = src;
	p->v = *v;
	p->sid = sid;
	if (!bc->blocked_since)
		bc->blocked_since = vbi_clock_coarse_ms();
	return VB_OK;
}

/* Let every paused publisher go on (those still blocked pause again). */
static void resume_publishers(struct vbd_broker *b)
{
	struct bconn *bc;

	if (b->npaused == 0)
		return;
	for (bc = b->head; bc; bc = bc->next) {
		if (bc->paused) {
			bc->paused = false;
			vbi_conn_pause(bc->c, 0);
		}
	}
	b->npaused = 0;
}

static void pend_pop(struct bconn *bc)
{
	struct pend *p = &bc->pend[bc->pend_head];

	vbi_conn_release(p->src, &p->v);
	bc->pend_head = (bc->pend_head + 1) % bc->pend_cap;
	if (--bc->pend_n == 0)
		bc->blocked_since = 0;
	if (bc->pend_n == bc->b->cfg.pending_max / 2)
		resume_publishers(bc->b);
}

/* A delivery to @bc's subscription @sid is lost: the subscriber is told
 * with a Dropped notice. */
static void owe_dropped(struct bconn *bc, uint32_t sid)
{
	struct bsub *s = sub_find(bc, sid);

	bc->drops++;
	if (s) {
		s->dropped++;
		s->dropped_owed = true;
		bc->drops_owed = true;
	}
}

static void count_drop(struct bconn *bc, uint32_t sid)
{
	bc->b->st.drops++;
	owe_dropped(bc, sid);
}

/* What a failed vbi_conn_forward() means, for the log. */
static const char *forward_error(int rc)
{
	switch (rc) {
	case VB_EMSGSIZE:
		return "the message is larger than the subscriber takes";
	case VB_ECLOSED:
	case VB_ESTATE:
		return "the subscriber's connection is not open";
	case VB_EINVAL:
		return "the publisher's frame is no longer held";
	default:
		return vb_strerror(rc);
	}
}

/*
 * A forward to @bc for @sid failed with @rc (not VB_EAGAIN): the delivery
 * is lost.  Counted (verbus_forward_failures_total), the subscriber told,
 * and logged once per connection, so that no loss is silent and no
 * subscriber floods the log.
 */
static void forward_failed(struct bconn *bc, uint32_t sid, int rc)
{
	bc->b->st.forward_failures++;
	owe_dropped(bc, sid);
	if (bc->fwd_fail_logged)
		return;
	bc->fwd_fail_logged = true;
	vbi_warn("conn cid %" PRIu64 " %s: a delivery to sid %u failed: %s "
		 "(%s); this and later failures on the connection are counted "
		 "in verbus_forward_failures_total",
		 bc->cid, bc->name, sid, forward_error(rc), vb_strerror(rc));
}

/* Drop every pending delivery (the fallback, or the subscriber left). */
static void pend_drop_all(struct bconn *bc, bool count)
{
	while (bc->pend_n) {
		if (count)
			count_drop(bc, bc->pend[bc->pend_head].sid);
		pend_pop(bc);
	}
}

static void slow_disconnect(struct bconn *bc, const char *why)
{
	if (bc->closing)
		return;
	vbi_warn("conn cid %" PRIu64 " %s: slow consumer disconnected: %s",
		 bc->cid, bc->name, why);
	bc->b->st.slow_disconnects++;
	bc->closing = true;
	pend_drop_all(bc, true);
	resume_publishers(bc->b);
	vbi_conn_close(bc->c);
}

static void count_out(struct bconn *bc, const struct vbi_frame_view *v)
{
	bc->msgs_out++;
	bc->bytes_out += v->topic_len + v->payload_len;
	bc->b->st.msgs_out++;
	bc->b->st.bytes_out += v->topic_len + v->payload_len;
}

/* Forward what waits, in order, while there is room. */
static void pend_flush(struct bconn *bc)
{
	while (bc->pend_n && !bc->closing) {
		struct pend *p = &bc->pend[bc->pend_head];
		int rc = vbi_conn_forward(bc->c, p->src, &p->v, p->sid);

		if (rc == VB_EAGAIN)
			return;
		/* Progress: the no-progress timer starts again. */
		bc->blocked_since = vbi_clock_coarse_ms();
		if (rc == VB_OK) {
			count_out(bc, &p->v);
		} else {
			/* Counted as delivered when it was queued. */
			struct bsub *s = sub_find(bc, p->sid);

			if (s && s->delivered)
				s->delivered--;
			forward_failed(bc, p->sid, rc);
		}
		pend_pop(bc);
	}
}

/* The subscriber had no room for a delivery of @pub's frame: apply the
 * policy.  Returns true if the delivery was queued (block), false if it
 * was dropped or the subscriber disconnected. */
static bool slow(struct bconn *dst, struct bconn *pub,
		 const struct vbi_frame_view *v, uint32_t sid, bool first)
{
	struct vbi_conn *src = pub->c;
	struct vbd_broker *b = dst->b;
	enum vbd_slow_policy p = b->cfg.slow_policy;

	if (first)
		dst->waits++;
	if (!dst->slow_counted) {
		dst->slow_counted = true;
		b->st.slow_consumers++;
	}
	if (p == VBD_SLOW_BLOCK) {
		if (pend_push(dst, src, v, sid) == VB_OK) {
			/* Deep enough: hold the publisher back. */
			if (dst->pend_n >= b->cfg.pending_max && !pub->paused) {
				pub->paused = true;
				b->npaused++;
				vbi_conn_pause(src, 1);
			}
			return true;
		}
		p = b->cfg.block_fallback; /* beyond even the slack */
	}
	if (p == VBD_SLOW_DISCONNECT)
		slow_disconnect(dst, "no room for a delivery");
	else
		count_drop(dst, sid);
	return false;
}

/* One delivery of @pub's frame @v to subscription @s. */
static void deliver(struct bsub *s, struct bconn *pub,
		    const struct vbi_frame_view *v)
{
	struct vbi_conn *src = pub->c;
	struct bconn *dst = s->bc;
	struct vbd_broker *b = dst->b;
	int rc;

	if (dst->closing)
		return;
	if (dst->shed) {
		/* It takes nothing: its deliveries are dropped until it
		 * does, rather than pinning the publisher (tick). */
		count_drop(dst, s->sid);
		return;
	}
	/* delivered counts what was delivered or queued to be: what the
	 * policy dropped or a failed forward lost is not. */
	if (dst->pend_n) {
		if (slow(dst, pub, v, s->sid, false))
			s->delivered++;
	} else {
		rc = vbi_conn_forward(dst->c, src, v, s->sid);
		if (rc == VB_OK) {
			s->delivered++;
			count_out(dst, v);
		} else if (rc == VB_EAGAIN) {
			if (slow(dst, pub, v, s->sid, true))
				s->delivered++;
		} else {
			forward_failed(dst, s->sid, rc);
		}
	}
	if (s->max_msgs && s->delivered >= s->max_msgs)
		sub_free(b, s);
}

/* A frame from a publisher: route it, then drop our reference. */
static void on_message(struct vbi_conn *c, const struct vbi_frame_view *v,
		       void *arg)
{
	struct bconn *bc = arg;
	struct vbd_broker *b = bc->b;
	const char *sp = memchr(v->topic, ' ', v->topic_len);
	size_t slen = sp ? (size_t)(sp - v->topic) : v->topic_len;
	size_t i;
	int rc;

	bc->msgs_in++;
	bc->bytes_in += v->topic_len + v->payload_len;
	b->st.msgs_in++;
	b->st.bytes_in += v->topic_len + v->payload_len;
	if (vbi_subject_check(v->topic, slen) != VB_OK ||
	    (sp &&
	     vbi_subject_check(sp + 1, v->topic_len - slen - 1) != VB_OK)) {
		send_notice(bc, VB_EINVAL, 0, v->seq,
			    "invalid subject or reply subject");
		goto out_release;
	}
	if (!vbd_user_may_publish(bc->user, v->topic, slen)) {
		b->st.denied_publish++;
		send_notice(bc, VB_EACCES, 0, v->seq,
			    "permission denied: publish");
		goto out_release;
	}
	/* Checked above: the match need not check it again. */
	rc = vbi_sublist_match_valid(b->sl, v->topic, slen, &b->match);
	if (rc) {
		send_notice(bc, rc, 0, v->seq, "cannot route the message");
		goto out_release;
	}
	if (b->match.n == 0)
		b->st.no_interest++;
	/* deliver() may free a sub (auto-unsubscribe), not the match. */
	for (i = 0; i < b->match.n; i++)
		deliver(b->match.subs[i]->owner, bc, v);
out_release:
	vbi_conn_release(c, v);
}

/* ---- connections ------------------------------------------------------- */

static void on_control(struct vbi_conn *c, const Verbus__Control *m, void *arg)
{
	struct bconn *bc = arg;

	switch (m->body_case) {
	case VERBUS__CONTROL__BODY_SUBSCRIBE:
		on_subscribe(bc, m->subscribe);
		break;
	case VERBUS__CONTROL__BODY_UNSUBSCRIBE:
		on_unsubscribe(bc, m->unsubscribe);
		break;
	case VERBUS__CONTROL__BODY_PING:
		if (bc->npings == PINGS_MAX) {
			vbi_warn("conn %s: too many pings in flight", bc->name);
			vbi_conn_close(c);
			break;
		}
		bc->pings[bc->npings++] = m->ping->id;
		send_owed(bc);
		break;
	default:
		break; /* Pong, Notice, Dropped: nothing to do */
	}
}

static void on_writable(struct vbi_conn *c, void *arg)
{
	struct bconn *bc = arg;

	(void)c;
	pend_flush(bc);
	send_owed(bc);
}

/* The address part of a peer name ("10.0.0.3:4711", "[::1]:4711"). */
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
static int on_accept(struct vbi_conn *c, void *arg)
{
	struct vbd_broker *b = arg;
	char addr[64];
	struct hs_addr *h;

	peer_addr(c, addr, sizeof(addr));
	if (b->shutting_down) {
		b->st.conns_rejected++;
		vbi_info("refusing a connection from %s: shutting down", addr);
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

/* A connection on_accept() admitted has opened or closed: its handshake
 * no longer counts. */
static void handshake_done(struct vbd_broker *b, struct vbi_conn *c)
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
static void refuse(struct vbd_broker *b, struct vbi_conn *c, const char *why)
{
	vbi_warn("refusing a connection: %s", why);
	b->st.conns_rejected++;
	vbi_conn_set_arg(c, NULL);
	vbi_conn_close(c);
}

static void on_open(struct vbi_conn *c, void *arg)
{
	struct vbd_broker *b = arg;
	struct bconn *bc;

	handshake_done(b, c);
	b->st.conns_total++;
	if (b->shutting_down) {
		refuse(b, c, "shutting down");
		return;
	}
	if (b->nconns >= b->cfg.max_conns) {
		refuse(b, c, "too many connections");
		return;
	}
	bc = calloc(1, sizeof(*bc));
	if (!bc) {
		refuse(b, c, "out of memory");
		return;
	}
	if (b->auth) {
		/* authorize() admitted it: this check is the cached one. */
		size_t clen;
		const void *cred = vbi_conn_credentials(c, &clen);

		if (vbd_auth_check(b->auth, cred, clen, &bc->user)) {
			free(bc);
			refuse(b, c, "credentials no longer valid");
			return;
		}
	}
	bc->kind = KIND_CONN;
	bc->b = b;
	bc->c = c;
	bc->cid = ++b->next_cid;
	bc->start_time = time(NULL);
	vbi_conn_peer_name(c, bc->peer, sizeof(bc->peer));
	snprintf(bc->name, sizeof(bc->name), "%s", vbi_conn_name(c));
	HASH_ADD(hh, b->by_cid, cid, sizeof(bc->cid), bc);
	if (bc->oom) {
		free(bc);
		refuse(b, c, "out of memory");
		return;
	}
	bc->prev = b->tail;
	if (b->tail)
		b->tail->next = bc;
	else
		b->head = bc;
	b->tail = bc;
	b->nconns++;
	b->st.conns++;
	vbi_conn_set_arg(c, bc);
	vbi_info("conn cid %" PRIu64 " %s from %s open (%s)", bc->cid, bc->name,
		 bc->peer, vbi_conn_scheme(c));
}

static void on_closed(struct vbi_conn *c, const struct vbi_close_info *why,
		      void *arg)
{
	struct bconn *bc = arg;
	struct vbd_broker *b;
	struct vbi_conn_stats cs;
	struct bsub *s, *tmp;

	b = bc->b;
	vbi_info("conn cid %" PRIu64 " %s from %s closed: %s", bc->cid,
		 bc->name, bc->peer, why->reason);
	vbi_conn_stats(c, &cs);
	b->st.payload_copies += cs.bytes_copied;
	b->st.zero_copy_bytes += cs.bytes_forwarded;
	b->st.forward_kicks += cs.kicks;
	b->st.credit_waits += bc->waits;
	HASH_ITER(hh, bc->subs, s, tmp)
	sub_free(b, s);
	pend_drop_all(bc, false);
	if (bc->paused)
		b->npaused--;
	free(bc->pend);
	HASH_DEL(b->by_cid, bc);
	if (bc->prev)
		bc->prev->next = bc->next;
	else
		b->head = bc->next;
	if (bc->next)
		bc->next->prev = bc->prev;
	else
		b->tail = bc->prev;
	b->nconns--;
	b->st.conns--;
	free(bc);
}

/*
 * A callback's arg is the broker until the connection opens (the listener's
 * arg), then its bconn, or NULL if it was refused: only a bconn of this very
 * connection gets the event.
 */
static struct bconn *conn_of(struct vbi_conn *c, void *arg)
{
	struct bconn *bc = arg;

	if (!arg || *(const uint32_t *)arg != KIND_CONN || bc->c != c)
		return NULL;
	return bc;
}

static void cb_message(struct vbi_conn *c, const struct vbi_frame_view *v,
		       void *arg)
{
	if (conn_of(c, arg))
		on_message(c, v, arg);
	else
		vbi_conn_release(c, v);
}

static void cb_control(struct vbi_conn *c, const Verbus__Control *m, void *arg)
{
	if (conn_of(c, arg))
		on_control(c, m, arg);
}

static void cb_writable(struct vbi_conn *c, void *arg)
{
	if (conn_of(c, arg))
		on_writable(c, arg);
}

static void cb_closed(struct vbi_conn *c, const struct vbi_close_info *why,
		      void *arg)
{
	struct vbd_broker *b = arg;

	if (conn_of(c, arg))
		on_closed(c, why, arg);
	else if (b && b->kind == KIND_BROKER)
		handshake_done(b, c); /* it never opened */
}

/* At the Hello, before the client learns anything: its credentials. */
static int cb_authorize(struct vbi_conn *c, const void *cred, size_t len,
			void *arg)
{
	struct vbd_broker *b = arg;
	const struct vbd_user *u;
	char peer[64];

	if (!b || b->kind != KIND_BROKER || !b->auth)
		return VB_OK;
	if (vbd_auth_check(b->auth, cred, len, &u) == VB_OK)
		return VB_OK;
	b->st.auth_failures++;
	b->st.conns_rejected++;
	vbi_conn_peer_name(c, peer, sizeof(peer));
	vbi_warn("refusing %s from %s: bad or missing credentials",
		 vbi_conn_name(c), peer);
	return VB_EACCES;
}

static const struct vbi_conn_cbs broker_cbs = {
	.accept = on_accept,
	.authorize = cb_authorize,
	.open = on_open,
	.message = cb_message,
	.writable = cb_writable,
	.control = cb_control,
	.closed = cb_closed,
};

/*
 * A subscriber that has something waiting for it (deliveries queued here,
 * or frames staged in the transport) and has made no progress (freed no
 * ring space, returned no credit) for block_timeout_ms
 * is a slow consumer, whatever it is short of, under any policy: a peer
 * that withholds receive credits stalls as surely as one whose ring is
 * full.  The fallback (drop or disconnect; drop under the drop policy):
 * disconnect closes it, which returns every frame it held; drop drops
 * what is queued, has the transport copy the forwards it holds so that no
 * publisher stays pinned (vbi_conn_unpin), and drops its deliveries until
 * it moves again.  A dropped one whose own writes still do not complete a
 * block_timeout_ms later is disconnected: only a peer that breaks the
 * protocol can do that.
 */
static void stall_check(struct bconn *bc, uint64_t now)
{
	struct vbd_broker *b = bc->b;
	struct vbi_conn_stats cs;
	bool waiting;
	char what[160];

	vbi_conn_stats(bc->c, &cs);
	/* Once shed, only writes it let us post and never completed hold
	 * anyone (vbi_conn_unpin() asked the device to report them). */
	waiting = bc->pend_n || (bc->shed ? cs.fwd_pending : cs.tx_waiting);
	if (cs.progress != bc->progress_seen) {
		bc->progress_seen = cs.progress;
		if (bc->shed)
			vbi_info("conn cid %" PRIu64 " %s: takes deliveries "
				 "again after %" PRIu64 " dropped",
				 bc->cid, bc->name, bc->drops);
		bc->shed = false;
		bc->blocked_since = waiting ? now : 0;
	}
	if (!waiting) {
		bc->blocked_since = 0;
		bc->slow_counted = false;
		return;
	}
	if (!bc->blocked_since) {
		bc->blocked_since = now;
		return;
	}
	/* No subtraction: pend_flush() may just have set blocked_since a
	 * little after @now. */
	if (bc->blocked_since + b->cfg.block_timeout_ms > now)
		return;
	if (!bc->slow_counted) {
		bc->slow_counted = true;
		b->st.slow_consumers++;
	}
	snprintf(what, sizeof(what),
		 "no progress for %u ms: %zu deliveries queued, %" PRIu64
		 " bytes waiting to be written, %u receive credits left (it "
		 "withholds %s)",
		 b->cfg.block_timeout_ms, bc->pend_n, cs.tx_waiting,
		 cs.recv_credits,
		 cs.recv_credits == 0 ? "receive credit" : "ring space");
	if (bc->shed) {
		slow_disconnect(bc, "its writes do not complete");
		return;
	}
	if (b->cfg.slow_policy == VBD_SLOW_DISCONNECT ||
	    (b->cfg.slow_policy == VBD_SLOW_BLOCK &&
	     b->cfg.block_fallback == VBD_SLOW_DISCONNECT)) {
		slow_disconnect(bc, what);
		return;
	}
	vbi_warn("conn cid %" PRIu64 " %s: slow consumer: %s; dropping its "
		 "deliveries until it moves",
		 bc->cid, bc->name, what);
	pend_drop_all(bc, true);
	vbi_conn_unpin(bc->c);
	bc->shed = true;
	bc->blocked_since = now;
}

/* Timers: block timeouts, notices owed, and the end of a shutdown. */
static void tick(struct vbd_broker *b)
{
	uint64_t now = vbi_clock_coarse_ms();
	struct bconn *bc, *next;

	if (now - b->last_tick < TICK_MS)
		return;
	b->last_tick = now;
	for (bc = b->head; bc; bc = next) {
		next = bc->next;
		if (bc->closing)
			continue;
		pend_flush(bc);
		stall_check(bc, now);
		if (bc->closing)
			continue;
		send_owed(bc);
		if (b->shutting_down && bc->pend_n == 0) {
			bc->closing = true;
			vbi_conn_close(bc->c);
		}
	}
}

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
}

static void src_server(void *arg, struct vbd_stats_server *s)
{
	struct vbd_broker *b = arg;
	struct vbi_tp_stats ts;
	const struct bconn *bc;

	vbi_tp_stats_all(&ts);
	*s = b->st;
	s->version = vb_version();
	s->server_name = b->cfg.server_name;
	s->listen = b->listen;
	s->start_time = b->start_time;
	s->uptime_ms = vbi_clock_coarse_ms() - b->start_ms;
	s->conns = b->nconns;
	s->mr_registered = ts.mr_registered;
	s->mr_deregistered = ts.mr_deregistered;
	s->handshakes = b->nhandshakes;
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
		fill_conn(bc, &o);
		fn(ctx, &o);
	}
}

static int src_conn(void *arg, uint64_t cid, struct vbd_stats_conn *c)
{
	struct vbd_broker *b = arg;
	struct bconn *bc = NULL;

	HASH_FIND(hh, b->by_cid, &cid, sizeof(cid), bc);
	if (!bc)
		return -1;
	fill_conn(bc, c);
	return 0;
}

void vbd_broker_stats_source(struct vbd_broker *b, struct vbd_stats_source *src)
{
	src->server = src_server;
	src->conns = src_conns;
	src->conn = src_conn;
	src->arg = b;
}

/* ---- lifecycle --------------------------------------------------------- */

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
	rc = vbi_sublist_create(&b->sl);
	if (rc)
		goto out_free;
	o.name = cfg->server_name;
	o.ring_size = cfg->ring_size;
	o.max_msg = cfg->max_msg;
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
	if (b->ntp > 1) {
		struct epoll_event ev = { .events = EPOLLIN };

		b->epfd = epoll_create1(EPOLL_CLOEXEC);
		rc = VB_ESYS;
		if (b->epfd < 0)
			goto out_free;
		for (unsigned i = 0; i < b->ntp; i++)
			if (epoll_ctl(b->epfd, EPOLL_CTL_ADD,
				      vbi_tp_fd(b->tp[i]), &ev))
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
	return b->ntp > 1 ? b->epfd : vbi_tp_fd(b->tp[0]);
}

int vbd_broker_progress(struct vbd_broker *b, int timeout_ms)
{
	struct epoll_event ev;
	int rc, n = 0;

	if (timeout_ms < 0 || timeout_ms > TICK_MS)
		timeout_ms = TICK_MS;
	if (b->ntp == 1) {
		n = vbi_tp_progress(b->tp[0], timeout_ms);
	} else {
		/* Sleep on both; then each turns without waiting. */
		if (timeout_ms && !b->cfg.busy_poll &&
		    epoll_wait(b->epfd, &ev, 1, timeout_ms) < 0 &&
		    errno != EINTR)
			return VB_ESYS;
		for (unsigned i = 0; i < b->ntp; i++) {
			rc = vbi_tp_progress(b->tp[i], 0);
			if (rc < 0)
				return rc;
			n += rc;
		}
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

void vbd_broker_shutdown(struct vbd_broker *b)
{
	if (b->shutting_down)
		return;
	b->shutting_down = true;
	for (unsigned i = 0; i < b->ntp; i++) {
		vbi_listener_close(b->l[i]);
		b->l[i] = NULL;
	}
	b->last_tick = 0; /* start closing at the next tick */
	vbi_info("shutting down: %" PRIu64 " connections to close", b->nconns);
}

bool vbd_broker_idle(const struct vbd_broker *b)
{
	return b->nconns == 0;
}

void vbd_broker_destroy(struct vbd_broker *b)
{
	struct hs_addr *h, *tmp;

	if (!b)
		return;
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
	vbi_sublist_destroy(b->sl);
	vbi_match_fini(&b->match);
	vbd_auth_destroy(b->auth);
	free(b);
}

void vbd_broker_set_auth(struct vbd_broker *b, struct vbd_auth *a)
{
	if (b->auth != a)
		vbd_auth_destroy(b->auth);
	b->auth = a;
}
