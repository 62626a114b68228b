/*
 * prof.c - step timestamps (prof.h).  Built only with -DVERBUS_PROF=ON.
 */
#include "core/prof.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

/* Enough for a latency run of 100,000 messages at 5 points each. */
#define PROF_MAX (1u << 20)

struct mark {
	uint64_t t;
	uint32_t point;
};

static struct mark marks[PROF_MAX];
static _Atomic uint32_t nmarks;
static atomic_flag registered = ATOMIC_FLAG_INIT;
/* The counter and the monotonic clock at the first mark, to scale it. */
static uint64_t t0, ns0;

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t ticks(void)
{
#if defined(__x86_64__) || defined(__i386__)
	return __rdtsc();
#else
	return mono_ns();
#endif
}

/* Written at exit: "pid ticks_per_us" then one "ticks point" per mark. */
static void dump(void)
{
	const char *dir = getenv("VERBUS_PROF_DIR");
	uint64_t t1 = ticks(), ns1 = mono_ns();
	uint32_t n = atomic_load(&nmarks), i;
	char path[4096];
	FILE *f;

	if (dir == NULL || n == 0)
		return;
	if (n > PROF_MAX)
		n = PROF_MAX;
	snprintf(path, sizeof(path), "%s/prof.%d", dir, (int)getpid());
	f = fopen(path, "w");
	if (f == NULL)
		return;
	fprintf(f, "%d %.6f\n", (int)getpid(),
		ns1 > ns0 ? (double)(t1 - t0) * 1000.0 / (double)(ns1 - ns0) :
			    1.0);
	for (i = 0; i < n; i++)
		fprintf(f, "%llu %u\n", (unsigned long long)marks[i].t,
			marks[i].point);
	fclose(f);
}

void vbi_prof_mark(enum vbi_prof_point p)
{
	uint32_t i;

	if (!atomic_flag_test_and_set(&registered)) {
		t0 = ticks();
		ns0 = mono_ns();
		atexit(dump);
	}
	i = atomic_fetch_add(&nmarks, 1);
	if (i < PROF_MAX) {
		marks[i].t = ticks();
		marks[i].point = (uint32_t)p;
	}
}
