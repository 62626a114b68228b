/*
 * Unit tests for the HTTP monitoring endpoint (daemon/monitor.c).
 *
 * The monitor runs on the caller's thread, so the test is both sides: a
 * non-blocking client socket and the monitor's descriptor are polled
 * together, and vbd_monitor_run() is called on every turn of the loop.
 */
#include "daemon/account.h"
#include "daemon/monitor.h"
#include "daemon/stats.h"

#include "core/subject.h"

#include <verbus/verbus.h>

#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

/* ---- a fake broker ----------------------------------------------------- */

static const struct vbd_stats_conn fake_conns[] = {
	{ .cid = 1,
	  .name = "alpha",
	  .peer = "10.0.0.2:40001",
	  .start_time = 1700000100,
	  .subs = 2,
	  .msgs_in = 10,
	  .bytes_in = 1000,
	  .msgs_out = 11,
	  .bytes_out = 1100,
	  .credit_waits = 1,
	  .ring_size = 1u << 20,
	  .peer_ring = 1u << 20,
	  .account = "orders" },
	/* Quote and backslash: escaped in labels and in JSON. */
	{ .cid = 5,
	  .name = "we\"ird\\name",
	  .peer = "10.0.0.3:40002",
	  .transport = "tcp",
	  .start_time = 1700000200,
	  .subs = 1,
	  .msgs_in = 20,
	  .bytes_in = 2000,
	  .drops = 4,
	  .pending = 17,
	  .ring_size = 1u << 16,
	  .peer_ring = 1u << 18,
	  .account = "$G" },
	/* UTF-8, a newline and a byte that is not UTF-8 at all. */
	{ .cid = 9,
	  .name = "caf\xc3\xa9\n\xff",
	  .peer = "10.0.0.4:40003",
	  .start_time = 1700000300,
	  .msgs_in = 30,
	  .bytes_in = 3000,
	  .ring_size = 1u << 20,
	  .peer_ring = 1u << 20,
	  .account = "orders" },
};
#define NCONNS (sizeof(fake_conns) / sizeof(fake_conns[0]))

/*
 * The routes, in no particular order: the monitor sorts them by peer id.
 * The last one's id is filled to the brim, with no terminator, at run time.
 */
static const struct vbd_stats_route fake_routes[] = {
	{ .peer_id = "broker-c",
	  .url = "rdma://10.0.0.12:7701",
	  .state = "open",
	  .outbound = true,
	  .member = true,
	  .cid = 42,
	  .peer = "10.0.0.12:7701",
	  .start_time = 1700000100,
	  .msgs_in = 5,
	  .bytes_in = 500,
	  .msgs_out = 6,
	  .bytes_out = 600,
	  .interest_in = 7,
	  .interest_queued = 1,
	  .connects = 2,
	  .failures = 1,
	  .last_error = "connection reset by peer" },
	{ .peer_id = "broker-a",
	  .url = "rdma://10.0.0.10:7701",
	  .state = "connecting",
	  .member = true,
	  .failures = 3,
	  .last_error = "connection refused" },
	/*
	 * What another broker chose: a quote, a backslash, a newline, a
	 * control character, bytes that are not UTF-8.
	 */
	{ .peer_id = "evil\"\\\n\xff",
	  .state = "waiting",
	  .interest_in = 1,
	  .last_error = "bad \"frame\"\\\n\x01\xfe</script>" },
	/* Cleaned, the same id as the one above: one series for the two. */
	{ .peer_id = "evil\"\\\n\xfe",
	  .state = "open",
	  .cid = 50,
	  .peer = "10.0.0.66:1",
	  .start_time = 1700000200,
	  .interest_in = 2 },
	{ .state = "waiting" },
};
#define NROUTES (sizeof(fake_routes) / sizeof(fake_routes[0]))

/*
 * The accounts: the global one, with no definition, and "orders", with
 * limits (max_subs none), a stream exported to two accounts, a service
 * exported to any, and an import.  Every number differs from the others,
 * so that a field written under another's key shows.
 */
static char ord_stream[] = "orders.shipped.>", ord_service[] = "orders.status";
static char ord_billing[] = "billing", ord_shipping[] = "shipping";
static char *ord_stream_to[] = { ord_billing, ord_shipping };
static struct vbd_export ord_exports[] = {
	{ .kind = VBD_STREAM,
	  .pattern = ord_stream,
	  .accounts = ord_stream_to,
	  .naccounts = 2 },
	{ .kind = VBD_SERVICE,
	  .pattern = ord_service,
	  .responses = 3,
	  .response_ms = 45000 },
};
static char ord_import[] = "billing.events.>";
static struct vbd_import ord_imports[] = {
	{ .kind = VBD_STREAM, .pattern = ord_import, .from = ord_billing },
};
static const struct vbd_acct_def ord_def = {
	.name = "orders",
	.exports = ord_exports,
	.nexports = 2,
	.imports = ord_imports,
	.nimports = 1,
	.max_conns = 100,
	.max_memory = 64u << 20,
};
static const struct vbd_stats_account fake_accounts[] = {
	{ .name = "$G",
	  .conns = 1,
	  .subs = 1,
	  .memory = 327680,
	  .msgs_in = 20,
	  .bytes_in = 2000,
	  .msgs_out = 7,
	  .bytes_out = 700,
	  .conns_refused = 0,
	  .subs_refused = 0 },
	{ .name = "orders",
	  .def = &ord_def,
	  .conns = 2,
	  .subs = 2,
	  .memory = 4194304,
	  .msgs_in = 40,
	  .bytes_in = 4000,
	  .msgs_out = 11,
	  .bytes_out = 1100,
	  .conns_refused = 5,
	  .subs_refused = 6 },
};
#define NACCOUNTS (sizeof(fake_accounts) / sizeof(fake_accounts[0]))

/* What the fake says about the cluster. */
enum fake_cluster {
	FAKE_NO_CALLBACKS, /* cluster, routes, subs, accounts NULL */
	FAKE_NOT_CLUSTERED, /* the callbacks, and enabled false */
	FAKE_CLUSTERED, /* in a cluster of 4, ZooKeeper down */
};

/* How often the monitor asked: one snapshot per request. */
struct fake {
	int server_calls; /* server() */
	int conns_calls; /* conns() */
	int conn_calls; /* conn() */
	int cluster_calls; /* cluster() */
	int routes_calls; /* routes() */
	int subs_calls; /* subs() */
	int accounts_calls; /* accounts() */
	char subs_test[64]; /* the test subject subs() was given; "-": none */
	/* The broker's health, as server() reports it (listening unless
	 * @not_listening). */
	bool not_listening, draining;
	uint64_t tick_age_ms, loop_away_ms, loop_back_ms;
};

/*
 * The subscriptions, by cid: a queue member with a limit, names and
 * subjects a client chose (a quote, UTF-8, bytes that are not UTF-8).
 */
static const struct vbd_stats_sub fake_subs[] = {
	{ .cid = 1,
	  .name = "alpha",
	  .sid = 1,
	  .subject = "orders.>",
	  .msgs = 10,
	  .dropped = 2 },
	{ .cid = 1,
	  .name = "alpha",
	  .sid = 7,
	  .subject = "orders.eu",
	  .queue = "workers",
	  .msgs = 3,
	  .max = 100 },
	{ .cid = 5,
	  .name = "we\"ird\\name",
	  .sid = 2,
	  .subject = "caf\xc3\xa9.\xff\"x" },
	{ .cid = 9,
	  .name = "caf\xc3\xa9\n\xff",
	  .sid = 3,
	  .subject = "a.b",
	  .queue = "q\xfe" },
};
#define NSUBS (sizeof(fake_subs) / sizeof(fake_subs[0]))

static void fake_server(void *arg, struct vbd_stats_server *s)
{
	struct fake *f = arg;

	f->server_calls++;
	s->version = "0.1.0";
	s->server_name = "test-broker";
	s->listen = "0.0.0.0:7700";
	s->start_time = 1700000000;
	s->uptime_ms = 3723500;
	s->conns = NCONNS;
	s->conns_total = 7;
	s->conns_rejected = 1;
	s->subs = 3;
	s->msgs_in = 1000;
	s->bytes_in = 64000;
	s->msgs_out = 2500;
	s->bytes_out = 160000;
	s->drops = 4;
	s->slow_consumers = 2;
	s->slow_disconnects = 1;
	s->credit_waits = 42;
	s->no_interest = 5;
	s->payload_copies = 123;
	s->mr_registered = 12;
	s->mr_deregistered = 6;
	s->mem_registered = 6291456;
	s->sub_cache = 12;
	s->listening = !f->not_listening;
	s->draining = f->draining;
	s->tick_age_ms = f->tick_age_ms;
	s->loop_away_ms = f->loop_away_ms;
	s->loop_back_ms = f->loop_back_ms;
	s->max_conns = 1024;
	s->max_subs = 65536;
	s->max_msg = 65536;
	s->max_payload = 8u << 20;
	s->ring_size = 1u << 20;
}

static void fake_conns_each(void *arg,
			    void (*fn)(void *ctx,
				       const struct vbd_stats_conn *c),
			    void *ctx)
{
	struct fake *f = arg;
	struct vbd_stats_conn c;
	size_t i;

	f->conns_calls++;
	for (i = 0; i < NCONNS; i++) {
		/* A stack copy: the monitor must not keep the pointer. */
		c = fake_conns[i];
		fn(ctx, &c);
		memset(&c, 0x5a, sizeof(c));
	}
}

static int fake_conn(void *arg, uint64_t cid, struct vbd_stats_conn *c)
{
	struct fake *f = arg;
	size_t i;

	f->conn_calls++;
	for (i = 0; i < NCONNS; i++)
		if (fake_conns[i].cid == cid) {
			*c = fake_conns[i];
			return 0;
		}
	return -1;
}

static void fake_cluster(void *arg, struct vbd_stats_cluster *c)
{
	struct fake *f = arg;

	f->cluster_calls++;
	c->enabled = true;
	snprintf(c->name, sizeof(c->name), "prod");
	snprintf(c->id, sizeof(c->id), "broker-b");
	c->zk_connected = false;
	c->registered = true;
	c->zk_connects = 3;
	c->zk_disconnects = 2;
	c->zk_expiries = 1;
	c->members = 4;
	c->routes = 2;
	c->routes_opened = 9;
	c->route_connect_failures = 4;
	c->routes_refused = 1;
	c->route_errors = 2;
	c->interest_local = 11;
	c->interest_remote = 22;
	c->route_msgs_in = 100;
	c->route_bytes_in = 1000;
	c->route_msgs_out = 200;
	c->route_bytes_out = 2000;
}

/* Not clustered, with junk beside enabled that the monitor must ignore. */
static void fake_no_cluster(void *arg, struct vbd_stats_cluster *c)
{
	struct fake *f = arg;

	f->cluster_calls++;
	memset(c, 0x5a, sizeof(*c));
	c->enabled = false;
}

static void fake_routes_each(void *arg,
			     void (*fn)(void *ctx,
					const struct vbd_stats_route *r),
			     void *ctx)
{
	struct fake *f = arg;
	struct vbd_stats_route r;
	char state[16];
	size_t i;

	f->routes_calls++;
	for (i = 0; i < NROUTES; i++) {
		r = fake_routes[i];
		if (i == NROUTES - 1)
			memset(r.peer_id, 'z', sizeof(r.peer_id));
		/* The state too is gone once fn returns. */
		snprintf(state, sizeof(state), "%s", r.state);
		r.state = state;
		fn(ctx, &r);
		memset(&r, 0x5a, sizeof(r));
		memset(state, 0x5a, sizeof(state));
	}
}

/*
 * The subscriptions; with @test, as the broker does it: those whose
 * pattern matches it (a pattern covering a literal subject matches it).
 * Each given on a stack copy of its strings, gone once fn returns.
 */
static void fake_subs_each(void *arg, const char *test,
			   void (*fn)(void *ctx, const struct vbd_stats_sub *s),
			   void *ctx)
{
	struct fake *f = arg;
	char subject[64], queue[16], name[64];
	struct vbd_stats_sub o;
	size_t i;

	f->subs_calls++;
	snprintf(f->subs_test, sizeof(f->subs_test), "%s", test ? test : "-");
	for (i = 0; i < NSUBS; i++) {
		o = fake_subs[i];
		if (test && !vbi_pattern_covers(o.subject, strlen(o.subject),
						test, strlen(test)))
			continue;
		snprintf(subject, sizeof(subject), "%s", o.subject);
		snprintf(name, sizeof(name), "%s", o.name);
		o.subject = subject;
		o.name = name;
		if (o.queue) {
			snprintf(queue, sizeof(queue), "%s", o.queue);
			o.queue = queue;
		}
		fn(ctx, &o);
		memset(subject, 0x5a, sizeof(subject));
		memset(queue, 0x5a, sizeof(queue));
		memset(name, 0x5a, sizeof(name));
	}
}

/* The accounts, each name on a stack copy gone once fn returns. */
static void fake_accounts_each(void *arg,
			       void (*fn)(void *ctx,
					  const struct vbd_stats_account *a),
			       void *ctx)
{
	struct fake *f = arg;
	struct vbd_stats_account a;
	char name[VBD_ACCOUNT_NAME_MAX + 1];
	size_t i;

	f->accounts_calls++;
	for (i = 0; i < NACCOUNTS; i++) {
		a = fake_accounts[i];
		snprintf(name, sizeof(name), "%s", a.name);
		a.name = name;
		fn(ctx, &a);
		memset(&a, 0x5a, sizeof(a));
		memset(name, 0x5a, sizeof(name));
	}
}

/* The monitor and its fake source, for every test. */
struct fixture {
	struct fake fake; /* the counts */
	struct vbd_stats_source src; /* pointing at @fake */
	struct vbd_monitor *m; /* on 127.0.0.1, an ephemeral port */
};

static int setup_with(void **state, enum fake_cluster mode)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (fx == NULL)
		return -1;
	fx->src.server = fake_server;
	fx->src.conns = fake_conns_each;
	fx->src.conn = fake_conn;
	if (mode != FAKE_NO_CALLBACKS) {
		fx->src.subs = fake_subs_each;
		fx->src.accounts = fake_accounts_each;
	}
	if (mode != FAKE_NO_CALLBACKS) {
		fx->src.cluster =
			mode == FAKE_CLUSTERED ? fake_cluster : fake_no_cluster;
		fx->src.routes = fake_routes_each;
	}
	fx->src.arg = &fx->fake;
	if (vbd_monitor_create("127.0.0.1", 0, &fx->src, &fx->m) != VB_OK) {
		free(fx);
		return -1;
	}
	*state = fx;
	return 0;
}

/* As the monitor's tests always had it: no cluster callbacks at all. */
static int setup(void **state)
{
	return setup_with(state, FAKE_NO_CALLBACKS);
}

static int setup_not_clustered(void **state)
{
	return setup_with(state, FAKE_NOT_CLUSTERED);
}

static int setup_clustered(void **state)
{
	return setup_with(state, FAKE_CLUSTERED);
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	vbd_monitor_destroy(fx->m);
	free(fx);
	return 0;
}

/* ---- a small HTTP client, interleaved with the monitor ----------------- */

#define RESP_MAX (256 * 1024)

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A non-blocking TCP connection to the monitor, connect() under way. */
static int client_connect(struct vbd_monitor *m)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sa.sin_port = htons(vbd_monitor_port(m));
	assert_int_equal(inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr), 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		assert_int_equal(errno, EINPROGRESS);
	return fd;
}

/* Let the monitor work for @ms milliseconds, with no client of our own. */
static void spin(struct vbd_monitor *m, int ms)
{
	int64_t end = now_ms() + ms;
	struct pollfd p;
	int t;

	while (now_ms() < end) {
		p.fd = vbd_monitor_fd(m);
		p.events = POLLIN;
		t = vbd_monitor_timeout(m);
		if (t < 0 || t > 10)
			t = 10;
		assert_true(poll(&p, 1, t) >= 0);
		assert_int_equal(vbd_monitor_run(m), VB_OK);
	}
}

/*
 * Send @method @path (and a small body for anything but GET/HEAD) and read
 * the whole response into @resp until the server closes.  Returns the
 * status; *@body points at the body inside @resp.
 */
static int http_req(struct vbd_monitor *m, const char *method, const char *path,
		    char *resp, size_t resplen, const char **body)
{
	int64_t deadline = now_ms() + 5000;
	bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
	size_t reqlen, sent = 0, got = 0;
	struct pollfd p[2];
	int fd, t, status = 0;
	char req[512], *end;
	ssize_t n;

	reqlen = (size_t)snprintf(req, sizeof(req),
				  "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
				  "Connection: close\r\n%s\r\n%s",
				  method, path,
				  get ? "" : "Content-Length: 5\r\n",
				  get ? "" : "hello");
	assert_true(reqlen < sizeof(req));
	fd = client_connect(m);
	for (;;) {
		assert_true(now_ms() < deadline);
		p[0].fd = fd;
		p[0].events = POLLIN | (sent < reqlen ? POLLOUT : 0);
		p[1].fd = vbd_monitor_fd(m);
		p[1].events = POLLIN;
		t = vbd_monitor_timeout(m);
		if (t < 0 || t > 50)
			t = 50;
		assert_true(poll(p, 2, t) >= 0);
		assert_int_equal(vbd_monitor_run(m), VB_OK);
		if (sent < reqlen && (p[0].revents & POLLOUT)) {
			n = send(fd, req + sent, reqlen - sent, MSG_NOSIGNAL);
			if (n > 0)
				sent += (size_t)n;
		}
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			n = recv(fd, resp + got, resplen - 1 - got, 0);
			if (n == 0)
				break;
			if (n < 0) {
				assert_true(errno == EAGAIN ||
					    errno == ECONNRESET);
				if (errno == ECONNRESET)
					break;
				continue;
			}
			got += (size_t)n;
			assert_true(got < resplen - 1);
		}
	}
	close(fd);
	resp[got] = '\0';
	assert_int_equal(sscanf(resp, "HTTP/1.1 %d ", &status), 1);
	end = strstr(resp, "\r\n\r\n");
	assert_non_null(end);
	*body = end + 4;
	return status;
}

static int http_get(struct vbd_monitor *m, const char *path, char *resp,
		    size_t resplen, const char **body)
{
	return http_req(m, "GET", path, resp, resplen, body);
}

/* True if the response's headers contain @line (as libmicrohttpd spells it). */
static bool has_header(const char *resp, const char *line)
{
	const char *end = strstr(resp, "\r\n\r\n");
	const char *h = strstr(resp, line);

	return h != NULL && h < end;
}

/* GET @path, expect 200 and JSON; returns the parsed object. */
static json_object *get_json(struct vbd_monitor *m, const char *path,
			     int want_status)
{
	char *resp = malloc(RESP_MAX);
	const char *body;
	json_object *o;

	assert_non_null(resp);
	assert_int_equal(http_get(m, path, resp, RESP_MAX, &body), want_status);
	assert_true(has_header(resp, "Content-Type: application/json\r\n"));
	o = json_tokener_parse(body);
	if (o == NULL)
		fail_msg("not JSON: %s", body);
	free(resp);
	return o;
}

static uint64_t jget_u64(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		fail_msg("no \"%s\"", key);
	assert_true(json_object_is_type(v, json_type_int));
	return json_object_get_uint64(v);
}

static const char *jget_str(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		fail_msg("no \"%s\"", key);
	assert_true(json_object_is_type(v, json_type_string));
	return json_object_get_string(v);
}

static bool jget_bool(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		fail_msg("no \"%s\"", key);
	assert_true(json_object_is_type(v, json_type_boolean));
	return json_object_get_boolean(v);
}

static json_object *jget(json_object *o, const char *key, json_type type)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		fail_msg("no \"%s\"", key);
	assert_true(json_object_is_type(v, type));
	return v;
}

/* GET @path, expect 200; returns the body, to be freed. */
static char *get_text(struct vbd_monitor *m, const char *path)
{
	char *resp = malloc(RESP_MAX), *copy;
	const char *body;

	assert_non_null(resp);
	assert_int_equal(http_get(m, path, resp, RESP_MAX, &body), 200);
	copy = strdup(body);
	assert_non_null(copy);
	free(resp);
	return copy;
}

/* How many times @needle occurs in @hay. */
static int count_of(const char *hay, const char *needle)
{
	int n = 0;

	while ((hay = strstr(hay, needle)) != NULL) {
		n++;
		hay++;
	}
	return n;
}

/* ---- the tests --------------------------------------------------------- */

static void test_monitor_create_errors(void **state)
{
	struct fixture *fx = *state;
	struct vbd_stats_source bad = fx->src;
	struct vbd_monitor *m = (struct vbd_monitor *)&bad;

	assert_true(vbd_monitor_port(fx->m) != 0);
	assert_int_equal(vbd_monitor_create("localhost", 0, &fx->src, &m),
			 VB_EINVAL);
	assert_int_equal(vbd_monitor_create("127.0.0.256", 0, &fx->src, &m),
			 VB_EINVAL);
	assert_int_equal(vbd_monitor_create("", 0, &fx->src, &m), VB_EINVAL);
	assert_int_equal(vbd_monitor_create(NULL, 0, &fx->src, &m), VB_EINVAL);
	assert_int_equal(vbd_monitor_create("127.0.0.1", 0, NULL, &m),
			 VB_EINVAL);
	assert_int_equal(vbd_monitor_create("127.0.0.1", 0, &fx->src, NULL),
			 VB_EINVAL);
	bad.conn = NULL;
	assert_int_equal(vbd_monitor_create("127.0.0.1", 0, &bad, &m),
			 VB_EINVAL);
	/* The port is taken: by the fixture's own monitor. */
	assert_int_equal(vbd_monitor_create("127.0.0.1",
					    vbd_monitor_port(fx->m), &fx->src,
					    &m),
			 VB_ESYS);
	/* Output written only on success. */
	assert_ptr_equal(m, (struct vbd_monitor *)&bad);
	vbd_monitor_destroy(NULL);
}

/* IPv6 loopback, where the host has it. */
static void test_monitor_ipv6(void **state)
{
	struct fixture *fx = *state;
	struct vbd_monitor *m = NULL;
	int rc;

	rc = vbd_monitor_create("::1", 0, &fx->src, &m);
	if (rc == VB_ESYS)
		return; /* no IPv6 in this sandbox: nothing to test */
	assert_int_equal(rc, VB_OK);
	assert_true(vbd_monitor_port(m) != 0);
	assert_true(vbd_monitor_fd(m) >= 0);
	vbd_monitor_destroy(m);
}

static void test_monitor_healthz(void **state)
{
	struct fixture *fx = *state;
	json_object *o = get_json(fx->m, "/healthz", 200);

	assert_string_equal(jget_str(o, "status"), "ok");
	json_object_put(o);
}

/* GET /healthz: 503 with the checks @failed (a JSON array's text). */
static json_object *healthz_503(struct fixture *fx, const char *failed)
{
	json_object *o = get_json(fx->m, "/healthz", 503);

	assert_string_equal(jget_str(o, "status"), "unavailable");
	assert_true(jget_u64(o, "status_code") == 503);
	assert_string_equal(json_object_to_json_string_ext(
				    jget(o, "failed", json_type_array),
				    JSON_C_TO_STRING_PLAIN),
			    failed);
	return o;
}

/* Draining, not listening, the loop away: 503 and which check failed. */
static void test_monitor_healthz_unavailable(void **state)
{
	struct fixture *fx = *state;
	char *resp = malloc(RESP_MAX);
	const char *body;
	json_object *o;

	assert_non_null(resp);
	/* A shutdown: draining, and the listeners closed. */
	fx->fake.draining = true;
	fx->fake.not_listening = true;
	o = healthz_503(fx, "[\"draining\",\"listening\"]");
	assert_string_equal(
		jget_str(o, "error"),
		"the broker is draining: it accepts no new clients");
	assert_false(jget_bool(o, "listening"));
	assert_true(jget_bool(o, "draining"));
	json_object_put(o);
	/* HEAD: the same status, no body. */
	assert_int_equal(
		http_req(fx->m, "HEAD", "/healthz", resp, RESP_MAX, &body),
		503);
	assert_string_equal(body, "");
	fx->fake.draining = false;
	o = healthz_503(fx, "[\"listening\"]");
	assert_string_equal(jget_str(o, "error"),
			    "the broker is not listening for clients");
	json_object_put(o);
	fx->fake.not_listening = false;
	json_object_put(get_json(fx->m, "/healthz", 200));

	/* Timers that stopped while the loop still serves HTTP. */
	fx->fake.tick_age_ms = 1999;
	json_object_put(get_json(fx->m, "/healthz", 200));
	fx->fake.tick_age_ms = 2000;
	o = healthz_503(fx, "[\"event_loop\"]");
	assert_string_equal(jget_str(o, "error"),
			    "the event loop's timers last ran 2000 ms ago");
	assert_true(jget_u64(o, "tick_age_ms") == 2000);
	assert_true(jget_bool(o, "listening"));
	assert_false(jget_bool(o, "draining"));
	json_object_put(o);
	fx->fake.tick_age_ms = 20;

	/* A loop that was away 3 s: not ok for 2 s after it came back. */
	fx->fake.loop_away_ms = 3000;
	fx->fake.loop_back_ms = 10;
	o = healthz_503(fx, "[\"event_loop\"]");
	assert_string_equal(jget_str(o, "error"),
			    "the event loop was away 3000 ms, until 10 ms ago");
	assert_true(jget_u64(o, "loop_away_ms") == 3000);
	assert_true(jget_u64(o, "loop_back_ms") == 10);
	json_object_put(o);
	fx->fake.loop_back_ms = 1999;
	json_object_put(healthz_503(fx, "[\"event_loop\"]"));
	fx->fake.loop_back_ms = 2000;
	json_object_put(get_json(fx->m, "/healthz", 200));
	/* Away less than 2 s (late, counted in /metrics): still ok. */
	fx->fake.loop_away_ms = 1999;
	fx->fake.loop_back_ms = 0;
	o = get_json(fx->m, "/healthz", 200);
	assert_int_equal(json_object_object_length(o), 1);
	json_object_put(o);

	/* Everything at once: every check named, the first one's reason. */
	fx->fake.draining = true;
	fx->fake.not_listening = true;
	fx->fake.tick_age_ms = 5000;
	o = healthz_503(fx, "[\"draining\",\"listening\",\"event_loop\"]");
	assert_non_null(strstr(jget_str(o, "error"), "draining"));
	json_object_put(o);
	free(resp);
}

/* Every sample line is "name{labels} value" with well-formed labels. */
static void check_exposition(const char *text)
{
	const char *line = text, *p;
	int n = 0;

	while (*line) {
		const char *nl = strchr(line, '\n');

		assert_non_null(nl);
		if (*line != '#') {
			p = line;
			while ((*p >= 'a' && *p <= 'z') || *p == '_')
				p++;
			assert_true(p > line);
			if (*p == '{') {
				/* label="value"(,label="value")* */
				for (p++; *p != '}'; p++) {
					while ((*p >= 'a' && *p <= 'z') ||
					       *p == '_')
						p++;
					assert_int_equal(*p++, '=');
					assert_int_equal(*p++, '"');
					for (; *p != '"'; p++) {
						assert_true(*p != '\n');
						if (*p == '\\') {
							p++;
							assert_non_null(strchr(
								"\\\"n", *p));
						}
					}
					p++;
					if (*p != ',')
						break;
				}
				assert_int_equal(*p++, '}');
			}
			assert_int_equal(*p++, ' ');
			while ((*p >= '0' && *p <= '9') || *p == '.')
				p++;
			assert_ptr_equal(p, nl);
			n++;
		}
		line = nl + 1;
	}
	assert_true(n > 30);
}

static void test_monitor_metrics(void **state)
{
	struct fixture *fx = *state;
	char *resp = malloc(RESP_MAX);
	const char *body;

	assert_non_null(resp);
	assert_int_equal(http_get(fx->m, "/metrics", resp, RESP_MAX, &body),
			 200);
	assert_true(has_header(resp, "Content-Type: text/plain; "
				     "version=0.0.4"));
	check_exposition(body);
	/* One snapshot per scrape. */
	assert_int_equal(fx->fake.server_calls, 1);
	assert_int_equal(fx->fake.conns_calls, 1);

	assert_non_null(strstr(body, "# HELP verbus_connections "));
	assert_non_null(strstr(body, "# TYPE verbus_connections gauge\n"
				     "verbus_connections 3\n"));
	assert_non_null(strstr(body, "# TYPE verbus_messages_in_total counter\n"
				     "verbus_messages_in_total 1000\n"));
	assert_non_null(strstr(body, "\nverbus_bytes_out_total 160000\n"));
	assert_non_null(strstr(body, "\nverbus_drops_total 4\n"));
	assert_non_null(strstr(body, "\nverbus_mr_registered_total 12\n"));
	assert_non_null(strstr(body, "\nverbus_connections_total 7\n"));
	assert_non_null(strstr(body, "\nverbus_uptime_seconds 3723.500\n"));
	assert_non_null(strstr(body, "\nverbus_info{version=\"0.1.0\","
				     "server_name=\"test-broker\","
				     "listen=\"0.0.0.0:7700\"} 1\n"));
	assert_non_null(strstr(body, "\nverbus_connection_messages_in_total"
				     "{cid=\"1\",name=\"alpha\"} 10\n"));
	/* Escaped: backslash, double quote, newline; bad UTF-8 replaced. */
	assert_non_null(strstr(body, "\nverbus_connection_messages_in_total"
				     "{cid=\"5\",name=\"we\\\"ird\\\\name\"} "
				     "20\n"));
	assert_non_null(strstr(body, "\nverbus_connection_messages_in_total"
				     "{cid=\"9\",name=\"caf\xc3\xa9\\n?\"} "
				     "30\n"));
	assert_non_null(strstr(body, "\nverbus_connection_pending"
				     "{cid=\"5\",name=\"we\\\"ird\\\\name\"} "
				     "17\n"));
	/* A family's samples follow its one HELP and TYPE lines. */
	assert_ptr_equal(strstr(body, "# HELP verbus_connection_drops_total") +
				 7,
			 strstr(body, "verbus_connection_drops_total"));
	assert_null(
		strstr(strstr(body, "# TYPE verbus_connection_drops_total") + 1,
		       "# TYPE verbus_connection_drops_total"));
	/* A source without the accounts callback: no account families. */
	assert_null(strstr(body, "verbus_account"));
	free(resp);
}

static void test_monitor_varz(void **state)
{
	struct fixture *fx = *state;
	json_object *o = get_json(fx->m, "/varz", 200);

	assert_string_equal(jget_str(o, "server_name"), "test-broker");
	assert_string_equal(jget_str(o, "version"), "0.1.0");
	assert_string_equal(jget_str(o, "start"), "2023-11-14T22:13:20Z");
	assert_string_equal(jget_str(o, "uptime"), "1h2m3s");
	assert_true(jget_u64(o, "uptime_ms") == 3723500);
	assert_true(jget_u64(o, "connections") == 3);
	assert_true(jget_u64(o, "total_connections") == 7);
	assert_true(jget_u64(o, "in_msgs") == 1000);
	assert_true(jget_u64(o, "out_msgs") == 2500);
	assert_true(jget_u64(o, "in_bytes") == 64000);
	assert_true(jget_u64(o, "out_bytes") == 160000);
	assert_true(jget_u64(o, "slow_consumers") == 2);
	assert_true(jget_u64(o, "subscriptions") == 3);
	assert_true(jget_u64(o, "mem_registered") == 6291456);
	assert_true(jget_u64(o, "max_payload") == 8u << 20);
	assert_true(jget_u64(o, "max_msg") == 65536);
	json_object_put(o);
}

static json_object *conn_at(json_object *connz, size_t i)
{
	json_object *arr;

	assert_true(json_object_object_get_ex(connz, "connections", &arr));
	assert_true(json_object_is_type(arr, json_type_array));
	return json_object_array_get_idx(arr, i);
}

static void test_monitor_connz(void **state)
{
	struct fixture *fx = *state;
	json_object *o, *c;

	o = get_json(fx->m, "/connz", 200);
	assert_true(jget_u64(o, "num_connections") == 3);
	assert_true(jget_u64(o, "total") == 3);
	assert_true(jget_u64(o, "offset") == 0);
	assert_true(jget_u64(o, "limit") == 1024);
	assert_string_equal(jget_str(conn_at(o, 0), "account"), "orders");
	c = conn_at(o, 1);
	assert_true(jget_u64(c, "cid") == 5);
	assert_string_equal(jget_str(c, "account"), "$G");
	assert_string_equal(jget_str(c, "name"), "we\"ird\\name");
	assert_string_equal(jget_str(c, "peer"), "10.0.0.3:40002");
	assert_string_equal(jget_str(c, "transport"), "tcp");
	assert_true(jget_u64(c, "drops") == 4);
	assert_true(jget_u64(c, "pending") == 17);
	assert_true(jget_u64(c, "ring_size") == 65536);
	assert_true(jget_u64(c, "peer_ring_size") == 262144);
	assert_string_equal(jget_str(c, "start"), "2023-11-14T22:16:40Z");
	assert_string_equal(jget_str(conn_at(o, 2), "name"), "caf\xc3\xa9\n?");
	assert_string_equal(jget_str(conn_at(o, 2), "account"), "orders");
	json_object_put(o);

	/* A page. */
	o = get_json(fx->m, "/connz?offset=1&limit=1", 200);
	assert_true(jget_u64(o, "num_connections") == 1);
	assert_true(jget_u64(o, "total") == 3);
	assert_true(jget_u64(o, "offset") == 1);
	assert_true(jget_u64(o, "limit") == 1);
	assert_true(jget_u64(conn_at(o, 0), "cid") == 5);
	assert_null(conn_at(o, 1));
	json_object_put(o);
	o = get_json(fx->m, "/connz?offset=2&limit=10000", 200);
	assert_true(jget_u64(o, "num_connections") == 1);
	assert_true(jget_u64(conn_at(o, 0), "cid") == 9);
	json_object_put(o);
	o = get_json(fx->m, "/connz?offset=18446744073709551615", 200);
	assert_true(jget_u64(o, "num_connections") == 0);
	assert_true(jget_u64(o, "total") == 3);
	assert_null(conn_at(o, 0));
	json_object_put(o);

	/* One connection. */
	o = get_json(fx->m, "/connz?cid=9", 200);
	assert_true(jget_u64(o, "cid") == 9);
	assert_true(jget_u64(o, "in_msgs") == 30);
	assert_string_equal(jget_str(o, "account"), "orders");
	json_object_put(o);
	o = get_json(fx->m, "/connz?cid=2", 404);
	assert_string_equal(jget_str(o, "error"), "no connection with cid 2");
	json_object_put(o);
}

static void test_monitor_connz_bad_args(void **state)
{
	static const char *const bad[] = {
		"/connz?limit=0",
		"/connz?limit=10001",
		"/connz?limit=abc",
		"/connz?limit=",
		"/connz?limit=-1",
		"/connz?limit=1e3",
		"/connz?offset=-1",
		"/connz?offset=%201",
		"/connz?offset=99999999999999999999",
		"/connz?cid=x",
		"/connz?cid=",
		"/connz?acc=",
		"/connz?acc=a.b",
		"/connz?acc=a%20b",
		"/connz?acc=*",
		"/connz?acc=%3E",
		"/connz?acc=caf%C3%A9",
		"/connz?acc=a%0Ab",
		"/connz?acc=a\"b",
		/* 65 bytes: one too many. */
		("/connz?acc=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		 "aaaaaaaaaaaa"),
		/* Checked before the cid is looked up. */
		"/connz?cid=1&acc=a.b",
	};
	struct fixture *fx = *state;
	json_object *o;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o = get_json(fx->m, bad[i], 400);
		assert_true(jget_u64(o, "status") == 400);
		assert_non_null(strstr(jget_str(o, "error"), "must be"));
		json_object_put(o);
	}
}

static void test_monitor_not_found_and_methods(void **state)
{
	struct fixture *fx = *state;
	char *resp = malloc(RESP_MAX);
	const char *body;
	json_object *o;

	assert_non_null(resp);
	o = get_json(fx->m, "/nope", 404);
	assert_string_equal(jget_str(o, "error"), "not found");
	json_object_put(o);
	json_object_put(get_json(fx->m, "/metrics/", 404));
	json_object_put(get_json(fx->m, "/", 404));

	assert_int_equal(
		http_req(fx->m, "POST", "/metrics", resp, RESP_MAX, &body),
		405);
	assert_true(has_header(resp, "Allow: GET, HEAD\r\n"));
	assert_non_null(strstr(body, "method not allowed"));
	assert_int_equal(
		http_req(fx->m, "DELETE", "/connz", resp, RESP_MAX, &body),
		405);
	/* HEAD: the headers of GET, no body. */
	assert_int_equal(
		http_req(fx->m, "HEAD", "/varz", resp, RESP_MAX, &body), 200);
	assert_string_equal(body, "");
	free(resp);
}

/* A scraper that never finishes its request does not stop the others. */
static void test_monitor_stuck_client(void **state)
{
	struct fixture *fx = *state;
	static const char partial[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
	int fd = client_connect(fx->m), i;
	json_object *o;

	spin(fx->m, 20);
	assert_int_equal(send(fd, partial, sizeof(partial) - 1, MSG_NOSIGNAL),
			 (ssize_t)(sizeof(partial) - 1));
	spin(fx->m, 20);
	for (i = 0; i < 3; i++) {
		o = get_json(fx->m, "/healthz", 200);
		json_object_put(o);
	}
	/* An idle connection has a deadline: the timeout is bounded. */
	assert_true(vbd_monitor_timeout(fx->m) >= 0);
	assert_true(vbd_monitor_timeout(fx->m) <= 10000);
	close(fd);
	spin(fx->m, 20);
}

/* ---- /subsz ---------------------------------------------------------------- */

/* The subscriptions_list of @o, checked to hold @n. */
static json_object *subs_list(json_object *o, size_t n)
{
	json_object *arr = jget(o, "subscriptions_list", json_type_array);

	assert_int_equal(json_object_array_length(arr), n);
	return arr;
}

static json_object *sub_at(json_object *o, size_t i)
{
	json_object *v = json_object_array_get_idx(
		jget(o, "subscriptions_list", json_type_array), i);

	assert_non_null(v);
	return v;
}

static void test_monitor_subsz(void **state)
{
	struct fixture *fx = *state;
	json_object *o, *v, *x;

	o = get_json(fx->m, "/subsz", 200);
	assert_string_equal(fx->fake.subs_test, "-");
	assert_string_equal(jget_str(o, "server_name"), "test-broker");
	jget_str(o, "now");
	assert_true(jget_u64(o, "num_subscriptions") == 3);
	assert_true(jget_u64(o, "num_cache") == 12);
	assert_true(jget_u64(o, "total") == NSUBS);
	assert_true(jget_u64(o, "offset") == 0);
	assert_true(jget_u64(o, "limit") == 1024);
	subs_list(o, NSUBS);
	v = sub_at(o, 0);
	assert_string_equal(jget_str(v, "subject"), "orders.>");
	assert_true(jget_u64(v, "sid") == 1);
	assert_true(jget_u64(v, "cid") == 1);
	assert_string_equal(jget_str(v, "name"), "alpha");
	assert_true(jget_u64(v, "msgs") == 10);
	assert_true(jget_u64(v, "dropped") == 2);
	/* As nats-server: no queue group, no limit, no key. */
	assert_false(json_object_object_get_ex(v, "qgroup", &x));
	assert_false(json_object_object_get_ex(v, "max", &x));
	v = sub_at(o, 1);
	assert_string_equal(jget_str(v, "qgroup"), "workers");
	assert_true(jget_u64(v, "max") == 100);
	assert_true(jget_u64(v, "sid") == 7);
	/* What clients chose: valid UTF-8 kept, a bad byte '?', escaped. */
	v = sub_at(o, 2);
	assert_string_equal(jget_str(v, "name"), "we\"ird\\name");
	assert_string_equal(jget_str(v, "subject"), "caf\xc3\xa9.?\"x");
	v = sub_at(o, 3);
	assert_string_equal(jget_str(v, "name"), "caf\xc3\xa9\n?");
	assert_string_equal(jget_str(v, "qgroup"), "q?");
	json_object_put(o);

	/* ?test=: what a message on that subject reaches (percent-decoded). */
	o = get_json(fx->m, "/subsz?test=orders%2Eeu", 200);
	assert_string_equal(fx->fake.subs_test, "orders.eu");
	assert_true(jget_u64(o, "total") == 2);
	subs_list(o, 2);
	assert_true(jget_u64(sub_at(o, 0), "sid") == 1);
	assert_true(jget_u64(sub_at(o, 1), "sid") == 7);
	json_object_put(o);
	o = get_json(fx->m, "/subsz?test=nobody.here", 200);
	assert_true(jget_u64(o, "total") == 0);
	subs_list(o, 0);
	json_object_put(o);

	/* Paging: the window, and the total of every match. */
	o = get_json(fx->m, "/subsz?offset=1&limit=2", 200);
	assert_true(jget_u64(o, "total") == NSUBS);
	assert_true(jget_u64(o, "offset") == 1);
	assert_true(jget_u64(o, "limit") == 2);
	subs_list(o, 2);
	assert_true(jget_u64(sub_at(o, 0), "sid") == 7);
	assert_true(jget_u64(sub_at(o, 1), "sid") == 2);
	json_object_put(o);
	o = get_json(fx->m, "/subsz?offset=3&limit=4096&test=orders.eu", 200);
	assert_true(jget_u64(o, "total") == 2);
	subs_list(o, 0);
	json_object_put(o);
	o = get_json(fx->m, "/subsz?offset=18446744073709551615", 200);
	subs_list(o, 0);
	json_object_put(o);
	/* nats-server's subs=1: the list is always there. */
	o = get_json(fx->m, "/subsz?subs=1&limit=1", 200);
	subs_list(o, 1);
	json_object_put(o);
}

static void test_monitor_subsz_bad_args(void **state)
{
	static const char *const bad[] = {
		"/subsz?limit=0",	"/subsz?limit=4097",
		"/subsz?limit=x",	"/subsz?offset=-1",
		"/subsz?offset=",	"/subsz?test=orders.*",
		"/subsz?test=orders.>", "/subsz?test=",
		"/subsz?test=a..b",	"/subsz?test=a%20b",
		"/subsz?test=.a",
	};
	struct fixture *fx = *state;
	json_object *o;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o = get_json(fx->m, bad[i], 400);
		jget_str(o, "error");
		assert_true(jget_u64(o, "status") == 400);
		json_object_put(o);
	}
	/* Refused before the broker is asked. */
	assert_int_equal(fx->fake.subs_calls, 0);
}

/* A source without the subs callback: none to list. */
static void test_monitor_subsz_no_callback(void **state)
{
	struct fixture *fx = *state;
	json_object *o = get_json(fx->m, "/subsz?test=a.b", 200);

	assert_true(jget_u64(o, "total") == 0);
	subs_list(o, 0);
	json_object_put(o);
}

/* ---- the cluster ------------------------------------------------------- */

/* Every page as if clusters did not exist, and /routez empty. */
static void check_not_clustered(struct fixture *fx)
{
	json_object *o, *v;
	char *text;

	o = get_json(fx->m, "/routez", 200);
	assert_string_equal(jget_str(o, "cluster"), "");
	assert_string_equal(jget_str(o, "server_id"), "");
	assert_true(jget_u64(o, "num_routes") == 0);
	assert_int_equal(
		json_object_array_length(jget(o, "routes", json_type_array)),
		0);
	jget_str(o, "now");
	json_object_put(o);

	o = get_json(fx->m, "/varz", 200);
	assert_false(json_object_object_get_ex(o, "cluster", &v));
	assert_string_equal(jget_str(o, "server_name"), "test-broker");
	json_object_put(o);

	o = get_json(fx->m, "/healthz", 200);
	assert_string_equal(jget_str(o, "status"), "ok");
	assert_int_equal(json_object_object_length(o), 1);
	json_object_put(o);

	text = get_text(fx->m, "/metrics");
	check_exposition(text);
	assert_null(strstr(text, "verbus_cluster"));
	assert_null(strstr(text, "verbus_route"));
	free(text);
	/* Nobody asks for routes where there is no cluster. */
	assert_int_equal(fx->fake.routes_calls, 0);
}

/* A source from before clusters: cluster and routes NULL. */
static void test_monitor_cluster_no_callbacks(void **state)
{
	check_not_clustered(*state);
}

/* The callbacks say "not clustered", with junk in the other fields. */
static void test_monitor_cluster_not_clustered(void **state)
{
	struct fixture *fx = *state;

	check_not_clustered(fx);
	assert_int_equal(fx->fake.cluster_calls, 4);
}

static json_object *route_at(json_object *routez, size_t i)
{
	json_object *r = json_object_array_get_idx(
		jget(routez, "routes", json_type_array), i);

	assert_non_null(r);
	return r;
}

static void test_monitor_routez(void **state)
{
	struct fixture *fx = *state;
	json_object *o, *r;
	char zs[64];

	o = get_json(fx->m, "/routez", 200);
	assert_int_equal(fx->fake.cluster_calls, 1);
	assert_int_equal(fx->fake.routes_calls, 1);
	assert_string_equal(jget_str(o, "server_id"), "broker-b");
	assert_string_equal(jget_str(o, "cluster"), "prod");
	/* broker-c and the second evil one are open. */
	assert_true(jget_u64(o, "num_routes") == 2);
	assert_int_equal(
		json_object_array_length(jget(o, "routes", json_type_array)),
		NROUTES);

	/* By peer id: broker-a, broker-c, evil (x2), zzz... */
	r = route_at(o, 0);
	assert_string_equal(jget_str(r, "peer_id"), "broker-a");
	assert_string_equal(jget_str(r, "state"), "connecting");
	assert_false(jget_bool(r, "outbound"));
	assert_true(jget_bool(r, "member"));
	assert_true(jget_u64(r, "cid") == 0);
	assert_string_equal(jget_str(r, "peer"), "");
	assert_string_equal(jget_str(r, "start"), "");
	assert_string_equal(jget_str(r, "uptime"), "");
	assert_true(jget_u64(r, "failures") == 3);
	assert_string_equal(jget_str(r, "last_error"), "connection refused");

	r = route_at(o, 1);
	assert_string_equal(jget_str(r, "peer_id"), "broker-c");
	assert_string_equal(jget_str(r, "url"), "rdma://10.0.0.12:7701");
	assert_string_equal(jget_str(r, "state"), "open");
	assert_true(jget_bool(r, "outbound"));
	assert_true(jget_bool(r, "member"));
	assert_true(jget_u64(r, "cid") == 42);
	assert_string_equal(jget_str(r, "peer"), "10.0.0.12:7701");
	assert_string_equal(jget_str(r, "start"), "2023-11-14T22:15:00Z");
	assert_true(strlen(jget_str(r, "uptime")) > 1);
	assert_true(jget_u64(r, "msgs_in") == 5);
	assert_true(jget_u64(r, "bytes_in") == 500);
	assert_true(jget_u64(r, "msgs_out") == 6);
	assert_true(jget_u64(r, "bytes_out") == 600);
	assert_true(jget_u64(r, "interest_in") == 7);
	assert_true(jget_u64(r, "interest_queued") == 1);
	assert_true(jget_u64(r, "connects") == 2);
	assert_true(jget_u64(r, "failures") == 1);
	assert_string_equal(jget_str(r, "last_error"),
			    "connection reset by peer");

	/* Equal ids after cleaning: by cid. */
	assert_true(jget_u64(route_at(o, 2), "cid") == 0);
	assert_true(jget_u64(route_at(o, 3), "cid") == 50);

	/* An id with no terminator: cut to the field, less one byte. */
	memset(zs, 'z', sizeof(zs) - 1);
	zs[sizeof(zs) - 1] = '\0';
	assert_string_equal(jget_str(route_at(o, 4), "peer_id"), zs);
	assert_string_equal(jget_str(route_at(o, 4), "state"), "waiting");
	json_object_put(o);
}

/* A clustered source with no routes callback: the routes are []. */
static void test_monitor_routez_no_routes_callback(void **state)
{
	struct fixture *fx = *state;
	struct vbd_stats_source src = fx->src;
	struct vbd_monitor *m;
	json_object *o;

	src.routes = NULL;
	assert_int_equal(vbd_monitor_create("127.0.0.1", 0, &src, &m), VB_OK);
	o = get_json(m, "/routez", 200);
	assert_string_equal(jget_str(o, "cluster"), "prod");
	assert_true(jget_u64(o, "num_routes") == 0);
	assert_int_equal(
		json_object_array_length(jget(o, "routes", json_type_array)),
		0);
	json_object_put(o);
	vbd_monitor_destroy(m);
}

/* What other brokers chose reaches JSON and labels cleaned and escaped. */
static void test_monitor_routez_hostile(void **state)
{
	struct fixture *fx = *state;
	char *text;
	json_object *o, *r;

	text = get_text(fx->m, "/routez");
	assert_null(strchr(text, '\xff'));
	assert_null(strchr(text, '\xfe'));
	assert_null(strchr(text, '\x01'));
	o = json_tokener_parse(text);
	assert_non_null(o);
	r = route_at(o, 2);
	assert_string_equal(jget_str(r, "peer_id"), "evil\"\\\n?");
	assert_string_equal(jget_str(r, "last_error"),
			    "bad \"frame\"\\\n\x01?</script>");
	assert_string_equal(jget_str(route_at(o, 3), "peer_id"), "evil\"\\\n?");
	json_object_put(o);
	free(text);

	text = get_text(fx->m, "/metrics");
	check_exposition(text);
	assert_null(strchr(text, '\xff'));
	assert_null(strchr(text, '\xfe'));
	/* One series for the two ids that cleaned alike: the first's. */
	assert_int_equal(count_of(text, "\nverbus_route_up{"
					"peer=\"evil\\\"\\\\\\n?\"}"),
			 1);
	assert_non_null(strstr(text, "\nverbus_route_up{"
				     "peer=\"evil\\\"\\\\\\n?\"} 0\n"));
	assert_non_null(strstr(text, "\nverbus_route_peer_interest{"
				     "peer=\"evil\\\"\\\\\\n?\"} 1\n"));
	free(text);
}

static void test_monitor_varz_cluster(void **state)
{
	struct fixture *fx = *state;
	json_object *o = get_json(fx->m, "/varz", 200), *c;

	assert_string_equal(jget_str(o, "server_name"), "test-broker");
	c = jget(o, "cluster", json_type_object);
	assert_string_equal(jget_str(c, "name"), "prod");
	assert_string_equal(jget_str(c, "id"), "broker-b");
	assert_false(jget_bool(c, "zk_connected"));
	assert_true(jget_bool(c, "registered"));
	assert_true(jget_u64(c, "zk_connects") == 3);
	assert_true(jget_u64(c, "zk_disconnects") == 2);
	assert_true(jget_u64(c, "zk_expiries") == 1);
	assert_true(jget_u64(c, "members") == 4);
	assert_true(jget_u64(c, "routes") == 2);
	assert_true(jget_u64(c, "routes_opened") == 9);
	assert_true(jget_u64(c, "route_connect_failures") == 4);
	assert_true(jget_u64(c, "routes_refused") == 1);
	assert_true(jget_u64(c, "route_errors") == 2);
	assert_true(jget_u64(c, "interest_local") == 11);
	assert_true(jget_u64(c, "interest_remote") == 22);
	assert_true(jget_u64(c, "route_msgs_in") == 100);
	assert_true(jget_u64(c, "route_msgs_out") == 200);
	assert_true(jget_u64(c, "route_bytes_in") == 1000);
	assert_true(jget_u64(c, "route_bytes_out") == 2000);
	json_object_put(o);
	/* /varz does not walk the routes. */
	assert_int_equal(fx->fake.routes_calls, 0);
}

static void test_monitor_metrics_cluster(void **state)
{
	static const char *const want[] = {
		"# TYPE verbus_cluster_members gauge\n"
		"verbus_cluster_members 4\n",
		"# TYPE verbus_cluster_routes gauge\nverbus_cluster_routes 2\n",
		"\nverbus_cluster_info{cluster=\"prod\",id=\"broker-b\"} 1\n",
		"\nverbus_cluster_zookeeper_connected 0\n",
		"\nverbus_cluster_registered 1\n",
		"# TYPE verbus_cluster_zookeeper_expiries_total counter\n"
		"verbus_cluster_zookeeper_expiries_total 1\n",
		"\nverbus_cluster_zookeeper_disconnects_total 2\n",
		"\nverbus_cluster_zookeeper_connects_total 3\n",
		"\nverbus_routes_opened_total 9\n",
		"\nverbus_route_connect_failures_total 4\n",
		"\nverbus_routes_refused_total 1\n",
		"\nverbus_route_errors_total 2\n",
		"\nverbus_cluster_interest_local 11\n",
		"\nverbus_cluster_interest_remote 22\n",
		"# TYPE verbus_route_messages_total counter\n"
		"verbus_route_messages_total{direction=\"in\"} 100\n"
		"verbus_route_messages_total{direction=\"out\"} 200\n",
		"\nverbus_route_bytes_total{direction=\"in\"} 1000\n"
		"verbus_route_bytes_total{direction=\"out\"} 2000\n",
		"# TYPE verbus_route_up gauge\n"
		"verbus_route_up{peer=\"broker-a\"} 0\n"
		"verbus_route_up{peer=\"broker-c\"} 1\n",
		"\nverbus_route_peer_messages_total"
		"{peer=\"broker-c\",direction=\"in\"} 5\n"
		"verbus_route_peer_messages_total"
		"{peer=\"broker-c\",direction=\"out\"} 6\n",
		"\nverbus_route_peer_bytes_total"
		"{peer=\"broker-c\",direction=\"in\"} 500\n"
		"verbus_route_peer_bytes_total"
		"{peer=\"broker-c\",direction=\"out\"} 600\n",
		"\nverbus_route_peer_interest{peer=\"broker-c\"} 7\n",
		"\nverbus_route_peer_interest_queued{peer=\"broker-c\"} 1\n",
		"\nverbus_route_peer_connects_total{peer=\"broker-c\"} 2\n",
		"\nverbus_route_peer_connect_failures_total"
		"{peer=\"broker-a\"} 3\n",
		/* The client connections are still there. */
		"\nverbus_connection_messages_in_total"
		"{cid=\"1\",name=\"alpha\"} 10\n",
	};
	struct fixture *fx = *state;
	char *text = get_text(fx->m, "/metrics");
	size_t i;

	check_exposition(text);
	assert_int_equal(fx->fake.cluster_calls, 1);
	assert_int_equal(fx->fake.routes_calls, 1);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (strstr(text, want[i]) == NULL)
			fail_msg("missing: %s", want[i]);
	/* Every family once; 4 distinct peers of 5 routes. */
	assert_int_equal(count_of(text, "# TYPE verbus_route_up "), 1);
	assert_int_equal(count_of(text, "\nverbus_route_up{"), 4);
	assert_int_equal(count_of(text, "\nverbus_route_peer_messages_total{"),
			 8);
	free(text);
}

static void test_monitor_healthz_cluster(void **state)
{
	struct fixture *fx = *state;
	char *text = get_text(fx->m, "/healthz");
	json_object *o, *c;

	/* Still "ok" for a plain grep, with ZooKeeper down. */
	assert_non_null(strstr(text, "\"ok\""));
	o = json_tokener_parse(text);
	assert_non_null(o);
	assert_string_equal(jget_str(o, "status"), "ok");
	c = jget(o, "cluster", json_type_object);
	assert_string_equal(jget_str(c, "zookeeper"), "disconnected");
	assert_true(jget_bool(c, "registered"));
	assert_true(jget_u64(c, "routes") == 2);
	assert_true(jget_u64(c, "members") == 4);
	json_object_put(o);
	free(text);
}

/* Not ok with the cluster beside the verdict, as when ok. */
static void test_monitor_healthz_cluster_unavailable(void **state)
{
	struct fixture *fx = *state;
	json_object *o;

	fx->fake.draining = true;
	o = healthz_503(fx, "[\"draining\"]");
	assert_string_equal(
		jget_str(jget(o, "cluster", json_type_object), "zookeeper"),
		"disconnected");
	json_object_put(o);
}

/* ---- accounts ---------------------------------------------------------- */

/* /connz?acc=NAME: that account's connections, the totals theirs alone. */
static void test_monitor_connz_account(void **state)
{
	struct fixture *fx = *state;
	json_object *o;

	o = get_json(fx->m, "/connz?acc=orders", 200);
	assert_true(jget_u64(o, "num_connections") == 2);
	assert_true(jget_u64(o, "total") == 2);
	assert_true(jget_u64(conn_at(o, 0), "cid") == 1);
	assert_true(jget_u64(conn_at(o, 1), "cid") == 9);
	assert_string_equal(jget_str(conn_at(o, 1), "account"), "orders");
	assert_null(conn_at(o, 2));
	json_object_put(o);

	/* The window is over the account's connections. */
	o = get_json(fx->m, "/connz?acc=orders&offset=1&limit=1", 200);
	assert_true(jget_u64(o, "num_connections") == 1);
	assert_true(jget_u64(o, "total") == 2);
	assert_true(jget_u64(o, "offset") == 1);
	assert_true(jget_u64(conn_at(o, 0), "cid") == 9);
	json_object_put(o);

	/* "$G", percent-encoded or not. */
	o = get_json(fx->m, "/connz?acc=%24G", 200);
	assert_true(jget_u64(o, "total") == 1);
	assert_true(jget_u64(conn_at(o, 0), "cid") == 5);
	json_object_put(o);
	o = get_json(fx->m, "/connz?acc=$G", 200);
	assert_true(jget_u64(o, "total") == 1);
	json_object_put(o);

	/* A valid name nobody has: an empty page, not an error; 64 bytes
	 * is a valid name. */
	o = get_json(fx->m, "/connz?acc=billing", 200);
	assert_true(jget_u64(o, "total") == 0);
	assert_null(conn_at(o, 0));
	json_object_put(o);
	o = get_json(fx->m,
		     "/connz?acc=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		     "aaaaaaaaaaaaaaaaaaaa",
		     200);
	assert_true(jget_u64(o, "total") == 0);
	json_object_put(o);
	/* Case matters. */
	o = get_json(fx->m, "/connz?acc=Orders", 200);
	assert_true(jget_u64(o, "total") == 0);
	json_object_put(o);

	/* One connection, and the account it must be in. */
	o = get_json(fx->m, "/connz?cid=9&acc=orders", 200);
	assert_true(jget_u64(o, "cid") == 9);
	json_object_put(o);
	o = get_json(fx->m, "/connz?cid=5&acc=orders", 404);
	assert_string_equal(jget_str(o, "error"),
			    "no connection with cid 5 in account orders");
	json_object_put(o);
}

static void test_monitor_connz_bad_account(void **state)
{
	struct fixture *fx = *state;
	json_object *o = get_json(fx->m, "/connz?acc=a.b", 400);

	assert_true(jget_u64(o, "status") == 400);
	assert_string_equal(jget_str(o, "error"),
			    "acc must be an account name: 1 to 64 letters, "
			    "digits, '_', '-' or '$'");
	json_object_put(o);
	/* Refused before the broker is asked. */
	assert_int_equal(fx->fake.conns_calls, 0);
	assert_int_equal(fx->fake.conn_calls, 0);
}

static json_object *account_at(json_object *accountz, size_t i)
{
	json_object *a = json_object_array_get_idx(
		jget(accountz, "accounts", json_type_array), i);

	assert_non_null(a);
	return a;
}

/* @o's array @key, checked to hold @n elements. */
static json_object *jarr(json_object *o, const char *key, size_t n)
{
	json_object *arr = jget(o, key, json_type_array);

	assert_int_equal(json_object_array_length(arr), n);
	return arr;
}

/* The global account: its numbers, no limits, nothing exported or in. */
static void check_global_account(json_object *a)
{
	json_object *v;

	assert_string_equal(jget_str(a, "name"), "$G");
	assert_true(jget_u64(a, "conns") == 1);
	assert_true(jget_u64(a, "subs") == 1);
	assert_true(jget_u64(a, "memory") == 327680);
	assert_true(jget_u64(a, "msgs_in") == 20);
	assert_true(jget_u64(a, "bytes_in") == 2000);
	assert_true(jget_u64(a, "msgs_out") == 7);
	assert_true(jget_u64(a, "bytes_out") == 700);
	assert_true(jget_u64(a, "conns_refused") == 0);
	assert_true(jget_u64(a, "subs_refused") == 0);
	assert_false(json_object_object_get_ex(a, "limits", &v));
	jarr(a, "exports", 0);
	jarr(a, "imports", 0);
	assert_int_equal(json_object_object_length(a), 12);
}

/* "orders": its numbers, limits, exports and imports, every key. */
static void check_orders_account(json_object *a)
{
	json_object *lim, *ex, *e, *im, *v;

	assert_string_equal(jget_str(a, "name"), "orders");
	assert_true(jget_u64(a, "conns") == 2);
	assert_true(jget_u64(a, "subs") == 2);
	assert_true(jget_u64(a, "memory") == 4194304);
	assert_true(jget_u64(a, "msgs_in") == 40);
	assert_true(jget_u64(a, "bytes_in") == 4000);
	assert_true(jget_u64(a, "msgs_out") == 11);
	assert_true(jget_u64(a, "bytes_out") == 1100);
	assert_true(jget_u64(a, "conns_refused") == 5);
	assert_true(jget_u64(a, "subs_refused") == 6);
	assert_int_equal(json_object_object_length(a), 13);

	lim = jget(a, "limits", json_type_object);
	assert_true(jget_u64(lim, "max_conns") == 100);
	assert_true(jget_u64(lim, "max_subs") == 0);
	assert_true(jget_u64(lim, "max_memory") == 64u << 20);
	assert_int_equal(json_object_object_length(lim), 3);

	ex = jarr(a, "exports", 2);
	/* A stream to two accounts: no service keys. */
	e = json_object_array_get_idx(ex, 0);
	assert_string_equal(jget_str(e, "stream"), "orders.shipped.>");
	assert_string_equal(
		json_object_to_json_string_ext(jarr(e, "accounts", 2),
					       JSON_C_TO_STRING_PLAIN),
		"[\"billing\",\"shipping\"]");
	assert_false(json_object_object_get_ex(e, "service", &v));
	assert_false(json_object_object_get_ex(e, "responses", &v));
	assert_false(json_object_object_get_ex(e, "response_ms", &v));
	assert_int_equal(json_object_object_length(e), 2);
	/* A service any account may import: no "accounts". */
	e = json_object_array_get_idx(ex, 1);
	assert_string_equal(jget_str(e, "service"), "orders.status");
	assert_false(json_object_object_get_ex(e, "stream", &v));
	assert_false(json_object_object_get_ex(e, "accounts", &v));
	assert_true(jget_u64(e, "responses") == 3);
	assert_true(jget_u64(e, "response_ms") == 45000);
	assert_int_equal(json_object_object_length(e), 3);

	im = json_object_array_get_idx(jarr(a, "imports", 1), 0);
	assert_string_equal(jget_str(im, "stream"), "billing.events.>");
	assert_string_equal(jget_str(im, "account"), "billing");
	assert_int_equal(json_object_object_length(im), 2);
}

static void test_monitor_accountz(void **state)
{
	struct fixture *fx = *state;
	json_object *o = get_json(fx->m, "/accountz", 200);

	assert_int_equal(fx->fake.accounts_calls, 1);
	assert_string_equal(jget_str(o, "server_name"), "test-broker");
	jget_str(o, "now");
	jarr(o, "accounts", NACCOUNTS);
	/* In the broker's order: "$G" first. */
	check_global_account(account_at(o, 0));
	check_orders_account(account_at(o, 1));
	json_object_put(o);
}

/* ?acc=NAME: only that one; 404 for none, 400 for no name at all. */
static void test_monitor_accountz_one(void **state)
{
	static const char *const bad[] = {
		"/accountz?acc=",	   "/accountz?acc=a.b",
		"/accountz?acc=a%20b",	   "/accountz?acc=%3E",
		"/accountz?acc=caf%C3%A9",
	};
	struct fixture *fx = *state;
	char *resp = malloc(RESP_MAX);
	const char *body;
	json_object *o;
	size_t i;

	assert_non_null(resp);
	o = get_json(fx->m, "/accountz?acc=orders", 200);
	jarr(o, "accounts", 1);
	check_orders_account(account_at(o, 0));
	json_object_put(o);
	o = get_json(fx->m, "/accountz?acc=%24G", 200);
	jarr(o, "accounts", 1);
	check_global_account(account_at(o, 0));
	json_object_put(o);

	o = get_json(fx->m, "/accountz?acc=nope", 404);
	assert_true(jget_u64(o, "status") == 404);
	assert_string_equal(jget_str(o, "error"), "no account named nope");
	json_object_put(o);
	fx->fake.accounts_calls = 0;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o = get_json(fx->m, bad[i], 400);
		assert_true(jget_u64(o, "status") == 400);
		assert_non_null(strstr(jget_str(o, "error"), "acc must be"));
		json_object_put(o);
	}
	assert_int_equal(fx->fake.accounts_calls, 0);

	/* As every page: GET and HEAD only. */
	assert_int_equal(
		http_req(fx->m, "POST", "/accountz", resp, RESP_MAX, &body),
		405);
	assert_true(has_header(resp, "Allow: GET, HEAD\r\n"));
	assert_int_equal(
		http_req(fx->m, "HEAD", "/accountz", resp, RESP_MAX, &body),
		200);
	assert_string_equal(body, "");
	json_object_put(get_json(fx->m, "/accountz/", 404));
	free(resp);
}

/* A source without the accounts callback: no account to list. */
static void test_monitor_accountz_no_callback(void **state)
{
	struct fixture *fx = *state;
	json_object *o = get_json(fx->m, "/accountz", 200);

	assert_string_equal(jget_str(o, "server_name"), "test-broker");
	jarr(o, "accounts", 0);
	json_object_put(o);
	o = get_json(fx->m, "/accountz?acc=%24G", 404);
	assert_string_equal(jget_str(o, "error"), "no account named $G");
	json_object_put(o);
}

static void test_monitor_metrics_accounts(void **state)
{
	static const char *const want[] = {
		"# HELP verbus_account_connections ",
		"# TYPE verbus_account_connections gauge\n"
		"verbus_account_connections{account=\"$G\"} 1\n"
		"verbus_account_connections{account=\"orders\"} 2\n",
		"# TYPE verbus_account_subscriptions gauge\n"
		"verbus_account_subscriptions{account=\"$G\"} 1\n"
		"verbus_account_subscriptions{account=\"orders\"} 2\n",
		"# TYPE verbus_account_memory_bytes gauge\n"
		"verbus_account_memory_bytes{account=\"$G\"} 327680\n"
		"verbus_account_memory_bytes{account=\"orders\"} 4194304\n",
		"# TYPE verbus_account_messages_in_total counter\n"
		"verbus_account_messages_in_total{account=\"$G\"} 20\n"
		"verbus_account_messages_in_total{account=\"orders\"} 40\n",
		"# TYPE verbus_account_messages_out_total counter\n"
		"verbus_account_messages_out_total{account=\"$G\"} 7\n"
		"verbus_account_messages_out_total{account=\"orders\"} 11\n",
		"# TYPE verbus_account_bytes_in_total counter\n"
		"verbus_account_bytes_in_total{account=\"$G\"} 2000\n"
		"verbus_account_bytes_in_total{account=\"orders\"} 4000\n",
		"# TYPE verbus_account_bytes_out_total counter\n"
		"verbus_account_bytes_out_total{account=\"$G\"} 700\n"
		"verbus_account_bytes_out_total{account=\"orders\"} 1100\n",
		"# TYPE verbus_account_conns_refused_total counter\n"
		"verbus_account_conns_refused_total{account=\"$G\"} 0\n"
		"verbus_account_conns_refused_total{account=\"orders\"} 5\n",
		"# TYPE verbus_account_subs_refused_total counter\n"
		"verbus_account_subs_refused_total{account=\"$G\"} 0\n"
		"verbus_account_subs_refused_total{account=\"orders\"} 6\n",
	};
	static const char *const families[] = {
		"verbus_account_connections",
		"verbus_account_subscriptions",
		"verbus_account_memory_bytes",
		"verbus_account_messages_in_total",
		"verbus_account_messages_out_total",
		"verbus_account_bytes_in_total",
		"verbus_account_bytes_out_total",
		"verbus_account_conns_refused_total",
		"verbus_account_subs_refused_total",
	};
	struct fixture *fx = *state;
	char *text = get_text(fx->m, "/metrics"), needle[96];
	size_t i;

	check_exposition(text);
	assert_int_equal(fx->fake.accounts_calls, 1);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (strstr(text, want[i]) == NULL)
			fail_msg("missing: %s", want[i]);
	/* Each family's HELP and TYPE once; two samples each, no more. */
	for (i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		snprintf(needle, sizeof(needle), "# HELP %s ", families[i]);
		assert_int_equal(count_of(text, needle), 1);
		snprintf(needle, sizeof(needle), "# TYPE %s ", families[i]);
		assert_int_equal(count_of(text, needle), 1);
		snprintf(needle, sizeof(needle), "\n%s{", families[i]);
		assert_int_equal(count_of(text, needle), NACCOUNTS);
	}
	assert_int_equal(count_of(text, "{account="), 9 * NACCOUNTS);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_monitor_create_errors,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_monitor_ipv6, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_monitor_healthz, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_monitor_metrics, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_monitor_varz, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_monitor_connz, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_monitor_connz_bad_args,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_monitor_not_found_and_methods, setup, teardown),
		cmocka_unit_test_setup_teardown(test_monitor_stuck_client,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_monitor_cluster_no_callbacks, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_monitor_cluster_not_clustered, setup_not_clustered,
			teardown),
		cmocka_unit_test_setup_teardown(test_monitor_routez,
						setup_clustered, teardown),
		cmocka_unit_test_setup_teardown(
			test_monitor_routez_no_routes_callback, setup_clustered,
			teardown),
		cmocka_unit_test_setup_teardown(test_monitor_routez_hostile,
						setup_clustered, teardown),
		cmocka_unit_test_setup_teardown(test_monitor_varz_cluster,
						setup_clustered, teardown),
		cmocka_unit_test_setup_teardown(test_monitor_metrics_cluster,
						setup_clustered, teardown),
		cmocka_unit_test_setup_teardown(test_monitor_healthz_cluster,
						setup_clustered, teardown),
		cmocka_unit_test_setup_teardown(
			test_monitor_healthz_cluster_unavailable,
			setup_clustered, teardown),
		cmocka_unit_test_setup_teardown(
			test_monitor_healthz_unavailable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_monitor_subsz,
						setup_not_clustered, teardown),
		cmocka_unit_test_setup_teardown(test_monitor_subsz_bad_args,
						setup_not_clustered, teardown),
		cmocka_unit_test_setup_teardown(test_monitor_subsz_no_callback,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_monitor_connz_account,
						setup_not_clustered, teardown),
		cmocka_unit_test_setup_teardown(test_monitor_connz_bad_account,
						setup_not_clustered, teardown),
		cmocka_unit_test_setup_teardown(test_monitor_accountz,
						setup_not_clustered, teardown),
		cmocka_unit_test_setup_teardown(test_monitor_accountz_one,
						setup_not_clustered, teardown),
		cmocka_unit_test_setup_teardown(
			test_monitor_accountz_no_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_monitor_metrics_accounts,
						setup_clustered, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
