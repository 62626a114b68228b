/*
 * session.h - the session protocol, the same over every transport.
 *
 * Everything a connection does once bytes can move between its two ends,
 * and nothing about how they move: the handshake (Hello, Welcome, an Error
 * that turns a client away), control messages kept in order with the frames
 * around them (held back while the connection is paused), the receive ring
 * and the staging mirror of the peer's ring (core/ring.h), RECV credits and
 * the acks that return them (core/credit.h), reservations, the reference
 * counts of delivered frames, and the queue of frames forwarded from other
 * connections' rings.  docs/PROTOCOL.md describes the protocol; this module
 * is its one implementation.
 *
 * A transport embeds struct vbi_conn at the start of its own connection
 * object, gives it a struct vbi_sess_ops (how to post a batch of staged
 * frames, send one control message, find memory for the rings), and calls
 * the vbi_sess_ functions below as its events arrive: data landed in the
 * ring, a control message came, a send completed.  Most of its ops-table
 * entries (transport.h) are the vbi_sess_ functions themselves.
 *
 * Threading: as transport.h (one thread per vbi_tp; every callback runs
 * inside vbi_tp_progress()).  Ownership: the transport allocates and frees
 * the struct vbi_conn and the memory ring_mem and stage_mem point to; the
 * session allocates the forward queue and the held control messages, and
 * vbi_sess_free() gives them back.
 */
#ifndef VERBUS_TRANSPORT_SESSION_H
#define VERBUS_TRANSPORT_SESSION_H

#include "transport.h"

#include "core/credit.h"
#include "core/ring.h"
#include "proto/codec.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VBI_SESS_FWD_MAX 1024u /* forwards queued or in flight per conn */
#define VBI_SESS_RING_MIN 4096u /* smallest ring, ours or the peer's */
#define VBI_SESS_BATCH_MAX (256u << 10) /* bytes per write at most */

enum vbi_sess_state {
	VBI_SS_RESOLVING, /* client: finding the peer */
	VBI_SS_CONNECTING, /* transport connection being made */
	VBI_SS_HANDSHAKE, /* connected; waiting for Hello or Welcome */
	VBI_SS_OPEN, /* data may flow */
	VBI_SS_CLOSED, /* failed or closed; the transport frees it */
};

#define VBI_SESS_FANOUT_MAX 1024u /* fan-out pins and borrows per conn */

/* One message queued for forwarding to a connection's peer. */
struct vbi_fwd {
	struct vbi_conn *src; /* whose ring (or staging) holds the body */
	uint64_t start; /* our tx stream position of the frame */
	uint64_t pos; /* the frame's stream position in src's ring */
	uint64_t seq; /* and its seq there */
	uint32_t off; /* its offset in src's ring (or staging) */
	uint32_t span; /* bytes it occupies (both rings) */
	/* A fan-out (vbi_sess_fanout): the body is in src's staging, which a
	 * pin keeps (struct vbi_borrow), not in its ring. */
	bool staged;
};

/* The topic (then payload) bytes of forward @f, in its source's memory. */
#define VBI_FWD_BODY(f)                                                        \
	(((f)->staged ? (f)->src->stage_mem : (f)->src->ring_mem) + (f)->off + \
	 VBI_FRAME_HDR_LEN)

/*
 * A frame of our staging whose topic and payload are another connection's
 * (a fan-out): they stay pinned in @src's staging until our peer has freed
 * the frame, so that until then they can be read again
 * (vbi_sess_unacked), as our own frames can.
 */
struct vbi_borrow {
	struct vbi_conn *src;
	uint64_t start; /* our tx stream position of the frame */
	uint64_t pin; /* its pin at @src (index into src->pins) */
	uint32_t off; /* the body's frame offset in src's staging */
	uint32_t span;
};

/* Frames of our staging that others borrow, by stream position: the space
 * from the oldest is not reused while any is held. */
struct vbi_pin {
	uint64_t pos;
	uint32_t refs;
};

/*
 * What the session needs from the transport under it.  Each is called on
 * the tp's thread, never blocks, and may fail the connection
 * (vbi_sess_fail) on a transport error, which it reports in words.
 */
struct vbi_sess_ops {
	/* Whether one control message can be sent now (a buffer, queue
	 * room); asked before a RECV credit is taken for it. */
	bool (*ctrl_room)(struct vbi_conn *c);
	/* Encode and send @m (the caller keeps it).  Called only after
	 * ctrl_room() said yes.  VB_OK, or an error (nothing was sent). */
	int (*ctrl_post)(struct vbi_conn *c, const Verbus__Control *m);
	/* Whether one more write of staged frames can be posted now. */
	bool (*batch_room)(struct vbi_conn *c);
	/*
	 * Post batch @b: the staged bytes at tx.flushed, written at @b->off
	 * of the peer's ring, with the forwards in [fwd_post, fwd_tail) that
	 * lie in it, whose topics and payloads come from their sources'
	 * rings.  It may cut @b short after a frame (fewer gather entries
	 * than the batch needs); then, before posting, it calls
	 * vbi_sess_stamp_acks(c, b, ack), and it advances fwd_post past the
	 * forwards it carried.  VB_OK or an error (the connection failed).
	 */
	int (*batch_post)(struct vbi_conn *c, struct vbi_ring_batch *b,
			  struct vbi_credit_ack *ack);
	/* Have forwards posted without a completion reported, so that their
	 * sources get their frames back (may do nothing). */
	void (*kick)(struct vbi_conn *c);
	/* Whether @dst can send @src's frames straight from @src's ring
	 * (else a forward copies them into @dst's staging). */
	bool (*can_gather)(const struct vbi_conn *dst,
			   const struct vbi_conn *src);
	/*
	 * Memory for a session: the receive ring of opts.ring_size bytes
	 * (ring_mem), and the control buffers a session needs; on a server,
	 * at the Hello, also whatever must be in force before the Welcome
	 * tells the peer how to reach the ring.  *@what names the part that
	 * failed.
	 */
	int (*setup_session)(struct vbi_conn *c, const char **what);
	/* The staging mirror of the peer's ring, @r->size bytes (stage_mem),
	 * and what the transport keeps of @r (its address, its key).  *@what
	 * names what failed, as for setup_session. */
	int (*setup_stage)(struct vbi_conn *c, const Verbus__RingInfo *r,
			   const char **what);
	/* How the peer reaches our ring (its address and key, our size). */
	void (*ring_info)(struct vbi_conn *c, Verbus__RingInfo *r);
	/* The connection is failing (still connected): disconnect. */
	void (*disconnect)(struct vbi_conn *c);
	/* The transport's name for the connection in log lines, after its
	 * label ("qp 0x1f"), into @buf (NUL-ended). */
	void (*tag)(const struct vbi_conn *c, char *buf, size_t len);
};

/*
 * The transport-neutral connection: the first member of every transport's
 * connection object.
 */
struct vbi_conn {
	const struct vbi_transport_ops *ops; /* first: transport.c dispatch */
	const struct vbi_sess_ops *sops;
	enum vbi_sess_state state;
	bool server;
	/* A server's connection before its Hello is accepted: no ring, and
	 * control buffers for the Hello and one answer only, so that a peer
	 * that never authenticates costs little (vbi_sess_setup). */
	bool preauth;
	bool named; /* server: the peer's Hello named it (name) */
	bool reserved; /* between reserve and commit */
	bool want_writable; /* a send hit VB_EAGAIN */
	bool paused; /* deliver nothing until unpaused (vbi_conn_pause) */
	bool refusing; /* an Error is on its way: close once it has left */
	bool closed_reported; /* the closed callback ran (or never will) */
	uint64_t hs_deadline; /* server: coarse ms to be open by; 0: none */
	uint8_t *ring_mem; /* our receive ring (the transport's memory) */
	uint8_t *stage_mem; /* the mirror of the peer's ring (ditto) */
	struct vbi_ring_rx rx;
	struct vbi_ring_tx tx;
	struct vbi_credit cr;
	uint32_t peer_ring; /* the peer's ring size (0 before open) */
	uint32_t hello_ring; /* server: the ring size its Hello gave */
	char refusal[VBI_REASON_MAX]; /* authorize's reason; "": none */
	uint32_t peer_max_msg; /* largest topic + payload it takes */
	uint32_t peer_max_payload; /* largest large message; 0: none */
	char peer_version[VBI_VERSION_MAX + 1]; /* client: from the Welcome */
	struct vbi_fwd *fwd; /* VBI_SESS_FWD_MAX entries, a ring */
	uint64_t fwd_head; /* completed: head <= sig <= post <= tail */
	uint64_t fwd_sig; /* a completion the transport asked for covers
			   * these (its business: vbi_sess_fwd_complete
			   * keeps it in order) */
	uint64_t fwd_post; /* handed to the transport */
	uint64_t fwd_tail; /* queued */
	uint64_t refs_out; /* references to frames of our ring or staging */
	uint64_t seq; /* last MSG sequence number used */
	/* The reservation (then, once committed, the last frame committed:
	 * what vbi_sess_fanout() copies), its stream position too. */
	size_t res_off, res_span;
	uint64_t res_pos;
	/* Fan-out, both rings of VBI_SESS_FANOUT_MAX made at first use: the
	 * frames of our staging others borrow (oldest first; their holds
	 * count in refs_out), and those of ours borrowing others'. */
	struct vbi_pin *pins;
	uint64_t pin_head, pin_tail;
	bool pin_moved; /* pins gave space back while a sender waited */
	struct vbi_borrow *borrows;
	uint64_t borrow_head, borrow_tail;
	/* Control messages behind held frames, oldest first, each with the
	 * ring position its frames end at (rx.written when it came): it is
	 * handed up once rx.head reaches that, before any later frame. */
	struct vbi_deferred {
		Verbus__Control *m;
		uint64_t at;
	} * deferred;
	unsigned ndeferred;
	struct vbi_conn_opts opts;
	char name[VBI_NAME_MAX + 1];
	uint8_t cred[VBI_CRED_MAX]; /* ours (client) or the peer's (server) */
	size_t cred_len;
	struct vbi_conn_cbs cbs;
	void *arg;
	struct vbi_conn_stats st;
	struct vbi_close_info why;
};

/*
 * vbi_sess_errno() - errno @e as a vb_err: the one translation, which every
 * transport makes at its edge (ECONNRESET and EPIPE mean the peer closed).
 */
int vbi_sess_errno(int e);

struct sockaddr;

/*
 * vbi_sess_addr_name() - @sa (IPv4 or IPv6, its port included) as numeric
 * "HOST:PORT", "[HOST]:PORT" for IPv6, never a name lookup; "?:0" for
 * anything else or NULL.  VB_OK, or VB_EINVAL (@len 0).
 */
int vbi_sess_addr_name(const struct sockaddr *sa, char *buf, size_t len);

/* ---- set-up and teardown (the transport's) ----------------------------- */

/*
 * vbi_sess_opts() - fill the defaults of @o and check it: VB_OK or
 * VB_EINVAL (a ring size that is not a power of two in range, a largest
 * message over half the ring, a RECV depth out of range, credentials over
 * VBI_CRED_MAX).
 */
int vbi_sess_opts(struct vbi_conn_opts *o);

/*
 * vbi_sess_init() - start session @c (zeroed by the caller) with checked
 * options @o, which it copies (the name and credentials too; the source
 * address is not kept).
 */
void vbi_sess_init(struct vbi_conn *c, const struct vbi_transport_ops *ops,
		   const struct vbi_sess_ops *sops,
		   const struct vbi_conn_opts *o,
		   const struct vbi_conn_cbs *cbs, void *arg);

/*
 * vbi_sess_setup() - what carries a session: the forward queue, and the
 * ring and control buffers (sops->setup_session).  A client's at set-up;
 * a server's when its Hello is accepted.  *@what names the part that
 * failed.
 */
int vbi_sess_setup(struct vbi_conn *c, const char **what);

/* vbi_sess_free() - free what the session allocated (half-built too). */
void vbi_sess_free(struct vbi_conn *c);

/*
 * vbi_sess_fail() - the one way a connection dies: record why, log it
 * (unless an orderly close), have the transport disconnect, and mark it
 * closed; the transport reports and frees it later, never under a
 * callback.  Does nothing to a closed connection.
 */
void vbi_sess_fail(struct vbi_conn *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* vbi_sess_label() - how @c is named in log lines: by the name its peer
 * gave in the Hello (escaped), or before that by the peer's address. */
const char *vbi_sess_label(const struct vbi_conn *c, char *buf, size_t len);

/* ---- events from the transport ----------------------------------------- */

/* vbi_sess_established() - the transport connected: a client says Hello. */
void vbi_sess_established(struct vbi_conn *c);

/* vbi_sess_on_ctrl() - one control message of @len bytes arrived.  Frames
 * that arrived before it are handed up first. */
void vbi_sess_on_ctrl(struct vbi_conn *c, const uint8_t *buf, uint32_t len);

/* vbi_sess_arrived() - @len bytes of frames landed in the ring.  VB_OK, or
 * an error (the connection failed: before the handshake, or no room). */
int vbi_sess_arrived(struct vbi_conn *c, uint32_t len);

/* vbi_sess_deliver() - hand every complete frame to the message callback. */
void vbi_sess_deliver(struct vbi_conn *c);

/* vbi_sess_ctrl_sent() - a control message has left (its buffer is free):
 * a refused client is closed now; else a waiting sender hears. */
void vbi_sess_ctrl_sent(struct vbi_conn *c);

/* vbi_sess_writable() - room came back: a sender that waited hears. */
void vbi_sess_writable(struct vbi_conn *c);

/* vbi_sess_fwd_complete() - the forwards before @upto are done (written,
 * or dropped with the connection): their references go back. */
void vbi_sess_fwd_complete(struct vbi_conn *c, uint64_t upto);

/* vbi_sess_quiesce() - closed @c writes nothing more (its closed callback
 * has run): every forward is done and every borrow goes back. */
void vbi_sess_quiesce(struct vbi_conn *c);

/* vbi_sess_stamp_acks() - write the freshest acks into batch @b's last
 * frame (if it has one); *@ack says what they acknowledge. */
void vbi_sess_stamp_acks(struct vbi_conn *c, const struct vbi_ring_batch *b,
			 struct vbi_credit_ack *ack);

/* vbi_sess_after() - after callbacks ran: deliver what waited while paused,
 * replay held control messages, post staged frames, return credits. */
void vbi_sess_after(struct vbi_conn *c);

/*
 * vbi_sess_pins() - does @c need the forwards of its frames completed now?
 * Yes when more than a quarter of its ring has landed and is not yet
 * released (its sender may be blocked), and when it is closed with
 * references out (it is freed only once they are back).
 */
bool vbi_sess_pins(const struct vbi_conn *c);

/*
 * vbi_sess_deadline() - fail @c if its handshake has outlived its deadline
 * at coarse time @now_ms.  Returns true if it did.
 */
bool vbi_sess_deadline(struct vbi_conn *c, uint64_t now_ms);

/* ---- the ops (transport.h), the same for every transport --------------- */

int vbi_sess_send(struct vbi_conn *c, const void *topic, uint16_t topic_len,
		  const void *payload, uint32_t payload_len);
int vbi_sess_reserve(struct vbi_conn *c, uint8_t kind, uint16_t topic_len,
		     uint32_t payload_len, void **topic, void **payload);
int vbi_sess_commit(struct vbi_conn *c);
int vbi_sess_flush(struct vbi_conn *c);
int vbi_sess_release(struct vbi_conn *c, const struct vbi_frame_view *v);
int vbi_sess_hold(struct vbi_conn *c, const struct vbi_frame_view *v);
int vbi_sess_forward(struct vbi_conn *dst, struct vbi_conn *src,
		     const struct vbi_frame_view *v, uint32_t sid);
int vbi_sess_fanout(struct vbi_conn *dst, struct vbi_conn *src, uint32_t sid);
int vbi_sess_unpin(struct vbi_conn *c);
int vbi_sess_unacked(struct vbi_conn *c, vbi_frame_fn fn, void *arg);
int vbi_sess_send_ctrl(struct vbi_conn *c, const Verbus__Control *m);
const char *vbi_sess_name(const struct vbi_conn *c);
const void *vbi_sess_credentials(const struct vbi_conn *c, size_t *len);
void vbi_sess_refusal(struct vbi_conn *c, const char *reason);
void vbi_sess_pause(struct vbi_conn *c, int paused);
void vbi_sess_close(struct vbi_conn *c);
void vbi_sess_close_error(struct vbi_conn *c, int err, const char *reason);
void vbi_sess_stats(const struct vbi_conn *c, struct vbi_conn_stats *s);
void vbi_sess_set_arg(struct vbi_conn *c, void *arg);

/*
 * The entries of a struct vbi_transport_ops that are the session's own
 * functions, the same in every transport's table (designated
 * initializers: a table lists its own entries beside this).
 */
/* clang-format off */
#define VBI_SESS_TRANSPORT_OPS                  \
	.send = vbi_sess_send,                  \
	.reserve = vbi_sess_reserve,            \
	.commit = vbi_sess_commit,              \
	.flush = vbi_sess_flush,                \
	.release = vbi_sess_release,            \
	.hold = vbi_sess_hold,                  \
	.forward = vbi_sess_forward,            \
	.fanout = vbi_sess_fanout,              \
	.unpin = vbi_sess_unpin,                \
	.unacked = vbi_sess_unacked,            \
	.send_ctrl = vbi_sess_send_ctrl,        \
	.name = vbi_sess_name,                  \
	.credentials = vbi_sess_credentials,    \
	.pause = vbi_sess_pause,                \
	.close = vbi_sess_close,                \
	.close_error = vbi_sess_close_error,    \
	.refusal = vbi_sess_refusal,            \
	.stats = vbi_sess_stats,                \
	.set_arg = vbi_sess_set_arg
/* clang-format on */

#endif /* VERBUS_TRANSPORT_SESSION_H */
