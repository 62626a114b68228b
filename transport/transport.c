/*
 * transport.c - dispatch from the vbi_ functions to a transport's ops.
 *
 * Every transport object (tp, listener, connection) starts with a pointer
 * to its ops table, so that this file needs to know nothing else about it.
 * The table below is the one place that names the transports compiled in:
 * a URL's scheme picks one (vbi_transport_find), so a new transport is a
 * line here and its own file, and no URL parser or caller changes.
 */
#include "transport.h"

#include <verbus/verbus.h>

#include <stdio.h>
#include <string.h>

/* The common first member of every transport object. */
struct tp_head {
	const struct vbi_transport_ops *ops;
};

#define OPS(obj) (((const struct tp_head *)(const void *)(obj))->ops)

static const struct vbi_transport_ops *const transports[] = {
	&vbi_rdma_ops,
	&vbi_tcp_ops,
	&vbi_tls_ops,
};

#define NTRANSPORTS (sizeof(transports) / sizeof(transports[0]))

const struct vbi_transport_ops *vbi_transport_find(const char *scheme)
{
	for (size_t i = 0; i < NTRANSPORTS; i++)
		if (scheme && strcmp(transports[i]->scheme, scheme) == 0)
			return transports[i];
	return NULL;
}

int vbi_transport_schemes(char *buf, size_t len)
{
	size_t used = 0;
	int n;

	if (!buf || !len)
		return VB_ENOSPC;
	buf[0] = '\0';
	for (size_t i = 0; i < NTRANSPORTS; i++) {
		n = snprintf(buf + used, len - used, "%s%s", i ? ", " : "",
			     transports[i]->scheme);
		if (n < 0 || (size_t)n >= len - used)
			return VB_ENOSPC;
		used += (size_t)n;
	}
	return VB_OK;
}

int vbi_transport_check(const char *scheme, char *err, size_t errlen)
{
	char have[128];

	if (vbi_transport_find(scheme))
		return VB_OK;
	if (errlen) {
		vbi_transport_schemes(have, sizeof(have));
		snprintf(err, errlen,
			 "unsupported scheme \"%s\" (this build has: %s)",
			 scheme ? scheme : "", have);
	}
	return VB_EINVAL;
}

int vbi_tp_create(const char *scheme, struct vbi_tp **out)
{
	const struct vbi_transport_ops *ops = vbi_transport_find(scheme);

	return ops ? ops->tp_create(out) : VB_EINVAL;
}

void vbi_tp_destroy(struct vbi_tp *tp)
{
	if (tp)
		OPS(tp)->tp_destroy(tp);
}

const char *vbi_tp_scheme(const struct vbi_tp *tp)
{
	return OPS(tp)->scheme;
}

int vbi_tp_fd(struct vbi_tp *tp)
{
	return OPS(tp)->tp_fd(tp);
}

int vbi_tp_progress(struct vbi_tp *tp, int timeout_ms)
{
	return OPS(tp)->tp_progress(tp, timeout_ms);
}

int vbi_tp_spin(struct vbi_tp *tp, uint64_t budget_ns)
{
	return OPS(tp)->tp_spin(tp, budget_ns);
}

int vbi_tp_listen(struct vbi_tp *tp, const char *addr, const char *port,
		  const struct vbi_conn_opts *o, const struct vbi_conn_cbs *cbs,
		  void *arg, struct vbi_listener **out)
{
	return OPS(tp)->listen(tp, addr, port, o, cbs, arg, out);
}

void vbi_listener_close(struct vbi_listener *l)
{
	if (l)
		OPS(l)->listener_close(l);
}

int vbi_tp_connect(struct vbi_tp *tp, const char *addr, const char *port,
		   const struct vbi_conn_opts *o,
		   const struct vbi_conn_cbs *cbs, void *arg,
		   struct vbi_conn **out)
{
	return OPS(tp)->connect(tp, addr, port, o, cbs, arg, out);
}

int vbi_conn_send(struct vbi_conn *c, const void *topic, uint16_t topic_len,
		  const void *payload, uint32_t payload_len)
{
	return OPS(c)->send(c, topic, topic_len, payload, payload_len);
}

int vbi_conn_reserve(struct vbi_conn *c, uint16_t topic_len,
		     uint32_t payload_len, void **topic, void **payload)
{
	return OPS(c)->reserve(c, VBI_FRAME_MSG, topic_len, payload_len, topic,
			       payload);
}

int vbi_conn_reserve_kind(struct vbi_conn *c, uint8_t kind, uint16_t topic_len,
			  uint32_t payload_len, void **topic, void **payload)
{
	if (!vbi_frame_is_msg(kind))
		return VB_EINVAL;
	return OPS(c)->reserve(c, kind, topic_len, payload_len, topic, payload);
}

int vbi_conn_commit(struct vbi_conn *c)
{
	return OPS(c)->commit(c);
}

int vbi_conn_flush(struct vbi_conn *c)
{
	return OPS(c)->flush(c);
}

int vbi_conn_release(struct vbi_conn *c, const struct vbi_frame_view *v)
{
	return OPS(c)->release(c, v);
}

int vbi_conn_hold(struct vbi_conn *c, const struct vbi_frame_view *v)
{
	return OPS(c)->hold(c, v);
}

int vbi_conn_forward(struct vbi_conn *dst, struct vbi_conn *src,
		     const struct vbi_frame_view *v, uint32_t sid)
{
	/* Every transport's connections are sessions (session.h): @dst's
	 * transport decides whether it can send from @src's ring (can_gather)
	 * or copies, whatever transport @src is of. */
	return OPS(dst)->forward(dst, src, v, sid);
}

int vbi_conn_fanout(struct vbi_conn *dst, struct vbi_conn *src, uint32_t sid)
{
	return OPS(dst)->fanout(dst, src, sid);
}

int vbi_conn_unpin(struct vbi_conn *c)
{
	return OPS(c)->unpin(c);
}

int vbi_conn_unacked(struct vbi_conn *c, vbi_frame_fn fn, void *arg)
{
	return OPS(c)->unacked(c, fn, arg);
}

int vbi_conn_send_ctrl(struct vbi_conn *c, const Verbus__Control *m)
{
	return OPS(c)->send_ctrl(c, m);
}

int vbi_conn_peer_name(const struct vbi_conn *c, char *buf, size_t len)
{
	return OPS(c)->peer_name(c, buf, len);
}

int vbi_conn_local_name(const struct vbi_conn *c, char *buf, size_t len)
{
	return OPS(c)->local_name(c, buf, len);
}

int vbi_listener_name(const struct vbi_listener *l, char *buf, size_t len)
{
	return OPS(l)->listener_name(l, buf, len);
}

void vbi_conn_pause(struct vbi_conn *c, int paused)
{
	OPS(c)->pause(c, paused);
}

const char *vbi_conn_scheme(const struct vbi_conn *c)
{
	return OPS(c)->scheme;
}

const char *vbi_conn_name(const struct vbi_conn *c)
{
	return OPS(c)->name(c);
}

const void *vbi_conn_credentials(const struct vbi_conn *c, size_t *len)
{
	return OPS(c)->credentials(c, len);
}

void vbi_conn_close(struct vbi_conn *c)
{
	if (c)
		OPS(c)->close(c);
}

void vbi_conn_close_error(struct vbi_conn *c, int err, const char *reason)
{
	if (c)
		OPS(c)->close_error(c, err, reason);
}

void vbi_conn_refusal(struct vbi_conn *c, const char *reason)
{
	OPS(c)->refusal(c, reason);
}

void vbi_conn_stats(const struct vbi_conn *c, struct vbi_conn_stats *s)
{
	OPS(c)->stats(c, s);
}

void vbi_conn_set_arg(struct vbi_conn *c, void *arg)
{
	OPS(c)->set_arg(c, arg);
}

void vbi_tp_stats(const char *scheme, struct vbi_tp_stats *s)
{
	const struct vbi_transport_ops *ops = vbi_transport_find(scheme);

	memset(s, 0, sizeof(*s));
	if (ops)
		ops->tp_stats(s);
}

void vbi_tp_stats_all(struct vbi_tp_stats *s)
{
	struct vbi_tp_stats one;

	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < NTRANSPORTS; i++) {
		memset(&one, 0, sizeof(one));
		transports[i]->tp_stats(&one);
		s->mr_registered += one.mr_registered;
		s->mr_deregistered += one.mr_deregistered;
		s->conns_open += one.conns_open;
		s->handshake_timeouts += one.handshake_timeouts;
		s->mr_bytes += one.mr_bytes;
	}
}
