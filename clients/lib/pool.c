/*
 * pool.c - a client's server pool (see pool.h).
 *
 * Decisions a reader must know.
 *
 * Order.  The user's list is tried in the order written unless the caller
 * asks for a shuffle (VB_OPT_RANDOMIZE): "the first reachable one is used"
 * is what vb_connect() promises, and a user who wants clients spread over
 * the brokers says so.  Discovered servers go after the user's, and a
 * failure moves to the next server whoever it is: round robin, none
 * skipped, so a broker that died is tried again only after every other.
 *
 * Passes.  The pool counts failures since the last open; when they reach
 * the number of servers, every one has had its chance and vbi_pool_failed()
 * says so: that is where the caller's backoff goes (once per pass, not per
 * server, so that the loss of one broker moves to the next at once).
 *
 * Learned URLs come from the wire: each is parsed as any URL and dropped
 * if bad, never trusted for a length or a count.  A merge parses them
 * twice (once to remove, once to add) rather than keep a copy: at most
 * 64 short strings, on the rare occasion a cluster changes.
 */
#include "clients/lib/pool.h"
#include "core/url.h"
#include "transport/transport.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The longest element of a list: the longest URL the grammar takes
 * ("scheme://[host]:port"), and then some. */
#define ELEM_MAX 512

struct vbi_pool {
	size_t n; /* servers in srv[] */
	size_t cur; /* the current one, < n */
	size_t failed; /* failures since the last open or completed pass */
	struct vbi_srv srv[VBI_POOL_MAX]; /* in the order they are tried */
};

__attribute__((format(printf, 3, 4))) static int bad(char *err, size_t errlen,
						     const char *fmt, ...)
{
	va_list ap;

	if (errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return VB_EINVAL;
}

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

/* Fisher-Yates over srv[from .. to - 1]. */
static void shuffle(struct vbi_pool *p, size_t from, size_t to, uint64_t seed)
{
	uint64_t s = seed | 1;
	struct vbi_srv t;
	size_t i, j;

	for (i = to; i > from + 1; i--) {
		j = from + (size_t)(rng_next(&s) % (i - from));
		t = p->srv[i - 1];
		p->srv[i - 1] = p->srv[j];
		p->srv[j] = t;
	}
}

bool vbi_pool_same(const struct vb_url *a, const struct vb_url *b)
{
	return strcmp(a->scheme, b->scheme) == 0 &&
	       strcmp(a->port, b->port) == 0 &&
	       strcasecmp(a->host, b->host) == 0;
}

static bool has(const struct vbi_pool *p, const struct vb_url *u)
{
	for (size_t i = 0; i < p->n; i++)
		if (vbi_pool_same(&p->srv[i].url, u))
			return true;
	return false;
}

static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* Element @k of a list (@s, @len bytes, spaces around it dropped) parsed
 * into @u; @many: the list has more than one, so the reason says which. */
static int parse_elem(const char *s, size_t len, size_t k, bool many,
		      struct vb_url *u, char *err, size_t errlen)
{
	char buf[ELEM_MAX], why[160];
	int rc;

	while (len && is_space(*s)) {
		s++;
		len--;
	}
	while (len && is_space(s[len - 1]))
		len--;
	if (len == 0)
		return many ? bad(err, errlen,
				  "server %zu of the list is empty", k + 1) :
			      bad(err, errlen, "empty url");
	if (len >= sizeof(buf))
		return bad(err, errlen, "server %zu of the list is too long",
			   k + 1);
	memcpy(buf, s, len);
	buf[len] = '\0';
	rc = vbi_url_parse(buf, u, why, sizeof(why));
	if (rc == VB_OK)
		rc = vbi_transport_check(u->scheme, why, sizeof(why));
	if (rc == VB_OK)
		return VB_OK;
	if (!many)
		return bad(err, errlen, "%s", why);
	return bad(err, errlen, "server %zu of the list (\"%s\"): %s", k + 1,
		   buf, why);
}

int vbi_pool_create(const char *list, unsigned flags, uint64_t seed,
		    struct vbi_pool **out, char *err, size_t errlen)
{
	struct vbi_pool *p;
	const char *s, *comma;
	struct vb_url u;
	bool many;
	size_t k;
	int rc;

	if (!out)
		return bad(err, errlen, "no place for the pool");
	if (!list || !*list)
		return bad(err, errlen, "empty url");
	p = calloc(1, sizeof(*p));
	if (!p)
		return VB_ENOMEM;
	many = strchr(list, ',') != NULL;
	for (s = list, k = 0;; s = comma + 1, k++) {
		comma = strchr(s, ',');
		rc = parse_elem(s, comma ? (size_t)(comma - s) : strlen(s), k,
				many, &u, err, errlen);
		if (rc)
			goto out_free;
		if (!has(p, &u)) {
			if (p->n == VBI_POOL_MAX) {
				rc = bad(err, errlen,
					 "more than %d servers in the list",
					 VBI_POOL_MAX);
				goto out_free;
			}
			p->srv[p->n++] = (struct vbi_srv){ .url = u };
		}
		if (!comma)
			break;
	}
	if (flags & VBI_POOL_SHUFFLE)
		shuffle(p, 0, p->n, seed);
	*out = p;
	return VB_OK;
out_free:
	free(p);
	return rc;
}

void vbi_pool_destroy(struct vbi_pool *p)
{
	free(p);
}

size_t vbi_pool_count(const struct vbi_pool *p)
{
	return p ? p->n : 0;
}

const struct vbi_srv *vbi_pool_get(const struct vbi_pool *p, size_t i)
{
	return p && i < p->n ? &p->srv[i] : NULL;
}

const struct vbi_srv *vbi_pool_current(const struct vbi_pool *p)
{
	return p && p->n ? &p->srv[p->cur] : NULL;
}

bool vbi_pool_failed(struct vbi_pool *p, int err, uint64_t now_ns)
{
	struct vbi_srv *s = &p->srv[p->cur];

	s->attempts++;
	s->last_fail_ns = now_ns;
	s->last_err = err;
	p->cur = (p->cur + 1) % p->n;
	if (++p->failed < p->n)
		return false;
	p->failed = 0;
	return true;
}

void vbi_pool_opened(struct vbi_pool *p)
{
	p->srv[p->cur].attempts = 0;
	p->failed = 0;
}

/* An advertised URL, @s, into @u if it is one we may use. */
static bool advertised(const char *s, const char *default_scheme,
		       const char *only_scheme, struct vb_url *u)
{
	if (!s || vbi_url_parse(s, u, NULL, 0) != VB_OK)
		return false;
	if (!u->has_scheme && default_scheme) {
		if (strlen(default_scheme) >= sizeof(u->scheme))
			return false;
		strcpy(u->scheme, default_scheme);
	}
	if (vbi_transport_check(u->scheme, NULL, 0) != VB_OK)
		return false;
	return !only_scheme || strcmp(u->scheme, only_scheme) == 0;
}

/* Whether @urls names @want. */
static bool names(const char *const *urls, size_t n, const char *def,
		  const char *only, const struct vb_url *want)
{
	struct vb_url u;

	for (size_t i = 0; i < n; i++)
		if (advertised(urls[i], def, only, &u) &&
		    vbi_pool_same(&u, want))
			return true;
	return false;
}

static void remove_at(struct vbi_pool *p, size_t i)
{
	memmove(&p->srv[i], &p->srv[i + 1], (p->n - i - 1) * sizeof(p->srv[0]));
	p->n--;
	if (i < p->cur)
		p->cur--;
}

void vbi_pool_merge(struct vbi_pool *p, const char *const *urls, size_t n,
		    const char *default_scheme, const char *only_scheme,
		    unsigned flags, uint64_t seed,
		    struct vbi_pool_merge_result *r)
{
	struct vbi_pool_merge_result res = { 0 };
	struct vb_url u;
	size_t i, first_new;

	if (!urls)
		n = 0;
	for (i = p->n; i-- > 0;) {
		if (!p->srv[i].discovered || i == p->cur ||
		    names(urls, n, default_scheme, only_scheme, &p->srv[i].url))
			continue;
		remove_at(p, i);
		res.removed++;
	}
	first_new = p->n;
	for (i = 0; i < n; i++) {
		if (!advertised(urls[i], default_scheme, only_scheme, &u)) {
			res.ignored++;
			continue;
		}
		if (has(p, &u))
			continue;
		if (p->n == VBI_POOL_MAX) {
			res.ignored++;
			continue;
		}
		p->srv[p->n++] =
			(struct vbi_srv){ .url = u, .discovered = true };
		res.added++;
	}
	if (flags & VBI_POOL_SHUFFLE)
		shuffle(p, first_new, p->n, seed);
	if (r)
		*r = res;
}

int vbi_pool_url(const struct vb_url *u, char *buf, size_t len)
{
	int w = snprintf(buf, len,
			 strchr(u->host, ':') ? "%s://[%s]:%s" : "%s://%s:%s",
			 u->scheme, u->host, u->port);

	return w < 0 || (size_t)w >= len ? VB_ENOSPC : VB_OK;
}
