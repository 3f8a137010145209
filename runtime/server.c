/* server.c - the request entry points: the public listener (JWT check, then the script
 * bundle) and the admin listener (/live, /ready, /health, /admin/stats); reload on SIGHUP and
 * draining on SIGTERM. */
#include "server.h"
#include "jwt.h"
#include "jwtcache.h"
#include "log.h"
#include "luavm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define TIDE_DRAIN_SECONDS 10.0

static void respond_json(tide_http_req *req, int status, const char *extra, const char *body)
{
    tide_http_respond(req, status, "application/json", extra, body, strlen(body));
}

static void respond_error(tide_http_req *req, int status, const char *code, const char *msg,
                          const char *extra)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"code\":\"%s\",\"message\":\"%s\",\"details\":null,\"hint\":null}", code, msg);
    respond_json(req, status, extra, body);
}

/* 401 for a refused token. The codes and messages are part of the API (clients match on
 * them): keep them stable. */
static void jwt_failure(tide_http_req *req, int rc)
{
    const char *code = "TIDE_JWT_INVALID", *msg = "invalid token";
    switch (rc) {
    case TIDE_EEXPIRED: code = "TIDE_JWT_EXPIRED"; msg = "token has expired"; break;
    case TIDE_ENOTYET: code = "TIDE_JWT_NOT_YET_VALID"; msg = "token is not valid yet"; break;
    case TIDE_EALG: code = "TIDE_JWT_ALGORITHM"; msg = "token algorithm not allowed (HS256 only)";
        break;
    case TIDE_EROLE: code = "TIDE_JWT_ROLE"; msg = "token role not allowed"; break;
    case TIDE_EAUTH: msg = "token signature does not verify"; break;
    case TIDE_ENOEXP: msg = "token has no exp claim"; break;
    case TIDE_EAUDIENCE: code = "TIDE_JWT_AUDIENCE"; msg = "token audience (aud) not accepted";
        break;
    case TIDE_EISSUER: code = "TIDE_JWT_ISSUER"; msg = "token issuer (iss) not accepted"; break;
    default: break;
    }
    respond_error(req, 401, code, msg, "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n");
}

static void on_request(tide_http_req *req, void *arg)
{
    tide_app *app = arg;
    if (app->draining) {
        respond_error(req, 503, "TIDE_SHUTTING_DOWN", "tide is shutting down", NULL);
        return;
    }
    size_t alen = 0;
    const char *auth = tide_http_header_get(req, "authorization", &alen);
    if (!auth || alen == 0) {
        tide_vm_dispatch(app->vm, req, NULL, TIDE_ROLE_ANON);
        return;
    }
    if (alen < 7 || strncasecmp(auth, "Bearer ", 7) != 0) {
        respond_error(req, 401, "TIDE_JWT_INVALID", "Authorization must be a Bearer token",
                      "WWW-Authenticate: Bearer\r\n");
        return;
    }
    const char *tok = auth + 7;
    size_t tlen = alen - 7;
    while (tlen && *tok == ' ') { tok++; tlen--; }
    while (tlen && tok[tlen - 1] == ' ') tlen--;
    const tide_config *c = &app->cfg;
    const tide_jwt_policy policy = { c->jwt_leeway, c->jwt_require_exp, c->jwt_audience,
                                     c->jwt_issuer };
    time_t now = (time_t)ev_now(app->loop);
    tide_role role;
    const char *cached;
    if (tide_jwt_cache_get(app->jwt_cache, tok, tlen, now, &policy, &role, &cached)) {
        tide_vm_dispatch(app->vm, req, cached, role);
        return;
    }
    tide_jwt_claims claims;
    int rc = tide_jwt_verify(c->jwt_secret, strlen(c->jwt_secret), tok, tlen, now, &policy,
                             &claims);
    if (rc != 0) { jwt_failure(req, rc); return; }
    /* cache first: the token lives in req, which dispatch may answer and free at once */
    const char *stored = tide_jwt_cache_put(app->jwt_cache, tok, tlen, &claims);
    tide_vm_dispatch(app->vm, req, stored ? stored : claims.claims_json, claims.role);
    free(claims.claims_json);
}

/* ---- admin ----------------------------------------------------------------------------- */

/* Appends the /health object of one upstream; returns its status string. */
static const char *health_upstream(tide_app *app, int i, char *buf, size_t cap, size_t *n)
{
    const tide_upstream *u = app->ups[i];
    double now = ev_now(app->loop);
    tide_pool_stats s;
    tide_pool_get_stats(u->pool, &s);
    const char *status = tide_upstream_status(u, now);
    const tide_breaker *b = &u->breaker;
    char fallback[32] = "null";
    if (u->policy.fallback >= 0)
        snprintf(fallback, sizeof fallback, "\"%s\"", tide_upstream_name(u->policy.fallback));
    *n += (size_t)snprintf(
        buf + *n, cap - *n,
        "%s\"%s\":{\"status\":\"%s\",\"required\":%s,\"pool_of\":\"%s\","
        "\"probe\":{\"ok\":%s,\"latency_ms\":%.3f,\"age_s\":%.3f},"
        "\"breaker\":{\"state\":\"%s\",\"calls\":%lld,\"failures\":%lld,"
        "\"consecutive_failures\":%d,\"opened\":%lld,\"rejected\":%lld,"
        "\"retry_after_s\":%.3f},"
        "\"pool\":{\"size\":%d,\"open\":%d,\"idle\":%d,\"busy\":%d,\"connecting\":%d,"
        "\"waiting\":%d,\"jobs\":%lld,\"errors\":%lld,\"connect_failures\":%lld,"
        "\"acquire_timeouts\":%lld},\"retries\":%lld,\"fallback\":%s}",
        i ? "," : "", tide_upstream_name(i), status, u->policy.required ? "true" : "false",
        tide_pool_name(u->pool), u->probe_done && u->probe_ok ? "true" : "false",
        u->probe_latency * 1000.0, u->probe_done ? now - u->probe_at : -1.0,
        tide_breaker_state_name(b->state), b->calls, b->failures, b->consecutive_failures,
        b->opened, b->rejected, tide_breaker_retry_after(b, now), s.size, s.open, s.idle,
        s.busy, s.connecting, s.waiting, s.jobs, s.errors, s.connect_failures,
        s.acquire_timeouts, u->retries, fallback);
    if (*n >= cap) *n = cap - 1;       /* truncated (cannot happen at today's sizes): stay in bounds */
    return status;
}

int tide_server_health_json(tide_app *app, char *body, size_t cap)
{
    size_t n = 0;
    int down = 0, degraded = 0;
    n += (size_t)snprintf(body, cap, "{\"upstreams\":{");
    for (int i = 0; i < TIDE_UPSTREAMS; i++) {
        const char *st = health_upstream(app, i, body, cap, &n);
        if (strcmp(st, "healthy") != 0) {
            if (strcmp(st, "down") == 0 && app->ups[i]->policy.required) down = 1;
            else degraded = 1;
        }
    }
    snprintf(body + n, cap - n, "},\"status\":\"%s\"}",
             down ? "down" : degraded ? "degraded" : "ok");
    return down ? 503 : 200;
}

static void admin_health(tide_app *app, tide_http_req *req, int full)
{
    char body[8192];
    int status = tide_server_health_json(app, body, sizeof body);
    if (!full)
        snprintf(body, sizeof body, "{\"status\":\"%s\"}", status == 200 ? "ready" : "not ready");
    respond_json(req, status, NULL, body);
}

static void admin_stats(tide_app *app, tide_http_req *req)
{
    tide_http_stats h;
    tide_http_get_stats(app->http, &h);
    tide_jwt_cache_stats jc;
    tide_jwt_cache_get_stats(app->jwt_cache, &jc);
    char body[1024];
    snprintf(body, sizeof body,
             "{\"http\":{\"accepted\":%lld,\"open\":%lld,\"requests\":%lld,\"responses\":%lld,"
             "\"rejected_431\":%lld,\"rejected_413\":%lld,\"timeouts_408\":%lld,"
             "\"rejected_400\":%lld,\"rejected_busy\":%lld,\"rejected_per_client\":%lld,"
             "\"body_bytes\":%lld,\"clients\":%lld},"
             "\"inflight\":%lld,\"reloads\":%lld,\"reload_failures\":%lld,\"routes\":%d,"
             "\"jwt_cache\":{\"hits\":%lld,\"misses\":%lld},"
             "\"loop\":{\"max_pass_ms\":%.3f,\"passes_over_50ms\":%lld},\"uptime_s\":%.1f}",
             h.accepted, h.open, h.requests, h.responses, h.rejected_431, h.rejected_413,
             h.timeouts_408, h.rejected_400, h.rejected_busy, h.rejected_per_client,
             h.body_bytes, h.clients, app->inflight, app->reloads, app->reload_failures,
             tide_vm_route_count(app->vm), jc.hits, jc.misses, app->max_pass * 1000.0,
             app->slow_passes, ev_now(app->loop) - app->started_at);
    respond_json(req, 200, NULL, body);
}

static int path_is(const tide_http_req *req, const char *p)
{
    size_t n = strlen(p);
    return req->path_len == n && memcmp(req->path, p, n) == 0;
}

static void on_admin(tide_http_req *req, void *arg)
{
    tide_app *app = arg;
    if (strcmp(req->method, "GET") != 0) {
        respond_error(req, 405, "TIDE_METHOD_NOT_ALLOWED", "admin endpoints are GET only",
                      "Allow: GET\r\n");
    } else if (path_is(req, "/live")) {
        respond_json(req, 200, NULL, "{\"status\":\"live\"}");
    } else if (path_is(req, "/ready")) {
        admin_health(app, req, 0);
    } else if (path_is(req, "/health")) {
        admin_health(app, req, 1);
    } else if (path_is(req, "/admin/stats")) {
        admin_stats(app, req);
    } else {
        respond_error(req, 404, "TIDE_NOT_FOUND", "no such admin endpoint", NULL);
    }
}

/* A breaker opened: whatever depends on that upstream (a pooler in front of that Postgres)
 * stops waiting for it. Reads fail over or retry; writes learn their outcome is unknown. */
static void upstream_opened(tide_upstream *u, void *arg)
{
    tide_app *app = arg;
    tide_warn("circuit opened on upstream %s", tide_upstream_name(u->index));
    for (int i = 0; i < TIDE_UPSTREAMS; i++) {
        tide_upstream *v = app->ups[i];
        if (v == u || v != &app->upstream_store[i] || v->policy.depends_on != u->index) continue;
        char why[96];
        snprintf(why, sizeof why, "its database is down (circuit open on upstream %s)",
                 tide_upstream_name(u->index));
        tide_pool_fail_all(v->pool, why);
    }
}

void tide_server_apply_policy(tide_app *app)
{
    for (int i = 0; i < TIDE_UPSTREAMS; i++) {
        if (app->ups[i] != &app->upstream_store[i]) continue;      /* an alias of direct */
        tide_resilience r = *tide_vm_resilience(app->vm, i);
        if (r.fallback >= 0 && app->ups[r.fallback] == app->ups[i]) r.fallback = -1;
        if (r.depends_on >= 0 && app->ups[r.depends_on] == app->ups[i]) r.depends_on = -1;
        tide_upstream_configure(app->ups[i], &r);
        app->ups[i]->on_open = upstream_opened;
        app->ups[i]->on_open_arg = app;
    }
}

/* ---- signals --------------------------------------------------------------------------- */

/* Builds a new script bundle and swaps it in; on failure logs and keeps the old one. */
static void reload(tide_app *app)
{
    char err[2048];
    tide_vm *vm = NULL;
    if (tide_vm_new(app, &vm, err, sizeof err) != 0) {
        app->reload_failures++;
        tide_error("reload rejected, the previous bundle keeps serving: %s", err);
        return;
    }
    tide_vm *old = app->vm;
    app->vm = vm;
    tide_server_apply_policy(app);
    app->reloads++;
    tide_vm_unref(old);
    tide_info("reloaded scripts and policies (%d routes)", tide_vm_route_count(vm));
}

static void on_sighup(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop; (void)revents;
    reload(w->data);
}

static void drain_check(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    tide_app *app = w->data;
    if (app->inflight == 0 || ev_now(loop) - app->drain_started > TIDE_DRAIN_SECONDS) {
        ev_timer_stop(loop, w);
        ev_break(loop, EVBREAK_ALL);
    }
}

static ev_timer drain_timer;

static void on_sigterm(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)revents;
    tide_app *app = w->data;
    if (app->draining) { ev_break(loop, EVBREAK_ALL); return; }  /* second signal: now */
    app->draining = 1;
    app->drain_started = ev_now(loop);
    tide_info("draining: %lld requests in flight", app->inflight);
    tide_http_stop_accepting(app->http);
    ev_timer_init(&drain_timer, drain_check, 0., 0.05);
    drain_timer.data = app;
    ev_timer_again(loop, &drain_timer);
}

/* After the loop wakes: note when this pass's work started. */
static void on_check(struct ev_loop *loop, ev_check *w, int revents)
{
    (void)loop; (void)revents;
    tide_app *app = w->data;
    app->pass_started = ev_time();
}

/* Before the loop blocks: write out the access-log lines this pass produced (one write), and
 * measure how long the pass kept every other request waiting. */
static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop; (void)revents;
    tide_app *app = w->data;
    tide_log_flush();
    if (app->pass_started > 0) {
        double lag = ev_time() - app->pass_started;
        if (lag > app->max_pass) app->max_pass = lag;
        if (lag > 0.05) {
            app->slow_passes++;
            if (lag > 0.2) tide_warn("one event-loop pass took %.0f ms", lag * 1000.0);
        }
    }
}

int tide_server_start(tide_app *app)
{
    const tide_config *c = &app->cfg;
    if (tide_jwt_cache_new(4096, &app->jwt_cache) != 0) return TIDE_ENOMEM;
    ev_prepare_init(&app->flush_logs, on_prepare);
    app->flush_logs.data = app;
    ev_prepare_start(app->loop, &app->flush_logs);
    ev_check_init(&app->pass_check, on_check);
    app->pass_check.data = app;
    ev_check_start(app->loop, &app->pass_check);
    int rc = tide_http_listen(app->loop, c->listen_host, c->listen_port, &c->http, on_request,
                              app, &app->http);
    if (rc != 0) {
        tide_error("cannot listen on %s:%d", c->listen_host, c->listen_port);
        return rc;
    }
    tide_http_limits admin_limits = c->http;
    admin_limits.max_connections = 64;
    rc = tide_http_listen(app->loop, c->admin_host, c->admin_port, &admin_limits, on_admin, app,
                          &app->admin);
    if (rc != 0) {
        tide_error("cannot listen on %s:%d (admin)", c->admin_host, c->admin_port);
        return rc;
    }
    ev_signal_init(&app->sighup, on_sighup, SIGHUP);
    app->sighup.data = app;
    ev_signal_start(app->loop, &app->sighup);
    ev_signal_init(&app->sigterm, on_sigterm, SIGTERM);
    app->sigterm.data = app;
    ev_signal_start(app->loop, &app->sigterm);
    ev_signal_init(&app->sigint, on_sigterm, SIGINT);
    app->sigint.data = app;
    ev_signal_start(app->loop, &app->sigint);
    tide_info("listening on http://%s:%d (admin http://%s:%d)", c->listen_host, c->listen_port,
              c->admin_host, c->admin_port);
    return 0;
}
