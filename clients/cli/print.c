/*
 * print.c - showing messages (see print.h).
 *
 * The payload is printed exactly as it came when it is text, so that
 * `verbus sub` output can be compared byte for byte in scripts; anything
 * that could upset a terminal (escape sequences, NULs, broken UTF-8) makes
 * the whole payload hex instead of being half-escaped.
 */
#include "cli/print.h"

/* Length of the valid UTF-8 sequence at @s (@n bytes left), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len, i;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1fu;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0fu;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07u;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0u) != 0x80u)
			return 0;
		cp = cp << 6 | (s[i] & 0x3fu);
	}
	/* Overlong forms, surrogates, beyond U+10FFFF, and the C1 controls. */
	if ((len == 2 && cp < 0xa0) || (len == 3 && cp < 0x800) ||
	    (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

bool cli_is_text(const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i = 0, k;

	while (i < n) {
		if (s[i] < 0x80) {
			if ((s[i] < 0x20 && s[i] != '\t' && s[i] != '\n' &&
			     s[i] != '\r') ||
			    s[i] == 0x7f)
				return false;
			i++;
			continue;
		}
		k = utf8_seq(s + i, n - i);
		if (k == 0)
			return false;
		i += k;
	}
	return true;
}

void cli_print_hex(FILE *f, const void *p, size_t n, size_t max)
{
	const unsigned char *s = p;
	size_t shown = n < max ? n : max, off, i;

	for (off = 0; off < shown; off += 16) {
		fprintf(f, "%04zx ", off);
		for (i = off; i < off + 16; i++) {
			if (i < shown)
				fprintf(f, " %02x", s[i]);
			else
				fputs("   ", f);
		}
		fputs("  |", f);
		for (i = off; i < off + 16 && i < shown; i++)
			fputc(s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '.', f);
		fputs("|\n", f);
	}
	if (n > shown)
		fprintf(f, "... %zu more bytes (--hex shows them all)\n",
			n - shown);
}

void cli_print_payload(FILE *f, const void *data, size_t size,
		       enum cli_payload mode)
{
	if (mode == CLI_PAYLOAD_RAW ||
	    (mode == CLI_PAYLOAD_AUTO && cli_is_text(data, size))) {
		fwrite(data, 1, size, f);
		fputc('\n', f);
		return;
	}
	cli_print_hex(f, data, size,
		      mode == CLI_PAYLOAD_HEX ? size : CLI_HEX_PREVIEW);
	if (size == 0)
		fputc('\n', f);
}

void cli_print_headers(FILE *f, const struct vb_msg *m)
{
	struct vb_header_field h;
	size_t pos = 0;
	int rc;

	while ((rc = vb_msg_header_next(m, &pos, &h)) == VB_OK) {
		/* Names are visible ASCII; a value may hold control bytes
		 * (only CR and LF are refused): shown escaped. */
		fprintf(f, "%.*s: ", (int)h.name_len, h.name);
		for (size_t i = 0; i < h.value_len; i++) {
			unsigned char ch = (unsigned char)h.value[i];

			if (ch < 0x20 || ch == 0x7f)
				fprintf(f, "\\x%02x", ch);
			else
				fputc(ch, f);
		}
		fputc('\n', f);
	}
	if (rc == VB_EPROTO)
		fputs("(malformed header block)\n", f);
}

void cli_print_msg(FILE *f, uint64_t index, const struct vb_msg *m,
		   enum cli_payload mode)
{
	if (mode != CLI_PAYLOAD_RAW) {
		fprintf(f, "[#%llu] %.*s (%zu byte%s)",
			(unsigned long long)index, (int)m->subject_len,
			m->subject, m->size, m->size == 1 ? "" : "s");
		if (m->reply != NULL)
			fprintf(f, " reply %.*s", (int)m->reply_len, m->reply);
		fputc('\n', f);
		cli_print_headers(f, m);
	}
	cli_print_payload(f, m->data, m->size, mode);
}
