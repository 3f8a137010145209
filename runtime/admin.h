/* admin.h - the admin listener: /live, /ready, /health, /metrics, /admin/stats,
 * /admin/queries, and with the admin token POST /admin/cache/flush and POST
 * /admin/queries?reset=1 (see admin.c). */
#ifndef TIDE_ADMIN_H
#define TIDE_ADMIN_H

#include "app.h"

/* Opens the admin listener on the configured admin host and port (at most 64 connections).
 * Returns 0, or TIDE_EIO when it cannot bind (logged). */
TIDE_MUST_CHECK int tide_admin_start(tide_app *app);

/* ---- internal (tests) -------------------------------------------------------------------- */

/* Whether a request whose Host header is host (len bytes; NULL: none) may be served: no Host,
 * or "localhost", an IPv4 address, a bracketed IPv6 address, or admin_host (the configured
 * admin.host; NULL or "": none), each with or without ":port" (digits, at most 65535); names compare
 * without regard to case. Any other name could be a page's own, rebound to this address. */
int tide__admin_host_ok(const char *host, size_t len, const char *admin_host);

/* Whether authz (the Authorization header, len bytes; NULL: none) is "Bearer <token>" (the
 * scheme in any case, blanks around the token ignored) with token equal to the configured
 * one (NULL or "": never), compared in constant time. */
int tide__admin_token_ok(const char *token, const char *authz, size_t len);

#endif
