/*
 * clock.h - the monotonic clock, in nanoseconds or milliseconds, read
 * precisely or coarsely.
 *
 * The coarse clock is CLOCK_MONOTONIC as of the last tick (a few ms
 * behind at most) and is read without a system call even where a precise
 * read needs one (a guest whose clocksource the vDSO cannot read: hpet
 * under QEMU TCG, ~1.5 us a read): for deadlines and timers, which a
 * tick late does not hurt, never for what is measured.
 *
 * Threading: every function is reentrant and lock-free.
 */
#ifndef VERBUS_CORE_CLOCK_H
#define VERBUS_CORE_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t vbi_clock_read_ns(clockid_t id)
{
	struct timespec t;

	clock_gettime(id, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* vbi_clock_ns() - CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t vbi_clock_ns(void)
{
	return vbi_clock_read_ns(CLOCK_MONOTONIC);
}

/* vbi_clock_ms() - CLOCK_MONOTONIC in milliseconds. */
static inline uint64_t vbi_clock_ms(void)
{
	return vbi_clock_ns() / 1000000u;
}

/* vbi_clock_coarse_ns() - CLOCK_MONOTONIC_COARSE in nanoseconds. */
static inline uint64_t vbi_clock_coarse_ns(void)
{
	return vbi_clock_read_ns(CLOCK_MONOTONIC_COARSE);
}

/* vbi_clock_coarse_ms() - CLOCK_MONOTONIC_COARSE in milliseconds. */
static inline uint64_t vbi_clock_coarse_ms(void)
{
	return vbi_clock_coarse_ns() / 1000000u;
}

/* vbi_clock_wall_ms() - CLOCK_REALTIME in milliseconds since the Unix
 * epoch: for what two hosts compare (a direct grant's expiry). */
static inline uint64_t vbi_clock_wall_ms(void)
{
	return vbi_clock_read_ns(CLOCK_REALTIME) / 1000000u;
}

#endif /* VERBUS_CORE_CLOCK_H */
