/*
 * faults.c - vb_faults, libverbus clients for the fault-injection tests
 * (tests/rdma/faults.sh) against a running verbusd.
 *
 *   vb_faults churn URL SRC N
 *       N times: connect, subscribe, publish 10 messages to itself,
 *       receive them, close.  Prints the rate.
 *   vb_faults stream URL PUB-SRC SUB-SRC N
 *       N messages in all, from publishers that come and go (each
 *       publishes a run of its own numbered messages, then closes and a new
 *       one starts), to one subscriber that stays for the whole run and
 *       subscribers that come and go.  Checks, per publisher: the staying
 *       subscriber got every message exactly once and in order; each
 *       transient subscriber got one contiguous, ordered run (it may start
 *       and end anywhere).  Run against a broker in block mode.
 *   vb_faults link URL PUB-SRC SUB-SRC SECONDS
 *       a publisher streams numbered messages to a subscriber for SECONDS;
 *       prints "CUT-NOW" a third of the way in (the driver takes the
 *       publisher's link down and up again).  Checks: what arrived is in
 *       order without duplicates; a gap only where a connection was lost
 *       (at most once); traffic flows again afterwards, both connections
 *       are open, and the last message published arrives.
 * Exit 0 pass, 1 fail.
 */
#include <verbus/verbus.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PUB_MAX 4096

static const char *url;

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt,
								...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "FAIL: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct evs {
	int disconnected, reconnected;
};

static void on_event(struct vb_conn *c, const struct vb_event *ev, void *arg)
{
	struct evs *e = arg;

	(void)c;
	if (ev->type == VB_EV_DISCONNECTED) {
		e->disconnected++;
		printf("event: disconnected: %s\n", ev->detail);
	} else if (ev->type == VB_EV_RECONNECTED) {
		e->reconnected++;
		printf("event: reconnected\n");
	} else if (ev->type == VB_EV_NOTICE || ev->type == VB_EV_DROPPED) {
		die("unexpected event %d: %s", ev->type, ev->detail);
	}
}

static struct vb_conn *conn(const char *name, const char *src, struct evs *e)
{
	struct vb_opts o = VB_OPTS_INIT;
	struct vb_conn *c;
	int rc;

	o.name = name;
	o.source = src;
	o.on_event = e ? on_event : NULL;
	o.event_arg = e;
	o.reconnect_wait_ms = 50;
	o.reconnect_wait_max_ms = 500;
	o.reconnect_max = -1;
	rc = vb_connect(url, &o, &c);
	if (rc)
		die("connect %s: %s", name, vb_strerror(rc));
	return c;
}

/* Payload: publisher id and sequence number, both u64. */
static void decode(const struct vb_msg *m, uint64_t *id, uint64_t *seq)
{
	if (m->size != 16)
		die("message of %zu bytes", m->size);
	memcpy(id, m->data, 8);
	memcpy(seq, (const char *)m->data + 8, 8);
}

/* ---- churn -------------------------------------------------------------- */

static void on_count(struct vb_conn *c, const struct vb_msg *m, void *arg)
{
	(void)c;
	(void)m;
	(*(int *)arg)++;
}

static void run_churn(const char *src, int n)
{
	uint64_t t0 = now_ms();
	char subj[32];

	for (int i = 0; i < n; i++) {
		struct vb_conn *c = conn("churn", src, NULL);
		int got = 0, rc;
		uint64_t end;

		snprintf(subj, sizeof(subj), "churn.%d", i);
		if ((rc = vb_subscribe(c, subj, NULL, on_count, &got, NULL)) ||
		    (rc = vb_flush(c, 5000)))
			die("cycle %d: subscribe: %s", i, vb_strerror(rc));
		for (int k = 0; k < 10; k++)
			if ((rc = vb_publish(c, subj, "x", 1)))
				die("cycle %d: publish: %s", i,
				    vb_strerror(rc));
		end = now_ms() + 5000;
		while (got < 10 && now_ms() < end)
			vb_poll(c, 10);
		if (got != 10)
			die("cycle %d: %d of 10 messages", i, got);
		vb_close(c);
	}
	printf("PASS: %d connect/subscribe/publish/close cycles in %.1f s\n", n,
	       (double)(now_ms() - t0) / 1000.0);
}

/* ---- stream -------------------------------------------------------------- */

struct track {
	uint64_t next[PUB_MAX]; /* the seq expected next, per publisher */
	bool seen[PUB_MAX];
	bool contiguous_only; /* transient: may start anywhere */
	bool allow_gaps; /* across a lost connection (link test) */
	uint64_t got, gaps;
	const char *who;
};

static void on_stream(struct vb_conn *c, const struct vb_msg *m, void *arg)
{
	struct track *t = arg;
	uint64_t id, seq;

	(void)c;
	decode(m, &id, &seq);
	if (id >= PUB_MAX)
		die("%s: publisher id %" PRIu64, t->who, id);
	if (!t->seen[id]) {
		t->seen[id] = true;
		if (t->contiguous_only)
			t->next[id] = seq;
		else
			t->next[id] = 1;
	}
	if (seq > t->next[id] && t->allow_gaps) {
		t->gaps += seq - t->next[id];
		t->next[id] = seq;
	}
	if (seq != t->next[id])
		die("%s: publisher %" PRIu64 ": got %" PRIu64
		    ", expected %" PRIu64 " (%s)",
		    t->who, id, seq, t->next[id],
		    seq < t->next[id] ? "duplicate or reordered" : "lost");
	t->next[id] = seq + 1;
	t->got++;
}

static void poll_all(struct vb_conn **cs, int n)
{
	for (int i = 0; i < n; i++)
		if (cs[i])
			vb_poll(cs[i], 0);
}

static void run_stream(const char *psrc, const char *ssrc, uint64_t total)
{
	enum { RUN = 20000, TRANSIENT = 2 };
	struct track *stay = calloc(1, sizeof(*stay));
	struct track *tt[TRANSIENT];
	struct vb_conn *cs[2 + TRANSIENT] = { 0 };
	uint64_t sent = 0, pubs = 0, runs_t = 0, t0 = now_ms(), end;
	uint8_t buf[16];
	int rc;

	if (!stay)
		die("oom");
	stay->who = "staying subscriber";
	cs[1] = conn("stay", ssrc, NULL);
	if ((rc = vb_subscribe(cs[1], "stream.>", NULL, on_stream, stay,
			       NULL)) ||
	    (rc = vb_flush(cs[1], 5000)))
		die("subscribe: %s", vb_strerror(rc));
	for (int k = 0; k < TRANSIENT; k++)
		tt[k] = NULL;
	while (sent < total) {
		/* A new publisher for the next run. */
		uint64_t id = ++pubs,
			 n = total - sent < RUN ? total - sent : RUN;

		if (id >= PUB_MAX)
			die("too many publishers");
		cs[0] = conn("pub", psrc, NULL);
		memcpy(buf, &id, 8);
		for (uint64_t s = 1; s <= n; s++) {
			memcpy(buf + 8, &s, 8);
			while ((rc = vb_publish(cs[0], "stream.x", buf, 16)) ==
			       VB_EAGAIN)
				poll_all(cs, 2 + TRANSIENT);
			if (rc)
				die("publish: %s", vb_strerror(rc));
			if (s % 256 == 0)
				poll_all(cs, 2 + TRANSIENT);
			/* Transient subscribers come and go mid-run. */
			if (s % 5000 == 0) {
				int k = (int)((s / 5000) % TRANSIENT);

				if (cs[2 + k]) {
					vb_close(cs[2 + k]);
					cs[2 + k] = NULL;
					free(tt[k]);
					tt[k] = NULL;
				} else {
					tt[k] = calloc(1, sizeof(*tt[k]));
					if (!tt[k])
						die("oom");
					tt[k]->contiguous_only = true;
					tt[k]->who = "transient subscriber";
					cs[2 + k] =
						conn("transient", ssrc, NULL);
					if (vb_subscribe(cs[2 + k], "stream.>",
							 NULL, on_stream, tt[k],
							 NULL))
						die("transient subscribe");
					runs_t++;
				}
			}
		}
		/* Everything it published was routed: then it leaves. */
		end = now_ms() + 60000;
		while ((rc = vb_flush(cs[0], 10)) == VB_ETIMEDOUT &&
		       now_ms() < end)
			poll_all(cs, 2 + TRANSIENT);
		if (rc)
			die("publisher flush: %s", vb_strerror(rc));
		vb_close(cs[0]);
		cs[0] = NULL;
		sent += n;
	}
	end = now_ms() + 60000;
	while (stay->got < total && now_ms() < end)
		poll_all(cs, 2 + TRANSIENT);
	for (uint64_t id = 1; id <= pubs; id++)
		if (stay->next[id] !=
		    (id < pubs || total % RUN == 0 ? RUN + 1 : total % RUN + 1))
			die("publisher %" PRIu64 ": the staying subscriber "
			    "ended at %" PRIu64,
			    id, stay->next[id] - 1);
	if (stay->got != total)
		die("staying subscriber: %" PRIu64 " of %" PRIu64, stay->got,
		    total);
	for (int k = 0; k < TRANSIENT; k++) {
		vb_close(cs[2 + k]);
		free(tt[k]);
	}
	vb_close(cs[1]);
	free(stay);
	printf("PASS: %" PRIu64 " messages from %" PRIu64
	       " publishers that came and went, %" PRIu64
	       " transient subscribers: nothing lost, duplicated or "
	       "reordered (%.1f s)\n",
	       total, pubs, runs_t, (double)(now_ms() - t0) / 1000.0);
}

/* ---- link ---------------------------------------------------------------- */

static void run_link(const char *psrc, const char *ssrc, int seconds)
{
	struct track *t = calloc(1, sizeof(*t));
	struct evs ep = { 0 }, es = { 0 };
	struct vb_conn *p, *s;
	uint64_t seq = 0, t0 = now_ms(), end, gaps = 0, cut_at;
	uint8_t buf[16];
	uint64_t id = 1;
	bool cut = false;
	int rc;

	if (!t)
		die("oom");
	t->who = "subscriber";
	t->contiguous_only = true;
	t->allow_gaps = true;
	p = conn("link-pub", psrc, &ep);
	s = conn("link-sub", ssrc, &es);
	if ((rc = vb_subscribe(s, "link.x", NULL, on_stream, t, NULL)) ||
	    (rc = vb_flush(s, 5000)))
		die("subscribe: %s", vb_strerror(rc));
	memcpy(buf, &id, 8);
	cut_at = t0 + (uint64_t)seconds * 1000 / 3;
	end = t0 + (uint64_t)seconds * 1000;
	while (now_ms() < end) {
		/* About 2000 messages a second, each numbered. */
		seq++;
		memcpy(buf + 8, &seq, 8);
		rc = vb_publish(p, "link.x", buf, 16);
		if (rc == VB_EAGAIN)
			seq--; /* buffer full while the link is down */
		else if (rc)
			die("publish: %s", vb_strerror(rc));
		vb_poll(p, 0);
		vb_poll(s, 0);
		if (!cut && now_ms() >= cut_at) {
			printf("CUT-NOW at seq %" PRIu64 "\n", seq);
			fflush(stdout);
			cut = true;
		}
		for (int i = 0; i < 5; i++) {
			vb_poll(p, 0);
			vb_poll(s, 0);
		}
		{
			struct timespec ts = { 0, 500000 };

			nanosleep(&ts, NULL);
		}
	}
	/* The last message must arrive: everything after the cut is back. */
	end = now_ms() + 30000;
	while ((!vb_is_connected(p) || !vb_is_connected(s) ||
		t->next[1] != seq + 1) &&
	       now_ms() < end) {
		vb_poll(p, 1);
		vb_poll(s, 1);
	}
	if (t->next[1] != seq + 1)
		die("the last message (%" PRIu64 ") never arrived: got up to "
		    "%" PRIu64,
		    seq, t->next[1] - 1);
	gaps = t->gaps;
	if (t->got + gaps + 1 < seq) /* before the first delivery: none */
		die("%" PRIu64 " published, %" PRIu64 " received, %" PRIu64
		    " gaps",
		    seq, t->got, gaps);
	if (gaps && !ep.disconnected && !es.disconnected)
		die("%" PRIu64 " messages lost without a connection loss",
		    gaps);
	printf("PASS: link cut: %" PRIu64 " published, %" PRIu64
	       " received in order without duplicates, %" PRIu64
	       " lost with the connection (publisher: %d disconnects, %d "
	       "reconnects; subscriber: %d, %d)\n",
	       seq, t->got, gaps, ep.disconnected, ep.reconnected,
	       es.disconnected, es.reconnected);
	vb_close(p);
	vb_close(s);
	free(t);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 5 && !strcmp(argv[1], "churn")) {
		url = argv[2];
		run_churn(argv[3], atoi(argv[4]));
	} else if (argc == 6 && !strcmp(argv[1], "stream")) {
		url = argv[2];
		run_stream(argv[3], argv[4], strtoull(argv[5], NULL, 10));
	} else if (argc == 6 && !strcmp(argv[1], "link")) {
		url = argv[2];
		run_link(argv[3], argv[4], atoi(argv[5]));
	} else {
		fprintf(stderr,
			"usage: vb_faults churn URL SRC N\n"
			"       vb_faults stream URL PUB-SRC SUB-SRC N\n"
			"       vb_faults link URL PUB-SRC SUB-SRC SECONDS\n");
		return 2;
	}
	return 0;
}
