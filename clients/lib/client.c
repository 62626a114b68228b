/*
 * client.c - libverbus connections: connect, reconnect, the outgoing
 * queue, the event loop, publishing and flushing (verbus/verbus.h).
 *
 * Decisions a reader must know.
 *
 * One ordered queue.  Publishes go straight to the transport while it has
 * credit and nothing waits before them; otherwise they are copied into
 * c->out (bounded by pending_max), together with the control messages
 * (Subscribe, Unsubscribe, Ping) issued meanwhile, and pump() sends the
 * queue in order whenever the transport takes more.  So a Ping always
 * follows every message published before it, which is what vb_flush()
 * relies on.
 *
 * Reconnecting.  When the transport connection closes, queued control
 * messages are dropped (the state they describe is re-sent whole: every
 * open puts one Subscribe per live subscription at the head of the queue)
 * and queued publishes stay.  Attempts follow a doubling, capped, jittered
 * delay on the timerfd.  The transport keeps the closed connection's
 * registered buffers for the next one (vbi_conn_opts.keep_memory), so a
 * reconnection registers no memory.
 *
 * Waking the loop.  Frames staged by a call made outside vb_process() are
 * posted by the next vb_process(); so that an event loop sleeping on
 * vb_fd() gets there, such a call makes the eventfd readable (once per
 * batch).  With VB_OPT_BUSY_POLL the caller spins anyway: no syscall.
 */
#include "clients/lib/client.h"
#include "core/log.h"
#include "core/subject.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define DEF_NAME "verbus"
#define DEF_CONNECT_TIMEOUT_MS 5000
#define DEF_RECONNECT_MAX 60
#define DEF_RECONNECT_WAIT_MS 50
#define DEF_RECONNECT_WAIT_MAX_MS 2000
#define DEF_RECONNECT_JITTER_MS 100
#define DEF_PENDING_MAX (8u << 20)

uint64_t client_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rng_next(struct vb_conn *c)
{
	c->rng ^= c->rng >> 12;
	c->rng ^= c->rng << 25;
	c->rng ^= c->rng >> 27;
	return c->rng * 0x2545f4914f6cdd1dull;
}

void client_event(struct vb_conn *c, enum vb_event_type type, int err,
		  const char *detail, struct vb_sub *s, uint64_t count)
{
	struct vb_event ev = {
		.type = type,
		.err = err,
		.detail = detail ? detail : "",
		.sub = s,
		.count = count,
	};

	if (c->o.on_event && !c->closing)
		c->o.on_event(c, &ev, c->o.event_arg);
}

/* Make vb_fd() readable: frames wait for the next vb_process(). */
static void wake(struct vb_conn *c)
{
	uint64_t one = 1;

	if (c->efd_armed || c->in_process || (c->o.flags & VB_OPT_BUSY_POLL))
		return;
	if (write(c->efd, &one, sizeof(one)) == (ssize_t)sizeof(one))
		c->efd_armed = true;
}

/* ---- subscriptions ------------------------------------------------------ */

static struct vb_sub *sub_find(struct vb_conn *c, uint32_t sid)
{
	struct vb_sub *s;

	HASH_FIND(hh, c->subs, &sid, sizeof(sid), s);
	return s;
}

static void sub_free(struct vb_sub *s)
{
	if (!s)
		return;
	free(s->pattern);
	free(s->queue);
	free(s);
}

/* Take @s out of the table; freed now, or when its callback returns. */
static void sub_remove(struct vb_sub *s)
{
	struct vb_conn *c = s->c;

	if (s->gone)
		return;
	HASH_DELETE(hh, c->subs, s);
	if (c->inbox_sub == s)
		c->inbox_sub = NULL;
	s->gone = true;
	if (!s->in_cb)
		sub_free(s);
}

/* ---- the outgoing queue ------------------------------------------------- */

static struct out_item *out_new(enum out_kind kind, size_t extra)
{
	struct out_item *it = calloc(1, sizeof(*it) + extra);

	if (it)
		it->kind = kind;
	return it;
}

static void out_append(struct vb_conn *c, struct out_item *it)
{
	it->next = NULL;
	*c->out_tail = it;
	c->out_tail = &it->next;
	if (it->kind == OUT_PUB) {
		c->out_msgs++;
		c->out_bytes += it->size;
	}
}

static void out_pop(struct vb_conn *c)
{
	struct out_item *it = c->out_head;

	c->out_head = it->next;
	if (!c->out_head)
		c->out_tail = &c->out_head;
	if (it->kind == OUT_PUB) {
		c->out_msgs--;
		c->out_bytes -= it->size;
	}
	free(it);
}

/* Drop the queued control messages (a connection was lost). */
static void out_drop_control(struct vb_conn *c)
{
	struct out_item **pp = &c->out_head, *it;

	c->out_tail = &c->out_head;
	while ((it = *pp)) {
		if (it->kind == OUT_PUB) {
			c->out_tail = &it->next;
			pp = &it->next;
			continue;
		}
		*pp = it->next;
		free(it);
	}
	*c->out_tail = NULL;
}

static void out_free_all(struct vb_conn *c)
{
	while (c->out_head)
		out_pop(c);
}

/* A Subscribe for every live subscription, at the head of the queue. */
static int out_resubscribe(struct vb_conn *c)
{
	struct out_item *head = NULL, **tail = &head, *it;
	struct vb_sub *s, *tmp;

	HASH_ITER(hh, c->subs, s, tmp)
	{
		it = out_new(OUT_SUB, 0);
		if (!it) {
			while ((it = head)) {
				head = it->next;
				free(it);
			}
			return VB_ENOMEM;
		}
		it->sid = s->sid;
		*tail = it;
		tail = &it->next;
	}
	if (!head)
		return VB_OK;
	*tail = c->out_head;
	if (!c->out_head)
		c->out_tail = tail;
	c->out_head = head;
	return VB_OK;
}

static int send_subscribe(struct vb_conn *c, uint32_t sid)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__Subscribe sub = VERBUS__SUBSCRIBE__INIT;
	struct vb_sub *s = sub_find(c, sid);

	if (!s)
		return VB_OK; /* unsubscribed meanwhile */
	sub.sid = s->sid;
	sub.subject = s->pattern;
	sub.queue = s->queue ? s->queue : (char *)"";
	sub.max_msgs = s->max ? s->max - s->delivered : 0;
	m.body_case = VERBUS__CONTROL__BODY_SUBSCRIBE;
	m.subscribe = &sub;
	return vbi_conn_send_ctrl(c->vc, &m);
}

static int send_item(struct vb_conn *c, const struct out_item *it)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__Unsubscribe u = VERBUS__UNSUBSCRIBE__INIT;
	Verbus__Ping p = VERBUS__PING__INIT;

	switch (it->kind) {
	case OUT_PUB:
		return vbi_conn_send(c->vc, it->bytes, it->topic_len,
				     it->bytes + it->topic_len, it->size);
	case OUT_SUB:
		return send_subscribe(c, it->sid);
	case OUT_UNSUB:
		u.sid = it->sid;
		u.max_msgs = it->num;
		m.body_case = VERBUS__CONTROL__BODY_UNSUBSCRIBE;
		m.unsubscribe = &u;
		return vbi_conn_send_ctrl(c->vc, &m);
	case OUT_PING:
		p.id = it->num;
		m.body_case = VERBUS__CONTROL__BODY_PING;
		m.ping = &p;
		return vbi_conn_send_ctrl(c->vc, &m);
	}
	return VB_EINVAL;
}

/* Whether a caller that saw VB_EAGAIN may try again now. */
static bool room_again(const struct vb_conn *c)
{
	return c->state == CS_OPEN && !c->reserving &&
	       c->out_bytes <= c->o.pending_max / 2;
}

/* Send what the queue holds, in order, as far as the transport takes it. */
static void pump(struct vb_conn *c)
{
	struct out_item *it;
	char why[96];
	int rc;

	while (c->state == CS_OPEN && !c->reserving && (it = c->out_head)) {
		rc = send_item(c, it);
		if (rc == VB_EAGAIN)
			break;
		if (rc == VB_OK && it->kind == OUT_PUB) {
			c->st.msgs_out++;
			c->st.bytes_out += it->size;
		} else if (rc != VB_OK) {
			/* Refused for good (too large for this broker): say
			 * so, never drop in silence. */
			snprintf(why, sizeof(why),
				 "queued %s of %u bytes not sent",
				 it->kind == OUT_PUB ? "message" : "request",
				 it->size);
			client_event(c, VB_EV_NOTICE, rc, why, NULL, 0);
		}
		out_pop(c);
	}
	if (c->want_writable && room_again(c)) {
		c->want_writable = false;
		client_event(c, VB_EV_WRITABLE, VB_OK, NULL, NULL, 0);
	}
}

/* ---- the transport's callbacks ------------------------------------------ */

static void fail_for_good(struct vb_conn *c, int err, const char *reason)
{
	c->state = CS_CLOSED;
	c->close_err = err;
	snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason);
	out_free_all(c);
	req_expire(c, 0, true);
	client_event(c, VB_EV_CLOSED, err, reason, NULL, 0);
}

/* The transport connection is gone (or could not be made). */
static void lost(struct vb_conn *c, int err, const char *reason)
{
	bool was_open = c->state == CS_OPEN;
	uint64_t wait;
	int shift;

	c->vc = NULL;
	c->reserving = false;
	out_drop_control(c);
	if (c->sync_connect) {
		c->state = CS_CLOSED;
		c->close_err = err;
		snprintf(c->close_reason, sizeof(c->close_reason), "%s",
			 reason);
		return;
	}
	if (was_open)
		client_event(c, VB_EV_DISCONNECTED, err, reason, NULL, 0);
	if ((c->o.flags & VB_OPT_NO_RECONNECT) ||
	    (c->o.reconnect_max >= 0 && c->attempts >= c->o.reconnect_max)) {
		fail_for_good(c, err, reason);
		return;
	}
	shift = c->attempts < 20 ? c->attempts : 20;
	wait = (uint64_t)c->o.reconnect_wait_ms << shift;
	if (wait > (uint64_t)c->o.reconnect_wait_max_ms)
		wait = (uint64_t)c->o.reconnect_wait_max_ms;
	if (c->o.reconnect_jitter_ms > 0)
		wait += rng_next(c) % (uint64_t)c->o.reconnect_jitter_ms;
	c->attempts++;
	c->state = CS_WAITING;
	c->retry_ns = client_now_ns() + wait * 1000000ull;
	vbi_debug("%s: %s (%s); attempt %d in %llu ms", c->name, reason,
		  vb_strerror(err), c->attempts, (unsigned long long)wait);
	client_arm_timer(c);
}

static void on_open(struct vbi_conn *vc, void *arg)
{
	struct vb_conn *c = arg;

	if (c->closing || vc != c->vc)
		return;
	if (out_resubscribe(c)) {
		vbi_conn_close(vc);
		return;
	}
	c->state = CS_OPEN;
	c->attempts = 0;
	c->gen++;
	if (c->ever_open) {
		c->st.reconnects++;
		client_event(c, VB_EV_RECONNECTED, VB_OK, NULL, NULL, 0);
	} else {
		c->ever_open = true;
		client_event(c, VB_EV_CONNECTED, VB_OK, NULL, NULL, 0);
	}
	pump(c);
}

/* Split a delivered topic "subject[ reply]" into the message. */
static void msg_fill(struct vb_msg *m, const struct vbi_frame_view *v)
{
	const char *sp = memchr(v->topic, ' ', v->topic_len);

	m->subject = v->topic;
	m->subject_len = sp ? (size_t)(sp - v->topic) : v->topic_len;
	m->reply = sp ? sp + 1 : NULL;
	m->reply_len = sp ? v->topic_len - m->subject_len - 1 : 0;
	m->data = v->payload;
	m->size = v->payload_len;
}

static void on_message(struct vbi_conn *vc, const struct vbi_frame_view *v,
		       void *arg)
{
	struct vb_conn *c = arg;
	struct held_msg h = { .c = c, .vc = vc, .v = *v };
	struct vb_sub *s = c->closing ? NULL : sub_find(c, v->sid);

	if (!s || (s->max && s->delivered >= s->max)) {
		c->st.orphans++;
		vbi_conn_release(vc, v);
		return;
	}
	msg_fill(&h.m, v);
	h.m.sub = s;
	s->delivered++;
	if (s != c->inbox_sub) {
		c->st.msgs_in++;
		c->st.bytes_in += v->payload_len;
	}
	s->in_cb = true;
	s->cb(c, &h.m, s->arg);
	s->in_cb = false;
	vbi_conn_release(vc, v);
	if (s->gone)
		sub_free(s);
	else if (s->max && s->delivered >= s->max)
		sub_remove(s); /* the broker has ended it too */
}

static void on_writable(struct vbi_conn *vc, void *arg)
{
	struct vb_conn *c = arg;

	if (!c->closing && vc == c->vc)
		pump(c);
}

static void on_notice(struct vb_conn *c, const Verbus__Notice *n)
{
	struct vb_sub *s = n->sid ? sub_find(c, n->sid) : NULL;
	int err = -(int)n->code;

	if (n->code == 0)
		return; /* informational (an auto-unsubscribe completed) */
	client_event(c, VB_EV_NOTICE, err, n->reason, s, 0);
	/* A refused subscription is not in force: forget it, so that it is
	 * not re-sent on reconnection either. */
	if (s && s->delivered == 0)
		sub_remove(s);
}

static void on_control(struct vbi_conn *vc, const Verbus__Control *m,
		       void *arg)
{
	struct vb_conn *c = arg;
	struct vb_sub *s;

	if (c->closing || vc != c->vc)
		return;
	switch (m->body_case) {
	case VERBUS__CONTROL__BODY_PONG:
		if (m->pong->id > c->pong_id)
			c->pong_id = m->pong->id;
		break;
	case VERBUS__CONTROL__BODY_PING: {
		Verbus__Control r = VERBUS__CONTROL__INIT;
		Verbus__Pong p = VERBUS__PONG__INIT;

		p.id = m->ping->id;
		r.body_case = VERBUS__CONTROL__BODY_PONG;
		r.pong = &p;
		(void)vbi_conn_send_ctrl(vc, &r); /* best effort */
		break;
	}
	case VERBUS__CONTROL__BODY_NOTICE:
		on_notice(c, m->notice);
		break;
	case VERBUS__CONTROL__BODY_DROPPED:
		s = sub_find(c, m->dropped->sid);
		if (s)
			client_event(c, VB_EV_DROPPED, VB_OK,
				     "slow consumer: the broker dropped "
				     "deliveries",
				     s, m->dropped->count);
		break;
	default:
		vbi_debug("%s: control message %d ignored", c->name,
			  (int)m->body_case);
		break;
	}
}

static void on_closed(struct vbi_conn *vc, const struct vbi_close_info *why,
		      void *arg)
{
	struct vb_conn *c = arg;

	if (c->closing || vc != c->vc)
		return;
	lost(c, why->err, why->reason);
}

static const struct vbi_conn_cbs client_cbs = {
	.open = on_open,
	.message = on_message,
	.writable = on_writable,
	.control = on_control,
	.closed = on_closed,
};

/* Start one attempt. */
static void attempt(struct vb_conn *c)
{
	struct vbi_conn_opts o = {
		.name = c->name,
		.ring_size = c->o.ring_size,
		.max_msg = c->o.max_msg,
		.busy_poll = !!(c->o.flags & VB_OPT_BUSY_POLL),
		.source = c->source,
		.timeout_ms = c->o.connect_timeout_ms,
		.credentials = c->cred,
		.credentials_len = c->cred_len,
		.keep_memory = 1,
	};
	char why[sizeof(c->url.host) + 96];
	int rc;

	c->state = CS_CONNECTING;
	rc = vbi_tp_connect(c->tp, c->url.host, c->url.port, &o, &client_cbs,
			    c, &c->vc);
	if (rc) {
		snprintf(why, sizeof(why), "cannot connect to %s:%s: %s",
			 c->url.host, c->url.port, vb_strerror(rc));
		c->vc = NULL;
		c->state = CS_WAITING; /* lost() decides what follows */
		lost(c, rc, why);
	}
}

/* ---- timers ------------------------------------------------------------- */

void client_arm_timer(struct vb_conn *c)
{
	struct itimerspec its = { 0 };
	uint64_t next = req_next_deadline(c);

	if (c->state == CS_WAITING && (!next || c->retry_ns < next))
		next = c->retry_ns;
	if (next) {
		its.it_value.tv_sec = (time_t)(next / 1000000000ull);
		its.it_value.tv_nsec = (long)(next % 1000000000ull);
		if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
			its.it_value.tv_nsec = 1;
	}
	timerfd_settime(c->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static int run_timers(struct vb_conn *c)
{
	uint64_t now = client_now_ns(), ticks;
	int n = 0;

	if (read(c->tfd, &ticks, sizeof(ticks)) > 0)
		n++;
	req_expire(c, now, false);
	if (c->state == CS_WAITING && now >= c->retry_ns)
		attempt(c);
	client_arm_timer(c);
	return n;
}

/* ---- creation ----------------------------------------------------------- */

static char *dup_or_null(const char *s, int *rc)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*rc = VB_ENOMEM;
	return d;
}

static int pack_credentials(struct vb_conn *c, const struct vb_opts *o)
{
	Verbus__Credentials cr = VERBUS__CREDENTIALS__INIT;

	if (!o->token && !o->user && !o->password)
		return VB_OK;
	if (o->token && (o->user || o->password))
		return VB_EINVAL; /* one kind of credentials */
	if (!o->token && (!o->user || !o->password))
		return VB_EINVAL;
	cr.token = (char *)(o->token ? o->token : "");
	cr.user = (char *)(o->user ? o->user : "");
	cr.password = (char *)(o->password ? o->password : "");
	if (verbus__credentials__get_packed_size(&cr) > sizeof(c->cred))
		return VB_EINVAL;
	c->cred_len = verbus__credentials__pack(&cr, c->cred);
	return VB_OK;
}

/* Copy @in (the first in->sz bytes) and fill in the defaults. */
static int opts_load(struct vb_conn *c, const struct vb_opts *in)
{
	struct vb_opts *o = &c->o;
	int rc = VB_OK;

	if (in) {
		if (in->sz < offsetof(struct vb_opts, name))
			return VB_EINVAL;
		memcpy(o, in, in->sz < sizeof(*o) ? in->sz : sizeof(*o));
	}
	o->sz = sizeof(*o);
	if (o->flags & ~(unsigned)(VB_OPT_ASYNC_CONNECT | VB_OPT_BUSY_POLL |
				   VB_OPT_LOCKED | VB_OPT_NO_RECONNECT))
		return VB_EINVAL;
	if (o->connect_timeout_ms < 0 || o->reconnect_wait_ms < 0 ||
	    o->reconnect_wait_max_ms < 0 || o->reconnect_jitter_ms < 0 ||
	    o->reconnect_max < -1)
		return VB_EINVAL;
	if (!o->connect_timeout_ms)
		o->connect_timeout_ms = DEF_CONNECT_TIMEOUT_MS;
	if (!o->reconnect_max)
		o->reconnect_max = DEF_RECONNECT_MAX;
	if (!o->reconnect_wait_ms)
		o->reconnect_wait_ms = DEF_RECONNECT_WAIT_MS;
	if (!o->reconnect_wait_max_ms)
		o->reconnect_wait_max_ms = DEF_RECONNECT_WAIT_MAX_MS;
	if (o->reconnect_wait_max_ms < o->reconnect_wait_ms)
		o->reconnect_wait_max_ms = o->reconnect_wait_ms;
	if (!o->reconnect_jitter_ms)
		o->reconnect_jitter_ms = DEF_RECONNECT_JITTER_MS;
	if (!o->pending_max)
		o->pending_max = DEF_PENDING_MAX;
	c->name = dup_or_null(o->name ? o->name : DEF_NAME, &rc);
	c->source = dup_or_null(o->source, &rc);
	if (rc)
		return rc;
	if (strlen(c->name) > VBI_NAME_MAX)
		return VB_EINVAL;
	rc = pack_credentials(c, o);
	/* The caller's strings are not kept. */
	o->name = o->source = o->token = o->user = o->password = NULL;
	return rc;
}

static int add_fd(int epfd, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) ? VB_ESYS : VB_OK;
}

static void client_free(struct vb_conn *c)
{
	struct held_msg *h;
	struct vb_sub *s, *tmp;

	if (!c)
		return;
	c->closing = true;
	while ((h = c->held)) {
		c->held = h->next;
		vbi_conn_release(h->vc, &h->v);
		free(h);
	}
	req_free_all(c);
	vbi_tp_destroy(c->tp);
	HASH_ITER(hh, c->subs, s, tmp)
	{
		HASH_DELETE(hh, c->subs, s);
		sub_free(s);
	}
	out_free_all(c);
	if (c->efd >= 0)
		close(c->efd);
	if (c->tfd >= 0)
		close(c->tfd);
	if (c->epfd >= 0)
		close(c->epfd);
	if (c->locked)
		pthread_mutex_destroy(&c->lock);
	free(c->name);
	free(c->source);
	free(c);
}

static bool is_settled(struct vb_conn *c, void *arg)
{
	(void)arg;
	return c->state == CS_OPEN || c->state == CS_CLOSED;
}

int vb_connect(const char *url, const struct vb_opts *opts,
	       struct vb_conn **out)
{
	pthread_mutexattr_t ma;
	struct vb_conn *c;
	char err[128];
	int rc;

	if (!out)
		return VB_EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return VB_ENOMEM;
	c->epfd = c->tfd = c->efd = -1;
	c->out_tail = &c->out_head;
	rc = vbi_url_parse(url, &c->url, err, sizeof(err));
	if (rc) {
		vbi_warn("bad url \"%s\": %s", url ? url : "", err);
		goto out_free;
	}
	rc = opts_load(c, opts);
	if (rc)
		goto out_free;
	if (c->o.flags & VB_OPT_LOCKED) {
		pthread_mutexattr_init(&ma);
		pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
		rc = pthread_mutex_init(&c->lock, &ma) ? VB_ESYS : VB_OK;
		pthread_mutexattr_destroy(&ma);
		if (rc)
			goto out_free;
		c->locked = true;
	}
	if (getrandom(&c->rng, sizeof(c->rng), 0) != sizeof(c->rng))
		c->rng = client_now_ns();
	c->rng |= 1;
	rc = VB_ESYS;
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	c->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c->epfd < 0 || c->tfd < 0 || c->efd < 0)
		goto out_free;
	rc = vbi_tp_create("rdma", &c->tp);
	if (rc)
		goto out_free;
	if ((rc = add_fd(c->epfd, vbi_tp_fd(c->tp))) ||
	    (rc = add_fd(c->epfd, c->tfd)) || (rc = add_fd(c->epfd, c->efd)))
		goto out_free;

	c->sync_connect = !(c->o.flags & VB_OPT_ASYNC_CONNECT);
	attempt(c);
	if (c->sync_connect) {
		client_lock(c); /* client_wait drops it while sleeping */
		client_wait(c, is_settled, NULL, 0);
		client_unlock(c);
		if (c->state != CS_OPEN) {
			rc = c->close_err ? c->close_err : VB_ETIMEDOUT;
			vbi_warn("%s: cannot connect to %s:%s: %s", c->name,
				 c->url.host, c->url.port, c->close_reason);
			goto out_free;
		}
		c->sync_connect = false;
	}
	*out = c;
	return VB_OK;
out_free:
	client_free(c);
	return rc;
}

void vb_close(struct vb_conn *c)
{
	if (!c)
		return;
	client_lock(c);
	if (c->state != CS_CLOSED) {
		c->state = CS_CLOSED;
		req_expire(c, 0, true);
		client_event(c, VB_EV_CLOSED, VB_ECLOSED, "closed by the user",
			     NULL, 0);
	}
	client_unlock(c);
	client_free(c);
}

/* ---- the event loop ----------------------------------------------------- */

int vb_fd(struct vb_conn *c)
{
	return c ? c->epfd : VB_EINVAL;
}

static int process(struct vb_conn *c)
{
	uint64_t v;
	int n, total = 0;

	if ((c->efd_armed || atomic_load(&c->stop)) &&
	    read(c->efd, &v, sizeof(v)) > 0)
		c->efd_armed = false;
	c->in_process = true;
	n = vbi_tp_progress(c->tp, 0);
	if (n > 0)
		total += n;
	total += run_timers(c);
	pump(c);
	c->in_process = false;
	/* What pump() staged goes now, not at the next call. */
	if (c->vc && c->state == CS_OPEN)
		vbi_conn_flush(c->vc);
	return c->state == CS_CLOSED ? VB_ECLOSED : total;
}

int vb_process(struct vb_conn *c)
{
	int rc;

	if (!c)
		return VB_EINVAL;
	client_lock(c);
	rc = c->state == CS_CLOSED ? VB_ECLOSED : process(c);
	client_unlock(c);
	return rc;
}

/* Wait for work up to @timeout_ms without holding the lock. */
static void sleep_on_fd(struct vb_conn *c, int timeout_ms)
{
	struct epoll_event ev;

	if (timeout_ms != 0)
		epoll_wait(c->epfd, &ev, 1, timeout_ms);
}

int vb_poll(struct vb_conn *c, int timeout_ms)
{
	uint64_t deadline;
	int rc;

	if (!c)
		return VB_EINVAL;
	if (!(c->o.flags & VB_OPT_BUSY_POLL)) {
		rc = vb_process(c); /* post what is staged before sleeping */
		if (rc != 0)
			return rc;
		sleep_on_fd(c, timeout_ms);
		return vb_process(c);
	}
	deadline = timeout_ms < 0 ? UINT64_MAX
				  : client_now_ns() +
					    (uint64_t)timeout_ms * 1000000ull;
	for (;;) {
		rc = vb_process(c);
		if (rc != 0 || atomic_load(&c->stop) ||
		    client_now_ns() >= deadline)
			return rc;
	}
}

int vb_run(struct vb_conn *c)
{
	int rc;

	if (!c)
		return VB_EINVAL;
	atomic_store(&c->stop, false);
	while (!atomic_load(&c->stop)) {
		rc = vb_poll(c, 1000);
		if (rc == VB_ECLOSED)
			return c->close_err ? c->close_err : VB_ECLOSED;
	}
	return VB_OK;
}

void vb_stop(struct vb_conn *c)
{
	uint64_t one = 1;

	if (!c)
		return;
	atomic_store(&c->stop, true);
	/* Wake a vb_poll sleeping in epoll_wait; async-signal-safe. */
	if (write(c->efd, &one, sizeof(one)) < 0)
		return;
}

int client_wait(struct vb_conn *c, bool (*done)(struct vb_conn *, void *),
		void *arg, uint64_t deadline_ns)
{
	uint64_t now;
	int ms, rc;

	for (;;) {
		if (done(c, arg))
			return VB_OK;
		if (c->state == CS_CLOSED)
			return VB_ECLOSED;
		now = client_now_ns();
		if (deadline_ns && now >= deadline_ns)
			return VB_ETIMEDOUT;
		ms = 100;
		if (deadline_ns && (deadline_ns - now) / 1000000ull < 100)
			ms = (int)((deadline_ns - now) / 1000000ull) + 1;
		if (c->o.flags & VB_OPT_BUSY_POLL)
			ms = 0;
		rc = process(c);
		if (rc == 0 && !done(c, arg) && c->state != CS_CLOSED) {
			if (c->locked)
				pthread_mutex_unlock(&c->lock);
			sleep_on_fd(c, ms);
			if (c->locked)
				pthread_mutex_lock(&c->lock);
		}
	}
}

/* ---- publishing --------------------------------------------------------- */

/* Build "subject[ reply]" in c->topic; returns its length or an error. */
static int make_topic(struct vb_conn *c, const char *subject,
		      const char *reply)
{
	size_t sl = subject ? strlen(subject) : 0;
	size_t rl = reply ? strlen(reply) : 0;

	if (sl > VBI_SUBJECT_MAX || vbi_subject_check(subject, sl))
		return VB_EINVAL;
	if (reply && (rl > VBI_SUBJECT_MAX || vbi_subject_check(reply, rl)))
		return VB_EINVAL;
	memcpy(c->topic, subject, sl);
	if (reply) {
		c->topic[sl] = ' ';
		memcpy(c->topic + sl + 1, reply, rl);
		sl += rl + 1;
	}
	return (int)sl;
}

int client_publish(struct vb_conn *c, const char *subject, const char *reply,
		   const void *data, size_t size)
{
	struct out_item *it;
	int tlen, rc;

	if (c->state == CS_CLOSED)
		return VB_ECLOSED;
	if (c->reserving)
		return VB_ESTATE;
	if (size > c->o.max_msg && c->o.max_msg)
		return VB_EMSGSIZE;
	if (size && !data)
		return VB_EINVAL;
	tlen = make_topic(c, subject, reply);
	if (tlen < 0)
		return tlen;
	if (size > UINT32_MAX - (size_t)tlen)
		return VB_EMSGSIZE;
	if (c->state == CS_OPEN && !c->out_head) {
		rc = vbi_conn_send(c->vc, c->topic, (uint16_t)tlen, data,
				   (uint32_t)size);
		if (rc == VB_OK) {
			c->st.msgs_out++;
			c->st.bytes_out += size;
			wake(c);
			return VB_OK;
		}
		if (rc != VB_EAGAIN)
			return rc;
	}
	if (c->out_bytes + size > c->o.pending_max) {
		c->want_writable = true;
		return VB_EAGAIN;
	}
	it = out_new(OUT_PUB, (size_t)tlen + size);
	if (!it)
		return VB_ENOMEM;
	it->topic_len = (uint16_t)tlen;
	it->size = (uint32_t)size;
	memcpy(it->bytes, c->topic, (size_t)tlen);
	if (size)
		memcpy(it->bytes + tlen, data, size);
	out_append(c, it);
	return VB_OK;
}

int vb_publish(struct vb_conn *c, const char *subject, const void *data,
	       size_t size)
{
	return vb_publish_reply(c, subject, NULL, data, size);
}

int vb_publish_reply(struct vb_conn *c, const char *subject,
		     const char *reply, const void *data, size_t size)
{
	int rc;

	if (!c)
		return VB_EINVAL;
	client_lock(c);
	rc = client_publish(c, subject, reply, data, size);
	client_unlock(c);
	return rc;
}

int vb_reserve(struct vb_conn *c, const char *subject, const char *reply,
	       size_t size, void **buf)
{
	void *topic, *payload;
	int tlen, rc;

	if (!c || !buf)
		return VB_EINVAL;
	client_lock(c);
	rc = VB_ECLOSED;
	if (c->state == CS_CLOSED)
		goto out;
	rc = VB_ESTATE;
	if (c->reserving)
		goto out;
	rc = VB_EMSGSIZE;
	if (size > UINT32_MAX - 2 * VBI_SUBJECT_MAX - 1)
		goto out;
	rc = tlen = make_topic(c, subject, reply);
	if (tlen < 0)
		goto out;
	pump(c);
	rc = VB_EAGAIN;
	if (c->state != CS_OPEN || c->out_head) {
		c->want_writable = true;
		goto out;
	}
	rc = vbi_conn_reserve(c->vc, (uint16_t)tlen, (uint32_t)size, &topic,
			      &payload);
	if (rc == VB_EAGAIN)
		c->want_writable = true;
	if (rc)
		goto out;
	memcpy(topic, c->topic, (size_t)tlen);
	*buf = payload;
	c->reserving = true;
	c->res_size = (uint32_t)size;
out:
	client_unlock(c);
	return rc;
}

int vb_commit(struct vb_conn *c)
{
	int rc;

	if (!c)
		return VB_EINVAL;
	client_lock(c);
	rc = VB_ESTATE;
	if (c->reserving && c->vc) {
		rc = vbi_conn_commit(c->vc);
		if (rc == VB_OK) {
			c->st.msgs_out++;
			c->st.bytes_out += c->res_size;
			wake(c);
		}
	}
	c->reserving = false;
	client_unlock(c);
	return rc;
}

/* ---- flush -------------------------------------------------------------- */

struct flush_wait {
	uint64_t id; /* the Ping sent, 0: none yet */
	uint64_t gen; /* on which connection */
};

static bool flush_done(struct vb_conn *c, void *arg)
{
	struct flush_wait *w = arg;
	struct out_item *it;

	if (w->id && w->gen == c->gen && c->state == CS_OPEN &&
	    c->pong_id >= w->id)
		return true;
	/* (Re)issue the Ping once connected; a lost one is lost with its
	 * connection. */
	if (c->state == CS_OPEN && (!w->id || w->gen != c->gen)) {
		it = out_new(OUT_PING, 0);
		if (it) {
			it->num = ++c->ping_id;
			w->id = it->num;
			w->gen = c->gen;
			out_append(c, it);
			pump(c);
		}
	}
	return false;
}

int vb_flush(struct vb_conn *c, int timeout_ms)
{
	struct flush_wait w = { 0 };
	int rc;

	if (!c)
		return VB_EINVAL;
	client_lock(c);
	rc = client_wait(c, flush_done, &w,
			 timeout_ms < 0 ? 0
					: client_now_ns() +
						  (uint64_t)timeout_ms *
							  1000000ull);
	client_unlock(c);
	return rc;
}

/* ---- subscribing -------------------------------------------------------- */

int vb_subscribe(struct vb_conn *c, const char *pattern, const char *queue,
		 vb_msg_cb cb, void *arg, struct vb_sub **out)
{
	struct out_item *it = NULL;
	struct vb_sub *s = NULL;
	size_t pl, ql;
	int rc;

	if (!c || !pattern || !cb)
		return VB_EINVAL;
	pl = strlen(pattern);
	ql = queue ? strlen(queue) : 0;
	if (pl > VBI_SUBJECT_MAX || vbi_pattern_check(pattern, pl) ||
	    (queue && (ql > VBI_QUEUE_MAX || vbi_queue_check(queue, ql))))
		return VB_EINVAL;
	client_lock(c);
	rc = VB_ECLOSED;
	if (c->state == CS_CLOSED)
		goto out_unlock;
	rc = VB_ENOMEM;
	s = calloc(1, sizeof(*s));
	if (!s)
		goto out_unlock;
	s->c = c;
	s->cb = cb;
	s->arg = arg;
	s->pattern = strdup(pattern);
	s->queue = queue ? strdup(queue) : NULL;
	if (!s->pattern || (queue && !s->queue))
		goto out_free_sub;
	if (c->state == CS_OPEN) {
		it = out_new(OUT_SUB, 0);
		if (!it)
			goto out_free_sub;
	}
	s->sid = ++c->next_sid;
	HASH_ADD(hh, c->subs, sid, sizeof(s->sid), s);
	if (!sub_find(c, s->sid)) /* uthash out of memory */
		goto out_free_item;
	if (it) {
		it->sid = s->sid;
		out_append(c, it);
		pump(c);
		wake(c);
	}
	if (out)
		*out = s;
	client_unlock(c);
	return VB_OK;
out_free_item:
	free(it);
out_free_sub:
	sub_free(s);
out_unlock:
	client_unlock(c);
	return rc;
}

/* Queue an Unsubscribe for @s (max 0: now). */
static int queue_unsub(struct vb_conn *c, uint32_t sid, uint64_t max)
{
	struct out_item *it;

	if (c->state != CS_OPEN)
		return VB_OK; /* the next open re-sends only what lives */
	it = out_new(OUT_UNSUB, 0);
	if (!it)
		return VB_ENOMEM;
	it->sid = sid;
	it->num = max;
	out_append(c, it);
	pump(c);
	wake(c);
	return VB_OK;
}

int vb_unsubscribe(struct vb_sub *s)
{
	struct vb_conn *c;
	int rc;

	if (!s || s->gone)
		return VB_EINVAL;
	c = s->c;
	client_lock(c);
	rc = queue_unsub(c, s->sid, 0);
	sub_remove(s);
	client_unlock(c);
	return rc;
}

int vb_sub_autounsubscribe(struct vb_sub *s, uint64_t max)
{
	struct vb_conn *c;
	int rc;

	if (!s || s->gone || max == 0)
		return VB_EINVAL;
	c = s->c;
	client_lock(c);
	if (s->delivered >= max) {
		rc = queue_unsub(c, s->sid, 0);
		sub_remove(s);
	} else {
		s->max = max;
		rc = queue_unsub(c, s->sid, max);
	}
	client_unlock(c);
	return rc;
}

uint64_t vb_sub_delivered(const struct vb_sub *s)
{
	return s ? s->delivered : 0;
}

/* ---- messages ----------------------------------------------------------- */

int vb_msg_hold(const struct vb_msg *m, struct vb_msg **out)
{
	const struct held_msg *cur = (const struct held_msg *)m;
	struct vb_conn *c;
	struct held_msg *h;
	int rc;

	if (!m || !out)
		return VB_EINVAL;
	c = cur->c;
	client_lock(c);
	rc = VB_ENOMEM;
	h = malloc(sizeof(*h));
	if (!h)
		goto out;
	*h = *cur;
	h->m.sub = NULL; /* may be gone by the time it is read */
	rc = vbi_conn_hold(h->vc, &h->v);
	if (rc) {
		free(h);
		goto out;
	}
	h->prev = NULL;
	h->next = c->held;
	if (c->held)
		c->held->prev = h;
	c->held = h;
	*out = &h->m;
out:
	client_unlock(c);
	return rc;
}

void vb_msg_release(struct vb_msg *m)
{
	struct held_msg *h = (struct held_msg *)m;
	struct vb_conn *c;

	if (!m)
		return;
	c = h->c;
	client_lock(c);
	if (h->prev)
		h->prev->next = h->next;
	else
		c->held = h->next;
	if (h->next)
		h->next->prev = h->prev;
	vbi_conn_release(h->vc, &h->v);
	free(h);
	client_unlock(c);
}

int vb_respond(struct vb_conn *c, const struct vb_msg *m, const void *data,
	       size_t size)
{
	char reply[VBI_SUBJECT_MAX + 1];

	if (!c || !m)
		return VB_EINVAL;
	if (!m->reply || !m->reply_len || m->reply_len > VBI_SUBJECT_MAX)
		return VB_EINVAL;
	memcpy(reply, m->reply, m->reply_len);
	reply[m->reply_len] = '\0';
	return vb_publish(c, reply, data, size);
}

/* ---- state -------------------------------------------------------------- */

int vb_stats(struct vb_conn *c, struct vb_stats *s)
{
	struct vb_stats all;
	struct vbi_tp_stats ts;

	if (!c || !s || s->sz < sizeof(s->sz))
		return VB_EINVAL;
	client_lock(c);
	all = c->st;
	all.sz = s->sz < sizeof(all) ? s->sz : sizeof(all);
	all.pending_msgs = c->out_msgs;
	all.pending_bytes = c->out_bytes;
	vbi_tp_stats("rdma", &ts);
	all.mr_registered = ts.mr_registered;
	memcpy(s, &all, all.sz);
	client_unlock(c);
	return VB_OK;
}

int vb_is_connected(struct vb_conn *c)
{
	int open;

	if (!c)
		return 0;
	client_lock(c);
	open = c->state == CS_OPEN;
	client_unlock(c);
	return open;
}
