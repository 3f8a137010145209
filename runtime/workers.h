/* workers.h - `workers = N`: N worker processes, each a whole tide (its own event loop, Lua
 * state, pools and cache) accepting on the same port through SO_REUSEPORT, under a parent that
 * only supervises, as nginx and PgBouncer (so_reuseport) do. Processes rather than threads: a
 * worker that crashes takes nothing else down and is restarted; nothing in the request path
 * needs a lock; the per-process state (metrics, logs, statement statistics, the JWT cache)
 * stays as it is. What workers share: the listening port (the kernel spreads connections), the
 * result cache's invalidation slots (MAP_SHARED, so a write answered by one worker is never
 * hidden by another's cache), and the configured connection budget (each worker's pools get
 * pool.size / N connections, at least one).
 *
 * The parent: forwards SIGHUP (every worker reloads its bundle), SIGTERM/SIGINT (every worker
 * drains and exits; a second one makes them exit at once) and restarts a worker that dies,
 * logging why, with a backoff that grows while workers keep dying young (1 s to 30 s). If a
 * worker fails before it is serving the first time (a port taken, scripts that do not load),
 * the parent stops the others and exits 1. It holds no connection, no Lua state and no loop. */
#ifndef TIDE_WORKERS_H
#define TIDE_WORKERS_H

/* Runs n workers (n >= 2): each child calls serve(index, ready_fd, arg) and exits with what it
 * returns; serve writes one byte to ready_fd once it is serving. Returns the parent's exit
 * code: 0 after a stop (SIGTERM/SIGINT) once every worker has exited, 1 when a worker failed
 * to start. notify(state, arg), when set, is told "ready" (every worker serving), "reloading"
 * (a SIGHUP forwarded) and "stopping". */
int tide_workers_run(int n, int (*serve)(int index, int ready_fd, void *arg),
                     void (*notify)(const char *state, void *arg), void *arg);

/* The number of CPUs online (workers = "auto"), at least 1. */
int tide_workers_auto(void);

#endif
