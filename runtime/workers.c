/* workers.c - the supervising parent of worker processes (see workers.h). */
#include "workers.h"
#include "log.h"
#include "notify.h"
#include "supervise.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_GRACE    5.0 /* a worker that exits before serving, within this, failed to start */
#define BACKOFF_MIN    1.0
#define BACKOFF_MAX    30.0
#define TICK_MS        200   /* the parent's wakeups (shorter with a short watchdog) */
#define RELOAD_TICK_MS 20    /* while it waits for the workers' reloads */
#define RELOAD_WAIT_MS 15000 /* ... for at most this */

typedef struct worker {
    pid_t pid;             /* 0: not running */
    int ready_fd;          /* the read end of its ready pipe, or -1 */
    int ready;             /* it has served (wrote its byte) since it last started */
    int ever_ready;        /* it served once: a later failure to start is retried, not fatal */
    int starts;            /* forks so far */
    int killed;            /* the watchdog sent it SIGKILL (not reaped yet) */
    int hup_pending;       /* a SIGHUP came while it was starting: sent once it serves */
    long long reload_mark; /* its reloads when the last SIGHUP was sent to it; -1: none */
    double started, restart_at;
} worker;

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int tide_workers_auto(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n >= 1 ? (int)n : 1;
}

static int start(worker *w, int index, int (*serve)(int, int, int, void *), void *arg,
                 const sigset_t *oldmask)
{
    int fds[2];
    if (pipe(fds) != 0) return -1;
    tide_supervise_slot_reset(index);
    fflush(NULL); /* nothing buffered is written twice */
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* the parent gone: drain and go */
        if (getppid() == 1) _exit(1);
        /* a process group of its own: a terminal's Ctrl-C (or a kill of the parent's group)
         * reaches the parent, which forwards it once; got twice, it would mean "exit now" */
        setpgid(0, 0);
        signal(SIGTTOU, SIG_IGN); /* its logs may still go to the terminal */
        /* a SIGHUP before the worker's loop watches it would end it: ignored until then (the
         * parent sends it again once the worker serves) */
        signal(SIGHUP, SIG_IGN);
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGCHLD, SIG_DFL);
        sigprocmask(SIG_SETMASK, oldmask, NULL);
        unsetenv("NOTIFY_SOCKET"); /* the parent speaks to systemd */
        unsetenv("WATCHDOG_USEC");
        unsetenv("WATCHDOG_PID");
        tide_supervise_attach(index);
        int rc = serve(index, w->starts, fds[1], arg);
        tide_log_flush();
        exit(rc); /* not _exit: atexit handlers run here (a sanitizer's leak check) */
    }
    close(fds[1]);
    w->pid = pid;
    w->ready_fd = fds[0];
    w->ready = 0;
    w->killed = 0;
    w->starts++;
    w->started = mono();
    return 0;
}

static void signal_all(worker *ws, int n, int sig)
{
    for (int i = 0; i < n; i++)
        if (ws[i].pid > 0) kill(ws[i].pid, sig);
}

/* SIGHUP to worker i, and what its reload count was, to know when it has reloaded. */
static void send_hup(worker *ws, int i)
{
    ws[i].hup_pending = 0;
    ws[i].reload_mark = tide_supervise_reloads_done(i, NULL);
    kill(ws[i].pid, SIGHUP);
}

/* Reads the ready bytes that arrived (non-blocking peek through poll-free read on a pipe whose
 * writer wrote one byte then kept it open: a short read is all there is). A worker that had a
 * SIGHUP coming while it started gets it now. */
static void poll_ready(worker *ws, int n)
{
    for (int i = 0; i < n; i++) {
        if (ws[i].pid <= 0 || ws[i].ready || ws[i].ready_fd < 0) continue;
        fd_set set;
        FD_ZERO(&set);
        FD_SET(ws[i].ready_fd, &set);
        struct timeval tv = { 0, 0 };
        if (select(ws[i].ready_fd + 1, &set, NULL, NULL, &tv) == 1) {
            char b;
            if (read(ws[i].ready_fd, &b, 1) == 1) {
                ws[i].ready = ws[i].ever_ready = 1;
                if (ws[i].hup_pending) send_hup(ws, i);
            }
            close(ws[i].ready_fd);
            ws[i].ready_fd = -1;
        }
    }
}

/* Whether every worker that got the last SIGHUP has finished its reload (or is gone). */
static int reloads_done(worker *ws, int n)
{
    for (int i = 0; i < n; i++)
        if (ws[i].pid > 0 && ws[i].reload_mark >= 0 &&
            tide_supervise_reloads_done(i, NULL) <= ws[i].reload_mark)
            return 0;
    return 1;
}

/* " [running route R]" when worker i noted one, else "". */
static const char *route_note(int i, char route[TIDE_SUPERVISE_ROUTE_MAX], char *out, size_t cap)
{
    tide_supervise_route(i, route);
    if (!route[0]) return "";
    snprintf(out, cap, " [running route %s]", route);
    return out;
}

int tide_workers_run(int n, int watchdog_ms,
                     int (*serve)(int index, int restarts, int ready_fd, void *arg),
                     void (*notify)(const char *state, void *arg), void *arg)
{
    worker *ws = calloc((size_t)n, sizeof *ws);
    if (!ws) return 1;
    if (tide_supervise_map(n, watchdog_ms) != 0) {
        tide_error("workers: cannot map the supervisor's shared region");
        free(ws);
        return 1;
    }
    long long wd = tide_supervise_watchdog_ms();
    /* systemd's watchdog (WatchdogSec=): WATCHDOG=1 at half its interval */
    unsigned long long sd_usec = tide_notify_watchdog_usec();
    long long sd_every = sd_usec ? (long long)(sd_usec / 2000) : 0;
    if (sd_usec && sd_every < 1) sd_every = 1;
    long long tick = TICK_MS;
    if (wd > 0 && wd / 4 < tick) tick = wd / 4;
    if (sd_every > 0 && sd_every / 2 < tick) tick = sd_every / 2;
    if (tick < 10) tick = 10;
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, &old);
    for (int i = 0; i < n; i++) {
        ws[i].ready_fd = -1;
        ws[i].reload_mark = -1;
        if (start(&ws[i], i, serve, arg, &old) != 0) {
            tide_error("workers: cannot start worker %d: %s", i, strerror(errno));
            signal_all(ws, n, SIGTERM);
            n = i;
            break;
        }
    }
    char wdtext[64] = "";
    if (wd > 0) snprintf(wdtext, sizeof wdtext, "; loop watchdog %lld ms", wd);
    tide_info("workers: %d started (parent pid %d%s%s)", n, (int)getpid(), wdtext,
              sd_every ? "; WATCHDOG=1 to systemd" : "");
    int stopping = 0, failed = 0, all_ready = 0, alive = n, stops = 0, exit_rc = 0;
    int reloading = 0, quick = 1, sd_warned = 0;
    double backoff = BACKOFF_MIN;
    long long last_pass = tide_supervise_now_ms(), watch_from = 0, next_ping = 0;
    long long reload_until = 0;
    for (;;) {
        int pending = 0;
        for (int i = 0; i < n; i++) pending += ws[i].pid == 0 && ws[i].restart_at > 0;
        if (alive == 0 && (stopping || pending == 0)) break;
        long long wait = reloading ? RELOAD_TICK_MS : tick;
        struct timespec to = { (time_t)(wait / 1000), (long)(wait % 1000) * 1000000L };
        siginfo_t si;
        int sig = sigtimedwait(&set, &si, &to);
        long long now = tide_supervise_now_ms();
        /* the parent itself did not run for a while (stopped, starved): the workers beat
         * first, then are judged */
        if (wd > 0 && now - last_pass > wd / 2) watch_from = now + wd / 2;
        last_pass = now;
        poll_ready(ws, n);
        if (!all_ready && !stopping) {
            int k = 0;
            for (int i = 0; i < n; i++) k += ws[i].ready;
            if (k == n) {
                all_ready = 1;
                if (n > 1) tide_info("workers: all %d serving", n);
                else tide_info("workers: the worker is serving (pid %d)", (int)ws[0].pid);
                if (notify) notify("ready", arg);
            }
        }
        if (sig == SIGHUP && !stopping) {
            tide_info("workers: SIGHUP: every worker reloads");
            if (notify) notify("reloading", arg);
            for (int i = 0; i < n; i++) {
                ws[i].reload_mark = -1;
                if (ws[i].pid > 0 && ws[i].ready) send_hup(ws, i);
                else if (ws[i].pid > 0) ws[i].hup_pending = 1;
            }
            reloading = 1;
            reload_until = now + RELOAD_WAIT_MS;
        } else if (sig == SIGTERM || sig == SIGINT) {
            if (!stopping && notify) notify("stopping", arg);
            stopping = 1;
            reloading = 0;
            stops++;
            tide_info("workers: %s: %s", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                      stops == 1 ? "every worker drains, then exits" : "exit now");
            signal_all(ws, n, sig);
        }
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            for (int i = 0; i < n; i++) {
                if (ws[i].pid != pid) continue;
                poll_ready(ws, n);
                int was_ready = ws[i].ready, by_watchdog = ws[i].killed;
                if (ws[i].ready_fd >= 0) close(ws[i].ready_fd);
                ws[i].pid = 0;
                ws[i].ready_fd = -1;
                ws[i].ready = ws[i].killed = ws[i].hup_pending = 0;
                ws[i].reload_mark = -1;
                alive--;
                double lived = mono() - ws[i].started;
                int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
                char why[64];
                if (by_watchdog) snprintf(why, sizeof why, "killed by the watchdog");
                else if (WIFSIGNALED(status))
                    snprintf(why, sizeof why, "killed by signal %d", WTERMSIG(status));
                else snprintf(why, sizeof why, "exited with status %d", WEXITSTATUS(status));
                if (stopping) {
                    /* how a worker ended reaches the parent's exit code (a sanitizer's leak
                     * report is an exit status) */
                    if (!clean) {
                        tide_warn("workers: worker %d (pid %d) %s while stopping", i, (int)pid,
                                  why);
                        if (exit_rc == 0)
                            exit_rc =
                                WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
                    }
                    break;
                }
                if (!was_ready && !ws[i].ever_ready && lived < START_GRACE) {
                    tide_error("workers: worker %d (pid %d) %s before serving: stopping", i,
                               (int)pid, why);
                    failed = 1;
                    stopping = 1;
                    signal_all(ws, n, SIGTERM);
                    break;
                }
                char route[TIDE_SUPERVISE_ROUTE_MAX], note[TIDE_SUPERVISE_ROUTE_MAX + 32];
                const char *running = route_note(i, route, note, sizeof note);
                if (by_watchdog) tide_supervise_count_restart(TIDE_RESTART_WATCHDOG, i, pid, route);
                else if (!clean) tide_supervise_count_restart(TIDE_RESTART_CRASH, i, pid, route);
                if (lived > BACKOFF_MAX) {
                    backoff = BACKOFF_MIN;
                    quick = 1;
                }
                /* a watchdog kill after a quiet spell: at once; when it keeps happening (or
                 * for any other death), the backoff */
                double delay = backoff;
                if (by_watchdog && quick) delay = 0, quick = 0;
                else backoff = backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : backoff * 2;
                ws[i].restart_at = mono() + delay;
                char when[32];
                if (delay > 0) snprintf(when, sizeof when, "in %.0f s", delay);
                else snprintf(when, sizeof when, "now");
                if (!was_ready)
                    tide_error("workers: worker %d (pid %d) %s before serving%s%s; restarting it "
                               "%s",
                               i, (int)pid, why, ws[i].ever_ready ? " again" : "", running, when);
                else
                    tide_warn("workers: worker %d (pid %d) %s after %.1f s%s; restarting it %s", i,
                              (int)pid, why, lived, running, when);
                break;
            }
        }
        /* the loop watchdog: a worker whose loop stopped beating is stuck in one call */
        if (wd > 0 && !stopping && now >= watch_from) {
            for (int i = 0; i < n; i++) {
                if (ws[i].pid <= 0 || !ws[i].ready || ws[i].killed) continue;
                long long hb = tide_supervise_heartbeat(i);
                if (hb <= 0 || now - hb <= wd) continue;
                char route[TIDE_SUPERVISE_ROUTE_MAX], note[TIDE_SUPERVISE_ROUTE_MAX + 32];
                tide_error("workers: worker %d (pid %d) loop stalled for %lld ms%s; killing it", i,
                           (int)ws[i].pid, now - hb, route_note(i, route, note, sizeof note));
                kill(ws[i].pid, SIGKILL);
                ws[i].killed = 1;
            }
        }
        if (reloading && (reloads_done(ws, n) || now >= reload_until)) {
            reloading = 0;
            for (int i = 0; i < n; i++) ws[i].reload_mark = -1;
            if (notify) notify("reloaded", arg);
        }
        /* systemd's watchdog: fed while every worker beats or is being restarted, so a hung
         * parent (or a worker it cannot get rid of) gets the whole unit restarted */
        if (sd_every > 0 && now >= next_ping) {
            int healthy = 1;
            for (int i = 0; i < n && wd > 0; i++) {
                long long hb = tide_supervise_heartbeat(i);
                if (ws[i].pid > 0 && ws[i].ready && !ws[i].killed && hb > 0 && now - hb > wd)
                    healthy = 0;
            }
            if (healthy) {
                int rc = tide_notify_watchdog();
                if (rc != 0 && !sd_warned) {
                    sd_warned = 1;
                    tide_warn("workers: cannot send WATCHDOG=1 to the service manager: %s",
                              tide_strerror(rc));
                }
                next_ping = now + sd_every;
            }
        }
        for (int i = 0; i < n && !stopping; i++) {
            if (ws[i].pid == 0 && ws[i].restart_at > 0 && mono() >= ws[i].restart_at) {
                ws[i].restart_at = 0;
                if (start(&ws[i], i, serve, arg, &old) == 0) {
                    alive++;
                    tide_info("workers: worker %d restarted (pid %d)", i, (int)ws[i].pid);
                } else {
                    ws[i].restart_at = mono() + backoff;
                }
            }
        }
        tide_log_flush();
    }
    free(ws);
    tide_supervise_unmap();
    sigprocmask(SIG_SETMASK, &old, NULL);
    tide_info("workers: all stopped");
    return failed ? 1 : exit_rc;
}
