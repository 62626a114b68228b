/*
 * cpu_core.c - the core path of Verbus's messages, driven on this machine
 * without an RDMA device, for a deterministic CPU cost per message:
 * scripts/bench-cpu.sh runs it under valgrind's callgrind and divides the
 * instructions spent in each cost_* function by the messages that went
 * through it.  Timing is never printed: instruction counts do not depend on
 * how busy the machine is, so a regression shows even on a noisy builder.
 *
 * What a message costs, in the order it happens (the same calls, in the
 * same order, as transport/rdma.c and daemon/broker.c make them):
 *  - cost_publish: the publisher's library copies the frame into its
 *    staging ring (vbi_ring_tx_reserve, vbi_frame_encode, as a copying
 *    vb_publish does); cost_pub_flush, once per batch, describes the
 *    write (vbi_ring_tx_next_batch, vbi_ring_tx_flushed, a RECV credit
 *    taken); cost_pub_acks applies the ring credit the broker returns;
 *  - cost_ingress: the broker accounts the write (vbi_ring_rx_arrived) and,
 *    per frame, parses it (vbi_ring_rx_next), checks the subject, matches
 *    it against every subscription (vbi_sublist_match_valid: the subject
 *    checked once, as daemon/broker.c does) and releases it;
 *  - cost_forward: per delivery, the broker reserves the frame's span in
 *    the subscriber's staging and writes a new 32-byte header there (the
 *    topic and payload are gathered by the NIC from the publisher's ring:
 *    no CPU copy); cost_fwd_flush and cost_fwd_acks are its per-batch
 *    write and credit;
 *  - cost_deliver: the subscriber's library accounts the write, parses each
 *    frame, hands the view to the application (a no-op callback here) and
 *    releases it, and computes the credit to return.
 * What the NIC does is done here by memcpy in wire_*(), outside every
 * cost_* function, so it is not counted.  Nor is anything of transport/
 * or clients/lib above these calls (posting, completions, the event
 * loop): those need a device, and their cost is mostly the kernel's under
 * rxe, which callgrind does not see.
 */
#include "core/credit.h"
#include "core/frame.h"
#include "core/ring.h"
#include "core/subject.h"
#include "verbus/verbus.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RING_SIZE (1u << 20)
/* Subscribers of the wildcard pattern, beyond the one literal match. */
#define MAX_LINKS 65

/* One direction of a connection: the sender's staging and the ring. */
struct link {
	uint8_t *stage; /* the sender's staging copy */
	uint8_t *ring; /* the receiver's ring (the NIC copies into it) */
	struct vbi_ring_tx tx; /* the sender's view */
	struct vbi_ring_rx rx; /* the receiver's view */
	struct vbi_credit cr; /* the sender's RECV credits */
	uint64_t seq; /* the sender's last MSG sequence number */
	uint64_t delivered; /* frames the receiver handed out */
	struct vbi_ring_batch pending; /* the last write described */
};

/* The whole model: one publisher, a broker, its subscribers. */
struct model {
	struct link up; /* publisher -> broker */
	struct link down[MAX_LINKS]; /* broker -> subscriber k */
	size_t nlinks;
	struct vbi_sublist *sl; /* the broker's subscriptions */
	struct vbi_sub *subs; /* every subscription */
	size_t nsubs;
	struct vbi_match match; /* reused between matches */
	uint64_t published, routed, forwarded; /* counts for the script */
	size_t max_msg; /* largest payload + topic accepted */
};

static void die(const char *what, int rc)
{
	fprintf(stderr, "vb_bench_cpu: %s: %s\n", what, vb_strerror(rc));
	exit(1);
}

static void link_init(struct link *l)
{
	int rc;

	l->stage = aligned_alloc(64, RING_SIZE);
	l->ring = aligned_alloc(64, RING_SIZE);
	if (l->stage == NULL || l->ring == NULL)
		die("ring", VB_ENOMEM);
	memset(l->stage, 0, RING_SIZE);
	memset(l->ring, 0, RING_SIZE);
	rc = vbi_ring_tx_init(&l->tx, l->stage, RING_SIZE);
	if (rc == VB_OK)
		rc = vbi_ring_rx_init(&l->rx, l->ring, RING_SIZE);
	if (rc == VB_OK)
		rc = vbi_credit_init(&l->cr, 1024, 1024);
	if (rc)
		die("ring init", rc);
}

/* flush: describe the staged frames as one write, as conn_flush() does. */
static void flush(struct link *l)
{
	int rc = vbi_ring_tx_next_batch(&l->tx, 0, &l->pending);

	if (rc == VB_OK && l->pending.len)
		rc = vbi_credit_take(&l->cr, false);
	if (rc == VB_OK && l->pending.len)
		rc = vbi_ring_tx_flushed(&l->tx, l->pending.len);
	if (rc)
		die("flush", rc);
}

/* cost_publish: one copying publish; the write once per batch. */
static __attribute__((noinline)) void cost_publish(struct model *m,
						   const char *subject,
						   const void *payload,
						   uint32_t len)
{
	struct vbi_frame_msg f = {
		.topic = subject,
		.topic_len = (uint16_t)strlen(subject),
		.payload = payload,
		.payload_len = len,
	};
	size_t off, span;
	int rc;

	span = vbi_frame_span(vbi_frame_msg_len(f.topic_len, len));
	rc = vbi_ring_tx_reserve(&m->up.tx, span, &off, NULL);
	if (rc)
		die("publish: reserve", rc);
	f.seq = ++m->up.seq;
	rc = vbi_frame_encode(m->up.stage + off, span, &f, &span);
	if (rc)
		die("publish: encode", rc);
	m->published++;
}

/* cost_pub_flush: the publisher's write of what it staged. */
static __attribute__((noinline)) void cost_pub_flush(struct model *m)
{
	flush(&m->up);
}

/* cost_pub_acks: the publisher applies the broker's returned credit. */
static __attribute__((noinline)) void
cost_pub_acks(struct model *m, uint32_t freed, uint32_t recvs)
{
	if (vbi_ring_tx_credit(&m->up.tx, freed) ||
	    vbi_credit_grant(&m->up.cr, recvs))
		die("publisher credit", VB_EPROTO);
}

/* cost_forward: one delivery, as conn_forward(): a new header only. */
static __attribute__((noinline)) size_t
cost_forward(struct link *l, const struct vbi_frame_view *v, uint32_t sid)
{
	struct vbi_frame_msg f = { 0 };
	size_t off;
	int rc;

	rc = vbi_ring_tx_reserve(&l->tx, v->span, &off, NULL);
	if (rc)
		die("forward: reserve", rc);
	f.topic_len = v->topic_len;
	f.payload_len = v->payload_len;
	f.seq = ++l->seq;
	f.sid = sid;
	vbi_frame_put_hdr(l->stage + off, v->span, &f);
	return off;
}

/* cost_fwd_flush: the broker's write to one subscriber. */
static __attribute__((noinline)) void cost_fwd_flush(struct link *l)
{
	flush(l);
}

/* cost_fwd_acks: the broker applies a subscriber's returned credit. */
static __attribute__((noinline)) void
cost_fwd_acks(struct link *l, uint32_t freed, uint32_t recvs)
{
	if (vbi_ring_tx_credit(&l->tx, freed) ||
	    vbi_credit_grant(&l->cr, recvs))
		die("broker credit", VB_EPROTO);
}

/*
 * wire_gather: the NIC's part of a delivery: the topic and payload come from
 * the publisher's frame in the broker's ring, behind the header the broker
 * staged at @off.  Emulated by copying them into the staging, so that
 * wire_copy() then moves the whole write.  Not counted: it runs inside
 * cost_ingress, and scripts/bench-cpu.sh subtracts it.
 */
static __attribute__((noinline)) void
wire_gather(struct link *l, size_t off, const struct vbi_frame_view *v)
{
	memcpy(l->stage + off + VBI_FRAME_HDR_LEN, v->topic,
	       v->span - VBI_FRAME_HDR_LEN);
}

/* wire_copy: the NIC's work for a contiguous write.  Not counted. */
static void wire_copy(struct link *l)
{
	memcpy(l->ring + l->pending.off, l->stage + l->pending.off,
	       l->pending.xfer);
}

/* cost_deliver: the subscriber's library takes one write's frames. */
static __attribute__((noinline)) uint32_t cost_deliver(struct link *l,
						       uint32_t len)
{
	struct vbi_frame_view v;
	int rc;

	rc = vbi_ring_rx_arrived(&l->rx, len);
	if (rc)
		die("deliver: arrived", rc);
	while ((rc = vbi_ring_rx_next(&l->rx, RING_SIZE / 2, &v)) == VB_OK) {
		/* The application's callback sees the view here. */
		l->delivered++;
		rc = vbi_ring_rx_release(&l->rx, &v);
		if (rc)
			die("deliver: release", rc);
	}
	if (rc != VB_EAGAIN)
		die("deliver: next", rc);
	return vbi_ring_rx_freed_units(&l->rx);
}

/* cost_ingress: the broker takes one write of the publisher's. */
static __attribute__((noinline)) uint32_t cost_ingress(struct model *m,
						       uint32_t len)
{
	struct vbi_frame_view v;
	const char *sp;
	size_t slen, i, off;
	int rc;

	rc = vbi_ring_rx_arrived(&m->up.rx, len);
	if (rc)
		die("ingress: arrived", rc);
	while ((rc = vbi_ring_rx_next(&m->up.rx, m->max_msg, &v)) == VB_OK) {
		sp = memchr(v.topic, ' ', v.topic_len);
		slen = sp ? (size_t)(sp - v.topic) : v.topic_len;
		if (vbi_subject_check(v.topic, slen) != VB_OK)
			die("ingress: subject", VB_EINVAL);
		rc = vbi_sublist_match_valid(m->sl, v.topic, slen, &m->match);
		if (rc)
			die("ingress: match", rc);
		for (i = 0; i < m->match.n; i++) {
			struct link *l = m->match.subs[i]->owner;

			off = cost_forward(l, &v, (uint32_t)(l - m->down) + 1);
			/* The NIC gathers while the frame is still held. */
			wire_gather(l, off, &v);
			m->forwarded++;
		}
		m->routed++;
		rc = vbi_ring_rx_release(&m->up.rx, &v);
		if (rc)
			die("ingress: release", rc);
	}
	if (rc != VB_EAGAIN)
		die("ingress: next", rc);
	return vbi_ring_rx_freed_units(&m->up.rx);
}

/* carry_down: each subscriber's staged frames, written and delivered. */
static void carry_down(struct model *m)
{
	struct link *l;
	uint32_t freed;
	size_t k;

	for (k = 0; k < m->nlinks; k++) {
		l = &m->down[k];
		while (l->tx.tail != l->tx.flushed) {
			cost_fwd_flush(l);
			wire_copy(l);
			freed = cost_deliver(l, (uint32_t)l->pending.len);
			cost_fwd_acks(l, freed, (uint32_t)l->cr.consumed);
		}
	}
}

/* carry_up: the publisher's staged frames, written and routed. */
static void carry_up(struct model *m)
{
	uint32_t freed;

	while (m->up.tx.tail != m->up.tx.flushed) {
		cost_pub_flush(m);
		wire_copy(&m->up);
		freed = cost_ingress(m, (uint32_t)m->up.pending.len);
		cost_pub_acks(m, freed, (uint32_t)m->up.cr.consumed);
	}
}

static void model_init(struct model *m, size_t nsubs, size_t wild)
{
	static char pat[64];
	size_t k;
	int rc;

	link_init(&m->up);
	m->nlinks = 1 + wild;
	for (k = 0; k < m->nlinks; k++)
		link_init(&m->down[k]);
	rc = vbi_sublist_create(&m->sl);
	if (rc)
		die("sublist", rc);
	m->nsubs = nsubs + wild;
	m->subs = calloc(m->nsubs, sizeof(*m->subs));
	if (m->subs == NULL)
		die("subs", VB_ENOMEM);
	/* Every literal subscription belongs to subscriber 0, so that each
	 * message has exactly one literal match; the wildcard ones to
	 * subscribers 1..wild, each of which gets every message. */
	for (k = 0; k < m->nsubs; k++) {
		if (k < nsubs)
			snprintf(pat, sizeof(pat), "svc.s%zu.evt", k);
		else
			snprintf(pat, sizeof(pat), "svc.*.evt");
		vbi_sub_init(&m->subs[k], pat, strlen(pat), NULL, 0,
			     &m->down[k < nsubs ? 0 : 1 + k - nsubs]);
		rc = vbi_sublist_insert(m->sl, &m->subs[k]);
		if (rc)
			die("insert", rc);
	}
	vbi_match_init(&m->match);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: vb_bench_cpu [--count N] [--size BYTES] "
		   "[--subs N] [--wild N] [--batch N]\n"
		   "\n"
		   "Drives N messages of BYTES through the core path of a "
		   "publisher, the broker\n(N literal subscriptions, each "
		   "message matching one, plus --wild subscribers\nof "
		   "svc.*.evt) and the subscribers, --batch messages per "
		   "write; meant to\nrun under valgrind --tool=callgrind "
		   "(scripts/bench-cpu.sh).\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 's' },
		{ "subs", required_argument, NULL, 'S' },
		{ "wild", required_argument, NULL, 'w' },
		{ "batch", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static struct model m;
	unsigned long count = 20000, size = 64, nsubs = 1000, wild = 0;
	unsigned long batch = 1;
	char(*subjects)[32];
	uint8_t *payload;
	uint64_t delivered = 0;
	unsigned long i;
	int o;

	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'n':
			count = strtoul(optarg, NULL, 10);
			break;
		case 's':
			size = strtoul(optarg, NULL, 10);
			break;
		case 'S':
			nsubs = strtoul(optarg, NULL, 10);
			break;
		case 'w':
			wild = strtoul(optarg, NULL, 10);
			break;
		case 'b':
			batch = strtoul(optarg, NULL, 10);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (count == 0 || nsubs == 0 || wild + 1 > MAX_LINKS || batch == 0 ||
	    batch > 64 || size > RING_SIZE / 4) {
		usage(stderr);
		return 2;
	}
	m.max_msg = RING_SIZE / 2;
	model_init(&m, nsubs, wild);
	subjects = calloc(nsubs, sizeof(*subjects));
	payload = calloc(1, size ? size : 1);
	if (subjects == NULL || payload == NULL)
		die("buffers", VB_ENOMEM);
	for (i = 0; i < nsubs; i++)
		snprintf(subjects[i], sizeof(subjects[i]), "svc.s%lu.evt", i);
	for (i = 0; i < count; i++) {
		memset(payload, (int)i, size < 16 ? size : 16);
		cost_publish(&m, subjects[(i * 7919) % nsubs], payload,
			     (uint32_t)size);
		/* A batch is written when full, at the end, or before the
		 * staged frames would fill a quarter of the ring. */
		if ((i + 1) % batch != 0 && i + 1 < count &&
		    m.up.tx.tail - m.up.tx.flushed + size + 64 < RING_SIZE / 4)
			continue;
		carry_up(&m);
		carry_down(&m);
	}
	for (i = 0; i < m.nlinks; i++) {
		if (m.down[i].delivered != count)
			die("a subscriber missed messages", VB_EPROTO);
		delivered += m.down[i].delivered;
	}
	printf("published %" PRIu64 " routed %" PRIu64 " forwarded %" PRIu64
	       " delivered %" PRIu64 " size %lu subs %zu batch %lu\n",
	       m.published, m.routed, m.forwarded, delivered, size, m.nsubs,
	       batch);
	vbi_match_fini(&m.match);
	vbi_sublist_destroy(m.sl);
	free(m.subs);
	free(subjects);
	free(payload);
	return 0;
}
