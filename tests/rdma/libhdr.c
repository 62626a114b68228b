/*
 * libhdr.c - vb_libhdr: message headers and no-responders, libverbus
 * against a running verbusd (run by tests/rdma/libverbus.sh over rxe, tcp
 * and tls).
 *
 *   vb_libhdr URL SOURCE-A SOURCE-B
 *
 * Two connections, A (publisher, requester) and B (subscriber, responder):
 *   - headers: messages with headers (several, a name twice, an empty
 *     value, a value with spaces and UTF-8, an empty payload) and without,
 *     interleaved, each checked field by field at B; 3,000 more with
 *     headers published in a burst so that most wait in the library's
 *     queue (the queued path), every one arriving in order with its own
 *     headers; a request answered with headers (vb_respond_msg); bad
 *     header names and values refused with VB_EINVAL and nothing sent;
 *   - no responders: a request to a subject nobody subscribes to fails
 *     with VB_ENORESPONDERS long before its timeout (vb_request and
 *     vb_request_async), a publish with a reply subject nobody answers is
 *     told VB_ENORESPONDERS as an event, and a request once a responder
 *     is there is answered.
 * Prints "PASS: ..." lines; exit 0 on success, 1 on the first failure.
 */
#include "vbcheck.h"

#include <verbus/verbus.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BURST 3000

struct events {
	int notices, noresp;
	int last_err;
};

static void on_event(struct vb_conn *c, const struct vb_event *ev, void *arg)
{
	struct events *e = arg;

	(void)c;
	if (ev->type != VB_EV_NOTICE)
		return;
	e->notices++;
	e->last_err = ev->err;
	if (ev->err == VB_ENORESPONDERS)
		e->noresp++;
}

static struct vb_conn *open_conn(const char *url, const char *src,
				 const char *name, struct events *e)
{
	struct vb_opts o = VB_OPTS_INIT;
	struct vb_conn *c;

	o.source = src;
	o.name = name;
	o.on_event = on_event;
	o.event_arg = e;
	OK(vb_connect(url, &o, &c));
	return c;
}

/* The value of header @name (index @idx) of @m as a string, or NULL. */
static char *hval(const struct vb_msg *m, const char *name, size_t idx)
{
	static char buf[256];
	const char *v;
	size_t n;

	if (vb_msg_header(m, name, idx, &v, &n) != VB_OK)
		return NULL;
	CHECK(n < sizeof(buf), "header %s too long", name);
	memcpy(buf, v, n);
	buf[n] = '\0';
	return buf;
}

/* What B checks: messages of the fixed set, then the burst. */
struct rx {
	int fixed; /* fixed messages seen, in order */
	uint64_t burst; /* burst messages seen, in order */
};

static void check_fixed(const struct vb_msg *m, int i)
{
	struct vb_header_field f;
	size_t pos = 0, n = 0;
	char *v;

	switch (i) {
	case 0: /* plain, no headers */
		CHECK(m->headers == NULL && m->headers_len == 0,
		      "msg 0 has headers");
		CHECK(m->size == 5 && !memcmp(m->data, "plain", 5),
		      "msg 0 data");
		CHECK(vb_msg_header(m, "A", 0, (const char **)&v, &n) ==
			      VB_ENOENT,
		      "msg 0: a header found");
		CHECK(vb_msg_header_next(m, &pos, &f) == VB_ENOENT,
		      "msg 0: iteration found a header");
		break;
	case 1: /* four headers */
		CHECK(m->size == 4 && !memcmp(m->data, "data", 4),
		      "msg 1 data: %zu bytes", m->size);
		v = hval(m, "Trace-Id", 0);
		CHECK(v && !strcmp(v, "abc-123"), "msg 1 Trace-Id %s", v);
		v = hval(m, "Dup", 0);
		CHECK(v && !strcmp(v, "first"), "msg 1 Dup[0] %s", v);
		v = hval(m, "Dup", 1);
		CHECK(v && !strcmp(v, "second"), "msg 1 Dup[1] %s", v);
		CHECK(!hval(m, "Dup", 2), "msg 1 Dup[2] exists");
		CHECK(!hval(m, "dup", 0), "msg 1: names matched without case");
		v = hval(m, "Empty", 0);
		CHECK(v && !strcmp(v, ""), "msg 1 Empty '%s'", v);
		v = hval(m, "Text", 0);
		CHECK(v && !strcmp(v, "h\xc3\xa9llo  world"), "msg 1 Text '%s'",
		      v);
		while (vb_msg_header_next(m, &pos, &f) == VB_OK)
			n++;
		CHECK(n == 5, "msg 1: %zu headers iterated", n);
		CHECK(m->headers_len > 12 &&
			      !memcmp(m->headers, "NATS/1.0\r\n", 10),
		      "msg 1: raw block");
		break;
	case 2: /* headers, no data, a reply subject */
		CHECK(m->size == 0, "msg 2 has %zu data bytes", m->size);
		v = hval(m, "K", 0);
		CHECK(v && !strcmp(v, "v"), "msg 2 K %s", v);
		CHECK(m->reply && m->reply_len == 8 &&
			      !memcmp(m->reply, "hdr.back", 8),
		      "msg 2 reply");
		break;
	default:
		die("unexpected fixed message %d", i);
	}
}

static void on_msg(struct vb_conn *c, const struct vb_msg *m, void *arg)
{
	struct rx *rx = arg;
	uint64_t seq;
	char want[32], *v;

	(void)c;
	if (m->subject_len == 9 && !memcmp(m->subject, "hdr.fixed", 9)) {
		check_fixed(m, rx->fixed++);
		return;
	}
	CHECK(m->size == sizeof(seq), "burst data %zu bytes", m->size);
	memcpy(&seq, m->data, sizeof(seq));
	CHECK(seq == rx->burst, "burst message %" PRIu64 " came as %" PRIu64,
	      rx->burst, seq);
	snprintf(want, sizeof(want), "%" PRIu64, seq);
	v = hval(m, "Seq", 0);
	CHECK(v && !strcmp(v, want), "burst %" PRIu64 ": Seq header %s", seq,
	      v ? v : "(none)");
	rx->burst++;
}

static void on_request(struct vb_conn *c, const struct vb_msg *m, void *arg)
{
	const struct vb_header h[] = { { "Status", "ok" },
				       { "Echo-Len", "4" } };
	char *v = hval(m, "Ask", 0);

	(void)arg;
	CHECK(v && !strcmp(v, "why"), "request's Ask header %s", v);
	OK(vb_respond_msg(c, m, h, 2, "pong", 4));
}

static void on_answer(struct vb_conn *c, const struct vb_msg *m, void *arg)
{
	int *answers = arg;
	char *v;

	(void)c;
	CHECK(m->size == 4 && !memcmp(m->data, "pong", 4), "answer data");
	v = hval(m, "Status", 0);
	CHECK(v && !strcmp(v, "ok"), "answer Status %s", v);
	v = hval(m, "Echo-Len", 0);
	CHECK(v && !strcmp(v, "4"), "answer Echo-Len %s", v);
	(*answers)++;
}

static void on_hdr_reply(struct vb_conn *c, const struct vb_msg *m, int err,
			 void *arg)
{
	CHECK(err == VB_OK && m, "vb_request_msg_async: %s", vb_strerror(err));
	on_answer(c, m, arg);
}

static void on_request_plain(struct vb_conn *c, const struct vb_msg *m,
			     void *arg)
{
	(void)arg;
	OK(vb_respond(c, m, "yes", 3));
}

static void wait_until(struct vb_conn *a, struct vb_conn *b, const int *x,
		       int want, const char *what)
{
	uint64_t t0 = now_ms();

	while (*x < want && now_ms() - t0 < 10000) {
		vb_poll(b, 1);
		vb_poll(a, 0);
	}
	CHECK(*x >= want, "%s: %d of %d", what, *x, want);
}

static void case_headers(struct vb_conn *a, struct vb_conn *b)
{
	const struct vb_header h1[] = {
		{ "Trace-Id", "abc-123" },
		{ "Dup", "first" },
		{ "Empty", "" },
		{ "Dup", "second" },
		{ "Text", "h\xc3\xa9llo  world" },
	};
	const struct vb_header h2[] = { { "K", "v" } };
	const struct vb_header bad[] = {
		{ "Bad Name", "v" }, { "", "v" },    { "Ok", "line\r\nbreak" },
		{ "Co:lon", "v" },   { "Nl", "\n" },
	};
	const struct vb_header ask = { "Ask", "why" };
	struct vb_header hs = { "Seq", NULL };
	struct rx rx = { 0 };
	struct vb_stats st = { .sz = sizeof(st) };
	struct vb_msg *reply = NULL;
	struct vb_sub *s;
	uint64_t i, t0, out0;
	int rc, answers = 0;
	char num[32];

	OK(vb_subscribe(b, "hdr.>", NULL, on_msg, &rx, NULL));
	OK(vb_subscribe(b, "ask.hdr", NULL, on_request, NULL, NULL));
	OK(vb_flush(b, 5000));
	OK(vb_publish(a, "hdr.fixed", "plain", 5));
	OK(vb_publish_msg(a, "hdr.fixed", NULL, h1, 5, "data", 4));
	OK(vb_publish_msg(a, "hdr.fixed", "hdr.back", h2, 1, NULL, 0));
	OK(vb_flush(a, 5000));
	wait_until(a, b, &rx.fixed, 3, "fixed messages");
	printf("PASS: headers: a plain message, one with 5 headers (a name "
	       "twice, an empty value, UTF-8), one with a header and no "
	       "data\n");

	OK(vb_stats(a, &st));
	out0 = st.msgs_out;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rc = vb_publish_msg(a, "hdr.bad", NULL, &bad[i], 1, "x", 1);
		CHECK(rc == VB_EINVAL, "bad header %" PRIu64 ": %s", i,
		      vb_strerror(rc));
	}
	CHECK(vb_publish_msg(a, "hdr.bad", NULL, NULL, 1, "x", 1) == VB_EINVAL,
	      "NULL headers with a count");
	OK(vb_stats(a, &st));
	CHECK(st.msgs_out == out0, "a refused header sent something");
	printf("PASS: headers: %zu bad names and values refused "
	       "(VB_EINVAL), nothing sent\n",
	       sizeof(bad) / sizeof(bad[0]));

	/* A burst: most of it waits in the library's queue. */
	t0 = now_ms();
	for (i = 0; i < BURST; i++) {
		snprintf(num, sizeof(num), "%" PRIu64, i);
		hs.value = num;
		while ((rc = vb_publish_msg(a, "hdr.burst", NULL, &hs, 1, &i,
					    sizeof(i))) == VB_EAGAIN) {
			vb_poll(a, 1);
			vb_poll(b, 0);
		}
		OK(rc);
	}
	OK(vb_flush(a, 10000));
	while (rx.burst < BURST && now_ms() - t0 < 20000) {
		vb_poll(b, 1);
		vb_poll(a, 0);
	}
	CHECK(rx.burst == BURST, "burst: %" PRIu64 " of %d", rx.burst, BURST);
	printf("PASS: headers: %d messages with headers in a burst, all in "
	       "order with their own Seq header\n",
	       BURST);

	/* A request with a header, answered with headers. */
	OK(vb_subscribe(a, "ans.hdr", NULL, on_answer, &answers, &s));
	OK(vb_flush(a, 5000));
	OK(vb_publish_msg(a, "ask.hdr", "ans.hdr", &ask, 1, "ping", 4));
	OK(vb_flush(a, 5000));
	wait_until(b, a, &answers, 1, "the answer with headers");
	OK(vb_unsubscribe(s));
	/* The same through the request API (vb_request_msg_async). */
	OK(vb_request_msg_async(a, "ask.hdr", &ask, 1, "ping", 4, 5000,
				on_hdr_reply, &answers));
	wait_until(b, a, &answers, 2, "vb_request_msg_async's answer");
	CHECK(vb_request_msg(a, "ask.hdr", NULL, 1, "x", 1, 100, &reply) ==
		      VB_EINVAL,
	      "vb_request_msg with NULL headers and a count");
	printf("PASS: headers: a request with a header answered with "
	       "headers (vb_respond_msg), by hand and by "
	       "vb_request_msg_async\n");
}

/*
 * A synchronous subscriber that lags: 2,000 messages of 1 KiB with headers
 * queued unpulled, twice its 1 MiB ring, so the library copies
 * the oldest out of the ring (syncsub.c): each one's headers must move
 * with its data.
 */
static void case_sync_lag(struct vb_conn *a, struct vb_conn *b)
{
	static char data[1024];
	struct vb_header hs = { "Seq", NULL };
	struct vb_sub *s;
	struct vb_msg *m;
	uint64_t i, t0, got = 0;
	char num[32], *v;
	int rc;

	OK(vb_subscribe_sync(b, "lag.hdr", NULL, &s));
	OK(vb_flush(b, 5000));
	for (i = 0; i < 2000; i++) {
		snprintf(num, sizeof(num), "%" PRIu64, i);
		hs.value = num;
		memcpy(data, &i, sizeof(i));
		while ((rc = vb_publish_msg(a, "lag.hdr", NULL, &hs, 1, data,
					    sizeof(data))) == VB_EAGAIN) {
			vb_poll(a, 1);
			vb_poll(b, 0);
		}
		OK(rc);
		/* B takes its deliveries (queued, not pulled): no vb_flush()
		 * of A alone, which would leave B unpolled. */
		vb_poll(a, 0);
		vb_poll(b, 0);
	}
	t0 = now_ms();
	while (got < 2000 && now_ms() - t0 < 20000) {
		rc = vb_next_msg(s, 100, &m);
		if (rc == VB_ETIMEDOUT) {
			vb_poll(a, 0);
			continue;
		}
		OK(rc);
		snprintf(num, sizeof(num), "%" PRIu64, got);
		v = hval(m, "Seq", 0);
		CHECK(v && !strcmp(v, num),
		      "lagging sync message %" PRIu64 ": Seq %s", got,
		      v ? v : "(none)");
		memcpy(&i, m->data, sizeof(i));
		CHECK(m->size == sizeof(data) && i == got,
		      "lagging sync message %" PRIu64 ": data", got);
		vb_msg_release(m);
		got++;
	}
	CHECK(got == 2000, "lagging sync subscriber: %" PRIu64 " of 2000", got);
	OK(vb_unsubscribe(s));
	printf("PASS: headers: a synchronous subscriber 2,000 KiB behind (its "
	       "queue copied out of the ring) reads every message's own "
	       "headers\n");
}

static void on_reply(struct vb_conn *c, const struct vb_msg *m, int err,
		     void *arg)
{
	int *got = arg;

	(void)c;
	(void)m;
	*got = err == VB_OK ? 1 : err;
}

static void case_noresp(struct vb_conn *a, struct vb_conn *b, struct events *ea)
{
	struct vb_msg *reply = NULL;
	uint64_t t0, ms;
	int rc, got = 0, n0 = ea->notices;

	t0 = now_ms();
	rc = vb_request(a, "nobody.home", "q", 1, 10000, &reply);
	ms = now_ms() - t0;
	CHECK(rc == VB_ENORESPONDERS && !reply,
	      "request to nobody: %s, expected VB_ENORESPONDERS",
	      vb_strerror(rc));
	CHECK(ms < 5000, "no responders took %" PRIu64 " ms", ms);
	CHECK(ea->notices == n0, "the request's failure came as an event too");
	printf("PASS: no responders: vb_request failed in %" PRIu64
	       " ms (timeout 10000): %s\n",
	       ms, vb_strerror(rc));

	t0 = now_ms();
	OK(vb_request_async(a, "nobody.home", "q", 1, 10000, on_reply, &got));
	while (!got && now_ms() - t0 < 10000)
		vb_poll(a, 10);
	ms = now_ms() - t0;
	CHECK(got == VB_ENORESPONDERS, "async request to nobody: %s",
	      got ? vb_strerror(got) : "nothing");
	CHECK(ms < 5000, "async no responders took %" PRIu64 " ms", ms);
	printf("PASS: no responders: vb_request_async called back in %" PRIu64
	       " ms with VB_ENORESPONDERS\n",
	       ms);

	/* A reply subject of the application's own: an event. */
	OK(vb_publish_reply(a, "nobody.home", "my.own.inbox", "q", 1));
	OK(vb_flush(a, 5000));
	t0 = now_ms();
	while (ea->noresp == 0 && now_ms() - t0 < 5000)
		vb_poll(a, 10);
	CHECK(ea->noresp == 1 && ea->last_err == VB_ENORESPONDERS,
	      "publish with a reply to nobody: %d no-responders events",
	      ea->noresp);
	/* A plain message nobody wants is no one's business. */
	OK(vb_publish(a, "nobody.home", "q", 1));
	OK(vb_flush(a, 5000));
	vb_poll(a, 100);
	CHECK(ea->noresp == 1, "a plain message was told no responders");
	printf("PASS: no responders: a publish with its own reply subject "
	       "told by an event, a plain one not\n");

	/* Once someone answers, the request is answered. */
	OK(vb_subscribe(b, "nobody.home", NULL, on_request_plain, NULL, NULL));
	OK(vb_flush(b, 5000));
	got = 0;
	OK(vb_request_async(a, "nobody.home", "q", 1, 10000, on_reply, &got));
	t0 = now_ms();
	while (!got && now_ms() - t0 < 10000) {
		vb_poll(a, 1);
		vb_poll(b, 1);
	}
	CHECK(got == 1, "request with a responder: %s",
	      got ? vb_strerror(got) : "nothing");
	printf("PASS: no responders: answered once a responder subscribed\n");
}

int main(int argc, char **argv)
{
	struct events ea = { 0 }, eb = { 0 };
	struct vb_conn *a, *b;

	if (argc != 4) {
		fprintf(stderr, "usage: vb_libhdr URL SOURCE-A SOURCE-B\n");
		return 2;
	}
	a = open_conn(argv[1], argv[2], "hdr-a", &ea);
	b = open_conn(argv[1], argv[3], "hdr-b", &eb);
	case_headers(a, b);
	case_sync_lag(a, b);
	case_noresp(a, b, &ea);
	CHECK(eb.notices == 0, "B had %d notices", eb.notices);
	vb_close(a);
	vb_close(b);
	printf("PASS: libhdr\n");
	return 0;
}
