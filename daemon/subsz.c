/*
 * subsz.c - /subsz: the clients' subscriptions as JSON, as nats-server's
 * /subsz with subs=1 (always detailed here), paged, optionally only those
 * a message on one subject would reach (?test=SUBJECT).
 *
 * The page is built in one pass over the broker's subscriptions (the
 * stats source's subs callback), counting every match for "total" and
 * building objects only for the page's window, so a page of 1,024 out of
 * a million subscriptions costs the objects of 1,024.  Subjects, queue
 * names and connection names were chosen by clients: they are made valid
 * UTF-8 before they reach JSON, as every page of the monitor does.
 */
#include "daemon/monitor_int.h"

#include "core/subject.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* The page being built, one subscription at a time. */
struct subsz_page {
	const struct vbd_subsz_query *q;
	uint64_t seen; /* matches so far: the total, at the end */
	json_object *arr; /* the page's subscriptions */
	bool oom; /* an object could not be built */
};

/* One subscription as nats-server's subsz detail writes it, plus the
 * connection's name and the drops; qgroup and max only when set. */
static json_object *sub_json(const struct vbd_stats_sub *s)
{
	json_object *o = json_object_new_object();

	if (o == NULL)
		return NULL;
	vbd_mon_jadd_text(o, "subject", s->subject, VBI_SUBJECT_MAX + 1);
	if (s->queue)
		vbd_mon_jadd_text(o, "qgroup", s->queue, VBI_QUEUE_MAX + 1);
	vbd_mon_jadd_u64(o, "sid", s->sid);
	vbd_mon_jadd_u64(o, "cid", s->cid);
	vbd_mon_jadd_text(o, "name", s->name ? s->name : "", 64);
	vbd_mon_jadd_u64(o, "msgs", s->msgs);
	vbd_mon_jadd_u64(o, "dropped", s->dropped);
	if (s->max)
		vbd_mon_jadd_u64(o, "max", s->max);
	return o;
}

static void subsz_add(void *ctx, const struct vbd_stats_sub *s)
{
	struct subsz_page *p = ctx;
	json_object *o;

	if (p->seen >= p->q->offset && p->seen - p->q->offset < p->q->limit &&
	    !p->oom) {
		o = sub_json(s);
		if (o == NULL || json_object_array_add(p->arr, o) != 0) {
			json_object_put(o);
			p->oom = true;
		}
	}
	p->seen++;
}

json_object *vbd_subsz_json(const struct vbd_stats_source *src,
			    const struct vbd_stats_server *s,
			    const struct vbd_subsz_query *q, const char *now)
{
	struct subsz_page p = { .q = q };
	json_object *o = json_object_new_object();

	p.arr = json_object_new_array();
	if (o == NULL || p.arr == NULL)
		goto out_oom;
	if (src->subs)
		src->subs(src->arg, q->test, subsz_add, &p);
	if (p.oom)
		goto out_oom;
	json_object_object_add(
		o, "server_name",
		json_object_new_string(s->server_name ? s->server_name : ""));
	json_object_object_add(o, "now", json_object_new_string(now));
	vbd_mon_jadd_u64(o, "num_subscriptions", s->subs);
	vbd_mon_jadd_u64(o, "num_cache", s->sub_cache);
	vbd_mon_jadd_u64(o, "total", p.seen);
	vbd_mon_jadd_u64(o, "offset", q->offset);
	vbd_mon_jadd_u64(o, "limit", q->limit);
	json_object_object_add(o, "subscriptions_list", p.arr);
	return o;
out_oom:
	json_object_put(p.arr);
	json_object_put(o);
	return NULL;
}
