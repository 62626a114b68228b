/*
 * broker.h - verbusd's engine: connections, subscriptions, routing.
 *
 * The broker owns one transport context (transport/transport.h) and the
 * listener on it.  Clients subscribe with control messages (Subscribe,
 * Unsubscribe, Ping); a published frame is matched against the subject trie
 * (core/subject.h) and forwarded to every matching subscription, one member
 * per queue group, without copying its payload (vbi_conn_forward).  A
 * subscriber without room gets the configured slow-consumer policy.
 *
 * Ownership: the broker copies what it needs from the configuration.
 * Threading: a broker and everything it owns belong to the thread that
 * calls vbd_broker_progress(); nothing here locks.
 */
#ifndef VERBUS_DAEMON_BROKER_H
#define VERBUS_DAEMON_BROKER_H

#include <stdbool.h>

#include "daemon/auth.h"
#include "daemon/config.h"
#include "daemon/stats.h"

struct vbd_broker;

/*
 * vbd_broker_create() - start listening on cfg->listen_addr:cfg->port with
 * the transport of cfg->scheme (the listen URL's).  Returns VB_OK,
 * VB_EINVAL (no transport for that scheme), VB_ENOMEM, VB_ENODEV (no RDMA
 * device), VB_EUNREACH (no device on that address) or another vb_err from
 * the transport.
 */
int vbd_broker_create(const struct vbd_config *cfg, struct vbd_broker **out);

/*
 * vbd_broker_set_auth() - admit only clients whose credentials @a proves,
 * and hold each to its user's permissions (NULL: everyone, every right).
 * The broker owns @a from now on (and frees a previous one); connections
 * already open keep the user they proved, so call it before clients
 * connect (a reload binds them again first: daemon/reload.h).
 */
void vbd_broker_set_auth(struct vbd_broker *b, struct vbd_auth *a);

/* vbd_broker_fd() - readable when vbd_broker_progress() has work. */
int vbd_broker_fd(struct vbd_broker *b);

/*
 * vbd_broker_progress() - handle connections, messages and timers; waits
 * up to @timeout_ms (0: never; capped so that timers run).  Returns the
 * events handled or a negative vb_err.
 */
int vbd_broker_progress(struct vbd_broker *b, int timeout_ms);

/*
 * vbd_broker_spin() - poll for messages without sleeping or system calls
 * for up to @us microseconds, stopping at the first work (adaptive
 * polling before the event loop sleeps).  Returns the work done (> 0),
 * 0, or a negative vb_err.
 */
int vbd_broker_spin(struct vbd_broker *b, uint32_t us);

/*
 * vbd_broker_shutdown() - stop accepting, let queued deliveries drain, then
 * disconnect every client.  Progress must keep being called until
 * vbd_broker_idle() is true (or the caller's deadline passes).
 */
void vbd_broker_shutdown(struct vbd_broker *b);

/*
 * vbd_broker_lame_duck() - enter lame-duck mode (SIGUSR2): stop accepting
 * clients and routes, leave the cluster, tell every client (a LameDuck
 * control message: libverbus moves to another server of its pool), and
 * after cfg.lame_duck_grace_ms close the clients that remain, spread
 * evenly over the rest of cfg.lame_duck_duration_ms.  Routes stay open
 * meanwhile.  A no-op once in it, or shutting down.
 */
void vbd_broker_lame_duck(struct vbd_broker *b);

/*
 * vbd_broker_lame_duck_over() - the lame-duck period has ended (its
 * duration passed, or no client is left after the grace period): the
 * caller shuts down (vbd_broker_shutdown) as for SIGTERM.
 */
bool vbd_broker_lame_duck_over(const struct vbd_broker *b);

/* vbd_broker_idle() - after shutdown: every connection is gone. */
bool vbd_broker_idle(const struct vbd_broker *b);

/* vbd_broker_stats_source() - where the monitor reads the counters. */
void vbd_broker_stats_source(struct vbd_broker *b,
			     struct vbd_stats_source *src);

/* vbd_broker_destroy() - close everything and free; NULL is fine. */
void vbd_broker_destroy(struct vbd_broker *b);

#endif /* VERBUS_DAEMON_BROKER_H */
