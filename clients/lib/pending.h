/*
 * pending.h - what one subscription holds for its application, against its
 * limits (vb_sub_set_pending_limits() in verbus/verbus.h).
 *
 * A subscription's pending messages are those the library keeps for the
 * application and the application has not given back: queued for
 * vb_next_msg() or returned by it (synchronous subscriptions), kept with
 * vb_msg_hold() (either kind), until vb_msg_release().  A message that
 * arrives when one more would pass a limit is dropped and counted; the
 * first drop after an accepted message starts a slow-consumer episode,
 * which the application hears of once (as nats.c's slowConsumer flag).
 *
 * Pure bookkeeping: no I/O, no allocation, no locking (the connection's
 * lock covers it), so that tests/unit/test_pending.c covers all of it.
 */
#ifndef VERBUS_CLIENTS_LIB_PENDING_H
#define VERBUS_CLIENTS_LIB_PENDING_H

#include <stdbool.h>
#include <stdint.h>

/* The defaults, nats.c's: 65536 messages, 64 MiB of data. */
#define VBI_PENDING_MSGS_DEF 65536
#define VBI_PENDING_BYTES_DEF (64 * 1024 * 1024)

/* The counters and limits of one subscription. */
struct vbi_pending {
	uint64_t msgs; /* pending now */
	uint64_t bytes; /* their data bytes */
	int64_t max_msgs; /* limit; -1: none */
	int64_t max_bytes; /* limit; -1: none */
	uint64_t dropped; /* messages refused for a limit, in all */
	bool slow; /* in a slow-consumer episode: the last one was dropped */
};

/* The result of vbi_pending_admit(). */
enum vbi_pending_verdict {
	VBI_PENDING_TAKE, /* within the limits: the caller may keep it */
	VBI_PENDING_DROP, /* over a limit: drop it, nothing to report */
	VBI_PENDING_DROP_FIRST, /* over a limit, the first of an episode:
				 * drop it and tell the application */
};

/* vbi_pending_init() - nothing pending, nothing dropped, the defaults. */
void vbi_pending_init(struct vbi_pending *p);

/*
 * vbi_pending_set_limits() - set the limits: each > 0 is one, -1 none.
 * Returns VB_OK, or VB_EINVAL (0 or below -1: nothing changes).  Messages
 * already pending stay; the limits apply to the next arrival.
 */
int vbi_pending_set_limits(struct vbi_pending *p, int64_t msgs, int64_t bytes);

/*
 * vbi_pending_admit() - may a message of @bytes data bytes be kept?  Not if
 * one more message, or @bytes more, would pass a limit: then it is counted
 * in p->dropped, and the verdict says whether it starts an episode.  A
 * message admitted ends the episode.  Nothing is added: the caller adds
 * what it keeps (vbi_pending_add).
 */
enum vbi_pending_verdict vbi_pending_admit(struct vbi_pending *p,
					   uint64_t bytes);

/* vbi_pending_add() - one more message of @bytes is pending. */
void vbi_pending_add(struct vbi_pending *p, uint64_t bytes);

/* vbi_pending_done() - a message of @bytes is no longer pending (its
 * counters never go below 0). */
void vbi_pending_done(struct vbi_pending *p, uint64_t bytes);

#endif /* VERBUS_CLIENTS_LIB_PENDING_H */
