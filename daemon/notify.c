/*
 * notify.c - sd_notify(3) messages to the service manager (notify.h).
 *
 * Decisions: the pings of the watchdog come from the event loop itself
 * (vbd_notify_watchdog() on every turn), never from a thread or timer of
 * their own, since what the watchdog is to catch is exactly a loop that no
 * longer turns.  They go every half interval, as sd_watchdog_enabled(3)
 * advises, so one late turn does not get the broker killed.  $NOTIFY_SOCKET
 * and $WATCHDOG_USEC stay in the environment (sd_notify's unset_environment
 * is 0): verbusd starts no child that could misuse them.
 */
#include "daemon/notify.h"

#include "core/log.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

/* The watchdog: its interval (ms, 0: off), read once; the next ping due. */
static bool wd_known;
static uint64_t wd_ms;
static uint64_t wd_next;
/* STOPPING=1 was sent; a failure of some message was logged. */
static bool stopping_sent;
static bool failure_logged;

/* Send @msg; log the first failure (@ready: an error, systemd waits). */
static void notify(const char *msg, bool ready)
{
	int rc = sd_notify(0, msg);

	if (rc >= 0 || (failure_logged && !ready))
		return;
	failure_logged = true;
	vbi_log(ready ? VBI_LOG_ERR : VBI_LOG_WARN,
		"systemd: cannot notify the service manager ($NOTIFY_SOCKET): "
		"%s%s",
		strerror(-rc),
		ready ? "; systemd will count the start as failed after "
			"TimeoutStartSec=" :
			"");
}

void vbd_notify_ready(const char *status)
{
	char msg[512];

	if (status)
		snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", status);
	else
		snprintf(msg, sizeof(msg), "READY=1");
	notify(msg, true);
}

void vbd_notify_stopping(void)
{
	if (stopping_sent)
		return;
	stopping_sent = true;
	notify("STOPPING=1\nSTATUS=shutting down: draining clients", false);
}

void vbd_notify_reloading(void)
{
	struct timespec ts;
	char msg[128];

	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg),
		 "RELOADING=1\nSTATUS=reloading the configuration\n"
		 "MONOTONIC_USEC=%llu",
		 (unsigned long long)ts.tv_sec * 1000000ull +
			 (unsigned long long)ts.tv_nsec / 1000ull);
	notify(msg, false);
}

uint64_t vbd_notify_watchdog_ms(void)
{
	uint64_t usec = 0;

	if (!wd_known) {
		wd_known = true;
		/* > 0: on, for this process ($WATCHDOG_PID, if set). */
		if (sd_watchdog_enabled(0, &usec) > 0)
			wd_ms = usec / 1000 ? usec / 1000 : 1;
	}
	return wd_ms;
}

void vbd_notify_watchdog(uint64_t now_ms)
{
	if (vbd_notify_watchdog_ms() == 0 || now_ms < wd_next)
		return;
	wd_next = now_ms + (wd_ms / 2 ? wd_ms / 2 : 1);
	notify("WATCHDOG=1", false);
}
