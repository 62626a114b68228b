/*
 * codec.h - the only door between Verbus and protobuf-c.
 *
 * Control messages (proto/verbus.proto) are packed into, and unpacked from,
 * caller-owned buffers.  Decoding is defensive: the length is checked before
 * protobuf-c sees the bytes, and the decoded message is checked for the
 * fields each kind requires, so that callers only ever see well-formed
 * messages.  The rdma_cm private-data record (magic and version) lives here
 * too: it is the other thing a peer sends before it is trusted.
 *
 * Threading: every function is reentrant; none blocks.
 */
#ifndef VERBUS_PROTO_CODEC_H
#define VERBUS_PROTO_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "verbus.pb-c.h"

/* Protocol version spoken by this build; a peer must speak the same one. */
#define VBI_PROTO_VERSION 1u

/*
 * Largest packed control message, and so the size of each control buffer:
 * room for a Subscribe with the longest subject (VBI_SUBJECT_MAX) and queue
 * name (VBI_QUEUE_MAX) and their framing.
 */
#define VBI_CTRL_MAX 2048u

/* Longest client name and credentials accepted in a Hello. */
#define VBI_NAME_MAX 64u
#define VBI_CRED_MAX 256u
/* Longest reason accepted in an Error. */
#define VBI_REASON_MAX 256u
/* Longest account name in a RouteSub (daemon/account.h's names). */
#define VBI_ACCOUNT_MAX 64u
/* A route frame's sid with this bit names an account (RouteSub
 * account_sid); below it, an interest entry (RouteSub id). */
#define VBI_ACCOUNT_SID 0x80000000u
/* An Info's member URLs: how many, and the longest. */
#define VBI_INFO_URLS_MAX 64u
#define VBI_URL_MAX 256u
/* Longest server version accepted in a Welcome. */
#define VBI_VERSION_MAX 32u

/* Direct mode (PROTOCOL.md): a DirectKey's key, a grant's nonce and MAC
 * (HMAC-SHA256), and the most sids one grant names. */
#define VBI_DIRECT_KEY_LEN 32u
#define VBI_GRANT_NONCE_LEN 16u
#define VBI_GRANT_MAC_LEN 32u
#define VBI_GRANT_SIDS_MAX 64u
/* The most sids one DirectSwitch names (they fit VBI_CTRL_MAX). */
#define VBI_SWITCH_SIDS_MAX 256u

/* "VBUS" in ASCII: the first four bytes of the rdma_cm private data. */
#define VBI_CM_MAGIC 0x56425553u
/* Bytes of the encoded private-data record (fits rdma_cm's 56 on connect). */
#define VBI_CM_HDR_LEN 8u

/* The rdma_cm private-data record, decoded. */
struct vbi_cm_hdr {
	uint32_t magic; /* VBI_CM_MAGIC */
	uint16_t version; /* VBI_PROTO_VERSION of the sender */
	uint16_t reason; /* a reject's VBI_CM_REJ_*; 0 on connect and accept */
};

/* Why a server rejected a connection request (the reject's record). */
#define VBI_CM_REJ_NONE 0u /* unspecified (or a version mismatch) */
#define VBI_CM_REJ_FULL 1u /* max_conns connections open or in handshake */
#define VBI_CM_REJ_ADDR 2u /* too many handshakes from this address */
#define VBI_CM_REJ_SHUTDOWN 3u /* the server is shutting down */
#define VBI_CM_REJ_TLS 4u /* tls listener, plain client: TLS is required */

/*
 * vbi_cm_hdr_encode() - write the record for this build into @buf (at least
 * VBI_CM_HDR_LEN bytes), in network byte order.
 */
void vbi_cm_hdr_encode(void *buf);

/*
 * vbi_cm_hdr_encode_reject() - the same record with @reason (VBI_CM_REJ_*),
 * for a reject's private data.
 */
void vbi_cm_hdr_encode_reject(void *buf, uint16_t reason);

/* vbi_cm_reject_reason() - the words for a VBI_CM_REJ_* code. */
const char *vbi_cm_reject_reason(uint16_t reason);

/*
 * vbi_cm_reject_code() - the VBI_CM_REJ_* code for a server's refusal
 * @err (the transport's accept callback's): VB_ENOSPC full, VB_EAGAIN
 * too many handshakes from the address, VB_ESTATE shutting down, else
 * VBI_CM_REJ_NONE.
 */
uint16_t vbi_cm_reject_code(int err);

/*
 * vbi_cm_hdr_decode() - check a peer's private data.  Returns VB_OK, VB_EPROTO
 * (too short, or not Verbus) or VB_EVERSION (Verbus, another version: *hdr is
 * still filled so that the caller can report the peer's version).
 */
int vbi_cm_hdr_decode(const void *buf, size_t len, struct vbi_cm_hdr *hdr);

/*
 * vbi_codec_encode() - pack @msg into @buf of @cap bytes, setting *@len.
 * Returns VB_OK, VB_EINVAL (no body set) or VB_EMSGSIZE (larger than @cap or
 * VBI_CTRL_MAX): the size is checked before anything is written.
 */
int vbi_codec_encode(const Verbus__Control *msg, void *buf, size_t cap,
		     size_t *len);

/*
 * vbi_codec_decode() - unpack and validate @len bytes received from a peer.
 * On VB_OK, *@out is a message the caller owns and frees with
 * vbi_codec_free().  Returns VB_EMSGSIZE (empty or over VBI_CTRL_MAX),
 * VB_EPROTO (not a valid Control, or missing or oversized fields) or
 * VB_ENOMEM; *@out is untouched on error.
 */
int vbi_codec_decode(const void *buf, size_t len, Verbus__Control **out);

/*
 * vbi_codec_grant_decode() - unpack and validate a direct connection's
 * Hello credentials: a packed connect grant (a DirectGrant with no
 * subject), its fields checked as vbi_codec_decode() checks a
 * DirectGrant's (not its MAC: core/grant.h).  On VB_OK the caller owns
 * *@out (vbi_codec_grant_free()).  VB_EMSGSIZE, VB_EPROTO or VB_ENOMEM.
 */
int vbi_codec_grant_decode(const void *buf, size_t len,
			   Verbus__DirectGrant **out);
void vbi_codec_grant_free(Verbus__DirectGrant *g);

/* vbi_codec_free() - release a decoded message; NULL is accepted. */
void vbi_codec_free(Verbus__Control *msg);

/* vbi_codec_kind_name() - "hello", "welcome", "error", "credit" or "unknown". */
const char *vbi_codec_kind_name(const Verbus__Control *msg);

#endif /* VERBUS_PROTO_CODEC_H */
