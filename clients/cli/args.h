/*
 * args.h - what people type on the verbus command line: numbers, sizes,
 * durations, lists of sizes, broker and monitor URLs, output formats.
 *
 * Pure functions: no I/O, no globals, nothing allocated; URLs are read by
 * libverbus's own parser (vb_url_parse), never by a grammar of the tool's.
 * Each returns 0 and writes its output, or -1 and leaves the output alone;
 * the caller prints the message (it knows which option was wrong).
 *
 * Threading: reentrant.  Ownership: reads the caller's NUL-terminated
 * strings only.
 */
#ifndef VERBUS_CLI_ARGS_H
#define VERBUS_CLI_ARGS_H

#include <verbus/verbus.h>

#include <stddef.h>
#include <stdint.h>

/* The HTTP port verbusd's monitoring endpoint listens on by default. */
#define CLI_MONITOR_PORT 8222

/*
 * cli_parse_u64() - a plain decimal number (digits only: no sign, space
 * or suffix) from @min to @max.
 */
int cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/*
 * cli_parse_size() - a byte count as verbusd reads its sizes
 * (vbi_parse_size(), core/parse.h): decimal digits and an optional unit,
 * B, K/KB/KiB, M/MB/MiB or G/GB/GiB, any case, binary multiples ("64K",
 * "64KB" and "64KiB" are 65536), from @min to @max.
 */
int cli_parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/*
 * cli_parse_size_list() - comma-separated sizes ("64,1K,64K"), each as
 * cli_parse_size() from @min to @max, at most @cap of them, into @v;
 * *@n is their number (at least one).  On failure @v may have been
 * partly written, *@n is not.
 */
int cli_parse_size_list(const char *s, uint64_t min, uint64_t max, uint64_t *v,
			size_t cap, size_t *n);

/*
 * cli_parse_ms() - a duration in milliseconds: digits and an optional unit,
 * "ms" (the default), "s" or "m", from @min ms up to INT_MAX ms.
 */
int cli_parse_ms(const char *s, int min, int *out);

/*
 * cli_parse_url() - a broker URL, read by vb_url_parse() (the grammar
 * vb_connect() accepts) and refused unless this build has a transport for
 * its scheme (vb_url_supported()), so that a wrong -s is a usage error
 * before anything connects.  On failure the library's lowercase reason
 * goes to @err (@errlen bytes, NUL-terminated).
 */
int cli_parse_url(const char *s, struct vb_url *u, char *err, size_t errlen);

/*
 * cli_parse_servers() - -s's value: one broker URL or a comma-separated
 * list of them, read by vb_url_list_parse() (what vb_connect() accepts;
 * each element as cli_parse_url() reads one).  On success *@first is the
 * first server, *@n the number of distinct ones and *@ntls how many of
 * them are tls://; on failure the library's reason goes to @err.
 */
int cli_parse_servers(const char *s, struct vb_url *first, size_t *n,
		      size_t *ntls, char *err, size_t errlen);

/*
 * cli_monitor_url() - the base URL of a broker's monitoring endpoint,
 * without a trailing slash, into @buf (@len bytes).  @s is what the user
 * gave ("http://HOST:PORT", "HOST:PORT", "HOST"; port 8222 if left out;
 * read by vb_url_parse(), scheme http only), or NULL: then
 * http://HOST:8222 for the host of @server.  On failure a reason goes to
 * @err.
 */
int cli_monitor_url(const char *s, const struct vb_url *server, char *buf,
		    size_t len, char *err, size_t errlen);

/* How a command prints its results. */
enum cli_format {
	CLI_FMT_TABLE, /* aligned columns, for people */
	CLI_FMT_CSV, /* one header line, then one line per row */
	CLI_FMT_JSON, /* one JSON document */
};

/* cli_parse_format() - "table", "csv" or "json". */
int cli_parse_format(const char *s, enum cli_format *out);

#endif /* VERBUS_CLI_ARGS_H */
