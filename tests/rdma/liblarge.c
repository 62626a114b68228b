/*
 * liblarge.c - vb_liblarge: large messages (vb_opts.max_payload), libverbus
 * against a running verbusd (run by tests/rdma/libverbus.sh over rxe, tcp
 * and tls).
 *
 *   vb_liblarge URL SOURCE-A SOURCE-B
 *
 * Connections: A (publisher, requester) from SOURCE-A; B (a callback
 * subscriber, a responder), C (a synchronous subscriber) and D (a
 * subscriber whose max_payload is 1 MiB) from SOURCE-B, all with the
 * default max_msg (64 KiB), so that anything larger comes as chunks.
 *   - stream: small messages, messages of 1 MiB and 8 MiB (with its
 *     headers: the default max_payload counts them), with and without
 *     headers and reply subjects, one that fills a frame exactly
 *     and one a byte larger, published back to back (the 8 MiB ones
 *     waiting out the pending buffer): B and C get every one, in order,
 *     every byte, header and reply checked; B holds the first 1 MiB one
 *     (vb_msg_hold) and checks it again after all have passed; the
 *     counters (vb_stats large_msgs_out/in, msgs_out/in);
 *   - request: a 1 MiB request answered with 3 MiB and headers, both
 *     through vb_request_async (polling both sides) and vb_request (the
 *     responder in a thread of its own);
 *   - limits: the broker's max_payload + 1 refused (VB_EMSGSIZE) without
 *     a word on the wire; vb_reserve of a large message refused; D told
 *     (VB_EV_NOTICE, VB_EMSGSIZE naming its subscription) of a 2 MiB
 *     message it does not take, the small one after it delivered.
 *
 *   vb_liblarge --aborted URL SOURCE SUBJECT SECS
 *
 * A subscriber to SUBJECT (tests/rdma/tcp-hostile.sh): prints "ready" once
 * subscribed, then waits up to SECS seconds for a large message it was
 * sent part of to be aborted (vb_stats.large_aborted) and, after it, one
 * whole 1 MiB message; any other delivery (a partial one) fails it.
 * Prints "PASS: ..." lines; exit 0 on success, 1 on the first failure.
 */
#include "vbcheck.h"

#include <verbus/verbus.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIB (1u << 20)
#define WAIT_MS 60000

/* Byte @i of message @seq's data: changes with both, and every 2 KiB. */
static uint8_t byte_at(uint32_t seq, size_t i)
{
	return (uint8_t)(seq * 131u + i * 7u + (i >> 11));
}

static void *make_data(uint32_t seq, size_t n)
{
	uint8_t *p = malloc(n ? n : 1);
	size_t i;

	CHECK(p, "out of memory");
	for (i = 0; i < n; i++)
		p[i] = byte_at(seq, i);
	return p;
}

/* Check @m's data against message @seq's, every byte. */
static void check_data(const struct vb_msg *m, uint32_t seq, size_t n,
		       const char *who)
{
	const uint8_t *p = m->data;
	size_t i;

	CHECK(m->size == n, "%s: message %" PRIu32 ": %zu bytes, want %zu", who,
	      seq, m->size, n);
	for (i = 0; i < n; i++)
		CHECK(p[i] == byte_at(seq, i),
		      "%s: message %" PRIu32 ": byte %zu is %u, want %u", who,
		      seq, i, p[i], byte_at(seq, i));
}

/* The @idx-th value of @m's header @name, as a string (static), or NULL. */
static const char *hval(const struct vb_msg *m, const char *name)
{
	static char buf[128];
	const char *v;
	size_t n;

	if (vb_msg_header(m, name, 0, &v, &n) != VB_OK || n >= sizeof(buf))
		return NULL;
	memcpy(buf, v, n);
	buf[n] = '\0';
	return buf;
}

/* What each connection's events saw. */
struct events {
	int notices; /* VB_EV_NOTICE */
	int too_big; /* of them VB_EMSGSIZE naming a subscription */
	int slow; /* VB_EV_SLOW_CONSUMER */
	char detail[256]; /* the last notice's */
};

static void on_event(struct vb_conn *c, const struct vb_event *ev, void *arg)
{
	struct events *e = arg;

	(void)c;
	if (ev->type == VB_EV_SLOW_CONSUMER)
		e->slow++;
	if (ev->type != VB_EV_NOTICE)
		return;
	e->notices++;
	if (ev->err == VB_EMSGSIZE && ev->sub)
		e->too_big++;
	snprintf(e->detail, sizeof(e->detail), "%s", ev->detail);
}

static struct vb_conn *open_conn(const char *url, const char *src,
				 const char *name, uint32_t max_payload,
				 struct events *e)
{
	struct vb_opts o = VB_OPTS_INIT;
	struct vb_conn *c;

	o.source = src;
	o.name = name;
	o.on_event = on_event;
	o.event_arg = e;
	o.max_payload = max_payload;
	OK(vb_connect(url, &o, &c));
	return c;
}

/* ---- stream ------------------------------------------------------------- */

/* The messages, in the order published. */
struct spec {
	size_t size;
	bool hdrs;
	bool reply;
};

#define SUBJECT "large.data"
/* Subject + data exactly a 64 KiB frame, and a byte more. */
#define FRAME_FULL ((64u << 10) - (sizeof(SUBJECT) - 1))

static const struct spec specs[] = {
	{ 100, false, false },
	{ MIB, false, false },
	{ 10, false, true },
	{ MIB, true, false },
	/* 8 MiB with its headers: the default max_payload counts them. */
	{ 8 * MIB, false, false },
	{ 8 * MIB - 64, true, true },
	{ FRAME_FULL, false, false },
	{ FRAME_FULL + 1, false, false },
	{ 3 * MIB + 5, true, false },
	{ 0, false, false },
};
#define NSPECS (sizeof(specs) / sizeof(specs[0]))

/* Whether message @i goes as a stream (with the default 64 KiB frames:
 * those with headers are all larger than one). */
static bool is_large(size_t i)
{
	return specs[i].size > FRAME_FULL;
}

/* One receiver's view. */
struct rx {
	const char *who;
	uint32_t next; /* the next message expected */
	struct vb_msg *held; /* B: message 1, kept */
};

static void check_msg(struct rx *rx, const struct vb_msg *m)
{
	uint32_t i = rx->next;
	const struct spec *sp = &specs[i];
	char want[16];
	const char *v;

	CHECK(i < NSPECS, "%s: message %" PRIu32 " of %zu", rx->who, i, NSPECS);
	CHECK(m->subject_len == sizeof(SUBJECT) - 1 &&
		      !memcmp(m->subject, SUBJECT, m->subject_len),
	      "%s: message %" PRIu32 ": subject %.*s", rx->who, i,
	      (int)m->subject_len, m->subject);
	check_data(m, i, sp->size, rx->who);
	if (sp->reply)
		CHECK(m->reply && m->reply_len == 10 &&
			      !memcmp(m->reply, "large.back", 10),
		      "%s: message %" PRIu32 ": reply", rx->who, i);
	else
		CHECK(!m->reply, "%s: message %" PRIu32 ": a reply", rx->who,
		      i);
	if (sp->hdrs) {
		snprintf(want, sizeof(want), "%" PRIu32, i);
		v = hval(m, "Seq");
		CHECK(v && !strcmp(v, want), "%s: message %" PRIu32 ": Seq %s",
		      rx->who, i, v ? v : "(none)");
		v = hval(m, "Kind");
		CHECK(v && !strcmp(v, "large"), "%s: message %" PRIu32 ": Kind",
		      rx->who, i);
	} else {
		CHECK(!m->headers, "%s: message %" PRIu32 ": headers", rx->who,
		      i);
	}
	rx->next++;
}

static void on_stream(struct vb_conn *c, const struct vb_msg *m, void *arg)
{
	struct rx *rx = arg;

	(void)c;
	if (rx->next == 1)
		OK(vb_msg_hold(m, &rx->held));
	check_msg(rx, m);
}

/* Pull what C has queued, without waiting. */
static void pull(struct vb_sub *sc, struct rx *rc)
{
	struct vb_msg *m;

	while (vb_next_msg(sc, 0, &m) == VB_OK) {
		check_msg(rc, m);
		vb_msg_release(m);
	}
}

/* Publish message @i from A, keeping B and C going through backpressure. */
static void publish(struct vb_conn *a, struct vb_conn *b, struct vb_sub *sc,
		    struct rx *rc, uint32_t i)
{
	char seq[16];
	struct vb_header h[2] = { { "Seq", seq }, { "Kind", "large" } };
	void *data = make_data(i, specs[i].size);
	uint64_t t0 = now_ms();
	int err;

	snprintf(seq, sizeof(seq), "%" PRIu32, i);
	for (;;) {
		err = vb_publish_msg(
			a, SUBJECT, specs[i].reply ? "large.back" : NULL, h,
			specs[i].hdrs ? 2 : 0, data, specs[i].size);
		if (err != VB_EAGAIN)
			break;
		CHECK(now_ms() - t0 < WAIT_MS,
		      "message %" PRIu32 ": still "
		      "VB_EAGAIN",
		      i);
		vb_poll(a, 1);
		vb_poll(b, 0);
		pull(sc, rc);
	}
	OK(err);
	free(data);
}

static void case_stream(struct vb_conn *a, struct vb_conn *b, struct vb_conn *c)
{
	struct rx rb = { .who = "callback" }, rc = { .who = "sync" };
	struct vb_stats sa0 = { .sz = sizeof(sa0) }, sa = { .sz = sizeof(sa) };
	struct vb_stats sb = { .sz = sizeof(sb) }, sc0 = { .sz = sizeof(sc0) };
	struct vb_stats sc1 = { .sz = sizeof(sc1) };
	struct vb_sub *subb, *subc;
	uint64_t t0, nlarge = 0, bytes = 0;
	uint32_t i;

	OK(vb_subscribe(b, SUBJECT, NULL, on_stream, &rb, &subb));
	OK(vb_subscribe_sync(c, SUBJECT, NULL, &subc));
	OK(vb_flush(b, 5000));
	OK(vb_flush(c, 5000));
	OK(vb_stats(a, &sa0));
	CHECK(sa0.max_msg >= 64u << 10, "the broker's max_msg %" PRIu64,
	      sa0.max_msg);
	CHECK(sa0.max_payload >= 8 * MIB,
	      "the broker's max_payload %" PRIu64 ": below the 8 MiB default",
	      sa0.max_payload);
	OK(vb_stats(c, &sc0));
	t0 = now_ms();
	for (i = 0; i < NSPECS; i++) {
		publish(a, b, subc, &rc, i);
		nlarge += is_large(i);
		bytes += specs[i].size;
	}
	while ((rb.next < NSPECS || rc.next < NSPECS) &&
	       now_ms() - t0 < WAIT_MS) {
		vb_poll(a, 0);
		vb_poll(b, 1);
		pull(subc, &rc);
	}
	CHECK(rb.next == NSPECS && rc.next == NSPECS,
	      "stream: callback got %" PRIu32 ", sync %" PRIu32 " of %zu",
	      rb.next, rc.next, NSPECS);
	/* The one held from the start, intact after 40 MiB passed. */
	CHECK(rb.held, "nothing held");
	check_data(rb.held, 1, MIB, "held");
	vb_msg_release(rb.held);
	OK(vb_stats(a, &sa));
	CHECK(sa.large_msgs_out - sa0.large_msgs_out == nlarge,
	      "large_msgs_out %" PRIu64 ", want %" PRIu64,
	      sa.large_msgs_out - sa0.large_msgs_out, nlarge);
	CHECK(sa.msgs_out - sa0.msgs_out == NSPECS, "msgs_out %" PRIu64,
	      sa.msgs_out - sa0.msgs_out);
	OK(vb_stats(c, &sc1));
	CHECK(sc1.large_msgs_in - sc0.large_msgs_in == nlarge,
	      "sync: large_msgs_in %" PRIu64 ", want %" PRIu64,
	      sc1.large_msgs_in - sc0.large_msgs_in, nlarge);
	CHECK(sc1.msgs_in - sc0.msgs_in == NSPECS, "sync: msgs_in %" PRIu64,
	      sc1.msgs_in - sc0.msgs_in);
	CHECK(sc1.large_aborted == 0 && sc1.large_dropped == 0 &&
		      sc1.bad_msgs == 0,
	      "sync: %" PRIu64 " aborted, %" PRIu64 " dropped, %" PRIu64 " bad",
	      sc1.large_aborted, sc1.large_dropped, sc1.bad_msgs);
	OK(vb_stats(b, &sb));
	CHECK(sb.large_msgs_in == nlarge && sb.large_dropped == 0,
	      "callback: large_msgs_in %" PRIu64 ", dropped %" PRIu64,
	      sb.large_msgs_in, sb.large_dropped);
	printf("PASS: stream: %zu messages (%" PRIu64 " large, up to 8 MiB, "
	       "with and without headers and replies; %" PRIu64
	       " bytes) to a callback and a synchronous subscriber, every "
	       "byte, in order, in %" PRIu64 " ms; one held throughout\n",
	       NSPECS, nlarge, bytes, now_ms() - t0);
	OK(vb_unsubscribe(subb));
	OK(vb_unsubscribe(subc));
}

/* ---- request ------------------------------------------------------------ */

#define ASK_SIZE (MIB + 1)
#define ANSWER_SIZE (3 * MIB)

static void on_ask(struct vb_conn *c, const struct vb_msg *m, void *arg)
{
	const struct vb_header h = { "Answer", "big" };
	void *data = make_data(77, ANSWER_SIZE);
	int *asked = arg;

	check_data(m, 76, ASK_SIZE, "request");
	OK(vb_respond_msg(c, m, &h, 1, data, ANSWER_SIZE));
	free(data);
	(*asked)++;
}

static void check_answer(const struct vb_msg *m)
{
	const char *v = hval(m, "Answer");

	check_data(m, 77, ANSWER_SIZE, "reply");
	CHECK(v && !strcmp(v, "big"), "reply: Answer header %s",
	      v ? v : "(none)");
}

static void on_answer(struct vb_conn *c, const struct vb_msg *m, int err,
		      void *arg)
{
	int *answers = arg;

	(void)c;
	CHECK(err == VB_OK && m, "vb_request_async: %s", vb_strerror(err));
	check_answer(m);
	(*answers)++;
}

static void *run_conn(void *arg)
{
	int rc = vb_run(arg);

	if (rc != VB_OK)
		die("vb_run: %s", vb_strerror(rc));
	return NULL;
}

static void case_request(struct vb_conn *a, struct vb_conn *b)
{
	void *ask = make_data(76, ASK_SIZE);
	struct vb_msg *reply = NULL;
	pthread_t responder;
	int asked = 0, answers = 0;
	uint64_t t0;

	OK(vb_subscribe(b, "large.ask", NULL, on_ask, &asked, NULL));
	OK(vb_flush(b, 5000));
	OK(vb_request_async(a, "large.ask", ask, ASK_SIZE, 20000, on_answer,
			    &answers));
	t0 = now_ms();
	while (answers < 1 && now_ms() - t0 < WAIT_MS) {
		vb_poll(a, 1);
		vb_poll(b, 0);
	}
	CHECK(answers == 1 && asked == 1,
	      "async request: %d asked, %d "
	      "answered",
	      asked, answers);
	/* Blocking: the responder in a thread of its own meanwhile. */
	CHECK(!pthread_create(&responder, NULL, run_conn, b), "pthread");
	OK(vb_request(a, "large.ask", ask, ASK_SIZE, 20000, &reply));
	vb_stop(b);
	pthread_join(responder, NULL);
	check_answer(reply);
	vb_msg_release(reply);
	free(ask);
	printf("PASS: request: 1 MiB asked, 3 MiB with a header answered, "
	       "vb_request_async and vb_request\n");
}

/* ---- limits ------------------------------------------------------------- */

static void on_small(struct vb_conn *c, const struct vb_msg *m, void *arg)
{
	int *got = arg;

	(void)c;
	CHECK(m->size == 5 && !memcmp(m->data, "small", 5),
	      "limits: D got %zu bytes", m->size);
	(*got)++;
}

static void case_limits(struct vb_conn *a, struct vb_conn *d, struct events *ed)
{
	struct vb_stats st = { .sz = sizeof(st) }, st1 = { .sz = sizeof(st) };
	void *data, *buf;
	size_t max;
	int got = 0;
	uint64_t t0;

	OK(vb_stats(a, &st));
	max = st.max_payload;
	data = make_data(5, max + 1);
	IS(vb_publish(a, "large.none", data, max + 1), VB_EMSGSIZE);
	IS(vb_reserve(a, "large.none", NULL, MIB, &buf), VB_EMSGSIZE);
	OK(vb_stats(a, &st1));
	CHECK(st1.msgs_out == st.msgs_out && st1.pending_msgs == 0,
	      "a refused message went out or waits");

	OK(vb_subscribe(d, "large.d", NULL, on_small, &got, NULL));
	OK(vb_flush(d, 5000));
	OK(vb_publish(a, "large.d", data, 2 * MIB));
	OK(vb_publish(a, "large.d", "small", 5));
	t0 = now_ms();
	while ((got < 1 || ed->too_big < 1) && now_ms() - t0 < WAIT_MS) {
		vb_poll(a, 0);
		vb_poll(d, 1);
	}
	CHECK(got == 1, "limits: D got %d small messages", got);
	CHECK(ed->too_big == 1,
	      "limits: D heard %d times that a message was "
	      "too large (%s)",
	      ed->too_big, ed->detail);
	free(data);
	printf("PASS: limits: %zu bytes + 1 refused (VB_EMSGSIZE), and a "
	       "large vb_reserve; a subscriber with max_payload 1 MiB told of "
	       "a 2 MiB message (\"%s\"), the next one delivered\n",
	       max, ed->detail);
}

static void on_four(struct vb_conn *c, const struct vb_msg *m, void *arg)
{
	int *n = arg;

	(void)c;
	CHECK(m->size == 4 * MIB, "autounsub: a message of %zu bytes", m->size);
	(*n)++;
}

/*
 * Auto-unsubscribe after 2: two large messages from two publishers at
 * once (their chunks interleave at B) are both delivered, as the broker
 * counts them at their first chunks, and a third is not.
 */
static void case_autounsub(struct vb_conn *a, struct vb_conn *b,
			   struct vb_conn *c)
{
	void *data = make_data(9, 4 * MIB);
	struct vb_sub *s;
	uint64_t t0, done = 0;
	int got = 0;

	OK(vb_subscribe(b, "large.auto", NULL, on_four, &got, &s));
	OK(vb_sub_autounsubscribe(s, 2));
	OK(vb_flush(b, 5000));
	OK(vb_publish(a, "large.auto", data, 4 * MIB));
	OK(vb_publish(c, "large.auto", data, 4 * MIB));
	t0 = now_ms();
	/* Until both came, then half a second more for a third. */
	while (now_ms() - t0 < WAIT_MS && (!done || now_ms() - done < 500)) {
		if (got == 2 && !done) {
			done = now_ms();
			OK(vb_publish(a, "large.auto", data, 4 * MIB));
		}
		vb_poll(a, 0);
		vb_poll(c, 0);
		vb_poll(b, 1);
	}
	CHECK(got == 2, "autounsub: %d of 2 large messages delivered", got);
	free(data);
	printf("PASS: autounsub: a subscription ending after 2 got both "
	       "large messages of two publishers at once, not the third\n");
}

static void on_whole(struct vb_conn *c, const struct vb_msg *m, void *arg)
{
	int *n = arg;

	(void)c;
	CHECK(m->size == MIB, "aborted: a message of %zu bytes delivered",
	      m->size);
	(*n)++;
}

/* The --aborted mode (see the top). */
static int run_aborted(const char *url, const char *src, const char *subject,
		       int secs)
{
	struct vb_stats st = { .sz = sizeof(st) };
	struct events e = { 0 };
	uint64_t deadline = now_ms() + (uint64_t)secs * 1000;
	struct vb_conn *c = open_conn(url, src, "large-aborted", 0, &e);
	int whole = 0;

	OK(vb_subscribe(c, subject, NULL, on_whole, &whole, NULL));
	OK(vb_flush(c, WAIT_MS));
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		OK(vb_stats(c, &st));
		if (st.large_aborted >= 1 && whole >= 1)
			break;
		CHECK(now_ms() < deadline,
		      "aborted: after %d s, %" PRIu64 " aborted, %d whole",
		      secs, st.large_aborted, whole);
		CHECK(whole == 0 || st.large_aborted >= 1,
		      "aborted: the whole message came before the abort");
		vb_poll(c, 100);
	}
	printf("PASS: aborted: the large message cut short was dropped "
	       "(%" PRIu64 " aborted), the next one delivered whole\n",
	       st.large_aborted);
	vb_close(c);
	return 0;
}

int main(int argc, char **argv)
{
	struct events ea = { 0 }, eb = { 0 }, ec = { 0 }, ed = { 0 };
	struct vb_conn *a, *b, *c, *d;

	if (argc == 6 && strcmp(argv[1], "--aborted") == 0)
		return run_aborted(argv[2], argv[3], argv[4], atoi(argv[5]));
	if (argc != 4) {
		fprintf(stderr,
			"usage: vb_liblarge URL SOURCE-A SOURCE-B\n"
			"       vb_liblarge --aborted URL SOURCE SUBJECT "
			"SECS\n");
		return 2;
	}
	a = open_conn(argv[1], argv[2], "large-a", 0, &ea);
	b = open_conn(argv[1], argv[3], "large-b", 0, &eb);
	c = open_conn(argv[1], argv[3], "large-c", 0, &ec);
	case_stream(a, b, c);
	case_request(a, b);
	case_autounsub(a, b, c);
	d = open_conn(argv[1], argv[3], "large-d", MIB, &ed);
	case_limits(a, d, &ed);
	CHECK(ea.notices == 0 && eb.notices == 0 && ec.notices == 0,
	      "notices: %d %d %d (%s %s %s)", ea.notices, eb.notices,
	      ec.notices, ea.detail, eb.detail, ec.detail);
	CHECK(eb.slow == 0 && ec.slow == 0, "slow consumer events");
	vb_close(d);
	vb_close(c);
	vb_close(b);
	vb_close(a);
	printf("PASS: large messages\n");
	return 0;
}
