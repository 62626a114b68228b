/*
 * member.c - a member node's data (see member.h).
 */
#include "daemon/member.h"

#include "core/url.h"
#include "transport/transport.h"

#include <verbus/verbus.h>

#include <stdio.h>
#include <string.h>

size_t vbd_member_encode(const char *client, const char *route, char *buf,
			 size_t len)
{
	int n = snprintf(buf, len, "client=%s\nroute=%s\n", client, route);

	return n < 0 || (size_t)n >= len ? 0 : (size_t)n;
}

/* @key's value (the first line "key=value") into @out (@len bytes with its
 * NUL); false if absent, empty, too long, or holding a NUL. */
static bool get(const char *data, size_t dlen, const char *key, char *out,
		size_t len)
{
	size_t klen = strlen(key);
	const char *p = data, *end = data + dlen;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;

		if ((size_t)(le - p) > klen && memcmp(p, key, klen) == 0 &&
		    p[klen] == '=') {
			size_t vlen = (size_t)(le - p) - klen - 1;

			if (vlen == 0 || vlen >= len ||
			    memchr(p + klen + 1, '\0', vlen))
				return false;
			memcpy(out, p + klen + 1, vlen);
			out[vlen] = '\0';
			return true;
		}
		p = le + 1;
	}
	return false;
}

/* A URL a member published, checked before anything dials it. */
static bool url_ok(const char *s)
{
	struct vb_url u;
	char why[160];

	return vbi_url_parse(s, &u, why, sizeof(why)) == VB_OK && u.has_port &&
	       vbi_transport_check(u.scheme, why, sizeof(why)) == VB_OK;
}

bool vbd_member_parse(const char *data, size_t len,
		      struct vbd_member_addrs *out)
{
	memset(out, 0, sizeof(*out));
	if (!get(data, len, "client", out->client, sizeof(out->client)) ||
	    !url_ok(out->client))
		out->client[0] = '\0';
	if (!get(data, len, "route", out->route, sizeof(out->route)) ||
	    !url_ok(out->route)) {
		out->route[0] = '\0';
		return false;
	}
	return true;
}
