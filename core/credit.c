/*
 * credit.c - RECV credit accounting and the credit-return policy.
 *
 * Three properties drive the design.
 *
 * No deadlock.  Data and control messages stop while VBI_CREDIT_RESERVE
 * credits remain; only credit returns may spend those.  A side blocked on
 * data can therefore still return credit, so two sides that each wait for
 * the other's credit always have a message left to break the wait.  And the
 * policy guarantees a peer blocked on us will hear from us: a peer blocked on
 * RECVs has at most RESERVE left, so at least posted - RESERVE of our RECVs
 * are consumed and unacknowledged; once they have arrived and been
 * reposted, we owe at least posted - RESERVE >= max(2, posted / 4) reposts
 * (which is why posted >= RESERVE + 2), and we return.  A peer blocked on
 * ring space has more than half our ring outstanding (a frame is at most
 * half), so once our application releases it we owe at least a quarter.
 *
 * No ping-pong.  A credit return consumes one RECV and no ring bytes, and
 * after any message that carries acks we owe nothing.  A credit return
 * arriving by itself therefore makes us owe one repost, below the threshold
 * of two: it can only tip over a debt that data built up, and the return
 * that answers it lands on a peer that has just returned everything, where
 * it stops.  Counting the reposts of credit-return RECVs (rather than
 * ignoring them) keeps the deadlock argument above true; the threshold of
 * at least two is what keeps them from feeding on themselves.
 *
 * Acks are owed until posted.  vbi_credit_sent() is called when the message
 * is handed to the NIC, not when its frame is staged: a frame stuck in
 * staging for want of credit must not hide a debt that a credit return
 * could pay.  Cumulative acks make the duplicate harmless, and stale ones
 * (a credit return overtaking a staged frame) are ignored on arrival.
 */
#include "credit.h"

#include <verbus/verbus.h>

static int credit_posted_ok(uint32_t n)
{
	return n >= VBI_CREDIT_MIN_POSTED && n <= VBI_CREDIT_MAX_POSTED;
}

int vbi_credit_init(struct vbi_credit *c, uint32_t peer_posted,
		    uint32_t local_posted)
{
	if (c == NULL || !credit_posted_ok(peer_posted) ||
	    !credit_posted_ok(local_posted))
		return VB_EINVAL;
	*c = (struct vbi_credit){
		.peer_posted = peer_posted,
		.recv_credits = peer_posted,
		.local_posted = local_posted,
	};
	return VB_OK;
}

int vbi_credit_take(struct vbi_credit *c, bool is_credit_return)
{
	uint32_t need = is_credit_return ? 1 : VBI_CREDIT_RESERVE + 1;

	if (c->recv_credits < need)
		return VB_EAGAIN;
	c->recv_credits--;
	c->consumed++;
	return VB_OK;
}

int vbi_credit_grant(struct vbi_credit *c, uint32_t reposted)
{
	uint32_t diff = reposted - (uint32_t)c->granted;

	/* A live grant is at most peer_posted (<= 2^30) ahead; a value in
	 * the upper half of the u32 range is behind us: stale. */
	if (diff > INT32_MAX)
		return VB_OK;
	if (diff > c->consumed - c->granted)
		return VB_EPROTO;
	c->granted += diff;
	c->recv_credits += diff;
	return VB_OK;
}

void vbi_credit_reposted(struct vbi_credit *c, uint32_t n)
{
	c->reposted += n;
}

void vbi_credit_note_freed(struct vbi_credit *c, uint64_t ring_freed)
{
	if (ring_freed > c->freed)
		c->freed = ring_freed;
}

bool vbi_credit_ring_may_block(const struct vbi_credit *c, size_t ring_size,
			       size_t max_span)
{
	uint64_t owed = c->freed - c->returned_freed;

	return owed > 0 && owed + 2 * (uint64_t)max_span > ring_size;
}

bool vbi_credit_should_return(const struct vbi_credit *c, size_t ring_size)
{
	uint64_t min_recvs = c->local_posted / 4;
	uint64_t owed_bytes = c->freed - c->returned_freed;

	if (min_recvs < 2)
		min_recvs = 2;
	if (c->reposted - c->returned_recvs >= min_recvs)
		return true;
	return owed_bytes > 0 && owed_bytes >= ring_size / 4;
}

void vbi_credit_snapshot(const struct vbi_credit *c, struct vbi_credit_ack *ack)
{
	ack->recvs = c->reposted;
	ack->freed = c->freed;
	ack->ack_recvs = (uint32_t)c->reposted;
	ack->ack_freed = (uint32_t)(c->freed / 8);
}

void vbi_credit_sent(struct vbi_credit *c, const struct vbi_credit_ack *ack)
{
	if (ack->recvs > c->returned_recvs)
		c->returned_recvs = ack->recvs;
	if (ack->freed > c->returned_freed)
		c->returned_freed = ack->freed;
}
