/*
 * rdma_mem.c - the RDMA transport's memory and verbs objects (see rdma.h).
 *
 * One protection domain per device, shared by the tp's connections on it
 * (a forward gathers from another connection's ring, which works only
 * within one PD).  Buffers are mmap()ed and registered at set-up: never
 * per message.  A client that keeps memory (vbi_conn_opts.keep_memory)
 * leaves its closed connection's buffers for the next one, which then
 * registers nothing.  A registration the locked-memory limit refuses
 * (memlock.h) is said in words, in the failing part's name
 * (rdma_conn.fail_what), and a listener whose connections could not even
 * register one set of buffers under that limit is not started.
 */
#include "rdma.h"

#include "memlock.h"

#include "core/log.h"
#include "core/parse.h"

#include <verbus/verbus.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>

#define INLINE_WANT 256u /* inline size asked for; rxe may give less */

static uint64_t mr_registered, mr_deregistered, mr_bytes;

static void dereg(struct ibv_mr **mr)
{
	if (*mr) {
		mr_bytes -= (*mr)->length;
		ibv_dereg_mr(*mr);
		mr_deregistered++;
		*mr = NULL;
	}
}

static struct ibv_mr *reg(struct ibv_pd *pd, void *p, size_t len, int access)
{
	struct ibv_mr *mr = ibv_reg_mr(pd, p, len, access);

	if (mr) {
		mr_registered++;
		mr_bytes += len;
	}
	return mr;
}

void vbi_rdma_mem_stats(struct vbi_tp_stats *s)
{
	s->mr_registered = mr_registered;
	s->mr_deregistered = mr_deregistered;
	s->mr_bytes = mr_bytes;
}

/* ---- protection domains ------------------------------------------------- */

/*
 * A server's tp watches each device's asynchronous events, which are how a
 * QP put in error by what its peer did (a write outside its ring) says so:
 * the completions only say "flushed".  A client's tp does not (the device
 * context, and so its event queue, is shared by every tp in the process).
 */
static void async_watch(struct rdma_tp *tp, struct rdma_pd *p)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = p };
	int fd = p->verbs->async_fd;

	if (!tp->listeners ||
	    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) ||
	    epoll_ctl(tp->epfd, EPOLL_CTL_ADD, fd, &ev))
		return;
	p->async_watched = true;
	tp->nasync++;
}

struct ibv_pd *vbi_rdma_mem_pd_get(struct rdma_tp *tp,
				   struct ibv_context *verbs)
{
	struct rdma_pd *p;

	for (p = tp->pds; p; p = p->next) {
		if (p->verbs == verbs) {
			p->refs++;
			return p->pd;
		}
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->pd = ibv_alloc_pd(verbs);
	if (!p->pd) {
		free(p);
		return NULL;
	}
	p->verbs = verbs;
	p->refs = 1;
	p->mw2 = -1;
	p->next = tp->pds;
	tp->pds = p;
	async_watch(tp, p);
	return p->pd;
}

void vbi_rdma_mem_pd_put(struct rdma_tp *tp, struct ibv_pd *pd)
{
	struct rdma_pd **pp, *p;

	for (pp = &tp->pds; (p = *pp); pp = &p->next) {
		if (p->pd != pd)
			continue;
		if (--p->refs == 0) {
			*pp = p->next;
			if (p->async_watched) {
				epoll_ctl(tp->epfd, EPOLL_CTL_DEL,
					  p->verbs->async_fd, NULL);
				tp->nasync--;
			}
			ibv_dealloc_pd(p->pd);
			free(p);
		}
		return;
	}
}

struct rdma_pd *vbi_rdma_mem_pd_find(struct rdma_tp *tp,
				     const struct ibv_pd *pd)
{
	struct rdma_pd *p;

	for (p = tp->pds; p; p = p->next)
		if (p->pd == pd)
			return p;
	return NULL;
}

struct rdma_pd *vbi_rdma_mem_pd_of(struct rdma_tp *tp, const void *ptr)
{
	struct rdma_pd *p;

	for (p = tp->pds; p; p = p->next)
		if (p == ptr)
			return p;
	return NULL;
}

/* Whether @r's device has type-2 memory windows (asked once per PD). */
static bool device_has_mw2(struct rdma_conn *r)
{
	struct rdma_pd *p = vbi_rdma_mem_pd_find(r->tp, r->pd);
	struct ibv_device_attr_ex a;

	if (!p)
		return false;
	if (p->mw2 < 0) {
		p->mw2 = ibv_query_device_ex(r->id->verbs, NULL, &a) == 0 &&
			 (a.device_cap_flags_ex &
			  (IBV_DEVICE_MEM_WINDOW_TYPE_2A |
			   IBV_DEVICE_MEM_WINDOW_TYPE_2B));
		if (!p->mw2)
			vbi_warn("device %s has no type-2 memory windows: "
				 "peers' rings are protected by their rkeys "
				 "only (docs/SECURITY.md)",
				 ibv_get_device_name(r->id->verbs->device));
	}
	return p->mw2 == 1;
}

/* ---- registered buffers ------------------------------------------------- */

/*
 * A zeroed buffer of @len bytes registered with @access in @r's PD: one a
 * closed connection kept, if @r keeps memory and one fits, else a new
 * one.  Returns VB_OK or an error, with *@mem and *@mr set or NULL; when
 * the locked-memory limit refused it, VB_ENOMEM and r->fail_what says so
 * under @name ("receive ring: locking 1 MiB more would pass...").
 */
static int mem_get(struct rdma_conn *r, const char *name, size_t len,
		   int access, uint8_t **mem, struct ibv_mr **mr)
{
	char why[sizeof(r->fail_what) - 32]; /* and "NAME: " before it */
	struct rdma_pd *p = r->c.opts.keep_memory ?
				    vbi_rdma_mem_pd_find(r->tp, r->pd) :
				    NULL;
	void *p0;
	int rc;

	for (unsigned i = 0; p && i < p->nkept; i++) {
		if (p->kept[i].len != len || p->kept[i].access != access)
			continue;
		*mem = p->kept[i].mem;
		*mr = p->kept[i].mr;
		p->kept[i] = p->kept[--p->nkept];
		p->refs--; /* the slot's reference; @r holds its own */
		memset(*mem, 0, len);
		return VB_OK;
	}
	/* Straight from the kernel, not the heap: zeroed, page-aligned, and
	 * given back whole by munmap() when the connection goes, so a broker
	 * whose clients come and go returns their memory (ARCHITECTURE.md,
	 * "Memory per connection"). */
	p0 = mmap(NULL, len, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p0 == MAP_FAILED) {
		*mem = NULL;
		*mr = NULL;
		return VB_ENOMEM;
	}
	*mr = reg(r->pd, p0, len, access);
	if (!*mr) {
		int err = errno;

		rc = vbi_sess_errno(err);
		if (vbi_memlock_blame(err, len, mr_bytes, why, sizeof(why))) {
			rc = VB_ENOMEM;
			snprintf(r->fail_what, sizeof(r->fail_what), "%s: %s",
				 name, why);
		}
		munmap(p0, len);
		*mem = NULL;
		return rc;
	}
	*mem = p0;
	return VB_OK;
}

/* Deregister and unmap a buffer of mem_get()'s (its length is the MR's:
 * mem_get() never leaves one without the other). */
static void mem_free(uint8_t **mem, struct ibv_mr **mr)
{
	size_t len = *mr ? (*mr)->length : 0;

	dereg(mr);
	if (*mem && len)
		munmap(*mem, len);
	*mem = NULL;
}

/* Give back a buffer from mem_get(): kept for the next connection if @r
 * keeps memory and there is room, else deregistered and freed. */
static void mem_put(struct rdma_conn *r, uint8_t **mem, struct ibv_mr **mr,
		    int access)
{
	struct rdma_pd *p;

	if (*mr && r->c.opts.keep_memory &&
	    (p = vbi_rdma_mem_pd_find(r->tp, r->pd)) &&
	    p->nkept < RDMA_MEM_KEPT_MAX) {
		p->kept[p->nkept++] = (struct rdma_mem_slot){
			.mem = *mem,
			.mr = *mr,
			.len = (*mr)->length,
			.access = access,
		};
		p->refs++;
		*mem = NULL;
		*mr = NULL;
		return;
	}
	mem_free(mem, mr);
}

void vbi_rdma_mem_drop_kept(struct rdma_tp *tp)
{
	struct rdma_pd *p = tp->pds, *next;

	for (; p; p = next) {
		unsigned n = p->nkept;

		next = p->next;
		p->nkept = 0;
		for (unsigned i = 0; i < n; i++)
			mem_free(&p->kept[i].mem, &p->kept[i].mr);
		for (unsigned i = 0; i < n; i++)
			vbi_rdma_mem_pd_put(tp,
					    p->pd); /* the last may free p */
	}
}

void vbi_rdma_mem_free(struct rdma_conn *r)
{
	mem_put(r, &r->c.stage_mem, &r->stage_mr, IBV_ACCESS_LOCAL_WRITE);
	mem_put(r, &r->ctrl_mem, &r->ctrl_mr, IBV_ACCESS_LOCAL_WRITE);
	mem_put(r, &r->c.ring_mem, &r->ring_mr, r->ring_access);
	if (r->cq)
		ibv_destroy_cq(r->cq);
	r->cq = NULL;
	if (r->cc)
		ibv_destroy_comp_channel(r->cc);
	r->cc = NULL;
	if (r->pd)
		vbi_rdma_mem_pd_put(r->tp, r->pd);
	r->pd = NULL;
}

/* ---- a connection's buffers --------------------------------------------- */

/*
 * The control buffers: @recvs RECV buffers, each posted, then @sends SEND
 * buffers, in one region.  Replaces a region already there (a server's
 * handshake buffers, whose one RECV its Hello has consumed).
 */
static int ctrl_setup(struct rdma_conn *r, uint32_t recvs, uint32_t sends)
{
	uint8_t *old_mem = r->ctrl_mem;
	struct ibv_mr *old_mr = r->ctrl_mr;
	int rc;

	r->ctrl_mem = NULL;
	r->ctrl_mr = NULL;
	rc = mem_get(r, "control buffers",
		     (size_t)(recvs + sends) * VBI_CTRL_MAX,
		     IBV_ACCESS_LOCAL_WRITE, &r->ctrl_mem, &r->ctrl_mr);
	if (rc) {
		r->ctrl_mem = old_mem;
		r->ctrl_mr = old_mr;
		return rc;
	}
	mem_put(r, &old_mem, &old_mr, IBV_ACCESS_LOCAL_WRITE);
	r->ctrl_recvs = recvs;
	r->ctrl_sends = sends;
	for (uint32_t i = 0; i < recvs; i++)
		if (vbi_rdma_post_recv(r, i))
			return VB_EIO;
	return VB_OK;
}

/* Our receive ring, and (isolate) the window the peer will reach it by. */
static int ring_setup(struct rdma_conn *r)
{
	int rc;

	r->ring_access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE;
	if (r->c.opts.isolate && device_has_mw2(r)) {
		/* The region itself grants no remote access: only the window
		 * bound to this connection's QP does (ring_bind()). */
		r->ring_access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_MW_BIND;
	}
	rc = mem_get(r, "receive ring", r->c.opts.ring_size, r->ring_access,
		     &r->c.ring_mem, &r->ring_mr);
	if (rc)
		return rc;
	r->ring_rkey = r->ring_mr->rkey;
	/* The window after the QP, on purpose: when a process dies the
	 * kernel frees its verbs objects newest first, and a QP destroyed
	 * while a window is still bound to it stalls rxe for tens of seconds
	 * (tests/rdma/mw_probe.c --close-first) -- long enough that a
	 * SIGKILLed broker's clients would not hear of it. */
	if (r->ring_access & IBV_ACCESS_MW_BIND) {
		r->ring_mw = ibv_alloc_mw(r->pd, IBV_MW_TYPE_2);
		if (!r->ring_mw)
			return vbi_sess_errno(errno);
	}
	return VB_OK;
}

/*
 * Bind our ring's window to this connection's QP (isolate): from now on
 * the peer's rkey reaches exactly the ring, and only through this QP.  The
 * bind goes on the send queue before the Welcome that tells the peer the
 * rkey, so it is in force before the peer can use it.
 */
static int ring_bind(struct rdma_conn *r)
{
	struct ibv_send_wr wr = { 0 }, *bad;
	uint32_t rkey = ibv_inc_rkey(r->ring_mw->rkey);

	if (r->sq_used >= RDMA_SEND_DEPTH)
		return VB_EAGAIN;
	wr.wr_id = RDMA_WRID_BIND;
	wr.opcode = IBV_WR_BIND_MW;
	wr.send_flags = IBV_SEND_SIGNALED;
	wr.bind_mw.mw = r->ring_mw;
	wr.bind_mw.rkey = rkey;
	wr.bind_mw.bind_info.mr = r->ring_mr;
	wr.bind_mw.bind_info.addr = (uintptr_t)r->c.ring_mem;
	wr.bind_mw.bind_info.length = r->c.opts.ring_size;
	wr.bind_mw.bind_info.mw_access_flags = IBV_ACCESS_REMOTE_WRITE;
	if (ibv_post_send(r->id->qp, &wr, &bad))
		return vbi_sess_errno(errno);
	r->sq_used++;
	r->ring_rkey = rkey;
	return VB_OK;
}

int vbi_rdma_mem_bind_client(struct vbi_conn *c)
{
	struct rdma_conn *r = rdma_conn_of(c);

	return r->ring_mw ? ring_bind(r) : VB_OK;
}

/* @rc, with *@what the part that failed: its sentence if it has one. */
static int failed(struct rdma_conn *r, int rc, const char **what)
{
	if (r->fail_what[0])
		*what = r->fail_what;
	return rc;
}

int vbi_rdma_mem_setup_session(struct vbi_conn *c, const char **what)
{
	struct rdma_conn *r = rdma_conn_of(c);
	int rc;

	*what = "receive ring";
	rc = ring_setup(r);
	if (rc)
		return failed(r, rc, what);
	*what = "control buffers";
	rc = ctrl_setup(r, c->opts.recv_depth, RDMA_CTRL_SENDS);
	if (rc)
		return failed(r, rc, what);
	/* A server's, at the Hello: the window is bound before the
	 * Welcome names its rkey. */
	if (c->server && r->ring_mw) {
		*what = "ring's memory window";
		return ring_bind(r);
	}
	return VB_OK;
}

int vbi_rdma_mem_setup_stage(struct vbi_conn *c, const Verbus__RingInfo *ri,
			     const char **what)
{
	struct rdma_conn *r = rdma_conn_of(c);
	int rc;

	*what = "staging buffer";
	rc = mem_get(r, "staging buffer", ri->size, IBV_ACCESS_LOCAL_WRITE,
		     &c->stage_mem, &r->stage_mr);
	if (rc)
		return failed(r, rc, what);
	r->peer_addr = ri->addr;
	r->peer_rkey = ri->rkey;
	return VB_OK;
}

void vbi_rdma_mem_ring_info(struct vbi_conn *c, Verbus__RingInfo *ri)
{
	struct rdma_conn *r = rdma_conn_of(c);

	ri->addr = (uintptr_t)c->ring_mem;
	ri->rkey = r->ring_rkey;
	ri->size = c->opts.ring_size;
}

/* ---- the queue pair ------------------------------------------------------ */

int vbi_rdma_mem_setup_verbs(struct rdma_conn *r, const char **what)
{
	struct ibv_qp_init_attr qa = { 0 };
	struct ibv_qp_attr attr;
	struct ibv_qp_init_attr got;
	struct epoll_event ev = { .events = EPOLLIN };
	uint32_t depth = r->c.opts.recv_depth;

	*what = "protection domain";
	r->pd = vbi_rdma_mem_pd_get(r->tp, r->id->verbs);
	if (!r->pd)
		return VB_ENOMEM;
	*what = "completion channel";
	r->cc = ibv_create_comp_channel(r->id->verbs);
	if (!r->cc)
		return VB_ESYS;
	if (fcntl(r->cc->fd, F_SETFL, fcntl(r->cc->fd, F_GETFL) | O_NONBLOCK))
		return VB_ESYS;
	*what = "completion queue";
	r->cq = ibv_create_cq(r->id->verbs, (int)(depth + RDMA_SEND_DEPTH + 8),
			      r, r->cc, 0);
	if (!r->cq)
		return VB_ENOMEM;
	/* Busy-polling reads the CQ every turn: never armed, a completion
	 * costs no channel event, read or re-arm. */
	if (!r->c.opts.busy_poll && ibv_req_notify_cq(r->cq, 0))
		return VB_EIO;
	ev.data.ptr = r;
	if (epoll_ctl(r->tp->epfd, EPOLL_CTL_ADD, r->cc->fd, &ev))
		return VB_ESYS;
	r->in_epoll = true;

	*what = "queue pair";
	qa.send_cq = r->cq;
	qa.recv_cq = r->cq;
	qa.qp_type = IBV_QPT_RC;
	qa.sq_sig_all = 0;
	qa.cap.max_send_wr = RDMA_SEND_DEPTH;
	qa.cap.max_recv_wr = depth;
	qa.cap.max_send_sge = RDMA_SGE_WANT;
	qa.cap.max_recv_sge = 1;
	qa.cap.max_inline_data = INLINE_WANT;
	if (rdma_create_qp(r->id, r->pd, &qa)) {
		/* The device may not do that much: ask for the minimum (no
		 * inline, one gather entry: forwards are then copied). */
		qa.cap.max_inline_data = 0;
		qa.cap.max_send_sge = 1;
		if (rdma_create_qp(r->id, r->pd, &qa))
			return vbi_sess_errno(errno);
	}
	r->max_inline = qa.cap.max_inline_data;
	r->max_sge = qa.cap.max_send_sge;
	if (ibv_query_qp(r->id->qp, &attr, IBV_QP_CAP, &got) == 0) {
		r->max_inline = got.cap.max_inline_data;
		r->max_sge = got.cap.max_send_sge;
	}
	if (r->max_sge > RDMA_SGE_WANT)
		r->max_sge = RDMA_SGE_WANT;
	if (!r->c.server)
		return vbi_sess_setup(&r->c, what);
	*what = "control buffers";
	r->c.preauth = true;
	return failed(r, ctrl_setup(r, 1, 1), what);
}

/*
 * The least a server connection registers: the handshake's control
 * buffers, then at the Hello the staging mirror of the smallest peer ring,
 * our ring and the full control buffers, before the handshake's go.
 */
static uint64_t conn_floor(const struct vbi_conn_opts *o, uint64_t page)
{
	const uint64_t parts[] = {
		2 * VBI_CTRL_MAX,
		VBI_SESS_RING_MIN,
		o->ring_size,
		(uint64_t)(o->recv_depth + RDMA_CTRL_SENDS) * VBI_CTRL_MAX,
	};
	uint64_t sum = 0;

	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		sum += (parts[i] + page - 1) / page * page;
	return sum;
}

int vbi_rdma_mem_check_limit(const struct vbi_conn_opts *o)
{
	struct vbi_memlock m;
	char why[256], a[32], b[32], c[32];
	uint64_t need;

	vbi_memlock_read(&m, mr_bytes);
	need = conn_floor(o, m.page);
	if (vbi_memlock_short(&m, need)) {
		vbi_err("rdma: cannot serve a single connection: each "
			"registers at least %s (a %s ring, control and "
			"staging buffers): %s",
			vbi_size_str(need, a, sizeof(a)),
			vbi_size_str(o->ring_size, b, sizeof(b)),
			vbi_memlock_explain(&m, need, why, sizeof(why)));
		return VB_ENOMEM;
	}
	if (!m.exempt && m.limit != VBI_MEMLOCK_INFINITY) {
		uint64_t n = (m.limit - m.locked) / need;

		vbi_warn("rdma: the locked-memory limit RLIMIT_MEMLOCK (%s) "
			 "leaves room for %llu connection%s at most, each "
			 "registering at least %s; raise it: ulimit -l, "
			 "systemd LimitMEMLOCK=, memlock in "
			 "/etc/security/limits.conf",
			 vbi_size_str(m.limit, c, sizeof(c)),
			 (unsigned long long)n, n == 1 ? "" : "s",
			 vbi_size_str(need, a, sizeof(a)));
	}
	return VB_OK;
}
