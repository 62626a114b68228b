/*
 * cluster.c - membership: this broker in ZooKeeper (daemon/zk.h), the
 * routes the member list calls for (route.c), and the member list that
 * clients learn (Info).
 *
 * Decisions a reader must know:
 *  - Our member node, PATH/members/<cluster.id>, holds our client URL
 *    (cluster.advertise, or the listen URL) and route URL (cluster.listen)
 *    in member.h's format; a member whose data lacks a valid route URL is
 *    skipped with a warning.
 *  - Every list ZooKeeper gives (the complete set, us included) is
 *    applied: a route wanted for each other member, unwanted for those
 *    gone.  While ZooKeeper is away no list comes, so nothing changes:
 *    routes and clients stay and messages keep flowing; zk.c reconnects
 *    and registers again by itself.
 *  - Clients get an Info with the members' client URLs (ours first) when
 *    they open and whenever the list changes, as NATS's connect_urls:
 *    a client that knew one broker can fail over to any.  As many URLs
 *    as fit one control message are sent.
 */
#include "daemon/broker_int.h"
#include "daemon/member.h"
#include "daemon/zk.h"

#include "core/log.h"

#include <verbus/verbus.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One member as this broker last saw it. */
struct member {
	char id[VBD_ZK_ID_MAX + 1];
	char client[VBI_URL_MAX];
	char route[VBI_URL_MAX];
};

struct vbd_cluster {
	struct vbd_broker *b;
	struct vbd_zk *zk;
	char client_url[VBI_URL_MAX]; /* ours, for the Info */
	struct member *members; /* the latest list, by id */
	size_t nmembers;
	bool connected; /* the ZooKeeper session is up */
	bool ever_listed; /* a member list has come at least once */
};

/* An Info for @bc: the members' client URLs, ours first. */
static void send_info(struct vbd_cluster *cl, struct bconn *bc)
{
	Verbus__Control m = VERBUS__CONTROL__INIT;
	Verbus__Info info = VERBUS__INFO__INIT;
	char *urls[VBI_INFO_URLS_MAX];
	size_t i;

	info.server_id = cl->b->cfg.cluster_id;
	info.cluster = cl->b->cfg.cluster_name;
	info.connect_urls = urls;
	urls[info.n_connect_urls++] = cl->client_url;
	m.body_case = VERBUS__CONTROL__BODY_INFO;
	m.info = &info;
	for (i = 0; i < cl->nmembers; i++) {
		if (info.n_connect_urls == VBI_INFO_URLS_MAX)
			break;
		if (strcmp(cl->members[i].id, cl->b->cfg.cluster_id) == 0 ||
		    !cl->members[i].client[0])
			continue;
		urls[info.n_connect_urls++] = cl->members[i].client;
		if (verbus__control__get_packed_size(&m) > VBI_CTRL_MAX) {
			info.n_connect_urls--; /* what fits one message */
			break;
		}
	}
	/* Best effort: a client out of control credit learns at the next
	 * change (or from the next member it reaches). */
	if (vbi_conn_send_ctrl(bc->c, &m) != VB_OK)
		vbi_debug("conn %s: info not sent", bc->name);
}

void bk_cluster_client_open(struct vbd_cluster *cl, struct bconn *bc)
{
	send_info(cl, bc);
}

static void info_all(struct vbd_cluster *cl)
{
	for (struct bconn *bc = cl->b->head; bc; bc = bc->next)
		if (bc->role == BK_CLIENT && !bc->closing)
			send_info(cl, bc);
}

static struct member *member_find(struct member *m, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(m[i].id, id) == 0)
			return &m[i];
	return NULL;
}

/* zk.c: the complete member list, us included. */
static void on_members(void *arg, const struct vbd_zk_member *zm, size_t n)
{
	struct vbd_cluster *cl = arg;
	struct vbd_broker *b = cl->b;
	struct member *next = calloc(n ? n : 1, sizeof(*next));
	size_t i, k = 0;
	bool changed;

	if (!next) {
		vbi_err("cluster: out of memory for the member list; keeping "
			"the previous one");
		return;
	}
	for (i = 0; i < n; i++) {
		struct member *m = &next[k];

		struct vbd_member_addrs a;

		snprintf(m->id, sizeof(m->id), "%s", zm[i].id);
		if (!vbd_member_parse(zm[i].data, zm[i].data_len, &a)) {
			vbi_warn("cluster: member %s has no valid route URL "
				 "in its node; ignored",
				 m->id);
			continue;
		}
		/* A member without a client URL still routes. */
		memcpy(m->route, a.route, sizeof(m->route));
		memcpy(m->client, a.client, sizeof(m->client));
		k++;
	}
	/* Those gone first, then those wanted (new or moved). */
	for (i = 0; i < cl->nmembers; i++)
		if (!member_find(next, k, cl->members[i].id)) {
			vbi_info("cluster: member %s left", cl->members[i].id);
			bk_route_unwant(b, cl->members[i].id);
		}
	changed = k != cl->nmembers;
	for (i = 0; i < k; i++) {
		struct member *old =
			member_find(cl->members, cl->nmembers, next[i].id);

		if (!old || strcmp(old->client, next[i].client) != 0) {
			changed = true;
			if (!old && strcmp(next[i].id, b->cfg.cluster_id))
				vbi_info("cluster: member %s joined (route "
					 "%s, clients %s)",
					 next[i].id, next[i].route,
					 next[i].client[0] ? next[i].client :
							     "-");
		}
		bk_route_want(b, next[i].id, next[i].route);
	}
	free(cl->members);
	cl->members = next;
	cl->nmembers = k;
	cl->ever_listed = true;
	if (changed)
		info_all(cl);
}

/* zk.c: the session went up or down. */
static void on_state(void *arg, bool connected, const char *why)
{
	struct vbd_cluster *cl = arg;

	cl->connected = connected;
	if (connected)
		vbi_info("cluster: ZooKeeper session up (%s)", why);
	else
		vbi_warn("cluster: ZooKeeper session down (%s); routes and "
			 "clients stay, membership is frozen until it is back",
			 why);
}

int bk_cluster_create(struct vbd_broker *b, struct vbd_cluster **out)
{
	static const struct vbd_zk_cbs cbs = {
		.members = on_members,
		.state = on_state,
	};
	struct vbd_cluster *cl = calloc(1, sizeof(*cl));
	char hosts[VBD_PATH_MAX], path[VBD_PATH_MAX],
		data[2 * VBI_URL_MAX + 16];
	size_t len;
	int rc;

	if (!cl)
		return VB_ENOMEM;
	cl->b = b;
	rc = vbd_zk_url_parse(b->cfg.cluster_zk, hosts, sizeof(hosts), path,
			      sizeof(path));
	if (rc)
		goto out_free;
	if (b->cfg.cluster_advertise[0])
		snprintf(cl->client_url, sizeof(cl->client_url), "%s",
			 b->cfg.cluster_advertise);
	else
		vbd_config_listen_url(&b->cfg, cl->client_url,
				      sizeof(cl->client_url));
	len = vbd_member_encode(cl->client_url, b->cfg.cluster_listen, data,
				sizeof(data));
	rc = VB_EINVAL;
	if (len == 0)
		goto out_free;
	rc = vbd_zk_create(hosts, path, b->cfg.cluster_session_ms,
			   b->cfg.cluster_id, data, len, &cbs, cl, &cl->zk);
	if (rc)
		goto out_free;
	vbi_info("cluster %s: broker %s, routes on %s, clients on %s, "
		 "ZooKeeper %s",
		 b->cfg.cluster_name, b->cfg.cluster_id, b->cfg.cluster_listen,
		 cl->client_url, b->cfg.cluster_zk);
	*out = cl;
	return VB_OK;
out_free:
	bk_cluster_destroy(cl);
	return rc;
}

void bk_cluster_destroy(struct vbd_cluster *cl)
{
	if (!cl)
		return;
	vbd_zk_destroy(cl->zk);
	free(cl->members);
	free(cl);
}

int bk_cluster_fd(struct vbd_cluster *cl)
{
	return vbd_zk_fd(cl->zk);
}

int bk_cluster_timeout_ms(struct vbd_cluster *cl)
{
	return vbd_zk_timeout_ms(cl->zk);
}

void bk_cluster_process(struct vbd_cluster *cl)
{
	vbd_zk_process(cl->zk);
}

void bk_cluster_stats(struct vbd_cluster *cl, struct vbd_stats_cluster *st)
{
	struct vbd_zk_stats zs;
	const struct vbd_broker *b = cl->b;

	*st = b->cst;
	vbd_zk_stats(cl->zk, &zs);
	st->enabled = true;
	snprintf(st->name, sizeof(st->name), "%s", b->cfg.cluster_name);
	snprintf(st->id, sizeof(st->id), "%s", b->cfg.cluster_id);
	st->zk_connected = zs.connected;
	st->registered = zs.registered;
	st->zk_connects = zs.connects;
	st->zk_disconnects = zs.disconnects;
	st->zk_expiries = zs.expiries;
	st->members = (uint32_t)cl->nmembers;
	st->routes = (uint32_t)b->nroutes;
}
