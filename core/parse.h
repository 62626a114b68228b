/*
 * parse.h - strict parsing of numbers and names written by people
 * (configuration values, command-line options, query arguments).
 *
 * Threading: reentrant.  Ownership: reads the caller's NUL-terminated
 * string only.
 */
#ifndef VERBUS_CORE_PARSE_H
#define VERBUS_CORE_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * vbi_parse_u64() - a plain decimal number: one or more digits and nothing
 * else (no sign, no space, no suffix), within u64.  Returns true and sets
 * *@out, or false and leaves it alone.
 */
bool vbi_parse_u64(const char *s, uint64_t *out);

/*
 * vbi_parse_size() - a size in bytes, as every size is written to verbusd
 * (its file, --set) and to the verbus tool (--size, --ring, --max-msg,
 * --sizes): decimal digits, then optionally a unit, matched without case
 * and with nothing between: B; K, KB or KiB (1024); M, MB or MiB (1024^2);
 * G, GB or GiB (1024^3).  Binary multiples throughout, as NATS reads them:
 * "64K", "64kb" and "64KiB" are all 65536.  No sign, space, fraction or
 * other unit.  Returns true and sets *@out; or false, *@out untouched and
 * *@why (if @why) a static lowercase reason: "empty", "not a number",
 * an unknown unit, or "too large" for more than 2^64 - 1 bytes.
 */
bool vbi_parse_size(const char *s, uint64_t *out, const char **why);

/* The units vbi_parse_size() takes, for messages and help texts. */
#define VBI_SIZE_UNITS "B, K, KB, KiB, M, MB, MiB, G, GB or GiB"

/*
 * vbi_size_str() - @v for a person: "64 KiB", "1 MiB", "3 GiB" when it is
 * a whole number of the largest such unit, else "1000 bytes".  Writes at
 * most @len bytes, NUL-terminated, into @buf; returns @buf.
 */
const char *vbi_size_str(uint64_t v, char *buf, size_t len);

#define VBI_ID_MAX 63u /* bytes in a name vbi_name_valid() takes, at most */

/*
 * vbi_name_valid() - whether the @len bytes at @s are a name: a server
 * name, a cluster's name, a broker id.  1 to VBI_ID_MAX characters from
 * A-Z a-z 0-9 . _ -, and neither "." nor ".." (a broker id names a
 * ZooKeeper node, which may not be either).  One rule wherever a name is
 * read: the configuration, ZooKeeper, a route's Hello.
 */
bool vbi_name_valid(const char *s, size_t len);

#endif /* VERBUS_CORE_PARSE_H */
