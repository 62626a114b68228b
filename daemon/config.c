/*
 * config.c - verbusd's configuration: one table of keys, two front ends.
 *
 * Every key is described once, in keys[]: its dotted name, the kind of value
 * it takes and its range.  The file (parsed by libconfig) and the command
 * line both end in the same apply_*() functions, so that "1M", a range or an
 * enum name means the same in both and the messages name keys the same way.
 * A file's setting is type-checked against the key's kind first (a string
 * where an integer belongs is an error, not a conversion), then a string
 * value goes through the same text parser as the command line.
 *
 * Both front ends work on a copy of the caller's struct and write it back
 * only when every setting was accepted, so a failed load leaves the previous
 * configuration intact.
 */
#include "config.h"

#include "core/chunk.h"
#include "core/frame.h"
#include "core/parse.h"
#include "core/credit.h"
#include "core/log.h"
#include "core/ring.h"
#include "core/url.h"
#include "transport/transport.h"

#include <verbus/verbus.h>

#include <arpa/inet.h>
#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* How a key's value is written and checked. */
enum kind {
	K_NAME, /* an identifier string: [A-Za-z0-9._-]{1,63} */
	K_URL, /* a broker URL, [SCHEME://]HOST[:PORT] (core/url.h) */
	K_URL_TCP, /* a tcp or tls URL, [tcp://]HOST[:PORT], or "": none */
	K_LISTEN, /* numeric ADDR[:PORT] (vbi_hostport_parse, bare IPv6) */
	K_PORT, /* an integer port */
	K_UINT, /* an integer in [min, max] */
	K_SIZE, /* an integer, or a string vbi_parse_size() reads ("64KiB") */
	K_POLICY, /* block, drop or disconnect */
	K_FALLBACK, /* drop or disconnect */
	K_LEVEL, /* err, warn, info, debug, or 0-3 */
	K_BOOL, /* true or false */
	K_PATH, /* a file name, or "": none */
	K_STR, /* a string of the field's size at most (checked later) */
};

/* Every key; the order is the order of keys[] and of the printed file. */
enum key_id {
	KEY_SERVER_NAME,
	KEY_LISTEN,
	KEY_LISTEN_TCP,
	KEY_PORT,
	KEY_MAX_CONNS,
	KEY_MAX_SUBS,
	KEY_RING_SIZE,
	KEY_MAX_MSG,
	KEY_MAX_PAYLOAD,
	KEY_RECV_DEPTH,
	KEY_POLICY,
	KEY_BLOCK_TIMEOUT,
	KEY_FALLBACK,
	KEY_PENDING_MAX,
	KEY_HANDSHAKE_TIMEOUT,
	KEY_MAX_HANDSHAKES,
	KEY_LOG_LEVEL,
	KEY_MONITOR_LISTEN,
	KEY_MONITOR_PORT,
	KEY_BUSY_POLL,
	KEY_SPIN_US,
	KEY_TLS_CERT,
	KEY_TLS_KEY,
	KEY_TLS_CA,
	KEY_CLUSTER_ZK,
	KEY_CLUSTER_NAME,
	KEY_CLUSTER_ID,
	KEY_CLUSTER_LISTEN,
	KEY_CLUSTER_ADVERTISE,
	KEY_CLUSTER_SECRET,
	KEY_CLUSTER_SESSION,
	KEY_PID_FILE,
	KEY_LAME_DUCK_DURATION,
	KEY_LAME_DUCK_GRACE,
	KEY_DIRECT_ANY_HOST,
	KEY_COUNT,
};

/* One configuration key. */
struct key {
	const char *name; /* dotted: "group.key" or "key" */
	enum kind kind; /* how its value is written */
	uint64_t min; /* smallest number (or port) allowed */
	uint64_t max; /* largest number (or port) allowed */
};

/*
 * The smallest ring is one page, as in the transport; the largest is the
 * protocol's.  recv_depth's bounds are the transport's too, so that a value
 * accepted here never fails at the first connection.
 */
#define RING_MIN 4096u
#define RECV_DEPTH_MAX 4096u

static const struct key keys[KEY_COUNT] = {
	[KEY_SERVER_NAME] = { "server_name", K_NAME, 0, 0 },
	[KEY_LISTEN] = { "listen", K_URL, 0, 0 },
	[KEY_LISTEN_TCP] = { "listen_tcp", K_URL_TCP, 0, 0 },
	[KEY_PORT] = { "port", K_PORT, 1, 65535 },
	[KEY_MAX_CONNS] = { "limits.max_conns", K_UINT, 1, 1u << 20 },
	[KEY_MAX_SUBS] = { "limits.max_subs", K_UINT, 1, 1u << 24 },
	[KEY_RING_SIZE] = { "limits.ring_size", K_SIZE, RING_MIN,
			    VBI_RING_MAX },
	[KEY_MAX_MSG] = { "limits.max_msg", K_SIZE, 1,
			  VBI_RING_MAX / 2 - VBI_FRAME_HDR_LEN },
	[KEY_MAX_PAYLOAD] = { "limits.max_payload", K_SIZE, 0,
			      VBI_CHUNK_TOTAL_MAX },
	[KEY_RECV_DEPTH] = { "limits.recv_depth", K_UINT, VBI_CREDIT_MIN_POSTED,
			     RECV_DEPTH_MAX },
	[KEY_POLICY] = { "slow_consumer.policy", K_POLICY, 0, 0 },
	[KEY_BLOCK_TIMEOUT] = { "slow_consumer.block_timeout_ms", K_UINT, 1,
				3600000 },
	[KEY_FALLBACK] = { "slow_consumer.fallback", K_FALLBACK, 0, 0 },
	[KEY_PENDING_MAX] = { "slow_consumer.pending_max", K_UINT, 1,
			      1u << 24 },
	[KEY_HANDSHAKE_TIMEOUT] = { "limits.handshake_timeout_ms", K_UINT, 100,
				    600000 },
	[KEY_MAX_HANDSHAKES] = { "limits.max_handshakes_per_addr", K_UINT, 1,
				 1u << 20 },
	[KEY_LOG_LEVEL] = { "log.level", K_LEVEL, VBI_LOG_ERR, VBI_LOG_DEBUG },
	[KEY_MONITOR_LISTEN] = { "monitor.listen", K_LISTEN, 0, 65535 },
	[KEY_MONITOR_PORT] = { "monitor.port", K_PORT, 0, 65535 },
	[KEY_BUSY_POLL] = { "busy_poll", K_BOOL, 0, 1 },
	[KEY_SPIN_US] = { "spin_us", K_UINT, 0, 1000000 },
	[KEY_TLS_CERT] = { "tls.cert", K_PATH, 0, 0 },
	[KEY_TLS_KEY] = { "tls.key", K_PATH, 0, 0 },
	[KEY_TLS_CA] = { "tls.ca", K_PATH, 0, 0 },
	[KEY_CLUSTER_ZK] = { "cluster.zookeeper", K_STR, 0, 0 },
	[KEY_CLUSTER_NAME] = { "cluster.name", K_NAME, 0, 0 },
	[KEY_CLUSTER_ID] = { "cluster.id", K_NAME, 0, 0 },
	[KEY_CLUSTER_LISTEN] = { "cluster.listen", K_STR, 0, 0 },
	[KEY_CLUSTER_ADVERTISE] = { "cluster.advertise", K_STR, 0, 0 },
	[KEY_CLUSTER_SECRET] = { "cluster.secret", K_STR, 0, 0 },
	[KEY_CLUSTER_SESSION] = { "cluster.session_timeout_ms", K_UINT, 1000,
				  60000 },
	[KEY_PID_FILE] = { "pid_file", K_PATH, 0, 0 },
	[KEY_LAME_DUCK_DURATION] = { "lame_duck_duration_ms", K_UINT, 1,
				     3600000 },
	[KEY_LAME_DUCK_GRACE] = { "lame_duck_grace_ms", K_UINT, 0, 3600000 },
	[KEY_DIRECT_ANY_HOST] = { "direct.listen_any_host", K_BOOL, 0, 1 },
};

static const char *const policy_names[] = {
	[VBD_SLOW_BLOCK] = "block",
	[VBD_SLOW_DROP] = "drop",
	[VBD_SLOW_DISCONNECT] = "disconnect",
};

/* Where an error goes, and the "file:line: " it starts with, if any. */
struct ectx {
	char *buf; /* the caller's err, or NULL */
	size_t len; /* its size */
	const char *file; /* the file being read, or NULL */
	int line; /* the setting's line in @file, or 0 */
};

static int fail(struct ectx *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Format "file:line: message" into the caller's buffer; VB_EINVAL. */
static int fail(struct ectx *e, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (e->buf == NULL || e->len == 0)
		return VB_EINVAL;
	if (e->file != NULL && e->line > 0)
		n = snprintf(e->buf, e->len, "%s:%d: ", e->file, e->line);
	else if (e->file != NULL)
		n = snprintf(e->buf, e->len, "%s: ", e->file);
	if (n < 0 || (size_t)n >= e->len)
		return VB_EINVAL;
	va_start(ap, fmt);
	vsnprintf(e->buf + n, e->len - (size_t)n, fmt, ap);
	va_end(ap);
	return VB_EINVAL;
}

static const struct key *find_key(const char *name)
{
	size_t i;

	for (i = 0; i < KEY_COUNT; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

/* True if @name is a group: some key is "name.something". */
static bool is_group(const char *name)
{
	size_t i, n = strlen(name);

	for (i = 0; i < KEY_COUNT; i++)
		if (strncmp(keys[i].name, name, n) == 0 &&
		    keys[i].name[n] == '.')
			return true;
	return false;
}

/*
 * The keys allowed under @group (NULL: at the top of the file, where groups
 * count as keys; "": every dotted key, for the command line), as a comma
 * separated list in @buf.
 */
static const char *allowed_keys(const char *group, char *buf, size_t len)
{
	size_t i, j, n = group ? strlen(group) : 0, used = 0;
	const char *name, *dot;
	int w;

	buf[0] = '\0';
	for (i = 0; i < KEY_COUNT; i++) {
		name = keys[i].name;
		dot = strchr(name, '.');
		if (group != NULL && n > 0) {
			if (strncmp(name, group, n) != 0 || name[n] != '.')
				continue;
			name += n + 1;
			w = snprintf(buf + used, len - used, "%s%s",
				     used ? ", " : "", name);
		} else if (group == NULL && dot != NULL) {
			/* A group: list it once, at its first key. */
			for (j = 0; j < i; j++)
				if (strncmp(keys[j].name, name,
					    (size_t)(dot - name) + 1) == 0)
					break;
			if (j < i)
				continue;
			w = snprintf(buf + used, len - used, "%s%.*s",
				     used ? ", " : "", (int)(dot - name), name);
		} else {
			w = snprintf(buf + used, len - used, "%s%s",
				     used ? ", " : "", name);
		}
		if (w < 0 || (size_t)w >= len - used)
			break;
		used += (size_t)w;
	}
	return buf;
}

/* "64K", "1M", "2G" when exact, else the plain number. */
static const char *fmt_size(uint64_t v, char *buf, size_t len)
{
	static const char suffix[] = "GMK";
	int i;

	for (i = 0; i < 3; i++) {
		uint64_t unit = 1ull << (10 * (3 - i));

		if (v != 0 && v % unit == 0) {
			snprintf(buf, len, "%llu%c",
				 (unsigned long long)(v / unit), suffix[i]);
			return buf;
		}
	}
	snprintf(buf, len, "%llu", (unsigned long long)v);
	return buf;
}

static const char *fmt_num(const struct key *k, uint64_t v, char *buf,
			   size_t len)
{
	if (k->kind == K_SIZE)
		return fmt_size(v, buf, len);
	snprintf(buf, len, "%llu", (unsigned long long)v);
	return buf;
}

/* A name (server, cluster, broker id) that fits @max bytes with its NUL,
 * by core/parse.h's one rule. */
static bool name_ok(const char *s, size_t max)
{
	size_t n = strnlen(s, max);

	return n < max && vbi_name_valid(s, n);
}

/*
 * The monitor's address must be numeric, since it is bound as given, and
 * only there does the default of "loopback only" mean anything.  (The
 * broker's may be a host name, which rdma_cm resolves: it is a URL, read by
 * core/url.c.)
 */
static bool numeric_addr_ok(const char *s)
{
	struct in6_addr a6;
	struct in_addr a4;

	return inet_pton(AF_INET, s, &a4) == 1 ||
	       inet_pton(AF_INET6, s, &a6) == 1;
}

static int check_range(struct ectx *e, const struct key *k, uint64_t v)
{
	char a[32], b[32], c[32];

	if (v >= k->min && v <= k->max)
		return VB_OK;
	return fail(e, "%s: %s is out of range [%s, %s]", k->name,
		    fmt_num(k, v, a, sizeof(a)),
		    fmt_num(k, k->min, b, sizeof(b)),
		    fmt_num(k, k->max, c, sizeof(c)));
}

/* Store an already parsed number, after the key's own checks. */
static int apply_num(struct vbd_config *c, const struct key *k, uint64_t v,
		     struct ectx *e)
{
	int rc = check_range(e, k, v);

	if (rc)
		return rc;
	switch ((enum key_id)(k - keys)) {
	case KEY_PORT:
		snprintf(c->port, sizeof(c->port), "%u", (unsigned)v);
		break;
	case KEY_MONITOR_PORT:
		c->monitor_port = (uint16_t)v;
		break;
	case KEY_MAX_CONNS:
		c->max_conns = (uint32_t)v;
		break;
	case KEY_MAX_SUBS:
		c->max_subs = (uint32_t)v;
		break;
	case KEY_RING_SIZE:
		if (v & (v - 1))
			return fail(e, "%s: %llu is not a power of two",
				    k->name, (unsigned long long)v);
		c->ring_size = (uint32_t)v;
		break;
	case KEY_MAX_MSG:
		c->max_msg = (uint32_t)v;
		break;
	case KEY_MAX_PAYLOAD:
		c->max_payload = (uint32_t)v;
		break;
	case KEY_RECV_DEPTH:
		c->recv_depth = (uint32_t)v;
		break;
	case KEY_BLOCK_TIMEOUT:
		c->block_timeout_ms = (uint32_t)v;
		break;
	case KEY_PENDING_MAX:
		c->pending_max = (uint32_t)v;
		break;
	case KEY_HANDSHAKE_TIMEOUT:
		c->handshake_timeout_ms = (uint32_t)v;
		break;
	case KEY_MAX_HANDSHAKES:
		c->max_handshakes_per_addr = (uint32_t)v;
		break;
	case KEY_LOG_LEVEL:
		c->log_level = (int)v;
		break;
	case KEY_BUSY_POLL:
		c->busy_poll = (int)v;
		break;
	case KEY_SPIN_US:
		c->spin_us = (uint32_t)v;
		break;
	case KEY_CLUSTER_SESSION:
		c->cluster_session_ms = (uint32_t)v;
		break;
	case KEY_LAME_DUCK_DURATION:
		c->lame_duck_duration_ms = (uint32_t)v;
		break;
	case KEY_LAME_DUCK_GRACE:
		c->lame_duck_grace_ms = (uint32_t)v;
		break;
	case KEY_DIRECT_ANY_HOST:
		c->direct_any_host = (int)v;
		break;
	default:
		/* Not a numeric key: a bug in keys[]. */
		return fail(e, "%s: not a number", k->name);
	}
	return VB_OK;
}

/*
 * listen: a broker URL ("rdma://0.0.0.0:7700"), or one of the plain forms
 * the key always took, which mean @dflt ("rdma"; listen_tcp's "tcp"):
 * "addr", "addr:port", "[v6addr]:port", and a bare IPv6 address ("::"),
 * which core/url.c takes whole (VBI_HP_BARE_V6).  A URL without a port
 * keeps the port key's value; its scheme must have a transport.
 */
static int parse_listen(const struct key *k, const char *s, const char *dflt,
			struct vb_url *u, struct ectx *e)
{
	char why[160];

	if (vbi_url_parse_ex(s, VBI_HP_BARE_V6, u, why, sizeof(why)) != VB_OK)
		return fail(e, "%s: %s", k->name, why);
	if (!u->has_scheme)
		snprintf(u->scheme, sizeof(u->scheme), "%s", dflt);
	if (vbi_transport_check(u->scheme, why, sizeof(why)) != VB_OK)
		return fail(e, "%s: %s", k->name, why);
	if (strlen(u->host) >= VBD_ADDR_MAX)
		return fail(e, "%s: address '%s' is too long", k->name,
			    u->host);
	return VB_OK;
}

static int apply_listen(struct vbd_config *c, const struct key *k,
			const char *s, struct ectx *e)
{
	struct vb_url u;

	if (parse_listen(k, s, "rdma", &u, e))
		return VB_EINVAL;
	snprintf(c->scheme, sizeof(c->scheme), "%s", u.scheme);
	memcpy(c->listen_addr, u.host, strlen(u.host) + 1); /* checked */
	if (u.has_port)
		snprintf(c->port, sizeof(c->port), "%s", u.port);
	return VB_OK;
}

/*
 * listen_tcp: a second listener, over TCP, beside listen's: "tcp://addr",
 * "tcp://addr:port", the same with tls://, or the plain forms of listen
 * (which mean tcp here); without a port, the port key's.  "" turns it off.
 */
static int apply_listen_tcp(struct vbd_config *c, const struct key *k,
			    const char *s, struct ectx *e)
{
	struct vb_url u;

	if (*s == '\0') {
		c->tcp_addr[0] = c->tcp_port[0] = '\0';
		return VB_OK;
	}
	if (parse_listen(k, s, "tcp", &u, e))
		return VB_EINVAL;
	if (strcmp(u.scheme, "tcp") != 0 && strcmp(u.scheme, "tls") != 0)
		return fail(e,
			    "%s: '%s' is not a tcp or tls URL "
			    "(tcp://ADDR[:PORT], tls://ADDR[:PORT])",
			    k->name, s);
	memcpy(c->tcp_scheme, u.scheme, 4); /* "tcp" or "tls", checked */
	memcpy(c->tcp_addr, u.host, strlen(u.host) + 1); /* checked */
	snprintf(c->tcp_port, sizeof(c->tcp_port), "%s",
		 u.has_port ? u.port : "");
	return VB_OK;
}

/* The field of a K_PATH key. */
static char *path_field(struct vbd_config *c, const struct key *k)
{
	switch ((enum key_id)(k - keys)) {
	case KEY_TLS_CERT:
		return c->tls_cert;
	case KEY_TLS_KEY:
		return c->tls_key;
	case KEY_PID_FILE:
		return c->pid_file;
	default:
		return c->tls_ca;
	}
}

/* tls.cert, tls.key, tls.ca: a file name, read when the listener starts
 * (then a file that does not load stops verbusd with OpenSSL's words). */
static int apply_path(struct vbd_config *c, const struct key *k, const char *s,
		      struct ectx *e)
{
	if (strlen(s) >= VBD_PATH_MAX)
		return fail(e, "%s: a file name of at most %d bytes", k->name,
			    VBD_PATH_MAX - 1);
	memcpy(path_field(c, k), s, strlen(s) + 1);
	return VB_OK;
}

/* The field of a K_NAME key (each 64 bytes). */
static char *name_field(struct vbd_config *c, const struct key *k)
{
	switch ((enum key_id)(k - keys)) {
	case KEY_CLUSTER_NAME:
		return c->cluster_name;
	case KEY_CLUSTER_ID:
		return c->cluster_id;
	default:
		return c->server_name;
	}
}

/* The field of a K_STR key, and its size. */
static char *str_field(struct vbd_config *c, const struct key *k, size_t *size)
{
	switch ((enum key_id)(k - keys)) {
	case KEY_CLUSTER_ZK:
		*size = sizeof(c->cluster_zk);
		return c->cluster_zk;
	case KEY_CLUSTER_LISTEN:
		*size = sizeof(c->cluster_listen);
		return c->cluster_listen;
	case KEY_CLUSTER_ADVERTISE:
		*size = sizeof(c->cluster_advertise);
		return c->cluster_advertise;
	default:
		*size = sizeof(c->cluster_secret);
		return c->cluster_secret;
	}
}

/* A K_STR key: bounded here, its syntax checked by vbd_config_check(). */
static int apply_str(struct vbd_config *c, const struct key *k, const char *s,
		     struct ectx *e)
{
	size_t size;
	char *f = str_field(c, k, &size);

	if (strlen(s) >= size)
		return fail(e, "%s: at most %zu bytes", k->name, size - 1);
	memcpy(f, s, strlen(s) + 1);
	return VB_OK;
}

/*
 * monitor.listen: "addr", "addr:port", "[v6addr]", "[v6addr]:port" or a
 * bare IPv6 address, read by core/url.c's vbi_hostport_parse(); port 0
 * turns the monitor off, as monitor.port = 0 does.
 */
static int apply_monitor_listen(struct vbd_config *c, const struct key *k,
				const char *s, struct ectx *e)
{
	struct vbi_hostport hp;
	char why[160];

	if (vbi_hostport_parse(s, strlen(s), VBI_HP_BARE_V6 | VBI_HP_PORT_ZERO,
			       &hp, why, sizeof(why)) != VB_OK)
		return fail(e, "%s: %s", k->name, why);
	if (strlen(hp.host) >= sizeof(c->monitor_addr))
		return fail(e, "%s: address '%s' is too long", k->name,
			    hp.host);
	if (!numeric_addr_ok(hp.host))
		return fail(e,
			    "%s: '%s' is not a valid numeric IPv4 or IPv6 "
			    "address",
			    k->name, hp.host);
	if (hp.has_port)
		c->monitor_port = hp.port;
	snprintf(c->monitor_addr, sizeof(c->monitor_addr), "%s", hp.host);
	return VB_OK;
}

static int parse_policy(const struct key *k, const char *s, uint64_t *v,
			struct ectx *e)
{
	bool fallback = k->kind == K_FALLBACK;
	size_t i;

	for (i = 0; i < sizeof(policy_names) / sizeof(policy_names[0]); i++)
		if (strcmp(s, policy_names[i]) == 0)
			break;
	if (fallback && i == VBD_SLOW_BLOCK)
		return fail(e,
			    "%s: block cannot be the fallback of block "
			    "(allowed: drop, disconnect)",
			    k->name);
	if (i == sizeof(policy_names) / sizeof(policy_names[0]))
		return fail(e, "%s: '%s' is not one of %s", k->name, s,
			    fallback ? "drop, disconnect" :
				       "block, drop, disconnect");
	*v = i;
	return VB_OK;
}

static int parse_level(const struct key *k, const char *s, uint64_t *v,
		       struct ectx *e)
{
	int l;

	for (l = VBI_LOG_ERR; l <= VBI_LOG_DEBUG; l++)
		if (strcmp(s, vbi_log_level_name((enum vbi_log_level)l)) == 0) {
			*v = (uint64_t)l;
			return VB_OK;
		}
	if (vbi_parse_u64(s, v) && *v <= VBI_LOG_DEBUG)
		return VB_OK;
	return fail(e, "%s: '%s' is not one of err, warn, info, debug (or 0-3)",
		    k->name, s);
}

static int parse_bool(const struct key *k, const char *s, uint64_t *v,
		      struct ectx *e)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*v = 1;
			return VB_OK;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*v = 0;
			return VB_OK;
		}
	}
	return fail(e, "%s: '%s' is not a boolean (true or false)", k->name, s);
}

/* Apply @s, the text of @k's value (a file's string or the command line). */
static int apply_text(struct vbd_config *c, const struct key *k, const char *s,
		      struct ectx *e)
{
	const char *why = NULL;
	uint64_t v = 0;
	int rc = VB_OK;

	switch (k->kind) {
	case K_NAME:
		if (!name_ok(s, sizeof(c->server_name)))
			return fail(e,
				    "%s: '%s' must be 1-63 characters from "
				    "A-Z a-z 0-9 . _ -",
				    k->name, s);
		snprintf(name_field(c, k), sizeof(c->server_name), "%s", s);
		return VB_OK;
	case K_STR:
		return apply_str(c, k, s, e);
	case K_URL:
		return apply_listen(c, k, s, e);
	case K_URL_TCP:
		return apply_listen_tcp(c, k, s, e);
	case K_LISTEN:
		return apply_monitor_listen(c, k, s, e);
	case K_PORT:
	case K_UINT:
		if (!vbi_parse_u64(s, &v))
			return fail(e, "%s: '%s' is not a decimal integer",
				    k->name, s);
		break;
	case K_SIZE:
		if (!vbi_parse_size(s, &v, &why))
			return fail(e, "%s: '%s' is not a size: %s", k->name, s,
				    why);
		break;
	case K_POLICY:
	case K_FALLBACK:
		rc = parse_policy(k, s, &v, e);
		if (rc)
			return rc;
		if (k->kind == K_POLICY)
			c->slow_policy = (enum vbd_slow_policy)v;
		else
			c->block_fallback = (enum vbd_slow_policy)v;
		return VB_OK;
	case K_LEVEL:
		rc = parse_level(k, s, &v, e);
		break;
	case K_BOOL:
		rc = parse_bool(k, s, &v, e);
		break;
	case K_PATH:
		return apply_path(c, k, s, e);
	}
	return rc ? rc : apply_num(c, k, v, e);
}

static const char *type_name(int type)
{
	switch (type) {
	case CONFIG_TYPE_GROUP:
		return "a group";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return "an integer";
	case CONFIG_TYPE_FLOAT:
		return "a floating-point number";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_BOOL:
		return "a boolean";
	case CONFIG_TYPE_ARRAY:
		return "an array";
	case CONFIG_TYPE_LIST:
		return "a list";
	default:
		return "nothing";
	}
}

static const char *kind_wants(enum kind kind)
{
	switch (kind) {
	case K_PORT:
	case K_UINT:
		return "an integer";
	case K_SIZE:
		return "an integer or a size string such as \"1M\" or "
		       "\"64KiB\"";
	case K_LEVEL:
		return "a level name (\"err\", \"warn\", \"info\", \"debug\") "
		       "or 0-3";
	case K_BOOL:
		return "true or false";
	default:
		return "a string";
	}
}

/* Apply one setting of the file to @k, after checking its type. */
static int apply_setting(struct vbd_config *c, const struct key *k,
			 const config_setting_t *s, struct ectx *e)
{
	int type = config_setting_type(s);
	bool num_ok, str_ok;
	long long v;

	num_ok = k->kind == K_PORT || k->kind == K_UINT || k->kind == K_SIZE ||
		 k->kind == K_LEVEL;
	str_ok = k->kind != K_PORT && k->kind != K_UINT && k->kind != K_BOOL;
	if (type == CONFIG_TYPE_BOOL && k->kind == K_BOOL)
		return apply_num(c, k, config_setting_get_bool(s) ? 1 : 0, e);
	if ((type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64) && num_ok) {
		v = config_setting_get_int64(s);
		if (v < 0)
			return fail(e, "%s: %lld is out of range", k->name, v);
		return apply_num(c, k, (uint64_t)v, e);
	}
	if (type == CONFIG_TYPE_STRING && str_ok)
		return apply_text(c, k, config_setting_get_string(s), e);
	return fail(e, "%s: expected %s, got %s", k->name, kind_wants(k->kind),
		    type_name(type));
}

/* Apply every setting in @grp, which is the root (@prefix NULL) or a group. */
static int apply_group(struct vbd_config *c, const config_setting_t *grp,
		       const char *prefix, const char *path, struct ectx *e)
{
	char full[128], allowed[512];
	const config_setting_t *s;
	const struct key *k;
	const char *name;
	int i, rc;

	for (i = 0; i < config_setting_length(grp); i++) {
		s = config_setting_get_elem(grp, (unsigned)i);
		name = config_setting_name(s);
		e->file = config_setting_source_file(s) ?
				  config_setting_source_file(s) :
				  path;
		e->line = (int)config_setting_source_line(s);
		if (name == NULL)
			return fail(e, "unnamed setting");
		snprintf(full, sizeof(full), "%s%s%s", prefix ? prefix : "",
			 prefix ? "." : "", name);
		k = find_key(full);
		if (prefix == NULL && strcmp(name, "authorization") == 0) {
			rc = VB_OK; /* daemon/auth.c reads it */
		} else if (k != NULL) {
			rc = apply_setting(c, k, s, e);
		} else if (prefix == NULL && is_group(name)) {
			if (config_setting_type(s) != CONFIG_TYPE_GROUP)
				return fail(e,
					    "%s: expected a group "
					    "{ key = value; ... }, got %s",
					    name,
					    type_name(config_setting_type(s)));
			rc = apply_group(c, s, name, path, e);
		} else {
			return fail(
				e, "unknown key '%s' (allowed%s%s: %s)", full,
				prefix ? " in " : "", prefix ? prefix : "",
				allowed_keys(prefix, allowed, sizeof(allowed)));
		}
		if (rc)
			return rc;
	}
	return VB_OK;
}

void vbd_config_defaults(struct vbd_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->server_name, sizeof(c->server_name), "verbusd");
	snprintf(c->scheme, sizeof(c->scheme), "rdma");
	snprintf(c->tcp_scheme, sizeof(c->tcp_scheme), "tcp");
	snprintf(c->listen_addr, sizeof(c->listen_addr), "0.0.0.0");
	snprintf(c->port, sizeof(c->port), "%d", VB_DEFAULT_PORT);
	c->max_conns = 1024;
	c->max_subs = 65536;
	c->ring_size = 1u << 20;
	c->max_msg = 64u << 10;
	c->max_payload = 8u << 20;
	c->recv_depth = 128;
	c->slow_policy = VBD_SLOW_BLOCK;
	c->block_timeout_ms = 2000;
	c->block_fallback = VBD_SLOW_DISCONNECT;
	c->pending_max = 4096;
	c->handshake_timeout_ms = 2000;
	c->max_handshakes_per_addr = 256;
	c->log_level = VBI_LOG_INFO;
	snprintf(c->monitor_addr, sizeof(c->monitor_addr), "127.0.0.1");
	c->monitor_port = 8222;
	c->busy_poll = 0;
	c->direct_any_host = 0;
	c->spin_us = VBD_SPIN_US_DEFAULT;
	snprintf(c->cluster_name, sizeof(c->cluster_name), "verbus");
	c->cluster_session_ms = 2000;
	c->lame_duck_duration_ms = 30000;
	c->lame_duck_grace_ms = 10000;
}

int vbd_config_load(struct vbd_config *c, const char *path, char *err,
		    size_t errlen)
{
	struct ectx e = { err, errlen, path, 0 };
	struct vbd_config tmp = *c;
	config_t cfg;
	int rc;

	if (path == NULL)
		return fail(&e, "no configuration file given");
	config_init(&cfg);
	if (config_read_file(&cfg, path) != CONFIG_TRUE) {
		if (config_error_type(&cfg) == CONFIG_ERR_FILE_IO) {
			int saved = errno;

			fail(&e, "cannot read the file: %s",
			     saved ? strerror(saved) : "i/o error");
			rc = VB_ESYS;
		} else {
			e.file = config_error_file(&cfg) ?
					 config_error_file(&cfg) :
					 path;
			e.line = config_error_line(&cfg);
			rc = fail(&e, "syntax error: %s",
				  config_error_text(&cfg));
		}
		goto out_destroy;
	}
	rc = apply_group(&tmp, config_root_setting(&cfg), NULL, path, &e);
	if (rc == VB_OK)
		*c = tmp;
out_destroy:
	config_destroy(&cfg);
	return rc;
}

int vbd_config_set(struct vbd_config *c, const char *key, const char *value,
		   char *err, size_t errlen)
{
	struct ectx e = { err, errlen, NULL, 0 };
	struct vbd_config tmp = *c;
	const struct key *k = key ? find_key(key) : NULL;
	char allowed[768];
	int rc;

	if (k == NULL)
		return fail(&e, "unknown key '%s' (allowed: %s)",
			    key ? key : "(null)",
			    allowed_keys("", allowed, sizeof(allowed)));
	if (value == NULL)
		return fail(&e, "%s: missing value", k->name);
	rc = apply_text(&tmp, k, value, &e);
	if (rc == VB_OK)
		*c = tmp;
	return rc;
}

/* A field of a hand-filled struct may lack its terminator. */
static bool terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

/* A cluster URL (cluster.listen, cluster.advertise): SCHEME://HOST:PORT,
 * a transport's scheme, a port, and no wildcard address. */
static int check_cluster_url(struct ectx *e, const char *key, const char *s)
{
	char why[160];
	struct vb_url u;

	if (vbi_url_parse(s, &u, why, sizeof(why)) != VB_OK ||
	    vbi_transport_check(u.scheme, why, sizeof(why)) != VB_OK)
		return fail(e, "%s: %s", key, why);
	if (!strstr(s, "://") || !u.has_port)
		return fail(e, "%s: '%s' must be SCHEME://ADDR:PORT", key, s);
	if (strcmp(u.host, "0.0.0.0") == 0 || strcmp(u.host, "::") == 0)
		return fail(e,
			    "%s: '%s' is a wildcard address: other brokers "
			    "and clients need one they can reach",
			    key, s);
	return VB_OK;
}

static int check_cluster(const struct vbd_config *c, struct ectx *e)
{
	if (!terminated(c->cluster_zk, sizeof(c->cluster_zk)) ||
	    !terminated(c->cluster_name, sizeof(c->cluster_name)) ||
	    !terminated(c->cluster_id, sizeof(c->cluster_id)) ||
	    !terminated(c->cluster_listen, sizeof(c->cluster_listen)) ||
	    !terminated(c->cluster_advertise, sizeof(c->cluster_advertise)) ||
	    !terminated(c->cluster_secret, sizeof(c->cluster_secret)))
		return fail(e, "cluster: a setting is not terminated");
	if (!vbd_config_clustered(c))
		return VB_OK;
	if (!name_ok(c->cluster_name, sizeof(c->cluster_name)) ||
	    (c->cluster_id[0] &&
	     !name_ok(c->cluster_id, sizeof(c->cluster_id))))
		return fail(e, "cluster.name, cluster.id: 1-63 characters from "
			       "A-Z a-z 0-9 . _ -");
	if (!c->cluster_listen[0])
		return fail(e,
			    "cluster.listen: a clustered broker needs a route "
			    "listener (SCHEME://ADDR:PORT)");
	if (check_cluster_url(e, "cluster.listen", c->cluster_listen))
		return VB_EINVAL;
	if (c->cluster_advertise[0] &&
	    check_cluster_url(e, "cluster.advertise", c->cluster_advertise))
		return VB_EINVAL;
	if (!c->cluster_advertise[0] &&
	    (strcmp(c->listen_addr, "0.0.0.0") == 0 ||
	     strcmp(c->listen_addr, "::") == 0))
		return fail(e, "cluster.advertise: listen is on a wildcard "
			       "address, so clients need the URL to reach "
			       "this broker at (--cluster-advertise)");
	if (!c->cluster_secret[0])
		return fail(e, "cluster.secret: a clustered broker needs the "
			       "cluster's secret (or $VERBUSD_CLUSTER_SECRET)");
	return VB_OK;
}

static int check_strings(const struct vbd_config *c, struct ectx *e)
{
	char url[VBD_LISTEN_URL_MAX], why[160];
	struct vb_url u;
	uint64_t port;

	if (!terminated(c->server_name, sizeof(c->server_name)) ||
	    !name_ok(c->server_name, sizeof(c->server_name)))
		return fail(e, "server_name: must be 1-63 characters from "
			       "A-Z a-z 0-9 . _ -");
	if (!terminated(c->port, sizeof(c->port)) ||
	    !vbi_parse_u64(c->port, &port))
		return fail(e, "port: not a decimal integer");
	if (check_range(e, &keys[KEY_PORT], port))
		return VB_EINVAL;
	/* Scheme, address and port read back as one URL, as the key is. */
	if (!terminated(c->scheme, sizeof(c->scheme)) ||
	    !terminated(c->listen_addr, sizeof(c->listen_addr)))
		return fail(e, "listen: the scheme or address is not "
			       "terminated");
	vbd_config_listen_url(c, url, sizeof(url));
	if (vbi_url_parse(url, &u, why, sizeof(why)) != VB_OK ||
	    vbi_transport_check(u.scheme, why, sizeof(why)) != VB_OK)
		return fail(e, "listen: %s", why);
	if (c->tcp_addr[0]) {
		if (!terminated(c->tcp_addr, sizeof(c->tcp_addr)) ||
		    !terminated(c->tcp_port, sizeof(c->tcp_port)))
			return fail(e, "listen_tcp: the address or port is "
				       "not terminated");
		if (strcmp(c->scheme, "tcp") == 0 ||
		    strcmp(c->scheme, "tls") == 0)
			return fail(e,
				    "listen_tcp: listen is a %s URL "
				    "already (one tcp or tls listener)",
				    c->scheme);
		if (!terminated(c->tcp_scheme, sizeof(c->tcp_scheme)) ||
		    (strcmp(c->tcp_scheme, "tcp") != 0 &&
		     strcmp(c->tcp_scheme, "tls") != 0))
			return fail(e, "listen_tcp: a tcp or tls URL");
		vbd_config_listen_tcp_url(c, url, sizeof(url));
		if (vbi_url_parse(url, &u, why, sizeof(why)) != VB_OK)
			return fail(e, "listen_tcp: %s", why);
	}
	if (c->monitor_port != 0 &&
	    (!terminated(c->monitor_addr, sizeof(c->monitor_addr)) ||
	     !numeric_addr_ok(c->monitor_addr)))
		return fail(e, "monitor.listen: the address is not a numeric "
			       "IPv4 or IPv6 address");
	if (!terminated(c->tls_cert, sizeof(c->tls_cert)) ||
	    !terminated(c->tls_key, sizeof(c->tls_key)) ||
	    !terminated(c->tls_ca, sizeof(c->tls_ca)))
		return fail(e, "tls: a file name is not terminated");
	if (!terminated(c->pid_file, sizeof(c->pid_file)))
		return fail(e, "pid_file: the file name is not terminated");
	if (vbd_config_tls(c) && (!c->tls_cert[0] || !c->tls_key[0]))
		return fail(e, "tls: a tls listener needs tls.cert and tls.key "
			       "(--tls-cert, --tls-key)");
	return check_cluster(c, e);
}

bool vbd_config_clustered(const struct vbd_config *c)
{
	return c->cluster_zk[0] != '\0';
}

bool vbd_config_tls(const struct vbd_config *c)
{
	return strcmp(c->scheme, "tls") == 0 ||
	       (c->tcp_addr[0] && strcmp(c->tcp_scheme, "tls") == 0);
}

int vbd_config_check(const struct vbd_config *c, char *err, size_t errlen)
{
	struct ectx e = { err, errlen, NULL, 0 };
	const struct {
		enum key_id id;
		uint64_t v;
	} nums[] = {
		{ KEY_MAX_CONNS, c->max_conns },
		{ KEY_MAX_SUBS, c->max_subs },
		{ KEY_RING_SIZE, c->ring_size },
		{ KEY_MAX_MSG, c->max_msg },
		{ KEY_MAX_PAYLOAD, c->max_payload },
		{ KEY_RECV_DEPTH, c->recv_depth },
		{ KEY_BLOCK_TIMEOUT, c->block_timeout_ms },
		{ KEY_PENDING_MAX, c->pending_max },
		{ KEY_HANDSHAKE_TIMEOUT, c->handshake_timeout_ms },
		{ KEY_MAX_HANDSHAKES, c->max_handshakes_per_addr },
		{ KEY_SPIN_US, c->spin_us },
		{ KEY_CLUSTER_SESSION, c->cluster_session_ms },
		{ KEY_LAME_DUCK_DURATION, c->lame_duck_duration_ms },
		{ KEY_LAME_DUCK_GRACE, c->lame_duck_grace_ms },
	};
	char a[32], b[32];
	size_t i;
	int rc;

	rc = check_strings(c, &e);
	if (rc)
		return rc;
	for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
		if (check_range(&e, &keys[nums[i].id], nums[i].v))
			return VB_EINVAL;
	if (c->ring_size & (c->ring_size - 1))
		return fail(&e, "limits.ring_size: %u is not a power of two",
			    c->ring_size);
	/* A frame may take at most half the ring (core/ring.h). */
	if (vbi_frame_span(VBI_FRAME_HDR_LEN + (size_t)c->max_msg) >
	    c->ring_size / 2)
		return fail(&e,
			    "limits.max_msg: %s does not fit half of "
			    "limits.ring_size (%s) after the %u-byte header: "
			    "at most %u",
			    fmt_size(c->max_msg, a, sizeof(a)),
			    fmt_size(c->ring_size, b, sizeof(b)),
			    VBI_FRAME_HDR_LEN,
			    c->ring_size / 2 - VBI_FRAME_HDR_LEN);
	if ((unsigned)c->slow_policy > VBD_SLOW_DISCONNECT)
		return fail(&e,
			    "slow_consumer.policy: %d is not one of block, "
			    "drop, disconnect",
			    (int)c->slow_policy);
	if (c->block_fallback != VBD_SLOW_DROP &&
	    c->block_fallback != VBD_SLOW_DISCONNECT)
		return fail(&e,
			    "slow_consumer.fallback: must be drop or "
			    "disconnect, got %s",
			    vbd_slow_policy_name(c->block_fallback));
	if (c->log_level < VBI_LOG_ERR || c->log_level > VBI_LOG_DEBUG)
		return fail(&e, "log.level: %d is out of range [0, 3]",
			    c->log_level);
	if (c->busy_poll != 0 && c->busy_poll != 1)
		return fail(&e, "busy_poll: %d is not 0 or 1", c->busy_poll);
	if (c->direct_any_host != 0 && c->direct_any_host != 1)
		return fail(&e, "direct.listen_any_host: %d is not 0 or 1",
			    c->direct_any_host);
	if (c->lame_duck_grace_ms >= c->lame_duck_duration_ms)
		return fail(&e,
			    "lame_duck_grace_ms: %u must be shorter than "
			    "lame_duck_duration_ms (%u)",
			    c->lame_duck_grace_ms, c->lame_duck_duration_ms);
	return VB_OK;
}

void vbd_config_listen_url(const struct vbd_config *c, char *buf, size_t len)
{
	bool v6 = strchr(c->listen_addr, ':') != NULL;

	snprintf(buf, len, "%s://%s%s%s:%s", c->scheme, v6 ? "[" : "",
		 c->listen_addr, v6 ? "]" : "", c->port);
}

bool vbd_config_listen_tcp_url(const struct vbd_config *c, char *buf,
			       size_t len)
{
	bool v6 = strchr(c->tcp_addr, ':') != NULL;

	if (!c->tcp_addr[0]) {
		if (len)
			buf[0] = '\0';
		return false;
	}
	snprintf(buf, len, "%s://%s%s%s:%s", c->tcp_scheme, v6 ? "[" : "",
		 c->tcp_addr, v6 ? "]" : "",
		 c->tcp_port[0] ? c->tcp_port : c->port);
	return true;
}

/* "addr:port", with brackets around an IPv6 address. */
static void print_listen(FILE *f, const char *key, const char *addr,
			 unsigned port)
{
	bool v6 = strchr(addr, ':') != NULL;

	fprintf(f, "%s = \"%s%s%s:%u\";\n", key, v6 ? "[" : "", addr,
		v6 ? "]" : "", port);
}

/* "\tkey = \"value\";" with the value's quotes and backslashes escaped,
 * as libconfig reads them. */
static void print_str(FILE *f, const char *key, const char *v)
{
	fprintf(f, "\t%s = \"", key);
	for (; *v; v++) {
		if (*v == '"' || *v == '\\')
			fputc('\\', f);
		fputc(*v, f);
	}
	fprintf(f, "\";\n");
}

void vbd_config_print(const struct vbd_config *c, FILE *f)
{
	char a[32], b[32], d[32], url[VBD_LISTEN_URL_MAX];
	int level = c->log_level;

	if (level < VBI_LOG_ERR || level > VBI_LOG_DEBUG)
		level = VBI_LOG_INFO;
	fprintf(f, "# verbusd: the effective configuration\n");
	fprintf(f, "server_name = \"%s\";\n", c->server_name);
	vbd_config_listen_url(c, url, sizeof(url));
	fprintf(f, "listen = \"%s\";\n", url);
	if (vbd_config_listen_tcp_url(c, url, sizeof(url)))
		fprintf(f, "listen_tcp = \"%s\";\n", url);
	fprintf(f,
		"limits = {\n"
		"\tmax_conns = %u;\n"
		"\tmax_subs = %u;\n"
		"\tring_size = \"%s\";\n"
		"\tmax_msg = \"%s\";\n"
		"\tmax_payload = \"%s\";\n"
		"\trecv_depth = %u;\n"
		"\thandshake_timeout_ms = %u;\n"
		"\tmax_handshakes_per_addr = %u;\n"
		"};\n",
		c->max_conns, c->max_subs, fmt_size(c->ring_size, a, sizeof(a)),
		fmt_size(c->max_msg, b, sizeof(b)),
		fmt_size(c->max_payload, d, sizeof(d)), c->recv_depth,
		c->handshake_timeout_ms, c->max_handshakes_per_addr);
	fprintf(f,
		"slow_consumer = {\n"
		"\tpolicy = \"%s\";\n"
		"\tblock_timeout_ms = %u;\n"
		"\tfallback = \"%s\";\n"
		"\tpending_max = %u;\n"
		"};\n",
		vbd_slow_policy_name(c->slow_policy), c->block_timeout_ms,
		vbd_slow_policy_name(c->block_fallback), c->pending_max);
	fprintf(f, "log = {\n\tlevel = \"%s\";\n};\n",
		vbi_log_level_name((enum vbi_log_level)level));
	fprintf(f, "monitor = {\n\t");
	print_listen(f, "listen", c->monitor_addr, c->monitor_port);
	fprintf(f, "};\n");
	fprintf(f, "busy_poll = %s;\n", c->busy_poll ? "true" : "false");
	fprintf(f, "spin_us = %u;\n", c->spin_us);
	fprintf(f, "lame_duck_duration_ms = %u;\n", c->lame_duck_duration_ms);
	fprintf(f, "lame_duck_grace_ms = %u;\n", c->lame_duck_grace_ms);
	fprintf(f, "direct = {\n\tlisten_any_host = %s;\n};\n",
		c->direct_any_host ? "true" : "false");
	if (c->pid_file[0]) {
		fprintf(f, "pid_file = \"");
		for (const char *v = c->pid_file; *v; v++) {
			if (*v == '"' || *v == '\\')
				fputc('\\', f);
			fputc(*v, f);
		}
		fprintf(f, "\";\n");
	}
	fprintf(f, "tls = {\n");
	print_str(f, "cert", c->tls_cert);
	print_str(f, "key", c->tls_key);
	print_str(f, "ca", c->tls_ca);
	fprintf(f, "};\n");
	if (!vbd_config_clustered(c))
		return;
	/* The secret is not printed: this output may land in a log. */
	fprintf(f, "cluster = {\n");
	print_str(f, "zookeeper", c->cluster_zk);
	print_str(f, "name", c->cluster_name);
	print_str(f, "id", c->cluster_id);
	print_str(f, "listen", c->cluster_listen);
	print_str(f, "advertise", c->cluster_advertise);
	fprintf(f, "\tsession_timeout_ms = %u;\n", c->cluster_session_ms);
	fprintf(f, "};\n");
}

const char *vbd_slow_policy_name(enum vbd_slow_policy p)
{
	if ((unsigned)p < sizeof(policy_names) / sizeof(policy_names[0]))
		return policy_names[p];
	return "?";
}
