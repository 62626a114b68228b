/*
 * stats.h - what a benchmark measures: latency samples and their
 * percentiles, and which sequence numbers arrived (so that a lost or
 * duplicated message is counted, never hidden in an average).
 *
 * Threading: an object is used by one thread.  Memory: each object owns
 * what it allocates; _fini() frees it and accepts a zeroed object.
 */
#ifndef VERBUS_CLI_STATS_H
#define VERBUS_CLI_STATS_H

#include <stddef.h>
#include <stdint.h>

/* Latency samples, in nanoseconds. */
struct cli_samples {
	uint64_t *v; /* the samples, in arrival order until summarised */
	size_t n; /* samples recorded */
	size_t cap; /* room in @v */
};

/* A summary of samples, in nanoseconds; all 0 without samples. */
struct cli_lat {
	size_t n; /* samples */
	uint64_t min, max;
	double mean;
	uint64_t p50, p90, p99, p999; /* nearest-rank percentiles */
};

/* cli_samples_init() - room for @cap samples.  Returns 0 or -1 (memory). */
int cli_samples_init(struct cli_samples *s, size_t cap);
/* cli_samples_add() - record one sample; beyond @cap it is ignored and
 * -1 returned (the caller sized it). */
int cli_samples_add(struct cli_samples *s, uint64_t ns);
/* cli_samples_summary() - sorts the samples and summarises them. */
void cli_samples_summary(struct cli_samples *s, struct cli_lat *out);
void cli_samples_fini(struct cli_samples *s);

/*
 * cli_percentile() - the nearest-rank @p-th percentile (0 < p <= 100) of
 * @n sorted values: the smallest value with at least p% of the values at
 * or below it.  0 if @n is 0.
 */
uint64_t cli_percentile(const uint64_t *sorted, size_t n, double p);

/* Which of the sequence numbers 0..n-1 arrived, and how often. */
struct cli_seqset {
	uint8_t *bits; /* one bit per sequence number */
	uint64_t n; /* sequence numbers expected: 0 .. n-1 */
	uint64_t uniq; /* distinct ones seen */
	uint64_t dup; /* arrivals of one already seen */
	uint64_t bad; /* arrivals of a number outside 0..n-1 */
};

/* cli_seqset_init() - expect 0..@n-1.  Returns 0 or -1 (memory). */
int cli_seqset_init(struct cli_seqset *s, uint64_t n);
/* cli_seqset_mark() - @seq arrived: returns 0 (first time), 1 (a
 * duplicate) or -1 (out of range); the counters follow. */
int cli_seqset_mark(struct cli_seqset *s, uint64_t seq);
/* cli_seqset_has() - whether @seq (< n) arrived. */
int cli_seqset_has(const struct cli_seqset *s, uint64_t seq);
/* cli_seqset_lost() - expected numbers not seen (yet). */
uint64_t cli_seqset_lost(const struct cli_seqset *s);
void cli_seqset_fini(struct cli_seqset *s);

#endif /* VERBUS_CLI_STATS_H */
