/* task_api.h - what a binding may use of the request running in a Lua coroutine (the task,
 * runtime/task.h, which luavm.c owns): accessor functions over an opaque tide_task, so the
 * binding (bindings/l_*.c) neither includes task.h nor depends on its layout. Each is one
 * field read through a call: cheap next to the Lua call that asks. */
#ifndef TIDE_TASK_API_H
#define TIDE_TASK_API_H

#include <stdint.h>
#include <lua.h>
#include "app.h"
#include "jwt.h"

typedef struct tide_task tide_task;
typedef struct tide_call tide_call;
struct tide_rcache_req;

/* The task whose coroutine is running right now, or NULL (e.g. while a bundle loads). */
tide_task *tide_task_current(void);
/* The task's own coroutine: the only Lua thread that may park it. */
lua_State *tide_task_co(const tide_task *t);
/* The request's id (tide_http_req.id). */
const char *tide_task_id(const tide_task *t);
/* Whether the client went away. */
int tide_task_aborted(const tide_task *t);
/* The caller's role, the JWT's sub claim ("" when none) and the claims as JSON text. */
tide_role tide_task_role(const tide_task *t);
const char *tide_task_sub(const tide_task *t);
const char *tide_task_claims(const tide_task *t);
/* The cache's record of what the answer depends on (tide_rcache_depend), or NULL. */
struct tide_rcache_req *tide_task_cache_req(const tide_task *t);
/* The cache clock when the request started (tide_rcache_script_set). */
uint64_t tide_task_born(const tide_task *t);
/* Read-your-writes: the WAL position the request's reads must see (0: none), and noting a
 * commit's position (the answer carries the highest as Tide-LSN). */
uint64_t tide_task_floor(const tide_task *t);
void tide_task_note_write(tide_task *t, uint64_t lsn);
/* Parks t (the caller then yields its coroutine) until tide_vm_wake on its vm, `seconds`
 * pass, or its client goes away; then resumes it with one value: "woken", "timeout" or
 * "aborted". Never resumes it inside this call. t must be running and not on a database
 * call. */
void tide_task_wait(tide_task *t, double seconds);

/* The vm running the task and the process context. */
tide_vm *tide_task_vm(const tide_task *t);
tide_app *tide_task_app(const tide_task *t);
/* The request's method (NULL once answered) and the route pattern the router matched ("" when
 * none). */
const char *tide_task_method(const tide_task *t);
const char *tide_task_route(const tide_task *t);
/* The database call the coroutine waits on, or NULL; the binding sets it when it parks the
 * coroutine on one and clears it before resuming. */
tide_call *tide_task_call(const tide_task *t);
void tide_task_set_call(tide_task *t, tide_call *c);
/* The open transaction: its connection (NULL when none) and pool, and the binding's own word
 * on why it runs as service_role (0: it does not), kept for its statements' audit lines. */
tide_conn *tide_task_tx(const tide_task *t);
tide_pool *tide_task_tx_pool(const tide_task *t);
void tide_task_set_tx(tide_task *t, tide_conn *conn, tide_pool *pool);
int tide_task_tx_service(const tide_task *t);
void tide_task_set_tx_service(tide_task *t, int why);
/* Resumes t's coroutine with nargs values already pushed on it. May finish (and free) t. */
void tide_task_resume(tide_task *t, int nargs);

/* Pushes vm's json.decode, for C code converting results. */
void tide_vm_push_decode(tide_vm *vm, lua_State *L);
/* Schedules every task of vm parked by tide_task_wait to resume with "woken" on a later loop
 * pass (never inside this call). Returns how many. */
int tide_vm_wake(tide_vm *vm);
/* The process context vm serves. */
tide_app *tide_vm_app(tide_vm *vm);

#endif
