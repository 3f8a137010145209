/* pool.h - asynchronous libpq connection pools, one per upstream (direct, session,
 * transaction). Every job is one round trip in pipeline mode:
 *   [BEGIN] [set_config(claims, role[, read-only])] [PREPARE] statement SYNC
 * so the statement runs under the caller's claims and role inside one implicit transaction
 * (read-only when the job asks: TIDE_PGJOB_READ_ONLY).
 * Connections are opened without blocking (PQconnectStart/PQconnectPoll), kept in pipeline
 * mode, and hold a per-connection cache of named prepared statements when the upstream is one
 * tide owns (never behind a transaction-mode pooler).
 *
 * Inside: pool.c keeps the slots, the idle list, waiting jobs and refill; pgconn.c runs one
 * connection; resolve.c resolves the DSN's host off the loop; pgerror.c holds the errors. */
#ifndef TIDE_POOL_H
#define TIDE_POOL_H

#include <ev.h>
#include <libpq-fe.h>
#include "error.h"
#include "pgerror.h" /* tide_pg_error, tide_pg_http_status() */
#include "hist.h"

typedef struct tide_pool tide_pool;
typedef struct tide_conn tide_conn;
typedef struct tide_pgjob tide_pgjob;

typedef struct tide_pool_config {
    const char *name;         /* upstream name, copied */
    const char *dsn;          /* libpq connection string or URI, copied */
    int size;                 /* most connections open at once */
    int prepare;              /* cache named prepared statements per connection */
    int max_size;             /* slots reserved at creation: size may grow up to it on reload */
    double acquire_timeout;   /* seconds a job may wait for a connection */
    double connect_timeout;   /* seconds a connection attempt may take */
    double statement_timeout; /* seconds: set server-side per job, and a client-side deadline
                              * one second later for a server that does not answer */
    double max_lifetime;      /* seconds; older connections are retired between jobs (0 = off) */
    double idle_timeout;      /* seconds an idle connection is kept (0 = forever) */
    int pipeline;             /* jobs one connection may run in a row without waiting for the
                              * results in between, once every connection is busy (1 = off;
                              * only with `prepare`: see pool.c) */
} tide_pool_config;

enum {
    TIDE_PGJOB_AUTH = 1,      /* send set_config(request.jwt.claims, role) first */
    TIDE_PGJOB_BEGIN = 2,     /* open an explicit transaction first */
    TIDE_PGJOB_KEEP = 4,      /* keep the connection for the caller after the job (job->conn) */
    TIDE_PGJOB_READ_ONLY = 8, /* with AUTH: the same set_config statement makes the transaction
                              * read-only (no round trip of its own), so the statement cannot
                              * write, whatever functions it calls: SQLSTATE 25006 */
    TIDE_PGJOB_LSN = 16,      /* after the statement's transaction commits (its Sync), read the
                              * WAL insert position in the same pipeline: job->lsn, at or after
                              * the end of the commit record (read-your-writes). Not with BEGIN,
                              * nor on a pool without prepare (a transaction-mode pooler) */
};

struct tide_pgjob {
    /* set by the caller; all pointers must stay valid until done() */
    const char *sql; /* may be NULL (only BEGIN/AUTH) */
    int nparams;
    const char *const *values; /* text values, NULL = SQL NULL */
    const char *claims;        /* JSON text for request.jwt.claims (with AUTH) */
    const char *role;          /* database role (with AUTH) */
    const char *label;         /* application_name for the statement (with AUTH; NULL:
                                  * "tide"): the request id, so pg_stat_activity shows it */
    int flags;
    tide_conn *pin; /* run on this held connection instead of acquiring one */
    /* Called once, from the loop, never from inside tide_pool_run(). res is the statement's
     * result (NULL without a statement or on error) and is freed after done() returns;
     * err is NULL on success. With KEEP, job->conn holds the connection afterwards (even
     * after an SQL error) unless the connection was lost (then it is NULL). */
    void (*done)(tide_pgjob *job, PGresult *res, const tide_pg_error *err);
    void *ud;
    uint64_t lsn; /* with TIDE_PGJOB_LSN, set before done(): the WAL position after the
                   * commit, 0 when it could not be read */
    /* internal */
    tide_pool *pool;
    tide_conn *conn;
    tide_pgjob *next;
    ev_timer wait_timer;
    int waiting;
    double queued_at, sent_at; /* ev_time() at tide_pool_run and when the pipeline went */
    int flushed;               /* its whole pipeline (with its Sync) left for the server */
};

/* Creates a pool; no connection is opened until needed. Returns 0 or TIDE_ENOMEM/EINVAL. */
TIDE_MUST_CHECK int tide_pool_new(struct ev_loop *loop, const tide_pool_config *cfg,
                                  tide_pool **out);

/* Starts job: acquires a connection (or uses job->pin), sends the pipeline and calls
 * job->done later. Returns 0 when started; on an error return done() is never called:
 * TIDE_EAGAIN (nothing open and the reconnect backoff is running), TIDE_ECONN (cannot connect,
 * or the held connection is gone), TIDE_ECLOSED (shutting down), TIDE_EINVAL (bad pin). */
TIDE_MUST_CHECK int tide_pool_run(tide_pool *pool, tide_pgjob *job);

/* Fails every job waiting for a connection and every job running on one (the connection is
 * dropped; a running job's error says whether its pipeline was sent). The jobs leave the pool
 * at once; their done() runs from the next loop pass, never inside this call (it is made from
 * inside another job's done(), when a breaker opens). For an upstream whose own upstream (the
 * Postgres behind a pooler) is known to be down: a pooler may queue queries for minutes
 * instead of failing them. */
void tide_pool_fail_all(tide_pool *pool, const char *why);

/* Lets the next job try to connect now, whatever the reconnect backoff says (a half-open
 * breaker's probe must reach the server to learn anything). */
void tide_pool_reset_backoff(tide_pool *pool);

/* Applies new settings (a policy reload) keeping connections and state. */
void tide_pool_configure(tide_pool *pool, const tide_pool_config *cfg);

/* The client behind job went away: a job still waiting is withdrawn (returns 1; done() will
 * not be called); a running one has its query cancelled server-side without blocking (returns
 * 0; done() reports how it ended). */
int tide_pool_cancel(tide_pgjob *job);

/* Withdraws a job that is still waiting for a connection; done() will not be called.
 * Returns 0, or TIDE_EBUSY when the job is already on a connection (it will complete). */
int tide_pool_withdraw(tide_pgjob *job);

/* Returns a held connection (from a KEEP job) to its pool. An open transaction on it is
 * rolled back first. A connection the caller does not hold is left alone. */
void tide_pool_release(tide_conn *conn);

/* Fails waiting and running jobs (TIDE_SHUTDOWN), closes every connection and frees the
 * pool; from inside one of the pool's callbacks, the memory goes when that callback returns. */
void tide_pool_free(tide_pool *pool);

typedef struct tide_pool_stats {
    int size, open, idle, busy, connecting, waiting;
    long long jobs, errors, connect_failures, acquire_timeouts;
    long long pipelined; /* jobs queued behind others on a busy connection */
} tide_pool_stats;
void tide_pool_get_stats(const tide_pool *pool, tide_pool_stats *out);

/* Timings of the jobs that reached a connection: how long each waited for one (acquire), and
 * how long its pipeline took from sending to its last result (statement). */
const tide_hist *tide_pool_acquire_hist(const tide_pool *pool);
const tide_hist *tide_pool_statement_hist(const tide_pool *pool);
/* Failed jobs by SQLSTATE class (the code's first two characters, "TI" for tide's own
 * TIDE_* codes): calls f for each class seen, in no order. */
#define TIDE_POOL_ERROR_CLASSES 48
void tide_pool_each_error_class(const tide_pool *pool,
                                void (*f)(const char cls[3], long long n, void *arg), void *arg);
const char *tide_pool_name(const tide_pool *pool);

#endif
