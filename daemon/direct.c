/*
 * direct.c - direct mode, the broker's side (docs/PROTOCOL.md, "Direct
 * mode"): a subscriber's DirectListen and its key, a publisher's
 * DirectQuery answered with signed grants, the DirectSwitch that moves a
 * (publisher, subscriber) pair between the broker and the direct
 * connection, the DirectFence that orders the move in the subscriber's
 * stream, and the DirectStale and DirectRevoke that take grants back.
 *
 * State lives in a struct bdirect per connection that ever took part
 * (NULL for every other: a non-direct broker pays one branch per routed
 * message, bconn.direct_on).  A switched-on pair is one struct dlink in
 * two hashes: the publisher's (by the subscriber's cid) and the
 * subscriber's (by the publisher's), so that either closing unlinks it.
 *
 * Every direct control message to a connection goes through one FIFO of
 * its own (struct downed), so that none is lost to a moment without
 * credit and each keeps its place: a DirectFence waits, as a Pong does
 * (subs.c), until everything queued to the subscriber before it has been
 * handed to the transport; what follows it waits behind it.
 *
 * Ownership: a bdirect belongs to its bconn and is freed when it closes
 * (bk_direct_closed()); a dlink to its two ends.
 * Threading: the broker's thread only (broker_int.h).
 */
#include "daemon/broker_int.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/resend.h"
#include "core/subject.h"
#include "core/url.h"
#include "proto/grant.h"

#include <verbus/verbus.h>

#include <arpa/inet.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A publisher's queried subjects, at most (past that: no paths). */
#define DIRECT_QUERIES_MAX 1024u
/* Paths in one answer, at most (the rest stay brokered). */
#define DIRECT_PATHS_MAX 256u
/* A reload asks each publisher to switch its paths off (DirectStale, all
 * subjects): those it has not switched off this long after are revoked
 * (DirectRevoke to the subscriber), in no order with its stream. */
#define DIRECT_REVOKE_GRACE_MS 5000u
/* How long a grant holds, from the answer. */
#define DIRECT_GRANT_MS 60000u
/* Subscribers a publisher switched off from that it remembers, at most
 * (bdirect.offs). */
#define DIRECT_OFFS_MAX 16u
/* Direct control messages owed to one connection, at most: a peer that
 * takes none while this many wait is closed as a slow consumer. */
#define DIRECT_OWED_MAX 4096u

_Static_assert(sizeof(((struct vbd_stats_conn *)0)->direct_url) ==
		       VBI_URL_MAX + 1,
	       "the monitor's direct_url holds a DirectListen's");

/* A publisher switched to a subscriber (DirectSwitch on). */
struct dlink {
	uint64_t pub_cid, sub_cid;
	struct bconn *pub, *sub;
	/* The subscriber's sids the publisher writes to itself (its
	 * DirectSwitch's), sorted: only those are skipped. */
	uint32_t *sids;
	size_t nsids;
	/* Those of them that were queue group members at the switch: the
	 * broker skips a group whose subject one of them still matches
	 * (bk_direct_skip()). */
	uint32_t *qsids;
	size_t nqsids;
	/* Non-zero: a reload asked the publisher to switch off, or one of
	 * the declared sids went (draining); revoked at this time
	 * (vbi_clock_coarse_ms) if it has not. */
	uint64_t revoke_ms;
	/* A subscription it declared went (an Unsubscribe: maybe a drain):
	 * the subscriber's Pongs to Pings that ask it (a drain's) wait until
	 * the publisher has switched off, behind its DirectFence
	 * (bk_direct_hold_ping()). */
	bool draining;
	UT_hash_handle hh_on; /* pub's bdirect.on, by sub_cid */
	UT_hash_handle hh_from; /* sub's bdirect.from, by pub_cid */
	bool oom;
};

/* A subject a publisher asked about (its queried set). */
struct dquery {
	UT_hash_handle hh; /* bdirect.queries, by subject */
	bool oom;
	char subject[]; /* NUL-terminated */
};

/* A direct control message owed to a connection, packed. */
struct downed {
	struct downed *next;
	/* marked: sent only once everything queued before it has gone to
	 * the transport (a DirectFence); @mark.id unused. */
	struct owed_pong mark;
	bool marked;
	size_t len;
	uint8_t buf[];
};

struct bdirect {
	char url[VBI_URL_MAX + 1]; /* its DirectListen; "" before */
	uint8_t key[VBI_DIRECT_KEY_LEN]; /* its grants' key (listening) */
	bool listening;
	uint32_t nsubs; /* its direct subscriptions now */
	struct dquery *queries; /* as a publisher: subjects asked about */
	uint32_t nqueries;
	struct dlink *on; /* as a publisher: switched to (bconn.direct_on) */
	uint32_t qlinks; /* of @on, those with queue members (nqsids) */
	struct dlink *from; /* as a subscriber: switched to it */
	uint32_t nfrom;
	struct downed *owed, *owed_tail; /* FIFO, oldest first */
	uint32_t nowed;
	/* As a subscriber: links of @from draining, and the Pings whose
	 * Pongs wait for them (in order; past PINGS_MAX the newest takes
	 * the last one's place, as subs.c does). */
	uint32_t ndraining;
	uint64_t held[PINGS_MAX];
	uint32_t nheld;
	/* As a publisher: the RESEND frames its last DirectSwitch off (a
	 * failed path) announced, still to come, for subscriber
	 * @resend_cid (core/resend.h). */
	uint64_t resend_cid;
	uint32_t resend_left;
	/* As a publisher: the subscribers it switched off from last (a
	 * ring): told resends_done when it goes, so that none waits for
	 * resends of a publisher that is gone. */
	uint64_t offs[DIRECT_OFFS_MAX];
	uint32_t noffs;
	bool sids_logged, paths_logged, full_logged, resend_logged;
};

static int sid_cmp(const void *x, const void *y);

/* @bc's direct state, made on first use; NULL: out of memory. */
static struct bdirect *direct_get(struct bconn *bc)
{
	if (!bc->direct)
		bc->direct = calloc(1, sizeof(*bc->direct));
	return bc->direct;
}

/* ---- control messages, in order --------------------------------------- */

/* Queue @m behind what @bc is owed (packed; VB_ENOMEM, VB_ENOSPC). */
static int owed_push(struct bconn *bc, const Verbus__Control *m,
		     const struct owed_pong *mark, bool marked)
{
	struct bdirect *d = bc->direct;
	struct downed *o;
	size_t len;
	int rc;

	if (d->nowed >= DIRECT_OWED_MAX)
		return VB_ENOSPC;
	o = malloc(sizeof(*o) + VBI_CTRL_MAX);
	if (!o)
		return VB_ENOMEM;
	rc = vbi_codec_encode(m, o->buf, VBI_CTRL_MAX, &len);
	if (rc) {
		free(o);
		return rc;
	}
	o->next = NULL;
	o->mark = *mark;
	o->marked = marked;
	o->len = len;
	if (d->owed_tail)
		d->owed_tail->next = o;
	else
		d->owed = o;
	d->owed_tail = o;
	d->nowed++;
	return VB_OK;
}

/*
 * Send @m to @bc behind every direct control message it is owed; @marked:
 * also behind every delivery queued to it so far (a DirectFence).  A peer
 * whose owed messages pile up past DIRECT_OWED_MAX takes none: it is
 * closed as a slow consumer.  @bc->direct must exist.
 */
static void direct_send(struct bconn *bc, const Verbus__Control *m, bool marked)
{
	struct owed_pong mark = { .pend_mark = bc->pend_pushed };
	int rc;

	if (bc->closing)
		return;
	if (!bc->direct->owed && (!marked || bk_owed_due(bc, &mark))) {
		rc = vbi_conn_send_ctrl(bc->c, m);
		if (rc != VB_EAGAIN) {
			if (rc)
				vbi_debug("conn cid %" PRIu64 " %s: %s not "
					  "sent: %s",
					  bc->cid, bc->name,
					  vbi_codec_kind_name(m),
					  vb_strerror(rc));
			return;
		}
	}
	rc = owed_push(bc, m, &mark, marked);
	if (rc == VB_ENOSPC)
		bk_slow_disconnect(bc, "it takes no direct control messages");
	else if (rc)
		vbi_warn("conn cid %" PRIu64 " %s: %s lost: %s", bc->cid,
			 bc->name, vbi_codec_kind_name(m), vb_strerror(rc));
}

/* Whether a DirectFence @d owes must go before the delivery that follows
 * the first @popped queued: it was queued behind exactly those. */
static bool fence_at(const struct bdirect *d, uint64_t popped)
{
	for (const struct downed *o = d->owed; o; o = o->next)
		if (o->marked && o->mark.pend_mark <= popped)
			return true;
	return false;
}

bool bk_direct_fence_waits(struct bconn *bc)
{
	uint64_t popped = bc->pend_pushed - bc->pend_n;

	if (!bc->direct->owed || !fence_at(bc->direct, popped))
		return false;
	bk_direct_send_owed(bc);
	return bc->direct && bc->direct->owed && fence_at(bc->direct, popped);
}

void bk_direct_send_owed(struct bconn *bc)
{
	struct bdirect *d = bc->direct;

	while (d && d->owed && !bc->closing) {
		struct downed *o = d->owed;
		Verbus__Control *m;
		int rc;

		if (o->marked && !bk_owed_due(bc, &o->mark))
			return;
		rc = vbi_codec_decode(o->buf, o->len, &m);
		if (rc == VB_ENOMEM)
			return; /* next turn */
		if (rc == VB_OK) {
			rc = vbi_conn_send_ctrl(bc->c, m);
			vbi_codec_free(m);
			if (rc == VB_EAGAIN)
				return;
		}
		if (rc)
			vbi_debug("conn cid %" PRIu64 " %s: a direct control "
				  "message not sent: %s",
				  bc->cid, bc->name, vb_strerror(rc));
		d->owed = o->next;
		if (!d->owed)
			d->owed_tail = NULL;
		d->nowed--;
		free(o);
	}
}

static void send_revoke(struct bconn *s, uint64_t pub_cid)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__DirectRevoke r = VERBUS__DIRECT_REVOKE__INIT;

	r.pub_id = pub_cid;
	m.body_case = VERBUS__CONTROL__BODY_DIRECT_REVOKE;
	m.direct_revoke = &r;
	s->b->st.direct_revokes++;
	direct_send(s, &m, false);
}

/* DirectFence to @s for publisher @pub_cid; off: with the frames it wrote
 * on its direct connection, which @s delivers before what follows. */
static void send_fence(struct bconn *s, uint64_t pub_cid, bool on,
		       uint64_t frames)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__DirectFence f = VERBUS__DIRECT_FENCE__INIT;

	f.pub_id = pub_cid;
	f.on = on;
	f.frames = on ? 0 : frames;
	m.body_case = VERBUS__CONTROL__BODY_DIRECT_FENCE;
	m.direct_fence = &f;
	direct_send(s, &m, true);
}

/* Tell subscriber @sub_cid that publisher @pub sends it no more resends
 * (a DirectFence with resends_done): a subscriber waiting for them stops
 * (PROTOCOL.md, step 4). */
static void send_resends_done(struct bconn *pub, uint64_t sub_cid)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__DirectFence f = VERBUS__DIRECT_FENCE__INIT;
	struct bconn *s = NULL;

	HASH_FIND(hh, pub->b->by_cid, &sub_cid, sizeof(sub_cid), s);
	if (!s || s->closing)
		return;
	f.pub_id = pub->cid;
	f.resends_done = true;
	m.body_case = VERBUS__CONTROL__BODY_DIRECT_FENCE;
	m.direct_fence = &f;
	direct_send(s, &m, true);
}

/* The resends @pub owes have all come (or will not). */
static void resend_end(struct bconn *pub)
{
	struct bdirect *d = pub->direct;

	d->resend_left = 0;
	send_resends_done(pub, d->resend_cid);
}

/* ---- switched pairs ----------------------------------------------------- */

static struct dlink *link_find(struct bconn *pub, uint64_t sub_cid)
{
	struct dlink *l = NULL;

	if (pub->direct)
		HASH_FIND(hh_on, pub->direct->on, &sub_cid, sizeof(sub_cid), l);
	return l;
}

static void link_free(struct dlink *l)
{
	struct vbd_broker *b = l->pub->b;

	HASH_DELETE(hh_on, l->pub->direct->on, l);
	l->pub->direct_on--;
	HASH_DELETE(hh_from, l->sub->direct->from, l);
	l->sub->direct->nfrom--;
	b->st.direct_paths_open--;
	if (l->nqsids)
		l->pub->direct->qlinks--;
	if (l->draining)
		l->sub->direct->ndraining--;
	free(l->sids);
	free(l->qsids);
	free(l);
}

/* The Pongs @s's Pings wait for go, behind the fences sent before, once
 * no publisher may still write to a subscription it dropped. */
static void pongs_release(struct bconn *s)
{
	struct bdirect *d = s->direct;
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__Pong p = VERBUS__PONG__INIT;

	if (!d || d->ndraining || !d->nheld)
		return;
	m.body_case = VERBUS__CONTROL__BODY_PONG;
	m.pong = &p;
	for (uint32_t i = 0; i < d->nheld; i++) {
		p.id = d->held[i];
		direct_send(s, &m, true);
	}
	d->nheld = 0;
}

bool bk_direct_hold_ping(struct bconn *bc, uint64_t id, bool wait_direct)
{
	struct bdirect *d = bc->direct;

	/* Behind a held one, every Pong waits: a client takes the highest
	 * id it has seen. */
	if (!d->nheld && !(wait_direct && d->ndraining))
		return false;
	if (d->nheld == PINGS_MAX)
		d->held[PINGS_MAX - 1] = id;
	else
		d->held[d->nheld++] = id;
	return true;
}

/* @pub's grants no longer hold: each subscriber it switched to is told
 * (DirectRevoke) and the pairs go. */
static void revoke_all(struct bconn *pub)
{
	struct dlink *l, *tmp;

	if (!pub->direct)
		return;
	HASH_ITER(hh_on, pub->direct->on, l, tmp)
	{
		struct bconn *s = l->sub;

		send_revoke(s, pub->cid);
		link_free(l);
		pongs_release(s);
	}
}

/* ---- queried subjects and staleness ------------------------------------ */

/* @d's count of queried subjects is now @n; b->direct_querying counts
 * the connections with any (interest changes look at those only). */
static void nq_set(struct vbd_broker *b, struct bdirect *d, uint32_t n)
{
	if (!d->nqueries && n)
		b->direct_querying++;
	else if (d->nqueries && !n)
		b->direct_querying--;
	d->nqueries = n;
}

static void queries_clear(struct vbd_broker *b, struct bdirect *d)
{
	struct dquery *q, *tmp;

	HASH_ITER(hh, d->queries, q, tmp)
	{
		HASH_DEL(d->queries, q);
		free(q);
	}
	nq_set(b, d, 0);
}

/* Remember @subject (@slen bytes) among @d's queried subjects; false if
 * the set is full or out of memory (the answer then has no paths). */
static bool query_remember(struct vbd_broker *b, struct bdirect *d,
			   const char *subject, size_t slen)
{
	struct dquery *q = NULL;

	HASH_FIND(hh, d->queries, subject, slen, q);
	if (q)
		return true;
	if (d->nqueries >= DIRECT_QUERIES_MAX)
		return false;
	q = calloc(1, sizeof(*q) + slen + 1);
	if (!q)
		return false;
	memcpy(q->subject, subject, slen);
	HASH_ADD_KEYPTR(hh, d->queries, q->subject, slen, q);
	if (q->oom) {
		free(q);
		return false;
	}
	nq_set(b, d, d->nqueries + 1);
	return true;
}

/* Tell @p that the paths of @subjects (@n; 0: of everything it asked
 * about) may have changed; those subjects leave its queried set (it asks
 * again).  @subjects point into the set's entries. */
static void send_stale(struct bconn *p, struct dquery **subjects, size_t n)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__DirectStale st = VERBUS__DIRECT_STALE__INIT;
	char **names = NULL;
	struct bdirect *d = p->direct;
	size_t i;

	if (n) {
		names = malloc(n * sizeof(*names));
		if (names) {
			for (i = 0; i < n; i++)
				names[i] = subjects[i]->subject;
			st.subjects = names;
			st.n_subjects = n;
		}
	}
	st.gen = p->b->direct_gen;
	m.body_case = VERBUS__CONTROL__BODY_DIRECT_STALE;
	m.direct_stale = &st;
	/* Not all of them fit: none listed, which means all. */
	if (st.n_subjects &&
	    verbus__control__get_packed_size(&m) > VBI_CTRL_MAX) {
		st.subjects = NULL;
		st.n_subjects = 0;
	}
	p->b->st.direct_stale++;
	direct_send(p, &m, false);
	free(names);
	if (st.n_subjects == 0) {
		queries_clear(p->b, d);
		return;
	}
	for (i = 0; i < n; i++) {
		HASH_DEL(d->queries, subjects[i]);
		free(subjects[i]);
	}
	nq_set(p->b, d, d->nqueries - (uint32_t)n);
}

/*
 * Interest on @pattern in account @a came or went (a subscription, direct
 * or not, or a route's: the paths or an answer's `others` may change):
 * every publisher of @a that asked about a subject the pattern matches is
 * told (DirectStale), and the generation moves on.  Nothing while no
 * publisher has asked about anything (b->direct_querying); else
 * O(connections + their queried subjects) per change: the control plane,
 * rare next to messages.
 */
void bk_direct_interest(struct vbd_broker *b, struct bacct *a,
			const char *pattern)
{
	size_t plen;
	struct dquery **hits = NULL;
	size_t cap = 0;

	if (!b->direct_querying)
		return;
	plen = strlen(pattern);
	b->direct_gen++;
	for (struct bconn *p = b->head; p; p = p->next) {
		struct bdirect *d = p->direct;
		struct dquery *q, *tmp;
		size_t n = 0;

		if (!d || !d->nqueries || p->closing || p->acct != a)
			continue;
		if (cap < d->nqueries) {
			struct dquery **h =
				realloc(hits, d->nqueries * sizeof(*h));

			if (!h) {
				/* Cannot list them: all of them. */
				send_stale(p, NULL, 0);
				continue;
			}
			hits = h;
			cap = d->nqueries;
		}
		HASH_ITER(hh, d->queries, q, tmp)
		{
			if (vbi_pattern_covers(pattern, plen, q->subject,
					       strlen(q->subject)))
				hits[n++] = q;
		}
		if (n)
			send_stale(p, hits, n);
	}
	free(hits);
}

/* @s, a direct subscription of a connection publishers are switched to,
 * goes: each publisher that declared it may still be writing to it, until
 * the DirectStale this change sends it makes it switch off.  Until then
 * the subscriber's Pongs wait (so that a drain, which ends at its Pong,
 * takes what those publishers wrote: behind their fences), 5 s at most
 * (then revoked, as after a reload). */
static void links_draining(struct bconn *bc, uint32_t sid)
{
	uint64_t at = vbi_clock_coarse_ms() + DIRECT_REVOKE_GRACE_MS;
	struct dlink *l, *tmp;

	HASH_ITER(hh_from, bc->direct->from, l, tmp)
	{
		if (l->draining || !l->nsids ||
		    !bsearch(&sid, l->sids, l->nsids, sizeof(*l->sids),
			     sid_cmp))
			continue;
		l->draining = true;
		bc->direct->ndraining++;
		if (!l->revoke_ms)
			l->revoke_ms = at;
	}
}

void bk_direct_sub_changed(struct bsub *s, bool added)
{
	struct bconn *bc = s->bc;

	if (s->direct && bc->direct) {
		if (added) {
			bc->direct->nsubs++;
		} else {
			bc->direct->nsubs--;
			if (bc->direct->nfrom && !bc->closing)
				links_draining(bc, s->sid);
		}
	}
	bk_direct_interest(bc->b, bc->acct, s->subject);
}

bool bk_direct_listening(const struct bconn *bc)
{
	return bc->direct && bc->direct->listening;
}

/* ---- DirectListen ------------------------------------------------------- */

/* @h, a numeric host, as 16 bytes (an IPv4 address IPv4-mapped, a zone
 * left out); false if it is not one. */
static bool host_bytes(const char *h, uint8_t out[16])
{
	char v6[INET6_ADDRSTRLEN];
	const char *zone = strchr(h, '%');
	struct in_addr v4;

	if (inet_pton(AF_INET, h, &v4) == 1) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &v4, 4);
		return true;
	}
	if (zone) {
		if ((size_t)(zone - h) >= sizeof(v6))
			return false;
		memcpy(v6, h, (size_t)(zone - h));
		v6[zone - h] = '\0';
		h = v6;
	}
	return inet_pton(AF_INET6, h, out) == 1;
}

/* Unless direct.listen_any_host, a DirectListen must name the address the
 * connection comes from: a subscriber may not point publishers (which
 * connect where it says, with a grant) at another machine.  NULL if @url
 * passes, else why not (into @why). */
static const char *listen_check(struct bconn *bc, const char *url, char *why,
				size_t len)
{
	char peer[VBI_URL_MAX + 1], err[96], esc[64], from[INET6_ADDRSTRLEN];
	struct vbi_hostport hp;
	struct vb_url u;
	uint8_t a[16], p[16];

	if (bc->b->cfg.direct_any_host)
		return NULL;
	if (vbi_url_parse(url, &u, err, sizeof(err)) != VB_OK) {
		vbi_log_escape(esc, sizeof(esc), url, strlen(url));
		snprintf(why, len, "not a url (%s): %s", err, esc);
		return why;
	}
	if (vbi_conn_peer_name(bc->c, peer, sizeof(peer)) != VB_OK ||
	    vbi_hostport_parse(peer, strlen(peer), VBI_HP_PORT_ZERO, &hp, NULL,
			       0) != VB_OK ||
	    !host_bytes(hp.host, p))
		snprintf(from, sizeof(from), "?");
	else if (host_bytes(u.host, a) && !memcmp(a, p, 16))
		return NULL;
	else
		vbi_log_escape(from, sizeof(from), hp.host, strlen(hp.host));
	vbi_log_escape(esc, sizeof(esc), u.host, strlen(u.host));
	snprintf(why, len,
		 "its host %s is not the address the connection comes from "
		 "(%s; direct.listen_any_host allows any)",
		 esc, from);
	return why;
}

static void on_listen(struct bconn *bc, const Verbus__DirectListen *m)
{
	Verbus__Control r = VERBUS__CONTROL__INIT;
	Verbus__DirectKey k = VERBUS__DIRECT_KEY__INIT;
	char why[VBI_REASON_MAX - 32];
	struct bdirect *d;

	if (bk_direct_listening(bc)) {
		vbi_warn("conn cid %" PRIu64 " %s: a second DirectListen; "
			 "closed",
			 bc->cid, bc->name);
		bc->closing = true;
		vbi_conn_close_error(bc->c, VB_EPROTO,
				     "a second DirectListen on one connection");
		return;
	}
	if (listen_check(bc, m->url, why, sizeof(why))) {
		char msg[VBI_REASON_MAX];

		vbi_warn("conn cid %" PRIu64 " %s: DirectListen refused: %s",
			 bc->cid, bc->name, why);
		snprintf(msg, sizeof(msg), "DirectListen refused: %s", why);
		bk_send_notice(bc, VB_EACCES, 0, 0, msg);
		return;
	}
	d = direct_get(bc);
	if (!d) {
		bk_send_notice(bc, VB_ENOMEM, 0, 0, "broker out of memory");
		return;
	}
	snprintf(d->url, sizeof(d->url), "%s", m->url);
	randombytes_buf(d->key, sizeof(d->key));
	d->listening = true;
	bc->b->st.direct_listeners++;
	k.key.data = d->key;
	k.key.len = sizeof(d->key);
	k.conn_id = bc->cid;
	r.body_case = VERBUS__CONTROL__BODY_DIRECT_KEY;
	r.direct_key = &k;
	direct_send(bc, &r, false);
	if (vbi_log_enabled(VBI_LOG_DEBUG)) {
		char url[VBI_LOG_ESCAPE_MAX];

		vbi_log_escape(url, sizeof(url), d->url, strlen(d->url));
		vbi_debug("conn cid %" PRIu64 " %s: direct listener at %s",
			  bc->cid, bc->name, url);
	}
}

/* ---- DirectQuery -------------------------------------------------------- */

/* One path of an answer, and the storage its message borrows. */
struct path_buf {
	Verbus__DirectPath p;
	Verbus__DirectGrant connect, grant;
	uint32_t sids[VBI_GRANT_SIDS_MAX];
	uint8_t cnonce[VBI_GRANT_NONCE_LEN], snonce[VBI_GRANT_NONCE_LEN];
	uint8_t cmac[VBI_GRANT_MAC_LEN], smac[VBI_GRANT_MAC_LEN];
};

/* Whether a message of account @a on @subject crosses to another account
 * (a stream it exports that another imports, a service it imports). */
static bool crosses(const struct bacct *a, const char *subject, size_t slen)
{
	for (size_t i = 0; i < a->nstreams_out; i++)
		if (vbi_pattern_covers(a->streams_out[i].pattern,
				       a->streams_out[i].plen, subject, slen))
			return true;
	for (size_t i = 0; i < a->nservices_in; i++)
		if (vbi_pattern_covers(a->services_in[i].pattern,
				       a->services_in[i].plen, subject, slen))
			return true;
	return false;
}

bool bk_direct_eligible(const struct bacct *a, const char *subject, size_t slen)
{
	size_t olen;

	return !vbd_inbox_owner(subject, slen, &olen) &&
	       !crosses(a, subject, slen);
}

/* Sign @m as @g says under @key, with a fresh nonce; VB_OK or an error. */
static int grant_sign(Verbus__DirectGrant *m, struct vbi_grant *g,
		      const uint8_t *key, uint8_t *nonce, uint8_t *mac)
{
	int rc;

	randombytes_buf(g->nonce, sizeof(g->nonce));
	rc = vbi_grant_mac(key, g, mac);
	if (rc)
		return rc;
	memcpy(nonce, g->nonce, VBI_GRANT_NONCE_LEN);
	verbus__direct_grant__init(m);
	m->pub_id = g->pub_id;
	m->sub_id = g->sub_id;
	m->expires_ms = g->expires_ms;
	m->subject = (char *)""; /* a path's: the DirectPaths's */
	m->sids = (uint32_t *)g->sids;
	m->n_sids = g->nsids;
	m->queue = (char *)(g->queue ? g->queue : "");
	m->nonce.data = nonce;
	m->nonce.len = VBI_GRANT_NONCE_LEN;
	m->mac.data = mac;
	m->mac.len = VBI_GRANT_MAC_LEN;
	return VB_OK;
}

/* A matched subscription of a candidate subscriber, and its place in the
 * match (so that sorting by connection keeps the trie's order). */
struct cand {
	struct bsub *s;
	size_t i;
};

/* By connection, then plain before each queue group (by name), then the
 * trie's order. */
static int cand_cmp(const void *x, const void *y)
{
	const struct cand *a = x, *b = y;
	int r;

	if (a->s->bc->cid != b->s->bc->cid)
		return a->s->bc->cid < b->s->bc->cid ? -1 : 1;
	if (!a->s->queue != !b->s->queue)
		return a->s->queue ? 1 : -1;
	if (a->s->queue && (r = strcmp(a->s->queue, b->s->queue)))
		return r;
	return a->i < b->i ? -1 : a->i > b->i;
}

/* Whether @a and @b go in one path: one connection, the same group. */
static bool cand_same(const struct cand *a, const struct cand *b)
{
	return a->s->bc == b->s->bc && !a->s->queue == !b->s->queue &&
	       (!a->s->queue || !strcmp(a->s->queue, b->s->queue));
}

/* Whether @s is a subscriber @pub may get a direct path to. */
static bool path_to(const struct bconn *pub, const struct bconn *s)
{
	return s != pub && s->role == BK_CLIENT && !s->closing && !s->revoked &&
	       s->acct == pub->acct && bk_direct_listening(s);
}

/*
 * Subscriber @c[0].s->bc's path for @pub's @subject into @pb: its
 * subscriptions @c (@n, at most VBI_GRANT_SIDS_MAX: its plain ones, or its
 * members of one queue group, c[0].s->queue) and the two grants.  False
 * if signing failed (it is then served brokered).
 */
static bool path_make(struct bconn *pub, const struct cand *c, size_t n,
		      const char *subject, uint64_t expires,
		      struct path_buf *pb)
{
	struct bconn *s = c[0].s->bc;
	struct vbi_grant g = { 0 };

	for (size_t i = 0; i < n; i++)
		pb->sids[i] = c[i].s->sid;
	g.pub_id = pub->cid;
	g.sub_id = s->cid;
	g.expires_ms = expires;
	if (grant_sign(&pb->connect, &g, s->direct->key, pb->cnonce, pb->cmac))
		goto out_fail;
	g.subject = subject;
	g.sids = pb->sids;
	g.nsids = n;
	g.queue = c[0].s->queue;
	if (grant_sign(&pb->grant, &g, s->direct->key, pb->snonce, pb->smac))
		goto out_fail;
	verbus__direct_path__init(&pb->p);
	pb->p.sub_id = s->cid;
	pb->p.url = s->direct->url;
	pb->p.connect = &pb->connect;
	pb->p.grant = &pb->grant;
	return true;
out_fail:
	vbi_warn("conn cid %" PRIu64 " %s: cannot sign a direct grant; its "
		 "subscriptions are served brokered",
		 s->cid, s->name);
	return false;
}

/*
 * @pub's paths for @subject (@slen bytes, valid) into @pbs and @paths (at
 * most DIRECT_PATHS_MAX); returns how many.  The account's local trie,
 * matched without advancing any queue group's rotation (a question, not a
 * delivery); its direct subscriptions of listening connections other than
 * @pub, one path per connection for its plain ones and one per queue
 * group it has members of (the publisher picks one member of a group per
 * message, among all the group's paths).
 */
static size_t paths_find(struct bconn *pub, const char *subject, size_t slen,
			 struct path_buf *pbs, Verbus__DirectPath **paths,
			 bool *others)
{
	struct bdirect *d = pub->direct;
	struct vbi_match match, rm;
	struct cand *c = NULL;
	size_t i, j, k, nc = 0, n = 0, listed = 0;
	uint64_t expires = vbi_clock_wall_ms() + DIRECT_GRANT_MS;

	*others = true;
	vbi_match_init(&match);
	if (vbi_sublist_match_all(pub->acct->sl, subject, slen, &match) ||
	    !match.n)
		goto out;
	c = malloc(match.n * sizeof(*c));
	if (!c)
		goto out;
	for (i = 0; i < match.n; i++) {
		struct bsub *s = match.subs[i]->owner;

		if (s->direct && s->sid && path_to(pub, s->bc))
			c[nc++] = (struct cand){ .s = s, .i = i };
	}
	qsort(c, nc, sizeof(*c), cand_cmp);
	for (i = 0; i < nc; i = j) {
		struct bconn *s = c[i].s->bc;

		for (j = i + 1; j < nc && cand_same(&c[i], &c[j]); j++)
			;
		if (n == DIRECT_PATHS_MAX) {
			if (!d->paths_logged)
				vbi_info("conn cid %" PRIu64 " %s: over %u "
					 "direct subscribers for one "
					 "subject; the rest are served "
					 "brokered",
					 pub->cid, pub->name, DIRECT_PATHS_MAX);
			d->paths_logged = true;
			break;
		}
		if (j - i > VBI_GRANT_SIDS_MAX && !s->direct->sids_logged) {
			vbi_info("conn cid %" PRIu64 " %s: over %u direct "
				 "subscriptions match one subject; the rest "
				 "are served brokered",
				 s->cid, s->name, VBI_GRANT_SIDS_MAX);
			s->direct->sids_logged = true;
		}
		k = j - i > VBI_GRANT_SIDS_MAX ? VBI_GRANT_SIDS_MAX : j - i;
		if (path_make(pub, c + i, k, subject, expires, &pbs[n])) {
			paths[n] = &pbs[n].p;
			n++;
			listed += k;
		}
	}
	/* Anyone the paths leave out (brokered, a group's brokered
	 * members, the publisher's own, past a cap) or a route's interest: the broker
	 * must still get the messages. */
	*others = listed < match.n;
	if (!*others && pub->acct->remote) {
		vbi_match_init(&rm);
		*others = vbi_sublist_match_all(pub->acct->remote, subject,
						slen, &rm) != VB_OK ||
			  rm.n > 0;
		vbi_match_fini(&rm);
	}
out:
	free(c);
	vbi_match_fini(&match);
	return n;
}

/* The answer to @q: @paths (@n) in as many DirectPaths as it takes, each
 * under VBI_CTRL_MAX, all but the last with @more. */
static void answer(struct bconn *bc, const Verbus__DirectQuery *q,
		   Verbus__DirectPath **paths, size_t n, bool others)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__DirectPaths dp = VERBUS__DIRECT_PATHS__INIT;
	size_t i = 0;

	dp.id = q->id;
	dp.subject = q->subject;
	dp.pub_id = bc->cid;
	dp.gen = bc->b->direct_gen;
	dp.others = others;
	m.body_case = VERBUS__CONTROL__BODY_DIRECT_PATHS;
	m.direct_paths = &dp;
	do {
		dp.paths = paths ? paths + i : NULL;
		dp.n_paths = 0;
		dp.more = true; /* sized as if more: it only grows */
		while (i + dp.n_paths < n) {
			dp.n_paths++;
			if (verbus__control__get_packed_size(&m) >
			    VBI_CTRL_MAX) {
				dp.n_paths--;
				break;
			}
		}
		if (dp.n_paths == 0 && i < n) {
			/* Cannot happen within the protocol's bounds (a
			 * path with the longest subject and url and 64 sids
			 * fits); if it did, that one stays brokered. */
			vbi_warn("conn cid %" PRIu64 " %s: a direct path too "
				 "large for a message; left out",
				 bc->cid, bc->name);
			i++;
			if (i < n)
				continue;
		}
		i += dp.n_paths;
		dp.more = i < n;
		direct_send(bc, &m, false);
	} while (i < n);
}

static void on_query(struct bconn *bc, const Verbus__DirectQuery *q)
{
	struct vbd_broker *b = bc->b;
	const char *subject = q->subject;
	size_t slen = strlen(subject), n = 0;
	bool others = true;
	Verbus__DirectPath **paths = NULL;
	struct path_buf *pbs = NULL;
	struct bdirect *d;

	b->st.direct_queries++;
	d = direct_get(bc);
	if (!d) {
		bk_send_notice(bc, VB_ENOMEM, 0, 0, "broker out of memory");
		return;
	}
	/* Nothing to grant: not a subject it may publish on here, or one
	 * that goes beyond this account's clients. */
	if (vbi_subject_check(subject, slen) != VB_OK ||
	    !vbd_user_may_publish(bc->user, subject, slen) ||
	    !bk_direct_eligible(bc->acct, subject, slen))
		goto out_answer;
	if (!query_remember(b, d, subject, slen)) {
		b->st.direct_queries_full++;
		if (!d->full_logged)
			vbi_info("conn cid %" PRIu64 " %s: asked about over %u "
				 "subjects; the rest are served brokered",
				 bc->cid, bc->name, DIRECT_QUERIES_MAX);
		d->full_logged = true;
		goto out_answer;
	}
	pbs = calloc(DIRECT_PATHS_MAX, sizeof(*pbs));
	paths = calloc(DIRECT_PATHS_MAX, sizeof(*paths));
	if (!pbs || !paths)
		goto out_answer; /* none: it publishes brokered */
	n = paths_find(bc, subject, slen, pbs, paths, &others);
	b->st.direct_paths_granted += n;
out_answer:
	answer(bc, q, paths, n, others);
	free(paths);
	free(pbs);
}

/* ---- DirectSwitch ------------------------------------------------------- */

static int sid_cmp(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;

	return a < b ? -1 : a > b;
}

/* Of @l's sids, those of its subscriber's queue group members into
 * @l->qsids.  VB_OK or VB_ENOMEM. */
static int link_queues(struct dlink *l)
{
	size_t i;

	for (i = 0; i < l->nsids; i++) {
		const struct bsub *s = bk_sub_find(l->sub, l->sids[i]);

		if (!s || !s->queue || !s->direct)
			continue;
		if (!l->qsids) {
			l->qsids = malloc(l->nsids * sizeof(*l->qsids));
			if (!l->qsids)
				return VB_ENOMEM;
		}
		l->qsids[l->nqsids++] = l->sids[i];
	}
	return VB_OK;
}

/* Remember @sub_cid among the subscribers @d switched off from. */
static void offs_remember(struct bdirect *d, uint64_t sub_cid)
{
	uint32_t n = d->noffs < DIRECT_OFFS_MAX ? d->noffs : DIRECT_OFFS_MAX;

	for (uint32_t i = 0; i < n; i++)
		if (d->offs[i] == sub_cid)
			return;
	d->offs[d->noffs++ % DIRECT_OFFS_MAX] = sub_cid;
}

static void on_switch(struct bconn *bc, const Verbus__DirectSwitch *m)
{
	struct vbd_broker *b = bc->b;
	struct bconn *s = NULL;
	struct dlink *l;
	uint64_t cid = m->sub_id;

	HASH_FIND(hh, b->by_cid, &cid, sizeof(cid), s);
	if (!s || s == bc || s->role != BK_CLIENT || s->closing || s->revoked ||
	    s->acct != bc->acct || !bk_direct_listening(s)) {
		b->st.direct_switch_ignored++;
		vbi_debug("conn cid %" PRIu64 " %s: DirectSwitch %s for cid "
			  "%" PRIu64 ", not a direct listener here; ignored",
			  bc->cid, bc->name, m->on ? "on" : "off", cid);
		return;
	}
	l = link_find(bc, cid);
	if (!m->on) {
		if (bc->direct && bc->direct->resend_left)
			resend_end(bc); /* what was owed ends here */
		if (!l && (!m->failed || !direct_get(bc))) {
			/* Never on, or taken back (a revoke): nothing to
			 * resume. */
			b->st.direct_switch_ignored++;
			return;
		}
		vbi_debug("conn cid %" PRIu64
			  " %s: switched off from cid %" PRIu64
			  " (frames %" PRIu64 "%s, %" PRIu32 " resent)",
			  bc->cid, bc->name, cid, m->frames,
			  m->failed ? ", failed" : "", m->resend);
		if (m->failed)
			b->st.direct_switch_failed++;
		else
			b->st.direct_switch_off++;
		if (l) {
			link_free(l);
			send_fence(s, bc->cid, false, m->frames);
			pongs_release(s);
			offs_remember(bc->direct, cid);
		}
		/* What the failed path may not have delivered follows, for
		 * @s alone, behind the fence (bk_direct_resend()); then
		 * resends_done.  (A path that failed after its switch off
		 * sends a second switch off for its resends: no fence.) */
		if (m->failed) {
			bc->direct->resend_cid = cid;
			bc->direct->resend_left = m->resend;
			if (!m->resend)
				resend_end(bc);
		}
		return;
	}
	if (l || !direct_get(bc)) {
		b->st.direct_switch_ignored++;
		return; /* already on; or out of memory: stays brokered */
	}
	l = calloc(1, sizeof(*l));
	if (l && m->n_sids) {
		l->sids = malloc(m->n_sids * sizeof(*l->sids));
		if (!l->sids) {
			free(l);
			l = NULL;
		}
	}
	if (!l) {
		b->st.direct_switch_ignored++;
		return;
	}
	if (m->n_sids) {
		memcpy(l->sids, m->sids, m->n_sids * sizeof(*l->sids));
		qsort(l->sids, m->n_sids, sizeof(*l->sids), sid_cmp);
		l->nsids = m->n_sids;
	}
	l->pub = bc;
	l->sub = s;
	l->pub_cid = bc->cid;
	l->sub_cid = s->cid;
	if (link_queues(l))
		goto out_free;
	HASH_ADD(hh_on, bc->direct->on, sub_cid, sizeof(l->sub_cid), l);
	if (l->oom)
		goto out_free;
	HASH_ADD(hh_from, s->direct->from, pub_cid, sizeof(l->pub_cid), l);
	if (l->oom) {
		HASH_DELETE(hh_on, bc->direct->on, l);
		goto out_free;
	}
	bc->direct_on++;
	if (l->nqsids)
		bc->direct->qlinks++;
	s->direct->nfrom++;
	b->st.direct_paths_open++;
	b->st.direct_switch_on++;
	vbi_debug("conn cid %" PRIu64 " %s: switched on to cid %" PRIu64
		  " (%zu sids)",
		  bc->cid, bc->name, s->cid, l->nsids);
	send_fence(s, bc->cid, true, 0);
	return;
out_free:
	free(l->sids);
	free(l->qsids);
	free(l);
	b->st.direct_switch_ignored++;
}

/* Whether @pub writes group @q's messages on @subject itself: a
 * subscriber it switched to declared a member of the group whose pattern
 * still matches (the publisher picks among the members it knows of; a
 * member that joined since stays idle until the publisher learns of it,
 * and one that left no longer counts). */
static bool queue_skip(const struct bconn *pub, const char *q,
		       const char *subject, size_t slen)
{
	struct dlink *l, *tmp;

	HASH_ITER(hh_on, pub->direct->on, l, tmp)
	{
		for (size_t i = 0; i < l->nqsids; i++) {
			const struct bsub *m = bk_sub_find(l->sub, l->qsids[i]);

			if (m && m->direct && m->queue &&
			    !strcmp(m->queue, q) &&
			    vbi_pattern_covers(m->s.pattern, m->s.pattern_len,
					       subject, slen))
				return true;
		}
	}
	return false;
}

bool bk_direct_skip(const struct bconn *pub, const struct bsub *s,
		    const char *subject, size_t slen)
{
	struct dlink *l = NULL;
	uint64_t cid = s->bc->cid;

	if (s->queue)
		return pub->direct->qlinks &&
		       queue_skip(pub, s->queue, subject, slen);
	if (!s->direct)
		return false;
	HASH_FIND(hh_on, pub->direct->on, &cid, sizeof(cid), l);
	/* Only the subscriptions it writes to: one made since its grants
	 * (it does not know of it yet) stays ours. */
	return l && l->nsids &&
	       bsearch(&s->sid, l->sids, l->nsids, sizeof(*l->sids), sid_cmp) !=
		       NULL;
}

/* Why @pub's RESEND @v (its prefix @r) is not delivered, or NULL: to @s
 * as @*sub. */
static const char *resend_target(struct bconn *pub,
				 const struct vbi_frame_view *v,
				 const struct vbi_resend *r, struct bconn **s,
				 struct bsub **sub)
{
	struct vbd_broker *b = pub->b;
	uint64_t cid = r->sub_id;
	const char *reply;
	size_t slen, rlen;

	HASH_FIND(hh, b->by_cid, &cid, sizeof(cid), *s);
	if (!*s || (*s)->closing || (*s)->revoked || (*s)->acct != pub->acct)
		return "its subscriber is gone";
	*sub = bk_sub_find(*s, v->sid);
	slen = vbi_topic_split(v->topic, v->topic_len, &reply, &rlen);
	if (!*sub || !(*sub)->direct)
		return "its subscription is gone";
	if (!vbi_pattern_covers((*sub)->s.pattern, (*sub)->s.pattern_len,
				v->topic, slen))
		return "its subject is not the subscription's";
	if (!vbd_user_may_publish(pub->user, v->topic, slen))
		return "the publisher may not publish its subject";
	return NULL;
}

void bk_direct_resend(struct bconn *bc, const struct vbi_frame_view *v)
{
	struct vbd_broker *b = bc->b;
	struct bdirect *d = bc->direct;
	struct bconn *s = NULL;
	struct bsub *sub = NULL;
	struct vbi_resend r;
	const char *why;
	bool last = false;

	if (vbi_resend_parse(v->payload, v->payload_len, &r) != VB_OK)
		why = "malformed";
	else if (!d || !d->resend_left || r.sub_id != d->resend_cid ||
		 r.pub_id != bc->cid)
		why = "not announced by a DirectSwitch off";
	else {
		last = --d->resend_left == 0;
		why = resend_target(bc, v, &r, &s, &sub);
	}
	if (why) {
		b->st.direct_resends_dropped++;
		/* Once per connection: a revoke or a subscriber going meets
		 * a resend in flight as a matter of course. */
		if (d && !d->resend_logged) {
			d->resend_logged = true;
			vbi_info("conn cid %" PRIu64 " %s: a resent direct "
				 "message dropped: %s (said once)",
				 bc->cid, bc->name, why);
		}
	} else if (bk_deliver_to(s, bc, v, v->sid)) {
		sub->delivered++;
		b->st.direct_resends++;
	}
	/* The last one announced: resends_done behind it. */
	if (last)
		resend_end(bc);
}

/* ---- the hooks ------------------------------------------------------------ */

void bk_direct_control(struct bconn *bc, const Verbus__Control *m)
{
	/* A route's peer has no business here; a revoked client's
	 * requests are not answered. */
	if (bc->role != BK_CLIENT || bc->revoked || bc->closing)
		return;
	switch (m->body_case) {
	case VERBUS__CONTROL__BODY_DIRECT_LISTEN:
		on_listen(bc, m->direct_listen);
		break;
	case VERBUS__CONTROL__BODY_DIRECT_QUERY:
		on_query(bc, m->direct_query);
		break;
	case VERBUS__CONTROL__BODY_DIRECT_SWITCH:
		on_switch(bc, m->direct_switch);
		break;
	default:
		break; /* the broker's own kinds, a direct connection's */
	}
}

void bk_direct_reload(struct bconn *bc)
{
	struct bdirect *d = bc->direct;
	uint64_t at = vbi_clock_coarse_ms() + DIRECT_REVOKE_GRACE_MS;
	struct dlink *l, *tmp;

	if (!d || (!d->nqueries && !bc->direct_on))
		return;
	bc->b->direct_gen++;
	/* Every answer stale: the publisher switches every path off, in
	 * order with its messages (PROTOCOL.md, step 4), and asks again
	 * under its new permissions.  Revoking at once instead would cut
	 * the pairs at a point of its stream the subscriber cannot place
	 * (duplicates, losses). */
	send_stale(bc, NULL, 0);
	HASH_ITER(hh_on, d->on, l, tmp)
	if (!l->revoke_ms)
		l->revoke_ms = at;
}

void bk_direct_tick(struct bconn *bc, uint64_t now)
{
	struct dlink *l, *tmp;

	HASH_ITER(hh_on, bc->direct->on, l, tmp)
	{
		struct bconn *s = l->sub;

		if (!l->revoke_ms || now < l->revoke_ms)
			continue;
		vbi_info("conn cid %" PRIu64 " %s: did not switch its direct "
			 "path to cid %" PRIu64 " off within %u ms of %s; "
			 "revoked",
			 bc->cid, bc->name, l->sub_cid, DIRECT_REVOKE_GRACE_MS,
			 l->draining ? "an unsubscribe there" : "a reload");
		send_revoke(s, bc->cid);
		link_free(l);
		pongs_release(s);
	}
}

void bk_direct_closed(struct bconn *bc)
{
	struct bdirect *d = bc->direct;
	struct dlink *l, *tmp;
	struct downed *o;

	if (!d)
		return;
	if (d->listening)
		bc->b->st.direct_listeners--;
	revoke_all(bc);
	/* Nobody waits for resends of ours. */
	if (d->resend_left)
		resend_end(bc);
	for (uint32_t i = 0; i < d->noffs && i < DIRECT_OFFS_MAX; i++)
		send_resends_done(bc, d->offs[i]);
	HASH_ITER(hh_from, d->from, l, tmp)
	link_free(l);
	queries_clear(bc->b, d);
	while ((o = d->owed)) {
		d->owed = o->next;
		free(o);
	}
	free(d);
	bc->direct = NULL;
}

void bk_direct_stats(const struct bconn *bc, struct vbd_stats_conn *o)
{
	const struct bdirect *d = bc->direct;

	if (!d)
		return;
	snprintf(o->direct_url, sizeof(o->direct_url), "%s", d->url);
	o->direct_subs = d->nsubs;
	o->direct_queries = d->nqueries;
	o->direct_on = bc->direct_on;
	o->direct_from = d->nfrom;
}
