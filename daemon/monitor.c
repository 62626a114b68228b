/*
 * monitor.c - the HTTP monitoring endpoint: /metrics, /varz, /connz, /routez,
 * /healthz.
 *
 * libmicrohttpd runs in "external polling" mode with epoll and no threads:
 * its epoll descriptor joins the daemon's epoll set and MHD_run() does the
 * work on the event-loop thread.  That is what lets the stats callbacks read
 * the broker without locks; the price is that a slow render delays the
 * broker, so every answer is built in one pass from one snapshot and
 * scrapers are limited in number and time.
 *
 * Every body is built in malloc()ed memory and handed to libmicrohttpd with
 * MHD_RESPMEM_MUST_FREE, which frees it when the response is done.  Strings
 * that come from clients (a connection's name) or from other brokers (a
 * route's peer id, its last error) are made valid UTF-8 before they reach
 * JSON or a Prometheus label, since one bad byte would make a scraper reject
 * the whole page; JSON and label escaping then take care of quotes, control
 * characters and newlines.
 *
 * The cluster callbacks of the stats source are optional: a source without
 * them, or a broker that is not clustered, is rendered exactly as before the
 * cluster existed, except that /routez answers with no routes.
 */
#include "monitor.h"

#include "core/log.h"
#include "core/parse.h"

#include <verbus/verbus.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <microhttpd.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Scrapers served at once, and seconds an idle one may keep its socket. */
#define MONITOR_CONN_LIMIT 64u
#define MONITOR_TIMEOUT_S 10u
/* Per-connection buffer for the request headers (libmicrohttpd's pool). */
#define MONITOR_CONN_MEMORY 32768u
/* /connz paging. */
#define CONNZ_LIMIT_DEFAULT 1024u
#define CONNZ_LIMIT_MAX 10000u
/*
 * Per-route Prometheus series are written for at most this many routes (the
 * first by peer id).  There is one route per cluster member, so this only
 * keeps a member list gone wild from swamping every scrape; /routez lists
 * them all.
 */
#define ROUTE_METRICS_MAX 256u
/*
 * MHD_run() rounds per vbd_monitor_run() while libmicrohttpd reports work
 * already pending (data read but not processed): enough to finish a short
 * request, few enough that the broker is not starved.
 */
#define RUN_ROUNDS 8

#define TYPE_JSON "application/json"
#define TYPE_PROM "text/plain; version=0.0.4; charset=utf-8"

struct vbd_monitor {
	struct MHD_Daemon *mhd; /* the HTTP server, driven by MHD_run() */
	struct vbd_stats_source src; /* where the numbers come from */
	int epfd; /* libmicrohttpd's epoll descriptor */
	uint16_t port; /* the port bound */
};

/* One answer, before it becomes an MHD_Response. */
struct reply {
	unsigned status; /* HTTP status */
	const char *type; /* Content-Type */
	char *body; /* malloc()ed; NULL: out of memory */
	size_t len; /* bytes in @body */
};

/* ---- text helpers ------------------------------------------------------ */

/*
 * Copy @src (a field of @size bytes, terminated or not) to @dst (at least
 * @size bytes), replacing every byte that is not part of valid UTF-8 by '?'.
 * The copy is never longer than the original, and @dst may be @src.
 */
static void clean_text(char *dst, const char *src, size_t size)
{
	size_t n = src ? strnlen(src, size) : 0, i = 0, k;
	uint32_t cp;

	if (n == size)
		n--;
	while (i < n) {
		k = vbi_utf8_decode(src + i, n - i, &cp);
		if (k == 0) {
			dst[i++] = '?';
			continue;
		}
		memmove(dst + i, src + i, k);
		i += k;
	}
	dst[n] = '\0';
}

/* ISO-8601 UTC, as NATS writes "start". */
static void fmt_time(char *buf, size_t len, int64_t unix_s)
{
	time_t t = (time_t)unix_s;
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "1970-01-01T00:00:00Z");
}

/* "3d4h5m6s", "5m0s", "7s": as NATS writes "uptime". */
static void fmt_uptime(char *buf, size_t len, uint64_t s)
{
	unsigned long long d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60;
	unsigned long long sec = s % 60;

	if (d)
		snprintf(buf, len, "%llud%lluh%llum%llus", d, h, m, sec);
	else if (h)
		snprintf(buf, len, "%lluh%llum%llus", h, m, sec);
	else if (m)
		snprintf(buf, len, "%llum%llus", m, sec);
	else
		snprintf(buf, len, "%llus", sec);
}

/* ---- snapshots --------------------------------------------------------- */

/* Every connection, copied out of the broker in one pass. */
struct conn_list {
	struct vbd_stats_conn *v; /* the copies */
	size_t n; /* used */
	size_t cap; /* allocated */
	bool oom; /* a copy did not fit: the list is incomplete */
};

static void collect_conn(void *ctx, const struct vbd_stats_conn *c)
{
	struct conn_list *l = ctx;
	struct vbd_stats_conn *v;
	size_t cap;

	if (l->oom)
		return;
	if (l->n == l->cap) {
		cap = l->cap ? 2 * l->cap : 64;
		v = realloc(l->v, cap * sizeof(*v));
		if (v == NULL) {
			l->oom = true;
			return;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *c;
}

/*
 * The process's memory: resident bytes from /proc/self/statm, and the C
 * heap from mallinfo2(): what is handed out (arena and mmap()ed chunks)
 * beside what the allocator holds free.  Resident memory alone cannot tell
 * a leak from a heap that keeps freed memory for reuse; in-use bytes can.
 */
static void snap_memory(struct vbd_stats_server *s)
{
	struct mallinfo2 mi = mallinfo2();
	unsigned long size, resident;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%lu %lu", &size, &resident) == 2)
			s->rss_bytes = (uint64_t)resident *
				       (uint64_t)sysconf(_SC_PAGESIZE);
		fclose(f);
	}
	s->heap_in_use = mi.uordblks + mi.hblkhd;
	s->heap_free = mi.fordblks;
}

static void snap_server(struct vbd_monitor *m, struct vbd_stats_server *s)
{
	memset(s, 0, sizeof(*s));
	m->src.server(m->src.arg, s);
	if (s->version == NULL)
		s->version = "";
	if (s->server_name == NULL)
		s->server_name = "";
	if (s->listen == NULL)
		s->listen = "";
	snap_memory(s);
}

/*
 * The cluster's state, or all zero (enabled false) when the source has no
 * cluster callback or the broker is not clustered.  Its names are cleaned
 * here, once, for every page.
 */
static void snap_cluster(struct vbd_monitor *m, struct vbd_stats_cluster *c)
{
	memset(c, 0, sizeof(*c));
	if (m->src.cluster == NULL)
		return;
	m->src.cluster(m->src.arg, c);
	if (!c->enabled) {
		memset(c, 0, sizeof(*c));
		return;
	}
	clean_text(c->name, c->name, sizeof(c->name));
	clean_text(c->id, c->id, sizeof(c->id));
}

/* One route as the monitor keeps it: strings cleaned, the state copied. */
struct route_snap {
	struct vbd_stats_route r; /* r.state is NULL: see @state */
	char state[16]; /* "open", "connecting", "waiting" */
};

/* Every route, copied out of the broker in one pass. */
struct route_list {
	struct route_snap *v; /* the copies, by peer id once sorted */
	size_t n; /* used */
	size_t cap; /* allocated */
	bool oom; /* a copy did not fit: the list is incomplete */
};

static void collect_route(void *ctx, const struct vbd_stats_route *r)
{
	struct route_list *l = ctx;
	struct route_snap *v, *rs;
	size_t cap;

	if (l->oom)
		return;
	if (l->n == l->cap) {
		cap = l->cap ? 2 * l->cap : 16;
		v = realloc(l->v, cap * sizeof(*v));
		if (v == NULL) {
			l->oom = true;
			return;
		}
		l->v = v;
		l->cap = cap;
	}
	rs = &l->v[l->n++];
	rs->r = *r;
	/* The broker's pointer is not ours to keep. */
	rs->r.state = NULL;
	snprintf(rs->state, sizeof(rs->state), "%s", r->state ? r->state : "");
	clean_text(rs->state, rs->state, sizeof(rs->state));
	/* What other brokers chose: their ids, addresses and errors. */
	clean_text(rs->r.peer_id, rs->r.peer_id, sizeof(rs->r.peer_id));
	clean_text(rs->r.url, rs->r.url, sizeof(rs->r.url));
	clean_text(rs->r.peer, rs->r.peer, sizeof(rs->r.peer));
	clean_text(rs->r.last_error, rs->r.last_error,
		   sizeof(rs->r.last_error));
}

static int route_cmp(const void *a, const void *b)
{
	const struct route_snap *x = a, *y = b;
	int d = strcmp(x->r.peer_id, y->r.peer_id);

	if (d != 0)
		return d;
	return (x->r.cid > y->r.cid) - (x->r.cid < y->r.cid);
}

/* The routes of a clustered broker (none otherwise), sorted by peer id. */
static void snap_routes(struct vbd_monitor *m,
			const struct vbd_stats_cluster *c, struct route_list *l)
{
	if (!c->enabled || m->src.routes == NULL)
		return;
	m->src.routes(m->src.arg, collect_route, l);
	if (!l->oom && l->n > 1)
		qsort(l->v, l->n, sizeof(l->v[0]), route_cmp);
}

static bool route_open(const struct route_snap *rs)
{
	return strcmp(rs->state, "open") == 0;
}

/* ---- /metrics ---------------------------------------------------------- */

/* A label value, escaped as the exposition format asks. */
static void put_label(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\')
			fputs("\\\\", f);
		else if (*v == '"')
			fputs("\\\"", f);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

static void put_family(FILE *f, const char *name, const char *type,
		       const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A metric without labels: the server's, or the cluster's. */
struct server_metric {
	const char *name; /* verbus_..., _total for counters */
	const char *type; /* "counter" or "gauge" */
	const char *help; /* one sentence */
	uint64_t v; /* the value */
};

/* A per-connection metric: a field of struct vbd_stats_conn. */
struct conn_metric {
	const char *name; /* verbus_connection_... */
	const char *type; /* "counter" or "gauge" */
	const char *help; /* one sentence */
	size_t off; /* offset of the field */
	size_t size; /* 4 or 8: a uint32_t or uint64_t field */
};

#define CONN_METRIC(n, t, h, field)                                 \
	{                                                           \
		n, t, h, offsetof(struct vbd_stats_conn, field),    \
			sizeof(((struct vbd_stats_conn *)0)->field) \
	}

static const struct conn_metric conn_metrics[] = {
	CONN_METRIC("verbus_connection_subscriptions", "gauge",
		    "Subscriptions of the connection now.", subs),
	CONN_METRIC("verbus_connection_messages_in_total", "counter",
		    "Messages the client published.", msgs_in),
	CONN_METRIC("verbus_connection_bytes_in_total", "counter",
		    "Bytes the client published.", bytes_in),
	CONN_METRIC("verbus_connection_messages_out_total", "counter",
		    "Messages delivered to the client.", msgs_out),
	CONN_METRIC("verbus_connection_bytes_out_total", "counter",
		    "Bytes delivered to the client.", bytes_out),
	CONN_METRIC("verbus_connection_drops_total", "counter",
		    "Deliveries to the client dropped by the slow-consumer "
		    "policy.",
		    drops),
	CONN_METRIC("verbus_connection_credit_waits_total", "counter",
		    "Times the client had no room for a delivery.",
		    credit_waits),
	CONN_METRIC("verbus_connection_pending", "gauge",
		    "Deliveries queued for the client now.", pending),
	CONN_METRIC("verbus_connection_ring_size_bytes", "gauge",
		    "The client's receive ring on the broker.", ring_size),
};

static uint64_t conn_field(const struct vbd_stats_conn *c,
			   const struct conn_metric *cm)
{
	const char *p = (const char *)c + cm->off;
	uint32_t v32;
	uint64_t v64;

	if (cm->size == sizeof(v32)) {
		memcpy(&v32, p, sizeof(v32));
		return v32;
	}
	memcpy(&v64, p, sizeof(v64));
	return v64;
}

/* Metrics without labels, each its own family. */
static void put_metrics(FILE *f, const struct server_metric *ms, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		put_family(f, ms[i].name, ms[i].type, ms[i].help);
		fprintf(f, "%s %llu\n", ms[i].name,
			(unsigned long long)ms[i].v);
	}
}

static void put_server_metrics(FILE *f, const struct vbd_stats_server *s)
{
	const struct server_metric ms[] = {
		{ "verbus_start_time_seconds", "gauge",
		  "Start time of the broker since the epoch.",
		  (uint64_t)(s->start_time < 0 ? 0 : s->start_time) },
		{ "verbus_connections", "gauge", "Client connections open now.",
		  s->conns },
		{ "verbus_connections_total", "counter",
		  "Client connections accepted.", s->conns_total },
		{ "verbus_connections_rejected_total", "counter",
		  "Client connections refused (limits, bad handshake).",
		  s->conns_rejected },
		{ "verbus_subscriptions", "gauge", "Subscriptions now.",
		  s->subs },
		{ "verbus_messages_in_total", "counter",
		  "Messages published to the broker.", s->msgs_in },
		{ "verbus_bytes_in_total", "counter",
		  "Bytes published to the broker.", s->bytes_in },
		{ "verbus_messages_out_total", "counter",
		  "Messages delivered to subscribers.", s->msgs_out },
		{ "verbus_bytes_out_total", "counter",
		  "Bytes delivered to subscribers.", s->bytes_out },
		{ "verbus_drops_total", "counter",
		  "Deliveries dropped by the slow-consumer policy.", s->drops },
		{ "verbus_slow_consumers_total", "counter",
		  "Subscribers that hit a full ring.", s->slow_consumers },
		{ "verbus_slow_disconnects_total", "counter",
		  "Connections closed for slowness.", s->slow_disconnects },
		{ "verbus_credit_waits_total", "counter",
		  "Sends that waited for credit.", s->credit_waits },
		{ "verbus_no_interest_total", "counter",
		  "Published messages no subscription matched.",
		  s->no_interest },
		{ "verbus_auth_failures_total", "counter",
		  "Clients turned away for their credentials.",
		  s->auth_failures },
		{ "verbus_denied_publish_total", "counter",
		  "Published messages refused by permissions.",
		  s->denied_publish },
		{ "verbus_denied_subscribe_total", "counter",
		  "Subscriptions refused by permissions.",
		  s->denied_subscribe },
		{ "verbus_payload_copy_bytes_total", "counter",
		  "Payload bytes the broker's CPU copied.", s->payload_copies },
		{ "verbus_zero_copy_bytes_total", "counter",
		  "Bytes delivered by gathering them from publishers' rings.",
		  s->zero_copy_bytes },
		{ "verbus_forward_kicks_total", "counter",
		  "Zero-length writes posted to complete unsignalled forwards.",
		  s->forward_kicks },
		{ "verbus_mr_registered_total", "counter",
		  "Memory regions registered (ibv_reg_mr).", s->mr_registered },
		{ "verbus_mr_deregistered_total", "counter",
		  "Memory regions deregistered (ibv_dereg_mr).",
		  s->mr_deregistered },
		{ "verbus_registered_memory_bytes", "gauge",
		  "Bytes of memory registered with the RDMA device now.",
		  s->mem_registered },
		{ "verbus_handshakes", "gauge",
		  "Connections accepted and not yet admitted (Hello).",
		  s->handshakes },
		{ "verbus_handshake_timeouts_total", "counter",
		  "Connections closed for not completing the handshake in "
		  "time.",
		  s->handshake_timeouts },
		{ "verbus_forward_failures_total", "counter",
		  "Deliveries lost because the forward failed (logged).",
		  s->forward_failures },
		{ "process_resident_memory_bytes", "gauge",
		  "Resident memory of the broker process.", s->rss_bytes },
		{ "verbus_heap_in_use_bytes", "gauge",
		  "C heap bytes allocated and not freed (mallinfo2).",
		  s->heap_in_use },
		{ "verbus_heap_free_bytes", "gauge",
		  "C heap bytes the allocator holds free for reuse.",
		  s->heap_free },
		{ "verbus_max_connections", "gauge",
		  "Configured limit of client connections.", s->max_conns },
		{ "verbus_max_subscriptions", "gauge",
		  "Configured limit of subscriptions per connection.",
		  s->max_subs },
		{ "verbus_max_message_bytes", "gauge",
		  "Configured largest topic plus payload.", s->max_msg },
		{ "verbus_ring_size_bytes", "gauge",
		  "Configured receive ring per client on the broker.",
		  s->ring_size },
	};

	put_family(f, "verbus_info", "gauge",
		   "Version and name of the broker, as labels.");
	fputs("verbus_info{version=\"", f);
	put_label(f, s->version);
	fputs("\",server_name=\"", f);
	put_label(f, s->server_name);
	fputs("\",listen=\"", f);
	put_label(f, s->listen);
	fputs("\"} 1\n", f);
	put_family(f, "verbus_uptime_seconds", "gauge",
		   "Seconds since the broker started.");
	fprintf(f, "verbus_uptime_seconds %llu.%03u\n",
		(unsigned long long)(s->uptime_ms / 1000),
		(unsigned)(s->uptime_ms % 1000));
	put_metrics(f, ms, sizeof(ms) / sizeof(ms[0]));
}

/* A family with one sample per direction, "in" and "out". */
static void put_directions(FILE *f, const char *name, const char *help,
			   uint64_t in, uint64_t out)
{
	put_family(f, name, "counter", help);
	fprintf(f, "%s{direction=\"in\"} %llu\n", name, (unsigned long long)in);
	fprintf(f, "%s{direction=\"out\"} %llu\n", name,
		(unsigned long long)out);
}

static void put_cluster_metrics(FILE *f, const struct vbd_stats_cluster *c)
{
	const struct server_metric ms[] = {
		{ "verbus_cluster_members", "gauge",
		  "Members in ZooKeeper's latest list, this broker included.",
		  c->members },
		{ "verbus_cluster_routes", "gauge",
		  "Routes to other brokers open now.", c->routes },
		{ "verbus_cluster_zookeeper_connected", "gauge",
		  "1 while the ZooKeeper session is up, else 0.",
		  c->zk_connected },
		{ "verbus_cluster_registered", "gauge",
		  "1 while this broker's member node exists, else 0.",
		  c->registered },
		{ "verbus_cluster_zookeeper_connects_total", "counter",
		  "ZooKeeper sessions that came up.", c->zk_connects },
		{ "verbus_cluster_zookeeper_disconnects_total", "counter",
		  "Times the ZooKeeper connection was lost.",
		  c->zk_disconnects },
		{ "verbus_cluster_zookeeper_expiries_total", "counter",
		  "ZooKeeper sessions that expired.", c->zk_expiries },
		{ "verbus_routes_opened_total", "counter",
		  "Route connections that opened.", c->routes_opened },
		{ "verbus_route_connect_failures_total", "counter",
		  "Routes this broker tried to open and could not.",
		  c->route_connect_failures },
		{ "verbus_routes_refused_total", "counter",
		  "Routes refused (credentials, rule, port).",
		  c->routes_refused },
		{ "verbus_route_errors_total", "counter",
		  "Routes dropped for what the peer sent.", c->route_errors },
		{ "verbus_cluster_interest_local", "gauge",
		  "This broker's (pattern, queue) interest entries now.",
		  c->interest_local },
		{ "verbus_cluster_interest_remote", "gauge",
		  "Interest entries the peers hold now, in all.",
		  c->interest_remote },
	};

	put_family(f, "verbus_cluster_info", "gauge",
		   "Name of the cluster and id of this broker, as labels.");
	fputs("verbus_cluster_info{cluster=\"", f);
	put_label(f, c->name);
	fputs("\",id=\"", f);
	put_label(f, c->id);
	fputs("\"} 1\n", f);
	put_metrics(f, ms, sizeof(ms) / sizeof(ms[0]));
	put_directions(
		f, "verbus_route_messages_total",
		"Messages received from (in) and sent over (out) routes.",
		c->route_msgs_in, c->route_msgs_out);
	put_directions(f, "verbus_route_bytes_total",
		       "Bytes received from (in) and sent over (out) routes.",
		       c->route_bytes_in, c->route_bytes_out);
}

/* A per-route metric: uint64_t fields of struct vbd_stats_route. */
struct route_metric {
	const char *name; /* verbus_route_... */
	const char *type; /* "counter" or "gauge" */
	const char *help; /* one sentence */
	size_t off; /* the field; the "in" one with a direction */
	size_t off_out; /* the "out" field, or NO_DIRECTION */
};

#define NO_DIRECTION SIZE_MAX
#define ROUTE_FIELD(field) offsetof(struct vbd_stats_route, field)

static const struct route_metric route_metrics[] = {
	{ "verbus_route_peer_messages_total", "counter",
	  "Messages received from (in) and sent to (out) the peer on the "
	  "route's current connection.",
	  ROUTE_FIELD(msgs_in), ROUTE_FIELD(msgs_out) },
	{ "verbus_route_peer_bytes_total", "counter",
	  "Bytes received from (in) and sent to (out) the peer on the "
	  "route's current connection.",
	  ROUTE_FIELD(bytes_in), ROUTE_FIELD(bytes_out) },
	{ "verbus_route_peer_interest", "gauge",
	  "Interest entries the peer holds now.", ROUTE_FIELD(interest_in),
	  NO_DIRECTION },
	{ "verbus_route_peer_interest_queued", "gauge",
	  "Interest entries not yet sent to the peer.",
	  ROUTE_FIELD(interest_queued), NO_DIRECTION },
	{ "verbus_route_peer_connects_total", "counter",
	  "Times the route to the peer opened.", ROUTE_FIELD(connects),
	  NO_DIRECTION },
	{ "verbus_route_peer_connect_failures_total", "counter",
	  "Attempts to open the route to the peer that failed.",
	  ROUTE_FIELD(failures), NO_DIRECTION },
};

static uint64_t route_field(const struct vbd_stats_route *r, size_t off)
{
	uint64_t v;

	memcpy(&v, (const char *)r + off, sizeof(v));
	return v;
}

/* One sample of a per-route family; @dir NULL: no direction label. */
static void put_route_sample(FILE *f, const char *name, const char *peer_id,
			     const char *dir, uint64_t v)
{
	fprintf(f, "%s{peer=\"", name);
	put_label(f, peer_id);
	if (dir != NULL)
		fprintf(f, "\",direction=\"%s", dir);
	fprintf(f, "\"} %llu\n", (unsigned long long)v);
}

/*
 * The routes that get series: the first ROUTE_METRICS_MAX, and of two whose
 * peer ids cleaned to the same text only the first, since a repeated series
 * would make Prometheus reject the whole scrape.
 */
static bool route_has_series(const struct route_list *l, size_t i,
			     size_t *shown)
{
	if (*shown >= ROUTE_METRICS_MAX ||
	    (i > 0 && strcmp(l->v[i].r.peer_id, l->v[i - 1].r.peer_id) == 0))
		return false;
	(*shown)++;
	return true;
}

static void put_route_metrics(FILE *f, const struct route_list *l)
{
	const struct route_metric *rm;
	const struct vbd_stats_route *r;
	size_t i, j, shown;

	put_family(f, "verbus_route_up", "gauge",
		   "1 while the route to the peer is open, else 0.");
	for (i = 0, shown = 0; i < l->n; i++)
		if (route_has_series(l, i, &shown))
			put_route_sample(f, "verbus_route_up",
					 l->v[i].r.peer_id, NULL,
					 route_open(&l->v[i]));
	for (j = 0; j < sizeof(route_metrics) / sizeof(route_metrics[0]); j++) {
		rm = &route_metrics[j];
		put_family(f, rm->name, rm->type, rm->help);
		for (i = 0, shown = 0; i < l->n; i++) {
			if (!route_has_series(l, i, &shown))
				continue;
			r = &l->v[i].r;
			if (rm->off_out == NO_DIRECTION) {
				put_route_sample(f, rm->name, r->peer_id, NULL,
						 route_field(r, rm->off));
				continue;
			}
			put_route_sample(f, rm->name, r->peer_id, "in",
					 route_field(r, rm->off));
			put_route_sample(f, rm->name, r->peer_id, "out",
					 route_field(r, rm->off_out));
		}
	}
}

static void put_conn_metrics(FILE *f, const struct conn_list *l)
{
	char name[sizeof(l->v[0].name)];
	size_t i, j;

	for (i = 0; i < sizeof(conn_metrics) / sizeof(conn_metrics[0]); i++) {
		const struct conn_metric *cm = &conn_metrics[i];

		put_family(f, cm->name, cm->type, cm->help);
		for (j = 0; j < l->n; j++) {
			clean_text(name, l->v[j].name, sizeof(name));
			fprintf(f, "%s{cid=\"%llu\",name=\"", cm->name,
				(unsigned long long)l->v[j].cid);
			put_label(f, name);
			fprintf(f, "\"} %llu\n",
				(unsigned long long)conn_field(&l->v[j], cm));
		}
	}
}

static void render_metrics(struct vbd_monitor *m, struct MHD_Connection *conn,
			   struct reply *r)
{
	struct route_list rl = { 0 };
	struct conn_list l = { 0 };
	struct vbd_stats_cluster c;
	struct vbd_stats_server s;
	FILE *f;
	int bad;

	(void)conn;
	snap_server(m, &s);
	snap_cluster(m, &c);
	snap_routes(m, &c, &rl);
	m->src.conns(m->src.arg, collect_conn, &l);
	if (l.oom || rl.oom)
		goto out_free;
	f = open_memstream(&r->body, &r->len);
	if (f == NULL)
		goto out_free;
	put_server_metrics(f, &s);
	if (c.enabled) {
		put_cluster_metrics(f, &c);
		put_route_metrics(f, &rl);
	}
	put_conn_metrics(f, &l);
	/* Closed whatever happened: the stream owns r->body until then. */
	bad = ferror(f);
	if (fclose(f) != 0 || bad) {
		free(r->body);
		r->body = NULL;
	}
	r->status = MHD_HTTP_OK;
	r->type = TYPE_PROM;
out_free:
	free(rl.v);
	free(l.v);
}

/* ---- JSON: /varz, /connz, /routez, /healthz, errors -------------------- */

static void jadd_u64(json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_uint64(v));
}

static void jadd_str(json_object *o, const char *key, const char *v)
{
	json_object_object_add(o, key, json_object_new_string(v));
}

static void jadd_bool(json_object *o, const char *key, bool v)
{
	json_object_object_add(o, key, json_object_new_boolean(v));
}

/* Serialize @o into r->body and drop it; NULL @o: out of memory. */
static void json_reply(struct reply *r, unsigned status, json_object *o)
{
	const char *s;

	r->status = status;
	r->type = TYPE_JSON;
	if (o == NULL)
		return;
	s = json_object_to_json_string_ext(
		o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
			   JSON_C_TO_STRING_NOSLASHESCAPE);
	if (s != NULL) {
		/* With a final newline, for people reading it with curl. */
		r->len = strlen(s) + 1;
		r->body = malloc(r->len + 1);
		if (r->body != NULL)
			snprintf(r->body, r->len + 1, "%s\n", s);
	}
	json_object_put(o);
}

static void error_reply(struct reply *r, unsigned status, const char *msg)
{
	json_object *o = json_object_new_object();

	if (o != NULL) {
		jadd_str(o, "error", msg);
		jadd_u64(o, "status", status);
	}
	json_reply(r, status, o);
}

/* /varz's "cluster" object; NULL when out of memory. */
static json_object *cluster_json(const struct vbd_stats_cluster *c)
{
	json_object *o = json_object_new_object();

	if (o == NULL)
		return NULL;
	jadd_str(o, "name", c->name);
	jadd_str(o, "id", c->id);
	jadd_bool(o, "zk_connected", c->zk_connected);
	jadd_bool(o, "registered", c->registered);
	jadd_u64(o, "zk_connects", c->zk_connects);
	jadd_u64(o, "zk_disconnects", c->zk_disconnects);
	jadd_u64(o, "zk_expiries", c->zk_expiries);
	jadd_u64(o, "members", c->members);
	jadd_u64(o, "routes", c->routes);
	jadd_u64(o, "routes_opened", c->routes_opened);
	jadd_u64(o, "route_connect_failures", c->route_connect_failures);
	jadd_u64(o, "routes_refused", c->routes_refused);
	jadd_u64(o, "route_errors", c->route_errors);
	jadd_u64(o, "interest_local", c->interest_local);
	jadd_u64(o, "interest_remote", c->interest_remote);
	jadd_u64(o, "route_msgs_in", c->route_msgs_in);
	jadd_u64(o, "route_msgs_out", c->route_msgs_out);
	jadd_u64(o, "route_bytes_in", c->route_bytes_in);
	jadd_u64(o, "route_bytes_out", c->route_bytes_out);
	return o;
}

static void render_varz(struct vbd_monitor *m, struct MHD_Connection *conn,
			struct reply *r)
{
	json_object *o = json_object_new_object(), *co;
	struct vbd_stats_cluster c;
	struct vbd_stats_server s;
	char start[32], now[32], up[48];

	(void)conn;
	if (o == NULL) {
		json_reply(r, MHD_HTTP_OK, NULL);
		return;
	}
	snap_server(m, &s);
	fmt_time(start, sizeof(start), s.start_time);
	fmt_time(now, sizeof(now), (int64_t)time(NULL));
	fmt_uptime(up, sizeof(up), s.uptime_ms / 1000);
	jadd_str(o, "server_name", s.server_name);
	jadd_str(o, "version", s.version);
	jadd_str(o, "listen", s.listen);
	jadd_str(o, "start", start);
	jadd_str(o, "now", now);
	jadd_str(o, "uptime", up);
	jadd_u64(o, "uptime_ms", s.uptime_ms);
	jadd_u64(o, "connections", s.conns);
	jadd_u64(o, "total_connections", s.conns_total);
	jadd_u64(o, "rejected_connections", s.conns_rejected);
	jadd_u64(o, "subscriptions", s.subs);
	jadd_u64(o, "in_msgs", s.msgs_in);
	jadd_u64(o, "out_msgs", s.msgs_out);
	jadd_u64(o, "in_bytes", s.bytes_in);
	jadd_u64(o, "out_bytes", s.bytes_out);
	jadd_u64(o, "slow_consumers", s.slow_consumers);
	jadd_u64(o, "slow_disconnects", s.slow_disconnects);
	jadd_u64(o, "drops", s.drops);
	jadd_u64(o, "credit_waits", s.credit_waits);
	jadd_u64(o, "no_interest", s.no_interest);
	jadd_u64(o, "auth_failures", s.auth_failures);
	jadd_u64(o, "denied_publish", s.denied_publish);
	jadd_u64(o, "denied_subscribe", s.denied_subscribe);
	jadd_u64(o, "payload_copy_bytes", s.payload_copies);
	jadd_u64(o, "zero_copy_bytes", s.zero_copy_bytes);
	jadd_u64(o, "forward_kicks", s.forward_kicks);
	jadd_u64(o, "mr_registered", s.mr_registered);
	jadd_u64(o, "mr_deregistered", s.mr_deregistered);
	jadd_u64(o, "mem_registered", s.mem_registered);
	jadd_u64(o, "forward_failures", s.forward_failures);
	jadd_u64(o, "handshakes", s.handshakes);
	jadd_u64(o, "handshake_timeouts", s.handshake_timeouts);
	jadd_u64(o, "mem_resident", s.rss_bytes);
	jadd_u64(o, "heap_in_use", s.heap_in_use);
	jadd_u64(o, "heap_free", s.heap_free);
	jadd_u64(o, "max_connections", s.max_conns);
	jadd_u64(o, "max_subscriptions", s.max_subs);
	jadd_u64(o, "max_payload", s.max_msg);
	jadd_u64(o, "ring_size", s.ring_size);
	/* Absent, not null, when not clustered: /varz as it always was. */
	snap_cluster(m, &c);
	if (c.enabled) {
		co = cluster_json(&c);
		if (co == NULL) {
			json_object_put(o);
			o = NULL;
		} else {
			json_object_object_add(o, "cluster", co);
		}
	}
	json_reply(r, MHD_HTTP_OK, o);
}

static json_object *conn_json(const struct vbd_stats_conn *c, time_t now)
{
	json_object *o = json_object_new_object();
	char text[64], start[32], up[48];

	if (o == NULL)
		return NULL;
	fmt_time(start, sizeof(start), c->start_time);
	fmt_uptime(up, sizeof(up),
		   now > c->start_time ? (uint64_t)(now - c->start_time) : 0);
	jadd_u64(o, "cid", c->cid);
	clean_text(text, c->name, sizeof(c->name));
	jadd_str(o, "name", text);
	clean_text(text, c->peer, sizeof(c->peer));
	jadd_str(o, "peer", text);
	jadd_str(o, "transport", c->transport);
	jadd_str(o, "start", start);
	jadd_str(o, "uptime", up);
	jadd_u64(o, "subscriptions", c->subs);
	jadd_u64(o, "in_msgs", c->msgs_in);
	jadd_u64(o, "in_bytes", c->bytes_in);
	jadd_u64(o, "out_msgs", c->msgs_out);
	jadd_u64(o, "out_bytes", c->bytes_out);
	jadd_u64(o, "drops", c->drops);
	jadd_u64(o, "credit_waits", c->credit_waits);
	jadd_u64(o, "pending", c->pending);
	jadd_u64(o, "ring_size", c->ring_size);
	jadd_u64(o, "peer_ring_size", c->peer_ring);
	return o;
}

/* The page of /connz being built, one connection at a time. */
struct connz_page {
	uint64_t offset; /* first index to include */
	uint64_t limit; /* most to include */
	uint64_t seen; /* connections seen so far: the total, at the end */
	json_object *arr; /* the page */
	time_t now; /* for each connection's uptime */
	bool oom; /* an object could not be built */
};

static void connz_add(void *ctx, const struct vbd_stats_conn *c)
{
	struct connz_page *p = ctx;
	json_object *o;

	if (p->seen >= p->offset && p->seen - p->offset < p->limit && !p->oom) {
		o = conn_json(c, p->now);
		if (o == NULL || json_object_array_add(p->arr, o) != 0) {
			json_object_put(o);
			p->oom = true;
		}
	}
	p->seen++;
}

/* ?name=N: true and *@v if absent (@v keeps its default) or valid. */
static bool query_u64(struct MHD_Connection *conn, const char *name,
		      uint64_t *v, bool *present)
{
	const char *s =
		MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);

	if (present != NULL)
		*present = s != NULL;
	return s == NULL || vbi_parse_u64(s, v);
}

static void render_one_conn(struct vbd_monitor *m, uint64_t cid,
			    struct reply *r)
{
	struct vbd_stats_conn c;
	char msg[64];

	memset(&c, 0, sizeof(c));
	if (m->src.conn(m->src.arg, cid, &c) != 0) {
		snprintf(msg, sizeof(msg), "no connection with cid %llu",
			 (unsigned long long)cid);
		error_reply(r, MHD_HTTP_NOT_FOUND, msg);
		return;
	}
	json_reply(r, MHD_HTTP_OK, conn_json(&c, time(NULL)));
}

static void render_connz(struct vbd_monitor *m, struct MHD_Connection *conn,
			 struct reply *r)
{
	struct connz_page p = { .limit = CONNZ_LIMIT_DEFAULT };
	char now[32];
	uint64_t cid;
	bool has_cid;
	json_object *o;

	if (!query_u64(conn, "cid", &cid, &has_cid)) {
		error_reply(r, MHD_HTTP_BAD_REQUEST,
			    "cid must be a decimal integer");
		return;
	}
	if (has_cid) {
		render_one_conn(m, cid, r);
		return;
	}
	if (!query_u64(conn, "offset", &p.offset, NULL)) {
		error_reply(r, MHD_HTTP_BAD_REQUEST,
			    "offset must be a decimal integer");
		return;
	}
	if (!query_u64(conn, "limit", &p.limit, NULL) || p.limit == 0 ||
	    p.limit > CONNZ_LIMIT_MAX) {
		error_reply(r, MHD_HTTP_BAD_REQUEST,
			    "limit must be an integer from 1 to 10000");
		return;
	}
	p.now = time(NULL);
	o = json_object_new_object();
	p.arr = json_object_new_array();
	if (o == NULL || p.arr == NULL)
		goto out_oom;
	m->src.conns(m->src.arg, connz_add, &p);
	if (p.oom)
		goto out_oom;
	fmt_time(now, sizeof(now), (int64_t)p.now);
	jadd_str(o, "now", now);
	jadd_u64(o, "num_connections", json_object_array_length(p.arr));
	jadd_u64(o, "total", p.seen);
	jadd_u64(o, "offset", p.offset);
	jadd_u64(o, "limit", p.limit);
	json_object_object_add(o, "connections", p.arr);
	json_reply(r, MHD_HTTP_OK, o);
	return;
out_oom:
	json_object_put(p.arr);
	json_object_put(o);
	json_reply(r, MHD_HTTP_OK, NULL);
}

/* One route of /routez, like one connection of /connz. */
static json_object *route_json(const struct route_snap *rs, time_t now)
{
	const struct vbd_stats_route *r = &rs->r;
	json_object *o = json_object_new_object();
	char start[32] = "", up[48] = "";

	if (o == NULL)
		return NULL;
	/* A route that is not open has no connection, so no start. */
	if (r->start_time > 0) {
		fmt_time(start, sizeof(start), r->start_time);
		fmt_uptime(up, sizeof(up),
			   now > r->start_time ?
				   (uint64_t)(now - r->start_time) :
				   0);
	}
	jadd_str(o, "peer_id", r->peer_id);
	jadd_str(o, "url", r->url);
	jadd_str(o, "state", rs->state);
	jadd_bool(o, "outbound", r->outbound);
	jadd_bool(o, "member", r->member);
	jadd_u64(o, "cid", r->cid);
	jadd_str(o, "peer", r->peer);
	jadd_str(o, "start", start);
	jadd_str(o, "uptime", up);
	jadd_u64(o, "msgs_in", r->msgs_in);
	jadd_u64(o, "bytes_in", r->bytes_in);
	jadd_u64(o, "msgs_out", r->msgs_out);
	jadd_u64(o, "bytes_out", r->bytes_out);
	jadd_u64(o, "interest_in", r->interest_in);
	jadd_u64(o, "interest_queued", r->interest_queued);
	jadd_u64(o, "connects", r->connects);
	jadd_u64(o, "failures", r->failures);
	jadd_str(o, "last_error", r->last_error);
	return o;
}

static void render_routez(struct vbd_monitor *m, struct MHD_Connection *conn,
			  struct reply *r)
{
	struct route_list l = { 0 };
	struct vbd_stats_cluster c;
	json_object *o, *arr, *ro;
	time_t now = time(NULL);
	uint64_t open = 0;
	char nowbuf[32];
	size_t i;

	(void)conn;
	snap_cluster(m, &c);
	snap_routes(m, &c, &l);
	o = json_object_new_object();
	arr = json_object_new_array();
	if (l.oom || o == NULL || arr == NULL)
		goto out_oom;
	for (i = 0; i < l.n; i++) {
		ro = route_json(&l.v[i], now);
		if (ro == NULL || json_object_array_add(arr, ro) != 0) {
			json_object_put(ro);
			goto out_oom;
		}
		open += route_open(&l.v[i]);
	}
	fmt_time(nowbuf, sizeof(nowbuf), (int64_t)now);
	jadd_str(o, "server_id", c.id);
	jadd_str(o, "cluster", c.name);
	jadd_str(o, "now", nowbuf);
	jadd_u64(o, "num_routes", open);
	json_object_object_add(o, "routes", arr);
	free(l.v);
	json_reply(r, MHD_HTTP_OK, o);
	return;
out_oom:
	json_object_put(arr);
	json_object_put(o);
	free(l.v);
	json_reply(r, MHD_HTTP_OK, NULL);
}

/*
 * {"status":"ok"}, and when clustered a "cluster" object beside it.  Always
 * 200 while the broker runs: clients are served without ZooKeeper, so its
 * loss is reported here, not made a failed check.
 */
static void render_healthz(struct vbd_monitor *m, struct MHD_Connection *conn,
			   struct reply *r)
{
	json_object *o = json_object_new_object(), *co;
	struct vbd_stats_cluster c;

	(void)conn;
	if (o == NULL)
		goto out;
	jadd_str(o, "status", "ok");
	snap_cluster(m, &c);
	if (!c.enabled)
		goto out;
	co = json_object_new_object();
	if (co == NULL) {
		json_object_put(o);
		o = NULL;
		goto out;
	}
	jadd_str(co, "zookeeper",
		 c.zk_connected ? "connected" : "disconnected");
	jadd_bool(co, "registered", c.registered);
	jadd_u64(co, "routes", c.routes);
	jadd_u64(co, "members", c.members);
	json_object_object_add(o, "cluster", co);
out:
	json_reply(r, MHD_HTTP_OK, o);
}

/* ---- libmicrohttpd glue ------------------------------------------------ */

/* A path and the function that answers it. */
struct endpoint {
	const char *path; /* exact, without the query */
	void (*render)(struct vbd_monitor *m, struct MHD_Connection *conn,
		       struct reply *r); /* fills *r */
};

static const struct endpoint endpoints[] = {
	{ "/metrics", render_metrics }, { "/varz", render_varz },
	{ "/connz", render_connz },	{ "/routez", render_routez },
	{ "/healthz", render_healthz },
};

/* Hand @r to libmicrohttpd; frees r->body whatever happens. */
static enum MHD_Result send_reply(struct MHD_Connection *conn, struct reply *r,
				  bool allow_hdr)
{
	static char oom[] = "{ \"error\": \"out of memory\", \"status\": 500 }";
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (r->body != NULL) {
		resp = MHD_create_response_from_buffer(r->len, r->body,
						       MHD_RESPMEM_MUST_FREE);
		if (resp == NULL)
			free(r->body);
	} else {
		r->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		r->type = TYPE_JSON;
		resp = MHD_create_response_from_buffer(strlen(oom), oom,
						       MHD_RESPMEM_PERSISTENT);
	}
	if (resp == NULL)
		return MHD_NO;
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				    r->type) != MHD_YES ||
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
				    "no-store") != MHD_YES ||
	    (allow_hdr && MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
						  "GET, HEAD") != MHD_YES)) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	ret = MHD_queue_response(conn, r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result handle_request(void *cls, struct MHD_Connection *conn,
				      const char *url, const char *method,
				      const char *version,
				      const char *upload_data,
				      size_t *upload_data_size, void **con_cls)
{
	struct vbd_monitor *m = cls;
	struct reply r = { 0 };
	size_t i;

	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)con_cls;
	for (i = 0; i < sizeof(endpoints) / sizeof(endpoints[0]); i++)
		if (strcmp(url, endpoints[i].path) == 0)
			break;
	if (i == sizeof(endpoints) / sizeof(endpoints[0])) {
		error_reply(&r, MHD_HTTP_NOT_FOUND, "not found");
		return send_reply(conn, &r, false);
	}
	/*
	 * Answered at the first call, before any body: a GET has none, and
	 * anything else is refused without reading what it sends.
	 */
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
		error_reply(&r, MHD_HTTP_METHOD_NOT_ALLOWED,
			    "method not allowed");
		return send_reply(conn, &r, true);
	}
	endpoints[i].render(m, conn, &r);
	return send_reply(conn, &r, false);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/* libmicrohttpd's messages, one log line each. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[256], esc[VBI_LOG_ESCAPE_MAX];
	size_t n;

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	/* It may quote what an HTTP client sent. */
	vbi_log_escape(esc, sizeof(esc), line, n);
	vbi_warn("monitor: %s", esc);
}

int vbd_monitor_create(const char *addr, uint16_t port,
		       const struct vbd_stats_source *src,
		       struct vbd_monitor **out)
{
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
		struct sockaddr_storage ss;
	} sa;
	unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	const union MHD_DaemonInfo *info;
	socklen_t salen = sizeof(sa);
	struct vbd_monitor *m;
	int rc;

	if (addr == NULL || src == NULL || out == NULL || src->server == NULL ||
	    src->conns == NULL || src->conn == NULL)
		return VB_EINVAL;
	memset(&sa, 0, sizeof(sa));
	if (inet_pton(AF_INET, addr, &sa.in.sin_addr) == 1) {
		sa.in.sin_family = AF_INET;
		sa.in.sin_port = htons(port);
	} else if (inet_pton(AF_INET6, addr, &sa.in6.sin6_addr) == 1) {
		sa.in6.sin6_family = AF_INET6;
		sa.in6.sin6_port = htons(port);
		flags |= MHD_USE_IPv6;
	} else {
		return VB_EINVAL;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return VB_ENOMEM;
	m->src = *src;
	/* The logger comes first, to catch what the other options say. */
	m->mhd = MHD_start_daemon(
		flags, port, NULL, NULL, handle_request, m,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR,
		&sa.sa, MHD_OPTION_CONNECTION_LIMIT, MONITOR_CONN_LIMIT,
		MHD_OPTION_CONNECTION_TIMEOUT, MONITOR_TIMEOUT_S,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)MONITOR_CONN_MEMORY,
		MHD_OPTION_END);
	if (m->mhd == NULL) {
		vbi_err("monitor: cannot listen on %s port %u", addr,
			(unsigned)port);
		rc = VB_ESYS;
		goto out_free;
	}
	info = MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (info == NULL || info->epoll_fd < 0) {
		rc = VB_ESYS;
		goto out_stop;
	}
	m->epfd = info->epoll_fd;
	/* The real port, for port 0. */
	info = MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_LISTEN_FD);
	if (info == NULL || getsockname(info->listen_fd, &sa.sa, &salen) != 0) {
		rc = VB_ESYS;
		goto out_stop;
	}
	m->port = ntohs(sa.sa.sa_family == AF_INET6 ? sa.in6.sin6_port :
						      sa.in.sin_port);
	vbi_info("monitor: listening on http://%s%s%s:%u/",
		 sa.sa.sa_family == AF_INET6 ? "[" : "", addr,
		 sa.sa.sa_family == AF_INET6 ? "]" : "", (unsigned)m->port);
	*out = m;
	return VB_OK;

out_stop:
	MHD_stop_daemon(m->mhd);
out_free:
	free(m);
	return rc;
}

int vbd_monitor_fd(struct vbd_monitor *m)
{
	return m->epfd;
}

int vbd_monitor_timeout(struct vbd_monitor *m)
{
	MHD_UNSIGNED_LONG_LONG t;

	if (MHD_get_timeout(m->mhd, &t) != MHD_YES)
		return -1;
	return t > INT_MAX ? INT_MAX : (int)t;
}

int vbd_monitor_run(struct vbd_monitor *m)
{
	MHD_UNSIGNED_LONG_LONG t;
	int i;

	for (i = 0; i < RUN_ROUNDS; i++) {
		if (MHD_run(m->mhd) != MHD_YES) {
			vbi_err("monitor: MHD_run failed");
			return VB_ESYS;
		}
		if (MHD_get_timeout(m->mhd, &t) != MHD_YES || t != 0)
			break;
	}
	return VB_OK;
}

uint16_t vbd_monitor_port(const struct vbd_monitor *m)
{
	return m->port;
}

void vbd_monitor_destroy(struct vbd_monitor *m)
{
	if (m == NULL)
		return;
	if (m->mhd != NULL)
		MHD_stop_daemon(m->mhd);
	free(m);
}
