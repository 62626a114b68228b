/*
 * broker_int.h - what the broker's files share: its connections,
 * subscriptions and state, and the functions one file calls in another.
 *
 * verbusd's engine is split by job, all behind daemon/broker.h:
 *   broker.c   lifecycle, listeners, the event loop, connections opening
 *              and closing, the transport's callbacks, timers;
 *   subs.c     a client's control messages: Subscribe, Unsubscribe, Ping,
 *              and the notices it is owed;
 *   deliver.c  routing a published frame to its matches, delivery to a
 *              connection, the slow-consumer policy and stall detection;
 *   route.c    routes: connections to other brokers of the cluster, the
 *              interest they exchange, forwards across them;
 *   cluster.c  membership (ZooKeeper, daemon/zk.h): which routes to keep,
 *              connecting them, the member list clients learn;
 *   bstats.c   the monitor's view (daemon/stats.h).
 *
 * Internal to the daemon: never included outside daemon/.
 * Threading: everything here belongs to the thread that runs
 * vbd_broker_progress(); nothing locks.
 */
#ifndef VERBUS_DAEMON_BROKER_INT_H
#define VERBUS_DAEMON_BROKER_INT_H

#include "daemon/broker.h"

#include "core/subject.h"
#include "proto/codec.h"
#include "transport/transport.h"

#include <stdbool.h>
#include <stdint.h>

/* uthash: out of memory is an error we report, never exit(). */
#define uthash_nonfatal_oom(elt) ((elt)->oom = true)
#include "core/hash.h"

#define TICK_MS 50 /* timers: block timeouts, notices owed */
/* What a callback's arg points at: the broker (before open) or a bconn. */
#define KIND_BROKER 0x42524b52u
#define KIND_CONN 0x434f4e4eu
#define PINGS_MAX 16 /* Pongs owed per connection at most */
#define MAX_CLIENT_RING (64u << 20) /* largest client ring we mirror */
/* Deliveries a pending queue takes past pending_max: those of the frames
 * already being routed when the publishers were paused. */
#define PEND_SLACK 1024u

/* What a connection is to the broker. */
enum bk_role {
	BK_CLIENT, /* a client: subscribes, publishes, held to its user */
	BK_ROUTE, /* another broker of the cluster (route.c) */
};

struct vbd_route;
struct vbd_cluster;
struct bk_interest;

/* One subscription of one connection. */
struct bsub {
	struct vbi_sub s; /* in the broker's trie; s.owner is this */
	struct bconn *bc;
	uint32_t sid; /* the client's id for it */
	char *subject; /* the pattern, NUL-terminated */
	char *queue; /* queue group, or NULL */
	uint64_t max_msgs; /* auto-unsubscribe after this many; 0: never */
	uint64_t delivered; /* deliveries made or queued to be made */
	uint64_t dropped; /* dropped by the policy, in all */
	bool dropped_owed; /* a Dropped notice must go out */
	bool oom; /* uthash: an insert failed */
	UT_hash_handle hh; /* bc->subs, by sid */
};

/* A delivery waiting for room at a subscriber. */
struct pend {
	struct vbi_conn *src; /* the publisher (may be closed) */
	struct vbi_frame_view v; /* held: one reference */
	uint32_t sid;
};

/* Connections from one address in their handshake (b->hs_by_addr). */
struct hs_addr {
	char addr[64]; /* the peer's address, without its port */
	uint32_t n;
	bool oom; /* uthash: the insert failed */
	UT_hash_handle hh;
};

/* One client connection. */
struct bconn {
	uint32_t kind; /* KIND_CONN: first, see conn_of() */
	struct vbd_broker *b;
	struct vbi_conn *c;
	uint64_t cid;
	char name[64];
	char peer[64];
	int64_t start_time;
	struct bsub *subs; /* by sid */
	uint32_t nsubs;
	struct pend *pend; /* a ring of pend_cap entries */
	size_t pend_head, pend_n, pend_cap;
	uint64_t blocked_since; /* ms: waiting without progress since; 0:
				 * nothing waits for it */
	uint64_t pings[PINGS_MAX]; /* Pongs owed, oldest first */
	unsigned npings;
	bool drops_owed; /* some sub has dropped_owed */
	bool fwd_fail_logged; /* a failed forward to it was logged */
	/* Stall detection (tick): the transport's progress count when last
	 * looked at, and whether this stall was counted as a slow consumer
	 * and has shed its forwards (drop: its deliveries are then dropped
	 * until it moves again). */
	uint64_t progress_seen;
	bool slow_counted;
	bool shed;
	bool paused; /* as a publisher: paused for a full subscriber */
	bool closing;
	uint64_t msgs_in, bytes_in, msgs_out, bytes_out, drops, waits;
	struct bconn *prev, *next; /* the broker's list, by cid */
	bool oom;
	const struct vbd_user *user; /* what it proved; NULL: no auth */
	UT_hash_handle hh; /* b->by_cid */
};

struct vbd_broker {
	uint32_t kind; /* KIND_BROKER: first, see conn_of() */
	struct vbd_config cfg;
	/* One transport context and listener per transport listened on:
	 * listen's, and listen_tcp's if set.  With two, @epfd watches both
	 * contexts' fds (vbd_broker_fd). */
	struct vbi_tp *tp[2];
	struct vbi_listener *l[2];
	unsigned ntp;
	int epfd;
	struct vbi_sublist *sl;
	struct vbi_match match; /* reused for every message */
	struct bconn *by_cid; /* uthash */
	struct bconn *head, *tail; /* every connection, by cid */
	uint64_t nconns, next_cid;
	uint64_t nhandshakes; /* accepted, not yet open or closed */
	struct hs_addr *hs_by_addr; /* handshakes in progress per address */
	uint32_t npaused; /* publishers paused (bconn.paused) */
	uint64_t last_tick;
	bool shutting_down;
	int64_t start_time;
	uint64_t start_ms;
	char listen[80];
	struct vbd_stats_server st; /* the monotonic counters */
	struct vbd_auth *auth; /* owned; NULL: everyone admitted */
};

/* ---- subs.c ---------------------------------------------------------- */

void bk_send_notice(struct bconn *bc, int err, uint32_t sid, uint64_t seq,
		    const char *reason);
void bk_send_owed(struct bconn *bc);
void bk_sub_free(struct vbd_broker *b, struct bsub *s);
struct bsub *bk_sub_find(struct bconn *bc, uint32_t sid);
/* A client's control message. */
void bk_client_control(struct vbi_conn *c, const Verbus__Control *m,
		       void *arg);
/* Room again at @arg's connection: pending deliveries, notices owed. */
void bk_writable(struct vbi_conn *c, void *arg);

/* ---- deliver.c ------------------------------------------------------- */

/* A frame from a client or a route: route it, then drop our reference. */
void bk_publish(struct vbi_conn *c, const struct vbi_frame_view *v,
		void *arg);
/* One delivery of @pub's frame to @dst as @sid; true if it was made or
 * queued to be (the policy may drop it or close @dst). */
bool bk_deliver_to(struct bconn *dst, struct bconn *pub,
		   const struct vbi_frame_view *v, uint32_t sid);
void bk_pend_flush(struct bconn *bc);
void bk_pend_drop_all(struct bconn *bc, bool count);
void bk_resume_publishers(struct vbd_broker *b);
void bk_stall_check(struct bconn *bc, uint64_t now);
void bk_slow_disconnect(struct bconn *bc, const char *why);

#endif /* VERBUS_DAEMON_BROKER_INT_H */
