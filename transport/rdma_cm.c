/*
 * rdma_cm.c - the RDMA transport's connection set-up (see rdma.h):
 * listening, resolving, connecting, accepting or refusing, the handshake
 * deadline, and the rdma_cm events that end a connection.
 *
 * A connection request carries the small version record of core/frame.h in
 * its private data, and a refusal its reason (PROTOCOL.md); everything
 * else is negotiated by the session over the connection itself.
 */
#include "rdma.h"

#include "core/clock.h"
#include "core/frame.h"
#include "core/log.h"

#include <verbus/verbus.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HS_CHECK_MS 50 /* handshake deadlines are looked at this often */
/*
 * Address resolution is retried in steps this long.  Linux (6.1) re-checks
 * an unresolved neighbour only at the resolution's deadline unless a
 * neighbour event wakes it, and on rxe behind a bridge none does: one long
 * rdma_resolve_addr() then takes its whole timeout on a cold ARP cache.
 */
#define RESOLVE_STEP_MS 200

static uint64_t handshake_timeouts;

uint64_t vbi_rdma_cm_handshake_timeouts(void)
{
	return handshake_timeouts;
}

void vbi_rdma_cm_disconnect(struct vbi_conn *c)
{
	struct rdma_conn *r = rdma_conn_of(c);

	if (r->id)
		rdma_disconnect(r->id);
}

static void on_connect_request(struct rdma_listener *l,
			       struct rdma_cm_event *ev)
{
	struct rdma_conn_param cp = { 0 };
	struct vbi_cm_hdr hdr;
	uint8_t pd[VBI_CM_HDR_LEN];
	const char *what = "connection";
	char label[96];
	struct rdma_conn *r;
	struct vbi_conn *c;
	int rc;

	vbi_cm_hdr_encode(pd);
	rc = vbi_cm_hdr_decode(ev->param.conn.private_data,
			       ev->param.conn.private_data_len, &hdr);
	if (rc) {
		vbi_warn("refusing a connection: %s%s", vb_strerror(rc),
			 rc == VB_EVERSION ? " (peer speaks another version)" :
					     " (not a verbus client)");
		rdma_reject(ev->id, pd, sizeof(pd));
		rdma_destroy_id(ev->id);
		return;
	}
	r = vbi_rdma_conn_new(l->tp, &l->opts, &l->cbs, l->arg);
	if (!r) {
		vbi_warn("refusing a connection: out of memory");
		rdma_reject(ev->id, pd, sizeof(pd));
		rdma_destroy_id(ev->id);
		return;
	}
	c = &r->c;
	c->server = true;
	r->id = ev->id;
	r->id->context = r;
	c->state = VBI_SS_CONNECTING;
	/* From now on it counts: whoever keeps limits hears of it first,
	 * and it has this long to say Hello and be admitted. */
	if (l->cbs.accept && (rc = l->cbs.accept(c, l->arg)) != VB_OK) {
		vbi_cm_hdr_encode_reject(pd, vbi_cm_reject_code(rc));
		rdma_reject(ev->id, pd, sizeof(pd));
		c->state = VBI_SS_CLOSED;
		c->closed_reported = true; /* refused: no callback */
		return;
	}
	if (l->opts.handshake_timeout_ms)
		c->hs_deadline =
			vbi_clock_coarse_ms() + l->opts.handshake_timeout_ms;
	rc = vbi_rdma_mem_setup_verbs(r, &what);
	if (rc == VB_OK) {
		what = "rdma_accept";
		cp.private_data = pd;
		cp.private_data_len = sizeof(pd);
		cp.responder_resources = 1;
		cp.initiator_depth = 1;
		cp.rnr_retry_count = 7;
		if (rdma_accept(r->id, &cp))
			rc = vbi_sess_errno(errno);
	}
	if (rc) {
		/* Said plainly: which resource, for whom. */
		c->why.err = rc;
		if (r->fail_what[0]) /* what, and the limit that refused it */
			snprintf(c->why.reason, sizeof(c->why.reason),
				 "cannot accept: %s (%s)", what,
				 vb_strerror(rc));
		else
			snprintf(c->why.reason, sizeof(c->why.reason),
				 "cannot accept: %s failed (%s)", what,
				 vb_strerror(rc));
		vbi_warn("conn %s: %s", vbi_sess_label(c, label, sizeof(label)),
			 c->why.reason);
		rdma_reject(ev->id, pd, sizeof(pd));
		c->state = VBI_SS_CLOSED;
	}
}

/*
 * Close every accepted connection whose handshake has outlived its
 * deadline: a peer that connects and says nothing (or whose Hello is never
 * admitted) holds its QP and buffers for handshake_timeout_ms at most.
 * Looked at every HS_CHECK_MS on the coarse clock.
 */
void vbi_rdma_cm_check_handshakes(struct rdma_tp *tp)
{
	uint64_t now = vbi_clock_coarse_ms();
	struct rdma_conn *r;

	if (now < tp->hs_check)
		return;
	tp->hs_check = now + HS_CHECK_MS;
	for (r = tp->conns; r; r = r->next)
		if (vbi_sess_deadline(&r->c, now))
			handshake_timeouts++;
}

/* One step of address resolution, no longer than what the deadline leaves.
 * Returns false when the deadline has passed or the call failed. */
static bool resolve_step(struct rdma_conn *r)
{
	uint64_t now = vbi_clock_ms();
	uint64_t left =
		r->resolve_deadline > now ? r->resolve_deadline - now : 0;

	if (left == 0)
		return false;
	return rdma_resolve_addr(
		       r->id, r->has_src ? (struct sockaddr *)&r->src_sa : NULL,
		       (struct sockaddr *)&r->dst_sa,
		       (int)(left < RESOLVE_STEP_MS ? left :
						      RESOLVE_STEP_MS)) == 0;
}

static void client_step(struct rdma_conn *r, struct rdma_cm_event *ev)
{
	struct vbi_conn *c = &r->c;
	struct rdma_conn_param cp = { 0 };
	uint8_t pd[VBI_CM_HDR_LEN];
	const char *what;
	int rc;

	switch (ev->event) {
	case RDMA_CM_EVENT_ADDR_RESOLVED:
		if (rdma_resolve_route(r->id, c->opts.timeout_ms))
			vbi_sess_fail(c, vbi_sess_errno(errno),
				      "resolve route");
		break;
	case RDMA_CM_EVENT_ROUTE_RESOLVED:
		rc = vbi_rdma_mem_setup_verbs(r, &what);
		if (rc) {
			vbi_sess_fail(c, rc, "cannot set up the %s", what);
			break;
		}
		vbi_cm_hdr_encode(pd);
		cp.private_data = pd;
		cp.private_data_len = sizeof(pd);
		cp.responder_resources = 1;
		cp.initiator_depth = 1;
		cp.retry_count = 7;
		cp.rnr_retry_count = 7;
		c->state = VBI_SS_CONNECTING;
		if (rdma_connect(r->id, &cp))
			vbi_sess_fail(c, vbi_sess_errno(errno), "rdma_connect");
		break;
	default:
		break;
	}
}

static bool is_listener(const struct rdma_tp *tp, const struct rdma_cm_id *id)
{
	const struct rdma_listener *l;

	for (l = tp->listeners; l; l = l->next)
		if (l->id == id)
			return true;
	return false;
}

/* One event of an rdma_cm id that is a connection of ours. */
static void conn_cm_event(struct rdma_conn *r, struct rdma_cm_event *ev)
{
	struct vbi_conn *c = &r->c;
	struct vbi_cm_hdr hdr;
	int rc;

	vbi_debug("conn %s: %s (status %d) in state %d", c->name,
		  rdma_event_str(ev->event), ev->status, c->state);
	switch (ev->event) {
	case RDMA_CM_EVENT_ADDR_RESOLVED:
	case RDMA_CM_EVENT_ROUTE_RESOLVED:
		if (c->state == VBI_SS_RESOLVING)
			client_step(r, ev);
		break;
	case RDMA_CM_EVENT_ESTABLISHED:
		/* A server may see the client's Hello complete before this
		 * event: it is then already past CONNECTING. */
		if (c->server && c->state != VBI_SS_CONNECTING)
			break;
		if (c->state == VBI_SS_CONNECTING &&
		    (c->server ||
		     vbi_cm_hdr_decode(ev->param.conn.private_data,
				       ev->param.conn.private_data_len,
				       &hdr) == VB_OK)) {
			/* A client's window (isolate) is bound now that its
			 * QP can send: before the Hello that names its rkey,
			 * on the same send queue. */
			rc = c->server ? VB_OK : vbi_rdma_mem_bind_client(c);
			if (rc)
				vbi_sess_fail(c, rc,
					      "cannot bind the ring's "
					      "memory window");
			else
				vbi_sess_established(c);
		} else
			vbi_sess_fail(c, VB_EPROTO,
				      "peer is not a verbus v%u server",
				      VBI_PROTO_VERSION);
		break;
	case RDMA_CM_EVENT_REJECTED:
		rc = vbi_cm_hdr_decode(ev->param.conn.private_data,
				       ev->param.conn.private_data_len, &hdr);
		if (rc == VB_EVERSION)
			vbi_sess_fail(c, VB_EVERSION,
				      "refused: the server speaks version %u",
				      hdr.version);
		else if (rc == VB_OK && hdr.reason != VBI_CM_REJ_NONE)
			vbi_sess_fail(c, VB_ECONNREFUSED, "refused: %s",
				      vbi_cm_reject_reason(hdr.reason));
		else
			vbi_sess_fail(c, VB_ECONNREFUSED,
				      "connection refused (status %d)",
				      ev->status);
		break;
	case RDMA_CM_EVENT_ADDR_ERROR:
		/* Cold neighbour cache: try again until the deadline (see
		 * RESOLVE_STEP_MS). */
		if (c->state == VBI_SS_RESOLVING && resolve_step(r))
			break;
		vbi_sess_fail(c, VB_EUNREACH, "%s (status %d)",
			      rdma_event_str(ev->event), ev->status);
		break;
	case RDMA_CM_EVENT_ROUTE_ERROR:
	case RDMA_CM_EVENT_UNREACHABLE:
		vbi_sess_fail(c, VB_EUNREACH, "%s (status %d)",
			      rdma_event_str(ev->event), ev->status);
		break;
	case RDMA_CM_EVENT_CONNECT_ERROR:
		vbi_sess_fail(c, VB_EIO, "connect error (status %d)",
			      ev->status);
		break;
	case RDMA_CM_EVENT_DISCONNECTED:
	case RDMA_CM_EVENT_TIMEWAIT_EXIT:
		/* What the peer sent before it disconnected is on our CQ
		 * already (an Error saying why it turned us away, say: it
		 * disconnects once the device acknowledged it), but may not
		 * have been polled yet: it is taken first. */
		if (r->cq && c->state != VBI_SS_CLOSED)
			vbi_rdma_conn_poll(r);
		if (c->state != VBI_SS_CLOSED)
			vbi_sess_fail(c, VB_ECLOSED, "peer disconnected");
		break;
	case RDMA_CM_EVENT_DEVICE_REMOVAL:
		vbi_sess_fail(c, VB_ENODEV, "rdma device removed");
		break;
	default:
		break;
	}
}

int vbi_rdma_cm_events(struct rdma_tp *tp)
{
	struct rdma_cm_event *ev;
	int n = 0;

	while (rdma_get_cm_event(tp->ec, &ev) == 0) {
		n++;
		if (ev->event == RDMA_CM_EVENT_CONNECT_REQUEST)
			on_connect_request(ev->listen_id->context, ev);
		else if (!is_listener(tp, ev->id)) /* e.g. device removal */
			conn_cm_event(ev->id->context, ev);
		rdma_ack_cm_event(ev);
	}
	return n;
}

static int resolve(const char *addr, const char *port, bool passive,
		   struct rdma_addrinfo **ai)
{
	struct rdma_addrinfo hints = { .ai_port_space = RDMA_PS_TCP };

	hints.ai_flags = passive ? RAI_PASSIVE : 0;
	if (rdma_getaddrinfo(addr, port, &hints, ai))
		return VB_EUNREACH;
	return VB_OK;
}

int vbi_rdma_cm_listen(struct vbi_tp *vtp, const char *addr, const char *port,
		       const struct vbi_conn_opts *o,
		       const struct vbi_conn_cbs *cbs, void *arg,
		       struct vbi_listener **out)
{
	struct rdma_tp *tp = rdma_tp_of(vtp);
	struct rdma_listener *l;
	struct rdma_addrinfo *ai = NULL;
	int rc;

	l = calloc(1, sizeof(*l));
	if (!l)
		return VB_ENOMEM;
	l->ops = tp->ops;
	l->tp = tp;
	l->opts = *o;
	l->opts.source = NULL;
	l->cbs = *cbs;
	l->arg = arg;
	rc = vbi_sess_opts(&l->opts);
	if (rc)
		goto out_free;
	rc = vbi_rdma_mem_check_limit(&l->opts);
	if (rc)
		goto out_free;
	rc = resolve(addr, port, true, &ai);
	if (rc)
		goto out_free;
	if (rdma_create_id(tp->ec, &l->id, l, RDMA_PS_TCP) ||
	    rdma_bind_addr(l->id, ai->ai_src_addr) || rdma_listen(l->id, 64)) {
		rc = vbi_sess_errno(errno);
		goto out_free_ai;
	}
	rdma_freeaddrinfo(ai);
	l->next = tp->listeners;
	tp->listeners = l;
	*out = (struct vbi_listener *)(void *)l;
	return VB_OK;
out_free_ai:
	rdma_freeaddrinfo(ai);
out_free:
	if (l->id)
		rdma_destroy_id(l->id);
	free(l);
	return rc;
}

void vbi_rdma_cm_listener_close(struct vbi_listener *vl)
{
	struct rdma_listener *l = (struct rdma_listener *)(void *)vl;
	struct rdma_listener **p;

	if (!l)
		return;
	for (p = &l->tp->listeners; *p; p = &(*p)->next) {
		if (*p == l) {
			*p = l->next;
			break;
		}
	}
	if (l->id)
		rdma_destroy_id(l->id);
	free(l);
}

int vbi_rdma_cm_connect(struct vbi_tp *vtp, const char *addr, const char *port,
			const struct vbi_conn_opts *o,
			const struct vbi_conn_cbs *cbs, void *arg,
			struct vbi_conn **out)
{
	struct rdma_tp *tp = rdma_tp_of(vtp);
	struct vbi_conn_opts opts = *o;
	struct rdma_addrinfo *src = NULL, *dst = NULL;
	struct rdma_conn *r;
	int rc;

	rc = vbi_sess_opts(&opts);
	if (rc)
		return rc;
	rc = resolve(addr, port, false, &dst);
	if (rc)
		return rc;
	if (opts.source) {
		rc = resolve(opts.source, NULL, true, &src);
		if (rc)
			goto out_free_dst;
	}
	r = vbi_rdma_conn_new(tp, &opts, cbs, arg);
	if (!r) {
		rc = VB_ENOMEM;
		goto out_free_src;
	}
	r->c.state = VBI_SS_RESOLVING;
	if (src && src->ai_src_len <= sizeof(r->src_sa)) {
		memcpy(&r->src_sa, src->ai_src_addr, src->ai_src_len);
		r->has_src = true;
	}
	if (dst->ai_dst_len > sizeof(r->dst_sa)) {
		rc = VB_EINVAL;
		vbi_rdma_conn_free(r);
		goto out_free_src;
	}
	memcpy(&r->dst_sa, dst->ai_dst_addr, dst->ai_dst_len);
	r->resolve_deadline = vbi_clock_ms() + (uint64_t)opts.timeout_ms;
	if (rdma_create_id(tp->ec, &r->id, r, RDMA_PS_TCP) ||
	    !resolve_step(r)) {
		rc = vbi_sess_errno(errno);
		vbi_rdma_conn_free(r);
		goto out_free_src;
	}
	*out = &r->c;
out_free_src:
	if (src)
		rdma_freeaddrinfo(src);
out_free_dst:
	rdma_freeaddrinfo(dst);
	return rc;
}

int vbi_rdma_cm_peer_name(const struct vbi_conn *c, char *buf, size_t len)
{
	const struct rdma_conn *r = rdma_conn_of_const(c);

	return vbi_sess_addr_name(r->id ? rdma_get_peer_addr(r->id) : NULL, buf,
				  len);
}

int vbi_rdma_cm_local_name(const struct vbi_conn *c, char *buf, size_t len)
{
	const struct rdma_conn *r = rdma_conn_of_const(c);

	if (len == 0)
		return VB_EINVAL;
	if (r->id == NULL)
		return VB_ESTATE;
	return vbi_sess_addr_name(rdma_get_local_addr(r->id), buf, len);
}

int vbi_rdma_cm_listener_name(const struct vbi_listener *vl, char *buf,
			      size_t len)
{
	const struct rdma_listener *l = (const void *)vl;

	return vbi_sess_addr_name(rdma_get_local_addr(l->id), buf, len);
}
