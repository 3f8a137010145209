/* pipeline.c - the composition of the request pipeline after admission (see pipeline.h). The
 * one file that names the router, the cache filter and the VM together; each of them knows
 * only the stage.h callbacks it is handed. */
#include "pipeline.h"
#include "luavm.h"
#include "metrics.h"
#include "rcache.h"

#include <string.h>

/* An answer that goes straight to the client; ud is the app. */
static void reply(void *ud, tide_http_req *req, int status, const char *ctype, const char *headers,
                  const char *body, size_t blen, const tide_answer_log *lg)
{
    tide_app *app = ud;
    if (!req) return;
    if (lg)
        tide_request_record(req, lg->id, lg->role, lg->sub, lg->route,
                            ev_now(app->loop) - lg->started, lg->aborted, lg->label, status);
    tide_http_respond(req, status, ctype, headers, body, blen);
}

static void run(tide_app *app, tide_http_req *req, const tide_stage_in *in)
{
    tide_vm_dispatch(app->vm, req, in);
}

const tide_stages tide_pipeline_stages = { tide_pipeline_admit, run, reply };

void tide_pipeline_admit(tide_app *app, tide_http_req *req, const char *claims, const char *sub,
                         tide_role role)
{
    tide_vm *vm = app->vm;
    tide_route_match m;
    tide_router_match(tide_vm_router(vm), req->method, req->path, req->path_len, &m);
    const tide_cache_rule *rule = NULL;
    if (m.status == TIDE_ROUTE_FOUND && app->cache && req->body_len == 0)
        rule = tide_vm_route_rule(vm, m.id); /* GET routes only have one */
    if (rule) {
        tide_rcache_admit(app, req, rule, &m, claims, sub, role);
        return;
    }
    tide_stage_in in = { claims, sub, role, &m, tide_rcache_clock(app), NULL, reply, app };
    tide_vm_dispatch(vm, req, &in);
}
