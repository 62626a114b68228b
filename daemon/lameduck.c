/*
 * lameduck.c - lame-duck mode (SIGUSR2, `verbusd --signal ldm`), as
 * nats-server's: the broker is going away (a rolling restart) and lets its
 * clients go first, so that none loses what it buffered.
 *
 * At once: the client listeners close (a connection still in its handshake
 * is refused at its open), and every client gets a LameDuck control
 * message (PROTOCOL.md), owed and sent again at each tick while it has no
 * credit.  libverbus, given another server in its pool, moves there at
 * once: it finishes with this broker (a Ping barrier behind what it sent)
 * and reconnects elsewhere, keeping what it buffered.  After
 * cfg.lame_duck_grace_ms, the clients that remain (a client with a single
 * server stays) are closed with an Error saying why, spread evenly over
 * the rest of cfg.lame_duck_duration_ms, those with no delivery queued
 * first; when none is left, or the duration has passed, the period is
 * over and main.c shuts down as for SIGTERM (drain, routes closed, the
 * cluster left, exit 0).
 *
 * The cluster: routes stay open and our member node stays in ZooKeeper
 * until that shutdown, so that what the remaining clients publish and
 * subscribe to keeps flowing both ways; a client that learns our URL
 * meanwhile and tries it is refused ("lame duck") and moves on.
 */
#include "daemon/broker_int.h"

#include "core/clock.h"
#include "core/log.h"

#include <verbus/verbus.h>

#include <inttypes.h>

/* Send @bc its LameDuck; false if it must wait for credit. */
static bool send_lame_duck(struct vbd_broker *b, struct bconn *bc, uint64_t now)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__LameDuck ld = VERBUS__LAME_DUCK__INIT;
	uint64_t spent = now - b->ldm_since;

	ld.grace_ms = spent < b->cfg.lame_duck_grace_ms ?
			      (uint32_t)(b->cfg.lame_duck_grace_ms - spent) :
			      0;
	ld.duration_ms =
		spent < b->cfg.lame_duck_duration_ms ?
			(uint32_t)(b->cfg.lame_duck_duration_ms - spent) :
			0;
	m.body_case = VERBUS__CONTROL__BODY_LAME_DUCK;
	m.lame_duck = &ld;
	if (vbi_conn_send_ctrl(bc->c, &m) != VB_OK)
		return false;
	bc->ldm_owed = false;
	return true;
}

void vbd_broker_lame_duck(struct vbd_broker *b)
{
	uint64_t now = vbi_clock_coarse_ms();
	struct bconn *bc;
	uint64_t told = 0;

	if (b->shutting_down || b->ldm_since)
		return;
	b->ldm_since = now ? now : 1;
	bk_stop_accepting(b);
	for (bc = b->head; bc; bc = bc->next) {
		if (bc->role != BK_CLIENT || bc->closing)
			continue;
		bc->ldm_owed = true;
		told += send_lame_duck(b, bc, now);
	}
	vbi_info("lame duck: no longer accepting; %" PRIu64 " of %" PRIu64
		 " clients told at once; the rest are closed after %u ms, "
		 "over %u ms, then verbusd exits",
		 told, b->nconns, b->cfg.lame_duck_grace_ms,
		 b->cfg.lame_duck_duration_ms - b->cfg.lame_duck_grace_ms);
}

bool vbd_broker_lame_duck_over(const struct vbd_broker *b)
{
	return b->ldm_over;
}

/* The next client to close: one with nothing queued for it, if any. */
static struct bconn *next_victim(struct vbd_broker *b)
{
	struct bconn *bc, *any = NULL;

	for (bc = b->head; bc; bc = bc->next) {
		if (bc->role != BK_CLIENT || bc->closing)
			continue;
		if (bc->pend_n == 0)
			return bc;
		if (!any)
			any = bc;
	}
	return any;
}

void bk_lame_duck_tick(struct vbd_broker *b, uint64_t now)
{
	uint64_t grace = b->cfg.lame_duck_grace_ms;
	uint64_t span = b->cfg.lame_duck_duration_ms - grace, elapsed, target;
	struct bconn *bc;

	if (b->ldm_over || b->shutting_down)
		return;
	for (bc = b->head; bc; bc = bc->next)
		if (bc->ldm_owed && !bc->closing)
			send_lame_duck(b, bc, now);
	if (now - b->ldm_since < grace)
		return;
	elapsed = now - b->ldm_since - grace;
	if (!b->ldm_closing) {
		b->ldm_closing = true;
		b->ldm_n0 = b->nconns;
		if (b->nconns)
			vbi_info("lame duck: grace period over; closing the "
				 "%" PRIu64 " remaining clients over %" PRIu64
				 " ms",
				 b->nconns, span);
	}
	target = elapsed >= span ? b->ldm_n0 :
				   (b->ldm_n0 * elapsed + span - 1) / span;
	while (b->ldm_closed < target && (bc = next_victim(b))) {
		vbi_info("lame duck: closing conn cid %" PRIu64 " %s", bc->cid,
			 bc->name);
		bc->closing = true;
		b->ldm_closed++;
		vbi_conn_close_error(bc->c, VB_ESTATE,
				     "lame duck: the broker is going away");
	}
	if (b->nconns == 0 || elapsed >= span) {
		vbi_info("lame duck: period over");
		b->ldm_over = true;
	}
}
