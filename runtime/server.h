/* server.h - `tide serve`'s life: listeners, policy wiring, reload, drain (see server.c). */
#ifndef TIDE_SERVER_H
#define TIDE_SERVER_H

#include <stddef.h>
#include "app.h"

/* Opens the public and admin listeners and installs SIGHUP/SIGTERM/SIGINT watchers.
 * Returns 0 or TIDE_EIO (a listener could not bind; logged). */
TIDE_MUST_CHECK int tide_server_start(tide_app *app);
/* Applies the current bundle's resilience policy to every upstream (state is kept). */
void tide_server_apply_policy(tide_app *app);

#endif
