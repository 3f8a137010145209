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
#include "router.h"
#include "stage.h"
#include "upstream.h"

/* Builds a state from app->bundle when set (runtime/bundle.h: the files read into memory),
 * else from the configured directories, and runs boot.load over every script.
 * Returns 0 and *out (holding one reference), or TIDE_ELUA with the Lua error in err. */
TIDE_MUST_CHECK int tide_vm_new(tide_app *app, tide_vm **out, char *err, size_t errlen);
void tide_vm_ref(tide_vm *vm);
/* Drops a reference; the state is closed when the last one goes. */
void tide_vm_unref(tide_vm *vm);

struct tide_cache_policy;
struct tide_cache_rule;

/* The VM stage of the request pipeline (runtime/stage.h): runs req through boot.handle in a
 * coroutine of vm, with the route the router found (in->match: req.route_id, req.params; an
 * unmatched path's status for boot to refuse), the route's budget and quarantine set from
 * what the bundle declared, before any Lua runs. in->claims and in->sub are copied. The
 * answer goes to in->answer(in->ud, ...) exactly once (req NULL there if the request went
 * away unanswered); never inside this call when the handler waits on a database call. */
void tide_vm_dispatch(tide_vm *vm, tide_http_req *req, const tide_stage_in *in);

/* The bundle's routes, compiled when it loaded (runtime/router.h); valid while vm is. */
const tide_router *tide_vm_router(const tide_vm *vm);
/* The cache rule of route id (a GET route with a rule in policies/cache.lua), or NULL. */
const struct tide_cache_rule *tide_vm_route_rule(const tide_vm *vm, int id);

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
                                          void *arg),
                                void *arg);

/* Number of scripts routes loaded (for logs). */
int tide_vm_route_count(const tide_vm *vm);

/* Crossings between C and Lua made by requests that ended, and those requests: each entry
 * into a request's coroutine and each return from it, each call into tide.core and each
 * return from one that did not yield (a call that yields returns by the next entry). An
 * uncached point read makes 4: into the handler, the query's call (it yields), the result's
 * resume, the return. */
void tide_vm_crossings(long long *requests, long long *crossings);
/* For tide.core (the binding): one call into it by the running request, or one return. */
void tide__vm_crossing(int n);

#endif
