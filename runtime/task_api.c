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
void tide_task_wait(tide_task *t, double seconds) { tide__task_wait(t, seconds); }
int tide_vm_wake(tide_vm *vm) { return tide__vm_wake(vm); }
tide_app *tide_vm_app(tide_vm *vm) { return tide__vm_app(vm); }
