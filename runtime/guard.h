/* guard.h - what keeps a script from holding the event loop: a CPU budget per run of Lua, a
 * memory bound per Lua state, and per-route quarantine.
 *
 * CPU. Lua runs on the loop thread, in runs: a request's coroutine between two yields, or a
 * step of a bundle's load. tide_guard_enter() opens a run with a deadline (the budget the
 * request has left, on the wall clock); a timer on the loop thread's CPU clock signals it
 * every 5 ms of CPU it uses, and once the deadline has passed the handler sets a count hook on
 * the running state (LuaJIT's own advice for interrupting a script; tide's LuaJIT is built
 * with LUAJIT_ENABLE_CHECKHOOK, so compiled loops see the hook too). The hook raises an error at
 * the next instruction and stays set until tide_guard_leave(): a pcall in the script that
 * catches the error runs one instruction more and is stopped again, so the run unwinds to
 * its top whatever it does. The run's cost on the fast path is two clock reads and two
 * stores; only the signal handler (on the loop thread) touches the Lua state, with
 * lua_sethook, which LuaJIT allows from a signal handler. An idle loop gets no signal.
 *
 * What the hook cannot stop is one long C call (a pathological pattern match): the run stays
 * past its deadline; the next tick tells the supervisor (runtime/supervise.h) which route
 * was running, and the supervisor's loop watchdog restarts the process.
 *
 * Memory. tide_guard_mem_attach() puts a counting wrapper around a state's allocator (LuaJIT's
 * own, kept underneath). While a run of that state is open, an allocation that would take the
 * state past its bound is refused: the script gets LuaJIT's "not enough memory" error and the
 * run is stopped as for CPU (so a pcall cannot swallow it). Outside runs (C pushing a request
 * into a coroutine, reading results back) nothing is refused: an unprotected failure there
 * would abort the process. The bound therefore holds for what scripts do; C's own pushes go a
 * little past it at most.
 *
 * Quarantine. tide_guard_routes counts a bundle's stops per route; a route stopped `hits`
 * times within `window` seconds answers 503 for `cool_down` seconds (pure bookkeeping, the
 * clock passed in; unit-tested in runtime/tests/test_guard.c).
 *
 * Everything here runs on the loop thread. */
#ifndef TIDE_GUARD_H
#define TIDE_GUARD_H

#include <stddef.h>
#include <stdint.h>
#include <lua.h>
#include "error.h"

enum { TIDE_GUARD_NONE = 0, TIDE_GUARD_CPU = 1, TIDE_GUARD_MEMORY = 2 };

/* Installs the signal handler and starts the tick on the calling (loop) thread's CPU clock,
 * once per process (a forked child starts its own); later calls do nothing. Call it from the
 * thread that runs Lua, before the first run. Returns 0 or TIDE_EIO (no timer: budgets are
 * then not enforced, the caller logs it). */
TIDE_MUST_CHECK int tide_guard_start(void);

/* A state's memory bound (embedded in the owner's struct; see the top of this file). */
typedef struct tide_guard_mem {
    lua_Alloc f; /* the allocator underneath */
    void *ud;
    size_t used;        /* bytes the state holds now */
    size_t peak;        /* the most it held */
    size_t limit;       /* 0: no bound */
    long long refusals; /* allocations refused */
} tide_guard_mem;

/* Wraps L's allocator with m's counting one, bounded by limit bytes (0: count only). */
void tide_guard_mem_attach(tide_guard_mem *m, lua_State *L, size_t limit);
/* Puts L's own allocator back. Call before lua_close (LuaJIT frees its arena only when it
 * sees its own allocator). */
void tide_guard_mem_detach(tide_guard_mem *m, lua_State *L);

/* One run of Lua under a budget. Lives on the caller's stack between enter and leave. */
typedef struct tide_guard_run {
    lua_State *L;
    tide_guard_mem *mem;
    int64_t started;              /* CLOCK_MONOTONIC ns */
    int64_t budget;               /* ns this run may take from its start */
    const char *route;            /* what the run serves, for the supervisor's log (may be NULL) */
    struct tide_guard_run *outer; /* the run this one interrupted, if runs nest */
} tide_guard_run;

/* Opens a run of L (any thread of the state) that may take budget_ns (<= 0: stop at once,
 * for a request that has used its budget up) and whose allocations count against mem (may
 * be NULL). route: a string that stays valid until leave (may be NULL). */
void tide_guard_enter(tide_guard_run *r, lua_State *L, tide_guard_mem *mem, int64_t budget_ns,
                      const char *route);
/* Closes the run: returns TIDE_GUARD_NONE, or why it was stopped (TIDE_GUARD_CPU or
 * TIDE_GUARD_MEMORY; the hook is then cleared and where[] holds "source:line" of the Lua
 * code it stopped, or ""). *spent_ns gets the run's length. */
int tide_guard_leave(tide_guard_run *r, int64_t *spent_ns, char *where, size_t wherelen);

/* CLOCK_MONOTONIC in ns. */
int64_t tide_guard_now(void);

/* Process-wide counts, since start. */
typedef struct tide_guard_stats {
    long long stops_cpu, stops_memory; /* runs stopped, by reason */
    long long quarantines;             /* routes put in quarantine */
    long long late_stops;              /* runs still going 100 ms past a stop (a long C call) */
} tide_guard_stats;
void tide_guard_get_stats(tide_guard_stats *s);
/* Counts a quarantine (tide_guard_routes_stop's caller, when it returned 1). */
void tide_guard_count_quarantine(void);

/* ---- quarantine (pure) ------------------------------------------------------------------ */

typedef struct tide_guard_quarantine {
    int hits;         /* stops ... */
    double window;    /* ... within this many seconds ... */
    double cool_down; /* ... close the route for this long (seconds). hits 0: never */
} tide_guard_quarantine;

typedef struct tide_guard_routes tide_guard_routes;

/* A table of routes' stops (at most 256 routes tracked; more are never quarantined). */
tide_guard_routes *tide_guard_routes_new(tide_guard_quarantine q);
void tide_guard_routes_free(tide_guard_routes *g);
/* Records a stop of route at now. Returns 1 when it put the route in quarantine, else 0. */
int tide_guard_routes_stop(tide_guard_routes *g, const char *route, double now);
/* Seconds route stays closed (> 0), or 0 when it is open. Fast when no route was stopped. */
double tide_guard_routes_closed(const tide_guard_routes *g, const char *route, double now);
/* Calls f for each route with stops: its stops so far and the seconds it stays closed. */
void tide_guard_routes_each(const tide_guard_routes *g, double now,
                            void (*f)(const char *route, long long stops, double closed, void *arg),
                            void *arg);

#endif
