/*
 * main.c - verbusd: the command line, the event loop, signals.
 *
 * One thread runs everything: the broker's transport fd, the monitoring
 * endpoint's fd and a signalfd share one epoll set, so no lock exists
 * anywhere in the daemon.  SIGTERM/SIGINT start a graceful shutdown (stop
 * accepting, drain what is queued, disconnect clients); a second signal, or
 * the drain deadline, ends it at once.  SIGHUP reloads the configuration
 * (daemon/reload.h), SIGUSR2 enters lame-duck mode (vbd_broker_lame_duck),
 * whose end is a shutdown as SIGTERM's.  `verbusd --signal` sends these
 * to a running verbusd (daemon/signal.c).
 */
#include "core/clock.h"
#include "core/log.h"
#include "daemon/broker.h"
#include "daemon/config.h"
#include "daemon/logsink.h"
#include "daemon/monitor.h"
#include "daemon/notify.h"
#include "daemon/reload.h"
#include "daemon/signal.h"
#include "transport/transport.h"

#include <verbus/verbus.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#define DRAIN_MS 5000 /* graceful shutdown: longest wait for clients */

static void usage(FILE *f)
{
	char schemes[128];

	vbi_transport_schemes(schemes, sizeof(schemes));
	fprintf(f,
		"usage: verbusd [options]\n"
		"\n"
		"The Verbus broker: publish/subscribe over RDMA.\n"
		"\n"
		"  -c, --config FILE     read settings from FILE (libconfig syntax;\n"
		"                        see /etc/verbus/verbusd.conf)\n"
		"  -l, --listen URL      where to accept clients,\n"
		"                        [SCHEME://]ADDR[:PORT], an IPv6 ADDR in\n"
		"                        brackets; no scheme: rdma; no port:\n"
		"                        --port's [rdma://0.0.0.0:7700]\n"
		"                        (schemes of this build: %s)\n"
		"      --listen-tcp URL  also accept clients over TCP or TLS,\n"
		"                        [tcp://]ADDR[:PORT] or tls://ADDR[:PORT]\n"
		"                        (no port: --port's); listen stays RDMA\n"
		"                        [none]\n"
		"      --tls-cert FILE   a tls listener's certificate chain (PEM)\n"
		"      --tls-key FILE    and its private key (PEM)\n"
		"      --tls-ca FILE     require client certificates signed by\n"
		"                        this CA (PEM) [none: not asked]\n"
		"  -p, --port PORT       port to accept clients on [7700]\n"
		"      --cluster zk://HOST:PORT[,HOST:PORT...]/PATH\n"
		"                        join the cluster whose members register\n"
		"                        in this ZooKeeper under PATH [none]\n"
		"      --cluster-name NAME   the cluster's name [verbus]\n"
		"      --cluster-id ID   this broker's id in it [server_name]\n"
		"      --cluster-listen URL  where other members open routes,\n"
		"                        SCHEME://ADDR:PORT\n"
		"      --cluster-advertise URL  where clients reach this broker\n"
		"                        [the listen URL]; the secret comes from\n"
		"                        cluster.secret or $VERBUSD_CLUSTER_SECRET\n"
		"  -m, --monitor ADDR:PORT   HTTP monitoring endpoint\n"
		"                        [127.0.0.1:8222]; port 0 disables it\n"
		"  -s, --set KEY=VALUE   any setting of the file, e.g.\n"
		"                        --set limits.max_conns=200\n"
		"                        --set slow_consumer.policy=drop\n"
		"  -v, --log-level LEVEL err, warn, info or debug [info]\n"
		"      --pid-file FILE   write the process id to FILE once\n"
		"                        listening (removed at exit) [none]\n"
		"      --signal SIGNAL[=PID]  send a running verbusd reload\n"
		"                        (SIGHUP), stop (SIGTERM) or ldm\n"
		"                        (lame duck, SIGUSR2) and exit: the\n"
		"                        process PID, else the one of the pid\n"
		"                        file (--pid-file, -c's pid_file),\n"
		"                        else the only verbusd running\n"
		"      --print-config    print the effective settings and exit\n"
		"      --hash-password   read a password on stdin, print the\n"
		"                        Argon2id string for authorization.users\n"
		"      --hash-token      read a token on stdin, print its\n"
		"                        token_sha256 for authorization.users\n"
		"  -V, --version         print the version and exit\n"
		"  -h, --help            this text\n"
		"\n"
		"Settings apply in order: defaults, the file, then the options.\n"
		"Sizes (limits.ring_size, limits.max_msg) are bytes, or digits\n"
		"and a unit: K, KB or KiB (1024), M, MB or MiB, G, GB or GiB,\n"
		"any case (64K, 1MiB), as the verbus tool reads them.  An ADDR\n"
		"is a name or IPv4 address, or an IPv6 address in brackets\n"
		"([::1]:8222; bare when no port follows).\n"
		"Each connection's ring and buffers are registered (locked)\n"
		"memory: RLIMIT_MEMLOCK (ulimit -l, systemd LimitMEMLOCK=)\n"
		"must allow them, or verbusd says so and stops (or refuses the\n"
		"connection).\n"

		"Logs go to stderr, one line per event, each starting with the\n"
		"time (ISO 8601, UTC, milliseconds); when stderr is the\n"
		"journal ($JOURNAL_STREAM), to the journal natively, with each\n"
		"line's priority.  Under systemd (Type=notify) verbusd reports\n"
		"READY=1 once it listens, STOPPING=1 when it shuts down, and\n"
		"pings the watchdog if WatchdogSec= is set.\n"
		"SIGTERM or SIGINT shut down gracefully (a second one at once).\n"
		"SIGHUP reloads the configuration (the file and these options\n"
		"again; an error keeps the running one).  SIGUSR2 enters\n"
		"lame-duck mode: clients are told to move, the rest closed over\n"
		"lame_duck_duration_ms, then verbusd exits.\n",
		schemes);
}

/* --hash-password, --hash-token: one line of stdin to a config entry. */
static int hash_stdin(bool password)
{
	char line[1024], out[256];
	size_t n;

	if (!fgets(line, sizeof(line), stdin)) {
		fprintf(stderr, "verbusd: nothing on stdin\n");
		return 2;
	}
	n = strcspn(line, "\r\n");
	line[n] = '\0';
	if (n == 0) {
		fprintf(stderr, "verbusd: empty secret\n");
		return 2;
	}
	if (password) {
		if (vbd_auth_hash_password(line, out, sizeof(out))) {
			fprintf(stderr, "verbusd: cannot hash\n");
			return 1;
		}
	} else {
		vbd_auth_hash_token(line, out);
	}
	printf("%s\n", out);
	return 0;
}

/* Settings from the command line, applied after the file. */
struct cli {
	const char *config;
	char *sets[64]; /* "key=value" */
	int nsets;
	int print_config;
	const char *signal; /* --signal's argument, or NULL */
};

static int parse_cli(int argc, char **argv, struct cli *o)
{
	static const struct option lo[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "listen-tcp", required_argument, NULL, 'L' },
		{ "tls-cert", required_argument, NULL, 'C' },
		{ "tls-key", required_argument, NULL, 'K' },
		{ "tls-ca", required_argument, NULL, 'A' },
		{ "port", required_argument, NULL, 'p' },
		{ "cluster", required_argument, NULL, 'Z' },
		{ "cluster-name", required_argument, NULL, 'N' },
		{ "cluster-id", required_argument, NULL, 'I' },
		{ "cluster-listen", required_argument, NULL, 'R' },
		{ "cluster-advertise", required_argument, NULL, 'U' },
		{ "monitor", required_argument, NULL, 'm' },
		{ "set", required_argument, NULL, 's' },
		{ "log-level", required_argument, NULL, 'v' },
		{ "pid-file", required_argument, NULL, 'F' },
		{ "signal", required_argument, NULL, 'S' },
		{ "print-config", no_argument, NULL, 'P' },
		{ "hash-password", no_argument, NULL, 'H' },
		{ "hash-token", no_argument, NULL, 'T' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static char buf[64][320];
	const char *key;
	int ch;

	while ((ch = getopt_long(argc, argv, "c:l:p:m:s:v:Vh", lo, NULL)) !=
	       -1) {
		key = NULL;
		switch (ch) {
		case 'c':
			o->config = optarg;
			continue;
		case 'l':
			key = "listen";
			break;
		case 'L':
			key = "listen_tcp";
			break;
		case 'C':
			key = "tls.cert";
			break;
		case 'K':
			key = "tls.key";
			break;
		case 'A':
			key = "tls.ca";
			break;
		case 'p':
			key = "port";
			break;
		case 'Z':
			key = "cluster.zookeeper";
			break;
		case 'N':
			key = "cluster.name";
			break;
		case 'I':
			key = "cluster.id";
			break;
		case 'R':
			key = "cluster.listen";
			break;
		case 'U':
			key = "cluster.advertise";
			break;
		case 'm':
			key = "monitor.listen";
			break;
		case 'v':
			key = "log.level";
			break;
		case 'F':
			key = "pid_file";
			break;
		case 'S':
			o->signal = optarg;
			continue;
		case 's':
			break;
		case 'P':
			o->print_config = 1;
			continue;
		case 'H':
		case 'T':
			exit(hash_stdin(ch == 'H'));
		case 'V':
			printf("verbusd %s\n", vb_version());
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
		if (o->nsets == 64) {
			fprintf(stderr, "verbusd: too many settings\n");
			return -1;
		}
		if (key)
			snprintf(buf[o->nsets], sizeof(buf[0]), "%s=%s", key,
				 optarg);
		else
			snprintf(buf[o->nsets], sizeof(buf[0]), "%s", optarg);
		o->sets[o->nsets] = buf[o->nsets];
		o->nsets++;
	}
	if (optind < argc) {
		fprintf(stderr, "verbusd: unexpected argument '%s'\n",
			argv[optind]);
		usage(stderr);
		return -1;
	}
	return 0;
}

/*
 * The configuration: defaults, the file, $VERBUSD_CLUSTER_SECRET, the
 * command line's settings (which a reload applies again, so that they keep
 * winning over the file), checked as a whole.  Returns 0, or -1 with the
 * reason in @err.
 */
static int load_config(const struct cli *o, struct vbd_config *cfg, char *err,
		       size_t errlen)
{
	const char *secret;
	char why[256];
	int i;

	vbd_config_defaults(cfg);
	if (o->config && vbd_config_load(cfg, o->config, err, errlen))
		return -1;
	/* Not a flag: the command line is visible to every user. */
	secret = getenv("VERBUSD_CLUSTER_SECRET");
	if (secret && *secret &&
	    vbd_config_set(cfg, "cluster.secret", secret, why, sizeof(why))) {
		snprintf(err, errlen, "$VERBUSD_CLUSTER_SECRET: %s", why);
		return -1;
	}
	for (i = 0; i < o->nsets; i++) {
		const char *eq = strchr(o->sets[i], '=');
		char key[320];

		if (!eq || (size_t)(eq - o->sets[i]) >= sizeof(key)) {
			snprintf(err, errlen, "--set %s: expected KEY=VALUE",
				 o->sets[i]);
			return -1;
		}
		memcpy(key, o->sets[i], (size_t)(eq - o->sets[i]));
		key[eq - o->sets[i]] = '\0';
		if (vbd_config_set(cfg, key, eq + 1, err, errlen))
			return -1;
	}
	return vbd_config_check(cfg, err, errlen) ? -1 : 0;
}

/* Logging at @level: under systemd, journald takes each line's level from
 * its prefix. */
/* The journal natively under systemd, else stderr with times (also at
 * each reload: the level may change). */
static void log_setup(int level)
{
	vbd_logsink_install((enum vbi_log_level)level);
}

/* The pid file, written once listening; removed at exit if written. */
static int pid_file_write(const char *path)
{
	char buf[32];
	int fd, n;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (write(fd, buf, (size_t)n) != n) {
		close(fd);
		unlink(path);
		return -1;
	}
	return close(fd);
}

static void report_fixed(void *ctx, const char *key, const char *running,
			 const char *asked)
{
	(void)ctx;
	vbi_warn("reload: %s cannot change live: keeping %s (the "
		 "configuration now says %s; restart verbusd for it)",
		 key, running, asked);
}

/* SIGHUP: read everything again; apply it, or refuse it whole. */
static void reload(const struct cli *o, struct vbd_config *cfg,
		   struct vbd_broker *b)
{
	struct vbd_config next;
	struct vbd_auth *auth = NULL;
	struct vbd_reload_result r;
	char err[512], changed[512];
	size_t fixed;

	vbi_info("reload: reading %s", o->config ? o->config : "(no file)");
	vbd_notify_reloading();
	if (load_config(o, &next, err, sizeof(err)) ||
	    (o->config && vbd_auth_load(o->config, &auth, err, sizeof(err)))) {
		vbi_err("reload refused: %s; the running configuration stays",
			err);
		vbd_broker_reload_failed(b);
		vbd_notify_ready("reload refused: the running configuration "
				 "stays");
		return;
	}
	fixed = vbd_config_keep_fixed(cfg, &next, report_fixed, NULL, changed,
				      sizeof(changed));
	/* The running fixed settings with the new live ones: checked as a
	 * whole again (lame_duck_grace_ms against its duration). */
	if (vbd_config_check(&next, err, sizeof(err))) {
		vbi_err("reload refused: %s; the running configuration stays",
			err);
		vbd_auth_destroy(auth);
		vbd_broker_reload_failed(b);
		vbd_notify_ready("reload refused: the running configuration "
				 "stays");
		return;
	}
	vbd_broker_reload(b, &next, auth, &r);
	vbd_notify_ready("configuration reloaded");
	*cfg = next;
	log_setup(cfg->log_level);
	vbi_info("reload: applied (users %zu -> %zu; %zu clients disconnected, "
		 "%zu subscriptions revoked; %s; %zu settings kept that cannot "
		 "change live)",
		 r.users_before, r.users_after, r.disconnected, r.subs_revoked,
		 changed[0] ? changed : "no other setting changed", fixed);
}

/* The STATUS= of READY=1: where clients and scrapers reach us. */
static void ready_status(const struct vbd_config *cfg,
			 const struct vbd_monitor *mon, char *buf, size_t size)
{
	char url[VBD_LISTEN_URL_MAX], tcp[VBD_LISTEN_URL_MAX];
	size_t n;

	vbd_config_listen_url(cfg, url, sizeof(url));
	n = (size_t)snprintf(buf, size, "listening on %s", url);
	if (n < size && vbd_config_listen_tcp_url(cfg, tcp, sizeof(tcp)))
		n += (size_t)snprintf(buf + n, size - n, " and %s", tcp);
	/* An IPv6 address in brackets, as in a URL. */
	if (n < size && mon)
		snprintf(buf + n, size - n, "; monitoring on http://%s%s%s:%u/",
			 strchr(cfg->monitor_addr, ':') ? "[" : "",
			 cfg->monitor_addr,
			 strchr(cfg->monitor_addr, ':') ? "]" : "",
			 vbd_monitor_port(mon));
}

static int add_fd(int ep, int fd, uint32_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = tag };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

enum { TAG_BROKER = 1, TAG_MONITOR, TAG_SIGNAL };

int main(int argc, char **argv)
{
	struct cli o = { 0 };
	struct vbd_config cfg;
	struct vbd_broker *b = NULL;
	struct vbd_auth *auth = NULL;
	struct vbd_monitor *mon = NULL;
	struct vbd_stats_source src;
	struct epoll_event evs[8];
	char url[VBD_LISTEN_URL_MAX], errbuf[512];
	bool pid_written = false;
	uint64_t deadline = 0;
	sigset_t sigs;
	int ep = -1, sfd = -1, rc, n, i, status = 1, work = 0;
	unsigned turn = 0; /* busy-polling: turns since the loop began */

	if (parse_cli(argc, argv, &o))
		return 2;
	if (load_config(&o, &cfg, errbuf, sizeof(errbuf))) {
		fprintf(stderr, "verbusd: %s\n", errbuf);
		if (!o.signal)
			return 2;
		/* --signal needs pid_file only: without it, the others. */
		fprintf(stderr, "verbusd: --signal: no pid_file read\n");
		cfg.pid_file[0] = '\0';
	}
	if (o.signal)
		return vbd_signal_send(o.signal, cfg.pid_file);
	if (o.print_config) {
		vbd_config_print(&cfg, stdout);
		return 0;
	}
	vbd_config_listen_url(&cfg, url, sizeof(url));
	log_setup(cfg.log_level);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGUSR2);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (sfd < 0 || ep < 0 || add_fd(ep, sfd, TAG_SIGNAL)) {
		vbi_err("cannot set up the event loop: %s", strerror(errno));
		goto out_close;
	}
	if (o.config) {
		char err[512];

		rc = vbd_auth_load(o.config, &auth, err, sizeof(err));
		if (rc) {
			vbi_err("%s", err);
			status = 2;
			goto out_close;
		}
	}
	rc = vbd_broker_create(&cfg, &b);
	if (rc) {
		vbi_err("cannot listen on %s: %s", url, vb_strerror(rc));
		vbd_auth_destroy(auth);
		goto out_close;
	}
	if (auth)
		vbi_info("authorization: %zu users in %zu accounts and the "
			 "global one; clients without valid credentials are "
			 "refused",
			 vbd_auth_users(auth), vbd_auth_accounts(auth));
	vbd_broker_set_auth(b, auth);
	if (add_fd(ep, vbd_broker_fd(b), TAG_BROKER))
		goto out_destroy;
	if (cfg.monitor_port) {
		vbd_broker_stats_source(b, &src);
		rc = vbd_monitor_create(cfg.monitor_addr, cfg.monitor_port,
					&src, &mon);
		if (rc) {
			vbi_err("cannot serve monitoring on %s:%u: %s",
				cfg.monitor_addr, cfg.monitor_port,
				vb_strerror(rc));
			goto out_destroy;
		}
		if (add_fd(ep, vbd_monitor_fd(mon), TAG_MONITOR))
			goto out_destroy;
	}
	vbi_info("verbusd %s listening on %s (ring %u, max message %u, "
		 "slow consumers: %s)",
		 vb_version(), url, cfg.ring_size, cfg.max_msg,
		 vbd_slow_policy_name(cfg.slow_policy));
	if (vbd_config_listen_tcp_url(&cfg, url, sizeof(url)))
		vbi_info("verbusd also listening on %s", url);
	if (mon)
		vbi_info("monitoring on http://%s:%u/", cfg.monitor_addr,
			 vbd_monitor_port(mon));
	if (cfg.pid_file[0]) {
		if (pid_file_write(cfg.pid_file)) {
			vbi_err("cannot write the pid file %s: %s",
				cfg.pid_file, strerror(errno));
			goto out_destroy;
		}
		pid_written = true;
	}
	/* Every listener and the monitor are up: systemd may now start the
	 * units that wait for us (Type=notify). */
	{
		char ready[2 * VBD_LISTEN_URL_MAX + 128];

		ready_status(&cfg, mon, ready, sizeof(ready));
		vbd_notify_ready(ready);
	}
	if (vbd_notify_watchdog_ms())
		vbi_info("systemd watchdog: a ping every %" PRIu64 " ms",
			 vbd_notify_watchdog_ms() / 2);

	for (;;) {
		int timeout = cfg.busy_poll ? 0 : 50, spun = 0, mt = -1;
		/* Busy-polling, signals and the monitor are looked at one
		 * turn in VBI_BUSY_LOOK_EVERY (progress reads the CQs
		 * directly every turn): no system call on most turns of the
		 * spin. */
		bool look =
			!cfg.busy_poll || (turn++ % VBI_BUSY_LOOK_EVERY) == 0;
		bool mon_due = false;

		if (mon && look) {
			mt = vbd_monitor_timeout(mon);
			if (mt >= 0 && mt < timeout)
				timeout = mt;
		}
		/* Adaptive polling: after a turn with work, the next message
		 * is likely close; catch it without a sleep and wake-up. */
		if (timeout && work > 0 && cfg.spin_us) {
			spun = vbd_broker_spin(b, cfg.spin_us);
			if (spun > 0)
				timeout = 0;
		}
		n = look ? epoll_wait(ep, evs, 8, timeout) : 0;
		if (n < 0 && errno != EINTR) {
			vbi_err("epoll_wait: %s", strerror(errno));
			break;
		}
		/* The monitor runs when its fd is ready or its own timeout
		 * (waited for above, or already due) has passed; not on
		 * every turn, each MHD_run() being system calls. */
		if (mt == 0 || (mt > 0 && n == 0 && mt <= timeout))
			mon_due = true;
		for (i = 0; i < n; i++) {
			struct signalfd_siginfo si;

			if (evs[i].data.u32 == TAG_MONITOR)
				mon_due = true;
			if (evs[i].data.u32 != TAG_SIGNAL)
				continue;
			while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGHUP && !deadline) {
					reload(&o, &cfg, b);
					continue;
				}
				if (si.ssi_signo == SIGUSR2 && !deadline) {
					vbi_info("signal %u: lame duck",
						 si.ssi_signo);
					vbd_broker_lame_duck(b);
					/* It ends in an exit: stopping. */
					vbd_notify_stopping();
					continue;
				}
				if (si.ssi_signo == SIGHUP ||
				    si.ssi_signo == SIGUSR2) {
					vbi_info("signal %u ignored: shutting "
						 "down",
						 si.ssi_signo);
					continue;
				}
				if (deadline) {
					vbi_warn("second signal: stopping now");
					deadline = 1;
					break;
				}
				vbi_info("signal %u: shutting down",
					 si.ssi_signo);
				vbd_broker_shutdown(b);
				deadline = vbi_clock_ms() + DRAIN_MS;
			}
		}
		rc = vbd_broker_progress(b, 0);
		if (rc < 0) {
			vbi_err("broker: %s", vb_strerror(rc));
			break;
		}
		if (!deadline && vbd_broker_lame_duck_over(b)) {
			vbi_info("lame duck over: shutting down");
			vbd_broker_shutdown(b);
			deadline = vbi_clock_ms() + DRAIN_MS;
		}
		/* This turn's work, whether the spin or progress found it. */
		work = spun + rc;
		/* From the loop itself: a loop that stops turning stops it. */
		if (look)
			vbd_notify_watchdog(vbi_clock_coarse_ms());
		if (mon && mon_due)
			vbd_monitor_run(mon);
		if (deadline)
			vbd_notify_stopping(); /* the first time only */
		if (deadline &&
		    (vbd_broker_idle(b) || vbi_clock_ms() >= deadline)) {
			if (!vbd_broker_idle(b))
				vbi_warn("drain deadline passed: closing the "
					 "remaining connections");
			status = 0;
			break;
		}
	}
out_destroy:
	vbd_monitor_destroy(mon);
	vbd_broker_destroy(b);
	if (pid_written && unlink(cfg.pid_file))
		vbi_warn("cannot remove the pid file %s: %s", cfg.pid_file,
			 strerror(errno));
out_close:
	if (ep >= 0)
		close(ep);
	if (sfd >= 0)
		close(sfd);
	if (status == 0)
		vbi_info("stopped");
	return status;
}
