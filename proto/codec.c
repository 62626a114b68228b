/*
 * codec.c - pack, unpack and validate control messages.
 *
 * protobuf-c checks the wire syntax; it does not know which fields a Verbus
 * message needs.  validate() adds that, so a Hello without a ring, a ring
 * whose size is not a power of two or a name longer than VBI_NAME_MAX is a
 * protocol error here, at the edge, and never reaches the state machines.
 */
#include "codec.h"
#include "core/subject.h"

#include <verbus/verbus.h>

#include <arpa/inet.h>
#include <string.h>

void vbi_cm_hdr_encode_reject(void *buf, uint16_t reason)
{
	uint32_t magic = htonl(VBI_CM_MAGIC);
	uint16_t version = htons((uint16_t)VBI_PROTO_VERSION);
	uint16_t r = htons(reason);
	unsigned char *p = buf;

	memcpy(p, &magic, 4);
	memcpy(p + 4, &version, 2);
	memcpy(p + 6, &r, 2);
}

void vbi_cm_hdr_encode(void *buf)
{
	vbi_cm_hdr_encode_reject(buf, VBI_CM_REJ_NONE);
}

uint16_t vbi_cm_reject_code(int err)
{
	switch (err) {
	case VB_ENOSPC:
		return VBI_CM_REJ_FULL;
	case VB_EAGAIN:
		return VBI_CM_REJ_ADDR;
	case VB_ESTATE:
		return VBI_CM_REJ_SHUTDOWN;
	default:
		return VBI_CM_REJ_NONE;
	}
}

const char *vbi_cm_reject_reason(uint16_t reason)
{
	switch (reason) {
	case VBI_CM_REJ_FULL:
		return "the server has too many connections";
	case VBI_CM_REJ_ADDR:
		return "too many handshakes from this address";
	case VBI_CM_REJ_SHUTDOWN:
		return "the server is shutting down";
	case VBI_CM_REJ_TLS:
		return "the server requires TLS (a tls:// URL)";
	default:
		return "connection refused";
	}
}

int vbi_cm_hdr_decode(const void *buf, size_t len, struct vbi_cm_hdr *hdr)
{
	const unsigned char *p = buf;
	uint32_t magic;
	uint16_t version, reason;

	/* rdma_cm pads private data with zeros: longer is fine, shorter not. */
	if (buf == NULL || len < VBI_CM_HDR_LEN)
		return VB_EPROTO;
	memcpy(&magic, p, 4);
	memcpy(&version, p + 4, 2);
	memcpy(&reason, p + 6, 2);
	if (ntohl(magic) != VBI_CM_MAGIC)
		return VB_EPROTO;
	hdr->magic = ntohl(magic);
	hdr->version = ntohs(version);
	hdr->reason = ntohs(reason);
	if (hdr->version != VBI_PROTO_VERSION)
		return VB_EVERSION;
	return VB_OK;
}

int vbi_codec_encode(const Verbus__Control *msg, void *buf, size_t cap,
		     size_t *len)
{
	size_t need;

	if (msg == NULL || msg->body_case == VERBUS__CONTROL__BODY__NOT_SET)
		return VB_EINVAL;
	need = verbus__control__get_packed_size(msg);
	if (need > cap || need > VBI_CTRL_MAX)
		return VB_EMSGSIZE;
	*len = verbus__control__pack(msg, buf);
	return VB_OK;
}

static int ring_valid(const Verbus__RingInfo *ring)
{
	if (ring == NULL || ring->addr == 0 || ring->size == 0)
		return 0;
	return (ring->size & (ring->size - 1)) == 0;
}

static int str_valid(const char *s, size_t max)
{
	/* protobuf-c NUL-terminates strings; a NUL inside one cuts it short,
	 * which strnlen sees as a shorter string: harmless. */
	return s != NULL && strnlen(s, max + 1) <= max;
}

/* A DirectGrant's fields: ids set, nonce and MAC their sizes, strings and
 * sids within bounds (the MAC itself is checked by whoever holds the key,
 * core/grant.h). */
static int grant_valid(const Verbus__DirectGrant *g)
{
	if (g == NULL || g->pub_id == 0 || g->sub_id == 0 ||
	    g->nonce.len != VBI_GRANT_NONCE_LEN ||
	    g->mac.len != VBI_GRANT_MAC_LEN ||
	    !str_valid(g->subject, VBI_SUBJECT_MAX) ||
	    !str_valid(g->queue, VBI_QUEUE_MAX) ||
	    g->n_sids > VBI_GRANT_SIDS_MAX)
		return 0;
	for (size_t i = 0; i < g->n_sids; i++)
		if (g->sids[i] == 0)
			return 0;
	return 1;
}

static int direct_paths_valid(const Verbus__DirectPaths *p)
{
	if (p == NULL || p->id == 0 || p->pub_id == 0 ||
	    !str_valid(p->subject, VBI_SUBJECT_MAX) || p->subject[0] == 0)
		return 0;
	for (size_t i = 0; i < p->n_paths; i++) {
		const Verbus__DirectPath *dp = p->paths[i];

		if (dp == NULL || dp->sub_id == 0 ||
		    !str_valid(dp->url, VBI_URL_MAX) || dp->url[0] == 0 ||
		    !grant_valid(dp->connect) || !grant_valid(dp->grant))
			return 0;
	}
	return 1;
}

static int direct_valid(const Verbus__Control *m)
{
	switch (m->body_case) {
	case VERBUS__CONTROL__BODY_DIRECT_LISTEN:
		return m->direct_listen != NULL &&
		       str_valid(m->direct_listen->url, VBI_URL_MAX) &&
		       m->direct_listen->url[0] != 0;
	case VERBUS__CONTROL__BODY_DIRECT_KEY:
		return m->direct_key != NULL &&
		       m->direct_key->key.len == VBI_DIRECT_KEY_LEN &&
		       m->direct_key->conn_id != 0;
	case VERBUS__CONTROL__BODY_DIRECT_QUERY:
		return m->direct_query != NULL && m->direct_query->id != 0 &&
		       str_valid(m->direct_query->subject, VBI_SUBJECT_MAX) &&
		       m->direct_query->subject[0] != 0;
	case VERBUS__CONTROL__BODY_DIRECT_PATHS:
		return direct_paths_valid(m->direct_paths);
	case VERBUS__CONTROL__BODY_DIRECT_STALE:
		if (m->direct_stale == NULL)
			return 0;
		for (size_t i = 0; i < m->direct_stale->n_subjects; i++)
			if (!str_valid(m->direct_stale->subjects[i],
				       VBI_SUBJECT_MAX))
				return 0;
		return 1;
	case VERBUS__CONTROL__BODY_DIRECT_SWITCH:
		if (m->direct_switch == NULL || m->direct_switch->sub_id == 0 ||
		    m->direct_switch->n_sids > VBI_SWITCH_SIDS_MAX)
			return 0;
		for (size_t i = 0; i < m->direct_switch->n_sids; i++)
			if (m->direct_switch->sids[i] == 0)
				return 0;
		return 1;
	case VERBUS__CONTROL__BODY_DIRECT_FENCE:
		return m->direct_fence != NULL && m->direct_fence->pub_id != 0;
	case VERBUS__CONTROL__BODY_DIRECT_REVOKE:
		return m->direct_revoke != NULL &&
		       m->direct_revoke->pub_id != 0;
	case VERBUS__CONTROL__BODY_DIRECT_GRANT:
		return grant_valid(m->direct_grant) &&
		       m->direct_grant->subject[0] != 0;
	default:
		return 0;
	}
}

static int validate(const Verbus__Control *m)
{
	switch (m->body_case) {
	case VERBUS__CONTROL__BODY_HELLO:
		if (m->hello == NULL || !ring_valid(m->hello->ring) ||
		    !str_valid(m->hello->name, VBI_NAME_MAX) ||
		    m->hello->credentials.len > VBI_CRED_MAX ||
		    m->hello->max_msg_size == 0 || m->hello->credits == 0)
			return VB_EPROTO;
		return VB_OK;
	case VERBUS__CONTROL__BODY_WELCOME:
		if (m->welcome == NULL || !ring_valid(m->welcome->ring) ||
		    m->welcome->credits == 0 || m->welcome->max_msg_size == 0 ||
		    !str_valid(m->welcome->server_version, VBI_VERSION_MAX))
			return VB_EPROTO;
		return VB_OK;
	case VERBUS__CONTROL__BODY_CREDIT:
		return m->credit != NULL ? VB_OK : VB_EPROTO;
	case VERBUS__CONTROL__BODY_ERROR:
		if (m->error == NULL ||
		    !str_valid(m->error->reason, VBI_REASON_MAX))
			return VB_EPROTO;
		return VB_OK;
	case VERBUS__CONTROL__BODY_SUBSCRIBE:
		/* Lengths only: the broker checks the syntax and says why. */
		if (m->subscribe == NULL || m->subscribe->sid == 0 ||
		    !str_valid(m->subscribe->subject, VBI_SUBJECT_MAX) ||
		    !str_valid(m->subscribe->queue, VBI_QUEUE_MAX))
			return VB_EPROTO;
		return VB_OK;
	case VERBUS__CONTROL__BODY_UNSUBSCRIBE:
		return m->unsubscribe != NULL && m->unsubscribe->sid != 0 ?
			       VB_OK :
			       VB_EPROTO;
	case VERBUS__CONTROL__BODY_NOTICE:
		if (m->notice == NULL ||
		    !str_valid(m->notice->reason, VBI_REASON_MAX) ||
		    !str_valid(m->notice->subject, VBI_SUBJECT_MAX))
			return VB_EPROTO;
		return VB_OK;
	case VERBUS__CONTROL__BODY_DROPPED:
		if (m->dropped == NULL ||
		    !str_valid(m->dropped->subject, VBI_SUBJECT_MAX))
			return VB_EPROTO;
		return VB_OK;
	case VERBUS__CONTROL__BODY_PING:
		return m->ping != NULL ? VB_OK : VB_EPROTO;
	case VERBUS__CONTROL__BODY_PONG:
		return m->pong != NULL ? VB_OK : VB_EPROTO;
	case VERBUS__CONTROL__BODY_ROUTE_SUB:
		/* Lengths only: the receiving broker checks the syntax. */
		if (m->route_sub == NULL || m->route_sub->id == 0 ||
		    m->route_sub->id >= VBI_ACCOUNT_SID ||
		    (m->route_sub->account_sid != 0 &&
		     m->route_sub->account_sid < VBI_ACCOUNT_SID) ||
		    !str_valid(m->route_sub->subject, VBI_SUBJECT_MAX) ||
		    !str_valid(m->route_sub->queue, VBI_QUEUE_MAX) ||
		    !str_valid(m->route_sub->account, VBI_ACCOUNT_MAX))
			return VB_EPROTO;
		return VB_OK;
	case VERBUS__CONTROL__BODY_ROUTE_UNSUB:
		return m->route_unsub != NULL && m->route_unsub->id != 0 ?
			       VB_OK :
			       VB_EPROTO;
	case VERBUS__CONTROL__BODY_INFO:
		if (m->info == NULL ||
		    !str_valid(m->info->server_id, VBI_NAME_MAX) ||
		    !str_valid(m->info->cluster, VBI_NAME_MAX) ||
		    m->info->n_connect_urls > VBI_INFO_URLS_MAX)
			return VB_EPROTO;
		for (size_t i = 0; i < m->info->n_connect_urls; i++)
			if (!str_valid(m->info->connect_urls[i], VBI_URL_MAX))
				return VB_EPROTO;
		return VB_OK;
	case VERBUS__CONTROL__BODY_LAME_DUCK:
		return m->lame_duck != NULL ? VB_OK : VB_EPROTO;
	case VERBUS__CONTROL__BODY_DIRECT_LISTEN:
	case VERBUS__CONTROL__BODY_DIRECT_KEY:
	case VERBUS__CONTROL__BODY_DIRECT_QUERY:
	case VERBUS__CONTROL__BODY_DIRECT_PATHS:
	case VERBUS__CONTROL__BODY_DIRECT_STALE:
	case VERBUS__CONTROL__BODY_DIRECT_SWITCH:
	case VERBUS__CONTROL__BODY_DIRECT_FENCE:
	case VERBUS__CONTROL__BODY_DIRECT_REVOKE:
	case VERBUS__CONTROL__BODY_DIRECT_GRANT:
		return direct_valid(m) ? VB_OK : VB_EPROTO;
	default:
		/* NOT_SET, or a kind from a newer peer we cannot act on. */
		return VB_EPROTO;
	}
}

int vbi_codec_decode(const void *buf, size_t len, Verbus__Control **out)
{
	Verbus__Control *m;
	int rc;

	if (buf == NULL || len == 0 || len > VBI_CTRL_MAX)
		return VB_EMSGSIZE;
	m = verbus__control__unpack(NULL, len, buf);
	if (m == NULL)
		return VB_EPROTO;
	rc = validate(m);
	if (rc != VB_OK) {
		verbus__control__free_unpacked(m, NULL);
		return rc;
	}
	*out = m;
	return VB_OK;
}

int vbi_codec_grant_decode(const void *buf, size_t len,
			   Verbus__DirectGrant **out)
{
	Verbus__DirectGrant *g;

	if (buf == NULL || len == 0 || len > VBI_CRED_MAX)
		return VB_EMSGSIZE;
	g = verbus__direct_grant__unpack(NULL, len, buf);
	if (g == NULL)
		return VB_EPROTO;
	if (!grant_valid(g) || g->subject[0] != 0) {
		verbus__direct_grant__free_unpacked(g, NULL);
		return VB_EPROTO;
	}
	*out = g;
	return VB_OK;
}

void vbi_codec_grant_free(Verbus__DirectGrant *g)
{
	if (g != NULL)
		verbus__direct_grant__free_unpacked(g, NULL);
}

void vbi_codec_free(Verbus__Control *msg)
{
	if (msg != NULL)
		verbus__control__free_unpacked(msg, NULL);
}

const char *vbi_codec_kind_name(const Verbus__Control *msg)
{
	switch (msg ? msg->body_case : VERBUS__CONTROL__BODY__NOT_SET) {
	case VERBUS__CONTROL__BODY_HELLO:
		return "hello";
	case VERBUS__CONTROL__BODY_WELCOME:
		return "welcome";
	case VERBUS__CONTROL__BODY_ERROR:
		return "error";
	case VERBUS__CONTROL__BODY_CREDIT:
		return "credit";
	case VERBUS__CONTROL__BODY_SUBSCRIBE:
		return "subscribe";
	case VERBUS__CONTROL__BODY_UNSUBSCRIBE:
		return "unsubscribe";
	case VERBUS__CONTROL__BODY_NOTICE:
		return "notice";
	case VERBUS__CONTROL__BODY_DROPPED:
		return "dropped";
	case VERBUS__CONTROL__BODY_PING:
		return "ping";
	case VERBUS__CONTROL__BODY_PONG:
		return "pong";
	case VERBUS__CONTROL__BODY_ROUTE_SUB:
		return "route_sub";
	case VERBUS__CONTROL__BODY_ROUTE_UNSUB:
		return "route_unsub";
	case VERBUS__CONTROL__BODY_INFO:
		return "info";
	case VERBUS__CONTROL__BODY_LAME_DUCK:
		return "lame_duck";
	case VERBUS__CONTROL__BODY_DIRECT_LISTEN:
		return "direct_listen";
	case VERBUS__CONTROL__BODY_DIRECT_KEY:
		return "direct_key";
	case VERBUS__CONTROL__BODY_DIRECT_QUERY:
		return "direct_query";
	case VERBUS__CONTROL__BODY_DIRECT_PATHS:
		return "direct_paths";
	case VERBUS__CONTROL__BODY_DIRECT_STALE:
		return "direct_stale";
	case VERBUS__CONTROL__BODY_DIRECT_SWITCH:
		return "direct_switch";
	case VERBUS__CONTROL__BODY_DIRECT_FENCE:
		return "direct_fence";
	case VERBUS__CONTROL__BODY_DIRECT_REVOKE:
		return "direct_revoke";
	case VERBUS__CONTROL__BODY_DIRECT_GRANT:
		return "direct_grant";
	default:
		return "unknown";
	}
}
