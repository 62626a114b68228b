/*
 * zk.h - verbusd's cluster membership in ZooKeeper.
 *
 * Each broker of a cluster registers one ephemeral node, PATH/members/<id>,
 * holding its opaque data (the addresses other brokers need), and watches
 * the other members.  The caller is told the complete member list, self
 * included, whenever it changes, and when the ZooKeeper session goes up or
 * down.  The node lives as long as the session: a broker that dies
 * disappears from the others' lists once its session times out; one that
 * calls vbd_zk_destroy() disappears at once.
 *
 * It runs on the daemon's event-loop thread with the single-threaded
 * ZooKeeper C client (libzookeeper_st): no thread of its own, no blocking
 * call but the last one, vbd_zk_destroy().  vbd_zk_fd() is one descriptor
 * for the daemon's epoll set, vbd_zk_timeout_ms() bounds its wait, and
 * vbd_zk_process() does what is due; every callback runs inside
 * vbd_zk_process().  ZooKeeper being unreachable, going away or expiring
 * the session never stops the caller: it is reported through the state
 * callback and the module keeps reconnecting (with back-off, never in a
 * busy loop) and registers again by itself.
 *
 * Nothing read from ZooKeeper is trusted: a child whose name is not a
 * valid id, a member whose data is longer than VBD_ZK_DATA_MAX, or more
 * than VBD_ZK_MEMBERS_MAX members, are skipped with a warning.
 *
 * The ZooKeeper library's own log lines go to verbusd's logger (core/log.h,
 * escaped, at most a few per 10 seconds); the library never writes to
 * stdout or stderr itself.  That routing and the library's log level are
 * process-wide.
 *
 * Threading: every function here, and every callback, runs on the thread
 * that created the handle; one handle per process is the intended use.
 */
#ifndef VERBUS_DAEMON_ZK_H
#define VERBUS_DAEMON_ZK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/parse.h" /* VBI_ID_MAX */

struct vbd_zk;

/* A broker id: a name by core/parse.h's one rule ([A-Za-z0-9_.-]{1,63},
 * neither "." nor ".."). */
#define VBD_ZK_ID_MAX VBI_ID_MAX
/* The most bytes of a member's opaque data. */
#define VBD_ZK_DATA_MAX 1024
/* The most members taken from one listing; the rest are skipped. */
#define VBD_ZK_MEMBERS_MAX 4096

/* One member of the cluster, as read from its node. */
struct vbd_zk_member {
	char id[VBD_ZK_ID_MAX + 1]; /* its id, NUL-terminated */
	/* Its data: @data_len bytes, then a NUL (the data itself may hold
	 * any byte, NULs included). */
	char data[VBD_ZK_DATA_MAX + 1];
	size_t data_len; /* bytes of @data, at most VBD_ZK_DATA_MAX */
};

/* What the caller is told; both run inside vbd_zk_process(). */
struct vbd_zk_cbs {
	/*
	 * The complete current member list (self included, sorted by id),
	 * after every change, once every member's data has been read; and
	 * after every reconnection, even if nothing changed.  Never while
	 * this broker's own node is missing or held by another session.  @m
	 * (@n entries) belongs to the module and is valid during the call
	 * only.  May be NULL.
	 */
	void (*members)(void *arg, const struct vbd_zk_member *m, size_t n);
	/*
	 * The session went up (true) or down (false), with a lowercase
	 * reason for the log (valid during the call only).  Never true twice
	 * in a row; false twice when a connection lost is followed by the
	 * session's expiry (our node is then gone: the module starts a new
	 * session and registers again by itself).  May be NULL.
	 */
	void (*state)(void *arg, bool connected, const char *why);
};

/*
 * vbd_zk_id_valid() - true if @id (NUL-terminated; NULL is invalid) is a
 * valid broker id.  Pure; any thread.
 */
bool vbd_zk_id_valid(const char *id);

/*
 * vbd_zk_path_check() - NULL if @p (@len bytes) is a valid base path (see
 * vbd_zk_url_parse()), else why not, in words.  Pure; any thread.
 */
const char *vbd_zk_path_check(const char *p, size_t len);

/*
 * vbd_zk_url_parse() - split "zk://HOST:PORT[,HOST:PORT...]/PATH" (the
 * "zk://" prefix optional) into the host list zookeeper_init() takes, in
 * @hosts (@hosts_len bytes), and the cluster's base path ("/verbus/c1"),
 * in @path (@path_len bytes).
 *
 * HOST is an IPv4 address, a name (which the ZooKeeper library resolves
 * with a blocking getaddrinfo(): numeric addresses are the ones to use),
 * or a bracketed IPv6 address, written unbracketed into @hosts as the
 * library wants it ("[::1]:2181" becomes "::1:2181").  PORT is 1-65535.
 * PATH is one or more components of [A-Za-z0-9_.-] ("." and ".." are not
 * components), a trailing '/' ignored; it is a path in the ZooKeeper tree,
 * not a chroot of the session.
 *
 * Returns VB_OK, or VB_EINVAL (logged with vbi_err, saying what is wrong;
 * @hosts and @path then untouched).  Pure: no allocation, no I/O but the
 * log line; any thread.
 */
int vbd_zk_url_parse(const char *url, char *hosts, size_t hosts_len, char *path,
		     size_t path_len);

/*
 * vbd_zk_create() - join the cluster at @path (a base path as
 * vbd_zk_url_parse() gives it) of the ZooKeeper ensemble @hosts, as @id
 * with @data (@data_len bytes, at most VBD_ZK_DATA_MAX), asking for a
 * session timeout of @session_ms (the servers clamp it to between 2 and
 * 20 ticks; the value granted is logged).
 *
 * Only starts: the connection, the registration and the first member list
 * come later, inside vbd_zk_process().  Does not block, except that a
 * host given by name is resolved by the library with getaddrinfo().  A
 * server that cannot be reached is not an error.
 *
 * @hosts, @path, @id and @data are copied.  @cbs is copied; @arg is given
 * to its callbacks and must stay valid until vbd_zk_destroy().
 *
 * Returns VB_OK and sets *@out; VB_EINVAL (a NULL or malformed argument, an
 * invalid id, data too long, a session timeout of 0; logged); VB_ENOMEM; or
 * VB_ESYS (no epoll descriptor; logged).
 */
int vbd_zk_create(const char *hosts, const char *path, unsigned session_ms,
		  const char *id, const void *data, size_t data_len,
		  const struct vbd_zk_cbs *cbs, void *arg, struct vbd_zk **out);

/*
 * vbd_zk_fd() - a descriptor for the caller's epoll set (EPOLLIN): it
 * becomes readable when vbd_zk_process() has socket work.  It stays the
 * same for the handle's life (an epoll descriptor of its own holding the
 * ZooKeeper socket, which changes on every reconnection).  Owned by the
 * module: do not close it.
 */
int vbd_zk_fd(struct vbd_zk *zk);

/*
 * vbd_zk_timeout_ms() - the longest the caller may wait, in ms, before
 * calling vbd_zk_process() even if the descriptor stays quiet (pings,
 * connection deadlines, reconnection and registration back-off); 0: call
 * it now.  Never -1.  Read it after every vbd_zk_process().
 */
int vbd_zk_timeout_ms(struct vbd_zk *zk);

/*
 * vbd_zk_process() - do whatever is due: read and write the socket,
 * run completions, watches and the callbacks, reconnect, register.  Call
 * it when vbd_zk_fd() is readable or vbd_zk_timeout_ms() has passed (more
 * often does no harm).  Never blocks.  Returns VB_OK; problems with
 * ZooKeeper are not errors of this call (they are logged and reported
 * through the state callback).  A callback must not destroy @zk.
 */
int vbd_zk_process(struct vbd_zk *zk);

/* Counters, for the monitor and the tests. */
struct vbd_zk_stats {
	bool connected; /* the session is up now */
	bool registered; /* our node exists and belongs to our session */
	uint64_t connects; /* sessions established or re-established */
	uint64_t disconnects; /* connections lost while connected */
	uint64_t expiries; /* sessions the servers expired */
	uint64_t registrations; /* our node created (or found ours) */
	uint64_t member_changes; /* member lists given to the callback */
	uint32_t members; /* entries of the last list given */
};

/* vbd_zk_stats() - a snapshot of @zk's counters into *@st. */
void vbd_zk_stats(const struct vbd_zk *zk, struct vbd_zk_stats *st);

/*
 * vbd_zk_destroy() - close the session, so that our node disappears at
 * once and the other members see it go, and free @zk.  NULL is ignored;
 * a half-built handle is fine.  Remove vbd_zk_fd() from the caller's epoll
 * set first.  No callback runs.  Blocks while the library sends the close
 * request and waits for its answer: a few ms with a live server, at most
 * about 4.5 s with a dead one the library still believes connected (call
 * it at shutdown only).
 */
void vbd_zk_destroy(struct vbd_zk *zk);

#endif /* VERBUS_DAEMON_ZK_H */
