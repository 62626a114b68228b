/*
 * cmd_stat.c - `verbus stat`: the broker's counters, read from its HTTP
 * monitoring endpoint (verbusd --monitor: GET /varz, and /connz for
 * --conns, /routez for --routes), printed as a table or passed through as
 * JSON.
 *
 * The endpoint, not an RDMA connection, is the source: it is what
 * operators already scrape, it works when the broker refuses clients
 * (limits, a wedged device), and asking it changes no counter.  libcurl
 * fetches, json-c parses; a key the broker does not send shows as "-", so
 * an older or newer broker still prints.
 */
#include "cli/common.h"

#include <curl/curl.h>
#include <json-c/json.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define STAT_TIMEOUT_MS 5000
/* The largest answer read: /connz of 10,000 connections is ~4 MB. */
#define BODY_MAX (32u << 20)

enum {
	OPT_CONNS = CLI_OPT_FIRST_OWN,
	OPT_ROUTES,
};

/* One run of the command. */
struct statcmd {
	struct cli_cmd cmd; /* -s, --source (the rest is not used) */
	const char *monitor; /* -m, or NULL: derived from -s */
	char base[320]; /* the endpoint's base URL */
	enum cli_format fmt; /* table or json */
	bool conns; /* --conns */
	bool routes; /* --routes */
	int timeout_ms; /* --timeout */
};

/* An answer being read. */
struct body {
	char *p; /* malloc()ed, NUL-terminated */
	size_t len; /* bytes in @p */
	bool too_big; /* more than BODY_MAX came */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: verbus stat [options]\n"
		"\n"
		"Show the broker's counters (connections, subscriptions, "
		"messages and bytes\nin and out, drops, credit waits, ...) from "
		"its HTTP monitoring endpoint\n(verbusd --monitor, /varz).\n"
		"\n"
		"  -m, --monitor URL     the endpoint, http://HOST[:PORT] "
		"[http://HOST:8222,\n"
		"                        HOST from --server's first; "
		"verbusd listens\n"
		"                        on 127.0.0.1 unless told otherwise]\n"
		"      --conns           list the connections too (/connz)\n"
		"      --routes          list a clustered broker's routes too\n"
		"                        (/routez)\n"
		"  -f, --format FMT      table or json (the endpoint's own "
		"JSON) [table]\n"
		"  -t, --timeout MS      give up after MS [5s]\n"
		"  -s, --server URL[,URL...]  the broker, [rdma://]HOST[:PORT] "
		"(of a\n"
		"                        list, the first) [$VERBUS_URL, else\n"
		"                        " VB_DEFAULT_URL "]\n"
		"      --source ADDR     local address to connect from\n"
		"  -h, --help            this text\n");
}

static size_t on_data(char *data, size_t size, size_t nmemb, void *arg)
{
	struct body *b = arg;
	size_t n = size * nmemb;
	char *p;

	if (b->len + n > BODY_MAX) {
		b->too_big = true;
		return 0;
	}
	p = realloc(b->p, b->len + n + 1);
	if (p == NULL)
		return 0;
	memcpy(p + b->len, data, n);
	b->len += n;
	p[b->len] = '\0';
	b->p = p;
	return n;
}

/* GET @path from the endpoint; the parsed JSON, or NULL after saying
 * why.  *@raw (if not NULL) gets the body as it came. */
static json_object *fetch(struct statcmd *s, const char *path, char **raw)
{
	char url[400], errbuf[CURL_ERROR_SIZE] = "", iface[300];
	struct body b = { 0 };
	json_object *j = NULL;
	enum json_tokener_error jerr;
	long status = 0;
	CURLcode rc;
	CURL *h;

	snprintf(url, sizeof(url), "%s%s", s->base, path);
	h = curl_easy_init();
	if (h == NULL) {
		cli_error(&s->cmd, "libcurl could not start");
		return NULL;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)s->timeout_ms);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "verbus-stat");
	if (s->cmd.source) {
		snprintf(iface, sizeof(iface), "host!%s", s->cmd.source);
		curl_easy_setopt(h, CURLOPT_INTERFACE, iface);
	}
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	if (rc != CURLE_OK) {
		cli_error(&s->cmd, "cannot read %s: %s%s", url,
			  b.too_big ? "the answer is too large" :
			  *errbuf   ? errbuf :
				      curl_easy_strerror(rc),
			  rc == CURLE_COULDNT_CONNECT ?
				  " (is verbusd's monitor listening there? "
				  "-m URL names it)" :
				  "");
		goto out;
	}
	if (status != 200) {
		cli_error(&s->cmd, "%s answered HTTP %ld", url, status);
		goto out;
	}
	j = json_tokener_parse_verbose(b.p ? b.p : "", &jerr);
	if (j == NULL || !json_object_is_type(j, json_type_object)) {
		cli_error(&s->cmd, "%s did not answer a JSON object%s%s", url,
			  j ? "" : ": ",
			  j ? "" : json_tokener_error_desc(jerr));
		json_object_put(j);
		j = NULL;
		goto out;
	}
	if (raw) {
		*raw = b.p;
		b.p = NULL;
	}
out:
	free(b.p);
	return j;
}

/* A member's value as text ("-" if missing); @bytes adds "(1.5 MiB)". */
static void value_of(json_object *o, const char *key, bool bytes, char *buf,
		     size_t len)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB" };
	json_object *v;
	uint64_t n;
	double x;
	int u;

	if (!json_object_object_get_ex(o, key, &v) || v == NULL) {
		snprintf(buf, len, "-");
		return;
	}
	if (!json_object_is_type(v, json_type_int)) {
		snprintf(buf, len, "%s", json_object_get_string(v));
		return;
	}
	n = json_object_get_uint64(v);
	if (!bytes || n < 1024) {
		snprintf(buf, len, "%" PRIu64, n);
		return;
	}
	x = (double)n / 1024;
	for (u = 0; x >= 1024 && u < 3; u++)
		x /= 1024;
	snprintf(buf, len, "%" PRIu64 " (%.1f %s)", n, x, units[u]);
}

/* A row of the counters' table. */
struct counter {
	const char *key; /* in /varz */
	const char *label; /* shown */
	bool bytes; /* add a human-readable size */
};

static const struct counter counters[] = {
	{ "connections", "connections", false },
	{ "total_connections", "connections accepted", false },
	{ "rejected_connections", "connections refused", false },
	{ "handshakes", "connections in handshake", false },
	{ "handshake_timeouts", "handshake timeouts", false },
	{ "subscriptions", "subscriptions", false },
	{ "in_msgs", "messages in", false },
	{ "in_bytes", "bytes in", true },
	{ "out_msgs", "messages out", false },
	{ "out_bytes", "bytes out", true },
	{ "no_interest", "messages nobody wanted", false },
	{ "no_responders", "requests told no responders", false },
	{ "bad_headers", "malformed header blocks", false },
	{ "drops", "deliveries dropped", false },
	{ "forward_failures", "deliveries failed", false },
	{ "slow_consumers", "slow consumers", false },
	{ "slow_disconnects", "slow disconnects", false },
	{ "credit_waits", "credit waits", false },
	{ "payload_copy_bytes", "payload bytes copied", true },
	{ "zero_copy_bytes", "bytes sent zero-copy", true },
	{ "mem_registered", "registered memory", true },
	{ "max_connections", "limit: connections", false },
	{ "max_subscriptions", "limit: subscriptions/conn", false },
	{ "max_payload", "limit: message size", true },
	{ "ring_size", "ring per connection", true },
};

/* The rows of /varz's "cluster" object (absent: not clustered). */
static const struct counter cluster_counters[] = {
	{ "members", "cluster: members", false },
	{ "routes", "cluster: routes open", false },
	{ "interest_local", "cluster: interest out", false },
	{ "interest_remote", "cluster: interest in", false },
	{ "route_msgs_out", "cluster: messages out", false },
	{ "route_msgs_in", "cluster: messages in", false },
	{ "route_connect_failures", "cluster: route failures", false },
	{ "routes_refused", "cluster: routes refused", false },
	{ "route_errors", "cluster: routes dropped", false },
	{ "route_drops", "cluster: deliveries lost", false },
	{ "route_drops_in", "cluster: lost, peers said", false },
	{ "zk_expiries", "cluster: sessions expired", false },
};

static void print_cluster(json_object *v)
{
	json_object *c, *zk;
	char name[96], id[96], val[96];
	size_t i;

	if (!json_object_object_get_ex(v, "cluster", &c) ||
	    !json_object_is_type(c, json_type_object))
		return;
	value_of(c, "name", false, name, sizeof(name));
	value_of(c, "id", false, id, sizeof(id));
	printf("%-26s %s, this broker %s, ZooKeeper %s\n", "cluster", name, id,
	       json_object_object_get_ex(c, "zk_connected", &zk) &&
			       json_object_get_boolean(zk) ?
		       "connected" :
		       "DISCONNECTED");
	for (i = 0; i < sizeof(cluster_counters) / sizeof(cluster_counters[0]);
	     i++) {
		value_of(c, cluster_counters[i].key, false, val, sizeof(val));
		printf("%-26s %s\n", cluster_counters[i].label, val);
	}
}

/* /routez as a table: one route per line. */
static void print_routez(json_object *r)
{
	static const char *const cols[] = { "msgs_out", "msgs_in",
					    "interest_in", "failures" };
	json_object *arr, *o;
	char v[192];
	size_t i, k, n;

	if (!json_object_object_get_ex(r, "routes", &arr) ||
	    !json_object_is_type(arr, json_type_array) ||
	    json_object_array_length(arr) == 0) {
		printf("\nroutes: none\n");
		return;
	}
	n = json_object_array_length(arr);
	printf("\nroutes (%zu)\n", n);
	printf("%-16s %-10s %-28s %10s %10s %9s %8s  %s\n", "peer", "state",
	       "url", "msgs out", "msgs in", "interest", "failures",
	       "last error");
	for (i = 0; i < n; i++) {
		o = json_object_array_get_idx(arr, i);
		value_of(o, "peer_id", false, v, sizeof(v));
		printf("%-16.16s", v);
		value_of(o, "state", false, v, sizeof(v));
		printf(" %-10.10s", v);
		value_of(o, "url", false, v, sizeof(v));
		printf(" %-28.28s", v);
		for (k = 0; k < sizeof(cols) / sizeof(cols[0]); k++) {
			static const int width[] = { 10, 10, 9, 8 };

			value_of(o, cols[k], false, v, sizeof(v));
			printf(" %*s", width[k], v);
		}
		value_of(o, "last_error", false, v, sizeof(v));
		printf("  %s\n", v);
	}
}

static void print_varz(json_object *v)
{
	char name[128], ver[64], listen[128], up[64], val[96];
	size_t i;

	value_of(v, "server_name", false, name, sizeof(name));
	value_of(v, "version", false, ver, sizeof(ver));
	value_of(v, "listen", false, listen, sizeof(listen));
	value_of(v, "uptime", false, up, sizeof(up));
	printf("%-26s %s %s on %s, up %s\n", "broker", name, ver, listen, up);
	for (i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
		value_of(v, counters[i].key, counters[i].bytes, val,
			 sizeof(val));
		printf("%-26s %s\n", counters[i].label, val);
	}
	print_cluster(v);
}

static void print_connz(json_object *c)
{
	static const char *const cols[] = { "subscriptions", "in_msgs",
					    "in_bytes",	     "out_msgs",
					    "out_bytes",     "drops",
					    "credit_waits",  "pending" };
	json_object *arr, *o;
	char v[96], total[32];
	size_t i, k, n;

	value_of(c, "total", false, total, sizeof(total));
	if (!json_object_object_get_ex(c, "connections", &arr) ||
	    !json_object_is_type(arr, json_type_array)) {
		printf("\nconnections: none listed\n");
		return;
	}
	n = json_object_array_length(arr);
	printf("\nconnections (%zu of %s)\n", n, total);
	printf("%6s %-16s %-22s %5s %10s %12s %10s %12s %6s %7s %7s\n", "cid",
	       "name", "peer", "subs", "msgs in", "bytes in", "msgs out",
	       "bytes out", "drops", "waits", "pending");
	for (i = 0; i < n; i++) {
		o = json_object_array_get_idx(arr, i);
		value_of(o, "cid", false, v, sizeof(v));
		printf("%6s", v);
		value_of(o, "name", false, v, sizeof(v));
		printf(" %-16.16s", v);
		value_of(o, "peer", false, v, sizeof(v));
		printf(" %-22.22s", v);
		for (k = 0; k < sizeof(cols) / sizeof(cols[0]); k++) {
			static const int width[] = {
				5, 10, 12, 10, 12, 6, 7, 7
			};

			value_of(o, cols[k], false, v, sizeof(v));
			printf(" %*s", width[k], v);
		}
		putchar('\n');
	}
}

static int parse(struct statcmd *s, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "monitor", required_argument, NULL, 'm' },
		{ "conns", no_argument, NULL, OPT_CONNS },
		{ "routes", no_argument, NULL, OPT_ROUTES },
		{ "format", required_argument, NULL, 'f' },
		{ "timeout", required_argument, NULL, 't' },
		{ "server", required_argument, NULL, 's' },
		{ "source", required_argument, NULL, CLI_OPT_SOURCE },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char err[160];
	int opt, rc;

	while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORTOPTS "m:f:t:",
				  longopts, NULL)) != -1) {
		rc = cli_common_option(&s->cmd, opt, argv);
		if (rc == 1)
			continue;
		if (rc)
			return rc;
		switch (opt) {
		case 'm':
			s->monitor = optarg;
			break;
		case OPT_CONNS:
			s->conns = true;
			break;
		case OPT_ROUTES:
			s->routes = true;
			break;
		case 'f':
			if (cli_parse_format(optarg, &s->fmt) ||
			    s->fmt == CLI_FMT_CSV)
				return cli_bad_value(&s->cmd, "--format",
						     optarg, "table or json");
			break;
		case 't':
			if (cli_parse_ms(optarg, 1, &s->timeout_ms))
				return cli_bad_value(&s->cmd, "--timeout",
						     optarg,
						     "a duration such as 500, "
						     "500ms or 5s");
			break;
		}
	}
	if (optind < argc)
		return cli_usage_error(&s->cmd, "unexpected argument '%s'",
				       argv[optind]);
	rc = cli_finish_options(&s->cmd);
	if (rc)
		return rc;
	if (cli_monitor_url(s->monitor, &s->cmd.server, s->base,
			    sizeof(s->base), err, sizeof(err)))
		return cli_usage_error(&s->cmd, "bad monitor URL '%s': %s",
				       s->monitor, err);
	return 0;
}

static int run(struct statcmd *s)
{
	json_object *varz, *connz = NULL, *routez = NULL, *both;
	char *raw = NULL;
	int status = CLI_EXIT_FAIL;

	varz = fetch(s, "/varz", &raw);
	if (varz == NULL)
		return CLI_EXIT_FAIL;
	if (s->conns) {
		connz = fetch(s, "/connz", NULL);
		if (connz == NULL)
			goto out;
	}
	if (s->routes) {
		routez = fetch(s, "/routez", NULL);
		if (routez == NULL)
			goto out;
	}
	if (s->fmt == CLI_FMT_TABLE) {
		print_varz(varz);
		if (connz)
			print_connz(connz);
		if (routez)
			print_routez(routez);
	} else if (connz == NULL && routez == NULL) {
		fputs(raw, stdout);
		if (*raw && raw[strlen(raw) - 1] != '\n')
			putchar('\n');
	} else {
		both = json_object_new_object();
		if (both == NULL)
			goto out;
		json_object_object_add(both, "varz", json_object_get(varz));
		if (connz)
			json_object_object_add(both, "connz",
					       json_object_get(connz));
		if (routez)
			json_object_object_add(both, "routez",
					       json_object_get(routez));
		puts(json_object_to_json_string_ext(both,
						    JSON_C_TO_STRING_PRETTY));
		json_object_put(both);
	}
	status = CLI_EXIT_OK;
out:
	json_object_put(routez);
	json_object_put(connz);
	json_object_put(varz);
	free(raw);
	return status;
}

int cli_cmd_stat(int argc, char **argv)
{
	struct statcmd s = { .timeout_ms = STAT_TIMEOUT_MS };
	int rc;

	cli_cmd_init(&s.cmd, "stat", usage, NULL);
	rc = parse(&s, argc, argv);
	if (rc)
		return rc < 0 ? CLI_EXIT_OK : rc;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		cli_error(&s.cmd, "libcurl could not start");
		return CLI_EXIT_FAIL;
	}
	rc = run(&s);
	curl_global_cleanup();
	return rc;
}
