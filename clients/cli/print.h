/*
 * print.h - how verbus shows a message: a header line (number, subject,
 * size, reply subject), then the payload as text when it is text and as a
 * hex dump when it is not; or the payload bytes alone.
 *
 * Threading: reentrant (writes only to the caller's FILE).
 */
#ifndef VERBUS_CLI_PRINT_H
#define VERBUS_CLI_PRINT_H

#include <verbus/verbus.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Bytes of a binary payload shown in hex unless all are asked for. */
#define CLI_HEX_PREVIEW 256

/* How a payload is shown. */
enum cli_payload {
	CLI_PAYLOAD_AUTO, /* text if cli_is_text(), else a hex preview */
	CLI_PAYLOAD_HEX, /* always a full hex dump */
	CLI_PAYLOAD_RAW, /* the bytes as they are, then a newline; no header */
};

/*
 * cli_is_text() - true if @n bytes at @p are valid UTF-8 without control
 * characters other than tab, newline and carriage return.  An empty
 * payload is text.
 */
bool cli_is_text(const void *p, size_t n);

/*
 * cli_print_hex() - the first @max of @n bytes at @p as a hex dump,
 * 16 bytes a line ("0000  68 65 6c 6c 6f                 |hello|"), and
 * a line saying how many more there are if @n > @max.
 */
void cli_print_hex(FILE *f, const void *p, size_t n, size_t max);

/*
 * cli_print_payload() - @size bytes at @data as @mode says: the text and a
 * newline, or a hex dump (an empty line for an empty payload), or the raw
 * bytes and a newline.
 */
void cli_print_payload(FILE *f, const void *data, size_t size,
		       enum cli_payload mode);

/*
 * cli_print_headers() - @m's headers, one "Name: value" line each, in
 * order (control characters in a value as \xNN); nothing if it has none.
 */
void cli_print_headers(FILE *f, const struct vb_msg *m);

/*
 * cli_print_msg() - message number @index (from 1) as @mode says:
 *
 *     [#1] orders.new (5 bytes)
 *     Trace-Id: 42
 *     hello
 *
 * with " reply SUBJECT" after the size when the message has one, and its
 * headers (if any, not with CLI_PAYLOAD_RAW) before the payload.  An empty
 * payload still prints its (empty) line, so every message is at least two
 * lines.
 */
void cli_print_msg(FILE *f, uint64_t index, const struct vb_msg *m,
		   enum cli_payload mode);

#endif /* VERBUS_CLI_PRINT_H */
