/*
 * health.c - /healthz's verdict from a snapshot of the broker (health.h).
 *
 * A pure function of the snapshot, so that every combination is tested
 * directly (tests/unit/test_monitor.c) without a broker in that state;
 * monitor.c only renders it.
 */
#include "daemon/health.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Record @name as failed; the first failure's sentence is @why. */
static void failed(struct vbd_health *h, const char *name, const char *why)
{
	if (h->nfailed == 0)
		snprintf(h->error, sizeof(h->error), "%s", why);
	h->failed[h->nfailed++] = name;
}

void vbd_health_check(const struct vbd_stats_server *s, struct vbd_health *h)
{
	char why[160];

	memset(h, 0, sizeof(*h));
	h->listening = s->listening;
	h->accepting = !s->draining;
	h->loop = s->tick_age_ms < VBD_HEALTH_LOOP_MS &&
		  !(s->loop_away_ms >= VBD_HEALTH_LOOP_MS &&
		    s->loop_back_ms < VBD_HEALTH_LOOP_MS);
	if (!h->accepting)
		failed(h, "draining",
		       "the broker is draining: it accepts no new clients");
	/* After draining: a drain closes the listeners, and is the cause. */
	if (!h->listening)
		failed(h, "listening",
		       "the broker is not listening for clients");
	if (!h->loop) {
		if (s->tick_age_ms >= VBD_HEALTH_LOOP_MS)
			snprintf(why, sizeof(why),
				 "the event loop's timers last ran %" PRIu64
				 " ms ago",
				 s->tick_age_ms);
		else
			snprintf(why, sizeof(why),
				 "the event loop was away %" PRIu64
				 " ms, until %" PRIu64 " ms ago",
				 s->loop_away_ms, s->loop_back_ms);
		failed(h, "event_loop", why);
	}
	h->ok = h->nfailed == 0;
}
