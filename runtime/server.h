/* server.h - `tide serve`'s life: listeners, policy wiring, reload, watch, drain (server.c). */
#ifndef TIDE_SERVER_H
#define TIDE_SERVER_H

#include <stddef.h>
#include "app.h"

/* Opens the public and admin listeners, installs SIGHUP/SIGTERM/SIGINT watchers and tells the
 * service manager READY. Returns 0 or TIDE_EIO (a listener could not bind; logged). */
TIDE_MUST_CHECK int tide_server_start(tide_app *app);
/* Applies the current bundle's resilience policy to every upstream (state is kept). */
void tide_server_apply_policy(tide_app *app);
/* Builds a Lua state (*out) from a bundle read whole into memory (runtime/bundle.h): with
 * from_snapshot and a snapshot (app->has_snapshot), the last bundle that loaded in any worker,
 * logged as such; else (or when the snapshot holds none) the configured directories, and then,
 * when it loads, that bundle is stored as the snapshot. Notes where the serving bundle came
 * from (app->bundle_from_snapshot, bundle_generation) when it loads. 0, or an error with the
 * message in err. */
TIDE_MUST_CHECK int tide_server_load(tide_app *app, int from_snapshot, tide_vm **out, char *err,
                                     size_t errlen);
/* Builds a new bundle from the configured directories and swaps it in (what SIGHUP does);
 * when it fails to load, the running bundle keeps serving. Logs the outcome with `why` (what
 * asked for the reload), counts it in app->reloads or app->reload_failures, and tells the
 * service manager RELOADING, then READY. While draining it only logs that it ignored it. */
void tide_server_reload(tide_app *app, const char *why);
/* Starts --watch: a change to a .lua file under the scripts or policies directory reloads, 0.1 s
 * after the last change of a burst (server.c's TIDE_WATCH_DEBOUNCE). When the directories
 * cannot be watched it logs why and leaves app->watch NULL (serving goes on without it). */
void tide_server_watch(tide_app *app);

#endif
