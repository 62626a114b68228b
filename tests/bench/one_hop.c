/*
 * one_hop.c - vb_one_hop: one-way latency of a message between two
 * processes through libverbus, as ib_write_lat measures raw verbs: the
 * publisher and the subscriber each in a process of its own, each
 * busy-polling (or event-driven), one message in flight (scripts/
 * bench-steps.sh; docs/PERFORMANCE.md, "Direct mode: where a direct
 * message's time goes").
 *
 *   vb_one_hop URL PUB_SOURCE SUB_SOURCE [--direct] [--event]
 *              [--samples N] [--warmup N] [--size BYTES]
 *
 * `verbus bench latency` drives its publisher and subscriber from one
 * thread: under rxe, whose doorbell is a system call in which the kernel
 * sends the packet, the subscriber cannot poll until the publisher's post
 * has returned, which a direct hop then pays in full.  Here the
 * subscriber is a forked process: it stamps each message's arrival
 * (CLOCK_MONOTONIC, one clock for both) into memory the two share, and
 * the publisher sends the next once it sees the previous arrive.  With
 * --direct the publisher is opened with VB_OPT_DIRECT and the
 * subscription made with VB_SUB_DIRECT; the warm-up goes on until 200
 * messages in a row went direct, so that no measured one went through
 * the broker (the run fails if any did).
 *
 * Output: one line, "one_hop,MODE,PATH,SIZE,SAMPLES,p50,p99,p999,mean"
 * (microseconds).  Exit: 0 done, 1 failure, 2 usage.
 */
#include <verbus/verbus.h>

#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SUBJECT "onehop.x"
#define WAIT_NS (60ull * 1000000000ull)
#define DIRECT_RUN 200 /* warm-up: this many in a row direct */
#define WARMUP_MAX 100000

/* What the two processes share. */
struct shared {
	atomic_uint_fast64_t seen; /* the last message number that arrived */
	atomic_int ready; /* 1: subscribed; -1: the subscriber failed */
	atomic_int stop; /* the publisher is done */
	/* Message numbers up to this are warm-up (set before the first
	 * measured one is published). */
	atomic_uint_fast64_t warm;
	uint64_t arrived_ns[]; /* per measured message: its arrival */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "vb_one_hop: %s: %s\n", what, vb_strerror(rc));
	exit(1);
}

struct run {
	struct shared *sh;
	uint64_t samples;
};

static void on_msg(struct vb_conn *c, const struct vb_msg *m, void *arg)
{
	struct run *r = arg;
	uint64_t t = now_ns(), n, warm;

	(void)c;
	if (m->size < sizeof(n))
		return;
	memcpy(&n, m->data, sizeof(n));
	warm = atomic_load_explicit(&r->sh->warm, memory_order_acquire);
	if (n > warm && n - warm <= r->samples)
		r->sh->arrived_ns[n - warm - 1] = t;
	atomic_store_explicit(&r->sh->seen, n, memory_order_release);
}

static int subscriber(const char *url, const char *src, unsigned flags,
		      bool direct, struct run *r)
{
	struct vb_opts o = VB_OPTS_INIT;
	struct vb_conn *c = NULL;
	int rc;

	o.source = src;
	o.name = "one-hop-sub";
	o.flags = flags;
	rc = vb_connect(url, &o, &c);
	if (rc)
		die("subscriber: vb_connect", rc);
	rc = vb_subscribe_flags(c, SUBJECT, NULL, direct ? VB_SUB_DIRECT : 0,
				on_msg, r, NULL);
	if (rc == VB_OK)
		rc = vb_flush(c, 30000);
	if (rc) {
		atomic_store(&r->sh->ready, -1);
		die("subscriber: subscribe", rc);
	}
	atomic_store(&r->sh->ready, 1);
	while (!atomic_load_explicit(&r->sh->stop, memory_order_acquire)) {
		rc = vb_poll(c, (flags & VB_OPT_BUSY_POLL) ? 0 : 50);
		if (rc < 0)
			die("subscriber: vb_poll", rc);
	}
	vb_close(c);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Publish message @n (@size bytes, the number first) and wait for it. */
static uint64_t one(struct vb_conn *c, struct shared *sh, uint64_t n,
		    uint8_t *buf, size_t size, bool busy)
{
	uint64_t t0, end;
	int rc;

	memcpy(buf, &n, sizeof(n));
	t0 = now_ns();
	end = t0 + WAIT_NS;
	while ((rc = vb_publish(c, SUBJECT, buf, size)) == VB_EAGAIN)
		vb_poll(c, busy ? 0 : 1);
	if (rc)
		die("publisher: vb_publish", rc);
	while (atomic_load_explicit(&sh->seen, memory_order_acquire) < n) {
		rc = vb_poll(c, 0);
		if (rc < 0)
			die("publisher: vb_poll", rc);
		if (now_ns() > end) {
			fprintf(stderr,
				"vb_one_hop: message %" PRIu64
				" never arrived\n",
				n);
			exit(1);
		}
	}
	return t0;
}

int main(int argc, char **argv)
{
	uint64_t samples = 5000, warmup = 500, size = 64, n = 0, run = 0;
	struct vb_opts o = VB_OPTS_INIT;
	struct vb_stats st = { .sz = sizeof(st) };
	struct vb_conn *c = NULL;
	bool direct = false, busy = true;
	struct run r = { 0 };
	uint64_t *lat, *sent, direct_out = 0;
	uint8_t *buf;
	unsigned flags;
	double sum = 0;
	int status, rc;
	pid_t pid;

	if (argc < 4)
		goto usage;
	for (int i = 4; i < argc; i++) {
		if (!strcmp(argv[i], "--direct"))
			direct = true;
		else if (!strcmp(argv[i], "--event"))
			busy = false;
		else if (i + 1 < argc && !strcmp(argv[i], "--samples"))
			samples = strtoull(argv[++i], NULL, 10);
		else if (i + 1 < argc && !strcmp(argv[i], "--warmup"))
			warmup = strtoull(argv[++i], NULL, 10);
		else if (i + 1 < argc && !strcmp(argv[i], "--size"))
			size = strtoull(argv[++i], NULL, 10);
		else
			goto usage;
	}
	if (!samples || samples > 10000000 || size < 8 || size > 60000)
		goto usage;
	flags = VB_OPT_NODELAY | (busy ? VB_OPT_BUSY_POLL : 0);
	r.samples = samples;
	r.sh = mmap(NULL, sizeof(*r.sh) + samples * sizeof(uint64_t),
		    PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	lat = calloc(samples, sizeof(*lat));
	sent = calloc(samples, sizeof(*sent));
	buf = calloc(1, size);
	if (r.sh == MAP_FAILED || !lat || !sent || !buf) {
		fprintf(stderr, "vb_one_hop: out of memory\n");
		return 1;
	}
	atomic_store(&r.sh->warm, UINT64_MAX); /* set below */
	pid = fork();
	if (pid < 0) {
		perror("vb_one_hop: fork");
		return 1;
	}
	if (pid == 0)
		_exit(subscriber(argv[1], argv[3], flags, direct, &r));
	while (atomic_load(&r.sh->ready) == 0)
		usleep(1000);
	if (atomic_load(&r.sh->ready) < 0)
		return 1;
	o.source = argv[2];
	o.name = "one-hop-pub";
	o.flags = flags | (direct ? VB_OPT_DIRECT : 0);
	rc = vb_connect(argv[1], &o, &c);
	if (rc)
		die("publisher: vb_connect", rc);
	/* Warm-up: at least @warmup; direct, until DIRECT_RUN in a row went
	 * direct (the path is switched on). */
	while (n < warmup || (direct && run < DIRECT_RUN)) {
		if (n >= WARMUP_MAX) {
			fprintf(stderr,
				"vb_one_hop: the direct path never "
				"stayed on (%" PRIu64 " messages)\n",
				n);
			return 1;
		}
		one(c, r.sh, ++n, buf, size, busy);
		if (direct) {
			rc = vb_stats(c, &st);
			if (rc)
				die("vb_stats", rc);
			run = st.direct_msgs_out > direct_out ? run + 1 : 0;
			direct_out = st.direct_msgs_out;
		}
	}
	/* The numbers after @n are measured. */
	atomic_store_explicit(&r.sh->warm, n, memory_order_release);
	for (uint64_t i = 0; i < samples; i++)
		sent[i] = one(c, r.sh, n + 1 + i, buf, size, busy);
	if (direct) {
		rc = vb_stats(c, &st);
		if (rc)
			die("vb_stats", rc);
		if (st.direct_msgs_out - direct_out != samples) {
			fprintf(stderr,
				"vb_one_hop: %" PRIu64 " of %" PRIu64
				" measured messages went direct\n",
				st.direct_msgs_out - direct_out, samples);
			return 1;
		}
	}
	atomic_store_explicit(&r.sh->stop, 1, memory_order_release);
	vb_close(c);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status)) {
		fprintf(stderr, "vb_one_hop: the subscriber failed\n");
		return 1;
	}
	for (uint64_t i = 0; i < samples; i++) {
		lat[i] = r.sh->arrived_ns[i] - sent[i];
		sum += (double)lat[i];
	}
	qsort(lat, samples, sizeof(*lat), cmp_u64);
	printf("one_hop,%s,%s,%" PRIu64 ",%" PRIu64 ",%.2f,%.2f,%.2f,%.2f\n",
	       busy ? "busy" : "event", direct ? "direct" : "brokered", size,
	       samples, lat[samples / 2] / 1e3, lat[samples * 99 / 100] / 1e3,
	       lat[samples * 999 / 1000] / 1e3, sum / (double)samples / 1e3);
	return 0;
usage:
	fprintf(stderr,
		"usage: vb_one_hop URL PUB_SOURCE SUB_SOURCE [--direct] "
		"[--event] [--samples N] [--warmup N] [--size BYTES]\n");
	return 2;
}
