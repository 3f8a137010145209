/* task_api.c - the accessors of task_api.h over the task (task.h). */
#include "task_api.h"
#include "task.h"

tide_task *tide_task_current(void) { return tide__task_current(); }
lua_State *tide_task_co(const tide_task *t) { return t->co; }
const char *tide_task_id(const tide_task *t) { return t->id; }
int tide_task_aborted(const tide_task *t) { return t->aborted; }
tide_role tide_task_role(const tide_task *t) { return t->role; }
const char *tide_task_sub(const tide_task *t) { return t->sub; }
const char *tide_task_claims(const tide_task *t) { return t->claims; }
struct tide_rcache_req *tide_task_cache_req(const tide_task *t) { return t->cr; }
uint64_t tide_task_born(const tide_task *t) { return t->born; }
uint64_t tide_task_floor(const tide_task *t) { return t->floor; }
void tide_task_note_write(tide_task *t, uint64_t lsn)
{
    if (lsn > t->wrote) t->wrote = lsn;
    if (lsn > t->floor) t->floor = lsn; /* its own later reads see it too */
}
void tide_task_wait(tide_task *t, double seconds) { tide__task_wait(t, seconds); }
int tide_vm_wake(tide_vm *vm) { return tide__vm_wake(vm); }
tide_app *tide_vm_app(tide_vm *vm) { return tide__vm_app(vm); }
tide_vm *tide_task_vm(const tide_task *t) { return t->vm; }
tide_app *tide_task_app(const tide_task *t) { return t->app; }
const char *tide_task_method(const tide_task *t) { return t->req ? t->req->method : NULL; }
const char *tide_task_route(const tide_task *t) { return t->route; }
tide_call *tide_task_call(const tide_task *t) { return t->call; }
void tide_task_set_call(tide_task *t, tide_call *c) { t->call = c; }
tide_conn *tide_task_tx(const tide_task *t) { return t->tx; }
tide_pool *tide_task_tx_pool(const tide_task *t) { return t->tx_pool; }
int tide_task_tx_service(const tide_task *t) { return t->tx_service; }
void tide_task_set_tx_service(tide_task *t, int why) { t->tx_service = why; }
void tide_task_resume(tide_task *t, int nargs) { tide__task_resume(t, nargs); }
void tide_vm_push_decode(tide_vm *vm, lua_State *L) { tide__vm_push_decode(vm, L); }

void tide_task_set_tx(tide_task *t, tide_conn *conn, tide_pool *pool)
{
    t->tx = conn;
    t->tx_pool = pool;
}
