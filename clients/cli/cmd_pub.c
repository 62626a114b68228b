/*
 * cmd_pub.c - `verbus pub SUBJECT [DATA]`: publish DATA, each line of
 * stdin, or generated payloads.
 *
 * The command ends with vb_flush(): when it says "published", the broker
 * has routed every message (not merely received the bytes), so a script
 * may run `verbus pub` and then look at what the subscribers got.
 * Backpressure (VB_EAGAIN) is waited out, never turned into a loss.
 *
 * Lines of stdin leave as they are read, batched only while more input is
 * already waiting.  libverbus posts the first publish made outside
 * vb_process() at once and coalesces the ones after it until the
 * connection is next processed; so whenever no complete line is buffered
 * and poll() says stdin has nothing waiting, the loop processes the
 * connection (posting what it published) before it sleeps in poll() on
 * both stdin and vb_fd().  `tail -f log | verbus pub` thus sends each line
 * at once, and a burst (a file, a fast writer) still goes as few writes:
 * VB_OPT_NODELAY would post every line of it separately.  The loop reads
 * fd 0 itself, not through stdio, because whether a whole line is already
 * buffered decides whether to process first, and stdio does not say.
 */
#include "cli/common.h"
#include "cli/headers.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The largest stdin --raw reads: far beyond any broker's max_msg, so the
 * broker's limit, not ours, is what a user meets. */
#define RAW_MAX (64u << 20)
/* Stdin is read this much at a time (a pipe's default capacity). */
#define READ_CHUNK 65536u
#define FLUSH_TIMEOUT_MS 10000

enum {
	OPT_RAW = CLI_OPT_FIRST_OWN,
	OPT_INTERVAL,
};

/* One run of the command. */
struct pub {
	struct cli_cmd cmd; /* shared options */
	struct cli_events ev; /* connection events */
	struct vb_conn *c; /* the connection */
	const char *subject; /* where to */
	const char *reply; /* --reply, or NULL */
	uint64_t count; /* --count; 0: not given */
	uint64_t size; /* --size */
	bool generate; /* --size was given */
	bool raw; /* --raw: stdin is one message */
	bool quiet; /* no summary */
	int interval_ms; /* --interval */
	int timeout_ms; /* for the final flush */
	uint64_t sent; /* messages published */
	uint64_t bytes; /* their payload bytes */
	uint64_t waits; /* times VB_EAGAIN made us wait */
	struct cli_headers hdrs; /* --header, on every message */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: verbus pub [options] SUBJECT [DATA]\n"
		"\n"
		"Publish DATA to SUBJECT (--count times).  Without DATA, each "
		"line of stdin\nis one message (the newline removed), sent as "
		"soon as it is read, or all of\nstdin is one with --raw; with "
		"--size, generated payloads of that size\n(\"#SEQ \" and "
		"filler).  The command returns once the broker has routed\n"
		"every message.\n"
		"\n"
		"  -c, --count N         publish N messages [1; stdin: every "
		"line]\n"
		"  -z, --size SIZE       generated payloads of SIZE bytes (64, "
		"4K, 1M)\n"
		"  -r, --reply SUBJECT   ask receivers to answer to SUBJECT\n"
		"  -H, --header 'K: V'   a header on every message (repeat "
		"for more)\n"
		"      --raw             stdin, byte for byte, as one message\n"
		"      --interval MS     pause between messages (100, 1s)\n"
		"  -t, --timeout MS      wait for the broker's confirmation "
		"[10s]\n"
		"  -q, --quiet           no summary on stderr\n"
		"\n" CLI_COMMON_HELP);
}

/* What publish() returns when SIGINT or SIGTERM stopped it (above every
 * vb_err, which are <= 0). */
#define INTERRUPTED 1
/* What the stdin loop returns when reading stdin failed, said already. */
#define STDIN_FAILED 2

/* Publish one message, waiting out backpressure.  Returns a vb_err or
 * INTERRUPTED. */
static int publish(struct pub *p, const void *data, size_t size)
{
	int rc;

	for (;;) {
		rc = vb_publish_msg(p->c, p->subject, p->reply, p->hdrs.h,
				    p->hdrs.n, data, size);
		if (rc != VB_EAGAIN)
			break;
		p->waits++;
		rc = vb_poll(p->c, 100);
		if (rc == VB_ECLOSED)
			return rc;
		if (cli_stop)
			return INTERRUPTED;
	}
	if (rc == VB_OK) {
		p->sent++;
		p->bytes += size;
	}
	return rc;
}

/* Between two messages: keep the connection moving for @ms.  Returns
 * VB_OK, VB_ECLOSED or INTERRUPTED. */
static int pause_ms(struct pub *p, int ms)
{
	uint64_t end = cli_now_ns() + (uint64_t)ms * 1000000u, now;
	int rc;

	while ((now = cli_now_ns()) < end) {
		rc = vb_poll(p->c, (int)((end - now + 999999) / 1000000));
		if (rc == VB_ECLOSED)
			return rc;
		if (cli_stop)
			return INTERRUPTED;
	}
	return VB_OK;
}

/* Say why a publish failed; returns the exit status. */
static int publish_failed(struct pub *p, int rc, size_t size)
{
	struct vb_stats st = { .sz = sizeof(st) };

	switch (rc) {
	case INTERRUPTED:
		cli_error(&p->cmd, "interrupted after %llu messages",
			  (unsigned long long)p->sent);
		break;
	case VB_EINVAL:
		return cli_usage_error(
			&p->cmd,
			"bad subject '%s'%s%s%s (tokens "
			"separated by '.', no wildcards or "
			"spaces)",
			p->subject, p->reply ? " or reply '" : "",
			p->reply ? p->reply : "", p->reply ? "'" : "");
	case VB_EMSGSIZE:
		if (vb_stats(p->c, &st) == VB_OK && st.max_msg) {
			cli_error(&p->cmd,
				  "a message of %zu bytes is larger than the "
				  "broker takes: %llu bytes (subject and data) "
				  "in one frame, %llu as a large message%s",
				  size, (unsigned long long)st.max_msg,
				  (unsigned long long)st.max_payload,
				  st.max_payload ? "" :
						   " (it takes no large ones)");
			break;
		}
		cli_error(&p->cmd,
			  "a message of %zu bytes is larger than the "
			  "connection's or the broker's largest message",
			  size);
		break;
	default:
		cli_error(&p->cmd, "publishing failed: %s",
			  p->ev.closed ? vb_strerror(p->ev.close_err) :
					 vb_strerror(rc));
	}
	return CLI_EXIT_FAIL;
}

/* The "#SEQ " prefix and a repeating alphabet, @size bytes in @buf. */
static void fill_generated(char *buf, size_t size, uint64_t seq)
{
	char head[32];
	size_t n, i;

	n = (size_t)snprintf(head, sizeof(head), "#%llu ",
			     (unsigned long long)seq);
	for (i = 0; i < size; i++)
		buf[i] = i < n ? head[i] : (char)('a' + (i - n) % 26);
}

static int run_generated(struct pub *p, const char *data)
{
	uint64_t n = p->count ? p->count : 1, i;
	char *buf = NULL;
	size_t size = data ? strlen(data) : p->size;
	int rc = VB_OK;

	if (data == NULL) {
		buf = malloc(size ? size : 1);
		if (buf == NULL) {
			cli_error(&p->cmd, "out of memory");
			return CLI_EXIT_FAIL;
		}
	}
	for (i = 0; i < n && rc == VB_OK; i++) {
		if (i && p->interval_ms) {
			rc = pause_ms(p, p->interval_ms);
			if (rc != VB_OK)
				break;
		}
		if (buf)
			fill_generated(buf, size, i + 1);
		rc = publish(p, buf ? buf : data, size);
	}
	free(buf);
	return rc == VB_OK ? CLI_EXIT_OK : publish_failed(p, rc, size);
}

/* All of stdin into *@out (malloc()ed), *@len bytes.  Returns 0, or -1
 * after saying why. */
static int slurp_stdin(struct pub *p, char **out, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap), *bigger;
	ssize_t r;

	while (buf != NULL) {
		if (n == cap) {
			if (cap >= RAW_MAX) {
				cli_error(&p->cmd,
					  "stdin is larger than %u MiB",
					  RAW_MAX >> 20);
				free(buf);
				return -1;
			}
			cap *= 2;
			bigger = realloc(buf, cap);
			if (bigger == NULL)
				break;
			buf = bigger;
		}
		r = read(STDIN_FILENO, buf + n, cap - n);
		if (r < 0 && errno == EINTR && !cli_stop)
			continue;
		if (r < 0) {
			cli_error(&p->cmd, "reading stdin: %s",
				  strerror(errno));
			free(buf);
			return -1;
		}
		if (r == 0) {
			*out = buf;
			*len = n;
			return 0;
		}
		n += (size_t)r;
	}
	free(buf);
	cli_error(&p->cmd, "out of memory reading stdin");
	return -1;
}

/* Stdin as lines, read from fd 0 by us (see the note at the top). */
struct lines {
	char *buf; /* malloc()ed, @cap bytes; NULL before the first read */
	size_t cap; /* its size */
	size_t start; /* the first byte not yet returned as a line */
	size_t scanned; /* [start, scanned) has no newline: not searched again */
	size_t end; /* the end of what was read */
	bool eof; /* read() returned 0 */
};

/*
 * Wait until stdin has something to read (or its end), keeping the
 * connection going.  Input already waiting is read at once, with no turn
 * of the connection in between, so that a burst leaves in few writes; else
 * what was published goes out (vb_process) before we sleep.  Returns
 * VB_OK, VB_ECLOSED, INTERRUPTED or STDIN_FAILED.
 */
static int wait_stdin(struct pub *p)
{
	struct pollfd fds[2] = {
		{ .fd = STDIN_FILENO, .events = POLLIN },
		{ .fd = vb_fd(p->c), .events = POLLIN },
	};
	int timeout = 0, n;

	for (;;) {
		n = poll(fds, 2, timeout);
		if (cli_stop)
			return INTERRUPTED;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			cli_error(&p->cmd, "waiting for stdin: %s",
				  strerror(errno));
			return STDIN_FAILED;
		}
		/* POLLHUP, POLLERR, POLLNVAL too: the read says what. */
		if (fds[0].revents)
			return VB_OK;
		/* Nothing to read: post what is staged, then sleep.  Later
		 * wake-ups of vb_fd() (credit back, events, timers) are
		 * handled as they come. */
		if ((timeout == 0 || fds[1].revents) &&
		    vb_process(p->c) == VB_ECLOSED)
			return VB_ECLOSED;
		timeout = -1;
	}
}

/* Read what stdin has into @lb (one read()).  Returns VB_OK,
 * INTERRUPTED or STDIN_FAILED. */
static int lines_fill(struct pub *p, struct lines *lb)
{
	size_t used = lb->end - lb->start, cap;
	char *bigger;
	ssize_t r;

	if (lb->start) {
		memmove(lb->buf, lb->buf + lb->start, used);
		lb->scanned -= lb->start;
		lb->start = 0;
		lb->end = used;
	}
	if (lb->cap - used < READ_CHUNK) {
		if (used >= RAW_MAX) {
			cli_error(&p->cmd,
				  "a line of stdin is longer than %u MiB",
				  RAW_MAX >> 20);
			return STDIN_FAILED;
		}
		cap = lb->cap ? 2 * lb->cap : 2 * READ_CHUNK;
		bigger = realloc(lb->buf, cap);
		if (bigger == NULL) {
			cli_error(&p->cmd, "out of memory reading stdin");
			return STDIN_FAILED;
		}
		lb->buf = bigger;
		lb->cap = cap;
	}
	do {
		r = read(STDIN_FILENO, lb->buf + lb->end, lb->cap - lb->end);
		if (cli_stop)
			return INTERRUPTED;
	} while (r < 0 && errno == EINTR);
	if (r < 0) {
		cli_error(&p->cmd, "reading stdin: %s", strerror(errno));
		return STDIN_FAILED;
	}
	lb->end += (size_t)r;
	lb->eof = r == 0;
	return VB_OK;
}

/*
 * The next line of stdin, without its newline, at *@line (valid until the
 * next call), *@len bytes; *@line NULL at the end of stdin.  The last
 * line may lack its newline.  Returns VB_OK, VB_ECLOSED, INTERRUPTED or
 * STDIN_FAILED.
 */
static int next_line(struct pub *p, struct lines *lb, char **line, size_t *len)
{
	char *nl;
	int rc;

	for (;;) {
		nl = lb->end > lb->scanned ? memchr(lb->buf + lb->scanned, '\n',
						    lb->end - lb->scanned) :
					     NULL;
		lb->scanned = lb->end;
		if (nl || (lb->eof && lb->end > lb->start)) {
			*line = lb->buf + lb->start;
			*len = nl ? (size_t)(nl - *line) : lb->end - lb->start;
			lb->start = nl ? (size_t)(nl - lb->buf) + 1 : lb->end;
			lb->scanned = lb->start;
			return VB_OK;
		}
		if (lb->eof) {
			*line = NULL;
			return VB_OK;
		}
		rc = wait_stdin(p);
		if (rc == VB_OK)
			rc = lines_fill(p, lb);
		if (rc != VB_OK)
			return rc;
	}
}

static int run_stdin(struct pub *p)
{
	struct lines lb = { 0 };
	char *line = NULL;
	size_t len = 0;
	int rc = VB_OK;

	if (isatty(STDIN_FILENO))
		fprintf(stderr, "verbus: reading %s from stdin (Ctrl-D ends)\n",
			p->raw ? "one message" : "messages, one a line");
	if (p->raw) {
		if (slurp_stdin(p, &line, &len))
			return CLI_EXIT_FAIL;
		rc = publish(p, line, len);
		free(line);
		return rc == VB_OK ? CLI_EXIT_OK : publish_failed(p, rc, len);
	}
	while (!cli_stop && (!p->count || p->sent < p->count)) {
		rc = next_line(p, &lb, &line, &len);
		if (rc != VB_OK || line == NULL)
			break;
		if (p->sent && p->interval_ms) {
			rc = pause_ms(p, p->interval_ms);
			if (rc != VB_OK)
				break;
		}
		rc = publish(p, line, len);
		if (rc != VB_OK)
			break;
	}
	free(lb.buf);
	if (rc == VB_OK && cli_stop)
		rc = INTERRUPTED;
	if (rc == STDIN_FAILED)
		return CLI_EXIT_FAIL;
	return rc == VB_OK ? CLI_EXIT_OK : publish_failed(p, rc, len);
}

static int parse(struct pub *p, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "count", required_argument, NULL, 'c' },
		{ "size", required_argument, NULL, 'z' },
		{ "reply", required_argument, NULL, 'r' },
		{ "header", required_argument, NULL, 'H' },
		{ "raw", no_argument, NULL, OPT_RAW },
		{ "interval", required_argument, NULL, OPT_INTERVAL },
		{ "timeout", required_argument, NULL, 't' },
		{ "quiet", no_argument, NULL, 'q' },
		CLI_COMMON_LONGOPTS,
	};
	char why[160];
	int opt, rc;

	while ((opt = getopt_long(argc, argv,
				  CLI_COMMON_SHORTOPTS "c:z:r:H:t:q", longopts,
				  NULL)) != -1) {
		rc = cli_common_option(&p->cmd, opt, argv);
		if (rc == 1)
			continue;
		if (rc)
			return rc;
		switch (opt) {
		case 'c':
			if (cli_parse_u64(optarg, 1, UINT64_MAX, &p->count))
				return cli_bad_value(&p->cmd, "--count", optarg,
						     "a whole number, 1 or "
						     "more");
			break;
		case 'z':
			if (cli_parse_size(optarg, 0, 1u << 30, &p->size))
				return cli_bad_value(&p->cmd, "--size", optarg,
						     "a size such as 64, 4K "
						     "or 1M");
			p->generate = true;
			break;
		case 'r':
			p->reply = optarg;
			break;
		case 'H':
			if (cli_headers_add(&p->hdrs, optarg, why, sizeof(why)))
				return cli_usage_error(&p->cmd, "--header: %s",
						       why);
			break;
		case OPT_RAW:
			p->raw = true;
			break;
		case OPT_INTERVAL:
			if (cli_parse_ms(optarg, 0, &p->interval_ms))
				return cli_bad_value(&p->cmd, "--interval",
						     optarg,
						     "a duration such as 100, "
						     "100ms or 1s");
			break;
		case 't':
			if (cli_parse_ms(optarg, 1, &p->timeout_ms))
				return cli_bad_value(&p->cmd, "--timeout",
						     optarg,
						     "a duration such as 500, "
						     "500ms or 5s");
			break;
		case 'q':
			p->quiet = true;
			break;
		}
	}
	rc = cli_finish_options(&p->cmd);
	if (rc)
		return rc;
	if (optind >= argc)
		return cli_usage_error(&p->cmd, "missing SUBJECT");
	p->subject = argv[optind++];
	if (optind < argc - 1)
		return cli_usage_error(&p->cmd,
				       "too many arguments ('%s'...): quote "
				       "DATA that has spaces",
				       argv[optind + 1]);
	if (optind < argc && p->generate)
		return cli_usage_error(&p->cmd,
				       "DATA and --size are exclusive: "
				       "--size generates the payloads");
	if (p->raw && (optind < argc || p->generate || p->count))
		return cli_usage_error(&p->cmd,
				       "--raw reads one message from stdin: "
				       "no DATA, --size or --count with it");
	return 0;
}

int cli_cmd_pub(int argc, char **argv)
{
	struct pub p = { .timeout_ms = FLUSH_TIMEOUT_MS };
	const char *data;
	uint64_t t0;
	int rc, status;

	cli_cmd_init(&p.cmd, "pub", usage, "verbus-pub");
	rc = parse(&p, argc, argv);
	if (rc) {
		cli_headers_free(&p.hdrs);
		return rc < 0 ? CLI_EXIT_OK : rc;
	}
	data = optind < argc ? argv[optind] : NULL;
	/* With fd 0 closed, the connection's first descriptor would become
	 * fd 0 and the stdin loop would read the library's own fds. */
	if (data == NULL && !p.generate && fcntl(STDIN_FILENO, F_GETFD) < 0) {
		cli_error(&p.cmd, "stdin is closed: give DATA, --size or some "
				  "input");
		status = CLI_EXIT_FAIL;
		goto out_free_headers;
	}
	cli_catch_signals();
	if (cli_connect(&p.cmd, VB_OPT_NO_RECONNECT, NULL, NULL, &p.ev, &p.c)) {
		status = CLI_EXIT_FAIL;
		goto out_free_headers;
	}
	t0 = cli_now_ns();
	if (data != NULL || p.generate)
		status = run_generated(&p, data);
	else
		status = run_stdin(&p);
	if (status == CLI_EXIT_OK && p.sent) {
		rc = vb_flush(p.c, p.timeout_ms);
		if (rc != VB_OK) {
			cli_error(&p.cmd,
				  "the broker did not confirm the messages: "
				  "%s",
				  vb_strerror(rc));
			status = CLI_EXIT_FAIL;
		}
	}
	if (status == CLI_EXIT_OK && p.ev.notices) {
		cli_error(&p.cmd, "the broker refused %llu message%s",
			  (unsigned long long)p.ev.notices,
			  p.ev.notices == 1 ? "" : "s");
		status = CLI_EXIT_FAIL;
	}
	if (p.ev.no_responders && !p.quiet)
		fprintf(stderr,
			"verbus: no responders: nobody subscribes to %s (%llu "
			"message%s with a reply subject)\n",
			p.subject, (unsigned long long)p.ev.no_responders,
			p.ev.no_responders == 1 ? "" : "s");
	if (status == CLI_EXIT_OK && !p.quiet)
		fprintf(stderr,
			"verbus: published %llu message%s (%llu bytes) to %s "
			"in %.3f ms\n",
			(unsigned long long)p.sent, p.sent == 1 ? "" : "s",
			(unsigned long long)p.bytes, p.subject,
			(double)(cli_now_ns() - t0) / 1e6);
	vb_close(p.c);
out_free_headers:
	cli_headers_free(&p.hdrs);
	return status;
}
