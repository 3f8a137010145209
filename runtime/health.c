/* health.c - the upstreams' health (see health.h). */
#include "health.h"

#include <stdio.h>
#include <string.h>

void tide_health_get(tide_app *app, tide_health *out)
{
    double now = ev_now(app->loop);
    int down = 0, degraded = 0;
    memset(out, 0, sizeof *out);
    for (int i = 0; i < TIDE_UPSTREAMS; i++) {
        const tide_upstream *u = app->ups[i];
        const tide_breaker *b = &u->breaker;
        tide_upstream_health *h = &out->upstreams[i];
        h->name = tide_upstream_name(i);
        h->status = tide_upstream_status(u, now);
        h->required = u->policy.required;
        h->pool_of = tide_pool_name(u->pool);
        h->probe_ok = u->probe_done && u->probe_ok;
        h->probe_latency_ms = u->probe_latency * 1000.0;
        h->probe_age_s = u->probe_done ? now - u->probe_at : -1.0;
        h->breaker_state = tide_breaker_state_name(b->state);
        h->breaker_calls = b->calls;
        h->breaker_failures = b->failures;
        h->breaker_opened = b->opened;
        h->breaker_rejected = b->rejected;
        h->consecutive_failures = b->consecutive_failures;
        h->retry_after_s = tide_breaker_retry_after(b, now);
        tide_pool_get_stats(u->pool, &h->pool);
        h->retries = u->retries;
        h->fallback = u->policy.fallback >= 0 ? tide_upstream_name(u->policy.fallback) : NULL;
        /* a pooler whose Postgres is known down takes no calls (call.c), so its own breaker
         * sees none and may stay closed: say it is down, and why */
        int dep = u->policy.depends_on;
        if (dep >= 0 && app->ups[dep] != u && tide_upstream_is_open(app->ups[dep], now)) {
            h->status = "down";
            h->blocked_by = tide_upstream_name(dep);
        }
        if (u->standby && u == &app->upstream_store[i]) {
            h->standby = 1;
            tide_replica_get_stats(&app->replica, now, &h->lag);
            if (!h->lag.eligible && strcmp(h->status, "healthy") == 0) h->status = "degraded";
        }
        if (strcmp(h->status, "healthy") != 0) {
            if (strcmp(h->status, "down") == 0 && h->required) down = 1;
            else degraded = 1;
        }
    }
    out->status = down ? "down" : degraded ? "degraded" : "ok";
    out->http_status = down ? 503 : 200;
}

size_t tide_health_json(const tide_health *h, char *buf, size_t cap)
{
    size_t n = 0;
#define PUT(...)                                                           \
    do {                                                                   \
        if (n < cap) n += (size_t)snprintf(buf + n, cap - n, __VA_ARGS__); \
    } while (0)
    PUT("{\"upstreams\":{");
    for (int i = 0; i < TIDE_UPSTREAMS; i++) {
        const tide_upstream_health *u = &h->upstreams[i];
        const tide_pool_stats *s = &u->pool;
        char fallback[32] = "null", blocked[32] = "null";
        if (u->fallback) snprintf(fallback, sizeof fallback, "\"%s\"", u->fallback);
        if (u->blocked_by) snprintf(blocked, sizeof blocked, "\"%s\"", u->blocked_by);
        PUT("%s\"%s\":{\"status\":\"%s\",\"required\":%s,\"pool_of\":\"%s\","
            "\"probe\":{\"ok\":%s,\"latency_ms\":%.3f,\"age_s\":%.3f},"
            "\"breaker\":{\"state\":\"%s\",\"calls\":%lld,\"failures\":%lld,"
            "\"consecutive_failures\":%d,\"opened\":%lld,\"rejected\":%lld,"
            "\"retry_after_s\":%.3f},"
            "\"pool\":{\"size\":%d,\"open\":%d,\"idle\":%d,\"busy\":%d,\"connecting\":%d,"
            "\"waiting\":%d,\"jobs\":%lld,\"errors\":%lld,\"connect_failures\":%lld,"
            "\"acquire_timeouts\":%lld,\"pipelined\":%lld},\"retries\":%lld,\"fallback\":%s,"
            "\"blocked_by\":%s,\"lag\":",
            i ? "," : "", u->name, u->status, u->required ? "true" : "false", u->pool_of,
            u->probe_ok ? "true" : "false", u->probe_latency_ms, u->probe_age_s, u->breaker_state,
            u->breaker_calls, u->breaker_failures, u->consecutive_failures, u->breaker_opened,
            u->breaker_rejected, u->retry_after_s, s->size, s->open, s->idle, s->busy,
            s->connecting, s->waiting, s->jobs, s->errors, s->connect_failures, s->acquire_timeouts,
            s->pipelined, u->retries, fallback, blocked);
        if (!u->standby) {
            PUT("null}");
            continue;
        }
        const tide_replica_stats *g = &u->lag;
        PUT("{\"eligible\":%s,\"seconds\":%.3f,\"bytes\":%lld,\"replayed_lsn\":\"%s\","
            "\"primary_lsn\":\"%s\",\"in_recovery\":%s,\"polled_age_s\":%.3f,\"polls\":%lld,"
            "\"poll_failures\":%lld,\"excluded\":%lld}}",
            g->eligible ? "true" : "false", g->lag_s, g->lag_bytes, g->replayed, g->primary,
            g->in_recovery ? "true" : "false", g->polled_age_s, g->polls, g->poll_failures,
            g->excluded);
    }
    PUT("},\"status\":\"%s\"}", h->status);
#undef PUT
    if (n >= cap) n = cap ? cap - 1 : 0; /* truncated: stay in bounds */
    return n;
}
