/* config.h - tide's configuration: a Lua file (etc/tide.conf.lua) returning a table, read once
 * at start in a throwaway Lua state through the file's schema table (config.c: one row per key
 * with its type, bounds, default and environment variable), then the environment overrides
 * the table names (TIDE_*). Restart-only: a
 * SIGHUP reloads scripts and policies, not this file. */
#ifndef TIDE_CONFIG_H
#define TIDE_CONFIG_H

#include <stddef.h>
#include <stdio.h>
#include "error.h"
#include "http.h"
#include "settings.h"

/* replica: a streaming replica of direct's Postgres (reads only; see replica.h) */
enum { TIDE_UP_DIRECT = 0, TIDE_UP_SESSION, TIDE_UP_TRANSACTION, TIDE_UP_REPLICA, TIDE_UPSTREAMS };

#define TIDE_WATCHDOG_MIN_MS 100 /* watchdog_ms: 0 (off) or at least this */

typedef struct tide_upstream_config {
    char *dsn;              /* NULL = upstream not configured */
    int prepare;            /* named prepared statements (never on a transaction pooler) */
    double connect_timeout; /* pool size and acquire timeout: the resilience policy's */
} tide_upstream_config;

typedef struct tide_config {
    char *listen_host;
    int listen_port;
    char *admin_host;
    int admin_port;
    /* The bearer token of state-changing admin requests (NULL: they are refused). A published
     * development token outside development mode is dropped here: admin_token_published. */
    char *admin_token;
    int admin_token_published;
    char *jwt_secret;
    int jwt_leeway;
    int jwt_require_exp;             /* refuse tokens without exp (default 1) */
    char *jwt_audience, *jwt_issuer; /* NULL: aud / iss not checked */
    char *bindings_dir, *scripts_dir, *policies_dir;
    char *log_level;
    size_t log_buffer_bytes; /* each log stream's buffer; full: lines dropped, never waited on */
    int log_slow_query_ms;   /* database calls at least this slow get a slow_query line (0: off) */
    tide_upstream_config upstreams[TIDE_UPSTREAMS];
    tide_http_limits http;
    unsigned char enc_key[32];
    int has_enc_key;
    char *enc_key_hex;         /* crypto.key as read; only while loading (then wiped, NULL) */
    int script_max_cpu_ms;     /* Lua time one request may use (policies/sandbox.lua per route) */
    size_t script_max_memory;  /* bytes a bundle's Lua state may hold */
    int workers;               /* worker processes (0: one per CPU) */
    int supervise;             /* a supervising parent even for one worker (default 1) */
    int watchdog_ms;           /* a worker's loop silent this long is killed (0: off) */
    int nice;                  /* scheduling priority (nice value) to serve at; 0: unchanged */
    size_t cache_max_bytes;    /* the result cache's bound (0: no cache) */
    char *cache_channel;       /* NOTIFY channel of other writers' writes ("": none heard) */
    char *rest_notify_channel; /* NOTIFY channel of /rest/v1 schema reloads ("": none) */
    int dev;                   /* development mode: published secrets are accepted */
} tide_config;

/* Loads path (NULL = defaults only) and applies environment overrides. dev (or TIDE_DEV=1)
 * asks for development mode; without it a JWT secret or AES key that this repository
 * publishes (etc/tide.conf.lua's, the test suite's, Supabase's demo secret) is refused, so a
 * forgotten override cannot let anyone mint tokens, and the published admin token is dropped
 * (admin_token NULL, admin_token_published set: the caller warns), so state-changing admin
 * requests are refused until a token of one's own is set. Returns 0, or an error with a
 * message in err. On error *cfg holds nothing to free. */
TIDE_MUST_CHECK int tide_config_load(const char *path, int dev, tide_config *cfg, char *err,
                                     size_t errlen);
void tide_config_free(tide_config *cfg);
/* Prints the effective configuration, one "section.key = value" line per key of the config
 * file's schema table, restart-only keys marked, each with the variable that overrides it.
 * jwt.secret and crypto.key print as "(set)" or "(unset)", DSNs without their passwords. */
void tide_config_print(FILE *f, const tide_config *cfg);
/* The config file's schema tables (*n rows each): the top level, and one upstream's table
 * (upstreams.NAME.*; its env names hold a '*' for the upstream's name). For documentation
 * checks, `tide check --schema` and printing. */
const tide_setting *tide_config_table(size_t *n);
const tide_setting *tide_config_upstream_table(size_t *n);
/* The upstreams' names ("direct", "session", "transaction") with their TIDE_UP_* index, as the
 * names list of the settings rows that name an upstream; ends with { NULL, 0 }. */
extern const tide_setting_name tide_upstream_names[];
/* The index of an upstream's name; returns -1 for another name. */
int tide_upstream_index(const char *name);
const char *tide_upstream_name(int index);

#endif
