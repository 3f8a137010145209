/* admin.h - the admin listener: /live, /ready, /health, /admin/stats (see admin.c). */
#ifndef TIDE_ADMIN_H
#define TIDE_ADMIN_H

#include "app.h"

/* Opens the admin listener on the configured admin host and port (at most 64 connections).
 * Returns 0, or TIDE_EIO when it cannot bind (logged). */
TIDE_MUST_CHECK int tide_admin_start(tide_app *app);

#endif
