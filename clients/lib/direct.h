/*
 * direct.h - libverbus's side of direct mode (docs/PROTOCOL.md, "Direct
 * mode"): publishers that RDMA-WRITE straight into their subscribers'
 * rings, the broker granting each path.
 *
 *   direct_sub.c  the subscriber: its listener for direct publishers (in
 *                 the transport context of its broker connection), the
 *                 DirectListen/DirectKey exchange, each direct connection
 *                 in checked against its grants (connect grant at the
 *                 Hello, a subject grant before any frame on a subject),
 *                 the fences that keep each publisher's order;
 *   direct_pub.c  the publisher (VB_OPT_DIRECT): DirectQuery per subject,
 *                 the answers cached per subject with the broker's
 *                 generation, one direct connection per subscriber
 *                 connection, DirectSwitch on once open and granted, off
 *                 when a path goes, the messages written to each.
 *
 * struct vbi_direct hangs off a vb_conn (c->dir), made at the first direct
 * subscription or, with VB_OPT_DIRECT, at vb_connect; NULL otherwise, so
 * that a connection that never uses direct mode pays one pointer test.
 *
 * Threading: as client.h: every function expects the connection's lock
 * held (a locked connection); the transport's callbacks run inside
 * vb_process() on the thread that holds it.
 */
#ifndef VERBUS_CLIENTS_LIB_DIRECT_H
#define VERBUS_CLIENTS_LIB_DIRECT_H

#include "core/hash.h"
#include "core/header.h"
#include "proto/codec.h"
#include "transport/transport.h"

#include <stdbool.h>
#include <stdint.h>

struct vb_conn;
struct vb_sub;

/* Direct peers (connections in plus out) one vb_conn keeps at most, by
 * default (vb_opts.direct_peers_max). */
#define VBI_DIRECT_PEERS_DEFAULT 64u
/* Connect-grant nonces a subscriber remembers (until they expire): past
 * this, a Hello is refused until some expire. */
#define VBI_DIRECT_NONCES_MAX 4096u
/* Subject grants one direct connection in may hold. */
#define VBI_DIRECT_GRANTS_MAX 4096u
/* A barrier waits this long at most without progress: from its fence, or
 * its direct connection's last frame, or that connection's close (the
 * publisher's resends come within round trips of its noticing; none comes
 * if it is gone and the broker could not tell, and a publisher whose
 * switch off names frames it never writes must not hold the broker's
 * deliveries for good): then what it holds goes, and the frames never
 * seen are lost or come late. */
#define VBI_DIRECT_RESEND_WAIT_NS (10ull * 1000000000ull)
/* A closed direct connection in whose frames wait for their fence is
 * kept this long at most (the fence comes within round trips; none comes
 * if the publisher lost its broker connection before its switch got
 * there): then they are dropped, with a warning. */
#define VBI_DIRECT_ZOMBIE_NS (30ull * 1000000000ull)
/* Switches of one publisher whose broker fences are awaited, at most. */
#define VBI_DIRECT_MARKS_MAX 64u

/* ---- the subscriber's side (direct_sub.c) ------------------------------ */

struct vbi_din; /* one publisher's direct connection to us */
struct vbi_dnonce; /* a connect grant's nonce, seen */
struct vbi_dhold; /* what waits behind a fence */

/* ---- the publisher's side (direct_pub.c) ------------------------------- */

struct vbi_dsubj; /* a subject's paths, as the broker last answered */
struct vbi_dout; /* our direct connection to one subscriber connection */

struct vbi_direct {
	/* Subscriber. */
	struct vbi_listener *l; /* owned; NULL: not listening */
	char url[VBI_URL_MAX + 1]; /* what DirectListen says */
	uint8_t key[VBI_DIRECT_KEY_LEN]; /* the current broker's DirectKey */
	uint64_t my_id; /* its conn_id; 0: no key yet */
	struct vbi_din *ins; /* by vbi_conn (connections in, open) */
	struct vbi_din *last_in; /* in @ins: the last one found, or NULL */
	/* Closed connections in whose frames wait for their fence (or a
	 * revoke, or VBI_DIRECT_ZOMBIE_NS): not in @ins, whose key a new
	 * connection may reuse. */
	struct vbi_din *zombies;
	bool want_listen; /* a direct subscription was made */
	bool listen_sent; /* DirectListen sent on the current connection */
	struct vbi_dnonce *nonces; /* by nonce */
	/* Behind a DirectFence off: what the broker sends waits (in order,
	 * frames and fences) until the publisher's direct connection has
	 * delivered @barrier_frames, or closed. */
	uint64_t barrier_pub; /* 0: no barrier */
	uint64_t barrier_frames;
	struct vbi_din *barrier_in; /* the connection it waits for */
	/* Lifted at this moment (ns) if nothing moves it before
	 * (VBI_DIRECT_RESEND_WAIT_NS).  Closed short of @barrier_frames,
	 * the publisher's RESENDs (those up to @barrier_frames taken out of
	 * turn) or its resends_done lift it. */
	uint64_t barrier_until;
	struct vbi_dhold *bhead, **btail;

	/* Publisher. */
	struct vbi_dsubj *subjects; /* by subject */
	struct vbi_dsubj *last_subj; /* the last one found, or NULL */
	struct vbi_dout *outs; /* by sub_id */
	uint64_t pub_id; /* our id at the broker (DirectPaths); 0: unknown */
	uint64_t next_query; /* DirectQuery ids */
	unsigned pending; /* subjects with a DirectQuery unanswered */
	unsigned idle; /* douts switched off until those answers are in */

	unsigned npeers; /* connections in and out, now */

	/* Counters (vb_stats, vb_direct_stats). */
	uint64_t msgs_in; /* delivered from direct connections */
	uint64_t msgs_out; /* written on direct connections */
	uint64_t refused; /* connections in refused (bad grant, limit) */
	uint64_t dropped; /* connections in closed for a bad frame/grant */
	uint64_t paths_open; /* now: direct connections out, switched on */
	uint64_t paths_failed; /* direct connections out that failed */
	uint64_t resent; /* frames of failed ones sent through the broker */
	uint64_t resent_in; /* such frames delivered (subscriber) */
	uint64_t resent_dup; /* such frames dropped: taken directly */
	/* Frames of failed ones that could not go again (too large for the
	 * broker, no memory, or queued when the broker connection went). */
	uint64_t resends_lost;
	/* Fan-out bytes of closed douts (vbi_direct_pub_fanout adds the
	 * open ones'): gathered from another's staging, copied again. */
	uint64_t fan_gathered, fan_copied;
	/* Fault injection for tests (VERBUS_TEST_DIRECT_CUT=N in the
	 * environment, read once): each direct connection in is closed
	 * abruptly after every N frames it delivered, as a cut link would
	 * end it; 0: never. */
	uint64_t cut_every;
};

/* direct_sub.c */

/*
 * vbi_direct_get() - c->dir, made if it is NULL.  VB_OK or VB_ENOMEM.
 */
int vbi_direct_get(struct vb_conn *c, struct vbi_direct **out);

/*
 * vbi_direct_sub_listen() - a direct subscription is being made (or the
 * connection opened with some): listen for direct publishers if not yet
 * (on vb_opts.direct_listen, else the address of the broker connection's
 * own end), and queue a DirectListen if the broker has not had one on
 * this connection.  VB_OK, or the listener's error (the subscription is
 * then refused: VB_EUNREACH, VB_ESYS...).
 */
int vbi_direct_sub_listen(struct vb_conn *c);

/* A DirectListen item for the head of the queue at an open (outq.c's
 * resubscribe), or NULL (not listening, or no memory: then the direct
 * subscriptions are refused by the broker, and say so). */
struct out_item *vbi_direct_listen_item(struct vb_conn *c);

/* The broker's DirectKey, DirectFence and DirectRevoke. */
void vbi_direct_on_key(struct vb_conn *c, const Verbus__DirectKey *k);
void vbi_direct_on_fence(struct vb_conn *c, const Verbus__DirectFence *f);
void vbi_direct_on_revoke(struct vb_conn *c, const Verbus__DirectRevoke *r);

/*
 * vbi_direct_barrier() - a frame @v arrived from the broker on @vc: true if
 * a barrier holds it (taken: delivered later, in order), false to deliver
 * it now.  Inline for the brokered path: one test when not in direct mode.
 */
bool vbi_direct_hold_broker(struct vb_conn *c, struct vbi_conn *vc,
			    const struct vbi_frame_view *v);
static inline bool vbi_direct_barrier(struct vb_conn *c, struct vbi_conn *vc,
				      const struct vbi_frame_view *v,
				      const struct vbi_direct *d)
{
	return d && d->barrier_pub && vbi_direct_hold_broker(c, vc, v);
}

/* A RESEND frame @v from the broker (core/resend.h): a frame of a direct
 * connection that failed, delivered unless that connection had delivered
 * it (its number at most what it took); taken (released). */
void vbi_direct_on_resend(struct vb_conn *c, struct vbi_conn *vc,
			  const struct vbi_frame_view *v);

/* The broker's Pong @id came while a barrier holds what the broker sends:
 * true if it waits behind it (taken at the lift, in order), false to take
 * it now (no memory: order gives way). */
bool vbi_direct_hold_pong(struct vb_conn *c, uint64_t id);

/* The earliest moment vbi_direct_expire() has something to do (a closed
 * connection in to drop), or 0; and doing it, at @now. */
uint64_t vbi_direct_next_deadline(const struct vb_conn *c);
void vbi_direct_expire(struct vb_conn *c, uint64_t now);

/* Registered bytes the direct connections hold now (vb_stats.direct_mem):
 * vbi_direct_sub_mem() those in, vbi_direct_pub_mem() those out. */
uint64_t vbi_direct_sub_mem(const struct vb_conn *c);
uint64_t vbi_direct_pub_mem(const struct vb_conn *c);
/* vbi_direct_pub_fanout() - the fan-out's bytes so far (vb_stats). */
void vbi_direct_pub_fanout(const struct vb_conn *c, uint64_t *gathered,
			   uint64_t *copied);
static inline uint64_t vbi_direct_mem(const struct vb_conn *c)
{
	return vbi_direct_sub_mem(c) + vbi_direct_pub_mem(c);
}

/* The broker connection was lost: the key goes with it (a new one comes
 * at the next open); the connections in stay. */
void vbi_direct_lost(struct vb_conn *c);

/* vb_close(): every direct connection closed, the listener too, all
 * freed (before the transport contexts go). */
void vbi_direct_free(struct vb_conn *c);

/* direct_pub.c */

/*
 * vbi_direct_publish() - with VB_OPT_DIRECT, a message is being published:
 * its topic in c->topic (@tlen bytes, the subject its first @slen), its
 * payload the @size bytes at @data, after the @n headers at @h (@blk
 * bytes encoded; n 0: a plain MSG).  Written now to every switched-on
 * path of the subject (one frame per sid, copied into each direct
 * connection's staging), the broker asked for paths if the subject has
 * none current.  Returns true if the broker needs no copy (every path is
 * switched on and the broker said it has no other interest: the caller
 * counts it as published and is done), false if the caller publishes it
 * through the broker as usual (it always may: the broker skips the
 * switched-on subscribers).  A message that cannot go direct (larger than
 * a direct frame, a direct connection out of room past its queue) first
 * switches the paths concerned off, so that the broker carries it, in
 * order.
 */
bool vbi_direct_publish(struct vb_conn *c, size_t slen, int tlen,
			const struct vb_header *h, size_t n, size_t blk,
			const void *data, size_t size);

/* vb_reserve() with VB_OPT_DIRECT, before the room is taken: the paths of
 * the subject (the first @slen of the @tlen bytes in c->topic) that could
 * not take a message of @size payload bytes (larger than their subscriber
 * takes, or their queue full) are switched off now, ahead of it: the
 * commit can put nothing before the reserved message. */
void vbi_direct_reserve(struct vb_conn *c, size_t slen, int tlen, size_t size);

/* vb_commit() of a reservation with VB_OPT_DIRECT: the committed message
 * (its topic @tlen bytes at @topic, its payload @size at @payload, in the
 * broker connection's staging, not yet posted) written to the switched-on
 * paths too; the broker always gets it. */
void vbi_direct_publish_reserved(struct vb_conn *c, const char *topic, int tlen,
				 const void *payload, size_t size);

/* Whether every direct connection out has handed all it was given to the
 * transport (vb_flush() waits for it too). */
bool vbi_direct_pub_drained(struct vb_conn *c);

/* The broker connection was lost, or vb_close(): the publisher's side
 * (direct_pub.c) ends its paths (their grants named that connection). */
void vbi_direct_pub_lost(struct vb_conn *c);
void vbi_direct_pub_free(struct vb_conn *c);

/* The broker's DirectPaths and DirectStale. */
void vbi_direct_on_paths(struct vb_conn *c, const Verbus__DirectPaths *p);
void vbi_direct_on_stale(struct vb_conn *c, const Verbus__DirectStale *s);

#endif /* VERBUS_CLIENTS_LIB_DIRECT_H */
