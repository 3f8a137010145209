/* pipeline.h - the request pipeline after admission, composed: the bundle's router, then the
 * cache filter for a route with a cache rule, then the VM (runtime/stage.h; the whole path is
 * drawn in docs/architecture.md, "The request pipeline"). */
#ifndef TIDE_PIPELINE_H
#define TIDE_PIPELINE_H

#include "stage.h"

/* Routes req once with the serving bundle's compiled router and hands it on: to the cache
 * (a GET without a body whose route has a rule, the cache on) or to the bundle. claims and
 * sub as admission found them (may be NULL; copied by whoever keeps them). The request is
 * always answered, now or later. */
void tide_pipeline_admit(tide_app *app, tide_http_req *req, const char *claims, const char *sub,
                         tide_role role);

/* The stages as the cache filter calls them (tide_rcache_start). */
extern const tide_stages tide_pipeline_stages;

#endif
