/*
 * memlock.h - the locked-memory limit that registered memory counts
 * against, and the one sentence that says so.
 *
 * Every RDMA buffer is registered (pinned): the kernel counts it against
 * the process's RLIMIT_MEMLOCK unless the process has CAP_IPC_LOCK, and
 * refuses a registration past it with ENOMEM (EPERM or EAGAIN for mlock
 * and some drivers).  A user then sees "out of memory" on a machine with
 * gigabytes free; this module tells the limit apart from a real shortage
 * and words the refusal: how much was asked, the limit, what is locked
 * already, and how to raise it.  The RDMA transport calls it when a
 * registration fails and when a listener starts (verbusd refuses to start
 * when not even one connection would fit).
 *
 * Threading: reentrant (reads the process's state each call).  Never
 * blocks beyond reading /proc/self/status.
 */
#ifndef VERBUS_TRANSPORT_MEMLOCK_H
#define VERBUS_TRANSPORT_MEMLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VBI_MEMLOCK_INFINITY UINT64_MAX /* no limit */

/* Where the process stands against the limit. */
struct vbi_memlock {
	uint64_t limit; /* RLIMIT_MEMLOCK's soft limit, bytes, or infinity */
	uint64_t locked; /* bytes pinned already (VmPin), at least the floor
			  * the caller knows of */
	bool exempt; /* CAP_IPC_LOCK is in effect: the limit does not apply */
	uint64_t page; /* the page size: pinning counts whole pages */
};

/*
 * vbi_memlock_read() - the process's limit, capability and pinned bytes
 * into *@m.  @floor is what the caller knows it has registered itself,
 * used when /proc cannot say (then no less is assumed pinned).
 */
void vbi_memlock_read(struct vbi_memlock *m, uint64_t floor);

/* vbi_memlock_short() - whether pinning @want more bytes would pass @m's
 * limit (false if exempt or unlimited). */
bool vbi_memlock_short(const struct vbi_memlock *m, uint64_t want);

/*
 * vbi_memlock_explain() - the sentence for @want bytes that @m's limit
 * refuses, into @buf (@len bytes, NUL-terminated, cut if need be):
 * "locking 1 MiB more would pass the locked-memory limit RLIMIT_MEMLOCK
 * (64 KiB, 8 KiB locked already); raise it: ulimit -l, systemd
 * LimitMEMLOCK=, memlock in /etc/security/limits.conf".  Returns @buf.
 */
const char *vbi_memlock_explain(const struct vbi_memlock *m, uint64_t want,
				char *buf, size_t len);

/*
 * vbi_memlock_blame() - after registering @want bytes failed with errno
 * @err: if the limit is why (@err ENOMEM, EPERM or EAGAIN, the process not
 * exempt, and @want more than the limit leaves), the sentence into @buf
 * and true; else false and @buf untouched.  @floor as for
 * vbi_memlock_read().
 */
bool vbi_memlock_blame(int err, uint64_t want, uint64_t floor, char *buf,
		       size_t len);

#endif /* VERBUS_TRANSPORT_MEMLOCK_H */
