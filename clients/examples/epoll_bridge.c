/*
 * epoll_bridge.c - libverbus inside a plain epoll loop, beside a TCP
 * listener: a line "SUBJECT TEXT" from any TCP client is published; every
 * message matching PATTERN is written to every TCP client as
 * "SUBJECT TEXT\n".
 *
 *   epoll_bridge URL SOURCE-ADDR TCP-PORT PATTERN
 *
 * The whole program is one thread and one epoll_wait: the library's
 * vb_fd() is just another file descriptor, and vb_process() never blocks.
 * Prints "ready" once the subscription is in force, and greets each TCP
 * client with "welcome".
 */
#include <verbus/verbus.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CLIENTS 64

struct client {
	int fd;
	char buf[4096];
	size_t len;
};

static struct client clients[MAX_CLIENTS];

static void on_msg(struct vb_conn *c, const struct vb_msg *m, void *arg)
{
	char line[4096];
	int n;

	(void)c;
	(void)arg;
	n = snprintf(line, sizeof(line), "%.*s %.*s\n", (int)m->subject_len,
		     m->subject, (int)m->size, (const char *)m->data);
	if (n >= (int)sizeof(line))
		n = sizeof(line) - 1;
	/* A reader too slow to take a line loses it: this is a demo. */
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (clients[i].fd > 0 &&
		    write(clients[i].fd, line, (size_t)n) < 0)
			fprintf(stderr, "bridge: tcp client: %s\n",
				strerror(errno));
}

static void on_event(struct vb_conn *c, const struct vb_event *ev, void *arg)
{
	(void)c;
	(void)arg;
	if (ev->type != VB_EV_WRITABLE)
		fprintf(stderr, "bridge: event %d: %s (%s)\n", ev->type,
			ev->detail, vb_strerror(ev->err));
}

/* Publish each complete line a TCP client sent. */
static void client_input(struct vb_conn *vb, struct client *cl)
{
	char *nl, *sp;
	ssize_t n;
	int rc;

	n = read(cl->fd, cl->buf + cl->len, sizeof(cl->buf) - cl->len - 1);
	if (n <= 0) {
		close(cl->fd);
		cl->fd = 0;
		return;
	}
	cl->len += (size_t)n;
	cl->buf[cl->len] = '\0';
	while ((nl = strchr(cl->buf, '\n'))) {
		*nl = '\0';
		sp = strchr(cl->buf, ' ');
		if (sp) {
			*sp = '\0';
			rc = vb_publish(vb, cl->buf, sp + 1, strlen(sp + 1));
			if (rc)
				dprintf(cl->fd, "error: %s\n", vb_strerror(rc));
		}
		cl->len -= (size_t)(nl + 1 - cl->buf);
		memmove(cl->buf, nl + 1, cl->len + 1);
	}
	if (cl->len == sizeof(cl->buf) - 1)
		cl->len = 0; /* a line too long: dropped */
}

int main(int argc, char **argv)
{
	struct vb_opts o = VB_OPTS_INIT;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct epoll_event ev = { .events = EPOLLIN }, evs[16];
	struct vb_conn *vb;
	int ep, lfd, one = 1, rc;

	if (argc != 5) {
		fprintf(stderr, "usage: epoll_bridge URL SOURCE TCP-PORT "
				"PATTERN\n");
		return 2;
	}
	o.name = "epoll-bridge";
	o.source = argv[2];
	o.on_event = on_event;
	rc = vb_connect(argv[1], &o, &vb);
	if (rc) {
		fprintf(stderr, "bridge: %s: %s\n", argv[1], vb_strerror(rc));
		return 1;
	}
	if ((rc = vb_subscribe(vb, argv[4], NULL, on_msg, NULL, NULL)) ||
	    (rc = vb_flush(vb, 5000))) {
		fprintf(stderr, "bridge: subscribe: %s\n", vb_strerror(rc));
		return 1;
	}

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sa.sin_port = htons((uint16_t)atoi(argv[3]));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 8)) {
		perror("bridge: tcp");
		return 1;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev.data.fd = lfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	ev.data.fd = vb_fd(vb);
	epoll_ctl(ep, EPOLL_CTL_ADD, vb_fd(vb), &ev);
	printf("ready\n");
	fflush(stdout);

	for (;;) {
		int n = epoll_wait(ep, evs, 16, -1);

		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (fd == vb_fd(vb)) {
				if (vb_process(vb) == VB_ECLOSED)
					goto out;
			} else if (fd == lfd) {
				int cfd = accept(lfd, NULL, NULL);

				for (int k = 0; cfd >= 0 && k < MAX_CLIENTS;
				     k++) {
					if (clients[k].fd > 0)
						continue;
					clients[k].fd = cfd;
					clients[k].len = 0;
					ev.data.fd = cfd;
					epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev);
					dprintf(cfd, "welcome\n");
					cfd = -1;
				}
				if (cfd >= 0)
					close(cfd); /* full */
			} else {
				for (int k = 0; k < MAX_CLIENTS; k++)
					if (clients[k].fd == fd)
						client_input(vb, &clients[k]);
			}
		}
	}
out:
	vb_close(vb);
	return 0;
}
