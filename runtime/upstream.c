/* upstream.c - pool + breaker + retry budget + health probe for one upstream. */
#include "upstream.h"

#include <stddef.h>
#include <string.h>
#include <unistd.h>

/* The resilience policy's schema: policies/resilience.lua's `defaults` and each
 * `upstreams[name]` hold these keys (sections retry, breaker, pool). The defaults below are
 * the only ones: a policy that leaves a key out gets this value. A SIGHUP reload applies every
 * key to the running upstream without resetting its state. pool.connect_timeout is not here:
 * it comes from the config file (upstreams.NAME.connect_timeout, restart-only). */
/* clang-format off */
#define RN(sec, key, type, min, max, def, field, help, names) \
    { sec, key, type, min, max, def, NULL, TIDE_SET_RELOAD, offsetof(tide_resilience, field), \
      help, NULL, names }
#define R(sec, key, type, min, max, def, field, help) \
    RN(sec, key, type, min, max, def, field, help, NULL)
static const tide_setting resilience_table[] = {
    R("retry", "attempts", TIDE_SET_INT, 1, 10, 3, retry_attempts,
      "attempts in all (1 = never retry)"),
    R("retry", "base", TIDE_SET_NUMBER, 0, 60, 0.05, retry_base,
      "first backoff cap, seconds (full jitter)"),
    R("retry", "cap", TIDE_SET_NUMBER, 0, 600, 1.0, retry_cap, "largest backoff, seconds"),
    R("retry", "budget", TIDE_SET_NUMBER, 0, 1, 0.2, retry_budget,
      "retries may be at most this share of recent calls"),
    R("breaker", "window", TIDE_SET_INT, 1, TIDE_BREAKER_MAX_WINDOW, 20, breaker.window,
      "calls in the sliding window"),
    R("breaker", "failure_rate", TIDE_SET_NUMBER, 0.01, 1, 0.5, breaker.failure_rate,
      "share of failures in the window that opens it"),
    R("breaker", "min_calls", TIDE_SET_INT, 1, TIDE_BREAKER_MAX_WINDOW, 10, breaker.min_calls,
      "calls the window must hold before the rate counts"),
    R("breaker", "consecutive", TIDE_SET_INT, 0, 1000, 5, breaker.consecutive,
      "failures in a row that open it (0 = off)"),
    R("breaker", "open_wait", TIDE_SET_NUMBER, 0, 3600, 1.0, breaker.open_wait,
      "seconds open before half-open"),
    R("breaker", "half_open_probes", TIDE_SET_INT, 1, 100, 2, breaker.half_open_probes,
      "calls let through half-open; that many successes close it"),
    R("pool", "size", TIDE_SET_INT, 0, 256, 0, pool.size,
      "most connections open at once (0: auto, 3 per CPU between 4 and 64)"),
    R("pool", "acquire_timeout", TIDE_SET_NUMBER, 0.001, 600, 2.0, pool.acquire_timeout,
      "seconds to wait for a free connection (then 504)"),
    R("pool", "statement_timeout", TIDE_SET_NUMBER, 0.001, 3600, 5.0, pool.statement_timeout,
      "seconds per statement, set in Postgres (client deadline 1 s later)"),
    R("pool", "max_lifetime", TIDE_SET_NUMBER, 0, 86400 * 7, 1800, pool.max_lifetime,
      "seconds; older connections are retired (0 = off)"),
    R("pool", "idle_timeout", TIDE_SET_NUMBER, 0, 86400 * 7, 300, pool.idle_timeout,
      "seconds an unused connection is kept (0 = forever)"),
    R("pool", "pipeline", TIDE_SET_INT, 1, 16, 2, pool.pipeline,
      "jobs one connection runs back to back once all are busy (1 = off; prepare only)"),
    RN(NULL, "fallback", TIDE_SET_ENUM, 0, 0, -1, fallback,
       "upstream used while the breaker is open (none = fail fast)", tide_upstream_names),
    RN(NULL, "depends_on", TIDE_SET_ENUM, 0, 0, -1, depends_on,
       "upstream whose open breaker makes this one unusable too", tide_upstream_names),
    R(NULL, "required", TIDE_SET_BOOL, 0, 1, 1, required,
      "/ready and /health fail while it is down"),
    R(NULL, "probe_interval", TIDE_SET_NUMBER, 0.05, 3600, 1.0, probe_interval,
      "seconds between health probes"),
    R("lag", "max_ms", TIDE_SET_NUMBER, 1, 3600000, 1000, lag_max_ms,
      "a replica further behind than this takes no calls (ms)"),
    R("lag", "max_bytes", TIDE_SET_SIZE, 0, 1e12, 16 * 1024 * 1024, lag_max_bytes,
      "a replica this many WAL bytes behind takes no calls (0 = no byte bound)"),
    R("lag", "poll_interval", TIDE_SET_NUMBER, 0.02, 60, 0.25, lag_poll_interval,
      "seconds between reads of a replica's and the primary's WAL positions"),
    R("lag", "read_your_writes", TIDE_SET_NUMBER, 0, 86400, 10, lag_ryw_window,
      "seconds a caller's last write keeps their reads off replicas that lack it"),
};
#undef R
#undef RN
/* clang-format on */
#define NROWS (sizeof resilience_table / sizeof resilience_table[0])

const tide_setting *tide_resilience_table(size_t *n)
{
    *n = NROWS;
    return resilience_table;
}

int tide_pool_size_auto(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    long size = 3 * (n >= 1 ? n : 1);
    return (int)(size < 4 ? 4 : size > 64 ? 64 : size);
}

void tide_resilience_defaults(tide_resilience *r)
{
    memset(r, 0, sizeof *r);
    (void)!tide_settings_defaults(resilience_table, NROWS, r); /* no strings: cannot fail */
    r->pool.size = tide_pool_size_auto();
}

/* Checks across keys of upstream i's merged settings. */
static int check_merged(int i, tide_resilience *r, char *err, size_t errlen)
{
    const char *name = tide_upstream_name(i);
    if (r->pool.size == 0) r->pool.size = tide_pool_size_auto();
    if (r->breaker.min_calls > r->breaker.window) {
        snprintf(err, errlen, "%s.breaker.min_calls cannot exceed breaker.window", name);
        return TIDE_EINVAL;
    }
    if (r->retry_base > r->retry_cap) {
        snprintf(err, errlen, "%s.retry.base cannot exceed retry.cap", name);
        return TIDE_EINVAL;
    }
    if (r->fallback == i) {
        snprintf(err, errlen, "%s.fallback cannot be itself", name);
        return TIDE_EINVAL;
    }
    if (r->depends_on == i) r->depends_on = -1; /* depending on itself says nothing */
    return 0;
}

/* Reads t[key] (t at idx) onto the stack; returns its Lua type. */
static int field(lua_State *L, int idx, const char *key)
{
    lua_getfield(L, idx, key);
    return lua_type(L, -1);
}

static int policy_error(char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen, "policies/resilience.lua: %s", msg);
    return TIDE_EINVAL;
}

int tide_resilience_read(lua_State *L, int idx, tide_resilience out[TIDE_UPSTREAMS], char *err,
                         size_t errlen)
{
    char msg[512];
    int top = lua_gettop(L), rc = 0;
    idx = idx < 0 && idx > LUA_REGISTRYINDEX ? top + idx + 1 : idx;
    if (!lua_istable(L, idx)) return policy_error(err, errlen, "must return a table");
    int td = field(L, idx, "defaults"), tu = field(L, idx, "upstreams");
    int defaults = top + 1, ups = top + 2;
    if ((td != LUA_TNIL && td != LUA_TTABLE) || (tu != LUA_TNIL && tu != LUA_TTABLE)) {
        lua_settop(L, top);
        return policy_error(err, errlen, "defaults and upstreams must be tables");
    }
    if (tu == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, ups) != 0) {
            lua_pop(L, 1);
            const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
            if (!k || tide_upstream_index(k) < 0) {
                snprintf(msg, sizeof msg, "unknown upstream '%s'", k ? k : "?");
                lua_settop(L, top);
                return policy_error(err, errlen, msg);
            }
        }
    }
    for (int i = 0; rc == 0 && i < TIDE_UPSTREAMS; i++) {
        const char *name = tide_upstream_name(i);
        tide_resilience_defaults(&out[i]);
        /* the defaults table first, then the upstream's own: merged key by key */
        if (td == LUA_TTABLE)
            rc = tide_settings_read(L, defaults, resilience_table, NROWS, &out[i], name, msg,
                                    sizeof msg);
        if (rc == 0 && tu == LUA_TTABLE) {
            int t = field(L, ups, name);
            if (t == LUA_TTABLE)
                rc = tide_settings_read(L, -1, resilience_table, NROWS, &out[i], name, msg,
                                        sizeof msg);
            else if (t != LUA_TNIL) {
                snprintf(msg, sizeof msg, "upstreams.%s must be a table", name);
                rc = TIDE_EINVAL;
            }
            lua_pop(L, 1);
        }
        if (rc == 0) rc = check_merged(i, &out[i], msg, sizeof msg);
    }
    /* a fallback chain that comes back to where it started would never end */
    for (int i = 0; rc == 0 && i < TIDE_UPSTREAMS; i++) {
        int cur = out[i].fallback;
        for (int steps = 0; cur >= 0 && steps < TIDE_UPSTREAMS; steps++) {
            if (cur == i) {
                snprintf(msg, sizeof msg, "fallback cycle through %s", tide_upstream_name(i));
                rc = TIDE_EINVAL;
                break;
            }
            cur = out[cur].fallback;
        }
    }
    lua_settop(L, top);
    return rc == 0 ? 0 : policy_error(err, errlen, msg);
}

void tide_resilience_print(FILE *f, int upstream, const tide_resilience *r)
{
    tide_settings_print(f, tide_upstream_name(upstream), resilience_table, NROWS, r, NULL);
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
        probe_soon(u, 0.); /* one probe succeeded: the next one now */
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
    if (!u->probe_counted) tide_upstream_settle(u, now, u->probe_ticket, err);
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
    if (!tide_breaker_allow(&u->breaker, ev_now(loop), &u->probe_ticket)) return; /* open */
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
        tide_pool_withdraw(&u->probe); /* a running probe ends with the pool */
        u->probe_running = 0;
    }
}

int tide_upstream_outcome(const tide_pg_error *e)
{
    if (!e) return TIDE_OUTCOME_OK;
    const char *c = e->code;
    if (c[0] == '0' && c[1] == '8') return TIDE_OUTCOME_FAILED; /* connection */
    if (strncmp(c, "57P0", 4) == 0) return TIDE_OUTCOME_FAILED; /* shutdown, crash */
    if (strcmp(c, "53300") == 0) return TIDE_OUTCOME_FAILED;    /* too many connections */
    if (strcmp(c, "TIDE_STATEMENT_TIMEOUT") == 0) return TIDE_OUTCOME_FAILED;
    /* tide's own queue was full: the call never reached the upstream, which says nothing
     * about it (and an anonymous flood must not be able to open a breaker this way) */
    if (strcmp(c, "TIDE_ACQUIRE_TIMEOUT") == 0) return TIDE_OUTCOME_NONE;
    return TIDE_OUTCOME_OK; /* an SQL error: the database answered */
}

void tide_upstream_settle(tide_upstream *u, double now, unsigned ticket, const tide_pg_error *e)
{
    int outcome = tide_upstream_outcome(e);
    if (outcome == TIDE_OUTCOME_NONE) tide_breaker_release(&u->breaker, ticket);
    else tide_upstream_record(u, now, ticket, outcome == TIDE_OUTCOME_OK);
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
