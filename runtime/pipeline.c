/* pipeline.c - the composition of the request pipeline after admission (see pipeline.h). The
 * one file that names the router, the cache filter and the VM together; each of them knows
 * only the stage.h callbacks it is handed. */
#include "pipeline.h"
#include "lsn.h"
#include "luavm.h"
#include "metrics.h"
#include "rcache.h"

#include <stdio.h>
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

/* Read-your-writes at admission: the floor is the Tide-LSN the client sent (a position an
 * earlier answer gave it, from this instance or another) or the caller's last write this
 * process remembers, whichever is later. Only with a replica; returns 0, or -1 when the
 * header is not an LSN (answered 400 here). */
static int floor_of(tide_app *app, tide_http_req *req, const char *sub, tide_role role)
{
    req->lsn_floor = 0;
    if (!app->writes) return 0;
    size_t len = 0;
    const char *h = tide_http_header_get(req, "tide-lsn", &len);
    tide_lsn sent = 0;
    if (h && tide_lsn_parse(h, len, &sent) != 0) {
        tide_request_record(req, req->id, role, sub ? sub : "", "(admission)", 0, 0, NULL, 400);
        tide_http_respond_error(req, 400, "TIDE_INVALID_LSN",
                                "Tide-LSN must be a WAL position as tide sends it (e.g. 0/3000060)",
                                NULL);
        return -1;
    }
    char key[128];
    int klen = tide_lsn_memo_key(tide_role_name(role), sub, key, sizeof key);
    tide_lsn mine = klen ? tide_lsn_memo_get(app->writes, key, (size_t)klen, ev_now(app->loop)) : 0;
    req->lsn_floor = sent > mine ? sent : mine;
    return 0;
}

void tide_pipeline_admit(tide_app *app, tide_http_req *req, const char *claims, const char *sub,
                         tide_role role)
{
    if (floor_of(app, req, sub, role) != 0) return;
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
