/* listen.h - one dedicated libpq connection that LISTENs on a channel (or a few) and keeps
 * doing so: the result cache's invalidation feed (issue 9; the payloads come from the triggers
 * of db/migrations/007_cache_notify.sql) and /rest/v1's schema reloads (runtime/channels.h).
 *
 * Everything runs on the caller's libev loop without blocking: the host name is resolved on a
 * short thread (resolve.h), then PQconnectStartParams/PQconnectPoll, then `LISTEN "<channel>"`
 * (one query with a LISTEN per channel) and its results, each phase under connect_timeout.
 * From then on the session is up: notifications for a channel go to its on_notify as they
 * arrive, and a heartbeat (an empty
 * query every `heartbeat` seconds, whose result must come within `heartbeat_timeout`) catches
 * a server that froze or a network that went silent. A session ends on a socket error or EOF
 * (a terminated backend, a restart), a failed read or write, a failed heartbeat or an error
 * result; the connection is closed and a new one is opened after tide_backoff(attempt, base,
 * cap, random), forever, until tide_listen_free(). The attempt count restarts at 1 after a
 * session that was up.
 *
 * on_state reports sessions: up = 1 once LISTEN is confirmed on a new connection, up = 0 once
 * that session is lost. The calls alternate strictly (1, 0, 1, 0, ...; never 0 first) and
 * connection attempts that fail before LISTEN is confirmed report nothing (stats count them).
 * Writes are announced only while a session is up: before the first 1 and from each 0 to the
 * next 1 they are missed. A cache built on this should therefore store nothing until the
 * first 1, drop everything and stop storing on 0, and start afresh on 1 (what it stored in
 * between, if anything, may predate a write it never heard of).
 *
 * Give a DSN that reaches Postgres directly or through a session-mode pooler. Behind a
 * transaction-mode pooler LISTEN succeeds and the session looks up, but notifications never
 * arrive (seen with PgBouncer) and nothing here can tell: the caller's config must prevent
 * it. When the DSN names no application_name, the session uses application_name=tide_listen.
 *
 * Callbacks run from the loop only, never from inside tide_listen_start(), and
 * tide_listen_free() may be called from inside one (nothing is called after it). No logging:
 * outcomes are counted in tide_listen_stats; the caller logs on state changes. Notices and
 * errors libpq would print (a terminated backend's FATAL) are swallowed. Loop thread only. */
#ifndef TIDE_LISTEN_H
#define TIDE_LISTEN_H

#include <stddef.h>
#include <ev.h>
#include "error.h"

typedef struct tide_listen tide_listen;

/* A notification on the channel: payload (len bytes, NUL-terminated too) is valid only during
 * the call. */
typedef void (*tide_listen_notify_cb)(const char *payload, size_t len, void *arg);
/* up = 1: LISTEN confirmed on a new session; up = 0: that session is lost (see above). */
typedef void (*tide_listen_state_cb)(int up, void *arg);

/* Seconds; 0 (or a NULL opts) takes the default. */
typedef struct tide_listen_opts {
    double connect_timeout;   /* each of: resolve, connect + authenticate, LISTEN (5) */
    double heartbeat;         /* idle time between heartbeats (1) */
    double heartbeat_timeout; /* a heartbeat's result must arrive within this (2) */
    double backoff_base;      /* reconnect backoff: tide_backoff(attempt, base, cap) (0.1) */
    double backoff_cap;       /* (5) */
} tide_listen_opts;

typedef struct tide_listen_stats {
    int up;                      /* a session is up (LISTEN confirmed, not lost since) */
    int backend_pid;             /* the session's server process as libpq reports it (behind
                                 * a pooler, the pooler's id); 0 while none is up */
    long long connects;          /* sessions that came up */
    long long losses;            /* sessions lost */
    long long connect_failures;  /* attempts that ended before LISTEN was confirmed */
    long long notifications;     /* delivered to on_notify */
    long long heartbeats_failed; /* sessions lost because a heartbeat had no answer in time */
    double last_up_at;           /* ev_now() when the last session came up (0: never) */
    char last_error[256];        /* why the last attempt failed or session ended ("" if none);
                                 * one line, from libpq or a timeout; no password in it */
} tide_listen_stats;

/* Starts listening on `channel` with libpq DSN conninfo (a key=value string or a URI), on
 * loop (more channels: tide_listen_add). The first attempt starts from the loop. on_notify is required; on_state may be NULL.
 * On 0, *out runs until tide_listen_free(). Returns TIDE_EINVAL (channel not a plain lower-case
 * identifier of at most 63 bytes, unparsable conninfo, a negative option, no on_notify) or
 * TIDE_ENOMEM; nothing is started then and no callback follows. conninfo, channel and opts are
 * copied. */
TIDE_MUST_CHECK int tide_listen_start(struct ev_loop *loop, const char *conninfo,
                                      const char *channel, const tide_listen_opts *opts,
                                      tide_listen_notify_cb on_notify,
                                      tide_listen_state_cb on_state, void *arg, tide_listen **out);

/* At most this many channels on one listener (tide_listen_start's and those added). */
#define TIDE_LISTEN_MAX_CHANNELS 4

/* Makes l LISTEN on channel too, in the same session: its notifications go to on_notify with
 * arg (not to the start's callback); on_state still reports the one session. Call it before
 * the loop runs l's first attempt, that is right after tide_listen_start() returns. Returns
 * 0, TIDE_EINVAL (channel not a plain identifier, already listened on, or no on_notify),
 * TIDE_ETOOBIG (TIDE_LISTEN_MAX_CHANNELS already), TIDE_EBUSY (an attempt has started) or
 * TIDE_ENOMEM; l is unchanged then. channel is copied. */
TIDE_MUST_CHECK int tide_listen_add(tide_listen *l, const char *channel,
                                    tide_listen_notify_cb on_notify, void *arg);

/* Stops and frees l (NULL is fine): closes the connection; no callback runs afterwards. Safe
 * from inside l's callbacks (the memory is freed when the callback returns). */
void tide_listen_free(tide_listen *l);

/* Copies l's counters into *out. */
void tide_listen_get_stats(const tide_listen *l, tide_listen_stats *out);

/* Splits a 007_cache_notify.sql payload `<table>/<key>` at its last '/' (pure): *table_len
 * is the length of <table>, the key follows the '/'. Returns 0, or TIDE_EINVAL unless <table>
 * is 1..127 bytes without NUL (the name as stored, `schema.table` outside public: names may
 * hold capitals or even '/') and <key> is `*` or 1..200 bytes of [a-z0-9_.:-]. A payload that
 * does not split came from someone else's NOTIFY on the channel: the caller had better
 * invalidate broadly than ignore it. */
TIDE_MUST_CHECK int tide_listen_split_payload(const char *payload, size_t len, size_t *table_len);

/* ---- internal, exposed for tests --------------------------------------------------------- */

/* 1 when channel is a plain identifier Postgres would not fold or need quoting for:
 * [a-z_][a-z0-9_]*, at most 63 bytes; else 0. */
int tide__listen_channel_ok(const char *channel);

/* The connection parameters a session uses, parsed from conninfo: NULL-terminated keyword and
 * value arrays for PQconnectStartParams (expand_dbname = 0) holding every parameter conninfo
 * set, plus application_name=tide_listen when it set none, plus a trailing "hostaddr" slot
 * with value NULL when with_hostaddr (the caller fills it with a resolved address). Returns 0
 * and *out (free with tide__listen_params_free), TIDE_EINVAL or TIDE_ENOMEM. */
typedef struct tide__listen_params {
    const char **kw, **val;
    int n;      /* entries before the NULL terminator */
    void *opts; /* the PQconninfoOption array the strings live in */
} tide__listen_params;
TIDE_MUST_CHECK int tide__listen_params_new(const char *conninfo, int with_hostaddr,
                                            tide__listen_params *out);
void tide__listen_params_free(tide__listen_params *p);

#endif
