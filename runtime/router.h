/* router.h - the bundle's routes, compiled once when a bundle loads, matched once per request.
 *
 * Pure: no loop, no Lua, no logging. The bundle declares its routes (bindings/tide/router.lua,
 * boot.load); runtime/luavm.c compiles them into a tide_router with the bundle's state, and
 * the request pipeline (docs/architecture.md) matches each request here, before the cache and
 * before any Lua runs. The compiled router lives and dies with its bundle, so a reload swaps
 * both at once and a rejected bundle leaves the old router serving.
 *
 * Patterns are absolute paths of static segments and :params (names [A-Za-z_][A-Za-z0-9_]*).
 * Matching is tide.router's:
 *   - a static segment wins over a :param at the same position; when the static branch
 *     cannot finish the match, the param branch is tried (/v1/trips/search/collaborators
 *     still reaches /v1/trips/:id/collaborators);
 *   - an empty segment never matches a :param; static segments are compared as sent;
 *   - a param value is percent-decoded (tide_router_decode; "+" stays "+"); a malformed
 *     escape or %00 in one is TIDE_ROUTE_BAD_PATH (400);
 *   - a path matched under other methods only is TIDE_ROUTE_NOT_ALLOWED (405) with the Allow
 *     value ("GET, PATCH", sorted); no pattern at all, TIDE_ROUTE_NOT_FOUND (404). */
#ifndef TIDE_ROUTER_H
#define TIDE_ROUTER_H

#include <stddef.h>
#include "error.h"

#define TIDE_ROUTER_MAX_SEGS   64 /* segments of a pattern; a longer path matches nothing */
#define TIDE_ROUTER_MAX_PARAMS 16 /* :params of a pattern */

typedef struct tide_router tide_router;

enum {
    TIDE_ROUTE_FOUND = 0,
    TIDE_ROUTE_NOT_FOUND = 404,
    TIDE_ROUTE_NOT_ALLOWED = 405,
    TIDE_ROUTE_BAD_PATH = 400
};

/* A match: the route's id (as given to tide_router_add), and its params, raw (pointers into
 * the matched path, valid as long as it is). */
typedef struct tide_route_match {
    int status; /* TIDE_ROUTE_* */
    int id;     /* TIDE_ROUTE_FOUND: the route's id */
    int nparams;
    struct {
        const char *name;  /* NUL-terminated, owned by the router */
        const char *value; /* raw, percent-encoded: tide_router_decode */
        size_t len;
    } params[TIDE_ROUTER_MAX_PARAMS];
    char allow[64]; /* TIDE_ROUTE_NOT_ALLOWED: "GET, PATCH" */
} tide_route_match;

/* An empty router, or NULL (memory). */
tide_router *tide_router_new(void);
void tide_router_free(tide_router *r);

/* Adds METHOD pattern as route id (>= 0). Returns 0; TIDE_EINVAL for an unknown method, a
 * pattern not starting with "/", an empty segment, a bad or repeated :param name, too many
 * segments or params, or a route already added (same method and shape); TIDE_ENOMEM. */
TIDE_MUST_CHECK int tide_router_add(tide_router *r, const char *method, const char *pattern,
                                    int id);

/* Matches method and path (len bytes, without the query) into *m; returns m->status. */
int tide_router_match(const tide_router *r, const char *method, const char *path, size_t len,
                      tide_route_match *m);

/* Percent-decodes s (n bytes) into out (room for n bytes). Returns the decoded length, or -1
 * for a malformed escape or an encoded NUL. */
long tide_router_decode(const char *s, size_t n, char *out);

#endif
