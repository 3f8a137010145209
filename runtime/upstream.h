/* upstream.h - one upstream (direct, session, transaction, replica): its pool, circuit breaker, retry
 * budget and health probe, under the settings of policies/resilience.lua. All of this is C
 * state that outlives a reload: a new policy changes the settings, never the state. */
#ifndef TIDE_UPSTREAM_H
#define TIDE_UPSTREAM_H

#include <ev.h>
#include <stdio.h>
#include <lua.h>
#include "breaker.h"
#include "config.h"
#include "pool.h"
#include "retry.h"
#include "settings.h"

typedef struct tide_resilience {
    int retry_attempts;           /* attempts in all (1 = no retry) */
    double retry_base, retry_cap; /* backoff seconds */
    double retry_budget;          /* retries may be at most this share of calls */
    tide_breaker_config breaker;
    tide_pool_config pool; /* size, acquire/statement timeouts, lifetime, idle */
    int fallback;          /* upstream index used while the breaker is open, or -1 */
    int depends_on;        /* upstream whose open breaker makes this one unusable too (a
                                  * pooler's Postgres), or -1 */
    int required;          /* /ready and /health fail while it is down */
    double probe_interval; /* seconds between health probes */
    /* a replica's lag (replica.c): it takes no calls while further behind than either bound */
    double lag_max_ms;        /* lag.max_ms */
    size_t lag_max_bytes;     /* lag.max_bytes (0 = no byte bound) */
    double lag_poll_interval; /* lag.poll_interval: seconds between position reads */
    double lag_ryw_window;    /* lag.read_your_writes: seconds a caller's last write floors
                               * their reads (0: only a Tide-LSN the client sends does) */
} tide_resilience;

typedef struct tide_upstream {
    int index;
    struct ev_loop *loop;
    tide_pool *pool;
    tide_breaker breaker;
    tide_retry_budget budget;
    tide_resilience policy;
    ev_timer probe_timer;
    tide_pgjob probe;
    int probe_running, probe_ok, probe_done;
    unsigned probe_ticket;
    double probe_started, probe_latency, probe_at;
    int probe_counted; /* the running probe's outcome went to the breaker already */
    long long retries;
    /* a replica (replica.c): calls go to it only until this time, which each poll that finds
     * it within its lag bounds moves on; 0 for every other upstream (no such limit) */
    double standby_ok_until;
    int standby;               /* it is a replica: standby_ok_until applies */
    uint64_t standby_replayed; /* a replica's last read replay position (UINT64_MAX when it
                                * is not in recovery: nothing to wait for) */
    /* called when this upstream's breaker opens (tide fails the work of its dependents) */
    void (*on_open)(struct tide_upstream *u, void *arg);
    void *on_open_arg;
} tide_upstream;

/* Default settings (used until a policy is loaded, and for keys a policy leaves out): the
 * defaults column of the policy's schema table, the one home of these values. */
void tide_resilience_defaults(tide_resilience *r);
/* pool.size 0 ("auto"): 3 connections per online CPU, between 4 and 64. Measured with `make
 * bench` (BENCH_ONLY=pool, point reads) on 2 quiet cores: 6 connections served 9484 req/s, 4
 * 8782, 8 8412, 12 7397, 16 6003 - Postgres' own CPU per request grew from 121 us (6) to 204 us
 * (16), as pgbench's per transaction grows past 8 clients: with tide and the load on the same
 * cores, more backends than that only contend. */
int tide_pool_size_auto(void);
/* The policy's schema table (*n rows): section, key, type, bounds, default, offset. */
const tide_setting *tide_resilience_table(size_t *n);
/* Reads the table policies/resilience.lua returns (at idx) into out[0..TIDE_UPSTREAMS-1]:
 * each upstream gets the schema's defaults, then the policy's `defaults`, then its own
 * `upstreams[name]`, merged key by key inside retry/breaker/pool; every value is checked
 * (type, bounds, unknown keys, min_calls <= window, base <= cap, fallbacks naming another
 * upstream without a cycle). pool.connect_timeout stays 0: the config file sets it. Returns 0,
 * or TIDE_EINVAL with "policies/resilience.lua: <key> must ..." in err (out is then partly
 * written: keep the policy that was in force). Leaves the Lua stack as it was. */
TIDE_MUST_CHECK int tide_resilience_read(lua_State *L, int idx, tide_resilience out[TIDE_UPSTREAMS],
                                         char *err, size_t errlen);
/* Prints upstream's effective settings, one "name.section.key = value" line each. */
void tide_resilience_print(FILE *f, int upstream, const tide_resilience *r);
void tide_upstream_init(tide_upstream *u, struct ev_loop *loop, int index, tide_pool *pool,
                        const tide_resilience *r);
/* Applies a reloaded policy; breaker state, counters and connections stay. */
void tide_upstream_configure(tide_upstream *u, const tide_resilience *r);
void tide_upstream_stop(tide_upstream *u);
/* Records an allowed call's outcome in the breaker; calls on_open when that opens it. */
void tide_upstream_record(tide_upstream *u, double now, unsigned ticket, int ok);
/* Whether the breaker refuses calls right now (open and still waiting), without taking a
 * half-open probe slot. */
int tide_upstream_is_open(const tide_upstream *u, double now);
/* What a call's result says about the upstream: TIDE_OUTCOME_OK for success (err NULL) and for
 * SQL errors a healthy database returns (a unique violation, say); TIDE_OUTCOME_FAILED when
 * the upstream itself is failing (connection, shutdown, too many connections, statement
 * timeout); TIDE_OUTCOME_NONE when the call never reached it (TIDE_ACQUIRE_TIMEOUT: tide's own
 * pool was full). */
enum { TIDE_OUTCOME_OK, TIDE_OUTCOME_FAILED, TIDE_OUTCOME_NONE };
int tide_upstream_outcome(const tide_pg_error *err);
/* Settles an allowed call's breaker ticket by that outcome: recorded (tide_upstream_record) for
 * OK and FAILED, released without an outcome for NONE. */
void tide_upstream_settle(tide_upstream *u, double now, unsigned ticket, const tide_pg_error *err);
/* "healthy", "degraded" or "down" at time now. */
const char *tide_upstream_status(const tide_upstream *u, double now);

#endif
