/*
 * client.h - libverbus internals shared by the client's source files.
 *
 * A struct vb_conn holds at most one transport connection at a time (the
 * current attempt, or the open connection), to the current server of its
 * pool (pool.h), through a transport context (struct vbi_tp) of that
 * server's scheme: one per scheme it has used, kept until vb_close() (its
 * registered memory serves the next connection of that scheme, and held
 * messages may still point into it).  Everything the application sees
 * survives a reconnection, to the same server or another: subscriptions
 * (re-sent on every open), the queue of unsent messages, pending requests.
 *
 * Threading: every function here expects the caller to hold the
 * connection's lock (client_lock) when it is a locked connection; none of
 * them takes it.  Ownership is as stated per field.
 */
#ifndef VERBUS_CLIENTS_LIB_CLIENT_H
#define VERBUS_CLIENTS_LIB_CLIENT_H

#include "clients/lib/direct.h"
#include "clients/lib/large.h"
#include "clients/lib/pending.h"
#include "clients/lib/pool.h"
#include "core/header.h"
#include "core/log.h"
#include "core/subject.h"
#include "core/url.h"
#include "proto/codec.h"
#include "transport/transport.h"

#include <verbus/verbus.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/hash.h"

#define VB_INBOX_PREFIX VBI_INBOX_PREFIX
#define VBI_INBOX_SECRET_LEN 16

/* Transport contexts a connection may hold: one per scheme (this build has
 * three: rdma, tcp, tls). */
#define CLIENT_TPS_MAX 4

/* A transport context and the scheme it serves. */
struct client_tp {
	char scheme[16]; /* as struct vb_url's */
	struct vbi_tp *tp; /* owned; its fd is in vb_conn.epfd */
};

struct held_msg;

/* One subscription (the application's handle). */
struct vb_sub {
	struct vb_conn *c;
	uint32_t sid; /* unique on the vb_conn, never reused */
	char *pattern; /* owned */
	char *queue; /* owned; NULL: none */
	vb_msg_cb cb; /* NULL: synchronous (vb_subscribe_sync) */
	void *arg;
	/* Messages handed to cb, or (synchronous) returned by
	 * vb_next_msg(), in all. */
	uint64_t delivered;
	/* Messages the broker sent for it, in all: delivered, queued or
	 * dropped (what its auto-unsubscribe limit counts). */
	uint64_t received;
	uint64_t max; /* 0: no limit, else ends after that many */
	unsigned in_cb; /* its cb or an event about it running: freeing
			 * waits until they return */
	bool gone; /* unsubscribed: free once cb returns */
	struct sub_drain *drain; /* owned: a drain under way, or NULL */
	struct vbi_pending pend; /* held or queued for the application */
	/* Synchronous subscriptions (syncsub.c). */
	bool sync;
	bool direct; /* VB_SUB_DIRECT: Subscribe says so */
	/* Out of the table (auto-unsubscribe reached, refused by the
	 * broker), not freed: a synchronous handle lives until
	 * vb_unsubscribe(); vb_next_msg() drains it, then VB_ECLOSED. */
	bool ended;
	struct held_msg *q_head, **q_tail; /* queued, owned, oldest first */
	unsigned waiters; /* threads inside vb_next_msg(): freeing waits */
	unsigned sleepers; /* of them, asleep without the lock: wake efd */
	int efd; /* VB_OPT_LOCKED: an eventfd that wakes sleepers; else -1 */
	struct vb_sub *eprev, *enext; /* in c->ended (ended ones only) */
	UT_hash_handle hh; /* in c->subs, by sid */
};

/* What waits in the outgoing queue, in order. */
enum out_kind { OUT_PUB, OUT_SUB, OUT_UNSUB, OUT_PING, OUT_CTRL };

struct out_item {
	struct out_item *next;
	enum out_kind kind;
	uint32_t sid; /* SUB, UNSUB; PING: 1 for Ping.wait_direct */
	uint64_t num; /* UNSUB: max_msgs; PING: id */
	uint16_t topic_len; /* PUB: topic bytes, then size payload bytes;
			     * CTRL: size bytes, a packed Control */
	uint8_t fkind; /* PUB: VBI_FRAME_MSG, or _HMSG (headers first) */
	uint32_t size;
	/* PUB sent as a stream of chunks (stream.c), once under way: its tag
	 * (0: not started) and the bytes of it sent so far. */
	uint64_t tag;
	uint32_t off;
	uint8_t bytes[];
};

/* A message kept by vb_msg_hold() or returned by vb_next_msg(), one queued
 * for vb_next_msg(), or the context of one being delivered (on the stack:
 * the application sees only .m). */
struct held_msg {
	struct vb_msg m; /* first: the application's pointer */
	struct vb_conn *c;
	/* The transport connection holding the bytes, or NULL when they were
	 * copied out of the ring into @copy (syncsub.c), or are a large
	 * message's, in @lbuf. */
	struct vbi_conn *vc;
	struct vbi_frame_view v;
	char *copy; /* owned: the bytes when @vc is NULL */
	size_t copy_len; /* bytes at @copy */
	/* A large message put back together (stream.c): one reference,
	 * ours; its bytes are shared with other deliveries and holds of it.
	 * NULL otherwise. */
	struct vbi_lbuf *lbuf;
	/* The subscription whose pending count it is in; NULL if none (or
	 * freed since). */
	struct vb_sub *owner;
	struct held_msg *prev, *next; /* in c->held (held ones only) */
	struct held_msg *qnext; /* in owner's queue (queued ones only) */
	/* In c->pinned: queued and still in the ring (queued ones only). */
	struct held_msg *pprev, *pnext;
};

/* A request waiting for its reply. */
struct req {
	uint64_t token; /* the last token of its reply subject */
	uint64_t deadline_ns;
	vb_reply_cb cb;
	void *arg;
	UT_hash_handle hh;
};

enum client_state {
	CS_CONNECTING, /* a transport connection is being set up */
	CS_OPEN,
	CS_WAITING, /* lost: the next attempt is at retry_ns */
	CS_CLOSED, /* for good */
};

struct vb_conn {
	/* Options, with defaults applied; the strings below are owned. */
	struct vb_opts o;
	char *name, *source;
	/* vb_opts.tls_*, copied (NULL: not given). */
	char *tls_ca, *tls_cert, *tls_key, *tls_server_name;
	uint8_t cred[VBI_CRED_MAX];
	size_t cred_len;
	struct vbi_pool *pool; /* owned: the servers, and the current one */
	unsigned pool_flags; /* VBI_POOL_SHUFFLE with VB_OPT_RANDOMIZE */
	struct vb_url open_url; /* the server of the last open (ever_open) */
	char server[VBI_POOL_URL_LEN]; /* scratch: a server's URL, for events */

	struct client_tp tps[CLIENT_TPS_MAX]; /* by scheme, as created */
	unsigned ntps; /* entries of tps in use */
	struct vbi_tp *tp; /* the one of vc (or of the last attempt), or NULL */
	struct vbi_conn *vc; /* the current transport connection, or NULL */
	enum client_state state;
	/* CS_OPEN: the largest topic + payload the broker takes in one
	 * frame (its Welcome's), kept off the publish path's calls. */
	uint32_t peer_max_msg;
	bool ever_open;
	bool sync_connect; /* vb_connect waits: a failed pass is final */
	bool closing; /* vb_close running: callbacks do nothing */
	uint64_t gen; /* +1 per open */
	int passes; /* passes over the pool in a row in which none opened */
	uint64_t retry_ns; /* CS_WAITING: when to try again */
	uint64_t ping_ns; /* CS_OPEN: the next heartbeat Ping */
	uint64_t rng; /* jitter (xorshift64*) */
	int close_err; /* CS_CLOSED: why */
	char close_reason[256]; /* as transport.h's vbi_close_info.reason */

	int epfd, tfd, efd; /* vb_fd(), timerfd, eventfd (wake-ups) */
	bool efd_armed; /* a wake-up is pending on efd */
	bool in_process; /* inside process(): it posts what is staged */
	bool posted_early; /* a publish posted at once since process() */
	atomic_bool recent_work; /* the last vb_poll() had work: spin_us
				  * applies (any thread, VB_OPT_LOCKED) */
	uint64_t timer_at; /* what the timerfd is armed for; 0: nothing */
	atomic_bool stop; /* vb_stop() */
	bool locked;
	pthread_mutex_t lock; /* VB_OPT_LOCKED: recursive */

	struct vb_sub *subs; /* by sid */
	struct vb_sub *ended; /* synchronous ones out of subs, owned */
	uint32_t next_sid;

	struct out_item *out_head, **out_tail; /* owned, in order */
	uint64_t out_msgs, out_bytes; /* OUT_PUB items queued, data bytes */
	bool want_writable; /* a caller saw VB_EAGAIN */
	bool reserving; /* between vb_reserve and vb_commit */
	uint32_t res_size;
	/* The reservation's topic length (its topic stays in c->topic) and
	 * payload (in the transport's staging): VB_OPT_DIRECT's commit. */
	int res_tlen;
	void *res_payload;

	uint64_t ping_id, pong_id; /* last Ping sent, last Pong seen */
	/* Moving off a broker in lame-duck mode (lameduck.c): the Ping that
	 * closes what goes to it (0: no move under way), and whether it has
	 * been sent (the queue then waits for the next connection). */
	uint64_t move_ping;
	bool move_sent;
	bool moving; /* the loss being handled is that move (not one) */

	struct held_msg *held; /* kept messages, owned */
	/* Queued for vb_next_msg() and still in the receive ring, oldest
	 * (lowest ring position) first: not owned (their queues own them). */
	struct held_msg *pinned_head, *pinned_tail;
	uint32_t ring_size; /* our receive ring, once known; 0 before */

	/* The inbox secret, sent in every Hello, and the inbox it proves:
	 * "_INBOX.<16 hex of its SHA-256>" (inbox.c). */
	uint8_t inbox_secret[VBI_INBOX_SECRET_LEN];
	char inbox[32];
	struct vb_sub *inbox_sub; /* created at the first request */
	uint64_t next_token;
	uint64_t next_inbox; /* vb_new_inbox(): "_INBOX.<16 hex>-<n>" */
	struct req *reqs; /* by token */

	struct vb_stats st;
	char topic[2 * VBI_SUBJECT_MAX + 2]; /* scratch: "subject reply" */

	/* drain.c */
	struct conn_drain *drain; /* owned: vb_drain() under way, or NULL */
	unsigned sub_drains; /* subscriptions with a drain under way */
	bool pubs_closed; /* a drain's last flush: publishing refused */
	bool drained; /* closed by a drain that completed */

	/* stream.c: large messages */
	struct vbi_large large; /* the streams being received */
	uint64_t tag_base; /* random, drawn at the first stream sent */
	uint64_t tag_seq; /* streams sent: tag = tag_base + tag_seq */

	/* diag.c */
	uint64_t rtt_ping_id, rtt_ping_ns; /* the Ping timed for st.rtt_ns */
	uint64_t pong_ns; /* when pong_id last grew */
	char server_version[VBI_VERSION_MAX + 1]; /* the last open's */
	struct vbi_log_sink log; /* vb_opts.log; pushed by client_lock */

	/* direct.h: direct mode, owned; NULL until it is used. */
	struct vbi_direct *dir;
	char *direct_listen; /* vb_opts.direct_listen, copied; NULL: none */
};

/* client.c */
uint64_t vbi_client_now_ns(void);
/* An upper bound of vbi_client_now_ns() (within one clock tick, ~4 ms)
 * read without a system call: for deadlines that may fire late, not
 * early. */
uint64_t vbi_client_later_ns(void);
/* Hand an event to the application's callback (not while closing). */
void vbi_client_event(struct vb_conn *c, enum vb_event_type type, int err,
		      const char *detail, struct vb_sub *s, uint64_t count);
/* Arm the timerfd for the nearest deadline (retry, request). */
void vbi_client_arm_timer(struct vb_conn *c);
/* Make vb_fd() readable: frames staged outside vb_process() wait for it. */
void vbi_client_wake(struct vb_conn *c);
/* The broker's Pong @id, taken (vb_flush, vb_rtt, drains, lame duck). */
void vbi_client_pong(struct vb_conn *c, uint64_t id);
/* A message was staged in the transport (publish, commit): post it now if
 * it is the first since the last process() and we are outside it, so that
 * a lone message does not wait for the loop; later ones in the same burst
 * wait for the next process(), which posts them as one write. */
void vbi_client_staged(struct vb_conn *c);
/* Leave the open connection for the next server of the pool now, as if
 * it had been lost (@why: the reason its events give). */
void vbi_client_move(struct vb_conn *c, const char *why);
/* The transport context of @scheme: the one made before, or a new one
 * whose fd joins vb_fd()'s set.  VB_OK, VB_ENOSPC, or tp_create's error. */
int vbi_client_tp_for(struct vb_conn *c, const char *scheme,
		      struct vbi_tp **out);
/* Run the connection until @done(@arg) or @deadline_ns (0: none); returns
 * VB_OK, VB_ETIMEDOUT or VB_ECLOSED.  Drops the lock while sleeping. */
int vbi_client_wait(struct vb_conn *c, bool (*done)(struct vb_conn *, void *),
		    void *arg, uint64_t deadline_ns);

/* outq.c */
struct out_item *vbi_outq_new(enum out_kind kind, size_t extra);
void vbi_outq_append(struct vb_conn *c, struct out_item *it);
/* Drop the queued control messages (a connection was lost). */
void vbi_outq_drop_control(struct vb_conn *c);
void vbi_outq_free_all(struct vb_conn *c);
/* A Subscribe for every live subscription, at the head of the queue. */
int vbi_outq_resubscribe(struct vb_conn *c);
/* Send what the queue holds, in order, as far as the transport takes. */
void vbi_outq_pump(struct vb_conn *c);
/*
 * vbi_outq_ctrl() - send control message @m to the broker in order with
 * what is queued: now if nothing waits and the transport takes it, else
 * packed and queued (dropped if the connection is lost, as a Subscribe).
 * VB_OK, VB_ESTATE (not open), VB_ENOMEM or VB_EMSGSIZE.
 */
int vbi_outq_ctrl(struct vb_conn *c, const Verbus__Control *m);
/* An OUT_CTRL item holding @m packed, or NULL (no memory, too large). */
struct out_item *vbi_outq_ctrl_item(const Verbus__Control *m);
int vbi_outq_publish(struct vb_conn *c, const char *subject, const char *reply,
		     const void *data, size_t size);
/* An HMSG's payload at @p: the block's length (little endian), the block
 * of the @n headers at @h (@blk bytes, checked), the @size data bytes. */
void vbi_outq_hmsg_fill(uint8_t *p, const struct vb_header *h, size_t n,
			size_t blk, const void *data, size_t size);
/* vbi_outq_publish() with the @n headers at @h (n > 0: an HMSG frame). */
int vbi_outq_publish_hdr(struct vb_conn *c, const char *subject,
			 const char *reply, const struct vb_header *h, size_t n,
			 const void *data, size_t size);

/* subs.c */
struct vb_sub *vbi_subs_find(struct vb_conn *c, uint32_t sid);
/* A new subscription (@cb NULL: synchronous), sent if open. */
int vbi_subs_create(struct vb_conn *c, const char *pattern, const char *queue,
		    unsigned flags, vb_msg_cb cb, void *arg,
		    struct vb_sub **out);
void vbi_subs_free(struct vb_sub *s);
/* Free @s if it is unsubscribed and nothing runs for it any more. */
void vbi_subs_settle(struct vb_sub *s);
/* Take @s out of the table; freed now, or when its callback returns (a
 * synchronous one: ended, freed by vb_unsubscribe()). */
void vbi_subs_remove(struct vb_sub *s);
/* The transport's message callback. */
void vbi_subs_deliver(struct vbi_conn *vc, const struct vbi_frame_view *v,
		      void *arg);
/* vbi_subs_deliver() past direct mode's fences: deliver @v (on @vc, the
 * broker connection or a direct one) now. */
void vbi_subs_deliver_now(struct vb_conn *c, struct vbi_conn *vc,
			  const struct vbi_frame_view *v);
/* Free every subscription and every message queued or held (vb_close,
 * before the transport contexts go). */
void vbi_subs_free_all(struct vb_conn *c);
/* Give back @h's bytes (its frame reference, or its copy) and free it. */
void vbi_msg_free(struct held_msg *h);
/* Copy @h's bytes out of the ring and release its frame (a no-op for a
 * copy).  Returns VB_OK or VB_ENOMEM (@h unchanged). */
int vbi_msg_copy_out(struct held_msg *h);
/* Deliver the large message @h (on the stack; its lbuf the delivery's
 * reference, which this gives back) to @s, counted already at its FIRST
 * chunk (stream.c): as any message from there on.  @s may be freed when
 * it returns. */
void vbi_subs_deliver_large(struct vb_conn *c, struct vb_sub *s,
			    struct held_msg *h);

/* stream.c */
/* A CHUNK frame @v arrived on @vc (the transport's message callback
 * passes it on): taken, and its frame released. */
void vbi_stream_chunk(struct vb_conn *c, struct vbi_conn *vc,
		      const struct vbi_frame_view *v);
/* Whether a message of @topic_len + @size bytes that is too large for one
 * frame may go as a stream on the open connection. */
bool vbi_stream_fits(struct vb_conn *c, size_t topic_len, size_t size);
/* Send the queued publish @it as a stream of chunks, from where it
 * stopped: VB_OK once its last chunk is staged, VB_EAGAIN with the rest
 * to go (no credit, or the connection going), or VB_EMSGSIZE (not sent:
 * the broker takes no stream that large). */
int vbi_stream_send(struct vb_conn *c, struct out_item *it);
/* The connection was lost: the partial messages go with it (counted as
 * aborted). */
void vbi_stream_lost(struct vb_conn *c);

/* syncsub.c */
/* Queue the delivery @h (on the stack) for vb_next_msg(); on failure the
 * caller releases it.  Returns VB_OK or VB_ENOMEM. */
int vbi_syncsub_enqueue(struct vb_sub *s, const struct held_msg *h);
/* Before a delivery of @v on @vc: copy queued messages out of the ring
 * where they would hold more than half of it (or an older ring). */
void vbi_syncsub_relieve(struct vb_conn *c, const struct vbi_conn *vc,
			 const struct vbi_frame_view *v);
/* Take @h out of c->pinned (a queued message leaving the queue). */
void vbi_syncsub_unpin(struct vb_conn *c, struct held_msg *h);
/* Wake the threads asleep in vb_next_msg() on @s, or on every
 * subscription of @c (closed for good). */
void vbi_syncsub_wake(struct vb_sub *s);
void vbi_syncsub_wake_all(struct vb_conn *c);

/* drain.c */
/* Finish what the Pongs and deadlines end; from every process(), before
 * the queue is pumped. */
void vbi_drain_step(struct vb_conn *c);
/* The nearest drain deadline, or 0. */
uint64_t vbi_drain_next_deadline(const struct vb_conn *c);
/* Whether @s's drain (or its connection's) is past its deadline: its
 * deliveries are dropped from then on (counted as orphans). */
bool vbi_drain_expired(struct vb_sub *s);
/* @s leaves the table otherwise (vb_unsubscribe, its limit, a refusal):
 * its drain ends with it, quietly. */
void vbi_drain_sub_gone(struct vb_sub *s);
/* vb_close(): forget every drain. */
void vbi_drain_free_all(struct vb_conn *c);

/* diag.c */
/* Queue a Ping (timed for st.rtt_ns) and pump; its id, or 0 (no memory).
 * _ex: with Ping.wait_direct (a drain's, in direct mode). */
uint64_t vbi_diag_ping(struct vb_conn *c);
uint64_t vbi_diag_ping_ex(struct vb_conn *c, bool wait_direct);
/* A Pong arrived. */
void vbi_diag_pong(struct vb_conn *c, uint64_t id);
/* A connection opened: what it says of its server. */
void vbi_diag_opened(struct vb_conn *c);
/* Load vb_opts.log into c->log: VB_OK or VB_EINVAL (a bad level). */
int vbi_diag_log_load(struct vb_conn *c);

/* lameduck.c */
/* A LameDuck from the broker of the open connection. */
void vbi_lameduck_on(struct vb_conn *c, const Verbus__LameDuck *ld);
/* A Pong @id arrived: the end of a move's barrier? */
void vbi_lameduck_pong(struct vb_conn *c, uint64_t id);

/* inbox.c */
/*
 * vbi_inbox_init() - draw @c's inbox secret and set c->inbox to the inbox
 * it proves, "_INBOX.<id>": id the first 8 bytes of the secret's SHA-256
 * in hex.  Returns VB_OK or VB_ESYS (no randomness, no SHA-256).
 */
int vbi_inbox_init(struct vb_conn *c);
/* vbi_inbox_id() - the inbox id (16 hex digits and a NUL) of @secret. */
int vbi_inbox_id(const uint8_t *secret, size_t len, char id[17]);

/* request.c */
/* Expire the requests due at @now_ns, or @all of them (VB_ECLOSED). */
void vbi_request_expire(struct vb_conn *c, uint64_t now_ns, bool all);
uint64_t vbi_request_next_deadline(const struct vb_conn *c);
/*
 * vbi_request_refused() - the broker refused the message whose reply
 * subject is @reply, or found nobody to answer it (@err): if that is one
 * of our requests, it ends now with @err; returns whether it was.
 */
bool vbi_request_refused(struct vb_conn *c, const char *reply, int err);
void vbi_request_free_all(struct vb_conn *c);

/* Lock and unlock the connection if it is a locked one; in between, what
 * the library logs on this thread goes to the connection's vb_opts.log. */
static inline void client_lock(struct vb_conn *c)
{
	if (c->locked)
		pthread_mutex_lock(&c->lock);
	vbi_log_push(&c->log);
}

static inline void client_unlock(struct vb_conn *c)
{
	vbi_log_pop();
	if (c->locked)
		pthread_mutex_unlock(&c->lock);
}

#endif /* VERBUS_CLIENTS_LIB_CLIENT_H */
