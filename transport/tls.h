/*
 * tls.h - TLS for the TCP transport (tcp.c's "tls" scheme), over OpenSSL:
 * the one file that knows OpenSSL.  docs/DEPENDENCIES.md says why OpenSSL.
 *
 * A context (struct vbi_tls_ctx) holds what a side presents and trusts: a
 * listener's certificate, key and client CA; a client's CA and optional
 * certificate.  A session (struct vbi_tls) is one connection's TLS on a
 * non-blocking socket: every call does what the socket allows and says
 * which readiness it waits for; nothing blocks.
 *
 * Writes: TLS has no gather, so vbi_tls_write() copies up to one TLS
 * record (VBI_TLS_CHUNK bytes) of the caller's iovecs into the caller's
 * scratch buffer and encrypts that.  A write that the socket did not take
 * (VBI_TLS_WANT_OUT) must be repeated with the same bytes from the same
 * stream position (OpenSSL's rule); vbi_tls_write() keeps the length, the
 * caller keeps the bytes (tcp.c's records stay put until written).
 *
 * Threading: a context is shared by the connections made from it and
 * freed when the last lets go (OpenSSL counts them); a session belongs to
 * its connection's thread.  OpenSSL's own error queue is per thread and
 * is cleared before each call here.
 */
#ifndef VERBUS_TRANSPORT_TLS_H
#define VERBUS_TRANSPORT_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

#define VBI_TLS_CHUNK 16384u /* plaintext of one TLS record at most */

/* Outcomes of a handshake, read or write step. */
enum vbi_tls_rc {
	VBI_TLS_OK = 0, /* done (bytes moved, or the handshake finished) */
	VBI_TLS_WANT_IN, /* call again once the socket is readable */
	VBI_TLS_WANT_OUT, /* call again once the socket is writable */
	VBI_TLS_EOF, /* the peer closed the stream (read) */
	VBI_TLS_ERRNO, /* the socket failed: errno says how */
	VBI_TLS_PLAIN, /* handshake: the peer's first byte is no TLS record's
			* (it speaks plain TCP); its bytes are left unread */
	VBI_TLS_DENIED, /* a certificate was refused, ours or the peer's */
	VBI_TLS_FAIL, /* anything else: vbi_tls_why() says what */
};

struct vbi_tls_ctx;
struct vbi_tls;

/* What a context is made of: PEM file names, NULL for none. */
struct vbi_tls_conf {
	const char *cert; /* our certificate chain: a server's, required */
	const char *key; /* its private key */
	/* A server: every client must present a certificate this CA
	 * signed.  A client: the CAs that verify the server [the system's
	 * default CA store]. */
	const char *ca;
};

/*
 * vbi_tls_ctx_create() - a context for a server (@server) or client from
 * @conf.  VB_OK, VB_EINVAL (a file that does not load, a key that does not
 * match its certificate, a server without certificate: why in @err) or
 * VB_ENOMEM.
 */
int vbi_tls_ctx_create(const struct vbi_tls_conf *conf, bool server,
		       struct vbi_tls_ctx **out, char *err, size_t errlen);

/* vbi_tls_ctx_put() - let go of @ctx (sessions keep their own hold).
 * Accepts NULL. */
void vbi_tls_ctx_put(struct vbi_tls_ctx *ctx);

/*
 * vbi_tls_create() - a session on socket @fd from @ctx, the accepting side
 * if @server (@ctx must be a server's then).  A client's @peer_name (a DNS name or an IP address) is what the server's
 * certificate must name, and the SNI it sends when a name.  VB_OK,
 * VB_ENOMEM or VB_EINVAL.
 */
int vbi_tls_create(struct vbi_tls_ctx *ctx, int fd, bool server,
		   const char *peer_name, struct vbi_tls **out);

/* vbi_tls_destroy() - free @s (not its socket).  Accepts NULL. */
void vbi_tls_destroy(struct vbi_tls *s);

/* vbi_tls_handshake() - advance the handshake: VBI_TLS_OK once done. */
enum vbi_tls_rc vbi_tls_handshake(struct vbi_tls *s);

/* vbi_tls_read() - up to @len bytes into @buf; *@got on VBI_TLS_OK. */
enum vbi_tls_rc vbi_tls_read(struct vbi_tls *s, void *buf, size_t len,
			     size_t *got);

/*
 * vbi_tls_write() - encrypt and send the first bytes of @iov (@n entries),
 * up to VBI_TLS_CHUNK, through @scratch (VBI_TLS_CHUNK bytes); *@put is
 * the plaintext bytes taken on VBI_TLS_OK.  After VBI_TLS_WANT_OUT the
 * next call must offer the same bytes again.
 */
enum vbi_tls_rc vbi_tls_write(struct vbi_tls *s, const struct iovec *iov, int n,
			      void *scratch, size_t *put);

/* vbi_tls_pending() - decrypted bytes wait in @s: readable without the
 * socket saying so. */
bool vbi_tls_pending(const struct vbi_tls *s);

/* vbi_tls_close() - send the close alert, best effort, once. */
void vbi_tls_close(struct vbi_tls *s);

/* vbi_tls_why() - what the last VBI_TLS_FAIL or _DENIED was about. */
const char *vbi_tls_why(const struct vbi_tls *s);

/* vbi_tls_describe() - "TLSv1.3 TLS_AES_256_GCM_SHA384" once handshaken. */
void vbi_tls_describe(const struct vbi_tls *s, char *buf, size_t len);

#endif
