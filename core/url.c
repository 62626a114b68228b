/*
 * url.c - broker URLs (see url.h).
 *
 * The scheme is checked for its syntax only (RFC 3986's, at most 15
 * characters): which schemes have a transport is decided in transport/,
 * which core/ may not see.  "://" marks a scheme; without it the whole
 * string is HOST[:PORT], so "10.0.0.1:7700" is not read as scheme "10.0.0.1".
 */
#include "core/url.h"
#include "core/parse.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

__attribute__((format(printf, 3, 4))) static int bad(char *err, size_t errlen,
						     const char *fmt, ...)
{
	va_list ap;

	if (errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return VB_EINVAL;
}

static int is_alpha(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static int is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

static int host_char_ok(char ch)
{
	return is_alpha(ch) || is_digit(ch) || ch == '-' || ch == '.' ||
	       ch == '_';
}

/* The @len bytes at @s, a scheme, lowercased into @out (16 bytes). */
static int scheme_parse(const char *s, size_t len, char *out, char *err,
			size_t errlen)
{
	const int shown = (int)(len > 16 ? 16 : len);
	size_t i;

	if (len == 0)
		return bad(err, errlen, "no scheme before \"://\"");
	if (len >= sizeof(((struct vb_url *)0)->scheme))
		return bad(err, errlen,
			   "scheme \"%.*s...\" too long (at most 15 "
			   "characters)",
			   shown, s);
	for (i = 0; i < len; i++) {
		char ch = s[i];

		if (!(is_alpha(ch) || (i > 0 && (is_digit(ch) || ch == '+' ||
						 ch == '-' || ch == '.'))))
			return bad(err, errlen,
				   "bad scheme \"%.*s\" (a letter, then "
				   "letters, digits, '+', '-' or '.')",
				   shown, s);
		out[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
	}
	out[len] = '\0';
	return VB_OK;
}

int vbi_url_parse(const char *s, struct vb_url *u, char *err, size_t errlen)
{
	struct vb_url r = { .scheme = "rdma" };
	const char *p, *host, *host_end, *port = NULL;
	uint64_t n;
	size_t len;
	int rc;

	if (!s || !*s)
		return bad(err, errlen, "empty url");
	p = strstr(s, "://");
	if (p) {
		rc = scheme_parse(s, (size_t)(p - s), r.scheme, err, errlen);
		if (rc)
			return rc;
		r.has_scheme = 1;
		p += 3;
	} else {
		p = s;
	}
	if (strchr(p, '@'))
		return bad(err, errlen,
			   "credentials in the url are not accepted: use the "
			   "user/password or token options");
	if (*p == '[') {
		host = p + 1;
		host_end = strchr(host, ']');
		if (!host_end)
			return bad(err, errlen,
				   "missing ']' after ipv6 address");
		for (const char *q = host; q < host_end; q++)
			if (!(*q == ':' || *q == '%' || host_char_ok(*q)))
				return bad(err, errlen,
					   "bad character '%c' in ipv6 address",
					   *q);
		p = host_end + 1;
	} else {
		host = p;
		while (*p && *p != ':' && *p != '/')
			p++;
		host_end = p;
		for (const char *q = host; q < host_end; q++)
			if (!host_char_ok(*q))
				return bad(err, errlen,
					   "bad character '%c' in host name",
					   *q);
	}
	len = (size_t)(host_end - host);
	if (len == 0)
		return bad(err, errlen, "no host in url \"%s\"", s);
	if (len >= sizeof(r.host))
		return bad(err, errlen, "host name too long");
	memcpy(r.host, host, len);
	r.host[len] = '\0';

	if (*p == ':') {
		port = p + 1;
		if (!vbi_parse_u64(port, &n) || n == 0 || n > 65535)
			return bad(err, errlen,
				   "bad port \"%s\" (1-65535 expected)", port);
		snprintf(r.port, sizeof(r.port), "%u", (unsigned)n);
		r.has_port = 1;
	} else if (*p == '\0') {
		snprintf(r.port, sizeof(r.port), "%u", VB_DEFAULT_PORT);
	} else {
		return bad(err, errlen, "unexpected \"%s\" after the host", p);
	}
	*u = r;
	return VB_OK;
}
