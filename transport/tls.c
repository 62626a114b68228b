/*
 * tls.c - TLS sessions and contexts over OpenSSL (tls.h).
 *
 * Choices, all for a broker's traffic: TLS 1.2 at least, no renegotiation
 * (TLS 1.2's is a denial-of-service lever and nothing here needs it), no
 * session tickets (a connection lives long; resumption saves nothing and
 * tickets cost a write after the handshake), no compression, and an end of
 * stream without close_notify read as an end of stream: the session
 * protocol's own framing catches a truncated stream.
 */
#include "tls.h"

#include <verbus/verbus.h>

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct vbi_tls {
	SSL *ssl;
	int fd;
	bool eof; /* the socket read its end */
	bool seen; /* the peer's first byte has been looked at */
	bool plain; /* ...and it was no TLS record's */
	size_t retry_len; /* a write's length, to be offered again */
	bool closed; /* close_notify sent (or tried) */
	char why[160];
};

/*
 * The socket BIO.  OpenSSL's own writes with write(), and a peer gone
 * would raise SIGPIPE in the host process: this one sends with
 * MSG_NOSIGNAL, as the plain transport does.  One method, made once,
 * for the life of the process.
 */
static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

/* Could @b start a TLS record (content types 20-23)?  Tells a TLS peer
 * from a plain one by its first byte. */
static bool is_record(unsigned char b)
{
	return b >= 20 && b <= 23;
}

static int bio_write(BIO *b, const char *buf, int len)
{
	struct vbi_tls *s = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	n = send(s->fd, buf, (size_t)len, MSG_NOSIGNAL);
	if (n < 0 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		BIO_set_retry_write(b);
	return (int)n;
}

static int bio_read(BIO *b, char *buf, int len)
{
	struct vbi_tls *s = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	/* The peer's first byte, looked at and left in place: a peer in
	 * plain TCP fails the handshake with VBI_TLS_PLAIN and its bytes
	 * unread (a reject record, or a version record, for the caller). */
	if (!s->seen) {
		unsigned char c;

		if (recv(s->fd, &c, 1, MSG_PEEK) == 1) {
			s->seen = true;
			if (!is_record(c)) {
				s->plain = true;
				errno = EPROTO;
				return -1;
			}
		}
	}
	n = recv(s->fd, buf, (size_t)len, 0);
	if (n == 0)
		s->eof = true;
	else if (n < 0 &&
		 (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		BIO_set_retry_read(b);
	return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct vbi_tls *s = BIO_get_data(b);

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_EOF:
		return s->eof;
	default:
		return 0;
	}
}

static void bio_method_init(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
				     "verbus socket");

	if (m && BIO_meth_set_write(m, bio_write) &&
	    BIO_meth_set_read(m, bio_read) && BIO_meth_set_ctrl(m, bio_ctrl))
		bio_method = m;
	else
		BIO_meth_free(m);
}

static SSL_CTX *sctx(struct vbi_tls_ctx *c)
{
	return (SSL_CTX *)(void *)c;
}

/* OpenSSL's reason for its most recent error, in words. */
static const char *reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	return r ? r : "unknown error";
}

static int ctx_fail(SSL_CTX *ctx, char *err, size_t len, const char *what,
		    const char *file)
{
	const char *r = reason();
	unsigned long e;

	/* A file that does not open: the system's words, not "system lib". */
	while ((e = ERR_get_error()) != 0) {
		if (ERR_SYSTEM_ERROR(e)) {
			r = strerror(ERR_GET_REASON(e));
			break;
		}
	}
	snprintf(err, len, "tls: cannot load %s '%s': %s", what, file, r);
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return VB_EINVAL;
}

int vbi_tls_ctx_create(const struct vbi_tls_conf *conf, bool server,
		       struct vbi_tls_ctx **out, char *err, size_t errlen)
{
	uint64_t opts = SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION;
	SSL_CTX *ctx;

	*out = NULL;
	if (server && (!conf->cert || !conf->key)) {
		snprintf(err, errlen,
			 "tls: a listener needs a certificate "
			 "and its key");
		return VB_EINVAL;
	}
	if (!conf->cert != !conf->key) {
		snprintf(err, errlen,
			 "tls: a certificate needs its key, and "
			 "a key its certificate");
		return VB_EINVAL;
	}
	ERR_clear_error();
	ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!ctx) {
		snprintf(err, errlen, "tls: %s", reason());
		ERR_clear_error();
		return VB_ENOMEM;
	}
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	opts |= SSL_OP_IGNORE_UNEXPECTED_EOF;
#endif
	if (server) {
		opts |= SSL_OP_NO_TICKET;
		SSL_CTX_set_num_tickets(ctx, 0);
	}
	SSL_CTX_set_options(ctx, opts);
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (conf->cert) {
		if (SSL_CTX_use_certificate_chain_file(ctx, conf->cert) != 1)
			return ctx_fail(ctx, err, errlen, "the certificate",
					conf->cert);
		if (SSL_CTX_use_PrivateKey_file(ctx, conf->key,
						SSL_FILETYPE_PEM) != 1)
			return ctx_fail(ctx, err, errlen, "the key", conf->key);
		if (SSL_CTX_check_private_key(ctx) != 1)
			return ctx_fail(ctx, err, errlen,
					"a key that matches the certificate",
					conf->key);
	}
	if (conf->ca) {
		if (SSL_CTX_load_verify_locations(ctx, conf->ca, NULL) != 1)
			return ctx_fail(ctx, err, errlen, "the CA file",
					conf->ca);
	} else if (!server && SSL_CTX_set_default_verify_paths(ctx) != 1) {
		return ctx_fail(ctx, err, errlen, "the system's CAs",
				"default");
	}
	if (server && conf->ca) {
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(conf->ca);

		if (!names)
			return ctx_fail(ctx, err, errlen, "the CA names",
					conf->ca);
		SSL_CTX_set_client_CA_list(ctx, names);
		SSL_CTX_set_verify(
			ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
			NULL);
	} else if (!server) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	*out = (struct vbi_tls_ctx *)(void *)ctx;
	return VB_OK;
}

void vbi_tls_ctx_put(struct vbi_tls_ctx *ctx)
{
	SSL_CTX_free(sctx(ctx));
}

int vbi_tls_create(struct vbi_tls_ctx *ctx, int fd, bool server,
		   const char *peer_name, struct vbi_tls **out)
{
	struct vbi_tls *s = calloc(1, sizeof(*s));
	unsigned char ip[16];
	BIO *bio;
	int ok;

	*out = NULL;
	if (!s)
		return VB_ENOMEM;
	s->fd = fd;
	ERR_clear_error();
	pthread_once(&bio_once, bio_method_init);
	s->ssl = SSL_new(sctx(ctx));
	bio = bio_method ? BIO_new(bio_method) : NULL;
	if (!s->ssl || !bio) {
		BIO_free(bio);
		goto out_free;
	}
	BIO_set_data(bio, s);
	BIO_set_init(bio, 1);
	SSL_set_bio(s->ssl, bio, bio); /* one reference, for both */
	if (server) {
		SSL_set_accept_state(s->ssl);
	} else {
		SSL_set_connect_state(s->ssl);
		if (peer_name && (inet_pton(AF_INET, peer_name, ip) == 1 ||
				  inet_pton(AF_INET6, peer_name, ip) == 1)) {
			ok = X509_VERIFY_PARAM_set1_ip_asc(
				SSL_get0_param(s->ssl), peer_name);
		} else if (peer_name) {
			ok = SSL_set_tlsext_host_name(s->ssl, peer_name) &&
			     SSL_set1_host(s->ssl, peer_name);
		} else {
			ok = 1;
		}
		if (ok != 1) {
			vbi_tls_destroy(s);
			ERR_clear_error();
			return VB_EINVAL;
		}
	}
	*out = s;
	return VB_OK;
out_free:
	vbi_tls_destroy(s);
	ERR_clear_error();
	return VB_ENOMEM;
}

void vbi_tls_destroy(struct vbi_tls *s)
{
	if (!s)
		return;
	SSL_free(s->ssl);
	free(s);
}

/* Is OpenSSL's error a certificate refused, by us or by the peer? */
static bool denied(unsigned long e)
{
	if (ERR_GET_LIB(e) != ERR_LIB_SSL)
		return false;
	switch (ERR_GET_REASON(e)) {
	case SSL_R_CERTIFICATE_VERIFY_FAILED:
	case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
	case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
	case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
	case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
	case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
	case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
		return true;
	default:
		return false;
	}
}

/* What an OpenSSL call's result @r means, with the words in s->why. */
static enum vbi_tls_rc outcome(struct vbi_tls *s, int r)
{
	int err = SSL_get_error(s->ssl, r);
	enum vbi_tls_rc rc = VBI_TLS_FAIL;
	long vr;

	if (s->plain) {
		ERR_clear_error();
		return VBI_TLS_PLAIN;
	}
	switch (err) {
	case SSL_ERROR_WANT_READ:
		return VBI_TLS_WANT_IN;
	case SSL_ERROR_WANT_WRITE:
		return VBI_TLS_WANT_OUT;
	case SSL_ERROR_ZERO_RETURN:
		return VBI_TLS_EOF;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0) {
			int e = errno;

			ERR_clear_error();
			errno = e;
			return e == 0 ? VBI_TLS_EOF : VBI_TLS_ERRNO;
		}
		snprintf(s->why, sizeof(s->why), "%s", reason());
		break;
	case SSL_ERROR_SSL:
		vr = SSL_get_verify_result(s->ssl);
		if (vr != X509_V_OK) {
			snprintf(s->why, sizeof(s->why),
				 "certificate verify failed: %s",
				 X509_verify_cert_error_string(vr));
			rc = VBI_TLS_DENIED;
			break;
		}
		snprintf(s->why, sizeof(s->why), "%s", reason());
		if (denied(ERR_peek_last_error()))
			rc = VBI_TLS_DENIED;
		break;
	default:
		snprintf(s->why, sizeof(s->why), "error %d", err);
		break;
	}
	ERR_clear_error();
	return rc;
}

enum vbi_tls_rc vbi_tls_handshake(struct vbi_tls *s)
{
	int r;

	ERR_clear_error();
	errno = 0;
	r = SSL_do_handshake(s->ssl);
	return r == 1 ? VBI_TLS_OK : outcome(s, r);
}

enum vbi_tls_rc vbi_tls_read(struct vbi_tls *s, void *buf, size_t len,
			     size_t *got)
{
	int r;

	ERR_clear_error();
	errno = 0;
	r = SSL_read_ex(s->ssl, buf, len, got);
	return r == 1 ? VBI_TLS_OK : outcome(s, r);
}

enum vbi_tls_rc vbi_tls_write(struct vbi_tls *s, const struct iovec *iov, int n,
			      void *scratch, size_t *put)
{
	size_t want = s->retry_len ? s->retry_len : VBI_TLS_CHUNK, have = 0;
	enum vbi_tls_rc rc;
	int r;

	*put = 0;
	for (int i = 0; i < n && have < want; i++) {
		size_t k = iov[i].iov_len < want - have ? iov[i].iov_len :
							  want - have;

		memcpy((char *)scratch + have, iov[i].iov_base, k);
		have += k;
	}
	if (have == 0)
		return VBI_TLS_OK;
	if (s->retry_len && have != s->retry_len) {
		snprintf(s->why, sizeof(s->why),
			 "a write retried with %zu bytes, not %zu", have,
			 s->retry_len);
		return VBI_TLS_FAIL;
	}
	ERR_clear_error();
	errno = 0;
	r = SSL_write_ex(s->ssl, scratch, have, put);
	if (r == 1) {
		s->retry_len = 0;
		return VBI_TLS_OK;
	}
	rc = outcome(s, r);
	if (rc == VBI_TLS_WANT_IN || rc == VBI_TLS_WANT_OUT)
		s->retry_len = have;
	return rc;
}

bool vbi_tls_pending(const struct vbi_tls *s)
{
	return SSL_pending(s->ssl) > 0;
}

void vbi_tls_close(struct vbi_tls *s)
{
	if (!s || s->closed)
		return;
	s->closed = true;
	if (!SSL_is_init_finished(s->ssl))
		return;
	ERR_clear_error();
	SSL_shutdown(s->ssl);
	ERR_clear_error();
}

const char *vbi_tls_why(const struct vbi_tls *s)
{
	return s->why[0] ? s->why : "unknown error";
}

void vbi_tls_describe(const struct vbi_tls *s, char *buf, size_t len)
{
	snprintf(buf, len, "%s %s", SSL_get_version(s->ssl),
		 SSL_get_cipher_name(s->ssl));
}
