/* qstats.h - statement statistics for GET /admin/queries (pg_stat_statements' view from tide's
 * side): per upstream and statement text, calls, errors, rows returned, total time and a
 * log-linear latency histogram (p50/p95/p99). The time is the call's as a request sees it:
 * waiting for a connection, retries and backoff included.
 *
 * A statement is counted by its shape (tide_qstats_shape): its text with quoted aliases
 * written "?", so names a client picks (select=name:col on /rest/v1) neither make statements
 * of their own nor show. tide's statements are parameterized (values never appear in the
 * text), so a handful of shapes per route is usual.
 *
 * Fixed memory: at most TIDE_QSTATS_MAX statements (texts cut at TIDE_QSTATS_TEXT bytes);
 * once full, other statements count under "(other)" of their upstream, a row kept outside
 * that bound so it always exists: a client that sends endless distinct shapes (filters, column
 * lists) can fill the table but never stops the counting. Loop thread only; process-wide
 * state. */
#ifndef TIDE_QSTATS_H
#define TIDE_QSTATS_H

#include <stddef.h>

#define TIDE_QSTATS_MAX  1000
#define TIDE_QSTATS_TEXT 2048

/* The shape of sql in out (cap bytes; cap >= 1): the text with each double-quoted name that
 * follows the keyword AS (a column or embed alias) written "?"; names elsewhere, unquoted
 * aliases and the insides of '...' and $tag$...$tag$ literals are kept. Cut to fit and always
 * NUL-terminated; returns its length. What /admin/queries and slow_query lines show. */
size_t tide_qstats_shape(const char *sql, char *out, size_t cap);
/* One finished call of sql (NULL: a BEGIN or COMMIT of its own) on upstream (an index),
 * counted under its shape. */
void tide_qstats_record(int upstream, const char *sql, double seconds, long long rows, int failed);
/* The `limit` statements with the most total time as a JSON document {"statements":[...]}
 * in a malloc'd buffer (*len bytes); NULL when memory is short. */
char *tide_qstats_json(int limit, size_t *len);
/* Forgets everything. */
void tide_qstats_reset(void);

#endif
