/*
 * transport.h - connections that move frames between two processes.
 *
 * The broker and the client library see only this header.  A transport is a
 * `static const struct vbi_transport_ops` registered under a URL scheme
 * ("rdma": verbs and rdma_cm, transport/rdma*.c; "tcp": stream sockets,
 * transport/tcp.c; both under the session protocol of
 * transport/session.h); callers pass
 * the scheme of the URL they were given (core/url.h) and never name a
 * transport, and the functions below dispatch through its table, so a second
 * transport can be added without touching core/, the daemon or the library.
 *
 * Model.  A struct vbi_tp owns one event loop's worth of connections: one
 * file descriptor (vbi_tp_fd) becomes readable when any of them needs
 * attention, and vbi_tp_progress() does the pending work without blocking
 * (or waits up to a timeout).  Every callback runs inside vbi_tp_progress(),
 * on the calling thread.  A vbi_tp and everything created from it must be
 * used from one thread at a time; the caller serialises.
 *
 * Data.  Each side owns a receive ring registered once at connection
 * set-up; the peer RDMA-WRITEs frames into it (core/frame.h, core/ring.h)
 * and the immediate says how many bytes landed.  vbi_conn_send() copies a
 * message into a registered staging area; vbi_conn_reserve()/commit() let
 * the caller build it there in place.  Messages queued together leave as
 * one RDMA WRITE when vbi_conn_flush() runs (explicitly, or at the end of
 * every vbi_tp_progress()).  Received messages are handed to the message
 * callback as zero-copy views into the ring, valid until vbi_conn_release().
 *
 * Flow control.  A sender never writes more than the receiver has freed:
 * when ring space or RECV credits run out, send/reserve return VB_EAGAIN
 * and the writable callback fires once credits come back.  Nothing is
 * dropped.
 */
#ifndef VERBUS_TRANSPORT_TRANSPORT_H
#define VERBUS_TRANSPORT_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "core/frame.h"
#include "proto/codec.h"

struct vbi_tp;
struct vbi_conn;
struct vbi_listener;

/* A visitor of frames (vbi_conn_unacked()): 0 to go on. */
typedef int (*vbi_frame_fn)(void *arg, const struct vbi_frame_view *v);

/* Connection parameters; zero fields take the defaults in brackets. */
struct vbi_conn_opts {
	const char *name; /* for logs and the Hello ["verbus"] */
	uint32_t ring_size; /* our receive ring, a power of two [1 MiB] */
	uint32_t max_msg; /* largest topic + payload we accept [64 KiB] */
	/* Largest message we take as a stream of CHUNK frames (core/chunk.h),
	 * told to the peer in the handshake; 0: none above max_msg [0]. */
	uint32_t max_payload;
	uint32_t recv_depth; /* RECVs kept posted [128] */
	int busy_poll; /* 1: progress() never sleeps on the fd and reads the
			* CQ every turn; the CQ is never armed, so
			* completions do not make the fd readable */
	uint32_t max_peer_ring; /* refuse a peer ring above this (we mirror
				 * it in registered memory) [VBI_RING_MAX] */
	const char *source; /* connect: local address to bind (host K) */
	int timeout_ms; /* connect: give up after [10000] */
	/* connect: sent in the Hello, opaque here (the broker decodes a
	 * Verbus__Credentials); copied at connect. */
	const void *credentials;
	size_t credentials_len; /* at most VBI_CRED_MAX (proto/codec.h) */
	/* 1: a closed connection's registered buffers are kept (per device,
	 * a few) for the next connection of this tp, which then registers
	 * nothing: a client that reconnects.  Never on a server: a kept ring
	 * stays remotely writable through its rkey. */
	int keep_memory;
	/* 1: the peer's rkey reaches our ring only, and only through this
	 * connection's QP: a type-2 memory window bound to the QP over the
	 * ring, the ring's region itself without remote rights (a server
	 * binds it before its Welcome, a client before its Hello: broker
	 * routes use it on both ends).  On a device without type-2 windows: a warning, and
	 * the region's rkey as without it. */
	int isolate;
	/* A server's accepted connections: closed if the handshake (Hello,
	 * authorization, Welcome) has not completed within this, counted in
	 * vbi_tp_stats.handshake_timeouts [0: no limit]. */
	uint32_t handshake_timeout_ms;
	/* tls (PEM file names; copied where kept): a listener's certificate
	 * and key (required), or a client's own for a server that asks. */
	const char *tls_cert;
	const char *tls_key;
	/* tls: a listener with one asks every client for a certificate this
	 * CA signed; a client verifies the server by it [the system's CAs]. */
	const char *tls_ca;
	/* tls, connect: the name (DNS or IP) the server's certificate must
	 * carry [the address connected to]. */
	const char *tls_server_name;
};

/* Why a connection closed: an enum vb_err, and a human-readable reason. */
struct vbi_close_info {
	int err; /* VB_ECLOSED: orderly; anything else: failure */
	char reason[256]; /* lowercase, for logs (room for memlock.h's) */
};

/*
 * Callbacks.  All run inside vbi_tp_progress() on its thread, and may call
 * any vbi_conn_* function of the same tp, except vbi_tp_destroy().
 */
struct vbi_conn_cbs {
	/*
	 * Server only, optional: a connection request arrived; nothing is
	 * allocated for it yet but @c itself (vbi_conn_peer_name() works).
	 * Return VB_OK to accept it, or refuse it at rdma_cm: VB_ENOSPC (too
	 * many connections), VB_EAGAIN (too many handshakes from its
	 * address), VB_ESTATE (shutting down); the reject carries the reason
	 * (PROTOCOL.md), and no other callback ever runs for @c.  An accepted
	 * connection that never opens still gets closed.
	 */
	int (*accept)(struct vbi_conn *c, void *arg);
	/*
	 * Server only, optional: a client's Hello arrived with @cred (the
	 * Hello's credentials, @len bytes, possibly 0).  Return VB_OK to
	 * admit it, or an error (VB_EACCES) to turn it away: it gets an
	 * Error with that code, never our ring, and closed follows (open
	 * never runs).
	 */
	int (*authorize)(struct vbi_conn *c, const void *cred, size_t len,
			 void *arg);
	/* The handshake completed: the connection can send. */
	void (*open)(struct vbi_conn *c, void *arg);
	/*
	 * A message arrived.  @v points into the receive ring and stays valid
	 * until vbi_conn_release(c, v) (which may be called later, in any
	 * order); until then its space is not given back to the sender.
	 */
	void (*message)(struct vbi_conn *c, const struct vbi_frame_view *v,
			void *arg);
	/* Credits came back after a send returned VB_EAGAIN. */
	void (*writable)(struct vbi_conn *c, void *arg);
	/*
	 * A control message the transport does not handle itself (anything
	 * but the handshake and credit returns) arrived on an open
	 * connection.  @m is valid during the call only.
	 */
	void (*control)(struct vbi_conn *c, const Verbus__Control *m,
			void *arg);
	/*
	 * The connection is gone (peer closed, peer died, protocol error,
	 * timeout, or vbi_conn_close()).  Called exactly once; afterwards
	 * the only calls allowed on @c are vbi_conn_release() of views still
	 * referenced (delivered, held or being forwarded): @c's memory stays
	 * until the last of them is released, then the transport frees it.
	 */
	void (*closed)(struct vbi_conn *c, const struct vbi_close_info *why,
		       void *arg);
};

/* Counters: monotonic, per connection, readable at any time. */
struct vbi_conn_stats {
	uint64_t msgs_out, bytes_out; /* messages queued, their payload */
	uint64_t msgs_in, bytes_in; /* messages delivered, their payload */
	uint64_t writes; /* RDMA WRITE_WITH_IMMs posted */
	uint64_t credit_returns; /* credit-only messages sent */
	uint64_t credit_waits; /* sends refused with VB_EAGAIN */
	uint64_t kicks; /* zero-length writes posted to complete forwards */
	uint64_t bytes_copied; /* topic + payload bytes send() or a
				* cross-device forward() copied */
	uint64_t bytes_forwarded; /* topic + payload bytes forward() queued */
	uint64_t fwd_pending; /* now: forwards queued, not yet completed */
	uint64_t refs_out; /* now: our frames held or being forwarded */
	/* Grows whenever the peer makes room for what we send: it frees
	 * ring space or returns RECV credits (the completion of our own
	 * writes does not count: the peer's device acks them whatever its
	 * application does).  A caller watching it while tx_waiting says
	 * something waits can tell a peer that takes nothing (withholding
	 * credit, say) from one that is merely busy. */
	uint64_t progress;
	uint64_t tx_waiting; /* now: bytes staged and not yet posted */
	uint32_t recv_credits; /* now: RECVs of the peer we may still use */
	uint32_t ring_size; /* our receive ring */
	uint32_t peer_ring; /* the peer's receive ring (before open, on a
			     * server: the size its Hello asks for) */
	uint32_t peer_max_msg; /* largest topic + payload it takes (0 ditto) */
	uint32_t peer_max_payload; /* largest large message it takes; 0: none */
	/* Frame bytes staged for the peer since the connection opened, and
	 * of those handed to the transport (a control message sent now
	 * arrives after all of these): monotonic, so that a caller can mark
	 * a place in the stream and wait until it has been posted. */
	uint64_t tx_staged, tx_posted;
	/* Client: the server's version from its Welcome (escaped, as a log
	 * line would have it); "" if it said none or before open. */
	char peer_version[VBI_VERSION_MAX + 1];
};

/* Process-wide counters of the transport. */
struct vbi_tp_stats {
	uint64_t mr_registered; /* ibv_reg_mr calls so far */
	uint64_t mr_deregistered; /* ibv_dereg_mr calls so far */
	uint64_t conns_open; /* connections alive now */
	uint64_t handshake_timeouts; /* accepted, closed for no handshake */
	uint64_t mr_bytes; /* bytes in memory regions registered now */
};

/* The operations a transport provides; see the vbi_ functions below. */
struct vbi_transport_ops {
	const char *scheme; /* URL scheme: "rdma" */
	int (*tp_create)(struct vbi_tp **out);
	void (*tp_destroy)(struct vbi_tp *tp);
	int (*tp_fd)(struct vbi_tp *tp);
	int (*tp_progress)(struct vbi_tp *tp, int timeout_ms);
	int (*tp_spin)(struct vbi_tp *tp, uint64_t budget_ns);
	int (*listen)(struct vbi_tp *tp, const char *addr, const char *port,
		      const struct vbi_conn_opts *o,
		      const struct vbi_conn_cbs *cbs, void *arg,
		      struct vbi_listener **out);
	void (*listener_close)(struct vbi_listener *l);
	int (*connect)(struct vbi_tp *tp, const char *addr, const char *port,
		       const struct vbi_conn_opts *o,
		       const struct vbi_conn_cbs *cbs, void *arg,
		       struct vbi_conn **out);
	int (*send)(struct vbi_conn *c, const void *topic, uint16_t topic_len,
		    const void *payload, uint32_t payload_len);
	int (*reserve)(struct vbi_conn *c, uint8_t kind, uint16_t topic_len,
		       uint32_t payload_len, void **topic, void **payload);
	int (*commit)(struct vbi_conn *c);
	int (*flush)(struct vbi_conn *c);
	int (*release)(struct vbi_conn *c, const struct vbi_frame_view *v);
	int (*hold)(struct vbi_conn *c, const struct vbi_frame_view *v);
	int (*forward)(struct vbi_conn *dst, struct vbi_conn *src,
		       const struct vbi_frame_view *v, uint32_t sid);
	int (*fanout)(struct vbi_conn *dst, struct vbi_conn *src, uint32_t sid);
	int (*unpin)(struct vbi_conn *c);
	int (*unacked)(struct vbi_conn *c, vbi_frame_fn fn, void *arg);
	int (*send_ctrl)(struct vbi_conn *c, const Verbus__Control *m);
	int (*peer_name)(const struct vbi_conn *c, char *buf, size_t len);
	int (*local_name)(const struct vbi_conn *c, char *buf, size_t len);
	int (*listener_name)(const struct vbi_listener *l, char *buf,
			     size_t len);
	const char *(*name)(const struct vbi_conn *c);
	const void *(*credentials)(const struct vbi_conn *c, size_t *len);
	void (*pause)(struct vbi_conn *c, int paused);
	void (*close)(struct vbi_conn *c);
	void (*close_error)(struct vbi_conn *c, int err, const char *reason);
	void (*refusal)(struct vbi_conn *c, const char *reason);
	void (*stats)(const struct vbi_conn *c, struct vbi_conn_stats *s);
	void (*set_arg)(struct vbi_conn *c, void *arg);
	void (*tp_stats)(struct vbi_tp_stats *s);
};

/* The RDMA transport (transport/rdma.h). */
extern const struct vbi_transport_ops vbi_rdma_ops;
/* The TCP transport (transport/tcp.c). */
extern const struct vbi_transport_ops vbi_tcp_ops;
/* TLS over TCP (tcp.c with tls.c): "tls". */
extern const struct vbi_transport_ops vbi_tls_ops;

/* Busy-polling, the turns of a spin per look at the fds (rdma_cm events,
 * and in verbusd's loop signals and the monitor): the completion queues
 * are read every turn, the fds with a system call one turn in this many. */
#define VBI_BUSY_LOOK_EVERY 64u

/*
 * vbi_transport_find() - the transport registered under the URL scheme
 * @scheme (lowercase, as core/url.h stores it), or NULL if this build has
 * none (or @scheme is NULL).  The table is static: any thread, never
 * blocks.
 */
const struct vbi_transport_ops *vbi_transport_find(const char *scheme);

/*
 * vbi_transport_schemes() - the schemes this build has, in registration
 * order, separated by ", " ("rdma"), into @buf (@len bytes, NUL-terminated).
 * Returns VB_OK, or VB_ENOSPC if they do not fit (@buf then holds what did,
 * terminated, if @len > 0).  Any thread, never blocks.
 */
int vbi_transport_schemes(char *buf, size_t len);

/*
 * vbi_transport_check() - VB_OK if a transport serves @scheme; else
 * VB_EINVAL with `unsupported scheme "foo" (this build has: rdma)` in @err
 * (@errlen bytes, NUL-terminated, cut if need be).  The one wording of that
 * refusal, for the library and the daemon.  Any thread, never blocks.
 */
int vbi_transport_check(const char *scheme, char *err, size_t errlen);

/*
 * vbi_tp_create() - a transport context for the URL scheme @scheme
 * ("rdma").  Returns VB_OK, VB_EINVAL (no transport for @scheme), VB_ENOMEM
 * or VB_ESYS.
 */
int vbi_tp_create(const char *scheme, struct vbi_tp **out);

/* vbi_tp_destroy() - close every connection and listener, free all. */
void vbi_tp_destroy(struct vbi_tp *tp);

/* vbi_tp_fd() - readable when vbi_tp_progress() has work. */
int vbi_tp_fd(struct vbi_tp *tp);

/*
 * vbi_tp_progress() - handle connection events, completions and arrived
 * messages, then flush what callbacks queued.  Waits up to @timeout_ms for
 * something to happen (0: never waits; -1: forever).  Returns the number of
 * events handled (>= 0) or a negative vb_err.
 */
int vbi_tp_progress(struct vbi_tp *tp, int timeout_ms);

/*
 * vbi_tp_spin() - adaptive polling, for a caller about to sleep on the fd:
 * poll the completion queues without system calls until something arrives
 * or @budget_ns passes (0: one pass), running callbacks as
 * vbi_tp_progress() does.  Under load the next message usually comes
 * within a short spin, which saves the sleep and wake-up (and the
 * completion channel's read and re-arm) per message; idle, it costs
 * @budget_ns of CPU before each sleep.  Returns the completions handled.
 * Connection events (rdma_cm) are left to vbi_tp_progress().
 */
int vbi_tp_spin(struct vbi_tp *tp, uint64_t budget_ns);

/*
 * vbi_tp_listen() - accept connections on @addr:@port.  Each accepted
 * connection gets @cbs and @arg (vbi_conn_set_arg() changes the arg, e.g.
 * from the open callback).
 */
int vbi_tp_listen(struct vbi_tp *tp, const char *addr, const char *port,
		  const struct vbi_conn_opts *o, const struct vbi_conn_cbs *cbs,
		  void *arg, struct vbi_listener **out);

/* vbi_listener_close() - stop accepting; open connections stay. */
void vbi_listener_close(struct vbi_listener *l);

/*
 * vbi_tp_connect() - start connecting to @addr:@port (from o->source if
 * set).  Returns at once; open or closed is called later.
 */
int vbi_tp_connect(struct vbi_tp *tp, const char *addr, const char *port,
		   const struct vbi_conn_opts *o,
		   const struct vbi_conn_cbs *cbs, void *arg,
		   struct vbi_conn **out);

/*
 * vbi_conn_send() - queue one message, copying topic and payload into
 * registered memory.  Returns VB_OK, VB_EAGAIN (no credit: wait for the
 * writable callback), VB_EMSGSIZE (larger than the peer accepts), or
 * VB_ESTATE (not open).  The caller keeps its buffers.
 */
int vbi_conn_send(struct vbi_conn *c, const void *topic, uint16_t topic_len,
		  const void *payload, uint32_t payload_len);

/*
 * vbi_conn_reserve() - room for one message in registered memory: the
 * caller writes topic_len bytes at *topic and payload_len at *payload, then
 * calls vbi_conn_commit() before any other call on @c.  Errors as send.
 */
int vbi_conn_reserve(struct vbi_conn *c, uint16_t topic_len,
		     uint32_t payload_len, void **topic, void **payload);
int vbi_conn_commit(struct vbi_conn *c);

/*
 * vbi_conn_reserve_kind() - vbi_conn_reserve() for a frame of @kind:
 * VBI_FRAME_MSG; VBI_FRAME_HMSG, whose payload the caller starts with the
 * header block's length and the block (core/frame.h); or VBI_FRAME_CHUNK,
 * whose payload starts with a chunk prefix (core/chunk.h).
 */
int vbi_conn_reserve_kind(struct vbi_conn *c, uint8_t kind, uint16_t topic_len,
			  uint32_t payload_len, void **topic, void **payload);

/* vbi_conn_flush() - post everything queued now (as few writes as can). */
int vbi_conn_flush(struct vbi_conn *c);

/*
 * vbi_conn_release() - drop one reference to a delivered message: the one
 * the delivery gave, or one from vbi_conn_hold().  The space goes back to
 * the sender when no reference and no forward of it remains.  Valid on a
 * closed connection for views it still references.
 */
int vbi_conn_release(struct vbi_conn *c, const struct vbi_frame_view *v);

/*
 * vbi_conn_hold() - one more reference to the delivered message @v (not yet
 * released), dropped by another vbi_conn_release().  It keeps @v's bytes,
 * and @c's memory, valid even after @c closes.  Returns VB_OK or VB_EINVAL.
 */
int vbi_conn_hold(struct vbi_conn *c, const struct vbi_frame_view *v);

/*
 * vbi_conn_forward() - queue the message @v, delivered on @src and still
 * referenced, for delivery to @dst's peer with subscription id @sid.  The
 * header is built in @dst's staging; where @dst's transport can send from
 * @src's receive ring (RDMA: the same device; TCP: always), the topic and
 * payload are gathered from it when the write goes out (no copy), and the
 * forward holds its own reference to @v until the write has completed (the
 * device's completion; the kernel taking the TCP record); otherwise (across
 * devices, from a TCP publisher to an RDMA subscriber, a QP with fewer than
 * 3 gather entries) they are copied into @dst's staging at once (counted in
 * bytes_copied).  @src and @dst may be of different transports.  Either way
 * the caller may release @v at once.  Forwards and sends to one @dst keep
 * their order.
 * Returns VB_OK, VB_EAGAIN (no room at @dst's peer or too many forwards in
 * flight: the writable callback fires later), VB_EMSGSIZE (larger than
 * @dst's peer takes), VB_EINVAL (@v is not a frame @src holds) or
 * VB_ESTATE/VB_ECLOSED (@dst not open).
 */
int vbi_conn_forward(struct vbi_conn *dst, struct vbi_conn *src,
		     const struct vbi_frame_view *v, uint32_t sid);

/*
 * vbi_conn_fanout() - queue, for @dst's peer with subscription id @sid, the
 * message @src last committed (vbi_conn_commit() returned VB_OK, and no
 * reservation since): a publisher's fan-out, one copy for many peers.  The
 * header is built in @dst's staging; where @dst can send from @src's
 * staging (the same transport and, for RDMA, the same device), the topic
 * and payload are gathered from there when the write goes out (no copy),
 * and @src keeps them (its space is not reused) until @dst's peer has freed
 * the frame; otherwise they are copied (bytes_copied).  @dst may be @src.
 * Order and errors as vbi_conn_forward(); VB_EINVAL: @src has no committed
 * message still in its staging.
 */
int vbi_conn_fanout(struct vbi_conn *dst, struct vbi_conn *src, uint32_t sid);

/*
 * vbi_conn_unpin() - stop holding other connections' frames for @c's
 * forwards that wait to be posted (out of credit or room at @c's peer):
 * their topics and payloads are copied into @c's staging, where they wait
 * on, and the references go back to their sources at once.  For a peer
 * that takes nothing, so that it cannot hold a publisher's ring.  Forwards
 * already handed to the device keep theirs until they complete.  Returns
 * how many forwards were copied.
 */
int vbi_conn_unpin(struct vbi_conn *c);

/*
 * vbi_conn_unacked() - @fn(@arg, view) for each message frame @c has
 * staged that its peer has not yet freed in its ring (written or not; not
 * an open reservation), oldest first: what a peer that is still alive may
 * not have taken when the connection fails (direct mode resends them
 * through the broker).  The views point into @c's staging (their @seq our
 * numbering, from 1), valid until @fn returns; @fn returns 0 to go on.
 * Usable until the connection is freed, so in the closed callback too.
 * Returns VB_OK, @fn's non-zero return, VB_ESTATE (no staging: never
 * opened) or VB_EINVAL (@c forwarded frames from other rings: their
 * topics and payloads are not in its staging).
 */
int vbi_conn_unacked(struct vbi_conn *c, vbi_frame_fn fn, void *arg);

/*
 * vbi_conn_send_ctrl() - send control message @m (packed into a registered
 * buffer; the caller keeps @m).  Returns VB_OK, VB_EAGAIN (no credit or
 * buffer: retry after the writable callback), VB_EMSGSIZE, VB_ESTATE.
 */
int vbi_conn_send_ctrl(struct vbi_conn *c, const Verbus__Control *m);

/* vbi_conn_peer_name() - "addr:port" of the peer into @buf (NUL-ended). */
int vbi_conn_peer_name(const struct vbi_conn *c, char *buf, size_t len);

/*
 * vbi_conn_local_name() - our own end of @c, numeric "HOST:PORT" ("[HOST]:
 * PORT" for IPv6), as vbi_conn_peer_name() gives the peer's: the address
 * this host is reached at on that path (a direct subscriber listens there).
 * VB_OK, VB_EINVAL (@len 0) or VB_ESTATE (not bound yet).
 */
int vbi_conn_local_name(const struct vbi_conn *c, char *buf, size_t len);

/*
 * vbi_listener_name() - the address @l is bound to, numeric "HOST:PORT":
 * the port the system chose when it was asked for port "0".  VB_OK,
 * VB_EINVAL (@len 0) or VB_ESYS.
 */
int vbi_listener_name(const struct vbi_listener *l, char *buf, size_t len);

/*
 * vbi_conn_pause() - stop (@paused 1) or restart (0) handing @c's arrived
 * messages to the message callback.  While paused, what arrives stays in
 * the ring unreleased, so the sender runs out of room and sees VB_EAGAIN:
 * backpressure without loss.  Takes effect after the callback running now;
 * messages resume from the next progress().
 */
void vbi_conn_pause(struct vbi_conn *c, int paused);

/* vbi_tp_scheme() - the URL scheme of @tp's transport ("rdma", "tcp"). */
const char *vbi_tp_scheme(const struct vbi_tp *tp);

/* vbi_conn_scheme() - the URL scheme of @c's transport ("rdma", "tcp"). */
const char *vbi_conn_scheme(const struct vbi_conn *c);

/* vbi_conn_name() - the name the client gave in its Hello (on a server),
 * or our own; valid as long as @c. */
const char *vbi_conn_name(const struct vbi_conn *c);

/*
 * vbi_conn_credentials() - the credentials the client sent in its Hello
 * (on a server; *@len 0 if none), or our own; valid as long as @c.
 */
const void *vbi_conn_credentials(const struct vbi_conn *c, size_t *len);

/* vbi_conn_close() - disconnect; closed runs later, from progress(). */
void vbi_conn_close(struct vbi_conn *c);

/*
 * vbi_conn_close_error() - disconnect an open connection with a reason the
 * peer receives: an Error {@err, @reason} goes first, and the connection
 * closes once it has left (at once if it cannot be sent now, or @c is not
 * open).  Nothing more is sent or delivered meanwhile.
 */
void vbi_conn_close_error(struct vbi_conn *c, int err, const char *reason);

/*
 * vbi_conn_refusal() - from an authorize callback about to turn @c away:
 * the reason its Error gives the client (at most VBI_REASON_MAX - 1
 * bytes kept) instead of "not authorized".
 */
void vbi_conn_refusal(struct vbi_conn *c, const char *reason);

/* vbi_conn_stats() - this connection's counters. */
void vbi_conn_stats(const struct vbi_conn *c, struct vbi_conn_stats *s);

/* vbi_conn_set_arg() - the pointer handed to @c's callbacks. */
void vbi_conn_set_arg(struct vbi_conn *c, void *arg);

/*
 * vbi_tp_stats() - the process-wide counters of the transport registered
 * under @scheme (all zero if there is none).  vbi_tp_stats_all() - every
 * transport's, summed: what a broker or library reports, never naming a
 * transport.  Both write all of *@s.  The counters are plain process-wide
 * variables: call these from the thread that drives the transport (or
 * accept a torn read, as a monitoring snapshot may).
 */
void vbi_tp_stats(const char *scheme, struct vbi_tp_stats *s);
void vbi_tp_stats_all(struct vbi_tp_stats *s);

#endif /* VERBUS_TRANSPORT_TRANSPORT_H */
