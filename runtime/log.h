/* log.h - levelled one-line logs to stderr, and the JSON access log to stdout.
 * Callers never pass secrets or tokens. */
#ifndef TIDE_LOG_H
#define TIDE_LOG_H

#include <stddef.h>

enum tide_log_level { TIDE_LOG_DEBUG = 0, TIDE_LOG_INFO, TIDE_LOG_WARN, TIDE_LOG_ERROR };

/* Messages below `level` are dropped. */
void tide_log_set_level(int level);
/* Parses "debug"/"info"/"warn"/"error"; returns -1 when unknown. */
int tide_log_parse_level(const char *name);
void tide_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Queues one already-formatted JSON line (no newline needed) for the access log; lines are
 * written in batches by tide_log_flush() (the server calls it once per loop pass) or when the
 * buffer fills. */
void tide_log_access(const char *json_line, int len);
/* Queues the access-log line of one answered request: {"type":"access","id","method","path"
 * (at most 400 bytes of it, escaped; no query string),"status","ms","role"} plus, when set,
 * "aborted":true and "cache":"<cache>" (HIT, STALE, MISS, ...). */
void tide_log_request(const char *id, const char *method, const char *path, size_t path_len,
                      int status, double ms, const char *role, int aborted, const char *cache);
/* Writes out queued access-log lines. */
void tide_log_flush(void);
/* Appends s to out as a JSON string body (no quotes), escaping as needed; returns bytes
 * written, never more than cap - 1, always NUL-terminated. */
int tide_json_escape(char *out, int cap, const char *s, int len);

#define tide_debug(...) tide_log(TIDE_LOG_DEBUG, __VA_ARGS__)
#define tide_info(...)  tide_log(TIDE_LOG_INFO, __VA_ARGS__)
#define tide_warn(...)  tide_log(TIDE_LOG_WARN, __VA_ARGS__)
#define tide_error(...) tide_log(TIDE_LOG_ERROR, __VA_ARGS__)

#endif
