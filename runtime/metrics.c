/* metrics.c - request and loop metrics, and the Prometheus exposition (see metrics.h). */
#include "metrics.h"
#include "health.h"
#include "jwtcache.h"
#include "log.h"
#include "guard.h"
#include "luavm.h"
#include "rcache.h"
#include "supervise.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const methods[] = { "GET",   "HEAD",   "POST",    "PUT",
                                       "PATCH", "DELETE", "OPTIONS", "other" };
#define NMETHODS 8

typedef struct route_stats {
    char *route;
    tide_hist dur;
    long long n[NMETHODS][5]; /* by method and status class 1xx..5xx */
} route_stats;

static route_stats *routes[TIDE_METRICS_MAX_ROUTES + 1]; /* the last: "(other)" */
static int nroutes;
static tide_hist loop_hist;

static int method_index(const char *m)
{
    for (int i = 0; i < NMETHODS - 1; i++)
        if (strcmp(m, methods[i]) == 0) return i;
    return NMETHODS - 1;
}

static route_stats *route_find(const char *route)
{
    for (int i = 0; i < nroutes; i++) /* a few dozen routes: a scan beats hashing */
        if (strcmp(routes[i]->route, route) == 0) return routes[i];
    int slot = nroutes < TIDE_METRICS_MAX_ROUTES ? nroutes : TIDE_METRICS_MAX_ROUTES;
    if (slot == TIDE_METRICS_MAX_ROUTES) {
        route = "(other)";
        if (routes[slot]) return routes[slot];
    }
    route_stats *r = calloc(1, sizeof *r);
    if (!r || !(r->route = strdup(route))) {
        free(r);
        return NULL;
    }
    routes[slot] = r;
    if (slot < TIDE_METRICS_MAX_ROUTES) nroutes++;
    return r;
}

void tide_metrics_request(const char *route, const char *method, int status, double seconds)
{
    route_stats *r = route_find(route ? route : "(unmatched)");
    if (!r) return;
    int cls = status / 100;
    if (cls < 1 || cls > 5) cls = 5;
    r->n[method_index(method)][cls - 1]++;
    tide_hist_add(&r->dur, seconds);
}

void tide_request_record(const tide_http_req *req, const char *id, tide_role role, const char *sub,
                         const char *route, double seconds, int aborted, const char *cache,
                         int status)
{
    if (seconds < 0) seconds = 0;
    tide_log_request(id, req->client_id, req->method, req->path, req->path_len, status,
                     seconds * 1000.0, tide_role_name(role), aborted, cache);
    tide_metrics_request(route, req->method, status, seconds);
    if (role == TIDE_ROLE_SERVICE)
        tide_log_audit_request(id, sub, req->method, route, req->path, req->path_len, status);
}

void tide_metrics_loop_pass(double seconds) { tide_hist_add(&loop_hist, seconds); }

void tide_metrics_each_route(void (*f)(const char *route, const tide_hist *h, long long n,
                                       void *arg),
                             void *arg)
{
    for (int i = 0; i <= TIDE_METRICS_MAX_ROUTES; i++) {
        if (!routes[i]) continue;
        long long n = 0;
        for (int m = 0; m < NMETHODS; m++)
            for (int c = 0; c < 5; c++) n += routes[i]->n[m][c];
        f(routes[i]->route, &routes[i]->dur, n, arg);
    }
}

/* ---- exposition ------------------------------------------------------------------------ */

typedef struct out {
    char *p;
    size_t n, cap;
    int oom;
} out;

static void put(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out *o, const char *fmt, ...)
{
    if (o->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(o->p + o->n, o->cap - o->n, fmt, ap);
        va_end(ap);
        if (k < 0) {
            o->oom = 1;
            return;
        }
        if ((size_t)k < o->cap - o->n) {
            o->n += (size_t)k;
            return;
        }
        size_t cap = o->cap * 2 + (size_t)k;
        char *q = realloc(o->p, cap);
        if (!q) {
            o->oom = 1;
            return;
        }
        o->p = q;
        o->cap = cap;
    }
}

static void head(out *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A metric without labels: its HELP and TYPE lines and its one sample. */
static void single(out *o, const char *name, const char *type, const char *help, long long v)
{
    head(o, name, type, help);
    put(o, "%s %lld\n", name, v);
}

/* A label value with \, " and newline escaped (route templates rarely hold any). */
static const char *esc(const char *s, char *buf, size_t cap)
{
    size_t j = 0;
    for (size_t i = 0; s[i] && j + 3 < cap; i++) {
        char ch = s[i];
        if (ch == '\\' || ch == '"') {
            buf[j++] = '\\';
            buf[j++] = ch;
        } else if (ch == '\n') {
            buf[j++] = '\\';
            buf[j++] = 'n';
        } else {
            buf[j++] = ch;
        }
    }
    buf[j] = 0;
    return buf;
}

static const double bounds[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.025, 0.05,
                                 0.1,    0.25,  0.5,    1,     2.5,  5,    10 };
#define NBOUNDS (sizeof bounds / sizeof bounds[0])

/* The samples of h as a histogram series `name` with labels (without braces; may be ""). */
static void hist(out *o, const char *name, const char *labels, const tide_hist *h)
{
    const char *sep = labels[0] ? "," : "";
    for (size_t i = 0; i < NBOUNDS; i++)
        put(o, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, bounds[i],
            (unsigned long long)tide_hist_count_le(h, bounds[i]));
    put(o, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, (unsigned long long)h->count);
    put(o, "%s_sum%s%s%s %.6f\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "", h->sum);
    put(o, "%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
        (unsigned long long)h->count);
}

static void render_requests(out *o)
{
    char e[300], lab[400];
    head(o, "tide_http_requests_total", "counter",
         "Answered requests by route template, method and status class.");
    for (int i = 0; i <= TIDE_METRICS_MAX_ROUTES; i++) {
        route_stats *r = routes[i];
        if (!r) continue;
        for (int m = 0; m < NMETHODS; m++)
            for (int c = 0; c < 5; c++)
                if (r->n[m][c])
                    put(o,
                        "tide_http_requests_total{route=\"%s\",method=\"%s\","
                        "status=\"%dxx\"} %lld\n",
                        esc(r->route, e, sizeof e), methods[m], c + 1, r->n[m][c]);
    }
    head(o, "tide_http_request_duration_seconds", "histogram",
         "Time from a request's arrival at the bundle (or the cache) to its answer, by route.");
    for (int i = 0; i <= TIDE_METRICS_MAX_ROUTES; i++) {
        if (!routes[i]) continue;
        snprintf(lab, sizeof lab, "route=\"%s\"", esc(routes[i]->route, e, sizeof e));
        hist(o, "tide_http_request_duration_seconds", lab, &routes[i]->dur);
    }
}

static void render_http(out *o, tide_app *app)
{
    tide_http_stats h;
    tide_http_get_stats(app->http, &h);
    single(o, "tide_http_connections_accepted_total", "counter", "Connections accepted.",
           h.accepted);
    single(o, "tide_http_connections_open", "gauge", "Connections open now.", h.open);
    head(o, "tide_http_rejected_total", "counter",
         "Requests and connections the HTTP layer refused, by reason.");
    put(o, "tide_http_rejected_total{reason=\"bad_request\"} %lld\n", h.rejected_400);
    put(o, "tide_http_rejected_total{reason=\"timeout\"} %lld\n", h.timeouts_408);
    put(o, "tide_http_rejected_total{reason=\"body_too_large\"} %lld\n", h.rejected_413);
    put(o, "tide_http_rejected_total{reason=\"head_too_large\"} %lld\n", h.rejected_431);
    put(o, "tide_http_rejected_total{reason=\"busy\"} %lld\n", h.rejected_busy);
    put(o, "tide_http_rejected_total{reason=\"per_client\"} %lld\n", h.rejected_per_client);
    single(o, "tide_http_aborted_total", "counter", "Requests whose client went away first.",
           h.aborted);
    single(o, "tide_http_body_bytes", "gauge", "Request body bytes held now.", h.body_bytes);
    single(o, "tide_http_reads_deferred_total", "counter",
           "Readable connections put off to a later event-loop pass by its read budget.", h.parked);
    single(o, "tide_http_unsent_bytes", "gauge",
           "Output buffers held now for answers their clients have not read yet.", h.unsent_bytes);
    single(o, "tide_http_slow_readers_closed_total", "counter",
           "Connections reset because the answers waiting for their clients passed "
           "http.max_unsent_bytes (the slowest readers first).",
           h.slow_readers_closed);
    single(o, "tide_inflight_requests", "gauge", "Requests running in the bundle now.",
           app->inflight);
    head(o, "tide_admin_refused_total", "counter",
         "Admin requests refused: no token configured, a wrong or missing token, a foreign Host.");
    for (int i = 0; i < 3; i++)
        put(o, "tide_admin_refused_total{reason=\"%s\"} %lld\n", tide_admin_refused_names[i],
            app->admin_refused[i]);
}

typedef struct class_ctx {
    out *o;
    const char *up;
} class_ctx;

static void one_class(const char cls[3], long long n, void *arg)
{
    class_ctx *c = arg;
    put(c->o, "tide_pool_errors_total{upstream=\"%s\",class=\"%s\"} %lld\n", c->up, cls, n);
}

static void render_upstreams(out *o, tide_app *app)
{
    tide_health hl;
    tide_health_get(app, &hl);
    int own[TIDE_UPSTREAMS];
    for (int i = 0; i < TIDE_UPSTREAMS; i++)
        own[i] = app->ups[i] == &app->upstream_store[i] && app->ups[i]->pool;
#define EACH(...)                                              \
    for (int i = 0; i < TIDE_UPSTREAMS; i++)                   \
        if (own[i]) {                                          \
            const char *up = tide_upstream_name(i);            \
            tide_upstream *u = app->ups[i];                    \
            const tide_upstream_health *uh = &hl.upstreams[i]; \
            (void)u;                                           \
            (void)uh;                                          \
            __VA_ARGS__;                                       \
        }
    head(o, "tide_pool_size", "gauge", "Most connections the pool may open.");
    EACH(put(o, "tide_pool_size{upstream=\"%s\"} %d\n", up, uh->pool.size));
    head(o, "tide_pool_connections", "gauge", "Connections by state.");
    EACH(put(o,
             "tide_pool_connections{upstream=\"%s\",state=\"idle\"} %d\n"
             "tide_pool_connections{upstream=\"%s\",state=\"busy\"} %d\n"
             "tide_pool_connections{upstream=\"%s\",state=\"connecting\"} %d\n",
             up, uh->pool.idle, up, uh->pool.busy, up, uh->pool.connecting));
    head(o, "tide_pool_waiting", "gauge", "Jobs waiting for a connection.");
    EACH(put(o, "tide_pool_waiting{upstream=\"%s\"} %d\n", up, uh->pool.waiting));
    head(o, "tide_pool_jobs_total", "counter", "Jobs run (statements with their pipeline).");
    EACH(put(o, "tide_pool_jobs_total{upstream=\"%s\"} %lld\n", up, uh->pool.jobs));
    head(o, "tide_pool_connect_failures_total", "counter", "Connection attempts that failed.");
    EACH(put(o, "tide_pool_connect_failures_total{upstream=\"%s\"} %lld\n", up,
             uh->pool.connect_failures));
    head(o, "tide_pool_acquire_timeouts_total", "counter",
         "Jobs that waited acquire_timeout for a connection in vain.");
    EACH(put(o, "tide_pool_acquire_timeouts_total{upstream=\"%s\"} %lld\n", up,
             uh->pool.acquire_timeouts));
    head(o, "tide_pool_pipelined_total", "counter",
         "Jobs queued behind others on a busy connection (pool.pipeline).");
    EACH(put(o, "tide_pool_pipelined_total{upstream=\"%s\"} %lld\n", up, uh->pool.pipelined));
    head(o, "tide_pool_errors_total", "counter", "Failed jobs by SQLSTATE class (TI: tide's own).");
    EACH({
        class_ctx c = { o, up };
        tide_pool_each_error_class(u->pool, one_class, &c);
    });
    char lab[64];
    head(o, "tide_pool_acquire_wait_seconds", "histogram", "Time jobs waited for a connection.");
    EACH({
        snprintf(lab, sizeof lab, "upstream=\"%s\"", up);
        hist(o, "tide_pool_acquire_wait_seconds", lab, tide_pool_acquire_hist(u->pool));
    });
    head(o, "tide_pool_statement_duration_seconds", "histogram",
         "Time from sending a job's pipeline to its last result.");
    EACH({
        snprintf(lab, sizeof lab, "upstream=\"%s\"", up);
        hist(o, "tide_pool_statement_duration_seconds", lab, tide_pool_statement_hist(u->pool));
    });
    head(o, "tide_upstream_retries_total", "counter", "Attempts run again after a failure.");
    EACH(put(o, "tide_upstream_retries_total{upstream=\"%s\"} %lld\n", up, uh->retries));
    head(o, "tide_upstream_up", "gauge", "1 unless the upstream is down (as /health says).");
    EACH(put(o, "tide_upstream_up{upstream=\"%s\"} %d\n", up, strcmp(uh->status, "down") != 0));
    head(o, "tide_breaker_state", "gauge", "Circuit breaker: 0 closed, 1 open, 2 half-open.");
    EACH(put(o, "tide_breaker_state{upstream=\"%s\"} %d\n", up, (int)u->breaker.state));
    head(o, "tide_breaker_transitions_total", "counter", "Breaker changes, by the state entered.");
    EACH(put(o,
             "tide_breaker_transitions_total{upstream=\"%s\",to=\"closed\"} %lld\n"
             "tide_breaker_transitions_total{upstream=\"%s\",to=\"open\"} %lld\n"
             "tide_breaker_transitions_total{upstream=\"%s\",to=\"half_open\"} %lld\n",
             up, u->breaker.transitions[TIDE_BREAKER_CLOSED], up,
             u->breaker.transitions[TIDE_BREAKER_OPEN], up,
             u->breaker.transitions[TIDE_BREAKER_HALF_OPEN]));
    head(o, "tide_breaker_rejected_total", "counter", "Calls an open breaker refused.");
    EACH(put(o, "tide_breaker_rejected_total{upstream=\"%s\"} %lld\n", up, uh->breaker_rejected));
    head(o, "tide_probe_latency_seconds", "gauge", "The last health probe's round trip.");
    EACH(put(o, "tide_probe_latency_seconds{upstream=\"%s\"} %.6f\n", up,
             uh->probe_latency_ms / 1000.0));
    head(o, "tide_probe_ok", "gauge", "1 when the last health probe succeeded.");
    EACH(put(o, "tide_probe_ok{upstream=\"%s\"} %d\n", up, uh->probe_ok));
    int standbys = 0;
    for (int i = 0; i < TIDE_UPSTREAMS; i++) standbys += own[i] && hl.upstreams[i].standby;
    if (standbys) {
        head(
            o, "tide_replica_lag_seconds", "gauge",
            "How long the replica has been behind its primary's last read position (-1: unknown).");
        EACH(if (uh->standby)
                 put(o, "tide_replica_lag_seconds{upstream=\"%s\"} %.3f\n", up, uh->lag.lag_s));
        head(o, "tide_replica_lag_bytes", "gauge",
             "WAL bytes the replica is behind (-1: unknown).");
        EACH(if (uh->standby)
                 put(o, "tide_replica_lag_bytes{upstream=\"%s\"} %lld\n", up, uh->lag.lag_bytes));
        head(o, "tide_replica_eligible", "gauge", "1 while the replica is within its lag bounds.");
        EACH(if (uh->standby)
                 put(o, "tide_replica_eligible{upstream=\"%s\"} %d\n", up, uh->lag.eligible));
        head(o, "tide_replica_excluded_total", "counter",
             "Times the replica was taken out of service for lag or missing readings.");
        EACH(if (uh->standby) put(o, "tide_replica_excluded_total{upstream=\"%s\"} %lld\n", up,
                                  uh->lag.excluded));
    }
#undef EACH
}

static void render_cache(out *o, tide_app *app)
{
    tide_rcache_stats c;
    tide_rcache_get_stats(app, &c);
    single(o, "tide_cache_enabled", "gauge", "1 when the result cache is on.", c.enabled);
    single(o, "tide_cache_max_bytes", "gauge", "cache.max_bytes.", c.max_bytes);
    head(o, "tide_cache_entries", "gauge", "Entries held, by scope.");
    for (int i = 0; i < TIDE_SCOPES; i++)
        put(o, "tide_cache_entries{scope=\"%s\"} %lld\n", tide_cache_scope_names[i],
            c.scope[i].entries);
    head(o, "tide_cache_bytes", "gauge", "Bytes held (counted against max_bytes), by scope.");
    for (int i = 0; i < TIDE_SCOPES; i++)
        put(o, "tide_cache_bytes{scope=\"%s\"} %lld\n", tide_cache_scope_names[i],
            c.scope[i].bytes);
    head(o, "tide_cache_lookups_total", "counter",
         "Requests on cached routes and script lookups, by scope and what they got.");
    for (int i = 0; i < TIDE_SCOPES; i++) {
        const tide_rcache_scope_stats *s = &c.scope[i];
        const char *sc = tide_cache_scope_names[i];
        put(o,
            "tide_cache_lookups_total{scope=\"%s\",result=\"hit\"} %lld\n"
            "tide_cache_lookups_total{scope=\"%s\",result=\"miss\"} %lld\n"
            "tide_cache_lookups_total{scope=\"%s\",result=\"stale\"} %lld\n"
            "tide_cache_lookups_total{scope=\"%s\",result=\"stale_if_error\"} %lld\n"
            "tide_cache_lookups_total{scope=\"%s\",result=\"coalesced\"} %lld\n"
            "tide_cache_lookups_total{scope=\"%s\",result=\"bypass\"} %lld\n",
            sc, s->hits, sc, s->misses, sc, s->stale, sc, s->stale_if_error, sc, s->coalesced, sc,
            s->bypass);
    }
    head(o, "tide_cache_stores_total", "counter", "Answers offered to the cache, by outcome.");
    for (int i = 0; i < TIDE_SCOPES; i++)
        put(o,
            "tide_cache_stores_total{scope=\"%s\",outcome=\"stored\"} %lld\n"
            "tide_cache_stores_total{scope=\"%s\",outcome=\"not_stored\"} %lld\n",
            tide_cache_scope_names[i], c.scope[i].stored, tide_cache_scope_names[i],
            c.scope[i].not_stored);
    head(o, "tide_cache_not_modified_total", "counter", "304 answers to If-None-Match.");
    long long nm = 0, rf = 0;
    for (int i = 0; i < TIDE_SCOPES; i++) {
        nm += c.scope[i].not_modified;
        rf += c.scope[i].refreshes;
    }
    put(o, "tide_cache_not_modified_total %lld\n", nm);
    single(o, "tide_cache_refreshes_total", "counter", "Background refreshes of stale entries.",
           rf);
    single(o, "tide_cache_evictions_total", "counter", "Entries evicted to stay within max_bytes.",
           c.evictions);
    single(o, "tide_cache_invalidations_total", "counter", "Tags invalidated (writes, NOTIFYs).",
           c.invalidations);
    single(o, "tide_cache_raced_total", "counter",
           "Answers not stored because a write invalidated them while they were read.", c.raced);
    single(o, "tide_cache_notifications_total", "counter", "NOTIFYs heard on cache.channel.",
           c.heard);
    single(o, "tide_cache_listen_up", "gauge",
           "1 while the LISTEN connection is up (0 down, -1 no channel).", c.hearing);
    single(o, "tide_cache_listen_losses_total", "counter", "LISTEN connections lost.",
           c.hearing_lost);
}

static long long count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    long long n = 0;
    struct dirent *e;
    while ((e = readdir(d))) n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own fd */
}

static long long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    long long size = 0, rss = 0;
    int ok = fscanf(f, "%lld %lld", &size, &rss) == 2;
    fclose(f);
    return ok ? rss * sysconf(_SC_PAGESIZE) : -1;
}

static void one_stopped(const char *route, long long stops, double closed, void *arg)
{
    out *o = arg;
    char buf[512];
    put(o, "tide_route_script_stops_total{route=\"%s\"} %lld\n", esc(route, buf, sizeof buf),
        stops);
    (void)closed;
}

static void one_closed(const char *route, long long stops, double closed, void *arg)
{
    out *o = arg;
    char buf[512];
    (void)stops;
    put(o, "tide_route_quarantined{route=\"%s\"} %d\n", esc(route, buf, sizeof buf), closed > 0);
}

/* What the scripts' budgets did (runtime/guard.h): stops by reason, quarantines, memory. */
static void render_scripts(out *o, tide_app *app)
{
    tide_guard_stats g;
    tide_guard_get_stats(&g);
    head(o, "tide_script_stops_total", "counter",
         "Requests (or bundle loads) whose script was stopped at its budget, by reason.");
    put(o,
        "tide_script_stops_total{reason=\"cpu\"} %lld\n"
        "tide_script_stops_total{reason=\"memory\"} %lld\n",
        g.stops_cpu, g.stops_memory);
    single(o, "tide_script_late_stops_total", "counter",
           "Stopped scripts still running 100 ms later (inside one long C call; the loop "
           "watchdog restarts the worker if it goes on).",
           g.late_stops);
    single(o, "tide_route_quarantines_total", "counter",
           "Routes put in quarantine for being stopped too often.", g.quarantines);
    head(o, "tide_route_script_stops_total", "counter", "Stops per route since the bundle loaded.");
    tide_vm_each_stopped_route(app->vm, ev_now(app->loop), one_stopped, o);
    head(o, "tide_route_quarantined", "gauge",
         "1 while a route is in quarantine (answering 503 TIDE_ROUTE_QUARANTINED).");
    tide_vm_each_stopped_route(app->vm, ev_now(app->loop), one_closed, o);
    size_t used, peak, limit;
    tide_vm_memory(app->vm, &used, &peak, &limit);
    single(o, "tide_lua_memory_bytes", "gauge", "Bytes the current bundle's Lua state holds.",
           (long long)used);
    single(o, "tide_lua_memory_limit_bytes", "gauge", "script.max_memory.", (long long)limit);
}

static void render_process(out *o, tide_app *app)
{
    tide_jwt_cache_stats jc;
    tide_jwt_cache_get_stats(app->jwt_cache, &jc);
    head(o, "tide_jwt_cache_lookups_total", "counter", "Verified-token cache lookups.");
    put(o,
        "tide_jwt_cache_lookups_total{result=\"hit\"} %lld\n"
        "tide_jwt_cache_lookups_total{result=\"miss\"} %lld\n",
        jc.hits, jc.misses);
    tide_log_stats ls;
    tide_log_get_stats(&ls);
    const tide_log_stream_stats *streams[2] = { &ls.out, &ls.err };
    static const char *const stream_names[2] = { "stdout", "stderr" };
    head(o, "tide_log_lines_total", "counter", "Log lines written, by stream.");
    for (int i = 0; i < 2; i++)
        put(o, "tide_log_lines_total{stream=\"%s\"} %lld\n", stream_names[i],
            streams[i]->written_lines);
    head(o, "tide_log_dropped_lines_total", "counter",
         "Log lines dropped because the reader fell behind (the buffer was full), by stream.");
    for (int i = 0; i < 2; i++)
        put(o, "tide_log_dropped_lines_total{stream=\"%s\"} %lld\n", stream_names[i],
            streams[i]->dropped_lines);
    head(o, "tide_log_dropped_bytes_total", "counter", "Bytes of the dropped lines, by stream.");
    for (int i = 0; i < 2; i++)
        put(o, "tide_log_dropped_bytes_total{stream=\"%s\"} %lld\n", stream_names[i],
            streams[i]->dropped_bytes);
    head(o, "tide_log_buffered_bytes", "gauge", "Log bytes waiting for the reader, by stream.");
    for (int i = 0; i < 2; i++)
        put(o, "tide_log_buffered_bytes{stream=\"%s\"} %lld\n", stream_names[i],
            streams[i]->buffered_bytes);
    tide_supervise_stats sv;
    tide_supervise_get_stats(&sv);
    head(o, "tide_worker_restarts_total", "counter",
         "Workers the supervising parent restarted, by reason: watchdog (its event loop stalled) "
         "or crash (killed by a signal, or exited non-zero).");
    for (int r = 0; r < TIDE_RESTART_REASONS; r++)
        put(o, "tide_worker_restarts_total{reason=\"%s\"} %lld\n", tide_supervise_reason_name(r),
            sv.restarts[r]);
    single(o, "tide_reloads_total", "counter", "Bundles swapped in (SIGHUP).", app->reloads);
    single(o, "tide_reload_failures_total", "counter", "Bundles rejected on reload.",
           app->reload_failures);
    single(o, "tide_routes", "gauge", "Routes the current bundle serves.",
           tide_vm_route_count(app->vm));
    head(o, "tide_event_loop_pass_seconds", "histogram",
         "How long each pass of the event loop kept every other request waiting.");
    hist(o, "tide_event_loop_pass_seconds", "", &loop_hist);
    single(o, "process_resident_memory_bytes", "gauge", "Resident set size.", rss_bytes());
    single(o, "process_open_fds", "gauge", "Open file descriptors.", count_fds());
    head(o, "process_start_time_seconds", "gauge", "Start time, seconds since the epoch.");
    put(o, "process_start_time_seconds %.3f\n", app->started_at);
}

char *tide_metrics_render(tide_app *app, size_t *len)
{
    out o = { malloc(32768), 0, 32768, 0 };
    if (!o.p) return NULL;
    render_requests(&o);
    render_http(&o, app);
    render_upstreams(&o, app);
    render_cache(&o, app);
    render_scripts(&o, app);
    render_process(&o, app);
    if (o.oom) {
        free(o.p);
        return NULL;
    }
    *len = o.n;
    return o.p;
}
