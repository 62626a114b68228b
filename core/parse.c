/*
 * parse.c - strict parsing of numbers written by people.  strtoull alone
 * accepts a sign, leading space and trailing junk, and wraps "-1" to the
 * largest value: each is a mistyped setting we would rather refuse.
 */
#include "parse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

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

/* A unit of vbi_parse_size() and its multiplier. */
struct size_unit {
	const char *name; /* matched without case */
	unsigned shift; /* the multiplier, 2^shift */
};

static const struct size_unit size_units[] = {
	{ "", 0 },     { "b", 0 },   { "k", 10 },   { "kb", 10 },
	{ "kib", 10 }, { "m", 20 },  { "mb", 20 },  { "mib", 20 },
	{ "g", 30 },   { "gb", 30 }, { "gib", 30 },
};

bool vbi_parse_size(const char *s, uint64_t *out, const char **why)
{
	const char *reason = "empty";
	uint64_t v = 0;
	size_t i;

	if (!s || !*s)
		goto out_bad;
	reason = "not a number (digits, then an optional unit)";
	if (*s < '0' || *s > '9')
		goto out_bad;
	reason = "too large (more than 2^64 - 1 bytes)";
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			goto out_bad;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	for (i = 0; i < sizeof(size_units) / sizeof(size_units[0]); i++) {
		if (strcasecmp(s, size_units[i].name) != 0)
			continue;
		reason = "too large (more than 2^64 - 1 bytes)";
		if (v > (UINT64_MAX >> size_units[i].shift))
			goto out_bad;
		*out = v << size_units[i].shift;
		return true;
	}
	reason = "unknown unit (after the digits: " VBI_SIZE_UNITS ", or none)";
out_bad:
	if (why)
		*why = reason;
	return false;
}

const char *vbi_size_str(uint64_t v, char *buf, size_t len)
{
	static const char *const names[] = { "GiB", "MiB", "KiB" };
	unsigned i;

	for (i = 0; i < 3; i++) {
		unsigned shift = 10 * (3 - i);

		if (v != 0 && (v & ((1ull << shift) - 1)) == 0) {
			snprintf(buf, len, "%llu %s",
				 (unsigned long long)(v >> shift), names[i]);
			return buf;
		}
	}
	snprintf(buf, len, "%llu byte%s", (unsigned long long)v,
		 v == 1 ? "" : "s");
	return buf;
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
