/* admin.c - the admin listener (default 127.0.0.1:8081, no authentication): /live (the
 * process answers), /ready and /health (the upstreams' health, 503 when a required one is
 * down), /admin/stats (HTTP, reload, JWT cache, result cache, event-loop and log counters, and
 * the supervising parent's restarts),
 * all GET; and POST /admin/cache/flush (every entry, or ?tag=TAG: what is tagged so). */
#include "admin.h"
#include "guard.h"
#include "health.h"
#include "jwtcache.h"
#include "log.h"
#include "luavm.h"
#include "rcache.h"
#include "metrics.h"
#include "qstats.h"
#include "supervise.h"
#include <stdlib.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void admin_health(tide_app *app, tide_http_req *req, int full)
{
    char body[8192];
    tide_health h;
    tide_health_get(app, &h);
    size_t n;
    if (full)
        n = tide_health_json(&h, body, sizeof body);
    else
        n = (size_t)snprintf(body, sizeof body, "{\"status\":\"%s\"}",
                             h.http_status == 200 ? "ready" : "not ready");
    tide_http_respond(req, h.http_status, "application/json", NULL, body, n);
}

/* Per-route percentiles for /admin/stats. */
typedef struct route_json { char *p; size_t n, cap; int first; } route_json;

static void one_route(const char *route, const tide_hist *h, long long n, void *arg)
{
    route_json *r = arg;
    char esc[300];
    tide_json_escape(esc, sizeof esc, route, (int)strlen(route));
    if (r->n < r->cap)
        r->n += (size_t)snprintf(r->p + r->n, r->cap - r->n,
                                 "%s\"%s\":{\"count\":%lld,\"p50_ms\":%.3f,\"p95_ms\":%.3f,"
                                 "\"p99_ms\":%.3f}", r->first ? "" : ",", esc, n,
                                 tide_hist_quantile(h, 0.5) * 1000.0,
                                 tide_hist_quantile(h, 0.95) * 1000.0,
                                 tide_hist_quantile(h, 0.99) * 1000.0);
    r->first = 0;
}

/* {"stdout":{...},"stderr":{...}}: each stream's counters (log.h). */
static void log_stats_json(const tide_log_stats *lg, char *out, size_t cap)
{
    const tide_log_stream_stats *st[2] = { &lg->out, &lg->err };
    static const char *const names[2] = { "stdout", "stderr" };
    size_t n = 0;
    for (int i = 0; i < 2 && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n,
                              "%s\"%s\":{\"written_lines\":%lld,\"dropped_lines\":%lld,"
                              "\"dropped_bytes\":%lld,\"buffered_bytes\":%lld,\"blocked\":%lld,"
                              "\"writer\":\"%s\"}%s", i ? "," : "{", names[i],
                              st[i]->written_lines, st[i]->dropped_lines, st[i]->dropped_bytes,
                              st[i]->buffered_bytes, st[i]->blocked, st[i]->writer,
                              i ? "}" : "");
}

typedef struct scripts_json { char *p; size_t n, cap; int first; } scripts_json;

static void one_stopped_route(const char *route, long long stops, double closed, void *arg)
{
    scripts_json *s = arg;
    if (s->n >= s->cap) return;
    int k = snprintf(s->p + s->n, s->cap - s->n,
                     "%s{\"route\":\"%s\",\"stops\":%lld,\"quarantined_s\":%.1f}",
                     s->first ? "" : ",", route, stops, closed);
    s->first = 0;
    if (k > 0) s->n += (size_t)k;
}

/* ,"scripts":{...}: the budgets' stops (runtime/guard.h) and the Lua state's memory. Route
 * patterns are the bundle's own (no quote or backslash: tide.router refuses them). */
static size_t scripts_stats_json(tide_app *app, char *p, size_t cap)
{
    tide_guard_stats g;
    tide_guard_get_stats(&g);
    size_t used, peak, limit;
    tide_vm_memory(app->vm, &used, &peak, &limit);
    scripts_json s = { p, 0, cap, 1 };
    int k = snprintf(p, cap,
                     ",\"scripts\":{\"max_cpu_ms\":%d,\"stops\":{\"cpu\":%lld,\"memory\":%lld},"
                     "\"late_stops\":%lld,\"quarantines\":%lld,\"memory\":{\"bytes\":%zu,"
                     "\"peak_bytes\":%zu,\"limit_bytes\":%zu},\"routes\":[",
                     app->cfg.script_max_cpu_ms, g.stops_cpu, g.stops_memory, g.late_stops,
                     g.quarantines, used, peak, limit);
    if (k < 0 || (size_t)k >= cap) return 0;
    s.n = (size_t)k;
    tide_vm_each_stopped_route(app->vm, ev_now(app->loop), one_stopped_route, &s);
    if (s.n + 3 >= cap) return 0;
    s.p[s.n++] = ']';
    s.p[s.n++] = '}';
    s.p[s.n] = 0;
    return s.n;
}

/* The "supervisor" object: the parent's restarts (runtime/supervise.h) and where this worker's
 * bundle came from. */
static void supervisor_json(tide_app *app, char *out, size_t cap)
{
    tide_supervise_stats sv;
    tide_supervise_get_stats(&sv);
    char last[512] = "null";
    if (sv.has_last) {
        char route[2 * TIDE_SUPERVISE_ROUTE_MAX + 8] = "null";
        if (sv.last_route[0]) {
            char esc[2 * TIDE_SUPERVISE_ROUTE_MAX];
            tide_json_escape(esc, sizeof esc, sv.last_route, (int)strlen(sv.last_route));
            snprintf(route, sizeof route, "\"%s\"", esc);
        }
        snprintf(last, sizeof last, "{\"reason\":\"%s\",\"worker\":%d,\"pid\":%d,\"route\":%s,"
                 "\"at\":%.3f}", tide_supervise_reason_name(sv.last_reason), sv.last_worker,
                 (int)sv.last_pid, route, sv.last_at);
    }
    snprintf(out, cap, "{\"supervised\":%s,\"parent_pid\":%d,\"watchdog_ms\":%d,"
             "\"restarts\":{\"watchdog\":%lld,\"crash\":%lld},\"last_restart\":%s,"
             "\"worker_starts\":%d,\"bundle\":\"%s\",\"bundle_generation\":%llu}",
             sv.supervised ? "true" : "false", (int)sv.parent, sv.watchdog_ms,
             sv.restarts[TIDE_RESTART_WATCHDOG], sv.restarts[TIDE_RESTART_CRASH], last,
             app->restarts + 1, app->bundle_from_snapshot ? "snapshot" : "disk",
             app->bundle_generation);
}

static void admin_stats(tide_app *app, tide_http_req *req)
{
    tide_http_stats h;
    tide_http_get_stats(app->http, &h);
    tide_jwt_cache_stats jc;
    tide_jwt_cache_get_stats(app->jwt_cache, &jc);
    tide_log_stats lg;
    tide_log_get_stats(&lg);
    char logs[512], supervisor[1024];
    log_stats_json(&lg, logs, sizeof logs);
    supervisor_json(app, supervisor, sizeof supervisor);
    char body[65536];
    int n = snprintf(body, sizeof body,
             "{\"http\":{\"accepted\":%lld,\"open\":%lld,\"requests\":%lld,\"responses\":%lld,"
             "\"rejected_431\":%lld,\"rejected_413\":%lld,\"timeouts_408\":%lld,"
             "\"rejected_400\":%lld,\"rejected_busy\":%lld,\"rejected_per_client\":%lld,"
             "\"body_bytes\":%lld,\"clients\":%lld,\"reads_deferred\":%lld,"
             "\"unsent_bytes\":%lld,\"slow_readers_closed\":%lld},"
             "\"worker\":%d,\"workers\":%d,\"pid\":%d,"
             "\"inflight\":%lld,\"reloads\":%lld,\"reload_failures\":%lld,\"routes\":%d,"
             "\"jwt_cache\":{\"hits\":%lld,\"misses\":%lld},"
             "\"loop\":{\"max_pass_ms\":%.3f,\"passes_over_50ms\":%lld},\"log\":%s,"
             "\"rest\":{\"schema_generation\":%llu,\"schema_reloads_heard\":%lld},"
             "\"supervisor\":%s,\"uptime_s\":%.1f,\"cache\":",
             h.accepted, h.open, h.requests, h.responses, h.rejected_431, h.rejected_413,
             h.timeouts_408, h.rejected_400, h.rejected_busy, h.rejected_per_client,
             h.body_bytes, h.clients, h.parked, h.unsent_bytes, h.slow_readers_closed, app->worker, app->nworkers > 1 ? app->nworkers : 1,
             (int)getpid(), app->inflight, app->reloads, app->reload_failures,
             tide_vm_route_count(app->vm), jc.hits, jc.misses, app->max_pass * 1000.0,
             app->slow_passes, logs, app->schema_generation, app->schema_reloads_heard,
             supervisor, ev_now(app->loop) - app->started_at);
    if (n > 0 && (size_t)n < sizeof body - 2) {
        n += (int)tide_rcache_stats_json(app, body + n, sizeof body - (size_t)n - 1);
        n += (int)scripts_stats_json(app, body + n, sizeof body - (size_t)n - 2);
        route_json r = { body + n, 0, sizeof body - (size_t)n - 2, 1 };
        r.n = (size_t)snprintf(r.p, r.cap, ",\"routes\":{");
        tide_metrics_each_route(one_route, &r);
        if (r.n + 1 < r.cap) {
            r.p[r.n++] = '}';
            n += (int)r.n;
        }
        body[n++] = '}';
        body[n] = 0;
    }
    tide_http_respond(req, 200, "application/json", NULL, body, strlen(body));
}

/* GET /admin/queries[?limit=N][&reset=1]: statements by total time; reset=1 clears the
 * statistics after answering with them. */
static void admin_queries(tide_http_req *req)
{
    int limit = 50, reset = 0;
    const char *q = req->query, *end = req->query + req->query_len;
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        size_t n = amp ? (size_t)(amp - q) : (size_t)(end - q);
        if (n > 6 && memcmp(q, "limit=", 6) == 0)
            limit = atoi(q + 6) > 0 && atoi(q + 6) <= 1000 ? atoi(q + 6) : limit;
        else if (n == 7 && memcmp(q, "reset=1", 7) == 0)
            reset = 1;
        q += n + 1;
    }
    size_t len = 0;
    char *body = tide_qstats_json(limit, &len);
    if (reset)
        tide_qstats_reset();
    if (body)
        tide_http_respond(req, 200, "application/json", NULL, body, len);
    else
        tide_http_respond_error(req, 503, "TIDE_OVERLOADED", "out of memory", NULL);
    free(body);
}

static int path_is(const tide_http_req *req, const char *p)
{
    size_t n = strlen(p);
    return req->path_len == n && memcmp(req->path, p, n) == 0;
}

/* POST /admin/cache/flush[?tag=TAG]: TAG is taken as sent (tags hold no characters that
 * need escaping: "trips", "trips/7"). */
static void admin_flush(tide_app *app, tide_http_req *req)
{
    if (!app->cache) {
        tide_http_respond_error(req, 409, "TIDE_CACHE_OFF", "the result cache is off", NULL);
        return;
    }
    const char *tag = NULL;
    size_t len = 0;
    if (req->query_len > 4 && memcmp(req->query, "tag=", 4) == 0) {
        tag = req->query + 4;
        len = req->query_len - 4;
        if (memchr(tag, '&', len) || memchr(tag, '%', len) || len > 256) {
            tide_http_respond_error(req, 400, "TIDE_BAD_REQUEST",
                                    "tag must be a plain tag such as trips or trips/7", NULL);
            return;
        }
    } else if (req->query_len > 0) {
        tide_http_respond_error(req, 400, "TIDE_BAD_REQUEST", "the only parameter is tag",
                                NULL);
        return;
    }
    tide_rcache_flush(app, tag, len);
    tide_info("cache flushed%s%.*s (admin)", tag ? ": tag " : "", (int)len, tag ? tag : "");
    char body[400];
    int n = snprintf(body, sizeof body, "{\"flushed\":%s%.*s%s}", tag ? "\"" : "\"all",
                     (int)len, tag ? tag : "", "\"");
    tide_http_respond(req, 200, "application/json", NULL, body, (size_t)n);
}

static void on_admin(tide_http_req *req, void *arg)
{
    tide_app *app = arg;
    if (path_is(req, "/admin/cache/flush")) {
        if (strcmp(req->method, "POST") == 0)
            admin_flush(app, req);
        else
            tide_http_respond_error(req, 405, "TIDE_METHOD_NOT_ALLOWED",
                                    "POST /admin/cache/flush", "Allow: POST\r\n");
    } else if (strcmp(req->method, "GET") != 0) {
        tide_http_respond_error(req, 405, "TIDE_METHOD_NOT_ALLOWED",
                                "admin endpoints are GET only", "Allow: GET\r\n");
    } else if (path_is(req, "/live")) {
        static const char live[] = "{\"status\":\"live\"}";
        tide_http_respond(req, 200, "application/json", NULL, live, sizeof live - 1);
    } else if (path_is(req, "/ready")) {
        admin_health(app, req, 0);
    } else if (path_is(req, "/health")) {
        admin_health(app, req, 1);
    } else if (path_is(req, "/admin/stats")) {
        admin_stats(app, req);
    } else if (path_is(req, "/admin/queries")) {
        admin_queries(req);
    } else if (path_is(req, "/metrics")) {
        size_t n = 0;
        char *text = tide_metrics_render(app, &n);
        if (text)
            tide_http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, text, n);
        else
            tide_http_respond_error(req, 503, "TIDE_OVERLOADED", "out of memory", NULL);
        free(text);
    } else {
        tide_http_respond_error(req, 404, "TIDE_NOT_FOUND", "no such admin endpoint", NULL);
    }
}

int tide_admin_start(tide_app *app)
{
    const tide_config *c = &app->cfg;
    tide_http_limits limits = c->http;
    limits.max_connections = 64;
    int rc = tide_http_listen(app->loop, c->admin_host, c->admin_port, &limits, on_admin, app,
                              &app->admin);
    if (rc != 0)
        tide_error("cannot listen on %s:%d (admin)", c->admin_host, c->admin_port);
    return rc;
}
