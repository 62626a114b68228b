/*
 * logsink.h - where verbusd's log lines go: the journal, natively, when
 * stderr is connected to it; otherwise stderr, each line stamped with the
 * time.
 *
 * The library's logging (core/log.h) is not touched: it stays silent
 * unless an application installs a sink, and core/ knows nothing of
 * systemd.  These are the daemon's sinks, installed with vbi_log_set().
 *
 * Under systemd, a service's stderr is a stream into the journal and
 * $JOURNAL_STREAM names it ("DEV:INODE" of that socket).  A line sent
 * there gets the time from journald and a priority only from a "<N>"
 * prefix; sent natively (sd_journal_send(3)) it carries PRIORITY= and
 * fields of its own.  The variable is inherited by children, so it is
 * trusted only if it names the stderr this process has: verbusd started
 * from a shell inside a service, its stderr redirected to a file, writes
 * to the file, with times.
 *
 * Threading: the sinks may be called from any thread (each line is one
 * write or one datagram); vbd_logsink_install() at start-up only.
 */
#ifndef VERBUS_DAEMON_LOGSINK_H
#define VERBUS_DAEMON_LOGSINK_H

#include "core/log.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* "2026-12-04T09:15:02.123Z": ISO-8601, UTC, milliseconds, and the NUL. */
#define VBD_LOG_STAMP_MAX 25

/*
 * vbd_logsink_is_journal() - does @journal_stream (the value of
 * $JOURNAL_STREAM, "DEV:INODE" in decimal; NULL: unset) name the file that
 * @fd is?  False for anything malformed, or if @fd cannot be fstat()ed.
 */
bool vbd_logsink_is_journal(const char *journal_stream, int fd);

/*
 * vbd_logsink_stamp() - @ts (CLOCK_REALTIME) as "YYYY-MM-DDTHH:MM:SS.mmmZ"
 * into @buf of @size bytes (at least VBD_LOG_STAMP_MAX).  Returns the
 * length written, or 0 (and an empty string, if @size > 0) if it did not
 * fit or the time cannot be represented.
 */
size_t vbd_logsink_stamp(char *buf, size_t size, const struct timespec *ts);

/*
 * vbd_logsink_stderr() - a vbi_log_fn: "TIME LEVEL: line\n" on stderr in
 * one write, TIME as vbd_logsink_stamp() writes it.  @arg is unused.
 */
void vbd_logsink_stderr(void *arg, enum vbi_log_level level, const char *line);

/*
 * vbd_logsink_journal() - a vbi_log_fn: the line sent to the journal
 * natively, with MESSAGE="LEVEL: line", PRIORITY= (3 for err to 7 for
 * debug), SYSLOG_IDENTIFIER= (the program's name, as for what it writes to
 * stderr) and VERBUS_LEVEL=.  If the journal refuses it (an error other
 * than a missing socket, which libsystemd ignores), the line goes to
 * stderr with its "<N>" prefix instead (vbi_log_journal), so nothing is
 * lost that stderr can still carry.
 */
void vbd_logsink_journal(void *arg, enum vbi_log_level level, const char *line);

/*
 * vbd_logsink_install() - install, for lines up to @max_level: if stderr
 * is the journal's stream ($JOURNAL_STREAM), the journal sink; if it is
 * but the journal's socket is not there, or the service logs to a journal
 * namespace ($LOG_NAMESPACE, which sd_journal_send() cannot reach), the
 * stream itself with "<N>" prefixes (vbi_log_journal); otherwise the
 * stamped stderr sink.  Returns "journal", "journal stream" or "stderr".
 */
const char *vbd_logsink_install(enum vbi_log_level max_level);

#endif /* VERBUS_DAEMON_LOGSINK_H */
