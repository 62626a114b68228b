/*
 * ring.h - the two views of one receive ring: the sender's and the owner's.
 *
 * Each side of a connection owns a receive ring (power-of-two size, 64 bytes
 * to 2 GiB).  The peer writes frames (frame.h) into it with RDMA
 * WRITE_WITH_IMM at a tail it tracks; the immediate says how many bytes the
 * WRITE appended.  The sender builds frames in a local staging buffer of the
 * same size, at the same offsets, so that one WRITE moves a contiguous range
 * of staging to the same range of the remote ring.  Frames never straddle
 * the end of the ring (a PAD frame fills the rest instead) and no WRITE
 * crosses it either.
 *
 * Every counter is a 64-bit monotonic byte count since the connection began
 * (it cannot wrap in practice); ring offsets are the counters modulo the
 * size.  Credits travel as 32-bit counters of 8-byte units, which wrap
 * after 32 GiB and are widened again on arrival.
 *
 * Ownership: the rings and staging buffers are the caller's; the structs
 * keep pointers to them.  Threading: none of these functions locks; each
 * struct belongs to one thread at a time (the connection's).  None blocks
 * or allocates.
 */
#ifndef VERBUS_CORE_RING_H
#define VERBUS_CORE_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"

/*
 * Smallest and largest ring.  The size travels as a u32 and a batch length
 * as the 32-bit immediate, and a ring's worth of credit must stay far below
 * 2^31 units so that stale credits can be told from new ones.
 */
#define VBI_RING_MIN 64u
#define VBI_RING_MAX (1u << 31)

/* The sender's view of the peer's ring (and of its own staging copy). */
struct vbi_ring_tx {
	uint8_t *stage; /* local staging copy, same size and offsets */
	size_t size; /* bytes in the ring: a power of two */
	uint64_t tail; /* bytes produced, PADs included */
	uint64_t flushed; /* bytes handed to the NIC: flushed <= tail */
	uint64_t peer_freed; /* bytes the peer released: <= flushed */
	/* The oldest staged byte something else still reads (another
	 * connection's write gathers a frame from staging): space is reused
	 * only behind both it and @peer_freed.  UINT64_MAX: nothing does. */
	uint64_t pinned;
};

/* A contiguous range of staged frames for one RDMA WRITE_WITH_IMM. */
struct vbi_ring_batch {
	size_t off; /* ring offset of the first byte (same both sides) */
	size_t len; /* bytes the batch appends: the immediate; 0: none */
	size_t xfer; /* bytes to write: @len less a final PAD's unread tail */
	bool has_last; /* false if the batch holds only a PAD */
	size_t last_off; /* offset of the last MSG, to refresh its acks */
};

/*
 * vbi_ring_tx_init() - start an empty ring of @size bytes over the caller's
 * @stage buffer (8-aligned, @size bytes, owned by the caller and kept until
 * the ring is dropped).  Returns VB_OK or VB_EINVAL (@size not a power of
 * two in [VBI_RING_MIN, VBI_RING_MAX], @stage NULL or misaligned).
 */
int vbi_ring_tx_init(struct vbi_ring_tx *tx, void *stage, size_t size);

/* vbi_ring_tx_space() - bytes that may be reserved now, PADs included. */
size_t vbi_ring_tx_space(const struct vbi_ring_tx *tx);

/*
 * vbi_ring_tx_pin() - staging from position @pos on is still read by
 * someone else (a write gathering from it): no reservation reuses it until
 * the pin moves past it.  @pos is a stream position (tail's units) at most
 * tail; UINT64_MAX lifts every pin.  The caller tracks its pins and passes
 * the oldest one each time it changes.
 */
void vbi_ring_tx_pin(struct vbi_ring_tx *tx, uint64_t pos);

/*
 * vbi_ring_tx_reserve() - claim @span bytes (a frame's vbi_frame_span()) and
 * set *@off to the ring offset where the caller must write the frame, in
 * staging, before the next vbi_ring_tx_next_batch().  If the frame does not
 * fit before the end of the ring, a PAD header covering the rest is written
 * into staging first and the frame goes at offset 0; *@pad (if not NULL) is
 * set to the PAD's length, or 0.
 *
 * Returns VB_OK, VB_EAGAIN (not enough space until the peer frees more: the
 * PAD counts too), VB_EMSGSIZE (@span above half the ring, so that a frame
 * and the PAD before it always fit an empty ring) or VB_EINVAL (@span not a
 * multiple of 8 or below the header).  Nothing changes on error.
 */
int vbi_ring_tx_reserve(struct vbi_ring_tx *tx, size_t span, size_t *off,
			size_t *pad);

/*
 * vbi_ring_tx_next_batch() - describe the frames staged but not flushed that
 * one WRITE can carry: from the first unflushed byte, whole frames, never
 * past the end of the ring, and (if @max is not 0) at most @max bytes unless
 * the first frame alone is larger: a batch always holds at least one frame.
 * b->len is 0 when nothing is pending.  Reads the staged headers, so every
 * reserved frame's header must be written by then.  Returns VB_OK, or
 * VB_EINVAL if a staged header is not a valid frame (a caller bug).
 */
int vbi_ring_tx_next_batch(const struct vbi_ring_tx *tx, size_t max,
			   struct vbi_ring_batch *b);

/*
 * vbi_ring_tx_flushed() - record that the first @len pending bytes were
 * handed to the NIC.  @len must end on a frame boundary (a whole batch, or a
 * prefix of it ending on a frame boundary).  Returns VB_OK or VB_EINVAL
 * (@len not 8-aligned or beyond the contiguous pending bytes).
 */
int vbi_ring_tx_flushed(struct vbi_ring_tx *tx, size_t len);

/*
 * vbi_ring_tx_credit() - apply the peer's ack_freed (its ring's freed
 * counter in 8-byte units, mod 2^32), widening it against peer_freed.  A
 * value behind the one already applied is stale (credits piggybacked on
 * frames and sent in credit returns may arrive out of order) and is ignored.
 * Returns VB_OK, or VB_EPROTO if the value frees bytes that were never
 * flushed: the peer lies, and nothing changes.
 */
int vbi_ring_tx_credit(struct vbi_ring_tx *tx, uint32_t freed_units);

/* The owner's view of its own ring, which the peer writes into. */
struct vbi_ring_rx {
	uint8_t *base; /* the registered ring */
	size_t size; /* bytes in the ring: a power of two */
	uint64_t head; /* next byte to parse: freed <= head <= written */
	uint64_t written; /* bytes landed, from the immediates */
	uint64_t freed; /* bytes released, a contiguous prefix */
	uint64_t next_seq; /* seq the next MSG frame must carry */
	bool broken; /* the peer sent garbage: the ring is dead */
};

/*
 * vbi_ring_rx_init() - start an empty ring over the caller's @base (8-aligned,
 * @size bytes, kept until the ring is dropped; the caller registers it).
 * Returns VB_OK or VB_EINVAL, as vbi_ring_tx_init().
 */
int vbi_ring_rx_init(struct vbi_ring_rx *rx, void *base, size_t size);

/*
 * vbi_ring_rx_arrived() - account @bytes the peer appended (the immediate of
 * a WRITE_WITH_IMM).  Returns VB_OK, or VB_EPROTO if the peer lies: @bytes
 * not 8-aligned, more than the free space, or crossing the end of the ring.
 * Nothing changes on error, but the ring is marked broken.
 */
int vbi_ring_rx_arrived(struct vbi_ring_rx *rx, uint32_t bytes);

/*
 * vbi_ring_rx_next() - hand out the next MSG frame, consuming (and at once
 * releasing) any PAD before it.  The view points into the ring and stays
 * valid until vbi_ring_rx_release(); view->pos is the frame's stream
 * position; *@view is written only on success.  Returns VB_OK, VB_EAGAIN
 * (nothing more has arrived) or VB_EPROTO (a frame vbi_frame_parse()
 * rejects, or a seq other than the next one: the ring is broken and every
 * later call fails the same way).
 */
int vbi_ring_rx_next(struct vbi_ring_rx *rx, size_t max_msg,
		     struct vbi_frame_view *view);

/*
 * vbi_ring_rx_release() - give back the frame of @view (from
 * vbi_ring_rx_next() on this ring), in any order.  Marks it released in the
 * ring and advances freed over the released prefix, so that releasing frame
 * 2 before frame 1 frees nothing until frame 1 is released too.
 *
 * Returns VB_OK; VB_EINVAL if @view is not an outstanding frame of this ring
 * (already released, another ring's, or never handed out): nothing changes;
 * or VB_EPROTO if the peer has overwritten a header of a frame still held
 * (the frame is released, but the ring is broken).
 */
int vbi_ring_rx_release(struct vbi_ring_rx *rx,
			const struct vbi_frame_view *view);

/*
 * vbi_ring_rx_freed_units() - the ring credit to return to the peer: freed
 * in 8-byte units, mod 2^32 (a frame's ack_freed).
 */
uint32_t vbi_ring_rx_freed_units(const struct vbi_ring_rx *rx);

#endif /* VERBUS_CORE_RING_H */
