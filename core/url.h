/*
 * url.h - the one grammar of broker URLs: "SCHEME://HOST[:PORT]" or
 * "HOST[:PORT]".
 *
 * SCHEME is a letter, then letters, digits, '+', '-' or '.', 1-15 of them,
 * matched without case and stored lowercase; left out, it is "rdma".  Any
 * such scheme parses: whether a transport serves it is the transport
 * layer's decision (vbi_transport_check), so that a new transport needs no
 * change here.  HOST is a name, an IPv4 address or a bracketed IPv6 address,
 * with a %zone if need be ("rdma://[fe80::1%eth0]:7700"); PORT is 1-65535
 * and defaults to VB_DEFAULT_PORT.  Nothing else is accepted: no path, no
 * query, no credentials (they would show in every `ps` listing: they go in
 * the options instead).
 *
 * The result is the public struct vb_url (verbus/verbus.h): libverbus's
 * vb_url_parse() is this function, so the library, the verbus tool and
 * verbusd's listen address read URLs the same way.
 *
 * Threading: reentrant, never blocks.  Ownership: reads the caller's
 * NUL-terminated string; the result is copied into the caller's struct.
 */
#ifndef VERBUS_CORE_URL_H
#define VERBUS_CORE_URL_H

#include <verbus/verbus.h>

#include <stddef.h>

/*
 * vbi_url_parse() - parse @s into @u.  Returns VB_OK, or VB_EINVAL with a
 * lowercase reason in @err (at most @errlen bytes, NUL-terminated, cut if
 * need be) and @u untouched.
 */
int vbi_url_parse(const char *s, struct vb_url *u, char *err, size_t errlen);

#endif /* VERBUS_CORE_URL_H */
