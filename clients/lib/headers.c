/*
 * headers.c - message headers in libverbus (verbus/verbus.h): publishing
 * with headers and reading those of a delivered message.
 *
 * The block is encoded straight into the frame (outq.c) and read where it
 * lies in the receive ring: no copy either way.  Reading checks bounds on
 * every byte (core/header.c), since the ring is the broker's to write.
 */
#include "clients/lib/client.h"
#include "core/header.h"

#include <string.h>

int vb_publish_msg(struct vb_conn *c, const char *subject, const char *reply,
		   const struct vb_header *hdrs, size_t nhdrs, const void *data,
		   size_t size)
{
	int rc;

	if (!c || (nhdrs && !hdrs))
		return VB_EINVAL;
	client_lock(c);
	rc = vbi_outq_publish_hdr(c, subject, reply, hdrs, nhdrs, data, size);
	client_unlock(c);
	return rc;
}

int vb_respond_msg(struct vb_conn *c, const struct vb_msg *m,
		   const struct vb_header *hdrs, size_t nhdrs, const void *data,
		   size_t size)
{
	char reply[VBI_SUBJECT_MAX + 1];

	if (!c || !m)
		return VB_EINVAL;
	if (!m->reply || !m->reply_len || m->reply_len > VBI_SUBJECT_MAX)
		return VB_EINVAL;
	memcpy(reply, m->reply, m->reply_len);
	reply[m->reply_len] = '\0';
	return vb_publish_msg(c, reply, NULL, hdrs, nhdrs, data, size);
}

int vb_msg_header(const struct vb_msg *m, const char *name, size_t idx,
		  const char **value, size_t *len)
{
	int rc;

	if (!m || !name || !value || !len)
		return VB_EINVAL;
	if (!m->headers)
		return VB_ENOENT;
	rc = vbi_hdr_get(m->headers, m->headers_len, name, strlen(name), idx,
			 value, len);
	return rc == VB_EAGAIN ? VB_ENOENT : rc;
}

int vb_msg_header_next(const struct vb_msg *m, size_t *pos,
		       struct vb_header_field *out)
{
	struct vbi_hdr_field f;
	int rc;

	if (!m || !pos || !out)
		return VB_EINVAL;
	if (!m->headers)
		return VB_ENOENT;
	rc = vbi_hdr_next(m->headers, m->headers_len, pos, &f);
	if (rc == VB_EAGAIN)
		return VB_ENOENT;
	if (rc)
		return rc;
	out->name = f.name;
	out->name_len = f.name_len;
	out->value = f.value;
	out->value_len = f.value_len;
	return VB_OK;
}
