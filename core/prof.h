/*
 * prof.h - step timestamps for following one message through the parties
 * (scripts/bench-steps.sh).
 *
 * A build configured with -DVERBUS_PROF=ON stamps the cycle counter at a
 * few fixed points of the data path (a publish call, a data write posted,
 * its completion at the receiver, a message handed up) into a per-process
 * array, which is written to $VERBUS_PROF_DIR/prof.<pid> when the process
 * exits.  Every other build compiles VBI_PROF() to nothing: the points cost
 * nothing in a product build.  The counter is the x86 TSC (one clock for
 * every process of a host or guest); elsewhere the monotonic clock.
 *
 * Ownership: the array is the process's, written once at exit.
 * Threading: vbi_prof_mark() is safe from any thread (one atomic add).
 */
#ifndef VERBUS_CORE_PROF_H
#define VERBUS_CORE_PROF_H

/* The points, in the order one message passes them. */
enum vbi_prof_point {
	VBI_PROF_PUBLISH = 1, /* a publish call starts (client) */
	VBI_PROF_POST = 2, /* a data write is posted (any party) */
	VBI_PROF_ARRIVED = 3, /* a write's completion polled (receiver) */
	VBI_PROF_DELIVER = 4, /* a message handed to its callback */
	VBI_PROF_DONE = 5, /* the receiving application has it (bench) */
	VBI_PROF_POSTED = 6, /* ibv_post_send() returned (rxe: its doorbell) */
};

#ifdef VERBUS_PROF
void vbi_prof_mark(enum vbi_prof_point p);
#define VBI_PROF(p) vbi_prof_mark(p)
#else
#define VBI_PROF(p) ((void)0)
#endif

#endif
