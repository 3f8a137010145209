/* test_breaker.c - the circuit breaker state machine and retry pacing, on a fake clock. */
#include "test.h"
#include "../breaker.h"
#include "../retry.h"

static const tide_breaker_config CFG = { .window = 10,
                                         .failure_rate = 0.5,
                                         .min_calls = 4,
                                         .consecutive = 3,
                                         .open_wait = 2.0,
                                         .half_open_probes = 2 };

static void call(tide_breaker *b, double now, int ok)
{
    unsigned t;
    if (tide_breaker_allow(b, now, &t)) tide_breaker_record(b, now, t, ok);
}

TEST(opens_on_consecutive_failures)
{
    tide_breaker b;
    tide_breaker_init(&b, &CFG);
    call(&b, 0, 0);
    call(&b, 0, 0);
    CHECK_EQ_INT(b.state, TIDE_BREAKER_CLOSED);
    call(&b, 0, 0);
    CHECK_EQ_INT(b.state, TIDE_BREAKER_OPEN);
    CHECK_EQ_INT(b.opened, 1);
}

TEST(success_resets_the_consecutive_count)
{
    tide_breaker b;
    tide_breaker_config c = CFG;
    c.min_calls = 10; /* keep the rate rule out of it */
    tide_breaker_init(&b, &c);
    for (int i = 0; i < 9; i++) call(&b, 0, i % 3 == 2); /* fail, fail, ok, ... */
    CHECK_EQ_INT(b.state, TIDE_BREAKER_CLOSED);
}

TEST(opens_on_failure_rate_once_min_calls_reached)
{
    tide_breaker b;
    tide_breaker_config c = CFG;
    c.consecutive = 0;
    tide_breaker_init(&b, &c);
    call(&b, 0, 1);
    call(&b, 0, 0);
    call(&b, 0, 1);
    CHECK_EQ_INT(b.state, TIDE_BREAKER_CLOSED); /* 3 calls < min_calls */
    call(&b, 0, 0);                             /* 2 of 4 failed = 0.5 */
    CHECK_EQ_INT(b.state, TIDE_BREAKER_OPEN);
}

TEST(window_slides)
{
    tide_breaker b;
    tide_breaker_config c = CFG;
    c.consecutive = 0;
    c.window = 4;
    tide_breaker_init(&b, &c);
    call(&b, 0, 0); /* one failure, then successes push it out */
    for (int i = 0; i < 10; i++) call(&b, 0, 1);
    call(&b, 0, 0); /* 1 failure in the last 4: 0.25 < 0.5 */
    CHECK_EQ_INT(b.state, TIDE_BREAKER_CLOSED);
    CHECK_EQ_INT(b.ring_failures, 1);
}

TEST(open_refuses_without_extending_then_half_opens)
{
    tide_breaker b;
    tide_breaker_init(&b, &CFG);
    for (int i = 0; i < 3; i++) call(&b, 10.0, 0);
    CHECK_EQ_INT(b.state, TIDE_BREAKER_OPEN);
    unsigned t;
    for (double now = 10.0; now < 11.9; now += 0.1)
        CHECK_EQ_INT(tide_breaker_allow(&b, now, &t), 0);
    CHECK(b.rejected >= 19);
    CHECK(tide_breaker_retry_after(&b, 11.5) > 0.49 && tide_breaker_retry_after(&b, 11.5) < 0.51);
    /* refused calls did not move the deadline: at 12.0 probes go through */
    CHECK_EQ_INT(tide_breaker_allow(&b, 12.0, &t), 1);
    CHECK_EQ_INT(b.state, TIDE_BREAKER_HALF_OPEN);
}

TEST(half_open_closes_after_probe_successes)
{
    tide_breaker b;
    tide_breaker_init(&b, &CFG);
    for (int i = 0; i < 3; i++) call(&b, 0, 0);
    unsigned t1, t2, t3;
    CHECK_EQ_INT(tide_breaker_allow(&b, 2.0, &t1), 1);
    CHECK_EQ_INT(tide_breaker_allow(&b, 2.0, &t2), 1);
    CHECK_EQ_INT(tide_breaker_allow(&b, 2.0, &t3), 0); /* only 2 probes */
    tide_breaker_record(&b, 2.1, t1, 1);
    CHECK_EQ_INT(b.state, TIDE_BREAKER_HALF_OPEN);
    tide_breaker_record(&b, 2.1, t2, 1);
    CHECK_EQ_INT(b.state, TIDE_BREAKER_CLOSED);
    CHECK_EQ_INT(b.ring_len, 0); /* a fresh window */
}

TEST(half_open_failure_reopens)
{
    tide_breaker b;
    tide_breaker_init(&b, &CFG);
    for (int i = 0; i < 3; i++) call(&b, 0, 0);
    unsigned t;
    CHECK_EQ_INT(tide_breaker_allow(&b, 5.0, &t), 1);
    tide_breaker_record(&b, 5.0, t, 0);
    CHECK_EQ_INT(b.state, TIDE_BREAKER_OPEN);
    CHECK_EQ_INT(b.opened, 2);
    CHECK_EQ_INT(tide_breaker_allow(&b, 6.9, &t), 0);
    CHECK_EQ_INT(tide_breaker_allow(&b, 7.0, &t), 1);
}

TEST(stale_outcomes_do_not_move_the_state)
{
    tide_breaker b;
    tide_breaker_init(&b, &CFG);
    unsigned early;
    CHECK_EQ_INT(tide_breaker_allow(&b, 0, &early), 1); /* admitted while closed */
    for (int i = 0; i < 3; i++) call(&b, 0, 0);         /* opens */
    unsigned probe;
    CHECK_EQ_INT(tide_breaker_allow(&b, 2.0, &probe), 1); /* half-open */
    tide_breaker_record(&b, 2.0, early, 0);               /* the old call fails late */
    CHECK_EQ_INT(b.state, TIDE_BREAKER_HALF_OPEN);
    CHECK_EQ_INT(b.failures, 4);
}

TEST(reconfigure_keeps_state)
{
    tide_breaker b;
    tide_breaker_init(&b, &CFG);
    for (int i = 0; i < 3; i++) call(&b, 0, 0);
    tide_breaker_config c = CFG;
    c.open_wait = 30;
    tide_breaker_configure(&b, &c);
    CHECK_EQ_INT(b.state, TIDE_BREAKER_OPEN);
    CHECK_EQ_INT(b.opened, 1);
}

TEST(backoff_full_jitter_is_bounded_and_grows)
{
    CHECK(tide_backoff(1, 0.05, 1.0, 0.999) < 0.05);
    CHECK(tide_backoff(1, 0.05, 1.0, 0.0) == 0.0);
    CHECK(tide_backoff(3, 0.05, 1.0, 0.5) > 0.099 && tide_backoff(3, 0.05, 1.0, 0.5) < 0.101);
    CHECK(tide_backoff(30, 0.05, 1.0, 0.999) <= 1.0); /* capped */
    CHECK(tide_backoff(30, 0.05, 1.0, 0.999) > 0.99);
}

TEST(retry_budget_limits_retries_to_a_share_of_calls)
{
    tide_retry_budget b;
    tide_retry_budget_init(&b, 0.2, 3);
    int granted = 0;
    for (int i = 0; i < 10; i++) granted += tide_retry_budget_withdraw(&b);
    CHECK_EQ_INT(granted, 3); /* the initial burst */
    for (int i = 0; i < 100; i++) tide_retry_budget_deposit(&b);
    granted = 0;
    for (int i = 0; i < 10; i++) granted += tide_retry_budget_withdraw(&b);
    CHECK_EQ_INT(granted, 3);                                   /* capped at max */
    for (int i = 0; i < 10; i++) tide_retry_budget_deposit(&b); /* 10 calls -> 2 tokens */
    granted = 0;
    for (int i = 0; i < 10; i++) granted += tide_retry_budget_withdraw(&b);
    CHECK_EQ_INT(granted, 2);
}

TEST_LIST_BEGIN
TEST_ENTRY(opens_on_consecutive_failures)
TEST_ENTRY(success_resets_the_consecutive_count)
TEST_ENTRY(opens_on_failure_rate_once_min_calls_reached)
TEST_ENTRY(window_slides)
TEST_ENTRY(open_refuses_without_extending_then_half_opens)
TEST_ENTRY(half_open_closes_after_probe_successes)
TEST_ENTRY(half_open_failure_reopens)
TEST_ENTRY(stale_outcomes_do_not_move_the_state)
TEST_ENTRY(reconfigure_keeps_state)
TEST_ENTRY(backoff_full_jitter_is_bounded_and_grows)
TEST_ENTRY(retry_budget_limits_retries_to_a_share_of_calls)
TEST_LIST_END
