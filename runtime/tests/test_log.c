/* test_log.c - the log streams (log.c) against pipes and sockets nobody reads: queuing never
 * blocks and never changes the shared description's flags, a full buffer drops whole lines
 * and counts them, the reader gets one line saying how many once it reads again, lines stay
 * whole when stdout and stderr share a pipe, the exit's wait is bounded, and the JSON lines
 * (slow_query, audit) carry their fields, escaped and cut. */
#include "test.h"
#include "../log.h"

#include <ev.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF (64 * 1024)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

/* Reads what fd holds now (fd non-blocking) onto the end of *acc (grown as needed). */
static void slurp(int fd, char **acc, size_t *len, size_t *cap)
{
    for (;;) {
        if (*cap - *len < 65536) {
            *cap = *cap ? *cap * 2 : 1 << 20;
            *acc = realloc(*acc, *cap);
        }
        ssize_t n = read(fd, *acc + *len, *cap - *len - 1);
        if (n <= 0) break;
        *len += (size_t)n;
    }
    (*acc)[*len] = 0;
}

/* An access line of about 300 bytes. */
static void access_line(int i)
{
    char path[256];
    memset(path, 'p', sizeof path - 1);
    path[0] = '/';
    path[sizeof path - 1] = 0;
    char id[32];
    snprintf(id, sizeof id, "%x", i);
    tide_log_request(id, NULL, "GET", path, strlen(path), 200, 1.5, "anon", 0, NULL);
}

/* Lets the loop write (as the server's passes do) while the test reads the pipe, until the
 * buffers are empty or 5 s pass. */
static void drain(struct ev_loop *loop, int rfd, char **acc, size_t *len, size_t *cap)
{
    double until = now_s() + 5;
    tide_log_stats st;
    do {
        slurp(rfd, acc, len, cap);
        ev_run(loop, EVRUN_NOWAIT);
        tide_log_flush();
        slurp(rfd, acc, len, cap);
        tide_log_get_stats(&st);
    } while ((st.out.buffered_bytes || st.err.buffered_bytes) && now_s() < until);
}

/* Every line of s is whole: a JSON object, or a levelled line (it starts with the year). */
static int lines_whole(const char *s, size_t len, long long *lines)
{
    const char *p = s, *end = s + len;
    *lines = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) return 0; /* a cut line at the end */
        int json = p[0] == '{' && nl[-1] == '}';
        int text = nl - p > 24 && p[0] == '2' && p[4] == '-' && p[23] == 'Z';
        if (!json && !text) return 0;
        (*lines)++;
        p = nl + 1;
    }
    return 1;
}

/* The sum of "lines":N over the log_dropped lines in s. */
static long long announced(const char *s)
{
    long long sum = 0;
    for (const char *p = s; (p = strstr(p, "{\"type\":\"log_dropped\"")) != NULL; p++) {
        const char *l = strstr(p, "\"lines\":");
        if (l) sum += atoll(l + 8);
    }
    return sum;
}

TEST(a_pipe_nobody_reads_never_blocks)
{
    tide_log_detach(0);
    alarm(20); /* a blocking write would hang here: fail instead */
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    int p[2];
    CHECK(pipe(p) == 0);
    int before = fcntl(p[1], F_GETFL);
    tide_log_stats s0, s1;
    tide_log_get_stats(&s0);
    CHECK(tide__log_attach_fds(loop, p[1], p[1], BUF) == 0);
    tide_log_get_stats(&s1);
    CHECK_STR(s1.out.writer, "reopened");
    double t0 = now_s();
    for (int i = 0; i < 2000; i++) { /* ~600 KB: far past the pipe (64 KiB) and the buffer */
        access_line(i);
        if (i % 20 == 0) tide_log_flush();
    }
    tide_log_flush();
    CHECK(now_s() - t0 < 2.0);
    CHECK_EQ_INT(fcntl(p[1], F_GETFL), before); /* the shared description is untouched */
    tide_log_get_stats(&s1);
    long long dropped = s1.out.dropped_lines - s0.out.dropped_lines;
    CHECK(dropped > 0);
    CHECK(s1.out.dropped_bytes - s0.out.dropped_bytes >= dropped * 300);
    CHECK(s1.out.buffered_bytes > 0 && s1.out.buffered_bytes <= BUF);
    CHECK(s1.out.blocked > s0.out.blocked);

    /* the reader comes back: the rest arrives, with one line saying how many were dropped */
    nonblocking(p[0]);
    char *acc = NULL;
    size_t len = 0, cap = 0;
    drain(loop, p[0], &acc, &len, &cap);
    tide_log_get_stats(&s1);
    CHECK_EQ_INT(s1.out.buffered_bytes, 0);
    long long lines;
    CHECK(lines_whole(acc, len, &lines));
    CHECK_EQ_INT(announced(acc), s1.out.dropped_lines - s0.out.dropped_lines);
    CHECK(strstr(acc, "\"stream\":\"stdout\"") != NULL);
    CHECK_EQ_INT(lines, 2000 - dropped + 1); /* every line accounted for */
    CHECK_EQ_INT(s1.out.written_lines - s0.out.written_lines, 2000 - dropped + 1);

    tide_log_detach(1);
    tide_log_get_stats(&s1);
    CHECK_STR(s1.out.writer, "blocking");
    free(acc);
    close(p[0]);
    close(p[1]);
    ev_loop_destroy(loop);
    alarm(0);
}

TEST(stdout_and_stderr_on_one_pipe_never_interleave_mid_line)
{
    tide_log_detach(0);
    alarm(20);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    int p[2];
    CHECK(pipe(p) == 0);
    nonblocking(p[0]);
    CHECK(tide__log_attach_fds(loop, p[1], p[1], BUF) == 0);
    char *acc = NULL;
    size_t len = 0, cap = 0;
    for (int i = 0; i < 3000; i++) {
        access_line(i);
        tide_warn("a levelled line %d with some text to make it longer than a few bytes", i);
        if (i % 50 == 0) tide_log_flush();
        if (i % 1000 == 999) { /* a slow, bursty reader; the loop writes on */
            slurp(p[0], &acc, &len, &cap);
            ev_run(loop, EVRUN_NOWAIT);
        }
    }
    drain(loop, p[0], &acc, &len, &cap);
    long long lines;
    CHECK(lines_whole(acc, len, &lines));
    CHECK(lines > 0);
    tide_log_stats st;
    tide_log_get_stats(&st);
    CHECK(st.err.dropped_lines > 0); /* both streams dropped... */
    CHECK(strstr(acc, "dropped: stderr was not read fast enough") != NULL); /* ...and said */
    tide_log_detach(1);
    free(acc);
    close(p[0]);
    close(p[1]);
    ev_loop_destroy(loop);
    alarm(0);
}

TEST(a_socket_is_written_with_send_dontwait)
{
    tide_log_detach(0);
    alarm(20);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    int sv[2], e[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK(pipe(e) == 0);
    int before = fcntl(sv[0], F_GETFL);
    tide_log_stats s0, s1;
    tide_log_get_stats(&s0);
    CHECK(tide__log_attach_fds(loop, sv[0], e[1], BUF) == 0);
    tide_log_get_stats(&s1);
    CHECK_STR(s1.out.writer, "socket");
    for (int i = 0; i < 3000; i++) {
        access_line(i);
        if (i % 20 == 0) tide_log_flush();
    }
    CHECK_EQ_INT(fcntl(sv[0], F_GETFL), before);
    tide_log_get_stats(&s1);
    CHECK(s1.out.dropped_lines > s0.out.dropped_lines);
    nonblocking(sv[1]);
    char *acc = NULL;
    size_t len = 0, cap = 0;
    drain(loop, sv[1], &acc, &len, &cap);
    long long lines;
    CHECK(lines_whole(acc, len, &lines));
    CHECK_EQ_INT(announced(acc), s1.out.dropped_lines - s0.out.dropped_lines);
    tide_log_detach(1);
    free(acc);
    close(sv[0]);
    close(sv[1]);
    close(e[0]);
    close(e[1]);
    ev_loop_destroy(loop);
    alarm(0);
}

TEST(the_exit_wait_is_bounded_and_counts_what_it_leaves)
{
    tide_log_detach(0);
    alarm(20);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK(tide__log_attach_fds(loop, p[1], p[1], BUF) == 0);
    for (int i = 0; i < 350; i++) access_line(i); /* the pipe and part of the buffer */
    tide_log_flush();
    tide_log_stats s0, s1;
    tide_log_get_stats(&s0);
    CHECK(s0.out.buffered_bytes > 0);
    double t0 = now_s();
    tide_log_detach(0.2);
    double took = now_s() - t0;
    CHECK(took >= 0.15 && took < 1.5);
    tide_log_get_stats(&s1);
    CHECK_EQ_INT(s1.out.buffered_bytes, 0);
    CHECK_EQ_INT(s1.out.dropped_bytes - s0.out.dropped_bytes, s0.out.buffered_bytes);
    close(p[0]);
    close(p[1]);
    ev_loop_destroy(loop);
    alarm(0);
}

TEST(a_reader_that_is_gone_drops_without_stopping)
{
    tide_log_detach(0);
    signal(SIGPIPE, SIG_IGN);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK(tide__log_attach_fds(loop, p[1], p[1], BUF) == 0);
    close(p[0]); /* EPIPE from now on */
    tide_log_stats s0, s1;
    tide_log_get_stats(&s0);
    for (int i = 0; i < 10; i++) access_line(i);
    tide_log_flush();
    tide_log_get_stats(&s1);
    CHECK_EQ_INT(s1.out.dropped_lines - s0.out.dropped_lines, 10);
    CHECK_EQ_INT(s1.out.buffered_bytes, 0);
    tide_log_detach(1);
    close(p[1]);
    ev_loop_destroy(loop);
}

/* Attaches to a fresh pipe, runs fn, and returns what it wrote to stdout (malloc'd). */
static char *capture(void (*fn)(void))
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    int p[2];
    if (pipe(p) != 0) return NULL;
    nonblocking(p[0]);
    if (tide__log_attach_fds(loop, p[1], p[1], BUF) != 0) return NULL;
    fn();
    char *acc = NULL;
    size_t len = 0, cap = 0;
    drain(loop, p[0], &acc, &len, &cap);
    tide_log_detach(1);
    close(p[0]);
    close(p[1]);
    ev_loop_destroy(loop);
    return acc;
}

static void emit_slow(void)
{
    static char sql[3000];
    static const char head[] = "select \"a\"\n from t where b = $1";
    memset(sql, 'x', sizeof sql - 1);
    memcpy(sql, head, sizeof head - 1);
    sql[1023] = (char)0xc3; /* a two-byte character across the 1 KiB cut */
    sql[1024] = (char)0xa9;
    const tide_log_call c = { .id = "2a",
                              .role = "authenticated",
                              .sub = "u-1",
                              .method = "GET",
                              .route = "/v1/trips/:id",
                              .kind = "select",
                              .table = "trips",
                              .upstream = "direct" };
    tide_log_slow_query(&c, 812.5, 3, 2, NULL, sql);
    const tide_log_call d = { .id = "2b", .upstream = "session" };
    tide_log_slow_query(&d, 5000, -1, 1, "57014", "select pg_sleep($1)");
}

TEST(slow_query_lines)
{
    tide_log_detach(0);
    char *out = capture(emit_slow);
    CHECK(out != NULL);
    char *second = strchr(out, '\n');
    CHECK(second != NULL);
    *second++ = 0;
    static const char want[] =
        "{\"type\":\"slow_query\",\"id\":\"2a\",\"upstream\":\"direct\","
        "\"ms\":812.500,\"rows\":3,\"statement\":\"select \\\"a\\\"\\u000a from t where b = $1xxx";
    CHECK(strncmp(out, want, sizeof want - 1) == 0);
    CHECK(strstr(out, "xxx\",\"route\":\"/v1/trips/:id\",\"method\":\"GET\",\"kind\":\"select\","
                      "\"table\":\"trips\",\"attempts\":2}") != NULL);
    CHECK(strchr(out, 0xc3) == NULL); /* cut before the character, not in it */
    const char *st = strstr(out, "\"statement\":\"");
    const char *en = strstr(out, "\",\"route\"");
    CHECK(st && en && en - (st + 13) == 1023 + 7); /* 1023 bytes, plus 7 for the escapes */
    CHECK_STR(second, "{\"type\":\"slow_query\",\"id\":\"2b\",\"upstream\":\"session\",\"ms\":"
                      "5000.000,\"rows\":null,\"statement\":\"select pg_sleep($1)\",\"route\":null,"
                      "\"method\":null,\"kind\":null,\"table\":null,\"attempts\":1,"
                      "\"error\":\"57014\"}\n");
    free(out);
}

static void emit_audit(void)
{
    const tide_log_call c = { .id = "7",
                              .role = "authenticated",
                              .sub = "a\"b",
                              .method = "POST",
                              .route = "/v1/keys",
                              .kind = "insert",
                              .table = "api_keys",
                              .upstream = "direct" };
    tide_log_audit_call(&c, "as_service");
    const char path[] = "/v1/admin/x?token=secret";
    tide_log_audit_request("8", "", "DELETE", NULL, path, 11, 204);
}

TEST(audit_lines)
{
    tide_log_detach(0);
    char *out = capture(emit_audit);
    CHECK(out != NULL);
    CHECK_STR(out, "{\"type\":\"audit\",\"event\":\"db_call\",\"id\":\"7\","
                   "\"role\":\"authenticated\",\"sub\":\"a\\\"b\",\"route\":\"/v1/keys\","
                   "\"method\":\"POST\",\"kind\":\"insert\",\"table\":\"api_keys\","
                   "\"upstream\":\"direct\",\"via\":\"as_service\"}\n"
                   "{\"type\":\"audit\",\"event\":\"request\",\"id\":\"8\","
                   "\"role\":\"service_role\",\"sub\":null,\"method\":\"DELETE\",\"route\":null,"
                   "\"path\":\"/v1/admin/x\",\"status\":204}\n");
    free(out);
}

static void emit_access(void)
{
    tide_log_request("5a-1", "client-7", "GET", "/v1/x?q=1", 5, 200, 1.5, "anon", 0, NULL);
    tide_log_request("5a-2", "", "GET", "/v1/x", 5, 404, 0.25, "anon", 1, "MISS");
}

/* tide's id, the client's own beside it (the client's never stands in for tide's) */
TEST(access_lines)
{
    tide_log_detach(0);
    char *out = capture(emit_access);
    CHECK(out != NULL);
    CHECK_STR(out, "{\"type\":\"access\",\"id\":\"5a-1\",\"method\":\"GET\",\"path\":\"/v1/x\","
                   "\"status\":200,\"ms\":1.500,\"role\":\"anon\","
                   "\"client_request_id\":\"client-7\"}\n"
                   "{\"type\":\"access\",\"id\":\"5a-2\",\"method\":\"GET\",\"path\":\"/v1/x\","
                   "\"status\":404,\"ms\":0.250,\"role\":\"anon\",\"aborted\":true,"
                   "\"cache\":\"MISS\"}\n");
    free(out);
}

TEST(attach_refuses_a_tiny_buffer_and_a_second_attach)
{
    tide_log_detach(0);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK_EQ_INT(tide__log_attach_fds(loop, p[1], p[1], 1024), TIDE_EINVAL);
    CHECK_EQ_INT(tide__log_attach_fds(loop, p[1], p[1], BUF), 0);
    CHECK_EQ_INT(tide__log_attach_fds(loop, p[1], p[1], BUF), TIDE_EINVAL);
    tide_log_detach(0);
    close(p[0]);
    close(p[1]);
    ev_loop_destroy(loop);
}

/* The end of a pass batches stdout's access lines: under 16 KiB they wait (at most 20 ms, a
 * timer), at 16 KiB they go at once; stderr goes every pass. */
TEST(a_pass_end_batches_access_lines_and_a_timer_bounds_their_wait)
{
    tide_log_detach(0);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    int o[2], e[2];
    CHECK(pipe(o) == 0 && pipe(e) == 0);
    nonblocking(o[0]);
    nonblocking(e[0]);
    CHECK_EQ_INT(tide__log_attach_fds(loop, o[1], e[1], BUF), 0);
    char *acc = NULL, *eacc = NULL;
    size_t len = 0, cap = 0, elen = 0, ecap = 0;

    access_line(1);
    tide_warn("a warning goes at the end of its pass");
    tide_log_flush_pass();
    slurp(o[0], &acc, &len, &cap);
    slurp(e[0], &eacc, &elen, &ecap);
    CHECK_EQ_INT((int)len, 0); /* one short line waits */
    CHECK(strstr(eacc, "a warning goes") != NULL);
    double t0 = now_s();
    while (len == 0 && now_s() - t0 < 2) {
        ev_run(loop, EVRUN_ONCE); /* blocks until the timer */
        slurp(o[0], &acc, &len, &cap);
    }
    CHECK(len > 0 && strstr(acc, "\"type\":\"access\"") != NULL);
    CHECK(now_s() - t0 < 1.0); /* the timer, not the 2 s bound */

    len = 0;
    int lines = 0;
    while (len == 0 && lines < 200) { /* ~300-byte lines: 16 KiB after ~55 */
        access_line(lines++);
        tide_log_flush_pass();
        slurp(o[0], &acc, &len, &cap);
    }
    CHECK(lines > 40 && lines < 70);
    tide_log_stats st;
    tide_log_get_stats(&st);
    CHECK_EQ_INT((int)st.out.buffered_bytes, 0);
    tide_log_detach(0);
    free(acc);
    free(eacc);
    close(o[0]);
    close(o[1]);
    close(e[0]);
    close(e[1]);
    ev_loop_destroy(loop);
}

TEST_LIST_BEGIN
TEST_ENTRY(a_pipe_nobody_reads_never_blocks)
TEST_ENTRY(stdout_and_stderr_on_one_pipe_never_interleave_mid_line)
TEST_ENTRY(a_socket_is_written_with_send_dontwait)
TEST_ENTRY(the_exit_wait_is_bounded_and_counts_what_it_leaves)
TEST_ENTRY(a_reader_that_is_gone_drops_without_stopping)
TEST_ENTRY(slow_query_lines)
TEST_ENTRY(audit_lines)
TEST_ENTRY(access_lines)
TEST_ENTRY(attach_refuses_a_tiny_buffer_and_a_second_attach)
TEST_ENTRY(a_pass_end_batches_access_lines_and_a_timer_bounds_their_wait)
TEST_LIST_END
