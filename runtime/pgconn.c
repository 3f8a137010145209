/* pgconn.c - one libpq connection in pipeline mode: connect, state, pipeline, results,
 * statement cache, cancel (see pgconn.h for the states and the contract). */
#include "pgconn.h"
#include "lsn.h"
#include "util.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* $5 (a boolean) makes the transaction read-only: set here, in the statement that is sent
 * anyway, it costs no round trip; CASE leaves the setting alone otherwise (setting it off
 * would fail where the server is read-only by default, e.g. a standby). */
#define AUTH_SQL                                                                        \
    "select set_config('request.jwt.claims', $1, true), set_config('role', $2, true), " \
    "set_config('statement_timeout', $3, true), "                                       \
    "set_config('application_name', $4, true), "                                        \
    "case when $5 then set_config('transaction_read_only', 'on', true) end"
#define AUTH_STMT "tide_auth"

/* I_MIDSYNC: the Sync that commits a job's statement when an LSN read follows it (I_LSN),
 * before the job's own closing I_SYNC */
enum item_kind { I_IGNORE, I_PREPARE, I_AUTHPREP, I_STMT, I_SYNC, I_MIDSYNC, I_LSN };
#define RING_MASK (TIDE_PGCONN_RING - 1)
_Static_assert((TIDE_PGCONN_RING & RING_MASK) == 0, "the item ring is a power of two");
_Static_assert(TIDE_PGCONN_STMTS < 4096, "a statement slot fits above an item's kind");

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents);
static void conn_lost(tide_conn *c, const char *why);

static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}
static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);

/* ---- state ----------------------------------------------------------------------------- */

int tide__pgconn_can_move(tide_pgconn_state from, tide_pgconn_state to)
{
    if (to == TIDE_PGCONN_CLOSED) return from != TIDE_PGCONN_NEW && from != TIDE_PGCONN_CLOSED;
    switch (from) {
    case TIDE_PGCONN_NEW: return to == TIDE_PGCONN_CONNECTING;
    case TIDE_PGCONN_CONNECTING: return to == TIDE_PGCONN_IDLE;
    case TIDE_PGCONN_IDLE: return to == TIDE_PGCONN_BUSY;
    case TIDE_PGCONN_BUSY:
        return to == TIDE_PGCONN_IDLE || to == TIDE_PGCONN_HELD || to == TIDE_PGCONN_RESETTING;
    case TIDE_PGCONN_HELD:
        return to == TIDE_PGCONN_BUSY || to == TIDE_PGCONN_IDLE || to == TIDE_PGCONN_RESETTING;
    case TIDE_PGCONN_RESETTING: return to == TIDE_PGCONN_IDLE;
    case TIDE_PGCONN_CLOSED: return 0;
    }
    return 0;
}

void tide__pgconn_set_state(tide_conn *c, tide_pgconn_state to)
{
    tide_pgconn_state from = c->state;
    assert(tide__pgconn_can_move(from, to));
    c->state = to;
    tide__pool_conn_moved(c->pool, c, from);
}

/* ---- plumbing -------------------------------------------------------------------------- */

static void conn_watch(tide_conn *c, int events)
{
    int fd = PQsocket(c->pg);
    if (events == c->io_events && fd == c->io.fd && ev_is_active(&c->io)) return;
    ev_io_stop(c->loop, &c->io);
    c->io_events = events;
    if (events && fd >= 0) {
        ev_io_set(&c->io, fd, events);
        /* results first: a connection handed its next job sooner keeps Postgres busy */
        ev_set_priority(&c->io, EV_MAXPRI);
        ev_io_start(c->loop, &c->io);
    }
}

static int conn_flush(tide_conn *c)
{
    int rc = PQflush(c->pg);
    if (rc < 0) return -1;
    if (rc == 0)
        for (tide_pgjob *j = c->job; j; j = j->next) j->flushed = 1;
    conn_watch(c, rc == 1 ? EV_READ | EV_WRITE : EV_READ);
    return 0;
}

/* The item ring: what the results in flight are for, in order. */
static void item_push(tide_conn *c, enum item_kind kind, int slot)
{
    assert(c->itail - c->ihead < TIDE_PGCONN_RING);
    c->items[c->itail++ & RING_MASK] = (unsigned short)(kind | (slot + 1) << 4);
}
static enum item_kind item_kind(const tide_conn *c)
{
    return (enum item_kind)(c->items[c->ihead & RING_MASK] & 15);
}
static int item_slot(const tide_conn *c) { return (c->items[c->ihead & RING_MASK] >> 4) - 1; }

static void stmt_cache_clear(tide_conn *c)
{
    for (int i = 0; i < TIDE_PGCONN_STMTS; i++) {
        free(c->stmts[i].sql);
        c->stmts[i].sql = NULL;
        c->stmts[i].ready = 0;
    }
    c->auth_prepared = 0;
}

static void one_line(char *s)
{
    for (; *s; s++)
        if (*s == '\n') *s = ' ';
}

void tide__pgconn_close(tide_conn *c)
{
    ev_io_stop(c->loop, &c->io);
    ev_timer_stop(c->loop, &c->timer);
    if (c->stmt_res) {
        PQclear(c->stmt_res);
        c->stmt_res = NULL;
    }
    tide__pgerr_clear(&c->err);
    stmt_cache_clear(c);
    if (c->pg) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    tide__pgconn_set_state(c, TIDE_PGCONN_CLOSED);
}

void tide__pgconn_free(tide_conn *c) { free(c); }

int tide__pgconn_usable(const tide_conn *c) { return !c->lost && PQstatus(c->pg) == CONNECTION_OK; }

int tide__pgconn_in_transaction(const tide_conn *c)
{
    return PQtransactionStatus(c->pg) != PQTRANS_IDLE;
}

/* ---- connect --------------------------------------------------------------------------- */

int tide__pgconn_open(tide_pool *p, struct ev_loop *loop, const char *name, int prepare,
                      const char *dsn, const char *const *kw, const char *const *val,
                      double connect_timeout, tide_conn **out)
{
    tide_conn *c = calloc(1, sizeof *c);
    if (!c) return TIDE_ENOMEM;
    c->pool = p;
    c->loop = loop;
    c->name = name;
    c->prepare = prepare;
    c->created_at = ev_now(loop);
    c->pg = kw ? PQconnectStartParams(kw, val, 0) : PQconnectStart(dsn);
    if (!c->pg || PQstatus(c->pg) == CONNECTION_BAD) {
        if (c->pg) PQfinish(c->pg);
        free(c);
        return TIDE_ECONN;
    }
    PQsetnonblocking(c->pg, 1);
    /* libpq prints notices (a terminated backend's FATAL, a statement's WARNING) to stderr with
     * a blocking write, around tide's non-blocking log: the errors that matter reach tide as
     * results and are logged there. */
    PQsetNoticeProcessor(c->pg, quiet_notice, NULL);
    tide__pgconn_set_state(c, TIDE_PGCONN_CONNECTING);
    ev_init(&c->io, conn_io_cb);
    c->io.data = c;
    ev_timer_init(&c->timer, conn_timer_cb, connect_timeout, 0.);
    c->timer.data = c;
    ev_timer_start(loop, &c->timer);
    conn_watch(c, EV_WRITE); /* PQconnectStart: first wait for writability */
    *out = c;
    return 0;
}

static void conn_connect_failed(tide_conn *c, const char *why)
{
    tide_pool *p = c->pool;
    char msg[512];
    snprintf(msg, sizeof msg, "could not connect to upstream %s: %s", c->name, why);
    one_line(msg);
    tide__pgconn_close(c);
    tide__pool_connect_failed(p, msg);
}

static void conn_connected(tide_conn *c)
{
    ev_timer_stop(c->loop, &c->timer);
    if (PQenterPipelineMode(c->pg) != 1) {
        conn_connect_failed(c, "pipeline mode refused");
        return;
    }
    c->idle_since = ev_now(c->loop);
    tide__pgconn_set_state(c, TIDE_PGCONN_IDLE);
    conn_watch(c, EV_READ); /* notice the server closing the connection while idle */
    tide__pool_connected(c->pool);
}

static void conn_poll_connect(tide_conn *c)
{
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING: conn_watch(c, EV_READ); break;
    case PGRES_POLLING_WRITING: conn_watch(c, EV_WRITE); break;
    case PGRES_POLLING_OK: conn_connected(c); break;
    default: conn_connect_failed(c, PQerrorMessage(c->pg)); break;
    }
}

/* ---- statement cache ------------------------------------------------------------------- */

/* Looks sql up in the connection's statement cache. Returns the slot and sets *hit, or a
 * slot to fill (evicting by hash position); *hash is sql's, for the entry a miss fills. */
static int stmt_slot(tide_conn *c, const char *sql, int *hit, uint32_t *hash)
{
    uint32_t h = *hash = (uint32_t)tide_fnv1a(sql, strlen(sql), 0);
    int base = (int)(h & (TIDE_PGCONN_STMTS - 1));
    int free_slot = -1;
    for (int i = 0; i < 4; i++) {
        int s = (base + i) & (TIDE_PGCONN_STMTS - 1);
        tide__stmt *e = &c->stmts[s];
        if (e->sql && e->hash == h && strcmp(e->sql, sql) == 0) {
            *hit = 1;
            return s;
        }
        if (!e->sql && free_slot < 0) free_slot = s;
    }
    *hit = 0;
    return free_slot >= 0 ? free_slot : base;
}

/* ---- pipeline -------------------------------------------------------------------------- */

/* Arms the timer to fire on the next loop pass: a send that failed is reported from there. */
static void report_send_failure(tide_conn *c)
{
    c->send_failed = 1;
    conn_watch(c, 0);
    ev_timer_stop(c->loop, &c->timer);
    ev_timer_set(&c->timer, 0., 0.);
    ev_timer_start(c->loop, &c->timer);
}

/* The client-side deadline of the job first in line (armed when it becomes first). */
static void arm_deadline(tide_conn *c)
{
    ev_timer_stop(c->loop, &c->timer);
    ev_timer_set(&c->timer, c->deadline_after, 0.);
    ev_timer_start(c->loop, &c->timer);
}

int tide__pgconn_can_pipeline(const tide_conn *c, const tide_pgjob *job, int depth)
{
    const tide_pgjob *first = c->job;
    return c->state == TIDE_PGCONN_BUSY && first && c->njobs < depth &&
           c->njobs < TIDE_PGCONN_MAX_DEPTH && !c->cancelled && !c->send_failed &&
           !(first->flags & (TIDE_PGJOB_KEEP | TIDE_PGJOB_BEGIN)) && !first->pin &&
           !(job->flags & (TIDE_PGJOB_KEEP | TIDE_PGJOB_BEGIN)) && !job->pin &&
           c->itail - c->ihead <= TIDE_PGCONN_RING - TIDE_PGCONN_ITEMS;
}

/* Queues the statement: named from the cache when its PREPARE went out earlier (and prepared
 * in this pipeline when it is new), unnamed when it cannot be cached or its PREPARE is still
 * on its way. Returns libpq's 1/0. */
static int send_statement(tide_conn *c, tide_pgjob *job)
{
    PGconn *pg = c->pg;
    uint32_t h = 0;
    int ok = 1, hit = 0, slot = c->prepare ? stmt_slot(c, job->sql, &hit, &h) : -1;
    tide__stmt *e = slot >= 0 ? &c->stmts[slot] : NULL;
    if (e && (hit ? !e->ready : (e->sql && !e->ready))) e = NULL; /* a PREPARE in flight */
    if (!e) {
        ok = PQsendQueryParams(pg, job->sql, job->nparams, NULL, job->values, NULL, NULL, 0);
        item_push(c, I_STMT, -1);
        return ok;
    }
    if (!hit) {
        if (e->sql) {
            /* evict: drop the old statement in the same pipeline. If that fails the server
             * keeps an orphan, but names are never reused, so nothing clashes. */
            char sql[11 + sizeof e->name] = "DEALLOCATE ";
            memcpy(sql + 11, e->name, sizeof e->name);
            ok = ok && PQsendQueryParams(pg, sql, 0, NULL, NULL, NULL, NULL, 0);
            item_push(c, I_IGNORE, -1);
            free(e->sql);
        }
        e->sql = strdup(job->sql);
        e->hash = h;
        e->ready = 0;
        /* named once here: tide_<id>, ids never reused */
        char id[20];
        int n = tide_utoa(c->next_stmt_id++, id);
        memcpy(e->name, "tide_", 5);
        memcpy(e->name + 5, id, (size_t)n);
        e->name[5 + n] = '\0';
        ok = ok && e->sql && PQsendPrepare(pg, e->name, job->sql, job->nparams, NULL);
        item_push(c, I_PREPARE, slot);
    }
    ok = ok && PQsendQueryPrepared(pg, e->name, job->nparams, job->values, NULL, NULL, 0);
    item_push(c, I_STMT, -1);
    return ok;
}

void tide__pgconn_start_job(tide_conn *c, tide_pgjob *job, double statement_timeout)
{
    PGconn *pg = c->pg;
    job->sent_at = ev_time();
    job->conn = c;
    job->next = NULL;
    job->flushed = 0;
    if (c->job) { /* pipelined behind the jobs in flight */
        c->tail->next = job;
        c->tail = job;
        c->njobs++;
    } else {
        c->job = c->tail = job;
        c->njobs = 1;
        tide__pgconn_set_state(c, TIDE_PGCONN_BUSY);
        c->ihead = c->itail = 0;
        c->have_err = 0;
        c->lsn = 0;
        c->send_failed = 0;
        /* Client-side deadline: the server's statement_timeout should fire first; this one
         * catches a server that does not answer at all (frozen, partitioned). */
        c->deadline_after = statement_timeout + 1.0;
        arm_deadline(c);
    }
    int ok = 1;
    if (statement_timeout != c->timeout_s) { /* formatted when the policy changes it */
        c->timeout_s = statement_timeout;
        snprintf(c->timeout_ms, sizeof c->timeout_ms, "%.0f", statement_timeout * 1000.0);
    }

    if (job->flags & TIDE_PGJOB_BEGIN) {
        ok = ok && PQsendQueryParams(pg, "BEGIN", 0, NULL, NULL, NULL, NULL, 0);
        item_push(c, I_IGNORE, -1);
    }
    if (job->flags & TIDE_PGJOB_AUTH) {
        const char *vals[5] = { job->claims, job->role, c->timeout_ms,
                                job->label ? job->label : "tide",
                                job->flags & TIDE_PGJOB_READ_ONLY ? "t" : "f" };
        if (c->prepare && c->auth_prepared != 1) {
            if (!c->auth_prepared) {
                ok = ok && PQsendPrepare(pg, AUTH_STMT, AUTH_SQL, 5, NULL);
                item_push(c, I_AUTHPREP, -1);
                c->auth_prepared = 1;
            }
            ok = ok && PQsendQueryPrepared(pg, AUTH_STMT, 5, vals, NULL, NULL, 0);
        } else {
            ok = ok && PQsendQueryParams(pg, AUTH_SQL, 5, NULL, vals, NULL, NULL, 0);
        }
        item_push(c, I_IGNORE, -1);
    }
    if (job->sql) ok = ok && send_statement(c, job);
    /* not through a transaction-mode pooler (an upstream without prepare), which may hand the
     * second transaction of one pipeline to another server mid-way: as with pipelining */
    if ((job->flags & TIDE_PGJOB_LSN) && !(job->flags & TIDE_PGJOB_BEGIN) && c->prepare) {
        /* the statement's implicit transaction (or the COMMIT) ends at this Sync; the read
         * after it runs once the commit is done, so its position is past the commit record */
        ok = ok && PQpipelineSync(pg);
        item_push(c, I_MIDSYNC, -1);
        ok = ok && PQsendQueryParams(pg, "SELECT pg_current_wal_insert_lsn()::text", 0, NULL, NULL,
                                     NULL, NULL, 0);
        item_push(c, I_LSN, -1);
    }
    ok = ok && PQpipelineSync(pg);
    item_push(c, I_SYNC, -1);
    /* report it from the loop: done() must never run inside tide_pool_run() */
    if (!ok) {
        report_send_failure(c);
        return;
    }
    c->want_flush = 1;
    tide__pool_want_flush(c->pool);
}

void tide__pgconn_flush(tide_conn *c)
{
    if (!c->want_flush) return;
    c->want_flush = 0;
    if (c->state == TIDE_PGCONN_CLOSED || c->send_failed) return;
    if (conn_flush(c) != 0) conn_lost(c, PQerrorMessage(c->pg));
}

int tide__pgconn_reset(tide_conn *c, double timeout)
{
    tide__pgconn_set_state(c, TIDE_PGCONN_RESETTING);
    c->job = c->tail = NULL;
    c->njobs = 0;
    c->ihead = c->itail = 0;
    c->have_err = 0;
    ev_timer_stop(c->loop, &c->timer);
    ev_timer_set(&c->timer, timeout, 0.);
    ev_timer_start(c->loop, &c->timer);
    int ok = PQsendQueryParams(c->pg, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0);
    item_push(c, I_IGNORE, -1);
    ok = ok && PQpipelineSync(c->pg);
    item_push(c, I_SYNC, -1);
    if (!ok || conn_flush(c) != 0) return TIDE_ECONN;
    return 0;
}

/* ---- results --------------------------------------------------------------------------- */

/* The job on c is over (the SYNC arrived): hand the outcome to the pool. */
static void conn_complete(tide_conn *c)
{
    tide_pool *p = c->pool;
    tide_pgjob *job = c->job;
    ev_timer_stop(c->loop, &c->timer);
    PGresult *res = c->stmt_res;
    c->stmt_res = NULL;
    if (job) job->lsn = c->lsn;
    c->lsn = 0;
    if (job) {
        c->job = job->next;
        job->next = NULL;
        if (--c->njobs == 0) c->tail = NULL;
        else arm_deadline(c); /* the next in line: its deadline starts now */
    }
    tide_pg_error err = c->err;
    int have_err = c->have_err;
    memset(&c->err, 0, sizeof c->err);
    c->have_err = 0;

    if (job == NULL) { /* an internal ROLLBACK finished */
        if (res) PQclear(res);
        tide__pgerr_clear(&err);
        if (have_err || tide__pgconn_in_transaction(c)) tide__pgconn_close(c);
        else tide__pgconn_set_state(c, TIDE_PGCONN_IDLE);
        tide__pool_dispatch(p);
        return;
    }
    tide__pool_job_done(p, c, job, have_err ? NULL : res, have_err ? &err : NULL);
    if (res) PQclear(res);
    tide__pgerr_clear(&err);
}

tide_pgjob *tide__pgconn_abort(tide_conn *c, const char *code, const char *why, tide_pg_error *err)
{
    tide_pgjob *job = c->job;
    int sent = job && job->flushed;
    c->job = c->tail = NULL;
    c->njobs = 0;
    memset(err, 0, sizeof *err);
    char msg[512];
    snprintf(msg, sizeof msg, "%s upstream %s: %s",
             code[0] == '0' ? "lost the connection to" : "no answer in time from", c->name,
             why && *why ? why : "server closed the connection");
    one_line(msg);
    if (job && sent && code[0] != '0') tide__pgconn_cancel(c); /* stop it server-side */
    tide__pgconn_close(c);
    if (!job) return NULL;
    for (tide_pgjob *j = job; j; j = j->next) j->conn = NULL;
    tide__pgerr_set(err, code, code[0] == '0' ? 503 : 504, msg);
    err->sent = sent;
    return job;
}

void tide__pgconn_behind(const tide_pgjob *job, const tide_pg_error *first, tide_pg_error *err)
{
    memset(err, 0, sizeof *err);
    char msg[600];
    snprintf(msg, sizeof msg, "%s (a statement pipelined ahead of this one failed)",
             first->message ? first->message : "lost the connection");
    tide__pgerr_set(err, "08006", 503, msg);
    err->sent = job->flushed;
}

static void conn_fail(tide_conn *c, const char *code, const char *why)
{
    tide_pool *p = c->pool;
    tide_pg_error e;
    tide_pgjob *list = tide__pgconn_abort(c, code, why, &e);
    if (list) tide__pool_jobs_aborted(p, list, &e);
    tide__pgerr_clear(&e);
    tide__pool_dispatch(p);
}

static void conn_lost(tide_conn *c, const char *why) { conn_fail(c, "08006", why); }

/* Reads whatever results are complete. Returns when more input is needed or the job is
 * over. */
static void conn_read_results(tide_conn *c)
{
    PGconn *pg = c->pg;
    while (c->job || c->state == TIDE_PGCONN_RESETTING) {
        if (PQisBusy(pg)) return;
        PGresult *res = PQgetResult(pg);
        enum item_kind kind = item_kind(c);
        if (kind == I_SYNC || kind == I_MIDSYNC) {
            if (!res) continue; /* defensive: libpq reports NULL between items */
            ExecStatusType st = PQresultStatus(res);
            if (st == PGRES_FATAL_ERROR) {
                /* the implicit transaction failed as it committed (a deferred constraint, a
                 * serialization failure at commit): nothing the statement did is kept */
                if (!c->have_err) {
                    tide__pgerr_from_result(&c->err, res);
                    c->have_err = 1;
                }
                if (c->stmt_res) {
                    PQclear(c->stmt_res);
                    c->stmt_res = NULL;
                }
            }
            PQclear(res);
            if (st != PGRES_PIPELINE_SYNC) continue;
            c->ihead++;
            if (kind == I_MIDSYNC) continue; /* the LSN read and the job's own Sync follow */
            conn_complete(c);
            if (c->state == TIDE_PGCONN_CLOSED) return; /* done() failed the pool */
            continue;                                   /* every ready result per wakeup */
        }
        if (!res) {
            c->ihead++;
            continue;
        }
        ExecStatusType st = PQresultStatus(res);
        if (kind == I_AUTHPREP) c->auth_prepared = st == PGRES_COMMAND_OK ? 2 : 0;
        if (kind == I_PREPARE) {
            tide__stmt *e = &c->stmts[item_slot(c)];
            if (st == PGRES_COMMAND_OK) {
                e->ready = 1;
            } else {
                /* failed or aborted: the name does not exist on the server */
                free(e->sql);
                e->sql = NULL;
            }
        }
        switch (st) {
        case PGRES_FATAL_ERROR:
            if (kind == I_LSN) { /* the position is a bonus: its failure fails nothing */
                PQclear(res);
                break;
            }
            if (!c->have_err) {
                tide__pgerr_from_result(&c->err, res);
                c->have_err = 1;
            }
            PQclear(res);
            break;
        case PGRES_TUPLES_OK:
        case PGRES_COMMAND_OK:
            if (kind == I_LSN) {
                tide_lsn l;
                if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0) &&
                    tide_lsn_parse(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), &l) == 0)
                    c->lsn = l;
                PQclear(res);
            } else if (kind == I_STMT && !c->stmt_res) {
                c->stmt_res = res;
            } else {
                PQclear(res);
            }
            break;
        default: PQclear(res); break;
        }
    }
    /* idle: anything readable here is the server going away or a notice */
    if (PQisBusy(pg) == 0) {
        PGresult *res;
        while ((res = PQgetResult(pg)) != NULL) PQclear(res);
    }
}

/* ---- loop callbacks -------------------------------------------------------------------- */

static void conn_io_event(tide_conn *c, int revents)
{
    if (c->state == TIDE_PGCONN_CONNECTING) {
        conn_poll_connect(c);
        return;
    }
    if (revents & EV_WRITE) {
        if (conn_flush(c) != 0) {
            conn_lost(c, PQerrorMessage(c->pg));
            return;
        }
    }
    if (revents & EV_READ) {
        if (PQconsumeInput(c->pg) != 1 || PQstatus(c->pg) == CONNECTION_BAD) {
            if (c->state == TIDE_PGCONN_IDLE) {
                /* the server closed an unused connection: forget it */
                tide_pool *p = c->pool;
                tide__pgconn_close(c);
                tide__pool_dispatch(p);
                return;
            }
            if (c->state == TIDE_PGCONN_HELD) {
                /* its transaction is gone; the holder learns it on its next call or release */
                c->lost = 1;
                conn_watch(c, 0);
                return;
            }
            conn_lost(c, PQerrorMessage(c->pg));
            return;
        }
        conn_read_results(c);
    }
}

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    tide_conn *c = w->data;
    tide_pool *p = c->pool;
    tide__pool_enter(p);
    conn_io_event(c, revents);
    tide__pool_leave(p);
}

static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    tide_conn *c = w->data;
    tide_pool *p = c->pool;
    tide__pool_enter(p);
    if (c->state == TIDE_PGCONN_CONNECTING) conn_connect_failed(c, "connect timeout");
    else if (c->job && c->send_failed) conn_lost(c, PQerrorMessage(c->pg));
    else if (c->job) conn_fail(c, "TIDE_STATEMENT_TIMEOUT", "statement deadline passed");
    else if (c->state == TIDE_PGCONN_RESETTING) {
        tide__pgconn_close(c);
        tide__pool_dispatch(p);
    }
    tide__pool_leave(p);
}

/* ---- cancel ---------------------------------------------------------------------------- */

/* PQcancel blocks (it connects to the server), so it runs on a short-lived thread; the loop
 * never waits for it. At most MAX_CANCELS run at once: a server that does not answer must
 * not cost a thread per request. */
#define MAX_CANCELS 8
static atomic_int cancels_running;

static void *cancel_thread(void *arg)
{
    PGcancel *cn = arg;
    char err[256];
    (void)PQcancel(cn, err, sizeof err);
    PQfreeCancel(cn);
    atomic_fetch_sub(&cancels_running, 1);
    return NULL;
}

void tide__pgconn_cancel(tide_conn *c)
{
    if (atomic_load(&cancels_running) >= MAX_CANCELS) return;
    PGcancel *cn = PQgetCancel(c->pg);
    if (!cn) return;
    c->cancelled = 1;
    pthread_attr_t attr;
    pthread_t th;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    atomic_fetch_add(&cancels_running, 1);
    if (pthread_create(&th, &attr, cancel_thread, cn) != 0) {
        atomic_fetch_sub(&cancels_running, 1);
        PQfreeCancel(cn);
    }
    pthread_attr_destroy(&attr);
}
