/*
 * credit.h - RECV credits, and when to give credit back.
 *
 * Every RDMA WRITE_WITH_IMM and every SEND consumes one RECV the peer has
 * posted; sending with none posted is a fatal RNR error, so a sender counts
 * the peer's RECVs and stops at zero.  The peer reposts each RECV once it
 * has consumed it and tells us how many it has reposted in total (ack_recvs:
 * a u32 that wraps), piggybacked on a data frame or in a credit return, a
 * small SEND that carries only acks.  The same messages carry the ring
 * credit (ack_freed, see ring.h).  One struct holds both directions of one
 * connection: what we may send, and what we owe the peer.
 *
 * Protocol assumptions: a credit return is a SEND that consumes one RECV and
 * no ring bytes; every side keeps at least VBI_CREDIT_MIN_POSTED RECVs
 * posted and reposts each one after consuming it.
 *
 * Ownership: the struct is the caller's.  Threading: no locking; one thread
 * (the connection's) at a time.  Nothing blocks or allocates.
 */
#ifndef VERBUS_CORE_CREDIT_H
#define VERBUS_CORE_CREDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Peer RECVs only credit returns may consume, so that they never deadlock. */
#define VBI_CREDIT_RESERVE 2u

/* Fewest RECVs a side may keep posted: the reserve plus a threshold of 2. */
#define VBI_CREDIT_MIN_POSTED (VBI_CREDIT_RESERVE + 2u)

/* Most RECVs a side may keep posted (keeps the u32 counters unambiguous). */
#define VBI_CREDIT_MAX_POSTED (1u << 30)

/* Both directions of one connection's RECV credit. */
struct vbi_credit {
	uint32_t peer_posted; /* RECVs the peer keeps posted */
	uint32_t recv_credits; /* peer RECVs we may still consume */
	uint64_t consumed; /* peer RECVs consumed so far */
	uint64_t granted; /* peer reposts learned so far: <= consumed */
	uint32_t local_posted; /* RECVs we keep posted */
	uint64_t reposted; /* RECVs we reposted so far */
	uint64_t returned_recvs; /* @reposted as last posted to the peer */
	uint64_t freed; /* our ring's freed bytes, as last noted */
	uint64_t returned_freed; /* @freed as last posted to the peer */
};

/* The acks one outgoing message carries, and what they acknowledge. */
struct vbi_credit_ack {
	uint64_t recvs; /* our reposted RECVs at the snapshot */
	uint64_t freed; /* our ring's freed bytes at the snapshot */
	uint32_t ack_recvs; /* wire value of @recvs: mod 2^32 */
	uint32_t ack_freed; /* wire value of @freed: 8-byte units, mod 2^32 */
};

/*
 * vbi_credit_init() - start a connection whose peer has @peer_posted RECVs
 * posted (learned at connect time) while we keep @local_posted.  Returns
 * VB_OK or VB_EINVAL (either outside [VBI_CREDIT_MIN_POSTED,
 * VBI_CREDIT_MAX_POSTED]; for @peer_posted the caller may report that as
 * the peer's protocol error).
 */
int vbi_credit_init(struct vbi_credit *c, uint32_t peer_posted,
		    uint32_t local_posted);

/*
 * vbi_credit_take() - consume one peer RECV for the message about to be
 * posted.  Data and control messages may not touch the last
 * VBI_CREDIT_RESERVE credits; a credit return may use any.  Returns VB_OK or
 * VB_EAGAIN (wait for a grant), and then nothing changes.
 */
int vbi_credit_take(struct vbi_credit *c, bool is_credit_return);

/*
 * vbi_credit_grant() - apply the peer's ack_recvs (its reposted RECVs, mod
 * 2^32).  A value behind one already applied is stale and ignored.  Returns
 * VB_OK, or VB_EPROTO if it grants more RECVs than we ever consumed (the
 * peer lies; nothing changes).
 */
int vbi_credit_grant(struct vbi_credit *c, uint32_t reposted);

/* vbi_credit_reposted() - we reposted @n RECVs the peer had consumed. */
void vbi_credit_reposted(struct vbi_credit *c, uint32_t n);

/*
 * vbi_credit_note_freed() - our ring's freed counter (vbi_ring_rx.freed) is
 * now @ring_freed; a value below the last one noted is ignored.
 */
void vbi_credit_note_freed(struct vbi_credit *c, uint64_t ring_freed);

/*
 * vbi_credit_should_return() - true when we owe the peer enough to send a
 * credit return now (if no data is about to carry the acks): at least
 * max(2, local_posted / 4) reposts, or a quarter of our ring of @ring_size
 * bytes, not yet posted back.  A credit return arriving by itself never
 * makes this true.
 */
bool vbi_credit_should_return(const struct vbi_credit *c, size_t ring_size);

/*
 * vbi_credit_ring_may_block() - true when ring space we freed has not been
 * posted back and the peer may be blocked on exactly those bytes.  Call it
 * once our ring is drained (everything that arrived is released): then
 * nothing more will arrive to prompt a return, so waiting for
 * vbi_credit_should_return() could wait forever if the peer needs more
 * than it believes is left.  What it can need is a frame of up to
 * @max_span bytes and the PAD before it (shorter than the frame): less
 * than 2 * @max_span of our @ring_size-byte ring.  Space owed below that
 * cannot be what the peer waits for, and keeping it back saves a credit
 * return (a SEND, and a RECV consumed at the peer) after every message of
 * a ping-pong.
 */
bool vbi_credit_ring_may_block(const struct vbi_credit *c, size_t ring_size,
			       size_t max_span);

/*
 * vbi_credit_snapshot() - the acks to put in an outgoing frame
 * (vbi_frame_set_acks()) or credit return.
 */
void vbi_credit_snapshot(const struct vbi_credit *c,
			 struct vbi_credit_ack *ack);

/*
 * vbi_credit_sent() - a message carrying @ack was posted: what it
 * acknowledges no longer counts as owed.  Call it at post time, not when the
 * frame is staged, so that acks sitting in an unflushed frame still count.
 */
void vbi_credit_sent(struct vbi_credit *c, const struct vbi_credit_ack *ack);

#endif /* VERBUS_CORE_CREDIT_H */
