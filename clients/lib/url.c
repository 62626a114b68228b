/*
 * url.c - broker URLs at the public edge: vb_url_parse() and
 * vb_url_supported().
 *
 * No grammar lives here: the parser is core/url.c's (which fills the public
 * struct itself) and the list of schemes is transport/'s, so that the
 * library, the verbus tool and verbusd can never read a URL differently.
 */
#include "core/url.h"
#include "transport/transport.h"

#include <verbus/verbus.h>

int vb_url_parse(const char *url, struct vb_url *out, char *err, size_t errlen)
{
	if (!out)
		return VB_EINVAL;
	return vbi_url_parse(url, out, err, errlen);
}

int vb_url_supported(const struct vb_url *u, char *err, size_t errlen)
{
	return vbi_transport_check(u ? u->scheme : NULL, err, errlen);
}
