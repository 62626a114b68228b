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
 * HOST[:PORT] alone is vbi_hostport_parse(): the one reader of an address
 * and port that a person wrote, wherever one is written (a URL here,
 * verbusd's monitor.listen, the cluster's ZooKeeper hosts), so that
 * brackets, ports and the reasons for a refusal are the same everywhere.
 *
 * Threading: reentrant, never blocks.  Ownership: reads the caller's
 * NUL-terminated string; the result is copied into the caller's struct.
 */
#ifndef VERBUS_CORE_URL_H
#define VERBUS_CORE_URL_H

#include <verbus/verbus.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * vbi_url_parse() - parse @s into @u.  Returns VB_OK, or VB_EINVAL with a
 * lowercase reason in @err (at most @errlen bytes, NUL-terminated, cut if
 * need be) and @u untouched.
 */
int vbi_url_parse(const char *s, struct vb_url *u, char *err, size_t errlen);

/*
 * vbi_url_parse_ex() - vbi_url_parse() with vbi_hostport_parse()'s @flags
 * for the HOST[:PORT] part (VBI_HP_BARE_V6 only applies without a scheme:
 * "rdma://::1" stays an error).
 */
int vbi_url_parse_ex(const char *s, unsigned flags, struct vb_url *u, char *err,
		     size_t errlen);

/* What vbi_hostport_parse() takes beyond HOST[:PORT], PORT 1-65535. */
enum vbi_hp_flags {
	VBI_HP_NEED_PORT = 1u << 0, /* the port may not be left out */
	VBI_HP_PORT_ZERO = 1u << 1, /* port 0 is a port (0-65535) */
	/* An unbracketed IPv6 address (two ':' or more, only hex digits,
	 * ':' and '.' before any %zone) is the whole address, without a port
	 * ("::", "fe80::1%eth0"), as verbusd's addresses have always been
	 * written; without this flag it is refused ("an ipv6 address must be
	 * in brackets"). */
	VBI_HP_BARE_V6 = 1u << 2,
};

/* An address and port taken apart. */
struct vbi_hostport {
	/* A name, an IPv4 address or an IPv6 address (the only kind with a
	 * ':'), without brackets, NUL-terminated; the same bound as
	 * struct vb_url's host. */
	char host[sizeof(((struct vb_url *)0)->host)];
	uint16_t port; /* 0 if none was given */
	bool has_port; /* a port was given */
	bool bracketed; /* the host was written in brackets */
};

/*
 * vbi_hostport_parse() - the @len bytes at @s (no NUL needed) as
 * HOST[:PORT]: HOST a name or IPv4 address of A-Z a-z 0-9 - . _, or an IPv6
 * address in brackets, of the same characters and ':', with a %zone if
 * need be ("[fe80::1%eth0]:7700"); PORT decimal 1-65535 (0-65535 with
 * VBI_HP_PORT_ZERO).  Returns VB_OK and fills *@hp, or VB_EINVAL with a
 * lowercase reason in @err (@errlen bytes, NUL-terminated; @err may be
 * NULL if @errlen is 0) and *@hp untouched.  Nothing is looked up: a name
 * is the resolver's business, and whether an address must be numeric the
 * caller's.
 */
int vbi_hostport_parse(const char *s, size_t len, unsigned flags,
		       struct vbi_hostport *hp, char *err, size_t errlen);

#endif /* VERBUS_CORE_URL_H */
