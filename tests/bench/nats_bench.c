/*
 * nats_bench.c - the NATS side of scripts/bench-compare.sh: the same four
 * measurements as `verbus bench` (latency, rtt, throughput, fanout), made
 * with the NATS C client (libnats) against nats-server over TCP, printed
 * in the same table or CSV columns so the two can be set side by side.
 *
 * A benchmark tool, not part of libverbus: built only where libnats is
 * found (tests/bench/CMakeLists.txt).
 *
 * Like `verbus bench`, one process is both publisher and subscribers, each
 * its own connection, so every payload can carry its CLOCK_MONOTONIC send
 * time and a sequence number; receivers count lost and duplicated
 * messages exactly.  Latency is one message in flight: the publisher
 * (flushing each publish at once, natsOptions_SetSendAsap) waits for the
 * subscriber's synchronous subscription to return it.  Throughput publishes
 * as fast as the client takes messages, with NATS's own buffering (a
 * flusher thread coalesces publishes into large TCP writes), and counts
 * deliveries in asynchronous subscriptions.
 *
 * Source addresses: the NATS C client has no option to bind a connection's
 * local address, and the test harness's hosts share one kernel, where only
 * the source address sends a packet across the emulated link instead of
 * through lo (tests/vm/rdma-hosts).  So this program defines connect()
 * itself: the dynamic linker resolves libnats's call to it first, and it
 * binds the socket to the address chosen for the connection being opened
 * before the real connect(2).  Every connection's local address is checked
 * after connecting; a mismatch fails the run.
 *
 * --sub-server connects the subscribers (and the responder) to another
 * server of a NATS cluster than the publisher's.  Interest crosses the
 * cluster's routes asynchronously, and a server drops what nobody it
 * knows of wants, so each run first sends probes (sequence number
 * PROBE_SEQ, never one of the run's) until every receiver has had one.
 */
#include <nats/nats.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_SIZES 16
#define MAX_SUBS 64
/* Payload bytes every message starts with: sequence number, send time. */
#define HDR_BYTES 16
/* The sequence number of a --sub-server probe; receivers count none. */
#define PROBE_SEQ UINT64_MAX
/* How long a probe is given before the next is sent, ms. */
#define PROBE_MS 100

/* The four benchmarks, in the order they run (as in `verbus bench`). */
enum test { T_LATENCY, T_RTT, T_THROUGHPUT, T_FANOUT, T_COUNT };

static const char *const test_names[T_COUNT] = { "latency", "rtt", "throughput",
						 "fanout" };

/* One result line: the columns of `verbus bench --format csv`. */
struct row {
	enum test test; /* which benchmark */
	uint64_t size; /* payload bytes */
	uint64_t subs; /* subscribers (throughput, fan-out) */
	uint64_t messages; /* published (latency: samples measured) */
	double seconds; /* first publish to last delivery */
	double msgs_s, mb_s; /* deliveries, all subscribers together */
	uint64_t min, p50, p90, p99, p999, max; /* latency, ns */
	double mean; /* latency, ns */
	uint64_t lost, dup, bad; /* never came, came twice, malformed */
};

/* A receiving end of a throughput or fan-out run. */
struct rx {
	pthread_mutex_t lock; /* the callback's thread against main */
	uint8_t *seen; /* one bit per sequence number */
	uint64_t count; /* sequence numbers expected: 0 .. count-1 */
	uint64_t size; /* expected payload size */
	uint64_t uniq, dup, bad; /* what arrived */
	uint64_t t_last; /* when the last message arrived */
	bool probed; /* a --sub-server probe came */
};

/* The command line and the open connections. */
struct bench {
	const char *url; /* --server */
	const char *sub_url; /* --sub-server, else --server */
	const char *pub_source; /* --pub-source */
	const char *sub_source; /* --sub-source */
	const char *tls_ca; /* --tls-ca: TLS, verified by this CA file */
	bool want[T_COUNT]; /* which benchmarks run */
	uint64_t sizes[MAX_SIZES]; /* --sizes */
	size_t nsizes;
	uint64_t count; /* --count: messages per throughput run */
	uint64_t samples; /* --samples: per latency run */
	uint64_t warmup; /* --warmup: unsampled messages first */
	uint64_t subs; /* --subs: fan-out subscribers */
	int64_t timeout_ms; /* --timeout: longest wait without progress */
	bool csv; /* --format csv */
	natsConnection *pub_asap; /* publisher, each publish sent at once */
	natsConnection *pub; /* publisher, NATS's own buffering */
	natsConnection *sub[MAX_SUBS]; /* subscribers; [0] also responds */
	struct row rows[T_COUNT * MAX_SIZES]; /* results */
	size_t nrows;
};

/* The address the connection now being opened binds to (see the top). */
static const char *bind_source;

/*
 * connect - libnats's connect(2), with the local address bound first when
 * bind_source is set (see the design note at the top of the file).
 */
int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct sockaddr_in src = { .sin_family = AF_INET };

	if (bind_source != NULL && addr->sa_family == AF_INET) {
		if (inet_pton(AF_INET, bind_source, &src.sin_addr) != 1) {
			errno = EINVAL;
			return -1;
		}
		if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0)
			return -1;
	}
	return (int)syscall(SYS_connect, fd, addr, len);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void put_header(char *buf, uint64_t seq)
{
	uint64_t t = now_ns();

	memcpy(buf, &seq, 8);
	memcpy(buf + 8, &t, 8);
}

static void get_header(const char *buf, uint64_t *seq, uint64_t *t)
{
	memcpy(seq, buf, 8);
	memcpy(t, buf + 8, 8);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vb_nats_bench [options] [TEST...]\n"
		"\n"
		"The measurements of `verbus bench` against a NATS server.  "
		"TESTs, all by\ndefault: latency rtt throughput fanout.\n"
		"\n"
		"  -s, --server URL      nats://HOST:PORT [nats://127.0.0.1:4222]\n"
		"      --pub-source ADDR local address of the publisher\n"
		"      --sub-source ADDR local address of the subscribers\n"
		"      --sub-server URL  the subscribers' and the responder's "
		"server, another\n"
		"                        of --server's cluster (probes first "
		"wait until\n"
		"                        its interest reached --server) "
		"[--server]\n"
		"  -z, --sizes LIST      payload sizes, at least 16 bytes "
		"[64,1024,16384]\n"
		"  -n, --count N         messages per throughput/fan-out run "
		"[100000]\n"
		"      --samples N       messages measured per latency/rtt run "
		"[10000]\n"
		"      --warmup N        messages sent before measuring [100]\n"
		"      --subs N          fan-out subscribers, 1-%d [4]\n"
		"      --tls-ca FILE     connect with TLS, the server verified\n"
		"                        by this CA (PEM) [plain TCP]\n"
		"  -t, --timeout MS      give a run up after MS without "
		"progress [10000]\n"
		"  -f, --format FMT      table or csv [table]\n"
		"  -h, --help            this text\n",
		MAX_SUBS);
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -1;
	if (*end == 'K' || *end == 'k')
		v *= 1024, end++;
	else if (*end == 'M' || *end == 'm')
		v *= 1024 * 1024, end++;
	if (*end != '\0')
		return -1;
	*out = v;
	return 0;
}

static int parse_sizes(struct bench *b, char *list)
{
	char *tok, *save = NULL;

	b->nsizes = 0;
	for (tok = strtok_r(list, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		if (b->nsizes == MAX_SIZES ||
		    parse_u64(tok, &b->sizes[b->nsizes]) ||
		    b->sizes[b->nsizes] < HDR_BYTES)
			return -1;
		b->nsizes++;
	}
	return b->nsizes ? 0 : -1;
}

static int nats_fail(const char *what, natsStatus s)
{
	fprintf(stderr, "vb_nats_bench: %s: %s (%s)\n", what,
		natsStatus_GetText(s), nats_GetLastError(NULL));
	return -1;
}

/* open_conn: a connection to URL from SOURCE (NULL: any), checked to be
 * there. */
static int open_conn(struct bench *b, const char *url, const char *source,
		     bool asap, natsConnection **out)
{
	natsOptions *o = NULL;
	natsStatus s;
	char *ip = NULL;
	int port = 0, rc = -1;

	s = natsOptions_Create(&o);
	if (s == NATS_OK)
		s = natsOptions_SetURL(o, url);
	if (s == NATS_OK)
		s = natsOptions_SetAllowReconnect(o, false);
	if (s == NATS_OK)
		s = natsOptions_SetSendAsap(o, asap);
	/* Deliveries queued for a slow callback: 2^20 messages (and, as
	 * libnats derives it, 1 KiB each: 1 GiB) before any is dropped. */
	if (s == NATS_OK)
		s = natsOptions_SetMaxPendingMsgs(o, 1 << 20);
	if (s == NATS_OK && b->tls_ca)
		s = natsOptions_SetSecure(o, true);
	if (s == NATS_OK && b->tls_ca)
		s = natsOptions_LoadCATrustedCertificates(o, b->tls_ca);
	if (s != NATS_OK) {
		nats_fail("options", s);
		goto out_opts;
	}
	bind_source = source;
	s = natsConnection_Connect(out, o);
	bind_source = NULL;
	if (s != NATS_OK) {
		nats_fail(url, s);
		goto out_opts;
	}
	if (source != NULL) {
		s = natsConnection_GetLocalIPAndPort(*out, &ip, &port);
		if (s != NATS_OK || ip == NULL || strcmp(ip, source) != 0) {
			fprintf(stderr,
				"vb_nats_bench: connected from %s, not %s\n",
				ip ? ip : "?", source);
			natsConnection_Destroy(*out);
			*out = NULL;
			goto out_ip;
		}
	}
	rc = 0;
out_ip:
	free(ip);
out_opts:
	natsOptions_Destroy(o);
	return rc;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* percentile: nearest rank, as `verbus bench` computes it. */
static uint64_t percentile(const uint64_t *sorted, size_t n, double p)
{
	double rank;
	size_t k;

	if (n == 0)
		return 0;
	rank = ceil(p * (double)n / 100.0 - 1e-9);
	k = rank < 1 ? 1 : (size_t)rank;
	if (k > n)
		k = n;
	return sorted[k - 1];
}

static void lat_stats(struct row *r, uint64_t *v, size_t n)
{
	double sum = 0;
	size_t i;

	qsort(v, n, sizeof(*v), cmp_u64);
	for (i = 0; i < n; i++)
		sum += (double)v[i];
	r->messages = n;
	r->mean = n ? sum / (double)n : 0;
	r->min = n ? v[0] : 0;
	r->max = n ? v[n - 1] : 0;
	r->p50 = percentile(v, n, 50);
	r->p90 = percentile(v, n, 90);
	r->p99 = percentile(v, n, 99);
	r->p999 = percentile(v, n, 99.9);
}

static void subject_of(char *buf, size_t len, enum test t, uint64_t size)
{
	snprintf(buf, len, "bench.%ld.%s.%" PRIu64, (long)getpid(),
		 test_names[t], size);
}

/* flush_all: every subscription made so far is in force at the server. */
static int flush_all(struct bench *b, size_t nsubs)
{
	natsStatus s;
	size_t k;

	for (k = 0; k < nsubs; k++) {
		s = natsConnection_FlushTimeout(b->sub[k], b->timeout_ms);
		if (s != NATS_OK)
			return nats_fail("flush", s);
	}
	return 0;
}

/* probe_failed: what a run says when its probes never came through. */
static int probe_failed(const struct bench *b, const char *subject)
{
	fprintf(stderr,
		"vb_nats_bench: %s: no probe reached the subscribers on %s in "
		"%" PRId64 " ms: interest did not cross the cluster\n",
		subject, b->sub_url, b->timeout_ms);
	return -1;
}

/*
 * probe_sync: --sub-server, before a latency run: publish probes on
 * SUBJECT until the synchronous subscription SUB returns one.
 */
static int probe_sync(struct bench *b, const char *subject,
		      natsSubscription *sub, char *buf, uint64_t size)
{
	uint64_t end = now_ns() + (uint64_t)b->timeout_ms * 1000000u, seq, t;
	natsMsg *m = NULL;
	natsStatus s;
	bool got;

	put_header(buf, PROBE_SEQ);
	while (now_ns() < end) {
		s = natsConnection_Publish(b->pub_asap, subject, buf,
					   (int)size);
		if (s != NATS_OK)
			return nats_fail("publish", s);
		s = natsSubscription_NextMsg(&m, sub, PROBE_MS);
		if (s == NATS_TIMEOUT)
			continue;
		if (s != NATS_OK)
			return nats_fail("next message", s);
		got = (uint64_t)natsMsg_GetDataLength(m) == size;
		if (got) {
			get_header(natsMsg_GetData(m), &seq, &t);
			got = seq == PROBE_SEQ;
		}
		natsMsg_Destroy(m);
		if (got)
			return 0;
	}
	return probe_failed(b, subject);
}

/* probe_request: --sub-server, before an rtt run: requests until one is
 * answered. */
static int probe_request(struct bench *b, const char *subject, char *buf,
			 uint64_t size)
{
	uint64_t end = now_ns() + (uint64_t)b->timeout_ms * 1000000u;
	struct timespec nap = { 0, 10000000 };
	natsMsg *m = NULL;
	natsStatus s;

	put_header(buf, PROBE_SEQ);
	while (now_ns() < end) {
		s = natsConnection_Request(&m, b->pub_asap, subject, buf,
					   (int)size, PROBE_MS);
		if (s == NATS_NO_RESPONDERS) {
			/* Said at once: no interest here yet. */
			nanosleep(&nap, NULL);
			continue;
		}
		if (s == NATS_TIMEOUT)
			continue;
		if (s != NATS_OK)
			return nats_fail("request", s);
		natsMsg_Destroy(m);
		return 0;
	}
	return probe_failed(b, subject);
}

/* run_latency: one message in flight, publisher -> server -> subscriber. */
static int run_latency(struct bench *b, uint64_t size, struct row *row)
{
	natsSubscription *sub = NULL;
	natsMsg *m = NULL;
	natsStatus s;
	char subject[128], *buf;
	uint64_t *v, i, seq, t, now, total = b->warmup + b->samples;
	size_t n = 0;
	int rc = -1;

	subject_of(subject, sizeof(subject), T_LATENCY, size);
	buf = calloc(1, size);
	v = calloc(b->samples ? b->samples : 1, sizeof(*v));
	if (buf == NULL || v == NULL)
		goto out;
	s = natsConnection_SubscribeSync(&sub, b->sub[0], subject);
	if (s != NATS_OK) {
		nats_fail("subscribe", s);
		goto out;
	}
	if (flush_all(b, 1))
		goto out;
	if (b->sub_url && probe_sync(b, subject, sub, buf, size))
		goto out;
	for (i = 0; i < total; i++) {
		put_header(buf, i);
		s = natsConnection_Publish(b->pub_asap, subject, buf,
					   (int)size);
		if (s != NATS_OK) {
			nats_fail("publish", s);
			goto out;
		}
next:
		s = natsSubscription_NextMsg(&m, sub, b->timeout_ms);
		now = now_ns();
		if (s == NATS_TIMEOUT) {
			row->lost++;
			continue;
		}
		if (s != NATS_OK) {
			nats_fail("next message", s);
			goto out;
		}
		if ((uint64_t)natsMsg_GetDataLength(m) != size) {
			row->bad++;
		} else {
			get_header(natsMsg_GetData(m), &seq, &t);
			if (seq == PROBE_SEQ) {
				/* A probe that came late: not this one. */
				natsMsg_Destroy(m);
				goto next;
			}
			if (seq != i)
				row->bad++;
			else if (i >= b->warmup)
				v[n++] = now - t;
		}
		natsMsg_Destroy(m);
	}
	lat_stats(row, v, n);
	rc = 0;
out:
	natsSubscription_Destroy(sub);
	free(v);
	free(buf);
	return rc;
}

/* on_request: the responder (host of the subscribers) echoes the payload. */
static void on_request(natsConnection *nc, natsSubscription *sub, natsMsg *m,
		       void *arg)
{
	(void)sub;
	(void)arg;
	if (natsMsg_GetReply(m) != NULL)
		natsConnection_Publish(nc, natsMsg_GetReply(m),
				       natsMsg_GetData(m),
				       natsMsg_GetDataLength(m));
	natsMsg_Destroy(m);
}

/* run_rtt: request -> responder -> reply, one in flight. */
static int run_rtt(struct bench *b, uint64_t size, struct row *row)
{
	natsSubscription *sub = NULL;
	natsMsg *m = NULL;
	natsStatus s;
	char subject[128], *buf;
	uint64_t *v, i, seq, t, total = b->warmup + b->samples;
	size_t n = 0;
	int rc = -1;

	subject_of(subject, sizeof(subject), T_RTT, size);
	buf = calloc(1, size);
	v = calloc(b->samples ? b->samples : 1, sizeof(*v));
	if (buf == NULL || v == NULL)
		goto out;
	s = natsConnection_Subscribe(&sub, b->sub[0], subject, on_request,
				     NULL);
	if (s != NATS_OK) {
		nats_fail("subscribe", s);
		goto out;
	}
	if (flush_all(b, 1))
		goto out;
	if (b->sub_url && probe_request(b, subject, buf, size))
		goto out;
	for (i = 0; i < total; i++) {
		put_header(buf, i);
		t = now_ns();
		s = natsConnection_Request(&m, b->pub_asap, subject, buf,
					   (int)size, b->timeout_ms);
		if (s == NATS_TIMEOUT) {
			row->lost++;
			continue;
		}
		if (s != NATS_OK) {
			nats_fail("request", s);
			goto out;
		}
		if (i >= b->warmup)
			v[n++] = now_ns() - t;
		/* The echo must be this request's: its size and seq. */
		seq = UINT64_MAX;
		if ((uint64_t)natsMsg_GetDataLength(m) == size)
			get_header(natsMsg_GetData(m), &seq, &t);
		if ((uint64_t)natsMsg_GetDataLength(m) != size || seq != i)
			row->bad++;
		natsMsg_Destroy(m);
	}
	lat_stats(row, v, n);
	rc = 0;
out:
	natsSubscription_Destroy(sub);
	free(v);
	free(buf);
	return rc;
}

/* on_msg: a throughput or fan-out delivery, counted by sequence number. */
static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m,
		   void *arg)
{
	struct rx *r = arg;
	uint64_t seq, t, now = now_ns();

	(void)nc;
	(void)sub;
	pthread_mutex_lock(&r->lock);
	if ((uint64_t)natsMsg_GetDataLength(m) != r->size) {
		r->bad++;
	} else {
		get_header(natsMsg_GetData(m), &seq, &t);
		if (seq == PROBE_SEQ) {
			r->probed = true;
			goto out;
		}
		if (seq >= r->count) {
			r->bad++;
		} else if (r->seen[seq / 8] & (1u << (seq % 8))) {
			r->dup++;
		} else {
			r->seen[seq / 8] |= (uint8_t)(1u << (seq % 8));
			r->uniq++;
		}
	}
	r->t_last = now;
out:
	pthread_mutex_unlock(&r->lock);
	natsMsg_Destroy(m);
}

/* probed_all: every one of the NSUBS receivers had a probe. */
static bool probed_all(struct rx *rx, size_t nsubs)
{
	bool all = true;
	size_t k;

	for (k = 0; k < nsubs; k++) {
		pthread_mutex_lock(&rx[k].lock);
		all = all && rx[k].probed;
		pthread_mutex_unlock(&rx[k].lock);
	}
	return all;
}

/* probe_async: --sub-server, before a stream: publish a probe every
 * PROBE_MS until each of the NSUBS receivers has had one. */
static int probe_async(struct bench *b, const char *subject, struct rx *rx,
		       size_t nsubs, char *buf, uint64_t size)
{
	uint64_t end = now_ns() + (uint64_t)b->timeout_ms * 1000000u, next = 0;
	struct timespec nap = { 0, 1000000 };
	natsStatus s;

	put_header(buf, PROBE_SEQ);
	while (!probed_all(rx, nsubs)) {
		if (now_ns() > end)
			return probe_failed(b, subject);
		if (now_ns() >= next) {
			s = natsConnection_Publish(b->pub_asap, subject, buf,
						   (int)size);
			if (s != NATS_OK)
				return nats_fail("publish", s);
			next = now_ns() + PROBE_MS * 1000000u;
		}
		nanosleep(&nap, NULL);
	}
	return 0;
}

/* uniq_of: deliveries so far, all subscribers together. */
static uint64_t uniq_of(struct rx *rx, size_t nsubs)
{
	uint64_t got = 0;
	size_t k;

	for (k = 0; k < nsubs; k++) {
		pthread_mutex_lock(&rx[k].lock);
		got += rx[k].uniq;
		pthread_mutex_unlock(&rx[k].lock);
	}
	return got;
}

/* run_tput: one publisher, NSUBS subscribers, as fast as NATS takes them. */
static int run_tput(struct bench *b, enum test test, uint64_t size,
		    size_t nsubs, struct row *row)
{
	natsSubscription *sub[MAX_SUBS] = { 0 };
	struct rx rx[MAX_SUBS];
	natsStatus s;
	char subject[128], *buf;
	uint64_t i, got, last = 0, t0, idle, t_last = 0;
	struct timespec nap = { 0, 1000000 };
	size_t k, made = 0;
	int rc = -1;

	subject_of(subject, sizeof(subject), test, size);
	buf = calloc(1, size);
	if (buf == NULL)
		return -1;
	for (made = 0; made < nsubs; made++) {
		rx[made] = (struct rx){ .count = b->count, .size = size };
		pthread_mutex_init(&rx[made].lock, NULL);
		rx[made].seen = calloc(b->count / 8 + 1, 1);
		if (rx[made].seen == NULL) {
			made++;
			goto out;
		}
		s = natsConnection_Subscribe(&sub[made], b->sub[made], subject,
					     on_msg, &rx[made]);
		if (s != NATS_OK) {
			made++;
			nats_fail("subscribe", s);
			goto out;
		}
	}
	if (flush_all(b, nsubs))
		goto out;
	if (b->sub_url && probe_async(b, subject, rx, nsubs, buf, size))
		goto out;
	t0 = idle = now_ns();
	for (i = 0; i < b->count; i++) {
		put_header(buf, i);
		s = natsConnection_Publish(b->pub, subject, buf, (int)size);
		if (s != NATS_OK) {
			nats_fail("publish", s);
			goto out;
		}
	}
	s = natsConnection_FlushTimeout(b->pub, b->timeout_ms);
	if (s != NATS_OK) {
		nats_fail("flush", s);
		goto out;
	}
	for (;;) {
		got = uniq_of(rx, nsubs);
		if (got == nsubs * b->count)
			break;
		if (got != last) {
			last = got;
			idle = now_ns();
		} else if (now_ns() - idle >
			   (uint64_t)b->timeout_ms * 1000000u) {
			break; /* what never came is reported as lost */
		}
		nanosleep(&nap, NULL);
	}
	row->subs = nsubs;
	row->messages = b->count;
	for (k = 0; k < nsubs; k++) {
		/* Stop the deliveries before reading what they wrote. */
		natsSubscription_Unsubscribe(sub[k]);
		pthread_mutex_lock(&rx[k].lock);
		row->lost += b->count - rx[k].uniq;
		row->dup += rx[k].dup;
		row->bad += rx[k].bad;
		if (rx[k].t_last > t_last)
			t_last = rx[k].t_last;
		pthread_mutex_unlock(&rx[k].lock);
	}
	if (t_last > t0) {
		row->seconds = (double)(t_last - t0) / 1e9;
		row->msgs_s = (double)got / row->seconds;
		row->mb_s = (double)got * (double)size / row->seconds / 1e6;
	}
	rc = 0;
out:
	for (k = 0; k < made; k++) {
		natsSubscription_Destroy(sub[k]);
		pthread_mutex_destroy(&rx[k].lock);
		free(rx[k].seen);
	}
	free(buf);
	return rc;
}

static double us(uint64_t ns)
{
	return (double)ns / 1e3;
}

static void print_table(const struct bench *b)
{
	size_t i;

	printf("vb_nats_bench: %s, publisher from %s, subscribers from %s%s%s\n",
	       b->url, b->pub_source ? b->pub_source : "any address",
	       b->sub_source ? b->sub_source : "any address",
	       b->sub_url ? " to " : "", b->sub_url ? b->sub_url : "");
	printf("\nlatency in microseconds, one message in flight\n"
	       "%-10s %8s %8s %9s %9s %9s %9s %9s %9s %9s %6s\n",
	       "test", "size", "samples", "min", "mean", "p50", "p90", "p99",
	       "p99.9", "max", "lost");
	for (i = 0; i < b->nrows; i++) {
		const struct row *r = &b->rows[i];

		if (r->test != T_LATENCY && r->test != T_RTT)
			continue;
		printf("%-10s %8" PRIu64 " %8" PRIu64
		       " %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %6" PRIu64
		       "\n",
		       test_names[r->test], r->size, r->messages, us(r->min),
		       r->mean / 1e3, us(r->p50), us(r->p90), us(r->p99),
		       us(r->p999), us(r->max), r->lost);
	}
	printf("\nthroughput, deliveries of all subscribers together\n"
	       "%-10s %8s %5s %10s %9s %12s %10s %6s %5s\n",
	       "test", "size", "subs", "messages", "seconds", "msgs/s", "MB/s",
	       "lost", "dup");
	for (i = 0; i < b->nrows; i++) {
		const struct row *r = &b->rows[i];

		if (r->test == T_LATENCY || r->test == T_RTT)
			continue;
		printf("%-10s %8" PRIu64 " %5" PRIu64 " %10" PRIu64
		       " %9.3f %12.0f %10.1f %6" PRIu64 " %5" PRIu64 "\n",
		       test_names[r->test], r->size, r->subs, r->messages,
		       r->seconds, r->msgs_s, r->mb_s, r->lost, r->dup);
	}
}

/* print_csv: exactly the columns of `verbus bench --format csv`. */
static void print_csv(const struct bench *b)
{
	size_t i;

	printf("test,size,subs,messages,seconds,msgs_per_s,mb_per_s,min_us,"
	       "mean_us,p50_us,p90_us,p99_us,p99_9_us,max_us,lost,dup,bad\n");
	for (i = 0; i < b->nrows; i++) {
		const struct row *r = &b->rows[i];

		printf("%s,%" PRIu64 ",", test_names[r->test], r->size);
		if (r->test == T_LATENCY || r->test == T_RTT)
			printf(",%" PRIu64 ",,,,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,"
			       "%.3f,",
			       r->messages, us(r->min), r->mean / 1e3,
			       us(r->p50), us(r->p90), us(r->p99), us(r->p999),
			       us(r->max));
		else
			printf("%" PRIu64 ",%" PRIu64 ",%.6f,%.1f,%.3f,,,,,,,,",
			       r->subs, r->messages, r->seconds, r->msgs_s,
			       r->mb_s);
		printf("%" PRIu64 ",%" PRIu64 ",%" PRIu64 "\n", r->lost, r->dup,
		       r->bad);
	}
}

static int parse_args(struct bench *b, int argc, char **argv)
{
	enum {
		O_PUB = 256,
		O_SUB,
		O_SAMPLES,
		O_WARMUP,
		O_SUBS,
		O_TLS_CA,
		O_SUB_SERVER
	};
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "pub-source", required_argument, NULL, O_PUB },
		{ "sub-source", required_argument, NULL, O_SUB },
		{ "sub-server", required_argument, NULL, O_SUB_SERVER },
		{ "sizes", required_argument, NULL, 'z' },
		{ "count", required_argument, NULL, 'n' },
		{ "samples", required_argument, NULL, O_SAMPLES },
		{ "warmup", required_argument, NULL, O_WARMUP },
		{ "subs", required_argument, NULL, O_SUBS },
		{ "tls-ca", required_argument, NULL, O_TLS_CA },
		{ "timeout", required_argument, NULL, 't' },
		{ "format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	uint64_t v;
	int o, t;
	bool any = false;

	while ((o = getopt_long(argc, argv, "s:z:n:t:f:h", opts, NULL)) != -1) {
		switch (o) {
		case 's':
			b->url = optarg;
			break;
		case O_PUB:
			b->pub_source = optarg;
			break;
		case O_SUB:
			b->sub_source = optarg;
			break;
		case O_SUB_SERVER:
			b->sub_url = optarg;
			break;
		case O_TLS_CA:
			b->tls_ca = optarg;
			break;
		case 'z':
			if (parse_sizes(b, optarg))
				goto bad;
			break;
		case 'n':
			if (parse_u64(optarg, &b->count) || b->count == 0)
				goto bad;
			break;
		case O_SAMPLES:
			if (parse_u64(optarg, &b->samples) || b->samples == 0)
				goto bad;
			break;
		case O_WARMUP:
			if (parse_u64(optarg, &b->warmup))
				goto bad;
			break;
		case O_SUBS:
			if (parse_u64(optarg, &b->subs) || b->subs == 0 ||
			    b->subs > MAX_SUBS)
				goto bad;
			break;
		case 't':
			if (parse_u64(optarg, &v) || v == 0 || v > INT32_MAX)
				goto bad;
			b->timeout_ms = (int64_t)v;
			break;
		case 'f':
			if (strcmp(optarg, "csv") == 0)
				b->csv = true;
			else if (strcmp(optarg, "table") != 0)
				goto bad;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			goto bad;
		}
	}
	for (; optind < argc; optind++) {
		for (t = 0; t < T_COUNT; t++)
			if (strcmp(argv[optind], test_names[t]) == 0)
				break;
		if (t == T_COUNT)
			goto bad;
		b->want[t] = any = true;
	}
	if (!any)
		for (t = 0; t < T_COUNT; t++)
			b->want[t] = true;
	return 0;
bad:
	usage(stderr);
	return -1;
}

int main(int argc, char **argv)
{
	static struct bench b = {
		.url = "nats://127.0.0.1:4222",
		.sizes = { 64, 1024, 16384 },
		.nsizes = 3,
		.count = 100000,
		.samples = 10000,
		.warmup = 100,
		.subs = 4,
		.timeout_ms = 10000,
	};
	uint64_t lost = 0;
	size_t i, k, nsubs;
	int t, rc = 1;

	if (parse_args(&b, argc, argv))
		return 2;
	nsubs = b.want[T_FANOUT] && b.subs > 1 ? b.subs : 1;
	if (open_conn(&b, b.url, b.pub_source, true, &b.pub_asap) ||
	    open_conn(&b, b.url, b.pub_source, false, &b.pub))
		goto out;
	for (k = 0; k < nsubs; k++)
		if (open_conn(&b, b.sub_url ? b.sub_url : b.url, b.sub_source,
			      true, &b.sub[k]))
			goto out;
	for (t = 0; t < T_COUNT; t++) {
		if (!b.want[t])
			continue;
		for (i = 0; i < b.nsizes; i++) {
			struct row *r = &b.rows[b.nrows++];

			*r = (struct row){ .test = t, .size = b.sizes[i] };
			if ((t == T_LATENCY && run_latency(&b, r->size, r)) ||
			    (t == T_RTT && run_rtt(&b, r->size, r)) ||
			    (t == T_THROUGHPUT &&
			     run_tput(&b, t, r->size, 1, r)) ||
			    (t == T_FANOUT &&
			     run_tput(&b, t, r->size, b.subs, r)))
				goto out;
			lost += r->lost + r->dup + r->bad;
		}
	}
	if (b.csv)
		print_csv(&b);
	else
		print_table(&b);
	rc = lost ? 1 : 0;
	if (lost)
		fprintf(stderr,
			"vb_nats_bench: %" PRIu64
			" messages lost, duplicated or malformed\n",
			lost);
out:
	for (k = 0; k < MAX_SUBS; k++)
		natsConnection_Destroy(b.sub[k]);
	natsConnection_Destroy(b.pub);
	natsConnection_Destroy(b.pub_asap);
	nats_Close();
	return rc;
}
