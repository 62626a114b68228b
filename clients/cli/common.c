/*
 * common.c - options, messages, connecting and events shared by every
 * verbus subcommand (see common.h).
 *
 * Errors follow one rule: a wrong command line is reported as
 * "verbus CMD: what is wrong" plus "Try 'verbus CMD --help'." and exit
 * status 2, before anything connects; a failure at run time (the broker
 * unreachable, a timeout) is one line and exit status 1.  getopt's own
 * messages are switched off (opterr = 0) so that every message has the
 * same shape.
 */
#include "cli/common.h"

#include "core/clock.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

volatile sig_atomic_t cli_stop;

static const char *env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? v : dflt;
}

void cli_cmd_init(struct cli_cmd *cmd, const char *name, void (*usage)(FILE *f),
		  const char *conn_name)
{
	memset(cmd, 0, sizeof(*cmd));
	cmd->name = name;
	cmd->usage = usage;
	cmd->url = env_or("VERBUS_URL", VB_DEFAULT_URL);
	cmd->conn_name = conn_name;
	cmd->token = env_or("VERBUS_TOKEN", NULL);
	cmd->user = env_or("VERBUS_USER", NULL);
	cmd->password = env_or("VERBUS_PASSWORD", NULL);
	cmd->tls_ca = env_or("VERBUS_TLS_CA", NULL);
	cmd->tls_cert = env_or("VERBUS_TLS_CERT", NULL);
	cmd->tls_key = env_or("VERBUS_TLS_KEY", NULL);
	opterr = 0;
	optind = 1;
}

__attribute__((format(printf, 2, 0))) static void
vmsg(const struct cli_cmd *cmd, const char *fmt, va_list ap)
{
	fprintf(stderr, "verbus %s: ", cmd->name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void cli_error(const struct cli_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(cmd, fmt, ap);
	va_end(ap);
}

int cli_usage_error(const struct cli_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(cmd, fmt, ap);
	va_end(ap);
	fprintf(stderr, "Try 'verbus %s --help'.\n", cmd->name);
	return CLI_EXIT_USAGE;
}

int cli_bad_value(const struct cli_cmd *cmd, const char *option,
		  const char *value, const char *want)
{
	return cli_usage_error(cmd, "bad %s '%s': %s", option, value, want);
}

int cli_common_option(struct cli_cmd *cmd, int opt, char **argv)
{
	int ms;

	switch (opt) {
	case 's':
		cmd->url = optarg;
		return 1;
	case CLI_OPT_SOURCE:
		cmd->source = optarg;
		return 1;
	case CLI_OPT_NAME:
		cmd->conn_name = optarg;
		return 1;
	case CLI_OPT_TOKEN:
		cmd->token = optarg;
		return 1;
	case CLI_OPT_USER:
		cmd->user = optarg;
		return 1;
	case CLI_OPT_PASSWORD:
		cmd->password = optarg;
		return 1;
	case CLI_OPT_TLS_CA:
		cmd->tls_ca = optarg;
		return 1;
	case CLI_OPT_TLS_CERT:
		cmd->tls_cert = optarg;
		return 1;
	case CLI_OPT_TLS_KEY:
		cmd->tls_key = optarg;
		return 1;
	case CLI_OPT_CONNECT_TIMEOUT:
		if (cli_parse_ms(optarg, 1, &ms))
			return cli_bad_value(cmd, "--connect-timeout", optarg,
					     "a duration such as 500, 500ms "
					     "or 5s");
		cmd->connect_timeout_ms = ms;
		return 1;
	case CLI_OPT_DIRECT:
		cmd->direct = true;
		return 1;
	case 'h':
		cmd->want_help = true;
		return 1;
	case ':':
		/* A missing value: argv[optind - 1] is the option as typed
		 * (optopt would name a long option by its short twin). */
		return cli_usage_error(cmd, "option '%s' needs a value",
				       argv[optind - 1]);
	case '?':
		/* optopt is 0 for an unknown long option, the option's value
		 * for "--long=VALUE" given to one that takes none, else the
		 * unknown short option. */
		if (optopt == 0)
			return cli_usage_error(cmd, "unknown option '%s'",
					       argv[optind - 1]);
		if (strncmp(argv[optind - 1], "--", 2) == 0 &&
		    strchr(argv[optind - 1], '='))
			return cli_usage_error(cmd,
					       "option '%s' takes no value",
					       argv[optind - 1]);
		return cli_usage_error(cmd, "unknown option '-%c'", optopt);
	default:
		return 0;
	}
}

int cli_finish_options(struct cli_cmd *cmd)
{
	char err[160];

	if (cmd->want_help) {
		cmd->usage(stdout);
		return -1;
	}
	if (cli_parse_servers(cmd->url, &cmd->server, &cmd->nservers,
			      &cmd->ntls, err, sizeof(err)))
		return cli_usage_error(cmd, "bad server URL '%s': %s", cmd->url,
				       err);
	/* TLS files are given to a list with a tls:// server, and the
	 * library takes them for a list of tls:// servers only. */
	if (cmd->ntls && cmd->ntls < cmd->nservers &&
	    (cmd->tls_ca || cmd->tls_cert || cmd->tls_key))
		return cli_usage_error(cmd,
				       "--tls-ca, --tls-cert and --tls-key "
				       "(or $VERBUS_TLS_*) need every server "
				       "of '%s' to be tls://",
				       cmd->url);
	return 0;
}

/* What to suggest after a failed connect. */
static const char *connect_hint(int err)
{
	switch (err) {
	case VB_ECONNREFUSED:
		return " (is verbusd running there, on that port?)";
	case VB_EUNREACH:
		return " (check the address; --source must be a local address "
		       "on an RDMA-capable interface)";
	case VB_ETIMEDOUT:
		return " (no answer: is the address right and verbusd up?)";
	case VB_ENODEV:
		return " (no RDMA device: an RNIC, or Soft-RoCE: rdma link add "
		       "rxe0 type rxe netdev IFACE)";
	case VB_EVERSION:
		return " (the broker speaks another protocol version)";
	case VB_EACCES:
		return " (check --token or --user/--password)";
	default:
		return "";
	}
}

int cli_connect(const struct cli_cmd *cmd, unsigned flags, const char *source,
		const char *name, struct cli_events *ev, struct vb_conn **out)
{
	struct vb_opts o = VB_OPTS_INIT;
	int rc;

	o.name = name ? name : cmd->conn_name;
	o.source = source ? source : cmd->source;
	o.token = cmd->token;
	o.user = cmd->user;
	o.password = cmd->password;
	o.flags = flags | (cmd->direct ? VB_OPT_DIRECT : 0u);
	o.connect_timeout_ms = cmd->connect_timeout_ms;
	o.ring_size = cmd->ring_size;
	o.max_msg = cmd->max_msg;
	o.max_payload = cmd->max_payload;
	o.on_event = cli_on_event;
	o.event_arg = ev;
	/* The files matter to tls:// only ($VERBUS_TLS_* may be set for
	 * every URL a script uses); the library refuses them elsewhere. */
	if (cmd->ntls > 0) {
		o.tls_ca = cmd->tls_ca;
		o.tls_cert = cmd->tls_cert;
		o.tls_key = cmd->tls_key;
	}
	ev->cmd = cmd;
	ev->close_detail[0] = '\0';
	rc = vb_connect(cmd->url, &o, out);
	if (rc != VB_OK)
		cli_error(
			cmd, "cannot connect to %s%s%s: %s%s%s%s", cmd->url,
			o.source ? " from " : "", o.source ? o.source : "",
			vb_strerror(rc), ev->close_detail[0] ? ": " : "",
			ev->close_detail,
			strncmp(ev->close_detail, "tls", 3) == 0 ?
				" (check --tls-ca, --tls-cert and --tls-key)" :
			strncmp(ev->close_detail, "refused", 7) == 0 ?
				"" :
				connect_hint(rc));
	return rc;
}

void cli_on_event(struct vb_conn *c, const struct vb_event *ev, void *arg)
{
	struct cli_events *e = arg;
	const char *detail = ev->detail && *ev->detail ? ev->detail : NULL;

	(void)c;
	switch (ev->type) {
	case VB_EV_CONNECTED:
	case VB_EV_WRITABLE:
	case VB_EV_DRAINED: /* the tool drains no subscription */
		break;
	case VB_EV_DISCONNECTED:
		if (!e->quiet)
			fprintf(stderr, "verbus: disconnected: %s%s%s\n",
				vb_strerror(ev->err), detail ? ": " : "",
				detail ? detail : "");
		break;
	case VB_EV_LAME_DUCK:
		if (!e->quiet)
			fprintf(stderr, "verbus: lame duck: %s\n",
				detail ? detail : "the broker is going away");
		break;
	case VB_EV_RECONNECTED:
		if (!e->quiet)
			fprintf(stderr, "verbus: reconnected%s%s\n",
				detail ? " to " : "", detail ? detail : "");
		break;
	case VB_EV_CLOSED:
		e->closed = true;
		e->close_err = ev->err;
		snprintf(e->close_detail, sizeof(e->close_detail), "%s",
			 detail ? detail : "");
		break;
	case VB_EV_NOTICE:
		if (ev->err == VB_EMSGSIZE && ev->sub != NULL) {
			/* A delivery too large for us: no refusal.  The
			 * library's own (a large message) names max_payload;
			 * the broker's is about one frame (max_msg), or a
			 * large message if it names max_payload too. */
			e->too_big++;
			fprintf(stderr,
				"verbus: a message was too large for this "
				"subscriber: %s (%s raises the limit)\n",
				detail ? detail : vb_strerror(ev->err),
				detail && strstr(detail, "max_payload") ?
					"--max-payload" :
					"--max-msg, or --max-payload for a "
					"large message,");
			break;
		}
		if (ev->err == VB_ENORESPONDERS) {
			/* Routed, but nobody subscribes to it: not a
			 * refusal (the command reports the count). */
			e->no_responders++;
			break;
		}
		e->notices++;
		if (ev->sub != NULL)
			e->sub_refused = true;
		fprintf(stderr, "verbus: the broker refused %s: %s%s%s\n",
			ev->sub ? "the subscription" : "a message",
			vb_strerror(ev->err), detail ? ": " : "",
			detail ? detail : "");
		break;
	case VB_EV_DROPPED:
		if (ev->count > e->dropped) {
			fprintf(stderr,
				"verbus: the broker dropped %llu messages in "
				"all for this %s\n",
				(unsigned long long)ev->count,
				e->too_big ? "subscriber (too large for it, or "
					     "it was too slow)" :
					     "slow subscriber");
			e->dropped = ev->count;
		}
		break;
	case VB_EV_SLOW_CONSUMER:
		fprintf(stderr, "verbus: %s (%llu in all)\n", ev->detail,
			(unsigned long long)ev->count);
		break;
	}
}

int cli_subscribe(const struct cli_cmd *cmd, struct vb_conn *c,
		  const struct cli_events *ev, const char *pattern,
		  const char *queue, uint64_t count, vb_msg_cb cb, void *arg)
{
	struct vb_sub *s;
	int rc;

	rc = vb_subscribe_flags(c, pattern, queue,
				cmd->direct ? VB_SUB_DIRECT : 0u, cb, arg, &s);
	if (rc == VB_EINVAL)
		return cli_usage_error(
			cmd,
			"bad pattern '%s'%s%s%s: tokens separated "
			"by '.', '*' for one token, '>' last "
			"for the rest",
			pattern, queue ? " or queue group '" : "",
			queue ? queue : "", queue ? "'" : "");
	if (rc != VB_OK)
		goto out_fail;
	if (count) {
		rc = vb_sub_autounsubscribe(s, count);
		if (rc != VB_OK)
			goto out_fail;
	}
	rc = vb_flush(c, CLI_CONFIRM_MS);
	if (rc != VB_OK || ev->sub_refused) {
		if (!ev->sub_refused)
			cli_error(cmd,
				  "the broker did not confirm the "
				  "subscription: %s",
				  vb_strerror(rc));
		return CLI_EXIT_FAIL;
	}
	fprintf(stderr, "verbus: subscribed to %s%s%s\n", pattern,
		queue ? " in queue group " : "", queue ? queue : "");
	return 0;
out_fail:
	cli_error(cmd, "cannot subscribe to '%s': %s", pattern,
		  vb_strerror(rc));
	return CLI_EXIT_FAIL;
}

int cli_wait_count(const struct cli_cmd *cmd, struct vb_conn *c,
		   const struct cli_events *ev, const uint64_t *got,
		   uint64_t count, int timeout_ms)
{
	uint64_t end = cli_now_ns() + (uint64_t)timeout_ms * 1000000u, now;
	int wait, rc;

	while (!cli_stop && !(count && *got >= count)) {
		wait = 250;
		if (timeout_ms) {
			now = cli_now_ns();
			if (now >= end)
				return CLI_TIMED_OUT;
			if ((end - now) / 1000000u < (uint64_t)wait)
				wait = (int)((end - now + 999999u) / 1000000u);
		}
		rc = vb_poll(c, wait);
		fflush(stdout);
		if (rc == VB_ECLOSED || ev->closed) {
			cli_error(cmd, "connection closed: %s",
				  vb_strerror(ev->closed ? ev->close_err : rc));
			return CLI_EXIT_FAIL;
		}
		if (ev->sub_refused)
			return CLI_EXIT_FAIL;
	}
	return 0;
}

static void on_signal(int sig)
{
	(void)sig;
	cli_stop = 1;
}

void cli_catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a wait in vb_poll() returns, and we look at
	 * cli_stop. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

uint64_t cli_now_ns(void)
{
	return vbi_clock_ns();
}

uint64_t cli_coarse_ns(void)
{
	return vbi_clock_coarse_ns();
}
