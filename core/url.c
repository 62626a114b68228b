/*
 * url.c - broker URLs (see url.h).
 */
#include "core/url.h"
#include "core/parse.h"

#include <verbus/verbus.h>

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

static int host_char_ok(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_';
}

int vbi_url_parse(const char *s, struct vbi_url *u, char *err, size_t errlen)
{
	struct vbi_url r = { .scheme = "rdma" };
	const char *p, *host, *host_end, *port = NULL;
	uint64_t n;
	size_t len;

	if (!s || !*s)
		return bad(err, errlen, "empty url");
	p = strstr(s, "://");
	if (p) {
		len = (size_t)(p - s);
		if (len != strlen("rdma") || strncmp(s, "rdma", len) != 0)
			return bad(err, errlen,
				   "unsupported scheme \"%.*s\" (only rdma://)",
				   (int)(len > 16 ? 16 : len), s);
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
			if (!(*q == ':' || *q == '.' || *q == '%' ||
			      host_char_ok(*q)))
				return bad(err, errlen,
					   "bad character in ipv6 address");
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
	} else if (*p == '\0') {
		snprintf(r.port, sizeof(r.port), "%u", VB_DEFAULT_PORT);
	} else {
		return bad(err, errlen, "unexpected \"%s\" after the host", p);
	}
	*u = r;
	return VB_OK;
}
