/* upstream.c - pool + breaker + retry budget + health probe for one upstream. */
#include "upstream.h"

#include <string.h>

void tide_resilience_defaults(tide_resilience *r)
{
    memset(r, 0, sizeof *r);
    r->retry_attempts = 3;
    r->retry_base = 0.05;
    r->retry_cap = 1.0;
    r->retry_budget = 0.2;
    r->breaker = (tide_breaker_config){ .window = 20, .failure_rate = 0.5, .min_calls = 10,
                                         .consecutive = 5, .open_wait = 1.0,
                                         .half_open_probes = 2 };
    r->pool.size = 10;
    r->pool.acquire_timeout = 2.0;
    r->pool.connect_timeout = 5.0;
    r->pool.statement_timeout = 5.0;
    r->pool.max_lifetime = 1800;
    r->pool.idle_timeout = 300;
    r->fallback = -1;
    r->depends_on = -1;
    r->required = 1;
    r->probe_interval = 1.0;
}

/* Moves the next health probe to `delay` seconds from now (then every interval again). */
static void probe_soon(tide_upstream *u, double delay)
{
    ev_timer_stop(u->loop, &u->probe_timer);
    ev_timer_set(&u->probe_timer, delay > 0 ? delay : 0., u->policy.probe_interval);
    ev_timer_start(u->loop, &u->probe_timer);
}

void tide_upstream_record(tide_upstream *u, double now, unsigned ticket, int ok)
{
    long long opened = u->breaker.opened;
    tide_breaker_state before = u->breaker.state;
    tide_breaker_record(&u->breaker, now, ticket, ok);
    if (u->breaker.opened != opened) {
        /* probe the moment the wait is over, so recovery does not wait for traffic or a tick */
        probe_soon(u, u->breaker.open_until - now + 0.001);
        if (u->on_open) u->on_open(u, u->on_open_arg);
    } else if (before == TIDE_BREAKER_HALF_OPEN && ok &&
               u->breaker.state == TIDE_BREAKER_HALF_OPEN) {
        probe_soon(u, 0.);        /* one probe succeeded: the next one now */
    }
}

int tide_upstream_is_open(const tide_upstream *u, double now)
{
    return u->breaker.state == TIDE_BREAKER_OPEN && now < u->breaker.open_until;
}

static void probe_done(tide_pgjob *job, PGresult *res, const tide_pg_error *err)
{
    (void)res;
    tide_upstream *u = job->ud;
    double now = ev_now(u->loop);
    u->probe_running = 0;
    u->probe_done = 1;
    u->probe_ok = err == NULL;
    /* the probe is a call like any other: it trips the breaker on an idle upstream that died,
     * and closes it again once the upstream is back, even with no traffic */
    if (!u->probe_counted)
        tide_upstream_settle(u, now, u->probe_ticket, err);
    u->probe_latency = now - u->probe_started;
    u->probe_at = now;
}

static void probe_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    tide_upstream *u = w->data;
    double now = ev_now(loop);
    if (u->probe_running) {
        /* No answer for two intervals (at least a second): that is a failure, whatever comes
         * later. A pooler, for one, queues queries while its Postgres is down. */
        if (!u->probe_counted && now - u->probe_started >= 2 * u->policy.probe_interval &&
            now - u->probe_started >= 1.0) {
            u->probe_counted = 1;
            u->probe_done = 1;
            u->probe_ok = 0;
            tide_upstream_record(u, now, u->probe_ticket, 0);
        }
        return;
    }
    if (!tide_breaker_allow(&u->breaker, ev_now(loop), &u->probe_ticket)) return;   /* open */
    memset(&u->probe, 0, sizeof u->probe);
    u->probe.sql = "SELECT 1";
    u->probe.done = probe_done;
    u->probe.ud = u;
    u->probe_counted = 0;
    u->probe_started = ev_now(loop);
    /* a half-open probe must reach the server: the reconnect backoff does not apply to it */
    if (u->breaker.state == TIDE_BREAKER_HALF_OPEN) tide_pool_reset_backoff(u->pool);
    u->probe_running = 1;
    if (tide_pool_run(u->pool, &u->probe) != 0) {
        u->probe_running = 0;
        u->probe_done = 1;
        u->probe_ok = 0;
        u->probe_latency = 0;
        u->probe_at = ev_now(loop);
        tide_upstream_record(u, u->probe_at, u->probe_ticket, 0);
    }
}

void tide_upstream_init(tide_upstream *u, struct ev_loop *loop, int index, tide_pool *pool,
                        const tide_resilience *r)
{
    memset(u, 0, sizeof *u);
    u->index = index;
    u->loop = loop;
    u->pool = pool;
    u->policy = *r;
    tide_breaker_init(&u->breaker, &r->breaker);
    tide_retry_budget_init(&u->budget, r->retry_budget, 10);
    ev_timer_init(&u->probe_timer, probe_cb, 0.05, r->probe_interval);
    u->probe_timer.data = u;
    ev_timer_start(loop, &u->probe_timer);
    ev_unref(loop);
}

void tide_upstream_configure(tide_upstream *u, const tide_resilience *r)
{
    u->policy = *r;
    tide_breaker_configure(&u->breaker, &r->breaker);
    u->budget.ratio = r->retry_budget;
    tide_pool_configure(u->pool, &r->pool);
    if (u->probe_timer.repeat != r->probe_interval) {
        u->probe_timer.repeat = r->probe_interval;
        ev_timer_again(u->loop, &u->probe_timer);
    }
}

void tide_upstream_stop(tide_upstream *u)
{
    ev_ref(u->loop);
    ev_timer_stop(u->loop, &u->probe_timer);
    if (u->probe_running) {
        tide_pool_withdraw(&u->probe);    /* a running probe ends with the pool */
        u->probe_running = 0;
    }
}

int tide_upstream_outcome(const tide_pg_error *e)
{
    if (!e) return TIDE_OUTCOME_OK;
    const char *c = e->code;
    if (c[0] == '0' && c[1] == '8') return TIDE_OUTCOME_FAILED;     /* connection */
    if (strncmp(c, "57P0", 4) == 0) return TIDE_OUTCOME_FAILED;     /* shutdown, crash */
    if (strcmp(c, "53300") == 0) return TIDE_OUTCOME_FAILED;        /* too many connections */
    if (strcmp(c, "TIDE_STATEMENT_TIMEOUT") == 0) return TIDE_OUTCOME_FAILED;
    /* tide's own queue was full: the call never reached the upstream, which says nothing
     * about it (and an anonymous flood must not be able to open a breaker this way) */
    if (strcmp(c, "TIDE_ACQUIRE_TIMEOUT") == 0) return TIDE_OUTCOME_NONE;
    return TIDE_OUTCOME_OK;   /* an SQL error: the database answered */
}

void tide_upstream_settle(tide_upstream *u, double now, unsigned ticket, const tide_pg_error *e)
{
    int outcome = tide_upstream_outcome(e);
    if (outcome == TIDE_OUTCOME_NONE)
        tide_breaker_release(&u->breaker, ticket);
    else
        tide_upstream_record(u, now, ticket, outcome == TIDE_OUTCOME_OK);
}

const char *tide_upstream_status(const tide_upstream *u, double now)
{
    if (u->breaker.state == TIDE_BREAKER_OPEN) return "down";
    /* a probe that failed, or has not come back for three intervals */
    if (u->probe_done && !u->probe_ok) return "down";
    if (u->probe_running && now - u->probe_started > 3 * u->policy.probe_interval + 1)
        return "down";
    if (u->breaker.state == TIDE_BREAKER_HALF_OPEN) return "degraded";
    if (u->probe_done && u->probe_latency > 1.0) return "degraded";
    return "healthy";
}
