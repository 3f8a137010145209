/* replica.c - a replica's lag, polled (see replica.h). */
#include "replica.h"
#include "log.h"

#include <string.h>

/* How long a reading lets the replica take calls: three poll intervals, at least a second (a
 * busy loop or a slow primary can delay a round by more than a short interval, which says
 * nothing about the replica). */
static double stale_after(const tide_resilience *p)
{
    double t = 3 * p->lag_poll_interval;
    return t > 1.0 ? t : 1.0;
}

/* A round is complete once both reads have answered: judge the replica. */
static void judge(tide_replica *r)
{
    double now = ev_now(r->loop);
    const tide_resilience *p = &r->u->policy;
    r->polled_at = now;
    double lag = tide_lag_seconds(&r->lag, now);
    long long bytes = tide_lag_bytes(&r->lag);
    int ok = lag >= 0 && lag * 1000.0 <= p->lag_max_ms &&
             (p->lag_max_bytes == 0 || bytes <= (long long)p->lag_max_bytes);
    if (ok) {
        r->u->standby_ok_until = now + stale_after(p);
        if (!r->was_ok) tide_info("replica: within its lag bounds: takes calls");
    } else {
        r->u->standby_ok_until = 0;
        if (r->was_ok) {
            r->excluded++;
            tide_warn("replica: %.0f ms and %lld bytes behind its primary (bounds %.0f ms, %zu "
                      "bytes): takes no calls until it catches up",
                      lag * 1000.0, bytes, p->lag_max_ms, p->lag_max_bytes);
        }
    }
    r->was_ok = ok;
}

/* Column col of res's first row as an LSN: 1 read, 0 NULL, -1 not an LSN. */
static int read_lsn(PGresult *res, tide_lsn *out, int col)
{
    if (!res || PQntuples(res) < 1 || PQnfields(res) <= col) return -1;
    if (PQgetisnull(res, 0, col)) return 0;
    return tide_lsn_parse(PQgetvalue(res, 0, col), (size_t)PQgetlength(res, 0, col), out) == 0 ? 1
                                                                                               : -1;
}

static int start_job(tide_replica *r, tide_pgjob *job, tide_upstream *u, const char *sql,
                     void (*done)(tide_pgjob *, PGresult *, const tide_pg_error *), int *running);

/* The replica answered and the primary cannot be reached (direct's breaker is open, its pool
 * cannot connect, or the read failed as a lost or refused connection): no write can commit
 * through tide meanwhile, so the replica keeps answering reads at the position it has (a read
 * whose floor it has not replayed still goes to the primary, and fails there). A primary cut
 * off from tide alone (a partition) may take others' writes, which the replica shows as it
 * gets them. */
/* The replica's replay position as this round read it; `at` stands for it when the server is
 * not in recovery (nothing to replay: it is wherever the primary is). */
static void note_replayed(tide_replica *r, double now, tide_lsn at)
{
    tide_lag_replayed(&r->lag, now, r->in_recovery ? r->replayed_now : at);
    r->u->standby_replayed = r->in_recovery ? r->lag.replayed : UINT64_MAX;
}

static void primary_down(tide_replica *r)
{
    double now = ev_now(r->loop);
    note_replayed(r, now, r->lag.replayed);
    r->u->standby_ok_until = now + stale_after(&r->u->policy);
    r->polled_at = now;
    if (!r->primary_down)
        tide_warn("replica: its primary cannot be reached: it answers reads at its last position");
    r->primary_down = r->was_ok = 1;
}

/* The primary's position, read once the replica's has come back. */
static void primary_done(tide_pgjob *job, PGresult *res, const tide_pg_error *err)
{
    tide_replica *r = job->ud;
    r->running_p = 0;
    /* a call on the primary like any other: its outcome feeds direct's breaker, so a primary
     * that only replicas' readers and poolers use is still found down (and the poolers that
     * depend on it fail their queued work) within a few polls, not after five probes */
    tide_upstream_settle(r->primary, ev_now(r->loop), r->p_ticket, err);
    tide_lsn l;
    if (err || read_lsn(res, &l, 0) != 1) {
        r->poll_failures++;
        /* 08: connection exceptions (refused, lost); 57P: the server shutting down */
        if (err && (strncmp(err->code, "08", 2) == 0 || strncmp(err->code, "57P", 3) == 0))
            primary_down(r);
        return;
    }
    double now = ev_now(r->loop);
    if (r->inval_pending && r->p_started > r->inval_last) {
        /* read after the latest invalidation: every invalidated write is at or before it */
        if (l > r->inval_floor) r->inval_floor = l;
        r->inval_pending = 0;
    }
    tide_lag_primary(&r->lag, now, l);
    note_replayed(r, now, l);
    judge(r);
}

static void replica_done(tide_pgjob *job, PGresult *res, const tide_pg_error *err)
{
    tide_replica *r = job->ud;
    r->running_r = 0;
    tide_lsn l = 0;
    /* pg_is_in_recovery(), then the replay position: a server that is not in recovery may
     * still answer the position its crash recovery reached at start, so the flag decides */
    int got = err || !res || PQntuples(res) < 1 || PQnfields(res) < 2 ? -1 : read_lsn(res, &l, 1);
    if (got < 0 || PQgetisnull(res, 0, 0)) {
        r->poll_failures++;
        return;
    }
    r->in_recovery = PQgetvalue(res, 0, 0)[0] == 't' && got == 1;
    r->replayed_now = l;
    if (r->running_p) return; /* the primary's last read is still out */
    if (!tide_breaker_allow(&r->primary->breaker, ev_now(r->loop), &r->p_ticket)) {
        primary_down(r); /* direct's breaker is open */
        return;
    }
    if (r->primary_down) tide_info("replica: its primary answers again: lag readings resume");
    r->primary_down = 0;
    r->p_started = ev_now(r->loop);
    if (start_job(r, &r->qp, r->primary, "SELECT pg_current_wal_lsn()::text", primary_done,
                  &r->running_p) != 0) {
        tide_upstream_record(r->primary, ev_now(r->loop), r->p_ticket, 0);
        primary_down(r); /* direct's pool cannot reach it now */
    }
}

/* Returns 0 when the read is on its way or the last one still is, -1 when the pool refused. */
static int start_job(tide_replica *r, tide_pgjob *job, tide_upstream *u, const char *sql,
                     void (*done)(tide_pgjob *, PGresult *, const tide_pg_error *), int *running)
{
    if (*running) return 0; /* the last one has not answered: no second one */
    memset(job, 0, sizeof *job);
    job->sql = sql;
    job->done = done;
    job->ud = r;
    *running = 1;
    if (tide_pool_run(u->pool, job) != 0) {
        *running = 0;
        r->poll_failures++;
        return -1;
    }
    return 0;
}

static void poll_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    tide_replica *r = w->data;
    /* a poll interval changed by a reload applies from the next round */
    w->repeat = r->u->policy.lag_poll_interval;
    if (ev_now(r->loop) >= r->u->standby_ok_until && r->was_ok) {
        r->was_ok = 0; /* no complete round for three intervals */
        r->excluded++;
        tide_warn("replica: no lag reading for %.2f s: takes no calls until one comes",
                  stale_after(&r->u->policy));
    }
    /* the replica's last read has not answered; a primary read still out (a frozen primary)
     * does not stop the replica's, which tell whether the primary is known down */
    if (r->running_r) return;
    r->polls++;
    /* the replica first, then the primary once it has answered: the replica's position is
     * compared with a primary position no older than itself, so the lag never reads low */
    (void)start_job(r, &r->qr, r->u, "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text",
                    replica_done, &r->running_r);
}

void tide_replica_start(tide_replica *r, struct ev_loop *loop, tide_upstream *replica,
                        tide_upstream *primary)
{
    memset(r, 0, sizeof *r);
    r->u = replica;
    r->primary = primary;
    r->loop = loop;
    tide_lag_init(&r->lag);
    replica->standby = 1;
    replica->standby_ok_until = 0; /* no calls before the first reading */
    ev_timer_init(&r->timer, poll_cb, 0.0, replica->policy.lag_poll_interval);
    r->timer.data = r;
    ev_timer_start(loop, &r->timer);
}

void tide_replica_stop(tide_replica *r)
{
    if (r->loop) ev_timer_stop(r->loop, &r->timer);
}

void tide_replica_get_stats(const tide_replica *r, double now, tide_replica_stats *out)
{
    memset(out, 0, sizeof *out);
    out->lag_s = tide_lag_seconds(&r->lag, now);
    out->lag_bytes = tide_lag_bytes(&r->lag);
    out->eligible = now < r->u->standby_ok_until;
    out->in_recovery = r->in_recovery;
    if (r->lag.have_replayed) tide_lsn_format(r->lag.replayed, out->replayed);
    if (r->lag.have_primary) tide_lsn_format(r->lag.primary, out->primary);
    out->polled_age_s = r->polled_at > 0 ? now - r->polled_at : -1;
    out->polls = r->polls;
    out->poll_failures = r->poll_failures;
    out->excluded = r->excluded;
}

void tide_replica_note_invalidation(tide_replica *r, double now)
{
    if (!r->loop) return;
    r->inval_last = now;
    r->inval_pending = 1;
}

int tide_replica_fill_safe(const tide_replica *r, uint64_t replayed_at_start)
{
    return !r->inval_pending && replayed_at_start >= r->inval_floor;
}
