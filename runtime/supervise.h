/* supervise.h - what a supervising parent and its workers share (runtime/workers.h): one
 * MAP_SHARED anonymous region the parent maps before forking, holding a slot per worker and
 * the supervisor's counters.
 *
 * The loop watchdog: each worker's event loop proves it is alive by writing the monotonic
 * clock (ms) into its slot's heartbeat from a repeating timer every watchdog_ms / 4 (nothing
 * per request). A loop stuck in one long call (a Lua script inside a C function no hook can
 * interrupt, a blocking syscall) stops writing it; the parent kills a worker whose heartbeat
 * is older than watchdog_ms and starts another. The slot's `route` may name what the worker
 * is running (tide_supervise_note_route, from any thread or a signal handler); the parent
 * logs it when it kills.
 *
 * The counters (restarts by reason, the last restart) are written by the parent and read by
 * every worker for /metrics and /admin/stats. Without a parent (supervise = false) there is no
 * region: the worker calls do nothing and the counters read as zeros. */
#ifndef TIDE_SUPERVISE_H
#define TIDE_SUPERVISE_H

#include <ev.h>
#include <sys/types.h>
#include "error.h"

#define TIDE_SUPERVISE_ROUTE_MAX 128 /* a noted route, with its NUL */

enum { TIDE_RESTART_WATCHDOG = 0, TIDE_RESTART_CRASH, TIDE_RESTART_REASONS };

/* "watchdog", "crash". */
const char *tide_supervise_reason_name(int reason);

/* CLOCK_MONOTONIC in milliseconds (the heartbeats' clock). */
long long tide_supervise_now_ms(void);

/* ---- the parent ------------------------------------------------------------------------ */

/* Maps the region for nworkers slots (before forking the workers, who inherit it).
 * watchdog_ms 0 turns the heartbeat off. 0 or TIDE_ENOMEM. */
TIDE_MUST_CHECK int tide_supervise_map(int nworkers, int watchdog_ms);
/* Unmaps it (the parent, once every worker has exited). */
void tide_supervise_unmap(void);
/* Whether a region is mapped (this process is, or is a worker of, a supervising parent). */
int tide_supervise_active(void);
int tide_supervise_watchdog_ms(void);
/* Clears slot i before worker i is forked (again): no heartbeat, no route. */
void tide_supervise_slot_reset(int i);
/* Slot i's last heartbeat (monotonic ms; 0: none yet). */
long long tide_supervise_heartbeat(int i);
/* Slot i's noted route into out ("" when none). */
void tide_supervise_route(int i, char out[TIDE_SUPERVISE_ROUTE_MAX]);
/* Slot i's reloads finished (taken or rejected) so far; *last_rejected (may be NULL): whether
 * the last one was rejected. */
long long tide_supervise_reloads_done(int i, int *last_rejected);
/* Slot i's route count (the bundle it serves). */
int tide_supervise_routes(int i);
/* Counts a restart of worker i (pid, dead for reason; route: what it was running, or NULL). */
void tide_supervise_count_restart(int reason, int worker, pid_t pid, const char *route);

/* ---- a worker -------------------------------------------------------------------------- */

/* In worker i, right after the fork: its slot is i. */
void tide_supervise_attach(int worker);
/* Starts the heartbeat timer on loop (nothing without a slot or with watchdog_ms 0); writes
 * one heartbeat now. */
void tide_supervise_heartbeat_start(struct ev_loop *loop);
/* Stops it. */
void tide_supervise_heartbeat_stop(struct ev_loop *loop);
/* Notes what the worker is running (a route template, at most 127 bytes kept), for the
 * parent's log if it kills the worker; NULL or "" clears it. Async-signal-safe: no malloc, no
 * locks; callable from any thread of the worker, one writer at a time. Does nothing when not
 * supervised. */
void tide_supervise_note_route(const char *route);
/* The worker's bundle: its route count and, after a reload, the outcome (reload_ok 1: taken,
 * 0: rejected; -1: not a reload); the parent waits for every worker's before it tells systemd
 * READY. */
void tide_supervise_note_bundle(int routes, int reload_ok);

/* ---- what every process reads ---------------------------------------------------------- */

typedef struct tide_supervise_stats {
    int supervised; /* 0: no parent (supervise = false) */
    int watchdog_ms;
    pid_t parent;
    long long restarts[TIDE_RESTART_REASONS];
    int has_last; /* a restart happened */
    int last_reason, last_worker;
    pid_t last_pid;
    double last_at; /* seconds since the epoch */
    char last_route[TIDE_SUPERVISE_ROUTE_MAX];
} tide_supervise_stats;

void tide_supervise_get_stats(tide_supervise_stats *out);

#endif
