/*
 * stats.c - latency percentiles and sequence-number accounting for
 * `verbus bench` (see stats.h).
 *
 * Samples are kept whole and sorted once at the end rather than binned: a
 * run has at most a few million of them, and exact nearest-rank
 * percentiles leave nothing to argue about (p99.9 of 1000 samples is the
 * largest one, not an interpolation).
 */
#include "cli/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int cli_samples_init(struct cli_samples *s, size_t cap)
{
	memset(s, 0, sizeof(*s));
	s->v = malloc((cap ? cap : 1) * sizeof(*s->v));
	if (s->v == NULL)
		return -1;
	s->cap = cap;
	return 0;
}

int cli_samples_add(struct cli_samples *s, uint64_t ns)
{
	if (s->n == s->cap)
		return -1;
	s->v[s->n++] = ns;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

uint64_t cli_percentile(const uint64_t *sorted, size_t n, double p)
{
	double rank;
	size_t k;

	if (n == 0)
		return 0;
	/* The rank is computed in integers where it can be, so that 99.9%
	 * of 1000 is exactly 999, not 999.0000000001 rounded up. */
	rank = ceil(p * (double)n / 100.0 - 1e-9);
	k = rank < 1 ? 1 : (size_t)rank;
	if (k > n)
		k = n;
	return sorted[k - 1];
}

void cli_samples_summary(struct cli_samples *s, struct cli_lat *out)
{
	double sum = 0;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (s->n == 0)
		return;
	qsort(s->v, s->n, sizeof(*s->v), cmp_u64);
	for (i = 0; i < s->n; i++)
		sum += (double)s->v[i];
	out->n = s->n;
	out->min = s->v[0];
	out->max = s->v[s->n - 1];
	out->mean = sum / (double)s->n;
	out->p50 = cli_percentile(s->v, s->n, 50);
	out->p90 = cli_percentile(s->v, s->n, 90);
	out->p99 = cli_percentile(s->v, s->n, 99);
	out->p999 = cli_percentile(s->v, s->n, 99.9);
}

void cli_samples_fini(struct cli_samples *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

int cli_seqset_init(struct cli_seqset *s, uint64_t n)
{
	memset(s, 0, sizeof(*s));
	s->bits = calloc(n / 8 + 1, 1);
	if (s->bits == NULL)
		return -1;
	s->n = n;
	return 0;
}

int cli_seqset_mark(struct cli_seqset *s, uint64_t seq)
{
	uint8_t bit;

	if (seq >= s->n) {
		s->bad++;
		return -1;
	}
	bit = (uint8_t)(1u << (seq % 8));
	if (s->bits[seq / 8] & bit) {
		s->dup++;
		return 1;
	}
	s->bits[seq / 8] |= bit;
	s->uniq++;
	return 0;
}

int cli_seqset_has(const struct cli_seqset *s, uint64_t seq)
{
	return seq < s->n && (s->bits[seq / 8] >> (seq % 8) & 1);
}

uint64_t cli_seqset_lost(const struct cli_seqset *s)
{
	return s->n - s->uniq;
}

void cli_seqset_fini(struct cli_seqset *s)
{
	free(s->bits);
	memset(s, 0, sizeof(*s));
}
