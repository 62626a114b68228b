/*
 * Unit tests for the HTTP monitoring endpoint (daemon/monitor.c).
 *
 * The monitor runs on the caller's thread, so the test is both sides: a
 * non-blocking client socket and the monitor's descriptor are polled
 * together, and vbd_monitor_run() is called on every turn of the loop.
 */
#include "daemon/monitor.h"
#include "daemon/stats.h"

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
	  .peer_ring = 1u << 20 },
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
	  .peer_ring = 1u << 18 },
	/* UTF-8, a newline and a byte that is not UTF-8 at all. */
	{ .cid = 9,
	  .name = "caf\xc3\xa9\n\xff",
	  .peer = "10.0.0.4:40003",
	  .start_time = 1700000300,
	  .msgs_in = 30,
	  .bytes_in = 3000,
	  .ring_size = 1u << 20,
	  .peer_ring = 1u << 20 },
};
#define NCONNS (sizeof(fake_conns) / sizeof(fake_conns[0]))

/* How often the monitor asked: one snapshot per request. */
struct fake {
	int server_calls; /* server() */
	int conns_calls; /* conns() */
	int conn_calls; /* conn() */
};

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
	s->max_conns = 1024;
	s->max_subs = 65536;
	s->max_msg = 65536;
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

/* The monitor and its fake source, for every test. */
struct fixture {
	struct fake fake; /* the counts */
	struct vbd_stats_source src; /* pointing at @fake */
	struct vbd_monitor *m; /* on 127.0.0.1, an ephemeral port */
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (fx == NULL)
		return -1;
	fx->src.server = fake_server;
	fx->src.conns = fake_conns_each;
	fx->src.conn = fake_conn;
	fx->src.arg = &fx->fake;
	if (vbd_monitor_create("127.0.0.1", 0, &fx->src, &fx->m) != VB_OK) {
		free(fx);
		return -1;
	}
	*state = fx;
	return 0;
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
	assert_true(jget_u64(o, "max_payload") == 65536);
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
	c = conn_at(o, 1);
	assert_true(jget_u64(c, "cid") == 5);
	assert_string_equal(jget_str(c, "name"), "we\"ird\\name");
	assert_string_equal(jget_str(c, "peer"), "10.0.0.3:40002");
	assert_string_equal(jget_str(c, "transport"), "tcp");
	assert_true(jget_u64(c, "drops") == 4);
	assert_true(jget_u64(c, "pending") == 17);
	assert_true(jget_u64(c, "ring_size") == 65536);
	assert_true(jget_u64(c, "peer_ring_size") == 262144);
	assert_string_equal(jget_str(c, "start"), "2023-11-14T22:16:40Z");
	assert_string_equal(jget_str(conn_at(o, 2), "name"), "caf\xc3\xa9\n?");
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
