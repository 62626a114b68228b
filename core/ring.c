/*
 * ring.c - ring arithmetic for the data path: where the next frame goes,
 * which bytes the next WRITE carries, and which bytes can be given back.
 *
 * Decisions a reader must know:
 *
 * - Counters are 64-bit and monotonic; offsets are counters masked by the
 *   size.  "Full" and "empty" are then plain subtractions, with no
 *   reserved slot and no wrap flag.
 *
 * - A frame may be at most half the ring.  A PAD is only ever needed when
 *   the frame does not fit before the end, so it is shorter than the frame,
 *   and PAD plus frame always fit an empty ring: a sender waiting for space
 *   is always eventually served.
 *
 * - The receiver keeps its release bookkeeping in the ring itself: the
 *   VBI_FRAME_F_RELEASED flag in each frame's header, and the freed prefix
 *   advances over flagged frames.  This costs no memory and no allocation,
 *   but the peer can write anywhere in the ring at any time, so every header
 *   re-read while advancing is checked again against our own counters.  A
 *   peer that rewrites a frame we still hold can at worst make us free its
 *   own frames early (it could as well overwrite their bytes); it can never
 *   move a counter past another or make us read outside the ring.
 *
 * - A view handed out carries its 64-bit stream position, so a release is
 *   checked in O(1): it must lie in [freed, head), at the header this ring
 *   handed out (same pointer, same seq) and not already be flagged.
 */
#include "ring.h"

#include <verbus/verbus.h>

static int ring_size_ok(const void *mem, size_t size)
{
	if (mem == NULL || ((uintptr_t)mem & (VBI_FRAME_ALIGN - 1)))
		return 0;
	if (size < VBI_RING_MIN || size > VBI_RING_MAX)
		return 0;
	return (size & (size - 1)) == 0;
}

static size_t ring_min(size_t a, size_t b)
{
	return a < b ? a : b;
}

int vbi_ring_tx_init(struct vbi_ring_tx *tx, void *stage, size_t size)
{
	if (tx == NULL || !ring_size_ok(stage, size))
		return VB_EINVAL;
	tx->stage = stage;
	tx->size = size;
	tx->tail = 0;
	tx->flushed = 0;
	tx->peer_freed = 0;
	tx->pinned = UINT64_MAX;
	return VB_OK;
}

size_t vbi_ring_tx_space(const struct vbi_ring_tx *tx)
{
	uint64_t from =
		tx->pinned < tx->peer_freed ? tx->pinned : tx->peer_freed;

	return tx->size - (size_t)(tx->tail - from);
}

void vbi_ring_tx_pin(struct vbi_ring_tx *tx, uint64_t pos)
{
	tx->pinned = pos;
}

int vbi_ring_tx_reserve(struct vbi_ring_tx *tx, size_t span, size_t *off,
			size_t *pad)
{
	size_t at = (size_t)(tx->tail & (tx->size - 1));
	size_t room = tx->size - at;
	size_t fill = 0;
	int rc;

	if (span < VBI_FRAME_HDR_LEN || span % VBI_FRAME_ALIGN)
		return VB_EINVAL;
	if (span > tx->size / 2)
		return VB_EMSGSIZE;
	if (span > room)
		fill = room;
	if (fill + span > vbi_ring_tx_space(tx))
		return VB_EAGAIN;
	if (fill) {
		rc = vbi_frame_put_pad(tx->stage + at, fill);
		if (rc != VB_OK)
			return rc;
		tx->tail += fill;
		at = 0;
	}
	tx->tail += span;
	*off = at;
	if (pad)
		*pad = fill;
	return VB_OK;
}

/* Bytes pending from flushed that do not cross the end of the ring. */
static size_t ring_tx_contiguous(const struct vbi_ring_tx *tx)
{
	size_t at = (size_t)(tx->flushed & (tx->size - 1));

	return ring_min((size_t)(tx->tail - tx->flushed), tx->size - at);
}

/*
 * The span of the staged frame at @p, of which @left bytes are pending
 * before the end of the ring, or 0 if its header is not one that
 * vbi_ring_tx_reserve() and the frame encoders write.  Staging is our own
 * memory, which no peer can write, so this is a check for the caller's bugs
 * (a reserved header never written), not the hostile-input parse of
 * vbi_frame_parse(): it reads the two fields the walk needs and nothing
 * else, on every message's path.
 */
static size_t ring_tx_span(const uint8_t *p, size_t left, bool *msg)
{
	uint32_t len = vbi_frame_get_len(p);
	uint8_t kind = vbi_frame_get_kind(p);
	size_t span;

	if (vbi_frame_is_msg(kind)) {
		if (len < VBI_FRAME_HDR_LEN)
			return 0;
		span = vbi_frame_span(len);
		*msg = true;
	} else if (kind == VBI_FRAME_PAD) {
		if (len < VBI_FRAME_PAD_LEN || len % VBI_FRAME_ALIGN)
			return 0;
		span = len;
		*msg = false;
	} else {
		return 0;
	}
	return span <= left ? span : 0;
}

int vbi_ring_tx_next_batch(const struct vbi_ring_tx *tx, size_t max,
			   struct vbi_ring_batch *b)
{
	struct vbi_ring_batch out = { 0 };
	size_t avail = ring_tx_contiguous(tx);
	size_t len = 0, cost, span;
	bool msg;

	out.off = (size_t)(tx->flushed & (tx->size - 1));
	while (len < avail) {
		span = ring_tx_span(tx->stage + out.off + len, avail - len,
				    &msg);
		if (span == 0)
			return VB_EINVAL;
		/* A PAD costs the WRITE only its 8 meaningful bytes. */
		cost = msg ? span : VBI_FRAME_PAD_LEN;
		if (max && len && len + cost > max)
			break;
		if (msg) {
			out.has_last = true;
			out.last_off = out.off + len;
		}
		out.xfer = len + cost;
		len += span;
	}
	out.len = len;
	*b = out;
	return VB_OK;
}

int vbi_ring_tx_flushed(struct vbi_ring_tx *tx, size_t len)
{
	if (len % VBI_FRAME_ALIGN || len > ring_tx_contiguous(tx))
		return VB_EINVAL;
	tx->flushed += len;
	return VB_OK;
}

int vbi_ring_tx_credit(struct vbi_ring_tx *tx, uint32_t freed_units)
{
	uint32_t diff = freed_units - (uint32_t)(tx->peer_freed / 8);
	uint64_t bytes = (uint64_t)diff * 8;

	/*
	 * A legitimate credit moves at most one ring (2^28 units) ahead, so a
	 * difference in the upper half of the u32 range is a credit older
	 * than one already applied, overtaken on the way: harmless, ignored.
	 */
	if (diff > INT32_MAX)
		return VB_OK;
	if (bytes > tx->flushed - tx->peer_freed)
		return VB_EPROTO;
	tx->peer_freed += bytes;
	return VB_OK;
}

int vbi_ring_rx_init(struct vbi_ring_rx *rx, void *base, size_t size)
{
	if (rx == NULL || !ring_size_ok(base, size))
		return VB_EINVAL;
	rx->base = base;
	rx->size = size;
	rx->head = 0;
	rx->written = 0;
	rx->freed = 0;
	rx->next_seq = 1;
	rx->broken = false;
	return VB_OK;
}

static int ring_rx_fail(struct vbi_ring_rx *rx)
{
	rx->broken = true;
	return VB_EPROTO;
}

int vbi_ring_rx_arrived(struct vbi_ring_rx *rx, uint32_t bytes)
{
	size_t at = (size_t)(rx->written & (rx->size - 1));

	if (rx->broken)
		return VB_EPROTO;
	if (bytes % VBI_FRAME_ALIGN ||
	    bytes > rx->size - (size_t)(rx->written - rx->freed) ||
	    bytes > rx->size - at)
		return ring_rx_fail(rx);
	rx->written += bytes;
	return VB_OK;
}

/*
 * Advance freed over released frames.  The headers are re-read from the
 * ring, which the peer can rewrite, so each is checked again: it must be a
 * known kind and its span must stay within [freed, head) and the ring.
 */
static int ring_rx_advance(struct vbi_ring_rx *rx)
{
	while (rx->freed < rx->head) {
		size_t at = (size_t)(rx->freed & (rx->size - 1));
		const uint8_t *p = rx->base + at;
		uint8_t kind = vbi_frame_get_kind(p);
		size_t span;

		if (!(vbi_frame_get_flags(p) & VBI_FRAME_F_RELEASED))
			break;
		span = vbi_frame_get_len(p);
		if (vbi_frame_is_msg(kind))
			span = vbi_frame_span(span);
		else if (kind != VBI_FRAME_PAD)
			return ring_rx_fail(rx);
		if (span < VBI_FRAME_PAD_LEN || span % VBI_FRAME_ALIGN ||
		    span > rx->head - rx->freed || span > rx->size - at)
			return ring_rx_fail(rx);
		rx->freed += span;
	}
	return VB_OK;
}

int vbi_ring_rx_next(struct vbi_ring_rx *rx, size_t max_msg,
		     struct vbi_frame_view *view)
{
	struct vbi_frame_view v;
	size_t at, avail;
	int rc;

	for (;;) {
		if (rx->broken)
			return VB_EPROTO;
		if (rx->head == rx->written)
			return VB_EAGAIN;
		at = (size_t)(rx->head & (rx->size - 1));
		avail = ring_min((size_t)(rx->written - rx->head),
				 rx->size - at);
		if (vbi_frame_parse(rx->base, rx->size, at, avail, max_msg,
				    &v) != VB_OK)
			return ring_rx_fail(rx);
		if (vbi_frame_is_msg(v.kind))
			break;
		/* A PAD is consumed and released at once. */
		vbi_frame_set_flags(rx->base + at, VBI_FRAME_F_RELEASED);
		rx->head += v.span;
		rc = ring_rx_advance(rx);
		if (rc != VB_OK)
			return rc;
	}
	if (v.seq != rx->next_seq)
		return ring_rx_fail(rx);
	v.pos = rx->head;
	rx->head += v.span;
	rx->next_seq++;
	*view = v;
	return VB_OK;
}

int vbi_ring_rx_release(struct vbi_ring_rx *rx,
			const struct vbi_frame_view *view)
{
	uint8_t *p;

	if (view == NULL || !vbi_frame_is_msg(view->kind))
		return VB_EINVAL;
	if (view->pos < rx->freed || view->pos >= rx->head ||
	    view->pos % VBI_FRAME_ALIGN || view->span < VBI_FRAME_HDR_LEN ||
	    view->span > rx->head - view->pos ||
	    view->off != (size_t)(view->pos & (rx->size - 1)) ||
	    view->span > rx->size - view->off)
		return VB_EINVAL;
	p = rx->base + view->off;
	if (view->topic != (const char *)p + VBI_FRAME_HDR_LEN ||
	    !vbi_frame_is_msg(vbi_frame_get_kind(p)) ||
	    vbi_frame_get_seq(p) != view->seq ||
	    (vbi_frame_get_flags(p) & VBI_FRAME_F_RELEASED))
		return VB_EINVAL;
	vbi_frame_set_flags(p, VBI_FRAME_F_RELEASED);
	return ring_rx_advance(rx);
}

uint32_t vbi_ring_rx_freed_units(const struct vbi_ring_rx *rx)
{
	return (uint32_t)(rx->freed / 8);
}
