/*
 * health.h - what /healthz answers: is the broker accepting and routing?
 *
 * Three checks, from one snapshot of the broker (stats.h):
 *
 *   draining     no shutdown (SIGTERM's drain) or lame duck is under way:
 *                a broker that has stopped accepting is not one a load
 *                balancer or a supervisor should send clients to;
 *   listening    every client listener of the configuration is open (a
 *                drain closes them too: "draining" comes first, as the
 *                cause);
 *   event_loop   the loop turns: the broker's timer tick, which runs on
 *                every turn TICK_MS (50 ms) apart, last ran less than
 *                VBD_HEALTH_LOOP_MS (2 s) ago, and the loop has not come
 *                back, less than VBD_HEALTH_LOOP_MS ago, from an absence
 *                of VBD_HEALTH_LOOP_MS or more.
 *
 * The event-loop check, and why it is not trivially true.  The monitor is
 * served by the very loop it is asked about, so a loop that is hung now
 * cannot answer at all: the health checker's own timeout is what reports
 * that, and nothing here can.  Measuring "the last turn" at the moment of
 * answering would always find it fresh.  What the check adds is the
 * loop's recent past, which such an answer would hide: a request that
 * waited behind a stall (a blocking call, a long render, the process
 * stopped or starved) is answered after it, and the broker's tick has by
 * then recorded how long the loop was away (the "loop late" of /metrics);
 * for VBD_HEALTH_LOOP_MS after a stall that long, /healthz says 503 "the
 * event loop was away N ms", not an "ok" that arrives N ms late, and a
 * checker polling through a loop that stalls again and again sees it.
 * The tick's age catches a loop that turns and serves HTTP but whose
 * timers no longer run (block timeouts, notices, a shutdown's closing):
 * the broker would answer and not route.
 *
 * The cluster is not a check: clients are served without ZooKeeper, so
 * /healthz reports the cluster beside the status and stays "ok".
 *
 * Threading: pure functions; any thread.
 */
#ifndef VERBUS_DAEMON_HEALTH_H
#define VERBUS_DAEMON_HEALTH_H

#include "daemon/stats.h"

#include <stdbool.h>

/* The longest the loop may be away (ms) and the broker still "ok", and
 * how long after such an absence it is not. */
#define VBD_HEALTH_LOOP_MS 2000u

/* The verdict of one snapshot. */
struct vbd_health {
	bool ok; /* every check passed */
	bool listening; /* check "listening" passed */
	bool accepting; /* check "draining" passed (not draining) */
	bool loop; /* check "event_loop" passed */
	/* The failed checks' names ("draining", "listening", "event_loop"),
	 * in that order, @nfailed of them; and one sentence for the first,
	 * "" if none failed. */
	const char *failed[3];
	unsigned nfailed;
	char error[160];
};

/* vbd_health_check() - judge the snapshot @s into *@h. */
void vbd_health_check(const struct vbd_stats_server *s, struct vbd_health *h);

#endif /* VERBUS_DAEMON_HEALTH_H */
