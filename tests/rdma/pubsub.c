/*
 * pubsub.c - vb_pubsub, the client the broker's integration tests drive.
 *
 * One process plays one role against a running verbusd: a publisher
 * (--pub), a subscriber (--sub, also with many subscriptions or many
 * connections), a request/reply client (--req), a responder (--rep), or a
 * client that expects its subscription to be refused (--bad-sub).  Every
 * published payload starts with 16 bytes (magic "VBPS", the publisher's id,
 * its sequence number from 1, all little-endian) followed by bytes that are
 * a function of (id, seq, offset), so a subscriber verifies every message
 * it gets, and the order of each publisher's messages, with no side
 * channel: without a queue group and without a Dropped notice it must see
 * exactly seq 1, 2, 3, ... of each publisher; otherwise gaps are allowed,
 * duplicates and going backwards never.
 *
 * Two decisions a reader must know.  First, every phase change goes
 * through a barrier: the client sends a Ping and waits for the Pong, which
 * the broker sends only once it has processed everything sent before it;
 * so "ready" means the subscriptions are in force, and a publisher's exit
 * means the broker has routed all its messages.  Before that final Ping the
 * publisher flushes and runs one progress round, so that no staged frame is
 * still waiting for credit when the Ping (a SEND) leaves.  Second, all the
 * driving happens in one place, step(), called after every
 * vbi_tp_progress(); callbacks record what arrived and, where latency
 * matters (a reply, a request to answer), act at once.  Even a slow
 * subscriber (--hold-ms) does its slow work there, between progress
 * rounds, not in the callback: see hold_pump().  Only --pause-ms, a
 * consumer that stalls once, sleeps in the callback, on purpose.
 *
 * For benchmarks, --latency makes a publisher write its send time
 * (CLOCK_MONOTONIC) into payload bytes 16-23 and a subscriber compute each
 * message's one-way latency from it: meaningful when both run under one
 * clock (the hosts of one guest).  --interval-us paces the publisher, one
 * message at a time, so that the figure is latency, not queueing.
 *
 * --lead SUBJECT makes a publisher send one message to SUBJECT first (as
 * publisher id + 1, seq 1): a frame another subscriber holds in the
 * broker's ring of this publisher while the rest stream past it.
 *
 * Exit: 0 pass, 1 failure, 2 usage, 4 the broker closed the connection.
 */
#include "core/log.h"
#include "proto/codec.h"
#include "transport/transport.h"

#include <verbus/verbus.h>

#include <fcntl.h>
#include <getopt.h>
#include <openssl/evp.h>
#include <sys/random.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EXIT_USAGE 2
#define EXIT_VANISHED 4

#define PS_MAGIC 0x56425053u /* "VBPS" */
#define PS_HDR 16u /* magic, pub id, seq */
#define PUB_MAX 64 /* distinct publishers a subscriber tracks */
#define GAPS_SHOWN 10 /* gaps reported one by one */
#define NOTICES_SHOWN 20 /* notices a publisher prints */
#define TOPIC_MAX 65535u /* a frame's topic length is a u16 */

enum mode { M_NONE, M_PUB, M_SUB, M_REQ, M_REP, M_BADSUB };

/* Where the run is; the same for every connection. */
enum phase {
	PH_SETUP, /* connecting, subscribing, first barrier */
	PH_RUN, /* the mode's work */
	PH_FLUSHED, /* pub, rep: all queued and flushed, one round to go */
	PH_DRAIN, /* the final barrier is in flight */
	PH_DONE, /* leave the loop */
};

struct st;

/* One connection to the broker (one, or --conns of them). */
struct pc {
	struct st *s; /* the run it belongs to */
	struct vbi_conn *c; /* NULL once closed */
	int idx; /* 0-based, for messages */
	bool open; /* the open callback ran */
	bool closed; /* the closed callback ran */
	uint32_t next_sub; /* next sid to subscribe; > nsubs: all sent */
	bool ping_want; /* a barrier was asked for, Ping not sent yet */
	uint64_t ping_id; /* our Ping awaiting its Pong; 0: none */
	unsigned barriers; /* Pongs received for our Pings */
	uint64_t pong_id; /* the broker pinged us: answer pending */
	bool pong_want; /* pong_id must still be sent */
	uint64_t received; /* deliveries on this connection */
	uint64_t *last; /* [sid * PUB_MAX + slot]: last seq seen, 0: none */
	uint64_t *per_sid; /* [sid]: deliveries */
	uint64_t *dropped; /* [sid]: the latest Dropped count; [0]: other */
	bool drops; /* a Dropped with a count arrived: gaps are allowed */
};

/* A request not answered yet, or a message a slow subscriber holds. */
struct pending {
	struct pc *p; /* the connection it arrived on */
	struct vbi_frame_view v; /* still referenced until answered */
	uint16_t reply_off; /* where the reply subject starts in the topic */
};

/* Options and the state of the run. */
struct st {
	/* Options. */
	enum mode mode; /* the one role this process plays */
	const char *addr, *source, *port; /* broker, our address, its port */
	const char *scheme; /* the transport: "rdma" (NULL), "tcp" or "tls" */
	const char *name; /* connection name in the Hello, and in the inbox */
	uint32_t ring, max_msg; /* our receive ring, largest message taken */
	bool ring_set; /* --ring given */
	int timeout_s; /* the whole run fails after this long */
	const char *subject; /* --pub, --req, --rep: SUBJECT; --sub: PATTERN */
	const char *queue; /* queue group, "" for none */
	uint64_t count; /* --pub/--req: messages; --rep: answers (0: any) */
	bool count_set; /* --count given */
	uint32_t size; /* payload bytes */
	bool size_set; /* --size given: a subscriber checks lengths too */
	uint32_t pub_id; /* our id in the payload header */
	bool no_verify; /* do not fill or check payload bytes */
	bool late; /* --late: a publisher's first message may have any seq */
	bool latency; /* send times in payload bytes 16-23 */
	uint32_t interval_us; /* --pub: one message every this long */
	const char *lead; /* --pub: one message here first, as pub_id + 1 */
	bool lead_sent;
	uint64_t next_send; /* ns: when the next paced message may go */
	uint64_t *lat_ns; /* --sub --latency: one-way latency per message */
	uint64_t nlat, lat_cap;
	uint64_t expect; /* --sub: messages to wait for (per connection) */
	int idle_ms; /* quiet this long after a message or a Dropped: stop */
	uint64_t max_msgs; /* Subscribe.max_msgs */
	int hold_ms; /* slow consumer: time spent per message */
	int pause_ms; /* a stall: takes nothing this long at its first */
	const char *ready_file; /* created once ready, or NULL */
	uint32_t many; /* subscriptions per connection */
	int conns; /* connections */

	/* The run. */
	struct vbi_tp *tp; /* every connection's transport context */
	struct pc *pcs; /* @conns of them */
	enum phase phase; /* where the run is */
	bool closing; /* we are closing: a close is no surprise */
	bool failed; /* a check failed: exit 1 */
	bool vanished; /* the broker closed a connection: exit 4 */
	uint64_t ping_seq; /* ids of our Pings */
	uint64_t t_start, t_run, t_end, t_last; /* ns */
	uint64_t t_first; /* ns: the first message received */
	uint64_t notices; /* Notices received */
	char inbox[128]; /* --req: our reply subject */
	uint8_t secret[16]; /* the inbox secret our credentials carry */
	uint8_t cred[VBI_CRED_MAX]; /* packed Verbus__Credentials */
	size_t cred_len;

	/* Publisher and requester. */
	uint64_t sent; /* messages queued */
	uint64_t waits; /* sends refused for backpressure */
	bool blocked; /* the last send was refused */

	/* Subscriber. */
	uint32_t pub_ids[PUB_MAX]; /* publishers seen, in order */
	uint64_t pub_counts[PUB_MAX]; /* their messages */
	int npubs; /* entries in pub_ids and pub_counts */
	uint64_t total; /* messages received, all connections */
	uint64_t payload_bytes; /* their payload */
	uint64_t gaps, missing; /* seq gaps, messages they skip */
	bool bad_notice; /* --bad-sub: the Notice for sid 1 came */

	/* Requester. */
	uint64_t *rtt_ns; /* one per request */
	uint64_t replies; /* replies received */
	bool awaiting; /* a request is out */
	uint64_t t_req; /* when it left */

	/* Responder, and a slow subscriber. */
	struct pending *rq; /* FIFO of requests to answer, messages held */
	size_t rq_head, rq_len, rq_cap; /* first entry, entries, slots */
	uint64_t answered; /* replies queued */
	uint64_t ignored; /* requests without a reply subject */
};

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static const char *mode_name(enum mode m)
{
	static const char *const names[] = { "?",   "pub", "sub",
					     "req", "rep", "bad-sub" };

	return names[m];
}

static void fail(struct st *s, const char *what)
{
	fprintf(stderr, "pubsub: %s: %s\n", mode_name(s->mode), what);
	s->failed = true;
	s->phase = PH_DONE;
}

/* fail() with "@what: <what @rc means>". */
static void fail_rc(struct st *s, const char *what, int rc)
{
	char why[128];

	snprintf(why, sizeof(why), "%s: %s", what, vb_strerror(rc));
	fail(s, why);
}

/* ---- payloads ---------------------------------------------------------- */

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
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

/*
 * Byte @i (>= PS_HDR) of publisher @id's message @seq: one hash per message
 * and a cheap walk, so that filling and checking keep up with the wire.
 */
static uint8_t byte_at(uint64_t h, uint32_t i)
{
	return (uint8_t)((h >> (8 * (i & 7))) + (i >> 3) * 131u);
}

static uint64_t msg_hash(uint32_t id, uint64_t seq)
{
	return mix64(seq * 0x9e3779b97f4a7c15ull ^ ((uint64_t)id << 32 | id));
}

/* With a send time, the pattern starts after it. */
#define PS_STAMP_END (PS_HDR + 8u)

static void fill(uint8_t *p, uint32_t len, uint32_t id, uint64_t seq,
		 bool no_verify, bool stamp)
{
	uint64_t h = msg_hash(id, seq);

	put_le32(p, PS_MAGIC);
	put_le32(p + 4, id);
	put_le64(p + 8, seq);
	for (uint32_t i = PS_HDR; i < len && !no_verify; i++)
		p[i] = byte_at(h, i);
	if (stamp && len >= PS_STAMP_END)
		put_le64(p + PS_HDR, now_ns());
}

/* The offset of the first wrong pattern byte, or 0 if all are right. */
static uint32_t check_bytes(const uint8_t *p, uint32_t len, uint32_t id,
			    uint64_t seq, bool stamp)
{
	uint64_t h = msg_hash(id, seq);

	for (uint32_t i = stamp ? PS_STAMP_END : PS_HDR; i < len; i++)
		if (p[i] != byte_at(h, i))
			return i;
	return 0;
}

/* ---- subjects ---------------------------------------------------------- */

/* Does the literal @subj (@len bytes) match @pat (`*` a token, `>` the rest)? */
static bool pattern_match(const char *pat, const char *subj, size_t len)
{
	const char *end = subj + len;

	for (;;) {
		const char *pe = strchr(pat, '.');
		const char *se = memchr(subj, '.', (size_t)(end - subj));
		size_t pl = pe ? (size_t)(pe - pat) : strlen(pat);
		size_t sl = se ? (size_t)(se - subj) : (size_t)(end - subj);

		if (pl == 1 && pat[0] == '>' && !pe)
			return sl > 0;
		if (!(pl == 1 && pat[0] == '*') &&
		    (pl != sl || memcmp(pat, subj, pl)))
			return false;
		if (!pe || !se)
			return !pe && !se;
		pat = pe + 1;
		subj = se + 1;
	}
}

/* The pattern subscription @sid uses (PATTERN, or PATTERN.<sid-1>). */
static const char *sub_pattern(const struct st *s, uint32_t sid, char *buf,
			       size_t cap)
{
	if (s->mode != M_SUB || s->many <= 1)
		return s->subject;
	snprintf(buf, cap, "%s.%" PRIu32, s->subject, sid - 1);
	return buf;
}

static uint32_t nsubs(const struct st *s)
{
	switch (s->mode) {
	case M_SUB:
		return s->many;
	case M_REQ:
	case M_REP:
	case M_BADSUB:
		return 1;
	default:
		return 0;
	}
}

/* ---- control messages --------------------------------------------------- */

static int send_subscribe(struct pc *p, uint32_t sid)
{
	struct st *s = p->s;
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__Subscribe sub = VERBUS__SUBSCRIBE__INIT;
	char buf[VBI_CTRL_MAX];

	sub.sid = sid;
	if (s->mode == M_REQ)
		sub.subject = s->inbox;
	else
		sub.subject = (char *)sub_pattern(s, sid, buf, sizeof(buf));
	sub.queue = (char *)(s->mode == M_REQ ? "" : s->queue);
	sub.max_msgs = s->mode == M_SUB ? s->max_msgs : 0;
	m.body_case = VERBUS__CONTROL__BODY_SUBSCRIBE;
	m.subscribe = &sub;
	return vbi_conn_send_ctrl(p->c, &m);
}

static int send_ping(struct pc *p, uint64_t id, bool pong)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__Ping ping = VERBUS__PING__INIT;
	Verbus__Pong pg = VERBUS__PONG__INIT;

	if (pong) {
		pg.id = id;
		m.body_case = VERBUS__CONTROL__BODY_PONG;
		m.pong = &pg;
	} else {
		ping.id = id;
		m.body_case = VERBUS__CONTROL__BODY_PING;
		m.ping = &ping;
	}
	return vbi_conn_send_ctrl(p->c, &m);
}

/*
 * Send what control traffic @p owes, in order: our answer to a broker's
 * Ping, the Subscribes not sent yet, then the Ping of a barrier (after the
 * Subscribes, so that its Pong covers them).  Stops at VB_EAGAIN; the
 * writable callback or the next step() resumes.
 */
static void ctrl_pump(struct pc *p)
{
	struct st *s = p->s;
	int rc = VB_OK;

	if (!p->c || !p->open)
		return;
	if (p->pong_want) {
		rc = send_ping(p, p->pong_id, true);
		if (rc == VB_OK)
			p->pong_want = false;
	}
	while (rc == VB_OK && p->next_sub <= nsubs(s)) {
		rc = send_subscribe(p, p->next_sub);
		if (rc == VB_OK)
			p->next_sub++;
	}
	if (rc == VB_OK && p->ping_want) {
		uint64_t id = s->ping_seq + 1;

		rc = send_ping(p, id, false);
		if (rc == VB_OK) {
			s->ping_seq = id;
			p->ping_id = id;
			p->ping_want = false;
		}
	}
	if (rc && rc != VB_EAGAIN) {
		fprintf(stderr, "pubsub: connection %d: control message: %s\n",
			p->idx, vb_strerror(rc));
		s->failed = true;
		s->phase = PH_DONE;
	}
}

static void on_notice(struct pc *p, const Verbus__Notice *n)
{
	struct st *s = p->s;
	int code = -(int)n->code;
	bool ours = n->sid >= 1 && n->sid <= nsubs(s);

	s->notices++;
	if (s->mode == M_BADSUB && n->sid == 1) {
		s->bad_notice = true;
		printf("pubsub: bad-sub: notice for sid 1: code %" PRIu32
		       " (%s): %s\n",
		       n->code, vb_strerror(code), n->reason);
		return;
	}
	if (s->mode != M_PUB || s->notices <= NOTICES_SHOWN)
		fprintf(stderr,
			"pubsub: connection %d: notice: code %" PRIu32
			" (%s), sid %" PRIu32 ", seq %" PRIu64 ": %s\n",
			p->idx, n->code, vb_strerror(code), n->sid, n->seq,
			n->reason);
	/* A refusal before we are ready is a Subscribe the broker refused. */
	if (s->phase == PH_SETUP && ours && n->code != 0) {
		fprintf(stderr,
			"pubsub: connection %d: subscription %" PRIu32
			" refused\n",
			p->idx, n->sid);
		s->failed = true;
		s->phase = PH_DONE;
	}
}

static void on_control(struct vbi_conn *c, const Verbus__Control *m, void *arg)
{
	struct pc *p = arg;
	struct st *s = p->s;
	uint32_t sid;

	(void)c;
	switch (m->body_case) {
	case VERBUS__CONTROL__BODY_PONG:
		if (p->ping_id && m->pong->id == p->ping_id) {
			p->ping_id = 0;
			p->barriers++;
		} else {
			fprintf(stderr,
				"pubsub: connection %d: unexpected pong %" PRIu64
				"\n",
				p->idx, m->pong->id);
		}
		break;
	case VERBUS__CONTROL__BODY_PING:
		p->pong_id = m->ping->id;
		p->pong_want = true;
		ctrl_pump(p);
		break;
	case VERBUS__CONTROL__BODY_NOTICE:
		on_notice(p, m->notice);
		break;
	case VERBUS__CONTROL__BODY_INFO:
		break; /* a clustered broker's members: not ours to use */
	case VERBUS__CONTROL__BODY_DROPPED:
		sid = m->dropped->sid <= nsubs(s) ? m->dropped->sid : 0;
		p->dropped[sid] = m->dropped->count;
		if (m->dropped->count)
			p->drops = true;
		s->t_last = now_ns(); /* news too: --idle-ms counts from it */
		if (vbi_log_enabled(VBI_LOG_DEBUG))
			fprintf(stderr,
				"pubsub: connection %d: dropped %" PRIu64
				" for sid %" PRIu32 "\n",
				p->idx, m->dropped->count, m->dropped->sid);
		break;
	default:
		fprintf(stderr, "pubsub: connection %d: unexpected %s\n",
			p->idx, vbi_codec_kind_name(m));
	}
}

/* ---- publisher and requester --------------------------------------------- */

/*
 * Queue one message with @topic (@tlen bytes) and a payload of s->size
 * bytes for (s->pub_id, @seq).  Returns VB_OK, VB_EAGAIN (counted as one
 * backpressure wait until a send succeeds again) or an error.
 */
static int publish_as(struct st *s, struct pc *p, const char *topic,
		      size_t tlen, uint32_t id, uint64_t seq)
{
	void *t, *pl;
	int rc;

	rc = vbi_conn_reserve(p->c, (uint16_t)tlen, s->size, &t, &pl);
	if (rc == VB_EAGAIN) {
		if (!s->blocked)
			s->waits++;
		s->blocked = true;
		return rc;
	}
	if (rc)
		return rc;
	s->blocked = false;
	memcpy(t, topic, tlen);
	fill(pl, s->size, id, seq, s->no_verify, s->latency);
	return vbi_conn_commit(p->c);
}

static int publish(struct st *s, struct pc *p, const char *topic, size_t tlen,
		   uint64_t seq)
{
	return publish_as(s, p, topic, tlen, s->pub_id, seq);
}

static void pub_pump(struct st *s)
{
	struct pc *p = &s->pcs[0];
	size_t tlen = strlen(s->subject);

	if (s->phase == PH_RUN && p->c && s->lead && !s->lead_sent) {
		int rc = publish_as(s, p, s->lead, strlen(s->lead),
				    s->pub_id + 1, 1);

		if (rc == VB_EAGAIN)
			return;
		if (rc) {
			fail_rc(s, "lead", rc);
			return;
		}
		s->lead_sent = true;
	}
	while (s->phase == PH_RUN && p->c && s->sent < s->count) {
		int rc;

		if (s->interval_us && now_ns() < s->next_send)
			return;
		rc = publish(s, p, s->subject, tlen, s->sent + 1);
		if (rc == VB_EAGAIN)
			return;
		if (s->interval_us && rc == VB_OK) {
			vbi_conn_flush(p->c);
			s->next_send = now_ns() + s->interval_us * 1000ull;
		}
		if (rc) {
			fail_rc(s, "publish", rc);
			return;
		}
		s->sent++;
	}
}

/* Send the next request if none is out. */
static void req_pump(struct st *s)
{
	struct pc *p = &s->pcs[0];
	char topic[TOPIC_MAX + 1];
	int n, rc;

	if (s->phase != PH_RUN || !p->c || s->awaiting || s->sent >= s->count)
		return;
	n = snprintf(topic, sizeof(topic), "%s %s", s->subject, s->inbox);
	rc = publish(s, p, topic, (size_t)n, s->sent + 1);
	if (rc == VB_EAGAIN)
		return;
	if (rc) {
		fail_rc(s, "publish", rc);
		return;
	}
	s->t_req = now_ns();
	vbi_conn_flush(p->c);
	s->sent++;
	s->awaiting = true;
}

/* ---- subscriber ---------------------------------------------------------- */

static int pub_slot(struct st *s, uint32_t id)
{
	for (int i = 0; i < s->npubs; i++)
		if (s->pub_ids[i] == id)
			return i;
	if (s->npubs == PUB_MAX)
		return -1;
	s->pub_ids[s->npubs] = id;
	return s->npubs++;
}

/*
 * Check one delivery of the publisher's format; on success set *@id and
 * *@seq.  Returns NULL or what is wrong.
 */
static const char *check_msg(const struct st *s, const struct vbi_frame_view *v,
			     uint32_t *id, uint64_t *seq, char *why, size_t cap)
{
	const uint8_t *b = v->payload;
	uint32_t bad;

	if (v->payload_len < PS_HDR)
		return "payload shorter than the 16-byte header";
	if (get_le32(b) != PS_MAGIC)
		return "bad magic";
	*id = get_le32(b + 4);
	*seq = get_le64(b + 8);
	if (*seq == 0)
		return "seq 0";
	if (s->size_set && v->payload_len != s->size) {
		snprintf(why, cap,
			 "payload of %" PRIu32 " bytes, expected %" PRIu32,
			 v->payload_len, s->size);
		return why;
	}
	if (s->no_verify)
		return NULL;
	bad = check_bytes(b, v->payload_len, *id, *seq, s->latency);
	if (bad) {
		snprintf(why, cap, "payload byte %" PRIu32 " differs", bad);
		return why;
	}
	return NULL;
}

/* The subject part of @v's topic must match what @sid subscribed to. */
static bool topic_ok(const struct st *s, const struct vbi_frame_view *v,
		     uint32_t sid)
{
	char buf[VBI_CTRL_MAX];
	const char *sp = memchr(v->topic, ' ', v->topic_len);
	size_t len = sp ? (size_t)(sp - v->topic) : v->topic_len;

	return pattern_match(sub_pattern(s, sid, buf, sizeof(buf)), v->topic,
			     len);
}

static void sub_message(struct pc *p, const struct vbi_frame_view *v)
{
	struct st *s = p->s;
	char why[128];
	const char *err;
	uint32_t id = 0;
	uint64_t seq = 0, *last;
	int slot;

	if (v->sid == 0 || v->sid > s->many) {
		snprintf(why, sizeof(why), "delivery for unknown sid %" PRIu32,
			 v->sid);
		fail(s, why);
		return;
	}
	if (!topic_ok(s, v, v->sid)) {
		fprintf(stderr,
			"pubsub: sub: topic '%.*s' for sid %" PRIu32
			" does not match its subscription\n",
			(int)v->topic_len, v->topic, v->sid);
		s->failed = true;
		s->phase = PH_DONE;
		return;
	}
	err = check_msg(s, v, &id, &seq, why, sizeof(why));
	if (err) {
		fprintf(stderr,
			"pubsub: sub: connection %d, message %" PRIu64
			" (pub %" PRIu32 " seq %" PRIu64 "): %s\n",
			p->idx, p->received, id, seq, err);
		s->failed = true;
		s->phase = PH_DONE;
		return;
	}
	slot = pub_slot(s, id);
	if (slot < 0) {
		fail(s, "more than 64 publishers");
		return;
	}
	last = &p->last[(size_t)v->sid * PUB_MAX + (size_t)slot];
	if (seq <= *last) {
		fprintf(stderr,
			"pubsub: sub: connection %d sid %" PRIu32
			": pub %" PRIu32 " seq %" PRIu64 " after %" PRIu64
			" (%s)\n",
			p->idx, v->sid, id, seq, *last,
			seq == *last ? "duplicate" : "backwards");
		s->failed = true;
		s->phase = PH_DONE;
		return;
	}
	if (seq != *last + 1 && !(s->late && *last == 0)) {
		if (s->gaps < GAPS_SHOWN)
			fprintf(stderr,
				"pubsub: sub: connection %d sid %" PRIu32
				": pub %" PRIu32 " seq %" PRIu64
				" after %" PRIu64 " (gap)\n",
				p->idx, v->sid, id, seq, *last);
		s->gaps++;
		s->missing += seq - *last - 1;
	}
	*last = seq;
	if (s->latency && v->payload_len >= PS_STAMP_END &&
	    s->nlat < s->lat_cap)
		s->lat_ns[s->nlat++] =
			now_ns() -
			get_le64((const uint8_t *)v->payload + PS_HDR);
	s->pub_counts[slot]++;
	p->per_sid[v->sid]++;
	if (s->max_msgs && p->per_sid[v->sid] > s->max_msgs) {
		snprintf(why, sizeof(why),
			 "sid %" PRIu32 " got more than --max-msgs %" PRIu64,
			 v->sid, s->max_msgs);
		fail(s, why);
	}
}

/* ---- responder ----------------------------------------------------------- */

static int rq_push(struct st *s, struct pc *p, const struct vbi_frame_view *v,
		   uint16_t reply_off)
{
	if (s->rq_len == s->rq_cap) {
		size_t cap = s->rq_cap ? s->rq_cap * 2 : 256;
		struct pending *n = malloc(cap * sizeof(*n));

		if (!n)
			return VB_ENOMEM;
		for (size_t i = 0; i < s->rq_len; i++)
			n[i] = s->rq[(s->rq_head + i) % s->rq_cap];
		free(s->rq);
		s->rq = n;
		s->rq_cap = cap;
		s->rq_head = 0;
	}
	s->rq[(s->rq_head + s->rq_len) % s->rq_cap] =
		(struct pending){ .p = p, .v = *v, .reply_off = reply_off };
	s->rq_len++;
	return VB_OK;
}

/* Answer queued requests in order until credit runs out. */
static void rep_pump(struct st *s)
{
	while (s->rq_len && s->phase == PH_RUN) {
		struct pending *q = &s->rq[s->rq_head];
		struct vbi_conn *c = q->p ? q->p->c : NULL;
		uint16_t tlen = (uint16_t)(q->v.topic_len - q->reply_off);
		void *t, *pl;
		int rc;

		if (!c)
			return; /* closed: on_closed released it */
		rc = vbi_conn_reserve(c, tlen, q->v.payload_len, &t, &pl);
		if (rc == VB_EAGAIN) {
			if (!s->blocked)
				s->waits++;
			s->blocked = true;
			return;
		}
		if (rc) {
			fail_rc(s, "reply", rc);
			return;
		}
		s->blocked = false;
		memcpy(t, q->v.topic + q->reply_off, tlen);
		memcpy(pl, q->v.payload, q->v.payload_len);
		vbi_conn_commit(c);
		vbi_conn_release(c, &q->v);
		s->rq_head = (s->rq_head + 1) % s->rq_cap;
		s->rq_len--;
		s->answered++;
		if (s->count_set && s->answered >= s->count)
			return;
	}
}

static void rep_message(struct pc *p, const struct vbi_frame_view *v)
{
	struct st *s = p->s;
	const char *sp = memchr(v->topic, ' ', v->topic_len);

	if (v->sid != 1 || !sp || sp + 1 == v->topic + v->topic_len) {
		if (s->ignored++ < NOTICES_SHOWN)
			fprintf(stderr,
				"pubsub: rep: ignoring '%.*s' (sid %" PRIu32
				"): no reply subject\n",
				(int)v->topic_len, v->topic, v->sid);
		vbi_conn_release(p->c, v);
		return;
	}
	if (s->count_set && s->answered + s->rq_len >= s->count) {
		vbi_conn_release(p->c, v); /* beyond --count: not ours */
		return;
	}
	if (rq_push(s, p, v, (uint16_t)(sp + 1 - v->topic))) {
		vbi_conn_release(p->c, v);
		fail(s, "out of memory");
		return;
	}
	rep_pump(s);
}

/* ---- requester ----------------------------------------------------------- */

static void req_message(struct pc *p, const struct vbi_frame_view *v)
{
	struct st *s = p->s;
	char why[128];
	const char *err;
	uint32_t id = 0;
	uint64_t seq = 0;

	if (v->sid != 1 || v->topic_len != strlen(s->inbox) ||
	    memcmp(v->topic, s->inbox, v->topic_len)) {
		fprintf(stderr,
			"pubsub: req: unexpected delivery '%.*s' on sid %" PRIu32
			"\n",
			(int)v->topic_len, v->topic, v->sid);
		s->failed = true;
		s->phase = PH_DONE;
		return;
	}
	err = check_msg(s, v, &id, &seq, why, sizeof(why));
	if (!err && (id != s->pub_id || !s->awaiting || seq != s->sent))
		err = "a reply to no request of ours (wrong id or seq)";
	if (err) {
		fprintf(stderr,
			"pubsub: req: reply (pub %" PRIu32 " seq %" PRIu64
			", waiting for seq %" PRIu64 "): %s\n",
			id, seq, s->sent, err);
		s->failed = true;
		s->phase = PH_DONE;
		return;
	}
	s->rtt_ns[s->replies++] = now_ns() - s->t_req;
	s->awaiting = false;
}

/* ---- callbacks ----------------------------------------------------------- */

static void on_open(struct vbi_conn *c, void *arg)
{
	struct pc *p = arg;

	p->c = c;
	p->open = true;
	p->ping_want = true; /* the first barrier, after the Subscribes */
	if (vbi_log_enabled(VBI_LOG_DEBUG))
		fprintf(stderr, "pubsub: connection %d open\n", p->idx);
	ctrl_pump(p);
}

static void on_message(struct vbi_conn *c, const struct vbi_frame_view *v,
		       void *arg)
{
	struct pc *p = arg;
	struct st *s = p->s;

	p->received++;
	s->t_last = now_ns();
	switch (s->mode) {
	case M_SUB:
		if (s->total++ == 0) {
			s->t_first = s->t_last;
			/* A consumer that stalls once: nothing is taken
			 * meanwhile, so its ring and its broker fill. */
			if (s->pause_ms > 0)
				usleep((useconds_t)s->pause_ms * 1000);
		}
		s->payload_bytes += v->payload_len;
		if (!s->failed)
			sub_message(p, v);
		if (s->hold_ms > 0 && !s->failed) {
			/* Consumed later, one per hold_ms: see hold_pump(). */
			if (rq_push(s, p, v, 0) == VB_OK)
				return;
			fail(s, "out of memory");
		}
		break;
	case M_REP:
		rep_message(p, v);
		return; /* released once answered */
	case M_REQ:
		req_message(p, v);
		break;
	default:
		fprintf(stderr,
			"pubsub: %s: unexpected delivery '%.*s' on sid %" PRIu32
			"\n",
			mode_name(s->mode), (int)v->topic_len, v->topic,
			v->sid);
		s->failed = true;
		s->phase = PH_DONE;
	}
	vbi_conn_release(c, v);
	if (s->mode == M_REQ)
		req_pump(s); /* the next request at once: latency */
}

static void on_writable(struct vbi_conn *c, void *arg)
{
	struct pc *p = arg;
	struct st *s = p->s;

	(void)c;
	ctrl_pump(p);
	if (s->mode == M_PUB)
		pub_pump(s);
	else if (s->mode == M_REQ)
		req_pump(s);
	else if (s->mode == M_REP)
		rep_pump(s);
}

static void on_closed(struct vbi_conn *c, const struct vbi_close_info *why,
		      void *arg)
{
	struct pc *p = arg;
	struct st *s = p->s;

	/*
	 * What this connection's queue entries reference is released now;
	 * the entries stay, marked, until they reach the head.
	 */
	for (size_t i = 0; i < s->rq_len; i++) {
		struct pending *q = &s->rq[(s->rq_head + i) % s->rq_cap];

		if (q->p == p) {
			vbi_conn_release(c, &q->v);
			q->p = NULL;
		}
	}
	while (s->rq_len && !s->rq[s->rq_head].p) {
		s->rq_head = (s->rq_head + 1) % s->rq_cap;
		s->rq_len--;
	}
	p->c = NULL;
	p->closed = true;
	if (s->closing)
		return;
	if (p->open) {
		fprintf(stderr, "pubsub: connection %d closed: %s (%s)\n",
			p->idx, why->reason, vb_strerror(why->err));
		s->vanished = true;
	} else {
		fprintf(stderr, "pubsub: connection %d: connect: %s (%s)\n",
			p->idx, why->reason, vb_strerror(why->err));
		s->failed = true;
	}
	s->phase = PH_DONE;
}

/* ---- driving ------------------------------------------------------------- */

static bool all_barriers(const struct st *s, unsigned n)
{
	for (int i = 0; i < s->conns; i++)
		if (s->pcs[i].barriers < n)
			return false;
	return true;
}

static void ready(struct st *s)
{
	s->phase = PH_RUN;
	s->t_run = now_ns();
	if (s->mode != M_SUB && s->mode != M_REP)
		return;
	/* The file first: a script may wait for either signal. */
	if (s->ready_file) {
		int fd =
			open(s->ready_file, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd < 0) {
			perror("pubsub: --ready-file");
			fail(s, "cannot create the ready file");
			return;
		}
		close(fd);
	}
	printf("pubsub: %s: ready\n", mode_name(s->mode));
	fflush(stdout);
}

/* Every connection of a subscriber has its --expect messages. */
static bool sub_expect_met(const struct st *s)
{
	if (!s->expect)
		return false;
	if (s->conns == 1)
		return s->total >= s->expect;
	for (int i = 0; i < s->conns; i++)
		if (s->pcs[i].received < s->expect)
			return false;
	return true;
}

/*
 * A publisher or responder has queued its last message: flush, and start
 * the final barrier after one more progress round (PH_FLUSHED), so that
 * the Ping cannot overtake a frame still staged.
 */
static void finish(struct st *s)
{
	if (s->pcs[0].c)
		vbi_conn_flush(s->pcs[0].c);
	s->phase = PH_FLUSHED;
}

/*
 * A slow subscriber: spend hold_ms on the oldest message it holds, then
 * release it.  This runs between progress rounds rather than as a sleep in
 * the message callback because the transport hands over everything in the
 * ring in one go and returns credit only after the last callback: sleeping
 * there would starve the broker of credit for the whole ring's worth of
 * sleeps, not model a consumer that is merely slow.
 */
static void hold_pump(struct st *s)
{
	struct pending *q;

	if (!s->rq_len)
		return;
	q = &s->rq[s->rq_head];
	usleep((useconds_t)s->hold_ms * 1000);
	if (q->p && q->p->c)
		vbi_conn_release(q->p->c, &q->v);
	s->rq_head = (s->rq_head + 1) % s->rq_cap;
	s->rq_len--;
	s->t_last = now_ns();
}

/* Drive the run after a progress round: the one place phases change. */
static void step(struct st *s)
{
	uint64_t now = now_ns();
	bool idle = s->t_last && s->idle_ms > 0 &&
		    now - s->t_last >= (uint64_t)s->idle_ms * 1000000u;

	for (int i = 0; i < s->conns; i++)
		ctrl_pump(&s->pcs[i]);
	switch (s->phase) {
	case PH_SETUP:
		if (!all_barriers(s, 1))
			break;
		if (s->mode == M_BADSUB) {
			if (!s->bad_notice)
				fail(s, "the subscription was accepted (no "
					"notice for sid 1)");
			s->phase = PH_DONE;
			break;
		}
		ready(s);
		if (s->mode == M_PUB)
			pub_pump(s);
		else if (s->mode == M_REQ)
			req_pump(s);
		break;
	case PH_RUN:
		switch (s->mode) {
		case M_PUB:
			pub_pump(s);
			if (s->sent == s->count)
				finish(s);
			break;
		case M_SUB:
			hold_pump(s);
			/* With --max-msgs, run to idle to see any excess. */
			if (s->rq_len)
				break;
			if (sub_expect_met(s) && !s->max_msgs)
				s->phase = PH_DONE;
			else if (idle)
				s->phase = PH_DONE;
			break;
		case M_REQ:
			req_pump(s);
			if (s->replies == s->count)
				s->phase = PH_DONE;
			break;
		case M_REP:
			rep_pump(s);
			if ((s->count_set && s->answered >= s->count) ||
			    (idle && !s->rq_len && s->answered))
				finish(s);
			break;
		default:
			break;
		}
		break;
	case PH_FLUSHED:
		/* One progress round has run since the flush. */
		s->phase = PH_DRAIN;
		s->pcs[0].ping_want = true;
		ctrl_pump(&s->pcs[0]);
		break;
	case PH_DRAIN:
		if (all_barriers(s, 2)) {
			s->t_end = now_ns();
			s->phase = PH_DONE;
		}
		break;
	case PH_DONE:
		break;
	}
}

/* What a run that hit --timeout was waiting for. */
static const char *waiting_for(const struct st *s)
{
	switch (s->phase) {
	case PH_SETUP:
		for (int i = 0; i < s->conns; i++)
			if (!s->pcs[i].open)
				return "the connection to open";
		return "the subscriptions' barrier (pong)";
	case PH_FLUSHED:
	case PH_DRAIN:
		return "the final barrier (pong)";
	default:
		break;
	}
	switch (s->mode) {
	case M_PUB:
		return "credit to publish";
	case M_SUB:
		return "messages";
	case M_REQ:
		return "a reply";
	default:
		return "requests";
	}
}

/* ---- reports ------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void report_pub(const struct st *s)
{
	double sec = (double)(s->t_end - s->t_run) / 1e9;
	double rate = sec > 0 ? (double)s->sent / sec : 0;

	printf("pubsub: pub: sent %" PRIu64 " in %.3f s (%.0f msg/s, %.2f MB/s)"
	       ", %" PRIu64 " backpressure waits\n",
	       s->sent, sec, rate, rate * s->size / 1e6, s->waits);
	if (s->notices)
		printf("pubsub: pub: %" PRIu64 " notices\n", s->notices);
}

static void report_sub(const struct st *s)
{
	uint64_t dropped = 0, lo = UINT64_MAX, hi = 0;
	int order[PUB_MAX];
	uint32_t with = 0;

	for (int i = 0; i < s->npubs; i++)
		order[i] = i;
	for (int i = 1; i < s->npubs; i++)
		for (int j = i;
		     j > 0 && s->pub_ids[order[j - 1]] > s->pub_ids[order[j]];
		     j--) {
			int t = order[j];

			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	for (int i = 0; i < s->conns; i++)
		for (uint32_t sid = 0; sid <= s->many; sid++)
			dropped += s->pcs[i].dropped[sid];
	printf("pubsub: sub: received %" PRIu64
	       " messages from %d publishers (per publisher:",
	       s->total, s->npubs);
	for (int i = 0; i < s->npubs; i++)
		printf(" id=%" PRIu32 ":%" PRIu64, s->pub_ids[order[i]],
		       s->pub_counts[order[i]]);
	printf("), dropped %" PRIu64 " (notices), gaps %" PRIu64 "\n", dropped,
	       s->gaps);
	if (s->total > 1 && s->t_last > s->t_first) {
		double sec = (double)(s->t_last - s->t_first) / 1e9;

		printf("pubsub: sub: first to last message %.3f s: %.0f msg/s, "
		       "%.2f MB/s of payload\n",
		       sec, (double)(s->total - 1) / sec,
		       (double)s->payload_bytes / sec / 1e6);
	}
	if (s->many > 1) {
		for (uint32_t sid = 1; sid <= s->many; sid++) {
			uint64_t n = s->pcs[0].per_sid[sid];

			lo = n < lo ? n : lo;
			hi = n > hi ? n : hi;
			with += n > 0;
		}
		printf("pubsub: sub: %" PRIu32 " subscriptions, %" PRIu32
		       " with messages, per subscription min %" PRIu64
		       " max %" PRIu64 "\n",
		       s->many, with, lo, hi);
	}
	if (s->conns > 1) {
		lo = UINT64_MAX;
		hi = 0;
		for (int i = 0; i < s->conns; i++) {
			lo = s->pcs[i].received < lo ? s->pcs[i].received : lo;
			hi = s->pcs[i].received > hi ? s->pcs[i].received : hi;
		}
		printf("pubsub: sub: %d connections, per connection min %" PRIu64
		       " max %" PRIu64 "\n",
		       s->conns, lo, hi);
	}
	if (s->gaps)
		printf("pubsub: sub: the gaps skip %" PRIu64 " messages\n",
		       s->missing);
	if (s->nlat) {
		uint64_t n = s->nlat, *l = s->lat_ns;

		qsort(l, n, sizeof(*l), cmp_u64);
		printf("pubsub: sub: one-way latency over %" PRIu64
		       " messages: min %.1f us, median %.1f us, p99 %.1f us, "
		       "p99.9 %.1f us, max %.1f us\n",
		       n, l[0] / 1e3, l[n / 2] / 1e3, l[n * 99 / 100] / 1e3,
		       l[n * 999 / 1000] / 1e3, l[n - 1] / 1e3);
	}
}

/* The subscriber's verdict once it has stopped; false: failure printed. */
static bool sub_verdict(struct st *s)
{
	bool drops = false;
	char why[160];

	for (int i = 0; i < s->conns; i++)
		drops |= s->pcs[i].drops;
	if (s->gaps && !s->queue[0] && !drops) {
		snprintf(why, sizeof(why),
			 "%" PRIu64 " gaps (%" PRIu64 " messages lost) without"
			 " a queue group or a Dropped notice",
			 s->gaps, s->missing);
		fail(s, why);
		return false;
	}
	if (!s->expect)
		return true;
	for (int i = 0; i < s->conns; i++) {
		uint64_t n = s->conns == 1 ? s->total : s->pcs[i].received;

		if (n < s->expect || (s->max_msgs && n != s->expect)) {
			if (s->conns == 1)
				snprintf(why, sizeof(why),
					 "received %" PRIu64
					 " messages, expected %" PRIu64,
					 n, s->expect);
			else
				snprintf(why, sizeof(why),
					 "connection %d received %" PRIu64
					 " messages, expected %" PRIu64,
					 i, n, s->expect);
			fail(s, why);
			return false;
		}
	}
	return true;
}

static void report_req(const struct st *s)
{
	uint64_t n = s->replies;

	if (n == 0)
		return;
	qsort(s->rtt_ns, n, sizeof(*s->rtt_ns), cmp_u64);
	printf("pubsub: req: %" PRIu64 " round trips, median %.1f us, "
	       "p99 %.1f us\n",
	       n, s->rtt_ns[n / 2] / 1e3, s->rtt_ns[n * 99 / 100] / 1e3);
}

/* ---- set-up -------------------------------------------------------------- */

/* The transport's log lines, prefixed like every line of ours. */
static void log_line(void *arg, enum vbi_log_level level, const char *line)
{
	(void)arg;
	fprintf(stderr, "pubsub: %s: %s\n", vbi_log_level_name(level), line);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: vb_pubsub --connect ADDR --source ADDR [--port P] "
		"[--name NAME] [--scheme rdma|tcp|tls]\n"
		"  [--ring BYTES] [--max-msg BYTES] [--timeout SEC] "
		"[--verbose] MODE\n"
		"modes:\n"
		"  --pub SUBJECT --count N [--size B] [--pub-id K] "
		"[--no-verify]\n"
		"        [--latency] [--interval-us US] [--lead SUBJECT]\n"
		"  --sub PATTERN [--queue Q] [--expect N] [--idle-ms MS] "
		"[--max-msgs N]\n"
		"        [--hold-ms MS] [--pause-ms MS] [--ready-file PATH] "
		"[--many N | --conns N]\n"
		"        [--size B] [--no-verify] [--latency] [--late]\n"
		"  --req SUBJECT --count N [--size B] [--pub-id K]\n"
		"  --rep SUBJECT [--queue Q] [--count N] [--idle-ms MS] "
		"[--ready-file PATH]\n"
		"  --bad-sub PATTERN [--queue Q]\n");
	exit(EXIT_USAGE);
}

static void set_mode(struct st *s, enum mode m, const char *arg)
{
	if (s->mode != M_NONE) {
		fprintf(stderr, "pubsub: give exactly one mode\n");
		usage();
	}
	s->mode = m;
	s->subject = arg;
}

/*
 * A number option: the whole argument must be a number in [lo, hi], which
 * for sizes (@opt "ring", "max-msg", "size") may end in K, M or G (powers
 * of 1024, as in verbusd's configuration).
 */
static uint64_t num(const char *opt, const char *arg, uint64_t lo, uint64_t hi)
{
	bool bytes = !strcmp(opt, "ring") || !strcmp(opt, "max-msg") ||
		     !strcmp(opt, "size");
	const char *units = "KMG";
	char *end;
	unsigned long long v;

	v = strtoull(arg, &end, 0);
	if (bytes && *end && strchr(units, *end) && !end[1] &&
	    v < (1ull << 34)) {
		v <<= 10 * (1 + (strchr(units, *end) - units));
		end++;
	}
	if (!*arg || *end || arg[0] == '-' || v < lo || v > hi) {
		fprintf(stderr,
			"pubsub: --%s: '%s' is not a number in [%" PRIu64
			", %" PRIu64 "]\n",
			opt, arg, lo, hi);
		usage();
	}
	return v;
}

static void parse(struct st *s, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "connect", required_argument, NULL, 'c' },
		{ "source", required_argument, NULL, 'I' },
		{ "scheme", required_argument, NULL, 'K' },
		{ "port", required_argument, NULL, 'p' },
		{ "name", required_argument, NULL, 'a' },
		{ "ring", required_argument, NULL, 'r' },
		{ "max-msg", required_argument, NULL, 'm' },
		{ "timeout", required_argument, NULL, 't' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "pub", required_argument, NULL, 'P' },
		{ "sub", required_argument, NULL, 'S' },
		{ "req", required_argument, NULL, 'Q' },
		{ "rep", required_argument, NULL, 'R' },
		{ "bad-sub", required_argument, NULL, 'B' },
		{ "count", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 'z' },
		{ "pub-id", required_argument, NULL, 'i' },
		{ "no-verify", no_argument, NULL, 'N' },
		{ "late", no_argument, NULL, 'J' },
		{ "latency", no_argument, NULL, 'L' },
		{ "interval-us", required_argument, NULL, 'T' },
		{ "lead", required_argument, NULL, 'l' },
		{ "queue", required_argument, NULL, 'q' },
		{ "expect", required_argument, NULL, 'e' },
		{ "idle-ms", required_argument, NULL, 'd' },
		{ "max-msgs", required_argument, NULL, 'x' },
		{ "hold-ms", required_argument, NULL, 'h' },
		{ "pause-ms", required_argument, NULL, 'H' },
		{ "ready-file", required_argument, NULL, 'f' },
		{ "many", required_argument, NULL, 'M' },
		{ "conns", required_argument, NULL, 'C' },
		{ 0 },
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'c':
			s->addr = optarg;
			break;
		case 'I':
			s->source = optarg;
			break;
		case 'K':
			s->scheme = optarg;
			break;
		case 'p':
			s->port = optarg;
			break;
		case 'a':
			s->name = optarg;
			break;
		case 'r':
			s->ring =
				(uint32_t)num("ring", optarg, 4096, UINT32_MAX);
			s->ring_set = true;
			break;
		case 'm':
			s->max_msg = (uint32_t)num("max-msg", optarg, 64,
						   UINT32_MAX);
			break;
		case 't':
			s->timeout_s = (int)num("timeout", optarg, 1, 86400);
			break;
		case 'v':
			vbi_log_set(log_line, NULL, VBI_LOG_DEBUG);
			break;
		case 'P':
			set_mode(s, M_PUB, optarg);
			break;
		case 'S':
			set_mode(s, M_SUB, optarg);
			break;
		case 'Q':
			set_mode(s, M_REQ, optarg);
			break;
		case 'R':
			set_mode(s, M_REP, optarg);
			break;
		case 'B':
			set_mode(s, M_BADSUB, optarg);
			break;
		case 'n':
			s->count = num("count", optarg, 1, UINT64_MAX / 2);
			s->count_set = true;
			break;
		case 'z':
			s->size = (uint32_t)num("size", optarg, PS_HDR,
						UINT32_MAX);
			s->size_set = true;
			break;
		case 'i':
			s->pub_id =
				(uint32_t)num("pub-id", optarg, 0, UINT32_MAX);
			break;
		case 'N':
			s->no_verify = true;
			break;
		case 'J':
			s->late = true;
			break;
		case 'l':
			s->lead = optarg;
			break;
		case 'L':
			s->latency = true;
			break;
		case 'T':
			s->interval_us = (uint32_t)num("interval-us", optarg, 1,
						       10000000);
			break;
		case 'q':
			s->queue = optarg;
			break;
		case 'e':
			s->expect = num("expect", optarg, 1, UINT64_MAX / 2);
			break;
		case 'd':
			s->idle_ms = (int)num("idle-ms", optarg, 0, 86400000);
			break;
		case 'x':
			s->max_msgs =
				num("max-msgs", optarg, 1, UINT64_MAX / 2);
			break;
		case 'h':
			s->hold_ms = (int)num("hold-ms", optarg, 0, 60000);
			break;
		case 'H':
			s->pause_ms = (int)num("pause-ms", optarg, 0, 60000);
			break;
		case 'f':
			s->ready_file = optarg;
			break;
		case 'M':
			s->many = (uint32_t)num("many", optarg, 1, 1000000);
			break;
		case 'C':
			s->conns = (int)num("conns", optarg, 1, 65536);
			break;
		default:
			usage();
		}
	}
	if (optind != argc || s->mode == M_NONE || !s->addr || !s->source) {
		if (s->mode == M_NONE)
			fprintf(stderr, "pubsub: give exactly one mode\n");
		usage();
	}
	if ((s->mode == M_PUB || s->mode == M_REQ) && !s->count_set) {
		fprintf(stderr, "pubsub: --%s needs --count\n",
			mode_name(s->mode));
		usage();
	}
	if (s->mode != M_SUB && (s->many > 1 || s->conns > 1 || s->expect ||
				 s->max_msgs || s->hold_ms)) {
		fprintf(stderr, "pubsub: --many, --conns, --expect, "
				"--max-msgs and --hold-ms are for --sub\n");
		usage();
	}
	if (s->lead && (s->mode != M_PUB || strlen(s->lead) > TOPIC_MAX)) {
		fprintf(stderr, "pubsub: --lead is for --pub, one subject\n");
		usage();
	}
	if (s->many > 1 && s->conns > 1) {
		fprintf(stderr, "pubsub: --many and --conns do not combine\n");
		usage();
	}
	if (strlen(s->subject) + sizeof(s->inbox) > TOPIC_MAX) {
		fprintf(stderr, "pubsub: the subject is too long\n");
		usage();
	}
}

/* Defaults that depend on other options, and the connection options. */
static void finish_opts(struct st *s, struct vbi_conn_opts *o)
{
	uint32_t cap;

	if (!s->ring_set)
		s->ring = s->conns > 1 ? 65536u : 1u << 20;
	if (s->ring & (s->ring - 1)) {
		fprintf(stderr, "pubsub: --ring must be a power of two\n");
		usage();
	}
	/* A frame may take at most half the ring (header included). */
	cap = s->ring / 2 - VBI_FRAME_HDR_LEN;
	if (!s->max_msg)
		s->max_msg = cap < 65536u ? cap : 65536u;
	if (s->max_msg > cap) {
		fprintf(stderr,
			"pubsub: --max-msg %" PRIu32
			" does not fit half the ring (at most %" PRIu32 ")\n",
			s->max_msg, cap);
		usage();
	}
	if ((s->mode == M_PUB || s->mode == M_REQ) &&
	    s->size + strlen(s->subject) + strlen(s->inbox) + 1 > s->max_msg) {
		fprintf(stderr,
			"pubsub: --size %" PRIu32
			" with the topic exceeds --max-msg\n",
			s->size);
		usage();
	}
	o->name = s->name;
	o->ring_size = s->ring;
	o->max_msg = s->max_msg;
	o->source = s->source;
	o->credentials = s->cred;
	o->credentials_len = s->cred_len;
}

/*
 * The inbox: _INBOX.<id>.<name>.<pid>, the name's non-token bytes
 * replaced.  Inboxes are private (daemon/inbox.h): <id> is what the inbox
 * secret in our Hello's credentials proves, the first 8 bytes of its
 * SHA-256 in hex, as libverbus does it.
 */
static void make_inbox(struct st *s)
{
	Verbus__Credentials cr = VERBUS__CREDENTIALS__INIT;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char id[17];
	size_t n;

	if (getrandom(s->secret, sizeof(s->secret), 0) !=
		    (ssize_t)sizeof(s->secret) ||
	    !EVP_Digest(s->secret, sizeof(s->secret), md, &mdlen, EVP_sha256(),
			NULL)) {
		fprintf(stderr, "pubsub: no inbox secret\n");
		exit(1);
	}
	for (int i = 0; i < 8; i++)
		snprintf(id + 2 * i, 3, "%02x", md[i]);
	cr.token = cr.user = cr.password = (char *)"";
	cr.inbox_secret.data = s->secret;
	cr.inbox_secret.len = sizeof(s->secret);
	s->cred_len = verbus__credentials__pack(&cr, s->cred);
	snprintf(s->inbox, sizeof(s->inbox), "_INBOX.%s.%.64s.%ld", id, s->name,
		 (long)getpid());
	n = strlen(s->inbox);
	for (size_t i = 7 + 16 + 1; i < n; i++) {
		unsigned char ch = (unsigned char)s->inbox[i];

		if (ch <= 0x20 || ch == 0x7f || ch == '*' || ch == '>')
			s->inbox[i] = '_';
	}
}

static int alloc_conns(struct st *s)
{
	uint32_t n = nsubs(s);

	s->pcs = calloc((size_t)s->conns, sizeof(*s->pcs));
	if (!s->pcs)
		return VB_ENOMEM;
	for (int i = 0; i < s->conns; i++) {
		struct pc *p = &s->pcs[i];

		p->s = s;
		p->idx = i;
		p->next_sub = 1;
		p->last = calloc(((size_t)n + 1) * PUB_MAX, sizeof(*p->last));
		p->per_sid = calloc((size_t)n + 1, sizeof(*p->per_sid));
		p->dropped = calloc((size_t)n + 1, sizeof(*p->dropped));
		if (!p->last || !p->per_sid || !p->dropped)
			return VB_ENOMEM;
	}
	if (s->mode == M_REQ) {
		s->rtt_ns = calloc(s->count, sizeof(*s->rtt_ns));
		if (!s->rtt_ns)
			return VB_ENOMEM;
	}
	if (s->mode == M_SUB && s->latency) {
		s->lat_cap =
			s->expect ? s->expect * (uint64_t)s->conns : 1000000;
		s->lat_ns = calloc(s->lat_cap, sizeof(*s->lat_ns));
		if (!s->lat_ns)
			return VB_ENOMEM;
	}
	return VB_OK;
}

static void free_conns(struct st *s)
{
	for (int i = 0; s->pcs && i < s->conns; i++) {
		free(s->pcs[i].last);
		free(s->pcs[i].per_sid);
		free(s->pcs[i].dropped);
	}
	free(s->pcs);
	free(s->lat_ns);
	free(s->rtt_ns);
	free(s->rq);
}

static int connect_all(struct st *s, const struct vbi_conn_opts *base)
{
	struct vbi_conn_cbs cbs = { .open = on_open,
				    .message = on_message,
				    .writable = on_writable,
				    .control = on_control,
				    .closed = on_closed };
	char name[VBI_NAME_MAX + 1];
	int rc;

	for (int i = 0; i < s->conns; i++) {
		struct vbi_conn_opts o = *base;
		struct vbi_conn *c;

		if (s->conns > 1) {
			/* The transport copies the name. */
			snprintf(name, sizeof(name), "%.48s.%d", s->name, i);
			o.name = name;
		}
		rc = vbi_tp_connect(s->tp, s->addr, s->port, &o, &cbs,
				    &s->pcs[i], &c);
		if (rc) {
			fprintf(stderr, "pubsub: connection %d: connect: %s\n",
				i, vb_strerror(rc));
			return rc;
		}
		s->pcs[i].c = c;
	}
	return VB_OK;
}

/* Close every connection we still have and let the closes happen. */
static void close_all(struct st *s)
{
	s->closing = true;
	for (int i = 0; i < s->conns; i++)
		if (s->pcs[i].c)
			vbi_conn_close(s->pcs[i].c);
	for (int k = 0; k < 50; k++) {
		bool open = false;

		for (int i = 0; i < s->conns; i++)
			open |= !s->pcs[i].closed;
		if (!open)
			break;
		vbi_tp_progress(s->tp, 10);
	}
}

static int run(struct st *s)
{
	uint64_t deadline = s->t_start + (uint64_t)s->timeout_s * 1000000000u;
	char why[160];

	while (s->phase != PH_DONE) {
		uint64_t now = now_ns();
		int rc, wait_ms;

		if (now >= deadline) {
			snprintf(why, sizeof(why),
				 "timed out after %d s waiting for %s",
				 s->timeout_s, waiting_for(s));
			/* A responder without --count runs until the timeout. */
			if (s->mode == M_REP && !s->count_set && s->answered &&
			    s->phase == PH_RUN) {
				finish(s);
				deadline = now + 5000000000u;
				continue;
			}
			fail(s, why);
			break;
		}
		wait_ms = (int)((deadline - now) / 1000000u);
		if (wait_ms > 100)
			wait_ms = 100;
		if (s->mode == M_SUB && s->rq_len)
			wait_ms = 0; /* a slow subscriber has work */
		/* A paced publisher whose next message is due (or due within
		 * the millisecond) does not sleep: over TCP no completion
		 * would wake it early. */
		if (s->interval_us && s->mode == M_PUB && s->sent < s->count &&
		    (s->next_send <= now ||
		     (s->next_send - now) / 1000000u < (uint64_t)wait_ms))
			wait_ms =
				s->next_send <= now ?
					0 :
					(int)((s->next_send - now) / 1000000u);
		rc = vbi_tp_progress(s->tp, wait_ms);
		if (rc < 0) {
			fprintf(stderr, "pubsub: progress: %s\n",
				vb_strerror(rc));
			s->failed = true;
			break;
		}
		step(s);
	}
	switch (s->mode) {
	case M_PUB:
		if (!s->failed && !s->vanished)
			report_pub(s);
		break;
	case M_SUB:
		report_sub(s);
		if (!s->failed && !s->vanished && !sub_verdict(s))
			return 1;
		break;
	case M_REQ:
		report_req(s);
		break;
	case M_REP:
		printf("pubsub: rep: answered %" PRIu64 " requests, %" PRIu64
		       " backpressure waits\n",
		       s->answered, s->waits);
		break;
	default:
		break;
	}
	if (s->vanished)
		return EXIT_VANISHED;
	return s->failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	static struct st s = { .port = "7700",
			       .name = "vb_pubsub",
			       .timeout_s = 60,
			       .queue = "",
			       .size = 64,
			       .pub_id = 1,
			       .idle_ms = 3000,
			       .many = 1,
			       .conns = 1 };
	struct vbi_conn_opts o = { 0 };
	int rc, ret;

	parse(&s, argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!vbi_log_enabled(VBI_LOG_WARN))
		vbi_log_set(log_line, NULL, VBI_LOG_WARN);
	make_inbox(&s);
	finish_opts(&s, &o);
	if (alloc_conns(&s)) {
		fprintf(stderr, "pubsub: out of memory\n");
		free_conns(&s);
		return 1;
	}
	rc = vbi_tp_create(s.scheme ? s.scheme : "rdma", &s.tp);
	if (rc) {
		fprintf(stderr, "pubsub: transport: %s\n", vb_strerror(rc));
		free_conns(&s);
		return 1;
	}
	s.t_start = now_ns();
	rc = connect_all(&s, &o);
	ret = rc ? 1 : run(&s);
	close_all(&s);
	vbi_tp_destroy(s.tp);
	free_conns(&s);
	return ret;
}
