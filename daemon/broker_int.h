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
 *   stream.c   large messages: streams of CHUNK frames, routed at their
 *              first chunk, each chunk forwarded like a message;
 *   route.c    routes: connections to other brokers of the cluster, the
 *              interest they exchange, forwards across them;
 *   cluster.c  membership (ZooKeeper, daemon/zk.h): which routes to keep,
 *              connecting them, the member list clients learn;
 *   bstats.c   the monitor's view (daemon/stats.h);
 *   bacct.c    accounts at run time: each one's trie, counts and limits,
 *              and where its messages cross to others (daemon/account.h);
 *   reload.c   a configuration reload applied (daemon/reload.h);
 *   lameduck.c lame-duck mode: clients told, then closed over a period;
 *   direct.c   direct mode's control plane: listeners and their keys,
 *              queries answered with grants, switches and their fences.
 *
 * Internal to the daemon: never included outside daemon/.
 * Threading: everything here belongs to the thread that runs
 * vbd_broker_progress(); nothing locks.
 */
#ifndef VERBUS_DAEMON_BROKER_INT_H
#define VERBUS_DAEMON_BROKER_INT_H

#include "daemon/account.h"
#include "daemon/broker.h"
#include "daemon/inbox.h"

#include "core/subject.h"
#include "proto/codec.h"
#include "transport/transport.h"

#include <stdbool.h>
#include <stdint.h>

/* uthash: out of memory is an error we report, never exit(). */
#define uthash_nonfatal_oom(elt) ((elt)->oom = true)
#include "core/hash.h"

#define TICK_MS 50 /* timers: block timeouts, notices owed */
/* A tick this late means the process was not running (broker.c). */
#define LOOP_AWAY_MS 500
/* What a callback's arg points at: the broker (before open) or a bconn. */
#define KIND_BROKER 0x42524b52u
#define KIND_CONN 0x434f4e4eu
/* Pongs owed per connection at most; a Ping beyond takes the place of
 * the newest (its Pong answers every Ping before it). */
#define PINGS_MAX 16
#define MAX_CLIENT_RING (64u << 20) /* largest client ring we mirror */
/* Deliveries a pending queue takes past pending_max: those of the frames
 * already being routed when the publishers were paused. */
#define PEND_SLACK 1024u
/* A route's stall is judged after this many block_timeout_ms (deliver.c). */
#define ROUTE_STALL_FACTOR 4u

/* What a connection is to the broker. */
enum bk_role {
	BK_CLIENT, /* a client: subscribes, publishes, held to its user */
	BK_ROUTE, /* another broker of the cluster (route.c) */
};

struct vbd_route;
struct vbd_cluster;
struct bk_interest;
struct bacct;
struct bdirect;

/* Where an account's messages cross to another (bacct.c): a stream
 * another imports from it, or a service it imports from another. */
struct bxport {
	struct bacct *acct; /* the importer of a stream; the exporter of a
			     * service */
	const char *pattern; /* the import's (the definition's string) */
	size_t plen;
	const struct vbd_export *exp;
};

/*
 * An account at run time (bacct.c): its clients' subscriptions (a trie of
 * its own: subjects are per account), what they hold, and where its
 * messages cross.  In b->accts by name; never freed before the broker, so
 * that a pointer to one (a connection's, a reply grant's) stays valid
 * across reloads, which only change @def.
 */
struct bacct {
	char name[VBD_ACCOUNT_NAME_MAX + 1];
	const struct vbd_acct_def *def; /* NULL: "$G", or gone in a reload */
	struct vbi_sublist *sl;
	/* The interest routes' peers declared in it (route.c); NULL until
	 * the first. */
	struct vbi_sublist *remote;
	uint64_t nconns, nsubs, memory; /* now */
	uint64_t msgs_in, bytes_in, msgs_out, bytes_out;
	uint64_t conns_refused, subs_refused;
	struct bxport *streams_out; /* accounts importing a stream of it */
	size_t nstreams_out;
	struct bxport *services_in; /* services it imports */
	size_t nservices_in;
	struct bxport *services_out; /* accounts importing a service of it */
	size_t nservices_out;
	uint64_t gen; /* b->acct_gen: has the message being routed */
	/* Our id for it on routes (RouteSub account_sid: VBI_ACCOUNT_SID |
	 * rid; the global account's is 0), an index of b->by_rid. */
	uint32_t rid;
	bool oom;
	UT_hash_handle hh; /* b->accts, by name */
};

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
	bool too_big_told; /* a Notice said a message was too large for it */
	bool direct; /* Subscribe direct: direct publishers may serve it */
	bool oom; /* uthash: an insert failed */
	UT_hash_handle hh; /* bc->subs, by sid */
};

/* A delivery waiting for room at a subscriber. */
struct pend {
	/* The publisher (may be closed); NULL: an ABORT the broker owes the
	 * subscriber for stream @abort_tag (stream.c), not a frame. */
	struct vbi_conn *src;
	struct vbi_frame_view v; /* held: one reference (src set) */
	uint32_t sid;
	uint32_t abort_total, abort_off;
	uint64_t abort_tag;
};

/* One recipient of a large message: a connection and the sid it gets the
 * chunks as (a client's subscription, or a route's), fixed at the first
 * chunk.  By cid, looked up per chunk: it may close meanwhile. */
struct brecip {
	uint64_t cid;
	uint32_t sid;
	bool lost; /* a chunk was not delivered: no more go, ABORT owed */
};

/*
 * A large message under way (stream.c): its publisher's stream of CHUNK
 * frames, from the first chunk to the last.  In b->streams by tag.
 */
struct bstream {
	uint64_t tag;
	struct bconn *src; /* the publisher or route it comes from */
	uint32_t total; /* the message's bytes, as announced */
	uint32_t next; /* the offset the next chunk must have */
	uint64_t last_ms; /* coarse ms of its last chunk */
	struct brecip *to;
	size_t nto, cap;
	bool oom; /* uthash: the insert failed */
	UT_hash_handle hh; /* b->streams, by tag */
};

/* Connections from one address in their handshake (b->hs_by_addr). */
struct hs_addr {
	char addr[64]; /* the peer's address, without its port */
	uint32_t n;
	bool oom; /* uthash: the insert failed */
	UT_hash_handle hh;
};

/*
 * A Pong owed (subs.c).  It goes once everything queued to the peer before
 * its Ping (pending deliveries, staged frames) has been handed to the
 * transport, so that it arrives after them, as NATS's PONG follows the
 * MSGs written before it: a client that unsubscribes and then sees the
 * Pong has had every message the broker sent for it (libverbus's drain).
 */
struct owed_pong {
	uint64_t id;
	uint64_t pend_mark; /* bconn.pend_pushed when the Ping came */
	uint64_t tx_mark; /* tx_staged once those left the pending queue */
	bool tx_known; /* tx_mark is set */
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
	uint64_t pend_pushed; /* deliveries ever queued in pend */
	struct owed_pong pings[PINGS_MAX]; /* Pongs owed, oldest first */
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
	struct bstream *stream; /* a client's large message under way */
	uint32_t nstreams; /* streams from it under way (a route: many) */
	bool closing;
	enum bk_role role;
	struct vbd_route *route; /* BK_ROUTE: route.c's state */
	uint64_t msgs_in, bytes_in, msgs_out, bytes_out, drops, waits;
	struct bconn *prev, *next; /* the broker's list, by cid */
	bool oom;
	const struct vbd_user *user; /* what it proved; NULL: no auth */
	/* A client's account, and the registered memory counted against it
	 * (its ring and its staging mirror); NULL for a route. */
	struct bacct *acct;
	uint64_t acct_mem;
	/* The inbox id its Hello proved ("": none, so no inbox is its own)
	 * and what it may reply to (daemon/inbox.h). */
	char inbox_id[VBD_INBOX_ID_LEN + 1];
	struct vbd_grants *grants;
	/* Closing for what it may no longer be (its credentials or account
	 * changed in a reload, reload.c; its account full at the open):
	 * nothing it sends is routed any more. */
	bool revoked;
	bool ldm_owed; /* lame-duck mode: its LameDuck is still to go */
	/* Direct mode (direct.c): its state, NULL if it never took part;
	 * as a publisher, the subscribers it switched to direct now (its
	 * deliveries to them are checked only while this is not 0). */
	struct bdirect *direct;
	uint32_t direct_on;
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
	/* Accounts (bacct.c): by name, the global one ("$G") always, and
	 * a generation per routed message that crosses accounts. */
	struct bacct *accts;
	struct bacct *gacct;
	struct bacct **by_rid; /* by rid: every account, rid 0 the global */
	uint32_t nrids, cap_rids;
	uint64_t acct_gen;
	struct vbi_match match; /* reused for every message */
	struct bconn *by_cid; /* uthash */
	struct bconn *head, *tail; /* every connection, by cid */
	uint64_t nconns, next_cid;
	uint64_t nhandshakes; /* accepted, not yet open or closed */
	struct hs_addr *hs_by_addr; /* handshakes in progress per address */
	uint32_t npaused; /* publishers paused (bconn.paused) */
	struct bstream *streams; /* large messages under way, by tag */
	/* The first chunk of this stream is being routed: bk_deliver_to()
	 * records each delivery as a recipient of it (stream.c). */
	struct bstream *collect;
	uint64_t last_tick;
	/* The loop's latest absence (loop_was_away): how long, and when
	 * it ended (coarse ms; 0: never away). */
	uint64_t away_ms, away_end;
	bool shutting_down;
	int64_t start_time;
	uint64_t start_ms;
	char listen[80];
	struct vbd_stats_server st; /* the monotonic counters */
	struct vbd_auth *auth; /* owned; NULL: everyone admitted */
	/* The cluster (NULL, and the rest zero, when not clustered):
	 * membership (cluster.c); the routes by peer id, the route
	 * listener and the context it is in (route.c; the interest the
	 * peers declared is in each account's remote trie); the interest of
	 * our own clients as the peers know it (by key and by id). */
	struct vbd_cluster *cluster;
	uint64_t cluster_due; /* ms: ZooKeeper's next turn is due */
	struct vbd_route *routes; /* uthash, by peer id */
	uint64_t nroutes; /* route connections open */
	struct vbi_tp *route_tp;
	struct vbi_listener *route_l;
	struct vbi_match rmatch; /* reused for every message */
	struct bk_interest *interest; /* by (pattern, queue) */
	struct bk_interest *interest_by_id;
	uint32_t next_interest_id;
	uint64_t fwd_gen; /* one per routed message: plain forwards once */
	uint8_t route_cred[VBI_CRED_MAX]; /* our packed RouteAuth */
	size_t route_cred_len;
	struct vbd_stats_cluster cst; /* the cluster's counters */
	/* Lame-duck mode (lameduck.c): since when (coarse ms; 0: not in
	 * it); once the grace period is over, the clients open then, how
	 * many of them it has closed, and whether the period is over. */
	uint64_t ldm_since;
	bool ldm_closing;
	uint64_t ldm_n0, ldm_closed;
	bool ldm_over;
	/* Direct mode's interest generation: moves on with every change of
	 * direct interest (direct.c). */
	uint64_t direct_gen;
	/* Connections that asked about some subject now (direct.c): while
	 * 0, interest changes cost nothing. */
	uint32_t direct_querying;
};

/* ---- subs.c ---------------------------------------------------------- */

/*
 * bk_send_notice_reply() - bk_send_notice() about a message whose reply
 * subject was @reply (@rlen bytes, not terminated; NULL: none), which the
 * Notice names so that the requester's library can fail that request.
 */
void bk_send_notice_reply(struct bconn *bc, int err, uint32_t sid, uint64_t seq,
			  const char *reply, size_t rlen, const char *reason);
void bk_send_notice(struct bconn *bc, int err, uint32_t sid, uint64_t seq,
		    const char *reason);
void bk_send_owed(struct bconn *bc);
/* Whether everything queued to @bc before @p was marked (p->pend_mark:
 * bc->pend_pushed then) has been handed to the transport, so that a
 * control message sent now arrives after it (a Pong, a DirectFence). */
bool bk_owed_due(struct bconn *bc, struct owed_pong *p);
void bk_sub_free(struct vbd_broker *b, struct bsub *s);
struct bsub *bk_sub_find(struct bconn *bc, uint32_t sid);
/* A client's control message. */
void bk_client_control(struct vbi_conn *c, const Verbus__Control *m, void *arg);
/* Room again at @arg's connection: pending deliveries, notices owed. */
void bk_writable(struct vbi_conn *c, void *arg);

/* ---- deliver.c ------------------------------------------------------- */

/* A frame from a client or a route: route it, then drop our reference. */
void bk_publish(struct vbi_conn *c, const struct vbi_frame_view *v, void *arg);
/* One delivery of @pub's frame to @dst as @sid; true if it was made or
 * queued to be (the policy may drop it or close @dst). */
bool bk_deliver_to(struct bconn *dst, struct bconn *pub,
		   const struct vbi_frame_view *v, uint32_t sid);
void bk_pend_flush(struct bconn *bc);
/* Route a frame from @bc (subject, permissions, match, deliveries over
 * routes and here, no responders); the caller keeps its reference. */
void bk_route_frame(struct bconn *bc, const struct vbi_frame_view *v);
/* @dst's copy of large message @st stopped at @off: it is owed an ABORT
 * for @sid, sent behind what is queued for it (best effort: shed, or
 * without memory to queue it, its library drops the partial message when
 * it needs the room). */
void bk_owe_abort(struct bconn *dst, uint32_t sid, const struct bstream *st,
		  uint32_t off);
void bk_pend_drop_all(struct bconn *bc, bool count);
void bk_resume_publishers(struct vbd_broker *b);
void bk_stall_check(struct bconn *bc, uint64_t now);
void bk_slow_disconnect(struct bconn *bc, const char *why);
/* A route's peer reports messages lost on their way here (a Dropped with
 * a subject): our subscribers that would have had them are told. */
void bk_route_dropped(struct bconn *bc, const Verbus__Dropped *d);

/* ---- stream.c ------------------------------------------------------- */

/* A CHUNK frame from a client or a route (bk_publish): checked against
 * its stream, routed at its first chunk, forwarded to the stream's
 * recipients; drops the frame's reference. */
void bk_chunk(struct bconn *bc, const struct vbi_frame_view *v);
/* Record @dst/@sid as a recipient of @st (b->collect). */
void bk_stream_record(struct bstream *st, struct bconn *dst, uint32_t sid);
/* @bc closes: the streams it publishes end, their recipients told. */
void bk_streams_src_gone(struct bconn *bc);
/* Timers: a stream with no chunk for too long ends. */
void bk_streams_tick(struct vbd_broker *b, uint64_t now);

/* ---- bacct.c -------------------------------------------------------- */

/* The account named @name in a route's interest ("": the global one),
 * made if it is not known here (the same name is the same account on
 * every member), with its remote trie, in *@a.  VB_EINVAL: not a name;
 * VB_ENOMEM.  bk_account_by_sid(): the account of our id @sid
 * (VBI_ACCOUNT_SID | rid, or 0), NULL if none. */
struct bacct *bk_account_by_sid(struct vbd_broker *b, uint32_t sid);
int bk_account_route(struct vbd_broker *b, const char *name, struct bacct **a);
/* The global account; bk_accounts_fini() frees every account. */
int bk_accounts_init(struct vbd_broker *b);
void bk_accounts_fini(struct vbd_broker *b);
/* Bind the accounts to b->auth's definitions (start-up, reload): each
 * defined one exists, the others keep no definition, and the crossings
 * are made again.  VB_ENOMEM leaves them without some crossings. */
int bk_accounts_bind(struct vbd_broker *b);
/* The account @u belongs to (NULL: no authorization), as a name. */
const char *bk_account_name_of(const struct vbd_user *u);
/* A client's Hello proved @u: whether its account has room for @c
 * (VB_OK), else VB_ENOSPC with the reason in @why (it is turned away
 * then, before it opens; bk_account_join() checks again at the open). */
int bk_account_admit(struct vbd_broker *b, const struct vbd_user *u,
		     struct vbi_conn *c, char *why, size_t len);
/* A client opens: into its user's account, within the account's limits;
 * else VB_ENOSPC with the reason in @why, and nothing counted. */
int bk_account_join(struct bconn *bc, char *why, size_t len);
/* A client closes: out of its account. */
void bk_account_leave(struct bconn *bc);
/* May @bc's account take one more subscription?  If not, @why says so. */
bool bk_account_sub_ok(struct bconn *bc, char *why, size_t len);
/* The monitor's view: every account, "$G" first, then by name. */
void bk_accounts_each(struct vbd_broker *b,
		      void (*fn)(void *ctx, const struct vbd_stats_account *a),
		      void *ctx);

/* ---- broker.c -------------------------------------------------------- */

/* The transport's accept callback, for every listener: limits. */
int bk_accept(struct vbi_conn *c, void *arg);
/* A connection bk_accept() admitted has opened or closed. */
void bk_handshake_done(struct vbd_broker *b, struct vbi_conn *c);
/* Turn a new connection away: it never gets a bconn. */
void bk_refuse(struct vbd_broker *b, struct vbi_conn *c, const char *why);
/* A bconn for @c, listed and counted, @c's arg from now on; NULL: out of
 * memory, and @c refused. */
struct bconn *bk_conn_add(struct vbd_broker *b, struct vbi_conn *c,
			  enum bk_role role, const struct vbd_user *user);
/* @bc's connection closed: everything it held goes, and @bc is freed. */
void bk_conn_closed(struct bconn *bc, const struct vbi_close_info *why);
/* @arg as a bconn of @c, or NULL (see broker.c). */
struct bconn *bk_conn_of(struct vbi_conn *c, void *arg);
/* The message callback of every connection. */
void bk_cb_message(struct vbi_conn *c, const struct vbi_frame_view *v,
		   void *arg);

/* Close the client listeners (shutdown, lame-duck mode). */
void bk_stop_accepting(struct vbd_broker *b);

/* ---- direct.c -------------------------------------------------------- */

/* A client's direct-mode control message: DirectListen, DirectQuery,
 * DirectSwitch (the others are the broker's to send: ignored). */
void bk_direct_control(struct bconn *bc, const Verbus__Control *m);
/* A RESEND frame @v from client @bc (core/resend.h): delivered to the one
 * subscription it names if @bc's last failed DirectSwitch off announced
 * it and the subscription still takes it; else dropped, counted, said
 * once per connection.  The caller releases @v. */
void bk_direct_resend(struct bconn *bc, const struct vbi_frame_view *v);
/* Whether @bc sent its DirectListen (a direct Subscribe needs one). */
bool bk_direct_listening(const struct bconn *bc);
/* Subscription @s (direct or not) was just added, or is about to go
 * (@added false, @s still whole): the publishers that asked about a
 * subject it matches are told (DirectStale). */
void bk_direct_sub_changed(struct bsub *s, bool added);
/* Interest on @pattern in @a changed otherwise (a route's): the same. */
void bk_direct_interest(struct vbd_broker *b, struct bacct *a,
			const char *pattern);
/* Routing a message of a publisher with direct_on set, in account @a on
 * @subject: whether it is one direct paths are granted for (not an
 * inbox, no crossing), i.e. bk_direct_skip() applies. */
bool bk_direct_eligible(const struct bacct *a, const char *subject,
			size_t slen);
/* Whether @pub writes its message on @subject (@slen bytes) for @s itself
 * (@s a plain direct subscription of a connection @pub switched to, which
 * declared it; or @s the member a queue group picked, and @pub writes to
 * one of that group's members itself): the broker skips it.  Only while
 * pub->direct_on. */
bool bk_direct_skip(const struct bconn *pub, const struct bsub *s,
		    const char *subject, size_t slen);
/* The broker's tick, for a publisher with switched-on paths
 * (bc->direct_on): those a reload asked it to switch off that it has not
 * within the grace are revoked. */
void bk_direct_tick(struct bconn *bc, uint64_t now);
/* The next delivery to @bc (queued or not) is about to go: whether a
 * DirectFence queued behind the deliveries before it must go first and
 * cannot yet (no credit, no room).  Tries to send it.  @bc->direct set. */
bool bk_direct_fence_waits(struct bconn *bc);
/* A Ping came from @bc: true if its Pong is held (@wait_direct while a
 * publisher may still write to a direct subscription @bc dropped, or
 * behind such a held Pong: sent behind that publisher's DirectFence once
 * it switched off, direct.c), false to owe it as usual.  @bc->direct
 * set. */
bool bk_direct_hold_ping(struct bconn *bc, uint64_t id, bool wait_direct);
/* The direct control messages @bc is owed, in order, as credit and its
 * pending queue allow (bk_send_owed()). */
void bk_direct_send_owed(struct bconn *bc);
/* A reload re-applied @bc's user (its permissions, its account's
 * crossings may differ): its answers are stale (a DirectStale for all),
 * and its switches revoked if it does not switch them off itself within
 * a grace (bk_direct_tick()). */
void bk_direct_reload(struct bconn *bc);
/* @bc closes (its subscriptions already gone): the subscribers it
 * switched to are told (DirectRevoke), the pairs it is in go, and its
 * state is freed. */
void bk_direct_closed(struct bconn *bc);
/* @bc's direct fields of the monitor's view. */
void bk_direct_stats(const struct bconn *bc, struct vbd_stats_conn *o);

/* ---- lameduck.c ------------------------------------------------------ */

/* Timers: LameDucks owed, clients to close, the period's end. */
void bk_lame_duck_tick(struct vbd_broker *b, uint64_t now);

/* ---- route.c --------------------------------------------------------- */

/* A clustered broker's routes: the remote trie, our RouteAuth, the route
 * listener on cfg.cluster_listen.  bk_routes_fini() undoes it (any
 * state). */
int bk_routes_init(struct vbd_broker *b);
void bk_routes_fini(struct vbd_broker *b);
/* Is @cred (a Hello's) a broker's, with a RouteAuth? */
bool bk_cred_is_route(const void *cred, size_t len);
/* Membership: @peer_id is a member whose routes listen at @url; keep a
 * route to it (opened from here if our id is the smaller). */
void bk_route_want(struct vbd_broker *b, const char *peer_id, const char *url);
/* @peer_id is no longer a member: its route is not reopened once it
 * closes (an open one stays: ZooKeeper's view is not the route's). */
void bk_route_unwant(struct vbd_broker *b, const char *peer_id);
/* Timers: connection attempts with backoff, pings, interest to send. */
void bk_routes_tick(struct vbd_broker *b, uint64_t now);
/* A route's connection closed (bk_conn_closed). */
void bk_route_closed(struct bconn *bc, const struct vbi_close_info *why);
/* A client's message in account @a (its own, or one it crosses into),
 * delivered locally to @local: forward it over every route with matching
 * interest in @a.  Returns the forwards made. */
size_t bk_routes_forward(struct vbd_broker *b, struct bconn *pub,
			 struct bacct *a, const struct vbi_frame_view *v,
			 size_t slen, const struct vbi_match *local);
/* What a route frame's sid means: our interest entry @id's account and
 * queue group; an account's id (VBI_ACCOUNT_SID set; 0, the global one):
 * that account's plain subscribers (*@q NULL).  False if there is no
 * such entry (it went) or account. */
bool bk_interest_of(struct vbd_broker *b, uint32_t id, struct bacct **a,
		    const char **q, size_t *qlen);
/* A client's subscription came or went: the peers learn of the first
 * and the last of each (pattern, queue). */
void bk_interest_add(struct vbd_broker *b, const struct bsub *s);
void bk_interest_del(struct vbd_broker *b, const struct bsub *s);
/* A route dropped for what it sent: logged, counted, closed. */
void bk_route_fail(struct bconn *bc, const char *why);
/* A delivery of @v to route @bc for the peer's @sid is lost: kept to be
 * reported to the peer (rloss.h). */
void bk_route_lost(struct bconn *bc, const struct vbi_frame_view *v,
		   uint32_t sid);
/* For the monitor: each route, open or not. */
void bk_routes_each(struct vbd_broker *b,
		    void (*fn)(void *ctx, const struct vbd_stats_route *r),
		    void *ctx);

/* ---- cluster.c ------------------------------------------------------- */

/* Join the cluster of b->cfg (ZooKeeper session, our member node). */
int bk_cluster_create(struct vbd_broker *b, struct vbd_cluster **out);
void bk_cluster_destroy(struct vbd_cluster *cl);
/* ZooKeeper's fd (stable) and how long until it needs a turn. */
int bk_cluster_fd(struct vbd_cluster *cl);
int bk_cluster_timeout_ms(struct vbd_cluster *cl);
/* A turn: when its fd is readable or its timeout passed. */
void bk_cluster_process(struct vbd_cluster *cl);
/* A client opened: it learns the members (Info). */
void bk_cluster_client_open(struct vbd_cluster *cl, struct bconn *bc);
/* The cluster's state for /varz, /healthz and /metrics. */
void bk_cluster_stats(struct vbd_cluster *cl, struct vbd_stats_cluster *st);

#endif /* VERBUS_DAEMON_BROKER_INT_H */
