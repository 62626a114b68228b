/*
 * parse.h - strict parsing of numbers written by people (configuration
 * values, command-line options, query arguments).
 *
 * Threading: reentrant.  Ownership: reads the caller's NUL-terminated
 * string only.
 */
#ifndef VERBUS_CORE_PARSE_H
#define VERBUS_CORE_PARSE_H

#include <stdbool.h>
#include <stdint.h>

/*
 * vbi_parse_u64() - a plain decimal number: one or more digits and nothing
 * else (no sign, no space, no suffix), within u64.  Returns true and sets
 * *@out, or false and leaves it alone.
 */
bool vbi_parse_u64(const char *s, uint64_t *out);

#endif /* VERBUS_CORE_PARSE_H */
