/* test_pool.c - the pool's pure parts (SQLSTATE map, connection state moves) and, on a real
 * loop against a listener that never answers, how waiting jobs are failed: never inside the
 * call that failed them, and a pool freed from inside a done() callback.
 *
 * Against a real Postgres when TIDE_TEST_PG_DSN is set (spec/run.sh sets it to its stack;
 * else those tests say "skip"): pipelining - jobs queued behind others on busy connections
 * complete in order with their own results, an error in one (a division by zero, a statement
 * that fails to prepare, a statement timeout) stays its own, a statement whose PREPARE is
 * still on its way is sent unnamed behind it, and a client gone does not cancel a job with
 * others behind it (the cancel could hit theirs); a read-only job cannot write and leaves
 * the jobs after it read-write. Every wait is bounded. */
#include "test.h"
#include "../pool.h"
#include "../lsn.h"
#include "../pgconn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

TEST(sqlstate_maps_to_http_status)
{
    CHECK_EQ_INT(tide_pg_http_status(NULL, 0), 500);
    CHECK_EQ_INT(tide_pg_http_status("", 0), 500);
    CHECK_EQ_INT(tide_pg_http_status("TIDE_ACQUIRE_TIMEOUT", 0), 503);
    CHECK_EQ_INT(tide_pg_http_status("23505", 0), 409);
    CHECK_EQ_INT(tide_pg_http_status("23503", 0), 409);
    CHECK_EQ_INT(tide_pg_http_status("25006", 0), 405);
    CHECK_EQ_INT(tide_pg_http_status("42P01", 0), 404);
    CHECK_EQ_INT(tide_pg_http_status("42883", 0), 404);
    CHECK_EQ_INT(tide_pg_http_status("42501", 0), 401);
    CHECK_EQ_INT(tide_pg_http_status("42501", 1), 403);
    CHECK_EQ_INT(tide_pg_http_status("P0001", 1), 400);
    CHECK_EQ_INT(tide_pg_http_status("08006", 1), 503);
    CHECK_EQ_INT(tide_pg_http_status("53300", 1), 503);
    CHECK_EQ_INT(tide_pg_http_status("53400", 1), 500);
    CHECK_EQ_INT(tide_pg_http_status("57014", 1), 500);
    CHECK_EQ_INT(tide_pg_http_status("28P01", 1), 403);
    CHECK_EQ_INT(tide_pg_http_status("22P02", 1), 400); /* a bad value: the client's */
    CHECK_EQ_INT(tide_pg_http_status("XX000", 1), 500);
}

TEST(connection_states_move_only_along_the_diagram)
{
    CHECK(tide__pgconn_can_move(TIDE_PGCONN_NEW, TIDE_PGCONN_CONNECTING));
    CHECK(tide__pgconn_can_move(TIDE_PGCONN_CONNECTING, TIDE_PGCONN_IDLE));
    CHECK(tide__pgconn_can_move(TIDE_PGCONN_IDLE, TIDE_PGCONN_BUSY));
    CHECK(tide__pgconn_can_move(TIDE_PGCONN_BUSY, TIDE_PGCONN_IDLE));
    CHECK(tide__pgconn_can_move(TIDE_PGCONN_BUSY, TIDE_PGCONN_HELD));
    CHECK(tide__pgconn_can_move(TIDE_PGCONN_BUSY, TIDE_PGCONN_RESETTING));
    CHECK(tide__pgconn_can_move(TIDE_PGCONN_HELD, TIDE_PGCONN_BUSY));
    CHECK(tide__pgconn_can_move(TIDE_PGCONN_HELD, TIDE_PGCONN_RESETTING));
    CHECK(tide__pgconn_can_move(TIDE_PGCONN_RESETTING, TIDE_PGCONN_IDLE));
    for (int s = TIDE_PGCONN_CONNECTING; s < TIDE_PGCONN_CLOSED; s++)
        CHECK(tide__pgconn_can_move((tide_pgconn_state)s, TIDE_PGCONN_CLOSED));
    /* a connection that never connected cannot take a job; a closed one never comes back */
    CHECK(!tide__pgconn_can_move(TIDE_PGCONN_CONNECTING, TIDE_PGCONN_BUSY));
    CHECK(!tide__pgconn_can_move(TIDE_PGCONN_NEW, TIDE_PGCONN_CLOSED));
    CHECK(!tide__pgconn_can_move(TIDE_PGCONN_IDLE, TIDE_PGCONN_HELD));
    CHECK(!tide__pgconn_can_move(TIDE_PGCONN_RESETTING, TIDE_PGCONN_BUSY));
    for (int s = TIDE_PGCONN_NEW; s <= TIDE_PGCONN_CLOSED; s++)
        CHECK(!tide__pgconn_can_move(TIDE_PGCONN_CLOSED, (tide_pgconn_state)s));
}

/* ---- on a loop ------------------------------------------------------------------------- */

typedef struct outcome {
    int calls;
    char code[32];
    int status, sent;
    tide_pool *free_me; /* freed from inside done() when set */
} outcome;

static void record_done(tide_pgjob *job, PGresult *res, const tide_pg_error *err)
{
    (void)res;
    outcome *o = job->ud;
    o->calls++;
    if (err) {
        snprintf(o->code, sizeof o->code, "%s", err->code);
        o->status = err->status;
        o->sent = err->sent;
    }
    if (o->free_me) {
        tide_pool *p = o->free_me;
        o->free_me = NULL;
        tide_pool_free(p);
    }
}

/* A TCP listener that accepts into its backlog and never speaks: libpq stays CONNECTING. */
static int silent_listener(char *dsn, size_t len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 8) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) != 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    snprintf(dsn, len, "host=127.0.0.1 port=%d dbname=x user=x connect_timeout=10",
             ntohs(a.sin_port));
    return fd;
}

static int new_pool(struct ev_loop *loop, const char *dsn, tide_pool **p)
{
    tide_pool_config cfg = {
        .name = "test", .dsn = dsn, .size = 2, .acquire_timeout = 10, .connect_timeout = 10
    };
    return tide_pool_new(loop, &cfg, p);
}

TEST(fail_all_fails_waiters_at_once_and_calls_back_from_the_loop)
{
    char dsn[128];
    int lfd = silent_listener(dsn, sizeof dsn);
    CHECK(lfd >= 0);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    tide_pool *p = NULL;
    CHECK_EQ_INT(new_pool(loop, dsn, &p), 0);
    outcome o1 = { 0 }, o2 = { 0 };
    tide_pgjob j1 = { .sql = "select 1", .done = record_done, .ud = &o1 };
    tide_pgjob j2 = { .sql = "select 2", .done = record_done, .ud = &o2 };
    CHECK_EQ_INT(tide_pool_run(p, &j1), 0);
    CHECK_EQ_INT(tide_pool_run(p, &j2), 0);
    tide_pool_stats s;
    tide_pool_get_stats(p, &s);
    CHECK_EQ_INT(s.waiting, 2);
    CHECK_EQ_INT(s.connecting, 2);

    tide_pool_fail_all(p, "its database is down");
    tide_pool_get_stats(p, &s);
    CHECK_EQ_INT(s.waiting, 0);                        /* off the pool at once ... */
    CHECK_EQ_INT(o1.calls + o2.calls, 0);              /* ... reported from the loop */
    CHECK_EQ_INT(tide_pool_withdraw(&j1), TIDE_EBUSY); /* done() is still coming */
    ev_run(loop, EVRUN_NOWAIT);
    CHECK_EQ_INT(o1.calls, 1);
    CHECK_EQ_INT(o2.calls, 1);
    CHECK_STR(o1.code, "08006");
    CHECK_EQ_INT(o1.status, 503);
    CHECK_EQ_INT(o1.sent, 0);
    tide_pool_get_stats(p, &s);
    CHECK_EQ_INT(s.errors, 2);

    tide_pool_free(p);
    ev_loop_destroy(loop);
    close(lfd);
}

TEST(pool_freed_inside_done_is_destroyed_after_the_callback)
{
    char dsn[128];
    int lfd = silent_listener(dsn, sizeof dsn);
    CHECK(lfd >= 0);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    tide_pool *p = NULL;
    CHECK_EQ_INT(new_pool(loop, dsn, &p), 0);
    outcome o1 = { 0 }, o2 = { 0 };
    o1.free_me = p;
    tide_pgjob j1 = { .sql = "select 1", .done = record_done, .ud = &o1 };
    tide_pgjob j2 = { .sql = "select 2", .done = record_done, .ud = &o2 };
    CHECK_EQ_INT(tide_pool_run(p, &j1), 0);
    CHECK_EQ_INT(tide_pool_run(p, &j2), 0);
    tide_pool_fail_all(p, "gone");
    ev_run(loop, EVRUN_NOWAIT); /* j1's done() frees the pool; j2 still hears */
    CHECK_EQ_INT(o1.calls, 1);
    CHECK_EQ_INT(o2.calls, 1);
    CHECK_STR(o2.code, "08006");
    ev_loop_destroy(loop);
    close(lfd);
}

TEST(shutdown_fails_waiting_jobs)
{
    char dsn[128];
    int lfd = silent_listener(dsn, sizeof dsn);
    CHECK(lfd >= 0);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    tide_pool *p = NULL;
    CHECK_EQ_INT(new_pool(loop, dsn, &p), 0);
    outcome o1 = { 0 };
    tide_pgjob j1 = { .sql = "select 1", .done = record_done, .ud = &o1 };
    CHECK_EQ_INT(tide_pool_run(p, &j1), 0);
    tide_pool_free(p);
    CHECK_EQ_INT(o1.calls, 1);
    CHECK_STR(o1.code, "TIDE_SHUTDOWN");
    ev_loop_destroy(loop);
    close(lfd);
}

/* ---- against a real Postgres: pipelining --------------------------------------------- */

typedef struct live {
    int calls;
    char code[32];
    char value[64];
} live;

static void live_done(tide_pgjob *job, PGresult *res, const tide_pg_error *err)
{
    live *o = job->ud;
    o->calls++;
    if (err) snprintf(o->code, sizeof o->code, "%s", err->code);
    else if (res && PQntuples(res) == 1)
        snprintf(o->value, sizeof o->value, "%s", PQgetvalue(res, 0, 0));
}

static const char *live_dsn(void)
{
    const char *dsn = getenv("TIDE_TEST_PG_DSN");
    if (!dsn || !*dsn) printf("  skip: TIDE_TEST_PG_DSN is not set\n");
    return dsn && *dsn ? dsn : NULL;
}

static int live_pool(struct ev_loop *loop, const char *dsn, double statement_timeout, tide_pool **p)
{
    tide_pool_config cfg = { .name = "live",
                             .dsn = dsn,
                             .size = 2,
                             .prepare = 1,
                             .pipeline = 4,
                             .acquire_timeout = 10,
                             .connect_timeout = 10,
                             .statement_timeout = statement_timeout };
    return tide_pool_new(loop, &cfg, p);
}

/* Runs the loop until every outcome has its call, at most 10 s. */
static int live_wait(struct ev_loop *loop, live *o, int n)
{
    double until = ev_time() + 10;
    for (;;) {
        int left = 0;
        for (int i = 0; i < n; i++) left += o[i].calls == 0;
        if (!left) return 1;
        if (ev_time() > until) return 0;
        ev_run(loop, EVRUN_ONCE);
    }
}

#define NLIVE 12

TEST(pipelined_jobs_complete_in_order_each_with_its_own_outcome)
{
    const char *dsn = live_dsn();
    if (!dsn) return;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    tide_pool *p = NULL;
    CHECK_EQ_INT(live_pool(loop, dsn, 5, &p), 0);
    live o[NLIVE];
    tide_pgjob jobs[NLIVE];
    char a[NLIVE][12];
    const char *vals[NLIVE][2];
    memset(o, 0, sizeof o);
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < NLIVE; i++) {
        snprintf(a[i], sizeof a[i], "%d", i);
        vals[i][0] = a[i];
        vals[i][1] = i == 4 ? "0" : "1"; /* job 4 divides by zero */
        jobs[i].sql = "select $1::int / $2::int";
        jobs[i].nparams = 2;
        jobs[i].values = vals[i];
        jobs[i].done = live_done;
        jobs[i].ud = &o[i];
    }
    /* 6 and 7: a new statement, its PREPARE on its way when the second is queued */
    jobs[6].sql = jobs[7].sql = "select $1::int + 1000 + 0 * $2::int";
    /* 8 and 9: a statement that fails to prepare; the second must not be told that no such
     * prepared statement exists */
    jobs[8].sql = jobs[9].sql = "select $1::int + no_such_column + $2::int";
    for (int i = 0; i < NLIVE; i++) CHECK_EQ_INT(tide_pool_run(p, &jobs[i]), 0);
    CHECK(live_wait(loop, o, NLIVE));
    tide_pool_stats s;
    tide_pool_get_stats(p, &s);
    CHECK(s.pipelined >= 4); /* 2 connections took 12 jobs */
    for (int i = 0; i < NLIVE; i++) {
        CHECK_EQ_INT(o[i].calls, 1);
        if (i == 4) {
            CHECK_STR(o[i].code, "22012");
        } else if (i == 6 || i == 7) {
            char want[16];
            snprintf(want, sizeof want, "%d", i + 1000);
            CHECK_STR(o[i].value, want);
        } else if (i == 8 || i == 9) {
            CHECK_STR(o[i].code, "42703");
        } else {
            CHECK_STR(o[i].code, "");
            CHECK_STR(o[i].value, a[i]);
        }
    }
    /* and the cache is sound afterwards: the statement of 6/7 runs named now */
    live again = { 0 };
    tide_pgjob j = {
        .sql = jobs[6].sql, .nparams = 2, .values = vals[3], .done = live_done, .ud = &again
    };
    CHECK_EQ_INT(tide_pool_run(p, &j), 0);
    CHECK(live_wait(loop, &again, 1));
    CHECK_STR(again.value, "1003");
    tide_pool_free(p);
    ev_loop_destroy(loop);
}

TEST(a_slow_job_delays_the_jobs_behind_it_but_does_not_fail_them)
{
    const char *dsn = live_dsn();
    if (!dsn) return;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    tide_pool *p = NULL;
    CHECK_EQ_INT(live_pool(loop, dsn, 0.4, &p), 0);
    /* both connections open and idle first */
    live w[2] = { { 0 }, { 0 } };
    tide_pgjob wj[2] = { { .sql = "select 1", .done = live_done, .ud = &w[0] },
                         { .sql = "select 1", .done = live_done, .ud = &w[1] } };
    CHECK_EQ_INT(tide_pool_run(p, &wj[0]), 0);
    CHECK_EQ_INT(tide_pool_run(p, &wj[1]), 0);
    CHECK(live_wait(loop, w, 2));
    tide_pool_stats s;
    double until = ev_time() + 5;
    do {
        ev_run(loop, EVRUN_NOWAIT);
        tide_pool_get_stats(p, &s);
    } while (s.idle < 2 && ev_time() < until);
    CHECK_EQ_INT(s.idle, 2);
    long long before = s.pipelined;

    /* 0 runs past the statement timeout (0.4 s); 1 is a client gone (cancel) with jobs
     * behind it; 2-5 queue behind them, two each */
    live o[6];
    tide_pgjob jobs[6];
    memset(o, 0, sizeof o);
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < 6; i++) {
        jobs[i].sql = i == 0   ? "select pg_sleep(0.8)::text"
                      : i == 1 ? "select pg_sleep(0.2)::text"
                               : "select 'ok'";
        jobs[i].flags = TIDE_PGJOB_AUTH; /* sets the statement timeout */
        jobs[i].claims = "{}";
        jobs[i].role = "authenticated";
        jobs[i].done = live_done;
        jobs[i].ud = &o[i];
        CHECK_EQ_INT(tide_pool_run(p, &jobs[i]), 0);
    }
    tide_pool_get_stats(p, &s);
    CHECK_EQ_INT((int)(s.pipelined - before), 4);
    CHECK_EQ_INT(tide_pool_cancel(&jobs[1]), 0); /* running, with others behind it */
    CHECK(live_wait(loop, o, 6));
    CHECK_STR(o[0].code, "57014"); /* its own statement timeout */
    CHECK_STR(o[1].code, "");      /* not cancelled: it ran to its end */
    for (int i = 2; i < 6; i++) {
        CHECK_STR(o[i].code, "");
        CHECK_STR(o[i].value, "ok");
    }

    /* alone on its connection, a client gone does cancel it */
    live lone = { 0 };
    tide_pgjob lj = { .sql = "select pg_sleep(0.3)::text", .done = live_done, .ud = &lone };
    CHECK_EQ_INT(tide_pool_run(p, &lj), 0);
    for (int i = 0; i < 3; i++) ev_run(loop, EVRUN_NOWAIT); /* flushed */
    CHECK_EQ_INT(tide_pool_cancel(&lj), 0);
    CHECK(live_wait(loop, &lone, 1));
    CHECK_STR(lone.code, "57014");
    tide_pool_free(p);
    ev_loop_destroy(loop);
}

TEST(a_read_only_job_cannot_write_and_the_jobs_after_it_can)
{
    const char *dsn = live_dsn();
    if (!dsn) return;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    tide_pool *p = NULL;
    CHECK_EQ_INT(live_pool(loop, dsn, 5, &p), 0);
    /* pipelined on the pool's connections, each job its own transaction */
    static const struct {
        const char *sql;
        int flags;
        const char *code, *value;
    } t[] = {
        { "create temporary table tide_ro_probe (x int)", TIDE_PGJOB_READ_ONLY, "25006", "" },
        { "select current_setting('transaction_read_only')", TIDE_PGJOB_READ_ONLY, "", "on" },
        { "select current_setting('transaction_read_only')", 0, "", "off" },
        { "select current_setting('role')", TIDE_PGJOB_READ_ONLY, "", "authenticated" },
    };
    enum { N = sizeof t / sizeof t[0] };
    live o[N];
    tide_pgjob jobs[N];
    memset(o, 0, sizeof o);
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < N; i++) {
        jobs[i].sql = t[i].sql;
        jobs[i].flags = TIDE_PGJOB_AUTH | t[i].flags;
        jobs[i].claims = "{}";
        jobs[i].role = "authenticated";
        jobs[i].done = live_done;
        jobs[i].ud = &o[i];
        CHECK_EQ_INT(tide_pool_run(p, &jobs[i]), 0);
    }
    CHECK(live_wait(loop, o, N));
    for (int i = 0; i < N; i++) {
        CHECK_STR(o[i].code, t[i].code);
        CHECK_STR(o[i].value, t[i].value);
    }
    /* without AUTH (e.g. inside a transaction of its own) nothing is set */
    live plain = { 0 };
    tide_pgjob pj = { .sql = t[2].sql, .done = live_done, .ud = &plain };
    CHECK_EQ_INT(tide_pool_run(p, &pj), 0);
    CHECK(live_wait(loop, &plain, 1));
    CHECK_STR(plain.value, "off");
    tide_pool_free(p);
    ev_loop_destroy(loop);
}

/* TIDE_PGJOB_LSN: the WAL position read after the statement's commit, in the same pipeline,
 * is past the write (at or after pg_current_wal_lsn() read after it) and never mixes up the
 * jobs pipelined together; a failing statement still fails with its own SQLSTATE. */
TEST(an_lsn_job_reads_the_wal_position_after_its_commit)
{
    const char *dsn = live_dsn();
    if (!dsn) return;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    tide_pool *p = NULL;
    CHECK_EQ_INT(live_pool(loop, dsn, 5, &p), 0);
    enum { N = 8 };
    live o[N];
    tide_pgjob jobs[N];
    memset(o, 0, sizeof o);
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < N; i++) {
        /* txid_current() gives the transaction an xid: its commit writes a WAL record */
        jobs[i].sql = i == 5 ? "select 1 / 0" : "select txid_current()::text";
        jobs[i].flags = TIDE_PGJOB_LSN;
        jobs[i].done = live_done;
        jobs[i].ud = &o[i];
    }
    live before = { 0 };
    tide_pgjob bj = { .sql = "select pg_current_wal_insert_lsn()::text",
                      .done = live_done,
                      .ud = &before };
    CHECK_EQ_INT(tide_pool_run(p, &bj), 0);
    CHECK(live_wait(loop, &before, 1));
    tide_lsn start = 0;
    CHECK_EQ_INT(tide_lsn_parse(before.value, strlen(before.value), &start), 0);
    for (int i = 0; i < N; i++) CHECK_EQ_INT(tide_pool_run(p, &jobs[i]), 0);
    CHECK(live_wait(loop, o, N));
    live after = { 0 };
    tide_pgjob aj = { .sql = "select pg_current_wal_insert_lsn()::text",
                      .done = live_done,
                      .ud = &after };
    CHECK_EQ_INT(tide_pool_run(p, &aj), 0);
    CHECK(live_wait(loop, &after, 1));
    tide_lsn now = 0;
    CHECK_EQ_INT(tide_lsn_parse(after.value, strlen(after.value), &now), 0);
    for (int i = 0; i < N; i++) {
        if (i == 5) {
            CHECK_STR(o[i].code, "22012");
            continue;
        }
        CHECK_STR(o[i].code, "");
        CHECK(strtol(o[i].value, NULL, 10) > 0); /* the statement's own result */
        CHECK(jobs[i].lsn > start); /* past its own commit record, written after `start` */
        CHECK(jobs[i].lsn <= now);
    }
    tide_pool_free(p);
    ev_loop_destroy(loop);
}

TEST_LIST_BEGIN
TEST_ENTRY(sqlstate_maps_to_http_status)
TEST_ENTRY(connection_states_move_only_along_the_diagram)
TEST_ENTRY(fail_all_fails_waiters_at_once_and_calls_back_from_the_loop)
TEST_ENTRY(pool_freed_inside_done_is_destroyed_after_the_callback)
TEST_ENTRY(shutdown_fails_waiting_jobs)
TEST_ENTRY(pipelined_jobs_complete_in_order_each_with_its_own_outcome)
TEST_ENTRY(a_slow_job_delays_the_jobs_behind_it_but_does_not_fail_them)
TEST_ENTRY(a_read_only_job_cannot_write_and_the_jobs_after_it_can)
TEST_ENTRY(an_lsn_job_reads_the_wal_position_after_its_commit)
TEST_LIST_END
