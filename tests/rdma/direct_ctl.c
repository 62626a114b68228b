/*
 * direct_ctl.c - vb_direct_ctl: the broker's side of direct mode, checked
 * against docs/PROTOCOL.md ("Direct mode") and nothing else.
 *
 * One process holds five connections to a running verbusd on one
 * transport context: subscribers S1 and S2 (each sends a DirectListen and
 * subscribes direct), S3 (subscribes direct without a DirectListen), and
 * publishers P and P2 (P2 for the cases after P has gone).  It plays
 * the control plane of direct mode by hand: the DirectKeys, DirectQuery and
 * the DirectPaths with their grants (checked with proto/grant.h under the
 * subscribers' keys), DirectStale on interest changes, DirectSwitch and the
 * DirectFence that orders brokered and direct messages, the RESEND frames of
 * a failed path (delivered to the one subscription named, only as many as
 * a failed DirectSwitch off announced, then resends_done), DirectRevoke
 * when the publisher goes, and the refusals.  No direct connection is ever made:
 * this is the broker's half, the one a hostile or buggy client talks to.
 *
 * Two decisions a reader must know.  The test is a straight line of "send
 * something, then run the loop until what was recorded shows an outcome or
 * the wait's deadline passes" (wait_for()); callbacks only record.  Every
 * control message and every delivery a connection gets is kept, in arrival
 * order, in one event list per connection, so that an order across the
 * two (the fence behind the publisher's earlier messages, never before) is
 * a comparison of indices.  And every phase change goes through a barrier:
 * a Ping whose Pong comes once the broker has processed everything sent
 * before it and handed over everything it had queued to us.  The fence is
 * tested where it matters: S1, with a small ring, takes nothing while P
 * publishes and switches, so that its deliveries wait at the broker.
 *
 * With --rogue SUBJECT it is instead a hostile direct publisher against a
 * real libverbus direct subscriber (vb_libdirect --serve, subscribed to
 * SUBJECT): it asks the broker for its paths as publisher P, with a direct
 * subscriber S of its own on SUBJECT (whose grants it then misuses), and
 * tries the subscriber's listener with no grant, a forged one, a replayed
 * one, another subscriber's; frames on a subject it has no grant for, for
 * a sid its grant does not name; a subject grant moved to another subject,
 * another subscriber's, that one's retargeted.  Every attempt must be
 * refused or its connection closed by the subscriber, and no frame (each
 * with the payload "BAD...") delivered, while P's brokered messages ("ok
 * <n>") reach the subscriber all the same; a last "quit <n>" ends it
 * (rogue_run()).
 *
 * With --rogue SUBJECT --stall it plays case h instead (rogue_stall()): a
 * publisher whose DirectSwitch off names frames it never writes, its
 * direct connection kept open.  The subscriber's barrier must hold what
 * the broker sends it behind the fence, and lift 10 s after the last
 * progress (VBI_DIRECT_RESEND_WAIT_NS, clients/lib/direct.h): no later,
 * or one publisher holds a subscriber's brokered traffic for good.  The
 * subscriber echoes each message to its reply subject, so that the
 * rogue's plain subscriber A times the deliveries.
 *
 * Output: a "PASS: ..." line per case, "FAIL: vb_direct_ctl: ..." and exit
 * status 1 at the first deviation, 2 for a usage error.
 */
#include "core/frame.h"
#include "core/log.h"
#include "core/resend.h"
#include "core/subject.h"
#include "proto/codec.h"
#include "proto/grant.h"
#include "transport/transport.h"

#include <verbus/verbus.h>

#include <arpa/inet.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define EXIT_USAGE 2

#define DC_MAGIC 0x56424443u /* "VBDC": our payloads start with it */
/* Bytes of a message: the magic, its sequence number, then zeros. */
#define DC_PAYLOAD 1000u
/* S1's receive ring, small: 5 messages to its 4 subscriptions fill it, so
 * that deliveries wait at the broker when the DirectSwitch comes. */
#define S1_RING 8192u
#define S1_MAX_MSG 2048u
#define SUBJECT "dir.a.b" /* what P publishes and asks about */
#define SETTLE_MS 300 /* quiet after a barrier: nothing more may come */
#define GRANT_LIFE_MAX_MS 120000u /* a grant expires within this of now */
#define NONCES_MAX 64 /* grant nonces remembered, to find a repeat */
#define METRICS_MAX (4u << 20) /* bytes of /metrics read at most */

/* The subscriptions, by sid (PROTOCOL.md: the client chooses them). */
enum {
	SID_S1_A = 1, /* S1, direct, dir.a.* */
	SID_S1_ALL = 2, /* S1, direct, dir.> */
	SID_S1_PLAIN = 3, /* S1, not direct, dir.a.b */
	SID_S1_Q = 4, /* S1, direct, dir.a.b in queue group "q1" */
	SID_S3 = 5, /* S3, direct without a DirectListen: refused */
	SID_S2 = 7, /* S2, direct, dir.a.b; unsubscribed in case d */
	SID_S2_Q = 8, /* S2, direct, dir.a.b in queue group "q" */
	SID_S2_STAR = 9, /* S2, direct, dir.*.b: from case d on */
	SID_S2_INBOX = 10, /* S2, direct, its own inbox */
};

/* An event's kind besides a control message's body case (all > 0). */
#define EV_FRAME (-1)
#define EV_RESEND (-2) /* a RESEND frame: @seq its prefix's */

/* One thing a connection received, in arrival order. */
struct ev {
	int kind; /* EV_FRAME, or the control message's body case */
	bool taken; /* a check consumed it */
	uint32_t sid; /* frame: its subscription id */
	uint64_t seq; /* frame: our payload's sequence number */
	uint64_t ms; /* when it arrived (mono_ms()) */
	uint8_t *msg; /* control: the message packed again (codec) */
	size_t len; /* bytes at @msg */
};

/* One connection to the broker. */
struct cl {
	const char *name; /* "S1", "P", ...: for messages */
	struct vbi_conn *c; /* NULL before connect */
	bool open; /* the open callback ran */
	bool closed; /* the closed callback ran */
	bool may_close; /* a close is what the test expects now */
	struct vbi_close_info why; /* the closed callback's */
	uint64_t pong; /* the highest Pong id received */
	struct ev *evs; /* what arrived, in order */
	size_t nev, cap; /* entries and slots of @evs */
	uint8_t key[VBI_DIRECT_KEY_LEN]; /* its DirectKey */
	uint64_t conn_id; /* its DirectKey's conn_id; 0: none yet */
	char url[VBI_URL_MAX + 1]; /* its DirectListen's url */
};

/* Options and the state of the run. */
struct dt {
	const char *addr, *port; /* the broker */
	const char *scheme; /* the transport: "rdma", "tcp" */
	const char *sub_src, *pub_src; /* local addresses to bind */
	const char *monitor; /* "HOST:PORT" of the broker's monitor, or NULL */
	int wait_ms; /* the longest any one wait may take */
	struct vbi_tp *tp; /* every connection's */
	struct cl s1, s2, s3, p, p2; /* the connections */
	uint64_t ping_seq; /* ids of our Pings */
	uint64_t pub_id; /* P's id, from its first DirectPaths */
	uint64_t gen; /* the gen of P's latest DirectPaths or DirectStale */
	uint64_t seq; /* P's last published sequence number */
	uint8_t nonces[NONCES_MAX][VBI_GRANT_NONCE_LEN]; /* seen so far */
	int nnonces; /* entries of @nonces */
	char inbox[64]; /* S2's inbox, _INBOX.<id> */
	uint8_t secret[16]; /* S2's inbox secret */
	uint8_t cred[VBI_CRED_MAX]; /* S2's packed Credentials */
	size_t cred_len;
	const char *rogue; /* --rogue: the served subscriber's subject */
	uint64_t rogue_qid; /* --rogue: P's DirectQuery ids */
	unsigned rogue_oks; /* --rogue: brokered "ok <n>" published */
	unsigned rogue_refused; /* --rogue: attempts the subscriber refused */
	bool stall; /* --stall: case h instead of the rogue's a-g */
	bool reconnect; /* --reconnect: case i instead */
};

static struct dt d = { .port = "7700", .scheme = "rdma", .wait_ms = 30000 };

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)))
__attribute__((noreturn));

static void fail(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "FAIL: vb_direct_ctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(1);
}

static uint64_t mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

/* The wall clock, as grants count it: ms since the Unix epoch. */
static uint64_t epoch_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

/* ---- what arrives --------------------------------------------------------- */

static void ev_push(struct cl *k, const struct ev *e)
{
	if (k->nev == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 64;
		struct ev *n = realloc(k->evs, cap * sizeof(*n));

		if (!n)
			fail("out of memory");
		k->evs = n;
		k->cap = cap;
	}
	k->evs[k->nev] = *e;
	k->evs[k->nev++].ms = mono_ms();
}

static void on_open(struct vbi_conn *c, void *arg)
{
	struct cl *k = arg;

	(void)c;
	k->open = true;
}

/* A RESEND (case e2): its prefix must be P's, for @k, our payload after. */
static bool on_resend(struct cl *k, struct vbi_conn *c,
		      const struct vbi_frame_view *v)
{
	struct ev e = { .kind = EV_RESEND, .sid = v->sid };
	struct vbi_resend r;

	if (v->kind != VBI_FRAME_RESEND)
		return false;
	if (vbi_resend_parse(v->payload, v->payload_len, &r) != VB_OK ||
	    r.pub_id != d.pub_id || r.sub_id != k->conn_id ||
	    r.kind != VBI_FRAME_MSG || r.payload_len != DC_PAYLOAD ||
	    get_le32(r.payload) != DC_MAGIC)
		fail("%s: a RESEND for sid %" PRIu32 " whose prefix or "
		     "payload is not what P sent",
		     k->name, v->sid);
	e.seq = r.seq;
	ev_push(k, &e);
	vbi_conn_release(c, v);
	return true;
}

static void on_message(struct vbi_conn *c, const struct vbi_frame_view *v,
		       void *arg)
{
	struct cl *k = arg;
	struct ev e = { .kind = EV_FRAME, .sid = v->sid };

	if (on_resend(k, c, v))
		return;
	/* --rogue: S is on the served subscriber's subject, and gets P's
	 * brokered messages too; --stall: A gets the served subscriber's
	 * echoes, kept with the "ok <n>" number as their seq. */
	if (d.rogue && v->payload_len >= 2 && !memcmp(v->payload, "ok", 2)) {
		if (d.stall || d.reconnect) {
			char n[32];
			size_t len = v->payload_len < sizeof(n) - 1 ?
					     v->payload_len :
					     sizeof(n) - 1;

			memcpy(n, v->payload, len);
			n[len] = '\0';
			e.seq = strtoull(n + 2, NULL, 10);
			ev_push(k, &e);
		}
		vbi_conn_release(c, v);
		return;
	}
	if (v->topic_len != strlen(SUBJECT) ||
	    memcmp(v->topic, SUBJECT, v->topic_len))
		fail("%s: a delivery on '%.*s' for sid %" PRIu32
		     ": only " SUBJECT " is published",
		     k->name, (int)(v->topic_len > 64 ? 64 : v->topic_len),
		     v->topic, v->sid);
	if (v->payload_len != DC_PAYLOAD || get_le32(v->payload) != DC_MAGIC)
		fail("%s: a delivery for sid %" PRIu32
		     " with a payload of %" PRIu32 " bytes not ours",
		     k->name, v->sid, v->payload_len);
	e.seq = get_le64((const uint8_t *)v->payload + 4);
	ev_push(k, &e);
	vbi_conn_release(c, v);
}

static void on_control(struct vbi_conn *c, const Verbus__Control *m, void *arg)
{
	struct cl *k = arg;
	Verbus__Control r = VERBUS__CONTROL__INIT;
	Verbus__Pong pong = VERBUS__PONG__INIT;
	struct ev e = { .kind = (int)m->body_case };
	int rc;

	switch (m->body_case) {
	case VERBUS__CONTROL__BODY_PONG:
		if (m->pong->id > k->pong)
			k->pong = m->pong->id;
		return;
	case VERBUS__CONTROL__BODY_PING:
		/* The broker's keepalive: answered at once, not recorded. */
		pong.id = m->ping->id;
		r.body_case = VERBUS__CONTROL__BODY_PONG;
		r.pong = &pong;
		vbi_conn_send_ctrl(c, &r);
		return;
	case VERBUS__CONTROL__BODY_INFO:
		return; /* a clustered broker's members: not ours */
	default:
		break;
	}
	e.msg = malloc(VBI_CTRL_MAX);
	if (!e.msg)
		fail("out of memory");
	rc = vbi_codec_encode(m, e.msg, VBI_CTRL_MAX, &e.len);
	if (rc)
		fail("%s: keeping a %s: %s", k->name, vbi_codec_kind_name(m),
		     vb_strerror(rc));
	ev_push(k, &e);
}

static void on_closed(struct vbi_conn *c, const struct vbi_close_info *why,
		      void *arg)
{
	struct cl *k = arg;

	(void)c;
	k->closed = true;
	k->why = *why;
	if (!k->may_close)
		fail("%s: the connection closed: %s (%s)", k->name,
		     vb_strerror(why->err), why->reason);
}

/* ---- the loop -------------------------------------------------------------- */

static void pump(int ms)
{
	int rc = vbi_tp_progress(d.tp, ms);

	if (rc < 0)
		fail("progress: %s", vb_strerror(rc));
}

/* Run the loop until @done says so, at most d.wait_ms: else fail. */
static void wait_for(bool (*done)(const struct cl *, uint64_t),
		     const struct cl *k, uint64_t arg, const char *what)
{
	uint64_t end = mono_ms() + (uint64_t)d.wait_ms;

	while (!done(k, arg)) {
		if (mono_ms() >= end)
			fail("%s: no %s within %d ms", k->name, what,
			     d.wait_ms);
		pump(20);
	}
}

/* Run the loop for @ms whatever happens (a settle: no more may come). */
static void settle(int ms)
{
	uint64_t end = mono_ms() + (uint64_t)ms;

	while (mono_ms() < end)
		pump(10);
}

static bool is_open(const struct cl *k, uint64_t arg)
{
	(void)arg;
	return k->open;
}

static bool is_closed(const struct cl *k, uint64_t arg)
{
	(void)arg;
	return k->closed;
}

static bool has_pong(const struct cl *k, uint64_t id)
{
	return k->pong >= id;
}

/* The first event of @kind not taken at index @from or later, or -1. */
static long find_ev(const struct cl *k, int kind, size_t from)
{
	for (size_t i = from; i < k->nev; i++)
		if (k->evs[i].kind == kind && !k->evs[i].taken)
			return (long)i;
	return -1;
}

static bool has_ctrl(const struct cl *k, uint64_t kind)
{
	return find_ev(k, (int)kind, 0) >= 0;
}

/*
 * The oldest control message of @kind @k received and not yet taken,
 * waited for; its index in the event list in *@at (if not NULL).  The
 * caller frees it (vbi_codec_free()).
 */
static Verbus__Control *take(struct cl *k, int kind, const char *what,
			     size_t *at)
{
	Verbus__Control *m = NULL;
	struct ev *e;
	long i;
	int rc;

	wait_for(has_ctrl, k, (uint64_t)kind, what);
	i = find_ev(k, kind, 0);
	e = &k->evs[i];
	e->taken = true;
	rc = vbi_codec_decode(e->msg, e->len, &m);
	if (rc)
		fail("%s: %s: %s", k->name, what, vb_strerror(rc));
	if (at)
		*at = (size_t)i;
	return m;
}

/* Fail if @k holds a control message of @kind not taken. */
static void none_of(struct cl *k, int kind, const char *what)
{
	long i = find_ev(k, kind, 0);
	Verbus__Control *m = NULL;

	if (i < 0)
		return;
	if (kind == VERBUS__CONTROL__BODY_NOTICE &&
	    !vbi_codec_decode(k->evs[i].msg, k->evs[i].len, &m))
		fail("%s: %s: a Notice, code %" PRIu32 " sid %" PRIu32 ": %s",
		     k->name, what, m->notice->code, m->notice->sid,
		     m->notice->reason);
	fail("%s: %s (event %ld)", k->name, what, i);
}

/* ---- what we send ----------------------------------------------------------- */

static void send_ctrl(struct cl *k, const Verbus__Control *m)
{
	uint64_t end = mono_ms() + (uint64_t)d.wait_ms;

	for (;;) {
		int rc;

		if (k->closed)
			fail("%s: closed before a %s could be sent", k->name,
			     vbi_codec_kind_name(m));
		rc = vbi_conn_send_ctrl(k->c, m);
		if (rc == VB_OK)
			return;
		if (rc != VB_EAGAIN)
			fail("%s: sending a %s: %s", k->name,
			     vbi_codec_kind_name(m), vb_strerror(rc));
		if (mono_ms() >= end)
			fail("%s: no credit to send a %s within %d ms", k->name,
			     vbi_codec_kind_name(m), d.wait_ms);
		pump(10);
	}
}

/* A Ping, and the loop run until its Pong. */
static void barrier(struct cl *k)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__Ping ping = VERBUS__PING__INIT;

	ping.id = ++d.ping_seq;
	m.body_case = VERBUS__CONTROL__BODY_PING;
	m.ping = &ping;
	send_ctrl(k, &m);
	vbi_conn_flush(k->c);
	wait_for(has_pong, k, ping.id, "Pong (a barrier)");
}

static void send_listen(struct cl *k)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__DirectListen l = VERBUS__DIRECT_LISTEN__INIT;

	l.url = k->url;
	m.body_case = VERBUS__CONTROL__BODY_DIRECT_LISTEN;
	m.direct_listen = &l;
	send_ctrl(k, &m);
}

static void subscribe(struct cl *k, uint32_t sid, const char *subject,
		      const char *queue, bool direct)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__Subscribe s = VERBUS__SUBSCRIBE__INIT;

	s.sid = sid;
	s.subject = (char *)subject;
	s.queue = (char *)queue;
	s.direct = direct;
	m.body_case = VERBUS__CONTROL__BODY_SUBSCRIBE;
	m.subscribe = &s;
	send_ctrl(k, &m);
}

static void unsubscribe(struct cl *k, uint32_t sid)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__Unsubscribe u = VERBUS__UNSUBSCRIBE__INIT;

	u.sid = sid;
	m.body_case = VERBUS__CONTROL__BODY_UNSUBSCRIBE;
	m.unsubscribe = &u;
	send_ctrl(k, &m);
}

static void query(struct cl *k, uint64_t id, const char *subject)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__DirectQuery q = VERBUS__DIRECT_QUERY__INIT;

	q.id = id;
	q.subject = (char *)subject;
	m.body_case = VERBUS__CONTROL__BODY_DIRECT_QUERY;
	m.direct_query = &q;
	send_ctrl(k, &m);
}

/* DirectSwitch for @sub_id; on: naming S1's direct sids 1 and 2, and its
 * direct queue sid 4 (the broker then leaves group q1 to P). */
static void direct_switch(struct cl *k, uint64_t sub_id, bool on)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__DirectSwitch s = VERBUS__DIRECT_SWITCH__INIT;
	uint32_t sids[] = { 1, 2, 4 };

	s.sub_id = sub_id;
	s.on = on;
	if (on) {
		s.sids = sids;
		s.n_sids = 3;
	}
	m.body_case = VERBUS__CONTROL__BODY_DIRECT_SWITCH;
	m.direct_switch = &s;
	send_ctrl(k, &m);
}

/* P publishes @n messages on SUBJECT, numbered on from d.seq. */
static void publish(int n)
{
	uint8_t pl[DC_PAYLOAD] = { 0 };

	for (int i = 0; i < n; i++) {
		uint64_t end = mono_ms() + (uint64_t)d.wait_ms;
		int rc;

		put_le32(pl, DC_MAGIC);
		put_le64(pl + 4, d.seq + 1);
		while ((rc = vbi_conn_send(d.p.c, SUBJECT, strlen(SUBJECT), pl,
					   sizeof(pl))) == VB_EAGAIN) {
			if (mono_ms() >= end)
				fail("P: no credit to publish within %d ms",
				     d.wait_ms);
			pump(10);
		}
		if (rc)
			fail("P: publish: %s", vb_strerror(rc));
		d.seq++;
	}
}

/* ---- checks --------------------------------------------------------------- */

/*
 * The deliveries for @sid at event indices [@from, @to) must be our
 * messages @first..@last exactly, in order (@first > @last: none).
 */
static void expect_seqs(const struct cl *k, uint32_t sid, size_t from,
			size_t to, uint64_t first, uint64_t last,
			const char *what)
{
	uint64_t want = first;

	for (size_t i = from; i < to && i < k->nev; i++) {
		const struct ev *e = &k->evs[i];

		if (e->kind != EV_FRAME || e->sid != sid)
			continue;
		if (want > last)
			fail("%s: sid %" PRIu32 " %s: message %" PRIu64
			     " (event %zu) after all of %" PRIu64 "..%" PRIu64
			     " (it should have been direct, "
			     "or is doubled)",
			     k->name, sid, what, e->seq, i, first, last);
		if (e->seq != want)
			fail("%s: sid %" PRIu32 " %s: message %" PRIu64
			     " (event %zu) where %" PRIu64
			     " was due (lost or out of order)",
			     k->name, sid, what, e->seq, i, want);
		want++;
	}
	if (want <= last)
		fail("%s: sid %" PRIu32 " %s: messages %" PRIu64 "..%" PRIu64
		     " never came (got up to %" PRIu64 ")",
		     k->name, sid, what, want, last, want - 1);
}

static void remember_nonce(const Verbus__DirectGrant *g, const char *what)
{
	for (int i = 0; i < d.nnonces; i++)
		if (!memcmp(d.nonces[i], g->nonce.data, VBI_GRANT_NONCE_LEN))
			fail("%s: its nonce repeats an earlier grant's", what);
	if (d.nnonces < NONCES_MAX)
		memcpy(d.nonces[d.nnonces++], g->nonce.data,
		       VBI_GRANT_NONCE_LEN);
}

/*
 * One grant of a DirectPath: its fields, and its MAC under @key for
 * @subject ("" for a connect grant), and not for anything else.
 */
static void check_grant(const Verbus__DirectGrant *g, const uint8_t *key,
			const char *subject, const char *queue, uint64_t sub_id,
			const char *what)
{
	struct vbi_grant vg;
	uint8_t mac[VBI_GRANT_MAC_LEN];
	uint64_t now = epoch_ms();

	if (!g)
		fail("%s: missing", what);
	if (g->pub_id != d.pub_id)
		fail("%s: pub_id %" PRIu64 ", the answer's is %" PRIu64, what,
		     g->pub_id, d.pub_id);
	if (g->sub_id != sub_id)
		fail("%s: sub_id %" PRIu64 ", the path's is %" PRIu64, what,
		     g->sub_id, sub_id);
	if (g->subject[0])
		fail("%s: subject '%s' on the wire (the DirectPaths's is "
		     "signed, the grant's must be empty)",
		     what, g->subject);
	if (strcmp(g->queue, queue))
		fail("%s: queue '%s', expected '%s'", what, g->queue, queue);
	if (g->expires_ms < now || g->expires_ms > now + GRANT_LIFE_MAX_MS)
		fail("%s: expires_ms %" PRIu64 " is not within [now %" PRIu64
		     ", now + %u s]",
		     what, g->expires_ms, now, GRANT_LIFE_MAX_MS / 1000);
	if (g->nonce.len != VBI_GRANT_NONCE_LEN ||
	    g->mac.len != VBI_GRANT_MAC_LEN)
		fail("%s: nonce of %zu bytes, mac of %zu", what, g->nonce.len,
		     g->mac.len);
	remember_nonce(g, what);
	if (vbi_grant_from_msg(&vg, g, subject) != VB_OK)
		fail("%s: vbi_grant_from_msg refused it", what);
	if (!vbi_grant_verify(key, &vg, g->mac.data, g->mac.len))
		fail("%s: its MAC does not verify under the subscriber's key "
		     "(subject '%s')",
		     what, subject);
	memcpy(mac, g->mac.data, sizeof(mac));
	mac[7] ^= 0x20;
	if (vbi_grant_verify(key, &vg, mac, sizeof(mac)))
		fail("%s: verifies with a byte of its MAC flipped", what);
	vg.subject = subject[0] ? "dir.a.c" : SUBJECT;
	if (vbi_grant_verify(key, &vg, g->mac.data, g->mac.len))
		fail("%s: verifies for subject '%s' too", what, vg.subject);
	vbi_grant_from_msg(&vg, g, subject);
	vg.expires_ms += 60000;
	if (vbi_grant_verify(key, &vg, g->mac.data, g->mac.len))
		fail("%s: verifies with its expiry stretched", what);
}

/* A DirectPath's grant must not verify under @key (another's). */
static void check_foreign(const Verbus__DirectGrant *g, const uint8_t *key,
			  const char *subject, const char *what)
{
	struct vbi_grant vg;

	if (vbi_grant_from_msg(&vg, g, subject) != VB_OK)
		fail("%s: vbi_grant_from_msg refused it", what);
	if (vbi_grant_verify(key, &vg, g->mac.data, g->mac.len))
		fail("%s: verifies under another subscriber's key", what);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* A path's subject grant must name exactly @want (sorted) sids. */
static void check_sids(const Verbus__DirectGrant *g, const uint32_t *want,
		       size_t n, const char *what)
{
	uint32_t got[VBI_GRANT_SIDS_MAX];
	char list[256] = "";
	size_t off = 0;

	for (size_t i = 0; i < g->n_sids && i < VBI_GRANT_SIDS_MAX; i++) {
		got[i] = g->sids[i];
		off += (size_t)snprintf(list + off, sizeof(list) - off,
					"%s%" PRIu32, i ? "," : "", g->sids[i]);
		if (off >= sizeof(list))
			off = sizeof(list) - 1;
	}
	qsort(got, g->n_sids, sizeof(*got), cmp_u32);
	if (g->n_sids != n || memcmp(got, want, n * sizeof(*want)))
		fail("%s: sids {%s}, expected %zu of them (%" PRIu32 "...)",
		     what, list, n, want[0]);
}

/* A DirectQuery's answer, gathered from its messages. */
struct answer {
	Verbus__Control *msgs[64]; /* the DirectPaths messages, in order */
	int nmsgs; /* entries of @msgs */
	const Verbus__DirectPath *paths[512]; /* all their paths */
	size_t npaths; /* entries of @paths */
	uint64_t gen; /* the last message's */
};

/* Ask about @subject as P (@id) and gather the answer until !more. */
static void ask(uint64_t id, const char *subject, struct answer *a)
{
	char what[128];

	memset(a, 0, sizeof(*a));
	query(&d.p, id, subject);
	snprintf(what, sizeof(what), "DirectPaths for query %" PRIu64, id);
	for (;;) {
		Verbus__Control *m = take(
			&d.p, VERBUS__CONTROL__BODY_DIRECT_PATHS, what, NULL);
		const Verbus__DirectPaths *dp = m->direct_paths;

		if (a->nmsgs == (int)(sizeof(a->msgs) / sizeof(a->msgs[0])))
			fail("P: query %" PRIu64 ": more than %d messages", id,
			     a->nmsgs);
		a->msgs[a->nmsgs++] = m;
		if (dp->id != id)
			fail("P: a DirectPaths for id %" PRIu64
			     " while query %" PRIu64 " was the only one out",
			     dp->id, id);
		if (strcmp(dp->subject, subject))
			fail("P: query %" PRIu64 ": subject '%s', asked '%s'",
			     id, dp->subject, subject);
		if (d.pub_id && dp->pub_id != d.pub_id)
			fail("P: query %" PRIu64 ": pub_id %" PRIu64
			     ", earlier %" PRIu64,
			     id, dp->pub_id, d.pub_id);
		d.pub_id = dp->pub_id;
		if (d.s1.conn_id == d.pub_id || d.s2.conn_id == d.pub_id)
			fail("P: pub_id %" PRIu64 " is a subscriber's conn_id",
			     d.pub_id);
		for (size_t i = 0; i < dp->n_paths; i++) {
			if (a->npaths == sizeof(a->paths) / sizeof(a->paths[0]))
				fail("P: query %" PRIu64 ": too many paths",
				     id);
			a->paths[a->npaths++] = dp->paths[i];
		}
		a->gen = dp->gen;
		if (!dp->more)
			break;
	}
}

static void answer_free(struct answer *a)
{
	for (int i = 0; i < a->nmsgs; i++)
		vbi_codec_free(a->msgs[i]);
	a->nmsgs = 0;
	a->npaths = 0;
}

/* The path to @k in @a, checked: url, its grants, its sids @want. */
static const Verbus__DirectPath *
check_path(const struct answer *a, const struct cl *k, const char *subject,
	   const char *queue, const uint32_t *want, size_t n)
{
	const Verbus__DirectPath *p = NULL;
	char what[128];

	for (size_t i = 0; i < a->npaths; i++) {
		if (a->paths[i]->sub_id != k->conn_id || !a->paths[i]->grant ||
		    strcmp(a->paths[i]->grant->queue, queue))
			continue;
		if (p)
			fail("P: two paths to %s (sub_id %" PRIu64
			     ") for queue '%s': one per subscriber connection "
			     "and group",
			     k->name, k->conn_id, queue);
		p = a->paths[i];
	}
	if (!p)
		fail("P: no path to %s (conn_id %" PRIu64 ") for %s, queue "
		     "'%s'",
		     k->name, k->conn_id, subject, queue);
	if (strcmp(p->url, k->url))
		fail("P: the path to %s has url '%s', its DirectListen '%s'",
		     k->name, p->url, k->url);
	snprintf(what, sizeof(what), "P: %s's subject grant for %s, queue '%s'",
		 k->name, subject, queue);
	check_grant(p->grant, k->key, subject, queue, k->conn_id, what);
	check_sids(p->grant, want, n, what);
	snprintf(what, sizeof(what), "P: %s's connect grant", k->name);
	check_grant(p->connect, k->key, "", "", k->conn_id, what);
	return p;
}

/* A DirectStale for P, taken: it must cover @subject, not @other. */
static uint64_t take_stale(const char *subject, const char *other,
			   const char *what)
{
	Verbus__Control *m =
		take(&d.p, VERBUS__CONTROL__BODY_DIRECT_STALE, what, NULL);
	const Verbus__DirectStale *s = m->direct_stale;
	bool named = s->n_subjects == 0;
	uint64_t gen = s->gen;

	for (size_t i = 0; i < s->n_subjects; i++) {
		if (!strcmp(s->subjects[i], subject))
			named = true;
		if (!strcmp(s->subjects[i], other))
			fail("P: %s: it names '%s', which the change does not "
			     "match",
			     what, other);
	}
	if (!named)
		fail("P: %s: %zu subjects, not %s", what, s->n_subjects,
		     subject);
	printf("direct_ctl: %s: %zu subjects listed, gen %" PRIu64 "\n", what,
	       s->n_subjects, gen);
	vbi_codec_free(m);
	return gen;
}

/* ---- the monitor ----------------------------------------------------------- */

/*
 * The value of the series @name (the whole first field of its line, labels
 * included) in the broker's /metrics, or fail.  Plain HTTP/1.0 over a
 * socket: the monitor is on this machine's loopback.
 */
static double metric(const char *name)
{
	char host[64], req[128], *buf, *line;
	const char *colon = strrchr(d.monitor, ':');
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct timeval tv = { .tv_sec = 5 };
	size_t got = 0, nlen = strlen(name);
	double v = 0;
	bool found = false;
	int fd, n;

	if (!colon || (size_t)(colon - d.monitor) >= sizeof(host))
		fail("--monitor '%s' is not HOST:PORT", d.monitor);
	memcpy(host, d.monitor, (size_t)(colon - d.monitor));
	host[colon - d.monitor] = 0;
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		fail("--monitor '%s': not an IPv4 address", d.monitor);
	buf = malloc(METRICS_MAX + 1);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (!buf || fd < 0)
		fail("/metrics: no socket or memory");
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		fail("/metrics: cannot connect to %s", d.monitor);
	n = snprintf(req, sizeof(req),
		     "GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n", host);
	if (write(fd, req, (size_t)n) != n)
		fail("/metrics: the request was not sent");
	while (got < METRICS_MAX) {
		ssize_t r = read(fd, buf + got, METRICS_MAX - got);

		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	buf[got] = 0;
	for (line = buf; line && *line; line = strchr(line, '\n')) {
		if (*line == '\n')
			line++;
		if (!strncmp(line, name, nlen) && line[nlen] == ' ') {
			v = strtod(line + nlen + 1, NULL);
			found = true;
			break;
		}
	}
	free(buf);
	if (!found)
		fail("/metrics has no %s", name);
	return v;
}

/* ---- the cases ------------------------------------------------------------- */

static void conn(struct cl *k, const char *name, const char *src, uint32_t ring,
		 const void *cred, size_t cred_len)
{
	struct vbi_conn_cbs cbs = { .open = on_open,
				    .message = on_message,
				    .control = on_control,
				    .closed = on_closed };
	struct vbi_conn_opts o = { .name = name,
				   .ring_size = ring,
				   .max_msg = ring == S1_RING ? S1_MAX_MSG : 0,
				   .source = src,
				   .credentials = cred,
				   .credentials_len = cred_len };
	int rc;

	k->name = name;
	rc = vbi_tp_connect(d.tp, d.addr, d.port, &o, &cbs, k, &k->c);
	if (rc)
		fail("%s: connect: %s", name, vb_strerror(rc));
}

/* S2's credentials: an inbox secret, so that it has an inbox of its own. */
static void make_inbox(void)
{
	Verbus__Credentials cr = VERBUS__CREDENTIALS__INIT;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int n;

	if (getrandom(d.secret, sizeof(d.secret), 0) !=
		    (ssize_t)sizeof(d.secret) ||
	    !EVP_Digest(d.secret, sizeof(d.secret), md, &mdlen, EVP_sha256(),
			NULL))
		fail("no inbox secret");
	n = snprintf(d.inbox, sizeof(d.inbox), "_INBOX.");
	for (int i = 0; i < 8; i++)
		n += snprintf(d.inbox + n, sizeof(d.inbox) - (size_t)n, "%02x",
			      md[i]);
	cr.token = cr.user = cr.password = (char *)"";
	cr.inbox_secret.data = d.secret;
	cr.inbox_secret.len = sizeof(d.secret);
	d.cred_len = verbus__credentials__pack(&cr, d.cred);
}

/* A DirectListen from @k, and its DirectKey checked. */
static void listen_key(struct cl *k)
{
	Verbus__Control *m;
	const Verbus__DirectKey *key;

	send_listen(k);
	m = take(k, VERBUS__CONTROL__BODY_DIRECT_KEY, "DirectKey", NULL);
	key = m->direct_key;
	if (key->key.len != VBI_DIRECT_KEY_LEN)
		fail("%s: a DirectKey of %zu bytes", k->name, key->key.len);
	if (key->conn_id == 0)
		fail("%s: a DirectKey with conn_id 0", k->name);
	memcpy(k->key, key->key.data, VBI_DIRECT_KEY_LEN);
	k->conn_id = key->conn_id;
	vbi_codec_free(m);
}

static void case_a(void)
{
	Verbus__Control *m;

	conn(&d.s1, "S1", d.sub_src, S1_RING, NULL, 0);
	conn(&d.s2, "S2", d.sub_src, 1u << 18, d.cred, d.cred_len);
	conn(&d.s3, "S3", d.sub_src, 1u << 18, NULL, 0);
	conn(&d.p, "P", d.pub_src, 1u << 18, NULL, 0);
	conn(&d.p2, "P2", d.pub_src, 1u << 18, NULL, 0);
	wait_for(is_open, &d.s1, 0, "open");
	wait_for(is_open, &d.s2, 0, "open");
	wait_for(is_open, &d.s3, 0, "open");
	wait_for(is_open, &d.p, 0, "open");
	wait_for(is_open, &d.p2, 0, "open");

	listen_key(&d.s1);
	/* A DirectListen naming another machine (TEST-NET-1): refused,
	 * publishers are never pointed there. */
	snprintf(d.s3.url, sizeof(d.s3.url), "%s://192.0.2.1:9", d.scheme);
	send_listen(&d.s3);
	m = take(&d.s3, VERBUS__CONTROL__BODY_NOTICE,
		 "Notice refusing a DirectListen for another host", NULL);
	if (m->notice->code != (uint32_t)-VB_EACCES ||
	    !strstr(m->notice->reason, "DirectListen refused") ||
	    !strstr(m->notice->reason, "192.0.2.1"))
		fail("S3: a Notice code %" PRIu32 " (%s), expected VB_EACCES "
		     "refusing the DirectListen for 192.0.2.1",
		     m->notice->code, m->notice->reason);
	printf("direct_ctl: S3's DirectListen refused: \"%s\"\n",
	       m->notice->reason);
	vbi_codec_free(m);
	subscribe(&d.s3, SID_S3, SUBJECT, "", true);
	m = take(&d.s3, VERBUS__CONTROL__BODY_NOTICE,
		 "Notice refusing a direct Subscribe without a DirectListen",
		 NULL);
	if (m->notice->sid != SID_S3 || m->notice->code != (uint32_t)-VB_EINVAL)
		fail("S3: a Notice code %" PRIu32 " sid %" PRIu32
		     " (%s), expected code %d (VB_EINVAL negated) sid %d",
		     m->notice->code, m->notice->sid, m->notice->reason,
		     -VB_EINVAL, SID_S3);
	printf("direct_ctl: S3's refusal: \"%s\"\n", m->notice->reason);
	vbi_codec_free(m);
	barrier(&d.s3);
	none_of(&d.s3, VERBUS__CONTROL__BODY_DIRECT_KEY,
		"a DirectKey without a DirectListen");
	printf("PASS: a. DirectListen answered by a DirectKey (32 bytes, "
	       "conn_id %" PRIu64 "); one naming another host refused "
	       "(VB_EACCES); a direct Subscribe without one refused "
	       "with a Notice VB_EINVAL for its sid\n",
	       d.s1.conn_id);
}

static void case_b(void)
{
	Verbus__Control *m;
	long i;

	subscribe(&d.s1, SID_S1_A, "dir.a.*", "", true);
	subscribe(&d.s1, SID_S1_ALL, "dir.>", "", true);
	subscribe(&d.s1, SID_S1_PLAIN, SUBJECT, "", false);
	subscribe(&d.s1, SID_S1_Q, SUBJECT, "q1", true);
	listen_key(&d.s2);
	if (d.s2.conn_id == d.s1.conn_id)
		fail("S1 and S2 have one conn_id, %" PRIu64, d.s1.conn_id);
	if (!memcmp(d.s1.key, d.s2.key, VBI_DIRECT_KEY_LEN))
		fail("S1 and S2 have one key: it must be new per connection");
	subscribe(&d.s2, SID_S2, SUBJECT, "", true);
	subscribe(&d.s2, SID_S2_Q, SUBJECT, "q", true);
	barrier(&d.s1);
	barrier(&d.s2);
	none_of(&d.s1, VERBUS__CONTROL__BODY_NOTICE, "subscribing");
	none_of(&d.s2, VERBUS__CONTROL__BODY_NOTICE, "subscribing");
	/* Its own inbox, direct: taken or refused, the spec does not say;
	 * either way no inbox subject may have paths (case c). */
	{
		char pat[80];

		snprintf(pat, sizeof(pat), "%s.>", d.inbox);
		subscribe(&d.s2, SID_S2_INBOX, pat, "", true);
		barrier(&d.s2);
		i = find_ev(&d.s2, VERBUS__CONTROL__BODY_NOTICE, 0);
		if (i >= 0) {
			m = take(&d.s2, VERBUS__CONTROL__BODY_NOTICE, "Notice",
				 NULL);
			if (m->notice->sid != SID_S2_INBOX)
				fail("S2: a Notice for sid %" PRIu32 ": %s",
				     m->notice->sid, m->notice->reason);
			printf("direct_ctl: S2's direct inbox subscription "
			       "refused: \"%s\"\n",
			       m->notice->reason);
			vbi_codec_free(m);
		}
	}
	if (d.monitor) {
		double v = metric("verbus_direct_listeners");

		if (v != 2)
			fail("verbus_direct_listeners %g with S1 and S2 "
			     "listening",
			     v);
	}
	printf("PASS: b. direct subscriptions (S1's, S2's, queue groups') "
	       "and a plain one in force, no Notice%s\n",
	       d.monitor ? "; verbus_direct_listeners 2" : "");
}

static void case_c(void)
{
	static const uint32_t s1_sids[] = { SID_S1_A, SID_S1_ALL };
	static const uint32_t s1_q[] = { SID_S1_Q };
	static const uint32_t s2_sids[] = { SID_S2 };
	static const uint32_t s2_q[] = { SID_S2_Q };
	const Verbus__DirectPath *p1, *p2;
	struct answer a;
	char sub[96];

	ask(1, SUBJECT, &a);
	if (a.npaths != 4)
		fail("P: %zu paths for " SUBJECT ", expected 4 (S1's plain "
		     "sids and its group q1, S2's and its group q)",
		     a.npaths);
	p1 = check_path(&a, &d.s1, SUBJECT, "", s1_sids, 2);
	check_path(&a, &d.s1, SUBJECT, "q1", s1_q, 1);
	p2 = check_path(&a, &d.s2, SUBJECT, "", s2_sids, 1);
	check_path(&a, &d.s2, SUBJECT, "q", s2_q, 1);
	check_foreign(p2->grant, d.s1.key, SUBJECT,
		      "P: S2's subject grant under S1's key");
	check_foreign(p2->connect, d.s1.key, "",
		      "P: S2's connect grant under S1's key");
	check_foreign(p1->grant, d.s2.key, SUBJECT,
		      "P: S1's subject grant under S2's key");
	d.gen = a.gen;
	printf("direct_ctl: query 1: %d message(s), pub_id %" PRIu64
	       ", gen %" PRIu64 "\n",
	       a.nmsgs, d.pub_id, a.gen);
	answer_free(&a);

	ask(2, "other.x", &a);
	if (a.npaths || a.nmsgs != 1)
		fail("P: other.x: %zu paths in %d messages, expected none in "
		     "one",
		     a.npaths, a.nmsgs);
	answer_free(&a);
	snprintf(sub, sizeof(sub), "%s.1", d.inbox);
	ask(3, sub, &a);
	if (a.npaths)
		fail("P: %zu paths for the inbox subject %s", a.npaths, sub);
	answer_free(&a);
	ask(4, "_INBOX.abc.1", &a);
	if (a.npaths)
		fail("P: %zu paths for _INBOX.abc.1", a.npaths);
	answer_free(&a);
	barrier(&d.p);
	none_of(&d.p, VERBUS__CONTROL__BODY_DIRECT_PATHS,
		"a DirectPaths more than the answers");
	none_of(&d.p, VERBUS__CONTROL__BODY_NOTICE, "querying");
	printf("PASS: c. DirectQuery " SUBJECT ": 4 paths, S1 sids {1,2}, "
	       "S1's group q1 {4}, S2 sid {7}, S2's group q {8} (not S1's "
	       "plain sid 3), urls, "
	       "pub_id, sub_ids, expiry, distinct nonces; every grant "
	       "verifies under its subscriber's key only, not flipped, "
	       "stretched or for another subject; other.x and inbox "
	       "subjects: no paths\n");
}

static void case_d(void)
{
	static const uint32_t s1_sids[] = { SID_S1_A, SID_S1_ALL };
	static const uint32_t s1_q[] = { SID_S1_Q };
	static const uint32_t s2_sids[] = { SID_S2_STAR };
	static const uint32_t s2_q[] = { SID_S2_Q };
	uint64_t gen;
	struct answer a;

	unsubscribe(&d.s2, SID_S2);
	gen = take_stale(SUBJECT, "other.x",
			 "DirectStale after S2's unsubscribe");
	if (gen <= d.gen)
		fail("P: the DirectStale's gen %" PRIu64
		     " is not past the answer's %" PRIu64,
		     gen, d.gen);
	d.gen = gen;
	ask(5, SUBJECT, &a);
	if (a.npaths != 3)
		fail("P: %zu paths for " SUBJECT
		     " after S2's unsubscribe, expected S1's two and S2's "
		     "group q",
		     a.npaths);
	check_path(&a, &d.s1, SUBJECT, "", s1_sids, 2);
	check_path(&a, &d.s1, SUBJECT, "q1", s1_q, 1);
	check_path(&a, &d.s2, SUBJECT, "q", s2_q, 1);
	if (a.gen < d.gen)
		fail("P: an answer at gen %" PRIu64
		     " after a DirectStale at %" PRIu64,
		     a.gen, d.gen);
	d.gen = a.gen;
	answer_free(&a);

	subscribe(&d.s2, SID_S2_STAR, "dir.*.b", "", true);
	gen = take_stale(SUBJECT, "other.x",
			 "DirectStale after S2's new subscription");
	if (gen <= d.gen)
		fail("P: the DirectStale's gen %" PRIu64
		     " is not past the answer's %" PRIu64,
		     gen, d.gen);
	/* A publisher asks again after a DirectStale, before it publishes. */
	ask(6, SUBJECT, &a);
	if (a.npaths != 4)
		fail("P: %zu paths for " SUBJECT " with S2's dir.*.b, "
		     "expected 4",
		     a.npaths);
	check_path(&a, &d.s1, SUBJECT, "", s1_sids, 2);
	check_path(&a, &d.s1, SUBJECT, "q1", s1_q, 1);
	check_path(&a, &d.s2, SUBJECT, "", s2_sids, 1);
	check_path(&a, &d.s2, SUBJECT, "q", s2_q, 1);
	answer_free(&a);
	barrier(&d.p);
	none_of(&d.p, VERBUS__CONTROL__BODY_DIRECT_STALE,
		"a DirectStale nothing changed for");
	none_of(&d.s1, VERBUS__CONTROL__BODY_DIRECT_STALE,
		"a DirectStale for a subscriber that asked nothing");
	none_of(&d.s2, VERBUS__CONTROL__BODY_DIRECT_STALE,
		"a DirectStale for a subscriber that asked nothing");
	none_of(&d.s2, VERBUS__CONTROL__BODY_NOTICE, "subscribing dir.*.b");
	printf("PASS: d. an unsubscribe and a new direct subscription each "
	       "sent P a DirectStale for " SUBJECT " (not other.x) with a "
	       "newer gen; asked again: S1's paths and S2's group, then "
	       "S2's sid 9 too\n");
}

/*
 * After P's barrier and the subscribers': everything routed is delivered.
 * Then a settle, so that anything late shows.
 */
static void quiesce(void)
{
	barrier(&d.p);
	barrier(&d.s1);
	barrier(&d.s2);
	barrier(&d.s3);
	settle(SETTLE_MS);
}

static void case_e(void)
{
	size_t m1 = d.s1.nev, m2 = d.s2.nev, f_on, f_off;
	Verbus__Control *m;

	/* S1 takes nothing for a while: the first 5 messages' deliveries
	 * to it fill its ring and wait at the broker, and the fence must
	 * wait behind them (well within the block timeout, 2 s). */
	vbi_conn_pause(d.s1.c, 1);
	publish(5);
	direct_switch(&d.p, d.s1.conn_id, true);
	publish(5);
	vbi_conn_flush(d.p.c);
	settle(SETTLE_MS);
	vbi_conn_pause(d.s1.c, 0);
	m = take(&d.s1, VERBUS__CONTROL__BODY_DIRECT_FENCE,
		 "DirectFence {on} after P's DirectSwitch", &f_on);
	if (m->direct_fence->pub_id != d.pub_id || !m->direct_fence->on)
		fail("S1: DirectFence {pub_id %" PRIu64 ", on %d}, expected "
		     "{%" PRIu64 ", on 1}",
		     m->direct_fence->pub_id, m->direct_fence->on, d.pub_id);
	vbi_codec_free(m);
	quiesce();
	none_of(&d.s1, VERBUS__CONTROL__BODY_DIRECT_FENCE,
		"a second DirectFence for one DirectSwitch");
	none_of(&d.s2, VERBUS__CONTROL__BODY_DIRECT_FENCE,
		"a DirectFence though nobody switched to S2");
	expect_seqs(&d.s1, SID_S1_A, m1, f_on, 1, 5, "before the fence");
	expect_seqs(&d.s1, SID_S1_A, f_on, d.s1.nev, 1, 0, "after the fence");
	expect_seqs(&d.s1, SID_S1_ALL, m1, f_on, 1, 5, "before the fence");
	expect_seqs(&d.s1, SID_S1_ALL, f_on, d.s1.nev, 1, 0, "after the fence");
	expect_seqs(&d.s1, SID_S1_PLAIN, m1, d.s1.nev, 1, 10, "plain");
	expect_seqs(&d.s1, SID_S1_Q, m1, f_on, 1, 5,
		    "direct queue group q1, before the fence");
	expect_seqs(&d.s1, SID_S1_Q, f_on, d.s1.nev, 1, 0,
		    "direct queue group q1, left to P after the fence");
	expect_seqs(&d.s2, SID_S2_STAR, m2, d.s2.nev, 1, 10, "direct");
	expect_seqs(&d.s2, SID_S2_Q, m2, d.s2.nev, 1, 10, "queue group");
	expect_seqs(&d.s2, SID_S2, m2, d.s2.nev, 1, 0, "unsubscribed");
	expect_seqs(&d.s3, SID_S3, 0, d.s3.nev, 1, 0, "refused");
	if (d.monitor)
		printf("direct_ctl: verbus_direct_paths_open %g with P "
		       "switched to S1\n",
		       metric("verbus_direct_paths_open"));
	printf("PASS: e. DirectSwitch on: S1's direct sids 1 and 2 got "
	       "messages 1-5 brokered (and its group q1's sid 4), then "
	       "DirectFence {P, on}, then nothing (the broker left group q1 "
	       "to P); its plain sid 3 and S2 (sids 8, 9) all 10 in "
	       "order\n");

	m1 = d.s1.nev;
	m2 = d.s2.nev;
	direct_switch(&d.p, d.s1.conn_id, false);
	publish(5);
	vbi_conn_flush(d.p.c);
	m = take(&d.s1, VERBUS__CONTROL__BODY_DIRECT_FENCE,
		 "DirectFence {off} after P's DirectSwitch off", &f_off);
	if (m->direct_fence->pub_id != d.pub_id || m->direct_fence->on)
		fail("S1: DirectFence {pub_id %" PRIu64 ", on %d}, expected "
		     "{%" PRIu64 ", on 0}",
		     m->direct_fence->pub_id, m->direct_fence->on, d.pub_id);
	vbi_codec_free(m);
	quiesce();
	none_of(&d.s1, VERBUS__CONTROL__BODY_DIRECT_FENCE,
		"a second DirectFence for one DirectSwitch");
	expect_seqs(&d.s1, SID_S1_A, m1, f_off, 1, 0, "before the fence off");
	expect_seqs(&d.s1, SID_S1_A, f_off, d.s1.nev, 11, 15,
		    "after the fence off");
	expect_seqs(&d.s1, SID_S1_ALL, m1, f_off, 1, 0, "before the fence off");
	expect_seqs(&d.s1, SID_S1_ALL, f_off, d.s1.nev, 11, 15,
		    "after the fence off");
	expect_seqs(&d.s1, SID_S1_PLAIN, m1, d.s1.nev, 11, 15, "plain");
	expect_seqs(&d.s1, SID_S1_Q, m1, f_off, 1, 0,
		    "direct queue group q1, before the fence off");
	expect_seqs(&d.s1, SID_S1_Q, f_off, d.s1.nev, 11, 15,
		    "direct queue group q1, after the fence off");
	expect_seqs(&d.s2, SID_S2_STAR, m2, d.s2.nev, 11, 15, "direct");
	expect_seqs(&d.s2, SID_S2_Q, m2, d.s2.nev, 11, 15, "queue group");
	none_of(&d.s1, VERBUS__CONTROL__BODY_NOTICE, "switching");
	none_of(&d.p, VERBUS__CONTROL__BODY_NOTICE, "switching");
	printf("PASS: e. DirectSwitch off: DirectFence {P, off} to S1, then "
	       "messages 11-15 brokered to its sids 1 and 2 and group q1 "
	       "again\n");
}

/* P sends a RESEND frame on @topic for @sid: the prefix @r, then @plen
 * bytes of @payload (core/resend.h). */
static void p_resend(const struct vbi_resend *r, const char *topic,
		     uint32_t sid, const void *payload, uint32_t plen)
{
	uint64_t end = mono_ms() + (uint64_t)d.wait_ms;
	uint16_t tlen = (uint16_t)strlen(topic);
	void *t, *pl;
	int rc;

	while ((rc = vbi_conn_reserve_kind(d.p.c, VBI_FRAME_RESEND, tlen,
					   VBI_RESEND_PREFIX_LEN + plen, &t,
					   &pl)) == VB_EAGAIN) {
		if (mono_ms() >= end)
			fail("P: no credit to resend within %d ms", d.wait_ms);
		pump(10);
	}
	if (rc)
		fail("P: resend: %s", vb_strerror(rc));
	memcpy(t, topic, tlen);
	vbi_resend_put(pl, r);
	memcpy((uint8_t *)pl + VBI_RESEND_PREFIX_LEN, payload, plen);
	vbi_frame_set_sid((uint8_t *)t - VBI_FRAME_HDR_LEN, sid);
	rc = vbi_conn_commit(d.p.c);
	if (rc)
		fail("P: resend commit: %s", vb_strerror(rc));
}

/* P sends a RESEND of its direct frame @seq for S1's @sid (core/resend.h),
 * naming subscriber @sub_id. */
static void resend(uint64_t sub_id, uint32_t sid, uint64_t seq)
{
	struct vbi_resend r = { .pub_id = d.pub_id,
				.sub_id = sub_id,
				.seq = seq,
				.kind = VBI_FRAME_MSG };
	uint8_t pl[DC_PAYLOAD] = { 0 };

	put_le32(pl, DC_MAGIC);
	put_le64(pl + 4, seq);
	p_resend(&r, SUBJECT, sid, pl, DC_PAYLOAD);
}

/* P's DirectSwitch off for a failed path to @sub_id, @n resends to come. */
static void switch_failed(uint64_t sub_id, uint64_t frames, uint32_t n)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__DirectSwitch s = VERBUS__DIRECT_SWITCH__INIT;

	s.sub_id = sub_id;
	s.failed = true;
	s.frames = frames;
	s.resend = n;
	m.body_case = VERBUS__CONTROL__BODY_DIRECT_SWITCH;
	m.direct_switch = &s;
	send_ctrl(&d.p, &m);
}

/* Case e2: resends, by hand (PROTOCOL.md, "Direct mode", step 4). */
static void case_e2(void)
{
	double dropped0 =
		d.monitor ? metric("verbus_direct_resends_dropped_total") : 0;
	double sent0 = d.monitor ? metric("verbus_direct_resends_total") : 0;
	size_t at, done_at;
	Verbus__Control *m;
	long i;

	/* Unannounced: dropped, S1 gets nothing, P stays open. */
	resend(d.s1.conn_id, SID_S1_A, 1);
	vbi_conn_flush(d.p.c);
	quiesce();
	if (find_ev(&d.s1, EV_RESEND, 0) >= 0)
		fail("S1: an unannounced RESEND was delivered");
	/* P's path to S1 failed after its switch off (case e): a second
	 * switch off, failed, announces 3: for S1's direct sid 1 (taken),
	 * its plain sid 3 (not direct: dropped), S2's sid (not S1's:
	 * dropped); then resends_done. */
	at = d.s1.nev;
	switch_failed(d.s1.conn_id, 7, 3);
	resend(d.s1.conn_id, SID_S1_A, 6);
	resend(d.s1.conn_id, SID_S1_PLAIN, 7);
	resend(d.s1.conn_id, SID_S2_STAR, 7);
	resend(d.s1.conn_id, SID_S1_A, 7); /* past the 3: dropped */
	vbi_conn_flush(d.p.c);
	m = take(&d.s1, VERBUS__CONTROL__BODY_DIRECT_FENCE,
		 "DirectFence {resends_done} after P's resends", &done_at);
	if (m->direct_fence->pub_id != d.pub_id ||
	    !m->direct_fence->resends_done || m->direct_fence->on)
		fail("S1: DirectFence {pub_id %" PRIu64 ", on %d, "
		     "resends_done %d}, expected {%" PRIu64 ", resends_done}",
		     m->direct_fence->pub_id, m->direct_fence->on,
		     m->direct_fence->resends_done, d.pub_id);
	vbi_codec_free(m);
	quiesce();
	i = find_ev(&d.s1, EV_RESEND, at);
	if (i < 0 || (size_t)i > done_at || d.s1.evs[i].sid != SID_S1_A ||
	    d.s1.evs[i].seq != 6)
		fail("S1: the announced RESEND (seq 6, sid %d) did not come "
		     "ahead of resends_done",
		     SID_S1_A);
	d.s1.evs[i].taken = true;
	if ((i = find_ev(&d.s1, EV_RESEND, 0)) >= 0)
		fail("S1: a RESEND for sid %" PRIu32 " (seq %" PRIu64
		     ") that should have been dropped",
		     d.s1.evs[i].sid, d.s1.evs[i].seq);
	if (find_ev(&d.s2, EV_RESEND, 0) >= 0)
		fail("S2: a RESEND addressed to S1");
	none_of(&d.p, VERBUS__CONTROL__BODY_NOTICE, "resending");
	if (d.monitor) {
		double dr = metric("verbus_direct_resends_dropped_total") -
			    dropped0;
		double sn = metric("verbus_direct_resends_total") - sent0;

		if (dr != 4 || sn != 1)
			fail("broker: %g resends delivered and %g dropped, "
			     "expected 1 and 4",
			     sn, dr);
	}
	printf("PASS: e2. resends: one unannounced dropped; after a failed "
	       "DirectSwitch off announcing 3, S1 got the one for its "
	       "direct sid (prefix and payload intact) ahead of "
	       "DirectFence {P, resends_done}, not the ones for its plain "
	       "sid, S2's sid or past the 3\n");
}

static void case_f(void)
{
	Verbus__Control *m;

	direct_switch(&d.p, d.s1.conn_id, true);
	m = take(&d.s1, VERBUS__CONTROL__BODY_DIRECT_FENCE,
		 "DirectFence {on} after P's second DirectSwitch", NULL);
	if (m->direct_fence->pub_id != d.pub_id || !m->direct_fence->on)
		fail("S1: DirectFence {pub_id %" PRIu64 ", on %d}",
		     m->direct_fence->pub_id, m->direct_fence->on);
	vbi_codec_free(m);
	d.p.may_close = true;
	vbi_conn_close(d.p.c);
	wait_for(is_closed, &d.p, 0, "close");
	m = take(&d.s1, VERBUS__CONTROL__BODY_DIRECT_REVOKE,
		 "DirectRevoke after P's connection closed", NULL);
	if (m->direct_revoke->pub_id != d.pub_id)
		fail("S1: DirectRevoke {pub_id %" PRIu64 "}, P's is %" PRIu64,
		     m->direct_revoke->pub_id, d.pub_id);
	vbi_codec_free(m);
	barrier(&d.s2);
	none_of(&d.s2, VERBUS__CONTROL__BODY_DIRECT_REVOKE,
		"a DirectRevoke though P never switched to S2");
	printf("PASS: f. P switched to S1 again, then closed: S1 got "
	       "DirectRevoke {P}\n");
}

static void case_g(void)
{
	Verbus__Control *m;

	direct_switch(&d.p2, 999999, true);
	barrier(&d.p2);
	direct_switch(&d.s3, 999999, false);
	barrier(&d.s3);
	printf("PASS: g. DirectSwitch for an unknown sub_id (999999) "
	       "ignored: the connection open, its Ping answered\n");

	d.s1.may_close = true;
	send_listen(&d.s1);
	vbi_conn_flush(d.s1.c);
	wait_for(is_closed, &d.s1, 0, "close after a second DirectListen");
	if (d.s1.why.err == VB_OK)
		fail("S1: closed without an error after a second "
		     "DirectListen");
	printf("direct_ctl: S1 closed: %s (%s)\n", vb_strerror(d.s1.why.err),
	       d.s1.why.reason);
	barrier(&d.s2);
	barrier(&d.p2);
	/* S1's subscriptions went with it: P2 asks, only S2 remains. */
	query(&d.p2, 7, SUBJECT);
	m = take(&d.p2, VERBUS__CONTROL__BODY_DIRECT_PATHS,
		 "DirectPaths after S1 closed", NULL);
	for (size_t i = 0; i < m->direct_paths->n_paths; i++)
		if (m->direct_paths->paths[i]->sub_id == d.s1.conn_id)
			fail("P2: a path to S1, closed");
	vbi_codec_free(m);
	printf("PASS: g. a second DirectListen closes the connection (%s); "
	       "the others go on, and S1 has no paths any more\n",
	       vb_strerror(d.s1.why.err));
}

/* ---- --rogue: a hostile direct publisher ------------------------------------ */

/* What each frame the rogue writes carries: never to be delivered. */
#define ROGUE_PAYLOAD "BAD: a rogue's frame"
#define ROGUE_OK_MSGS 10 /* brokered messages after the cases */
#define ROGUE_SID 1 /* S's direct subscription to the subject */

/* Send @len bytes of @data on @subject through P's broker connection. */
static void p_send(const char *subject, const void *data, size_t len)
{
	uint64_t end = mono_ms() + (uint64_t)d.wait_ms;
	int rc;

	while ((rc = vbi_conn_send(d.p.c, subject, strlen(subject), data,
				   (uint32_t)len)) == VB_EAGAIN) {
		if (mono_ms() >= end)
			fail("P: no credit to publish within %d ms", d.wait_ms);
		pump(10);
	}
	if (rc)
		fail("P: publish on %s: %s", subject, vb_strerror(rc));
	vbi_conn_flush(d.p.c);
}

/* One brokered "ok <n>" for the served subscriber: its traffic goes on. */
static void rogue_ok(void)
{
	char pl[32];
	int n = snprintf(pl, sizeof(pl), "ok %u", ++d.rogue_oks);

	p_send(d.rogue, pl, (size_t)n);
}

/* A DirectQuery for the subject: the served subscriber's path and S's. */
static void rogue_ask(struct answer *a, const Verbus__DirectPath **served,
		      const Verbus__DirectPath **own)
{
	*served = *own = NULL;
	ask(++d.rogue_qid, d.rogue, a);
	for (size_t i = 0; i < a->npaths; i++) {
		const Verbus__DirectPath *p = a->paths[i];

		if (p->sub_id == d.s1.conn_id)
			*own = p;
		else if (*served)
			fail("P: two paths for %s besides S's: one served "
			     "subscriber expected",
			     d.rogue);
		else
			*served = p;
	}
	if (!*served)
		fail("P: no path for %s but S's: is a vb_libdirect --serve "
		     "subscribed to it?",
		     d.rogue);
	if (!*own)
		fail("P: no path to S for %s", d.rogue);
	if (!(*served)->connect || !(*served)->grant ||
	    !(*served)->grant->n_sids || !(*served)->url)
		fail("P: the served subscriber's path lacks a grant or a url");
}

/* "SCHEME://HOST:PORT" ("[HOST]" for IPv6) into @host and @port. */
static void url_split(const char *url, char *host, size_t hlen, char *port,
		      size_t plen)
{
	const char *h = strstr(url, "://"), *colon;
	size_t n;

	if (!h || (size_t)(h - url) != strlen(d.scheme) ||
	    strncmp(url, d.scheme, strlen(d.scheme)))
		fail("the served subscriber's url '%s' is not %s://", url,
		     d.scheme);
	h += 3;
	colon = strrchr(h, ':');
	if (!colon)
		fail("the url '%s' has no port", url);
	n = (size_t)(colon - h);
	if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
		h++;
		n -= 2;
	}
	if (!n || n >= hlen || strlen(colon + 1) >= plen)
		fail("the url '%s' does not fit", url);
	memcpy(host, h, n);
	host[n] = '\0';
	snprintf(port, plen, "%s", colon + 1);
}

static bool open_or_closed(const struct cl *k, uint64_t arg)
{
	(void)arg;
	return k->open || k->closed;
}

/*
 * A direct connection @k to the served subscriber at @url, its Hello's
 * credentials @g packed (NULL: none), run until it opens or is turned
 * away.
 */
static void rogue_conn(struct cl *k, const char *name, const char *url,
		       const Verbus__DirectGrant *g)
{
	struct vbi_conn_cbs cbs = { .open = on_open,
				    .message = on_message,
				    .control = on_control,
				    .closed = on_closed };
	struct vbi_conn_opts o = { .name = name,
				   .ring_size = 1u << 18,
				   .source = d.pub_src,
				   .isolate = 1 };
	uint8_t cred[VBI_CRED_MAX];
	char host[VBI_URL_MAX + 1], port[16];
	int rc;

	memset(k, 0, sizeof(*k));
	k->name = name;
	k->may_close = true;
	if (g) {
		if (verbus__direct_grant__get_packed_size(g) > sizeof(cred))
			fail("%s: a grant larger than a Hello takes", name);
		o.credentials = cred;
		o.credentials_len = verbus__direct_grant__pack(g, cred);
	}
	url_split(url, host, sizeof(host), port, sizeof(port));
	rc = vbi_tp_connect(d.tp, host, port, &o, &cbs, k, &k->c);
	if (rc)
		fail("%s: connect to %s: %s", name, url, vb_strerror(rc));
	wait_for(open_or_closed, k, 0, "open or refusal");
}

static void rogue_free(struct cl *k)
{
	for (size_t j = 0; j < k->nev; j++)
		free(k->evs[j].msg);
	free(k->evs);
	k->evs = NULL;
	k->nev = k->cap = 0;
}

/* @k was turned away at its Hello, for a reason saying @why. */
static void expect_refused(struct cl *k, const char *why)
{
	if (k->open)
		fail("%s: the subscriber let it in", k->name);
	if (k->why.err == VB_OK || !strstr(k->why.reason, "refused") ||
	    !strstr(k->why.reason, why))
		fail("%s: closed with %s (%s); expected a refusal: %s", k->name,
		     vb_strerror(k->why.err), k->why.reason, why);
	printf("rogue: %s: %s (%s)\n", k->name, vb_strerror(k->why.err),
	       k->why.reason);
	d.rogue_refused++;
	rogue_free(k);
}

/* @k, open, is closed by the subscriber, for a reason saying @why. */
static void expect_dropped(struct cl *k, const char *why)
{
	wait_for(is_closed, k, 0, "close by the subscriber");
	if (k->why.err == VB_OK || k->why.err == VB_ECLOSED ||
	    !strstr(k->why.reason, why))
		fail("%s: closed with %s (%s); expected an error: %s", k->name,
		     vb_strerror(k->why.err), k->why.reason, why);
	printf("rogue: %s: %s (%s)\n", k->name, vb_strerror(k->why.err),
	       k->why.reason);
	d.rogue_refused++;
	rogue_free(k);
}

static void expect_open(struct cl *k)
{
	if (!k->open)
		fail("%s: refused with a grant that holds: %s (%s)", k->name,
		     vb_strerror(k->why.err), k->why.reason);
}

/* A DirectGrant on @k: @g with @subject and @sub_id. */
static void rogue_grant(struct cl *k, const Verbus__DirectGrant *g,
			const char *subject, uint64_t sub_id)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__DirectGrant cp = *g;

	cp.subject = (char *)subject;
	cp.sub_id = sub_id;
	m.body_case = VERBUS__CONTROL__BODY_DIRECT_GRANT;
	m.direct_grant = &cp;
	send_ctrl(k, &m);
	vbi_conn_flush(k->c);
}

/* A frame with the topic @topic for @sid, @payload, written on @k. */
static void frame_on(struct cl *k, const char *topic, uint32_t sid,
		     const char *payload)
{
	uint64_t end = mono_ms() + (uint64_t)d.wait_ms;
	uint16_t tlen = (uint16_t)strlen(topic);
	uint32_t plen = (uint32_t)strlen(payload);
	void *t, *p;
	int rc;

	for (;;) {
		if (k->closed)
			fail("%s: closed before its frame: %s", k->name,
			     k->why.reason);
		rc = vbi_conn_reserve_kind(k->c, VBI_FRAME_MSG, tlen, plen, &t,
					   &p);
		if (rc == VB_OK)
			break;
		if (rc != VB_EAGAIN)
			fail("%s: reserving a frame: %s", k->name,
			     vb_strerror(rc));
		if (mono_ms() >= end)
			fail("%s: no room for a frame within %d ms", k->name,
			     d.wait_ms);
		pump(10);
	}
	memcpy(t, topic, tlen);
	memcpy(p, payload, plen);
	vbi_frame_set_sid((uint8_t *)t - VBI_FRAME_HDR_LEN, sid);
	rc = vbi_conn_commit(k->c);
	if (rc)
		fail("%s: committing a frame: %s", k->name, vb_strerror(rc));
	vbi_conn_flush(k->c);
}

/* A frame on @subject for @sid, with ROGUE_PAYLOAD, written on @k. */
static void rogue_frame(struct cl *k, const char *subject, uint32_t sid)
{
	frame_on(k, subject, sid, ROGUE_PAYLOAD);
}

/* A sid @g does not name: the next one past its first that is not. */
static uint32_t sid_outside(const Verbus__DirectGrant *g)
{
	uint32_t sid = g->sids[0];
	size_t i;

	do {
		sid++;
		for (i = 0; i < g->n_sids && g->sids[i] != sid; i++)
			;
	} while (i < g->n_sids);
	return sid;
}

static void rogue_run(void)
{
	const Verbus__DirectPath *sp, *op;
	Verbus__DirectGrant g;
	uint8_t mac[VBI_GRANT_MAC_LEN];
	struct cl r1, r2;
	struct answer a;
	char other[VBI_SUBJECT_MAX + 8];
	char quit[32];
	uint32_t outside;
	int n;

	conn(&d.p, "P", d.pub_src, 1u << 18, NULL, 0);
	conn(&d.s1, "S", d.sub_src, 1u << 18, NULL, 0);
	wait_for(is_open, &d.p, 0, "open");
	wait_for(is_open, &d.s1, 0, "open");
	listen_key(&d.s1);
	subscribe(&d.s1, ROGUE_SID, d.rogue, "", true);
	barrier(&d.s1);
	none_of(&d.s1, VERBUS__CONTROL__BODY_NOTICE, "subscribing");
	snprintf(other, sizeof(other), "%s.z", d.rogue);

	/* a. No credentials at all. */
	rogue_ask(&a, &sp, &op);
	rogue_conn(&r1, "a: no grant", sp->url, NULL);
	expect_refused(&r1, "");
	rogue_ok();
	printf("PASS: rogue a. a Hello without a connect grant refused "
	       "(\"refused\" in the Error)\n");

	/* b. A connect grant forged: a byte of its MAC flipped; its expiry
	 * stretched. */
	g = *sp->connect;
	memcpy(mac, g.mac.data, sizeof(mac));
	mac[3] ^= 0x01;
	g.mac.data = mac;
	rogue_conn(&r1, "b: flipped MAC", sp->url, &g);
	expect_refused(&r1, "does not verify");
	g = *sp->connect;
	g.expires_ms += 60000;
	rogue_conn(&r1, "b: stretched expiry", sp->url, &g);
	expect_refused(&r1, "does not verify");
	rogue_ok();
	printf("PASS: rogue b. a connect grant with a MAC byte flipped, one "
	       "with its expiry stretched: refused\n");

	/* c. The real one opens; the same again is a replay. */
	rogue_conn(&r1, "c: valid grant", sp->url, sp->connect);
	expect_open(&r1);
	rogue_conn(&r2, "c: replayed grant", sp->url, sp->connect);
	expect_refused(&r2, "replay");
	rogue_ok();
	printf("PASS: rogue c. a valid connect grant opens; the same grant "
	       "on a second connection refused as a replay\n");

	/* d. On that connection, a frame with no subject grant sent. */
	rogue_frame(&r1, d.rogue, sp->grant->sids[0]);
	expect_dropped(&r1, "no grant");
	answer_free(&a);
	rogue_ok();
	printf("PASS: rogue d. a frame on %s without its DirectGrant closes "
	       "the direct connection\n",
	       d.rogue);

	/* e. A new path, its subject grant, a frame for another sid. */
	rogue_ask(&a, &sp, &op);
	rogue_conn(&r1, "e: sid outside", sp->url, sp->connect);
	expect_open(&r1);
	rogue_grant(&r1, sp->grant, d.rogue, sp->grant->sub_id);
	outside = sid_outside(sp->grant);
	rogue_frame(&r1, d.rogue, outside);
	expect_dropped(&r1, "does not name");
	answer_free(&a); /* sp with it */
	rogue_ok();
	printf("PASS: rogue e. with the subject grant, a frame for sid "
	       "%" PRIu32 ", which it does not name: closed\n",
	       outside);

	/* f. The subject grant moved to another subject. */
	rogue_ask(&a, &sp, &op);
	rogue_conn(&r1, "f: grant moved", sp->url, sp->connect);
	expect_open(&r1);
	rogue_grant(&r1, sp->grant, other, sp->grant->sub_id);
	expect_dropped(&r1, "does not verify");
	answer_free(&a);
	rogue_ok();
	printf("PASS: rogue f. the subject grant for %s presented for %s: "
	       "closed\n",
	       d.rogue, other);

	/* g. S's grants (under S's key) at the served subscriber. */
	rogue_ask(&a, &sp, &op);
	rogue_conn(&r1, "g: S's connect grant", sp->url, op->connect);
	expect_refused(&r1, "another subscriber");
	rogue_conn(&r1, "g: S's subject grant", sp->url, sp->connect);
	expect_open(&r1);
	rogue_grant(&r1, op->grant, d.rogue, op->grant->sub_id);
	expect_dropped(&r1, "another subscriber");
	answer_free(&a);
	rogue_ask(&a, &sp, &op);
	rogue_conn(&r1, "g: S's grant retargeted", sp->url, sp->connect);
	expect_open(&r1);
	rogue_grant(&r1, op->grant, d.rogue, sp->sub_id);
	expect_dropped(&r1, "does not verify");
	answer_free(&a);
	rogue_ok();
	printf("PASS: rogue g. another subscriber's connect grant refused; its "
	       "subject grant, as it is and with the served sub_id, closes "
	       "the connection\n");

	/* The served subscriber's brokered traffic, and its end. */
	d.s1.may_close = true;
	vbi_conn_close(d.s1.c);
	wait_for(is_closed, &d.s1, 0, "close");
	for (int i = 0; i < ROGUE_OK_MSGS; i++)
		rogue_ok();
	n = snprintf(quit, sizeof(quit), "%u", d.rogue_oks);
	p_send("quit", quit, (size_t)n);
	barrier(&d.p);
	d.p.may_close = true;
	vbi_conn_close(d.p.c);
	wait_for(is_closed, &d.p, 0, "close");
	printf("rogue: %u attempts refused or closed; %u brokered messages "
	       "published, then quit\n",
	       d.rogue_refused, d.rogue_oks);
	printf("PASS: rogue\n");
}

/* ---- --rogue --stall: a barrier never met --------------------------------- */

#define STALL_NAMED 1000000u /* frames its switch off names */
#define STALL_DIRECT 3 /* "ok <n>" frames written directly: all it writes */
#define STALL_HELD 5 /* brokered behind the fence off: held */
#define STALL_AFTER 5 /* brokered once the barrier lifted */
/* The bound runs 10 s from the fence off, which follows our switch off:
 * what it holds may come no sooner than this, and must by the next. */
#define STALL_HOLD_MIN_MS 9000
#define STALL_HOLD_MAX_MS 20000
#define SID_ACK 1 /* A's subscription to the echoes */

/* Whether @k has @n deliveries (echoes) in all. */
static bool has_frames(const struct cl *k, uint64_t n)
{
	uint64_t got = 0;

	for (size_t i = 0; i < k->nev; i++)
		got += k->evs[i].kind == EV_FRAME;
	return got >= n;
}

/* P, and A subscribed to @ack, where the served subscriber echoes what it
 * delivers (--stall, --reconnect). */
static void ack_open(const char *ack)
{
	conn(&d.p, "P", d.pub_src, 1u << 18, NULL, 0);
	conn(&d.s1, "A", d.sub_src, 1u << 18, NULL, 0);
	wait_for(is_open, &d.p, 0, "open");
	wait_for(is_open, &d.s1, 0, "open");
	subscribe(&d.s1, SID_ACK, ack, "", false);
	barrier(&d.s1);
	none_of(&d.s1, VERBUS__CONTROL__BODY_NOTICE, "subscribing");
}

/* The end: direct connection @r, A, then "quit" (the count of "ok"
 * messages) through P, which closes last. */
static void ack_close(struct cl *r)
{
	char quit[32];
	int n;

	r->may_close = true;
	vbi_conn_close(r->c);
	wait_for(is_closed, r, 0, "close");
	rogue_free(r);
	d.s1.may_close = true;
	vbi_conn_close(d.s1.c);
	wait_for(is_closed, &d.s1, 0, "close");
	n = snprintf(quit, sizeof(quit), "%u", d.rogue_oks);
	p_send("quit", quit, (size_t)n);
	barrier(&d.p);
	d.p.may_close = true;
	vbi_conn_close(d.p.c);
	wait_for(is_closed, &d.p, 0, "close");
}

/* P's DirectSwitch to @sub_id: on, declaring @g's sids; or (@g NULL) off,
 * naming @frames as written on the direct connection. */
static void stall_switch(uint64_t sub_id, const Verbus__DirectGrant *g,
			 uint64_t frames)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__DirectSwitch s = VERBUS__DIRECT_SWITCH__INIT;

	s.sub_id = sub_id;
	s.on = g != NULL;
	if (g) {
		s.sids = g->sids;
		s.n_sids = g->n_sids;
	}
	s.frames = frames;
	m.body_case = VERBUS__CONTROL__BODY_DIRECT_SWITCH;
	m.direct_switch = &s;
	send_ctrl(&d.p, &m);
	vbi_conn_flush(d.p.c);
}

/* The next "ok <n>" on @topic (the subject and A's echo subject as its
 * reply): on @k's direct connection for @sid, or (@k NULL) through the
 * broker. */
static void stall_ok(struct cl *k, uint32_t sid, const char *topic)
{
	char pl[32];

	snprintf(pl, sizeof(pl), "ok %u", ++d.rogue_oks);
	if (k)
		frame_on(k, topic, sid, pl);
	else
		p_send(topic, pl, strlen(pl));
}

/*
 * Case h: a direct path opened, switched on, 3 frames written, then a
 * DirectSwitch off naming 1,000,000 and the connection kept open.  The
 * subscriber's barrier holds the brokered messages P publishes next, and
 * must lift 10 s after the fence off (VBI_DIRECT_RESEND_WAIT_NS): they
 * then come, in order, and so does what follows, at once.  The served
 * subscriber's echoes to A say when each was delivered.
 */
static void rogue_stall(void)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__DirectFence f = VERBUS__DIRECT_FENCE__INIT;
	const Verbus__DirectPath *sp;
	char ack[VBI_SUBJECT_MAX + 8], topic[2 * VBI_SUBJECT_MAX + 16];
	uint64_t t0, held_ms, after_ms;
	struct answer a;
	struct cl r;
	size_t at;
	long i;
	int n;

	snprintf(ack, sizeof(ack), "ack.%s", d.rogue);
	snprintf(topic, sizeof(topic), "%s %s", d.rogue, ack);
	ack_open(ack);

	/* The path: opened, granted, switched on (the marker on the direct
	 * connection first: PROTOCOL.md, step 1), its frames delivered. */
	ask(++d.rogue_qid, d.rogue, &a);
	if (a.npaths != 1 || !a.paths[0]->connect || !a.paths[0]->grant ||
	    !a.paths[0]->grant->n_sids)
		fail("P: %zu paths for %s, expected one granted: is a "
		     "vb_libdirect --serve (alone) subscribed to it?",
		     a.npaths, d.rogue);
	sp = a.paths[0];
	rogue_conn(&r, "h: stalled", sp->url, sp->connect);
	expect_open(&r);
	r.may_close = false; /* a stall, not a close: open to the end */
	rogue_grant(&r, sp->grant, d.rogue, sp->grant->sub_id);
	f.pub_id = d.pub_id;
	f.on = true;
	m.body_case = VERBUS__CONTROL__BODY_DIRECT_FENCE;
	m.direct_fence = &f;
	send_ctrl(&r, &m);
	stall_switch(sp->sub_id, sp->grant, 0);
	for (n = 0; n < STALL_DIRECT; n++)
		stall_ok(&r, sp->grant->sids[0], topic);
	wait_for(has_frames, &d.s1, STALL_DIRECT, "echo of every direct frame");
	expect_seqs(&d.s1, SID_ACK, 0, d.s1.nev, 1, STALL_DIRECT,
		    "echoes of the direct frames");

	/* Off, naming frames that never come: behind the fence off, the
	 * subscriber's barrier holds what P publishes through the broker. */
	at = d.s1.nev;
	stall_switch(sp->sub_id, NULL, STALL_NAMED);
	t0 = mono_ms();
	for (n = 0; n < STALL_HELD; n++)
		stall_ok(NULL, 0, topic);
	while (!has_frames(&d.s1, STALL_DIRECT + STALL_HELD)) {
		if (mono_ms() >= t0 + STALL_HOLD_MAX_MS)
			fail("A: %zu of the %d messages published behind a "
			     "DirectSwitch off naming %u frames (%d written) "
			     "delivered within %d s: the subscriber's "
			     "barrier never lifted",
			     d.s1.nev - at, STALL_HELD, STALL_NAMED,
			     STALL_DIRECT, STALL_HOLD_MAX_MS / 1000);
		pump(20);
	}
	i = find_ev(&d.s1, EV_FRAME, at);
	held_ms = d.s1.evs[i].ms - t0;
	if (held_ms < STALL_HOLD_MIN_MS)
		fail("A: message %" PRIu64 " delivered %" PRIu64
		     " ms after a DirectSwitch off naming %u frames (%d "
		     "written): the barrier did not hold",
		     d.s1.evs[i].seq, held_ms, STALL_NAMED, STALL_DIRECT);
	expect_seqs(&d.s1, SID_ACK, at, d.s1.nev, STALL_DIRECT + 1,
		    STALL_DIRECT + STALL_HELD, "held behind the barrier");

	/* Lifted: the subscriber's brokered traffic goes on, not held
	 * again. */
	at = d.s1.nev;
	t0 = mono_ms();
	for (n = 0; n < STALL_AFTER; n++)
		stall_ok(NULL, 0, topic);
	wait_for(has_frames, &d.s1, STALL_DIRECT + STALL_HELD + STALL_AFTER,
		 "echo of every message after the barrier");
	after_ms = mono_ms() - t0;
	if (after_ms >= STALL_HOLD_MIN_MS)
		fail("A: the messages after the barrier lifted took %" PRIu64
		     " ms: held again",
		     after_ms);
	expect_seqs(&d.s1, SID_ACK, at, d.s1.nev, STALL_DIRECT + STALL_HELD + 1,
		    STALL_DIRECT + STALL_HELD + STALL_AFTER,
		    "after the barrier");
	printf("PASS: rogue h. a DirectSwitch off naming %u frames (%d "
	       "written), the direct connection open: the subscriber held "
	       "the %d brokered messages behind it %" PRIu64 " ms (the "
	       "bound: 10 s), then delivered them in order; %d more after "
	       "it in %" PRIu64 " ms\n",
	       STALL_NAMED, STALL_DIRECT, STALL_HELD, held_ms, STALL_AFTER,
	       after_ms);

	/* The end: the direct connection, A, then quit through P. */
	answer_free(&a);
	ack_close(&r);
	printf("stall: %d written directly, %u \"ok\" messages in all, "
	       "then quit\n",
	       STALL_DIRECT, d.rogue_oks);
}

/* ---- --rogue --reconnect: resends name their connection ------------------ */

#define RECON_FIRST 3 /* "ok <n>" written on connection 1 */
#define RECON_SECOND 5 /* then on connection 2 */
#define RECON_RESENT 2 /* connection 1's frames 4 and 5, resent */

/* P's RESEND of "ok <n>" on @topic for @sid, as frame @seq of the direct
 * connection whose connect grant had the nonce @nonce (its tag). */
static void resend_ok(uint64_t sub_id, uint32_t sid, uint64_t seq,
		      const ProtobufCBinaryData *nonce, const char *topic)
{
	struct vbi_resend r = { .pub_id = d.pub_id,
				.sub_id = sub_id,
				.seq = seq,
				.kind = VBI_FRAME_MSG };
	char pl[32];
	int plen;

	if (nonce->len < sizeof(r.conn))
		fail("P: a connect grant's nonce of %zu bytes", nonce->len);
	memcpy(r.conn, nonce->data, sizeof(r.conn));
	plen = snprintf(pl, sizeof(pl), "ok %u", ++d.rogue_oks);
	p_resend(&r, topic, sid, pl, (uint32_t)plen);
	vbi_conn_flush(d.p.c);
}

/* A path to the served subscriber opened on a fresh connect grant (@a, the
 * answer, kept by the caller), granted and switched on, @n "ok <n>" frames
 * written and echoed.  Returns the answer's path. */
static const Verbus__DirectPath *recon_path(struct cl *k, const char *name,
					    struct answer *a, const char *topic,
					    int n)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__DirectFence f = VERBUS__DIRECT_FENCE__INIT;
	const Verbus__DirectPath *sp;
	uint64_t echoed = d.rogue_oks;

	ask(++d.rogue_qid, d.rogue, a);
	if (a->npaths != 1 || !a->paths[0]->connect || !a->paths[0]->grant ||
	    !a->paths[0]->grant->n_sids)
		fail("P: %zu paths for %s, expected one granted: is a "
		     "vb_libdirect --serve (alone) subscribed to it?",
		     a->npaths, d.rogue);
	sp = a->paths[0];
	rogue_conn(k, name, sp->url, sp->connect);
	expect_open(k);
	rogue_grant(k, sp->grant, d.rogue, sp->grant->sub_id);
	f.pub_id = d.pub_id;
	f.on = true;
	m.body_case = VERBUS__CONTROL__BODY_DIRECT_FENCE;
	m.direct_fence = &f;
	send_ctrl(k, &m);
	stall_switch(sp->sub_id, sp->grant, 0);
	for (int i = 0; i < n; i++)
		stall_ok(k, sp->grant->sids[0], topic);
	wait_for(has_frames, &d.s1, echoed + (uint64_t)n,
		 "echo of every direct frame");
	return sp;
}

/*
 * Case i: a resend names the direct connection it repeats (core/resend.h).
 * Connection 1: switched on, 3 frames, switched off naming 3 (met at
 * once), closed.  Asked again, connection 2: switched on, 5 frames.  Then a
 * failed switch off and two RESENDs of connection 1's frames 4 and 5 (what
 * a failure of it would still owe), tagged with its connect grant's nonce.
 * The subscriber must count them on connection 1 (3 taken: both new) and
 * deliver them; counted on its open connection 2 (5 taken), as before the
 * tag, they were dropped as had.
 */
static void rogue_reconnect(void)
{
	char ack[VBI_SUBJECT_MAX + 8], topic[2 * VBI_SUBJECT_MAX + 16];
	const Verbus__DirectPath *sp1, *sp2;
	struct answer a1, a2;
	struct cl r1, r2;
	int n;

	snprintf(ack, sizeof(ack), "ack.%s", d.rogue);
	snprintf(topic, sizeof(topic), "%s %s", d.rogue, ack);
	ack_open(ack);

	sp1 = recon_path(&r1, "i: connection 1", &a1, topic, RECON_FIRST);
	stall_switch(sp1->sub_id, NULL, RECON_FIRST);
	vbi_conn_close(r1.c);
	wait_for(is_closed, &r1, 0, "close");
	rogue_free(&r1);
	sp2 = recon_path(&r2, "i: connection 2", &a2, topic, RECON_SECOND);
	switch_failed(sp2->sub_id, RECON_SECOND, RECON_RESENT);
	for (n = 1; n <= RECON_RESENT; n++)
		resend_ok(sp2->sub_id, sp2->grant->sids[0],
			  (uint64_t)RECON_FIRST + (uint64_t)n,
			  &sp1->connect->nonce, topic);
	wait_for(has_frames, &d.s1, RECON_FIRST + RECON_SECOND + RECON_RESENT,
		 "echo of connection 1's resends (dropped as had: counted "
		 "on connection 2?)");
	expect_seqs(&d.s1, SID_ACK, 0, d.s1.nev, 1,
		    RECON_FIRST + RECON_SECOND + RECON_RESENT,
		    "connection 1's frames, connection 2's, then 1's resends");
	printf("PASS: rogue i. RESENDs of connection 1's frames %d-%d, sent "
	       "while connection 2 (%d frames taken) was open, counted on "
	       "connection 1 by their tag: delivered, in order\n",
	       RECON_FIRST + 1, RECON_FIRST + RECON_RESENT, RECON_SECOND);

	answer_free(&a1);
	answer_free(&a2);
	ack_close(&r2);
	printf("reconnect: %d written directly, %d resent, %u \"ok\" "
	       "messages in all, then quit\n",
	       RECON_FIRST + RECON_SECOND, RECON_RESENT, d.rogue_oks);
}

/* ---- set-up -------------------------------------------------------------- */

static void log_line(void *arg, enum vbi_log_level level, const char *line)
{
	(void)arg;
	fprintf(stderr, "direct_ctl: %s: %s\n", vbi_log_level_name(level),
		line);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: vb_direct_ctl --connect ADDR [--port P] "
		"[--scheme rdma|tcp]\n"
		"  --sub-source ADDR --pub-source ADDR [--monitor HOST:PORT] "
		"[--wait SEC] [--verbose]\n"
		"  [--rogue SUBJECT [--stall | --reconnect]: against "
		"vb_libdirect --serve]\n");
	exit(EXIT_USAGE);
}

static void parse(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "connect", required_argument, NULL, 'c' },
		{ "port", required_argument, NULL, 'p' },
		{ "scheme", required_argument, NULL, 'K' },
		{ "sub-source", required_argument, NULL, 's' },
		{ "pub-source", required_argument, NULL, 'P' },
		{ "monitor", required_argument, NULL, 'm' },
		{ "wait", required_argument, NULL, 'w' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "rogue", required_argument, NULL, 'R' },
		{ "stall", no_argument, NULL, 'S' },
		{ "reconnect", no_argument, NULL, 'I' },
		{ 0 },
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'c':
			d.addr = optarg;
			break;
		case 'p':
			d.port = optarg;
			break;
		case 'K':
			d.scheme = optarg;
			break;
		case 's':
			d.sub_src = optarg;
			break;
		case 'P':
			d.pub_src = optarg;
			break;
		case 'm':
			d.monitor = optarg;
			break;
		case 'w':
			d.wait_ms = atoi(optarg) * 1000;
			if (d.wait_ms <= 0)
				usage();
			break;
		case 'v':
			vbi_log_set(log_line, NULL, VBI_LOG_DEBUG);
			break;
		case 'R':
			d.rogue = optarg;
			if (!*d.rogue || strlen(d.rogue) > VBI_SUBJECT_MAX)
				usage();
			break;
		case 'S':
			d.stall = true;
			break;
		case 'I':
			d.reconnect = true;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || !d.addr || !d.sub_src || !d.pub_src ||
	    ((d.stall || d.reconnect) && !d.rogue) || (d.stall && d.reconnect))
		usage();
}

int main(int argc, char **argv)
{
	struct cl *all[] = { &d.s1, &d.s2, &d.s3, &d.p, &d.p2 };
	int rc;

	parse(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!vbi_log_enabled(VBI_LOG_WARN))
		vbi_log_set(log_line, NULL, VBI_LOG_WARN);
	make_inbox();
	snprintf(d.s1.url, sizeof(d.s1.url), "%s://%s:40001", d.scheme,
		 d.sub_src);
	snprintf(d.s2.url, sizeof(d.s2.url), "%s://%s:40002", d.scheme,
		 d.sub_src);
	rc = vbi_tp_create(d.scheme, &d.tp);
	if (rc)
		fail("transport %s: %s", d.scheme, vb_strerror(rc));
	if (d.rogue) {
		snprintf(d.s1.url, sizeof(d.s1.url), "%s://%s:40009", d.scheme,
			 d.sub_src);
		if (d.stall)
			rogue_stall();
		else if (d.reconnect)
			rogue_reconnect();
		else
			rogue_run();
		vbi_tp_destroy(d.tp);
		rogue_free(&d.s1);
		rogue_free(&d.p);
		return 0;
	}
	case_a();
	case_b();
	case_c();
	case_d();
	case_e();
	case_e2();
	case_f();
	case_g();
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		all[i]->may_close = true;
		if (all[i]->c && !all[i]->closed)
			vbi_conn_close(all[i]->c);
	}
	for (int k = 0; k < 100; k++) {
		bool open = false;

		for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
			open |= !all[i]->closed;
		if (!open)
			break;
		pump(20);
	}
	vbi_tp_destroy(d.tp);
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		for (size_t j = 0; j < all[i]->nev; j++)
			free(all[i]->evs[j].msg);
		free(all[i]->evs);
	}
	printf("PASS: direct_ctl\n");
	return 0;
}
