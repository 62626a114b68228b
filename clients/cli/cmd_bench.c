/*
 * cmd_bench.c - `verbus bench`: latency, request/reply round trip,
 * throughput and fan-out, all through the broker.
 *
 * One thread drives every connection of a run (a publisher and one or
 * more subscribers, each its own vb_conn, possibly from different local
 * addresses): each round calls vb_process() on all of them and, when none
 * had work, sleeps in epoll_wait() on their vb_fd()s (or spins, with
 * --busy-poll).  Blocking calls that progress only one connection
 * (vb_flush, vb_request) are used only before messages flow: a publisher
 * waiting on its own flush while its subscriber is not being read would
 * wait for the broker's block policy to give up.
 *
 * Every payload starts with a sequence number and the CLOCK_MONOTONIC
 * time it was sent (the publisher and the subscribers share the clock:
 * one process).  Receivers mark sequence numbers in a bitmap, so lost and
 * duplicated messages are counted exactly and reported, and any makes the
 * exit status 1: a benchmark cannot pass on messages that never came.
 *
 * --sub-server connects the subscribers and the responder to another
 * broker of a cluster than the publisher's: the path crosses a route.
 * Interest crosses it asynchronously, and a broker drops what nobody it
 * knows of wants, so each run first sends probes (their sequence number
 * PROBE_SEQ, never one of the run's) until every receiver has had one.
 * --direct streams likewise first send probes until the publisher writes
 * them straight to every subscriber (its direct paths switched on), so
 * that the clock times direct messages and not the paths' set-up.
 */
#include "cli/common.h"
#include "cli/stats.h"
#include "core/prof.h"

#include <json-c/json.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define MAX_SIZES 16
#define MAX_SUBS 256
/* Payload bytes every benchmark message starts with: seq, send time. */
#define HDR_BYTES 16
/* Messages published before the connections are driven again. */
#define BURST 64
/* How often the progress line is redrawn, and after how long a run. */
#define PROGRESS_NS 200000000u
#define PROGRESS_AFTER_NS 500000000u
/* The sequence number of a --sub-server probe; receivers count none. */
#define PROBE_SEQ UINT64_MAX
/* How long a probe is given before the next is sent. */
#define PROBE_MS 100

/* The four benchmarks, in the order they run. */
enum test {
	T_LATENCY,
	T_RTT,
	T_THROUGHPUT,
	T_FANOUT,
	T_COUNT,
};

static const char *const test_names[T_COUNT] = { "latency", "rtt", "throughput",
						 "fanout" };

enum {
	OPT_SIZES = CLI_OPT_FIRST_OWN,
	OPT_SAMPLES,
	OPT_WARMUP,
	OPT_SUBS,
	OPT_PUB_SOURCE,
	OPT_SUB_SOURCE,
	OPT_BUSY_POLL,
	OPT_SUBJECT,
	OPT_RING,
	OPT_MAX_MSG,
	OPT_SPIN,
	OPT_SUB_SERVER,
};

/* One result line. */
struct row {
	enum test test; /* which benchmark */
	uint64_t size; /* payload bytes */
	uint64_t subs; /* subscribers (throughput, fan-out) */
	uint64_t messages; /* published (latency: samples measured) */
	double seconds; /* first publish to last delivery */
	double msgs_s, mb_s; /* deliveries, all subscribers together */
	struct cli_lat lat; /* latency, rtt */
	uint64_t lost, dup, bad; /* never came, came twice, malformed */
	/* --direct streams: the publisher's fan-out bytes during the run,
	 * sent from its one staged copy (gathered) and copied again. */
	uint64_t fan_gathered, fan_copied;
};

/* One connection of a run. */
struct bconn {
	struct vb_conn *c; /* open */
	struct cli_events ev; /* its events */
	bool ready; /* the last epoll_wait() reported its vb_fd() */
};

/* A receiving end: what it got. */
struct rx {
	struct bench *b; /* the benchmark */
	struct cli_seqset seen; /* sequence numbers that arrived */
	struct cli_samples *lat; /* latency samples, or NULL */
	uint64_t warmup; /* sequence numbers below it are not sampled */
	uint64_t size; /* expected payload size */
	uint64_t bad; /* wrong size or sequence number */
	uint64_t t_last; /* when the last message arrived */
	bool done; /* rtt: the request's callback ran */
	bool probed; /* a --sub-server probe came */
};

/* The whole command. */
struct bench {
	struct cli_cmd cmd; /* shared options */
	enum cli_format fmt; /* --format */
	bool want[T_COUNT]; /* which benchmarks run */
	uint64_t sizes[MAX_SIZES]; /* --sizes */
	size_t nsizes;
	uint64_t count; /* --count: messages per throughput run */
	uint64_t samples; /* --samples: per latency run */
	uint64_t warmup; /* --warmup: unsampled messages first */
	uint64_t subs; /* --subs: fan-out subscribers */
	const char *pub_source; /* --pub-source, else --source */
	const char *sub_source; /* --sub-source, else --source */
	const char *sub_url; /* --sub-server, or NULL: -s */
	struct cli_cmd sub_cmd; /* -s's settings with @sub_url's servers */
	bool busy; /* --busy-poll */
	int spin_us; /* --spin: adaptive polling before each sleep */
	bool recent_work; /* the last drive() had work: --spin applies */
	int timeout_ms; /* --timeout: longest wait without progress */
	char prefix[128]; /* subjects start with it */
	int epfd; /* every open connection's vb_fd() */
	struct bconn conns[MAX_SUBS + 1]; /* open connections */
	size_t nconns;
	struct row *rows; /* results so far */
	size_t nrows;
	bool tty; /* stderr is a terminal: show progress */
	uint64_t run_start; /* this run began (progress) */
	uint64_t progress_ns; /* the progress line was last drawn */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: verbus bench [options] [TEST...]\n"
		"\n"
		"Measure the broker with this process as publisher and "
		"subscribers (each its\nown connection).  TESTs, all by "
		"default:\n"
		"  latency      publisher -> broker -> subscriber, one "
		"message in flight:\n"
		"               min/p50/p90/p99/p99.9/max in microseconds\n"
		"  rtt          request -> responder -> reply round trip, one "
		"in flight\n"
		"  throughput   one publisher, one subscriber, as fast as "
		"credit allows:\n"
		"               messages/s and MB/s delivered\n"
		"  fanout       one publisher, --subs subscribers: deliveries/s "
		"and MB/s\n"
		"               of all subscribers together\n"
		"Every message carries a sequence number; lost or duplicated "
		"ones are\nreported and make the exit status 1.\n"
		"\n"
		"  -z, --sizes LIST      payload sizes, at least 16 bytes "
		"[64,1024,16384]\n"
		"  -n, --count N         messages per throughput/fan-out run "
		"[100000]\n"
		"      --samples N       messages measured per latency/rtt run "
		"[10000]\n"
		"      --warmup N        messages sent before measuring [100]\n"
		"      --subs N          fan-out subscribers, 1-256 [4]\n"
		"      --pub-source ADDR local address of the publisher "
		"[--source]\n"
		"      --sub-source ADDR local address of the subscribers "
		"[--source]\n"
		"      --sub-server URL  connect the subscribers and the "
		"responder to this\n"
		"                        broker (another of -s's cluster: "
		"probes first wait\n"
		"                        until its interest reached -s) "
		"[-s]\n"
		"      --busy-poll       spin instead of sleeping (lowest "
		"latency, a full CPU)\n"
		"      --spin US         after work, poll US microseconds before "
		"sleeping [0]\n"
		"      --ring SIZE       each connection's receive ring (a "
		"power of 2)\n"
		"      --max-msg SIZE    largest subject + payload each "
		"connection accepts [64K]\n"
		"      --subject PREFIX  subjects used [bench.PID]\n"
		"  -t, --timeout MS      give a run up after MS without "
		"progress [10s]\n"
		"  -f, --format FMT      table, csv or json [table]\n"
		"\n" CLI_COMMON_HELP);
}

/* ---- connections -------------------------------------------------------- */

/* @flags: VB_OPT_* beyond the run's (latency runs: VB_OPT_NODELAY);
 * @sub: a subscriber or responder, connected to --sub-server if given. */
static int open_conn(struct bench *b, bool sub, const char *name,
		     unsigned flags, struct vb_conn **out)
{
	const struct cli_cmd *cmd = sub && b->sub_url ? &b->sub_cmd : &b->cmd;
	const char *source = sub ? b->sub_source : b->pub_source;
	struct bconn *bc = &b->conns[b->nconns];
	struct epoll_event e = { .events = EPOLLIN };

	flags |= VB_OPT_NO_RECONNECT | (b->busy ? VB_OPT_BUSY_POLL : 0);
	memset(bc, 0, sizeof(*bc));
	bc->ev.quiet = true;
	if (cli_connect(cmd, flags, source, name, &bc->ev, &bc->c))
		return -1;
	e.data.u64 = b->nconns;
	if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, vb_fd(bc->c), &e)) {
		cli_error(&b->cmd, "epoll_ctl: %s", strerror(errno));
		vb_close(bc->c);
		return -1;
	}
	b->nconns++;
	*out = bc->c;
	return 0;
}

static void close_conns(struct bench *b)
{
	while (b->nconns) {
		struct bconn *bc = &b->conns[--b->nconns];

		epoll_ctl(b->epfd, EPOLL_CTL_DEL, vb_fd(bc->c), NULL);
		vb_close(bc->c);
	}
}

/*
 * --spin: poll every connection, without sleeping, until one has work or
 * spin_us passes.  Returns the work done; a closed connection stops the
 * spin, and the next vb_process() in drive() reports it.
 */
static int spin(struct bench *b)
{
	uint64_t end = cli_now_ns() + (uint64_t)b->spin_us * 1000u;
	unsigned pass = 0;
	int n = 0, rc;
	size_t i;

	/* The precise clock one pass in 16, as in await(). */
	do {
		for (i = 0; i < b->nconns; i++) {
			rc = vb_spin(b->conns[i].c, 0);
			if (rc < 0)
				return n;
			n += rc;
		}
	} while (n == 0 && ((++pass & 15) != 0 || cli_now_ns() < end));
	return n;
}

/* Sleep on the connections' fds up to @wait_ms and mark the ready ones;
 * returns whether any was. */
static bool wait_ready(struct bench *b, int wait_ms)
{
	struct epoll_event evs[MAX_SUBS + 1];
	int k, i;

	k = epoll_wait(b->epfd, evs, sizeof(evs) / sizeof(evs[0]), wait_ms);
	for (i = 0; i < k; i++)
		if (evs[i].data.u64 < b->nconns)
			b->conns[evs[i].data.u64].ready = true;
	return k > 0;
}

/*
 * Progress the connections that have work, sleeping (at most @wait_ms; 0:
 * never) until one has.  Returns the events handled, or -1 once a
 * connection is closed (after saying so).
 *
 * Event-driven, the fds say which connections have work: a vb_fd() is
 * readable whenever its connection has some (arrivals, completions,
 * frames staged outside vb_process(), timers) and stays so until it is
 * processed, so the loop sleeps on them first (at once back if one is
 * ready) and processes only those reported; asking every connection
 * would cost each a look at its own epoll set.  Busy-polling, with
 * @wait_ms 0, after a sleep that timed out, and before an adaptive
 * spin, every connection is processed.
 */
static int drive(struct bench *b, int wait_ms)
{
	bool event = !b->busy && wait_ms != 0, woken = false;
	int n = 0, rc;
	size_t i;

	if (event && !(b->spin_us && b->recent_work))
		woken = wait_ready(b, wait_ms);
	for (i = 0; i < b->nconns; i++) {
		if (woken && !b->conns[i].ready)
			continue;
		b->conns[i].ready = false;
		rc = vb_process(b->conns[i].c);
		if (rc < 0 || b->conns[i].ev.closed) {
			cli_error(&b->cmd, "connection %zu closed: %s", i,
				  vb_strerror(b->conns[i].ev.closed ?
						      b->conns[i].ev.close_err :
						      rc));
			return -1;
		}
		n += rc;
	}
	if (n == 0 && event && b->spin_us && b->recent_work)
		n = spin(b);
	b->recent_work = n > 0;
	return n;
}

/* ---- payloads and receivers ------------------------------------------- */

/* @stamp: the send time too.  Streams measure no latency, and read no
 * clock per message: on some machines (a guest on hpet) each read is a
 * system call, and with 8 subscribers 8 of them per message. */
static void put_header(char *buf, uint64_t seq, bool stamp)
{
	uint64_t t = stamp ? cli_now_ns() : 0;

	memcpy(buf, &seq, sizeof(seq));
	memcpy(buf + 8, &t, sizeof(t));
}

/* The pattern after the header, so that payloads are not all zeros. */
static char *new_payload(uint64_t size)
{
	char *buf = malloc(size);
	uint64_t i;

	for (i = HDR_BYTES; buf && i < size; i++)
		buf[i] = (char)('a' + i % 26);
	return buf;
}

/* Account for one arrival at @r; returns its sequence number, or
 * UINT64_MAX if it was malformed.  A stream's arrivals are timed with the
 * coarse clock; run_stream() reads the precise one when the last arrives. */
static uint64_t rx_account(struct rx *r, const void *data, size_t size)
{
	uint64_t seq, t, now = r->lat ? cli_now_ns() : cli_coarse_ns();
	int first;

	if (size != r->size || size < HDR_BYTES) {
		r->t_last = now;
		r->bad++;
		return UINT64_MAX;
	}
	memcpy(&seq, data, sizeof(seq));
	if (seq == PROBE_SEQ) {
		r->probed = true;
		return UINT64_MAX;
	}
	r->t_last = now;
	memcpy(&t, (const char *)data + 8, sizeof(t));
	first = cli_seqset_mark(&r->seen, seq);
	if (first < 0) {
		r->bad++;
		return UINT64_MAX;
	}
	if (first == 0 && r->lat && seq >= r->warmup && now >= t)
		cli_samples_add(r->lat, now - t);
	return seq;
}

static void on_msg(struct vb_conn *c, const struct vb_msg *m, void *arg)
{
	(void)c;
	rx_account(arg, m->data, m->size);
	VBI_PROF(VBI_PROF_DONE);
}

static void on_echo(struct vb_conn *c, const struct vb_msg *m, void *arg)
{
	struct rx *r = arg;

	if (vb_respond(c, m, m->data, m->size) != VB_OK)
		r->bad++;
}

static void on_reply(struct vb_conn *c, const struct vb_msg *m, int err,
		     void *arg)
{
	struct rx *r = arg;

	(void)c;
	(void)err;
	r->done = true;
	if (m != NULL)
		rx_account(r, m->data, m->size);
	VBI_PROF(VBI_PROF_DONE);
}

static void rx_fini(struct rx *r)
{
	cli_seqset_fini(&r->seen);
}

/* ---- progress ----------------------------------------------------------- */

static void progress(struct bench *b, enum test t, uint64_t size, uint64_t done,
		     uint64_t total)
{
	uint64_t now;

	if (!b->tty || b->fmt != CLI_FMT_TABLE)
		return;
	now = cli_now_ns();
	if (now - b->run_start < PROGRESS_AFTER_NS ||
	    now - b->progress_ns < PROGRESS_NS)
		return;
	b->progress_ns = now;
	fprintf(stderr, "\r\033[Kverbus bench: %s %llu B: %3u%% (%llu/%llu)",
		test_names[t], (unsigned long long)size,
		(unsigned)(total ? done * 100 / total : 0),
		(unsigned long long)done, (unsigned long long)total);
}

static void progress_end(struct bench *b)
{
	if (b->tty && b->progress_ns)
		fputs("\r\033[K", stderr);
	b->progress_ns = 0;
}

/* ---- the runs ----------------------------------------------------------- */

static void subject_of(struct bench *b, enum test t, uint64_t size, uint64_t k,
		       char *buf, size_t len)
{
	snprintf(buf, len, "%s.%s.%llu.%llu", b->prefix, test_names[t],
		 (unsigned long long)size, (unsigned long long)k);
}

/* Subscribe @c and wait until the broker has it. */
static int subscribe(struct bench *b, struct vb_conn *c, const char *subject,
		     vb_msg_cb cb, struct rx *r)
{
	int rc = vb_subscribe_flags(c, subject, NULL,
				    b->cmd.direct ? VB_SUB_DIRECT : 0u, cb, r,
				    NULL);

	if (rc == VB_OK)
		rc = vb_flush(c, CLI_CONFIRM_MS);
	if (rc != VB_OK)
		cli_error(&b->cmd, "cannot subscribe to %s: %s", subject,
			  vb_strerror(rc));
	return rc == VB_OK ? 0 : -1;
}

/* Publish one message, driving every connection while out of credit.
 * Returns 0 or -1 (said why). */
static int publish_wait(struct bench *b, struct vb_conn *p, const char *subject,
			const char *buf, uint64_t size)
{
	uint64_t since = 0;
	int rc;

	for (;;) {
		rc = vb_publish(p, subject, buf, size);
		if (rc != VB_EAGAIN)
			break;
		/* The clock only once out of credit: not on the path that
		 * the latency runs measure. */
		if (since == 0)
			since = cli_coarse_ns();
		if (drive(b, 10) < 0)
			return -1;
		if (cli_coarse_ns() - since >
		    (uint64_t)b->timeout_ms * 1000000u) {
			cli_error(&b->cmd, "no credit to publish for %d ms",
				  b->timeout_ms);
			return -1;
		}
	}
	if (rc != VB_OK) {
		cli_error(&b->cmd, "publishing %llu bytes to %s: %s%s",
			  (unsigned long long)size, subject, vb_strerror(rc),
			  rc == VB_EMSGSIZE ? " (larger than the broker's "
					      "largest message: use smaller "
					      "--sizes)" :
					      "");
		return -1;
	}
	return 0;
}

/*
 * Drive until @r->seen has @seq (rtt: until the request's callback ran),
 * or the timeout passes.  Returns 1 if it came, 0 at the timeout (a lost
 * message), -1 on a closed connection or a signal.  The library times a
 * request out itself after --timeout; we wait a second longer for its
 * callback, which must come.
 */
static int await(struct bench *b, struct rx *r, uint64_t seq, bool rtt)
{
	uint64_t wait = (uint64_t)b->timeout_ms + (rtt ? 1000u : 0u);
	uint64_t end = 0;
	unsigned turn = 0;

	while (!(rtt ? r->done : cli_seqset_has(&r->seen, seq))) {
		if (cli_stop)
			return -1;
		/* The coarse clock (no system call), one turn in 16:
		 * busy-polling spins here, and what it costs would be
		 * measured. */
		if ((turn++ & 15) == 15) {
			uint64_t now = cli_coarse_ns();

			if (end == 0) {
				end = now + wait * 1000000u;
			} else if (now > end) {
				if (!rtt)
					return 0;
				cli_error(&b->cmd,
					  "the request's callback never ran");
				return -1;
			}
		}
		if (drive(b, 50) < 0)
			return -1;
	}
	return 1;
}

/*
 * --sub-server: send probes through @p on @subject (rtt: requests, one at
 * a time, each given PROBE_MS) until each of the @n receivers @rx has had
 * one, driving every connection meanwhile.  Returns 0, or -1 (said why)
 * once --timeout passes or a connection closes.  @buf is the run's
 * payload, its header overwritten.
 */
static int await_interest(struct bench *b, struct vb_conn *p,
			  const char *subject, char *buf, uint64_t size,
			  struct rx *rx, uint64_t n, bool rtt)
{
	uint64_t end = cli_coarse_ns() + (uint64_t)b->timeout_ms * 1000000u;
	uint64_t next = 0, now, k, probes = 0;
	bool asked = false;
	int rc;

	put_header(buf, PROBE_SEQ, false);
	for (;;) {
		for (k = 0; k < n && rx[k].probed; k++)
			;
		if (k == n)
			return 0;
		now = cli_coarse_ns();
		if (now > end || cli_stop) {
			cli_error(&b->cmd,
				  "%s: no probe reached the subscribers on %s "
				  "in %d ms (%llu sent): interest did not "
				  "cross the cluster",
				  subject, b->sub_url, b->timeout_ms,
				  (unsigned long long)probes);
			return -1;
		}
		if (rtt && asked && rx->done)
			asked = false; /* answered, or timed out */
		if (now >= next && !(rtt && asked)) {
			if (rtt) {
				rx->done = false;
				rc = vb_request_async(p, subject, buf, size,
						      PROBE_MS, on_reply, rx);
				if (rc != VB_OK) {
					cli_error(&b->cmd, "probe: %s",
						  vb_strerror(rc));
					return -1;
				}
				asked = true;
			} else if (publish_wait(b, p, subject, buf, size)) {
				return -1;
			}
			probes++;
			next = now + PROBE_MS * 1000000u;
		}
		if (drive(b, 10) < 0)
			return -1;
	}
}

/*
 * --direct streams: send probes through @p on @subject, one at a time,
 * until one is written straight to each of the @n subscribers (vb_stats'
 * direct_msgs_out grows by @n) 10 times in a row: the direct paths are
 * switched on.  Not there within --timeout: said, and the run goes on (it
 * reports what went through the broker).  Returns 0, or -1 (said why).
 */
static int await_direct(struct bench *b, struct vb_conn *p, const char *subject,
			char *buf, uint64_t size, uint64_t n)
{
	uint64_t end = cli_coarse_ns() + (uint64_t)b->timeout_ms * 1000000u;
	struct vb_stats st = { .sz = sizeof(st) };
	uint64_t before, probes = 0;
	unsigned run = 0;

	put_header(buf, PROBE_SEQ, false);
	while (run < 10) {
		if (cli_coarse_ns() > end || cli_stop) {
			fprintf(stderr,
				"verbus bench: %s: the direct paths did not "
				"switch on within %d ms (%llu probes); "
				"measuring all the same\n",
				subject, b->timeout_ms,
				(unsigned long long)probes);
			return 0;
		}
		if (vb_stats(p, &st))
			return -1;
		before = st.direct_msgs_out;
		if (publish_wait(b, p, subject, buf, size))
			return -1;
		probes++;
		if (drive(b, 1) < 0 || vb_stats(p, &st))
			return -1;
		run = st.direct_msgs_out - before == n ? run + 1 : 0;
	}
	/* What the probes left in flight arrives before the clock starts. */
	return drive(b, 10) < 0 ? -1 : 0;
}

/* latency and rtt: one message in flight, @samples of them measured. */
static int run_one_in_flight(struct bench *b, enum test t, uint64_t size,
			     struct row *row)
{
	uint64_t total = b->warmup + b->samples, i;
	struct cli_samples lat = { 0 };
	struct rx r = { .b = b, .size = size, .warmup = b->warmup };
	struct vb_conn *p, *s;
	char subject[192];
	char *buf = new_payload(size);
	int rc = -1;

	subject_of(b, t, size, 0, subject, sizeof(subject));
	if (buf == NULL || cli_samples_init(&lat, b->samples) ||
	    cli_seqset_init(&r.seen, total))
		goto out;
	r.lat = &lat;
	/* One message at a time, each handed to the device at once. */
	if (open_conn(b, true, "bench-sub", VB_OPT_NODELAY, &s) ||
	    open_conn(b, false, "bench-pub", VB_OPT_NODELAY, &p) ||
	    subscribe(b, s, subject, t == T_RTT ? on_echo : on_msg, &r))
		goto out;
	if (b->sub_url &&
	    await_interest(b, p, subject, buf, size, &r, 1, t == T_RTT))
		goto out;
	b->run_start = cli_now_ns();
	for (i = 0; i < total && !cli_stop; i++) {
		put_header(buf, i, true);
		VBI_PROF(VBI_PROF_PUBLISH);
		if (t == T_RTT) {
			r.done = false;
			rc = vb_request_async(p, subject, buf, size,
					      b->timeout_ms, on_reply, &r);
			if (rc != VB_OK) {
				cli_error(&b->cmd, "request: %s",
					  vb_strerror(rc));
				rc = -1;
				goto out;
			}
		} else if (publish_wait(b, p, subject, buf, size)) {
			goto out;
		}
		rc = await(b, &r, i, t == T_RTT);
		if (rc < 0)
			goto out;
		progress(b, t, size, i + 1, total);
	}
	rc = cli_stop ? -1 : 0;
	cli_samples_summary(&lat, &row->lat);
	row->messages = lat.n;
	row->lost = cli_seqset_lost(&r.seen);
	row->dup = r.seen.dup;
	row->bad = r.bad;
out:
	progress_end(b);
	close_conns(b);
	cli_samples_fini(&lat);
	rx_fini(&r);
	free(buf);
	return rc;
}

/* throughput and fanout: @nsubs subscribers, --count messages. */
static int run_stream(struct bench *b, enum test t, uint64_t size,
		      uint64_t nsubs, struct row *row)
{
	uint64_t sent = 0, k, got, last_got = 0, idle_since, t0, t_last = 0;
	struct vb_stats st0 = { .sz = sizeof(st0) }, st1 = st0;
	struct rx *rx = calloc(nsubs, sizeof(*rx));
	struct vb_conn *p, *s;
	char subject[192], name[32];
	char *buf = new_payload(size);
	int rc = -1, n, burst;

	subject_of(b, t, size, nsubs, subject, sizeof(subject));
	if (rx == NULL || buf == NULL) {
		cli_error(&b->cmd, "out of memory");
		goto out;
	}
	for (k = 0; k < nsubs; k++) {
		rx[k] = (struct rx){ .b = b, .size = size };
		if (cli_seqset_init(&rx[k].seen, b->count)) {
			cli_error(&b->cmd, "out of memory");
			goto out;
		}
		snprintf(name, sizeof(name), "bench-sub-%llu",
			 (unsigned long long)k);
		if (open_conn(b, true, name, 0, &s) ||
		    subscribe(b, s, subject, on_msg, &rx[k]))
			goto out;
	}
	if (open_conn(b, false, "bench-pub", 0, &p))
		goto out;
	if (b->sub_url &&
	    await_interest(b, p, subject, buf, size, rx, nsubs, false))
		goto out;
	if (b->cmd.direct && await_direct(b, p, subject, buf, size, nsubs))
		goto out;
	(void)vb_stats(p, &st0);
	t0 = b->run_start = cli_now_ns();
	idle_since = cli_coarse_ns();
	for (;;) {
		for (burst = 0; burst < BURST && sent < b->count; burst++) {
			put_header(buf, sent, false);
			rc = vb_publish(p, subject, buf, size);
			if (rc == VB_EAGAIN)
				break;
			if (rc != VB_OK) {
				cli_error(&b->cmd, "publishing: %s%s",
					  vb_strerror(rc),
					  rc == VB_EMSGSIZE ?
						  " (use smaller --sizes)" :
						  "");
				rc = -1;
				goto out;
			}
			sent++;
		}
		n = drive(b, burst == BURST ? 0 : 10);
		rc = -1;
		if (n < 0)
			goto out;
		for (got = 0, k = 0; k < nsubs; k++)
			got += rx[k].seen.uniq;
		if (got == nsubs * b->count) {
			t_last = cli_now_ns();
			break;
		}
		if (got != last_got || burst) {
			last_got = got;
			idle_since = cli_coarse_ns();
		} else if (cli_coarse_ns() - idle_since >
			   (uint64_t)b->timeout_ms * 1000000u) {
			break; /* what never came is reported as lost */
		}
		if (cli_stop)
			goto out;
		progress(b, t, size, got, nsubs * b->count);
	}
	rc = 0;
	if (sent < b->count)
		cli_error(&b->cmd,
			  "%s %llu B: the publisher had no credit for %d ms "
			  "after %llu of %llu messages",
			  test_names[t], (unsigned long long)size,
			  b->timeout_ms, (unsigned long long)sent,
			  (unsigned long long)b->count);
	row->subs = nsubs;
	row->messages = sent;
	if (b->cmd.direct && vb_stats(p, &st1) == VB_OK) {
		row->fan_gathered =
			st1.direct_fanout_gathered - st0.direct_fanout_gathered;
		row->fan_copied =
			st1.direct_fanout_copied - st0.direct_fanout_copied;
	}
	for (got = 0, k = 0; k < nsubs; k++) {
		got += rx[k].seen.uniq;
		/* Unsent messages count as lost: the run did not deliver
		 * what it was asked to. */
		row->lost += cli_seqset_lost(&rx[k].seen);
		row->dup += rx[k].seen.dup;
		row->bad += rx[k].bad;
		if (rx[k].t_last > t_last)
			t_last = rx[k].t_last;
	}
	if (t_last > t0) {
		row->seconds = (double)(t_last - t0) / 1e9;
		row->msgs_s = (double)got / row->seconds;
		row->mb_s = (double)got * (double)size / row->seconds / 1e6;
	}
out:
	progress_end(b);
	close_conns(b);
	for (k = 0; rx && k < nsubs; k++)
		rx_fini(&rx[k]);
	free(rx);
	free(buf);
	return rc;
}

/* ---- output ------------------------------------------------------------- */

static bool is_latency(enum test t)
{
	return t == T_LATENCY || t == T_RTT;
}

static double us(uint64_t ns)
{
	return (double)ns / 1e3;
}

/* --direct: how the publisher's fan-out sent the rows' messages to its
 * further subscribers (one copy staged, gathered from there, or copied). */
static void print_fanout(const struct bench *b)
{
	bool any = false;
	size_t i;

	for (i = 0; i < b->nrows; i++) {
		const struct row *r = &b->rows[i];

		if (is_latency(r->test) || !(r->fan_gathered + r->fan_copied))
			continue;
		if (!any)
			printf("\ndirect fan-out: bytes sent to further "
			       "subscribers from one copy\n"
			       "%-10s %8s %5s %14s %14s\n",
			       "test", "size", "subs", "gathered", "copied");
		any = true;
		/* Not the test's name: scripts pick a table's rows by it. */
		printf("%-10s %8llu %5llu %14llu %14llu\n",
		       r->test == T_FANOUT ? "fan-out" : "stream",
		       (unsigned long long)r->size, (unsigned long long)r->subs,
		       (unsigned long long)r->fan_gathered,
		       (unsigned long long)r->fan_copied);
	}
}

static void print_table(struct bench *b)
{
	bool lat = false, tput = false;
	size_t i;

	for (i = 0; i < b->nrows; i++) {
		if (is_latency(b->rows[i].test))
			lat = true;
		else
			tput = true;
	}
	printf("verbus bench: %s, publisher from %s, subscribers from %s%s%s%s",
	       b->cmd.url, b->pub_source ? b->pub_source : "any address",
	       b->sub_source ? b->sub_source : "any address",
	       b->sub_url ? " to " : "", b->sub_url ? b->sub_url : "",
	       b->busy ? ", busy-polling" : "");
	if (!b->busy && b->spin_us)
		printf(", spinning %d us before sleeping", b->spin_us);
	putchar('\n');
	if (lat) {
		printf("\nlatency in microseconds, one message in flight\n"
		       "%-10s %8s %8s %9s %9s %9s %9s %9s %9s %9s %6s %5s\n",
		       "test", "size", "samples", "min", "mean", "p50", "p90",
		       "p99", "p99.9", "max", "lost", "dup");
		for (i = 0; i < b->nrows; i++) {
			const struct row *r = &b->rows[i];

			if (!is_latency(r->test))
				continue;
			printf("%-10s %8llu %8llu %9.1f %9.1f %9.1f %9.1f "
			       "%9.1f %9.1f %9.1f %6llu %5llu\n",
			       test_names[r->test], (unsigned long long)r->size,
			       (unsigned long long)r->messages, us(r->lat.min),
			       r->lat.mean / 1e3, us(r->lat.p50),
			       us(r->lat.p90), us(r->lat.p99), us(r->lat.p999),
			       us(r->lat.max), (unsigned long long)r->lost,
			       (unsigned long long)r->dup);
		}
	}
	if (tput) {
		printf("\nthroughput, deliveries of all subscribers together\n"
		       "%-10s %8s %5s %10s %9s %12s %10s %6s %5s\n",
		       "test", "size", "subs", "messages", "seconds", "msgs/s",
		       "MB/s", "lost", "dup");
		for (i = 0; i < b->nrows; i++) {
			const struct row *r = &b->rows[i];

			if (is_latency(r->test))
				continue;
			printf("%-10s %8llu %5llu %10llu %9.3f %12.0f %10.1f "
			       "%6llu %5llu\n",
			       test_names[r->test], (unsigned long long)r->size,
			       (unsigned long long)r->subs,
			       (unsigned long long)r->messages, r->seconds,
			       r->msgs_s, r->mb_s, (unsigned long long)r->lost,
			       (unsigned long long)r->dup);
		}
		print_fanout(b);
	}
}

static void print_csv(struct bench *b)
{
	size_t i;

	printf("test,size,subs,messages,seconds,msgs_per_s,mb_per_s,min_us,"
	       "mean_us,p50_us,p90_us,p99_us,p99_9_us,max_us,lost,dup,bad\n");
	for (i = 0; i < b->nrows; i++) {
		const struct row *r = &b->rows[i];

		printf("%s,%llu,", test_names[r->test],
		       (unsigned long long)r->size);
		if (is_latency(r->test))
			printf(",%llu,,,,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,",
			       (unsigned long long)r->messages, us(r->lat.min),
			       r->lat.mean / 1e3, us(r->lat.p50),
			       us(r->lat.p90), us(r->lat.p99), us(r->lat.p999),
			       us(r->lat.max));
		else
			printf("%llu,%llu,%.6f,%.1f,%.3f,,,,,,,,",
			       (unsigned long long)r->subs,
			       (unsigned long long)r->messages, r->seconds,
			       r->msgs_s, r->mb_s);
		printf("%llu,%llu,%llu\n", (unsigned long long)r->lost,
		       (unsigned long long)r->dup, (unsigned long long)r->bad);
	}
}

static void jset(json_object *o, const char *k, json_object *v)
{
	json_object_object_add(o, k, v);
}

static int print_json(struct bench *b)
{
	json_object *top = json_object_new_object();
	json_object *arr = json_object_new_array();
	json_object *o, *l;
	size_t i;

	if (top == NULL || arr == NULL) {
		json_object_put(arr);
		goto out_nomem;
	}
	jset(top, "server", json_object_new_string(b->cmd.url));
	jset(top, "pub_source",
	     b->pub_source ? json_object_new_string(b->pub_source) : NULL);
	jset(top, "sub_source",
	     b->sub_source ? json_object_new_string(b->sub_source) : NULL);
	jset(top, "sub_server",
	     b->sub_url ? json_object_new_string(b->sub_url) : NULL);
	jset(top, "busy_poll", json_object_new_boolean(b->busy));
	jset(top, "spin_us", json_object_new_int(b->busy ? 0 : b->spin_us));
	jset(top, "results", arr); /* @top owns it from here */
	for (i = 0; i < b->nrows; i++) {
		const struct row *r = &b->rows[i];

		o = json_object_new_object();
		if (o == NULL)
			goto out_nomem;
		json_object_array_add(arr, o);
		jset(o, "test", json_object_new_string(test_names[r->test]));
		jset(o, "size", json_object_new_uint64(r->size));
		jset(o, "messages", json_object_new_uint64(r->messages));
		if (is_latency(r->test)) {
			l = json_object_new_object();
			if (l == NULL)
				goto out_nomem;
			jset(o, "latency_us", l);
			jset(l, "min", json_object_new_double(us(r->lat.min)));
			jset(l, "mean",
			     json_object_new_double(r->lat.mean / 1e3));
			jset(l, "p50", json_object_new_double(us(r->lat.p50)));
			jset(l, "p90", json_object_new_double(us(r->lat.p90)));
			jset(l, "p99", json_object_new_double(us(r->lat.p99)));
			jset(l, "p99_9",
			     json_object_new_double(us(r->lat.p999)));
			jset(l, "max", json_object_new_double(us(r->lat.max)));
		} else {
			jset(o, "subs", json_object_new_uint64(r->subs));
			jset(o, "seconds", json_object_new_double(r->seconds));
			jset(o, "msgs_per_s",
			     json_object_new_double(r->msgs_s));
			jset(o, "mb_per_s", json_object_new_double(r->mb_s));
		}
		jset(o, "lost", json_object_new_uint64(r->lost));
		jset(o, "dup", json_object_new_uint64(r->dup));
		jset(o, "bad", json_object_new_uint64(r->bad));
	}
	puts(json_object_to_json_string_ext(
		top, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
	json_object_put(top);
	return 0;
out_nomem:
	json_object_put(top);
	cli_error(&b->cmd, "out of memory");
	return -1;
}

/* ---- the command -------------------------------------------------------- */

static int parse_tests(struct bench *b, int argc, char **argv)
{
	static const struct {
		const char *name;
		enum test t;
	} names[] = {
		{ "latency", T_LATENCY },
		{ "lat", T_LATENCY },
		{ "rtt", T_RTT },
		{ "req", T_RTT },
		{ "throughput", T_THROUGHPUT },
		{ "tput", T_THROUGHPUT },
		{ "fanout", T_FANOUT },
		{ "fan", T_FANOUT },
	};
	size_t k;
	int i, t;

	if (optind == argc) {
		for (t = 0; t < T_COUNT; t++)
			b->want[t] = true;
		return 0;
	}
	for (i = optind; i < argc; i++) {
		for (k = 0; k < sizeof(names) / sizeof(names[0]); k++)
			if (strcmp(argv[i], names[k].name) == 0)
				break;
		if (k == sizeof(names) / sizeof(names[0]))
			return cli_usage_error(&b->cmd,
					       "unknown test '%s' (latency, "
					       "rtt, throughput, fanout)",
					       argv[i]);
		b->want[names[k].t] = true;
	}
	return 0;
}

static int parse(struct bench *b, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "sizes", required_argument, NULL, 'z' },
		{ "count", required_argument, NULL, 'n' },
		{ "samples", required_argument, NULL, OPT_SAMPLES },
		{ "warmup", required_argument, NULL, OPT_WARMUP },
		{ "subs", required_argument, NULL, OPT_SUBS },
		{ "pub-source", required_argument, NULL, OPT_PUB_SOURCE },
		{ "sub-source", required_argument, NULL, OPT_SUB_SOURCE },
		{ "sub-server", required_argument, NULL, OPT_SUB_SERVER },
		{ "busy-poll", no_argument, NULL, OPT_BUSY_POLL },
		{ "ring", required_argument, NULL, OPT_RING },
		{ "max-msg", required_argument, NULL, OPT_MAX_MSG },
		{ "spin", required_argument, NULL, OPT_SPIN },
		{ "subject", required_argument, NULL, OPT_SUBJECT },
		{ "timeout", required_argument, NULL, 't' },
		{ "format", required_argument, NULL, 'f' },
		CLI_COMMON_LONGOPTS,
	};
	uint64_t v;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORTOPTS "z:n:t:f:",
				  longopts, NULL)) != -1) {
		rc = cli_common_option(&b->cmd, opt, argv);
		if (rc == 1)
			continue;
		if (rc)
			return rc;
		switch (opt) {
		case 'z':
			if (cli_parse_size_list(optarg, HDR_BYTES, 1u << 30,
						b->sizes, MAX_SIZES,
						&b->nsizes))
				return cli_bad_value(&b->cmd, "--sizes", optarg,
						     "up to 16 sizes of at "
						     "least 16 bytes, such as "
						     "64,1K,16K");
			break;
		case 'n':
			if (cli_parse_u64(optarg, 1, 1ull << 32, &b->count))
				return cli_bad_value(&b->cmd, "--count", optarg,
						     "a whole number, 1 or "
						     "more");
			break;
		case OPT_SAMPLES:
			if (cli_parse_u64(optarg, 1, 100000000, &b->samples))
				return cli_bad_value(&b->cmd, "--samples",
						     optarg,
						     "a whole number, 1 or "
						     "more");
			break;
		case OPT_WARMUP:
			if (cli_parse_u64(optarg, 0, 100000000, &b->warmup))
				return cli_bad_value(&b->cmd, "--warmup",
						     optarg, "a whole number");
			break;
		case OPT_SUBS:
			if (cli_parse_u64(optarg, 1, MAX_SUBS, &b->subs))
				return cli_bad_value(&b->cmd, "--subs", optarg,
						     "a number from 1 to 256");
			break;
		case OPT_PUB_SOURCE:
			b->pub_source = optarg;
			break;
		case OPT_SUB_SOURCE:
			b->sub_source = optarg;
			break;
		case OPT_SUB_SERVER:
			b->sub_url = optarg;
			break;
		case OPT_BUSY_POLL:
			b->busy = true;
			break;
		case OPT_RING:
			if (cli_parse_size(optarg, 4096, 1u << 30, &v) ||
			    (v & (v - 1)))
				return cli_bad_value(&b->cmd, "--ring", optarg,
						     "a power of two from 4K "
						     "to 1G");
			b->cmd.ring_size = (uint32_t)v;
			break;
		case OPT_MAX_MSG:
			if (cli_parse_size(optarg, 1, 512u << 20, &v))
				return cli_bad_value(&b->cmd, "--max-msg",
						     optarg,
						     "a size from 1 to 512M "
						     "(at most half the ring)");
			b->cmd.max_msg = (uint32_t)v;
			break;
		case OPT_SPIN:
			if (cli_parse_size(optarg, 0, 1000000, &v))
				return cli_bad_value(&b->cmd, "--spin", optarg,
						     "microseconds, 0 to "
						     "1000000");
			b->spin_us = (int)v;
			break;
		case OPT_SUBJECT:
			snprintf(b->prefix, sizeof(b->prefix), "%s", optarg);
			break;
		case 't':
			if (cli_parse_ms(optarg, 1, &b->timeout_ms))
				return cli_bad_value(&b->cmd, "--timeout",
						     optarg,
						     "a duration such as 500, "
						     "500ms or 5s");
			break;
		case 'f':
			if (cli_parse_format(optarg, &b->fmt))
				return cli_bad_value(&b->cmd, "--format",
						     optarg,
						     "table, csv or json");
			break;
		}
	}
	rc = cli_finish_options(&b->cmd);
	if (rc)
		return rc;
	if (b->sub_url) {
		/* The same settings, checked the same way, with the other
		 * broker's URL. */
		b->sub_cmd = b->cmd;
		b->sub_cmd.url = b->sub_url;
		rc = cli_finish_options(&b->sub_cmd);
		if (rc)
			return rc;
	}
	return parse_tests(b, argc, argv);
}

static int run_all(struct bench *b)
{
	struct row *row;
	size_t i;
	int t, rc;

	b->rows = calloc((size_t)T_COUNT * b->nsizes, sizeof(*b->rows));
	if (b->rows == NULL) {
		cli_error(&b->cmd, "out of memory");
		return -1;
	}
	for (t = 0; t < T_COUNT; t++) {
		if (!b->want[t])
			continue;
		for (i = 0; i < b->nsizes; i++) {
			row = &b->rows[b->nrows];
			row->test = (enum test)t;
			row->size = b->sizes[i];
			if (is_latency(row->test))
				rc = run_one_in_flight(b, row->test, row->size,
						       row);
			else
				rc = run_stream(b, row->test, row->size,
						t == T_FANOUT ? b->subs : 1,
						row);
			if (rc)
				return -1;
			b->nrows++;
		}
	}
	return 0;
}

int cli_cmd_bench(int argc, char **argv)
{
	struct bench b = { .count = 100000,
			   .samples = 10000,
			   .warmup = 100,
			   .subs = 4,
			   .timeout_ms = 10000,
			   .epfd = -1 };
	uint64_t lost = 0, dup = 0, bad = 0;
	int rc, status = CLI_EXIT_OK;
	size_t i;

	cli_cmd_init(&b.cmd, "bench", usage, "verbus-bench");
	b.sizes[0] = 64;
	b.sizes[1] = 1024;
	b.sizes[2] = 16384;
	b.nsizes = 3;
	snprintf(b.prefix, sizeof(b.prefix), "bench.%ld", (long)getpid());
	rc = parse(&b, argc, argv);
	if (rc)
		return rc < 0 ? CLI_EXIT_OK : rc;
	if (b.pub_source == NULL)
		b.pub_source = b.cmd.source;
	if (b.sub_source == NULL)
		b.sub_source = b.cmd.source;
	b.tty = isatty(STDERR_FILENO);
	b.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (b.epfd < 0) {
		cli_error(&b.cmd, "epoll_create1: %s", strerror(errno));
		return CLI_EXIT_FAIL;
	}
	cli_catch_signals();
	if (run_all(&b)) {
		status = CLI_EXIT_FAIL;
		if (cli_stop)
			cli_error(&b.cmd, "interrupted");
	}
	if (b.nrows) {
		if (b.fmt == CLI_FMT_TABLE)
			print_table(&b);
		else if (b.fmt == CLI_FMT_CSV)
			print_csv(&b);
		else if (print_json(&b))
			status = CLI_EXIT_FAIL;
	}
	for (i = 0; i < b.nrows; i++) {
		lost += b.rows[i].lost;
		dup += b.rows[i].dup;
		bad += b.rows[i].bad;
	}
	if (lost || dup || bad) {
		cli_error(&b.cmd,
			  "%llu messages lost, %llu duplicated, %llu malformed",
			  (unsigned long long)lost, (unsigned long long)dup,
			  (unsigned long long)bad);
		status = CLI_EXIT_FAIL;
	}
	free(b.rows);
	close(b.epfd);
	return status;
}
