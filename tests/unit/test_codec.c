/* Unit tests for the control-message codec (proto/codec.c). */
#include "core/subject.h"
#include "proto/codec.h"

#include <verbus/verbus.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

static size_t pack_hello(uint8_t *buf, size_t cap, const char *name,
			 uint32_t ring_size)
{
	Verbus__Control c = VERBUS__CONTROL__INIT;
	Verbus__Hello h = VERBUS__HELLO__INIT;
	Verbus__RingInfo r = VERBUS__RING_INFO__INIT;
	size_t len = 0;

	r.addr = 0x7f0000001000ull;
	r.rkey = 0xabcd;
	r.size = ring_size;
	h.version = VBI_PROTO_VERSION;
	h.name = (char *)name;
	h.ring = &r;
	h.max_msg_size = 65536;
	h.credits = 16;
	c.body_case = VERBUS__CONTROL__BODY_HELLO;
	c.hello = &h;
	assert_int_equal(vbi_codec_encode(&c, buf, cap, &len), VB_OK);
	return len;
}

static void test_codec_hello_round_trip(void **state)
{
	uint8_t buf[VBI_CTRL_MAX];
	Verbus__Control *m = NULL;
	size_t len;

	(void)state;
	len = pack_hello(buf, sizeof(buf), "client-1", 1u << 20);
	assert_int_equal(vbi_codec_decode(buf, len, &m), VB_OK);
	assert_int_equal(m->body_case, VERBUS__CONTROL__BODY_HELLO);
	assert_string_equal(m->hello->name, "client-1");
	assert_int_equal(m->hello->ring->rkey, 0xabcd);
	assert_int_equal(m->hello->ring->size, 1u << 20);
	assert_true(m->hello->ring->addr == 0x7f0000001000ull);
	assert_string_equal(vbi_codec_kind_name(m), "hello");
	vbi_codec_free(m);
}

static void test_codec_welcome_and_error_round_trip(void **state)
{
	Verbus__Control c = VERBUS__CONTROL__INIT, *m = NULL;
	Verbus__Welcome w = VERBUS__WELCOME__INIT;
	Verbus__Error e = VERBUS__ERROR__INIT;
	Verbus__RingInfo r = VERBUS__RING_INFO__INIT;
	uint8_t buf[VBI_CTRL_MAX];
	size_t len;

	(void)state;
	r.addr = 4096;
	r.rkey = 7;
	r.size = 4096;
	w.version = VBI_PROTO_VERSION;
	w.session_id = 42;
	w.ring = &r;
	w.credits = 16;
	w.max_msg_size = 1024;
	c.body_case = VERBUS__CONTROL__BODY_WELCOME;
	c.welcome = &w;
	assert_int_equal(vbi_codec_encode(&c, buf, sizeof(buf), &len), VB_OK);
	assert_int_equal(vbi_codec_decode(buf, len, &m), VB_OK);
	assert_true(m->welcome->session_id == 42);
	assert_int_equal(m->welcome->credits, 16);
	assert_string_equal(m->welcome->server_version, ""); /* unsaid */
	vbi_codec_free(m);

	/* The server's version: up to VBI_VERSION_MAX bytes. */
	w.server_version = (char *)"0.1.0";
	assert_int_equal(vbi_codec_encode(&c, buf, sizeof(buf), &len), VB_OK);
	assert_int_equal(vbi_codec_decode(buf, len, &m), VB_OK);
	assert_string_equal(m->welcome->server_version, "0.1.0");
	vbi_codec_free(m);
	w.server_version = (char *)"0123456789abcdef0123456789abcdef0";
	assert_int_equal(strlen(w.server_version), VBI_VERSION_MAX + 1);
	assert_int_equal(vbi_codec_encode(&c, buf, sizeof(buf), &len), VB_OK);
	assert_int_equal(vbi_codec_decode(buf, len, &m), VB_EPROTO);
	w.server_version = (char *)"";

	e.code = (uint32_t)-VB_EVERSION;
	e.reason = (char *)"protocol version mismatch";
	c.body_case = VERBUS__CONTROL__BODY_ERROR;
	c.error = &e;
	assert_int_equal(vbi_codec_encode(&c, buf, sizeof(buf), &len), VB_OK);
	assert_int_equal(vbi_codec_decode(buf, len, &m), VB_OK);
	assert_int_equal(-(int)m->error->code, VB_EVERSION);
	assert_string_equal(vbi_codec_kind_name(m), "error");
	vbi_codec_free(m);
}

static void test_codec_credit_round_trip(void **state)
{
	Verbus__Control c = VERBUS__CONTROL__INIT, *m = NULL;
	Verbus__Credit cr = VERBUS__CREDIT__INIT;
	uint8_t buf[VBI_CTRL_MAX];
	size_t len;

	(void)state;
	cr.recvs = 0xfffffff0u;
	cr.freed = 7;
	c.body_case = VERBUS__CONTROL__BODY_CREDIT;
	c.credit = &cr;
	assert_int_equal(vbi_codec_encode(&c, buf, sizeof(buf), &len), VB_OK);
	assert_int_equal(vbi_codec_decode(buf, len, &m), VB_OK);
	assert_int_equal(m->credit->recvs, 0xfffffff0u);
	assert_int_equal(m->credit->freed, 7);
	assert_string_equal(vbi_codec_kind_name(m), "credit");
	vbi_codec_free(m);
}

static void test_codec_rejects_bad_lengths(void **state)
{
	uint8_t buf[VBI_CTRL_MAX + 1] = { 0 };
	Verbus__Control *m = (Verbus__Control *)0x1;

	(void)state;
	assert_int_equal(vbi_codec_decode(buf, 0, &m), VB_EMSGSIZE);
	assert_int_equal(vbi_codec_decode(NULL, 4, &m), VB_EMSGSIZE);
	assert_int_equal(vbi_codec_decode(buf, sizeof(buf), &m), VB_EMSGSIZE);
	/* Output untouched on error. */
	assert_ptr_equal(m, (Verbus__Control *)0x1);
}

static void test_codec_rejects_truncated(void **state)
{
	uint8_t buf[VBI_CTRL_MAX];
	Verbus__Control *m = NULL;
	size_t len, cut;

	(void)state;
	len = pack_hello(buf, sizeof(buf), "a-client-with-a-name", 4096);
	/* Every strict prefix is either garbage or lacks required fields. */
	for (cut = 1; cut < len; cut++) {
		int rc = vbi_codec_decode(buf, cut, &m);

		assert_int_equal(rc, VB_EPROTO);
	}
}

static void test_codec_rejects_garbage(void **state)
{
	uint8_t buf[256];
	Verbus__Control *m = NULL;
	uint32_t x = 12345;
	size_t i, n, rejected = 0;

	(void)state;
	/* Deterministic pseudo-random bytes: nothing may crash, and none of it
	 * can look like a complete, valid Hello/Welcome/Error. */
	for (n = 0; n < 2000; n++) {
		for (i = 0; i < sizeof(buf); i++) {
			x = x * 1103515245u + 12345u;
			buf[i] = (uint8_t)(x >> 16);
		}
		if (vbi_codec_decode(buf, 1 + n % sizeof(buf), &m) != VB_OK)
			rejected++;
		else
			vbi_codec_free(m);
	}
	assert_int_equal(rejected, 2000);
}

static void test_codec_rejects_missing_fields(void **state)
{
	Verbus__Control c = VERBUS__CONTROL__INIT, *m = NULL;
	Verbus__Hello h = VERBUS__HELLO__INIT;
	Verbus__RingInfo r = VERBUS__RING_INFO__INIT;
	uint8_t buf[VBI_CTRL_MAX];
	size_t len;

	(void)state;
	c.body_case = VERBUS__CONTROL__BODY_HELLO;
	c.hello = &h;
	h.version = 1;
	h.name = (char *)"x";
	h.max_msg_size = 100;
	h.credits = 4;
	/* No ring at all. */
	assert_int_equal(vbi_codec_encode(&c, buf, sizeof(buf), &len), VB_OK);
	assert_int_equal(vbi_codec_decode(buf, len, &m), VB_EPROTO);
	/* A ring whose size is not a power of two. */
	r.addr = 4096;
	r.size = 3000;
	h.ring = &r;
	assert_int_equal(vbi_codec_encode(&c, buf, sizeof(buf), &len), VB_OK);
	assert_int_equal(vbi_codec_decode(buf, len, &m), VB_EPROTO);
	/* A name over VBI_NAME_MAX. */
	r.size = 4096;
	h.name = (char *)"0123456789012345678901234567890123456789"
			 "0123456789012345678901234567890123456789";
	assert_int_equal(vbi_codec_encode(&c, buf, sizeof(buf), &len), VB_OK);
	assert_int_equal(vbi_codec_decode(buf, len, &m), VB_EPROTO);
	/* No credits. */
	h.name = (char *)"x";
	h.credits = 0;
	assert_int_equal(vbi_codec_encode(&c, buf, sizeof(buf), &len), VB_OK);
	assert_int_equal(vbi_codec_decode(buf, len, &m), VB_EPROTO);
	/* And with them, the same Hello is valid: the cases above failed for
	 * the reason they name. */
	h.credits = 4;
	assert_int_equal(vbi_codec_encode(&c, buf, sizeof(buf), &len), VB_OK);
	assert_int_equal(vbi_codec_decode(buf, len, &m), VB_OK);
	vbi_codec_free(m);
	/* An empty Control. */
	buf[0] = 0;
	assert_int_equal(vbi_codec_decode(buf, 1, &m), VB_EPROTO);
}

/* Pack @c and decode it again: the decoder's verdict (the message, if any,
 * is freed). */
static int round_trip(Verbus__Control *c)
{
	uint8_t buf[VBI_CTRL_MAX];
	Verbus__Control *m = NULL;
	size_t len;
	int rc;

	assert_int_equal(vbi_codec_encode(c, buf, sizeof(buf), &len), VB_OK);
	rc = vbi_codec_decode(buf, len, &m);
	if (rc == VB_OK)
		vbi_codec_free(m);
	else
		assert_null(m);
	return rc;
}

/* @len copies of 'a' in @buf (which holds len + 1), NUL-terminated. */
static char *string_of(char *buf, size_t len)
{
	memset(buf, 'a', len);
	buf[len] = '\0';
	return buf;
}

static void test_codec_subscribe_checks(void **state)
{
	Verbus__Control c = VERBUS__CONTROL__INIT, *m = NULL;
	Verbus__Subscribe s = VERBUS__SUBSCRIBE__INIT;
	char subject[VBI_SUBJECT_MAX + 2], queue[VBI_QUEUE_MAX + 2];
	uint8_t buf[VBI_CTRL_MAX];
	size_t len;

	(void)state;
	c.body_case = VERBUS__CONTROL__BODY_SUBSCRIBE;
	c.subscribe = &s;
	s.sid = 7;
	s.subject = (char *)"orders.*";
	s.queue = (char *)"workers";
	s.max_msgs = 10;
	assert_int_equal(vbi_codec_encode(&c, buf, sizeof(buf), &len), VB_OK);
	assert_int_equal(vbi_codec_decode(buf, len, &m), VB_OK);
	assert_int_equal(m->subscribe->sid, 7);
	assert_string_equal(m->subscribe->subject, "orders.*");
	assert_string_equal(m->subscribe->queue, "workers");
	assert_true(m->subscribe->max_msgs == 10);
	assert_string_equal(vbi_codec_kind_name(m), "subscribe");
	vbi_codec_free(m);

	/* sid 0 is never a subscription. */
	s.sid = 0;
	assert_int_equal(round_trip(&c), VB_EPROTO);
	s.sid = 1;
	/* The longest subject and queue pass; one byte more does not. */
	s.subject = string_of(subject, VBI_SUBJECT_MAX);
	s.queue = string_of(queue, VBI_QUEUE_MAX);
	assert_int_equal(round_trip(&c), VB_OK);
	s.subject = string_of(subject, VBI_SUBJECT_MAX + 1);
	assert_int_equal(round_trip(&c), VB_EPROTO);
	s.subject = (char *)"a";
	s.queue = string_of(queue, VBI_QUEUE_MAX + 1);
	assert_int_equal(round_trip(&c), VB_EPROTO);
	/* No queue at all is a plain subscription. */
	s.queue = (char *)"";
	assert_int_equal(round_trip(&c), VB_OK);
}

/* A route's interest: ids below 2^31, an account's id 0 or with bit 31,
 * an account name of 64 bytes at most. */
static void test_codec_route_sub_checks(void **state)
{
	Verbus__Control c = VERBUS__CONTROL__INIT;
	Verbus__RouteSub r = VERBUS__ROUTE_SUB__INIT;
	char name[VBI_ACCOUNT_MAX + 2];

	(void)state;
	c.body_case = VERBUS__CONTROL__BODY_ROUTE_SUB;
	c.route_sub = &r;
	r.id = 1;
	r.subject = (char *)"orders.>";
	assert_int_equal(round_trip(&c), VB_OK);
	r.account = string_of(name, VBI_ACCOUNT_MAX);
	r.account_sid = VBI_ACCOUNT_SID | 3;
	assert_int_equal(round_trip(&c), VB_OK);
	r.account = string_of(name, VBI_ACCOUNT_MAX + 1);
	assert_int_equal(round_trip(&c), VB_EPROTO);
	r.account = (char *)"orders";
	r.account_sid = 3; /* not an account's id */
	assert_int_equal(round_trip(&c), VB_EPROTO);
	r.account_sid = VBI_ACCOUNT_SID;
	r.id = VBI_ACCOUNT_SID; /* an entry's id in an account's range */
	assert_int_equal(round_trip(&c), VB_EPROTO);
	r.id = 0;
	assert_int_equal(round_trip(&c), VB_EPROTO);
}

static void test_codec_unsubscribe_checks(void **state)
{
	Verbus__Control c = VERBUS__CONTROL__INIT, *m = NULL;
	Verbus__Unsubscribe u = VERBUS__UNSUBSCRIBE__INIT;
	uint8_t buf[VBI_CTRL_MAX];
	size_t len;

	(void)state;
	c.body_case = VERBUS__CONTROL__BODY_UNSUBSCRIBE;
	c.unsubscribe = &u;
	u.sid = 0xffffffffu;
	u.max_msgs = 3;
	assert_int_equal(vbi_codec_encode(&c, buf, sizeof(buf), &len), VB_OK);
	assert_int_equal(vbi_codec_decode(buf, len, &m), VB_OK);
	assert_int_equal(m->unsubscribe->sid, 0xffffffffu);
	assert_true(m->unsubscribe->max_msgs == 3);
	assert_string_equal(vbi_codec_kind_name(m), "unsubscribe");
	vbi_codec_free(m);
	u.sid = 0;
	assert_int_equal(round_trip(&c), VB_EPROTO);
}

static void test_codec_notice_checks(void **state)
{
	Verbus__Control c = VERBUS__CONTROL__INIT, *m = NULL;
	Verbus__Notice n = VERBUS__NOTICE__INIT;
	char reason[VBI_REASON_MAX + 2];
	uint8_t buf[VBI_CTRL_MAX];
	size_t len;

	(void)state;
	c.body_case = VERBUS__CONTROL__BODY_NOTICE;
	c.notice = &n;
	n.code = (uint32_t)-VB_EINVAL;
	n.reason = (char *)"bad subject";
	n.sid = 4;
	n.seq = 99;
	assert_int_equal(vbi_codec_encode(&c, buf, sizeof(buf), &len), VB_OK);
	assert_int_equal(vbi_codec_decode(buf, len, &m), VB_OK);
	assert_int_equal(-(int)m->notice->code, VB_EINVAL);
	assert_string_equal(m->notice->reason, "bad subject");
	assert_int_equal(m->notice->sid, 4);
	assert_true(m->notice->seq == 99);
	assert_string_equal(vbi_codec_kind_name(m), "notice");
	vbi_codec_free(m);
	n.reason = string_of(reason, VBI_REASON_MAX);
	assert_int_equal(round_trip(&c), VB_OK);
	n.reason = string_of(reason, VBI_REASON_MAX + 1);
	assert_int_equal(round_trip(&c), VB_EPROTO);
}

/* A Dropped: a client's has no subject; a route's names one, bounded. */
static void test_codec_dropped_checks(void **state)
{
	Verbus__Control c = VERBUS__CONTROL__INIT, *m = NULL;
	Verbus__Dropped d = VERBUS__DROPPED__INIT;
	char subj[VBI_SUBJECT_MAX + 2];
	uint8_t buf[VBI_CTRL_MAX];
	size_t len;

	(void)state;
	c.body_case = VERBUS__CONTROL__BODY_DROPPED;
	c.dropped = &d;
	d.sid = 3;
	d.count = 42;
	assert_int_equal(vbi_codec_encode(&c, buf, sizeof(buf), &len), VB_OK);
	assert_int_equal(vbi_codec_decode(buf, len, &m), VB_OK);
	assert_int_equal(m->dropped->sid, 3);
	assert_true(m->dropped->count == 42);
	assert_string_equal(m->dropped->subject, "");
	vbi_codec_free(m);
	d.subject = (char *)"orders.new";
	assert_int_equal(round_trip(&c), VB_OK);
	d.subject = string_of(subj, VBI_SUBJECT_MAX);
	assert_int_equal(round_trip(&c), VB_OK);
	d.subject = string_of(subj, VBI_SUBJECT_MAX + 1);
	assert_int_equal(round_trip(&c), VB_EPROTO);
}

static void test_codec_encode_checks_size(void **state)
{
	Verbus__Control c = VERBUS__CONTROL__INIT;
	Verbus__Error e = VERBUS__ERROR__INIT;
	uint8_t buf[8];
	size_t len = 99;

	(void)state;
	assert_int_equal(vbi_codec_encode(&c, buf, sizeof(buf), &len),
			 VB_EINVAL);
	e.code = 2;
	e.reason = (char *)"this reason does not fit in eight bytes";
	c.body_case = VERBUS__CONTROL__BODY_ERROR;
	c.error = &e;
	assert_int_equal(vbi_codec_encode(&c, buf, sizeof(buf), &len),
			 VB_EMSGSIZE);
	assert_int_equal(len, 99);
}

static void test_codec_cm_hdr(void **state)
{
	uint8_t pd[56] = { 0 };
	struct vbi_cm_hdr h;

	(void)state;
	vbi_cm_hdr_encode(pd);
	assert_int_equal(vbi_cm_hdr_decode(pd, sizeof(pd), &h), VB_OK);
	assert_int_equal(h.magic, VBI_CM_MAGIC);
	assert_int_equal(h.version, VBI_PROTO_VERSION);
	assert_int_equal(vbi_cm_hdr_decode(pd, 7, &h), VB_EPROTO);
	assert_int_equal(vbi_cm_hdr_decode(NULL, 0, &h), VB_EPROTO);
	pd[5] = 99; /* version 99 */
	assert_int_equal(vbi_cm_hdr_decode(pd, sizeof(pd), &h), VB_EVERSION);
	assert_int_equal(h.version, 99);
	pd[0] ^= 0xff;
	assert_int_equal(vbi_cm_hdr_decode(pd, sizeof(pd), &h), VB_EPROTO);
}

/* A reject's record carries why, big-endian in bytes 6-7; a plain record
 * says 0, and every code has words. */
static void test_codec_cm_reject_reason(void **state)
{
	uint8_t pd[VBI_CM_HDR_LEN];
	struct vbi_cm_hdr h;

	(void)state;
	vbi_cm_hdr_encode(pd);
	assert_int_equal(vbi_cm_hdr_decode(pd, sizeof(pd), &h), VB_OK);
	assert_int_equal(h.reason, VBI_CM_REJ_NONE);
	vbi_cm_hdr_encode_reject(pd, VBI_CM_REJ_ADDR);
	assert_int_equal(pd[6], 0);
	assert_int_equal(pd[7], VBI_CM_REJ_ADDR);
	assert_int_equal(vbi_cm_hdr_decode(pd, sizeof(pd), &h), VB_OK);
	assert_int_equal(h.reason, VBI_CM_REJ_ADDR);
	assert_string_equal(vbi_cm_reject_reason(VBI_CM_REJ_FULL),
			    "the server has too many connections");
	assert_string_equal(vbi_cm_reject_reason(VBI_CM_REJ_ADDR),
			    "too many handshakes from this address");
	assert_string_equal(vbi_cm_reject_reason(VBI_CM_REJ_SHUTDOWN),
			    "the server is shutting down");
	assert_string_equal(vbi_cm_reject_reason(0xffff), "connection refused");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codec_hello_round_trip),
		cmocka_unit_test(test_codec_welcome_and_error_round_trip),
		cmocka_unit_test(test_codec_credit_round_trip),
		cmocka_unit_test(test_codec_rejects_bad_lengths),
		cmocka_unit_test(test_codec_rejects_truncated),
		cmocka_unit_test(test_codec_rejects_garbage),
		cmocka_unit_test(test_codec_rejects_missing_fields),
		cmocka_unit_test(test_codec_subscribe_checks),
		cmocka_unit_test(test_codec_route_sub_checks),
		cmocka_unit_test(test_codec_unsubscribe_checks),
		cmocka_unit_test(test_codec_notice_checks),
		cmocka_unit_test(test_codec_dropped_checks),
		cmocka_unit_test(test_codec_encode_checks_size),
		cmocka_unit_test(test_codec_cm_hdr),
		cmocka_unit_test(test_codec_cm_reject_reason),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
