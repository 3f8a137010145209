/* test_supervise.c - the supervising parent (runtime/workers.c) and the region it shares with
 * its workers (runtime/supervise.c), with real forked workers: a noted route reads back whole
 * (cut at 127 bytes, cleared by NULL); the heartbeat timer beats on a loop; a worker whose loop
 * stops beating is killed and restarted at once, the restart counted as "watchdog" with the
 * route it noted, while systemd's watchdog (WATCHDOG_USEC) is fed; a worker that crashes is
 * restarted and counted as "crash"; a worker's exit status while stopping is the parent's. */
#include "test.h"
#include "../supervise.h"
#include "../workers.h"

#include <signal.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

TEST(a_noted_route_reads_back_whole_and_clears)
{
    CHECK_EQ_INT(tide_supervise_map(2, 1000), 0);
    tide_supervise_attach(1); /* as worker 1 would, after its fork */
    tide_supervise_note_route("GET /v1/stall");
    char route[TIDE_SUPERVISE_ROUTE_MAX], other[TIDE_SUPERVISE_ROUTE_MAX];
    tide_supervise_route(1, route);
    tide_supervise_route(0, other);
    char long_route[300];
    memset(long_route, 'r', sizeof long_route - 1);
    long_route[sizeof long_route - 1] = '\0';
    tide_supervise_note_route(long_route);
    char cut[TIDE_SUPERVISE_ROUTE_MAX];
    tide_supervise_route(1, cut);
    tide_supervise_note_route(NULL);
    char cleared[TIDE_SUPERVISE_ROUTE_MAX];
    tide_supervise_route(1, cleared);
    tide_supervise_count_restart(TIDE_RESTART_CRASH, 1, 4242, "GET /v1/x");
    tide_supervise_stats st;
    tide_supervise_get_stats(&st);
    tide_supervise_unmap();
    tide_supervise_note_route("nowhere"); /* not supervised: nothing, no crash */
    tide_supervise_stats none;
    tide_supervise_get_stats(&none);
    CHECK_STR(route, "GET /v1/stall");
    CHECK_STR(other, "");
    CHECK_EQ_INT(strlen(cut), TIDE_SUPERVISE_ROUTE_MAX - 1);
    CHECK_STR(cleared, "");
    CHECK_EQ_INT(st.supervised, 1);
    CHECK_EQ_INT(st.watchdog_ms, 1000);
    CHECK_EQ_INT(st.parent, getpid());
    CHECK_EQ_INT(st.restarts[TIDE_RESTART_CRASH], 1);
    CHECK_EQ_INT(st.restarts[TIDE_RESTART_WATCHDOG], 0);
    CHECK_EQ_INT(st.has_last, 1);
    CHECK_EQ_INT(st.last_reason, TIDE_RESTART_CRASH);
    CHECK_EQ_INT(st.last_worker, 1);
    CHECK_EQ_INT(st.last_pid, 4242);
    CHECK_STR(st.last_route, "GET /v1/x");
    CHECK_EQ_INT(none.supervised, 0);
    CHECK_EQ_INT(none.restarts[TIDE_RESTART_CRASH], 0);
}

static void stop_loop(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)t;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

/* Runs loop for about `seconds` (the heartbeat timer keeps beating meanwhile). */
static void run_for(struct ev_loop *loop, double seconds)
{
    ev_timer t;
    ev_timer_init(&t, stop_loop, seconds, 0.);
    ev_timer_start(loop, &t);
    ev_run(loop, 0);
    ev_timer_stop(loop, &t);
}

TEST(the_heartbeat_beats_on_the_loop)
{
    CHECK_EQ_INT(tide_supervise_map(1, 200), 0); /* a beat every 50 ms */
    tide_supervise_attach(0);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    long long before = tide_supervise_heartbeat(0);
    tide_supervise_heartbeat_start(loop);
    long long first = tide_supervise_heartbeat(0);
    run_for(loop, 0.3);
    long long later = tide_supervise_heartbeat(0), now = tide_supervise_now_ms();
    tide_supervise_heartbeat_stop(loop);
    ev_loop_destroy(loop);
    tide_supervise_unmap();
    CHECK_EQ_INT(before, 0);
    CHECK(first > 0);
    CHECK(later > first);
    CHECK(now - later < 150);
}

/* ---- forked workers -------------------------------------------------------------------- */

static void on_term(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

/* Asks the parent to stop, then serves (beats) until its SIGTERM comes back, or 5 s. */
static void stop_parent(struct ev_loop *loop)
{
    ev_signal term;
    ev_signal_init(&term, on_term, SIGTERM);
    ev_signal_start(loop, &term);
    kill(getppid(), SIGTERM);
    run_for(loop, 5.0);
    ev_signal_stop(loop, &term);
}

static void ready(int fd)
{
    ssize_t w = write(fd, "r", 1);
    (void)w;
    close(fd);
}

/* Worker of the watchdog test. First start: beats for 0.2 s, notes a route, then its loop
 * stalls (a 30 s sleep the watchdog cuts short). Second start: checks what the parent counted,
 * asks the parent to stop and exits with its verdict (0: as expected). */
static int stalling_worker(int index, int restarts, int ready_fd, void *arg)
{
    (void)index;
    (void)arg;
    struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
    tide_supervise_heartbeat_start(loop);
    ready(ready_fd);
    if (restarts == 0) {
        run_for(loop, 0.2);
        tide_supervise_note_route("GET /v1/stall");
        sleep(30);
        return 4; /* the watchdog did not come */
    }
    tide_supervise_stats st;
    tide_supervise_get_stats(&st);
    int ok = restarts == 1 && st.restarts[TIDE_RESTART_WATCHDOG] == 1 &&
             st.restarts[TIDE_RESTART_CRASH] == 0 && st.has_last &&
             st.last_reason == TIDE_RESTART_WATCHDOG && strcmp(st.last_route, "GET /v1/stall") == 0;
    char route[TIDE_SUPERVISE_ROUTE_MAX];
    tide_supervise_route(0, route); /* the new start's slot is clean */
    ok = ok && route[0] == '\0';
    stop_parent(loop);
    return ok ? 0 : 3;
}

/* A datagram socket standing in for systemd's notification socket; NOTIFY_SOCKET names it. */
static int fake_systemd(char *path, size_t cap)
{
    snprintf(path, cap, "/tmp/tide-supervise-%d.sock", (int)getpid());
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) return -1;
    setenv("NOTIFY_SOCKET", path, 1);
    return fd;
}

TEST(a_stalled_loop_is_killed_and_restarted_at_once_while_systemd_is_fed)
{
    char path[108];
    int sd = fake_systemd(path, sizeof path);
    CHECK(sd >= 0);
    setenv("WATCHDOG_USEC", "200000", 1); /* WATCHDOG=1 every 100 ms */
    long long t0 = tide_supervise_now_ms();
    int rc = tide_workers_run(1, 400, stalling_worker, NULL, NULL);
    long long took = tide_supervise_now_ms() - t0;
    unsetenv("WATCHDOG_USEC");
    unsetenv("NOTIFY_SOCKET");
    int pings = 0, others = 0;
    char msg[256];
    ssize_t n;
    while ((n = recv(sd, msg, sizeof msg - 1, MSG_DONTWAIT)) > 0) {
        msg[n] = '\0';
        if (strcmp(msg, "WATCHDOG=1") == 0) pings++;
        else others++;
    }
    close(sd);
    unlink(path);
    CHECK_EQ_INT(rc, 0);
    /* 0.2 s of beats, 0.4 s of silence, at most a tick more, a restart: well under 5 s */
    CHECK(took < 5000);
    CHECK(pings >= 3);
    CHECK_EQ_INT(others, 0); /* a worker never speaks to systemd */
}

/* Worker of the crash test. First start: dies by SIGKILL once serving. Second start (after
 * the 1 s backoff): checks the crash was counted, asks the parent to stop and exits 7 (or 3),
 * which must become the parent's exit code. */
static int crashing_worker(int index, int restarts, int ready_fd, void *arg)
{
    (void)index;
    (void)arg;
    struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
    ready(ready_fd);
    if (restarts == 0) {
        run_for(loop, 0.1);
        raise(SIGKILL);
    }
    tide_supervise_stats st;
    tide_supervise_get_stats(&st);
    int ok = st.restarts[TIDE_RESTART_CRASH] == 1 && st.restarts[TIDE_RESTART_WATCHDOG] == 0 &&
             st.last_reason == TIDE_RESTART_CRASH && st.last_route[0] == '\0' &&
             st.watchdog_ms == 0;
    stop_parent(loop);
    return ok ? 7 : 3;
}

TEST(a_crash_is_counted_and_an_exit_status_while_stopping_is_the_parents)
{
    int rc = tide_workers_run(1, 0, crashing_worker, NULL, NULL);
    CHECK_EQ_INT(rc, 7);
}

TEST_LIST_BEGIN
TEST_ENTRY(a_noted_route_reads_back_whole_and_clears)
TEST_ENTRY(the_heartbeat_beats_on_the_loop)
TEST_ENTRY(a_stalled_loop_is_killed_and_restarted_at_once_while_systemd_is_fed)
TEST_ENTRY(a_crash_is_counted_and_an_exit_status_while_stopping_is_the_parents)
TEST_LIST_END
