/*
 * Unit tests for verbusd's messages to systemd (daemon/notify.c): the
 * test is the service manager, a datagram socket named in $NOTIFY_SOCKET,
 * and reads what libsystemd sends there.
 */
#include "daemon/notify.h"

#include "core/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

/* A service manager's socket: a path, or (@abstract) an abstract name. */
static int manager_socket(char *env, size_t envlen, bool abstract)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	assert_true(fd >= 0);
	if (abstract) {
		/* "@name" in $NOTIFY_SOCKET is "\0name" in sun_path. */
		snprintf(env, envlen, "@verbus-test-notify-%d", (int)getpid());
		memcpy(sa.sun_path + 1, env + 1, strlen(env + 1));
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
				  strlen(env + 1));
	} else {
		snprintf(env, envlen, "/tmp/verbus-test-notify-%d.sock",
			 (int)getpid());
		unlink(env);
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", env);
		len = sizeof(sa);
	}
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, len), 0);
	assert_int_equal(setenv("NOTIFY_SOCKET", env, 1), 0);
	return fd;
}

/* The next datagram, or "" if none is waiting. */
static const char *next_msg(int fd)
{
	static char buf[1024];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);

	if (n < 0) {
		assert_int_equal(errno, EAGAIN);
		n = 0;
	}
	buf[n] = '\0';
	return buf;
}

static void close_manager(int fd, const char *env)
{
	close(fd);
	if (env[0] == '/')
		unlink(env);
	unsetenv("NOTIFY_SOCKET");
}

struct capture {
	int lines;
	enum vbi_log_level level;
	char last[600];
};

static void capture_fn(void *arg, enum vbi_log_level level, const char *line)
{
	struct capture *c = arg;

	c->lines++;
	c->level = level;
	snprintf(c->last, sizeof(c->last), "%s", line);
}

/* READY=1 with its STATUS=, STOPPING=1 once, RELOADING=1 with a time. */
static void test_notify_messages(void **state)
{
	char env[108];
	int fd = manager_socket(env, sizeof(env), false);
	const char *m;

	(void)state;
	vbd_notify_ready("listening on tcp://127.0.0.1:7700");
	assert_string_equal(
		next_msg(fd),
		"READY=1\nSTATUS=listening on tcp://127.0.0.1:7700");
	vbd_notify_ready(NULL);
	assert_string_equal(next_msg(fd), "READY=1");
	vbd_notify_reloading();
	m = next_msg(fd);
	assert_true(strncmp(m, "RELOADING=1\n", 12) == 0);
	assert_non_null(strstr(m, "\nMONOTONIC_USEC="));
	vbd_notify_stopping();
	assert_string_equal(
		next_msg(fd),
		"STOPPING=1\nSTATUS=shutting down: draining clients");
	/* Every turn of a shutdown calls it: only the first is sent. */
	vbd_notify_stopping();
	vbd_notify_stopping();
	assert_string_equal(next_msg(fd), "");
	close_manager(fd, env);
}

/* systemd's abstract sockets ("@name"), as libsystemd reads them. */
static void test_notify_abstract_socket(void **state)
{
	char env[108];
	int fd = manager_socket(env, sizeof(env), true);

	(void)state;
	vbd_notify_ready("up");
	assert_string_equal(next_msg(fd), "READY=1\nSTATUS=up");
	close_manager(fd, env);
}

/* Not under systemd: nothing sent, nothing logged. */
static void test_notify_no_socket(void **state)
{
	struct capture c = { 0 };
	char env[108];
	int fd = manager_socket(env, sizeof(env), false);

	(void)state;
	unsetenv("NOTIFY_SOCKET");
	vbi_log_set(capture_fn, &c, VBI_LOG_DEBUG);
	vbd_notify_ready("up");
	vbd_notify_watchdog(1000000);
	assert_string_equal(next_msg(fd), "");
	assert_int_equal(c.lines, 0);
	vbi_log_set(NULL, NULL, VBI_LOG_INFO);
	close_manager(fd, env);
}

/* A socket that is not there: an error for READY=1, which systemd waits
 * for; a warning at most once for the rest. */
static void test_notify_unreachable(void **state)
{
	struct capture c = { 0 };

	(void)state;
	setenv("NOTIFY_SOCKET", "/nonexistent/verbus-notify.sock", 1);
	vbi_log_set(capture_fn, &c, VBI_LOG_DEBUG);
	vbd_notify_reloading();
	assert_int_equal(c.lines, 1);
	assert_int_equal(c.level, VBI_LOG_WARN);
	assert_non_null(strstr(c.last, "cannot notify the service manager"));
	vbd_notify_reloading();
	assert_int_equal(c.lines, 1);
	vbd_notify_ready("up");
	assert_int_equal(c.lines, 2);
	assert_int_equal(c.level, VBI_LOG_ERR);
	assert_non_null(strstr(c.last, "TimeoutStartSec"));
	vbi_log_set(NULL, NULL, VBI_LOG_INFO);
	unsetenv("NOTIFY_SOCKET");
}

/*
 * WatchdogSec=2s: $WATCHDOG_USEC 2000000 for this process; a ping every
 * second of the loop's clock, none in between.  (The interval is read
 * once per process: this test sets it before anything asks.)
 */
static void test_notify_watchdog(void **state)
{
	char env[108], pid[32];
	int fd = manager_socket(env, sizeof(env), false);

	(void)state;
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("WATCHDOG_USEC", "2000000", 1);
	setenv("WATCHDOG_PID", pid, 1);
	assert_int_equal(vbd_notify_watchdog_ms(), 2000);
	vbd_notify_watchdog(5000);
	assert_string_equal(next_msg(fd), "WATCHDOG=1");
	vbd_notify_watchdog(5001);
	vbd_notify_watchdog(5999);
	assert_string_equal(next_msg(fd), "");
	vbd_notify_watchdog(6000);
	assert_string_equal(next_msg(fd), "WATCHDOG=1");
	/* A loop that was away long: one ping when it is back, not many. */
	vbd_notify_watchdog(60000);
	vbd_notify_watchdog(60001);
	assert_string_equal(next_msg(fd), "WATCHDOG=1");
	assert_string_equal(next_msg(fd), "");
	/* Read once: a change of the environment later changes nothing. */
	setenv("WATCHDOG_USEC", "10000", 1);
	assert_int_equal(vbd_notify_watchdog_ms(), 2000);
	close_manager(fd, env);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_notify_watchdog),
		cmocka_unit_test(test_notify_messages),
		cmocka_unit_test(test_notify_abstract_socket),
		cmocka_unit_test(test_notify_no_socket),
		cmocka_unit_test(test_notify_unreachable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
