/*
 * headers.c - `-H 'Name: value'` options into struct vb_header entries.
 * The name and value rules are libverbus's (vb_publish_msg); they are
 * checked here too, so that a bad option is a usage error that names it,
 * not a publish that fails later.
 */
#include "cli/headers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int name_char(unsigned char ch)
{
	return ch > 0x20 && ch < 0x7f && ch != ':';
}

int cli_headers_add(struct cli_headers *hs, const char *arg, char *why,
		    size_t len)
{
	const char *colon = strchr(arg, ':'), *v;
	struct vb_header *grown;
	char *name = NULL, *value = NULL;
	size_t nl, i;

	if (!colon || colon == arg) {
		snprintf(why, len, "'%s' is not \"Name: value\"", arg);
		return -1;
	}
	nl = (size_t)(colon - arg);
	for (i = 0; i < nl; i++) {
		if (!name_char((unsigned char)arg[i])) {
			snprintf(why, len,
				 "header name '%.*s' has a space or a "
				 "control character",
				 (int)nl, arg);
			return -1;
		}
	}
	if (nl > 255) {
		snprintf(why, len, "a header name is 255 characters at most");
		return -1;
	}
	for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
		;
	if (strpbrk(v, "\r\n")) {
		snprintf(why, len,
			 "header '%.*s' has a line break in its value", (int)nl,
			 arg);
		return -1;
	}
	name = strndup(arg, nl);
	value = strdup(v);
	grown = realloc(hs->h, (hs->n + 1) * sizeof(*hs->h));
	if (!name || !value || !grown) {
		if (grown)
			hs->h = grown;
		free(name);
		free(value);
		snprintf(why, len, "out of memory");
		return -1;
	}
	hs->h = grown;
	hs->h[hs->n].name = name;
	hs->h[hs->n].value = value;
	hs->n++;
	return 0;
}

void cli_headers_free(struct cli_headers *hs)
{
	size_t i;

	for (i = 0; i < hs->n; i++) {
		free((char *)hs->h[i].name);
		free((char *)hs->h[i].value);
	}
	free(hs->h);
	hs->h = NULL;
	hs->n = 0;
}
