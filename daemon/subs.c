/*
 * subs.c - a client's control messages: Subscribe, Unsubscribe and Ping
 * (direct mode's go to direct.c), and the notices it is owed (Pongs,
 * direct.c's messages, Dropped), sent as credit allows.
 * See broker_int.h for how the broker's files divide the work.
 */
#include "daemon/broker_int.h"

#include "core/log.h"

#include <verbus/verbus.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ---- control messages to a client ------------------------------------ */

void bk_send_notice(struct bconn *bc, int err, uint32_t sid, uint64_t seq,
		    const char *reason)
{
	bk_send_notice_reply(bc, err, sid, seq, NULL, 0, reason);
}

void bk_send_notice_reply(struct bconn *bc, int err, uint32_t sid, uint64_t seq,
			  const char *reply, size_t rlen, const char *reason)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__Notice n = VERBUS__NOTICE__INIT;
	char subj[VBI_SUBJECT_MAX + 1];

	n.code = (uint32_t)-err;
	n.reason = (char *)reason;
	n.sid = sid;
	n.seq = seq;
	if (reply && rlen && rlen <= VBI_SUBJECT_MAX) {
		memcpy(subj, reply, rlen);
		subj[rlen] = '\0';
		n.subject = subj;
	}
	m.body_case = VERBUS__CONTROL__BODY_NOTICE;
	m.notice = &n;
	/* Best effort: a client out of credit loses a notice, not data. */
	if (vbi_conn_send_ctrl(bc->c, &m) != VB_OK)
		vbi_debug("conn %s: notice dropped: %s", bc->name, reason);
}

/* A Ping came: its Pong is owed behind what was queued to @bc before it. */
static void ping_owe(struct bconn *bc, uint64_t id, bool wait_direct)
{
	struct owed_pong *p = &bc->pings[bc->npings];

	if (bc->direct && bk_direct_hold_ping(bc, id, wait_direct))
		return;

	/* Full: the newest takes the place of the last, whose Pong it
	 * answers too (a peer takes the highest id seen); no peer is
	 * dropped for pinging while its Pongs wait behind a backlog. */
	if (bc->npings == PINGS_MAX)
		p = &bc->pings[PINGS_MAX - 1];
	else
		bc->npings++;
	p->id = id;
	p->pend_mark = bc->pend_pushed;
	p->tx_mark = 0;
	p->tx_known = false;
}

/* Whether everything queued to @bc before @p's Ping (or DirectFence,
 * direct.c) has been handed to the transport, so that a Pong sent now
 * arrives after it. */
bool bk_owed_due(struct bconn *bc, struct owed_pong *p)
{
	struct vbi_conn_stats cs;

	if (bc->pend_pushed - bc->pend_n < p->pend_mark)
		return false; /* deliveries queued before it wait still */
	vbi_conn_stats(bc->c, &cs);
	if (!p->tx_known) {
		p->tx_mark = cs.tx_staged;
		p->tx_known = true;
	}
	if (cs.tx_posted >= p->tx_mark)
		return true;
	vbi_conn_flush(bc->c); /* staged this turn: post it now */
	vbi_conn_stats(bc->c, &cs);
	return cs.tx_posted >= p->tx_mark;
}

/* Send the Pongs and Dropped notices owed, as credit and order allow. */
void bk_send_owed(struct bconn *bc)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	struct bsub *s, *tmp;

	while (bc->npings && bk_owed_due(bc, &bc->pings[0])) {
		Verbus__Pong p = VERBUS__PONG__INIT;

		p.id = bc->pings[0].id;
		m.body_case = VERBUS__CONTROL__BODY_PONG;
		m.pong = &p;
		if (vbi_conn_send_ctrl(bc->c, &m) != VB_OK)
			return;
		memmove(bc->pings, bc->pings + 1,
			--bc->npings * sizeof(bc->pings[0]));
	}
	if (bc->direct) {
		bk_direct_send_owed(bc);
		if (bc->closing)
			return;
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

void bk_sub_free(struct vbd_broker *b, struct bsub *s)
{
	struct bconn *bc = s->bc;

	bk_direct_sub_changed(s, false);
	vbi_sublist_remove(bc->acct->sl, &s->s);
	bk_interest_del(b, s);
	HASH_DEL(bc->subs, s);
	bc->nsubs--;
	bc->acct->nsubs--;
	b->st.subs--;
	free(s->subject);
	free(s->queue);
	free(s);
}

struct bsub *bk_sub_find(struct bconn *bc, uint32_t sid)
{
	struct bsub *s = NULL;

	HASH_FIND(hh, bc->subs, &sid, sizeof(sid), s);
	return s;
}

static void on_subscribe(struct bconn *bc, const Verbus__Subscribe *m)
{
	struct vbd_broker *b = bc->b;
	size_t plen = strlen(m->subject), qlen = strlen(m->queue);
	enum vbd_inbox_pat ip;
	char why[VBI_REASON_MAX];
	struct bsub *s;
	int rc;

	if (vbi_pattern_check(m->subject, plen) != VB_OK) {
		bk_send_notice(bc, VB_EINVAL, m->sid, 0,
			       "invalid subject pattern");
		return;
	}
	if (qlen && vbi_queue_check(m->queue, qlen) != VB_OK) {
		bk_send_notice(bc, VB_EINVAL, m->sid, 0, "invalid queue group");
		return;
	}
	if (bk_sub_find(bc, m->sid)) {
		bk_send_notice(bc, VB_EINVAL, m->sid, 0, "sid already in use");
		return;
	}
	if (m->direct && !bk_direct_listening(bc)) {
		bk_send_notice(bc, VB_EINVAL, m->sid, 0,
			       "direct subscription without a DirectListen");
		return;
	}
	ip = vbd_inbox_pattern(m->subject, plen, bc->inbox_id);
	if (ip == VBD_INBOX_OTHER) {
		char subj[VBI_LOG_ESCAPE_MAX];

		b->st.denied_subscribe++;
		vbi_log_escape(subj, sizeof(subj), m->subject, plen);
		vbi_info("conn cid %" PRIu64 " %s: subscribe to %s denied: "
			 "not its own inbox",
			 bc->cid, bc->name, subj);
		bk_send_notice(bc, VB_EACCES, m->sid, 0,
			       "permission denied: inboxes are private (a "
			       "connection subscribes to its own only)");
		return;
	}
	/* Its own inbox: nobody else can read it, so always allowed. */
	if (ip != VBD_INBOX_OWN &&
	    !vbd_user_may_subscribe(bc->user, m->subject, plen)) {
		char subj[VBI_LOG_ESCAPE_MAX];

		b->st.denied_subscribe++;
		/* Subjects may hold any byte from 0x80 up: escaped. */
		vbi_log_escape(subj, sizeof(subj), m->subject, plen);
		vbi_info("conn cid %" PRIu64 " %s (user %s): subscribe to %s "
			 "denied",
			 bc->cid, bc->name, vbd_user_name(bc->user), subj);
		bk_send_notice(bc, VB_EACCES, m->sid, 0,
			       "permission denied: subscribe");
		return;
	}
	if (bc->nsubs >= b->cfg.max_subs) {
		bk_send_notice(bc, VB_ENOSPC, m->sid, 0,
			       "too many subscriptions on this connection");
		return;
	}
	if (!bk_account_sub_ok(bc, why, sizeof(why))) {
		vbi_info("conn cid %" PRIu64 " %s: subscription %u refused: %s",
			 bc->cid, bc->name, m->sid, why);
		bk_send_notice(bc, VB_ENOSPC, m->sid, 0, why);
		return;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		goto out_nomem;
	s->bc = bc;
	s->sid = m->sid;
	s->max_msgs = m->max_msgs;
	s->direct = m->direct;
	s->subject = strdup(m->subject);
	s->queue = qlen ? strdup(m->queue) : NULL;
	if (!s->subject || (qlen && !s->queue))
		goto out_free;
	vbi_sub_init(&s->s, s->subject, plen, s->queue, qlen, s);
	rc = vbi_sublist_insert(bc->acct->sl, &s->s);
	if (rc)
		goto out_free;
	HASH_ADD(hh, bc->subs, sid, sizeof(s->sid), s);
	if (s->oom) {
		vbi_sublist_remove(bc->acct->sl, &s->s);
		goto out_free;
	}
	bc->nsubs++;
	bc->acct->nsubs++;
	b->st.subs++;
	bk_interest_add(b, s);
	bk_direct_sub_changed(s, true);
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
	bk_send_notice(bc, VB_ENOMEM, m->sid, 0, "broker out of memory");
}

static void on_unsubscribe(struct bconn *bc, const Verbus__Unsubscribe *m)
{
	struct bsub *s = bk_sub_find(bc, m->sid);

	if (!s) {
		bk_send_notice(bc, VB_EINVAL, m->sid, 0,
			       "no such subscription");
		return;
	}
	if (m->max_msgs == 0 || s->delivered >= m->max_msgs)
		bk_sub_free(bc->b, s);
	else
		s->max_msgs = m->max_msgs;
}

void bk_client_control(struct vbi_conn *c, const Verbus__Control *m, void *arg)
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
		ping_owe(bc, m->ping->id, m->ping->wait_direct);
		bk_send_owed(bc);
		break;
	case VERBUS__CONTROL__BODY_ROUTE_SUB:
	case VERBUS__CONTROL__BODY_ROUTE_UNSUB:
		/* A route's business: from a client, a protocol error. */
		if (bc->role == BK_CLIENT) {
			vbi_warn("conn cid %" PRIu64 " %s: sent a route's "
				 "message (%s); closed",
				 bc->cid, bc->name, vbi_codec_kind_name(m));
			bc->closing = true;
			vbi_conn_close(c);
		}
		break;
	case VERBUS__CONTROL__BODY_DIRECT_LISTEN:
	case VERBUS__CONTROL__BODY_DIRECT_QUERY:
	case VERBUS__CONTROL__BODY_DIRECT_SWITCH:
		bk_direct_control(bc, m);
		break;
	default:
		break; /* Pong, Notice, Dropped: nothing to do */
	}
}

void bk_writable(struct vbi_conn *c, void *arg)
{
	struct bconn *bc = arg;

	(void)c;
	bk_pend_flush(bc);
	bk_send_owed(bc);
}
