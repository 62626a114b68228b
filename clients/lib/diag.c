/*
 * diag.c - what libverbus tells an application about a connection beyond
 * its messages: round trips to the broker (vb_rtt, vb_stats.rtt_ns), the
 * broker's version (vb_conn_server_version), and the library's own log
 * lines (vb_opts.log).  See verbus/verbus.h.
 *
 * Decisions a reader must know.
 *
 * Every Ping is timed.  A Ping is queued like any control message, behind
 * what waits to be sent, and the broker answers it once it has routed what
 * came before and has handed us what it queued for us before it
 * (daemon/subs.c).  So a round trip is the connection's latency as a
 * message sees it, not the wire's alone; the heartbeat's Ping, sent only
 * when nothing is queued, is the purest, and the last one answered sets
 * vb_stats.rtt_ns.
 *
 * Log lines go where the thread's work is.  core/log.c has one process-wide
 * sink (the daemon's) and a per-thread stack of scopes: every entry point
 * of a connection pushes its sink (client_lock), so that what the
 * transport logs on that connection's behalf, deep inside a progress or a
 * send, reaches that connection's application and no other.
 */
#include "clients/lib/client.h"

#include <stdio.h>
#include <string.h>

/* ---- round trips -------------------------------------------------------- */

uint64_t vbi_diag_ping(struct vb_conn *c)
{
	return vbi_diag_ping_ex(c, false);
}

uint64_t vbi_diag_ping_ex(struct vb_conn *c, bool wait_direct)
{
	struct out_item *it = vbi_outq_new(OUT_PING, 0);
	uint64_t id;

	if (!it)
		return 0;
	it->sid = wait_direct; /* PING: Ping.wait_direct */
	id = it->num = ++c->ping_id;
	c->rtt_ping_id = id;
	c->rtt_ping_ns = vbi_client_now_ns();
	vbi_outq_append(c, it);
	vbi_outq_pump(c); /* may free @it */
	return id;
}

void vbi_diag_pong(struct vb_conn *c, uint64_t id)
{
	uint64_t now;

	if (id <= c->pong_id)
		return; /* a peer's repeat, or older than what we know */
	now = vbi_client_now_ns();
	c->pong_id = id;
	c->pong_ns = now;
	if (id == c->rtt_ping_id) {
		c->st.rtt_ns = now > c->rtt_ping_ns ? now - c->rtt_ping_ns : 1;
		c->rtt_ping_id = 0;
	}
}

struct rtt_wait {
	uint64_t id; /* our Ping */
	uint64_t gen; /* on this connection */
	bool lost; /* the connection went meanwhile */
};

static bool rtt_done(struct vb_conn *c, void *arg)
{
	struct rtt_wait *w = arg;

	if (c->state != CS_OPEN || c->gen != w->gen) {
		w->lost = true;
		return true;
	}
	return c->pong_id >= w->id;
}

int vb_rtt(struct vb_conn *c, int timeout_ms, uint64_t *ns)
{
	struct rtt_wait w = { 0 };
	uint64_t t0;
	int rc;

	if (!c || !ns)
		return VB_EINVAL;
	client_lock(c);
	rc = c->state == CS_CLOSED ? VB_ECLOSED : VB_ESTATE;
	if (c->state != CS_OPEN)
		goto out;
	w.gen = c->gen;
	t0 = vbi_client_now_ns();
	rc = VB_ENOMEM;
	w.id = vbi_diag_ping(c);
	if (!w.id)
		goto out;
	rc = vbi_client_wait(
		c, rtt_done, &w,
		timeout_ms < 0 ? 0 : t0 + (uint64_t)timeout_ms * 1000000ull);
	if (rc == VB_OK && w.lost)
		rc = c->state == CS_CLOSED ? VB_ECLOSED : VB_ESTATE;
	if (rc == VB_OK)
		*ns = c->pong_ns > t0 ? c->pong_ns - t0 : 1;
out:
	client_unlock(c);
	return rc;
}

/* ---- the server --------------------------------------------------------- */

void vbi_diag_opened(struct vb_conn *c)
{
	struct vbi_conn_stats cs;

	vbi_conn_stats(c->vc, &cs);
	memcpy(c->server_version, cs.peer_version, sizeof(c->server_version));
	c->server_version[sizeof(c->server_version) - 1] = '\0';
}

int vb_conn_server_version(struct vb_conn *c, char *buf, size_t len)
{
	size_t n;
	int rc;

	if (!c || !buf)
		return VB_EINVAL;
	client_lock(c);
	rc = VB_ESTATE;
	if (c->ever_open) {
		n = strlen(c->server_version);
		rc = VB_ENOSPC;
		if (n < len) {
			memcpy(buf, c->server_version, n + 1);
			rc = VB_OK;
		}
	}
	client_unlock(c);
	return rc;
}

/* ---- the library's log -------------------------------------------------- */

/* The core's sink for a connection: its application's callback.  Public
 * levels are the core's plus one, so that 0 can mean "the default". */
static void client_log(void *arg, enum vbi_log_level level, const char *line)
{
	struct vb_conn *c = arg;

	c->o.log.cb(c, (enum vb_log_level)((int)level + 1), line, c->o.log.arg);
}

int vbi_diag_log_load(struct vb_conn *c)
{
	struct vb_log_opts *l = &c->o.log;

	if (l->level == 0)
		l->level = VB_LOG_WARN;
	if (l->level < VB_LOG_ERR || l->level > VB_LOG_DEBUG)
		return VB_EINVAL;
	c->log.fn = l->cb ? client_log : NULL;
	c->log.arg = c;
	c->log.max_level = (enum vbi_log_level)(l->level - 1);
	return VB_OK;
}
