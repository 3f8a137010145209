/* call.h - one database call of a request, from choosing an upstream to the final answer.
 *
 * A call runs its job on the upstream asked for, or on that upstream's fallback while its
 * breaker is open (or while the upstream it depends on is down). Each attempt holds a breaker
 * ticket, settled by the attempt's outcome (tide_upstream_settle). A failed attempt runs again
 * after a jittered backoff when that cannot do anything twice (never connected, lost before the
 * job was sent, rolled back, a read), the policy allows another attempt and the upstream's retry
 * budget has a token. The final error is mapped for the client: a write lost after it was sent
 * becomes TIDE_OUTCOME_UNKNOWN (503), a cancelled statement (57014) 504, or 499 once the client
 * is gone. A job pinned to a held connection (inside a transaction) runs once on it, with no
 * breaker, retry or fallback.
 *
 *   start -> choose -> attempt -> (settle) -> done
 *                 ^                  | failed, safe, budget
 *                 +---- backoff <----+
 *
 * Every outcome reaches the completion from the loop, never inside tide_call_start. The pool,
 * the clock and the jitter's random source come from a tide_call_env, so the logic is tested
 * on fakes (runtime/tests/test_call.c). Call orchestration never logs: the completion does. */
#ifndef TIDE_CALL_H
#define TIDE_CALL_H

#include <ev.h>
#include <libpq-fe.h>
#include "config.h"
#include "error.h"
#include "pool.h"
#include "upstream.h"

typedef struct tide_call tide_call;

/* How a call failed, as the client should see it. Strings are valid during the completion
 * only. */
typedef struct tide_call_error {
    const char *code;          /* SQLSTATE or TIDE_* code */
    int status;                /* HTTP status */
    const char *message;       /* never NULL */
    const char *detail, *hint; /* may be NULL */
    double retry_after;        /* seconds until asking again may help (an open breaker), or 0 */
    int upstream;              /* the upstream last used, else the one asked for */
    int ran;                   /* the error is the job's own outcome; 0 when the job did not
                                  * run this time (no upstream usable, held connection gone,
                                  * client gone while it waited) */
} tide_call_error;

/* Called once per started call, from the loop. On success err is NULL and res is the job's
 * result (may be NULL; freed by the pool after return); on failure res is NULL. call.c does
 * not touch c after the completion returns: the completion may free it. */
typedef void (*tide_call_done)(tide_call *c, PGresult *res, const tide_call_error *err);

/* The pool functions a call uses (NULL in the env: the real tide_pool_*). */
typedef struct tide_call_pool_ops {
    int (*run)(tide_pool *pool, tide_pgjob *job); /* as tide_pool_run */
    int (*cancel)(tide_pgjob *job);               /* as tide_pool_cancel */
    void (*reset_backoff)(tide_pool *pool);       /* as tide_pool_reset_backoff */
    void (*release)(tide_conn *conn);             /* as tide_pool_release */
} tide_call_pool_ops;

/* What a call runs against. Copied by tide_call_start; the pointers must outlive the call. */
typedef struct tide_call_env {
    struct ev_loop *loop;           /* backoff and deferred answers run on it */
    tide_upstream *const *ups;      /* TIDE_UPSTREAMS entries (an alias may repeat one) */
    const tide_call_pool_ops *pool; /* NULL: tide_pool_run, _cancel, _reset_backoff,
                                           * _release */
    double (*now)(void *arg);       /* NULL: ev_now(loop) */
    double (*random)(void *arg);    /* uniform in [0, 1) for jitter; NULL: rand() */
    void *arg;                      /* for now() and random() */
} tide_call_env;

struct tide_call {
    /* set by the caller before tide_call_start (zero the struct first) */
    tide_pgjob job;      /* the statement; job.done and job.ud belong to the call */
    int read;            /* repeating it is harmless even after it was sent (a read,
                                  * a BEGIN) */
    int authenticated;   /* the SQLSTATE -> status mapping: 42501 is 403, else 401 */
    int aborted;         /* the client is gone already (tide_call_abort sets it too) */
    tide_pool *pin_pool; /* with job.pin: the pool that holds that connection */
    uint64_t floor;      /* read-your-writes: a replica that has not replayed this WAL position
                          * takes no part in it (0: any replica within its lag bounds) */
    int want_lsn;        /* TIDE_PGJOB_LSN when job.flags asked for it: each attempt on a
                          * primary reads it, none on a standby */
    int avoid;           /* 1 + the upstream whose connection failed the last attempt (its
                          * retry goes to its fallback when it has one), or 0 */
    uint64_t replayed;   /* on a replica: its replay position (last read) when the attempt
                          * was sent (the result cache's fill check) */
    /* internal */
    tide_call_env env;
    tide_call_done done;
    int up_index;      /* the upstream asked for */
    tide_upstream *up; /* the one in use (the fallback while a breaker is open) */
    unsigned ticket;   /* breaker ticket of the attempt in flight */
    int attempt;       /* 1 = first */
    int starting;      /* inside tide_call_start: answers wait for the loop */
    ev_timer timer;    /* backoff before a retry, or a deferred answer */
    int deferred;      /* the timer delivers the error below instead of retrying */
    char ecode[32];
    char emsg[300];
    int estatus;
    double eretry_after;
    int eran;
};

/* Starts c on upstream up_index (or, with c->job.pin, on that held connection of c->pin_pool)
 * and calls done exactly once, later, from env->loop. Returns 0, or TIDE_EINVAL (bad upstream
 * index, no done, a pin without pin_pool) and then done is never called. A failed job that
 * opens a transaction (TIDE_PGJOB_BEGIN with TIDE_PGJOB_KEEP) gives its connection back before
 * any retry: c->job.conn holds one only after success. A pinned job without TIDE_PGJOB_KEEP
 * hands its connection back even when it cannot start (the pool does when it runs). */
TIDE_MUST_CHECK int tide_call_start(tide_call *c, const tide_call_env *env, int up_index,
                                    tide_call_done done);

/* The client went away: no more retries. A call waiting to retry, or waiting for a connection,
 * ends with TIDE_CLIENT_GONE (499) from the loop (a waiting job's breaker ticket is released,
 * not recorded); a running job is cancelled server-side and ends as the pool reports. */
void tide_call_abort(tide_call *c);

#endif
