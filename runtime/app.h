/* app.h - the process-wide context: loop, config, pools, listeners and the current Lua VM.
 * Everything here outlives a reload; only `vm` is swapped by SIGHUP. */
#ifndef TIDE_APP_H
#define TIDE_APP_H

#include <ev.h>
#include "config.h"
#include "http.h"
#include "pool.h"
#include "upstream.h"
#include "replica.h"
#include "jwtcache.h"

typedef struct tide_vm tide_vm;

enum { TIDE_ADMIN_REFUSED_UNSET, TIDE_ADMIN_REFUSED_TOKEN, TIDE_ADMIN_REFUSED_HOST };
extern const char *const tide_admin_refused_names[3]; /* "token_unset", "bad_token", "host" */
struct lua_State;

typedef struct tide_app {
    struct ev_loop *loop;
    tide_config cfg;
    tide_upstream upstream_store[TIDE_UPSTREAMS];
    tide_upstream *ups[TIDE_UPSTREAMS];  /* an unconfigured upstream points at direct's */
    tide_replica replica;                /* the replica's lag, when one is configured */
    struct tide_lsn_memo *writes;        /* with a replica: the callers' last writes */
    struct tide_lsn_memo *writes_shared; /* workers: that memo in memory they all share */
    tide_http_server *http, *admin;
    tide_vm *vm; /* the bundle serving new requests */
    /* Opens the `tide.core` Lua module in a new bundle's state, with the vm as its one upvalue.
     * The binding that provides it registers it here before any vm is made (main.c does:
     * the runtime never names the binding). */
    int (*open_core)(struct lua_State *L);
    ev_signal sighup, sigterm, sigint;
    ev_prepare flush_logs;
    ev_check pass_check; /* with flush_logs: how long each loop pass takes */
    double pass_started, max_pass;
    long long slow_passes;
    /* admin requests refused: TIDE_ADMIN_REFUSED_* (no token configured, a wrong or missing
     * token, a foreign Host); the last time one was logged */
    long long admin_refused[3];
    double admin_refused_logged_at;
    struct tide_rcache *cache;              /* the result cache (runtime/rcache.h), or NULL */
    struct tide_listen *listen;             /* the LISTEN session (runtime/channels.h), or NULL */
    unsigned long long schema_generation;   /* moves when /rest/v1 must re-read the catalog */
    long long schema_reloads_heard;         /* NOTIFYs on rest.notify_channel that moved it */
    struct tide_cache_shared *cache_shared; /* workers: the invalidation slots they share */
    struct tide_watch *watch;               /* --watch (runtime/watch.h), or NULL */
    tide_jwt_cache *jwt_cache;              /* verified tokens (the secret is restart-only) */
    unsigned long long next_request_id;
    char id_prefix[12]; /* random per process: generated request ids start so */
    long long reloads, reload_failures, inflight;
    double started_at, drain_started;
    int draining;
    int worker, nworkers; /* this process: index of nworkers (runtime/workers.h) */
    int restarts;         /* a worker: its starts before this one (0: the first) */
    /* The bundle tide_vm_new builds the next state from (runtime/bundle.h), set around the
     * call by tide_server_load; NULL: package.path reads the directories. */
    const struct tide_bundle *bundle;
    int has_snapshot, snapshot_fd;        /* workers: the last bundle that loaded, shared */
    int bundle_from_snapshot;             /* the serving bundle came from the snapshot */
    unsigned long long bundle_generation; /* ... of that generation */
} tide_app;

#endif
