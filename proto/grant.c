/*
 * grant.c - HMAC-SHA256 over a grant's fields (proto/grant.h).
 */
#include "proto/grant.h"

#include "core/subject.h"

#include <verbus/verbus.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <string.h>

#define GRANT_LABEL "VBDG"
#define GRANT_CONNECT 1u
#define GRANT_SUBJECT 2u
/* The largest layout: label, kind, 3 ids, nonce, 2 strings, the sids. */
#define GRANT_BUF_MAX                                                 \
	(4 + 1 + 24 + VBI_GRANT_NONCE_LEN + 2 + VBI_SUBJECT_MAX + 2 + \
	 VBI_QUEUE_MAX + 2 + 4 * VBI_GRANT_SIDS_MAX)

static uint8_t *put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

static uint8_t *put_str(uint8_t *p, const char *s, size_t len)
{
	*p++ = (uint8_t)(len >> 8);
	*p++ = (uint8_t)len;
	memcpy(p, s, len);
	return p + len;
}

/* The layout of @g in @buf (GRANT_BUF_MAX bytes): its length, or 0 if a
 * field is out of bounds. */
static size_t layout(const struct vbi_grant *g, uint8_t *buf)
{
	const char *subject = g->subject ? g->subject : "";
	const char *queue = g->queue ? g->queue : "";
	size_t slen = strlen(subject), qlen = strlen(queue);
	uint8_t *p = buf;

	if (slen > VBI_SUBJECT_MAX || qlen > VBI_QUEUE_MAX ||
	    g->nsids > VBI_GRANT_SIDS_MAX || (g->nsids && g->sids == NULL))
		return 0;
	memcpy(p, GRANT_LABEL, 4);
	p += 4;
	*p++ = slen ? GRANT_SUBJECT : GRANT_CONNECT;
	p = put_u64(p, g->pub_id);
	p = put_u64(p, g->sub_id);
	p = put_u64(p, g->expires_ms);
	memcpy(p, g->nonce, VBI_GRANT_NONCE_LEN);
	p += VBI_GRANT_NONCE_LEN;
	p = put_str(p, subject, slen);
	p = put_str(p, queue, qlen);
	*p++ = (uint8_t)(g->nsids >> 8);
	*p++ = (uint8_t)g->nsids;
	for (size_t i = 0; i < g->nsids; i++) {
		*p++ = (uint8_t)(g->sids[i] >> 24);
		*p++ = (uint8_t)(g->sids[i] >> 16);
		*p++ = (uint8_t)(g->sids[i] >> 8);
		*p++ = (uint8_t)g->sids[i];
	}
	return (size_t)(p - buf);
}

int vbi_grant_mac(const uint8_t *key, const struct vbi_grant *g, uint8_t *mac)
{
	uint8_t buf[GRANT_BUF_MAX];
	size_t len = layout(g, buf), out = 0;

	if (len == 0)
		return VB_EINVAL;
	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key,
		      VBI_DIRECT_KEY_LEN, buf, len, mac, VBI_GRANT_MAC_LEN,
		      &out) == NULL ||
	    out != VBI_GRANT_MAC_LEN)
		return VB_ESYS;
	return VB_OK;
}

bool vbi_grant_verify(const uint8_t *key, const struct vbi_grant *g,
		      const uint8_t *mac, size_t mac_len)
{
	uint8_t want[VBI_GRANT_MAC_LEN];

	if (mac == NULL || mac_len != VBI_GRANT_MAC_LEN ||
	    vbi_grant_mac(key, g, want) != VB_OK)
		return false;
	return CRYPTO_memcmp(want, mac, VBI_GRANT_MAC_LEN) == 0;
}

int vbi_grant_from_msg(struct vbi_grant *g, const Verbus__DirectGrant *m,
		       const char *subject)
{
	if (m->nonce.len != VBI_GRANT_NONCE_LEN)
		return VB_EPROTO;
	g->pub_id = m->pub_id;
	g->sub_id = m->sub_id;
	g->expires_ms = m->expires_ms;
	g->subject = subject ? subject : m->subject;
	g->queue = m->queue;
	g->sids = m->sids;
	g->nsids = m->n_sids;
	memcpy(g->nonce, m->nonce.data, VBI_GRANT_NONCE_LEN);
	return VB_OK;
}
