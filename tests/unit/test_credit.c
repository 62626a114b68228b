/* Unit tests for RECV credits and the credit-return policy (core/credit.c). */
#include "core/credit.h"
#include "core/frame.h"
#include "core/ring.h"

#include <verbus/verbus.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static void test_credit_init_rejects(void **state)
{
	struct vbi_credit c;

	(void)state;
	assert_int_equal(vbi_credit_init(&c, 3, 8), VB_EINVAL);
	assert_int_equal(vbi_credit_init(&c, 8, 3), VB_EINVAL);
	assert_int_equal(vbi_credit_init(&c, 0, 0), VB_EINVAL);
	assert_int_equal(vbi_credit_init(&c, VBI_CREDIT_MAX_POSTED + 1, 8),
			 VB_EINVAL);
	assert_int_equal(vbi_credit_init(NULL, 8, 8), VB_EINVAL);
	assert_int_equal(vbi_credit_init(&c, VBI_CREDIT_MIN_POSTED,
					 VBI_CREDIT_MIN_POSTED),
			 VB_OK);
	assert_int_equal(c.recv_credits, VBI_CREDIT_MIN_POSTED);
	assert_false(vbi_credit_should_return(&c, 4096));
}

/* The last VBI_CREDIT_RESERVE credits are for credit returns only. */
static void test_credit_reserve_is_for_returns(void **state)
{
	struct vbi_credit c;
	int i;

	(void)state;
	assert_int_equal(vbi_credit_init(&c, 8, 8), VB_OK);
	for (i = 0; i < 8 - (int)VBI_CREDIT_RESERVE; i++)
		assert_int_equal(vbi_credit_take(&c, false), VB_OK);
	assert_int_equal(c.recv_credits, VBI_CREDIT_RESERVE);
	assert_int_equal(vbi_credit_take(&c, false), VB_EAGAIN);
	assert_int_equal(c.recv_credits, VBI_CREDIT_RESERVE);
	for (i = 0; i < (int)VBI_CREDIT_RESERVE; i++)
		assert_int_equal(vbi_credit_take(&c, true), VB_OK);
	assert_int_equal(vbi_credit_take(&c, true), VB_EAGAIN);
	assert_int_equal(vbi_credit_take(&c, false), VB_EAGAIN);
	assert_true(c.consumed == 8);
	/* Grants bring data back only above the reserve. */
	assert_int_equal(vbi_credit_grant(&c, 2), VB_OK);
	assert_int_equal(vbi_credit_take(&c, false), VB_EAGAIN);
	assert_int_equal(vbi_credit_grant(&c, 3), VB_OK);
	assert_int_equal(vbi_credit_take(&c, false), VB_OK);
}

static void test_credit_grant_wraps(void **state)
{
	struct vbi_credit c;
	int round, i;

	(void)state;
	assert_int_equal(vbi_credit_init(&c, 16, 16), VB_OK);
	c.consumed = c.granted = (1ull << 32) - 20;
	for (round = 0; round < 5; round++) {
		for (i = 0; i < 14; i++)
			assert_int_equal(vbi_credit_take(&c, false), VB_OK);
		assert_int_equal(vbi_credit_take(&c, false), VB_EAGAIN);
		/* The peer's u32 counter wraps past zero. */
		assert_int_equal(vbi_credit_grant(&c, (uint32_t)c.consumed),
				 VB_OK);
		assert_int_equal(c.recv_credits, 16);
		assert_true(c.granted == c.consumed);
	}
	assert_true(c.granted > (1ull << 32));
}

static void test_credit_grant_lies_rejected(void **state)
{
	struct vbi_credit c;

	(void)state;
	assert_int_equal(vbi_credit_init(&c, 8, 8), VB_OK);
	assert_int_equal(vbi_credit_take(&c, false), VB_OK);
	assert_int_equal(vbi_credit_take(&c, false), VB_OK);
	/* Reposting more than we sent is a lie; nothing changes. */
	assert_int_equal(vbi_credit_grant(&c, 3), VB_EPROTO);
	assert_int_equal(vbi_credit_grant(&c, INT32_MAX), VB_EPROTO);
	assert_int_equal(c.recv_credits, 6);
	assert_true(c.granted == 0);
	assert_int_equal(vbi_credit_grant(&c, 1), VB_OK);
	assert_int_equal(c.recv_credits, 7);
	/* Old values (overtaken on the way) are ignored. */
	assert_int_equal(vbi_credit_grant(&c, 0), VB_OK);
	assert_int_equal(vbi_credit_grant(&c, UINT32_MAX), VB_OK);
	assert_int_equal(vbi_credit_grant(&c, 1), VB_OK);
	assert_int_equal(c.recv_credits, 7);
	assert_int_equal(vbi_credit_grant(&c, 2), VB_OK);
	assert_int_equal(c.recv_credits, 8);
}

/*
 * The threshold: max(2, posted / 4) reposts or a quarter of the ring, and a
 * single repost (what a credit return costs us) never reaches it.
 */
static void test_credit_return_thresholds(void **state)
{
	static const uint32_t posted[] = { 4, 5, 8, 11, 64, 1000 };
	struct vbi_credit_ack ack;
	struct vbi_credit c;
	uint32_t t;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(posted) / sizeof(posted[0]); i++) {
		t = posted[i] / 4 < 2 ? 2 : posted[i] / 4;
		assert_int_equal(vbi_credit_init(&c, 8, posted[i]), VB_OK);
		vbi_credit_reposted(&c, 1);
		assert_false(vbi_credit_should_return(&c, 4096));
		vbi_credit_reposted(&c, t - 2);
		assert_false(vbi_credit_should_return(&c, 4096));
		vbi_credit_reposted(&c, 1);
		assert_true(vbi_credit_should_return(&c, 4096));
		vbi_credit_snapshot(&c, &ack);
		vbi_credit_sent(&c, &ack);
		assert_false(vbi_credit_should_return(&c, 4096));
		/* The threshold never exceeds what a blocked peer leaves. */
		assert_true(t <= posted[i] - VBI_CREDIT_RESERVE);
	}

	assert_int_equal(vbi_credit_init(&c, 8, 8), VB_OK);
	assert_false(vbi_credit_ring_may_block(&c, 4096, 2048));
	vbi_credit_note_freed(&c, 1016);
	assert_false(vbi_credit_should_return(&c, 4096));
	/* Below the threshold, but a frame of half the ring and its PAD may
	 * need it: a drained ring sends it back. */
	assert_true(vbi_credit_ring_may_block(&c, 4096, 2048));
	/* With frames of at most 1 KiB, a blocked peer has used more than
	 * 4096 - 2048 bytes: 1016 owed is not what it waits for. */
	assert_false(vbi_credit_ring_may_block(&c, 4096, 1024));
	vbi_credit_note_freed(&c, 1024);
	assert_true(vbi_credit_should_return(&c, 4096));
	/* A lower value (a stale note) is ignored. */
	vbi_credit_note_freed(&c, 8);
	assert_true(c.freed == 1024);
	vbi_credit_snapshot(&c, &ack);
	assert_int_equal(ack.ack_freed, 128);
	vbi_credit_sent(&c, &ack);
	assert_false(vbi_credit_should_return(&c, 4096));
	assert_false(vbi_credit_ring_may_block(&c, 4096, 2048));
}

/*
 * Whenever a sender is blocked on ring space (core/ring.c: a PAD of
 * @fill bytes, shorter than the frame, plus a frame of @span bytes do not
 * fit beside the @used bytes not yet given back) and the receiver has
 * drained its ring, so that it owes exactly @used, the receiver gives the
 * space back.
 */
static void test_credit_drained_never_deadlocks(void **state)
{
	static const size_t ring = 4096, spans[] = { 64, 512, 1024, 2048 };
	struct vbi_credit c;
	size_t i, used, span, fill;

	(void)state;
	for (i = 0; i < sizeof(spans) / sizeof(spans[0]); i++) {
		for (span = spans[i] / 4; span <= spans[i];
		     span += spans[i] / 4) {
			for (used = 8; used <= ring; used += 8) {
				for (fill = 0; fill < span; fill += 8) {
					if (fill + span <= ring - used)
						continue; /* not blocked */
					assert_int_equal(
						vbi_credit_init(&c, 8, 8),
						VB_OK);
					vbi_credit_note_freed(&c, used);
					assert_true(vbi_credit_ring_may_block(
						&c, ring, spans[i]));
				}
			}
		}
	}
}

/* Acks count as paid only once posted, and paying twice is harmless. */
static void test_credit_owed_until_sent(void **state)
{
	struct vbi_credit_ack staged, later;
	struct vbi_credit c;

	(void)state;
	assert_int_equal(vbi_credit_init(&c, 8, 8), VB_OK);
	vbi_credit_reposted(&c, 2);
	vbi_credit_snapshot(&c, &staged);
	assert_int_equal(staged.ack_recvs, 2);
	/* Staged in a frame that has not left: still owed. */
	assert_true(vbi_credit_should_return(&c, 4096));
	vbi_credit_reposted(&c, 1);
	vbi_credit_snapshot(&c, &later);
	vbi_credit_sent(&c, &later);
	assert_false(vbi_credit_should_return(&c, 4096));
	/* The older frame leaving afterwards does not un-pay anything. */
	vbi_credit_sent(&c, &staged);
	assert_true(c.returned_recvs == 3);
	/* The u32 wire value wraps with the counter. */
	c.reposted = (1ull << 32) + 5;
	vbi_credit_snapshot(&c, &later);
	assert_int_equal(later.ack_recvs, 5);
}

/*
 * Two peers, each with a receive ring and a credit struct, exchanging data
 * frames (WRITE_WITH_IMM) and credit returns (SEND) over two in-order
 * queues.  Every step performs one enabled action chosen at random; the
 * run ends when nothing is enabled.  Checked: no message ever finds the
 * receiver without a posted RECV (the credits are sound), every frame
 * arrives intact and in order, the run always ends with all data delivered
 * (no deadlock), and it ends at all (no endless credit-return ping-pong).
 */
#define SIM_QUEUE 64
#define SIM_HELD 512

/* One message on the wire. */
struct sim_msg {
	bool is_cr; /* a credit return SEND rather than a data WRITE */
	size_t off; /* WRITE: ring offset */
	size_t len; /* WRITE: bytes appended (the immediate) */
	size_t xfer; /* WRITE: bytes actually written */
	uint32_t ack_recvs; /* CR: the acks it carries */
	uint32_t ack_freed; /* CR: the acks it carries */
};

/* One side of the connection. */
struct sim_peer {
	struct vbi_credit c; /* credits both ways */
	struct vbi_ring_tx tx; /* our view of the peer's ring */
	struct vbi_ring_rx rx; /* our own ring */
	uint8_t *stage; /* staging for tx */
	uint8_t *ring; /* memory of rx */
	uint32_t rq; /* RECVs posted right now */
	uint32_t to_repost; /* RECVs consumed and not yet reposted */
	uint64_t todo; /* data frames still to stage */
	uint64_t staged; /* data frames staged (= last seq) */
	uint64_t got; /* data frames received */
	struct vbi_frame_view held[SIM_HELD]; /* frames the app holds */
	int nheld; /* entries in @held */
	struct sim_msg q[SIM_QUEUE]; /* in flight to the other peer */
	unsigned qhead; /* next to deliver */
	unsigned qlen; /* messages in flight */
	uint64_t writes; /* data WRITEs posted */
	uint64_t crs; /* credit returns posted */
};

static uint64_t sim_rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

static void sim_init(struct sim_peer *p, size_t ring, uint32_t peer_posted,
		     uint32_t posted, uint64_t todo)
{
	memset(p, 0, sizeof(*p));
	p->stage = aligned_alloc(64, ring);
	p->ring = aligned_alloc(64, ring);
	assert_non_null(p->stage);
	assert_non_null(p->ring);
	memset(p->ring, 0xee, ring);
	assert_int_equal(vbi_credit_init(&p->c, peer_posted, posted), VB_OK);
	assert_int_equal(vbi_ring_tx_init(&p->tx, p->stage, ring), VB_OK);
	assert_int_equal(vbi_ring_rx_init(&p->rx, p->ring, ring), VB_OK);
	p->rq = posted;
	p->todo = todo;
}

static void sim_fini(struct sim_peer *p)
{
	free(p->stage);
	free(p->ring);
}

static uint8_t sim_byte(uint64_t seq, size_t i)
{
	return (uint8_t)(seq * 31u + i + 3u);
}

/* The largest payload the simulation sends through a ring of @ring. */
static uint32_t sim_plen_max(size_t ring)
{
	return (uint32_t)(ring / 2 - 32);
}

static uint32_t sim_plen(uint64_t seq, size_t ring)
{
	return (uint32_t)((seq * 2654435761u) % (sim_plen_max(ring) + 1));
}

static void sim_post(struct sim_peer *p, const struct sim_msg *m)
{
	assert_true(p->qlen < SIM_QUEUE);
	p->q[(p->qhead + p->qlen++) % SIM_QUEUE] = *m;
}

static bool sim_stage(struct sim_peer *p)
{
	uint64_t seq = p->staged + 1;
	uint32_t plen = sim_plen(seq, p->tx.size), i;
	size_t span = vbi_frame_span(vbi_frame_msg_len(0, plen)), off;
	struct vbi_credit_ack ack;
	struct vbi_frame_msg m = { .payload_len = plen, .seq = seq };
	uint8_t *f;

	if (p->todo == 0 || vbi_ring_tx_reserve(&p->tx, span, &off, NULL))
		return false;
	vbi_credit_snapshot(&p->c, &ack);
	m.ack_recvs = ack.ack_recvs;
	m.ack_freed = ack.ack_freed;
	f = p->stage + off;
	assert_int_equal(vbi_frame_put_hdr(f, span, &m), VB_OK);
	for (i = 0; i < plen; i++)
		f[32 + i] = sim_byte(seq, i);
	p->todo--;
	p->staged++;
	return true;
}

static bool sim_flush(struct sim_peer *p, size_t max)
{
	struct vbi_ring_batch b;
	struct vbi_credit_ack ack;
	struct sim_msg m = { 0 };

	assert_int_equal(vbi_ring_tx_next_batch(&p->tx, max, &b), VB_OK);
	if (b.len == 0 || vbi_credit_take(&p->c, false) != VB_OK)
		return false;
	/* The last frame leaves with the freshest acks. */
	if (b.has_last) {
		vbi_credit_snapshot(&p->c, &ack);
		vbi_frame_set_acks(p->stage + b.last_off, ack.ack_recvs,
				   ack.ack_freed);
		vbi_credit_sent(&p->c, &ack);
	}
	assert_int_equal(vbi_ring_tx_flushed(&p->tx, b.len), VB_OK);
	m.off = b.off;
	m.len = b.len;
	m.xfer = b.xfer;
	sim_post(p, &m);
	p->writes++;
	return true;
}

static bool sim_credit_return(struct sim_peer *p)
{
	struct vbi_credit_ack ack;
	struct sim_msg m = { .is_cr = true };

	/* As transport/session.c does: a quarter owed, or a drained ring with
	 * space the peer may be blocked on. */
	size_t max_span =
		vbi_frame_span(vbi_frame_msg_len(0, sim_plen_max(p->rx.size)));
	bool due = vbi_credit_should_return(&p->c, p->rx.size) ||
		   (p->rx.freed == p->rx.written &&
		    vbi_credit_ring_may_block(&p->c, p->rx.size, max_span));

	if (!due || vbi_credit_take(&p->c, true) != VB_OK)
		return false;
	vbi_credit_snapshot(&p->c, &ack);
	m.ack_recvs = ack.ack_recvs;
	m.ack_freed = ack.ack_freed;
	vbi_credit_sent(&p->c, &ack);
	sim_post(p, &m);
	p->crs++;
	return true;
}

static void sim_apply_acks(struct sim_peer *p, uint32_t recvs, uint32_t freed)
{
	assert_int_equal(vbi_credit_grant(&p->c, recvs), VB_OK);
	assert_int_equal(vbi_ring_tx_credit(&p->tx, freed), VB_OK);
}

/* Deliver the oldest message from @from to @to. */
static bool sim_deliver(struct sim_peer *from, struct sim_peer *to)
{
	struct sim_msg m;
	struct vbi_frame_view v;
	uint32_t i;
	int rc;

	if (from->qlen == 0)
		return false;
	m = from->q[from->qhead];
	from->qhead = (from->qhead + 1) % SIM_QUEUE;
	from->qlen--;
	/* Credits are sound: a RECV is always waiting (else RNR). */
	assert_true(to->rq > 0);
	to->rq--;
	to->to_repost++;
	if (m.is_cr) {
		sim_apply_acks(to, m.ack_recvs, m.ack_freed);
		return true;
	}
	memcpy(to->ring + m.off, from->stage + m.off, m.xfer);
	assert_int_equal(vbi_ring_rx_arrived(&to->rx, (uint32_t)m.len), VB_OK);
	while ((rc = vbi_ring_rx_next(&to->rx, to->rx.size, &v)) == VB_OK) {
		assert_true(v.seq == to->got + 1);
		assert_int_equal(v.payload_len, sim_plen(v.seq, to->rx.size));
		for (i = 0; i < v.payload_len; i++)
			assert_int_equal(((const uint8_t *)v.payload)[i],
					 sim_byte(v.seq, i));
		sim_apply_acks(to, v.ack_recvs, v.ack_freed);
		to->got++;
		assert_true(to->nheld < SIM_HELD);
		to->held[to->nheld++] = v;
	}
	assert_int_equal(rc, VB_EAGAIN);
	return true;
}

static bool sim_repost(struct sim_peer *p)
{
	if (p->to_repost == 0)
		return false;
	p->to_repost--;
	p->rq++;
	vbi_credit_reposted(&p->c, 1);
	return true;
}

static bool sim_release(struct sim_peer *p, uint64_t r)
{
	int i;

	if (p->nheld == 0)
		return false;
	i = (int)(r % (uint64_t)p->nheld);
	assert_int_equal(vbi_ring_rx_release(&p->rx, &p->held[i]), VB_OK);
	p->held[i] = p->held[--p->nheld];
	vbi_credit_note_freed(&p->c, p->rx.freed);
	return true;
}

/* Try one action; @k picks which of the 14 (7 per peer). */
static bool sim_act(struct sim_peer *p, int k, uint64_t r)
{
	struct sim_peer *me = &p[k / 7], *other = &p[1 - k / 7];

	switch (k % 7) {
	case 0:
		return sim_stage(me);
	case 1:
		return sim_flush(me, r % 2 ? 0 : 1 + (r >> 1) % me->tx.size);
	case 2:
		return sim_credit_return(me);
	case 3:
		return sim_deliver(me, other);
	case 4:
		return sim_repost(me);
	case 5:
		return sim_release(me, r);
	default:
		/* The application is sometimes slow: a no-op. */
		return false;
	}
}

static void sim_run(uint64_t seed, size_t ring, uint32_t posted_a,
		    uint32_t posted_b, uint64_t todo_a, uint64_t todo_b)
{
	struct sim_peer p[2];
	uint64_t s = seed, steps = 0;
	int k, tries;

	sim_init(&p[0], ring, posted_b, posted_a, todo_a);
	sim_init(&p[1], ring, posted_a, posted_b, todo_b);
	for (;;) {
		uint64_t r = sim_rnd(&s);
		bool acted = false;

		assert_true(++steps < 2000000);
		/* A random enabled action: try all 14 from a random start. */
		k = (int)(r % 14);
		for (tries = 0; tries < 14 && !acted; tries++)
			acted = sim_act(p, (k + tries) % 14, r >> 8);
		if (!acted)
			break;
	}
	/* Quiescent: everything was delivered, nothing is stuck. */
	for (k = 0; k < 2; k++) {
		assert_true(p[k].todo == 0);
		assert_true(p[k].tx.flushed == p[k].tx.tail);
		assert_true(p[k].qlen == 0);
		assert_int_equal(p[k].nheld, 0);
		assert_true(p[1 - k].got == p[k].staged);
		assert_true(p[k].rx.freed == p[k].rx.written);
		/* No ping-pong: returns are bounded by the data that needed
		 * them (each WRITE can be answered at most twice: once for
		 * its RECV and once for its ring bytes), plus a cascade. */
		/*
		 * No ping-pong: between two returns a side must repost at
		 * least two RECVs or free a quarter of its ring, so returns
		 * answering returns decay geometrically (gain 1/2) instead of
		 * feeding on themselves.
		 */
		assert_true(2 * p[k].crs <= p[1 - k].writes + p[1 - k].crs +
						    8 * p[k].rx.freed / ring +
						    2);
	}
	sim_fini(&p[0]);
	sim_fini(&p[1]);
}

static void test_credit_simulation_no_deadlock(void **state)
{
	static const uint32_t posted[] = { 4, 5, 6, 8, 16 };
	static const size_t rings[] = { 64, 256, 1024 };
	uint64_t seed = 1;
	size_t a, b, r;

	(void)state;
	for (r = 0; r < sizeof(rings) / sizeof(rings[0]); r++)
		for (a = 0; a < 5; a++)
			for (b = 0; b < 5; b++) {
				/* Both ways, one way, and the other way. */
				sim_run(seed++, rings[r], posted[a], posted[b],
					300, 300);
				sim_run(seed++, rings[r], posted[a], posted[b],
					600, 0);
				sim_run(seed++, rings[r], posted[a], posted[b],
					0, 600);
			}
}

/*
 * The worst case for a cascade: both sides one repost short of returning.
 * A's return tips B over, B's answer lands on A, which has just returned
 * everything: one answer, then silence.
 */
static void test_credit_no_ping_pong_cascade(void **state)
{
	struct vbi_credit c[2];
	struct vbi_credit_ack ack;
	int turn = 0, sends = 0;

	(void)state;
	assert_int_equal(vbi_credit_init(&c[0], 8, 8), VB_OK);
	assert_int_equal(vbi_credit_init(&c[1], 8, 8), VB_OK);
	/* B sent A two data messages, A sent B one; all were reposted. */
	assert_int_equal(vbi_credit_take(&c[1], false), VB_OK);
	assert_int_equal(vbi_credit_take(&c[1], false), VB_OK);
	assert_int_equal(vbi_credit_take(&c[0], false), VB_OK);
	vbi_credit_reposted(&c[0], 2); /* A owes 2: returns */
	vbi_credit_reposted(&c[1], 1); /* B owes 1: one short */
	while (vbi_credit_should_return(&c[turn], 4096)) {
		assert_int_equal(vbi_credit_take(&c[turn], true), VB_OK);
		vbi_credit_snapshot(&c[turn], &ack);
		vbi_credit_sent(&c[turn], &ack);
		/* The other side consumes and reposts one RECV. */
		turn = 1 - turn;
		assert_int_equal(vbi_credit_grant(&c[turn], ack.ack_recvs),
				 VB_OK);
		vbi_credit_reposted(&c[turn], 1);
		assert_true(++sends <= 2);
	}
	assert_int_equal(sends, 2);
	assert_false(vbi_credit_should_return(&c[0], 4096));
	assert_false(vbi_credit_should_return(&c[1], 4096));
}

/* With no data at all, nobody ever sends anything. */
static void test_credit_simulation_idle_is_silent(void **state)
{
	struct vbi_credit a, b;

	(void)state;
	sim_run(99, 256, 4, 4, 0, 0);
	/* And a lone credit return is absorbed, not answered. */
	assert_int_equal(vbi_credit_init(&a, 4, 4), VB_OK);
	assert_int_equal(vbi_credit_init(&b, 4, 4), VB_OK);
	assert_int_equal(vbi_credit_take(&a, true), VB_OK);
	vbi_credit_reposted(&b, 1);
	assert_false(vbi_credit_should_return(&b, 256));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_credit_init_rejects),
		cmocka_unit_test(test_credit_reserve_is_for_returns),
		cmocka_unit_test(test_credit_grant_wraps),
		cmocka_unit_test(test_credit_grant_lies_rejected),
		cmocka_unit_test(test_credit_return_thresholds),
		cmocka_unit_test(test_credit_owed_until_sent),
		cmocka_unit_test(test_credit_drained_never_deadlocks),
		cmocka_unit_test(test_credit_simulation_no_deadlock),
		cmocka_unit_test(test_credit_no_ping_pong_cascade),
		cmocka_unit_test(test_credit_simulation_idle_is_silent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
