/* main.c - the tide command: serve, check, routes, token, reseal. */
#include "app.h"
#include "bundle.h"
#include "config.h"
#include "jwt.h"
#include "log.h"
#include "luavm.h"
#include "rcache.h"
#include "channels.h"
#include "reseal.h"
#include "server.h"
#include "watch.h"
#include "workers.h"
#include "cache.h"
#include "notify.h"
#include "supervise.h"
#include "../bindings/l_core.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>
#include <sys/mman.h>
#include <sys/resource.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tide serve [-c CONFIG] [--dev] [--watch]\n"
            "                                        serve HTTP in the foreground; --watch (or\n"
            "                                        TIDE_WATCH=1) reloads when a .lua file in\n"
            "                                        the scripts or policies directory changes\n"
            "       tide check [-c CONFIG] [--dev]   validate config, scripts and policies; print\n"
            "                                        the routes and the effective settings and\n"
            "                                        policies\n"
            "       tide check --schema              print the settings' schema tables as Lua\n"
            "                                        (keys, types, bounds, defaults, env names)\n"
            "       tide routes [-c CONFIG] [--dev]  list the routes: METHOD /pattern file:line\n"
            "       tide token [-c CONFIG] [--dev] --sub UUID [--role ROLE] [--ttl SECONDS]\n"
            "                                        print a signed token\n"
            "       tide reseal [-c CONFIG] [--dev]  re-seal API keys stored in the v1 format\n"
            "CONFIG defaults to $TIDE_CONFIG or etc/tide.conf.lua. --dev (or TIDE_DEV=1) is\n"
            "development mode: the secrets published with tide are accepted.\n");
}

/* At exit, how long the logs may wait for slow readers before what is left is dropped. */
#define TIDE_LOG_EXIT_WAIT 1.0

static const char *default_config(void)
{
    const char *c = getenv("TIDE_CONFIG");
    return c && *c ? c : "etc/tide.conf.lua";
}

static int dev_mode; /* --dev */
static int watch;    /* --watch */

static int load_config(tide_app *app, const char *path)
{
    char err[1024];
    if (tide_config_load(path, dev_mode, &app->cfg, err, sizeof err) != 0) {
        fprintf(stderr, "tide: config: %s\n", err);
        return -1;
    }
    int lvl = tide_log_parse_level(app->cfg.log_level);
    tide_log_set_level(lvl < 0 ? TIDE_LOG_INFO : lvl);
    return 0;
}

static int make_upstreams(tide_app *app)
{
    for (int i = 0; i < TIDE_UPSTREAMS; i++) {
        const tide_upstream_config *u = &app->cfg.upstreams[i];
        if (!u->dsn) {
            app->ups[i] = app->ups[TIDE_UP_DIRECT];
            continue;
        }
        tide_resilience r; /* the policy's defaults until the bundle's policy applies */
        tide_resilience_defaults(&r);
        r.pool.connect_timeout = u->connect_timeout;
        tide_pool_config pc = r.pool;
        pc.name = tide_upstream_name(i);
        pc.dsn = u->dsn;
        pc.prepare = u->prepare;
        pc.max_size = 256; /* slots, so a policy reload can grow the pool */
        tide_pool *pool;
        if (tide_pool_new(app->loop, &pc, &pool) != 0) return -1;
        app->ups[i] = &app->upstream_store[i];
        tide_upstream_init(app->ups[i], app->loop, i, pool, &r);
    }
    if (app->ups[TIDE_UP_REPLICA] != app->ups[TIDE_UP_DIRECT]) {
        tide_replica_start(&app->replica, app->loop, app->ups[TIDE_UP_REPLICA],
                           app->ups[TIDE_UP_DIRECT]);
        /* with workers, the one the parent mapped before forking: a caller's write on one
         * worker floors their reads on every other */
        app->writes = app->writes_shared ? app->writes_shared : tide_lsn_memo_new();
        if (!app->writes) return -1;
    }
    return 0;
}

static void free_upstreams(tide_app *app)
{
    tide_replica_stop(&app->replica);
    tide_lsn_memo_free(app->writes);
    app->writes = NULL;
    for (int i = 0; i < TIDE_UPSTREAMS; i++)
        if (app->ups[i] == &app->upstream_store[i]) tide_upstream_stop(app->ups[i]);
    for (int i = 0; i < TIDE_UPSTREAMS; i++) {
        if (app->ups[i] == &app->upstream_store[i]) tide_pool_free(app->ups[i]->pool);
        app->ups[i] = NULL;
    }
}

/* Serves app (its config loaded) until stopped. ready_fd >= 0 (a worker): one byte is written
 * there once it is listening. A restarted worker serves the last bundle that loaded. */
static int serve(tide_app *app, int ready_fd)
{
    signal(SIGPIPE, SIG_IGN);
    app->loop = ev_default_loop(EVFLAG_AUTO);
    app->started_at = ev_now(app->loop);
    int rc = 1;
    char err[2048];
    if (make_upstreams(app) != 0) {
        tide_error("cannot create pools");
    } else if (tide_server_load(app, app->restarts > 0, &app->vm, err, sizeof err) != 0) {
        tide_error("cannot load scripts: %s", err);
    } else {
        tide_server_apply_policy(app);
        tide_info("loaded %d routes from %s", tide_vm_route_count(app->vm),
                  app->bundle_from_snapshot ? "the last bundle that loaded" : app->cfg.scripts_dir);
        if (tide_server_start(app) == 0) {
            if (watch) tide_server_watch(app);
            tide_supervise_note_bundle(tide_vm_route_count(app->vm), -1);
            tide_supervise_heartbeat_start(app->loop); /* the parent's watchdog, from now */
            if (ready_fd >= 0) {
                ssize_t w = write(ready_fd, "r", 1);
                (void)w;
                close(ready_fd);
            }
            ev_run(app->loop, 0);
            tide_supervise_heartbeat_stop(app->loop);
            tide_info("stopped");
            rc = 0;
        }
    }
    if (app->inflight > 0) {
        /* a forced stop (second signal, or the drain deadline): requests still hold pools,
         * connections and the Lua state; the process exit reclaims them */
        tide_warn("exiting with %lld requests in flight", app->inflight);
        tide_log_detach(TIDE_LOG_EXIT_WAIT);
        return rc;
    }
    tide_log_detach(TIDE_LOG_EXIT_WAIT);
    tide_watch_stop(app->watch);
    tide_jwt_cache_free(app->jwt_cache);
    if (app->http) tide_http_free(app->http);
    if (app->admin) tide_http_free(app->admin);
    free_upstreams(app);
    if (app->vm) tide_vm_unref(app->vm);
    tide_channels_stop(app);
    tide_rcache_stop(app);
    tide_config_free(&app->cfg);
    return rc;
}

/* A worker process (workers.h): the parent's app, this worker's index, ports and share. */
static int serve_worker(int index, int restarts, int ready_fd, void *arg)
{
    tide_app *app = arg;
    app->worker = index;
    app->restarts = restarts;
    if (app->nworkers > 1) {
        char tag[24];
        snprintf(tag, sizeof tag, "[worker %d]", index);
        tide_log_set_tag(tag);
    }
    if (app->cfg.admin_port) app->cfg.admin_port += index; /* one admin listener per worker */
    if (app->has_snapshot) { /* a description of its own: flock is per description */
        int fd = tide_bundle_snapshot_reopen(app->snapshot_fd);
        close(app->snapshot_fd);
        app->snapshot_fd = fd;
        if (fd < 0) {
            app->has_snapshot = 0;
            tide_warn("cannot open the snapshot of the last bundle that loaded (%s): if this "
                      "worker is restarted, it reads the bundle from disk",
                      strerror(errno));
        }
    }
    return serve(app, ready_fd);
}

/* The parent's word to systemd, in the words one process would use (the workers' route count
 * and reload outcomes come through the supervisor's region). */
static void notify_parent(const char *state, void *arg)
{
    tide_app *app = arg;
    char status[200], many[32] = "";
    if (app->nworkers > 1) snprintf(many, sizeof many, " (%d workers)", app->nworkers);
    int routes = tide_supervise_routes(0), rc;
    if (strcmp(state, "ready") == 0) {
        snprintf(status, sizeof status, "serving %d routes on %s:%d%s", routes,
                 app->cfg.listen_host, app->cfg.listen_port, many);
        rc = tide_notify_ready(status);
    } else if (strcmp(state, "reloading") == 0) {
        snprintf(status, sizeof status, "reloading scripts and policies%s", many);
        rc = tide_notify_reloading(status);
    } else if (strcmp(state, "reloaded") == 0) {
        int rejected = 0;
        for (int i = 0; i < app->nworkers; i++) {
            int r = 0;
            (void)tide_supervise_reloads_done(i, &r);
            rejected |= r;
        }
        snprintf(status, sizeof status, "serving %d routes%s%s", routes,
                 rejected ? "; the last reload was rejected (see the log)" : "", many);
        rc = tide_notify_ready(status);
    } else {
        snprintf(status, sizeof status, "draining: requests in flight finish%s", many);
        rc = tide_notify_stopping(status);
    }
    if (rc != 0) tide_warn("cannot notify the service manager: %s", tide_strerror(rc));
}

/* `nice`: the priority tide serves at (workers inherit it). One event loop serves every
 * connection of its pools: on a host it shares with Postgres, the kernel's fair share per task
 * would give it no more CPU than one backend, and the backends would wait on it. Below 0 needs
 * CAP_SYS_NICE (root, or systemd's Nice=); without it tide warns and serves as it is. */
static void set_priority(int nice)
{
    if (nice == 0) return;
    if (setpriority(PRIO_PROCESS, 0, nice) != 0)
        tide_warn("cannot set the scheduling priority to nice %d: %s (below 0 needs "
                  "CAP_SYS_NICE; serving at nice %d)",
                  nice, strerror(errno), getpriority(PRIO_PROCESS, 0));
    else tide_info("serving at nice %d", nice);
}

static int cmd_serve(const char *config)
{
    tide_app app;
    memset(&app, 0, sizeof app);
    app.open_core = tide_core_open; /* the binding registers itself */
    if (load_config(&app, config) != 0) return 2;
    if (app.cfg.dev)
        tide_warn("development mode: published secrets are accepted; never run it like this "
                  "where anyone else can reach it");
    set_priority(app.cfg.nice);
    int n = app.cfg.workers == 0 ? tide_workers_auto() : app.cfg.workers;
    app.nworkers = n;
    if (n <= 1 && !app.cfg.supervise) return serve(&app, -1); /* one process, nothing watching it */
    if (n > 1 && !app.cfg.supervise)
        tide_warn("supervise = false is for workers = 1: %d workers run under a parent", n);
    if (n > 1 && app.cfg.listen_port == 0) {
        tide_error("workers = %d needs a fixed listen.port (0 would give each its own)", n);
        return 2;
    }
    /* the last bundle that loaded, for a restarted worker (runtime/bundle.h) */
    int snap = tide_bundle_snapshot_new();
    if (snap < 0) {
        tide_warn("workers: no snapshot of the last bundle that loaded (memfd_create: %s): a "
                  "restarted worker reads the bundle from disk",
                  strerror(errno));
    } else {
        app.snapshot_fd = snap;
        app.has_snapshot = 1;
    }
    if (n > 1 && app.cfg.cache_max_bytes) { /* the cache's invalidations, seen by every worker */
        size_t size = tide_cache_shared_size(app.cfg.cache_max_bytes);
        void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED) {
            tide_error("workers: cannot map %zu bytes for the cache's shared slots", size);
            return 1;
        }
        tide_cache_shared_init(mem, app.cfg.cache_max_bytes);
        app.cache_shared = mem;
    }
    if (n > 1 && app.cfg.upstreams[TIDE_UP_REPLICA].dsn) { /* callers' writes, every worker's */
        size_t size = tide_lsn_memo_size();
        void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED) {
            tide_error("workers: cannot map %zu bytes for the callers' last writes", size);
            return 1;
        }
        app.writes_shared = tide_lsn_memo_init(mem, 1);
    }
    int rc = tide_workers_run(n, app.cfg.watchdog_ms, serve_worker, notify_parent, &app);
    if (snap >= 0) close(snap);
    tide_config_free(&app.cfg);
    return rc;
}

/* tide check (routes_only 0) and tide routes (1): loads the bundle as `serve` would, without
 * serving, and prints what it found. */
static int cmd_check(const char *config, int routes_only)
{
    tide_app app;
    memset(&app, 0, sizeof app);
    app.open_core = tide_core_open; /* the binding registers itself */
    if (load_config(&app, config) != 0) return 2;
    app.loop = ev_default_loop(EVFLAG_AUTO);
    if (make_upstreams(&app) != 0) return 1;
    char err[2048];
    int rc = tide_server_load(&app, 0, &app.vm, err, sizeof err); /* the directories, read */
    if (rc != 0) fprintf(stderr, "tide: scripts: %s\n", err);
    else if (routes_only) {
        rc = tide_vm_describe(app.vm, "routes", stdout);
        tide_vm_unref(app.vm);
    } else {
        const tide_config *c = &app.cfg;
        printf("tide: config, scripts and policies OK (%d routes)\n", tide_vm_route_count(app.vm));
        printf("\n# routes (%s; the handler's file:line)\n", c->scripts_dir);
        int drc = tide_vm_describe(app.vm, "routes", stdout); /* each section, whatever fails */
        printf("\n# configuration (%s and TIDE_* overrides; restart to change)\n",
               config ? config : "built-in defaults");
        tide_config_print(stdout, c);
        printf("\n# routing policy (%s/routing.lua: the upstream per kind of call, then per "
               "table; SIGHUP applies it)\n",
               c->policies_dir);
        if (tide_vm_describe(app.vm, "routing", stdout) != 0) drc = TIDE_ELUA;
        printf("\n# resilience policy (%s/resilience.lua over the built-in defaults; "
               "SIGHUP applies it)\n",
               c->policies_dir);
        for (int i = 0; i < TIDE_UPSTREAMS; i++)
            tide_resilience_print(stdout, i, tide_vm_resilience(app.vm, i));
        printf("\n# cache policy (%s/cache.lua: cached routes, tables, functions; SIGHUP "
               "applies it)\n",
               c->policies_dir);
        if (tide_vm_describe(app.vm, "cache", stdout) != 0) drc = TIDE_ELUA;
        printf("\n# sandbox policy (%s/sandbox.lua: what scripts may reach, routes' own CPU "
               "budgets over script.max_cpu_ms = %d ms, quarantine; SIGHUP applies it)\n",
               c->policies_dir, c->script_max_cpu_ms);
        if (tide_vm_describe(app.vm, "sandbox", stdout) != 0) drc = TIDE_ELUA;
        rc = drc;
        tide_vm_unref(app.vm);
    }
    free_upstreams(&app);
    tide_config_free(&app.cfg);
    return rc == 0 ? 0 : 1;
}

/* tide check --schema: the schema tables (config file, one upstream's table, the resilience
 * policy) as a Lua chunk, for the checks of the sample files and docs against them. */
static int cmd_schema(void)
{
    size_t n;
    const tide_setting *t = tide_config_table(&n);
    fputs("-- tide check --schema: the settings' schema tables (runtime/config.c, upstream.c)\n"
          "return {\nconfig = ",
          stdout);
    tide_settings_write_lua(stdout, t, n, NULL);
    fputs(",\nupstream = ", stdout);
    t = tide_config_upstream_table(&n);
    tide_settings_write_lua(stdout, t, n, NULL);
    fputs(",\nresilience = ", stdout);
    t = tide_resilience_table(&n);
    tide_settings_write_lua(stdout, t, n, NULL);
    fputs(",\nupstreams = {", stdout);
    for (const tide_setting_name *u = tide_upstream_names; u->name; u++)
        printf(" \"%s\",", u->name);
    fputs(" },\n}\n", stdout);
    return ferror(stdout) ? 1 : 0;
}

static int cmd_token(const char *config, const char *sub, const char *role, long long ttl)
{
    tide_app app;
    memset(&app, 0, sizeof app);
    if (!sub) {
        fprintf(stderr, "tide token: --sub UUID is required\n");
        return 2;
    }
    tide_role r;
    if (tide_role_parse(role, strlen(role), &r) != 0) {
        fprintf(stderr, "tide token: role must be anon, authenticated or service_role\n");
        return 2;
    }
    if (ttl <= 0) {
        fprintf(stderr, "tide token: --ttl must be positive\n");
        return 2;
    }
    if (load_config(&app, config) != 0) return 2;
    char *tok = NULL;
    /* a token this tide accepts: the configured audience and issuer */
    const tide_jwt_policy policy = { app.cfg.jwt_leeway, app.cfg.jwt_require_exp,
                                     app.cfg.jwt_audience, app.cfg.jwt_issuer };
    int rc = tide_jwt_sign(app.cfg.jwt_secret, strlen(app.cfg.jwt_secret), sub, role, ttl,
                           time(NULL), &policy, &tok);
    tide_config_free(&app.cfg);
    if (rc != 0) {
        fprintf(stderr, "tide token: %s\n", tide_strerror(rc));
        return 1;
    }
    printf("%s\n", tok);
    free(tok);
    return 0;
}

static int cmd_reseal(const char *config)
{
    tide_app app;
    memset(&app, 0, sizeof app);
    if (load_config(&app, config) != 0) return 2;
    int status = tide_reseal(&app.cfg);
    tide_config_free(&app.cfg);
    return status;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
        usage(stdout);
        return 0;
    }
    const char *config = default_config(), *sub = NULL, *role = "authenticated";
    long long ttl = 3600;
    static const struct option opts[] = { { "config", required_argument, NULL, 'c' },
                                          { "sub", required_argument, NULL, 's' },
                                          { "role", required_argument, NULL, 'r' },
                                          { "ttl", required_argument, NULL, 't' },
                                          { "help", no_argument, NULL, 'h' },
                                          { "dev", no_argument, NULL, 'd' },
                                          { "watch", no_argument, NULL, 'w' },
                                          { "schema", no_argument, NULL, 'S' },
                                          { NULL, 0, NULL, 0 } };
    int schema = 0;
    optind = 2;
    int ch;
    while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': config = optarg; break;
        case 's': sub = optarg; break;
        case 'r': role = optarg; break;
        case 't': ttl = atoll(optarg); break;
        case 'd': dev_mode = 1; break;
        case 'w': watch = 1; break;
        case 'S': schema = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    const char *w = getenv("TIDE_WATCH");
    if (w && strcmp(w, "1") == 0) watch = 1;
    if (strcmp(cmd, "serve") == 0) return cmd_serve(config);
    if (strcmp(cmd, "check") == 0) return schema ? cmd_schema() : cmd_check(config, 0);
    if (strcmp(cmd, "routes") == 0) return cmd_check(config, 1);
    if (strcmp(cmd, "token") == 0) return cmd_token(config, sub, role, ttl);
    if (strcmp(cmd, "reseal") == 0) return cmd_reseal(config);
    usage(stderr);
    return 2;
}
