/*
 * zk_url.c - the pure half of daemon/zk.h: broker ids, the cluster's
 * ZooKeeper URL and its base path (no library call, no I/O but the log
 * line of a refusal), unit-tested in tests/unit/test_zk_url.c.
 */
#include "daemon/zk.h"

#include "core/log.h"
#include "core/parse.h"
#include "core/url.h"

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

/*
 * One "HOST:PORT" entry of @len bytes at @e, read by core/url.c's one
 * host:port reader (an IPv6 address in brackets, the port required):
 * *@hp, and NULL if valid, else why not (in @why).
 */
static const char *host_check(const char *e, size_t len,
			      struct vbi_hostport *hp, char *why, size_t wlen)
{
	if (len == 0)
		return "an empty entry in the host list";
	if (vbi_hostport_parse(e, len, VBI_HP_NEED_PORT, hp, why, wlen))
		return why;
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
	const char *s, *slash, *e, *why;
	size_t plen, need = 0, off = 0;
	struct vbi_hostport hp;
	char reason[160];

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

		why = host_check(e, (size_t)(end - e), &hp, reason,
				 sizeof(reason));
		if (why)
			return url_bad(url, "%s", why);
		need += (need ? 1 : 0) + strlen(hp.host) + 1 +
			(size_t)snprintf(NULL, 0, "%u", hp.port);
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

		host_check(e, (size_t)(end - e), &hp, reason, sizeof(reason));
		/* As the ZooKeeper client reads it: an IPv6 address without
		 * brackets, the port after its last ':'. */
		off += (size_t)snprintf(hosts + off, hosts_len - off, "%s%s:%u",
					off ? "," : "", hp.host, hp.port);
		e = comma ? comma + 1 : slash;
	}
	memcpy(path, slash, plen);
	path[plen] = '\0';
	return VB_OK;
}
