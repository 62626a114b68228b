/*
 * libtest.c - vb_libtest, libverbus against a running verbusd.
 *
 *   vb_libtest CASE URL SOURCE-A SOURCE-B
 *
 * Two connections, A and B, from two hosts.  Cases:
 *   api        publish/subscribe verified message by message, reply
 *              subjects, zero-copy reserve/commit, held messages,
 *              request/reply and a request timeout, auto-unsubscribe,
 *              unsubscribe, queue groups, refused input, vb_fd() in an
 *              epoll loop, the pending buffer and VB_EV_WRITABLE.
 *   reconnect  traffic, then "KILL-BROKER" on stdout: the driver kills
 *              verbusd with SIGKILL and restarts it; both connections must
 *              report the loss, reconnect, re-subscribe and carry traffic
 *              again, with no new memory registration.
 *   threads    a VB_OPT_LOCKED connection published on by 4 threads while
 *              the main thread polls it; every message arrives once.
 *   auth       against a broker configured by tests/rdma/auth.sh: bad or
 *              missing credentials refused (VB_EACCES), a user and a token
 *              admitted, a denied subscription and a denied publish
 *              reported as VB_EV_NOTICE, allowed traffic flowing, a
 *              denied request failing at once with VB_EACCES.
 *   tls        URL is a tls:// broker (tests/rdma/tls.sh), SOURCE-A the
 *              CA file that verifies it: vb_opts.tls_* with a tcp:// URL
 *              refused (VB_EINVAL), tls_server_name checked against the
 *              broker's certificate (VB_EACCES, with the reason in the
 *              VB_EV_CLOSED the failed vb_connect() reports).
 *   failover   URL is a list of two brokers A,B (tests/rdma/failover.sh):
 *              a subscriber and a publisher on A; "KILL-BROKER": the
 *              driver kills A; the subscriber must be on B with its
 *              subscriptions in force ("resubscribed at" a wall-clock
 *              time the driver compares with the kill), the publisher's
 *              messages published while it had no broker are buffered
 *              and reach it through B; then "RESTART-A-KILL-B": both go
 *              back to A (round robin).  Server URLs, failovers and
 *              reconnects checked in vb_conn_server_url() and vb_stats.
 * Prints "PASS: ..." lines; exit 0 on success, 1 on the first failure.
 */
#include "vbcheck.h"

#include <verbus/verbus.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

static const char *url, *src_a, *src_b;

/* What a connection's event callback saw. */
struct events {
	int connected, disconnected, reconnected, closed, writable, notices;
	int last_notice_err;
	uint64_t t_disconnected, t_reconnected;
	char server[300]; /* the detail of the last (re)connected event */
};

static void on_event(struct vb_conn *c, const struct vb_event *ev, void *arg)
{
	struct events *e = arg;

	(void)c;
	switch (ev->type) {
	case VB_EV_CONNECTED:
		e->connected++;
		snprintf(e->server, sizeof(e->server), "%s", ev->detail);
		break;
	case VB_EV_DISCONNECTED:
		e->disconnected++;
		e->t_disconnected = now_ms();
		printf("event: disconnected: %s (%s)\n", ev->detail,
		       vb_strerror(ev->err));
		break;
	case VB_EV_RECONNECTED: {
		struct timespec rt;

		e->reconnected++;
		e->t_reconnected = now_ms();
		snprintf(e->server, sizeof(e->server), "%s", ev->detail);
		clock_gettime(CLOCK_REALTIME, &rt);
		/* The driver compares this with when the broker came back. */
		printf("event: reconnected at %lld.%03ld\n",
		       (long long)rt.tv_sec, rt.tv_nsec / 1000000);
		break;
	}
	case VB_EV_CLOSED:
		e->closed++;
		break;
	case VB_EV_WRITABLE:
		e->writable++;
		break;
	case VB_EV_NOTICE:
		e->notices++;
		e->last_notice_err = ev->err;
		printf("event: notice: %s (%s)\n", ev->detail,
		       vb_strerror(ev->err));
		break;
	case VB_EV_LAME_DUCK:
		printf("event: lame duck: %s\n", ev->detail);
		break;
	case VB_EV_DROPPED:
	case VB_EV_DRAINED:
	case VB_EV_SLOW_CONSUMER:
		break;
	}
}

static int try_conn(const char *src, const char *user, const char *pw,
		    const char *token, struct events *e, struct vb_conn **c)
{
	struct vb_opts o = VB_OPTS_INIT;

	o.name = "auth";
	o.source = src;
	o.user = user;
	o.password = pw;
	o.token = token;
	o.on_event = on_event;
	o.event_arg = e;
	return vb_connect(url, &o, c);
}

static struct vb_conn *open_conn(const char *name, const char *src,
				 struct events *e, unsigned flags, int spin_us)
{
	struct vb_opts o = VB_OPTS_INIT;
	struct vb_conn *c;

	o.name = name;
	o.spin_us = spin_us;
	o.source = src;
	o.flags = flags;
	o.on_event = on_event;
	o.event_arg = e;
	o.reconnect_wait_ms = 20;
	o.reconnect_wait_max_ms = 200;
	o.reconnect_jitter_ms = 20;
	OK(vb_connect(url, &o, &c));
	return c;
}

/* A subscriber that checks each message is "<subject>#<n>" with n = 1, 2,
 * ... in order. */
struct seq_sub {
	uint64_t got;
	uint64_t bad;
	bool expect_reply;
};

static void on_seq(struct vb_conn *c, const struct vb_msg *m, void *arg)
{
	struct seq_sub *s = arg;
	char want[128];
	int n;

	(void)c;
	n = snprintf(want, sizeof(want), "%.*s#%" PRIu64, (int)m->subject_len,
		     m->subject, s->got + 1);
	if ((size_t)n != m->size || memcmp(want, m->data, m->size) != 0 ||
	    (s->expect_reply && (!m->reply || m->reply_len != 8 ||
				 memcmp(m->reply, "answer.x", 8) != 0))) {
		if (s->bad++ < 5)
			fprintf(stderr, "bad message %.*s: \"%.*s\", want %s\n",
				(int)m->subject_len, m->subject, (int)m->size,
				(const char *)m->data, want);
	}
	s->got++;
}

/* Publish on @c, keeping the receiving side @peer polled meanwhile (one
 * thread drives both: a subscriber left alone is a slow consumer). */
static void publish_seq(struct vb_conn *c, struct vb_conn *peer,
			const char *subject, uint64_t from, uint64_t to,
			const char *reply)
{
	char buf[128];
	int n, rc;

	for (uint64_t i = from; i <= to; i++) {
		n = snprintf(buf, sizeof(buf), "%s#%" PRIu64, subject, i);
		while ((rc = vb_publish_reply(c, subject, reply, buf,
					      (size_t)n)) == VB_EAGAIN) {
			vb_poll(c, 1);
			vb_poll(peer, 0);
		}
		OK(rc);
		if (i % 64 == 0) {
			vb_poll(c, 0);
			vb_poll(peer, 0);
		}
	}
}

/* Poll both until @got reaches @want, or fail after @ms. */
static void pump_until(struct vb_conn *a, struct vb_conn *b,
		       const uint64_t *got, uint64_t want, int ms,
		       const char *what)
{
	uint64_t end = now_ms() + (uint64_t)ms;

	while (*got < want) {
		CHECK(now_ms() < end, "%s: %" PRIu64 " of %" PRIu64 " arrived",
		      what, *got, want);
		vb_poll(a, 0);
		vb_poll(b, 1);
	}
}

static void on_count(struct vb_conn *c, const struct vb_msg *m, void *arg)
{
	(void)c;
	(void)m;
	(*(uint64_t *)arg)++;
}

/* Responder: answers "ping N" with "pong N". */
static void on_request(struct vb_conn *c, const struct vb_msg *m, void *arg)
{
	char buf[64];
	int n;

	(void)arg;
	n = snprintf(buf, sizeof(buf), "pong %.*s", (int)m->size,
		     (const char *)m->data);
	OK(vb_respond(c, m, buf, (size_t)n));
}

static void *run_conn(void *arg)
{
	int rc = vb_run(arg);

	if (rc)
		die("vb_run: %s", vb_strerror(rc));
	return NULL;
}

struct holder {
	struct vb_msg *kept[10];
	int n;
};

static void on_hold(struct vb_conn *c, const struct vb_msg *m, void *arg)
{
	struct holder *h = arg;

	(void)c;
	if (h->n < 10)
		OK(vb_msg_hold(m, &h->kept[h->n++]));
}

static void case_api(void)
{
	struct events ea = { 0 }, eb = { 0 };
	struct vb_conn *a = open_conn("lib-a", src_a, &ea, 0, 100);
	struct vb_conn *b = open_conn("lib-b", src_b, &eb, 0, 100);
	struct seq_sub s1 = { 0 }, s2 = { .expect_reply = true };
	struct vb_sub *sub, *q1, *q2;
	struct holder h = { 0 };
	struct vb_msg *reply;
	struct vb_stats st = { .sz = sizeof(st) };
	uint64_t n_auto = 0, n_q1 = 0, n_q2 = 0, n_gone = 0, n_silent = 0;
	uint64_t t0;
	void *buf;
	int rc;

	CHECK(vb_is_connected(a) && vb_is_connected(b), "not connected");
	/* Refused input, before anything is sent. */
	CHECK(vb_publish(a, "bad..subject", "x", 1) == VB_EINVAL, "bad subj");
	CHECK(vb_publish(a, "wild.*", "x", 1) == VB_EINVAL, "wildcard pub");
	CHECK(vb_subscribe(a, "a.>.b", NULL, on_count, &n_gone, NULL) ==
		      VB_EINVAL,
	      "bad pattern");
	CHECK(vb_subscribe(a, "a.b", "bad queue", on_count, &n_gone, NULL) ==
		      VB_EINVAL,
	      "bad queue");
	OK(vb_stats(a, &st));
	CHECK(st.max_msg >= 1024, "broker's max message %" PRIu64, st.max_msg);
	CHECK(st.max_payload > st.max_msg, "broker's max payload %" PRIu64,
	      st.max_payload);
	{
		/* The largest message is max_payload bytes of data (above
		 * max_msg: as a stream of chunks, vb_liblarge); the largest
		 * frame, what vb_reserve() can give. */
		size_t big = st.max_payload + 1;
		char *p = calloc(1, big);
		void *r;

		CHECK(p && vb_publish(a, "big.x", p, big) == VB_EMSGSIZE,
		      "a message over the broker's limit accepted");
		CHECK(vb_reserve(a, "big.x", NULL,
				 st.max_msg - strlen("big.x") + 1,
				 &r) == VB_EMSGSIZE,
		      "a reservation over the broker's frame accepted");
		CHECK(vb_publish(a, "big.x", p, st.max_msg - strlen("big.x")) ==
			      VB_OK,
		      "a message at the broker's frame refused");
		free(p);
	}
	printf("PASS: bad subjects, patterns and queues refused; the "
	       "broker's limits (%" PRIu64 " bytes a message, %" PRIu64
	       " a frame) enforced at publish\n",
	       st.max_payload, st.max_msg);

	/* 1. Ordered, verified delivery A -> B, with and without reply. */
	OK(vb_subscribe(b, "seq.one", NULL, on_seq, &s1, NULL));
	OK(vb_subscribe(b, "seq.two", NULL, on_seq, &s2, NULL));
	OK(vb_flush(b, 5000));
	publish_seq(a, b, "seq.one", 1, 20000, NULL);
	publish_seq(a, b, "seq.two", 1, 500, "answer.x");
	pump_until(a, b, &s1.got, 20000, 20000, "seq.one");
	pump_until(a, b, &s2.got, 500, 5000, "seq.two");
	CHECK(s1.bad == 0 && s2.bad == 0, "%" PRIu64 " bad messages",
	      s1.bad + s2.bad);
	printf("PASS: 20500 messages in order, reply subjects intact\n");

	/* 2. Zero copy: reserve, fill, commit. */
	for (int i = 1; i <= 100; i++) {
		char want[32];
		int n = snprintf(want, sizeof(want), "seq.one#%d", 20000 + i);

		while ((rc = vb_reserve(a, "seq.one", NULL, (size_t)n, &buf)) ==
		       VB_EAGAIN)
			vb_poll(a, 10);
		OK(rc);
		CHECK(vb_publish(a, "seq.one", "x", 1) == VB_ESTATE,
		      "publish during a reservation");
		memcpy(buf, want, (size_t)n);
		OK(vb_commit(a));
	}
	pump_until(a, b, &s1.got, 20100, 5000, "reserved");
	CHECK(s1.bad == 0, "reserved messages corrupt");
	printf("PASS: 100 zero-copy reserve/commit messages\n");

	/* 3. Held messages stay valid after their callback. */
	OK(vb_subscribe(b, "hold.it", NULL, on_hold, &h, &sub));
	OK(vb_flush(b, 5000));
	for (int i = 0; i < 10; i++) {
		char msg[16];
		int n = snprintf(msg, sizeof(msg), "held %d", i);

		OK(vb_publish(a, "hold.it", msg, (size_t)n));
	}
	OK(vb_flush(a, 5000));
	t0 = now_ms();
	while (h.n < 10 && now_ms() - t0 < 5000)
		vb_poll(b, 10);
	CHECK(h.n == 10, "%d held", h.n);
	/* Traffic in between must not overwrite them. */
	publish_seq(a, b, "seq.one", 20101, 25000, NULL);
	pump_until(a, b, &s1.got, 25000, 20000, "between holds");
	for (int i = 0; i < 10; i++) {
		char want[16];
		int n = snprintf(want, sizeof(want), "held %d", i);

		CHECK(h.kept[i]->size == (size_t)n &&
			      !memcmp(h.kept[i]->data, want, (size_t)n),
		      "held message %d changed", i);
		vb_msg_release(h.kept[i]);
	}
	OK(vb_unsubscribe(sub));
	printf("PASS: 10 held messages intact across 4900 later ones\n");

	/* 4. Request/reply, and a request nobody answers.  B answers from
	 * its own thread (vb_run), A's vb_request blocks. */
	OK(vb_subscribe(b, "svc.echo", NULL, on_request, NULL, NULL));
	OK(vb_flush(b, 5000));
	CHECK(vb_request_async(a, "svc.echo", "x", 1, 5000, NULL, NULL) ==
		      VB_EINVAL,
	      "request without a callback accepted");
	{
		pthread_t responder;

		CHECK(!pthread_create(&responder, NULL, run_conn, b),
		      "pthread_create");
		for (int i = 0; i < 50; i++) {
			char req[16], want[24];
			int n = snprintf(req, sizeof(req), "%d", i);

			snprintf(want, sizeof(want), "pong %d", i);
			OK(vb_request(a, "svc.echo", req, (size_t)n, 5000,
				      &reply));
			CHECK(reply->size == strlen(want) &&
				      !memcmp(reply->data, want, reply->size),
			      "reply %d: \"%.*s\"", i, (int)reply->size,
			      (const char *)reply->data);
			vb_msg_release(reply);
		}
		vb_stop(b);
		pthread_join(responder, NULL);
	}
	/* A subscriber that never answers: the request times out (with no
	 * subscriber at all it would fail at once: tests/rdma/libhdr.c). */
	OK(vb_subscribe(b, "svc.silent", NULL, on_count, &n_silent, NULL));
	OK(vb_flush(b, 5000));
	t0 = now_ms();
	rc = vb_request(a, "svc.silent", "x", 1, 300, &reply);
	CHECK(rc == VB_ETIMEDOUT, "unanswered request: %s", vb_strerror(rc));
	CHECK(now_ms() - t0 >= 290 && now_ms() - t0 < 3000,
	      "timeout after %" PRIu64 " ms", now_ms() - t0);
	printf("PASS: 50 requests answered, an unanswered one timed out\n");

	/* 5. Auto-unsubscribe after 7, and unsubscribe. */
	OK(vb_subscribe(b, "auto.x", NULL, on_count, &n_auto, &sub));
	OK(vb_sub_autounsubscribe(sub, 7));
	OK(vb_subscribe(b, "gone.x", NULL, on_count, &n_gone, &sub));
	OK(vb_flush(b, 5000));
	OK(vb_unsubscribe(sub));
	OK(vb_flush(b, 5000));
	for (int i = 0; i < 20; i++) {
		OK(vb_publish(a, "auto.x", "a", 1));
		OK(vb_publish(a, "gone.x", "g", 1));
	}
	OK(vb_flush(a, 5000));
	t0 = now_ms();
	while (now_ms() - t0 < 300)
		vb_poll(b, 10);
	CHECK(n_auto == 7, "auto-unsubscribe: %" PRIu64 " delivered", n_auto);
	CHECK(n_gone == 0, "unsubscribed: %" PRIu64 " delivered", n_gone);
	printf("PASS: auto-unsubscribe after 7, unsubscribe at once\n");

	/* 6. A queue group of two splits the messages. */
	OK(vb_subscribe(b, "work.q", "workers", on_count, &n_q1, &q1));
	OK(vb_subscribe(b, "work.q", "workers", on_count, &n_q2, &q2));
	OK(vb_flush(b, 5000));
	for (int i = 0; i < 1000; i++)
		OK(vb_publish(a, "work.q", "w", 1));
	OK(vb_flush(a, 5000));
	{
		uint64_t sum = 0;

		t0 = now_ms();
		while ((sum = n_q1 + n_q2) < 1000 && now_ms() - t0 < 5000)
			vb_poll(b, 10);
		CHECK(sum == 1000 && n_q1 > 0 && n_q2 > 0,
		      "queue group: %" PRIu64 " + %" PRIu64, n_q1, n_q2);
	}
	printf("PASS: queue group split 1000 messages %" PRIu64 "/%" PRIu64
	       "\n",
	       n_q1, n_q2);

	/* 7. vb_fd() in an epoll loop, nothing else driving B. */
	{
		int ep = epoll_create1(0);
		struct epoll_event ev = { .events = EPOLLIN };
		uint64_t before = s1.got;

		ev.data.ptr = b;
		CHECK(ep >= 0 && !epoll_ctl(ep, EPOLL_CTL_ADD, vb_fd(b), &ev),
		      "epoll");
		ev.data.ptr = a;
		CHECK(!epoll_ctl(ep, EPOLL_CTL_ADD, vb_fd(a), &ev), "epoll");
		publish_seq(a, b, "seq.one", 25001, 26000, NULL);
		t0 = now_ms();
		while (s1.got < before + 1000 && now_ms() - t0 < 10000) {
			struct epoll_event evs[2];
			int n = epoll_wait(ep, evs, 2, 1000);

			for (int i = 0; i < n; i++)
				CHECK(vb_process(evs[i].data.ptr) >= 0,
				      "vb_process");
		}
		CHECK(s1.got == 26000 && s1.bad == 0,
		      "epoll loop: %" PRIu64 " delivered", s1.got);
		close(ep);
	}
	printf("PASS: 1000 messages through an epoll loop on vb_fd()\n");

	/* 7b. Adaptive polling: vb_spin() alone delivers to B. */
	{
		uint64_t n_spin = 0;
		struct vb_sub *sp;

		CHECK(vb_spin(b, -1) == VB_EINVAL, "vb_spin(-1)");
		OK(vb_subscribe(b, "spin.t", NULL, on_count, &n_spin, &sp));
		OK(vb_flush(b, 5000));
		for (int i = 0; i < 100; i++)
			OK(vb_publish(a, "spin.t", "s", 1));
		OK(vb_flush(a, 5000));
		t0 = now_ms();
		while (n_spin < 100 && now_ms() - t0 < 5000) {
			rc = vb_spin(b, 1000);
			CHECK(rc >= 0, "vb_spin: %s", vb_strerror(rc));
		}
		CHECK(n_spin == 100, "vb_spin delivered %" PRIu64, n_spin);
		OK(vb_unsubscribe(sp));
	}
	printf("PASS: 100 messages delivered by vb_spin() alone\n");

	/* 8. A bounded pending buffer: VB_EAGAIN, then VB_EV_WRITABLE. */
	{
		char big[60000];
		int eagain = 0, sent = 0;

		memset(big, 'z', sizeof(big));
		for (int i = 0; i < 2000 && !eagain; i++) {
			rc = vb_publish(a, "big.x", big, sizeof(big));
			if (rc == VB_EAGAIN)
				eagain = 1;
			else
				OK(rc);
			sent++;
		}
		CHECK(eagain, "8 MiB pending limit never reached");
		OK(vb_stats(a, &st));
		CHECK(st.pending_bytes > 0 &&
			      st.pending_bytes <= 8u * 1024 * 1024,
		      "pending %" PRIu64, st.pending_bytes);
		t0 = now_ms();
		while (!ea.writable && now_ms() - t0 < 30000) {
			vb_poll(a, 1);
			vb_poll(b, 0);
		}
		CHECK(ea.writable, "no VB_EV_WRITABLE");
		OK(vb_flush(a, 60000));
		OK(vb_stats(a, &st));
		CHECK(st.pending_bytes == 0, "still pending after flush");
		printf("PASS: pending buffer full after %d large messages, "
		       "writable again, flushed\n",
		       sent);
	}

	OK(vb_stats(b, &st));
	printf("stats b: in %" PRIu64 " msgs %" PRIu64
	       " bytes, orphans %" PRIu64 "\n",
	       st.msgs_in, st.bytes_in, st.orphans);
	vb_close(a);
	vb_close(b);
	printf("PASS: api\n");
}

/* Poll only @c for @ms, or until *@got reaches @want. */
static void poll_only(struct vb_conn *c, const uint64_t *got, uint64_t want,
		      int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;

	while (*got < want && now_ms() < end)
		vb_poll(c, 1);
}

/*
 * Posting: the first message published outside vb_process() leaves at
 * once, those after it wait for the publisher's next vb_process() (and
 * then leave together); with VB_OPT_NODELAY every one leaves at once.
 * The publishers are never polled while their messages should travel.
 */
static void case_posting(void)
{
	struct events ea = { 0 }, en = { 0 }, eb = { 0 };
	struct vb_conn *a = open_conn("post-a", src_a, &ea, 0, 0);
	struct vb_conn *n =
		open_conn("post-nodelay", src_a, &en, VB_OPT_NODELAY, 0);
	struct vb_conn *b = open_conn("post-b", src_b, &eb, 0, 0);
	uint64_t got_a = 0, got_n = 0;
	int i;

	OK(vb_subscribe(b, "post.a", NULL, on_count, &got_a, NULL));
	OK(vb_subscribe(b, "post.n", NULL, on_count, &got_n, NULL));
	OK(vb_flush(b, 5000));
	OK(vb_process(a));
	for (i = 0; i < 3; i++)
		OK(vb_publish(a, "post.a", "x", 1));
	poll_only(b, &got_a, 3, 500);
	CHECK(got_a == 1,
	      "default: %" PRIu64 " of 3 arrived before the "
	      "publisher's vb_process(), want the first only",
	      got_a);
	OK(vb_process(a));
	poll_only(b, &got_a, 3, 5000);
	CHECK(got_a == 3, "default: %" PRIu64 " of 3 after vb_process()",
	      got_a);
	for (i = 0; i < 3; i++)
		OK(vb_publish(n, "post.n", "x", 1));
	poll_only(b, &got_n, 3, 5000);
	CHECK(got_n == 3, "VB_OPT_NODELAY: %" PRIu64 " of 3 arrived", got_n);
	vb_close(a);
	vb_close(n);
	vb_close(b);
	printf("PASS: posting (the first at once, the rest at vb_process(); "
	       "VB_OPT_NODELAY: each at once)\n");
}

static void case_reconnect(void)
{
	struct events ea = { 0 }, eb = { 0 };
	struct vb_conn *a = open_conn("rc-a", src_a, &ea, 0, 0);
	struct vb_conn *b = open_conn("rc-b", src_b, &eb, 0, 0);
	struct seq_sub s = { 0 };
	struct vb_stats st = { .sz = sizeof(st) };
	uint64_t mr_before, t0, took;

	OK(vb_subscribe(b, "rc.seq", NULL, on_seq, &s, NULL));
	OK(vb_flush(b, 5000));
	publish_seq(a, b, "rc.seq", 1, 1000, NULL);
	pump_until(a, b, &s.got, 1000, 10000, "before");
	OK(vb_stats(b, &st));
	mr_before = st.mr_registered;
	printf("KILL-BROKER\n");
	fflush(stdout);
	/* Both see the loss and come back by themselves. */
	t0 = now_ms();
	while ((!ea.reconnected || !eb.reconnected) && now_ms() - t0 < 30000) {
		vb_poll(a, 1);
		vb_poll(b, 1);
	}
	CHECK(ea.disconnected == 1 && eb.disconnected == 1,
	      "disconnected events: %d, %d", ea.disconnected, eb.disconnected);
	CHECK(ea.reconnected == 1 && eb.reconnected == 1,
	      "reconnected events: %d, %d", ea.reconnected, eb.reconnected);
	took = eb.t_reconnected - eb.t_disconnected;
	printf("reconnected %" PRIu64 " ms after the loss was seen\n", took);
	/* The subscription was re-sent: the next messages arrive. */
	OK(vb_flush(b, 5000));
	s.got = 0;
	publish_seq(a, b, "rc.seq", 1, 1000, NULL);
	pump_until(a, b, &s.got, 1000, 10000, "after");
	CHECK(s.bad == 0, "bad messages after reconnecting");
	OK(vb_stats(b, &st));
	CHECK(st.reconnects == 1, "reconnects %" PRIu64, st.reconnects);
	CHECK(st.mr_registered == mr_before,
	      "reconnecting registered memory: %" PRIu64 " -> %" PRIu64,
	      mr_before, st.mr_registered);
	printf("PASS: reconnected in %" PRIu64 " ms, subscription restored, "
	       "no memory registered (%" PRIu64 " registrations)\n",
	       took, st.mr_registered);
	vb_close(a);
	vb_close(b);
}

#define THREADS 4
#define PER_THREAD 5000

struct thr {
	struct vb_conn *c;
	int id;
};

static void *publisher(void *arg)
{
	struct thr *t = arg;
	char subj[32], buf[32];
	int rc, n;

	snprintf(subj, sizeof(subj), "thr.%d", t->id);
	for (int i = 1; i <= PER_THREAD; i++) {
		n = snprintf(buf, sizeof(buf), "%s#%d", subj, i);
		while ((rc = vb_publish(t->c, subj, buf, (size_t)n)) ==
		       VB_EAGAIN)
			usleep(100);
		if (rc)
			die("thread %d: %s", t->id, vb_strerror(rc));
	}
	return NULL;
}

static void case_threads(void)
{
	struct events ea = { 0 }, eb = { 0 };
	struct vb_conn *a = open_conn("thr-a", src_a, &ea, VB_OPT_LOCKED, 50);
	struct vb_conn *b = open_conn("thr-b", src_b, &eb, 0, 0);
	struct seq_sub s[THREADS] = { 0 };
	struct thr t[THREADS];
	pthread_t tid[THREADS];
	uint64_t total = 0, t0;
	char subj[32];

	for (int i = 0; i < THREADS; i++) {
		snprintf(subj, sizeof(subj), "thr.%d", i);
		OK(vb_subscribe(b, subj, NULL, on_seq, &s[i], NULL));
	}
	OK(vb_flush(b, 5000));
	for (int i = 0; i < THREADS; i++) {
		t[i] = (struct thr){ .c = a, .id = i };
		CHECK(!pthread_create(&tid[i], NULL, publisher, &t[i]),
		      "pthread_create");
	}
	t0 = now_ms();
	while (total < THREADS * PER_THREAD && now_ms() - t0 < 60000) {
		vb_poll(a, 1);
		vb_poll(b, 0);
		total = 0;
		for (int i = 0; i < THREADS; i++)
			total += s[i].got;
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(tid[i], NULL);
		CHECK(s[i].got == PER_THREAD && s[i].bad == 0,
		      "thread %d: %" PRIu64 " got, %" PRIu64 " bad", i,
		      s[i].got, s[i].bad);
	}
	printf("PASS: %d threads x %d messages on one locked connection, "
	       "each thread's in order\n",
	       THREADS, PER_THREAD);
	vb_close(a);
	vb_close(b);
}

static void case_auth(void)
{
	static const struct {
		const char *user, *pw, *token, *what;
	} bad[] = {
		{ NULL, NULL, NULL, "no credentials" },
		{ "alice", "wrong", NULL, "a wrong password" },
		{ "mallory", "alice-pw", NULL, "an unknown user" },
		{ NULL, NULL, "not-the-token", "a wrong token" },
	};
	struct events ea = { 0 }, eb = { 0 }, ex = { 0 };
	struct vb_conn *a, *b, *x;
	uint64_t n_orders = 0, n_secret = 0, t0;
	int rc;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rc = try_conn(src_a, bad[i].user, bad[i].pw, bad[i].token, &ex,
			      &x);
		CHECK(rc == VB_EACCES, "%s: %s, expected VB_EACCES",
		      bad[i].what, vb_strerror(rc));
		printf("PASS: %s refused: %s\n", bad[i].what, vb_strerror(rc));
	}
	OK(try_conn(src_a, "alice", "alice-pw", NULL, &ea, &a));
	OK(try_conn(src_b, NULL, NULL, "bob-token", &eb, &b));
	printf("PASS: user alice and bob's token admitted\n");

	OK(vb_subscribe(b, "orders.*", NULL, on_count, &n_orders, NULL));
	OK(vb_subscribe(b, "secret.>", NULL, on_count, &n_secret, NULL));
	OK(vb_flush(b, 5000));
	CHECK(eb.notices == 1 && eb.last_notice_err == VB_EACCES,
	      "denied subscription: %d notices, last %s", eb.notices,
	      vb_strerror(eb.last_notice_err));
	printf("PASS: bob may not subscribe to secret.>\n");
	for (int i = 0; i < 10; i++)
		OK(vb_publish(a, "orders.new", "o", 1));
	OK(vb_publish(a, "secret.plans", "s", 1));
	OK(vb_flush(a, 5000));
	t0 = now_ms();
	while (n_orders < 10 && now_ms() - t0 < 5000)
		vb_poll(b, 10);
	CHECK(n_orders == 10 && n_secret == 0,
	      "orders %" PRIu64 ", secret %" PRIu64, n_orders, n_secret);
	CHECK(ea.notices == 1 && ea.last_notice_err == VB_EACCES,
	      "denied publish: %d notices", ea.notices);
	CHECK(vb_is_connected(a) && vb_is_connected(b), "a denial closed");
	printf("PASS: alice's 10 orders delivered, her secret.plans denied, "
	       "both still connected\n");
	/* A request the broker refuses fails at once, not at its timeout,
	 * and as the request's error, not as one more event. */
	{
		struct vb_msg *r = NULL;
		uint64_t ms;

		t0 = now_ms();
		rc = vb_request(a, "secret.ask", "q", 1, 10000, &r);
		ms = now_ms() - t0;
		CHECK(rc == VB_EACCES && !r,
		      "denied request: %s, expected "
		      "VB_EACCES",
		      vb_strerror(rc));
		CHECK(ms < 5000, "denied request failed after %" PRIu64 " ms",
		      ms);
		CHECK(ea.notices == 1, "denied request: %d notices",
		      ea.notices);
		printf("PASS: alice's request to secret.ask refused in %" PRIu64
		       " ms (timeout 10000)\n",
		       ms);
	}
	vb_close(a);
	vb_close(b);
}

/* The closed event of a failed blocking vb_connect(): its detail. */
static void on_closed_detail(struct vb_conn *c, const struct vb_event *ev,
			     void *arg)
{
	(void)c;
	if (ev->type == VB_EV_CLOSED)
		snprintf(arg, 256, "%s", ev->detail);
}

static void case_tls(void)
{
	struct vb_opts o = VB_OPTS_INIT;
	char plain[256], detail[256] = "";
	struct vb_conn *c = NULL;
	int rc;

	CHECK(strncmp(url, "tls://", 6) == 0, "%s is not a tls URL", url);
	snprintf(plain, sizeof(plain), "tcp://%s", url + 6);
	o.tls_ca = src_a;
	o.flags = VB_OPT_NO_RECONNECT;
	rc = vb_connect(plain, &o, &c);
	CHECK(rc == VB_EINVAL && !c, "tls_ca with %s: %s", plain,
	      vb_strerror(rc));
	printf("PASS: tls options with a tcp:// URL: %s\n", vb_strerror(rc));

	o.tls_server_name = "localhost";
	OK(vb_connect(url, &o, &c));
	vb_close(c);
	c = NULL;
	printf("PASS: tls_server_name localhost matches the certificate\n");

	o.tls_server_name = "elsewhere.invalid";
	o.on_event = on_closed_detail;
	o.event_arg = detail;
	rc = vb_connect(url, &o, &c);
	CHECK(rc == VB_EACCES && !c, "tls_server_name elsewhere.invalid: %s",
	      vb_strerror(rc));
	CHECK(strstr(detail, "certificate verify failed"),
	      "the closed event said \"%s\"", detail);
	printf("PASS: tls_server_name elsewhere.invalid refused: %s\n", detail);
}

/* Server @i of the list in url, as vb_conn_server_url() writes it. */
static void list_url(size_t i, char *buf, size_t len)
{
	struct vb_url u[VB_URL_LIST_MAX];
	int n = vb_url_list_parse(url, u, VB_URL_LIST_MAX, NULL, 0);

	CHECK(n > (int)i, "the list \"%s\" has %d servers", url, n);
	snprintf(buf, len,
		 strchr(u[i].host, ':') ? "%s://[%s]:%s" : "%s://%s:%s",
		 u[i].scheme, u[i].host, u[i].port);
}

/* @c is on @want, told by its last event @e too, after @reconnects
 * reconnections of which @failovers to another server. */
static void expect_server(struct vb_conn *c, const struct events *e,
			  const char *want, uint64_t reconnects,
			  uint64_t failovers)
{
	struct vb_stats st = { .sz = sizeof(st) };
	char buf[300];

	OK(vb_conn_server_url(c, buf, sizeof(buf)));
	CHECK(!strcmp(buf, want), "on %s, want %s", buf, want);
	CHECK(!strcmp(e->server, want), "the last event named %s, want %s",
	      e->server, want);
	CHECK(vb_conn_server_url(c, buf, 5) == VB_ENOSPC,
	      "vb_conn_server_url() into 5 bytes");
	OK(vb_stats(c, &st));
	CHECK(st.reconnects == reconnects && st.failovers == failovers &&
		      st.servers == 2,
	      "reconnects %" PRIu64 " (want %" PRIu64 "), failovers %" PRIu64
	      " (want %" PRIu64 "), servers %" PRIu64 " (want 2)",
	      st.reconnects, reconnects, st.failovers, failovers, st.servers);
}

/* Poll @a (and @b, unless NULL) until @e has seen @n reconnections. */
static void wait_reconnected(struct vb_conn *a, struct vb_conn *b,
			     const struct events *e, int n, const char *what)
{
	uint64_t end = now_ms() + 30000;

	while (e->reconnected < n) {
		CHECK(now_ms() < end, "%s never reconnected", what);
		vb_poll(a, 1);
		if (b)
			vb_poll(b, 0);
	}
}

static void say_when(const char *what)
{
	struct timespec rt;

	clock_gettime(CLOCK_REALTIME, &rt);
	printf("%s at %lld.%06ld\n", what, (long long)rt.tv_sec,
	       rt.tv_nsec / 1000);
}

static void case_failover(void)
{
	struct events es = { 0 }, ep = { 0 };
	struct vb_conn *s = open_conn("fo-sub", src_a, &es, 0, 0);
	struct vb_conn *p = open_conn("fo-pub", src_b, &ep, 0, 0);
	struct seq_sub before = { 0 }, queued = { 0 }, after = { 0 };
	struct vb_stats st = { .sz = sizeof(st) };
	char ua[300], ub[300], buf[64];
	uint64_t end, seen;
	int n;

	list_url(0, ua, sizeof(ua));
	list_url(1, ub, sizeof(ub));
	expect_server(s, &es, ua, 0, 0);
	expect_server(p, &ep, ua, 0, 0);
	OK(vb_subscribe(s, "fo.before", NULL, on_seq, &before, NULL));
	OK(vb_subscribe(s, "fo.queued", NULL, on_seq, &queued, NULL));
	OK(vb_subscribe(s, "fo.after", NULL, on_seq, &after, NULL));
	OK(vb_flush(s, 5000));
	publish_seq(p, s, "fo.before", 1, 100, NULL);
	pump_until(p, s, &before.got, 100, 10000, "before the kill");

	printf("KILL-BROKER\n");
	fflush(stdout);
	/* The subscriber alone: on B, its subscriptions in force. */
	wait_reconnected(s, NULL, &es, 1, "the subscriber");
	seen = es.t_reconnected - es.t_disconnected;
	OK(vb_flush(s, 5000));
	say_when("resubscribed");
	CHECK(es.disconnected == 1, "subscriber: %d disconnections",
	      es.disconnected);
	expect_server(s, &es, ub, 1, 1);
	printf("subscriber: on %s %" PRIu64 " ms after it saw the loss\n", ub,
	       seen);

	/* The publisher has not looked at its connection since the kill: it
	 * sees the loss now, and what it publishes before it is open again
	 * waits in its buffer, then goes to B. */
	end = now_ms() + 10000;
	while (!ep.disconnected) {
		CHECK(now_ms() < end, "the publisher never saw the loss");
		vb_poll(p, 1);
	}
	CHECK(!vb_is_connected(p), "the publisher is connected already");
	for (int i = 1; i <= 200; i++) {
		n = snprintf(buf, sizeof(buf), "fo.queued#%d", i);
		OK(vb_publish(p, "fo.queued", buf, (size_t)n));
	}
	OK(vb_stats(p, &st));
	CHECK(st.pending_msgs == 200, "%" PRIu64 " of 200 buffered",
	      st.pending_msgs);
	pump_until(p, s, &queued.got, 200, 10000, "buffered in the failover");
	expect_server(p, &ep, ub, 1, 1);
	publish_seq(p, s, "fo.after", 1, 1000, NULL);
	pump_until(p, s, &after.got, 1000, 10000, "after the failover");
	CHECK(before.bad == 0 && queued.bad == 0 && after.bad == 0,
	      "bad or out-of-order messages");
	printf("PASS: failover to %s: subscriptions restored, 200 messages "
	       "buffered without a broker delivered in order through it\n",
	       ub);

	/* A is back, B goes: round robin leads back to A. */
	printf("RESTART-A-KILL-B\n");
	fflush(stdout);
	wait_reconnected(s, p, &es, 2, "the subscriber");
	wait_reconnected(p, s, &ep, 2, "the publisher");
	OK(vb_flush(s, 5000));
	expect_server(s, &es, ua, 2, 2);
	expect_server(p, &ep, ua, 2, 2);
	after.got = 0;
	publish_seq(p, s, "fo.after", 1, 1000, NULL);
	pump_until(p, s, &after.got, 1000, 10000, "back on A");
	CHECK(after.bad == 0, "bad messages back on A");
	printf("PASS: back to %s when %s went\n", ua, ub);
	vb_close(p);
	vb_close(s);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 5) {
		fprintf(stderr,
			"usage: vb_libtest "
			"api|reconnect|threads|auth|posting|tls|failover "
			"URL SRC-A "
			"SRC-B\n");
		return 2;
	}
	url = argv[2];
	src_a = argv[3];
	src_b = argv[4];
	if (!strcmp(argv[1], "api"))
		case_api();
	else if (!strcmp(argv[1], "reconnect"))
		case_reconnect();
	else if (!strcmp(argv[1], "threads"))
		case_threads();
	else if (!strcmp(argv[1], "auth"))
		case_auth();
	else if (!strcmp(argv[1], "posting"))
		case_posting();
	else if (!strcmp(argv[1], "tls"))
		case_tls();
	else if (!strcmp(argv[1], "failover"))
		case_failover();
	else
		die("unknown case %s", argv[1]);
	return 0;
}
