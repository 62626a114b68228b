/*
 * stats.h - the broker's counters, as the monitoring endpoint sees them.
 *
 * The broker (daemon/broker.c) fills these structs on demand; the monitor
 * (daemon/monitor.c) renders them as Prometheus text and JSON.  Neither
 * keeps a pointer into the other: a snapshot is copied out on every request.
 * Every counter is monotonic since start-up unless it says "now".
 *
 * Threading: the source callbacks run on the daemon's event-loop thread
 * (the monitor is driven from that loop), so they read the broker unlocked.
 */
#ifndef VERBUS_DAEMON_STATS_H
#define VERBUS_DAEMON_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The whole server. */
struct vbd_stats_server {
	const char *version; /* vb_version() */
	const char *server_name; /* from the configuration */
	const char *listen; /* "addr:port" the broker accepts on */
	int64_t start_time; /* unix seconds */
	uint64_t uptime_ms;
	uint64_t conns; /* connections open now */
	uint64_t conns_total; /* connections accepted since start */
	uint64_t conns_rejected; /* refused: limits, bad handshake */
	uint64_t subs; /* subscriptions now */
	uint64_t msgs_in, bytes_in; /* published to the broker */
	uint64_t msgs_out, bytes_out; /* delivered to subscribers */
	uint64_t drops; /* deliveries dropped (policy drop) */
	uint64_t slow_consumers; /* subscribers that hit a full ring */
	uint64_t slow_disconnects; /* connections closed for slowness */
	uint64_t loop_late; /* ticks after the loop was away > 500 ms */
	uint64_t loop_late_ms; /* the time away, in all */
	uint64_t credit_waits; /* sends that waited for credit */
	uint64_t no_interest; /* published messages nobody matched */
	uint64_t no_responders; /* of those, requests: told no responders */
	uint64_t bad_headers; /* messages with a malformed header block */
	uint64_t large_in; /* large messages (CHUNK streams) begun */
	uint64_t large_aborted; /* of those, ended before their last chunk */
	uint64_t bad_chunks; /* clients closed for a chunk out of order */
	uint64_t large_active; /* streams under way now */
	uint64_t auth_failures; /* clients turned away at the Hello */
	uint64_t denied_publish; /* messages refused by permissions */
	uint64_t denied_subscribe; /* subscriptions refused by permissions */
	uint64_t reloads; /* configuration reloads applied (SIGHUP) */
	uint64_t reload_failures; /* reloads refused: the file had an error */
	bool lame_duck; /* now: in lame-duck mode (SIGUSR2), going away */
	uint64_t payload_copies; /* payload bytes the broker's CPU copied */
	uint64_t zero_copy_bytes; /* bytes the device gathered from rings */
	uint64_t forward_kicks; /* writes posted to complete forwards */
	uint64_t mr_registered; /* ibv_reg_mr calls */
	uint64_t mr_deregistered; /* ibv_dereg_mr calls */
	uint64_t mem_registered; /* bytes registered now */
	uint64_t forward_failures; /* deliveries a forward could not make */
	/* Direct mode (daemon/direct.c): queries answered, paths granted in
	 * them, queries refused for a full queried set; switches on, off
	 * and off for a failure, and ignored (unknown subscriber, already
	 * in that state); DirectStale and DirectRevoke messages sent;
	 * connections that sent a DirectListen, and switched-on (publisher,
	 * subscriber) pairs, now. */
	uint64_t direct_queries, direct_paths_granted, direct_queries_full;
	uint64_t direct_switch_on, direct_switch_off, direct_switch_failed;
	uint64_t direct_switch_ignored;
	uint64_t direct_stale, direct_revokes;
	/* Frames of failed direct paths the broker delivered again
	 * (RESEND), and those it dropped (the subscriber or subscription
	 * gone, or not announced). */
	uint64_t direct_resends, direct_resends_dropped;
	uint64_t direct_listeners, direct_paths_open;
	uint64_t handshakes; /* connections in their handshake now */
	uint64_t handshake_timeouts; /* closed for no handshake in time */
	/* The process's memory now (filled by the monitor, not the broker):
	 * resident, and the C heap's bytes handed out and held free. */
	uint64_t rss_bytes;
	uint64_t heap_in_use, heap_free;
	/* Health (daemon/health.h): every client listener open now; a
	 * shutdown or lame duck under way (stops accepting: not "ok"); how
	 * long ago the broker's timer tick last ran (it runs every TICK_MS
	 * of a turning loop); the loop's latest absence of over 500 ms
	 * (loop_late): how long it was away, and how long ago it came back
	 * (both 0 if it never was). */
	bool listening;
	bool draining;
	uint64_t tick_age_ms;
	uint64_t loop_away_ms;
	uint64_t loop_back_ms;
	uint64_t sub_cache; /* subjects in the match cache now (/subsz) */
	uint32_t max_conns; /* configured limits */
	uint32_t max_subs; /* per connection */
	uint32_t max_msg;
	uint32_t max_payload;
	uint32_t ring_size;
};

/* The cluster, when the broker is in one (daemon/cluster.c, route.c). */
struct vbd_stats_cluster {
	bool enabled; /* clustered at all; the rest is zero if not */
	char name[64]; /* cluster.name */
	char id[64]; /* this broker's id */
	bool zk_connected; /* the ZooKeeper session is up now */
	bool registered; /* our member node exists now */
	uint64_t zk_connects, zk_disconnects, zk_expiries;
	uint32_t members; /* in the latest list, us included */
	uint32_t routes; /* route connections open now */
	uint64_t routes_opened; /* route connections that opened */
	uint64_t route_connect_failures; /* our attempts that failed */
	uint64_t routes_refused; /* refused: credentials, rule, port */
	uint64_t route_errors; /* routes dropped for what they sent */
	uint64_t route_drops; /* deliveries to routes lost here */
	uint64_t route_drops_reported; /* of which reported to the peer */
	uint64_t route_drops_unreported; /* lost with no route to tell */
	uint64_t route_drops_in; /* losses peers reported to us */
	uint64_t interest_local; /* our (pattern, queue) entries now */
	uint64_t interest_remote; /* the peers' entries now */
	uint64_t route_msgs_in, route_bytes_in; /* from routes, in all */
	uint64_t route_msgs_out, route_bytes_out; /* over routes, in all */
};

/* One route (to a member, open or not). */
struct vbd_stats_route {
	char peer_id[64];
	char url[96]; /* where its routes listen, "" if unknown */
	const char *state; /* "open", "connecting", "waiting" */
	bool outbound; /* we open it (our id is the smaller) */
	bool member; /* in ZooKeeper's latest list */
	uint64_t cid; /* its connection while open, else 0 */
	char peer[64]; /* "addr:port" while open */
	int64_t start_time; /* unix seconds, while open */
	uint64_t msgs_in, bytes_in, msgs_out, bytes_out; /* this connection */
	uint64_t interest_in; /* the peer's entries now */
	uint64_t interest_queued; /* our entries not yet sent to it */
	uint64_t connects; /* times it opened */
	uint64_t failures; /* our attempts that failed */
	char last_error[256]; /* why it last closed or failed */
};

/* One client connection. */
struct vbd_stats_conn {
	uint64_t cid; /* connection id, unique for the broker's life */
	char name[64]; /* the client's name from its Hello */
	char peer[64]; /* "addr:port" of the client */
	char transport[8]; /* its URL scheme: "rdma" or "tcp" */
	int64_t start_time; /* unix seconds */
	uint32_t subs; /* subscriptions now */
	uint64_t msgs_in, bytes_in; /* published by this client */
	uint64_t msgs_out, bytes_out; /* delivered to this client */
	uint64_t drops; /* deliveries to it dropped */
	uint64_t credit_waits; /* times it had no room for a delivery */
	uint64_t pending; /* deliveries queued for it now */
	uint32_t ring_size; /* its receive ring on the broker */
	uint32_t peer_ring; /* its own receive ring */
	char account[65]; /* its account's name ("$G": the global one) */
	/* Direct mode: its DirectListen ("": none), its direct
	 * subscriptions, the subjects it asked about (its queried set),
	 * the subscribers it switched to direct, the publishers switched
	 * to it; all now. */
	char direct_url[257]; /* VBI_URL_MAX + 1 */
	uint32_t direct_subs, direct_queries, direct_on, direct_from;
};

struct vbd_acct_def;

/*
 * One account (daemon/account.h): what it holds now and in all.  The
 * global account, "$G", has no definition (@def NULL: no limits, exports
 * or imports).  Pointers valid only during the callback that gives them.
 */
struct vbd_stats_account {
	const char *name;
	const struct vbd_acct_def *def; /* limits, exports, imports */
	uint64_t conns; /* client connections now */
	uint64_t subs; /* their subscriptions now */
	uint64_t memory; /* the broker's registered memory for them now */
	uint64_t msgs_in, bytes_in; /* published by its clients */
	uint64_t msgs_out, bytes_out; /* delivered to its clients */
	uint64_t conns_refused; /* refused by its limits */
	uint64_t subs_refused; /* subscriptions refused by max_subs */
};

/* One subscription of a client (/subsz); the strings are the broker's,
 * valid only during the callback that gives them. */
struct vbd_stats_sub {
	uint64_t cid; /* its connection */
	const char *name; /* its connection's name, from its Hello */
	uint32_t sid; /* the client's id for it */
	const char *subject; /* the pattern, NUL-terminated */
	const char *queue; /* its queue group; NULL: none */
	uint64_t msgs; /* deliveries made or queued to it */
	uint64_t dropped; /* deliveries the policy dropped */
	uint64_t max; /* auto-unsubscribe after this many; 0: never */
};

/*
 * Where the monitor gets its numbers.  @server fills *s.  @conns calls @fn
 * once per open connection, in increasing cid order, with @ctx; the
 * pointer is valid only during that call.  @conn fills *c for @cid and
 * returns 0, or -1 if there is no such connection.  @cluster, @routes and
 * @subs are optional.
 */
struct vbd_stats_source {
	void (*server)(void *arg, struct vbd_stats_server *s);
	void (*conns)(void *arg,
		      void (*fn)(void *ctx, const struct vbd_stats_conn *c),
		      void *ctx);
	int (*conn)(void *arg, uint64_t cid, struct vbd_stats_conn *c);
	void (*cluster)(void *arg, struct vbd_stats_cluster *c);
	void (*routes)(void *arg,
		       void (*fn)(void *ctx, const struct vbd_stats_route *r),
		       void *ctx);
	/* Every client subscription, by cid and then in the order each
	 * connection made them; with @test (a valid literal subject; NULL:
	 * all), only those a message published on @test would reach, every
	 * member of a queue group included.  May be NULL: none. */
	void (*subs)(void *arg, const char *test,
		     void (*fn)(void *ctx, const struct vbd_stats_sub *s),
		     void *ctx);
	/* Every account, the global one first, then by name.  May be
	 * NULL: no accounts (/accountz lists none; /metrics has no account
	 * families). */
	void (*accounts)(void *arg,
			 void (*fn)(void *ctx,
				    const struct vbd_stats_account *a),
			 void *ctx);
	void *arg;
};

#endif /* VERBUS_DAEMON_STATS_H */
