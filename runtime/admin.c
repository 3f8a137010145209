/* admin.c - the admin listener (default 127.0.0.1:8081). Read-only, open to local scrapers:
 * /live (the process answers), /ready and /health (the upstreams' health, 503 when a required
 * one is down), /metrics, /admin/stats (HTTP, reload, JWT cache, result cache, event-loop and
 * log counters, and the supervising parent's restarts) and /admin/queries, all GET. Changing
 * state, with the admin token (admin.token) as `Authorization: Bearer`: POST
 * /admin/cache/flush (every entry, or ?tag=TAG: what is tagged so) and POST
 * /admin/queries?reset=1.
 *
 * A web page in a browser on the same host can reach this listener: by DNS rebinding (its own
 * name resolving to 127.0.0.1, so it reads the answers too), and by plain cross-site POSTs.
 * Against the first, every request must name the listener by a Host no page can hold
 * (tide__admin_host_ok: localhost, an IP address, or admin.host; else 421). Against the
 * second, a state-changing request needs the token, which a page cannot send without a CORS
 * preflight that this listener never answers (401; 403 while no token is configured). The
 * token is compared in constant time and never logged.
 *
 * Every answer but /metrics' text is built by the JSON writer (jsonw.h), so no text a client
 * sends (a flush tag) or a bundle names (a route) can break it. */
#include "admin.h"
#include "crypto.h"
#include "guard.h"
#include "health.h"
#include "jsonw.h"
#include "jwtcache.h"
#include "log.h"
#include "lsn.h"
#include "luavm.h"
#include "rcache.h"
#include "metrics.h"
#include "qstats.h"
#include "supervise.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Sends w's document (and frees w): status, or 503 when the writer ran out of memory. */
static void respond_json(tide_http_req *req, int status, tide_jsonw *w, const char *extra)
{
    size_t len = 0;
    const char *text = tide_jsonw_result(w, &len);
    if (text) {
        tide_http_respond(req, status, "application/json", extra, text, len);
    } else {
        static const char busy[] = "{\"code\":\"TIDE_OVERLOADED\",\"message\":\"out of memory\","
                                   "\"details\":null,\"hint\":null}";
        tide_http_respond(req, 503, "application/json", NULL, busy, sizeof busy - 1);
    }
    tide_jsonw_free(w);
}

/* {"code","message","details":null,"hint":null}, the shape of every tide error. */
static void admin_error(tide_http_req *req, int status, const char *code, const char *msg,
                        const char *extra)
{
    tide_jsonw w;
    tide_jsonw_init(&w);
    tide_jsonw_object(&w);
    tide_jsonw_key_cstring(&w, "code", code);
    tide_jsonw_key_cstring(&w, "message", msg);
    tide_jsonw_key(&w, "details");
    tide_jsonw_null(&w);
    tide_jsonw_key(&w, "hint");
    tide_jsonw_null(&w);
    tide_jsonw_end(&w);
    respond_json(req, status, &w, extra);
}

static void admin_health(tide_app *app, tide_http_req *req, int full)
{
    char body[8192];
    tide_health h;
    tide_health_get(app, &h);
    tide_jsonw w;
    tide_jsonw_init(&w);
    if (full) {
        size_t n = tide_health_json(&h, body, sizeof body); /* health.c's own encoder */
        tide_jsonw_raw(&w, body, n);
    } else {
        tide_jsonw_object(&w);
        tide_jsonw_key_cstring(&w, "status", h.http_status == 200 ? "ready" : "not ready");
        tide_jsonw_end(&w);
    }
    respond_json(req, h.http_status, &w, NULL);
}

/* Per-route percentiles for /admin/stats: "routes":{"/v1/x":{...},...}. */
static void one_route(const char *route, const tide_hist *h, long long n, void *arg)
{
    tide_jsonw *w = arg;
    tide_jsonw_key(w, route);
    tide_jsonw_object(w);
    tide_jsonw_key_int(w, "count", n);
    tide_jsonw_key_number(w, "p50_ms", tide_hist_quantile(h, 0.5) * 1000.0, 3);
    tide_jsonw_key_number(w, "p95_ms", tide_hist_quantile(h, 0.95) * 1000.0, 3);
    tide_jsonw_key_number(w, "p99_ms", tide_hist_quantile(h, 0.99) * 1000.0, 3);
    tide_jsonw_end(w);
}

/* "log":{"stdout":{...},"stderr":{...}}: each stream's counters (log.h). */
static void log_stats_json(tide_jsonw *w)
{
    tide_log_stats lg;
    tide_log_get_stats(&lg);
    const tide_log_stream_stats *st[2] = { &lg.out, &lg.err };
    static const char *const names[2] = { "stdout", "stderr" };
    tide_jsonw_key(w, "log");
    tide_jsonw_object(w);
    for (int i = 0; i < 2; i++) {
        tide_jsonw_key(w, names[i]);
        tide_jsonw_object(w);
        tide_jsonw_key_int(w, "written_lines", st[i]->written_lines);
        tide_jsonw_key_int(w, "dropped_lines", st[i]->dropped_lines);
        tide_jsonw_key_int(w, "dropped_bytes", st[i]->dropped_bytes);
        tide_jsonw_key_int(w, "buffered_bytes", st[i]->buffered_bytes);
        tide_jsonw_key_int(w, "blocked", st[i]->blocked);
        tide_jsonw_key_cstring(w, "writer", st[i]->writer);
        tide_jsonw_end(w);
    }
    tide_jsonw_end(w);
}

static void one_stopped_route(const char *route, long long stops, double closed, void *arg)
{
    tide_jsonw *w = arg;
    tide_jsonw_object(w);
    tide_jsonw_key_cstring(w, "route", route);
    tide_jsonw_key_int(w, "stops", stops);
    tide_jsonw_key_number(w, "quarantined_s", closed, 1);
    tide_jsonw_end(w);
}

/* "scripts":{...}: the budgets' stops (runtime/guard.h) and the Lua state's memory. */
static void scripts_stats_json(tide_app *app, tide_jsonw *w)
{
    tide_guard_stats g;
    tide_guard_get_stats(&g);
    size_t used, peak, limit;
    tide_vm_memory(app->vm, &used, &peak, &limit);
    tide_jsonw_key(w, "scripts");
    tide_jsonw_object(w);
    tide_jsonw_key_int(w, "max_cpu_ms", app->cfg.script_max_cpu_ms);
    tide_jsonw_key(w, "stops");
    tide_jsonw_object(w);
    tide_jsonw_key_int(w, "cpu", g.stops_cpu);
    tide_jsonw_key_int(w, "memory", g.stops_memory);
    tide_jsonw_end(w);
    tide_jsonw_key_int(w, "late_stops", g.late_stops);
    tide_jsonw_key_int(w, "quarantines", g.quarantines);
    tide_jsonw_key(w, "memory");
    tide_jsonw_object(w);
    tide_jsonw_key_int(w, "bytes", (long long)used);
    tide_jsonw_key_int(w, "peak_bytes", (long long)peak);
    tide_jsonw_key_int(w, "limit_bytes", (long long)limit);
    tide_jsonw_end(w);
    tide_jsonw_key(w, "routes");
    tide_jsonw_array(w);
    tide_vm_each_stopped_route(app->vm, ev_now(app->loop), one_stopped_route, w);
    tide_jsonw_end(w);
    tide_jsonw_end(w);
}

/* "supervisor":{...}: the parent's restarts (runtime/supervise.h) and where this worker's
 * bundle came from. */
static void supervisor_json(tide_app *app, tide_jsonw *w)
{
    tide_supervise_stats sv;
    tide_supervise_get_stats(&sv);
    tide_jsonw_key(w, "supervisor");
    tide_jsonw_object(w);
    tide_jsonw_key_bool(w, "supervised", sv.supervised);
    tide_jsonw_key_int(w, "parent_pid", (long long)sv.parent);
    tide_jsonw_key_int(w, "watchdog_ms", sv.watchdog_ms);
    tide_jsonw_key(w, "restarts");
    tide_jsonw_object(w);
    tide_jsonw_key_int(w, "watchdog", sv.restarts[TIDE_RESTART_WATCHDOG]);
    tide_jsonw_key_int(w, "crash", sv.restarts[TIDE_RESTART_CRASH]);
    tide_jsonw_end(w);
    tide_jsonw_key(w, "last_restart");
    if (sv.has_last) {
        tide_jsonw_object(w);
        tide_jsonw_key_cstring(w, "reason", tide_supervise_reason_name(sv.last_reason));
        tide_jsonw_key_int(w, "worker", sv.last_worker);
        tide_jsonw_key_int(w, "pid", (long long)sv.last_pid);
        tide_jsonw_key_cstring(w, "route", sv.last_route[0] ? sv.last_route : NULL);
        tide_jsonw_key_number(w, "at", sv.last_at, 3);
        tide_jsonw_end(w);
    } else {
        tide_jsonw_null(w);
    }
    tide_jsonw_key_int(w, "worker_starts", app->restarts + 1);
    tide_jsonw_key_cstring(w, "bundle", app->bundle_from_snapshot ? "snapshot" : "disk");
    tide_jsonw_key_int(w, "bundle_generation", (long long)app->bundle_generation);
    tide_jsonw_end(w);
}

/* "replicas":{"replica":{lag...}} for the replica upstream (empty without one). */
static void replica_json(tide_app *app, tide_jsonw *w)
{
    tide_jsonw_key(w, "replicas");
    tide_jsonw_object(w);
    if (app->replica.u) { /* the one replica, when configured (main.c) */
        tide_replica_stats g;
        tide_replica_get_stats(&app->replica, ev_now(app->loop), &g);
        tide_jsonw_key(w, tide_upstream_name(app->replica.u->index));
        tide_jsonw_object(w);
        tide_jsonw_key_bool(w, "eligible", g.eligible);
        tide_jsonw_key_number(w, "lag_s", g.lag_s, 3);
        tide_jsonw_key_int(w, "lag_bytes", g.lag_bytes);
        tide_jsonw_key_cstring(w, "replayed_lsn", g.replayed);
        tide_jsonw_key_cstring(w, "primary_lsn", g.primary);
        tide_jsonw_key_int(w, "excluded", g.excluded);
        tide_jsonw_key_int(w, "remembered_writers",
                           app->writes ? tide_lsn_memo_count(app->writes) : 0);
        tide_jsonw_end(w);
    }
    tide_jsonw_end(w);
}

static void admin_stats(tide_app *app, tide_http_req *req)
{
    tide_http_stats h;
    tide_http_get_stats(app->http, &h);
    tide_jwt_cache_stats jc;
    tide_jwt_cache_get_stats(app->jwt_cache, &jc);
    tide_jsonw w;
    tide_jsonw_init(&w);
    tide_jsonw_object(&w);
    tide_jsonw_key(&w, "http");
    tide_jsonw_object(&w);
    tide_jsonw_key_int(&w, "accepted", h.accepted);
    tide_jsonw_key_int(&w, "open", h.open);
    tide_jsonw_key_int(&w, "requests", h.requests);
    tide_jsonw_key_int(&w, "responses", h.responses);
    tide_jsonw_key_int(&w, "rejected_431", h.rejected_431);
    tide_jsonw_key_int(&w, "rejected_413", h.rejected_413);
    tide_jsonw_key_int(&w, "timeouts_408", h.timeouts_408);
    tide_jsonw_key_int(&w, "rejected_400", h.rejected_400);
    tide_jsonw_key_int(&w, "rejected_busy", h.rejected_busy);
    tide_jsonw_key_int(&w, "rejected_per_client", h.rejected_per_client);
    tide_jsonw_key_int(&w, "body_bytes", h.body_bytes);
    tide_jsonw_key_int(&w, "clients", h.clients);
    tide_jsonw_key_int(&w, "reads_deferred", h.parked);
    tide_jsonw_key_int(&w, "unsent_bytes", h.unsent_bytes);
    tide_jsonw_key_int(&w, "slow_readers_closed", h.slow_readers_closed);
    tide_jsonw_end(&w);
    tide_jsonw_key_int(&w, "worker", app->worker);
    tide_jsonw_key_int(&w, "workers", app->nworkers > 1 ? app->nworkers : 1);
    tide_jsonw_key_int(&w, "pid", (long long)getpid());
    tide_jsonw_key_int(&w, "inflight", app->inflight);
    tide_jsonw_key_int(&w, "reloads", app->reloads);
    tide_jsonw_key_int(&w, "reload_failures", app->reload_failures);
    tide_jsonw_key_int(&w, "route_count", tide_vm_route_count(app->vm));
    long long lreq, lcross;
    tide_vm_crossings(&lreq, &lcross);
    tide_jsonw_key(&w, "lua_crossings"); /* C<->Lua, by the requests that ended */
    tide_jsonw_object(&w);
    tide_jsonw_key_int(&w, "requests", lreq);
    tide_jsonw_key_int(&w, "crossings", lcross);
    tide_jsonw_end(&w);
    tide_jsonw_key(&w, "jwt_cache");
    tide_jsonw_object(&w);
    tide_jsonw_key_int(&w, "hits", jc.hits);
    tide_jsonw_key_int(&w, "misses", jc.misses);
    tide_jsonw_end(&w);
    tide_jsonw_key(&w, "loop");
    tide_jsonw_object(&w);
    tide_jsonw_key_number(&w, "max_pass_ms", app->max_pass * 1000.0, 3);
    tide_jsonw_key_int(&w, "passes_over_50ms", app->slow_passes);
    tide_jsonw_end(&w);
    log_stats_json(&w);
    tide_jsonw_key(&w, "rest");
    tide_jsonw_object(&w);
    tide_jsonw_key_int(&w, "schema_generation", (long long)app->schema_generation);
    tide_jsonw_key_int(&w, "schema_reloads_heard", app->schema_reloads_heard);
    tide_jsonw_end(&w);
    supervisor_json(app, &w);
    replica_json(app, &w);
    tide_jsonw_key(&w, "admin_refused");
    tide_jsonw_object(&w);
    for (int i = 0; i < 3; i++)
        tide_jsonw_key_int(&w, tide_admin_refused_names[i], app->admin_refused[i]);
    tide_jsonw_end(&w);
    tide_jsonw_key_number(&w, "uptime_s", ev_now(app->loop) - app->started_at, 1);
    char cache[4096];
    size_t n = tide_rcache_stats_json(app, cache, sizeof cache); /* rcache.c's own encoder */
    tide_jsonw_key(&w, "cache");
    tide_jsonw_raw(&w, cache, n);
    scripts_stats_json(app, &w);
    tide_jsonw_key(&w, "routes");
    tide_jsonw_object(&w);
    tide_metrics_each_route(one_route, &w);
    tide_jsonw_end(&w);
    tide_jsonw_end(&w);
    respond_json(req, 200, &w, NULL);
}

/* The query's limit=N (1..1000; else 50) and whether it says reset=1. */
static void queries_params(const tide_http_req *req, int *limit, int *reset)
{
    const char *q = req->query, *end = req->query + req->query_len;
    *limit = 50;
    *reset = 0;
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        size_t n = amp ? (size_t)(amp - q) : (size_t)(end - q);
        if (n > 6 && memcmp(q, "limit=", 6) == 0)
            *limit = atoi(q + 6) > 0 && atoi(q + 6) <= 1000 ? atoi(q + 6) : *limit;
        else if (n == 7 && memcmp(q, "reset=1", 7) == 0) *reset = 1;
        q += n + 1;
    }
}

/* GET /admin/queries[?limit=N]: statements by total time; POST /admin/queries?reset=1[&limit=N]
 * answers the same, then clears the statistics. */
static void admin_queries(tide_http_req *req, int limit, int reset)
{
    size_t len = 0;
    char *body = tide_qstats_json(limit, &len); /* qstats.c's own encoder */
    if (reset) tide_qstats_reset();
    tide_jsonw w;
    tide_jsonw_init(&w);
    if (body) tide_jsonw_raw(&w, body, len);
    respond_json(req, 200, &w, NULL); /* no body: the writer failed, a 503 */
    free(body);
}

static int path_is(const tide_http_req *req, const char *p)
{
    size_t n = strlen(p);
    return req->path_len == n && memcmp(req->path, p, n) == 0;
}

/* POST /admin/cache/flush[?tag=TAG]: TAG is taken as sent, not decoded. */
static void admin_flush(tide_app *app, tide_http_req *req)
{
    if (!app->cache) {
        admin_error(req, 409, "TIDE_CACHE_OFF", "the result cache is off", NULL);
        return;
    }
    const char *tag = NULL;
    size_t len = 0;
    if (req->query_len > 4 && memcmp(req->query, "tag=", 4) == 0) {
        tag = req->query + 4;
        len = req->query_len - 4;
        if (memchr(tag, '&', len) || memchr(tag, '%', len) || len > 256) {
            admin_error(req, 400, "TIDE_BAD_REQUEST",
                        "tag must be a plain tag such as trips or trips/7", NULL);
            return;
        }
    } else if (req->query_len > 0) {
        admin_error(req, 400, "TIDE_BAD_REQUEST", "the only parameter is tag", NULL);
        return;
    }
    tide_rcache_flush(app, tag, len);
    tide_info("cache flushed%s%.*s (admin)", tag ? ": tag " : "", (int)len, tag ? tag : "");
    tide_jsonw w;
    tide_jsonw_init(&w);
    tide_jsonw_object(&w);
    if (tag) tide_jsonw_key_string(&w, "flushed", tag, len);
    else tide_jsonw_key_cstring(&w, "flushed", "all");
    tide_jsonw_end(&w);
    respond_json(req, 200, &w, NULL);
}

/* ---- who may ask ----------------------------------------------------------------------- */

/* [p, end) is a port number: 1 to 5 digits, at most 65535. */
static int port_ok(const char *p, const char *end)
{
    long v = 0;
    if (p >= end || end - p > 5) return 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9') return 0;
        v = v * 10 + (*p - '0');
    }
    return v <= 65535;
}

int tide__admin_host_ok(const char *host, size_t len, const char *admin_host)
{
    char name[256];
    const char *end = host + len, *at = host, *port = NULL;
    size_t n;
    int v6 = 0;
    if (!host) return 1; /* HTTP/1.0 without Host: no browser sends that */
    if (len == 0 || len >= sizeof name) return 0;
    if (host[0] == '[') {
        const char *rb = memchr(host, ']', len);
        if (!rb) return 0;
        at = host + 1;
        n = (size_t)(rb - at);
        if (rb + 1 < end) {
            if (rb[1] != ':') return 0;
            port = rb + 2;
        }
        v6 = 1;
    } else {
        const char *colon = memrchr(host, ':', len);
        n = colon ? (size_t)(colon - host) : len;
        port = colon ? colon + 1 : NULL;
    }
    if (port && !port_ok(port, end)) return 0;
    memcpy(name, at, n);
    name[n] = '\0';
    if (n == 0 || strlen(name) != n) return 0;
    if (v6) {
        struct in6_addr a6;
        return inet_pton(AF_INET6, name, &a6) == 1;
    }
    struct in_addr a4;
    if (inet_pton(AF_INET, name, &a4) == 1) return 1;
    if (strcasecmp(name, "localhost") == 0) return 1;
    return admin_host && *admin_host && strcasecmp(name, admin_host) == 0;
}

int tide__admin_token_ok(const char *token, const char *authz, size_t len)
{
    if (!token || !*token || !authz || len < 7 || strncasecmp(authz, "Bearer ", 7) != 0) return 0;
    const char *v = authz + 7, *end = authz + len;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t')) end--;
    return tide_crypto_equal_secret(v, (size_t)(end - v), token, strlen(token));
}

const char *const tide_admin_refused_names[3] = { "token_unset", "bad_token", "host" };

/* Counts a refused admin request (/metrics tide_admin_refused_total, /admin/stats) and logs
 * it: the first, then at most one line per 10 s with the count so far, naming the method,
 * the path (200 bytes at most) and why - never the Authorization header. */
static void refused(tide_app *app, tide_http_req *req, int why)
{
    app->admin_refused[why]++;
    double now = ev_now(app->loop);
    if (app->admin_refused_logged_at > 0 && now < app->admin_refused_logged_at + 10) return;
    app->admin_refused_logged_at = now;
    long long all = app->admin_refused[0] + app->admin_refused[1] + app->admin_refused[2];
    int plen = req->path_len > 200 ? 200 : (int)req->path_len;
    tide_warn("admin: refused %s %.*s (%s); %lld admin requests refused since start", req->method,
              plen, req->path, tide_admin_refused_names[why], all);
}

/* A state-changing request carries the admin token; else it is answered here (401, or 403
 * while no token is configured) and 0 returned. */
static int admitted(tide_app *app, tide_http_req *req)
{
    if (!app->cfg.admin_token) {
        refused(app, req, TIDE_ADMIN_REFUSED_UNSET);
        admin_error(req, 403, "TIDE_ADMIN_TOKEN_UNSET",
                    "state-changing admin requests are refused until admin.token "
                    "(TIDE_ADMIN_TOKEN) is set",
                    NULL);
        return 0;
    }
    size_t len = 0;
    const char *authz = tide_http_header_get(req, "authorization", &len);
    if (!tide__admin_token_ok(app->cfg.admin_token, authz, len)) {
        refused(app, req, TIDE_ADMIN_REFUSED_TOKEN);
        admin_error(req, 401, "TIDE_ADMIN_UNAUTHORIZED",
                    "this admin request needs the admin token as Authorization: Bearer",
                    "WWW-Authenticate: Bearer realm=\"tide-admin\"\r\n");
        return 0;
    }
    return 1;
}

static void on_admin(tide_http_req *req, void *arg)
{
    tide_app *app = arg;
    size_t hlen = 0;
    const char *host = tide_http_header_get(req, "host", &hlen);
    int post = strcmp(req->method, "POST") == 0, get = strcmp(req->method, "GET") == 0;
    if (!tide__admin_host_ok(host, hlen, app->cfg.admin_host)) {
        refused(app, req, TIDE_ADMIN_REFUSED_HOST);
        admin_error(req, 421, "TIDE_ADMIN_HOST",
                    "the admin listener answers requests for localhost, an IP address or "
                    "admin.host only",
                    NULL);
    } else if (path_is(req, "/admin/cache/flush")) {
        if (!post)
            admin_error(req, 405, "TIDE_METHOD_NOT_ALLOWED", "POST /admin/cache/flush",
                        "Allow: POST\r\n");
        else if (admitted(app, req)) admin_flush(app, req);
    } else if (path_is(req, "/admin/queries") && (get || post)) {
        int limit, reset;
        queries_params(req, &limit, &reset);
        if (get && reset)
            admin_error(req, 405, "TIDE_METHOD_NOT_ALLOWED",
                        "reset=1 changes state: POST /admin/queries?reset=1 with the admin token",
                        "Allow: GET, POST\r\n");
        else if (post && !reset)
            admin_error(req, 400, "TIDE_BAD_REQUEST",
                        "POST /admin/queries resets the statistics: add reset=1", NULL);
        else if (get || admitted(app, req)) admin_queries(req, limit, reset);
    } else if (!get) {
        admin_error(req, 405, "TIDE_METHOD_NOT_ALLOWED", "admin endpoints are GET only",
                    "Allow: GET\r\n");
    } else if (path_is(req, "/live")) {
        tide_jsonw w;
        tide_jsonw_init(&w);
        tide_jsonw_object(&w);
        tide_jsonw_key_cstring(&w, "status", "live");
        tide_jsonw_end(&w);
        respond_json(req, 200, &w, NULL);
    } else if (path_is(req, "/ready")) {
        admin_health(app, req, 0);
    } else if (path_is(req, "/health")) {
        admin_health(app, req, 1);
    } else if (path_is(req, "/admin/stats")) {
        admin_stats(app, req);
    } else if (path_is(req, "/metrics")) {
        size_t n = 0;
        char *text = tide_metrics_render(app, &n);
        if (text)
            tide_http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, text, n);
        else admin_error(req, 503, "TIDE_OVERLOADED", "out of memory", NULL);
        free(text);
    } else {
        admin_error(req, 404, "TIDE_NOT_FOUND", "no such admin endpoint", NULL);
    }
}

int tide_admin_start(tide_app *app)
{
    const tide_config *c = &app->cfg;
    tide_http_limits limits = c->http;
    limits.max_connections = 64;
    int rc = tide_http_listen(app->loop, c->admin_host, c->admin_port, &limits, on_admin, app,
                              &app->admin);
    if (rc != 0) tide_error("cannot listen on %s:%d (admin)", c->admin_host, c->admin_port);
    else if (c->admin_token_published)
        tide_warn("admin.token is the published development token: ignored outside "
                  "development mode, so POST /admin/* is refused until you set your own "
                  "(TIDE_ADMIN_TOKEN or admin.token, e.g. `openssl rand -hex 24`)");
    return rc;
}
