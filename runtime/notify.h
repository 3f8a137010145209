/* notify.h - the service manager's notification protocol (sd_notify(3)) without libsystemd:
 * each call sends one datagram of "KEY=VALUE\n" lines to the AF_UNIX socket named by
 * $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace). Without NOTIFY_SOCKET
 * (not started by systemd with Type=notify) every call does nothing and returns 0.
 *
 * Every function returns 0, TIDE_EINVAL (NOTIFY_SOCKET is neither an absolute path nor "@name",
 * or is too long for a socket address) or TIDE_EIO (the socket could not be created or the
 * datagram not sent; errno says why). They never log: the caller decides. A status text is
 * copied with CR and LF turned into spaces (one line) and cut at 200 bytes; NULL sends none. */
#ifndef TIDE_NOTIFY_H
#define TIDE_NOTIFY_H

#include "error.h"

/* Sends state as it is (one or more "KEY=VALUE" lines). */
TIDE_MUST_CHECK int tide_notify(const char *state);
/* READY=1: serving (at start, and after a reload whatever its outcome). */
TIDE_MUST_CHECK int tide_notify_ready(const char *status);
/* RELOADING=1 with MONOTONIC_USEC=<CLOCK_MONOTONIC now, in microseconds>: a reload starts;
 * READY=1 must follow when it is over. */
TIDE_MUST_CHECK int tide_notify_reloading(const char *status);
/* STOPPING=1: shutting down (draining). */
TIDE_MUST_CHECK int tide_notify_stopping(const char *status);
/* STATUS=<status> alone. */
TIDE_MUST_CHECK int tide_notify_status(const char *status);
/* WATCHDOG=1: still alive, for the service manager's watchdog (systemd's WatchdogSec=). */
TIDE_MUST_CHECK int tide_notify_watchdog(void);
/* The watchdog interval the service manager expects WATCHDOG=1 within, in microseconds:
 * $WATCHDOG_USEC, when it is a positive whole number and $WATCHDOG_PID is unset or this
 * process's pid; else 0 (no watchdog asked for). Send at half of it. */
unsigned long long tide_notify_watchdog_usec(void);

#endif
