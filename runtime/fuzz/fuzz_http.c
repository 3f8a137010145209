/* fuzz_http.c - libFuzzer target for runtime/http.c: request parsing and assembly (pipelined,
 * chunked, trailers, split reads, deferred answers, clients leaving early).
 *
 * One tide_http_server lives on a private libev loop for the whole run. Each input is sent
 * over a socketpair whose server end is taken on with tide__http_adopt_fd(), as if accepted,
 * so nothing touches the network. The first input byte steers the run, the rest is the
 * request stream:
 *
 *   bit 0     answer requests later, from the driver (outside any http callback), not at once
 *   bits 1-3  how many extra places to split the stream into separate writes (0-7)
 *   bit 4     half-close the client side after sending, before reading the rest
 *   bit 5     send the same stream over a second connection at the same time (shared budget)
 *
 * The loop runs without blocking, a bounded number of passes, between writes and until the
 * server has closed every connection after the client closed its ends. The handler checks
 * what http.h promises about a request, then answers it. Afterwards no connection may be
 * left open and no body byte left charged to the budget; LeakSanitizer checks the rest. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "http.h"

enum { MAX_CONNS = 2, MAX_PENDING = 64, MAX_PASSES = 2000 };

static const tide_http_limits fuzz_limits = {
    .max_header_bytes = 4096,
    .max_body_bytes = 8192,
    .max_inflight_body_bytes = 12000, /* two large bodies at once do not fit: 503 */
    .read_timeout = 30,
    .idle_timeout = 30,
};

static struct ev_loop *loop;
static tide_http_server *srv;
static tide_http_req *pending[MAX_PENDING];
static int npending, defer;

static void invariant(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_http: invariant broken: %s\n", what);
        abort();
    }
}

static int is_tchar(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static int same(const tide_http_header *h, const char *name)
{
    size_t n = strlen(name);
    return h->name_len == n && memcmp(h->name, name, n) == 0;
}

/* What http.h promises about a complete request. */
static void check_request(const tide_http_req *req)
{
    invariant(req->method && req->method[0], "method");
    invariant(req->path != NULL && req->query != NULL && req->body != NULL, "pointers");
    for (size_t i = 0; i < req->path_len; i++)
        invariant((unsigned char)req->path[i] > ' ' && req->path[i] != 0x7f &&
                      req->path[i] != '?' && req->path[i] != '#',
                  "path bytes");
    if (req->query_len)
        invariant(req->query == req->path + req->path_len + 1, "query follows the path");
    for (size_t i = 0; i < req->query_len; i++)
        invariant((unsigned char)req->query[i] > ' ' && req->query[i] != '#', "query bytes");
    invariant(req->nheaders >= 0 && req->nheaders <= 128, "header count");
    int host = 0, len = 0, te = 0, auth = 0;
    const tide_http_header *clen = NULL;
    for (int i = 0; i < req->nheaders; i++) {
        const tide_http_header *h = &req->headers[i];
        invariant(h->name_len > 0, "empty header name");
        for (size_t j = 0; j < h->name_len; j++)
            invariant(is_tchar((unsigned char)h->name[j]), "header name: lower-case token");
        for (size_t j = 0; j < h->value_len; j++) {
            unsigned char ch = (unsigned char)h->value[j];
            invariant((ch >= ' ' || ch == '\t') && ch != 0x7f, "header value: no CR, LF, NUL");
        }
        host += same(h, "host");
        te += same(h, "transfer-encoding");
        auth += same(h, "authorization");
        if (same(h, "content-length")) {
            len++;
            clen = h;
        }
    }
    invariant(host <= 1 && len <= 1 && te <= 1 && auth <= 1 && !(len && te), "repeated framing");
    invariant(req->body_len <= fuzz_limits.max_body_bytes, "body within the limit");
    invariant(req->body[req->body_len] == '\0', "body NUL-terminated");
    if (clen) {
        unsigned long long n = 0;
        for (size_t j = 0; j < clen->value_len; j++)
            if (clen->value[j] >= '0' && clen->value[j] <= '9')
                n = n * 10 + (unsigned long long)(clen->value[j] - '0');
        invariant(n == req->body_len, "body length is the Content-Length");
    }
    size_t vlen;
    const char *v = tide_http_header_get(req, "host", &vlen);
    invariant(!v || host == 1, "header_get agrees with the headers");
}

static void answer(tide_http_req *req)
{
    char body[96];
    int n = snprintf(body, sizeof body, "%s %zu %zu %d", req->method, req->path_len, req->body_len,
                     req->nheaders);
    /* the body may point into the request: respond copies it first */
    const char *b = req->body_len ? req->body : body;
    size_t bl = req->body_len ? req->body_len : (size_t)n;
    (void)tide_http_respond(req, 200, "text/plain", "X-Fuzz: 1\r\n", b, bl);
}

static void on_abort(tide_http_req *req) { invariant(req->aborted, "aborted set before on_abort"); }

static void handler(tide_http_req *req, void *arg)
{
    (void)arg;
    check_request(req);
    if (defer && npending < MAX_PENDING) {
        req->on_abort = on_abort;
        pending[npending++] = req;
        return;
    }
    answer(req);
}

/* Answers what waits, from outside any http callback (parsing resumes on the next pass). */
static void answer_pending(void)
{
    for (int i = 0; i < npending; i++) answer(pending[i]);
    npending = 0;
}

static void drain(int fd)
{
    char buf[65536];
    while (fd >= 0 && recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {}
}

/* A few non-blocking loop passes, reading what the server wrote and answering late. */
static void pump(const int *fds, int n, int passes)
{
    for (int k = 0; k < passes; k++) {
        ev_run(loop, EVRUN_NOWAIT);
        for (int i = 0; i < n; i++) drain(fds[i]);
        answer_pending();
    }
}

static void sendall(const int *fds, int n, int i, const uint8_t *p, size_t len)
{
    size_t off = 0;
    for (int spins = 0; off < len && spins < MAX_PASSES; spins++) {
        ssize_t w = send(fds[i], p + off, len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0) off += (size_t)w;
        else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return; /* the server closed (an error answer): the rest goes nowhere */
        else pump(fds, n, 1);
    }
}

static void setup(void)
{
    loop = ev_loop_new(EVFLAG_AUTO);
    if (!loop || tide_http_listen(loop, "127.0.0.1", 0, &fuzz_limits, handler, NULL, &srv) != 0) {
        fprintf(stderr, "fuzz_http: cannot start the server\n");
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!loop) setup();
    if (size < 1) return 0;
    uint8_t ctl = data[0];
    data++;
    size--;
    defer = ctl & 1;
    int nsplit = (ctl >> 1) & 7, half = (ctl >> 4) & 1, nconn = (ctl >> 5) & 1 ? 2 : 1;

    /* split points from the steering byte and the length (sorted, may repeat) */
    size_t cut[9];
    uint32_t x = 2166136261u ^ ctl ^ (uint32_t)size;
    cut[0] = 0;
    for (int i = 1; i <= nsplit; i++) {
        x = x * 16777619u + 0x9e3779b9u;
        cut[i] = size ? (x >> 8) % (size + 1) : 0;
        for (int j = i; j > 1 && cut[j] < cut[j - 1]; j--) {
            size_t t = cut[j];
            cut[j] = cut[j - 1];
            cut[j - 1] = t;
        }
    }
    cut[nsplit + 1] = size;

    int fds[MAX_CONNS] = { -1, -1 };
    for (int i = 0; i < nconn; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) abort();
        invariant(tide__http_adopt_fd(srv, sv[0]) == 0, "adopt");
        fds[i] = sv[1];
    }
    for (int k = 0; k <= nsplit; k++) {
        for (int i = 0; i < nconn; i++) sendall(fds, nconn, i, data + cut[k], cut[k + 1] - cut[k]);
        pump(fds, nconn, 2);
    }
    if (half)
        for (int i = 0; i < nconn; i++) shutdown(fds[i], SHUT_WR);
    pump(fds, nconn, 4);
    for (int i = 0; i < nconn; i++) {
        close(fds[i]);
        fds[i] = -1;
    }

    tide_http_stats st;
    int passes = 0;
    do {
        pump(fds, nconn, 1);
        tide_http_get_stats(srv, &st);
    } while ((st.open > 0 || npending > 0) && ++passes < MAX_PASSES);
    invariant(st.open == 0, "every connection closed after the client left");
    invariant(st.body_bytes == 0, "no body bytes left charged");
    invariant(st.responses + st.aborted <= st.requests, "no request answered twice");
    return 0;
}
