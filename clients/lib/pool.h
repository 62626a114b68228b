/*
 * pool.h - a client's server pool: the brokers one vb_conn may connect to,
 * and which of them to try next (nats.c's natsSrvPool).
 *
 * The pool holds the user's servers, from the comma-separated list given
 * to vb_connect() ("tcp://a:7700, tcp://b:7700"), and those the brokers
 * advertise in Info control messages (connect_urls), marked discovered.
 * One of them is current: the server of the open connection, or the one
 * being tried.  When it fails (an attempt, or the loss of its open
 * connection) the next one in the pool becomes current, round robin, none
 * skipped; once every server has failed since the last open, a pass is
 * complete and the caller waits (its backoff) before the next.
 *
 * Pure logic: no I/O, no clock (the caller passes the time), nothing but
 * core/url's parser and the transport layer's table of schemes.
 *
 * Threading: none of its own; the owner serialises every call (a vb_conn
 * calls it under its lock).  Ownership: the pool owns its entries; a
 * pointer from vbi_pool_get() or vbi_pool_current() is valid until the
 * next vbi_pool_merge() or vbi_pool_destroy().  Nothing here blocks.
 */
#ifndef VERBUS_CLIENTS_LIB_POOL_H
#define VERBUS_CLIENTS_LIB_POOL_H

#include <verbus/verbus.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The most servers a pool holds, the user's and discovered together (the
 * Info message carries at most as many URLs). */
#define VBI_POOL_MAX VB_URL_LIST_MAX

/* "scheme://" + "[" host "]" + ":" port, NUL-terminated. */
#define VBI_POOL_URL_LEN                            \
	(sizeof(((struct vb_url *)0)->scheme) + 3 + \
	 sizeof(((struct vb_url *)0)->host) + 3 +   \
	 sizeof(((struct vb_url *)0)->port))

/* One server of the pool. */
struct vbi_srv {
	struct vb_url url; /* scheme, host and port, as parsed */
	bool discovered; /* learned from an Info, not given by the user */
	unsigned attempts; /* failures since it was last open */
	uint64_t last_fail_ns; /* when it last failed; 0: never */
	int last_err; /* why it last failed (enum vb_err); VB_OK: never */
};

struct vbi_pool;

/* vbi_pool_create() flags */
#define VBI_POOL_SHUFFLE 0x1 /* the user's servers in a random order */

/*
 * vbi_pool_create() - a pool of the servers in @list: one URL ("tcp://h:1")
 * or several separated by commas, spaces around each ignored.  Every
 * element must parse (core/url.h) and have a transport in this build; an
 * empty element, or more than VBI_POOL_MAX distinct servers, is an error.
 * Duplicates (same scheme, host without case, and port) are dropped, the
 * first kept.  With VBI_POOL_SHUFFLE the servers are put in a random
 * order drawn from @seed, else they stay in the list's; the first is
 * current.  Returns VB_OK, VB_EINVAL with a lowercase reason in @err
 * (@errlen bytes, NUL-terminated, cut if need be) or VB_ENOMEM; *@out is
 * written on success only.
 */
int vbi_pool_create(const char *list, unsigned flags, uint64_t seed,
		    struct vbi_pool **out, char *err, size_t errlen);

/* vbi_pool_destroy() - free @p; accepts NULL. */
void vbi_pool_destroy(struct vbi_pool *p);

/* vbi_pool_count() - the servers in @p now. */
size_t vbi_pool_count(const struct vbi_pool *p);

/* vbi_pool_get() - server @i (0 .. count - 1) in the order they are
 * tried, or NULL. */
const struct vbi_srv *vbi_pool_get(const struct vbi_pool *p, size_t i);

/* vbi_pool_current() - the server to connect to, or connected to. */
const struct vbi_srv *vbi_pool_current(const struct vbi_pool *p);

/*
 * vbi_pool_failed() - the current server failed with @err at @now_ns (an
 * attempt that did not open, or the loss of its open connection): count
 * it, and make the next server current.  Returns true if that completed a
 * pass: every server has failed once since the last open (or since the
 * last completed pass); the next pass starts at the new current server.
 */
bool vbi_pool_failed(struct vbi_pool *p, int err, uint64_t now_ns);

/* vbi_pool_opened() - a connection to the current server opened: its
 * failures are forgotten and a new pass starts with the next failure. */
void vbi_pool_opened(struct vbi_pool *p);

/* What vbi_pool_merge() did. */
struct vbi_pool_merge_result {
	size_t added; /* new discovered servers */
	size_t removed; /* discovered servers the list no longer names */
	size_t ignored; /* elements that do not parse, have no transport,
			 * are refused by @only_scheme, or find no room */
};

/*
 * vbi_pool_merge() - what a broker advertised: @n URLs at @urls (strings
 * from the wire: any of them may be malformed, and is then ignored).  An
 * element that names no scheme takes @default_scheme (the scheme of the
 * server that sent them) if not NULL; with @only_scheme not NULL, elements
 * of another scheme are ignored (TLS options apply to tls:// only).  URLs
 * not in the pool are added at its end, marked discovered (shuffled among
 * themselves with VBI_POOL_SHUFFLE, from @seed); discovered servers that
 * @urls no longer names are removed, except the current one.  The user's
 * servers are never removed.  The pool keeps at most VBI_POOL_MAX; what
 * does not fit is ignored.  The current server stays current.  @r may be
 * NULL.  Never fails.
 */
void vbi_pool_merge(struct vbi_pool *p, const char *const *urls, size_t n,
		    const char *default_scheme, const char *only_scheme,
		    unsigned flags, uint64_t seed,
		    struct vbi_pool_merge_result *r);

/*
 * vbi_pool_url() - @u as a URL, "scheme://host:port" (an IPv6 host in
 * brackets), into @buf (@len bytes, NUL-terminated; VBI_POOL_URL_LEN
 * always suffices).  Returns VB_OK, or VB_ENOSPC with @buf holding what
 * fit (if @len > 0).
 */
int vbi_pool_url(const struct vb_url *u, char *buf, size_t len);

/* vbi_pool_same() - whether @a and @b name the same server: the same
 * scheme and port, and host without case. */
bool vbi_pool_same(const struct vb_url *a, const struct vb_url *b);

#endif /* VERBUS_CLIENTS_LIB_POOL_H */
