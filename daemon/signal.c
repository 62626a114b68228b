/*
 * signal.c - `verbusd --signal` (see signal.h).
 */
#include "daemon/signal.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FOUND_MAX 16 /* verbusd processes listed in an error */

static const struct {
	const char *name;
	int sig;
} names[] = {
	{ "reload", SIGHUP },
	{ "stop", SIGTERM },
	{ "ldm", SIGUSR2 },
};

/* A decimal process id > 0 (the whole of @s, @len bytes). */
static int read_pid(const char *s, size_t len, pid_t *pid)
{
	char buf[24];
	char *end;
	long v;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (buf[0] < '0' || buf[0] > '9')
		return -1;
	errno = 0;
	v = strtol(buf, &end, 10);
	if (errno || *end || v <= 0 || v != (pid_t)v)
		return -1;
	*pid = (pid_t)v;
	return 0;
}

int vbd_signal_parse(const char *arg, int *sig, pid_t *pid, char *err,
		     size_t errlen)
{
	const char *eq = strchr(arg, '=');
	size_t n = eq ? (size_t)(eq - arg) : strlen(arg);

	*pid = 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strlen(names[i].name) != n ||
		    strncmp(arg, names[i].name, n))
			continue;
		*sig = names[i].sig;
		if (eq && read_pid(eq + 1, strlen(eq + 1), pid)) {
			snprintf(err, errlen,
				 "--signal %s: '%s' is not a process id", arg,
				 eq + 1);
			return -1;
		}
		return 0;
	}
	snprintf(err, errlen,
		 "--signal %s: expected reload, stop or ldm, each with an "
		 "optional =PID",
		 arg);
	return -1;
}

/* The process id in the pid file @path, or -1 with the reason said. */
static int pid_from_file(const char *path, pid_t *pid)
{
	char buf[32];
	size_t n;
	FILE *f = fopen(path, "r");

	if (!f) {
		fprintf(stderr,
			"verbusd: --signal: cannot read the pid file "
			"%s: %s (is verbusd running?)\n",
			path, strerror(errno));
		return -1;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	n = strcspn(buf, "\r\n");
	if (read_pid(buf, n, pid)) {
		fprintf(stderr,
			"verbusd: --signal: the pid file %s holds no process "
			"id\n",
			path);
		return -1;
	}
	return 0;
}

/* The only other process named verbusd, or -1 with the reason said. */
static int pid_from_proc(pid_t *pid)
{
	pid_t found[FOUND_MAX], self = getpid(), p;
	size_t nfound = 0, more = 0;
	struct dirent *d;
	char path[64], comm[32];
	DIR *dir = opendir("/proc");

	if (!dir) {
		fprintf(stderr, "verbusd: --signal: cannot read /proc: %s\n",
			strerror(errno));
		return -1;
	}
	while ((d = readdir(dir))) {
		FILE *f;
		size_t n;

		if (read_pid(d->d_name, strlen(d->d_name), &p) || p == self)
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", d->d_name);
		f = fopen(path, "r");
		if (!f)
			continue; /* gone meanwhile */
		n = fread(comm, 1, sizeof(comm) - 1, f);
		fclose(f);
		comm[n] = '\0';
		comm[strcspn(comm, "\n")] = '\0';
		if (strcmp(comm, "verbusd"))
			continue;
		if (nfound < FOUND_MAX)
			found[nfound++] = p;
		else
			more++;
	}
	closedir(dir);
	if (nfound == 1) {
		*pid = found[0];
		return 0;
	}
	if (nfound == 0) {
		fprintf(stderr, "verbusd: --signal: no verbusd is running\n");
		return -1;
	}
	fprintf(stderr,
		"verbusd: --signal: %zu verbusd processes are running; say "
		"which (--signal NAME=PID, or --pid-file):",
		nfound + more);
	for (size_t i = 0; i < nfound; i++)
		fprintf(stderr, " %ld", (long)found[i]);
	fprintf(stderr, "%s\n", more ? " ..." : "");
	return -1;
}

int vbd_signal_send(const char *arg, const char *pid_file)
{
	char err[160];
	pid_t pid;
	int sig;

	if (vbd_signal_parse(arg, &sig, &pid, err, sizeof(err))) {
		fprintf(stderr, "verbusd: %s\n", err);
		return 2;
	}
	if (!pid && pid_file && pid_file[0] && pid_from_file(pid_file, &pid))
		return 1;
	if (!pid && pid_from_proc(&pid))
		return 1;
	if (kill(pid, sig)) {
		fprintf(stderr, "verbusd: --signal: process %ld: %s\n",
			(long)pid,
			errno == ESRCH ? "no such process" :
			errno == EPERM ? "permission denied (run as its user "
					 "or root)" :
					 strerror(errno));
		return 1;
	}
	return 0;
}
