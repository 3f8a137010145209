/* log.c - the two log streams (log.h): the lines' formats, the bounded buffers, and writing
 * them out without ever blocking the loop.
 *
 * Writing without blocking. Setting O_NONBLOCK on fd 1 or 2 would change the open file
 * description the process shares with others (the shell's terminal, a supervisor's pipe),
 * whose own writes would then fail with EAGAIN. So at attach each stream picks a writer that
 * leaves that description as it is:
 *   file         a regular file or block device: nothing waits for a reader; write().
 *   socket       send() with MSG_DONTWAIT | MSG_NOSIGNAL: non-blocking per call, no flag
 *                changed (journald's stream socket, a socket a supervisor passes).
 *   nonblocking  the description is non-blocking already (someone else set it): write().
 *   reopened     a pipe, FIFO or terminal: /proc/self/fd/N opened again, O_NONBLOCK, is a
 *                private description of the same pipe or terminal; write() to it.
 *   polled       the fallback when that open fails (no /proc, another user's pipe): poll()
 *                for POLLOUT without waiting, then one write of at most PIPE_BUF bytes. On a
 *                pipe that cannot block (POLLOUT means a free page, which such a write fits)
 *                unless another process fills the pipe between the two calls; a terminal may
 *                still hold such a write briefly.
 * Except to files, writes are chunks of whole lines of at most PIPE_BUF bytes: atomic on a
 * pipe, so a failed write never leaves half a line, and stdout and stderr sharing one pipe
 * (2>&1) never interleave mid-line. (A socket or terminal may take part of a chunk; the rest
 * follows before anything else from that stream.)
 *
 * Buffers. Pending bytes are buf[off, len); the space before off is reclaimed (one memmove)
 * when a line does not fit at the end. When the fd would block, an ev_io waits for it to be
 * writable and the end-of-pass flush skips that stream until then. A line that finds no room
 * (after one attempt to write out) is dropped whole and counted; when room returns, one line
 * says how many were dropped since the last such line: {"type":"log_dropped","stream":
 * "stdout","lines":N,"bytes":B} on stdout, a warning on stderr. A write that fails otherwise
 * (EPIPE: the reader is gone; EBADF) drops what is buffered, counted but not announced.
 *
 * Before tide_log_attach and after tide_log_detach every line is written at once with
 * blocking writes, as a CLI tool does. All of this runs on the loop's thread only. */
#include "log.h"
#include "util.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#if PIPE_BUF < TIDE_LOG_LINE_MAX
#error "a log line must fit one atomic pipe write"
#endif

static int min_level = TIDE_LOG_INFO;
static const char *const level_names[] = { "debug", "info", "warn", "error" };

void tide_log_set_level(int level) { min_level = level; }

int tide_log_parse_level(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0) return i;
    return -1;
}

/* ---- streams --------------------------------------------------------------------------- */

enum { W_BLOCKING, W_FILE, W_SOCKET, W_NONBLOCKING, W_REOPENED, W_POLLED };
static const char *const writer_names[] = { "blocking",    "file",     "socket",
                                            "nonblocking", "reopened", "polled" };

typedef struct stream {
    const char *name;
    int fd;               /* where the lines go (1, 2) */
    int wfd;              /* what is written: fd, or the private description */
    int writer;           /* W_* */
    int json;             /* the dropped-lines notice is a JSON line */
    char *buf;            /* NULL while not attached */
    size_t cap, off, len; /* pending bytes: buf[off, len) */
    ev_io io;             /* armed while wfd would block */
    int lazy;             /* stdout: the end of a pass writes only LAZY_BYTES or more */
    ev_timer age;         /* lazy: writes what waited LAZY_SECONDS, however little */
    long long written_lines, dropped_lines, dropped_bytes, blocked;
    long long unreported_lines, unreported_bytes; /* dropped since the last notice */
} stream;

static stream out_s = {
    .name = "stdout", .fd = STDOUT_FILENO, .wfd = STDOUT_FILENO, .json = 1, .lazy = 1
};
static stream err_s = { .name = "stderr", .fd = STDERR_FILENO, .wfd = STDERR_FILENO };
static struct ev_loop *log_loop; /* NULL: not attached, blocking writes */

static long long count_lines(const char *p, size_t n)
{
    long long lines = 0;
    const char *end = p + n;
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        lines++;
        p++;
    }
    return lines;
}

/* "<UTC time> <level> " into out; returns its length. */
static char tag[24]; /* "[worker 1] " under workers, else "" */

void tide_log_set_tag(const char *t)
{
    snprintf(tag, sizeof tag, "%s%s", t && *t ? t : "", t && *t ? " " : "");
}

static int prefix(char *out, size_t cap, int level)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = (int)strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    n += snprintf(out + n, cap - (size_t)n, ".%03ldZ %s %s", ts.tv_nsec / 1000000,
                  level_names[level & 3], tag);
    return n;
}

/* One write of p[0, n) through the stream's writer: as write(2). */
static ssize_t put(stream *s, const char *p, size_t n)
{
    if (s->writer == W_SOCKET) return send(s->wfd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (s->writer == W_POLLED) {
        struct pollfd pfd = { .fd = s->wfd, .events = POLLOUT };
        int r = poll(&pfd, 1, 0);
        if (r < 0) return -1;
        if (r == 0) {
            errno = EAGAIN;
            return -1;
        }
    }
    return write(s->wfd, p, n);
}

static void drop(stream *s, size_t bytes, int announce)
{
    s->dropped_lines++;
    s->dropped_bytes += (long long)bytes;
    if (announce) {
        s->unreported_lines++;
        s->unreported_bytes += (long long)bytes;
    }
}

/* Drops everything buffered (the fd failed, or the exit's wait ran out). */
static void discard(stream *s)
{
    size_t n = s->len - s->off;
    s->dropped_lines += count_lines(s->buf + s->off, n);
    s->dropped_bytes += (long long)n;
    s->off = s->len = 0;
}

/* 1 when n more bytes fit at the end of the buffer, moving the pending ones to its start if
 * that makes them fit. */
static int room(stream *s, size_t n)
{
    if (s->len + n <= s->cap) return 1;
    size_t pending = s->len - s->off;
    if (pending + n > s->cap) return 0;
    memmove(s->buf, s->buf + s->off, pending);
    s->off = 0;
    s->len = pending;
    return 1;
}

/* Queues the line saying how many lines were dropped since the last one; 0 when no room. */
static int report_drops(stream *s)
{
    char line[256];
    int n;
    if (s->json) {
        n = snprintf(line, sizeof line,
                     "{\"type\":\"log_dropped\",\"stream\":\"%s\","
                     "\"lines\":%lld,\"bytes\":%lld}\n",
                     s->name, s->unreported_lines, s->unreported_bytes);
    } else {
        n = prefix(line, sizeof line, TIDE_LOG_WARN);
        n += snprintf(line + n, sizeof line - (size_t)n,
                      "log: %lld lines (%lld bytes) dropped: "
                      "%s was not read fast enough\n",
                      s->unreported_lines, s->unreported_bytes, s->name);
    }
    if (n <= 0 || (size_t)n >= sizeof line || !room(s, (size_t)n)) return 0;
    memcpy(s->buf + s->len, line, (size_t)n);
    s->len += (size_t)n;
    s->unreported_lines = s->unreported_bytes = 0;
    return 1;
}

/* Writes pending lines until none are left or the fd would block. Returns 1 when it would
 * block (the caller waits for writability), else 0. */
static int write_out(stream *s)
{
    for (;;) {
        if (s->off == s->len) {
            s->off = s->len = 0;
            if (s->unreported_lines == 0 || !report_drops(s)) return 0;
        }
        const char *p = s->buf + s->off;
        size_t n = s->len - s->off;
        if (s->writer != W_FILE && n > PIPE_BUF) {
            const char *nl = memrchr(p, '\n', PIPE_BUF); /* lines are <= PIPE_BUF */
            n = nl ? (size_t)(nl - p) + 1 : PIPE_BUF;
        }
        ssize_t w = put(s, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            s->blocked++;
            return 1;
        }
        if (w <= 0) { /* the reader is gone, or the fd is broken */
            discard(s);
            return 0;
        }
        s->written_lines += count_lines(p, (size_t)w);
        s->off += (size_t)w;
        if ((size_t)w < n) { /* a socket or terminal took part of it: it is full */
            s->blocked++;
            return 1;
        }
    }
}

static void flush_stream(stream *s)
{
    if (!s->buf || ev_is_active(&s->io)) return; /* waiting for writability */
    if (s->off == s->len && s->unreported_lines == 0) return;
    if (ev_is_active(&s->age)) ev_timer_stop(log_loop, &s->age);
    if (write_out(s)) ev_io_start(log_loop, &s->io);
}

/* The end of a pass. stdout's access lines are written once LAZY_BYTES have gathered or the
 * oldest has waited LAZY_SECONDS: under load one write carries the lines of many passes
 * instead of one write per pass (about one per 1.4 requests in the bench's point read). */
enum { LAZY_BYTES = 16 * 1024 };
#define LAZY_SECONDS 0.02

static void flush_pass(stream *s)
{
    if (s->lazy && s->buf && !ev_is_active(&s->io) && s->len - s->off < LAZY_BYTES &&
        s->len - s->off < s->cap / 4 && s->unreported_lines == 0) {
        if (s->off < s->len && !ev_is_active(&s->age)) {
            ev_timer_set(&s->age, LAZY_SECONDS, 0.0);
            ev_timer_start(log_loop, &s->age);
        }
        return;
    }
    flush_stream(s);
}

static void on_age(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    flush_stream(container_of(w, stream, age));
}

static void on_writable(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    stream *s = container_of(w, stream, io);
    if (!write_out(s)) ev_io_stop(loop, w);
}

/* Writes one line (n bytes, without its newline) at once, blocking (not attached). */
static void write_now(stream *s, const char *p, size_t n)
{
    char line[TIDE_LOG_LINE_MAX];
    memcpy(line, p, n);
    line[n++] = '\n';
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(s->fd, line + off, n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) { /* a broken log pipe must not stop tide */
            drop(s, n, 0);
            return;
        }
        off += (size_t)w;
    }
    s->written_lines++;
}

/* Queues one line (n bytes, without its newline). */
static void enqueue(stream *s, const char *p, size_t n)
{
    if (n + 1 > TIDE_LOG_LINE_MAX) {
        drop(s, n + 1, 0);
        return;
    }
    if (!s->buf) {
        write_now(s, p, n);
        return;
    }
    if (s->unreported_lines) report_drops(s);
    if (!room(s, n + 1) && !ev_is_active(&s->io) && write_out(s)) ev_io_start(log_loop, &s->io);
    if (!room(s, n + 1)) {
        drop(s, n + 1, 1);
        return;
    }
    memcpy(s->buf + s->len, p, n);
    s->buf[s->len + n] = '\n';
    s->len += n + 1;
}

/* The writer for fd; *wfd is what to write to. */
static int pick_writer(int fd, int *wfd)
{
    struct stat st;
    *wfd = fd;
    if (fstat(fd, &st) != 0 || S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) return W_FILE;
    if (S_ISSOCK(st.st_mode)) return W_SOCKET;
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && (fl & O_NONBLOCK)) return W_NONBLOCKING;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int p = open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    struct stat pst;
    if (p >= 0 && fstat(p, &pst) == 0 && pst.st_dev == st.st_dev && pst.st_ino == st.st_ino) {
        *wfd = p;
        return W_REOPENED;
    }
    if (p >= 0) close(p);
    return W_POLLED;
}

static void open_stream(stream *s, int fd, char *buf, size_t cap)
{
    s->fd = fd;
    s->writer = pick_writer(fd, &s->wfd);
    s->buf = buf;
    s->cap = cap;
    s->off = s->len = 0;
    ev_io_init(&s->io, on_writable, s->wfd, EV_WRITE);
    ev_timer_init(&s->age, on_age, LAZY_SECONDS, 0.0);
}

/* As tide_log_attach, for the given fds instead of 1 and 2 (the C unit tests use pipes). */
int tide__log_attach_fds(struct ev_loop *loop, int out_fd, int err_fd, size_t buffer_bytes)
{
    if (log_loop || !loop || buffer_bytes < 4 * TIDE_LOG_LINE_MAX) return TIDE_EINVAL;
    char *a = malloc(buffer_bytes), *b = malloc(buffer_bytes);
    if (!a || !b) {
        free(a);
        free(b);
        return TIDE_ENOMEM;
    }
    log_loop = loop;
    open_stream(&out_s, out_fd, a, buffer_bytes);
    open_stream(&err_s, err_fd, b, buffer_bytes);
    return 0;
}

int tide_log_attach(struct ev_loop *loop, size_t buffer_bytes)
{
    return tide__log_attach_fds(loop, STDOUT_FILENO, STDERR_FILENO, buffer_bytes);
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void close_stream(stream *s, double deadline)
{
    if (ev_is_active(&s->io)) ev_io_stop(log_loop, &s->io);
    if (ev_is_active(&s->age)) ev_timer_stop(log_loop, &s->age);
    while (write_out(s)) {
        double left = deadline - mono_now();
        if (left <= 0) break;
        struct pollfd pfd = { .fd = s->wfd, .events = POLLOUT };
        if (poll(&pfd, 1, (int)(left * 1000.0) + 1) < 0 && errno != EINTR) break;
    }
    discard(s); /* what the wait did not get out */
    if (s->wfd != s->fd) close(s->wfd);
    free(s->buf);
    s->buf = NULL;
    s->cap = s->off = s->len = 0;
    s->wfd = s->fd;
    s->writer = W_BLOCKING;
}

void tide_log_detach(double max_wait)
{
    if (!log_loop) return;
    double deadline = mono_now() + max_wait;
    close_stream(&out_s, deadline);
    close_stream(&err_s, deadline);
    log_loop = NULL;
}

void tide_log_flush(void)
{
    if (!log_loop) return;
    flush_stream(&out_s);
    flush_stream(&err_s);
}

void tide_log_flush_pass(void)
{
    if (!log_loop) return;
    flush_pass(&out_s);
    flush_stream(&err_s);
}

static void stream_stats(const stream *s, tide_log_stream_stats *o)
{
    o->written_lines = s->written_lines;
    o->dropped_lines = s->dropped_lines;
    o->dropped_bytes = s->dropped_bytes;
    o->buffered_bytes = (long long)(s->len - s->off);
    o->blocked = s->blocked;
    o->writer = writer_names[s->writer];
}

void tide_log_get_stats(tide_log_stats *out)
{
    stream_stats(&out_s, &out->out);
    stream_stats(&err_s, &out->err);
}

/* ---- levelled lines (stderr) ----------------------------------------------------------- */

void tide_log(int level, const char *fmt, ...)
{
    if (level < min_level) return;
    char buf[2048];
    int n = prefix(buf, sizeof buf, level);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
    va_end(ap);
    if (m < 0) m = 0;
    n += m;
    if (n > (int)sizeof buf - 1) n = (int)sizeof buf - 1;
    /* one line: never let a message smuggle newlines into the log */
    for (int i = 0; i < n; i++)
        if (buf[i] == '\n' || buf[i] == '\r') buf[i] = ' ';
    enqueue(&err_s, buf, (size_t)n);
}

/* ---- JSON lines (stdout) --------------------------------------------------------------- */

void tide_log_access(const char *line, int len)
{
    if (len < 0) return;
    enqueue(&out_s, line, (size_t)len);
}

int tide_json_escape(char *out, int cap, const char *s, int len)
{
    static const char hex[] = "0123456789abcdef";
    int o = 0;
    for (int i = 0; i < len && o < cap - 7; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            out[o++] = '\\';
            out[o++] = 'u';
            out[o++] = '0';
            out[o++] = '0';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else out[o++] = (char)c;
    }
    out[o] = 0;
    return o;
}

/* Appends s (NUL-terminated) at *o within line[cap]; the hot path's alternative to printf. */
static void put_s(char *line, int cap, int *o, const char *s)
{
    size_t n = strlen(s);
    if (*o + (int)n < cap) {
        memcpy(line + *o, s, n);
        *o += (int)n;
    }
}

/* Appends v in decimal. */
static void put_u(char *line, int cap, int *o, unsigned long long v)
{
    if (*o + 20 < cap) *o += tide_utoa(v, line + *o);
}

void tide_log_request(const char *id, const char *client_id, const char *method, const char *path,
                      size_t path_len, int status, double ms, const char *role, int aborted,
                      const char *cache)
{
    /* formatted by hand: this runs once per request (no printf on the hot path) */
    char line[1000];
    int o = 0, cap = (int)sizeof line;
    put_s(line, cap, &o, "{\"type\":\"access\",\"id\":\"");
    put_s(line, cap, &o, id);
    put_s(line, cap, &o, "\",\"method\":\"");
    put_s(line, cap, &o, method);
    put_s(line, cap, &o, "\",\"path\":\"");
    o += tide_json_escape(line + o, cap - o - 300, path, (int)(path_len > 400 ? 400 : path_len));
    put_s(line, cap, &o, "\",\"status\":");
    put_u(line, cap, &o, status > 0 ? (unsigned)status : 0);
    put_s(line, cap, &o, ",\"ms\":");
    unsigned long long us = ms > 0 ? (unsigned long long)(ms * 1000.0 + 0.5) : 0;
    put_u(line, cap, &o, us / 1000);
    put_s(line, cap, &o, ".");
    char frac[4] = { (char)('0' + us / 100 % 10), (char)('0' + us / 10 % 10), (char)('0' + us % 10),
                     0 };
    put_s(line, cap, &o, frac);
    put_s(line, cap, &o, ",\"role\":\"");
    put_s(line, cap, &o, role);
    put_s(line, cap, &o, "\"");
    if (client_id && *client_id) {
        put_s(line, cap, &o, ",\"client_request_id\":\"");
        o += tide_json_escape(line + o, cap - o - 100, client_id, (int)strlen(client_id));
        put_s(line, cap, &o, "\"");
    }
    if (aborted) put_s(line, cap, &o, ",\"aborted\":true");
    if (cache) {
        put_s(line, cap, &o, ",\"cache\":\"");
        put_s(line, cap, &o, cache);
        put_s(line, cap, &o, "\"");
    }
    put_s(line, cap, &o, "}");
    tide_log_access(line, o);
}

/* A JSON line being built; `over` once something did not fit (the line is then dropped). */
typedef struct jline {
    char b[TIDE_LOG_LINE_MAX];
    int n, over;
} jline;

static void j_add(jline *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void j_add(jline *j, const char *fmt, ...)
{
    if (j->over) return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(j->b + j->n, sizeof j->b - (size_t)j->n, fmt, ap);
    va_end(ap);
    if (m < 0 || (size_t)m >= sizeof j->b - (size_t)j->n) j->over = 1;
    else j->n += m;
}

/* ,"key":"<v escaped, at most max input bytes cut at a UTF-8 boundary>", or ,"key":null for
 * a NULL or empty v. */
static void j_str(jline *j, const char *key, const char *v, size_t len, size_t max)
{
    if (!v || len == 0) {
        j_add(j, ",\"%s\":null", key);
        return;
    }
    if (len > max) {
        len = max;
        while (len > 0 && ((unsigned char)v[len] & 0xC0) == 0x80) len--;
    }
    j_add(j, ",\"%s\":\"", key);
    if (j->over) return;
    int room = (int)sizeof j->b - j->n - 3; /* the closing quote, brace and NUL */
    if (room < 8) {
        j->over = 1;
        return;
    }
    j->n += tide_json_escape(j->b + j->n, room, v, (int)len);
    j_add(j, "\"");
}

static void j_cstr(jline *j, const char *key, const char *v)
{
    j_str(j, key, v, v ? strlen(v) : 0, 256);
}

static void j_end(jline *j)
{
    j_add(j, "}");
    if (!j->over) enqueue(&out_s, j->b, (size_t)j->n);
    else drop(&out_s, sizeof j->b, 0);
}

static void j_call(jline *j, const tide_log_call *c)
{
    j_cstr(j, "route", c->route);
    j_cstr(j, "method", c->method);
    j_cstr(j, "kind", c->kind);
    j_cstr(j, "table", c->table);
}

void tide_log_slow_query(const tide_log_call *c, double ms, long long rows, int attempts,
                         const char *error, const char *statement)
{
    jline j = { .n = 0 };
    j_add(&j, "{\"type\":\"slow_query\"");
    j_cstr(&j, "id", c->id);
    j_cstr(&j, "upstream", c->upstream);
    j_add(&j, ",\"ms\":%.3f", ms);
    if (rows >= 0) j_add(&j, ",\"rows\":%lld", rows);
    else j_add(&j, ",\"rows\":null");
    j_str(&j, "statement", statement, statement ? strlen(statement) : 0, 1024);
    j_call(&j, c);
    j_add(&j, ",\"attempts\":%d", attempts);
    if (error) j_cstr(&j, "error", error);
    j_end(&j);
}

void tide_log_audit_call(const tide_log_call *c, const char *via)
{
    jline j = { .n = 0 };
    j_add(&j, "{\"type\":\"audit\",\"event\":\"db_call\"");
    j_cstr(&j, "id", c->id);
    j_cstr(&j, "role", c->role);
    j_cstr(&j, "sub", c->sub);
    j_call(&j, c);
    j_cstr(&j, "upstream", c->upstream);
    j_cstr(&j, "via", via);
    j_end(&j);
}

void tide_log_audit_request(const char *id, const char *sub, const char *method, const char *route,
                            const char *path, size_t path_len, int status)
{
    jline j = { .n = 0 };
    j_add(&j, "{\"type\":\"audit\",\"event\":\"request\"");
    j_cstr(&j, "id", id);
    j_add(&j, ",\"role\":\"service_role\"");
    j_cstr(&j, "sub", sub);
    j_cstr(&j, "method", method);
    j_cstr(&j, "route", route);
    j_str(&j, "path", path, path_len, 400);
    j_add(&j, ",\"status\":%d", status);
    j_end(&j);
}
