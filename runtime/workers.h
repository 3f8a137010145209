/* workers.h - the supervising parent: `workers = N` worker processes, each a whole tide (its
 * own event loop, Lua state, pools and cache) accepting on the same port through SO_REUSEPORT,
 * under a parent that only supervises, as nginx and PgBouncer (so_reuseport) do. By default
 * (supervise = true) one worker runs so too: a parent watches it. Processes rather than
 * threads: a worker that crashes or hangs takes nothing else down and is restarted; nothing in
 * the request path needs a lock; the per-process state (metrics, logs, statement statistics,
 * the JWT cache) stays as it is. What workers share: the listening port (the kernel spreads
 * connections), the result cache's invalidation slots (MAP_SHARED, so a write answered by one
 * worker is never hidden by another's cache), the configured connection budget (each worker's
 * pools get pool.size / N connections, at least one), the supervisor's region (heartbeats and
 * counters, runtime/supervise.h) and the snapshot of the last bundle that loaded
 * (runtime/bundle.h).
 *
 * The parent: forwards SIGHUP (every worker reloads its bundle), SIGTERM/SIGINT (every worker
 * drains and exits; a second one makes them exit at once) and restarts a worker that dies,
 * logging why, with a backoff that grows while workers keep dying young (1 s to 30 s). It
 * kills a worker whose event loop stopped beating for watchdog_ms (stuck in one long call) and
 * restarts it at once (the backoff applies when that keeps happening). A restarted worker
 * serves the last bundle that loaded. If a worker fails before it ever served (a port taken,
 * scripts that do not load), the parent stops the others and exits 1. It holds no connection,
 * no Lua state and no event loop. Under systemd with WatchdogSec= it sends WATCHDOG=1 at half
 * the interval while every worker beats (or is being restarted). */
#ifndef TIDE_WORKERS_H
#define TIDE_WORKERS_H

/* Runs n workers (n >= 1): each child calls serve(index, restarts, ready_fd, arg) and exits
 * with what it returns; restarts is how many times worker `index` was started before (0: its
 * first start); serve writes one byte to ready_fd once it is serving. watchdog_ms: a worker's
 * loop silent this long is killed (0: no watchdog). Returns the parent's exit code: 0 after a
 * stop (SIGTERM/SIGINT) once every worker has exited cleanly, a worker's exit status (128 +
 * the signal when one killed it) when one did not exit cleanly while stopping, 1 when a
 * worker failed to start. notify(state, arg), when set, is told "ready" (every worker
 * serving), "reloading" (a SIGHUP forwarded), "reloaded" (every worker that got it has taken
 * or rejected its new bundle, or 15 s passed) and "stopping". */
int tide_workers_run(int n, int watchdog_ms,
                     int (*serve)(int index, int restarts, int ready_fd, void *arg),
                     void (*notify)(const char *state, void *arg), void *arg);

/* The number of CPUs online (workers = "auto"), at least 1. */
int tide_workers_auto(void);

#endif
