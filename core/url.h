/*
 * url.h - broker URLs: "rdma://HOST[:PORT]".
 *
 * HOST is a name, an IPv4 address or a bracketed IPv6 address
 * ("rdma://[fe80::1]:7700"); PORT is 1-65535 and defaults to
 * VB_DEFAULT_PORT.  The scheme may be left out ("10.0.0.1:7700").  Nothing
 * else is accepted: no path, no query, no credentials (they would show in
 * every `ps` listing: they go in the options instead).
 *
 * Threading: reentrant.  Ownership: the result is copied into the caller's
 * struct.
 */
#ifndef VERBUS_CORE_URL_H
#define VERBUS_CORE_URL_H

#include <stddef.h>

struct vbi_url {
	char scheme[16]; /* "rdma" */
	char host[256]; /* without brackets */
	char port[8]; /* decimal */
};

/*
 * vbi_url_parse() - parse @s into @u.  Returns VB_OK, or VB_EINVAL with a
 * lowercase reason in @err (at most @errlen bytes, NUL-terminated), and @u
 * untouched.
 */
int vbi_url_parse(const char *s, struct vbi_url *u, char *err, size_t errlen);

#endif /* VERBUS_CORE_URL_H */
