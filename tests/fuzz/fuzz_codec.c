/* libFuzzer target: the protobuf-c control decoder (proto/codec.c), fed
 * whatever a peer could SEND.  Every accepted message must re-encode. */
#include "proto/codec.h"

#include <verbus/verbus.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[VBI_CTRL_MAX * 2];
	Verbus__Control *m = NULL;
	size_t len;

	if (vbi_codec_decode(data, size, &m) != VB_OK)
		return 0;
	(void)vbi_codec_kind_name(m);
	/* A decoded message fits the size it came in, so it re-encodes. */
	if (vbi_codec_encode(m, out, sizeof(out), &len) != VB_OK)
		abort();
	vbi_codec_free(m);
	return 0;
}
