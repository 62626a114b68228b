/*
 * hostile.c - vb_hostile: a client of verbusd that breaks the rules.
 *
 * Each subcommand is one attack from docs/SECURITY.md's threat model,
 * carried out over one connection (or one batch of them) and reported:
 * what was sent, and what the broker did about it and when.  The driver
 * (tests/rdma/hostile.sh) runs the attacks while a legitimate stream flows
 * and judges the broker by its log, its /metrics and that stream; this
 * program judges nothing.  Exit status: 0 the attack was made and its
 * outcome printed, whatever the broker did; 1 it could not be made (a local
 * failure, or the broker refused the connection before the attack); 2
 * usage.
 *
 * Two decisions a reader must know.  It speaks the wire protocol with its
 * own verbs, rdma_cm and protobuf-c code, sharing only proto/codec.h's
 * encoder, decoder and private-data record with the broker, never
 * transport/: an attacker does not run our client code, and a bug there
 * must not hide one in the broker.  And it is single-threaded and
 * event-driven: one rdma_cm event channel for every connection, one
 * completion channel per connection that expects traffic, one poll() over
 * them (pump()), and handlers that only record what arrived in the
 * connection's struct; each attack is a straight line of "do something,
 * then pump until the struct shows an outcome or a deadline passes".
 *
 * Every line it prints starts with "hostile: CMD: ", and text the broker
 * chose is escaped, so that it cannot start a line of its own here either.
 * The last line of an attack is "hostile: CMD: result key=value ...", for
 * the driver.
 */
#include "proto/codec.h"

#include <verbus/verbus.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <infiniband/verbs.h>
#include <inttypes.h>
#include <poll.h>
#include <rdma/rdma_cma.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EXIT_UNDONE 1 /* the attack could not be made */
#define EXIT_USAGE 2

#define RING_DEFAULT (64u << 10) /* our receive ring, unless said */
#define RECVS_DEFAULT 8u /* RECVs posted, and Hello.credits */
#define MAX_MSG_DEFAULT (16u << 10) /* Hello.max_msg_size */
#define SEND_SLOTS 16u /* control SEND buffers: sends in flight at most */
#define CONNECT_MS 10000 /* resolving and connecting, each */
#define RESOLVE_STEP_MS 200 /* see docs/PROTOCOL.md, "Connection set-up" */
#define ANSWER_MS 5000 /* how long an attack waits for the broker's reply */
#define PROBE_LEN 64u /* bytes of write-outside's RDMA WRITE */

/* withhold: a big ring the broker may fill, and the fewest RECVs it takes. */
#define WITHHOLD_RING (4u << 20)
#define WITHHOLD_RECVS 4u
#define WITHHOLD_MAX_MSG (64u << 10)

/* wr_id tags: RECVs use their buffer's index (below 2^32). */
#define WRID_SEND (1ull << 32) /* | slot */
#define WRID_WRITE (2ull << 32)

/* The strings of the two forgery attacks: each tries to start a log line
 * that reads as the broker's own about a legitimate client. */
#define FORGED_NAME "x\ninfo: conn cid 1 legit-sub closed: FORGED"
#define FORGED_REASON "x\nwarn: conn legit-pub qp 0x1: FORGED"

/* Command-line options. */
struct opts {
	const char *cmd; /* the subcommand */
	const char *addr; /* the broker */
	const char *port; /* its rdma_cm port */
	const char *source; /* our address: which host we act as */
	const char *name; /* Hello.name, where the attack sends one */
	const char *subject; /* withhold: what to subscribe to */
	unsigned count; /* silent: connections; ping-flood: pings */
	int hold_s; /* withhold, silent: the longest wait for the broker */
	uint32_t code; /* forge-error: Error.code */
	const char *wait_file; /* silent: connect once this file exists */
};

/* Where one connection is.  Only the rdma_cm handler moves it. */
enum cstate {
	CS_IDLE, /* nothing created, or destroyed */
	CS_RESOLVING, /* address resolution */
	CS_ROUTING, /* route resolution */
	CS_ROUTED, /* verbs set up: ready for rdma_connect */
	CS_CONNECTING, /* rdma_connect sent */
	CS_OPEN, /* ESTABLISHED */
	CS_REJECTED, /* the broker (or its CM) said no: final */
	CS_CLOSED, /* disconnected once open: final */
	CS_FAILED, /* unreachable, connect error, or a local failure: final */
};

struct hctx;

/* One connection: its verbs objects in the order they are created, then
 * what has happened on it, as the handlers recorded it. */
struct conn {
	struct hctx *h; /* the run it belongs to */
	unsigned idx; /* 0-based, for messages */
	uint32_t ring_size; /* our receive ring (set before connecting) */
	uint32_t nrecv; /* RECVs posted at set-up (ditto) */
	bool want_cc; /* a completion channel: we expect traffic (ditto) */
	struct rdma_cm_id *id;
	struct ibv_pd *pd;
	struct ibv_comp_channel *cc; /* NULL: nothing to wait for here */
	struct ibv_cq *cq;
	uint8_t *mem; /* ring, RECV buffers, SEND buffers: one region */
	size_t mem_len;
	struct ibv_mr *mr; /* all of mem, remotely writable (the ring) */
	uint8_t *ring; /* ring_size bytes at the start of mem */
	uint8_t *recvs; /* nrecv buffers of VBI_CTRL_MAX */
	uint8_t *sends; /* SEND_SLOTS buffers of VBI_CTRL_MAX */
	uint32_t send_busy; /* bit per SEND slot in flight */
	bool repost; /* a consumed RECV is posted again */

	enum cstate state;
	uint64_t resolve_deadline; /* ns: address resolution gives up */
	const char *fail_what; /* CS_FAILED: the event or call */
	int cm_status; /* the status of that event, or of REJECTED */
	bool accept_rec; /* ESTABLISHED carried a Verbus record */
	bool rej_rec; /* REJECTED carried a Verbus record ... */
	uint16_t rej_version, rej_reason; /* ... with these */
	uint64_t t_open, t_end; /* ns: ESTABLISHED; CLOSED/REJECTED/FAILED */

	unsigned sends_ok, sends_failed; /* SEND completions */
	bool write_done; /* the RDMA WRITE probe completed ... */
	enum ibv_wc_status write_status; /* ... with this */
	bool wc_failed; /* some completion failed: the first ... */
	enum ibv_wc_status wc_status; /* ... status */
	uint64_t wc_wrid; /* ... and wr_id */

	unsigned ctrl_in; /* control messages received */
	unsigned bad_ctrl; /* of which undecodable */
	uint64_t t_first_ctrl; /* ns, 0: none yet */
	const char *first_kind; /* the first one's kind */
	unsigned kinds[VERBUS__CONTROL__BODY_PONG + 1]; /* by body_case */
	unsigned credits_in, pongs, notices; /* kinds[] of three kinds */
	bool welcome; /* a Welcome came: the broker's ring below */
	uint64_t peer_addr;
	uint32_t peer_rkey, peer_size, peer_credits, peer_max_msg;
	bool error; /* an Error came: */
	uint32_t err_code; /* its code (positive on the wire) */
	char err_reason[VBI_REASON_MAX * 4 + 1]; /* escaped */
	char notice[VBI_REASON_MAX * 4 + 1]; /* the last Notice, escaped */

	unsigned writes; /* WRITE_WITH_IMMs into our ring */
	uint64_t written; /* bytes they announced */
	uint64_t parsed; /* ring bytes walked so far (frames counted) */
	unsigned frames, pads, bad_frames; /* MSG and PAD frames, garbage */
	uint64_t t_first_frame, t_last_frame; /* ns */
};

/* The run: options, the shared rdma_cm channel, the connections. */
struct hctx {
	const struct opts *o;
	struct rdma_event_channel *ec; /* every connection's events */
	struct rdma_addrinfo *src; /* o->source, resolved once */
	struct rdma_addrinfo *dst; /* o->addr:o->port, resolved once */
	struct conn *conns; /* nconns of them */
	unsigned nconns;
	struct pollfd *pfds; /* pump()'s scratch: nconns + 1 */
	struct conn **pconns; /* the connection behind each pfds entry */
};

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Milliseconds from @from to @to (0 if @to is not later). */
static uint64_t ms_between(uint64_t from, uint64_t to)
{
	return to > from ? (to - from) / 1000000u : 0;
}

/* CLOCK_MONOTONIC in seconds, for times compared across processes (every
 * host of the test guest shares one clock). */
static double mono_s(uint64_t ns)
{
	return (double)ns / 1e9;
}

static const struct opts *g_opts; /* for say() only */

/* One line of output, "hostile: CMD: ...". */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	printf("hostile: %s: ", g_opts->cmd);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/*
 * @n bytes at @s as printable ASCII into @out (at least 4 * @n + 1 bytes):
 * a backslash escape for a backslash and anything outside 0x20-0x7e, so
 * that a string the broker sent cannot start a line of our output.
 */
static char *printable(const char *s, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	char *p = out;

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '\n') {
			*p++ = '\\';
			*p++ = 'n';
		} else if (ch == '\\') {
			*p++ = '\\';
			*p++ = '\\';
		} else if (ch < 0x20 || ch > 0x7e) {
			*p++ = '\\';
			*p++ = 'x';
			*p++ = hex[ch >> 4];
			*p++ = hex[ch & 15];
		} else {
			*p++ = (char)ch;
		}
	}
	*p = '\0';
	return out;
}

/* An ibv_wc_status as one word, for result lines. */
static const char *status_word(enum ibv_wc_status st, char *out, size_t cap)
{
	snprintf(out, cap, "%s", ibv_wc_status_str(st));
	for (char *p = out; *p; p++)
		if (*p == ' ')
			*p = '_';
	return out;
}

/* The words for a reject record's reason (docs/PROTOCOL.md). */
static const char *reject_words(uint16_t reason)
{
	switch (reason) {
	case 0:
		return "none given";
	case 1:
		return "too many connections";
	case 2:
		return "too many handshakes from this address";
	case 3:
		return "shutting down";
	default:
		return "unknown reason";
	}
}

/*
 * A peer's rdma_cm private data as the 8-byte record, decoded here rather
 * than by the codec so that this program reads the reason field by its
 * wire position (magic 4, version 2, reason 2, big-endian) whatever the
 * codec calls it.  Returns true if it carries the Verbus magic.
 */
static bool record_decode(const void *pd, size_t len, uint16_t *version,
			  uint16_t *reason)
{
	const uint8_t *p = pd;

	if (!p || len < VBI_CM_HDR_LEN)
		return false;
	if (((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
	     p[3]) != VBI_CM_MAGIC)
		return false;
	*version = (uint16_t)(p[4] << 8 | p[5]);
	*reason = (uint16_t)(p[6] << 8 | p[7]);
	return true;
}

static bool state_final(enum cstate s)
{
	return s == CS_REJECTED || s == CS_CLOSED || s == CS_FAILED;
}

static void conn_fail_local(struct conn *c, const char *what)
{
	fprintf(stderr, "hostile: %s: conn %u: %s: %s\n", g_opts->cmd, c->idx,
		what, strerror(errno));
	c->fail_what = what;
	c->state = CS_FAILED;
	c->t_end = now_ns();
}

/* ---- verbs ------------------------------------------------------------ */

static uint8_t *recv_buf(struct conn *c, uint64_t i)
{
	return c->recvs + i * VBI_CTRL_MAX;
}

static int post_recv(struct conn *c, uint64_t i)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)recv_buf(c, i),
		.length = VBI_CTRL_MAX,
		.lkey = c->mr->lkey,
	};
	struct ibv_recv_wr wr = { .wr_id = i, .sg_list = &sge, .num_sge = 1 };
	struct ibv_recv_wr *bad;

	return ibv_post_recv(c->id->qp, &wr, &bad) ? -1 : 0;
}

/*
 * Memory, PD, completion channel, CQ and QP on a routed id, and every RECV
 * posted before rdma_connect, so that nothing the broker sends can find
 * none.  On failure the caller's conn_destroy() frees what was made.
 */
static int conn_setup(struct conn *c)
{
	struct ibv_qp_init_attr qa = { 0 };
	size_t ctrl = (size_t)(c->nrecv + SEND_SLOTS) * VBI_CTRL_MAX;

	c->mem_len = c->ring_size + ctrl;
	if (posix_memalign((void **)&c->mem, 4096, c->mem_len)) {
		c->mem = NULL;
		return -1;
	}
	memset(c->mem, 0, c->mem_len);
	c->ring = c->mem;
	c->recvs = c->mem + c->ring_size;
	c->sends = c->recvs + (size_t)c->nrecv * VBI_CTRL_MAX;
	c->pd = ibv_alloc_pd(c->id->verbs);
	if (!c->pd)
		return -1;
	c->mr = ibv_reg_mr(c->pd, c->mem, c->mem_len,
			   IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
	if (!c->mr)
		return -1;
	if (c->want_cc) {
		c->cc = ibv_create_comp_channel(c->id->verbs);
		if (!c->cc || fcntl(c->cc->fd, F_SETFL,
				    fcntl(c->cc->fd, F_GETFL) | O_NONBLOCK))
			return -1;
	}
	c->cq = ibv_create_cq(c->id->verbs, (int)(c->nrecv + SEND_SLOTS + 4), c,
			      c->cc, 0);
	if (!c->cq)
		return -1;
	qa.send_cq = c->cq;
	qa.recv_cq = c->cq;
	qa.qp_type = IBV_QPT_RC;
	qa.cap.max_send_wr = SEND_SLOTS + 2; /* the WRITE probe too */
	qa.cap.max_recv_wr = c->nrecv;
	qa.cap.max_send_sge = 1;
	qa.cap.max_recv_sge = 1;
	if (rdma_create_qp(c->id, c->pd, &qa))
		return -1;
	for (uint32_t i = 0; i < c->nrecv; i++)
		if (post_recv(c, i))
			return -1;
	c->repost = true;
	return 0;
}

/* Free whatever exists, in reverse order of creation.  Destroying an
 * established id disconnects it: the broker sees a DISCONNECTED. */
static void conn_destroy(struct conn *c)
{
	if (c->id && c->id->qp)
		rdma_destroy_qp(c->id);
	if (c->cq)
		ibv_destroy_cq(c->cq);
	if (c->cc)
		ibv_destroy_comp_channel(c->cc);
	if (c->mr)
		ibv_dereg_mr(c->mr);
	if (c->pd)
		ibv_dealloc_pd(c->pd);
	if (c->id)
		rdma_destroy_id(c->id);
	free(c->mem);
	c->id = NULL;
	c->cq = NULL;
	c->cc = NULL;
	c->mr = NULL;
	c->pd = NULL;
	c->mem = NULL;
	if (!state_final(c->state))
		c->state = CS_IDLE;
}

/* SEND one control message from a free slot; -1 if none is free or the
 * post fails (the QP is in error: the broker has gone). */
static int send_ctrl(struct conn *c, const Verbus__Control *m)
{
	struct ibv_sge sge;
	struct ibv_send_wr wr = { 0 }, *bad;
	unsigned slot;
	size_t len;
	int rc;

	for (slot = 0; slot < SEND_SLOTS; slot++)
		if (!(c->send_busy & (1u << slot)))
			break;
	if (slot == SEND_SLOTS || !c->id || !c->id->qp)
		return -1;
	rc = vbi_codec_encode(m, c->sends + (size_t)slot * VBI_CTRL_MAX,
			      VBI_CTRL_MAX, &len);
	if (rc) {
		fprintf(stderr, "hostile: %s: encode: %s\n", g_opts->cmd,
			vb_strerror(rc));
		return -1;
	}
	sge.addr = (uintptr_t)(c->sends + (size_t)slot * VBI_CTRL_MAX);
	sge.length = (uint32_t)len;
	sge.lkey = c->mr->lkey;
	wr.wr_id = WRID_SEND | slot;
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.opcode = IBV_WR_SEND;
	wr.send_flags = IBV_SEND_SIGNALED;
	if (ibv_post_send(c->id->qp, &wr, &bad))
		return -1;
	c->send_busy |= 1u << slot;
	return 0;
}

/* One plain RDMA WRITE of PROBE_LEN bytes to @raddr with the broker's
 * rkey, from the last SEND slot (never busy: sends wait before it). */
static int post_write(struct conn *c, uint64_t raddr)
{
	uint8_t *buf = c->sends + (size_t)(SEND_SLOTS - 1) * VBI_CTRL_MAX;
	struct ibv_sge sge = {
		.addr = (uintptr_t)buf,
		.length = PROBE_LEN,
		.lkey = c->mr->lkey,
	};
	struct ibv_send_wr wr = {
		.wr_id = WRID_WRITE,
		.sg_list = &sge,
		.num_sge = 1,
		.opcode = IBV_WR_RDMA_WRITE,
		.send_flags = IBV_SEND_SIGNALED,
	};
	struct ibv_send_wr *bad;

	memset(buf, 0xee, PROBE_LEN);
	wr.wr.rdma.remote_addr = raddr;
	wr.wr.rdma.rkey = c->peer_rkey;
	c->write_done = false;
	return ibv_post_send(c->id->qp, &wr, &bad) ? -1 : 0;
}

/* ---- what arrives ------------------------------------------------------ */

static void on_ctrl(struct conn *c, const uint8_t *buf, uint32_t len)
{
	Verbus__Control *m = NULL;
	int rc = vbi_codec_decode(buf, len, &m);

	c->ctrl_in++;
	if (!c->t_first_ctrl)
		c->t_first_ctrl = now_ns();
	if (rc) {
		c->bad_ctrl++;
		if (!c->first_kind)
			c->first_kind = "undecodable";
		return;
	}
	if (!c->first_kind)
		c->first_kind = vbi_codec_kind_name(m);
	if (m->body_case > 0 && m->body_case <= VERBUS__CONTROL__BODY_PONG)
		c->kinds[m->body_case]++;
	switch (m->body_case) {
	case VERBUS__CONTROL__BODY_WELCOME:
		c->welcome = true;
		c->peer_addr = m->welcome->ring->addr;
		c->peer_rkey = m->welcome->ring->rkey;
		c->peer_size = m->welcome->ring->size;
		c->peer_credits = m->welcome->credits;
		c->peer_max_msg = m->welcome->max_msg_size;
		break;
	case VERBUS__CONTROL__BODY_ERROR:
		c->error = true;
		c->err_code = m->error->code;
		printable(m->error->reason, strlen(m->error->reason),
			  c->err_reason);
		break;
	case VERBUS__CONTROL__BODY_CREDIT:
		c->credits_in++;
		break;
	case VERBUS__CONTROL__BODY_PONG:
		c->pongs++;
		break;
	case VERBUS__CONTROL__BODY_NOTICE:
		c->notices++;
		printable(m->notice->reason, strlen(m->notice->reason),
			  c->notice);
		break;
	default:
		break;
	}
	vbi_codec_free(m);
}

/* The control messages @c received, by kind ("welcome 1, credit 2"). */
static const char *kinds_line(const struct conn *c, char *out, size_t cap)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	size_t n = 0;

	snprintf(out, cap, "none");
	for (int k = 1; k <= VERBUS__CONTROL__BODY_PONG && n < cap; k++) {
		if (!c->kinds[k])
			continue;
		m.body_case = (Verbus__Control__BodyCase)k;
		n += (size_t)snprintf(out + n, cap - n, "%s%s %u",
				      n ? ", " : "", vbi_codec_kind_name(&m),
				      c->kinds[k]);
	}
	if (c->bad_ctrl && n < cap)
		snprintf(out + n, cap - n, "%sundecodable %u", n ? ", " : "",
			 c->bad_ctrl);
	return out;
}

static uint32_t le32(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/*
 * @bytes more of our ring were written: count the frames in them.  Only
 * len and kind are read (docs/PROTOCOL.md, "Frames"), bounded by the ring:
 * the broker's bytes are not trusted here either.
 */
static void on_written(struct conn *c, uint32_t bytes)
{
	c->writes++;
	c->written += bytes;
	c->t_last_frame = now_ns();
	if (!c->t_first_frame)
		c->t_first_frame = c->t_last_frame;
	while (c->parsed + 8 <= c->written) {
		size_t off = (size_t)(c->parsed & (c->ring_size - 1));
		uint32_t len = le32(c->ring + off);
		uint8_t kind = c->ring[off + 4];
		size_t span = ((size_t)len + 7) & ~(size_t)7;

		if (kind == 2) { /* PAD: the rest of the ring */
			c->pads++;
			c->parsed += c->ring_size - off;
		} else if (kind == 1 && len >= 32 &&
			   span <= c->ring_size - off) {
			c->frames++;
			c->parsed += span;
		} else {
			c->bad_frames++;
			c->parsed = c->written; /* lost: stop walking */
		}
	}
}

static void on_wc(struct conn *c, const struct ibv_wc *wc)
{
	uint64_t tag = wc->wr_id & ~0xffffffffull;

	if (tag == WRID_SEND)
		c->send_busy &= ~(1u << (wc->wr_id & 31));
	if (tag == WRID_WRITE) {
		c->write_done = true;
		c->write_status = wc->status;
	}
	if (wc->status != IBV_WC_SUCCESS) {
		if (!c->wc_failed) {
			c->wc_failed = true;
			c->wc_status = wc->status;
			c->wc_wrid = wc->wr_id;
		}
		if (tag == WRID_SEND)
			c->sends_failed++;
		return;
	}
	switch (wc->opcode) {
	case IBV_WC_SEND:
		c->sends_ok++;
		return;
	case IBV_WC_RECV:
		on_ctrl(c, recv_buf(c, wc->wr_id),
			wc->byte_len < VBI_CTRL_MAX ? wc->byte_len :
						      VBI_CTRL_MAX);
		break;
	case IBV_WC_RECV_RDMA_WITH_IMM:
		on_written(c, ntohl(wc->imm_data));
		break;
	default:
		return;
	}
	if (c->repost && c->state == CS_OPEN && post_recv(c, wc->wr_id))
		conn_fail_local(c, "ibv_post_recv");
}

/* One step of address resolution, no longer than the deadline leaves. */
static int resolve_step(struct hctx *h, struct conn *c)
{
	uint64_t now = now_ns();
	uint64_t left = c->resolve_deadline > now ?
				(c->resolve_deadline - now) / 1000000u :
				0;

	if (left == 0)
		return -1;
	return rdma_resolve_addr(
		c->id, h->src->ai_src_addr, h->dst->ai_dst_addr,
		(int)(left < RESOLVE_STEP_MS ? left : RESOLVE_STEP_MS));
}

static void on_cm(struct hctx *h, struct rdma_cm_event *ev)
{
	struct conn *c = ev->id->context;
	const void *pd = ev->param.conn.private_data;
	size_t pd_len = ev->param.conn.private_data_len;
	uint16_t version = 0, reason = 0;

	switch (ev->event) {
	case RDMA_CM_EVENT_ADDR_RESOLVED:
		c->state = CS_ROUTING;
		if (rdma_resolve_route(c->id, CONNECT_MS))
			conn_fail_local(c, "rdma_resolve_route");
		return;
	case RDMA_CM_EVENT_ADDR_ERROR:
		/* A cold neighbour cache: again, until the deadline. */
		if (c->state == CS_RESOLVING && resolve_step(h, c) == 0)
			return;
		break;
	case RDMA_CM_EVENT_ROUTE_RESOLVED:
		if (conn_setup(c)) {
			conn_fail_local(c, "verbs set-up");
			return;
		}
		c->state = CS_ROUTED;
		return;
	case RDMA_CM_EVENT_ESTABLISHED:
		c->accept_rec = record_decode(pd, pd_len, &version, &reason);
		c->state = CS_OPEN;
		c->t_open = now_ns();
		return;
	case RDMA_CM_EVENT_REJECTED:
		c->rej_rec = record_decode(pd, pd_len, &c->rej_version,
					   &c->rej_reason);
		c->cm_status = ev->status;
		c->state = CS_REJECTED;
		c->t_end = now_ns();
		return;
	case RDMA_CM_EVENT_DISCONNECTED:
		if (c->state == CS_OPEN || c->state == CS_CONNECTING) {
			c->state = CS_CLOSED;
			c->t_end = now_ns();
		}
		return;
	case RDMA_CM_EVENT_TIMEWAIT_EXIT:
		return;
	default:
		break;
	}
	/* Every other event ends the connection's chances. */
	if (state_final(c->state))
		return;
	c->fail_what = rdma_event_str(ev->event);
	c->cm_status = ev->status;
	c->state = CS_FAILED;
	c->t_end = now_ns();
}

/*
 * Handle what is pending (completions, then rdma_cm events); if nothing
 * was, sleep on the channels for up to @timeout_ms.  Returns the events
 * handled (0: none, the caller looks at the clock), or -1 on a local
 * failure.
 */
static int pump(struct hctx *h, int timeout_ms)
{
	struct rdma_cm_event *ev;
	struct ibv_wc wc[16];
	struct ibv_cq *cq;
	void *ctx;
	int n = 0, k, np = 0;

	for (unsigned i = 0; i < h->nconns; i++) {
		struct conn *c = &h->conns[i];

		while (c->cq && (k = ibv_poll_cq(c->cq, 16, wc)) > 0) {
			for (int j = 0; j < k; j++)
				on_wc(c, &wc[j]);
			n += k;
		}
	}
	while (rdma_get_cm_event(h->ec, &ev) == 0) {
		on_cm(h, ev);
		rdma_ack_cm_event(ev);
		n++;
	}
	if (errno != EAGAIN && errno != EWOULDBLOCK)
		return -1;
	if (n || timeout_ms == 0)
		return n;
	/* Nothing: arm every CQ, look once more (a completion may have come
	 * before the arming), then sleep. */
	h->pfds[np] = (struct pollfd){ .fd = h->ec->fd, .events = POLLIN };
	h->pconns[np++] = NULL;
	for (unsigned i = 0; i < h->nconns; i++) {
		struct conn *c = &h->conns[i];

		if (!c->cc)
			continue;
		if (ibv_req_notify_cq(c->cq, 0))
			return -1;
		h->pfds[np] =
			(struct pollfd){ .fd = c->cc->fd, .events = POLLIN };
		h->pconns[np++] = c;
		while ((k = ibv_poll_cq(c->cq, 16, wc)) > 0) {
			for (int j = 0; j < k; j++)
				on_wc(c, &wc[j]);
			n += k;
		}
	}
	if (n)
		return n;
	if (poll(h->pfds, (nfds_t)np, timeout_ms) < 0 && errno != EINTR)
		return -1;
	for (int i = 1; i < np; i++)
		if (h->pfds[i].revents &&
		    ibv_get_cq_event(h->pconns[i]->cc, &cq, &ctx) == 0)
			ibv_ack_cq_events(cq, 1);
	return 0;
}

typedef bool (*cond_fn)(const struct conn *c);

/* Pump until @done(@c) or @ms pass: 1 done, 0 timed out, -1 failure. */
static int wait_for(struct hctx *h, struct conn *c, cond_fn done, int ms)
{
	uint64_t end = now_ns() + (uint64_t)ms * 1000000u;

	while (!done(c)) {
		uint64_t now = now_ns();

		if (now >= end)
			return 0;
		if (pump(h, (int)((end - now) / 1000000u) + 1) < 0)
			return -1;
	}
	return 1;
}

static bool is_routed(const struct conn *c)
{
	return c->state == CS_ROUTED || state_final(c->state);
}

static bool is_connected(const struct conn *c)
{
	return c->state == CS_OPEN || state_final(c->state);
}

static bool is_gone(const struct conn *c)
{
	return state_final(c->state);
}

static bool is_answered(const struct conn *c)
{
	return c->ctrl_in > 0 || state_final(c->state);
}

static bool sends_idle(const struct conn *c)
{
	return c->send_busy == 0;
}

static bool write_completed(const struct conn *c)
{
	return c->write_done;
}

/* ---- connecting ------------------------------------------------------- */

/* A fresh id for @c and the first step of resolution. */
static int conn_start(struct hctx *h, struct conn *c)
{
	if (rdma_create_id(h->ec, &c->id, c, RDMA_PS_TCP)) {
		conn_fail_local(c, "rdma_create_id");
		return -1;
	}
	c->state = CS_RESOLVING;
	c->resolve_deadline = now_ns() + (uint64_t)CONNECT_MS * 1000000u;
	if (resolve_step(h, c)) {
		conn_fail_local(c, "rdma_resolve_addr");
		return -1;
	}
	return 0;
}

/* rdma_connect with a valid private-data record. */
static int conn_connect(struct conn *c)
{
	struct rdma_conn_param cp = { 0 };
	uint8_t pd[VBI_CM_HDR_LEN];

	vbi_cm_hdr_encode(pd);
	cp.private_data = pd;
	cp.private_data_len = sizeof(pd);
	cp.responder_resources = 1;
	cp.initiator_depth = 1;
	cp.retry_count = 7;
	cp.rnr_retry_count = 7;
	c->state = CS_CONNECTING;
	if (rdma_connect(c->id, &cp)) {
		conn_fail_local(c, "rdma_connect");
		return -1;
	}
	return 0;
}

/* Why @c is not open, in words. */
static void say_not_open(const struct conn *c)
{
	if (c->state == CS_REJECTED && c->rej_rec)
		say("conn %u: rejected (status %d): reason %u (%s)", c->idx,
		    c->cm_status, c->rej_reason, reject_words(c->rej_reason));
	else if (c->state == CS_REJECTED)
		say("conn %u: rejected (status %d) without a verbus record",
		    c->idx, c->cm_status);
	else if (c->state == CS_FAILED)
		say("conn %u: %s (status %d)", c->idx,
		    c->fail_what ? c->fail_what : "failed", c->cm_status);
	else if (c->state == CS_CLOSED)
		say("conn %u: disconnected before it was used", c->idx);
	else
		say("conn %u: no answer to the connection request", c->idx);
}

/*
 * One connection, to ESTABLISHED: a ring of @ring bytes and @nrecv RECVs.
 * Returns 0 when open; otherwise says why (a rejection, say) and returns
 * -1: the attack that wanted it cannot be made.
 */
static int connect_one(struct hctx *h, struct conn *c, uint32_t ring,
		       uint32_t nrecv)
{
	c->ring_size = ring;
	c->nrecv = nrecv;
	c->want_cc = true;
	if (conn_start(h, c) || wait_for(h, c, is_routed, CONNECT_MS) <= 0 ||
	    c->state != CS_ROUTED || conn_connect(c) ||
	    wait_for(h, c, is_connected, CONNECT_MS) <= 0 ||
	    c->state != CS_OPEN) {
		say_not_open(c);
		return -1;
	}
	if (!c->accept_rec)
		say("conn %u: the accept carried no verbus record", c->idx);
	return 0;
}

/* What we claim in a Hello; the defects of the bad-hello attacks. */
struct hello_spec {
	const char *name;
	uint32_t ring_size; /* claimed: may differ from the real ring */
	uint32_t max_msg;
	uint32_t credits;
};

static int send_hello(struct conn *c, const struct hello_spec *s)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__Hello hl = VERBUS__HELLO__INIT;
	Verbus__RingInfo r = VERBUS__RING_INFO__INIT;

	r.addr = (uintptr_t)c->ring;
	r.rkey = c->mr->rkey;
	r.size = s->ring_size;
	hl.version = VBI_PROTO_VERSION;
	hl.name = (char *)s->name;
	hl.ring = &r;
	hl.max_msg_size = s->max_msg;
	hl.credits = s->credits;
	m.body_case = VERBUS__CONTROL__BODY_HELLO;
	m.hello = &hl;
	return send_ctrl(c, &m);
}

/*
 * How the broker answered what we sent at @t_sent (ns): one line in words,
 * then the result line (answer=welcome|error|disconnect|none, ms=).
 */
static void say_answer(const struct conn *c, uint64_t t_sent, const char *more)
{
	uint64_t t = c->t_first_ctrl ? c->t_first_ctrl : c->t_end;
	uint64_t ms = ms_between(t_sent, t);
	const char *answer = "none";

	if (c->welcome) {
		answer = "welcome";
		say("answer: a welcome after %" PRIu64 " ms (the broker's ring "
		    "0x%" PRIx64 " rkey 0x%x size %u, %u credits)",
		    ms, c->peer_addr, c->peer_rkey, c->peer_size,
		    c->peer_credits);
	} else if (c->error) {
		answer = "error";
		say("answer: an error after %" PRIu64 " ms: code %u (%s) "
		    "reason \"%s\"",
		    ms, c->err_code, vb_strerror(-(int)c->err_code),
		    c->err_reason);
	} else if (c->ctrl_in) {
		answer = c->first_kind;
		say("answer: a %s after %" PRIu64 " ms", c->first_kind, ms);
	} else if (state_final(c->state)) {
		answer = "disconnect";
		say("answer: disconnected by the broker after %" PRIu64
		    " ms, nothing said",
		    ms);
	} else {
		ms = ms_between(t_sent, now_ns());
		say("answer: nothing within %" PRIu64 " ms, still connected",
		    ms);
	}
	if (c->error && state_final(c->state))
		say("then disconnected %" PRIu64 " ms after we sent",
		    ms_between(t_sent, c->t_end));
	say("result answer=%s ms=%" PRIu64 " code=%u frames=%u%s", answer, ms,
	    c->err_code, c->frames, more ? more : "");
}

/* Say goodbye (when still open) and wait a little for the broker's side,
 * so that its log shows the close before we are gone. */
static void conn_leave(struct hctx *h, struct conn *c)
{
	if (c->state == CS_OPEN && c->id) {
		rdma_disconnect(c->id);
		wait_for(h, c, is_gone, 2000);
	}
	conn_destroy(c);
}

/* ---- the attacks ------------------------------------------------------ */

/* A Hello without credentials whose name carries a newline and what would
 * follow it in the broker's log: a line of its own, about another client. */
static int run_forge_name(struct hctx *h)
{
	struct conn *c = &h->conns[0];
	struct hello_spec s = { FORGED_NAME, RING_DEFAULT, MAX_MSG_DEFAULT,
				RECVS_DEFAULT };
	char shown[sizeof(FORGED_NAME) * 4];
	uint64_t t;
	int rc = EXIT_UNDONE;

	if (connect_one(h, c, RING_DEFAULT, RECVS_DEFAULT))
		goto out_leave;
	t = now_ns();
	if (send_hello(c, &s)) {
		say("cannot send the hello");
		goto out_leave;
	}
	say("sent a hello named \"%s\", no credentials",
	    printable(FORGED_NAME, strlen(FORGED_NAME), shown));
	if (wait_for(h, c, is_answered, ANSWER_MS) < 0)
		goto out_leave;
	/* The Error of a refusal comes before the disconnect. */
	if (c->error)
		wait_for(h, c, is_gone, 2000);
	say_answer(c, t, NULL);
	rc = 0;
out_leave:
	conn_leave(h, c);
	return rc;
}

/* An Error instead of a Hello, its reason again a forged log line. */
static int run_forge_error(struct hctx *h)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__Error e = VERBUS__ERROR__INIT;
	struct conn *c = &h->conns[0];
	char shown[sizeof(FORGED_REASON) * 4];
	uint64_t t;
	int rc = EXIT_UNDONE;

	if (connect_one(h, c, RING_DEFAULT, RECVS_DEFAULT))
		goto out_leave;
	e.code = h->o->code;
	e.reason = (char *)FORGED_REASON;
	m.body_case = VERBUS__CONTROL__BODY_ERROR;
	m.error = &e;
	t = now_ns();
	if (send_ctrl(c, &m)) {
		say("cannot send the error");
		goto out_leave;
	}
	say("sent an error before any hello: code %u, reason \"%s\"", e.code,
	    printable(FORGED_REASON, strlen(FORGED_REASON), shown));
	if (wait_for(h, c, is_answered, ANSWER_MS) < 0)
		goto out_leave;
	say_answer(c, t, NULL);
	rc = 0;
out_leave:
	conn_leave(h, c);
	return rc;
}

/*
 * A subscriber that takes nothing: a 4 MiB ring but 4 RECVs, the fewest
 * the protocol allows (Hello.credits 4), so that the broker can send it
 * two frames and must then wait for credit that never comes: no Credit is
 * sent, no RECV reposted, no frame released.  Reported: the frames that
 * came, and when (after the Subscribe) the broker gave up on us.
 */
static int run_withhold(struct hctx *h)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__Subscribe sub = VERBUS__SUBSCRIBE__INIT;
	struct conn *c = &h->conns[0];
	struct hello_spec s = { h->o->name, WITHHOLD_RING, WITHHOLD_MAX_MSG,
				WITHHOLD_RECVS };
	uint64_t t_sub, t_stall;
	int rc = EXIT_UNDONE;
	char kinds[160];
	bool gone;

	if (connect_one(h, c, WITHHOLD_RING, WITHHOLD_RECVS))
		goto out_leave;
	if (send_hello(c, &s) || wait_for(h, c, is_answered, ANSWER_MS) < 0)
		goto out_leave;
	if (!c->welcome) {
		say_answer(c, c->t_open, NULL);
		goto out_leave;
	}
	/* Handshake RECVs are outside the credit accounting, so the
	 * Welcome's was reposted: 4 posted, as announced.  From here on,
	 * nothing goes back. */
	c->repost = false;
	say("hello as \"%s\": a %u-byte ring, %u credits, %u RECVs posted; "
	    "welcome: the broker has %u credits",
	    h->o->name, WITHHOLD_RING, WITHHOLD_RECVS, WITHHOLD_RECVS,
	    c->peer_credits);
	sub.sid = 1;
	sub.subject = (char *)h->o->subject;
	m.body_case = VERBUS__CONTROL__BODY_SUBSCRIBE;
	m.subscribe = &sub;
	t_sub = now_ns();
	if (send_ctrl(c, &m) || wait_for(h, c, sends_idle, ANSWER_MS) <= 0 ||
	    c->sends_failed) {
		say("cannot send the subscribe");
		goto out_leave;
	}
	say("subscribed to %s (sid 1); holding everything for up to %d s",
	    h->o->subject, h->o->hold_s);
	if (wait_for(h, c, is_gone, h->o->hold_s * 1000) < 0)
		goto out_leave;
	gone = state_final(c->state);
	t_stall = c->frames ? c->t_last_frame : t_sub;
	say("received %u frames in %u writes (%" PRIu64 " bytes)%s; control "
	    "messages: %s",
	    c->frames, c->writes, c->written,
	    c->bad_frames ? " and garbage" : "",
	    kinds_line(c, kinds, sizeof(kinds)));
	if (c->notices)
		say("the last notice: \"%s\"", c->notice);
	if (c->frames)
		say("first frame %" PRIu64 " ms, last %" PRIu64
		    " ms after subscribing",
		    ms_between(t_sub, c->t_first_frame),
		    ms_between(t_sub, c->t_last_frame));
	if (gone)
		say("disconnected by the broker %" PRIu64 " ms after "
		    "subscribing, %" PRIu64 " ms after the stall began",
		    ms_between(t_sub, c->t_end), ms_between(t_stall, c->t_end));
	else
		say("still connected after %d s", h->o->hold_s);
	say("result frames=%u writes=%u last_frame_ms=%" PRIu64
	    " disconnected=%d disconnect_ms=%" PRIu64 " stall_ms=%" PRIu64,
	    c->frames, c->writes, ms_between(t_sub, t_stall), gone ? 1 : 0,
	    gone ? ms_between(t_sub, c->t_end) : 0,
	    gone ? ms_between(t_stall, c->t_end) : 0);
	rc = 0;
out_leave:
	conn_leave(h, c);
	return rc;
}

/* Block until @path exists (the driver's start signal); -1 after 120 s. */
static int wait_file(const char *path)
{
	struct stat st;

	for (int i = 0; i < 120 * 20; i++) {
		if (stat(path, &st) == 0)
			return 0;
		usleep(50000);
	}
	return -1;
}

static bool silent_busy(const struct hctx *h)
{
	for (unsigned i = 0; i < h->nconns; i++)
		if (h->conns[i].state == CS_CONNECTING ||
		    h->conns[i].state == CS_OPEN)
			return true;
	return false;
}

/* Per-connection lines and the summary of a silent batch at @t_end. */
static void silent_report(struct hctx *h, uint64_t t_end)
{
	unsigned acc = 0, rej = 0, failed = 0, pending = 0, dropped = 0;
	unsigned norec = 0, reasons[5] = { 0 };
	uint64_t dmin = UINT64_MAX, dmax = 0;

	for (unsigned i = 0; i < h->nconns; i++) {
		struct conn *c = &h->conns[i];
		uint64_t ms;

		if (c->t_open) {
			acc++;
			/* For the driver's count of what was open at once. */
			say("conn %u: open %.3f %.3f%s", c->idx,
			    mono_s(c->t_open),
			    mono_s(c->state == CS_CLOSED ? c->t_end : t_end),
			    c->state == CS_CLOSED ? "" : " (still open)");
		}
		if (c->state == CS_CLOSED && c->t_open) {
			dropped++;
			ms = ms_between(c->t_open, c->t_end);
			dmin = ms < dmin ? ms : dmin;
			dmax = ms > dmax ? ms : dmax;
		} else if (c->state == CS_REJECTED) {
			rej++;
			if (!c->rej_rec)
				norec++;
			else
				reasons[c->rej_reason < 4 ? c->rej_reason :
							    4]++;
			say_not_open(c);
		} else if (c->state == CS_FAILED || c->state == CS_CLOSED) {
			failed++;
			say_not_open(c);
		} else if (c->state != CS_OPEN) {
			pending++;
		}
	}
	say("%u requested from %s: %u accepted, %u rejected, %u failed, "
	    "%u unanswered",
	    h->nconns, h->o->source, acc, rej, failed, pending);
	if (dropped)
		say("the broker dropped %u of the accepted, %" PRIu64
		    "-%" PRIu64 " ms after they opened",
		    dropped, dmin, dmax);
	if (acc > dropped)
		say("%u accepted connections still open after %d s",
		    acc - dropped, h->o->hold_s);
	say("result requested=%u accepted=%u rejected=%u failed=%u "
	    "unanswered=%u dropped=%u drop_min_ms=%" PRIu64
	    " drop_max_ms=%" PRIu64 " still_open=%u reason0=%u reason1=%u "
	    "reason2=%u reason3=%u reason_other=%u no_record=%u",
	    h->nconns, acc, rej, failed, pending, dropped, dropped ? dmin : 0,
	    dmax, acc - dropped, reasons[0], reasons[1], reasons[2], reasons[3],
	    reasons[4], norec);
}

/*
 * N connections that never send a Hello.  All are resolved and set up
 * first, then (once --wait-file exists: two batches from two hosts start
 * together) connected at once, and watched for up to --hold-s seconds:
 * accepted or rejected (and why), and when the broker drops the accepted.
 */
static int run_silent(struct hctx *h)
{
	unsigned routed = 0;
	uint64_t t_go, end;

	for (unsigned i = 0; i < h->nconns; i++) {
		struct conn *c = &h->conns[i];

		/* Nothing will arrive: the smallest of everything. */
		c->ring_size = 4096;
		c->nrecv = 1;
		if (conn_start(h, c))
			return EXIT_UNDONE;
	}
	end = now_ns() + 4ull * CONNECT_MS * 1000000u;
	for (unsigned i = 0; i < h->nconns; i++)
		while (!is_routed(&h->conns[i]) && now_ns() < end)
			if (pump(h, 200) < 0)
				return EXIT_UNDONE;
	for (unsigned i = 0; i < h->nconns; i++)
		routed += h->conns[i].state == CS_ROUTED;
	if (routed < h->nconns) {
		say("only %u of %u connections could be set up", routed,
		    h->nconns);
		return EXIT_UNDONE;
	}
	if (h->o->wait_file) {
		say("%u connections ready, waiting for %s", routed,
		    h->o->wait_file);
		fflush(stdout);
		if (wait_file(h->o->wait_file)) {
			say("%s never appeared", h->o->wait_file);
			return EXIT_UNDONE;
		}
	}
	t_go = now_ns();
	for (unsigned i = 0; i < h->nconns; i++)
		if (conn_connect(&h->conns[i]))
			return EXIT_UNDONE;
	say("%u connection requests sent at %.3f; no hello will follow",
	    h->nconns, mono_s(t_go));
	end = t_go + (uint64_t)h->o->hold_s * 1000000000u;
	while (silent_busy(h) && now_ns() < end)
		if (pump(h, 100) < 0)
			return EXIT_UNDONE;
	silent_report(h, now_ns());
	return 0;
}

/*
 * Two RDMA WRITEs of PROBE_LEN bytes with the rkey of our own ring on the
 * broker, each on its own connection (the first error puts a QP in error,
 * and a second write there would never leave): one starting at the first
 * byte past the ring, one starting one byte before it.
 */
static int run_write_outside(struct hctx *h)
{
	static const char *const where[] = { "past", "before" };
	char words[2][64];
	int disc[2] = { 0, 0 }, done = 0;

	for (int k = 0; k < 2; k++) {
		struct conn *c = &h->conns[k];
		struct hello_spec s = { h->o->name, RING_DEFAULT,
					MAX_MSG_DEFAULT, RECVS_DEFAULT };
		uint64_t raddr, t;

		snprintf(words[k], sizeof(words[k]), "not_made");
		if (connect_one(h, c, RING_DEFAULT, RECVS_DEFAULT) ||
		    send_hello(c, &s) ||
		    wait_for(h, c, is_answered, ANSWER_MS) < 0 || !c->welcome) {
			say("conn %u: no welcome, no write", c->idx);
			conn_leave(h, c);
			continue;
		}
		raddr = k == 0 ? c->peer_addr + c->peer_size : c->peer_addr - 1;
		t = now_ns();
		if (post_write(c, raddr) ||
		    wait_for(h, c, write_completed, ANSWER_MS) <= 0) {
			say("conn %u: the write never completed", c->idx);
			conn_leave(h, c);
			continue;
		}
		status_word(c->write_status, words[k], sizeof(words[k]));
		say("conn %u: %u bytes at 0x%" PRIx64 " (%s ring 0x%" PRIx64
		    "-0x%" PRIx64 "): %s%s",
		    c->idx, PROBE_LEN, raddr,
		    k == 0 ? "just past the end of the" :
			     "one byte before the start of the",
		    c->peer_addr, c->peer_addr + c->peer_size,
		    ibv_wc_status_str(c->write_status),
		    c->write_status == IBV_WC_SUCCESS ? " (NOT CONFINED)" : "");
		wait_for(h, c, is_gone, ANSWER_MS);
		disc[k] = state_final(c->state);
		if (disc[k])
			say("conn %u: disconnected by the broker %" PRIu64
			    " ms after the write",
			    c->idx, ms_between(t, c->t_end));
		else
			say("conn %u: still connected %d ms after the write",
			    c->idx, ANSWER_MS);
		done++;
		conn_leave(h, c);
	}
	say("result %s_status=%s %s_disconnected=%d %s_status=%s "
	    "%s_disconnected=%d",
	    where[0], words[0], where[0], disc[0], where[1], words[1], where[1],
	    disc[1]);
	return done == 2 ? 0 : EXIT_UNDONE;
}

/* A Hello with one defect; what the broker says. */
static int bad_hello(struct hctx *h, const struct hello_spec *s,
		     const char *what)
{
	struct conn *c = &h->conns[0];
	uint64_t t;
	int rc = EXIT_UNDONE;

	if (connect_one(h, c, RING_DEFAULT, RECVS_DEFAULT))
		goto out_leave;
	t = now_ns();
	if (send_hello(c, s)) {
		say("cannot send the hello");
		goto out_leave;
	}
	say("sent a hello with %s", what);
	if (wait_for(h, c, is_answered, ANSWER_MS) < 0)
		goto out_leave;
	if (c->error)
		wait_for(h, c, is_gone, 2000);
	say_answer(c, t, NULL);
	rc = 0;
out_leave:
	conn_leave(h, c);
	return rc;
}

static int run_bad_ring(struct hctx *h)
{
	struct hello_spec s = { h->o->name, RING_DEFAULT - 8, MAX_MSG_DEFAULT,
				RECVS_DEFAULT };

	return bad_hello(h, &s,
			 "a ring size that is not a power of two "
			 "(65528)");
}

static int run_zero_max_msg(struct hctx *h)
{
	struct hello_spec s = { h->o->name, RING_DEFAULT, 0, RECVS_DEFAULT };

	return bad_hello(h, &s, "max_msg_size 0");
}

static int run_zero_credits(struct hctx *h)
{
	struct hello_spec s = { h->o->name, RING_DEFAULT, MAX_MSG_DEFAULT, 0 };

	return bad_hello(h, &s, "credits 0");
}

/* Something other than a Hello as the first message. */
static int before_hello(struct hctx *h, const Verbus__Control *m,
			const char *what)
{
	struct conn *c = &h->conns[0];
	uint64_t t;
	int rc = EXIT_UNDONE;
	char more[64];

	if (connect_one(h, c, RING_DEFAULT, RECVS_DEFAULT))
		goto out_leave;
	t = now_ns();
	if (send_ctrl(c, m)) {
		say("cannot send the %s", what);
		goto out_leave;
	}
	say("sent %s before any hello", what);
	/* Deliveries would come as frames, not as an answer: wait the whole
	 * time unless the broker closes. */
	if (wait_for(h, c, is_gone, ANSWER_MS) < 0)
		goto out_leave;
	snprintf(more, sizeof(more), " writes=%u", c->writes);
	say_answer(c, t, more);
	rc = 0;
out_leave:
	conn_leave(h, c);
	return rc;
}

/* Credit never owed: all of the broker's RECVs and ring "returned". */
static int run_early_credit(struct hctx *h)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__Credit cr = VERBUS__CREDIT__INIT;

	cr.recvs = 1000;
	cr.freed = 1u << 20;
	m.body_case = VERBUS__CONTROL__BODY_CREDIT;
	m.credit = &cr;
	return before_hello(h, &m, "a credit (recvs 1000, freed 1 MiB)");
}

/* A subscription to everything from a client the broker knows nothing
 * of: it must get nothing (no Hello, so no ring to write into). */
static int run_early_subscribe(struct hctx *h)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__Subscribe sub = VERBUS__SUBSCRIBE__INIT;

	sub.sid = 1;
	sub.subject = (char *)">";
	m.body_case = VERBUS__CONTROL__BODY_SUBSCRIBE;
	m.subscribe = &sub;
	return before_hello(h, &m, "a subscribe to \">\" (sid 1)");
}

static bool flood_over(const struct conn *c)
{
	return c->send_busy == 0 || state_final(c->state);
}

/*
 * Pings as fast as the send queue takes them, answered Pongs never made
 * room for: 8 RECVs posted (credits 8), none reposted, no Credit sent.
 */
static int run_ping_flood(struct hctx *h)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__Ping ping = VERBUS__PING__INIT;
	struct conn *c = &h->conns[0];
	struct hello_spec s = { h->o->name, RING_DEFAULT, MAX_MSG_DEFAULT,
				RECVS_DEFAULT };
	unsigned posted = 0;
	uint64_t t, end;
	int rc = EXIT_UNDONE;

	if (connect_one(h, c, RING_DEFAULT, RECVS_DEFAULT) ||
	    send_hello(c, &s) || wait_for(h, c, is_answered, ANSWER_MS) < 0)
		goto out_leave;
	if (!c->welcome) {
		say_answer(c, c->t_open, NULL);
		goto out_leave;
	}
	c->repost = false;
	m.body_case = VERBUS__CONTROL__BODY_PING;
	m.ping = &ping;
	t = now_ns();
	end = t + 30000000000ull;
	while (posted < h->o->count && c->state == CS_OPEN && now_ns() < end) {
		ping.id = posted + 1;
		if (send_ctrl(c, &m) == 0) {
			posted++;
			continue;
		}
		if (c->send_busy != (1u << SEND_SLOTS) - 1)
			break; /* a slot was free: the post itself failed */
		if (pump(h, 100) < 0)
			goto out_leave;
	}
	wait_for(h, c, flood_over, ANSWER_MS);
	wait_for(h, c, is_gone, 1000);
	say("posted %u of %u pings in %" PRIu64 " ms: %u sent, %u failed; "
	    "%u pongs and %u credit returns came back",
	    posted, h->o->count, ms_between(t, now_ns()), c->sends_ok,
	    c->sends_failed, c->pongs, c->credits_in);
	if (state_final(c->state))
		say("disconnected by the broker %" PRIu64 " ms after the "
		    "first ping",
		    ms_between(t, c->t_end));
	else
		say("still connected");
	say("result posted=%u sent=%u pongs=%u disconnected=%d "
	    "disconnect_ms=%" PRIu64,
	    posted, c->sends_ok, c->pongs, state_final(c->state) ? 1 : 0,
	    state_final(c->state) ? ms_between(t, c->t_end) : 0);
	rc = 0;
out_leave:
	conn_leave(h, c);
	return rc;
}

/* ---- set-up ----------------------------------------------------------- */

/* The subcommands: name, positional arguments, what it does. */
struct attack {
	const char *name;
	int (*run)(struct hctx *h);
	const char *args; /* positional, for usage; NULL: none */
	const char *what;
};

static const struct attack attacks[] = {
	{ "forge-name", run_forge_name, NULL,
	  "a hello whose name forges a log line, no credentials" },
	{ "forge-error", run_forge_error, NULL,
	  "an error (--code, 7) whose reason forges a log line, no hello" },
	{ "withhold", run_withhold, "SUBJECT",
	  "subscribe with 4 credits, return none (--hold-s)" },
	{ "silent", run_silent, "N",
	  "N connections that never say hello (--hold-s, --wait-file)" },
	{ "write-outside", run_write_outside, NULL,
	  "RDMA WRITEs just past and just before our ring on the broker" },
	{ "bad-ring", run_bad_ring, NULL,
	  "a hello with a ring size that is not a power of two" },
	{ "zero-max-msg", run_zero_max_msg, NULL, "a hello with max_msg 0" },
	{ "zero-credits", run_zero_credits, NULL, "a hello with credits 0" },
	{ "early-credit", run_early_credit, NULL,
	  "a credit never owed, before the hello" },
	{ "early-subscribe", run_early_subscribe, NULL,
	  "a subscribe to \">\" before the hello" },
	{ "ping-flood", run_ping_flood, "[N]",
	  "N pings (1000), pongs never made room for" },
};

#define NATTACKS (sizeof(attacks) / sizeof(attacks[0]))

static void usage(void)
{
	fprintf(stderr, "usage: vb_hostile CMD [ARGS] --connect ADDR --port P "
			"--source ADDR [options]\n"
			"commands:\n");
	for (size_t i = 0; i < NATTACKS; i++)
		fprintf(stderr, "  %s%s%s\n      %s\n", attacks[i].name,
			attacks[i].args ? " " : "",
			attacks[i].args ? attacks[i].args : "",
			attacks[i].what);
	fprintf(stderr, "options: --name NAME (hostile-CMD) --hold-s S (8) "
			"--code N (7) --wait-file PATH\n");
	exit(EXIT_USAGE);
}

/* A whole-string number in [@lo, @hi], or usage. */
static unsigned long num(const char *what, const char *s, unsigned long lo,
			 unsigned long hi)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (!*s || *end || errno || v < lo || v > hi) {
		fprintf(stderr,
			"vb_hostile: %s: '%s' is not a number in "
			"[%lu, %lu]\n",
			what, s, lo, hi);
		usage();
	}
	return v;
}

static const struct attack *parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "connect", required_argument, NULL, 'c' },
		{ "port", required_argument, NULL, 'p' },
		{ "source", required_argument, NULL, 'I' },
		{ "name", required_argument, NULL, 'n' },
		{ "hold-s", required_argument, NULL, 'H' },
		{ "code", required_argument, NULL, 'C' },
		{ "wait-file", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static char name[80];
	const struct attack *a = NULL;
	int ch, npos;

	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->addr = optarg;
			break;
		case 'p':
			o->port = optarg;
			break;
		case 'I':
			o->source = optarg;
			break;
		case 'n':
			o->name = optarg;
			break;
		case 'H':
			o->hold_s = (int)num("--hold-s", optarg, 1, 3600);
			break;
		case 'C':
			o->code =
				(uint32_t)num("--code", optarg, 0, UINT32_MAX);
			break;
		case 'w':
			o->wait_file = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind >= argc || !o->addr || !o->port || !o->source)
		usage();
	o->cmd = argv[optind++];
	for (size_t i = 0; i < NATTACKS; i++)
		if (!strcmp(attacks[i].name, o->cmd))
			a = &attacks[i];
	if (!a) {
		fprintf(stderr, "vb_hostile: unknown command '%s'\n", o->cmd);
		usage();
	}
	npos = argc - optind;
	if (a->run == run_withhold) {
		if (npos != 1)
			usage();
		o->subject = argv[optind];
	} else if (a->run == run_silent) {
		if (npos != 1)
			usage();
		o->count = (unsigned)num("N", argv[optind], 1, 1024);
	} else if (a->run == run_ping_flood) {
		if (npos > 1)
			usage();
		o->count =
			npos ? (unsigned)num("N", argv[optind], 1, 1u << 24) :
			       1000;
	} else if (npos) {
		usage();
	}
	if (o->name && strlen(o->name) > VBI_NAME_MAX)
		usage();
	if (!o->name) {
		snprintf(name, sizeof(name), "hostile-%s", o->cmd);
		o->name = name;
	}
	return a;
}

/* The channel, both addresses, and room for @n connections. */
static int hctx_init(struct hctx *h, unsigned n)
{
	struct rdma_addrinfo hints = { .ai_port_space = RDMA_PS_TCP };

	h->ec = rdma_create_event_channel();
	if (!h->ec) {
		perror("hostile: rdma_create_event_channel (no RDMA device?)");
		return -1;
	}
	if (fcntl(h->ec->fd, F_SETFL, fcntl(h->ec->fd, F_GETFL) | O_NONBLOCK))
		return -1;
	hints.ai_flags = RAI_PASSIVE;
	if (rdma_getaddrinfo(h->o->source, NULL, &hints, &h->src)) {
		perror("hostile: the source address");
		return -1;
	}
	hints.ai_flags = 0;
	if (rdma_getaddrinfo(h->o->addr, h->o->port, &hints, &h->dst)) {
		perror("hostile: the broker's address");
		return -1;
	}
	h->conns = calloc(n, sizeof(*h->conns));
	h->pfds = calloc(n + 1, sizeof(*h->pfds));
	h->pconns = calloc(n + 1, sizeof(*h->pconns));
	if (!h->conns || !h->pfds || !h->pconns)
		return -1;
	h->nconns = n;
	for (unsigned i = 0; i < n; i++) {
		h->conns[i].h = h;
		h->conns[i].idx = i;
	}
	return 0;
}

static void hctx_fini(struct hctx *h)
{
	for (unsigned i = 0; h->conns && i < h->nconns; i++)
		conn_destroy(&h->conns[i]);
	free(h->pconns);
	free(h->pfds);
	free(h->conns);
	if (h->dst)
		rdma_freeaddrinfo(h->dst);
	if (h->src)
		rdma_freeaddrinfo(h->src);
	if (h->ec)
		rdma_destroy_event_channel(h->ec);
}

int main(int argc, char **argv)
{
	struct opts o = { .hold_s = 8, .code = 7 };
	struct hctx h = { .o = &o };
	const struct attack *a;
	int rc = EXIT_UNDONE;

	setvbuf(stdout, NULL, _IOLBF, 0);
	a = parse(argc, argv, &o);
	g_opts = &o;
	if (hctx_init(&h, a->run == run_silent ? o.count : 2) == 0)
		rc = a->run(&h);
	hctx_fini(&h);
	return rc;
}
