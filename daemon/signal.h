/*
 * signal.h - `verbusd --signal reload|stop|ldm[=PID]`: send a running
 * verbusd SIGHUP (reload the configuration), SIGTERM (shut down) or SIGUSR2
 * (lame-duck mode), as `nats-server --signal` does.
 *
 * The process is PID if given; else the one whose id the pid file holds
 * (--pid-file or the configuration's pid_file); else the only process
 * named verbusd in /proc (more than one: an error listing them).
 *
 * Threading: none; a command-line tool's code, messages on stderr.
 */
#ifndef VERBUS_DAEMON_SIGNAL_H
#define VERBUS_DAEMON_SIGNAL_H

#include <stddef.h>
#include <sys/types.h>

/*
 * vbd_signal_parse() - read @arg ("reload", "stop", "ldm", each with an
 * optional "=PID") into *@sig and *@pid (0: none given).  Returns 0, or
 * -1 with the reason in @err.
 */
int vbd_signal_parse(const char *arg, int *sig, pid_t *pid, char *err,
		     size_t errlen);

/*
 * vbd_signal_send() - the whole of --signal @arg, with @pid_file ("":
 * none): an exit status, 0 once the signal was sent, 1 (no such process,
 * not allowed, none or several running) or 2 (@arg is not a signal), the
 * reason on stderr.
 */
int vbd_signal_send(const char *arg, const char *pid_file);

#endif /* VERBUS_DAEMON_SIGNAL_H */
