/*
 * url.c - broker URLs at the public edge: vb_url_parse(),
 * vb_url_supported() and vb_url_list_parse().
 *
 * No grammar lives here: the parser is core/url.c's (which fills the public
 * struct itself), the list of schemes is transport/'s and the list of
 * servers is the pool's (pool.c), so that the library, the verbus tool and
 * verbusd can never read a URL, or a list, differently.
 */
#include "clients/lib/pool.h"
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

int vb_url_list_parse(const char *list, struct vb_url *out, size_t cap,
		      char *err, size_t errlen)
{
	struct vbi_pool *p;
	size_t i, n;
	int rc;

	if (!out && cap)
		return VB_EINVAL;
	rc = vbi_pool_create(list, 0, 0, &p, err, errlen);
	if (rc)
		return rc;
	n = vbi_pool_count(p);
	for (i = 0; i < n && i < cap; i++)
		out[i] = vbi_pool_get(p, i)->url;
	vbi_pool_destroy(p);
	return (int)n;
}
