/* luavm.h - one LuaJIT state per script bundle (bindings + scripts + policies), a coroutine
 * per request, and reload: a new state is built and validated beside the old one; requests in
 * flight finish on the old state, which is closed when the last of them ends. */
#ifndef TIDE_LUAVM_H
#define TIDE_LUAVM_H

#include <stddef.h>
#include <stdio.h>
#include "app.h"
#include "http.h"
#include "jwt.h"
#include "upstream.h"

/* Builds a state from app->bundle when set (runtime/bundle.h: the files read into memory),
 * else from the configured directories, and runs boot.load over every script.
 * Returns 0 and *out (holding one reference), or TIDE_ELUA with the Lua error in err. */
TIDE_MUST_CHECK int tide_vm_new(tide_app *app, tide_vm **out, char *err, size_t errlen);
void tide_vm_ref(tide_vm *vm);
/* Drops a reference; the state is closed when the last one goes. */
void tide_vm_unref(tide_vm *vm);

struct tide_rcache_req;
struct tide_cache_policy;

/* Runs req through boot.handle in a new coroutine of vm. claims (JSON text, may be NULL for
 * anonymous) and sub (the JWT's sub claim, may be NULL) are copied. With cr (a cache context,
 * runtime/rcache.h; taken over) the answer goes through tide_rcache_respond. The request is
 * always answered, now or later. */
void tide_vm_dispatch(tide_vm *vm, tide_http_req *req, const char *claims, const char *sub,
                      tide_role role, struct tide_rcache_req *cr);

/* The bundle's cache policy (policies/cache.lua); NULL for a NULL vm. */
const struct tide_cache_policy *tide_vm_cache_policy(const tide_vm *vm);

/* The bundle's resilience settings for an upstream (policies/resilience.lua). */
const tide_resilience *tide_vm_resilience(const tide_vm *vm, int upstream);

/* Writes boot.describe(section)'s lines to f: section "routes" (one "METHOD /pattern
 * file:line" a line, sorted), "routing" or "cache" (the effective routing and cache policies;
 * bindings/tide/describe.lua). Returns 0, or TIDE_ELUA when boot.describe fails (a line saying
 * so, with the error, is written instead). */
int tide_vm_describe(tide_vm *vm, const char *section, FILE *f);

/* The bundle's Lua memory: bytes held now, the most held, and the bound (script.max_memory). */
void tide_vm_memory(const tide_vm *vm, size_t *used, size_t *peak, size_t *limit);
/* Calls f for each route of the bundle whose script was stopped at its budget (guard.h): the
 * route ("METHOD /pattern"), its stops, and the seconds it stays in quarantine (0: open). */
void tide_vm_each_stopped_route(const tide_vm *vm, double now,
                                void (*f)(const char *route, long long stops, double closed,
                                          void *arg), void *arg);

/* Number of scripts routes loaded (for logs). */
int tide_vm_route_count(const tide_vm *vm);

#endif
