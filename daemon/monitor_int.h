/*
 * monitor_int.h - what the monitor's files share: the snapshots a request
 * copies out of the broker, and the Prometheus rendering (metrics.c) that
 * monitor.c's /metrics calls, and the /subsz page (subsz.c).  Internal to
 * daemon/.
 *
 * Threading: the daemon's event-loop thread, as the monitor.
 */
#ifndef VERBUS_DAEMON_MONITOR_INT_H
#define VERBUS_DAEMON_MONITOR_INT_H

#include "daemon/account.h"
#include "daemon/stats.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Every connection, copied out of the broker in one pass. */
struct conn_list {
	struct vbd_stats_conn *v; /* the copies */
	size_t n; /* used */
	size_t cap; /* allocated */
	bool oom; /* a copy did not fit: the list is incomplete */
};

/* One route as the monitor keeps it: strings cleaned, the state copied. */
struct route_snap {
	struct vbd_stats_route r; /* r.state is NULL: see @state */
	char state[16]; /* "open", "connecting", "waiting" */
};

/* Every route, copied out of the broker in one pass. */
struct route_list {
	struct route_snap *v; /* the copies, by peer id once sorted */
	size_t n; /* used */
	size_t cap; /* allocated */
	bool oom; /* a copy did not fit: the list is incomplete */
};

/* One account as /metrics keeps it: the counters, the name copied. */
struct acct_snap {
	struct vbd_stats_account a; /* a.name and a.def NULL: see @name */
	char name[VBD_ACCOUNT_NAME_MAX + 1]; /* made valid UTF-8 */
};

/* Every account, copied out of the broker in one pass. */
struct acct_list {
	struct acct_snap *v; /* the copies, in the broker's order */
	size_t n; /* used */
	size_t cap; /* allocated */
	bool oom; /* a copy did not fit: the list is incomplete */
};

struct json_object;

/* A /subsz request: the window and the subject to test (NULL: all). */
struct vbd_subsz_query {
	uint64_t offset; /* first match to include */
	uint64_t limit; /* most to include, > 0 */
	const char *test; /* a valid literal subject, or NULL */
};

/*
 * vbd_subsz_json() - the /subsz page (subsz.c): the subscriptions of @src
 * that @q asks for, with the totals of @s and @now (the time, as the other
 * pages write it).  A new object for the caller, or NULL if out of memory.
 */
struct json_object *vbd_subsz_json(const struct vbd_stats_source *src,
				   const struct vbd_stats_server *s,
				   const struct vbd_subsz_query *q,
				   const char *now);

/*
 * vbd_accountz_json() - the accounts of the /accountz page (accountz.c):
 * every account of @src, or only the one named @acc (not NULL), as a
 * new JSON array for the caller (empty: none of that name), or NULL if
 * out of memory.
 */
struct json_object *vbd_accountz_json(const struct vbd_stats_source *src,
				      const char *acc);

/* JSON members every page writes (monitor.c): a number; and a string of
 * the configuration or a client (a name, a pattern) made valid UTF-8,
 * @v NUL-terminated and, with its NUL, at most @size bytes. */
void vbd_mon_jadd_u64(struct json_object *o, const char *key, uint64_t v);
void vbd_mon_jadd_text(struct json_object *o, const char *key, const char *v,
		       size_t size);

/*
 * vbd_mon_clean_text() - copy @src (a field of @size bytes, terminated or
 * not) to @dst (at least @size bytes), every byte that is not part of
 * valid UTF-8 replaced by '?'; @dst may be @src.
 */
void vbd_mon_clean_text(char *dst, const char *src, size_t size);

/* vbd_mon_route_open() - is the route of @rs open? */
bool vbd_mon_route_open(const struct route_snap *rs);

/*
 * vbd_metrics_write() - the Prometheus text exposition of @s, the cluster
 * @c and its routes @rl (if @c->enabled), the connections @l and the
 * accounts @al (NULL: the source has no accounts callback, no account
 * families at all), to @f.
 */
void vbd_metrics_write(FILE *f, const struct vbd_stats_server *s,
		       const struct vbd_stats_cluster *c,
		       const struct route_list *rl, const struct conn_list *l,
		       const struct acct_list *al);

#endif /* VERBUS_DAEMON_MONITOR_INT_H */
