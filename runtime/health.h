/* health.h - the health of tide's upstreams as a plain C struct: what /health and /ready on the
 * admin listener render as JSON and what db.health() hands scripts as a Lua table, read from
 * one place. No I/O. */
#ifndef TIDE_HEALTH_H
#define TIDE_HEALTH_H

#include <stddef.h>
#include "app.h"

typedef struct tide_upstream_health {
    const char *name;    /* "direct", "session", "transaction" */
    const char *status;  /* "healthy", "degraded" or "down" */
    int required;        /* counts toward the overall verdict when down */
    const char *pool_of; /* the pool serving it (an unconfigured one uses direct's) */
    int probe_ok;        /* the last probe succeeded */
    double probe_latency_ms;
    double probe_age_s;        /* since the last probe; -1 before the first */
    const char *breaker_state; /* "closed", "open", "half_open" */
    long long breaker_calls, breaker_failures, breaker_opened, breaker_rejected;
    int consecutive_failures;
    double retry_after_s; /* until an open breaker lets calls through again */
    tide_pool_stats pool;
    long long retries;
    const char *fallback;   /* upstream used while the breaker is open, or NULL */
    const char *blocked_by; /* the upstream it depends on while that one's breaker is open
                             * (it takes no calls then, and is "down"), or NULL */
    int standby;            /* a replica: lag below is filled */
    tide_replica_stats lag; /* a replica too far behind takes no calls ("degraded") */
} tide_upstream_health;

typedef struct tide_health {
    tide_upstream_health upstreams[TIDE_UPSTREAMS];
    const char *status; /* "ok", "degraded" (some upstream not healthy) or "down" (a
                                  * required upstream is down) */
    int http_status;    /* 200, or 503 when down */
} tide_health;

/* Fills *out with the upstreams' health at the loop's current time. */
void tide_health_get(tide_app *app, tide_health *out);

/* Writes h as the /health JSON document into buf (cap bytes; truncated documents stay
 * NUL-terminated). Returns the length written (at most cap - 1). */
size_t tide_health_json(const tide_health *h, char *buf, size_t cap);

#endif
