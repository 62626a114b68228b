/*
 * libdrain.c - vb_libdrain, libverbus's drain, round trips, server version
 * and log callback against a running verbusd (tests/rdma/libverbus.sh).
 *
 *   vb_libdrain URL SOURCE-A SOURCE-B VERSION CLOSED-URL
 *
 * VERSION is what the broker's `verbusd --version` says; CLOSED-URL a URL
 * of the broker's scheme where nothing listens.  Connection P (the one
 * drained) on SOURCE-A, Q (the other side) on SOURCE-B.  Cases, in order:
 *   drain-thread  P locked, vb_run() in a thread of its own; a slow
 *                 subscriber with 1000 messages routed to it (more than
 *                 its ring: some wait in the broker) and 1500 of its own
 *                 publishes buffered (more than the broker's ring for it),
 *                 then vb_drain(): every message routed before is
 *                 delivered, in order, none published after its
 *                 Unsubscribe is (Q publishes 100 more once P's marker,
 *                 published after vb_drain(), reaches it), every buffered
 *                 publish reaches Q; subscribing is refused meanwhile;
 *                 VB_EV_CLOSED with VB_OK, vb_run() returns VB_OK.
 *   drain-loop    the same, P driven by this thread's own loop
 *                 (vb_process() until VB_ECLOSED).
 *   sub-drain     vb_sub_drain(): VB_EV_DRAINED with every message routed
 *                 before delivered, none after, the other subscription
 *                 untouched; vb_sub_drain_wait() on it; a wait that times
 *                 out.
 *   timeout       vb_drain() with 300 ms against a subscriber that takes
 *                 20 ms a message: closed anyway, VB_EV_CLOSED and
 *                 vb_run() say VB_ETIMEDOUT, the log callback saw the
 *                 library's warning.
 *   rtt           vb_rtt() > 0, vb_stats.rtt_ns; vb_conn_server_version()
 *                 is VERSION.
 *   log           a connect that fails: its warning reaches vb_opts.log at
 *                 VB_LOG_WARN, nothing at VB_LOG_ERR, nothing on stderr
 *                 without a callback; the transport's own line at
 *                 VB_LOG_INFO on an open; a bad level refused.
 * Prints "PASS: ..." lines; exit 0 on success, 1 on the first failure.
 */
#include "vbcheck.h"

#include <verbus/verbus.h>

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *url, *src_a, *src_b, *version, *closed_url;

/* ---- what a connection saw ---------------------------------------------- */

#define LOG_LINES 64

struct seen {
	pthread_mutex_t mu; /* P's events and log may come from its thread */
	int closed, close_err;
	char close_detail[128];
	int notices;
	int drained, drained_err;
	struct vb_sub *drained_sub;
	uint64_t drained_count;
	int nlog, log_level[LOG_LINES];
	char log[LOG_LINES][160];
};

static void seen_init(struct seen *e)
{
	memset(e, 0, sizeof(*e));
	pthread_mutex_init(&e->mu, NULL);
}

static void on_event(struct vb_conn *c, const struct vb_event *ev, void *arg)
{
	struct seen *e = arg;

	(void)c;
	pthread_mutex_lock(&e->mu);
	switch (ev->type) {
	case VB_EV_CLOSED:
		e->closed++;
		e->close_err = ev->err;
		snprintf(e->close_detail, sizeof(e->close_detail), "%s",
			 ev->detail);
		break;
	case VB_EV_DRAINED:
		e->drained++;
		e->drained_err = ev->err;
		e->drained_sub = ev->sub;
		e->drained_count = ev->count;
		break;
	case VB_EV_DISCONNECTED:
		printf("event: disconnected: %s\n", ev->detail);
		break;
	case VB_EV_NOTICE:
		e->notices++;
		printf("event: notice: %s (%s)\n", ev->detail,
		       vb_strerror(ev->err));
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&e->mu);
}

static void on_log(struct vb_conn *c, enum vb_log_level level, const char *line,
		   void *arg)
{
	struct seen *e = arg;

	(void)c;
	pthread_mutex_lock(&e->mu);
	if (e->nlog < LOG_LINES) {
		e->log_level[e->nlog] = level;
		snprintf(e->log[e->nlog], sizeof(e->log[0]), "%s", line);
	}
	e->nlog++;
	pthread_mutex_unlock(&e->mu);
}

/* The first log line containing @what at @level, or -1. */
static int log_find(struct seen *e, int level, const char *what)
{
	int i, found = -1;

	pthread_mutex_lock(&e->mu);
	for (i = 0; i < e->nlog && i < LOG_LINES && found < 0; i++)
		if (e->log_level[i] == level && strstr(e->log[i], what))
			found = i;
	pthread_mutex_unlock(&e->mu);
	return found;
}

static int closed_count(struct seen *e)
{
	int n;

	pthread_mutex_lock(&e->mu);
	n = e->closed;
	pthread_mutex_unlock(&e->mu);
	return n;
}

static struct vb_conn *open_conn(const char *name, const char *src,
				 unsigned flags, struct seen *e)
{
	struct vb_opts o = VB_OPTS_INIT;
	struct vb_conn *c;

	o.name = name;
	o.source = src;
	o.flags = flags;
	o.on_event = on_event;
	o.event_arg = e;
	o.log.cb = on_log;
	o.log.arg = e;
	o.log.level = VB_LOG_WARN;
	OK(vb_connect(url, &o, &c));
	return c;
}

/* ---- a subscriber that checks order ------------------------------------- */

/* Messages are "<n>" then filler, n = 1, 2, ... in order. */
struct counter {
	_Atomic uint64_t got;
	_Atomic uint64_t bad;
	int delay_us; /* a slow callback */
	/* While hold is set, every message is kept (vb_msg_hold), so that
	 * the receive ring fills and the rest waits at the broker. */
	pthread_mutex_t mu;
	bool hold;
	struct vb_msg **held;
	size_t nheld;
};

static void on_count(struct vb_conn *c, const struct vb_msg *m, void *arg)
{
	struct counter *k = arg;
	uint64_t n = 0;
	size_t i;

	(void)c;
	for (i = 0; i < m->size && i < 20; i++) {
		char ch = ((const char *)m->data)[i];

		if (ch < '0' || ch > '9')
			break;
		n = n * 10 + (uint64_t)(ch - '0');
	}
	if (n != k->got + 1 && k->bad++ < 5)
		fprintf(stderr,
			"message %" PRIu64 " out of order (%" PRIu64
			" before it)\n",
			n, k->got);
	k->got++;
	if (k->held) {
		pthread_mutex_lock(&k->mu);
		if (k->hold && vb_msg_hold(m, &k->held[k->nheld]) == VB_OK)
			k->nheld++;
		pthread_mutex_unlock(&k->mu);
	}
	if (k->delay_us)
		usleep((useconds_t)k->delay_us);
}

/* Publish @n numbered messages of @size bytes to @subject on @c, polling
 * @c (and @other, if any) while the buffer is full. */
static void publish_n(struct vb_conn *c, struct vb_conn *other,
		      const char *subject, uint64_t first, uint64_t n,
		      size_t size)
{
	char *buf = calloc(1, size);
	uint64_t i;
	int rc;

	CHECK(buf, "out of memory");
	memset(buf, 'x', size);
	for (i = first; i < first + n; i++) {
		int len = snprintf(buf, size, "%" PRIu64, i);

		buf[len] = '-';
		while ((rc = vb_publish(c, subject, buf, size)) == VB_EAGAIN) {
			vb_poll(c, 10);
			if (other)
				vb_process(other);
		}
		OK(rc);
	}
	free(buf);
}

/* Drive @a (and @b, @c if not NULL) until @done or @ms pass. */
static bool drive_until(struct vb_conn *a, struct vb_conn *b, struct vb_conn *c,
			bool (*done)(void *), void *arg, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;

	while (!done(arg)) {
		if (now_ms() > end)
			return false;
		vb_poll(a, 2);
		if (b)
			vb_process(b);
		if (c)
			vb_process(c);
	}
	return true;
}

struct want {
	struct counter *k;
	uint64_t n;
};

static bool have_n(void *arg)
{
	struct want *w = arg;

	return w->k->got >= w->n;
}

static bool is_closed(void *arg)
{
	return closed_count(arg) > 0;
}

/* ---- connection drain --------------------------------------------------- */

#define N_IN 1200 /* routed to P's slow subscriber before the drain */
#define IN_SIZE 1000 /* 1.2 MB: more than P's ring, the rest at the broker */
#define N_AFTER 100 /* published to it once its Unsubscribe is in force */
#define N_OUT 1500 /* P's own publishes, mostly buffered at the drain */
#define MSG_SIZE 2048

/* Stop holding, and give back what was held (from any thread). */
static size_t release_held(struct counter *k)
{
	size_t i, n;

	pthread_mutex_lock(&k->mu);
	k->hold = false;
	n = k->nheld;
	pthread_mutex_unlock(&k->mu);
	for (i = 0; i < n; i++)
		vb_msg_release(k->held[i]);
	return n;
}

static void *run_thread(void *arg)
{
	return (void *)(intptr_t)vb_run(arg);
}

/*
 * P is drained; Q publishes to P's slow subscriber and hears P's marker;
 * R counts P's own publishes, and reads nothing until P drains, so that
 * they wait in P's buffer.  P holds what it is delivered until after the
 * drain began, so that its ring is full and the rest of what was routed
 * to it waits at the broker: that must all come before the Pong that
 * ends the subscription's drain.
 */
static void case_conn_drain(bool threaded)
{
	const char *tag = threaded ? "thread" : "loop";
	char s_in[64], s_out[64], s_mark[64];
	struct counter in = { .delay_us = 200 }, out = { 0 }, mark = { 0 };
	struct seen ep, eq, er;
	struct vb_conn *p, *q, *r, *pl;
	struct vb_stats st = { .sz = sizeof(st) };
	struct want w;
	pthread_t th;
	void *ret;
	uint64_t t0, at_drain;
	size_t held;

	snprintf(s_in, sizeof(s_in), "drain.%s.in", tag);
	snprintf(s_out, sizeof(s_out), "drain.%s.out", tag);
	snprintf(s_mark, sizeof(s_mark), "drain.%s.mark", tag);
	seen_init(&ep);
	seen_init(&eq);
	seen_init(&er);
	pthread_mutex_init(&in.mu, NULL);
	in.held = calloc(N_IN, sizeof(*in.held));
	CHECK(in.held, "out of memory");
	in.hold = true;
	p = open_conn("drain-p", src_a, threaded ? VB_OPT_LOCKED : 0, &ep);
	q = open_conn("drain-q", src_b, 0, &eq);
	r = open_conn("drain-r", src_b, 0, &er);
	pl = threaded ? NULL : p; /* P, when this thread drives it */
	OK(vb_subscribe(p, s_in, NULL, on_count, &in, NULL));
	OK(vb_subscribe(r, s_out, NULL, on_count, &out, NULL));
	OK(vb_subscribe(q, s_mark, NULL, on_count, &mark, NULL));
	OK(vb_flush(p, 5000));
	OK(vb_flush(q, 5000));
	OK(vb_flush(r, 5000));
	if (threaded)
		CHECK(pthread_create(&th, NULL, run_thread, p) == 0,
		      "pthread_create");

	/* Buffered: 3 MB from P while R reads nothing (the broker holds P's
	 * ring, so most of it waits in P's queue). */
	publish_n(p, NULL, s_out, 1, N_OUT, MSG_SIZE);
	/* In flight to a slow callback: routed (Q's flush); what fits P's
	 * ring delivered and held there, the rest at the broker. */
	publish_n(q, NULL, s_in, 1, N_IN, IN_SIZE);
	OK(vb_flush(q, 10000));
	if (!threaded)
		vb_poll(p, 100);
	usleep(200 * 1000);

	t0 = now_ms();
	OK(vb_drain(p, 20000));
	at_drain = in.got;
	OK(vb_stats(p, &st));
	printf("%s: at the drain: %" PRIu64 " of %d delivered, %" PRIu64
	       " publishes buffered\n",
	       tag, at_drain, N_IN, st.pending_msgs);
	CHECK(at_drain + 100 <= N_IN,
	      "%s: %" PRIu64 " of %d delivered before the drain: too few left "
	      "in flight",
	      tag, at_drain, N_IN);
	CHECK(st.pending_msgs > 0, "%s: nothing buffered at the drain", tag);
	CHECK(vb_is_draining(p) == 1, "vb_is_draining: not draining");
	IS(vb_drain(p, 1000), VB_ESTATE);
	IS(vb_subscribe(p, "drain.refused", NULL, on_count, &in, NULL),
	   VB_ESTATE);
	/* Publishing goes on until the last flush: this marker follows the
	 * Unsubscribe, so once Q has it the broker has stopped P's
	 * subscription (and answered the Ping behind it, if it may). */
	OK(vb_publish(p, s_mark, "1", 1));
	w.k = &mark;
	w.n = 1;
	CHECK(drive_until(q, r, pl, have_n, &w, 30000),
	      "%s: P's marker never reached Q", tag);
	publish_n(q, NULL, s_in, N_IN + 1, N_AFTER, 64);
	OK(vb_flush(q, 10000));
	/* Only now has P room for what the broker kept for it. */
	held = release_held(&in);
	CHECK(held > 0, "%s: nothing held", tag);

	CHECK(drive_until(r, pl, NULL, is_closed, &ep, 30000),
	      "%s: the drain never ended", tag);
	if (threaded) {
		pthread_join(th, &ret);
		IS((int)(intptr_t)ret, VB_OK);
	} else {
		IS(vb_process(p), VB_ECLOSED);
	}
	CHECK(ep.close_err == VB_OK && strcmp(ep.close_detail, "drained") == 0,
	      "%s: closed with %s (%s)", tag, vb_errname(ep.close_err),
	      ep.close_detail);
	CHECK(ep.closed == 1, "%s: %d VB_EV_CLOSED", tag, ep.closed);
	printf("%s: drained in %" PRIu64 " ms\n", tag, now_ms() - t0);

	/* Every message routed before the drain, and none after. */
	usleep(200 * 1000); /* a stray one would have come by now */
	CHECK(in.got == N_IN && in.bad == 0,
	      "%s: the slow subscriber had %" PRIu64 " messages (%" PRIu64
	      " out of order), want %d",
	      tag, (uint64_t)in.got, (uint64_t)in.bad, N_IN);
	/* Every buffered publish reached the broker: R gets them all. */
	w.k = &out;
	w.n = N_OUT;
	CHECK(drive_until(r, NULL, NULL, have_n, &w, 20000),
	      "%s: R had %" PRIu64 " of P's %d publishes", tag,
	      (uint64_t)out.got, N_OUT);
	OK(vb_flush(r, 5000));
	CHECK(out.got == N_OUT && out.bad == 0,
	      "%s: R had %" PRIu64 " of P's publishes (%" PRIu64
	      " out of order), want %d",
	      tag, (uint64_t)out.got, (uint64_t)out.bad, N_OUT);
	IS(vb_publish(p, s_out, "x", 1), VB_ECLOSED);
	CHECK(vb_is_draining(p) == 0, "still draining once closed");
	CHECK(log_find(&ep, VB_LOG_WARN, "drain") < 0,
	      "%s: a drain warning: %s", tag, ep.log[0]);
	vb_close(p); /* releases nothing more: all given back */
	vb_close(q);
	vb_close(r);
	free(in.held);
	printf("PASS: drain-%s: %d routed (%" PRIu64 " in flight at the "
	       "drain, %zu held) delivered, %d after not; %d buffered sent\n",
	       tag, N_IN, N_IN - at_drain, held, N_AFTER, N_OUT);
}

/* ---- subscription drain ------------------------------------------------- */

static int drained_count(struct seen *e)
{
	int n;

	pthread_mutex_lock(&e->mu);
	n = e->drained;
	pthread_mutex_unlock(&e->mu);
	return n;
}

static bool is_drained(void *arg)
{
	return drained_count(arg) > 0;
}

static void case_sub_drain(void)
{
	struct counter a = { .delay_us = 300 }, b = { 0 }, c3 = { 0 };
	struct counter slow = { .delay_us = 50000 };
	struct seen ep, eq;
	struct vb_sub *sa, *sb, *sc, *se;
	struct vb_conn *p, *q;
	struct want w;
	uint64_t t0;

	seen_init(&ep);
	seen_init(&eq);
	p = open_conn("subdrain-p", src_a, 0, &ep);
	q = open_conn("subdrain-q", src_b, 0, &eq);
	OK(vb_subscribe(p, "sd.a", NULL, on_count, &a, &sa));
	OK(vb_subscribe(p, "sd.b", NULL, on_count, &b, &sb));
	OK(vb_flush(p, 5000));
	publish_n(q, p, "sd.a", 1, 600, MSG_SIZE);
	publish_n(q, p, "sd.b", 1, 50, 64);
	OK(vb_flush(q, 10000));

	IS(vb_sub_drain(sa, -5), VB_EINVAL);
	OK(vb_sub_drain(sa, 20000));
	IS(vb_sub_drain(sa, 1000), VB_ESTATE);
	CHECK(drive_until(p, NULL, NULL, is_drained, &ep, 30000),
	      "no VB_EV_DRAINED");
	CHECK(ep.drained == 1 && ep.drained_sub == sa &&
		      ep.drained_err == VB_OK && ep.drained_count == 600,
	      "VB_EV_DRAINED: %d events, sub %s, %s, count %" PRIu64,
	      ep.drained, ep.drained_sub == sa ? "right" : "wrong",
	      vb_errname(ep.drained_err), ep.drained_count);
	CHECK(a.got == 600 && a.bad == 0,
	      "sd.a had %" PRIu64 " (%" PRIu64 " out of order), want 600",
	      (uint64_t)a.got, (uint64_t)a.bad);
	/* Gone at the broker: more for it finds nobody; sd.b goes on. */
	publish_n(q, p, "sd.a", 601, 20, 64);
	publish_n(q, p, "sd.b", 51, 50, 64);
	OK(vb_flush(q, 5000));
	w.k = &b;
	w.n = 100;
	CHECK(drive_until(p, NULL, NULL, have_n, &w, 10000),
	      "sd.b had %" PRIu64, (uint64_t)b.got);
	OK(vb_flush(p, 5000));
	CHECK(a.got == 600, "sd.a had %" PRIu64 " after its drain",
	      (uint64_t)a.got);

	/* Waiting: everything routed before is delivered on return. */
	publish_n(q, p, "sd.b", 101, 200, MSG_SIZE);
	OK(vb_flush(q, 10000));
	OK(vb_sub_drain_wait(sb, 20000));
	CHECK(b.got == 300 && b.bad == 0,
	      "sd.b had %" PRIu64 " (%" PRIu64 " out of order), want 300",
	      (uint64_t)b.got, (uint64_t)b.bad);
	CHECK(ep.drained == 1, "vb_sub_drain_wait() announced its drain");

	/* A wait that times out: a subscriber at 50 ms a message. */
	OK(vb_subscribe(p, "sd.c", NULL, on_count, &slow, &sc));
	OK(vb_flush(p, 5000));
	publish_n(q, p, "sd.c", 1, 100, 64);
	OK(vb_flush(q, 5000));
	t0 = now_ms();
	IS(vb_sub_drain_wait(sc, 300), VB_ETIMEDOUT);
	CHECK(now_ms() - t0 < 3000, "the wait took %" PRIu64 " ms",
	      now_ms() - t0);
	CHECK(slow.got < 100, "all 100 delivered within 300 ms at 50 ms each");
	CHECK(log_find(&ep, VB_LOG_WARN, "drain timed out") >= 0,
	      "no warning for the subscription drain that timed out");
	/* The connection is fine, and the subscription gone. */
	OK(vb_subscribe(p, "sd.d", NULL, on_count, &c3, NULL));
	OK(vb_flush(p, 5000));
	publish_n(q, p, "sd.d", 1, 5, 64);
	OK(vb_flush(q, 5000));
	w.k = &c3;
	w.n = 5;
	CHECK(drive_until(p, NULL, NULL, have_n, &w, 5000), "sd.d had %" PRIu64,
	      (uint64_t)c3.got);

	/* Unsubscribed while draining: ends it, without an event, and
	 * without a second Unsubscribe (the broker would say "no such
	 * subscription"). */
	OK(vb_subscribe(p, "sd.e", NULL, on_count, &c3, &se));
	OK(vb_flush(p, 5000));
	OK(vb_sub_drain(se, -1));
	IS(vb_sub_autounsubscribe(se, 5), VB_ESTATE);
	OK(vb_unsubscribe(se));
	OK(vb_flush(p, 5000));
	vb_poll(p, 100);
	CHECK(ep.drained == 1 && ep.notices == 0,
	      "after vb_unsubscribe of a draining subscription: %d "
	      "VB_EV_DRAINED, %d notices",
	      ep.drained, ep.notices);
	vb_close(p);
	vb_close(q);
	printf("PASS: sub-drain: 600 in flight delivered, VB_EV_DRAINED, "
	       "vb_sub_drain_wait, a timed-out wait\n");
}

/* ---- a drain that times out --------------------------------------------- */

static void case_timeout(void)
{
	struct counter slow = { .delay_us = 20000 };
	struct seen ep, eq;
	struct vb_conn *p, *q;
	uint64_t t0, took;
	int rc;

	seen_init(&ep);
	seen_init(&eq);
	p = open_conn("timeout-p", src_a, 0, &ep);
	q = open_conn("timeout-q", src_b, 0, &eq);
	OK(vb_subscribe(p, "to.slow", NULL, on_count, &slow, NULL));
	OK(vb_flush(p, 5000));
	publish_n(q, NULL, "to.slow", 1, 200, 64);
	OK(vb_flush(q, 5000));
	t0 = now_ms();
	OK(vb_drain(p, 300));
	rc = vb_run(p);
	took = now_ms() - t0;
	IS(rc, VB_ETIMEDOUT);
	CHECK(ep.closed == 1 && ep.close_err == VB_ETIMEDOUT,
	      "VB_EV_CLOSED: %d, %s (%s)", ep.closed, vb_errname(ep.close_err),
	      ep.close_detail);
	/* Not before its time; late by one slow callback and a tick. */
	CHECK(took >= 300 && took < 3000,
	      "the drain ended after %" PRIu64 " ms, want 300", took);
	CHECK(slow.got < 200,
	      "all 200 delivered at 20 ms each in %" PRIu64 " ms", took);
	CHECK(log_find(&ep, VB_LOG_WARN, "drain timed out") >= 0,
	      "the log callback did not see the drain's warning (%d lines)",
	      ep.nlog);
	printf("log: %s\n", ep.log[log_find(&ep, VB_LOG_WARN, "drain timed")]);
	IS(vb_process(p), VB_ECLOSED);
	vb_close(p);
	vb_close(q);
	printf("PASS: timeout: closed after %" PRIu64 " ms with %" PRIu64
	       " of 200 delivered, VB_ETIMEDOUT, warned\n",
	       took, (uint64_t)slow.got);
}

/* ---- round trip, server version ----------------------------------------- */

static void case_rtt(void)
{
	struct vb_stats st = { .sz = sizeof(st) };
	struct seen ep;
	struct vb_conn *p;
	char v[64], tiny[2];
	uint64_t ns = 0;

	seen_init(&ep);
	p = open_conn("rtt", src_a, VB_OPT_LOCKED, &ep);
	OK(vb_rtt(p, 5000, &ns));
	CHECK(ns > 0 && ns < 5000000000ull, "vb_rtt: %" PRIu64 " ns", ns);
	OK(vb_stats(p, &st));
	CHECK(st.rtt_ns > 0, "vb_stats.rtt_ns is 0 after vb_rtt");
	IS(vb_rtt(NULL, 5000, &ns), VB_EINVAL);
	IS(vb_rtt(p, 5000, NULL), VB_EINVAL);
	OK(vb_conn_server_version(p, v, sizeof(v)));
	CHECK(strcmp(v, version) == 0, "server version \"%s\", want \"%s\"", v,
	      version);
	IS(vb_conn_server_version(p, tiny, sizeof(tiny)), VB_ENOSPC);
	vb_close(p);
	printf("PASS: rtt: %" PRIu64 " ns; server version %s\n", ns, v);
}

/* ---- the library's log -------------------------------------------------- */

/* A connect to where nothing listens, with @cb at @level. */
static int connect_closed(vb_log_cb cb, struct seen *e, int level)
{
	struct vb_opts o = VB_OPTS_INIT;
	struct vb_conn *c = NULL;
	int rc;

	o.name = "log-probe";
	o.source = src_a;
	o.connect_timeout_ms = 2000;
	o.log.cb = cb;
	o.log.arg = e;
	o.log.level = level;
	rc = vb_connect(closed_url, &o, &c);
	CHECK(rc != VB_OK, "connected to %s", closed_url);
	return rc;
}

static void case_log(void)
{
	struct vb_opts o = VB_OPTS_INIT;
	struct seen warn, err, info;
	struct vb_conn *c;
	char path[] = "/tmp/vb_libdrain.XXXXXX", text[4096];
	int fd, saved, rc;
	off_t size;

	seen_init(&warn);
	seen_init(&err);
	seen_init(&info);
	rc = connect_closed(on_log, &warn, VB_LOG_WARN);
	CHECK(log_find(&warn, VB_LOG_WARN, "cannot connect") >= 0,
	      "no \"cannot connect\" warning (%d lines; connect said %s)",
	      warn.nlog, vb_errname(rc));
	printf("log: %s\n",
	       warn.log[log_find(&warn, VB_LOG_WARN, "cannot connect")]);
	connect_closed(on_log, &err, VB_LOG_ERR);
	CHECK(err.nlog == 0, "VB_LOG_ERR let through %d lines: %s", err.nlog,
	      err.log[0]);

	/* No callback: the library writes nothing anywhere. */
	fd = mkstemp(path);
	CHECK(fd >= 0, "mkstemp");
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	CHECK(saved >= 0 && dup2(fd, STDERR_FILENO) >= 0, "dup2");
	connect_closed(NULL, NULL, VB_LOG_DEBUG);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	size = lseek(fd, 0, SEEK_END);
	memset(text, 0, sizeof(text));
	if (pread(fd, text, sizeof(text) - 1, 0) < 0)
		text[0] = '\0';
	close(fd);
	unlink(path);
	/* Only the library's own words count: the verbs libraries may
	 * have their say on a guest's stderr. */
	if (size > 0)
		printf("stderr meanwhile (not ours): %s\n", text);
	CHECK(!strstr(text, "cannot connect") && !strstr(text, "log-probe"),
	      "the library wrote to stderr without a log callback: %s", text);

	/* The transport's own line reaches the connection's callback. */
	o.name = "log-info";
	o.source = src_a;
	o.log.cb = on_log;
	o.log.arg = &info;
	o.log.level = VB_LOG_INFO;
	OK(vb_connect(url, &o, &c));
	CHECK(log_find(&info, VB_LOG_INFO, "open") >= 0,
	      "no info line for the open (%d lines)", info.nlog);
	printf("log: %s\n", info.log[log_find(&info, VB_LOG_INFO, "open")]);
	vb_close(c);

	o.log.level = 7;
	IS(vb_connect(url, &o, &c), VB_EINVAL);
	printf("PASS: log: warnings reach vb_opts.log, levels filter, silent "
	       "without\n");
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: vb_libdrain URL SOURCE-A SOURCE-B "
				"VERSION CLOSED-URL\n");
		return 2;
	}
	url = argv[1];
	src_a = argv[2];
	src_b = argv[3];
	version = argv[4];
	closed_url = argv[5];
	setvbuf(stdout, NULL, _IOLBF, 0);
	case_conn_drain(true);
	case_conn_drain(false);
	case_sub_drain();
	case_timeout();
	case_rtt();
	case_log();
	printf("PASS: libdrain\n");
	return 0;
}
