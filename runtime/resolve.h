/* resolve.h - resolving a DSN's host name off the loop.
 *
 * libpq would call getaddrinfo() inside PQconnectStart and block every request for as long
 * as the resolver takes. A resolver takes a DSN that names a host, resolves that host on a
 * short thread, keeps the last address, and hands out connection parameters that carry it as
 * hostaddr (so libpq keeps the host name for TLS and messages but never resolves it).
 * Loop thread only, except the thread it starts itself. Never logs. */
#ifndef TIDE_RESOLVE_H
#define TIDE_RESOLVE_H

#include <ev.h>
#include "error.h"

typedef struct tide_resolver tide_resolver;

/* Called on the loop when a resolution ends. error is NULL when an address is known (this
 * one or an earlier one), else a one-line message. */
typedef void (*tide_resolve_cb)(void *arg, const char *error);

/* Parses dsn; when it names one host that needs resolving (not an address, not a unix
 * socket, not a list, no hostaddr) creates a resolver into *out, else sets *out to NULL and
 * returns 0 (libpq needs no resolver: connect with the DSN). Nothing resolves before
 * tide_resolve_start(). Returns 0, TIDE_EINVAL (unparsable DSN) or TIDE_ENOMEM. */
TIDE_MUST_CHECK int tide_resolve_new(struct ev_loop *loop, const char *dsn, tide_resolve_cb done,
                                     void *arg, tide_resolver **out);

/* Starts a resolution when there is no address yet or it is older than max_age seconds, and
 * none is running. done() follows from the loop, never from inside this call. */
void tide_resolve_start(tide_resolver *r, double max_age);

/* The last resolved address ("" before the first success). Owned by r. */
const char *tide_resolve_addr(const tide_resolver *r);

/* 1 while a resolution runs and no address is known yet, else 0. */
int tide_resolve_pending(tide_resolver *r);

/* NULL-terminated keyword/value arrays for PQconnectStartParams: the DSN's own parameters
 * plus hostaddr = the last address. Owned by r; valid until the next call or free. */
void tide_resolve_params(tide_resolver *r, const char *const **kw, const char *const **val);

/* Frees r (NULL is fine). A resolution still running finishes on its thread, which frees
 * what it shares; done() is not called again. */
void tide_resolve_free(tide_resolver *r);

#endif
