/* test_hist.c - the log-linear histogram: bucket edges, relative error, quantiles, le counts. */
#include "test.h"
#include "../hist.h"

#include <math.h>
#include <stdlib.h>

TEST(hist_buckets_are_contiguous_and_tight)
{
    /* every value maps to a bucket whose range holds it, no wider than 1/16 of its lower edge */
    for (uint64_t us = 0; us < 5000000; us += (us < 4096 ? 1 : us / 37 + 1)) {
        int b = tide__hist_bucket(us);
        uint64_t hi = tide__hist_upper_us(b), lo = b ? tide__hist_upper_us(b - 1) : 0;
        CHECK(us >= lo && us < hi);
        if (us >= 16) CHECK((double)(hi - lo) <= (double)lo / 16.0 + 1e-9);
    }
    CHECK_EQ_INT(tide__hist_bucket(UINT64_MAX), TIDE_HIST_BUCKETS - 1);
    for (int b = 1; b < TIDE_HIST_BUCKETS; b++)
        CHECK(tide__hist_upper_us(b) > tide__hist_upper_us(b - 1));
}

TEST(hist_quantiles_within_the_bucket_error)
{
    tide_hist h;
    tide_hist_reset(&h);
    CHECK(tide_hist_quantile(&h, 0.5) == 0);
    /* 1..10000 ms uniformly: p50 ~ 5 s, p99 ~ 9.9 s */
    for (int i = 1; i <= 10000; i++) tide_hist_add(&h, i / 1000.0);
    CHECK_EQ_INT((int)h.count, 10000);
    double p50 = tide_hist_quantile(&h, 0.5), p99 = tide_hist_quantile(&h, 0.99);
    CHECK(p50 >= 5.0 && p50 <= 5.0 * 1.0625 + 0.001);
    CHECK(p99 >= 9.9 && p99 <= 9.9 * 1.0625 + 0.001);
    CHECK(fabs(h.sum - 50005.0) < 0.01);
    /* le counts never exceed the true count below the bound, and are within one bucket */
    uint64_t le1 = tide_hist_count_le(&h, 1.0);
    CHECK(le1 <= 1000 && le1 >= 940);
    CHECK(tide_hist_count_le(&h, 1e9) == 10000);
    tide_hist_add(&h, -1); /* counts as 0 */
    tide_hist_add(&h, NAN);
    CHECK(tide_hist_count_le(&h, 0.000001) == 2);
    tide_hist m;
    tide_hist_reset(&m);
    tide_hist_merge(&m, &h);
    CHECK(m.count == h.count);
}

TEST_LIST_BEGIN
TEST_ENTRY(hist_buckets_are_contiguous_and_tight)
TEST_ENTRY(hist_quantiles_within_the_bucket_error)
TEST_LIST_END
