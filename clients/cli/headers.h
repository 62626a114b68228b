/*
 * headers.h - message headers on the command line: `-H 'Name: value'`
 * (pub, req, reply), as curl's -H reads them.
 *
 * Ownership: a struct cli_headers owns copies of what it was given; free
 * it with cli_headers_free().  Threading: none; the tool is one thread.
 */
#ifndef VERBUS_CLI_HEADERS_H
#define VERBUS_CLI_HEADERS_H

#include <verbus/verbus.h>

#include <stddef.h>

/* The headers given so far, in order: ready for vb_publish_msg(). */
struct cli_headers {
	struct vb_header *h; /* n entries, name and value malloc()ed */
	size_t n;
};

/*
 * cli_headers_add() - add the header @arg, "Name: value" (the value may be
 * empty; the spaces after the ':' are not part of it).  Returns 0, or -1
 * with a reason in @why (@len bytes) for an @arg that is not a header:
 * no ':', an empty name, a name with a space or a control character, a
 * value with a CR or LF; or out of memory.
 */
int cli_headers_add(struct cli_headers *hs, const char *arg, char *why,
		    size_t len);

/* cli_headers_free() - free what @hs holds, leaving it empty. */
void cli_headers_free(struct cli_headers *hs);

#endif /* VERBUS_CLI_HEADERS_H */
