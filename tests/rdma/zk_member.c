/*
 * zk_member.c - one member of a cluster's ZooKeeper membership
 * (daemon/zk.c), for tests/rdma/zk-membership.sh.
 *
 *   vb_zk_member [--session MS] URL ID DATA
 *
 * Joins the cluster at URL ("zk://HOST:PORT/PATH") as ID with DATA and runs
 * the module in an epoll loop, as verbusd does.  Every event is one line on
 * stdout, stamped with CLOCK_REALTIME in ms so that a script can time it:
 *
 *   <ms> <ID> members <N>: <id>=<data> ...     the list changed
 *   <ms> <ID> state up|down: <why>             the session went up or down
 *   <ms> <ID> registered|unregistered          our node is ours, or not
 *   <ms> <ID> leaving                          SIGTERM or SIGINT: destroy
 *
 * Data is printed escaped (core/log.h), so a line is always one line.  The
 * module's log goes to stderr.  Exits 0 after a signal, 1 on a bad start.
 */
#include "core/log.h"
#include "daemon/zk.h"

#include <verbus/verbus.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

static const char *self;

static long long wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_members(void *arg, const struct vbd_zk_member *m, size_t n)
{
	char esc[VBI_LOG_ESCAPE_MAX];
	size_t i;

	(void)arg;
	printf("%lld %s members %zu:", wall_ms(), self, n);
	for (i = 0; i < n; i++) {
		vbi_log_escape(esc, sizeof(esc), m[i].data, m[i].data_len);
		printf(" %s=%s", m[i].id, esc);
	}
	printf("\n");
}

static void on_state(void *arg, bool up, const char *why)
{
	(void)arg;
	printf("%lld %s state %s: %s\n", wall_ms(), self, up ? "up" : "down",
	       why);
}

static int usage(void)
{
	fprintf(stderr, "usage: vb_zk_member [--session MS] URL ID DATA\n");
	return 1;
}

int main(int argc, char **argv)
{
	struct vbd_zk_cbs cbs = { .members = on_members, .state = on_state };
	char hosts[1024], path[512];
	struct epoll_event ev = { .events = EPOLLIN };
	struct vbd_zk_stats st;
	struct vbd_zk *zk = NULL;
	unsigned session = 2000;
	bool registered = false;
	int ep = -1, sfd = -1, status = 1, a = 1;
	sigset_t sigs;

	if (argc > 2 && strcmp(argv[1], "--session") == 0) {
		session = (unsigned)strtoul(argv[2], NULL, 10);
		a = 3;
	}
	if (argc - a != 3)
		return usage();
	self = argv[a + 1];
	setvbuf(stdout, NULL, _IOLBF, 0);
	vbi_log_set(vbi_log_stderr, NULL, VBI_LOG_INFO);
	if (vbd_zk_url_parse(argv[a], hosts, sizeof(hosts), path,
			     sizeof(path)) != VB_OK)
		return 1;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (sfd < 0 || ep < 0) {
		perror("signalfd/epoll_create1");
		goto out_close;
	}
	if (vbd_zk_create(hosts, path, session, self, argv[a + 2],
			  strlen(argv[a + 2]), &cbs, NULL, &zk) != VB_OK)
		goto out_close;
	ev.data.u32 = 0;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, vbd_zk_fd(zk), &ev) < 0)
		goto out_destroy;
	ev.data.u32 = 1;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev) < 0)
		goto out_destroy;
	for (;;) {
		struct epoll_event got[2];
		int n = epoll_wait(ep, got, 2, vbd_zk_timeout_ms(zk)), i;

		if (n < 0 && errno != EINTR) {
			perror("epoll_wait");
			goto out_destroy;
		}
		for (i = 0; i < n; i++)
			if (got[i].data.u32 == 1)
				goto out_leave;
		vbd_zk_process(zk);
		vbd_zk_stats(zk, &st);
		if (st.registered != registered) {
			registered = st.registered;
			printf("%lld %s %s\n", wall_ms(), self,
			       registered ? "registered" : "unregistered");
		}
	}
out_leave:
	printf("%lld %s leaving\n", wall_ms(), self);
	status = 0;
out_destroy:
	if (zk) {
		vbd_zk_stats(zk, &st);
		fprintf(stderr,
			"%s: connects %llu, disconnects %llu, expiries %llu, "
			"registrations %llu, member lists %llu\n",
			self, (unsigned long long)st.connects,
			(unsigned long long)st.disconnects,
			(unsigned long long)st.expiries,
			(unsigned long long)st.registrations,
			(unsigned long long)st.member_changes);
		epoll_ctl(ep, EPOLL_CTL_DEL, vbd_zk_fd(zk), NULL);
	}
	vbd_zk_destroy(zk);
out_close:
	if (ep >= 0)
		close(ep);
	if (sfd >= 0)
		close(sfd);
	return status;
}
