/*
 * rdma_post.c - what the RDMA transport posts (see rdma.h): RECVs, control
 * SENDs, and batches of staged frames as WRITE_WITH_IMM.
 *
 * A batch is one contiguous range of the peer's ring, written from
 * staging, except that each forwarded frame's topic and payload are
 * gathered from its source's receive ring (no copy): the gather list
 * alternates staging (headers) and sources' rings.  Data writes are
 * signalled one in SIGNAL_EVERY or per SIGNAL_BYTES; a signalled
 * completion finishes the writes and forwards posted before it (its wr_id
 * says which).  A kick (a signalled zero-length WRITE) has the device
 * report the rest when a source needs its frames back.
 */
#include "rdma.h"

#include "core/frame.h"
#include "core/prof.h"

#include <verbus/verbus.h>

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#define SIGNAL_EVERY 16u /* selective signalling: 1 in N data writes */
#define SIGNAL_BYTES (64u << 10) /* or once this many bytes went unsignalled */

uint8_t *vbi_rdma_post_recv_buf(struct rdma_conn *r, uint64_t i)
{
	return r->ctrl_mem + i * VBI_CTRL_MAX;
}

static uint8_t *send_buf(struct rdma_conn *r, unsigned slot)
{
	return r->ctrl_mem + (size_t)(r->ctrl_recvs + slot) * VBI_CTRL_MAX;
}

int vbi_rdma_post_recv(struct rdma_conn *r, uint64_t i)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)vbi_rdma_post_recv_buf(r, i),
		.length = VBI_CTRL_MAX,
		.lkey = r->ctrl_mr->lkey,
	};
	struct ibv_recv_wr wr = { .wr_id = i, .sg_list = &sge, .num_sge = 1 };
	struct ibv_recv_wr *bad;

	return ibv_post_recv(r->id->qp, &wr, &bad) ? VB_EIO : VB_OK;
}

/* A free control SEND buffer, or ctrl_sends if none. */
static unsigned ctrl_slot(const struct rdma_conn *r)
{
	unsigned slot;

	for (slot = 0; slot < r->ctrl_sends; slot++)
		if (!(r->ctrl_busy & (1u << slot)))
			break;
	return slot;
}

bool vbi_rdma_post_ctrl_room(struct vbi_conn *c)
{
	struct rdma_conn *r = rdma_conn_of(c);

	return ctrl_slot(r) < r->ctrl_sends && r->sq_used < RDMA_SEND_DEPTH;
}

/* SEND one control message, always signalled: its buffer is reused only
 * after the completion. */
int vbi_rdma_post_ctrl(struct vbi_conn *c, const Verbus__Control *m)
{
	struct rdma_conn *r = rdma_conn_of(c);
	struct ibv_sge sge;
	struct ibv_send_wr wr = { 0 }, *bad;
	unsigned slot = ctrl_slot(r);
	size_t len;
	uint8_t *buf;
	int rc;

	if (slot == r->ctrl_sends)
		return VB_EAGAIN;
	buf = send_buf(r, slot);
	rc = vbi_codec_encode(m, buf, VBI_CTRL_MAX, &len);
	if (rc)
		return rc;
	sge.addr = (uintptr_t)buf;
	sge.length = (uint32_t)len;
	sge.lkey = r->ctrl_mr->lkey;
	wr.wr_id = RDMA_WRID_SEND | slot;
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.opcode = IBV_WR_SEND;
	wr.send_flags = IBV_SEND_SIGNALED;
	if (len <= r->max_inline)
		wr.send_flags |= IBV_SEND_INLINE;
	if (ibv_post_send(r->id->qp, &wr, &bad))
		return VB_EIO;
	r->ctrl_busy |= 1u << slot;
	r->sq_used++;
	return VB_OK;
}

bool vbi_rdma_post_batch_room(struct vbi_conn *c)
{
	return rdma_conn_of(c)->sq_used + 1 < RDMA_SEND_DEPTH;
}

bool vbi_rdma_post_can_gather(const struct vbi_conn *dst,
			      const struct vbi_conn *src)
{
	const struct rdma_conn *d = rdma_conn_of_const(dst);

	/* The device can gather only from memory of the QP's own PD (one
	 * per device), and needs 3 entries for a forward; another
	 * transport's ring is registered nowhere. */
	return src->ops == dst->ops && rdma_conn_of_const(src)->pd == d->pd &&
	       d->max_sge >= 3;
}

/*
 * The WR about to be posted is signalled: it completes the unsignalled
 * writes before it and the forwards posted so far.  Returns its wr_id: the
 * forwards done when it completes, and the writes it completes (itself
 * included).
 */
static uint64_t signal_point(struct rdma_conn *r)
{
	uint64_t id = r->c.fwd_post << 16 | r->unsignaled;

	r->unsignaled = 0;
	r->unsignaled_bytes = 0;
	r->c.fwd_sig = r->c.fwd_post;
	return id;
}

/*
 * The gather list of batch @b: staging, except that each forwarded frame's
 * topic and payload come from its source's ring.  Cuts @b after a forwarded
 * frame when the QP's gather entries run out.  Returns the entry count and
 * sets *@nfwd to the forwards the batch carries.
 */
static int batch_sges(struct rdma_conn *r, struct vbi_ring_batch *b,
		      struct ibv_sge *sg, uint32_t *nfwd)
{
	struct vbi_conn *c = &r->c;
	uint64_t start = c->tx.flushed;
	size_t cur = b->off, end = b->off + b->xfer, last = 0;
	uint32_t n = 0, k = 0;
	uint64_t i;

	for (i = c->fwd_post; i < c->fwd_tail; i++) {
		const struct vbi_fwd *f = &c->fwd[i % VBI_SESS_FWD_MAX];
		const struct rdma_conn *src = rdma_conn_of(f->src);
		size_t hoff;

		if (f->start >= start + b->len)
			break;
		if (k > 0 && n + 3 > r->max_sge) {
			/* Cut after the previous forward: its header is the
			 * last MSG, and nothing follows it in this WRITE. */
			b->len = b->xfer = cur - b->off;
			b->last_off = last;
			end = cur;
			break;
		}
		hoff = b->off + (size_t)(f->start - start);
		sg[n].addr = (uintptr_t)(c->stage_mem + cur);
		sg[n].length = (uint32_t)(hoff + VBI_FRAME_HDR_LEN - cur);
		sg[n++].lkey = r->stage_mr->lkey;
		if (f->span > VBI_FRAME_HDR_LEN) {
			sg[n].addr = (uintptr_t)VBI_FWD_BODY(f);
			sg[n].length = f->span - VBI_FRAME_HDR_LEN;
			sg[n++].lkey = f->staged ? src->stage_mr->lkey :
						   src->ring_mr->lkey;
		}
		cur = hoff + f->span;
		last = hoff;
		k++;
	}
	if (cur < end) {
		sg[n].addr = (uintptr_t)(c->stage_mem + cur);
		sg[n].length = (uint32_t)(end - cur);
		sg[n++].lkey = r->stage_mr->lkey;
	}
	*nfwd = k;
	return (int)n;
}

int vbi_rdma_post_batch(struct vbi_conn *c, struct vbi_ring_batch *b,
			struct vbi_credit_ack *ack)
{
	struct rdma_conn *r = rdma_conn_of(c);
	struct ibv_sge sge[RDMA_SGE_WANT];
	struct ibv_send_wr wr, *bad;
	uint32_t nfwd;
	int nsge;

	nsge = batch_sges(r, b, sge, &nfwd);
	vbi_sess_stamp_acks(c, b, ack);
	memset(&wr, 0, sizeof(wr));
	wr.wr_id = 0;
	wr.sg_list = sge;
	wr.num_sge = nsge;
	wr.opcode = IBV_WR_RDMA_WRITE_WITH_IMM;
	wr.imm_data = htonl((uint32_t)b->len);
	wr.wr.rdma.remote_addr = r->peer_addr + b->off;
	wr.wr.rdma.rkey = r->peer_rkey;
	/* Signal one write in SIGNAL_EVERY or per SIGNAL_BYTES (large
	 * forwards then return their sources' frames promptly, at a
	 * completion per 64 KiB), and always when the send queue or the
	 * forward slots are half used, so that completions free them in
	 * time.  Forwards ride unsignalled like any write: a source whose
	 * frames they pin for too long gets them back through a kick.
	 * wr_id: the forwards done when it completes, and the writes it
	 * completes. */
	c->fwd_post += nfwd;
	r->unsignaled_bytes += b->xfer;
	if (++r->unsignaled >= SIGNAL_EVERY ||
	    r->unsignaled_bytes >= SIGNAL_BYTES ||
	    r->sq_used + 1 >= RDMA_SEND_DEPTH / 2 ||
	    c->fwd_post - c->fwd_head >= VBI_SESS_FWD_MAX / 2) {
		wr.send_flags |= IBV_SEND_SIGNALED;
		wr.wr_id = signal_point(r);
	}
	/* Inline copies with the CPU: never for forwarded bytes. */
	if (nfwd == 0 && b->xfer <= r->max_inline)
		wr.send_flags |= IBV_SEND_INLINE;
	VBI_PROF(VBI_PROF_POST);
	if (ibv_post_send(r->id->qp, &wr, &bad)) {
		vbi_sess_fail(c, VB_EIO, "ibv_post_send failed: %s",
			      strerror(errno));
		return VB_EIO;
	}
	VBI_PROF(VBI_PROF_POSTED);
	r->sq_used++;
	c->st.writes++;
	return VB_OK;
}

/*
 * Have the device report the forwards posted unsignalled so far, so that
 * their sources get their frames back: a signalled zero-length WRITE (it
 * touches no memory and consumes no RECV at the peer; completions on a
 * send queue come in order, so it completes after every WR before it).
 * Nothing to do when a signalled WR already covers them, or when the send
 * queue is full: it is then at least half full, so its signalled WRs
 * complete soon and the next turn asks again.
 */
void vbi_rdma_post_kick(struct vbi_conn *c)
{
	struct rdma_conn *r = rdma_conn_of(c);
	struct ibv_send_wr wr, *bad;

	if (c->state != VBI_SS_OPEN || c->fwd_sig == c->fwd_post ||
	    r->sq_used + 1 >= RDMA_SEND_DEPTH)
		return;
	memset(&wr, 0, sizeof(wr));
	wr.opcode = IBV_WR_RDMA_WRITE;
	wr.send_flags = IBV_SEND_SIGNALED;
	wr.wr.rdma.remote_addr = r->peer_addr;
	wr.wr.rdma.rkey = r->peer_rkey;
	r->unsignaled++; /* the kick itself */
	wr.wr_id = signal_point(r);
	if (ibv_post_send(r->id->qp, &wr, &bad)) {
		vbi_sess_fail(c, VB_EIO, "ibv_post_send failed: %s",
			      strerror(errno));
		return;
	}
	r->sq_used++;
	c->st.kicks++;
}
