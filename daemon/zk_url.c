/*
 * zk_url.c - the pure half of daemon/zk.h: broker ids, the cluster's
 * ZooKeeper URL and its base path (no library call, no I/O but the log
 * line of a refusal), unit-tested in tests/unit/test_zk_url.c.
 */
#include "daemon/zk.h"

#include "core/log.h"
#include "core/parse.h"

#include <verbus/verbus.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

/* A path component or id of @len bytes at @s: [A-Za-z0-9_.-]{1,max}, and
 * neither "." nor "..", which ZooKeeper refuses. */
static bool name_valid(const char *s, size_t len, size_t max)
{
	size_t i;

	if (len == 0 || len > max)
		return false;
	if ((len == 1 && s[0] == '.') ||
	    (len == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	for (i = 0; i < len; i++)
		if (!name_char(s[i]))
			return false;
	return true;
}

bool vbd_zk_id_valid(const char *id)
{
	return id && vbi_name_valid(id, strnlen(id, VBD_ZK_ID_MAX + 1));
}

/*
 * A base path of @len bytes at @p: "/" then components separated by single
 * slashes, not the root, not under the reserved "/zookeeper".  NULL if
 * valid, else why not.
 */
const char *vbd_zk_path_check(const char *p, size_t len)
{
	size_t i = 0, start;

	if (len == 0 || p[0] != '/')
		return "the base path must start with '/'";
	if (len == 1)
		return "the base path must not be the root";
	while (i < len) {
		start = ++i;
		while (i < len && p[i] != '/')
			i++;
		if (!name_valid(p + start, i - start, SIZE_MAX))
			return "each component of the base path must be "
			       "[A-Za-z0-9_.-]+, and not \".\" or \"..\"";
		if (start == 1 && i - start == 9 &&
		    memcmp(p + 1, "zookeeper", 9) == 0)
			return "/zookeeper is ZooKeeper's own";
	}
	return NULL;
}

/* The port of @len bytes at @s, 1-65535 in decimal, or 0. */
static unsigned port_parse(const char *s, size_t len)
{
	unsigned v = 0;
	size_t i;

	if (len == 0)
		return 0;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (unsigned)(s[i] - '0');
		if (v > 65535)
			return 0;
	}
	return v;
}

/*
 * One "HOST:PORT" entry of @len bytes at @e: its host (@h, @hlen: without
 * brackets) and port; NULL if valid, else why not.
 */
static const char *host_check(const char *e, size_t len, const char **h,
			      size_t *hlen, unsigned *port)
{
	const char *colon, *end = e + len;
	size_t i;

	if (len == 0)
		return "an empty entry in the host list";
	if (e[0] == '[') {
		const char *close = memchr(e, ']', len);

		if (!close || close == e + 1)
			return "an IPv6 address needs its closing ']'";
		for (i = 1; e + i < close; i++) {
			char c = e[i];

			if (!(c == ':' || c == '.' || c == '%' || name_char(c)))
				return "a bad character in an IPv6 address";
		}
		if (close + 1 == end || close[1] != ':')
			return "no port after an IPv6 address (zk://[ADDR]:PORT/PATH)";
		*h = e + 1;
		*hlen = (size_t)(close - e - 1);
		colon = close + 1;
	} else {
		colon = memrchr(e, ':', len);
		if (!colon)
			return "no port (zk://HOST:PORT/PATH)";
		if (memchr(e, ':', (size_t)(colon - e)))
			return "an IPv6 address must be in brackets";
		if (colon == e)
			return "an empty host";
		for (i = 0; e + i < colon; i++)
			if (!name_char(e[i]))
				return "a bad character in a host name";
		*h = e;
		*hlen = (size_t)(colon - e);
	}
	*port = port_parse(colon + 1, (size_t)(end - colon - 1));
	if (*port == 0)
		return "the port must be 1-65535";
	return NULL;
}

__attribute__((format(printf, 2, 3))) static int url_bad(const char *url,
							 const char *fmt, ...)
{
	char esc[VBI_LOG_ESCAPE_MAX], why[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	vbi_log_escape(esc, sizeof(esc), url, url ? strlen(url) : 0);
	vbi_err("zookeeper url '%s': %s", esc, why);
	return VB_EINVAL;
}

int vbd_zk_url_parse(const char *url, char *hosts, size_t hosts_len, char *path,
		     size_t path_len)
{
	const char *s, *slash, *e, *why, *h;
	size_t plen, need = 0, hlen, off = 0;
	unsigned port;

	if (!url || !hosts || !path)
		return url_bad(url, "no url or no room for the result");
	s = url;
	if (strncasecmp(s, "zk://", 5) == 0)
		s += 5;
	else if (strstr(s, "://"))
		return url_bad(url, "the scheme must be zk://");
	slash = strchr(s, '/');
	if (!slash)
		return url_bad(url, "no base path (zk://HOST:PORT/PATH)");
	if (slash == s)
		return url_bad(url, "no host (zk://HOST:PORT/PATH)");
	/* Check every entry and size the result first: nothing is written
	 * unless all of it is good. */
	for (e = s; e < slash;) {
		const char *comma = memchr(e, ',', (size_t)(slash - e));
		const char *end = comma ? comma : slash;

		why = host_check(e, (size_t)(end - e), &h, &hlen, &port);
		if (why)
			return url_bad(url, "%s", why);
		need += (need ? 1 : 0) + hlen + 1 +
			(size_t)snprintf(NULL, 0, "%u", port);
		if (comma && comma + 1 == slash)
			return url_bad(url, "%s",
				       "an empty entry in the host list");
		e = comma ? comma + 1 : slash;
	}
	plen = strlen(slash);
	while (plen > 1 && slash[plen - 1] == '/')
		plen--;
	why = vbd_zk_path_check(slash, plen);
	if (why)
		return url_bad(url, "%s", why);
	if (need >= hosts_len)
		return url_bad(url, "the host list is longer than %zu bytes",
			       hosts_len ? hosts_len - 1 : 0);
	if (plen >= path_len)
		return url_bad(url, "the base path is longer than %zu bytes",
			       path_len ? path_len - 1 : 0);
	for (e = s; e < slash;) {
		const char *comma = memchr(e, ',', (size_t)(slash - e));
		const char *end = comma ? comma : slash;

		host_check(e, (size_t)(end - e), &h, &hlen, &port);
		off += (size_t)snprintf(hosts + off, hosts_len - off,
					"%s%.*s:%u", off ? "," : "", (int)hlen,
					h, port);
		e = comma ? comma + 1 : slash;
	}
	memcpy(path, slash, plen);
	path[plen] = '\0';
	return VB_OK;
}
