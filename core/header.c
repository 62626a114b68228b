/*
 * header.c - the NATS/1.0 header block: validation, lookup, encoding.
 *
 * One scanner (hdr_line) reads the block line by line with every index
 * checked against the block's length, so that a hostile or changing block
 * cannot take a read outside it; validation, iteration and lookup are all
 * that scanner.
 */
#include "header.h"

#include <verbus/verbus.h>

#include <string.h>

#define VER_LEN (sizeof(VBI_HDR_VERSION) - 1)

static int hdr_name_char(unsigned char ch)
{
	return ch > 0x20 && ch < 0x7f && ch != ':';
}

static int hdr_value_char(unsigned char ch)
{
	return ch != '\r' && ch != '\n' && ch != '\0';
}

static int hdr_space(unsigned char ch)
{
	return ch == ' ' || ch == '\t';
}

/* The end of the version line (the index after its CRLF), or 0. */
static size_t hdr_version_end(const char *blk, size_t len, unsigned *status)
{
	size_t p = VER_LEN, i;
	unsigned code = 0;

	if (len < VER_LEN + 2 || memcmp(blk, VBI_HDR_VERSION, VER_LEN) != 0)
		return 0;
	if (blk[p] == ' ') {
		/* " 3DIGIT", then CRLF or " description" CRLF. */
		if (len - p < 4 + 2)
			return 0;
		for (i = 1; i <= 3; i++) {
			unsigned char d = (unsigned char)blk[p + i];

			if (d < '0' || d > '9')
				return 0;
			code = code * 10 + (d - '0');
		}
		p += 4;
		if (blk[p] == ' ') {
			while (p < len && hdr_value_char((unsigned char)blk[p]))
				p++;
		}
	}
	if (len - p < 2 || blk[p] != '\r' || blk[p + 1] != '\n')
		return 0;
	if (status)
		*status = code;
	return p + 2;
}

int vbi_hdr_next(const char *blk, size_t len, size_t *pos,
		 struct vbi_hdr_field *out)
{
	size_t p = *pos, n0, v0, v1;

	if (blk == NULL)
		return VB_EPROTO;
	if (p == 0) {
		p = hdr_version_end(blk, len, NULL);
		if (p == 0)
			return VB_EPROTO;
	}
	if (p > len || len - p < 2)
		return VB_EPROTO;
	if (blk[p] == '\r' && blk[p + 1] == '\n') {
		*pos = p;
		return VB_EAGAIN;
	}
	n0 = p;
	while (p < len && hdr_name_char((unsigned char)blk[p]))
		p++;
	if (p == n0 || p - n0 > VBI_HDR_NAME_MAX || p >= len || blk[p] != ':')
		return VB_EPROTO;
	out->name = blk + n0;
	out->name_len = p - n0;
	p++;
	while (p < len && hdr_space((unsigned char)blk[p]))
		p++;
	v0 = p;
	while (p < len && hdr_value_char((unsigned char)blk[p]))
		p++;
	if (len - p < 2 || blk[p] != '\r' || blk[p + 1] != '\n')
		return VB_EPROTO;
	v1 = p;
	while (v1 > v0 && hdr_space((unsigned char)blk[v1 - 1]))
		v1--;
	out->value = blk + v0;
	out->value_len = v1 - v0;
	*pos = p + 2;
	return VB_OK;
}

int vbi_hdr_validate(const char *blk, size_t len)
{
	struct vbi_hdr_field f;
	size_t pos = 0;
	int rc;

	while ((rc = vbi_hdr_next(blk, len, &pos, &f)) == VB_OK)
		;
	if (rc != VB_EAGAIN || pos + 2 != len)
		return VB_EPROTO;
	return VB_OK;
}

unsigned vbi_hdr_status(const char *blk, size_t len)
{
	unsigned code = 0;

	if (blk == NULL || hdr_version_end(blk, len, &code) == 0)
		return 0;
	return code;
}

int vbi_hdr_get(const char *blk, size_t len, const char *name, size_t name_len,
		size_t idx, const char **value, size_t *value_len)
{
	struct vbi_hdr_field f;
	size_t pos = 0;
	int rc;

	while ((rc = vbi_hdr_next(blk, len, &pos, &f)) == VB_OK) {
		if (f.name_len != name_len || memcmp(f.name, name, name_len))
			continue;
		if (idx-- == 0) {
			*value = f.value;
			*value_len = f.value_len;
			return VB_OK;
		}
	}
	return rc;
}

int vbi_hdr_check_in(const struct vb_header *h)
{
	size_t i, nl;

	if (h == NULL || h->name == NULL || h->value == NULL)
		return VB_EINVAL;
	nl = strlen(h->name);
	if (nl == 0 || nl > VBI_HDR_NAME_MAX)
		return VB_EINVAL;
	for (i = 0; i < nl; i++)
		if (!hdr_name_char((unsigned char)h->name[i]))
			return VB_EINVAL;
	for (i = 0; h->value[i]; i++)
		if (!hdr_value_char((unsigned char)h->value[i]))
			return VB_EINVAL;
	return VB_OK;
}

int vbi_hdr_encoded_len(const struct vb_header *h, size_t n, size_t *out)
{
	uint64_t total = VER_LEN + 2 + 2;
	size_t i;

	if (n && h == NULL)
		return VB_EINVAL;
	for (i = 0; i < n; i++) {
		if (vbi_hdr_check_in(&h[i]))
			return VB_EINVAL;
		/* "name: value\r\n" */
		total += strlen(h[i].name) + 2 + strlen(h[i].value) + 2;
		if (total > UINT32_MAX)
			return VB_EMSGSIZE;
	}
	*out = (size_t)total;
	return VB_OK;
}

void vbi_hdr_encode(const struct vb_header *h, size_t n, char *dst)
{
	size_t i, l;

	memcpy(dst, VBI_HDR_VERSION "\r\n", VER_LEN + 2);
	dst += VER_LEN + 2;
	for (i = 0; i < n; i++) {
		l = strlen(h[i].name);
		memcpy(dst, h[i].name, l);
		dst += l;
		memcpy(dst, ": ", 2);
		dst += 2;
		l = strlen(h[i].value);
		memcpy(dst, h[i].value, l);
		dst += l;
		memcpy(dst, "\r\n", 2);
		dst += 2;
	}
	memcpy(dst, "\r\n", 2);
}
