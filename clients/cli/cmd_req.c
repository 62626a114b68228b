/*
 * cmd_req.c - the two ends of request/reply: `verbus req SUBJECT [DATA]`
 * asks and prints the answer, `verbus reply SUBJECT [DATA]` answers.
 *
 * req prints only the reply's payload on stdout (text, hex or raw), so
 * that `x=$(verbus req svc.time)` works; how long it took goes to stderr.
 * reply answers inside the message callback (vb_respond copies, so the
 * request's zero-copy view is not kept) and flushes before it exits, so
 * its last answer is not lost with the connection.
 */
#include "cli/common.h"
#include "cli/headers.h"
#include "cli/print.h"

#include <string.h>

#define REQ_TIMEOUT_MS 2000

enum {
	OPT_HEX = CLI_OPT_FIRST_OWN,
	OPT_RAW,
};

/* The options req and reply share beyond the connection's. */
struct rr {
	struct cli_cmd cmd; /* shared options */
	struct cli_events ev; /* connection events */
	const char *subject; /* asked, or answered */
	const char *data; /* DATA, or NULL */
	const char *queue; /* reply --queue, or NULL */
	uint64_t count; /* --count; 0: default */
	int timeout_ms; /* --timeout */
	enum cli_payload mode; /* --hex, --raw */
	bool quiet; /* reply: do not print requests */
	uint64_t got; /* reply: requests seen */
	uint64_t answered; /* reply: answers sent */
	uint64_t failed; /* reply: answers that could not be sent */
	struct cli_headers hdrs; /* --header: on every request, or answer */
};

static void usage_req(FILE *f)
{
	fprintf(f,
		"usage: verbus req [options] SUBJECT [DATA]\n"
		"\n"
		"Send DATA (empty if left out) to SUBJECT with a reply "
		"subject of this\nconnection's own, wait for the first answer "
		"and print its payload on stdout\n(text as it is, else hex); "
		"the round-trip time goes to stderr.\n"
		"\n"
		"  -t, --timeout MS      wait MS for each reply [2s]\n"
		"  -c, --count N         N requests, one after the other [1]\n"
		"      --hex             the reply always as a hex dump\n"
		"      --raw             the reply byte for byte (and a "
		"newline)\n"
		"  -H, --header 'K: V'   a header on the request (repeat for "
		"more)\n"
		"\n"
		"The reply's headers, if any, go to stderr.  With nobody "
		"subscribed to\nSUBJECT it fails at once: \"no responders\".\n"
		"\n" CLI_COMMON_HELP);
}

static void usage_reply(FILE *f)
{
	fprintf(f,
		"usage: verbus reply [options] SUBJECT [DATA]\n"
		"\n"
		"Answer every request on SUBJECT (a pattern) with DATA, or "
		"without DATA with\nthe request's own payload (an echo).  "
		"Prints each request as `verbus sub`\ndoes; says \"verbus: "
		"subscribed to SUBJECT\" on stderr once it is answering.\n"
		"\n"
		"  -q, --queue GROUP     share the requests with the other "
		"responders of GROUP\n"
		"  -c, --count N         exit after N requests\n"
		"  -t, --timeout MS      exit after MS (status 1 if --count "
		"requests have\n"
		"                        not all come)\n"
		"      --quiet           do not print the requests\n"
		"      --hex, --raw      how requests are printed (as verbus "
		"sub)\n"
		"  -H, --header 'K: V'   a header on every answer (repeat for "
		"more)\n"
		"\n" CLI_COMMON_HELP);
}

static int parse(struct rr *r, bool reply, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "count", required_argument, NULL, 'c' },
		{ "queue", required_argument, NULL, 'q' },
		{ "quiet", no_argument, NULL, 'Q' },
		{ "hex", no_argument, NULL, OPT_HEX },
		{ "raw", no_argument, NULL, OPT_RAW },
		{ "header", required_argument, NULL, 'H' },
		CLI_COMMON_LONGOPTS,
	};
	char why[160];
	int opt, rc;

	while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORTOPTS "t:c:q:H:",
				  longopts, NULL)) != -1) {
		rc = cli_common_option(&r->cmd, opt, argv);
		if (rc == 1)
			continue;
		if (rc)
			return rc;
		/* The two share a table; each refuses the other's own. */
		if ((opt == 'q' || opt == 'Q') && !reply)
			return cli_usage_error(&r->cmd, "unknown option '%s'",
					       argv[optind - 1]);
		switch (opt) {
		case 't':
			if (cli_parse_ms(optarg, 1, &r->timeout_ms))
				return cli_bad_value(&r->cmd, "--timeout",
						     optarg,
						     "a duration such as 500, "
						     "500ms or 5s");
			break;
		case 'c':
			if (cli_parse_u64(optarg, 1, UINT64_MAX, &r->count))
				return cli_bad_value(&r->cmd, "--count", optarg,
						     "a whole number, 1 or "
						     "more");
			break;
		case 'q':
			r->queue = optarg;
			break;
		case 'Q':
			r->quiet = true;
			break;
		case OPT_HEX:
			r->mode = CLI_PAYLOAD_HEX;
			break;
		case OPT_RAW:
			r->mode = CLI_PAYLOAD_RAW;
			break;
		case 'H':
			if (cli_headers_add(&r->hdrs, optarg, why, sizeof(why)))
				return cli_usage_error(&r->cmd, "--header: %s",
						       why);
			break;
		}
	}
	rc = cli_finish_options(&r->cmd);
	if (rc)
		return rc;
	if (optind >= argc)
		return cli_usage_error(&r->cmd, "missing SUBJECT");
	r->subject = argv[optind++];
	if (optind < argc)
		r->data = argv[optind++];
	if (optind < argc)
		return cli_usage_error(&r->cmd,
				       "too many arguments ('%s'...): quote "
				       "DATA that has spaces",
				       argv[optind]);
	return 0;
}

/* One request; returns an exit status. */
static int request_one(struct rr *r, struct vb_conn *c, const char *data)
{
	struct vb_msg *reply;
	uint64_t t0 = cli_now_ns();
	int rc;

	rc = vb_request_msg(c, r->subject, r->hdrs.h, r->hdrs.n, data,
			    strlen(data), r->timeout_ms, &reply);
	switch (rc) {
	case VB_OK:
		break;
	case VB_ETIMEDOUT:
		cli_error(&r->cmd, "no reply from %s within %d ms", r->subject,
			  r->timeout_ms);
		return CLI_EXIT_FAIL;
	case VB_ENORESPONDERS:
		cli_error(&r->cmd, "no responders: nobody subscribes to %s",
			  r->subject);
		return CLI_EXIT_FAIL;
	case VB_EACCES:
		cli_error(&r->cmd,
			  "permission denied: the broker refused a request "
			  "to %s",
			  r->subject);
		return CLI_EXIT_FAIL;
	case VB_EINVAL:
		return cli_usage_error(&r->cmd,
				       "bad subject '%s' (tokens separated by "
				       "'.', no wildcards or spaces)",
				       r->subject);
	default:
		cli_error(&r->cmd, "request failed: %s",
			  vb_strerror(r->ev.closed ? r->ev.close_err : rc));
		return CLI_EXIT_FAIL;
	}
	cli_print_headers(stderr, reply);
	cli_print_payload(stdout, reply->data, reply->size, r->mode);
	fflush(stdout);
	fprintf(stderr, "verbus: reply of %zu bytes in %.3f ms\n", reply->size,
		(double)(cli_now_ns() - t0) / 1e6);
	vb_msg_release(reply);
	return CLI_EXIT_OK;
}

int cli_cmd_req(int argc, char **argv)
{
	struct rr r = { .timeout_ms = REQ_TIMEOUT_MS };
	struct vb_conn *c;
	uint64_t i;
	int rc, status = CLI_EXIT_OK;

	cli_cmd_init(&r.cmd, "req", usage_req, "verbus-req");
	rc = parse(&r, false, argc, argv);
	if (rc) {
		cli_headers_free(&r.hdrs);
		return rc < 0 ? CLI_EXIT_OK : rc;
	}
	cli_catch_signals();
	if (cli_connect(&r.cmd, VB_OPT_NO_RECONNECT, NULL, NULL, &r.ev, &c)) {
		cli_headers_free(&r.hdrs);
		return CLI_EXIT_FAIL;
	}
	for (i = 0; i < (r.count ? r.count : 1) && !cli_stop; i++) {
		status = request_one(&r, c, r.data ? r.data : "");
		if (status != CLI_EXIT_OK)
			break;
	}
	if (status == CLI_EXIT_OK && cli_stop) {
		cli_error(&r.cmd, "interrupted");
		status = CLI_EXIT_FAIL;
	}
	vb_close(c);
	cli_headers_free(&r.hdrs);
	return status;
}

static void on_request(struct vb_conn *c, const struct vb_msg *m, void *arg)
{
	struct rr *r = arg;
	const void *data = r->data ? r->data : m->data;
	size_t size = r->data ? strlen(r->data) : m->size;
	int rc;

	r->got++;
	if (!r->quiet)
		cli_print_msg(stdout, r->got, m, r->mode);
	if (m->reply == NULL) {
		fprintf(stderr,
			"verbus: the message on %.*s has no reply subject: "
			"not answered\n",
			(int)m->subject_len, m->subject);
		r->failed++;
		return;
	}
	/* Without room (VB_EAGAIN: pending_max bytes of answers unsent),
	 * the answer is counted as failed rather than waited for: a
	 * callback must not block. */
	rc = vb_respond_msg(c, m, r->hdrs.h, r->hdrs.n, data, size);
	if (rc == VB_OK) {
		r->answered++;
		return;
	}
	fprintf(stderr, "verbus: answer to %.*s not sent: %s\n",
		(int)m->reply_len, m->reply, vb_strerror(rc));
	r->failed++;
}

int cli_cmd_reply(int argc, char **argv)
{
	struct rr r = { 0 };
	struct vb_conn *c;
	int rc, status;

	cli_cmd_init(&r.cmd, "reply", usage_reply, "verbus-reply");
	rc = parse(&r, true, argc, argv);
	if (rc) {
		cli_headers_free(&r.hdrs);
		return rc < 0 ? CLI_EXIT_OK : rc;
	}
	cli_catch_signals();
	if (cli_connect(&r.cmd, 0, NULL, NULL, &r.ev, &c)) {
		cli_headers_free(&r.hdrs);
		return CLI_EXIT_FAIL;
	}
	status = cli_subscribe(&r.cmd, c, &r.ev, r.subject, r.queue, r.count,
			       on_request, &r);
	if (status == 0) {
		status = cli_wait_count(&r.cmd, c, &r.ev, &r.got, r.count,
					r.timeout_ms);
		if (status == CLI_TIMED_OUT && r.count) {
			cli_error(&r.cmd,
				  "timed out after %llu of %llu "
				  "requests",
				  (unsigned long long)r.got,
				  (unsigned long long)r.count);
			status = CLI_EXIT_FAIL;
		} else if (status == CLI_TIMED_OUT) {
			status = CLI_EXIT_OK;
		}
	}
	/* The last answers must leave before the connection closes. */
	if (r.answered && !r.ev.closed) {
		rc = vb_flush(c, CLI_CONFIRM_MS);
		if (rc != VB_OK) {
			cli_error(&r.cmd,
				  "the last answers were not confirmed: "
				  "%s",
				  vb_strerror(rc));
			status = CLI_EXIT_FAIL;
		}
	}
	fflush(stdout);
	fprintf(stderr, "verbus: answered %llu of %llu request%s\n",
		(unsigned long long)r.answered, (unsigned long long)r.got,
		r.got == 1 ? "" : "s");
	if (status == CLI_EXIT_OK && r.failed)
		status = CLI_EXIT_FAIL;
	vb_close(c);
	cli_headers_free(&r.hdrs);
	return status;
}
