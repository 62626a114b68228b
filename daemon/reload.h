/*
 * reload.h - a configuration reload (SIGHUP, `verbusd --signal reload`).
 *
 * main.c reads the configuration again as at start-up (the same file, then
 * $VERBUSD_CLUSTER_SECRET and the same command-line settings, which keep
 * winning) into a new struct vbd_config, and the file's authorization
 * group into a new struct vbd_auth.  Any error refuses the whole reload
 * and the running configuration stays.  Otherwise:
 *
 *  - vbd_config_keep_fixed() compares the settings that cannot change
 *    while the broker runs (listeners and TLS files, ring and message
 *    sizes, the transport's options, the monitor, the cluster, pid_file):
 *    each one that differs is reported and the running value kept;
 *  - vbd_broker_reload() applies the rest: limits, the slow-consumer
 *    policy, lame-duck timings, and the authorization.  Every client is
 *    bound again to the user its credentials prove under the new
 *    authorization (vbd_auth_rebind()); one they no longer admit is
 *    disconnected with an Error saying why, and one whose subscribe
 *    permissions shrank loses each subscription it may no longer hold,
 *    with a Notice (VB_EACCES) naming it.  A lower max_conns or max_subs
 *    refuses new connections or subscriptions; none open is closed for it.
 *
 * Threading: the broker's thread (the event loop).
 */
#ifndef VERBUS_DAEMON_RELOAD_H
#define VERBUS_DAEMON_RELOAD_H

#include "daemon/auth.h"
#include "daemon/broker.h"
#include "daemon/config.h"

#include <stddef.h>

/*
 * vbd_config_keep_fixed() - copy into @next every setting of @run that
 * cannot change live, calling @report (if not NULL) with the key and both
 * values ("limits.ring_size", "1M" running, "2M" asked) for each that
 * differed; the cluster's secret is never shown.  Then @changed (if not
 * NULL) gets the live settings that differ, "key old -> new, ...", in at
 * most @len bytes.  Returns how many fixed settings differed.
 */
size_t
vbd_config_keep_fixed(const struct vbd_config *run, struct vbd_config *next,
		      void (*report)(void *ctx, const char *key,
				     const char *running, const char *asked),
		      void *ctx, char *changed, size_t len);

/* What vbd_broker_reload() did, for its summary line. */
struct vbd_reload_result {
	size_t users_before, users_after; /* authorization entries */
	size_t disconnected; /* clients whose credentials went */
	size_t subs_revoked; /* subscriptions no longer allowed */
};

/*
 * vbd_broker_reload() - apply @cfg (whose fixed settings are the running
 * ones: vbd_config_keep_fixed()) and the authorization @auth (NULL: none,
 * everyone admitted), which the broker owns from now on; the previous one
 * is freed once every connection is bound again.  Fills *@res.
 */
void vbd_broker_reload(struct vbd_broker *b, const struct vbd_config *cfg,
		       struct vbd_auth *auth, struct vbd_reload_result *res);

/* vbd_broker_reload_failed() - count a refused reload (/metrics). */
void vbd_broker_reload_failed(struct vbd_broker *b);

#endif /* VERBUS_DAEMON_RELOAD_H */
