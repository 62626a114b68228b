/*
 * monitor.c - the HTTP monitoring endpoint: /metrics, /varz, /connz, /routez,
 * /healthz (its verdict in health.c), /subsz (its page in subsz.c),
 * /accountz.
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
 * cluster existed, except that /routez answers with no routes.  So is the
 * accounts callback: without it /metrics has no account families and
 * /accountz lists no account.
 */
#include "monitor.h"
#include "daemon/health.h"
#include "daemon/monitor_int.h"

#include "core/log.h"
#include "core/parse.h"
#include "core/subject.h"

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
/* /subsz paging, as nats-server's. */
#define SUBSZ_LIMIT_DEFAULT 1024u
#define SUBSZ_LIMIT_MAX 4096u
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
void vbd_mon_clean_text(char *dst, const char *src, size_t size)
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

/*
 * Room for one more element in a snapshot list (@v, @n used of *@cap,
 * elements of @size bytes), grown by doubling from @first: the array to
 * use from now on; @v itself, with *@oom set, if it could not grow (the
 * list is then incomplete).
 */
static void *list_room(void *v, size_t n, size_t *cap, bool *oom, size_t size,
		       size_t first)
{
	size_t c;
	void *p;

	if (n < *cap)
		return v;
	c = *cap ? 2 * *cap : first;
	p = realloc(v, c * size);
	if (p == NULL) {
		*oom = true;
		return v;
	}
	*cap = c;
	return p;
}

static void collect_conn(void *ctx, const struct vbd_stats_conn *c)
{
	struct conn_list *l = ctx;

	if (!l->oom)
		l->v = list_room(l->v, l->n, &l->cap, &l->oom, sizeof(*l->v),
				 64);
	if (!l->oom)
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
	vbd_mon_clean_text(c->name, c->name, sizeof(c->name));
	vbd_mon_clean_text(c->id, c->id, sizeof(c->id));
}

static void collect_route(void *ctx, const struct vbd_stats_route *r)
{
	struct route_list *l = ctx;
	struct route_snap *rs;

	if (!l->oom)
		l->v = list_room(l->v, l->n, &l->cap, &l->oom, sizeof(*l->v),
				 16);
	if (l->oom)
		return;
	rs = &l->v[l->n++];
	rs->r = *r;
	/* The broker's pointer is not ours to keep. */
	rs->r.state = NULL;
	snprintf(rs->state, sizeof(rs->state), "%s", r->state ? r->state : "");
	vbd_mon_clean_text(rs->state, rs->state, sizeof(rs->state));
	/* What other brokers chose: their ids, addresses and errors. */
	vbd_mon_clean_text(rs->r.peer_id, rs->r.peer_id, sizeof(rs->r.peer_id));
	vbd_mon_clean_text(rs->r.url, rs->r.url, sizeof(rs->r.url));
	vbd_mon_clean_text(rs->r.peer, rs->r.peer, sizeof(rs->r.peer));
	vbd_mon_clean_text(rs->r.last_error, rs->r.last_error,
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

bool vbd_mon_route_open(const struct route_snap *rs)
{
	return strcmp(rs->state, "open") == 0;
}

static void collect_account(void *ctx, const struct vbd_stats_account *a)
{
	struct acct_list *l = ctx;
	struct acct_snap *as;

	if (!l->oom)
		l->v = list_room(l->v, l->n, &l->cap, &l->oom, sizeof(*l->v),
				 16);
	if (l->oom)
		return;
	as = &l->v[l->n++];
	as->a = *a;
	/* The broker's pointers are not ours to keep. */
	as->a.name = NULL;
	as->a.def = NULL;
	vbd_mon_clean_text(as->name, a->name, sizeof(as->name));
}

/* Every account, in the broker's order; none without the callback. */
static void snap_accounts(struct vbd_monitor *m, struct acct_list *l)
{
	if (m->src.accounts != NULL)
		m->src.accounts(m->src.arg, collect_account, l);
}

static void render_metrics(struct vbd_monitor *m, struct MHD_Connection *conn,
			   struct reply *r)
{
	struct route_list rl = { 0 };
	struct acct_list al = { 0 };
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
	snap_accounts(m, &al);
	if (l.oom || rl.oom || al.oom)
		goto out_free;
	f = open_memstream(&r->body, &r->len);
	if (f == NULL)
		goto out_free;
	vbd_metrics_write(f, &s, &c, &rl, &l,
			  m->src.accounts != NULL ? &al : NULL);
	/* Closed whatever happened: the stream owns r->body until then. */
	bad = ferror(f);
	if (fclose(f) != 0 || bad) {
		free(r->body);
		r->body = NULL;
	}
	r->status = MHD_HTTP_OK;
	r->type = TYPE_PROM;
out_free:
	free(al.v);
	free(rl.v);
	free(l.v);
}

/* ---- JSON: /varz, /connz, /routez, /accountz, /healthz, errors --------- */

void vbd_mon_jadd_u64(json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_uint64(v));
}

void vbd_mon_jadd_text(json_object *o, const char *key, const char *v,
		       size_t size)
{
	char buf[VBI_SUBJECT_MAX + 1];

	if (size > sizeof(buf))
		size = sizeof(buf);
	vbd_mon_clean_text(buf, v, size);
	json_object_object_add(o, key, json_object_new_string(buf));
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
		vbd_mon_jadd_u64(o, "status", status);
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
	vbd_mon_jadd_u64(o, "zk_connects", c->zk_connects);
	vbd_mon_jadd_u64(o, "zk_disconnects", c->zk_disconnects);
	vbd_mon_jadd_u64(o, "zk_expiries", c->zk_expiries);
	vbd_mon_jadd_u64(o, "members", c->members);
	vbd_mon_jadd_u64(o, "routes", c->routes);
	vbd_mon_jadd_u64(o, "routes_opened", c->routes_opened);
	vbd_mon_jadd_u64(o, "route_connect_failures",
			 c->route_connect_failures);
	vbd_mon_jadd_u64(o, "routes_refused", c->routes_refused);
	vbd_mon_jadd_u64(o, "route_errors", c->route_errors);
	vbd_mon_jadd_u64(o, "route_drops", c->route_drops);
	vbd_mon_jadd_u64(o, "route_drops_reported", c->route_drops_reported);
	vbd_mon_jadd_u64(o, "route_drops_in", c->route_drops_in);
	vbd_mon_jadd_u64(o, "interest_local", c->interest_local);
	vbd_mon_jadd_u64(o, "interest_remote", c->interest_remote);
	vbd_mon_jadd_u64(o, "route_msgs_in", c->route_msgs_in);
	vbd_mon_jadd_u64(o, "route_msgs_out", c->route_msgs_out);
	vbd_mon_jadd_u64(o, "route_bytes_in", c->route_bytes_in);
	vbd_mon_jadd_u64(o, "route_bytes_out", c->route_bytes_out);
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
	vbd_mon_jadd_u64(o, "uptime_ms", s.uptime_ms);
	vbd_mon_jadd_u64(o, "connections", s.conns);
	vbd_mon_jadd_u64(o, "total_connections", s.conns_total);
	vbd_mon_jadd_u64(o, "rejected_connections", s.conns_rejected);
	vbd_mon_jadd_u64(o, "subscriptions", s.subs);
	vbd_mon_jadd_u64(o, "in_msgs", s.msgs_in);
	vbd_mon_jadd_u64(o, "out_msgs", s.msgs_out);
	vbd_mon_jadd_u64(o, "in_bytes", s.bytes_in);
	vbd_mon_jadd_u64(o, "out_bytes", s.bytes_out);
	vbd_mon_jadd_u64(o, "slow_consumers", s.slow_consumers);
	vbd_mon_jadd_u64(o, "slow_disconnects", s.slow_disconnects);
	vbd_mon_jadd_u64(o, "loop_late", s.loop_late);
	vbd_mon_jadd_u64(o, "drops", s.drops);
	vbd_mon_jadd_u64(o, "credit_waits", s.credit_waits);
	vbd_mon_jadd_u64(o, "no_interest", s.no_interest);
	vbd_mon_jadd_u64(o, "no_responders", s.no_responders);
	vbd_mon_jadd_u64(o, "bad_headers", s.bad_headers);
	vbd_mon_jadd_u64(o, "large_msgs", s.large_in);
	vbd_mon_jadd_u64(o, "large_aborted", s.large_aborted);
	vbd_mon_jadd_u64(o, "large_active", s.large_active);
	vbd_mon_jadd_u64(o, "auth_failures", s.auth_failures);
	vbd_mon_jadd_u64(o, "denied_publish", s.denied_publish);
	vbd_mon_jadd_u64(o, "denied_subscribe", s.denied_subscribe);
	vbd_mon_jadd_u64(o, "payload_copy_bytes", s.payload_copies);
	vbd_mon_jadd_u64(o, "zero_copy_bytes", s.zero_copy_bytes);
	vbd_mon_jadd_u64(o, "forward_kicks", s.forward_kicks);
	vbd_mon_jadd_u64(o, "mr_registered", s.mr_registered);
	vbd_mon_jadd_u64(o, "mr_deregistered", s.mr_deregistered);
	vbd_mon_jadd_u64(o, "mem_registered", s.mem_registered);
	vbd_mon_jadd_u64(o, "forward_failures", s.forward_failures);
	vbd_mon_jadd_u64(o, "handshakes", s.handshakes);
	vbd_mon_jadd_u64(o, "handshake_timeouts", s.handshake_timeouts);
	vbd_mon_jadd_u64(o, "mem_resident", s.rss_bytes);
	vbd_mon_jadd_u64(o, "heap_in_use", s.heap_in_use);
	vbd_mon_jadd_u64(o, "heap_free", s.heap_free);
	vbd_mon_jadd_u64(o, "max_connections", s.max_conns);
	vbd_mon_jadd_u64(o, "max_subscriptions", s.max_subs);
	vbd_mon_jadd_u64(o, "max_payload", s.max_payload);
	vbd_mon_jadd_u64(o, "max_msg", s.max_msg);
	vbd_mon_jadd_u64(o, "ring_size", s.ring_size);
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
	char text[sizeof(c->account)], start[32], up[48];

	if (o == NULL)
		return NULL;
	fmt_time(start, sizeof(start), c->start_time);
	fmt_uptime(up, sizeof(up),
		   now > c->start_time ? (uint64_t)(now - c->start_time) : 0);
	vbd_mon_jadd_u64(o, "cid", c->cid);
	vbd_mon_clean_text(text, c->name, sizeof(c->name));
	jadd_str(o, "name", text);
	vbd_mon_clean_text(text, c->peer, sizeof(c->peer));
	jadd_str(o, "peer", text);
	jadd_str(o, "transport", c->transport);
	vbd_mon_clean_text(text, c->account, sizeof(c->account));
	jadd_str(o, "account", text);
	jadd_str(o, "start", start);
	jadd_str(o, "uptime", up);
	vbd_mon_jadd_u64(o, "subscriptions", c->subs);
	vbd_mon_jadd_u64(o, "in_msgs", c->msgs_in);
	vbd_mon_jadd_u64(o, "in_bytes", c->bytes_in);
	vbd_mon_jadd_u64(o, "out_msgs", c->msgs_out);
	vbd_mon_jadd_u64(o, "out_bytes", c->bytes_out);
	vbd_mon_jadd_u64(o, "drops", c->drops);
	vbd_mon_jadd_u64(o, "credit_waits", c->credit_waits);
	vbd_mon_jadd_u64(o, "pending", c->pending);
	vbd_mon_jadd_u64(o, "ring_size", c->ring_size);
	vbd_mon_jadd_u64(o, "peer_ring_size", c->peer_ring);
	/* Direct mode: the listener's URL only if it sent one. */
	if (c->direct_url[0]) {
		char url[sizeof(c->direct_url)];

		vbd_mon_clean_text(url, c->direct_url, sizeof(c->direct_url));
		jadd_str(o, "direct_url", url);
	}
	vbd_mon_jadd_u64(o, "direct_subscriptions", c->direct_subs);
	vbd_mon_jadd_u64(o, "direct_queries", c->direct_queries);
	vbd_mon_jadd_u64(o, "direct_on", c->direct_on);
	vbd_mon_jadd_u64(o, "direct_from", c->direct_from);
	return o;
}

/* The page of /connz being built, one connection at a time. */
struct connz_page {
	uint64_t offset; /* first index to include */
	uint64_t limit; /* most to include */
	uint64_t seen; /* connections seen so far: the total, at the end */
	const char *acc; /* only this account's (?acc=); NULL: all */
	json_object *arr; /* the page */
	time_t now; /* for each connection's uptime */
	bool oom; /* an object could not be built */
};

/* Is @c in account @acc (a valid name)?  NULL @acc: every account. */
static bool conn_in_account(const struct vbd_stats_conn *c, const char *acc)
{
	/* Bounded: the broker's copy may fill the field to the brim. */
	return acc == NULL || strncmp(c->account, acc, sizeof(c->account)) == 0;
}

static void connz_add(void *ctx, const struct vbd_stats_conn *c)
{
	struct connz_page *p = ctx;
	json_object *o;

	/* The totals and the window count the filtered set, as nats-server's
	 * /connz?acc= does. */
	if (!conn_in_account(c, p->acc))
		return;
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

/*
 * A page's ?offset=N&limit=N (/connz, /subsz): true with *@offset and
 * *@limit (defaults kept when absent), or false after a 400 saying which
 * is wrong (limit from 1 to @max).
 */
static bool query_page(struct MHD_Connection *conn, struct reply *r,
		       uint64_t *offset, uint64_t *limit, unsigned max)
{
	char msg[64];

	if (!query_u64(conn, "offset", offset, NULL)) {
		error_reply(r, MHD_HTTP_BAD_REQUEST,
			    "offset must be a decimal integer");
		return false;
	}
	if (!query_u64(conn, "limit", limit, NULL) || *limit == 0 ||
	    *limit > max) {
		snprintf(msg, sizeof(msg),
			 "limit must be an integer from 1 to %u", max);
		error_reply(r, MHD_HTTP_BAD_REQUEST, msg);
		return false;
	}
	return true;
}

/*
 * An account name as verbusd.conf allows it, "$G" and any reserved '$'
 * name included (account.h): 1 to VBD_ACCOUNT_NAME_MAX bytes of
 * [A-Za-z0-9_$-].
 */
static bool account_name_ok(const char *s)
{
	size_t n = strlen(s), i;
	char ch;

	if (n == 0 || n > VBD_ACCOUNT_NAME_MAX)
		return false;
	for (i = 0; i < n; i++) {
		ch = s[i];
		if (!(ch >= 'a' && ch <= 'z') && !(ch >= 'A' && ch <= 'Z') &&
		    !(ch >= '0' && ch <= '9') && ch != '_' && ch != '-' &&
		    ch != '$')
			return false;
	}
	return true;
}

/*
 * ?acc=NAME (/connz, /accountz): true with *@acc (NULL when absent), or
 * false after a 400 if NAME cannot be an account's.
 */
static bool query_acc(struct MHD_Connection *conn, struct reply *r,
		      const char **acc)
{
	*acc = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "acc");
	if (*acc == NULL || account_name_ok(*acc))
		return true;
	error_reply(r, MHD_HTTP_BAD_REQUEST,
		    "acc must be an account name: 1 to 64 letters, digits, "
		    "'_', '-' or '$'");
	return false;
}

/* ?cid=N, with ?acc=NAME: 404 unless that connection is NAME's. */
static void render_one_conn(struct vbd_monitor *m, uint64_t cid,
			    const char *acc, struct reply *r)
{
	struct vbd_stats_conn c;
	char msg[128];

	memset(&c, 0, sizeof(c));
	if (m->src.conn(m->src.arg, cid, &c) != 0 ||
	    !conn_in_account(&c, acc)) {
		snprintf(msg, sizeof(msg), "no connection with cid %llu%s%s",
			 (unsigned long long)cid, acc ? " in account " : "",
			 acc ? acc : "");
		error_reply(r, MHD_HTTP_NOT_FOUND, msg);
		return;
	}
	json_reply(r, MHD_HTTP_OK, conn_json(&c, time(NULL)));
}

/*
 * /connz: ?offset=N&limit=N (default 0 and 1024, limit at most 10000),
 * ?cid=N for one connection, ?acc=NAME for one account's connections.
 */
static void render_connz(struct vbd_monitor *m, struct MHD_Connection *conn,
			 struct reply *r)
{
	struct connz_page p = { .limit = CONNZ_LIMIT_DEFAULT };
	char now[32];
	uint64_t cid;
	bool has_cid;
	json_object *o;

	if (!query_acc(conn, r, &p.acc))
		return;
	if (!query_u64(conn, "cid", &cid, &has_cid)) {
		error_reply(r, MHD_HTTP_BAD_REQUEST,
			    "cid must be a decimal integer");
		return;
	}
	if (has_cid) {
		render_one_conn(m, cid, p.acc, r);
		return;
	}
	if (!query_page(conn, r, &p.offset, &p.limit, CONNZ_LIMIT_MAX))
		return;
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
	vbd_mon_jadd_u64(o, "num_connections", json_object_array_length(p.arr));
	vbd_mon_jadd_u64(o, "total", p.seen);
	vbd_mon_jadd_u64(o, "offset", p.offset);
	vbd_mon_jadd_u64(o, "limit", p.limit);
	json_object_object_add(o, "connections", p.arr);
	json_reply(r, MHD_HTTP_OK, o);
	return;
out_oom:
	json_object_put(p.arr);
	json_object_put(o);
	json_reply(r, MHD_HTTP_OK, NULL);
}

/*
 * /subsz: ?offset=N&limit=N (default 0 and 1024, limit at most 4096),
 * ?test=SUBJECT for the subscriptions a message on SUBJECT would reach.
 * nats-server's subs=1 (the list rather than the totals alone) is
 * accepted and changes nothing: the list is always there.
 */
static void render_subsz(struct vbd_monitor *m, struct MHD_Connection *conn,
			 struct reply *r)
{
	struct vbd_subsz_query q = { .limit = SUBSZ_LIMIT_DEFAULT };
	struct vbd_stats_server s;
	char now[32];

	q.test = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND,
					     "test");
	if (!query_page(conn, r, &q.offset, &q.limit, SUBSZ_LIMIT_MAX))
		return;
	if (q.test && vbi_subject_check(q.test, strlen(q.test)) != VB_OK) {
		error_reply(r, MHD_HTTP_BAD_REQUEST,
			    "test must be a subject a message may be published "
			    "on: no wildcards, no empty tokens");
		return;
	}
	memset(&s, 0, sizeof(s));
	m->src.server(m->src.arg, &s);
	fmt_time(now, sizeof(now), (int64_t)time(NULL));
	json_reply(r, MHD_HTTP_OK, vbd_subsz_json(&m->src, &s, &q, now));
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
	vbd_mon_jadd_u64(o, "cid", r->cid);
	jadd_str(o, "peer", r->peer);
	jadd_str(o, "start", start);
	jadd_str(o, "uptime", up);
	vbd_mon_jadd_u64(o, "msgs_in", r->msgs_in);
	vbd_mon_jadd_u64(o, "bytes_in", r->bytes_in);
	vbd_mon_jadd_u64(o, "msgs_out", r->msgs_out);
	vbd_mon_jadd_u64(o, "bytes_out", r->bytes_out);
	vbd_mon_jadd_u64(o, "interest_in", r->interest_in);
	vbd_mon_jadd_u64(o, "interest_queued", r->interest_queued);
	vbd_mon_jadd_u64(o, "connects", r->connects);
	vbd_mon_jadd_u64(o, "failures", r->failures);
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
		open += vbd_mon_route_open(&l.v[i]);
	}
	fmt_time(nowbuf, sizeof(nowbuf), (int64_t)now);
	jadd_str(o, "server_id", c.id);
	jadd_str(o, "cluster", c.name);
	jadd_str(o, "now", nowbuf);
	vbd_mon_jadd_u64(o, "num_routes", open);
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
 * /accountz: {"server_name", "now", "accounts": [...]}, every account in
 * the broker's order (the global one, "$G", first); ?acc=NAME: only that
 * one, 404 if there is none.
 */
static void render_accountz(struct vbd_monitor *m, struct MHD_Connection *conn,
			    struct reply *r)
{
	struct vbd_stats_server s;
	char now[32], msg[128];
	const char *acc;
	json_object *o, *arr;

	if (!query_acc(conn, r, &acc))
		return;
	arr = vbd_accountz_json(&m->src, acc);
	if (arr == NULL) {
		json_reply(r, MHD_HTTP_OK, NULL);
		return;
	}
	if (acc != NULL && json_object_array_length(arr) == 0) {
		json_object_put(arr);
		snprintf(msg, sizeof(msg), "no account named %s", acc);
		error_reply(r, MHD_HTTP_NOT_FOUND, msg);
		return;
	}
	o = json_object_new_object();
	if (o == NULL) {
		json_object_put(arr);
		json_reply(r, MHD_HTTP_OK, NULL);
		return;
	}
	/* Not snap_server(): the process's memory is not needed here. */
	memset(&s, 0, sizeof(s));
	m->src.server(m->src.arg, &s);
	fmt_time(now, sizeof(now), (int64_t)time(NULL));
	jadd_str(o, "server_name", s.server_name ? s.server_name : "");
	jadd_str(o, "now", now);
	json_object_object_add(o, "accounts", arr);
	json_reply(r, MHD_HTTP_OK, o);
}

/*
 * The failed checks of @h beside the status (health.h): which ones, the
 * first one's sentence, and the numbers they were judged on.  False: out
 * of memory.
 */
static bool health_failed_json(json_object *o, const struct vbd_health *h,
			       const struct vbd_stats_server *s)
{
	json_object *arr = json_object_new_array();
	unsigned i;

	if (arr == NULL)
		return false;
	for (i = 0; i < h->nfailed; i++)
		if (json_object_array_add(
			    arr, json_object_new_string(h->failed[i])) != 0) {
			json_object_put(arr);
			return false;
		}
	jadd_str(o, "status", "unavailable");
	vbd_mon_jadd_u64(o, "status_code", MHD_HTTP_SERVICE_UNAVAILABLE);
	jadd_str(o, "error", h->error);
	json_object_object_add(o, "failed", arr);
	jadd_bool(o, "listening", s->listening);
	jadd_bool(o, "draining", s->draining);
	vbd_mon_jadd_u64(o, "tick_age_ms", s->tick_age_ms);
	vbd_mon_jadd_u64(o, "loop_away_ms", s->loop_away_ms);
	vbd_mon_jadd_u64(o, "loop_back_ms", s->loop_back_ms);
	return true;
}

/*
 * {"status":"ok"} (200) while the broker accepts and routes; else 503 with
 * {"status":"unavailable", "error", "failed": [the checks], ...}
 * (health.h).  When clustered a "cluster" object is beside it, which is
 * no check: clients are served without ZooKeeper, so its loss is
 * reported here, not made a failed check.
 */
static void render_healthz(struct vbd_monitor *m, struct MHD_Connection *conn,
			   struct reply *r)
{
	json_object *o = json_object_new_object(), *co;
	struct vbd_stats_cluster c;
	struct vbd_stats_server s;
	struct vbd_health h;

	(void)conn;
	/* Not snap_server(): the process's memory is not needed here. */
	memset(&s, 0, sizeof(s));
	m->src.server(m->src.arg, &s);
	vbd_health_check(&s, &h);
	if (o == NULL)
		goto out;
	if (h.ok)
		jadd_str(o, "status", "ok");
	else if (!health_failed_json(o, &h, &s))
		goto out_oom;
	snap_cluster(m, &c);
	if (!c.enabled)
		goto out;
	co = json_object_new_object();
	if (co == NULL)
		goto out_oom;
	jadd_str(co, "zookeeper",
		 c.zk_connected ? "connected" : "disconnected");
	jadd_bool(co, "registered", c.registered);
	vbd_mon_jadd_u64(co, "routes", c.routes);
	vbd_mon_jadd_u64(co, "members", c.members);
	json_object_object_add(o, "cluster", co);
out:
	json_reply(r, h.ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, o);
	return;
out_oom:
	json_object_put(o);
	json_reply(r, MHD_HTTP_OK, NULL);
}

/* ---- libmicrohttpd glue ------------------------------------------------ */

/* A path and the function that answers it. */
struct endpoint {
	const char *path; /* exact, without the query */
	void (*render)(struct vbd_monitor *m, struct MHD_Connection *conn,
		       struct reply *r); /* fills *r */
};

static const struct endpoint endpoints[] = {
	{ "/metrics", render_metrics },	  { "/varz", render_varz },
	{ "/connz", render_connz },	  { "/routez", render_routez },
	{ "/healthz", render_healthz },	  { "/subsz", render_subsz },
	{ "/accountz", render_accountz },
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
