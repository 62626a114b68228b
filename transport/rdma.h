/*
 * rdma.h - the RDMA transport's own objects, shared by its files only.
 *
 * The transport is verbs and rdma_cm under the session protocol
 * (session.h), in four files by job:
 *   rdma.c       the transport context, its event loop (epoll over the
 *                rdma_cm channel, the completion channels and the devices'
 *                async events), completions, connection lifetime, the ops
 *                table;
 *   rdma_cm.c    connection set-up: listening, resolving, connecting,
 *                accepting or refusing, the handshake deadline, addresses;
 *   rdma_mem.c   memory: a protection domain per device, registered
 *                buffers (mmap()ed, kept for a reconnecting client), the
 *                receive ring and its memory window, the control buffers,
 *                the staging mirror, the queue pair;
 *   rdma_post.c  posting: RECVs, control SENDs, batches of staged frames as
 *                WRITE_WITH_IMM with their gather lists (forwards straight
 *                from the source's ring), selective signalling and kicks.
 *
 * Decisions a reader must know:
 *  - Memory is registered at connection set-up and never again (the
 *    client keeps its buffers across reconnects): the receive ring (its own
 *    MR, the only one with remote-write rights, covering exactly the ring),
 *    the control buffers, and the staging mirror of the peer's ring.
 *  - Every WRITE_WITH_IMM and SEND consumes one RECV at the peer; the
 *    session's credits make sure one is always posted, so an RNR can only
 *    mean a bug (rnr_retry is a backstop, set to 7).
 *  - Forwards gather the topic and payload from the publisher's ring, so
 *    every connection on a device shares one protection domain (per tp);
 *    across devices the session copies (can_gather says no).
 *  - errno, ibv_wc_status and rdma_cm statuses become vb_err here and
 *    nowhere else.
 *
 * Threading: as transport.h.
 */
#ifndef VERBUS_TRANSPORT_RDMA_H
#define VERBUS_TRANSPORT_RDMA_H

#include "session.h"

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define RDMA_CTRL_SENDS 8u /* control SEND buffers per connection */
#define RDMA_SEND_DEPTH 64u /* send queue depth */
#define RDMA_SGE_WANT 32u /* gather entries per WRITE asked for */
#define RDMA_MEM_KEPT_MAX 8 /* buffers kept per device */
#define RDMA_WRID_SEND (1ull << 32) /* | slot: a control SEND */
#define RDMA_WRID_BIND (3ull << 32) /* the ring window's bind (isolate) */

/* A registered buffer a closed connection left for the next one
 * (vbi_conn_opts.keep_memory): reconnecting registers nothing again. */
struct rdma_mem_slot {
	uint8_t *mem;
	struct ibv_mr *mr;
	size_t len;
	int access;
};

/* A protection domain shared by every connection on one device. */
struct rdma_pd {
	struct ibv_context *verbs; /* the device */
	struct ibv_pd *pd;
	bool async_watched; /* its async events are in the tp's epoll set */
	unsigned refs; /* connections using it, and one per kept buffer */
	int mw2; /* type-2 memory windows: 1 yes, 0 no, -1 not asked yet */
	struct rdma_mem_slot kept[RDMA_MEM_KEPT_MAX];
	unsigned nkept;
	struct rdma_pd *next;
};

struct rdma_tp {
	const struct vbi_transport_ops *ops; /* first: transport.c dispatch */
	struct rdma_pd *pds; /* one per device in use */
	struct rdma_event_channel *ec; /* rdma_cm events, non-blocking */
	int epfd; /* ec + every completion channel + watched devices */
	struct rdma_conn *conns; /* all connections, linked */
	struct rdma_listener *listeners; /* all listeners, linked */
	bool busy_poll; /* some connection busy-polls */
	uint64_t hs_check; /* coarse ms: next look at handshake deadlines */
	unsigned nasync; /* devices whose async events are in the epoll set */
	unsigned spins; /* busy-poll turns, for the fd's look */
};

struct rdma_listener {
	const struct vbi_transport_ops *ops; /* first: transport.c dispatch */
	struct rdma_tp *tp;
	struct rdma_cm_id *id;
	struct vbi_conn_opts opts; /* for the accepted connections */
	struct vbi_conn_cbs cbs;
	void *arg;
	struct rdma_listener *next;
};

struct rdma_conn {
	struct vbi_conn c; /* first: the session (and the ops pointer) */
	struct rdma_tp *tp;
	struct rdma_conn *next, *prev; /* tp->conns */
	struct rdma_cm_id *id;
	struct ibv_pd *pd;
	struct ibv_comp_channel *cc;
	struct ibv_cq *cq;
	struct ibv_mr *ring_mr; /* the ring: remote-write, or (isolate)
				 * local only and reached through ring_mw */
	int ring_access; /* what ring_mr was registered with */
	struct ibv_mw *ring_mw; /* isolate: a type-2 window bound to our QP
				 * over the ring; its rkey is the peer's */
	uint32_t ring_rkey; /* what the peer gets: ring_mw's or ring_mr's */
	uint8_t *ctrl_mem; /* ctrl_recvs RECV + ctrl_sends SEND buffers */
	struct ibv_mr *ctrl_mr;
	uint32_t ctrl_recvs, ctrl_sends;
	struct ibv_mr *stage_mr; /* over c.stage_mem */
	uint64_t peer_addr; /* the peer's ring */
	uint32_t peer_rkey;
	uint32_t max_inline; /* what the QP really supports */
	uint32_t max_sge; /* gather entries per WRITE the QP supports */
	uint32_t sq_used; /* send WRs not yet known complete */
	uint32_t unsignaled; /* data writes since the last signal */
	uint32_t unsignaled_bytes; /* and the bytes they carried */
	uint32_t ctrl_busy; /* bitmap of control buffers in flight */
	bool in_epoll;
	struct sockaddr_storage src_sa, dst_sa; /* connect: for re-resolving */
	bool has_src;
	uint64_t resolve_deadline; /* connect: CLOCK_MONOTONIC ms */
	/* The part whose registration the locked-memory limit refused, and
	 * the sentence that says so (memlock.h); "" if none was. */
	char fail_what[256];
};

static inline struct rdma_conn *rdma_conn_of(struct vbi_conn *c)
{
	return (struct rdma_conn *)(void *)c;
}

static inline const struct rdma_conn *
rdma_conn_of_const(const struct vbi_conn *c)
{
	return (const struct rdma_conn *)(const void *)c;
}

static inline struct rdma_tp *rdma_tp_of(struct vbi_tp *tp)
{
	return (struct rdma_tp *)(void *)tp;
}

extern const struct vbi_sess_ops vbi_rdma_sess_ops;

/* ---- rdma.c ------------------------------------------------------------- */

/* A new connection of @tp, linked, its session started; NULL: no memory. */
struct rdma_conn *vbi_rdma_conn_new(struct rdma_tp *tp,
				    const struct vbi_conn_opts *o,
				    const struct vbi_conn_cbs *cbs, void *arg);

/* Free every verbs object of @r, in reverse order of creation.  Accepts a
 * half-built connection. */
void vbi_rdma_conn_free(struct rdma_conn *r);

/* ---- rdma_mem.c --------------------------------------------------------- */

/* The PD of @verbs in @tp, shared: one reference more; NULL on failure. */
struct ibv_pd *vbi_rdma_mem_pd_get(struct rdma_tp *tp,
				   struct ibv_context *verbs);
/* Drop one reference to @pd; the last frees it. */
void vbi_rdma_mem_pd_put(struct rdma_tp *tp, struct ibv_pd *pd);
/* The tp's record of @pd, or NULL. */
struct rdma_pd *vbi_rdma_mem_pd_find(struct rdma_tp *tp,
				     const struct ibv_pd *pd);
/* The device whose async events @ptr (from the epoll set) stands for, or
 * NULL. */
struct rdma_pd *vbi_rdma_mem_pd_of(struct rdma_tp *tp, const void *ptr);

/*
 * vbi_rdma_mem_setup_verbs() - PD, completion channel, CQ and QP, and the
 * control buffers with their RECVs posted: what a connection needs before
 * connect or accept.  A client gets its whole session now (its Hello names
 * its ring); a server's accepted connection one RECV and one SEND buffer
 * until its Hello is accepted.  *@what names the part that failed.
 */
int vbi_rdma_mem_setup_verbs(struct rdma_conn *r, const char **what);

/* Give back @r's buffers (kept for the next connection where it keeps
 * memory), then its CQ, completion channel and PD reference. */
void vbi_rdma_mem_free(struct rdma_conn *r);

/* Drop every buffer kept for reuse (at transport destruction). */
void vbi_rdma_mem_drop_kept(struct rdma_tp *tp);

/* A client's ring window (isolate), bound once its QP can send: before
 * the Hello that names the rkey.  VB_OK without a window. */
int vbi_rdma_mem_bind_client(struct vbi_conn *c);

/* The ops the session calls for memory. */
int vbi_rdma_mem_setup_session(struct vbi_conn *c, const char **what);
int vbi_rdma_mem_setup_stage(struct vbi_conn *c, const Verbus__RingInfo *r,
			     const char **what);
void vbi_rdma_mem_ring_info(struct vbi_conn *c, Verbus__RingInfo *r);

/* Process-wide registration counters (vbi_tp_stats). */
void vbi_rdma_mem_stats(struct vbi_tp_stats *s);

/*
 * vbi_rdma_mem_check_limit() - before listening with @o: VB_ENOMEM, with
 * the sentence logged, if the locked-memory limit leaves less than one
 * server connection registers at least (the handshake's buffers, the
 * smallest staging, @o's ring and control buffers); else VB_OK, with a
 * warning naming how many connections fit if the limit applies at all.
 */
int vbi_rdma_mem_check_limit(const struct vbi_conn_opts *o);

/* ---- rdma_post.c -------------------------------------------------------- */

/* The RECV buffer @i of @r's control buffers. */
uint8_t *vbi_rdma_post_recv_buf(struct rdma_conn *r, uint64_t i);
/* Post RECV buffer @i.  VB_OK or VB_EIO. */
int vbi_rdma_post_recv(struct rdma_conn *r, uint64_t i);
/*
 * vbi_rdma_post_kick() - have the device report the forwards posted
 * unsignalled so far: a signalled zero-length WRITE.
 */
void vbi_rdma_post_kick(struct vbi_conn *c);
/* The ops the session calls for posting. */
bool vbi_rdma_post_ctrl_room(struct vbi_conn *c);
int vbi_rdma_post_ctrl(struct vbi_conn *c, const Verbus__Control *m);
bool vbi_rdma_post_batch_room(struct vbi_conn *c);
int vbi_rdma_post_batch(struct vbi_conn *c, struct vbi_ring_batch *b,
			struct vbi_credit_ack *ack);
bool vbi_rdma_post_can_gather(const struct vbi_conn *dst,
			      const struct vbi_conn *src);

/* ---- rdma_cm.c ---------------------------------------------------------- */

/* Handle every rdma_cm event queued on @tp's channel; returns how many. */
int vbi_rdma_cm_events(struct rdma_tp *tp);
/* rdma.c: drain @r's CQ and deliver what arrived; events handled. */
int vbi_rdma_conn_poll(struct rdma_conn *r);
/* Fail every accepted connection past its handshake deadline (looked at
 * every few tens of ms). */
void vbi_rdma_cm_check_handshakes(struct rdma_tp *tp);
/* Process-wide: accepted connections closed for no handshake. */
uint64_t vbi_rdma_cm_handshake_timeouts(void);
/* The ops of connection set-up. */
int vbi_rdma_cm_listen(struct vbi_tp *tp, const char *addr, const char *port,
		       const struct vbi_conn_opts *o,
		       const struct vbi_conn_cbs *cbs, void *arg,
		       struct vbi_listener **out);
void vbi_rdma_cm_listener_close(struct vbi_listener *l);
int vbi_rdma_cm_local_name(const struct vbi_conn *c, char *buf, size_t len);
int vbi_rdma_cm_listener_name(const struct vbi_listener *l, char *buf,
			      size_t len);
int vbi_rdma_cm_connect(struct vbi_tp *tp, const char *addr, const char *port,
			const struct vbi_conn_opts *o,
			const struct vbi_conn_cbs *cbs, void *arg,
			struct vbi_conn **out);
int vbi_rdma_cm_peer_name(const struct vbi_conn *c, char *buf, size_t len);
void vbi_rdma_cm_disconnect(struct vbi_conn *c);

#endif /* VERBUS_TRANSPORT_RDMA_H */
