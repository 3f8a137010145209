/* http.h - HTTP/1.1 server on libev: keep-alive, pipelined requests (answered in order, one at
 * a time per connection), header/body size limits (431/413), read and idle timeouts (408),
 * a budget for request bodies held across all connections (503), one for answers their
 * clients have not read (the slowest readers are reset) and a cap on connections per client
 * address. The server owns connections; the upper layer gets one callback per complete
 * request and answers it exactly once with tide_http_respond(), possibly much later (after
 * Postgres).
 *
 * Syntax is strict, as in nginx and h2o: a request is answered 400 (JSON, code
 * TIDE_BAD_REQUEST) and its connection closed for a line not ended by CRLF (bare LF, or CR
 * without LF) in the request line, head, chunk framing or trailer; a header name that is not a
 * token (no blank in it or before its colon); a folded line (one starting with SP or HTAB);
 * a control character other than HTAB in a header value, or any in the url; a NUL anywhere;
 * an HTTP/1.1 request without Host; more than one Host, Content-Length, Transfer-Encoding or
 * Authorization, or both Content-Length and Transfer-Encoding; a Transfer-Encoding that does
 * not end in chunked; chunk data not followed by CRLF. Other codings before chunked ("gzip,
 * chunked") are answered 501 (TIDE_NOT_IMPLEMENTED): tide does not undo them.
 *
 * Fields of a chunked request's trailer are checked like header fields and count against
 * max_header_bytes together with the head, but are dropped: they never appear among the
 * headers nor in the body. */
#ifndef TIDE_HTTP_H
#define TIDE_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <ev.h>
#include "error.h"

typedef struct tide_http_server tide_http_server;

typedef struct tide_http_limits {
    size_t max_header_bytes; /* request line + headers (+ trailer); over it -> 431, close */
    size_t max_body_bytes;   /* over it -> 413 and close */
    double read_timeout;     /* seconds to receive a whole request once started -> 408 */
    double idle_timeout;     /* seconds a keep-alive connection may sit idle -> close */
    int max_connections;     /* accept no more beyond this (0 = unlimited) */
    /* Request-body memory held at once by all connections of this server: what bodies have
     * grown their requests' buffers by, counted as the bytes arrive (never ahead of them)
     * and released when the request is answered or its connection closes. A body that
     * would go over it -> 503 with Retry-After: 1 (JSON code TIDE_BUSY) and close. */
    size_t max_inflight_body_bytes;
    /* Open connections from one IP address (IPv4, or a whole IPv6 address); a connection
     * over it is reset at accept, unanswered (0 = unlimited; Unix sockets are not counted).
     * Behind a proxy every connection comes from the proxy: raise it or set 0 there. */
    int max_connections_per_client;
    /* Seconds of connection reads (parsing, handler calls, closes) one event-loop pass spends
     * before the rest of its readable connections wait for the next passes, served there
     * first and in arrival order (0: 5 ms; at least 16 reads a pass). Bounds the pass a
     * storm makes - thousands of clients hanging up at once - without starving anyone. */
    double read_pass_budget;
    /* Output buffers held at once by all connections of this server: the part of an answer
     * the socket did not take, the buffer's whole allocation, from when the answer is queued
     * until its client has read the last byte of it. When an answer is queued and the other
     * connections hold more than this, those whose clients have gone longest without reading
     * are reset (never the connection just answered, nor one whose request is with the
     * handler) until they fit it again; counted in stats.slow_readers_closed. So all output
     * buffers together stay within max_unsent_bytes plus the newest answer. */
    size_t max_unsent_bytes;
} tide_http_limits;
/* A zero (or negative) size or timeout, or a NULL limits pointer, takes the default:
 * 16 KiB of headers, 1 MiB of body, 64 MiB of bodies in flight, 64 MiB of unsent answers,
 * 10 s read timeout, 60 s idle timeout; zero connection limits mean unlimited.
 *
 * Memory a client can pin: besides its body bytes (all clients together at most
 * max_inflight_body_bytes) and its unread answer (all together at most max_unsent_bytes plus
 * the newest one), a connection holds at most about 64 KiB of unparsed pipelined input,
 * 2 x max_header_bytes of request head, 4 KiB of header slots (at most 128 fields, more ->
 * 431) and ~0.5 KiB of its own. A connection with output waiting has no further request
 * parsed: nothing more is produced for a client that does not read. */

/* A request's headers in arrival order. A header may repeat (except Host, Content-Length,
 * Transfer-Encoding and Authorization: 400); where one value is wanted, the first occurrence
 * is the one that counts - tide_http_header_get() returns it, and so does the headers table
 * the Lua scripts see - never a later one, never a join. */
typedef struct tide_http_header {
    const char *name;
    size_t name_len; /* name lower-cased by the server */
    const char *value;
    size_t value_len;
} tide_http_header;

#define TIDE_HTTP_ID_MAX 48

typedef struct tide_http_req tide_http_req;
struct tide_http_req {
    const char *method; /* "GET", NUL-terminated */
    const char *path;
    size_t path_len; /* raw path without the query, not decoded */
    const char *query;
    size_t query_len; /* after '?', without it; len 0 if none */
    tide_http_header *headers;
    int nheaders;
    const char *body;
    size_t body_len; /* body (de-chunked), NUL-terminated; len 0 if none */
    int keep_alive;  /* client wants keep-alive (HTTP/1.1 default) */
    void *ud;        /* free for the upper layer */
    /* Called (once) if the client goes away before the response; the request stays valid
     * until tide_http_respond() is called on it. Set by the upper layer; may be NULL. */
    void (*on_abort)(tide_http_req *req);
    int aborted; /* set (before on_abort) once the client is gone */
    /* The request id, set by the upper layer (NUL-terminated, safe characters); the response
     * carries it as X-Request-Id when it is not empty. */
    char id[TIDE_HTTP_ID_MAX + 1];
    /* What the client sent as its own id, when the upper layer keeps it ("" if none): only
     * logged beside id, never sent back nor used as id. */
    char client_id[TIDE_HTTP_ID_MAX + 1];
    /* Read-your-writes: the WAL position the request's reads must see, set by the upper
     * layer at admission (0: none). */
    uint64_t lsn_floor;
};

/* Called for every complete request. Must eventually call tide_http_respond(req, ...). */
typedef void (*tide_http_handler)(tide_http_req *req, void *arg);

/* Starts listening on host:port (SO_REUSEADDR, SO_REUSEPORT, non-blocking, backlog 1024).
 * host may be NULL (all addresses); port 0 picks a free port (see tide_http_port()).
 * Returns 0 and the server in *out, or TIDE_EIO (bind/listen failure; errno kept),
 * TIDE_EINVAL (bad arguments) or TIDE_ENOMEM. The handler is only ever called from the
 * loop, never from inside a tide_http_* call. */
TIDE_MUST_CHECK int tide_http_listen(struct ev_loop *loop, const char *host, int port,
                                     const tide_http_limits *limits, tide_http_handler handler,
                                     void *arg, tide_http_server **out);

/* Sends the response for req and releases req (invalid afterwards). extra_headers is a
 * preformatted block of "Name: value\r\n" lines or NULL. Content-Length is always set; the
 * server adds Connection: close when it will close. If the client is gone, the response is
 * dropped and req freed. Returns 0 or TIDE_ENOMEM. body may point into req (it is copied
 * or sent before req is freed). content_type and extra_headers are checked for CR/LF
 * injection: if malformed, a 500 TIDE_INTERNAL error is sent instead and TIDE_EINVAL
 * returned. 1xx/204/304 responses carry no body (and 1xx/204/304 no Content-Length);
 * HEAD responses carry Content-Length but no body. req is released in every case. */
int tide_http_respond(tide_http_req *req, int status, const char *content_type,
                      const char *extra_headers, const char *body, size_t body_len);

/* A copy of req's method, path, query and headers (no body) that no client waits for: work
 * done on its behalf (a cache refresh) answers it with tide_http_respond() as usual, which
 * then only frees it. NULL when memory is short. */
tide_http_req *tide_http_req_copy(const tide_http_req *req);

/* Answers req with the JSON error {"code":code,"message":msg,"details":null,"hint":null}, as
 * tide_http_respond. code and msg are the caller's constants: JSON-safe text (no quote,
 * backslash or control character), together under 400 bytes. */
int tide_http_respond_error(tide_http_req *req, int status, const char *code, const char *msg,
                            const char *extra_headers);

/* Returns the value of the first header `name` (lower-case) or NULL; *len receives its
 * length. */
const char *tide_http_header_get(const tide_http_req *req, const char *name, size_t *len);

/* Stops accepting (closes the listening socket); open connections finish their current
 * request then close, idle keep-alive connections close now. */
void tide_http_stop_accepting(tide_http_server *srv);

/* Closes every connection and frees the server. In-flight requests become aborted (their
 * on_abort runs; each must still be answered with tide_http_respond(), which then only
 * frees it). Called from inside the handler or on_abort, the teardown is deferred until
 * that callback returns. */
void tide_http_free(tide_http_server *srv);

/* Counters for /admin/stats and tests. `open` is the current number of connections;
 * `responses` counts tide_http_respond() calls that reached a live connection; the
 * server's own error answers are counted under rejected_* and timeouts_408. */
typedef struct tide_http_stats {
    long long accepted, open, requests, responses, rejected_431, rejected_413, timeouts_408;
    long long rejected_400;  /* malformed, CONNECT, unsupported Expect (417) or coding (501) */
    long long aborted;       /* requests whose client went away before the response */
    long long rejected_busy; /* 503s: a body would have gone over the budget */
    long long rejected_per_client; /* connections reset at accept (not in `accepted`) */
    long long body_bytes;          /* now: body bytes charged to max_inflight_body_bytes */
    long long clients;             /* now: addresses counted for max_connections_per_client */
    long long parked;              /* reads put off to a later pass by read_pass_budget */
    long long unsent_bytes;        /* now: output buffers charged to max_unsent_bytes */
    long long slow_readers_closed; /* connections reset to keep within max_unsent_bytes */
} tide_http_stats;
void tide_http_get_stats(const tide_http_server *srv, tide_http_stats *out);

/* Returns the bound TCP port (useful after listening on port 0). */
int tide_http_port(const tide_http_server *srv);

/* Standard reason phrase for a status code ("OK", "Not Found", ...). */
const char *tide_http_reason(int status);

/* ---- internal (tests and fuzzing) ---------------------------------------------------- */

/* Takes a connected stream socket (a socketpair end, say) on as a connection of srv, as if
 * accepted; not counted per client. srv owns fd from here on, also on failure (closed).
 * Returns 0, TIDE_EINVAL (stopped server, bad fd) or TIDE_ENOMEM. */
TIDE_MUST_CHECK int tide__http_adopt_fd(tide_http_server *srv, int fd);

#endif
