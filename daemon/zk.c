/*
 * zk.c - cluster membership in ZooKeeper (zk.h), with the single-threaded
 * C client (libzookeeper_st) driven from verbusd's epoll loop.
 *
 * Everything is asynchronous: zookeeper_interest() names the socket (a new
 * one after every reconnection), what to wait for and for how long; the
 * socket sits in an epoll descriptor of our own, which is what the daemon
 * waits on; zookeeper_process() runs the completions and watches, and so
 * every callback, on the daemon's thread.  The library is called only when
 * its socket is ready or its deadline has passed, because a call between
 * the two would cut short its pause between rounds of reconnection.
 *
 * Two decisions a reader must know:
 *
 * - Our node is PATH/members/<id>, ephemeral and without a sequence
 *   number, so that a create whose answer was lost with the connection can
 *   be retried: ZNODEEXISTS then means "ours" if the node's ephemeralOwner
 *   is our session, and otherwise a node of another session (a previous
 *   run of this broker not yet expired, or a second broker with our id),
 *   which we never delete: we watch it and create ours once it is gone.
 *
 * - Every request carries a small context naming the handle's epoch (one
 *   per zookeeper_init()), freed by its completion.  The library runs every
 *   completion still pending, with ZCLOSING, inside zookeeper_close(): so
 *   after an expiry, a completion of the dead handle frees its context and
 *   does nothing else, and none runs after the handle is gone.  An expired
 *   handle is closed after zookeeper_process() returns, never inside one
 *   of its own callbacks.
 */
#include "zk.h"

#include "core/clock.h"
#include "core/log.h"

#include <verbus/verbus.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/types.h>
#include <unistd.h>
#include <zookeeper/zookeeper.h>

/* Back-off between zookeeper_init() attempts (after an expiry, or when
 * the hosts cannot be resolved), doubled on each failure. */
#define REINIT_MIN_MS 100u
#define REINIT_MAX_MS 5000u
/* Back-off of registration and listing after an unexpected error. */
#define RETRY_MIN_MS 200u
#define RETRY_MAX_MS 10000u
/* The pause after zookeeper_interest() fails without a timeout of its own
 * (e.g. no socket: EMFILE), so that a persistent failure is no busy loop. */
#define INTEREST_ERR_MS 100u
/* The library's log lines passed on per window; the rest are counted. */
#define ZKLOG_BURST 10u
#define ZKLOG_WINDOW_MS 10000u

/* What a request's completion needs; freed by the completion. */
struct op {
	struct vbd_zk *zk; /* the owner: it outlives every request */
	uint64_t epoch; /* zk->epoch when the request was sent */
	uint64_t gen; /* a listing's number (zk->list_gen) */
	size_t pos; /* a parent's create: the length of the prefix created */
};

struct round;

/* One member's data request within a listing. */
struct get {
	struct round *r; /* the listing it belongs to */
	size_t i; /* its entry in r->m */
	bool ok; /* the data arrived and is acceptable */
	int64_t owner; /* the node's ephemeralOwner (session id) */
};

/*
 * One listing: the children of PATH/members, then every member's data.
 * Freed when the last of its data requests has completed.
 */
struct round {
	struct vbd_zk *zk; /* the owner */
	uint64_t epoch; /* the handle it was sent on */
	uint64_t gen; /* its number: only the latest is given to the caller */
	size_t n; /* entries of @m and @g */
	size_t pending; /* data requests not yet completed */
	bool failed; /* a request failed other than with ZNONODE */
	struct vbd_zk_member *m; /* the members, sorted by id */
	struct get *g; /* their requests */
};

struct vbd_zk {
	zhandle_t *zh; /* the session; NULL between a dead one and the next */
	uint64_t epoch; /* incremented at each zookeeper_init() */
	char *hosts; /* for zookeeper_init() */
	char *members_path; /* PATH/members */
	char *self_path; /* PATH/members/<id> */
	char *scratch; /* room for a parent's or a member's path */
	char id[VBD_ZK_ID_MAX + 1]; /* our id */
	char *data; /* our data (malloc()ed, at least 1 byte) */
	size_t data_len; /* its length */
	unsigned session_ms; /* the session timeout asked for */
	struct vbd_zk_cbs cbs; /* the caller's callbacks */
	void *arg; /* their argument */
	int epfd; /* the stable descriptor: an epoll set holding @sock */
	int sock; /* the library's socket in @epfd; -1: none */
	uint64_t deadline; /* ms: when the library wants to be called */
	uint64_t reinit_at; /* ms: when @zh is NULL, the next init */
	unsigned reinit_ms; /* the init back-off */
	uint64_t retry_at; /* ms: registration/listing retry due; 0: none */
	unsigned retry_ms; /* their back-off */
	bool dead; /* @zh is expired or refused: close it after this turn */
	bool closing; /* inside zookeeper_close(): callbacks do nothing */
	bool touched; /* a request was queued: ask the library its interest */
	bool reg_busy; /* a registration chain is in flight */
	bool conflict; /* our node is another session's: waiting for it */
	int64_t conflict_owner; /* that session (warned about once) */
	uint64_t list_gen; /* the latest listing sent */
	bool list_wanted; /* a listing is owed (lost, or failed) */
	struct vbd_zk_member *last; /* the last list given to the caller */
	size_t nlast; /* its entries */
	bool have_last; /* @last is valid (false after a disconnection) */
	struct vbd_zk_stats st; /* counters, and the two state flags */
};

/* ---- the library's log ------------------------------------------------- */

/* The window of the library's log lines: its start (ms), the lines passed
 * on in it, and those that were not.  Process-wide, as the routing is:
 * one event-loop thread uses the library. */
static uint64_t zklog_window;
static unsigned zklog_count;
static unsigned long zklog_suppressed;

/* Say how many lines were not logged, and start a new window. */
static void zklog_flush(uint64_t now)
{
	if (zklog_suppressed)
		vbi_warn("zookeeper: %lu more library messages were not "
			 "logged",
			 zklog_suppressed);
	zklog_window = now;
	zklog_count = 0;
	zklog_suppressed = 0;
}

/*
 * One line of the library's log ("TIME:PID:ZOO_WARN@func@line: text"),
 * passed on as "zookeeper: text" at our level, escaped, a few per window:
 * a server that is down makes the library log each attempt to reach it.
 * Its errors are our warnings: what matters (the session is down, expired)
 * is said by this module itself.
 */
static void zklog_line(const char *msg)
{
	static const struct {
		const char *tag;
		enum vbi_log_level level;
	} levels[] = {
		{ ":ZOO_ERROR@", VBI_LOG_WARN },
		{ ":ZOO_WARN@", VBI_LOG_WARN },
		{ ":ZOO_INFO@", VBI_LOG_DEBUG },
		{ ":ZOO_DEBUG@", VBI_LOG_DEBUG },
	};
	enum vbi_log_level level = VBI_LOG_WARN;
	const char *text = msg, *p;
	char esc[400];
	uint64_t now = vbi_clock_ms();
	size_t i, len;

	if (!msg)
		return;
	for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		p = strstr(msg, levels[i].tag);
		if (!p)
			continue;
		level = levels[i].level;
		/* Past "@func@line: ". */
		p = strchr(p + strlen(levels[i].tag), '@');
		p = p ? strstr(p, ": ") : NULL;
		if (p)
			text = p + 2;
		break;
	}
	if (!vbi_log_enabled(level))
		return;
	if (now - zklog_window >= ZKLOG_WINDOW_MS)
		zklog_flush(now);
	if (zklog_count >= ZKLOG_BURST) {
		zklog_suppressed++;
		return;
	}
	zklog_count++;
	len = strlen(text);
	while (len && (text[len - 1] == '\n' || text[len - 1] == ' '))
		len--;
	vbi_log_escape(esc, sizeof(esc), text, len);
	vbi_log(level, "zookeeper: %s", esc);
}

/* The library's stream, for lines logged without a handle: bytes are
 * gathered into lines and passed to zklog_line(). */
static ssize_t zklog_write(void *cookie, const char *buf, size_t size)
{
	static char line[1024];
	static size_t used;
	size_t i;

	(void)cookie;
	for (i = 0; i < size; i++) {
		if (buf[i] != '\n' && used < sizeof(line) - 1) {
			line[used++] = buf[i];
			continue;
		}
		line[used] = '\0';
		if (used)
			zklog_line(line);
		used = 0;
		if (buf[i] != '\n')
			line[used++] = buf[i];
	}
	return (ssize_t)size;
}

/* Route the library's log (process-wide) and set its level. */
static void zklog_setup(void)
{
	static FILE *stream;
	ZooLogLevel level = ZOO_LOG_LEVEL_WARN;

	if (!stream) {
		cookie_io_functions_t io = { .write = zklog_write };

		stream = fopencookie(NULL, "w", io);
		if (stream) {
			setvbuf(stream, NULL, _IOLBF, 0);
			zoo_set_log_stream(stream);
		}
	}
	if (vbi_log_enabled(VBI_LOG_DEBUG))
		level = ZOO_LOG_LEVEL_INFO;
	zoo_set_debug_level(level);
}

/* ---- small helpers ----------------------------------------------------- */

static uint64_t now_ms(void)
{
	return vbi_clock_ms();
}

/* A back-off step: @ms doubled, at most @max. */
static unsigned doubled(unsigned ms, unsigned max)
{
	return ms > max / 2 ? max : ms * 2;
}

static struct op *op_new(struct vbd_zk *zk)
{
	struct op *o = calloc(1, sizeof(*o));

	if (!o) {
		vbi_err("zookeeper: out of memory");
		return NULL;
	}
	o->zk = zk;
	o->epoch = zk->epoch;
	return o;
}

/* Whether a completion of @epoch with @rc concerns the live handle. */
static bool live(const struct vbd_zk *zk, uint64_t epoch, int rc)
{
	return !zk->closing && epoch == zk->epoch && zk->zh && rc != ZCLOSING;
}

/* A result that only says the connection went: the next CONNECTED event
 * (or the expiry) takes it from there. */
static bool conn_rc(int rc)
{
	return rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT ||
	       rc == ZSESSIONEXPIRED || rc == ZINVALIDSTATE || rc == ZCLOSING;
}

static int64_t session_id(struct vbd_zk *zk)
{
	const clientid_t *c = zk->zh ? zoo_client_id(zk->zh) : NULL;

	return c ? c->client_id : 0;
}

/* Tell the caller the session went up or down. */
static void set_state(struct vbd_zk *zk, bool up, const char *why)
{
	if (up)
		vbi_info("zookeeper: %s", why);
	else
		vbi_warn("zookeeper: %s", why);
	if (zk->cbs.state)
		zk->cbs.state(zk->arg, up, why);
}

/* Retry registration and listing later, with back-off. */
static void retry_later(struct vbd_zk *zk)
{
	if (zk->retry_at)
		return;
	zk->retry_at = now_ms() + zk->retry_ms;
	zk->retry_ms = doubled(zk->retry_ms, RETRY_MAX_MS);
}

/* ---- the member list --------------------------------------------------- */

static void list(struct vbd_zk *zk);
static void reg_start(struct vbd_zk *zk);

static int member_cmp(const void *a, const void *b)
{
	return strcmp(((const struct vbd_zk_member *)a)->id,
		      ((const struct vbd_zk_member *)b)->id);
}

static bool same_list(const struct vbd_zk *zk, const struct vbd_zk_member *m,
		      size_t n)
{
	size_t i;

	if (!zk->have_last || n != zk->nlast)
		return false;
	for (i = 0; i < n; i++)
		if (strcmp(m[i].id, zk->last[i].id) != 0 ||
		    m[i].data_len != zk->last[i].data_len ||
		    memcmp(m[i].data, zk->last[i].data, m[i].data_len) != 0)
			return false;
	return true;
}

/* Give the caller @m (@n, sorted) unless it is what they have. */
static void deliver(struct vbd_zk *zk, const struct vbd_zk_member *m, size_t n)
{
	struct vbd_zk_member *copy;

	if (same_list(zk, m, n))
		return;
	copy = realloc(zk->last, (n ? n : 1) * sizeof(*copy));
	if (!copy) {
		vbi_err("zookeeper: out of memory for the member list");
		zk->list_wanted = true;
		retry_later(zk);
		return;
	}
	if (n)
		memcpy(copy, m, n * sizeof(*copy));
	zk->last = copy;
	zk->nlast = n;
	zk->have_last = true;
	zk->st.member_changes++;
	zk->st.members = (uint32_t)n;
	vbi_info("zookeeper: %zu members", n);
	if (zk->cbs.members)
		zk->cbs.members(zk->arg, m, n);
}

/* Our own entry of a complete listing: is it there, and ours? */
static bool self_check(struct vbd_zk *zk, const struct round *r)
{
	struct vbd_zk_member key;
	const struct vbd_zk_member *me;
	int64_t owner;

	memcpy(key.id, zk->id, sizeof(key.id));
	me = r->n ? bsearch(&key, r->m, r->n, sizeof(*r->m), member_cmp) : NULL;
	if (!me || !r->g[me - r->m].ok) {
		if (zk->st.registered) {
			vbi_warn("zookeeper: our node %s is gone although "
				 "our session lives: registering again",
				 zk->self_path);
			zk->st.registered = false;
		}
		reg_start(zk);
		return false;
	}
	owner = r->g[me - r->m].owner;
	if (owner != session_id(zk)) {
		if (zk->st.registered) {
			vbi_warn("zookeeper: our node %s now belongs to "
				 "session 0x%llx: registering again",
				 zk->self_path, (unsigned long long)owner);
			zk->st.registered = false;
		}
		reg_start(zk);
		return false;
	}
	return zk->st.registered;
}

/* The last data request of @r completed: give the list, free @r. */
static void round_finish(struct round *r)
{
	struct vbd_zk *zk = r->zk;
	size_t i, n = 0;

	if (zk->closing || r->epoch != zk->epoch || !zk->zh)
		goto out_free;
	if (r->failed) {
		/* Lost with the connection, or refused: the next CONNECTED
		 * event or the retry lists again. */
		zk->list_wanted = true;
		retry_later(zk);
		goto out_free;
	}
	if (r->gen != zk->list_gen)
		goto out_free; /* a newer listing is on its way */
	if (!self_check(zk, r))
		goto out_free;
	for (i = 0; i < r->n; i++) {
		if (!r->g[i].ok)
			continue;
		if (n != i)
			r->m[n] = r->m[i];
		n++;
	}
	deliver(zk, r->m, n);
out_free:
	free(r->g);
	free(r->m);
	free(r);
}

static void data_done(int rc, const char *value, int len,
		      const struct Stat *stat, const void *data)
{
	struct get *g = (struct get *)data;
	struct round *r = g->r;
	struct vbd_zk_member *m = &r->m[g->i];

	if (rc == ZOK) {
		if (len < 0)
			len = 0; /* a node without data */
		if ((size_t)len > VBD_ZK_DATA_MAX) {
			vbi_warn("zookeeper: member %s has %d bytes of data, "
				 "over %d: skipped",
				 m->id, len, VBD_ZK_DATA_MAX);
		} else {
			if (len)
				memcpy(m->data, value, (size_t)len);
			m->data[len] = '\0';
			m->data_len = (size_t)len;
			g->owner = stat ? stat->ephemeralOwner : 0;
			g->ok = true;
		}
	} else if (rc != ZNONODE) {
		/* ZNONODE: it left after the listing, and the watch says
		 * so; anything else makes the list incomplete. */
		r->failed = true;
		if (!conn_rc(rc))
			vbi_warn("zookeeper: cannot read member %s: %s", m->id,
				 zerror(rc));
	}
	if (--r->pending == 0)
		round_finish(r);
}

/* The children of PATH/members arrived: read each valid member's data. */
static void children_done(int rc, const struct String_vector *kids,
			  const void *data)
{
	struct op *o = (struct op *)data;
	struct vbd_zk *zk = o->zk;
	bool ok = live(zk, o->epoch, rc) && o->gen == zk->list_gen;
	struct round *r = NULL;
	size_t i, n = 0, plen;
	int32_t k;

	free(o);
	if (!ok)
		return;
	if (rc == ZNONODE) {
		/* PATH/members itself is gone, and our node with it. */
		vbi_warn("zookeeper: %s is gone: registering again",
			 zk->members_path);
		zk->st.registered = false;
		zk->list_wanted = true;
		reg_start(zk);
		return;
	}
	if (rc != ZOK) {
		if (!conn_rc(rc))
			vbi_warn("zookeeper: cannot list %s: %s",
				 zk->members_path, zerror(rc));
		zk->list_wanted = true;
		retry_later(zk);
		return;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		goto out_nomem;
	r->zk = zk;
	r->epoch = zk->epoch;
	r->gen = zk->list_gen;
	k = kids ? kids->count : 0;
	if (k > 0) {
		size_t want = (size_t)k;

		if (want > VBD_ZK_MEMBERS_MAX)
			want = VBD_ZK_MEMBERS_MAX;
		r->m = calloc(want, sizeof(*r->m));
		r->g = calloc(want, sizeof(*r->g));
		if (!r->m || !r->g)
			goto out_free;
	}
	for (k = 0; kids && k < kids->count; k++) {
		const char *name = kids->data[k];
		char esc[VBI_LOG_ESCAPE_MAX];

		if (!name || !vbd_zk_id_valid(name)) {
			vbi_log_escape(esc, sizeof(esc), name,
				       name ? strlen(name) : 0);
			vbi_warn("zookeeper: %s/%s is not a valid member id: "
				 "skipped",
				 zk->members_path, esc);
			continue;
		}
		if (n == VBD_ZK_MEMBERS_MAX) {
			vbi_warn("zookeeper: more than %d members under %s: "
				 "the rest are skipped",
				 VBD_ZK_MEMBERS_MAX, zk->members_path);
			break;
		}
		strcpy(r->m[n++].id, name);
	}
	r->n = n;
	if (n > 1)
		qsort(r->m, n, sizeof(*r->m), member_cmp);
	/* Each member's path, behind PATH/members in the scratch buffer. */
	plen = strlen(zk->members_path);
	memcpy(zk->scratch, zk->members_path, plen);
	/* One extra count while sending, so that requests failing at once
	 * cannot finish the round under our feet. */
	r->pending = 1;
	for (i = 0; i < n; i++) {
		r->g[i].r = r;
		r->g[i].i = i;
		snprintf(zk->scratch + plen, VBD_ZK_ID_MAX + 2, "/%s",
			 r->m[i].id);
		rc = zoo_aget(zk->zh, zk->scratch, 0, data_done, &r->g[i]);
		if (rc != ZOK) {
			r->failed = true;
			continue;
		}
		r->pending++;
	}
	zk->touched = true;
	if (--r->pending == 0)
		round_finish(r);
	return;
out_free:
	free(r->g);
	free(r->m);
	free(r);
out_nomem:
	vbi_err("zookeeper: out of memory for the member list");
	zk->list_wanted = true;
	retry_later(zk);
}

/* A change under PATH/members (or the watch was lost): list again, which
 * also sets the next watch (watches fire once). */
static void child_watch(zhandle_t *zh, int type, int state, const char *path,
			void *ctx)
{
	struct vbd_zk *zk = ctx;

	(void)state;
	(void)path;
	if (zk->closing || zh != zk->zh || type == ZOO_SESSION_EVENT)
		return;
	list(zk);
}

/* Send a listing (with a watch) of PATH/members. */
static void list(struct vbd_zk *zk)
{
	struct op *o;
	int rc;

	zk->list_wanted = true;
	if (!zk->zh || !zk->st.connected || !zk->st.registered)
		return; /* registering lists when it is done */
	o = op_new(zk);
	if (!o) {
		retry_later(zk);
		return;
	}
	o->gen = ++zk->list_gen;
	rc = zoo_awget_children(zk->zh, zk->members_path, child_watch, zk,
				children_done, o);
	if (rc != ZOK) {
		free(o);
		vbi_warn("zookeeper: cannot list %s: %s", zk->members_path,
			 zerror(rc));
		retry_later(zk);
		return;
	}
	zk->list_wanted = false;
	zk->touched = true;
}

/* ---- registration ------------------------------------------------------ */

static void reg_next(struct vbd_zk *zk, size_t pos);

/* The chain stopped on @rc at @what: the CONNECTED event or the retry
 * takes it up again. */
static void reg_failed(struct vbd_zk *zk, const char *what, int rc)
{
	zk->reg_busy = false;
	if (conn_rc(rc))
		vbi_debug("zookeeper: create %s: %s", what, zerror(rc));
	else
		vbi_warn("zookeeper: cannot create %s: %s; trying again", what,
			 zerror(rc));
	retry_later(zk);
}

/* Our node is ours: we are a member. */
static void registered(struct vbd_zk *zk, bool found)
{
	zk->reg_busy = false;
	zk->conflict = false;
	zk->conflict_owner = 0;
	zk->st.registered = true;
	zk->st.registrations++;
	zk->retry_ms = RETRY_MIN_MS;
	vbi_info("zookeeper: registered as %s%s", zk->self_path,
		 found ? " (our node already existed)" : "");
	list(zk);
}

static void self_watch(zhandle_t *zh, int type, int state, const char *path,
		       void *ctx);

/* Our node exists: its owner says whether it is ours. */
static void exists_done(int rc, const struct Stat *stat, const void *data)
{
	struct op *o = (struct op *)data;
	struct vbd_zk *zk = o->zk;
	bool ok = live(zk, o->epoch, rc);
	int64_t owner;

	free(o);
	if (!ok)
		return;
	if (rc == ZNONODE) {
		/* It went in between: create ours now. */
		reg_next(zk, strlen(zk->members_path));
		return;
	}
	if (rc != ZOK || !stat) {
		reg_failed(zk, zk->self_path, rc);
		return;
	}
	owner = stat->ephemeralOwner;
	if (owner == session_id(zk)) {
		registered(zk, true);
		return;
	}
	zk->reg_busy = false;
	zk->conflict = true;
	if (owner != zk->conflict_owner) {
		zk->conflict_owner = owner;
		vbi_warn("zookeeper: %s is held by session 0x%llx, not ours "
			 "(0x%llx): a previous run of this broker not yet "
			 "expired, or another broker with id '%s'; waiting "
			 "for it to go",
			 zk->self_path, (unsigned long long)owner,
			 (unsigned long long)session_id(zk), zk->id);
	}
}

/*
 * Our node changed: while another session holds it, its deletion (or any
 * change) means try again; while we hold it, its deletion means someone
 * removed it, so create it again.
 */
static void self_watch(zhandle_t *zh, int type, int state, const char *path,
		       void *ctx)
{
	struct vbd_zk *zk = ctx;

	(void)state;
	(void)path;
	if (zk->closing || zh != zk->zh || type == ZOO_SESSION_EVENT)
		return;
	if (type == ZOO_DELETED_EVENT && zk->st.registered) {
		vbi_warn("zookeeper: our node %s was deleted: registering "
			 "again",
			 zk->self_path);
		zk->st.registered = false;
	}
	if (zk->conflict && type == ZOO_DELETED_EVENT)
		vbi_info("zookeeper: %s was released: registering",
			 zk->self_path);
	reg_start(zk);
}

static void self_done(int rc, const char *value, const void *data)
{
	struct op *o = (struct op *)data;
	struct vbd_zk *zk = o->zk;
	bool ok = live(zk, o->epoch, rc);
	int zrc;

	(void)value;
	free(o);
	if (!ok)
		return;
	if (rc == ZOK) {
		registered(zk, false);
		return;
	}
	if (rc != ZNODEEXISTS) {
		reg_failed(zk, zk->self_path, rc);
		return;
	}
	o = op_new(zk);
	if (!o) {
		reg_failed(zk, zk->self_path, ZSYSTEMERROR);
		return;
	}
	zrc = zoo_awexists(zk->zh, zk->self_path, self_watch, zk, exists_done,
			   o);
	if (zrc != ZOK) {
		free(o);
		reg_failed(zk, zk->self_path, zrc);
		return;
	}
	zk->touched = true;
}

static void parent_done(int rc, const char *value, const void *data)
{
	struct op *o = (struct op *)data;
	struct vbd_zk *zk = o->zk;
	size_t pos = o->pos;
	bool ok = live(zk, o->epoch, rc);

	(void)value;
	free(o);
	if (!ok)
		return;
	if (rc != ZOK && rc != ZNODEEXISTS) {
		memcpy(zk->scratch, zk->members_path, pos);
		zk->scratch[pos] = '\0';
		reg_failed(zk, zk->scratch, rc);
		return;
	}
	reg_next(zk, pos);
}

/*
 * The next step of the chain once the first @pos bytes of PATH/members
 * exist: create the next parent (persistent), or, at the end, our node.
 */
static void reg_next(struct vbd_zk *zk, size_t pos)
{
	size_t len = strlen(zk->members_path), end;
	struct op *o = op_new(zk);
	int rc;

	if (!o) {
		reg_failed(zk, "a node", ZSYSTEMERROR);
		return;
	}
	if (pos >= len) {
		rc = zoo_acreate(zk->zh, zk->self_path, zk->data,
				 (int)zk->data_len, &ZOO_OPEN_ACL_UNSAFE,
				 ZOO_EPHEMERAL, self_done, o);
		if (rc != ZOK) {
			free(o);
			reg_failed(zk, zk->self_path, rc);
			return;
		}
		zk->touched = true;
		return;
	}
	for (end = pos + 1; end < len && zk->members_path[end] != '/'; end++)
		;
	memcpy(zk->scratch, zk->members_path, end);
	zk->scratch[end] = '\0';
	o->pos = end;
	rc = zoo_acreate(zk->zh, zk->scratch, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0,
			 parent_done, o);
	if (rc != ZOK) {
		free(o);
		reg_failed(zk, zk->scratch, rc);
		return;
	}
	zk->touched = true;
}

/* Register unless we are, or are on our way, or cannot now. */
static void reg_start(struct vbd_zk *zk)
{
	if (!zk->zh || !zk->st.connected || zk->st.registered || zk->reg_busy)
		return;
	zk->reg_busy = true;
	reg_next(zk, 0);
}

/* ---- the session ------------------------------------------------------- */

static void on_connected(struct vbd_zk *zk)
{
	char why[200];
	int granted = zoo_recv_timeout(zk->zh);
	const char *srv = zoo_get_current_server(zk->zh);

	if (zk->st.connected)
		return;
	/* The library's complaints while it could not connect are over. */
	zklog_flush(now_ms());
	zk->st.connected = true;
	zk->st.connects++;
	zk->reinit_ms = REINIT_MIN_MS;
	zk->retry_at = 0;
	zk->retry_ms = RETRY_MIN_MS;
	/* The servers clamp the timeout to 2-20 ticks: say what was granted. */
	snprintf(why, sizeof(why),
		 "connected to %s, session 0x%llx, timeout %d ms (%u asked)",
		 srv ? srv : "zookeeper", (unsigned long long)session_id(zk),
		 granted, zk->session_ms);
	set_state(zk, true, why);
	/* Registering lists when done; a member already lists again, since
	 * a listing may have been lost with the connection. */
	if (!zk->st.registered)
		reg_start(zk);
	else
		list(zk);
}

/* The session's events (the handle's global watcher). */
static void session_watch(zhandle_t *zh, int type, int state, const char *path,
			  void *ctx)
{
	struct vbd_zk *zk = ctx;

	(void)path;
	if (type != ZOO_SESSION_EVENT || zk->closing || zh != zk->zh)
		return;
	if (state == ZOO_CONNECTED_STATE) {
		on_connected(zk);
	} else if (state == ZOO_CONNECTING_STATE ||
		   state == ZOO_ASSOCIATING_STATE) {
		if (!zk->st.connected)
			return;
		zk->st.connected = false;
		zk->st.disconnects++;
		zk->have_last = false;
		set_state(zk, false,
			  "connection to zookeeper lost, reconnecting");
	} else if (state == ZOO_EXPIRED_SESSION_STATE ||
		   state == ZOO_AUTH_FAILED_STATE) {
		bool expired = state == ZOO_EXPIRED_SESSION_STATE;
		const char *why = "zookeeper refused our authentication";

		if (zk->dead)
			return;
		zk->dead = true;
		zk->st.connected = false;
		zk->st.registered = false;
		zk->have_last = false;
		if (expired) {
			zk->st.expiries++;
			why = "zookeeper session expired: starting a new one";
		}
		set_state(zk, false, why);
	}
}

/* Take the library's socket out of our epoll set. */
static void sock_forget(struct vbd_zk *zk)
{
	if (zk->sock >= 0)
		epoll_ctl(zk->epfd, EPOLL_CTL_DEL, zk->sock, NULL);
	zk->sock = -1;
}

/* Close the handle (expired, refused): its pending completions run, with
 * ZCLOSING, inside zookeeper_close() and do nothing. */
static void session_close(struct vbd_zk *zk)
{
	if (!zk->zh)
		return;
	sock_forget(zk);
	zk->closing = true;
	zookeeper_close(zk->zh);
	zk->closing = false;
	zk->zh = NULL;
	zk->dead = false;
	zk->st.connected = false;
	zk->st.registered = false;
	zk->reg_busy = false;
	zk->conflict = false;
	zk->list_wanted = false;
	zk->retry_at = 0;
}

/* Start a session; on failure, schedule the next attempt. */
static void session_open(struct vbd_zk *zk)
{
	char esc[VBI_LOG_ESCAPE_MAX];

	zk->epoch++;
	zk->conflict_owner = 0;
	zk->zh = zookeeper_init2(zk->hosts, session_watch, (int)zk->session_ms,
				 NULL, zk, 0, zklog_line);
	if (zk->zh) {
		zk->deadline = 0; /* ask its interest now */
		return;
	}
	vbi_log_escape(esc, sizeof(esc), zk->hosts, strlen(zk->hosts));
	vbi_warn("zookeeper: cannot start a session with %s: %s; trying "
		 "again in %u ms",
		 esc, strerror(errno), zk->reinit_ms);
	zk->reinit_at = now_ms() + zk->reinit_ms;
	zk->reinit_ms = doubled(zk->reinit_ms, REINIT_MAX_MS);
}

/* Ask the library what it waits for; put its socket in our epoll set. */
static void interest(struct vbd_zk *zk)
{
	struct epoll_event ev = { 0 };
	struct timeval tv = { 0, 0 };
	int fd = -1, in = 0, rc;
	uint64_t wait;

	zk->touched = false;
	rc = zookeeper_interest(zk->zh, &fd, &in, &tv);
	if (rc == ZINVALIDSTATE) {
		zk->dead = true;
		return;
	}
	wait = (uint64_t)tv.tv_sec * 1000u +
	       ((uint64_t)tv.tv_usec + 999) / 1000;
	if (rc != ZOK) {
		/* The library dropped the connection and tries the next
		 * server itself; a pause keeps a persistent failure from
		 * becoming a busy loop. */
		vbi_debug("zookeeper: interest: %s", zerror(rc));
		if (wait < INTEREST_ERR_MS)
			wait = INTEREST_ERR_MS;
	}
	zk->deadline = now_ms() + wait;
	/* On an error the library may have closed the socket it names. */
	if (rc != ZOK)
		fd = -1;
	if (fd != zk->sock)
		sock_forget(zk);
	if (fd < 0)
		return;
	ev.events = (in & ZOOKEEPER_READ ? EPOLLIN : 0) |
		    (in & ZOOKEEPER_WRITE ? EPOLLOUT : 0);
	ev.data.fd = fd;
	/* Always MOD, falling back to ADD: a closed socket leaves the set
	 * by itself, and its successor may have the same number. */
	if (epoll_ctl(zk->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 &&
	    epoll_ctl(zk->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		vbi_err("zookeeper: cannot watch its socket: %s",
			strerror(errno));
		zk->deadline = now_ms() + INTEREST_ERR_MS;
		return;
	}
	zk->sock = fd;
}

/* What the socket is ready for, in the library's terms (never waits). */
static int sock_ready(struct vbd_zk *zk)
{
	struct epoll_event ev;
	int events = 0;

	if (zk->sock < 0 || epoll_wait(zk->epfd, &ev, 1, 0) != 1)
		return 0;
	if (ev.events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		events |= ZOOKEEPER_READ;
	if (ev.events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		events |= ZOOKEEPER_WRITE;
	return events;
}

/* ---- the API ----------------------------------------------------------- */

int vbd_zk_process(struct vbd_zk *zk)
{
	uint64_t now;
	int events, rc, state;

	if (!zk)
		return VB_EINVAL;
	now = now_ms();
	if (zk->zh) {
		events = sock_ready(zk);
		if (events || now >= zk->deadline) {
			rc = zookeeper_process(zk->zh, events);
			if (rc != ZOK && rc != ZNOTHING)
				vbi_debug("zookeeper: process: %s", zerror(rc));
			zk->touched = true;
		}
		state = zoo_state(zk->zh);
		if (state == ZOO_EXPIRED_SESSION_STATE ||
		    state == ZOO_AUTH_FAILED_STATE)
			zk->dead = true;
	}
	if (zk->zh && zk->retry_at && now >= zk->retry_at) {
		zk->retry_at = 0;
		reg_start(zk);
		if (zk->list_wanted)
			list(zk);
	}
	if (zk->zh && zk->touched && !zk->dead)
		interest(zk);
	if (zk->dead) {
		if (zk->st.connected) {
			/* The library ended the session without an event. */
			zk->st.connected = false;
			set_state(zk, false, "zookeeper session ended");
		}
		session_close(zk);
		vbi_info("zookeeper: new session in %u ms", zk->reinit_ms);
		zk->reinit_at = now_ms() + zk->reinit_ms;
		zk->reinit_ms = doubled(zk->reinit_ms, REINIT_MAX_MS);
	}
	if (!zk->zh && now_ms() >= zk->reinit_at) {
		session_open(zk);
		if (zk->zh)
			interest(zk);
	}
	return VB_OK;
}

int vbd_zk_fd(struct vbd_zk *zk)
{
	return zk ? zk->epfd : -1;
}

int vbd_zk_timeout_ms(struct vbd_zk *zk)
{
	uint64_t now = now_ms(), t;

	if (!zk)
		return 0;
	t = zk->zh ? zk->deadline : zk->reinit_at;
	if (zk->zh && zk->retry_at && zk->retry_at < t)
		t = zk->retry_at;
	if (t <= now)
		return 0;
	return t - now > INT_MAX ? INT_MAX : (int)(t - now);
}

void vbd_zk_stats(const struct vbd_zk *zk, struct vbd_zk_stats *st)
{
	if (!zk || !st)
		return;
	*st = zk->st;
}

int vbd_zk_create(const char *hosts, const char *path, unsigned session_ms,
		  const char *id, const void *data, size_t data_len,
		  const struct vbd_zk_cbs *cbs, void *arg, struct vbd_zk **out)
{
	struct vbd_zk *zk;
	const char *why;
	size_t plen;
	int rc = VB_ENOMEM;

	if (!hosts || !*hosts || !path || !id || (!data && data_len) || !out) {
		vbi_err("zookeeper: missing hosts, path, id or data");
		return VB_EINVAL;
	}
	if (strchr(hosts, '/')) {
		vbi_err("zookeeper: the host list must not hold a path");
		return VB_EINVAL;
	}
	plen = strlen(path);
	why = vbd_zk_path_check(path, plen);
	if (why) {
		vbi_err("zookeeper: %s", why);
		return VB_EINVAL;
	}
	if (!vbd_zk_id_valid(id)) {
		vbi_err("zookeeper: a broker id must be 1-%d of "
			"[A-Za-z0-9_.-], and not \".\" or \"..\"",
			VBD_ZK_ID_MAX);
		return VB_EINVAL;
	}
	if (data_len > VBD_ZK_DATA_MAX) {
		vbi_err("zookeeper: %zu bytes of member data, over %d",
			data_len, VBD_ZK_DATA_MAX);
		return VB_EINVAL;
	}
	if (session_ms == 0 || session_ms > INT_MAX) {
		vbi_err("zookeeper: a session timeout of %u ms", session_ms);
		return VB_EINVAL;
	}
	zk = calloc(1, sizeof(*zk));
	if (!zk)
		return VB_ENOMEM;
	zk->epfd = -1;
	zk->sock = -1;
	zk->session_ms = session_ms;
	zk->reinit_ms = REINIT_MIN_MS;
	zk->retry_ms = RETRY_MIN_MS;
	if (cbs)
		zk->cbs = *cbs;
	zk->arg = arg;
	strcpy(zk->id, id);
	zk->hosts = strdup(hosts);
	zk->data = malloc(data_len ? data_len : 1);
	zk->members_path = malloc(plen + sizeof("/members"));
	zk->self_path = malloc(plen + sizeof("/members/") + VBD_ZK_ID_MAX);
	zk->scratch = malloc(plen + sizeof("/members/") + VBD_ZK_ID_MAX + 1);
	if (!zk->hosts || !zk->data || !zk->members_path || !zk->self_path ||
	    !zk->scratch)
		goto out_destroy;
	if (data_len)
		memcpy(zk->data, data, data_len);
	zk->data_len = data_len;
	sprintf(zk->members_path, "%s/members", path);
	sprintf(zk->self_path, "%s/%s", zk->members_path, id);
	zk->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (zk->epfd < 0) {
		vbi_err("zookeeper: epoll_create1: %s", strerror(errno));
		rc = VB_ESYS;
		goto out_destroy;
	}
	zklog_setup();
	vbi_info("zookeeper: joining %s as %s, session timeout %u ms", path, id,
		 session_ms);
	session_open(zk);
	if (zk->zh)
		interest(zk);
	*out = zk;
	return VB_OK;
out_destroy:
	vbd_zk_destroy(zk);
	return rc;
}

void vbd_zk_destroy(struct vbd_zk *zk)
{
	if (!zk)
		return;
	if (zk->zh) {
		sock_forget(zk);
		zk->closing = true;
		zookeeper_close(zk->zh);
		zk->zh = NULL;
	}
	if (zk->epfd >= 0)
		close(zk->epfd);
	free(zk->last);
	free(zk->scratch);
	free(zk->self_path);
	free(zk->members_path);
	free(zk->data);
	free(zk->hosts);
	free(zk);
}
