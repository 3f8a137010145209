/* qstats.h - statement statistics for GET /admin/queries (pg_stat_statements' view from tide's
 * side): per upstream and statement text, calls, errors, rows returned, total time and a
 * log-linear latency histogram (p50/p95/p99). The time is the call's as a request sees it:
 * waiting for a connection, retries and backoff included.
 *
 * Fixed memory: at most TIDE_QSTATS_MAX statements (texts cut at TIDE_QSTATS_TEXT bytes);
 * once full, other statements count under "(other)" of their upstream. tide's statements are
 * parameterized (values never appear in the text), so a handful of texts per route is usual.
 * Loop thread only; process-wide state. */
#ifndef TIDE_QSTATS_H
#define TIDE_QSTATS_H

#include <stddef.h>

#define TIDE_QSTATS_MAX 1000
#define TIDE_QSTATS_TEXT 2048

/* One finished call of sql (NULL: a BEGIN or COMMIT of its own) on upstream (an index). */
void tide_qstats_record(int upstream, const char *sql, double seconds, long long rows, int failed);
/* The `limit` statements with the most total time as a JSON document {"statements":[...]}
 * in a malloc'd buffer (*len bytes); NULL when memory is short. */
char *tide_qstats_json(int limit, size_t *len);
/* Forgets everything. */
void tide_qstats_reset(void);

#endif
