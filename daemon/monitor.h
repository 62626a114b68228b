/*
 * monitor.h - verbusd's HTTP monitoring endpoint.
 *
 * A small HTTP/1.1 server (libmicrohttpd) that answers, from a fresh
 * snapshot of the broker's counters (stats.h) on every request:
 *
 *   GET /metrics   Prometheus text format 0.0.4, metric names "verbus_*"
 *   GET /varz      the server's numbers as one JSON object
 *   GET /connz     the connections as JSON, each with its "account";
 *                  ?offset=N&limit=N (default 0 and 1024, limit at most
 *                  10000), or ?cid=N for one; ?acc=NAME: only the account
 *                  NAME's ("total" and the window count those alone)
 *   GET /routez    the routes to other brokers as JSON, as nats-server's
 *   GET /healthz   200 {"status":"ok"} while the broker accepts and routes:
 *                  listening, not draining, its event loop turning
 *                  (daemon/health.h says what each check means); else
 *                  503 {"status":"unavailable", "status_code":503,
 *                  "error" (the first failed check's sentence), "failed"
 *                  (the names: "draining", "listening", "event_loop"),
 *                  "listening", "draining", "tick_age_ms",
 *                  "loop_away_ms", "loop_back_ms"}; plus "cluster" when
 *                  clustered, either way
 *   GET /subsz     the clients' subscriptions, as nats-server's /subsz
 *                  with subs=1: {"server_name", "now",
 *                  "num_subscriptions", "num_cache" (subjects in the
 *                  match cache), "total" (those that match), "offset",
 *                  "limit", "subscriptions_list": [{"subject", "qgroup"
 *                  (if any), "sid", "cid", "name" (its connection's),
 *                  "msgs" (deliveries), "dropped", "max" (if set)}]}, by
 *                  cid then in the order each connection subscribed;
 *                  ?offset=N&limit=N (default 0 and 1024, limit at most
 *                  4096); ?test=SUBJECT (a literal subject): only those a
 *                  message on SUBJECT would reach, every member of a
 *                  queue group listed; subs=1 is accepted (the list is
 *                  always there)
 *   GET /accountz  the accounts (tenants): {"server_name", "now",
 *                  "accounts": [{"name", "conns", "subs", "memory",
 *                  "msgs_in", "bytes_in", "msgs_out", "bytes_out",
 *                  "conns_refused", "subs_refused", "limits": {"max_conns",
 *                  "max_subs", "max_memory"} (0: no limit; absent for the
 *                  global account "$G"), "exports": [{"stream" or
 *                  "service": pattern, "accounts": [who may import it]
 *                  (absent: any account), "responses" and "response_ms"
 *                  (services)}], "imports": [{"stream" or "service":
 *                  pattern, "account": the exporter}]}]}, "$G" first, then
 *                  by name; ?acc=NAME: only that one (404 if none)
 *
 * HEAD is answered as GET without a body; any other method gets 405, an
 * unknown path 404, a malformed query argument 400 with a JSON error (an
 * ?acc= that no account could be named: 1 to 64 of [A-Za-z0-9_$-]).
 *
 * /metrics has, when the stats source has the accounts callback, per
 * account labelled account="NAME": the gauges verbus_account_connections,
 * verbus_account_subscriptions, verbus_account_memory_bytes, and the
 * counters verbus_account_{msgs,bytes}_{in,out}_total,
 * verbus_account_conns_refused_total, verbus_account_subs_refused_total.
 *
 * The cluster (stats.h's cluster and routes callbacks) shows as follows;
 * when the broker is not clustered every page is as it was before clusters
 * existed, except /routez:
 *
 *   /routez   {"server_id", "cluster" (its name), "now", "num_routes" (the
 *             open ones), "routes": [...]}, the routes sorted by peer_id,
 *             each with peer_id, url, state ("open", "connecting",
 *             "waiting"), outbound, member, cid, peer, start (RFC 3339),
 *             uptime (both "" while not open), msgs_in, bytes_in, msgs_out,
 *             bytes_out, interest_in, interest_queued, connects, failures,
 *             last_error.  Not clustered: 200 with "server_id" and
 *             "cluster" "", "num_routes" 0 and "routes" [].
 *   /varz     a "cluster" object (name, id, zk_connected, registered,
 *             zk_connects, zk_disconnects, zk_expiries, members, routes,
 *             routes_opened, route_connect_failures, routes_refused,
 *             route_errors, interest_local, interest_remote, route_msgs_in,
 *             route_msgs_out, route_bytes_in, route_bytes_out); the key is
 *             absent, not null, when not clustered.
 *   /healthz  ZooKeeper is no check (clients are served without it):
 *             "cluster": {"zookeeper": "connected" or "disconnected",
 *             "registered", "routes", "members"} beside the status, ok
 *             or not.
 *   /metrics  verbus_cluster_info{cluster,id}, verbus_cluster_members,
 *             verbus_cluster_routes, verbus_cluster_zookeeper_connected and
 *             verbus_cluster_registered (0/1),
 *             verbus_cluster_zookeeper_{connects,disconnects,expiries}_total,
 *             verbus_routes_opened_total, verbus_route_connect_failures_total,
 *             verbus_routes_refused_total, verbus_route_errors_total,
 *             verbus_cluster_interest_local, verbus_cluster_interest_remote,
 *             verbus_route_{messages,bytes}_total{direction="in"|"out"};
 *             per route, labelled peer="ID" (for at most 256 routes):
 *             verbus_route_up, verbus_route_peer_{messages,bytes}_total
 *             {peer,direction} (the current connection's),
 *             verbus_route_peer_interest, verbus_route_peer_interest_queued,
 *             verbus_route_peer_connects_total,
 *             verbus_route_peer_connect_failures_total.  None of these
 *             families appears when not clustered.
 *
 * Strings that other brokers or clients chose (peer ids, errors, names) are
 * made valid UTF-8 ('?' for a bad byte) and escaped for JSON or Prometheus.
 *
 * It runs on the daemon's event-loop thread and never starts a thread of
 * its own: vbd_monitor_fd() is an epoll descriptor for the daemon's epoll
 * set, and vbd_monitor_run() serves whatever is ready without blocking.  At
 * most 64 scrapers are served at once and an idle one is dropped after 10
 * seconds, so a stuck client costs the broker one descriptor for a while
 * and nothing more.
 *
 * Threading: every function here, and every stats source callback, runs on
 * the thread that created the monitor.
 */
#ifndef VERBUS_DAEMON_MONITOR_H
#define VERBUS_DAEMON_MONITOR_H

#include <stdint.h>

#include "stats.h"

struct vbd_monitor;

/*
 * vbd_monitor_create() - listen on @addr (a numeric IPv4 or IPv6 address;
 * the daemon's default is 127.0.0.1, never a wildcard) and @port.  Port 0
 * binds an ephemeral port, which vbd_monitor_port() then returns: the
 * configuration's "port 0 disables the monitor" is the daemon's business
 * (it does not call this), and tests use port 0.
 *
 * @src is copied; its callbacks and src->arg must stay valid until
 * vbd_monitor_destroy().  server, conns and conn are required; cluster may
 * be NULL ("not clustered") and so may routes (no routes), subs (none) and
 * accounts (none: /accountz lists none, /metrics has no account
 * families).  Does not block.
 *
 * Returns VB_OK and sets *@out; VB_EINVAL (@addr not a numeric address, a
 * NULL argument or required callback); VB_ENOMEM; or VB_ESYS (the socket
 * cannot be created or bound, e.g. the port is in use: the reason is
 * logged).
 */
int vbd_monitor_create(const char *addr, uint16_t port,
		       const struct vbd_stats_source *src,
		       struct vbd_monitor **out);

/*
 * vbd_monitor_fd() - a descriptor that becomes readable when
 * vbd_monitor_run() has work: add it (EPOLLIN) to the daemon's epoll set.
 * It is owned by the monitor: do not close it.
 */
int vbd_monitor_fd(struct vbd_monitor *m);

/*
 * vbd_monitor_timeout() - the longest the daemon may wait (in ms) before
 * calling vbd_monitor_run() even if the descriptor stays quiet, so that
 * idle scrapers time out and buffered work is not stranded; -1: no limit.
 * Call after every vbd_monitor_run() and bound the epoll_wait() with it.
 */
int vbd_monitor_timeout(struct vbd_monitor *m);

/*
 * vbd_monitor_run() - accept, read, answer and time out whatever is ready,
 * without blocking (the stats callbacks run inside).  Returns VB_OK, or
 * VB_ESYS if libmicrohttpd failed (logged; the monitor may be destroyed and
 * the broker carry on without it).
 */
int vbd_monitor_run(struct vbd_monitor *m);

/* vbd_monitor_port() - the port actually bound (the ephemeral one for 0). */
uint16_t vbd_monitor_port(const struct vbd_monitor *m);

/*
 * vbd_monitor_destroy() - close every HTTP connection and the listening
 * socket, and free @m.  NULL is ignored.  Remove vbd_monitor_fd() from the
 * daemon's epoll set first.
 */
void vbd_monitor_destroy(struct vbd_monitor *m);

#endif /* VERBUS_DAEMON_MONITOR_H */
