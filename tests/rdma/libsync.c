/*
 * libsync.c - vb_libsync, libverbus's synchronous subscriptions, pending
 * limits and inboxes against a running verbusd (issue 17).
 *
 *   vb_libsync URL SOURCE-A SOURCE-B
 *
 * Connections from two hosts: A publishes, B (and others from B's host)
 * pull.  Every case runs, in this order, each short:
 *   badargs   refusals with a connection: bad patterns, a callback
 *             subscription given to vb_next_msg(), bad timeouts and
 *             limits (which change nothing), a small inbox buffer.
 *   order     600 messages of 0-2000 bytes, some with a reply subject,
 *             pulled with vb_next_msg() in order and intact; 20 kept
 *             while the rest pass (one held twice with vb_msg_hold());
 *             delivered, pending and msgs_in counted.
 *   timeouts  nothing published: 0 returns VB_ETIMEDOUT at once, 150 ms
 *             not before 150 ms.
 *   lag       a subscriber with a 64 KiB ring left 2,000 messages of
 *             1 KiB (31 rings) behind: all queued, none lost, no
 *             disconnection (queued messages leave the ring for memory),
 *             then pulled in order.
 *   limits    a limit of 10 messages: 25 published, exactly 10 queued and
 *             15 dropped, one VB_EV_SLOW_CONSUMER naming the subscription;
 *             after draining, the next messages flow and nothing else is
 *             lost; a second overflow is a second episode; a byte limit;
 *             a callback subscription whose held messages fill its limit.
 *   ended     auto-unsubscribe after 3: 3 pulled, then VB_ECLOSED at
 *             once; vb_unsubscribe() frees it.
 *   locked    VB_OPT_LOCKED with another thread in vb_run(): 300 messages
 *             pulled, each at once; 300 ms with nothing costs no CPU;
 *             a waiter woken by a message another thread processed and
 *             by vb_unsubscribe() from another thread (no heartbeat: no
 *             timer would wake it); two threads pulling from one
 *             subscription share 400 messages, none twice.
 *   inbox     vb_new_inbox(): 3 responders' replies gathered on one
 *             inbox, exactly 3; vb_request() on the same connection
 *             meanwhile answered; the request mux never sees the
 *             inbox's replies (orphans unchanged) nor the inbox its.
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
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static const char *url, *src_a, *src_b;

/* CPU time of the whole process, both threads, in ms. */
static uint64_t cpu_ms(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

/* What a connection's event callback saw. */
struct events {
	int disconnected, slow;
	struct vb_sub *slow_sub;
	uint64_t slow_count;
	char slow_detail[256];
};

static void on_event(struct vb_conn *c, const struct vb_event *ev, void *arg)
{
	struct events *e = arg;

	(void)c;
	if (ev->type == VB_EV_DISCONNECTED) {
		e->disconnected++;
		printf("event: disconnected: %s (%s)\n", ev->detail,
		       vb_strerror(ev->err));
	} else if (ev->type == VB_EV_SLOW_CONSUMER) {
		e->slow++;
		e->slow_sub = ev->sub;
		e->slow_count = ev->count;
		snprintf(e->slow_detail, sizeof(e->slow_detail), "%s",
			 ev->detail);
		CHECK(ev->err == VB_ENOSPC, "slow consumer err %s",
		      vb_errname(ev->err));
	}
}

/* The library's warnings (why a connect failed, say), for the test's log. */
static void log_line(struct vb_conn *c, enum vb_log_level level,
		     const char *line, void *arg)
{
	(void)c;
	(void)level;
	(void)arg;
	fprintf(stderr, "vb_libsync: %s\n", line);
}

static struct vb_conn *open_conn(const char *name, const char *src,
				 struct events *e, unsigned flags,
				 uint32_t ring, int ping_ms)
{
	struct vb_opts o = VB_OPTS_INIT;
	struct vb_conn *c;

	o.name = name;
	o.source = src;
	o.flags = flags;
	o.on_event = on_event;
	o.event_arg = e;
	o.ring_size = ring;
	o.max_msg = ring ? ring / 4 : 0;
	o.ping_interval_ms = ping_ms;
	o.log.cb = log_line;
	o.log.level = VB_LOG_WARN;
	OK(vb_connect(url, &o, &c));
	return c;
}

/* Message @n of @subject: "<subject>#<n>|" then @size bytes in all, the
 * rest a pattern of n. */
static size_t make_msg(char *buf, const char *subject, uint64_t n, size_t size)
{
	int h = snprintf(buf, 64, "%s#%" PRIu64 "|", subject, n);

	if (size < (size_t)h)
		size = (size_t)h;
	for (size_t i = (size_t)h; i < size; i++)
		buf[i] = (char)(n * 7 + i);
	return size;
}

/* Whether @m is message @n of @subject, as make_msg() made it. */
static void check_msg(const struct vb_msg *m, const char *subject, uint64_t n,
		      const char *what)
{
	char want[4096]; /* not static: pullers check at once */
	size_t sz;

	CHECK(m->subject_len == strlen(subject) &&
		      memcmp(m->subject, subject, m->subject_len) == 0,
	      "%s: subject %.*s, want %s", what, (int)m->subject_len,
	      m->subject, subject);
	sz = make_msg(want, subject, n, m->size);
	CHECK(sz == m->size && memcmp(want, m->data, sz) == 0,
	      "%s: message \"%.*s\" (%zu bytes), want #%" PRIu64, what,
	      (int)(m->size < 40 ? m->size : 40), (const char *)m->data,
	      m->size, n);
}

/* Publish messages @from..@to of @size bytes (0: varied) on @c, polling
 * @peer (may be NULL) meanwhile; then @flush @c: not when @peer must be
 * polled until the end (vb_flush() progresses @c only, and the broker
 * blocks, then disconnects, a subscriber left alone; the caller
 * flushes). */
static void publish_n(struct vb_conn *c, struct vb_conn *peer,
		      const char *subject, uint64_t from, uint64_t to,
		      size_t size, bool flush)
{
	char buf[4096];
	uint64_t end = now_ms() + 60000;
	size_t n;
	int rc;

	for (uint64_t i = from; i <= to; i++) {
		n = make_msg(buf, subject, i, size ? size : (i * 37) % 2000);
		while ((rc = vb_publish_reply(c, subject,
					      i % 3 ? NULL : "answer.x", buf,
					      n)) == VB_EAGAIN) {
			CHECK(now_ms() < end,
			      "%s: publisher stuck at #%" PRIu64, subject, i);
			vb_poll(c, 1);
			if (peer)
				vb_poll(peer, 0);
		}
		OK(rc);
		if (peer && i % 16 == 0)
			vb_poll(peer, 0);
	}
	if (flush)
		OK(vb_flush(c, 10000));
	else
		vb_process(c);
}

/* Poll @c (and the publisher @pub, if not NULL) until @s holds @msgs
 * pending, or fail after 10 s. */
static void await_pending(struct vb_conn *c, struct vb_sub *s, uint64_t msgs,
			  const char *what, struct vb_conn *pub)
{
	uint64_t end = now_ms() + 10000, n = 0;

	for (;;) {
		OK(vb_sub_pending(s, &n, NULL));
		if (n >= msgs)
			break;
		CHECK(now_ms() < end, "%s: %" PRIu64 " of %" PRIu64 " queued",
		      what, n, msgs);
		if (pub)
			vb_poll(pub, 0);
		vb_poll(c, pub ? 1 : 5);
	}
	if (pub)
		OK(vb_flush(pub, 5000));
	OK(vb_flush(c, 5000)); /* whatever else was coming is in */
	OK(vb_sub_pending(s, &n, NULL));
	CHECK(n == msgs, "%s: %" PRIu64 " queued, want %" PRIu64, what, n,
	      msgs);
}

/* Pull messages @from..@to of @subject from @s, in order. */
static void pull_n(struct vb_sub *s, const char *subject, uint64_t from,
		   uint64_t to)
{
	struct vb_msg *m;

	for (uint64_t i = from; i <= to; i++) {
		OK(vb_next_msg(s, 5000, &m));
		check_msg(m, subject, i, subject);
		CHECK(m->sub == s, "%s: message of another subscription",
		      subject);
		vb_msg_release(m);
	}
}

static void on_nothing(struct vb_conn *c, const struct vb_msg *m, void *arg)
{
	(void)c;
	(void)m;
	(void)arg;
}

/* ---- badargs ------------------------------------------------------------ */

static void case_badargs(struct vb_conn *b)
{
	struct vb_sub *s = NULL, *cs, *keep = (struct vb_sub *)&keep;
	struct vb_msg *m = (struct vb_msg *)&m, *m0 = m;
	char small[5] = "abcd", inbox[VB_INBOX_LEN];
	int64_t lm, lb;

	IS(vb_subscribe_sync(b, "a..b", NULL, &keep), VB_EINVAL);
	IS(vb_subscribe_sync(b, "a.>.b", NULL, &keep), VB_EINVAL);
	IS(vb_subscribe_sync(b, NULL, NULL, &keep), VB_EINVAL);
	IS(vb_subscribe_sync(b, "a.b", "bad queue", &keep), VB_EINVAL);
	IS(vb_subscribe_sync(b, "a.b", NULL, NULL), VB_EINVAL);
	CHECK(keep == (struct vb_sub *)&keep, "output written on failure");
	IS(vb_subscribe(b, "a.b", NULL, NULL, NULL, NULL), VB_EINVAL);

	OK(vb_subscribe(b, "sync.cb", NULL, on_nothing, NULL, &cs));
	IS(vb_next_msg(cs, 0, &m), VB_EINVAL); /* not a synchronous one */
	OK(vb_subscribe_sync(b, "sync.bad", NULL, &s));
	IS(vb_next_msg(s, -2, &m), VB_EINVAL);
	IS(vb_next_msg(s, 0, NULL), VB_EINVAL);
	CHECK(m == m0, "output written on failure");
	IS(vb_sub_set_pending_limits(s, 0, 10), VB_EINVAL);
	IS(vb_sub_set_pending_limits(s, 10, 0), VB_EINVAL);
	IS(vb_sub_set_pending_limits(s, -2, 10), VB_EINVAL);
	OK(vb_sub_pending_limits(s, &lm, &lb));
	CHECK(lm == 65536 && lb == 64 * 1024 * 1024,
	      "default limits %" PRId64 "/%" PRId64 " (or changed by a "
	      "refused call)",
	      lm, lb);
	OK(vb_sub_pending_limits(cs, &lm, &lb));
	CHECK(lm == 65536 && lb == 64 * 1024 * 1024, "callback sub limits");
	IS(vb_new_inbox(b, small, sizeof(small)), VB_ENOSPC);
	CHECK(strcmp(small, "abcd") == 0, "inbox buffer written on failure");
	IS(vb_new_inbox(b, NULL, 64), VB_EINVAL);
	OK(vb_new_inbox(b, inbox, sizeof(inbox)));
	CHECK(strncmp(inbox, "_INBOX.", 7) == 0 && strchr(inbox, '-'),
	      "inbox %s", inbox);
	OK(vb_unsubscribe(s));
	OK(vb_unsubscribe(cs));
	printf("PASS: sync/badargs: bad patterns, queues, timeouts, limits, "
	       "a callback subscription pulled, a small inbox buffer refused; "
	       "nothing written on failure\n");
}

/* ---- order -------------------------------------------------------------- */

static void case_order(struct vb_conn *a, struct vb_conn *b)
{
	const uint64_t n = 600, kept_n = 20;
	struct vb_stats st0 = { .sz = sizeof(st0) },
			st1 = { .sz = sizeof(st1) };
	struct vb_msg *kept[20], *m, *twice;
	uint64_t pm, pb, bytes = 0;
	struct vb_sub *s;

	OK(vb_subscribe_sync(b, "sync.order", NULL, &s));
	OK(vb_flush(b, 5000));
	OK(vb_stats(b, &st0));
	publish_n(a, b, "sync.order", 1, n, 0, true);
	for (uint64_t i = 1; i <= n; i++) {
		OK(vb_next_msg(s, 5000, &m));
		check_msg(m, "sync.order", i, "order");
		if (i % 3 == 0)
			CHECK(m->reply && m->reply_len == 8 &&
				      memcmp(m->reply, "answer.x", 8) == 0,
			      "order: #%" PRIu64 " lost its reply subject", i);
		else
			CHECK(!m->reply, "order: #%" PRIu64 " has a reply", i);
		bytes += m->size;
		if (i <= kept_n) {
			kept[i - 1] = m; /* kept while the rest pass */
			continue;
		}
		if (i == kept_n + 1) {
			OK(vb_msg_hold(m, &twice));
			vb_msg_release(m);
			m = twice;
			check_msg(m, "sync.order", i, "held twice");
		}
		vb_msg_release(m);
	}
	OK(vb_sub_pending(s, &pm, &pb));
	CHECK(pm == kept_n, "order: %" PRIu64 " pending, want %" PRIu64, pm,
	      kept_n);
	for (uint64_t i = 1; i <= kept_n; i++) {
		check_msg(kept[i - 1], "sync.order", i, "kept");
		vb_msg_release(kept[i - 1]);
	}
	OK(vb_sub_pending(s, &pm, &pb));
	CHECK(pm == 0 && pb == 0, "order: %" PRIu64 "/%" PRIu64 " pending", pm,
	      pb);
	CHECK(vb_sub_delivered(s) == n, "order: delivered %" PRIu64,
	      vb_sub_delivered(s));
	CHECK(vb_sub_dropped(s) == 0, "order: dropped");
	OK(vb_stats(b, &st1));
	CHECK(st1.msgs_in - st0.msgs_in == n &&
		      st1.bytes_in - st0.bytes_in == bytes,
	      "order: msgs_in %" PRIu64 ", bytes_in %" PRIu64,
	      st1.msgs_in - st0.msgs_in, st1.bytes_in - st0.bytes_in);
	IS(vb_next_msg(s, 0, &m), VB_ETIMEDOUT);
	OK(vb_unsubscribe(s));
	printf("PASS: sync/order: %" PRIu64 " messages (%" PRIu64
	       " bytes) pulled in order and intact, reply subjects kept, %" PRIu64
	       " held while the rest passed\n",
	       n, bytes, kept_n);
}

/* ---- timeouts ----------------------------------------------------------- */

static void case_timeouts(struct vb_conn *b)
{
	struct vb_msg *m;
	struct vb_sub *s;
	uint64_t t0, t1, t2;

	OK(vb_subscribe_sync(b, "sync.nothing", NULL, &s));
	OK(vb_flush(b, 5000));
	t0 = now_ms();
	IS(vb_next_msg(s, 0, &m), VB_ETIMEDOUT);
	t1 = now_ms();
	IS(vb_next_msg(s, 150, &m), VB_ETIMEDOUT);
	t2 = now_ms();
	CHECK(t1 - t0 < 50, "timeout 0 took %" PRIu64 " ms", t1 - t0);
	CHECK(t2 - t1 >= 150 && t2 - t1 < 1500,
	      "timeout 150 returned after %" PRIu64 " ms", t2 - t1);
	OK(vb_unsubscribe(s));
	printf("PASS: sync/timeouts: 0 returned in %" PRIu64
	       " ms, 150 after %" PRIu64 " ms\n",
	       t1 - t0, t2 - t1);
}

/* ---- lag ---------------------------------------------------------------- */

static void case_lag(struct vb_conn *a)
{
	const uint64_t n = 2000;
	struct events el = { 0 };
	struct vb_conn *l = open_conn("sync-lag", src_b, &el, 0, 65536, 0);
	struct vb_sub *s;
	uint64_t bytes;

	OK(vb_subscribe_sync(l, "sync.lag", NULL, &s));
	OK(vb_flush(l, 5000));
	publish_n(a, l, "sync.lag", 1, n, 1024, false);
	await_pending(l, s, n, "lag", a);
	OK(vb_sub_pending(s, NULL, &bytes));
	CHECK(bytes == n * 1024, "lag: %" PRIu64 " bytes pending", bytes);
	CHECK(vb_sub_dropped(s) == 0 && el.disconnected == 0 && el.slow == 0,
	      "lag: %" PRIu64 " dropped, %d disconnections", vb_sub_dropped(s),
	      el.disconnected);
	pull_n(s, "sync.lag", 1, n);
	OK(vb_unsubscribe(s));
	vb_close(l);
	printf("PASS: sync/lag: %" PRIu64 " KiB queued behind a 64 KiB ring, "
	       "none lost, no disconnection, pulled in order\n",
	       bytes / 1024);
}

/* ---- limits ------------------------------------------------------------- */

struct holder {
	struct vb_msg *kept[16];
	int n;
};

static void on_hold(struct vb_conn *c, const struct vb_msg *m, void *arg)
{
	struct holder *h = arg;

	(void)c;
	CHECK(h->n < 16, "holder: too many");
	OK(vb_msg_hold(m, &h->kept[h->n++]));
}

static void case_limits(struct vb_conn *a, struct vb_conn *b, struct events *eb)
{
	struct holder h = { 0 };
	struct vb_sub *s, *sb, *cs;
	struct vb_msg *m;
	uint64_t pm, pb;
	int slow0 = eb->slow;

	OK(vb_subscribe_sync(b, "sync.lim", NULL, &s));
	OK(vb_sub_set_pending_limits(s, 10, -1));
	OK(vb_flush(b, 5000));
	/* 1. 25 into a queue of 10: 15 dropped, one episode. */
	publish_n(a, NULL, "sync.lim", 1, 25, 40, true);
	await_pending(b, s, 10, "limits", NULL);
	OK(vb_sub_pending(s, &pm, &pb));
	CHECK(pm == 10 && pb == 400, "limits: %" PRIu64 "/%" PRIu64, pm, pb);
	CHECK(vb_sub_dropped(s) == 15, "limits: dropped %" PRIu64,
	      vb_sub_dropped(s));
	CHECK(eb->slow == slow0 + 1 && eb->slow_sub == s &&
		      eb->slow_count == 1 &&
		      strstr(eb->slow_detail, "\"sync.lim\""),
	      "limits: %d slow-consumer events (sub %p, count %" PRIu64
	      ", \"%s\")",
	      eb->slow - slow0, (void *)eb->slow_sub, eb->slow_count,
	      eb->slow_detail);
	/* The first 10 are there; 11..25 are not. */
	pull_n(s, "sync.lim", 1, 10);
	IS(vb_next_msg(s, 0, &m), VB_ETIMEDOUT);
	/* 2. Drained: the next ones flow, no new event. */
	publish_n(a, NULL, "sync.lim", 26, 30, 40, true);
	pull_n(s, "sync.lim", 26, 30);
	CHECK(eb->slow == slow0 + 1 && vb_sub_dropped(s) == 15,
	      "limits: drops after draining");
	/* 3. A second overflow is a second episode. */
	publish_n(a, NULL, "sync.lim", 31, 42, 40, true);
	await_pending(b, s, 10, "limits, again", NULL);
	CHECK(eb->slow == slow0 + 2 && eb->slow_count == 16 &&
		      vb_sub_dropped(s) == 17,
	      "limits: second episode: %d events, %" PRIu64 " dropped",
	      eb->slow - slow0, vb_sub_dropped(s));
	pull_n(s, "sync.lim", 31, 40);
	IS(vb_next_msg(s, 100, &m), VB_ETIMEDOUT);
	OK(vb_unsubscribe(s));

	/* 4. Bytes: 100 bytes hold two messages of 40. */
	OK(vb_subscribe_sync(b, "sync.bytes", NULL, &sb));
	OK(vb_sub_set_pending_limits(sb, -1, 100));
	OK(vb_flush(b, 5000));
	publish_n(a, NULL, "sync.bytes", 1, 5, 40, true);
	await_pending(b, sb, 2, "bytes", NULL);
	CHECK(vb_sub_dropped(sb) == 3 && eb->slow == slow0 + 3 &&
		      eb->slow_sub == sb,
	      "bytes: dropped %" PRIu64, vb_sub_dropped(sb));
	pull_n(sb, "sync.bytes", 1, 2);
	OK(vb_unsubscribe(sb));

	/* 5. A callback subscription: what it holds counts. */
	OK(vb_subscribe(b, "sync.held", NULL, on_hold, &h, &cs));
	OK(vb_sub_set_pending_limits(cs, 3, -1));
	OK(vb_flush(b, 5000));
	publish_n(a, NULL, "sync.held", 1, 5, 40, true);
	await_pending(b, cs, 3, "held", NULL);
	CHECK(h.n == 3 && vb_sub_dropped(cs) == 2 && eb->slow == slow0 + 4 &&
		      eb->slow_sub == cs,
	      "held: %d held, %" PRIu64 " dropped", h.n, vb_sub_dropped(cs));
	for (int i = 0; i < 3; i++) {
		check_msg(h.kept[i], "sync.held", (uint64_t)i + 1, "held");
		vb_msg_release(h.kept[i]);
	}
	OK(vb_sub_pending(cs, &pm, &pb));
	CHECK(pm == 0 && pb == 0, "held: pending after release");
	publish_n(a, NULL, "sync.held", 6, 7, 40, true);
	await_pending(b, cs, 2, "held, again", NULL);
	CHECK(h.n == 5 && vb_sub_dropped(cs) == 2, "held: after release");
	check_msg(h.kept[3], "sync.held", 6, "held");
	check_msg(h.kept[4], "sync.held", 7, "held");
	vb_msg_release(h.kept[3]);
	vb_msg_release(h.kept[4]);
	OK(vb_unsubscribe(cs));
	printf("PASS: sync/limits: 25 into 10: 10 queued, 15 dropped, one "
	       "slow-consumer event; drained, 5 more flowed; a second "
	       "episode, a second event; a 100-byte limit held 2 of 40; a "
	       "callback subscription holding 3 of 3 dropped 2\n");
}

/* ---- ended -------------------------------------------------------------- */

static void case_ended(struct vb_conn *a, struct vb_conn *b)
{
	struct vb_msg *m;
	struct vb_sub *s;
	uint64_t t0;

	OK(vb_subscribe_sync(b, "sync.auto", NULL, &s));
	OK(vb_sub_autounsubscribe(s, 3));
	OK(vb_flush(b, 5000));
	publish_n(a, NULL, "sync.auto", 1, 5, 0, true);
	await_pending(b, s, 3, "ended", NULL);
	pull_n(s, "sync.auto", 1, 3);
	t0 = now_ms();
	IS(vb_next_msg(s, 5000, &m), VB_ECLOSED);
	CHECK(now_ms() - t0 < 1000, "ended: VB_ECLOSED took %" PRIu64 " ms",
	      now_ms() - t0);
	IS(vb_sub_autounsubscribe(s, 10), VB_EINVAL);
	OK(vb_unsubscribe(s));
	printf("PASS: sync/ended: auto-unsubscribed after 3, drained, then "
	       "VB_ECLOSED at once\n");
}

/* ---- locked ------------------------------------------------------------- */

static void *run_conn(void *arg)
{
	int rc = vb_run(arg);

	if (rc)
		die("vb_run: %s", vb_strerror(rc));
	return NULL;
}

struct delayed {
	struct vb_conn *a; /* publish one message on it */
	struct vb_sub *s; /* or unsubscribe it */
	uint64_t at; /* when it was done */
};

static void *publish_later(void *arg)
{
	struct delayed *d = arg;

	usleep(100 * 1000);
	publish_n(d->a, NULL, "sync.lk", 1000, 1000, 100, true);
	d->at = now_ms();
	return NULL;
}

static void *unsubscribe_later(void *arg)
{
	struct delayed *d = arg;

	usleep(100 * 1000);
	OK(vb_unsubscribe(d->s));
	d->at = now_ms();
	return NULL;
}

struct puller {
	struct vb_sub *s;
	uint8_t *seen; /* shared, by number: counts */
	pthread_mutex_t *mu;
	int got;
};

static void *pull_some(void *arg)
{
	struct puller *p = arg;
	struct vb_msg *m;
	unsigned long n;
	char head[32];
	int rc;

	while ((rc = vb_next_msg(p->s, 2000, &m)) == VB_OK) {
		snprintf(head, sizeof(head), "%.*s",
			 (int)(m->size < 31 ? m->size : 31),
			 (const char *)m->data);
		CHECK(sscanf(head, "sync.two#%lu|", &n) == 1 && n >= 1 &&
			      n <= 400,
		      "two pullers: bad message");
		check_msg(m, "sync.two", n, "two pullers");
		pthread_mutex_lock(p->mu);
		p->seen[n]++;
		pthread_mutex_unlock(p->mu);
		p->got++;
		vb_msg_release(m);
	}
	CHECK(rc == VB_ETIMEDOUT, "puller: %s", vb_errname(rc));
	return NULL;
}

static void case_locked(struct vb_conn *a)
{
	struct events ek = { 0 };
	/* No heartbeat: nothing but a message or a wake-up ends a sleep. */
	struct vb_conn *k =
		open_conn("sync-locked", src_b, &ek, VB_OPT_LOCKED, 0, -1);
	struct delayed d = { .a = a };
	uint8_t seen[401] = { 0 };
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	struct puller p1 = { .seen = seen, .mu = &mu };
	struct puller p2 = { .seen = seen, .mu = &mu };
	pthread_t t, tp, tp2;
	struct vb_sub *s, *s2;
	struct vb_msg *m;
	uint64_t t0, c0, slowest = 0;

	CHECK(pthread_create(&t, NULL, run_conn, k) == 0, "thread");
	OK(vb_subscribe_sync(k, "sync.lk", NULL, &s));
	OK(vb_flush(k, 5000));
	/* 1. 300 messages, each pulled at once while the other thread
	 * polls. */
	for (uint64_t burst = 0; burst < 3; burst++) {
		publish_n(a, NULL, "sync.lk", burst * 100 + 1,
			  burst * 100 + 100, 0, true);
		for (uint64_t i = burst * 100 + 1; i <= burst * 100 + 100;
		     i++) {
			t0 = now_ms();
			OK(vb_next_msg(s, 5000, &m));
			if (now_ms() - t0 > slowest)
				slowest = now_ms() - t0;
			check_msg(m, "sync.lk", i, "locked");
			vb_msg_release(m);
		}
	}
	CHECK(slowest < 1000,
	      "locked: a message published already took %" PRIu64 " ms to pull",
	      slowest);
	/* 2. Nothing there: no spinning. */
	IS(vb_next_msg(s, 0, &m), VB_ETIMEDOUT);
	t0 = now_ms();
	c0 = cpu_ms();
	IS(vb_next_msg(s, 300, &m), VB_ETIMEDOUT);
	CHECK(now_ms() - t0 >= 300, "locked: timed out early");
	CHECK(cpu_ms() - c0 < 100,
	      "locked: %" PRIu64 " ms of CPU in a 300 ms wait", cpu_ms() - c0);
	printf("PASS: sync/locked: 300 messages pulled while another thread "
	       "runs vb_run (slowest %" PRIu64
	       " ms); a 300 ms wait used %" PRIu64 " ms of CPU\n",
	       slowest, cpu_ms() - c0);
	/* 3. A waiter asleep, the message processed by either thread. */
	CHECK(pthread_create(&tp, NULL, publish_later, &d) == 0, "thread");
	OK(vb_next_msg(s, 10000, &m));
	t0 = now_ms();
	check_msg(m, "sync.lk", 1000, "woken");
	vb_msg_release(m);
	pthread_join(tp, NULL);
	CHECK((int64_t)(t0 - d.at) < 1000,
	      "locked: woken %" PRId64 " ms after the flush",
	      (int64_t)(t0 - d.at));
	/* 4. Unsubscribed by another thread while waiting. */
	OK(vb_subscribe_sync(k, "sync.gone", NULL, &s2));
	d.s = s2;
	CHECK(pthread_create(&tp, NULL, unsubscribe_later, &d) == 0, "thread");
	IS(vb_next_msg(s2, 10000, &m), VB_ECLOSED);
	t0 = now_ms();
	pthread_join(tp, NULL);
	CHECK((int64_t)(t0 - d.at) < 1000,
	      "locked: woken %" PRId64 " ms after the unsubscribe",
	      (int64_t)(t0 - d.at));
	/* 5. Two threads pulling from one subscription. */
	OK(vb_subscribe_sync(k, "sync.two", NULL, &p1.s));
	p2.s = p1.s;
	OK(vb_flush(k, 5000));
	CHECK(pthread_create(&tp, NULL, pull_some, &p1) == 0 &&
		      pthread_create(&tp2, NULL, pull_some, &p2) == 0,
	      "thread");
	publish_n(a, NULL, "sync.two", 1, 400, 0, true);
	pthread_join(tp, NULL);
	pthread_join(tp2, NULL);
	CHECK(p1.got + p2.got == 400, "two pullers: %d + %d", p1.got, p2.got);
	for (int i = 1; i <= 400; i++)
		CHECK(seen[i] == 1, "two pullers: #%d seen %d times", i,
		      seen[i]);
	OK(vb_unsubscribe(p1.s));
	OK(vb_unsubscribe(s));
	vb_stop(k);
	pthread_join(t, NULL);
	CHECK(ek.disconnected == 0, "locked: disconnected");
	vb_close(k);
	printf("PASS: sync/locked: a sleeping waiter woken by a message and "
	       "by vb_unsubscribe from other threads; two pullers shared 400 "
	       "messages (%d + %d), none twice\n",
	       p1.got, p2.got);
}

/* ---- inbox -------------------------------------------------------------- */

static void on_service(struct vb_conn *c, const struct vb_msg *m, void *arg)
{
	char buf[64];
	int n;

	n = snprintf(buf, sizeof(buf), "%s:%.*s", (const char *)arg,
		     (int)m->size, (const char *)m->data);
	OK(vb_respond(c, m, buf, (size_t)n));
}

static void case_inbox(struct vb_conn *b)
{
	static const char *names[3] = { "r1", "r2", "r3" };
	struct events er[3] = { { 0 } };
	struct vb_stats st0 = { .sz = sizeof(st0) },
			st1 = { .sz = sizeof(st1) };
	struct vb_stats before = { .sz = sizeof(before) };
	char inbox[VB_INBOX_LEN], inbox2[VB_INBOX_LEN], under[VB_INBOX_LEN + 4];
	struct vb_conn *r[3];
	pthread_t t[3];
	struct vb_sub *s, *su;
	struct vb_msg *m;
	bool got[3] = { false };
	uint64_t pm;

	for (int i = 0; i < 3; i++) {
		r[i] = open_conn(names[i], src_a, &er[i], 0, 0, 0);
		OK(vb_subscribe(r[i], "sync.svc", NULL, on_service,
				(void *)names[i], NULL));
		OK(vb_flush(r[i], 5000));
		CHECK(pthread_create(&t[i], NULL, run_conn, r[i]) == 0,
		      "thread");
	}
	OK(vb_new_inbox(b, inbox, sizeof(inbox)));
	OK(vb_new_inbox(b, inbox2, sizeof(inbox2)));
	CHECK(strcmp(inbox, inbox2) != 0, "inbox: %s twice", inbox);
	OK(vb_subscribe_sync(b, inbox, NULL, &s));
	snprintf(under, sizeof(under), "%s.>", inbox);
	OK(vb_subscribe_sync(b, under, NULL, &su));
	OK(vb_flush(b, 5000));
	OK(vb_stats(b, &before));
	/* The request mux first (it is made at the first request): its
	 * extra two answers are orphans, and not the inbox's. */
	OK(vb_request(b, "sync.svc", "q", 1, 5000, &m));
	CHECK(m->size == 4 && memcmp((const char *)m->data + 2, ":q", 2) == 0,
	      "inbox: request answered \"%.*s\"", (int)m->size,
	      (const char *)m->data);
	vb_msg_release(m);
	IS(vb_next_msg(s, 300, &m), VB_ETIMEDOUT); /* the others come in */
	OK(vb_stats(b, &st0));
	CHECK(st0.orphans - before.orphans == 2,
	      "inbox: %" PRIu64 " orphans after a request 3 answered",
	      st0.orphans - before.orphans);
	/* Scatter/gather. */
	OK(vb_publish_reply(b, "sync.svc", inbox, "ping", 4));
	for (int i = 0; i < 3; i++) {
		int k;

		OK(vb_next_msg(s, 5000, &m));
		CHECK(m->size == 7 && m->subject_len == strlen(inbox) &&
			      memcmp(m->subject, inbox, m->subject_len) == 0 &&
			      memcmp((const char *)m->data + 2, ":ping", 5) ==
				      0,
		      "inbox: reply \"%.*s\"", (int)m->size,
		      (const char *)m->data);
		k = ((const char *)m->data)[1] - '1';
		CHECK(k >= 0 && k < 3 && !got[k], "inbox: reply %.*s twice",
		      (int)m->size, (const char *)m->data);
		got[k] = true;
		vb_msg_release(m);
	}
	IS(vb_next_msg(s, 300, &m), VB_ETIMEDOUT); /* exactly 3 */
	OK(vb_sub_pending(su, &pm, NULL));
	CHECK(pm == 0, "inbox: %" PRIu64 " under the inbox", pm);
	OK(vb_stats(b, &st1));
	CHECK(st1.orphans == st0.orphans,
	      "inbox: the request mux saw %" PRIu64 " of the inbox's replies",
	      st1.orphans - st0.orphans);
	/* Replies under the inbox go to its "<inbox>.>" subscription. */
	snprintf(under, sizeof(under), "%s.x", inbox);
	OK(vb_publish_reply(b, "sync.svc", under, "sub", 3));
	for (int i = 0; i < 3; i++) {
		OK(vb_next_msg(su, 5000, &m));
		vb_msg_release(m);
	}
	IS(vb_next_msg(s, 100, &m), VB_ETIMEDOUT);
	OK(vb_stats(b, &st1));
	CHECK(st1.orphans == st0.orphans, "inbox: orphans under the inbox");
	OK(vb_unsubscribe(s));
	OK(vb_unsubscribe(su));
	for (int i = 0; i < 3; i++) {
		vb_stop(r[i]);
		pthread_join(t[i], NULL);
		vb_close(r[i]);
	}
	printf("PASS: sync/inbox: %s gathered 3 responders' replies, exactly; "
	       "vb_request on the same connection answered; neither saw the "
	       "other's messages\n",
	       inbox);
}

int main(int argc, char **argv)
{
	struct events ea = { 0 }, eb = { 0 };
	struct vb_conn *a, *b;

	if (argc != 4) {
		fprintf(stderr, "usage: vb_libsync URL SOURCE-A SOURCE-B\n");
		return 2;
	}
	url = argv[1];
	src_a = argv[2];
	src_b = argv[3];
	setvbuf(stdout, NULL, _IOLBF, 0);
	a = open_conn("sync-a", src_a, &ea, 0, 0, 0);
	b = open_conn("sync-b", src_b, &eb, 0, 0, 0);
	case_badargs(b);
	case_order(a, b);
	case_timeouts(b);
	case_lag(a);
	case_limits(a, b, &eb);
	case_ended(a, b);
	case_locked(a);
	case_inbox(b);
	CHECK(ea.disconnected == 0 && eb.disconnected == 0, "disconnected");
	vb_close(a);
	vb_close(b);
	printf("PASS: vb_libsync\n");
	return 0;
}
