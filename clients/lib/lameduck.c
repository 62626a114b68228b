/*
 * lameduck.c - a broker in lame-duck mode (verbus/verbus.h,
 * VB_EV_LAME_DUCK; docs/PROTOCOL.md, "LameDuck").
 *
 * The broker is going away and says so.  With another server in the pool
 * the connection moves at once, losing nothing: a Ping is queued behind
 * everything published so far, and from then on nothing more goes to this
 * broker (publishes are buffered in the queue, vb_reserve waits); its
 * Pong says the broker has routed all that came before, and the
 * connection then leaves it as if it had been lost: the next server of
 * the pool, at once, with the subscriptions re-sent and the buffered
 * messages after them (client.c).  Should the broker close the connection
 * first, that is the loss the move was heading for anyway.  With a single
 * server nothing changes until the broker closes the connection; the
 * usual reconnection then waits for it to come back.
 */
#include "clients/lib/client.h"

#include <stdio.h>

void vbi_lameduck_on(struct vb_conn *c, const Verbus__LameDuck *ld)
{
	struct vbi_conn *vc = c->vc;
	bool move = vbi_pool_count(c->pool) > 1;
	struct out_item *it;
	char why[160];

	if (move)
		snprintf(why, sizeof(why),
			 "the broker is going away (lame duck): moving to "
			 "another server");
	else
		snprintf(why, sizeof(why),
			 "the broker is going away (lame duck): it closes "
			 "this connection within %u ms, then reconnecting",
			 ld->duration_ms);
	vbi_info("%s: %s", c->name, why);
	vbi_client_event(c, VB_EV_LAME_DUCK, VB_OK, why, NULL, ld->duration_ms);
	/* The application may have closed it, or it was lost meanwhile. */
	if (!move || c->move_ping || c->state != CS_OPEN || c->vc != vc)
		return;
	it = vbi_outq_new(OUT_PING, 0);
	if (!it) {
		/* No barrier: leave now, what was sent is the broker's. */
		vbi_client_move(c, "lame duck: moving to another server");
		return;
	}
	it->num = ++c->ping_id;
	c->move_ping = it->num;
	vbi_outq_append(c, it);
	vbi_outq_pump(c);
}

void vbi_lameduck_pong(struct vb_conn *c, uint64_t id)
{
	if (!c->move_ping || id < c->move_ping)
		return;
	vbi_client_move(c, "lame duck: moving to another server");
}
