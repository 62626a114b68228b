/* libFuzzer target: the TCP transport's record stream as a hostile client
 * writes it (transport/tcp.c over the session, PROTOCOL.md "Over TCP").
 * One server, listening on 127.0.0.1 for the whole run; per input a real
 * connection that sends the version record and a valid Hello (a 64 KiB
 * ring, 16 credits, 4 KiB messages), then the input as it is: record
 * headers, control messages, DATA records of frames, lies about lengths
 * and credits, all through the real socket and read by the real epoll
 * loop, whose deliveries are released at once.  Once the server is idle
 * the client ends its stream, reading whatever the server says.  The server must close the connection (an end of stream, or a
 * protocol error) within the bound of turns: a crash, a sanitizer report,
 * a leak or a connection the server never closes is a finding. */
#include "core/log.h"
#include "proto/codec.h"
#include "transport/transport.h"

#include <verbus/verbus.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define REC_HDR 12u
#define TURNS 4000 /* progress turns before a connection counts as hung */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vbi_tp *tp;
static uint16_t port;
static bool closed;

static void on_message(struct vbi_conn *c, const struct vbi_frame_view *v,
		       void *arg)
{
	(void)arg;
	vbi_conn_release(c, v);
}

static void on_closed(struct vbi_conn *c, const struct vbi_close_info *why,
		      void *arg)
{
	(void)c;
	(void)why;
	(void)arg;
	closed = true;
}

static const struct vbi_conn_cbs cbs = {
	.message = on_message,
	.closed = on_closed,
};

/* The server, once: a port of 127.0.0.1 that is free. */
static void setup(void)
{
	struct vbi_conn_opts o = {
		.name = "fuzz",
		.ring_size = 65536,
		.max_msg = 4096,
		.recv_depth = 16,
	};
	struct vbi_listener *l;
	char p[8];

	/* Silent, unless $VERBUS_FUZZ_LOG asks (for triage of a finding). */
	if (getenv("VERBUS_FUZZ_LOG"))
		vbi_log_set(vbi_log_stderr, NULL, VBI_LOG_DEBUG);
	else
		vbi_log_set(NULL, NULL, VBI_LOG_ERR);
	if (vbi_tp_create("tcp", &tp))
		abort();
	for (unsigned i = 0; i < 200; i++) {
		port = (uint16_t)(20000 +
				  ((unsigned)getpid() * 7919u + i * 131u) %
					  30000u);
		snprintf(p, sizeof(p), "%u", port);
		if (vbi_tp_listen(tp, "127.0.0.1", p, &o, &cbs, NULL, &l) ==
		    VB_OK)
			return;
	}
	abort();
}

/* The version record and a Hello record: what every input follows. */
static size_t prefix(uint8_t *buf, size_t cap)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__Hello h = VERBUS__HELLO__INIT;
	Verbus__RingInfo r = VERBUS__RING_INFO__INIT;
	uint32_t v;
	size_t len;

	vbi_cm_hdr_encode(buf);
	r.addr = 1;
	r.size = 65536;
	h.version = VBI_PROTO_VERSION;
	h.name = (char *)"fuzz";
	h.ring = &r;
	h.max_msg_size = 4096;
	h.credits = 16;
	m.body_case = VERBUS__CONTROL__BODY_HELLO;
	m.hello = &h;
	if (vbi_codec_encode(&m, buf + VBI_CM_HDR_LEN + REC_HDR,
			     cap - VBI_CM_HDR_LEN - REC_HDR, &len))
		abort();
	v = htonl(2); /* CTRL */
	memcpy(buf + VBI_CM_HDR_LEN, &v, 4);
	v = 0;
	memcpy(buf + VBI_CM_HDR_LEN + 4, &v, 4);
	v = htonl((uint32_t)len);
	memcpy(buf + VBI_CM_HDR_LEN + 8, &v, 4);
	return VBI_CM_HDR_LEN + REC_HDR + len;
}

/* libFuzzer's timer (SIGALRM, for -timeout) interrupts blocking calls:
 * they are carried on, never taken for a failure. */
static int send_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	ssize_t n;

	while (len) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int connect_to(int fd, const struct sockaddr_in *sa)
{
	struct pollfd pf = { .fd = fd, .events = POLLOUT };
	socklen_t len = sizeof(int);
	int err = 0;

	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
		return 0;
	if (errno != EINTR)
		return -1;
	/* The connection goes on in the kernel: wait for its outcome. */
	while (poll(&pf, 1, -1) < 0 && errno == EINTR)
		;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
		errno = err;
		return -1;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t pre[VBI_CM_HDR_LEN + REC_HDR + VBI_CTRL_MAX];
	static size_t npre;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct sockaddr_in src = { .sin_family = AF_INET };
	static uint32_t nconn;
	uint8_t sink[65536];
	int fd, turns, idle;

	if (!tp) {
		setup();
		npre = prefix(pre, sizeof(pre));
	}
	if (size > 60000)
		return -1; /* more than the socket takes before it is read */
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* Each connection from its own address of 127.0.0.0/8: 100,000
	 * connections a minute from one address would reuse its ephemeral
	 * ports while the last minute's closes are in TIME_WAIT, and
	 * connect() would fail (the harness's failure, not a finding). */
	src.sin_addr.s_addr = htonl(0x7f000002u + nconn++ % 0xfffff0u);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&src, sizeof(src)) ||
	    connect_to(fd, &sa) || send_all(fd, pre, npre) ||
	    send_all(fd, data, size)) {
		perror("fuzz_tcp: the harness's connection");
		abort();
	}
	/* The server takes the input in and delivers what it holds before
	 * the stream ends (an end of stream read with the records would
	 * close it before a frame is parsed), then sees the end. */
	closed = false;
	for (turns = 0, idle = 0; turns < TURNS && !closed && idle < 3;
	     turns++) {
		idle = vbi_tp_progress(tp, 1) > 0 ? 0 : idle + 1;
		while (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
			;
	}
	shutdown(fd, SHUT_WR);
	for (turns = 0; turns < TURNS && !closed; turns++) {
		vbi_tp_progress(tp, 1);
		while (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
			;
	}
	if (!closed)
		abort(); /* the server neither read to the end nor closed */
	close(fd);
	vbi_tp_progress(tp, 0); /* reaps the connection */
	return 0;
}
