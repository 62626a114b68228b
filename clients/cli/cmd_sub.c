/*
 * cmd_sub.c - `verbus sub PATTERN`: print the messages whose subject
 * matches PATTERN.
 *
 * With --count N the broker itself ends the subscription after N
 * deliveries (auto-unsubscribe), so in a queue group the member that is
 * done stops taking messages instead of swallowing the next ones.  Output
 * goes to stdout, flushed after each batch the connection delivers, so a
 * file or a pipe sees messages as they come without a write per line;
 * status lines go to stderr.
 */
#include "cli/common.h"
#include "cli/print.h"

#include <string.h>

enum {
	OPT_HEX = CLI_OPT_FIRST_OWN,
	OPT_RAW,
	OPT_MAX_MSG,
	OPT_MAX_PAYLOAD,
};

/* One run of the command. */
struct sub {
	struct cli_cmd cmd; /* shared options */
	struct cli_events ev; /* connection events */
	const char *pattern; /* what to match */
	const char *queue; /* --queue, or NULL */
	uint64_t count; /* --count; 0: until stopped */
	int timeout_ms; /* --timeout; 0: none */
	enum cli_payload mode; /* --hex, --raw */
	uint64_t got; /* messages printed */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: verbus sub [options] PATTERN\n"
		"\n"
		"Print every message whose subject matches PATTERN ('*' one "
		"token, '>' the\nrest): a line \"[#N] SUBJECT (SIZE bytes)\" "
		"(and \"reply SUBJECT\"), then the\npayload, as text if it is "
		"text, else as hex.  Once the subscription is in\nforce it "
		"says \"verbus: subscribed to PATTERN\" on stderr.\n"
		"\n"
		"  -q, --queue GROUP     join queue group GROUP: each message "
		"goes to one\n"
		"                        member of the group\n"
		"  -c, --count N         exit after N messages\n"
		"  -t, --timeout MS      exit after MS (status 1 if --count "
		"messages have\n"
		"                        not all come)\n"
		"      --hex             payloads always as hex dumps\n"
		"      --raw             payloads only, byte for byte, a "
		"newline after each\n"
		"      --max-msg SIZE    the largest message (subject and "
		"data) to take\n"
		"                        in one frame [64K]; larger ones come "
		"as large\n"
		"                        messages, in chunks\n"
		"      --max-payload SIZE  the largest large message (data "
		"and headers)\n"
		"                        to take [8M, or --max-msg if more]; "
		"larger ones are\n"
		"                        dropped, and it says so\n"
		"\n" CLI_COMMON_HELP);
}

static void on_msg(struct vb_conn *c, const struct vb_msg *m, void *arg)
{
	struct sub *s = arg;

	(void)c;
	s->got++;
	cli_print_msg(stdout, s->got, m, s->mode);
}

static int parse(struct sub *s, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "queue", required_argument, NULL, 'q' },
		{ "count", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },
		{ "hex", no_argument, NULL, OPT_HEX },
		{ "raw", no_argument, NULL, OPT_RAW },
		{ "max-msg", required_argument, NULL, OPT_MAX_MSG },
		{ "max-payload", required_argument, NULL, OPT_MAX_PAYLOAD },
		CLI_COMMON_LONGOPTS,
	};
	uint64_t v;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORTOPTS "q:c:t:",
				  longopts, NULL)) != -1) {
		rc = cli_common_option(&s->cmd, opt, argv);
		if (rc == 1)
			continue;
		if (rc)
			return rc;
		switch (opt) {
		case 'q':
			s->queue = optarg;
			break;
		case 'c':
			if (cli_parse_u64(optarg, 1, UINT64_MAX, &s->count))
				return cli_bad_value(&s->cmd, "--count", optarg,
						     "a whole number, 1 or "
						     "more");
			break;
		case 't':
			if (cli_parse_ms(optarg, 1, &s->timeout_ms))
				return cli_bad_value(&s->cmd, "--timeout",
						     optarg,
						     "a duration such as 500, "
						     "500ms or 5s");
			break;
		case OPT_HEX:
			s->mode = CLI_PAYLOAD_HEX;
			break;
		case OPT_RAW:
			s->mode = CLI_PAYLOAD_RAW;
			break;
		case OPT_MAX_MSG:
			if (cli_parse_size(optarg, 1, 512u << 20, &v))
				return cli_bad_value(&s->cmd, "--max-msg",
						     optarg,
						     "a size from 1 to 512M");
			s->cmd.max_msg = (uint32_t)v;
			/* A frame (32 bytes of header, the message, padding)
			 * takes at most half the ring: grow it to fit. */
			for (v = 1u << 20; v / 2 < 32 + s->cmd.max_msg + 7;)
				v *= 2;
			if (v > 1u << 20)
				s->cmd.ring_size = (uint32_t)v;
			break;
		case OPT_MAX_PAYLOAD:
			if (cli_parse_size(optarg, 1, VB_MAX_PAYLOAD_MAX, &v))
				return cli_bad_value(&s->cmd, "--max-payload",
						     optarg,
						     "a size from 1 to 1G");
			s->cmd.max_payload = (uint32_t)v;
			break;
		}
	}
	rc = cli_finish_options(&s->cmd);
	if (rc)
		return rc;
	if (s->cmd.max_payload &&
	    s->cmd.max_payload < (s->cmd.max_msg ? s->cmd.max_msg : 64u << 10))
		return cli_usage_error(&s->cmd,
				       "--max-payload is below --max-msg "
				       "(%u bytes): a large message is one "
				       "larger than a frame",
				       s->cmd.max_msg ? s->cmd.max_msg :
							64u << 10);
	if (optind >= argc)
		return cli_usage_error(&s->cmd, "missing PATTERN");
	s->pattern = argv[optind++];
	if (optind < argc)
		return cli_usage_error(&s->cmd, "unexpected argument '%s'",
				       argv[optind]);
	return 0;
}

int cli_cmd_sub(int argc, char **argv)
{
	struct sub s = { 0 };
	struct vb_conn *c;
	int rc, status;

	cli_cmd_init(&s.cmd, "sub", usage, "verbus-sub");
	rc = parse(&s, argc, argv);
	if (rc)
		return rc < 0 ? CLI_EXIT_OK : rc;
	cli_catch_signals();
	if (cli_connect(&s.cmd, 0, NULL, NULL, &s.ev, &c))
		return CLI_EXIT_FAIL;
	status = cli_subscribe(&s.cmd, c, &s.ev, s.pattern, s.queue, s.count,
			       on_msg, &s);
	if (status == 0) {
		status = cli_wait_count(&s.cmd, c, &s.ev, &s.got, s.count,
					s.timeout_ms);
		if (status == CLI_TIMED_OUT && s.count) {
			cli_error(&s.cmd,
				  "timed out after %llu of %llu "
				  "messages",
				  (unsigned long long)s.got,
				  (unsigned long long)s.count);
			status = CLI_EXIT_FAIL;
		} else if (status == CLI_TIMED_OUT) {
			status = CLI_EXIT_OK;
		}
	}
	fflush(stdout);
	fprintf(stderr, "verbus: received %llu message%s\n",
		(unsigned long long)s.got, s.got == 1 ? "" : "s");
	vb_close(c);
	return status;
}
