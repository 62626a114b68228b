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
