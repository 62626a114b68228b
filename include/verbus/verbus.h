/*
 * verbus.h - the public API of libverbus.
 *
 * Everything an application may use is declared here (or in a sibling under
 * include/verbus/) with the vb_/VB_ prefix; every other symbol is internal.
 *
 * Errors: every function that can fail returns an enum vb_err, VB_OK (0) on
 * success and a negative code otherwise.  VB_EAGAIN is backpressure ("no
 * resource now, try again"), not a failure.  Output parameters are written
 * only on success.
 */
#ifndef VERBUS_VERBUS_H
#define VERBUS_VERBUS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(VERBUS_BUILDING) && defined(__GNUC__)
#define VB_EXPORT __attribute__((visibility("default")))
#else
#define VB_EXPORT
#endif

#define VB_VERSION_MAJOR 0
#define VB_VERSION_MINOR 1
#define VB_VERSION_PATCH 0

/*
 * The error list: one X-macro yields the enum, the names and the messages,
 * so that the three can never disagree.  X(name, value, message).
 */
#define VB_ERRORS(X)                                                         \
	X(VB_OK, 0, "success")                                               \
	X(VB_EAGAIN, -1, "resource temporarily unavailable, try again")      \
	X(VB_EINVAL, -2, "invalid argument")                                 \
	X(VB_ENOMEM, -3, "out of memory")                                    \
	X(VB_EPROTO, -4, "protocol error: malformed or unexpected message")  \
	X(VB_EVERSION, -5, "protocol version mismatch")                      \
	X(VB_EMSGSIZE, -6, "message too large")                              \
	X(VB_ECLOSED, -7, "connection closed")                               \
	X(VB_ETIMEDOUT, -8, "timed out")                                     \
	X(VB_ECONNREFUSED, -9, "connection refused by peer")                 \
	X(VB_EUNREACH, -10, "address or route could not be resolved")        \
	X(VB_EACCES, -11, "access denied")                                   \
	X(VB_ENODEV, -12, "no usable RDMA device")                           \
	X(VB_EIO, -13, "RDMA operation failed")                              \
	X(VB_ESTATE, -14, "operation not valid in the current state")        \
	X(VB_ENOSPC, -15, "no space left in a ring or pool")                 \
	X(VB_ESYS, -16, "system call failed")                                \
	X(VB_ENORESPONDERS, -17, "no responders: nobody subscribes to that") \
	X(VB_ENOENT, -18, "not found")

#define VB_ERR_ENUM_(name, value, msg) name = (value),
/* Every error a vb_ function can return. */
enum vb_err { VB_ERRORS(VB_ERR_ENUM_) };
#undef VB_ERR_ENUM_

/*
 * vb_strerror() - a human-readable, lowercase message for an error code.
 * Never returns NULL: an unknown code yields "unknown error".  The string is
 * static.  Thread-safe, never blocks.
 */
VB_EXPORT const char *vb_strerror(int err);

/*
 * vb_errname() - the symbolic name of an error code ("VB_EAGAIN"), or
 * "VB_UNKNOWN".  The string is static.  Thread-safe, never blocks.
 */
VB_EXPORT const char *vb_errname(int err);

/* vb_version() - the library's version as "MAJOR.MINOR.PATCH". */
VB_EXPORT const char *vb_version(void);

/* ====================================================================== */
/*
 * Client connections.
 *
 * A struct vb_conn is one client's connection to a verbusd broker (and,
 * after a loss, its reconnections, to that broker or another of its list).
 * It owns everything it uses: its list of servers, a transport context per
 * scheme it connected with, one connection at a time, the memory
 * registered for it (registered once and kept across reconnections), an
 * internal epoll fd, a timer and the subscriptions.
 *
 * Threading.  A connection is used from one thread at a time: the caller
 * serialises every vb_ call on it, unless it was created with
 * VB_OPT_LOCKED, which makes every call take the connection's (recursive)
 * lock, so that any thread may publish, subscribe or poll.  Callbacks run
 * on the thread inside vb_process()/vb_poll()/vb_run() -- or inside a
 * blocking call that progresses the connection (vb_connect, vb_flush,
 * vb_request, vb_next_msg) -- with the lock held, and may call any vb_
 * function on the connection except vb_close().  Different connections
 * are independent.
 *
 * Event loops.  vb_fd() is one file descriptor that becomes readable when
 * the connection has work; call vb_process() then (it never blocks).
 * Simple programs call vb_poll(c, timeout) or vb_run(c) instead.
 *
 * Loss.  Messages are delivered at most once.  Published messages are
 * buffered (up to vb_opts.pending_max bytes) while the broker is out of
 * credit or unreachable, and sent in order when it is back; beyond that
 * limit vb_publish() returns VB_EAGAIN and VB_EV_WRITABLE says when to
 * retry: nothing is dropped silently.  Messages already handed to the
 * device when a connection breaks may or may not have reached the broker;
 * VB_EV_DISCONNECTED reports the break.  vb_close() discards what is
 * buffered or in flight; vb_drain() and vb_sub_drain() end a connection or
 * a subscription without losing any of it.
 */
struct vb_conn;
struct vb_sub;

/* The default port of verbusd, and the default URL of the tools. */
#define VB_DEFAULT_PORT 7700
#define VB_DEFAULT_URL "rdma://127.0.0.1:7700"

/*
 * A broker URL taken apart by vb_url_parse(): "SCHEME://HOST[:PORT]" or
 * "HOST[:PORT]".  Plain data, owned by the caller; its size is fixed within
 * the VERBUS_0 ABI.
 */
struct vb_url {
	/* Lowercase, 1-15 characters: a letter, then letters, digits, '+',
	 * '-' or '.'; "rdma" if the URL has none. */
	char scheme[16];
	/* A name, an IPv4 address or an IPv6 address (the only kind with a
	 * ':'), without brackets; an IPv6 address may end in "%zone". */
	char host[256];
	char port[8]; /* decimal 1-65535; VB_DEFAULT_PORT's if none given */
	int has_scheme; /* 1: the URL named its scheme, 0: defaulted */
	int has_port; /* 1: the URL named its port, 0: defaulted */
};

/*
 * vb_url_parse() - take @url apart into *@out, the grammar vb_connect()
 * reads.  The scheme is matched without case; any well-formed scheme is
 * accepted here (vb_url_supported() says whether this build connects with
 * it).  HOST is a name, an IPv4 address or a bracketed IPv6 address
 * ("[fe80::1%eth0]"); PORT 1-65535.  Refused: credentials ('@'), a path, a
 * query, an empty host, a bad port.  Returns VB_OK, or VB_EINVAL with a
 * lowercase reason in @err (@errlen bytes, NUL-terminated, cut if need be;
 * @err may be NULL if @errlen is 0) and *@out untouched.  Reads the
 * caller's strings only, allocates nothing; thread-safe, never blocks.
 */
VB_EXPORT int vb_url_parse(const char *url, struct vb_url *out, char *err,
			   size_t errlen);

/*
 * vb_url_supported() - VB_OK if this build of libverbus has a transport
 * for @u->scheme; else VB_EINVAL with a reason naming the schemes it has
 * (`unsupported scheme "foo" (this build has: rdma)`) in @err, as for
 * vb_url_parse().  Thread-safe, never blocks.
 */
VB_EXPORT int vb_url_supported(const struct vb_url *u, char *err,
			       size_t errlen);

/* The most servers a list (vb_connect, vb_url_list_parse) may name. */
#define VB_URL_LIST_MAX 64

/*
 * vb_url_list_parse() - take apart @list, the servers vb_connect() takes:
 * one URL or several separated by commas ("tcp://a:7700, tcp://b:7700";
 * spaces around each are ignored), each as vb_url_parse() reads it and
 * with a scheme vb_url_supported() accepts.  Refused: an empty element,
 * more than VB_URL_LIST_MAX servers.  Duplicates are dropped (the same
 * scheme, port, and host without case).  Returns the number of distinct
 * servers (1 or more), the first min(that, @cap) in list order at @out
 * (may be NULL if @cap is 0); or VB_EINVAL with a reason as vb_url_parse()
 * (naming the element of a list that is wrong), or VB_ENOMEM.  Reads the
 * caller's strings only; thread-safe, never blocks.
 */
VB_EXPORT int vb_url_list_parse(const char *list, struct vb_url *out,
				size_t cap, char *err, size_t errlen);

/*
 * A delivered message.  Subject, reply and data point into the connection's
 * registered receive ring (zero copy; a large message's, into the buffer
 * the library put it back together in) and are valid until the message
 * callback returns, or until vb_msg_release() for a message kept with
 * vb_msg_hold().  Subject and reply are NOT NUL-terminated: print them
 * with "%.*s".
 */
struct vb_msg {
	const char *subject;
	size_t subject_len;
	const char *reply; /* where to send an answer; NULL if none */
	size_t reply_len;
	const void *data; /* the data, after the headers if any */
	size_t size;
	struct vb_sub *sub; /* the subscription that matched */
	/* The message's header block as it came ("NATS/1.0\r\nName: value
	 * \r\n...\r\n"), in the ring too, or NULL and 0 if it has none: read
	 * it with vb_msg_header() and vb_msg_header_next(). */
	const char *headers;
	size_t headers_len;
};

/* Called for each message a subscription receives. */
typedef void (*vb_msg_cb)(struct vb_conn *c, const struct vb_msg *m, void *arg);

/* What happened to a connection; see struct vb_event. */
enum vb_event_type {
	VB_EV_CONNECTED = 1, /* first open (VB_OPT_ASYNC_CONNECT); detail:
			      * the server's URL */
	VB_EV_DISCONNECTED, /* the broker is gone: err, detail; reconnecting
			     * unless a VB_EV_CLOSED follows */
	VB_EV_RECONNECTED, /* open again, to the server whose URL is detail
			    * (another one after a failover); subscriptions
			    * re-sent, buffered messages follow */
	VB_EV_CLOSED, /* for good: reconnecting gave up (err) or vb_close() */
	VB_EV_WRITABLE, /* a call that returned VB_EAGAIN may succeed now */
	VB_EV_NOTICE, /* the broker refused something: err, detail, and sub
		       * (a refused subscription, now removed) or NULL; or
		       * VB_ENORESPONDERS: a message published with a reply
		       * subject (not a vb_request's) that nobody subscribes
		       * to; or VB_EPROTO: a delivered message was dropped as
		       * malformed (vb_stats.bad_msgs); or VB_EMSGSIZE with
		       * sub: a message for it was larger than this
		       * connection's max_msg and dropped (the broker's
		       * notice: once per subscription; VB_EV_DROPPED counts
		       * them all), or a large message larger than its
		       * max_payload (the library's: one event each, detail
		       * naming both sizes) */
	VB_EV_DROPPED, /* the broker dropped deliveries to sub (slow
			* consumer): count, in all since it subscribed */
	/* This library dropped messages for sub, over its pending limits
	 * (vb_sub_set_pending_limits), or large messages it had no room to
	 * put back together (vb_opts.max_payload): err VB_ENOSPC, count as
	 * vb_sub_dropped(), detail naming its pattern; once per episode,
	 * which the next message it takes ends. */
	VB_EV_SLOW_CONSUMER = 8,
	/* A vb_sub_drain() ended: sub (valid during the event only: freed
	 * when it returns; do not unsubscribe it there), err VB_OK (every
	 * message routed to it was delivered), VB_ETIMEDOUT (its timeout
	 * came first: later ones are dropped) or VB_ECLOSED (the connection
	 * was lost meanwhile, and what was in flight with it); count: the
	 * messages it delivered in all. */
	VB_EV_DRAINED = 9,
	/* The broker is going away (lame-duck mode: a rolling restart);
	 * detail says what the library does.  With another server in the
	 * pool it moves there at once: what was published before the event
	 * is routed by this broker first (a flush), what is published from
	 * then on is buffered and goes to the next server, as after a lost
	 * connection (VB_EV_DISCONNECTED with err VB_ECLOSED, then
	 * VB_EV_RECONNECTED; subscriptions re-sent; nothing buffered is
	 * lost), even with VB_OPT_NO_RECONNECT: a move is no loss.  With a single server it stays until the broker closes the
	 * connection (within count milliseconds), then reconnects as after
	 * any loss, to the broker once it is back. */
	VB_EV_LAME_DUCK = 10,
};

struct vb_event {
	enum vb_event_type type;
	int err; /* an enum vb_err, or VB_OK */
	const char *detail; /* human-readable, or "" */
	/* VB_EV_NOTICE, VB_EV_DROPPED, VB_EV_SLOW_CONSUMER, VB_EV_DRAINED;
	 * else NULL */
	struct vb_sub *sub;
	/* VB_EV_DROPPED, VB_EV_SLOW_CONSUMER, VB_EV_DRAINED; VB_EV_LAME_DUCK:
	 * the milliseconds until the broker closes the connection at the
	 * latest */
	uint64_t count;
};

typedef void (*vb_event_cb)(struct vb_conn *c, const struct vb_event *ev,
			    void *arg);

/* The severity of one of the library's log lines (vb_opts.log), most
 * severe first. */
enum vb_log_level {
	VB_LOG_ERR = 1, /* something the library could not do for you */
	/* a failure it handles or reports otherwise too: a connection lost
	 * or refused, a bad URL, a drain that timed out */
	VB_LOG_WARN = 2,
	VB_LOG_INFO = 3, /* a connection opened */
	VB_LOG_DEBUG = 4, /* internals: reconnect delays, servers learned */
};

/*
 * Called with each line the library logs for a connection, at or above
 * vb_opts.log.level: @line is one lowercase line without a newline, valid
 * during the call (a string a peer chose is escaped in it: no line can
 * carry control characters).  It runs on the thread inside a call on @c
 * (vb_process/vb_poll/vb_run, vb_publish, vb_connect, vb_close, ...), with
 * @c's lock held under VB_OPT_LOCKED, possibly deep inside the transport:
 * it must return quickly and must not call any vb_ function on any
 * connection.  While vb_connect() or vb_close() runs, @c is not the
 * application's to use (it may be half built, or going).
 */
typedef void (*vb_log_cb)(struct vb_conn *c, enum vb_log_level level,
			  const char *line, void *arg);

/* vb_opts.log: the library's own diagnostics. */
struct vb_log_opts {
	vb_log_cb cb; /* [NULL: the library is silent] */
	void *arg; /* handed to cb */
	int level; /* the most verbose level passed to cb [VB_LOG_WARN] */
};

/* vb_opts.flags */
#define VB_OPT_ASYNC_CONNECT 0x1 /* vb_connect returns at once; retries */
/* vb_poll spins instead of sleeping; vb_fd then reports timers, vb_stop()
 * and connection events but not arriving messages: drive the connection
 * with vb_poll() or vb_process() in a loop. */
#define VB_OPT_BUSY_POLL 0x2
#define VB_OPT_LOCKED 0x4 /* any thread may call: see Threading above */
#define VB_OPT_NO_RECONNECT 0x8 /* a lost connection is closed for good */
/* Every message published outside vb_process() is handed to the device at
 * once, each its own RDMA write (as TCP_NODELAY): for latency, where
 * messages are few and far between.  Without it the first one since the
 * last vb_process() goes at once and those after it are coalesced until
 * the next vb_process() (see vb_publish). */
#define VB_OPT_NODELAY 0x10
/* Try the servers of vb_connect()'s list in a random order (as those
 * the brokers advertise), so that clients given one list spread over the
 * brokers; without it, in the order written. */
#define VB_OPT_RANDOMIZE 0x20
/* Direct mode (docs/PROTOCOL.md): messages go straight from this
 * connection into the rings of subscribers that made their subscriptions
 * with VB_SUB_DIRECT, one RDMA write, the broker granting each path and
 * serving everyone else as before.  Each publisher's order is kept per
 * subscriber, whether a message goes direct or through the broker.  A
 * publish refused (VB_EAGAIN: the queue to the broker over pending_max;
 * VB_EMSGSIZE) was written nowhere; one accepted may queue its broker
 * copy past pending_max. */
#define VB_OPT_DIRECT 0x40

/*
 * Connection options.  Initialise with VB_OPTS_INIT (or zero it and set
 * sz = sizeof(struct vb_opts)): fields left 0 take the defaults in
 * brackets, and fields added in later versions go at the end, so a program
 * built against an older header keeps working (the library reads only the
 * first @sz bytes).  Strings are copied by vb_connect.
 */
struct vb_opts {
	size_t sz; /* sizeof(struct vb_opts) */
	const char *name; /* shown by the broker ["verbus"] */
	const char *source; /* local address to connect from [any] */
	const char *token; /* credentials: a token, or user and password */
	const char *user;
	const char *password;
	unsigned flags; /* VB_OPT_* */
	uint32_t ring_size; /* receive ring bytes, a power of 2 [1 MiB] */
	uint32_t max_msg; /* largest subject + data accepted [64 KiB] */
	int connect_timeout_ms; /* one connection attempt [5000] */
	/* Passes over the servers in a row, each server tried once per pass
	 * (one server: attempts); -1 forever [60] */
	int reconnect_max;
	/* Delay after a pass in which no server opened, doubling with each
	 * such pass [50]; within a pass the next server is tried at once. */
	int reconnect_wait_ms;
	int reconnect_wait_max_ms; /* cap on that delay [2000] */
	int reconnect_jitter_ms; /* plus a random 0..jitter [100] */
	size_t pending_max; /* bytes buffered unsent [8 MiB] */
	vb_event_cb on_event; /* connection events [none] */
	void *event_arg;
	/* A heartbeat: a Ping to the broker every this many ms while open, so
	 * that a broker that vanished without a word (host down, link cut)
	 * is noticed by the transport within about a second, idle or not
	 * [1000]; -1: none. */
	int ping_interval_ms;
	/* Adaptive polling: after work, vb_poll() (and so vb_run()) polls
	 * the device this many microseconds before it sleeps, catching the
	 * next message without a sleep and wake-up; idle, it does not spin.
	 * vb_flush() and vb_request() poll as long for their answer before
	 * each sleep.  Costs CPU for latency [0: off]. */
	int spin_us;
	/* TLS, for tls:// URLs only (set with another scheme: VB_EINVAL).
	 * PEM file names, read at each connection attempt.  The broker's
	 * certificate is verified by @tls_ca [the system's CA store] and must
	 * name @tls_server_name [the URL's host: a DNS name or an IP
	 * address]; @tls_cert and @tls_key are ours, for a broker that asks
	 * for client certificates [none]. */
	const char *tls_ca;
	const char *tls_cert;
	const char *tls_key;
	const char *tls_server_name;
	/* What the library warns about (a lost connection and why, a drain
	 * that timed out, ...), per connection; see vb_log_cb.  A level
	 * outside VB_LOG_ERR..VB_LOG_DEBUG: VB_EINVAL. */
	struct vb_log_opts log;
	/* Large messages: the largest data (with its header block) this
	 * connection receives, told to the broker, which sends a message
	 * larger than max_msg as a stream of chunks that the library puts
	 * back together [8 MiB, or max_msg if more].  Above
	 * VB_MAX_PAYLOAD_MAX or below max_msg: VB_EINVAL.  Messages being
	 * put back together may take up to 4 x max_payload of memory at
	 * once (see vb_stats.large_dropped).  What this connection
	 * publishes is bounded by the broker's limit, not this. */
	uint32_t max_payload;
	/* Direct mode: the address direct publishers connect to, for a
	 * connection with VB_SUB_DIRECT subscriptions [the address of its own
	 * end of the connection to the broker], on a port the system picks
	 * (another address needs the broker's direct.listen_any_host);
	 * and the direct connections (in and out together) it keeps at most:
	 * past that, publishers and subscribers use the broker [64]. */
	const char *direct_listen;
	uint32_t direct_peers_max;
};
/* The largest vb_opts.max_payload: 1 GiB, the protocol's bound. */
#define VB_MAX_PAYLOAD_MAX (1u << 30)
/* clang-format off */
#define VB_OPTS_INIT { .sz = sizeof(struct vb_opts) }
/* clang-format on */

/*
 * vb_connect() - connect to the broker at @url ("rdma://HOST[:PORT]",
 * "tcp://HOST[:PORT]", "tls://HOST[:PORT]" or "HOST[:PORT]", as
 * vb_url_parse() reads it; the scheme picks the transport and must be one
 * vb_url_supported() accepts), or to one of several: @url may be a
 * comma-separated list ("tcp://a:7700,tcp://b:7700", as
 * vb_url_list_parse() reads it; every element is checked, and with TLS
 * options every one must be tls://).  The servers are tried in the order
 * written (VB_OPT_RANDOMIZE: shuffled) and the first that opens is used.
 *
 * Failover: when the connection is lost, or an attempt fails, the next
 * server of the list is tried at once, round robin; the reconnect delay
 * (vb_opts.reconnect_wait_ms, doubling) comes only after a whole pass in
 * which none opened.  Subscriptions are re-sent and buffered publishes
 * flushed to whichever server opens next.  The brokers of a cluster
 * advertise their members' URLs, which join the list (one without a scheme
 * takes the advertising broker's; with TLS options, or from a tls://
 * broker, only tls:// ones are taken).  Memory registered for one
 * transport is kept for it: going back to a server of a scheme used before
 * registers nothing new.
 *
 * @opts may be NULL.  Blocks until a connection is open or every server
 * failed once, unless VB_OPT_ASYNC_CONNECT (then it returns at once and
 * VB_EV_CONNECTED follows; what is published meanwhile is buffered).  When
 * a blocking connect fails, @opts->on_event hears a VB_EV_CLOSED first,
 * whose detail says why in words (a TLS certificate refused, a file that
 * does not load; of a list, the last server's failure); its connection
 * argument is then not the application's to use.  Returns VB_OK, VB_EINVAL
 * (bad URL or list, a scheme this build has no transport for, a bad
 * option, a TLS file that does not load), VB_ENOMEM, VB_ECONNREFUSED,
 * VB_EUNREACH, VB_ETIMEDOUT, VB_EVERSION, VB_EACCES (credentials refused;
 * over TLS also a certificate refused, the broker's or ours), VB_EPROTO
 * (a peer that speaks something else: TLS to a tcp:// listener, plain to
 * a tls:// one), VB_ENODEV or VB_ESYS.
 */
VB_EXPORT int vb_connect(const char *url, const struct vb_opts *opts,
			 struct vb_conn **out);

/*
 * vb_close() - disconnect at once and free @c and its subscriptions.
 * Discarded, without a word: messages published and buffered but not yet
 * sent (vb_stats.pending_msgs: call vb_flush() first, or use vb_drain()),
 * messages that arrived and were not yet delivered to a callback or queued
 * for vb_next_msg(), those the broker has in flight to us, and a
 * reservation not committed.  Messages held with vb_msg_hold() or returned
 * by vb_request() or vb_next_msg() are released: their pointers are
 * invalid afterwards.  Requests still waiting get their callback with
 * VB_ECLOSED, and on_event a VB_EV_CLOSED (unless @c was closed already, by
 * a drain or by giving up reconnecting); drains under way end without
 * their events (vb_sub_drain_wait() is not to be running meanwhile).
 * Accepts NULL.  Not from a callback, nor while another thread is in a
 * call on @c.
 */
VB_EXPORT void vb_close(struct vb_conn *c);

/* vb_fd() - readable when vb_process() has work (an epoll fd; with
 * VB_OPT_BUSY_POLL not for arriving messages, see there). */
VB_EXPORT int vb_fd(struct vb_conn *c);

/*
 * vb_process() - do the pending work (arrived messages, completions,
 * connection events, timers) and run the callbacks, without blocking.
 * Returns the number of events handled (>= 0), or VB_ECLOSED once the
 * connection is closed for good.
 */
VB_EXPORT int vb_process(struct vb_conn *c);

/*
 * vb_spin() - poll the device for arrived messages and completions,
 * without sleeping or system calls, for up to @us microseconds (0: one
 * pass), stopping at the first work, and run the callbacks.  For event
 * loops that trade CPU for latency: call it before sleeping on vb_fd()
 * when the last turn had work (vb_opts.spin_us does this inside
 * vb_poll()).  With VB_OPT_LOCKED it holds the connection's lock while
 * it spins.  Returns as vb_process(); VB_EINVAL if @us < 0.
 */
VB_EXPORT int vb_spin(struct vb_conn *c, int us);

/*
 * vb_poll() - wait up to @timeout_ms (-1: forever, 0: not at all) for
 * work, then do it as vb_process().  With VB_OPT_BUSY_POLL it spins on the
 * device instead of sleeping; with vb_opts.spin_us it spins that long
 * first if the previous call had work.  Returns as vb_process().
 */
VB_EXPORT int vb_poll(struct vb_conn *c, int timeout_ms);

/*
 * vb_run() - vb_poll() until vb_stop() or the connection is closed for
 * good.  Returns VB_OK after vb_stop(), else the closing error.
 */
VB_EXPORT int vb_run(struct vb_conn *c);

/* vb_stop() - make vb_run() return; safe from callbacks and signal
 * handlers, and (VB_OPT_LOCKED or not) from any thread. */
VB_EXPORT void vb_stop(struct vb_conn *c);

/*
 * vb_publish() - send @size bytes of @data to everyone subscribed to
 * @subject (tokens separated by '.', no wildcards, no spaces).  The data is
 * copied: the caller keeps its buffer.  The first message published outside
 * vb_process() since the last vb_process() is handed to the device at once;
 * those that follow it are coalesced and leave together, as one RDMA
 * write, at the next vb_process() (or vb_flush()); with VB_OPT_NODELAY
 * each goes at once.
 *
 * Large messages: one whose subject (+ 1 + reply) + data is larger than
 * the broker's largest frame (vb_stats.max_msg, 64 KiB by default) goes as
 * a stream of chunks, if its data is no larger than the broker's largest
 * message (vb_stats.max_payload, 8 MiB by default; VB_EMSGSIZE beyond, or
 * with a broker that takes none).  Such a message is copied once into the
 * buffer and sent as credit comes, in order with what is published before
 * and after it; an empty buffer takes one even above
 * vb_opts.pending_max, and nothing more until it has gone (VB_EAGAIN).  A
 * connection lost while it goes sends it again, whole, on the next one.
 * It counts once in vb_stats.msgs_out (and large_msgs_out).
 *
 * Returns VB_OK (sent or buffered), VB_EAGAIN (the buffer is full: retry
 * on VB_EV_WRITABLE), VB_EINVAL (bad subject), VB_EMSGSIZE or VB_ECLOSED.
 */
VB_EXPORT int vb_publish(struct vb_conn *c, const char *subject,
			 const void *data, size_t size);

/* vb_publish_reply() - vb_publish() naming @reply (a subject) as the place
 * the receivers should answer. */
VB_EXPORT int vb_publish_reply(struct vb_conn *c, const char *subject,
			       const char *reply, const void *data,
			       size_t size);

/*
 * Message headers, as NATS 2.2's: name/value pairs a message carries
 * before its data, sent as a "NATS/1.0" header block.  A name is 1-255
 * visible ASCII characters other than ':' (compared exactly: names are
 * case-sensitive, as in nats.c); a value any characters but CR and LF (the
 * spaces and tabs around it are not kept).  A name may be given several
 * times: each is a value of it, in order.  A message published without
 * headers costs nothing more than before.
 */
struct vb_header {
	const char *name; /* NUL-terminated, the caller's */
	const char *value; /* NUL-terminated, the caller's; may be "" */
};

/*
 * vb_publish_msg() - vb_publish_reply() (@reply may be NULL) with the
 * @nhdrs headers at @hdrs (none: 0, and @hdrs may be NULL).  Names,
 * values and data are copied.  The header block counts against the
 * broker's largest message as the data does.  Returns as vb_publish(), and
 * VB_EINVAL also for a bad header name or value.
 */
VB_EXPORT int vb_publish_msg(struct vb_conn *c, const char *subject,
			     const char *reply, const struct vb_header *hdrs,
			     size_t nhdrs, const void *data, size_t size);

/*
 * vb_reserve() - zero-copy publish: room for @size bytes of data in the
 * connection's registered send memory, at *@buf.  Fill it, then call
 * vb_commit() before any other call on @c.  @reply may be NULL.  Returns
 * as vb_publish(), and VB_EAGAIN also while buffered messages wait or no
 * connection is open (nothing is buffered for a reservation).  One frame
 * only: a message larger than the broker's max_msg is VB_EMSGSIZE (use
 * vb_publish(), which sends it as a stream).
 */
VB_EXPORT int vb_reserve(struct vb_conn *c, const char *subject,
			 const char *reply, size_t size, void **buf);
VB_EXPORT int vb_commit(struct vb_conn *c);

/*
 * vb_flush() - wait until everything published so far has reached the
 * broker and been routed (a round trip: the broker's answer follows what
 * came before it), and subscriptions made so far are in force; what the
 * broker had queued for @c by then has been delivered too (its answer
 * comes after it, so a subscriber far behind waits that long).  With
 * VB_OPT_DIRECT, also until every direct subscriber has received what
 * was written to it (a Ping on each direct connection).  Runs
 * callbacks meanwhile.  Returns VB_OK, VB_ETIMEDOUT or VB_ECLOSED.  It
 * progresses @c only: a program driving several connections from one
 * thread keeps the others going itself (vb_process on each).
 */
VB_EXPORT int vb_flush(struct vb_conn *c, int timeout_ms);

/*
 * vb_drain() - close @c without losing what is in flight, as nats.c's
 * natsConnection_Drain: every subscription is unsubscribed at the broker
 * at once, and keeps receiving what the broker routed to it before;
 * requests still waiting get their reply (or their own timeout); then
 * publishing is refused and everything buffered is sent; once the broker
 * has routed all of it the connection closes: VB_EV_CLOSED with err VB_OK
 * and detail "drained".  If that takes more than @timeout_ms (-1: no
 * limit), it closes anyway: VB_EV_CLOSED with err VB_ETIMEDOUT, and a
 * VB_LOG_WARN line saying what was left.
 *
 * Asynchronous: returns at once, and the drain makes progress as the
 * connection is driven, by whatever drives it (vb_run() in another thread
 * with VB_OPT_LOCKED, the application's own loop on vb_fd() with
 * vb_process(), a blocking call).  To wait for the end, run the loop until
 * vb_process()/vb_poll() return VB_ECLOSED, or call vb_run(), which
 * returns VB_OK after a drain that completed and VB_ETIMEDOUT after one
 * that did not.  Then vb_close() frees @c (held messages stay valid
 * until then).
 *
 * Meanwhile: vb_subscribe() returns VB_ESTATE (and so does a first
 * vb_request(), which needs a subscription); vb_publish(), vb_reserve()
 * and requests are accepted until the final flush begins (when every
 * subscription has drained and no request waits), then return VB_ESTATE.
 * The subscriptions are the library's from the call on: each is freed as
 * its drain ends, without an event; do not use their handles.  A
 * connection lost during a drain loses what was in flight (as always),
 * reconnects as usual, and sends what is buffered to the next server
 * before it closes, within @timeout_ms.
 *
 * Returns VB_OK, VB_EINVAL (@timeout_ms < -1), VB_ESTATE (draining
 * already), VB_ECLOSED or VB_ENOMEM (nothing changed).  Any thread with
 * VB_OPT_LOCKED; from callbacks too.  Never blocks.
 */
VB_EXPORT int vb_drain(struct vb_conn *c, int timeout_ms);

/* vb_is_draining() - 1 while a vb_drain() of @c is under way, else 0. */
VB_EXPORT int vb_is_draining(struct vb_conn *c);

/*
 * vb_sub_drain() - end @s without losing what is in flight, as nats.c's
 * natsSubscription_Drain: it is unsubscribed at the broker at once, its
 * callback keeps receiving what the broker routed to it before, and then
 * it is freed, after a VB_EV_DRAINED event naming it (err VB_OK, or
 * VB_ETIMEDOUT after @timeout_ms, -1: no limit, or VB_ECLOSED if the
 * connection was lost first).  Asynchronous, like vb_drain(): the loop
 * that drives the connection ends it.  After the call @s is only to be
 * compared with the event's sub (or vb_unsubscribe()d, which ends the
 * drain at once, without the event).  Returns VB_OK, VB_EINVAL,
 * VB_ESTATE (draining already: by vb_drain() too), VB_ECLOSED or
 * VB_ENOMEM.  Never blocks; from callbacks too, @s's own included.
 */
VB_EXPORT int vb_sub_drain(struct vb_sub *s, int timeout_ms);

/*
 * vb_sub_drain_wait() - vb_sub_drain(), waiting for its end: runs @s's
 * connection (callbacks run meanwhile, @s's too) until the drain is over,
 * and returns how it ended: VB_OK, VB_ETIMEDOUT (@timeout_ms passed, -1:
 * no limit: the subscription is ended then) or VB_ECLOSED.  On any of
 * those @s is freed when it returns.  On a subscription vb_sub_drain()
 * began draining it waits for that drain (and its VB_EV_DRAINED), cut
 * short at @timeout_ms; one it begins itself has no event.  Also returns,
 * with @s untouched: VB_EINVAL, VB_ESTATE (from @s's own callback, or
 * another thread waits already), VB_ENOMEM.  Blocks; drops the lock while
 * it sleeps (VB_OPT_LOCKED).
 */
VB_EXPORT int vb_sub_drain_wait(struct vb_sub *s, int timeout_ms);

/*
 * vb_subscribe() - deliver messages whose subject matches @pattern ('*'
 * matches one token, '>' all the remaining ones) to @cb.  With a @queue
 * name, the subscriptions of one queue group share the messages: each goes
 * to one member.  Returns VB_OK (the subscription is sent; vb_flush()
 * waits until it is in force; a refusal comes as VB_EV_NOTICE), VB_EINVAL
 * (bad pattern or queue), VB_ENOMEM or VB_ECLOSED.  @out may be NULL.
 */
VB_EXPORT int vb_subscribe(struct vb_conn *c, const char *pattern,
			   const char *queue, vb_msg_cb cb, void *arg,
			   struct vb_sub **out);

/* vb_subscribe_flags() flags */
/* Direct mode: also take the messages of direct publishers (VB_OPT_DIRECT)
 * straight into this connection's rings, one hop; the connection listens
 * for them (vb_opts.direct_listen) from its first such subscription.
 * Queue groups are served through the broker in this version. */
#define VB_SUB_DIRECT 0x1

/*
 * vb_subscribe_flags() - vb_subscribe() with VB_SUB_* @flags (@cb NULL: a
 * synchronous subscription, as vb_subscribe_sync()).  Returns as
 * vb_subscribe(), and VB_EINVAL for an unknown flag, or the listener's
 * error for the first VB_SUB_DIRECT one (VB_EUNREACH: no address to listen
 * on, VB_ESYS).
 */
VB_EXPORT int vb_subscribe_flags(struct vb_conn *c, const char *pattern,
				 const char *queue, unsigned flags,
				 vb_msg_cb cb, void *arg, struct vb_sub **out);

/*
 * vb_unsubscribe() - stop @s now and free it; no callback for it runs
 * afterwards.  A synchronous subscription's queued messages are given
 * back, and a thread waiting in vb_next_msg() on it returns VB_ECLOSED
 * (and frees it then); it is the only way to free a synchronous one,
 * ended by itself or not.  Returns VB_OK or VB_EINVAL.
 */
VB_EXPORT int vb_unsubscribe(struct vb_sub *s);

/*
 * vb_sub_autounsubscribe() - end @s by itself once it has had @max
 * messages in all (counting those received already, dropped ones too);
 * @s is freed then, after its last callback (a synchronous one: not, see
 * vb_next_msg).  Returns VB_OK, VB_EINVAL, or VB_ESTATE if @s is being
 * drained.
 */
VB_EXPORT int vb_sub_autounsubscribe(struct vb_sub *s, uint64_t max);

/* vb_sub_delivered() - messages @s has delivered so far: to its callback,
 * or (synchronous) returned by vb_next_msg(). */
VB_EXPORT uint64_t vb_sub_delivered(const struct vb_sub *s);

/*
 * Synchronous subscriptions, pending limits, inboxes (nats.c's
 * natsConnection_SubscribeSync, natsSubscription_NextMsg,
 * natsSubscription_SetPendingLimits, natsInbox_Create).
 */

/*
 * vb_subscribe_sync() - as vb_subscribe(), but the messages are queued for
 * vb_next_msg() instead of handed to a callback.  The handle *@out is the
 * application's until vb_unsubscribe() (the library never frees it by
 * itself: one ended by vb_sub_autounsubscribe() or refused by the broker
 * stays, and vb_next_msg() says VB_ECLOSED once it is drained).  Returns
 * as vb_subscribe(), VB_EINVAL if @out is NULL, VB_ESYS (VB_OPT_LOCKED:
 * no eventfd for its waiters).
 *
 * The queue is zero copy while the application keeps up: a queued message
 * is its frame in the receive ring.  A consumer that falls half a ring
 * behind (vb_opts.ring_size) has its oldest queued messages copied out of
 * the ring, so that it never holds the connection's other traffic back;
 * how far behind it may fall is its pending limits' business.
 */
VB_EXPORT int vb_subscribe_sync(struct vb_conn *c, const char *pattern,
				const char *queue, struct vb_sub **out);

/*
 * vb_next_msg() - the oldest message queued for the synchronous
 * subscription @s, waiting up to @timeout_ms for one (0: progress the
 * connection once, without blocking, and look; -1: forever).  *@out is a
 * held message: valid until, and to be given back with, vb_msg_release();
 * its sub is @s.  Until then it counts as pending for @s and keeps its
 * ring space (as vb_msg_hold).  Messages come in the order they arrived.
 *
 * It progresses the connection while it waits, running callbacks (of @c
 * only), as vb_request() does.  With VB_OPT_LOCKED, any number of threads
 * may wait on @s, or on other subscriptions, while another thread runs
 * vb_run()/vb_poll() on @c: whichever thread processes an arrival queues
 * it, and a waiter asleep is woken at once (an eventfd per synchronous
 * subscription); none spins on the lock.  With VB_OPT_BUSY_POLL it spins,
 * as vb_poll() does.  It may be called from a callback of @c (it then
 * progresses @c from inside it, as vb_request() does).
 *
 * Returns VB_OK; VB_ETIMEDOUT when nothing came in time (after
 * @timeout_ms, never before; at once for 0); VB_ECLOSED when nothing more
 * can come: @c closed for good, @s ended by itself and drained, or
 * unsubscribed by another thread meanwhile (which frees it: not to be
 * used again); VB_EINVAL (@s not a synchronous subscription, @out NULL,
 * @timeout_ms below -1).  Messages queued before a close are still
 * returned first.
 */
VB_EXPORT int vb_next_msg(struct vb_sub *s, int timeout_ms,
			  struct vb_msg **out);

/*
 * vb_sub_set_pending_limits() - how much @s may hold for the application
 * (either kind of subscription): @msgs messages and @bytes data bytes,
 * each > 0, or -1 for no limit; 0 is refused.  The defaults are nats.c's:
 * 65536 messages, 64 MiB.  Pending are the messages the application has
 * not given back: queued for vb_next_msg() or returned by it (synchronous
 * subscriptions), kept with vb_msg_hold() (either kind), until
 * vb_msg_release().  A callback subscription's message is not pending
 * while its callback runs, so only what it holds counts.
 *
 * A message that would pass a limit is dropped on arrival, its ring space
 * given back at once, and counted (vb_sub_dropped); the first drop after
 * a message taken is reported as VB_EV_SLOW_CONSUMER, so an episode is
 * reported once however many it drops.  Other subscriptions of @c lose
 * nothing.  What is pending when the limits change stays.  A callback
 * subscription's held messages keep ring space (vb_msg_hold): with the
 * defaults, the ring (1 MiB) fills first and the broker's slow-consumer
 * policy acts before these limits do; lower ones make the library drop
 * instead.  Returns VB_OK or VB_EINVAL.
 */
VB_EXPORT int vb_sub_set_pending_limits(struct vb_sub *s, int64_t msgs,
					int64_t bytes);

/* vb_sub_pending_limits() - @s's limits (-1: none) into *@msgs and *@bytes
 * (either may be NULL).  Returns VB_OK or VB_EINVAL. */
VB_EXPORT int vb_sub_pending_limits(struct vb_sub *s, int64_t *msgs,
				    int64_t *bytes);

/* vb_sub_pending() - what @s holds now (see vb_sub_set_pending_limits):
 * messages into *@msgs, their data bytes into *@bytes (either may be
 * NULL).  Returns VB_OK or VB_EINVAL. */
VB_EXPORT int vb_sub_pending(struct vb_sub *s, uint64_t *msgs, uint64_t *bytes);

/* vb_sub_dropped() - messages @s dropped over its pending limits, or
 * large ones it had no room to put back together, in all (the broker's
 * drops are VB_EV_DROPPED's); 0 for NULL. */
VB_EXPORT uint64_t vb_sub_dropped(struct vb_sub *s);

/* Bytes that always hold vb_new_inbox()'s subject and its NUL. */
#define VB_INBOX_LEN 48

/*
 * vb_new_inbox() - a new subject, unique to this call: "_INBOX.<id>-<n>",
 * where <id> is @c's inbox id (the one its requests are answered on) and
 * <n> counts up.  Private: the broker delivers what is published under it
 * to this connection only, and lets no other subscribe there
 * (docs/SECURITY.md); <id> stays across reconnections.  Subscribe to it (vb_subscribe_sync, say), then
 * publish requests with it as their reply subject (vb_publish_reply) to
 * gather every answer (scatter/gather).  Neither it nor anything under it
 * ("<inbox>.>") is what vb_request()'s own subscription matches, so the two
 * never take each other's messages.  Into @buf (@len bytes,
 * NUL-terminated; VB_INBOX_LEN suffice).  Returns VB_OK, VB_EINVAL or
 * VB_ENOSPC (too small: @buf untouched).  Any
 * thread with VB_OPT_LOCKED; never blocks.
 */
VB_EXPORT int vb_new_inbox(struct vb_conn *c, char *buf, size_t len);

/*
 * vb_msg_hold() - keep a delivered message beyond its callback, zero copy:
 * *@out is valid until vb_msg_release().  The ring space stays taken until
 * then, so a holder of many messages slows its publishers down (no loss);
 * a large message holds no ring space, its buffer stays (shared, not
 * copied).  It counts as pending for its subscription
 * (vb_sub_set_pending_limits).
 * Only inside the message callback, or on a message of vb_next_msg().
 * Returns VB_OK or VB_ENOMEM.
 */
VB_EXPORT int vb_msg_hold(const struct vb_msg *m, struct vb_msg **out);

/* vb_msg_release() - give back a message from vb_msg_hold(), vb_request()
 * or vb_next_msg().  Accepts NULL.  Not after vb_close() of its
 * connection. */
VB_EXPORT void vb_msg_release(struct vb_msg *m);

/*
 * vb_respond() - publish @data to the reply subject of @m.  Returns as
 * vb_publish(), or VB_EINVAL if @m has no reply subject.
 */
VB_EXPORT int vb_respond(struct vb_conn *c, const struct vb_msg *m,
			 const void *data, size_t size);

/* vb_respond_msg() - vb_respond() with headers, as vb_publish_msg(). */
VB_EXPORT int vb_respond_msg(struct vb_conn *c, const struct vb_msg *m,
			     const struct vb_header *hdrs, size_t nhdrs,
			     const void *data, size_t size);

/*
 * vb_msg_header() - the @idx-th value (0: the first) of @m's header named
 * @name (NUL-terminated, matched exactly), zero copy: *@value points into
 * the message (valid as long as the message) and is NOT NUL-terminated:
 * *@len bytes.  Returns VB_OK, VB_ENOENT (no such header, or not that
 * many values; @m has no headers), VB_EPROTO (the block is malformed: the
 * broker checked it, so only a peer that changed it after can cause
 * that), or VB_EINVAL.  Reads the block each call (headers are few).
 */
VB_EXPORT int vb_msg_header(const struct vb_msg *m, const char *name,
			    size_t idx, const char **value, size_t *len);

/* One header of a delivered message: pointers into it, not terminated. */
struct vb_header_field {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

/*
 * vb_msg_header_next() - iterate @m's headers in order: set *@pos to 0,
 * then each call fills *@out with the next and advances *@pos.  Returns
 * VB_OK, VB_ENOENT after the last (or when @m has none), VB_EPROTO (a
 * malformed block) or VB_EINVAL.
 */
VB_EXPORT int vb_msg_header_next(const struct vb_msg *m, size_t *pos,
				 struct vb_header_field *out);

/* Called once per vb_request_async(): @m is the reply (valid during the
 * call, vb_msg_hold() keeps it) or NULL with @err VB_ETIMEDOUT,
 * VB_ECLOSED, VB_ENORESPONDERS (the broker found nobody subscribed to the
 * subject: at once, not at the timeout) or VB_EACCES (the broker refused
 * to publish it). */
typedef void (*vb_reply_cb)(struct vb_conn *c, const struct vb_msg *m, int err,
			    void *arg);

/*
 * vb_request_async() - publish @data to @subject with a reply subject of
 * this connection's own inbox, and call @cb with the first answer, or
 * after @timeout_ms without one (measured on the coarse monotonic clock,
 * read without a system call: the timeout may come up to one clock tick,
 * ~4 ms, late, never early).  Returns as vb_publish().
 */
VB_EXPORT int vb_request_async(struct vb_conn *c, const char *subject,
			       const void *data, size_t size, int timeout_ms,
			       vb_reply_cb cb, void *arg);

/*
 * vb_request() - vb_request_async(), waiting for the answer: *@reply is
 * the reply message, to give back with vb_msg_release().  Runs callbacks
 * meanwhile, of @c only (a responder on another connection of this thread
 * would not run: use vb_request_async there).  Returns VB_OK,
 * VB_ETIMEDOUT, VB_ENORESPONDERS, VB_EACCES (see vb_reply_cb), or as
 * vb_publish().
 */
VB_EXPORT int vb_request(struct vb_conn *c, const char *subject,
			 const void *data, size_t size, int timeout_ms,
			 struct vb_msg **reply);

/* vb_request_msg_async(), vb_request_msg() - vb_request_async() and
 * vb_request() with the @nhdrs headers at @hdrs, as vb_publish_msg(). */
VB_EXPORT int vb_request_msg_async(struct vb_conn *c, const char *subject,
				   const struct vb_header *hdrs, size_t nhdrs,
				   const void *data, size_t size,
				   int timeout_ms, vb_reply_cb cb, void *arg);
VB_EXPORT int vb_request_msg(struct vb_conn *c, const char *subject,
			     const struct vb_header *hdrs, size_t nhdrs,
			     const void *data, size_t size, int timeout_ms,
			     struct vb_msg **reply);

/* Counters of one connection, across its reconnections. */
struct vb_stats {
	size_t sz; /* sizeof(struct vb_stats), set by the caller */
	uint64_t msgs_out, bytes_out; /* published (data bytes) */
	/* delivered to callbacks and by vb_next_msg() */
	uint64_t msgs_in, bytes_in;
	uint64_t reconnects; /* connections re-opened after a loss */
	uint64_t pending_msgs, pending_bytes; /* now: buffered, unsent */
	uint64_t orphans; /* messages for a subscription already gone */
	uint64_t mr_registered; /* memory registrations in this process */
	uint64_t max_msg; /* now: the largest subject (+ 1 + reply) + data
			   * the broker accepts; 0 while not connected */
	uint64_t failovers; /* opens to another server than the last open */
	uint64_t servers; /* now: the servers it may connect to (the list's,
			   * and those the brokers advertised) */
	uint64_t bad_msgs; /* delivered messages dropped as malformed (a
			    * header block or a large message's chunk
			    * changed under its forward) */
	/* The last round trip to the broker measured, in nanoseconds: a
	 * Ping's (the heartbeat's, vb_flush()'s, vb_rtt()'s) until its Pong,
	 * behind what was queued with it; 0 until one is measured. */
	uint64_t rtt_ns;
	/* Large messages (vb_opts.max_payload, vb_publish): published as
	 * streams of chunks (also counted in msgs_out), and received whole,
	 * put back together (then delivered as any message: msgs_in). */
	uint64_t large_msgs_out, large_msgs_in;
	/* Large messages lost part-way: their stream was aborted (the
	 * publisher went, or the broker dropped this subscriber's copy as a
	 * slow consumer), or the connection was lost. */
	uint64_t large_aborted;
	/* Large messages this library dropped: larger than max_payload
	 * (VB_EV_NOTICE), no room or memory to put them back together
	 * (VB_EV_SLOW_CONSUMER), joined part-way (a subscription made while
	 * one was under way), malformed (also bad_msgs), or left unfinished
	 * for 5 s when room was needed. */
	uint64_t large_dropped;
	uint64_t max_payload; /* now: the largest data (with its headers) the
			       * broker takes as a stream; 0 while not
			       * connected, or if it takes none */
	/* Direct mode: messages received from direct publishers (also in
	 * msgs_in) and written to direct subscribers (one per subscriber
	 * connection; the message is in msgs_out once); direct connections
	 * open now (in and out); direct connections refused (a bad or
	 * replayed grant, the peer limit) or closed for a frame outside
	 * their grants; paths that failed (a publisher's side). */
	uint64_t direct_msgs_in, direct_msgs_out;
	uint64_t direct_peers;
	uint64_t direct_refused;
	uint64_t direct_failed;
	/* Direct mode, now: bytes of registered memory the direct
	 * connections hold (each one's receive ring and send staging, in
	 * and out); registered once per connection, at its set-up. */
	uint64_t direct_mem;
	/* Direct mode, when a direct connection fails while both ends live:
	 * messages written on it that went again through the broker (a
	 * publisher's); of those the broker brought, the ones delivered and
	 * the ones dropped as already taken from the direct connection (a
	 * subscriber's). */
	uint64_t direct_resent;
	uint64_t direct_resent_in, direct_resent_dup;
	/* Direct mode, a publisher's fan-out (one message, several direct
	 * subscribers): topic and payload bytes sent to a further subscriber
	 * from the one copy staged for the first (the device gathers them:
	 * no copy), and bytes copied again instead (another device or
	 * transport, or too many copies in flight). */
	uint64_t direct_fanout_gathered, direct_fanout_copied;
	/* Direct mode, a publisher's: messages of failed direct connections
	 * that could not go again through the broker (larger than it
	 * takes, no memory, or queued when the broker connection was lost:
	 * each said in a warning). */
	uint64_t direct_resent_lost;
};

/* vb_stats() - fill @s (up to s->sz bytes).  Returns VB_OK or VB_EINVAL. */
VB_EXPORT int vb_stats(struct vb_conn *c, struct vb_stats *s);

/* vb_is_connected() - 1 while a connection to the broker is open. */
VB_EXPORT int vb_is_connected(struct vb_conn *c);

/*
 * vb_conn_server_url() - the URL of @c's server ("tcp://10.0.0.2:7700"; an
 * IPv6 host in brackets) into @buf (@len bytes, NUL-terminated): the one
 * connected to while open, else the one being tried or tried next.  300
 * bytes always suffice.  Returns VB_OK, VB_EINVAL, or VB_ENOSPC (too small:
 * @buf untouched).  Any thread with VB_OPT_LOCKED; never blocks.
 */
VB_EXPORT int vb_conn_server_url(struct vb_conn *c, char *buf, size_t len);

/*
 * vb_conn_server_version() - the software version of @c's broker
 * ("0.1.0", as its vb_version()), from the handshake of the last
 * connection that opened (kept while reconnecting), into @buf (@len
 * bytes, NUL-terminated); "" from a broker that did not say.  33 bytes
 * always suffice.  Returns VB_OK, VB_EINVAL, VB_ESTATE (no connection has
 * opened yet) or VB_ENOSPC (@buf untouched).  Any thread with
 * VB_OPT_LOCKED; never blocks.
 */
VB_EXPORT int vb_conn_server_version(struct vb_conn *c, char *buf, size_t len);

/*
 * vb_rtt() - measure a round trip to the broker: a Ping, queued behind
 * what is already queued (as vb_flush()), until its Pong, as nats.c's
 * natsConnection_GetRTT; *@ns gets the nanoseconds (> 0), also kept as
 * vb_stats.rtt_ns.  Runs callbacks meanwhile, like vb_flush().  Returns
 * VB_OK, VB_ETIMEDOUT (no Pong within @timeout_ms; -1: no limit),
 * VB_ESTATE (no connection open: reconnecting, now or meanwhile),
 * VB_ECLOSED, VB_EINVAL or VB_ENOMEM.  Blocks; drops the lock while it
 * sleeps (VB_OPT_LOCKED).
 */
VB_EXPORT int vb_rtt(struct vb_conn *c, int timeout_ms, uint64_t *ns);

#ifdef __cplusplus
}
#endif

#endif /* VERBUS_VERBUS_H */
