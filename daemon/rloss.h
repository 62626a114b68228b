/*
 * rloss.h - deliveries lost on the way to a route, kept until the peer
 * is told (docs/PROTOCOL.md, "Losses across a route").
 *
 * A delivery to a route can be lost on the sending broker: the route's
 * queue shed while the peer held it back past the stall limit, a forward
 * that failed, the queue of a route that closed.  The subscribers that
 * would have had it sit behind the peer, so the sender keeps the losses by
 * (subject, sid), the sid being the peer's interest entry the delivery was
 * for (0: its plain subscribers), and sends each as a Dropped carrying the
 * subject when the route has room; the peer tells its subscribers on that
 * subject.  The table outlives a route connection (a closed route's losses
 * go out when it opens again) and holds at most VBD_RLOSS_MAX subjects:
 * losses beyond it are kept as one count the peer cannot attribute, never
 * forgotten.
 *
 * Ownership: the table owns its entries and their copies of subjects.
 * Threading: none; the broker's thread only (as broker_int.h).
 */
#ifndef VERBUS_DAEMON_RLOSS_H
#define VERBUS_DAEMON_RLOSS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VBD_RLOSS_MAX 1024u /* (subject, sid) entries kept at most */

struct vbd_rloss;

/* One entry on its way out: @subject is "" for the unattributed count. */
struct vbd_rloss_entry {
	const char *subject; /* NUL-terminated, owned by the table */
	uint32_t sid;
	uint64_t count;
};

/* vbd_rloss_create() - an empty table, or NULL (out of memory). */
struct vbd_rloss *vbd_rloss_create(void);

/* vbd_rloss_destroy() - free @t and what it holds (NULL is fine). */
void vbd_rloss_destroy(struct vbd_rloss *t);

/*
 * vbd_rloss_add() - @n more losses of (@subject, @len bytes; @sid).  Adds
 * to the entry if there is one, else makes one, oldest first; with
 * VBD_RLOSS_MAX entries already, or out of memory, the losses go to the
 * unattributed count.
 */
void vbd_rloss_add(struct vbd_rloss *t, const char *subject, size_t len,
		   uint32_t sid, uint64_t n);

/*
 * vbd_rloss_peek() - the next entry to send into *@e (the unattributed
 * count after every subject's): false if nothing is owed.  *@e stays
 * valid until the next call on @t.
 */
bool vbd_rloss_peek(const struct vbd_rloss *t, struct vbd_rloss_entry *e);

/* vbd_rloss_pop() - the entry vbd_rloss_peek() gave was sent: forget it. */
void vbd_rloss_pop(struct vbd_rloss *t);

/* vbd_rloss_owed() - losses kept and not yet sent, in all. */
uint64_t vbd_rloss_owed(const struct vbd_rloss *t);

#endif
