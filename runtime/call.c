/* call.c - one database call: choose -> attempt -> settle -> back off -> fall back -> final
 * error (see call.h). */
#include "call.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const tide_call_pool_ops real_pool = {
    .run = tide_pool_run,
    .cancel = tide_pool_cancel,
    .reset_backoff = tide_pool_reset_backoff,
    .release = tide_pool_release,
};

static double now_of(const tide_call *c)
{
    return c->env.now ? c->env.now(c->env.arg) : ev_now(c->env.loop);
}

static double random_of(const tide_call *c)
{
    if (c->env.random) return c->env.random(c->env.arg);
    return (double)rand() / ((double)RAND_MAX + 1.0);
}

static int upstream_of(const tide_call *c) { return c->up ? c->up->index : c->up_index; }

/* Hands the answer over: the call is the completion's from here on. */
static void complete(tide_call *c, PGresult *res, const tide_call_error *err)
{
    ev_timer_stop(c->env.loop, &c->timer);
    c->done(c, res, err);
}

/* Answers with an error from the loop, never from inside the call that started it. */
static void defer_error(tide_call *c, const char *code, int status, const char *msg,
                        double retry_after, int ran)
{
    snprintf(c->ecode, sizeof c->ecode, "%s", code);
    snprintf(c->emsg, sizeof c->emsg, "%s", msg);
    c->estatus = status;
    c->eretry_after = retry_after;
    c->eran = ran;
    c->deferred = 1;
    ev_timer_stop(c->env.loop, &c->timer);
    ev_timer_set(&c->timer, 0., 0.);
    ev_timer_start(c->env.loop, &c->timer);
}

static void fail(tide_call *c, const char *code, int status, const char *msg, const char *detail,
                 const char *hint, int ran)
{
    if (c->starting) { /* never answer before the starting call has returned */
        defer_error(c, code, status, msg ? msg : "", 0, ran);
        return;
    }
    tide_call_error e = { .code = code,
                          .status = status,
                          .message = msg ? msg : "",
                          .detail = detail,
                          .hint = hint,
                          .upstream = upstream_of(c),
                          .ran = ran };
    complete(c, NULL, &e);
}

static void attempt(tide_call *c);

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    tide_call *c = w->data;
    if (c->deferred) {
        tide_call_error e = { .code = c->ecode,
                              .status = c->estatus,
                              .message = c->emsg,
                              .retry_after = c->eretry_after,
                              .upstream = upstream_of(c),
                              .ran = c->eran };
        complete(c, NULL, &e);
    } else {
        attempt(c);
    }
}

/* Whether u may take calls as far as what it depends on goes (a pooler is no use while the
 * Postgres behind it is known to be down) and, for a replica, as far as its lag goes (its
 * last position read, at most three poll intervals old, within the policy's bounds) and the
 * call's floor (the caller's last write: a replica that has not replayed it could answer
 * from before it). */
static int usable(tide_upstream *const *ups, const tide_upstream *u, double now, uint64_t floor)
{
    if (u->standby && now >= u->standby_ok_until) return 0;  /* a replica too far behind */
    if (u->standby && floor > u->standby_replayed) return 0; /* not at the caller's writes */
    int dep = u->policy.depends_on;
    return dep < 0 || ups[dep] == u || !tide_upstream_is_open(ups[dep], now);
}

/* Whether u (NULL: none) takes the call now: usable, and its breaker gives a ticket. */
static int takes(tide_call *c, tide_upstream *u, double now, unsigned *ticket)
{
    return u && usable(c->env.ups, u, now, c->floor) &&
           tide_breaker_allow(&u->breaker, now, ticket);
}

/* The upstream to use now: the one asked for, else its fallback while its breaker is open.
 * NULL (with *retry_after) when neither may be used. */
static tide_upstream *choose_upstream(tide_call *c, unsigned *ticket, double *retry_after)
{
    tide_upstream *const *ups = c->env.ups;
    double now = now_of(c);
    tide_upstream *u = ups[c->up_index];
    int fb = u->policy.fallback;
    tide_upstream *alt = fb >= 0 && ups[fb] != u ? ups[fb] : NULL;
    /* a retry after the connection to u failed goes to u's fallback when there is one (a
     * replica that just went away: its breaker has not opened yet, and the read should not
     * spend its attempts on it) */
    if (c->avoid == u->index + 1 && takes(c, alt, now, ticket)) return alt;
    if (takes(c, u, now, ticket)) return u;
    *retry_after = tide_breaker_retry_after(&u->breaker, now);
    int dep = u->policy.depends_on;
    if (dep >= 0) {
        double d = tide_breaker_retry_after(&ups[dep]->breaker, now);
        if (d > *retry_after) *retry_after = d;
    }
    return takes(c, alt, now, ticket) ? alt : NULL;
}

/* Whether a failed attempt may run again: only when it cannot have done anything twice. */
static int safe_to_retry(const tide_call *c, const tide_pg_error *e)
{
    const char *code = e->code;
    if (strcmp(code, "08001") == 0) return 1;                               /* never connected */
    if (strcmp(code, "08006") == 0) return !e->sent || c->read;             /* lost */
    if (strcmp(code, "40001") == 0 || strcmp(code, "40P01") == 0) return 1; /* rolled back */
    if (strncmp(code, "57P0", 4) == 0) return 1; /* shut down before commit */
    return 0;
}

/* An attempt on c->up failed (its ticket is settled): retry it, or map the final error. ran:
 * the job ran (0: the pool could not start it). */
static void attempt_failed(tide_call *c, const tide_pg_error *e, int ran)
{
    tide_upstream *u = c->up;
    int sent_write = e->sent && !c->read;
    if (!c->aborted && c->attempt < u->policy.retry_attempts && safe_to_retry(c, e) &&
        tide_retry_budget_withdraw(&u->budget)) {
        c->attempt++;
        c->avoid = strncmp(e->code, "08", 2) == 0 ? u->index + 1 : 0;
        u->retries++;
        double delay =
            tide_backoff(c->attempt - 1, u->policy.retry_base, u->policy.retry_cap, random_of(c));
        c->deferred = 0;
        ev_timer_stop(c->env.loop, &c->timer);
        ev_timer_set(&c->timer, delay, 0.);
        ev_timer_start(c->env.loop, &c->timer);
        return;
    }
    const char *code = e->code, *msg = e->message;
    int status = e->status ? e->status : tide_pg_http_status(code, c->authenticated);
    char buf[400];
    if (strcmp(code, "08006") == 0 && sent_write) {
        code = "TIDE_OUTCOME_UNKNOWN";
        status = 503;
        snprintf(buf, sizeof buf,
                 "%s; the write was sent, so it may or may not have been "
                 "applied: check before repeating it",
                 msg ? msg : "connection lost");
        msg = buf;
    } else if (strcmp(code, "57014") == 0) {
        status = c->aborted ? 499 : 504; /* cancelled: statement timeout or client gone */
    }
    fail(c, code, status, msg, e->detail, e->hint, ran);
}

static void job_done(tide_pgjob *job, PGresult *res, const tide_pg_error *err)
{
    tide_call *c = job->ud;
    if (c->up) tide_upstream_settle(c->up, now_of(c), c->ticket, err);
    if (!err) {
        complete(c, res, NULL);
        return;
    }
    /* a transaction that failed to open is no transaction: its connection goes back now */
    if ((job->flags & TIDE_PGJOB_BEGIN) && (job->flags & TIDE_PGJOB_KEEP) && job->conn) {
        c->env.pool->release(job->conn);
        job->conn = NULL;
    }
    if (c->up) {
        attempt_failed(c, err, 1);
        return;
    }
    int status = err->status ? err->status : tide_pg_http_status(err->code, c->authenticated);
    fail(c, err->code, status, err->message, err->detail, err->hint, 1);
}

/* Starts (or restarts) the call on an upstream its breaker allows. */
static void attempt(tide_call *c)
{
    const tide_call_pool_ops *ops = c->env.pool;
    if (c->job.pin) { /* inside a transaction: its connection */
        c->up = NULL;
        if (ops->run(c->pin_pool, &c->job) != 0) {
            if (!(c->job.flags & TIDE_PGJOB_KEEP)) ops->release(c->job.pin);
            defer_error(c, "TIDE_TX_CLOSED", 500, "the transaction's connection is gone", 0, 0);
        }
        return;
    }
    unsigned ticket = 0;
    double retry_after = 0;
    tide_upstream *u = choose_upstream(c, &ticket, &retry_after);
    if (!u) {
        /* A half-open breaker whose probe slots are taken (or an open one whose wait just
         * ended) has no wait left to report, yet refuses: its probes settle within about a
         * second, so say that rather than send a 503 without Retry-After. */
        if (retry_after < 1.0) retry_after = 1.0;
        char msg[160];
        const tide_upstream *asked = c->env.ups[c->up_index];
        snprintf(msg, sizeof msg, "upstream %s is unavailable (%s); retry after %.1f s",
                 tide_upstream_name(c->up_index),
                 asked->standby && now_of(c) >= asked->standby_ok_until
                     ? "too far behind its primary"
                     : "circuit open",
                 retry_after);
        defer_error(c, "TIDE_UPSTREAM_UNAVAILABLE", 503, msg, retry_after, 0);
        return;
    }
    c->up = u;
    c->ticket = ticket;
    /* a standby has no WAL position of its own to give (and refuses to read one) */
    if (u->standby) c->job.flags &= ~TIDE_PGJOB_LSN;
    else c->job.flags |= c->want_lsn;
    c->replayed = u->standby_replayed;
    if (c->attempt == 1) tide_retry_budget_deposit(&u->budget);
    /* a half-open breaker's calls must reach the server: skip the reconnect backoff */
    if (u->breaker.state == TIDE_BREAKER_HALF_OPEN) ops->reset_backoff(u->pool);
    int rc = ops->run(u->pool, &c->job);
    if (rc != 0) {
        tide_pg_error e;
        memset(&e, 0, sizeof e);
        snprintf(e.code, sizeof e.code, "08001");
        e.status = 503;
        char msg[160];
        snprintf(msg, sizeof msg, "cannot connect to upstream %s now%s",
                 tide_upstream_name(u->index), rc == TIDE_EAGAIN ? " (reconnecting)" : "");
        e.message = msg;
        tide_upstream_record(u, now_of(c), ticket, 0);
        attempt_failed(c, &e, 0);
    }
}

int tide_call_start(tide_call *c, const tide_call_env *env, int up_index, tide_call_done done)
{
    if (!done || !env || !env->loop) return TIDE_EINVAL;
    if (c->job.pin ? !c->pin_pool : (up_index < 0 || up_index >= TIDE_UPSTREAMS || !env->ups))
        return TIDE_EINVAL;
    c->env = *env;
    if (!c->env.pool) c->env.pool = &real_pool;
    c->done = done;
    c->up_index = up_index;
    c->up = NULL;
    c->attempt = 1;
    c->deferred = 0;
    c->avoid = 0;
    c->job.done = job_done;
    c->job.ud = c;
    c->want_lsn = c->job.flags & TIDE_PGJOB_LSN;
    ev_init(&c->timer, timer_cb);
    c->timer.data = c;
    c->starting = 1;
    attempt(c);
    c->starting = 0;
    return 0;
}

void tide_call_abort(tide_call *c)
{
    c->aborted = 1;
    if (ev_is_active(&c->timer) && !c->deferred) { /* waiting to retry */
        defer_error(c, "TIDE_CLIENT_GONE", 499, "the client went away", 0, 0);
    } else if (c->env.pool->cancel(&c->job) == 1) {                  /* waiting for a connection */
        if (c->up) tide_breaker_release(&c->up->breaker, c->ticket); /* no outcome */
        defer_error(c, "TIDE_CLIENT_GONE", 499, "the client went away", 0, 0);
    }
}
