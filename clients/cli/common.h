/*
 * common.h - what every verbus subcommand shares: the connection options
 * (-s/--server, --source, --name, credentials, --connect-timeout), their
 * parsing with getopt_long, error messages and exit codes, connecting,
 * reporting connection events, and stopping on SIGINT/SIGTERM.
 *
 * The tool uses only the public API (verbus/verbus.h), exactly as any
 * application would.  Threading: the tool is single-threaded.
 */
#ifndef VERBUS_CLI_COMMON_H
#define VERBUS_CLI_COMMON_H

#include "cli/args.h"

#include <verbus/verbus.h>

#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Exit statuses of every subcommand. */
#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1 /* the command ran and failed (connect, timeout) */
#define CLI_EXIT_USAGE 2 /* the command line was wrong */
/* Not an exit status: what a wait returns at its deadline. */
#define CLI_TIMED_OUT (-1)

/* How long a command waits for the broker to confirm (vb_flush). */
#define CLI_CONFIRM_MS 10000

/* Long-only options shared by every subcommand (getopt_long values). */
enum {
	CLI_OPT_SOURCE = 0x100,
	CLI_OPT_NAME,
	CLI_OPT_TOKEN,
	CLI_OPT_USER,
	CLI_OPT_PASSWORD,
	CLI_OPT_CONNECT_TIMEOUT,
	CLI_OPT_TLS_CA,
	CLI_OPT_TLS_CERT,
	CLI_OPT_TLS_KEY,
	CLI_OPT_DIRECT,
	CLI_OPT_FIRST_OWN, /* subcommands number their own options from here */
};

/* The getopt_long entries for the shared options; end a table with them.
 * (Kept by hand: clang-format cannot lay out a list inside a macro.) */
/* clang-format off */
#define CLI_COMMON_LONGOPTS                                              \
	{ "server", required_argument, NULL, 's' },                      \
	{ "source", required_argument, NULL, CLI_OPT_SOURCE },           \
	{ "name", required_argument, NULL, CLI_OPT_NAME },               \
	{ "token", required_argument, NULL, CLI_OPT_TOKEN },             \
	{ "user", required_argument, NULL, CLI_OPT_USER },               \
	{ "password", required_argument, NULL, CLI_OPT_PASSWORD },       \
	{ "connect-timeout", required_argument, NULL,                    \
	  CLI_OPT_CONNECT_TIMEOUT },                                     \
	{ "tls-ca", required_argument, NULL, CLI_OPT_TLS_CA },           \
	{ "tls-cert", required_argument, NULL, CLI_OPT_TLS_CERT },       \
	{ "tls-key", required_argument, NULL, CLI_OPT_TLS_KEY },         \
	{ "direct", no_argument, NULL, CLI_OPT_DIRECT },                 \
	{ "help", no_argument, NULL, 'h' },                              \
	{ NULL, 0, NULL, 0 }
/* clang-format on */
/* Their short forms, to prepend to a subcommand's optstring. */
#define CLI_COMMON_SHORTOPTS ":s:h"

/* The usage text of the shared options, for each subcommand's --help. */
#define CLI_COMMON_HELP                                                         \
	"Connection (every subcommand):\n"                                      \
	"  -s, --server URL[,URL...]  the broker, [rdma://]HOST[:PORT],\n"      \
	"                          tcp://HOST[:PORT] or tls://HOST[:PORT];\n"   \
	"                          a list: the first that answers, and\n"       \
	"                          failover to the next when it goes\n"         \
	"                          [$VERBUS_URL, else " VB_DEFAULT_URL "]\n"    \
	"      --source ADDR       local address to connect from (picks\n"      \
	"                          the RDMA device) [any]\n"                    \
	"      --name NAME         shown by the broker (/connz)\n"              \
	"      --token TOKEN       credentials [$VERBUS_TOKEN]\n"               \
	"      --user USER         credentials [$VERBUS_USER]\n"                \
	"      --password PASS     credentials [$VERBUS_PASSWORD]\n"            \
	"      --connect-timeout MS  one connection attempt [5000]\n"           \
	"      --tls-ca FILE       tls: the CAs that verify the broker\n"       \
	"                          (PEM) [$VERBUS_TLS_CA, else the system's]\n" \
	"      --tls-cert FILE     tls: our certificate, for a broker that\n"   \
	"                          asks (PEM) [$VERBUS_TLS_CERT]\n"             \
	"      --tls-key FILE      tls: its key (PEM) [$VERBUS_TLS_KEY]\n"      \
	"      --direct            direct mode: subscriptions take direct\n"    \
	"                          publishers' messages into our rings;\n"      \
	"                          messages go straight to direct\n"            \
	"                          subscribers (docs/PROTOCOL.md)\n"            \
	"  -h, --help              this text\n"

/* One subcommand being run: its name, its usage, the shared options. */
struct cli_cmd {
	const char *name; /* "pub", for messages: "verbus pub: ..." */
	void (*usage)(FILE *f); /* prints the --help text */
	const char *url; /* -s, $VERBUS_URL or VB_DEFAULT_URL: a list */
	struct vb_url server; /* @url's first server taken apart (checked) */
	size_t nservers; /* distinct servers in @url */
	size_t ntls; /* of them tls:// */
	const char *source; /* --source, or NULL */
	const char *conn_name; /* --name, or the subcommand's default */
	const char *token, *user, *password; /* credentials, or NULL */
	/* TLS files (--tls-*, $VERBUS_TLS_*), or NULL; used with tls:// only */
	const char *tls_ca, *tls_cert, *tls_key;
	int connect_timeout_ms; /* 0: the library's default */
	uint32_t ring_size; /* receive ring; 0: the library's default */
	uint32_t max_msg; /* largest subject + data accepted; 0: default */
	/* largest large message (data) accepted; 0: the library's default */
	uint32_t max_payload;
	bool direct; /* --direct: VB_OPT_DIRECT, VB_SUB_DIRECT */
	bool want_help; /* -h was given */
};

/* Set by SIGINT/SIGTERM once cli_catch_signals() ran. */
extern volatile sig_atomic_t cli_stop;

/*
 * cli_cmd_init() - defaults for @cmd: URL from $VERBUS_URL, credentials
 * from $VERBUS_TOKEN/_USER/_PASSWORD, @conn_name as the connection's name.
 */
void cli_cmd_init(struct cli_cmd *cmd, const char *name, void (*usage)(FILE *f),
		  const char *conn_name);

/*
 * cli_common_option() - handle getopt_long's answer @opt if it is a shared
 * option or an error ('?', ':').  Returns 1 if handled, 0 if @opt is the
 * subcommand's own, or CLI_EXIT_USAGE after printing the error and the
 * usage hint.  @argv is the subcommand's, for naming a bad option.
 */
int cli_common_option(struct cli_cmd *cmd, int opt, char **argv);

/*
 * cli_finish_options() - after the option loop: checks the URL list (and
 * that TLS files go with tls:// servers only).  Returns
 * 0, CLI_EXIT_USAGE after printing why, or -1 if --help was given (the
 * usage was printed: exit 0).
 */
int cli_finish_options(struct cli_cmd *cmd);

/* cli_usage_error() - "verbus CMD: MESSAGE" and the hint to use --help;
 * returns CLI_EXIT_USAGE. */
int cli_usage_error(const struct cli_cmd *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* cli_error() - "verbus CMD: MESSAGE" on stderr. */
void cli_error(const struct cli_cmd *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* cli_bad_value() - "verbus CMD: bad --OPTION 'VALUE': WANT" + hint;
 * returns CLI_EXIT_USAGE. */
int cli_bad_value(const struct cli_cmd *cmd, const char *option,
		  const char *value, const char *want);

/* State the shared event callback keeps for a subcommand. */
struct cli_events {
	const struct cli_cmd *cmd; /* for messages */
	bool closed; /* VB_EV_CLOSED came */
	int close_err; /* its error */
	char close_detail[256]; /* its detail ("" if none) */
	uint64_t notices; /* VB_EV_NOTICE count (refusals) */
	uint64_t no_responders; /* VB_ENORESPONDERS notices (not refusals) */
	uint64_t too_big; /* VB_EMSGSIZE notices about a subscription */
	bool sub_refused; /* a notice named a subscription (now gone) */
	uint64_t dropped; /* the largest VB_EV_DROPPED count */
	bool quiet; /* no lines for (re)connections */
};

/* cli_on_event() - a vb_event_cb that reports events on stderr and
 * records them in the struct cli_events at @arg. */
void cli_on_event(struct vb_conn *c, const struct vb_event *ev, void *arg);

/*
 * cli_connect() - vb_connect() to cmd->url with the shared options,
 * @flags (VB_OPT_*), @source (NULL: --source) and @name (NULL: --name or
 * the default); events go to cli_on_event() with @ev.  On failure prints
 * what went wrong, with a hint, and returns the vb_err.
 */
int cli_connect(const struct cli_cmd *cmd, unsigned flags, const char *source,
		const char *name, struct cli_events *ev, struct vb_conn **out);

/*
 * cli_subscribe() - subscribe @c to @pattern (in queue group @queue if not
 * NULL), ending by itself after @count messages if @count > 0; wait until
 * the broker has it in force (vb_flush) and then, only then, print
 * "verbus: subscribed to PATTERN" on stderr, the line scripts wait for.
 * Returns 0, or an exit status after saying what went wrong.
 */
int cli_subscribe(const struct cli_cmd *cmd, struct vb_conn *c,
		  const struct cli_events *ev, const char *pattern,
		  const char *queue, uint64_t count, vb_msg_cb cb, void *arg);

/*
 * cli_wait_count() - run @c until *@got reaches @count (0: never), the
 * deadline @timeout_ms (0: none) passes, or a signal.  Flushes stdout
 * after every round.  Returns 0 when done, CLI_TIMED_OUT at the
 * deadline, or an exit status after saying why the connection ended.
 */
int cli_wait_count(const struct cli_cmd *cmd, struct vb_conn *c,
		   const struct cli_events *ev, const uint64_t *got,
		   uint64_t count, int timeout_ms);

/* cli_catch_signals() - SIGINT and SIGTERM set cli_stop (and interrupt
 * a wait) instead of killing the process. */
void cli_catch_signals(void);

/* cli_now_ns() - CLOCK_MONOTONIC in nanoseconds. */
uint64_t cli_now_ns(void);

/*
 * cli_coarse_ns() - CLOCK_MONOTONIC_COARSE in nanoseconds: the same clock
 * as of the last tick (up to ~4 ms behind), read without a system call
 * where a precise read needs one (a guest on hpet: ~1.5 us).  For timeouts
 * and progress, never for what a benchmark measures.
 */
uint64_t cli_coarse_ns(void);

/* Each subcommand: argc/argv from the subcommand's name on; returns the
 * exit status. */
int cli_cmd_pub(int argc, char **argv);
int cli_cmd_sub(int argc, char **argv);
int cli_cmd_req(int argc, char **argv);
int cli_cmd_reply(int argc, char **argv);
int cli_cmd_bench(int argc, char **argv);
int cli_cmd_stat(int argc, char **argv);

#endif /* VERBUS_CLI_COMMON_H */
