/*
 * Unit tests for the locked-memory limit and its sentence
 * (transport/memlock.c).  The last test changes this process: it drops
 * CAP_IPC_LOCK from its effective set and lowers its RLIMIT_MEMLOCK, then
 * checks that what memlock.c reads matches what the kernel does (mlock()
 * follows the same rule as a memory registration).
 */
#include "transport/memlock.h"

#include <errno.h>
#include <linux/capability.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cmocka.h>

static struct vbi_memlock at(uint64_t limit, uint64_t locked, bool exempt)
{
	struct vbi_memlock m = {
		.limit = limit,
		.locked = locked,
		.exempt = exempt,
		.page = 4096,
	};

	return m;
}

/* Whole pages, the kernel's way: the limit rounded down, the rest up. */
static void test_memlock_short(void **state)
{
	struct vbi_memlock m;

	(void)state;
	m = at(64 << 10, 0, false);
	assert_false(vbi_memlock_short(&m, 64 << 10));
	assert_true(vbi_memlock_short(&m, (64 << 10) + 1));
	assert_false(vbi_memlock_short(&m, 1));
	m = at(64 << 10, 60 << 10, false);
	assert_false(vbi_memlock_short(&m, 4096));
	assert_true(vbi_memlock_short(&m, 4097));
	m = at(65535, 0, false); /* 15 whole pages */
	assert_true(vbi_memlock_short(&m, 64 << 10));
	assert_false(vbi_memlock_short(&m, 60 << 10));
	m = at(0, 0, false);
	assert_true(vbi_memlock_short(&m, 1));
	assert_false(vbi_memlock_short(&m, 0));
	/* Locked already beyond the limit (it was lowered since). */
	m = at(64 << 10, 1 << 20, false);
	assert_true(vbi_memlock_short(&m, 1));
	/* No limit, or CAP_IPC_LOCK: never short. */
	m = at(VBI_MEMLOCK_INFINITY, 0, false);
	assert_false(vbi_memlock_short(&m, UINT64_MAX));
	m = at(0, 0, true);
	assert_false(vbi_memlock_short(&m, 1 << 30));
	/* A want near 2^64 does not wrap into "fits". */
	m = at(64 << 10, 8192, false);
	assert_true(vbi_memlock_short(&m, UINT64_MAX));
	assert_true(vbi_memlock_short(&m, UINT64_MAX - 4095));
}

/* The sentence: how much, the limit, what is locked, how to raise it. */
static void test_memlock_explain(void **state)
{
	struct vbi_memlock m;
	char buf[256];

	(void)state;
	m = at(64 << 10, 0, false);
	assert_string_equal(vbi_memlock_explain(&m, 1 << 20, buf, sizeof(buf)),
			    "locking 1 MiB more would pass the locked-memory "
			    "limit RLIMIT_MEMLOCK (64 KiB); raise it: ulimit "
			    "-l, systemd LimitMEMLOCK=, memlock in "
			    "/etc/security/limits.conf");
	m = at(8 << 20, 8 << 10, false);
	vbi_memlock_explain(&m, 278528 + 1, buf, sizeof(buf)); /* page up */
	assert_non_null(strstr(buf, "locking 276 KiB more would pass"));
	assert_non_null(strstr(buf, "RLIMIT_MEMLOCK (8 MiB, 8 KiB locked "
				    "already); raise it: "));
	/* Cut, not overrun. */
	memset(buf, 'x', sizeof(buf));
	vbi_memlock_explain(&m, 4096, buf, 10);
	assert_string_equal(buf, "locking 4");
	assert_int_equal(buf[10], 'x');
}

/* CAP_IPC_LOCK out of the effective set (a no-op without it). */
static void drop_ipc_lock(void)
{
	struct __user_cap_header_struct h = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];

	assert_int_equal(syscall(SYS_capget, &h, d), 0);
	d[CAP_TO_INDEX(CAP_IPC_LOCK)].effective &= ~CAP_TO_MASK(CAP_IPC_LOCK);
	assert_int_equal(syscall(SYS_capset, &h, d), 0);
}

/* mlock(2) itself: the sanitizers' runtime replaces the libc call with one
 * that does nothing and succeeds. */
static int sys_mlock(void *p, size_t len)
{
	return (int)syscall(SYS_mlock, p, len);
}

/* The process's own state, and the kernel agreeing with it. */
static void test_memlock_process(void **state)
{
	const size_t big = 1 << 20, small = 4096;
	struct vbi_memlock m;
	struct rlimit rl;
	char buf[256];
	void *p;
	int err;

	(void)state;
	drop_ipc_lock();
	assert_int_equal(getrlimit(RLIMIT_MEMLOCK, &rl), 0);
	rl.rlim_cur = rl.rlim_max < (64 << 10) ? rl.rlim_max : (64 << 10);
	assert_int_equal(setrlimit(RLIMIT_MEMLOCK, &rl), 0);

	vbi_memlock_read(&m, 0);
	assert_false(m.exempt);
	assert_true(m.limit == rl.rlim_cur);
	assert_int_equal(m.page, (uint64_t)sysconf(_SC_PAGESIZE));
	/* The floor stands in for what /proc would say, never below it. */
	vbi_memlock_read(&m, 12345);
	assert_true(m.locked >= 12345);

	/* Past the limit: the kernel refuses, and the limit is blamed. */
	p = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0);
	assert_true(p != MAP_FAILED);
	assert_int_equal(sys_mlock(p, big), -1);
	err = errno;
	assert_true(err == ENOMEM || err == EPERM);
	buf[0] = '\0';
	assert_true(vbi_memlock_blame(err, big, 0, buf, sizeof(buf)));
	assert_non_null(strstr(buf, "locking 1 MiB more would pass"));
	assert_non_null(strstr(buf, "ulimit -l"));
	/* Within it: the kernel takes it, and nothing would be blamed. */
	if (rl.rlim_cur >= small) {
		assert_int_equal(sys_mlock(p, small), 0);
		assert_false(vbi_memlock_blame(ENOMEM, small, 0, buf, 4));
		syscall(SYS_munlock, p, small);
	}
	munmap(p, big);
	/* Another error is never the limit's. */
	strcpy(buf, "untouched");
	assert_false(vbi_memlock_blame(EINVAL, big, 0, buf, sizeof(buf)));
	assert_false(vbi_memlock_blame(EFAULT, big, 0, buf, sizeof(buf)));
	assert_string_equal(buf, "untouched");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_memlock_short),
		cmocka_unit_test(test_memlock_explain),
		cmocka_unit_test(test_memlock_process), /* last: changes us */
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
