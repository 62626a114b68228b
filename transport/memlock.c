/*
 * memlock.c - the locked-memory limit and its sentence (see memlock.h).
 *
 * The test is the kernel's own (ib_umem_get(), mlock()): whole pages, the
 * pages pinned already plus the new ones against the soft limit in pages,
 * skipped with CAP_IPC_LOCK.  What is pinned already is VmPin from
 * /proc/self/status; the capability is asked of capget(2) directly, so no
 * libcap is needed.  The sentence names the three ways to raise the limit
 * because which one applies depends on how the process was started (a
 * shell, a systemd unit, a PAM login).
 */
#include "memlock.h"

#include "core/parse.h"

#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Whether CAP_IPC_LOCK is in the effective set. */
static bool has_ipc_lock(void)
{
	struct __user_cap_header_struct h = {
		.version = _LINUX_CAPABILITY_VERSION_3,
		.pid = 0,
	};
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];

	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) != 0)
		return false;
	return (d[CAP_TO_INDEX(CAP_IPC_LOCK)].effective &
		CAP_TO_MASK(CAP_IPC_LOCK)) != 0;
}

/* VmPin in bytes, or false if /proc does not say. */
static bool pinned_now(uint64_t *out)
{
	unsigned long long kb;
	char line[128];
	bool found = false;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "VmPin: %llu kB", &kb) == 1) {
			*out = (uint64_t)kb * 1024;
			found = true;
			break;
		}
	}
	fclose(f);
	return found;
}

void vbi_memlock_read(struct vbi_memlock *m, uint64_t floor)
{
	struct rlimit rl;
	long page = sysconf(_SC_PAGESIZE);
	uint64_t pinned = 0;

	m->page = page > 0 ? (uint64_t)page : 4096;
	m->limit = VBI_MEMLOCK_INFINITY;
	if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		m->limit = (uint64_t)rl.rlim_cur;
	m->exempt = has_ipc_lock();
	if (!pinned_now(&pinned) || pinned < floor)
		pinned = floor;
	m->locked = pinned;
}

static uint64_t pages(const struct vbi_memlock *m, uint64_t bytes)
{
	return bytes / m->page + (bytes % m->page != 0);
}

bool vbi_memlock_short(const struct vbi_memlock *m, uint64_t want)
{
	uint64_t have, need;

	if (m->exempt || m->limit == VBI_MEMLOCK_INFINITY || m->page == 0)
		return false;
	have = m->limit / m->page; /* the kernel rounds the limit down */
	need = pages(m, m->locked) + pages(m, want);
	return need > have || need < pages(m, want); /* or it wrapped */
}

const char *vbi_memlock_explain(const struct vbi_memlock *m, uint64_t want,
				char *buf, size_t len)
{
	char w[32], l[32], k[32];
	uint64_t page = m->page ? m->page : 4096;
	uint64_t rounded = want / page * page + (want % page ? page : 0);

	vbi_size_str(rounded, w, sizeof(w));
	vbi_size_str(m->limit, l, sizeof(l));
	vbi_size_str(m->locked, k, sizeof(k));
	snprintf(buf, len,
		 "locking %s more would pass the locked-memory limit "
		 "RLIMIT_MEMLOCK (%s%s%s%s); raise it: ulimit -l, systemd "
		 "LimitMEMLOCK=, memlock in /etc/security/limits.conf",
		 w, l, m->locked ? ", " : "", m->locked ? k : "",
		 m->locked ? " locked already" : "");
	return buf;
}

bool vbi_memlock_blame(int err, uint64_t want, uint64_t floor, char *buf,
		       size_t len)
{
	struct vbi_memlock m;

	if (err != ENOMEM && err != EPERM && err != EAGAIN)
		return false;
	vbi_memlock_read(&m, floor);
	if (!vbi_memlock_short(&m, want))
		return false;
	vbi_memlock_explain(&m, want, buf, len);
	return true;
}
