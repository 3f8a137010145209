/* pool.c - asynchronous libpq pools (see pool.h for the contract): slots, the idle list,
 * jobs waiting for a connection, refill with a reconnect backoff, and the job API.
 *
 * One connection's life (connect, states, pipeline, statement cache, cancel) is pgconn.c;
 * resolving the DSN's host off the loop is resolve.c; errors and their HTTP status are
 * pgerror.c. A connection reports every state change here (tide__pool_conn_moved), which
 * keeps the counters, the idle stack (LIFO: the warmest connection first) and the slots.
 *
 * Nothing is freed inside its own callback chain: every entry into the pool (a connection's
 * callback, a pool timer, a public call) is bracketed by tide__pool_enter/leave, and closed
 * connections wait on a reap list that the outermost leave frees (`depth` counts them, as in
 * http.c). tide_pool_free() from inside a callback frees the pool at that same point.
 *
 * tide_pool_fail_all() takes jobs off the pool at once but calls their done() from the next
 * loop pass (an ev_prepare watcher): it is called from inside another pool's done() (a
 * breaker opening) and must not run a second chain of callbacks inside the first.
 *
 * Pipelining: once every connection is open and busy, a waiting job may be queued behind the
 * jobs of the busy connection with the fewest (at most `pipeline` per connection) instead of
 * waiting for one to finish: Postgres then reads the next job as soon as it ends the previous
 * one, without sleeping until tide has read the answer and sent the next, and tide reads
 * several answers per wakeup. The pool never pipelines below its size (a new connection
 * serves a job sooner than a queue), nor behind a job that has run for a tenth of
 * acquire_timeout already (it may be slow: what waits behind it is not bounded by
 * acquire_timeout, only by the statement timeouts ahead of it), nor on an upstream without
 * `prepare`: a transaction-mode PgBouncer (1.18, Debian 12's) releases its server at the
 * first ReadyForQuery, with later Syncs of the same client still queued. What is queued on a connection is flushed once per
 * loop pass (an ev_prepare watcher), in one send per connection. */
#include "pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgconn.h"
#include "resolve.h"
#include "retry.h"

/* Connection attempts in flight per pool. The SCRAM handshake costs a few milliseconds of CPU
 * on the loop thread per connection: a pool refilling all at once (after a restart) must not
 * stall every other request, so it refills a couple of connections at a time. */
#define MAX_CONNECTING  2
/* Reconnect backoff after failed attempts: base * 2^n, at most the cap, equal jitter. */
#define BACKOFF_BASE    0.05
#define BACKOFF_CAP     2.0
#define RESOLVE_MAX_AGE 60.0 /* seconds a resolved address is used before re-resolving */

/* A job failed by tide_pool_fail_all(), waiting for its done() on the next loop pass. */
typedef struct deferred {
    tide_pgjob *job;
    tide_pg_error err;
    struct deferred *next;
} deferred;

struct tide_pool {
    struct ev_loop *loop;
    tide_resolver *resolver; /* NULL when libpq needs no name resolution */
    char *name, *dsn;
    int size, prepare, pipeline;
    double acquire_timeout, connect_timeout, statement_timeout, max_lifetime, idle_timeout;
    int max_size; /* slots allocated; size may shrink below it on reload */
    int connect_failures_in_row;
    double next_connect_at;    /* reconnect backoff: no new connection before this */
    ev_timer retry_timer;      /* wakes waiters when the backoff ends */
    ev_timer idle_timer;       /* closes connections idle longer than idle_timeout */
    ev_prepare failed_watcher; /* calls done() for the jobs on `failed` */
    ev_prepare flush_watcher;  /* sends what jobs queued on connections this pass */
    tide_conn **conns;         /* max_size slots; NULL = free */
    tide_conn *idle;           /* LIFO: the warmest connection first */
    tide_conn *reap;           /* CLOSED, freed when the outermost callback returns */
    deferred *failed, *failed_tail;
    tide_pgjob *wait_head, *wait_tail;
    int nwaiting, nidle, nbusy, nconnecting, nopen;
    long long jobs, errors, connect_failures, acquire_timeouts, pipelined;
    tide_hist acquire_hist, statement_hist;
    struct {
        char cls[3];
        long long n;
    } err_classes[TIDE_POOL_ERROR_CLASSES];
    int nerr_classes;
    int depth; /* pool callbacks and public calls on the stack */
    int closing, free_requested;
};

static void pool_destroy(tide_pool *p);
static void fail_waiters(tide_pool *p, const char *code, const char *msg);
static void defer_failure(tide_pool *p, tide_pgjob *job, tide_pg_error *err);

/* ---- re-entrancy guard and reap -------------------------------------------------------- */

void tide__pool_enter(tide_pool *p) { p->depth++; }

static void reap(tide_pool *p)
{
    tide_conn *c;
    while ((c = p->reap)) {
        p->reap = c->next;
        tide__pgconn_free(c);
    }
}

void tide__pool_leave(tide_pool *p)
{
    if (--p->depth > 0) return;
    reap(p);
    if (p->free_requested) pool_destroy(p);
}

/* ---- connection bookkeeping ------------------------------------------------------------ */

void tide__pool_conn_moved(tide_pool *p, tide_conn *c, tide_pgconn_state from)
{
    switch (from) {
    case TIDE_PGCONN_NEW: p->nopen++; break;
    case TIDE_PGCONN_CONNECTING: p->nconnecting--; break;
    case TIDE_PGCONN_IDLE: {
        p->nidle--;
        tide_conn **pp = &p->idle;
        while (*pp && *pp != c) pp = &(*pp)->next;
        if (*pp) *pp = c->next;
        c->next = NULL;
        break;
    }
    case TIDE_PGCONN_BUSY:
    case TIDE_PGCONN_HELD:
    case TIDE_PGCONN_RESETTING: p->nbusy--; break;
    case TIDE_PGCONN_CLOSED: break;
    }
    switch (c->state) {
    case TIDE_PGCONN_NEW: break;
    case TIDE_PGCONN_CONNECTING: p->nconnecting++; break;
    case TIDE_PGCONN_IDLE:
        p->nidle++;
        c->next = p->idle;
        p->idle = c;
        break;
    case TIDE_PGCONN_BUSY:
    case TIDE_PGCONN_HELD:
    case TIDE_PGCONN_RESETTING: p->nbusy++; break;
    case TIDE_PGCONN_CLOSED:
        p->nopen--;
        for (int i = 0; i < p->max_size; i++)
            if (p->conns[i] == c) {
                p->conns[i] = NULL;
                break;
            }
        c->next = p->reap;
        p->reap = c;
        break;
    }
}

/* After a failed attempt, wait before the next one: retry.c's backoff with equal jitter (at
 * least half the ceiling, so a dead server is not hammered). */
static void backoff_after_failure(tide_pool *p)
{
    double r = (double)rand() / ((double)RAND_MAX + 1.0);
    double delay =
        tide_backoff(++p->connect_failures_in_row, BACKOFF_BASE, BACKOFF_CAP, 0.5 + 0.5 * r);
    p->next_connect_at = ev_now(p->loop) + delay;
    ev_timer_stop(p->loop, &p->retry_timer);
    ev_timer_set(&p->retry_timer, delay, 0.);
    ev_timer_start(p->loop, &p->retry_timer);
}

void tide__pool_connected(tide_pool *p)
{
    p->connect_failures_in_row = 0;
    p->next_connect_at = 0;
    tide__pool_dispatch(p);
}

void tide__pool_connect_failed(tide_pool *p, const char *msg)
{
    p->connect_failures++;
    backoff_after_failure(p);
    /* Nothing else is coming for the waiters unless another connection is open or opening. */
    if (p->nopen == 0) fail_waiters(p, "08001", msg);
}

static void resolved(void *arg, const char *error)
{
    tide_pool *p = arg;
    tide__pool_enter(p);
    if (error && p->nopen == 0) {
        p->connect_failures++;
        backoff_after_failure(p);
        fail_waiters(p, "08001", error);
    }
    tide__pool_dispatch(p);
    tide__pool_leave(p);
}

/* Opens one more connection into a free slot. Returns 0 or an error (no slot, backoff or
 * resolution running, no memory, libpq refused the parameters). */
static int conn_open(tide_pool *p)
{
    int slot = -1;
    if (p->nopen >= p->size) return TIDE_EBUSY;
    if (ev_now(p->loop) < p->next_connect_at) return TIDE_EAGAIN;
    for (int i = 0; i < p->max_size; i++)
        if (!p->conns[i]) {
            slot = i;
            break;
        }
    if (slot < 0) return TIDE_EBUSY;
    const char *const *kw = NULL, *const *val = NULL;
    if (p->resolver) {
        tide_resolve_start(p->resolver, RESOLVE_MAX_AGE);
        if (!tide_resolve_addr(p->resolver)[0]) return TIDE_EAGAIN; /* once resolved */
        tide_resolve_params(p->resolver, &kw, &val);
    }
    tide_conn *c;
    int rc =
        tide__pgconn_open(p, p->loop, p->name, p->prepare, p->dsn, kw, val, p->connect_timeout, &c);
    if (rc == TIDE_ECONN) p->connect_failures++;
    if (rc != 0) return rc;
    p->conns[slot] = c;
    return 0;
}

/* ---- jobs ------------------------------------------------------------------------------ */

/* Counts a failed job under its SQLSTATE class. */
static void count_error(tide_pool *p, const char *code)
{
    p->errors++;
    char cls[3] = { code && code[0] ? code[0] : '?', code && code[0] && code[1] ? code[1] : '?',
                    0 };
    for (int i = 0; i < p->nerr_classes; i++)
        if (memcmp(p->err_classes[i].cls, cls, 3) == 0) {
            p->err_classes[i].n++;
            return;
        }
    if (p->nerr_classes < TIDE_POOL_ERROR_CLASSES) {
        memcpy(p->err_classes[p->nerr_classes].cls, cls, 3);
        p->err_classes[p->nerr_classes++].n = 1;
    }
}

static void fail_job(tide_pool *p, tide_pgjob *job, const char *code, const char *msg)
{
    tide_pg_error e;
    memset(&e, 0, sizeof e);
    /* waiting too long for a connection is a timeout; everything else here is unavailability */
    tide__pgerr_set(&e, code, strcmp(code, "TIDE_ACQUIRE_TIMEOUT") == 0 ? 504 : 503, msg);
    count_error(p, code);
    job->done(job, NULL, &e);
    tide__pgerr_clear(&e);
}

void tide__pool_job_done(tide_pool *p, tide_conn *c, tide_pgjob *job, PGresult *res,
                         tide_pg_error *err)
{
    if (err) count_error(p, err->code);
    if (job->sent_at > 0) {
        tide_hist_add(&p->acquire_hist, job->sent_at - job->queued_at);
        tide_hist_add(&p->statement_hist, ev_time() - job->sent_at);
    }
    if (!c) {
        job->conn = NULL;
    } else if (job->flags & TIDE_PGJOB_KEEP) {
        tide__pgconn_set_state(c, TIDE_PGCONN_HELD); /* even after an error: the holder
                                                         * rolls back */
    } else if (c->job) {
        job->conn = NULL; /* more jobs in flight on c: it stays BUSY */
    } else {
        job->conn = NULL;
        tide_pool_release(c);
    }
    job->done(job, res, err);
}

/* Reports the jobs of an aborted connection's chain: those pipelined behind the first with
 * tide__pgconn_behind's error, then the first with err (last: report may take err over). */
static void settle_chain(tide_pool *p, tide_pgjob *first, tide_pg_error *err,
                         void (*report)(tide_pool *, tide_pgjob *, tide_pg_error *))
{
    tide_pgjob *job = first->next;
    first->next = NULL;
    while (job) {
        tide_pgjob *next = job->next;
        job->next = NULL;
        tide_pg_error behind;
        tide__pgconn_behind(job, err, &behind);
        report(p, job, &behind);
        tide__pgerr_clear(&behind);
        job = next;
    }
    report(p, first, err);
}

static void report_now(tide_pool *p, tide_pgjob *job, tide_pg_error *err)
{
    tide__pool_job_done(p, NULL, job, NULL, err);
}

void tide__pool_jobs_aborted(tide_pool *p, tide_pgjob *list, tide_pg_error *err)
{
    settle_chain(p, list, err, report_now);
}

static void waiter_remove(tide_pgjob *job)
{
    tide_pool *p = job->pool;
    tide_pgjob **pp = &p->wait_head, *prev = NULL;
    while (*pp && *pp != job) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp) return;
    *pp = job->next;
    if (p->wait_tail == job) p->wait_tail = prev;
    job->next = NULL;
    job->waiting = 0;
    p->nwaiting--;
    ev_timer_stop(p->loop, &job->wait_timer);
}

/* Takes the whole queue off the pool (done() callbacks may queue new jobs). */
static tide_pgjob *waiters_detach(tide_pool *p)
{
    tide_pgjob *list = p->wait_head;
    p->wait_head = p->wait_tail = NULL;
    p->nwaiting = 0;
    for (tide_pgjob *job = list; job; job = job->next) {
        job->waiting = 0;
        ev_timer_stop(p->loop, &job->wait_timer);
    }
    return list;
}

static void fail_waiters(tide_pool *p, const char *code, const char *msg)
{
    tide_pgjob *list = waiters_detach(p);
    while (list) {
        tide_pgjob *job = list;
        list = job->next;
        job->next = NULL;
        fail_job(p, job, code, msg);
    }
}

static void wait_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    tide_pgjob *job = w->data;
    tide_pool *p = job->pool;
    tide__pool_enter(p);
    waiter_remove(job);
    p->acquire_timeouts++;
    char msg[160];
    snprintf(msg, sizeof msg, "no connection to upstream %s became free within %.3g s", p->name,
             p->acquire_timeout);
    fail_job(p, job, "TIDE_ACQUIRE_TIMEOUT", msg);
    tide__pool_leave(p);
}

/* The pipeline depth in effect: `pipeline`, where it is safe (see the header). */
static int pipeline_depth(const tide_pool *p)
{
    return p->prepare && p->pipeline > 1 ? p->pipeline : 1;
}

/* Once the pool is at its size with no connection idle, queues the waiting jobs, first
 * come first served, behind the busy connections with the fewest jobs in flight. */
static void pipeline_waiters(tide_pool *p)
{
    int depth = pipeline_depth(p);
    if (depth <= 1 || p->idle || p->nopen < p->size || p->closing) return;
    /* never behind a statement already running for a tenth of acquire_timeout: it may be a
     * slow one, and a job queued behind it waits for it whatever acquire_timeout says */
    double fresh = ev_time() - p->acquire_timeout / 10;
    while (p->wait_head) {
        tide_pgjob *job = p->wait_head;
        tide_conn *best = NULL;
        for (int i = 0; i < p->max_size; i++) {
            tide_conn *c = p->conns[i];
            if (c && tide__pgconn_can_pipeline(c, job, depth) && c->job->sent_at > fresh &&
                (!best || c->njobs < best->njobs))
                best = c;
        }
        if (!best) return;
        waiter_remove(job);
        p->pipelined++;
        tide__pgconn_start_job(best, job, p->statement_timeout);
    }
}

void tide__pool_want_flush(tide_pool *p) { ev_prepare_start(p->loop, &p->flush_watcher); }

static void flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)revents;
    tide_pool *p = w->data;
    ev_prepare_stop(loop, w);
    tide__pool_enter(p);
    for (int i = 0; i < p->max_size; i++)
        if (p->conns[i] && p->conns[i]->want_flush) tide__pgconn_flush(p->conns[i]);
    tide__pool_leave(p);
}

void tide__pool_dispatch(tide_pool *p)
{
    while (p->wait_head && p->idle) {
        tide_pgjob *job = p->wait_head;
        waiter_remove(job);
        tide__pgconn_start_job(p->idle, job, p->statement_timeout);
    }
    pipeline_waiters(p);
    while (p->nwaiting > p->nconnecting && p->nopen < p->size && !p->closing &&
           p->nconnecting < MAX_CONNECTING) {
        int rc = conn_open(p);
        if (rc != 0) {
            if (p->nopen == 0)
                fail_waiters(p, "08001", "could not start a connection to the upstream");
            break;
        }
    }
}

static int pool_run(tide_pool *p, tide_pgjob *job)
{
    if (p->closing) return TIDE_ECLOSED;
    job->pool = p;
    job->conn = NULL;
    job->next = NULL;
    job->waiting = 0;
    p->jobs++;
    if (job->pin) {
        tide_conn *c = job->pin;
        if (c->state != TIDE_PGCONN_HELD || c->pool != p) return TIDE_EINVAL;
        if (c->lost) return TIDE_ECONN;
        tide__pgconn_start_job(c, job, p->statement_timeout);
        return 0;
    }
    if (p->idle && !p->wait_head) {
        tide__pgconn_start_job(p->idle, job, p->statement_timeout);
        return 0;
    }
    ev_timer_init(&job->wait_timer, wait_timeout_cb, p->acquire_timeout, 0.);
    job->wait_timer.data = job;
    ev_timer_start(p->loop, &job->wait_timer);
    job->waiting = 1;
    if (p->wait_tail) p->wait_tail->next = job;
    else p->wait_head = job;
    p->wait_tail = job;
    p->nwaiting++;
    int rc = 0;
    while (p->nwaiting > p->nconnecting && p->nopen < p->size && p->nconnecting < MAX_CONNECTING) {
        if ((rc = conn_open(p)) != 0) break;
    }
    pipeline_waiters(p);
    if (p->nopen == 0 && !(p->resolver && tide_resolve_pending(p->resolver))) {
        /* nothing open and (backoff or libpq refusal) nothing opening: nothing will ever serve
         * it, so fail fast, here (no callback). A first resolution still running is different:
         * the job waits for it (bounded by the acquire timeout). */
        waiter_remove(job);
        if (rc == TIDE_EAGAIN) return TIDE_EAGAIN;
        p->connect_failures++;
        return TIDE_ECONN;
    }
    return 0;
}

int tide_pool_run(tide_pool *p, tide_pgjob *job)
{
    job->queued_at = ev_time();
    job->sent_at = 0;
    tide__pool_enter(p);
    int rc = pool_run(p, job);
    tide__pool_leave(p);
    return rc;
}

int tide_pool_withdraw(tide_pgjob *job)
{
    if (!job->waiting) return TIDE_EBUSY;
    waiter_remove(job);
    return 0;
}

int tide_pool_cancel(tide_pgjob *job)
{
    if (job->waiting) {
        waiter_remove(job);
        return 1;
    }
    /* only a job running alone: a cancel could hit the job pipelined behind it */
    if (job->conn && job->conn->job == job && job->conn->njobs == 1) tide__pgconn_cancel(job->conn);
    return 0;
}

static void pool_release(tide_pool *p, tide_conn *c)
{
    /* only a connection that ran a job or is held comes back; anything else is already the
     * pool's (idle, connecting, rolling back) or gone */
    if (c->state != TIDE_PGCONN_BUSY && c->state != TIDE_PGCONN_HELD) return;
    c->job = NULL;
    if (!tide__pgconn_usable(c)) {
        tide__pgconn_close(c);
        tide__pool_dispatch(p);
        return;
    }
    if (tide__pgconn_in_transaction(c)) {
        /* a caller left a transaction open: roll it back before anyone else gets it */
        if (tide__pgconn_reset(c, p->statement_timeout + 1.0) != 0) {
            tide__pgconn_close(c);
            tide__pool_dispatch(p);
        }
        return;
    }
    double now = ev_now(p->loop);
    if (p->closing) {
        tide__pgconn_close(c);
        return;
    }
    if (c->cancelled || p->nopen > p->size ||
        (p->max_lifetime > 0 && now - c->created_at > p->max_lifetime)) {
        tide__pgconn_close(c); /* retired: cancelled, too old, or the pool shrank */
        tide__pool_dispatch(p);
        return;
    }
    c->idle_since = now;
    tide__pgconn_set_state(c, TIDE_PGCONN_IDLE);
    tide__pool_dispatch(p);
}

void tide_pool_release(tide_conn *c)
{
    tide_pool *p = c->pool;
    tide__pool_enter(p);
    pool_release(p, c);
    tide__pool_leave(p);
}

/* ---- failing everything at once, reporting later --------------------------------------- */

/* Calls done() for every job tide_pool_fail_all() took off the pool. */
static void run_failed(tide_pool *p)
{
    deferred *list = p->failed;
    p->failed = p->failed_tail = NULL;
    while (list) {
        deferred *d = list;
        list = d->next;
        d->job->done(d->job, NULL, &d->err);
        tide__pgerr_clear(&d->err);
        free(d);
    }
}

static void failed_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)revents;
    tide_pool *p = w->data;
    tide__pool_enter(p);
    ev_prepare_stop(loop, w);
    run_failed(p); /* done() may fail more: the watcher is started again */
    tide__pool_leave(p);
}

/* Queues job's done() with err (taken over) for the next loop pass; without memory for
 * that, reports now. */
static void defer_failure(tide_pool *p, tide_pgjob *job, tide_pg_error *err)
{
    count_error(p, err->code);
    deferred *d = malloc(sizeof *d);
    if (!d) {
        job->done(job, NULL, err);
        tide__pgerr_clear(err);
        return;
    }
    d->job = job;
    d->err = *err;
    d->next = NULL;
    memset(err, 0, sizeof *err);
    if (p->failed_tail) p->failed_tail->next = d;
    else p->failed = d;
    p->failed_tail = d;
    ev_prepare_start(p->loop, &p->failed_watcher);
}

void tide_pool_fail_all(tide_pool *p, const char *why)
{
    tide__pool_enter(p);
    char msg[256];
    snprintf(msg, sizeof msg, "upstream %s: %s", p->name, why);
    tide_pgjob *list = waiters_detach(p);
    while (list) {
        tide_pgjob *job = list;
        list = job->next;
        job->next = NULL;
        tide_pg_error e;
        memset(&e, 0, sizeof e);
        tide__pgerr_set(&e, "08006", 503, msg);
        defer_failure(p, job, &e);
    }
    for (int i = 0; i < p->max_size; i++) {
        tide_conn *c = p->conns[i];
        if (!c || !c->job || c->state != TIDE_PGCONN_BUSY) continue;
        tide_pg_error e;
        tide_pgjob *first = tide__pgconn_abort(c, "08006", why, &e);
        if (first) settle_chain(p, first, &e, defer_failure);
        tide__pgerr_clear(&e);
    }
    tide__pool_dispatch(p);
    tide__pool_leave(p);
}

/* ---- pool ------------------------------------------------------------------------------ */

static void retry_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    tide_pool *p = w->data;
    tide__pool_enter(p);
    tide__pool_dispatch(p);
    tide__pool_leave(p);
}

static void idle_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    tide_pool *p = w->data;
    double now = ev_now(loop);
    tide__pool_enter(p);
    for (int i = 0; i < p->max_size; i++) {
        tide_conn *c = p->conns[i];
        if (c && c->state == TIDE_PGCONN_IDLE && p->idle_timeout > 0 &&
            now - c->idle_since > p->idle_timeout)
            tide__pgconn_close(c);
    }
    tide__pool_leave(p);
}

static void pool_apply(tide_pool *p, const tide_pool_config *cfg)
{
    p->size = cfg->size < p->max_size ? cfg->size : p->max_size;
    /* zero takes the defaults of the tables that own these keys: the resilience policy's
     * (upstream.c: acquire 2 s, statement 5 s) and the config file's (config.c: connect 5 s) */
    p->acquire_timeout = cfg->acquire_timeout > 0 ? cfg->acquire_timeout : 2.0;
    p->connect_timeout = cfg->connect_timeout > 0 ? cfg->connect_timeout : 5.0;
    p->statement_timeout = cfg->statement_timeout > 0 ? cfg->statement_timeout : 5.0;
    p->max_lifetime = cfg->max_lifetime;
    p->idle_timeout = cfg->idle_timeout;
    p->pipeline = cfg->pipeline < 1                       ? 1
                  : cfg->pipeline > TIDE_PGCONN_MAX_DEPTH ? TIDE_PGCONN_MAX_DEPTH
                                                          : cfg->pipeline;
}

int tide_pool_new(struct ev_loop *loop, const tide_pool_config *cfg, tide_pool **out)
{
    if (!cfg->name || !cfg->dsn || cfg->size <= 0) return TIDE_EINVAL;
    tide_pool *p = calloc(1, sizeof *p);
    if (!p) return TIDE_ENOMEM;
    p->loop = loop;
    p->name = strdup(cfg->name);
    p->dsn = strdup(cfg->dsn);
    p->prepare = cfg->prepare;
    p->max_size = cfg->max_size > cfg->size ? cfg->max_size : cfg->size;
    pool_apply(p, cfg);
    p->conns = calloc((size_t)p->max_size, sizeof *p->conns);
    if (!p->name || !p->dsn || !p->conns) {
        free(p->name);
        free(p->dsn);
        free(p->conns);
        free(p);
        return TIDE_ENOMEM;
    }
    if (tide_resolve_new(loop, p->dsn, resolved, p, &p->resolver) != 0) {
        free(p->name);
        free(p->dsn);
        free(p->conns);
        free(p);
        return TIDE_EINVAL;
    }
    ev_timer_init(&p->retry_timer, retry_timer_cb, 0., 0.);
    p->retry_timer.data = p;
    ev_prepare_init(&p->failed_watcher, failed_cb);
    p->failed_watcher.data = p;
    ev_prepare_init(&p->flush_watcher, flush_cb);
    p->flush_watcher.data = p;
    ev_timer_init(&p->idle_timer, idle_timer_cb, 1., 1.);
    p->idle_timer.data = p;
    ev_timer_start(loop, &p->idle_timer);
    ev_unref(loop); /* housekeeping alone must not keep the loop running */
    *out = p;
    return 0;
}

void tide_pool_reset_backoff(tide_pool *p) { p->next_connect_at = 0; }

void tide_pool_configure(tide_pool *p, const tide_pool_config *cfg)
{
    tide__pool_enter(p);
    pool_apply(p, cfg);
    /* a smaller pool retires idle connections now and busy ones as they come back */
    while (p->nopen > p->size && p->idle) tide__pgconn_close(p->idle);
    tide__pool_dispatch(p);
    tide__pool_leave(p);
}

/* Frees what is left once nothing of the pool is on the stack. */
static void pool_destroy(tide_pool *p)
{
    reap(p);
    ev_timer_stop(p->loop, &p->retry_timer);
    ev_prepare_stop(p->loop, &p->failed_watcher);
    ev_prepare_stop(p->loop, &p->flush_watcher);
    ev_ref(p->loop);
    ev_timer_stop(p->loop, &p->idle_timer);
    tide_resolve_free(p->resolver);
    free(p->conns);
    free(p->name);
    free(p->dsn);
    free(p);
}

void tide_pool_free(tide_pool *p)
{
    if (!p || p->free_requested) return;
    tide__pool_enter(p);
    p->closing = 1;
    run_failed(p); /* failed earlier: they keep their own error */
    fail_waiters(p, "TIDE_SHUTDOWN", "tide is shutting down");
    for (int i = 0; i < p->max_size; i++) {
        tide_conn *c = p->conns[i];
        if (!c) continue;
        tide_pgjob *job = c->job;
        c->job = c->tail = NULL;
        c->njobs = 0;
        while (job) {
            tide_pgjob *next = job->next;
            job->next = NULL;
            job->conn = NULL;
            fail_job(p, job, "TIDE_SHUTDOWN", "tide is shutting down");
            job = next;
        }
        if (c->state != TIDE_PGCONN_CLOSED) tide__pgconn_close(c);
    }
    p->free_requested = 1;
    tide__pool_leave(p); /* destroys now, or when the outermost callback returns */
}

void tide_pool_get_stats(const tide_pool *p, tide_pool_stats *o)
{
    o->size = p->size;
    o->open = p->nopen;
    o->idle = p->nidle;
    o->busy = p->nbusy;
    o->connecting = p->nconnecting;
    o->waiting = p->nwaiting;
    o->jobs = p->jobs;
    o->errors = p->errors;
    o->connect_failures = p->connect_failures;
    o->acquire_timeouts = p->acquire_timeouts;
    o->pipelined = p->pipelined;
}

const char *tide_pool_name(const tide_pool *p) { return p->name; }

const tide_hist *tide_pool_acquire_hist(const tide_pool *p) { return &p->acquire_hist; }
const tide_hist *tide_pool_statement_hist(const tide_pool *p) { return &p->statement_hist; }

void tide_pool_each_error_class(const tide_pool *p,
                                void (*f)(const char cls[3], long long n, void *arg), void *arg)
{
    for (int i = 0; i < p->nerr_classes; i++) f(p->err_classes[i].cls, p->err_classes[i].n, arg);
}
