/* metrics.h - what tide counts for Prometheus (GET /metrics on the admin listener) and for the
 * percentiles in /admin/stats: answered requests by route template, method and status class
 * with a duration histogram per route, event-loop pass durations; the rest (HTTP, pools,
 * breakers, cache, JWT cache, logs, process) is read from its owners when rendering.
 *
 * Cardinality is bounded: routes are templates ("/v1/trips/:id", never raw paths), at most
 * TIDE_METRICS_MAX_ROUTES of them (more share the route "(other)"), methods are the seven
 * tide routes plus "other", status classes 1xx..5xx. A request that matched no route counts
 * under "(unmatched)", one refused before routing (401 at admission) under "(auth)". Loop
 * thread only; process-wide state. */
#ifndef TIDE_METRICS_H
#define TIDE_METRICS_H

#include <stddef.h>
#include "app.h"
#include "hist.h"
#include "http.h"
#include "jwt.h"

#define TIDE_METRICS_MAX_ROUTES 256

/* One answered request: its route template (NULL: "(unmatched)"), method, status and how long
 * it took. */
void tide_metrics_request(const char *route, const char *method, int status, double seconds);
/* Everything recorded for an answered request, in one place (tide's answers, the cache's,
 * admission's refusals): its access-log line (cache: the "cache" field, or NULL), its metrics
 * (route NULL: "(unmatched)") and, for a service_role caller, its audit line. */
void tide_request_record(const tide_http_req *req, const char *id, tide_role role, const char *sub,
                         const char *route, double seconds, int aborted, const char *cache,
                         int status);

/* One event-loop pass of `seconds`. */
void tide_metrics_loop_pass(double seconds);

/* Calls f for each route seen, with its duration histogram and request count. */
void tide_metrics_each_route(void (*f)(const char *route, const tide_hist *h, long long n,
                                       void *arg),
                             void *arg);

/* Renders every metric in the Prometheus text format (0.0.4) into a malloc'd buffer (*len
 * bytes). NULL when memory is short. */
char *tide_metrics_render(tide_app *app, size_t *len);

#endif
