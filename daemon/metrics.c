/*
 * metrics.c - the monitor's /metrics: the Prometheus text exposition
 * (version 0.0.4) of the broker's counters, the cluster's and its routes'
 * (when clustered), each connection's and each account's (when the source
 * has accounts), from the snapshots monitor.c takes (monitor_int.h).
 */
#include "daemon/monitor_int.h"

#include <verbus/verbus.h>

#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/*
 * Per-route Prometheus series are written for at most this many routes (the
 * first by peer id).  There is one route per cluster member, so this only
 * keeps a member list gone wild from swamping every scrape; /routez lists
 * them all.
 */
#define ROUTE_METRICS_MAX 256u

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
		{ "verbus_event_loop_late_total", "counter",
		  "Times the event loop ran again after more than 500 ms away "
		  "(the host or VM paused the broker); stall timers skip it.",
		  s->loop_late },
		{ "verbus_event_loop_late_ms_total", "counter",
		  "Milliseconds the event loop was away, in all, those times.",
		  s->loop_late_ms },
		{ "verbus_credit_waits_total", "counter",
		  "Sends that waited for credit.", s->credit_waits },
		{ "verbus_no_interest_total", "counter",
		  "Published messages no subscription matched.",
		  s->no_interest },
		{ "verbus_no_responders_total", "counter",
		  "Of those, messages with a reply subject: the publisher was "
		  "told no responders.",
		  s->no_responders },
		{ "verbus_bad_headers_total", "counter",
		  "Messages with a malformed header block (the publisher was "
		  "dropped).",
		  s->bad_headers },
		{ "verbus_large_msgs_total", "counter",
		  "Large messages (streams of chunks) begun.", s->large_in },
		{ "verbus_large_aborted_total", "counter",
		  "Large messages that ended before their last chunk "
		  "(publisher gone or stalled; recipients told).",
		  s->large_aborted },
		{ "verbus_bad_chunks_total", "counter",
		  "Clients dropped for a chunk that broke its stream.",
		  s->bad_chunks },
		{ "verbus_large_active", "gauge",
		  "Large messages under way now.", s->large_active },
		{ "verbus_auth_failures_total", "counter",
		  "Clients turned away for their credentials.",
		  s->auth_failures },
		{ "verbus_denied_publish_total", "counter",
		  "Published messages refused by permissions.",
		  s->denied_publish },
		{ "verbus_denied_subscribe_total", "counter",
		  "Subscriptions refused by permissions.",
		  s->denied_subscribe },
		{ "verbus_reloads_total", "counter",
		  "Configuration reloads applied (SIGHUP).", s->reloads },
		{ "verbus_reload_failures_total", "counter",
		  "Configuration reloads refused for an error.",
		  s->reload_failures },
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
		{ "verbus_direct_queries_total", "counter",
		  "Direct publishers' DirectQuery messages answered.",
		  s->direct_queries },
		{ "verbus_direct_queries_full_total", "counter",
		  "Of those, answered with no paths: the publisher had asked "
		  "about the most subjects it may.",
		  s->direct_queries_full },
		{ "verbus_direct_paths_granted_total", "counter",
		  "Direct paths (a subscriber and its grants) in the answers.",
		  s->direct_paths_granted },
		{ "verbus_direct_switches_ignored_total", "counter",
		  "DirectSwitch messages ignored (no such direct subscriber, "
		  "or already in that state).",
		  s->direct_switch_ignored },
		{ "verbus_direct_stale_total", "counter",
		  "DirectStale messages sent to direct publishers.",
		  s->direct_stale },
		{ "verbus_direct_revokes_total", "counter",
		  "DirectRevoke messages sent to direct subscribers.",
		  s->direct_revokes },
		{ "verbus_direct_resends_total", "counter",
		  "Messages of failed direct connections delivered again "
		  "through the broker (RESEND frames).",
		  s->direct_resends },
		{ "verbus_direct_resends_dropped_total", "counter",
		  "RESEND frames dropped: their subscriber or subscription "
		  "gone, or not announced by a DirectSwitch off.",
		  s->direct_resends_dropped },
		{ "verbus_direct_listeners", "gauge",
		  "Connections that sent a DirectListen, now.",
		  s->direct_listeners },
		{ "verbus_direct_paths_open", "gauge",
		  "Publishers switched to direct to a subscriber, pairs now.",
		  s->direct_paths_open },
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
	put_family(f, "verbus_direct_switches_total", "counter",
		   "DirectSwitch messages applied, by the state switched to "
		   "(failed: off for a failed direct connection).");
	fprintf(f, "verbus_direct_switches_total{state=\"on\"} %llu\n",
		(unsigned long long)s->direct_switch_on);
	fprintf(f, "verbus_direct_switches_total{state=\"off\"} %llu\n",
		(unsigned long long)s->direct_switch_off);
	fprintf(f, "verbus_direct_switches_total{state=\"failed\"} %llu\n",
		(unsigned long long)s->direct_switch_failed);
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
		{ "verbus_route_drops_total", "counter",
		  "Deliveries to routes lost here (a shed or closed route).",
		  c->route_drops },
		{ "verbus_route_drops_reported_total", "counter",
		  "Of those, reported to the peer in Dropped messages.",
		  c->route_drops_reported },
		{ "verbus_route_drops_unreported_total", "counter",
		  "Of those, lost with no route left to report them on.",
		  c->route_drops_unreported },
		{ "verbus_route_drops_in_total", "counter",
		  "Messages peers reported lost on their way here.",
		  c->route_drops_in },
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

/* The uint64_t field at @off of the struct at @base. */
static uint64_t u64_field(const void *base, size_t off)
{
	uint64_t v;

	memcpy(&v, (const char *)base + off, sizeof(v));
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
					 vbd_mon_route_open(&l->v[i]));
	for (j = 0; j < sizeof(route_metrics) / sizeof(route_metrics[0]); j++) {
		rm = &route_metrics[j];
		put_family(f, rm->name, rm->type, rm->help);
		for (i = 0, shown = 0; i < l->n; i++) {
			if (!route_has_series(l, i, &shown))
				continue;
			r = &l->v[i].r;
			if (rm->off_out == NO_DIRECTION) {
				put_route_sample(f, rm->name, r->peer_id, NULL,
						 u64_field(r, rm->off));
				continue;
			}
			put_route_sample(f, rm->name, r->peer_id, "in",
					 u64_field(r, rm->off));
			put_route_sample(f, rm->name, r->peer_id, "out",
					 u64_field(r, rm->off_out));
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
			vbd_mon_clean_text(name, l->v[j].name, sizeof(name));
			fprintf(f, "%s{cid=\"%llu\",name=\"", cm->name,
				(unsigned long long)l->v[j].cid);
			put_label(f, name);
			fprintf(f, "\"} %llu\n",
				(unsigned long long)conn_field(&l->v[j], cm));
		}
	}
}

/* A per-account metric: a uint64_t field of struct vbd_stats_account. */
struct acct_metric {
	const char *name; /* verbus_account_... */
	const char *type; /* "counter" or "gauge" */
	const char *help; /* one sentence */
	size_t off; /* the field */
};

#define ACCT_FIELD(field) offsetof(struct vbd_stats_account, field)

static const struct acct_metric acct_metrics[] = {
	{ "verbus_account_connections", "gauge",
	  "Client connections of the account open now.", ACCT_FIELD(conns) },
	{ "verbus_account_subscriptions", "gauge",
	  "Subscriptions of the account's connections now.", ACCT_FIELD(subs) },
	{ "verbus_account_memory_bytes", "gauge",
	  "Memory the broker registered for the account's connections now.",
	  ACCT_FIELD(memory) },
	{ "verbus_account_messages_in_total", "counter",
	  "Messages the account's clients published.", ACCT_FIELD(msgs_in) },
	{ "verbus_account_messages_out_total", "counter",
	  "Messages delivered to the account's clients.",
	  ACCT_FIELD(msgs_out) },
	{ "verbus_account_bytes_in_total", "counter",
	  "Bytes the account's clients published.", ACCT_FIELD(bytes_in) },
	{ "verbus_account_bytes_out_total", "counter",
	  "Bytes delivered to the account's clients.", ACCT_FIELD(bytes_out) },
	{ "verbus_account_conns_refused_total", "counter",
	  "Client connections refused by the account's limits.",
	  ACCT_FIELD(conns_refused) },
	{ "verbus_account_subs_refused_total", "counter",
	  "Subscriptions refused by the account's max_subs.",
	  ACCT_FIELD(subs_refused) },
};

/*
 * Each family once, one sample per account labelled account="NAME".  The
 * names are unique (the configuration refuses a repeated one) and plain
 * ASCII, so unlike peer ids they need no guard against two alike.
 */
static void put_account_metrics(FILE *f, const struct acct_list *l)
{
	const struct acct_metric *am;
	size_t i, j;

	for (i = 0; i < sizeof(acct_metrics) / sizeof(acct_metrics[0]); i++) {
		am = &acct_metrics[i];
		put_family(f, am->name, am->type, am->help);
		for (j = 0; j < l->n; j++) {
			fprintf(f, "%s{account=\"", am->name);
			put_label(f, l->v[j].name);
			fprintf(f, "\"} %llu\n",
				(unsigned long long)u64_field(&l->v[j].a,
							      am->off));
		}
	}
}

void vbd_metrics_write(FILE *f, const struct vbd_stats_server *s,
		       const struct vbd_stats_cluster *c,
		       const struct route_list *rl, const struct conn_list *l,
		       const struct acct_list *al)
{
	put_server_metrics(f, s);
	if (c->enabled) {
		put_cluster_metrics(f, c);
		put_route_metrics(f, rl);
	}
	put_conn_metrics(f, l);
	if (al != NULL)
		put_account_metrics(f, al);
}
