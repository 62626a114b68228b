/*
 * reload.c - a configuration reload: what may change live, and applying
 * it to the broker's connections (see reload.h).
 *
 * Binding connections again: every client's bconn.user points into the
 * authorization being replaced.  Each is bound to the entry of the new one
 * that its Hello's credentials (kept by the transport for the
 * connection's life) still prove, before the old one is freed; one whose
 * credentials no longer admit it gets an Error and is closed (its
 * publishes from then on are dropped: bk_cb_message).  Its subscriptions
 * are checked against the new subscribe permissions as a new Subscribe
 * would be (its own inbox is always allowed); each one refused goes the
 * way of an Unsubscribe (bk_sub_free: the trie, the cluster's interest)
 * and the client gets a Notice naming it, which libverbus takes as the
 * end of that subscription.
 */
#include "daemon/reload.h"
#include "daemon/broker_int.h"

#include "core/log.h"

#include <verbus/verbus.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* "1M" when exact, else the number (as the configuration prints sizes). */
static void fmt_size(char *buf, size_t len, uint64_t v)
{
	static const char suffix[] = "GMK";

	for (int i = 0; i < 3; i++) {
		uint64_t unit = 1ull << (10 * (3 - i));

		if (v && v % unit == 0) {
			snprintf(buf, len, "%llu%c",
				 (unsigned long long)(v / unit), suffix[i]);
			return;
		}
	}
	snprintf(buf, len, "%llu", (unsigned long long)v);
}

/* The settings that cannot change live: each one's key and text. */
enum fixed_id {
	F_SERVER_NAME,
	F_LISTEN,
	F_LISTEN_TCP,
	F_TLS_CERT,
	F_TLS_KEY,
	F_TLS_CA,
	F_RING_SIZE,
	F_MAX_MSG,
	F_MAX_PAYLOAD,
	F_RECV_DEPTH,
	F_HANDSHAKE_TIMEOUT,
	F_MONITOR,
	F_BUSY_POLL,
	F_CLUSTER_ZK,
	F_CLUSTER_NAME,
	F_CLUSTER_ID,
	F_CLUSTER_LISTEN,
	F_CLUSTER_ADVERTISE,
	F_CLUSTER_SECRET,
	F_CLUSTER_SESSION,
	F_PID_FILE,
	F_COUNT,
};

static const char *const fixed_keys[F_COUNT] = {
	[F_SERVER_NAME] = "server_name",
	[F_LISTEN] = "listen",
	[F_LISTEN_TCP] = "listen_tcp",
	[F_TLS_CERT] = "tls.cert",
	[F_TLS_KEY] = "tls.key",
	[F_TLS_CA] = "tls.ca",
	[F_RING_SIZE] = "limits.ring_size",
	[F_MAX_MSG] = "limits.max_msg",
	[F_MAX_PAYLOAD] = "limits.max_payload",
	[F_RECV_DEPTH] = "limits.recv_depth",
	[F_HANDSHAKE_TIMEOUT] = "limits.handshake_timeout_ms",
	[F_MONITOR] = "monitor.listen",
	[F_BUSY_POLL] = "busy_poll",
	[F_CLUSTER_ZK] = "cluster.zookeeper",
	[F_CLUSTER_NAME] = "cluster.name",
	[F_CLUSTER_ID] = "cluster.id",
	[F_CLUSTER_LISTEN] = "cluster.listen",
	[F_CLUSTER_ADVERTISE] = "cluster.advertise",
	[F_CLUSTER_SECRET] = "cluster.secret",
	[F_CLUSTER_SESSION] = "cluster.session_timeout_ms",
	[F_PID_FILE] = "pid_file",
};

/* Setting @id of @c as text, into @buf ("" shown as "none"). */
static void fixed_text(const struct vbd_config *c, enum fixed_id id, char *buf,
		       size_t len)
{
	const char *s = NULL;

	switch (id) {
	case F_SERVER_NAME:
		s = c->server_name;
		break;
	case F_LISTEN:
		vbd_config_listen_url(c, buf, len);
		return;
	case F_LISTEN_TCP:
		if (!vbd_config_listen_tcp_url(c, buf, len))
			snprintf(buf, len, "none");
		return;
	case F_TLS_CERT:
		s = c->tls_cert;
		break;
	case F_TLS_KEY:
		s = c->tls_key;
		break;
	case F_TLS_CA:
		s = c->tls_ca;
		break;
	case F_RING_SIZE:
		fmt_size(buf, len, c->ring_size);
		return;
	case F_MAX_MSG:
		fmt_size(buf, len, c->max_msg);
		return;
	case F_MAX_PAYLOAD:
		fmt_size(buf, len, c->max_payload);
		return;
	case F_RECV_DEPTH:
		snprintf(buf, len, "%u", c->recv_depth);
		return;
	case F_HANDSHAKE_TIMEOUT:
		snprintf(buf, len, "%u", c->handshake_timeout_ms);
		return;
	case F_MONITOR:
		snprintf(buf, len, "%s%s%s:%u",
			 strchr(c->monitor_addr, ':') ? "[" : "",
			 c->monitor_addr,
			 strchr(c->monitor_addr, ':') ? "]" : "",
			 c->monitor_port);
		return;
	case F_BUSY_POLL:
		snprintf(buf, len, "%s", c->busy_poll ? "true" : "false");
		return;
	case F_CLUSTER_ZK:
		s = c->cluster_zk;
		break;
	case F_CLUSTER_NAME:
		s = c->cluster_name;
		break;
	case F_CLUSTER_ID:
		s = c->cluster_id;
		break;
	case F_CLUSTER_LISTEN:
		s = c->cluster_listen;
		break;
	case F_CLUSTER_ADVERTISE:
		s = c->cluster_advertise;
		break;
	case F_CLUSTER_SECRET:
		s = c->cluster_secret;
		break;
	case F_CLUSTER_SESSION:
		snprintf(buf, len, "%u", c->cluster_session_ms);
		return;
	case F_PID_FILE:
		s = c->pid_file;
		break;
	case F_COUNT:
		break;
	}
	snprintf(buf, len, "%s", s && *s ? s : "none");
}

/* The live settings, for the summary: key and text. */
static void live_text(const struct vbd_config *c, unsigned i, const char **key,
		      char *buf, size_t len)
{
	static const char *const keys[] = {
		"limits.max_conns",
		"limits.max_subs",
		"limits.max_handshakes_per_addr",
		"slow_consumer.policy",
		"slow_consumer.block_timeout_ms",
		"slow_consumer.fallback",
		"slow_consumer.pending_max",
		"log.level",
		"spin_us",
		"lame_duck_duration_ms",
		"lame_duck_grace_ms",
	};
	const uint32_t nums[] = {
		c->max_conns,
		c->max_subs,
		c->max_handshakes_per_addr,
		0,
		c->block_timeout_ms,
		0,
		c->pending_max,
		0,
		c->spin_us,
		c->lame_duck_duration_ms,
		c->lame_duck_grace_ms,
	};

	*key = i < sizeof(keys) / sizeof(keys[0]) ? keys[i] : NULL;
	if (!*key)
		return;
	if (i == 3)
		snprintf(buf, len, "%s", vbd_slow_policy_name(c->slow_policy));
	else if (i == 5)
		snprintf(buf, len, "%s",
			 vbd_slow_policy_name(c->block_fallback));
	else if (i == 7)
		snprintf(buf, len, "%s",
			 vbi_log_level_name((enum vbi_log_level)c->log_level));
	else
		snprintf(buf, len, "%u", nums[i]);
}

size_t
vbd_config_keep_fixed(const struct vbd_config *run, struct vbd_config *next,
		      void (*report)(void *ctx, const char *key,
				     const char *running, const char *asked),
		      void *ctx, char *changed, size_t len)
{
	char a[VBD_PATH_MAX + 16], b[VBD_PATH_MAX + 16];
	const char *key;
	size_t n = 0, used = 0;

	for (unsigned i = 0; i < F_COUNT; i++) {
		fixed_text(run, (enum fixed_id)i, a, sizeof(a));
		fixed_text(next, (enum fixed_id)i, b, sizeof(b));
		if (!strcmp(a, b))
			continue;
		n++;
		if (!report)
			continue;
		if (i == F_CLUSTER_SECRET)
			report(ctx, fixed_keys[i], "(secret)", "(another)");
		else
			report(ctx, fixed_keys[i], a, b);
	}
	/* Every fixed field as it runs; the live ones as asked. */
	{
		struct vbd_config live = *next;

		*next = *run;
		next->max_conns = live.max_conns;
		next->max_subs = live.max_subs;
		next->max_handshakes_per_addr = live.max_handshakes_per_addr;
		next->slow_policy = live.slow_policy;
		next->block_timeout_ms = live.block_timeout_ms;
		next->block_fallback = live.block_fallback;
		next->pending_max = live.pending_max;
		next->log_level = live.log_level;
		next->spin_us = live.spin_us;
		next->lame_duck_duration_ms = live.lame_duck_duration_ms;
		next->lame_duck_grace_ms = live.lame_duck_grace_ms;
	}
	if (!changed || !len)
		return n;
	changed[0] = '\0';
	for (unsigned i = 0;; i++) {
		int w;

		live_text(run, i, &key, a, sizeof(a));
		if (!key)
			break;
		live_text(next, i, &key, b, sizeof(b));
		if (!strcmp(a, b))
			continue;
		w = snprintf(changed + used, len - used, "%s%s %s -> %s",
			     used ? ", " : "", key, a, b);
		if (w < 0 || (size_t)w >= len - used)
			break;
		used += (size_t)w;
	}
	return n;
}

/* ---- the broker -------------------------------------------------------- */

/* @bc's subscriptions that its (new) user may no longer hold go. */
static size_t revoke_subs(struct vbd_broker *b, struct bconn *bc)
{
	struct bsub *s, *tmp;
	size_t n = 0;

	HASH_ITER(hh, bc->subs, s, tmp)
	{
		size_t plen = strlen(s->subject);
		char subj[VBI_LOG_ESCAPE_MAX], why[VBI_REASON_MAX];

		if (vbd_inbox_pattern(s->subject, plen, bc->inbox_id) ==
			    VBD_INBOX_OWN ||
		    vbd_user_may_subscribe(bc->user, s->subject, plen))
			continue;
		vbi_log_escape(subj, sizeof(subj), s->subject, plen);
		vbi_info("reload: conn cid %" PRIu64 " %s (user %s): its "
			 "subscription %u to %s is no longer allowed; removed",
			 bc->cid, bc->name, vbd_user_name(bc->user), s->sid,
			 subj);
		snprintf(why, sizeof(why),
			 "permission denied: subscribe to %.180s (revoked by a "
			 "configuration reload)",
			 s->subject);
		bk_send_notice(bc, VB_EACCES, s->sid, 0, why);
		bk_sub_free(b, s);
		n++;
	}
	return n;
}

/* @bc may stay no more: told @why and closed, nothing it sends after
 * this routed, its subscriptions gone at once. */
static void disconnect(struct vbd_broker *b, struct bconn *bc, const char *why)
{
	struct bsub *s, *tmp;

	HASH_ITER(hh, bc->subs, s, tmp)
	bk_sub_free(b, s);
	bc->user = NULL; /* its entry goes with the old auth */
	bc->closing = true;
	bc->revoked = true;
	vbi_conn_close_error(bc->c, VB_EACCES, why);
}

void vbd_broker_reload(struct vbd_broker *b, const struct vbd_config *cfg,
		       struct vbd_auth *auth, struct vbd_reload_result *res)
{
	struct bconn *bc, *next;

	memset(res, 0, sizeof(*res));
	res->users_before = vbd_auth_users(b->auth);
	res->users_after = vbd_auth_users(auth);
	b->cfg = *cfg;
	vbd_auth_carry(auth, b->auth);
	for (bc = b->head; bc; bc = next) {
		const struct vbd_user *who = NULL;
		const void *cred;
		size_t clen;

		next = bc->next;
		if (bc->role != BK_CLIENT || bc->closing)
			continue;
		cred = vbi_conn_credentials(bc->c, &clen);
		if (vbd_auth_rebind(auth, bc->user, cred, clen, &who) !=
		    VB_OK) {
			vbi_warn("reload: conn cid %" PRIu64 " %s%s%s: its "
				 "credentials were removed; disconnected",
				 bc->cid, bc->name, bc->user ? " user " : "",
				 bc->user ? vbd_user_name(bc->user) : "");
			disconnect(b, bc,
				   "credentials removed by a "
				   "configuration reload");
			res->disconnected++;
			continue;
		}
		if (strcmp(bk_account_name_of(who), bc->acct->name)) {
			/* Its subscriptions are in the other account's trie,
			 * its inbox and grants there too: it starts again. */
			vbi_warn("reload: conn cid %" PRIu64 " %s user %s: its "
				 "account changed (%s -> %s); disconnected",
				 bc->cid, bc->name, vbd_user_name(who),
				 bc->acct->name, bk_account_name_of(who));
			disconnect(b, bc,
				   "account changed by a configuration "
				   "reload");
			res->disconnected++;
			continue;
		}
		bc->user = who;
		res->subs_revoked += revoke_subs(b, bc);
		/* Its permissions may have changed, and its account's
		 * crossings (bk_accounts_bind() below): which cannot be
		 * told cheaply, so a direct publisher asks again and its
		 * direct connections are revoked (direct.c). */
		bk_direct_reload(bc);
	}
	vbd_broker_set_auth(b, auth);
	b->st.reloads++;
}

void vbd_broker_reload_failed(struct vbd_broker *b)
{
	b->st.reload_failures++;
}
