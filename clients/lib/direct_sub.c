/*
 * direct_sub.c - direct mode, the subscriber's side (clients/lib/direct.h,
 * docs/PROTOCOL.md "Direct mode").
 *
 * A connection with a VB_SUB_DIRECT subscription listens for direct
 * publishers in the transport context of its broker connection, on the
 * address of its own end of that connection (or vb_opts.direct_listen),
 * a port the system picks; it tells the broker with a DirectListen at
 * every open and gets back the key the broker signs its grants with.
 *
 * A publisher's connection in (struct vbi_din) gets past its Hello only
 * with a connect grant that verifies under the current key, names this
 * connection and that publisher, has not expired and was never used; each
 * subject it then writes needs a subject grant (DirectGrant), and a frame
 * on a subject without one, or for a sid the grant does not name, closes
 * the connection.  Its rings are reached through memory windows bound to
 * its QP (isolate), as the broker's clients'.
 *
 * Order per publisher: a publisher's frames on its direct connection are
 * numbered by arrival (frames_in).  Each time it switches on it first
 * sends a DirectFence on *on the direct connection* (a marker, in order
 * with its frames): the frames after a marker wait (zero copy, in the
 * ring) until the broker's DirectFence on for that switch has come, which
 * follows every brokered message of the publisher before the switch;
 * then they are delivered as they come.  A DirectFence off from the
 * broker says how many frames the publisher wrote in all: what the broker
 * sends behind it waits (the barrier) until those have been delivered, or
 * the direct connection is gone.  A broker fence that overtakes its
 * marker (the direct connection slower) is remembered (early) and the
 * marker then holds nothing.
 */
#include "clients/lib/client.h"
#include "core/clock.h"
#include "core/resend.h"
#include "clients/lib/direct.h"
#include "proto/grant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A frame (or, behind the barrier, a fence) waiting its turn. */
struct vbi_dhold {
	struct vbi_dhold *next;
	struct vbi_conn *vc; /* NULL: a fence, or a Pong */
	struct vbi_frame_view v;
	uint64_t pub_id; /* a fence's; 0: a Pong */
	uint64_t frames; /* a Pong's: its id */
	bool on;
	bool done; /* a fence's resends_done */
};

/* The sids of one grant: a subject's plain subscriptions, or its members
 * of one queue group. */
struct dgset {
	char *queue; /* owned; "" for the plain ones */
	uint32_t *sids; /* owned */
	size_t nsids;
};

/* One subject a publisher was granted on its direct connection: the
 * latest grant for each group (and for none) holds. */
struct dgrant {
	char *subject; /* owned */
	struct dgset *sets; /* owned */
	unsigned nsets;
	UT_hash_handle hh;
};

struct vbi_din {
	struct vbi_conn *vc; /* the key in d->ins; NULL once closed */
	uint64_t pub_id; /* the publisher, as its connect grant names it */
	/* Its tag in the publisher's resends: its connect grant's nonce's
	 * first bytes (core/resend.h). */
	uint8_t conn_tag[VBI_RESEND_CONN_LEN];
	struct dgrant *grants; /* by subject */
	struct dgrant *last_grant; /* the last one a frame matched, or NULL */
	unsigned ngrants;
	uint64_t frames_in; /* frames taken so far */
	/* Frames up to this number are delivered as they come; later ones
	 * wait for the broker's fence: the position of the oldest marker
	 * whose fence has not come (UINT64_MAX: none). */
	uint64_t deliver_upto;
	uint64_t marks[VBI_DIRECT_MARKS_MAX]; /* such markers, oldest first */
	unsigned nmarks;
	unsigned early; /* broker fences on that came before their marker */
	struct vbi_dhold *head, **tail; /* waiting frames, oldest first */
	bool counted; /* in d->npeers */
	bool cut; /* VERBUS_TEST_DIRECT_CUT closed it: it takes nothing */
	struct vbi_din *znext; /* in d->zombies (closed: vc NULL) */
	uint64_t zombie_ns; /* in d->zombies: dropped then, fence or not */
	UT_hash_handle hh; /* in d->ins (open: vc set) */
};

struct vbi_dnonce {
	uint8_t nonce[VBI_GRANT_NONCE_LEN];
	uint64_t expires_ms;
	UT_hash_handle hh;
};

int vbi_direct_get(struct vb_conn *c, struct vbi_direct **out)
{
	struct vbi_direct *d = c->dir;

	if (!d) {
		const char *cut = getenv("VERBUS_TEST_DIRECT_CUT");

		d = calloc(1, sizeof(*d));
		if (!d)
			return VB_ENOMEM;
		d->btail = &d->bhead;
		d->cut_every = cut ? strtoull(cut, NULL, 10) : 0;
		c->dir = d;
	}
	*out = d;
	return VB_OK;
}

/* ---- listening ----------------------------------------------------------- */

static const struct vbi_conn_cbs din_cbs;

/* The host part of "HOST:PORT" / "[HOST]:PORT" into @host. */
static int host_of(const char *name, char *host, size_t len)
{
	const char *colon = strrchr(name, ':');
	size_t n;

	if (!colon)
		return VB_EINVAL;
	if (name[0] == '[') {
		name++;
		colon--; /* the ']' */
	}
	n = (size_t)(colon - name);
	if (n == 0 || n >= len || name[0] == '?')
		return VB_EUNREACH;
	memcpy(host, name, n);
	host[n] = '\0';
	return VB_OK;
}

static int listen_start(struct vb_conn *c, struct vbi_direct *d)
{
	struct vbi_conn_opts o = {
		.name = c->name,
		.ring_size = c->o.ring_size,
		.max_msg = c->o.max_msg,
		.busy_poll = !!(c->o.flags & VB_OPT_BUSY_POLL),
		.isolate = 1,
		.handshake_timeout_ms = 5000,
	};
	char name[VBI_URL_MAX], host[VBI_URL_MAX];
	const char *addr = c->direct_listen ? c->direct_listen : c->source;
	int rc;

	if (!addr) {
		/* Our own end of the path to the broker: reachable. */
		if (!c->vc) /* open, or opening (vbi_direct_listen_item) */
			return VB_ESTATE;
		rc = vbi_conn_local_name(c->vc, name, sizeof(name));
		if (rc == VB_OK)
			rc = host_of(name, host, sizeof(host));
		if (rc)
			return rc;
		addr = host;
	}
	rc = vbi_tp_listen(c->tp, addr, "0", &o, &din_cbs, c, &d->l);
	if (rc) {
		vbi_warn("%s: direct mode: cannot listen on %s: %s", c->name,
			 addr, vb_strerror(rc));
		d->l = NULL;
		return rc;
	}
	rc = vbi_listener_name(d->l, name, sizeof(name));
	if (rc == VB_OK &&
	    (size_t)snprintf(d->url, sizeof(d->url), "%s://%s",
			     vbi_tp_scheme(c->tp), name) >= sizeof(d->url))
		rc = VB_ENOSPC;
	if (rc) {
		vbi_listener_close(d->l);
		d->l = NULL;
		return rc;
	}
	vbi_debug("%s: direct mode: listening at %s", c->name, d->url);
	return VB_OK;
}

static void listen_msg(struct vbi_direct *d, Verbus__Control *m,
		       Verbus__DirectListen *dl)
{
	dl->url = d->url;
	m->body_case = VERBUS__CONTROL__BODY_DIRECT_LISTEN;
	m->direct_listen = dl;
}

int vbi_direct_sub_listen(struct vb_conn *c)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__DirectListen dl = VERBUS__DIRECT_LISTEN__INIT;
	struct vbi_direct *d;
	int rc = vbi_direct_get(c, &d);

	if (rc)
		return rc;
	d->want_listen = true;
	if (c->state != CS_OPEN)
		return VB_OK; /* at the open: vbi_direct_listen_item() */
	if (!d->l) {
		rc = listen_start(c, d);
		if (rc)
			return rc;
	}
	if (d->listen_sent)
		return VB_OK;
	listen_msg(d, &m, &dl);
	rc = vbi_outq_ctrl(c, &m);
	if (rc == VB_OK)
		d->listen_sent = true;
	return rc;
}

struct out_item *vbi_direct_listen_item(struct vb_conn *c)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__DirectListen dl = VERBUS__DIRECT_LISTEN__INIT;
	struct vbi_direct *d = c->dir;
	struct out_item *it;

	if (!d || !d->want_listen)
		return NULL;
	if (!d->l && listen_start(c, d) != VB_OK)
		return NULL; /* the broker refuses the direct Subscribes */
	listen_msg(d, &m, &dl);
	it = vbi_outq_ctrl_item(&m);
	if (it)
		d->listen_sent = true;
	return it;
}

void vbi_direct_on_key(struct vb_conn *c, const Verbus__DirectKey *k)
{
	struct vbi_direct *d = c->dir;

	if (!d || !d->l)
		return; /* we asked for none */
	memcpy(d->key, k->key.data, VBI_DIRECT_KEY_LEN);
	d->my_id = k->conn_id;
}

/* ---- connections in ------------------------------------------------------ */

/* The open connection in @vc's entry (the last one found is compared
 * first: frames come in runs per connection), or NULL. */
static struct vbi_din *din_of(struct vbi_direct *d, struct vbi_conn *vc)
{
	struct vbi_din *in = NULL;

	if (!d)
		return NULL;
	if (d->last_in && d->last_in->vc == vc)
		return d->last_in;
	HASH_FIND_PTR(d->ins, &vc, in);
	if (in)
		d->last_in = in;
	return in;
}

/* @in leaves d->ins. */
static void din_unhash(struct vbi_direct *d, struct vbi_din *in)
{
	HASH_DEL(d->ins, in);
	if (d->last_in == in)
		d->last_in = NULL;
}

static struct vbi_din *din_by_pub(struct vbi_direct *d, uint64_t pub_id)
{
	struct vbi_din *in, *tmp;

	HASH_ITER(hh, d->ins, in, tmp)
	{
		if (in->pub_id == pub_id)
			return in;
	}
	for (in = d->zombies; in; in = in->znext)
		if (in->pub_id == pub_id)
			return in;
	return NULL;
}

/* Whether resend @r is of @in's connection: its tag names it, or it has
 * no tag (a publisher that did not say). */
static bool resend_of(const struct vbi_din *in, const struct vbi_resend *r)
{
	static const uint8_t none[VBI_RESEND_CONN_LEN];

	return !memcmp(r->conn, none, sizeof(none)) ||
	       !memcmp(r->conn, in->conn_tag, sizeof(r->conn));
}

/* The connection resend @r's seq counts on: of its publisher, the one its
 * tag names, open or closed; without a tag, the open one, else the newest
 * closed one (zombies are newest first).  NULL: none we know (it expired,
 * or never opened): nothing to drop it against. */
static struct vbi_din *din_of_resend(struct vbi_direct *d,
				     const struct vbi_resend *r)
{
	struct vbi_din *in, *tmp;

	HASH_ITER(hh, d->ins, in, tmp)
	{
		if (in->pub_id == r->pub_id && resend_of(in, r))
			return in;
	}
	for (in = d->zombies; in; in = in->znext)
		if (in->pub_id == r->pub_id && resend_of(in, r))
			return in;
	return NULL;
}

static void grants_free(struct vbi_din *in)
{
	struct dgrant *g, *tmp;

	in->last_grant = NULL;
	HASH_ITER(hh, in->grants, g, tmp)
	{
		HASH_DEL(in->grants, g);
		for (unsigned i = 0; i < g->nsets; i++) {
			free(g->sets[i].queue);
			free(g->sets[i].sids);
		}
		free(g->sets);
		free(g->subject);
		free(g);
	}
	in->ngrants = 0;
}

/* Give back every frame @in still holds (not delivered: dropped). */
static void din_drop_held(struct vbi_din *in)
{
	struct vbi_dhold *h;

	while ((h = in->head)) {
		in->head = h->next;
		vbi_conn_release(h->vc, &h->v);
		free(h);
	}
	in->tail = &in->head;
}

static void din_free(struct vbi_direct *d, struct vbi_din *in)
{
	struct vbi_din **pp;

	din_drop_held(in);
	grants_free(in);
	if (d->barrier_in == in)
		d->barrier_in = NULL;
	if (in->vc) {
		din_unhash(d, in);
	} else {
		for (pp = &d->zombies; *pp && *pp != in; pp = &(*pp)->znext)
			;
		if (*pp)
			*pp = in->znext;
	}
	if (in->counted && d->npeers)
		d->npeers--;
	free(in);
}

/* Remember @nonce until @expires_ms; false if it was seen (a replay) or
 * there is no room. */
static bool nonce_fresh(struct vbi_direct *d, const uint8_t *nonce,
			uint64_t expires_ms, uint64_t now)
{
	struct vbi_dnonce *n, *tmp;

	HASH_FIND(hh, d->nonces, nonce, VBI_GRANT_NONCE_LEN, n);
	if (n)
		return false;
	if (HASH_COUNT(d->nonces) >= VBI_DIRECT_NONCES_MAX) {
		HASH_ITER(hh, d->nonces, n, tmp)
		{
			if (n->expires_ms < now) {
				HASH_DEL(d->nonces, n);
				free(n);
			}
		}
		if (HASH_COUNT(d->nonces) >= VBI_DIRECT_NONCES_MAX)
			return false;
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		return false;
	memcpy(n->nonce, nonce, VBI_GRANT_NONCE_LEN);
	n->expires_ms = expires_ms;
	HASH_ADD(hh, d->nonces, nonce, VBI_GRANT_NONCE_LEN, n);
	return true;
}

static int on_accept(struct vbi_conn *vc, void *arg)
{
	struct vb_conn *c = arg;
	struct vbi_direct *d = c->dir;

	(void)vc;
	if (c->closing || !d)
		return VB_ESTATE;
	if (d->npeers >= c->o.direct_peers_max) {
		d->refused++;
		vbi_warn("%s: direct mode: a publisher refused: %u direct "
			 "peers already (direct_peers_max)",
			 c->name, d->npeers);
		return VB_ENOSPC;
	}
	return VB_OK;
}

/* A grant's MAC, ids and expiry: NULL if it holds, else why not. */
static const char *grant_check(const struct vbi_direct *d,
			       const struct vbi_grant *g, const uint8_t *mac,
			       size_t mac_len, uint64_t now)
{
	if (!d->my_id)
		return "no key from the broker yet";
	if (g->sub_id != d->my_id)
		return "a grant for another subscriber";
	if (!vbi_grant_verify(d->key, g, mac, mac_len))
		return "a grant that does not verify (forged, or for another "
		       "key)";
	if (g->expires_ms < now)
		return "an expired grant";
	return NULL;
}

static int on_authorize(struct vbi_conn *vc, const void *cred, size_t len,
			void *arg)
{
	struct vb_conn *c = arg;
	struct vbi_direct *d = c->dir;
	Verbus__DirectGrant *m = NULL;
	struct vbi_grant g;
	struct vbi_din *in;
	const char *why = NULL;
	char peer[64], reason[160];
	uint64_t now = vbi_clock_wall_ms();

	if (c->closing || !d)
		return VB_ESTATE;
	if (vbi_codec_grant_decode(cred, len, &m) != VB_OK ||
	    vbi_grant_from_msg(&g, m, NULL) != VB_OK)
		why = "no connect grant";
	else if ((why = grant_check(d, &g, m->mac.data, m->mac.len, now)))
		;
	else if (!nonce_fresh(d, g.nonce, g.expires_ms, now))
		why = "a connect grant used before (a replay)";
	if (why)
		goto refuse;
	in = calloc(1, sizeof(*in));
	if (!in) {
		why = "out of memory";
		goto refuse;
	}
	in->vc = vc;
	in->pub_id = g.pub_id;
	memcpy(in->conn_tag, g.nonce, sizeof(in->conn_tag));
	in->tail = &in->head;
	in->deliver_upto = UINT64_MAX; /* its first marker comes first */
	HASH_ADD_PTR(d->ins, vc, in);
	in->counted = true;
	d->npeers++;
	vbi_codec_grant_free(m);
	return VB_OK;
refuse:
	vbi_codec_grant_free(m);
	d->refused++;
	if (vbi_conn_peer_name(vc, peer, sizeof(peer)))
		snprintf(peer, sizeof(peer), "?");
	snprintf(reason, sizeof(reason), "direct connection refused: %s", why);
	vbi_warn("%s: direct mode: %s from %s", c->name, reason, peer);
	vbi_conn_refusal(vc, reason);
	return VB_EACCES;
}

static void din_close(struct vb_conn *c, struct vbi_din *in, const char *why)
{
	char peer[64];

	c->dir->dropped++;
	if (vbi_conn_peer_name(in->vc, peer, sizeof(peer)))
		snprintf(peer, sizeof(peer), "?");
	vbi_warn("%s: direct mode: connection from %s (publisher %llu) "
		 "closed: %s",
		 c->name, peer, (unsigned long long)in->pub_id, why);
	vbi_conn_close_error(in->vc, VB_EACCES, why);
}

static void on_grant(struct vb_conn *c, struct vbi_din *in,
		     const Verbus__DirectGrant *m)
{
	struct vbi_direct *d = c->dir;
	struct vbi_grant g;
	struct dgrant *dg;
	struct dgset *gs;
	const char *why;
	unsigned i;

	if (vbi_grant_from_msg(&g, m, NULL) != VB_OK) {
		din_close(c, in, "a malformed subject grant");
		return;
	}
	why = grant_check(d, &g, m->mac.data, m->mac.len, vbi_clock_wall_ms());
	if (!why && g.pub_id != in->pub_id)
		why = "a subject grant for another publisher";
	if (why) {
		din_close(c, in, why);
		return;
	}
	HASH_FIND_STR(in->grants, m->subject, dg);
	if (!dg) {
		dg = calloc(1, sizeof(*dg));
		if (dg)
			dg->subject = strdup(m->subject);
		if (!dg || !dg->subject) {
			free(dg);
			din_close(c, in, "out of memory");
			return;
		}
		HASH_ADD_KEYPTR(hh, in->grants, dg->subject,
				strlen(dg->subject), dg);
	}
	for (i = 0; i < dg->nsets && strcmp(dg->sets[i].queue, m->queue); i++)
		;
	if (i == dg->nsets) {
		/* A new group (or the plain ones) of the subject. */
		struct dgset *v;

		if (in->ngrants >= VBI_DIRECT_GRANTS_MAX) {
			din_close(c, in, "too many subject grants");
			return;
		}
		v = realloc(dg->sets, (dg->nsets + 1) * sizeof(*v));
		if (!v) {
			din_close(c, in, "out of memory");
			return;
		}
		dg->sets = v;
		memset(&v[i], 0, sizeof(v[i]));
		v[i].queue = strdup(m->queue);
		if (!v[i].queue) {
			din_close(c, in, "out of memory");
			return;
		}
		dg->nsets++;
		in->ngrants++;
	}
	/* The latest grant for the subject and group is what holds. */
	gs = &dg->sets[i];
	free(gs->sids);
	gs->sids = NULL;
	gs->nsids = 0;
	if (m->n_sids) {
		gs->sids = malloc(m->n_sids * sizeof(*gs->sids));
		if (!gs->sids) {
			din_close(c, in, "out of memory");
			return;
		}
		memcpy(gs->sids, m->sids, m->n_sids * sizeof(*gs->sids));
		gs->nsids = m->n_sids;
	}
}

/* The publisher's vb_flush() asks whether we have what it wrote: every
 * frame before its Ping has arrived (taken, or held for its fence). */
static void din_pong(struct vbi_din *in, uint64_t id)
{
	Verbus__Control r = VERBUS__CONTROL__INIT;
	Verbus__Pong p = VERBUS__PONG__INIT;

	p.id = id;
	r.body_case = VERBUS__CONTROL__BODY_PONG;
	r.pong = &p;
	(void)vbi_conn_send_ctrl(in->vc, &r); /* best effort: it asks again */
}

/* A marker: the frames after it wait for the broker's next fence on. */
static void on_marker(struct vb_conn *c, struct vbi_din *in)
{
	if (in->early) {
		in->early--; /* its fence came first: nothing to wait for */
		return;
	}
	if (in->nmarks == VBI_DIRECT_MARKS_MAX) {
		din_close(c, in, "too many switches without their fences");
		return;
	}
	in->marks[in->nmarks++] = in->frames_in;
	if (in->nmarks == 1)
		in->deliver_upto = in->frames_in;
}

static void on_din_control(struct vbi_conn *vc, const Verbus__Control *m,
			   void *arg)
{
	struct vb_conn *c = arg;
	struct vbi_din *in = din_of(c->dir, vc);

	if (c->closing || !in || !in->vc)
		return;
	if (m->body_case == VERBUS__CONTROL__BODY_DIRECT_GRANT)
		on_grant(c, in, m->direct_grant);
	else if (m->body_case == VERBUS__CONTROL__BODY_DIRECT_FENCE &&
		 m->direct_fence->on && m->direct_fence->pub_id == in->pub_id)
		on_marker(c, in);
	else if (m->body_case == VERBUS__CONTROL__BODY_PING)
		din_pong(in, m->ping->id);
	else if (m->body_case != VERBUS__CONTROL__BODY_PONG)
		vbi_debug("%s: direct mode: control message %s ignored",
			  c->name, vbi_codec_kind_name(m));
}

/* Whether @v's subject is granted to @in for its sid; NULL if so. */
static const char *frame_check(struct vbi_din *in,
			       const struct vbi_frame_view *v)
{
	const char *reply;
	size_t rlen, slen;
	struct dgrant *dg;

	if (v->kind != VBI_FRAME_MSG && v->kind != VBI_FRAME_HMSG)
		return "a frame of a kind not taken directly";
	slen = vbi_topic_split(v->topic, v->topic_len, &reply, &rlen);
	if (slen == 0 || slen > VBI_SUBJECT_MAX)
		return "a frame without a subject";
	/* A publisher mostly writes on the subject it wrote on last: that
	 * grant is compared, not hashed. */
	dg = in->last_grant;
	if (!dg || dg->hh.keylen != slen || memcmp(dg->subject, v->topic, slen))
		HASH_FIND(hh, in->grants, v->topic, slen, dg);
	if (!dg)
		return "a frame on a subject it has no grant for";
	in->last_grant = dg;
	for (unsigned k = 0; k < dg->nsets; k++)
		for (size_t i = 0; i < dg->sets[k].nsids; i++)
			if (dg->sets[k].sids[i] == v->sid)
				return NULL;
	return "a frame for a subscription its grant does not name";
}

static void deliver_direct(struct vb_conn *c, struct vbi_conn *vc,
			   const struct vbi_frame_view *v)
{
	c->dir->msgs_in++;
	vbi_subs_deliver_now(c, vc, v);
}

void vbi_direct_on_resend(struct vb_conn *c, struct vbi_conn *vc,
			  const struct vbi_frame_view *v)
{
	struct vbi_direct *d = c->dir;
	struct vbi_frame_view w = *v;
	struct vbi_resend r;
	struct vbi_din *in;

	if (!d || c->closing || vc != c->vc ||
	    vbi_resend_parse(v->payload, v->payload_len, &r) != VB_OK) {
		/* Only a broker sends these, and only well formed. */
		c->st.bad_msgs++;
		vbi_conn_release(vc, v);
		return;
	}
	/* The connection it was written on (its tag): a publisher that
	 * failed and connected again has two, which count apart. */
	in = din_of_resend(d, &r);
	if (in && r.seq <= in->frames_in) {
		d->resent_dup++; /* taken from the direct connection */
		vbi_conn_release(vc, v);
		return;
	}
	if (in)
		in->frames_in = r.seq;
	d->resent_in++;
	w.kind = r.kind;
	w.payload = r.payload;
	w.payload_len = r.payload_len;
	vbi_subs_deliver_now(c, vc, &w);
}

static void barrier_lift(struct vb_conn *c);
static void barrier_closed(struct vb_conn *c);

/* Whether the barrier's direct connection has closed (or gone). */
static bool barrier_waits_resends(const struct vbi_direct *d)
{
	return d->barrier_pub && (!d->barrier_in || !d->barrier_in->vc);
}

/* Whether the barrier's publisher has delivered the frames it names (from
 * its connection, or resent). */
static bool barrier_met(const struct vbi_direct *d)
{
	return d->barrier_in && d->barrier_in->frames_in >= d->barrier_frames;
}

static void on_din_message(struct vbi_conn *vc, const struct vbi_frame_view *v,
			   void *arg)
{
	struct vb_conn *c = arg;
	struct vbi_direct *d = c->dir;
	struct vbi_din *in = din_of(d, vc);
	struct vbi_dhold *h;
	const char *why;

	if (c->closing || !in || !in->vc || in->cut) {
		vbi_conn_release(vc, v);
		return;
	}
	why = frame_check(in, v);
	if (why) {
		vbi_conn_release(vc, v);
		din_close(c, in, why);
		return;
	}
	if (d->cut_every && (in->frames_in + 1) % d->cut_every == 0) {
		/* This frame and whatever else has landed are lost with the
		 * connection, as on a cut link. */
		vbi_warn("%s: direct mode: connection from publisher %llu cut "
			 "after %llu frames (VERBUS_TEST_DIRECT_CUT)",
			 c->name, (unsigned long long)in->pub_id,
			 (unsigned long long)in->frames_in);
		in->cut = true;
		vbi_conn_release(vc, v);
		vbi_conn_close(vc);
		return;
	}
	if (++in->frames_in <= in->deliver_upto) {
		deliver_direct(c, vc, v);
	} else {
		/* Before its fence: it waits, in the ring. */
		h = calloc(1, sizeof(*h));
		if (!h) {
			vbi_conn_release(vc, v);
			din_close(c, in, "out of memory");
			return;
		}
		h->vc = vc;
		h->v = *v;
		h->frames = in->frames_in; /* its number */
		*in->tail = h;
		in->tail = &h->next;
	}
	if (d->barrier_in == in) {
		if (barrier_met(d))
			barrier_lift(c);
		else /* moving: it waits on */
			d->barrier_until =
				vbi_client_now_ns() + VBI_DIRECT_RESEND_WAIT_NS;
	}
}

static void on_din_closed(struct vbi_conn *vc, const struct vbi_close_info *why,
			  void *arg)
{
	struct vb_conn *c = arg;
	struct vbi_direct *d = c->dir;
	struct vbi_din *in = din_of(d, vc);

	if (c->closing || !in)
		return;
	vbi_debug("%s: direct mode: publisher %llu's connection closed: %s",
		  c->name, (unsigned long long)in->pub_id, why->reason);
	if (in->counted) {
		in->counted = false;
		d->npeers--;
	}
	grants_free(in);
	/* Kept, closed (a zombie): frames waiting for a fence stay until it
	 * comes (or a revoke), since the broker may have skipped us for
	 * them already; and what it took stays counted, since the
	 * publisher sends again through the broker what we may not have
	 * taken, and we drop what we had (vbi_direct_on_resend).  Out of
	 * @ins: a new connection may get @vc's address. */
	din_unhash(d, in);
	in->vc = NULL;
	in->znext = d->zombies;
	in->zombie_ns = vbi_client_now_ns() + VBI_DIRECT_ZOMBIE_NS;
	d->zombies = in;
	vbi_client_arm_timer(c);
	if (d->barrier_in == in)
		barrier_closed(c);
}

/* @vc's receive ring and send staging (the staging mirrors the peer's
 * ring). */
static uint64_t conn_mem(struct vbi_conn *vc)
{
	struct vbi_conn_stats st;

	vbi_conn_stats(vc, &st);
	return (uint64_t)st.ring_size + st.peer_ring;
}

uint64_t vbi_direct_sub_mem(const struct vb_conn *c)
{
	const struct vbi_din *in, *tmp;
	uint64_t n = 0;

	HASH_ITER(hh, c->dir->ins, in, tmp)
	n += conn_mem(in->vc);
	/* A closed one's ring goes with its last held frame. */
	return n;
}

uint64_t vbi_direct_next_deadline(const struct vb_conn *c)
{
	const struct vbi_din *in;
	uint64_t next = 0;

	for (in = c->dir ? c->dir->zombies : NULL; in; in = in->znext)
		if (!next || in->zombie_ns < next)
			next = in->zombie_ns;
	if (c->dir && c->dir->barrier_pub && c->dir->barrier_until &&
	    (!next || c->dir->barrier_until < next))
		next = c->dir->barrier_until;
	return next;
}

void vbi_direct_expire(struct vb_conn *c, uint64_t now)
{
	struct vbi_direct *d = c->dir;
	struct vbi_din *in, *next;
	size_t n;

	if (d && d->barrier_pub && d->barrier_until &&
	    d->barrier_until <= now) {
		/* A publisher that names frames it never writes (or a
		 * connection stuck) holds the broker's deliveries no longer
		 * than this. */
		vbi_warn(
			"%s: direct mode: publisher %llu's direct connection "
			"%s after %llu of the %llu frames its switch off named "
			"and nothing more came for %llu s: what the broker "
			"sent goes on without them",
			c->name, (unsigned long long)d->barrier_pub,
			barrier_waits_resends(d) ? "closed" : "stalled",
			d->barrier_in ?
				(unsigned long long)d->barrier_in->frames_in :
				0ull,
			(unsigned long long)d->barrier_frames,
			VBI_DIRECT_RESEND_WAIT_NS / 1000000000ull);
		barrier_lift(c);
	}
	for (in = d ? d->zombies : NULL; in; in = next) {
		next = in->znext;
		if (in->zombie_ns > now)
			continue;
		n = 0;
		for (const struct vbi_dhold *h = in->head; h; h = h->next)
			n++;
		if (n)
			vbi_warn("%s: direct mode: %zu message(s) from "
				 "publisher %llu dropped: its connection "
				 "closed and the broker's fence for them "
				 "never came",
				 c->name, n, (unsigned long long)in->pub_id);
		din_free(d, in);
	}
}

static const struct vbi_conn_cbs din_cbs = {
	.accept = on_accept,
	.authorize = on_authorize,
	.message = on_din_message,
	.control = on_din_control,
	.closed = on_din_closed,
};

/* ---- fences -------------------------------------------------------------- */

static void fence_apply(struct vb_conn *c, uint64_t pub_id, bool on,
			uint64_t frames)
{
	struct vbi_direct *d = c->dir;
	struct vbi_din *in = din_by_pub(d, pub_id);
	struct vbi_dhold *h;

	vbi_debug("%s: direct mode: fence %s for publisher %llu (frames "
		  "%llu; taken %llu)",
		  c->name, on ? "on" : "off", (unsigned long long)pub_id,
		  (unsigned long long)frames,
		  in ? (unsigned long long)in->frames_in : 0ull);
	if (!in)
		return; /* gone, and nothing of it waits */
	if (!on) {
		/* What it wrote before the switch goes first: from its
		 * direct connection, or, closed short of it, as resends. */
		if (in->frames_in < frames) {
			d->barrier_pub = pub_id;
			d->barrier_frames = frames;
			d->barrier_in = in;
			d->barrier_until =
				vbi_client_now_ns() + VBI_DIRECT_RESEND_WAIT_NS;
			vbi_client_arm_timer(c);
			if (!in->vc)
				barrier_closed(c);
		}
		return;
	}
	if (!in->nmarks) {
		in->early++; /* its marker is still on the way */
		return;
	}
	memmove(in->marks, in->marks + 1, --in->nmarks * sizeof(in->marks[0]));
	in->deliver_upto = in->nmarks ? in->marks[0] : UINT64_MAX;
	while ((h = in->head) && h->frames <= in->deliver_upto) {
		in->head = h->next;
		if (!in->head)
			in->tail = &in->head;
		deliver_direct(c, h->vc, &h->v);
		free(h);
	}
	/* A closed one stays (its count) until it expires or is revoked:
	 * its resends may still come. */
}

/* Whether @v (from the broker) is a RESEND of the barrier's publisher due
 * before everything the barrier holds (its number at most the fence's):
 * with the connection closed, taken out of turn. */
static bool resend_due(const struct vbi_direct *d,
		       const struct vbi_frame_view *v)
{
	struct vbi_resend r;

	return v->kind == VBI_FRAME_RESEND && barrier_waits_resends(d) &&
	       vbi_resend_parse(v->payload, v->payload_len, &r) == VB_OK &&
	       r.pub_id == d->barrier_pub && r.seq <= d->barrier_frames &&
	       (!d->barrier_in || resend_of(d->barrier_in, &r));
}

/* The barrier's connection closed short of its frames: take the resends
 * of its publisher the barrier holds, out of turn; lifted once they make
 * up the count, or at the publisher's resends_done.  True if lifted. */
static bool barrier_scan(struct vb_conn *c)
{
	struct vbi_direct *d = c->dir;
	struct vbi_dhold **pp = &d->bhead, *h;

	while (barrier_waits_resends(d) && (h = *pp)) {
		bool done = !h->vc && h->done && h->pub_id == d->barrier_pub;

		if (!done && !(h->vc && resend_due(d, &h->v))) {
			pp = &h->next;
			continue;
		}
		*pp = h->next;
		if (d->btail == &h->next)
			d->btail = pp;
		if (done) {
			free(h);
			d->barrier_pub = 0;
			return true;
		}
		vbi_direct_on_resend(c, h->vc, &h->v);
		free(h);
		if (barrier_met(d)) {
			d->barrier_pub = 0;
			return true;
		}
	}
	return !d->barrier_pub;
}

/* Deliver what the barrier held, in order, until a fence in it raises
 * another (whose resends, held too, are then taken out of turn). */
static void barrier_lift(struct vb_conn *c)
{
	struct vbi_direct *d = c->dir;
	struct vbi_dhold *h;

	d->barrier_pub = 0;
	for (;;) {
		while (!d->barrier_pub && (h = d->bhead)) {
			d->bhead = h->next;
			if (!d->bhead)
				d->btail = &d->bhead;
			if (h->vc)
				vbi_subs_deliver_now(c, h->vc, &h->v);
			else if (h->pub_id && !h->done)
				fence_apply(c, h->pub_id, h->on, h->frames);
			else if (!h->pub_id)
				vbi_client_pong(c, h->frames);
			free(h);
		}
		if (!barrier_waits_resends(d) || !barrier_scan(c))
			break;
	}
	if (!d->barrier_pub) {
		d->barrier_in = NULL;
		d->barrier_until = 0;
	}
}

/* The barrier's connection closed: enough taken, it lifts; else it waits
 * for the publisher's resends (VBI_DIRECT_RESEND_WAIT_NS at most). */
static void barrier_closed(struct vb_conn *c)
{
	struct vbi_direct *d = c->dir;

	if (barrier_met(d)) {
		barrier_lift(c);
		return;
	}
	d->barrier_until = vbi_client_now_ns() + VBI_DIRECT_RESEND_WAIT_NS;
	vbi_client_arm_timer(c);
	if (barrier_scan(c))
		barrier_lift(c);
}

void vbi_direct_on_fence(struct vb_conn *c, const Verbus__DirectFence *f)
{
	struct vbi_direct *d = c->dir;
	struct vbi_dhold *h;

	if (!d)
		return;
	if (f->resends_done) {
		/* Everything its failed connection owed us came before this. */
		if (barrier_waits_resends(d) && f->pub_id == d->barrier_pub) {
			barrier_lift(c);
			return;
		}
		if (!d->barrier_pub)
			return; /* nothing waits for it */
	} else if (!d->barrier_pub) {
		fence_apply(c, f->pub_id, f->on, f->frames);
		return;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		/* Out of memory: order gives way to delivery. */
		barrier_lift(c);
		if (!f->resends_done)
			fence_apply(c, f->pub_id, f->on, f->frames);
		return;
	}
	h->pub_id = f->pub_id;
	h->on = f->on;
	h->frames = f->frames;
	h->done = f->resends_done;
	*d->btail = h;
	d->btail = &h->next;
}

bool vbi_direct_hold_pong(struct vb_conn *c, uint64_t id)
{
	struct vbi_direct *d = c->dir;
	struct vbi_dhold *h = calloc(1, sizeof(*h));

	if (!h)
		return false;
	h->frames = id;
	*d->btail = h;
	d->btail = &h->next;
	return true;
}

bool vbi_direct_hold_broker(struct vb_conn *c, struct vbi_conn *vc,
			    const struct vbi_frame_view *v)
{
	struct vbi_direct *d = c->dir;
	struct vbi_dhold *h;

	if (vc != c->vc)
		return false;
	if (resend_due(d, v)) {
		/* Due before all it holds: taken now. */
		vbi_direct_on_resend(c, vc, v);
		if (barrier_met(d))
			barrier_lift(c);
		return true;
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		return false; /* delivered now: order gives way */
	h->vc = vc;
	h->v = *v;
	*d->btail = h;
	d->btail = &h->next;
	return true;
}

void vbi_direct_on_revoke(struct vb_conn *c, const Verbus__DirectRevoke *r)
{
	struct vbi_direct *d = c->dir;
	struct vbi_din *in = d ? din_by_pub(d, r->pub_id) : NULL;

	if (!in)
		return;
	/* Frames still waiting never had their fence: the broker carried
	 * them. */
	din_drop_held(in);
	if (in->vc) {
		vbi_conn_close_error(in->vc, VB_EACCES,
				     "direct grants revoked by the broker");
		return;
	}
	din_free(d, in);
	if (barrier_waits_resends(d) && d->barrier_pub == r->pub_id)
		barrier_lift(c); /* nothing more comes from it */
}

/* ---- teardown ------------------------------------------------------------ */

void vbi_direct_lost(struct vb_conn *c)
{
	struct vbi_direct *d = c->dir;

	d->listen_sent = false;
	d->my_id = 0; /* a new key comes with the next open */
	/* What the broker had sent was sent: delivered, in order (its
	 * fences hold no more: no resend comes on a new connection). */
	do
		barrier_lift(c);
	while (d->bhead);
	d->barrier_pub = 0;
	d->barrier_in = NULL;
	d->barrier_until = 0;
	vbi_direct_pub_lost(c);
}

void vbi_direct_free(struct vb_conn *c)
{
	struct vbi_direct *d = c->dir;
	struct vbi_din *in, *itmp;
	struct vbi_dnonce *n, *ntmp;
	struct vbi_dhold *h;

	if (!d)
		return;
	vbi_direct_pub_free(c);
	while ((h = d->bhead)) {
		d->bhead = h->next;
		if (h->vc)
			vbi_conn_release(h->vc, &h->v);
		free(h);
	}
	HASH_ITER(hh, d->ins, in, itmp)
	{
		vbi_conn_close(in->vc);
		din_free(d, in);
	}
	while (d->zombies)
		din_free(d, d->zombies);
	if (d->l)
		vbi_listener_close(d->l);
	HASH_ITER(hh, d->nonces, n, ntmp)
	{
		HASH_DEL(d->nonces, n);
		free(n);
	}
	free(d);
	c->dir = NULL;
}
