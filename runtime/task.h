/* task.h - internal: one request running in a Lua coroutine. Shared by luavm.c (which owns
 * the lifecycle) and the binding that parks a task on a database call (runtime/call.c) and
 * resumes it. Not part of the public surface. */
#ifndef TIDE_TASK_H
#define TIDE_TASK_H

#include <stdint.h>
#include <lua.h>
#include "app.h"
#include "call.h"
#include "jwt.h"

typedef struct tide_task {
    tide_app *app;
    tide_vm *vm;
    lua_State *co;
    int co_ref;
    tide_http_req *req;      /* NULL once answered */
    char *claims;            /* JSON text sent as request.jwt.claims */
    tide_role role;
    int aborted;             /* the client went away */
    tide_call *call;         /* the database call the coroutine waits on, or NULL */
    tide_conn *tx;           /* connection held by an open transaction, or NULL */
    tide_pool *tx_pool;
    double started;
    char id[TIDE_HTTP_ID_MAX + 1];   /* the request's id (tide_http_req.id) */
    char sub[64];            /* the JWT's sub claim or "" */
    char route[128];         /* the route pattern tide.boot matched (core.set_route), or "" */
    int tx_service;          /* the open transaction runs as service_role: why (the binding's
                              * audit reason), or 0 */
    struct tide_rcache_req *cr;   /* the cache context of a cached route's request, or NULL */
    char route_key[160];     /* "METHOD /pattern": the route's budget and quarantine key */
    int64_t budget_ns;       /* the Lua time this request may use (guard.h) */
    int64_t lua_ns;          /* ... and has used so far */
    uint64_t born;           /* the cache clock when the request started (tide.cache.set) */
} tide_task;

/* The task whose coroutine is running right now, or NULL (e.g. while a bundle loads). */
tide_task *tide__task_current(void);
/* Resumes t's coroutine with nargs values already pushed on it. May finish (and free) t. */
void tide__task_resume(tide_task *t, int nargs);
/* The route tide.boot matched (key "METHOD /pattern") and its own budget (ms, 0: the
 * default), for the running task: returns the seconds the route stays in quarantine, or 0. */
double tide__task_set_route(tide_task *t, const char *key, size_t len, double budget_ms);
/* The vm's json.decode / json.null helpers for C code converting results. */
void tide__vm_push_decode(tide_vm *vm, lua_State *L);
tide_app *tide__vm_app(tide_vm *vm);

#endif
