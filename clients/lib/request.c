/*
 * request.c - request/reply over the broker (verbus/verbus.h).
 *
 * Each connection has one inbox, "_INBOX.<id>" (inbox.c: the broker
 * delivers what is published under it to this connection only), and
 * subscribes to "_INBOX.<id>.*" at its first request (and again on every
 * reconnection, like any subscription).  A request publishes with the reply
 * subject "_INBOX.<id>.<token>"; the inbox callback finds the request by
 * its token.  Deadlines live with the requests; the connection's one
 * timerfd is armed for the nearest (vbi_client_arm_timer).  A reply after the
 * deadline, or a second one, finds no request and is dropped (counted as
 * an orphan).
 *
 * The application's own inboxes (vb_new_inbox) are "_INBOX.<id>-<n>": the
 * same id, so they stay this connection's, but in the second token, so
 * that "_INBOX.<id>.*" never matches one of them, nor anything under one
 * ("<inbox>.>"), and a subscription on one never matches a request's
 * reply subject: the request mux and a scatter/gather subscriber never
 * see each other's messages.
 */
#include "clients/lib/client.h"
#include "core/parse.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static void req_finish(struct vb_conn *c, struct req *r, const struct vb_msg *m,
		       int err)
{
	HASH_DELETE(hh, c->reqs, r);
	r->cb(c, m, err, r->arg);
	free(r);
}

/* Expire the requests due at @now_ns, or @all of them (VB_ECLOSED). */
void vbi_request_expire(struct vb_conn *c, uint64_t now_ns, bool all)
{
	struct req *r, *tmp;

	HASH_ITER(hh, c->reqs, r, tmp)
	{
		if (all)
			req_finish(c, r, NULL, VB_ECLOSED);
		else if (now_ns >= r->deadline_ns)
			req_finish(c, r, NULL, VB_ETIMEDOUT);
	}
}

uint64_t vbi_request_next_deadline(const struct vb_conn *c)
{
	const struct req *r;
	uint64_t next = 0;

	for (r = c->reqs; r; r = r->hh.next)
		if (!next || r->deadline_ns < next)
			next = r->deadline_ns;
	return next;
}

void vbi_request_free_all(struct vb_conn *c)
{
	struct req *r, *tmp;

	HASH_ITER(hh, c->reqs, r, tmp)
	{
		HASH_DELETE(hh, c->reqs, r);
		free(r);
	}
}

static void on_reply(struct vb_conn *c, const struct vb_msg *m, void *arg)
{
	size_t plen = strlen(c->inbox) + 1;
	char tok[24];
	uint64_t token;
	struct req *r;

	(void)arg;
	if (m->subject_len <= plen || m->subject_len - plen >= sizeof(tok))
		goto orphan;
	memcpy(tok, m->subject + plen, m->subject_len - plen);
	tok[m->subject_len - plen] = '\0';
	if (!vbi_parse_u64(tok, &token))
		goto orphan;
	HASH_FIND(hh, c->reqs, &token, sizeof(token), r);
	if (!r)
		goto orphan;
	req_finish(c, r, m, VB_OK);
	vbi_client_arm_timer(c);
	return;
orphan:
	c->st.orphans++;
}

/* The inbox subscription, made at the first request. */
static int inbox_open(struct vb_conn *c)
{
	char pattern[sizeof(c->inbox) + 2];
	int rc;

	if (c->inbox_sub)
		return VB_OK;
	snprintf(pattern, sizeof(pattern), "%s.*", c->inbox);
	rc = vb_subscribe(c, pattern, NULL, on_reply, NULL, &c->inbox_sub);
	return rc;
}

int vb_request_async(struct vb_conn *c, const char *subject, const void *data,
		     size_t size, int timeout_ms, vb_reply_cb cb, void *arg)
{
	return vb_request_msg_async(c, subject, NULL, 0, data, size, timeout_ms,
				    cb, arg);
}

int vb_request_msg_async(struct vb_conn *c, const char *subject,
			 const struct vb_header *hdrs, size_t nhdrs,
			 const void *data, size_t size, int timeout_ms,
			 vb_reply_cb cb, void *arg)
{
	char reply[sizeof(c->inbox) + 24];
	struct req *r, *found;
	int rc;

	if (!c || !cb || timeout_ms <= 0 || (nhdrs && !hdrs))
		return VB_EINVAL;
	client_lock(c);
	rc = inbox_open(c);
	if (rc)
		goto out;
	rc = VB_ENOMEM;
	r = calloc(1, sizeof(*r));
	if (!r)
		goto out;
	r->token = ++c->next_token;
	/* From an upper bound of now, read without a system call: the
	 * request may expire one clock tick late, never early. */
	r->deadline_ns =
		vbi_client_later_ns() + (uint64_t)timeout_ms * 1000000ull;
	r->cb = cb;
	r->arg = arg;
	snprintf(reply, sizeof(reply), "%s.%" PRIu64, c->inbox, r->token);
	rc = vbi_outq_publish_hdr(c, subject, reply, hdrs, nhdrs, data, size);
	if (rc) {
		free(r);
		goto out;
	}
	HASH_ADD(hh, c->reqs, token, sizeof(r->token), r);
	HASH_FIND(hh, c->reqs, &r->token, sizeof(r->token), found);
	if (!found) { /* uthash out of memory; the reply will be an orphan */
		free(r);
		rc = VB_ENOMEM;
		goto out;
	}
	vbi_client_arm_timer(c);
out:
	client_unlock(c);
	return rc;
}

struct req_wait {
	bool done;
	int err;
	struct vb_msg *reply;
};

static void req_wait_cb(struct vb_conn *c, const struct vb_msg *m, int err,
			void *arg)
{
	struct req_wait *w = arg;

	(void)c;
	w->done = true;
	w->err = err;
	if (m) {
		w->err = vb_msg_hold(m, &w->reply);
	}
}

static bool req_waited(struct vb_conn *c, void *arg)
{
	(void)c;
	return ((struct req_wait *)arg)->done;
}

int vb_request(struct vb_conn *c, const char *subject, const void *data,
	       size_t size, int timeout_ms, struct vb_msg **reply)
{
	return vb_request_msg(c, subject, NULL, 0, data, size, timeout_ms,
			      reply);
}

int vb_request_msg(struct vb_conn *c, const char *subject,
		   const struct vb_header *hdrs, size_t nhdrs, const void *data,
		   size_t size, int timeout_ms, struct vb_msg **reply)
{
	struct req_wait w = { 0 };
	int rc;

	if (!c || !reply)
		return VB_EINVAL;
	client_lock(c);
	rc = vb_request_msg_async(c, subject, hdrs, nhdrs, data, size,
				  timeout_ms, req_wait_cb, &w);
	if (rc == VB_OK) {
		/* The request's own deadline ends the wait. */
		rc = vbi_client_wait(c, req_waited, &w, 0);
		if (rc == VB_OK)
			rc = w.err;
		if (rc == VB_OK)
			*reply = w.reply;
	}
	client_unlock(c);
	return rc;
}

bool vbi_request_refused(struct vb_conn *c, const char *reply, int err)
{
	size_t plen = strlen(c->inbox), rlen = strlen(reply);
	uint64_t token;
	struct req *r;

	if (!c->inbox[0] || rlen <= plen + 1 || rlen - plen - 1 >= 24 ||
	    memcmp(reply, c->inbox, plen) != 0 || reply[plen] != '.' ||
	    !vbi_parse_u64(reply + plen + 1, &token))
		return false;
	HASH_FIND(hh, c->reqs, &token, sizeof(token), r);
	if (!r)
		return false;
	req_finish(c, r, NULL, err);
	vbi_client_arm_timer(c);
	return true;
}

int vb_new_inbox(struct vb_conn *c, char *buf, size_t len)
{
	char inbox[VB_INBOX_LEN];
	int n, rc;

	if (!c || !buf)
		return VB_EINVAL;
	client_lock(c);
	rc = VB_OK;
	n = snprintf(inbox, sizeof(inbox), "%s-%" PRIu64, c->inbox,
		     ++c->next_inbox);
	if (n < 0 || (size_t)n >= len)
		rc = VB_ENOSPC;
	else
		memcpy(buf, inbox, (size_t)n + 1);
	client_unlock(c);
	return rc;
}
