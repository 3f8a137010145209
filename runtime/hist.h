/* hist.h - a fixed-memory latency histogram with log-linear buckets (as HdrHistogram's): 16
 * linear sub-buckets per power of two of microseconds, so any value from 1 us to about 71
 * minutes lands in a bucket at most 1/16 (6.25%) wider than its lower edge. 464 buckets of 8
 * bytes; adding a sample is a few instructions and never allocates. Values below 1 us count in
 * the first bucket, above the range in the last. Pure. */
#ifndef TIDE_HIST_H
#define TIDE_HIST_H

#include <stdint.h>

#define TIDE_HIST_SUB     16
#define TIDE_HIST_BUCKETS (TIDE_HIST_SUB + 28 * TIDE_HIST_SUB)

typedef struct tide_hist {
    uint64_t count;
    double sum; /* seconds */
    uint64_t b[TIDE_HIST_BUCKETS];
} tide_hist;

/* Adds one sample of `seconds` (negative and NaN count as 0). */
void tide_hist_add(tide_hist *h, double seconds);
/* The value (seconds) below which a fraction q (0..1) of the samples lie: the upper edge of the
 * bucket holding that rank, so at most 6.25% above the true value. 0 without samples. */
double tide_hist_quantile(const tide_hist *h, double q);
/* Samples in buckets whose upper edge is at most `seconds` (for Prometheus' cumulative le
 * buckets: a sample within 6.25% below a bound may be counted in the next bound up). */
uint64_t tide_hist_count_le(const tide_hist *h, double seconds);
/* Adds src's samples into dst. */
void tide_hist_merge(tide_hist *dst, const tide_hist *src);
void tide_hist_reset(tide_hist *h);

/* Internal, exposed for tests: a value's bucket, and a bucket's upper edge (microseconds). */
int tide__hist_bucket(uint64_t us);
uint64_t tide__hist_upper_us(int bucket);

#endif
