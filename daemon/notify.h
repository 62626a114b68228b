/*
 * notify.h - verbusd and its service manager: sd_notify(3) readiness,
 * shutdown, reload and watchdog messages.
 *
 * Under systemd with Type=notify, systemd counts the service as started
 * only when it says READY=1, so that units ordered after it (and
 * `systemctl start`) wait until clients can connect; STOPPING=1 tells it
 * a shutdown has begun, RELOADING=1 that a reload has (followed by READY=1
 * when it is done), and with WatchdogSec= it expects WATCHDOG=1 at least
 * that often or kills and restarts the service.  Every message goes
 * through libsystemd (sd_notify(3)), which knows the protocol's details:
 * the socket in $NOTIFY_SOCKET, abstract socket names, the credentials a
 * datagram must carry.
 *
 * Without $NOTIFY_SOCKET (not started by systemd, or Type= is not notify)
 * every function is a no-op.  A message that cannot be sent is logged
 * once (a warning; an error for READY=1, without which systemd fails the
 * start after TimeoutStartSec=) and the daemon carries on.
 *
 * Threading: the daemon's event-loop thread only (the watchdog's pace is
 * module state); none of these blocks beyond one datagram.
 */
#ifndef VERBUS_DAEMON_NOTIFY_H
#define VERBUS_DAEMON_NOTIFY_H

#include <stdint.h>

/*
 * vbd_notify_ready() - READY=1, with @status (NULL: none) as STATUS=, the
 * line `systemctl status` shows: call once every listener and the monitor
 * are up, and again after a reload (vbd_notify_reloading()) has finished.
 */
void vbd_notify_ready(const char *status);

/*
 * vbd_notify_stopping() - STOPPING=1 and STATUS=shutting down: a shutdown
 * (the drain) has begun.  Only the first call sends anything, so the loop
 * may call it on every turn of a shutdown.
 */
void vbd_notify_stopping(void);

/*
 * vbd_notify_reloading() - RELOADING=1 (with MONOTONIC_USEC=, which
 * systemd 253's Type=notify-reload asks for): a reload of the
 * configuration has begun.  Call vbd_notify_ready() when it is done,
 * applied or refused: systemd holds the unit in "reloading" until then.
 */
void vbd_notify_reloading(void);

/*
 * vbd_notify_watchdog_ms() - the watchdog interval systemd set
 * (WatchdogSec=, passed in $WATCHDOG_USEC for this process), in ms; 0 if
 * none.  Read from the environment at the first call and kept.
 */
uint64_t vbd_notify_watchdog_ms(void);

/*
 * vbd_notify_watchdog() - WATCHDOG=1 if the watchdog is on and half its
 * interval has passed since the last ping (@now_ms: any monotonic clock
 * in ms, the same at every call).  Call it from every turn of the event
 * loop, after the broker's progress: a loop that stops turning stops the
 * pings, and systemd kills and restarts the broker (Restart=on-failure).
 */
void vbd_notify_watchdog(uint64_t now_ms);

#endif /* VERBUS_DAEMON_NOTIFY_H */
