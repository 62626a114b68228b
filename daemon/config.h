/*
 * config.h - verbusd's configuration: defaults, the file, the command line.
 *
 * A configuration is built in three steps, each overriding the one before:
 * vbd_config_defaults(), vbd_config_load() (the file, usually
 * /etc/verbus/verbusd.conf, in libconfig syntax; see daemon/verbusd.conf),
 * and vbd_config_set() once per "key=value" given on the command line.
 * vbd_config_check() then validates what depends on more than one key (the
 * largest message against the ring size), so that the order of the steps
 * never matters; the daemon must call it before using the result.
 *
 * Keys are dotted paths into the file's groups: "limits.max_conns" on the
 * command line is "limits = { max_conns = ...; };" in the file.  Unknown keys
 * and out-of-range values are errors, never ignored: a mistyped setting must
 * stop the daemon rather than silently run it with a default.  Sizes are
 * integers or strings with a K, M or G suffix (powers of 1024: "1M");
 * durations are integer milliseconds.
 *
 * Errors are reported through @err (at most @errlen bytes, always
 * terminated; may be NULL), one lowercase line naming the file and line (for
 * vbd_config_load()), the key and the allowed values or range.
 *
 * Threading: none of these functions keeps state; a struct vbd_config
 * belongs to its caller.  None blocks, except vbd_config_load() reading its
 * file and vbd_config_print() writing to @f.
 */
#ifndef VERBUS_DAEMON_CONFIG_H
#define VERBUS_DAEMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* What the broker does when a subscriber's ring and queue are full. */
enum vbd_slow_policy {
	VBD_SLOW_BLOCK, /* stop the publisher for up to block_timeout_ms */
	VBD_SLOW_DROP, /* drop the delivery to that subscriber, count it */
	VBD_SLOW_DISCONNECT, /* close the subscriber's connection */
};

/*
 * spin_us by default: after a turn that had work, the event loop polls the
 * completion queues this long before it sleeps (see daemon/main.c).
 */
#define VBD_SPIN_US_DEFAULT 0u

#define VBD_ADDR_MAX 64 /* a listen address, with its terminator */
#define VBD_PATH_MAX 256 /* a file name, with its terminator */
#define VBD_URL_MAX 96 /* a URL in the cluster's settings, terminated */
#define VBD_SECRET_MAX 129 /* the cluster's secret: 128 bytes at most */

/* The effective configuration; every field has a default. */
struct vbd_config {
	char server_name[64]; /* [A-Za-z0-9._-], for monitoring ["verbusd"] */
	/* The listen URL's scheme, lowercase: the transport the broker
	 * listens with (transport/transport.h) ["rdma"]. */
	char scheme[16];
	/* The address the broker listens on: a name, IPv4 or IPv6 address,
	 * without brackets ["0.0.0.0"]. */
	char listen_addr[VBD_ADDR_MAX];
	char port[8]; /* its port, decimal, 1-65535 [VB_DEFAULT_PORT, "7700"] */
	/* A second listener, over TCP, beside listen's (which must then be
	 * neither tcp nor tls): its scheme, "tcp" or "tls" ["tcp"], address
	 * ["": none] and port ["": port's]. */
	char tcp_scheme[4];
	char tcp_addr[VBD_ADDR_MAX];
	char tcp_port[8];
	uint32_t max_conns; /* client connections at once [1024] */
	uint32_t max_subs; /* subscriptions per connection [65536] */
	uint32_t ring_size; /* each client's receive ring on the broker,
			     * a power of two [1 MiB] */
	uint32_t max_msg; /* largest topic + payload; a frame (32-byte
			   * header + max_msg) must fit half the ring
			   * [64 KiB] */
	/* largest message (payload, headers included) a client may publish
	 * as a stream of CHUNK frames (a large message, core/chunk.h); 0:
	 * none above max_msg [8 MiB] */
	uint32_t max_payload;
	uint32_t recv_depth; /* RECVs posted per connection [128] */
	enum vbd_slow_policy slow_policy; /* on a full subscriber [block] */
	uint32_t block_timeout_ms; /* how long block waits [2000] */
	enum vbd_slow_policy block_fallback; /* after the wait: drop or
					      * disconnect [disconnect] */
	uint32_t pending_max; /* deliveries queued per subscriber before
			       * the policy applies [4096] */
	uint32_t handshake_timeout_ms; /* an accepted connection not admitted
					* (Hello, credentials) by then is
					* closed [2000] */
	uint32_t max_handshakes_per_addr; /* connections from one address
					   * still in their handshake [256] */
	int log_level; /* enum vbi_log_level: 0 err .. 3 debug [2 info] */
	char monitor_addr[64]; /* HTTP monitor, numeric ["127.0.0.1"] */
	uint16_t monitor_port; /* its port; 0 disables it [8222] */
	int busy_poll; /* 1: the event loop spins instead of sleeping [0] */
	/* Direct mode: 1: a DirectListen may name any host; 0: only the
	 * address the connection comes from (a subscriber cannot point
	 * publishers at another machine) [0] */
	int direct_any_host;
	uint32_t spin_us; /* after work, poll this long before sleeping
			   * [VBD_SPIN_US_DEFAULT] */
	/* TLS listeners (tls://): the certificate chain and key they present
	 * (PEM; required with a tls listener) and, if set, the CA that every
	 * client's certificate must be signed by (then each must present
	 * one) ["": none]. */
	char tls_cert[VBD_PATH_MAX];
	char tls_key[VBD_PATH_MAX];
	char tls_ca[VBD_PATH_MAX];
	/* The cluster (docs/ARCHITECTURE.md, "The cluster"): brokers that
	 * find each other in ZooKeeper and route to each other.
	 * cluster.zookeeper: zk://HOST:PORT[,HOST:PORT...]/PATH ["": not
	 * clustered]; cluster.name: every member's [verbus]; cluster.id:
	 * this broker's, unique in the cluster [server_name]; cluster.listen:
	 * the route listener's URL, SCHEME://ADDR:PORT with a specific
	 * address, the scheme one the broker listens with; cluster.advertise:
	 * the URL clients reach this broker at ["": the listen URL, unless its
	 * address is a wildcard]; cluster.secret: shared by the members,
	 * checked on every route (or $VERBUSD_CLUSTER_SECRET) [""]. */
	char cluster_zk[VBD_PATH_MAX];
	char cluster_name[64];
	char cluster_id[64];
	char cluster_listen[VBD_URL_MAX];
	char cluster_advertise[VBD_URL_MAX];
	char cluster_secret[VBD_SECRET_MAX];
	uint32_t cluster_session_ms; /* ZooKeeper session timeout [2000] */
	/* Where verbusd writes its process id once it listens, removed at
	 * exit (verbusd --signal reads it) ["": none]. */
	char pid_file[VBD_PATH_MAX];
	/* Lame-duck mode (SIGUSR2): clients are told at once, those left
	 * after lame_duck_grace_ms are closed spread evenly over the rest of
	 * lame_duck_duration_ms, then verbusd exits, as nats-server's
	 * lame_duck_duration and lame_duck_grace_period [30000, 10000]. */
	uint32_t lame_duck_duration_ms;
	uint32_t lame_duck_grace_ms;
};

/* vbd_config_defaults() - fill @c with the defaults in brackets above. */
void vbd_config_defaults(struct vbd_config *c);

/*
 * vbd_config_load() - apply the settings in the file at @path over what @c
 * holds (call vbd_config_defaults() first); keys the file omits keep their
 * value.  Cross-field rules are left to vbd_config_check().
 *
 * Returns VB_OK; VB_EINVAL (a syntax error, an unknown key, a value of the
 * wrong type or out of range: @err says "file:line: key: why"); or VB_ESYS
 * (the file cannot be read).  On error @c is unchanged.
 */
int vbd_config_load(struct vbd_config *c, const char *path, char *err,
		    size_t errlen);

/*
 * vbd_config_set() - apply one setting from the command line: @key is a
 * dotted key ("limits.max_conns", "listen", ...) and @value its text, checked
 * exactly as in the file ("1M" for sizes; true/false, yes/no, on/off or 1/0
 * for booleans; names or 0-3 for log.level).
 *
 * Returns VB_OK, or VB_EINVAL (unknown key, bad value: @err says which and
 * lists the allowed keys or values).  On error @c is unchanged.
 */
int vbd_config_set(struct vbd_config *c, const char *key, const char *value,
		   char *err, size_t errlen);

/*
 * vbd_config_check() - validate @c as a whole: every field in range (the
 * struct may have been filled by hand), ring_size a power of two, a largest
 * frame within half the ring, block_fallback not block, a listen URL
 * (scheme, address, port) that parses and has a transport, a numeric
 * monitor address.  Returns VB_OK, or VB_EINVAL with the first problem in @err.
 */
int vbd_config_check(const struct vbd_config *c, char *err, size_t errlen);

/*
 * vbd_config_print() - write @c to @f in the file's syntax, every key, so
 * that loading the output yields @c again (verbusd --print-config).
 */
void vbd_config_print(const struct vbd_config *c, FILE *f);

/*
 * Room for vbd_config_listen_url(): scheme, "://", a bracketed address, a
 * colon and a port, and the terminator.
 */
#define VBD_LISTEN_URL_MAX (16 + 3 + 64 + 2 + 1 + 8)

/*
 * vbd_config_listen_url() - where the broker listens, as the URL the listen
 * key takes ("rdma://0.0.0.0:7700", "rdma://[::]:7700"), into @buf (@len
 * bytes, NUL-terminated; VBD_LISTEN_URL_MAX always suffices), for logs and
 * the printed configuration.
 */
void vbd_config_listen_url(const struct vbd_config *c, char *buf, size_t len);

/* vbd_config_tls() - true if a listener (listen or listen_tcp) is tls. */
bool vbd_config_tls(const struct vbd_config *c);

/* vbd_config_clustered() - is cluster.zookeeper set? */
bool vbd_config_clustered(const struct vbd_config *c);

/*
 * vbd_config_listen_tcp_url() - the second, TCP or TLS, listener's URL
 * ("tcp://0.0.0.0:7700") into @buf as vbd_config_listen_url() does.
 * Returns false (and an empty @buf) if there is none.
 */
bool vbd_config_listen_tcp_url(const struct vbd_config *c, char *buf,
			       size_t len);

/* vbd_slow_policy_name() - "block", "drop", "disconnect" or "?". */
const char *vbd_slow_policy_name(enum vbd_slow_policy p);

#endif /* VERBUS_DAEMON_CONFIG_H */
