/* pgconn.h - one libpq connection of a pool, in pipeline mode (internal to the pool; callers
 * use pool.h).
 *
 * A connection is in exactly one state, and tide__pgconn_set_state() is the only code that
 * changes it; every change is reported to the owning pool (tide__pool_conn_moved) so the
 * pool's counters, idle list and reap list follow:
 *
 *   NEW -> CONNECTING -> IDLE <-> BUSY -> HELD -> BUSY ...      (any state but NEW -> CLOSED)
 *                          ^       |        |
 *                          +--- RESETTING <-+   (a caller left a transaction open: ROLLBACK)
 *
 *   CONNECTING  PQconnectPoll running, connect timeout armed
 *   IDLE        on the pool's idle list, watched for the server closing it
 *   BUSY        running one job's pipeline, or several (pipelined: see below), the first
 *               job's client-side deadline armed
 *   HELD        kept by a caller between the jobs of an explicit transaction
 *   RESETTING   rolling back what a caller left open
 *   CLOSED      socket closed, watchers stopped; the struct waits on the pool's reap list
 *
 * A job is one pipeline: [BEGIN] [set_config(claims, role, timeout)] [PREPARE] statement SYNC.
 * A BUSY connection may take more jobs behind the first (the pool's `pipeline` depth, when all
 * its connections are busy): each job is its own implicit transaction ended by its own Sync,
 * so an error in one ends at its Sync and the next runs normally; the server reads the queued
 * jobs without sleeping in between and tide reads every ready result per wakeup. Jobs complete
 * in order; `job` is the first (whose results are being read), the others follow it through
 * job->next. Only plain jobs are pipelined: never a transaction's (BEGIN, KEEP or pinned).
 * With `prepare` the connection keeps a cache of named prepared statements (tide_<id>, ids
 * never reused); a statement whose PREPARE is still on its way is sent unnamed by the jobs
 * behind it (the PREPARE may yet fail). A running statement is cancelled server-side on a
 * short thread (PQcancel blocks). Sends are buffered and flushed once per loop pass, for every
 * job queued on the connection in that pass. The connection never frees itself and never
 * logs: it reports to its pool through the tide__pool_* functions below, from inside
 * tide__pool_enter/leave. */
#ifndef TIDE_PGCONN_H
#define TIDE_PGCONN_H

#include <stdint.h>
#include <ev.h>
#include <libpq-fe.h>
#include "pool.h"

#define TIDE_PGCONN_STMTS 128 /* prepared statements per connection (power of two) */
#define TIDE_PGCONN_ITEMS \
    8                            /* most results one job's pipeline produces: 7, or 8 with an
                                   * LSN read (never with BEGIN) */
#define TIDE_PGCONN_MAX_DEPTH 16 /* most jobs pipelined on one connection */
#define TIDE_PGCONN_RING      (TIDE_PGCONN_ITEMS * TIDE_PGCONN_MAX_DEPTH) /* a power of two */

typedef enum tide_pgconn_state {
    TIDE_PGCONN_NEW,
    TIDE_PGCONN_CONNECTING,
    TIDE_PGCONN_IDLE,
    TIDE_PGCONN_BUSY,
    TIDE_PGCONN_HELD,
    TIDE_PGCONN_RESETTING,
    TIDE_PGCONN_CLOSED,
} tide_pgconn_state;

typedef struct tide__stmt {
    uint32_t hash;
    char name[16]; /* server-side: "tide_<id>"; ids are never reused */
    char *sql;     /* NULL = free slot */
    int ready;     /* its PREPARE succeeded (0: on its way) */
} tide__stmt;

struct tide_conn {
    tide_pool *pool;
    struct ev_loop *loop;
    const char *name;        /* the pool's upstream name (lives as long as the pool) */
    int prepare;             /* cache named prepared statements */
    PGconn *pg;              /* NULL once CLOSED */
    tide_pgconn_state state; /* written by tide__pgconn_set_state() alone */
    ev_io io;
    ev_timer timer; /* connect timeout, then the running job's deadline */
    int io_events;
    int want_flush;  /* jobs were queued this loop pass: the pool flushes them */
    int cancelled;   /* a cancel request is on its way: never reuse (it could hit
                                 * the next job's statement) */
    int send_failed; /* sending the job failed: reported from the timer, never from
                                 * inside tide_pool_run() */
    int lost;        /* HELD, and the server closed it: kept (its holder still points
                                 * at it) until released */
    double created_at, idle_since;
    tide_pgjob *job;       /* the first job in flight (its results come next), or NULL */
    tide_pgjob *tail;      /* the last job in flight */
    int njobs;             /* jobs in flight */
    double deadline_after; /* the client-side deadline of a job once it is first */
    double timeout_s;      /* the statement_timeout timeout_ms holds (0: none yet) */
    char timeout_ms[24];   /* its milliseconds as set_config's text */
    /* what each result in flight is for: a ring, item kind in the low 4 bits, the statement
     * cache slot of a PREPARE above them */
    unsigned short items[TIDE_PGCONN_RING];
    unsigned ihead, itail;
    PGresult *stmt_res; /* the first job's statement result, its error below */
    uint64_t lsn;       /* the first job's LSN read (TIDE_PGJOB_LSN), 0 until it comes */
    tide_pg_error err;
    int have_err;
    int auth_prepared; /* 0: not prepared, 1: PREPARE on its way, 2: prepared */
    unsigned next_stmt_id;
    tide__stmt stmts[TIDE_PGCONN_STMTS];
    tide_conn *next; /* the pool's idle list while IDLE, its reap list once CLOSED */
};

/* Whether a connection may move from `from` to `to` (pure). */
int tide__pgconn_can_move(tide_pgconn_state from, tide_pgconn_state to);

/* The one function that changes c->state; reports the move to the pool. A move the diagram
 * above does not allow is a bug (asserted). */
void tide__pgconn_set_state(tide_conn *c, tide_pgconn_state to);

/* Starts connecting, without blocking, with dsn or (when kw is not NULL) the keyword/value
 * arrays. On 0, *out is CONNECTING and belongs to pool p. Returns TIDE_ENOMEM, or TIDE_ECONN
 * when libpq refused the parameters (nothing is left behind). */
TIDE_MUST_CHECK int tide__pgconn_open(tide_pool *p, struct ev_loop *loop, const char *name,
                                      int prepare, const char *dsn, const char *const *kw,
                                      const char *const *val, double connect_timeout,
                                      tide_conn **out);

/* Queues job's pipeline on an IDLE or HELD connection (-> BUSY), or behind the jobs of a BUSY
 * one (tide__pgconn_can_pipeline), with the given server-side statement_timeout (and a
 * client-side deadline one second later, from when it is first in line). The pool flushes it
 * (tide__pgconn_flush) before the loop waits again. The outcome reaches tide__pool_job_done()
 * from the loop, never from inside this call. */
void tide__pgconn_start_job(tide_conn *c, tide_pgjob *job, double statement_timeout);

/* 1 when job may be pipelined behind the jobs of c, a BUSY connection holding fewer than
 * depth jobs (none of them a transaction's), else 0. */
int tide__pgconn_can_pipeline(const tide_conn *c, const tide_pgjob *job, int depth);

/* Sends what start_job queued on c (c->want_flush); a connection that cannot send is failed
 * with its jobs. Called from the pool's prepare watcher. */
void tide__pgconn_flush(tide_conn *c);

/* Rolls back what a caller left open (-> RESETTING; IDLE or CLOSED when it ends). Returns 0,
 * or TIDE_ECONN when the ROLLBACK could not be sent (the caller closes c). */
TIDE_MUST_CHECK int tide__pgconn_reset(tide_conn *c, double timeout);

/* 1 when c can take another job (not lost, connection good), else 0. */
int tide__pgconn_usable(const tide_conn *c);
/* 1 when a transaction is open (or in an unknown state) on c. */
int tide__pgconn_in_transaction(const tide_conn *c);

/* Takes the jobs in flight off c and closes c. Returns the first (its conn cleared), the others
 * following it through ->next, with *err filled for the first (code, 503/504, message, sent)
 * for the caller to report (tide__pgconn_behind for the others), or NULL when c ran none
 * (*err is then zeroed). A job whose pipeline was sent and that fails for a reason other than
 * a lost connection is cancelled server-side first. */
tide_pgjob *tide__pgconn_abort(tide_conn *c, const char *code, const char *why, tide_pg_error *err);

/* The error of a job that was pipelined behind one that failed with first (the connection is
 * gone with both): a lost connection (08006, 503), sent when its own pipeline had left. */
void tide__pgconn_behind(const tide_pgjob *job, const tide_pg_error *first, tide_pg_error *err);

/* Closes c now (-> CLOSED: socket closed, watchers stopped, results dropped); the pool frees
 * the struct later with tide__pgconn_free(). The caller has settled c's job. */
void tide__pgconn_close(tide_conn *c);

/* Frees a CLOSED connection (the pool's reap). */
void tide__pgconn_free(tide_conn *c);

/* Asks the server to cancel what c is running, on a short thread (at most a few at once;
 * silently skipped beyond that). c will not be reused afterwards. */
void tide__pgconn_cancel(tide_conn *c);

/* ---- the pool's side (pool.c): what a connection reports -------------------------------- */

/* c moved from `from` to c->state: counters, the idle list, the slot and the reap list. */
void tide__pool_conn_moved(tide_pool *p, tide_conn *c, tide_pgconn_state from);
/* Brackets every connection callback: connections closed inside are freed when the
 * outermost bracket of the pool is left. */
void tide__pool_enter(tide_pool *p);
void tide__pool_leave(tide_pool *p);
/* A connection became IDLE after connecting: the reconnect backoff is over. */
void tide__pool_connected(tide_pool *p);
/* A connection attempt failed (the connection is already CLOSED); msg is one line. */
void tide__pool_connect_failed(tide_pool *p, const char *msg);
/* job ended on c (c is NULL when the connection was lost and closed): res or err (the other
 * NULL), both owned by the caller after the return. Settles c (unless more jobs are in
 * flight on it), then calls job->done. */
void tide__pool_job_done(tide_pool *p, tide_conn *c, tide_pgjob *job, PGresult *res,
                         tide_pg_error *err);
/* Hands idle connections to waiting jobs and opens new ones as needed. */
void tide__pool_dispatch(tide_pool *p);
/* c has jobs to flush before the loop waits again. */
void tide__pool_want_flush(tide_pool *p);
/* Every job of an aborted connection (a list from tide__pgconn_abort): the first with err, the
 * others with tide__pgconn_behind's. */
void tide__pool_jobs_aborted(tide_pool *p, tide_pgjob *list, tide_pg_error *err);

#endif
