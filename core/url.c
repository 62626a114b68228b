/*
 * url.c - broker URLs (see url.h).
 *
 * The scheme is checked for its syntax only (RFC 3986's, at most 15
 * characters): which schemes have a transport is decided in transport/,
 * which core/ may not see.  "://" marks a scheme; without it the whole
 * string is HOST[:PORT], so "10.0.0.1:7700" is not read as scheme "10.0.0.1".
 *
 * HOST[:PORT] is read by vbi_hostport_parse() alone, for URLs and for every
 * other address a person writes (verbusd's monitor.listen, the cluster's
 * ZooKeeper hosts): one set of rules for brackets and ports, one set of
 * reasons.  An unbracketed IPv6 address (two ':' or more, hex digits
 * before any %zone) is refused, since it cannot carry a port, or, where a
 * caller has always taken one bare (VBI_HP_BARE_V6), is the whole address
 * without a port.
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

/* Whether the @len bytes at @s, unbracketed, are an IPv6 address: two
 * ':' or more, and only hex digits, ':' and '.' before a '%' (the zone). */
static bool looks_v6(const char *s, size_t len)
{
	size_t i, colons = 0;

	for (i = 0; i < len && s[i] != '%'; i++) {
		char ch = s[i];

		if (ch == ':')
			colons++;
		else if (!(is_digit(ch) || ch == '.' ||
			   (ch >= 'a' && ch <= 'f') ||
			   (ch >= 'A' && ch <= 'F')))
			return false;
	}
	return colons >= 2;
}

/* The port of @len bytes at @s into *@port; VB_EINVAL with a reason. */
static int port_parse(const char *s, size_t len, unsigned flags, uint16_t *port,
		      char *err, size_t errlen)
{
	const uint64_t min = (flags & VBI_HP_PORT_ZERO) ? 0 : 1;
	const int shown = (int)(len > 32 ? 32 : len);
	char digits[8];
	uint64_t n;

	if (len >= sizeof(digits))
		goto out_bad;
	memcpy(digits, s, len);
	digits[len] = '\0';
	if (!vbi_parse_u64(digits, &n) || n < min || n > 65535)
		goto out_bad;
	*port = (uint16_t)n;
	return VB_OK;
out_bad:
	return bad(err, errlen, "bad port \"%.*s%s\" (%u-65535 expected)",
		   shown, s, (size_t)shown < len ? "..." : "", (unsigned)min);
}

int vbi_hostport_parse(const char *s, size_t len, unsigned flags,
		       struct vbi_hostport *hp, char *err, size_t errlen)
{
	struct vbi_hostport r = { .host = "" };
	const char *end = s + len, *host, *host_end, *p, *q;
	bool v6;
	int rc;

	if (!s)
		return bad(err, errlen, "no host");
	if (len && *s == '[') {
		host = s + 1;
		host_end = memchr(host, ']', len - 1);
		if (!host_end)
			return bad(err, errlen,
				   "missing ']' after ipv6 address");
		p = host_end + 1;
		v6 = r.bracketed = true;
	} else if (looks_v6(s, len) && (flags & VBI_HP_BARE_V6)) {
		host = s;
		host_end = p = end;
		v6 = true;
	} else if (looks_v6(s, len)) {
		return bad(err, errlen,
			   "an ipv6 address must be in brackets "
			   "([ADDR]:PORT)");
	} else {
		host = s;
		for (p = s; p < end && *p != ':' && *p != '/'; p++)
			;
		host_end = p;
		v6 = false;
	}
	for (q = host; q < host_end; q++) {
		unsigned char ch = (unsigned char)*q;

		if (host_char_ok(*q) || (v6 && (ch == ':' || ch == '%')))
			continue;
		/* The reason may reach a log line: no control byte in it. */
		if (ch >= 0x20 && ch < 0x7f)
			return bad(err, errlen, "bad character '%c' in %s", ch,
				   v6 ? "ipv6 address" : "host name");
		return bad(err, errlen, "bad character 0x%02x in %s", ch,
			   v6 ? "ipv6 address" : "host name");
	}
	if (host_end == host)
		return bad(err, errlen, "no host");
	if ((size_t)(host_end - host) >= sizeof(r.host))
		return bad(err, errlen, "host name too long");
	memcpy(r.host, host, (size_t)(host_end - host));
	r.host[host_end - host] = '\0';

	if (p < end && *p == ':') {
		rc = port_parse(p + 1, (size_t)(end - p - 1), flags, &r.port,
				err, errlen);
		if (rc)
			return rc;
		r.has_port = true;
	} else if (p < end) {
		return bad(err, errlen, "unexpected \"%.*s\" after the host",
			   (int)(end - p), p);
	} else if (flags & VBI_HP_NEED_PORT) {
		return bad(err, errlen, "no port (%s:PORT)",
			   r.bracketed ? "[ADDR]" : "HOST");
	}
	*hp = r;
	return VB_OK;
}

int vbi_url_parse_ex(const char *s, unsigned flags, struct vb_url *u, char *err,
		     size_t errlen)
{
	struct vb_url r = { .scheme = "rdma" };
	struct vbi_hostport hp;
	const char *p;
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
		flags &= ~(unsigned)VBI_HP_BARE_V6;
	} else {
		p = s;
	}
	if (strchr(p, '@'))
		return bad(err, errlen,
			   "credentials in the url are not accepted: use the "
			   "user/password or token options");
	rc = vbi_hostport_parse(p, strlen(p), flags, &hp, err, errlen);
	if (rc)
		return rc;
	memcpy(r.host, hp.host, sizeof(r.host));
	snprintf(r.port, sizeof(r.port), "%u",
		 hp.has_port ? hp.port : VB_DEFAULT_PORT);
	r.has_port = hp.has_port;
	*u = r;
	return VB_OK;
}

int vbi_url_parse(const char *s, struct vb_url *u, char *err, size_t errlen)
{
	return vbi_url_parse_ex(s, 0, u, err, errlen);
}
