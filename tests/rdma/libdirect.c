/*
 * libdirect.c - vb_libdirect: direct mode end to end through libverbus
 * (docs/PROTOCOL.md, "Direct mode"), against a running verbusd (run by
 * tests/rdma/direct.sh over rxe and tcp).
 *
 *   vb_libdirect URL SOURCE-A SOURCE-B
 *
 * Connections: P, a direct publisher (VB_OPT_DIRECT) from SOURCE-A; S, a
 * direct subscriber (VB_SUB_DIRECT) from SOURCE-B; T, a plain subscriber
 * from SOURCE-B, on the same subjects.  One thread polls them all.
 *   - switch: P publishes a stream on dir.x from the start, so that its
 *     first messages go through the broker and the rest, once the path is
 *     open and switched on, straight to S: S and T each get every message
 *     once, in order; S got some directly (vb_stats.direct_msgs_in), P
 *     wrote them (direct_msgs_out), and the brokered ones S got are the
 *     first ones only;
 *   - subjects: messages on 16 subjects P never published, round
 *     robin, one sequence across them: while each one's paths are asked
 *     for, P switches off (everything through the broker), and on again
 *     once the answers are in; S and T see one ordered sequence;
 *   - unsubscribe: S unsubscribes: P stops writing to it (direct_msgs_out
 *     still after the broker's DirectStale), T gets everything;
 *   - again: S subscribes again (direct): the path comes back, every
 *     message once, in order.  (This case found the transport handing a
 *     control message held behind frames up after frames that came after
 *     it, transport/session.c: about 1 run in 50 before the fix.)
 * Prints "PASS: ..." lines; exit 0 on success, 1 on the first failure.
 *
 * Two helper modes for direct.sh's cases with other processes:
 *
 *   vb_libdirect --serve URL SOURCE PATTERN
 *   vb_libdirect --serve-plain URL SOURCE PATTERN
 *
 * A subscriber (direct, VB_SUB_DIRECT, or plain) to PATTERN, and a plain
 * one to "quit"; the library's warnings on stderr.  It prints "ready" once
 * the broker has its subscriptions, and "direct flowing" at its first
 * message from a direct publisher.  Every message must carry a payload
 * starting "ok" (anything else was injected: FAIL); "ok <n>" ones are
 * numbered from 1 per subject, and must come each once and in order; one
 * with a reply subject is then echoed there as it came (vb_respond), so
 * that its sender sees when it was delivered (direct.sh's case o times a
 * barrier with it).  A message on "quit" whose payload is a number N ends
 * it once the numbered messages of every subject add up to N (at once: no
 * number).
 * It then prints "served M messages, direct D, refused R, numbered N"
 * (vb_stats: direct_msgs_in, direct_refused) and exits 0.
 *
 *   vb_libdirect --publish URL SOURCE SUBJECT N
 *
 * A direct publisher (VB_OPT_DIRECT): "ok 1" .. "ok N" on SUBJECT, at
 * most 10 a millisecond, "published K" every 1,000, then vb_flush and
 * "published N messages, direct out D, failed F, gathered G, resent R"
 * (vb_stats; G: direct_fanout_gathered).  With VERBUS_DIRECT_PAD=B in the
 * environment each payload is B bytes: "ok <n> " then filler that
 * depends on n and the offset, which --serve checks (a message put
 * together from the wrong bytes fails).
 */
#include "vbcheck.h"

#include <verbus/verbus.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_MS 60000
#define SERVE_MS 120000 /* --serve: the longest it waits for "quit" */
#define SERVE_SUBJECTS 16 /* --serve: numbered subjects it follows */
#define PUB_PER_MS 10 /* --publish: messages a millisecond at most */
#define PAD_MAX 8192 /* VERBUS_DIRECT_PAD: the largest payload */

/* The filler byte at offset @k of message @n's padded payload. */
static char pad_byte(uint64_t n, size_t k)
{
	return (char)('a' + (n * 7 + k) % 26);
}

/* What one subscription saw. */
struct rx {
	const char *who;
	uint32_t next; /* the sequence number expected next */
	uint64_t got;
	uint64_t direct_seen; /* vb_stats direct_msgs_in at the last one */
};

static struct vb_conn *P, *S, *T;

static void on_msg(struct vb_conn *c, const struct vb_msg *m, void *arg)
{
	struct rx *r = arg;
	uint32_t seq;

	struct vb_stats st = { .sz = sizeof(st) };
	bool direct;

	CHECK(m->size == 64, "%s: a message of %zu bytes", r->who, m->size);
	memcpy(&seq, m->data, sizeof(seq));
	/* Whether it came straight from the publisher: for the report. */
	OK(vb_stats(c, &st));
	direct = st.direct_msgs_in != r->direct_seen;
	r->direct_seen = st.direct_msgs_in;
	CHECK(seq == r->next,
	      "%s: message %" PRIu32 " (%s) where %" PRIu32 " was due "
	      "(lost, doubled or out of order; %" PRIu64 " direct so far)",
	      r->who, seq, direct ? "direct" : "through the broker", r->next,
	      st.direct_msgs_in);
	r->next++;
	r->got++;
}

/* ---- queue groups ------------------------------------------------------- */

/* What a queue group got: each message of [base, base + n) once. */
struct group {
	uint32_t base, n;
	uint8_t *seen; /* @n flags */
	uint64_t got;
};

/* One member of it. */
struct member {
	const char *who;
	struct group *g;
	struct vb_conn *c;
	uint64_t got, direct; /* messages; of them, straight from P */
	uint64_t direct_seen; /* vb_stats direct_msgs_in at the last one */
	uint32_t last; /* the last one's number */
};

static struct vb_conn *Q1, *Q2;

/* stream_on() calls this once, after message @hook_at is published. */
static void (*stream_hook)(void);
static uint32_t hook_at;
/* stream_on(): past half the stream with no direct delivery at S yet, one
 * message a millisecond until there is one (the switch must happen
 * mid-stream: on rxe the brokered path can take a whole unpaced stream
 * before the direct connection is up). */
static bool pace_until_direct;

/* Q2's drain: its VB_EV_DRAINED. */
static struct vb_sub *sq2;
static int q2_drained = -1; /* the event's err; -1: none yet */

/* conn()'s connections' event callback (for Q2's). */
static vb_event_cb conn_event;

static void on_q2_event(struct vb_conn *c, const struct vb_event *ev, void *arg)
{
	(void)c;
	(void)arg;
	if (ev->type == VB_EV_DRAINED && ev->sub == sq2)
		q2_drained = ev->err;
}

static void on_member(struct vb_conn *c, const struct vb_msg *m, void *arg)
{
	struct vb_stats st = { .sz = sizeof(st) };
	struct member *q = arg;
	struct group *g = q->g;
	uint32_t seq;

	CHECK(m->size == 64, "%s: a message of %zu bytes", q->who, m->size);
	memcpy(&seq, m->data, sizeof(seq));
	OK(vb_stats(c, &st));
	if (st.direct_msgs_in != q->direct_seen)
		q->direct++;
	q->direct_seen = st.direct_msgs_in;
	CHECK(seq >= g->base && seq - g->base < g->n,
	      "%s: message %" PRIu32 " outside the stream", q->who, seq);
	CHECK(!g->seen[seq - g->base],
	      "%s: message %" PRIu32 " twice in the group", q->who, seq);
	/* One publisher's messages to one member: in order. */
	CHECK(!q->got || seq > q->last,
	      "%s: message %" PRIu32 " after %" PRIu32, q->who, seq, q->last);
	g->seen[seq - g->base] = 1;
	g->got++;
	q->last = seq;
	q->got++;
}

/* What join_and_drain() subscribes: Q1's second member. */
static struct member *q1;

/*
 * Mid-stream: a direct member joins on Q1, and Q2 drains its own.  Then,
 * for 300 ms, everybody runs but P, which has not yet heard of the drain:
 * its next messages (written directly, some to Q2) follow.  A drain that
 * ended at the broker's Pong alone would be over by then, and what P
 * writes to Q2 after it lost to the group (this case then fails); the
 * drain's Ping asks the broker to hold its Pong until P has switched its
 * path to Q2 off, behind what P wrote before (Ping.wait_direct).
 */
static void join_and_drain(void)
{
	uint64_t until = now_ms() + 300;

	OK(vb_subscribe_flags(Q1, "dir.>", "w", VB_SUB_DIRECT, on_member, q1,
			      NULL));
	OK(vb_sub_drain(sq2, WAIT_MS));
	while (now_ms() < until && q2_drained == -1) {
		vb_poll(T, 0);
		vb_poll(Q1, 0);
		vb_poll(S, 0);
		vb_poll(Q2, 1);
	}
}

static void poll_all(int ms)
{
	vb_poll(P, 0);
	vb_poll(T, 0);
	if (Q1)
		vb_poll(Q1, 0);
	if (Q2)
		vb_poll(Q2, 0);
	vb_poll(S, ms);
}

/* Poll until @g has all it is due (or WAIT_MS). */
static void group_wait(const struct group *g, uint32_t upto)
{
	uint64_t deadline = now_ms() + WAIT_MS;

	while (g->got < upto - g->base) {
		poll_all(1);
		CHECK(now_ms() < deadline,
		      "queue group: %" PRIu64 " of %" PRIu32 " after %d s",
		      g->got, upto - g->base, WAIT_MS / 1000);
	}
}

static void stats(struct vb_conn *c, struct vb_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->sz = sizeof(*st);
	OK(vb_stats(c, st));
}

/* Publish @n messages numbered from *@seq on @subject (@nsubj > 0: on
 * "@subject.K", K the number modulo @nsubj), polling as it goes (a full
 * buffer waits), then wait until each rx has them all. */
static void stream_on(const char *subject, unsigned nsubj, uint32_t *seq,
		      uint32_t n, struct rx *const *rxs, size_t nrx)
{
	char subj[64];
	uint8_t buf[64] = { 0 };
	uint64_t deadline = now_ms() + WAIT_MS;
	uint32_t end = *seq + n, half = *seq + n / 2;
	struct vb_stats st = { .sz = sizeof(st) };
	bool done;
	int rc;

	while (*seq < end) {
		if (pace_until_direct && *seq >= half) {
			OK(vb_stats(S, &st));
			if (st.direct_msgs_in)
				pace_until_direct = false;
			else
				poll_all(1);
		}
		memcpy(buf, seq, sizeof(*seq));
		if (nsubj)
			snprintf(subj, sizeof(subj), "%s.%u", subject,
				 *seq % nsubj);
		else
			snprintf(subj, sizeof(subj), "%s", subject);
		rc = vb_publish(P, subj, buf, sizeof(buf));
		if (rc == VB_OK) {
			(*seq)++;
			if (stream_hook && *seq == hook_at) {
				stream_hook();
				stream_hook = NULL;
			}
			if (*seq % 64 == 0)
				poll_all(0);
			continue;
		}
		CHECK(rc == VB_EAGAIN, "publish: %s", vb_strerror(rc));
		poll_all(1);
		CHECK(now_ms() < deadline, "publishing timed out");
	}
	do {
		poll_all(1);
		done = true;
		for (size_t i = 0; i < nrx; i++)
			done = done && rxs[i]->next == end;
		CHECK(now_ms() < deadline,
		      "timed out waiting for the stream's end");
	} while (!done);
}

static void stream(const char *subject, uint32_t *seq, uint32_t n,
		   struct rx *const *rxs, size_t nrx)
{
	stream_on(subject, 0, seq, n, rxs, nrx);
}

static char prog[] = "vb_libdirect"; /* log lines' prefix */

/* The library's warnings, for direct.sh to look at. */
static void log_line(struct vb_conn *c, enum vb_log_level level,
		     const char *line, void *arg)
{
	(void)c;
	(void)level;
	fprintf(stderr, "%s: %s\n", (const char *)arg, line);
}

static struct vb_conn *conn(const char *url, const char *source,
			    const char *name, unsigned flags)
{
	struct vb_opts o = VB_OPTS_INIT;
	struct vb_conn *c = NULL;

	o.source = source;
	o.name = name;
	o.flags = flags;
	o.log.cb = log_line;
	o.log.arg = prog;
	o.log.level =
		getenv("VERBUS_DIRECT_DEBUG") ? VB_LOG_DEBUG : VB_LOG_WARN;
	o.on_event = conn_event;
	OK(vb_connect(url, &o, &c));
	return c;
}

/* ---- --serve and --publish ------------------------------------------------ */

/* What a --serve subscriber got. */
struct served {
	const char *who; /* for messages */
	uint64_t msgs; /* every message on its pattern */
	struct {
		char subject[64];
		uint64_t last; /* the last "ok <n>" n */
	} seq[SERVE_SUBJECTS]; /* numbered subjects, as they came */
	int nseq; /* entries of @seq */
	uint64_t numbered; /* numbered messages in all */
	bool quit; /* "quit" came */
	uint64_t want; /* its number: numbered messages to wait for */
};

/* The number after "ok " in @m's payload, or 0 if none. */
static uint64_t ok_number(const struct vb_msg *m)
{
	char buf[32];
	size_t n = m->size < sizeof(buf) - 1 ? m->size : sizeof(buf) - 1;

	memcpy(buf, m->data, n);
	buf[n] = '\0';
	if (n < 4 || buf[2] != ' ')
		return 0;
	return strtoull(buf + 3, NULL, 10);
}

static void on_served(struct vb_conn *c, const struct vb_msg *m, void *arg)
{
	struct served *sv = arg;
	uint64_t n;
	int i;

	CHECK(m->size >= 2 && !memcmp(m->data, "ok", 2),
	      "%s: a message on '%.*s' with the payload '%.*s' (%zu bytes): "
	      "not one of ours, injected",
	      sv->who, (int)(m->subject_len > 64 ? 64 : m->subject_len),
	      m->subject, (int)(m->size > 32 ? 32 : m->size),
	      (const char *)m->data, m->size);
	sv->msgs++;
	n = ok_number(m);
	if (!n)
		return;
	for (i = 0; i < sv->nseq; i++)
		if (strlen(sv->seq[i].subject) == m->subject_len &&
		    !memcmp(sv->seq[i].subject, m->subject, m->subject_len))
			break;
	if (i == sv->nseq) {
		CHECK(sv->nseq < SERVE_SUBJECTS &&
			      m->subject_len < sizeof(sv->seq[i].subject),
		      "%s: too many numbered subjects", sv->who);
		memcpy(sv->seq[i].subject, m->subject, m->subject_len);
		sv->seq[i].subject[m->subject_len] = '\0';
		sv->seq[i].last = 0;
		sv->nseq++;
	}
	for (size_t k = strlen("ok ") + 1; k < m->size; k++) {
		const char *d = m->data;

		if (d[k - 1] == ' ') {
			for (; k < m->size; k++)
				CHECK(d[k] == pad_byte(n, k),
				      "%s: %s: message %" PRIu64 " corrupt at "
				      "byte %zu of %zu",
				      sv->who, sv->seq[i].subject, n, k,
				      m->size);
			break;
		}
	}
	CHECK(n == sv->seq[i].last + 1,
	      "%s: %s: message %" PRIu64 " where %" PRIu64 " was due (lost, "
	      "doubled or out of order)",
	      sv->who, sv->seq[i].subject, n, sv->seq[i].last + 1);
	sv->seq[i].last = n;
	sv->numbered++;
	if (m->reply)
		OK(vb_respond(c, m, m->data, m->size));
}

static void on_quit(struct vb_conn *c, const struct vb_msg *m, void *arg)
{
	struct served *sv = arg;
	char buf[32];
	size_t n = m->size < sizeof(buf) - 1 ? m->size : sizeof(buf) - 1;

	(void)c;
	memcpy(buf, m->data, n);
	buf[n] = '\0';
	sv->want = strtoull(buf, NULL, 10);
	sv->quit = true;
}

static int serve(const char *url, const char *source, const char *pattern,
		 unsigned flags)
{
	struct served sv = { .who = flags ? "direct subscriber" :
					    "plain subscriber" };
	struct vb_opts o = VB_OPTS_INIT;
	struct vb_conn *c = NULL;
	struct vb_stats st;
	uint64_t deadline = now_ms() + SERVE_MS, quit_at = 0;
	bool flowing = false;

	o.source = source;
	o.name = sv.who;
	o.log.cb = log_line;
	o.log.arg = prog;
	o.log.level =
		getenv("VERBUS_DIRECT_DEBUG") ? VB_LOG_DEBUG : VB_LOG_WARN;
	OK(vb_connect(url, &o, &c));
	OK(vb_subscribe_flags(c, pattern, NULL, flags, on_served, &sv, NULL));
	OK(vb_subscribe(c, "quit", NULL, on_quit, &sv, NULL));
	OK(vb_flush(c, WAIT_MS));
	printf("ready\n");
	fflush(stdout);
	while (!sv.quit || sv.numbered < sv.want) {
		/* Quit came: the rest has 30 s. */
		if (sv.quit && !quit_at) {
			quit_at = now_ms();
			if (deadline > quit_at + WAIT_MS / 2)
				deadline = quit_at + WAIT_MS / 2;
		}
		CHECK(now_ms() < deadline,
		      "%s: %s within %d s (%" PRIu64 " numbered of %" PRIu64
		      ")",
		      sv.who,
		      sv.quit ? "not every numbered message" : "no quit",
		      sv.quit ? WAIT_MS / 2000 : SERVE_MS / 1000, sv.numbered,
		      sv.want);
		vb_poll(c, 50);
		if (!flowing) {
			stats(c, &st);
			if (st.direct_msgs_in) {
				printf("direct flowing\n");
				fflush(stdout);
				flowing = true;
			}
		}
	}
	stats(c, &st);
	printf("served %" PRIu64 " messages, direct %" PRIu64
	       ", refused %" PRIu64 ", numbered %" PRIu64 ", resent %" PRIu64
	       ", dup %" PRIu64 "\n",
	       sv.msgs, st.direct_msgs_in, st.direct_refused, sv.numbered,
	       st.direct_resent_in, st.direct_resent_dup);
	vb_close(c);
	return 0;
}

static int publish_n(const char *url, const char *source, const char *subject,
		     uint32_t n)
{
	struct vb_opts o = VB_OPTS_INIT;
	struct vb_conn *c = NULL;
	struct vb_stats st;
	uint64_t start = now_ms(), deadline = start + WAIT_MS;
	const char *e = getenv("VERBUS_DIRECT_PAD");
	size_t pad = e ? strtoul(e, NULL, 10) : 0;
	static char buf[PAD_MAX];
	uint32_t i = 1;
	int rc, len;

	o.source = source;
	o.name = "direct publisher";
	o.flags = VB_OPT_DIRECT;
	o.log.cb = log_line;
	o.log.arg = prog;
	o.log.level =
		getenv("VERBUS_DIRECT_DEBUG") ? VB_LOG_DEBUG : VB_LOG_WARN;
	OK(vb_connect(url, &o, &c));
	while (i <= n) {
		CHECK(now_ms() < deadline, "publishing timed out at %" PRIu32,
		      i);
		if (i > (now_ms() - start + 1) * PUB_PER_MS) {
			vb_poll(c, 1); /* ahead of the pace */
			continue;
		}
		len = snprintf(buf, sizeof(buf), "ok %" PRIu32, i);
		if (pad > (size_t)len + 1 && pad <= sizeof(buf)) {
			buf[len++] = ' ';
			for (; (size_t)len < pad; len++)
				buf[len] = pad_byte(i, (size_t)len);
		}
		rc = vb_publish(c, subject, buf, (size_t)len);
		if (rc == VB_EAGAIN) {
			vb_poll(c, 1);
			continue;
		}
		CHECK(rc == VB_OK, "publish %" PRIu32 ": %s", i,
		      vb_strerror(rc));
		if (i % 1000 == 0) {
			printf("published %" PRIu32 "\n", i);
			fflush(stdout);
		}
		if (i % 64 == 0)
			vb_poll(c, 0);
		i++;
	}
	OK(vb_flush(c, WAIT_MS));
	stats(c, &st);
	printf("published %" PRIu32 " messages, direct out %" PRIu64
	       ", failed %" PRIu64 ", gathered %" PRIu64 ", resent %" PRIu64
	       "\n",
	       n, st.direct_msgs_out, st.direct_failed,
	       st.direct_fanout_gathered, st.direct_resent);
	vb_close(c);
	return 0;
}

int main(int argc, char **argv)
{
	struct rx s = { .who = "S (direct)" }, t = { .who = "T (brokered)" };
	struct rx *both[] = { &s, &t }, *tonly[] = { &t };
	struct vb_stats ps, ss, ps2;
	struct vb_sub *sub;
	uint32_t seq = 0, n = 20000;
	uint64_t deadline;

	if (argc == 5 && !strcmp(argv[1], "--serve"))
		return serve(argv[2], argv[3], argv[4], VB_SUB_DIRECT);
	if (argc == 5 && !strcmp(argv[1], "--serve-plain"))
		return serve(argv[2], argv[3], argv[4], 0);
	if (argc == 6 && !strcmp(argv[1], "--publish"))
		return publish_n(argv[2], argv[3], argv[4],
				 (uint32_t)strtoul(argv[5], NULL, 10));
	if (argc != 4) {
		fprintf(stderr,
			"usage: vb_libdirect URL SOURCE-A SOURCE-B\n"
			"       vb_libdirect --serve|--serve-plain URL SOURCE "
			"PATTERN\n"
			"       vb_libdirect --publish URL SOURCE SUBJECT N\n");
		return 2;
	}
	if (getenv("VERBUS_DIRECT_MSGS"))
		n = (uint32_t)strtoul(getenv("VERBUS_DIRECT_MSGS"), NULL, 10);
	P = conn(argv[1], argv[2], "direct-pub", VB_OPT_DIRECT);
	S = conn(argv[1], argv[3], "direct-sub", 0);
	T = conn(argv[1], argv[3], "plain-sub", 0);
	OK(vb_subscribe_flags(S, "dir.>", NULL, VB_SUB_DIRECT, on_msg, &s,
			      &sub));
	OK(vb_subscribe(T, "dir.>", NULL, on_msg, &t, NULL));
	OK(vb_flush(S, WAIT_MS));
	OK(vb_flush(T, WAIT_MS));

	/* switch: brokered first, then direct, nothing lost or doubled. */
	pace_until_direct = true;
	stream("dir.x", &seq, n, both, 2);
	stats(P, &ps);
	stats(S, &ss);
	CHECK(ss.direct_msgs_in > 0 && ss.direct_msgs_in < n,
	      "S got %" PRIu64 " of %" PRIu32 " messages directly: the path "
	      "never opened, or opened before the first publish",
	      ss.direct_msgs_in, n);
	CHECK(ps.direct_msgs_out >= ss.direct_msgs_in,
	      "P wrote %" PRIu64 " directly, S got %" PRIu64,
	      ps.direct_msgs_out, ss.direct_msgs_in);
	/* One direct connection each way: a ring and a staging mirror of
	 * the other's ring at each end, registered once. */
	CHECK(ps.direct_peers == 1 && ss.direct_peers == 1 &&
		      ps.direct_mem > 0 && ps.direct_mem == ss.direct_mem,
	      "direct peers P %" PRIu64 ", S %" PRIu64 "; registered bytes "
	      "P %" PRIu64 ", S %" PRIu64 " (one connection: the same two "
	      "buffers' sizes at each end)",
	      ps.direct_peers, ss.direct_peers, ps.direct_mem, ss.direct_mem);
	printf("PASS: switch: %" PRIu32 " messages to a direct and a brokered "
	       "subscriber, each once and in order; %" PRIu64 " of them "
	       "straight from the publisher (the first %" PRIu64
	       " through the broker while the path opened); %" PRIu64
	       " bytes registered for the direct connection at each end\n",
	       n, ss.direct_msgs_in, (uint64_t)n - ss.direct_msgs_in,
	       ps.direct_mem);

	/* subjects: new subjects while switched on (their paths unknown
	 * until the broker answers: everything brokered meanwhile), one
	 * sequence across them all. */
	stream_on("dir.new", 16, &seq, n, both, 2);
	stats(S, &ps2);
	CHECK(ps2.direct_msgs_in > ss.direct_msgs_in,
	      "no direct delivery on the new subjects");
	printf("PASS: subjects: %" PRIu32 " messages over 16 new subjects, "
	       "each once and in order across them, %" PRIu64 " direct\n",
	       n, ps2.direct_msgs_in - ss.direct_msgs_in);

	/* unsubscribe: P stops writing to S once the broker says so. */
	OK(vb_unsubscribe(sub));
	OK(vb_flush(S, WAIT_MS));
	deadline = now_ms() + WAIT_MS;
	for (;;) {
		stats(P, &ps);
		stream("dir.x", &seq, 100, tonly, 1);
		stats(P, &ps2);
		if (ps2.direct_msgs_out == ps.direct_msgs_out)
			break;
		CHECK(now_ms() < deadline,
		      "P still writes to S %d s after its unsubscribe",
		      WAIT_MS / 1000);
	}
	stream("dir.x", &seq, 1000, tonly, 1);
	stats(P, &ps2);
	CHECK(ps2.direct_msgs_out == ps.direct_msgs_out,
	      "P wrote %" PRIu64 " more directly after S unsubscribed",
	      ps2.direct_msgs_out - ps.direct_msgs_out);
	printf("PASS: unsubscribe: no direct writes after it (%" PRIu64
	       " in all), the brokered subscriber got all %" PRIu32 "\n",
	       ps2.direct_msgs_out, seq);

	/* again: a new direct subscription, a new switch. */
	s.next = seq;
	stats(S, &ss);
	OK(vb_subscribe_flags(S, "dir.*", NULL, VB_SUB_DIRECT, on_msg, &s,
			      &sub));
	OK(vb_flush(S, WAIT_MS));
	stream("dir.x", &seq, n, both, 2);
	stats(S, &ps2);
	CHECK(ps2.direct_msgs_in > ss.direct_msgs_in,
	      "no direct delivery after subscribing again");
	printf("PASS: again: %" PRIu32 " more, each once and in order, %" PRIu64
	       " of them direct\n",
	       n, ps2.direct_msgs_in - ss.direct_msgs_in);

	/* queue: group "w" on dir.q, its members Q1a (direct), Q2
	 * (direct, another process's connection) and Tw (brokered, on T):
	 * P picks one of the direct members per message once switched on
	 * (the broker leaves the group to it), the broker picks while not;
	 * each message reaches the group once, each member's in order, and
	 * S and T's plain subscriptions get every one.  Halfway, Q1b joins
	 * (direct, on Q1's connection: two members behind one path) and
	 * Q2 leaves (after its messages are in: a member that leaves
	 * mid-stream loses what was on its way to it, brokered or direct). */
	{
		struct group g = { .base = seq, .n = n };
		struct member q1a = { .who = "Q1a (direct)", .g = &g };
		struct member q1b = { .who = "Q1b (direct)", .g = &g };
		struct member q2 = { .who = "Q2 (direct)", .g = &g };
		struct member tw = { .who = "Tw (brokered)", .g = &g };
		uint64_t q2_got;

		g.seen = calloc(n, 1);
		CHECK(g.seen, "out of memory");
		Q1 = conn(argv[1], argv[3], "queue-1", 0);
		conn_event = on_q2_event;
		Q2 = conn(argv[1], argv[3], "queue-2", 0);
		conn_event = NULL;
		OK(vb_subscribe_flags(Q1, "dir.q", "w", VB_SUB_DIRECT,
				      on_member, &q1a, NULL));
		OK(vb_subscribe_flags(Q2, "dir.*", "w", VB_SUB_DIRECT,
				      on_member, &q2, &sq2));
		OK(vb_subscribe_flags(T, "dir.q", "w", 0, on_member, &tw,
				      NULL));
		OK(vb_flush(Q1, WAIT_MS));
		OK(vb_flush(Q2, WAIT_MS));
		OK(vb_flush(T, WAIT_MS));
		stream("dir.q", &seq, n / 2, both, 2);
		group_wait(&g, seq);
		CHECK(q1a.direct > 0 && q2.direct > 0,
		      "queue group: direct deliveries Q1a %" PRIu64
		      ", Q2 %" PRIu64 ": P never picked both",
		      q1a.direct, q2.direct);
		printf("PASS: queue: %" PRIu32 " messages to group w, each "
		       "once: Q1a %" PRIu64 " (%" PRIu64 " direct), Q2 %" PRIu64
		       " (%" PRIu64 " direct), Tw %" PRIu64 " (brokered)\n",
		       n / 2, q1a.got, q1a.direct, q2.got, q2.direct, tw.got);
		q1a.direct = q2.direct = 0;
		q1 = &q1b;
		q2_got = q2.got;
		stream_hook = join_and_drain;
		hook_at = seq + (n - n / 2) / 4;
		stream("dir.q", &seq, n - n / 2, both, 2);
		group_wait(&g, seq);
		deadline = now_ms() + WAIT_MS;
		while (q2_drained == -1) {
			poll_all(1);
			CHECK(now_ms() < deadline, "Q2's drain never ended");
		}
		CHECK(q2_drained == VB_OK, "Q2's drain ended with %s",
		      vb_strerror(q2_drained));
		CHECK(q1b.direct > 0,
		      "queue group: Q1b, which joined, got nothing directly");
		printf("PASS: queue: %" PRIu32 " more, Q1b joining and Q2 "
		       "draining (vb_sub_drain) a quarter of the way in, each "
		       "once: Q1a %" PRIu64 " (%" PRIu64
		       " direct), Q1b %" PRIu64 " (%" PRIu64
		       " direct), Q2 %" PRIu64 " during its drain "
		       "(%" PRIu64 " direct), Tw %" PRIu64 " in all\n",
		       n - n / 2, q1a.got, q1a.direct, q1b.got, q1b.direct,
		       q2.got - q2_got, q2.direct, tw.got);
		vb_close(Q1);
		vb_close(Q2);
		Q1 = Q2 = NULL;
		free(g.seen);
	}

	vb_close(P);
	vb_close(S);
	vb_close(T);
	return 0;
}
