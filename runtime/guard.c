/* guard.c - CPU budgets, memory bounds and quarantine for scripts (see guard.h).
 *
 * The tick: a timer on the loop thread's own CPU clock (timer_create with CLOCK_THREAD_CPUTIME_ID
 * and SIGEV_THREAD_ID) sends that thread a signal every TICK_NS of CPU it uses; the handler
 * compares the open run's deadline with the wall clock. An idle loop gets no signal at all, and
 * tide stays single-threaded: a watchdog thread waking every 5 ms cost the point read 6-7 %
 * more CPU per request (measured side by side, make bench workload 13), all of it in the kernel
 * and glibc paths a second thread turns on, none in its own work. Everything here belongs to
 * the loop thread; the handler interrupts it, never runs beside it. A process made by fork()
 * has no timer: tide_guard_start() makes its own. */
#include "guard.h"
#include "supervise.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <lauxlib.h>

/* The supervisor's note of the route a stalled loop runs (async-signal-safe; nothing when the
 * process is not supervised). */
static void note_route(const char *route) { tide_supervise_note_route(route); }

#define GUARD_SIGNAL SIGURG              /* ignored by default: a stray one does nothing */
#define TICK_NS      (5 * 1000 * 1000)   /* the handler's look at the deadline, per CPU used */
#define LATE_NS      (100 * 1000 * 1000) /* past a stop, a run this late is in a long C call */

/* Built with -DTIDE_NO_GUARD (only `make bench`'s baseline, to measure what the budgets cost),
 * runs are not timed and states not wrapped: tide as it was before budgets. */
#ifdef TIDE_NO_GUARD
#define NO_GUARD 1
#else
#define NO_GUARD 0
#endif

static struct {
    tide_guard_run *volatile run; /* the open run, or NULL */
    volatile int64_t deadline;    /* of the open run (ns); 0: none */
    const char *volatile route;   /* of the open run, for the supervisor when late */
    volatile sig_atomic_t stop;   /* TIDE_GUARD_*: why the open run is being stopped */
    int raised;                   /* ... and the stop reached the script (an error) */
    int64_t stopped_at;           /* when the stop was asked for */
    int noted;                    /* the late stop was told to the supervisor */
    char where[192];
    pid_t started; /* the process whose timer ticks (0: none yet) */
    timer_t timer;
    tide_guard_stats stats;
} G;

int64_t tide_guard_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- stopping a run --------------------------------------------------------------------- */

/* The count hook: raises at every instruction until the run is closed. */
static void stop_hook(lua_State *L, lua_Debug *ar)
{
    if (G.stop == TIDE_GUARD_NONE) { /* set for a run that has ended */
        lua_sethook(L, NULL, 0, 0);
        return;
    }
    if (!G.where[0] && lua_getinfo(L, "Sl", ar) && ar->currentline > 0)
        snprintf(G.where, sizeof G.where, "%s:%d", ar->short_src, ar->currentline);
    G.raised = 1;
    lua_pushstring(L, G.stop == TIDE_GUARD_CPU ? "TIDE_SCRIPT_TIMEOUT: stopped at its CPU budget"
                                               : "TIDE_SCRIPT_MEMORY: stopped at its memory bound");
    lua_error(L);
}

/* The first line of Lua code on L's stack, into G.where (no allocation: the allocator calls
 * it). */
static void note_where(lua_State *L)
{
    lua_Debug ar;
    for (int level = 0; level < 32 && lua_getstack(L, level, &ar); level++) {
        if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
            snprintf(G.where, sizeof G.where, "%s:%d", ar.short_src, ar.currentline);
            return;
        }
    }
}

/* On the loop thread: stops the open run (once). */
static void stop_run(int why)
{
    tide_guard_run *r = G.run;
    if (!r || G.stop != TIDE_GUARD_NONE) return;
    G.stop = why;
    G.stopped_at = tide_guard_now();
    G.noted = 0;
    lua_sethook(r->L, stop_hook, LUA_MASKCOUNT, 1);
}

/* The tick, on the loop thread's CPU clock: past the open run's deadline, stop it; a stop
 * asked for LATE_NS ago with the run still open means one long C call (the hook waits for it
 * to return): tell the supervisor which route, for its log if it comes to a restart. */
static void on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    int64_t d = G.deadline;
    if (G.run && d != 0) {
        int64_t now = tide_guard_now();
        if (now >= d && G.stop == TIDE_GUARD_NONE) {
            stop_run(TIDE_GUARD_CPU);
            G.stopped_at = now;
        } else if (G.stop != TIDE_GUARD_NONE && !G.noted && now - G.stopped_at >= LATE_NS) {
            G.noted = 1;
            G.stats.late_stops++;
            note_route(G.route);
        }
    }
    errno = saved;
}

int tide_guard_start(void)
{
    pid_t me = getpid();
    if (G.started == me || NO_GUARD) return 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(GUARD_SIGNAL, &sa, NULL) != 0) return TIDE_EIO;
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = GUARD_SIGNAL;
    sev._sigev_un._tid = gettid();
    if (timer_create(CLOCK_THREAD_CPUTIME_ID, &sev, &G.timer) != 0) return TIDE_EIO;
    struct itimerspec its = { { 0, TICK_NS }, { 0, TICK_NS } };
    if (timer_settime(G.timer, 0, &its, NULL) != 0) {
        timer_delete(G.timer);
        return TIDE_EIO;
    }
    G.started = me;
    return 0;
}

/* ---- runs ------------------------------------------------------------------------------- */

static void publish(tide_guard_run *r)
{
    G.route = r ? r->route : NULL;
    G.deadline = r ? r->started + (r->budget > 0 ? r->budget : 0) : 0;
}

void tide_guard_enter(tide_guard_run *r, lua_State *L, tide_guard_mem *mem, int64_t budget_ns,
                      const char *route)
{
    if (NO_GUARD) return;
    r->L = L;
    r->mem = mem;
    r->route = route;
    r->budget = budget_ns;
    r->outer = G.run;
    r->started = tide_guard_now();
    G.run = r;
    publish(G.started ? r : NULL);
    if (budget_ns <= 0 && G.started) stop_run(TIDE_GUARD_CPU);
}

int tide_guard_leave(tide_guard_run *r, int64_t *spent_ns, char *where, size_t wherelen)
{
    if (NO_GUARD) {
        if (spent_ns) *spent_ns = 0;
        if (where && wherelen) where[0] = 0;
        return TIDE_GUARD_NONE;
    }
    int64_t now = tide_guard_now();
    if (spent_ns) *spent_ns = now - r->started;
    int why = G.run == r ? G.stop : TIDE_GUARD_NONE;
    if (why != TIDE_GUARD_NONE && !G.raised) {
        /* the signal came as the run was ending (returned or yielded): it was not stopped.
         * A request that goes on is stopped at once when it resumes, its budget used up. */
        lua_sethook(r->L, NULL, 0, 0);
        G.stop = TIDE_GUARD_NONE;
        G.where[0] = 0;
        note_route(NULL);
        why = TIDE_GUARD_NONE;
    }
    if (why != TIDE_GUARD_NONE) {
        lua_sethook(r->L, NULL, 0, 0);
        G.raised = 0;
        if (why == TIDE_GUARD_CPU) G.stats.stops_cpu++;
        else G.stats.stops_memory++;
        if (where) snprintf(where, wherelen, "%s", G.where);
        G.stop = TIDE_GUARD_NONE;
        G.where[0] = 0;
        note_route(NULL);
    } else if (where && wherelen) {
        where[0] = 0;
    }
    G.run = r->outer;
    if (G.run) {
        /* the outer run was interrupted, not stopped: its clock ran on meanwhile */
        publish(G.started ? G.run : NULL);
    } else {
        publish(NULL);
    }
    return why;
}

void tide_guard_get_stats(tide_guard_stats *s) { *s = G.stats; }
void tide_guard_count_quarantine(void) { G.stats.quarantines++; }

/* ---- memory ----------------------------------------------------------------------------- */

static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    tide_guard_mem *m = ud;
    if (nsize > osize && m->limit && m->used + (nsize - osize) > m->limit && G.run &&
        G.run->mem == m) {
        m->refusals++;
        if (G.stop == TIDE_GUARD_NONE) note_where(G.run->L);
        stop_run(TIDE_GUARD_MEMORY);
        G.raised = 1; /* LuaJIT raises "not enough memory" */
        return NULL;
    }
    void *p = m->f(m->ud, ptr, osize, nsize);
    if (p || nsize == 0) {
        m->used = m->used + nsize - osize;
        if (m->used > m->peak) m->peak = m->used;
    }
    return p;
}

void tide_guard_mem_attach(tide_guard_mem *m, lua_State *L, size_t limit)
{
    if (NO_GUARD) {
        memset(m, 0, sizeof *m);
        return;
    }
    m->f = lua_getallocf(L, &m->ud);
    m->used = (size_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024 + (size_t)lua_gc(L, LUA_GCCOUNTB, 0);
    m->peak = m->used;
    m->limit = limit;
    m->refusals = 0;
    lua_setallocf(L, counting_alloc, m);
}

void tide_guard_mem_detach(tide_guard_mem *m, lua_State *L)
{
    if (m->f) lua_setallocf(L, m->f, m->ud);
}

/* ---- quarantine ------------------------------------------------------------------------- */

#define MAX_ROUTES 256
#define MAX_HITS   64

typedef struct route_hits {
    char route[128];
    long long stops;
    double until; /* closed until (the caller's clock) */
    int n, head;  /* ring of the last hits' times */
    double at[MAX_HITS];
} route_hits;

struct tide_guard_routes {
    tide_guard_quarantine q;
    int n;
    route_hits *r[MAX_ROUTES];
};

tide_guard_routes *tide_guard_routes_new(tide_guard_quarantine q)
{
    tide_guard_routes *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    if (q.hits > MAX_HITS) q.hits = MAX_HITS;
    g->q = q;
    return g;
}

void tide_guard_routes_free(tide_guard_routes *g)
{
    if (!g) return;
    for (int i = 0; i < g->n; i++) free(g->r[i]);
    free(g);
}

static route_hits *find(const tide_guard_routes *g, const char *route)
{
    for (int i = 0; i < g->n; i++)
        if (strcmp(g->r[i]->route, route) == 0) return g->r[i];
    return NULL;
}

int tide_guard_routes_stop(tide_guard_routes *g, const char *route, double now)
{
    if (!g || !route || !route[0]) return 0;
    route_hits *h = find(g, route);
    if (!h) {
        if (g->n == MAX_ROUTES || !(h = calloc(1, sizeof *h))) return 0;
        snprintf(h->route, sizeof h->route, "%s", route);
        g->r[g->n++] = h;
    }
    h->stops++;
    h->at[h->head] = now;
    h->head = (h->head + 1) % MAX_HITS;
    if (h->n < MAX_HITS) h->n++;
    if (g->q.hits <= 0 || h->until > now) return 0;
    int recent = 0;
    for (int i = 0; i < h->n; i++)
        if (now - h->at[i] <= g->q.window) recent++;
    if (recent < g->q.hits) return 0;
    h->until = now + g->q.cool_down;
    h->n = h->head = 0; /* after the cool-down it starts counting afresh */
    return 1;
}

double tide_guard_routes_closed(const tide_guard_routes *g, const char *route, double now)
{
    if (!g || g->n == 0 || !route) return 0;
    const route_hits *h = find(g, route);
    return h && h->until > now ? h->until - now : 0;
}

void tide_guard_routes_each(const tide_guard_routes *g, double now,
                            void (*f)(const char *, long long, double, void *), void *arg)
{
    if (!g) return;
    for (int i = 0; i < g->n; i++) {
        const route_hits *h = g->r[i];
        f(h->route, h->stops, h->until > now ? h->until - now : 0, arg);
    }
}
