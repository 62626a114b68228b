/* Unit tests for direct mode's grants (proto/grant.c) and the codec's
 * checks of the direct-mode messages (proto/codec.c). */
#include "core/subject.h"
#include "proto/codec.h"
#include "proto/grant.h"

#include <verbus/verbus.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

static const uint8_t key1[VBI_DIRECT_KEY_LEN] = { 1, 2, 3, 4, 5 };
static const uint8_t key2[VBI_DIRECT_KEY_LEN] = { 1, 2, 3, 4, 6 };
static const uint32_t sids[] = { 7, 9, 0x80000001u };

static struct vbi_grant subject_grant(void)
{
	struct vbi_grant g = {
		.pub_id = 11,
		.sub_id = 22,
		.expires_ms = 1764800000000ull,
		.subject = "orders.eu.paris",
		.queue = "",
		.sids = sids,
		.nsids = 3,
	};

	memset(g.nonce, 0x5a, sizeof(g.nonce));
	return g;
}

/* Every field is covered: changing any one breaks the MAC. */
static void test_grant_covers_every_field(void **state)
{
	struct vbi_grant g = subject_grant(), h;
	uint8_t mac[VBI_GRANT_MAC_LEN], bad[VBI_GRANT_MAC_LEN];
	uint32_t other[] = { 7, 9, 0x80000002u };

	(void)state;
	assert_int_equal(vbi_grant_mac(key1, &g, mac), VB_OK);
	assert_true(vbi_grant_verify(key1, &g, mac, sizeof(mac)));
	assert_false(vbi_grant_verify(key2, &g, mac, sizeof(mac)));
	assert_false(vbi_grant_verify(key1, &g, mac, sizeof(mac) - 1));
	assert_false(vbi_grant_verify(key1, &g, NULL, sizeof(mac)));
	memcpy(bad, mac, sizeof(bad));
	bad[31] ^= 1;
	assert_false(vbi_grant_verify(key1, &g, bad, sizeof(bad)));

	h = g, h.pub_id++;
	assert_false(vbi_grant_verify(key1, &h, mac, sizeof(mac)));
	h = g, h.sub_id++;
	assert_false(vbi_grant_verify(key1, &h, mac, sizeof(mac)));
	h = g, h.expires_ms++;
	assert_false(vbi_grant_verify(key1, &h, mac, sizeof(mac)));
	h = g, h.nonce[15] ^= 1;
	assert_false(vbi_grant_verify(key1, &h, mac, sizeof(mac)));
	h = g, h.subject = "orders.eu.pariS";
	assert_false(vbi_grant_verify(key1, &h, mac, sizeof(mac)));
	h = g, h.queue = "q";
	assert_false(vbi_grant_verify(key1, &h, mac, sizeof(mac)));
	h = g, h.nsids = 2;
	assert_false(vbi_grant_verify(key1, &h, mac, sizeof(mac)));
	h = g, h.sids = other;
	assert_false(vbi_grant_verify(key1, &h, mac, sizeof(mac)));
	/* NULL strings are "": the same grant. */
	h = g, h.queue = NULL;
	assert_true(vbi_grant_verify(key1, &h, mac, sizeof(mac)));
}

/* A connect grant (no subject) is not a subject grant with the subject
 * moved into the queue, nor the other way round: the layout is
 * length-prefixed and typed. */
static void test_grant_no_confusion(void **state)
{
	struct vbi_grant c = subject_grant(), q;
	uint8_t mac[VBI_GRANT_MAC_LEN];

	(void)state;
	c.subject = "";
	c.queue = "";
	c.nsids = 0;
	assert_int_equal(vbi_grant_mac(key1, &c, mac), VB_OK);
	q = c;
	q.subject = NULL;
	assert_true(vbi_grant_verify(key1, &q, mac, sizeof(mac)));

	q = subject_grant();
	q.subject = "a.b";
	q.queue = "c";
	assert_int_equal(vbi_grant_mac(key1, &q, mac), VB_OK);
	q.subject = "a.bc";
	q.queue = "";
	assert_false(vbi_grant_verify(key1, &q, mac, sizeof(mac)));
}

static void test_grant_bounds(void **state)
{
	struct vbi_grant g = subject_grant();
	uint8_t mac[VBI_GRANT_MAC_LEN];
	static uint32_t many[VBI_GRANT_SIDS_MAX + 1];
	static char subject[VBI_SUBJECT_MAX + 2];

	(void)state;
	for (size_t i = 0; i < VBI_GRANT_SIDS_MAX + 1; i++)
		many[i] = (uint32_t)i + 1;
	g.sids = many;
	g.nsids = VBI_GRANT_SIDS_MAX;
	assert_int_equal(vbi_grant_mac(key1, &g, mac), VB_OK);
	g.nsids = VBI_GRANT_SIDS_MAX + 1;
	assert_int_equal(vbi_grant_mac(key1, &g, mac), VB_EINVAL);
	assert_false(vbi_grant_verify(key1, &g, mac, sizeof(mac)));
	g = subject_grant();
	memset(subject, 'a', VBI_SUBJECT_MAX);
	g.subject = subject;
	assert_int_equal(vbi_grant_mac(key1, &g, mac), VB_OK);
	subject[VBI_SUBJECT_MAX] = 'a';
	assert_int_equal(vbi_grant_mac(key1, &g, mac), VB_EINVAL);
	g = subject_grant();
	g.nsids = 1;
	g.sids = NULL;
	assert_int_equal(vbi_grant_mac(key1, &g, mac), VB_EINVAL);
}

/* A DirectGrant on the wire, packed in a Control or as a Hello's
 * credentials, round-trips into the same MAC check. */
static void fill_msg(Verbus__DirectGrant *m, const struct vbi_grant *g,
		     uint8_t *mac)
{
	verbus__direct_grant__init(m);
	m->pub_id = g->pub_id;
	m->sub_id = g->sub_id;
	m->expires_ms = g->expires_ms;
	m->subject = (char *)(g->subject ? g->subject : "");
	m->queue = (char *)(g->queue ? g->queue : "");
	m->sids = (uint32_t *)g->sids;
	m->n_sids = g->nsids;
	m->nonce.data = (uint8_t *)g->nonce;
	m->nonce.len = VBI_GRANT_NONCE_LEN;
	m->mac.data = mac;
	m->mac.len = VBI_GRANT_MAC_LEN;
}

static void test_grant_wire(void **state)
{
	struct vbi_grant g = subject_grant(), back;
	uint8_t mac[VBI_GRANT_MAC_LEN], buf[VBI_CTRL_MAX];
	Verbus__Control c = VERBUS__CONTROL__INIT, *out = NULL;
	Verbus__DirectGrant m, *cred = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(vbi_grant_mac(key1, &g, mac), VB_OK);
	fill_msg(&m, &g, mac);
	c.body_case = VERBUS__CONTROL__BODY_DIRECT_GRANT;
	c.direct_grant = &m;
	assert_int_equal(vbi_codec_encode(&c, buf, sizeof(buf), &len), VB_OK);
	assert_int_equal(vbi_codec_decode(buf, len, &out), VB_OK);
	assert_int_equal(vbi_grant_from_msg(&back, out->direct_grant, NULL),
			 VB_OK);
	assert_true(vbi_grant_verify(key1, &back, out->direct_grant->mac.data,
				     out->direct_grant->mac.len));
	/* The subject given instead of the message's: a DirectPath's. */
	assert_int_equal(vbi_grant_from_msg(&back, out->direct_grant, "x.y"),
			 VB_OK);
	assert_false(vbi_grant_verify(key1, &back, out->direct_grant->mac.data,
				      out->direct_grant->mac.len));
	vbi_codec_free(out);

	/* As a control message a grant needs a subject. */
	m.subject = (char *)"";
	assert_int_equal(vbi_codec_encode(&c, buf, sizeof(buf), &len), VB_OK);
	assert_int_equal(vbi_codec_decode(buf, len, &out), VB_EPROTO);

	/* As credentials, a connect grant: no subject. */
	len = verbus__direct_grant__pack(&m, buf);
	assert_int_equal(vbi_codec_grant_decode(buf, len, &cred), VB_OK);
	assert_int_equal(cred->pub_id, 11);
	vbi_codec_grant_free(cred);
	m.subject = (char *)"a.b";
	len = verbus__direct_grant__pack(&m, buf);
	assert_int_equal(vbi_codec_grant_decode(buf, len, &cred), VB_EPROTO);
	assert_int_equal(vbi_codec_grant_decode(buf, 0, &cred), VB_EMSGSIZE);
	assert_int_equal(vbi_codec_grant_decode(buf, VBI_CRED_MAX + 1, &cred),
			 VB_EMSGSIZE);
	assert_int_equal(vbi_codec_grant_decode("\xff\xff", 2, &cred),
			 VB_EPROTO);
}

/* Encode @c, decode it: the codec's verdict. */
static int round_trip(const Verbus__Control *c)
{
	uint8_t buf[VBI_CTRL_MAX];
	Verbus__Control *out = NULL;
	size_t len = 0;
	int rc;

	assert_int_equal(vbi_codec_encode(c, buf, sizeof(buf), &len), VB_OK);
	rc = vbi_codec_decode(buf, len, &out);
	vbi_codec_free(out);
	return rc;
}

static void test_codec_direct_checks(void **state)
{
	Verbus__Control c = VERBUS__CONTROL__INIT;
	Verbus__DirectListen dl = VERBUS__DIRECT_LISTEN__INIT;
	Verbus__DirectKey dk = VERBUS__DIRECT_KEY__INIT;
	Verbus__DirectQuery dq = VERBUS__DIRECT_QUERY__INIT;
	Verbus__DirectPaths dp = VERBUS__DIRECT_PATHS__INIT;
	Verbus__DirectPath path = VERBUS__DIRECT_PATH__INIT, *paths[1];
	Verbus__DirectGrant conn, sub;
	Verbus__DirectSwitch sw = VERBUS__DIRECT_SWITCH__INIT;
	Verbus__DirectFence fe = VERBUS__DIRECT_FENCE__INIT;
	Verbus__DirectRevoke rv = VERBUS__DIRECT_REVOKE__INIT;
	Verbus__DirectStale st = VERBUS__DIRECT_STALE__INIT;
	struct vbi_grant g = subject_grant();
	uint8_t mac[VBI_GRANT_MAC_LEN] = { 0 }, key[VBI_DIRECT_KEY_LEN] = { 0 };
	char *subjects[1];
	uint32_t zero = 0;

	(void)state;
	c.body_case = VERBUS__CONTROL__BODY_DIRECT_LISTEN;
	c.direct_listen = &dl;
	dl.url = (char *)"";
	assert_int_equal(round_trip(&c), VB_EPROTO);
	dl.url = (char *)"rdma://10.0.0.3:40123";
	assert_int_equal(round_trip(&c), VB_OK);

	c.body_case = VERBUS__CONTROL__BODY_DIRECT_KEY;
	c.direct_key = &dk;
	dk.conn_id = 5;
	dk.key.data = key;
	dk.key.len = 31;
	assert_int_equal(round_trip(&c), VB_EPROTO);
	dk.key.len = 32;
	assert_int_equal(round_trip(&c), VB_OK);
	dk.conn_id = 0;
	assert_int_equal(round_trip(&c), VB_EPROTO);

	c.body_case = VERBUS__CONTROL__BODY_DIRECT_QUERY;
	c.direct_query = &dq;
	dq.subject = (char *)"a.b";
	assert_int_equal(round_trip(&c), VB_EPROTO); /* id 0 */
	dq.id = 1;
	assert_int_equal(round_trip(&c), VB_OK);
	dq.subject = (char *)"";
	assert_int_equal(round_trip(&c), VB_EPROTO);

	/* Paths: each grant checked as a grant. */
	g.subject = "";
	fill_msg(&conn, &g, mac);
	fill_msg(&sub, &g, mac);
	c.body_case = VERBUS__CONTROL__BODY_DIRECT_PATHS;
	c.direct_paths = &dp;
	dp.id = 1;
	dp.pub_id = 11;
	dp.subject = (char *)"a.b";
	assert_int_equal(round_trip(&c), VB_OK); /* no paths */
	paths[0] = &path;
	dp.paths = paths;
	dp.n_paths = 1;
	path.sub_id = 22;
	path.url = (char *)"rdma://10.0.0.3:40123";
	path.connect = &conn;
	path.grant = &sub;
	assert_int_equal(round_trip(&c), VB_OK);
	path.grant = NULL;
	assert_int_equal(round_trip(&c), VB_EPROTO);
	path.grant = &sub;
	sub.nonce.len = 15;
	assert_int_equal(round_trip(&c), VB_EPROTO);
	sub.nonce.len = 16;
	sub.sids = &zero;
	sub.n_sids = 1;
	assert_int_equal(round_trip(&c), VB_EPROTO);
	sub.n_sids = 0;
	path.url = (char *)"";
	assert_int_equal(round_trip(&c), VB_EPROTO);
	path.url = (char *)"rdma://10.0.0.3:40123";
	conn.pub_id = 0;
	assert_int_equal(round_trip(&c), VB_EPROTO);
	conn.pub_id = 11;
	dp.pub_id = 0;
	assert_int_equal(round_trip(&c), VB_EPROTO);

	c.body_case = VERBUS__CONTROL__BODY_DIRECT_STALE;
	c.direct_stale = &st;
	assert_int_equal(round_trip(&c), VB_OK); /* none listed: all */
	subjects[0] = (char *)"a.b";
	st.subjects = subjects;
	st.n_subjects = 1;
	assert_int_equal(round_trip(&c), VB_OK);

	c.body_case = VERBUS__CONTROL__BODY_DIRECT_SWITCH;
	c.direct_switch = &sw;
	assert_int_equal(round_trip(&c), VB_EPROTO);
	sw.sub_id = 3;
	assert_int_equal(round_trip(&c), VB_OK);
	c.body_case = VERBUS__CONTROL__BODY_DIRECT_FENCE;
	c.direct_fence = &fe;
	assert_int_equal(round_trip(&c), VB_EPROTO);
	fe.pub_id = 3;
	assert_int_equal(round_trip(&c), VB_OK);
	c.body_case = VERBUS__CONTROL__BODY_DIRECT_REVOKE;
	c.direct_revoke = &rv;
	assert_int_equal(round_trip(&c), VB_EPROTO);
	rv.pub_id = 3;
	assert_int_equal(round_trip(&c), VB_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grant_covers_every_field),
		cmocka_unit_test(test_grant_no_confusion),
		cmocka_unit_test(test_grant_bounds),
		cmocka_unit_test(test_grant_wire),
		cmocka_unit_test(test_codec_direct_checks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
