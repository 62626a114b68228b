/*
 * parse.c - strict parsing of numbers written by people.  strtoull alone
 * accepts a sign, leading space and trailing junk, and wraps "-1" to the
 * largest value: each is a mistyped setting we would rather refuse.
 */
#include "parse.h"

#include <errno.h>
#include <stdlib.h>

bool vbi_parse_u64(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || s[0] < '0' || s[0] > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = v;
	return true;
}
