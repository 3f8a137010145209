/* hist.c - log-linear latency histogram (see hist.h). */
#include "hist.h"

#include <string.h>

int tide__hist_bucket(uint64_t us)
{
    if (us < TIDE_HIST_SUB) return (int)us;
    int p = 63 - __builtin_clzll(us);               /* 2^p <= us < 2^(p+1), p >= 4 */
    int sub = (int)(us >> (p - 4)) - TIDE_HIST_SUB; /* 0..15 */
    int b = TIDE_HIST_SUB + (p - 4) * TIDE_HIST_SUB + sub;
    return b < TIDE_HIST_BUCKETS ? b : TIDE_HIST_BUCKETS - 1;
}

uint64_t tide__hist_upper_us(int b)
{
    if (b < TIDE_HIST_SUB) return (uint64_t)b + 1;
    int p = 4 + (b - TIDE_HIST_SUB) / TIDE_HIST_SUB, sub = (b - TIDE_HIST_SUB) % TIDE_HIST_SUB;
    return (uint64_t)(TIDE_HIST_SUB + sub + 1) << (p - 4);
}

void tide_hist_add(tide_hist *h, double seconds)
{
    if (!(seconds > 0)) seconds = 0;
    double us = seconds * 1e6;
    uint64_t v = us >= 9.0e18 ? UINT64_MAX : (uint64_t)us;
    h->b[tide__hist_bucket(v)]++;
    h->count++;
    h->sum += seconds;
}

double tide_hist_quantile(const tide_hist *h, double q)
{
    if (h->count == 0) return 0;
    if (q < 0) q = 0;
    if (q > 1) q = 1;
    uint64_t rank = (uint64_t)(q * (double)h->count + 0.5);
    if (rank < 1) rank = 1;
    uint64_t seen = 0;
    for (int i = 0; i < TIDE_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) return (double)tide__hist_upper_us(i) / 1e6;
    }
    return (double)tide__hist_upper_us(TIDE_HIST_BUCKETS - 1) / 1e6;
}

uint64_t tide_hist_count_le(const tide_hist *h, double seconds)
{
    uint64_t n = 0;
    double us = seconds * 1e6;
    for (int i = 0; i < TIDE_HIST_BUCKETS && (double)tide__hist_upper_us(i) <= us; i++)
        n += h->b[i];
    return n;
}

void tide_hist_merge(tide_hist *dst, const tide_hist *src)
{
    for (int i = 0; i < TIDE_HIST_BUCKETS; i++) dst->b[i] += src->b[i];
    dst->count += src->count;
    dst->sum += src->sum;
}

void tide_hist_reset(tide_hist *h) { memset(h, 0, sizeof *h); }
