/* server.c - the process's life while it serves: the public listener (admission in auth.c),
 * the admin listener (admin.c), the resilience policy applied to the upstreams and wired to
 * their dependents, bundles read whole into memory (the one that loaded kept as the snapshot a
 * restarted worker serves), reload (on SIGHUP, and with --watch when scripts or policies change),
 * draining on SIGTERM/SIGINT, the event-loop pass measure, and what the service manager is
 * told (notify.c: READY once listening, RELOADING then READY around a reload, STOPPING when
 * draining starts), and the logs' non-blocking writing (attached here, flushed once per
 * pass). */
#include "server.h"
#include "admin.h"
#include "auth.h"
#include "bundle.h"
#include "jwtcache.h"
#include "log.h"
#include "luavm.h"
#include "notify.h"
#include "rcache.h"
#include "pipeline.h"
#include "channels.h"
#include "metrics.h"
#include "supervise.h"
#include "watch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>

#define TIDE_DRAIN_SECONDS  10.0
#define TIDE_WATCH_DEBOUNCE 0.1 /* --watch reloads this long after the last change */

/* The request's id is always tide's own (this process's random prefix and a counter), so no
 * client can make its request pass for another in the logs or pg_stat_activity. The client's
 * X-Request-Id, when it is 1 to 48 characters of [A-Za-z0-9._:-], is kept beside it
 * (client_id: the access log's client_request_id), so the client can still find its
 * requests. */
static void assign_id(tide_app *app, tide_http_req *req)
{
    size_t n = 0;
    const char *v = tide_http_header_get(req, "x-request-id", &n);
    int ok = v && n >= 1 && n <= TIDE_HTTP_ID_MAX;
    for (size_t i = 0; ok && i < n; i++) {
        char ch = v[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
             ch == '.' || ch == '_' || ch == ':' || ch == '-';
    }
    if (ok) {
        memcpy(req->client_id, v, n);
        req->client_id[n] = 0;
    }
    snprintf(req->id, sizeof req->id, "%s-%llx", app->id_prefix, ++app->next_request_id);
}

static void on_request(tide_http_req *req, void *arg)
{
    tide_app *app = arg;
    assign_id(app, req);
    if (app->draining) {
        tide_http_respond_error(req, 503, "TIDE_SHUTTING_DOWN", "tide is shutting down", NULL);
        return;
    }
    tide_auth_admit(app, req);
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
        if (app->ups[i] != &app->upstream_store[i]) continue; /* an alias of direct */
        tide_resilience r = *tide_vm_resilience(app->vm, i);
        if (app->nworkers > 1) /* the configured budget is for all workers together */
            r.pool.size = r.pool.size / app->nworkers > 0 ? r.pool.size / app->nworkers : 1;
        if (r.fallback >= 0 && app->ups[r.fallback] == app->ups[i]) r.fallback = -1;
        if (r.depends_on >= 0 && app->ups[r.depends_on] == app->ups[i]) r.depends_on = -1;
        tide_upstream_configure(app->ups[i], &r);
        app->ups[i]->on_open = upstream_opened;
        app->ups[i]->on_open_arg = app;
    }
}

/* Tells the service manager (runtime/notify.h); a failure is logged once, not per call. */
static void notified(int rc)
{
    static int warned;
    if (rc != 0 && !warned) {
        warned = 1;
        tide_warn("cannot notify the service manager at $NOTIFY_SOCKET: %s", tide_strerror(rc));
    }
}

/* ---- bundles --------------------------------------------------------------------------- */

static double wall_now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

int tide_server_load(tide_app *app, int from_snapshot, tide_vm **out, char *err, size_t errlen)
{
    const tide_config *c = &app->cfg;
    tide_bundle b;
    int rc = -1;
    from_snapshot = from_snapshot && app->has_snapshot;
    if (from_snapshot) {
        char serr[512];
        rc = tide_bundle_load(app->snapshot_fd, &b, serr, sizeof serr);
        if (rc == 0)
            tide_info("serving the last bundle that loaded (generation %llu: %d files, %zu bytes, "
                      "stored by pid %d %.0f s ago), not what %s and %s hold now",
                      b.generation, b.nfiles, b.bytes, b.stored_by, wall_now() - b.stored_at,
                      c->scripts_dir, c->policies_dir);
        else
            tide_warn("no last bundle to serve (%s): reading %s, %s and %s", serr, c->bindings_dir,
                      c->scripts_dir, c->policies_dir);
    }
    if (rc != 0) {
        from_snapshot = 0;
        if ((rc = tide_bundle_read(c->bindings_dir, c->scripts_dir, c->policies_dir, &b, err,
                                   errlen)) != 0)
            return rc;
    }
    app->bundle = &b;
    rc = tide_vm_new(app, out, err, errlen);
    app->bundle = NULL;
    if (rc == 0) {
        if (!from_snapshot && app->has_snapshot) {
            char serr[512];
            if (tide_bundle_store(app->snapshot_fd, &b, serr, sizeof serr) != 0)
                tide_warn("a restarted worker may not serve this bundle: %s", serr);
            else
                tide_debug("bundle generation %llu stored (%d files, %zu bytes)", b.generation,
                           b.nfiles, b.bytes);
        }
        app->bundle_from_snapshot = from_snapshot;
        app->bundle_generation = b.generation;
    }
    tide_bundle_free(&b);
    return rc;
}

/* ---- reload ---------------------------------------------------------------------------- */

void tide_server_reload(tide_app *app, const char *why)
{
    char err[2048], status[160];
    if (app->draining) { /* nothing new is served any more; the manager saw STOPPING */
        tide_info("reload (%s) ignored: draining", why);
        tide_supervise_note_bundle(tide_vm_route_count(app->vm), 1);
        return;
    }
    notified(tide_notify_reloading("reloading scripts and policies"));
    tide_vm *vm = NULL;
    if (tide_server_load(app, 0, &vm, err, sizeof err) != 0) {
        app->reload_failures++;
        tide_error("reload (%s) rejected, the previous bundle keeps serving: %s", why, err);
        snprintf(status, sizeof status,
                 "serving %d routes; the last reload was rejected "
                 "(see the log)",
                 tide_vm_route_count(app->vm));
        notified(tide_notify_ready(status));
        tide_supervise_note_bundle(tide_vm_route_count(app->vm), 0);
        return;
    }
    tide_vm *old = app->vm;
    app->vm = vm;
    tide_server_apply_policy(app);
    tide_rcache_policy_changed(app, tide_vm_cache_policy(old), tide_vm_cache_policy(vm));
    app->reloads++;
    tide_vm_unref(old);
    tide_info("reloaded scripts and policies (%d routes; %s)", tide_vm_route_count(vm), why);
    snprintf(status, sizeof status, "serving %d routes", tide_vm_route_count(vm));
    notified(tide_notify_ready(status));
    tide_supervise_note_bundle(tide_vm_route_count(vm), 1);
}

/* --watch: a burst of changes to scripts/ or policies/ has settled. */
static void on_change(tide_watch *w, const char *first, int files, void *arg)
{
    (void)w;
    tide_app *app = arg;
    char why[600];
    if (files > 1)
        snprintf(why, sizeof why, "watch: %s and %d other file%s changed", first, files - 1,
                 files > 2 ? "s" : "");
    else snprintf(why, sizeof why, "watch: %s changed", first);
    tide_server_reload(app, why);
}

void tide_server_watch(tide_app *app)
{
    const char *dirs[] = { app->cfg.scripts_dir, app->cfg.policies_dir };
    char err[512];
    if (tide_watch_start(app->loop, dirs, 2, TIDE_WATCH_DEBOUNCE, on_change, app, &app->watch, err,
                         sizeof err) != 0) {
        tide_warn("--watch: %s; serving without watching (SIGHUP still reloads)", err);
        app->watch = NULL;
        return;
    }
    tide_info("watching %s and %s (%d directories): a change to a .lua file reloads",
              app->cfg.scripts_dir, app->cfg.policies_dir, tide_watch_count(app->watch));
}

/* ---- signals --------------------------------------------------------------------------- */

static void on_sighup(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    tide_server_reload(w->data, "SIGHUP");
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
    if (app->draining) {
        ev_break(loop, EVBREAK_ALL);
        return;
    } /* second signal: now */
    app->draining = 1;
    app->drain_started = ev_now(loop);
    tide_info("draining: %lld requests in flight", app->inflight);
    char status[96];
    snprintf(status, sizeof status, "draining: %lld requests in flight", app->inflight);
    notified(tide_notify_stopping(status));
    tide_http_stop_accepting(app->http);
    ev_timer_init(&drain_timer, drain_check, 0., 0.05);
    drain_timer.data = app;
    ev_timer_again(loop, &drain_timer);
}

/* After the loop wakes: note when this pass's work started. */
static void on_check(struct ev_loop *loop, ev_check *w, int revents)
{
    (void)loop;
    (void)revents;
    tide_app *app = w->data;
    app->pass_started = ev_time();
}

/* Before the loop blocks: write out the log lines this pass produced (stderr's at once, stdout's
 * access lines in batches: log.h; as much as the fds take without blocking, log.c waits for
 * writability for the rest), and measure how
 * long the pass kept every other request waiting. */
static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    tide_app *app = w->data;
    tide_log_flush_pass();
    if (app->pass_started > 0) {
        double lag = ev_time() - app->pass_started;
        tide_metrics_loop_pass(lag);
        if (lag > app->max_pass) app->max_pass = lag;
        if (lag > 0.05) {
            app->slow_passes++;
            tide_warn("one event-loop pass took %.0f ms", lag * 1000.0);
        }
    }
}

int tide_server_start(tide_app *app)
{
    const tide_config *c = &app->cfg;
    unsigned char rnd[4] = { 0 };
    if (getrandom(rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd) {
        unsigned t = (unsigned)time(NULL) ^ (unsigned)getpid();
        memcpy(rnd, &t, sizeof rnd);
    }
    snprintf(app->id_prefix, sizeof app->id_prefix, "%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
             rnd[3]);
    if (tide_jwt_cache_new(4096, &app->jwt_cache) != 0) return TIDE_ENOMEM;
    int lrc = tide_log_attach(app->loop, c->log_buffer_bytes); /* from here, logs never block */
    if (lrc != 0) {
        tide_error("cannot set up the log buffers: %s", tide_strerror(lrc));
        return lrc;
    }
    int crc = tide_rcache_start(app, &tide_pipeline_stages);
    if (crc != 0) return crc;
    if ((crc = tide_channels_start(app)) != 0) return crc;
    ev_prepare_init(&app->flush_logs, on_prepare);
    app->flush_logs.data = app;
    ev_prepare_start(app->loop, &app->flush_logs);
    ev_check_init(&app->pass_check, on_check);
    app->pass_check.data = app;
    ev_check_start(app->loop, &app->pass_check);
    int rc = tide_http_listen(app->loop, c->listen_host, c->listen_port, &c->http, on_request, app,
                              &app->http);
    if (rc != 0) {
        tide_error("cannot listen on %s:%d", c->listen_host, c->listen_port);
        return rc;
    }
    if ((rc = tide_admin_start(app)) != 0) return rc;
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
    char status[160];
    snprintf(status, sizeof status, "serving %d routes on %s:%d", tide_vm_route_count(app->vm),
             c->listen_host, c->listen_port);
    notified(tide_notify_ready(status));
    return 0;
}
