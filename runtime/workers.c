/* workers.c - the supervising parent of worker processes (see workers.h). */
#include "workers.h"
#include "log.h"

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

#define START_GRACE 5.0      /* a worker that exits before serving, within this, failed to start */
#define BACKOFF_MIN 1.0
#define BACKOFF_MAX 30.0

typedef struct worker {
    pid_t pid;               /* 0: not running */
    int ready_fd;            /* the read end of its ready pipe, or -1 */
    int ready;               /* it has served (wrote its byte) since it last started */
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

static int start(worker *w, int index, int (*serve)(int, int, void *), void *arg,
                 const sigset_t *oldmask)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        prctl(PR_SET_PDEATHSIG, SIGTERM);        /* the parent gone: drain and go */
        if (getppid() == 1)
            _exit(1);
        signal(SIGHUP, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGCHLD, SIG_DFL);
        sigprocmask(SIG_SETMASK, oldmask, NULL);
        unsetenv("NOTIFY_SOCKET");               /* the parent speaks to systemd */
        int rc = serve(index, fds[1], arg);
        tide_log_flush();
        _exit(rc);
    }
    close(fds[1]);
    w->pid = pid;
    w->ready_fd = fds[0];
    w->ready = 0;
    w->started = mono();
    return 0;
}

static void signal_all(worker *ws, int n, int sig)
{
    for (int i = 0; i < n; i++)
        if (ws[i].pid > 0)
            kill(ws[i].pid, sig);
}

/* Reads the ready bytes that arrived (non-blocking peek through poll-free read on a pipe whose
 * writer wrote one byte then kept it open: a short read is all there is). */
static void poll_ready(worker *ws, int n)
{
    for (int i = 0; i < n; i++) {
        if (ws[i].pid <= 0 || ws[i].ready || ws[i].ready_fd < 0)
            continue;
        fd_set set;
        FD_ZERO(&set);
        FD_SET(ws[i].ready_fd, &set);
        struct timeval tv = { 0, 0 };
        if (select(ws[i].ready_fd + 1, &set, NULL, NULL, &tv) == 1) {
            char b;
            if (read(ws[i].ready_fd, &b, 1) == 1)
                ws[i].ready = 1;
            close(ws[i].ready_fd);
            ws[i].ready_fd = -1;
        }
    }
}

int tide_workers_run(int n, int (*serve)(int index, int ready_fd, void *arg),
                     void (*notify)(const char *state, void *arg), void *arg)
{
    worker *ws = calloc((size_t)n, sizeof *ws);
    if (!ws)
        return 1;
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, &old);
    for (int i = 0; i < n; i++) {
        ws[i].ready_fd = -1;
        if (start(&ws[i], i, serve, arg, &old) != 0) {
            tide_error("workers: cannot start worker %d: %s", i, strerror(errno));
            signal_all(ws, n, SIGTERM);
            n = i;
            break;
        }
    }
    tide_info("workers: %d started (parent pid %d)", n, (int)getpid());
    int stopping = 0, failed = 0, all_ready = 0, alive = n, stops = 0;
    double backoff = BACKOFF_MIN;
    for (;;) {
        int pending = 0;
        for (int i = 0; i < n; i++)
            pending += ws[i].pid == 0 && ws[i].restart_at > 0;
        if (alive == 0 && (stopping || pending == 0))
            break;
        struct timespec to = { 0, 200 * 1000 * 1000 };
        siginfo_t si;
        int sig = sigtimedwait(&set, &si, &to);
        poll_ready(ws, n);
        if (!all_ready && !stopping) {
            int k = 0;
            for (int i = 0; i < n; i++)
                k += ws[i].ready;
            if (k == n) {
                all_ready = 1;
                tide_info("workers: all %d serving", n);
                if (notify)
                    notify("ready", arg);
            }
        }
        if (sig == SIGHUP && !stopping) {
            tide_info("workers: SIGHUP: every worker reloads");
            if (notify)
                notify("reloading", arg);
            signal_all(ws, n, SIGHUP);
            if (notify)
                notify("ready", arg);
        } else if (sig == SIGTERM || sig == SIGINT) {
            if (!stopping && notify)
                notify("stopping", arg);
            stopping = 1;
            stops++;
            tide_info("workers: %s: %s", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                      stops == 1 ? "every worker drains, then exits" : "exit now");
            signal_all(ws, n, sig);
        }
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            for (int i = 0; i < n; i++) {
                if (ws[i].pid != pid)
                    continue;
                poll_ready(ws, n);
                int was_ready = ws[i].ready;
                if (ws[i].ready_fd >= 0)
                    close(ws[i].ready_fd);
                ws[i].pid = 0;
                ws[i].ready_fd = -1;
                alive--;
                double lived = mono() - ws[i].started;
                char why[64];
                if (WIFSIGNALED(status))
                    snprintf(why, sizeof why, "killed by signal %d", WTERMSIG(status));
                else
                    snprintf(why, sizeof why, "exited with status %d", WEXITSTATUS(status));
                if (stopping)
                    break;
                if (!was_ready && lived < START_GRACE) {
                    tide_error("workers: worker %d (pid %d) %s before serving: stopping",
                               i, (int)pid, why);
                    failed = 1;
                    stopping = 1;
                    signal_all(ws, n, SIGTERM);
                    break;
                }
                if (lived > BACKOFF_MAX)
                    backoff = BACKOFF_MIN;
                ws[i].restart_at = mono() + backoff;
                tide_warn("workers: worker %d (pid %d) %s after %.1f s; restarting it in %.0f s",
                          i, (int)pid, why, lived, backoff);
                backoff = backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : backoff * 2;
                break;
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
    sigprocmask(SIG_SETMASK, &old, NULL);
    tide_info("workers: all stopped");
    return failed ? 1 : 0;
}
