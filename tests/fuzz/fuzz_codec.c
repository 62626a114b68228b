/* libFuzzer target: the protobuf-c control decoder (proto/codec.c), fed
 * whatever a peer could SEND.  Every accepted message must re-encode.  The
 * same bytes go to the direct connection's Hello credentials decoder (a
 * packed connect grant), whose accepted grants go through the MAC check
 * (proto/grant.c), which must refuse them: the key is not the broker's. */
#include "proto/codec.h"
#include "proto/grant.h"

#include <verbus/verbus.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[VBI_CTRL_MAX * 2];
	static const uint8_t key[VBI_DIRECT_KEY_LEN] = { 0x42 };
	Verbus__Control *m = NULL;
	Verbus__DirectGrant *g = NULL;
	struct vbi_grant vg;
	size_t len;

	if (vbi_codec_grant_decode(data, size, &g) == VB_OK) {
		if (vbi_grant_from_msg(&vg, g, NULL) != VB_OK ||
		    vbi_grant_verify(key, &vg, g->mac.data, g->mac.len))
			abort();
		vbi_codec_grant_free(g);
	}
	if (vbi_codec_decode(data, size, &m) != VB_OK)
		return 0;
	(void)vbi_codec_kind_name(m);
	/* A decoded message fits the size it came in, so it re-encodes. */
	if (vbi_codec_encode(m, out, sizeof(out), &len) != VB_OK)
		abort();
	vbi_codec_free(m);
	return 0;
}
