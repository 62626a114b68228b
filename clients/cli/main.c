/*
 * main.c - `verbus`, the command-line tool: finds the subcommand and hands
 * it the rest of the command line.
 *
 * Each subcommand lives in its own file (cmd_*.c) and parses its own
 * options with getopt_long, the shared ones through common.c, so that
 * `verbus CMD --help` is complete for CMD and nothing else.
 */
#include "cli/common.h"

#include <stdio.h>
#include <string.h>

/* A subcommand. */
struct command {
	const char *name; /* as typed */
	int (*run)(int argc, char **argv); /* argv[0] is @name */
	const char *summary; /* one line for `verbus --help` */
};

static const struct command commands[] = {
	{ "pub", cli_cmd_pub, "publish messages to a subject" },
	{ "sub", cli_cmd_sub, "print the messages matching a pattern" },
	{ "req", cli_cmd_req, "send a request and print the reply" },
	{ "reply", cli_cmd_reply, "answer requests on a subject" },
	{ "bench", cli_cmd_bench,
	  "measure latency, throughput and fan-out through the broker" },
	{ "stat", cli_cmd_stat, "show the broker's counters" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: verbus COMMAND [options] [arguments]\n"
		   "\n"
		   "Publish, subscribe, request and measure through a verbusd "
		   "broker over RDMA.\n"
		   "\n"
		   "Commands:\n");
	for (i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-8s %s\n", commands[i].name,
			commands[i].summary);
	fprintf(f,
		"\n"
		"  verbus COMMAND --help    that command's options\n"
		"  verbus --version         the tool's and library's version\n"
		"\n"
		"The broker is [rdma://]HOST[:PORT], tcp://HOST[:PORT] or "
		"tls://HOST[:PORT]\n(-s/--server; an IPv6 HOST in brackets), "
		"default $VERBUS_URL, else\n" VB_DEFAULT_URL
		"; or a comma-separated list of brokers: the first that\n"
		"answers is used, and the next one when it goes "
		"(failover).\n"
		"Sizes (--size, --sizes, --ring, --max-msg, --max-payload) are "
		"bytes, or\ndigits and a unit: K, KB or KiB (1024), M, MB or "
		"MiB, G, GB or GiB, any\ncase (64K, 1MiB), as verbusd reads "
		"its own.\n"
		"Exit status: 0 success, 1 failure, 2 bad usage.\n"
		"\n"
		"Examples:\n"
		"  verbus sub 'orders.>'                    print what "
		"arrives\n"
		"  verbus pub orders.new 'hello'            one message\n"
		"  seq 10 | verbus pub orders.new           one per line of "
		"stdin\n"
		"  verbus reply svc.time \"$(date)\" &        a responder\n"
		"  verbus req svc.time ''                   ask it\n"
		"  verbus bench --sizes 64,4K               how fast\n"
		"  verbus stat                              the broker's "
		"counters\n");
}

int main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		/* "verbus help CMD" is "verbus CMD --help". */
		if (argc > 2 && strcmp(argv[1], "help") == 0) {
			for (i = 0; i < NCOMMANDS; i++) {
				if (strcmp(argv[2], commands[i].name) == 0) {
					static char help[] = "--help";
					char *args[] = { argv[2], help, NULL };

					return commands[i].run(2, args);
				}
			}
			fprintf(stderr,
				"verbus: unknown command '%s'\n"
				"Try 'verbus --help'.\n",
				argv[2]);
			return CLI_EXIT_USAGE;
		}
		usage(stdout);
		return CLI_EXIT_OK;
	}
	if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("verbus %d.%d.%d (libverbus %s)\n", VB_VERSION_MAJOR,
		       VB_VERSION_MINOR, VB_VERSION_PATCH, vb_version());
		return CLI_EXIT_OK;
	}
	for (i = 0; i < NCOMMANDS; i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "verbus: unknown %s '%s'\nTry 'verbus --help'.\n",
		argv[1][0] == '-' ? "option" : "command", argv[1]);
	return CLI_EXIT_USAGE;
}
