/*
 * pending.c - a subscription's pending messages against its limits (see
 * pending.h).
 *
 * The limit test is nats.c's: a message is dropped when taking it would
 * make more than max_msgs messages or more than max_bytes data bytes
 * pending, so a limit of N messages holds N; a single message larger than
 * the byte limit is always dropped.  The episode flag is nats.c's
 * slowConsumer: set by a drop, cleared by the next message admitted, so a
 * burst of drops is reported once however long it lasts.
 */
#include "clients/lib/pending.h"

#include <verbus/verbus.h>

void vbi_pending_init(struct vbi_pending *p)
{
	*p = (struct vbi_pending){
		.max_msgs = VBI_PENDING_MSGS_DEF,
		.max_bytes = VBI_PENDING_BYTES_DEF,
	};
}

int vbi_pending_set_limits(struct vbi_pending *p, int64_t msgs, int64_t bytes)
{
	if (msgs == 0 || msgs < -1 || bytes == 0 || bytes < -1)
		return VB_EINVAL;
	p->max_msgs = msgs;
	p->max_bytes = bytes;
	return VB_OK;
}

enum vbi_pending_verdict vbi_pending_admit(struct vbi_pending *p,
					   uint64_t bytes)
{
	bool over_msgs = p->max_msgs >= 0 && p->msgs >= (uint64_t)p->max_msgs;
	bool over_bytes = p->max_bytes >= 0 &&
			  (bytes > (uint64_t)p->max_bytes ||
			   p->bytes > (uint64_t)p->max_bytes - bytes);
	bool first;

	if (!over_msgs && !over_bytes) {
		p->slow = false;
		return VBI_PENDING_TAKE;
	}
	p->dropped++;
	first = !p->slow;
	p->slow = true;
	return first ? VBI_PENDING_DROP_FIRST : VBI_PENDING_DROP;
}

void vbi_pending_add(struct vbi_pending *p, uint64_t bytes)
{
	p->msgs++;
	p->bytes += bytes;
}

void vbi_pending_done(struct vbi_pending *p, uint64_t bytes)
{
	p->msgs = p->msgs ? p->msgs - 1 : 0;
	p->bytes = p->bytes >= bytes ? p->bytes - bytes : 0;
}
