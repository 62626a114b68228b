/*
 * direct_pub.c - direct mode, the publisher's side (docs/PROTOCOL.md,
 * "Direct mode"; direct.h): a connection with VB_OPT_DIRECT asks the broker
 * which direct subscribers each subject reaches (DirectQuery), keeps the
 * answer per subject (struct vbi_dsubj), opens one direct connection per
 * subscriber connection (struct vbi_dout), sends each subject's grant on it
 * before the first frame on that subject, and switches the pair over at the
 * broker (DirectSwitch), in order with what it published before.
 *
 * Two decisions a reader must know.
 *
 * A dout is switched on for the subscriber connection as a whole: the
 * broker then leaves every plain direct subscription of that connection to
 * us.  So once a dout is on, a message for one of its subjects is either
 * written to it or, if it cannot be (larger than the subscriber takes, its
 * queue over vb_opts.pending_max), the dout is switched off first, its
 * DirectSwitch queued to the broker ahead of the message, which the broker
 * then carries.  What was queued for the dout before (copies waiting for
 * room) still goes on the direct connection after the switch: the
 * DirectSwitch's @frames counts them, and the subscriber holds the
 * broker's deliveries until it has had that many.
 *
 * Douts are counted references of the paths that name them: a path points
 * at its dout, and the dout stays (as a closed tombstone if its connection
 * went) until no path names it.  A dout no subject names any more is
 * switched off and closed; a closed one makes the subjects that name it ask
 * again (after DOUT_RETRY_NS: a subscriber that refuses us is not
 * hammered), since a connect grant serves one connection.
 *
 * Ownership: everything here belongs to c->dir.  Threading: direct.h.
 */
#define uthash_nonfatal_oom(elt) ((elt)->oom = true)

#include "clients/lib/client.h"
#include "core/clock.h"
#include "core/resend.h"
#include "core/url.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Subjects whose answers we keep, at most (the broker's own bound):
 * past that, new subjects go through the broker. */
#define DSUBJ_MAX 1024u
/* Paths of one answer we take, at most (the broker sends no more). */
#define DPATHS_MAX 256u
/* Our own receive ring on a direct connection: the subscriber sends us
 * control messages only. */
#define DOUT_RING (64u * 1024u)
#define DOUT_MAX_MSG 4096u
/* A vb_flush() Ping on a dout unanswered this long goes again (the
 * subscriber answers best effort: a Pong that found no credit is lost). */
#define DOUT_REPING_NS (500ull * 1000000ull)
/* A subject whose dout closed asks again no sooner than this. */
#define DOUT_RETRY_NS (1000ull * 1000000ull)
/* A grant this close to its expiry is not sent (the subscriber's clock
 * may be ahead of ours). */
#define GRANT_MARGIN_MS 2000u

enum dout_state {
	DO_CONNECTING, /* vbi_tp_connect() done, open not yet called */
	DO_OPEN, /* open, not switched on (inside the open callback) */
	DO_ON, /* switched on: the broker leaves its subscriptions to us */
	/* Switched off for now, open and granted: a subject's paths are not
	 * known (new, stale, asked again); on again once every answer is in
	 * (pub_quiesce, pub_resume). */
	DO_IDLE,
	DO_DRAINING, /* switched off; its queue still goes, then it closes */
	DO_CLOSING, /* vbi_conn_close() called; the closed callback to come */
	DO_CLOSED, /* the connection is gone: a tombstone, held by paths */
};

/* A dq's kind beyond frames': a switch's marker (a DirectFence on). */
#define DQ_MARKER 0xfeu

/* A copy waiting for room on a dout: a frame, a grant, a marker. */
struct dq {
	struct dq *next;
	/* VBI_FRAME_MSG, _HMSG; 0: a packed DirectGrant; DQ_MARKER */
	uint8_t kind;
	uint32_t sid; /* frames: the subscriber's sid */
	uint16_t tlen; /* frames: topic bytes, then @plen payload bytes */
	uint32_t plen; /* grants: the packed grant's bytes */
	uint8_t bytes[];
};

/* Our direct connection to one subscriber connection. */
struct vbi_dout {
	UT_hash_handle hh; /* in c->dir->outs, by sub_id, while @hashed */
	bool oom; /* uthash's failed add */
	bool hashed; /* in c->dir->outs (a replaced tombstone is not) */
	struct vb_conn *c;
	struct vbi_conn *vc; /* NULL once closed; its arg is this dout */
	uint64_t sub_id; /* the subscriber connection's id (the key) */
	/* The connection's tag in our resends (core/resend.h): the first
	 * bytes of its connect grant's nonce, which the subscriber keeps. */
	uint8_t conn_tag[VBI_RESEND_CONN_LEN];
	enum dout_state state;
	unsigned refs; /* paths naming it */
	/* Frames written on the connection, or queued to be, in all: what a
	 * DirectSwitch off tells the subscriber to wait for. */
	uint64_t frames;
	/* vb_flush(): the subscriber has received this many of @frames (a
	 * Pong to our Ping behind them); the Ping out, and what it covers. */
	uint64_t frames_seen;
	uint64_t ping_id, ping_frames;
	uint64_t ping_ns; /* when the Ping out went (sent again past this) */
	uint32_t max_msg; /* the largest topic + payload the peer takes */
	uint64_t retry_ns; /* DO_CLOSED: not replaced before this */
	struct dq *qhead, **qtail; /* copies waiting for room, in order */
	size_t qbytes; /* their bytes */
	/* The sids its last DirectSwitch on named, sorted: the broker
	 * leaves those to us, and only those are written. */
	uint32_t *dsids;
	size_t ndsids;
};

/* One path of a subject: a subscriber connection and its grant, for its
 * plain subscriptions or for its members of one queue group. */
struct dpath {
	struct vbi_dout *out; /* NULL: brokered (no dout: over the cap) */
	char *queue; /* owned: the group; NULL: plain (each sid gets all) */
	uint32_t *sids; /* owned: the subscriber's sids the subject reaches */
	size_t nsids;
	uint8_t *grant; /* owned: the subject grant, packed, subject set */
	size_t glen;
	uint64_t expires_ms; /* the grant's */
	bool granted; /* the grant went (or waits in order) on @out */
};

/* The paths of an answer, as gathered or as current. */
struct dset {
	struct dpath *v; /* owned */
	unsigned n;
};

/* A subject, as the broker last answered. */
struct vbi_dsubj {
	UT_hash_handle hh; /* in c->dir->subjects, by subject */
	bool oom;
	bool answered; /* @cur holds an answer */
	bool stale; /* ask again at the next publish */
	bool others; /* the broker has other interest: it always gets a copy */
	uint64_t query; /* the DirectQuery being answered; 0: none */
	uint64_t stale_gen; /* the newest DirectStale's generation for it */
	uint64_t requery_ns; /* stale: not asked again before this */
	struct dset cur; /* the current paths */
	struct dset next; /* the answer being gathered (@query's) */
	bool next_others;
	unsigned turn; /* the groups' rotation: members picked so far */
	char subject[]; /* NUL-terminated */
};

/* A message being written: as vbi_direct_publish() takes it. */
struct dmsg {
	const char *topic;
	uint16_t tlen;
	uint8_t kind; /* VBI_FRAME_MSG or _HMSG */
	const struct vb_header *h;
	size_t n, blk;
	const void *data;
	size_t size;
	uint32_t plen; /* the frame's payload bytes */
	/* The dout connection that has the message staged, committed last
	 * (the fan-out's one copy: vbi_conn_fanout() sends it from there to
	 * every other subscriber); NULL: none yet. */
	struct vbi_conn *staged;
};

static void dout_on_open(struct vbi_conn *vc, void *arg);
static void dout_on_writable(struct vbi_conn *vc, void *arg);
static void dout_on_control(struct vbi_conn *vc, const Verbus__Control *m,
			    void *arg);
static void dout_on_closed(struct vbi_conn *vc,
			   const struct vbi_close_info *why, void *arg);

static void pub_resume(struct vb_conn *c);
static void pub_quiesce(struct vb_conn *c);
static void dout_pause(struct vb_conn *c, struct vbi_dout *o);

static const struct vbi_conn_cbs dout_cbs = {
	.open = dout_on_open,
	.writable = dout_on_writable,
	.control = dout_on_control,
	.closed = dout_on_closed,
};

/* ---- the queue of a dout ---------------------------------------------- */

static void dq_free_all(struct vbi_dout *o)
{
	struct dq *it;

	while ((it = o->qhead)) {
		o->qhead = it->next;
		free(it);
	}
	o->qtail = &o->qhead;
	o->qbytes = 0;
}

static void dq_push(struct vbi_dout *o, struct dq *it)
{
	it->next = NULL;
	*o->qtail = it;
	o->qtail = &it->next;
	o->qbytes += sizeof(*it) + it->tlen + it->plen;
}

/* The bytes a message takes queued for @nsids sids. */
static size_t dq_cost(const struct dmsg *m, size_t nsids)
{
	return nsids * (sizeof(struct dq) + m->tlen + m->plen);
}

/* Send the packed grant @g (@len bytes) on @vc: VB_OK, VB_EAGAIN... */
static int grant_send(struct vbi_conn *vc, const uint8_t *g, size_t len)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__DirectGrant *dg;
	int rc;

	dg = verbus__direct_grant__unpack(NULL, len, g);
	if (!dg)
		return VB_ENOMEM;
	m.body_case = VERBUS__CONTROL__BODY_DIRECT_GRANT;
	m.direct_grant = dg;
	rc = vbi_conn_send_ctrl(vc, &m);
	verbus__direct_grant__free_unpacked(dg, NULL);
	return rc;
}

/* Write one frame of @kind, its topic and payload whole, for @sid. */
static int frame_copy(struct vbi_conn *vc, uint8_t kind, uint32_t sid,
		      const void *topic, uint16_t tlen, const void *payload,
		      uint32_t plen)
{
	void *t, *p;
	int rc = vbi_conn_reserve_kind(vc, kind, tlen, plen, &t, &p);

	if (rc)
		return rc;
	memcpy(t, topic, tlen);
	if (plen)
		memcpy(p, payload, plen);
	vbi_frame_set_sid((uint8_t *)t - VBI_FRAME_HDR_LEN, sid);
	return vbi_conn_commit(vc);
}

/* Write @m for @sid, built in place. */
static int frame_put(struct vbi_conn *vc, const struct dmsg *m, uint32_t sid)
{
	void *t, *p;
	int rc;

	rc = vbi_conn_reserve_kind(vc, m->kind, m->tlen, m->plen, &t, &p);
	if (rc)
		return rc;
	memcpy(t, m->topic, m->tlen);
	if (m->n)
		vbi_outq_hmsg_fill(p, m->h, m->n, m->blk, m->data, m->size);
	else if (m->size)
		memcpy(p, m->data, m->size);
	vbi_frame_set_sid((uint8_t *)t - VBI_FRAME_HDR_LEN, sid);
	return vbi_conn_commit(vc);
}

/* The marker that opens a switched-on period on @vc (PROTOCOL.md, step 1):
 * the subscriber holds what follows until the broker's fence. */
static int marker_send(struct vbi_dout *o)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__DirectFence f = VERBUS__DIRECT_FENCE__INIT;

	f.pub_id = o->c->dir->pub_id;
	f.on = true;
	m.body_case = VERBUS__CONTROL__BODY_DIRECT_FENCE;
	m.direct_fence = &f;
	return vbi_conn_send_ctrl(o->vc, &m);
}

static int dq_send(struct vbi_dout *o, const struct dq *it)
{
	if (it->kind == DQ_MARKER)
		return marker_send(o);
	if (!it->kind)
		return grant_send(o->vc, it->bytes, it->plen);
	return frame_copy(o->vc, it->kind, it->sid, it->bytes, it->tlen,
			  it->bytes + it->tlen, it->plen);
}

/* ---- douts -------------------------------------------------------------- */

/* Add @vc's fan-out bytes (forwarded: gathered from another dout's
 * staging; copied: sent again from a copy) to @d's counters. */
static void fanout_add(struct vbi_direct *d, struct vbi_conn *vc)
{
	struct vbi_conn_stats st;

	vbi_conn_stats(vc, &st);
	d->fan_gathered += st.bytes_forwarded;
	d->fan_copied += st.bytes_copied;
}

/* @o moves to @st: the counts of switched-on and idle douts follow. */
static void dout_set(struct vbi_direct *d, struct vbi_dout *o,
		     enum dout_state st)
{
	if (o->state == DO_ON)
		d->paths_open--;
	else if (o->state == DO_IDLE)
		d->idle--;
	o->state = st;
	if (st == DO_ON)
		d->paths_open++;
	else if (st == DO_IDLE)
		d->idle++;
}

static int sid_cmp(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;

	return a < b ? -1 : a > b;
}

/* Whether @o's declared sids hold @sid. */
static bool dout_has(const struct vbi_dout *o, uint32_t sid)
{
	return o->ndsids && bsearch(&sid, o->dsids, o->ndsids,
				    sizeof(*o->dsids), sid_cmp) != NULL;
}

/* @o's declared sids: those of every current path naming it, sorted,
 * once each, at most VBI_SWITCH_SIDS_MAX (the rest stay brokered).
 * VB_OK or VB_ENOMEM. */
static int dout_declare(struct vb_conn *c, struct vbi_dout *o)
{
	struct vbi_dsubj *s, *tmp;
	uint32_t *v = NULL;
	size_t n = 0, cap = 0, i, j;

	HASH_ITER(hh, c->dir->subjects, s, tmp)
	{
		for (i = 0; i < s->cur.n; i++) {
			const struct dpath *p = &s->cur.v[i];

			if (p->out != o)
				continue;
			if (n + p->nsids > cap) {
				uint32_t *nv;

				cap = (n + p->nsids) * 2;
				nv = realloc(v, cap * sizeof(*v));
				if (!nv) {
					free(v);
					return VB_ENOMEM;
				}
				v = nv;
			}
			memcpy(v + n, p->sids, p->nsids * sizeof(*v));
			n += p->nsids;
		}
	}
	if (n)
		qsort(v, n, sizeof(*v), sid_cmp);
	for (i = j = 0; i < n; i++)
		if (!j || v[j - 1] != v[i])
			v[j++] = v[i];
	if (j > VBI_SWITCH_SIDS_MAX)
		j = VBI_SWITCH_SIDS_MAX;
	free(o->dsids);
	o->dsids = v;
	o->ndsids = j;
	return VB_OK;
}

/* The marker of a new switched-on period on @o, in order with its frames:
 * now, or queued behind its copies.  VB_OK or an error. */
static int dout_marker(struct vbi_dout *o)
{
	struct dq *it;
	int rc;

	if (!o->qhead) {
		rc = marker_send(o);
		if (rc != VB_EAGAIN)
			return rc;
	}
	it = calloc(1, sizeof(*it));
	if (!it)
		return VB_ENOMEM;
	it->kind = DQ_MARKER;
	dq_push(o, it);
	return VB_OK;
}

/* DirectSwitch for @o to the broker, in order with what we published;
 * on: with the sids it declares now (dout_declare). */
static int switch_send(struct vb_conn *c, struct vbi_dout *o, bool on,
		       bool failed, uint32_t resend)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__DirectSwitch sw = VERBUS__DIRECT_SWITCH__INIT;
	int rc;

	if (on) {
		rc = dout_declare(c, o);
		if (rc)
			return rc;
		if (!o->ndsids)
			return VB_EINVAL; /* nothing to write to */
		sw.sids = o->dsids;
		sw.n_sids = o->ndsids;
	}
	sw.sub_id = o->sub_id;
	sw.on = on;
	sw.failed = failed;
	sw.frames = on ? 0 : o->frames;
	sw.resend = resend;
	vbi_debug("%s: direct path to %" PRIu64 ": switch %s (frames %" PRIu64
		  ", %zu sids, %" PRIu32 " resent)",
		  c->name, o->sub_id, on ? "on" : "off", o->frames, o->ndsids,
		  resend);
	m.body_case = VERBUS__CONTROL__BODY_DIRECT_SWITCH;
	m.direct_switch = &sw;
	rc = vbi_outq_ctrl(c, &m);
	if (rc)
		vbi_warn("%s: direct path to %" PRIu64 " not switched %s at "
			 "the broker: %s",
			 c->name, o->sub_id, on ? "on" : "off",
			 vb_strerror(rc));
	else if (on)
		rc = dout_marker(o);
	return rc;
}

static void dout_free(struct vbi_direct *d, struct vbi_dout *o)
{
	if (o->hashed)
		HASH_DELETE(hh, d->outs, o);
	dq_free_all(o);
	free(o->dsids);
	free(o);
}

/* Close @o's connection: the closed callback finishes (DO_CLOSING).
 * @orderly: after what is staged (the subscriber waits for our frames). */
static void dout_close(struct vbi_dout *o, bool orderly)
{
	if (!o->vc || o->state == DO_CLOSING || o->state == DO_CLOSED)
		return;
	dout_set(o->c->dir, o, DO_CLOSING);
	if (orderly)
		vbi_conn_close_error(o->vc, VB_ECLOSED, "direct path ended");
	else
		vbi_conn_close(o->vc);
}

/* The resends of a failed dout (PROTOCOL.md, "Direct mode", step 4): RESEND
 * frames for the broker, gathered before the DirectSwitch off that
 * announces them, queued after it. */
struct resends {
	struct vb_conn *c;
	struct vbi_dout *o;
	uint32_t max; /* the broker's largest topic + payload */
	struct out_item *head, **tail;
	uint32_t n;
	uint64_t lost; /* too large for the broker, or no memory */
};

static int resend_add(struct resends *r, uint8_t kind, uint32_t sid,
		      uint64_t seq, const void *topic, uint16_t tlen,
		      const void *payload, uint32_t plen)
{
	struct vbi_resend rp = {
		.pub_id = r->c->dir->pub_id,
		.sub_id = r->o->sub_id,
		.seq = seq,
		.kind = kind,
	};
	size_t size = (size_t)VBI_RESEND_PREFIX_LEN + plen;
	struct out_item *it;

	memcpy(rp.conn, r->o->conn_tag, sizeof(rp.conn));
	if ((size_t)tlen + size > r->max ||
	    !(it = vbi_outq_new(OUT_PUB, (size_t)tlen + size))) {
		r->lost++;
		return 0;
	}
	it->fkind = VBI_FRAME_RESEND;
	it->sid = sid;
	it->topic_len = tlen;
	it->size = (uint32_t)size;
	memcpy(it->bytes, topic, tlen);
	vbi_resend_put(it->bytes + tlen, &rp);
	if (plen)
		memcpy(it->bytes + tlen + VBI_RESEND_PREFIX_LEN, payload, plen);
	it->next = NULL;
	*r->tail = it;
	r->tail = &it->next;
	r->n++;
	return 0;
}

static int resend_staged(void *arg, const struct vbi_frame_view *v)
{
	return resend_add(arg, v->kind, v->sid, v->seq, v->topic, v->topic_len,
			  v->payload, v->payload_len);
}

/* Gather into @r what @o wrote that its subscriber may not have taken:
 * the frames staged on @vc that it has not freed, then the queued ones
 * (numbered after them: @o->frames counts both). */
static void resends_gather(struct resends *r, struct vbi_dout *o,
			   struct vbi_conn *vc)
{
	struct vbi_conn_stats cs;
	uint64_t nq = 0, seq;
	const struct dq *it;
	int rc = VB_ESTATE;

	vbi_conn_stats(r->c->vc, &cs);
	r->max = cs.peer_max_msg;
	if (!r->c->dir->pub_id || !vc ||
	    (rc = vbi_conn_unacked(vc, resend_staged, r)) != VB_OK) {
		/* Never seen: a dout that wrote frames has both.  Said, not
		 * silent: what it had in flight is lost. */
		vbi_warn("%s: direct path to %" PRIu64 " failed and what it "
			 "had in flight cannot be resent: %s",
			 r->c->name, o->sub_id, vb_strerror(rc));
		return;
	}
	for (it = o->qhead; it; it = it->next)
		if (it->kind == VBI_FRAME_MSG || it->kind == VBI_FRAME_HMSG)
			nq++;
	seq = o->frames - nq;
	for (it = o->qhead; it; it = it->next)
		if (it->kind == VBI_FRAME_MSG || it->kind == VBI_FRAME_HMSG)
			resend_add(r, it->kind, it->sid, ++seq, it->bytes,
				   it->tlen, it->bytes + it->tlen, it->plen);
}

static void resends_free(struct resends *r)
{
	struct out_item *it;

	while ((it = r->head)) {
		r->head = it->next;
		free(it);
	}
}

/* Tell the broker @o is off (in order with what we published), and end
 * it: drained first unless it @failed.  If it failed (switched on, or off
 * since but written to: idle, draining), what its subscriber may not have
 * taken (on @vc, its connection: o->vc, or the one that just closed) goes
 * again through the broker, announced by a DirectSwitch off (a second one
 * if it was off already). */
static void switch_off_from(struct vb_conn *c, struct vbi_dout *o, bool failed,
			    struct vbi_conn *vc)
{
	struct vbi_direct *d = c->dir;
	struct resends r = { .c = c, .o = o };
	bool on = o->state == DO_ON, announce;
	struct out_item *it;

	r.tail = &r.head;
	if (!on && o->state != DO_IDLE && !(failed && o->state == DO_DRAINING))
		return;
	/* Off already and nothing written: nothing to announce. */
	announce = failed && (on || o->frames);
	if (announce && c->state == CS_OPEN)
		resends_gather(&r, o, vc);
	c->dir->resends_lost += r.lost;
	if (r.lost)
		vbi_warn("%s: direct path to %" PRIu64 " failed: %" PRIu64
			 " message(s) written on it cannot go again through "
			 "the broker (larger than it takes, or no memory)",
			 c->name, o->sub_id, r.lost);
	if ((on || announce) &&
	    switch_send(c, o, false, failed, r.n) == VB_OK && r.n) {
		/* In order behind the switch: queued, never sent ahead. */
		while ((it = r.head)) {
			r.head = it->next;
			vbi_outq_append(c, it);
		}
		d->resent += r.n;
		vbi_outq_pump(c);
		vbi_client_staged(c);
	}
	resends_free(&r);
	if (failed)
		d->paths_failed++;
	if (!failed && o->qhead) {
		dout_set(d, o, DO_DRAINING);
		return;
	}
	dq_free_all(o);
	dout_close(o, !failed);
}

static void dout_switch_off(struct vb_conn *c, struct vbi_dout *o, bool failed)
{
	switch_off_from(c, o, failed, o->vc);
}

/* @o can no longer be written (a write failed): switch off, end it. */
static void dout_fail(struct vb_conn *c, struct vbi_dout *o)
{
	if (o->state == DO_ON || o->state == DO_IDLE ||
	    o->state == DO_DRAINING) {
		dout_switch_off(c, o, true);
		return;
	}
	dq_free_all(o);
	dout_close(o, false);
}

/* No path names @o any more. */
static void dout_retire(struct vb_conn *c, struct vbi_dout *o)
{
	switch (o->state) {
	case DO_ON:
	case DO_IDLE:
		dout_switch_off(c, o, false);
		break;
	case DO_CONNECTING:
	case DO_OPEN:
		dout_close(o, false);
		break;
	case DO_DRAINING:
	case DO_CLOSING:
		break; /* freed at its closed callback */
	case DO_CLOSED:
		dout_free(c->dir, o);
		break;
	}
}

static void dout_unref(struct vb_conn *c, struct vbi_dout *o)
{
	if (o && --o->refs == 0)
		dout_retire(c, o);
}

/* Send @p's grant on @o now, or queue it in order.  VB_OK or an error
 * (VB_ETIMEDOUT: too near its expiry to be taken). */
static int dout_grant(struct vbi_dout *o, struct dpath *p)
{
	struct dq *it;
	int rc;

	if (p->expires_ms <= vbi_clock_wall_ms() + GRANT_MARGIN_MS)
		return VB_ETIMEDOUT;
	if (!o->qhead) {
		rc = grant_send(o->vc, p->grant, p->glen);
		if (rc == VB_OK)
			p->granted = true;
		if (rc != VB_EAGAIN)
			return rc;
	}
	it = malloc(sizeof(*it) + p->glen);
	if (!it)
		return VB_ENOMEM;
	memset(it, 0, sizeof(*it));
	it->plen = (uint32_t)p->glen;
	memcpy(it->bytes, p->grant, p->glen);
	dq_push(o, it);
	p->granted = true;
	return VB_OK;
}

/* Write @m for @sid on @o now (built in its staging, or, if another dout
 * has it staged, sent from there), or queue a copy in order (the caller
 * checked the bound). */
static int dout_frame(struct vbi_dout *o, struct dmsg *m, uint32_t sid)
{
	struct dq *it;
	int rc;

	if (!o->qhead) {
		rc = m->staged ? vbi_conn_fanout(o->vc, m->staged, sid) :
				 VB_EINVAL;
		if (rc == VB_EINVAL) {
			rc = frame_put(o->vc, m, sid);
			if (rc == VB_OK)
				m->staged = o->vc;
		}
		if (rc == VB_OK)
			o->frames++;
		if (rc != VB_EAGAIN)
			return rc;
	}
	it = malloc(sizeof(*it) + m->tlen + m->plen);
	if (!it)
		return VB_ENOMEM;
	memset(it, 0, sizeof(*it));
	it->kind = m->kind;
	it->sid = sid;
	it->tlen = m->tlen;
	it->plen = m->plen;
	memcpy(it->bytes, m->topic, m->tlen);
	if (m->n)
		vbi_outq_hmsg_fill(it->bytes + m->tlen, m->h, m->n, m->blk,
				   m->data, m->size);
	else if (m->size)
		memcpy(it->bytes + m->tlen, m->data, m->size);
	dq_push(o, it);
	o->frames++;
	return VB_OK;
}

/* Every subject with a current path on @o: @fn(c, s, p). */
static void each_path_of(struct vb_conn *c, const struct vbi_dout *o,
			 void (*fn)(struct vb_conn *, struct vbi_dsubj *,
				    struct dpath *, void *),
			 void *arg)
{
	struct vbi_dsubj *s, *tmp;
	unsigned i;

	HASH_ITER(hh, c->dir->subjects, s, tmp)
	{
		for (i = 0; i < s->cur.n; i++)
			if (s->cur.v[i].out == o)
				fn(c, s, &s->cur.v[i], arg);
	}
}

static void grant_one(struct vb_conn *c, struct vbi_dsubj *s, struct dpath *p,
		      void *arg)
{
	unsigned *granted = arg;
	int rc;

	(void)c;
	if (p->granted)
		return;
	rc = dout_grant(p->out, p);
	if (rc == VB_OK)
		(*granted)++;
	else if (rc == VB_ETIMEDOUT)
		s->stale = true; /* ask again: a fresh grant */
}

static void stale_one(struct vb_conn *c, struct vbi_dsubj *s, struct dpath *p,
		      void *arg)
{
	(void)c;
	(void)arg;
	s->stale = true;
	if (s->requery_ns < p->out->retry_ns)
		s->requery_ns = p->out->retry_ns;
}

static void dout_on_open(struct vbi_conn *vc, void *arg)
{
	struct vbi_conn_stats st;
	struct vbi_dout *o = arg;
	struct vb_conn *c;
	unsigned granted = 0;

	if (!o || o->state != DO_CONNECTING)
		return;
	c = o->c;
	/* A reservation under way (another thread's vb_reserve): a switch
	 * queued now would follow the reserved message, which the commit
	 * would write to us too.  Rare: its subjects ask again. */
	if (c->reserving) {
		dout_close(o, false);
		return;
	}
	vbi_conn_stats(vc, &st);
	o->max_msg = st.peer_max_msg;
	dout_set(c->dir, o, DO_OPEN);
	/* Each subject's grant before its first frame; the switch once one
	 * went (the subscriber checks every frame against its grants). */
	each_path_of(c, o, grant_one, &granted);
	if (!granted) {
		dq_free_all(o);
		dout_close(o, false);
		return;
	}
	/* An answer awaited: on with the others once it is in. */
	if (c->dir->pending) {
		dout_set(c->dir, o, DO_IDLE);
		return;
	}
	if (switch_send(c, o, true, false, 0) != VB_OK) {
		dq_free_all(o);
		dout_close(o, false);
		return;
	}
	dout_set(c->dir, o, DO_ON);
}

static void dout_on_writable(struct vbi_conn *vc, void *arg)
{
	struct vbi_dout *o = arg;
	struct dq *it;
	int rc;

	(void)vc;
	if (!o || !o->vc)
		return;
	while ((it = o->qhead)) {
		rc = dq_send(o, it);
		if (rc == VB_EAGAIN)
			return;
		if (rc) {
			dout_fail(o->c, o);
			return;
		}
		o->qhead = it->next;
		if (!o->qhead)
			o->qtail = &o->qhead;
		o->qbytes -= sizeof(*it) + it->tlen + it->plen;
		free(it);
	}
	if (o->state == DO_DRAINING)
		dout_close(o, true);
}

static void dout_on_control(struct vbi_conn *vc, const Verbus__Control *m,
			    void *arg)
{
	struct vbi_dout *o = arg;

	(void)vc;
	if (!o)
		return;
	/* The Pong to vbi_direct_pub_drained()'s Ping: the subscriber has
	 * every frame we wrote before it. */
	if (m->body_case == VERBUS__CONTROL__BODY_PONG) {
		if (o->ping_id && m->pong->id >= o->ping_id) {
			o->frames_seen = o->ping_frames;
			o->ping_id = 0;
		}
		return;
	}
	/* The subscriber's Error closes the connection; anything else it
	 * has no business sending. */
	vbi_debug("%s: direct path to %" PRIu64 ": control message %d ignored",
		  o->c->name, o->sub_id, (int)m->body_case);
}

static void dout_on_closed(struct vbi_conn *vc,
			   const struct vbi_close_info *why, void *arg)
{
	struct vbi_dout *o = arg;
	struct vb_conn *c;
	struct vbi_direct *d;

	if (!o)
		return;
	c = o->c;
	d = c->dir;
	fanout_add(d, vc);
	vbi_debug("%s: direct path to %" PRIu64 " closed: %s", c->name,
		  o->sub_id, why->reason);
	if (o->state == DO_ON || o->state == DO_IDLE ||
	    o->state == DO_DRAINING) {
		o->vc = NULL; /* nothing to close; its staging still there */
		switch_off_from(c, o, true, vc);
	} else if ((o->state == DO_CONNECTING || o->state == DO_OPEN) &&
		   why->err != VB_ECLOSED) {
		d->paths_failed++;
	}
	o->vc = NULL;
	dout_set(d, o, DO_CLOSED);
	d->npeers--;
	dq_free_all(o);
	if (!o->refs) {
		dout_free(d, o);
		return;
	}
	/* Its subjects ask again (a connect grant serves one connection),
	 * not at once. */
	o->retry_ns = vbi_client_now_ns() + DOUT_RETRY_NS;
	each_path_of(c, o, stale_one, NULL);
}

/* Connect a new dout for @dp (c->dir->npeers checked). */
static struct vbi_dout *dout_connect(struct vb_conn *c,
				     const Verbus__DirectPath *dp)
{
	struct vbi_direct *d = c->dir;
	uint8_t cred[VBI_CRED_MAX];
	struct vbi_conn_opts co = {
		.name = c->name,
		.ring_size = DOUT_RING,
		.max_msg = DOUT_MAX_MSG,
		.source = c->source,
		.timeout_ms = c->o.connect_timeout_ms,
		.credentials = cred,
		.isolate = 1,
		.keep_memory = 0,
	};
	struct vbi_dout *o;
	struct vbi_tp *tp;
	struct vb_url u;
	char err[128];
	size_t len;

	if (!dp->url || vbi_url_parse(dp->url, &u, err, sizeof(err)))
		return NULL;
	len = verbus__direct_grant__get_packed_size(dp->connect);
	if (len > sizeof(cred))
		return NULL;
	co.credentials_len = verbus__direct_grant__pack(dp->connect, cred);
	if (vbi_client_tp_for(c, u.scheme, &tp))
		return NULL;
	o = calloc(1, sizeof(*o));
	if (!o)
		return NULL;
	o->c = c;
	o->sub_id = dp->sub_id;
	if (dp->connect->nonce.len >= sizeof(o->conn_tag))
		memcpy(o->conn_tag, dp->connect->nonce.data,
		       sizeof(o->conn_tag));
	o->state = DO_CONNECTING; /* counted in neither paths_open nor idle */
	o->qtail = &o->qhead;
	HASH_ADD(hh, d->outs, sub_id, sizeof(o->sub_id), o);
	if (o->oom) {
		free(o);
		return NULL;
	}
	o->hashed = true;
	if (vbi_tp_connect(tp, u.host, u.port, &co, &dout_cbs, o, &o->vc)) {
		o->vc = NULL;
		dout_free(d, o);
		return NULL;
	}
	d->npeers++;
	return o;
}

/* The dout for @dp: the current one, a new one, or NULL (brokered). */
static struct vbi_dout *dout_for(struct vb_conn *c,
				 const Verbus__DirectPath *dp)
{
	struct vbi_direct *d = c->dir;
	struct vbi_dout *o = NULL;
	uint64_t id = dp->sub_id;

	HASH_FIND(hh, d->outs, &id, sizeof(id), o);
	if (o && o->state == DO_CLOSED && vbi_client_now_ns() >= o->retry_ns) {
		/* A tombstone, replaced: its paths keep it until they go. */
		HASH_DELETE(hh, d->outs, o);
		o->hashed = false;
		o = NULL;
	}
	if (!o) {
		if (d->npeers >= c->o.direct_peers_max)
			return NULL;
		o = dout_connect(c, dp);
		if (!o)
			return NULL;
	}
	o->refs++;
	return o;
}

/* ---- subjects ------------------------------------------------------------ */

static void dset_free(struct vb_conn *c, struct dset *ps)
{
	unsigned i;

	for (i = 0; i < ps->n; i++) {
		free(ps->v[i].sids);
		free(ps->v[i].grant);
		free(ps->v[i].queue);
		dout_unref(c, ps->v[i].out);
	}
	free(ps->v);
	ps->v = NULL;
	ps->n = 0;
}

static void subj_free(struct vb_conn *c, struct vbi_dsubj *s)
{
	if (s->query)
		c->dir->pending--;
	if (c->dir->last_subj == s)
		c->dir->last_subj = NULL;
	HASH_DELETE(hh, c->dir->subjects, s);
	dset_free(c, &s->cur);
	dset_free(c, &s->next);
	free(s);
}

/* Ask the broker about @s (if it is open). */
static void subj_query(struct vb_conn *c, struct vbi_dsubj *s)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__DirectQuery q = VERBUS__DIRECT_QUERY__INIT;
	uint64_t id = c->dir->next_query + 1;

	if (c->state != CS_OPEN)
		return;
	q.id = id;
	q.subject = s->subject;
	m.body_case = VERBUS__CONTROL__BODY_DIRECT_QUERY;
	m.direct_query = &q;
	if (vbi_outq_ctrl(c, &m) != VB_OK)
		return; /* asked at the next publish */
	c->dir->next_query = id;
	if (!s->query)
		c->dir->pending++;
	s->query = id;
	/* A part-gathered answer to an older query goes. */
	dset_free(c, &s->next);
	s->next_others = false;
}

/* A new subject (slen bytes of c->topic): remembered and asked about. */
static void subj_new(struct vb_conn *c, size_t slen)
{
	struct vbi_direct *d = c->dir;
	struct vbi_dsubj *s;

	if (c->state != CS_OPEN || HASH_COUNT(d->subjects) >= DSUBJ_MAX)
		return;
	s = calloc(1, sizeof(*s) + slen + 1);
	if (!s)
		return;
	memcpy(s->subject, c->topic, slen);
	HASH_ADD_KEYPTR(hh, d->subjects, s->subject, slen, s);
	if (s->oom) {
		free(s);
		return;
	}
	subj_query(c, s);
}

/* Append @dp (of @s's answer) to @s->next. */
static void path_add(struct vb_conn *c, struct vbi_dsubj *s,
		     const Verbus__DirectPath *dp)
{
	Verbus__DirectGrant g;
	struct dpath *v, *p;
	unsigned i;

	if (!dp->connect || !dp->grant || !dp->grant->n_sids ||
	    s->next.n >= DPATHS_MAX)
		return;
	/* One path per subscriber connection and group. */
	for (i = 0; i < s->next.n; i++)
		if (s->next.v[i].out &&
		    s->next.v[i].out->sub_id == dp->sub_id &&
		    !strcmp(s->next.v[i].queue ? s->next.v[i].queue : "",
			    dp->grant->queue))
			return;
	v = realloc(s->next.v, (s->next.n + 1) * sizeof(*v));
	if (!v)
		return;
	s->next.v = v;
	p = &v[s->next.n];
	memset(p, 0, sizeof(*p));
	/* The grant as the subscriber checks it: with the subject. */
	g = *dp->grant;
	g.subject = s->subject;
	p->glen = verbus__direct_grant__get_packed_size(&g);
	p->grant = malloc(p->glen);
	p->sids = malloc(dp->grant->n_sids * sizeof(*p->sids));
	if (dp->grant->queue[0])
		p->queue = strdup(dp->grant->queue);
	if (!p->grant || !p->sids || p->glen > VBI_CTRL_MAX / 2 ||
	    (dp->grant->queue[0] && !p->queue))
		goto out_free;
	verbus__direct_grant__pack(&g, p->grant);
	memcpy(p->sids, dp->grant->sids, dp->grant->n_sids * sizeof(*p->sids));
	p->nsids = dp->grant->n_sids;
	p->expires_ms = dp->grant->expires_ms;
	p->out = dout_for(c, dp);
	s->next.n++;
	return;
out_free:
	free(p->grant);
	free(p->sids);
	free(p->queue);
}

/* @s's gathered answer becomes its current one. */
static void subj_commit(struct vb_conn *c, struct vbi_dsubj *s, uint64_t gen)
{
	unsigned i;
	int rc;

	dset_free(c, &s->cur);
	s->cur = s->next;
	s->next.v = NULL;
	s->next.n = 0;
	s->others = s->next_others;
	s->answered = true;
	if (s->query)
		c->dir->pending--;
	s->query = 0;
	s->stale = gen < s->stale_gen;
	/* Grants are fresh now: those of switched-on douts go at once (a
	 * dout still connecting sends its own when it opens). */
	for (i = 0; i < s->cur.n; i++) {
		struct dpath *p = &s->cur.v[i];

		if (!p->out || p->out->state != DO_ON)
			continue;
		rc = dout_grant(p->out, p);
		if (rc && rc != VB_ETIMEDOUT) {
			dout_fail(c, p->out);
			continue;
		}
		/* New sids (a subscription made since): off, and on again
		 * naming them (pub_resume, after this answer), so that the
		 * broker leaves them to us only from that point on. */
		for (size_t k = 0; k < p->nsids; k++) {
			if (dout_has(p->out, p->sids[k]))
				continue;
			if (switch_send(c, p->out, false, false, 0) == VB_OK)
				dout_set(c->dir, p->out, DO_IDLE);
			else
				dout_fail(c, p->out);
			break;
		}
	}
}

void vbi_direct_on_paths(struct vb_conn *c, const Verbus__DirectPaths *p)
{
	struct vbi_direct *d = c->dir;
	struct vbi_dsubj *s = NULL;
	size_t i;

	if (!d || !p->subject || !p->id)
		return;
	HASH_FIND(hh, d->subjects, p->subject, strlen(p->subject), s);
	if (!s || s->query != p->id)
		return; /* forgotten, or an answer to an older question */
	if (p->pub_id)
		d->pub_id = p->pub_id;
	s->next_others = s->next_others || p->others;
	for (i = 0; i < p->n_paths; i++)
		if (p->paths[i])
			path_add(c, s, p->paths[i]);
	if (!p->more) {
		subj_commit(c, s, p->gen);
		pub_resume(c);
	}
}

void vbi_direct_on_stale(struct vb_conn *c, const Verbus__DirectStale *st)
{
	struct vbi_direct *d = c->dir;
	struct vbi_dsubj *s, *tmp;
	bool marked = false;
	size_t i;

	if (!d)
		return;
	if (!st->n_subjects) {
		HASH_ITER(hh, d->subjects, s, tmp)
		{
			s->stale = true;
			if (st->gen > s->stale_gen)
				s->stale_gen = st->gen;
		}
		marked = true;
	}
	for (i = 0; i < st->n_subjects; i++) {
		if (!st->subjects[i])
			continue;
		HASH_FIND(hh, d->subjects, st->subjects[i],
			  strlen(st->subjects[i]), s);
		if (!s)
			continue;
		s->stale = true;
		if (st->gen > s->stale_gen)
			s->stale_gen = st->gen;
		marked = true;
	}
	/* Every path off now, in order, not at the next message on those
	 * subjects: a subscriber that dropped a subscription we write to
	 * (draining it, say) waits for our switch, and the broker revokes
	 * what is still on after a grace (after a reload too: a stale for
	 * everything).  Not inside a reservation: its message, staged
	 * before this switch, is still to be written to the paths
	 * (vbi_direct_publish_reserved); the next message does it. */
	if (marked && d->paths_open && !c->reserving)
		pub_quiesce(c);
}

/* ---- publishing ---------------------------------------------------------- */

/*
 * A message on a subject whose paths we do not know now (new, stale,
 * asked again, past the cap) goes through the broker, which skips the
 * direct subscriptions of every subscriber we are switched on to: so
 * every switched-on dout goes off first (DirectSwitch off, in order before
 * the message), idle until every answer is in (pub_resume).  Each
 * publisher's order per subscriber holds across the moves (the fences).
 */
static void pub_quiesce(struct vb_conn *c)
{
	struct vbi_direct *d = c->dir;
	struct vbi_dout *o, *tmp;

	HASH_ITER(hh, d->outs, o, tmp)
	dout_pause(c, o);
}

/* @o cannot take the message at hand (larger than its subscriber takes,
 * its queue full): off for now, ahead of the message, which the broker
 * carries; on again at the next message (pub_resume), over the same
 * connection (what waits on it still goes: the switch's frames count it). */
static void dout_pause(struct vb_conn *c, struct vbi_dout *o)
{
	if (o->state != DO_ON)
		return;
	if (switch_send(c, o, false, false, 0) != VB_OK) {
		dout_fail(c, o);
		return;
	}
	dout_set(c->dir, o, DO_IDLE);
}

/* Every answer is in: the idle douts on again. */
static void pub_resume(struct vb_conn *c)
{
	struct vbi_direct *d = c->dir;
	struct vbi_dout *o, *tmp;

	if (d->pending || !d->idle || c->reserving)
		return;
	HASH_ITER(hh, d->outs, o, tmp)
	{
		/* A backlog past half the bound: not yet (no flapping
		 * under a slow subscriber). */
		if (o->state != DO_IDLE || !o->vc ||
		    o->qbytes > c->o.pending_max / 2)
			continue;
		if (switch_send(c, o, true, false, 0) != VB_OK) {
			dout_fail(c, o);
			continue;
		}
		dout_set(d, o, DO_ON);
	}
}

/*
 * An inbox's subject ("_INBOX." and more: a reply's) never goes direct,
 * and the broker skips nobody for it (daemon/direct.c,
 * bk_direct_eligible()): it goes through the broker without asking and
 * without switching anything off.  Asking would cost a DirectQuery and a
 * switch of every path off and on for each request's reply, each on a
 * subject of its own.
 */
static bool never_direct(const char *subject, size_t slen)
{
	return slen > VBI_INBOX_PREFIX_LEN &&
	       !memcmp(subject, VBI_INBOX_PREFIX, VBI_INBOX_PREFIX_LEN);
}

/* Whether @s's paths are known now. */
static bool subj_fresh(const struct vbi_dsubj *s)
{
	return s && s->answered && !s->stale && !s->query;
}

/*
 * Write @m to @p's dout (switched on), for each of its declared sids or
 * (@only non-zero) for that one: true if it went (or waits in order on the
 * dout), false if the dout was switched off instead (@reserved: the broker
 * has the message already, so it waits on the dout past the bound).
 */
static bool path_write(struct vb_conn *c, struct dpath *p, struct dmsg *m,
		       bool reserved, bool *partial, uint32_t only)
{
	struct vbi_dout *o = p->out;
	size_t i;
	int rc;

	if ((size_t)m->tlen + m->plen > o->max_msg ||
	    (!reserved && o->qhead &&
	     o->qbytes + dq_cost(m, only ? 1 : p->nsids) > c->o.pending_max)) {
		dout_pause(c, o);
		return false;
	}
	if (!p->granted) {
		rc = dout_grant(o, p);
		if (rc) {
			/* Too old to be taken: the broker carries it. */
			if (rc == VB_ETIMEDOUT)
				dout_switch_off(c, o, false);
			else
				dout_fail(c, o);
			return false;
		}
	}
	for (i = 0; i < p->nsids; i++) {
		if (only && p->sids[i] != only)
			continue;
		/* Not declared (past the cap): the broker delivers it. */
		if (!dout_has(o, p->sids[i])) {
			*partial = true;
			continue;
		}
		rc = dout_frame(o, m, p->sids[i]);
		if (rc) {
			dout_fail(c, o);
			return false;
		}
	}
	return true;
}

/* Group @q's members @m may go to now, one per (path, declared sid) of a
 * switched-on dout: how many; the @k-th's path and sid in @pp, @sid. */
static unsigned group_members(const struct vbi_dsubj *s, const char *q,
			      unsigned k, struct dpath **pp, uint32_t *sid)
{
	unsigned i, n = 0;

	for (i = 0; i < s->cur.n; i++) {
		struct dpath *p = &s->cur.v[i];

		if (!p->queue || strcmp(p->queue, q) || !p->out ||
		    p->out->state != DO_ON)
			continue;
		for (size_t j = 0; j < p->nsids; j++) {
			if (!dout_has(p->out, p->sids[j]))
				continue;
			if (n++ == k) {
				*pp = p;
				*sid = p->sids[j];
			}
		}
	}
	return n;
}

/*
 * Write @m to one member of group @q among @s's paths, in rotation: the
 * dout it went on, or NULL if none of the group's paths is switched on
 * (the broker then picks a member: it leaves a group to us exactly while
 * one of the members we declared at a switch matches the subject).  A
 * member whose dout cannot take it is switched off, and the next tried.
 */
static struct vbi_dout *group_write(struct vb_conn *c, struct vbi_dsubj *s,
				    const char *q, struct dmsg *m,
				    bool reserved)
{
	struct dpath *p = NULL;
	uint32_t sid = 0;
	bool partial = false;
	unsigned n;

	while ((n = group_members(s, q, 0, &p, &sid)) > 0) {
		(void)group_members(s, q, s->turn++ % n, &p, &sid);
		if (path_write(c, p, m, reserved, &partial, sid))
			return p->out;
		/* Switched off (or failed): one member fewer. */
	}
	return NULL;
}

/* Whether @s's path @i is the first of its group (each group is written
 * once per message). */
static bool group_first(const struct vbi_dsubj *s, unsigned i)
{
	for (unsigned j = 0; j < i; j++)
		if (s->cur.v[j].queue &&
		    !strcmp(s->cur.v[j].queue, s->cur.v[i].queue))
			return false;
	return true;
}

/* Write @m to every switched-on path of @s, and to one member of each of
 * its queue groups; true if those are all the paths there are and the
 * broker needs no copy. */
static bool subj_write(struct vb_conn *c, struct vbi_dsubj *s, struct dmsg *m,
		       bool reserved)
{
	struct vbi_direct *d = c->dir;
	bool all = s->cur.n && !s->others && !s->stale, wrote = false;
	bool partial = false;
	bool now = !c->in_process &&
		   (!c->posted_early || (c->o.flags & VB_OPT_NODELAY));
	struct vbi_dout *o;
	unsigned i;

	for (i = 0; i < s->cur.n; i++) {
		struct dpath *p = &s->cur.v[i];

		if (p->queue) {
			if (!group_first(s, i))
				continue;
			o = group_write(c, s, p->queue, m, reserved);
		} else if (p->out && p->out->state == DO_ON &&
			   path_write(c, p, m, reserved, &partial, 0)) {
			o = p->out;
		} else {
			o = NULL;
		}
		if (!o) {
			all = false;
			continue;
		}
		d->msgs_out++;
		wrote = true;
		/* A lone message is posted at once; a burst's later ones
		 * wait for the loop, which posts them as one write. */
		if (now)
			(void)vbi_conn_flush(o->vc);
	}
	if (wrote && !now)
		vbi_client_wake(c);
	if (partial)
		all = false;
	if (all && now)
		c->posted_early = true;
	return all;
}

/* The entry of @subject (@slen bytes), or NULL.  A publisher mostly
 * publishes on the subject it published on last: that one is compared, not
 * hashed. */
static struct vbi_dsubj *subj_find(struct vbi_direct *d, const char *subject,
				   size_t slen)
{
	struct vbi_dsubj *s = d->last_subj;

	if (s && s->hh.keylen == slen && !memcmp(s->subject, subject, slen))
		return s;
	HASH_FIND(hh, d->subjects, subject, slen, s);
	if (s)
		d->last_subj = s;
	return s;
}

/* @slen bytes of c->topic: its entry, made (and asked about) if new;
 * NULL if it has none that is answered. */
static struct vbi_dsubj *subj_get(struct vb_conn *c, const char *subject,
				  size_t slen)
{
	struct vbi_dsubj *s = NULL;

	s = subj_find(c->dir, subject, slen);
	if (!s) {
		if (subject == c->topic)
			subj_new(c, slen);
		return NULL;
	}
	if (s->stale && !s->query &&
	    (!s->requery_ns || vbi_client_later_ns() >= s->requery_ns))
		subj_query(c, s);
	return s->answered ? s : NULL;
}

bool vbi_direct_publish(struct vb_conn *c, size_t slen, int tlen,
			const struct vb_header *h, size_t n, size_t blk,
			const void *data, size_t size)
{
	struct vbi_direct *d = c->dir;
	struct vbi_dsubj *s;
	struct dmsg m;

	if (!d && vbi_direct_get(c, &d))
		return false;
	m.staged = NULL;
	if (never_direct(c->topic, slen))
		return false;
	s = subj_get(c, c->topic, slen);
	if (!subj_fresh(s)) {
		if (d->paths_open)
			pub_quiesce(c);
		return false;
	}
	if (d->idle && !d->pending)
		pub_resume(c);
	m.topic = c->topic;
	m.tlen = (uint16_t)tlen;
	m.kind = n ? VBI_FRAME_HMSG : VBI_FRAME_MSG;
	m.h = h;
	m.n = n;
	m.blk = blk;
	m.data = data;
	m.size = size;
	m.plen = (uint32_t)((n ? VBI_FRAME_HLEN_LEN + blk : 0) + size);
	return subj_write(c, s, &m, false);
}

void vbi_direct_reserve(struct vb_conn *c, size_t slen, int tlen, size_t size)
{
	struct vbi_dsubj *s = NULL;
	unsigned i;

	if (!c->dir || never_direct(c->topic, slen))
		return;
	s = subj_find(c->dir, c->topic, slen);
	/* Paths unknown: the broker carries it, the douts off first (the
	 * commit cannot put a switch before the message). */
	if (!subj_fresh(s)) {
		if (c->dir->paths_open)
			pub_quiesce(c);
		return;
	}
	/* What the commit could not write: off now, ahead of the message
	 * (the commit cannot put a switch before it). */
	for (i = 0; i < s->cur.n; i++) {
		struct vbi_dout *o = s->cur.v[i].out;

		if (o && o->state == DO_ON &&
		    ((size_t)tlen + size > o->max_msg ||
		     (o->qhead &&
		      o->qbytes + s->cur.v[i].nsids * (sizeof(struct dq) +
						       (size_t)tlen + size) >
			      c->o.pending_max)))
			dout_pause(c, o);
	}
}

void vbi_direct_publish_reserved(struct vb_conn *c, const char *topic, int tlen,
				 const void *payload, size_t size)
{
	const char *sp = memchr(topic, ' ', (size_t)tlen);
	size_t slen = sp ? (size_t)(sp - topic) : (size_t)tlen;
	struct vbi_direct *d = c->dir;
	struct vbi_dsubj *s;
	struct dmsg m = { 0 };

	if ((!d && vbi_direct_get(c, &d)) || never_direct(topic, slen))
		return;
	s = subj_get(c, topic, slen);
	/* Not fresh: vbi_direct_reserve() switched everything off. */
	if (!subj_fresh(s))
		return;
	m.topic = topic;
	m.tlen = (uint16_t)tlen;
	m.kind = VBI_FRAME_MSG;
	m.data = payload;
	m.size = size;
	m.plen = (uint32_t)size;
	(void)subj_write(c, s, &m, true);
}

/* ---- the end ------------------------------------------------------------- */

/* Everything goes, no DirectSwitch (the broker forgot us, or we close). */
static void pub_clear(struct vb_conn *c)
{
	struct vbi_direct *d = c->dir;
	struct vbi_dsubj *s, *stmp;
	struct vbi_dout *o, *otmp;

	if (!d)
		return;
	/* The connections first: no callback may reach what goes next. */
	HASH_ITER(hh, d->outs, o, otmp)
	{
		if (o->vc) {
			vbi_conn_set_arg(o->vc, NULL);
			vbi_conn_close(o->vc);
			o->vc = NULL;
			d->npeers--;
		}
		dout_set(d, o, DO_CLOSED);
		o->refs++; /* kept until the hash lets go of it below */
	}
	HASH_ITER(hh, d->subjects, s, stmp)
	subj_free(c, s);
	HASH_ITER(hh, d->outs, o, otmp)
	dout_free(d, o);
	d->pub_id = 0;
	d->paths_open = 0;
	d->idle = 0;
	d->pending = 0;
}

/* Ping @o behind what it was given (once per flush round): the Pong says
 * the subscriber has it all. */
static void dout_ping(struct vbi_dout *o)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__Ping p = VERBUS__PING__INIT;

	p.id = o->frames + 1; /* > any earlier Ping's on it: never 0 */
	m.body_case = VERBUS__CONTROL__BODY_PING;
	m.ping = &p;
	/* After every frame staged before it (the session's rule); no
	 * room: tried again at the next look. */
	if (vbi_conn_send_ctrl(o->vc, &m) == VB_OK) {
		o->ping_id = p.id;
		o->ping_frames = o->frames;
		o->ping_ns = vbi_client_now_ns();
	}
}

void vbi_direct_pub_fanout(const struct vb_conn *c, uint64_t *gathered,
			   uint64_t *copied)
{
	const struct vbi_dout *o, *tmp;
	struct vbi_direct sum = { 0 };

	sum.fan_gathered = c->dir->fan_gathered;
	sum.fan_copied = c->dir->fan_copied;
	HASH_ITER(hh, c->dir->outs, o, tmp)
	{
		if (o->vc)
			fanout_add(&sum, o->vc);
	}
	*gathered = sum.fan_gathered;
	*copied = sum.fan_copied;
}

uint64_t vbi_direct_pub_mem(const struct vb_conn *c)
{
	const struct vbi_dout *o, *tmp;
	struct vbi_conn_stats st;
	uint64_t n = 0;

	HASH_ITER(hh, c->dir->outs, o, tmp)
	{
		if (!o->vc || o->state == DO_CONNECTING)
			continue;
		vbi_conn_stats(o->vc, &st);
		n += (uint64_t)st.ring_size + st.peer_ring;
	}
	return n;
}

bool vbi_direct_pub_drained(struct vb_conn *c)
{
	struct vbi_direct *d = c->dir;
	struct vbi_dout *o, *tmp;
	bool drained = true;

	HASH_ITER(hh, d->outs, o, tmp)
	{
		if (!o->vc || o->state == DO_CONNECTING ||
		    o->frames_seen == o->frames)
			continue;
		drained = false;
		if (!o->qhead &&
		    (!o->ping_id ||
		     vbi_client_now_ns() - o->ping_ns > DOUT_REPING_NS))
			dout_ping(o);
	}
	return drained;
}

void vbi_direct_pub_lost(struct vb_conn *c)
{
	pub_clear(c);
}

void vbi_direct_pub_free(struct vb_conn *c)
{
	pub_clear(c);
}
