/* libFuzzer target: a message's header block as a peer sends it
 * (core/header.c), the bytes of an HMSG payload as the broker and the
 * library read them: the block's length (vbi_frame_hmsg_split), then the
 * block, validated, iterated and searched.  Every view must lie inside
 * the input; validation and iteration must agree; and a block encoded
 * from the headers found must validate and read back the same. */
#include "core/frame.h"
#include "core/header.h"

#include <verbus/verbus.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FIELDS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(const char *p, size_t n, const char *blk, size_t len)
{
	if (p < blk || n > len || p + n > blk + len)
		abort();
}

/* Re-encode the headers found, read them back: the same, in order. */
static void round_trip(const struct vbi_hdr_field *f, size_t n)
{
	struct vb_header h[MAX_FIELDS];
	struct vbi_hdr_field g;
	char *names[MAX_FIELDS] = { 0 }, *values[MAX_FIELDS] = { 0 }, *out;
	size_t i, len, pos = 0;

	for (i = 0; i < n; i++) {
		names[i] = strndup(f[i].name, f[i].name_len);
		values[i] = strndup(f[i].value, f[i].value_len);
		if (!names[i] || !values[i])
			abort();
		h[i].name = names[i];
		h[i].value = values[i];
	}
	/* A value that held a NUL reads back shorter: not comparable. */
	for (i = 0; i < n; i++)
		if (strlen(values[i]) != f[i].value_len)
			goto out;
	if (vbi_hdr_encoded_len(h, n, &len) != VB_OK)
		abort(); /* what parsed must encode */
	out = malloc(len);
	if (!out)
		abort();
	vbi_hdr_encode(h, n, out);
	if (vbi_hdr_validate(out, len) != VB_OK)
		abort();
	for (i = 0; i < n; i++) {
		if (vbi_hdr_next(out, len, &pos, &g) != VB_OK ||
		    g.name_len != f[i].name_len ||
		    memcmp(g.name, names[i], g.name_len) ||
		    g.value_len != f[i].value_len ||
		    memcmp(g.value, values[i], g.value_len))
			abort();
	}
	if (vbi_hdr_next(out, len, &pos, &g) != VB_EAGAIN)
		abort();
	free(out);
out:
	for (i = 0; i < n; i++) {
		free(names[i]);
		free(values[i]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vbi_hdr_field f[MAX_FIELDS], g;
	const char *blk, *v;
	uint32_t hlen;
	size_t n = 0, pos = 0, vl;
	int rc;

	if (size > UINT32_MAX ||
	    vbi_frame_hmsg_split(data, (uint32_t)size, &hlen) != VB_OK)
		return 0;
	if ((size_t)hlen + VBI_FRAME_HLEN_LEN > size)
		abort();
	blk = (const char *)data + VBI_FRAME_HLEN_LEN;
	(void)vbi_hdr_status(blk, hlen);
	while ((rc = vbi_hdr_next(blk, hlen, &pos, &g)) == VB_OK) {
		inside(g.name, g.name_len, blk, hlen);
		inside(g.value, g.value_len, blk, hlen);
		if (g.name_len == 0 || g.name_len > VBI_HDR_NAME_MAX)
			abort();
		if (n < MAX_FIELDS)
			f[n] = g;
		n++;
		if (pos > hlen)
			abort();
	}
	if (rc != VB_EAGAIN && rc != VB_EPROTO)
		abort();
	/* Valid exactly when iteration ends at the block's last 2 bytes. */
	if ((vbi_hdr_validate(blk, hlen) == VB_OK) !=
	    (rc == VB_EAGAIN && pos + 2 == hlen))
		abort();
	if (n > 0 && n <= MAX_FIELDS) {
		rc = vbi_hdr_get(blk, hlen, f[0].name, f[0].name_len, 0, &v,
				 &vl);
		if (rc != VB_OK || v != f[0].value || vl != f[0].value_len)
			abort();
		round_trip(f, n);
	}
	return 0;
}
