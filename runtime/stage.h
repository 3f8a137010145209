/* stage.h - what the stages of the request pipeline hand each other (docs/architecture.md,
 * "The request pipeline"): HTTP -> admission (runtime/auth.c) -> routing (runtime/pipeline.c
 * with the bundle's compiled router, runtime/router.h) -> the cache filter (runtime/rcache.c)
 * -> the VM (runtime/luavm.c). A stage takes a request and hands it on, or answers it, by
 * calling what it was given; it never names the stage that called it. */
#ifndef TIDE_STAGE_H
#define TIDE_STAGE_H

#include <stddef.h>
#include <stdint.h>
#include "app.h"
#include "http.h"
#include "jwt.h"
#include "router.h"

/* What the access-log line of an answer needs besides the request. */
typedef struct tide_answer_log {
    const char *id;
    tide_role role;
    double started; /* ev_now() when the request arrived */
    int aborted;
    const char *label; /* the log's "cache" value; NULL: the X-Cache value */
    const char *sub;   /* the token's sub claim ("": none), for the audit line */
    const char *route; /* the route pattern ("/v1/trips/:id"), or NULL */
} tide_answer_log;

/* How an answer goes back up the pipeline: ud is what the stage that asked gave with it. req
 * NULL: the request went away without an answer (its task is freed), nothing to send. The
 * strings are valid for the call only. Takes the place of tide_http_respond. */
typedef void (*tide_answer_fn)(void *ud, tide_http_req *req, int status, const char *ctype,
                               const char *headers, const char *body, size_t blen,
                               const tide_answer_log *lg);

/* A routed request, as the stage after routing receives it (valid for the call only; the
 * stage copies what it keeps). */
typedef struct tide_stage_in {
    const char *claims; /* the token's payload (JSON text), NULL: anonymous */
    const char *sub;    /* its sub claim, NULL: none */
    tide_role role;
    const tide_route_match *match; /* the router's verdict on the request's path */
    uint64_t born;                 /* the cache clock when the request arrived (tide.cache.set) */
    struct tide_rcache_req *cr;    /* the cache's record of what the answer depends on (the
                                  * binding adds to it, runtime/rcache.h), or NULL */
    tide_answer_fn answer;         /* where the answer goes, with ud */
    void *ud;
} tide_stage_in;

/* The stages the cache filter hands requests on to (set by the composition, pipeline.c). */
typedef struct tide_stages {
    /* The pipeline from routing on: a coalesced request whose leader went away starts over. */
    void (*admit)(tide_app *app, tide_http_req *req, const char *claims, const char *sub,
                  tide_role role);
    /* The stage after the cache (the VM). */
    void (*run)(tide_app *app, tide_http_req *req, const tide_stage_in *in);
    /* An answer straight to the client (access log, metrics, audit, send). */
    tide_answer_fn reply;
} tide_stages;

#endif
