/* log.h - tide's two log streams, neither of which ever blocks the event loop:
 *   stderr: levelled text lines, "<UTC time> <level> <message>";
 *   stdout: JSON lines: access (one per answered request), slow_query, audit, log_dropped.
 *
 * Once tide_log_attach() has given the logger the loop, every line goes into a bounded
 * in-memory buffer per stream (whole lines only), written out at the end of each loop pass
 * (stdout's once 16 KiB have gathered or 20 ms have passed: tide_log_flush_pass) and, when the fd would block, whenever it becomes writable again (an
 * ev_io). A full buffer drops the new line and counts it (tide_log_get_stats); when room
 * returns, one line says how many were dropped. Before attach (tide check, start-up errors)
 * and after detach, lines are written at once with plain blocking writes.
 *
 * Everything here runs on the loop's thread. Callers never pass secrets or tokens; JSON lines
 * never carry query strings or statement parameters. */
#ifndef TIDE_LOG_H
#define TIDE_LOG_H

#include <stddef.h>
#include "error.h"

struct ev_loop;

enum tide_log_level { TIDE_LOG_DEBUG = 0, TIDE_LOG_INFO, TIDE_LOG_WARN, TIDE_LOG_ERROR };

/* The longest line either stream takes, its newline included (PIPE_BUF: a write of whole
 * lines up to this size is atomic on a pipe, so lines never interleave mid-line even when
 * stdout and stderr share one). Longer levelled messages are cut; longer JSON lines dropped. */
#define TIDE_LOG_LINE_MAX 4096

/* Messages below `level` are dropped. */
void tide_log_set_level(int level);
/* Parses "debug"/"info"/"warn"/"error"; returns -1 when unknown. */
int tide_log_parse_level(const char *name);
void tide_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Text put after the level of every levelled line ("[worker 1]"; NULL or "": none). */
void tide_log_set_tag(const char *tag);

/* Starts buffered, non-blocking writing of stdout and stderr on loop, each stream with a
 * buffer of buffer_bytes (at least 4 * TIDE_LOG_LINE_MAX). How each fd is written without
 * changing the file status flags of a description the process shares (a terminal, the
 * parent's pipe) is in log.c's header. Returns 0, TIDE_EINVAL (already attached, buffer too
 * small) or TIDE_ENOMEM (nothing changed then). */
TIDE_MUST_CHECK int tide_log_attach(struct ev_loop *loop, size_t buffer_bytes);
/* Internal: tide_log_attach with other fds than 1 and 2 (runtime/tests/test_log.c). */
TIDE_MUST_CHECK int tide__log_attach_fds(struct ev_loop *loop, int out_fd, int err_fd,
                                         size_t buffer_bytes);
/* Writes out what is buffered, waiting at most max_wait seconds in all for slow readers
 * (what is left then is dropped and counted), stops the watchers and goes back to blocking
 * writes. For the exit path; a no-op when not attached. */
void tide_log_detach(double max_wait);
/* Writes out as much buffered output as the fds take now, without blocking. */
void tide_log_flush(void);
/* The end of a loop pass (the server's ev_prepare): stderr as tide_log_flush; stdout's JSON
 * lines once 16 KiB have gathered or the oldest has waited 20 ms (a timer), so a busy loop
 * writes access lines in batches rather than once per pass. */
void tide_log_flush_pass(void);

/* Queues one already-formatted JSON line (without its newline) for stdout. A line longer
 * than TIDE_LOG_LINE_MAX - 1 bytes is dropped (and counted), never cut. */
void tide_log_access(const char *json_line, int len);
/* Queues the access-log line of one answered request: {"type":"access","id","method","path"
 * (at most 400 bytes of it, escaped; no query string),"status","ms","role"} plus, when set,
 * "client_request_id" (client_id: the client's own X-Request-Id, already checked to be safe
 * characters; NULL or "": none), "aborted":true and "cache":"<cache>" (HIT, STALE, MISS,
 * ...). */
void tide_log_request(const char *id, const char *client_id, const char *method, const char *path,
                      size_t path_len, int status, double ms, const char *role, int aborted,
                      const char *cache);

/* What the slow-query and audit lines say about one database call. NULL (or "") strings are
 * written as null. */
typedef struct tide_log_call {
    const char *id;             /* the request's id */
    const char *role, *sub;     /* the caller: its token's role and sub claim */
    const char *method, *route; /* the request's method and route pattern */
    const char *kind, *table;   /* tide.db's kind (select, insert, rpc, sql, transaction, ...)
                                  * and the table or function it names */
    const char *upstream;       /* direct, session or transaction */
} tide_log_call;

/* Queues {"type":"slow_query","id","upstream","ms","rows","statement","route","method","kind",
 * "table","attempts"} plus "error":"<code>" for a failed call. statement is the SQL text
 * (escaped, cut at a character boundary to at most 1 KiB), never its parameters; rows is the
 * result's row count, or null without one (< 0). */
void tide_log_slow_query(const tide_log_call *c, double ms, long long rows, int attempts,
                         const char *error, const char *statement);
/* Queues {"type":"audit","event":"db_call","id","role","sub","method","route","kind","table",
 * "upstream","via"} for a database call that runs as service_role, bypassing row-level
 * security; via says why: "as_service" (the script asked) or "service_role" (the caller's
 * token). */
void tide_log_audit_call(const tide_log_call *c, const char *via);
/* Queues {"type":"audit","event":"request","id","role":"service_role","sub","method","route",
 * "path","status"} for an answered request made with a service_role token. route is NULL when
 * no route matched; path as in the access line. */
void tide_log_audit_request(const char *id, const char *sub, const char *method, const char *route,
                            const char *path, size_t path_len, int status);

/* One stream's counters since start. */
typedef struct tide_log_stream_stats {
    long long written_lines; /* lines handed to the fd */
    long long dropped_lines; /* lines lost: the buffer was full, the fd failed, or the
                                  * exit's wait ran out */
    long long dropped_bytes;
    long long buffered_bytes; /* waiting in the buffer now */
    long long blocked;        /* times the fd would have blocked */
    const char *writer;       /* how the fd is written: "blocking" (not attached), "file",
                                  * "socket", "reopened", "nonblocking" or "polled" */
} tide_log_stream_stats;

typedef struct tide_log_stats {
    tide_log_stream_stats out, err; /* stdout, stderr */
} tide_log_stats;

/* Fills *out (never fails). */
void tide_log_get_stats(tide_log_stats *out);

/* Appends s to out as a JSON string body (no quotes), escaping as needed; returns bytes
 * written, never more than cap - 1, always NUL-terminated. */
int tide_json_escape(char *out, int cap, const char *s, int len);

#define tide_debug(...) tide_log(TIDE_LOG_DEBUG, __VA_ARGS__)
#define tide_info(...)  tide_log(TIDE_LOG_INFO, __VA_ARGS__)
#define tide_warn(...)  tide_log(TIDE_LOG_WARN, __VA_ARGS__)
#define tide_error(...) tide_log(TIDE_LOG_ERROR, __VA_ARGS__)

#endif
