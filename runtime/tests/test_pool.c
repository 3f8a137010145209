/* test_pool.c - the pool's pure parts (SQLSTATE map, connection state moves) and, on a real
 * loop against a listener that never answers, how waiting jobs are failed: never inside the
 * call that failed them, and a pool freed from inside a done() callback. */
#include "test.h"
#include "../pool.h"
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
    CHECK_EQ_INT(tide_pg_http_status("22P02", 1), 400);      /* a bad value: the client's */
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
    tide_pool *free_me;     /* freed from inside done() when set */
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
    if (o->free_me) { tide_pool *p = o->free_me; o->free_me = NULL; tide_pool_free(p); }
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
    tide_pool_config cfg = { .name = "test", .dsn = dsn, .size = 2, .acquire_timeout = 10,
                             .connect_timeout = 10 };
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
    CHECK_EQ_INT(s.waiting, 0);                 /* off the pool at once ... */
    CHECK_EQ_INT(o1.calls + o2.calls, 0);       /* ... reported from the loop */
    CHECK_EQ_INT(tide_pool_withdraw(&j1), TIDE_EBUSY);   /* done() is still coming */
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
    ev_run(loop, EVRUN_NOWAIT);                /* j1's done() frees the pool; j2 still hears */
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

TEST_LIST_BEGIN
    TEST_ENTRY(sqlstate_maps_to_http_status)
    TEST_ENTRY(connection_states_move_only_along_the_diagram)
    TEST_ENTRY(fail_all_fails_waiters_at_once_and_calls_back_from_the_loop)
    TEST_ENTRY(pool_freed_inside_done_is_destroyed_after_the_callback)
    TEST_ENTRY(shutdown_fails_waiting_jobs)
TEST_LIST_END
