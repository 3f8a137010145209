/* test_call.c - call orchestration (runtime/call.c) on a fake pool, a fake clock and a fixed
 * jitter: retries, the no-retry rule for sent writes, fallback, the retry budget, timeouts and
 * the breaker, abort, and answers that never arrive inside tide_call_start. Upstreams are real
 * (tide_upstream_init) with their health probes stopped, on a private ev loop; nothing here
 * opens a socket. */
#include "test.h"
#include "../call.h"

#include <stdio.h>

/* The fake pool: records what the call asked for; the test plays the pool's callback. */
static struct fake {
    double now, random;
    int starting; /* inside tide_call_start */
    int runs, run_failures, run_rc;
    tide_pool *last_pool;
    tide_pgjob *job;
    int cancels, cancel_rc, resets, releases;
    tide_conn *released;
    /* the completion */
    int done_calls, done_in_start, ok;
    char code[64], message[400];
    int status, upstream, ran;
    double retry_after;
} F;

static char pool_mem[TIDE_UPSTREAMS], conn_mem[2];
#define POOL(i) ((tide_pool *)&pool_mem[i])
#define CONN(i) ((tide_conn *)&conn_mem[i])

static int fake_run(tide_pool *pool, tide_pgjob *job)
{
    F.runs++;
    F.last_pool = pool;
    F.job = job;
    if (F.run_failures > 0) {
        F.run_failures--;
        return F.run_rc;
    }
    return 0;
}

static int fake_cancel(tide_pgjob *job)
{
    (void)job;
    F.cancels++;
    return F.cancel_rc;
}

static void fake_reset_backoff(tide_pool *pool)
{
    (void)pool;
    F.resets++;
}

static void fake_release(tide_conn *conn)
{
    F.releases++;
    F.released = conn;
}

static const tide_call_pool_ops fake_ops = {
    .run = fake_run,
    .cancel = fake_cancel,
    .reset_backoff = fake_reset_backoff,
    .release = fake_release,
};

static double fake_now(void *arg) { return ((struct fake *)arg)->now; }

static double fake_random(void *arg) { return ((struct fake *)arg)->random; }

typedef struct rig {
    struct ev_loop *loop;
    tide_upstream store[TIDE_UPSTREAMS];
    tide_upstream *ups[TIDE_UPSTREAMS];
    tide_call_env env;
} rig;

/* Three upstreams on fake pools whose breakers never open by themselves (tests open them by
 * hand), each with the default retry policy: 3 attempts, backoff 0.05..1 s, budget 0.2. */
static void rig_init(rig *r)
{
    memset(&F, 0, sizeof F);
    F.now = 100.0;
    r->loop = ev_loop_new(EVFLAG_AUTO);
    tide_resilience res;
    tide_resilience_defaults(&res);
    res.breaker.consecutive = 0;
    res.breaker.window = TIDE_BREAKER_MAX_WINDOW;
    res.breaker.min_calls = TIDE_BREAKER_MAX_WINDOW;
    for (int i = 0; i < TIDE_UPSTREAMS; i++) {
        tide_upstream_init(&r->store[i], r->loop, i, POOL(i), &res);
        tide_upstream_stop(&r->store[i]); /* no health probes on a fake pool */
        r->ups[i] = &r->store[i];
    }
    r->env = (tide_call_env){ .loop = r->loop,
                              .ups = r->ups,
                              .pool = &fake_ops,
                              .now = fake_now,
                              .random = fake_random,
                              .arg = &F };
}

static void rig_free(rig *r) { ev_loop_destroy(r->loop); }

static void on_done(tide_call *c, PGresult *res, const tide_call_error *err)
{
    (void)c;
    (void)res;
    F.done_calls++;
    F.done_in_start += F.starting;
    if (!err) {
        F.ok = 1;
        return;
    }
    snprintf(F.code, sizeof F.code, "%s", err->code);
    snprintf(F.message, sizeof F.message, "%s", err->message);
    F.status = err->status;
    F.upstream = err->upstream;
    F.ran = err->ran;
    F.retry_after = err->retry_after;
}

static int start(rig *r, tide_call *c, int up)
{
    F.starting = 1;
    int rc = tide_call_start(c, &r->env, up, on_done);
    F.starting = 0;
    return rc;
}

/* The pool's callback for the job in flight: success (code NULL) or an error. */
static void finish(const char *code, int sent, int status)
{
    tide_pg_error e;
    memset(&e, 0, sizeof e);
    if (code) snprintf(e.code, sizeof e.code, "%s", code);
    e.sent = sent;
    e.status = status;
    e.message = "server closed the connection unexpectedly";
    F.job->done(F.job, NULL, code ? &e : NULL);
}

/* Runs the loop until the completion has run (or nothing is left to run). */
static void spin(rig *r)
{
    for (int i = 0; i < 100 && !F.done_calls; i++) ev_run(r->loop, EVRUN_ONCE);
}

/* Runs the loop until the call has asked the pool `runs` times. */
static void spin_until_runs(rig *r, int runs)
{
    for (int i = 0; i < 100 && F.runs < runs && !F.done_calls; i++) ev_run(r->loop, EVRUN_ONCE);
}

TEST(retry_after_dead_connection)
{
    rig r;
    rig_init(&r);
    tide_call c = { 0 };
    c.job.sql = "INSERT INTO t VALUES (1)";
    F.random = 0.5;
    CHECK_EQ_INT(start(&r, &c, TIDE_UP_DIRECT), 0);
    CHECK_EQ_INT(F.runs, 1);
    CHECK(F.last_pool == POOL(TIDE_UP_DIRECT));
    finish("08006", 0, 503); /* lost before the write was sent */
    CHECK_EQ_INT(F.done_calls, 0);
    CHECK_EQ_INT(F.runs, 1); /* backing off: base 0.05 s x jitter 0.5 */
    double left = ev_timer_remaining(r.loop, &c.timer);
    CHECK(left > 0.024 && left < 0.026);
    CHECK_EQ_INT(r.store[0].retries, 1);
    spin_until_runs(&r, 2);
    CHECK_EQ_INT(F.runs, 2);
    finish(NULL, 0, 0);
    CHECK_EQ_INT(F.done_calls, 1);
    CHECK_EQ_INT(F.ok, 1);
    CHECK_EQ_INT(c.attempt, 2);
    CHECK_EQ_INT(r.store[0].breaker.calls, 2); /* each attempt settled its ticket */
    CHECK_EQ_INT(r.store[0].breaker.failures, 1);
    CHECK(r.store[0].budget.tokens > 8.99 && r.store[0].budget.tokens < 9.01);
    rig_free(&r);
}

TEST(no_retry_of_a_write_already_sent)
{
    rig r;
    rig_init(&r);
    tide_call c = { 0 };
    c.job.sql = "UPDATE t SET n = n + 1";
    CHECK_EQ_INT(start(&r, &c, TIDE_UP_DIRECT), 0);
    finish("08006", 1, 503);
    CHECK_EQ_INT(F.done_calls, 1);
    CHECK_STR(F.code, "TIDE_OUTCOME_UNKNOWN");
    CHECK_EQ_INT(F.status, 503);
    CHECK(strstr(F.message, "server closed the connection unexpectedly; the write was sent, "
                            "so it may or may not have been applied") != NULL);
    CHECK_EQ_INT(F.ran, 1);
    CHECK_EQ_INT(F.upstream, TIDE_UP_DIRECT);
    spin(&r);
    CHECK_EQ_INT(F.runs, 1); /* exactly one attempt */
    CHECK_EQ_INT(r.store[0].retries, 0);
    rig_free(&r);
}

TEST(a_read_sent_is_retried)
{
    rig r;
    rig_init(&r);
    tide_call c = { 0 };
    c.job.sql = "SELECT 1";
    c.read = 1;
    CHECK_EQ_INT(start(&r, &c, TIDE_UP_DIRECT), 0);
    finish("08006", 1, 503);
    CHECK_EQ_INT(F.done_calls, 0);
    spin_until_runs(&r, 2);
    CHECK_EQ_INT(F.runs, 2);
    finish(NULL, 0, 0);
    CHECK_EQ_INT(F.ok, 1);
    rig_free(&r);
}

TEST(fallback_on_open_breaker)
{
    rig r;
    rig_init(&r);
    tide_upstream *tx = &r.store[TIDE_UP_TRANSACTION];
    tx->policy.fallback = TIDE_UP_DIRECT;
    tx->breaker.state = TIDE_BREAKER_OPEN;
    tx->breaker.open_until = F.now + 5;
    tide_call c = { 0 };
    c.job.sql = "SELECT 1";
    CHECK_EQ_INT(start(&r, &c, TIDE_UP_TRANSACTION), 0);
    CHECK_EQ_INT(F.runs, 1);
    CHECK(F.last_pool == POOL(TIDE_UP_DIRECT));
    CHECK(c.up == &r.store[TIDE_UP_DIRECT]);
    finish(NULL, 0, 0);
    CHECK_EQ_INT(F.ok, 1);
    CHECK_EQ_INT(r.store[TIDE_UP_DIRECT].breaker.calls, 1);
    CHECK_EQ_INT(tx->breaker.calls, 0);
    rig_free(&r);
}

/* A read whose connection failed is retried on the upstream's fallback: a replica that just
 * went away (its breaker not open yet) does not get the read's remaining attempts. */
TEST(a_read_whose_connection_failed_is_retried_on_the_fallback)
{
    rig r;
    rig_init(&r);
    r.store[TIDE_UP_REPLICA].policy.fallback = TIDE_UP_DIRECT;
    tide_call c = { 0 };
    c.job.sql = "SELECT 1";
    c.read = 1;
    CHECK_EQ_INT(start(&r, &c, TIDE_UP_REPLICA), 0);
    CHECK(F.last_pool == POOL(TIDE_UP_REPLICA));
    finish("08006", 1, 0);
    spin_until_runs(&r, 2);
    CHECK_EQ_INT(F.runs, 2);
    CHECK(F.last_pool == POOL(TIDE_UP_DIRECT));
    finish(NULL, 0, 0);
    CHECK_EQ_INT(F.ok, 1);
    /* a failure that is not the connection's (a serialization failure) retries where it was */
    memset(&F, 0, sizeof F);
    F.now = 100.0;
    tide_call d = { 0 };
    d.job.sql = "SELECT 1";
    d.read = 1;
    CHECK_EQ_INT(start(&r, &d, TIDE_UP_REPLICA), 0);
    finish("40001", 1, 0);
    spin_until_runs(&r, 2);
    CHECK(F.last_pool == POOL(TIDE_UP_REPLICA));
    finish(NULL, 0, 0);
    rig_free(&r);
}

/* A replica takes a call only while its last lag reading holds and it has replayed the
 * call's floor (the caller's last write); otherwise the call goes to its fallback. */
TEST(a_replica_takes_calls_only_within_its_lag_and_past_the_floor)
{
    rig r;
    rig_init(&r);
    tide_upstream *rep = &r.store[TIDE_UP_REPLICA];
    rep->policy.fallback = TIDE_UP_DIRECT;
    rep->standby = 1;
    rep->standby_ok_until = F.now + 1;
    rep->standby_replayed = 1000;
    static const struct {
        double ok_until;
        uint64_t floor;
        int want;
    } cases[] = {
        { 1, 0, TIDE_UP_REPLICA },   { 1, 999, TIDE_UP_REPLICA }, { 1, 1000, TIDE_UP_REPLICA },
        { 1, 1001, TIDE_UP_DIRECT }, { 0, 0, TIDE_UP_DIRECT }, /* reading too old */
        { -1, 500, TIDE_UP_DIRECT },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        F.runs = 0;
        F.done_calls = 0;
        rep->standby_ok_until = F.now + cases[i].ok_until;
        tide_call c = { 0 };
        c.job.sql = "SELECT 1";
        c.read = 1;
        c.floor = cases[i].floor;
        CHECK_EQ_INT(start(&r, &c, TIDE_UP_REPLICA), 0);
        CHECK_EQ_INT(F.runs, 1);
        CHECK(F.last_pool == POOL(cases[i].want));
        finish(NULL, 0, 0);
    }
    /* no fallback: refused as unavailable, saying why */
    rep->policy.fallback = -1;
    rep->standby_ok_until = 0;
    memset(&F, 0, sizeof F);
    F.now = 100.0;
    tide_call c = { 0 };
    c.job.sql = "SELECT 1";
    c.read = 1;
    CHECK_EQ_INT(start(&r, &c, TIDE_UP_REPLICA), 0);
    spin(&r);
    CHECK_EQ_INT(F.runs, 0);
    CHECK_STR(F.code, "TIDE_UPSTREAM_UNAVAILABLE");
    CHECK(strstr(F.message, "too far behind its primary") != NULL);
    rig_free(&r);
}

TEST(open_breaker_without_fallback_is_unavailable)
{
    rig r;
    rig_init(&r);
    tide_upstream *tx = &r.store[TIDE_UP_TRANSACTION];
    tx->breaker.state = TIDE_BREAKER_OPEN;
    tx->breaker.open_until = F.now + 5;
    tide_call c = { 0 };
    c.job.sql = "SELECT 1";
    CHECK_EQ_INT(start(&r, &c, TIDE_UP_TRANSACTION), 0);
    CHECK_EQ_INT(F.runs, 0);
    CHECK_EQ_INT(F.done_calls, 0); /* answered from the loop */
    spin(&r);
    CHECK_EQ_INT(F.done_calls, 1);
    CHECK_EQ_INT(F.done_in_start, 0);
    CHECK_STR(F.code, "TIDE_UPSTREAM_UNAVAILABLE");
    CHECK_EQ_INT(F.status, 503);
    CHECK(F.retry_after > 4.99 && F.retry_after < 5.01);
    CHECK_EQ_INT(F.upstream, TIDE_UP_TRANSACTION);
    CHECK_EQ_INT(F.ran, 0);
    CHECK(strstr(F.message, "upstream transaction is unavailable (circuit open); retry after "
                            "5.0 s") != NULL);
    rig_free(&r);
}

/* A half-open breaker with its one probe slot taken refuses with no wait left on its clock;
 * the refusal still says when to come back (a 503 always carries Retry-After). */
TEST(half_open_refusal_still_says_retry_after)
{
    rig r;
    rig_init(&r);
    tide_upstream *tx = &r.store[TIDE_UP_TRANSACTION];
    tx->breaker.state = TIDE_BREAKER_HALF_OPEN;
    tx->breaker.cfg.half_open_probes = 1;
    tx->breaker.probes_inflight = 1;
    tide_call c = { 0 };
    c.job.sql = "SELECT 1";
    CHECK_EQ_INT(start(&r, &c, TIDE_UP_TRANSACTION), 0);
    spin(&r);
    CHECK_STR(F.code, "TIDE_UPSTREAM_UNAVAILABLE");
    CHECK_EQ_INT(F.status, 503);
    CHECK(F.retry_after >= 1.0);
    rig_free(&r);
}

TEST(a_pooler_whose_database_is_down_falls_back)
{
    rig r;
    rig_init(&r);
    tide_upstream *tx = &r.store[TIDE_UP_TRANSACTION], *dir = &r.store[TIDE_UP_DIRECT];
    tx->policy.depends_on = TIDE_UP_DIRECT;
    tx->policy.fallback = TIDE_UP_SESSION;
    dir->breaker.state = TIDE_BREAKER_OPEN;
    dir->breaker.open_until = F.now + 3;
    tide_call c = { 0 };
    c.job.sql = "SELECT 1";
    CHECK_EQ_INT(start(&r, &c, TIDE_UP_TRANSACTION), 0);
    CHECK(F.last_pool == POOL(TIDE_UP_SESSION));
    finish(NULL, 0, 0);
    CHECK_EQ_INT(F.ok, 1);
    rig_free(&r);
}

TEST(budget_exhausted)
{
    rig r;
    rig_init(&r);
    tide_upstream *u = &r.store[TIDE_UP_DIRECT];
    u->budget.ratio = 0; /* first attempts earn nothing */
    u->budget.tokens = 0;
    tide_call c = { 0 };
    c.job.sql = "SELECT 1";
    c.read = 1;
    CHECK_EQ_INT(start(&r, &c, TIDE_UP_DIRECT), 0);
    finish("08006", 0, 503);
    CHECK_EQ_INT(F.done_calls, 1);
    CHECK_STR(F.code, "08006");
    CHECK_EQ_INT(F.status, 503);
    spin(&r);
    CHECK_EQ_INT(F.runs, 1);
    CHECK_EQ_INT(u->retries, 0);
    rig_free(&r);
}

TEST(attempts_run_out)
{
    rig r;
    rig_init(&r);
    r.store[TIDE_UP_DIRECT].policy.retry_attempts = 2;
    tide_call c = { 0 };
    c.job.sql = "SELECT 1";
    CHECK_EQ_INT(start(&r, &c, TIDE_UP_DIRECT), 0);
    finish("40001", 1, 0); /* rolled back: safe even after it was sent */
    spin_until_runs(&r, 2);
    CHECK_EQ_INT(F.runs, 2);
    finish("40001", 1, 0);
    CHECK_EQ_INT(F.done_calls, 1);
    CHECK_STR(F.code, "40001");
    CHECK_EQ_INT(F.status, tide_pg_http_status("40001", 0));
    rig_free(&r);
}

TEST(statement_timeout_counts_acquire_timeout_does_not)
{
    rig r;
    rig_init(&r);
    tide_breaker *b = &r.store[TIDE_UP_DIRECT].breaker;
    tide_call c = { 0 };
    c.job.sql = "SELECT pg_sleep(10)";
    CHECK_EQ_INT(start(&r, &c, TIDE_UP_DIRECT), 0);
    finish("TIDE_STATEMENT_TIMEOUT", 1, 504);
    CHECK_EQ_INT(F.done_calls, 1);
    CHECK_STR(F.code, "TIDE_STATEMENT_TIMEOUT");
    CHECK_EQ_INT(F.status, 504);
    CHECK_EQ_INT(F.runs, 1); /* never retried */
    CHECK_EQ_INT(b->calls, 1);
    CHECK_EQ_INT(b->failures, 1);

    tide_call d = { 0 };
    d.job.sql = "SELECT 1";
    F.done_calls = 0;
    CHECK_EQ_INT(start(&r, &d, TIDE_UP_DIRECT), 0);
    finish("TIDE_ACQUIRE_TIMEOUT", 0, 504);
    CHECK_EQ_INT(F.done_calls, 1);
    CHECK_STR(F.code, "TIDE_ACQUIRE_TIMEOUT");
    CHECK_EQ_INT(F.status, 504);
    CHECK_EQ_INT(b->calls, 1); /* tide's own queue: says nothing of upstream */
    CHECK_EQ_INT(b->failures, 1);
    rig_free(&r);
}

TEST(cancelled_statement_is_504_or_499_once_the_client_is_gone)
{
    rig r;
    rig_init(&r);
    tide_call c = { 0 };
    c.job.sql = "SELECT pg_sleep(10)";
    CHECK_EQ_INT(start(&r, &c, TIDE_UP_DIRECT), 0);
    finish("57014", 1, 0);
    CHECK_STR(F.code, "57014");
    CHECK_EQ_INT(F.status, 504);

    tide_call d = { 0 };
    d.job.sql = "SELECT pg_sleep(10)";
    F.done_calls = 0;
    CHECK_EQ_INT(start(&r, &d, TIDE_UP_DIRECT), 0);
    tide_call_abort(&d); /* running: cancelled, ends as the pool says */
    CHECK_EQ_INT(F.cancels, 1);
    CHECK_EQ_INT(F.done_calls, 0);
    finish("57014", 1, 0);
    CHECK_EQ_INT(F.done_calls, 1);
    CHECK_EQ_INT(F.status, 499);
    rig_free(&r);
}

TEST(completion_never_inside_start)
{
    rig r;
    rig_init(&r);
    r.store[TIDE_UP_DIRECT].policy.retry_attempts = 1;
    F.run_failures = 1;
    F.run_rc = TIDE_ECONN;
    tide_call c = { 0 };
    c.job.sql = "SELECT 1";
    CHECK_EQ_INT(start(&r, &c, TIDE_UP_DIRECT), 0);
    CHECK_EQ_INT(F.done_calls, 0);
    CHECK_EQ_INT(r.store[0].breaker.failures, 1); /* cannot connect: a failure */
    spin(&r);
    CHECK_EQ_INT(F.done_calls, 1);
    CHECK_EQ_INT(F.done_in_start, 0);
    CHECK_STR(F.code, "08001");
    CHECK_EQ_INT(F.status, 503);
    CHECK_STR(F.message, "cannot connect to upstream direct now");
    CHECK_EQ_INT(F.ran, 0);
    rig_free(&r);
}

TEST(reconnecting_pool_is_retried)
{
    rig r;
    rig_init(&r);
    F.run_failures = 1;
    F.run_rc = TIDE_EAGAIN;
    tide_call c = { 0 };
    c.job.sql = "INSERT INTO t VALUES (1)";
    CHECK_EQ_INT(start(&r, &c, TIDE_UP_DIRECT), 0);
    CHECK_EQ_INT(F.done_calls, 0);
    spin_until_runs(&r, 2);
    CHECK_EQ_INT(F.runs, 2); /* never connected: safe for a write too */
    finish(NULL, 0, 0);
    CHECK_EQ_INT(F.ok, 1);
    CHECK_EQ_INT(F.done_in_start, 0);
    rig_free(&r);
}

TEST(abort_while_waiting_to_retry)
{
    rig r;
    rig_init(&r);
    F.random = 0.9; /* a backoff long enough to abort in */
    tide_call c = { 0 };
    c.job.sql = "SELECT 1";
    CHECK_EQ_INT(start(&r, &c, TIDE_UP_DIRECT), 0);
    finish("08001", 0, 503);
    CHECK(ev_is_active(&c.timer));
    tide_call_abort(&c);
    CHECK_EQ_INT(F.cancels, 0); /* nothing in the pool to cancel */
    CHECK_EQ_INT(F.done_calls, 0);
    spin(&r);
    CHECK_EQ_INT(F.done_calls, 1);
    CHECK_STR(F.code, "TIDE_CLIENT_GONE");
    CHECK_EQ_INT(F.status, 499);
    CHECK_EQ_INT(F.runs, 1); /* the retry never ran */
    rig_free(&r);
}

TEST(abort_while_waiting_for_a_connection)
{
    rig r;
    rig_init(&r);
    tide_upstream *u = &r.store[TIDE_UP_DIRECT];
    u->breaker.state = TIDE_BREAKER_HALF_OPEN; /* one probe slot: the call takes it */
    u->breaker.cfg.half_open_probes = 1;
    tide_call c = { 0 };
    c.job.sql = "SELECT 1";
    CHECK_EQ_INT(start(&r, &c, TIDE_UP_DIRECT), 0);
    CHECK_EQ_INT(F.resets, 1); /* a half-open call skips the reconnect backoff */
    CHECK_EQ_INT(u->breaker.probes_inflight, 1);
    F.cancel_rc = 1; /* still waiting: withdrawn */
    tide_call_abort(&c);
    CHECK_EQ_INT(u->breaker.probes_inflight, 0); /* ticket released, nothing recorded */
    CHECK_EQ_INT(u->breaker.calls, 0);
    CHECK_EQ_INT(F.done_calls, 0);
    spin(&r);
    CHECK_STR(F.code, "TIDE_CLIENT_GONE");
    CHECK_EQ_INT(F.status, 499);
    rig_free(&r);
}

TEST(failed_begin_gives_its_connection_back_before_retrying)
{
    rig r;
    rig_init(&r);
    tide_call c = { 0 };
    c.job.flags = TIDE_PGJOB_BEGIN | TIDE_PGJOB_AUTH | TIDE_PGJOB_KEEP;
    c.read = 1;
    CHECK_EQ_INT(start(&r, &c, TIDE_UP_SESSION), 0);
    F.job->conn = CONN(0); /* the pool kept it despite the error */
    finish("40P01", 1, 0);
    CHECK_EQ_INT(F.releases, 1);
    CHECK(F.released == CONN(0));
    CHECK(c.job.conn == NULL);
    spin_until_runs(&r, 2);
    CHECK_EQ_INT(F.runs, 2);
    F.job->conn = CONN(1);
    finish(NULL, 0, 0);
    CHECK_EQ_INT(F.ok, 1);
    CHECK(c.job.conn == CONN(1));
    CHECK_EQ_INT(F.releases, 1);
    rig_free(&r);
}

TEST(pinned_job_runs_once_on_its_connection)
{
    rig r;
    rig_init(&r);
    tide_call c = { 0 };
    c.job.sql = "INSERT INTO t VALUES (1)";
    c.job.pin = CONN(0);
    c.job.flags = TIDE_PGJOB_KEEP;
    c.pin_pool = POOL(TIDE_UP_SESSION);
    CHECK_EQ_INT(start(&r, &c, TIDE_UP_SESSION), 0);
    CHECK(F.last_pool == POOL(TIDE_UP_SESSION));
    finish("08006", 1, 503); /* no retry and no outcome mapping in a tx */
    CHECK_EQ_INT(F.done_calls, 1);
    CHECK_STR(F.code, "08006");
    CHECK_EQ_INT(F.ran, 1);
    CHECK_EQ_INT(r.store[TIDE_UP_SESSION].breaker.calls, 0);
    spin(&r);
    CHECK_EQ_INT(F.runs, 1);
    rig_free(&r);
}

TEST(pinned_job_on_a_gone_connection)
{
    rig r;
    rig_init(&r);
    F.run_failures = 2;
    F.run_rc = TIDE_ECONN;
    tide_call c = { 0 }; /* COMMIT: the pool would release its connection */
    c.job.sql = "COMMIT";
    c.job.pin = CONN(0);
    c.pin_pool = POOL(TIDE_UP_DIRECT);
    CHECK_EQ_INT(start(&r, &c, TIDE_UP_DIRECT), 0);
    CHECK_EQ_INT(F.releases, 1);
    CHECK(F.released == CONN(0));
    CHECK_EQ_INT(F.done_calls, 0);
    spin(&r);
    CHECK_STR(F.code, "TIDE_TX_CLOSED");
    CHECK_EQ_INT(F.status, 500);
    CHECK_EQ_INT(F.ran, 0);

    tide_call d = { 0 }; /* a query in the tx: its connection stays held */
    d.job.sql = "SELECT 1";
    d.job.pin = CONN(1);
    d.job.flags = TIDE_PGJOB_KEEP;
    d.pin_pool = POOL(TIDE_UP_DIRECT);
    F.done_calls = 0;
    CHECK_EQ_INT(start(&r, &d, TIDE_UP_DIRECT), 0);
    CHECK_EQ_INT(F.releases, 1);
    spin(&r);
    CHECK_STR(F.code, "TIDE_TX_CLOSED");
    rig_free(&r);
}

TEST(bad_arguments_never_call_back)
{
    rig r;
    rig_init(&r);
    tide_call c = { 0 };
    CHECK_EQ_INT(tide_call_start(&c, &r.env, TIDE_UPSTREAMS, on_done), TIDE_EINVAL);
    CHECK_EQ_INT(tide_call_start(&c, &r.env, 0, NULL), TIDE_EINVAL);
    c.job.pin = CONN(0); /* a pin without its pool */
    CHECK_EQ_INT(tide_call_start(&c, &r.env, 0, on_done), TIDE_EINVAL);
    spin(&r);
    CHECK_EQ_INT(F.runs, 0);
    CHECK_EQ_INT(F.done_calls, 0);
    rig_free(&r);
}

TEST_LIST_BEGIN
TEST_ENTRY(a_read_whose_connection_failed_is_retried_on_the_fallback)
TEST_ENTRY(a_replica_takes_calls_only_within_its_lag_and_past_the_floor)
TEST_ENTRY(retry_after_dead_connection)
TEST_ENTRY(half_open_refusal_still_says_retry_after)
TEST_ENTRY(no_retry_of_a_write_already_sent)
TEST_ENTRY(a_read_sent_is_retried)
TEST_ENTRY(fallback_on_open_breaker)
TEST_ENTRY(open_breaker_without_fallback_is_unavailable)
TEST_ENTRY(a_pooler_whose_database_is_down_falls_back)
TEST_ENTRY(budget_exhausted)
TEST_ENTRY(attempts_run_out)
TEST_ENTRY(statement_timeout_counts_acquire_timeout_does_not)
TEST_ENTRY(cancelled_statement_is_504_or_499_once_the_client_is_gone)
TEST_ENTRY(completion_never_inside_start)
TEST_ENTRY(reconnecting_pool_is_retried)
TEST_ENTRY(abort_while_waiting_to_retry)
TEST_ENTRY(abort_while_waiting_for_a_connection)
TEST_ENTRY(failed_begin_gives_its_connection_back_before_retrying)
TEST_ENTRY(pinned_job_runs_once_on_its_connection)
TEST_ENTRY(pinned_job_on_a_gone_connection)
TEST_ENTRY(bad_arguments_never_call_back)
TEST_LIST_END
