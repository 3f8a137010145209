/* channels.h - what tide hears on its LISTEN session (runtime/listen.h): one connection of its
 * own to the `direct` upstream per process (so one per worker: each hears every NOTIFY),
 * LISTENing on
 *
 *   cache.channel         other writers' writes, for the result cache (runtime/rcache.h):
 *                         only when the cache is on;
 *   rest.notify_channel   PostgREST's convention (`pgrst`): the payload 'reload schema', or an
 *                         empty one, moves app->schema_generation, which /rest/v1's schema
 *                         cache (bindings/tide/rest/schema.lua, through core.schema_generation())
 *                         compares on each request, re-reading the catalog when it moved.
 *
 * Each new session (the first, and each one after a loss) moves the generation too: NOTIFYs
 * sent while no session was up are lost, so the catalog may have changed unheard. A payload
 * 'reload config' is ignored (counted in the log once): tide's config file is restart-only
 * and its policies reload on SIGHUP. Any other payload is ignored, as PostgREST does. No
 * session when neither channel applies (the generation then stays 0). */
#ifndef TIDE_CHANNELS_H
#define TIDE_CHANNELS_H

#include <stddef.h>
#include "app.h"

/* Starts app->listen on the channels that apply. Returns 0, or TIDE_EINVAL / TIDE_ENOMEM
 * (logged). Call after tide_rcache_start(). */
TIDE_MUST_CHECK int tide_channels_start(tide_app *app);
/* Stops app->listen (none is fine). */
void tide_channels_stop(tide_app *app);

/* ---- internal, exposed for tests ------------------------------------------------------- */

enum { TIDE__REST_IGNORE = 0, TIDE__REST_RELOAD_SCHEMA, TIDE__REST_RELOAD_CONFIG };
/* What a rest.notify_channel payload (len bytes) asks for: TIDE__REST_* (pure). */
int tide__channels_rest_payload(const char *payload, size_t len);
/* The session callbacks, as the listener calls them (arg is the app). */
void tide__channels_rest_notify(const char *payload, size_t len, void *arg);
void tide__channels_state(int up, void *arg);

#endif
