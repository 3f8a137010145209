/* task.h - internal: one request running in a Lua coroutine. Shared by luavm.c (which owns
 * the lifecycle) and task_api.c, whose accessors (task_api.h) are what the binding that parks
 * a task on a database call (runtime/call.c) and resumes it uses. Not part of the public
 * surface. */
#ifndef TIDE_TASK_H
#define TIDE_TASK_H

#include <stdint.h>
#include <ev.h>
#include <lua.h>
#include "app.h"
#include "call.h"
#include "jwt.h"
#include "stage.h"

typedef struct tide_task {
    tide_app *app;
    tide_vm *vm;
    lua_State *co;
    int co_ref;
    tide_http_req *req; /* NULL once answered */
    char *claims;       /* JSON text sent as request.jwt.claims */
    tide_role role;
    int aborted;     /* the client went away */
    tide_call *call; /* the database call the coroutine waits on, or NULL */
    tide_conn *tx;   /* connection held by an open transaction, or NULL */
    tide_pool *tx_pool;
    double started;
    char id[TIDE_HTTP_ID_MAX + 1]; /* the request's id (tide_http_req.id) */
    char sub[64];                  /* the JWT's sub claim or "" */
    char route[128];               /* the route pattern the router matched, or "" */
    int tx_service;                /* the open transaction runs as service_role: why (the binding's
                              * audit reason), or 0 */
    struct tide_rcache_req *cr;    /* the cache's record of what the answer depends on
                                   * (tide_rcache_depend), or NULL */
    tide_answer_fn answer;         /* where the answer goes (stage.h), NULL once answered */
    void *answer_ud;
    int crossings;       /* C<->Lua crossings so far (tide_vm_crossings) */
    int co_done;         /* the coroutine returned: it can serve another request */
    char route_key[160]; /* "METHOD /pattern": the route's budget and quarantine key */
    int64_t budget_ns;   /* the Lua time this request may use (guard.h) */
    int64_t lua_ns;      /* ... and has used so far */
    uint64_t born;       /* the cache clock when the request started (tide.cache.set) */
    uint64_t floor;      /* read-your-writes: the WAL position its reads must see (0: none) */
    uint64_t wrote;      /* the WAL position after its last commit (0: none known) */
    /* parked by core.wait (tide__task_wait) until its vm's tide__vm_wake, the timer, or the
     * client going away; linked in the vm's list of waiting tasks until one of them */
    int waiting;   /* parked: the coroutine yielded and no call resumes it */
    int wait_why;  /* what it resumes with: TIDE__WAIT_* */
    ev_timer wait; /* its time, or 0 once woken: the resume is a later loop pass */
    struct tide_task *wait_prev, *wait_next;
} tide_task;

enum { TIDE__WAIT_TIMEOUT = 0, TIDE__WAIT_WOKEN, TIDE__WAIT_ABORTED };

/* The task whose coroutine is running right now, or NULL (e.g. while a bundle loads). */
tide_task *tide__task_current(void);
/* Resumes t's coroutine with nargs values already pushed on it. May finish (and free) t. */
void tide__task_resume(tide_task *t, int nargs);
/* Parks t (the caller then yields its coroutine) until tide__vm_wake on its vm, `seconds`
 * pass, or its client goes away; then resumes it with one value: "woken", "timeout" or
 * "aborted" (TIDE__WAIT_*). Never resumes it inside this call. t must be running and not on a
 * database call. */
void tide__task_wait(tide_task *t, double seconds);
/* Schedules every task parked on vm by tide__task_wait to resume with "woken" on a later loop
 * pass (never inside this call). Returns how many. */
int tide__vm_wake(tide_vm *vm);
/* The vm's json.decode / json.null helpers for C code converting results. */
void tide__vm_push_decode(tide_vm *vm, lua_State *L);
tide_app *tide__vm_app(tide_vm *vm);

#endif
