/*
 * args.c - parsing the verbus command line's values (see args.h).
 *
 * Strict on purpose: "10x", " 10", "-1" and "" are errors, not 10 or 0,
 * because a benchmark or a publisher that silently ran with another count
 * than the one typed is worse than one that refuses to start.  The URL
 * grammar is the one vb_connect() accepts; the tool checks it first only to
 * say precisely what is wrong (the library answers VB_EINVAL).
 */
#include "cli/args.h"

#include <verbus/verbus.h>

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The digits from @s up to @end into *@out; -1 if there are none, a
 * non-digit, or more than u64 holds. */
static int digits(const char *s, const char *end, uint64_t *out)
{
	uint64_t v = 0;

	if (s == end)
		return -1;
	for (; s < end; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

/* Where the leading digits of @s end. */
static const char *digits_end(const char *s)
{
	while (*s >= '0' && *s <= '9')
		s++;
	return s;
}

int cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v;

	if (s == NULL || digits(s, s + strlen(s), &v) || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* A size suffix and its multiplier. */
struct unit {
	const char *name; /* compared without case */
	uint64_t mult; /* bytes or milliseconds */
};

static const struct unit size_units[] = {
	{ "", 1 },	     { "b", 1 },
	{ "k", 1ull << 10 }, { "kib", 1ull << 10 },
	{ "m", 1ull << 20 }, { "mib", 1ull << 20 },
	{ "g", 1ull << 30 }, { "gib", 1ull << 30 },
};

static const struct unit time_units[] = {
	{ "", 1 },
	{ "ms", 1 },
	{ "s", 1000 },
	{ "m", 60000 },
};

/* Digits and a suffix from @units, multiplied out. */
static int number_with_unit(const char *s, const struct unit *units,
			    size_t nunits, uint64_t *out)
{
	const char *end;
	uint64_t v;
	size_t i;

	if (s == NULL)
		return -1;
	end = digits_end(s);
	if (digits(s, end, &v))
		return -1;
	for (i = 0; i < nunits; i++) {
		if (strcasecmp(end, units[i].name) != 0)
			continue;
		if (v > UINT64_MAX / units[i].mult)
			return -1;
		*out = v * units[i].mult;
		return 0;
	}
	return -1;
}

int cli_parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v;

	if (number_with_unit(s, size_units,
			     sizeof(size_units) / sizeof(size_units[0]), &v) ||
	    v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int cli_parse_size_list(const char *s, uint64_t min, uint64_t max, uint64_t *v,
			size_t cap, size_t *n)
{
	char item[32];
	const char *p = s, *comma;
	size_t k = 0, len;

	if (s == NULL || *s == '\0')
		return -1;
	for (;;) {
		comma = strchr(p, ',');
		len = comma ? (size_t)(comma - p) : strlen(p);
		if (len == 0 || len >= sizeof(item) || k == cap)
			return -1;
		memcpy(item, p, len);
		item[len] = '\0';
		if (cli_parse_size(item, min, max, &v[k]))
			return -1;
		k++;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	*n = k;
	return 0;
}

int cli_parse_ms(const char *s, int min, int *out)
{
	uint64_t v;

	if (number_with_unit(s, time_units,
			     sizeof(time_units) / sizeof(time_units[0]), &v) ||
	    v > INT_MAX || (int)v < min)
		return -1;
	*out = (int)v;
	return 0;
}

/* Format a reason into @err; returns -1. */
static int bad(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int host_char_ok(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_';
}

/* HOST[:PORT] at @p (the scheme already skipped) into @u; port @defport
 * if it has none. */
static int host_port(const char *p, unsigned defport, struct cli_url *u,
		     char *err, size_t errlen)
{
	struct cli_url r = { .port = defport };
	const char *host, *host_end, *q;
	uint64_t port;
	size_t len;

	if (strchr(p, '@'))
		return bad(err, errlen,
			   "credentials do not belong in the URL: use --token "
			   "or --user and --password");
	if (*p == '[') {
		host = p + 1;
		host_end = strchr(host, ']');
		if (host_end == NULL)
			return bad(err, errlen,
				   "missing ']' after the IPv6 address");
		for (q = host; q < host_end; q++)
			if (!(*q == ':' || *q == '%' || host_char_ok(*q)))
				return bad(err, errlen,
					   "bad character '%c' in the IPv6 "
					   "address",
					   *q);
		r.ipv6 = 1;
		p = host_end + 1;
	} else {
		host = p;
		while (*p && *p != ':' && *p != '/')
			p++;
		host_end = p;
		for (q = host; q < host_end; q++)
			if (!host_char_ok(*q))
				return bad(err, errlen,
					   "bad character '%c' in the host "
					   "name",
					   *q);
	}
	len = (size_t)(host_end - host);
	if (len == 0)
		return bad(err, errlen, "no host");
	if (len >= sizeof(r.host))
		return bad(err, errlen, "host name too long");
	memcpy(r.host, host, len);
	r.host[len] = '\0';
	if (*p == ':') {
		if (cli_parse_u64(p + 1, 1, 65535, &port))
			return bad(err, errlen, "bad port '%s' (1-65535)",
				   p + 1);
		r.port = (unsigned)port;
	} else if (*p != '\0') {
		return bad(err, errlen, "unexpected '%s' after the host", p);
	}
	*u = r;
	return 0;
}

/* The part of @s after "SCHEME://" if it has one, else @s; *@scheme and
 * *@slen say which scheme (length 0: none). */
static const char *split_scheme(const char *s, const char **scheme,
				size_t *slen)
{
	const char *p = strstr(s, "://");

	*scheme = s;
	*slen = p ? (size_t)(p - s) : 0;
	return p ? p + 3 : s;
}

int cli_parse_url(const char *s, struct cli_url *u, char *err, size_t errlen)
{
	const char *scheme, *rest;
	size_t slen;

	if (s == NULL || *s == '\0')
		return bad(err, errlen, "empty URL");
	rest = split_scheme(s, &scheme, &slen);
	if (rest != s && (slen != 4 || strncmp(scheme, "rdma", 4) != 0))
		return bad(err, errlen,
			   "unsupported scheme '%.*s://' (the broker's URL is "
			   "rdma://HOST:PORT)",
			   (int)(slen > 16 ? 16 : slen), scheme);
	return host_port(rest, VB_DEFAULT_PORT, u, err, errlen);
}

int cli_monitor_url(const char *s, const struct cli_url *server, char *buf,
		    size_t len, char *err, size_t errlen)
{
	struct cli_url m;
	const char *scheme, *rest;
	char hostport[300];
	size_t slen, n;
	int w;

	if (s == NULL) {
		if (server == NULL)
			return bad(err, errlen, "no broker to ask");
		m = *server;
		m.port = CLI_MONITOR_PORT;
	} else {
		if (*s == '\0')
			return bad(err, errlen, "empty URL");
		rest = split_scheme(s, &scheme, &slen);
		if (rest != s && (slen != 4 || strncmp(scheme, "http", 4) != 0))
			return bad(
				err, errlen,
				"unsupported scheme '%.*s://' (the monitor's "
				"URL is http://HOST:PORT)",
				(int)(slen > 16 ? 16 : slen), scheme);
		/* One trailing slash is what people paste from a browser. */
		n = strlen(rest);
		if (n && rest[n - 1] == '/')
			n--;
		if (n >= sizeof(hostport))
			return bad(err, errlen, "URL too long");
		memcpy(hostport, rest, n);
		hostport[n] = '\0';
		if (host_port(hostport, CLI_MONITOR_PORT, &m, err, errlen))
			return -1;
	}
	w = snprintf(buf, len, m.ipv6 ? "http://[%s]:%u" : "http://%s:%u",
		     m.host, m.port);
	if (w < 0 || (size_t)w >= len)
		return bad(err, errlen, "URL too long");
	return 0;
}

int cli_parse_format(const char *s, enum cli_format *out)
{
	static const struct {
		const char *name;
		enum cli_format fmt;
	} names[] = {
		{ "table", CLI_FMT_TABLE },
		{ "csv", CLI_FMT_CSV },
		{ "json", CLI_FMT_JSON },
	};
	size_t i;

	for (i = 0; s && i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i].name) == 0) {
			*out = names[i].fmt;
			return 0;
		}
	}
	return -1;
}
