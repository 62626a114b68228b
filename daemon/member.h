/*
 * member.h - what a broker writes in its ZooKeeper member node, and reads
 * in the others' (docs/PROTOCOL.md, "Routes"): text lines "key=value",
 * "client=URL" (where clients reach it) and "route=URL" (its route
 * listener).  Unknown keys are ignored, so later versions may add some.
 *
 * A member's data comes from ZooKeeper, which anyone with write access to
 * the cluster's path can fill: nothing here trusts it.
 *
 * Threading: pure functions, any thread; nothing allocates.
 */
#ifndef VERBUS_DAEMON_MEMBER_H
#define VERBUS_DAEMON_MEMBER_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/codec.h" /* VBI_URL_MAX */

/* A member's addresses. */
struct vbd_member_addrs {
	char client[VBI_URL_MAX]; /* "" if absent or not a usable URL */
	char route[VBI_URL_MAX];
};

/*
 * vbd_member_encode() - our node's data for @client and @route into @buf
 * (@len bytes).  Returns its length, or 0 if it does not fit.
 */
size_t vbd_member_encode(const char *client, const char *route, char *buf,
			 size_t len);

/*
 * vbd_member_parse() - @data (@len bytes, any bytes) into *@out.  Returns
 * true if it holds a route URL we can dial (a transport of this build, a
 * port); the client URL is optional (routes work without it) and left ""
 * unless it is as usable.  A key given twice counts by its first line; a
 * value with a NUL, an empty one or one of VBI_URL_MAX bytes or more is
 * not a value.
 */
bool vbd_member_parse(const char *data, size_t len,
		      struct vbd_member_addrs *out);

#endif /* VERBUS_DAEMON_MEMBER_H */
