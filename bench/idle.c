/* bench/idle.c - workload 6 of bench/run.sh: tide's memory per idle keep-alive connection.
 *
 *   idle PORT N PID TIMEOUT_S
 *
 * Reads VmRSS of PID (tide), opens N connections to 127.0.0.1:PORT (at most 256 in progress at
 * a time, epoll), sends each one "GET /v1/destinations/popular?limit=1" and reads the whole
 * response, then keeps the socket open and idle. When all N are idle it waits a second, reads
 * VmRSS again, checks how many idle sockets tide has closed meanwhile, and times one more request
 * on a new connection. Prints one line of key=value pairs, closes everything and exits 0 (1 on a
 * setup error, 3 when TIMEOUT_S runs out). Only ever connects to 127.0.0.1.
 * Build: cc -O2 -o idle bench/idle.c */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define INFLIGHT 256
#define BUF      8192

static const char REQ[] = "GET /v1/destinations/popular?limit=1 HTTP/1.1\r\n"
                          "Host: 127.0.0.1\r\nUser-Agent: tide-bench-idle\r\n\r\n";

enum { S_CONNECTING, S_SENDING, S_READING, S_IDLE, S_FAILED };

typedef struct {
    int fd, state;
    size_t sent, got;
    char *buf;
} conn;

static void on_alarm(int sig)
{
    (void)sig;
    static const char m[] = "idle: timed out\n";
    ssize_t w = write(2, m, sizeof m - 1);
    (void)w;
    _exit(3);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static long rss_kb(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = atol(line + 6);
            break;
        }
    fclose(f);
    return kb;
}

/* A complete response in b[0..n)? Returns its status (>0), 0 if more is needed, -1 if bad. */
static int response_done(const char *b, size_t n)
{
    const char *end = memmem(b, n, "\r\n\r\n", 4);
    if (!end) return 0;
    int status = 0;
    if (sscanf(b, "HTTP/1.%*d %d", &status) != 1) return -1;
    size_t head = (size_t)(end - b) + 4, clen = 0;
    for (const char *p = b; p < end; p++) {
        if ((p == b || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0) {
            clen = strtoul(p + 15, NULL, 10);
            break;
        }
    }
    return n >= head + clen ? status : 0;
}

static struct sockaddr_in addr;

static int open_socket(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One request on a fresh blocking connection; returns its status (or -1) and the time taken. */
static int prompt_request(double *ms)
{
    double t0 = now_ms();
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct timeval tv = { 5, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int status = -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
        send(fd, REQ, sizeof REQ - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof REQ - 1)) {
        char b[BUF];
        size_t n = 0;
        for (;;) {
            ssize_t r = recv(fd, b + n, sizeof b - n, 0);
            if (r <= 0) break;
            n += (size_t)r;
            int s = response_done(b, n);
            if (s != 0) {
                status = s;
                break;
            }
            if (n == sizeof b) break;
        }
    }
    *ms = now_ms() - t0;
    close(fd);
    return status;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: idle PORT N PID TIMEOUT_S\n");
        return 1;
    }
    int port = atoi(argv[1]), n = atoi(argv[2]), pid = atoi(argv[3]), timeout = atoi(argv[4]);
    if (port <= 0 || n <= 0 || pid <= 0 || timeout <= 0) {
        fprintf(stderr, "idle: bad arguments\n");
        return 1;
    }
    signal(SIGALRM, on_alarm);
    signal(SIGPIPE, SIG_IGN);
    alarm((unsigned)timeout);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    conn *cs = calloc((size_t)n, sizeof *cs);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (!cs || ep < 0) {
        perror("idle");
        return 1;
    }

    long before = rss_kb(pid);
    double t0 = now_ms();
    int next = 0, active = 0, idle = 0, failed = 0, non2xx = 0;
    struct epoll_event evs[256];
    while (idle + failed < n) {
        while (active < INFLIGHT && next < n) {
            conn *c = &cs[next];
            c->fd = open_socket();
            if (c->fd < 0) {
                c->state = S_FAILED;
                failed++;
                if (errno == EMFILE || errno == ENFILE) {
                    fprintf(stderr, "idle: out of file descriptors after %d connections\n", next);
                    /* nothing more can be opened: count the rest as failed */
                    for (int i = next + 1; i < n; i++) {
                        cs[i].fd = -1;
                        cs[i].state = S_FAILED;
                    }
                    failed += n - next - 1;
                    next = n;
                    break;
                }
                next++;
                continue;
            }
            c->state = S_CONNECTING;
            c->buf = malloc(BUF);
            struct epoll_event ev = { .events = EPOLLOUT, .data.u32 = (uint32_t)next };
            epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
            active++;
            next++;
        }
        if (active == 0) break;
        int k = epoll_wait(ep, evs, 256, 1000);
        for (int i = 0; i < k; i++) {
            conn *c = &cs[evs[i].data.u32];
            int done = 0, bad = 0;
            if (c->state == S_CONNECTING) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err) bad = 1;
                else c->state = S_SENDING;
            }
            if (!bad && c->state == S_SENDING) {
                ssize_t w = send(c->fd, REQ + c->sent, sizeof REQ - 1 - c->sent, MSG_NOSIGNAL);
                if (w > 0) c->sent += (size_t)w;
                else if (w < 0 && errno != EAGAIN) bad = 1;
                if (c->sent == sizeof REQ - 1) {
                    c->state = S_READING;
                    struct epoll_event ev = { .events = EPOLLIN, .data.u32 = evs[i].data.u32 };
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
            } else if (!bad && c->state == S_READING) {
                ssize_t r = recv(c->fd, c->buf + c->got, BUF - c->got, 0);
                if (r > 0) {
                    c->got += (size_t)r;
                    int s = response_done(c->buf, c->got);
                    if (s > 0) {
                        if (s < 200 || s > 299) non2xx++;
                        done = 1;
                    } else if (s < 0 || c->got == BUF) bad = 1;
                } else if (r == 0 || errno != EAGAIN) bad = 1;
            }
            if (done || bad) {
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                free(c->buf);
                c->buf = NULL;
                active--;
                if (done) {
                    c->state = S_IDLE;
                    idle++;
                } else {
                    c->state = S_FAILED;
                    failed++;
                    close(c->fd);
                    c->fd = -1;
                }
            }
        }
    }
    double open_ms = now_ms() - t0;
    sleep(1);
    long after = rss_kb(pid);

    /* Idle sockets tide has closed (or written to) since: readable or hung up. */
    int dropped = 0;
    struct pollfd *pf = calloc((size_t)n, sizeof *pf);
    int np = 0;
    for (int i = 0; i < n; i++)
        if (cs[i].state == S_IDLE) {
            pf[np].fd = cs[i].fd;
            pf[np].events = POLLIN | POLLRDHUP;
            np++;
        }
    if (poll(pf, (nfds_t)np, 0) > 0)
        for (int i = 0; i < np; i++)
            if (pf[i].revents) dropped++;

    double prompt_ms = 0;
    int prompt_status = prompt_request(&prompt_ms);

    printf("rss_before_kb=%ld rss_after_kb=%ld connections=%d idle=%d failed=%d non2xx=%d "
           "dropped=%d open_ms=%.0f prompt_status=%d prompt_ms=%.3f\n",
           before, after, n, idle, failed, non2xx, dropped, open_ms, prompt_status, prompt_ms);
    fflush(stdout);
    for (int i = 0; i < n; i++)
        if (cs[i].fd > 0 && cs[i].state == S_IDLE) close(cs[i].fd);
    free(pf);
    free(cs);
    close(ep);
    return 0;
}
