/* Unit tests for the benchmark's statistics (clients/cli/stats.c). */
#include "cli/stats.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* Nearest rank: the smallest value with at least p% at or below it. */
static void test_cli_stats_percentiles(void **state)
{
	uint64_t v[1000];
	size_t i;

	(void)state;
	for (i = 0; i < 1000; i++)
		v[i] = i + 1; /* 1 .. 1000 */
	assert_int_equal(cli_percentile(v, 1000, 50), 500);
	assert_int_equal(cli_percentile(v, 1000, 90), 900);
	assert_int_equal(cli_percentile(v, 1000, 99), 990);
	assert_int_equal(cli_percentile(v, 1000, 99.9), 999);
	assert_int_equal(cli_percentile(v, 1000, 100), 1000);
	assert_int_equal(cli_percentile(v, 1000, 0.01), 1);
	/* Few samples: p99.9 of 10 is the largest, p50 the 5th. */
	assert_int_equal(cli_percentile(v, 10, 99.9), 10);
	assert_int_equal(cli_percentile(v, 10, 50), 5);
	assert_int_equal(cli_percentile(v, 1, 50), 1);
	assert_int_equal(cli_percentile(v, 0, 50), 0);
}

static void test_cli_stats_summary_sorts(void **state)
{
	static const uint64_t in[] = {
		70, 10, 40, 100, 20, 90, 30, 80, 60, 50
	};
	struct cli_samples s;
	struct cli_lat l;
	size_t i;

	(void)state;
	assert_int_equal(cli_samples_init(&s, 10), 0);
	for (i = 0; i < 10; i++)
		assert_int_equal(cli_samples_add(&s, in[i]), 0);
	/* Beyond the room asked for: refused, not written. */
	assert_int_equal(cli_samples_add(&s, 1), -1);
	cli_samples_summary(&s, &l);
	assert_int_equal(l.n, 10);
	assert_int_equal(l.min, 10);
	assert_int_equal(l.max, 100);
	assert_true(l.mean > 54.99 && l.mean < 55.01);
	assert_int_equal(l.p50, 50);
	assert_int_equal(l.p90, 90);
	assert_int_equal(l.p99, 100);
	assert_int_equal(l.p999, 100);
	cli_samples_fini(&s);

	/* No samples: all zero. */
	assert_int_equal(cli_samples_init(&s, 0), 0);
	cli_samples_summary(&s, &l);
	assert_int_equal(l.n, 0);
	assert_int_equal(l.max, 0);
	cli_samples_fini(&s);
	cli_samples_fini(&s); /* twice is harmless */
}

static void test_cli_stats_seqset_counts(void **state)
{
	struct cli_seqset s;
	uint64_t i;

	(void)state;
	assert_int_equal(cli_seqset_init(&s, 100), 0);
	assert_int_equal(cli_seqset_lost(&s), 100);
	for (i = 0; i < 100; i += 2)
		assert_int_equal(cli_seqset_mark(&s, i), 0);
	assert_int_equal(s.uniq, 50);
	assert_int_equal(cli_seqset_lost(&s), 50);
	assert_true(cli_seqset_has(&s, 98));
	assert_false(cli_seqset_has(&s, 99));
	assert_false(cli_seqset_has(&s, 100));

	/* Twice is a duplicate, not a second arrival. */
	assert_int_equal(cli_seqset_mark(&s, 0), 1);
	assert_int_equal(cli_seqset_mark(&s, 98), 1);
	assert_int_equal(s.dup, 2);
	assert_int_equal(s.uniq, 50);

	/* Out of range: counted as bad, nothing else changes. */
	assert_int_equal(cli_seqset_mark(&s, 100), -1);
	assert_int_equal(cli_seqset_mark(&s, UINT64_MAX), -1);
	assert_int_equal(s.bad, 2);
	assert_int_equal(cli_seqset_lost(&s), 50);

	for (i = 1; i < 100; i += 2)
		assert_int_equal(cli_seqset_mark(&s, i), 0);
	assert_int_equal(cli_seqset_lost(&s), 0);
	cli_seqset_fini(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cli_stats_percentiles),
		cmocka_unit_test(test_cli_stats_summary_sorts),
		cmocka_unit_test(test_cli_stats_seqset_counts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
