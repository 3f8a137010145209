/* luavm.c - Lua states per script bundle, request coroutines, and the response path.
 *
 * A bundle is bindings/ + scripts/ + policies/ loaded into one lua_State by tide.boot, with
 * its routes compiled into a router (router.h) that the pipeline matches requests with before
 * any Lua runs (docs/architecture.md). Each request runs boot.handle(req) in a coroutine of
 * its own (one that returned is kept and reused), with the route found; it answers through
 * the callback the pipeline handed it (stage.h). A database call parks the coroutine
 * (runtime/call.c, started by the binding that app->open_core opens) and the call's
 * completion resumes it. Reload builds a fresh state and
 * swaps it in: each task holds a reference on the state it started on, so requests in flight
 * finish there and the old state is closed by the last of them.
 *
 * Memory: LuaJIT's collector runs as a state allocates, so garbage left by a request when
 * the server then goes quiet stays until the next allocations. When a request leaves a
 * state's heap well above where its last full collection left it (a big request body decoded,
 * say), the state is collected in small steps while the loop is idle; LuaJIT's allocator then
 * unmaps the segments that emptied, and the C heap is trimmed (request arenas), so the memory
 * goes back to the system instead of staying at its high-water mark. Steps are bounded
 * (GC_SLICE per idle callback), so this never makes one loop pass long. (LuaJIT's own
 * allocator, not the C heap: measured, tide spent about 10% more CPU per request on malloc.) */
#include "luavm.h"
#include "bundle.h"
#include "guard.h"
#include "task.h"
#include "log.h"
#include "lsn.h"
#include "rcache.h"
#include "util.h"

#include <dirent.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include <lualib.h>

/* A route of the bundle, as C keeps it (id: its index, boot's route_table order). */
typedef struct vroute {
    char *pattern;               /* "/v1/trips/:id" (req.route, the log lines) */
    char *key;                   /* "GET /v1/trips/:id": its budget's and quarantine's name */
    int64_t budget_ns;           /* its own CPU budget (policies/sandbox.lua), 0: the default */
    const tide_cache_rule *rule; /* its cache rule, or NULL */
} vroute;

#define CO_POOL 64 /* finished coroutines kept for the next requests */

struct tide_vm {
    tide_app *app;
    tide_router *router; /* the routes compiled (router.h), swapped with the state */
    vroute *routes;
    int nvroutes;
    int co_pool[CO_POOL]; /* registry refs of finished coroutines, reused */
    int nco_pool;
    lua_State *L;
    int refs;
    int handle_ref; /* boot.handle */
    int decode_ref; /* tide.json.decode */
    int nroutes;
    unsigned long long generation;
    tide_resilience res[TIDE_UPSTREAMS]; /* from policies/resilience.lua */
    tide_cache_policy *cache;            /* from policies/cache.lua (via boot.cache_policy) */
    ev_idle gc_idle;                     /* collects in steps after a request left much garbage */
    int gc_floor_kb;                     /* heap size after the last full collection */
    int gc_peak_kb;                      /* heap size when the idle collection started */
    int gc_cycles;                       /* cycles the idle collection has completed */
    tide_guard_mem mem;                  /* the state's memory bound (script.max_memory) */
    tide_guard_routes *stops;            /* routes stopped at their budget, and their quarantine */
    int64_t budget_ns; /* script.max_cpu_ms: a request's Lua time, unless its route
                              * has its own (policies/sandbox.lua, vroute.budget_ns) */
    ev_prepare reap;   /* a retired state's garbage, swept a slice per loop pass */
    int retired;       /* replaced after a stop: swept before it is closed */
    char *bundle_buf;  /* the bundle it was built from, serialized (bundle.h), so a
                              * state grown by a stopped script can be built afresh */
    size_t bundle_len;
    tide_task *waiters; /* parked by core.wait (tide__task_wait), newest first */
};

#define GC_GROWTH_KB (16 * 1024) /* collect on idle once the heap is this far above its floor */
#define GC_SLICE     0.002       /* seconds of collection per idle callback, at most */
#define GC_STEP_KB   256         /* the size of one lua_gc step */
#define GC_TRIM_KB   (4 * 1024)  /* trim the C heap after a cycle that freed this much */

static void gc_on_idle(struct ev_loop *loop, ev_idle *w, int revents);
static void reap_slice(struct ev_loop *loop, ev_prepare *w, int revents);
static void gc_check(tide_vm *vm);

static tide_task *current_task;
static unsigned long long vm_generation;
static struct {
    long long requests, total;
} crossings; /* tide_vm_crossings */

tide_task *tide__task_current(void) { return current_task; }
tide_app *tide__vm_app(tide_vm *vm) { return vm->app; }

void tide__vm_push_decode(tide_vm *vm, lua_State *L)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->decode_ref);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Pushes an array of the module names of dir/NAME.lua files, sorted, skipping names that start with
 * '_' (libraries for other scripts, not route modules). Returns 0 or -1 (error pushed). */
static int push_script_names(lua_State *L, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        lua_pushfstring(L, "cannot open scripts directory %s", dir);
        return -1;
    }
    char *names[512] = { 0 };
    int n = 0, too_many = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 5 || e->d_name[0] == '_' || e->d_name[0] == '.') continue;
        if (strcmp(e->d_name + len - 4, ".lua") != 0) continue;
        if (n == 512) {
            too_many = 1;
            break;
        }
        names[n] = strndup(e->d_name, len - 4);
        if (names[n]) n++;
    }
    closedir(d);
    if (too_many) {
        for (int i = 0; i < n; i++) free(names[i]);
        lua_pushfstring(L, "more than 512 route modules in %s", dir);
        return -1;
    }
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushstring(L, names[i]);
        lua_rawseti(L, -2, i + 1);
        free(names[i]);
    }
    return 0;
}

/* Reads the policy table policies/resilience.lua returned (on top of the stack) into
 * vm->res through the policy's schema table (upstream.c); the config file gives each upstream
 * its connect_timeout. Returns 0, or an error with the message pushed on the stack. */
static int read_resilience(tide_vm *vm, lua_State *L)
{
    char err[512];
    tide_resilience res[TIDE_UPSTREAMS];
    if (tide_resilience_read(L, -1, res, err, sizeof err) != 0) {
        lua_pushstring(L, err);
        return TIDE_EINVAL;
    }
    for (int i = 0; i < TIDE_UPSTREAMS; i++) {
        res[i].pool.connect_timeout = vm->app->cfg.upstreams[i].connect_timeout;
        vm->res[i] = res[i];
    }
    return 0;
}

/* Reads the quarantine settings from the table tide.sandbox.install returned (on top of the
 * stack: {quarantine = {hits =, window =, cool_down =}}, checked there). */
static int read_quarantine(tide_vm *vm, lua_State *L)
{
    tide_guard_quarantine q = { 0, 0, 0 };
    lua_getfield(L, -1, "quarantine");
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "hits");
        lua_getfield(L, -2, "window");
        lua_getfield(L, -3, "cool_down");
        q.hits = (int)lua_tointeger(L, -3);
        q.window = lua_tonumber(L, -2);
        q.cool_down = lua_tonumber(L, -1);
        lua_pop(L, 3);
    }
    lua_pop(L, 1);
    if (!(vm->stops = tide_guard_routes_new(q))) {
        lua_pushstring(L, "out of memory");
        return TIDE_ENOMEM;
    }
    return 0;
}

const tide_resilience *tide_vm_resilience(const tide_vm *vm, int upstream)
{
    return &vm->res[upstream];
}

const tide_cache_policy *tide_vm_cache_policy(const tide_vm *vm) { return vm ? vm->cache : NULL; }

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    luaL_traceback(L, L, msg ? msg : "(non-string error)", 1);
    return 1;
}

static int pcall_tb(lua_State *L, int nargs, int nres)
{
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    int rc = lua_pcall(L, nargs, nres, base);
    lua_remove(L, base);
    return rc;
}

/* pcall_tb under the bundle's budgets: a load that loops or grows without end is stopped
 * like a request, and its error says so. */
static int pcall_guarded(tide_vm *vm, lua_State *L, int nargs, int nres)
{
    tide_guard_run run;
    char where[192];
    tide_guard_enter(&run, L, &vm->mem, vm->budget_ns, "(bundle load)");
    int rc = pcall_tb(L, nargs, nres);
    int why = tide_guard_leave(&run, NULL, where, sizeof where);
    if (why != TIDE_GUARD_NONE) {
        lua_settop(L, 0);
        if (why == TIDE_GUARD_CPU)
            lua_pushfstring(L, "loading the bundle ran past script.max_cpu_ms (%d ms)%s%s",
                            vm->app->cfg.script_max_cpu_ms, where[0] ? " at " : "", where);
        else
            lua_pushfstring(L, "loading the bundle went over script.max_memory (%d MiB)%s%s",
                            (int)(vm->mem.limit >> 20), where[0] ? " at " : "", where);
        lua_gc(L, LUA_GCCOLLECT, 0);
        return LUA_ERRRUN;
    }
    return rc;
}

static void routes_free(tide_vm *vm)
{
    for (int i = 0; i < vm->nvroutes; i++) {
        free(vm->routes[i].pattern);
        free(vm->routes[i].key);
    }
    free(vm->routes);
    tide_router_free(vm->router);
    vm->routes = NULL;
    vm->router = NULL;
    vm->nvroutes = 0;
}

/* Compiles the routes boot.load just built (boot.route_table(): {method, pattern, key,
 * budget ms or nil}, ...) into vm->router; a route's id is its index there. Returns 0, or an
 * error with the message pushed. */
static int compile_routes(tide_vm *vm, lua_State *L)
{
    lua_getglobal(L, "require");
    lua_pushstring(L, "tide.boot");
    if (pcall_guarded(vm, L, 1, 1) != 0) return TIDE_ELUA;
    lua_getfield(L, -1, "route_table");
    if (pcall_guarded(vm, L, 0, 1) != 0) return TIDE_ELUA;
    int n = lua_istable(L, -1) ? (int)lua_objlen(L, -1) : 0;
    if (!(vm->router = tide_router_new()) ||
        !(vm->routes = calloc((size_t)n + 1, sizeof *vm->routes))) {
        lua_pushstring(L, "out of memory");
        return TIDE_ENOMEM;
    }
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, -1, i + 1);
        lua_getfield(L, -1, "method");
        lua_getfield(L, -2, "pattern");
        lua_getfield(L, -3, "key");
        lua_getfield(L, -4, "budget");
        const char *method = lua_tostring(L, -4), *pattern = lua_tostring(L, -3);
        const char *key = lua_tostring(L, -2);
        vroute *r = &vm->routes[vm->nvroutes++];
        r->budget_ns = lua_isnumber(L, -1) && lua_tonumber(L, -1) > 0
                           ? (int64_t)(lua_tonumber(L, -1) * 1e6)
                           : 0;
        if (!method || !pattern || !key) {
            lua_pushstring(L, "boot.route_table: a route without method, pattern or key");
            return TIDE_EINVAL;
        }
        if (!(r->pattern = strdup(pattern)) || !(r->key = strdup(key))) {
            lua_pushstring(L, "out of memory");
            return TIDE_ENOMEM;
        }
        int rc = tide_router_add(vm->router, method, pattern, i);
        if (rc != 0) {
            lua_pushfstring(L, "route %s %s: %s", method, pattern,
                            rc == TIDE_ENOMEM ? "out of memory"
                                              : "not a route C can compile (duplicate, or past "
                                                "64 segments or 16 params)");
            return rc;
        }
        lua_pop(L, 5);
    }
    lua_settop(L, 0);
    return 0;
}

const tide_router *tide_vm_router(const tide_vm *vm) { return vm ? vm->router : NULL; }

const tide_cache_rule *tide_vm_route_rule(const tide_vm *vm, int id)
{
    return vm && id >= 0 && id < vm->nvroutes ? vm->routes[id].rule : NULL;
}

int tide_vm_new(tide_app *app, tide_vm **out, char *err, size_t errlen)
{
    tide_vm *vm = calloc(1, sizeof *vm);
    if (!vm) {
        snprintf(err, errlen, "out of memory");
        return TIDE_ENOMEM;
    }
    vm->app = app;
    vm->refs = 1;
    vm->generation = ++vm_generation;
    lua_State *L = vm->L = luaL_newstate();
    if (!L) {
        free(vm);
        snprintf(err, errlen, "out of memory");
        return TIDE_ENOMEM;
    }
    ev_idle_init(&vm->gc_idle, gc_on_idle);
    ev_prepare_init(&vm->reap, reap_slice);
    vm->reap.data = vm;
    vm->gc_idle.data = vm;
    vm->budget_ns = (int64_t)app->cfg.script_max_cpu_ms * 1000000;
    if (tide_guard_start() != 0)
        tide_warn("cannot start the scripts' CPU tick (timer_create): budgets are not enforced");
    tide_guard_mem_attach(&vm->mem, L, app->cfg.script_max_memory);
    luaL_openlibs(L);

    /* package.path: our directories first, then the system's */
    const tide_config *c = &app->cfg;
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "%s/?.lua;%s/?.lua;%s/?.lua;%s", c->bindings_dir, c->scripts_dir,
                    c->policies_dir, lua_tostring(L, -1));
    lua_setfield(L, -3, "path");
    lua_pop(L, 1);
    /* a bundle read into memory: its modules, not the directories' (runtime/bundle.h) */
    if (app->bundle && tide_bundle_install(L, app->bundle) != 0) goto fail;
    lua_getfield(L, -1, "preload");
    lua_pushlightuserdata(L, vm);
    if (!app->open_core) {
        lua_pushstring(L, "no tide.core module registered (tide_app.open_core)");
        goto fail;
    }
    lua_pushcclosure(L, app->open_core, 1);
    lua_setfield(L, -2, "tide.core");
    lua_pop(L, 2);

    /* json.decode for C-side conversions */
    lua_getglobal(L, "require");
    lua_pushstring(L, "tide.json");
    if (pcall_guarded(vm, L, 1, 1) != 0) goto fail;
    lua_getfield(L, -1, "decode");
    vm->decode_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);

    /* boot.load(names); boot.handle kept for requests */
    /* scripts and policies load into the sandbox (bindings/tide/sandbox.lua), which reads
     * policies/sandbox.lua: what they may reach, routes' budgets, quarantine */
    lua_getglobal(L, "require");
    lua_pushstring(L, "tide.sandbox");
    if (pcall_guarded(vm, L, 1, 1) != 0) goto fail;
    lua_getfield(L, -1, "install");
    lua_pushstring(L, c->scripts_dir);
    lua_pushstring(L, c->policies_dir);
    lua_pushinteger(L, c->supervise || app->nworkers > 1 ? c->watchdog_ms : 0); /* its bound */
    if (pcall_guarded(vm, L, 3, 1) != 0) goto fail;
    if (read_quarantine(vm, L) != 0) goto fail;
    lua_settop(L, 0);

    lua_getglobal(L, "require");
    lua_pushstring(L, "tide.boot");
    if (pcall_guarded(vm, L, 1, 1) != 0) goto fail;
    lua_getfield(L, -1, "handle");
    if (!lua_isfunction(L, -1)) {
        lua_pushstring(L, "tide.boot has no handle function");
        goto fail;
    }
    vm->handle_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_getfield(L, -1, "load");
    if ((app->bundle ? tide_bundle_push_route_names(L, app->bundle)
                     : push_script_names(L, c->scripts_dir)) != 0)
        goto fail;
    if (pcall_guarded(vm, L, 1, 1) != 0) goto fail;
    vm->nroutes = lua_isnumber(L, -1) ? (int)lua_tointeger(L, -1) : 0;
    lua_settop(L, 0);
    if (compile_routes(vm, L) != 0) goto fail;

    /* the resilience policy: checked now, applied by the caller when the bundle goes live */
    lua_getglobal(L, "require");
    lua_pushstring(L, "resilience");
    if (pcall_guarded(vm, L, 1, 1) != 0) goto fail;
    if (read_resilience(vm, L) != 0) goto fail;
    lua_settop(L, 0);

    /* the cache policy (checked by tide.boot against the routes just loaded) */
    lua_getglobal(L, "require");
    lua_pushstring(L, "tide.boot");
    if (pcall_guarded(vm, L, 1, 1) != 0) goto fail;
    lua_getfield(L, -1, "cache_policy");
    if (pcall_guarded(vm, L, 0, 1) != 0) goto fail;
    char perr[256];
    if (!(vm->cache = tide_cache_policy_read(L, -1, perr, sizeof perr))) {
        lua_pushstring(L, perr);
        goto fail;
    }
    for (int i = 0; i < vm->nvroutes; i++) /* each GET route's rule, found once */
        if (strncmp(vm->routes[i].key, "GET ", 4) == 0)
            vm->routes[i].rule = tide_cache_policy_rule(vm->cache, vm->routes[i].key);
    lua_settop(L, 0);
    lua_gc(L, LUA_GCCOLLECT, 0);
    vm->gc_floor_kb = lua_gc(L, LUA_GCCOUNT, 0);
    if (app->bundle && tide_bundle_serialize(app->bundle, &vm->bundle_buf, &vm->bundle_len) != 0)
        vm->bundle_buf = NULL; /* no fresh state after a stop: it is collected instead */
    *out = vm;
    return 0;
fail:
    snprintf(err, errlen, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "load failed");
    tide_guard_mem_detach(&vm->mem, L);
    lua_close(L);
    tide_cache_policy_free(vm->cache);
    tide_guard_routes_free(vm->stops);
    routes_free(vm);
    free(vm);
    return TIDE_ELUA;
}

void tide_vm_ref(tide_vm *vm) { vm->refs++; }

void tide_vm_unref(tide_vm *vm)
{
    if (--vm->refs > 0) return;
    if (vm->retired == 1) {
        /* lua_close would free millions of objects in one pass: sweep them a slice per
         * pass first (reap_slice), then close what is left */
        vm->retired = 2;
        vm->refs = 1;
        vm->gc_cycles = 0;
        ev_idle_stop(vm->app->loop, &vm->gc_idle);
        ev_prepare_start(vm->app->loop, &vm->reap);
        return;
    }
    tide_debug("closing script bundle generation %llu", vm->generation);
    ev_prepare_stop(vm->app->loop, &vm->reap);
    ev_idle_stop(vm->app->loop, &vm->gc_idle);
    tide_guard_mem_detach(&vm->mem, vm->L);
    lua_close(vm->L);
    tide_cache_policy_free(vm->cache);
    tide_guard_routes_free(vm->stops);
    routes_free(vm);
    free(vm->bundle_buf);
    free(vm);
    malloc_trim(0); /* a whole bundle's heap just went back */
}

/* ---- collection on idle ---------------------------------------------------------------- */

/* Runs collection steps for at most GC_SLICE; when the second cycle completes, records the new
 * floor and, if the cycles freed much, trims the C heap too. Two: the cycle under way when the
 * request ended may have marked its garbage while the request still held it, so it frees
 * nothing of it; only a cycle that starts after the request is sure to. (tide_vm_unref stops
 * the watcher.) */
/* Collection steps for at most GC_SLICE: returns 1 once the second cycle has completed. */
static int gc_slice(tide_vm *vm)
{
    double until = ev_time() + GC_SLICE;
    do
        if (lua_gc(vm->L, LUA_GCSTEP, GC_STEP_KB) && ++vm->gc_cycles == 2) return 1;
    while (ev_time() < until);
    return 0;
}

static void gc_on_idle(struct ev_loop *loop, ev_idle *w, int revents)
{
    (void)revents;
    tide_vm *vm = w->data;
    if (!gc_slice(vm)) return;
    ev_idle_stop(loop, w);
    vm->gc_floor_kb = lua_gc(vm->L, LUA_GCCOUNT, 0);
    if (vm->gc_peak_kb - vm->gc_floor_kb >= GC_TRIM_KB) malloc_trim(0);
}

/* A retired state with no request left (tide_vm_unref): GC steps for at most GC_SLICE per
 * loop pass, busy or not, until a whole cycle has run after the last request; then it is
 * closed, which now frees only what was live. */
static void reap_slice(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    tide_vm *vm = w->data;
    if (!gc_slice(vm)) return;
    tide_debug("retired script state swept: closing it");
    tide_vm_unref(vm); /* retired == 2: closes */
}

/* After a request: start collecting on idle if the heap grew far past its floor. */
static void gc_check(tide_vm *vm)
{
    if (ev_is_active(&vm->gc_idle)) return;
    int kb = lua_gc(vm->L, LUA_GCCOUNT, 0);
    if (kb - vm->gc_floor_kb < GC_GROWTH_KB) {
        if (kb < vm->gc_floor_kb) vm->gc_floor_kb = kb; /* the automatic collector ran */
        return;
    }
    vm->gc_peak_kb = kb;
    vm->gc_cycles = 0;
    ev_idle_start(vm->app->loop, &vm->gc_idle);
}

int tide_vm_route_count(const tide_vm *vm) { return vm->nroutes; }

void tide_vm_memory(const tide_vm *vm, size_t *used, size_t *peak, size_t *limit)
{
    *used = vm ? vm->mem.used : 0;
    *peak = vm ? vm->mem.peak : 0;
    *limit = vm ? vm->mem.limit : 0;
}

void tide_vm_each_stopped_route(const tide_vm *vm, double now,
                                void (*f)(const char *, long long, double, void *), void *arg)
{
    if (vm) tide_guard_routes_each(vm->stops, now, f, arg);
}

int tide_vm_describe(tide_vm *vm, const char *section, FILE *f)
{
    lua_State *L = vm->L;
    int top = lua_gettop(L);
    lua_getglobal(L, "require");
    lua_pushstring(L, "tide.boot");
    int rc = pcall_tb(L, 1, 1);
    if (rc == 0) {
        lua_getfield(L, -1, "describe");
        lua_pushstring(L, section);
        rc = pcall_tb(L, 1, 1);
    }
    if (rc != 0 || !lua_istable(L, -1)) {
        const char *msg = rc ? lua_tostring(L, -1) : "not a list";
        fprintf(f, "(%s unavailable: %s)\n", section, msg ? msg : "?");
        lua_settop(L, top);
        return TIDE_ELUA;
    }
    int n = (int)lua_objlen(L, -1);
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        if (lua_isstring(L, -1)) fprintf(f, "%s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    lua_settop(L, top);
    return 0;
}

/* ---- waiting: core.wait / core.wake ------------------------------------------------------
 *
 * A request parks its coroutine (no database call) until another request of the same state
 * wakes it, its time passes, or its client goes away: how one request waits for what another
 * is doing (/rest/v1's single catalog read). Each parked task is in its vm's list, and its
 * timer is how it resumes, always on a later loop pass: for a wake or an abort the timer is
 * re-armed at 0. A request stopped at its budget wakes the vm's waiters (it may be the one
 * they wait for). */

static void wait_unlink(tide_task *t)
{
    if (t->wait_prev) t->wait_prev->wait_next = t->wait_next;
    else if (t->vm->waiters == t) t->vm->waiters = t->wait_next;
    if (t->wait_next) t->wait_next->wait_prev = t->wait_prev;
    t->wait_prev = t->wait_next = NULL;
}

static void wait_done(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    static const char *const why[] = { "timeout", "woken", "aborted" };
    tide_task *t = container_of(w, tide_task, wait);
    wait_unlink(t);
    t->waiting = 0;
    lua_pushstring(t->co, why[t->wait_why]);
    tide__task_resume(t, 1);
}

/* Ends t's wait on the next loop pass with why (the first reason to end it stands). */
static void wait_end(tide_task *t, int why)
{
    if (!t->waiting || t->wait_why != TIDE__WAIT_TIMEOUT) return;
    t->wait_why = why;
    wait_unlink(t);
    ev_timer_stop(t->app->loop, &t->wait);
    ev_timer_set(&t->wait, 0., 0.);
    ev_timer_start(t->app->loop, &t->wait);
}

void tide__task_wait(tide_task *t, double seconds)
{
    tide_vm *vm = t->vm;
    t->waiting = 1;
    t->wait_why = TIDE__WAIT_TIMEOUT;
    t->wait_prev = NULL;
    t->wait_next = vm->waiters;
    if (vm->waiters) vm->waiters->wait_prev = t;
    vm->waiters = t;
    ev_timer_init(&t->wait, wait_done, seconds > 0 ? seconds : 0., 0.);
    ev_timer_start(t->app->loop, &t->wait);
}

int tide__vm_wake(tide_vm *vm)
{
    int n = 0;
    for (tide_task *t = vm->waiters, *next; t; t = next, n++) {
        next = t->wait_next;
        wait_end(t, TIDE__WAIT_WOKEN); /* unlinks t */
    }
    return n;
}

/* ---- requests -------------------------------------------------------------------------- */

static void push_lstr(lua_State *L, const char *k, const char *v, size_t len)
{
    lua_pushlstring(L, v, len);
    lua_setfield(L, -2, k);
}

/* req for boot.handle: the request, and what the router found: route_id (the route's index
 * in boot.route_table()) and params (percent-decoded), or route_status (404, 405 with allow,
 * 400) for boot to refuse; closed: the seconds the route stays in quarantine. */
static void push_request(tide_task *t, tide_http_req *req, const tide_route_match *m, double closed)
{
    lua_State *co = t->co;
    lua_createtable(co, 0, 14);
    lua_pushstring(co, req->method);
    lua_setfield(co, -2, "method");
    push_lstr(co, "path", req->path, req->path_len);
    push_lstr(co, "query_string", req->query, req->query_len);
    lua_createtable(co, 0, req->nheaders);
    /* Backwards, so that of a repeated header the first occurrence is the one left in the
     * table: the value tide_http_header_get() gives C (the rule stated in http.h). */
    for (int i = req->nheaders - 1; i >= 0; i--) {
        /* the bearer token stays out of the Lua state: scripts get its verified claims, and a
         * script that logs its headers cannot leak a token */
        if (req->headers[i].name_len == 13 &&
            memcmp(req->headers[i].name, "authorization", 13) == 0)
            continue;
        lua_pushlstring(co, req->headers[i].name, req->headers[i].name_len);
        lua_pushlstring(co, req->headers[i].value, req->headers[i].value_len);
        lua_rawset(co, -3);
    }
    lua_setfield(co, -2, "headers");
    if (req->body_len > 0) push_lstr(co, "body", req->body, req->body_len);
    lua_pushstring(co, tide_role_name(t->role));
    lua_setfield(co, -2, "role");
    lua_pushstring(co, t->id);
    lua_setfield(co, -2, "id");
    if (t->claims && t->role != TIDE_ROLE_ANON)
        push_lstr(co, "claims_json", t->claims, strlen(t->claims)); /* boot decodes it */
    if (m && m->status == TIDE_ROUTE_FOUND) {
        lua_pushinteger(co, m->id + 1);
        lua_setfield(co, -2, "route_id");
        lua_createtable(co, 0, m->nparams);
        for (int i = 0; i < m->nparams; i++) {
            char small[256];
            size_t len = m->params[i].len;
            char *out = len <= sizeof small ? small : malloc(len);
            long n = out ? tide_router_decode(m->params[i].value, len, out) : -1;
            lua_pushstring(co, m->params[i].name);
            if (n >= 0) lua_pushlstring(co, out, (size_t)n);
            else lua_pushlstring(co, m->params[i].value, len); /* memory: as sent */
            lua_rawset(co, -3);
            if (out != small) free(out);
        }
        lua_setfield(co, -2, "params");
        if (closed > 0) {
            lua_pushnumber(co, closed);
            lua_setfield(co, -2, "closed");
        }
    } else {
        lua_pushinteger(co, m ? m->status : TIDE_ROUTE_NOT_FOUND);
        lua_setfield(co, -2, "route_status");
        if (m && m->status == TIDE_ROUTE_NOT_ALLOWED) {
            lua_pushstring(co, m->allow);
            lua_setfield(co, -2, "allow");
        }
    }
}

/* The request's answer goes up the pipeline (once). */
static void answer(tide_task *t, tide_http_req *req, int status, const char *ctype,
                   const char *hdrs, const char *body, size_t blen)
{
    tide_answer_fn fn = t->answer;
    t->answer = NULL;
    t->cr = NULL;
    if (!fn) return;
    tide_answer_log lg = {
        t->id, t->role, t->started, t->aborted, NULL, t->sub, t->route[0] ? t->route : NULL
    };
    char with_lsn[1024];
    if (t->wrote && t->app->writes) {
        /* read-your-writes: the caller's later reads (here, for a while) and the client (to
         * send back as Tide-LSN, to any instance) get the position after its commit */
        tide_app *app = t->app;
        double now = ev_now(app->loop), window = app->ups[TIDE_UP_REPLICA]->policy.lag_ryw_window;
        char key[128];
        int klen = tide_lsn_memo_key(tide_role_name(t->role), t->sub, key, sizeof key);
        if (klen && window > 0)
            tide_lsn_memo_put(app->writes, key, (size_t)klen, t->wrote, now, now + window);
        char lsn[TIDE_LSN_TEXT];
        tide_lsn_format(t->wrote, lsn);
        int n = snprintf(with_lsn, sizeof with_lsn, "Tide-LSN: %s\r\n%s", lsn, hdrs ? hdrs : "");
        if (n > 0 && (size_t)n < sizeof with_lsn) hdrs = with_lsn;
    }
    fn(t->answer_ud, req, status, ctype, hdrs, body, blen, &lg);
}

static void task_free(tide_task *t)
{
    if (t->waiting) { /* not reached: a parked task is freed only once resumed */
        ev_timer_stop(t->app->loop, &t->wait);
        wait_unlink(t);
    }
    if (t->answer) answer(t, NULL, 499, NULL, NULL, NULL, 0); /* never answered */
    if (t->tx) {
        tide_pool_release(t->tx);
        t->tx = NULL;
    }
    t->app->inflight--;
    tide_vm *vm = t->vm;
    crossings.requests++;
    crossings.total += t->crossings;
    /* a coroutine that returned is reusable (LuaJIT: status 0, its stack emptied); one that
     * raised, or was stopped, or still holds a yield is not */
    if (t->co_done && lua_status(t->co) == 0 && vm->nco_pool < CO_POOL) {
        lua_settop(t->co, 0);
        vm->co_pool[vm->nco_pool++] = t->co_ref;
    } else {
        luaL_unref(vm->L, LUA_REGISTRYINDEX, t->co_ref);
    }
    gc_check(t->vm);
    tide_vm_unref(t->vm);
    free(t->claims);
    free(t);
}

/* Sends the answer up the pipeline. */
static void send(tide_task *t, tide_http_req *req, int status, const char *ctype, const char *hdrs,
                 const char *body, size_t blen)
{
    answer(t, req, status, ctype, hdrs, body, blen);
}

/* Answers with a fixed JSON error (used when the bundle itself fails). */
static void respond_internal(tide_task *t, const char *why)
{
    char body[256];
    int n = snprintf(body, sizeof body,
                     "{\"code\":\"TIDE_INTERNAL\",\"message\":\"internal error\","
                     "\"details\":\"request %s\",\"hint\":null}",
                     t->id);
    tide_error("request %s: %s", t->id, why);
    tide_http_req *req = t->req;
    t->req = NULL;
    send(t, req, 500, "application/json", NULL, body, (size_t)n);
}

/* The coroutine returned boot.handle's (status, body, content_type, header_block): send them
 * as they are. tide.boot checked them (status 100..599, header lines well formed); only what
 * C needs to handle them safely is checked here, and tide_http_respond keeps its own CR/LF
 * guard as the transport's last line. The strings stay on the coroutine's stack until the
 * response is sent. */
static void respond_from_lua(tide_task *t)
{
    lua_State *co = t->co;
    if (lua_type(co, 1) != LUA_TNUMBER || lua_type(co, 2) != LUA_TSTRING ||
        lua_type(co, 3) != LUA_TSTRING ||
        !(lua_isnoneornil(co, 4) || lua_type(co, 4) == LUA_TSTRING)) {
        respond_internal(t, "boot.handle did not return status, body, content type, headers");
        return;
    }
    lua_Number s = lua_tonumber(co, 1);
    if (!(s >= 0 && s < 1000)) { /* keeps the conversion to int defined */
        respond_internal(t, "boot.handle returned a status out of range");
        return;
    }
    int status = (int)s;
    size_t blen;
    const char *body = lua_tolstring(co, 2, &blen);
    const char *ctype = lua_tostring(co, 3);
    const char *hdrs = lua_isnoneornil(co, 4) ? NULL : lua_tostring(co, 4);
    tide_http_req *req = t->req;
    t->req = NULL;
    if (status >= 500) tide_warn("request %s answered %d", t->id, status);
    send(t, req, status, ctype, hdrs, body, blen);
}

/* A stopped script left vm's heap far above its floor. Collecting it is not enough to give
 * the memory back: LuaJIT's allocator keeps a segment as long as one live object sits in it,
 * and a script that built millions of objects leaves the string table and the state's own
 * later allocations spread over its segments (measured: after a table of two million small
 * tables was stopped, RSS stayed 38-64 MB up after four full collections, which also held the
 * loop 100-200 ms). So the state is built afresh from the same bundle (what a reload does,
 * from the copy the vm kept: 20-60 ms) and the old one is retired: once its requests in flight
 * end, its garbage is swept a slice per loop pass and it is closed, which unmaps every
 * segment. The routes' stops (quarantine) carry over. Without a copy, or if the build fails,
 * the state is collected at once instead. */
static void after_stop(tide_vm *vm)
{
    tide_app *app = vm->app;
    double t0 = ev_time();
    size_t held = vm->mem.used;
    if (app->vm == vm && vm->bundle_buf) {
        tide_bundle b;
        tide_vm *fresh = NULL;
        char err[512];
        int rc = tide_bundle_parse(vm->bundle_buf, vm->bundle_len, &b, err, sizeof err);
        if (rc == 0) {
            app->bundle = &b;
            rc = tide_vm_new(app, &fresh, err, sizeof err);
            app->bundle = NULL;
            tide_bundle_free(&b);
        }
        if (rc == 0) {
            tide_guard_routes_free(fresh->stops);
            fresh->stops = vm->stops;
            vm->stops = NULL;
            app->vm = fresh;
            tide_rcache_policy_changed(app, tide_vm_cache_policy(vm), tide_vm_cache_policy(fresh));
            vm->retired = 1;   /* swept a slice per pass once its requests end */
            tide_vm_unref(vm); /* the app's reference; requests in flight keep it */
            tide_info("the Lua state a stopped script grew to %zu MiB was replaced by a fresh "
                      "one of the same bundle (%.1f ms)",
                      held >> 20, (ev_time() - t0) * 1e3);
            return;
        }
        tide_warn("cannot build a fresh Lua state after a stop (%s): collecting instead", err);
    }
    ev_idle_stop(app->loop, &vm->gc_idle);
    for (int i = 0; i < 4; i++) lua_gc(vm->L, LUA_GCCOLLECT, 0);
    tide_info("script memory collected after a stop: %zu KiB held, %.1f ms", vm->mem.used >> 10,
              (ev_time() - t0) * 1e3);
    vm->gc_floor_kb = lua_gc(vm->L, LUA_GCCOUNT, 0);
    malloc_trim(0);
}

/* Answers a request whose script was stopped at its budget (guard.h), logs where, and counts
 * the stop against its route (which may put the route in quarantine). */
static void respond_stopped(tide_task *t, int why, const char *where)
{
    tide_vm *vm = t->vm;
    const tide_config *c = &vm->app->cfg;
    char body[320], what[96];
    const char *route = t->route_key[0] ? t->route_key : "(no route)";
    if (why == TIDE_GUARD_CPU)
        snprintf(what, sizeof what, "ran past its CPU budget (%lld ms)",
                 (long long)(t->budget_ns / 1000000));
    else
        snprintf(what, sizeof what, "went over script.max_memory (%zu MiB)",
                 c->script_max_memory >> 20);
    int n =
        snprintf(body, sizeof body,
                 "{\"code\":\"%s\",\"message\":\"the route's script %s and was stopped\","
                 "\"details\":\"request %s\",\"hint\":null}",
                 why == TIDE_GUARD_CPU ? "TIDE_SCRIPT_TIMEOUT" : "TIDE_SCRIPT_MEMORY", what, t->id);
    tide_error("request %s %s: script %s; stopped at %s (%.0f ms of Lua)", t->id, route, what,
               where[0] ? where : "(not in Lua code)", (double)t->lua_ns / 1e6);
    if (t->route_key[0] &&
        tide_guard_routes_stop(vm->stops, t->route_key, ev_now(vm->app->loop)) == 1) {
        tide_guard_count_quarantine();
        tide_warn("route %s is in quarantine for %.0f s: its script was stopped too often "
                  "(policies/sandbox.lua quarantine)",
                  t->route_key,
                  tide_guard_routes_closed(vm->stops, t->route_key, ev_now(vm->app->loop)));
    }
    tide_http_req *req = t->req;
    t->req = NULL;
    if (req) send(t, req, 500, "application/json", NULL, body, (size_t)n);
}

void tide__task_resume(tide_task *t, int nargs)
{
    tide_task *saved = current_task;
    current_task = t;
    tide_guard_run run;
    char where[192];
    int64_t spent;
    tide_guard_enter(&run, t->co, &t->vm->mem, t->budget_ns - t->lua_ns,
                     t->route_key[0] ? t->route_key : NULL);
    t->crossings++; /* into the coroutine */
    int rc = lua_resume(t->co, nargs);
    int why = tide_guard_leave(&run, &spent, where, sizeof where);
    t->lua_ns += spent;
    current_task = saved;
    if (why != TIDE_GUARD_NONE) {
        if (t->call) tide_call_abort(t->call); /* cannot happen: a stopped run is dead */
        respond_stopped(t, why, where);
        tide_vm *vm = t->vm;
        tide_vm_ref(vm);
        tide__vm_wake(vm); /* it may have been doing what others wait for */
        task_free(t);      /* its coroutine, open transaction and connection go */
        if (lua_gc(vm->L, LUA_GCCOUNT, 0) - vm->gc_floor_kb >= GC_GROWTH_KB) after_stop(vm);
        else if (why == TIDE_GUARD_MEMORY) /* one refused block: little to collect */
            lua_gc(vm->L, LUA_GCCOLLECT, 0);
        tide_vm_unref(vm);
        return;
    }
    if (rc == LUA_YIELD) {
        if (t->call || t->waiting) return; /* parked on a database call, or core.wait */
        respond_internal(t, "handler yielded outside a tide call");
    } else if (rc == 0) {
        t->crossings++; /* the return */
        t->co_done = 1;
        respond_from_lua(t);
    } else {
        t->crossings++;
        const char *msg = lua_tostring(t->co, -1);
        respond_internal(t, msg ? msg : "error in boot.handle");
    }
    task_free(t);
}

void tide_vm_crossings(long long *requests, long long *total)
{
    *requests = crossings.requests;
    *total = crossings.total;
}

void tide__vm_crossing(int n)
{
    if (current_task) current_task->crossings += n;
}

static void on_abort(tide_http_req *req)
{
    tide_task *t = req->ud;
    if (!t) return;
    t->aborted = 1;
    if (t->call) tide_call_abort(t->call);
    wait_end(t, TIDE__WAIT_ABORTED);
}

void tide_vm_dispatch(tide_vm *vm, tide_http_req *req, const tide_stage_in *in)
{
    tide_app *app = vm->app;
    tide_task *t = calloc(1, sizeof *t);
    if (!t) {
        static const char body[] = "{\"code\":\"TIDE_OVERLOADED\",\"message\":\"out of memory\"}";
        in->answer(in->ud, req, 503, "application/json", NULL, body, sizeof body - 1, NULL);
        return;
    }
    tide_role role = in->role;
    t->answer = in->answer;
    t->answer_ud = in->ud;
    t->cr = in->cr;
    snprintf(t->sub, sizeof t->sub, "%s", in->sub ? in->sub : "");
    t->born = in->born;
    t->floor = req->lsn_floor;
    t->app = app;
    t->vm = vm;
    tide_vm_ref(vm);
    t->req = req;
    t->role = role;
    t->started = ev_now(app->loop);
    if (in->claims) t->claims = strdup(in->claims);
    else t->claims = strdup(role == TIDE_ROLE_ANON ? "{\"role\":\"anon\"}" : "{}");
    memcpy(t->id, req->id, sizeof t->id);
    t->budget_ns = vm->budget_ns;
    double closed = 0;
    const tide_route_match *m = in->match;
    if (m && m->status == TIDE_ROUTE_FOUND && m->id >= 0 && m->id < vm->nvroutes) {
        /* the route's name in the log lines, its budget and quarantine: known before any Lua
         * runs (tide_guard_enter takes the key and the budget from the task) */
        const vroute *r = &vm->routes[m->id];
        snprintf(t->route, sizeof t->route, "%s", r->pattern);
        snprintf(t->route_key, sizeof t->route_key, "%s", r->key);
        if (r->budget_ns > 0) t->budget_ns = r->budget_ns;
        closed = tide_guard_routes_closed(vm->stops, t->route_key, t->started);
    }
    app->inflight++;
    req->ud = t;
    req->on_abort = on_abort;

    lua_State *L = vm->L;
    if (vm->nco_pool > 0) {
        t->co_ref = vm->co_pool[--vm->nco_pool];
        lua_rawgeti(L, LUA_REGISTRYINDEX, t->co_ref);
        t->co = lua_tothread(L, -1);
        lua_pop(L, 1);
    } else {
        t->co = lua_newthread(L);
        t->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    lua_rawgeti(t->co, LUA_REGISTRYINDEX, vm->handle_ref);
    push_request(t, req, m, closed);
    tide__task_resume(t, 1);
}
