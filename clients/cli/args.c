/*
 * args.c - parsing the verbus command line's values (see args.h).
 *
 * Strict on purpose: "10x", " 10", "-1" and "" are errors, not 10 or 0,
 * because a benchmark or a publisher that silently ran with another count
 * than the one typed is worse than one that refuses to start.  URLs are
 * read by vb_url_parse(), the library's own parser: the tool checks them
 * first only to say precisely what is wrong (vb_connect() answers just
 * VB_EINVAL), and the monitor's http URL is the same grammar with another
 * scheme and default port.  Sizes are read by core/parse.h's
 * vbi_parse_size(), verbusd's reader of its own sizes, so that "64KiB"
 * means the same to the tool and to the broker: the one place the tool
 * reaches past the public header (it links libverbus's static objects,
 * where that function lives; it is pure, with nothing to set up).
 */
#include "cli/args.h"

#include "core/parse.h"

#include <verbus/verbus.h>

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
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

/* A duration's unit and its multiplier. */
struct unit {
	const char *name; /* compared without case */
	uint64_t mult; /* milliseconds */
};

static const struct unit time_units[] = {
	{ "", 1 },
	{ "ms", 1 },
	{ "s", 1000 },
	{ "m", 60000 },
};

/* Digits and a unit from @units, multiplied out. */
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

	if (!vbi_parse_size(s, &v, NULL) || v < min || v > max)
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

int cli_parse_url(const char *s, struct vb_url *u, char *err, size_t errlen)
{
	struct vb_url r;

	if (vb_url_parse(s, &r, err, errlen) ||
	    vb_url_supported(&r, err, errlen))
		return -1;
	*u = r;
	return 0;
}

int cli_parse_servers(const char *s, struct vb_url *first, size_t *n,
		      size_t *ntls, char *err, size_t errlen)
{
	struct vb_url all[VB_URL_LIST_MAX];
	size_t i, tls = 0;
	int k;

	k = vb_url_list_parse(s, all, VB_URL_LIST_MAX, err, errlen);
	if (k < 1)
		return -1;
	for (i = 0; i < (size_t)k; i++)
		tls += strcmp(all[i].scheme, "tls") == 0;
	*first = all[0];
	*n = (size_t)k;
	*ntls = tls;
	return 0;
}

int cli_monitor_url(const char *s, const struct vb_url *server, char *buf,
		    size_t len, char *err, size_t errlen)
{
	struct vb_url m;
	char url[sizeof(m.scheme) + 3 + sizeof(m.host) + 2 + sizeof(m.port)];
	unsigned port = CLI_MONITOR_PORT;
	size_t n;
	int w;

	if (s == NULL) {
		if (server == NULL)
			return bad(err, errlen, "no broker to ask");
		m = *server;
	} else {
		/* One trailing slash is what people paste from a browser. */
		n = strlen(s);
		if (n && s[n - 1] == '/')
			n--;
		if (n >= sizeof(url))
			return bad(err, errlen, "URL too long");
		memcpy(url, s, n);
		url[n] = '\0';
		/* The broker's grammar, another scheme and default port. */
		if (vb_url_parse(url, &m, err, errlen))
			return -1;
		if (m.has_scheme && strcmp(m.scheme, "http") != 0)
			return bad(err, errlen,
				   "unsupported scheme '%s://' (the monitor's "
				   "URL is http://HOST:PORT)",
				   m.scheme);
		if (m.has_port)
			port = (unsigned)atoi(m.port);
	}
	w = snprintf(buf, len,
		     strchr(m.host, ':') ? "http://[%s]:%u" : "http://%s:%u",
		     m.host, port);
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
