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

bool vbi_name_valid(const char *s, size_t len)
{
	size_t i;

	if (!s || len == 0 || len > VBI_ID_MAX)
		return false;
	if (s[0] == '.' && (len == 1 || (len == 2 && s[1] == '.')))
		return false;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return false;
	}
	return true;
}
